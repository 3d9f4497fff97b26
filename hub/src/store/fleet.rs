//! Reads of the fleet log: events by origin, a filtered page of the whole fleet, sales per
//! store and day, an order's events, a campaign's participants.

use std::collections::BTreeMap;

use fusion_contracts::{Envelope, Event, NodeId, Timestamp};
use redb::{ReadableDatabase, ReadableTable};

use super::tables::*;
use super::{HubStore, HubStoreError, storage};

/// Which fleet events `HubStore::fleet_events` returns; `None` matches all.
#[derive(Clone, Debug, Default)]
pub struct FleetFilter {
    pub store: Option<String>,
    pub origin: Option<String>,
    pub topic: Option<String>,
}

/// One page of fleet events and where the next one starts.
#[derive(Debug, Default)]
pub struct FleetPage {
    pub events: Vec<Envelope>,
    /// The last (origin, seq) looked at: pass it as `after` for the next page.
    pub next: Option<(String, u64)>,
    /// True when the scan reached the end of the log (for now).
    pub complete: bool,
}

/// The store of till `origin` (`-` when the hub has none), remembered in `cache` for a scan.
fn store_of_origin(
    cache: &mut BTreeMap<String, String>,
    stores: &impl ReadableTable<&'static str, &'static str>,
    origin: &str,
) -> Result<String, HubStoreError> {
    if let Some(store) = cache.get(origin) {
        return Ok(store.clone());
    }
    let store = stores
        .get(origin)
        .map_err(storage)?
        .map_or_else(|| "-".to_string(), |v| v.value().to_string());
    cache.insert(origin.to_string(), store.clone());
    Ok(store)
}

/// One row of [`HubStore::sales`].
#[derive(Clone, Debug, PartialEq)]
pub struct SalesRow {
    pub store_id: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub orders: i64,
    pub total: fusion_contracts::Money,
}

/// One participant of a campaign ([`HubStore::campaign_participants`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: String,
    pub store_id: Option<String>,
    pub origin: String,
    pub joined_at: Timestamp,
}

