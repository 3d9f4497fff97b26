//! Helpers shared by the hub's integration tests.

use std::time::{Duration, Instant};

use fusion_contracts::events::StockAdjusted;
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, Sku, Timestamp};
use fusion_sync::proto::VecLog;

/// Appends `n` stock adjustments to `log`, numbered on from its last seq.
pub fn append(log: &VecLog, n: u64) {
    let first = log.next_seq();
    log.extend((first..first + n).map(|seq| {
        let event = Event::StockAdjusted(StockAdjusted {
            sku: Sku::new("SKU").unwrap(),
            previous_quantity: seq - 1,
            quantity: seq,
            delta: 1,
            reason: "hub test".into(),
        });
        Envelope::new(
            EventId::from_u128(seq.into()),
            log.origin().clone(),
            seq,
            Timestamp::from_unix_ms(seq as i64),
            CorrelationId::new("hub-test").unwrap(),
            None,
            event,
        )
        .unwrap()
        .encode()
    }));
}

pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
