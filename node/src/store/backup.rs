//! Backups and checks of a store file.
//!
//! - [`Store::backup_to`]: a consistent copy of a serving store — every table as one read
//!   transaction (an MVCC snapshot) saw it — written to a new redb file; writers go on meanwhile.
//! - [`verify`]: checks a store that no process has open: the log is gapless and every envelope
//!   valid; replaying the log reproduces every table projected from it; every product row is
//!   its document's projection.

use std::path::{Path, PathBuf};

use fusion_contracts::{Envelope, Event};
use fusion_sync::docs::DocId;
use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, Value,
    WriteTransaction,
};

use super::exec;
use super::tables::Tables;
use super::tables::{self, *};
use super::{DB_FILE, OpenError, Store, StoreError, shared_state};

/// What a backup holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// The last event of the log in the copy: every command acknowledged before the backup
    /// began is at or before it.
    pub last_seq: u64,
    pub bytes: u64,
}

fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let source = from.open_table(table)?;
    let mut target = to.open_table(table)?;
    for entry in source.iter()? {
        let (k, v) = entry?;
        target.insert(k.value(), v.value())?;
    }
    Ok(())
}

/// Copies every table of the store. A table added to `tables.rs` must be added here and to
/// `ensure_tables` (the backup test compares table names).
fn copy_all(from: &ReadTransaction, to: &WriteTransaction) -> Result<(), StoreError> {
    copy(from, to, META)?;
    copy(from, to, PRODUCTS)?;
    copy(from, to, PRODUCT_SKUS)?;
    copy(from, to, PRODUCT_LIST)?;
    copy(from, to, STOCK)?;
    copy(from, to, RESERVATIONS)?;
    copy(from, to, ORDERS)?;
    copy(from, to, ORDER_LIST)?;
    copy(from, to, EVENTS)?;
    copy(from, to, JOURNAL_KEYS)?;
    copy(from, to, IDEMPOTENCY)?;
    copy(from, to, IDEMPOTENCY_EXPIRY)?;
    copy(from, to, TOKENS)?;
    copy(from, to, CAMPAIGNS)?;
    copy(from, to, CAMPAIGN_LIST)?;
    copy(from, to, PARTICIPANTS)?;
    copy(from, to, TIMERS)?;
    copy(from, to, PAYMENTS)?;
    copy(from, to, ORDER_PAYMENTS)?;
    copy(from, to, PAYMENT_FOLLOWUPS)?;
    copy(from, to, SHIPMENTS)?;
    copy(from, to, ORDER_SHIPMENTS)?;
    copy(from, to, TRACKING_NUMBERS)?;
    copy(from, to, ORDER_CORRELATIONS)?;
    copy(from, to, ORDER_HOLDS)?;
    copy(from, to, STORE_CREDIT)?;
    copy(from, to, DOCS)?;
    copy(from, to, DOC_HEADS)?;
    copy(from, to, PEER_EVENTS)?;
    copy(from, to, PEER_POSITIONS)?;
    copy(from, to, PEER_HEADS)?;
    copy(from, to, REVOKED_PEERS)?;
    copy(from, to, PEER_ORDERS)?;
    copy(from, to, TRANSFERS_OUT)?;
    copy(from, to, PEER_RECEIPTS)?;
    copy(from, to, PEER_STOCK)?;
    copy(from, to, PEER_ORIGIN_PEERS)?;
    copy(from, to, PEER_CAMPAIGNS)?;
    copy(from, to, ORDER_RETURNS)?;
    copy(from, to, REFUNDS_OWED)?;
    copy(from, to, RECEIPT_HEADS)?;
    copy(from, to, ORDER_RECEIPTS)?;
    copy(from, to, RECEIPT_ORDERS)?;
    copy(from, to, RECEIPT_PRINTS)?;
    copy(from, to, ORDER_STAFF)?;
    copy(from, to, RETURNS)?;
    copy(from, to, RECEIPT_SEQS)?;
    copy(from, to, DRAWERS)?;
    copy(from, to, SESSIONS)?;
    copy(from, to, CAMPAIGN_SEATS)?;
    copy(from, to, BACKORDERS)?;
    copy(from, to, OFFLINE_BUDGET)?;
    Ok(())
}

