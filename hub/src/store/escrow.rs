//! Escrow at the hub: the hub's holders of each store's stock rights give, rebalance and
//! reclaim; shared campaigns' seats are followed and decided; every store's offline card
//! budget is read. The decisions are the rulebook's (`inventory`, `campaigns::SharedCampaign`,
//! `payments`); this module loads their state and appends their events.

pub use fusion_contracts::http::hub::Reclaim;

use std::collections::BTreeMap;

use fusion_contracts::commands::{TransferSeats, TransferStock};
use fusion_contracts::{CampaignId, CorrelationId, Envelope, Event, NodeId, Sku, StoreId};
use fusion_rules::campaigns::{CampaignRejected, SharedCampaign};
use fusion_rules::inventory::{self, LostHolding, TillLevel, TransferRejected};
use fusion_rules::payments;
use redb::{ReadableDatabase, ReadableTable};

use super::own_log::OwnLog;
use super::projections::{OfflineApproval, Transfer};
use super::tables::*;
use super::{HubStore, HubStoreError, storage};

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

impl HubStore {
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

    /// Each till's stock and every transfer, from one snapshot: held and in transit add up.
    pub fn escrow_snapshot(&self) -> Result<(Vec<TillStock>, Vec<Transfer>), HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        Ok((self.till_stock_in(&read)?, self.transfers_in(&read)?))
    }

    /// Every stock transfer the hub has seen, oldest first, each marked received or not.
    pub(super) fn transfers_in(
        &self,
        read: &redb::ReadTransaction,
    ) -> Result<Vec<Transfer>, HubStoreError> {
        let transfers = read.open_table(FLEET_TRANSFERS).map_err(storage)?;
        let receipts = read.open_table(FLEET_RECEIPTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in transfers.iter().map_err(storage)? {
            let (id, json) = entry.map_err(storage)?;
            let mut t: Transfer = serde_json::from_slice(json.value()).map_err(storage)?;
            // Taken in by its addressee, or voided by a reclaim of the hub's.
            t.received = receipts
                .get(id.value())
                .map_err(storage)?
                .is_some_and(|by| {
                    by.value() == t.to || by.value().starts_with(self.origin.as_str())
                });
            out.push(t);
        }
        out.sort_by_key(|t| t.at);
        Ok(out)
    }

    /// Each till's stock of each sku, by origin then sku.
    pub fn till_stock(&self) -> Result<Vec<TillStock>, HubStoreError> {
        self.till_stock_in(&self.db.begin_read().map_err(storage)?)
    }

    pub(super) fn till_stock_in(
        &self,
        read: &redb::ReadTransaction,
    ) -> Result<Vec<TillStock>, HubStoreError> {
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
}

/// One store's offline card budget in one currency ([`HubStore::budgets`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetRow {
    pub store_id: String,
    pub currency: fusion_contracts::Currency,
    /// The store's cap: the sum of its tills' shares.
    pub cap: fusion_contracts::Decimal,
    /// Approved offline and not settled, over the store's tills.
    pub exposure: fusion_contracts::Decimal,
    pub holders: Vec<BudgetHolder>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetHolder {
    pub origin: String,
    pub share: fusion_contracts::Decimal,
    pub exposure: fusion_contracts::Decimal,
    /// What it may still approve offline (share − exposure, at least 0).
    pub headroom: fusion_contracts::Decimal,
}

/// A campaign whose seats are shared between holders, as the hub follows it ([`HUB_CAMPAIGNS`],
/// JSON): the rulebook's [`SharedCampaign`].
pub type HubCampaign = SharedCampaign;

/// Why the hub refused an escrow movement: a 4xx naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EscrowRefusal {
    /// The request names nothing the hub can act on.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The hub's holder holds fewer rights than asked for.
    Insufficient { available: u64, message: String },
}

