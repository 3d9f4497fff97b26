//! The HTTP API (axum): FusionCommerce's routes and bodies plus this project's additions.
//!
//! Handlers parse and validate the request, check the caller's role, turn the body into a
//! command, hand it to the store's writer and answer once it is durably committed. They never
//! touch redb; this is the only module that imports axum.

mod campaigns;
mod error;
mod events;
mod extract;
mod inventory;
mod ops;
mod orders;
mod payments;
mod products;
mod promotions;
mod receipts;
mod register;
mod sessions;
mod settings;
mod shipping;
pub(crate) mod staff;
mod tokens;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fusion_contracts::CorrelationId;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use error::ApiError;
pub use extract::BODY_BYTES_MAX;

use crate::card::{CardProvider, PaymentPolicy};
use crate::store::{Command, Decision, Outcome, Store, WriteRequest};
use extract::{CorrelationSlot, WriteContext};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: PrometheusHandle,
    /// The card provider; `None` when the node takes no cards.
    pub card: Option<Arc<dyn CardProvider>>,
    /// Serialises provider calls per payment (striped by payment id).
    pub payment_locks: Arc<[tokio::sync::Mutex<()>]>,
    pub payment_policy: PaymentPolicy,
    /// The link to the hub, when this node replicates to one.
    pub sync: Option<Arc<crate::replication::SyncLinks>>,
    /// Who is signed in at this till, and their PIN attempts.
    pub staff: Arc<crate::staff::StaffDesk>,
    /// The till's receipt printer, when one is configured.
    pub printer: Option<crate::printer::Printer>,
}

/// Stripes of `payment_locks`: payments that share a stripe wait for each other, which at till
/// rates costs nothing.
pub const PAYMENT_LOCK_STRIPES: usize = 64;

impl AppState {
    pub fn new(store: Store, metrics: PrometheusHandle) -> Self {
        let payment_locks = (0..PAYMENT_LOCK_STRIPES)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect();
        Self {
            store,
            metrics,
            card: None,
            payment_locks,
            payment_policy: PaymentPolicy::default(),
            sync: None,
            staff: Arc::default(),
            printer: None,
        }
    }

    pub(crate) fn payment_lock(&self, id: fusion_contracts::PaymentId) -> &tokio::sync::Mutex<()> {
        &self.payment_locks[(id.as_u128() % self.payment_locks.len() as u128) as usize]
    }
}

