//! The node's side of sync. Its event log as the `LogSource` of `fusion_sync`; the store's
//! documents as a `DocHost`; the logs of the store's other tills as an `EventSink`; and the
//! tasks that keep sessions open — log and documents to the hub and to every configured till —
//! reconnecting with backoff; the hub's own log pulled from it; and the accept loop for tills
//! that dial this one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fusion_contracts::NodeId;
use fusion_rules::journal::Checkpoint;
use fusion_sync::docs::{Changed, DocId, DocSet};
use fusion_sync::net::{self, BoxFuture, DocHost, EndpointId, EventSink, SendStatus};
use fusion_sync::proto::{Batch, LogSource};

use crate::store::Store;

/// First pause after a failed session; doubles up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// How often the node looks for revoked peers to cut off.
const REVOCATION_CHECK: Duration = Duration::from_secs(1);
/// Longest pause between attempts while a peer is unreachable.
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

    fn checkpoint(&self, origin: &NodeId, seq: u64) -> Option<Checkpoint> {
        if origin != self.store.node_id() {
            return None;
        }
        self.store.checkpoint(seq).unwrap_or_else(|error| {
            tracing::error!(%error, "replication cannot read the journal");
            None
        })
    }
}

/// The store's documents, for document sessions.
pub struct NodeDocs {
    store: Store,
    /// The hub's endpoint: its sessions may create any number of documents.
    hub: Option<EndpointId>,
}

impl DocHost for NodeDocs {
    fn docs(&self) -> &std::sync::Mutex<DocSet> {
        self.store.docs()
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Changed> {
        self.store.doc_changes()
    }

    fn changed(&self, docs: Vec<DocId>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.store.merge_docs(docs).await.map_err(|e| e.to_string()) })
    }

    /// By the rulebook: every peer counts as of this till's store; a campaign's owner is the
    /// till whose journal, held here, created it (unreadable: only the hub, until it reads).
    fn may_change(&self, peer: EndpointId, doc: &DocId) -> bool {
        doc.may_be_changed_by(
            &peer.to_string(),
            self.hub == Some(peer),
            || self.store.store_id().cloned(),
            |campaign| {
                self.store
                    .read()
                    .and_then(|r| r.campaign_owner(campaign))
                    .ok()
                    .flatten()
            },
        )
    }

    fn is_hub(&self, peer: EndpointId) -> bool {
        self.hub == Some(peer)
    }

    fn refuse(&self, rule: &'static str) {
        self.store.count_refusal(rule);
    }
}

/// Where the logs of the store's other tills are held (see `Store::store_peer_events`).
pub struct PeerLogs {
    store: Store,
    /// The hub's endpoint: the only peer that may deliver the hub's own origins.
    hub: Option<EndpointId>,
}

impl EventSink for PeerLogs {
    fn positions(&self) -> std::collections::BTreeMap<NodeId, u64> {
        // Without positions a peer resends from the start: duplicates, ignored. Never wrong.
        self.store
            .read()
            .and_then(|r| r.peer_positions())
            .unwrap_or_default()
    }

    fn store(&self, peer: EndpointId, batch: Batch) -> BoxFuture<'_, Result<u64, String>> {
        let deliverer = crate::store::Deliverer {
            endpoint: peer.to_string(),
            key: *peer.as_bytes(),
            is_hub: self.hub == Some(peer),
        };
        Box::pin(async move {
            self.store
                .store_peer_events(deliverer, batch)
                .await
                .map_err(|e| e.to_string())?
        })
    }
}

/// Whom a node syncs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Hub,
    /// Another till of the same store.
    Till,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Hub => "hub",
            Role::Till => "till",
        }
    }
}

/// One peer the node syncs with, and how its sessions are doing.
pub struct PeerLink {
    pub role: Role,
    pub id: EndpointId,
    /// Its direct addresses.
    pub addrs: Vec<SocketAddr>,
    /// The session replicating this node's log to it.
    pub log: Arc<SendStatus>,
    /// The document session with it.
    pub docs: Arc<SendStatus>,
}

impl PeerLink {
    pub fn new(role: Role, id: EndpointId, addrs: Vec<SocketAddr>) -> Self {
        Self {
            role,
            id,
            addrs,
            log: Arc::default(),
            docs: Arc::default(),
        }
    }
}

/// The node's sync configuration and state, as `/sync/status` and the metrics report it.
pub struct SyncLinks {
    /// This node's sync identity.
    pub endpoint_id: EndpointId,
    pub peers: Vec<PeerLink>,
    /// A relay the operator runs for sites behind NAT: peers are dialled through it as well as
    /// at their direct addresses. `None`: direct addresses only.
    pub relay: Option<net::RelayUrl>,
}

