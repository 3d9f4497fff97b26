//! `/sessions`: this till's cash drawer (`fusion_rules::drawer`). Open it with a float, pay
//! in and out, a no-sale with a manager's approval (their token or PIN), close it with the
//! count; the X report while open, the Z report (numbered gap-free per till, immutable) once
//! closed. The report is folded from the till's own log, in the transaction that closes.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::commands::SessionCommand;
use fusion_contracts::events::CashMove;
use fusion_contracts::http::sessions::{
    CashRequest, CloseSessionRequest, OpenSessionRequest, ReportKind, ReportResponse,
    SessionResponse,
};
use fusion_contracts::http::{ErrorBody, Role};
use fusion_contracts::{Money, NodeId};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Page, Principal, WriteContext};
use super::{AppState, json, submit};
use crate::domain::drawer;
use crate::store::drawer::SessionRow;
use crate::store::{Command, Outcome};

fn render(row: &SessionRow) -> SessionResponse {
    SessionResponse::new(&row.opened, &row.moves, row.closed.as_ref())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("session {id} not found"))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found(id))
}

/// Session `id` of this till (a peer's is refused: its drawer is at its till).
fn own_session(state: &AppState, id: &str) -> Result<SessionRow, ApiError> {
    let row = state
        .store
        .read()?
        .session(parse_id(id)?)?
        .ok_or_else(|| not_found(id))?;
    if &row.opened.till != state.store.node_id() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "session_at_another_till",
            format!("session {id} is till {}'s drawer", row.opened.till),
        ));
    }
    Ok(row)
}

fn session_reply(written: super::Written, status: StatusCode) -> Result<Response, ApiError> {
    match written.decision? {
        Outcome::Session(row) => Ok(json(status, written.replayed, &render(&row))),
        other => Err(super::unexpected(other)),
    }
}

/// Open this till's drawer with a float (one open session per till).
#[utoipa::path(post, path = "/sessions", tag = "sessions", request_body = OpenSessionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first answer")),
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody),
        (status = 409, description = "`session_open`: the drawer is already open", body = ErrorBody)))]
pub async fn open(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<OpenSessionRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let mut command = body.value.into_command(Uuid::now_v7())?;
    command.staff = who.staff.clone();
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Session(SessionCommand::Open(command)),
    )
    .await?;
    session_reply(written, StatusCode::CREATED)
}

/// This till's sessions (`till=all`: every till's this store knows), newest first.
#[utoipa::path(get, path = "/sessions", tag = "sessions",
    params(("till" = Option<String>, Query, description = "a till's id, or `all`; default this till"),
        ("limit" = Option<usize>, Query, description = "1–200, default 50"), ("offset" = Option<usize>, Query)),
    responses((status = 200, body = Vec<SessionResponse>)))]
pub async fn list(
    State(state): State<AppState>,
    _who: Principal,
    page: Page,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let till = match query.get("till").map(String::as_str) {
        None => Some(state.store.node_id().clone()),
        Some("all") => None,
        Some(id) => {
            Some(NodeId::new(id).map_err(|_| ApiError::validation("till", "is not a till id"))?)
        }
    };
    let rows = state
        .store
        .read()?
        .sessions(till.as_ref(), page.limit, page.offset)?;
    let bodies: Vec<SessionResponse> = rows.iter().map(render).collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

/// This till's open session.
#[utoipa::path(get, path = "/sessions/current", tag = "sessions",
    responses((status = 200, body = SessionResponse), (status = 404, description = "the drawer is closed", body = ErrorBody)))]
pub async fn current(State(state): State<AppState>, _who: Principal) -> Result<Response, ApiError> {
    let read = state.store.read()?;
    let open = read.drawer(state.store.node_id())?.open;
    let row = match open {
        Some(open) => read.session(open.session_id)?,
        None => None,
    };
    match row {
        Some(row) => Ok(json(StatusCode::OK, false, &render(&row))),
        None => Err(ApiError::not_found("this till's drawer is closed")),
    }
}

