//! Commands: what a client asks a domain to do. Imperative names; each carries the ids it
//! creates, chosen by the edge, so the domain core stays pure and a retried command is the same
//! command. A command value is already validated field by field (see `http`); the domain core
//! checks the rules that need state (unique sku, enough stock).

use serde::{Deserialize, Serialize};

use crate::events::payments::Tender;
use crate::events::shipping::{Address, ShipmentStatus};
use crate::ids::{CampaignId, CustomerId, OrderId, PaymentId, ProductId, ShipmentId, Sku};
use crate::money::{Currency, Decimal, Money};
use crate::time::Timestamp;

/// Longest product name, in characters.
pub const PRODUCT_NAME_LEN_MAX: usize = 200;
/// Longest product description, in characters.
pub const PRODUCT_DESCRIPTION_LEN_MAX: usize = 4000;
/// Most lines in one order: bounds the work of one write and the size of one event.
pub const ORDER_LINES_MAX: usize = 200;
/// Largest quantity on one order line or stock change; far above any till sale.
pub const QUANTITY_MAX: u64 = 1_000_000_000;
/// Longest free-text reason (stock adjustments, cancellations), in characters.
pub const REASON_LEN_MAX: usize = 200;
/// Longest order line category, in characters.
pub const CATEGORY_LEN_MAX: usize = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CatalogCommand {
    CreateProduct(CreateProduct),
    UpdateProduct(UpdateProduct),
    ArchiveProduct(ArchiveProduct),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateProduct {
    pub product_id: ProductId,
    pub sku: Sku,
    pub name: String,
    pub description: Option<String>,
    pub price: Money,
    /// Seeds the stock level of `sku`.
    pub inventory: u64,
    /// `None`: `standard`.
    pub tax_class: Option<String>,
    pub category: Option<String>,
}

/// Changes the named fields; `None` leaves a field as it is. The price is a bare decimal
/// because whether its decimals fit depends on the product's currency, which the core knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateProduct {
    pub product_id: ProductId,
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub price: Option<Decimal>,
    pub currency: Option<Currency>,
    /// Skus are immutable: when given, it must equal the current one.
    pub sku: Option<Sku>,
    /// `Some(None)`: back to `standard`.
    pub tax_class: Option<Option<String>>,
    /// `Some(None)` clears the category.
    pub category: Option<Option<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveProduct {
    pub product_id: ProductId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InventoryCommand {
    SetStock(SetStock),
    AdjustStock(AdjustStock),
    /// Give stock rights to another till of the store (or the hub): see `docs/ESCROW.md`.
    TransferStock(TransferStock),
    /// Take in a transfer addressed to this node (the writer issues it when the transfer
    /// arrives from the peer's log).
    ReceiveStock(ReceiveStock),
}

/// Moves `quantity` of this node's available stock of `sku` to the holder `to`. The units are
/// in transit until `to` receives them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferStock {
    pub transfer_id: uuid::Uuid,
    pub sku: Sku,
    pub quantity: u64,
    pub to: crate::NodeId,
}

/// Adds a transfer addressed to this node to its available stock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiveStock {
    pub transfer_id: uuid::Uuid,
    pub sku: Sku,
    pub quantity: u64,
    pub from: crate::NodeId,
}

/// Sets the available quantity of a sku to an absolute value (a count).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetStock {
    pub sku: Sku,
    pub quantity: u64,
}

/// Adds a signed delta to the available quantity (delivery, damage, correction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdjustStock {
    pub sku: Sku,
    pub delta: i64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    PlaceOrder(PlaceOrder),
    CancelOrder(CancelOrder),
    /// Sent by the scheduler when an order's payment hold ends; a paid order is left alone.
    ExpireHold(ExpireHold),
    /// Take back units of a paid order (appended: idempotency records store the index).
    ReturnOrder(ReturnOrder),
    /// Give an order's return rights to the till that asked for them (a follow-up of its
    /// `order.return_rights_requested`).
    GiveReturnRights {
        order_id: OrderId,
        to: crate::NodeId,
    },
    /// A return and a new order in one transaction: what the returned units refund pays the
    /// new order first, the rest goes where the return says.
    Exchange(Box<Exchange>),
}

