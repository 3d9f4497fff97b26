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
//! - `GET /fleet/stores`: per store its tills, how many are connected, the last contact and
//!   the events the hub holds from it.
//! - `GET /fleet/stock?sku=&store=`: per store and sku, available and reserved (summed over
//!   the store's tills, as their events left them).
//! - `GET /fleet/orders/{id}`: an order found anywhere in the fleet: its store, till, status,
//!   total and every event about it (order, reservation, payment, shipping).
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
//! - `GET /health` (no token).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use fusion_contracts::events::EventRecord;
use fusion_contracts::events::Product;
use fusion_contracts::http::ErrorBody;
use fusion_contracts::http::{SettingsRequest, SettingsResponse, UpdateProductRequest};
use fusion_contracts::{CorrelationId, ProductId, StoreId, Timestamp};
use fusion_sync::net::{EndpointId, Gate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::docs::{EditError, HubDocs};
use crate::store::{FleetFilter, HubRole, HubStore, HubToken};

/// The admin token file in the hub's data dir (same name as a node's).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
const EVENTS_LIMIT_MAX: usize = 1000;
const EVENTS_LIMIT_DEFAULT: usize = 100;
/// Events one page may look at while filtering (a rare topic ends a page early, with `next`).
const EVENTS_SCAN_MAX: usize = 20_000;

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
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
                let token = format!("fch_{}", hex::encode(secret));
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
            admin_hash: Sha256::digest(token.as_bytes()).into(),
        };
        Ok((state, created.then_some(token)))
    }
}

pub fn router(state: HubState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/events", get(events))
        .route("/enrollments", get(enrollments).post(enroll))
        .route("/enrollments/{node_id}", delete(revoke))
        .route("/sync/status", get(sync_status))
        .route("/products", get(products))
        .route("/campaigns", get(campaigns))
        .route("/fleet/sales", get(sales))
        .route("/fleet/lag", get(lag))
        .route("/fleet/stores", get(fleet_stores))
        .route("/fleet/stock", get(fleet_stock))
        .route("/fleet/orders/{id}", get(fleet_order))
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
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", None, "no such route") })
        .with_state(state)
}

/// An error answer: status and the standard error body (boxed: errors are the cold path).
struct ApiError(StatusCode, Box<ErrorBody>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

fn error(status: StatusCode, code: &str, field: Option<&str>, message: &str) -> ApiError {
    let body = ErrorBody {
        error: code.to_string(),
        message: message.to_string(),
        field: field.map(str::to_string),
        ..ErrorBody::default()
    };
    ApiError(status, Box::new(body))
}

/// A 200 answer with a JSON body.
fn ok<T: Serialize>(body: &T) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A 404 for the `id` in the path.
fn id_not_found(message: String) -> ApiError {
    error(StatusCode::NOT_FOUND, "not_found", Some("id"), &message)
}

/// Runs blocking store work off the async threads; a failure is a 500.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(internal)?
        .map_err(internal)
}

fn invalid(field: &str, message: &str) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(field),
        &format!("{field} {message}"),
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "hub request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        None,
        "internal error",
    )
}

/// The role of the presented bearer token: the admin token of `admin.token`, or one made with
/// `POST /tokens`.
fn role_of(state: &HubState, headers: &HeaderMap) -> Result<HubRole, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let unauthorized = || {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
            "a valid token is required (Authorization: Bearer …)",
        )
    };
    let hash: [u8; 32] =
        Sha256::digest(presented.ok_or_else(unauthorized)?.trim().as_bytes()).into();
    if hash == state.admin_hash {
        return Ok(HubRole::Admin);
    }
    match state.store.token(&hash).map_err(internal)? {
        Some(token) => Ok(token.role),
        None => Err(unauthorized()),
    }
}

/// Reading the fleet: any valid token.
fn authorize(state: &HubState, headers: &HeaderMap) -> Result<(), ApiError> {
    role_of(state, headers).map(|_| ())
}