/// The hub's answer when the rulebook refuses to give seats.
pub(super) fn seats_refusal(rejected: CampaignRejected) -> EscrowRefusal {
    match rejected {
        CampaignRejected::NotEnoughSeats {
            campaign_id,
            requested,
            free,
        } => EscrowRefusal::Insufficient {
            available: u64::from(free),
            message: format!(
                "the hub holds {free} seats of campaign {campaign_id}; {requested} asked for"
            ),
        },
        CampaignRejected::InvalidField { field, message } if field == "seats" => {
            EscrowRefusal::Invalid {
                field: "seats",
                message: format!("seats {message}"),
            }
        }
        CampaignRejected::InvalidField { message, .. } => EscrowRefusal::Invalid {
            field: "to",
            message: format!("to {message}"),
        },
        CampaignRejected::Ended { campaign_id, .. }
        | CampaignRejected::NotOpen { campaign_id, .. } => EscrowRefusal::Invalid {
            field: "id",
            message: format!("campaign {campaign_id} has ended"),
        },
        other => EscrowRefusal::Invalid {
            field: "id",
            message: other.to_string(),
        },
    }
}

impl HubStore {
    /// Ends the part of a lost till in every shared campaign it holds seats of and had not
    /// ended: its participants are those its log shows up to `upto` (joins minus leaves).
    /// Each campaign is then decided if every other holder has ended too.
    pub(super) fn end_lost_parts(
        &self,
        own: &mut OwnLog<'_>,
        node: &NodeId,
        upto: u64,
        correlation_id: &CorrelationId,
    ) -> Result<Vec<CampaignId>, HubStoreError> {
        let mut rows: Vec<SharedCampaign> = Vec::new();
        for entry in own.campaigns.iter().map_err(storage)? {
            let (_, json) = entry.map_err(storage)?;
            rows.push(serde_json::from_slice(json.value()).map_err(storage)?);
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut joined: BTreeMap<CampaignId, Vec<String>> = BTreeMap::new();
        for entry in own
            .fleet
            .range((node.as_str(), 1)..=(node.as_str(), upto))
            .map_err(storage)?
        {
            let (_, bytes) = entry.map_err(storage)?;
            match Envelope::decode(bytes.value()).map_err(storage)?.event {
                Event::CampaignJoined(j) => joined
                    .entry(j.campaign_id)
                    .or_default()
                    .push(j.user_id.to_string()),
                Event::CampaignLeft(l) => joined
                    .entry(l.campaign_id)
                    .or_default()
                    .retain(|u| *u != l.user_id.as_str()),
                _ => {}
            }
        }
        let mut ended = Vec::new();
        for mut row in rows {
            let id = row.campaign.id;
            let participants = joined.remove(&id).unwrap_or_default();
            let Some(events) = row.end_lost(node, participants, own.now) else {
                continue;
            };
            for event in events {
                own.append(&self.origin, event, correlation_id.clone(), None)?;
            }
            own.put_campaign(&row)?;
            ended.push(id);
        }
        Ok(ended)
    }

    /// The hub gives `seats` of the seats it holds of a campaign to the till `to` (of any
    /// store), by the rule a till gives its own: `seats-transferred` in the hub's log, which
    /// the till pulls.
    pub fn give_seats(
        &self,
        campaign: CampaignId,
        to: &NodeId,
        seats: u32,
        correlation_id: CorrelationId,
    ) -> Result<Result<SharedCampaign, EscrowRefusal>, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let row = {
            let mut own = OwnLog::open(&txn, self.now()).map_err(storage)?;
            let Some(mut row) = own.campaign(campaign)? else {
                return Ok(Err(EscrowRefusal::Invalid {
                    field: "id",
                    message: format!("the hub holds no seats of campaign {campaign}"),
                }));
            };
            let to_store = own.store_of(to.as_str())?;
            if to_store.is_none_or(|s| self.holder(&s) == *to) {
                return Ok(Err(EscrowRefusal::Invalid {
                    field: "to",
                    message: "to names no till the hub has heard from".to_string(),
                }));
            }
            let cmd = TransferSeats {
                campaign_id: campaign,
                transfer_id: uuid::Uuid::now_v7(),
                seats,
                to: to.clone(),
            };
            let events = match row.give(&self.origin, &cmd, own.now) {
                Ok(events) => events,
                Err(rejected) => return Ok(Err(seats_refusal(rejected))),
            };
            for event in events {
                own.append(&self.origin, event, correlation_id.clone(), None)?;
            }
            own.put_campaign(&row)?;
            row
        };
        txn.commit().map_err(storage)?;
        self.appended.notify_waiters();
        Ok(Ok(row))
    }

