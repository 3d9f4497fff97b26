//! The node's journal: its log as a hash chain (each `events` row starts with the entry hash
//! of its event, `fusion_rules::journal`), a checkpoint signed by the node's key at every
//! commit that appended events, the keys it signed with, and what start-up verified.
//!
//! Opening a store verifies the journal from the last checkpoint the previous start verified
//! (so start-up stays fast at millions of events) and refuses a journal that fails, unless the
//! operator allows it. [`verify_all`] walks it from genesis for `fusion journal verify`;
//! [`export`] writes the auditor's JSON lines (`docs/JOURNAL.md`).

use std::io::Write;

use fusion_contracts::NodeId;
use fusion_contracts::journal::{ExportHeader, ExportLine};
use redb::{Database, ReadableDatabase, ReadableTable, Table};

use super::tables::{EVENTS, JOURNAL_KEYS, META, PEER_EVENTS, PEER_HEADS};
use super::{OpenError, StoreError};
use crate::domain::journal::{self, Checkpoint, Fault, Hash, JournalKey, Verifier};

/// `meta` key: the last seq a start verified (u64 LE), with a checkpoint at it.
const META_VERIFIED: &str = "journal_verified";

/// Bytes before the envelope in an `events` row without a signature: hash, tag.
const ROW_HEAD: usize = 33;
/// The tag byte after the hash: a checkpoint signature (64 bytes) follows, or not.
const TAG_PLAIN: u8 = 0;
const TAG_SIGNED: u8 = 1;

/// An `events` row: the entry hash, a tag, the node's checkpoint signature when the commit
/// ended at this event, then the postcard envelope. The signature lives in the row so that a
/// commit writes no other table for it.
pub(super) fn entry_value(hash: &Hash, signature: Option<&[u8; 64]>, envelope: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(ROW_HEAD + 64 + envelope.len());
    value.extend_from_slice(hash);
    match signature {
        Some(sig) => {
            value.push(TAG_SIGNED);
            value.extend_from_slice(sig);
        }
        None => value.push(TAG_PLAIN),
    }
    value.extend_from_slice(envelope);
    value
}

/// The row of `envelope` at `seq` after `prev`, built in one allocation, and its entry hash.
pub(super) fn new_row(
    prev: &Hash,
    origin: &NodeId,
    seq: u64,
    envelope: &fusion_contracts::Envelope,
) -> (Vec<u8>, Hash) {
    let mut row = vec![0u8; ROW_HEAD];
    row[32] = TAG_PLAIN;
    let mut row = postcard::to_extend(envelope, row).expect("encoding into a Vec cannot fail");
    let hash = journal::entry_hash(prev, origin, seq, &row[ROW_HEAD..]);
    row[..32].copy_from_slice(&hash);
    (row, hash)
}

fn corrupt(value: &[u8]) -> StoreError {
    StoreError::Corrupt {
        table: "events",
        reason: format!("a row of {} bytes holds no entry hash and tag", value.len()),
    }
}

/// An `events` row's hash and envelope.
pub(super) fn split_entry(value: &[u8]) -> Result<(Hash, &[u8]), StoreError> {
    let (hash, _, envelope) = split_row(value)?;
    Ok((hash, envelope))
}

/// The envelope an `events` row holds, decoded.
pub(super) fn envelope_of(value: &[u8]) -> Result<fusion_contracts::Envelope, StoreError> {
    let (_, bytes) = split_entry(value)?;
    fusion_contracts::Envelope::decode(bytes).map_err(|e| StoreError::Corrupt {
        table: "events",
        reason: e.to_string(),
    })
}

/// An `events` row's parts: the entry hash, the checkpoint signature if the row holds one,
/// the envelope.
pub(super) type Row<'a> = (Hash, Option<[u8; 64]>, &'a [u8]);

/// An `events` row's hash, checkpoint signature (if the row holds one) and envelope.
pub(super) fn split_row(value: &[u8]) -> Result<Row<'_>, StoreError> {
    let (hash, rest) = value
        .split_first_chunk::<32>()
        .ok_or_else(|| corrupt(value))?;
    match rest.split_first() {
        Some((&TAG_PLAIN, envelope)) => Ok((*hash, None, envelope)),
        Some((&TAG_SIGNED, rest)) => {
            let (sig, envelope) = rest
                .split_first_chunk::<64>()
                .ok_or_else(|| corrupt(value))?;
            Ok((*hash, Some(*sig), envelope))
        }
        _ => Err(corrupt(value)),
    }
}

