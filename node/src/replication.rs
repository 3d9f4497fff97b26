//! The node's side of replication: its event log as the `LogSource` of `fusion_sync`, and the
//! task that keeps a session to the hub open, reconnecting with backoff.

use std::sync::Arc;
use std::time::Duration;

use fusion_contracts::NodeId;
use fusion_sync::net;
use fusion_sync::proto::LogSource;

use crate::store::Store;

/// First pause after a failed session; doubles up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest pause between attempts while the hub is unreachable.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The node's own log, read through snapshots of the store.
pub struct StoreLog {
    store: Store,
}

impl StoreLog {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl LogSource for StoreLog {
    fn heads(&self) -> Vec<(NodeId, u64)> {
        match self.store.read().and_then(|r| r.last_seq()) {
            Ok(last) => vec![(self.store.node_id().clone(), last)],
            Err(error) => {
                tracing::error!(%error, "replication cannot read the log");
                Vec::new()
            }
        }
    }

    fn read(&self, origin: &NodeId, from: u64, limit: usize) -> Vec<Vec<u8>> {
        if origin != self.store.node_id() {
            return Vec::new();
        }
        self.store
            .read()
            .and_then(|r| r.events_raw(from, limit))
            .unwrap_or_else(|error| {
                tracing::error!(%error, "replication cannot read the log");
                Vec::new()
            })
    }
}

/// The node's link to its hub, as `/sync/status` and the metrics report it.
pub struct HubLink {
    /// This node's sync identity.
    pub endpoint_id: net::EndpointId,
    pub hub_id: net::EndpointId,
    /// The hub's direct addresses.
    pub hub_addrs: Vec<std::net::SocketAddr>,
    pub status: Arc<net::SendStatus>,
}

/// Replicates the node's log to the hub at `hub` for as long as the task runs, reporting into
/// `status`.
pub async fn run(
    store: Store,
    endpoint: net::Endpoint,
    hub: net::EndpointAddr,
    status: Arc<net::SendStatus>,
) {
    let appended = store.appended();
    let log = StoreLog::new(store);
    let mut backoff = BACKOFF_MIN;
    loop {
        match net::send_log(&endpoint, hub.clone(), &log, &appended, &status).await {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(error) => tracing::info!(%error, retry_in = ?backoff, "hub session ended"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
