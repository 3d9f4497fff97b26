//! Return event payloads (issue 17, part 5): `order.returned` (units of a paid order's lines
//! taken back and refunded), and the right to take an order's returns moving between the tills
//! of its store (`order.return_rights_requested`, `order.return_rights_transferred`).
//!
//! **Only the holder of an order's return rights records its returns**, so the holder's view
//! of what was returned is complete and no unit is refunded twice, whatever the partitions
//! (`fusion_rules::returns`). The rights start with the till that sold the order and move only
//! by the holder's `order.return_rights_transferred`, which carries what was returned so far.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::payments::Tender;
use super::{EventError, check_amount, invalid};
use crate::ids::{NodeId, OrderId, PaymentId};
use crate::money::{Currency, Decimal, Money};
use crate::time::Timestamp;

/// Where a return's money goes. (Externally tagged — `"cash"`, `{"storeCredit": {"account":
/// "…"}}` — as postcard needs; requests say it as `{"kind": …}`, `http::RefundToRequest`.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RefundTo {
    /// Cash from the drawer of the till that took the return.
    Cash,
    /// Store credit on an account (issued in the same commit).
    StoreCredit { account: String },
    /// Shared out: to the order's own payments (`refundTo: original`), and in an exchange
    /// first to the new order. The parts add up to the refund.
    Split { parts: Vec<RefundPart> },
}

/// Part of a return's refund and where it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundPart {
    pub to: RefundPartTo,
    pub amount: Decimal,
}

/// Where a [`RefundPart`] went (externally tagged, as [`RefundTo`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RefundPartTo {
    Cash,
    StoreCredit {
        account: String,
    },
    /// Back to one of the order's payments: cash and store credit in the same commit
    /// (`payment.refunded`), a card through the provider right after it (owed until then).
    #[serde(rename_all = "camelCase")]
    Payment {
        #[schema(value_type = String)]
        payment_id: PaymentId,
        tender: Tender,
    },
    /// An exchange: paid towards the new order (through the store-credit account
    /// [`exchange_account`] of the return, credited and debited in the same commit).
    #[serde(rename_all = "camelCase")]
    Order {
        #[schema(value_type = String)]
        order_id: OrderId,
    },
}

/// The store-credit account through which an exchange pays its new order.
pub fn exchange_account(return_id: Uuid) -> String {
    format!("exchange-{return_id}")
}

/// Most parts a refund is split into.
pub const REFUND_PARTS_MAX: usize = 20;

/// Units of one line of the order taken back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnedLine {
    /// The line's index in the order's `items`.
    pub line: u32,
    #[schema(value_type = String)]
    pub sku: crate::Sku,
    pub quantity: u64,
    /// What these units paid, back to the customer: the line's share of its `paid`.
    pub refund: Decimal,
}

/// `order.returned`: units of a paid order taken back by the holder of its return rights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderReturned {
    pub return_id: Uuid,
    pub order_id: OrderId,
    pub lines: Vec<ReturnedLine>,
    /// Σ of the lines' refunds.
    pub refund: Decimal,
    pub currency: Currency,
    pub refund_to: RefundTo,
    /// The units go back to this till's stock (`inventory.adjusted`, reason `return`).
    pub restock: bool,
    /// Who approved a return above the store's `returnApprovalAmount`.
    pub approved_by: Option<String>,
    pub reason: Option<String>,
    pub returned_at: Timestamp,
    /// The staff member who took it back (schema 2); absent for a token alone. Keep last.
    #[serde(default)]
    pub staff: Option<crate::StaffId>,
}

/// `order.return_rights_requested`: a till of the store asks the holder for an order's
/// return rights (a customer is at its counter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnRightsRequested {
    pub order_id: OrderId,
    /// The till believed to hold them.
    #[schemars(with = "String")]
    pub holder: NodeId,
}

/// `order.return_rights_transferred`: the holder gives an order's return rights to `to`, with
/// how many units of each line were returned so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnRightsTransferred {
    pub order_id: OrderId,
    #[schemars(with = "String")]
    pub to: NodeId,
    /// Units returned of each line, in the order's line order.
    pub returned: Vec<u64>,
}

/// Longest store-credit account name in a refund.
const ACCOUNT_LEN_MAX: usize = 100;

impl OrderReturned {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "order.returned";
        if self.lines.is_empty() || self.lines.len() > crate::commands::ORDER_LINES_MAX {
            return Err(invalid(T, "lines must hold 1 to 200 lines"));
        }
        let mut sum = Money::zero(self.currency);
        let mut seen = std::collections::BTreeSet::new();
        for l in &self.lines {
            if l.quantity == 0 || l.quantity > crate::commands::QUANTITY_MAX {
                return Err(invalid(T, "every quantity must be at least 1"));
            }
            if !seen.insert(l.line) {
                return Err(invalid(T, "a line is named once"));
            }
            let refund = check_amount(T, "refund", l.refund, self.currency)?;
            sum = sum
                .checked_add(refund)
                .ok_or_else(|| invalid(T, "refunds overflow"))?;
        }
        if check_amount(T, "refund", self.refund, self.currency)? != sum {
            return Err(invalid(T, "refund must be the sum of the lines' refunds"));
        }
        let account_ok = |a: &str| !a.trim().is_empty() && a.chars().count() <= ACCOUNT_LEN_MAX;
        match &self.refund_to {
            RefundTo::Cash => {}
            RefundTo::StoreCredit { account } if account_ok(account) => {}
            RefundTo::StoreCredit { .. } => {
                return Err(invalid(
                    T,
                    "a store-credit account must be 1 to 100 characters",
                ));
            }
            RefundTo::Split { parts } => {
                if parts.is_empty() || parts.len() > REFUND_PARTS_MAX {
                    return Err(invalid(T, "a split refund has 1 to 20 parts"));
                }
                let mut shared = Money::zero(self.currency);
                for part in parts {
                    let amount =
                        check_amount(T, "refundTo.parts.amount", part.amount, self.currency)?;
                    if amount.minor == 0 {
                        return Err(invalid(T, "every part of a split refund is positive"));
                    }
                    if let RefundPartTo::StoreCredit { account } = &part.to
                        && !account_ok(account)
                    {
                        return Err(invalid(
                            T,
                            "a store-credit account must be 1 to 100 characters",
                        ));
                    }
                    shared = shared
                        .checked_add(amount)
                        .ok_or_else(|| invalid(T, "refund parts overflow"))?;
                }
                if shared != sum {
                    return Err(invalid(T, "a split refund's parts add up to the refund"));
                }
                if parts
                    .iter()
                    .filter(|p| matches!(p.to, RefundPartTo::Order { .. }))
                    .count()
                    > 1
                {
                    return Err(invalid(T, "an exchange pays one new order"));
                }
            }
        }
        Ok(())
    }
}

impl ReturnRightsRequested {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        Ok(())
    }
}

impl ReturnRightsTransferred {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        if self.returned.len() > crate::commands::ORDER_LINES_MAX {
            return Err(invalid(
                "order.return_rights_transferred",
                "returned names at most 200 lines",
            ));
        }
        Ok(())
    }
}
