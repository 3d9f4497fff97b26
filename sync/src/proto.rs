//! The replication protocol as two state machines with no I/O. Frames, time and the results of
//! the host's own work (a read of the log, a durable write) go in; frames and requests come out.
//!
//! Guarantees, for each origin:
//! - the receiver hands the host each event once, in sequence order, with no gaps: it accepts
//!   only the next expected seq, drops duplicates, and asks again (`Need`) after a gap;
//! - the receiver acknowledges only what the host reports durably stored, and a (re)connection
//!   starts from those positions (`Resume`), so a crash on either side loses nothing;
//! - the sender keeps at most `WINDOW_EVENTS` unacknowledged events in flight (backpressure) and
//!   goes back to the first unacknowledged event when acknowledgements stop (`RETRANSMIT_MS`),
//!   so a dropped frame delays, never loses.

use std::collections::BTreeMap;

use fusion_contracts::{Envelope, NodeId, Timestamp};
use fusion_rules::journal::{self, Checkpoint, Hash, JournalKey};

use crate::frame::{Cursor, Frame};

/// Most events in one `Events` frame.
pub const BATCH_EVENTS_MAX: usize = 512;
/// Most events sent and not yet acknowledged, per origin: bounds the receiver's buffer.
pub const WINDOW_EVENTS: u64 = 4 * BATCH_EVENTS_MAX as u64;
/// Without progress in acknowledgements for this long, resend from the first unacknowledged
/// event (a frame or an acknowledgement was lost).
pub const RETRANSMIT_MS: i64 = 1_000;

/// What the sender needs of the local event log: it sends only its own origins' events, so it
/// can sign a checkpoint at the end of every batch.
pub trait LogSource {
    /// The origins the log holds events of, and the last seq of each.
    fn heads(&self) -> Vec<(NodeId, u64)>;
    /// Up to `limit` encoded envelopes of `origin`, starting at `from`.
    fn read(&self, origin: &NodeId, from: u64, limit: usize) -> Vec<Vec<u8>>;
    /// The origin's signature of its journal at `seq` (`None`: it cannot give one, and the
    /// events are not sent).
    fn checkpoint(&self, origin: &NodeId, seq: u64) -> Option<Checkpoint>;
}

impl<T: LogSource + ?Sized> LogSource for Box<T> {
    fn heads(&self) -> Vec<(NodeId, u64)> {
        (**self).heads()
    }

    fn read(&self, origin: &NodeId, from: u64, limit: usize) -> Vec<Vec<u8>> {
        (**self).read(origin, from, limit)
    }

    fn checkpoint(&self, origin: &NodeId, seq: u64) -> Option<Checkpoint> {
        (**self).checkpoint(origin, seq)
    }
}

/// An in-memory journal of one origin: encoded envelopes in seq order (seq 1 first) and their
/// entry hashes, signed with the origin's key on request. The sending side of tests,
/// benchmarks and tools that replicate without a node store.
pub struct VecLog {
    origin: NodeId,
    key: JournalKey,
    events: std::sync::RwLock<Vec<(Vec<u8>, Hash)>>,
}

impl VecLog {
    pub fn new(origin: NodeId, key: JournalKey) -> Self {
        Self {
            origin,
            key,
            events: std::sync::RwLock::default(),
        }
    }

    pub fn origin(&self) -> &NodeId {
        &self.origin
    }

    /// The next seq to log.
    pub fn next_seq(&self) -> u64 {
        self.read_lock().len() as u64 + 1
    }

    /// Appends envelopes encoded in seq order (the caller numbers them from `next_seq`).
    pub fn extend(&self, encoded: impl IntoIterator<Item = Vec<u8>>) {
        let mut events = self.events.write().unwrap_or_else(|p| p.into_inner());
        for bytes in encoded {
            let seq = events.len() as u64 + 1;
            let prev = events.last().map_or(journal::GENESIS, |(_, h)| *h);
            let hash = journal::entry_hash(&prev, &self.origin, seq, &bytes);
            events.push((bytes, hash));
        }
    }

