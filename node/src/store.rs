//! The durable store: one redb file per data dir holding the domain state tables and the
//! append-only event log, written by one writer thread with group commit.
//!
//! - Writes: callers `write()` a command; the writer thread takes every queued command, applies
//!   them all in ONE write transaction (decide → append events → project them into the state
//!   tables), commits durably, and only then answers each caller. A command's answer is never
//!   sent before its commit, so nothing acknowledged is lost.
//! - Reads: `read()` opens a redb read transaction (an MVCC snapshot). Reads never wait for
//!   the writer.
//! - The event log is the outbox: events and the state they produce are in the same commit,
//!   numbered 1, 2, 3, … per origin with no gaps.
//!
//! This is the only module that imports redb. It never holds a transaction across `.await`.

mod backup;
pub mod drawer;
mod exec;
mod journal;
mod read;
mod receipts;
mod returns;
mod shared_state;
mod tables;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod upgrade;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use fusion_contracts::commands::{
    CampaignCommand, CatalogCommand, InventoryCommand, OrderCommand, PaymentCommand,
    ShipmentCommand,
};
use fusion_contracts::http::Role;
use fusion_contracts::http::SettingsChange;
use fusion_contracts::{CampaignId, CorrelationId, NodeId, Sku, StoreId, Timestamp, TokenId};
use fusion_sync::docs::{DocId, DocSet, StoreSettings};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::domain::{Campaign, Order, Payment, Product, RateTable, Rejected, Shipment, StockLevel};

pub use backup::{BackupInfo, VerifyError, VerifyReport, verify};
pub use journal::{
    JournalError, JournalReport, VerifiedJournal, export_offline as export_journal,
    verify_offline as verify_journal,
};
pub use read::{OutgoingTransfer, Reader};
pub use tables::PeerOrder;

/// Version of the table layout and record encodings. Opening a file of a version in
/// [`FORMAT_VERSIONS_UPGRADABLE`] upgrades it; any other version fails.
pub const FORMAT_VERSION: u32 = 3;
/// Versions opening upgrades: 1, before journals (the log's rows were bare envelopes), is
/// chained and signed (`store::journal::upgrade_v1`); 1 and 2, before orders and products
/// held what they sold for, have their order and product rows rebuilt
/// (`store::upgrade::upgrade_v2`).
pub const FORMAT_VERSIONS_UPGRADABLE: [u32; 2] = [1, 2];
/// The store's file name inside the data dir.
pub const DB_FILE: &str = "fusion.redb";
/// Commands waiting for the writer; beyond this, callers wait (backpressure), they are not refused.
const QUEUE_JOBS_MAX: usize = 16 * 1024;
/// Most commands applied in one transaction. Bounds the latency a batch adds to its first
/// command; at ~10 µs per command a full batch is tens of milliseconds of work.
const BATCH_JOBS_MAX: usize = 2048;
/// How long a stored `Idempotency-Key` answer is kept (24 h, as Stripe does).
pub const IDEMPOTENCY_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// Source of wall-clock time for the writer (tests pass a fixed clock).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    fusion_sync::clock::system_clock()
}

/// Who delivered a batch of a peer's events: its endpoint id, and whether it is the hub (the
/// only one that may deliver the hub's own origins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deliverer {
    pub endpoint: String,
    /// Its public key (the endpoint id's bytes): what its checkpoints must verify under.
    pub key: [u8; 32],
    pub is_hub: bool,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("creating data dir {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening store {path}")]
    Database {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("store {path} has format version {found}; this build reads only version {supported}")]
    UnknownFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path} is not a FusionCommerce Edge store: {reason}")]
    Foreign { path: PathBuf, reason: String },
    #[error(
        "the journal in {path} is damaged at seq {}: {fault}. `fusion journal verify` shows it; serve it anyway only with --allow-damaged-journal",
        fault.seq()
    )]
    DamagedJournal {
        path: PathBuf,
        fault: crate::domain::journal::Fault,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("starting the writer thread")]
    Spawn(#[source] std::io::Error),
}

