//! `GET /fleet/orders/{id}/receipt`: a paid order's receipt at the hub, laid out from the
//! fleet log by the tills' own rule (`fusion_rules::receipts::layout`): the selling till's
//! order, payments and receipt number, the catalog's names, the store's name, address and
//! staff from its settings, and the verification code of the till's journal entry. This is
//! what the shipped n8n template emails when a till records `receipt.emailed`.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::http::hub::FleetReceipt;
use fusion_contracts::{Event, OrderId, StaffId, StoreId};
use fusion_http::{ApiError, blocking};
use fusion_rules::receipts::{self, Format, Receipt};
use fusion_rules::{orders, payments};

use super::{HubState, Viewer, ok};

pub(super) async fn receipt(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::choose(query.get("format").map(String::as_str), accept)
        .map_err(|reason| ApiError::validation("format", reason))?;
    let not_found =
        || ApiError::not_found(format!("order {id} has no receipt in the fleet")).with_field("id");
    let order_id = OrderId::parse(&id).ok_or_else(not_found)?;
    let store = state.store.clone();
    let (events, code) = blocking(move || {
        Ok::<_, crate::store::HubStoreError>((
            store.order_events(order_id)?,
            store.receipt_code(order_id)?,
        ))
    })
    .await?;
    // The selling till's log of the order: its receipt, order and payments.
    let issued = events
        .iter()
        .find_map(|e| match &e.event {
            Event::ReceiptIssued(r) => Some((e.origin.clone(), r.clone())),
            _ => None,
        })
        .ok_or_else(not_found)?;
    let (seller, issued) = issued;
    let own: Vec<_> = events.iter().filter(|e| e.origin == seller).collect();
    let mut order = None;
    let mut sold_by: Option<StaffId> = None;
    for e in &own {
        if let Err(refused) = orders::apply(&mut order, &e.event) {
            tracing::warn!(%refused, order = %order_id, "an order event refused");
        }
        if let Event::OrderCreated(created) = &e.event {
            sold_by = created.staff.clone();
        }
    }
    let order = order.ok_or_else(not_found)?;
    let taken = receipts::taken(payments::fold_all(
        own.iter().map(|e| (&e.event, e.occurred_at)),
    ));
    let tenders = receipts::tenders(&taken);
    let skus: BTreeSet<_> = order.items.iter().map(|i| i.sku.clone()).collect();
    let catalog = state.docs.names_of(&skus);
    let names: Vec<String> = order
        .items
        .iter()
        .map(|i| {
            catalog
                .get(&i.sku)
                .cloned()
                .unwrap_or_else(|| i.sku.to_string())
        })
        .collect();
    let store_id = state
        .store
        .origin_store(seller.as_str())
        .map_err(ApiError::internal_from)?;
    let settings = store_id
        .as_deref()
        .and_then(|s| StoreId::new(s).ok())
        .map(|s| state.docs.settings(&s))
        .unwrap_or_default();
    let store = settings
        .name
        .clone()
        .or_else(|| store_id.clone())
        .unwrap_or_default();
    let staff = sold_by.map(|id| {
        settings
            .staff
            .get(&id)
            .map_or_else(|| id.to_string(), |r| r.name.clone())
    });
    let receipt = Receipt {
        store: &store,
        address: settings.address.as_deref(),
        staff: staff.as_deref(),
        verify: code.as_deref(),
        issued: &issued,
        order: &order,
        names: &names,
        tenders: &tenders,
        duplicate: false,
    };
    let lines = receipts::layout(&receipt);
    let title = format!("Receipt {}", issued.receipt);
    if let Some((kind, body)) = format.encode(&title, &lines, false) {
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response());
    }
    Ok(ok(&FleetReceipt {
        receipt: issued.receipt.clone(),
        number: issued.number,
        order_id,
        till: issued.till.clone(),
        store_id,
        store,
        staff,
        total: order.total.to_decimal(),
        currency: order.total.currency,
        issued_at: issued.issued_at,
        verification_code: code,
        text: receipts::encode_text(&lines),
        html: receipts::encode_html(&title, &lines),
    }))
}
