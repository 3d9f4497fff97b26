//! The store's shared settings: `GET /settings` (any role), `PATCH /settings` (manager). They live
//! in the store's settings document, so a change made here reaches the store's other tills and
//! the hub, and one made at the hub reaches this till.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::http::{ErrorBody, Role, SettingsRequest, SettingsResponse};
use fusion_sync::docs::StoreSettings;

use super::error::ApiError;
use super::extract::{JsonBody, Principal};
use super::{AppState, json};

fn render(state: &AppState, settings: StoreSettings) -> SettingsResponse {
    settings.response(state.store.store_id().cloned())
}

/// The store's shared settings; absent fields are unset (the node's flags apply).
#[utoipa::path(get, path = "/settings", tag = "settings",
    responses((status = 200, body = SettingsResponse)))]
pub async fn get(State(state): State<AppState>, _who: Principal) -> Result<Response, ApiError> {
    let body = render(&state, state.store.settings());
    Ok(json(StatusCode::OK, false, &body))
}

/// Change the store's shared settings: absent leaves a field, `null` unsets it. 409 when the node
/// has no store id.
#[utoipa::path(patch, path = "/settings", tag = "settings", request_body = SettingsRequest,
    responses((status = 200, body = SettingsResponse), (status = 400, description = "names the field", body = ErrorBody),
        (status = 409, description = "no store id", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    body: JsonBody<SettingsRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let change = body.value.into_change()?;
    match state.store.update_settings(&change).await? {
        Ok(settings) => Ok(json(StatusCode::OK, false, &render(&state, settings))),
        Err(no_store) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_store_id",
            no_store.to_string(),
        )),
    }
}
