//! The payment follow-up worker: settles card payments the provider has not answered. Its work
//! list is the store's `payment_followups` table, so a crash or an outage loses nothing.
//!
//! - pending: asks the provider again (same idempotency key: the same payment at the provider);
//!   still no answer after the timeout → failed (BR-007);
//! - offline-approved: forwards it to the provider once reachable → succeeded, or failed and the
//!   order flagged;
//! - of a cancelled order: voids an authorization, refunds a capture;
//! - owed a refund by a return to the original tenders: refunds it.

use std::time::Duration;

use fusion_contracts::commands::{
    ExpirePending, PaymentCommand, RecordCardOutcome, RecordRefund, RecordVoid,
};
use fusion_contracts::events::OrderStatus;
use fusion_contracts::events::payments::PaymentStatus;
use fusion_contracts::{CorrelationId, Money, PaymentId};
use uuid::Uuid;

use crate::api::AppState;
use crate::card::{CardProvider, ProviderError, authorize_payment};
use crate::store::{Command, StoreError, WriteRequest};

/// Pause between rounds; a payment's timeout is enforced within this much.
const ROUND_INTERVAL: Duration = Duration::from_millis(500);
/// Most payments followed up in one round: bounds the provider calls a round makes.
const PAYMENTS_PER_ROUND: usize = 100;

/// Runs until `shutdown` resolves; does nothing on a node without a card provider.
pub async fn run(state: AppState, shutdown: impl std::future::Future<Output = ()>) {
    let Some(provider) = state.card.clone() else {
        return;
    };
    tokio::pin!(shutdown);
    loop {
        if let Err(error) = round(&state, provider.as_ref()).await {
            tracing::warn!(%error, "payment follow-up round failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND_INTERVAL) => {}
            _ = &mut shutdown => return,
        }
    }
}

async fn round(state: &AppState, provider: &dyn CardProvider) -> Result<(), StoreError> {
    for id in state.store.read()?.payment_followups(PAYMENTS_PER_ROUND)? {
        follow_up(state, provider, id).await?;
    }
    Ok(())
}

/// One round for payment `id` (also run by a return right after it commits, so a card refund
/// it owes usually happens before its answer).
pub(crate) async fn follow_up(
    state: &AppState,
    provider: &dyn CardProvider,
    id: PaymentId,
) -> Result<(), StoreError> {
    let _serial = state.payment_lock(id).lock().await;
    let read = state.store.read()?;
    let Some(payment) = read.payment(id)? else {
        return Ok(());
    };
    let cancelled = read
        .order(payment.order_id)?
        .is_some_and(|o| o.status == OrderStatus::Cancelled);
    let owed = read.refund_owed(id)?;
    drop(read);
    let provider_ref = payment.provider_ref.clone().unwrap_or_default();
    let command = match payment.status {
        // The order was cancelled: release what the provider holds, return what it took.
        PaymentStatus::Authorized if cancelled => {
            match provider.void(&provider_ref, &format!("{id}-void")).await {
                Ok(()) => PaymentCommand::RecordVoid(RecordVoid {
                    payment_id: id,
                    reason: "order cancelled".into(),
                }),
                Err(_) => return Ok(()),
            }
        }
        // All of a cancelled order's capture; a return's part, to the card it was paid with.
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded if cancelled || owed > 0 => {
            let left = payment.captured_minor - payment.refunded_minor;
            let amount = Money {
                minor: if cancelled { left } else { owed.min(left) },
                currency: payment.amount.currency,
            };
            // Keyed by what was refunded before: a retry is the same refund at the provider.
            let key = format!("{id}-refund-{}", payment.refunded_minor);
            match provider.refund(&provider_ref, amount, &key).await {
                Ok(refund) => PaymentCommand::RecordRefund(RecordRefund {
                    payment_id: id,
                    amount,
                    provider_ref: Some(refund),
                }),
                Err(error) => {
                    tracing::warn!(payment_id = %id, %error, "a card refund is still owed");
                    return Ok(());
                }
            }
        }
        PaymentStatus::Pending => {
            let now = state.store.now();
            let timeout_ms = state.payment_policy.pending_timeout.as_millis() as i64;
            if now.unix_ms() - payment.created_at.unix_ms() >= timeout_ms {
                PaymentCommand::ExpirePending(ExpirePending {
                    payment_id: id,
                    created_before: now.plus_ms(-timeout_ms),
                })
            } else {
                match authorize_payment(provider, &payment, payment.capture).await {
                    Ok(outcome) => PaymentCommand::RecordCardOutcome(RecordCardOutcome {
                        payment_id: id,
                        outcome,
                    }),
                    Err(ProviderError::Unreachable(_) | ProviderError::Refused(_)) => return Ok(()),
                }
            }
        }
        PaymentStatus::OfflineApproved => match authorize_payment(provider, &payment, true).await {
            Ok(outcome) => PaymentCommand::RecordCardOutcome(RecordCardOutcome {
                payment_id: id,
                outcome,
            }),
            Err(_) => return Ok(()),
        },
        _ => return Ok(()),
    };
    let request = WriteRequest {
        command: Command::Payment(command),
        correlation_id: CorrelationId::new(format!("payment-{id}"))
            .expect("a uuid makes a valid correlation id"),
        command_id: Uuid::now_v7(),
        idempotency: None,
    };
    let applied = state.store.write(request).await?;
    if let Ok(crate::store::Outcome::Payment(p)) = &applied.decision {
        tracing::info!(payment_id = %id, status = ?p.status, "card payment followed up");
    }
    Ok(())
}
