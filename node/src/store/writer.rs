//! The writer thread: group commit. It takes the first queued command, drains whatever else is
//! queued (up to `BATCH_JOBS_MAX`), applies them all in one write transaction, commits durably,
//! and then answers every caller. One fsync is shared by the whole batch.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::exec::{self, Batch, Tables};
use super::{Applied, BATCH_JOBS_MAX, Shared, StoreError, WriteRequest, last_seq};

/// How often expired idempotency keys are pruned.
const PRUNE_INTERVAL_MS: i64 = 60_000;

// Shutdown is sent once per process; boxing every write instead would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    Write(Job),
    /// Finish what is queued, then stop.
    Shutdown,
}

pub(super) struct Job {
    pub request: WriteRequest,
    pub reply: oneshot::Sender<Result<Applied, StoreError>>,
}

pub(super) fn run(shared: &Shared, mut rx: mpsc::Receiver<Msg>) {
    let mut pruned_at_ms = 0;
    loop {
        // After close(), the receiver still yields what was queued, then None.
        let first = match rx.blocking_recv() {
            None => break,
            Some(Msg::Shutdown) => {
                rx.close();
                continue;
            }
            Some(Msg::Write(job)) => job,
        };
        let mut jobs = vec![first];
        while jobs.len() < BATCH_JOBS_MAX {
            match rx.try_recv() {
                Ok(Msg::Write(job)) => jobs.push(job),
                Ok(Msg::Shutdown) => rx.close(),
                Err(_) => break,
            }
        }
        commit_batch(shared, jobs, &mut pruned_at_ms);
    }
    shared
        .writer_alive
        .store(false, std::sync::atomic::Ordering::Release);
    tracing::info!("store writer stopped");
}

fn commit_batch(shared: &Shared, jobs: Vec<Job>, pruned_at_ms: &mut i64) {
    let started = Instant::now();
    let n = jobs.len();
    match apply_batch(shared, &jobs, pruned_at_ms) {
        Ok((answers, batch)) => {
            // Token changes become visible to authentication only once committed.
            batch.publish_token_changes(&shared.tokens);
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.reply.send(Ok(answer));
            }
            metrics::counter!("fusion_events_appended_total").increment(batch.events_appended);
            if batch.events_appended > 0 {
                shared.appended.notify_waiters();
            }
        }
        Err(error) => {
            tracing::error!(%error, commands = n, "write batch failed; none of its commands was committed");
            for job in jobs {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
    metrics::histogram!("fusion_store_batch_commands").record(n as f64);
    metrics::histogram!("fusion_store_batch_seconds").record(started.elapsed().as_secs_f64());
}

fn apply_batch(
    shared: &Shared,
    jobs: &[Job],
    pruned_at_ms: &mut i64,
) -> Result<(Vec<Applied>, Batch), StoreError> {
    let now = (shared.clock)();
    let txn = shared.db.begin_write()?;
    let mut batch = Batch::new(
        shared.node_id.clone(),
        now,
        shared.rates.clone(),
        shared.order_hold_ms,
    );
    let prune = now.unix_ms() - *pruned_at_ms >= PRUNE_INTERVAL_MS;
    let answers = {
        let mut tables = Tables::open(&txn)?;
        batch.next_seq = last_seq(&tables.events)? + 1;
        let answers = jobs
            .iter()
            .map(|job| exec::run(&mut tables, &mut batch, &job.request))
            .collect::<Result<Vec<_>, _>>()?;
        if prune {
            exec::prune_idempotency(&mut tables, now)?;
        }
        answers
    };
    let committing = Instant::now();
    txn.commit()?;
    metrics::histogram!("fusion_store_commit_seconds").record(committing.elapsed().as_secs_f64());
    if prune {
        *pruned_at_ms = now.unix_ms();
    }
    Ok((answers, batch))
}