    /// Appends `envelopes` (numbered from `next_seq`) and returns them as one signed batch, as
    /// a receiver would get them.
    pub fn append_batch(&self, envelopes: &[Envelope]) -> Batch {
        let from = self.next_seq();
        self.extend(envelopes.iter().map(Envelope::encode));
        self.batch(from, envelopes.len())
            .expect("appended envelopes form a batch")
    }

    /// Events `from..` (at most `limit`) as a receiver gets them: decoded, with their bytes and
    /// the signature at the last (tests and tools that store without a session).
    pub fn batch(&self, from: u64, limit: usize) -> Option<Batch> {
        let bytes = self.read(&self.origin, from, limit);
        let last = from + bytes.len().checked_sub(1)? as u64;
        let envelopes = bytes
            .iter()
            .map(|b| Envelope::decode(b).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Batch {
            origin: self.origin.clone(),
            envelopes,
            checkpoint: self.checkpoint(&self.origin, last)?,
            bytes,
        })
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Vec<(Vec<u8>, Hash)>> {
        self.events.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogSource for VecLog {
    fn heads(&self) -> Vec<(NodeId, u64)> {
        vec![(self.origin.clone(), self.read_lock().len() as u64)]
    }

    fn read(&self, origin: &NodeId, from: u64, limit: usize) -> Vec<Vec<u8>> {
        if origin != &self.origin {
            return Vec::new();
        }
        let skip = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
        self.read_lock()
            .iter()
            .skip(skip)
            .take(limit)
            .map(|(bytes, _)| bytes.clone())
            .collect()
    }

    fn checkpoint(&self, origin: &NodeId, seq: u64) -> Option<Checkpoint> {
        if origin != &self.origin {
            return None;
        }
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        let hash = self.read_lock().get(index)?.1;
        Some(self.key.sign(origin, seq, hash))
    }
}

/// A batch of one origin's consecutive events for the host to store, with its proof.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub origin: NodeId,
    /// Decoded, each in its place (origin and seq checked).
    pub envelopes: Vec<Envelope>,
    /// The same events as they came: the bytes the origin's journal hashes, stored as they are.
    pub bytes: Vec<Vec<u8>>,
    /// The origin's signature at the last of them; the host checks it and the chain
    /// ([`Batch::verified`]) before it stores any.
    pub checkpoint: Checkpoint,
}

/// An event of a batch that verified: after the receiver's head, chained to the signature.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    pub envelope: &'a Envelope,
    /// As it came: what the origin's journal hashes, and what the receiver stores.
    pub bytes: &'a [u8],
    pub hash: Hash,
}

impl Batch {
    /// The events after `head` (the receiver's last seq of the origin and its hash), once the
    /// batch chains from it to a checkpoint signed by `public`, the key the origin is bound to
    /// (`fusion_rules::journal::check_batch`); none when the receiver holds them all.
    pub fn verified(
        &self,
        head: (u64, Hash),
        public: &[u8; 32],
    ) -> Result<Vec<Verified<'_>>, journal::Fault> {
        let Some(first) = self.envelopes.first().map(|e| e.seq) else {
            return Ok(Vec::new());
        };
        let hashes = journal::check_batch(
            &self.origin,
            head,
            first,
            &self.bytes,
            &self.checkpoint,
            public,
        )?;
        let skip = self.envelopes.len() - hashes.len();
        Ok(self.envelopes[skip..]
            .iter()
            .zip(&self.bytes[skip..])
            .zip(hashes)
            .map(|((envelope, bytes), hash)| Verified {
                envelope,
                bytes,
                hash,
            })
            .collect())
    }
}

/// A peer broke the protocol; close the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("unexpected frame for this side: {0}")]
    UnexpectedFrame(&'static str),
    #[error("event {index} of a batch of {origin} is undecodable or invalid: {reason}")]
    BadEvent {
        origin: NodeId,
        index: usize,
        reason: String,
    },
    #[error("a batch of {origin} carries seq {found} where {expected} belongs, or another origin")]
    Inconsistent {
        origin: NodeId,
        expected: u64,
        found: u64,
    },
}

