//! Operations endpoints: `/health` and `/ready` (open), `/metrics`, `/sync/status` and
//! `/openapi.json` (any token).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::Timestamp;
use fusion_contracts::http::{
    ErrorBody, HealthResponse, OfflineCards, Role as AccessRole, SyncPeerStatus, SyncStatusResponse,
};
use fusion_sync::net::SendReport;

use crate::replication::Role;
use utoipa::OpenApi;

use super::error::ApiError;
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
    for link in state.sync.iter().flat_map(|s| s.peers.iter()) {
        let report = link.log.report();
        let peer = match link.role {
            Role::Hub => "hub".to_string(),
            Role::Till => link.id.fmt_short().to_string(),
        };
        let connected = if report.connected { 1.0 } else { 0.0 };
        metrics::gauge!("fusion_sync_connected", "peer" => peer.clone()).set(connected);
        if let Ok((_, pending)) = backlog(&state, &report) {
            metrics::gauge!("fusion_sync_pending_events", "peer" => peer.clone())
                .set(pending as f64);
        }
        if let Some(ms) = report.last_contact_ms {
            metrics::gauge!("fusion_sync_last_contact_seconds", "peer" => peer)
                .set(ms as f64 / 1000.0);
        }
    }
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A peer's acknowledged position in this node's log, and how many events it lacks — from the
/// log as it is now, not as of the session's last step.
fn backlog(state: &AppState, report: &SendReport) -> Result<(u64, u64), ApiError> {
    let acked = report
        .acked
        .get(state.store.node_id())
        .copied()
        .unwrap_or(0);
    let last = state.store.read()?.last_seq()?;
    Ok((acked, last.saturating_sub(acked)))
}

/// Replication peers: connected or not, last contact, pending events and lag.
#[utoipa::path(get, path = "/sync/status", tag = "ops", responses((status = 200, body = SyncStatusResponse)))]
pub async fn sync_status(
    State(state): State<AppState>,
    _who: Principal,
) -> Result<Response, ApiError> {
    let mut peers = Vec::new();
    let revoked = state.store.read()?.revoked_peers()?;
    for link in state.sync.iter().flat_map(|s| s.peers.iter()) {
        let report = link.log.report();
        let docs = link.docs.report();
        let (acked, pending) = backlog(&state, &report)?;
        // The oldest event the peer lacks says how far behind it is.
        let oldest = if pending > 0 {
            state
                .store
                .read()?
                .events_after(acked, 1)?
                .into_iter()
                .next()
        } else {
            None
        };
        let now = state.store.now().unix_ms();
        peers.push(SyncPeerStatus {
            role: link.role.as_str().into(),
            endpoint_id: link.id.to_string(),
            address: link
                .addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(","),
            connected: report.connected,
            documents_connected: docs.connected,
            last_contact: report
                .last_contact_ms
                .max(docs.last_contact_ms)
                .map(Timestamp::from_unix_ms),
            pending_events: pending,
            lag_ms: oldest.map_or(0, |e| (now - e.occurred_at.unix_ms()).max(0) as u64),
            revoked: revoked.contains_key(&link.id.to_string()),
        });
    }
    let read = state.store.read()?;
    let (awaiting, oldest_at) = read.offline_cards()?;
    let now = state.store.now().unix_ms();
    let offline_cards = OfflineCards {
        awaiting,
        oldest_at,
        oldest_age_ms: oldest_at.map_or(0, |t| (now - t.unix_ms()).max(0) as u64),
        budget: super::inventory::card_budget(&state, &read)?,
    };
    drop(read);
    let documents = state.store.doc_stats();
    let body = SyncStatusResponse {
        offline_cards: Some(offline_cards),
        documents: Some(documents.into()),
        node_id: state.store.node_id().to_string(),
        endpoint_id: state.sync.as_ref().map(|l| l.endpoint_id.to_string()),
        peers,
        refused: state
            .store
            .refusals()
            .into_iter()
            .map(|(rule, n)| (rule.to_string(), n))
            .collect(),
    };
    Ok(json(StatusCode::OK, false, &body))
}

/// This API's OpenAPI 3.1 document, generated from the handlers and types.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, body = Object)))]
pub async fn openapi(_who: Principal) -> Response {
    json(StatusCode::OK, false, &super::ApiDoc::openapi())
}

/// A consistent copy of the store (one read snapshot; writers go on), as a redb file (admin).
/// `X-Fusion-Last-Seq` is the last event in it: everything acknowledged before the request is
/// at or before it. `fusion node backup` saves and verifies it.
#[utoipa::path(get, path = "/backup", tag = "ops",
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 403, body = ErrorBody)))]
pub async fn backup(State(state): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    who.require(AccessRole::Admin)?;
    let store = state.store.clone();
    let path = store
        .path()
        .with_file_name(format!(".backup-{}.redb", uuid::Uuid::now_v7()));
    let (info, file) = tokio::task::spawn_blocking(move || {
        let info = store.backup_to(&path);
        // Open, then unlink: the open handle streams it; nothing is left behind.
        let file = std::fs::File::open(&path);
        let _ = std::fs::remove_file(&path);
        (info, file)
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let info = info?;
    let file = file.map_err(|e| {
        tracing::error!(error = %e, "opening the backup copy");
        ApiError::internal()
    })?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(file),
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, info.bytes.to_string()),
            (
                header::HeaderName::from_static("x-fusion-last-seq"),
                info.last_seq.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