/// Every route of the node.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/products", post(products::create).get(products::list))
        .route("/products/by-sku/{sku}", get(products::by_sku))
        .route(
            "/products/{id}",
            get(products::get)
                .patch(products::update)
                .delete(products::archive),
        )
        .route("/inventory", get(inventory::list).put(inventory::set))
        .route("/inventory/{sku}", get(inventory::get))
        .route("/inventory/{sku}/adjust", post(inventory::adjust))
        .route("/inventory/{sku}/transfer", post(inventory::transfer))
        .route("/escrow", get(inventory::escrow))
        .route(
            "/escrow/card-budget/transfer",
            post(inventory::transfer_budget),
        )
        .route("/register", get(register::page))
        .route("/register/register.js", get(register::script))
        .route("/register/register.css", get(register::style))
        .route("/orders", post(orders::place).get(orders::list))
        .route("/orders/quote", post(orders::quote))
        .route("/orders/{id}", get(orders::get))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/orders/{id}/returns", post(orders::return_lines))
        .route("/orders/{id}/exchanges", post(orders::exchange))
        .route("/orders/{id}/receipt", get(receipts::get))
        .route("/orders/{id}/receipt/prints", post(receipts::print))
        .route("/orders/{id}/receipt/emails", post(receipts::email))
        .route("/printer", get(receipts::printer))
        .route("/receipts/{number}", get(receipts::by_number))
        .route("/returns/{id}/receipt", get(receipts::of_return))
        .route("/events", get(events::list))
        .route("/sync/status", get(ops::sync_status))
        .route("/settings", get(settings::get).patch(settings::update))
        .route(
            "/promotions",
            get(promotions::list).post(promotions::create),
        )
        .route(
            "/promotions/{id}",
            axum::routing::put(promotions::replace).delete(promotions::end),
        )
        .route("/staff", get(staff::list).post(staff::create))
        .route("/staff/sign-in", post(staff::sign_in))
        .route("/staff/sign-out", post(staff::sign_out))
        .route(
            "/staff/{id}",
            axum::routing::patch(staff::update).delete(staff::remove),
        )
        .route("/sessions", post(sessions::open).get(sessions::list))
        .route("/sessions/current", get(sessions::current))
        .route("/sessions/{id}", get(sessions::get))
        .route("/sessions/{id}/cash", post(sessions::cash))
        .route("/sessions/{id}/close", post(sessions::close))
        .route("/sessions/{id}/report", get(sessions::report))
        .route("/backup", get(ops::backup))
        .route("/campaigns", post(campaigns::create).get(campaigns::list))
        .route("/campaigns/{id}", get(campaigns::get))
        .route("/campaigns/{id}/join", post(campaigns::join))
        .route("/campaigns/{id}/leave", post(campaigns::leave))
        .route("/campaigns/{id}/cancel", post(campaigns::cancel))
        .route(
            "/campaigns/{id}/seats/transfer",
            post(campaigns::transfer_seats),
        )
        .route("/payments", post(payments::create))
        .route("/payments/{id}", get(payments::get))
        .route("/payments/{id}/capture", post(payments::capture))
        .route("/payments/{id}/refund", post(payments::refund))
        .route("/orders/{id}/payments", get(payments::of_order))
        .route("/store-credit/{account}", get(payments::credit))
        .route(
            "/store-credit/{account}/issue",
            post(payments::issue_credit),
        )
        .route("/shipping/labels", post(shipping::create))
        .route("/shipping/labels/{id}", get(shipping::get))
        .route("/shipping/labels/{id}/label.zpl", get(shipping::label))
        .route("/orders/{id}/shipments", get(shipping::of_order))
        .route("/shipments/{id}/status", post(shipping::status))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn(track))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "FusionCommerce Edge node", description = "Catalog, inventory, orders and group buying of one store node. \
        Every route but /health and /ready needs `Authorization: Bearer <token>`."),
    paths(
        ops::health, ops::ready, ops::metrics, ops::sync_status, ops::openapi, ops::backup,
        settings::get, settings::update,
        promotions::list, promotions::create, promotions::replace, promotions::end,
        staff::list, staff::create, staff::update, staff::remove, staff::sign_in, staff::sign_out,
        sessions::open, sessions::list, sessions::current, sessions::get, sessions::cash, sessions::close, sessions::report,
        products::create, products::list, products::get, products::by_sku, products::update, products::archive,
        inventory::set, inventory::list, inventory::get, inventory::adjust, inventory::transfer,
        inventory::escrow, inventory::transfer_budget,
        orders::place, orders::quote, orders::list, orders::get, orders::cancel, orders::return_lines, orders::exchange, receipts::get, receipts::print, receipts::email, receipts::printer, receipts::by_number, receipts::of_return,
        events::list,
        campaigns::create, campaigns::list, campaigns::get, campaigns::join, campaigns::leave, campaigns::cancel, campaigns::transfer_seats,
                payments::create, payments::get, payments::of_order, payments::capture, payments::refund,
        payments::credit, payments::issue_credit,
                shipping::create, shipping::get, shipping::label, shipping::of_order, shipping::status,
        tokens::create, tokens::list, tokens::revoke,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

fn new_correlation_id() -> CorrelationId {
    CorrelationId::new(uuid::Uuid::now_v7().to_string()).expect("a uuid is a valid correlation id")
}

/// Per request: the correlation id from `X-Correlation-Id` (writes without one get a new one,
/// see `WriteContext`), echoed in the answer; a tracing span with method and matched route; and
/// the request metrics. Labels are static strings: no allocation per request.
async fn track(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| route_label(p.as_str()));
    let incoming = req
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| CorrelationId::new(v).ok());
    let slot = CorrelationSlot::default();
    if let Some(correlation_id) = incoming {
        let _ = slot.0.set(correlation_id);
    }
    req.extensions_mut().insert(slot.clone());
    let span = tracing::debug_span!("request", method, route);
    let mut response = next.run(req).instrument(span).await;
    let status = status_label(response.status());
    metrics::counter!("fusion_http_requests_total", "method" => method, "route" => route, "status" => status).increment(1);
    metrics::histogram!("fusion_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    if let Some(id) = slot.0.get()
        && let Ok(value) = HeaderValue::from_str(id.as_str())
    {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

const CORRELATION_HEADER: &str = "x-correlation-id";

/// Every route pattern, for metric labels.
const ROUTES: &[&str] = &[
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/register",
    "/register/register.js",
    "/register/register.css",
    "/products",
    "/products/{id}",
    "/inventory",
    "/inventory/{sku}",
    "/inventory/{sku}/adjust",
    "/orders",
    "/orders/quote",
    "/orders/{id}",
    "/orders/{id}/cancel",
    "/orders/{id}/returns",
    "/orders/{id}/exchanges",
    "/orders/{id}/receipt",
    "/orders/{id}/receipt/prints",
    "/orders/{id}/receipt/emails",
    "/printer",
    "/receipts/{number}",
    "/returns/{id}/receipt",
    "/events",
    "/sync/status",
    "/shipping/labels",
    "/shipping/labels/{id}",
    "/shipping/labels/{id}/label.zpl",
    "/orders/{id}/shipments",
    "/shipments/{id}/status",
    "/store-credit/{account}",
    "/store-credit/{account}/issue",
    "/payments",
    "/payments/{id}",
    "/payments/{id}/capture",
    "/payments/{id}/refund",
    "/orders/{id}/payments",
    "/campaigns",
    "/campaigns/{id}",
    "/campaigns/{id}/join",
    "/campaigns/{id}/leave",
    "/campaigns/{id}/cancel",
    "/campaigns/{id}/seats/transfer",
    "/escrow/card-budget/transfer",
    "/tokens",
    "/tokens/{id}",
    "/settings",
    "/promotions",
    "/promotions/{id}",
    "/staff",
    "/staff/{id}",
    "/staff/sign-in",
    "/staff/sign-out",
    "/sessions",
    "/sessions/current",
    "/sessions/{id}",
    "/sessions/{id}/cash",
    "/sessions/{id}/close",
    "/sessions/{id}/report",
];

fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("other")
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

fn status_label(status: StatusCode) -> &'static str {
    const CODES: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (413, "413"),
        (422, "422"),
        (500, "500"),
        (503, "503"),
    ];
    CODES
        .iter()
        .find(|(code, _)| *code == status.as_u16())
        .map_or("other", |(_, label)| label)
}

