//! The iroh shell around the protocol core: identities, an endpoint that never phones home, and
//! one replication session per connection on a bi-stream (ALPN [`ALPN`]). The only module that
//! imports iroh.
//!
//! Sessions move bytes and time into `proto::Sender` / `proto::Receiver` and their frames out;
//! every decision is the core's.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fusion_contracts::NodeId;
use iroh::RelayMode;
use iroh::endpoint::{
    Connection, NetReportConfig, PortmapperConfig, QuicTransportConfig, RecvStream, SendStream,
    presets,
};
use tokio::sync::Notify;

use crate::docs::{Changed, DocId, DocSet};
use crate::frame::{self, Decoder, Frame};
use crate::proto::{Batch, LogSource, Received, Receiver, Sender};

/// The iroh types callers name (endpoints, addresses, keys), so that no other crate imports iroh.
pub use iroh::{Endpoint, EndpointAddr, EndpointId, RelayUrl, SecretKey};

mod doc_session;
use doc_session::doc_session;

/// Application protocol of event-log replication, version 1.
pub const ALPN: &[u8] = b"fusion/sync/1";
/// Application protocol of pulling the acceptor's log, version 1: the dialler receives (a till
/// pulls the hub's own log — its transfers, reclaims and decisions — over its own connection,
/// so the hub never needs to know where tills are).
pub const PULL_ALPN: &[u8] = b"fusion/pull/1";
/// Application protocol of document sync (automerge's sync protocol per document), version 1.
pub const DOCS_ALPN: &[u8] = b"fusion/docs/1";

/// A boxed future, for the host traits (which are used as trait objects).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
/// The identity file in a data dir: the 32 secret bytes of the ed25519 key.
pub const IDENTITY_FILE: &str = "identity.key";
/// How often a session looks at the log and the clock without being woken (retransmission).
const TICK: Duration = Duration::from_millis(100);
/// Bytes read from a stream at once.
const READ_CHUNK: usize = 64 * 1024;
/// How often an idle connection proves it is alive, and how long a silent one lasts: a peer
/// that died (a hub killed, a till unplugged) is seen as gone within `IDLE_TIMEOUT`, so a
/// status page says so while the cashier still looks at it (QUIC's own default is 30 s).
const KEEP_ALIVE: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(6);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("identity file {path}: {source}")]
    Identity {
        path: String,
        source: std::io::Error,
    },
    #[error("binding the endpoint: {0}")]
    Bind(String),
    #[error("connection: {0}")]
    Connection(String),
    #[error("peer broke the protocol: {0}")]
    Protocol(String),
    #[error("storing received events: {0}")]
    Store(String),
}

/// The key a node (or the hub) signs its journal with: its identity's, so that the journal's
/// public key is its endpoint id.
pub fn journal_key(secret: &SecretKey) -> fusion_rules::journal::JournalKey {
    fusion_rules::journal::JournalKey::from_secret(&secret.to_bytes())
}

/// The node's (or hub's) identity: created on first use, mode 0600, the same on every start.
pub fn load_or_create_identity(dir: &Path) -> Result<SecretKey, NetError> {
    let path = dir.join(IDENTITY_FILE);
    let error = |source| NetError::Identity {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| error(std::io::Error::other("not 32 bytes")))?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(error)?;
            file.write_all(&key.to_bytes()).map_err(error)?;
            file.sync_all().map_err(error)?;
            Ok(key)
        }
        Err(e) => Err(error(e)),
    }
}

/// An endpoint for LAN and loopback that never phones home: no relay, no DNS/pkarr address
/// lookup, no port mapping; peers are dialled by direct address.
pub async fn offline_endpoint(secret: SecretKey, bind: SocketAddr) -> Result<Endpoint, NetError> {
    sync_endpoint(secret, bind, None).await
}

/// Like [`offline_endpoint`], but also reachable through `relay` when one is given: a relay the
/// operator runs for sites behind NAT (never a public default). Address lookup stays off; peers
/// are dialled by their direct addresses and, with a relay, through it too.
pub async fn sync_endpoint(
    secret: SecretKey,
    bind: SocketAddr,
    relay: Option<RelayUrl>,
) -> Result<Endpoint, NetError> {
    let relay_mode = match relay {
        Some(url) => RelayMode::custom([url]),
        None => RelayMode::Disabled,
    };
    Endpoint::builder(presets::Minimal)
        .relay_mode(relay_mode)
        .clear_address_lookup()
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(NetReportConfig::minimal())
        .transport_config(liveness())
        .alpns(vec![ALPN.to_vec(), DOCS_ALPN.to_vec(), PULL_ALPN.to_vec()])
        .bind_addr(bind)
        .map_err(|e| NetError::Bind(e.to_string()))?
        .secret_key(secret)
        .bind()
        .await
        .map_err(|e| NetError::Bind(e.to_string()))
}

