//! `fusion session …`: the node's cash drawer (`/sessions`). Open it with a float, pay in and
//! out, a no-sale a manager approves with their PIN (`FUSION_PIN` or standard input), close it
//! with the count (a sum or notes and coins), and print the X or Z report.

use anyhow::{Context, anyhow};
use clap::{Subcommand, ValueEnum};
use fusion_contracts::Decimal;
use fusion_contracts::http::sessions::ReportResponse;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Target};
use crate::output::{self, Column};
use crate::parse::parse_money;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("TILL", "till"),
    ("STATUS", "status"),
    ("FLOAT", "float"),
    ("CURRENCY", "currency"),
    ("OPENED", "openedAt"),
    ("BY", "openedBy"),
    ("Z", "z"),
    ("VARIANCE", "variance"),
];

#[derive(Clone, Copy, ValueEnum)]
pub enum CashKind {
    PaidIn,
    PaidOut,
    NoSale,
}

#[derive(Subcommand)]
pub enum SessionCommand {
    /// Open the till's drawer with a float, e.g. `--float "100.00 USD"`.
    Open {
        #[arg(long, value_parser = parse_money)]
        float: fusion_contracts::Money,
        #[command(flatten)]
        target: Target,
    },
    /// The till's open session.
    Current {
        #[command(flatten)]
        target: Target,
    },
    /// The till's sessions, newest first (`--all`: every till's this node knows).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Cash in or out of the open drawer, or a no-sale (`--approver`: a manager's staff id,
    /// whose PIN is read from FUSION_PIN or standard input).
    Cash {
        kind: CashKind,
        /// The amount, in the session's currency (not for a no-sale).
        #[arg(long)]
        amount: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        approver: Option<String>,
        /// The session (default: the open one).
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Count and close the open drawer: the Z report. `--counted 152.99`, or notes and coins
    /// as `--denomination 50x3 --denomination 0.25x4`.
    Close {
        #[arg(long)]
        counted: Option<String>,
        #[arg(long = "denomination")]
        denominations: Vec<String>,
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// The X report of the open session, or the Z report of a closed one.
    Report {
        /// The session (default: the open one).
        session: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

fn decimal(field: &str, text: &str) -> anyhow::Result<Decimal> {
    Decimal::parse(text.trim()).map_err(|e| anyhow!("--{field}: {e}"))
}

/// The session named, or the till's open one.
async fn session_id(client: &Client, session: Option<String>) -> anyhow::Result<String> {
    if let Some(id) = session {
        return Ok(id);
    }
    let current: Value = serde_json::from_str(
        &client
            .text::<()>(Method::GET, "/sessions/current", None)
            .await?,
    )?;
    current["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the node answered no session id"))
}

pub async fn run(command: SessionCommand, json: bool) -> anyhow::Result<()> {
    match command {
        SessionCommand::Open { float, target } => {
            let body = json!({ "float": float.to_decimal(), "currency": float.currency });
            let opened = Client::new(&target)?
                .text(Method::POST, "/sessions", Some(&body))
                .await?;
            output::one(json, &opened, COLUMNS)
        }
        SessionCommand::Current { target } => {
            let current = Client::new(&target)?
                .text::<()>(Method::GET, "/sessions/current", None)
                .await?;
            output::one(json, &current, COLUMNS)
        }
        SessionCommand::List { all, target } => {
            let path = if all {
                "/sessions?till=all"
            } else {
                "/sessions"
            };
            let list = Client::new(&target)?
                .text::<()>(Method::GET, path, None)
                .await?;
            output::list(json, &list, COLUMNS)
        }
        SessionCommand::Cash {
            kind,
            amount,
            reason,
            approver,
            session,
            target,
        } => {
            let client = Client::new(&target)?;
            let id = session_id(&client, session).await?;
            let kind = match kind {
                CashKind::PaidIn => "paid_in",
                CashKind::PaidOut => "paid_out",
                CashKind::NoSale => "no_sale",
            };
            let mut body = json!({ "kind": kind, "reason": reason });
            if let Some(amount) = amount {
                body["amount"] = json!(decimal("amount", &amount)?);
            }
            if let Some(staff) = approver {
                body["approval"] = json!({ "staff": staff, "pin": crate::staff_cmd::pin()? });
            }
            let moved = client
                .text(Method::POST, &format!("/sessions/{id}/cash"), Some(&body))
                .await?;
            output::one(json, &moved, COLUMNS)
        }
        SessionCommand::Close {
            counted,
            denominations,
            session,
            target,
        } => {
            let client = Client::new(&target)?;
            let id = session_id(&client, session).await?;
            let mut body = json!({});
            if let Some(counted) = counted {
                body["counted"] = json!(decimal("counted", &counted)?);
            }
            if !denominations.is_empty() {
                let mut list = Vec::new();
                for d in &denominations {
                    let (value, count) = d.split_once('x').ok_or_else(|| {
                        anyhow!("--denomination {d}: expected VALUExCOUNT, e.g. 20x4")
                    })?;
                    let count: u64 = count
                        .trim()
                        .parse()
                        .with_context(|| format!("--denomination {d}: the count"))?;
                    list.push(json!({ "value": decimal("denomination", value)?, "count": count }));
                }
                body["denominations"] = json!(list);
            }
            let z = client
                .text(Method::POST, &format!("/sessions/{id}/close"), Some(&body))
                .await?;
            report(json, &z)
        }
        SessionCommand::Report { session, target } => {
            let client = Client::new(&target)?;
            let id = session_id(&client, session).await?;
            let text = client
                .text::<()>(Method::GET, &format!("/sessions/{id}/report"), None)
                .await?;
            report(json, &text)
        }
    }
}

/// Prints a report as the node computed it (verbatim with `--json`).
fn report(json: bool, text: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", text.trim());
        return Ok(());
    }
    let r: ReportResponse = serde_json::from_str(text).context("reading the report")?;
    print!("{}", render(&r));
    Ok(())
}

fn render(r: &ReportResponse) -> String {
    use std::fmt::Write;
    let t = &r.totals;
    // As the currency writes it: 9.00, not 9.
    let m = |d: Decimal| {
        fusion_contracts::Money::from_decimal(d, r.currency)
            .map_or_else(|_| d.to_string(), |m| m.to_decimal().to_string())
    };
    let mut out = String::new();
    let title = match r.z {
        Some(z) => format!("Z report {z}"),
        None => "X report (open)".to_string(),
    };
    let _ = writeln!(out, "{title} — till {} — {}", r.till, r.currency);
    let _ = writeln!(out, "opened   {} by {}", r.opened_at, who(&r.opened_by));
    if let Some(at) = r.closed_at {
        let _ = writeln!(out, "closed   {at} by {}", who(&r.closed_by));
    }
    let line = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "{label:<26}{value:>14}");
    };
    line(
        &mut out,
        "sales",
        format!("{} / {}", t.sales, m(t.sales_total)),
    );
    if t.outside_session > 0 {
        line(
            &mut out,
            "  paid with no drawer open",
            t.outside_session.to_string(),
        );
    }
    for tender in &t.tenders {
        line(
            &mut out,
            &format!("  {:?}", tender.tender).to_lowercase(),
            format!("{} / {}", tender.count, m(tender.taken)),
        );
        if tender.refunded.mantissa() != 0 {
            line(&mut out, "    refunded", m(tender.refunded));
        }
    }
    for tax in &t.taxes {
        line(
            &mut out,
            &format!("tax {} {}%", tax.class, tax.rate),
            m(tax.tax),
        );
    }
    line(&mut out, "discounts", m(t.discounts));
    line(&mut out, "promotions", m(t.promotions));
    line(
        &mut out,
        "returns",
        format!("{} / {}", t.returns, m(t.refunds)),
    );
    line(
        &mut out,
        "voids",
        format!("{} / {}", t.voids, m(t.voids_total)),
    );
    line(&mut out, "no-sales", t.no_sales.to_string());
    line(&mut out, "float", m(r.float));
    line(&mut out, "cash tendered", m(t.cash_tendered));
    line(&mut out, "change given", m(t.change_given));
    line(&mut out, "cash refunds", m(t.cash_refunds));
    line(&mut out, "paid in", m(t.paid_in));
    line(&mut out, "paid out", m(t.paid_out));
    line(&mut out, "expected cash", m(r.expected_cash));
    if let (Some(counted), Some(variance)) = (r.counted, r.variance) {
        line(&mut out, "counted", m(counted));
        line(&mut out, "variance", m(variance));
    }
    for s in &t.staff {
        line(
            &mut out,
            &format!("staff {}", who(&s.staff)),
            format!("{} / {}", s.sales, m(s.sales_total)),
        );
    }
    out
}

fn who(staff: &Option<fusion_contracts::StaffId>) -> String {
    staff
        .as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}
