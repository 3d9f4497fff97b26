//! `fusion node …`: the node daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use std::sync::Arc;

use fusion_contracts::{Money, StoreId};
use fusion_node::card::{CardProvider, PaymentPolicy, StripeProvider};
use fusion_node::replication::{PeerLink, Role, SyncLinks};
use fusion_node::server::{self, Node};
use fusion_node::store::StoreOptions;
use fusion_sync::net;

use crate::parse::{parse_money, parse_peer, parse_store_id};
use tokio::net::TcpListener;

// Parsed once at start: boxing the large `Serve` variant would buy nothing.
#[allow(clippy::large_enum_variant)]
/// `fusion node serve`: each setting from its flag, else its environment variable, else the
/// config file (`--config`), else its default.
#[derive(Args)]
pub struct ServeArgs {
    /// TOML config file (see systemd/node.toml.example); flags and environment override it.
    #[arg(long, env = "FUSION_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the store (created if missing).
    #[arg(long, env = "FUSION_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "FUSION_LISTEN")]
    listen: Option<SocketAddr>,
    /// Seed a demo catalog into an empty store and print the admin token at start.
    #[arg(long)]
    demo: bool,
    /// Serve a journal that fails its check at start (logged as an error at every start);
    /// `fusion journal verify` names the first bad record.
    #[arg(long)]
    allow_damaged_journal: bool,
    /// Base URL of the Stripe API (or a Stripe emulator) for card payments.
    #[arg(long, env = "FUSION_STRIPE_URL")]
    stripe_url: Option<String>,
    /// File holding the Stripe secret key (never pass secrets as arguments); used only with
    /// `--stripe-url` (under systemd it is the `stripe.key` credential).
    #[arg(long, env = "FUSION_STRIPE_KEY_FILE")]
    stripe_key_file: Option<PathBuf>,
    /// Seconds a card payment may stay pending before it fails (BR-007) [default: 30].
    #[arg(long, env = "FUSION_PAYMENT_TIMEOUT_SECS")]
    payment_timeout_secs: Option<u64>,
    /// Largest card payment approved offline when the provider is unreachable, e.g. "50.00 USD";
    /// absent: no offline approval.
    #[arg(long, env = "FUSION_CARD_FLOOR_LIMIT", value_parser = parse_money)]
    card_floor_limit: Option<Money>,
    /// This till's share of the store's offline card budget, e.g. "300.00 USD": card payments
    /// it approved offline and the provider has not settled never total more (the store's cap
    /// is the sum of its tills' shares). Absent: no budget beyond the floor limit.
    #[arg(long, env = "FUSION_OFFLINE_CARD_BUDGET", value_parser = parse_money)]
    offline_card_budget: Option<Money>,
    /// Seconds an unpaid order holds its stock before it is cancelled; 0: until paid
    /// [default: 1800].
    #[arg(long, env = "FUSION_ORDER_HOLD_SECS")]
    order_hold_secs: Option<u64>,
    /// JSON rate table for shipping labels (see docs/shipping-rates.example.json); absent:
    /// the built-in US table.
    #[arg(long, env = "FUSION_SHIPPING_RATES")]
    shipping_rates: Option<PathBuf>,
    /// Replicate the event log to this hub: `ENDPOINT_ID@IP:PORT[,IP:PORT…]` (its direct
    /// addresses; see `fusion hub serve`).
    #[arg(long, env = "FUSION_HUB", value_parser = parse_peer)]
    hub: Option<(net::EndpointId, Vec<SocketAddr>)>,
    /// Another till of this store to sync with directly (its orders and the catalog, also
    /// while the hub is unreachable): `ENDPOINT_ID@IP:PORT[,IP:PORT…]`; repeat for each.
    /// Give every till of the store the others.
    #[arg(long = "peer", env = "FUSION_PEERS", value_delimiter = ';', value_parser = parse_peer)]
    peers: Vec<(net::EndpointId, Vec<SocketAddr>)>,
    /// The store this node is a till of (as enrolled at the hub): its shared settings
    /// (name, payment hold, card floor limit) are synced with the store's other tills and
    /// the hub and override the flags.
    #[arg(long, env = "FUSION_STORE_ID", value_parser = parse_store_id)]
    store_id: Option<StoreId>,
    /// A relay you run for sites behind NAT (e.g. `https://relay.example.com`): this node is
    /// reachable through it and dials its peers through it too. Absent: direct addresses
    /// only (no public relay is ever used).
    #[arg(long, env = "FUSION_RELAY_URL")]
    relay_url: Option<net::RelayUrl>,
    /// Local UDP address of the node's sync endpoint [default: 0.0.0.0:0].
    #[arg(long, env = "FUSION_SYNC_BIND")]
    sync_bind: Option<SocketAddr>,
    /// The till's receipt printer: `HOST:PORT` of a network ESC/POS printer's raw port
    /// (e.g. `192.168.1.50:9100`) or a device file (e.g. `/dev/usb/lp0`). Absent: receipts
    /// print from the register's browser only.
    #[arg(long, env = "FUSION_PRINTER")]
    printer: Option<fusion_node::printer::Printer>,
    /// Memory (MiB) the shared documents loaded at once may take: catalog, campaigns and
    /// settings are loaded only to apply or produce a change, least recently used evicted
    /// first [default: 32].
    #[arg(long, env = "FUSION_DOC_CACHE_MB")]
    doc_cache_mb: Option<usize>,
    /// Memory (MiB) the store keeps of its file's pages; the rest is read through the
    /// kernel's page cache [default: 32].
    #[arg(long, env = "FUSION_STORE_CACHE_MB")]
    store_cache_mb: Option<usize>,
}

