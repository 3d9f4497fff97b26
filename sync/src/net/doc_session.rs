//! One document session, the same on both sides: each sends the heads of what it holds; a
//! document the other side lacks altogether is asked for whole (`DocWant`) and sent as stored
//! (`DocSave`, nothing loaded at the sender); a document both hold with other heads goes
//! through automerge's sync protocol; afterwards every document that changes on either side
//! does.
//!
//! Memory stays bounded for any catalog: heads go out a page at a time and documents asked for
//! a batch at a time, each only while less than [`QUEUED_MAX`] bytes wait to be written (the
//! documents first), and what arrives is handed to the host (committed) at least every
//! [`COMMIT_DOCS_MAX`] documents.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use tokio::sync::Notify;

use super::{
    DOCS_CREATED_PER_SESSION_MAX, DocHost, EndpointId, Gate, NetError, READ_CHUNK,
    READ_ONLY_RECHECK, read_chunk,
};
use crate::docs::{ChangeHash, DocId, DocSet, SyncState};
use crate::frame::{self, Decoder, Frame};

/// Bytes of frames waiting to be written past which no more heads or documents are read to
/// send: the sender's memory for an initial sync of any size.
const QUEUED_MAX: usize = 1 << 20;
/// Documents read from storage at once to answer a `DocWant` (one snapshot).
const SAVES_PER_BATCH: usize = 128;
/// Most documents received before the host commits them: each commit is an fsync, and what
/// arrived is pinned in memory until it is stored.
const COMMIT_DOCS_MAX: usize = 512;
/// A document saved bigger than this goes through automerge's sync protocol instead of one
/// `DocSave` frame (which must fit a frame).
const SAVE_BYTES_MAX: usize = frame::FRAME_BYTES_MAX - 64 * 1024;

