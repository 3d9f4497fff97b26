//! `/campaigns`: group buying. Creating and cancelling need a manager; joining and leaving a
//! cashier (the till joins on the customer's behalf).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::CampaignId;
use fusion_contracts::commands::{CampaignCommand, CancelCampaign, JoinCampaign, LeaveCampaign};
use fusion_contracts::events::campaigns::CampaignSnapshot;
use fusion_contracts::http::{
    CampaignUserRequest, CancelCampaignRequest, CreateCampaignRequest, ErrorBody, Role, SeatRights,
    TransferSeatsRequest,
};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Page, Principal, WriteContext};
use super::{AppState, Written, json, submit};
use crate::store::{Command, Outcome};

fn parse_id(id: &str) -> Result<CampaignId, ApiError> {
    CampaignId::parse(id).ok_or_else(|| ApiError::not_found(format!("campaign {id} not found")))
}

fn campaign_reply(written: Written, status: StatusCode) -> Result<Response, ApiError> {
    match written.decision? {
        Outcome::Campaign(campaign) => Ok(json(status, written.replayed, &campaign.snapshot())),
        other => Err(super::unexpected(other)),
    }
}

async fn write(
    state: &AppState,
    ctx: &WriteContext,
    digest: Option<[u8; 32]>,
    command: CampaignCommand,
) -> Result<Written, ApiError> {
    submit(state, ctx, digest, Command::Campaign(command)).await
}

/// Create a campaign for a product; prices are in the product's currency. It closes by itself
/// at `endTime`: successful → one order per participant at the campaign price; else failed.
#[utoipa::path(post, path = "/campaigns", tag = "campaigns", request_body = CreateCampaignRequest,
    responses((status = 201, body = CampaignSnapshot), (status = 400, description = "names the field", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<CreateCampaignRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = body.value.into_command(CampaignId(Uuid::now_v7()))?;
    let written = write(
        &state,
        &ctx,
        body.digest,
        CampaignCommand::CreateCampaign(command),
    )
    .await?;
    campaign_reply(written, StatusCode::CREATED)
}

/// Campaigns in creation order.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns",
    params(("limit" = Option<usize>, Query, description = "1–200, default 50"), ("offset" = Option<usize>, Query)),
    responses((status = 200, body = Vec<CampaignSnapshot>)))]
pub async fn list(
    State(state): State<AppState>,
    _who: Principal,
    page: Page,
) -> Result<Response, ApiError> {
    let campaigns = state.store.read()?.campaigns(page.limit, page.offset)?;
    let bodies: Vec<CampaignSnapshot> = campaigns.iter().map(|c| c.snapshot()).collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = Uuid, Path)),
    responses((status = 200, body = CampaignSnapshot), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if let Some(campaign) = state.store.read()?.campaign(id)? {
        return Ok(json(StatusCode::OK, false, &campaign.snapshot()));
    }
    // A campaign another till owns, known from its document: served read-only, with its owner.
    match state.store.shared_campaign(id) {
        Some(shared) => Ok(json(
            StatusCode::OK,
            false,
            &SharedCampaign {
                campaign: shared.campaign,
                origin: shared.owner,
            },
        )),
        None => Err(ApiError::not_found(format!("campaign {id} not found"))),
    }
}

/// A campaign owned by another till: the snapshot plus the node id of its owner.
#[derive(serde::Serialize)]
struct SharedCampaign {
    #[serde(flatten)]
    campaign: fusion_contracts::events::campaigns::CampaignSnapshot,
    origin: fusion_contracts::NodeId,
}

/// Join within [startTime, endTime): 409 not open yet / closed / full / already joined.
#[utoipa::path(post, path = "/campaigns/{id}/join", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body = CampaignUserRequest,
    responses((status = 200, body = CampaignSnapshot), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn join(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<CampaignUserRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let command = JoinCampaign {
        campaign_id: parse_id(&id)?,
        user_id: body.value.user_id,
    };
    let written = write(
        &state,
        &ctx,
        body.digest,
        CampaignCommand::JoinCampaign(command),
    )
    .await?;
    campaign_reply(written, StatusCode::OK)
}

/// Leave while the campaign is open: 409 when not joined.
#[utoipa::path(post, path = "/campaigns/{id}/leave", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body = CampaignUserRequest,
    responses((status = 200, body = CampaignSnapshot), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<CampaignUserRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let command = LeaveCampaign {
        campaign_id: parse_id(&id)?,
        user_id: body.value.user_id,
    };
    let written = write(
        &state,
        &ctx,
        body.digest,
        CampaignCommand::LeaveCampaign(command),
    )
    .await?;
    campaign_reply(written, StatusCode::OK)
}

/// Give free seats to another holder: a till of any store (`to`: its node id) or the hub
/// (`"hub"`), which passes them on. They leave this till at once and count for the receiver
/// once it has seen the transfer; from then on the campaign's seats are shared and the hub
/// decides it at its end. 422 past this till's free seats.
#[utoipa::path(post, path = "/campaigns/{id}/seats/transfer", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body = TransferSeatsRequest,
    responses((status = 200, body = SeatRights), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn transfer_seats(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<TransferSeatsRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let id = parse_id(&id)?;
    let mut command = body.value.into_command(id, Uuid::now_v7())?;
    if command.to.as_str() == "hub" {
        command.to = super::hub_origin(&state)?;
    }
    let written = write(
        &state,
        &ctx,
        body.digest,
        CampaignCommand::TransferSeats(command),
    )
    .await?;
    written.decision?;
    let rights = state.store.read()?.seat_rights()?;
    match rights.into_iter().find(|r| r.campaign_id == id) {
        Some(r) => Ok(json(StatusCode::OK, written.replayed, &r)),
        None => Err(ApiError::not_found(format!("campaign {id} not found"))),
    }
}

/// Cancel an open campaign: no orders are placed.
#[utoipa::path(post, path = "/campaigns/{id}/cancel", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body(content = CancelCampaignRequest, description = "optional"),
    responses((status = 200, body = CampaignSnapshot), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<CancelCampaignRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = CancelCampaign {
        campaign_id: parse_id(&id)?,
        reason: body.value.reason()?,
    };
    let written = write(
        &state,
        &ctx,
        body.digest,
        CampaignCommand::CancelCampaign(command),
    )
    .await?;
    campaign_reply(written, StatusCode::OK)
}
