//! Events: facts a domain recorded, named in the past tense, one FusionCommerce topic each, and
//! the one envelope every event travels in.
//!
//! Two encodings, one set of types:
//! - postcard (`Envelope::encode` / `decode`) for the event log on disk and the sync wire. The
//!   variant order of [`Event`] is part of that format: variants are only ever appended.
//! - JSON (`Envelope::to_record` / `EventRecord`) for HTTP and Kafka: the payload is the bare
//!   FusionCommerce-shaped object (a superset of the original fields), the envelope around it.
//!
//! Every envelope is validated when it is built and when it is decoded, so an invalid event can
//! neither be written nor read back.

pub mod campaigns;
pub mod fleet;
pub mod payments;
pub mod receipts;
pub mod returns;
pub mod sessions;
pub mod shipping;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{ORDER_LINES_MAX, PRODUCT_NAME_LEN_MAX, QUANTITY_MAX};
use crate::ids::{CorrelationId, CustomerId, EventId, NodeId, OrderId, ProductId, Sku};
use crate::money::{Currency, Decimal, Money};
use crate::time::Timestamp;
pub use campaigns::{
    CampaignCancelled, CampaignClosed, CampaignCreated, CampaignEnded, CampaignFailed,
    CampaignJoined, CampaignLeft, CampaignSettled, CampaignSuccessful, SeatsReceived,
    SeatsTransferred,
};
pub use fleet::{NodeEnrolled, NodeRevoked};
pub use payments::{
    OfflineBudgetReceived, OfflineBudgetSet, OfflineBudgetTransferred, OrderFlagged, OrderPaid,
    PaymentAuthorized, PaymentCreated, PaymentFailed, PaymentOfflineApproved, PaymentRefunded,
    PaymentSucceeded, PaymentVoided, StoreCreditChanged,
};
pub use receipts::{ReceiptEmailed, ReceiptIssued, ReceiptPrinted, check_email, receipt_number};
pub use returns::{
    OrderReturned, REFUND_PARTS_MAX, RefundPart, RefundPartTo, RefundTo, ReturnRightsRequested,
    ReturnRightsTransferred, ReturnedLine, exchange_account,
};
pub use sessions::{
    CashMove, Denomination, SessionCashMoved, SessionClosed, SessionOpened, SessionTotals,
    StaffTotal, TaxTotal, TenderTotal,
};
pub use shipping::{OrderFulfilled, ShippingLabelCreated, ShippingStatusChanged};

/// Why an event was refused, when built or when decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("invalid {topic} event: {reason}")]
    Invalid { topic: &'static str, reason: String },
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    #[error("{topic} schema version {found} is newer than this build knows ({known})")]
    UnknownSchemaVersion {
        topic: &'static str,
        found: u16,
        known: u16,
    },
    #[error("undecodable event: {0}")]
    Decode(String),
}

fn invalid(topic: &'static str, reason: impl Into<String>) -> EventError {
    EventError::Invalid {
        topic,
        reason: reason.into(),
    }
}

/// Lifecycle of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Placed; every line's stock is reserved.
    Created,
    /// Cancelled; its reservations were released.
    Cancelled,
    /// Captured payments cover the total. (Variants are appended: postcard stores the index.)
    Paid,
    /// Delivered, or carried out of the store once paid.
    Fulfilled,
}

/// Lifecycle of a product in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProductStatus {
    Active,
    /// Hidden from the catalog list; kept for the orders that name it. Its sku stays taken.
    Archived,
}

/// A product as a node and the hub hold it: the state its catalog events fold into, and what its
/// shared document describes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub sku: Sku,
    pub name: String,
    pub description: Option<String>,
    pub price: Money,
    pub status: ProductStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Its tax class; `None`: `standard`. (Fields are appended: stored rows written before
    /// them are read without.)
    pub tax_class: Option<String>,
    /// Its category (what promotions of a category apply to).
    pub category: Option<String>,
}

impl Product {
    /// The tax class its lines are taxed by.
    pub fn tax_class(&self) -> &str {
        self.tax_class.as_deref().unwrap_or("standard")
    }
}

/// One line of an order as sold (`order.created` schema 4): FusionCommerce's
/// `{sku, quantity, price, category}`, the catalog price the till held, who approved a price
/// other than it, its tax class, what promotions and discounts took off it, and what the
/// customer paid for it. In JSON an absent list price or override is left out; postcard (the
/// log) always holds every field.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoldItem {
    pub sku: Sku,
    pub quantity: u64,
    /// Unit price sold at, in the order's currency, before promotions and discounts.
    pub price: Decimal,
    pub category: Option<String>,
    /// The catalog's unit price the till held when it sold the line; absent: the sku had no
    /// catalog price in the order's currency, or it is not recorded (an order from before
    /// schema 2; an order response whose lines all sold at the catalog price).
    #[serde(default)]
    pub list_price: Option<Decimal>,
    /// Present when the line sold at another price than its list price.
    #[serde(default)]
    pub price_override: Option<PriceOverride>,
    /// The product's tax class (schema 4; `standard` before).
    #[serde(default = "standard_class")]
    pub tax_class: String,
    /// What promotions and discounts took off the line, in the order they were applied.
    #[serde(default)]
    pub adjustments: Vec<Adjustment>,
    /// price × quantity − the adjustments: what the line sells for, before tax when prices
    /// exclude it.
    pub net: Decimal,
    /// The line's share of its rate's tax on the order (`fusion_rules::pricing`).
    pub tax: Decimal,
    /// What the customer paid for the line: `net`, plus `tax` unless prices include it. The
    /// order's total is the sum of its lines' `paid`; a return refunds from it.
    pub paid: Decimal,
}

fn standard_class() -> String {
    "standard".to_string()
}

impl Serialize for SoldItem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // Postcard is not self-describing: it gets every field, in order.
        let every = !serializer.is_human_readable();
        let mut out = serializer.serialize_struct("SoldItem", 11)?;
        out.serialize_field("sku", &self.sku)?;
        out.serialize_field("quantity", &self.quantity)?;
        out.serialize_field("price", &self.price)?;
        out.serialize_field("category", &self.category)?;
        if every || self.list_price.is_some() {
            out.serialize_field("listPrice", &self.list_price)?;
        } else {
            out.skip_field("listPrice")?;
        }
        if every || self.price_override.is_some() {
            out.serialize_field("priceOverride", &self.price_override)?;
        } else {
            out.skip_field("priceOverride")?;
        }
        out.serialize_field("taxClass", &self.tax_class)?;
        out.serialize_field("adjustments", &self.adjustments)?;
        out.serialize_field("net", &self.net)?;
        out.serialize_field("tax", &self.tax)?;
        out.serialize_field("paid", &self.paid)?;
        out.end()
    }
}

/// What took an amount off a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdjustmentKind {
    /// A promotion of the store, applied automatically.
    Promotion,
    /// A discount given on the line.
    Discount,
    /// The line's share of a discount given on the whole order.
    OrderDiscount,
}

/// An amount a promotion or a discount took off a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Adjustment {
    pub kind: AdjustmentKind,
    /// Taken off, in the order's currency; never negative.
    pub amount: Decimal,
    /// The promotion that gave it.
    #[schema(value_type = Option<String>)]
    pub promotion_id: Option<crate::PromotionId>,
    pub reason: Option<String>,
    /// Who approved a discount above the store's `discountApprovalPercent`.
    pub approved_by: Option<String>,
}

/// What one promotion gave an order, over all its lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPromotion {
    #[schema(value_type = String)]
    pub promotion_id: crate::PromotionId,
    pub name: String,
    pub amount: Decimal,
}

/// A discount given on a whole order: spread over its lines (`orderDiscount` adjustments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDiscount {
    pub amount: Decimal,
    pub reason: Option<String>,
    pub approved_by: Option<String>,
}

/// A line sold at another price than the catalog's: who approved it, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceOverride {
    /// Who approved it: `token:<id>` (a manager's token), `campaign:<id>` (a campaign's price).
    pub approved_by: String,
    pub reason: Option<String>,
}

