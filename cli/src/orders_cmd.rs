//! `fusion orders …`: orders at a node.

use anyhow::anyhow;
use clap::Subcommand;
use fusion_contracts::Decimal;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

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

const RETURN_COLUMNS: &[Column] = &[
    ("RETURN", "returnId"),
    ("ORDER", "orderId"),
    ("REFUND", "refund"),
    ("CURRENCY", "currency"),
    ("RESTOCK", "restock"),
];

#[derive(Subcommand)]
pub enum OrdersCommand {
    /// Place an order; stock is reserved for all its lines or none.
    Place {
        #[arg(long)]
        customer: String,
        /// A line: SKU:QUANTITY, sold at the catalog price, or SKU:QUANTITY:PRICE (per unit),
        /// e.g. TEA:2 or TEA:2:4.50; repeat for each. A price other than the catalog's is an
        /// override: a manager's token, or a manager's approval (--approval-token-file).
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Why lines are sold at another price than the catalog's (recorded with them).
        #[arg(long)]
        override_reason: Option<String>,
        /// A file holding a manager's token: their approval of the overrides (and of a
        /// discount above the store's threshold), given at the till.
        #[arg(long)]
        approval_token_file: Option<std::path::PathBuf>,
        /// A discount on the whole order: a percentage (`10%`) or an amount (`2.50`).
        #[arg(long)]
        discount: Option<String>,
        /// Why the order is discounted (recorded with it).
        #[arg(long)]
        discount_reason: Option<String>,
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
    /// Take back units of a paid order (also one another till of the store sold), e.g.
    /// `--item MUG:1 --restock`; each unit refunds what it paid. Cash unless --store-credit
    /// or --original.
    Return {
        id: String,
        #[command(flatten)]
        back: TakeBack,
        #[command(flatten)]
        target: Target,
    },
    /// Exchange units of a paid order for a new order in one transaction, e.g.
    /// `--item MUG:1 --restock --for MUG-BLUE:1`: what the returned units paid pays the new
    /// order; the rest is refunded (cash unless --store-credit or --original), and what the
    /// new order still costs is shown as AMOUNT DUE.
    Exchange {
        id: String,
        #[command(flatten)]
        back: TakeBack,
        /// A line of the new order: SKU:QUANTITY (catalog price) or SKU:QUANTITY:PRICE; repeat.
        #[arg(long = "for", required = true)]
        new_items: Vec<String>,
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

/// The units a return or an exchange takes back, and where their money goes.
#[derive(clap::Args)]
pub struct TakeBack {
    /// SKU:QUANTITY (the order's line of that sku) or #LINE:QUANTITY (by index); repeat.
    #[arg(long = "item", required = true)]
    items: Vec<String>,
    /// Put the units back in this till's stock.
    #[arg(long)]
    restock: bool,
    /// Refund to this store-credit account instead of cash.
    #[arg(long, conflicts_with = "original")]
    store_credit: Option<String>,
    /// Refund to the order's own payments (cards first, then store credit, then cash), at
    /// the till that sold it.
    #[arg(long)]
    original: bool,
    #[arg(long)]
    reason: Option<String>,
    /// A file holding a manager's token: their approval of a refund above the store's
    /// returnApprovalAmount (and, in an exchange, of the new order's overrides and discounts).
    #[arg(long)]
    approval_token_file: Option<std::path::PathBuf>,
}

impl TakeBack {
    /// The body of `POST /orders/{id}/returns`, which an exchange's body extends.
    fn body(self) -> anyhow::Result<Value> {
        let lines = self
            .items
            .iter()
            .map(|i| return_line(i))
            .collect::<Result<Vec<_>, _>>()?;
        let refund_to = match (self.store_credit, self.original) {
            (Some(account), _) => serde_json::json!({ "kind": "storeCredit", "account": account }),
            (None, true) => serde_json::json!({ "kind": "original" }),
            (None, false) => serde_json::json!({ "kind": "cash" }),
        };
        let mut body =
            serde_json::json!({ "lines": lines, "restock": self.restock, "refundTo": refund_to });
        if let Some(reason) = self.reason {
            body["reason"] = Value::String(reason);
        }
        if let Some(approval) = approval_from(self.approval_token_file)? {
            body["approval"] = serde_json::json!({ "token": approval.token });
        }
        Ok(body)
    }
}

const EXCHANGE_COLUMNS: &[Column] = &[
    ("RETURN", "return.returnId"),
    ("REFUND", "return.refund"),
    ("ORDER", "order.id"),
    ("TOTAL", "order.total"),
    ("AMOUNT DUE", "amountDue"),
    ("CURRENCY", "currency"),
    ("STATUS", "order.status"),
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    sku: String,
    quantity: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    override_reason: Option<String>,
}

#[derive(Serialize)]
struct Approval {
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    customer_id: String,
    items: Vec<Line>,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<Approval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount: Option<Value>,
}

/// `10%` as a percentage, `2.50` as an amount: the body of a discount.
pub fn discount(text: &str, reason: Option<String>) -> anyhow::Result<Value> {
    let mut body = serde_json::Map::new();
    match text.trim().strip_suffix('%') {
        Some(percent) => body.insert(
            "percent".into(),
            serde_json::to_value(number("discount", percent)?)?,
        ),
        None => body.insert(
            "amount".into(),
            serde_json::to_value(number("discount", text)?)?,
        ),
    };
    if let Some(reason) = reason {
        body.insert("reason".into(), Value::String(reason));
    }
    Ok(Value::Object(body))
}

/// `SKU:QUANTITY` or `#LINE:QUANTITY` as a line of a return body.
fn return_line(text: &str) -> anyhow::Result<Value> {
    let (what, quantity) = text
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("item {text:?}: expected SKU:QUANTITY or #LINE:QUANTITY"))?;
    let quantity: u64 = quantity
        .parse()
        .map_err(|_| anyhow!("item {text:?}: quantity {quantity:?} is not a whole number"))?;
    Ok(match what.strip_prefix('#') {
        Some(line) => {
            let line: u64 = line
                .parse()
                .map_err(|_| anyhow!("item {text:?}: line {line:?} is not a whole number"))?;
            serde_json::json!({ "line": line, "quantity": quantity })
        }
        None => serde_json::json!({ "sku": what, "quantity": quantity }),
    })
}

fn approval_from(path: Option<std::path::PathBuf>) -> anyhow::Result<Option<Approval>> {
    path.map(|path| {
        Ok(Approval {
            token: std::fs::read_to_string(&path)
                .map_err(|e| anyhow!("reading {}: {e}", path.display()))?
                .trim()
                .to_string(),
        })
    })
    .transpose()
}

fn line(text: &str, reason: &Option<String>) -> anyhow::Result<Line> {
    let mut parts = text.splitn(3, ':');
    let (Some(sku), Some(quantity)) = (parts.next(), parts.next()) else {
        return Err(anyhow!(
            "item {text:?}: expected SKU:QUANTITY or SKU:QUANTITY:PRICE"
        ));
    };
    let price = parts.next().map(|p| number("price", p)).transpose()?;
    Ok(Line {
        sku: sku.to_string(),
        quantity: quantity
            .parse()
            .map_err(|_| anyhow!("item {text:?}: quantity {quantity:?} is not a whole number"))?,
        override_reason: price.and(reason.clone()),
        price,
    })
}

/// `fusion receipt ORDER`: the receipt's text as the printer takes it, or its JSON.
pub async fn receipt(
    order: &str,
    format: Option<ReceiptFormat>,
    print: bool,
    target: Target,
    json: bool,
) -> anyhow::Result<()> {
    let format = match (format, json) {
        (Some(f), _) => f,
        (None, true) => ReceiptFormat::Json,
        (None, false) => ReceiptFormat::Text,
    };
    let name = match format {
        ReceiptFormat::Json => "json",
        ReceiptFormat::Text => "text",
        ReceiptFormat::Html => "html",
        ReceiptFormat::Escpos => "escpos",
    };
    let (method, path) = if print {
        (
            Method::POST,
            format!("/orders/{order}/receipt/prints?format={name}"),
        )
    } else {
        (
            Method::GET,
            format!("/orders/{order}/receipt?format={name}"),
        )
    };
    let answer = Client::new(&target)?.bytes(method, &path).await?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&answer)?;
    out.flush()?;
    Ok(())
}

/// How `fusion receipt` shows a receipt.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReceiptFormat {
    Json,
    /// 42 columns for an 80 mm printer.
    Text,
    /// A print-friendly page.
    Html,
    /// The printer's bytes (ESC/POS), e.g. `> /dev/usb/lp0`.
    Escpos,
}

