//! `fusion hub …`: the hub daemon and its enrollment commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use fusion_contracts::http::hub;
use fusion_contracts::{NodeId, Sku, StoreId};
use fusion_hub::Hub;
use fusion_node::domain::campaigns::SharedCampaign;
use fusion_sync::net;
use reqwest::Method;
use tokio::net::TcpListener;

use crate::client::{Client, Target};
use crate::node_cmd::{init_tracing, print_identity, shutdown_signal};

#[derive(Subcommand)]
pub enum HubCommand {
    /// Serve the hub: its HTTP API and the sync endpoint enrolled nodes replicate to.
    Serve {
        /// TOML config file (see systemd/hub.toml.example); flags and environment override it.
        #[arg(long, env = "FUSION_HUB_CONFIG")]
        config: Option<PathBuf>,
        /// Directory of the hub store (created if missing).
        #[arg(long, env = "FUSION_HUB_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// HTTP address to listen on [default: 127.0.0.1:8090].
        #[arg(long, env = "FUSION_HUB_LISTEN")]
        listen: Option<SocketAddr>,
        /// UDP address of the sync endpoint (nodes use `--hub ID@this`) [default: 0.0.0.0:7070].
        #[arg(long, env = "FUSION_HUB_SYNC_BIND")]
        sync_bind: Option<SocketAddr>,
        /// A relay you run for sites behind NAT: the hub is reachable through it too. Absent:
        /// direct addresses only (no public relay is ever used).
        #[arg(long, env = "FUSION_RELAY_URL")]
        relay_url: Option<net::RelayUrl>,
        /// Kafka/Redpanda brokers (`host:port[,host:port…]`): every event is exported there.
        /// Absent: export is off (said at start and in /sync/status).
        #[arg(long, env = "FUSION_HUB_KAFKA_BROKERS")]
        kafka_brokers: Option<String>,
        /// Partitions of each topic the hub creates [default: 3].
        #[arg(long, env = "FUSION_HUB_KAFKA_PARTITIONS")]
        kafka_partitions: Option<i32>,
        /// Retention of each topic the hub creates, in ms; -1: forever [default: 604800000].
        #[arg(
            long,
            env = "FUSION_HUB_KAFKA_RETENTION_MS",
            allow_hyphen_values = true
        )]
        kafka_retention_ms: Option<i64>,
        /// A schema registry (Confluent API, e.g. Redpanda's `http://HOST:8081`): every
        /// topic's JSON Schema is registered there at start as `<topic>-value`.
        #[arg(long, env = "FUSION_HUB_SCHEMA_REGISTRY_URL")]
        schema_registry_url: Option<String>,
        /// Rebalance stock rights every this many seconds: the hub gives what it holds (above
        /// `--rebalance-keep` per sku) toward the tills that sell. Absent: only on request
        /// (`fusion hub escrow rebalance`).
        #[arg(long, env = "FUSION_HUB_REBALANCE_EVERY")]
        rebalance_every: Option<u64>,
        /// Units per store and sku the hub keeps for the online channel when it rebalances.
        #[arg(long, env = "FUSION_HUB_REBALANCE_KEEP", default_value_t = 0)]
        rebalance_keep: u64,
    },
    /// Print the hub's endpoint id, creating it on first use.
    Id {
        #[arg(long, env = "FUSION_HUB_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Admit a node (its `fusion node id`) as a till of a store.
    Enroll {
        node_id: String,
        #[arg(long)]
        store: String,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Refuse a node from now on and cut its live sync connections.
    Revoke {
        node_id: String,
        #[command(flatten)]
        target: HubTarget,
    },
    /// List the enrolled nodes and their stores.
    Enrollments {
        #[command(flatten)]
        target: HubTarget,
    },
    /// Export a topic's events again from a time on (same event ids), e.g. for a new consumer.
    Replay {
        /// The topic, e.g. order.created.
        #[arg(long)]
        topic: String,
        /// Events that occurred at or after this time (RFC 3339).
        #[arg(long)]
        from: String,
        /// The brokers to send to.
        #[arg(long, env = "FUSION_HUB_KAFKA_BROKERS")]
        kafka_brokers: String,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Write the broker-side schema of every topic into DIR as `<topic>.json` (tansu's
    /// `--schema-registry file://DIR`): the broker then refuses any record whose value does
    /// not match its topic's schema.
    Schemas {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sales per store per day (UTC) and currency: orders created and not cancelled, total.
    Sales {
        #[command(flatten)]
        target: HubTarget,
    },
    /// The hub's API tokens: viewer (reads the fleet) or admin (also changes it).
    Token {
        #[command(subcommand)]
        command: HubTokenCommand,
    },
    /// Webhook dead letters: events a subscription gave up on after its attempts.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// How far the Kafka export and each webhook subscription are behind the hub's log.
    Lag {
        #[command(flatten)]
        target: HubTarget,
    },
    /// Every till's Z reports (closed drawer sessions), by store and day (UTC) of the close.
    Sessions {
        /// Only this store.
        #[arg(long)]
        store: Option<String>,
        /// Only this day, YYYY-MM-DD.
        #[arg(long)]
        day: Option<String>,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Stock per store and sku across the fleet: available and reserved.
    Stock {
        /// Only this sku.
        #[arg(long)]
        sku: Option<String>,
        /// Only this store.
        #[arg(long)]
        store: Option<String>,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Stock rights per store and sku: held and reserved by each till, and in transit; or move
    /// the hub's rights (give, rebalance) and reclaim a lost till's.
    #[command(args_conflicts_with_subcommands = true)]
    Escrow {
        #[command(subcommand)]
        action: Option<EscrowAction>,
        #[arg(long)]
        sku: Option<String>,
        #[arg(long)]
        store: Option<String>,
        #[command(flatten)]
        target: HubTarget,
    },
    /// A campaign whose seats are shared: holders, whose part ended, the hub's seats and its
    /// decision; with `--give-to NODE_ID --seats N`, give the hub's seats to a till.
    Seats {
        id: String,
        #[arg(long, requires = "seats")]
        give_to: Option<String>,
        #[arg(long, requires = "give_to")]
        seats: Option<u32>,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Each store's offline card budget: its cap (the sum of its tills' shares) and what is
    /// approved offline and not settled yet.
    Budget {
        #[arg(long)]
        store: Option<String>,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Find an order anywhere in the fleet: its store, till, status and events.
    Order {
        id: String,
        #[command(flatten)]
        target: HubTarget,
    },
    /// The fleet's stores: their tills, how many are connected, and the last contact.
    Stores {
        #[command(flatten)]
        target: HubTarget,
    },
}

#[derive(Subcommand)]
pub enum EscrowAction {
    /// The hub's holder of a store gives some of its rights of a sku to one of its tills.
    Give {
        #[arg(long)]
        store: String,
        #[arg(long)]
        sku: String,
        /// The till's node id (as `fusion hub escrow` shows it).
        #[arg(long)]
        to: String,
        #[arg(long)]
        quantity: u64,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Give the hub's rights to the tills that sell most, keeping `--keep` per sku.
    Rebalance {
        /// Only this store.
        #[arg(long)]
        store: Option<String>,
        /// Units per sku the hub keeps (the online channel's reserve).
        #[arg(long, default_value_t = 0)]
        keep: u64,
        #[command(flatten)]
        target: HubTarget,
    },
    /// A till is lost for good: revoke it and pass its rights (and what was in transit to it)
    /// to the hub. Its events after this point never count.
    Reclaim {
        /// The lost till's node id.
        node_id: String,
        #[command(flatten)]
        target: HubTarget,
    },
}

#[derive(Subcommand)]
pub enum HubTokenCommand {
    /// Create a token; prints its secret once (on stdout; the rest goes to stderr).
    Create {
        /// viewer (reads the fleet, e.g. for n8n or Prometheus) or admin.
        #[arg(long, value_parser = parse_role)]
        role: hub::HubRole,
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        target: HubTarget,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        target: HubTarget,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[command(flatten)]
        target: HubTarget,
    },
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List the dead letters, in order per subscription.
    List {
        /// Only this subscription's.
        #[arg(long)]
        subscription: Option<String>,
        #[command(flatten)]
        target: HubTarget,
    },
    /// Send the dead letters again, one attempt each, in order per key (a key stops at its
    /// first failure). Exit 0 when none is left, 1 when some are.
    Retry {
        #[arg(long)]
        subscription: Option<String>,
        #[command(flatten)]
        target: HubTarget,
    },
}

/// Where the hub's HTTP API is, and its admin token.
#[derive(Args, Clone, Debug)]
pub struct HubTarget {
    /// Base URL of the hub.
    #[arg(long, env = "FUSION_HUB_URL", default_value = "http://127.0.0.1:8090")]
    url: String,
    /// File holding the hub's admin token (else FUSION_TOKEN, else --data-dir's admin.token).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Data dir of a local hub whose admin.token to use.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl HubTarget {
    fn client(&self) -> anyhow::Result<Client> {
        Client::new(&Target {
            url: self.url.clone(),
            token_file: self.token_file.clone(),
            data_dir: self.data_dir.clone(),
        })
    }
}

pub async fn run(command: HubCommand, json: bool) -> anyhow::Result<()> {
    match command {
        HubCommand::Serve {
            config,
            data_dir,
            listen,
            sync_bind,
            relay_url,
            kafka_brokers,
            kafka_partitions,
            kafka_retention_ms,
            schema_registry_url,
            rebalance_every,
            rebalance_keep,
        } => {
            let file = match &config {
                Some(path) => crate::config::load_hub(path)?,
                None => crate::config::HubConfig::default(),
            };
            use crate::config::value;
            let data_dir = data_dir.or(file.data_dir).ok_or_else(|| {
                anyhow::anyhow!(
                    "no data dir: pass --data-dir, set FUSION_HUB_DATA_DIR or data_dir in the config"
                )
            })?;
            let listen = listen
                .or(value(&file.listen))
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8090)));
            let sync_bind = sync_bind
                .or(value(&file.sync_bind))
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7070)));
            let relay_url = relay_url.or(value(&file.relay_url));
            let export = kafka_brokers.or(file.kafka.brokers).map(|brokers| {
                fusion_hub::export::ExportConfig {
                    brokers,
                    partitions: kafka_partitions.or(file.kafka.partitions).unwrap_or(3),
                    retention_ms: kafka_retention_ms
                        .or(file.kafka.retention_ms)
                        .unwrap_or(7 * 24 * 3600 * 1000),
                    schema_registry: schema_registry_url
                        .clone()
                        .or(file.kafka.schema_registry_url.clone()),
                }
            });
            let webhooks = file
                .webhooks
                .iter()
                .map(|w| w.subscription())
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rebalance =
                rebalance_every
                    .filter(|secs| *secs > 0)
                    .map(|secs| fusion_hub::Rebalance {
                        every: std::time::Duration::from_secs(secs),
                        keep: rebalance_keep,
                    });
            serve(
                data_dir, listen, sync_bind, relay_url, export, webhooks, rebalance,
            )
            .await
        }
        HubCommand::Id { data_dir } => print_identity(&data_dir),
        HubCommand::Enroll {
            node_id,
            store,
            target,
        } => {
            let body = hub::EnrollRequest {
                node_id,
                store_id: store,
            };
            let enrolled: Option<hub::Enrollment> = target
                .client()?
                .send(Method::POST, "/enrollments", Some(&body))
                .await?;
            if let Some(e) = enrolled {
                println!("enrolled {} in {}", e.node_id, e.store_id);
            }
            Ok(())
        }
        HubCommand::Revoke { node_id, target } => {
            target
                .client()?
                .send::<(), serde_json::Value>(
                    Method::DELETE,
                    &format!("/enrollments/{node_id}"),
                    None,
                )
                .await?;
            println!("revoked {node_id}; its sync connections are cut");
            Ok(())
        }
        HubCommand::Enrollments { target } => {
            list(
                &target,
                "/enrollments",
                json,
                &[("NODE", "nodeId"), ("STORE", "storeId")],
            )
            .await
        }
        HubCommand::Replay {
            topic,
            from,
            kafka_brokers,
            target,
        } => replay(&topic, &from, &kafka_brokers, &target, json).await,
        HubCommand::Schemas { out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let schemas = fusion_hub::export::broker_schemas();
            for (topic, schema) in &schemas {
                let path = out.join(format!("{topic}.json"));
                std::fs::write(&path, serde_json::to_string_pretty(schema)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!(
                "wrote {} topic schemas into {}",
                schemas.len(),
                out.display()
            );
            Ok(())
        }
        HubCommand::Sales { target } => {
            list(
                &target,
                "/fleet/sales",
                json,
                &[
                    ("STORE", "storeId"),
                    ("DAY", "day"),
                    ("ORDERS", "orders"),
                    ("TOTAL", "total"),
                    ("CURRENCY", "currency"),
                ],
            )
            .await
        }
        HubCommand::Token { command } => token(command, json).await,
        HubCommand::Dlq {
            command:
                DlqCommand::List {
                    subscription,
                    target,
                },
        } => {
            let path = match &subscription {
                Some(s) => format!("/webhooks/dlq?subscription={}", encode(s)),
                None => "/webhooks/dlq".to_string(),
            };
            list(
                &target,
                &path,
                json,
                &[
                    ("SUBSCRIPTION", "subscription"),
                    ("ORIGIN", "origin"),
                    ("SEQ", "seq"),
                    ("TOPIC", "topic"),
                    ("KEY", "key"),
                    ("ATTEMPTS", "attempts"),
                    ("LAST ERROR", "lastError"),
                    ("FAILED AT", "failedAt"),
                ],
            )
            .await
        }
        HubCommand::Dlq {
            command:
                DlqCommand::Retry {
                    subscription,
                    target,
                },
        } => {
            let body = hub::RetryDeadLettersRequest { subscription };
            let report: hub::RetryReport = target
                .client()?
                .send(Method::POST, "/webhooks/dlq/retry", Some(&body))
                .await?
                .ok_or_else(|| anyhow::anyhow!("the hub answered without a report"))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "retried {}: {} delivered, {} left",
                    report.attempted, report.delivered, report.remaining
                );
            }
            match report.remaining {
                0 => Ok(()),
                left => Err(anyhow::anyhow!(
                    "{left} dead letters are left (see `fusion hub dlq list`)"
                )),
            }
        }
        HubCommand::Lag { target } => {
            let text = target
                .client()?
                .text::<()>(Method::GET, "/fleet/lag", None)
                .await?;
            if json {
                println!("{}", text.trim());
                return Ok(());
            }
            let lag: hub::FleetLag = serde_json::from_str(&text)?;
            let export = &lag.export;
            if export.enabled {
                println!(
                    "kafka {}: {} behind, {} exported since start{}",
                    export.report.brokers.as_deref().unwrap_or_default(),
                    export.behind,
                    export.report.exported,
                    last_error(export.report.last_error.as_deref())
                );
            } else {
                println!("kafka: export off");
            }
            for w in &lag.webhooks {
                println!(
                    "webhook {} ({}): {} behind, {} dead letters, {} delivered since start{}",
                    w.name,
                    w.url,
                    w.behind,
                    w.dead_letters,
                    w.delivered,
                    last_error(w.last_error.as_deref())
                );
            }
            Ok(())
        }
        HubCommand::Stores { target } => {
            list(
                &target,
                "/fleet/stores",
                json,
                &[
                    ("STORE", "storeId"),
                    ("TILLS", "tills"),
                    ("CONNECTED", "connected"),
                    ("LAST CONTACT", "lastContact"),
                    ("EVENTS", "events"),
                ],
            )
            .await
        }
        HubCommand::Escrow {
            action: Some(action),
            ..
        } => escrow_action(action, json).await,
        HubCommand::Escrow {
            action: None,
            sku,
            store,
            target,
        } => {
            let path = with_query("/escrow", &[("sku", &sku), ("store", &store)]);
            list(
                &target,
                &path,
                json,
                &[
                    ("STORE", "storeId"),
                    ("SKU", "sku"),
                    ("HELD", "held"),
                    ("RESERVED", "reserved"),
                    ("IN TRANSIT", "inTransit"),
                ],
            )
            .await
        }
        HubCommand::Seats {
            id,
            give_to,
            seats,
            target,
        } => {
            let client = target.client()?;
            let path = format!("/campaigns/{}/seats", encode(&id));
            let text = match (give_to, seats) {
                (Some(to), Some(seats)) => {
                    let body = hub::GiveSeatsRequest {
                        to: NodeId::new(to).map_err(|e| anyhow::anyhow!("--give-to {e}"))?,
                        seats,
                    };
                    client.text(Method::POST, &path, Some(&body)).await?
                }
                _ => client.text::<()>(Method::GET, &path, None).await?,
            };
            if json {
                println!("{}", text.trim());
                return Ok(());
            }
            let row: SharedCampaign = serde_json::from_str(&text)?;
            println!(
                "campaign {}: {} of {} seats taken (minimum {}), the hub holds {}, decision: {}",
                row.campaign.id,
                row.ended.values().map(Vec::len).sum::<usize>(),
                row.campaign.max_participants,
                row.campaign.min_participants,
                row.hub_seats,
                row.decided.map_or_else(
                    || "pending".to_string(),
                    |d| format!("{d:?}").to_lowercase()
                )
            );
            for holder in &row.holders {
                match row.ended.get(holder) {
                    Some(p) => println!("  {holder}: ended with {} participants", p.len()),
                    None => println!("  {holder}: not ended yet"),
                }
            }
            Ok(())
        }
        HubCommand::Budget { store, target } => {
            let path = with_query("/escrow/budget", &[("store", &store)]);
            list(
                &target,
                &path,
                json,
                &[
                    ("STORE", "storeId"),
                    ("CURRENCY", "currency"),
                    ("CAP", "cap"),
                    ("EXPOSURE", "exposure"),
                ],
            )
            .await
        }
        HubCommand::Sessions { store, day, target } => {
            let path = with_query("/fleet/sessions", &[("store", &store), ("day", &day)]);
            list(
                &target,
                &path,
                json,
                &[
                    ("STORE", "storeId"),
                    ("DAY", "day"),
                    ("TILL", "till"),
                    ("Z", "z"),
                    ("CURRENCY", "currency"),
                    ("EXPECTED", "expectedCash"),
                    ("COUNTED", "counted"),
                    ("VARIANCE", "variance"),
                ],
            )
            .await
        }
        HubCommand::Stock { sku, store, target } => {
            let path = with_query("/fleet/stock", &[("sku", &sku), ("store", &store)]);
            list(
                &target,
                &path,
                json,
                &[
                    ("STORE", "storeId"),
                    ("SKU", "sku"),
                    ("AVAILABLE", "available"),
                    ("RESERVED", "reserved"),
                    ("TILLS", "tills"),
                ],
            )
            .await
        }
        HubCommand::Order { id, target } => {
            let text = target
                .client()?
                .text::<()>(Method::GET, &format!("/fleet/orders/{}", encode(&id)), None)
                .await?;
            if json {
                println!("{text}");
                return Ok(());
            }
            let order: hub::FleetOrder = serde_json::from_str(&text)?;
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
            println!("order     {}", order.order_id);
            println!(
                "store     {} (till {})",
                or_dash(order.store_id.clone()),
                order.origin
            );
            println!(
                "status    {}{}",
                order.status,
                if order.flagged {
                    ", flagged for review"
                } else {
                    ""
                }
            );
            println!("customer  {}", or_dash(order.customer_id.clone()));
            println!(
                "total     {} {}",
                or_dash(order.total.map(|t| t.to_string())),
                or_dash(order.currency.map(|c| c.to_string()))
            );
            println!(
                "created   {}",
                or_dash(order.created_at.map(|t| t.to_string()))
            );
            println!("events");
            for e in &order.events {
                println!("  {}  {}", e.occurred_at, e.topic);
            }
            Ok(())
        }
    }
}

/// Pages through the hub's events of `topic` and produces those from `from` on again.
async fn replay(
    topic: &str,
    from: &str,
    brokers: &str,
    target: &HubTarget,
    json: bool,
) -> anyhow::Result<()> {
    let from = fusion_contracts::Timestamp::parse_rfc3339(from)
        .ok_or_else(|| anyhow::anyhow!("--from {from:?}: not an RFC 3339 time"))?;
    if !fusion_hub::export::topics().contains(&topic) {
        return Err(anyhow::anyhow!(
            "--topic {topic:?}: not a topic of this system"
        ));
    }
    let replayer = fusion_hub::export::Replayer::new(&fusion_hub::export::ExportConfig {
        brokers: brokers.to_string(),
        partitions: 1,
        retention_ms: -1,
        schema_registry: None,
    })?;
    let client = target.client()?;
    let progress = crate::progress::Progress::new("replay", 0);
    let mut after: Option<String> = None;
    let mut sent = 0u64;
    loop {
        let path = match &after {
            Some(a) => format!("/events?topic={topic}&limit=1000&after={a}"),
            None => format!("/events?topic={topic}&limit=1000"),
        };
        let page: hub::FleetEventsPage =
            serde_json::from_str(&client.text::<()>(Method::GET, &path, None).await?)?;
        let mut batch = Vec::new();
        for record in &page.events {
            let envelope = fusion_contracts::Envelope::from_record(record)?;
            if envelope.occurred_at >= from {
                batch.push(envelope);
            }
        }
        for chunk in batch.chunks(512) {
            replayer.send(chunk).await?;
            sent += chunk.len() as u64;
            progress.advance(chunk.len() as u64);
        }
        if page.complete {
            break;
        }
        after = page.next;
    }
    progress.finish();
    if json {
        println!(
            "{}",
            serde_json::json!({ "replayed": sent, "topic": topic })
        );
    } else {
        println!("replayed {sent} {topic} events");
    }
    Ok(())
}

async fn token(command: HubTokenCommand, json: bool) -> anyhow::Result<()> {
    match command {
        HubTokenCommand::Create {
            role,
            label,
            target,
        } => {
            let body = hub::CreateHubTokenRequest { role, label };
            let created: hub::CreatedHubToken = target
                .client()?
                .send(Method::POST, "/tokens", Some(&body))
                .await?
                .ok_or_else(|| anyhow::anyhow!("the hub answered without a token"))?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!("{}", created.token);
                eprintln!(
                    "created {} token {}",
                    format!("{role:?}").to_lowercase(),
                    created.record.id
                );
            }
            Ok(())
        }
        HubTokenCommand::List { target } => {
            list(
                &target,
                "/tokens",
                json,
                &[
                    ("ID", "id"),
                    ("ROLE", "role"),
                    ("LABEL", "label"),
                    ("CREATED", "createdAt"),
                ],
            )
            .await
        }
        HubTokenCommand::Revoke { id, target } => {
            target
                .client()?
                .send::<(), serde_json::Value>(
                    Method::DELETE,
                    &format!("/tokens/{}", encode(&id)),
                    None,
                )
                .await?;
            println!("revoked token {id}");
            Ok(())
        }
    }
}

fn last_error(error: Option<&str>) -> String {
    error
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default()
}

/// GETs a JSON list from the hub and prints it as a table (or verbatim with `--json`).
async fn list(
    target: &HubTarget,
    path: &str,
    json: bool,
    columns: &[crate::output::Column],
) -> anyhow::Result<()> {
    let rows = target.client()?.text::<()>(Method::GET, path, None).await?;
    crate::output::list(json, &rows, columns)
}

/// `path?k=v&…` with the given parameters that are set, percent-encoded.
async fn escrow_action(action: EscrowAction, json: bool) -> anyhow::Result<()> {
    const TRANSFER: &[(&str, &str)] = &[
        ("SKU", "sku"),
        ("FROM", "from"),
        ("TO", "to"),
        ("QUANTITY", "quantity"),
        ("TRANSFER", "transferId"),
    ];
    match action {
        EscrowAction::Give {
            store,
            sku,
            to,
            quantity,
            target,
        } => {
            let body = hub::HubTransferRequest {
                store_id: StoreId::new(store).map_err(|e| anyhow::anyhow!("--store {e}"))?,
                sku: Sku::new(sku).map_err(|e| anyhow::anyhow!("--sku {e}"))?,
                to: NodeId::new(to).map_err(|e| anyhow::anyhow!("--to {e}"))?,
                quantity,
            };
            let text = target
                .client()?
                .text(Method::POST, "/escrow/transfer", Some(&body))
                .await?;
            crate::output::one(json, &text, TRANSFER)
        }
        EscrowAction::Rebalance {
            store,
            keep,
            target,
        } => {
            let store_id = store
                .map(|s| StoreId::new(s).map_err(|e| anyhow::anyhow!("--store {e}")))
                .transpose()?;
            let body = hub::RebalanceRequest { store_id, keep };
            let text = target
                .client()?
                .text(Method::POST, "/escrow/rebalance", Some(&body))
                .await?;
            crate::output::list(json, &text, TRANSFER)
        }
        EscrowAction::Reclaim { node_id, target } => {
            let body = hub::ReclaimRequest {
                node_id: NodeId::new(node_id).map_err(|e| anyhow::anyhow!("node id {e}"))?,
            };
            let text = target
                .client()?
                .text(Method::POST, "/escrow/reclaim", Some(&body))
                .await?;
            if json {
                println!("{}", text.trim());
                return Ok(());
            }
            let reclaim: hub::Reclaim = serde_json::from_str(&text)?;
            println!(
                "reclaimed {} (store {}, events up to {}); revoked: {}",
                reclaim.node_id,
                reclaim.store_id,
                reclaim.upto,
                reclaim.revoked.as_deref().unwrap_or("-")
            );
            println!("{:<24} {:>10} {:>10}", "SKU", "QUANTITY", "HUB HOLDS");
            for r in &reclaim.reclaimed {
                println!("{:<24} {:>10} {:>10}", r.sku, r.quantity, r.available);
            }
            Ok(())
        }
    }
}

fn with_query(path: &str, params: &[(&str, &Option<String>)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn parse_role(text: &str) -> Result<hub::HubRole, String> {
    match text {
        "viewer" => Ok(hub::HubRole::Viewer),
        "admin" => Ok(hub::HubRole::Admin),
        _ => Err("must be viewer or admin".into()),
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn serve(
    data_dir: PathBuf,
    listen: SocketAddr,
    sync_bind: SocketAddr,
    relay: Option<net::RelayUrl>,
    export: Option<fusion_hub::export::ExportConfig>,
    webhooks: Vec<fusion_hub::webhook::Subscription>,
    rebalance: Option<fusion_hub::Rebalance>,
) -> anyhow::Result<()> {
    init_tracing();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let hub = Hub::open(&data_dir)
        .with_context(|| format!("opening the hub in {}", data_dir.display()))?;
    let hub = match export {
        Some(config) => {
            println!("Kafka export: {}", config.brokers);
            hub.with_export(config)
        }
        None => {
            println!("Kafka export: off (no --kafka-brokers)");
            hub
        }
    };
    for w in &webhooks {
        println!("webhook {}: {} ({})", w.name, w.url, w.topics.join(", "));
    }
    let hub = hub.with_webhooks(webhooks)?;
    let hub = match rebalance {
        Some(r) => {
            println!(
                "rebalancing stock rights every {}s, keeping {} per sku",
                r.every.as_secs(),
                r.keep
            );
            hub.with_rebalance(r)
        }
        None => hub,
    };
    let endpoint =
        net::sync_endpoint(net::load_or_create_identity(&data_dir)?, sync_bind, relay).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let stop = shutdown_signal();
    println!("fusion hub listening on http://{addr}");
    for socket in endpoint.bound_sockets() {
        println!("sync endpoint: {}@{socket}", endpoint.id());
    }
    crate::node_cmd::print_admin_token(
        hub.new_admin_token.as_deref(),
        &hub.admin_token_path,
        false,
    );
    tracing::info!(%addr, endpoint = %endpoint.id(), "hub serving");
    crate::systemd::ready();
    {
        // Healthy while its store answers a read.
        let store = hub.state.store.clone();
        crate::systemd::spawn_watchdog(move || store.enrollments().is_ok());
    }
    hub.serve(listener, endpoint, async {
        stop.await;
        crate::systemd::stopping();
    })
    .await?;
    tracing::info!("stopped");
    Ok(())
}
