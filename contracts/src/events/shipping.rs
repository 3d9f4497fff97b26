//! Shipping event payloads: FusionCommerce's `shipping.label.created` (its `{orderId,
//! trackingNumber, carrier, labelUrl}` and more), `shipping.status.changed`, `order.fulfilled`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{EventError, check_amount, invalid};
use crate::ids::{OrderId, ShipmentId};
use crate::money::{Currency, Decimal};
use crate::time::Timestamp;

/// Longest address line, in characters.
pub const ADDRESS_LINE_LEN_MAX: usize = 200;
/// Heaviest parcel a label is made for, in grams.
pub const PARCEL_GRAMS_MAX: u32 = 70_000;

/// A delivery address (FusionCommerce's `{street, city, country, zip}`); `country` is an ISO 3166
/// alpha-2 code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street: String,
    pub city: String,
    pub country: String,
    pub zip: String,
}

impl Address {
    /// Checks every field; the error names the field (`address.country`).
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (field, value) in [
            ("street", &self.street),
            ("city", &self.city),
            ("zip", &self.zip),
        ] {
            let len = value.trim().chars().count();
            if len == 0 || len > ADDRESS_LINE_LEN_MAX || value.chars().any(char::is_control) {
                return Err((
                    format!("address.{field}"),
                    format!("must be 1 to {ADDRESS_LINE_LEN_MAX} printable characters"),
                ));
            }
        }
        if self.country.len() != 2 || self.country.parse::<iso_country::Country>().is_err() {
            return Err((
                "address.country".into(),
                "must be an ISO 3166 alpha-2 country code (US, DE, …)".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    LabelCreated,
    InTransit,
    Delivered,
    Returned,
    Exception,
    /// The label was never used: its order was cancelled before the parcel left.
    Voided,
}

impl ShipmentStatus {
    /// The legal next statuses.
    pub fn next(self) -> &'static [ShipmentStatus] {
        use ShipmentStatus::*;
        match self {
            LabelCreated => &[InTransit, Exception, Voided],
            InTransit => &[Delivered, Returned, Exception],
            Exception => &[InTransit, Returned],
            Delivered => &[Returned],
            Returned | Voided => &[],
        }
    }
}

/// `shipping.label.created`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShippingLabelCreated {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub tracking_number: String,
    pub carrier: String,
    pub service: String,
    /// Where this node serves the label document (ZPL), relative to its base URL.
    pub label_url: String,
    pub address: Address,
    pub weight_grams: u32,
    pub price: Decimal,
    pub currency: Currency,
    pub created_at: Timestamp,
}

/// `shipping.status.changed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShippingStatusChanged {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub tracking_number: String,
    pub from: ShipmentStatus,
    pub to: ShipmentStatus,
    pub changed_at: Timestamp,
}

/// `order.fulfilled`: delivered, or — for a carry-out order — paid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderFulfilled {
    pub order_id: OrderId,
    pub shipment_id: Option<ShipmentId>,
    pub fulfilled_at: Timestamp,
}

/// Luhn check digit of a string of decimal digits.
pub fn luhn_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// A tracking number is `FC`, 16 digits and a Luhn check digit.
pub fn tracking_number_is_valid(number: &str) -> bool {
    let Some(digits) = number.strip_prefix("FC") else {
        return false;
    };
    if digits.len() != 17 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, check) = digits.split_at(16);
    luhn_digit(body) == check.as_bytes()[0] - b'0'
}

impl ShippingLabelCreated {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "shipping.label.created";
        if !tracking_number_is_valid(&self.tracking_number) {
            return Err(invalid(
                T,
                "trackingNumber must be FC, 16 digits and a check digit",
            ));
        }
        self.address
            .validate()
            .map_err(|(field, message)| invalid(T, format!("{field} {message}")))?;
        if self.weight_grams == 0 || self.weight_grams > PARCEL_GRAMS_MAX {
            return Err(invalid(T, "weightGrams out of range"));
        }
        check_amount(T, "price", self.price, self.currency).map(drop)
    }
}

impl ShippingStatusChanged {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        if !self.from.next().contains(&self.to) {
            return Err(invalid(
                "shipping.status.changed",
                format!("{:?} cannot follow {:?}", self.to, self.from),
            ));
        }
        Ok(())
    }
}

impl OrderFulfilled {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_check_digits() {
        assert_eq!(luhn_digit("7992739871"), 3);
        let body = "0001000200000001";
        let number = format!("FC{body}{}", luhn_digit(body));
        assert!(tracking_number_is_valid(&number));
        let mut wrong = number.clone();
        wrong.replace_range(5..6, if &number[5..6] == "9" { "8" } else { "9" });
        assert!(
            !tracking_number_is_valid(&wrong),
            "one changed digit is caught"
        );
    }

    #[test]
    fn addresses_name_the_bad_field() {
        let good = Address {
            street: "1 Main St".into(),
            city: "Springfield".into(),
            country: "US".into(),
            zip: "12345".into(),
        };
        assert!(good.validate().is_ok());
        let bad_country = Address {
            country: "XX".into(),
            ..good.clone()
        };
        assert_eq!(bad_country.validate().unwrap_err().0, "address.country");
        let no_city = Address {
            city: " ".into(),
            ..good
        };
        assert_eq!(no_city.validate().unwrap_err().0, "address.city");
    }
}
