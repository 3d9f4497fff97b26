//! `/inventory`: stock levels. Reading needs any role; changing stock needs a manager.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fusion_contracts::Sku;
use fusion_contracts::commands::InventoryCommand;
use fusion_contracts::http::{
    AdjustStockRequest, CardBudgetRights, ErrorBody, EscrowResponse, HolderRights, Role,
    SetStockRequest, StockResponse, StockRights, StoreStockRights, TransferBudgetRequest,
    TransferInTransit, TransferStockRequest,
};

use super::error::ApiError;
use super::extract::{JsonBody, Page, Principal, WriteContext};
use super::{AppState, json, submit};
use crate::domain::StockLevel;
use crate::store::{Command, Outcome};

pub fn render(sku: Sku, level: &StockLevel) -> StockResponse {
    StockResponse {
        sku,
        quantity: level.available,
        reserved: level.reserved,
        updated_at: level.updated_at,
    }
}

fn parse_sku(sku: &str) -> Result<Sku, ApiError> {
    Sku::new(sku).map_err(|e| ApiError::validation("sku", e.reason))
}

/// Set the available quantity of a sku (a count), as FusionCommerce did.
#[utoipa::path(put, path = "/inventory", tag = "inventory", request_body = SetStockRequest,
    responses((status = 204, description = "stock set"), (status = 400, body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<SetStockRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = body.value.into_command()?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Inventory(InventoryCommand::SetStock(command)),
    )
    .await?;
    written.decision?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stock levels by sku.
#[utoipa::path(get, path = "/inventory", tag = "inventory",
    params(("limit" = Option<usize>, Query, description = "1–200, default 50"), ("offset" = Option<usize>, Query)),
    responses((status = 200, body = Vec<StockResponse>)))]