#[derive(Clone, Debug, Default)]
struct Outgoing {
    /// Durably stored by the receiver.
    acked: u64,
    /// Next seq to send.
    next: u64,
    /// When `acked` last moved (or the stream started).
    progress_at: i64,
}

/// The sending side of one connection.
#[derive(Debug, Default)]
pub struct Sender {
    /// `None` until the receiver's `Resume` arrived on this connection.
    streams: Option<BTreeMap<NodeId, Outgoing>>,
    /// While waiting for `Resume`: when we started waiting or last asked for it.
    waiting_since: Option<i64>,
}

impl Sender {
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection is gone: nothing is sent until the next `Resume`.
    pub fn on_disconnect(&mut self) {
        self.streams = None;
        self.waiting_since = None;
    }

    pub fn on_frame(&mut self, frame: Frame, now: Timestamp) -> Result<(), ProtocolError> {
        match frame {
            Frame::Resume { cursors } => {
                let streams = cursors
                    .into_iter()
                    .map(|c| {
                        (
                            c.origin,
                            Outgoing {
                                acked: c.seq,
                                next: c.seq + 1,
                                progress_at: now.unix_ms(),
                            },
                        )
                    })
                    .collect();
                self.streams = Some(streams);
                self.waiting_since = None;
            }
            Frame::Ack { origin, upto } => {
                let Some(streams) = self.streams.as_mut() else {
                    return Ok(());
                };
                let stream = streams.entry(origin.clone()).or_default();
                // An acknowledgement may exceed what this connection sent: the receiver can finish
                // storing events of an earlier connection after this one started. It is a fact
                // about durable data, so skip ahead (never past the log: see poll_transmit).
                if upto > stream.acked {
                    stream.acked = upto;
                    stream.next = stream.next.max(upto + 1);
                    stream.progress_at = now.unix_ms();
                }
            }
            Frame::Need { origin, from } => {
                let Some(streams) = self.streams.as_mut() else {
                    return Ok(());
                };
                let stream = streams.entry(origin).or_default();
                stream.next = from.max(stream.acked + 1);
            }
            Frame::Events { .. } | Frame::ResumeRequest => {
                return Err(ProtocolError::UnexpectedFrame(
                    "only the receiver takes events and resume requests",
                ));
            }
            Frame::DocHeads { .. }
            | Frame::DocSync { .. }
            | Frame::DocWant { .. }
            | Frame::DocSave { .. } => {
                return Err(ProtocolError::UnexpectedFrame(
                    "document frames belong to document sessions",
                ));
            }
        }
        Ok(())
    }

    /// The frames to send now: new events of every origin, within the window; after a stall,
    /// the unacknowledged ones again.
    pub fn poll_transmit(&mut self, log: &impl LogSource, now: Timestamp) -> Vec<Frame> {
        let Some(streams) = self.streams.as_mut() else {
            // The receiver's `Resume` is late (or was lost): ask again after a while.
            let since = *self.waiting_since.get_or_insert(now.unix_ms());
            if now.unix_ms() - since >= RETRANSMIT_MS {
                self.waiting_since = Some(now.unix_ms());
                return vec![Frame::ResumeRequest];
            }
            return Vec::new();
        };
        let mut frames = Vec::new();
        for (origin, head) in log.heads() {
            let stream = streams.entry(origin.clone()).or_insert_with(|| Outgoing {
                acked: 0,
                next: 1,
                progress_at: now.unix_ms(),
            });
            let stalled = stream.next > stream.acked + 1
                && now.unix_ms() - stream.progress_at >= RETRANSMIT_MS;
            if stalled {
                stream.next = stream.acked + 1;
                stream.progress_at = now.unix_ms();
            }
            while stream.next <= head && stream.next - stream.acked <= WINDOW_EVENTS {
                let room = (WINDOW_EVENTS - (stream.next - 1 - stream.acked)) as usize;
                let events = log.read(&origin, stream.next, room.min(BATCH_EVENTS_MAX));
                if events.is_empty() {
                    break;
                }
                let first_seq = stream.next;
                let last = first_seq + events.len() as u64 - 1;
                let Some(checkpoint) = log.checkpoint(&origin, last) else {
                    break;
                };
                stream.next = last + 1;
                frames.push(Frame::Events {
                    origin: origin.clone(),
                    first_seq,
                    events,
                    checkpoint,
                });
            }
        }
        frames
    }

