//! Money: integer minor units with an ISO 4217 currency. Never floats.
//!
//! - [`Decimal`] is an exact decimal number as it is written in JSON (`29.99`). It is how amounts
//!   cross the JSON boundary, in both directions, without ever passing through a float: it reads
//!   the literal text of the number and writes the number back from integer digits.
//! - [`Currency`] is an ISO 4217 currency that has minor units, with its exponent (USD 2, JPY 0).
//! - [`Money`] is what the domain computes with: `minor` units of one currency. Turning a
//!   `Decimal` into `Money` is where "10.005 USD" is refused: it is never rounded.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Why an amount or currency was refused. Messages complete a sentence that starts with the
/// field name ("price has more decimals than USD allows").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MoneyError {
    #[error("is not a number")]
    NotANumber,
    #[error("has more than {max} decimals", max = Decimal::SCALE_MAX)]
    TooPrecise,
    #[error("is out of range")]
    OutOfRange,
    #[error("has more decimals than {currency} allows ({allowed})")]
    TooManyDecimals { currency: String, allowed: u8 },
    #[error("is not an ISO 4217 currency code with minor units")]
    UnknownCurrency,
    #[error("must not be negative")]
    Negative,
}

/// An exact decimal number: `mantissa × 10^-scale`. Equality is by value (`0.5 == 0.50`); the
/// scale only decides how many decimals are written.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    mantissa: i64,
    scale: u8,
}

impl Decimal {
    /// The same value without trailing zero decimals.
    fn normalized(&self) -> (i64, u8) {
        let (mut mantissa, mut scale) = (self.mantissa, self.scale);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        (mantissa, scale)
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

impl Eq for Decimal {}

impl std::hash::Hash for Decimal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized().hash(state);
    }
}

impl Decimal {
    /// Most decimals a number may carry; no currency has more than 4, this only bounds parsing.
    pub const SCALE_MAX: u8 = 18;

    pub fn new(mantissa: i64, scale: u8) -> Self {
        assert!(
            scale <= Self::SCALE_MAX,
            "decimal scale {scale} out of range"
        );
        Self { mantissa, scale }
    }

    pub fn mantissa(&self) -> i64 {
        self.mantissa
    }

    pub fn scale(&self) -> u8 {
        self.scale
    }

    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// Parses a JSON number literal (`-12.50`, `1e2`, `0.1`) exactly. Trailing zeros after the
    /// point are dropped (`10.50` has scale 1), so the scale is the number of decimals that
    /// matter.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (number, exponent) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], parse_exponent(&rest[i + 1..])?),
            None => (rest, 0),
        };
        let (int, frac) = match number.split_once('.') {
            Some((int, frac)) if !frac.is_empty() => (int, frac),
            Some(_) => return Err(MoneyError::NotANumber),
            None => (number, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) {
            return Err(MoneyError::NotANumber);
        }
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        let mut scale = frac.len() as i64 - exponent;
        let mut digits = digits.to_string();
        while scale > 0 && digits.ends_with('0') {
            digits.pop();
            scale -= 1;
        }
        if digits.is_empty() {
            return Ok(Self::new(0, 0));
        }
        if scale < 0 {
            // A positive exponent beyond the decimals: append zeros (bounded by the i64 check).
            if -scale > 19 {
                return Err(MoneyError::OutOfRange);
            }
            digits.push_str(&"0".repeat((-scale) as usize));
            scale = 0;
        }
        if scale > i64::from(Self::SCALE_MAX) {
            return Err(MoneyError::TooPrecise);
        }
        let magnitude: i128 = digits.parse().map_err(|_| MoneyError::OutOfRange)?;
        let signed = if negative { -magnitude } else { magnitude };
        let mantissa = i64::try_from(signed).map_err(|_| MoneyError::OutOfRange)?;
        Ok(Self::new(mantissa, scale as u8))
    }
}

