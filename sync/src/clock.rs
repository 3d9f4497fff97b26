//! The wall clock, read here and nowhere below: `fusion-contracts` and the rulebook never read
//! it (time reaches them as an argument), and the node's writer and the hub's store take a
//! [`Clock`] so tests can pass a fixed one.

use std::sync::Arc;

use fusion_contracts::Timestamp;

/// Source of wall-clock time (tests pass a fixed clock).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system's clock.
pub fn system_clock() -> Clock {
    Arc::new(now)
}

/// The wall clock now (the Unix epoch if the clock is before it).
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_unix_ms(ms)
}
