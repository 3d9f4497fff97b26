//! `fusion promotions …`: the store's promotions on a node (`/promotions`; a manager changes
//! them, and the change reaches the store's other tills and the hub).

use anyhow::anyhow;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Target};
use crate::output::{self, Column};
use crate::products_cmd::number;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("KIND", "kind"),
    ("PERCENT", "percent"),
    ("QUANTITY", "quantity"),
    ("PRICE", "price"),
    ("STARTS", "startsAt"),
    ("ENDS", "endsAt"),
];

/// When a promotion runs: RFC 3339 times, both optional.
#[derive(clap::Args)]
pub struct Window {
    /// From (RFC 3339, e.g. 2026-12-24T00:00:00Z); absent: now.
    #[arg(long)]
    starts_at: Option<String>,
    /// Until (exclusive); absent: until it is ended.
    #[arg(long)]
    ends_at: Option<String>,
}

#[derive(Subcommand)]
pub enum PromotionsCommand {
    /// List the store's promotions.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// A percentage off skus or the products of categories, e.g.
    /// `--name "Coffee week" --percent 20 --category coffee`.
    PercentOff {
        #[arg(long)]
        name: String,
        #[arg(long)]
        percent: String,
        /// A sku it applies to; repeat for each.
        #[arg(long = "sku")]
        skus: Vec<String>,
        /// A category it applies to; repeat for each.
        #[arg(long = "category")]
        categories: Vec<String>,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        target: Target,
    },
    /// N units of the skus (in any mix) for a price, e.g.
    /// `--name "3 mugs for 35" --sku MUG-STONE --quantity 3 --price 35.00`.
    MultiBuy {
        #[arg(long)]
        name: String,
        #[arg(long = "sku", required = true)]
        skus: Vec<String>,
        #[arg(long)]
        quantity: u64,
        #[arg(long)]
        price: String,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        target: Target,
    },
    /// End a promotion: orders priced from now on do not get it.
    End {
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

fn with_window(mut body: Value, window: Window) -> Value {
    if let Some(starts) = window.starts_at {
        body["startsAt"] = json!(starts);
    }
    if let Some(ends) = window.ends_at {
        body["endsAt"] = json!(ends);
    }
    body
}

async fn create(target: &Target, body: Value, json: bool) -> anyhow::Result<()> {
    let created = Client::new(target)?
        .text(Method::POST, "/promotions", Some(&body))
        .await?;
    output::one(json, &created, COLUMNS)
}

pub async fn run(command: PromotionsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        PromotionsCommand::List { target } => {
            let list = Client::new(&target)?
                .text::<()>(Method::GET, "/promotions", None)
                .await?;
            output::list(json, &list, COLUMNS)
        }
        PromotionsCommand::PercentOff {
            name,
            percent,
            skus,
            categories,
            window,
            target,
        } => {
            if skus.is_empty() && categories.is_empty() {
                return Err(anyhow!("give --sku or --category (or both)"));
            }
            let body = json!({
                "name": name,
                "kind": "percentOff",
                "percent": number("percent", &percent)?,
                "skus": skus,
                "categories": categories,
            });
            create(&target, with_window(body, window), json).await
        }
        PromotionsCommand::MultiBuy {
            name,
            skus,
            quantity,
            price,
            currency,
            window,
            target,
        } => {
            let body = json!({
                "name": name,
                "kind": "multiBuy",
                "skus": skus,
                "quantity": quantity,
                "price": number("price", &price)?,
                "currency": currency,
            });
            create(&target, with_window(body, window), json).await
        }
        PromotionsCommand::End { id, target } => {
            Client::new(&target)?
                .text::<()>(Method::DELETE, &format!("/promotions/{id}"), None)
                .await?;
            if !json {
                println!("ended promotion {id}");
            }
            Ok(())
        }
    }
}
