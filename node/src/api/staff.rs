//! `/staff`: the store's staff members (listed by any role, managed by a manager), signing in
//! at this till with a PIN, and the PIN check a manager's approval uses. Members live in the
//! store's settings document, so a cashier added at one till signs in at any till of the
//! store, offline; a PIN travels only in a request and is kept only as its argon2 hash.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::StaffId;
use fusion_contracts::http::staff::{
    CreateStaffRequest, STAFF_MAX, SignInRequest, SignInResponse, StaffRecord, StaffResponse,
    UpdateStaffRequest,
};
use fusion_contracts::http::{ErrorBody, Role, SettingsChange};
use fusion_rules::staff::{Attempt, SIGN_IN_MS, may_manage};

use super::error::ApiError;
use super::extract::{JsonBody, Principal};
use super::{AppState, json};
use crate::staff::{SIGN_IN_TOKEN_PREFIX, SignIn};

/// A hash no PIN was made from, checked for an unknown member so that a wrong id costs what
/// a wrong PIN costs (no timing tells which ids exist).
const NO_ONE: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm8tb25lLXNhbHQ$Cq+ywUoMPdtnb6uI1xDaDX+g7uIhzUBaHh/fMEuUHJI";

fn response(state: &AppState, id: StaffId, record: StaffRecord) -> StaffResponse {
    StaffResponse {
        locked_until: state.staff.locked(&id, state.store.now()),
        id,
        name: record.name,
        role: record.role,
        active: record.active,
    }
}

fn parse_id(id: &str) -> Result<StaffId, ApiError> {
    StaffId::new(id).map_err(|_| ApiError::not_found(format!("staff member {id} not found")))
}

fn member(state: &AppState, id: &StaffId) -> Result<StaffRecord, ApiError> {
    state
        .store
        .settings()
        .staff
        .remove(id)
        .ok_or_else(|| ApiError::not_found(format!("staff member {id} not found")))
}

async fn write(state: &AppState, id: StaffId, record: StaffRecord) -> Result<(), ApiError> {
    let mut change = SettingsChange::default();
    change.staff.insert(id, record);
    match state.store.update_settings(&change).await? {
        Ok(_) => Ok(()),
        Err(no_store) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_store_id",
            no_store.to_string(),
        )),
    }
}

fn refused(e: fusion_rules::staff::StaffRefused) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
}

async fn hash_pin(pin: String) -> Result<String, ApiError> {
    fusion_http::blocking(move || fusion_http::pin::hash(&pin)).await
}

/// Checks `staff`'s PIN at this till, counting the attempt: the member's record when it is
/// right and they are active and not locked. A wrong PIN or an unknown or inactive member is
/// 403 `pin_invalid` naming `field` (the same answer, so ids cannot be probed); a locked
/// member is 429 `staff_locked` with `Retry-After`.
pub async fn check_pin(
    state: &AppState,
    staff: &StaffId,
    pin: String,
    field: &str,
) -> Result<StaffRecord, ApiError> {
    let locked = |until: fusion_contracts::Timestamp, now: fusion_contracts::Timestamp| {
        let secs = ((until.unix_ms() - now.unix_ms()).max(0) + 999) / 1000;
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "staff_locked",
            format!("{staff} is locked at this till after too many wrong PINs, until {until}"),
        )
        .with_field(field)
        .with_retry_after(secs.max(1) as u64)
    };
    if let Some(until) = state.staff.locked(staff, state.store.now()) {
        return Err(locked(until, state.store.now()));
    }
    let record = state.store.settings().staff.remove(staff);
    let hash = record
        .as_ref()
        .filter(|r| r.active)
        .map_or(NO_ONE.to_string(), |r| r.pin_hash.clone());
    let right = fusion_http::blocking(move || {
        Ok::<_, std::convert::Infallible>(fusion_http::pin::verify(&pin, &hash))
    })
    .await?;
    let wrong = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "pin_invalid",
            "wrong staff member or PIN",
        )
        .with_field(field)
    };
    let Some(record) = record.filter(|r| r.active) else {
        return Err(wrong());
    };
    let now = state.store.now();
    match state.staff.attempt(staff, right, now) {
        Attempt::Accepted => Ok(record),
        Attempt::Wrong { .. } => Err(wrong()),
        Attempt::LockedNow { until } | Attempt::Locked { until } => Err(locked(until, now)),
    }
}

/// The store's staff members, active or not; never their PINs.
#[utoipa::path(get, path = "/staff", tag = "staff",
    responses((status = 200, body = Vec<StaffResponse>)))]
pub async fn list(State(state): State<AppState>, _who: Principal) -> Result<Response, ApiError> {
    let staff: Vec<StaffResponse> = state
        .store
        .settings()
        .staff
        .into_iter()
        .map(|(id, record)| response(&state, id, record))
        .collect();
    Ok(json(StatusCode::OK, false, &staff))
}

