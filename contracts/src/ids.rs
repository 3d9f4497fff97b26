//! Identifier newtypes. Ids are never bare strings or uuids in signatures, so an order id cannot
//! be passed where a product id is expected.
//!
//! Uuid ids are generated at the edges (uuid v7, time-ordered); string ids (sku, customer,
//! node, correlation) are validated when constructed or deserialized, so a value of one of these
//! types is always well formed.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            JsonSchema, ToSchema,
        )]
        #[serde(transparent)]
        #[schemars(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub const fn from_u128(v: u128) -> Self {
                Self(Uuid::from_u128(v))
            }

            pub const fn as_u128(&self) -> u128 {
                self.0.as_u128()
            }

            /// Parses the hyphenated or simple text form; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                Uuid::try_parse(text).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A catalog product.
    ProductId
);
uuid_id!(
    /// A customer order.
    OrderId
);
uuid_id!(
    /// One event, unique across the fleet; consumers deduplicate by it.
    EventId
);
uuid_id!(
    /// A group-buying campaign.
    CampaignId
);
uuid_id!(
    /// One payment (one tender) towards an order.
    PaymentId
);
uuid_id!(
    /// One shipment (one label) of an order.
    ShipmentId
);
uuid_id!(
    /// An API token (the public handle; the secret is never stored).
    TokenId
);
uuid_id!(
    /// A promotion of a store (`fusion_contracts::pricing::Promotion`).
    PromotionId
);

/// Why a string id was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} {reason}")]
pub struct InvalidId {
    pub what: &'static str,
    pub reason: &'static str,
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $what:literal, $max:expr, $check:expr) => {
        $(#[$meta])*
        #[derive(
            Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
        )]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in characters.
            pub const LEN_MAX: usize = $max;

            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                let len = value.chars().count();
                if len == 0 {
                    return Err(InvalidId { what: $what, reason: "must not be empty" });
                }
                if len > Self::LEN_MAX {
                    return Err(InvalidId {
                        what: $what,
                        reason: concat!("must be at most ", stringify!($max), " characters"),
                    });
                }
                let check: fn(char) -> bool = $check;
                if !value.chars().all(check) {
                    return Err(InvalidId { what: $what, reason: "contains a character that is not allowed" });
                }
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": $max,
                })
            }
        }
    };
}

/// Sku characters: visible, and safe in a URL path segment (`/inventory/{sku}`).
fn sku_char(c: char) -> bool {
    !c.is_control() && !c.is_whitespace() && !matches!(c, '/' | '?' | '#' | '%')
}

string_id!(
    /// Stock keeping unit: the key of stock levels and reservations. Unique per product.
    Sku, "sku", 64, sku_char
);
string_id!(
    /// The customer an order is for, as the client names it.
    CustomerId, "customerId", 128, |c| !c.is_control()
);
string_id!(
    /// A node (till, store server or hub): the origin of events.
    NodeId, "node id", 64, |c| c.is_ascii_alphanumeric() || c == '-'
);
string_id!(
    /// A store (a site with one or more tills), as enrolled at the hub and given to its nodes.
    StoreId, "storeId", 64, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
);
string_id!(
    /// A staff member of a store (an employee code the manager chooses: `ana`, `1042`).
    StaffId, "staffId", 32, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
);
string_id!(
    /// Ties together every event caused by one client request (header `X-Correlation-Id`).
    CorrelationId, "correlation id", 128, |c| c.is_ascii_graphic()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_rules() {
        assert!(Sku::new("SKU-001").is_ok());
        assert!(Sku::new("café-1").is_ok());
        assert!(Sku::new("").is_err());
        assert!(Sku::new("a b").is_err());
        assert!(Sku::new("a/b").is_err());
        assert!(Sku::new("x".repeat(65)).is_err());
        assert!(Sku::new("x".repeat(64)).is_ok());
    }

    #[test]
    fn string_ids_validate_when_deserialized() {
        let err = serde_json::from_str::<Sku>("\"a b\"").unwrap_err();
        assert!(
            err.to_string().contains("sku contains a character"),
            "{err}"
        );
        let ok: CustomerId = serde_json::from_str("\"cust-1\"").unwrap();
        assert_eq!(ok.as_str(), "cust-1");
    }

    #[test]
    fn uuid_ids_round_trip() {
        let id = OrderId::from_u128(42);
        assert_eq!(OrderId::parse(&id.to_string()), Some(id));
        assert_eq!(OrderId::parse("nope"), None);
    }
}