/// Keep-alives and the idle timeout, for the connection and each of its paths.
fn liveness() -> QuicTransportConfig {
    QuicTransportConfig::builder()
        .keep_alive_interval(KEEP_ALIVE)
        .default_path_keep_alive_interval(KEEP_ALIVE)
        .default_path_max_idle_timeout(IDLE_TIMEOUT)
        .max_idle_timeout(Some(
            IDLE_TIMEOUT
                .try_into()
                .expect("a few seconds fit QUIC's idle timeout"),
        ))
        .build()
}

/// Where a peer is: its id and a direct socket address.
pub fn peer_addr(id: EndpointId, addr: SocketAddr) -> EndpointAddr {
    peer_addrs(id, &[addr])
}

/// Where a peer is: its id and every direct address it may be reached at (say, LAN and WAN).
pub fn peer_addrs(id: EndpointId, addrs: &[SocketAddr]) -> EndpointAddr {
    addrs
        .iter()
        .fold(EndpointAddr::new(id), |peer, addr| peer.with_ip_addr(*addr))
}

/// Connects to `peer` with `alpn` and opens the session's bi-stream.
async fn dial(
    endpoint: &Endpoint,
    peer: EndpointAddr,
    alpn: &[u8],
) -> Result<(Connection, SendStream, RecvStream), NetError> {
    let connection = endpoint
        .connect(peer, alpn)
        .await
        .map_err(|e| NetError::Connection(e.to_string()))?;
    let (send, recv) = connection
        .open_bi()
        .await
        .map_err(|e| NetError::Connection(e.to_string()))?;
    Ok((connection, send, recv))
}

async fn write_frames(send: &mut SendStream, frames: &[Frame]) -> Result<(), NetError> {
    for f in frames {
        send.write_all(&frame::encode(f))
            .await
            .map_err(|e| NetError::Connection(e.to_string()))?;
    }
    Ok(())
}

/// Reads what arrived; `Ok(None)` when the peer finished the stream.
async fn read_chunk(recv: &mut RecvStream, buffer: &mut [u8]) -> Result<Option<usize>, NetError> {
    recv.read(buffer)
        .await
        .map_err(|e| NetError::Connection(e.to_string()))
}

/// What the sending side of a session knows, for `/sync/status` and metrics: kept up to date by
/// `send_log` across reconnects.
#[derive(Default)]
pub struct SendStatus {
    report: std::sync::Mutex<SendReport>,
}

/// A snapshot of [`SendStatus`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendReport {
    /// A session is open and the peer has answered in it.
    pub connected: bool,
    /// When the peer last sent anything (Unix ms).
    pub last_contact_ms: Option<i64>,
    /// The peer's durable position per origin, as last acknowledged. What is pending is the
    /// log's heads minus these (the host reads its heads when it asks, not every step).
    pub acked: BTreeMap<NodeId, u64>,
}

impl SendStatus {
    pub fn report(&self) -> SendReport {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SendReport> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks the session disconnected however `send_log` returns.
struct Disconnected<'a>(&'a SendStatus);

impl Drop for Disconnected<'_> {
    fn drop(&mut self) {
        self.0.lock().connected = false;
    }
}

/// Replicates `log` to the peer at `peer` until the connection ends. `appended` wakes the
/// session when the log grows; `status` reports its progress. Returns when the peer closes;
/// call again to reconnect.
pub async fn send_log<L: LogSource + Send + Sync>(
    endpoint: &Endpoint,
    peer: EndpointAddr,
    log: &L,
    appended: &Notify,
    status: &SendStatus,
) -> Result<(), NetError> {
    let _disconnected = Disconnected(status);
    let (_connection, send, recv) = dial(endpoint, peer, ALPN).await?;
    run_sender(send, recv, log, appended, status).await
}