impl Store {
    /// Writes a consistent copy of the store to `dest` (a new file), without stopping writers:
    /// the copy is the snapshot of one read transaction. Blocking; run it off the async threads.
    pub fn backup_to(&self, dest: &Path) -> Result<BackupInfo, StoreError> {
        let snapshot = self.shared.db.begin_read()?;
        let last_seq = {
            let events = snapshot.open_table(EVENTS)?;
            events.last()?.map(|(k, _)| k.value()).unwrap_or(0)
        };
        let copy_db = Database::builder()
            .create(dest)
            .map_err(|e| StoreError::Storage(format!("creating {}: {e}", dest.display())))?;
        let txn = copy_db.begin_write()?;
        copy_all(&snapshot, &txn)?;
        txn.commit()?;
        drop(copy_db);
        let bytes = std::fs::metadata(dest)
            .map_err(|e| StoreError::Storage(e.to_string()))?
            .len();
        Ok(BackupInfo { last_seq, bytes })
    }
}

/// What [`verify`] checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub products: u64,
    pub documents: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no store at {0}")]
    Missing(PathBuf),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "store {path} has format version {found}, from before journals: start the node on it once (`fusion node serve`) to upgrade it"
    )]
    NeedsUpgrade { path: PathBuf, found: u32 },
    #[error("the journal is damaged at seq {}: {}", .0.seq(), .0)]
    Journal(crate::domain::journal::Fault),
    #[error("the log has a gap: seq {found} follows {previous}")]
    Gap { previous: u64, found: u64 },
    #[error("event {seq} is invalid: {reason}")]
    BadEvent { seq: u64, reason: String },
    #[error("table {table} differs from a replay of the log")]
    Projection { table: &'static str },
    #[error("product {id} differs from its document")]
    ProductDocument { id: String },
    #[error("document {id}: the heads stored beside it are not its chunks' heads")]
    DocumentHeads { id: String },
}

/// Documents a check holds in memory at once.
const VERIFY_CACHE_BYTES: usize = 8 * 1024 * 1024;

macro_rules! verify_error_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for VerifyError {
            fn from(e: $t) -> Self {
                VerifyError::Store(StoreError::from(e))
            }
        }
    )*};
}
verify_error_from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A table's rows as (key bytes, value bytes), in key order.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

fn rows<K: Key + 'static, V: Value + 'static>(
    read: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Rows, StoreError> {
    let table = read.open_table(table)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((
            K::as_bytes(&k.value()).as_ref().to_vec(),
            V::as_bytes(&v.value()).as_ref().to_vec(),
        ));
    }
    Ok(out)
}

/// The tables `exec::project` derives from the log alone (product rows are the documents').
fn projected(db: &Database) -> Result<Vec<(&'static str, Rows)>, StoreError> {
    let read = db.begin_read()?;
    Ok(vec![
        ("stock", rows(&read, STOCK)?),
        ("reservations", rows(&read, RESERVATIONS)?),
        ("orders", rows(&read, ORDERS)?),
        ("order_list", rows(&read, ORDER_LIST)?),
        ("campaigns", rows(&read, CAMPAIGNS)?),
        ("campaign_list", rows(&read, CAMPAIGN_LIST)?),
        ("participants", rows(&read, PARTICIPANTS)?),
        ("timers", rows(&read, TIMERS)?),
        ("payments", rows(&read, PAYMENTS)?),
        ("order_payments", rows(&read, ORDER_PAYMENTS)?),
        ("payment_followups", rows(&read, PAYMENT_FOLLOWUPS)?),
        ("shipments", rows(&read, SHIPMENTS)?),
        ("order_shipments", rows(&read, ORDER_SHIPMENTS)?),
        ("tracking_numbers", rows(&read, TRACKING_NUMBERS)?),
        ("order_correlations", rows(&read, ORDER_CORRELATIONS)?),
        ("order_holds", rows(&read, ORDER_HOLDS)?),
        ("store_credit", rows(&read, STORE_CREDIT)?),
        ("transfers_out", rows(&read, TRANSFERS_OUT)?),
        ("campaign_seats", rows(&read, CAMPAIGN_SEATS)?),
        ("backorders", rows(&read, BACKORDERS)?),
        ("offline_budget", rows(&read, OFFLINE_BUDGET)?),
        ("refunds_owed", rows(&read, REFUNDS_OWED)?),
    ])
}