/// Changing anything: an admin token.
fn authorize_admin(state: &HubState, headers: &HeaderMap) -> Result<(), ApiError> {
    match role_of(state, headers)? {
        HubRole::Admin => Ok(()),
        HubRole::Viewer => Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
            "this needs an admin token; a viewer token only reads",
        )),
    }
}

fn parse_node_id(field: &str, text: &str) -> Result<EndpointId, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| invalid(field, "must be a node endpoint id (`fusion node id`)"))
}

#[derive(Serialize)]
struct EventsPage {
    events: Vec<EventRecord>,
    /// The last event looked at: pass it as `after` for the next page. Absent when the page
    /// looked at nothing (keep the previous cursor).
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// True when the page reached the end of the log as it is now.
    complete: bool,
}

async fn events(
    State(state): State<HubState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => EVENTS_LIMIT_DEFAULT,
        Some(Ok(n)) if (1..=EVENTS_LIMIT_MAX).contains(&n) => n,
        Some(_) => return Err(invalid("limit", "must be an integer from 1 to 1000")),
    };
    let after = match query.get("after") {
        None => None,
        Some(cursor) => match cursor
            .rsplit_once(':')
            .and_then(|(origin, seq)| Some((origin.to_string(), seq.parse::<u64>().ok()?)))
        {
            Some(after) => Some(after),
            None => {
                return Err(invalid(
                    "after",
                    "must be the `next` cursor of a previous page",
                ));
            }
        },
    };
    let filter = FleetFilter {
        store: query.get("store").cloned(),
        origin: query.get("origin").cloned(),
        topic: query.get("topic").cloned(),
    };
    let store = state.store.clone();
    let page = blocking(move || store.fleet_events(&filter, after, limit, EVENTS_SCAN_MAX)).await?;
    let events = page
        .events
        .iter()
        .map(|e| e.to_record())
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let body = EventsPage {
        events,
        next: page.next.map(|(origin, seq)| format!("{origin}:{seq}")),
        complete: page.complete,
    };
    Ok(ok(&body))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Enrollment {
    node_id: String,
    store_id: String,
}

