//! The writer thread: group commit. It takes the first queued message, drains whatever else is
//! queued (up to `BATCH_JOBS_MAX`), applies them all in one write transaction, commits durably,
//! and then answers every caller. One fsync is shared by the whole batch.
//!
//! Besides commands it takes sync work: documents a peer changed (persisted and projected) and
//! events of the store's other tills (held and folded into the peer views).

use std::time::Instant;

use fusion_sync::docs::DocId;
use tokio::sync::{mpsc, oneshot};

use super::exec::{self, Batch};
use super::tables::Tables;
use super::{Applied, BATCH_JOBS_MAX, Shared, StoreError, WriteRequest, shared_state};

/// How often expired idempotency keys are pruned.
const PRUNE_INTERVAL_MS: i64 = 60_000;

// Shutdown is sent once per process; boxing every write instead would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    Write(Job),
    /// Documents a peer's sync messages changed: persist and project them.
    Docs(DocsJob),
    /// Events of another till of this store.
    Peer(PeerJob),
    /// Finish what is queued, then stop.
    Shutdown,
}

pub(super) struct Job {
    pub request: WriteRequest,
    pub reply: oneshot::Sender<Result<Applied, StoreError>>,
}

pub(super) struct DocsJob {
    pub docs: Vec<DocId>,
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

pub(super) struct PeerJob {
    pub deliverer: super::Deliverer,
    pub batch: fusion_sync::proto::Batch,
    /// The origin's position after the batch, or why the batch was refused.
    pub reply: oneshot::Sender<Result<Result<u64, String>, StoreError>>,
}

#[derive(Default)]
struct Work {
    jobs: Vec<Job>,
    docs: Vec<DocsJob>,
    peers: Vec<PeerJob>,
}

impl Work {
    fn len(&self) -> usize {
        self.jobs.len() + self.docs.len() + self.peers.len()
    }

    /// Takes a message; false for `Shutdown`.
    fn take(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Write(job) => self.jobs.push(job),
            Msg::Docs(job) => self.docs.push(job),
            Msg::Peer(job) => self.peers.push(job),
            Msg::Shutdown => return false,
        }
        true
    }
}

pub(super) fn run(shared: &Shared, mut rx: mpsc::Receiver<Msg>) {
    let mut pruned_at_ms = 0;
    loop {
        // After close(), the receiver still yields what was queued, then None.
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut work = Work::default();
        if !work.take(first) {
            rx.close();
            continue;
        }
        while work.len() < BATCH_JOBS_MAX {
            match rx.try_recv() {
                Ok(msg) => {
                    if !work.take(msg) {
                        rx.close();
                    }
                }
                Err(_) => break,
            }
        }
        commit_batch(shared, work, &mut pruned_at_ms);
    }
    shared
        .writer_alive
        .store(false, std::sync::atomic::Ordering::Release);
    tracing::info!("store writer stopped");
}

struct Done {
    answers: Vec<Applied>,
    peer_answers: Vec<Result<u64, String>>,
    batch: Batch,
    docs_changed: Vec<DocId>,
}

