//! HTTP bodies: the FusionCommerce request and response shapes (camelCase JSON, unknown fields
//! ignored, amounts as exact decimal numbers) and their field-by-field validation into commands.
//!
//! Validation here covers what a single request can get wrong on its own and names the field
//! (`items[2].quantity`); rules that need state (sku taken, stock short) belong to the domain.

pub mod hub;
pub mod sessions;
pub mod staff;

pub use staff::ApprovalRequest;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::commands::{
    AdjustStock, CATEGORY_LEN_MAX, CancelOrder, CreateCampaign, CreateProduct, CreateShipment,
    IssueStoreCredit, ORDER_LINES_MAX, OrderLine, PRODUCT_DESCRIPTION_LEN_MAX,
    PRODUCT_NAME_LEN_MAX, PlaceOrder, QUANTITY_MAX, REASON_LEN_MAX, SetStock, UpdateProduct,
};
use crate::events::campaigns::CAMPAIGN_PARTICIPANTS_MAX;
use crate::events::payments::{PaymentStatus, Tender};
use crate::events::shipping::{Address, PARCEL_GRAMS_MAX, ShipmentStatus};
use crate::events::{OrderStatus, ProductStatus};
use crate::ids::{
    CampaignId, CustomerId, NodeId, OrderId, PaymentId, ProductId, ShipmentId, Sku, StoreId,
    TokenId,
};
use crate::money::{Currency, Decimal, Money, MoneyError};
use crate::time::Timestamp;

