//! Tax on an order: the one rounding rule (issue 17, part 2). The store's settings hold the
//! rates by class and whether prices include tax ([`Taxes`]);
//! `orders::place_with_backorders` applies them.
//!
//! **The rule: tax is computed once per rate on the order, from the sum of the order's line
//! amounts at that rate, and rounded half away from zero to the currency's minor unit.**
//! - *Exclusive* prices (US sales tax): the taxable base is the sum; tax = base × rate; the
//!   order's total is the sum plus every rate's tax.
//! - *Inclusive* prices (VAT): the sum is gross; tax = gross × rate / (1 + rate); the base is
//!   gross − tax; the total is the sum.
//!
//! Why per rate on the order: it is what VAT invoices show (one line per rate: base, rate,
//! tax) and what the EU VAT directive and US states allow, and it does not lose or invent
//! cents over many small lines (three 0.02 lines at 20 % exclusive: per-line rounding gives
//! 0.00 tax, per order 0.01 of the exact 0.012). Why half away from zero: it is commercial
//! rounding, the legal default for VAT in Germany, France and the UK and for most US states;
//! half-even (bankers') rounding is not what tax authorities expect on a receipt.

use std::collections::BTreeMap;

use fusion_contracts::{Currency, Money};
use serde::{Deserialize, Serialize};

/// A tax rate in parts per million of the base: 20 % = 200,000; 5.5 % = 55,000; 8.875 % =
/// 88,750. At most 100 %.
pub type RatePpm = u32;

/// The largest rate: 100 %.
pub const RATE_PPM_MAX: RatePpm = fusion_contracts::http::RATE_PPM_MAX;

/// Whether catalog prices include tax (VAT style) or tax comes on top (US sales-tax style).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prices {
    Inclusive,
    Exclusive,
}

/// A store's taxes: its rates by class, and whether its prices include them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxes {
    pub prices: Prices,
    pub rates: BTreeMap<String, RatePpm>,
}

/// The class of a product that names none (and, until products carry one, of every line).
pub const STANDARD: &str = "standard";

/// The tax of one rate on an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    /// The tax class (`standard`, `reduced`, `zero`, …).
    pub class: String,
    pub rate_ppm: RatePpm,
    /// What the rate applies to: net of tax.
    pub base: Money,
    pub tax: Money,
}

/// An order's amounts by the rule: the sum of its lines, the tax of every rate (in class
/// order), and what the customer pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTax {
    pub subtotal: Money,
    pub taxes: Vec<TaxLine>,
    pub total: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaxRejected {
    /// A line names a tax class the store has no rate for.
    #[error("line {line}: the store has no rate for tax class {class:?}")]
    UnknownClass { class: String, line: usize },
    #[error("a rate of {rate_ppm} ppm is above 100 %")]
    RateTooHigh { rate_ppm: RatePpm },
    #[error("the order's amounts overflow")]
    Overflow,
}

/// `n / d` rounded half away from zero (`d > 0`): the one rounding of every amount.
pub(crate) fn div_round(n: i128, d: i128) -> i128 {
    let half_up = |n: i128| (2 * n + d) / (2 * d);
    if n >= 0 { half_up(n) } else { -half_up(-n) }
}

