//! Throughput and latency of a real node process, plus the raw redb group-commit ceiling.
//!
//! `cargo bench -p fusion-cli --bench throughput` (env: `BENCH_SECONDS`, default 10;
//! `BENCH_CONNECTIONS`, default 64). It starts the release `fusion` binary on a temp data dir and
//! drives it with closed-loop keep-alive HTTP/1.1 connections (one request in flight each), then
//! prints a markdown table for docs/BENCHMARKS.md. The load generator shares the machine with the
//! node, as `wrk` would; the node's own CPU time per phase is reported from /proc.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use redb::{Database, TableDefinition};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

static JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Requests per connection to run before measuring (connection setup, caches, allocator).
const WARMUP: Duration = Duration::from_secs(2);

struct Phase {
    name: String,
    requests: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
    node_cpu_s: Option<f64>,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = env_number("BENCH_SECONDS", 10);
    let connections = env_number("BENCH_CONNECTIONS", 64) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(Duration::from_secs(seconds), connections));
}

async fn run(duration: Duration, connections: usize) {
    let dir = tempfile::tempdir().unwrap();
    let ceiling = redb_group_commit(dir.path(), duration, connections).await;

    let node_dir = dir.path().join("node");
    let (mut child, addr) = start_node(&node_dir).await;
    let pid = child.id().unwrap();
    let token = std::fs::read_to_string(node_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let product_ids = seed(addr, &token).await;

    let order = br#"{"customerId":"bench","items":[{"sku":"B0","quantity":1,"price":1.25},{"sku":"B1","quantity":1,"price":2.5},{"sku":"B2","quantity":1,"price":0.1}]}"#;
    let mut phases = vec![ceiling];
    phases.push(
        load(
            addr,
            &token,
            pid,
            "POST /orders (3 lines, durable)",
            duration,
            connections,
            |_| ("POST", "/orders".to_string(), Some(order.as_slice()), 201),
        )
        .await,
    );
    // The same orders, taxed (20 %) and priced by one promotion (10 % off B0), back to back with
    // the untaxed run: what tax and promotions cost the order path.
    for (path, body) in [
        (
            "/settings",
            r#"{"taxes":{"pricesIncludeTax":false,"rates":{"standard":20}}}"#,
        ),
        (
            "/promotions",
            r#"{"name":"Bench promotion","kind":"percentOff","percent":10,"skus":["B0"]}"#,
        ),
    ] {
        let method = if path == "/settings" { "PATCH" } else { "POST" };
        let (status, answer) = Conn::open(addr)
            .await
            .send(method, path, &token, Some(body.as_bytes()))
            .await;
        assert!(
            status == 200 || status == 201,
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    phases.push(
        load(
            addr,
            &token,
            pid,
            "POST /orders (3 lines, taxed, a promotion)",
            duration,
            connections,
            |_| ("POST", "/orders".to_string(), Some(order.as_slice()), 201),
        )
        .await,
    );
    let ids = Arc::new(product_ids);
    let by_id = ids.clone();
    phases.push(
        load(
            addr,
            &token,
            pid,
            "GET /products/{id}",
            duration,
            connections,
            move |i| {
                (
                    "GET",
                    format!("/products/{}", by_id[i % by_id.len()]),
                    None,
                    200,
                )
            },
        )
        .await,
    );
    phases.push(
        load(
            addr,
            &token,
            pid,
            "GET /products (page of 50)",
            duration,
            connections,
            |_| ("GET", "/products?limit=50".to_string(), None, 200),
        )
        .await,
    );
    let (_, metrics) = Conn::open(addr)
        .await
        .send("GET", "/metrics", &token, None)
        .await;
    print_writer_stats(&String::from_utf8_lossy(&metrics));
    child.start_kill().unwrap();
    let _ = child.wait().await;

    println!("\n| workload | requests/s | p50 | p99 | node CPU |");
    println!("|---|---:|---:|---:|---:|");
    for p in &phases {
        let cpu = p
            .node_cpu_s
            .map(|c| format!("{:.0} %", 100.0 * c / p.seconds))
            .unwrap_or_else(|| "—".into());
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            p.name,
            p.requests as f64 / p.seconds,
            p.p50_us as f64 / 1000.0,
            p.p99_us as f64 / 1000.0,
            cpu
        );
    }
    println!(
        "\n{connections} connections, {} s per workload after {} s warm-up",
        duration.as_secs(),
        WARMUP.as_secs()
    );
}

/// The ceiling: `connections` writers, one writer thread, one redb transaction per batch of
/// whatever is queued, durable commit, then every writer is answered. Each write inserts one
/// 128-byte row, about the size of one order's smallest table row.
async fn redb_group_commit(dir: &Path, duration: Duration, connections: usize) -> Phase {
    const ROWS: TableDefinition<u64, &[u8]> = TableDefinition::new("rows");
    let db = Database::create(dir.join("ceiling.redb")).unwrap();
    let (tx, mut rx) = mpsc::channel::<oneshot::Sender<Instant>>(16 * 1024);
    let writer = std::thread::spawn(move || {
        let mut key = 0u64;
        let mut batches = 0u64;
        while let Some(first) = rx.blocking_recv() {
            let mut replies = vec![first];
            while let Ok(r) = rx.try_recv() {
                replies.push(r);
            }
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(ROWS).unwrap();
                for _ in &replies {
                    key += 1;
                    table.insert(key, [7u8; 128].as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
            batches += 1;
            let now = Instant::now();
            for r in replies {
                let _ = r.send(now);
            }
        }
        (key, batches)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (tx, stop) = (tx.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let (reply, done) = oneshot::channel();
                let sent = Instant::now();
                tx.send(reply).await.unwrap();
                done.await.unwrap();
                if sent.duration_since(started) >= WARMUP {
                    latencies.push(sent.elapsed().as_micros() as u64);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(WARMUP + duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    drop(tx);
    let (_, batches) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    latencies.sort_unstable();
    eprintln!("raw redb: {} batches", batches);
    Phase {
        name: "raw redb group commit (ceiling)".into(),
        requests: latencies.len() as u64,
        seconds: duration.as_secs_f64(),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        node_cpu_s: None,
    }
}

async fn start_node(dir: &Path) -> (tokio::process::Child, SocketAddr) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args([
            "node",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store-id",
            "bench",
            "--data-dir",
        ])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next_line().await.unwrap().expect("node exited");
        if let Some((_, url)) = line.split_once("listening on http://") {
            break url.trim().parse().unwrap();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// 50 products (a full page); B0..B2 carry stock for a billion orders.
async fn seed(addr: SocketAddr, token: &str) -> Vec<String> {
    let mut conn = Conn::open(addr).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        let body = format!(
            r#"{{"sku":"B{i}","name":"Bench product {i}","description":"a product used by the benchmark","price":1.25,"currency":"USD","inventory":1000000000}}"#
        );
        let (status, body) = conn
            .send("POST", "/products", token, Some(body.as_bytes()))
            .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids
}

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Conn {
            sender,
            host: HeaderValue::from_str(&addr.to_string()).unwrap(),
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&[u8]>,
    ) -> (u16, Bytes) {
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        self.send_with(
            method,
            path,
            &auth,
            body.map(Bytes::copy_from_slice).unwrap_or_default(),
        )
        .await
    }

    /// The lean path of the load loops: headers prepared once, the body shared, not copied.
    async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        auth: &HeaderValue,
        body: Bytes,
    ) -> (u16, Bytes) {
        self.sender.ready().await.unwrap();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, auth.clone())
            .header(CONTENT_TYPE, JSON.clone())
            .body(Full::new(body))
            .unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    }
}

type Make = dyn Fn(usize) -> (&'static str, String, Option<&'static [u8]>, u16) + Send + Sync;

async fn load(
    addr: SocketAddr,
    token: &str,
    pid: u32,
    name: &str,
    duration: Duration,
    connections: usize,
    make: impl Fn(usize) -> (&'static str, String, Option<&'static [u8]>, u16) + Send + Sync + 'static,
) -> Phase {
    let make: Arc<Make> = Arc::new(make);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (make, stop, measuring, errors, token) = (
            make.clone(),
            stop.clone(),
            measuring.clone(),
            errors.clone(),
            token.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let auth = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
            let mut latencies = Vec::new();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let (method, path, body, expected) = make(i);
                i += connections;
                let started = Instant::now();
                let body = body.map(Bytes::from_static).unwrap_or_default();
                let (status, _) = conn.send_with(method, &path, &auth, body).await;
                if status != expected {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(started.elapsed().as_micros() as u64);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(WARMUP).await;
    let cpu_before = node_cpu_seconds(pid);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = node_cpu_seconds(pid);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort_unstable();
    let errors = errors.load(Ordering::Relaxed);
    assert_eq!(
        errors, 0,
        "{name}: {errors} answers had an unexpected status"
    );
    eprintln!("{name}: {} requests", latencies.len());
    Phase {
        name: name.to_string(),
        requests: latencies.len() as u64,
        seconds,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        node_cpu_s: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
    }
}

/// Mean group-commit batch size and commit time over the whole run, from the node's /metrics.
fn print_writer_stats(metrics: &str) {
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let batches = value("fusion_store_batch_commands_count");
    let commands = value("fusion_store_batch_commands_sum");
    let batch_s = value("fusion_store_batch_seconds_sum");
    let commit_s = value("fusion_store_commit_seconds_sum");
    eprintln!(
        "writer: {batches:.0} batches, {:.1} commands per batch, {:.3} ms per batch: {:.3} ms apply, {:.3} ms commit",
        commands / batches,
        1000.0 * batch_s / batches,
        1000.0 * (batch_s - commit_s) / batches,
        1000.0 * commit_s / batches
    );
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// User + system CPU seconds of a process, from /proc/PID/stat (Linux, 100 ticks/s).
fn node_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
