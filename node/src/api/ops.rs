//! Operations endpoints: `/health` and `/ready` (open), `/metrics` and `/openapi.json` (any token).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::http::HealthResponse;
use utoipa::OpenApi;

use super::extract::Principal;
use super::{AppState, json};

/// Liveness: the process answers HTTP.
#[utoipa::path(get, path = "/health", tag = "ops", security(()), responses((status = 200, body = HealthResponse)))]
pub async fn health() -> Response {
    json(
        StatusCode::OK,
        false,
        &HealthResponse {
            status: "ok".into(),
        },
    )
}

/// Readiness: the store accepts writes.
#[utoipa::path(get, path = "/ready", tag = "ops", security(()),
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.store.is_ready() {
        json(
            StatusCode::OK,
            false,
            &HealthResponse {
                status: "ready".into(),
            },
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            false,
            &HealthResponse {
                status: "unavailable".into(),
            },
        )
    }
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>, _who: Principal) -> Response {
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This API's OpenAPI 3.1 document, generated from the handlers and types.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, body = Object)))]
pub async fn openapi(_who: Principal) -> Response {
    json(StatusCode::OK, false, &super::ApiDoc::openapi())
}
