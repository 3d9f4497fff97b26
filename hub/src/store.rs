//! The hub's store: one redb file with the fleet's events by (origin, seq) and each origin's
//! durable position. The only module of the hub that imports redb. A batch of received events is
//! one durable transaction; the receiver acknowledges only after it committed.

use std::collections::BTreeMap;
use std::path::Path;

use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, Timestamp};
use fusion_sync::docs::{Chunk, StoredDoc, group_chunks};
use fusion_sync::net::{BoxFuture, EndpointId, EventSink};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// (origin, seq) → postcard envelope, exactly as the origin logged it.
const FLEET_EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("fleet_events");
/// Origin → last seq stored (every earlier one is stored too).
const POSITIONS: TableDefinition<&str, u64> = TableDefinition::new("positions");
/// Enrolled node (endpoint id, as text) → the store it belongs to.
const ENROLLMENTS: TableDefinition<&str, &str> = TableDefinition::new("enrollments");
/// Revoked node (endpoint id, as text) → when, in Unix ms. Revoked stays revoked until the node
/// is enrolled again on purpose.
const REVOCATIONS: TableDefinition<&str, i64> = TableDefinition::new("revocations");
/// Origin → the store of the enrolled node that first delivered its events (the fleet API's
/// `store` filter).
const ORIGIN_STORES: TableDefinition<&str, &str> = TableDefinition::new("origin_stores");
/// (document id, chunk index) → automerge bytes: chunk 0 a whole save, then incremental saves
/// (see `fusion_sync::docs::Chunk`).
const DOCS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("docs");
/// Origin → last seq exported to Kafka (every earlier one is confirmed by the broker).
const EXPORT_POSITIONS: TableDefinition<&str, u64> = TableDefinition::new("export_positions");
/// (subscription, origin) → last seq the webhook subscription is done with (delivered,
/// dead-lettered or not matching its topics).
const WEBHOOK_POSITIONS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("webhook_positions");
/// (subscription, origin, seq) → JSON [`DeadLetter`]: events a subscription gave up on, in
/// order, until `fusion hub dlq retry` delivers them.
const WEBHOOK_DLQ: TableDefinition<(&str, &str, u64), &[u8]> = TableDefinition::new("webhook_dlq");
/// (origin, sku) → (available, reserved): each till's stock as its events left it (the same fold
/// as the node's inventory projection).
const FLEET_STOCK: TableDefinition<(&str, &str), (u64, u64)> = TableDefinition::new("fleet_stock");
/// (order id, origin, seq) → (): the events of each order (order, payment, reservation and
/// shipping topics), for the fleet-wide order lookup.
const ORDER_EVENTS: TableDefinition<(u128, &str, u64), ()> = TableDefinition::new("order_events");
/// Token hash (SHA-256) → JSON [`HubToken`]: API tokens made with `POST /tokens` (the admin
/// token of `admin.token` is not here).
const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
/// Transfer id → JSON [`Transfer`]: stock rights one till gave another (or the hub).
const FLEET_TRANSFERS: TableDefinition<u128, &[u8]> = TableDefinition::new("fleet_transfers");
/// Transfer id → the origin that took it in. A transfer without a receipt is in transit (a
/// receipt may arrive before its transfer: they come from different tills' logs).
const FLEET_RECEIPTS: TableDefinition<u128, &str> = TableDefinition::new("fleet_receipts");
/// `projections` → the version the projection tables were built with.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Bump when a projection changes meaning: they are rebuilt from the fleet log on open.
const PROJECTIONS_VERSION: u64 = 2;
/// The hub store's file name in its data dir.
pub const HUB_DB_FILE: &str = "hub.redb";

#[derive(Debug, thiserror::Error)]
pub enum HubStoreError {
    #[error("hub store: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> HubStoreError {
    HubStoreError::Storage(e.to_string())
}

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

/// One row of [`HubStore::sales`].
#[derive(Clone, Debug, PartialEq)]
pub struct SalesRow {
    pub store_id: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub orders: i64,
    pub total: fusion_contracts::Money,
}

