//! `GET /events`: this node's event log, in order, for consumers that poll.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::events::EventRecord;

use super::error::ApiError;
use super::extract::{Principal, query_number};
use super::{AppState, json};

/// Most events served in one page.
const EVENTS_LIMIT_MAX: usize = 1000;
const EVENTS_LIMIT_DEFAULT: usize = 100;

/// Events with `seq > after`, oldest first. Page by passing the last `seq` seen as `after`.
#[utoipa::path(get, path = "/events", tag = "events",
    params(("after" = Option<u64>, Query, description = "return events after this seq; default 0"),
        ("limit" = Option<usize>, Query, description = "1–1000, default 100")),
    responses((status = 200, body = Vec<EventRecord>)))]
pub async fn list(
    State(state): State<AppState>,
    _who: Principal,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let after = query_number(&query, "after", 0, 0, usize::MAX)? as u64;
    let limit = query_number(&query, "limit", EVENTS_LIMIT_DEFAULT, 1, EVENTS_LIMIT_MAX)?;
    let envelopes = state.store.read()?.events_after(after, limit)?;
    let records = envelopes
        .iter()
        .map(|e| e.to_record())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "a logged event does not render as JSON");
            ApiError::internal()
        })?;
    Ok(json(StatusCode::OK, false, &records))
}