async fn enrollments(
    State(state): State<HubState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let body: Vec<Enrollment> = state
        .store
        .enrollments()
        .map_err(internal)?
        .into_iter()
        .map(|(node_id, store_id)| Enrollment { node_id, store_id })
        .collect();
    Ok(ok(&body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrollBody {
    node_id: Option<String>,
    store_id: Option<String>,
}

async fn enroll(
    State(state): State<HubState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let body: EnrollBody = serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
            &format!("the body must be a JSON object {{\"nodeId\", \"storeId\"}}: {e}"),
        )
    })?;
    let node_id = body
        .node_id
        .ok_or_else(|| invalid("nodeId", "is required"))?;
    let node = parse_node_id("nodeId", &node_id)?;
    let store_id = body.store_id.unwrap_or_default();
    let store_id = StoreId::new(store_id.trim()).map_err(|e| invalid("storeId", e.reason))?;
    let store_id = store_id.as_str();
    state.store.enroll(node, store_id).map_err(internal)?;
    tracing::info!(node = %node, store = store_id, "enrolled");
    let body = Enrollment {
        node_id: node.to_string(),
        store_id: store_id.to_string(),
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn revoke(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(node_id): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let node = parse_node_id("nodeId", &node_id)?;
    let was_enrolled = state
        .store
        .revoke(node, state.store.now().unix_ms())
        .map_err(internal)?;
    // Durable first, then cut: a reconnect in between is refused by the gate.
    let cut = state.gate.cut(node);
    tracing::info!(node = %node, cut, "revoked");
    if !was_enrolled {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            Some("nodeId"),
            &format!("node {node} is not enrolled"),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerStatus {
    node_id: String,
    store_id: String,
    connected: bool,
    /// Unix ms of the node's last frame, since this hub process started.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_contact_ms: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OriginStatus {
    origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_id: Option<String>,
    /// Every event of the origin up to this seq is stored durably here.
    position: u64,
}

#[derive(Serialize)]
struct SyncStatus {
    peers: Vec<PeerStatus>,
    origins: Vec<OriginStatus>,
    /// Kafka export: brokers (absent: export is off), events confirmed, last error.
    export: crate::export::ExportReport,
}

async fn sync_status(
    State(state): State<HubState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use fusion_sync::net::EventSink;
    authorize(&state, &headers)?;
    let connected = state.gate.connected();
    let mut peers = Vec::new();
    for (node_id, store_id) in state.store.enrollments().map_err(internal)? {
        let id: Option<EndpointId> = node_id.parse().ok();
        peers.push(PeerStatus {
            connected: id.is_some_and(|id| connected.contains(&id)),
            last_contact_ms: id.and_then(|id| state.gate.last_contact_ms(id)),
            node_id,
            store_id,
        });
    }
    let mut origins = Vec::new();
    for (origin, position) in state.store.positions() {
        origins.push(OriginStatus {
            store_id: state
                .store
                .origin_store(origin.as_str())
                .map_err(internal)?,
            origin: origin.to_string(),
            position,
        });
    }
    let body = SyncStatus {
        peers,
        origins,
        export: state.export.report(),
    };
    Ok(ok(&body))
}

/// A product of the fleet catalog (the node's product body without its local stock).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogProduct {
    id: ProductId,
    sku: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    price: fusion_contracts::Decimal,
    currency: fusion_contracts::Currency,
    status: fusion_contracts::events::ProductStatus,
    created_at: Timestamp,
    updated_at: Timestamp,
}

fn render_product(p: Product) -> CatalogProduct {
    CatalogProduct {
        id: p.id,
        sku: p.sku.as_str().to_string(),
        name: p.name,
        description: p.description,
        price: p.price.to_decimal(),
        currency: p.price.currency,
        status: p.status,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

fn product_id(id: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            Some("id"),
            &format!("product {id} not found"),
        )
    })
}

async fn products(State(state): State<HubState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let body: Vec<CatalogProduct> = state
        .docs
        .products()
        .into_iter()
        .map(render_product)
        .collect();
    Ok(ok(&body))
}

async fn product(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let id = product_id(&id)?;
    let product = state.docs.product(id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            Some("id"),
            &format!("product {id} not found"),
        )
    })?;
    Ok(ok(&render_product(product)))
}

async fn update_product(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let id = product_id(&id)?;
    let request: UpdateProductRequest = parse_body(&body)?;
    let command = request
        .into_command(id)
        .map_err(|e| invalid(&e.field, &e.message))?;
    let correlation_id = correlation(&headers);
    let docs = state.docs.clone();
    let now = state.store.now();
    let updated =
        tokio::task::spawn_blocking(move || docs.update_product(&command, correlation_id, now))
            .await
            .map_err(internal)?;
    match updated {
        Ok(product) => Ok(ok(&render_product(product))),
        Err(EditError::NotFound(id)) => Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            Some("id"),
            &format!("product {id} not found"),
        )),
        Err(EditError::Archived(id)) => Err(error(
            StatusCode::CONFLICT,
            "archived",
            Some("id"),
            &format!("product {id} is archived"),
        )),
        Err(EditError::Field(e)) => Err(invalid(&e.field, &e.message)),
        Err(EditError::Store(e)) => Err(internal(e)),
    }
}

/// A campaign of the fleet: its snapshot as its owner last recorded it, and the owner.
#[derive(Serialize)]
struct FleetCampaign {
    #[serde(flatten)]
    campaign: fusion_contracts::events::campaigns::CampaignSnapshot,
    origin: fusion_contracts::NodeId,
}

fn render_campaign(c: fusion_sync::docs::CampaignDoc) -> FleetCampaign {
    FleetCampaign {
        campaign: c.campaign,
        origin: c.owner,
    }
}

