//! Receipts: `GET /orders/{id}/receipt` and `GET /receipts/{number}` show a paid order's
//! receipt; `POST /orders/{id}/receipt/prints` prints it at this till (recorded as
//! `receipt.printed`: the selling till's first print is the original, every other a DUPLICATE,
//! counted). Each answers JSON, 42-column text, a print-friendly HTML page, or ESC/POS bytes
//! (with the cut, and the drawer kick on an original paid in cash), chosen by `?format=` or
//! `Accept` (`fusion_rules::receipts`). Any till of the store serves any till's receipt (its
//! number and lines come over the mesh; the tenders are the seller's).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::OrderId;
use fusion_contracts::events::ReceiptPrinted;
use fusion_contracts::http::{
    EmailReceiptRequest, ErrorBody, PrinterResponse, ReceiptEmailResponse, ReceiptResponse,
    ReceiptTender, ReturnReceiptResponse, Role,
};

use super::error::ApiError;
use super::extract::{JsonBody, Principal, WriteContext};
use super::{AppState, json, submit};
use crate::domain::receipts::{self, Receipt};
use crate::store::{Command, Outcome};

use crate::domain::receipts::Format;

/// `?format=` (json, text, html, escpos), else the `Accept` header, else JSON.
fn format(query: &HashMap<String, String>, headers: &HeaderMap) -> Result<Format, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Format::choose(query.get("format").map(String::as_str), accept)
        .map_err(|reason| ApiError::validation("format", reason))
}

/// A staff member's name as the store knows them, else their id.
fn staff_name(settings: &fusion_sync::docs::StoreSettings, id: String) -> String {
    fusion_contracts::StaffId::new(&id)
        .ok()
        .and_then(|sid| settings.staff.get(&sid).map(|r| r.name.clone()))
        .unwrap_or(id)
}

/// The store's name as receipts print it: its settings' name, else its id.
fn store_name(state: &AppState, settings: &fusion_sync::docs::StoreSettings) -> String {
    settings.name.clone().unwrap_or_else(|| {
        state
            .store
            .store_id()
            .map_or_else(String::new, |s| s.to_string())
    })
}

/// Lines in a non-JSON format (`None` for JSON).
fn encoded(
    format: Format,
    title: &str,
    lines: &[receipts::Line],
    kick: bool,
    status: StatusCode,
) -> Option<Response> {
    let (kind, body) = format.encode(title, lines, kick)?;
    Some((status, [(header::CONTENT_TYPE, kind)], body).into_response())
}

/// A print of the receipt, when the request printed it.
struct Print {
    copy: u64,
    duplicate: bool,
}

/// The receipt of order `id` rendered as asked.
fn answer(
    state: &AppState,
    id: OrderId,
    format: Format,
    print: Option<Print>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("order {id} has no receipt"));
    let read = state.store.read()?;
    let issued = read.receipt(id)?.ok_or_else(not_found)?;
    let (order, origin) = match read.order(id)? {
        Some(order) => (order, None),
        None => {
            let peer = read.peer_order(id)?.ok_or_else(not_found)?;
            (peer.order, Some(peer.origin))
        }
    };
    let mut names = Vec::with_capacity(order.items.len());
    for item in &order.items {
        names.push(
            read.product_by_sku(&item.sku)?
                .map_or_else(|| item.sku.to_string(), |(p, _)| p.name),
        );
    }
    let payments = read.order_payments(id)?;
    let sold_by = read.order_staff(id)?;
    let verify = read.receipt_code(id)?;
    drop(read);
    let taken = receipts::taken(payments);
    let tenders = receipts::tenders(&taken);
    let settings = state.store.settings();
    let store = store_name(state, &settings);
    let staff = sold_by.map(|id| staff_name(&settings, id));
    let duplicate = print.as_ref().is_some_and(|p| p.duplicate);
    let receipt = Receipt {
        store: &store,
        address: settings.address.as_deref(),
        staff: staff.as_deref(),
        verify: verify.as_deref(),
        issued: &issued,
        order: &order,
        names: &names,
        tenders: &tenders,
        duplicate,
    };
    let kick = receipts::kicks_drawer(print.as_ref().is_some_and(|p| !p.duplicate), &taken);
    let lines = receipts::layout(&receipt);
    if let Some(response) = encoded(
        format,
        &format!("Receipt {}", issued.receipt),
        &lines,
        kick,
        status,
    ) {
        return Ok(response);
    }
    let text = receipts::encode_text(&lines);
    let mut order_body = super::orders::render(order);
    order_body.origin = origin;
    let body = ReceiptResponse {
        receipt: issued.receipt,
        number: issued.number,
        till: issued.till,
        issued_at: issued.issued_at,
        store,
        address: settings.address,
        staff,
        order: order_body,
        tenders: taken
            .iter()
            .map(|p| ReceiptTender {
                tender: p.tender,
                amount: p.amount.to_decimal(),
                change_due: p.change_due.map(|c| c.to_decimal()),
            })
            .collect(),
        text,
        copy: print.as_ref().map(|p| p.copy),
        duplicate,
        verification_code: verify,
    };
    Ok(json(status, false, &body))
}

