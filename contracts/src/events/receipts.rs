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

/// The longest email address a receipt is sent to (RFC 5321's path limit).
pub const EMAIL_LEN_MAX: usize = 254;

/// Whether `address` is an email address a receipt can be sent to: `local@domain`, the local
/// part 1 to 64 printable characters with none of `<>()[]\,;:"` or spaces, the domain two or
/// more labels of letters, digits and inner hyphens (1 to 63 each). Nothing that could break
/// out of a mail header (no whitespace, no control character) passes.
pub fn check_email(address: &str) -> Result<(), &'static str> {
    if address.is_empty() || address.len() > EMAIL_LEN_MAX {
        return Err("must be 1 to 254 characters");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("must be local@domain");
    };
    let special = |c: char| "<>()[]\\,;:\"@".contains(c);
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local.chars().all(|c| c.is_ascii_graphic() && !special(c))
    {
        return Err("the part before @ must be 1 to 64 printable characters");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("the domain must be labels of letters, digits and hyphens, like example.com");
    }
    Ok(())
}

/// `receipt.emailed`: a customer asked, at a till, for a receipt by email. The till records
/// the request (offline too); the hub bridges it to a webhook, where the shipped n8n template
/// renders the receipt from the hub (`GET /fleet/orders/{id}/receipt`) and sends it. The
/// address is the customer's: it travels in this event to Kafka and the webhooks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptEmailed {
    pub receipt: String,
    pub order_id: OrderId,
    /// The till that took the request.
    #[schemars(with = "String")]
    pub till: NodeId,
    /// The customer's address.
    pub to: String,
    /// The receipt's verification code, when the selling till took the request (the code of
    /// its journal entry; another till does not hold it).
    pub verification_code: Option<String>,
    pub staff: Option<crate::StaffId>,
    pub requested_at: Timestamp,
}

impl ReceiptEmailed {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "receipt.emailed";
        if self.receipt.is_empty() || self.receipt.len() > 100 {
            return Err(invalid(T, "receipt must be 1 to 100 characters"));
        }
        check_email(&self.to).map_err(|reason| invalid(T, format!("to {reason}")))?;
        if self
            .verification_code
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 40)
        {
            return Err(invalid(T, "verificationCode must be 1 to 40 characters"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_email;

    #[test]
    fn email_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("a@{}.com", "b".repeat(250));
        let table: &[(&str, bool)] = &[
            ("ada@example.com", true),
            ("ada.lovelace+receipts@mail.example.co.uk", true),
            ("o'brien@example.ie", true),
            ("a@b.c", true),
            ("", false),
            ("ada", false),
            ("ada@", false),
            ("@example.com", false),
            ("ada@example", false),
            ("ada@example..com", false),
            ("ada@-example.com", false),
            ("ada@exa_mple.com", false),
            (".ada@example.com", false),
            ("ada.@example.com", false),
            ("a..da@example.com", false),
            ("ada lovelace@example.com", false),
            ("ada@example.com\r\nBcc: all@example.com", false),
            ("\"ada\"@example.com", false),
            ("ada@b@example.com", false),
            ("ada<x>@example.com", false),
            ("adä@example.com", false),
            (&long_local, false),
            (&long, false),
        ];
        for (address, ok) in table {
            assert_eq!(check_email(address).is_ok(), *ok, "{address:?}");
        }
    }
}
