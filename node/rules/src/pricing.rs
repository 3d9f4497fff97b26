//! What every line of an order sells for (issue 17): its unit price (the catalog's, or an
//! approved override: `orders::price_lines`), then the store's promotions, then the line's
//! discount, then the order's discount, then tax (`tax::tax_order`), in that order.
//!
//! The rules, each exact in minor units:
//! - **Promotions** apply only to lines sold at their catalog price, automatically, by every
//!   till alike. A line gets at most one promotion. Of the promotions running at the order's
//!   time, the one that takes most off the order's lines not yet promoted applies first (ties:
//!   the lowest promotion id), then the next on what is left, and so on. A percent-off takes
//!   its percentage of each line it covers (rounded half away from zero); a multi-buy groups
//!   `quantity` units of its skus, the dearest units first, and the grouped units sell for
//!   the promotion's price per group, the difference shared over their lines in proportion.
//! - **Discounts** (a line's, then the order's) are a percentage or an amount of what is
//!   left; never more than it (422), never below zero. One above the store's
//!   `discountApprovalPercent` of what it applies to needs the order's approver (a manager;
//!   403 otherwise). The order's discount is shared over the lines in proportion to what they
//!   sell for (`money::allocate`), so a return refunds each line's share.
//! - **Tax** is computed once per rate on the lines' amounts after every adjustment, and each
//!   rate's tax is shared over its lines in proportion: a line's `paid` is what the customer
//!   paid for it, and the lines' `paid` add up to the order's total.

use std::collections::BTreeMap;

use fusion_contracts::commands::PlaceOrder;
use fusion_contracts::events::{
    Adjustment, AdjustmentKind, AppliedPromotion, OrderDiscount, OrderTax, SoldItem,
};
use fusion_contracts::money::allocate;
use fusion_contracts::pricing::{Discount, Off, Promotion, PromotionRule};
use fusion_contracts::{Currency, Money, PromotionId, Sku, Timestamp};

use crate::orders::OrderRejected;
use crate::tax::{Prices, RATE_PPM_MAX, RatePpm, STANDARD, TaxRejected, Taxes, div_round};

/// What the till's catalog says of a sku: its price, tax class and category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub price: Money,
    pub tax_class: String,
    pub category: Option<String>,
}

impl Listing {
    /// A listing of class `standard` with no category.
    pub fn standard(price: Money) -> Self {
        Self {
            price,
            tax_class: STANDARD.to_string(),
            category: None,
        }
    }
}

/// The store's terms an order is priced by: its taxes, its promotions, and the share of what
/// it applies to above which a discount needs a manager.
#[derive(Clone, Copy, Debug)]
pub struct Terms<'a> {
    pub taxes: Option<&'a Taxes>,
    pub promotions: &'a [Promotion],
    pub discount_approval_ppm: RatePpm,
}

/// A discount above 10 % of what it applies to needs a manager, unless the store says
/// otherwise (`discountApprovalPercent`).
pub const DISCOUNT_APPROVAL_PPM_DEFAULT: RatePpm = 100_000;

impl Default for Terms<'_> {
    fn default() -> Self {
        Self {
            taxes: None,
            promotions: &[],
            discount_approval_ppm: DISCOUNT_APPROVAL_PPM_DEFAULT,
        }
    }
}

/// An order priced: its lines as sold and its amounts.
#[derive(Clone, Debug, PartialEq)]
pub struct Priced {
    pub items: Vec<SoldItem>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub promotions: Vec<AppliedPromotion>,
    pub discount: Option<Box<OrderDiscount>>,
    pub taxes: Vec<OrderTax>,
    pub tax_included: bool,
    pub total: Money,
}

/// `ppm` of `amount`, rounded half away from zero.
fn share(amount: i64, ppm: RatePpm) -> i64 {
    // ppm ≤ 1,000,000: the result is at most `amount`.
    div_round(
        i128::from(amount) * i128::from(ppm),
        i128::from(RATE_PPM_MAX),
    ) as i64
}

/// One line as promotions see it.
struct Line<'a> {
    sku: &'a Sku,
    category: Option<&'a str>,
    unit: i64,
    quantity: u64,
    gross: i64,
    /// Sold at its catalog price: promotions may apply.
    at_list: bool,
}

