//! Helpers shared by the CLI's process tests: a real `fusion node serve` on a free port,
//! running `fusion` commands to completion, a tansu broker, localstripe, and waiting for a
//! condition.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct NodeProcess {
    pub child: Child,
    pub url: String,
    pub admin: String,
}

/// Starts `fusion node serve` on a free port and waits for it to say where it listens.
pub async fn spawn_node(dir: &Path) -> NodeProcess {
    spawn_node_with(dir, &[]).await
}

pub async fn spawn_node_with(dir: &Path, extra: &[&str]) -> NodeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args(["node", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the node exited before it listened");
        if let Some((_, url)) = line.split_once("listening on ") {
            break url.trim().to_string();
        }
    };
    // Keep draining stdout so the node never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let admin = std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    NodeProcess { child, url, admin }
}

impl NodeProcess {
    pub async fn sigkill(mut self) {
        self.child.start_kill().unwrap(); // SIGKILL on Unix
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, then the exit: it must be a clean 0 within the drain time.
    pub async fn sigterm(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the node drains within 30 s")
            .unwrap();
        assert!(status.success(), "exit after SIGTERM: {status}");
    }

    pub async fn get(&self, http: &reqwest::Client, path: &str) -> (StatusCode, Value) {
        let response = http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

/// Runs the `fusion` binary to completion; returns its exit code and stdout.
pub fn fusion(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// A `fusion hub serve` process.
pub struct HubProcess {
    pub child: Child,
    /// Its HTTP API.
    pub url: String,
    /// Its sync endpoint as nodes pass it to `--hub` (`ENDPOINT_ID@IP:PORT`).
    pub endpoint: String,
}

/// Starts `fusion hub serve --data-dir DIR ARGS…` (pass `--listen` and `--sync-bind` in `args`)
/// and waits until it says where it serves; its stdout is drained after.
pub async fn spawn_hub(dir: &Path, args: &[&str]) -> HubProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args(["hub", "serve", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut endpoint) = (None, None);
    while url.is_none() || endpoint.is_none() {
        let line = lines.next_line().await.unwrap().expect("the hub exited");
        if let Some((_, u)) = line.split_once("listening on ") {
            url = Some(u.trim().to_string());
        }
        if let Some((_, e)) = line.split_once("sync endpoint: ") {
            endpoint = Some(e.trim().to_string());
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    HubProcess {
        child,
        url: url.unwrap(),
        endpoint: endpoint.unwrap(),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// tansu on a fixed port with sqlite storage in `dir`: data survives a restart.
pub fn start_broker(dir: &Path, port: u16) -> std::process::Child {
    let url = format!("tcp://127.0.0.1:{port}");
    let child = std::process::Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu is installed (./test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A localstripe process (a Stripe emulator) on a free port; `./test.sh` installs it.
pub struct LocalStripe {
    child: std::process::Child,
    pub url: String,
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_localstripe() -> LocalStripe {
    let port = free_port();
    let child = std::process::Command::new("python3")
        .args(["-m", "localstripe", "--from-scratch", "--port"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("localstripe is installed (./test.sh installs it)");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http
            .get(format!("{url}/v1/customers"))
            .basic_auth("sk_test_fusion", None::<&str>)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "localstripe did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    LocalStripe { child, url }
}

pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await {
            Ok(()) => return,
            Err(state) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}: {state}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}
