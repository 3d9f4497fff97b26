//! The hub's store: one redb file with the fleet's events by (origin, seq) and each origin's
//! durable position. The only module of the hub that imports redb. A batch of received events is
//! one durable transaction; the receiver acknowledges only after it committed.

use std::collections::BTreeMap;
use std::path::Path;

use fusion_contracts::commands::{ReceiveStock, TransferSeats, TransferStock};
use fusion_contracts::events::StockReclaimed;
use fusion_contracts::{
    CampaignId, CorrelationId, Envelope, Event, EventId, NodeId, Sku, StoreId, Timestamp,
};
use fusion_rules::campaigns::{CampaignRejected, SharedCampaign};
use fusion_rules::escrow::{hub_holder, hub_origin};
use fusion_rules::inventory::{self, LostHolding, StockLevel, TillLevel, TransferRejected};
use fusion_rules::{Refused, payments};
use fusion_sync::Refusals;
use fusion_sync::clock::{Clock, system_clock};
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
/// (origin, currency) → (configured, held) minor units: the offline card budget of each till
/// (`payments::Budget`, folded by the rulebook's `apply_budget`, as on the till).
const FLEET_BUDGETS: TableDefinition<(&str, &str), (i64, i64)> =
    TableDefinition::new("fleet_budgets_v4");
/// The budget table of projections v3 (held only), dropped when v4 is built.
const FLEET_BUDGETS_V3: TableDefinition<(&str, &str), i64> = TableDefinition::new("fleet_budgets");
/// Payment id → JSON [`OfflineApproval`]: card payments a till approved offline that the
/// provider has not settled yet (as far as the hub has seen): the budget's exposure.
const FLEET_OFFLINE: TableDefinition<u128, &[u8]> = TableDefinition::new("fleet_offline");
/// Origin → the sync endpoint (as text) that delivered its events: whom to revoke when a
/// manager reclaims a lost till's rights.
const ORIGIN_PEERS: TableDefinition<&str, &str> = TableDefinition::new("origin_peers");
/// Campaign id → JSON [`HubCampaign`]: the seats of campaigns shared between holders, what
/// each holder's part ended with, and the hub's decision (made once, in its own log).
const HUB_CAMPAIGNS: TableDefinition<u128, &[u8]> = TableDefinition::new("hub_campaigns");
/// `projections` → the version the projection tables were built with.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Bump when a projection changes meaning: they are rebuilt from the fleet log on open.
const PROJECTIONS_VERSION: u64 = 4;
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
    /// Whether the receiver took it in, or a reclaim voided it (as far as the hub has seen).
    #[serde(default)]
    pub received: bool,
}

/// The projection tables one write transaction updates with each stored event.
struct Projections<'t> {
    budgets: redb::Table<'t, (&'static str, &'static str), (i64, i64)>,
    offline: redb::Table<'t, u128, &'static [u8]>,
    stock: redb::Table<'t, (&'static str, &'static str), (u64, u64)>,
    orders: redb::Table<'t, (u128, &'static str, u64), ()>,
    transfers: redb::Table<'t, u128, &'static [u8]>,
    receipts: redb::Table<'t, u128, &'static str>,
}

impl<'t> Projections<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Self {
            budgets: txn.open_table(FLEET_BUDGETS)?,
            offline: txn.open_table(FLEET_OFFLINE)?,
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
            "inventory.reserved"
                | "inventory.released"
                | "inventory.insufficient"
                | "inventory.backordered"
        );
    keyed_by_order
        .then(|| fusion_contracts::OrderId::parse(&event.key()))
        .flatten()
}

/// The tables the hub's own events go into, within one write transaction; `now` is the
/// transaction's time (read once from the hub's clock).
struct OwnLog<'t> {
    now: Timestamp,
    campaigns: redb::Table<'t, u128, &'static [u8]>,
    fleet: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    positions: redb::Table<'t, &'static str, u64>,
    stores: redb::Table<'t, &'static str, &'static str>,
    projections: Projections<'t>,
}

impl<'t> OwnLog<'t> {
    fn open(txn: &'t redb::WriteTransaction, now: Timestamp) -> Result<Self, redb::TableError> {
        Ok(Self {
            now,
            campaigns: txn.open_table(HUB_CAMPAIGNS)?,
            fleet: txn.open_table(FLEET_EVENTS)?,
            positions: txn.open_table(POSITIONS)?,
            stores: txn.open_table(ORIGIN_STORES)?,
            projections: Projections::open(txn)?,
        })
    }