/// A request field that failed validation: the field's path and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub(crate) fn text(field: &str, value: String, len_max: usize) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > len_max {
        return Err(FieldError::new(
            field,
            format!("must be at most {len_max} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

pub(crate) fn optional_text(
    field: &str,
    value: Option<String>,
    len_max: usize,
) -> Result<Option<String>, FieldError> {
    match value {
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => text(field, v, len_max).map(Some),
        None => Ok(None),
    }
}

fn quantity(field: &str, value: u64, min: u64) -> Result<u64, FieldError> {
    if value < min {
        return Err(FieldError::new(field, format!("must be at least {min}")));
    }
    if value > QUANTITY_MAX {
        return Err(FieldError::new(
            field,
            format!("must be at most {QUANTITY_MAX}"),
        ));
    }
    Ok(value)
}

/// A non-negative amount of `currency`, exact.
pub fn price(field: &str, amount: Decimal, currency: Currency) -> Result<Money, FieldError> {
    let money =
        Money::from_decimal(amount, currency).map_err(|e| FieldError::new(field, e.to_string()))?;
    if money.minor < 0 {
        return Err(FieldError::new(field, MoneyError::Negative.to_string()));
    }
    Ok(money)
}

/// `null` and absent differ: `Some(None)` clears a field, `None` leaves it alone.
fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /products`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateProductRequest {
    pub sku: Sku,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Unit price in major units, ≥ 0.
    pub price: Decimal,
    pub currency: Currency,
    /// Initial stock of the sku; 0 when absent.
    #[serde(default)]
    pub inventory: u64,
    /// The tax class its lines are taxed by (a class of the store's `taxes.rates`); absent:
    /// `standard`.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub tax_class: Option<String>,
    /// What promotions of a category apply to.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub category: Option<String>,
}

impl CreateProductRequest {
    pub fn into_command(self, product_id: ProductId) -> Result<CreateProduct, FieldError> {
        Ok(CreateProduct {
            product_id,
            name: text("name", self.name, PRODUCT_NAME_LEN_MAX)?,
            description: optional_text(
                "description",
                self.description,
                PRODUCT_DESCRIPTION_LEN_MAX,
            )?,
            price: price("price", self.price, self.currency)?,
            inventory: quantity("inventory", self.inventory, 0)?,
            tax_class: self
                .tax_class
                .map(|c| tax_class("taxClass", &c))
                .transpose()?,
            category: optional_text("category", self.category, CATEGORY_LEN_MAX)?,
            sku: self.sku,
        })
    }
}

/// `PATCH /products/{id}`: only the fields present change.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProductRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub currency: Option<Currency>,
    /// Accepted only when equal to the current sku: skus are immutable.
    #[serde(default)]
    pub sku: Option<Sku>,
    /// `null`: back to `standard`.
    #[serde(default, deserialize_with = "double_option")]
    pub tax_class: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub category: Option<Option<String>>,
}

impl UpdateProductRequest {
    pub fn into_command(self, product_id: ProductId) -> Result<UpdateProduct, FieldError> {
        if self.price.is_some_and(|p| p.is_negative()) {
            return Err(FieldError::new("price", MoneyError::Negative.to_string()));
        }
        Ok(UpdateProduct {
            product_id,
            name: self
                .name
                .map(|n| text("name", n, PRODUCT_NAME_LEN_MAX))
                .transpose()?,
            description: self
                .description
                .map(|d| optional_text("description", d, PRODUCT_DESCRIPTION_LEN_MAX))
                .transpose()?,
            price: self.price,
            currency: self.currency,
            sku: self.sku,
            tax_class: self
                .tax_class
                .map(|c| c.map(|c| tax_class("taxClass", &c)).transpose())
                .transpose()?,
            category: self
                .category
                .map(|c| optional_text("category", c, CATEGORY_LEN_MAX))
                .transpose()?,
        })
    }
}

/// `PUT /inventory`: sets the available quantity of a sku.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetStockRequest {
    pub sku: Sku,
    pub quantity: u64,
}

impl SetStockRequest {
    pub fn into_command(self) -> Result<SetStock, FieldError> {
        Ok(SetStock {
            quantity: quantity("quantity", self.quantity, 0)?,
            sku: self.sku,
        })
    }
}

/// `POST /inventory/{sku}/adjust`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjustStockRequest {
    /// Signed change of the available quantity; not 0.
    pub delta: i64,
    pub reason: String,
}

impl AdjustStockRequest {
    pub fn into_command(self, sku: Sku) -> Result<AdjustStock, FieldError> {
        if self.delta == 0 {
            return Err(FieldError::new("delta", "must not be zero"));
        }
        if self.delta.unsigned_abs() > QUANTITY_MAX {
            return Err(FieldError::new(
                "delta",
                format!("must be within ±{QUANTITY_MAX}"),
            ));
        }
        Ok(AdjustStock {
            sku,
            delta: self.delta,
            reason: text("reason", self.reason, REASON_LEN_MAX)?,
        })
    }
}

/// `POST /inventory/{sku}/transfer`: give stock rights to another till of the store or the hub.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferStockRequest {
    /// The receiving node's id (its origin, as in events and `GET /sync/status`).
    pub to: String,
    /// Units to give; at most what is available here.
    pub quantity: u64,
}

impl TransferStockRequest {
    pub fn into_command(
        self,
        sku: Sku,
        transfer_id: uuid::Uuid,
    ) -> Result<crate::commands::TransferStock, FieldError> {
        let to = crate::NodeId::new(self.to.trim()).map_err(|e| FieldError::new("to", e.reason))?;
        if self.quantity == 0 || self.quantity > QUANTITY_MAX {
            return Err(FieldError::new(
                "quantity",
                format!("must be 1 to {QUANTITY_MAX}"),
            ));
        }
        Ok(crate::commands::TransferStock {
            transfer_id,
            sku,
            quantity: self.quantity,
            to,
        })
    }
}

/// `POST /escrow/card-budget/transfer`: give part of this till's unused offline card budget to
/// another till of the store.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferBudgetRequest {
    /// The receiving till's node id.
    pub to: String,
    pub amount: AmountBody,
}

impl TransferBudgetRequest {
    pub fn into_parts(self) -> Result<(crate::NodeId, Money), FieldError> {
        let to = crate::NodeId::new(self.to.trim()).map_err(|e| FieldError::new("to", e.reason))?;
        let amount = price("amount.amount", self.amount.amount, self.amount.currency)?;
        if amount.minor <= 0 {
            return Err(FieldError::new("amount.amount", "must be positive"));
        }
        Ok((to, amount))
    }
}

/// `POST /campaigns/{id}/seats/transfer`: give free seats of a campaign to another holder.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferSeatsRequest {
    /// The receiving till's node id (any store's), or `hub`.
    pub to: String,
    /// Seats to give; at most this till's free seats.
    pub seats: u32,
}

impl TransferSeatsRequest {
    pub fn into_command(
        self,
        campaign_id: crate::CampaignId,
        transfer_id: uuid::Uuid,
    ) -> Result<crate::commands::TransferSeats, FieldError> {
        let to = crate::NodeId::new(self.to.trim()).map_err(|e| FieldError::new("to", e.reason))?;
        if self.seats == 0 || self.seats > crate::events::campaigns::CAMPAIGN_PARTICIPANTS_MAX {
            return Err(FieldError::new(
                "seats",
                format!(
                    "must be 1 to {}",
                    crate::events::campaigns::CAMPAIGN_PARTICIPANTS_MAX
                ),
            ));
        }
        Ok(crate::commands::TransferSeats {
            campaign_id,
            transfer_id,
            seats: self.seats,
            to,
        })
    }
}

/// A till's seats of one campaign (`GET /escrow`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatRights {
    pub campaign_id: crate::CampaignId,
    /// Seats this till may still fill with joins, alone.
    pub free: u32,
    /// Participants this till took.
    pub participants: u32,
    /// Seats are shared with other holders: the hub decides the campaign.
    pub shared: bool,
    /// This till's part ended (its participants are final).
    pub ended: bool,
    pub status: crate::events::campaigns::CampaignStatus,
}

/// `POST /orders`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderRequest {
    pub customer_id: CustomerId,
    pub items: Vec<OrderItemRequest>,
    /// USD when absent, as in FusionCommerce.
    #[serde(default)]
    pub currency: Option<Currency>,
    /// Ship the order here once it is paid; without it the order is carried out.
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// A manager's approval of the lines priced otherwise than the catalog, given at the till
    /// (until staff PINs: the manager's token). Not needed when the caller is a manager.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
    /// A discount on the whole order, after the lines' promotions and discounts, spread over
    /// the lines in proportion. Above the store's `discountApprovalPercent` of what it applies
    /// to it needs a manager (403 `discount_requires_approval`).
    #[serde(default)]
    pub discount: Option<crate::pricing::DiscountRequest>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemRequest {
    pub sku: Sku,
    /// At least 1.
    pub quantity: u64,
    /// Unit price in the order's currency, ≥ 0. Absent: the catalog price this till holds.
    /// Another price than the catalog's is a price override: a manager's, or approved by one
    /// (`approval`); otherwise 403 `price_override_requires_approval`.
    #[serde(default)]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub category: Option<String>,
    /// Why the line sells at another price than the catalog's (recorded with the override).
    #[serde(default)]
    pub override_reason: Option<String>,
    /// A discount on the line, after its promotions; above the store's
    /// `discountApprovalPercent` of the line it needs a manager.
    #[serde(default)]
    pub discount: Option<crate::pricing::DiscountRequest>,
}

impl PlaceOrderRequest {
    pub fn into_command(self, order_id: OrderId) -> Result<PlaceOrder, FieldError> {
        if self.items.is_empty() {
            return Err(FieldError::new("items", "must hold at least one item"));
        }
        if self.items.len() > ORDER_LINES_MAX {
            return Err(FieldError::new(
                "items",
                format!("must hold at most {ORDER_LINES_MAX} items"),
            ));
        }
        let currency = self.currency.unwrap_or(Currency::USD);
        let lines = self
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Ok(OrderLine {
                    quantity: quantity(&format!("items[{i}].quantity"), item.quantity, 1)?,
                    price: item
                        .price
                        .map(|p| price(&format!("items[{i}].price"), p, currency))
                        .transpose()?,
                    override_reason: optional_text(
                        &format!("items[{i}].overrideReason"),
                        item.override_reason,
                        REASON_LEN_MAX,
                    )?,
                    category: optional_text(
                        &format!("items[{i}].category"),
                        item.category,
                        CATEGORY_LEN_MAX,
                    )?,
                    discount: item
                        .discount
                        .map(|d| d.into_discount(&format!("items[{i}].discount"), currency))
                        .transpose()?,
                    sku: item.sku,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        let discount = self
            .discount
            .map(|d| d.into_discount("discount", currency))
            .transpose()?;
        if let Some(address) = &self.shipping_address {
            // Address::validate names `address.<field>`; here the field is `shippingAddress.<field>`.
            address.validate().map_err(|(field, message)| {
                FieldError::new(field.replacen("address", "shippingAddress", 1), message)
            })?;
        }
        Ok(PlaceOrder {
            order_id,
            customer_id: self.customer_id,
            currency,
            lines,
            shipping_address: self.shipping_address,
            // Decided by the API from who calls and `approval`.
            price_approver: None,
            discount,
            staff: None,
        })
    }
}

/// `POST /orders/{id}/returns`: units of a paid order taken back.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnRequest {
    /// At least one; each of the order's lines once.
    pub lines: Vec<ReturnLineRequest>,
    /// The units go back to this till's stock (default: they do not).
    #[serde(default)]
    pub restock: bool,
    /// Where the money goes: `{"kind": "cash"}` (the default) or
    /// `{"kind": "storeCredit", "account": "…"}`.
    #[serde(default)]
    pub refund_to: Option<RefundToRequest>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: Option<String>,
    /// A manager's approval of a refund above the store's `returnApprovalAmount`.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

/// Where a return's money goes, in a request.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundToRequest {
    pub kind: RefundKind,
    /// The store-credit account (`storeCredit` only).
    #[serde(default)]
    #[schema(max_length = 100)]
    pub account: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RefundKind {
    Cash,
    StoreCredit,
    /// Back to the order's own payments, cards first, then store credit, then cash; taken at
    /// the till that sold the order (it holds the payments).
    Original,
}

/// Where a return's money goes (absent: cash).
fn refund_where(
    asked: Option<RefundToRequest>,
) -> Result<crate::commands::RefundWhere, FieldError> {
    use crate::commands::RefundWhere;
    let Some(RefundToRequest { kind, account }) = asked else {
        return Ok(RefundWhere::Cash);
    };
    match (kind, account) {
        (RefundKind::Cash, None) => Ok(RefundWhere::Cash),
        (RefundKind::Original, None) => Ok(RefundWhere::Original),
        (RefundKind::Cash | RefundKind::Original, Some(_)) => Err(FieldError::new(
            "refundTo.account",
            "is for storeCredit only",
        )),
        (RefundKind::StoreCredit, None) => Err(FieldError::new(
            "refundTo.account",
            "is required for storeCredit",
        )),
        (RefundKind::StoreCredit, Some(account)) => Ok(RefundWhere::StoreCredit {
            account: text("refundTo.account", account, 100)?,
        }),
    }
}

/// `POST /orders/{id}/exchanges`: units of a paid order taken back and a new order sold in
/// the same transaction; what the returned units refund pays the new order first.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The units taken back, as in a return.
    pub lines: Vec<ReturnLineRequest>,
    #[serde(default)]
    pub restock: bool,
    /// Where what the return refunds beyond the new order's total goes (default cash).
    #[serde(default)]
    pub refund_to: Option<RefundToRequest>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: Option<String>,
    /// The new order's lines, as in `POST /orders` (the returned order's customer and
    /// currency).
    pub items: Vec<OrderItemRequest>,
    #[serde(default)]
    pub discount: Option<crate::pricing::DiscountRequest>,
    /// A manager's approval: of a refund above `returnApprovalAmount`, of the new order's
    /// price overrides and discounts.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

impl ExchangeRequest {
    /// The return's and the new order's requests, each validated by its own rules (fields are
    /// named as in this body).
    pub fn split(
        self,
        customer_id: CustomerId,
        currency: Currency,
    ) -> (ReturnRequest, PlaceOrderRequest, Option<ApprovalRequest>) {
        (
            ReturnRequest {
                lines: self.lines,
                restock: self.restock,
                refund_to: self.refund_to,
                reason: self.reason,
                approval: None,
            },
            PlaceOrderRequest {
                customer_id,
                items: self.items,
                currency: Some(currency),
                shipping_address: None,
                approval: None,
                discount: self.discount,
            },
            self.approval,
        )
    }
}

/// A line of a return: the order's line by its index (`line`) or its sku (when one line has
/// it), and how many units.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnLineRequest {
    #[serde(default)]
    pub line: Option<usize>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub sku: Option<Sku>,
    #[schema(minimum = 1)]
    pub quantity: u64,
}

impl ReturnRequest {
    /// The command, resolving skus to the order's lines (`skus`: the order's lines' skus).
    pub fn into_command(
        self,
        return_id: uuid::Uuid,
        order_id: OrderId,
        skus: &[Sku],
    ) -> Result<crate::commands::ReturnOrder, FieldError> {
        if self.lines.is_empty() || self.lines.len() > ORDER_LINES_MAX {
            return Err(FieldError::new("lines", "must hold 1 to 200 lines"));
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.into_iter().enumerate() {
            let line = match (l.line, &l.sku) {
                (Some(line), None) if line < skus.len() => line,
                (Some(_), None) => {
                    return Err(FieldError::new(
                        format!("lines[{i}].line"),
                        "names no line of the order",
                    ));
                }
                (None, Some(sku)) => {
                    let mut of_sku = skus.iter().enumerate().filter(|(_, s)| *s == sku);
                    match (of_sku.next(), of_sku.next()) {
                        (Some((line, _)), None) => line,
                        (None, _) => {
                            return Err(FieldError::new(
                                format!("lines[{i}].sku"),
                                "is not sold in the order",
                            ));
                        }
                        (Some(_), Some(_)) => {
                            return Err(FieldError::new(
                                format!("lines[{i}].sku"),
                                "is on several lines of the order: name the line",
                            ));
                        }
                    }
                }
                _ => {
                    return Err(FieldError::new(
                        format!("lines[{i}]"),
                        "must give exactly one of line and sku",
                    ));
                }
            };
            if lines.iter().any(|(l, _)| *l == line) {
                return Err(FieldError::new(
                    format!("lines[{i}]"),
                    "names a line already returned above",
                ));
            }
            lines.push((
                line,
                quantity(&format!("lines[{i}].quantity"), l.quantity, 1)?,
            ));
        }
        let refund_to = refund_where(self.refund_to)?;
        Ok(crate::commands::ReturnOrder {
            return_id,
            order_id,
            lines,
            restock: self.restock,
            refund_to,
            reason: optional_text("reason", self.reason, REASON_LEN_MAX)?,
            // Decided by the API from who calls and `approval`.
            approver: None,
            staff: None,
        })
    }
}

/// `POST /orders/{id}/cancel`; the body is optional.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrderRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

impl CancelOrderRequest {
    pub fn into_command(self, order_id: OrderId) -> Result<CancelOrder, FieldError> {
        Ok(CancelOrder {
            order_id,
            reason: optional_text("reason", self.reason, REASON_LEN_MAX)?,
        })
    }
}

/// `POST /campaigns` (FusionCommerce's body). Prices are in the product's currency.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateCampaignRequest {
    pub product_id: ProductId,
    pub min_participants: u32,
    pub max_participants: u32,
    pub price: Decimal,
    pub original_price: Decimal,
    /// RFC 3339.
    pub start_time: Timestamp,
    /// RFC 3339; after `startTime`.
    pub end_time: Timestamp,
}

impl CreateCampaignRequest {
    pub fn into_command(self, campaign_id: CampaignId) -> Result<CreateCampaign, FieldError> {
        let max = CAMPAIGN_PARTICIPANTS_MAX;
        if self.min_participants == 0 {
            return Err(FieldError::new("minParticipants", "must be at least 1"));
        }
        if self.max_participants == 0 || self.max_participants > max {
            return Err(FieldError::new(
                "maxParticipants",
                format!("must be from 1 to {max}"),
            ));
        }
        if self.min_participants > self.max_participants {
            return Err(FieldError::new(
                "minParticipants",
                "must not exceed maxParticipants",
            ));
        }
        if self.start_time >= self.end_time {
            return Err(FieldError::new("endTime", "must be after startTime"));
        }
        for (field, amount) in [
            ("price", self.price),
            ("originalPrice", self.original_price),
        ] {
            if amount.is_negative() {
                return Err(FieldError::new(field, MoneyError::Negative.to_string()));
            }
        }
        Ok(CreateCampaign {
            campaign_id,
            product_id: self.product_id,
            min_participants: self.min_participants,
            max_participants: self.max_participants,
            price: self.price,
            original_price: self.original_price,
            start_at: self.start_time,
            end_at: self.end_time,
        })
    }
}

/// `POST /campaigns/{id}/join` and `/leave`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignUserRequest {
    pub user_id: CustomerId,
}

/// `POST /campaigns/{id}/cancel`; the body is optional.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelCampaignRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

impl CancelCampaignRequest {
    pub fn reason(self) -> Result<Option<String>, FieldError> {
        optional_text("reason", self.reason, REASON_LEN_MAX)
    }
}

/// `POST /payments` (FusionCommerce's body, plus `capture` and `tendered`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePaymentRequest {
    pub order_id: OrderId,
    pub amount: Decimal,
    pub currency: Currency,
    /// `cash`, `store_credit:<account>`, or a card payment method id (`pm_…`).
    pub payment_method_id: String,
    /// Cards: take the money at once (default) or only authorize it for a later capture.
    #[serde(default)]
    pub capture: Option<bool>,
    /// Cash handed over; change due is recorded. Defaults to the amount.
    #[serde(default)]
    pub tendered: Option<Decimal>,
}

/// A payment method named by `paymentMethodId`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentMethod {
    Cash,
    StoreCredit { account: String },
    Card { id: String },
}

impl PaymentMethod {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let field = "paymentMethodId";
        if text == "cash" {
            return Ok(Self::Cash);
        }
        if let Some(account) = text.strip_prefix("store_credit:") {
            if !crate::events::payments::credit_account_is_valid(account) {
                return Err(FieldError::new(
                    field,
                    "store_credit:<account> needs 1 to 64 of A-Z a-z 0-9 - _ .",
                ));
            }
            return Ok(Self::StoreCredit {
                account: account.to_string(),
            });
        }
        let card_id = text.strip_prefix("pm_").filter(|rest| {
            !rest.is_empty()
                && rest.len() <= 128
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        match card_id {
            Some(_) => Ok(Self::Card {
                id: text.to_string(),
            }),
            None => Err(FieldError::new(
                field,
                "must be cash, store_credit:<account> or a card payment method (pm_…)",
            )),
        }
    }
}

/// `POST /payments/{id}/capture`: all that is authorized when `amount` is absent.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaptureRequest {
    #[serde(default)]
    pub amount: Option<Decimal>,
}

/// `POST /payments/{id}/refund`: all that is left when `amount` is absent.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    #[serde(default)]
    pub amount: Option<Decimal>,
}

/// A payment as served: FusionCommerce's `{id, orderId, amount, currency, status, createdAt}`
/// and more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub amount: Decimal,
    pub currency: Currency,
    pub status: PaymentStatus,
    pub tender: Tender,
    pub payment_method_id: String,
    pub captured_amount: Decimal,
    pub refunded_amount: Decimal,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub change_due: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider_ref: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// What the order still owes after this payment (`POST /payments`): 0 once paid; the
    /// register takes the next tender of a split for it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order_due: Option<Decimal>,
}

/// `POST /shipping/labels` (FusionCommerce's body, plus the parcel weight).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateLabelRequest {
    pub order_id: OrderId,
    pub address: Address,
    /// Parcel weight; 1000 g when absent.
    #[serde(default)]
    pub weight_grams: Option<u32>,
}

/// Weight assumed for a parcel whose weight nobody gave.
pub const PARCEL_GRAMS_DEFAULT: u32 = 1000;

impl CreateLabelRequest {
    pub fn into_command(self, shipment_id: ShipmentId) -> Result<CreateShipment, FieldError> {
        self.address
            .validate()
            .map_err(|(field, message)| FieldError::new(field, message))?;
        let weight_grams = self.weight_grams.unwrap_or(PARCEL_GRAMS_DEFAULT);
        if weight_grams == 0 || weight_grams > PARCEL_GRAMS_MAX {
            return Err(FieldError::new(
                "weightGrams",
                format!("must be from 1 to {PARCEL_GRAMS_MAX}"),
            ));
        }
        Ok(CreateShipment {
            shipment_id,
            order_id: self.order_id,
            address: self.address,
            weight_grams,
        })
    }
}

/// `POST /shipments/{id}/status`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentStatusRequest {
    pub status: ShipmentStatus,
}

/// A shipment as served: FusionCommerce's label `{id, orderId, trackingNumber, carrier, labelUrl,
/// createdAt}` and more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentResponse {
    pub id: ShipmentId,
    pub order_id: OrderId,
    pub tracking_number: String,
    pub carrier: String,
    pub service: String,
    pub label_url: String,
    pub address: Address,
    pub weight_grams: u32,
    pub price: Decimal,
    pub currency: Currency,
    pub status: ShipmentStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `POST /store-credit/{account}/issue`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssueStoreCreditRequest {
    pub amount: Decimal,
    pub currency: Currency,
    pub reason: String,
}

impl IssueStoreCreditRequest {
    pub fn into_command(self, account: String) -> Result<IssueStoreCredit, FieldError> {
        if !crate::events::payments::credit_account_is_valid(&account) {
            return Err(FieldError::new(
                "account",
                "must be 1 to 64 of A-Z a-z 0-9 - _ .",
            ));
        }
        let amount = price("amount", self.amount, self.currency)?;
        if amount.minor == 0 {
            return Err(FieldError::new("amount", "must be positive"));
        }
        Ok(IssueStoreCredit {
            account,
            amount,
            reason: text("reason", self.reason, REASON_LEN_MAX)?,
        })
    }
}

/// A store credit account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreCreditResponse {
    pub account: String,
    pub balance: Decimal,
    pub currency: Currency,
    pub updated_at: Timestamp,
}

/// A product as served. `inventory` is the sku's current available stock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductResponse {
    pub id: ProductId,
    pub sku: Sku,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    pub price: Decimal,
    pub currency: Currency,
    pub inventory: u64,
    pub status: ProductStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The tax class its lines are taxed by.
    pub tax_class: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub category: Option<String>,
}

/// The stock of one sku: `quantity` is available to sell, `reserved` is held by open orders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockResponse {
    pub sku: Sku,
    pub quantity: u64,
    pub reserved: u64,
    pub updated_at: Timestamp,
}

/// `GET /escrow` on a node: the stock rights this till holds, per sku, and what it gave away
/// that is still in transit (see docs/ESCROW.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EscrowResponse {
    /// This till's node id: the holder.
    pub node_id: String,
    pub stock: Vec<StockRights>,
    pub in_transit: Vec<TransferInTransit>,
    /// The whole store as this till knows it: per sku, every till's rights (its own and what
    /// the other tills' logs, synced over the mesh, say of theirs).
    pub store: Vec<StoreStockRights>,
    /// This till's share of the store's offline card budget and what it approved offline that
    /// the provider has not settled; absent without a budget.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub card_budget: Option<CardBudgetRights>,
    /// This till's seats of campaigns (its own and those given to it).
    #[serde(default)]
    pub seats: Vec<SeatRights>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardBudgetRights {
    /// This till's share (its rights).
    pub share: Decimal,
    /// Approved offline, not yet settled by the provider (used).
    pub exposure: Decimal,
    /// What it may still approve offline.
    pub headroom: Decimal,
    pub currency: Currency,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreStockRights {
    pub sku: Sku,
    /// Held by all tills.
    pub held: u64,
    pub reserved: u64,
    pub holders: Vec<HolderRights>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HolderRights {
    pub node_id: String,
    pub held: u64,
    pub reserved: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockRights {
    pub sku: Sku,
    /// Units this till may still sell on its own (its rights).
    pub held: u64,
    /// Units held by its open orders (rights used, not yet final).
    pub reserved: u64,
    /// Units it gave away that the receiver has not taken in yet.
    pub in_transit: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferInTransit {
    pub transfer_id: uuid::Uuid,
    pub sku: Sku,
    pub to: String,
    pub quantity: u64,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderResponse {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub items: Vec<crate::events::SoldItem>,
    pub total: Decimal,
    pub currency: Currency,
    pub status: OrderStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Why the order needs a person (e.g. an offline card approval declined later).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shipping_address: Option<Address>,
    /// The node id of the till that took the order, when that is another till of this store
    /// (its events reached this one over the store mesh; it is served read-only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin: Option<NodeId>,
    /// Σ price × quantity (`total` is what the customer pays).
    pub subtotal: Decimal,
    /// What promotions and discounts took off.
    pub discount_total: Decimal,
    /// What each promotion gave; absent: none applied.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub promotions: Vec<crate::events::AppliedPromotion>,
    /// The discount given on the whole order.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub discount: Option<Box<crate::events::OrderDiscount>>,
    /// The tax of every rate; absent: none charged.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub taxes: Vec<crate::events::OrderTax>,
    /// The prices include the taxes (VAT style).
    pub tax_included: bool,
    /// Units returned of each line (`POST /orders/{id}/returns`); absent: none.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub returned: Vec<u64>,
}

/// `GET /orders/{id}/receipt`: a paid order's receipt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptResponse {
    /// `<till>-<number>`, gap-free per till.
    pub receipt: String,
    pub number: u64,
    #[schema(value_type = String)]
    pub till: NodeId,
    pub issued_at: Timestamp,
    /// The store's name (its settings), else its id.
    pub store: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address: Option<String>,
    /// Who sold it (a signed-in staff member's name).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub staff: Option<String>,
    pub order: OrderResponse,
    /// Each payment taken (absent at a till that did not sell the order: its seller holds
    /// them).
    pub tenders: Vec<ReceiptTender>,
    /// The receipt for an 80 mm printer: 42 columns (also `?format=text`, as text/plain).
    pub text: String,
    /// A print's copy at this till (`POST …/receipt/prints`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub copy: Option<u64>,
    /// A reprint: the receipt says DUPLICATE.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub duplicate: bool,
    /// `<seq>-<12 hex digits>`: the receipt's entry in the selling till's signed journal
    /// (absent at another till).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verification_code: Option<String>,
}

/// `POST /orders/{id}/receipt/emails`: send the receipt to the customer's address.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailReceiptRequest {
    /// The customer's email address.
    #[schema(format = "email", max_length = 254, example = "ada@example.com")]
    pub to: String,
}

impl EmailReceiptRequest {
    /// The address, trimmed and checked (`fusion_contracts::events::check_email`).
    pub fn address(self) -> Result<String, FieldError> {
        let to = self.to.trim().to_string();
        crate::events::check_email(&to).map_err(|reason| FieldError::new("to", reason))?;
        Ok(to)
    }
}

/// `POST /orders/{id}/receipt/emails`: the request recorded (`receipt.emailed`); the hub's
/// webhook subscriber (the shipped n8n template) sends it once the till's log reaches the hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptEmailResponse {
    pub receipt: String,
    #[schema(value_type = String)]
    pub order_id: OrderId,
    pub to: String,
    /// `queued`: recorded here, sent from the hub.
    pub status: String,
    pub requested_at: Timestamp,
}

/// `POST /orders/{id}/receipt/prints?send=printer`: the print recorded, and its ESC/POS bytes
/// taken by the till's printer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptSent {
    pub receipt: String,
    /// This print's copy number at this till (1: the first).
    pub copy: u64,
    /// Printed as a DUPLICATE (not the selling till's first print).
    pub duplicate: bool,
    /// The printer (`tcp://HOST:PORT` or a device path).
    pub printer: String,
    /// ESC/POS bytes the printer took.
    pub bytes: u64,
}

/// `GET /printer`: the till's receipt printer, when it has one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterResponse {
    pub configured: bool,
    /// `tcp://HOST:PORT` or a device path.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub printer: Option<String>,
}

/// `GET /returns/{id}/receipt`: a return's slip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnReceiptResponse {
    pub return_id: uuid::Uuid,
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The sale's receipt number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt: Option<String>,
    #[schema(value_type = f64)]
    pub refund: Decimal,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Who took it back.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub staff: Option<String>,
    /// The slip for an 80 mm printer: 42 columns.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptTender {
    pub tender: Tender,
    pub amount: Decimal,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub change_due: Option<Decimal>,
}

