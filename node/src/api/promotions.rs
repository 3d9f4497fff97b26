//! `/promotions`: the store's promotions (read by any role, changed by a manager). They live in
//! the store's settings document, one key each, so every till of the store applies the same
//! ones offline (`fusion_rules::pricing`), and a change made at one reaches the others and the
//! hub.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fusion_contracts::PromotionId;
use fusion_contracts::http::{ErrorBody, Role, SettingsChange};
use fusion_contracts::pricing::{PROMOTIONS_MAX, Promotion, PromotionBody};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Principal};
use super::{AppState, json};

fn parse_id(id: &str) -> Result<PromotionId, ApiError> {
    Uuid::parse_str(id)
        .map(PromotionId)
        .map_err(|_| ApiError::not_found(format!("promotion {id} not found")))
}

/// Writes (or, with `None`, ends) one promotion in the store's settings.
async fn write(
    state: &AppState,
    id: PromotionId,
    promotion: Option<Promotion>,
) -> Result<(), ApiError> {
    let mut change = SettingsChange::default();
    change.promotions.insert(id, promotion);
    match state.store.update_settings(&change).await? {
        Ok(_) => Ok(()),
        Err(no_store) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_store_id",
            no_store.to_string(),
        )),
    }
}

/// The store's promotions, running or not, by id.
#[utoipa::path(get, path = "/promotions", tag = "promotions",
    responses((status = 200, body = Vec<PromotionBody>)))]
pub async fn list(State(state): State<AppState>, _who: Principal) -> Result<Response, ApiError> {
    let bodies: Vec<PromotionBody> = state
        .store
        .settings()
        .promotions
        .iter()
        .map(PromotionBody::from)
        .collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

/// Start a promotion (`percentOff` of skus or categories, or `multiBuy`: N for a price),
/// optionally within a window. Every till of the store applies it to the orders it prices.
#[utoipa::path(post, path = "/promotions", tag = "promotions", request_body = PromotionBody,
    responses((status = 201, body = PromotionBody), (status = 400, description = "names the field", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "no store id, or too many promotions", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    body: JsonBody<PromotionBody>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    if body.value.id.is_some() {
        return Err(ApiError::validation(
            "id",
            "is given by the node; PUT /promotions/{id} replaces one",
        ));
    }
    let promotion = body.value.into_promotion(PromotionId(Uuid::now_v7()))?;
    if state.store.settings().promotions.len() >= PROMOTIONS_MAX {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_promotions",
            format!("a store runs at most {PROMOTIONS_MAX} promotions; end one first"),
        ));
    }
    write(&state, promotion.id, Some(promotion.clone())).await?;
    Ok(json(
        StatusCode::CREATED,
        false,
        &PromotionBody::from(&promotion),
    ))
}

/// Replace a promotion (or create it under this id).
#[utoipa::path(put, path = "/promotions/{id}", tag = "promotions", params(("id" = Uuid, Path)),
    request_body = PromotionBody,
    responses((status = 200, body = PromotionBody), (status = 400, description = "names the field", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replace(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: JsonBody<PromotionBody>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let id = parse_id(&id)?;
    if body.value.id.is_some_and(|named| named != id) {
        return Err(ApiError::validation("id", "must be the id of the path"));
    }
    let promotion = body.value.into_promotion(id)?;
    write(&state, id, Some(promotion.clone())).await?;
    Ok(json(
        StatusCode::OK,
        false,
        &PromotionBody::from(&promotion),
    ))
}

/// End a promotion: orders priced from now on do not get it.
#[utoipa::path(delete, path = "/promotions/{id}", tag = "promotions", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let id = parse_id(&id)?;
    if !state.store.settings().promotions.iter().any(|p| p.id == id) {
        return Err(ApiError::not_found(format!("promotion {id} not found")));
    }
    write(&state, id, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
