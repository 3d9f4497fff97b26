//! Table definitions, record codecs and the readers shared by the writer and by queries.
//!
//! Keys: uuids as u128, skus as str, the log by sequence number. Values are postcard records.
//! The layout is versioned by `FORMAT_VERSION` in the `meta` table.

use std::collections::HashMap;
use std::path::Path;

use fusion_contracts::events::ProductStatus;
use fusion_contracts::{
    CampaignId, CorrelationId, NodeId, OrderId, PaymentId, ProductId, ShipmentId, Sku, TokenId,
};
use redb::{
    Database, ReadableDatabase, ReadableTable, Table, TableDefinition, TableHandle,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, FORMAT_VERSIONS_UPGRADABLE, Grant, OpenError, StoreError, TokenInfo};
use crate::domain::payments::CreditAccount;
use crate::domain::{Campaign, Order, Payment, Product, Reservation, Shipment, StockLevel};

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Product id → [`StoredProduct`].
pub(super) const PRODUCTS: TableDefinition<u128, &[u8]> = TableDefinition::new("products");
/// Sku → product id: skus are unique across all products, archived ones included.
pub(super) const PRODUCT_SKUS: TableDefinition<&str, u128> = TableDefinition::new("product_skus");
/// Product id → (), for active products. Product ids are UUIDv7, so this is creation order,
/// also for products created at other tills or at the hub.
pub(super) const PRODUCT_LIST: TableDefinition<u128, ()> = TableDefinition::new("product_list");
/// `docs`: (document id, chunk index) → automerge bytes, chunk 0 a whole save, then incremental
/// saves (`fusion_sync::docs::Chunk`); the product tables are projections of these documents.
/// `doc_heads`: document id → its heads after its last stored chunk, written with the chunks:
/// what sync sessions compare, with no document loaded. Defined with the code that reads them
/// (`fusion_sync::docs::stored`), the same at the hub.
pub(super) use fusion_sync::docs::stored::{DOC_HEADS, DOCS};
/// (origin, seq) → postcard `Envelope`: the event logs of this store's other tills.
pub(super) const PEER_EVENTS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("peer_events");
/// Origin → last seq held in `peer_events` (every earlier one is held too).
pub(super) const PEER_POSITIONS: TableDefinition<&str, u64> =
    TableDefinition::new("peer_positions");
/// Endpoint id → when the hub revoked it (Unix ms), folded from `fleet.node.revoked` in the
/// hub's log (`fleet.node.enrolled` removes it): refused as a peer from then on.
pub(super) const REVOKED_PEERS: TableDefinition<&str, i64> = TableDefinition::new("revoked_peers");
/// Origin → the entry hash of its event at `peer_positions` (the head of its journal as held).
pub(super) const PEER_HEADS: TableDefinition<&str, &[u8; 32]> = TableDefinition::new("peer_heads");
/// Order id → [`PeerOrder`]: orders taken at the store's other tills, folded from their events.
pub(super) const PEER_ORDERS: TableDefinition<u128, &[u8]> = TableDefinition::new("peer_orders");
/// Transfer id → postcard (sku, to, quantity, at): stock rights this node gave away (a
/// projection of its own `inventory.transferred` events). In transit until the receiver's
/// receipt is in `peer_receipts`.
pub(super) const TRANSFERS_OUT: TableDefinition<u128, &[u8]> =
    TableDefinition::new("transfers_out");
/// Transfer id → the origin that received it: `inventory.received` events of the store's
/// other tills (folded from `peer_events`).
pub(super) const PEER_RECEIPTS: TableDefinition<u128, &str> = TableDefinition::new("peer_receipts");
/// Campaign id → postcard [`Seats`](crate::domain::campaigns::Seats): this till's seats of a
/// campaign (free, shared with other holders, its part ended), from its own log.
pub(super) const CAMPAIGN_SEATS: TableDefinition<u128, &[u8]> =
    TableDefinition::new("campaign_seats");
