//! Kafka export: `cargo bench -p fusion-hub --bench export` (needs `tansu` on PATH; env
//! `BENCH_EVENTS`, default 50,000; `BENCH_ORDERS`, default 200).
//!
//! 1. Hub → Kafka: a hub store holding `BENCH_EVENTS` order events (order.created and
//!    inventory.reserved, as tills log them) exports them to a tansu broker: events/s until
//!    every delivery report is in and checkpointed.
//! 2. Order → Kafka record: a real node (HTTP, redb) replicating to a real hub over iroh, the
//!    hub exporting; orders placed one at a time, each timed from the POST until a consumer
//!    receives its `order.created` (p50, p99).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fusion_contracts::NodeId;
use fusion_hub::Hub;
use fusion_hub::export::{self, ExportConfig, ExportStatus};
use fusion_hub::store::HubStore;
use fusion_node::replication::{PeerLink, Role, SyncLinks};
use fusion_node::server::{self, Node};
use fusion_node::store::StoreOptions;
use fusion_sync::net::{self, EventSink};
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};

#[path = "support.rs"]
mod support;
use support::{env, order_events};

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(env("BENCH_EVENTS", 50_000), env("BENCH_ORDERS", 200)));
}

/// A tansu broker in memory on a free port; killed when dropped.
struct Broker(std::process::Child, String);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn broker(dir: &std::path::Path) -> Broker {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = std::process::Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tansu on PATH");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Broker(child, format!("127.0.0.1:{port}"))
}

async fn run(events: u64, orders: usize) {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let config = ExportConfig {
        brokers: broker.1.clone(),
        partitions: 3,
        retention_ms: 3_600_000,
        schema_registry: None,
    };
    export::create_topics(&config).await.unwrap();

    // 1. Hub → Kafka.
    let store_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(HubStore::open(store_dir.path()).unwrap());
    let origin = NodeId::new("bench-till").unwrap();
    let till = net::SecretKey::generate();
    let journal = fusion_sync::proto::VecLog::new(origin.clone(), net::journal_key(&till));
    for chunk in order_events(&origin, events).chunks(512) {
        let batch = journal.append_batch(chunk);
        store.store(till.public(), batch).await.unwrap();
    }
    let status = Arc::new(ExportStatus::default());
    let started = Instant::now();
    let task = tokio::spawn(export::run(store.clone(), config.clone(), status.clone()));
    while status.report().exported < events {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{:?}",
            status.report()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    task.abort();
    println!(
        "hub → Kafka: {events} events in {:.2} s ({:.0} events/s)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );

    // 2. Order on a node → record in Kafka.
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(hub_dir.path())
        .unwrap()
        .with_export(config.clone());
    let hub_ep = net::offline_endpoint(
        net::load_or_create_identity(hub_dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (hub_id, hub_addr) = (hub_ep.id(), hub_ep.bound_sockets()[0]);
    let node_dir = tempfile::tempdir().unwrap();
    let node = Node::open(node_dir.path(), StoreOptions::default())
        .await
        .unwrap();
    let admin = std::fs::read_to_string(&node.admin_token_path).unwrap();
    let node_ep = net::offline_endpoint(
        net::load_or_create_identity(node_dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    hub.state.store.enroll(node_ep.id(), "bench").unwrap();
    let links = Arc::new(SyncLinks {
        endpoint_id: node_ep.id(),
        peers: vec![PeerLink::new(Role::Hub, hub_id, vec![hub_addr])],
        relay: None,
    });
    let _sync = fusion_node::replication::start(node.store(), node_ep, &links);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::serve(
        listener,
        node.state.clone(),
        std::future::pending(),
    ));
    let hub = Arc::new(hub);
    {
        let hub = hub.clone();
        let hub_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(async move {
            hub.serve(hub_listener, hub_ep, std::future::pending())
                .await
        });
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "bench-latency")
        // The consumer's long-poll wait (500 ms by default) would be all we measured.
        .set("fetch.wait.max.ms", "5")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["order.created"]).unwrap();
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value, path: &'static str| {
        http.post(format!("{url}{path}"))
            .bearer_auth(admin.trim())
            .json(&body)
            .send()
    };
    post(
        serde_json::json!({ "sku": "LAT", "name": "L", "price": 1, "currency": "USD", "inventory": 1_000_000 }),
        "/products",
    )
    .await
    .unwrap();
    let mut latencies = Vec::with_capacity(orders);
    for _ in 0..orders + 1 {
        let started = Instant::now();
        let order: serde_json::Value = post(
            serde_json::json!({ "customerId": "c", "items": [{ "sku": "LAT", "quantity": 1, "price": 1 }] }),
            "/orders",
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let id = order["id"].as_str().unwrap().to_string();
        loop {
            let message = consumer.recv().await.unwrap();
            if message.key() == Some(id.as_bytes()) {
                break;
            }
        }
        latencies.push(started.elapsed());
    }
    // The first includes the consumer's group join.
    latencies.remove(0);
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "order → Kafka record ({orders} orders, one at a time): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(latencies[orders / 2]),
        ms(latencies[orders * 99 / 100]),
        ms(latencies[orders - 1])
    );
    drop(broker);
}
