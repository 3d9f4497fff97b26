//! `/orders`: placing needs a cashier, cancelling a manager.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::OrderId;
use fusion_contracts::commands::OrderCommand;
use fusion_contracts::http::{
    ApprovalRequest, CancelOrderRequest, ErrorBody, OrderResponse, PlaceOrderRequest, Role,
};
use fusion_rules::authority;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Page, Principal, WriteContext};
use super::{AppState, Written, json, submit};
use crate::domain::Order;
use crate::store::{Command, Outcome};

pub fn render(order: Order) -> OrderResponse {
    OrderResponse {
        id: order.id,
        customer_id: order.customer_id,
        items: order.items,
        total: order.total.to_decimal(),
        currency: order.total.currency,
        status: order.status,
        created_at: order.created_at,
        updated_at: order.updated_at,
        flag: order.flag,
        shipping_address: order.shipping_address,
        origin: None,
        subtotal: order.subtotal.to_decimal(),
        discount_total: order.discount_total.to_decimal(),
        promotions: order.promotions,
        discount: order.discount,
        taxes: order.taxes,
        tax_included: order.tax_included,
    }
}

fn parse_id(id: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(id).ok_or_else(|| ApiError::not_found(format!("order {id} not found")))
}

fn order_reply(written: Written, status: StatusCode) -> Result<Response, ApiError> {
    match written.decision? {
        Outcome::Order(order) => Ok(json(status, written.replayed, &render(order))),
        other => Err(super::unexpected(other)),
    }
}

/// Who approves the order's prices other than the catalog's (`authority::price_approver`):
/// the caller if a manager, else the manager whose token the body's `approval` gives.
fn price_approver(
    state: &AppState,
    who: &Principal,
    approval: Option<ApprovalRequest>,
) -> Result<Option<String>, ApiError> {
    let name = |grant: &crate::store::Grant| format!("token:{}", grant.token_id);
    let approver = match approval {
        None => None,
        Some(approval) => {
            let grant = state
                .store
                .authenticate(&fusion_http::token::hash(&approval.token))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "approval_invalid",
                        "the approval's token is not a valid token",
                    )
                    .with_field("approval.token")
                })?;
            Some((grant.role, name(&grant)))
        }
    };
    let caller = name(&who.0);
    Ok(authority::price_approver(
        (who.0.role, &caller),
        approver.as_ref().map(|(role, name)| (*role, name.as_str())),
    ))
}

/// Place an order: its total is computed exactly and every line's stock is reserved in the same
/// commit, all or nothing. A short sku refuses the whole order with 422 and reserves nothing.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first answer")),
    responses((status = 201, body = OrderResponse), (status = 400, body = ErrorBody),
        (status = 422, description = "insufficient stock: names the sku, requested and available", body = ErrorBody)))]
pub async fn place(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let mut request = body.value;
    let approval = request.approval.take();
    let mut command = request.into_command(OrderId(Uuid::now_v7()))?;
    command.price_approver = price_approver(&state, &who, approval)?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Order(OrderCommand::PlaceOrder(command)),
    )
    .await?;
    order_reply(written, StatusCode::CREATED)
}

/// Orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders",
    params(("limit" = Option<usize>, Query, description = "1–200, default 50"), ("offset" = Option<usize>, Query)),
    responses((status = 200, body = Vec<OrderResponse>)))]
pub async fn list(
    State(state): State<AppState>,
    _who: Principal,
    page: Page,
) -> Result<Response, ApiError> {
    let orders = state.store.read()?.orders(page.limit, page.offset)?;
    let bodies: Vec<OrderResponse> = orders.into_iter().map(render).collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let read = state.store.read()?;
    if let Some(order) = read.order(id)? {
        drop(read);
        return Ok(json(StatusCode::OK, false, &render(order)));
    }
    // An order another till of this store took, known from its replicated events.
    match read.peer_order(id)? {
        Some(peer) => {
            let mut body = render(peer.order);
            body.origin = Some(peer.origin);
            Ok(json(StatusCode::OK, false, &body))
        }
        None => Err(ApiError::not_found(format!("order {id} not found"))),
    }
}

/// Cancel an open order and release its reservations.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", params(("id" = Uuid, Path)),
    request_body(content = CancelOrderRequest, description = "optional"),
    responses((status = 200, body = OrderResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<CancelOrderRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = body.value.into_command(parse_id(&id)?)?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Order(OrderCommand::CancelOrder(command)),
    )
    .await?;
    order_reply(written, StatusCode::OK)
}