/// An exchange (`fusion_rules::returns::take_return` with the new order's total).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub take_back: ReturnOrder,
    /// The new order: the returned order's customer and currency.
    pub order: PlaceOrder,
    /// The payment of the new order by what the return refunds.
    pub payment_id: PaymentId,
}

/// Where a return's money goes, as asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundWhere {
    /// Cash from this till's drawer.
    Cash,
    StoreCredit {
        account: String,
    },
    /// Back to the order's payments: cards first, then store credit, then cash.
    Original,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpireHold {
    pub order_id: OrderId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub currency: Currency,
    /// At least one, at most [`ORDER_LINES_MAX`]; every price is in `currency`.
    pub lines: Vec<OrderLine>,
    /// Where to ship it; absent for a carry-out order (fulfilled when paid).
    pub shipping_address: Option<Address>,
    /// Who approved prices other than the catalog's in this order (a manager placing it, a
    /// manager's approval given at the till, a campaign's price), by
    /// `fusion_rules::authority::price_approver`; `None`: every line sells at the catalog price.
    /// The same approver approves discounts above the store's `discountApprovalPercent`.
    pub price_approver: Option<String>,
    /// A discount on the whole order, after the lines' promotions and discounts.
    pub discount: Option<crate::pricing::Discount>,
    /// The staff member signed in at the till who sells it.
    pub staff: Option<crate::StaffId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: u64,
    /// Unit price asked for; `None`: the catalog price this till holds. Another price than the
    /// catalog's is a price override and needs the order's `price_approver`.
    pub price: Option<Money>,
    pub category: Option<String>,
    /// Why the line is sold at another price than the catalog's.
    pub override_reason: Option<String>,
    /// A discount on the line, after its promotions.
    pub discount: Option<crate::pricing::Discount>,
}