/// `POST /orders/{id}/exchanges`: the return, the new order, and its payment by what the
/// return refunded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeResponse {
    /// The return (`order.returned`): its `refundTo` parts show what paid the new order and
    /// where the rest went.
    #[serde(rename = "return")]
    #[schema(value_type = Object)]
    pub returned: crate::events::OrderReturned,
    pub order: OrderResponse,
    /// The new order's payment by the return (absent when the returned units paid nothing).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payment: Option<PaymentResponse>,
    /// What the customer still pays for the new order (`POST /payments`); 0: it is paid.
    pub amount_due: Decimal,
    pub currency: Currency,
}

/// Every error response: a stable machine code, a human sentence, and the offending request
/// field when there is one. Insufficient stock also names the sku and both quantities.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sku: Option<Sku>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requested: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub available: Option<u64>,
}

/// What a token may do. Each role includes the ones before it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sell and read.
    Cashier,
    /// Also edit the catalog and stock, cancel orders.
    Manager,
    /// Also manage tokens.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "cashier" => Some(Self::Cashier),
            "manager" => Some(Self::Manager),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cashier => "cashier",
            Self::Manager => "manager",
            Self::Admin => "admin",
        }
    }
}

/// `POST /tokens`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenRequest {
    pub role: Role,
    #[serde(default)]
    pub label: Option<String>,
}