/// A line of `order.created` as schema 2 and 3 wrote it: no tax class, adjustments or
/// amounts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SoldItemV2 {
    sku: Sku,
    quantity: u64,
    price: Decimal,
    category: Option<String>,
    list_price: Option<Decimal>,
    price_override: Option<PriceOverride>,
}

impl From<OrderItem> for SoldItemV2 {
    fn from(item: OrderItem) -> Self {
        Self {
            sku: item.sku,
            quantity: item.quantity,
            price: item.price,
            category: item.category,
            list_price: None,
            price_override: None,
        }
    }
}

/// Lines of schema 1 to 3, with their amounts: every line was of class `standard` and had no
/// adjustment; the order's tax (one rate at most) is shared over them in proportion
/// (`money::allocate`). Amounts that do not fit read as zero: such an event fails validation.
fn legacy_lines(
    items: Vec<SoldItemV2>,
    currency: Currency,
    taxes: &[OrderTax],
    tax_included: bool,
) -> Vec<SoldItem> {
    let minor = |d: Decimal| Money::from_decimal(d, currency).map_or(0, |m| m.minor);
    let nets: Vec<i64> = items
        .iter()
        .map(|i| {
            minor(i.price)
                .checked_mul(i64::try_from(i.quantity).unwrap_or(0))
                .unwrap_or(0)
        })
        .collect();
    let tax: i64 = taxes.iter().map(|t| minor(t.tax)).sum();
    let shares = crate::money::allocate(tax, &nets);
    let money = |minor: i64| Money { minor, currency }.to_decimal();
    items
        .into_iter()
        .zip(nets.into_iter().zip(shares))
        .map(|(i, (net, tax))| SoldItem {
            sku: i.sku,
            quantity: i.quantity,
            price: i.price,
            category: i.category,
            list_price: i.list_price,
            price_override: i.price_override,
            tax_class: standard_class(),
            adjustments: Vec::new(),
            net: money(net),
            tax: money(tax),
            paid: money(if tax_included { net } else { net + tax }),
        })
        .collect()
}

impl From<SoldItem> for OrderItem {
    fn from(item: SoldItem) -> Self {
        Self {
            sku: item.sku,
            quantity: item.quantity,
            price: item.price,
            category: item.category,
        }
    }
}

/// The `status` field of inventory events (FusionCommerce's `inventory.reserved {orderId, status}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    Reserved,
    Insufficient,
    Released,
}

/// One line of an order as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub sku: Sku,
    pub quantity: u64,
    /// Unit price in the order's currency.
    pub price: Decimal,
    pub category: Option<String>,
}

/// A quantity of one sku (reserved or released).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockLine {
    pub sku: Sku,
    pub quantity: u64,
}

/// `product.created`: the new product, as FusionCommerce's catalog returned it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    pub id: ProductId,
    pub sku: Sku,
    pub name: String,
    pub description: Option<String>,
    pub price: Decimal,
    pub currency: Currency,
    /// Stock level the product was created with.
    pub inventory: u64,
    pub created_at: Timestamp,
    /// Its tax class; absent: `standard` (schema 2).
    pub tax_class: Option<String>,
    /// Its category (schema 2).
    pub category: Option<String>,
}

/// `product.created` as schema 1 wrote it: no tax class or category. How the log holds older
/// products; [`Envelope::decode`] reads them (and [`ProductUpdatedV1`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ProductCreatedV1 {
    id: ProductId,
    sku: Sku,
    name: String,
    description: Option<String>,
    price: Decimal,
    currency: Currency,
    inventory: u64,
    created_at: Timestamp,
}

impl From<ProductCreatedV1> for ProductCreated {
    fn from(old: ProductCreatedV1) -> Self {
        Self {
            id: old.id,
            sku: old.sku,
            name: old.name,
            description: old.description,
            price: old.price,
            currency: old.currency,
            inventory: old.inventory,
            created_at: old.created_at,
            tax_class: None,
            category: None,
        }
    }
}

/// The fields of `product.updated` schema 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ProductUpdatedV1 {
    id: ProductId,
    sku: Sku,
    name: String,
    description: Option<String>,
    price: Decimal,
    currency: Currency,
    changed: Vec<String>,
    updated_at: Timestamp,
}

/// `product.updated`: the product after the change, and which fields changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductUpdated {
    pub id: ProductId,
    pub sku: Sku,
    pub name: String,
    pub description: Option<String>,
    pub price: Decimal,
    pub currency: Currency,
    /// Names of the fields that changed (`name`, `description`, `price`, `currency`,
    /// `taxClass`, `category`).
    pub changed: Vec<String>,
    pub updated_at: Timestamp,
    /// Its tax class after the change; absent: `standard` (schema 2).
    pub tax_class: Option<String>,
    /// Its category after the change (schema 2).
    pub category: Option<String>,
}

impl From<ProductUpdatedV1> for ProductUpdated {
    fn from(old: ProductUpdatedV1) -> Self {
        Self {
            id: old.id,
            sku: old.sku,
            name: old.name,
            description: old.description,
            price: old.price,
            currency: old.currency,
            changed: old.changed,
            updated_at: old.updated_at,
            tax_class: None,
            category: None,
        }
    }
}

/// `product.archived`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductArchived {
    pub id: ProductId,
    pub sku: Sku,
    pub archived_at: Timestamp,
}

/// `inventory.adjusted`: the available quantity of a sku changed by a count, a delta or a
/// product's seed stock. Carries the absolute result, so applying it twice is harmless.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockAdjusted {
    pub sku: Sku,
    pub previous_quantity: u64,
    pub quantity: u64,
    pub delta: i64,
    /// `set` for an absolute count, `product.created` for a seed, else the caller's reason.
    pub reason: String,
}

/// `inventory.transferred`: this till gave stock rights of a sku to another holder (a till of
/// the store, or the hub); they are in transit until the receiver's `inventory.received`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockTransferred {
    pub transfer_id: uuid::Uuid,
    pub sku: Sku,
    pub quantity: u64,
    /// The receiving holder's node id.
    #[schemars(with = "String")]
    pub to: NodeId,
    /// Available here before and after.
    pub previous_quantity: u64,
    pub available: u64,
}

/// `inventory.received`: this till took in a transfer addressed to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockReceived {
    pub transfer_id: uuid::Uuid,
    pub sku: Sku,
    pub quantity: u64,
    /// The giving holder's node id.
    #[schemars(with = "String")]
    pub from: NodeId,
    pub previous_quantity: u64,
    pub available: u64,
}

/// `inventory.reclaimed`: a manager at the hub took over the stock rights of a till lost for
/// good. Recorded by the hub's holder of the till's store: the lost till's movements up to its
/// seq `upto` count, later ones never do; transfers to it that it had not taken in are void.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockReclaimed {
    pub sku: Sku,
    /// The lost till's node id.
    #[schemars(with = "String")]
    pub from: NodeId,
    /// The last seq of the lost till's log that counts.
    pub upto: u64,
    /// The rights taken over: what the till held plus the void transfers to it.
    pub quantity: u64,
    /// Transfers to the lost till it had not taken in: void, their units are in `quantity`.
    pub transfers: Vec<uuid::Uuid>,
    /// Available at the hub's holder before and after.
    pub previous_quantity: u64,
    pub available: u64,
}

/// `order.created`: FusionCommerce's `{orderId, customerId, total, items}` and more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub items: Vec<SoldItem>,
    /// Σ price × quantity, exact.
    pub total: Decimal,
    pub currency: Currency,
    pub status: OrderStatus,
    pub created_at: Timestamp,
    /// Where to ship it once paid; absent for a carry-out order.
    pub shipping_address: Option<shipping::Address>,
    /// Unpaid by then, the order is cancelled and its stock released; absent: held until paid.
    pub hold_until: Option<Timestamp>,
    /// Σ price × quantity (schema 3); `total` is what the customer pays: the subtotal, plus
    /// the taxes unless prices include them.
    pub subtotal: Decimal,
    /// The tax of every rate, in class order (schema 3); empty: no tax charged.
    pub taxes: Vec<OrderTax>,
    /// The prices include the taxes (VAT style) rather than the taxes being added.
    pub tax_included: bool,
    /// Σ of every line's adjustments: what promotions and discounts took off (schema 4).
    /// `total` = subtotal − discountTotal, plus the taxes unless prices include them.
    pub discount_total: Decimal,
    /// What each promotion gave, over the order (schema 4).
    pub promotions: Vec<AppliedPromotion>,
    /// The discount given on the whole order, if any (schema 4); boxed, as most orders have
    /// none.
    pub discount: Option<Box<OrderDiscount>>,
    /// The staff member who sold it, signed in at the till (schema 5); absent when the
    /// till's caller was a token alone. Keep last: older payloads are read by appending it
    /// (`APPENDED_OPTIONS`).
    #[serde(default)]
    pub staff: Option<crate::StaffId>,
}

