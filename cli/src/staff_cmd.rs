//! `fusion staff …`: the store's staff members on a node (`/staff`; a manager adds and
//! changes them, and they reach the store's other tills and the hub), and signing one in.
//! A PIN is read from `FUSION_PIN` or, absent, from the first line of standard input — never
//! from an argument, which `ps` and shell histories would show.

use std::io::BufRead;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Target};
use crate::output::{self, Column};

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ROLE", "role"),
    ("ACTIVE", "active"),
    ("LOCKED UNTIL", "lockedUntil"),
];

#[derive(Subcommand)]
pub enum StaffCommand {
    /// List the store's staff members.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Add a member, e.g. `--id ana --name "Ana Lima" --role cashier` (PIN on stdin).
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// cashier or manager.
        #[arg(long, default_value = "cashier")]
        role: String,
        #[command(flatten)]
        target: Target,
    },
    /// Change a member's name or role, or give them a new PIN (`--new-pin`, read as `add`
    /// reads it).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        new_pin: bool,
        /// Make an inactive member active again.
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        target: Target,
    },
    /// A member leaves: they can no longer sign in or approve, at any till.
    Remove {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Sign a member in at the node with their PIN; prints their token (a bearer token for
    /// `FUSION_TOKEN`, valid 12 hours).
    SignIn {
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

/// The PIN: `FUSION_PIN`, else the first line of standard input.
pub(crate) fn pin() -> anyhow::Result<String> {
    if let Ok(pin) = std::env::var("FUSION_PIN") {
        return Ok(pin.trim().to_string());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the PIN from standard input")?;
    let pin = line.trim().to_string();
    if pin.is_empty() {
        return Err(anyhow!("give the PIN in FUSION_PIN or on standard input"));
    }
    Ok(pin)
}

pub async fn run(command: StaffCommand, json: bool) -> anyhow::Result<()> {
    match command {
        StaffCommand::List { target } => {
            let list = Client::new(&target)?
                .text::<()>(Method::GET, "/staff", None)
                .await?;
            output::list(json, &list, COLUMNS)
        }
        StaffCommand::Add {
            id,
            name,
            role,
            target,
        } => {
            let body = json!({ "id": id, "name": name, "role": role, "pin": pin()? });
            let created = Client::new(&target)?
                .text(Method::POST, "/staff", Some(&body))
                .await?;
            output::one(json, &created, COLUMNS)
        }
        StaffCommand::Update {
            id,
            name,
            role,
            new_pin,
            activate,
            target,
        } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(role) = role {
                body["role"] = json!(role);
            }
            if new_pin {
                body["pin"] = json!(pin()?);
            }
            if activate {
                body["active"] = json!(true);
            }
            let changed = Client::new(&target)?
                .text(Method::PATCH, &format!("/staff/{id}"), Some(&body))
                .await?;
            output::one(json, &changed, COLUMNS)
        }
        StaffCommand::Remove { id, target } => {
            Client::new(&target)?
                .text::<()>(Method::DELETE, &format!("/staff/{id}"), None)
                .await?;
            if !json {
                println!("{id} can no longer sign in");
            }
            Ok(())
        }
        StaffCommand::SignIn { id, target } => {
            let body = json!({ "staff": id, "pin": pin()? });
            let signed: Value = serde_json::from_str(
                &Client::new(&target)?
                    .text(Method::POST, "/staff/sign-in", Some(&body))
                    .await?,
            )?;
            if json {
                println!("{signed}");
            } else {
                println!("{}", signed["token"].as_str().unwrap_or_default());
            }
            Ok(())
        }
    }
}