/// The sending side of a log session on an open bi-stream, until the peer finishes it.
async fn run_sender<L: LogSource + Send + Sync>(
    mut send: SendStream,
    mut recv: RecvStream,
    log: &L,
    appended: &Notify,
    status: &SendStatus,
) -> Result<(), NetError> {
    let mut sender = Sender::new();
    // Streams are lazy: the receiver sees this one only once we write; ask for `Resume` at once.
    write_frames(&mut send, &[Frame::ResumeRequest]).await?;
    let mut decoder = Decoder::default();
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut resume_checked = false;
    loop {
        tokio::select! {
            read = read_chunk(&mut recv, &mut buffer) => {
                let Some(n) = read? else { return Ok(()) };
                decoder.push(&buffer[..n]);
                while let Some(frame) = decoder.next_frame().map_err(|e| NetError::Protocol(e.to_string()))? {
                    sender.on_frame(frame, crate::clock::now()).map_err(|e| NetError::Protocol(e.to_string()))?;
                }
                if !resume_checked && !sender.acked().is_empty() {
                    check_resume(&sender.acked(), log)?;
                    resume_checked = true;
                }
                let mut report = status.lock();
                report.connected = true;
                report.last_contact_ms = Some(crate::clock::now().unix_ms());
                report.acked = sender.acked();
            }
            _ = appended.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
        let frames = sender.poll_transmit(log, crate::clock::now());
        write_frames(&mut send, &frames).await?;
    }
}

/// The peer's positions come from its `Resume`: one beyond this log's head means the peer holds
/// events this store does not — it was restored from an older backup, or its file was replaced.
/// Sending on would reuse those seq numbers for new events, which the peer would drop as
/// duplicates; stop loudly instead.
fn check_resume<L: LogSource>(acked: &BTreeMap<NodeId, u64>, log: &L) -> Result<(), NetError> {
    for (origin, head) in log.heads() {
        if let Some(held) = acked.get(&origin).filter(|held| **held > head) {
            tracing::error!(%origin, held, head, "the peer holds more of this log than this store does");
            return Err(NetError::Protocol(format!(
                "the peer holds {held} events of {origin} but this log ends at {head}: this store \
                 was restored from an older backup or replaced; it must not sync under this origin"
            )));
        }
    }
    Ok(())
}

/// What a receiving host does with replicated events.
pub trait EventSink: Send + Sync {
    /// The durable position of every origin it holds.
    fn positions(&self) -> BTreeMap<NodeId, u64>;
    /// Stores a batch durably once its chain and checkpoint verify against the key `origin`
    /// is bound to (ignoring events it already holds, by origin and seq); returns the durable
    /// position of `batch.origin` afterwards. `peer` is the authenticated sender.
    fn store(&self, peer: EndpointId, batch: Batch) -> BoxFuture<'_, Result<u64, String>>;
}

/// Who may replicate to this host, asked from the TLS-authenticated peer id before any data is
/// exchanged and again before every batch is stored; and the live connections, so that a
/// revocation cuts them at once ([`Gate::cut`]).
pub struct Gate {
    admits: Box<dyn Fn(EndpointId) -> bool + Send + Sync>,
    live: std::sync::Mutex<BTreeMap<EndpointId, Vec<Connection>>>,
    /// When each peer last sent anything (Unix ms), for status pages.
    contacts: std::sync::Mutex<BTreeMap<EndpointId, i64>>,
}

impl Gate {
    pub fn new(admits: impl Fn(EndpointId) -> bool + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            admits: Box::new(admits),
            live: std::sync::Mutex::default(),
            contacts: std::sync::Mutex::default(),
        })
    }

    pub fn admits(&self, peer: EndpointId) -> bool {
        (self.admits)(peer)
    }

    /// Closes every live connection of `peer`; returns how many there were. Call it after the
    /// peer stopped being admitted, so that it cannot come straight back.
    pub fn cut(&self, peer: EndpointId) -> usize {
        let connections = self.lock().remove(&peer).unwrap_or_default();
        for connection in &connections {
            connection.close(2u32.into(), b"revoked");
        }
        connections.len()
    }

    /// When `peer` last sent anything (Unix ms), since this process started.
    pub fn last_contact_ms(&self, peer: EndpointId) -> Option<i64> {
        let contacts = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
        contacts.get(&peer).copied()
    }

    fn touch(&self, peer: EndpointId) {
        let mut contacts = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
        contacts.insert(peer, crate::clock::now().unix_ms());
    }

    /// Peers with a live connection.
    pub fn connected(&self) -> Vec<EndpointId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<EndpointId, Vec<Connection>>> {
        // A panic while holding the lock leaves a map of handles, still consistent.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, peer: EndpointId, connection: &Connection) {
        self.lock()
            .entry(peer)
            .or_default()
            .push(connection.clone());
    }

    fn forget(&self, peer: EndpointId, connection: &Connection) {
        let mut live = self.lock();
        if let Some(list) = live.get_mut(&peer) {
            list.retain(|c| c.stable_id() != connection.stable_id());
            if list.is_empty() {
                live.remove(&peer);
            }
        }
    }
}

