//! The hub's HTTP API, with bearer tokens as on a node: the admin token (`admin.token`, made on
//! first start) and tokens made with `POST /tokens`, `viewer` (reads) or `admin`.
//!
//! - `GET /events?store=&origin=&topic=&after=&limit=` →
//!   `{ "events": [...], "next": "ORIGIN:SEQ", "complete": bool }`, in (origin, seq) order;
//!   pass `next` back as `after` for the following page (or to poll for new events once
//!   `complete`).
//! - `GET /enrollments`, `POST /enrollments {"nodeId","storeId"}`,
//!   `DELETE /enrollments/{nodeId}` (revokes and cuts live sync connections).
//! - `GET /sync/status`: every enrolled node (connected, last contact) and every origin's
//!   durable position.
//! - `GET /products`, `GET /products/{id}`: the fleet catalog, read from the merged product
//!   documents; `PATCH /products/{id}` (the node's update body: name, description, price,
//!   currency) edits a product at the hub — durable, recorded as `product.updated` of the hub's
//!   origin, and pushed to every connected node.
//! - `GET /campaigns`, `GET /campaigns/{id}`: every store's campaigns, from their documents
//!   (each with `origin`, the till that owns it and takes its joins);
//!   `GET /campaigns/{id}/participants`: who joined and has not left, in join order, with
//!   their store (from the fleet log).
//! - `GET /campaigns/{id}/seats`: a campaign whose seats are shared between tills — its
//!   holders, whose part ended with how many participants, the seats the hub holds and the
//!   hub's decision; `POST /campaigns/{id}/seats {"to","seats"}` gives the hub's seats to a
//!   till of any store (admin; 422 with `available` past what it holds).
//! - `GET|PATCH /stores/{id}/settings`: a store's shared settings (name, `orderHoldSecs`,
//!   `cardFloorLimit`), pushed to its tills.
//! - `GET /fleet/sales`: per store, per day (UTC) and currency: orders created and not
//!   cancelled, and their total.
//! - `GET /fleet/sessions?store=&day=`: every till's Z reports (drawer sessions closed), by
//!   store and day (UTC) of the close; a Z is also the `session.closed` event on Kafka.
//! - `GET /fleet/stores`: per store its tills, how many are connected, the last contact, the
//!   events the hub holds from it, and per till journal how far the till's verified signature
//!   vouches for it (`verifiedUpTo`).
//! - `GET /fleet/stock?sku=&store=`: per store and sku, available and reserved (summed over
//!   the store's tills, as their events left them).
//! - `GET /journal/{origin}?from=&to=`: an auditor's export of an origin's journal (JSON
//!   lines, `docs/JOURNAL.md`), up to what its signature proves.
//! - `GET /fleet/orders/{id}`: an order found anywhere in the fleet: its store, till, status,
//!   total and every event about it (order, reservation, payment, shipping, receipt);
//!   `GET /fleet/orders/{id}/receipt?format=json|text|html|escpos`: its receipt, laid out from
//!   the selling till's log by the tills' rule (what the n8n template emails).
//! - `GET /escrow?store=&sku=`: stock rights per store and sku — what each till holds and has
//!   reserved, and the transfers in transit between holders (docs/ESCROW.md).
//! - `GET /escrow/campaigns`: every campaign whose seats are shared between stores, as
//!   `GET /campaigns/{id}/seats` shows one.
//! - `GET /escrow/budget?store=`: each store's offline card budget per currency — its cap (the
//!   sum of its tills' shares), and per till the share, the exposure (approved offline, not
//!   settled) and the headroom.
//! - `POST /escrow/transfer {"storeId","sku","to","quantity"}`: the hub's holder of the store
//!   gives rights to one of its tills (422 with `available` past what it holds);
//!   `POST /escrow/rebalance {"storeId"?, "keep"?}`: the hub gives its rights toward the tills
//!   that sell most, keeping `keep` per sku; `POST /escrow/reclaim {"nodeId"}`: a till lost for
//!   good is revoked and its rights pass to the hub (admin).
//! - `GET /metrics`: Prometheus text (admin token): stores, tills, events held, export and
//!   webhook lag, dead letters.
//! - `GET /fleet/lag`: how far the Kafka export and each webhook subscription are behind the
//!   durable log (events), with their counters and last errors.
//! - `GET /webhooks/dlq?subscription=`: dead letters, in order; `POST /webhooks/dlq/retry
//!   {"subscription"?}`: one more attempt each, in order per key → attempted, delivered,
//!   remaining.
//! - `POST /tokens {"role": "viewer"|"admin", "label"?}` → the token's secret, once;
//!   `GET /tokens`; `DELETE /tokens/{id}` (admin). A viewer token reads every `GET` route;
//!   changes need an admin token (403 otherwise).
//! - `GET /console` (no token to load; the page asks for one): the fleet console — sales by
//!   store and day, tills online, journals verified, Z reports, stock and escrow, campaigns,
//!   Kafka and webhook lag, dead letters with retry (`api/console.rs`).
//! - `GET /health` (no token).

mod access;
mod catalog;
mod console;
mod escrow;
mod fleet;
mod ops;
mod receipts;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use fusion_contracts::CorrelationId;
use fusion_http::{ApiError, token};
use fusion_sync::net::{EndpointId, Gate};
use serde::Serialize;

