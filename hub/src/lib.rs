//! The hub: receives every enrolled node's event log over `fusion_sync` and stores it durably.
//! It holds the fleet log and the enrollments (who may sync) and serves them over HTTP
//! (`api`), merges the fleet's documents (`docs`), and exports every event to Kafka (`export`)
//! and to webhook subscriptions such as n8n (`webhook`).

pub mod api;
pub mod docs;
pub mod export;
pub mod store;
pub mod webhook;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fusion_sync::net::{self, Endpoint, Gate};
use tokio::net::TcpListener;

use fusion_contracts::{NodeId, StoreId};
use fusion_rules::journal::Checkpoint;
use fusion_sync::proto::LogSource;

use crate::api::HubState;
use crate::docs::HubDocs;
use crate::store::HubStore;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] store::HubStoreError),
    #[error("admin token {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Identity(#[from] net::NetError),
    #[error("serving HTTP: {0}")]
    Http(std::io::Error),
}

/// An opened hub: its store, its sync gate (admits enrolled nodes) and its HTTP state.
pub struct Hub {
    pub state: HubState,
    /// Kafka export, when configured (`with_export`).
    pub export: Option<export::ExportConfig>,
    /// The admin token, when this start created it (print it once).
    pub new_admin_token: Option<String>,
    pub admin_token_path: PathBuf,
    /// Automatic rebalancing of stock rights, when configured (`with_rebalance`).
    pub rebalance: Option<Rebalance>,
}

/// Rebalancing on a timer: every `every`, the hub gives what it holds above `keep` per store
/// and sku toward the tills that sell (`HubStore::rebalance`).
#[derive(Clone, Copy, Debug)]
pub struct Rebalance {
    pub every: std::time::Duration,
    pub keep: u64,
}

impl Hub {
    pub fn open(data_dir: &Path) -> Result<Self, HubError> {
        let store = Arc::new(HubStore::open(data_dir)?);
        let gate = {
            let store = store.clone();
            Gate::new(move |peer| matches!(store.enrollment(peer), Ok(Some(_))))
        };
        let identity = net::load_or_create_identity(data_dir)?;
        // The fleet's documents are held lazily too: at most this much of them in memory.
        const HUB_DOC_CACHE_BYTES: usize = 64 * 1024 * 1024;
        // The hub's own events (edits made here) get an origin of their own.
        let docs = Arc::new(HubDocs::open(
            store.clone(),
            identity.public().as_bytes(),
            store.origin().clone(),
            HUB_DOC_CACHE_BYTES,
        )?);
        let admin_token_path = data_dir.join(api::ADMIN_TOKEN_FILE);
        let (state, new_admin_token) =
            HubState::open(data_dir, store, gate, docs).map_err(|source| HubError::Token {
                path: admin_token_path.display().to_string(),
                source,
            })?;
        Ok(Self {
            state,
            export: None,
            new_admin_token,
            admin_token_path,
            rebalance: None,
        })
    }

    /// Exports every event to Kafka while serving.
    pub fn with_export(mut self, config: export::ExportConfig) -> Self {
        self.export = Some(config);
        self
    }

    /// Rebalances stock rights on a timer while serving.
    pub fn with_rebalance(mut self, rebalance: Rebalance) -> Self {
        self.rebalance = Some(rebalance);
        self
    }

    /// Delivers events to these webhook subscriptions while serving.
    pub fn with_webhooks(
        mut self,
        subscriptions: Vec<webhook::Subscription>,
    ) -> Result<Self, webhook::WebhookError> {
        self.state.webhooks = Arc::new(webhook::Webhooks::new(subscriptions)?);
        Ok(self)
    }

    /// Serves the HTTP API on `listener` and accepts enrolled nodes' sync connections on
    /// `endpoint` until `shutdown` resolves.
    pub async fn serve(
        &self,
        listener: TcpListener,
        endpoint: Endpoint,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HubError> {
        let docs: Arc<dyn net::DocHost> = self.state.docs.clone();
        // The background tasks end with `serve`, also when its future is dropped.
        let mut tasks = Tasks::default();
        let logs: Arc<dyn net::LogServer> = Arc::new(HubLogs(self.state.store.clone()));
        tasks.0.push(tokio::spawn(net::serve(
            endpoint.clone(),
            self.state.store.clone(),
            Some(docs),
            Some(logs),
            self.state.gate.clone(),
        )));
        match &self.export {
            Some(config) => {
                tracing::info!(brokers = %config.brokers, "exporting events to Kafka");
                tasks.0.push(tokio::spawn(export::run(
                    self.state.store.clone(),
                    config.clone(),
                    self.state.export.clone(),
                )));
            }
            None => tracing::info!("no Kafka brokers configured: export is off"),
        }
        if let Some(r) = self.rebalance {
            let store = self.state.store.clone();
            tasks.0.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(r.every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let store = store.clone();
                    let correlation = fusion_contracts::CorrelationId::new(format!(
                        "rebalance-{}",
                        uuid::Uuid::now_v7()
                    ))
                    .expect("a valid correlation id");
                    match tokio::task::spawn_blocking(move || {
                        store.rebalance(None, r.keep, correlation)
                    })
                    .await
                    {
                        Ok(Ok(moved)) if !moved.is_empty() => {
                            tracing::info!(transfers = moved.len(), "rebalanced stock rights")
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => tracing::error!(%error, "rebalancing failed"),
                        Err(error) => tracing::error!(%error, "rebalancing panicked"),
                    }
                }
            }));
        }
        if self.state.webhooks.is_empty() {
            tracing::info!("no webhook subscriptions configured");
        }
        tasks
            .0
            .extend(self.state.webhooks.spawn(self.state.store.clone()));
        let served = axum::serve(listener, api::router(self.state.clone()))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(HubError::Http);
        endpoint.close().await;
        drop(tasks);
        served
    }
}

/// What tills pull from the hub: its own log and its holder of the till's store.
struct HubLogs(Arc<HubStore>);

impl net::LogServer for HubLogs {
    fn log_for(&self, peer: net::EndpointId) -> Option<Box<dyn LogSource + Send + Sync>> {
        let store = StoreId::new(self.0.enrollment(peer).ok()??).ok()?;
        let origins = vec![self.0.origin().clone(), self.0.holder(&store)];
        Some(Box::new(HubLog {
            store: self.0.clone(),
            origins,
        }))
    }

    fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.0.appended()
    }
}

/// Some of the hub's own origins, as a log to send.
struct HubLog {
    store: Arc<HubStore>,
    origins: Vec<NodeId>,
}

impl LogSource for HubLog {
    fn heads(&self) -> Vec<(NodeId, u64)> {
        self.origins
            .iter()
            .map(|o| (o.clone(), self.store.position(o).unwrap_or(0)))
            .collect()
    }

    fn read(&self, origin: &NodeId, from: u64, limit: usize) -> Vec<Vec<u8>> {
        if !self.origins.contains(origin) {
            return Vec::new();
        }
        self.store
            .events_raw(origin, from, limit)
            .unwrap_or_else(|error| {
                tracing::error!(%error, "cannot read the hub's log");
                Vec::new()
            })
    }

    fn checkpoint(&self, origin: &NodeId, seq: u64) -> Option<Checkpoint> {
        if !self.origins.contains(origin) {
            return None;
        }
        self.store.checkpoint(origin, seq).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read the hub's journal");
            None
        })
    }
}

/// Background tasks aborted when dropped.
#[derive(Default)]
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