impl CreateTokenRequest {
    pub fn label(self) -> Result<Option<String>, FieldError> {
        optional_text("label", self.label, REASON_LEN_MAX)
    }
}

/// A token as listed; `token` (the secret) is present only in the answer that created it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub id: TokenId,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<String>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<String>,
}

/// `GET /sync/status`: this node's replication peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatusResponse {
    /// The origin of this node's events.
    pub node_id: String,
    /// This node's sync identity (`fusion node id`); absent when sync is off.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub endpoint_id: Option<String>,
    pub peers: Vec<SyncPeerStatus>,
    /// Peers' batches and events refused so far, by rule (`journal_signature`,
    /// `peer_revoked`, `stock_underflow`, …): never stored.
    #[serde(default)]
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Offline card approvals still to reach the provider (the register's status bar).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offline_cards: Option<OfflineCards>,
    /// The shared documents this node holds, and those loaded in memory.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub documents: Option<DocumentsStatus>,
}

/// A host's shared documents (catalog, campaigns, settings): every one's heads are held; a
/// document is loaded into memory only to apply or produce a change, within a byte budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentsStatus {
    /// Documents held.
    pub held: u64,
    /// Of them, loaded in memory now.
    pub loaded: u64,
    /// Loads from the store since the process started.
    pub loads: u64,
    /// What the loaded ones are reckoned to take, and the budget.
    pub loaded_bytes: u64,
    pub budget_bytes: u64,
    /// An initial sync's progress: documents asked of peers whole and not arrived yet, and
    /// those that arrived since the process started.
    #[serde(default)]
    pub fetching: u64,
    #[serde(default)]
    pub fetched: u64,
}