/// What `promotion` would take off each of `lines` not yet `taken`: (line, amount > 0).
fn offer(
    promotion: &Promotion,
    lines: &[Line],
    taken: &[bool],
    currency: Currency,
) -> Vec<(usize, i64)> {
    let open = |i: usize| !taken[i] && lines[i].at_list;
    match &promotion.rule {
        PromotionRule::PercentOff {
            ppm,
            skus,
            categories,
        } => (0..lines.len())
            .filter(|&i| {
                open(i)
                    && (skus.contains(lines[i].sku)
                        || lines[i]
                            .category
                            .is_some_and(|c| categories.iter().any(|k| k == c)))
            })
            .map(|i| (i, share(lines[i].gross, *ppm)))
            .filter(|(_, off)| *off > 0)
            .collect(),
        PromotionRule::MultiBuy {
            skus,
            quantity,
            price,
        } => {
            if price.currency != currency {
                return Vec::new();
            }
            let mut eligible: Vec<usize> = (0..lines.len())
                .filter(|&i| open(i) && skus.contains(lines[i].sku))
                .collect();
            let units: u64 = eligible.iter().map(|&i| lines[i].quantity).sum();
            let groups = units / quantity;
            if groups == 0 {
                return Vec::new();
            }
            // The dearest units go into the groups (the customer's best deal), ties by line.
            eligible.sort_by(|&a, &b| lines[b].unit.cmp(&lines[a].unit).then(a.cmp(&b)));
            let mut left = groups * quantity;
            let mut grouped: Vec<(usize, i64)> = Vec::new();
            for i in eligible {
                if left == 0 {
                    break;
                }
                let k = left.min(lines[i].quantity);
                left -= k;
                // k ≤ quantity of a line whose gross fits: fits.
                grouped.push((i, lines[i].unit * k as i64));
            }
            let regular: i128 = grouped.iter().map(|(_, a)| i128::from(*a)).sum();
            let promoted = i128::from(price.minor) * i128::from(groups);
            let off = regular - promoted;
            if off <= 0 {
                return Vec::new();
            }
            grouped.sort_by_key(|(i, _)| *i);
            let weights: Vec<i64> = grouped.iter().map(|(_, a)| *a).collect();
            // 0 < off ≤ regular, the sum of line amounts: fits.
            let shares = allocate(off as i64, &weights);
            grouped
                .into_iter()
                .zip(shares)
                .map(|((i, _), s)| (i, s))
                .filter(|(_, s)| *s > 0)
                .collect()
        }
    }
}

/// The promotions' amounts per line, by the rule in the module doc: (line, promotion, amount).
fn promote(
    lines: &[Line],
    promotions: &[Promotion],
    now: Timestamp,
    currency: Currency,
) -> Vec<(usize, PromotionId, i64)> {
    let mut running: Vec<&Promotion> = promotions.iter().filter(|p| p.runs_at(now)).collect();
    running.sort_by_key(|p| p.id);
    let mut taken = vec![false; lines.len()];
    let mut applied = Vec::new();
    loop {
        // (index in `running`, amount, its offer)
        type Best = Option<(usize, i128, Vec<(usize, i64)>)>;
        let mut best: Best = None;
        for (n, p) in running.iter().enumerate() {
            let offered = offer(p, lines, &taken, currency);
            let total: i128 = offered.iter().map(|(_, a)| i128::from(*a)).sum();
            if total > 0 && best.as_ref().is_none_or(|(_, t, _)| total > *t) {
                best = Some((n, total, offered));
            }
        }
        let Some((n, _, offered)) = best else {
            break;
        };
        let p = running.remove(n);
        for (i, amount) in offered {
            taken[i] = true;
            applied.push((i, p.id, amount));
        }
    }
    applied
}

/// What `discount` takes off `base`; `line`: the line it is given on (`None`: the order).
fn discount_amount(
    discount: &Discount,
    base: i64,
    line: Option<usize>,
    approver: Option<&String>,
    approval_ppm: RatePpm,
) -> Result<i64, OrderRejected> {
    let amount = match discount.off {
        Off::Percent(ppm) => share(base, ppm.min(RATE_PPM_MAX)),
        Off::Amount(m) => m.minor,
    };
    if amount < 0 || amount > base {
        return Err(OrderRejected::DiscountTooLarge {
            line,
            asked: amount,
            base,
        });
    }
    // Above the threshold: amount / base > ppm / 1,000,000.
    let above =
        i128::from(amount) * i128::from(RATE_PPM_MAX) > i128::from(approval_ppm) * i128::from(base);
    if above && approver.is_none() {
        return Err(OrderRejected::DiscountNeedsApproval {
            line,
            percent: fusion_contracts::http::rate_percent(approval_ppm).to_string(),
        });
    }
    Ok(amount)
}