/// An event a webhook subscription gave up on: what `fusion hub dlq list` shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub subscription: String,
    pub origin: String,
    pub seq: u64,
    pub event_id: EventId,
    pub topic: String,
    pub key: String,
    /// Delivery attempts so far (live and retried).
    pub attempts: u32,
    pub last_error: String,
    pub failed_at: Timestamp,
}

/// What a hub token may do. `admin` includes `viewer`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HubRole {
    /// Read the fleet: events, stores, sales, stock, orders, campaigns, lag, metrics.
    Viewer,
    /// Also enroll and revoke nodes, edit products and settings, retry dead letters, manage
    /// tokens.
    Admin,
}

/// A hub API token as stored and listed (never its secret).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubToken {
    pub id: String,
    pub role: HubRole,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<String>,
    pub created_at: Timestamp,
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

/// One row of [`HubStore::fleet_stock`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockRow {
    pub store_id: String,
    pub sku: String,
    pub available: u64,
    pub reserved: u64,
    /// Tills of the store that hold stock of the sku.
    pub tills: u64,
}

/// One till's stock of one sku ([`HubStore::till_stock`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TillStock {
    pub origin: String,
    pub store_id: String,
    pub sku: String,
    pub available: u64,
    pub reserved: u64,
}

/// A stock transfer between holders ([`HubStore::transfers`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    pub transfer_id: uuid::Uuid,
    pub sku: String,
    pub from: String,
    pub to: String,
    pub quantity: u64,
    pub at: Timestamp,
    /// Whether the receiver took it in (as far as the hub has seen).
    #[serde(default)]
    pub received: bool,
}

/// The projection tables one write transaction updates with each stored event.
struct Projections<'t> {
    stock: redb::Table<'t, (&'static str, &'static str), (u64, u64)>,
    orders: redb::Table<'t, (u128, &'static str, u64), ()>,
    transfers: redb::Table<'t, u128, &'static [u8]>,
    receipts: redb::Table<'t, u128, &'static str>,
}

impl<'t> Projections<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Self {
            stock: txn.open_table(FLEET_STOCK)?,
            orders: txn.open_table(ORDER_EVENTS)?,
            transfers: txn.open_table(FLEET_TRANSFERS)?,
            receipts: txn.open_table(FLEET_RECEIPTS)?,
        })
    }
}

/// The order an event belongs to, for the order lookup (reservations, payments and shipping
/// are keyed by their order).
fn order_of(event: &Event) -> Option<fusion_contracts::OrderId> {
    let topic = event.topic();
    let keyed_by_order = topic.starts_with("order.")
        || topic.starts_with("payment.")
        || topic.starts_with("shipping.")
        || matches!(
            topic,
            "inventory.reserved" | "inventory.released" | "inventory.insufficient"
        );
    keyed_by_order
        .then(|| fusion_contracts::OrderId::parse(&event.key()))
        .flatten()
}

/// Folds one stored event into the projections.
fn project(p: &mut Projections<'_>, origin: &str, e: &Envelope) -> Result<(), redb::StorageError> {
    let mut change = |sku: &str, f: &dyn Fn(&mut (u64, u64))| -> Result<(), redb::StorageError> {
        let mut level = p.stock.get((origin, sku))?.map_or((0, 0), |v| v.value());
        f(&mut level);
        p.stock.insert((origin, sku), level)?;
        Ok(())
    };
    match &e.event {
        Event::StockAdjusted(a) => change(a.sku.as_str(), &|l| l.0 = a.quantity)?,
        Event::StockTransferred(t) => {
            change(t.sku.as_str(), &|l| l.0 = t.available)?;
            let record = Transfer {
                transfer_id: t.transfer_id,
                sku: t.sku.to_string(),
                from: origin.to_string(),
                to: t.to.to_string(),
                quantity: t.quantity,
                at: e.occurred_at,
                received: false,
            };
            let json = serde_json::to_vec(&record).expect("a transfer serializes");
            p.transfers
                .insert(t.transfer_id.as_u128(), json.as_slice())?;
        }
        Event::StockReceived(r) => {
            change(r.sku.as_str(), &|l| l.0 = r.available)?;
            p.receipts.insert(r.transfer_id.as_u128(), origin)?;
        }
        Event::InventoryReserved(r) => {
            for line in &r.items {
                change(line.sku.as_str(), &|l| {
                    l.0 = l.0.saturating_sub(line.quantity);
                    l.1 += line.quantity;
                })?;
            }
        }
        Event::InventoryReleased(r) => {
            for line in &r.items {
                change(line.sku.as_str(), &|l| {
                    l.1 = l.1.saturating_sub(line.quantity);
                    l.0 += line.quantity;
                })?;
            }
        }
        _ => {}
    }
    if let Some(order) = order_of(&e.event) {
        p.orders.insert((order.as_u128(), origin, e.seq), ())?;
    }
    Ok(())
}