async fn campaigns(
    State(state): State<HubState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let body: Vec<FleetCampaign> = state
        .docs
        .campaigns()
        .into_iter()
        .map(render_campaign)
        .collect();
    Ok(ok(&body))
}

async fn campaign(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let not_found = || id_not_found(format!("campaign {id} not found"));
    let id = fusion_contracts::CampaignId::parse(&id).ok_or_else(not_found)?;
    let campaign = state.docs.campaign(id).ok_or_else(not_found)?;
    Ok(ok(&render_campaign(campaign)))
}

async fn participants(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let not_found = || id_not_found(format!("campaign {id} not found"));
    let campaign = fusion_contracts::CampaignId::parse(&id).ok_or_else(not_found)?;
    let store = state.store.clone();
    let list = blocking(move || store.campaign_participants(campaign)).await?;
    if list.is_empty() && state.docs.campaign(campaign).is_none() {
        return Err(not_found());
    }
    Ok(ok(&list))
}

fn store_id(id: &str) -> Result<StoreId, ApiError> {
    StoreId::new(id).map_err(|e| invalid("id", e.reason))
}

fn render_settings(store: StoreId, s: fusion_sync::docs::StoreSettings) -> SettingsResponse {
    SettingsResponse {
        store_id: Some(store),
        name: s.name,
        order_hold_secs: s.order_hold_secs,
        card_floor_limit: s.card_floor_limit.map(Into::into),
        backorder_skus: s.backorder_skus.into_iter().collect(),
    }
}

async fn store_settings(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let store = store_id(&id)?;
    let settings = state.docs.settings(&store);
    Ok(ok(&render_settings(store, settings)))
}

async fn update_store_settings(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let store = store_id(&id)?;
    let request: SettingsRequest = parse_body(&body)?;
    let change = request
        .into_change()
        .map_err(|e| invalid(&e.field, &e.message))?;
    let docs = state.docs.clone();
    let target = store.clone();
    let updated = blocking(move || docs.update_settings(&target, &change)).await?;
    Ok(ok(&render_settings(store, updated)))
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

/// A JSON body, its errors naming the field.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        match (missing, field.as_str()) {
            (Some(missing), _) => invalid(missing, "is required"),
            (None, ".") => error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                None,
                &format!("the body must be a JSON object: {message}"),
            ),
            (None, field) => invalid(field, &message),
        }
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SalesBody {
    store_id: String,
    day: String,
    orders: i64,
    total: fusion_contracts::Decimal,
    currency: fusion_contracts::Currency,
}

async fn sales(State(state): State<HubState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let store = state.store.clone();
    let rows = blocking(move || store.sales()).await?;
    let body: Vec<SalesBody> = rows
        .into_iter()
        .map(|r| SalesBody {
            store_id: r.store_id,
            day: r.day,
            orders: r.orders,
            total: r.total.to_decimal(),
            currency: r.total.currency,
        })
        .collect();
    Ok(ok(&body))
}

/// `GET /fleet/lag`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lag {
    export: ExportLag,
    webhooks: Vec<crate::webhook::WebhookReport>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportLag {
    enabled: bool,
    /// Events held durably and not yet confirmed by the broker.
    behind: u64,
    #[serde(flatten)]
    report: crate::export::ExportReport,
}

async fn lag(State(state): State<HubState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let body = blocking(move || lag_report(&state)).await?;
    Ok(ok(&body))
}

fn lag_report(state: &HubState) -> Result<Lag, String> {
    let durable = state.store.durable_positions().map_err(|e| e.to_string())?;
    let exported = state.store.export_positions().map_err(|e| e.to_string())?;
    let report = state.export.report();
    let behind = durable
        .iter()
        .map(|(origin, upto)| upto.saturating_sub(exported.get(origin).copied().unwrap_or(0)))
        .sum();
    Ok(Lag {
        export: ExportLag {
            enabled: report.brokers.is_some(),
            behind,
            report,
        },
        webhooks: state
            .webhooks
            .reports(&state.store)
            .map_err(|e| e.to_string())?,
    })
}