/// Prices `cmd` by the module's rules. `listing`: what the till's catalog says of a sku.
pub fn price_order(
    cmd: &PlaceOrder,
    listing: impl Fn(&Sku) -> Option<Listing>,
    terms: &Terms,
    now: Timestamp,
) -> Result<Priced, OrderRejected> {
    let currency = cmd.currency;
    let listings: Vec<Option<Listing>> = cmd
        .lines
        .iter()
        .map(|l| listing(&l.sku).filter(|x| x.price.currency == currency))
        .collect();
    let sold = crate::orders::price_lines(cmd, |sku| {
        cmd.lines
            .iter()
            .position(|l| &l.sku == sku)
            .and_then(|i| listings[i].as_ref().map(|x| x.price))
    })?;
    let overflow = || OrderRejected::TotalOverflow;
    let mut lines = Vec::with_capacity(sold.len());
    for ((item, unit), listed) in sold.iter().zip(&listings) {
        lines.push(Line {
            sku: &item.sku,
            category: listed.as_ref().and_then(|x| x.category.as_deref()),
            unit: unit.minor,
            quantity: item.quantity,
            gross: unit.checked_mul(item.quantity).ok_or_else(overflow)?.minor,
            at_list: item.price_override.is_none() && listed.is_some(),
        });
    }
    let subtotal = lines
        .iter()
        .try_fold(0i64, |s, l| s.checked_add(l.gross))
        .ok_or_else(overflow)?;
    let money = |minor: i64| Money { minor, currency };
    let mut adjustments: Vec<Vec<Adjustment>> = vec![Vec::new(); lines.len()];
    let mut nets: Vec<i64> = lines.iter().map(|l| l.gross).collect();
    let names: BTreeMap<PromotionId, &str> = terms
        .promotions
        .iter()
        .map(|p| (p.id, p.name.as_str()))
        .collect();
    let mut by_promotion: BTreeMap<PromotionId, i64> = BTreeMap::new();
    let mut promotion_order: Vec<PromotionId> = Vec::new();
    for (i, id, amount) in promote(&lines, terms.promotions, now, currency) {
        nets[i] -= amount;
        adjustments[i].push(Adjustment {
            kind: AdjustmentKind::Promotion,
            amount: money(amount).to_decimal(),
            promotion_id: Some(id),
            reason: None,
            approved_by: None,
        });
        if !by_promotion.contains_key(&id) {
            promotion_order.push(id);
        }
        *by_promotion.entry(id).or_insert(0) += amount;
    }
    let approver = cmd.price_approver.as_ref();
    for (i, l) in cmd.lines.iter().enumerate() {
        let Some(discount) = &l.discount else {
            continue;
        };
        let amount = discount_amount(
            discount,
            nets[i],
            Some(i),
            approver,
            terms.discount_approval_ppm,
        )?;
        if amount == 0 {
            continue;
        }
        nets[i] -= amount;
        adjustments[i].push(Adjustment {
            kind: AdjustmentKind::Discount,
            amount: money(amount).to_decimal(),
            promotion_id: None,
            reason: discount.reason.clone(),
            approved_by: approver.cloned(),
        });
    }
    let mut order_discount = None;
    if let Some(discount) = &cmd.discount {
        let base = nets.iter().sum::<i64>();
        let amount = discount_amount(discount, base, None, approver, terms.discount_approval_ppm)?;
        if amount > 0 {
            let shares = allocate(amount, &nets);
            for (i, s) in shares.into_iter().enumerate() {
                if s == 0 {
                    continue;
                }
                nets[i] -= s;
                adjustments[i].push(Adjustment {
                    kind: AdjustmentKind::OrderDiscount,
                    amount: money(s).to_decimal(),
                    promotion_id: None,
                    reason: discount.reason.clone(),
                    approved_by: approver.cloned(),
                });
            }
            order_discount = Some(Box::new(OrderDiscount {
                amount: money(amount).to_decimal(),
                reason: discount.reason.clone(),
                approved_by: approver.cloned(),
            }));
        }
    }
    let classes: Vec<&str> = listings
        .iter()
        .map(|x| x.as_ref().map_or(STANDARD, |x| x.tax_class.as_str()))
        .collect();
    // Tax per rate, then each rate's tax shared over its lines.
    let mut line_tax = vec![0i64; lines.len()];
    let (taxes, tax_included, total) = match terms.taxes.filter(|t| !t.rates.is_empty()) {
        None => (Vec::new(), false, nets.iter().sum::<i64>()),
        Some(taxes) => {
            let amounts: Vec<(&str, Money)> = classes
                .iter()
                .zip(&nets)
                .map(|(c, n)| (*c, money(*n)))
                .collect();
            let taxed = crate::tax::tax_order(&amounts, &taxes.rates, taxes.prices, currency)
                .map_err(|refused| match refused {
                    TaxRejected::UnknownClass { class, line } => OrderRejected::NoTaxRate {
                        sku: cmd.lines[line].sku.clone(),
                        class,
                        line,
                    },
                    // Settings never hold a rate above 100 % (read as unset).
                    TaxRejected::Overflow | TaxRejected::RateTooHigh { .. } => overflow(),
                })?;
            for t in &taxed.taxes {
                let of_class: Vec<usize> = (0..lines.len())
                    .filter(|&i| classes[i] == t.class)
                    .collect();
                let weights: Vec<i64> = of_class.iter().map(|&i| nets[i]).collect();
                for (i, s) in of_class.into_iter().zip(allocate(t.tax.minor, &weights)) {
                    line_tax[i] = s;
                }
            }
            let lines_out = taxed
                .taxes
                .into_iter()
                .map(|t| OrderTax {
                    class: t.class,
                    rate: fusion_contracts::http::rate_percent(t.rate_ppm),
                    base: t.base.to_decimal(),
                    tax: t.tax.to_decimal(),
                })
                .collect();
            (
                lines_out,
                taxes.prices == Prices::Inclusive,
                taxed.total.minor,
            )
        }
    };
    let items: Vec<SoldItem> = sold
        .into_iter()
        .enumerate()
        .map(|(i, (mut item, _))| {
            item.tax_class = classes[i].to_string();
            item.adjustments = std::mem::take(&mut adjustments[i]);
            item.net = money(nets[i]).to_decimal();
            item.tax = money(line_tax[i]).to_decimal();
            let paid = if tax_included {
                nets[i]
            } else {
                nets[i] + line_tax[i]
            };
            item.paid = money(paid).to_decimal();
            item
        })
        .collect();
    let promotions = promotion_order
        .into_iter()
        .map(|id| AppliedPromotion {
            promotion_id: id,
            name: names.get(&id).copied().unwrap_or_default().to_string(),
            amount: money(by_promotion[&id]).to_decimal(),
        })
        .collect();
    Ok(Priced {
        items,
        subtotal: money(subtotal),
        discount_total: money(subtotal - nets.iter().sum::<i64>()),
        promotions,
        discount: order_discount,
        taxes,
        tax_included,
        total: money(total),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use fusion_contracts::commands::OrderLine;
    use fusion_contracts::{CustomerId, OrderId};

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_ms(1_000_000);

    fn usd(minor: i64) -> Money {
        Money {
            minor,
            currency: Currency::USD,
        }
    }

    fn sku(s: &str) -> Sku {
        Sku::new(s).unwrap()
    }

    /// The catalog of the tables: (sku, price, class, category).
    fn catalog(s: &Sku) -> Option<Listing> {
        let (price, class, category) = match s.as_str() {
            "BEAN" => (1000, "standard", Some("coffee")),
            "DRIP" => (800, "standard", Some("coffee")),
            "MUG" => (300, "standard", None),
            "MILK" => (199, "reduced", Some("dairy")),
            "PEN" => (1, "standard", None),
            _ => return None,
        };
        Some(Listing {
            price: usd(price),
            tax_class: class.into(),
            category: category.map(Into::into),
        })
    }

    fn line(s: &str, quantity: u64) -> OrderLine {
        OrderLine {
            sku: sku(s),
            quantity,
            price: None,
            category: None,
            override_reason: None,
            discount: None,
        }
    }

    fn off(line: OrderLine, off: Off) -> OrderLine {
        OrderLine {
            discount: Some(Discount {
                off,
                reason: Some("why".into()),
            }),
            ..line
        }
    }

    fn order(lines: Vec<OrderLine>) -> PlaceOrder {
        PlaceOrder {
            order_id: OrderId::from_u128(1),
            customer_id: CustomerId::new("c").unwrap(),
            currency: Currency::USD,
            lines,
            shipping_address: None,
            price_approver: None,
            discount: None,
            staff: None,
        }
    }

    fn promo(id: u128, rule: PromotionRule) -> Promotion {
        Promotion {
            id: PromotionId::from_u128(id),
            name: format!("promo {id}"),
            starts_at: None,
            ends_at: None,
            rule,
        }
    }

    fn percent_off(id: u128, ppm: u32, skus: &[&str], categories: &[&str]) -> Promotion {
        promo(
            id,
            PromotionRule::PercentOff {
                ppm,
                skus: skus.iter().map(|s| sku(s)).collect(),
                categories: categories.iter().map(|c| c.to_string()).collect(),
            },
        )
    }

    fn multi_buy(id: u128, skus: &[&str], quantity: u64, price: i64) -> Promotion {
        promo(
            id,
            PromotionRule::MultiBuy {
                skus: skus.iter().map(|s| sku(s)).collect(),
                quantity,
                price: usd(price),
            },
        )
    }

    fn taxes(prices: Prices) -> Taxes {
        Taxes {
            prices,
            rates: BTreeMap::from([("standard".into(), 200_000), ("reduced".into(), 55_000)]),
        }
    }

    /// Each line's (net, tax, paid) and the order's (subtotal, discount total, total), in
    /// cents.
    type Amounts = (Vec<(i64, i64, i64)>, (i64, i64, i64));

    fn amounts(p: &Priced) -> Amounts {
        let cents =
            |d: fusion_contracts::Decimal| Money::from_decimal(d, Currency::USD).unwrap().minor;
        (
            p.items
                .iter()
                .map(|i| (cents(i.net), cents(i.tax), cents(i.paid)))
                .collect(),
            (p.subtotal.minor, p.discount_total.minor, p.total.minor),
        )
    }

    #[test]
    fn promotions_table() {
        let late = Timestamp::from_unix_ms(2_000_000);
        let windowed =
            |p: Promotion, starts: Option<Timestamp>, ends: Option<Timestamp>| Promotion {
                starts_at: starts,
                ends_at: ends,
                ..p
            };
        // (name, lines, promotions, expected amounts, promotions applied (id, cents))
        type Case = (
            &'static str,
            Vec<OrderLine>,
            Vec<Promotion>,
            Amounts,
            Vec<(u128, i64)>,
        );
        let cases: Vec<Case> = vec![
            (
                "none",
                vec![line("BEAN", 2)],
                vec![],
                (vec![(2000, 0, 2000)], (2000, 0, 2000)),
                vec![],
            ),
            (
                "20 % off a sku",
                vec![line("BEAN", 3), line("MUG", 1)],
                vec![percent_off(1, 200_000, &["BEAN"], &[])],
                (vec![(2400, 0, 2400), (300, 0, 300)], (3300, 600, 2700)),
                vec![(1, 600)],
            ),
            (
                "12.5 % off a category, half a cent away from zero",
                vec![line("DRIP", 1), line("MILK", 1), line("PEN", 4)],
                vec![percent_off(1, 125_000, &[], &["coffee", "dairy"])],
                // 800 × 12.5 % = 100; 199 × 12.5 % = 24.875 → 25.
                (
                    vec![(700, 0, 700), (174, 0, 174), (4, 0, 4)],
                    (1003, 125, 878),
                ),
                vec![(1, 125)],
            ),
            (
                "3 for 20.00 over two skus, the dearest units grouped",
                vec![line("DRIP", 2), line("BEAN", 2)],
                vec![multi_buy(2, &["BEAN", "DRIP"], 3, 2000)],
                // Grouped: BEAN, BEAN, DRIP = 28.00 → 20.00: 8.00 off, shared 20 : 8.
                // allocate(800, [800, 2000]) by line order: DRIP 229, BEAN 571.
                (vec![(1371, 0, 1371), (1429, 0, 1429)], (3600, 800, 2800)),
                vec![(2, 800)],
            ),
            (
                "multi-buy short of a group",
                vec![line("BEAN", 2)],
                vec![multi_buy(2, &["BEAN"], 3, 2000)],
                (vec![(2000, 0, 2000)], (2000, 0, 2000)),
                vec![],
            ),
            (
                "multi-buy dearer than the regular price gives nothing",
                vec![line("MUG", 3)],
                vec![multi_buy(2, &["MUG"], 3, 1000)],
                (vec![(900, 0, 900)], (900, 0, 900)),
                vec![],
            ),
            (
                "overlapping: the bigger one wins the line",
                vec![line("BEAN", 3)],
                vec![
                    percent_off(1, 100_000, &["BEAN"], &[]),
                    multi_buy(2, &["BEAN"], 3, 2500),
                ],
                (vec![(2500, 0, 2500)], (3000, 500, 2500)),
                vec![(2, 500)],
            ),
            (
                "overlapping, equal: the lower id wins",
                vec![line("BEAN", 1)],
                vec![
                    percent_off(7, 100_000, &["BEAN"], &[]),
                    percent_off(3, 100_000, &[], &["coffee"]),
                ],
                (vec![(900, 0, 900)], (1000, 100, 900)),
                vec![(3, 100)],
            ),
            (
                "two promotions on different lines both apply",
                vec![line("BEAN", 1), line("MUG", 2)],
                vec![
                    percent_off(1, 100_000, &["BEAN"], &[]),
                    multi_buy(2, &["MUG"], 2, 500),
                ],
                (vec![(900, 0, 900), (500, 0, 500)], (1600, 200, 1400)),
                vec![(1, 100), (2, 100)],
            ),
            (
                "outside its window",
                vec![line("BEAN", 1)],
                vec![
                    windowed(percent_off(1, 500_000, &["BEAN"], &[]), Some(late), None),
                    windowed(percent_off(2, 500_000, &["BEAN"], &[]), None, Some(NOW)),
                ],
                (vec![(1000, 0, 1000)], (1000, 0, 1000)),
                vec![],
            ),
            (
                "inside its window (start inclusive)",
                vec![line("BEAN", 1)],
                vec![windowed(
                    percent_off(1, 500_000, &["BEAN"], &[]),
                    Some(NOW),
                    Some(late),
                )],
                (vec![(500, 0, 500)], (1000, 500, 500)),
                vec![(1, 500)],
            ),
            (
                "an overridden line gets no promotion",
                vec![OrderLine {
                    price: Some(usd(900)),
                    ..line("BEAN", 1)
                }],
                vec![percent_off(1, 500_000, &["BEAN"], &[])],
                (vec![(900, 0, 900)], (900, 0, 900)),
                vec![],
            ),
        ];
        for (name, lines, promotions, expected, applied) in cases {
            let mut cmd = order(lines);
            cmd.price_approver = Some("token:m".into());
            let terms = Terms {
                promotions: &promotions,
                ..Terms::default()
            };
            let priced = price_order(&cmd, catalog, &terms, NOW).unwrap();
            assert_eq!(amounts(&priced), expected, "{name}");
            let got: Vec<(u128, i64)> = priced
                .promotions
                .iter()
                .map(|p| {
                    (
                        p.promotion_id.as_u128(),
                        Money::from_decimal(p.amount, Currency::USD).unwrap().minor,
                    )
                })
                .collect();
            assert_eq!(got, applied, "{name}");
        }
    }

    #[test]
    fn discounts_table() {
        type Expected = Result<Amounts, &'static str>;
        // (name, lines, order discount, approved, expected)
        type Case = (&'static str, Vec<OrderLine>, Option<Off>, bool, Expected);
        let cases: Vec<Case> = vec![
            (
                "5 % off a line by a cashier",
                vec![off(line("BEAN", 1), Off::Percent(50_000))],
                None,
                false,
                Ok((vec![(950, 0, 950)], (1000, 50, 950))),
            ),
            (
                "exactly the threshold needs nobody",
                vec![off(line("BEAN", 1), Off::Amount(usd(100)))],
                None,
                false,
                Ok((vec![(900, 0, 900)], (1000, 100, 900))),
            ),
            (
                "a cent above the threshold needs a manager",
                vec![off(line("BEAN", 1), Off::Amount(usd(101)))],
                None,
                false,
                Err("line approval"),
            ),
            (
                "15 % with a manager's approval",
                vec![off(line("BEAN", 1), Off::Percent(150_000))],
                None,
                true,
                Ok((vec![(850, 0, 850)], (1000, 150, 850))),
            ),
            (
                "100 % of a line, approved",
                vec![off(line("MUG", 2), Off::Percent(1_000_000))],
                None,
                true,
                Ok((vec![(0, 0, 0)], (600, 600, 0))),
            ),
            (
                "more than the line",
                vec![off(line("MUG", 1), Off::Amount(usd(301)))],
                None,
                true,
                Err("line too large"),
            ),
            (
                "an order discount shared in proportion",
                vec![line("BEAN", 1), line("MUG", 1), line("PEN", 1)],
                Some(Off::Amount(usd(100))),
                false,
                // allocate(100, [1000, 300, 1]) = 77, 23, 0.
                Ok((
                    vec![(923, 0, 923), (277, 0, 277), (1, 0, 1)],
                    (1301, 100, 1201),
                )),
            ),
            (
                "an order discount above the threshold",
                vec![line("BEAN", 1)],
                Some(Off::Percent(200_000)),
                false,
                Err("order approval"),
            ),
            (
                "an order discount above the order",
                vec![line("PEN", 1)],
                Some(Off::Amount(usd(2))),
                true,
                Err("order too large"),
            ),
            (
                "a line discount, then the order's on what is left",
                vec![off(line("BEAN", 1), Off::Percent(100_000)), line("MUG", 1)],
                Some(Off::Percent(100_000)),
                false,
                // 900 + 300 = 1200; 10 % = 120 shared 90 : 30.
                Ok((vec![(810, 0, 810), (270, 0, 270)], (1300, 220, 1080))),
            ),
        ];
        for (name, lines, order_off, approved, expected) in cases {
            let mut cmd = order(lines);
            cmd.price_approver = approved.then(|| "token:m".to_string());
            cmd.discount = order_off.map(|off| Discount { off, reason: None });
            let got = price_order(&cmd, catalog, &Terms::default(), NOW);
            match (got, expected) {
                (Ok(priced), Ok(amounts_expected)) => {
                    assert_eq!(amounts(&priced), amounts_expected, "{name}");
                    for item in &priced.items {
                        for adj in &item.adjustments {
                            assert_eq!(
                                adj.approved_by.is_some(),
                                approved,
                                "{name}: the approver is recorded"
                            );
                        }
                    }
                }
                (
                    Err(OrderRejected::DiscountNeedsApproval { line: Some(0), .. }),
                    Err("line approval"),
                )
                | (
                    Err(OrderRejected::DiscountNeedsApproval { line: None, .. }),
                    Err("order approval"),
                )
                | (
                    Err(OrderRejected::DiscountTooLarge { line: Some(0), .. }),
                    Err("line too large"),
                )
                | (
                    Err(OrderRejected::DiscountTooLarge { line: None, .. }),
                    Err("order too large"),
                ) => {}
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
        // The threshold is the store's.
        let cmd = order(vec![off(line("BEAN", 1), Off::Percent(150_000))]);
        let terms = Terms {
            discount_approval_ppm: 200_000,
            ..Terms::default()
        };
        assert!(price_order(&cmd, catalog, &terms, NOW).is_ok());
    }

    /// Tax comes after every adjustment, per rate, and each rate's tax is shared over its
    /// lines: the lines' paid add up to the total.
    #[test]
    fn tax_after_discounts_table() {
        let promotions = [percent_off(1, 100_000, &[], &["coffee"])];
        // (name, prices, lines, order discount, expected)
        type Case = (&'static str, Prices, Vec<OrderLine>, Option<Off>, Amounts);
        let cases: Vec<Case> = vec![
            (
                "sales tax on the discounted amount",
                Prices::Exclusive,
                vec![line("BEAN", 1), line("MUG", 1)],
                None,
                // BEAN 1000 − 100 promo = 900; MUG 300; 20 % of 1200 = 240, shared 180 : 60.
                (vec![(900, 180, 1080), (300, 60, 360)], (1300, 100, 1440)),
            ),
            (
                "VAT held in the discounted amount",
                Prices::Inclusive,
                vec![line("BEAN", 1), line("MUG", 1)],
                None,
                // 1200 gross at 20 %: 200 tax, shared 150 : 50; paid = net.
                (vec![(900, 150, 900), (300, 50, 300)], (1300, 100, 1200)),
            ),
            (
                "two rates, an order discount across both",
                Prices::Exclusive,
                vec![line("MUG", 1), line("MILK", 2)],
                Some(Off::Amount(usd(100))),
                // No promotion (MILK is dairy); the order discount 100 over [300, 398]: 43,
                // 57 → MUG 257, MILK 341. Standard 20 % of 257 = 51.4 → 51; reduced 5.5 % of
                // 341 = 18.755 → 19.
                (vec![(257, 51, 308), (341, 19, 360)], (698, 100, 668)),
            ),
            (
                "many small lines: one rounding per rate",
                Prices::Exclusive,
                vec![line("PEN", 1), line("PEN", 1), line("PEN", 1)],
                None,
                // 3 × 0.01 at 20 % = 0.006 → 0.01, shared 0, 1, 0 (by cumulative rounding).
                (vec![(1, 0, 1), (1, 1, 2), (1, 0, 1)], (3, 0, 4)),
            ),
        ];
        for (name, prices, lines, order_off, expected) in cases {
            let mut cmd = order(lines);
            cmd.price_approver = Some("token:m".into());
            cmd.discount = order_off.map(|off| Discount { off, reason: None });
            let taxes = taxes(prices);
            let terms = Terms {
                taxes: Some(&taxes),
                promotions: &promotions,
                ..Terms::default()
            };
            let priced = price_order(&cmd, catalog, &terms, NOW).unwrap();
            assert_eq!(amounts(&priced), expected, "{name}");
            assert_eq!(priced.tax_included, prices == Prices::Inclusive, "{name}");
        }
    }

    /// Yen have no minor unit: shares and rounding stay whole.
    #[test]
    fn yen_stay_whole() {
        let jpy = Currency::JPY;
        let listing = |_: &Sku| {
            Some(Listing::standard(Money {
                minor: 333,
                currency: jpy,
            }))
        };
        let mut cmd = order(vec![line("A", 1), line("B", 2)]);
        cmd.currency = jpy;
        cmd.discount = Some(Discount {
            off: Off::Percent(50_000),
            reason: None,
        });
        let taxes = Taxes {
            prices: Prices::Inclusive,
            rates: BTreeMap::from([("standard".into(), 100_000)]),
        };
        let terms = Terms {
            taxes: Some(&taxes),
            ..Terms::default()
        };
        let priced = price_order(&cmd, listing, &terms, NOW).unwrap();
        // 999 − 5 % (49.95 → 50) = 949, shared [333, 666] → 17, 33; VAT 10/110 of 949 =
        // 86.27 → 86, shared by net [316, 633] → 29, 57.
        let nets: Vec<String> = priced.items.iter().map(|i| i.net.to_string()).collect();
        let tax: Vec<String> = priced.items.iter().map(|i| i.tax.to_string()).collect();
        assert_eq!(nets, ["316", "633"]);
        assert_eq!(tax, ["29", "57"]);
        assert_eq!(priced.total.minor, 949);
    }

    proptest::proptest! {
        /// Whatever the lines, promotions, discounts and taxes, the order's event is valid:
        /// every line's net, tax and paid add up, and the lines' paid make the total.
        #[test]
        fn every_priced_order_is_a_valid_event(
            lines in proptest::collection::vec((0usize..5, 1u64..20, proptest::option::of(0u32..=300_000)), 1..8),
            order_off in proptest::option::of(0u32..=1_000_000),
            promo_ppm in 1u32..=1_000_000,
            group in 2u64..5,
            group_price in 0i64..5000,
            inclusive in proptest::bool::ANY,
        ) {
            const SKUS: [&str; 5] = ["BEAN", "DRIP", "MUG", "MILK", "PEN"];
            let mut cmd = order(
                lines
                    .iter()
                    .map(|(s, q, d)| {
                        let l = line(SKUS[*s], *q);
                        match d {
                            Some(ppm) => off(l, Off::Percent(*ppm)),
                            None => l,
                        }
                    })
                    .collect(),
            );
            cmd.price_approver = Some("token:m".into());
            cmd.discount = order_off.map(|ppm| Discount { off: Off::Percent(ppm), reason: None });
            let promotions = [
                percent_off(1, promo_ppm, &["MUG"], &["coffee"]),
                multi_buy(2, &["BEAN", "DRIP", "PEN"], group, group_price),
            ];
            let taxes = taxes(if inclusive { Prices::Inclusive } else { Prices::Exclusive });
            let terms = Terms {
                taxes: Some(&taxes),
                promotions: &promotions,
                ..Terms::default()
            };
            let events = crate::orders::place_with_backorders(
                &cmd, catalog, |_| u64::MAX, |_| false, &terms, NOW, None,
            )
            .unwrap();
            let envelope = fusion_contracts::Envelope::new(
                fusion_contracts::EventId::from_u128(1),
                fusion_contracts::NodeId::new("node-a").unwrap(),
                1,
                NOW,
                fusion_contracts::CorrelationId::new("c").unwrap(),
                None,
                events[0].clone(),
            );
            proptest::prop_assert!(envelope.is_ok(), "{:?}", envelope);
        }
    }
}
