//! `fusion payments …` and `fusion shipments …`: taking and refunding payments, following
//! parcels.

use clap::Subcommand;
use fusion_contracts::Decimal;
use reqwest::Method;
use serde::Serialize;

use crate::client::{Client, Target};
use crate::output::{self, Column};
use crate::products_cmd::number;

const PAYMENT: &[Column] = &[
    ("ID", "id"),
    ("ORDER", "orderId"),
    ("AMOUNT", "amount"),
    ("CURRENCY", "currency"),
    ("METHOD", "paymentMethodId"),
    ("STATUS", "status"),
    ("REFUNDED", "refunded"),
    ("CHANGE", "changeDue"),
];
const SHIPMENT: &[Column] = &[
    ("ID", "id"),
    ("ORDER", "orderId"),
    ("TRACKING", "trackingNumber"),
    ("CARRIER", "carrier"),
    ("SERVICE", "service"),
    ("STATUS", "status"),
];

#[derive(Subcommand)]
pub enum PaymentsCommand {
    /// Take a payment for an order: `cash`, a card `pm_…`, or `store_credit:ACCOUNT`.
    Take {
        #[arg(long)]
        order: String,
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long, default_value = "cash")]
        method: String,
        /// Cash handed over (the change due is computed).
        #[arg(long)]
        tendered: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Refund a captured payment, all of it or `--amount`.
    Refund {
        id: String,
        #[arg(long)]
        amount: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
pub enum ShipmentsCommand {
    /// List an order's shipments.
    List {
        #[arg(long)]
        order: String,
        #[command(flatten)]
        target: Target,
    },
    /// Move a shipment on: in_transit, delivered, exception, returned, …
    Status {
        id: String,
        status: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewPayment {
    order_id: String,
    amount: Decimal,
    currency: String,
    payment_method_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tendered: Option<Decimal>,
}

#[derive(Serialize)]
struct Refund {
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<Decimal>,
}

pub async fn run(command: PaymentsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        PaymentsCommand::Take {
            order,
            amount,
            currency,
            method,
            tendered,
            target,
        } => {
            let body = NewPayment {
                order_id: order,
                amount: number("amount", &amount)?,
                currency,
                payment_method_id: method,
                tendered: tendered.map(|t| number("tendered", &t)).transpose()?,
            };
            let payment = Client::new(&target)?
                .text(Method::POST, "/payments", Some(&body))
                .await?;
            output::one(json, &payment, PAYMENT)
        }
        PaymentsCommand::Refund { id, amount, target } => {
            let body = Refund {
                amount: amount.map(|a| number("amount", &a)).transpose()?,
            };
            let payment = Client::new(&target)?
                .text(Method::POST, &format!("/payments/{id}/refund"), Some(&body))
                .await?;
            output::one(json, &payment, PAYMENT)
        }
    }
}

pub async fn run_shipments(command: ShipmentsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        ShipmentsCommand::List { order, target } => {
            let list = Client::new(&target)?
                .text::<()>(Method::GET, &format!("/orders/{order}/shipments"), None)
                .await?;
            output::list(json, &list, SHIPMENT)
        }
        ShipmentsCommand::Status { id, status, target } => {
            let body = serde_json::json!({ "status": status });
            let shipment = Client::new(&target)?
                .text(
                    Method::POST,
                    &format!("/shipments/{id}/status"),
                    Some(&body),
                )
                .await?;
            output::one(json, &shipment, SHIPMENT)
        }
    }
}