/// Rebuilds the projections from the fleet log when they were built by another version (or
/// never: a hub store from before they existed).
fn rebuild_projections(txn: &redb::WriteTransaction) -> Result<(), HubStoreError> {
    let mut meta = txn.open_table(META).map_err(storage)?;
    let built = meta.get("projections").map_err(storage)?.map(|v| v.value());
    if built == Some(PROJECTIONS_VERSION) {
        return Ok(());
    }
    let mut p = Projections::open(txn).map_err(storage)?;
    p.stock.retain(|_, _| false).map_err(storage)?;
    p.orders.retain(|_, _| false).map_err(storage)?;
    p.transfers.retain(|_, _| false).map_err(storage)?;
    p.receipts.retain(|_, _| false).map_err(storage)?;
    let events = txn.open_table(FLEET_EVENTS).map_err(storage)?;
    for entry in events.iter().map_err(storage)? {
        let (key, bytes) = entry.map_err(storage)?;
        let envelope = Envelope::decode(bytes.value()).map_err(storage)?;
        project(&mut p, key.value().0, &envelope).map_err(storage)?;
    }
    meta.insert("projections", PROJECTIONS_VERSION)
        .map_err(storage)?;
    Ok(())
}

pub struct HubStore {
    db: Database,
    /// Woken after every commit that added events (the Kafka exporter waits on it).
    appended: std::sync::Arc<tokio::sync::Notify>,
}

