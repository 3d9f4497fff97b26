//! The projections: tables folded from the fleet log in the transaction that stores each
//! event, by the rulebook's folds (stock, budget), and rebuilt from the log when their version
//! changes. An event a fold refuses changes nothing (and is not stored: `ingest`).

use std::collections::BTreeMap;

use fusion_contracts::{Envelope, Event, Timestamp};
use fusion_rules::inventory::{self, StockLevel};
use fusion_rules::{Refused, drawer, journal, payments, receipts};
use redb::ReadableTable;

use super::tables::*;
use super::{HubStoreError, storage};

/// A stock transfer between holders (the `fleet_transfers` projection, read by
/// [`HubStore::escrow_snapshot`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    pub transfer_id: uuid::Uuid,
    pub sku: String,
    pub from: String,
    pub to: String,
    pub quantity: u64,
    pub at: Timestamp,
    /// Whether the receiver took it in, or a reclaim voided it (as far as the hub has seen).
    #[serde(default)]
    pub received: bool,
}

/// The projection tables one write transaction updates with each stored event.
pub(super) struct Projections<'t> {
    pub(super) budgets: redb::Table<'t, (&'static str, &'static str), (i64, i64)>,
    pub(super) offline: redb::Table<'t, u128, &'static [u8]>,
    pub(super) stock: redb::Table<'t, (&'static str, &'static str), (u64, u64)>,
    pub(super) orders: redb::Table<'t, (u128, &'static str, u64), ()>,
    pub(super) transfers: redb::Table<'t, u128, &'static [u8]>,
    pub(super) receipts: redb::Table<'t, u128, &'static str>,
    pub(super) campaigns: redb::Table<'t, u128, &'static str>,
    pub(super) drawers: redb::Table<'t, &'static str, &'static [u8]>,
    pub(super) sessions: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    pub(super) receipt_codes: redb::Table<'t, u128, &'static str>,
}

impl<'t> Projections<'t> {
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Self {
            budgets: txn.open_table(FLEET_BUDGETS)?,
            offline: txn.open_table(FLEET_OFFLINE)?,
            stock: txn.open_table(FLEET_STOCK)?,
            orders: txn.open_table(ORDER_EVENTS)?,
            transfers: txn.open_table(FLEET_TRANSFERS)?,
            receipts: txn.open_table(FLEET_RECEIPTS)?,
            campaigns: txn.open_table(FLEET_CAMPAIGNS)?,
            drawers: txn.open_table(FLEET_DRAWERS)?,
            sessions: txn.open_table(FLEET_SESSIONS)?,
            receipt_codes: txn.open_table(FLEET_RECEIPT_CODES)?,
        })
    }
}

/// The order an event belongs to, for the order lookup (reservations, payments and shipping
/// are keyed by their order).
pub(super) fn order_of(event: &Event) -> Option<fusion_contracts::OrderId> {
    let topic = event.topic();
    let keyed_by_order = topic.starts_with("order.")
        || topic.starts_with("payment.")
        || topic.starts_with("receipt.")
        || topic.starts_with("shipping.")
        || matches!(
            topic,
            "inventory.reserved"
                | "inventory.released"
                | "inventory.insufficient"
                | "inventory.backordered"
        );
    keyed_by_order
        .then(|| fusion_contracts::OrderId::parse(&event.key()))
        .flatten()
}

/// A holder's level of `sku` in the stock projection (its `updated_at` is not kept).
pub(super) fn stock_level(
    stock: &impl ReadableTable<(&'static str, &'static str), (u64, u64)>,
    holder: &str,
    sku: &str,
) -> Result<StockLevel, redb::StorageError> {
    let (available, reserved) = stock.get((holder, sku))?.map_or((0, 0), |v| v.value());
    Ok(StockLevel {
        available,
        reserved,
        updated_at: Timestamp::default(),
    })
}