/// Add a staff member (a manager adds cashiers and managers); their PIN is kept as a salted
/// argon2 hash in the store's settings, on every till of the store and at the hub.
#[utoipa::path(post, path = "/staff", tag = "staff", request_body = CreateStaffRequest,
    responses((status = 201, body = StaffResponse), (status = 400, description = "names the field", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "the id is taken, or no store id", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    body: JsonBody<CreateStaffRequest>,
) -> Result<Response, ApiError> {
    let new = body.value.validate()?;
    may_manage(who.grant.role, new.role).map_err(refused)?;
    let staff = state.store.settings().staff;
    if staff.contains_key(&new.id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "staff_exists",
            format!(
                "staff member {} exists; PATCH /staff/{} changes them",
                new.id, new.id
            ),
        )
        .with_field("id"));
    }
    if staff.len() >= STAFF_MAX {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_staff",
            format!("a store keeps at most {STAFF_MAX} staff members"),
        ));
    }
    let record = StaffRecord {
        name: new.name,
        role: new.role,
        pin_hash: hash_pin(new.pin).await?,
        active: true,
    };
    write(&state, new.id.clone(), record.clone()).await?;
    tracing::info!(staff = %new.id, by = %who.name(), "staff member added");
    Ok(json(
        StatusCode::CREATED,
        false,
        &response(&state, new.id, record),
    ))
}

/// Change a staff member's name, role, PIN or whether they are active; a new PIN or making
/// them inactive ends their sign-ins.
#[utoipa::path(patch, path = "/staff/{id}", tag = "staff", params(("id" = String, Path)),
    request_body = UpdateStaffRequest,
    responses((status = 200, body = StaffResponse), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: JsonBody<UpdateStaffRequest>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let change = body.value.validate()?;
    let mut record = member(&state, &id)?;
    may_manage(who.grant.role, record.role).map_err(refused)?;
    if let Some(role) = change.role {
        may_manage(who.grant.role, role).map_err(refused)?;
        record.role = role;
    }
    if let Some(name) = change.name {
        record.name = name;
    }
    let ends_sign_ins = change.pin.is_some() || change.active == Some(false);
    if let Some(pin) = change.pin {
        record.pin_hash = hash_pin(pin).await?;
    }
    if let Some(active) = change.active {
        record.active = active;
    }
    write(&state, id.clone(), record.clone()).await?;
    if ends_sign_ins {
        state.staff.sign_out_all(&id);
    }
    tracing::info!(staff = %id, by = %who.name(), "staff member changed");
    Ok(json(StatusCode::OK, false, &response(&state, id, record)))
}

/// A member leaves: they stay on record (older sales name them) but can no longer sign in or
/// approve, at any till.
#[utoipa::path(delete, path = "/staff/{id}", tag = "staff", params(("id" = String, Path)),
    responses((status = 204, description = "made inactive"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut record = member(&state, &id)?;
    may_manage(who.grant.role, record.role).map_err(refused)?;
    record.active = false;
    write(&state, id.clone(), record).await?;
    state.staff.sign_out_all(&id);
    tracing::info!(staff = %id, by = %who.name(), "staff member made inactive");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A staff member signs in at this till with their PIN, with the till's token: the answer's
/// token is theirs until it expires (12 hours) or they sign out, and what it does records
/// them (orders, payments, returns). Five wrong PINs in a row lock them here for 5 minutes.
#[utoipa::path(post, path = "/staff/sign-in", tag = "staff", request_body = SignInRequest,
    responses((status = 201, body = SignInResponse), (status = 400, body = ErrorBody),
        (status = 403, description = "pin_invalid: wrong member or PIN", body = ErrorBody),
        (status = 429, description = "staff_locked, with Retry-After", body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    who: Principal,
    body: JsonBody<SignInRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let SignInRequest { staff, pin } = body.value;
    fusion_contracts::http::staff::check_pin("pin", &pin)?;
    let record = check_pin(&state, &staff, pin, "pin").await?;
    let (token, hash) = fusion_http::token::generate(SIGN_IN_TOKEN_PREFIX).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a sign-in");
        ApiError::internal()
    })?;
    let now = state.store.now();
    let expires_at = now.plus_ms(SIGN_IN_MS);
    state.staff.sign_in(
        hash,
        SignIn {
            staff: staff.clone(),
            token_id: who.grant.token_id,
            expires_at,
        },
        now,
    );
    tracing::info!(%staff, "staff member signed in");
    let mut answer = json(
        StatusCode::CREATED,
        false,
        &SignInResponse {
            token,
            staff: response(&state, staff, record),
            expires_at,
        },
    );
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(answer)
}

/// The signed-in member (the bearer token of `POST /staff/sign-in`) signs out.
#[utoipa::path(post, path = "/staff/sign-out", tag = "staff",
    responses((status = 204, description = "signed out"), (status = 400, description = "not a sign-in token", body = ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    who: Principal,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let token = fusion_http::bearer_token(&headers).unwrap_or_default();
    if who.staff.is_none() || !state.staff.sign_out(&fusion_http::token::hash(token)) {
        return Err(ApiError::validation(
            "Authorization",
            "is not a staff member's sign-in token",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