/// Card payments approved offline at this till that the provider has not settled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineCards {
    pub awaiting: u64,
    /// When the oldest of them was taken, and how long ago (ms).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub oldest_at: Option<Timestamp>,
    pub oldest_age_ms: u64,
    /// This till's offline card budget (absent without one).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub budget: Option<CardBudgetRights>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncPeerStatus {
    /// `hub` (or `till` for a store peer).
    pub role: String,
    pub endpoint_id: String,
    pub address: String,
    /// The log session is open and the peer answers.
    pub connected: bool,
    /// The document session (catalog sync) is open.
    #[serde(default)]
    pub documents_connected: bool,
    /// When the peer last sent anything, since this process started.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_contact: Option<Timestamp>,
    /// Events of this node the peer has not acknowledged.
    pub pending_events: u64,
    /// Age of the oldest unacknowledged event, in ms (0 when nothing is pending).
    pub lag_ms: u64,
    /// The hub revoked this peer (as this till heard in the hub's log): it is refused.
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(json: &str) -> Result<PlaceOrder, FieldError> {
        serde_json::from_str::<PlaceOrderRequest>(json)
            .unwrap()
            .into_command(OrderId::from_u128(1))
    }

    #[test]
    fn order_fields_are_named_in_errors() {
        let err = order(r#"{"customerId":"c","items":[{"sku":"A","quantity":1,"price":1},{"sku":"B","quantity":0,"price":1}]}"#)
            .unwrap_err();
        assert_eq!(err.field, "items[1].quantity");
        let err = order(r#"{"customerId":"c","items":[{"sku":"A","quantity":1,"price":10.005}]}"#)
            .unwrap_err();
        assert_eq!(err.field, "items[0].price");
        assert!(err.message.contains("more decimals than USD"), "{err}");
        let err = order(r#"{"customerId":"c","items":[{"sku":"A","quantity":1,"price":-1}]}"#)
            .unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            ("items[0].price", "must not be negative")
        );
        let err = order(r#"{"customerId":"c","items":[]}"#).unwrap_err();
        assert_eq!(err.field, "items");
        let err = order(
            r#"{"customerId":"c","currency":"JPY","items":[{"sku":"A","quantity":1,"price":1.5}]}"#,
        )
        .unwrap_err();
        assert!(err.message.contains("JPY"), "{err}");
    }

    #[test]
    fn order_defaults_to_usd_and_ignores_unknown_fields() {
        let cmd = order(r#"{"customerId":"c","extra":true,"items":[{"sku":"A","quantity":2,"price":0.1,"category":"x"}]}"#)
            .unwrap();
        assert_eq!(cmd.currency, Currency::USD);
        assert_eq!(cmd.lines[0].price.unwrap().minor, 10);
    }

    #[test]
    fn patch_distinguishes_null_from_absent() {
        let clear: UpdateProductRequest = serde_json::from_str(r#"{"description":null}"#).unwrap();
        assert_eq!(clear.description, Some(None));
        let keep: UpdateProductRequest = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(keep.description, None);
    }
}

/// A store's shared settings, as `GET /settings` (node) and `GET /stores/{id}/settings` (hub)
/// serve them. Absent fields are unset: the node's flags apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsResponse {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub store_id: Option<StoreId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// The address receipts print (lines separated by newlines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address: Option<String>,
    /// Seconds an unpaid order holds its stock; 0: until paid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order_hold_secs: Option<u64>,
    /// Largest card payment approved offline while the provider is unreachable.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub card_floor_limit: Option<AmountBody>,
    /// Skus whose orders may be taken past a till's stock as backorders.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    #[schema(value_type = Vec<String>)]
    pub backorder_skus: Vec<Sku>,
    /// Absent: the store charges no tax.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub taxes: Option<TaxesBody>,
    /// A discount above this percentage of what it applies to needs a manager's approval.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<f64>)]
    pub discount_approval_percent: Option<Decimal>,
    /// A return refunding more than this needs a manager's approval; absent: no limit.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub return_approval_amount: Option<AmountBody>,
    /// Tills refuse sales while their cash drawer is closed (absent: they do not).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub require_open_session: Option<bool>,
}

/// An amount of money in JSON: `{"amount": 50.00, "currency": "USD"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AmountBody {
    pub amount: Decimal,
    pub currency: Currency,
}

impl From<Money> for AmountBody {
    fn from(m: Money) -> Self {
        Self {
            amount: m.to_decimal(),
            currency: m.currency,
        }
    }
}

/// `PATCH /settings` (node, manager) and `PATCH /stores/{id}/settings` (hub): absent leaves a
/// field alone, `null` unsets it.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsRequest {
    #[serde(default, deserialize_with = "double_option")]
    pub name: Option<Option<String>>,
    /// The address receipts print: up to 4 lines separated by newlines, 200 characters.
    #[serde(default, deserialize_with = "double_option")]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub order_hold_secs: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub card_floor_limit: Option<Option<AmountBody>>,
    /// Skus whose orders may be taken past a till's stock as backorders (`true`), or no
    /// longer (`false`); skus not named are left alone.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, bool>>)]
    pub backorders: Option<std::collections::BTreeMap<Sku, bool>>,
    /// The store's taxes: rates by tax class, and whether catalog prices include them.
    #[serde(default)]
    pub taxes: Option<TaxesRequest>,
    /// A discount above this percentage of what it applies to needs a manager's approval;
    /// `null`: back to the default, 10.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100)]
    pub discount_approval_percent: Option<Option<Decimal>>,
    /// A return refunding more than this needs a manager's approval; `null`: no limit.
    #[serde(default, deserialize_with = "double_option")]
    pub return_approval_amount: Option<Option<AmountBody>>,
    /// Tills refuse sales (`409 session_required`) while their cash drawer is closed.
    #[serde(default)]
    pub require_open_session: Option<bool>,
}

/// `taxes` of a settings change; absent fields and classes are left alone.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxesRequest {
    /// Catalog prices include tax (VAT style: `true`) or tax is added on top (sales-tax style).
    #[serde(default)]
    pub prices_include_tax: Option<bool>,
    /// Tax class → rate in percent (0 to 100, at most 4 decimals: `20`, `5.5`, `8.875`), or
    /// `null` to remove the class.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, Option<f64>>>)]
    pub rates: Option<std::collections::BTreeMap<String, Option<Decimal>>>,
}