/// One store of `GET /fleet/stores`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FleetStore {
    store_id: String,
    tills: u64,
    connected: u64,
    /// The latest contact of any of its tills since this hub process started.
    last_contact: Option<Timestamp>,
    /// Events the hub holds from the store's tills.
    events: u64,
}

impl FleetStore {
    fn new(store_id: String) -> Self {
        Self {
            store_id,
            tills: 0,
            connected: 0,
            last_contact: None,
            events: 0,
        }
    }
}

fn fleet_store_rows(state: &HubState) -> Result<Vec<FleetStore>, String> {
    use fusion_sync::net::EventSink;
    let connected = state.gate.connected();
    let mut rows: std::collections::BTreeMap<String, FleetStore> = Default::default();
    for (node_id, store_id) in state.store.enrollments().map_err(|e| e.to_string())? {
        let entry = rows
            .entry(store_id.clone())
            .or_insert_with(|| FleetStore::new(store_id));
        entry.tills += 1;
        if let Ok(id) = node_id.parse::<EndpointId>() {
            if connected.contains(&id) {
                entry.connected += 1;
            }
            if let Some(ms) = state.gate.last_contact_ms(id) {
                let at = Timestamp::from_unix_ms(ms);
                if entry.last_contact.is_none_or(|c| c < at) {
                    entry.last_contact = Some(at);
                }
            }
        }
    }
    for (origin, position) in state.store.positions() {
        if let Some(store_id) = state
            .store
            .origin_store(origin.as_str())
            .map_err(|e| e.to_string())?
        {
            rows.entry(store_id.clone())
                .or_insert_with(|| FleetStore::new(store_id))
                .events += position;
        }
    }
    Ok(rows.into_values().collect())
}

async fn fleet_stores(
    State(state): State<HubState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let rows = blocking(move || fleet_store_rows(&state)).await?;
    Ok(ok(&rows))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockQuery {
    sku: Option<String>,
    store: Option<String>,
}

/// The `sku` and `store` filters; anything else is a 400.
fn stock_query(
    query: Result<Query<StockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StockQuery, ApiError> {
    query.map(|Query(q)| q).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            None,
            &format!("{}; the parameters are sku and store", e.body_text()),
        )
    })
}

async fn fleet_stock(
    State(state): State<HubState>,
    headers: HeaderMap,
    query: Result<Query<StockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let query = stock_query(query)?;
    let store = state.store.clone();
    let rows =
        blocking(move || store.fleet_stock(query.sku.as_deref(), query.store.as_deref())).await?;
    Ok(ok(&rows))
}

/// `GET /fleet/orders/{id}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FleetOrder {
    order_id: fusion_contracts::OrderId,
    store_id: Option<String>,
    /// The till that took it.
    origin: String,
    /// `created`, `cancelled`, `paid` or `fulfilled`; `refused` when stock was short and no
    /// order was made.
    status: String,
    /// An order.flagged event asks a person to look at it.
    flagged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<fusion_contracts::Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<fusion_contracts::Currency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
    events: Vec<EventRecord>,
}