fn parse_exponent(text: &str) -> Result<i64, MoneyError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    // Four digits of exponent are far beyond any amount; more is refused before parsing.
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(if digits.len() > 4 {
            MoneyError::OutOfRange
        } else {
            MoneyError::NotANumber
        });
    }
    let value: i64 = digits.parse().map_err(|_| MoneyError::NotANumber)?;
    Ok(if text.starts_with('-') { -value } else { value })
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let magnitude = self.mantissa.unsigned_abs();
        let divisor = 10u64.pow(u32::from(self.scale));
        write!(
            f,
            "{sign}{}.{:0width$}",
            magnitude / divisor,
            magnitude % divisor,
            width = usize::from(self.scale)
        )
    }
}

impl FromStr for Decimal {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, MoneyError> {
        Self::parse(s)
    }
}

/// In JSON a decimal is a number written from its digits; elsewhere (postcard) it is
/// `(mantissa, scale)`.
impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let raw = RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
            raw.serialize(serializer)
        } else {
            (self.mantissa, self.scale).serialize(serializer)
        }
    }
}

/// In JSON, accepts a number (read from its literal text, so `0.1` is exactly one tenth) or a
/// string holding one.
impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let raw = Box::<RawValue>::deserialize(deserializer)?;
            let text = raw.get().trim();
            let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(inner) => inner,
                None => text,
            };
            Decimal::parse(text).map_err(|e| D::Error::custom(format!("amount {e}")))
        } else {
            let (mantissa, scale) = <(i64, u8)>::deserialize(deserializer)?;
            if scale > Self::SCALE_MAX {
                return Err(D::Error::custom("decimal scale out of range"));
            }
            Ok(Self { mantissa, scale })
        }
    }
}

impl JsonSchema for Decimal {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "number",
            "description": "exact decimal amount in major units (29.99), never more decimals than the currency allows",
        })
    }
}

impl utoipa::PartialSchema for Decimal {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some("exact decimal amount in major units (29.99)"))
            .into()
    }
}
impl utoipa::ToSchema for Decimal {}

/// An ISO 4217 currency that has minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

/// Ordered by code (for maps keyed by currency).
impl Ord for Currency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(other.code())
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Currency {
    pub const USD: Currency = Currency(iso_currency::Currency::USD);
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);
    pub const JPY: Currency = Currency(iso_currency::Currency::JPY);

    /// Parses a three-letter code, in any case (`usd` is USD).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(MoneyError::UnknownCurrency);
        }
        let currency = iso_currency::Currency::from_code(&code.to_ascii_uppercase())
            .ok_or(MoneyError::UnknownCurrency)?;
        // Currencies without minor units (gold, SDR, "no currency") cannot be priced in.
        match currency.exponent() {
            Some(e) if e <= 4 => Ok(Self(currency)),
            _ => Err(MoneyError::UnknownCurrency),
        }
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Decimals of the minor unit: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u8 {
        // parse() admits only currencies whose exponent is 0..=4.
        self.0.exponent().unwrap_or(0) as u8
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Currency::parse(&code).map_err(|e| D::Error::custom(format!("currency {e}")))
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z]{3}$",
            "description": "ISO 4217 currency code",
        })
    }
}

impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z]{3}$"))
            .description(Some("ISO 4217 currency code"))
            .into()
    }
}
impl utoipa::ToSchema for Currency {}