/// The store's taxes as `GET /settings` shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxesBody {
    pub prices_include_tax: bool,
    /// Tax class → rate in percent.
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    pub rates: std::collections::BTreeMap<String, Decimal>,
}

/// Most tax classes a store may have.
pub const TAX_CLASSES_MAX: usize = 32;
/// Longest tax class name.
pub const TAX_CLASS_LEN_MAX: usize = 32;

/// A tax class name: 1 to 32 of `a-z`, `0-9`, `-`, `_`.
pub fn tax_class(field: &str, name: &str) -> Result<String, FieldError> {
    let valid = !name.is_empty()
        && name.len() <= TAX_CLASS_LEN_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(name.to_string())
    } else {
        Err(FieldError::new(
            field,
            format!("a tax class is 1 to {TAX_CLASS_LEN_MAX} of a-z, 0-9, - and _"),
        ))
    }
}

/// The largest tax rate, in parts per million: 100 %.
pub const RATE_PPM_MAX: u32 = 1_000_000;

/// A rate in percent as parts per million (20 % = 200,000): 0 to 100 with at most 4 decimals.
pub fn rate_ppm(field: &str, percent: Decimal) -> Result<u32, FieldError> {
    let out_of_range = || FieldError::new(field, "must be a percentage from 0 to 100");
    if percent.is_negative() {
        return Err(out_of_range());
    }
    if percent.scale() > 4 {
        return Err(FieldError::new(field, "has more than 4 decimals"));
    }
    let ppm = i128::from(percent.mantissa()) * 10i128.pow(u32::from(4 - percent.scale()));
    match u32::try_from(ppm) {
        Ok(ppm) if ppm <= RATE_PPM_MAX => Ok(ppm),
        _ => Err(out_of_range()),
    }
}