/// The tax of one rate on an order: rounded once per rate, half away from zero
/// (`fusion_rules::tax`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderTax {
    /// The tax class (`standard`, `reduced`, …).
    pub class: String,
    /// Percent.
    pub rate: Decimal,
    /// What the rate applies to, net of tax.
    pub base: Decimal,
    pub tax: Decimal,
}

/// `order.created` as schemas 1 and 2 wrote it: no subtotal or taxes, and lines of `I`
/// ([`OrderItem`] in schema 1, [`SoldItemV2`] with list price and override in 2). How the log
/// holds older orders; [`Envelope::decode`] reads them into [`OrderCreated`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OrderCreatedUntaxed<I> {
    order_id: OrderId,
    customer_id: CustomerId,
    items: Vec<I>,
    total: Decimal,
    currency: Currency,
    status: OrderStatus,
    created_at: Timestamp,
    shipping_address: Option<shipping::Address>,
    hold_until: Option<Timestamp>,
}

type OrderCreatedV1 = OrderCreatedUntaxed<OrderItem>;
type OrderCreatedV2 = OrderCreatedUntaxed<SoldItemV2>;

impl<I: Into<SoldItemV2>> From<OrderCreatedUntaxed<I>> for OrderCreated {
    fn from(old: OrderCreatedUntaxed<I>) -> Self {
        OrderCreatedV3 {
            order_id: old.order_id,
            customer_id: old.customer_id,
            items: old.items.into_iter().map(Into::into).collect(),
            // No tax before schema 3: the total was the subtotal.
            subtotal: old.total,
            total: old.total,
            currency: old.currency,
            status: old.status,
            created_at: old.created_at,
            shipping_address: old.shipping_address,
            hold_until: old.hold_until,
            taxes: Vec::new(),
            tax_included: false,
        }
        .into()
    }
}

/// `order.created` as schema 3 wrote it: taxed, lines without tax class or adjustments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OrderCreatedV3 {
    order_id: OrderId,
    customer_id: CustomerId,
    items: Vec<SoldItemV2>,
    total: Decimal,
    currency: Currency,
    status: OrderStatus,
    created_at: Timestamp,
    shipping_address: Option<shipping::Address>,
    hold_until: Option<Timestamp>,
    subtotal: Decimal,
    taxes: Vec<OrderTax>,
    tax_included: bool,
}

impl From<OrderCreatedV3> for OrderCreated {
    fn from(old: OrderCreatedV3) -> Self {
        Self {
            items: legacy_lines(old.items, old.currency, &old.taxes, old.tax_included),
            order_id: old.order_id,
            customer_id: old.customer_id,
            total: old.total,
            currency: old.currency,
            status: old.status,
            created_at: old.created_at,
            shipping_address: old.shipping_address,
            hold_until: old.hold_until,
            subtotal: old.subtotal,
            taxes: old.taxes,
            tax_included: old.tax_included,
            discount_total: Money::zero(old.currency).to_decimal(),
            promotions: Vec::new(),
            discount: None,
            staff: None,
        }
    }
}

/// `inventory.reserved`: every line of the order is held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryReserved {
    pub order_id: OrderId,
    pub status: ReservationStatus,
    pub items: Vec<StockLine>,
}

/// `inventory.backordered`: an order was taken past this till's stock of skus whose policy
/// allows backorders: these units are owed. They are reserved (`inventory.reserved` of the
/// same order) as this till's stock grows, oldest backorder first; the order is flagged for
/// review, and is not fulfilled or shipped before every unit is reserved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryBackordered {
    pub order_id: OrderId,
    pub items: Vec<StockLine>,
}

/// `inventory.insufficient`: an order was refused because one sku was short; nothing was held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryInsufficient {
    /// The id the refused order would have had; no order exists under it.
    pub order_id: OrderId,
    pub status: ReservationStatus,
    pub sku: Sku,
    /// Quantity the order asked for.
    pub quantity: u64,
    /// Quantity that was available.
    pub available: u64,
}

/// `order.cancelled`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub reason: Option<String>,
    pub cancelled_at: Timestamp,
}

/// `inventory.released`: the reservations of an order went back to available stock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryReleased {
    pub order_id: OrderId,
    pub status: ReservationStatus,
    pub items: Vec<StockLine>,
    pub reason: String,
}

fn check_amount(
    topic: &'static str,
    field: &str,
    amount: Decimal,
    currency: Currency,
) -> Result<Money, EventError> {
    let money = Money::from_decimal(amount, currency)
        .map_err(|e| invalid(topic, format!("{field} {e}")))?;
    if money.minor < 0 {
        return Err(invalid(topic, format!("{field} must not be negative")));
    }
    Ok(money)
}

fn check_name(topic: &'static str, name: &str) -> Result<(), EventError> {
    let len = name.chars().count();
    if len == 0 || len > PRODUCT_NAME_LEN_MAX {
        return Err(invalid(topic, "name must be 1 to 200 characters"));
    }
    Ok(())
}

fn check_lines(
    topic: &'static str,
    lines: &[StockLine],
    may_be_empty: bool,
) -> Result<(), EventError> {
    if (!may_be_empty && lines.is_empty()) || lines.len() > ORDER_LINES_MAX {
        return Err(invalid(topic, "items must hold 1 to 200 lines"));
    }
    if lines
        .iter()
        .any(|l| l.quantity == 0 || l.quantity > QUANTITY_MAX)
    {
        return Err(invalid(topic, "every quantity must be at least 1"));
    }
    Ok(())
}

fn check_status<T: PartialEq + std::fmt::Debug>(
    topic: &'static str,
    found: T,
    expected: T,
) -> Result<(), EventError> {
    if found != expected {
        return Err(invalid(
            topic,
            format!("status must be {expected:?}, not {found:?}"),
        ));
    }
    Ok(())
}

/// A product's tax class and category, when given, are well formed.
fn check_terms(
    topic: &'static str,
    tax_class: &Option<String>,
    category: &Option<String>,
) -> Result<(), EventError> {
    if let Some(class) = tax_class
        && crate::http::tax_class("taxClass", class).is_err()
    {
        return Err(invalid(topic, "taxClass is not a tax class name"));
    }
    if let Some(category) = category
        && (category.trim().is_empty()
            || category.chars().count() > crate::commands::CATEGORY_LEN_MAX)
    {
        return Err(invalid(topic, "category must be 1 to 100 characters"));
    }
    Ok(())
}

impl ProductCreated {
    fn validate(&self) -> Result<(), EventError> {
        check_name("product.created", &self.name)?;
        check_terms("product.created", &self.tax_class, &self.category)?;
        check_amount("product.created", "price", self.price, self.currency).map(drop)
    }
}

impl ProductUpdated {
    fn validate(&self) -> Result<(), EventError> {
        check_name("product.updated", &self.name)?;
        check_terms("product.updated", &self.tax_class, &self.category)?;
        check_amount("product.updated", "price", self.price, self.currency)?;
        if self.changed.is_empty() {
            return Err(invalid(
                "product.updated",
                "changed must name at least one field",
            ));
        }
        Ok(())
    }
}

impl ProductArchived {
    fn validate(&self) -> Result<(), EventError> {
        Ok(())
    }
}