    /// Each store's offline card budget per currency: every till's share (as it recorded it)
    /// and exposure (offline approvals the hub has not seen settled), by store and currency.
    pub fn budgets(&self) -> Result<Vec<BudgetRow>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let budgets = read.open_table(FLEET_BUDGETS).map_err(storage)?;
        let offline = read.open_table(FLEET_OFFLINE).map_err(storage)?;
        let stores = read.open_table(ORIGIN_STORES).map_err(storage)?;
        // (origin, currency) → (share, exposure).
        let mut per_till: BTreeMap<(String, fusion_contracts::Currency), (i64, i64)> =
            BTreeMap::new();
        for entry in budgets.iter().map_err(storage)? {
            let (key, share) = entry.map_err(storage)?;
            let (origin, currency) = key.value();
            let currency = fusion_contracts::Currency::parse(currency).map_err(storage)?;
            per_till
                .entry((origin.to_string(), currency))
                .or_default()
                .0 = share.value().1;
        }
        for entry in offline.iter().map_err(storage)? {
            let (_, json) = entry.map_err(storage)?;
            let a: OfflineApproval = serde_json::from_slice(json.value()).map_err(storage)?;
            per_till.entry((a.origin, a.currency)).or_default().1 += a.minor;
        }
        let mut rows: BTreeMap<
            (String, fusion_contracts::Currency),
            (i64, i64, Vec<BudgetHolder>),
        > = BTreeMap::new();
        for ((origin, currency), (share, exposure)) in per_till {
            let store_id = stores
                .get(origin.as_str())
                .map_err(storage)?
                .map_or_else(|| "-".to_string(), |v| v.value().to_string());
            let money = |minor| fusion_contracts::Money { minor, currency }.to_decimal();
            let row = rows.entry((store_id, currency)).or_default();
            row.0 += share;
            row.1 += exposure;
            row.2.push(BudgetHolder {
                origin,
                share: money(share),
                exposure: money(exposure),
                headroom: money(payments::budget_headroom(share, exposure)),
            });
        }
        Ok(rows
            .into_iter()
            .map(|((store_id, currency), (cap, exposure, holders))| {
                let money = |minor| fusion_contracts::Money { minor, currency }.to_decimal();
                BudgetRow {
                    store_id,
                    currency,
                    cap: money(cap),
                    exposure: money(exposure),
                    holders,
                }
            })
            .collect())
    }

    /// Every shared campaign's seats as the hub follows them, in campaign id order.
    pub fn hub_campaigns(&self) -> Result<Vec<HubCampaign>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(HUB_CAMPAIGNS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, json) = entry.map_err(storage)?;
            out.push(serde_json::from_slice(json.value()).map_err(storage)?);
        }
        Ok(out)
    }

    /// A shared campaign's seats as the hub follows them.
    pub fn hub_campaign(&self, id: CampaignId) -> Result<Option<HubCampaign>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(HUB_CAMPAIGNS).map_err(storage)?;
        match table.get(id.as_u128()).map_err(storage)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(storage)?)),
            None => Ok(None),
        }
    }

    /// The hub's holder of `store` gives `quantity` of its rights of `sku` to the till `to`:
    /// `inventory.transferred` in the holder's log, durable on return. The till takes it in when
    /// it next pulls the hub's log.
    pub fn transfer(
        &self,
        store: &StoreId,
        sku: &Sku,
        to: &NodeId,
        quantity: u64,
        correlation_id: CorrelationId,
    ) -> Result<Result<Transfer, EscrowRefusal>, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let transfer = {
            let mut own = OwnLog::open(&txn, self.now()).map_err(storage)?;
            let holder = self.holder(store);
            if to == &holder || own.store_of(to.as_str())?.as_ref() != Some(store) {
                return Ok(Err(EscrowRefusal::Invalid {
                    field: "to",
                    message: format!(
                        "to names no till of store {store} that the hub has heard from"
                    ),
                }));
            }
            match give(&mut own, &holder, store, sku, to, quantity, correlation_id)? {
                Ok(transfer) => transfer,
                Err(TransferRejected::Insufficient { available, .. }) => {
                    return Ok(Err(EscrowRefusal::Insufficient {
                        available,
                        message: format!(
                            "the hub holds {available} of {sku} for store {store}; {quantity} \
                             asked for"
                        ),
                    }));
                }
                Err(other) => {
                    return Ok(Err(EscrowRefusal::Invalid {
                        field: "quantity",
                        message: other.to_string(),
                    }));
                }
            }
        };
        txn.commit().map_err(storage)?;
        self.appended.notify_waiters();
        Ok(Ok(transfer))
    }

    /// A manager takes over the rights of `node`, a till lost for good: it is revoked, and the
    /// hub's holder of its store records `inventory.reclaimed` per sku — what the till held as
    /// far as the hub has seen, plus the transfers to it it had not taken in (void from now
    /// on). Its events after `upto` never count. Durable on return; cutting its connections is
    /// the caller's.
    pub fn reclaim(
        &self,
        node: &NodeId,
        correlation_id: CorrelationId,
    ) -> Result<Result<Reclaim, EscrowRefusal>, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let reclaim = {
            let mut own = OwnLog::open(&txn, self.now()).map_err(storage)?;
            let Some(store) = own.store_of(node.as_str())? else {
                return Ok(Err(EscrowRefusal::Invalid {
                    field: "nodeId",
                    message: format!("nodeId {node} names no till the hub has heard from"),
                }));
            };
            let holder = self.holder(&store);
            if node == &holder {
                return Ok(Err(EscrowRefusal::Invalid {
                    field: "nodeId",
                    message: format!("nodeId {node} is the hub's own holder"),
                }));
            }
            let endpoint = txn
                .open_table(ORIGIN_PEERS)
                .map_err(storage)?
                .get(node.as_str())
                .map_err(storage)?
                .map(|v| v.value().to_string());
            if let Some(endpoint) = &endpoint {
                self.record_revocation(&txn, &mut own, endpoint, correlation_id.clone())?;
            }
            let upto = own
                .positions
                .get(node.as_str())
                .map_err(storage)?
                .map_or(0, |v| v.value());
            // Per sku: what the lost till held and what was in transit to it.
            let mut per_sku: BTreeMap<String, LostHolding> = BTreeMap::new();
            for entry in own
                .projections
                .stock
                .range((node.as_str(), "")..)
                .map_err(storage)?
            {
                let (key, level) = entry.map_err(storage)?;
                if key.value().0 != node.as_str() {
                    break;
                }
                per_sku.entry(key.value().1.to_string()).or_default().held = level.value().0;
            }
            for entry in own.projections.transfers.iter().map_err(storage)? {
                let (id, json) = entry.map_err(storage)?;
                let t: Transfer = serde_json::from_slice(json.value()).map_err(storage)?;
                let received = own.projections.receipts.get(id.value()).map_err(storage)?;
                if t.to == node.as_str() && received.is_none() {
                    let row = per_sku.entry(t.sku).or_default();
                    row.transfers.push(t.transfer_id);
                    row.in_transit = row.in_transit.saturating_add(t.quantity);
                }
            }
            let mut reclaimed = Vec::new();
            for (sku, lost) in per_sku {
                let sku = Sku::new(sku).map_err(storage)?;
                let level = own.level(holder.as_str(), sku.as_str())?;
                let Some(event) = inventory::reclaim(node, upto, &sku, &lost, &level) else {
                    continue;
                };
                own.append_held(&holder, &store, event.clone(), correlation_id.clone(), None)?;
                if let Event::StockReclaimed(e) = event {
                    reclaimed.push(e);
                }
            }
            let campaigns = self.end_lost_parts(&mut own, node, upto, &correlation_id)?;
            Reclaim {
                node_id: node.to_string(),
                store_id: store.to_string(),
                holder: holder.to_string(),
                revoked: endpoint,
                upto,
                reclaimed,
                campaigns,
            }
        };
        txn.commit().map_err(storage)?;
        self.appended.notify_waiters();
        Ok(Ok(reclaim))
    }

    /// Moves the hub's rights toward demand: for each store (or just `only`) and sku, the
    /// hub's holder keeps `keep` units (the online channel's reserve) and gives the rest to
    /// the store's enrolled tills so that each ends up with a share of the store's sellable
    /// units proportional to what it sold (plus one, so a till that sold nothing still gets
    /// some), neediest first. The hub only gives its own rights: a till's are never taken.
    pub fn rebalance(
        &self,
        only: Option<&StoreId>,
        keep: u64,
        correlation_id: CorrelationId,
    ) -> Result<Vec<Transfer>, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let mut moved = Vec::new();
        {
            let mut own = OwnLog::open(&txn, self.now()).map_err(storage)?;
            let enrolled: std::collections::BTreeSet<String> = txn
                .open_table(ENROLLMENTS)
                .map_err(storage)?
                .iter()
                .map_err(storage)?
                .map(|e| e.map(|(k, _)| k.value().to_string()))
                .collect::<Result<_, _>>()
                .map_err(storage)?;
            let peers = txn.open_table(ORIGIN_PEERS).map_err(storage)?;
            // Store → its tills that are still enrolled.
            let mut tills: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for entry in own.stores.iter().map_err(storage)? {
                let (origin, store) = entry.map_err(storage)?;
                let peer = peers.get(origin.value()).map_err(storage)?;
                if peer.is_some_and(|p| enrolled.contains(p.value())) {
                    tills
                        .entry(store.value().to_string())
                        .or_default()
                        .push(origin.value().to_string());
                }
            }
            for (store, origins) in tills {
                let store = StoreId::new(store).map_err(storage)?;
                if only.is_some_and(|o| o != &store) {
                    continue;
                }
                let holder = self.holder(&store);
                let mut held: Vec<(String, u64)> = Vec::new();
                for entry in own
                    .projections
                    .stock
                    .range((holder.as_str(), "")..)
                    .map_err(storage)?
                {
                    let (key, level) = entry.map_err(storage)?;
                    if key.value().0 != holder.as_str() {
                        break;
                    }
                    held.push((key.value().1.to_string(), level.value().0));
                }
                for (sku, available) in held {
                    if available <= keep {
                        continue; // nothing to give: no need to read the tills' levels
                    }
                    let mut levels: Vec<TillLevel> = Vec::new();
                    for origin in &origins {
                        let level = own.level(origin, &sku)?;
                        levels.push((origin.clone(), level.available, level.reserved));
                    }
                    let sku = Sku::new(sku).map_err(storage)?;
                    for (to, quantity) in inventory::rebalance(available, keep, &levels) {
                        let to = NodeId::new(to).map_err(storage)?;
                        let given = give(
                            &mut own,
                            &holder,
                            &store,
                            &sku,
                            &to,
                            quantity,
                            correlation_id.clone(),
                        )?;
                        // The shares never add up to more than the hub holds past `keep`.
                        moved.push(given.map_err(|r| storage(format!("rebalancing: {r}")))?);
                    }
                }
            }
        }
        txn.commit().map_err(storage)?;
        if !moved.is_empty() {
            self.appended.notify_waiters();
        }
        Ok(moved)
    }
}

/// The hub's `holder` of `store` gives `quantity` of `sku` to `to`, by the rule a till gives
/// its own ([`inventory::transfer`]: only what the holder has available).
pub(super) fn give(
    own: &mut OwnLog<'_>,
    holder: &NodeId,
    store: &StoreId,
    sku: &Sku,
    to: &NodeId,
    quantity: u64,
    correlation_id: CorrelationId,
) -> Result<Result<Transfer, TransferRejected>, HubStoreError> {
    let level = own.level(holder.as_str(), sku.as_str())?;
    let cmd = TransferStock {
        transfer_id: uuid::Uuid::now_v7(),
        sku: sku.clone(),
        quantity,
        to: to.clone(),
    };
    let events = match inventory::transfer(&cmd, &level, holder) {
        Ok(events) => events,
        Err(rejected) => return Ok(Err(rejected)),
    };
    let mut at = own.now;
    for event in events {
        at = own
            .append_held(holder, store, event, correlation_id.clone(), None)?
            .occurred_at;
    }
    Ok(Ok(Transfer {
        transfer_id: cmd.transfer_id,
        sku: sku.to_string(),
        from: holder.to_string(),
        to: to.to_string(),
        quantity,
        at,
        received: false,
    }))
}