/// A failure of the store itself (not of the request): answered as 500/503, never detailed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is shut down")]
    Closed,
    #[error("storage failure: {0}")]
    Storage(String),
    #[error("corrupt record in table {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("broken invariant: {0}")]
    Invariant(String),
}

macro_rules! storage_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.to_string())
            }
        }
    )*};
}
storage_error_from!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

/// A command and what it needs to be traced and made idempotent.
#[derive(Clone, Debug)]
pub struct WriteRequest {
    pub command: Command,
    /// Copied into every event the command causes.
    pub correlation_id: CorrelationId,
    /// The request's own id: the causation id of its first event.
    pub command_id: Uuid,
    pub idempotency: Option<Idempotency>,
}

/// An `Idempotency-Key` and a fingerprint of the request it first came with.
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: [u8; 32],
}

#[derive(Clone, Debug)]
pub enum Command {
    Catalog(CatalogCommand),
    Inventory(InventoryCommand),
    Order(OrderCommand),
    Campaign(CampaignCommand),
    Payment(PaymentCommand),
    Shipment(ShipmentCommand),
    IssueStoreCredit(fusion_contracts::commands::IssueStoreCredit),
    CreateToken {
        id: TokenId,
        role: Role,
        label: Option<String>,
        hash: [u8; 32],
    },
    RevokeToken(TokenId),
    /// Records this till's share of the store's offline card budget when it changed.
    SetOfflineBudget(fusion_contracts::Money),
    /// Gives part of this till's unused offline card budget to another till.
    TransferBudget {
        transfer_id: uuid::Uuid,
        to: fusion_contracts::NodeId,
        amount: fusion_contracts::Money,
    },
    /// This till's cash drawer.
    Session(fusion_contracts::commands::SessionCommand),
    /// Prints an order's receipt at this till (a reprint is a DUPLICATE).
    PrintReceipt {
        order_id: fusion_contracts::OrderId,
        staff: Option<fusion_contracts::StaffId>,
    },
    /// Takes in budget another till gave this one (the writer, with the events that brought it).
    ReceiveBudget {
        transfer_id: uuid::Uuid,
        from: fusion_contracts::NodeId,
        amount: fusion_contracts::Money,
    },
    /// Asks for an order's receipt by email (sent from the hub): `to` is checked.
    EmailReceipt {
        order_id: fusion_contracts::OrderId,
        to: String,
        staff: Option<fusion_contracts::StaffId>,
    },
    /// Prices an order as `PlaceOrder` would, against this till's catalog, stock and terms,
    /// and records nothing (the register's running total).
    QuoteOrder(fusion_contracts::commands::PlaceOrder),
}

/// What a command produced, as stored for idempotent replays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Product {
        product: Product,
        stock: StockLevel,
    },
    Stock {
        sku: Sku,
        level: StockLevel,
    },
    Order(Order),
    Campaign(Campaign),
    Payment(Payment),
    Shipment(Shipment),
    StoreCredit(crate::domain::payments::CreditAccount),
    Token(TokenInfo),
    TokenRevoked(TokenId),
    /// The share of the offline card budget now recorded.
    OfflineBudget(fusion_contracts::Money),
    /// A return taken (appended: idempotency records store the index).
    Return(Box<fusion_contracts::events::OrderReturned>),
    /// The order's return rights are (still) elsewhere: they were asked for.
    ReturnRightsAsked {
        holder: fusion_contracts::NodeId,
    },
    /// An exchange made.
    Exchange(Box<Exchanged>),
    /// A drawer session after a command on it.
    Session(Box<drawer::SessionRow>),
    /// A receipt printed.
    Printed(Box<fusion_contracts::events::ReceiptPrinted>),
    /// A receipt's email requested.
    Emailed(Box<fusion_contracts::events::ReceiptEmailed>),
    /// An order priced, not placed.
    Quoted(Box<Order>),
}