#[utoipa::path(get, path = "/orders/{id}/receipt", tag = "orders",
    params(("id" = Uuid, Path), ("format" = Option<String>, Query, description = "`json` (default), `text` (text/plain, 42 columns), `html` (a print-friendly page) or `escpos` (application/vnd.escpos printer bytes); else by `Accept`")),
    responses((status = 200, body = ReceiptResponse), (status = 400, body = ErrorBody),
        (status = 404, description = "no such order, or not paid (no receipt yet)", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = format(&query, &headers)?;
    let id = OrderId::parse(&id)
        .ok_or_else(|| ApiError::not_found(format!("order {id} has no receipt")))?;
    answer(&state, id, format, None, StatusCode::OK)
}

/// A receipt by the number it prints (`<till>-<n>`), e.g. for a return.
#[utoipa::path(get, path = "/receipts/{number}", tag = "orders",
    params(("number" = String, Path), ("format" = Option<String>, Query, description = "as GET /orders/{id}/receipt")),
    responses((status = 200, body = ReceiptResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn by_number(
    State(state): State<AppState>,
    _who: Principal,
    Path(number): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = format(&query, &headers)?;
    let id = state
        .store
        .read()?
        .receipt_order(&number)?
        .ok_or_else(|| ApiError::not_found(format!("receipt {number} not found")))?;
    answer(&state, id, format, None, StatusCode::OK)
}

/// Print the receipt at this till: recorded (`receipt.printed`) before it is answered; the
/// selling till's first print is the original, every other says DUPLICATE and counts in the
/// till's next Z report. With `send=printer` the ESC/POS bytes go to the till's printer
/// (`--printer`), opened before the print is recorded: a printer that cannot be reached is a
/// 503 and records nothing.
#[utoipa::path(post, path = "/orders/{id}/receipt/prints", tag = "orders",
    params(("id" = Uuid, Path), ("format" = Option<String>, Query, description = "as GET /orders/{id}/receipt"),
        ("send" = Option<String>, Query, description = "`printer`: send the ESC/POS bytes to the till's printer and answer `ReceiptSent`")),
    responses((status = 201, body = ReceiptResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "send=printer on a till with no printer configured", body = ErrorBody),
        (status = 502, description = "the print was recorded but the printer did not take all of it", body = ErrorBody),
        (status = 503, description = "the printer cannot be reached; nothing recorded", body = ErrorBody)))]
pub async fn print(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let id = OrderId::parse(&id)
        .ok_or_else(|| ApiError::not_found(format!("order {id} has no receipt")))?;
    let (format, printer) = match query.get("send").map(String::as_str) {
        None => (format(&query, &headers)?, None),
        Some("printer") => {
            let printer = state.printer.clone().ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "no_printer",
                    "this till has no printer configured (fusion node serve --printer)",
                )
                .with_field("send")
            })?;
            if state.store.read()?.receipt(id)?.is_none() {
                return Err(ApiError::not_found(format!("order {id} has no receipt")));
            }
            let opened = printer.open().await.map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "printer_unavailable",
                    format!("the printer {printer} cannot be reached ({e}); nothing was recorded"),
                )
                .with_field("send")
            })?;
            (Format::EscPos, Some((printer, opened)))
        }
        Some(_) => return Err(ApiError::validation("send", "must be `printer`")),
    };
    let written = submit(
        &state,
        &ctx,
        None,
        Command::PrintReceipt {
            order_id: id,
            staff: who.staff.clone(),
        },
    )
    .await?;
    let replayed = written.replayed;
    let printed: Box<ReceiptPrinted> = match written.decision? {
        Outcome::Printed(p) => p,
        other => return Err(super::unexpected(other)),
    };
    if printed.duplicate && !replayed {
        metrics::counter!("fusion_receipt_reprints_total").increment(1);
    }
    let print = Print {
        copy: printed.copy,
        duplicate: printed.duplicate,
    };
    let response = answer(&state, id, format, Some(print), StatusCode::CREATED)?;
    let Some((printer, opened)) = printer else {
        return Ok(response);
    };
    // The very bytes `?format=escpos` answers, to the printer.
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(ApiError::internal_from)?;
    opened.send(&bytes).await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "printer_failed",
            format!(
                "copy {} was recorded but the printer {printer} did not take it ({e}): print \
                 again for a duplicate",
                printed.copy
            ),
        )
        .with_field("send")
    })?;
    let body = fusion_contracts::http::ReceiptSent {
        receipt: printed.receipt.clone(),
        copy: printed.copy,
        duplicate: printed.duplicate,
        printer: printer.to_string(),
        bytes: bytes.len() as u64,
    };
    Ok(json(StatusCode::CREATED, false, &body))
}

