//! The HTTP API (axum): FusionCommerce's routes and bodies plus this project's additions.
//!
//! Handlers parse and validate the request, check the caller's role, turn the body into a
//! command, hand it to the store's writer and answer once it is durably committed. They never
//! touch redb; this is the only module that imports axum.

mod error;
mod events;
mod extract;
mod inventory;
mod ops;
mod orders;
mod products;
mod tokens;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
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

use crate::store::{Command, Decision, Outcome, Store, WriteRequest};
use extract::{RequestId, WriteContext};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: PrometheusHandle,
}

/// Every route of the node.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/products", post(products::create).get(products::list))
        .route(
            "/products/{id}",
            get(products::get)
                .patch(products::update)
                .delete(products::archive),
        )
        .route("/inventory", get(inventory::list).put(inventory::set))
        .route("/inventory/{sku}", get(inventory::get))
        .route("/inventory/{sku}/adjust", post(inventory::adjust))
        .route("/orders", post(orders::place).get(orders::list))
        .route("/orders/{id}", get(orders::get))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/events", get(events::list))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn(track))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "FusionCommerce Edge node", description = "Catalog, inventory and orders of one store node. \
        Every route but /health and /ready needs `Authorization: Bearer <token>`."),
    paths(
        ops::health, ops::ready, ops::metrics, ops::openapi,
        products::create, products::list, products::get, products::update, products::archive,
        inventory::set, inventory::list, inventory::get, inventory::adjust,
        orders::place, orders::list, orders::get, orders::cancel,
        events::list,
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

/// Per request: a correlation id (taken from `X-Correlation-Id` or made), a tracing span with
/// method and matched route, and the request metrics.
async fn track(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    let correlation_id = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| CorrelationId::new(v).ok())
        .unwrap_or_else(new_correlation_id);
    req.extensions_mut().insert(RequestId {
        correlation_id: correlation_id.clone(),
    });
    let span = tracing::debug_span!("request", %method, route, correlation_id = %correlation_id);
    let mut response = next.run(req).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(correlation_id.as_str()) {
        response.headers_mut().insert("x-correlation-id", value);
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("fusion_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("fusion_http_request_duration_seconds", "method" => method.to_string(), "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
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

/// A command answered with an outcome of another kind: a bug, reported as 500.
fn unexpected(outcome: Outcome) -> ApiError {
    tracing::error!(?outcome, "command produced an unexpected outcome");
    ApiError::internal()
}