pub(super) async fn doc_session(
    connection: &Connection,
    send: SendStream,
    mut recv: RecvStream,
    host: &dyn DocHost,
    gate: &Gate,
) -> Result<(), NetError> {
    let peer = connection.remote_id();
    let mut session = Session::new(host, peer);
    let mut changes = host.subscribe();
    // A document whose owner this host learns later (a campaign whose creating journal has not
    // arrived yet) becomes writable from the peer without a new session.
    let mut recheck = tokio::time::interval(READ_ONLY_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Frames go out from a task of their own: both sides write (heads, then the answers to
    // the other's) while the other writes too, and a side that stopped reading until its own
    // write finished would wait for ever once both streams' windows are full (a big catalog's
    // heads alone are megabytes).
    let (outgoing, writer) = frame_writer(send);
    let _writer = AbortOnDrop(writer);
    // Streams are lazy: the acceptor sees the dialler's stream only once it writes. The first
    // page of heads goes now, even empty: a host with no documents yet still says so, or it
    // would never be sent any.
    session.send_heads_page(&outgoing)?;
    let mut decoder = Decoder::default();
    let mut buffer = vec![0u8; READ_CHUNK];
    let result = async {
        loop {
            tokio::select! {
                read = read_chunk(&mut recv, &mut buffer) => {
                    let Some(n) = read? else { return Ok(()) };
                    gate.touch(peer);
                    decoder.push(&buffer[..n]);
                    session.on_bytes(&mut decoder)?;
                    // Takes in whatever else already arrived, up to a commit's worth.
                    while session.changed.len() < COMMIT_DOCS_MAX {
                        match poll_once(read_chunk(&mut recv, &mut buffer)) {
                            Some(Ok(Some(n))) => {
                                decoder.push(&buffer[..n]);
                                session.on_bytes(&mut decoder)?;
                            }
                            Some(Ok(None)) | None => break,
                            Some(Err(e)) => return Err(e),
                        }
                    }
                    if !session.changed.is_empty() {
                        if !gate.admits(peer) {
                            connection.close(2u32.into(), b"revoked");
                            return Err(NetError::Protocol("peer is no longer admitted".into()));
                        }
                        let mut changed = std::mem::take(&mut session.changed);
                        changed.sort();
                        changed.dedup();
                        host.changed(changed).await.map_err(NetError::Store)?;
                    }
                }
                change = changes.recv() => {
                    let ids: Vec<DocId> = match change {
                        Ok(ids) => ids.to_vec(),
                        // Missed some announcements: every heads again, for the peer to compare
                        // and ask for what differs.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            session.just_received.clear();
                            session.heads_after = Some(None);
                            Vec::new()
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    session.on_announced(ids)?;
                }
                _ = recheck.tick() => session.recheck()?,
                _ = outgoing.drained.notified(), if session.has_more() => {}
            }
            session.answer_wanted(&outgoing)?;
            while session.wanted.is_empty() && outgoing.queued() < QUEUED_MAX && session.has_more()
            {
                session.send_heads_page(&outgoing)?;
            }
            if !session.out.is_empty() {
                outgoing.send(std::mem::take(&mut session.out))?;
            }
        }
    }
    .await;
    // What was asked of this peer and did not come is no longer on its way.
    lock_docs(host).fetch_settled(0, session.fetching);
    result
}

/// What one session knows besides the documents themselves.
struct Session<'h> {
    host: &'h dyn DocHost,
    peer: EndpointId,
    /// A till (not the hub) may create at most [`DOCS_CREATED_PER_SESSION_MAX`] documents.
    capped: bool,
    created: usize,
    states: HashMap<DocId, SyncState>,
    /// Where the heads not sent yet start (`Some(None)`: from the first); `None`: all sent.
    heads_after: Option<Option<DocId>>,
    /// Documents the peer asked for whole, not sent yet (each once).
    wanted: VecDeque<DocId>,
    queued: HashSet<DocId>,
    /// Documents asked of the peer whole that have not arrived.
    fetching: usize,
    /// Documents the peer sent whole, with their heads then, until the announcement of their
    /// commit comes back: the peer holds exactly those, so nothing is sent to it for them.
    just_received: HashMap<DocId, Vec<ChangeHash>>,
    /// Changed by the peer, not yet handed to the host.
    changed: Vec<DocId>,
    /// Frames to send.
    out: Vec<Frame>,
}

impl<'h> Session<'h> {
    fn new(host: &'h dyn DocHost, peer: EndpointId) -> Self {
        Self {
            host,
            peer,
            capped: !host.is_hub(peer),
            created: 0,
            states: HashMap::new(),
            heads_after: Some(None),
            wanted: VecDeque::new(),
            queued: HashSet::new(),
            fetching: 0,
            just_received: HashMap::new(),
            changed: Vec::new(),
            out: Vec::new(),
        }
    }

    fn state(&mut self, doc: &DocId) -> &mut SyncState {
        sync_state(&mut self.states, self.host, self.peer, doc)
    }

    /// Whether heads or asked-for documents remain to be sent.
    fn has_more(&self) -> bool {
        self.heads_after.is_some() || !self.wanted.is_empty()
    }

    /// Sends the next page of this host's heads (the first even when empty).
    fn send_heads_page(&mut self, outgoing: &Outgoing) -> Result<(), NetError> {
        let Some(after) = self.heads_after.take() else {
            return Ok(());
        };
        let page = lock_docs(self.host)
            .heads_page(after.as_ref(), frame::DOC_HEADS_MAX)
            .map_err(doc_failed)?;
        let Some((last, _)) = page.last() else {
            if after.is_none() {
                outgoing.send(vec![Frame::DocHeads { docs: Vec::new() }])?;
            }
            return Ok(());
        };
        self.heads_after = Some(Some(last.clone()));
        let frames = page
            .chunks(frame::DOC_HEADS_MAX)
            .map(|docs| Frame::DocHeads {
                docs: docs
                    .iter()
                    .map(|(id, heads)| (id.clone(), heads.iter().map(|h| h.0).collect()))
                    .collect(),
            })
            .collect();
        outgoing.send(frames)
    }

    /// Whether the cap still lets the peer create one more document here.
    fn may_create(&self, asked: usize) -> bool {
        !self.capped || self.created + self.fetching + asked < DOCS_CREATED_PER_SESSION_MAX
    }

    /// Every frame the decoder holds.
    fn on_bytes(&mut self, decoder: &mut Decoder) -> Result<(), NetError> {
        while let Some(frame) = decoder
            .next_frame()
            .map_err(|e| NetError::Protocol(e.to_string()))?
        {
            let host = self.host;
            let mut docs = lock_docs(host);
            match frame {
                Frame::DocHeads { docs: theirs } => self.on_heads(&mut docs, theirs)?,
                Frame::DocSync { doc, message } => self.on_sync(&mut docs, doc, &message)?,
                Frame::DocWant { docs: wanted } => self.on_want(&docs, wanted)?,
                Frame::DocSave { doc, bytes } => self.on_save(&mut docs, doc, &bytes)?,
                _ => {
                    return Err(NetError::Protocol(
                        "a log frame in a document session".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn on_heads(
        &mut self,
        docs: &mut DocSet,
        theirs: Vec<(DocId, Vec<[u8; 32]>)>,
    ) -> Result<(), NetError> {
        let mut want = Vec::new();
        let ids: Vec<DocId> = theirs.iter().map(|(id, _)| id.clone()).collect();
        let ours = docs.heads_of(&ids).map_err(doc_failed)?;
        for ((id, heads), ours) in theirs.into_iter().zip(ours) {
            let heads: Vec<ChangeHash> = heads.into_iter().map(ChangeHash).collect();
            if ours.is_none()
                && !heads.is_empty()
                && self.host.may_change(self.peer, &id)
                && self.may_create(want.len())
            {
                want.push(id);
            } else if ours.unwrap_or_default() != heads {
                let state = self.state(&id);
                if let Some(message) = docs.generate(&id, state).map_err(doc_failed)? {
                    self.out.push(Frame::DocSync { doc: id, message });
                }
            }
        }
        if !want.is_empty() {
            docs.fetch_asked(want.len());
            self.fetching += want.len();
            self.out.push(Frame::DocWant { docs: want });
        }
        Ok(())
    }

    fn on_sync(&mut self, docs: &mut DocSet, doc: DocId, message: &[u8]) -> Result<(), NetError> {
        let new = !docs.holds(&doc);
        if new && !self.may_create(0) {
            self.host.refuse("doc_cap");
            return Ok(());
        }
        let host = self.host;
        let state = sync_state(&mut self.states, host, self.peer, &doc);
        // Told so (the flag on our messages), an honest peer sends no changes to a document
        // it may not change; automerge applies none.
        if state.read_only && DocSet::carries_changes(message) {
            host.refuse("doc_unauthorized");
        }
        if docs.receive(&doc, state, message).map_err(doc_failed)? {
            self.created += usize::from(new);
            self.just_received.remove(&doc);
            self.changed.push(doc.clone());
        }
        if let Some(message) = docs.generate(&doc, state).map_err(doc_failed)? {
            self.out.push(Frame::DocSync { doc, message });
        }
        Ok(())
    }

    /// Queues what the peer asked for (each document once, only those held here).
    fn on_want(&mut self, docs: &DocSet, wanted: Vec<DocId>) -> Result<(), NetError> {
        let held = docs.heads_of(&wanted).map_err(doc_failed)?;
        for (id, held) in wanted.into_iter().zip(held) {
            if held.is_some() && self.queued.insert(id.clone()) {
                self.wanted.push_back(id);
            }
        }
        Ok(())
    }

    fn on_save(&mut self, docs: &mut DocSet, doc: DocId, bytes: &[u8]) -> Result<(), NetError> {
        let asked = self.fetching > 0;
        if asked {
            self.fetching -= 1;
            docs.fetch_settled(1, 0);
        }
        let new = !docs.holds(&doc);
        if new && !self.may_create(0) {
            self.host.refuse("doc_cap");
            return Ok(());
        }
        if !self.host.may_change(self.peer, &doc) {
            self.host.refuse("doc_unauthorized");
            return Ok(());
        }
        if docs.receive_save(&doc, bytes).map_err(doc_failed)? {
            self.created += usize::from(new);
            // A sync state of before no longer says what the peer holds.
            self.states.remove(&doc);
            self.just_received.insert(doc.clone(), docs.heads(&doc));
            self.changed.push(doc);
        }
        Ok(())
    }

    /// Documents changed here (by any session or edit): what the peer does not hold yet.
    fn on_announced(&mut self, ids: Vec<DocId>) -> Result<(), NetError> {
        let host = self.host;
        let mut docs = lock_docs(host);
        for id in ids {
            if let Some(heads) = self.just_received.remove(&id)
                && docs.heads(&id) == heads
            {
                continue;
            }
            let state = self.state(&id);
            if let Some(message) = docs.generate(&id, state).map_err(doc_failed)? {
                self.out.push(Frame::DocSync { doc: id, message });
            }
        }
        Ok(())
    }

    fn recheck(&mut self) -> Result<(), NetError> {
        let mut docs = lock_docs(self.host);
        for (id, state) in self.states.iter_mut().filter(|(_, s)| s.read_only) {
            if self.host.may_change(self.peer, id) {
                // Asks the peer to send again what it held back.
                state.set_read_only(false);
                if let Some(message) = docs.generate(id, state).map_err(doc_failed)? {
                    self.out.push(Frame::DocSync {
                        doc: id.clone(),
                        message,
                    });
                }
            }
        }
        Ok(())
    }

    /// Sends documents the peer asked for while the writer has room.
    fn answer_wanted(&mut self, outgoing: &Outgoing) -> Result<(), NetError> {
        while !self.wanted.is_empty() && outgoing.queued() < QUEUED_MAX {
            let n = self.wanted.len().min(SAVES_PER_BATCH);
            let ids: Vec<DocId> = self.wanted.drain(..n).collect();
            for id in &ids {
                self.queued.remove(id);
            }
            let host = self.host;
            let mut docs = lock_docs(host);
            let mut frames = Vec::with_capacity(ids.len());
            for (doc, bytes) in docs.saves(&ids).map_err(doc_failed)? {
                if bytes.len() <= SAVE_BYTES_MAX {
                    frames.push(Frame::DocSave { doc, bytes });
                } else {
                    let state = self.state(&doc);
                    if let Some(message) = docs.generate(&doc, state).map_err(doc_failed)? {
                        frames.push(Frame::DocSync { doc, message });
                    }
                }
            }
            drop(docs);
            outgoing.send(frames)?;
            if self.wanted.is_empty() {
                // An initial sync's queue held many thousand ids at its peak: let them go.
                self.wanted.shrink_to_fit();
                self.queued.shrink_to_fit();
            }
        }
        Ok(())
    }
}

/// The sync state of `doc` with `peer`: read-only (the peer's changes are not applied, and the
/// peer is told so and sends none) unless the host says the peer may change it.
fn sync_state<'s>(
    states: &'s mut HashMap<DocId, SyncState>,
    host: &dyn DocHost,
    peer: EndpointId,
    doc: &DocId,
) -> &'s mut SyncState {
    let state = states.entry(doc.clone()).or_default();
    state.set_read_only(!host.may_change(peer, doc));
    state
}

pub(super) fn lock_docs(host: &dyn DocHost) -> std::sync::MutexGuard<'_, DocSet> {
    // A panic while holding the lock leaves documents automerge kept consistent.
    host.docs().lock().unwrap_or_else(|p| p.into_inner())
}

/// A document that could not be read, applied or answered ends the session.
fn doc_failed(e: crate::docs::DocError) -> NetError {
    NetError::Protocol(e.to_string())
}

/// The output of a future that is ready now, without waiting for it.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// The session's side of its writer task: frames to write, and how many bytes of them wait.
struct Outgoing {
    frames: tokio::sync::mpsc::UnboundedSender<(Vec<u8>, usize)>,
    queued: Arc<AtomicUsize>,
    /// Woken each time the writer wrote a batch.
    drained: Arc<Notify>,
}

impl Outgoing {
    fn send(&self, frames: Vec<Frame>) -> Result<(), NetError> {
        let mut bytes = Vec::new();
        for frame in &frames {
            bytes.extend_from_slice(&frame::encode(frame));
        }
        let n = bytes.len();
        self.queued.fetch_add(n, Ordering::Relaxed);
        self.frames
            .send((bytes, n))
            .map_err(|_| NetError::Connection("the session's stream closed".into()))
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Writes every batch of frames sent to it to `send`, in order, until the sender is dropped or a
/// write fails (the session sees the channel closed).
fn frame_writer(mut send: SendStream) -> (Outgoing, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<u8>, usize)>();
    let queued = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(Notify::new());
    let (written, woken) = (queued.clone(), drained.clone());
    let task = tokio::spawn(async move {
        while let Some((bytes, n)) = rx.recv().await {
            if send.write_all(&bytes).await.is_err() {
                return;
            }
            written.fetch_sub(n, Ordering::Relaxed);
            woken.notify_one();
        }
    });
    let outgoing = Outgoing {
        frames: tx,
        queued,
        drained,
    };
    (outgoing, task)
}

/// Stops a session's writer task with the session.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
