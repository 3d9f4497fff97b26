//! Cash-drawer session payloads (issue 18, parts 2 and 3): `session.opened` (a till's drawer
//! opened with a float), `session.cash_moved` (paid in, paid out, a no-sale), and
//! `session.closed` (the count, the variance and the Z report).
//!
//! **Z numbers are gap-free per till**: `session.closed` is numbered one past the till's last
//! Z in the transaction that records the count, and every receiver refuses a Z that is not its
//! till's next (`fusion_rules::drawer`). A Z report is immutable: it is the event, and events
//! are never changed. Its totals are those of the till's own log from `fromSeq` to `toSeq`,
//! so anyone holding that log can fold them again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::payments::Tender;
use super::{EventError, check_amount, invalid};
use crate::StaffId;
use crate::ids::{NodeId, PaymentId};
use crate::money::{Currency, Decimal, Money};
use crate::time::Timestamp;

/// Longest reason of a paid-in, paid-out or no-sale.
pub const CASH_REASON_LEN_MAX: usize = 200;
/// Most denominations a count may list.
pub const DENOMINATIONS_MAX: usize = 40;
/// Most offline card approvals a close carries over.
pub const OFFLINE_PENDING_MAX: usize = 10_000;

/// `session.opened`: a till's drawer opened with a float.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOpened {
    pub session_id: Uuid,
    #[schemars(with = "String")]
    pub till: NodeId,
    /// The cash in the drawer at the start.
    pub float: Decimal,
    pub currency: Currency,
    pub staff: Option<StaffId>,
    pub opened_at: Timestamp,
    /// The first event of the till's log the session's report covers: the one after the
    /// till's last Z (sales made while no drawer was open count in the next Z).
    pub from_seq: u64,
}

/// What moved cash in or out of a drawer other than a sale or a refund.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CashMove {
    /// Cash put in (change from the safe, …).
    PaidIn,
    /// Cash taken out (a delivery paid, a drop to the safe, …).
    PaidOut,
    /// The drawer opened without a sale (a manager approves it).
    NoSale,
}

/// `session.cash_moved`: a paid-in, paid-out or no-sale in an open session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCashMoved {
    pub session_id: Uuid,
    #[schemars(with = "String")]
    pub till: NodeId,
    pub kind: CashMove,
    /// 0 for a no-sale.
    pub amount: Decimal,
    pub currency: Currency,
    pub reason: String,
    pub staff: Option<StaffId>,
    /// Who approved it (a no-sale: a manager, `staff:<id>` or `token:<id>`).
    pub approved_by: Option<String>,
    pub at: Timestamp,
}

/// A count of one denomination (a note or coin of `value`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Denomination {
    #[schema(value_type = f64)]
    pub value: Decimal,
    pub count: u64,
}

/// One tender's money in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenderTotal {
    pub tender: Tender,
    /// Payments taken.
    pub count: u64,
    /// What they paid towards orders (cash: net of change).
    #[schema(value_type = f64)]
    pub taken: Decimal,
    /// What was refunded to this tender.
    #[schema(value_type = f64)]
    pub refunded: Decimal,
}

/// One tax rate's total over a report's sales.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxTotal {
    pub class: String,
    /// Percent.
    #[schema(value_type = f64)]
    pub rate: Decimal,
    #[schema(value_type = f64)]
    pub base: Decimal,
    #[schema(value_type = f64)]
    pub tax: Decimal,
}

/// One staff member's part of a report (`staff` absent: a token alone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaffTotal {
    #[schema(value_type = Option<String>)]
    pub staff: Option<StaffId>,
    pub sales: u64,
    #[schema(value_type = f64)]
    pub sales_total: Decimal,
    pub returns: u64,
    #[schema(value_type = f64)]
    pub refunds: Decimal,
    pub no_sales: u64,
}

