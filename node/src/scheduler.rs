//! The durable scheduler: closes campaigns when they end. Its only state is the store's `timers`
//! table (written in the same commit as the campaign), so a node that was down at a campaign's end
//! closes it on the next start; closing is idempotent, so asking twice is harmless.

use std::time::Duration;

use fusion_contracts::commands::{CampaignCommand, CloseCampaign};
use fusion_contracts::{CampaignId, CorrelationId};
use uuid::Uuid;

use crate::store::{Command, Store, StoreError, WriteRequest};

/// Longest sleep between looks at the timers: a campaign created while the scheduler sleeps is
/// closed at most this long after its end.
const POLL_MAX: Duration = Duration::from_secs(1);
/// Pause after a close that failed (store error), so a broken disk is not hammered.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Runs until `shutdown` resolves.
pub async fn run(store: Store, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    tracing::debug!("scheduler started");
    loop {
        let wait = match tick(&store).await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::warn!(%error, "scheduler could not close a campaign; retrying");
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

/// Closes every campaign that has ended; returns how long to sleep before the next look.
async fn tick(store: &Store) -> Result<Duration, StoreError> {
    loop {
        let Some((due, campaign_id)) = store.read()?.next_campaign_end()? else {
            return Ok(POLL_MAX);
        };
        let now = store.now();
        if due > now {
            let until_due = Duration::from_millis((due.unix_ms() - now.unix_ms()) as u64);
            return Ok(until_due.min(POLL_MAX));
        }
        close(store, campaign_id).await?;
        if store.read()?.next_campaign_end()? == Some((due, campaign_id)) {
            // The writer's clock is behind ours; look again shortly instead of spinning.
            return Ok(Duration::from_millis(10));
        }
    }
}

async fn close(store: &Store, campaign_id: CampaignId) -> Result<(), StoreError> {
    let request = WriteRequest {
        command: Command::Campaign(CampaignCommand::CloseCampaign(CloseCampaign {
            campaign_id,
        })),
        correlation_id: CorrelationId::new("scheduler").expect("valid correlation id"),
        command_id: Uuid::now_v7(),
        idempotency: None,
    };
    let applied = store.write(request).await?;
    match applied.decision {
        Ok(_) => tracing::info!(%campaign_id, "campaign end handled"),
        Err(rejected) => {
            tracing::error!(%campaign_id, %rejected, "a timer names a campaign that cannot close")
        }
    }
    Ok(())
}