/// An amount of one currency in minor units (cents for USD, yen for JPY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Exact conversion from major units; refuses more decimals than the currency has.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let allowed = currency.exponent();
        if amount.scale() > allowed {
            return Err(MoneyError::TooManyDecimals {
                currency: currency.code().to_string(),
                allowed,
            });
        }
        let factor = 10i64.pow(u32::from(allowed - amount.scale()));
        let minor = amount
            .mantissa()
            .checked_mul(factor)
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Self { minor, currency })
    }

    /// The amount in major units, with exactly the currency's decimals (`10.00`, `1500`).
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// `self × quantity`, or `None` on overflow.
    pub fn checked_mul(self, quantity: u64) -> Option<Self> {
        let q = i64::try_from(quantity).ok()?;
        Some(Self {
            minor: self.minor.checked_mul(q)?,
            currency: self.currency,
        })
    }

    /// `self + other`, or `None` on overflow or when the currencies differ.
    pub fn checked_add(self, other: Money) -> Option<Self> {
        if self.currency != other.currency {
            return None;
        }
        Some(Self {
            minor: self.minor.checked_add(other.minor)?,
            currency: self.currency,
        })
    }
}

/// `total` split over `weights` in proportion, exactly: the shares add up to `total`. Share
/// `i` is `round(total × (w₀ + … + wᵢ) / W) − round(total × (w₀ + … + wᵢ₋₁) / W)`, rounded half
/// away from zero, so no minor unit is lost or made up and the split depends only on the
/// weights' order. With no weight (`W = 0`) the first share takes everything. Weights are not
/// negative and their sum fits in an `i64` (they are amounts of one order).
pub fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum == 0 {
        let mut shares = vec![0; weights.len()];
        if let Some(first) = shares.first_mut() {
            *first = total;
        }
        return shares;
    }
    let round = |n: i128| -> i128 {
        let half_up = |n: i128| (2 * n + sum) / (2 * sum);
        if n >= 0 { half_up(n) } else { -half_up(-n) }
    };
    let mut shares = Vec::with_capacity(weights.len());
    let (mut cumulative, mut before) = (0i128, 0i128);
    for w in weights {
        cumulative += i128::from(*w);
        let upto = round(i128::from(total) * cumulative);
        // |share| ≤ |total|: fits.
        shares.push((upto - before) as i64);
        before = upto;
    }
    shares
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(text: &str) -> Result<Money, MoneyError> {
        Money::from_decimal(Decimal::parse(text)?, Currency::USD)
    }

    #[test]
    fn allocate_splits_exactly_in_proportion() {
        // (total, weights, shares)
        let table: &[(i64, &[i64], &[i64])] = &[
            (100, &[1, 1], &[50, 50]),
            (1, &[1, 1], &[1, 0]),
            (1, &[1, 1, 1], &[0, 1, 0]),
            (10, &[1, 1, 1], &[3, 4, 3]),
            (100, &[0, 5], &[0, 100]),
            (7, &[0, 0], &[7, 0]),
            (0, &[3, 4], &[0, 0]),
            (-10, &[1, 1, 1], &[-3, -4, -3]),
            (i64::MAX, &[1, 1], &[i64::MAX / 2 + 1, i64::MAX / 2]),
            (5, &[], &[]),
        ];
        for (total, weights, shares) in table {
            let got = allocate(*total, weights);
            assert_eq!(&got, shares, "{total} over {weights:?}");
            if !weights.is_empty() {
                assert_eq!(
                    got.iter().map(|s| i128::from(*s)).sum::<i128>(),
                    i128::from(*total)
                );
            }
        }
    }

    #[test]
    fn major_units_parse_exactly() {
        assert_eq!(usd("29.99").unwrap().minor, 2999);
        assert_eq!(usd("0.1").unwrap().minor, 10);
        assert_eq!(usd("10").unwrap().minor, 1000);
        assert_eq!(usd("10.50").unwrap().minor, 1050);
        assert_eq!(
            usd("10.500").unwrap().minor,
            1050,
            "trailing zeros are not decimals"
        );
        assert_eq!(usd("1e2").unwrap().minor, 10000);
        assert_eq!(usd("1.5E-1").unwrap().minor, 15);
        assert_eq!(usd("-0.05").unwrap().minor, -5);
        assert_eq!(usd("0").unwrap().minor, 0);
    }

    #[test]
    fn too_many_decimals_are_refused_not_rounded() {
        assert_eq!(
            usd("10.005"),
            Err(MoneyError::TooManyDecimals {
                currency: "USD".into(),
                allowed: 2
            })
        );
        let jpy = Money::from_decimal(Decimal::parse("1500").unwrap(), Currency::JPY).unwrap();
        assert_eq!(jpy.minor, 1500);
        assert!(Money::from_decimal(Decimal::parse("1500.5").unwrap(), Currency::JPY).is_err());
        let kwd = Currency::parse("kwd").unwrap();
        assert_eq!(
            Money::from_decimal(Decimal::parse("1.234").unwrap(), kwd)
                .unwrap()
                .minor,
            1234
        );
    }

    #[test]
    fn garbage_and_huge_numbers_are_refused() {
        for bad in [
            "", "-", ".5", "5.", "1.2.3", "abc", "1e", "0x10", "1_000", "--1",
        ] {
            assert_eq!(Decimal::parse(bad), Err(MoneyError::NotANumber), "{bad:?}");
        }
        assert_eq!(Decimal::parse("1e99999"), Err(MoneyError::OutOfRange));
        assert_eq!(
            Decimal::parse("99999999999999999999"),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(usd("92233720368547758.07").map(|m| m.minor), Ok(i64::MAX));
        assert_eq!(usd("92233720368547758.08"), Err(MoneyError::OutOfRange));
        assert_eq!(usd("100000000000000000"), Err(MoneyError::OutOfRange));
    }

    #[test]
    fn sums_of_tenths_are_exact() {
        // 0.1 + 0.2 is 0.30000000000000004 in floats; here it is 30 cents.
        let total = usd("0.1")
            .unwrap()
            .checked_add(usd("0.2").unwrap())
            .unwrap();
        assert_eq!(total.to_decimal().to_string(), "0.30");
        let mut sum = Money::zero(Currency::USD);
        for _ in 0..1000 {
            sum = sum.checked_add(usd("0.1").unwrap()).unwrap();
        }
        assert_eq!(sum.minor, 10_000);
    }

    #[test]
    fn json_numbers_round_trip_without_floats() {
        let d: Decimal = serde_json::from_str("29.99").unwrap();
        assert_eq!((d.mantissa(), d.scale()), (2999, 2));
        let quoted: Decimal = serde_json::from_str("\"29.99\"").unwrap();
        assert_eq!(quoted, d);
        let money = Money::from_decimal(d, Currency::USD).unwrap();
        assert_eq!(serde_json::to_string(&money.to_decimal()).unwrap(), "29.99");
        let ten = Money {
            minor: 1000,
            currency: Currency::USD,
        };
        assert_eq!(serde_json::to_string(&ten.to_decimal()).unwrap(), "10.00");
        let yen = Money {
            minor: 1500,
            currency: Currency::JPY,
        };
        assert_eq!(serde_json::to_string(&yen.to_decimal()).unwrap(), "1500");
        let negative = Money {
            minor: -5,
            currency: Currency::USD,
        };
        assert_eq!(
            serde_json::to_string(&negative.to_decimal()).unwrap(),
            "-0.05"
        );
        let bytes = postcard::to_allocvec(&d).unwrap();
        assert_eq!(postcard::from_bytes::<Decimal>(&bytes).unwrap(), d);
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("usd").unwrap(), Currency::USD);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::parse("XAU"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Currency::parse("ZZZ"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Currency::parse("US"), Err(MoneyError::UnknownCurrency));
    }

    proptest! {
        #[test]
        fn any_minor_amount_survives_text_and_back(minor in any::<i64>(), code in prop::sample::select(vec!["USD", "JPY", "KWD", "EUR"])) {
            let currency = Currency::parse(code).unwrap();
            let money = Money { minor, currency };
            let text = money.to_decimal().to_string();
            let back = Money::from_decimal(Decimal::parse(&text).unwrap(), currency).unwrap();
            prop_assert_eq!(back, money);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = Decimal::parse(&text);
        }
    }
}