/// (order id, sku) → (seq of its `inventory.backordered`, units still owed): backorders this
/// till took, filled oldest first as its stock grows.
pub(super) const BACKORDERS: TableDefinition<(u128, &str), (u64, u64)> =
    TableDefinition::new("backorders");
/// Currency code → (configured, held) minor units: this till's share of the store's offline
/// card budget as last configured (`payment.offline_budget_set`), and what it holds after the
/// budget it gave away and took in (`payment.offline_budget_transferred|received`).
pub(super) const OFFLINE_BUDGET: TableDefinition<&str, (i64, i64)> =
    TableDefinition::new("offline_budget");

/// The offline card budget this till holds in `currency` (minor units), if it has one.
pub(super) fn held_budget(
    table: &impl ReadableTable<&'static str, (i64, i64)>,
    currency: fusion_contracts::Currency,
) -> Result<Option<i64>, StoreError> {
    Ok(table
        .get(currency.to_string().as_str())?
        .map(|v| v.value().1))
}

/// This till's recorded offline card budget in `currency` (zero when none is).
pub(super) fn budget(
    table: &impl ReadableTable<&'static str, (i64, i64)>,
    currency: fusion_contracts::Currency,
) -> Result<crate::domain::payments::Budget, StoreError> {
    let (configured, held) = table
        .get(currency.to_string().as_str())?
        .map_or((0, 0), |v| v.value());
    Ok(crate::domain::payments::Budget { configured, held })
}
/// (origin, sku) → [`StockLevel`]: the stock rights of the store's other tills, folded from
/// `peer_events` (what this till knows of them).
pub(super) const PEER_STOCK: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("peer_stock");
/// Till origin → the endpoint id that first delivered its events: only that endpoint may speak
/// for it, and its journal must verify under that endpoint's key.
pub(super) const PEER_ORIGIN_PEERS: TableDefinition<&str, &str> =
    TableDefinition::new("peer_origin_peers");
/// Campaign id → the till origin whose journal created it (first seen wins): that till's
/// endpoint and the hub may change its document.
pub(super) const PEER_CAMPAIGNS: TableDefinition<u128, &str> =
    TableDefinition::new("peer_campaigns");
/// Sku → [`StockLevel`].
pub(super) const STOCK: TableDefinition<&str, &[u8]> = TableDefinition::new("stock");
/// Order id → the order's [`Reservation`]s, one per sku. One row per order: an order's
/// reservations are written and released together.
pub(super) const RESERVATIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("reservations");
/// Order id → [`Order`].
pub(super) const ORDERS: TableDefinition<u128, &[u8]> = TableDefinition::new("orders");
/// Order id → postcard [`ReturnRights`](crate::domain::returns::ReturnRights): who holds the
/// order's return rights and what was returned, for this till's orders and its peers' (no row:
/// none returned, the rights with the till that sold it).
pub(super) const ORDER_RETURNS: TableDefinition<u128, &[u8]> =
    TableDefinition::new("order_returns");
/// Payment id → minor units of refunds this till's returns owe the payment and have not made
/// yet (a card's part of a refund to the original tenders, until the provider refunds it); no
/// row: nothing owed. The payment is on the follow-up list while it owes.
pub(super) const REFUNDS_OWED: TableDefinition<u128, i64> = TableDefinition::new("refunds_owed");
/// Till → the last receipt number it issued (`receipt.issued`, this till's and its peers').
pub(super) const RECEIPT_HEADS: TableDefinition<&str, u64> = TableDefinition::new("receipt_heads");
/// Order id → postcard `ReceiptIssued`: the order's receipt (this till's orders and its
/// peers').
pub(super) const ORDER_RECEIPTS: TableDefinition<u128, &[u8]> =
    TableDefinition::new("order_receipts");
/// Log position of `order.created` → order id: read backwards for newest first.
/// Receipt number (`<till>-<n>`) → order id: a receipt looked up by what it prints.
pub(super) const RECEIPT_ORDERS: TableDefinition<&str, u128> =
    TableDefinition::new("receipt_orders");
/// (order id, till) → how many times that till printed the order's receipt.
pub(super) const RECEIPT_PRINTS: TableDefinition<(u128, &str), u64> =
    TableDefinition::new("receipt_prints");