impl StockTransferred {
    fn validate(&self) -> Result<(), EventError> {
        const T: &str = "inventory.transferred";
        if self.quantity == 0 {
            return Err(invalid(T, "quantity must be positive"));
        }
        if self.previous_quantity.checked_sub(self.quantity) != Some(self.available) {
            return Err(invalid(
                T,
                "available must equal previousQuantity - quantity",
            ));
        }
        Ok(())
    }
}

impl StockReceived {
    fn validate(&self) -> Result<(), EventError> {
        const T: &str = "inventory.received";
        if self.quantity == 0 {
            return Err(invalid(T, "quantity must be positive"));
        }
        if self.previous_quantity.checked_add(self.quantity) != Some(self.available) {
            return Err(invalid(
                T,
                "available must equal previousQuantity + quantity",
            ));
        }
        Ok(())
    }
}

impl StockReclaimed {
    fn validate(&self) -> Result<(), EventError> {
        const T: &str = "inventory.reclaimed";
        if self.previous_quantity.checked_add(self.quantity) != Some(self.available) {
            return Err(invalid(
                T,
                "available must equal previousQuantity + quantity",
            ));
        }
        Ok(())
    }
}

impl StockAdjusted {
    fn validate(&self) -> Result<(), EventError> {
        let expected = i128::from(self.previous_quantity) + i128::from(self.delta);
        if expected != i128::from(self.quantity) {
            return Err(invalid(
                "inventory.adjusted",
                "quantity must equal previousQuantity + delta",
            ));
        }
        if self.reason.is_empty() {
            return Err(invalid("inventory.adjusted", "reason must not be empty"));
        }
        Ok(())
    }
}

impl OrderCreated {
    fn validate(&self) -> Result<(), EventError> {
        const T: &str = "order.created";
        check_status(T, self.status, OrderStatus::Created)?;
        if self.items.is_empty() || self.items.len() > ORDER_LINES_MAX {
            return Err(invalid(T, "items must hold 1 to 200 lines"));
        }
        let overflow = || invalid(T, "amounts overflow");
        let add = |a: Money, b: Money| a.checked_add(b).ok_or_else(overflow);
        let zero = Money::zero(self.currency);
        let (mut subtotal, mut adjusted, mut total) = (zero, zero, zero);
        // Class → (Σ net, Σ tax) of its lines.
        let mut by_class: BTreeMap<&str, (Money, Money)> = BTreeMap::new();
        // Promotion → Σ of its adjustments; Σ of the order discount's shares.
        let mut by_promotion: BTreeMap<crate::PromotionId, Money> = BTreeMap::new();
        let mut order_discount = zero;
        for item in &self.items {
            if item.quantity == 0 || item.quantity > QUANTITY_MAX {
                return Err(invalid(T, "every quantity must be at least 1"));
            }
            let price = check_amount(T, "price", item.price, self.currency)?;
            if let Some(list) = item.list_price {
                check_amount(T, "listPrice", list, self.currency)?;
            }
            let overridden = item.list_price.is_some_and(|list| list != item.price);
            if overridden && item.price_override.is_none() {
                return Err(invalid(
                    T,
                    "a price other than the list price needs its override",
                ));
            }
            if item.list_price == Some(item.price) && item.price_override.is_some() {
                return Err(invalid(T, "a line at its list price has no override"));
            }
            if crate::http::tax_class("taxClass", &item.tax_class).is_err() {
                return Err(invalid(T, "taxClass is not a tax class name"));
            }
            let gross = price.checked_mul(item.quantity).ok_or_else(overflow)?;
            subtotal = add(subtotal, gross)?;
            let mut off = zero;
            for adj in &item.adjustments {
                let amount = check_amount(T, "adjustments.amount", adj.amount, self.currency)?;
                off = add(off, amount)?;
                match (adj.kind, adj.promotion_id) {
                    (AdjustmentKind::Promotion, Some(id)) => {
                        let sum = by_promotion.entry(id).or_insert(zero);
                        *sum = add(*sum, amount)?;
                    }
                    (AdjustmentKind::Promotion, None) | (_, Some(_)) => {
                        return Err(invalid(
                            T,
                            "a promotion's adjustment, and only it, names its promotion",
                        ));
                    }
                    (AdjustmentKind::OrderDiscount, None) => {
                        order_discount = add(order_discount, amount)?;
                    }
                    (AdjustmentKind::Discount, None) => {}
                }
            }
            adjusted = add(adjusted, off)?;
            let net = check_amount(T, "net", item.net, self.currency)?;
            if Some(net)
                != gross
                    .minor
                    .checked_sub(off.minor)
                    .map(|minor| Money { minor, ..zero })
            {
                return Err(invalid(
                    T,
                    "a line's net must be price × quantity less its adjustments",
                ));
            }
            let tax = check_amount(T, "tax", item.tax, self.currency)?;
            let paid = if self.tax_included {
                net
            } else {
                add(net, tax)?
            };
            if check_amount(T, "paid", item.paid, self.currency)? != paid {
                return Err(invalid(
                    T,
                    "a line's paid must be its net, plus its tax unless prices include it",
                ));
            }
            total = add(total, paid)?;
            let class = by_class.entry(&item.tax_class).or_insert((zero, zero));
            *class = (add(class.0, net)?, add(class.1, tax)?);
        }
        if check_amount(T, "subtotal", self.subtotal, self.currency)? != subtotal {
            return Err(invalid(
                T,
                "subtotal must equal the sum of price × quantity",
            ));
        }
        if check_amount(T, "discountTotal", self.discount_total, self.currency)? != adjusted {
            return Err(invalid(
                T,
                "discountTotal must equal the sum of the lines' adjustments",
            ));
        }
        if self.taxes.is_empty() {
            if by_class.values().any(|(_, tax)| tax.minor != 0) {
                return Err(invalid(T, "a line has tax but the order none"));
            }
        } else {
            if self.taxes.len() != by_class.len() {
                return Err(invalid(
                    T,
                    "the taxes must name each class of the lines once",
                ));
            }
            for t in &self.taxes {
                let tax = check_amount(T, "taxes.tax", t.tax, self.currency)?;
                let base = check_amount(T, "taxes.base", t.base, self.currency)?;
                let Some(&(net, lines_tax)) = by_class.get(t.class.as_str()) else {
                    return Err(invalid(
                        T,
                        "the taxes must name each class of the lines once",
                    ));
                };
                let gross = if self.tax_included {
                    add(base, tax)?
                } else {
                    base
                };
                if gross != net || tax != lines_tax {
                    return Err(invalid(
                        T,
                        "a rate's base and tax must be those of its class's lines",
                    ));
                }
            }
        }
        if check_amount(T, "total", self.total, self.currency)? != total {
            return Err(invalid(T, "total must be the sum of the lines' paid"));
        }
        if self.promotions.len() != by_promotion.len() {
            return Err(invalid(
                T,
                "promotions must name each promotion of the lines once",
            ));
        }
        for p in &self.promotions {
            check_name(T, &p.name)?;
            let amount = check_amount(T, "promotions.amount", p.amount, self.currency)?;
            if by_promotion.get(&p.promotion_id) != Some(&amount) {
                return Err(invalid(
                    T,
                    "a promotion's amount must be the sum of its adjustments",
                ));
            }
        }
        let discounted = match &self.discount {
            Some(d) => check_amount(T, "discount.amount", d.amount, self.currency)?,
            None => zero,
        };
        if discounted != order_discount {
            return Err(invalid(
                T,
                "the order's discount must be the sum of its shares on the lines",
            ));
        }
        Ok(())
    }
}

impl InventoryReserved {
    fn validate(&self) -> Result<(), EventError> {
        check_status(
            "inventory.reserved",
            self.status,
            ReservationStatus::Reserved,
        )?;
        check_lines("inventory.reserved", &self.items, false)
    }
}

impl InventoryBackordered {
    fn validate(&self) -> Result<(), EventError> {
        check_lines("inventory.backordered", &self.items, false)
    }
}

impl InventoryInsufficient {
    fn validate(&self) -> Result<(), EventError> {
        const T: &str = "inventory.insufficient";
        check_status(T, self.status, ReservationStatus::Insufficient)?;
        if self.quantity <= self.available {
            return Err(invalid(T, "quantity must exceed available"));
        }
        Ok(())
    }
}

