//! The vocabulary of what an order line sells for beyond its price: discounts a person gives
//! and promotions a store runs (issue 17). `fusion_rules::pricing` applies them.
//!
//! A promotion is stored in its store's settings document (one key per promotion, its JSON
//! [`PromotionBody`]) so every till of the store prices identically, offline; a peer's
//! document is untrusted, so a body read back is validated like a request
//! ([`PromotionBody::into_promotion`]) and an invalid one is ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::commands::{CATEGORY_LEN_MAX, QUANTITY_MAX, REASON_LEN_MAX};
use crate::http::{FieldError, optional_text, price, rate_percent, rate_ppm, text};
use crate::{Currency, Decimal, Money, PromotionId, Sku, Timestamp};

/// A discount given on a line or on the whole order: a percentage of what it sells for, or an
/// amount, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    pub off: Off,
    pub reason: Option<String>,
}

/// How much a discount takes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Off {
    /// Parts per million of the amount (10 % = 100,000), at most 100 %.
    Percent(u32),
    /// An amount in the order's currency, at most the amount it applies to.
    Amount(Money),
}

/// A discount in a request: exactly one of `percent` (0 to 100) and `amount` (in the order's
/// currency).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscountRequest {
    #[serde(default)]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100)]
    pub percent: Option<Decimal>,
    #[serde(default)]
    #[schema(value_type = Option<f64>, minimum = 0)]
    pub amount: Option<Decimal>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: Option<String>,
}

impl DiscountRequest {
    /// The discount, its fields named under `field` (`items[0].discount`, `discount`).
    pub fn into_discount(self, field: &str, currency: Currency) -> Result<Discount, FieldError> {
        let off = match (self.percent, self.amount) {
            (Some(percent), None) => Off::Percent(rate_ppm(&format!("{field}.percent"), percent)?),
            (None, Some(amount)) => {
                Off::Amount(price(&format!("{field}.amount"), amount, currency)?)
            }
            _ => {
                return Err(FieldError::new(
                    field,
                    "must give exactly one of percent and amount",
                ));
            }
        };
        let reason = optional_text(&format!("{field}.reason"), self.reason, REASON_LEN_MAX)?;
        Ok(Discount { off, reason })
    }
}

/// Longest promotion name, in characters.
pub const PROMOTION_NAME_LEN_MAX: usize = 100;
/// Most skus or categories one promotion names.
pub const PROMOTION_TARGETS_MAX: usize = 500;
/// Most promotions a store runs at once.
pub const PROMOTIONS_MAX: usize = 200;

/// A promotion: applied automatically, by every till alike, to the orders placed from
/// `starts_at` (inclusive) until `ends_at` (exclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: PromotionId,
    pub name: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub rule: PromotionRule,
}

impl Promotion {
    /// Whether it applies to an order placed at `now`.
    pub fn runs_at(&self, now: Timestamp) -> bool {
        self.starts_at.is_none_or(|s| s <= now) && self.ends_at.is_none_or(|e| now < e)
    }
}

/// What a promotion gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromotionRule {
    /// A percentage (parts per million) off every line of the skus, or of the products in the
    /// categories.
    PercentOff {
        ppm: u32,
        skus: Vec<Sku>,
        categories: Vec<String>,
    },
    /// `quantity` units, taken from the skus in any mix, for `price`.
    MultiBuy {
        skus: Vec<Sku>,
        quantity: u64,
        price: Money,
    },
}

/// A promotion as `POST /promotions` takes it, `GET /promotions` shows it and the settings
/// document holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionBody {
    /// Given by the node when absent (`POST`); `PUT`ting a body with an id replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<PromotionId>,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// `percentOff` (`percent`, `skus` and/or `categories`) or `multiBuy` (`skus`,
    /// `quantity`, `price`, `currency`).
    pub kind: PromotionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100)]
    pub percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub skus: Vec<Sku>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 2)]
    pub quantity: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>, minimum = 0)]
    pub price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PromotionKind {
    PercentOff,
    MultiBuy,
}

