//! The systemd units and the daemons' side of `Type=notify`: both units pass
//! `systemd-analyze verify`; each daemon, given a `NOTIFY_SOCKET` the test listens on, sends
//! `READY=1` once it serves, then `WATCHDOG=1` at half the watchdog interval, and `STOPPING=1` on
//! SIGTERM before it exits 0.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;
use tokio::process::Command;

const UNITS: [&str; 2] = ["fusion-node.service", "fusion-hub.service"];

#[test]
fn units_pass_systemd_analyze_verify() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let dir = tempfile::tempdir().unwrap();
    for unit in UNITS {
        // Verify the unit as installed, with the binary at the path this build put it.
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        assert!(
            text.contains("Type=notify") && text.contains("WatchdogSec="),
            "{unit}"
        );
        let text = text.replace("/usr/local/bin/fusion", env!("CARGO_BIN_EXE_fusion"));
        let path = dir.path().join(unit);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze is installed (./test.sh installs systemd)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{unit}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs the daemon `args` under a fake systemd: returns the notifications it sent, in order,
/// until it exited after SIGTERM (exit code checked).
async fn notifications(args: &[&str], data_dir: &Path) -> Vec<String> {
    let socket_dir = tempfile::tempdir().unwrap();
    let socket_path = socket_dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut termed = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, socket.recv(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("notifications so far: {received:?}"))
            .unwrap();
        let message = String::from_utf8_lossy(&buffer[..n]).trim().to_string();
        received.push(message.clone());
        // Two watchdog pings show the period; then ask it to stop.
        if !termed && received.iter().filter(|m| *m == "WATCHDOG=1").count() == 2 {
            let pid = child.id().unwrap().to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
            assert!(sent.unwrap().success());
            termed = true;
        }
        if message == "STOPPING=1" {
            break;
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    received
}

fn assert_lifecycle(received: &[String]) {
    assert_eq!(
        received.first().map(String::as_str),
        Some("READY=1"),
        "{received:?}"
    );
    assert_eq!(
        received.last().map(String::as_str),
        Some("STOPPING=1"),
        "{received:?}"
    );
    let pings = received.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 2, "{received:?}");
    assert!(
        received
            .iter()
            .all(|m| ["READY=1", "WATCHDOG=1", "STOPPING=1"].contains(&m.as_str())),
        "{received:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let received = notifications(&["node", "serve", "--listen", "127.0.0.1:0"], dir.path()).await;
    assert_lifecycle(&received);
    // Two pings at half of a one-second watchdog: well under the 30 s bound above.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let received = notifications(
        &[
            "hub",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sync-bind",
            "127.0.0.1:0",
        ],
        dir.path(),
    )
    .await;
    assert_lifecycle(&received);
}