/// Starts every sync task on `endpoint`: for each peer, a log session and a document session
/// (each reconnecting with backoff); and the accept loop, which admits only the configured
/// peers (tills replicate their logs here; the hub and tills sync documents).
pub fn start(store: &Store, endpoint: net::Endpoint, links: &Arc<SyncLinks>) -> SyncTasks {
    let mut tasks = Vec::new();
    let admitted: Vec<EndpointId> = links.peers.iter().map(|p| p.id).collect();
    let gate = {
        let store = store.clone();
        // Configured, and not revoked by the hub (asked again before every batch).
        net::Gate::new(move |peer| {
            admitted.contains(&peer) && !store.refuses_peer(&peer.to_string())
        })
    };
    // A revocation heard in the hub's log cuts the revoked peer's live connections within a
    // second, whether or not the hub is still reachable.
    tasks.push(tokio::spawn(cut_revoked(
        store.clone(),
        gate.clone(),
        links
            .peers
            .iter()
            .filter(|p| p.role == Role::Till)
            .map(|p| p.id)
            .collect(),
    )));
    let hub = links
        .peers
        .iter()
        .find(|p| p.role == Role::Hub)
        .map(|p| p.id);
    let docs = Arc::new(NodeDocs {
        store: store.clone(),
        hub,
    });
    let peer_logs = Arc::new(PeerLogs {
        store: store.clone(),
        hub,
    });
    tasks.push(tokio::spawn(net::serve(
        endpoint.clone(),
        peer_logs.clone(),
        Some(docs.clone() as Arc<dyn DocHost>),
        None,
        gate,
    )));
    for (i, peer) in links.peers.iter().enumerate() {
        let mut addr = net::peer_addrs(peer.id, &peer.addrs);
        if let Some(relay) = &links.relay {
            addr = addr.with_relay_url(relay.clone());
        }
        tasks.push(tokio::spawn(run(
            store.clone(),
            endpoint.clone(),
            addr.clone(),
            peer.log.clone(),
        )));
        if peer.role == Role::Hub {
            // The hub's own log (its transfers, reclaims and decisions), pulled over our own
            // connection: the hub need not know where this till is.
            let (endpoint, addr, sink) = (endpoint.clone(), addr.clone(), peer_logs.clone());
            tasks.push(tokio::spawn(async move {
                retry("the hub's log", || {
                    net::pull_log(&endpoint, addr.clone(), sink.as_ref())
                })
                .await
            }));
        }
        let (endpoint, docs, links) = (endpoint.clone(), docs.clone(), links.clone());
        tasks.push(tokio::spawn(async move {
            let peer = &links.peers[i];
            let label = match peer.role {
                Role::Hub => "documents with the hub",
                Role::Till => "documents with a till",
            };
            let id = peer.id.to_string();
            retry(label, || {
                unless_revoked(
                    &docs.store,
                    &id,
                    net::dial_docs(&endpoint, addr.clone(), docs.as_ref(), &peer.docs),
                )
            })
            .await
        }));
    }
    SyncTasks { endpoint, tasks }
}

/// The running sync tasks of a node; dropping this stops them.
pub struct SyncTasks {
    endpoint: net::Endpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SyncTasks {
    /// Closes every connection and stops every session (say, before the store shuts down).
    pub async fn stop(mut self) {
        self.endpoint.close().await;
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for SyncTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Replicates the node's log to `peer` for as long as the task runs, reporting into `status`.
pub async fn run(
    store: Store,
    endpoint: net::Endpoint,
    peer: net::EndpointAddr,
    status: Arc<SendStatus>,
) {
    let appended = store.appended();
    let id = peer.id.to_string();
    let log = StoreLog::new(store.clone());
    retry("log", || {
        unless_revoked(
            &store,
            &id,
            net::send_log(&endpoint, peer.clone(), &log, &appended, &status),
        )
    })
    .await
}

/// Whether the hub revoked `endpoint` (as this till heard in the hub's log).
fn revoked(store: &Store, endpoint: &str) -> bool {
    store.is_revoked(endpoint).unwrap_or(false)
}

/// Runs a session this node opened to `endpoint` until it ends, or until the hub has revoked
/// the peer: then the session (and its connection) is dropped within a second, and none is
/// opened again.
async fn unless_revoked(
    store: &Store,
    endpoint: &str,
    session: impl std::future::Future<Output = Result<(), net::NetError>>,
) -> Result<(), net::NetError> {
    let gone = || net::NetError::Protocol("the hub revoked this peer".into());
    if revoked(store, endpoint) {
        return Err(gone());
    }
    let watch = async {
        loop {
            tokio::time::sleep(REVOCATION_CHECK).await;
            if revoked(store, endpoint) {
                return;
            }
        }
    };
    tokio::select! {
        ended = session => ended,
        () = watch => {
            tracing::warn!(peer = endpoint, "closed a session with a peer the hub revoked");
            Err(gone())
        }
    }
}

/// Every second: cuts the connections of configured peers the hub has revoked.
async fn cut_revoked(store: Store, gate: Arc<net::Gate>, peers: Vec<EndpointId>) {
    let mut tick = tokio::time::interval(REVOCATION_CHECK);
    loop {
        tick.tick().await;
        let Ok(revoked) = store.read().and_then(|r| r.revoked_peers()) else {
            continue;
        };
        for peer in &peers {
            if revoked.contains_key(&peer.to_string()) && gate.cut(*peer) > 0 {
                tracing::warn!(%peer, "cut the connections of a peer the hub revoked");
            }
        }
    }
}

/// Runs `session` again and again, pausing with exponential backoff after failures.
async fn retry<F, Fut>(what: &str, mut session: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), net::NetError>>,
{
    let mut backoff = BACKOFF_MIN;
    loop {
        match session().await {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(error) => {
                tracing::info!(what, %error, retry_in = ?backoff, "sync session ended")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