/// Folds one stored event into the projections, by the rulebook's folds (the same a till
/// uses). An event a fold refuses changes nothing: `Ok(Err(refused))`.
pub(super) fn project(
    p: &mut Projections<'_>,
    origin: &str,
    e: &Envelope,
) -> Result<Result<(), Refused>, redb::StorageError> {
    let at = e.occurred_at;
    let skus = inventory::skus_of(&e.event);
    if !skus.is_empty() {
        let mut levels = BTreeMap::new();
        for sku in skus {
            levels.insert(sku.clone(), stock_level(&p.stock, origin, sku.as_str())?);
        }
        if let Err(refused) = inventory::apply_all(&mut levels, &e.event, at) {
            return Ok(Err(refused));
        }
        for (sku, level) in levels {
            p.stock
                .insert((origin, sku.as_str()), (level.available, level.reserved))?;
        }
    }
    if let Some(currency) = payments::budget_currency(&e.event) {
        let code = currency.to_string();
        let (configured, held) = p
            .budgets
            .get((origin, code.as_str()))?
            .map_or((0, 0), |v| v.value());
        let mut budget = payments::Budget { configured, held };
        if let Err(refused) = payments::apply_budget(&mut budget, &e.event) {
            return Ok(Err(refused));
        }
        p.budgets
            .insert((origin, code.as_str()), (budget.configured, budget.held))?;
    }
    if matches!(
        e.event,
        Event::SessionOpened(_) | Event::SessionCashMoved(_) | Event::SessionClosed(_)
    ) {
        // A till's drawer, by the rulebook's fold: only its own, only its next Z.
        let mut state: drawer::Drawer = match p.drawers.get(origin)? {
            // The hub's own row: unreadable is a damaged store, never a fresh drawer.
            Some(v) => serde_json::from_slice(v.value())
                .map_err(|e| redb::StorageError::Corrupted(format!("fleet_drawers: {e}")))?,
            None => drawer::Drawer::default(),
        };
        let till = match fusion_contracts::NodeId::new(origin) {
            Ok(till) => till,
            Err(err) => {
                return Ok(Err(Refused::Drawer {
                    topic: e.event.topic(),
                    reason: err.to_string(),
                }));
            }
        };
        if let Err(refused) = drawer::apply(&mut state, &till, e.seq, &e.event) {
            return Ok(Err(refused));
        }
        let json = serde_json::to_vec(&state).expect("a drawer serializes");
        p.drawers.insert(origin, json.as_slice())?;
        if let Event::SessionClosed(z) = &e.event {
            let json = serde_json::to_vec(z).expect("a Z report serializes");
            p.sessions.insert((origin, z.z), json.as_slice())?;
        }
    }
    if let Event::ReceiptEmailed(r) = &e.event {
        // Only a request its own till took.
        let till = fusion_contracts::NodeId::new(origin).map_err(|err| {
            redb::StorageError::Corrupted(format!("fleet_events: origin {origin}: {err}"))
        })?;
        if let Err(refused) = receipts::apply_email(&till, r) {
            return Ok(Err(refused));
        }
    }
    match &e.event {
        Event::StockTransferred(t) => {
            let record = Transfer {
                transfer_id: t.transfer_id,
                sku: t.sku.to_string(),
                from: origin.to_string(),
                to: t.to.to_string(),
                quantity: t.quantity,
                at,
                received: false,
            };
            let json = serde_json::to_vec(&record).expect("a transfer serializes");
            p.transfers
                .insert(t.transfer_id.as_u128(), json.as_slice())?;
        }
        Event::StockReceived(r) => {
            p.receipts.insert(r.transfer_id.as_u128(), origin)?;
        }
        Event::CampaignCreated(c) if p.campaigns.get(c.campaign_id.as_u128())?.is_none() => {
            p.campaigns.insert(c.campaign_id.as_u128(), origin)?;
        }
        Event::PaymentOfflineApproved(a) => {
            let minor = match fusion_contracts::Money::from_decimal(a.amount, a.currency) {
                Ok(m) => m.minor,
                Err(err) => {
                    return Ok(Err(Refused::Amount {
                        topic: e.event.topic(),
                        reason: err.to_string(),
                    }));
                }
            };
            let approval = OfflineApproval {
                origin: origin.to_string(),
                currency: a.currency,
                minor,
            };
            let json = serde_json::to_vec(&approval).expect("an approval serializes");
            p.offline.insert(a.payment_id.as_u128(), json.as_slice())?;
        }
        // The provider settled it (or it was dropped): no longer exposure.
        Event::PaymentSucceeded(fusion_contracts::events::PaymentSucceeded {
            payment_id, ..
        })
        | Event::PaymentFailed(fusion_contracts::events::PaymentFailed { payment_id, .. })
        | Event::PaymentAuthorized(fusion_contracts::events::PaymentAuthorized {
            payment_id,
            ..
        })
        | Event::PaymentVoided(fusion_contracts::events::PaymentVoided { payment_id, .. })
        | Event::PaymentRefunded(fusion_contracts::events::PaymentRefunded {
            payment_id, ..
        }) => {
            p.offline.remove(payment_id.as_u128())?;
        }
        Event::StockReclaimed(r) => {
            let key = (r.from.as_str(), r.sku.as_str());
            if p.stock.get(key)?.is_some() {
                let mut lost = stock_level(&p.stock, key.0, key.1)?;
                inventory::apply_reclaimed(&mut lost, at);
                p.stock.insert(key, (lost.available, lost.reserved))?;
            }
            for id in &r.transfers {
                p.receipts.insert(id.as_u128(), origin)?;
            }
        }
        _ => {}
    }
    if let Some(order) = order_of(&e.event) {
        p.orders.insert((order.as_u128(), origin, e.seq), ())?;
    }
    Ok(Ok(()))
}