fn commit_batch(shared: &Shared, work: Work, pruned_at_ms: &mut i64) {
    let started = Instant::now();
    let n = work.len();
    match apply_batch(shared, &work, pruned_at_ms) {
        Ok(done) => {
            // Token changes become visible to authentication only once committed.
            done.batch.publish_token_changes(&shared.tokens);
            for (job, answer) in work.jobs.into_iter().zip(done.answers) {
                let _ = job.reply.send(Ok(answer));
            }
            for (job, answer) in work.peers.into_iter().zip(done.peer_answers) {
                let _ = job.reply.send(Ok(answer));
            }
            for job in work.docs {
                let _ = job.reply.send(Ok(()));
            }
            metrics::counter!("fusion_events_appended_total").increment(done.batch.events_appended);
            if done.batch.events_appended > 0 {
                shared.appended.notify_waiters();
            }
            if !done.docs_changed.is_empty() {
                let _ = shared.doc_changes.send(done.docs_changed.into());
            }
        }
        Err(error) => {
            tracing::error!(%error, commands = n, "write batch failed; none of its commands was committed");
            // The documents may hold edits of the failed batch: start again from what is stored.
            let budget = super::lock_docs(&shared.docs).stats().budget_bytes;
            match shared_state::open_docs(&shared.db, shared.node_id.as_str().as_bytes(), budget) {
                Ok(stored) => *super::lock_docs(&shared.docs) = stored,
                Err(error) => tracing::error!(%error, "reloading documents after a failed batch"),
            }
            for job in work.jobs {
                let _ = job.reply.send(Err(error.clone()));
            }
            for job in work.peers {
                let _ = job.reply.send(Err(error.clone()));
            }
            for job in work.docs {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
    metrics::histogram!("fusion_store_batch_commands").record(n as f64);
    metrics::histogram!("fusion_store_batch_seconds").record(started.elapsed().as_secs_f64());
}

fn apply_batch(shared: &Shared, work: &Work, pruned_at_ms: &mut i64) -> Result<Done, StoreError> {
    let now = (shared.clock)();
    let txn = shared.db.begin_write()?;
    // The store's settings, read once per batch.
    let settings = shared.settings();
    let taxes = settings.taxes();
    let discount_approval_ppm = settings.discount_approval_ppm();
    let mut batch = Batch::new(
        shared.node_id.clone(),
        now,
        shared.rates.clone(),
        shared.order_hold_ms(&settings),
        settings.backorder_skus,
        shared.docs.clone(),
    );
    batch.taxes = taxes;
    batch.discount_approval_ppm = discount_approval_ppm;
    batch.return_approval = settings.return_approval_amount;
    batch.require_open_session = settings.require_open_session == Some(true);
    batch.promotions = settings.promotions;
    let prune = now.unix_ms() - *pruned_at_ms >= PRUNE_INTERVAL_MS;
    let (answers, peer_answers, chunks, docs_changed) = {
        let mut tables = Tables::open(&txn)?;
        let (last, head) = super::journal::head(&tables.events)?;
        batch.next_seq = last + 1;
        batch.head = head;
        let answers = work
            .jobs
            .iter()
            .map(|job| exec::run(&mut tables, &mut batch, &job.request))
            .collect::<Result<Vec<_>, _>>()?;
        let mut follow_ups = Vec::new();
        let peer_answers = work
            .peers
            .iter()
            .map(|job| {
                shared_state::store_peer_events(
                    &mut tables,
                    &shared.node_id,
                    &job.deliverer,
                    &job.batch,
                    &mut follow_ups,
                    &shared.refusals,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Transfers addressed to this node are taken in (and the hub's decisions settled) with
        // the events that brought them.
        for follow_up in follow_ups {
            let request = super::WriteRequest {
                command_id: follow_up.id,
                command: follow_up.command,
                correlation_id: follow_up.correlation_id,
                idempotency: None,
            };
            if let Err(rejected) = exec::run(&mut tables, &mut batch, &request)?.decision {
                tracing::error!(%rejected, "what a peer's events asked of this node failed");
            }
        }
        if prune {
            exec::prune_idempotency(&mut tables, now)?;
        }
        // Every commit that appended events signs the journal's new head.
        if batch.next_seq - 1 > last {
            super::journal::sign_head(
                &mut tables.events,
                &shared.journal_key,
                &shared.node_id,
                batch.next_seq - 1,
            )?;
        }
        let mut docs = super::lock_docs(&shared.docs);
        let mut docs_changed = std::mem::take(&mut batch.touched_docs);
        for job in &work.docs {
            for doc in &job.docs {
                shared_state::project_doc(&mut tables, &mut docs, doc)?;
                docs_changed.push(doc.clone());
            }
        }
        let chunks = docs.take_chunks();
        if let Err(e) = shared_state::persist_chunks(&mut tables, &chunks) {
            docs.chunks_lost(&chunks);
            return Err(e);
        }
        docs_changed.sort();
        docs_changed.dedup();
        (answers, peer_answers, chunks, docs_changed)
    };
    let committing = Instant::now();
    if let Err(e) = txn.commit() {
        super::lock_docs(&shared.docs).chunks_lost(&chunks);
        return Err(e.into());
    }
    if !chunks.is_empty() {
        super::lock_docs(&shared.docs).chunks_stored(&chunks);
    }
    metrics::histogram!("fusion_store_commit_seconds").record(committing.elapsed().as_secs_f64());
    if prune {
        *pruned_at_ms = now.unix_ms();
    }
    Ok(Done {
        answers,
        peer_answers,
        batch,
        docs_changed,
    })
}