/// What a host lets its peers pull ([`PULL_ALPN`]): its own log, or part of it, per peer.
pub trait LogServer: Send + Sync {
    /// The log `peer` may pull; `None` refuses the session.
    fn log_for(&self, peer: EndpointId) -> Option<Box<dyn LogSource + Send + Sync>>;
    /// Woken when the log grows.
    fn appended(&self) -> Arc<Notify>;
}

/// Accepts replication connections (event logs into `sink`, documents into `docs`, pulls of
/// `logs`) until the endpoint closes, each peer checked by `gate`.
pub async fn serve<S: EventSink + 'static>(
    endpoint: Endpoint,
    sink: Arc<S>,
    docs: Option<Arc<dyn DocHost>>,
    logs: Option<Arc<dyn LogServer>>,
    gate: Arc<Gate>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let (sink, docs, logs, gate) = (sink.clone(), docs.clone(), logs.clone(), gate.clone());
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            let peer = connection.remote_id();
            // Registered before the check: a revocation that lands in between still cuts it.
            gate.register(peer, &connection);
            if !gate.admits(peer) {
                tracing::warn!(%peer, "refused a sync connection from a peer that is not enrolled");
                connection.close(1u32.into(), b"not enrolled");
            } else {
                let result = match (connection.alpn(), docs) {
                    (DOCS_ALPN, Some(docs)) => match connection.accept_bi().await {
                        Ok((send, recv)) => {
                            doc_session(&connection, send, recv, docs.as_ref(), &gate).await
                        }
                        Err(e) => Err(NetError::Connection(e.to_string())),
                    },
                    (ALPN, _) => receive(&connection, sink.as_ref(), &gate).await,
                    (PULL_ALPN, _) => match logs {
                        Some(logs) => serve_pull(&connection, logs.as_ref()).await,
                        None => {
                            connection.close(3u32.into(), b"no log to pull");
                            Err(NetError::Protocol("no log to pull here".into()))
                        }
                    },
                    _ => {
                        connection.close(3u32.into(), b"unsupported protocol");
                        Err(NetError::Protocol("unsupported protocol".into()))
                    }
                };
                if let Err(error) = result {
                    tracing::info!(%peer, %error, "sync session ended");
                }
            }
            gate.forget(peer, &connection);
        });
    }
}

/// Sends the log `logs` serves to the dialler.
async fn serve_pull(connection: &Connection, logs: &dyn LogServer) -> Result<(), NetError> {
    let Some(log) = logs.log_for(connection.remote_id()) else {
        connection.close(3u32.into(), b"no log for this peer");
        return Err(NetError::Protocol("no log for this peer".into()));
    };
    let (send, recv) = connection
        .accept_bi()
        .await
        .map_err(|e| NetError::Connection(e.to_string()))?;
    let appended = logs.appended();
    run_sender(send, recv, &log, &appended, &SendStatus::default()).await
}

/// Pulls `peer`'s log into `sink` until the connection ends ([`PULL_ALPN`]); call again to
/// reconnect. The peer is the one dialled, so it is trusted as such.
pub async fn pull_log<S: EventSink>(
    endpoint: &Endpoint,
    peer: EndpointAddr,
    sink: &S,
) -> Result<(), NetError> {
    let (connection, send, recv) = dial(endpoint, peer, PULL_ALPN).await?;
    run_receiver(&connection, send, recv, sink, &Gate::new(|_| true)).await
}

async fn receive<S: EventSink>(
    connection: &Connection,
    sink: &S,
    gate: &Gate,
) -> Result<(), NetError> {
    let (send, recv) = connection
        .accept_bi()
        .await
        .map_err(|e| NetError::Connection(e.to_string()))?;
    run_receiver(connection, send, recv, sink, gate).await
}