#[utoipa::path(get, path = "/sessions/{id}", tag = "sessions", params(("id" = Uuid, Path)),
    responses((status = 200, body = SessionResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = state
        .store
        .read()?
        .session(parse_id(&id)?)?
        .ok_or_else(|| not_found(&id))?;
    Ok(json(StatusCode::OK, false, &render(&row)))
}

/// A paid-in, paid-out or no-sale in the open session. A no-sale needs a manager: the caller,
/// or `approval` (a manager's token or staff id and PIN).
#[utoipa::path(post, path = "/sessions/{id}/cash", tag = "sessions", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first answer")),
    request_body = CashRequest,
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody),
        (status = 403, description = "`no_sale_requires_approval`, `pin_invalid`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "`session_not_open`", body = ErrorBody)))]
pub async fn cash(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    Path(id): Path<String>,
    body: JsonBody<CashRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let row = own_session(&state, &id)?;
    let mut request = body.value;
    let approval = request.approval.take();
    let kind = request.kind;
    let mut command = request.into_command(row.opened.session_id, row.opened.currency)?;
    command.staff = who.staff.clone();
    if kind == CashMove::NoSale {
        command.approved_by = super::orders::price_approver(&state, &who, approval).await?;
    }
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Session(SessionCommand::MoveCash(command)),
    )
    .await?;
    session_reply(written, StatusCode::CREATED)
}

/// Count and close the open session: the Z report, numbered one past this till's last.
#[utoipa::path(post, path = "/sessions/{id}/close", tag = "sessions", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first answer")),
    request_body = CloseSessionRequest,
    responses((status = 200, body = ReportResponse), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "`session_not_open`", body = ErrorBody)))]
pub async fn close(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    Path(id): Path<String>,
    body: JsonBody<CloseSessionRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let row = own_session(&state, &id)?;
    let mut command = body
        .value
        .into_command(row.opened.session_id, row.opened.currency)?;
    command.staff = who.staff.clone();
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Session(SessionCommand::Close(command)),
    )
    .await?;
    match written.decision? {
        Outcome::Session(row) => match &row.closed {
            Some(closed) => Ok(json(
                StatusCode::OK,
                written.replayed,
                &ReportResponse::z(closed),
            )),
            None => Err(ApiError::internal_from("a close left its session open")),
        },
        other => Err(super::unexpected(other)),
    }
}

/// The session's report: X (so far) while it is open, its Z once closed.
#[utoipa::path(get, path = "/sessions/{id}/report", tag = "sessions", params(("id" = Uuid, Path)),
    responses((status = 200, body = ReportResponse), (status = 404, body = ErrorBody),
        (status = 409, description = "`session_at_another_till`: an open session's X report is at its till", body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let read = state.store.read()?;
    let row = read
        .session(parse_id(&id)?)?
        .ok_or_else(|| not_found(&id))?;
    if let Some(closed) = &row.closed {
        return Ok(json(StatusCode::OK, false, &ReportResponse::z(closed)));
    }
    let opened = &row.opened;
    if &opened.till != state.store.node_id() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "session_at_another_till",
            format!("session {id} is open at till {}", opened.till),
        ));
    }
    let (tally, to_seq) = read.x_report(&opened.till, opened.from_seq, opened.currency)?;
    drop(read);
    let float =
        Money::from_decimal(opened.float, opened.currency).map_err(ApiError::internal_from)?;
    let totals = tally.totals();
    let body = ReportResponse {
        kind: ReportKind::X,
        session_id: opened.session_id,
        till: opened.till.clone(),
        z: None,
        currency: opened.currency,
        float: opened.float,
        expected_cash: drawer::expected_cash(float, &totals).to_decimal(),
        totals,
        counted: None,
        variance: None,
        denominations: Vec::new(),
        opened_at: opened.opened_at,
        opened_by: opened.staff.clone(),
        closed_at: None,
        closed_by: None,
        from_seq: opened.from_seq,
        to_seq,
        reprints: tally.reprints(),
    };
    Ok(json(StatusCode::OK, false, &body))
}