/// Rebuilds the projections from the fleet log when they were built by another version (or
/// never: a hub store from before they existed).
/// Returns the events a fold refused on the way (folded into nothing: stored by a hub from
/// before refused events were kept out of the log).
pub(super) fn rebuild_projections(
    txn: &redb::WriteTransaction,
) -> Result<Vec<Refused>, HubStoreError> {
    let mut meta = txn.open_table(META).map_err(storage)?;
    let built = meta.get("projections").map_err(storage)?.map(|v| v.value());
    if built == Some(PROJECTIONS_VERSION) {
        return Ok(Vec::new());
    }
    txn.delete_table(FLEET_BUDGETS_V3).map_err(storage)?;
    let mut p = Projections::open(txn).map_err(storage)?;
    p.stock.retain(|_, _| false).map_err(storage)?;
    p.budgets.retain(|_, _| false).map_err(storage)?;
    p.offline.retain(|_, _| false).map_err(storage)?;
    p.orders.retain(|_, _| false).map_err(storage)?;
    p.transfers.retain(|_, _| false).map_err(storage)?;
    p.receipts.retain(|_, _| false).map_err(storage)?;
    p.campaigns.retain(|_, _| false).map_err(storage)?;
    p.drawers.retain(|_, _| false).map_err(storage)?;
    p.sessions.retain(|_, _| false).map_err(storage)?;
    p.receipt_codes.retain(|_, _| false).map_err(storage)?;
    let events = txn.open_table(FLEET_EVENTS).map_err(storage)?;
    let mut refused = Vec::new();
    // Each entry's hash, chained from its origin's first (for the receipts' codes).
    let mut chain: Option<(String, journal::Hash)> = None;
    for entry in events.iter().map_err(storage)? {
        let (key, bytes) = entry.map_err(storage)?;
        let (origin, seq) = key.value();
        let envelope = Envelope::decode(bytes.value()).map_err(storage)?;
        let prev = match &chain {
            Some((o, h)) if o == origin => *h,
            _ => journal::GENESIS,
        };
        let hash = journal::entry_hash(&prev, &envelope.origin, seq, bytes.value());
        chain = Some((origin.to_string(), hash));
        match project(&mut p, origin, &envelope).map_err(storage)? {
            Ok(()) => record_receipt_code(&mut p, &envelope, &hash).map_err(storage)?,
            Err(r) => refused.push(r),
        }
    }
    meta.insert("projections", PROJECTIONS_VERSION)
        .map_err(storage)?;
    Ok(refused)
}

/// Keeps the verification code of a till's receipt: `hash` is its `receipt.issued` entry's.
pub(super) fn record_receipt_code(
    p: &mut Projections<'_>,
    e: &Envelope,
    hash: &journal::Hash,
) -> Result<(), redb::StorageError> {
    if let Event::ReceiptIssued(r) = &e.event {
        let code = receipts::verification_code(e.seq, hash);
        p.receipt_codes
            .insert(r.order_id.as_u128(), code.as_str())?;
    }
    Ok(())
}

/// A card payment approved offline and not settled yet ([`FLEET_OFFLINE`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct OfflineApproval {
    pub(super) origin: String,
    pub(super) currency: fusion_contracts::Currency,
    pub(super) minor: i64,
}
