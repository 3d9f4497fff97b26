//! `fusion settings …`: the store's shared settings on a node (`GET|PATCH /settings`): shown,
//! and its taxes set (a manager; the change reaches the store's other tills and the hub).

use anyhow::anyhow;
use clap::Subcommand;
use fusion_contracts::Decimal;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Target};
use crate::products_cmd::number;

#[derive(Subcommand)]
pub enum SettingsCommand {
    /// Show the store's settings.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Set the store's taxes (manager): rates by tax class in percent, classes removed, and
    /// whether catalog prices include tax (VAT) or tax is added on top (sales tax), e.g.
    /// `--rate standard=20 --rate reduced=5.5 --prices-include-tax true`.
    Taxes {
        /// CLASS=PERCENT; repeat for each class.
        #[arg(long = "rate")]
        rates: Vec<String>,
        /// A class to remove; repeat for each.
        #[arg(long = "remove")]
        remove: Vec<String>,
        #[arg(long)]
        prices_include_tax: Option<bool>,
        #[command(flatten)]
        target: Target,
    },
    /// Set the percentage of what a discount applies to above which it needs a manager's
    /// approval (manager; the default is 10).
    DiscountApproval {
        percent: String,
        #[command(flatten)]
        target: Target,
    },
}

/// `CLASS=PERCENT` as a class and its rate.
fn rate(text: &str) -> anyhow::Result<(String, Decimal)> {
    let (class, percent) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("rate {text:?}: expected CLASS=PERCENT, e.g. standard=20"))?;
    Ok((class.trim().to_string(), number("rate", percent)?))
}

/// The `PATCH /settings` body of a taxes change.
fn taxes_body(
    rates: &[String],
    remove: &[String],
    prices_include_tax: Option<bool>,
) -> anyhow::Result<Value> {
    let mut classes = serde_json::Map::new();
    for text in rates {
        let (class, percent) = rate(text)?;
        classes.insert(class, serde_json::to_value(percent)?);
    }
    for class in remove {
        classes.insert(class.clone(), Value::Null);
    }
    let mut taxes = serde_json::Map::new();
    if !classes.is_empty() {
        taxes.insert("rates".into(), Value::Object(classes));
    }
    if let Some(inclusive) = prices_include_tax {
        taxes.insert("pricesIncludeTax".into(), json!(inclusive));
    }
    if taxes.is_empty() {
        return Err(anyhow!(
            "nothing to change: give --rate, --remove or --prices-include-tax"
        ));
    }
    Ok(json!({ "taxes": taxes }))
}

/// Settings for people: one field a line, a line per tax rate.
fn print(json: bool, text: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", text.trim());
        return Ok(());
    }
    let value: Value = serde_json::from_str(text)?;
    let field = |name: &str| match value.get(name) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    for (label, name) in [
        ("STORE", "storeId"),
        ("NAME", "name"),
        ("ORDER HOLD (S)", "orderHoldSecs"),
        ("BACKORDERS", "backorderSkus"),
        ("DISCOUNT APPR %", "discountApprovalPercent"),
    ] {
        println!("{label:<15} {}", field(name));
    }
    match value.get("taxes") {
        None => println!("{:<15} none", "TAXES"),
        Some(taxes) => {
            let included = taxes["pricesIncludeTax"] == json!(true);
            let style = if included {
                "included in prices"
            } else {
                "added to prices"
            };
            println!("{:<15} {style}", "TAXES");
            for (class, rate) in taxes["rates"].as_object().into_iter().flatten() {
                println!("{:<15} {rate} %", format!("  {class}"));
            }
        }
    }
    Ok(())
}

pub async fn run(command: SettingsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        SettingsCommand::Show { target } => {
            let text = Client::new(&target)?
                .text::<()>(Method::GET, "/settings", None)
                .await?;
            print(json, &text)
        }
        SettingsCommand::Taxes {
            rates,
            remove,
            prices_include_tax,
            target,
        } => {
            let body = taxes_body(&rates, &remove, prices_include_tax)?;
            let text = Client::new(&target)?
                .text(Method::PATCH, "/settings", Some(&body))
                .await?;
            print(json, &text)
        }
        SettingsCommand::DiscountApproval { percent, target } => {
            let body = json!({ "discountApprovalPercent": number("percent", &percent)? });
            let text = Client::new(&target)?
                .text(Method::PATCH, "/settings", Some(&body))
                .await?;
            print(json, &text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taxes_change_is_the_body_patch_settings_takes() {
        let body = taxes_body(
            &["standard=20".into(), "reduced = 5.5".into()],
            &["old".into()],
            Some(true),
        )
        .unwrap();
        assert_eq!(
            body,
            json!({ "taxes": {
                "rates": { "standard": 20, "reduced": 5.5, "old": null },
                "pricesIncludeTax": true
            } })
        );
        assert_eq!(
            taxes_body(&[], &[], Some(false)).unwrap(),
            json!({ "taxes": { "pricesIncludeTax": false } })
        );
        for bad in ["standard", "standard=x", "=20x"] {
            assert!(taxes_body(&[bad.into()], &[], None).is_err(), "{bad}");
        }
        assert!(taxes_body(&[], &[], None).is_err());
    }
}