/// Parts per million as a percentage (`200000` → `20`, `88750` → `8.875`).
pub fn rate_percent(ppm: u32) -> Decimal {
    let (mut mantissa, mut scale) = (i64::from(ppm), 4u8);
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    Decimal::new(mantissa, scale)
}

/// Most skus one settings change may name in `backorders`.
pub const BACKORDER_SKUS_MAX: usize = 1000;
/// Longest store address, in characters.
pub const STORE_ADDRESS_LEN_MAX: usize = 200;
/// Longest store display name, in characters.
pub const STORE_NAME_LEN_MAX: usize = 200;
/// Longest payment hold a store may set: 7 days.
pub const ORDER_HOLD_SECS_MAX: u64 = 7 * 24 * 3600;

/// A validated settings change: `Some(None)` unsets a field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SettingsChange {
    pub name: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub order_hold_secs: Option<Option<u64>>,
    pub card_floor_limit: Option<Option<Money>>,
    /// Sku → whether its orders may be backordered; skus not named are left alone.
    pub backorders: std::collections::BTreeMap<Sku, bool>,
    pub prices_include_tax: Option<bool>,
    /// Tax class → its rate in parts per million, or `None` to remove it; classes not named
    /// are left alone.
    pub tax_rates: std::collections::BTreeMap<String, Option<u32>>,
    /// Parts per million; `Some(None)`: back to the default (10 %).
    pub discount_approval_ppm: Option<Option<u32>>,
    /// `Some(None)`: no limit.
    pub return_approval_amount: Option<Option<Money>>,
    pub require_open_session: Option<bool>,
    /// Promotion → the promotion, or `None` to end it; promotions not named are left alone.
    pub promotions:
        std::collections::BTreeMap<crate::PromotionId, Option<crate::pricing::Promotion>>,
    /// Staff member → their record; members not named are left alone (none is ever removed:
    /// one who left is inactive).
    pub staff: std::collections::BTreeMap<crate::StaffId, staff::StaffRecord>,
}