/// The receiving side of a log session on an open bi-stream, until the peer finishes it.
async fn run_receiver<S: EventSink>(
    connection: &Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    sink: &S,
    gate: &Gate,
) -> Result<(), NetError> {
    let mut receiver = Receiver::new(sink.positions());
    write_frames(&mut send, &[receiver.on_connect()]).await?;
    let mut decoder = Decoder::default();
    let mut buffer = vec![0u8; READ_CHUNK];
    while let Some(n) = read_chunk(&mut recv, &mut buffer).await? {
        gate.touch(connection.remote_id());
        decoder.push(&buffer[..n]);
        while let Some(frame) = decoder
            .next_frame()
            .map_err(|e| NetError::Protocol(e.to_string()))?
        {
            match receiver
                .on_frame(frame)
                .map_err(|e| NetError::Protocol(e.to_string()))?
            {
                Received::Nothing => {}
                Received::Reply(reply) => write_frames(&mut send, &[reply]).await?,
                Received::Persist(batch) => {
                    if !gate.admits(connection.remote_id()) {
                        connection.close(2u32.into(), b"revoked");
                        return Err(NetError::Protocol("peer is no longer enrolled".into()));
                    }
                    let origin = batch.origin.clone();
                    let upto = sink
                        .store(connection.remote_id(), batch)
                        .await
                        .map_err(NetError::Store)?;
                    write_frames(&mut send, &[receiver.persisted(origin, upto)]).await?;
                }
            }
        }
    }
    Ok(())
}

/// What a host does with shared documents in sessions.
pub trait DocHost: Send + Sync {
    /// The host's documents.
    fn docs(&self) -> &std::sync::Mutex<DocSet>;
    /// Documents that changed, locally or from any peer, one announcement per commit: every
    /// session pushes them.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Changed>;
    /// A peer's messages changed these documents: persist them, update what is projected from
    /// them, and announce them to the other sessions.
    fn changed(&self, docs: Vec<DocId>) -> BoxFuture<'_, Result<(), String>>;
    /// Whether `peer` may change `doc` (by `fusion_rules::authority::may_change_doc`). A
    /// document it may not change is synced read-only from it: its changes are never
    /// applied, and changes it sends anyway are counted (`doc_unauthorized`).
    fn may_change(&self, peer: EndpointId, doc: &DocId) -> bool;
    /// Whether `peer` is the hub (trusted to create any number of documents), else a till,
    /// which may create at most [`DOCS_CREATED_PER_SESSION_MAX`] in one session.
    fn is_hub(&self, peer: EndpointId) -> bool;
    /// Counts a refused document message by rule.
    fn refuse(&self, rule: &'static str);
}

/// Most documents a till's session may create here: the biggest catalog a till is built for
/// (1,000,000 products, issue 20), and no flood of made-up ids beyond.
pub const DOCS_CREATED_PER_SESSION_MAX: usize = 1_000_000;

/// How often a session looks again at documents it syncs read-only from its peer.
const READ_ONLY_RECHECK: Duration = Duration::from_secs(1);

/// Dials `peer` and keeps its documents and ours in sync until the connection ends.
pub async fn dial_docs(
    endpoint: &Endpoint,
    peer: EndpointAddr,
    host: &dyn DocHost,
    status: &SendStatus,
) -> Result<(), NetError> {
    let _disconnected = Disconnected(status);
    let (connection, send, recv) = dial(endpoint, peer, DOCS_ALPN).await?;
    {
        let mut report = status.lock();
        report.connected = true;
        report.last_contact_ms = Some(crate::clock::now().unix_ms());
    }
    let gate = Gate::new(|_| true);
    doc_session(&connection, send, recv, host, &gate).await
}

/// Opens a document session with `peer`, writes `frames` as they are, and reads what the peer
/// answers for `linger`: a peer that does not follow the protocol (hostile-peer tests). Returns
/// the frames the peer sent.
pub async fn send_doc_frames(
    endpoint: &Endpoint,
    peer: EndpointAddr,
    frames: &[Frame],
    linger: Duration,
) -> Result<Vec<Frame>, NetError> {
    let (connection, mut send, mut recv) = dial(endpoint, peer, DOCS_ALPN).await?;
    write_frames(&mut send, frames).await?;
    let mut decoder = Decoder::default();
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut answers = Vec::new();
    let deadline = tokio::time::Instant::now() + linger;
    while let Ok(read) = tokio::time::timeout_at(deadline, read_chunk(&mut recv, &mut buffer)).await
    {
        let Some(n) = read? else { break };
        decoder.push(&buffer[..n]);
        while let Some(frame) = decoder
            .next_frame()
            .map_err(|e| NetError::Protocol(e.to_string()))?
        {
            answers.push(frame);
        }
    }
    connection.close(0u32.into(), b"done");
    Ok(answers)
}
