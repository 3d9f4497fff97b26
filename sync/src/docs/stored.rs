//! Documents in a redb file, as node and hub keep them: `docs` holds each document's chunks
//! by (document id, index), `doc_heads` each document's heads (its change hashes one after
//! another), written together in the host's transactions ([`store_chunks`]) and read through
//! [`StoredDocs`] in read snapshots of their own.

use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::{ChangeHash, Chunk, DocId, DocSource, decode_heads, encode_heads};

/// (document id, chunk index) → chunk bytes; chunk 0 a whole save, the rest incremental.
pub const DOCS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("docs");
/// Document id → its heads once its chunks are stored.
pub const DOC_HEADS: TableDefinition<&str, &[u8]> = TableDefinition::new("doc_heads");

/// Writes chunks taken from a `DocSet` and their documents' heads into the host's open tables
/// (call [`super::DocSet::chunks_stored`] after the commit).
pub fn store_chunks(
    docs: &mut redb::Table<(&str, u32), &[u8]>,
    heads: &mut redb::Table<&str, &[u8]>,
    chunks: &[Chunk],
) -> Result<(), redb::StorageError> {
    for chunk in chunks {
        match chunk {
            Chunk::Append {
                doc, index, bytes, ..
            } => {
                docs.insert((doc.as_str(), *index), bytes.as_slice())?;
            }
            Chunk::Compacted { doc, bytes, .. } => {
                docs.retain_in((doc.as_str(), 1)..=(doc.as_str(), u32::MAX), |_, _| false)?;
                docs.insert((doc.as_str(), 0), bytes.as_slice())?;
            }
        }
        heads.insert(chunk.doc().as_str(), encode_heads(chunk.heads()).as_slice())?;
    }
    Ok(())
}

/// A host's committed documents, each read in a snapshot of its own: never waits for the
/// host's writer.
pub struct StoredDocs(pub Arc<Database>);

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn parse_heads(id: &str, bytes: &[u8]) -> Result<Vec<ChangeHash>, String> {
    decode_heads(bytes).ok_or_else(|| format!("doc_heads of {id}: not whole hashes"))
}

impl DocSource for StoredDocs {
    fn chunks(&self, docs: &[DocId]) -> Result<Vec<Vec<Vec<u8>>>, String> {
        let read = self.0.begin_read().map_err(text)?;
        let table = read.open_table(DOCS).map_err(text)?;
        docs.iter()
            .map(|doc| {
                table
                    .range((doc.as_str(), 0)..=(doc.as_str(), u32::MAX))
                    .map_err(text)?
                    .map(|entry| entry.map(|(_, bytes)| bytes.value().to_vec()).map_err(text))
                    .collect()
            })
            .collect()
    }

    fn heads(&self, docs: &[DocId]) -> Result<Vec<Option<Vec<ChangeHash>>>, String> {
        let read = self.0.begin_read().map_err(text)?;
        let table = read.open_table(DOC_HEADS).map_err(text)?;
        docs.iter()
            .map(|doc| match table.get(doc.as_str()).map_err(text)? {
                Some(bytes) => parse_heads(doc.as_str(), bytes.value()).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    fn heads_after(
        &self,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<Vec<(DocId, Vec<ChangeHash>)>, String> {
        let read = self.0.begin_read().map_err(text)?;
        let table = read.open_table(DOC_HEADS).map_err(text)?;
        let range = match after {
            Some(after) => table.range::<&str>((
                std::ops::Bound::Excluded(after.as_str()),
                std::ops::Bound::Unbounded,
            )),
            None => table.range::<&str>(..),
        }
        .map_err(text)?;
        range
            .take(limit)
            .map(|entry| {
                let (id, bytes) = entry.map_err(text)?;
                let doc = DocId::parse(id.value()).map_err(text)?;
                Ok((doc, parse_heads(id.value(), bytes.value())?))
            })
            .collect()
    }

    fn count(&self) -> Result<u64, String> {
        let read = self.0.begin_read().map_err(text)?;
        read.open_table(DOC_HEADS)
            .map_err(text)?
            .len()
            .map_err(text)
    }
}
