//! The shared documents as the hub serves and edits them: the fleet catalog (`/products`),
//! every store's campaigns (`/campaigns`, their participants) and store settings
//! (`/stores/{id}/settings`).

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use fusion_contracts::events::Product;
use fusion_contracts::http::{SettingsRequest, SettingsResponse, UpdateProductRequest};
use fusion_contracts::{ProductId, StoreId, Timestamp};
use fusion_http::{ApiError, Json, blocking};
use serde::Serialize;

use super::{Admin, HubState, Viewer, correlation, ok};
use crate::docs::EditError;

/// A product of the fleet catalog (the node's product body without its local stock).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CatalogProduct {
    pub(super) id: ProductId,
    pub(super) sku: String,
    pub(super) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<String>,
    pub(super) price: fusion_contracts::Decimal,
    pub(super) currency: fusion_contracts::Currency,
    pub(super) status: fusion_contracts::events::ProductStatus,
    pub(super) created_at: Timestamp,
    pub(super) updated_at: Timestamp,
    pub(super) tax_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) category: Option<String>,
}

pub(super) fn render_product(p: Product) -> CatalogProduct {
    let tax_class = p.tax_class().to_string();
    CatalogProduct {
        tax_class,
        category: p.category,
        id: p.id,
        sku: p.sku.as_str().to_string(),
        name: p.name,
        description: p.description,
        price: p.price.to_decimal(),
        currency: p.price.currency,
        status: p.status,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

pub(super) fn product_id(id: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("product {id} not found"),
        )
        .with_field("id")
    })
}

pub(super) async fn products(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let body: Vec<CatalogProduct> = state
        .docs
        .products()
        .into_iter()
        .map(render_product)
        .collect();
    Ok(ok(&body))
}

pub(super) async fn product(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = product_id(&id)?;
    let product = state.docs.product(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("product {id} not found"),
        )
        .with_field("id")
    })?;
    Ok(ok(&render_product(product)))
}

pub(super) async fn update_product(
    State(state): State<HubState>,
    _caller: Admin,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<UpdateProductRequest>,
) -> Result<Response, ApiError> {
    let id = product_id(&id)?;
    let command = request
        .into_command(id)
        .map_err(|e| ApiError::validation(&e.field, &e.message))?;
    let correlation_id = correlation(&headers);
    let docs = state.docs.clone();
    let now = state.store.now();
    let updated =
        tokio::task::spawn_blocking(move || docs.update_product(&command, correlation_id, now))
            .await
            .map_err(ApiError::internal_from)?;
    match updated {
        Ok(product) => Ok(ok(&render_product(product))),
        Err(EditError::NotFound(id)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("product {id} not found"),
        )
        .with_field("id")),
        Err(EditError::Archived(id)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "archived",
            format!("product {id} is archived"),
        )
        .with_field("id")),
        Err(EditError::Field(e)) => Err(ApiError::validation(&e.field, &e.message)),
        Err(EditError::Store(e)) => Err(ApiError::internal_from(e)),
    }
}

/// A campaign of the fleet: its snapshot as its owner last recorded it, and the owner.
#[derive(Serialize)]
pub(super) struct FleetCampaign {
    #[serde(flatten)]
    pub(super) campaign: fusion_contracts::events::campaigns::CampaignSnapshot,
    pub(super) origin: fusion_contracts::NodeId,
}

pub(super) fn render_campaign(c: fusion_sync::docs::CampaignDoc) -> FleetCampaign {
    FleetCampaign {
        campaign: c.campaign,
        origin: c.owner,
    }
}

pub(super) async fn campaigns(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let body: Vec<FleetCampaign> = state
        .docs
        .campaigns()
        .into_iter()
        .map(render_campaign)
        .collect();
    Ok(ok(&body))
}

pub(super) async fn campaign(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("campaign {id} not found")).with_field("id");
    let id = fusion_contracts::CampaignId::parse(&id).ok_or_else(not_found)?;
    let campaign = state.docs.campaign(id).ok_or_else(not_found)?;
    Ok(ok(&render_campaign(campaign)))
}

pub(super) async fn participants(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("campaign {id} not found")).with_field("id");
    let campaign = fusion_contracts::CampaignId::parse(&id).ok_or_else(not_found)?;
    let store = state.store.clone();
    let list = blocking(move || store.campaign_participants(campaign)).await?;
    if list.is_empty() && state.docs.campaign(campaign).is_none() {
        return Err(not_found());
    }
    Ok(ok(&list))
}

pub(super) fn store_id(id: &str) -> Result<StoreId, ApiError> {
    StoreId::new(id).map_err(|e| ApiError::validation("id", e.reason))
}

pub(super) fn render_settings(
    store: StoreId,
    s: fusion_sync::docs::StoreSettings,
) -> SettingsResponse {
    s.response(Some(store))
}

pub(super) async fn store_settings(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let store = store_id(&id)?;
    let settings = state.docs.settings(&store);
    Ok(ok(&render_settings(store, settings)))
}

pub(super) async fn update_store_settings(
    State(state): State<HubState>,
    _caller: Admin,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<SettingsRequest>,
) -> Result<Response, ApiError> {
    let store = store_id(&id)?;
    let change = request
        .into_change()
        .map_err(|e| ApiError::validation(&e.field, &e.message))?;
    let docs = state.docs.clone();
    let target = store.clone();
    let updated = blocking(move || docs.update_settings(&target, &change)).await?;
    Ok(ok(&render_settings(store, updated)))
}