/// An exchange: the return, the new order, and its payment by what the return refunded
/// (none when the returned units paid nothing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exchanged {
    pub returned: fusion_contracts::events::OrderReturned,
    pub order: Order,
    pub payment: Option<Payment>,
}

/// The answer to one command: its outcome or why it was refused.
pub type Decision = Result<Outcome, Rejected>;

#[derive(Clone, Debug)]
pub struct Applied {
    pub decision: Decision,
    /// True when this is the stored answer of an earlier request with the same key.
    pub replayed: bool,
    /// True when the key was used before with a different request.
    pub key_reused: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: TokenId,
    pub role: Role,
    pub label: Option<String>,
    pub created_at: Timestamp,
}

/// What an authenticated token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub token_id: TokenId,
    pub role: Role,
}

#[derive(Clone)]
pub struct StoreOptions {
    pub clock: Clock,
    /// Prices labels (and picks the service) for shipments.
    pub shipping_rates: RateTable,
    /// How long an unpaid order holds its stock before it is cancelled; `None`: until paid.
    /// The store's shared settings override it (`orderHoldSecs`).
    pub order_hold: Option<std::time::Duration>,
    /// The store this node is a till of: its shared settings are `settings/<store id>`.
    pub store_id: Option<StoreId>,
    /// Serve a journal that fails verification at start (logged at every start).
    pub allow_damaged_journal: bool,
    /// Memory the loaded shared documents may take (least recently used evicted first).
    pub doc_cache_bytes: usize,
    /// Memory redb may keep of the store file's pages (its own default is 1 GiB, which a
    /// big catalog's initial sync filled; the kernel's page cache holds the file anyway).
    pub store_cache_bytes: usize,
}

/// A till's redb page cache when none is configured.
pub const STORE_CACHE_DEFAULT_BYTES: usize = 32 * 1024 * 1024;

/// Default payment hold: long enough for a customer to find their card or come back to the till,
/// short enough that abandoned orders do not block stock for the rest of the day.
pub const ORDER_HOLD_DEFAULT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            clock: system_clock(),
            shipping_rates: RateTable::standard(),
            order_hold: Some(ORDER_HOLD_DEFAULT),
            store_id: None,
            allow_damaged_journal: false,
            doc_cache_bytes: fusion_sync::docs::DEFAULT_CACHE_BYTES,
            store_cache_bytes: STORE_CACHE_DEFAULT_BYTES,
        }
    }
}

/// A handle to the open store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    queue: mpsc::Sender<writer::Msg>,
}

struct Shared {
    db: Arc<Database>,
    path: PathBuf,
    node_id: NodeId,
    clock: Clock,
    rates: Arc<RateTable>,
    order_hold_ms: Option<i64>,
    store_id: Option<StoreId>,
    /// Token hash → grant; a copy of the tokens table, updated by the writer after each commit.
    tokens: RwLock<HashMap<[u8; 32], Grant>>,
    writer_alive: AtomicBool,
    /// Woken after every commit that appended events (replication sessions wait on it).
    appended: Arc<tokio::sync::Notify>,
    /// The shared documents (catalog, campaigns, settings): their heads, and those used lately
    /// in memory; the writer persists their chunks.
    docs: Arc<Mutex<DocSet>>,
    /// Documents changed by a commit, for document sessions to push.
    doc_changes: tokio::sync::broadcast::Sender<fusion_sync::docs::Changed>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Peers' events refused by a rule (never folded), by rule.
    refusals: fusion_sync::Refusals,
    /// Signs the journal's head at every commit: the node's identity.
    journal_key: crate::domain::journal::JournalKey,
}

