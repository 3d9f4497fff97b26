//! Journals at the hub: the head (entry hash) of every origin's log it holds, so that a till's
//! next batch is stored only if it chains from it to the till's signature; the entry hash of
//! each of the hub's own events, so that it signs any batch of them it sends; and the latest
//! verified checkpoint of each till (how far its journal is proven).

use fusion_contracts::NodeId;
use fusion_contracts::journal::{ExportHeader, ExportLine};
use fusion_rules::authority::{self, OriginKind};
use fusion_rules::journal::{self, Checkpoint, Hash};
use redb::{ReadableDatabase, ReadableTable};

use super::tables::*;
use super::{HubStore, HubStoreError, storage};

/// `meta` key: 1 once the heads of logs stored before journals were computed.
const META_JOURNAL: &str = "journal";

/// The head of `origin`'s log as held (`GENESIS` before its first event).
pub(super) fn head(
    heads: &impl ReadableTable<&'static str, &'static [u8; 32]>,
    origin: &str,
) -> Result<Hash, HubStoreError> {
    Ok(heads
        .get(origin)
        .map_err(storage)?
        .map_or(journal::GENESIS, |h| *h.value()))
}

/// Chains the logs a hub stored before journals existed (once; the hub's own origins get
/// each event's hash, every origin its head). Postcard encodes a value one way only, so the
/// stored events hash as their origins hashed them.
pub(super) fn chain_stored_logs(txn: &redb::WriteTransaction) -> Result<(), HubStoreError> {
    let mut meta = txn.open_table(META).map_err(storage)?;
    if meta.get(META_JOURNAL).map_err(storage)?.is_some() {
        return Ok(());
    }
    let events = txn.open_table(FLEET_EVENTS).map_err(storage)?;
    let mut heads = txn.open_table(JOURNAL_HEADS).map_err(storage)?;
    let mut own = txn.open_table(OWN_HASHES).map_err(storage)?;
    let mut current: Option<(String, Hash)> = None;
    for row in events.iter().map_err(storage)? {
        let (key, envelope) = row.map_err(storage)?;
        let (origin, seq) = key.value();
        let prev = match &current {
            Some((o, h)) if o == origin => *h,
            _ => journal::GENESIS,
        };
        let id = NodeId::new(origin).map_err(storage)?;
        let hash = journal::entry_hash(&prev, &id, seq, envelope.value());
        if authority::kind_of(&id) != OriginKind::Till {
            own.insert((origin, seq), &hash).map_err(storage)?;
        }
        heads.insert(origin, &hash).map_err(storage)?;
        current = Some((origin.to_string(), hash));
    }
    meta.insert(META_JOURNAL, 1).map_err(storage)?;
    Ok(())
}

impl HubStore {
    /// The hub's signature of its own `origin`'s journal at `seq` (`None` for another origin or
    /// past the head), for a batch a till pulls.
    pub fn checkpoint(
        &self,
        origin: &NodeId,
        seq: u64,
    ) -> Result<Option<Checkpoint>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let hashes = read.open_table(OWN_HASHES).map_err(storage)?;
        let Some(hash) = hashes.get((origin.as_str(), seq)).map_err(storage)? else {
            return Ok(None);
        };
        Ok(Some(self.journal_key.sign(origin, seq, *hash.value())))
    }

    /// The last checkpoint of `origin` (a till) the hub verified: every event up to its seq is
    /// proven to be the till's.
    pub fn verified_checkpoint(
        &self,
        origin: &NodeId,
    ) -> Result<Option<Checkpoint>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(TILL_CHECKPOINTS).map_err(storage)?;
        match table.get(origin.as_str()).map_err(storage)? {
            Some(v) => Ok(Some(postcard::from_bytes(v.value()).map_err(storage)?)),
            None => Ok(None),
        }
    }
}