impl HubStore {
    /// Events of `origin` with seq ≥ `from`, in order.
    pub fn events(
        &self,
        origin: &NodeId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, HubStoreError> {
        self.events_raw(origin, from, limit)?
            .iter()
            .map(|bytes| Envelope::decode(bytes).map_err(storage))
            .collect()
    }

    /// Like [`HubStore::events`], encoded as the origin logged them.
    pub fn events_raw(
        &self,
        origin: &NodeId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(FLEET_EVENTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table
            .range((origin.as_str(), from)..=(origin.as_str(), u64::MAX))
            .map_err(storage)?
            .take(limit)
        {
            out.push(entry.map_err(storage)?.1.value().to_vec());
        }
        Ok(out)
    }

    /// Sales per store per day (UTC, by when the order was created) per currency: orders
    /// created minus those cancelled since, and their total. Computed by scanning the fleet
    /// log (a projection table is the next step when logs grow large).
    pub fn sales(&self) -> Result<Vec<SalesRow>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let stores = read.open_table(ORIGIN_STORES).map_err(storage)?;
        let events = read.open_table(FLEET_EVENTS).map_err(storage)?;
        let mut buckets: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
        let mut orders: BTreeMap<fusion_contracts::OrderId, (String, String, String, i64)> =
            BTreeMap::new();
        let mut store_of: BTreeMap<String, String> = BTreeMap::new();
        for entry in events.iter().map_err(storage)? {
            let (key, bytes) = entry.map_err(storage)?;
            let origin = key.value().0.to_string();
            let envelope = Envelope::decode(bytes.value()).map_err(storage)?;
            match &envelope.event {
                Event::OrderCreated(o) => {
                    let store = store_of_origin(&mut store_of, &stores, &origin)?;
                    let day = o
                        .created_at
                        .to_string()
                        .chars()
                        .take(10)
                        .collect::<String>();
                    let minor = fusion_contracts::Money::from_decimal(o.total, o.currency)
                        .map_err(storage)?
                        .minor;
                    let currency = o.currency.code().to_string();
                    let bucket = buckets
                        .entry((store.clone(), day.clone(), currency.clone()))
                        .or_default();
                    bucket.0 += 1;
                    bucket.1 += minor;
                    orders.insert(o.order_id, (store, day, currency, minor));
                }
                Event::OrderCancelled(c) => {
                    if let Some((store, day, currency, minor)) = orders.remove(&c.order_id)
                        && let Some(bucket) = buckets.get_mut(&(store, day, currency))
                    {
                        bucket.0 -= 1;
                        bucket.1 -= minor;
                    }
                }
                _ => {}
            }
        }
        buckets
            .into_iter()
            .map(|((store_id, day, currency), (orders, minor))| {
                let currency = fusion_contracts::Currency::parse(&currency).map_err(storage)?;
                Ok(SalesRow {
                    store_id,
                    day,
                    orders,
                    total: fusion_contracts::Money { minor, currency },
                })
            })
            .collect()
    }

    /// A campaign's participants as the fleet log has them: joined and not left since, in
    /// the order they joined, with the store of the till that took the join. Scans the log.
    pub fn campaign_participants(
        &self,
        campaign: fusion_contracts::CampaignId,
    ) -> Result<Vec<Participant>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let stores = read.open_table(ORIGIN_STORES).map_err(storage)?;
        let events = read.open_table(FLEET_EVENTS).map_err(storage)?;
        let mut out: Vec<Participant> = Vec::new();
        for entry in events.iter().map_err(storage)? {
            let (key, bytes) = entry.map_err(storage)?;
            let envelope = Envelope::decode(bytes.value()).map_err(storage)?;
            match &envelope.event {
                Event::CampaignJoined(j) if j.campaign_id == campaign => {
                    let user = j.user_id.to_string();
                    out.retain(|p| p.user_id != user);
                    let origin = key.value().0.to_string();
                    out.push(Participant {
                        user_id: user,
                        store_id: stores
                            .get(origin.as_str())
                            .map_err(storage)?
                            .map(|v| v.value().to_string()),
                        origin,
                        joined_at: envelope.occurred_at,
                    });
                }
                Event::CampaignLeft(l) if l.campaign_id == campaign => {
                    let user = l.user_id.to_string();
                    out.retain(|p| p.user_id != user);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Every event of an order across the fleet, in (origin, seq) order.
    pub fn order_events(
        &self,
        order: fusion_contracts::OrderId,
    ) -> Result<Vec<Envelope>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let index = read.open_table(ORDER_EVENTS).map_err(storage)?;
        let events = read.open_table(FLEET_EVENTS).map_err(storage)?;
        let id = order.as_u128();
        let mut out = Vec::new();
        for entry in index
            .range((id, "", 0)..=(id, "\u{10FFFF}", u64::MAX))
            .map_err(storage)?
        {
            let (key, _) = entry.map_err(storage)?;
            let (_, origin, seq) = key.value();
            if let Some(bytes) = events.get((origin, seq)).map_err(storage)? {
                out.push(Envelope::decode(bytes.value()).map_err(storage)?);
            }
        }
        Ok(out)
    }

    /// The verification code of order `order`'s receipt, as its till printed it.
    pub fn receipt_code(
        &self,
        order: fusion_contracts::OrderId,
    ) -> Result<Option<String>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(FLEET_RECEIPT_CODES).map_err(storage)?;
        Ok(table
            .get(order.as_u128())
            .map_err(storage)?
            .map(|v| v.value().to_string()))
    }

    /// When the event at `origin`'s `seq` was recorded at its till (None when the hub holds
    /// no such event): the newest event's time says how current the hub's copy of a journal is.
    pub fn event_time(&self, origin: &str, seq: u64) -> Result<Option<Timestamp>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(FLEET_EVENTS).map_err(storage)?;
        match table.get((origin, seq)).map_err(storage)? {
            Some(bytes) => Ok(Some(
                Envelope::decode(bytes.value())
                    .map_err(storage)?
                    .occurred_at,
            )),
            None => Ok(None),
        }
    }

    /// The fleet's events in (origin, seq) order after `after`, matching `filter`; at most
    /// `limit`. Scans at most `scan_max` events, so a rare topic cannot make one page read
    /// the whole log: the returned cursor resumes where the scan stopped.
    pub fn fleet_events(
        &self,
        filter: &FleetFilter,
        after: Option<(String, u64)>,
        limit: usize,
        scan_max: usize,
    ) -> Result<FleetPage, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(FLEET_EVENTS).map_err(storage)?;
        let stores = read.open_table(ORIGIN_STORES).map_err(storage)?;
        let start = match (&after, &filter.origin) {
            (Some((origin, seq)), _) => (origin.clone(), seq.saturating_add(1)),
            (None, Some(origin)) => (origin.clone(), 0),
            (None, None) => (String::new(), 0),
        };
        let mut page = FleetPage::default();
        let mut store_of: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (scanned, entry) in table
            .range((start.0.as_str(), start.1)..)
            .map_err(storage)?
            .enumerate()
        {
            let (key, bytes) = entry.map_err(storage)?;
            let (origin, seq) = key.value();
            if filter.origin.as_deref().is_some_and(|o| o != origin) {
                break; // past the one origin asked for
            }
            if scanned == scan_max {
                return Ok(page); // `next` is the last one looked at
            }
            page.next = Some((origin.to_string(), seq));
            if let Some(wanted) = &filter.store {
                let store = match store_of.get(origin) {
                    Some(store) => store.clone(),
                    None => {
                        let store = stores
                            .get(origin)
                            .map_err(storage)?
                            .map(|v| v.value().to_string());
                        store_of.insert(origin.to_string(), store.clone());
                        store
                    }
                };
                if store.as_deref() != Some(wanted.as_str()) {
                    continue;
                }
            }
            let envelope = Envelope::decode(bytes.value()).map_err(storage)?;
            if filter
                .topic
                .as_deref()
                .is_some_and(|t| t != envelope.topic())
            {
                continue;
            }
            page.events.push(envelope);
            if page.events.len() >= limit {
                return Ok(page);
            }
        }
        page.complete = true;
        Ok(page)
    }