impl OrderCancelled {
    fn validate(&self) -> Result<(), EventError> {
        check_status("order.cancelled", self.status, OrderStatus::Cancelled)
    }
}

impl InventoryReleased {
    fn validate(&self) -> Result<(), EventError> {
        check_status(
            "inventory.released",
            self.status,
            ReservationStatus::Released,
        )?;
        check_lines("inventory.released", &self.items, false)
    }
}

/// Declares the event catalogue once: variant, topic, schema version, and the aggregate key
/// (the Kafka message key: orders by order id, stock by sku, products by product id).
macro_rules! events {
    ($( $variant:ident => $topic:literal, version = $version:literal, key = |$p:ident| $key:expr; )*) => {
        /// Every event this node can record. Postcard encodes the variant index: append only.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum Event {
            $( $variant($variant), )*
        }

        impl Event {
            /// Every topic, in declaration order.
            pub const TOPICS: &'static [&'static str] = &[$($topic),*];

            /// The FusionCommerce topic name.
            pub fn topic(&self) -> &'static str {
                match self { $( Event::$variant(_) => $topic, )* }
            }

            /// The payload schema version this build writes for the event's topic.
            pub fn schema_version(&self) -> u16 {
                match self { $( Event::$variant(_) => $version, )* }
            }

            /// The aggregate the event belongs to; events of one key are ordered.
            pub fn key(&self) -> String {
                match self { $( Event::$variant($p) => $key, )* }
            }

            pub fn validate(&self) -> Result<(), EventError> {
                match self { $( Event::$variant(p) => p.validate(), )* }
            }

            /// The payload alone, as JSON.
            pub fn payload_json(&self) -> Result<Box<RawValue>, EventError> {
                let raw = match self { $( Event::$variant(p) => serde_json::value::to_raw_value(p), )* };
                raw.map_err(|e| EventError::Decode(e.to_string()))
            }

            /// Reads a JSON payload of `topic`.
            pub fn from_json(topic: &str, payload: &str) -> Result<Self, EventError> {
                let decode = |e: serde_json::Error| EventError::Decode(format!("{topic}: {e}"));
                match topic {
                    $( $topic => serde_json::from_str::<$variant>(payload).map(Event::$variant).map_err(decode), )*
                    other => Err(EventError::UnknownTopic(other.to_string())),
                }
            }

            /// The newest payload schema version of `topic`.
            pub fn known_schema_version(topic: &str) -> Option<u16> {
                match topic { $( $topic => Some($version), )* _ => None }
            }

            /// The JSON Schema of every payload, by topic, generated from the types.
            pub fn payload_schemas() -> Vec<(&'static str, serde_json::Value)> {
                vec![ $( ($topic, schemars::schema_for!($variant).to_value()), )* ]
            }
        }

        $(
            impl From<$variant> for Event {
                fn from(payload: $variant) -> Self {
                    Event::$variant(payload)
                }
            }
        )*
    };
}

events! {
    ProductCreated => "product.created", version = 2, key = |p| p.id.to_string();
    ProductUpdated => "product.updated", version = 2, key = |p| p.id.to_string();
    ProductArchived => "product.archived", version = 1, key = |p| p.id.to_string();
    StockAdjusted => "inventory.adjusted", version = 1, key = |p| p.sku.to_string();
    OrderCreated => "order.created", version = 5, key = |p| p.order_id.to_string();
    InventoryReserved => "inventory.reserved", version = 1, key = |p| p.order_id.to_string();
    InventoryInsufficient => "inventory.insufficient", version = 1, key = |p| p.order_id.to_string();
    OrderCancelled => "order.cancelled", version = 1, key = |p| p.order_id.to_string();
    InventoryReleased => "inventory.released", version = 1, key = |p| p.order_id.to_string();
    CampaignCreated => "group-commerce.campaign.created", version = 1, key = |p| p.campaign_id.to_string();
    CampaignJoined => "group-commerce.campaign.joined", version = 1, key = |p| p.campaign_id.to_string();
    CampaignLeft => "group-commerce.campaign.left", version = 1, key = |p| p.campaign_id.to_string();
    CampaignSuccessful => "group-commerce.campaign.successful", version = 1, key = |p| p.campaign_id.to_string();
    CampaignFailed => "group-commerce.campaign.failed", version = 1, key = |p| p.campaign_id.to_string();
    CampaignClosed => "group-commerce.campaign.closed", version = 1, key = |p| p.campaign_id.to_string();
    CampaignCancelled => "group-commerce.campaign.cancelled", version = 1, key = |p| p.campaign_id.to_string();
    PaymentCreated => "payment.created", version = 2, key = |p| p.order_id.to_string();
    PaymentAuthorized => "payment.authorized", version = 1, key = |p| p.order_id.to_string();
    PaymentSucceeded => "payment.succeeded", version = 1, key = |p| p.order_id.to_string();
    PaymentFailed => "payment.failed", version = 1, key = |p| p.order_id.to_string();
    PaymentRefunded => "payment.refunded", version = 1, key = |p| p.order_id.to_string();
    OrderPaid => "order.paid", version = 1, key = |p| p.order_id.to_string();
    PaymentOfflineApproved => "payment.offline_approved", version = 1, key = |p| p.order_id.to_string();
        OrderFlagged => "order.flagged", version = 1, key = |p| p.order_id.to_string();
    ShippingLabelCreated => "shipping.label.created", version = 1, key = |p| p.order_id.to_string();
    ShippingStatusChanged => "shipping.status.changed", version = 1, key = |p| p.order_id.to_string();
        OrderFulfilled => "order.fulfilled", version = 1, key = |p| p.order_id.to_string();
        PaymentVoided => "payment.voided", version = 1, key = |p| p.order_id.to_string();
    StoreCreditChanged => "store-credit.changed", version = 1, key = |p| p.account.clone();
    StockTransferred => "inventory.transferred", version = 1, key = |p| p.sku.to_string();
    StockReceived => "inventory.received", version = 1, key = |p| p.sku.to_string();
    StockReclaimed => "inventory.reclaimed", version = 1, key = |p| p.sku.to_string();
    SeatsTransferred => "group-commerce.campaign.seats-transferred", version = 1, key = |p| p.campaign_id.to_string();
    SeatsReceived => "group-commerce.campaign.seats-received", version = 1, key = |p| p.campaign_id.to_string();
    CampaignEnded => "group-commerce.campaign.ended", version = 1, key = |p| p.campaign_id.to_string();
    CampaignSettled => "group-commerce.campaign.settled", version = 1, key = |p| p.campaign_id.to_string();
    InventoryBackordered => "inventory.backordered", version = 1, key = |p| p.order_id.to_string();
    OfflineBudgetSet => "payment.offline_budget_set", version = 1, key = |p| p.currency.to_string();
    OfflineBudgetTransferred => "payment.offline_budget_transferred", version = 1, key = |p| p.currency.to_string();
    OfflineBudgetReceived => "payment.offline_budget_received", version = 1, key = |p| p.currency.to_string();
    NodeEnrolled => "fleet.node.enrolled", version = 1, key = |p| p.node_id.clone();
    NodeRevoked => "fleet.node.revoked", version = 1, key = |p| p.node_id.clone();
    OrderReturned => "order.returned", version = 2, key = |p| p.order_id.to_string();
    ReturnRightsRequested => "order.return_rights_requested", version = 1, key = |p| p.order_id.to_string();
    ReturnRightsTransferred => "order.return_rights_transferred", version = 1, key = |p| p.order_id.to_string();
    ReceiptIssued => "receipt.issued", version = 1, key = |p| p.order_id.to_string();
    SessionOpened => "session.opened", version = 1, key = |p| p.session_id.to_string();
    SessionCashMoved => "session.cash_moved", version = 1, key = |p| p.session_id.to_string();
    SessionClosed => "session.closed", version = 2, key = |p| p.session_id.to_string();
    ReceiptPrinted => "receipt.printed", version = 1, key = |p| p.order_id.to_string();
    ReceiptEmailed => "receipt.emailed", version = 1, key = |p| p.order_id.to_string();
}

