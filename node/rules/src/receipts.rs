//! Receipts (issue 18, part 4): the number a paid order gets at its till, the fold that keeps
//! every till's numbers gap-free, and the receipt as 42-column text for an 80 mm printer.
//!
//! **Receipt numbers are gap-free per till**: the till numbers a receipt one past its last in
//! the transaction that records `order.paid`; every receiver folds a till's `receipt.issued`
//! by [`apply`], refusing a number that is not the next or a receipt of another till.

use fusion_contracts::events::{ReceiptIssued, SoldItem, receipt_number};
use fusion_contracts::{Currency, Decimal, Event, Money, NodeId, Timestamp};

use crate::Refused;
use crate::orders::Order;

/// The receipt of a paid `order` at `till`, whose last receipt was number `last` (0: none).
pub fn issue(order: &Order, till: &NodeId, last: u64, now: Timestamp) -> Event {
    let number = last + 1;
    ReceiptIssued {
        receipt: receipt_number(till, number),
        number,
        order_id: order.id,
        till: till.clone(),
        total: order.total.to_decimal(),
        currency: order.total.currency,
        issued_at: now,
    }
    .into()
}

/// Folds `origin`'s `receipt.issued` into its last number: only the next number, and only
/// its own.
pub fn apply(last: u64, origin: &NodeId, e: &ReceiptIssued) -> Result<u64, Refused> {
    let refuse = |reason: String| {
        Err(Refused::Receipts {
            topic: "receipt.issued",
            reason,
        })
    };
    if &e.till != origin {
        return refuse(format!("{origin} issued a receipt of till {}", e.till));
    }
    if e.number != last + 1 {
        return refuse(format!(
            "receipt {} follows {last}: numbers are gap-free",
            e.number
        ));
    }
    Ok(e.number)
}

/// The printer's width in characters (80 mm paper, font A).
pub const RECEIPT_COLUMNS: usize = 42;

/// A paid order as its receipt shows it.
#[derive(Clone, Debug)]
pub struct Receipt<'a> {
    pub store: &'a str,
    pub issued: &'a ReceiptIssued,
    pub order: &'a Order,
    /// The product name of each line (its sku when the catalog has none).
    pub names: &'a [String],
    /// (tender label, amount, change given) of each payment taken.
    pub tenders: &'a [(String, Money, Option<Money>)],
    /// `DUPLICATE` above a reprint.
    pub duplicate: bool,
}

