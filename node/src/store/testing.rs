//! Damage for tests (feature `testing`): what an attacker with the file, or a failing disk,
//! does to a stopped node's store. Never compiled into the binary.

use std::path::Path;

use redb::{Database, ReadableTable};

use super::DB_FILE;
use super::tables::{EVENTS, JOURNAL_KEYS, META, PEER_HEADS};

/// Flips the last byte of the envelope logged at `seq`, leaving its stored hash as it was.
pub fn flip_event_byte(data_dir: &Path, seq: u64) {
    rewrite_event(data_dir, seq, |hash, envelope| {
        *envelope.last_mut().expect("an envelope has bytes") ^= 1;
        let _ = hash;
    });
}

/// Flips the last byte of the envelope at `seq` and rewrites its hash and every later one, as
/// someone would who knows the hash chain but not the node's key.
pub fn rewrite_event_and_rechain(data_dir: &Path, seq: u64) {
    let db = Database::create(data_dir.join(DB_FILE)).expect("the store opens");
    let txn = db.begin_write().unwrap();
    {
        let mut events = txn.open_table(EVENTS).unwrap();
        let node = node_id(&txn);
        let mut prev = match seq {
            1 => fusion_rules::journal::GENESIS,
            _ => {
                super::journal::split_entry(events.get(seq - 1).unwrap().unwrap().value())
                    .unwrap()
                    .0
            }
        };
        type Row = (u64, Option<[u8; 64]>, Vec<u8>);
        let rows: Vec<Row> = events
            .range(seq..)
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                let (_, signature, envelope) = super::journal::split_row(v.value()).unwrap();
                (k.value(), signature, envelope.to_vec())
            })
            .collect();
        for (i, (at, signature, mut envelope)) in rows.into_iter().enumerate() {
            if i == 0 {
                *envelope.last_mut().unwrap() ^= 1;
            }
            prev = fusion_rules::journal::entry_hash(&prev, &node, at, &envelope);
            let row = super::journal::entry_value(&prev, signature.as_ref(), &envelope);
            events.insert(at, row.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

/// Rewrites the store as format version 1 wrote it: bare envelopes, no signatures or keys.
pub fn downgrade_to_v1(data_dir: &Path) {
    let db = Database::create(data_dir.join(DB_FILE)).expect("the store opens");
    let txn = db.begin_write().unwrap();
    {
        let mut events = txn.open_table(EVENTS).unwrap();
        let rows: Vec<(u64, Vec<u8>)> = events
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (
                    k.value(),
                    super::journal::split_entry(v.value()).unwrap().1.to_vec(),
                )
            })
            .collect();
        for (seq, envelope) in rows {
            events.insert(seq, envelope.as_slice()).unwrap();
        }
        txn.delete_table(JOURNAL_KEYS).unwrap();
        txn.delete_table(PEER_HEADS).unwrap();
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("format_version", 1u32.to_le_bytes().as_slice())
            .unwrap();
        meta.remove("journal_verified").unwrap();
    }
    txn.commit().unwrap();
}

fn node_id(txn: &redb::WriteTransaction) -> fusion_contracts::NodeId {
    let meta = txn.open_table(META).unwrap();
    let id = meta.get("node_id").unwrap().unwrap();
    fusion_contracts::NodeId::new(String::from_utf8(id.value().to_vec()).unwrap()).unwrap()
}

fn rewrite_event(data_dir: &Path, seq: u64, change: impl FnOnce(&mut [u8; 32], &mut Vec<u8>)) {
    let db = Database::create(data_dir.join(DB_FILE)).expect("the store opens");
    let txn = db.begin_write().unwrap();
    {
        let mut events = txn.open_table(EVENTS).unwrap();
        let value = events
            .get(seq)
            .unwrap()
            .expect("the event exists")
            .value()
            .to_vec();
        let (mut hash, signature, envelope) = super::journal::split_row(&value).unwrap();
        let mut envelope = envelope.to_vec();
        change(&mut hash, &mut envelope);
        let row = super::journal::entry_value(&hash, signature.as_ref(), &envelope);
        events.insert(seq, row.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}