impl PromotionBody {
    /// The promotion, validated: every refusal names its field. `id` is used when the body
    /// names none.
    pub fn into_promotion(self, id: PromotionId) -> Result<Promotion, FieldError> {
        let name = text("name", self.name, PROMOTION_NAME_LEN_MAX)?;
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            return Err(FieldError::new("endsAt", "must be after startsAt"));
        }
        if self.skus.len() > PROMOTION_TARGETS_MAX {
            return Err(FieldError::new(
                "skus",
                format!("must name at most {PROMOTION_TARGETS_MAX} skus"),
            ));
        }
        if self.categories.len() > PROMOTION_TARGETS_MAX {
            return Err(FieldError::new(
                "categories",
                format!("must name at most {PROMOTION_TARGETS_MAX} categories"),
            ));
        }
        let unused = |field: &str, present: bool| {
            if present {
                Err(FieldError::new(
                    field,
                    "does not apply to this kind of promotion",
                ))
            } else {
                Ok(())
            }
        };
        let rule = match self.kind {
            PromotionKind::PercentOff => {
                let percent = self
                    .percent
                    .ok_or_else(|| FieldError::new("percent", "is required for percentOff"))?;
                let ppm = rate_ppm("percent", percent)?;
                if ppm == 0 {
                    return Err(FieldError::new("percent", "must be more than 0"));
                }
                if self.skus.is_empty() && self.categories.is_empty() {
                    return Err(FieldError::new(
                        "skus",
                        "percentOff must name skus or categories",
                    ));
                }
                unused("quantity", self.quantity.is_some())?;
                unused("price", self.price.is_some())?;
                let categories = self
                    .categories
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| text(&format!("categories[{i}]"), c, CATEGORY_LEN_MAX))
                    .collect::<Result<_, _>>()?;
                PromotionRule::PercentOff {
                    ppm,
                    skus: self.skus,
                    categories,
                }
            }
            PromotionKind::MultiBuy => {
                let quantity = self
                    .quantity
                    .ok_or_else(|| FieldError::new("quantity", "is required for multiBuy"))?;
                if !(2..=QUANTITY_MAX).contains(&quantity) {
                    return Err(FieldError::new("quantity", "must be at least 2"));
                }
                let amount = self
                    .price
                    .ok_or_else(|| FieldError::new("price", "is required for multiBuy"))?;
                let currency = self
                    .currency
                    .ok_or_else(|| FieldError::new("currency", "is required for multiBuy"))?;
                if self.skus.is_empty() {
                    return Err(FieldError::new("skus", "multiBuy must name skus"));
                }
                unused("percent", self.percent.is_some())?;
                unused("categories", !self.categories.is_empty())?;
                PromotionRule::MultiBuy {
                    skus: self.skus,
                    quantity,
                    price: price("price", amount, currency)?,
                }
            }
        };
        Ok(Promotion {
            id: self.id.unwrap_or(id),
            name,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            rule,
        })
    }
}

