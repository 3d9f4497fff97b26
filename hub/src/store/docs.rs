//! The hub's copies of the shared documents' chunks (automerge) and their heads, read one
//! document at a time, and the commit that writes a batch of chunks with the events of the
//! edit that made them.

use std::sync::Arc;

use fusion_contracts::{CorrelationId, Event, NodeId, Timestamp};
use fusion_sync::docs::{
    ChangeHash, Chunk, ChunkSource, DocId, decode_heads, encode_heads, heads_of_rows,
};
use redb::{Database, ReadableDatabase, ReadableTable};

use super::own_log::OwnLog;
use super::tables::*;
use super::{HubStore, HubStoreError, storage};

impl HubStore {
    /// Every stored document's heads, as stored beside its chunks (filled once from the
    /// chunks for a store from before the heads table). `actor` is the hub's automerge actor.
    pub fn doc_heads(&self, actor: &[u8]) -> Result<Vec<(DocId, Vec<ChangeHash>)>, HubStoreError> {
        self.index_doc_heads(actor)?;
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(DOC_HEADS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (id, bytes) = entry.map_err(storage)?;
            let id = DocId::parse(id.value()).map_err(storage)?;
            let heads = decode_heads(bytes.value())
                .ok_or_else(|| storage(format!("doc_heads: {id}: not whole hashes")))?;
            out.push((id, heads));
        }
        Ok(out)
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

    /// Reads a document's committed chunks for a lazily loaded document set.
    pub fn chunk_source(&self) -> Box<dyn ChunkSource> {
        Box::new(StoredChunks(Arc::clone(&self.db)))
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
            for chunk in chunks {
                match chunk {
                    Chunk::Append {
                        doc, index, bytes, ..
                    } => {
                        docs.insert((doc.as_str(), *index), bytes.as_slice())
                            .map_err(storage)?;
                    }
                    Chunk::Compacted { doc, bytes, .. } => {
                        docs.retain_in((doc.as_str(), 1)..=(doc.as_str(), u32::MAX), |_, _| false)
                            .map_err(storage)?;
                        docs.insert((doc.as_str(), 0), bytes.as_slice())
                            .map_err(storage)?;
                    }
                }
                heads
                    .insert(chunk.doc().as_str(), encode_heads(chunk.heads()).as_slice())
                    .map_err(storage)?;
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

/// A document's committed chunks, in a read snapshot of its own.
struct StoredChunks(Arc<Database>);

impl ChunkSource for StoredChunks {
    fn chunks(&self, doc: &DocId) -> Result<Vec<Vec<u8>>, String> {
        let read = self.0.begin_read().map_err(|e| e.to_string())?;
        let table = read.open_table(DOCS).map_err(|e| e.to_string())?;
        let range = table
            .range((doc.as_str(), 0)..=(doc.as_str(), u32::MAX))
            .map_err(|e| e.to_string())?;
        range
            .map(|entry| {
                entry
                    .map(|(_, bytes)| bytes.value().to_vec())
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}
