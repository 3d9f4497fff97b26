//! Escrow at the hub: stock rights per store (`GET /escrow`), the hub's holders giving,
//! rebalancing and reclaiming (`POST /escrow/transfer|rebalance|reclaim`), shared campaigns'
//! seats (`/campaigns/{id}/seats`, `GET /escrow/campaigns`), offline card budgets
//! (`GET /escrow/budget`).

use std::collections::HashMap;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fusion_contracts::StoreId;
use fusion_contracts::http::hub::{
    GiveSeatsRequest, HubTransferRequest, RebalanceRequest, ReclaimRequest,
};
use fusion_http::{ApiError, Json, blocking};
use serde::{Deserialize, Serialize};

use super::fleet::{StockQuery, stock_query};
use super::{Admin, HubState, Viewer, correlation, ok};

/// One store's sku in `GET /escrow`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EscrowRow {
    pub(super) store_id: String,
    pub(super) sku: String,
    /// The hub's holder of the store's rights (a till gives it rights by transferring to it).
    pub(super) hub_holder: String,
    /// Units the holders may still sell, summed.
    pub(super) held: u64,
    pub(super) reserved: u64,
    pub(super) in_transit: u64,
    pub(super) holders: Vec<EscrowHolder>,
    pub(super) transfers_in_transit: Vec<crate::store::Transfer>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EscrowHolder {
    pub(super) origin: String,
    pub(super) held: u64,
    pub(super) reserved: u64,
}

pub(super) async fn escrow(
    State(state): State<HubState>,
    _caller: Viewer,
    query: Result<Query<StockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let query = stock_query(query)?;
    let store = state.store.clone();
    // One snapshot: a transfer stored between two reads would show twice (held and in transit).
    let (stock, transfers) = blocking(move || store.escrow_snapshot()).await?;
    let mut rows: std::collections::BTreeMap<(String, String), EscrowRow> = Default::default();
    let origin_store: HashMap<String, String> = stock
        .iter()
        .map(|t| (t.origin.clone(), t.store_id.clone()))
        .collect();
    let wanted = |store: &str, sku: &str| {
        query.store.as_deref().is_none_or(|s| s == store)
            && query.sku.as_deref().is_none_or(|s| s == sku)
    };
    let hub = state.store.clone();
    let row = |store: &str, sku: &str| EscrowRow {
        store_id: store.to_string(),
        sku: sku.to_string(),
        hub_holder: StoreId::new(store)
            .map(|s| hub.holder(&s).to_string())
            .unwrap_or_default(),
        held: 0,
        reserved: 0,
        in_transit: 0,
        holders: Vec::new(),
        transfers_in_transit: Vec::new(),
    };
    for t in stock {
        if !wanted(&t.store_id, &t.sku) {
            continue;
        }
        let r = rows
            .entry((t.store_id.clone(), t.sku.clone()))
            .or_insert_with(|| row(&t.store_id, &t.sku));
        r.held += t.available;
        r.reserved += t.reserved;
        r.holders.push(EscrowHolder {
            origin: t.origin,
            held: t.available,
            reserved: t.reserved,
        });
    }
    for t in transfers.into_iter().filter(|t| !t.received) {
        let store_id = origin_store
            .get(&t.from)
            .cloned()
            .unwrap_or_else(|| "-".to_string());
        if !wanted(&store_id, &t.sku) {
            continue;
        }
        let r = rows
            .entry((store_id.clone(), t.sku.clone()))
            .or_insert_with(|| row(&store_id, &t.sku));
        r.in_transit += t.quantity;
        r.transfers_in_transit.push(t);
    }
    Ok(ok(&rows.into_values().collect::<Vec<_>>()))
}

/// A refusal of the hub's escrow as a 4xx.
pub(super) fn refused(refusal: crate::store::EscrowRefusal) -> ApiError {
    use crate::store::EscrowRefusal;
    match refusal {
        EscrowRefusal::Invalid { field, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", message).with_field(field)
        }
        EscrowRefusal::Insufficient { available, message } => {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "insufficient_rights",
                message,
            )
            .with_field("quantity");
            e.body.available = Some(available);
            e
        }
    }
}