/// The last seq of the log and its entry hash (`GENESIS` for an empty log).
pub(super) fn head(
    events: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<(u64, Hash), StoreError> {
    match events.last()? {
        Some((seq, value)) => Ok((seq.value(), split_entry(value.value())?.0)),
        None => Ok((0, journal::GENESIS)),
    }
}

/// Signs the journal's head after a batch appended events up to `seq` (in its transaction):
/// the signature goes into that event's row.
pub(super) fn sign_head(
    events: &mut Table<u64, &[u8]>,
    key: &JournalKey,
    origin: &NodeId,
    seq: u64,
) -> Result<(), StoreError> {
    let row = events
        .get(seq)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| {
            StoreError::Invariant(format!("signing seq {seq}, which the log does not hold"))
        })?;
    let (hash, _, envelope) = split_row(&row)?;
    let cp = key.sign(origin, seq, hash);
    events.insert(
        seq,
        entry_value(&hash, Some(&cp.signature), envelope).as_slice(),
    )?;
    Ok(())
}

/// The keys the journal was signed with: (first seq signed, public key), in order.
pub fn keys(db: &Database) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
    let read = db.begin_read()?;
    let table = read.open_table(JOURNAL_KEYS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (seq, key) = row?;
        let key = <[u8; 32]>::try_from(key.value()).map_err(|_| StoreError::Corrupt {
            table: "journal_keys",
            reason: "a key is not 32 bytes".into(),
        })?;
        out.push((seq.value(), key));
    }
    Ok(out)
}

/// What opening does to the journal, before the writer starts.
pub(super) fn open(
    db: &Database,
    node_id: &NodeId,
    key: &JournalKey,
    allow_damaged: bool,
    path: &std::path::Path,
) -> Result<(), OpenError> {
    record_key(db, key)?;
    let verified = read_verified(db)?;
    match verify_range(db, node_id, verified) {
        Ok(report) => {
            if report.signed > verified.0 {
                let txn = db.begin_write().map_err(StoreError::from)?;
                txn.open_table(META)
                    .map_err(StoreError::from)?
                    .insert(META_VERIFIED, report.signed.to_le_bytes().as_slice())
                    .map_err(StoreError::from)?;
                txn.commit().map_err(StoreError::from)?;
            }
            Ok(())
        }
        Err(JournalError::Fault(fault)) if allow_damaged => {
            tracing::error!(%fault, seq = fault.seq(), "the journal is damaged; serving it because --allow-damaged-journal is set");
            Ok(())
        }
        Err(JournalError::Fault(fault)) => Err(OpenError::DamagedJournal {
            path: path.to_path_buf(),
            fault,
        }),
        Err(JournalError::Store(e)) => Err(e.into()),
    }
}

/// Records the node's key as the journal's key from the next seq on, when it is not already.
/// A store restored on another machine gets a new identity: the journal goes on under it, and
/// the earlier seqs stay verifiable under the key that signed them.
fn record_key(db: &Database, key: &JournalKey) -> Result<(), StoreError> {
    let known = keys(db)?;
    let public = key.public();
    if known.last().is_some_and(|(_, k)| *k == public) {
        return Ok(());
    }
    let txn = db.begin_write()?;
    {
        let events = txn.open_table(EVENTS)?;
        let (seq, _) = head(&events)?;
        txn.open_table(JOURNAL_KEYS)?
            .insert(seq + 1, public.as_slice())?;
        if let Some((_, previous)) = known.last() {
            tracing::warn!(
                previous = journal::hex(previous),
                now = journal::hex(&public),
                from_seq = seq + 1,
                "this store's journal is signed by a new key from here on (restored on another machine?)"
            );
        }
    }
    txn.commit()?;
    Ok(())
}

