//! systemd integration for the daemons (`Type=notify`): `READY=1` once the daemon serves,
//! `WATCHDOG=1` at half of `WatchdogSec` while it is healthy, `STOPPING=1` when it starts to
//! drain. Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn notify(state: NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(false, &[state]) {
        tracing::warn!(%error, "could not notify systemd");
    }
}

/// The daemon serves: its listeners are bound and its store is open.
pub fn ready() {
    notify(NotifyState::Ready);
}

/// The daemon drains: in-flight work finishes, then it exits.
pub fn stopping() {
    notify(NotifyState::Stopping);
}

/// Pings systemd's watchdog at half its interval for as long as `healthy()` holds; a daemon that
/// stops answering (or whose store writer died) is restarted by systemd. Does nothing when the
/// unit has no `WatchdogSec`.
pub fn spawn_watchdog(healthy: impl Fn() -> bool + Send + 'static) {
    let Some(usec) = watchdog_usec() else {
        return;
    };
    let period = Duration::from_micros(usec / 2);
    tracing::info!(?period, "pinging the systemd watchdog");
    tokio::spawn(async move {
        loop {
            if healthy() {
                notify(NotifyState::Watchdog);
            } else {
                tracing::error!("unhealthy: not pinging the watchdog");
            }
            tokio::time::sleep(period).await;
        }
    });
}

/// The watchdog interval systemd asks for, as `sd_watchdog_enabled(3)` reads it:
/// `WATCHDOG_USEC`, and `WATCHDOG_PID` when it is set must name this process.
fn watchdog_usec() -> Option<u64> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then_some(usec)
}