impl HubStore {
    /// An auditor's export (`docs/JOURNAL.md`) of `origin`'s journal as the hub holds it, from
    /// `from`: a till's up to the last checkpoint of it the hub verified (what its signature
    /// proves), the hub's own origins up to `to` (or their head), signed now. JSON lines;
    /// `None` when the hub holds nothing of `origin` it can prove.
    pub fn export_journal(
        &self,
        origin: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<Option<Vec<u8>>, HubStoreError> {
        let from = from.max(1);
        let read = self.db.begin_read().map_err(storage)?;
        let events = read.open_table(FLEET_EVENTS).map_err(storage)?;
        let position = read
            .open_table(POSITIONS)
            .map_err(storage)?
            .get(origin.as_str())
            .map_err(storage)?
            .map_or(0, |v| v.value());
        let (key, last, signature) = if authority::kind_of(origin) == OriginKind::Till {
            let Some(cp) = self.verified_checkpoint(origin)? else {
                return Ok(None);
            };
            let peers = read.open_table(ORIGIN_PEERS).map_err(storage)?;
            let Some(endpoint) = peers.get(origin.as_str()).map_err(storage)? else {
                return Ok(None);
            };
            let key = fusion_contracts::journal::unhex(endpoint.value())
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or_else(|| storage("origin_peers holds an endpoint that is not a key"))?;
            (key, cp.seq, Some(cp))
        } else {
            (self.journal_key.public(), to.min(position), None)
        };
        if last == 0 || from > last {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut prev = journal::GENESIS;
        let mut header_written = false;
        for row in events
            .range((origin.as_str(), 1)..=(origin.as_str(), last))
            .map_err(storage)?
        {
            let (k, envelope) = row.map_err(storage)?;
            let seq = k.value().1;
            let hash = journal::entry_hash(&prev, origin, seq, envelope.value());
            if seq == from && !header_written {
                let header = ExportHeader::new(origin.as_str(), &[(1, key)], from, &prev);
                serde_json::to_writer(&mut out, &header).map_err(storage)?;
                out.push(b'\n');
                header_written = true;
            }
            if seq >= from {
                let signature = match (&signature, seq == last) {
                    (Some(cp), true) if cp.hash == hash => Some(cp.signature.to_vec()),
                    (Some(_), true) => {
                        return Err(storage(format!(
                            "{origin}'s stored events do not hash to its verified checkpoint at {seq}"
                        )));
                    }
                    (None, true) => {
                        Some(self.journal_key.sign(origin, seq, hash).signature.to_vec())
                    }
                    _ => None,
                };
                let line =
                    ExportLine::new(seq, &prev, &hash, envelope.value(), signature.as_deref())
                        .map_err(storage)?;
                serde_json::to_writer(&mut out, &line).map_err(storage)?;
                out.push(b'\n');
            }
            prev = hash;
        }
        Ok(header_written.then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use fusion_contracts::events::StockAdjusted;
    use fusion_contracts::{CorrelationId, Envelope, EventId, Sku, Timestamp};
    use fusion_sync::net::{self, EventSink};
    use fusion_sync::proto::VecLog;

    use super::*;

    fn adjusted(origin: &NodeId, seq: u64) -> Envelope {
        Envelope::new(
            EventId::from_u128(u128::from(seq)),
            origin.clone(),
            seq,
            Timestamp::from_unix_ms(seq as i64),
            CorrelationId::new("journal").unwrap(),
            None,
            StockAdjusted {
                sku: Sku::new("TEA").unwrap(),
                previous_quantity: seq - 1,
                quantity: seq,
                delta: 1,
                reason: "count".into(),
            }
            .into(),
        )
        .unwrap()
    }

    /// A hub that stored logs before journals existed computes their heads once on open, and
    /// goes on taking the tills' next batches and signing its own.
    #[tokio::test]
    async fn logs_stored_before_journals_are_chained_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let till = net::SecretKey::generate();
        let origin = NodeId::new("till-before-journals").unwrap();
        let journal = VecLog::new(origin.clone(), net::journal_key(&till));
        let events: Vec<Envelope> = (1..=5).map(|seq| adjusted(&origin, seq)).collect();
        {
            let hub = HubStore::open(dir.path()).unwrap();
            hub.enroll(till.public(), "store-1").unwrap();
            let batch = journal.append_batch(&events[..3]);
            assert_eq!(hub.store(till.public(), batch).await, Ok(3));
            // What a hub of the previous format held: the logs, no journal tables.
            let txn = hub.db.begin_write().unwrap();
            txn.delete_table(JOURNAL_HEADS).unwrap();
            txn.delete_table(OWN_HASHES).unwrap();
            txn.open_table(META).unwrap().remove(META_JOURNAL).unwrap();
            txn.commit().unwrap();
        }
        let hub = HubStore::open(dir.path()).unwrap();
        let batch = journal.append_batch(&events[3..]);
        assert_eq!(hub.store(till.public(), batch).await, Ok(5));
        // Its own journal (the enrollment) is signed by its key, the endpoint id.
        let own = hub.origin().clone();
        let cp = hub
            .checkpoint(&own, 1)
            .unwrap()
            .expect("the enrollment is at seq 1");
        let identity = net::load_or_create_identity(dir.path()).unwrap();
        assert!(journal::checkpoint_is_signed_by(
            identity.public().as_bytes(),
            &own,
            &cp
        ));
        assert_eq!(
            hub.verified_checkpoint(&origin).unwrap().map(|c| c.seq),
            Some(5)
        );
    }
}