impl SettingsRequest {
    pub fn into_change(self) -> Result<SettingsChange, FieldError> {
        let name = match self.name {
            Some(Some(n)) => Some(Some(text("name", n, STORE_NAME_LEN_MAX)?)),
            other => other,
        };
        let address = match self.address {
            Some(Some(a)) => {
                let a = text("address", a, STORE_ADDRESS_LEN_MAX)?;
                if a.lines().count() > 4 {
                    return Err(FieldError::new("address", "must be at most 4 lines"));
                }
                Some(Some(a))
            }
            other => other,
        };
        if let Some(Some(secs)) = self.order_hold_secs
            && secs > ORDER_HOLD_SECS_MAX
        {
            return Err(FieldError::new(
                "orderHoldSecs",
                format!("must be at most {ORDER_HOLD_SECS_MAX} (7 days)"),
            ));
        }
        let card_floor_limit = match self.card_floor_limit {
            Some(Some(a)) => Some(Some(price("cardFloorLimit.amount", a.amount, a.currency)?)),
            Some(None) => Some(None),
            None => None,
        };
        let backorders = self.backorders.unwrap_or_default();
        if backorders.len() > BACKORDER_SKUS_MAX {
            return Err(FieldError::new(
                "backorders",
                format!("names at most {BACKORDER_SKUS_MAX} skus at once"),
            ));
        }
        let taxes = self.taxes.unwrap_or_default();
        let rates = taxes.rates.unwrap_or_default();
        if rates.len() > TAX_CLASSES_MAX {
            return Err(FieldError::new(
                "taxes.rates",
                format!("names at most {TAX_CLASSES_MAX} classes"),
            ));
        }
        let mut tax_rates = std::collections::BTreeMap::new();
        for (class, rate) in rates {
            let field = format!("taxes.rates.{class}");
            let class = tax_class("taxes.rates", &class)?;
            let rate = rate.map(|r| rate_ppm(&field, r)).transpose()?;
            tax_rates.insert(class, rate);
        }
        Ok(SettingsChange {
            name,
            address,
            order_hold_secs: self.order_hold_secs,
            card_floor_limit,
            backorders,
            prices_include_tax: taxes.prices_include_tax,
            tax_rates,
            discount_approval_ppm: self
                .discount_approval_percent
                .map(|p| {
                    p.map(|p| rate_ppm("discountApprovalPercent", p))
                        .transpose()
                })
                .transpose()?,
            return_approval_amount: match self.return_approval_amount {
                Some(Some(a)) => Some(Some(price(
                    "returnApprovalAmount.amount",
                    a.amount,
                    a.currency,
                )?)),
                Some(None) => Some(None),
                None => None,
            },
            require_open_session: self.require_open_session,
            promotions: Default::default(),
            staff: Default::default(),
        })
    }
}