impl HubStore {
    pub fn open(dir: &Path) -> Result<Self, HubStoreError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let db = Database::create(dir.join(HUB_DB_FILE)).map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(FLEET_EVENTS).map_err(storage)?;
        txn.open_table(POSITIONS).map_err(storage)?;
        txn.open_table(ENROLLMENTS).map_err(storage)?;
        txn.open_table(REVOCATIONS).map_err(storage)?;
        txn.open_table(ORIGIN_STORES).map_err(storage)?;
        txn.open_table(DOCS).map_err(storage)?;
        txn.open_table(EXPORT_POSITIONS).map_err(storage)?;
        txn.open_table(WEBHOOK_POSITIONS).map_err(storage)?;
        txn.open_table(WEBHOOK_DLQ).map_err(storage)?;
        txn.open_table(TOKENS).map_err(storage)?;
        rebuild_projections(&txn)?;
        txn.commit().map_err(storage)?;
        Ok(Self {
            db,
            appended: Default::default(),
        })
    }

    /// Events of `origin` with seq ≥ `from`, in order.
    pub fn events(
        &self,
        origin: &NodeId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(FLEET_EVENTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table
            .range((origin.as_str(), from)..=(origin.as_str(), u64::MAX))
            .map_err(storage)?
            .take(limit)
        {
            let (_, bytes) = entry.map_err(storage)?;
            out.push(Envelope::decode(bytes.value()).map_err(storage)?);
        }
        Ok(out)
    }

    /// Every stored document's chunks, in index order.
    pub fn load_docs(&self) -> Result<Vec<StoredDoc>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(DOCS).map_err(storage)?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (key, bytes) = entry.map_err(storage)?;
            rows.push((key.value().0.to_string(), bytes.value().to_vec()));
        }
        group_chunks(rows).map_err(storage)
    }

    /// Stores document chunks and the hub's own events (say, `product.updated` for a price set
    /// here) in one durable transaction. The events are numbered after `origin`'s last.
    pub fn commit_docs(
        &self,
        chunks: &[Chunk],
        origin: &NodeId,
        events: Vec<(Event, CorrelationId)>,
        at: Timestamp,
    ) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut docs = txn.open_table(DOCS).map_err(storage)?;
            for chunk in chunks {
                match chunk {
                    Chunk::Append { doc, index, bytes } => {
                        docs.insert((doc.as_str(), *index), bytes.as_slice())
                            .map_err(storage)?;
                    }
                    Chunk::Compacted { doc, bytes } => {
                        docs.retain_in((doc.as_str(), 1)..=(doc.as_str(), u32::MAX), |_, _| false)
                            .map_err(storage)?;
                        docs.insert((doc.as_str(), 0), bytes.as_slice())
                            .map_err(storage)?;
                    }
                }
            }
            let mut fleet = txn.open_table(FLEET_EVENTS).map_err(storage)?;
            let mut positions = txn.open_table(POSITIONS).map_err(storage)?;
            let mut projections = Projections::open(&txn).map_err(storage)?;
            let mut seq = positions
                .get(origin.as_str())
                .map_err(storage)?
                .map_or(0, |v| v.value());
            let any = !events.is_empty();
            for (event, correlation_id) in events {
                seq += 1;
                let envelope = Envelope::new(
                    EventId(uuid::Uuid::now_v7()),
                    origin.clone(),
                    seq,
                    at,
                    correlation_id,
                    None,
                    event,
                )
                .map_err(storage)?;
                fleet
                    .insert((origin.as_str(), seq), envelope.encode().as_slice())
                    .map_err(storage)?;
                project(&mut projections, origin.as_str(), &envelope).map_err(storage)?;
            }
            if any {
                positions.insert(origin.as_str(), seq).map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)?;
        self.appended.notify_waiters();
        Ok(())
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
                    let store = match store_of.get(&origin) {
                        Some(s) => s.clone(),
                        None => {
                            let s = stores
                                .get(origin.as_str())
                                .map_err(storage)?
                                .map_or_else(|| "-".to_string(), |v| v.value().to_string());
                            store_of.insert(origin.clone(), s.clone());
                            s
                        }
                    };
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

    /// Stock per store and sku: every till's available and reserved quantities summed, with
    /// how many tills hold the sku. Optionally one sku or one store.
    pub fn fleet_stock(
        &self,
        sku: Option<&str>,
        store: Option<&str>,
    ) -> Result<Vec<StockRow>, HubStoreError> {
        let mut rows: BTreeMap<(String, String), StockRow> = BTreeMap::new();
        for t in self.till_stock()? {
            if sku.is_some_and(|s| s != t.sku) || store.is_some_and(|s| s != t.store_id) {
                continue;
            }
            let row = rows
                .entry((t.store_id.clone(), t.sku.clone()))
                .or_insert_with(|| StockRow {
                    store_id: t.store_id,
                    sku: t.sku,
                    available: 0,
                    reserved: 0,
                    tills: 0,
                });
            row.available += t.available;
            row.reserved += t.reserved;
            row.tills += 1;
        }
        Ok(rows.into_values().collect())
    }

    /// Every stock transfer the hub has seen, oldest first, each marked received or not.
    pub fn transfers(&self) -> Result<Vec<Transfer>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let transfers = read.open_table(FLEET_TRANSFERS).map_err(storage)?;
        let receipts = read.open_table(FLEET_RECEIPTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in transfers.iter().map_err(storage)? {
            let (id, json) = entry.map_err(storage)?;
            let mut t: Transfer = serde_json::from_slice(json.value()).map_err(storage)?;
            t.received = receipts
                .get(id.value())
                .map_err(storage)?
                .is_some_and(|by| by.value() == t.to);
            out.push(t);
        }
        out.sort_by_key(|t| t.at);
        Ok(out)
    }

    /// Each till's stock of each sku, by origin then sku.
    pub fn till_stock(&self) -> Result<Vec<TillStock>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let stock = read.open_table(FLEET_STOCK).map_err(storage)?;
        let stores = read.open_table(ORIGIN_STORES).map_err(storage)?;
        let mut out: Vec<TillStock> = Vec::new();
        for entry in stock.iter().map_err(storage)? {
            let (key, level) = entry.map_err(storage)?;
            let (origin, sku) = key.value();
            // Rows come by origin: look each origin's store up once.
            let store_id = match out.last() {
                Some(prev) if prev.origin == origin => prev.store_id.clone(),
                _ => stores
                    .get(origin)
                    .map_err(storage)?
                    .map_or_else(|| "-".to_string(), |v| v.value().to_string()),
            };
            let (available, reserved) = level.value();
            out.push(TillStock {
                origin: origin.to_string(),
                store_id,
                sku: sku.to_string(),
                available,
                reserved,
            });
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

    /// Woken after every commit that added events.
    pub fn appended(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.appended.clone()
    }

    /// Every origin's durable position.
    pub fn durable_positions(&self) -> Result<BTreeMap<String, u64>, HubStoreError> {
        self.read_positions(POSITIONS)
    }

    /// Every origin's export position (what Kafka confirmed).
    pub fn export_positions(&self) -> Result<BTreeMap<String, u64>, HubStoreError> {
        self.read_positions(EXPORT_POSITIONS)
    }

    fn read_positions(
        &self,
        table: TableDefinition<&str, u64>,
    ) -> Result<BTreeMap<String, u64>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(table).map_err(storage)?;
        let mut out = BTreeMap::new();
        for entry in table.iter().map_err(storage)? {
            let (origin, seq) = entry.map_err(storage)?;
            out.insert(origin.value().to_string(), seq.value());
        }
        Ok(out)
    }

    /// Records, durably, that Kafka confirmed `origin`'s events up to `seq`.
    pub fn set_export_position(&self, origin: &str, seq: u64) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(EXPORT_POSITIONS)
            .map_err(storage)?
            .insert(origin, seq)
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// Every origin's position for the webhook subscription `name`.
    pub fn webhook_positions(&self, name: &str) -> Result<BTreeMap<String, u64>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(WEBHOOK_POSITIONS).map_err(storage)?;
        let mut out = BTreeMap::new();
        for entry in table.range((name, "")..).map_err(storage)? {
            let (key, seq) = entry.map_err(storage)?;
            let (subscription, origin) = key.value();
            if subscription != name {
                break;
            }
            out.insert(origin.to_string(), seq.value());
        }
        Ok(out)
    }

    /// Records, in one durable transaction, that subscription `name` is done with `origin`'s
    /// events up to `seq`, and the dead letters among them.
    pub fn advance_webhook(
        &self,
        name: &str,
        origin: &str,
        seq: u64,
        dead: &[DeadLetter],
    ) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut dlq = txn.open_table(WEBHOOK_DLQ).map_err(storage)?;
            for letter in dead {
                let json = serde_json::to_vec(letter).map_err(storage)?;
                dlq.insert((name, letter.origin.as_str(), letter.seq), json.as_slice())
                    .map_err(storage)?;
            }
            txn.open_table(WEBHOOK_POSITIONS)
                .map_err(storage)?
                .insert((name, origin), seq)
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// The dead letters of subscription `name` (all subscriptions when `None`), in
    /// (subscription, origin, seq) order.
    pub fn dead_letters(&self, name: Option<&str>) -> Result<Vec<DeadLetter>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(WEBHOOK_DLQ).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table
            .range((name.unwrap_or(""), "", 0)..)
            .map_err(storage)?
        {
            let (key, json) = entry.map_err(storage)?;
            if name.is_some_and(|n| n != key.value().0) {
                break;
            }
            out.push(serde_json::from_slice(json.value()).map_err(storage)?);
        }
        Ok(out)
    }

    /// How many dead letters each subscription holds.
    pub fn dead_letter_counts(&self) -> Result<BTreeMap<String, u64>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(WEBHOOK_DLQ).map_err(storage)?;
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for entry in table.iter().map_err(storage)? {
            let (key, _) = entry.map_err(storage)?;
            *out.entry(key.value().0.to_string()).or_default() += 1;
        }
        Ok(out)
    }

    /// Removes a delivered dead letter, or (when `failed` is given) records one more failed
    /// attempt on it. Durable on return.
    pub fn settle_dead_letter(
        &self,
        letter: &DeadLetter,
        failed: Option<&str>,
    ) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut dlq = txn.open_table(WEBHOOK_DLQ).map_err(storage)?;
            let key = (
                letter.subscription.as_str(),
                letter.origin.as_str(),
                letter.seq,
            );
            match failed {
                None => {
                    dlq.remove(key).map_err(storage)?;
                }
                Some(error) => {
                    let mut updated = letter.clone();
                    updated.attempts += 1;
                    updated.last_error = error.to_string();
                    let json = serde_json::to_vec(&updated).map_err(storage)?;
                    dlq.insert(key, json.as_slice()).map_err(storage)?;
                }
            }
        }
        txn.commit().map_err(storage)
    }

    /// Stores a token by the hash of its secret. Durable on return.
    pub fn add_token(&self, hash: &[u8; 32], token: &HubToken) -> Result<(), HubStoreError> {
        let json = serde_json::to_vec(token).map_err(storage)?;
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(TOKENS)
            .map_err(storage)?
            .insert(hash.as_slice(), json.as_slice())
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// The token whose secret hashes to `hash`.
    pub fn token(&self, hash: &[u8; 32]) -> Result<Option<HubToken>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(TOKENS).map_err(storage)?;
        table
            .get(hash.as_slice())
            .map_err(storage)?
            .map(|v| serde_json::from_slice(v.value()).map_err(storage))
            .transpose()
    }

    /// Every token, oldest first.
    pub fn tokens(&self) -> Result<Vec<HubToken>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(TOKENS).map_err(storage)?;
        let mut out: Vec<HubToken> = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, json) = entry.map_err(storage)?;
            out.push(serde_json::from_slice(json.value()).map_err(storage)?);
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// Revokes the token `id`; false when there is none. Durable on return.
    pub fn revoke_token(&self, id: &str) -> Result<bool, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let found = {
            let mut table = txn.open_table(TOKENS).map_err(storage)?;
            let mut hash = None;
            for entry in table.iter().map_err(storage)? {
                let (key, json) = entry.map_err(storage)?;
                let token: HubToken = serde_json::from_slice(json.value()).map_err(storage)?;
                if token.id == id {
                    hash = Some(key.value().to_vec());
                    break;
                }
            }
            match hash {
                Some(h) => {
                    table.remove(h.as_slice()).map_err(storage)?;
                    true
                }
                None => false,
            }
        };
        txn.commit().map_err(storage)?;
        Ok(found)
    }

    /// Enrolls `node` as a till of `store` (again, if it was revoked). Durable on return.
    pub fn enroll(&self, node: EndpointId, store: &str) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let key = node.to_string();
            txn.open_table(ENROLLMENTS)
                .map_err(storage)?
                .insert(key.as_str(), store)
                .map_err(storage)?;
            txn.open_table(REVOCATIONS)
                .map_err(storage)?
                .remove(key.as_str())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// Revokes `node`: it is no longer admitted. Returns false when it was not enrolled.
    /// Durable on return; cutting its live connections is the caller's (`Gate::cut`).
    pub fn revoke(&self, node: EndpointId, at_unix_ms: i64) -> Result<bool, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let was_enrolled = {
            let key = node.to_string();
            let removed = txn
                .open_table(ENROLLMENTS)
                .map_err(storage)?
                .remove(key.as_str())
                .map_err(storage)?
                .is_some();
            txn.open_table(REVOCATIONS)
                .map_err(storage)?
                .insert(key.as_str(), at_unix_ms)
                .map_err(storage)?;
            removed
        };
        txn.commit().map_err(storage)?;
        Ok(was_enrolled)
    }

    /// The store `node` is enrolled in; `None` when it is not (never enrolled, or revoked).
    pub fn enrollment(&self, node: EndpointId) -> Result<Option<String>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(ENROLLMENTS).map_err(storage)?;
        Ok(table
            .get(node.to_string().as_str())
            .map_err(storage)?
            .map(|v| v.value().to_string()))
    }

    /// Every enrolled node and its store.
    pub fn enrollments(&self) -> Result<Vec<(String, String)>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(ENROLLMENTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (node, store) = entry.map_err(storage)?;
            out.push((node.value().to_string(), store.value().to_string()));
        }
        Ok(out)
    }

    /// The store whose enrolled node first delivered `origin`'s events.
    pub fn origin_store(&self, origin: &str) -> Result<Option<String>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(ORIGIN_STORES).map_err(storage)?;
        Ok(table
            .get(origin)
            .map_err(storage)?
            .map(|v| v.value().to_string()))
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

