//! Frames on the wire: `[u32 little-endian length][postcard (protocol version, Frame)]`.
//! A peer's bytes are untrusted: every length is checked against `FRAME_BYTES_MAX` before any
//! allocation, and malformed input is an error, never a panic.

use fusion_contracts::NodeId;
use fusion_rules::journal::Checkpoint;

use crate::docs::DocId;
use serde::{Deserialize, Serialize};

/// Version of this frame format; a peer speaking another is refused at the first frame.
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest frame accepted: a full batch of large events (512 × ~2 KiB) fits with room to spare.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Bytes of the length prefix.
const LENGTH_BYTES: usize = 4;

/// Where a receiver stands for one origin: every event up to `seq` is durably stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub origin: NodeId,
    pub seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Receiver → sender, first on every connection: resume after these positions.
    Resume { cursors: Vec<Cursor> },
    /// Sender → receiver: consecutive events of one origin, `first_seq`, `first_seq + 1`, …
    /// (postcard-encoded envelopes, validated by the receiver), and the origin's signed
    /// checkpoint at the last of them (version 2).
    Events {
        origin: NodeId,
        first_seq: u64,
        events: Vec<Vec<u8>>,
        checkpoint: Checkpoint,
    },
    /// Receiver → sender: every event of `origin` up to `upto` is durably stored.
    Ack { origin: NodeId, upto: u64 },
    /// Receiver → sender: a gap; send `origin` again from `from`.
    Need { origin: NodeId, from: u64 },
    /// Sender → receiver: no `Resume` came; send it (again).
    ResumeRequest,
    /// Document sessions (ALPN `net::DOCS_ALPN`), either side, first: the heads of documents it
    /// holds, in frames of at most [`DOC_HEADS_MAX`] documents.
    DocHeads { docs: Vec<(DocId, Vec<[u8; 32]>)> },
    /// Document sessions, either side: one automerge sync message for `doc`.
    DocSync { doc: DocId, message: Vec<u8> },
    /// Document sessions, either side: send these documents whole (`DocSave`); the asker holds
    /// none of them. At most [`DOC_HEADS_MAX`] per frame.
    DocWant { docs: Vec<DocId> },
    /// Document sessions, answering `DocWant`: every change of `doc` as automerge saves it (a
    /// document chunk, maybe followed by change chunks), read from storage without loading it.
    DocSave { doc: DocId, bytes: Vec<u8> },
}

/// Most documents in one `DocHeads` frame (~100 bytes each, far below the frame limit).
pub const DOC_HEADS_MAX: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {FRAME_BYTES_MAX} byte limit")]
    TooLarge(usize),
    #[error("peer speaks protocol version {0}, this node {PROTOCOL_VERSION}")]
    UnsupportedVersion(u16),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// The bytes of one frame, length prefix included.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let body =
        postcard::to_allocvec(&(PROTOCOL_VERSION, frame)).expect("encoding into a Vec cannot fail");
    assert!(
        body.len() <= FRAME_BYTES_MAX,
        "a frame of {} bytes was built; batches are bounded below the limit",
        body.len()
    );
    let mut out = Vec::with_capacity(LENGTH_BYTES + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reassembles frames from a byte stream that arrives in arbitrary pieces.
#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed. After an error the
    /// stream is unusable: close the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buffer.len() < LENGTH_BYTES {
            return Ok(None);
        }
        let length =
            u32::from_le_bytes(self.buffer[..LENGTH_BYTES].try_into().expect("4 bytes")) as usize;
        if length > FRAME_BYTES_MAX {
            return Err(FrameError::TooLarge(length));
        }
        if self.buffer.len() < LENGTH_BYTES + length {
            return Ok(None);
        }
        let frame = decode_body(&self.buffer[LENGTH_BYTES..LENGTH_BYTES + length]);
        self.buffer.drain(..LENGTH_BYTES + length);
        frame.map(Some)
    }
}

fn decode_body(body: &[u8]) -> Result<Frame, FrameError> {
    let (version, rest): (u16, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let (frame, trailing): (Frame, &[u8]) =
        postcard::take_from_bytes(rest).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !trailing.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            trailing.len()
        )));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    #[test]
    fn frames_survive_any_split() {
        let frames = vec![
            Frame::Resume {
                cursors: vec![Cursor {
                    origin: node("a"),
                    seq: 7,
                }],
            },
            Frame::Events {
                origin: node("a"),
                first_seq: 8,
                events: vec![vec![1, 2, 3], vec![]],
                checkpoint: fusion_rules::journal::JournalKey::from_secret(&[2; 32]).sign(
                    &node("a"),
                    9,
                    [3; 32],
                ),
            },
            Frame::Ack {
                origin: node("a"),
                upto: 9,
            },
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(encode).collect();
        for piece in [1, 2, 3, 7, bytes.len()] {
            let mut decoder = Decoder::default();
            let mut out = Vec::new();
            for chunk in bytes.chunks(piece) {
                decoder.push(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    out.push(frame);
                }
            }
            assert_eq!(out, frames, "split in pieces of {piece}");
        }
    }

    #[test]
    fn oversized_other_versions_and_garbage_are_errors() {
        let mut decoder = Decoder::default();
        decoder.push(&(FRAME_BYTES_MAX as u32 + 1).to_le_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge(FRAME_BYTES_MAX + 1))
        );

        let body = postcard::to_allocvec(&(
            PROTOCOL_VERSION + 1,
            Frame::Ack {
                origin: node("a"),
                upto: 1,
            },
        ))
        .unwrap();
        let mut decoder = Decoder::default();
        decoder.push(&(body.len() as u32).to_le_bytes());
        decoder.push(&body);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::UnsupportedVersion(PROTOCOL_VERSION + 1))
        );

        let mut decoder = Decoder::default();
        decoder.push(&[3, 0, 0, 0, PROTOCOL_VERSION as u8, 0, 250]);
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = Decoder::default();
            decoder.push(&bytes);
            for _ in 0..8 {
                match decoder.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