/// One event with everything needed to route, order, deduplicate and trace it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: EventId,
    pub schema_version: u16,
    /// The node that recorded the event.
    pub origin: NodeId,
    /// Position in the origin's log: 1, 2, 3, … with no gaps.
    pub seq: u64,
    pub occurred_at: Timestamp,
    /// Shared by every event that one client request caused.
    pub correlation_id: CorrelationId,
    /// The command (request) or event that directly caused this one.
    pub causation_id: Option<Uuid>,
    pub event: Event,
}

/// The fields of [`Envelope`] before its event, in its encoding's order.
#[derive(Deserialize)]
struct Head {
    event_id: EventId,
    schema_version: u16,
    origin: NodeId,
    seq: u64,
    occurred_at: Timestamp,
    correlation_id: CorrelationId,
    causation_id: Option<Uuid>,
}

/// Postcard's variant index of [`Event::OrderCreated`] (one varint byte).
const ORDER_CREATED_VARIANT: u8 = 4;
const PRODUCT_CREATED_VARIANT: u8 = 0;
const PRODUCT_UPDATED_VARIANT: u8 = 1;

/// Fields appended to a payload, last, as an `Option`, by the schema version that added them:
/// (topic, version). A payload of an older version is the newer one without them, so it is read
/// by appending postcard's `None` (one zero byte) for each.
const APPENDED_OPTIONS: &[(&str, u16)] = &[
    ("order.created", 5),
    ("order.returned", 2),
    ("payment.created", 2),
    ("session.closed", 2),
];

/// How many `None`s a payload (its variant index first) written at `version` lacks.
fn appended_options(payload: &[u8], version: u16) -> usize {
    let Ok((variant, _)) = postcard::take_from_bytes::<u32>(payload) else {
        return 0;
    };
    let Some(topic) = Event::TOPICS.get(variant as usize) else {
        return 0;
    };
    APPENDED_OPTIONS
        .iter()
        .filter(|(t, since)| t == topic && version < *since)
        .count()
}

/// Largest encoded envelope accepted by [`Envelope::decode`]; a 200-line order is ~20 KiB.
pub const ENVELOPE_BYTES_MAX: usize = 256 * 1024;

impl Envelope {
    /// Builds a validated envelope at the event's current schema version.
    pub fn new(
        event_id: EventId,
        origin: NodeId,
        seq: u64,
        occurred_at: Timestamp,
        correlation_id: CorrelationId,
        causation_id: Option<Uuid>,
        event: Event,
    ) -> Result<Self, EventError> {
        let envelope = Self {
            event_id,
            schema_version: event.schema_version(),
            origin,
            seq,
            occurred_at,
            correlation_id,
            causation_id,
            event,
        };
        envelope.validate()?;
        Ok(envelope)
    }

    pub fn validate(&self) -> Result<(), EventError> {
        let topic = self.event.topic();
        if self.seq == 0 {
            return Err(invalid(topic, "seq starts at 1"));
        }
        let known = self.event.schema_version();
        if self.schema_version == 0 || self.schema_version > known {
            return Err(EventError::UnknownSchemaVersion {
                topic,
                found: self.schema_version,
                known,
            });
        }
        self.event.validate()
    }

    pub fn topic(&self) -> &'static str {
        self.event.topic()
    }

    pub fn key(&self) -> String {
        self.event.key()
    }

    /// Postcard bytes, for the log and the wire.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding an envelope into a Vec cannot fail")
    }

    /// Reads and validates postcard bytes; untrusted input gives an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > ENVELOPE_BYTES_MAX {
            return Err(EventError::Decode(format!(
                "{} bytes exceed the {ENVELOPE_BYTES_MAX} byte limit",
                bytes.len()
            )));
        }
        let decode = |e: postcard::Error| EventError::Decode(e.to_string());
        let (head, payload) = postcard::take_from_bytes::<Head>(bytes).map_err(decode)?;
        // A payload in the layout of an older schema of its topic is read as it was written.
        let event = match payload.split_first() {
            Some((&PRODUCT_CREATED_VARIANT, v1)) if head.schema_version == 1 => {
                let created: ProductCreatedV1 = postcard::from_bytes(v1).map_err(decode)?;
                Event::ProductCreated(created.into())
            }
            Some((&PRODUCT_UPDATED_VARIANT, v1)) if head.schema_version == 1 => {
                let updated: ProductUpdatedV1 = postcard::from_bytes(v1).map_err(decode)?;
                Event::ProductUpdated(updated.into())
            }
            Some((&ORDER_CREATED_VARIANT, v1)) if head.schema_version == 1 => {
                let created: OrderCreatedV1 = postcard::from_bytes(v1).map_err(decode)?;
                Event::OrderCreated(created.into())
            }
            Some((&ORDER_CREATED_VARIANT, v2)) if head.schema_version == 2 => {
                let created: OrderCreatedV2 = postcard::from_bytes(v2).map_err(decode)?;
                Event::OrderCreated(created.into())
            }
            Some((&ORDER_CREATED_VARIANT, v3)) if head.schema_version == 3 => {
                let created: OrderCreatedV3 = postcard::from_bytes(v3).map_err(decode)?;
                Event::OrderCreated(created.into())
            }
            _ => match appended_options(payload, head.schema_version) {
                0 => postcard::from_bytes(payload).map_err(decode)?,
                n => {
                    let mut newer = Vec::with_capacity(payload.len() + n);
                    newer.extend_from_slice(payload);
                    newer.resize(payload.len() + n, 0);
                    postcard::from_bytes(&newer).map_err(decode)?
                }
            },
        };
        let envelope = Self {
            event_id: head.event_id,
            schema_version: head.schema_version,
            origin: head.origin,
            seq: head.seq,
            occurred_at: head.occurred_at,
            correlation_id: head.correlation_id,
            causation_id: head.causation_id,
            event,
        };
        envelope.validate()?;
        Ok(envelope)
    }

    /// The JSON form served over HTTP and exported to Kafka.
    pub fn to_record(&self) -> Result<EventRecord, EventError> {
        Ok(EventRecord {
            event_id: self.event_id,
            topic: self.topic().to_string(),
            schema_version: self.schema_version,
            origin: self.origin.clone(),
            seq: self.seq,
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id,
            key: self.key(),
            payload: self.event.payload_json()?,
        })
    }

    /// Reads the JSON form back, validating it like a decoded envelope.
    pub fn from_record(record: &EventRecord) -> Result<Self, EventError> {
        let event = Event::from_json(&record.topic, record.payload.get())?;
        let envelope = Self {
            event_id: record.event_id,
            schema_version: record.schema_version,
            origin: record.origin.clone(),
            seq: record.seq,
            occurred_at: record.occurred_at,
            correlation_id: record.correlation_id.clone(),
            causation_id: record.causation_id,
            event,
        };
        envelope.validate()?;
        if envelope.key() != record.key {
            return Err(invalid(envelope.topic(), "key does not match the payload"));
        }
        Ok(envelope)
    }
}