/// Order id → the staff member who sold it (orders sold by a signed-in member, this till's and
/// its peers').
pub(super) const ORDER_STAFF: TableDefinition<u128, &str> = TableDefinition::new("order_staff");
/// Order id → the seq of this till's `receipt.issued` for it: the receipt's verification code is
/// that entry's hash in the signed journal.
pub(super) const RECEIPT_SEQS: TableDefinition<u128, u64> = TableDefinition::new("receipt_seqs");
/// Return id → postcard `OrderReturned`: every return this store holds (this till's and its
/// peers'), for its slip.
pub(super) const RETURNS: TableDefinition<u128, &[u8]> = TableDefinition::new("returns");
/// Till → postcard `fusion_rules::drawer::Drawer`: its drawer as its log leaves it (this
/// till's and its peers').
pub(super) const DRAWERS: TableDefinition<&str, &[u8]> = TableDefinition::new("drawers");
/// Session id (uuid v7: in time order) → postcard `drawer::SessionRow`.
pub(super) const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions");
pub(super) const ORDER_LIST: TableDefinition<u64, u128> = TableDefinition::new("order_list");
/// This node's event log, its journal: seq → entry hash (32 bytes) ‖ tag ‖ the checkpoint
/// signature (64 bytes) when a commit ended there ‖ postcard `Envelope` (`store::journal`).
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// First seq signed → the public key (32 bytes) that signs the journal from there on.
pub(super) const JOURNAL_KEYS: TableDefinition<u64, &[u8]> = TableDefinition::new("journal_keys");
/// Idempotency key → [`IdempotencyRecord`].
pub(super) const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// (stored at ms, key): the keys in expiry order.
pub(super) const IDEMPOTENCY_EXPIRY: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("idempotency_expiry");
/// SHA-256 of a token → [`TokenInfo`]. Secrets are never stored.
pub(super) const TOKENS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("tokens");

/// Campaign id → [`StoredCampaign`].
pub(super) const CAMPAIGNS: TableDefinition<u128, &[u8]> = TableDefinition::new("campaigns");
/// Log position of `group-commerce.campaign.created` → campaign id: the list order.
pub(super) const CAMPAIGN_LIST: TableDefinition<u64, u128> = TableDefinition::new("campaign_list");
/// (campaign id, user id) → joined at (ms): who is in a campaign.
pub(super) const PARTICIPANTS: TableDefinition<(u128, &str), i64> =
    TableDefinition::new("participants");
/// (due at ms, campaign id) → (): campaigns to close, earliest first. A row exists while the
/// campaign is open; closing, failing or cancelling it removes the row in the same commit.
pub(super) const TIMERS: TableDefinition<(i64, u128), ()> = TableDefinition::new("timers");

/// Payment id → [`Payment`].
pub(super) const PAYMENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("payments");
/// (order id, payment id) → (): an order's payments.
pub(super) const ORDER_PAYMENTS: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("order_payments");
/// (created at ms, payment id) → (): card payments the follow-up worker still owes something
/// (pending: an answer; offline-approved: forwarding). Removed in the commit that settles them.
pub(super) const PAYMENT_FOLLOWUPS: TableDefinition<(i64, u128), ()> =
    TableDefinition::new("payment_followups");

/// Shipment id → [`Shipment`].
pub(super) const SHIPMENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("shipments");
/// (order id, shipment id) → (): an order's shipments.
pub(super) const ORDER_SHIPMENTS: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("order_shipments");
/// Tracking number → shipment id: tracking numbers are unique.
pub(super) const TRACKING_NUMBERS: TableDefinition<&str, u128> =
    TableDefinition::new("tracking_numbers");

/// Order id → the correlation id of the request that placed it: every event of the order's
/// chain (payments, shipment, cancellation) carries it.
pub(super) const ORDER_CORRELATIONS: TableDefinition<u128, &str> =
    TableDefinition::new("order_correlations");

