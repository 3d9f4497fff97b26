//! Payment event payloads: FusionCommerce's `payment.*` topics (its `{paymentId, orderId}` and
//! `{paymentId, orderId, reason}` fields, and more), plus `order.paid`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{EventError, check_amount, invalid};
use crate::ids::{OrderId, PaymentId};
use crate::money::{Currency, Decimal};
use crate::time::Timestamp;

/// How a payment is made, chosen by FusionCommerce's `paymentMethodId`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tender {
    /// `paymentMethodId: "cash"`: captured at once; change due is recorded.
    Cash,
    /// `paymentMethodId: "pm_…"`: a card, through the card provider.
    Card,
    /// `paymentMethodId: "store_credit:<account>"`: debited from the account at once.
    StoreCredit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Recorded; the provider has not answered yet.
    Pending,
    /// The provider holds the amount; capture takes it.
    Authorized,
    Captured,
    Failed,
    Voided,
    PartiallyRefunded,
    Refunded,
    /// The provider was unreachable; approved on the till up to the floor limit, to be forwarded.
    OfflineApproved,
}

/// `payment.created`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreated {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Decimal,
    pub currency: Currency,
    pub tender: Tender,
    /// The card's payment method id, or `cash`.
    pub payment_method_id: String,
    /// Cash handed over (≥ amount); absent for cards.
    pub tendered: Option<Decimal>,
    /// Cards: take the money at once (else only authorize it).
    pub capture: bool,
    pub status: PaymentStatus,
    pub created_at: Timestamp,
    /// The staff member who took it (schema 2); absent for a token alone. Keep last.
    #[serde(default)]
    pub staff: Option<crate::StaffId>,
}

/// `payment.authorized`: the provider holds the amount.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAuthorized {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Decimal,
    pub currency: Currency,
    /// The provider's reference (a Stripe PaymentIntent id).
    pub provider_ref: Option<String>,
}

/// `payment.succeeded`: money taken (captured). FusionCommerce's `{paymentId, orderId}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSucceeded {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    /// Captured by this event.
    pub amount: Decimal,
    pub currency: Currency,
    /// Cash only: tendered − amount.
    pub change_due: Option<Decimal>,
    pub provider_ref: Option<String>,
}

/// `payment.failed`: FusionCommerce's `{paymentId, orderId, reason}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub reason: String,
}

/// `payment.refunded`: part or all of what was captured went back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    /// Refunded by this event.
    pub amount: Decimal,
    /// Refunded so far, this event included.
    pub refunded_total: Decimal,
    pub currency: Currency,
    pub status: PaymentStatus,
    pub provider_ref: Option<String>,
}

/// `payment.offline_approved`: the card provider could not be reached and the amount is within
/// the per-transaction floor limit, so the till approved it; it is forwarded to the provider when
/// it is reachable again (`payment.succeeded`, or `payment.failed` and `order.flagged`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOfflineApproved {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Decimal,
    pub currency: Currency,
    pub floor_limit: Decimal,
    pub reason: String,
}

/// `payment.voided`: an authorization released (or an offline approval dropped) because its
/// order was cancelled; no money moved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentVoided {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub reason: String,
}

/// Longest store credit account name.
pub const CREDIT_ACCOUNT_LEN_MAX: usize = 64;

/// Whether `name` is a valid store credit account: 1–64 of `A-Z a-z 0-9 - _ .`.
pub fn credit_account_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= CREDIT_ACCOUNT_LEN_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `store-credit.changed`: an account's balance moved (issued, redeemed by a payment, refunded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreCreditChanged {
    pub account: String,
    /// Signed change of the balance.
    pub delta: Decimal,
    /// The balance afterwards, never negative.
    pub balance: Decimal,
    pub currency: Currency,
    pub reason: String,
    pub payment_id: Option<PaymentId>,
}

/// `order.flagged`: the order needs a person, e.g. an offline-approved card was declined later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderFlagged {
    pub order_id: OrderId,
    pub reason: String,
    pub payment_id: Option<PaymentId>,
}

/// `order.paid`: captured payments cover the order's total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPaid {
    pub order_id: OrderId,
    pub total: Decimal,
    pub paid: Decimal,
    pub currency: Currency,
    pub paid_at: Timestamp,
}

fn positive(
    topic: &'static str,
    field: &str,
    amount: Decimal,
    currency: Currency,
) -> Result<(), EventError> {
    if check_amount(topic, field, amount, currency)?.minor == 0 {
        return Err(invalid(topic, format!("{field} must be positive")));
    }
    Ok(())
}

impl PaymentCreated {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "payment.created";
        positive(T, "amount", self.amount, self.currency)?;
        if self.status != PaymentStatus::Pending {
            return Err(invalid(T, "a new payment is pending"));
        }
        if let Some(tendered) = self.tendered {
            let tendered = check_amount(T, "tendered", tendered, self.currency)?;
            if tendered.minor < check_amount(T, "amount", self.amount, self.currency)?.minor {
                return Err(invalid(T, "tendered must cover amount"));
            }
        }
        Ok(())
    }
}

