//! The hub's copies of the shared documents' chunks (automerge), and the commit that writes
//! a batch of chunks with the events of the edit that made them.

use fusion_contracts::{CorrelationId, Event, NodeId, Timestamp};
use fusion_sync::docs::{Chunk, StoredDoc, group_chunks};
use redb::{ReadableDatabase, ReadableTable};

use super::own_log::OwnLog;
use super::tables::*;
use super::{HubStore, HubStoreError, storage};

impl HubStore {
    /// Every stored document's chunks, in index order.
    pub fn load_docs(&self) -> Result<Vec<StoredDoc>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(DOCS).map_err(storage)?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (key, bytes) = entry.map_err(storage)?;
            rows.push((key.value().0.to_string(), bytes.value().to_vec()));
        }
        group_chunks(rows).map_err(storage)
    }

    /// Stores document chunks and the hub's own events (say, `product.updated` for a price set
    /// here) in one durable transaction. The events are numbered after `origin`'s last.
    pub fn commit_docs(
        &self,
        chunks: &[Chunk],
        origin: &NodeId,
        events: Vec<(Event, CorrelationId)>,
        at: Timestamp,
    ) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut docs = txn.open_table(DOCS).map_err(storage)?;
            for chunk in chunks {
                match chunk {
                    Chunk::Append { doc, index, bytes } => {
                        docs.insert((doc.as_str(), *index), bytes.as_slice())
                            .map_err(storage)?;
                    }
                    Chunk::Compacted { doc, bytes } => {
                        docs.retain_in((doc.as_str(), 1)..=(doc.as_str(), u32::MAX), |_, _| false)
                            .map_err(storage)?;
                        docs.insert((doc.as_str(), 0), bytes.as_slice())
                            .map_err(storage)?;
                    }
                }
            }
            let mut own = OwnLog::open(&txn, at).map_err(storage)?;
            for (event, correlation_id) in events {
                own.append(origin, event, correlation_id, None)?;
            }
        }
        txn.commit().map_err(storage)?;
        self.appended.notify_waiters();
        Ok(())
    }
}