impl From<&Promotion> for PromotionBody {
    fn from(p: &Promotion) -> Self {
        let mut body = PromotionBody {
            id: Some(p.id),
            name: p.name.clone(),
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            kind: PromotionKind::PercentOff,
            percent: None,
            skus: Vec::new(),
            categories: Vec::new(),
            quantity: None,
            price: None,
            currency: None,
        };
        match &p.rule {
            PromotionRule::PercentOff {
                ppm,
                skus,
                categories,
            } => {
                body.percent = Some(rate_percent(*ppm));
                body.skus = skus.clone();
                body.categories = categories.clone();
            }
            PromotionRule::MultiBuy {
                skus,
                quantity,
                price,
            } => {
                body.kind = PromotionKind::MultiBuy;
                body.skus = skus.clone();
                body.quantity = Some(*quantity);
                body.price = Some(price.to_decimal());
                body.currency = Some(price.currency);
            }
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<Promotion, FieldError> {
        let body: PromotionBody = serde_json::from_str(json).expect("parses");
        body.into_promotion(PromotionId::from_u128(7))
    }

    #[test]
    fn promotions_are_validated_naming_the_field() {
        let ok =
            body(r#"{"name":"Spring","kind":"percentOff","percent":20,"categories":["coffee"]}"#)
                .unwrap();
        assert_eq!(
            ok.rule,
            PromotionRule::PercentOff {
                ppm: 200_000,
                skus: vec![],
                categories: vec!["coffee".into()]
            }
        );
        let multi = body(
            r#"{"name":"3 for 10","kind":"multiBuy","skus":["BEAN-1"],"quantity":3,"price":10,"currency":"USD"}"#,
        )
        .unwrap();
        assert_eq!(
            PromotionBody::from(&multi)
                .into_promotion(multi.id)
                .unwrap(),
            multi
        );
        // (body, field named)
        let table = [
            (
                r#"{"name":"x","kind":"percentOff","categories":["a"]}"#,
                "percent",
            ),
            (
                r#"{"name":"x","kind":"percentOff","percent":0,"skus":["A"]}"#,
                "percent",
            ),
            (
                r#"{"name":"x","kind":"percentOff","percent":101,"skus":["A"]}"#,
                "percent",
            ),
            (r#"{"name":"x","kind":"percentOff","percent":5}"#, "skus"),
            (
                r#"{"name":"x","kind":"percentOff","percent":5,"skus":["A"],"quantity":2}"#,
                "quantity",
            ),
            (
                r#"{"name":" ","kind":"percentOff","percent":5,"skus":["A"]}"#,
                "name",
            ),
            (
                r#"{"name":"x","kind":"percentOff","percent":5,"skus":["A"],"startsAt":"2026-01-02T00:00:00Z","endsAt":"2026-01-01T00:00:00Z"}"#,
                "endsAt",
            ),
            (
                r#"{"name":"x","kind":"multiBuy","skus":["A"],"quantity":1,"price":1,"currency":"USD"}"#,
                "quantity",
            ),
            (
                r#"{"name":"x","kind":"multiBuy","skus":["A"],"quantity":2,"currency":"USD"}"#,
                "price",
            ),
            (
                r#"{"name":"x","kind":"multiBuy","skus":["A"],"quantity":2,"price":1}"#,
                "currency",
            ),
            (
                r#"{"name":"x","kind":"multiBuy","skus":["A"],"quantity":2,"price":1.001,"currency":"USD"}"#,
                "price",
            ),
            (
                r#"{"name":"x","kind":"multiBuy","quantity":2,"price":1,"currency":"USD"}"#,
                "skus",
            ),
        ];
        for (json, field) in table {
            assert_eq!(body(json).unwrap_err().field, field, "{json}");
        }
    }

    #[test]
    fn discounts_take_exactly_one_of_percent_and_amount() {
        let d = |json: &str| {
            serde_json::from_str::<DiscountRequest>(json)
                .unwrap()
                .into_discount("items[1].discount", Currency::USD)
        };
        assert_eq!(d(r#"{"percent":12.5}"#).unwrap().off, Off::Percent(125_000));
        assert_eq!(
            d(r#"{"amount":2.5,"reason":"dented"}"#).unwrap(),
            Discount {
                off: Off::Amount(Money {
                    minor: 250,
                    currency: Currency::USD
                }),
                reason: Some("dented".into())
            }
        );
        assert_eq!(d("{}").unwrap_err().field, "items[1].discount");
        assert_eq!(
            d(r#"{"percent":5,"amount":1}"#).unwrap_err().field,
            "items[1].discount"
        );
        assert_eq!(
            d(r#"{"percent":150}"#).unwrap_err().field,
            "items[1].discount.percent"
        );
        assert_eq!(
            d(r#"{"amount":-1}"#).unwrap_err().field,
            "items[1].discount.amount"
        );
        assert_eq!(
            d(r#"{"amount":0.001}"#).unwrap_err().field,
            "items[1].discount.amount"
        );
    }
}
