//! `/orders`: placing needs a cashier, cancelling a manager.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::OrderId;
use fusion_contracts::commands::OrderCommand;
use fusion_contracts::http::staff::Approval;
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
        returned: Vec::new(),
    }
}

/// How long a return waits for an order's return rights asked of another till (over the
/// store mesh, they arrive in well under a second when it is reachable).
const RIGHTS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Order `id` as this till knows it and the till that sold it; 404 otherwise.
fn known_order(
    state: &AppState,
    id: OrderId,
) -> Result<(Order, fusion_contracts::NodeId), ApiError> {
    let read = state.store.read()?;
    if let Some(order) = read.order(id)? {
        return Ok((order, state.store.node_id().clone()));
    }
    match read.peer_order(id)? {
        Some(peer) => Ok((peer.order, peer.origin)),
        None => Err(ApiError::not_found(format!("order {id} not found"))),
    }
}

/// Who holds order `id`'s return rights now.
fn rights_holder(
    state: &AppState,
    id: OrderId,
    seller: &fusion_contracts::NodeId,
) -> Result<fusion_contracts::NodeId, ApiError> {
    Ok(state
        .store
        .read()?
        .return_rights(id)?
        .map_or_else(|| seller.clone(), |r| r.holder))
}

/// Take back units of a paid order — one this till sold, or one another till of the store sold
/// (known through the mesh). Each line refunds what the customer paid for its units (after
/// promotions and discounts, with tax). Only the till holding the order's return rights takes
/// its returns, so no unit is refunded twice: when another till holds them this one asks for
/// them and waits up to 3 s; if they do not come (that till is unreachable) the answer is 409
/// `return_rights_elsewhere` naming it. Above the store's `returnApprovalAmount` a manager
/// approves (403 `return_requires_approval`).
#[utoipa::path(post, path = "/orders/{id}/returns", tag = "orders", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first answer")),
    request_body = fusion_contracts::http::ReturnRequest,
    responses((status = 201, description = "the return (`order.returned`)", body = Object),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not paid, or the return rights are at another till", body = ErrorBody),
        (status = 422, description = "more units than sold and not yet returned", body = ErrorBody)))]
pub async fn return_lines(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<fusion_contracts::http::ReturnRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let id = parse_id(&id)?;
    let (order, seller) = known_order(&state, id)?;
    let mut request = body.value;
    let approval = request.approval.take();
    let skus: Vec<_> = order.items.iter().map(|i| i.sku.clone()).collect();
    let mut command = request.into_command(Uuid::now_v7(), id, &skus)?;
    command.approver = price_approver(&state, &who, approval).await?;
    command.staff = who.staff.clone();
    let command = Command::Order(OrderCommand::ReturnOrder(command));
    let written = take_back(&state, &ctx, body.digest, id, &seller, command).await?;
    match written.decision? {
        Outcome::Return(returned) => {
            refund_cards(&state, &returned).await;
            Ok(json(StatusCode::CREATED, written.replayed, &*returned))
        }
        other => Err(super::unexpected(other)),
    }
}

/// Exchange units of a paid order for a new order, in one transaction: the return (as in
/// `POST /orders/{id}/returns`, from any till of the store) refunds what its units paid,
/// which pays the new order first (a store-credit payment through the return's exchange
/// account); what is left goes where `refundTo` says, and what the new order still costs is
/// `amountDue`, paid as any order (`POST /payments`). The new order is the returned order's
/// customer's, in its currency, priced as `POST /orders` prices (promotions, discounts,
/// taxes); restocked units can be sold again in it (an exchange for another size).
#[utoipa::path(post, path = "/orders/{id}/exchanges", tag = "orders", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first answer")),
    request_body = fusion_contracts::http::ExchangeRequest,
    responses((status = 201, body = fusion_contracts::http::ExchangeResponse),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not paid, the return rights at another till, insufficient stock", body = ErrorBody),
        (status = 422, description = "more units than sold and not yet returned", body = ErrorBody)))]
pub async fn exchange(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<fusion_contracts::http::ExchangeRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let id = parse_id(&id)?;
    let (order, seller) = known_order(&state, id)?;
    let (back, new, approval) = body
        .value
        .split(order.customer_id.clone(), order.total.currency);
    let approver = price_approver(&state, &who, approval).await?;
    let skus: Vec<_> = order.items.iter().map(|i| i.sku.clone()).collect();
    let mut take_back_cmd = back.into_command(Uuid::now_v7(), id, &skus)?;
    take_back_cmd.approver = approver.clone();
    take_back_cmd.staff = who.staff.clone();
    let mut new_order = new.into_command(OrderId(Uuid::now_v7()))?;
    new_order.price_approver = approver;
    new_order.staff = who.staff.clone();
    let command = Command::Order(OrderCommand::Exchange(Box::new(
        fusion_contracts::commands::Exchange {
            take_back: take_back_cmd,
            order: new_order,
            payment_id: fusion_contracts::PaymentId(Uuid::now_v7()),
        },
    )));
    let written = take_back(&state, &ctx, body.digest, id, &seller, command).await?;
    match written.decision? {
        Outcome::Exchange(x) => {
            refund_cards(&state, &x.returned).await;
            let paid = x.payment.as_ref().map_or(0, |p| p.captured_minor);
            let due = fusion_contracts::Money {
                minor: (x.order.total.minor - paid).max(0),
                currency: x.order.total.currency,
            };
            let body = fusion_contracts::http::ExchangeResponse {
                returned: x.returned,
                order: render(x.order),
                payment: x.payment.map(super::payments::render),
                amount_due: due.to_decimal(),
                currency: due.currency,
            };
            Ok(json(StatusCode::CREATED, written.replayed, &body))
        }
        other => Err(super::unexpected(other)),
    }
}

