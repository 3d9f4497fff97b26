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

use fusion_contracts::NodeId;

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
}

impl Hub {
    pub fn open(data_dir: &Path) -> Result<Self, HubError> {
        let store = Arc::new(HubStore::open(data_dir)?);
        let gate = {
            let store = store.clone();
            Gate::new(move |peer| matches!(store.enrollment(peer), Ok(Some(_))))
        };
        let identity = net::load_or_create_identity(data_dir)?;
        let endpoint_id = identity.public();
        // The hub's own events (edits made here) get an origin of their own.
        let origin = NodeId::new(format!("hub-{}", &endpoint_id.to_string()[..32]))
            .expect("hex is a valid node id");
        let docs = Arc::new(HubDocs::open(
            store.clone(),
            endpoint_id.as_bytes(),
            origin,
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
        })
    }

    /// Exports every event to Kafka while serving.
    pub fn with_export(mut self, config: export::ExportConfig) -> Self {
        self.export = Some(config);
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
        tasks.0.push(tokio::spawn(net::serve(
            endpoint.clone(),
            self.state.store.clone(),
            Some(docs),
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