fn read_verified(db: &Database) -> Result<(u64, Hash), StoreError> {
    let read = db.begin_read()?;
    let meta = read.open_table(META)?;
    let seq = match meta.get(META_VERIFIED)? {
        Some(v) => <[u8; 8]>::try_from(v.value())
            .map(u64::from_le_bytes)
            .map_err(|_| StoreError::Corrupt {
                table: "meta",
                reason: "journal_verified is not 8 bytes".into(),
            })?,
        None => 0,
    };
    if seq == 0 {
        return Ok((0, journal::GENESIS));
    }
    let events = read.open_table(EVENTS)?;
    let hash = match events.get(seq)? {
        Some(v) => split_entry(v.value())?.0,
        // The verified event is gone: verify from genesis.
        None => return Ok((0, journal::GENESIS)),
    };
    Ok((seq, hash))
}

/// What a verification walked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalReport {
    /// The first seq walked (1 from genesis).
    pub from: u64,
    /// The last seq walked.
    pub head: u64,
    /// The last seq a valid checkpoint vouches for.
    pub signed: u64,
    pub checkpoints: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Fault(Fault),
    #[error(transparent)]
    Store(#[from] StoreError),
}

macro_rules! journal_error_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for JournalError {
            fn from(e: $t) -> Self {
                JournalError::Store(StoreError::from(e))
            }
        }
    )*};
}
journal_error_from_redb!(redb::TransactionError, redb::TableError, redb::StorageError);

/// Walks the whole journal from genesis: every event's place, hash and authority, and every
/// checkpoint's signature; the head must be signed.
pub fn verify_all(db: &Database, node_id: &NodeId) -> Result<JournalReport, JournalError> {
    verify_range(db, node_id, (0, journal::GENESIS))
}

fn verify_range(
    db: &Database,
    node_id: &NodeId,
    (after, head): (u64, Hash),
) -> Result<JournalReport, JournalError> {
    let keys = keys(db)?;
    let read = db.begin_read()?;
    let events = read.open_table(EVENTS)?;
    let mut verifier = Verifier::resume(node_id.clone(), after, head);
    let mut report = JournalReport {
        from: after + 1,
        head: after,
        signed: after,
        checkpoints: 0,
    };
    for row in events.range(after + 1..)? {
        let (seq, value) = row?;
        let seq = seq.value();
        let (stored, signature, envelope) = split_row(value.value())?;
        verifier
            .event(seq, envelope, Some(&stored))
            .map_err(JournalError::Fault)?;
        report.head = seq;
        if let Some(signature) = signature {
            let cp = Checkpoint {
                seq,
                hash: stored,
                signature,
            };
            let public = journal::key_at(&keys, cp.seq).copied().unwrap_or([0; 32]);
            verifier
                .checkpoint(&cp, &public)
                .map_err(JournalError::Fault)?;
            report.checkpoints += 1;
        }
    }
    report.signed = verifier.signed();
    if report.signed < report.head {
        // The tail after the last checkpoint: every commit signs its head, so this is a
        // removed checkpoint or an event appended by something else than the writer.
        return Err(JournalError::Fault(Fault::BadCheckpoint {
            seq: report.head,
            verified: report.signed,
        }));
    }
    Ok(report)
}

/// Rewrites a format-version-1 log (envelopes without hashes) into a chained journal and signs
/// its head: the upgrade to version 2, in one transaction.
pub(super) fn upgrade_v1(
    db: &Database,
    node_id: &NodeId,
    key: &JournalKey,
) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let chained;
    {
        let mut events = txn.open_table(EVENTS)?;
        let mut prev = journal::GENESIS;
        let mut rows = Vec::new();
        for row in events.iter()? {
            let (seq, envelope) = row?;
            let seq = seq.value();
            let hash = journal::entry_hash(&prev, node_id, seq, envelope.value());
            rows.push((seq, entry_value(&hash, None, envelope.value())));
            prev = hash;
        }
        for (seq, value) in &rows {
            events.insert(*seq, value.as_slice())?;
        }
        chained = rows.len() as u64;
        if let Some((seq, _)) = rows.last() {
            sign_head(&mut events, key, node_id, *seq)?;
        }
        let mut keys = txn.open_table(JOURNAL_KEYS)?;
        keys.insert(1, key.public().as_slice())?;
        chain_peer_logs(&txn)?;
        super::tables::set_format_version(&txn, 2)?;
    }
    txn.commit()?;
    Ok(chained)
}