/// Taxes an order whose lines are `(tax class, line amount)` — the amount a line sells for
/// after its discounts, in `currency` — at the store's `rates` (by class).
pub fn tax_order(
    lines: &[(&str, Money)],
    rates: &BTreeMap<String, RatePpm>,
    prices: Prices,
    currency: Currency,
) -> Result<OrderTax, TaxRejected> {
    let mut by_class: BTreeMap<&str, (RatePpm, i128)> = BTreeMap::new();
    for (line, (class, amount)) in lines.iter().enumerate() {
        assert_eq!(
            amount.currency, currency,
            "lines are in the order's currency"
        );
        let rate = *rates.get(*class).ok_or_else(|| TaxRejected::UnknownClass {
            class: class.to_string(),
            line,
        })?;
        if rate > RATE_PPM_MAX {
            return Err(TaxRejected::RateTooHigh { rate_ppm: rate });
        }
        by_class.entry(class).or_insert((rate, 0)).1 += i128::from(amount.minor);
    }
    let money = |minor: i128| -> Result<Money, TaxRejected> {
        Ok(Money {
            minor: i64::try_from(minor).map_err(|_| TaxRejected::Overflow)?,
            currency,
        })
    };
    let million = i128::from(RATE_PPM_MAX);
    let mut subtotal = 0i128;
    let mut tax_total = 0i128;
    let mut taxes = Vec::with_capacity(by_class.len());
    for (class, (rate, sum)) in by_class {
        let rate_i = i128::from(rate);
        let (base, tax) = match prices {
            Prices::Exclusive => (sum, div_round(sum * rate_i, million)),
            Prices::Inclusive => {
                let tax = div_round(sum * rate_i, million + rate_i);
                (sum - tax, tax)
            }
        };
        subtotal += sum;
        tax_total += tax;
        taxes.push(TaxLine {
            class: class.to_string(),
            rate_ppm: rate,
            base: money(base)?,
            tax: money(tax)?,
        });
    }
    let total = match prices {
        Prices::Exclusive => subtotal + tax_total,
        Prices::Inclusive => subtotal,
    };
    Ok(OrderTax {
        subtotal: money(subtotal)?,
        taxes,
        total: money(total)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> BTreeMap<String, RatePpm> {
        [
            ("standard", 200_000),
            ("reduced", 55_000),
            ("zero", 0),
            ("nyc", 88_750),
            ("jp", 100_000),
        ]
        .into_iter()
        .map(|(c, r)| (c.to_string(), r))
        .collect()
    }

    /// (name, prices, currency, lines (class, minor), expected (subtotal, [(class, base, tax)],
    /// total))
    #[test]
    fn the_rounding_rule() {
        use Prices::{Exclusive, Inclusive};
        type Case = (
            &'static str,
            Prices,
            &'static str,
            Vec<(&'static str, i64)>,
            (i64, Vec<(&'static str, i64, i64)>, i64),
        );
        let cases: Vec<Case> = vec![
            (
                "exclusive, one rate",
                Exclusive,
                "USD",
                vec![("standard", 1000)],
                (1000, vec![("standard", 1000, 200)], 1200),
            ),
            (
                "inclusive, one rate: 12.00 gross holds 2.00",
                Inclusive,
                "EUR",
                vec![("standard", 1200)],
                (1200, vec![("standard", 1000, 200)], 1200),
            ),
            (
                "a tax of exactly half a cent (0.005) rounds away from zero to 0.01",
                Exclusive,
                "USD",
                vec![("jp", 5)],
                (5, vec![("jp", 5, 1)], 6),
            ),
            (
                "just under half a cent (0.0044) rounds to nothing",
                Exclusive,
                "USD",
                vec![("nyc", 5)],
                (5, vec![("nyc", 5, 0)], 5),
            ),
            (
                "many small lines: three 0.02 at 20 % exclusive is 0.01 (per line it would be 0)",
                Exclusive,
                "USD",
                vec![("standard", 2), ("standard", 2), ("standard", 2)],
                (6, vec![("standard", 6, 1)], 7),
            ),
            (
                "two rates on one order, each rounded once",
                Inclusive,
                "EUR",
                vec![("standard", 999), ("reduced", 211), ("standard", 1)],
                (
                    1211,
                    // 10.00 × 0.2/1.2 = 1.6667 → 1.67; 2.11 × 0.055/1.055 = 0.1100 → 0.11
                    vec![("reduced", 200, 11), ("standard", 833, 167)],
                    1211,
                ),
            ),
            (
                "8.875 %: 9.99 → 0.8866 → 0.89",
                Exclusive,
                "USD",
                vec![("nyc", 999)],
                (999, vec![("nyc", 999, 89)], 1088),
            ),
            (
                "JPY has no minor unit: 999 yen inclusive at 10 % holds 91",
                Inclusive,
                "JPY",
                vec![("jp", 999)],
                (999, vec![("jp", 908, 91)], 999),
            ),
            (
                "JPY exclusive: 1,005 yen at 10 % = 100.5 → 101",
                Exclusive,
                "JPY",
                vec![("jp", 1005)],
                (1005, vec![("jp", 1005, 101)], 1106),
            ),
            (
                "a zero rate taxes nothing",
                Exclusive,
                "USD",
                vec![("zero", 1234)],
                (1234, vec![("zero", 1234, 0)], 1234),
            ),
            (
                "a refund's negative amounts round symmetrically",
                Exclusive,
                "USD",
                vec![("jp", -5)],
                (-5, vec![("jp", -5, -1)], -6),
            ),
        ];
        for (name, prices, code, lines, (subtotal, taxes, total)) in cases {
            let currency = Currency::parse(code).unwrap();
            let m = |minor| Money { minor, currency };
            let lines: Vec<(&str, Money)> = lines.into_iter().map(|(c, a)| (c, m(a))).collect();
            let got = tax_order(&lines, &rates(), prices, currency).unwrap();
            assert_eq!(got.subtotal, m(subtotal), "{name}");
            assert_eq!(got.total, m(total), "{name}");
            let got_taxes: Vec<(&str, i64, i64)> = got
                .taxes
                .iter()
                .map(|t| (t.class.as_str(), t.base.minor, t.tax.minor))
                .collect();
            assert_eq!(got_taxes, taxes, "{name}");
            // Every rate's base and tax add up to what its lines sold for (inclusive) or to
            // its base (exclusive): nothing lost or invented.
            for t in &got.taxes {
                let sold: i64 = lines
                    .iter()
                    .filter(|(c, _)| *c == t.class)
                    .map(|(_, a)| a.minor)
                    .sum();
                match prices {
                    Inclusive => assert_eq!(t.base.minor + t.tax.minor, sold, "{name}"),
                    Exclusive => assert_eq!(t.base.minor, sold, "{name}"),
                }
            }
        }
    }

    #[test]
    fn an_unknown_class_or_an_impossible_rate_is_refused() {
        let usd = Currency::USD;
        let m = |minor| Money {
            minor,
            currency: usd,
        };
        let refused = tax_order(
            &[("standard", m(1)), ("luxury", m(1))],
            &rates(),
            Prices::Exclusive,
            usd,
        )
        .unwrap_err();
        assert_eq!(
            refused,
            TaxRejected::UnknownClass {
                class: "luxury".into(),
                line: 1
            }
        );
        let mut too_high = rates();
        too_high.insert("odd".into(), RATE_PPM_MAX + 1);
        assert!(matches!(
            tax_order(&[("odd", m(1))], &too_high, Prices::Exclusive, usd),
            Err(TaxRejected::RateTooHigh { .. })
        ));
        assert_eq!(
            tax_order(
                &[("standard", m(i64::MAX))],
                &rates(),
                Prices::Exclusive,
                usd
            ),
            Err(TaxRejected::Overflow)
        );
        // An empty order: nothing.
        let empty = tax_order(&[], &rates(), Prices::Inclusive, usd).unwrap();
        assert_eq!(
            (empty.subtotal, empty.total, empty.taxes.len()),
            (m(0), m(0), 0)
        );
    }
}