async fn fleet_order(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    use fusion_contracts::Event;
    authorize(&state, &headers)?;
    let not_found = || id_not_found(format!("order {id} not found in the fleet"));
    let order_id = fusion_contracts::OrderId::parse(&id).ok_or_else(not_found)?;
    let store = state.store.clone();
    let events = blocking(move || store.order_events(order_id)).await?;
    let first = events.first().ok_or_else(not_found)?;
    let origin = first.origin.to_string();
    // The order as the till folds it (the rulebook's `orders::apply`), over every event of it.
    let mut folded: Option<fusion_rules::Order> = None;
    let mut refused_stock = false;
    let mut records = Vec::with_capacity(events.len());
    for e in &events {
        if let Err(refused) = fusion_rules::orders::apply(&mut folded, &e.event) {
            tracing::warn!(%refused, order = %order_id, "an order event refused");
        }
        refused_stock |= matches!(e.event, Event::InventoryInsufficient(_));
        records.push(e.to_record().map_err(internal)?);
    }
    let status = match &folded {
        Some(o) => serde_json::to_value(o.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        None if refused_stock => "refused".into(),
        None => "created".into(),
    };
    let order = FleetOrder {
        order_id,
        store_id: state.store.origin_store(&origin).map_err(internal)?,
        origin,
        status,
        flagged: folded.as_ref().is_some_and(|o| o.flag.is_some()),
        customer_id: folded.as_ref().map(|o| o.customer_id.to_string()),
        total: folded.as_ref().map(|o| o.total.to_decimal()),
        currency: folded.as_ref().map(|o| o.total.currency),
        created_at: folded.as_ref().map(|o| o.created_at),
        events: records,
    };
    Ok(ok(&order))
}

/// `GET /metrics`: the hub's state as Prometheus gauges and counters, read at scrape time into
/// a recorder of this request (the process-wide one may belong to an embedding program).
async fn prometheus(
    State(state): State<HubState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let text = blocking(move || -> Result<String, String> {
        let stores = fleet_store_rows(&state)?;
        let lag = lag_report(&state)?;
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            for s in &stores {
                let store = s.store_id.clone();
                metrics::gauge!("fusion_hub_tills", "store" => store.clone()).set(s.tills as f64);
                metrics::gauge!("fusion_hub_tills_connected", "store" => store.clone())
                    .set(s.connected as f64);
                metrics::gauge!("fusion_hub_events_held", "store" => store).set(s.events as f64);
            }
            let export = &lag.export;
            metrics::gauge!("fusion_hub_export_enabled").set(if export.enabled { 1.0 } else { 0.0 });
            metrics::gauge!("fusion_hub_export_behind_events").set(export.behind as f64);
            metrics::counter!("fusion_hub_exported_events_total").absolute(export.report.exported);
            for w in &lag.webhooks {
                let name = w.name.clone();
                metrics::gauge!("fusion_hub_webhook_behind_events", "subscription" => name.clone())
                    .set(w.behind as f64);
                metrics::gauge!("fusion_hub_webhook_dead_letters", "subscription" => name.clone())
                    .set(w.dead_letters as f64);
                metrics::counter!("fusion_hub_webhook_delivered_total", "subscription" => name.clone())
                    .absolute(w.delivered);
                metrics::counter!("fusion_hub_webhook_failed_attempts_total", "subscription" => name)
                    .absolute(w.failed_attempts);
            }
        });
        Ok(handle.render())
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

#[derive(Deserialize)]
struct DlqQuery {
    subscription: Option<String>,
}

async fn dead_letters(
    State(state): State<HubState>,
    headers: HeaderMap,
    Query(query): Query<DlqQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    if let Some(name) = &query.subscription
        && !state.webhooks.names().contains(name)
    {
        return Err(unknown_subscription(name));
    }
    let letters = state
        .store
        .dead_letters(query.subscription.as_deref())
        .map_err(internal)?;
    Ok(ok(&letters))
}

fn unknown_subscription(name: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        Some("subscription"),
        &format!("no webhook subscription named {name:?}"),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryRequest {
    subscription: Option<String>,
}

async fn retry_dead_letters(
    State(state): State<HubState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let request: RetryRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RetryRequest::default()
    } else {
        parse_body(&body)?
    };
    match state
        .webhooks
        .retry(&state.store, request.subscription.as_deref())
        .await
    {
        Ok(report) => Ok(ok(&report)),
        Err(crate::webhook::WebhookError::Unknown(name)) => Err(unknown_subscription(&name)),
        Err(e) => Err(internal(e)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateTokenRequest {
    role: HubRole,
    #[serde(default)]
    label: Option<String>,
}

/// A created token: the record and, this once, its secret.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedToken {
    #[serde(flatten)]
    record: HubToken,
    token: String,
}

async fn create_token(
    State(state): State<HubState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let request: CreateTokenRequest = parse_body(&body)?;
    let label = match request.label.map(|l| l.trim().to_string()) {
        Some(l) if l.chars().count() > 200 => {
            return Err(invalid("label", "must be at most 200 characters"));
        }
        Some(l) if l.is_empty() => None,
        other => other,
    };
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(internal)?;
    let token = format!("fch_{}", hex::encode(secret));
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let record = HubToken {
        id: uuid::Uuid::now_v7().to_string(),
        role: request.role,
        label,
        created_at: state.store.now(),
    };
    let store = state.store.clone();
    let stored = record.clone();
    blocking(move || store.add_token(&hash, &stored)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken { record, token }),
    )
        .into_response())
}

async fn list_tokens(
    State(state): State<HubState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let store = state.store.clone();
    Ok(ok(&blocking(move || store.tokens()).await?))
}

async fn revoke_token(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let store = state.store.clone();
    let target = id.clone();
    if blocking(move || store.revoke_token(&target)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(id_not_found(format!("no token {id}")))
    }
}

/// One store's sku in `GET /escrow`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EscrowRow {
    store_id: String,
    sku: String,
    /// The hub's holder of the store's rights (a till gives it rights by transferring to it).
    hub_holder: String,
    /// Units the holders may still sell, summed.
    held: u64,
    reserved: u64,
    in_transit: u64,
    holders: Vec<EscrowHolder>,
    transfers_in_transit: Vec<crate::store::Transfer>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EscrowHolder {
    origin: String,
    held: u64,
    reserved: u64,
}

async fn escrow(
    State(state): State<HubState>,
    headers: HeaderMap,
    query: Result<Query<StockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let query = stock_query(query)?;
    let store = state.store.clone();
    // One snapshot: a transfer stored between two reads would show twice (held and in transit).
    let (stock, transfers) = blocking(move || store.escrow_snapshot()).await?;
    let mut rows: std::collections::BTreeMap<(String, String), EscrowRow> = Default::default();
    let origin_store: HashMap<String, String> = stock
        .iter()
        .map(|t| (t.origin.clone(), t.store_id.clone()))
        .collect();
    let wanted = |store: &str, sku: &str| {
        query.store.as_deref().is_none_or(|s| s == store)
            && query.sku.as_deref().is_none_or(|s| s == sku)
    };
    let hub = state.store.clone();
    let row = |store: &str, sku: &str| EscrowRow {
        store_id: store.to_string(),
        sku: sku.to_string(),
        hub_holder: StoreId::new(store)
            .map(|s| hub.holder(&s).to_string())
            .unwrap_or_default(),
        held: 0,
        reserved: 0,
        in_transit: 0,
        holders: Vec::new(),
        transfers_in_transit: Vec::new(),
    };
    for t in stock {
        if !wanted(&t.store_id, &t.sku) {
            continue;
        }
        let r = rows
            .entry((t.store_id.clone(), t.sku.clone()))
            .or_insert_with(|| row(&t.store_id, &t.sku));
        r.held += t.available;
        r.reserved += t.reserved;
        r.holders.push(EscrowHolder {
            origin: t.origin,
            held: t.available,
            reserved: t.reserved,
        });
    }
    for t in transfers.into_iter().filter(|t| !t.received) {
        let store_id = origin_store
            .get(&t.from)
            .cloned()
            .unwrap_or_else(|| "-".to_string());
        if !wanted(&store_id, &t.sku) {
            continue;
        }
        let r = rows
            .entry((store_id.clone(), t.sku.clone()))
            .or_insert_with(|| row(&store_id, &t.sku));
        r.in_transit += t.quantity;
        r.transfers_in_transit.push(t);
    }
    Ok(ok(&rows.into_values().collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EscrowTransferBody {
    store_id: StoreId,
    sku: fusion_contracts::Sku,
    to: fusion_contracts::NodeId,
    quantity: u64,
}

/// A refusal of the hub's escrow as a 4xx.
fn refused(refusal: crate::store::EscrowRefusal) -> ApiError {
    use crate::store::EscrowRefusal;
    match refusal {
        EscrowRefusal::Invalid { field, message } => error(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
            &message,
        ),
        EscrowRefusal::Insufficient { available, message } => {
            let mut e = error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "insufficient_rights",
                Some("quantity"),
                &message,
            );
            e.1.available = Some(available);
            e
        }
    }
}

async fn escrow_transfer(
    State(state): State<HubState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let body: EscrowTransferBody = parse_body(&body)?;
    if !(1..=fusion_contracts::commands::QUANTITY_MAX).contains(&body.quantity) {
        return Err(invalid("quantity", "must be between 1 and 1000000000"));
    }
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let transfer = blocking(move || {
        store.transfer(
            &body.store_id,
            &body.sku,
            &body.to,
            body.quantity,
            correlation_id,
        )
    })
    .await?
    .map_err(refused)?;
    Ok((StatusCode::CREATED, axum::Json(transfer)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReclaimBody {
    node_id: fusion_contracts::NodeId,
}

async fn escrow_reclaim(
    State(state): State<HubState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let body: ReclaimBody = parse_body(&body)?;
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let reclaim = blocking(move || store.reclaim(&body.node_id, correlation_id))
        .await?
        .map_err(refused)?;
    // Durable first, then cut: a reconnect in between is refused by the gate.
    if let Some(endpoint) = reclaim.revoked.as_deref().and_then(|e| e.parse().ok()) {
        let cut = state.gate.cut(endpoint);
        tracing::info!(node = %reclaim.node_id, cut, "reclaimed a lost till's rights");
    }
    Ok(ok(&reclaim))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RebalanceBody {
    store_id: Option<StoreId>,
    #[serde(default)]
    keep: u64,
}

async fn escrow_rebalance(
    State(state): State<HubState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let body: RebalanceBody = if body.is_empty() {
        RebalanceBody::default()
    } else {
        parse_body(&body)?
    };
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let moved =
        blocking(move || store.rebalance(body.store_id.as_ref(), body.keep, correlation_id))
            .await?;
    Ok(ok(&moved))
}

fn campaign_id(id: &str) -> Result<fusion_contracts::CampaignId, ApiError> {
    fusion_contracts::CampaignId::parse(id)
        .ok_or_else(|| id_not_found(format!("campaign {id} not found")))
}

async fn campaign_seats(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let campaign = campaign_id(&id)?;
    let store = state.store.clone();
    match blocking(move || store.hub_campaign(campaign)).await? {
        Some(row) => Ok(ok(&row)),
        None => Err(id_not_found(format!(
            "campaign {id} shares no seats with the hub"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GiveSeatsBody {
    to: fusion_contracts::NodeId,
    seats: u32,
}

async fn give_seats(
    State(state): State<HubState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let campaign = campaign_id(&id)?;
    let body: GiveSeatsBody = parse_body(&body)?;
    if body.seats == 0 {
        return Err(invalid("seats", "must be positive"));
    }
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let row = blocking(move || store.give_seats(campaign, &body.to, body.seats, correlation_id))
        .await?
        .map_err(refused)?;
    Ok((StatusCode::CREATED, axum::Json(row)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetQuery {
    store: Option<String>,
}

async fn escrow_budget(
    State(state): State<HubState>,
    headers: HeaderMap,
    query: Result<Query<BudgetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let Query(query) = query.map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            None,
            &format!("{}; the parameter is store", e.body_text()),
        )
    })?;
    let store = state.store.clone();
    let rows = blocking(move || store.budgets()).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| query.store.as_deref().is_none_or(|s| s == r.store_id))
        .collect();
    Ok(ok(&rows))
}

async fn escrow_campaigns(
    State(state): State<HubState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let store = state.store.clone();
    Ok(ok(&blocking(move || store.hub_campaigns()).await?))
}