    /// Events of the log not yet acknowledged, per origin (the lag a status page shows).
    /// The receiver's acknowledged position per origin in this session.
    pub fn acked(&self) -> BTreeMap<NodeId, u64> {
        self.streams
            .iter()
            .flatten()
            .map(|(origin, s)| (origin.clone(), s.acked))
            .collect()
    }

    pub fn pending(&self, log: &impl LogSource) -> u64 {
        let acked = |origin: &NodeId| {
            self.streams
                .as_ref()
                .and_then(|s| s.get(origin))
                .map_or(0, |s| s.acked)
        };
        log.heads()
            .iter()
            .map(|(origin, head)| head.saturating_sub(acked(origin)))
            .sum()
    }
}

/// What the receiver asks of its host after a frame.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// Nothing to do (a duplicate, or an acknowledgement-only exchange).
    Nothing,
    /// Store these events durably (in order), then call `Receiver::persisted`.
    Persist(Batch),
    /// Send this frame back (a `Need` after a gap).
    Reply(Frame),
}

/// The receiving side of one connection.
#[derive(Debug)]
pub struct Receiver {
    /// Per origin: the last seq durably stored (what `Resume` reports).
    persisted: BTreeMap<NodeId, u64>,
    /// Per origin: the last seq handed to the host (stored or about to be).
    accepted: BTreeMap<NodeId, u64>,
}

impl Receiver {
    /// `persisted`: the host's durable positions, read from its store at start.
    pub fn new(persisted: BTreeMap<NodeId, u64>) -> Self {
        Self {
            accepted: persisted.clone(),
            persisted,
        }
    }

    /// The first frame of every connection. What was handed over but not confirmed durable is
    /// asked for again.
    pub fn on_connect(&mut self) -> Frame {
        self.accepted = self.persisted.clone();
        let cursors = self
            .persisted
            .iter()
            .map(|(origin, seq)| Cursor {
                origin: origin.clone(),
                seq: *seq,
            })
            .collect();
        Frame::Resume { cursors }
    }

    pub fn on_frame(&mut self, frame: Frame) -> Result<Received, ProtocolError> {
        let (origin, first_seq, events, checkpoint) = match frame {
            Frame::Events {
                origin,
                first_seq,
                events,
                checkpoint,
            } => (origin, first_seq, events, checkpoint),
            Frame::ResumeRequest => return Ok(Received::Reply(self.on_connect())),
            _ => {
                return Err(ProtocolError::UnexpectedFrame(
                    "only events and resume requests go to a receiver",
                ));
            }
        };
        let accepted = self.accepted.get(&origin).copied().unwrap_or(0);
        let expected = accepted + 1;
        if first_seq > expected {
            return Ok(Received::Reply(Frame::Need {
                origin,
                from: expected,
            }));
        }
        let skip = (expected - first_seq) as usize;
        if skip >= events.len() {
            // All duplicates: the sender is resending because our acknowledgement was lost.
            // Acknowledge again, or it would resend forever.
            let upto = self.persisted_seq(&origin);
            return Ok(Received::Reply(Frame::Ack { origin, upto }));
        }
        let mut envelopes = Vec::with_capacity(events.len() - skip);
        let total = events.len() as u64;
        for (index, bytes) in events.iter().enumerate().skip(skip) {
            let envelope = Envelope::decode(bytes).map_err(|e| ProtocolError::BadEvent {
                origin: origin.clone(),
                index,
                reason: e.to_string(),
            })?;
            let seq = first_seq + index as u64;
            if envelope.origin != origin || envelope.seq != seq {
                return Err(ProtocolError::Inconsistent {
                    origin,
                    expected: seq,
                    found: envelope.seq,
                });
            }
            envelopes.push(envelope);
        }
        self.accepted.insert(origin.clone(), first_seq + total - 1);
        let bytes = events.into_iter().skip(skip).collect();
        Ok(Received::Persist(Batch {
            origin,
            envelopes,
            bytes,
            checkpoint,
        }))
    }