    /// Appends one event of the hub's `origin` (numbered after its last) and projects it.
    /// The hub decided it against these projections, so a fold refusing it is a broken
    /// invariant.
    fn append(
        &mut self,
        origin: &NodeId,
        event: Event,
        correlation_id: CorrelationId,
        causation_id: Option<uuid::Uuid>,
    ) -> Result<Envelope, HubStoreError> {
        let seq = self
            .positions
            .get(origin.as_str())
            .map_err(storage)?
            .map_or(0, |v| v.value())
            + 1;
        let envelope = Envelope::new(
            EventId(uuid::Uuid::now_v7()),
            origin.clone(),
            seq,
            self.now,
            correlation_id,
            causation_id,
            event,
        )
        .map_err(storage)?;
        self.fleet
            .insert((origin.as_str(), seq), envelope.encode().as_slice())
            .map_err(storage)?;
        self.positions
            .insert(origin.as_str(), seq)
            .map_err(storage)?;
        project(&mut self.projections, origin.as_str(), &envelope)
            .map_err(storage)?
            .map_err(|refused| storage(format!("the hub's own event refused: {refused}")))?;
        Ok(envelope)
    }

    /// Appends an event of the hub's holder of `store`, which is one more holder of that
    /// store for every projection.
    fn append_held(
        &mut self,
        holder: &NodeId,
        store: &StoreId,
        event: Event,
        correlation_id: CorrelationId,
        causation_id: Option<uuid::Uuid>,
    ) -> Result<Envelope, HubStoreError> {
        self.stores
            .insert(holder.as_str(), store.as_str())
            .map_err(storage)?;
        self.append(holder, event, correlation_id, causation_id)
    }

    /// A holder's level of `sku`, as the hub folded it.
    fn level(&self, holder: &str, sku: &str) -> Result<StockLevel, HubStoreError> {
        stock_level(&self.projections.stock, holder, sku).map_err(storage)
    }

    fn campaign(&self, id: CampaignId) -> Result<Option<SharedCampaign>, HubStoreError> {
        match self.campaigns.get(id.as_u128()).map_err(storage)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(storage)?)),
            None => Ok(None),
        }
    }

    fn put_campaign(&mut self, row: &SharedCampaign) -> Result<(), HubStoreError> {
        let json = serde_json::to_vec(row).map_err(storage)?;
        self.campaigns
            .insert(row.campaign.id.as_u128(), json.as_slice())
            .map_err(storage)?;
        Ok(())
    }

    fn store_of(&self, origin: &str) -> Result<Option<StoreId>, HubStoreError> {
        match self.stores.get(origin).map_err(storage)? {
            Some(v) => Ok(Some(StoreId::new(v.value()).map_err(storage)?)),
            None => Ok(None),
        }
    }
}