impl PaymentAuthorized {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        positive("payment.authorized", "amount", self.amount, self.currency)
    }
}

impl PaymentSucceeded {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        positive("payment.succeeded", "amount", self.amount, self.currency)?;
        if let Some(change) = self.change_due {
            check_amount("payment.succeeded", "changeDue", change, self.currency)?;
        }
        Ok(())
    }
}

impl PaymentFailed {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        if self.reason.is_empty() {
            return Err(invalid("payment.failed", "reason must not be empty"));
        }
        Ok(())
    }
}

impl PaymentRefunded {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "payment.refunded";
        positive(T, "amount", self.amount, self.currency)?;
        let total = check_amount(T, "refundedTotal", self.refunded_total, self.currency)?;
        if total.minor < check_amount(T, "amount", self.amount, self.currency)?.minor {
            return Err(invalid(T, "refundedTotal includes amount"));
        }
        if !matches!(
            self.status,
            PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
        ) {
            return Err(invalid(T, "status must be refunded or partially_refunded"));
        }
        Ok(())
    }
}

/// `payment.offline_budget_set`: this till's share of its store's offline card budget (the
/// most it may have approved offline and not yet settled by the provider), recorded when the
/// till starts with a share different from the last one it recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineBudgetSet {
    pub share: Decimal,
    pub currency: Currency,
    /// The share recorded before, in the same currency (absent: none was).
    pub previous: Option<Decimal>,
}

/// `payment.offline_budget_transferred`: this till gave part of its unused offline card budget
/// to another till of its store; it counts for the receiver once it records the receipt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineBudgetTransferred {
    pub transfer_id: uuid::Uuid,
    /// The receiving till's node id.
    #[schemars(with = "String")]
    pub to: crate::NodeId,
    pub amount: Decimal,
    pub currency: Currency,
    /// This till's share before and after.
    pub previous_share: Decimal,
    pub share: Decimal,
}

/// `payment.offline_budget_received`: this till took in budget another till gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineBudgetReceived {
    pub transfer_id: uuid::Uuid,
    #[schemars(with = "String")]
    pub from: crate::NodeId,
    pub amount: Decimal,
    pub currency: Currency,
    pub previous_share: Decimal,
    pub share: Decimal,
}

/// `before ± amount = after`, in `currency`'s minor units.
fn check_move(
    topic: &'static str,
    amount: Decimal,
    before: Decimal,
    after: Decimal,
    currency: Currency,
    sign: i64,
) -> Result<(), EventError> {
    positive(topic, "amount", amount, currency)?;
    let minor = |field, d| check_amount(topic, field, d, currency).map(|m| m.minor);
    let (amount, before, after) = (
        minor("amount", amount)?,
        minor("previousShare", before)?,
        minor("share", after)?,
    );
    if before + sign * amount != after {
        return Err(invalid(
            topic,
            "share must equal previousShare moved by amount",
        ));
    }
    Ok(())
}

impl OfflineBudgetTransferred {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "payment.offline_budget_transferred";
        check_move(
            T,
            self.amount,
            self.previous_share,
            self.share,
            self.currency,
            -1,
        )
    }
}

impl OfflineBudgetReceived {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "payment.offline_budget_received";
        check_move(
            T,
            self.amount,
            self.previous_share,
            self.share,
            self.currency,
            1,
        )
    }
}

impl OfflineBudgetSet {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "payment.offline_budget_set";
        check_amount(T, "share", self.share, self.currency)?;
        if let Some(previous) = self.previous {
            check_amount(T, "previous", previous, self.currency)?;
        }
        Ok(())
    }
}

impl PaymentOfflineApproved {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "payment.offline_approved";
        positive(T, "amount", self.amount, self.currency)?;
        let limit = check_amount(T, "floorLimit", self.floor_limit, self.currency)?;
        if check_amount(T, "amount", self.amount, self.currency)?.minor > limit.minor {
            return Err(invalid(T, "amount must be within floorLimit"));
        }
        Ok(())
    }
}

impl PaymentVoided {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        if self.reason.is_empty() {
            return Err(invalid("payment.voided", "reason must not be empty"));
        }
        Ok(())
    }
}

impl StoreCreditChanged {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "store-credit.changed";
        if !credit_account_is_valid(&self.account) {
            return Err(invalid(T, "account must be 1 to 64 of A-Z a-z 0-9 - _ ."));
        }
        check_amount(T, "balance", self.balance, self.currency)?;
        if crate::money::Money::from_decimal(self.delta, self.currency).is_err()
            || self.delta.mantissa() == 0
        {
            return Err(invalid(
                T,
                "delta must be a non-zero amount of the currency",
            ));
        }
        Ok(())
    }
}

impl OrderFlagged {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        if self.reason.is_empty() {
            return Err(invalid("order.flagged", "reason must not be empty"));
        }
        Ok(())
    }
}

impl OrderPaid {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "order.paid";
        let total = check_amount(T, "total", self.total, self.currency)?;
        if check_amount(T, "paid", self.paid, self.currency)?.minor < total.minor {
            return Err(invalid(T, "paid must cover total"));
        }
        Ok(())
    }
}
