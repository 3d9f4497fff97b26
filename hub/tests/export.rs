//! Kafka export end to end: two real nodes → the hub over iroh → a real Kafka-protocol broker
//! (tansu, started here; `./test.sh` installs it) → a consumer in the test reads every event
//! exactly once by `event_id`, with the right topic, key, headers and per-key order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fusion_hub::Hub;
use fusion_hub::export::{ExportConfig, topics};
use fusion_node::replication::{PeerLink, Role};
use fusion_sync::net;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use serde_json::json;

mod common;
use common::Till;

/// A tansu broker on a free port, in memory, killed on drop.
struct Broker {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    // The broker validates every record against the hub's schemas.
    let schemas = dir.path().join("schemas");
    std::fs::create_dir(&schemas).unwrap();
    for (topic, schema) in fusion_hub::export::broker_schemas() {
        std::fs::write(schemas.join(format!("{topic}.json")), schema.to_string()).unwrap();
    }
    let child = std::process::Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
            "--schema-registry",
            "file://./schemas",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tansu is installed (./test.sh installs it)");
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "tansu did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker {
        child,
        addr,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_to_kafka_exactly_once_in_key_order() {
    let broker = start_broker();
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(hub_dir.path())
        .unwrap()
        .with_export(ExportConfig {
            brokers: broker.addr.clone(),
            partitions: 3,
            retention_ms: 86_400_000,
            schema_registry: None,
        });
    let hub_ep = net::offline_endpoint(
        net::load_or_create_identity(hub_dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let hub_addr = hub_ep.bound_sockets()[0];
    let hub_id = hub_ep.id();
    let mut tills = Vec::new();
    let mut dirs = Vec::new();
    for store in ["store-a", "store-b"] {
        let dir = tempfile::tempdir().unwrap();
        let ep = net::offline_endpoint(
            net::load_or_create_identity(dir.path()).unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        hub.state.store.enroll(ep.id(), store).unwrap();
        let till = Till::start(
            dir.path(),
            ep,
            vec![PeerLink::new(Role::Hub, hub_id, vec![hub_addr])],
        )
        .await;
        tills.push(till);
        dirs.push(dir);
    }
    let hub = Arc::new(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.serve(listener, hub_ep, std::future::pending())
                .await
                .unwrap()
        });
    }

    // Each till: a product, 40 orders, a cancellation.
    for (i, till) in tills.iter().enumerate() {
        let sku = format!("SKU-{i}");
        let (status, _) = till
            .api
            .call(
                reqwest::Method::POST,
                "/products",
                Some(json!({ "sku": sku, "name": "P", "price": 2, "currency": "USD", "inventory": 100 })),
            )
            .await;
        assert_eq!(status, 201);
        let mut last = String::new();
        for _ in 0..40 {
            let (status, order) = till
                .api
                .call(
                    reqwest::Method::POST,
                    "/orders",
                    Some(json!({ "customerId": "c", "items": [{ "sku": sku, "quantity": 1, "price": 2 }] })),
                )
                .await;
            assert_eq!(status, 201);
            last = order["id"].as_str().unwrap().to_string();
        }
        let (status, _) = till
            .api
            .call(
                reqwest::Method::POST,
                &format!("/orders/{last}/cancel"),
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    // Everything reaches the hub, then Kafka.
    let expected: u64 = tills
        .iter()
        .map(|t| t.store.read().unwrap().last_seq().unwrap())
        .sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.state.export.report().exported < expected {
        assert!(
            Instant::now() < deadline,
            "exported {:?} of {expected}",
            hub.state.export.report()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", format!("test-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&topics()).unwrap();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // (topic, origin, key) → last seq seen: each key's events of a topic arrive in log order.
    let mut order: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let fleet: BTreeMap<String, fusion_contracts::Envelope> = tills
        .iter()
        .flat_map(|t| t.store.read().unwrap().events_after(0, usize::MAX).unwrap())
        .map(|e| (e.event_id.to_string(), e))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < expected {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {expected}",
            seen.len()
        );
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
        else {
            continue;
        };
        let header = |name: &str| {
            message.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == name)
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).to_string())
            })
        };
        let event_id = header("event_id").expect("event_id header");
        let Some(envelope) = fleet.get(&event_id) else {
            // The hub's own journal (its enrollments of the tills) is exported too; which
            // partition the consumer reads first is the broker's business.
            let origin = header("origin").unwrap_or_default();
            assert!(
                tills.iter().all(|t| t.store.node_id().as_str() != origin),
                "{event_id} of till {origin} is not in its log"
            );
            continue;
        };
        assert!(seen.insert(event_id.clone()), "{event_id} twice");
        assert_eq!(message.topic(), envelope.topic());
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        assert_eq!(key, envelope.key());
        assert_eq!(header("origin").unwrap(), envelope.origin.as_str());
        assert_eq!(header("seq").unwrap(), envelope.seq.to_string());
        assert_eq!(
            header("correlation_id").unwrap(),
            envelope.correlation_id.as_str()
        );
        assert_eq!(header("content-type").unwrap(), "application/json");
        let payload: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap()).unwrap();
        let want: serde_json::Value =
            serde_json::from_str(envelope.event.payload_json().unwrap().get()).unwrap();
        assert_eq!(payload, want);
        let last = order
            .entry((
                message.topic().to_string(),
                envelope.origin.to_string(),
                key,
            ))
            .or_insert(0);
        assert!(envelope.seq > *last, "per-key order broken");
        *last = envelope.seq;
    }
    assert_eq!(seen.len(), fleet.len());
    let (_, status) = ((), hub.state.export.report());
    assert_eq!(status.brokers.as_deref(), Some(broker.addr.as_str()));

    // The fleet's sales: per store, 40 orders created, one cancelled, 2 USD each.
    let sales = hub.state.store.sales().unwrap();
    assert_eq!(sales.len(), 2, "{sales:?}");
    for (row, store) in sales.iter().zip(["store-a", "store-b"]) {
        assert_eq!(
            (row.store_id.as_str(), row.orders, row.total.minor),
            (store, 39, 7_800)
        );
    }

    // The broker holds the hub's schemas: a malformed record is refused, a valid one accepted.
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let send = |value: &'static str| {
        producer.send(
            rdkafka::producer::FutureRecord::to("order.created")
                .key("k")
                .payload(value),
            Duration::from_secs(5),
        )
    };
    let refused = send(r#"{"orderId": 5}"#).await;
    assert!(refused.is_err(), "a malformed order.created was accepted");
    let (_, sample) = fleet
        .values()
        .find(|e| e.topic() == "order.created")
        .map(|e| ((), e.event.payload_json().unwrap().get().to_string()))
        .unwrap();
    let sample: &'static str = Box::leak(sample.into_boxed_str());
    assert!(
        send(sample).await.is_ok(),
        "a valid order.created was refused"
    );
    for till in tills {
        till.stop().await;
    }
}