/// An event as JSON: the envelope's fields and the FusionCommerce-shaped payload.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub event_id: EventId,
    pub topic: String,
    pub schema_version: u16,
    #[schema(value_type = String)]
    pub origin: NodeId,
    pub seq: u64,
    pub occurred_at: Timestamp,
    #[schema(value_type = String)]
    pub correlation_id: CorrelationId,
    pub causation_id: Option<Uuid>,
    pub key: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_created() -> Event {
        let usd = Currency::USD;
        Event::OrderCreated(OrderCreated {
            order_id: OrderId::from_u128(7),
            customer_id: CustomerId::new("c-1").unwrap(),
            items: vec![
                SoldItem {
                    sku: Sku::new("A").unwrap(),
                    quantity: 3,
                    price: Decimal::new(10, 2),
                    category: None,
                    list_price: Some(Decimal::new(15, 2)),
                    price_override: Some(PriceOverride {
                        approved_by: "token:m".into(),
                        reason: Some("damaged".into()),
                    }),
                    tax_class: "standard".into(),
                    adjustments: vec![],
                    net: Decimal::new(30, 2),
                    tax: Decimal::new(0, 2),
                    paid: Decimal::new(30, 2),
                },
                SoldItem {
                    sku: Sku::new("B").unwrap(),
                    quantity: 1,
                    price: Decimal::new(20, 2),
                    category: Some("food".into()),
                    list_price: Some(Decimal::new(20, 2)),
                    price_override: None,
                    tax_class: "standard".into(),
                    adjustments: vec![],
                    net: Decimal::new(20, 2),
                    tax: Decimal::new(0, 2),
                    paid: Decimal::new(20, 2),
                },
            ],
            total: Money {
                minor: 50,
                currency: usd,
            }
            .to_decimal(),
            currency: usd,
            status: OrderStatus::Created,
            created_at: Timestamp::from_unix_ms(1),
            shipping_address: None,
            hold_until: None,
            subtotal: Decimal::new(50, 2),
            taxes: Vec::new(),
            tax_included: false,
            discount_total: Decimal::new(0, 2),
            promotions: Vec::new(),
            discount: None,
            staff: None,
        })
    }

    fn v2_lines(items: &[SoldItem]) -> Vec<SoldItemV2> {
        items
            .iter()
            .map(|i| SoldItemV2 {
                sku: i.sku.clone(),
                quantity: i.quantity,
                price: i.price,
                category: i.category.clone(),
                list_price: i.list_price,
                price_override: i.price_override.clone(),
            })
            .collect()
    }

    fn envelope(event: Event) -> Result<Envelope, EventError> {
        Envelope::new(
            EventId::from_u128(1),
            NodeId::new("node-a").unwrap(),
            1,
            Timestamp::from_unix_ms(1),
            CorrelationId::new("corr").unwrap(),
            None,
            event,
        )
    }

    /// An `order.created` the log holds from schema 1 (lines without list price or override)
    /// decodes as schema 2, and stays schema 1 in its envelope.
    #[test]
    fn a_schema_1_order_decodes() {
        #[derive(Serialize)]
        enum EventV1 {
            _ProductCreated(()),
            _ProductUpdated(()),
            _ProductArchived(()),
            _StockAdjusted(()),
            OrderCreated(Box<OrderCreatedV1>),
        }
        #[derive(Serialize)]
        enum EventV2 {
            _ProductCreated(()),
            _ProductUpdated(()),
            _ProductArchived(()),
            _StockAdjusted(()),
            OrderCreated(Box<OrderCreatedV2>),
        }
        #[derive(Serialize)]
        struct EnvelopeV1 {
            event_id: EventId,
            schema_version: u16,
            origin: NodeId,
            seq: u64,
            occurred_at: Timestamp,
            correlation_id: CorrelationId,
            causation_id: Option<Uuid>,
            event: EventV1,
        }
        let Event::OrderCreated(now) = order_created() else {
            unreachable!()
        };
        let v1 = OrderCreatedV1 {
            order_id: now.order_id,
            customer_id: now.customer_id.clone(),
            items: now.items.iter().cloned().map(OrderItem::from).collect(),
            total: now.total,
            currency: now.currency,
            status: now.status,
            created_at: now.created_at,
            shipping_address: None,
            hold_until: None,
        };
        let encode = |schema_version| {
            postcard::to_allocvec(&EnvelopeV1 {
                event_id: EventId::from_u128(1),
                schema_version,
                origin: NodeId::new("node-a").unwrap(),
                seq: 1,
                occurred_at: Timestamp::from_unix_ms(1),
                correlation_id: CorrelationId::new("corr").unwrap(),
                causation_id: None,
                event: EventV1::OrderCreated(Box::new(v1.clone())),
            })
            .unwrap()
        };
        let bytes = encode(1);
        let decoded = Envelope::decode(&bytes).unwrap();
        assert_eq!(decoded.schema_version, 1);
        let Event::OrderCreated(old) = &decoded.event else {
            panic!("{decoded:?}")
        };
        assert_eq!(old.items.len(), 2);
        assert!(
            old.items
                .iter()
                .all(|i| i.list_price.is_none() && i.price_override.is_none())
        );
        assert_eq!(old.items[0].price, now.items[0].price);
        // The same bytes read as schema 2 do not decode: the version decides the layout.
        assert!(Envelope::decode(&encode(2)).is_err());
        // Schema 2 (lines with list price and override, no taxes): no tax, subtotal = total.
        let v2 = OrderCreatedV2 {
            order_id: now.order_id,
            customer_id: now.customer_id.clone(),
            items: v2_lines(&now.items),
            total: now.total,
            currency: now.currency,
            status: now.status,
            created_at: now.created_at,
            shipping_address: None,
            hold_until: None,
        };
        let bytes = postcard::to_allocvec(&(
            EventId::from_u128(2),
            2u16,
            NodeId::new("node-a").unwrap(),
            2u64,
            Timestamp::from_unix_ms(1),
            CorrelationId::new("corr").unwrap(),
            None::<Uuid>,
            EventV2::OrderCreated(Box::new(v2)),
        ))
        .unwrap();
        let decoded = Envelope::decode(&bytes).unwrap();
        let Event::OrderCreated(v2) = &decoded.event else {
            panic!("{decoded:?}")
        };
        assert_eq!(v2.items, now.items);
        assert_eq!((v2.subtotal, v2.total), (now.total, now.total));
        assert!(v2.taxes.is_empty() && !v2.tax_included);
    }

    /// Schema 3 (taxed, lines without tax class or amounts): each line gets its share of the
    /// order's tax, and what it paid.
    #[test]
    fn a_schema_3_order_decodes_with_each_lines_share_of_the_tax() {
        #[derive(Serialize)]
        enum EventV3 {
            _ProductCreated(()),
            _ProductUpdated(()),
            _ProductArchived(()),
            _StockAdjusted(()),
            OrderCreated(Box<OrderCreatedV3>),
        }
        let Event::OrderCreated(now) = order_created() else {
            unreachable!()
        };
        let v3 = OrderCreatedV3 {
            order_id: now.order_id,
            customer_id: now.customer_id.clone(),
            items: v2_lines(&now.items),
            total: Decimal::new(60, 2),
            currency: now.currency,
            status: now.status,
            created_at: now.created_at,
            shipping_address: None,
            hold_until: None,
            subtotal: Decimal::new(50, 2),
            taxes: vec![OrderTax {
                class: "standard".into(),
                rate: Decimal::new(20, 0),
                base: Decimal::new(50, 2),
                tax: Decimal::new(10, 2),
            }],
            tax_included: false,
        };
        let bytes = postcard::to_allocvec(&(
            EventId::from_u128(3),
            3u16,
            NodeId::new("node-a").unwrap(),
            3u64,
            Timestamp::from_unix_ms(1),
            CorrelationId::new("corr").unwrap(),
            None::<Uuid>,
            EventV3::OrderCreated(Box::new(v3)),
        ))
        .unwrap();
        let decoded = Envelope::decode(&bytes).unwrap();
        assert_eq!(decoded.schema_version, 3);
        let Event::OrderCreated(v3) = &decoded.event else {
            panic!("{decoded:?}")
        };
        let shares: Vec<(String, String)> = v3
            .items
            .iter()
            .map(|i| (i.tax.to_string(), i.paid.to_string()))
            .collect();
        assert_eq!(
            shares,
            [
                ("0.06".into(), "0.36".into()),
                ("0.04".into(), "0.24".into())
            ]
        );
        assert_eq!(v3.total, Decimal::new(60, 2));
    }

    /// A payload written before its topic appended an optional field (order.created 4, before
    /// `staff`) is read with the field absent; the newer layout round-trips it.
    #[test]
    fn payloads_before_an_appended_field_decode_without_it() {
        let mut envelope = Envelope::new(
            EventId::from_u128(1),
            NodeId::new("node-a").unwrap(),
            1,
            Timestamp::from_unix_ms(1),
            CorrelationId::new("corr").unwrap(),
            None,
            order_created(),
        )
        .unwrap();
        envelope.schema_version = 4;
        let mut bytes = envelope.encode();
        assert_eq!(bytes.pop(), Some(0), "staff: None is the last byte");
        assert_eq!(Envelope::decode(&bytes).unwrap(), envelope);
        // At schema 5 the same bytes lack a field: refused, not misread.
        envelope.schema_version = 5;
        let mut short = envelope.encode();
        short.pop();
        assert!(Envelope::decode(&short).is_err());
        envelope.schema_version = 4;

        let Event::OrderCreated(mut created) = order_created() else {
            unreachable!()
        };
        created.staff = Some(crate::StaffId::new("ana").unwrap());
        envelope.event = created.into();
        envelope.schema_version = 5;
        assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), envelope);
    }

    /// Schema 4: a line's net is its price × quantity less its adjustments, the promotions
    /// and the order discount add up from the lines, and the total is what the lines paid.
    #[test]
    fn adjustments_must_add_up() {
        let Event::OrderCreated(mut created) = order_created() else {
            unreachable!()
        };
        let promo = crate::PromotionId::from_u128(9);
        created.items[1].adjustments = vec![
            Adjustment {
                kind: AdjustmentKind::Promotion,
                amount: Decimal::new(5, 2),
                promotion_id: Some(promo),
                reason: None,
                approved_by: None,
            },
            Adjustment {
                kind: AdjustmentKind::OrderDiscount,
                amount: Decimal::new(1, 2),
                promotion_id: None,
                reason: Some("loyal".into()),
                approved_by: None,
            },
        ];
        created.items[1].net = Decimal::new(14, 2);
        created.items[1].paid = Decimal::new(14, 2);
        created.total = Decimal::new(44, 2);
        created.discount_total = Decimal::new(6, 2);
        created.promotions = vec![AppliedPromotion {
            promotion_id: promo,
            name: "Spring".into(),
            amount: Decimal::new(5, 2),
        }];
        created.discount = Some(Box::new(OrderDiscount {
            amount: Decimal::new(1, 2),
            reason: Some("loyal".into()),
            approved_by: None,
        }));
        assert!(envelope(Event::OrderCreated(created.clone())).is_ok());
        type Breaks = Box<dyn Fn(&mut OrderCreated)>;
        let broken: Vec<(&str, Breaks)> = vec![
            ("net", Box::new(|c| c.items[1].net = Decimal::new(15, 2))),
            ("paid", Box::new(|c| c.items[1].paid = Decimal::new(15, 2))),
            ("total", Box::new(|c| c.total = Decimal::new(50, 2))),
            (
                "discountTotal",
                Box::new(|c| c.discount_total = Decimal::new(5, 2)),
            ),
            (
                "promotion amount",
                Box::new(|c| c.promotions[0].amount = Decimal::new(4, 2)),
            ),
            ("promotion missing", Box::new(|c| c.promotions.clear())),
            ("order discount", Box::new(|c| c.discount = None)),
            (
                "negative adjustment",
                Box::new(|c| c.items[1].adjustments[1].amount = Decimal::new(-1, 2)),
            ),
            (
                "tax without taxes",
                Box::new(|c| c.items[0].tax = Decimal::new(1, 2)),
            ),
            (
                "bad class",
                Box::new(|c| c.items[0].tax_class = "Not A Class".into()),
            ),
        ];
        for (name, breaks) in broken {
            let mut bad = created.clone();
            breaks(&mut bad);
            assert!(envelope(Event::OrderCreated(bad)).is_err(), "{name}");
        }
    }

    /// A line priced otherwise than its list price carries its override; one at its list
    /// price carries none.
    #[test]
    fn an_override_goes_with_a_price_other_than_the_list_price() {
        let Event::OrderCreated(mut created) = order_created() else {
            unreachable!()
        };
        assert!(envelope(Event::OrderCreated(created.clone())).is_ok());
        created.items[0].price_override = None;
        assert!(envelope(Event::OrderCreated(created.clone())).is_err());
        created.items[1].price_override = Some(PriceOverride {
            approved_by: "token:m".into(),
            reason: None,
        });
        created.items[0] = created.items[1].clone();
        created.total = Decimal::new(40, 2);
        assert!(envelope(Event::OrderCreated(created)).is_err());
    }

    #[test]
    fn envelope_round_trips_through_postcard_and_json() {
        let e = envelope(order_created()).unwrap();
        assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        let record = e.to_record().unwrap();
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#""topic":"order.created""#), "{json}");
        assert!(json.contains(r#""total":0.50"#), "{json}");
        assert!(
            json.contains(r#""orderId":"00000000-0000-0000-0000-000000000007""#),
            "{json}"
        );
        let back: EventRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(Envelope::from_record(&back).unwrap(), e);
    }

    #[test]
    fn invalid_events_are_refused_when_built() {
        let Event::OrderCreated(mut bad) = order_created() else {
            unreachable!()
        };
        bad.total = Decimal::new(51, 2);
        let err = envelope(bad.clone().into()).unwrap_err();
        assert!(
            err.to_string()
                .contains("total must be the sum of the lines' paid"),
            "{err}"
        );
        // Taxed: exclusive adds each line's tax to what it paid, inclusive holds it; a rate's
        // base and tax are its lines'.
        let tax = |base, tax| OrderTax {
            class: "standard".into(),
            rate: Decimal::new(20, 0),
            base: Decimal::new(base, 2),
            tax: Decimal::new(tax, 2),
        };
        let lines = |c: &mut OrderCreated, taxes: [i64; 2], paid: [i64; 2]| {
            for (i, item) in c.items.iter_mut().enumerate() {
                item.tax = Decimal::new(taxes[i], 2);
                item.paid = Decimal::new(paid[i], 2);
            }
        };
        let mut taxed = bad.clone();
        taxed.taxes = vec![tax(50, 10)];
        lines(&mut taxed, [6, 4], [36, 24]);
        taxed.total = Decimal::new(60, 2);
        assert!(envelope(taxed.clone().into()).is_ok());
        taxed.tax_included = true;
        assert!(
            envelope(taxed.clone().into()).is_err(),
            "inclusive: a line pays its net"
        );
        taxed.taxes = vec![tax(42, 8)];
        lines(&mut taxed, [5, 3], [30, 20]);
        taxed.total = Decimal::new(50, 2);
        assert!(envelope(taxed.clone().into()).is_ok());
        taxed.taxes = vec![tax(40, 8)];
        let err = envelope(taxed.into()).unwrap_err();
        assert!(err.to_string().contains("base and tax must be"), "{err}");
        let err = envelope(Event::StockAdjusted(StockAdjusted {
            sku: Sku::new("A").unwrap(),
            previous_quantity: 1,
            quantity: 5,
            delta: 1,
            reason: "count".into(),
        }))
        .unwrap_err();
        assert!(
            err.to_string().contains("previousQuantity + delta"),
            "{err}"
        );
    }

    #[test]
    fn invalid_events_are_refused_when_decoded() {
        let mut e = envelope(order_created()).unwrap();
        e.seq = 0;
        let bytes = postcard::to_allocvec(&e).unwrap();
        assert!(Envelope::decode(&bytes).is_err());
        e.seq = 1;
        e.schema_version = 99;
        let bytes = postcard::to_allocvec(&e).unwrap();
        assert!(matches!(
            Envelope::decode(&bytes),
            Err(EventError::UnknownSchemaVersion { .. })
        ));
        assert!(Envelope::decode(&[0xff; 10]).is_err());
        assert!(Envelope::decode(&[]).is_err());
    }

    #[test]
    fn every_topic_has_a_schema_and_a_version() {
        let schemas = Event::payload_schemas();
        assert_eq!(schemas.len(), Event::TOPICS.len());
        for topic in Event::TOPICS {
            // order.created 2: lines carry their list price and override; 3: taxes; 4: tax
            // classes, adjustments and each line's amounts; 5: staff. product.* 2: tax class,
            // category. order.returned and payment.created 2: staff. session.closed 2:
            // reprints.
            let version = match *topic {
                "order.created" => 5,
                "order.returned" | "payment.created" | "session.closed" => 2,
                "product.created" | "product.updated" => 2,
                _ => 1,
            };
            assert_eq!(Event::known_schema_version(topic), Some(version), "{topic}");
        }
    }
}
