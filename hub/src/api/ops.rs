//! Operating the hub: `GET /sync/status`, `GET /fleet/lag`, `GET /metrics` (Prometheus), the
//! webhook dead letters (`GET /webhooks/dlq`, `POST /webhooks/dlq/retry`).

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::http::hub::{ExportLag, FleetLag, RetryDeadLettersRequest};
use fusion_http::{ApiError, Json, blocking};
use fusion_sync::net::EndpointId;
use serde::{Deserialize, Serialize};

use super::fleet::fleet_store_rows;
use super::{Admin, HubState, Viewer, ok};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PeerStatus {
    pub(super) node_id: String,
    pub(super) store_id: String,
    pub(super) connected: bool,
    /// Unix ms of the node's last frame, since this hub process started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_contact_ms: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OriginStatus {
    pub(super) origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) store_id: Option<String>,
    /// Every event of the origin up to this seq is stored durably here.
    pub(super) position: u64,
}

#[derive(Serialize)]
pub(super) struct SyncStatus {
    pub(super) peers: Vec<PeerStatus>,
    pub(super) origins: Vec<OriginStatus>,
    /// Kafka export: brokers (absent: export is off), events confirmed, last error.
    pub(super) export: crate::export::ExportReport,
    /// Tills' events and batches refused since the hub started, by rule (never stored; see
    /// ARCHITECTURE.md).
    pub(super) refused: std::collections::BTreeMap<&'static str, u64>,
    /// The fleet's documents the hub holds, and those loaded in memory.
    pub(super) documents: fusion_contracts::http::DocumentsStatus,
}

pub(super) async fn sync_status(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    use fusion_sync::net::EventSink;
    let connected = state.gate.connected();
    let mut peers = Vec::new();
    for (node_id, store_id) in state.store.enrollments().map_err(ApiError::internal_from)? {
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
                .map_err(ApiError::internal_from)?,
            origin: origin.to_string(),
            position,
        });
    }
    let body = SyncStatus {
        peers,
        origins,
        export: state.export.report(),
        refused: state.store.refusals(),
        documents: state.docs.stats().into(),
    };
    Ok(ok(&body))
}

pub(super) async fn lag(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let body = blocking(move || lag_report(&state)).await?;
    Ok(ok(&body))
}

pub(super) fn lag_report(state: &HubState) -> Result<FleetLag, String> {
    let durable = state.store.durable_positions().map_err(|e| e.to_string())?;
    let exported = state.store.export_positions().map_err(|e| e.to_string())?;
    let report = state.export.report();
    let behind = durable
        .iter()
        .map(|(origin, upto)| upto.saturating_sub(exported.get(origin).copied().unwrap_or(0)))
        .sum();
    Ok(FleetLag {
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

/// `GET /metrics`: the hub's state as Prometheus gauges and counters, read at scrape time into
/// a recorder of this request (the process-wide one may belong to an embedding program).
pub(super) async fn prometheus(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let text = blocking(move || -> Result<String, String> {
        let stores = fleet_store_rows(&state)?;
        let lag = lag_report(&state)?;
        let refused = state.store.refusals();
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
            for (rule, n) in &refused {
                metrics::counter!("fusion_hub_events_refused_total", "rule" => *rule).absolute(*n);
            }
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
pub(super) struct DlqQuery {
    pub(super) subscription: Option<String>,
}

pub(super) async fn dead_letters(
    State(state): State<HubState>,
    _caller: Viewer,
    Query(query): Query<DlqQuery>,
) -> Result<Response, ApiError> {
    if let Some(name) = &query.subscription
        && !state.webhooks.names().contains(name)
    {
        return Err(unknown_subscription(name));
    }
    let letters = state
        .store
        .dead_letters(query.subscription.as_deref())
        .map_err(ApiError::internal_from)?;
    Ok(ok(&letters))
}

pub(super) fn unknown_subscription(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no webhook subscription named {name:?}"),
    )
    .with_field("subscription")
}

pub(super) async fn retry_dead_letters(
    State(state): State<HubState>,
    _caller: Admin,
    Json(request): Json<RetryDeadLettersRequest>,
) -> Result<Response, ApiError> {
    match state
        .webhooks
        .retry(&state.store, request.subscription.as_deref())
        .await
    {
        Ok(report) => Ok(ok(&report)),
        Err(crate::webhook::WebhookError::Unknown(name)) => Err(unknown_subscription(&name)),
        Err(e) => Err(ApiError::internal_from(e)),
    }
}
