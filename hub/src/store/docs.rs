//! The hub's copies of the shared documents' chunks (automerge) and their heads, read one
//! document at a time, and the commit that writes a batch of chunks with the events of the
//! edit that made them.

use std::sync::Arc;

use fusion_contracts::{CorrelationId, Event, NodeId, Timestamp};
use fusion_sync::docs::stored::{StoredDocs, store_chunks};
use fusion_sync::docs::{Chunk, DocSource, encode_heads, heads_of_rows};
use redb::ReadableTable;

use super::own_log::OwnLog;
use super::tables::*;
use super::{HubStore, HubStoreError, storage};

impl HubStore {
    /// The stored documents for a lazily loaded document set: their chunks and heads (the
    /// heads table filled once from the chunks for a store from before it). `actor` is the
    /// hub's automerge actor.
    pub fn doc_source(&self, actor: &[u8]) -> Result<Box<dyn DocSource>, HubStoreError> {
        self.index_doc_heads(actor)?;
        Ok(Box::new(StoredDocs(Arc::clone(&self.db))))
    }

    fn index_doc_heads(&self, actor: &[u8]) -> Result<(), HubStoreError> {
        const INDEXED: &str = "doc_heads_indexed";
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            if meta.get(INDEXED).map_err(storage)?.is_some() {
                return Ok(());
            }
            let docs = txn.open_table(DOCS).map_err(storage)?;
            let mut heads = txn.open_table(DOC_HEADS).map_err(storage)?;
            let rows = docs.iter().map_err(storage)?.map(|entry| {
                entry
                    .map(|(key, bytes)| (key.value().0.to_string(), bytes.value().to_vec()))
                    .map_err(|e| e.to_string())
            });
            let indexed = heads_of_rows(actor, rows, |id, found| {
                heads
                    .insert(id.as_str(), encode_heads(found).as_slice())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .map_err(storage)?;
            if indexed > 0 {
                tracing::info!(documents = indexed, "indexed the stored documents' heads");
            }
            meta.insert(INDEXED, 1).map_err(storage)?;
        }
        txn.commit().map_err(storage)
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
            let mut heads = txn.open_table(DOC_HEADS).map_err(storage)?;
            store_chunks(&mut docs, &mut heads, chunks).map_err(storage)?;
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