    pub fn position(&self, origin: &NodeId) -> Result<u64, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(POSITIONS).map_err(storage)?;
        Ok(table
            .get(origin.as_str())
            .map_err(storage)?
            .map_or(0, |v| v.value()))
    }
}

impl HubStore {
    /// Every till's Z reports, by store (`None`: all) and day of the close (UTC, `YYYY-MM-DD`;
    /// `None`: all), by till and Z number.
    pub fn sessions(
        &self,
        store: Option<&str>,
        day: Option<&str>,
    ) -> Result<Vec<fusion_contracts::http::hub::FleetSession>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let stores = read.open_table(ORIGIN_STORES).map_err(storage)?;
        let sessions = match read.open_table(FLEET_SESSIONS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut out = Vec::new();
        let mut store_of: BTreeMap<String, String> = BTreeMap::new();
        for entry in sessions.iter().map_err(storage)? {
            let (key, bytes) = entry.map_err(storage)?;
            let origin = key.value().0.to_string();
            let store_id = store_of_origin(&mut store_of, &stores, &origin)?;
            if store.is_some_and(|s| s != store_id) {
                continue;
            }
            let closed: fusion_contracts::events::SessionClosed =
                serde_json::from_slice(bytes.value()).map_err(storage)?;
            let closed_day: String = closed.closed_at.to_string().chars().take(10).collect();
            if day.is_some_and(|d| d != closed_day) {
                continue;
            }
            out.push(fusion_contracts::http::hub::FleetSession {
                store_id,
                day: closed_day,
                report: fusion_contracts::http::sessions::ReportResponse::z(&closed),
            });
        }
        Ok(out)
    }
}
