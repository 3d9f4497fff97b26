//! `fusion sync …`: replication of a running node.

use clap::Subcommand;
use fusion_contracts::http::SyncStatusResponse;
use reqwest::Method;

use crate::client::{Client, Target};

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Show the node's replication peers: connected or not, last contact, pending events, lag.
    Status {
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(command: SyncCommand, json: bool) -> anyhow::Result<()> {
    match command {
        SyncCommand::Status { target } => {
            let text = Client::new(&target)?
                .text::<()>(Method::GET, "/sync/status", None)
                .await?;
            if json {
                println!("{}", text.trim());
                return Ok(());
            }
            let status: SyncStatusResponse = serde_json::from_str(&text)?;
            println!("node {}", status.node_id);
            match &status.endpoint_id {
                Some(id) => println!("endpoint {id}"),
                None => println!("sync is off (start the node with --hub)"),
            }
            if let Some(docs) = &status.documents {
                // An initial sync's progress: what was asked of peers whole and has come.
                let progress = if docs.fetching > 0 {
                    format!(
                        "initial sync: {} of {} received",
                        docs.fetched,
                        docs.fetched + docs.fetching
                    )
                } else {
                    format!("{} received whole", docs.fetched)
                };
                println!(
                    "documents {} held, {} loaded ({} of {} KiB), {progress}",
                    docs.held,
                    docs.loaded,
                    docs.loaded_bytes >> 10,
                    docs.budget_bytes >> 10,
                );
            }
            for peer in &status.peers {
                let contact = peer
                    .last_contact
                    .map_or_else(|| "never".to_string(), |t| t.to_string());
                println!(
                    "{} {}@{}\t{}\tlast contact {contact}\tpending {}\tlag {} ms",
                    peer.role,
                    peer.endpoint_id,
                    peer.address,
                    if peer.connected {
                        "connected"
                    } else {
                        "disconnected"
                    },
                    peer.pending_events,
                    peer.lag_ms,
                );
            }
            Ok(())
        }
    }
}