    /// The host stored `origin`'s events up to `upto` durably: acknowledge them.
    pub fn persisted(&mut self, origin: NodeId, upto: u64) -> Frame {
        let stored = self.persisted.entry(origin.clone()).or_insert(0);
        *stored = (*stored).max(upto);
        let stored = *stored;
        // Invariant: accepted ≥ persisted. Events of an earlier connection may become durable
        // after a resume lowered `accepted`; expecting them again would stall the stream.
        let accepted = self.accepted.entry(origin.clone()).or_insert(0);
        *accepted = (*accepted).max(stored);
        Frame::Ack {
            origin,
            upto: stored,
        }
    }

    pub fn persisted_seq(&self, origin: &NodeId) -> u64 {
        self.persisted.get(origin).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusion_contracts::events::StockAdjusted;
    use fusion_contracts::{CorrelationId, Event, EventId, Sku};

    const T0: Timestamp = Timestamp::from_unix_ms(0);

    fn node() -> NodeId {
        NodeId::new("till-1").unwrap()
    }

    fn envelope(seq: u64) -> Vec<u8> {
        let event = Event::StockAdjusted(StockAdjusted {
            sku: Sku::new("A").unwrap(),
            previous_quantity: 0,
            quantity: seq,
            delta: seq as i64,
            reason: "t".into(),
        });
        Envelope::new(
            EventId::from_u128(seq.into()),
            node(),
            seq,
            T0,
            CorrelationId::new("c").unwrap(),
            None,
            event,
        )
        .unwrap()
        .encode()
    }

    fn log(n: u64) -> VecLog {
        let log = VecLog::new(node(), JournalKey::from_secret(&[1; 32]));
        log.extend((1..=n).map(envelope));
        log
    }

    fn events(first_seq: u64, n: u64) -> Frame {
        let log = log(first_seq + n);
        Frame::Events {
            origin: node(),
            first_seq,
            events: log.read(&node(), first_seq, n as usize),
            checkpoint: log.checkpoint(&node(), first_seq + n - 1).unwrap(),
        }
    }

    /// Any checkpoint: the receiver leaves checking it to the host.
    fn unchecked() -> Checkpoint {
        JournalKey::from_secret(&[1; 32]).sign(&node(), 1, [0; 32])
    }

    #[test]
    fn the_receiver_hands_over_each_event_once_in_order() {
        let mut receiver = Receiver::new(BTreeMap::new());
        assert_eq!(receiver.on_connect(), Frame::Resume { cursors: vec![] });
        let Received::Persist(batch) = receiver.on_frame(events(1, 3)).unwrap() else {
            panic!()
        };
        assert_eq!(
            batch.envelopes.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(batch.bytes, log(3).read(&node(), 1, 3));
        assert_eq!(batch.checkpoint.seq, 3);
        // Overlapping: only the new tail, with the checkpoint at its end.
        let Received::Persist(batch) = receiver.on_frame(events(2, 3)).unwrap() else {
            panic!()
        };
        assert_eq!(
            batch.envelopes.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [4]
        );
        assert_eq!(batch.bytes, vec![envelope(4)]);
        assert_eq!(batch.checkpoint.seq, 4);
        // A gap: ask again from where we are.
        assert_eq!(
            receiver.on_frame(events(7, 1)).unwrap(),
            Received::Reply(Frame::Need {
                origin: node(),
                from: 5
            })
        );
        // All duplicates: re-acknowledge the durable position.
        assert_eq!(
            receiver.persisted(node(), 4),
            Frame::Ack {
                origin: node(),
                upto: 4
            }
        );
        assert_eq!(
            receiver.on_frame(events(1, 2)).unwrap(),
            Received::Reply(Frame::Ack {
                origin: node(),
                upto: 4
            })
        );
    }

    #[test]
    fn untrusted_batches_are_refused() {
        let mut receiver = Receiver::new(BTreeMap::new());
        let garbage = Frame::Events {
            origin: node(),
            first_seq: 1,
            events: vec![vec![0xff; 8]],
            checkpoint: unchecked(),
        };
        assert!(matches!(
            receiver.on_frame(garbage),
            Err(ProtocolError::BadEvent { .. })
        ));
        let mislabelled = Frame::Events {
            origin: node(),
            first_seq: 1,
            events: vec![envelope(2)],
            checkpoint: unchecked(),
        };
        assert!(matches!(
            receiver.on_frame(mislabelled),
            Err(ProtocolError::Inconsistent { .. })
        ));
        let other = NodeId::new("till-2").unwrap();
        let foreign = Frame::Events {
            origin: other,
            first_seq: 1,
            events: vec![envelope(1)],
            checkpoint: unchecked(),
        };
        assert!(matches!(
            receiver.on_frame(foreign),
            Err(ProtocolError::Inconsistent { .. })
        ));
    }

    #[test]
    fn the_sender_resumes_windows_and_retransmits_after_a_stall() {
        let log = log(3000);
        let mut sender = Sender::new();
        assert!(
            sender.poll_transmit(&log, T0).is_empty(),
            "nothing before Resume"
        );
        assert_eq!(
            sender.poll_transmit(&log, Timestamp::from_unix_ms(RETRANSMIT_MS)),
            vec![Frame::ResumeRequest]
        );
        sender
            .on_frame(
                Frame::Resume {
                    cursors: vec![Cursor {
                        origin: node(),
                        seq: 100,
                    }],
                },
                T0,
            )
            .unwrap();
        let frames = sender.poll_transmit(&log, T0);
        let sent: u64 = frames
            .iter()
            .map(|f| match f {
                Frame::Events { events, .. } => events.len() as u64,
                _ => 0,
            })
            .sum();
        assert_eq!(sent, WINDOW_EVENTS, "the window bounds what is in flight");
        assert!(matches!(&frames[0], Frame::Events { first_seq: 101, .. }));
        assert!(sender.poll_transmit(&log, T0).is_empty(), "window full");
        sender
            .on_frame(
                Frame::Ack {
                    origin: node(),
                    upto: 612,
                },
                T0,
            )
            .unwrap();
        assert!(
            matches!(&sender.poll_transmit(&log, T0)[0], Frame::Events { first_seq, .. } if *first_seq == 101 + WINDOW_EVENTS)
        );
        // No acknowledgement for a while: everything unacknowledged goes again.
        let later = Timestamp::from_unix_ms(RETRANSMIT_MS);
        assert!(matches!(
            &sender.poll_transmit(&log, later)[0],
            Frame::Events { first_seq: 613, .. }
        ));
        assert_eq!(sender.pending(&log), 3000 - 612);
    }

    #[test]
    fn every_batch_carries_the_origins_signature_at_its_last_event() {
        let log = log(700);
        let mut sender = Sender::new();
        sender
            .on_frame(Frame::Resume { cursors: vec![] }, T0)
            .unwrap();
        let frames = sender.poll_transmit(&log, T0);
        assert_eq!(frames.len(), 2);
        let key = JournalKey::from_secret(&[1; 32]).public();
        let mut head = (0, journal::GENESIS);
        for frame in frames {
            let Frame::Events {
                first_seq,
                events,
                checkpoint,
                ..
            } = frame
            else {
                panic!()
            };
            assert_eq!(first_seq, head.0 + 1);
            let hashes =
                journal::check_batch(&node(), head, first_seq, &events, &checkpoint, &key).unwrap();
            head = (checkpoint.seq, *hashes.last().unwrap());
        }
        assert_eq!(head.0, 700);
    }
}
