//! `fusion stock …`: stock levels of a node's skus.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::client::{Client, Target};
use crate::output::{self, Column};

const COLUMNS: &[Column] = &[
    ("SKU", "sku"),
    ("AVAILABLE", "quantity"),
    ("RESERVED", "reserved"),
    ("UPDATED", "updatedAt"),
];

#[derive(Subcommand)]
pub enum StockCommand {
    /// Set a sku's available quantity (manager).
    Set {
        sku: String,
        quantity: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Add to (or, negative, take from) a sku's stock, with a reason (manager).
    Adjust {
        sku: String,
        #[arg(allow_hyphen_values = true)]
        delta: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        target: Target,
    },
    /// Give stock rights to another till of the store (or the hub), by its node id (manager):
    /// they leave this till at once and count there once it has seen the transfer.
    Transfer {
        sku: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        quantity: u64,
        #[command(flatten)]
        target: Target,
    },
    /// The stock rights this till holds per sku, and its transfers still in transit.
    Escrow {
        #[command(flatten)]
        target: Target,
    },
    /// Show one sku's stock, or list every sku's.
    List {
        sku: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(command: StockCommand, json: bool) -> anyhow::Result<()> {
    match command {
        StockCommand::Set {
            sku,
            quantity,
            target,
        } => {
            let client = Client::new(&target)?;
            let body = json!({ "sku": sku, "quantity": quantity });
            client.text(Method::PUT, "/inventory", Some(&body)).await?;
            let level = client
                .text::<()>(Method::GET, &format!("/inventory/{sku}"), None)
                .await?;
            output::one(json, &level, COLUMNS)
        }
        StockCommand::Adjust {
            sku,
            delta,
            reason,
            target,
        } => {
            let body = json!({ "delta": delta, "reason": reason });
            let level = Client::new(&target)?
                .text(
                    Method::POST,
                    &format!("/inventory/{sku}/adjust"),
                    Some(&body),
                )
                .await?;
            output::one(json, &level, COLUMNS)
        }
        StockCommand::Transfer {
            sku,
            to,
            quantity,
            target,
        } => {
            let body = json!({ "to": to, "quantity": quantity });
            let level = Client::new(&target)?
                .text(
                    Method::POST,
                    &format!("/inventory/{sku}/transfer"),
                    Some(&body),
                )
                .await?;
            output::one(json, &level, COLUMNS)
        }
        StockCommand::Escrow { target } => {
            let text = Client::new(&target)?
                .text::<()>(Method::GET, "/escrow", None)
                .await?;
            if json {
                println!("{}", text.trim());
                return Ok(());
            }
            let escrow: serde_json::Value = serde_json::from_str(&text)?;
            output::list(
                false,
                &escrow["stock"].to_string(),
                &[
                    ("SKU", "sku"),
                    ("HELD", "held"),
                    ("RESERVED", "reserved"),
                    ("IN TRANSIT", "inTransit"),
                ],
            )?;
            for t in escrow["inTransit"].as_array().into_iter().flatten() {
                println!(
                    "in transit: {} {} to {} since {}",
                    t["quantity"],
                    t["sku"].as_str().unwrap_or_default(),
                    t["to"].as_str().unwrap_or_default(),
                    t["at"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        StockCommand::List { sku, target } => {
            let client = Client::new(&target)?;
            match sku {
                Some(sku) => {
                    let level = client
                        .text::<()>(Method::GET, &format!("/inventory/{sku}"), None)
                        .await?;
                    output::one(json, &level, COLUMNS)
                }
                None => {
                    let levels = client.text::<()>(Method::GET, "/inventory", None).await?;
                    output::list(json, &levels, COLUMNS)
                }
            }
        }
    }
}

#[derive(Subcommand)]
pub enum EscrowAction {
    /// Give part of this till's unused offline card budget to another till of the store.
    GiveBudget {
        /// The receiving till's node id (`fusion escrow` on it shows it).
        #[arg(long)]
        to: String,
        /// The amount, as typed (never through a float).
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "USD")]
        currency: String,
    },
}

pub async fn escrow_action(action: EscrowAction, target: Target, json: bool) -> anyhow::Result<()> {
    match action {
        EscrowAction::GiveBudget {
            to,
            amount,
            currency,
        } => {
            let amount = crate::products_cmd::number("amount", &amount)?;
            let body = json!({ "to": to, "amount": { "amount": amount, "currency": currency } });
            let text = Client::new(&target)?
                .text(Method::POST, "/escrow/card-budget/transfer", Some(&body))
                .await?;
            if json {
                println!("{}", text.trim());
                return Ok(());
            }
            let escrow: serde_json::Value = serde_json::from_str(&text)?;
            let budget = &escrow["cardBudget"];
            println!(
                "offline card budget: share {} {}, exposure {}, headroom {}",
                budget["share"],
                budget["currency"].as_str().unwrap_or_default(),
                budget["exposure"],
                budget["headroom"]
            );
            Ok(())
        }
    }
}
