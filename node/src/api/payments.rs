//! `/payments`: tenders towards an order. Taking a payment needs a cashier, refunding a manager.
//!
//! A card payment is recorded pending (durably), then the provider is called outside any
//! transaction with the payment id as idempotency key, then its answer is recorded. Provider
//! calls for one payment are serialised (striped locks), so two refunds cannot both pass the
//! "refundable" check; a call repeated after a crash is the same call at the provider.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::commands::{
    ApproveOffline, CreatePayment, PaymentCommand, RecordCapture, RecordCardOutcome, RecordRefund,
};
use fusion_contracts::events::payments::{PaymentStatus, Tender};
use fusion_contracts::http::{
    CaptureRequest, CreatePaymentRequest, ErrorBody, IssueStoreCreditRequest, PaymentMethod,
    PaymentResponse, RefundRequest, Role, StoreCreditResponse, price,
};
use fusion_contracts::{Money, PaymentId};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Principal, WriteContext};
use super::{AppState, json, submit};
use crate::card::{ProviderError, authorize_payment};
use crate::domain::{Payment, payments};
use crate::store::{Command, Outcome};

pub fn render(p: Payment) -> PaymentResponse {
    let currency = p.amount.currency;
    let amount = |minor| Money { minor, currency }.to_decimal();
    PaymentResponse {
        id: p.id,
        order_id: p.order_id,
        amount: p.amount.to_decimal(),
        currency,
        status: p.status,
        tender: p.tender,
        payment_method_id: p.payment_method_id,
        captured_amount: amount(p.captured_minor),
        refunded_amount: amount(p.refunded_minor),
        change_due: p.change_due.map(|c| c.to_decimal()),
        failure_reason: p.failure_reason,
        provider_ref: p.provider_ref,
        created_at: p.created_at,
        updated_at: p.updated_at,
        order_due: None,
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("Payment not found")
}

fn parse_id(id: &str) -> Result<PaymentId, ApiError> {
    PaymentId::parse(id).ok_or_else(not_found)
}

fn provider_error(e: ProviderError) -> ApiError {
    match e {
        ProviderError::Unreachable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            e.to_string(),
        ),
        ProviderError::Refused(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", e.to_string())
        }
    }
}

/// A declined payment answers 402 with the payment record; others `ok`.
/// `ok`, or 402 for a payment that failed.
fn status_of(payment: &Payment, ok: StatusCode) -> StatusCode {
    if payment.status == PaymentStatus::Failed {
        StatusCode::PAYMENT_REQUIRED
    } else {
        ok
    }
}

fn reply(payment: Payment, ok: StatusCode, replayed: bool) -> Response {
    json(status_of(&payment, ok), replayed, &render(payment))
}

async fn record(
    state: &AppState,
    ctx: &WriteContext,
    command: PaymentCommand,
) -> Result<Payment, ApiError> {
    let written = submit(state, ctx, None, Command::Payment(command)).await?;
    match written.decision? {
        Outcome::Payment(payment) => Ok(payment),
        other => Err(super::unexpected(other)),
    }
}

fn current(state: &AppState, id: PaymentId) -> Result<Payment, ApiError> {
    state.store.read()?.payment(id)?.ok_or_else(not_found)
}