/// (hold ends ms, order id) → (): unpaid orders whose stock is held, earliest end first.
pub(super) const ORDER_HOLDS: TableDefinition<(i64, u128), ()> =
    TableDefinition::new("order_holds");

/// Store credit account → [`CreditAccount`].
pub(super) const STORE_CREDIT: TableDefinition<&str, &[u8]> = TableDefinition::new("store_credit");

const META_FORMAT_VERSION: &str = "format_version";
const META_NODE_ID: &str = "node_id";

/// A product (the projection of its document).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredProduct {
    pub product: Product,
}

/// An order taken at another till of the store, and which till (origin) took it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerOrder {
    pub origin: NodeId,
    pub order: Order,
}

/// A campaign, its list position, and the correlation id of the request that created it: every
/// event of its chain (joins aside), up to the orders placed when it closes, carries it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredCampaign {
    pub list_key: u64,
    pub correlation_id: CorrelationId,
    pub campaign: Campaign,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct IdempotencyRecord {
    pub fingerprint: [u8; 32],
    pub stored_at_ms: i64,
    pub decision: super::Decision,
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("encoding into a Vec cannot fail")
}

pub(super) fn decode<T: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

/// Creates the tables and records the format version in a new file, or checks the version of
/// an existing one. Returns the node id and the file's format version: this one, or
/// one of [`FORMAT_VERSIONS_UPGRADABLE`], which opening upgrades.
pub(super) fn init_or_check(db: &Database, path: &Path) -> Result<(NodeId, u32), OpenError> {
    let read = db.begin_read().map_err(StoreError::from)?;
    let existing: Vec<String> = read
        .list_tables()
        .map_err(StoreError::from)?
        .map(|t| t.name().to_string())
        .collect();
    if existing.is_empty() {
        drop(read);
        return Ok((initialize(db)?, FORMAT_VERSION));
    }
    if !existing.iter().any(|t| t == META.name()) {
        return Err(OpenError::Foreign {
            path: path.to_path_buf(),
            reason: "it has no meta table".into(),
        });
    }
    let meta = read.open_table(META).map_err(StoreError::from)?;
    let version = meta
        .get(META_FORMAT_VERSION)
        .map_err(StoreError::from)?
        .ok_or_else(|| OpenError::Foreign {
            path: path.to_path_buf(),
            reason: "it records no format version".into(),
        })?;
    let found = <[u8; 4]>::try_from(version.value())
        .map(u32::from_le_bytes)
        .map_err(|_| OpenError::Foreign {
            path: path.to_path_buf(),
            reason: "its format version is unreadable".into(),
        })?;
    if found != FORMAT_VERSION && !FORMAT_VERSIONS_UPGRADABLE.contains(&found) {
        return Err(OpenError::UnknownFormat {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    let node_id = meta
        .get(META_NODE_ID)
        .map_err(StoreError::from)?
        .ok_or_else(|| OpenError::Foreign {
            path: path.to_path_buf(),
            reason: "it records no node id".into(),
        })?;
    let node_id = String::from_utf8(node_id.value().to_vec())
        .ok()
        .and_then(|s| NodeId::new(s).ok());
    let node_id = node_id.ok_or_else(|| OpenError::Foreign {
        path: path.to_path_buf(),
        reason: "its node id is invalid".into(),
    })?;
    Ok((node_id, found))
}

/// Records the format version an upgrade reached, in `txn`.
pub(super) fn set_format_version(txn: &WriteTransaction, version: u32) -> Result<(), StoreError> {
    txn.open_table(META)?
        .insert(META_FORMAT_VERSION, version.to_le_bytes().as_slice())?;
    Ok(())
}

pub(super) fn initialize(db: &Database) -> Result<NodeId, StoreError> {
    // A node id is random per store: 128 bits, so two stores never share one.
    let node_id = NodeId::new(uuid::Uuid::new_v4().simple().to_string())
        .expect("a simple uuid is a valid node id");
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())?;
        meta.insert(META_NODE_ID, node_id.as_str().as_bytes())?;
    }
    txn.commit()?;
    Ok(node_id)
}

/// Creates every table that does not exist yet, so reads never meet a missing table.
pub(super) fn ensure_tables(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(PRODUCTS)?;
    txn.open_table(PRODUCT_SKUS)?;
    txn.open_table(PRODUCT_LIST)?;
    txn.open_table(STOCK)?;
    txn.open_table(RESERVATIONS)?;
    txn.open_table(ORDERS)?;
    txn.open_table(ORDER_LIST)?;
    txn.open_table(EVENTS)?;
    txn.open_table(JOURNAL_KEYS)?;
    txn.open_table(IDEMPOTENCY)?;
    txn.open_table(IDEMPOTENCY_EXPIRY)?;
    txn.open_table(TOKENS)?;
    txn.open_table(CAMPAIGNS)?;
    txn.open_table(CAMPAIGN_LIST)?;
    txn.open_table(PARTICIPANTS)?;
    txn.open_table(TIMERS)?;
    txn.open_table(PAYMENTS)?;
    txn.open_table(ORDER_PAYMENTS)?;
    txn.open_table(PAYMENT_FOLLOWUPS)?;
    txn.open_table(SHIPMENTS)?;
    txn.open_table(ORDER_SHIPMENTS)?;
    txn.open_table(TRACKING_NUMBERS)?;
    txn.open_table(ORDER_CORRELATIONS)?;
    txn.open_table(ORDER_HOLDS)?;
    txn.open_table(STORE_CREDIT)?;
    txn.open_table(DOCS)?;
    txn.open_table(DOC_HEADS)?;
    txn.open_table(PEER_EVENTS)?;
    txn.open_table(PEER_POSITIONS)?;
    txn.open_table(PEER_HEADS)?;
    txn.open_table(REVOKED_PEERS)?;
    txn.open_table(PEER_ORDERS)?;
    txn.open_table(TRANSFERS_OUT)?;
    txn.open_table(PEER_RECEIPTS)?;
    txn.open_table(PEER_STOCK)?;
    txn.open_table(CAMPAIGN_SEATS)?;
    txn.open_table(BACKORDERS)?;
    txn.open_table(OFFLINE_BUDGET)?;
    txn.open_table(PEER_ORIGIN_PEERS)?;
    txn.open_table(PEER_CAMPAIGNS)?;
    txn.open_table(ORDER_RETURNS)?;
    txn.open_table(REFUNDS_OWED)?;
    txn.open_table(RECEIPT_HEADS)?;
    txn.open_table(ORDER_RECEIPTS)?;
    txn.open_table(RECEIPT_ORDERS)?;
    txn.open_table(RECEIPT_PRINTS)?;
    txn.open_table(ORDER_STAFF)?;
    txn.open_table(RETURNS)?;
    txn.open_table(RECEIPT_SEQS)?;
    txn.open_table(DRAWERS)?;
    txn.open_table(SESSIONS)?;
    txn.commit()?;
    Ok(())
}

pub(super) fn load_grants(db: &Database) -> Result<HashMap<[u8; 32], Grant>, StoreError> {
    let read = db.begin_read()?;
    let tokens = read.open_table(TOKENS)?;
    let mut grants = HashMap::new();
    for entry in tokens.iter()? {
        let (hash, info) = entry?;
        let info: TokenInfo = decode("tokens", info.value())?;
        grants.insert(
            *hash.value(),
            Grant {
                token_id: info.id,
                role: info.role,
            },
        );
    }
    Ok(grants)
}

/// The postcard record under `id` in `table` (named for errors).
fn get_by_id<T: DeserializeOwned>(
    table: &impl ReadableTable<u128, &'static [u8]>,
    name: &'static str,
    id: u128,
) -> Result<Option<T>, StoreError> {
    table.get(id)?.map(|v| decode(name, v.value())).transpose()
}

/// The records an `(owner, id)` index lists under `owner`, oldest first (ids are uuid v7).
fn get_owned<T: DeserializeOwned>(
    index: &impl ReadableTable<(u128, u128), ()>,
    records: &impl ReadableTable<u128, &'static [u8]>,
    name: &'static str,
    owner: u128,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in index.range((owner, 0)..=(owner, u128::MAX))? {
        let (key, _) = entry?;
        let id = key.value().1;
        let record = get_by_id(records, name, id)?.ok_or_else(|| {
            StoreError::Invariant(format!("{name} index names missing record {id:x}"))
        })?;
        out.push(record);
    }
    Ok(out)
}

pub(super) fn get_product(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: ProductId,
) -> Result<Option<StoredProduct>, StoreError> {
    get_by_id(table, "products", id.as_u128())
}

pub(super) fn get_stock(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    sku: &Sku,
) -> Result<StockLevel, StoreError> {
    Ok(table
        .get(sku.as_str())?
        .map(|v| decode("stock", v.value()))
        .transpose()?
        .unwrap_or_default())
}

pub(super) fn get_order(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: OrderId,
) -> Result<Option<Order>, StoreError> {
    get_by_id(table, "orders", id.as_u128())
}

pub(super) fn get_reservations(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: OrderId,
) -> Result<Vec<Reservation>, StoreError> {
    Ok(table
        .get(id.as_u128())?
        .map(|v| decode("reservations", v.value()))
        .transpose()?
        .unwrap_or_default())
}

pub(super) fn get_campaign(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: CampaignId,
) -> Result<Option<StoredCampaign>, StoreError> {
    get_by_id(table, "campaigns", id.as_u128())
}

pub(super) fn get_seats(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: CampaignId,
) -> Result<Option<crate::domain::campaigns::Seats>, StoreError> {
    get_by_id(table, "campaign_seats", id.as_u128())
}

/// What this till approved offline and the provider has not settled yet, in `currency`'s minor
/// units: the offline-approved payments among those the follow-up worker still owes.
pub(super) fn offline_exposure(
    followups: &impl ReadableTable<(i64, u128), ()>,
    payments: &impl ReadableTable<u128, &'static [u8]>,
    currency: fusion_contracts::Currency,
) -> Result<i64, StoreError> {
    let mut exposure = 0i64;
    for entry in followups.iter()? {
        let (key, _) = entry?;
        let (_, id) = key.value();
        if let Some(p) = get_payment(payments, fusion_contracts::PaymentId::from_u128(id))?
            && p.status == fusion_contracts::events::payments::PaymentStatus::OfflineApproved
            && p.currency() == currency
        {
            exposure = exposure.saturating_add(p.amount.minor);
        }
    }
    Ok(exposure)
}

pub(super) fn get_payment(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: PaymentId,
) -> Result<Option<Payment>, StoreError> {
    get_by_id(table, "payments", id.as_u128())
}

/// Every payment of an order, oldest first.
pub(super) fn get_order_payments(
    index: &impl ReadableTable<(u128, u128), ()>,
    payments: &impl ReadableTable<u128, &'static [u8]>,
    order_id: OrderId,
) -> Result<Vec<Payment>, StoreError> {
    get_owned(index, payments, "payments", order_id.as_u128())
}

pub(super) fn get_shipment(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: ShipmentId,
) -> Result<Option<Shipment>, StoreError> {
    get_by_id(table, "shipments", id.as_u128())
}

/// Every shipment of an order, oldest first.
pub(super) fn get_order_shipments(
    index: &impl ReadableTable<(u128, u128), ()>,
    shipments: &impl ReadableTable<u128, &'static [u8]>,
    order_id: OrderId,
) -> Result<Vec<Shipment>, StoreError> {
    get_owned(index, shipments, "shipments", order_id.as_u128())
}

pub(super) fn get_credit(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    account: &str,
) -> Result<Option<CreditAccount>, StoreError> {
    table
        .get(account)?
        .map(|v| decode("store_credit", v.value()))
        .transpose()
}

pub(super) fn find_token(
    table: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    id: TokenId,
) -> Result<Option<([u8; 32], TokenInfo)>, StoreError> {
    for entry in table.iter()? {
        let (hash, info) = entry?;
        let info: TokenInfo = decode("tokens", info.value())?;
        if info.id == id {
            return Ok(Some((*hash.value(), info)));
        }
    }
    Ok(None)
}

/// Every table, opened once per batch.
pub(super) struct Tables<'txn> {
    pub products: Table<'txn, u128, &'static [u8]>,
    pub product_skus: Table<'txn, &'static str, u128>,
    pub product_list: Table<'txn, u128, ()>,
    pub stock: Table<'txn, &'static str, &'static [u8]>,
    pub reservations: Table<'txn, u128, &'static [u8]>,
    pub orders: Table<'txn, u128, &'static [u8]>,
    pub order_list: Table<'txn, u64, u128>,
    pub events: Table<'txn, u64, &'static [u8]>,
    pub idempotency: Table<'txn, &'static str, &'static [u8]>,
    pub idempotency_expiry: Table<'txn, (i64, &'static str), ()>,
    pub tokens: Table<'txn, &'static [u8; 32], &'static [u8]>,
    pub campaigns: Table<'txn, u128, &'static [u8]>,
    pub campaign_list: Table<'txn, u64, u128>,
    pub participants: Table<'txn, (u128, &'static str), i64>,
    pub timers: Table<'txn, (i64, u128), ()>,
    pub payments: Table<'txn, u128, &'static [u8]>,
    pub order_payments: Table<'txn, (u128, u128), ()>,
    pub payment_followups: Table<'txn, (i64, u128), ()>,
    pub shipments: Table<'txn, u128, &'static [u8]>,
    pub order_shipments: Table<'txn, (u128, u128), ()>,
    pub tracking_numbers: Table<'txn, &'static str, u128>,
    pub order_correlations: Table<'txn, u128, &'static str>,
    pub order_holds: Table<'txn, (i64, u128), ()>,
    pub store_credit: Table<'txn, &'static str, &'static [u8]>,
    pub docs: Table<'txn, (&'static str, u32), &'static [u8]>,
    pub doc_heads: Table<'txn, &'static str, &'static [u8]>,
    pub peer_events: Table<'txn, (&'static str, u64), &'static [u8]>,
    pub peer_positions: Table<'txn, &'static str, u64>,
    pub peer_heads: Table<'txn, &'static str, &'static [u8; 32]>,
    pub revoked_peers: Table<'txn, &'static str, i64>,
    pub peer_orders: Table<'txn, u128, &'static [u8]>,
    pub transfers_out: Table<'txn, u128, &'static [u8]>,
    pub peer_receipts: Table<'txn, u128, &'static str>,
    pub campaign_seats: Table<'txn, u128, &'static [u8]>,
    pub backorders: Table<'txn, (u128, &'static str), (u64, u64)>,
    pub offline_budget: Table<'txn, &'static str, (i64, i64)>,
    pub peer_stock: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    pub peer_origin_peers: Table<'txn, &'static str, &'static str>,
    pub peer_campaigns: Table<'txn, u128, &'static str>,
    pub order_returns: Table<'txn, u128, &'static [u8]>,
    pub refunds_owed: Table<'txn, u128, i64>,
    pub receipt_heads: Table<'txn, &'static str, u64>,
    pub order_receipts: Table<'txn, u128, &'static [u8]>,
    pub receipt_orders: Table<'txn, &'static str, u128>,
    pub receipt_prints: Table<'txn, (u128, &'static str), u64>,
    pub order_staff: Table<'txn, u128, &'static str>,
    pub returns: Table<'txn, u128, &'static [u8]>,
    pub receipt_seqs: Table<'txn, u128, u64>,
    pub drawers: Table<'txn, &'static str, &'static [u8]>,
    pub sessions: Table<'txn, u128, &'static [u8]>,
}

