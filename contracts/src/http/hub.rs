//! The hub's HTTP bodies: what its routes take and answer, shared by the hub (which serves
//! them) and the CLI (`fusion hub …`, which reads them typed). JSON, camelCase.

use serde::{Deserialize, Serialize};

use crate::events::EventRecord;
use crate::events::StockReclaimed;
use crate::{CampaignId, Currency, Decimal, NodeId, OrderId, Sku, StoreId, Timestamp};

/// What a hub token may do. `admin` includes `viewer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HubRole {
    /// Read the fleet: events, stores, sales, stock, orders, campaigns, lag, metrics.
    Viewer,
    /// Also enroll and revoke nodes, edit products and settings, retry dead letters, manage
    /// tokens.
    Admin,
}

/// A hub API token as stored and listed (never its secret): `GET /tokens`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubToken {
    pub id: String,
    pub role: HubRole,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<String>,
    pub created_at: Timestamp,
}

/// `POST /tokens`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateHubTokenRequest {
    pub role: HubRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A created token: the record and, this once, its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedHubToken {
    #[serde(flatten)]
    pub record: HubToken,
    pub token: String,
}

/// `POST /enrollments`: a node (its sync endpoint id, `fusion node id`) joins a store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollRequest {
    pub node_id: String,
    pub store_id: String,
}

/// An enrolled node: `POST /enrollments`, `GET /enrollments`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub node_id: String,
    pub store_id: String,
}

/// `GET /events`: a page of the fleet log, in (origin, seq) order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetEventsPage {
    pub events: Vec<EventRecord>,
    /// The last event looked at: pass it as `after` for the next page. Absent when the page
    /// looked at nothing (keep the previous cursor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when the page reached the end of the log as it is now.
    pub complete: bool,
}

/// `GET /fleet/orders/{id}`: an order found anywhere in the fleet.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetOrder {
    pub order_id: OrderId,
    pub store_id: Option<String>,
    /// The till that took it.
    pub origin: String,
    /// `created`, `cancelled`, `paid` or `fulfilled`; `refused` when stock was short and no
    /// order was made.
    pub status: String,
    /// An order.flagged event asks a person to look at it.
    pub flagged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    pub events: Vec<EventRecord>,
}

/// `GET /fleet/orders/{id}/receipt`: a paid order's receipt as its till printed it, laid out
/// at the hub from the fleet log by the same rule (`fusion_rules::receipts::layout`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReceipt {
    pub receipt: String,
    pub number: u64,
    pub order_id: OrderId,
    pub till: NodeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// The store's name (its settings), else its id.
    pub store: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<String>,
    pub total: Decimal,
    pub currency: Currency,
    pub issued_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_code: Option<String>,
    /// 42 columns, as printed.
    pub text: String,
    /// The print-friendly page of the same lines (an email's body).
    pub html: String,
}

/// `GET /fleet/lag`: how far the Kafka export and each webhook subscription are behind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetLag {
    pub export: ExportLag,
    pub webhooks: Vec<WebhookReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportLag {
    pub enabled: bool,
    /// Events held durably and not yet confirmed by the broker.
    pub behind: u64,
    #[serde(flatten)]
    pub report: ExportReport,
}

/// The Kafka export's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportReport {
    /// The brokers, or `None` when export is off.
    pub brokers: Option<String>,
    /// Events produced and confirmed since this hub started.
    pub exported: u64,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
    /// Topic schemas registered in the schema registry (when one is configured).
    #[serde(default)]
    pub schemas_registered: usize,
}

/// A webhook subscription's state, for `/fleet/lag` and `/metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReport {
    pub name: String,
    pub url: String,
    pub topics: Vec<String>,
    /// Events held durably that this subscription has not dealt with yet.
    pub behind: u64,
    pub dead_letters: u64,
    /// Since the hub started.
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
    pub last_error: Option<String>,
}

/// `POST /webhooks/dlq/retry`: one subscription's dead letters, or every one's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDeadLettersRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
}

/// What a retry of dead letters did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryReport {
    pub attempted: u64,
    pub delivered: u64,
    /// Dead letters left (of the subscriptions retried).
    pub remaining: u64,
}

/// `POST /escrow/transfer`: the hub's holder of a store gives rights to one of its tills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubTransferRequest {
    pub store_id: StoreId,
    pub sku: Sku,
    pub to: NodeId,
    pub quantity: u64,
}

/// `POST /escrow/reclaim`: a till lost for good.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReclaimRequest {
    pub node_id: NodeId,
}

/// `POST /escrow/rebalance`: every store, or one; the hub keeps `keep` per sku.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RebalanceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<StoreId>,
    #[serde(default)]
    pub keep: u64,
}

/// `POST /campaigns/{id}/seats`: the hub gives seats it holds to a till of any store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GiveSeatsRequest {
    pub to: NodeId,
    pub seats: u32,
}

/// What a reclaim did (`POST /escrow/reclaim`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// One Z report of `GET /fleet/sessions`: a till's closed drawer session, with its store and
/// the day (UTC) it closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSession {
    pub store_id: String,
    /// `YYYY-MM-DD`, UTC, of the close.
    pub day: String,
    #[serde(flatten)]
    pub report: crate::http::sessions::ReportResponse,
}
