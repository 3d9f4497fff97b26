//! Shipping: FusionCommerce's `/shipping/labels` plus shipment status and the label document.
//! Creating labels and moving shipments need a cashier (the person at the packing table).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::ShipmentId;
use fusion_contracts::commands::{ChangeShipmentStatus, ShipmentCommand};
use fusion_contracts::http::{
    CreateLabelRequest, ErrorBody, Role, ShipmentResponse, ShipmentStatusRequest,
};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Principal, WriteContext};
use super::{AppState, json, submit};
use crate::domain::{Shipment, shipping};
use crate::store::{Command, Outcome};

pub fn render(s: Shipment) -> ShipmentResponse {
    ShipmentResponse {
        id: s.id,
        order_id: s.order_id,
        tracking_number: s.tracking_number,
        carrier: s.carrier,
        service: s.service,
        label_url: s.label_url,
        address: s.address,
        weight_grams: s.weight_grams,
        price: s.price.to_decimal(),
        currency: s.price.currency,
        status: s.status,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

fn parse_id(id: &str) -> Result<ShipmentId, ApiError> {
    ShipmentId::parse(id).ok_or_else(|| ApiError::not_found(format!("shipment {id} not found")))
}

fn current(state: &AppState, id: ShipmentId) -> Result<Shipment, ApiError> {
    state
        .store
        .read()?
        .shipment(id)?
        .ok_or_else(|| ApiError::not_found(format!("shipment {id} not found")))
}

async fn write(
    state: &AppState,
    ctx: &WriteContext,
    digest: Option<[u8; 32]>,
    command: ShipmentCommand,
    ok: StatusCode,
) -> Result<Response, ApiError> {
    let written = submit(state, ctx, digest, Command::Shipment(command)).await?;
    match written.decision? {
        Outcome::Shipment(shipment) => Ok(json(ok, written.replayed, &render(shipment))),
        other => Err(super::unexpected(other)),
    }
}

/// Create a label: priced from the node's rate table, with a unique tracking number (Luhn check
/// digit) and a downloadable ZPL label at `labelUrl`.
#[utoipa::path(post, path = "/shipping/labels", tag = "shipping", request_body = CreateLabelRequest,
    responses((status = 201, body = ShipmentResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<CreateLabelRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let command = body.value.into_command(ShipmentId(Uuid::now_v7()))?;
    write(
        &state,
        &ctx,
        body.digest,
        ShipmentCommand::CreateShipment(command),
        StatusCode::CREATED,
    )
    .await
}

#[utoipa::path(get, path = "/shipping/labels/{id}", tag = "shipping", params(("id" = Uuid, Path)),
    responses((status = 200, body = ShipmentResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        false,
        &render(current(&state, parse_id(&id)?)?),
    ))
}

/// The label document for a thermal printer (ZPL II, 4×6 in).
#[utoipa::path(get, path = "/shipping/labels/{id}/label.zpl", tag = "shipping", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "application/zpl", body = String), (status = 404, body = ErrorBody)))]
pub async fn label(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let shipment = current(&state, parse_id(&id)?)?;
    Ok((
        [(header::CONTENT_TYPE, "application/zpl; charset=utf-8")],
        shipping::zpl(&shipment),
    )
        .into_response())
}

/// An order's shipments, oldest first.
#[utoipa::path(get, path = "/orders/{id}/shipments", tag = "shipping", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<ShipmentResponse>), (status = 404, body = ErrorBody)))]
pub async fn of_order(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let read = state.store.read()?;
    let order_id = super::existing_order(&read, &id)?;
    let bodies: Vec<ShipmentResponse> = read
        .order_shipments(order_id)?
        .into_iter()
        .map(render)
        .collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

/// Move a shipment: label_created → in_transit | exception; in_transit → delivered | returned |
/// exception; exception → in_transit | returned; delivered → returned. Delivery fulfils the order.
#[utoipa::path(post, path = "/shipments/{id}/status", tag = "shipping", params(("id" = Uuid, Path)),
    request_body = ShipmentStatusRequest,
    responses((status = 200, body = ShipmentResponse), (status = 404, body = ErrorBody), (status = 409, description = "illegal transition", body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<ShipmentStatusRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let command = ChangeShipmentStatus {
        shipment_id: parse_id(&id)?,
        status: body.value.status,
    };
    write(
        &state,
        &ctx,
        body.digest,
        ShipmentCommand::ChangeShipmentStatus(command),
        StatusCode::OK,
    )
    .await
}