use crate::docs::HubDocs;
use crate::store::{HubRole, HubStore};
use access::{create_token, enroll, enrollments, list_tokens, revoke, revoke_token};
use catalog::{
    campaign, campaigns, participants, product, products, store_settings, update_product,
    update_store_settings,
};
use escrow::{
    campaign_seats, escrow, escrow_budget, escrow_campaigns, escrow_rebalance, escrow_reclaim,
    escrow_transfer, give_seats,
};
use fleet::{events, fleet_order, fleet_stock, fleet_stores, journal, sales};
use ops::{dead_letters, lag, prometheus, retry_dead_letters, sync_status};

/// The admin token file in the hub's data dir (same name as a node's).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

#[derive(Clone)]
pub struct HubState {
    pub store: Arc<HubStore>,
    pub gate: Arc<Gate>,
    pub docs: Arc<HubDocs>,
    pub export: Arc<crate::export::ExportStatus>,
    pub webhooks: Arc<crate::webhook::Webhooks>,
    admin_hash: [u8; 32],
}

impl HubState {
    /// Reads the admin token from `data_dir`, creating it (0600) on first start. Returns the
    /// state and the new token when one was created.
    pub fn open(
        data_dir: &Path,
        store: Arc<HubStore>,
        gate: Arc<Gate>,
        docs: Arc<HubDocs>,
    ) -> std::io::Result<(Self, Option<String>)> {
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        let (token, created) = match std::fs::read_to_string(&path) {
            Ok(text) => (text.trim().to_string(), false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (token, _) = token::generate(token::HUB_TOKEN_PREFIX)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                writeln!(file, "{token}")?;
                file.sync_all()?;
                (token, true)
            }
            Err(e) => return Err(e),
        };
        let state = Self {
            store,
            gate,
            docs,
            export: Arc::default(),
            webhooks: Arc::default(),
            admin_hash: token::hash(&token),
        };
        Ok((state, created.then_some(token)))
    }
}

pub fn router(state: HubState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/console", get(console::page))
        .route("/console/console.js", get(console::script))
        .route("/console/console.css", get(console::style))
        .route("/events", get(events))
        .route("/enrollments", get(enrollments).post(enroll))
        .route("/enrollments/{node_id}", delete(revoke))
        .route("/sync/status", get(sync_status))
        .route("/products", get(products))
        .route("/campaigns", get(campaigns))
        .route("/fleet/sales", get(sales))
        .route("/fleet/sessions", get(fleet::sessions))
        .route("/fleet/lag", get(lag))
        .route("/fleet/stores", get(fleet_stores))
        .route("/fleet/stock", get(fleet_stock))
        .route("/fleet/orders/{id}", get(fleet_order))
        .route("/fleet/orders/{id}/receipt", get(receipts::receipt))
        .route("/journal/{origin}", get(journal))
        .route("/escrow", get(escrow))
        .route("/escrow/transfer", post(escrow_transfer))
        .route("/escrow/budget", get(escrow_budget))
        .route("/escrow/campaigns", get(escrow_campaigns))
        .route("/escrow/reclaim", post(escrow_reclaim))
        .route("/escrow/rebalance", post(escrow_rebalance))
        .route("/metrics", get(prometheus))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/webhooks/dlq", get(dead_letters))
        .route(
            "/webhooks/dlq/retry",
            axum::routing::post(retry_dead_letters),
        )
        .route(
            "/stores/{id}/settings",
            get(store_settings).patch(update_store_settings),
        )
        .route("/campaigns/{id}", get(campaign))
        .route("/campaigns/{id}/participants", get(participants))
        .route(
            "/campaigns/{id}/seats",
            get(campaign_seats).post(give_seats),
        )
        .route("/products/{id}", get(product).patch(update_product))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
}

/// A 200 answer with a JSON body.
fn ok<T: Serialize>(body: &T) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The role of the presented bearer token: the admin token of `admin.token`, or one made with
/// `POST /tokens`.
fn role_of(state: &HubState, headers: &HeaderMap) -> Result<HubRole, ApiError> {
    let presented = fusion_http::bearer_token(headers).ok_or_else(ApiError::unauthorized)?;
    let hash = token::hash(presented);
    if hash == state.admin_hash {
        return Ok(HubRole::Admin);
    }
    match state.store.token(&hash).map_err(ApiError::internal_from)? {
        Some(token) => Ok(token.role),
        None => Err(ApiError::unauthorized()),
    }
}

/// A caller with any valid hub token: it may read the fleet.
pub struct Viewer;

/// A caller with an admin token: it may change things.
pub struct Admin;

impl FromRequestParts<HubState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, ApiError> {
        role_of(state, &parts.headers).map(|_| Viewer)
    }
}

impl FromRequestParts<HubState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, ApiError> {
        match role_of(state, &parts.headers)? {
            HubRole::Admin => Ok(Admin),
            HubRole::Viewer => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs an admin token; a viewer token only reads",
            )),
        }
    }
}

fn parse_node_id(field: &str, text: &str) -> Result<EndpointId, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::validation(field, "must be a node endpoint id (`fusion node id`)"))
}

/// The request's `X-Correlation-Id`, or a new one.
fn correlation(headers: &HeaderMap) -> CorrelationId {
    headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| CorrelationId::new(v).ok())
        .unwrap_or_else(|| {
            CorrelationId::new(uuid::Uuid::now_v7().to_string())
                .expect("a uuid is a valid correlation id")
        })
}
