//! Receipt event payloads (issue 18, part 4): `receipt.issued`, the receipt number a paid order
//! gets at its till.
//!
//! **Receipt numbers are gap-free per till**: `receipt.issued` is recorded in the transaction
//! that records `order.paid`, numbered one past the till's last, so a crash loses neither a
//! number nor a receipt and no number is used twice.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EventError, check_amount, invalid};
use crate::ids::{NodeId, OrderId};
use crate::money::{Currency, Decimal};
use crate::time::Timestamp;

/// `receipt.issued`: a paid order's receipt number at the till that sold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptIssued {
    /// `<till>-<number>`, what the receipt prints and a return names.
    pub receipt: String,
    /// 1, 2, 3, … at this till.
    pub number: u64,
    pub order_id: OrderId,
    #[schemars(with = "String")]
    pub till: NodeId,
    pub total: Decimal,
    pub currency: Currency,
    pub issued_at: Timestamp,
}

/// The receipt number `number` of `till`, as printed.
pub fn receipt_number(till: &NodeId, number: u64) -> String {
    format!("{till}-{number}")
}

impl ReceiptIssued {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "receipt.issued";
        if self.number == 0 {
            return Err(invalid(T, "receipt numbers start at 1"));
        }
        if self.receipt != receipt_number(&self.till, self.number) {
            return Err(invalid(T, "receipt must be <till>-<number>"));
        }
        check_amount(T, "total", self.total, self.currency)?;
        Ok(())
    }
}

/// `receipt.printed`: a receipt printed at a till (any till of the store may print any of its
/// receipts). Only the selling till's first print is the original; every other is a
/// DUPLICATE, counted in the till's next Z report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptPrinted {
    pub receipt: String,
    pub order_id: OrderId,
    /// The till that printed it.
    #[schemars(with = "String")]
    pub till: NodeId,
    /// 1, 2, 3, … : this till's prints of this receipt.
    pub copy: u64,
    pub duplicate: bool,
    pub staff: Option<crate::StaffId>,
    pub printed_at: Timestamp,
}

impl ReceiptPrinted {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "receipt.printed";
        if self.copy == 0 {
            return Err(invalid(T, "copies start at 1"));
        }
        if self.copy > 1 && !self.duplicate {
            return Err(invalid(T, "a second copy is a duplicate"));
        }
        if self.receipt.is_empty() || self.receipt.len() > 100 {
            return Err(invalid(T, "receipt must be 1 to 100 characters"));
        }
        Ok(())
    }
}