impl EventSink for HubStore {
    fn positions(&self) -> BTreeMap<NodeId, u64> {
        let read = || -> Result<BTreeMap<NodeId, u64>, HubStoreError> {
            let txn = self.db.begin_read().map_err(storage)?;
            let table = txn.open_table(POSITIONS).map_err(storage)?;
            let mut out = BTreeMap::new();
            for entry in table.iter().map_err(storage)? {
                let (origin, seq) = entry.map_err(storage)?;
                out.insert(NodeId::new(origin.value()).map_err(storage)?, seq.value());
            }
            Ok(out)
        };
        // Without positions every origin would be resent from the start: duplicates, which
        // `store` ignores. Wasteful, never wrong.
        read().unwrap_or_default()
    }

    fn store<'a>(
        &'a self,
        peer: EndpointId,
        origin: &'a NodeId,
        envelopes: Vec<Envelope>,
    ) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(std::future::ready(
            self.store_events(peer, origin, envelopes),
        ))
    }
}

impl HubStore {
    /// Stores a batch of one origin's events in one durable transaction; see [`EventSink::store`].
    fn store_events(
        &self,
        peer: EndpointId,
        origin: &NodeId,
        envelopes: Vec<Envelope>,
    ) -> Result<u64, String> {
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        let position = {
            let mut origin_stores = txn.open_table(ORIGIN_STORES).map_err(|e| e.to_string())?;
            if origin_stores
                .get(origin.as_str())
                .map_err(|e| e.to_string())?
                .is_none()
            {
                let enrollments = txn.open_table(ENROLLMENTS).map_err(|e| e.to_string())?;
                if let Some(store) = enrollments
                    .get(peer.to_string().as_str())
                    .map_err(|e| e.to_string())?
                {
                    origin_stores
                        .insert(origin.as_str(), store.value())
                        .map_err(|e| e.to_string())?;
                }
            }
            let mut events = txn.open_table(FLEET_EVENTS).map_err(|e| e.to_string())?;
            let mut positions = txn.open_table(POSITIONS).map_err(|e| e.to_string())?;
            let mut projections = Projections::open(&txn).map_err(|e| e.to_string())?;
            let mut position = positions
                .get(origin.as_str())
                .map_err(|e| e.to_string())?
                .map_or(0, |v| v.value());
            for envelope in envelopes {
                if envelope.seq <= position {
                    continue; // already stored: duplicates are ignored by (origin, seq)
                }
                if envelope.seq != position + 1 {
                    return Err(format!(
                        "gap in {origin}: {} after {position}",
                        envelope.seq
                    ));
                }
                events
                    .insert(
                        (origin.as_str(), envelope.seq),
                        envelope.encode().as_slice(),
                    )
                    .map_err(|e| e.to_string())?;
                project(&mut projections, origin.as_str(), &envelope).map_err(|e| e.to_string())?;
                position = envelope.seq;
            }
            positions
                .insert(origin.as_str(), position)
                .map_err(|e| e.to_string())?;
            position
        };
        txn.commit().map_err(|e| e.to_string())?;
        self.appended.notify_waiters();
        Ok(position)
    }
}