/// Submits a return or an exchange of order `id`. Only the holder of its return rights takes
/// it: when another till holds them this one asks for them (without the idempotency key: only
/// the return itself is its answer) and waits up to [`RIGHTS_WAIT`]; if they do not come,
/// 409 `return_rights_elsewhere` naming that till.
async fn take_back(
    state: &AppState,
    ctx: &WriteContext,
    digest: Option<[u8; 32]>,
    id: OrderId,
    seller: &fusion_contracts::NodeId,
    command: Command,
) -> Result<Written, ApiError> {
    let me = state.store.node_id().clone();
    if rights_holder(state, id, seller)? != me {
        let asking = WriteContext {
            correlation_id: ctx.correlation_id.clone(),
            idempotency_key: None,
        };
        let written = submit(state, &asking, digest, command.clone()).await?;
        if let Ok(Outcome::Return(_) | Outcome::Exchange(_)) | Err(_) = &written.decision {
            return Ok(written);
        }
        let deadline = tokio::time::Instant::now() + RIGHTS_WAIT;
        loop {
            let holder = rights_holder(state, id, seller)?;
            if holder == me {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "return_rights_elsewhere",
                    format!(
                        "the return rights of order {id} are at till {holder}, which did not \
                         answer: take the return there, or again once the tills reconnect"
                    ),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let written = submit(state, ctx, digest, command).await?;
    if let Ok(Outcome::ReturnRightsAsked { holder }) = &written.decision {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "return_rights_elsewhere",
            format!("the return rights of order {id} moved to till {holder}: asked for them"),
        ));
    }
    Ok(written)
}

/// Refunds at once, through the provider, what a return owes the order's cards (the payment
/// follow-up retries whatever does not go through now).
async fn refund_cards(state: &AppState, returned: &fusion_contracts::events::OrderReturned) {
    use fusion_contracts::events::{RefundPartTo, RefundTo, payments::Tender};
    let (Some(provider), RefundTo::Split { parts }) = (state.card.clone(), &returned.refund_to)
    else {
        return;
    };
    for part in parts {
        if let RefundPartTo::Payment {
            payment_id,
            tender: Tender::Card,
        } = &part.to
            && let Err(error) =
                crate::followup::follow_up(state, provider.as_ref(), *payment_id).await
        {
            tracing::warn!(%payment_id, %error, "a return's card refund is left to the follow-up");
        }
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

/// Who approves the order's prices other than the catalog's, a discount or a return above
/// the store's thresholds (`authority::price_approver`): the caller if a manager, else the
/// manager the body's `approval` names — by their PIN at this till (counted against their
/// lockout: a locked or unknown member cannot approve) or by a manager's token.
pub(super) async fn price_approver(
    state: &AppState,
    who: &Principal,
    approval: Option<ApprovalRequest>,
) -> Result<Option<String>, ApiError> {
    let approver = match approval.map(ApprovalRequest::validate).transpose()? {
        None => None,
        Some(Approval::Token(token)) => {
            let grant = state
                .store
                .authenticate(&fusion_http::token::hash(&token))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "approval_invalid",
                        "the approval's token is not a valid token",
                    )
                    .with_field("approval.token")
                })?;
            Some((grant.role, format!("token:{}", grant.token_id)))
        }
        Some(Approval::Pin { staff, pin }) => {
            let record = super::staff::check_pin(state, &staff, pin, "approval.pin").await?;
            Some((record.role, fusion_rules::staff::staff_name(&staff)))
        }
    };
    let caller = who.name();
    Ok(authority::price_approver(
        (who.grant.role, &caller),
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
    command.price_approver = price_approver(&state, &who, approval).await?;
    command.staff = who.staff.clone();
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Order(OrderCommand::PlaceOrder(command)),
    )
    .await?;
    order_reply(written, StatusCode::CREATED)
}

/// Price an order without placing it: the body of `POST /orders`, priced by the same rule
/// against this till's catalog, promotions, taxes and stock, answered as the order would be
/// (`status: created`, an id that is never used) and recorded nowhere. The register shows its
/// running total so; a refusal is the one `POST /orders` would give (403 for a discount or
/// price that needs a manager, 422 for short stock).
#[utoipa::path(post, path = "/orders/quote", tag = "orders", request_body = PlaceOrderRequest,
    responses((status = 200, body = OrderResponse), (status = 400, body = ErrorBody),
        (status = 403, description = "a discount or price override needs a manager's approval", body = ErrorBody),
        (status = 422, description = "insufficient stock", body = ErrorBody)))]
pub async fn quote(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let mut request = body.value;
    let approval = request.approval.take();
    let mut command = request.into_command(OrderId(Uuid::now_v7()))?;
    command.price_approver = price_approver(&state, &who, approval).await?;
    command.staff = who.staff.clone();
    let written = submit(&state, &ctx, None, Command::QuoteOrder(command)).await?;
    match written.decision? {
        Outcome::Quoted(order) => Ok(json(StatusCode::OK, false, &render(*order))),
        other => Err(super::unexpected(other)),
    }
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
    let returned = read
        .return_rights(id)?
        .map(|r| r.returned)
        .unwrap_or_default();
    if let Some(order) = read.order(id)? {
        drop(read);
        let mut body = render(order);
        body.returned = returned;
        return Ok(json(StatusCode::OK, false, &body));
    }
    // An order another till of this store took, known from its replicated events.
    match read.peer_order(id)? {
        Some(peer) => {
            let mut body = render(peer.order);
            body.origin = Some(peer.origin);
            body.returned = returned;
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
