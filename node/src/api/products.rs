//! `/products`: the catalog. Reading needs any role; changing it needs a manager.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use fusion_contracts::ProductId;
use fusion_contracts::commands::{ArchiveProduct, CatalogCommand};
use fusion_contracts::http::{
    CreateProductRequest, ErrorBody, ProductResponse, Role, UpdateProductRequest,
};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Page, Principal, WriteContext};
use super::{AppState, Written, json, submit};
use crate::domain::{Product, StockLevel};
use crate::store::{Command, Outcome};

pub fn render(product: Product, stock: &StockLevel) -> ProductResponse {
    let tax_class = product.tax_class().to_string();
    ProductResponse {
        id: product.id,
        sku: product.sku,
        name: product.name,
        description: product.description,
        price: product.price.to_decimal(),
        currency: product.price.currency,
        inventory: stock.available,
        status: product.status,
        created_at: product.created_at,
        updated_at: product.updated_at,
        tax_class,
        category: product.category,
    }
}

fn parse_id(id: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(id).ok_or_else(|| ApiError::not_found(format!("product {id} not found")))
}

fn product_reply(written: Written, status: StatusCode) -> Result<Response, ApiError> {
    match written.decision? {
        Outcome::Product { product, stock } => {
            Ok(json(status, written.replayed, &render(product, &stock)))
        }
        other => Err(super::unexpected(other)),
    }
}

/// Create a product; its `inventory` seeds the sku's stock.
#[utoipa::path(post, path = "/products", tag = "catalog", request_body = CreateProductRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key return the first answer")),
    responses((status = 201, body = ProductResponse), (status = 400, body = ErrorBody), (status = 409, description = "sku taken", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<CreateProductRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = body.value.into_command(ProductId(Uuid::now_v7()))?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Catalog(CatalogCommand::CreateProduct(command)),
    )
    .await?;
    product_reply(written, StatusCode::CREATED)
}

/// Active products in creation order; with `q`, those whose sku starts with it or whose name
/// holds each of its words (ignoring case), the first `limit` of them.
#[utoipa::path(get, path = "/products", tag = "catalog",
    params(("limit" = Option<usize>, Query, description = "1–200, default 50"), ("offset" = Option<usize>, Query),
        ("q" = Option<String>, Query, description = "search: a sku prefix or words of the name (1–100 characters)")),
    responses((status = 200, body = Vec<ProductResponse>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _who: Principal,
    page: Page,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let read = state.store.read()?;
    let products = match query.get("q").map(|q| q.trim()) {
        None => read.products(page.limit, page.offset)?,
        Some(q) if q.is_empty() || q.chars().count() > 100 => {
            return Err(ApiError::validation("q", "must be 1 to 100 characters"));
        }
        Some(q) => read.search_products(q, page.limit)?,
    };
    drop(read);
    let bodies: Vec<ProductResponse> = products.into_iter().map(|(p, s)| render(p, &s)).collect();
    Ok(json(StatusCode::OK, false, &bodies))
}

#[utoipa::path(get, path = "/products/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    match state.store.read()?.product(id)? {
        Some((product, stock)) => Ok(json(StatusCode::OK, false, &render(product, &stock))),
        None => Err(ApiError::not_found(format!("product {id} not found"))),
    }
}

/// The product that holds a sku (archived ones too).
#[utoipa::path(get, path = "/products/by-sku/{sku}", tag = "catalog", params(("sku" = String, Path)),
    responses((status = 200, body = ProductResponse), (status = 404, body = ErrorBody)))]
pub async fn by_sku(
    State(state): State<AppState>,
    _who: Principal,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no product has sku {sku}"));
    let parsed = fusion_contracts::Sku::new(sku.clone()).map_err(|_| not_found())?;
    match state.store.read()?.product_by_sku(&parsed)? {
        Some((product, stock)) => Ok(json(StatusCode::OK, false, &render(product, &stock))),
        None => Err(not_found()),
    }
}

/// Change name, description, price or currency; the sku cannot change.
#[utoipa::path(patch, path = "/products/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    request_body = UpdateProductRequest,
    responses((status = 200, body = ProductResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
    body: JsonBody<UpdateProductRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = body.value.into_command(parse_id(&id)?)?;
    let written = submit(
        &state,
        &ctx,
        body.digest,
        Command::Catalog(CatalogCommand::UpdateProduct(command)),
    )
    .await?;
    product_reply(written, StatusCode::OK)
}

/// Archive: the product leaves the list, keeps its sku, and stays readable by id.
#[utoipa::path(delete, path = "/products/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), (status = 404, body = ErrorBody)))]
pub async fn archive(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
) -> Result<Response, ApiError> {
    who.require(Role::Manager)?;
    let command = ArchiveProduct {
        product_id: parse_id(&id)?,
    };
    let written = submit(
        &state,
        &ctx,
        None,
        Command::Catalog(CatalogCommand::ArchiveProduct(command)),
    )
    .await?;
    product_reply(written, StatusCode::OK)
}