pub async fn list(
    State(state): State<AppState>,
    _who: Principal,
    page: Page,
) -> Result<Response, ApiError> {
    let levels = state.store.read()?.stock_levels(page.limit, page.offset)?;
    let bodies: Vec<StockResponse> = levels
        .into_iter()
        .map(|(sku, level)| render(sku, &level))
        .collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

#[utoipa::path(get, path = "/inventory/{sku}", tag = "inventory", params(("sku" = String, Path)),
    responses((status = 200, body = StockResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    let sku = parse_sku(&sku)?;
    match state.store.read()?.stock(&sku)? {
        Some(level) => Ok(json(StatusCode::OK, false, &render(sku, &level))),
        None => Err(ApiError::not_found(format!(
            "no stock is recorded for sku {sku}"
        ))),
    }
}

/// Add a signed delta to the available quantity; it never goes below zero (422).
#[utoipa::path(post, path = "/inventory/{sku}/adjust", tag = "inventory", params(("sku" = String, Path)),
    request_body = AdjustStockRequest,
    responses((status = 200, body = StockResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn adjust(
    State(state): State<AppState>,
    who: Principal,
    Path(sku): Path<String>,
    ctx: WriteContext,
    body: JsonBody<AdjustStockRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = body.value.into_command(parse_sku(&sku)?)?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Inventory(InventoryCommand::AdjustStock(command)),
    )
    .await?;
    match written.decision? {
        Outcome::Stock { sku, level } => {
            Ok(json(StatusCode::OK, written.replayed, &render(sku, &level)))
        }
        other => Err(super::unexpected(other)),
    }
}

/// Give stock rights of a sku to another till of the store (or to the hub: `"to": "hub"`):
/// they leave this till's available stock at once and count for the receiver once it has seen
/// the transfer.
#[utoipa::path(post, path = "/inventory/{sku}/transfer", tag = "inventory", params(("sku" = String, Path)),
    request_body = TransferStockRequest,
    responses((status = 200, body = StockResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn transfer(
    State(state): State<AppState>,
    who: Principal,
    Path(sku): Path<String>,
    ctx: WriteContext,
    body: JsonBody<TransferStockRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let mut command = body
        .value
        .into_command(parse_sku(&sku)?, uuid::Uuid::now_v7())?;
    if command.to.as_str() == "hub" {
        command.to = hub_holder(&state)?;
    }
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Inventory(InventoryCommand::TransferStock(command)),
    )
    .await?;
    match written.decision? {
        Outcome::Stock { sku, level } => {
            Ok(json(StatusCode::OK, written.replayed, &render(sku, &level)))
        }
        other => Err(super::unexpected(other)),
    }
}

/// `to: "hub"`: the hub's holder of this till's store (the online channel), derived from the
/// configured hub and the store id, so a till can give rights to the hub offline.
fn hub_holder(state: &AppState) -> Result<fusion_contracts::NodeId, ApiError> {
    let store = state
        .store
        .store_id()
        .ok_or_else(|| ApiError::validation("to", "\"hub\" needs a store id (--store-id)"))?;
    Ok(fusion_rules::escrow::hub_holder(
        &super::hub_origin(state)?,
        store,
    ))
}

/// Give part of this till's unused offline card budget to another till of the store (`to`: its
/// node id); it counts for the receiver once it has seen the transfer over the mesh. 422 past
/// the unused budget (share − exposure).
#[utoipa::path(post, path = "/escrow/card-budget/transfer", tag = "inventory",
    request_body = TransferBudgetRequest,
    responses((status = 200, body = EscrowResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn transfer_budget(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<TransferBudgetRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let (to, amount) = body.value.into_parts()?;
    let command = Command::TransferBudget {
        transfer_id: uuid::Uuid::now_v7(),
        to,
        amount,
    };
    let written = submit(&state, &ctx, body.digest, command).await?;
    written.decision?;
    escrow(State(state), who).await
}

/// This till's offline card budget as it stands: its share (moved by budget transfers), what
/// it approved offline and the provider has not settled, and the headroom left.
pub(super) fn card_budget(
    state: &AppState,
    read: &crate::store::Reader,
) -> Result<Option<CardBudgetRights>, ApiError> {
    let Some(configured) = state.payment_policy.offline_budget else {
        return Ok(None);
    };
    let share = fusion_contracts::Money {
        minor: read
            .held_budget(configured.currency)?
            .unwrap_or(configured.minor),
        currency: configured.currency,
    };
    let used = read.offline_exposure(share.currency)?;
    let money = |minor| fusion_contracts::Money {
        minor,
        currency: share.currency,
    };
    Ok(Some(CardBudgetRights {
        share: share.to_decimal(),
        exposure: money(used).to_decimal(),
        headroom: money(crate::domain::payments::budget_headroom(share.minor, used)).to_decimal(),
        currency: share.currency,
    }))
}

/// The stock rights this till holds, per sku, and the transfers it made that are in transit.
#[utoipa::path(get, path = "/escrow", tag = "inventory",
    responses((status = 200, body = EscrowResponse)))]
pub async fn escrow(State(state): State<AppState>, _who: Principal) -> Result<Response, ApiError> {
    let read = state.store.read()?;
    let pending = read.transfers_in_transit()?;
    let own = state.store.node_id().to_string();
    let levels = read.stock_levels(usize::MAX, 0)?;
    let mut store: std::collections::BTreeMap<Sku, StoreStockRights> = Default::default();
    let peers = read.peer_stock()?;
    let holders = levels
        .iter()
        .map(|(sku, level)| (own.clone(), sku.clone(), level.clone()))
        .chain(
            peers
                .into_iter()
                .map(|(o, sku, level)| (o.to_string(), sku, level)),
        );
    for (node_id, sku, level) in holders {
        let entry = store
            .entry(sku.clone())
            .or_insert_with(|| StoreStockRights {
                sku,
                held: 0,
                reserved: 0,
                holders: Vec::new(),
            });
        entry.held += level.available;
        entry.reserved += level.reserved;
        entry.holders.push(HolderRights {
            node_id,
            held: level.available,
            reserved: level.reserved,
        });
    }
    for entry in store.values_mut() {
        entry.holders.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    }
    let mut stock = Vec::new();
    for (sku, level) in levels {
        let in_transit = pending
            .iter()
            .filter(|p| p.sku == sku)
            .map(|p| p.quantity)
            .sum();
        stock.push(StockRights {
            sku,
            held: level.available,
            reserved: level.reserved,
            in_transit,
        });
    }
    let card_budget = card_budget(&state, &read)?;
    let seats = read.seat_rights()?;
    let body = EscrowResponse {
        node_id: own,
        card_budget,
        seats,
        store: store.into_values().collect(),
        stock,
        in_transit: pending
            .into_iter()
            .map(|p| TransferInTransit {
                transfer_id: p.transfer_id,
                sku: p.sku,
                to: p.to.to_string(),
                quantity: p.quantity,
                at: p.at,
            })
            .collect(),
    };
    Ok(json(StatusCode::OK, false, &body))
}
