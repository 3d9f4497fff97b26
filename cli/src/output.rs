//! How operator commands print: aligned tables for people by default, the server's JSON with
//! `--json` (one document on stdout, for scripts).

use serde_json::Value;

/// Which page of a list to show.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Paging {
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
}

impl Paging {
    pub fn query(&self) -> String {
        format!("limit={}&offset={}", self.limit, self.offset)
    }
}

/// A column: its header and the field of each JSON object it shows.
pub type Column = (&'static str, &'static str);

/// Fields that are amounts of money in the object's `currency`.
const MONEY_FIELDS: &[&str] = &[
    "price",
    "originalPrice",
    "listPrice",
    "total",
    "amount",
    "refunded",
    "changeDue",
    "balance",
    "refund",
    "subtotal",
    "discountTotal",
    "amountDue",
];

/// A field of `item` as a table cell: strings bare, numbers and booleans as written, absent as
/// `-`; an amount of money with its currency's decimals (`14.50`, `1200` yen).
/// A dotted field (`order.total`) is read in the nested object.
fn cell(item: &Value, field: &str) -> String {
    if let Some((parent, rest)) = field.split_once('.') {
        return match item.get(parent) {
            Some(inner) => cell(inner, rest),
            None => "-".into(),
        };
    }
    let value = item.get(field);
    if let (Some(Value::Number(n)), Some(Value::String(code))) = (value, item.get("currency"))
        && MONEY_FIELDS.contains(&field)
        && let Some(money) = money(&n.to_string(), code)
    {
        return money;
    }
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `amount` (JSON digits) written with the decimals of the currency `code`.
fn money(amount: &str, code: &str) -> Option<String> {
    use fusion_contracts::{Currency, Decimal, Money};
    let currency = Currency::parse(code).ok()?;
    let amount = Decimal::parse(amount).ok()?;
    Some(
        Money::from_decimal(amount, currency)
            .ok()?
            .to_decimal()
            .to_string(),
    )
}

/// Prints a JSON array of objects (the server's answer `text`) as a table, or the answer itself
/// with `--json` (verbatim: amounts keep their digits).
pub fn list(json: bool, text: &str, columns: &[Column]) -> anyhow::Result<()> {
    if json {
        println!("{}", text.trim());
        return Ok(());
    }
    let value: Value = serde_json::from_str(text)?;
    let rows: Vec<Vec<String>> = value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| columns.iter().map(|(_, f)| cell(item, f)).collect())
                .collect()
        })
        .unwrap_or_default();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(h, _)| h.to_string()).collect());
    for row in rows {
        line(row);
    }
    Ok(())
}

/// Prints one object (the server's answer `text`) as `FIELD  value` lines, or verbatim with
/// `--json`.
pub fn one(json: bool, text: &str, columns: &[Column]) -> anyhow::Result<()> {
    if json {
        println!("{}", text.trim());
        return Ok(());
    }
    let value: Value = serde_json::from_str(text)?;
    let width = columns.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    for (header, field) in columns {
        println!("{header:<width$}  {}", cell(&value, field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// (object, field, cell)
    #[test]
    fn money_prints_with_its_currency_decimals() {
        let cases = [
            (
                json!({ "price": 14.5, "currency": "USD" }),
                "price",
                "14.50",
            ),
            (json!({ "total": 3, "currency": "EUR" }), "total", "3.00"),
            (json!({ "price": 1200, "currency": "JPY" }), "price", "1200"),
            (
                json!({ "amount": 0.125, "currency": "BHD" }),
                "amount",
                "0.125",
            ),
            // Not money, or no currency: as written.
            (
                json!({ "inventory": 3, "currency": "USD" }),
                "inventory",
                "3",
            ),
            (json!({ "price": 14.5 }), "price", "14.5"),
            (json!({ "price": null, "currency": "USD" }), "price", "-"),
            // A nested field, with its object's currency.
            (
                json!({ "order": { "total": 7.5, "currency": "USD" } }),
                "order.total",
                "7.50",
            ),
            (json!({ "order": 1 }), "return.refund", "-"),
        ];
        for (item, field, expected) in cases {
            assert_eq!(super::cell(&item, field), expected, "{item}");
        }
    }
}
