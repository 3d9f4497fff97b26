//! Who may talk to the hub: `GET|POST /enrollments`, `DELETE /enrollments/{nodeId}` (revokes
//! and cuts live sync connections), `GET|POST /tokens`, `DELETE /tokens/{id}`.

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fusion_contracts::StoreId;
use fusion_contracts::http::hub::{
    CreateHubTokenRequest, CreatedHubToken, EnrollRequest, Enrollment,
};
use fusion_http::{ApiError, Json, blocking};

use super::{Admin, HubState, Viewer, ok, parse_node_id};
use crate::store::HubToken;

pub(super) async fn enrollments(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let body: Vec<Enrollment> = state
        .store
        .enrollments()
        .map_err(ApiError::internal_from)?
        .into_iter()
        .map(|(node_id, store_id)| Enrollment { node_id, store_id })
        .collect();
    Ok(ok(&body))
}

pub(super) async fn enroll(
    State(state): State<HubState>,
    _caller: Admin,
    Json(body): Json<EnrollRequest>,
) -> Result<Response, ApiError> {
    let node = parse_node_id("nodeId", &body.node_id)?;
    let store_id = body.store_id;
    let store_id =
        StoreId::new(store_id.trim()).map_err(|e| ApiError::validation("storeId", e.reason))?;
    let store_id = store_id.as_str();
    state
        .store
        .enroll(node, store_id)
        .map_err(ApiError::internal_from)?;
    tracing::info!(node = %node, store = store_id, "enrolled");
    let body = Enrollment {
        node_id: node.to_string(),
        store_id: store_id.to_string(),
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

pub(super) async fn revoke(
    State(state): State<HubState>,
    _caller: Admin,
    UrlPath(node_id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let node = parse_node_id("nodeId", &node_id)?;
    let was_enrolled = state.store.revoke(node).map_err(ApiError::internal_from)?;
    // Durable first, then cut: a reconnect in between is refused by the gate.
    let cut = state.gate.cut(node);
    tracing::info!(node = %node, cut, "revoked");
    if !was_enrolled {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("node {node} is not enrolled"),
        )
        .with_field("nodeId"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn create_token(
    State(state): State<HubState>,
    _caller: Admin,
    Json(request): Json<CreateHubTokenRequest>,
) -> Result<Response, ApiError> {
    let label = match request.label.map(|l| l.trim().to_string()) {
        Some(l) if l.chars().count() > 200 => {
            return Err(ApiError::validation(
                "label",
                "must be at most 200 characters",
            ));
        }
        Some(l) if l.is_empty() => None,
        other => other,
    };
    let (token, hash) = fusion_http::token::generate(fusion_http::token::HUB_TOKEN_PREFIX)
        .map_err(ApiError::internal_from)?;
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
        axum::Json(CreatedHubToken { record, token }),
    )
        .into_response())
}

pub(super) async fn list_tokens(
    State(state): State<HubState>,
    _caller: Admin,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    Ok(ok(&blocking(move || store.tokens()).await?))
}

pub(super) async fn revoke_token(
    State(state): State<HubState>,
    _caller: Admin,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let target = id.clone();
    if blocking(move || store.revoke_token(&target)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("no token {id}")).with_field("id"))
    }
}