/// `ServeArgs` with the config file and the defaults applied.
struct Resolved {
    data_dir: PathBuf,
    listen: SocketAddr,
    demo: bool,
    allow_damaged_journal: bool,
    stripe_url: Option<String>,
    stripe_key_file: Option<PathBuf>,
    payment_timeout_secs: u64,
    card_floor_limit: Option<Money>,
    offline_card_budget: Option<Money>,
    order_hold_secs: u64,
    shipping_rates: Option<PathBuf>,
    hub: Option<(net::EndpointId, Vec<SocketAddr>)>,
    peers: Vec<(net::EndpointId, Vec<SocketAddr>)>,
    store_id: Option<StoreId>,
    relay_url: Option<net::RelayUrl>,
    sync_bind: SocketAddr,
    printer: Option<fusion_node::printer::Printer>,
    doc_cache_mb: usize,
    store_cache_mb: usize,
}

impl ServeArgs {
    fn with_config(self) -> anyhow::Result<Resolved> {
        let file = match &self.config {
            Some(path) => crate::config::load_node(path)?,
            None => crate::config::NodeConfig::default(),
        };
        use crate::config::value;
        let data_dir = self.data_dir.or(file.data_dir).ok_or_else(|| {
            anyhow::anyhow!(
                "no data dir: pass --data-dir, set FUSION_DATA_DIR or data_dir in the config"
            )
        })?;
        // The file's values were checked when it was loaded.
        let peers = if self.peers.is_empty() {
            file.sync
                .peers
                .iter()
                .filter_map(|p| parse_peer(p.get_ref()).ok())
                .collect()
        } else {
            self.peers
        };
        Ok(Resolved {
            data_dir,
            listen: self
                .listen
                .or(value(&file.listen))
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            demo: self.demo,
            allow_damaged_journal: self.allow_damaged_journal,
            stripe_url: self.stripe_url.or(file.payments.stripe_url),
            stripe_key_file: self.stripe_key_file.or(file.payments.stripe_key_file),
            payment_timeout_secs: self
                .payment_timeout_secs
                .or(file.payments.timeout_secs)
                .unwrap_or(30),
            card_floor_limit: self.card_floor_limit.or_else(|| {
                file.payments
                    .card_floor_limit
                    .as_ref()
                    .and_then(|m| parse_money(m.get_ref()).ok())
            }),
            offline_card_budget: self.offline_card_budget.or_else(|| {
                file.payments
                    .offline_card_budget
                    .as_ref()
                    .and_then(|m| parse_money(m.get_ref()).ok())
            }),
            order_hold_secs: self
                .order_hold_secs
                .or(file.orders.hold_secs)
                .unwrap_or(1800),
            shipping_rates: self.shipping_rates.or(file.shipping.rates_file),
            hub: self.hub.or_else(|| {
                file.sync
                    .hub
                    .as_ref()
                    .and_then(|h| parse_peer(h.get_ref()).ok())
            }),
            peers,
            store_id: self.store_id.or_else(|| {
                file.store_id
                    .as_ref()
                    .and_then(|s| StoreId::new(s.get_ref()).ok())
            }),
            relay_url: self.relay_url.or(value(&file.sync.relay_url)),
            sync_bind: self
                .sync_bind
                .or(value(&file.sync.bind))
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            printer: self.printer.or(value(&file.printer)),
            doc_cache_mb: self
                .doc_cache_mb
                .or(file.doc_cache_mb)
                .unwrap_or(fusion_sync::docs::DEFAULT_CACHE_BYTES >> 20),
            store_cache_mb: self
                .store_cache_mb
                .or(file.store_cache_mb)
                .unwrap_or(fusion_node::store::STORE_CACHE_DEFAULT_BYTES >> 20),
        })
    }
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Serve the node's HTTP API on an embedded store until SIGTERM or Ctrl-C.
    Serve(Box<ServeArgs>),
    /// Save a consistent copy of a serving node's store into DIR (the node keeps serving), then
    /// verify the copy.
    Backup {
        /// Directory for the copy (created; must not hold a store already).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        target: crate::client::Target,
    },
    /// Put a backup into a new data dir, checking it first.
    Restore {
        /// The backup's directory (`fusion node backup --out`).
        #[arg(long)]
        from: PathBuf,
        /// The new data dir (must not hold a store).
        #[arg(long = "into")]
        into: PathBuf,
    },
    /// Check a stopped node's store (or a backup): the event log has no gap and holds valid
    /// events, replaying it reproduces its projections, and product rows equal their documents.
    Verify {
        #[arg(long, env = "FUSION_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Print this node's endpoint id (its sync identity), creating it on first use.
    Id {
        #[arg(long, env = "FUSION_DATA_DIR")]
        data_dir: PathBuf,
    },
}

pub async fn run(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Id { data_dir } => print_identity(&data_dir),
        NodeCommand::Backup { out, target } => crate::backup_cmd::backup(&out, &target).await,
        NodeCommand::Restore { from, into } => crate::backup_cmd::restore(&from, &into),
        NodeCommand::Verify { data_dir } => crate::backup_cmd::verify(&data_dir),
        NodeCommand::Serve(args) => {
            let Resolved {
                data_dir,
                listen,
                demo,
                allow_damaged_journal,
                stripe_url,
                stripe_key_file,
                payment_timeout_secs,
                card_floor_limit,
                offline_card_budget,
                order_hold_secs,
                shipping_rates,
                hub,
                peers,
                store_id,
                relay_url,
                sync_bind,
                printer,
                doc_cache_mb,
                store_cache_mb,
            } = args.with_config()?;
            // A demo node is a store of its own, so settings and staff work out of the box.
            let store_id =
                store_id.or_else(|| demo.then(|| StoreId::new("demo").expect("a valid store id")));
            let mut store = StoreOptions {
                order_hold: (order_hold_secs > 0)
                    .then(|| std::time::Duration::from_secs(order_hold_secs)),
                store_id,
                allow_damaged_journal,
                doc_cache_bytes: doc_cache_mb.saturating_mul(1 << 20),
                store_cache_bytes: store_cache_mb.saturating_mul(1 << 20),
                ..StoreOptions::default()
            };
            if let Some(path) = shipping_rates {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                store.shipping_rates = serde_json::from_str(&text)
                    .with_context(|| format!("parsing the rate table {}", path.display()))?;
            }
            let policy = PaymentPolicy {
                pending_timeout: std::time::Duration::from_secs(payment_timeout_secs),
                offline_floor_limit: card_floor_limit,
                offline_budget: offline_card_budget,
            };
            let card = match (stripe_url, stripe_key_file) {
                (Some(url), Some(key_file)) => {
                    let key = std::fs::read_to_string(&key_file).with_context(|| {
                        format!("reading the Stripe key from {}", key_file.display())
                    })?;
                    if key.trim().is_empty() {
                        anyhow::bail!("the Stripe key file {} is empty", key_file.display());
                    }
                    let provider = StripeProvider::new(url, key.trim())
                        .context("setting up the Stripe client")?;
                    Some(Arc::new(provider) as Arc<dyn CardProvider>)
                }
                // A key file alone (say, systemd's credential path) turns nothing on.
                _ => None,
            };
            serve(
                data_dir,
                listen,
                demo,
                Devices { card, printer },
                policy,
                store,
                Sync {
                    hub,
                    peers,
                    relay: relay_url,
                    bind: sync_bind,
                },
            )
            .await
        }
    }
}