impl<'txn> Tables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            products: txn.open_table(PRODUCTS)?,
            product_skus: txn.open_table(PRODUCT_SKUS)?,
            product_list: txn.open_table(PRODUCT_LIST)?,
            stock: txn.open_table(STOCK)?,
            reservations: txn.open_table(RESERVATIONS)?,
            orders: txn.open_table(ORDERS)?,
            order_list: txn.open_table(ORDER_LIST)?,
            events: txn.open_table(EVENTS)?,
            idempotency: txn.open_table(IDEMPOTENCY)?,
            idempotency_expiry: txn.open_table(IDEMPOTENCY_EXPIRY)?,
            tokens: txn.open_table(TOKENS)?,
            campaigns: txn.open_table(CAMPAIGNS)?,
            campaign_list: txn.open_table(CAMPAIGN_LIST)?,
            participants: txn.open_table(PARTICIPANTS)?,
            timers: txn.open_table(TIMERS)?,
            payments: txn.open_table(PAYMENTS)?,
            order_payments: txn.open_table(ORDER_PAYMENTS)?,
            payment_followups: txn.open_table(PAYMENT_FOLLOWUPS)?,
            shipments: txn.open_table(SHIPMENTS)?,
            order_shipments: txn.open_table(ORDER_SHIPMENTS)?,
            tracking_numbers: txn.open_table(TRACKING_NUMBERS)?,
            order_correlations: txn.open_table(ORDER_CORRELATIONS)?,
            order_holds: txn.open_table(ORDER_HOLDS)?,
            store_credit: txn.open_table(STORE_CREDIT)?,
            docs: txn.open_table(DOCS)?,
            doc_heads: txn.open_table(DOC_HEADS)?,
            peer_events: txn.open_table(PEER_EVENTS)?,
            peer_positions: txn.open_table(PEER_POSITIONS)?,
            peer_heads: txn.open_table(PEER_HEADS)?,
            revoked_peers: txn.open_table(REVOKED_PEERS)?,
            peer_orders: txn.open_table(PEER_ORDERS)?,
            transfers_out: txn.open_table(TRANSFERS_OUT)?,
            peer_receipts: txn.open_table(PEER_RECEIPTS)?,
            campaign_seats: txn.open_table(CAMPAIGN_SEATS)?,
            backorders: txn.open_table(BACKORDERS)?,
            offline_budget: txn.open_table(OFFLINE_BUDGET)?,
            peer_stock: txn.open_table(PEER_STOCK)?,
            peer_origin_peers: txn.open_table(PEER_ORIGIN_PEERS)?,
            peer_campaigns: txn.open_table(PEER_CAMPAIGNS)?,
            order_returns: txn.open_table(ORDER_RETURNS)?,
            refunds_owed: txn.open_table(REFUNDS_OWED)?,
            receipt_heads: txn.open_table(RECEIPT_HEADS)?,
            order_receipts: txn.open_table(ORDER_RECEIPTS)?,
            receipt_orders: txn.open_table(RECEIPT_ORDERS)?,
            receipt_prints: txn.open_table(RECEIPT_PRINTS)?,
            order_staff: txn.open_table(ORDER_STAFF)?,
            returns: txn.open_table(RETURNS)?,
            receipt_seqs: txn.open_table(RECEIPT_SEQS)?,
            drawers: txn.open_table(DRAWERS)?,
            sessions: txn.open_table(SESSIONS)?,
        })
    }
}

/// Writes a product's row and its list and sku entries. A sku stays with the product that took
/// it first; two tills creating one sku concurrently is settled by the lower product id, on
/// every replica alike.
pub(super) fn put_product(t: &mut Tables, product: &Product) -> Result<(), StoreError> {
    let id = product.id.as_u128();
    let owner = t.product_skus.get(product.sku.as_str())?.map(|v| v.value());
    if owner.is_none_or(|owner| owner >= id) {
        t.product_skus.insert(product.sku.as_str(), id)?;
    }
    match product.status {
        ProductStatus::Active => t.product_list.insert(id, ())?,
        ProductStatus::Archived => t.product_list.remove(id)?,
    };
    let stored = StoredProduct {
        product: product.clone(),
    };
    t.products.insert(id, encode(&stored).as_slice())?;
    Ok(())
}

/// What returns owe payment `id` and have not refunded yet (minor units).
pub(super) fn refund_owed(
    table: &impl ReadableTable<u128, i64>,
    id: PaymentId,
) -> Result<i64, StoreError> {
    Ok(table.get(id.as_u128())?.map_or(0, |v| v.value()))
}