impl Store {
    /// Opens (or creates) the store in `data_dir` and starts its writer thread.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store, OpenError> {
        fusion_sync::files::private_dir(data_dir).map_err(|source| OpenError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(options.store_cache_bytes)
            .create(&path)
            .map_err(|source| OpenError::Database {
                path: path.clone(),
                source,
            })?;
        fusion_sync::files::private_file(&path).map_err(|source| OpenError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let (node_id, version) = tables::init_or_check(&db, &path)?;
        tables::ensure_tables(&db)?;
        let journal_key = journal_key(data_dir)?;
        if version == 1 {
            let chained = journal::upgrade_v1(&db, &node_id, &journal_key)?;
            tracing::info!(
                events = chained,
                from = version,
                to = 2,
                "upgraded the store: its log is now a signed journal"
            );
        }
        journal::open(
            &db,
            &node_id,
            &journal_key,
            options.allow_damaged_journal,
            &path,
        )?;
        if version < FORMAT_VERSION {
            let (orders, products) = upgrade::upgrade_v2(&db)?;
            tracing::info!(
                orders,
                products,
                to = FORMAT_VERSION,
                "upgraded the store: orders hold their lines as sold"
            );
        }
        shared_state::index_peer_campaigns(&db)?;
        let tokens = tables::load_grants(&db)?;
        let db = Arc::new(db);
        let docs =
            shared_state::open_docs(&db, node_id.as_str().as_bytes(), options.doc_cache_bytes)?;
        let (queue, rx) = mpsc::channel(QUEUE_JOBS_MAX);
        let shared = Arc::new(Shared {
            db,
            path,
            node_id,
            clock: options.clock,
            rates: Arc::new(options.shipping_rates),
            order_hold_ms: options.order_hold.map(|d| d.as_millis() as i64),
            store_id: options.store_id,
            tokens: RwLock::new(tokens),
            writer_alive: AtomicBool::new(true),
            appended: Arc::new(tokio::sync::Notify::new()),
            docs: Arc::new(Mutex::new(docs)),
            doc_changes: tokio::sync::broadcast::channel(DOC_ANNOUNCEMENTS).0,
            writer: Mutex::new(None),
            refusals: Default::default(),
            journal_key,
        });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("fusion-writer".into())
            .spawn(move || writer::run(&thread_shared, rx))
            .map_err(OpenError::Spawn)?;
        *shared.writer.lock().expect("writer handle lock") = Some(handle);
        Ok(Store { shared, queue })
    }

    pub fn node_id(&self) -> &NodeId {
        &self.shared.node_id
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Applies a command durably. Resolves only after the transaction holding it committed.
    pub async fn write(&self, request: WriteRequest) -> Result<Applied, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(writer::Msg::Write(writer::Job { request, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// A consistent snapshot for queries.
    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(self.shared.db.begin_read()?))
    }

    /// The grant of the token whose SHA-256 is `hash`, if it exists.
    pub fn authenticate(&self, hash: &[u8; 32]) -> Option<Grant> {
        self.shared
            .tokens
            .read()
            .expect("token cache lock")
            .get(hash)
            .copied()
    }

    /// The grant of the token `id`, while it is not revoked.
    pub fn authenticate_id(&self, id: TokenId) -> Option<Grant> {
        self.shared
            .tokens
            .read()
            .expect("token cache lock")
            .values()
            .find(|g| g.token_id == id)
            .copied()
    }

    /// Woken after every commit that appended events to the log.
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.shared.appended.clone()
    }

    /// The shared documents. Lock briefly; the writer persists what changes in them.
    pub fn docs(&self) -> &Mutex<DocSet> {
        &self.shared.docs
    }

    /// What the store's document set holds and has loaded.
    pub fn doc_stats(&self) -> fusion_sync::docs::DocStats {
        lock_docs(&self.shared.docs).stats()
    }

    /// The store this node is a till of, if configured.
    pub fn store_id(&self) -> Option<&StoreId> {
        self.shared.store_id.as_ref()
    }

    /// The store's shared settings (all unset when the node has no store id).
    pub fn settings(&self) -> StoreSettings {
        self.shared.settings()
    }

    /// Changes the store's shared settings; resolves once durable. They reach the store's
    /// other tills and the hub through document sessions.
    pub async fn update_settings(
        &self,
        change: &SettingsChange,
    ) -> Result<Result<StoreSettings, NoStoreId>, StoreError> {
        let Some(store_id) = &self.shared.store_id else {
            return Ok(Err(NoStoreId));
        };
        let doc = DocId::settings(store_id);
        lock_docs(&self.shared.docs)
            .edit(&doc, |d| fusion_sync::docs::write_settings(d, change))
            .map_err(|e| StoreError::Invariant(format!("writing {doc}: {e}")))?;
        self.merge_docs(vec![doc]).await?;
        Ok(Ok(self.settings()))
    }

    /// A campaign another till of the store (or of the fleet) owns, from its shared document.
    pub fn shared_campaign(&self, id: CampaignId) -> Option<fusion_sync::docs::CampaignDoc> {
        let mut docs = lock_docs(&self.shared.docs);
        fusion_sync::docs::read_campaign(docs.get(&DocId::campaign(id))?, id)
    }

    /// Announces every document a commit changed (local edits and peers' merges).
    pub fn doc_changes(&self) -> tokio::sync::broadcast::Receiver<fusion_sync::docs::Changed> {
        self.shared.doc_changes.subscribe()
    }

    /// Persists documents a peer's sync messages changed and projects them onto the tables.
    /// Resolves after the commit.
    pub async fn merge_docs(&self, docs: Vec<DocId>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(writer::Msg::Docs(writer::DocsJob { docs, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Holds events of another till of this store (or of the hub's own logs) durably, as
    /// `deliverer` delivered them; resolves after the commit with the origin's position, or why
    /// the batch was refused (a gap, or an origin or event the deliverer may not send: never
    /// stored; the events before it are).
    pub async fn store_peer_events(
        &self,
        deliverer: Deliverer,
        batch: fusion_sync::proto::Batch,
    ) -> Result<Result<u64, String>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(writer::Msg::Peer(writer::PeerJob {
                deliverer,
                batch,
                reply,
            }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Counts a peer's message refused by `rule` (`fusion_events_refused_total{rule}`).
    pub fn count_refusal(&self, rule: &'static str) {
        count_refused(&self.shared.refusals, rule);
        tracing::warn!(rule, "a peer's message refused");
    }

    /// Whether the hub revoked the peer `endpoint`, as this till heard in the hub's log.
    pub fn is_revoked(&self, endpoint: &str) -> Result<bool, StoreError> {
        self.read()?.is_revoked(endpoint)
    }

    /// Whether the hub revoked the peer `endpoint` (as this till heard in the hub's log); a
    /// revoked peer asking to connect is counted (`peer_revoked`). A store that cannot be
    /// read admits nobody.
    pub fn refuses_peer(&self, endpoint: &str) -> bool {
        let revoked = self.is_revoked(endpoint).unwrap_or(true);
        if revoked {
            count_refused(&self.shared.refusals, "peer_revoked");
        }
        revoked
    }

    /// This node's signature of its journal at `seq` (`None` past the head), for a batch
    /// that ends there.
    pub fn checkpoint(
        &self,
        seq: u64,
    ) -> Result<Option<crate::domain::journal::Checkpoint>, StoreError> {
        let Some(hash) = self.read()?.entry_hash(seq)? else {
            return Ok(None);
        };
        Ok(Some(self.shared.journal_key.sign(
            &self.shared.node_id,
            seq,
            hash,
        )))
    }

    /// Peers' events refused by a rule so far (held in their origin's log, never folded), by
    /// rule.
    pub fn refusals(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.shared.refusals.snapshot()
    }

    /// The writer's clock: what "now" is for commands (the scheduler asks it too).
    pub fn now(&self) -> Timestamp {
        (self.shared.clock)()
    }

    /// True when at least one token exists (a fresh store has none until the admin token).
    pub fn has_tokens(&self) -> bool {
        !self
            .shared
            .tokens
            .read()
            .expect("token cache lock")
            .is_empty()
    }

    /// True while the writer thread accepts commands.
    pub fn is_ready(&self) -> bool {
        self.shared.writer_alive.load(Ordering::Acquire) && !self.queue.is_closed()
    }

    /// Lets the writer finish every queued command, then stops it. Idempotent. Blocks until the
    /// writer exits, so call it from a blocking context (`spawn_blocking`), not from a task.
    pub fn shutdown(&self) {
        let handle = self
            .shared
            .writer
            .lock()
            .expect("writer handle lock")
            .take();
        if let Some(handle) = handle {
            // The writer drains what is queued before it exits; a full queue means it is busy,
            // so waiting for room is right.
            let _ = self.queue.blocking_send(writer::Msg::Shutdown);
            let _ = handle.join();
        }
    }
}

/// The held quantities of an order, for cancelling it.
pub(crate) fn held_lines(
    reservations: &[crate::domain::Reservation],
) -> Vec<fusion_contracts::events::StockLine> {
    reservations
        .iter()
        .filter(|r| r.state == crate::domain::inventory::ReservationState::Active)
        .map(|r| fusion_contracts::events::StockLine {
            sku: r.sku.clone(),
            quantity: r.quantity,
        })
        .collect()
}

/// Settings cannot be shared: the node was started without a store id.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("this node has no store id (start it with --store-id)")]
pub struct NoStoreId;

impl Shared {
    fn settings(&self) -> StoreSettings {
        let Some(store_id) = &self.store_id else {
            return StoreSettings::default();
        };
        let mut docs = lock_docs(&self.docs);
        docs.get(&DocId::settings(store_id))
            .map(fusion_sync::docs::read_settings)
            .unwrap_or_default()
    }

    /// How long an unpaid order holds its stock: the store's setting, else the node's flag.
    fn order_hold_ms(&self, settings: &StoreSettings) -> Option<i64> {
        match settings.order_hold_secs {
            Some(0) => None,
            Some(secs) => Some(secs.saturating_mul(1000).min(i64::MAX as u64) as i64),
            None => self.order_hold_ms,
        }
    }
}

/// Commits' document announcements a session may fall behind by before it rescans every
/// document.
const DOC_ANNOUNCEMENTS: usize = 1024;

fn lock_docs(docs: &Mutex<DocSet>) -> std::sync::MutexGuard<'_, DocSet> {
    // A panic while holding the lock leaves documents automerge kept consistent.
    docs.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the last sequence number of the log (0 when empty).
/// Counts a peer's batch, event or message refused by `rule`: in `refusals` (for
/// `/sync/status`) and in `fusion_events_refused_total{rule}`.
fn count_refused(refusals: &fusion_sync::Refusals, rule: &'static str) {
    refusals.count(rule);
    metrics::counter!("fusion_events_refused_total", "rule" => rule).increment(1);
}

/// The journal's signing key: the node's sync identity in `data_dir` (created on first use),
/// so that its public key is the endpoint id peers know it by.
fn journal_key(data_dir: &Path) -> Result<crate::domain::journal::JournalKey, OpenError> {
    let secret = fusion_sync::net::load_or_create_identity(data_dir)
        .map_err(|e| OpenError::Store(StoreError::Storage(e.to_string())))?;
    Ok(crate::domain::journal::JournalKey::from_secret(
        &secret.to_bytes(),
    ))
}

fn last_seq(events: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, StoreError> {
    Ok(events.last()?.map(|(k, _)| k.value()).unwrap_or(0))
}

#[cfg(test)]
mod tests;