/// A report's totals: what the till's log holds from the session's `fromSeq` on, in the
/// session's currency (`otherCurrency` counts what was in another).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionTotals {
    /// Orders paid.
    pub sales: u64,
    /// What they came to.
    #[schema(value_type = f64)]
    pub sales_total: Decimal,
    /// Orders paid while no drawer session was open (counted here, in the next Z).
    pub outside_session: u64,
    pub tenders: Vec<TenderTotal>,
    /// Cash handed over by customers (before change).
    #[schema(value_type = f64)]
    pub cash_tendered: Decimal,
    #[schema(value_type = f64)]
    pub change_given: Decimal,
    /// Cash paid back from the drawer (returns, refunds, cancelled orders).
    #[schema(value_type = f64)]
    pub cash_refunds: Decimal,
    #[schema(value_type = f64)]
    pub paid_in: Decimal,
    #[schema(value_type = f64)]
    pub paid_out: Decimal,
    pub no_sales: u64,
    /// The tax of the paid orders, by rate.
    pub taxes: Vec<TaxTotal>,
    /// What discounts (line and order) took off the paid orders.
    #[schema(value_type = f64)]
    pub discounts: Decimal,
    /// What promotions took off the paid orders.
    #[schema(value_type = f64)]
    pub promotions: Decimal,
    pub returns: u64,
    #[schema(value_type = f64)]
    pub refunds: Decimal,
    /// Orders cancelled.
    pub voids: u64,
    #[schema(value_type = f64)]
    pub voids_total: Decimal,
    pub staff: Vec<StaffTotal>,
    /// Payments, refunds and cash moves in another currency than the session's (not in
    /// the amounts).
    pub other_currency: u64,
}

/// `session.closed`: the drawer counted and closed; the Z report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionClosed {
    pub session_id: Uuid,
    #[schemars(with = "String")]
    pub till: NodeId,
    /// The Z number: 1, 2, 3, … at this till.
    pub z: u64,
    pub currency: Currency,
    pub float: Decimal,
    /// Float + cash tendered − change + paid in − paid out − cash refunds.
    pub expected: Decimal,
    pub counted: Decimal,
    /// Counted − expected: negative when the drawer is short.
    pub variance: Decimal,
    /// The count by denomination, when it was given so.
    pub denominations: Vec<Denomination>,
    /// Boxed: the largest part of the event.
    pub totals: Box<SessionTotals>,
    pub opened_at: Timestamp,
    pub opened_by: Option<StaffId>,
    pub closed_at: Timestamp,
    /// Who counted it.
    pub staff: Option<StaffId>,
    /// The report covers the till's log from `fromSeq` to `toSeq` (the events before this one).
    pub from_seq: u64,
    pub to_seq: u64,
    /// Card payments approved offline and not settled by the provider at the close (counted
    /// as taken here; their capture will not be counted again).
    #[schemars(with = "Vec<String>")]
    pub offline_pending: Vec<PaymentId>,
    /// Receipts printed again (DUPLICATE) in the report's range (schema 2; absent before).
    /// Keep last: older payloads are read by appending it (`APPENDED_OPTIONS`).
    #[serde(default)]
    pub reprints: Option<u64>,
}

fn check_till_money(
    topic: &'static str,
    field: &str,
    amount: Decimal,
    currency: Currency,
) -> Result<Money, EventError> {
    Money::from_decimal(amount, currency).map_err(|e| invalid(topic, format!("{field} {e}")))
}

impl SessionOpened {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "session.opened";
        check_amount(T, "float", self.float, self.currency)?;
        if self.from_seq == 0 {
            return Err(invalid(T, "fromSeq starts at 1"));
        }
        Ok(())
    }
}

impl SessionCashMoved {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "session.cash_moved";
        let amount = check_amount(T, "amount", self.amount, self.currency)?;
        match (self.kind, amount.minor) {
            (CashMove::NoSale, 0) => {}
            (CashMove::NoSale, _) => return Err(invalid(T, "a no-sale moves no cash")),
            (_, 0) => return Err(invalid(T, "a paid-in or paid-out moves some cash")),
            _ => {}
        }
        if self.reason.trim().is_empty() || self.reason.chars().count() > CASH_REASON_LEN_MAX {
            return Err(invalid(T, "reason must be 1 to 200 characters"));
        }
        Ok(())
    }
}

impl SessionClosed {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "session.closed";
        if self.z == 0 {
            return Err(invalid(T, "Z numbers start at 1"));
        }
        check_amount(T, "float", self.float, self.currency)?;
        let counted = check_amount(T, "counted", self.counted, self.currency)?;
        let expected = check_till_money(T, "expected", self.expected, self.currency)?;
        let variance = check_till_money(T, "variance", self.variance, self.currency)?;
        if counted.minor.checked_sub(expected.minor) != Some(variance.minor) {
            return Err(invalid(T, "variance must be counted − expected"));
        }
        if self.denominations.len() > DENOMINATIONS_MAX {
            return Err(invalid(T, "at most 40 denominations"));
        }
        if self.offline_pending.len() > OFFLINE_PENDING_MAX {
            return Err(invalid(T, "at most 10000 offline payments pending"));
        }
        if self.from_seq == 0 || self.to_seq < self.from_seq.saturating_sub(1) {
            return Err(invalid(T, "the report covers fromSeq to toSeq"));
        }
        Ok(())
    }
}
