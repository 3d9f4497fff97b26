//! The hub store's tables: every redb table definition and what its keys and values are.
//! Nothing here reads or writes; the other `store` modules do, inside their transactions.

use redb::TableDefinition;

/// (origin, seq) → postcard envelope, exactly as the origin logged it.
pub(super) const FLEET_EVENTS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("fleet_events");

/// Origin → last seq stored (every earlier one is stored too).
pub(super) const POSITIONS: TableDefinition<&str, u64> = TableDefinition::new("positions");

/// Enrolled node (endpoint id, as text) → the store it belongs to.
pub(super) const ENROLLMENTS: TableDefinition<&str, &str> = TableDefinition::new("enrollments");

/// Revoked node (endpoint id, as text) → when, in Unix ms. Revoked stays revoked until the node
/// is enrolled again on purpose.
pub(super) const REVOCATIONS: TableDefinition<&str, i64> = TableDefinition::new("revocations");

/// Origin → the store of the enrolled node that first delivered its events (the fleet API's
/// `store` filter).
pub(super) const ORIGIN_STORES: TableDefinition<&str, &str> = TableDefinition::new("origin_stores");

/// `docs` (document id, chunk index → automerge bytes) and `doc_heads` (document id → its heads
/// after its last stored chunk), as at a till (`fusion_sync::docs::stored`).
pub(super) use fusion_sync::docs::stored::{DOC_HEADS, DOCS};

/// Origin → last seq exported to Kafka (every earlier one is confirmed by the broker).
pub(super) const EXPORT_POSITIONS: TableDefinition<&str, u64> =
    TableDefinition::new("export_positions");

/// (subscription, origin) → last seq the webhook subscription is done with (delivered,
/// dead-lettered or not matching its topics).
pub(super) const WEBHOOK_POSITIONS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("webhook_positions");

/// (subscription, origin, seq) → JSON [`DeadLetter`]: events a subscription gave up on, in
/// order, until `fusion hub dlq retry` delivers them.
pub(super) const WEBHOOK_DLQ: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("webhook_dlq");

/// (origin, sku) → (available, reserved): each till's stock as its events left it (the same fold
/// as the node's inventory projection).
pub(super) const FLEET_STOCK: TableDefinition<(&str, &str), (u64, u64)> =
    TableDefinition::new("fleet_stock");

/// (order id, origin, seq) → (): the events of each order (order, payment, reservation and
/// shipping topics), for the fleet-wide order lookup.
pub(super) const ORDER_EVENTS: TableDefinition<(u128, &str, u64), ()> =
    TableDefinition::new("order_events");

/// Token hash (SHA-256) → JSON [`HubToken`]: API tokens made with `POST /tokens` (the admin
/// token of `admin.token` is not here).
pub(super) const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");

/// Transfer id → JSON [`Transfer`]: stock rights one till gave another (or the hub).
pub(super) const FLEET_TRANSFERS: TableDefinition<u128, &[u8]> =
    TableDefinition::new("fleet_transfers");

/// Transfer id → the origin that took it in. A transfer without a receipt is in transit (a
/// receipt may arrive before its transfer: they come from different tills' logs).
pub(super) const FLEET_RECEIPTS: TableDefinition<u128, &str> =
    TableDefinition::new("fleet_receipts");

/// (origin, currency) → (configured, held) minor units: the offline card budget of each till
/// (`payments::Budget`, folded by the rulebook's `apply_budget`, as on the till).
pub(super) const FLEET_BUDGETS: TableDefinition<(&str, &str), (i64, i64)> =
    TableDefinition::new("fleet_budgets_v4");

/// The budget table of projections v3 (held only), dropped when v4 is built.
pub(super) const FLEET_BUDGETS_V3: TableDefinition<(&str, &str), i64> =
    TableDefinition::new("fleet_budgets");

/// Payment id → JSON [`OfflineApproval`]: card payments a till approved offline that the
/// provider has not settled yet (as far as the hub has seen): the budget's exposure.
pub(super) const FLEET_OFFLINE: TableDefinition<u128, &[u8]> =
    TableDefinition::new("fleet_offline");

/// Campaign id → the till origin whose journal created it (first seen wins): that till's
/// endpoint may change the campaign's document at the hub.
pub(super) const FLEET_CAMPAIGNS: TableDefinition<u128, &str> =
    TableDefinition::new("fleet_campaigns");

/// Origin → the sync endpoint (as text) that delivered its events: whom to revoke when a
/// manager reclaims a lost till's rights.
pub(super) const ORIGIN_PEERS: TableDefinition<&str, &str> = TableDefinition::new("origin_peers");

/// Campaign id → JSON [`HubCampaign`]: the seats of campaigns shared between holders, what
/// each holder's part ended with, and the hub's decision (made once, in its own log).
pub(super) const HUB_CAMPAIGNS: TableDefinition<u128, &[u8]> =
    TableDefinition::new("hub_campaigns");

/// Origin → the entry hash of its event at `positions` (its journal's head as held): a till's
/// next batch must chain from it (`fusion_rules::journal`).
pub(super) const JOURNAL_HEADS: TableDefinition<&str, &[u8; 32]> =
    TableDefinition::new("journal_heads");

/// (origin, seq) → entry hash of each of the hub's own events (its origin and holders), so
/// that it signs a batch of them ending anywhere.
pub(super) const OWN_HASHES: TableDefinition<(&str, u64), &[u8; 32]> =
    TableDefinition::new("own_hashes");

/// Till origin → postcard `Checkpoint`: the latest of its signatures the hub verified.
pub(super) const TILL_CHECKPOINTS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("till_checkpoints");

/// `projections` → the version the projection tables were built with; `journal` → 1 once the
/// heads of logs stored before journals were computed.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Till origin → JSON `fusion_rules::drawer::Drawer`: its cash drawer as its log leaves it.
pub(super) const FLEET_DRAWERS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("fleet_drawers");

/// (till origin, Z number) → JSON `SessionClosed`: every till's Z reports, gap-free.
/// Order id → the verification code of its receipt (`<seq>-<12 hex>`: the seq of the selling
/// till's `receipt.issued` and the start of that journal entry's hash, as the till prints it).
pub(super) const FLEET_RECEIPT_CODES: TableDefinition<u128, &str> =
    TableDefinition::new("fleet_receipt_codes");

pub(super) const FLEET_SESSIONS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("fleet_sessions");

/// Bump when a projection changes meaning: they are rebuilt from the fleet log on open.
/// 6: drawers and Z reports.
pub(super) const PROJECTIONS_VERSION: u64 = 7;