/// The answer of the writer to one request.
struct Written {
    decision: Decision,
    replayed: bool,
}

/// Hands a command to the writer and waits for its durable commit.
async fn submit(
    state: &AppState,
    ctx: &WriteContext,
    digest: Option<[u8; 32]>,
    command: Command,
) -> Result<Written, ApiError> {
    let request = WriteRequest {
        command,
        correlation_id: ctx.correlation_id.clone(),
        command_id: uuid::Uuid::now_v7(),
        idempotency: digest.and_then(|d| ctx.idempotency(d)),
    };
    let applied = state.store.write(request).await?;
    if applied.key_reused {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request",
        )
        .with_field("Idempotency-Key"));
    }
    Ok(Written {
        decision: applied.decision,
        replayed: applied.replayed,
    })
}

/// A JSON response; replays of an earlier answer say so in `Idempotent-Replayed`.
fn json<T: Serialize>(status: StatusCode, replayed: bool, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The order named by a path segment, if it exists (404 otherwise).
fn existing_order(
    read: &crate::store::Reader,
    id: &str,
) -> Result<fusion_contracts::OrderId, ApiError> {
    let missing = || ApiError::not_found(format!("order {id} not found"));
    let order_id = fusion_contracts::OrderId::parse(id).ok_or_else(missing)?;
    match read.order(order_id)? {
        Some(_) => Ok(order_id),
        None => Err(missing()),
    }
}

/// The hub's own origin (`escrow::hub_origin`), from the configured hub: what `"to": "hub"`
/// names (for stock, per store: `escrow::hub_holder` of it).
fn hub_origin(state: &AppState) -> Result<fusion_contracts::NodeId, ApiError> {
    let hub = state.sync.as_ref().and_then(|links| {
        links
            .peers
            .iter()
            .find(|p| p.role == crate::replication::Role::Hub)
    });
    match hub {
        Some(hub) => Ok(fusion_rules::escrow::hub_origin(&hub.id.to_string())),
        None => Err(ApiError::validation(
            "to",
            "\"hub\" needs a configured hub (--hub)",
        )),
    }
}

/// A command answered with an outcome of another kind: a bug, reported as 500.
fn unexpected(outcome: Outcome) -> ApiError {
    tracing::error!(?outcome, "command produced an unexpected outcome");
    ApiError::internal()
}