/// Opens the store file in `data_dir` for a check, without creating or upgrading anything.
pub(super) fn open_offline(
    data_dir: &Path,
) -> Result<(Database, fusion_contracts::NodeId), VerifyError> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(VerifyError::Missing(path));
    }
    let db = Database::open(&path).map_err(|source| OpenError::Database {
        path: path.clone(),
        source,
    })?;
    let (node_id, found) = tables::init_or_check(&db, &path)?;
    if found != super::FORMAT_VERSION {
        return Err(VerifyError::NeedsUpgrade { path, found });
    }
    Ok((db, node_id))
}

/// Checks the store in `data_dir`, which no process may have open (stop the node, or verify a
/// backup).
pub fn verify(data_dir: &Path) -> Result<VerifyReport, VerifyError> {
    let (db, node_id) = open_offline(data_dir)?;
    let mut report = VerifyReport::default();
    // The journal first: chain, signatures, authority; it names the first bad seq.
    super::journal::verify_all(&db, &node_id).map_err(|e| match e {
        super::JournalError::Fault(fault) => VerifyError::Journal(fault),
        super::JournalError::Store(e) => VerifyError::Store(e),
    })?;

    // The log: 1, 2, 3, … and every envelope valid.
    let read = db.begin_read()?;
    let mut envelopes = Vec::new();
    for entry in read.open_table(EVENTS)?.iter()? {
        let (seq, value) = entry?;
        let seq = seq.value();
        let (_, bytes) = super::journal::split_entry(value.value())?;
        if seq != report.events + 1 {
            return Err(VerifyError::Gap {
                previous: report.events,
                found: seq,
            });
        }
        let envelope = Envelope::decode(bytes).map_err(|e| VerifyError::BadEvent {
            seq,
            reason: e.to_string(),
        })?;
        if envelope.seq != seq {
            return Err(VerifyError::BadEvent {
                seq,
                reason: format!("it says it is seq {}", envelope.seq),
            });
        }
        envelopes.push(envelope);
        report.events = seq;
    }

    // The log's projections: a replay into an empty store reproduces them.
    let replica = Database::builder()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .map_err(|e| StoreError::Storage(e.to_string()))?;
    tables::initialize(&replica)?;
    tables::ensure_tables(&replica)?;
    let txn = replica.begin_write()?;
    {
        let mut t = Tables::open(&txn)?;
        for envelope in &envelopes {
            // Product rows are the documents' (checked below): a product created at another
            // till has no `product.created` in this log.
            if matches!(
                envelope.event,
                Event::ProductCreated(_) | Event::ProductUpdated(_) | Event::ProductArchived(_)
            ) {
                continue;
            }
            exec::project(&mut t, envelope)?;
        }
    }
    txn.commit()?;
    for ((table, ours), (_, replayed)) in projected(&db)?.into_iter().zip(projected(&replica)?) {
        if ours != replayed {
            return Err(VerifyError::Projection { table });
        }
    }

    // Product rows: each is its document's projection, and each document has its row.
    // Documents are read one at a time (a small cache): a big catalog is checked in bounded
    // memory. Each document's stored heads are its chunks' heads.
    let db = std::sync::Arc::new(db);
    let mut docs = shared_state::open_docs(&db, node_id.as_str().as_bytes(), VERIFY_CACHE_BYTES)?;
    let products = read.open_table(PRODUCTS)?;
    let ids: Vec<DocId> = docs.ids().map_err(|e| {
        VerifyError::Store(StoreError::Corrupt {
            table: "doc_heads",
            reason: e.to_string(),
        })
    })?;
    for id in &ids {
        report.documents += 1;
        let stored_heads = docs.heads(id);
        let heads = docs.document_heads(id).map_err(|e| {
            VerifyError::Store(StoreError::Corrupt {
                table: "docs",
                reason: e.to_string(),
            })
        })?;
        if heads != Some(stored_heads) {
            return Err(VerifyError::DocumentHeads { id: id.to_string() });
        }
        let Some(product_id) = id.product_id() else {
            continue;
        };
        let from_doc = docs
            .get(id)
            .and_then(|d| fusion_sync::docs::read_product(d, product_id));
        let row = tables::get_product(&products, product_id)?.map(|s| s.product);
        if from_doc != row {
            return Err(VerifyError::ProductDocument {
                id: product_id.to_string(),
            });
        }
    }
    for entry in products.iter()? {
        let (id, _) = entry?;
        let id = fusion_contracts::ProductId::from_u128(id.value());
        if !docs.holds(&DocId::product(id)) {
            return Err(VerifyError::ProductDocument { id: id.to_string() });
        }
        report.products += 1;
    }
    Ok(report)
}