/// The head of every other origin's log this node holds, chained from its stored events
/// (postcard encodes a value one way only, so re-encoded events hash as their origin hashed
/// them).
fn chain_peer_logs(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let events = txn.open_table(PEER_EVENTS)?;
    let mut heads = txn.open_table(PEER_HEADS)?;
    let mut current: Option<(String, Hash)> = None;
    for row in events.iter()? {
        let (key, envelope) = row?;
        let (origin, seq) = key.value();
        let prev = match &current {
            Some((o, h)) if o == origin => *h,
            _ => journal::GENESIS,
        };
        let id = NodeId::new(origin).map_err(|e| StoreError::Corrupt {
            table: "peer_events",
            reason: e.to_string(),
        })?;
        let hash = journal::entry_hash(&prev, &id, seq, envelope.value());
        current = Some((origin.to_string(), hash));
        heads.insert(origin, &hash)?;
    }
    Ok(())
}

/// Writes events `from..=to` as JSON lines, after a header naming the origin and its keys;
/// the range is extended to the next checkpoint so that every line is covered by one.
/// Returns the last seq written.
pub fn export(
    db: &Database,
    node_id: &NodeId,
    from: u64,
    to: u64,
    out: &mut impl Write,
) -> Result<u64, StoreError> {
    let io = |e: std::io::Error| StoreError::Storage(format!("writing the export: {e}"));
    let from = from.max(1);
    let keys = keys(db)?;
    let read = db.begin_read()?;
    let events = read.open_table(EVENTS)?;
    let prev = match from {
        1 => journal::GENESIS,
        _ => match events.get(from - 1)? {
            Some(v) => split_entry(v.value())?.0,
            None => journal::GENESIS,
        },
    };
    let header = ExportHeader::new(node_id.as_str(), &keys, from, &prev);
    serde_json::to_writer(&mut *out, &header).map_err(|e| io(e.into()))?;
    out.write_all(b"\n").map_err(io)?;
    let mut prev = prev;
    let mut last = from - 1;
    for row in events.range(from..)? {
        let (seq, value) = row?;
        let seq = seq.value();
        let (hash, signature, envelope) = split_row(value.value())?;
        let signature = signature.as_ref().map(|s| s.as_slice());
        let line = ExportLine::new(seq, &prev, &hash, envelope, signature).map_err(|e| {
            StoreError::Corrupt {
                table: "events",
                reason: format!("seq {seq}: {e}"),
            }
        })?;
        serde_json::to_writer(&mut *out, &line).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
        prev = hash;
        last = seq;
        if seq >= to && signature.is_some() {
            break;
        }
    }
    Ok(last)
}

/// A journal that verified, whose, and under which keys.
#[derive(Clone, Debug)]
pub struct VerifiedJournal {
    pub origin: NodeId,
    /// (first seq signed, public key), in order.
    pub keys: Vec<(u64, [u8; 32])>,
    pub report: JournalReport,
}

/// A journal check of the store in `data_dir` (no process may have it open): from genesis.
pub fn verify_offline(data_dir: &std::path::Path) -> Result<VerifiedJournal, super::VerifyError> {
    let (db, origin) = super::backup::open_offline(data_dir)?;
    let keys = keys(&db)?;
    let report = verify_all(&db, &origin).map_err(|e| match e {
        JournalError::Fault(fault) => super::VerifyError::Journal(fault),
        JournalError::Store(e) => super::VerifyError::Store(e),
    })?;
    Ok(VerifiedJournal {
        origin,
        keys,
        report,
    })
}

/// [`export`] of the store in `data_dir` (no process may have it open).
pub fn export_offline(
    data_dir: &std::path::Path,
    from: u64,
    to: u64,
    out: &mut impl Write,
) -> Result<u64, super::VerifyError> {
    let (db, node_id) = super::backup::open_offline(data_dir)?;
    Ok(export(&db, &node_id, from, to, out)?)
}
