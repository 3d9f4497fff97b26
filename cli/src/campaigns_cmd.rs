//! `fusion campaigns …`: group-buying campaigns at a node.

use clap::Subcommand;
use fusion_contracts::Decimal;
use reqwest::Method;
use serde::Serialize;

use crate::client::{Client, Target};
use crate::output::{self, Column};
use crate::products_cmd::number;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("SKU", "sku"),
    ("PRICE", "price"),
    ("PARTICIPANTS", "actualParticipants"),
    ("MIN", "minParticipants"),
    ("MAX", "maxParticipants"),
    ("STATUS", "status"),
    ("ENDS", "endTime"),
];

#[derive(Subcommand)]
pub enum CampaignsCommand {
    /// Create a campaign for a product (manager); it closes by itself at its end.
    Create {
        #[arg(long)]
        product: String,
        #[arg(long)]
        min: u32,
        #[arg(long)]
        max: u32,
        /// Campaign price per participant.
        #[arg(long)]
        price: String,
        #[arg(long)]
        original_price: String,
        /// Start (RFC 3339); default now.
        #[arg(long)]
        start: Option<String>,
        /// End (RFC 3339).
        #[arg(long)]
        end: String,
        #[command(flatten)]
        target: Target,
    },
    /// List campaigns.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Join a campaign for a user.
    Join {
        id: String,
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    /// Give free seats to a till of any store (`--to NODE_ID`) or to the hub (`--to hub`), so
    /// it can take joins offline; the hub then decides the campaign at its end (manager).
    Seats {
        id: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        seats: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel a campaign before it ends (manager).
    Cancel {
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewCampaign {
    product_id: String,
    min_participants: u32,
    max_participants: u32,
    price: Decimal,
    original_price: Decimal,
    start_time: String,
    end_time: String,
}

pub async fn run(command: CampaignsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        CampaignsCommand::Create {
            product,
            min,
            max,
            price,
            original_price,
            start,
            end,
            target,
        } => {
            let body = NewCampaign {
                product_id: product,
                min_participants: min,
                max_participants: max,
                price: number("price", &price)?,
                original_price: number("original-price", &original_price)?,
                start_time: start.unwrap_or_else(|| fusion_sync::clock::now().to_string()),
                end_time: end,
            };
            let campaign = Client::new(&target)?
                .text(Method::POST, "/campaigns", Some(&body))
                .await?;
            output::one(json, &campaign, COLUMNS)
        }
        CampaignsCommand::List { target } => {
            let list = Client::new(&target)?
                .text::<()>(Method::GET, "/campaigns", None)
                .await?;
            output::list(json, &list, COLUMNS)
        }
        CampaignsCommand::Join { id, user, target } => {
            let body = serde_json::json!({ "userId": user });
            let campaign = Client::new(&target)?
                .text(Method::POST, &format!("/campaigns/{id}/join"), Some(&body))
                .await?;
            output::one(json, &campaign, COLUMNS)
        }
        CampaignsCommand::Seats {
            id,
            to,
            seats,
            target,
        } => {
            let body = serde_json::json!({ "to": to, "seats": seats });
            let rights = Client::new(&target)?
                .text(
                    Method::POST,
                    &format!("/campaigns/{id}/seats/transfer"),
                    Some(&body),
                )
                .await?;
            output::one(
                json,
                &rights,
                &[
                    ("CAMPAIGN", "campaignId"),
                    ("FREE SEATS", "free"),
                    ("PARTICIPANTS", "participants"),
                    ("SHARED", "shared"),
                ],
            )
        }
        CampaignsCommand::Cancel { id, target } => {
            let campaign = Client::new(&target)?
                .text::<()>(Method::POST, &format!("/campaigns/{id}/cancel"), None)
                .await?;
            output::one(json, &campaign, COLUMNS)
        }
    }
}
