//! `fusion token …`: API tokens of a running node (needs an admin token).

use clap::Subcommand;
use fusion_contracts::http::{Role, TokenResponse};
use reqwest::Method;
use serde_json::json;

use crate::client::{Client, Target};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints its secret once.
    Create {
        /// cashier (sell, read), manager (+ catalog, stock, cancel) or admin (+ tokens).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("unknown role {text:?}: use cashier, manager or admin"))
}

pub async fn run(command: TokenCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            role,
            label,
            target,
        } => {
            let body = json!({ "role": role, "label": label });
            let created: Option<TokenResponse> = Client::new(&target)?
                .send(Method::POST, "/tokens", Some(&body))
                .await?;
            let created =
                created.ok_or_else(|| anyhow::anyhow!("the node answered without a token"))?;
            println!("{}", created.token.unwrap_or_default());
            eprintln!("created {} token {}", created.role.as_str(), created.id);
        }
        TokenCommand::List { target } => {
            let text = Client::new(&target)?
                .text::<()>(Method::GET, "/tokens", None)
                .await?;
            if json {
                println!("{}", text.trim());
                return Ok(());
            }
            let tokens: Vec<TokenResponse> = serde_json::from_str(&text)?;
            println!("{:<38} {:<8} {:<26} LABEL", "ID", "ROLE", "CREATED");
            for t in tokens {
                println!(
                    "{:<38} {:<8} {:<26} {}",
                    t.id,
                    t.role.as_str(),
                    t.created_at,
                    t.label.unwrap_or_default()
                );
            }
        }
        TokenCommand::Revoke { id, target } => {
            Client::new(&target)?
                .send::<(), serde_json::Value>(Method::DELETE, &format!("/tokens/{id}"), None)
                .await?;
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}