/// The till's receipt printer, for the register's "Send to printer".
#[utoipa::path(get, path = "/printer", tag = "orders",
    responses((status = 200, body = PrinterResponse)))]
pub async fn printer(State(state): State<AppState>, _who: Principal) -> Response {
    let body = PrinterResponse {
        configured: state.printer.is_some(),
        printer: state.printer.as_ref().map(ToString::to_string),
    };
    json(StatusCode::OK, false, &body)
}

/// Send the receipt to the customer's address: the request is recorded (`receipt.emailed`)
/// before it is answered, and sent from the hub once this till's log reaches it (the shipped
/// n8n template renders it there) — offline too, it waits in the log.
#[utoipa::path(post, path = "/orders/{id}/receipt/emails", tag = "orders",
    params(("id" = Uuid, Path)),
    request_body = EmailReceiptRequest,
    responses((status = 202, body = ReceiptEmailResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn email(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    Path(id): Path<String>,
    body: JsonBody<EmailReceiptRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Cashier)?;
    let id = OrderId::parse(&id)
        .ok_or_else(|| ApiError::not_found(format!("order {id} has no receipt")))?;
    let to = body.value.address()?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::EmailReceipt {
            order_id: id,
            to,
            staff: who.staff.clone(),
        },
    )
    .await?;
    let replayed = written.replayed;
    let emailed = match written.decision? {
        Outcome::Emailed(e) => e,
        other => return Err(super::unexpected(other)),
    };
    if !replayed {
        metrics::counter!("fusion_receipt_emails_total").increment(1);
    }
    let body = ReceiptEmailResponse {
        receipt: emailed.receipt,
        order_id: emailed.order_id,
        to: emailed.to,
        status: "queued".into(),
        requested_at: emailed.requested_at,
    };
    Ok(json(StatusCode::ACCEPTED, replayed, &body))
}

/// A return's slip: what came back, the refund and where it went.
#[utoipa::path(get, path = "/returns/{id}/receipt", tag = "orders",
    params(("id" = Uuid, Path), ("format" = Option<String>, Query, description = "as GET /orders/{id}/receipt")),
    responses((status = 200, body = ReturnReceiptResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn of_return(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = format(&query, &headers)?;
    let not_found = || ApiError::not_found(format!("return {id} not found"));
    let return_id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let read = state.store.read()?;
    let returned = read.return_of(return_id)?.ok_or_else(not_found)?;
    let receipt = read.receipt(returned.order_id)?.map(|r| r.receipt);
    let mut names = Vec::with_capacity(returned.lines.len());
    for line in &returned.lines {
        names.push(
            read.product_by_sku(&line.sku)?
                .map_or_else(|| line.sku.to_string(), |(p, _)| p.name),
        );
    }
    drop(read);
    let settings = state.store.settings();
    let store = store_name(&state, &settings);
    let staff = returned
        .staff
        .as_ref()
        .map(|id| staff_name(&settings, id.to_string()));
    let lines = receipts::layout_return(&receipts::ReturnReceipt {
        store: &store,
        address: settings.address.as_deref(),
        returned: &returned,
        receipt: receipt.as_deref(),
        names: &names,
        staff: staff.as_deref(),
    });
    let title = format!("Refund {}", returned.return_id);
    if let Some(response) = encoded(format, &title, &lines, false, StatusCode::OK) {
        return Ok(response);
    }
    let body = ReturnReceiptResponse {
        return_id: returned.return_id,
        order_id: returned.order_id,
        receipt,
        refund: returned.refund,
        currency: returned.currency,
        staff,
        text: receipts::encode_text(&lines),
    };
    Ok(json(StatusCode::OK, false, &body))
}