/// A holder's level of `sku` in the stock projection (its `updated_at` is not kept).
fn stock_level(
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
fn project(
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
/// Returns the events a fold refused on the way (folded into nothing, as when they arrived).
fn rebuild_projections(txn: &redb::WriteTransaction) -> Result<Vec<Refused>, HubStoreError> {
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
    let events = txn.open_table(FLEET_EVENTS).map_err(storage)?;
    let mut refused = Vec::new();
    for entry in events.iter().map_err(storage)? {
        let (key, bytes) = entry.map_err(storage)?;
        let envelope = Envelope::decode(bytes.value()).map_err(storage)?;
        if let Err(r) = project(&mut p, key.value().0, &envelope).map_err(storage)? {
            refused.push(r);
        }
    }
    meta.insert("projections", PROJECTIONS_VERSION)
        .map_err(storage)?;
    Ok(refused)
}

pub struct HubStore {
    db: Database,
    /// The hub's own origin (from the identity in the same data dir); its holders of each
    /// store's rights are derived from it (`escrow::hub_holder`).
    origin: NodeId,
    /// Woken after every commit that added events (the Kafka exporter waits on it).
    appended: std::sync::Arc<tokio::sync::Notify>,
    /// What "now" is for the hub's own events and decisions (tests pass a fixed clock).
    clock: Clock,
    /// Tills' events a fold refused (stored, folded into nothing), by rule.
    refusals: Refusals,
}

impl HubStore {
    /// Opens (or creates) the hub's store in `dir`, on the system clock.
    pub fn open(dir: &Path) -> Result<Self, HubStoreError> {
        Self::open_with_clock(dir, system_clock())
    }

    /// Opens (or creates) the hub's store in `dir`; `clock` is the hub's time.
    pub fn open_with_clock(dir: &Path, clock: Clock) -> Result<Self, HubStoreError> {
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
        txn.open_table(ORIGIN_PEERS).map_err(storage)?;
        txn.open_table(HUB_CAMPAIGNS).map_err(storage)?;
        let refused = rebuild_projections(&txn)?;
        txn.commit().map_err(storage)?;
        let identity = fusion_sync::net::load_or_create_identity(dir).map_err(storage)?;
        let refusals = Refusals::default();
        for r in &refused {
            tracing::warn!(refused = %r, "a stored event refused while rebuilding projections");
            refusals.count(r.rule());
        }
        Ok(Self {
            db,
            origin: hub_origin(&identity.public().to_string()),
            appended: Default::default(),
            clock,
            refusals,
        })
    }

    /// The hub's time now.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Tills' events refused by a rule so far (stored, folded into nothing), by rule.
    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        self.refusals.snapshot()
    }

    /// The hub's own origin: its edits and decisions are events of this origin.
    pub fn origin(&self) -> &NodeId {
        &self.origin
    }

    /// The hub's holder of `store`'s rights (the online channel of that store).
    pub fn holder(&self, store: &StoreId) -> NodeId {
        hub_holder(&self.origin, store)
    }

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
            let mut own = OwnLog::open(&txn, at).map_err(storage)?;
            for (event, correlation_id) in events {
                own.append(origin, event, correlation_id, None)?;
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

    /// Each till's stock and every transfer, from one snapshot: held and in transit add up.
    pub fn escrow_snapshot(&self) -> Result<(Vec<TillStock>, Vec<Transfer>), HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        Ok((self.till_stock_in(&read)?, self.transfers_in(&read)?))
    }

    /// Every stock transfer the hub has seen, oldest first, each marked received or not.
    fn transfers_in(&self, read: &redb::ReadTransaction) -> Result<Vec<Transfer>, HubStoreError> {
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

    fn till_stock_in(&self, read: &redb::ReadTransaction) -> Result<Vec<TillStock>, HubStoreError> {
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

/// A card payment approved offline and not settled yet ([`FLEET_OFFLINE`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct OfflineApproval {
    origin: String,
    currency: fusion_contracts::Currency,
    minor: i64,
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
fn seats_refusal(rejected: CampaignRejected) -> EscrowRefusal {
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

/// What a reclaim did ([`HubStore::reclaim`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reclaim {
    pub node_id: String,
    pub store_id: String,
    /// The holder that took the rights over.
    pub holder: String,
    /// The lost till's sync endpoint, now revoked (`None`: the hub never learnt it).
    pub revoked: Option<String>,
    /// Its last seq that counts.
    pub upto: u64,
    pub reclaimed: Vec<StockReclaimed>,
    /// Shared campaigns whose part at the lost till is ended by the reclaim (with the
    /// participants its log showed up to `upto`), so their decision is not blocked by it.
    pub campaigns: Vec<CampaignId>,
}

impl HubStore {
    /// Follows a stored event's seat movements by the rulebook ([`SharedCampaign::follow`]):
    /// takes in seats given to the hub, records who holds seats and whose part ended, and
    /// decides the campaign once every holder's part has ended. The hub's events go into its
    /// own log, which every till pulls.
    fn follow_seats(
        &self,
        own: &mut OwnLog<'_>,
        origin: &NodeId,
        envelope: &Envelope,
    ) -> Result<(), HubStoreError> {
        let Some(snapshot) = SharedCampaign::snapshot_of(&envelope.event) else {
            return Ok(());
        };
        let mut row = own
            .campaign(snapshot.id)?
            .unwrap_or_else(|| SharedCampaign::new(snapshot.clone()));
        let events = row.follow(&self.origin, origin, &envelope.event, own.now);
        for event in events {
            own.append(
                &self.origin,
                event,
                envelope.correlation_id.clone(),
                Some(envelope.event_id.0),
            )?;
        }
        own.put_campaign(&row)
    }

    /// Ends the part of a lost till in every shared campaign it holds seats of and had not
    /// ended: its participants are those its log shows up to `upto` (joins minus leaves).
    /// Each campaign is then decided if every other holder has ended too.
    fn end_lost_parts(
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
                txn.open_table(ENROLLMENTS)
                    .map_err(storage)?
                    .remove(endpoint.as_str())
                    .map_err(storage)?;
                txn.open_table(REVOCATIONS)
                    .map_err(storage)?
                    .insert(endpoint.as_str(), own.now.unix_ms())
                    .map_err(storage)?;
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
                    let pool = available.saturating_sub(keep);
                    if pool == 0 {
                        continue;
                    }
                    let mut levels: Vec<TillLevel> = Vec::new();
                    for origin in &origins {
                        let level = own.level(origin, &sku)?;
                        levels.push((origin.clone(), level.available, level.reserved));
                    }
                    let sku = Sku::new(sku).map_err(storage)?;
                    for (to, quantity) in inventory::rebalance_shares(pool, &levels) {
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
                        // The shares never add up to more than the pool the hub holds.
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
fn give(
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
    /// Counts and logs a till's event a fold refused.
    fn refuse(&self, origin: &NodeId, seq: u64, refused: &Refused) {
        self.refusals.count(refused.rule());
        tracing::warn!(%origin, seq, %refused, "a till's event refused");
    }

    /// The hub's holder takes in a transfer a till addressed to it, by the rule a till takes
    /// in its own ([`inventory::receive`]).
    fn take_in(
        &self,
        own: &mut OwnLog<'_>,
        holder: &NodeId,
        store: &StoreId,
        origin: &NodeId,
        envelope: &Envelope,
        t: &fusion_contracts::events::StockTransferred,
    ) -> Result<(), HubStoreError> {
        let level = own.level(holder.as_str(), t.sku.as_str())?;
        let cmd = ReceiveStock {
            transfer_id: t.transfer_id,
            sku: t.sku.clone(),
            quantity: t.quantity,
            from: origin.clone(),
        };
        match inventory::receive(&cmd, &level) {
            Ok(events) => {
                for event in events {
                    own.append_held(
                        holder,
                        store,
                        event,
                        envelope.correlation_id.clone(),
                        Some(envelope.event_id.0),
                    )?;
                }
            }
            Err(rejected) => {
                tracing::error!(%origin, %rejected, "a transfer to the hub could not be taken in");
            }
        }
        Ok(())
    }

    /// Stores a batch of one origin's events in one durable transaction; see [`EventSink::store`].
    /// Transfers addressed to one of the hub's holders are taken in in the same transaction, so
    /// each is taken in once and never lost.
    fn store_events(
        &self,
        peer: EndpointId,
        origin: &NodeId,
        envelopes: Vec<Envelope>,
    ) -> Result<u64, String> {
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        let position = {
            let mut own = OwnLog::open(&txn, self.now()).map_err(|e| e.to_string())?;
            if own
                .stores
                .get(origin.as_str())
                .map_err(|e| e.to_string())?
                .is_none()
            {
                let enrollments = txn.open_table(ENROLLMENTS).map_err(|e| e.to_string())?;
                if let Some(store) = enrollments
                    .get(peer.to_string().as_str())
                    .map_err(|e| e.to_string())?
                {
                    own.stores
                        .insert(origin.as_str(), store.value())
                        .map_err(|e| e.to_string())?;
                }
                txn.open_table(ORIGIN_PEERS)
                    .map_err(|e| e.to_string())?
                    .insert(origin.as_str(), peer.to_string().as_str())
                    .map_err(|e| e.to_string())?;
            }
            let store = own.store_of(origin.as_str()).map_err(|e| e.to_string())?;
            let mut position = own
                .positions
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
                own.fleet
                    .insert(
                        (origin.as_str(), envelope.seq),
                        envelope.encode().as_slice(),
                    )
                    .map_err(|e| e.to_string())?;
                let folded = project(&mut own.projections, origin.as_str(), &envelope)
                    .map_err(|e| e.to_string())?;
                position = envelope.seq;
                // Recorded now, so the receipt below comes after it in the hub's log.
                own.positions
                    .insert(origin.as_str(), position)
                    .map_err(|e| e.to_string())?;
                if let Err(refused) = folded {
                    // Held in the origin's log (a gapless replica of its journal, exported as
                    // it is) but folded into nothing, and nothing it asks of the hub is done.
                    self.refuse(origin, envelope.seq, &refused);
                    continue;
                }
                if let (Event::StockTransferred(t), Some(store)) = (&envelope.event, &store) {
                    let holder = self.holder(store);
                    if t.to == holder {
                        self.take_in(&mut own, &holder, store, origin, &envelope, t)
                            .map_err(|e| e.to_string())?;
                    }
                }
                self.follow_seats(&mut own, origin, &envelope)
                    .map_err(|e| e.to_string())?;
            }
            position
        };
        txn.commit().map_err(|e| e.to_string())?;
        self.appended.notify_waiters();
        Ok(position)
    }
}