pub(super) async fn escrow_transfer(
    State(state): State<HubState>,
    _caller: Admin,
    headers: HeaderMap,
    Json(body): Json<HubTransferRequest>,
) -> Result<Response, ApiError> {
    if !(1..=fusion_contracts::commands::QUANTITY_MAX).contains(&body.quantity) {
        return Err(ApiError::validation(
            "quantity",
            "must be between 1 and 1000000000",
        ));
    }
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let transfer = blocking(move || {
        store.transfer(
            &body.store_id,
            &body.sku,
            &body.to,
            body.quantity,
            correlation_id,
        )
    })
    .await?
    .map_err(refused)?;
    Ok((StatusCode::CREATED, axum::Json(transfer)).into_response())
}

pub(super) async fn escrow_reclaim(
    State(state): State<HubState>,
    _caller: Admin,
    headers: HeaderMap,
    Json(body): Json<ReclaimRequest>,
) -> Result<Response, ApiError> {
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let reclaim = blocking(move || store.reclaim(&body.node_id, correlation_id))
        .await?
        .map_err(refused)?;
    // Durable first, then cut: a reconnect in between is refused by the gate.
    if let Some(endpoint) = reclaim.revoked.as_deref().and_then(|e| e.parse().ok()) {
        let cut = state.gate.cut(endpoint);
        tracing::info!(node = %reclaim.node_id, cut, "reclaimed a lost till's rights");
    }
    Ok(ok(&reclaim))
}

pub(super) async fn escrow_rebalance(
    State(state): State<HubState>,
    _caller: Admin,
    headers: HeaderMap,
    Json(body): Json<RebalanceRequest>,
) -> Result<Response, ApiError> {
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let moved =
        blocking(move || store.rebalance(body.store_id.as_ref(), body.keep, correlation_id))
            .await?;
    Ok(ok(&moved))
}

pub(super) fn campaign_id(id: &str) -> Result<fusion_contracts::CampaignId, ApiError> {
    fusion_contracts::CampaignId::parse(id)
        .ok_or_else(|| ApiError::not_found(format!("campaign {id} not found")).with_field("id"))
}

pub(super) async fn campaign_seats(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let campaign = campaign_id(&id)?;
    let store = state.store.clone();
    match blocking(move || store.hub_campaign(campaign)).await? {
        Some(row) => Ok(ok(&row)),
        None => Err(
            ApiError::not_found(format!("campaign {id} shares no seats with the hub"))
                .with_field("id"),
        ),
    }
}

pub(super) async fn give_seats(
    State(state): State<HubState>,
    _caller: Admin,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(body): Json<GiveSeatsRequest>,
) -> Result<Response, ApiError> {
    let campaign = campaign_id(&id)?;
    if body.seats == 0 {
        return Err(ApiError::validation("seats", "must be positive"));
    }
    let correlation_id = correlation(&headers);
    let store = state.store.clone();
    let row = blocking(move || store.give_seats(campaign, &body.to, body.seats, correlation_id))
        .await?
        .map_err(refused)?;
    Ok((StatusCode::CREATED, axum::Json(row)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BudgetQuery {
    pub(super) store: Option<String>,
}

pub(super) async fn escrow_budget(
    State(state): State<HubState>,
    _caller: Viewer,
    query: Result<Query<BudgetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            format!("{}; the parameter is store", e.body_text()),
        )
    })?;
    let store = state.store.clone();
    let rows = blocking(move || store.budgets()).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| query.store.as_deref().is_none_or(|s| s == r.store_id))
        .collect();
    Ok(ok(&rows))
}

pub(super) async fn escrow_campaigns(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    Ok(ok(&blocking(move || store.hub_campaigns()).await?))
}
