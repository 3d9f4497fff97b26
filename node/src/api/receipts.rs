//! `GET /orders/{id}/receipt`: a paid order's receipt, as JSON or as 42-column text for an
//! 80 mm printer (`fusion_rules::receipts`). Any till of the store serves any till's receipt
//! (its number and lines come over the mesh; the tenders are the seller's).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::events::payments::{PaymentStatus, Tender};
use fusion_contracts::http::{ErrorBody, ReceiptResponse, ReceiptTender};
use fusion_contracts::{Money, OrderId};

use super::error::ApiError;
use super::extract::Principal;
use super::{AppState, json};
use crate::domain::receipts::{self, Receipt};

/// A tender as the receipt prints it.
fn label(tender: Tender) -> &'static str {
    match tender {
        Tender::Cash => "Cash",
        Tender::Card => "Card",
        Tender::StoreCredit => "Store credit",
    }
}

#[utoipa::path(get, path = "/orders/{id}/receipt", tag = "orders",
    params(("id" = Uuid, Path), ("format" = Option<String>, Query, description = "`json` (default) or `text` (text/plain, 42 columns)")),
    responses((status = 200, body = ReceiptResponse), (status = 400, body = ErrorBody),
        (status = 404, description = "no such order, or not paid (no receipt yet)", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let text_only = match query.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("text") => true,
        Some(_) => return Err(ApiError::validation("format", "must be json or text")),
    };
    let not_found = || ApiError::not_found(format!("order {id} has no receipt"));
    let id = OrderId::parse(&id).ok_or_else(not_found)?;
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
    drop(read);
    // What was taken: captured (refunded later or not), or approved offline.
    let taken: Vec<_> = payments
        .into_iter()
        .filter(|p| {
            matches!(
                p.status,
                PaymentStatus::Captured
                    | PaymentStatus::PartiallyRefunded
                    | PaymentStatus::Refunded
                    | PaymentStatus::OfflineApproved
            )
        })
        .collect();
    let tenders: Vec<(String, Money, Option<Money>)> = taken
        .iter()
        .map(|p| (label(p.tender).to_string(), p.amount, p.change_due))
        .collect();
    let settings = state.store.settings();
    let store = settings.name.clone().unwrap_or_else(|| {
        state
            .store
            .store_id()
            .map_or_else(String::new, |s| s.to_string())
    });
    let text = receipts::render_text(&Receipt {
        store: &store,
        issued: &issued,
        order: &order,
        names: &names,
        tenders: &tenders,
        duplicate: false,
    });
    if text_only {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response());
    }
    let mut order_body = super::orders::render(order);
    order_body.origin = origin;
    let body = ReceiptResponse {
        receipt: issued.receipt,
        number: issued.number,
        till: issued.till,
        issued_at: issued.issued_at,
        store,
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
    };
    Ok(json(StatusCode::OK, false, &body))
}