/// The receipt as plain text, no line wider than [`RECEIPT_COLUMNS`].
pub fn render_text(r: &Receipt) -> String {
    let currency = r.order.total.currency;
    let money = |d: Decimal| {
        Money::from_decimal(d, currency)
            .map(|m| m.to_decimal().to_string())
            .unwrap_or_else(|_| d.to_string())
    };
    let mut out = Vec::new();
    let center = |text: &str| {
        let text = clip(text, RECEIPT_COLUMNS);
        let pad = (RECEIPT_COLUMNS - text.chars().count()) / 2;
        format!("{}{text}", " ".repeat(pad))
    };
    if r.duplicate {
        out.push(center("*** DUPLICATE ***"));
    }
    out.push(center(r.store));
    out.push(center(&format!("Receipt {}", r.issued.receipt)));
    out.push(center(&r.issued.issued_at.to_string()));
    out.push("-".repeat(RECEIPT_COLUMNS));
    for (i, item) in r.order.items.iter().enumerate() {
        let name = r.names.get(i).map_or(item.sku.as_str(), String::as_str);
        item_lines(&mut out, name, item, &money);
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    out.push(two("Subtotal", &r.order.subtotal.to_decimal().to_string()));
    if r.order.discount_total.minor > 0 {
        out.push(two(
            "Discounts",
            &format!("-{}", r.order.discount_total.to_decimal()),
        ));
    }
    for tax in &r.order.taxes {
        let label = format!(
            "Tax {} {}%{}",
            tax.class,
            tax.rate,
            if r.order.tax_included { " incl." } else { "" }
        );
        out.push(two(&label, &money(tax.tax)));
    }
    out.push(two(
        "TOTAL",
        &format!("{} {}", currency_code(currency), r.order.total.to_decimal()),
    ));
    for (label, amount, change) in r.tenders {
        out.push(two(label, &amount.to_decimal().to_string()));
        if let Some(change) = change.filter(|c| c.minor > 0) {
            out.push(two("Change", &change.to_decimal().to_string()));
        }
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    out.push(center(&format!("Order {}", r.order.id)));
    out.join("\n") + "\n"
}

fn currency_code(c: Currency) -> String {
    c.to_string()
}

/// A line: its name (wrapped, then clipped, to two lines), quantity × unit price and what it
/// paid, and each adjustment.
fn item_lines(
    out: &mut Vec<String>,
    name: &str,
    item: &SoldItem,
    money: &dyn Fn(Decimal) -> String,
) {
    let paid = money(item.paid);
    let detail = format!("{} x {}", item.quantity, money(item.price));
    let name_width = RECEIPT_COLUMNS - paid.chars().count() - 1;
    out.push(two(&clip(name, name_width), &paid));
    out.push(format!("  {}", clip(&detail, RECEIPT_COLUMNS - 2)));
    for a in &item.adjustments {
        let label = a
            .reason
            .clone()
            .unwrap_or_else(|| format!("{:?}", a.kind).to_lowercase());
        let amount = format!("-{}", money(a.amount));
        out.push(two(
            &format!(
                "  {}",
                clip(&label, RECEIPT_COLUMNS - amount.chars().count() - 3)
            ),
            &amount,
        ));
    }
}

/// `left` and `right` on one line, right aligned; `left` clipped to fit.
fn two(left: &str, right: &str) -> String {
    let right = clip(right, RECEIPT_COLUMNS);
    let room = RECEIPT_COLUMNS - right.chars().count();
    let left = clip(left, room.saturating_sub(1));
    let pad = RECEIPT_COLUMNS - left.chars().count() - right.chars().count();
    format!("{left}{}{right}", " ".repeat(pad))
}

/// At most `width` characters of `text`, an ellipsis marking a cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_ms(1_764_700_000_000);

    fn till(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    fn issued(till_name: &str, number: u64) -> ReceiptIssued {
        ReceiptIssued {
            receipt: receipt_number(&till(till_name), number),
            number,
            order_id: fusion_contracts::OrderId::from_u128(1),
            till: till(till_name),
            total: Decimal::new(950, 2),
            currency: Currency::USD,
            issued_at: NOW,
        }
    }

    /// (name, last, origin, event, expected next or refusal)
    #[test]
    fn receipt_numbers_are_gap_free_per_till() {
        let cases: &[(&str, u64, &str, ReceiptIssued, Option<u64>)] = &[
            ("the first", 0, "till-a", issued("till-a", 1), Some(1)),
            ("the next", 41, "till-a", issued("till-a", 42), Some(42)),
            ("a gap", 41, "till-a", issued("till-a", 43), None),
            ("again", 42, "till-a", issued("till-a", 42), None),
            ("another till's", 0, "till-b", issued("till-a", 1), None),
        ];
        for (name, last, origin, event, expected) in cases {
            let got = apply(*last, &till(origin), event).ok();
            assert_eq!(got, *expected, "{name}");
            assert!(Event::from(event.clone()).validate().is_ok(), "{name}");
        }
    }

    #[test]
    fn the_text_receipt_fits_42_columns() {
        use fusion_contracts::events::{Adjustment, AdjustmentKind, OrderTax};
        let usd = |minor| Money {
            minor,
            currency: Currency::USD,
        };
        let item = |sku: &str, quantity, price: i64, paid: i64, adjustments| SoldItem {
            sku: fusion_contracts::Sku::new(sku).unwrap(),
            quantity,
            price: usd(price).to_decimal(),
            category: None,
            list_price: Some(usd(price).to_decimal()),
            price_override: None,
            tax_class: "standard".into(),
            adjustments,
            net: usd(paid).to_decimal(),
            tax: usd(0).to_decimal(),
            paid: usd(paid).to_decimal(),
        };
        let order = Order {
            id: fusion_contracts::OrderId::from_u128(1),
            customer_id: fusion_contracts::CustomerId::new("c").unwrap(),
            items: vec![
                item("MUG", 2, 450, 900, vec![]),
                item(
                    "GRN-HAND",
                    1,
                    4999,
                    3999,
                    vec![Adjustment {
                        kind: AdjustmentKind::Promotion,
                        amount: usd(1000).to_decimal(),
                        promotion_id: None,
                        reason: Some("Winter sale on every hand grinder in the shop".into()),
                        approved_by: None,
                    }],
                ),
            ],
            total: usd(4899),
            status: fusion_contracts::events::OrderStatus::Fulfilled,
            created_at: NOW,
            updated_at: NOW,
            flag: None,
            shipping_address: None,
            hold_until: None,
            subtotal: usd(5899),
            discount_total: usd(1000),
            promotions: vec![],
            discount: None,
            taxes: vec![OrderTax {
                class: "standard".into(),
                rate: Decimal::new(20, 0),
                base: usd(4083).to_decimal(),
                tax: usd(816).to_decimal(),
            }],
            tax_included: true,
        };
        let receipt = issued("till-a", 7);
        let names = [
            "Stoneware mug".to_string(),
            "Hand grinder, ceramic burr, with a very long catalog name".to_string(),
        ];
        let tenders = [("Cash".to_string(), usd(5000), Some(usd(101)))];
        let text = render_text(&Receipt {
            store: "Corner Coffee",
            issued: &receipt,
            order: &order,
            names: &names,
            tenders: &tenders,
            duplicate: true,
        });
        for line in text.lines() {
            assert!(line.chars().count() <= RECEIPT_COLUMNS, "{line:?}\n{text}");
        }
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("DUPLICATE"), "{text}");
        assert!(text.contains("Receipt till-a-7"), "{text}");
        for (label, amount) in [
            ("Stoneware mug", "9.00"),
            ("Subtotal", "58.99"),
            ("Discounts", "-10.00"),
            ("Tax standard 20% incl.", "8.16"),
            ("TOTAL", "USD 48.99"),
            ("Cash", "50.00"),
            ("Change", "1.01"),
        ] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(label) && l.ends_with(amount)),
                "{label} … {amount}\n{text}"
            );
        }
        assert!(text.contains("-10.00"), "the promotion's line\n{text}");
        assert!(text.contains('…'), "a long name is clipped\n{text}");
    }
}