pub async fn run(command: OrdersCommand, json: bool) -> anyhow::Result<()> {
    match command {
        OrdersCommand::Place {
            customer,
            items,
            currency,
            override_reason,
            approval_token_file,
            discount: order_discount,
            discount_reason,
            target,
        } => {
            let approval = approval_from(approval_token_file)?;
            let body = NewOrder {
                customer_id: customer,
                items: items
                    .iter()
                    .map(|i| line(i, &override_reason))
                    .collect::<Result<_, _>>()?,
                currency,
                approval,
                discount: order_discount
                    .map(|d| discount(&d, discount_reason))
                    .transpose()?,
            };
            let order = Client::new(&target)?
                .text(Method::POST, "/orders", Some(&body))
                .await?;
            output::one(json, &order, COLUMNS)
        }
        OrdersCommand::Return { id, back, target } => {
            let body = back.body()?;
            let returned = Client::new(&target)?
                .text(Method::POST, &format!("/orders/{id}/returns"), Some(&body))
                .await?;
            output::one(json, &returned, RETURN_COLUMNS)
        }
        OrdersCommand::Exchange {
            id,
            back,
            new_items,
            target,
        } => {
            let mut body = back.body()?;
            body["items"] = serde_json::to_value(
                new_items
                    .iter()
                    .map(|i| line(i, &None))
                    .collect::<Result<Vec<_>, _>>()?,
            )?;
            let exchanged = Client::new(&target)?
                .text(
                    Method::POST,
                    &format!("/orders/{id}/exchanges"),
                    Some(&body),
                )
                .await?;
            output::one(json, &exchanged, EXCHANGE_COLUMNS)
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