/// Take a payment. Cash is captured at once (change due recorded); a card goes to the provider
/// and is captured at once unless `capture` is false. Declined: 402 with the payment.
#[utoipa::path(post, path = "/payments", tag = "payments", request_body = CreatePaymentRequest,
    responses((status = 201, body = PaymentResponse), (status = 402, description = "declined", body = PaymentResponse),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "card provider unreachable; the payment stays pending", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<CreatePaymentRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let request = body.value;
    let method = PaymentMethod::parse(&request.payment_method_id)?;
    let amount = price("amount", request.amount, request.currency)?;
    if amount.minor == 0 {
        return Err(ApiError::validation("amount", "must be positive"));
    }
    let tendered = request
        .tendered
        .map(|t| price("tendered", t, request.currency))
        .transpose()?;
    let tender = match method {
        PaymentMethod::Cash => Tender::Cash,
        PaymentMethod::Card { .. } if state.card.is_none() => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_card_provider",
                "no card provider is configured on this node",
            )
            .with_field("paymentMethodId"));
        }
        PaymentMethod::Card { .. } => Tender::Card,
        PaymentMethod::StoreCredit { .. } => Tender::StoreCredit,
    };
    let command = CreatePayment {
        payment_id: PaymentId(Uuid::now_v7()),
        order_id: request.order_id,
        amount,
        tender,
        payment_method_id: request.payment_method_id.clone(),
        tendered,
        capture: request.capture.unwrap_or(true),
        staff: who.staff.clone(),
    };
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Payment(PaymentCommand::CreatePayment(command)),
    )
    .await?;
    let payment = match written.decision? {
        Outcome::Payment(payment) => payment,
        other => return Err(super::unexpected(other)),
    };
    let payment = if payment.tender == Tender::Card && payment.status == PaymentStatus::Pending {
        authorize(&state, &ctx, payment.id).await?
    } else {
        payment
    };
    let read = state.store.read()?;
    let due = match read.order(payment.order_id)? {
        Some(order) => Some(
            crate::domain::payments::remaining(&order, &read.order_payments(order.id)?)
                .to_decimal(),
        ),
        None => None,
    };
    drop(read);
    let status = status_of(&payment, StatusCode::CREATED);
    let mut body = render(payment);
    body.order_due = due;
    Ok(json(status, written.replayed, &body))
}

/// Asks the provider about a pending card payment and records its answer. When the provider
/// cannot be reached, a payment within the offline floor limit is approved on the till (and
/// forwarded later by the follow-up worker); above it, it stays pending (503) for the worker to
/// retry until the timeout (BR-007).
async fn authorize(
    state: &AppState,
    ctx: &WriteContext,
    id: PaymentId,
) -> Result<Payment, ApiError> {
    let provider = state.card.as_ref().ok_or_else(ApiError::internal)?;
    let _serial = state.payment_lock(id).lock().await;
    let payment = current(state, id)?;
    if payment.status != PaymentStatus::Pending {
        return Ok(payment); // a concurrent retry or the worker got there first
    }
    match authorize_payment(provider.as_ref(), &payment, payment.capture).await {
        Ok(outcome) => {
            record(
                state,
                ctx,
                PaymentCommand::RecordCardOutcome(RecordCardOutcome {
                    payment_id: id,
                    outcome,
                }),
            )
            .await
        }
        // The store's shared setting, else the node's flag.
        Err(error) => match state
            .store
            .settings()
            .card_floor_limit
            .or(state.payment_policy.offline_floor_limit)
        {
            Some(floor_limit) => {
                let reason = error.to_string();
                record(
                    state,
                    ctx,
                    PaymentCommand::ApproveOffline(ApproveOffline {
                        payment_id: id,
                        floor_limit,
                        reason,
                        budget: state.payment_policy.offline_budget,
                    }),
                )
                .await
            }
            None => Err(provider_error(error)),
        },
    }
}

#[utoipa::path(get, path = "/payments/{id}", tag = "payments", params(("id" = Uuid, Path)),
    responses((status = 200, body = PaymentResponse), (status = 404, body = ErrorBody)))]
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

