//! `fusion orders …`: orders at a node.

use anyhow::anyhow;
use clap::Subcommand;
use fusion_contracts::Decimal;
use reqwest::Method;
use serde::Serialize;

use crate::client::{Client, Target};
use crate::output::{self, Column};
use crate::products_cmd::number;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("CUSTOMER", "customerId"),
    ("TOTAL", "total"),
    ("CURRENCY", "currency"),
    ("STATUS", "status"),
    ("CREATED", "createdAt"),
];

#[derive(Subcommand)]
pub enum OrdersCommand {
    /// Place an order; stock is reserved for all its lines or none.
    Place {
        #[arg(long)]
        customer: String,
        /// A line: SKU:QUANTITY:PRICE (price per unit), e.g. TEA:2:4.50; repeat for each.
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[command(flatten)]
        target: Target,
    },
    /// Show an order (also one another till of the store took).
    Get {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// List orders, newest first.
    List {
        #[command(flatten)]
        paging: output::Paging,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel an order before its parcel leaves; stock, cash and credit are given back.
    Cancel {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Serialize)]
struct Line {
    sku: String,
    quantity: u64,
    price: Decimal,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    customer_id: String,
    items: Vec<Line>,
    currency: String,
}

fn line(text: &str) -> anyhow::Result<Line> {
    let mut parts = text.splitn(3, ':');
    let (Some(sku), Some(quantity), Some(price)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(anyhow!("item {text:?}: expected SKU:QUANTITY:PRICE"));
    };
    Ok(Line {
        sku: sku.to_string(),
        quantity: quantity
            .parse()
            .map_err(|_| anyhow!("item {text:?}: quantity {quantity:?} is not a whole number"))?,
        price: number("price", price)?,
    })
}

pub async fn run(command: OrdersCommand, json: bool) -> anyhow::Result<()> {
    match command {
        OrdersCommand::Place {
            customer,
            items,
            currency,
            target,
        } => {
            let body = NewOrder {
                customer_id: customer,
                items: items.iter().map(|i| line(i)).collect::<Result<_, _>>()?,
                currency,
            };
            let order = Client::new(&target)?
                .text(Method::POST, "/orders", Some(&body))
                .await?;
            output::one(json, &order, COLUMNS)
        }
        OrdersCommand::Get { id, target } => {
            let order = Client::new(&target)?
                .text::<()>(Method::GET, &format!("/orders/{id}"), None)
                .await?;
            output::one(json, &order, COLUMNS)
        }
        OrdersCommand::List { paging, target } => {
            let orders = Client::new(&target)?
                .text::<()>(Method::GET, &format!("/orders?{}", paging.query()), None)
                .await?;
            output::list(json, &orders, COLUMNS)
        }
        OrdersCommand::Cancel { id, reason, target } => {
            let body = serde_json::json!({ "reason": reason });
            let order = Client::new(&target)?
                .text(Method::POST, &format!("/orders/{id}/cancel"), Some(&body))
                .await?;
            output::one(json, &order, COLUMNS)
        }
    }
}