/// Take back units of a paid order's lines (`fusion_rules::returns`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReturnOrder {
    pub return_id: uuid::Uuid,
    pub order_id: OrderId,
    /// (line index in the order's items, units), each line once.
    pub lines: Vec<(usize, u64)>,
    /// The units go back to this till's stock.
    pub restock: bool,
    pub refund_to: RefundWhere,
    pub reason: Option<String>,
    /// Who approves a return above the store's `returnApprovalAmount` (a manager).
    pub approver: Option<String>,
    /// The staff member signed in at the till who takes it back.
    pub staff: Option<crate::StaffId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelOrder {
    pub order_id: OrderId,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CampaignCommand {
    CreateCampaign(CreateCampaign),
    JoinCampaign(JoinCampaign),
    LeaveCampaign(LeaveCampaign),
    CancelCampaign(CancelCampaign),
    /// Sent by the scheduler at (or after) the campaign's end; closing twice does nothing.
    CloseCampaign(CloseCampaign),
    /// Give free seats to another holder (a till, maybe of another store, or the hub).
    TransferSeats(TransferSeats),
    /// Take in seats given to this till (the writer, with the events that brought them).
    ReceiveSeats(ReceiveSeats),
    /// The hub decided a shared campaign: settle this till's part (the writer, with the hub's
    /// log).
    SettleCampaign(SettleCampaign),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferSeats {
    pub campaign_id: CampaignId,
    pub transfer_id: uuid::Uuid,
    pub seats: u32,
    pub to: crate::NodeId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiveSeats {
    pub transfer_id: uuid::Uuid,
    pub seats: u32,
    pub from: crate::NodeId,
    /// The campaign as the giver knew it (the receiver may know nothing else of it).
    pub campaign: crate::events::campaigns::CampaignSnapshot,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettleCampaign {
    /// The campaign as the hub closed it (status closed or failed, every store's participants).
    pub decision: crate::events::campaigns::CampaignSnapshot,
}

/// Prices are bare decimals: whether their decimals fit depends on the product's currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateCampaign {
    pub campaign_id: CampaignId,
    pub product_id: ProductId,
    pub min_participants: u32,
    pub max_participants: u32,
    pub price: Decimal,
    pub original_price: Decimal,
    pub start_at: Timestamp,
    pub end_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinCampaign {
    pub campaign_id: CampaignId,
    pub user_id: CustomerId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaveCampaign {
    pub campaign_id: CampaignId,
    pub user_id: CustomerId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelCampaign {
    pub campaign_id: CampaignId,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloseCampaign {
    pub campaign_id: CampaignId,
}

/// Payments. A card payment takes two commands around the provider call, which happens outside
/// any transaction: `CreatePayment` records it pending, `RecordCardOutcome` records the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PaymentCommand {
    CreatePayment(CreatePayment),
    RecordCardOutcome(RecordCardOutcome),
    RecordCapture(RecordCapture),
    RecordRefund(RecordRefund),
    /// The provider could not be reached: approve within the floor limit or leave it pending.
    ApproveOffline(ApproveOffline),
    /// BR-007: a payment still pending after the timeout fails.
    ExpirePending(ExpirePending),
    /// The provider released an authorization of a cancelled order.
    RecordVoid(RecordVoid),
}

/// Adds to a store credit account (a gift card sold, a goodwill credit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueStoreCredit {
    pub account: String,
    pub amount: Money,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordVoid {
    pub payment_id: PaymentId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproveOffline {
    pub payment_id: PaymentId,
    pub floor_limit: Money,
    pub reason: String,
    /// This till's share of the store's offline card budget: card payments it approved
    /// offline and the provider has not settled may total at most this; `None`: no budget.
    #[serde(default)]
    pub budget: Option<Money>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpirePending {
    pub payment_id: PaymentId,
    /// Pending payments created at or before this instant fail.
    pub created_before: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatePayment {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Money,
    pub tender: Tender,
    /// `cash` or the card's `pm_…` id.
    pub payment_method_id: String,
    /// Cash handed over.
    pub tendered: Option<Money>,
    /// Cards: capture at once (else authorize only).
    pub capture: bool,
    /// The staff member signed in at the till who takes it.
    pub staff: Option<crate::StaffId>,
}

/// What the card provider answered to an authorization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CardOutcome {
    /// Held, to be captured later.
    Authorized {
        provider_ref: String,
    },
    /// Held and taken at once.
    Captured {
        provider_ref: String,
    },
    Declined {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordCardOutcome {
    pub payment_id: PaymentId,
    pub outcome: CardOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordCapture {
    pub payment_id: PaymentId,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordRefund {
    pub payment_id: PaymentId,
    pub amount: Money,
    pub provider_ref: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShipmentCommand {
    CreateShipment(CreateShipment),
    ChangeShipmentStatus(ChangeShipmentStatus),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateShipment {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub address: Address,
    pub weight_grams: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeShipmentStatus {
    pub shipment_id: ShipmentId,
    pub status: ShipmentStatus,
}

/// A till's cash drawer (issue 18, part 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SessionCommand {
    Open(OpenSession),
    MoveCash(MoveCash),
    Close(CloseSession),
}

/// Opens this till's drawer with a float.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenSession {
    pub session_id: uuid::Uuid,
    pub float: Money,
    pub staff: Option<crate::StaffId>,
}

/// A paid-in, paid-out or no-sale in the open session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoveCash {
    pub session_id: uuid::Uuid,
    pub kind: crate::events::CashMove,
    pub amount: Money,
    pub reason: String,
    pub staff: Option<crate::StaffId>,
    pub approved_by: Option<String>,
}

/// Counts and closes the open session: the Z report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloseSession {
    pub session_id: uuid::Uuid,
    pub counted: Money,
    pub denominations: Vec<crate::events::Denomination>,
    pub staff: Option<crate::StaffId>,
}