/// An order's payments, oldest first.
#[utoipa::path(get, path = "/orders/{id}/payments", tag = "payments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<PaymentResponse>), (status = 404, body = ErrorBody)))]
pub async fn of_order(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let read = state.store.read()?;
    let order_id = super::existing_order(&read, &id)?;
    let bodies: Vec<PaymentResponse> = read
        .order_payments(order_id)?
        .into_iter()
        .map(render)
        .collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

/// Capture an authorized card payment: all of it, or `amount` (the rest is released).
#[utoipa::path(post, path = "/payments/{id}/capture", tag = "payments", params(("id" = Uuid, Path)),
    request_body(content = CaptureRequest, description = "optional"),
    responses((status = 200, body = PaymentResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn capture(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<CaptureRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let id = parse_id(&id)?;
    let _serial = state.payment_lock(id).lock().await;
    let payment = current(&state, id)?;
    let amount = body
        .value
        .amount
        .map(|a| price("amount", a, payment.amount.currency))
        .transpose()?;
    let amount =
        payments::check_capture(&payment, amount).map_err(crate::domain::Rejected::from)?;
    if let (Some(provider), Some(provider_ref)) =
        (state.card.as_ref(), payment.provider_ref.as_deref())
    {
        let key = format!("{id}-capture");
        provider
            .capture(provider_ref, amount, &key)
            .await
            .map_err(provider_error)?;
    }
    let payment = record(
        &state,
        &ctx,
        PaymentCommand::RecordCapture(RecordCapture {
            payment_id: id,
            amount,
        }),
    )
    .await?;
    Ok(reply(payment, StatusCode::OK, false))
}

/// Refund all that is left, or `amount`; never more than was captured in total.
#[utoipa::path(post, path = "/payments/{id}/refund", tag = "payments", params(("id" = Uuid, Path)),
    request_body(content = RefundRequest, description = "optional"),
    responses((status = 200, body = PaymentResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn refund(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<RefundRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let id = parse_id(&id)?;
    let _serial = state.payment_lock(id).lock().await;
    let payment = current(&state, id)?;
    let amount = body
        .value
        .amount
        .map(|a| price("amount", a, payment.amount.currency))
        .transpose()?;
    if amount.is_some_and(|a| a.minor == 0) {
        return Err(ApiError::validation("amount", "must be positive"));
    }
    // What returns owe the payment is theirs: a manager's refund cannot take it too.
    let owed = state.store.read()?.refund_owed(id)?;
    let amount =
        payments::check_refund(&payment, amount, owed).map_err(crate::domain::Rejected::from)?;
    let provider_ref = match (
        payment.tender,
        state.card.as_ref(),
        payment.provider_ref.as_deref(),
    ) {
        (Tender::Card, Some(provider), Some(intent)) => {
            // Keyed by what was refunded before: a retry repeats this refund, a new one is new.
            let key = format!("{id}-refund-{}", payment.refunded_minor);
            Some(
                provider
                    .refund(intent, amount, &key)
                    .await
                    .map_err(provider_error)?,
            )
        }
        (Tender::Card, _, _) => {
            return Err(provider_error(ProviderError::Unreachable(
                "no card provider configured".into(),
            )));
        }
        (Tender::Cash | Tender::StoreCredit, _, _) => None,
    };
    let payment = record(
        &state,
        &ctx,
        PaymentCommand::RecordRefund(RecordRefund {
            payment_id: id,
            amount,
            provider_ref,
        }),
    )
    .await?;
    Ok(reply(payment, StatusCode::OK, false))
}

/// An account's balance.
#[utoipa::path(get, path = "/store-credit/{account}", tag = "payments", params(("account" = String, Path)),
    responses((status = 200, body = StoreCreditResponse), (status = 404, body = ErrorBody)))]
pub async fn credit(
    State(state): State<AppState>,
    _who: Principal,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.read()?.store_credit(&account)? {
        Some(a) => Ok(json(StatusCode::OK, false, &credit_body(a))),
        None => Err(ApiError::not_found(format!(
            "store credit account {account} not found"
        ))),
    }
}

/// Add to a store credit account (created by its first issue; its currency is then fixed).
#[utoipa::path(post, path = "/store-credit/{account}/issue", tag = "payments", params(("account" = String, Path)),
    request_body = IssueStoreCreditRequest,
    responses((status = 200, body = StoreCreditResponse), (status = 400, body = ErrorBody)))]
pub async fn issue_credit(
    State(state): State<AppState>,
    who: Principal,
    Path(account): Path<String>,
    ctx: WriteContext,
    body: JsonBody<IssueStoreCreditRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = body.value.into_command(account)?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::IssueStoreCredit(command),
    )
    .await?;
    match written.decision? {
        Outcome::StoreCredit(a) => Ok(json(StatusCode::OK, written.replayed, &credit_body(a))),
        other => Err(super::unexpected(other)),
    }
}

fn credit_body(a: crate::domain::payments::CreditAccount) -> StoreCreditResponse {
    StoreCreditResponse {
        account: a.account,
        balance: a.balance.to_decimal(),
        currency: a.balance.currency,
        updated_at: a.updated_at,
    }
}
