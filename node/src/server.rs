//! Wiring: open the store, make sure an admin token exists, serve HTTP until told to stop.

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::serve::ListenerExt;
use fusion_contracts::http::Role;
use fusion_contracts::{CorrelationId, TokenId};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::api::{self, AppState};
use crate::store::{Command, Store, StoreOptions, WriteRequest};

/// The admin token's file in the data dir (mode 0600), written on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// An open node, ready to serve.
pub struct Node {
    pub state: AppState,
    /// The admin token when this start created it (print it once); `None` when it existed.
    pub new_admin_token: Option<String>,
    pub admin_token_path: PathBuf,
}

impl Node {
    /// Opens the store in `data_dir` and makes sure an admin token exists.
    pub async fn open(data_dir: &Path, options: StoreOptions) -> anyhow::Result<Node> {
        let dir = data_dir.to_path_buf();
        let store = tokio::task::spawn_blocking(move || Store::open(&dir, options))
            .await
            .context("store open task")?
            .with_context(|| format!("opening the store in {}", data_dir.display()))?;
        let admin_token_path = data_dir.join(ADMIN_TOKEN_FILE);
        let new_admin_token = ensure_admin_token(&store, &admin_token_path).await?;
        Ok(Node {
            state: AppState::new(store, crate::metrics::install()),
            new_admin_token,
            admin_token_path,
        })
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Reports the sync links (hub, tills) on `/sync/status` and `/metrics`.
    pub fn with_sync_links(mut self, links: std::sync::Arc<crate::replication::SyncLinks>) -> Self {
        self.state.sync = Some(links);
        self
    }

    /// How card payments the provider has not settled are treated (timeout, floor limit).
    pub fn with_payment_policy(mut self, policy: crate::card::PaymentPolicy) -> Self {
        self.state.payment_policy = policy;
        self
    }

    /// Prints receipts on `printer` (`POST /orders/{id}/receipt/prints?send=printer`).
    pub fn with_printer(mut self, printer: crate::printer::Printer) -> Self {
        self.state.printer = Some(printer);
        self
    }

    /// Takes card payments through `provider`.
    pub fn with_card_provider(
        mut self,
        provider: std::sync::Arc<dyn crate::card::CardProvider>,
    ) -> Self {
        self.state.card = Some(provider);
        self
    }
}

/// On a store without tokens, registers the admin token: the one already in `path` (a start
/// that died between writing the file and committing), or a new one written there first.
async fn ensure_admin_token(store: &Store, path: &Path) -> anyhow::Result<Option<String>> {
    if store.has_tokens() {
        return Ok(None);
    }
    let (token, created) = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => (text.trim().to_string(), false),
        _ => {
            let (token, _) = fusion_http::token::generate(fusion_http::token::NODE_TOKEN_PREFIX)
                .context("generating the admin token")?;
            write_secret(path, &token).with_context(|| format!("writing {}", path.display()))?;
            (token, true)
        }
    };
    let request = WriteRequest {
        command: Command::CreateToken {
            id: TokenId(Uuid::now_v7()),
            role: Role::Admin,
            label: Some("bootstrap admin".into()),
            hash: fusion_http::token::hash(&token),
        },
        correlation_id: CorrelationId::new("bootstrap").expect("valid correlation id"),
        command_id: Uuid::now_v7(),
        idempotency: None,
    };
    store
        .write(request)
        .await
        .context("registering the admin token")?;
    Ok(created.then_some(token))
}

/// Writes a secret readable by its owner only, durably.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Runs the node — the API on `listener`, the campaign scheduler and the payment follow-up
/// worker — until `shutdown`
/// resolves, then lets in-flight requests finish. The caller stops the store afterwards
/// (`Store::shutdown`).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(share) = state.payment_policy.offline_budget {
        // The share is rights created at this till: recorded in its log, so the hub (and the
        // store's other tills) know the store's budget.
        let request = WriteRequest {
            command: Command::SetOfflineBudget(share),
            correlation_id: CorrelationId::new("offline-budget").expect("valid correlation id"),
            command_id: Uuid::now_v7(),
            idempotency: None,
        };
        if let Err(error) = state.store.write(request).await {
            tracing::error!(%error, "could not record the offline card budget share");
        }
    }
    let listener = listener.tap_io(|tcp| {
        // Small JSON answers must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
    });
    let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(crate::scheduler::run(state.store.clone(), async {
        let _ = scheduler_stopped.await;
    }));
    let (stop_followup, followup_stopped) = tokio::sync::oneshot::channel::<()>();
    let followup = tokio::spawn(crate::followup::run(state.clone(), async {
        let _ = followup_stopped.await;
    }));
    let served = axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_scheduler.send(());
    let _ = stop_followup.send(());
    let _ = scheduler.await;
    let _ = followup.await;
    served
}
