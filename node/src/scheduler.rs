//! The durable scheduler: fires the node's timers — campaign ends (close the campaign) and
//! payment holds of unpaid orders (cancel the order, releasing its stock). Its only state is the
//! store's `timers` and `order_holds` tables (written in the same commit as what they time), so a
//! node that was down when a timer fell due fires it on the next start; both commands do nothing
//! when asked twice.

use std::time::Duration;

use fusion_contracts::commands::{CampaignCommand, CloseCampaign, ExpireHold, OrderCommand};
use fusion_contracts::{CampaignId, CorrelationId, OrderId, Timestamp};
use uuid::Uuid;

use crate::store::{Command, Store, StoreError, WriteRequest};

/// Longest sleep between looks at the timers: a timer added while the scheduler sleeps fires at
/// most this long after it falls due.
const POLL_MAX: Duration = Duration::from_secs(1);
/// Pause after a failed write (store error), so a broken disk is not hammered.
const RETRY_AFTER: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    CampaignEnd(CampaignId),
    OrderHold(OrderId),
}

/// Runs until `shutdown` resolves.
pub async fn run(store: Store, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    tracing::debug!("scheduler started");
    loop {
        let wait = match tick(&store).await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::warn!(%error, "scheduler could not fire a timer; retrying");
                RETRY_AFTER
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => {
                tracing::debug!("scheduler stopped");
                return;
            }
        }
    }
}

/// The earliest timer of either kind.
fn next_due(store: &Store) -> Result<Option<(Timestamp, Due)>, StoreError> {
    let read = store.read()?;
    let campaign = read
        .next_campaign_end()?
        .map(|(at, id)| (at, Due::CampaignEnd(id)));
    let hold = read
        .next_order_hold()?
        .map(|(at, id)| (at, Due::OrderHold(id)));
    Ok([campaign, hold]
        .into_iter()
        .flatten()
        .min_by_key(|(at, _)| *at))
}

/// Fires every timer that is due; returns how long to sleep before the next look.
async fn tick(store: &Store) -> Result<Duration, StoreError> {
    loop {
        let Some((at, due)) = next_due(store)? else {
            return Ok(POLL_MAX);
        };
        let now = store.now();
        if at > now {
            return Ok(Duration::from_millis((at.unix_ms() - now.unix_ms()) as u64).min(POLL_MAX));
        }
        fire(store, due).await?;
        if next_due(store)? == Some((at, due)) {
            // The writer's clock is behind ours; look again shortly instead of spinning.
            return Ok(Duration::from_millis(10));
        }
    }
}

async fn fire(store: &Store, due: Due) -> Result<(), StoreError> {
    let command = match due {
        Due::CampaignEnd(campaign_id) => {
            Command::Campaign(CampaignCommand::CloseCampaign(CloseCampaign {
                campaign_id,
            }))
        }
        Due::OrderHold(order_id) => {
            Command::Order(OrderCommand::ExpireHold(ExpireHold { order_id }))
        }
    };
    let request = WriteRequest {
        command,
        correlation_id: CorrelationId::new("scheduler").expect("valid correlation id"),
        command_id: Uuid::now_v7(),
        idempotency: None,
    };
    match store.write(request).await?.decision {
        Ok(_) => tracing::info!(?due, "timer fired"),
        Err(rejected) => {
            tracing::error!(?due, %rejected, "a timer names something that cannot be acted on")
        }
    }
    Ok(())
}
