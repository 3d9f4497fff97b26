//! `fusion node …`: the node daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use std::sync::Arc;

use fusion_node::card::{CardProvider, StripeProvider};
use fusion_node::server::{self, Node};
use fusion_node::store::StoreOptions;
use tokio::net::TcpListener;

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Serve the node's HTTP API on an embedded store until SIGTERM or Ctrl-C.
    Serve {
        /// Directory of the store (created if missing).
        #[arg(long, env = "FUSION_DATA_DIR")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "FUSION_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Seed a demo catalog into an empty store and print the admin token at start.
        #[arg(long)]
        demo: bool,
        /// Base URL of the Stripe API (or a Stripe emulator) for card payments.
        #[arg(long, env = "FUSION_STRIPE_URL", requires = "stripe_key_file")]
        stripe_url: Option<String>,
        /// File holding the Stripe secret key (never pass secrets as arguments).
        #[arg(long, env = "FUSION_STRIPE_KEY_FILE", requires = "stripe_url")]
        stripe_key_file: Option<PathBuf>,
    },
}

pub async fn run(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Serve {
            data_dir,
            listen,
            demo,
            stripe_url,
            stripe_key_file,
        } => {
            let card = match (stripe_url, stripe_key_file) {
                (Some(url), Some(key_file)) => {
                    let key = std::fs::read_to_string(&key_file).with_context(|| {
                        format!("reading the Stripe key from {}", key_file.display())
                    })?;
                    let provider = StripeProvider::new(url, key.trim())
                        .context("setting up the Stripe client")?;
                    Some(Arc::new(provider) as Arc<dyn CardProvider>)
                }
                _ => None,
            };
            serve(data_dir, listen, demo, card).await
        }
    }
}

async fn serve(
    data_dir: PathBuf,
    listen: SocketAddr,
    demo: bool,
    card: Option<Arc<dyn CardProvider>>,
) -> anyhow::Result<()> {
    init_tracing();
    let mut node = Node::open(&data_dir, StoreOptions::default()).await?;
    match card {
        Some(provider) => node = node.with_card_provider(provider),
        None => tracing::info!("no card provider configured: card payments are refused"),
    }
    let store = node.store().clone();
    if demo {
        let created = fusion_node::demo::seed(&store)
            .await
            .context("seeding demo data")?;
        if created > 0 {
            tracing::info!(products = created, "seeded demo catalog");
        }
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, node_id = %store.node_id(), data_dir = %data_dir.display(), "node serving");
    println!("fusion node {} listening on http://{addr}", store.node_id());
    match (&node.new_admin_token, demo) {
        (Some(token), _) => println!(
            "admin token (shown once, also in {}): {token}",
            node.admin_token_path.display()
        ),
        (None, true) => {
            let token = std::fs::read_to_string(&node.admin_token_path).unwrap_or_default();
            println!("admin token: {}", token.trim());
        }
        (None, false) => println!("admin token: in {}", node.admin_token_path.display()),
    }
    server::serve(listener, node.state.clone(), shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("HTTP drained; stopping the store");
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .context("store shutdown")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