/// What the till talks to beside its peers: the card provider and the receipt printer.
struct Devices {
    card: Option<Arc<dyn CardProvider>>,
    printer: Option<fusion_node::printer::Printer>,
}

async fn serve(
    data_dir: PathBuf,
    listen: SocketAddr,
    demo: bool,
    Devices { card, printer }: Devices,
    policy: PaymentPolicy,
    store_options: StoreOptions,
    sync: Sync,
) -> anyhow::Result<()> {
    init_tracing();
    let mut node = Node::open(&data_dir, store_options)
        .await?
        .with_payment_policy(policy);
    match card {
        Some(provider) => node = node.with_card_provider(provider),
        None => tracing::info!("no card provider configured: card payments are refused"),
    }
    if let Some(printer) = printer {
        tracing::info!(%printer, "receipts print on this printer");
        node = node.with_printer(printer);
    }
    let store = node.store().clone();
    let mut sync_tasks = None;
    if sync.hub.is_some() || !sync.peers.is_empty() {
        let identity = net::load_or_create_identity(&data_dir)?;
        let endpoint = net::sync_endpoint(identity, sync.bind, sync.relay.clone()).await?;
        let peers = sync
            .hub
            .map(|(id, addrs)| PeerLink::new(Role::Hub, id, addrs))
            .into_iter()
            .chain(
                sync.peers
                    .into_iter()
                    .map(|(id, addrs)| PeerLink::new(Role::Till, id, addrs)),
            )
            .collect();
        let links = Arc::new(SyncLinks {
            endpoint_id: endpoint.id(),
            peers,
            relay: sync.relay,
        });
        for socket in endpoint.bound_sockets() {
            println!("sync endpoint: {}@{socket}", endpoint.id());
        }
        for peer in &links.peers {
            tracing::info!(endpoint = %endpoint.id(), peer = %peer.id, role = peer.role.as_str(), addrs = ?peer.addrs, "syncing");
        }
        sync_tasks = Some(fusion_node::replication::start(&store, endpoint, &links));
        node = node.with_sync_links(links);
    }
    if demo {
        let created = fusion_node::demo::seed(&store)
            .await
            .context("seeding demo data")?;
        if created > 0 {
            tracing::info!(products = created, "seeded demo catalog");
        }
        if fusion_node::demo::seed_staff(&store)
            .await
            .context("seeding demo staff")?
        {
            tracing::info!("seeded demo staff");
        }
        let staff: Vec<String> = fusion_node::demo::DEMO_STAFF
            .iter()
            .map(|(id, _, role, pin)| format!("{id} ({}, PIN {pin})", role.as_str()))
            .collect();
        println!("demo staff: {}", staff.join(", "));
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let stop = shutdown_signal();
    tracing::info!(%addr, node_id = %store.node_id(), data_dir = %data_dir.display(), "node serving");
    println!("fusion node {} listening on http://{addr}", store.node_id());
    print_admin_token(
        node.new_admin_token.as_deref(),
        &node.admin_token_path,
        demo,
    );
    crate::systemd::ready();
    {
        let store = store.clone();
        crate::systemd::spawn_watchdog(move || store.is_ready());
    }
    server::serve(listener, node.state.clone(), async {
        stop.await;
        crate::systemd::stopping();
    })
    .await
    .context("serving HTTP")?;
    if let Some(tasks) = sync_tasks {
        tasks.stop().await;
    }
    tracing::info!("HTTP drained; stopping the store");
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .context("store shutdown")?;
    tracing::info!("stopped");
    Ok(())
}

/// Whom the node syncs with, from the flags.
struct Sync {
    hub: Option<(net::EndpointId, Vec<SocketAddr>)>,
    peers: Vec<(net::EndpointId, Vec<SocketAddr>)>,
    relay: Option<net::RelayUrl>,
    bind: SocketAddr,
}

/// Says where the admin token is; prints the token itself only to a terminal (a new one once,
/// or an existing one with `show_existing`, as `--demo` does), never into a log or the
/// journal that a non-terminal stdout is under systemd.
pub(crate) fn print_admin_token(new: Option<&str>, path: &std::path::Path, show_existing: bool) {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    match new {
        Some(token) if terminal => {
            println!(
                "admin token (shown once, also in {}): {token}",
                path.display()
            )
        }
        None if terminal && show_existing => {
            let token = std::fs::read_to_string(path).unwrap_or_default();
            println!("admin token: {}", token.trim());
        }
        _ => println!("admin token: in {}", path.display()),
    }
}

/// Prints the sync identity (endpoint id) of `data_dir`, creating it on first use.
pub(crate) fn print_identity(data_dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    println!("{}", net::load_or_create_identity(data_dir)?.public());
    Ok(())
}

/// Resolves at SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled: a daemon calls it before it says it is ready, so a stop that
/// comes right after (systemd's, a test's) drains instead of killing it.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term.take()) => {},
            _ = wait(int.take()) => {},
        }
        tracing::info!("shutdown requested; draining in-flight requests");
    }
}

/// Logs at info by default (`RUST_LOG` overrides). automerge opens an info-level span per
/// document and column it loads, each formatting its arguments: a tenth of a big initial
/// sync's time went there, so its spans are off unless asked for.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,automerge=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
