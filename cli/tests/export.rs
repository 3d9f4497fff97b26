//! Kafka export survives failures, with real processes: a node replicating to `fusion hub serve
//! --kafka-brokers`, exporting to a tansu broker that keeps its data in sqlite. While orders
//! flow, the broker is killed and restarted, then the hub is SIGKILLed while it exports and restarted:
//! every event of the node reaches Kafka (a re-send after the crash carries the same event_id)
//! and each key's events of a topic keep their log order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use serde_json::{Value, json};
use tokio::process::Child;

mod common;
use common::{free_port, fusion, spawn_node_with, start_broker};

/// `fusion hub serve` exporting to `brokers`, its sync endpoint at `sync`; returns the process
/// and its HTTP URL once it serves.
async fn start_hub(dir: &Path, sync: &str, brokers: &str) -> (Child, String) {
    let hub = common::spawn_hub(
        dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--sync-bind",
            sync,
            "--kafka-brokers",
            brokers,
        ],
    )
    .await;
    (hub.child, hub.url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_and_hub_sigkill_lose_nothing_and_keep_key_order() {
    let broker_dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let brokers = format!("127.0.0.1:{broker_port}");
    let mut broker = start_broker(broker_dir.path(), broker_port);

    let hub_dir = tempfile::tempdir().unwrap();
    let sync = format!("127.0.0.1:{}", free_port());
    let hub_id = fusion(&["hub", "id", "--data-dir", hub_dir.path().to_str().unwrap()]).1;
    let (mut hub, hub_url) = start_hub(hub_dir.path(), &sync, &brokers).await;
    let node_dir = tempfile::tempdir().unwrap();
    let node_endpoint = fusion(&[
        "node",
        "id",
        "--data-dir",
        node_dir.path().to_str().unwrap(),
    ])
    .1;
    let hub_target = [
        "--url",
        hub_url.as_str(),
        "--data-dir",
        hub_dir.path().to_str().unwrap(),
    ];
    let enroll = [
        &["hub", "enroll", node_endpoint.trim(), "--store", "s1"][..],
        &hub_target[..],
    ]
    .concat();
    assert_eq!(fusion(&enroll).0, 0);
    let hub_flag = format!("{}@{sync}", hub_id.trim());
    let node = spawn_node_with(
        node_dir.path(),
        &["--hub", &hub_flag, "--sync-bind", "127.0.0.1:0"],
    )
    .await;
    let http = reqwest::Client::new();
    for sku in ["A", "B", "C"] {
        let created = http
            .post(format!("{}/products", node.url))
            .bearer_auth(&node.admin)
            .json(&json!({ "sku": sku, "name": sku, "price": 1, "currency": "USD", "inventory": 100_000 }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }

    // Orders from 4 clients while the broker and then the hub go down and come back.
    let placed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (http, url, token) = (http.clone(), node.url.clone(), node.admin.clone());
        let (placed, stop) = (placed.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let sku = ["A", "B", "C"][c % 3];
            while !stop.load(Ordering::Relaxed) {
                let body = json!({ "customerId": format!("c{c}"), "items": [{ "sku": sku, "quantity": 1, "price": 1 }] });
                let response = http.post(format!("{url}/orders")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 201);
                placed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let wait_for = |n: usize| {
        let placed = placed.clone();
        async move {
            while placed.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(100).await;
    broker.kill().unwrap(); // SIGKILL
    broker.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker = start_broker(broker_dir.path(), broker_port);
    wait_for(250).await;
    hub.start_kill().unwrap(); // SIGKILL, mid-export
    hub.wait().await.unwrap();
    let (mut hub, hub_url) = start_hub(hub_dir.path(), &sync, &brokers).await;
    wait_for(400).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    // Every event of the node's log reaches Kafka, in log order per topic and key.
    let mut log: BTreeMap<String, Value> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page: Vec<Value> = http
            .get(format!("{}/events?after={after}&limit=1000", node.url))
            .bearer_auth(&node.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last["seq"].as_u64().unwrap();
        for e in page {
            log.insert(e["eventId"].as_str().unwrap().to_string(), e);
        }
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("check-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&fusion_hub::export::topics()).unwrap();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut duplicates = 0;
    let mut order: BTreeMap<(String, String), u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < log.len() {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {}",
            seen.len(),
            log.len()
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
        let event_id = header("event_id").unwrap();
        if message.topic().starts_with("fleet.") {
            continue; // the hub's own journal: the node's enrollment
        }
        let seq: u64 = header("seq").unwrap().parse().unwrap();
        let event = log.get(&event_id).expect("an event the node logged");
        assert_eq!(message.topic(), event["topic"].as_str().unwrap());
        if !seen.insert(event_id) {
            duplicates += 1; // a batch re-sent after the crash: same event_id
            continue;
        }
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let last = order.entry((message.topic().to_string(), key)).or_insert(0);
        assert!(seq > *last, "per-key order broken at seq {seq}");
        *last = seq;
    }
    eprintln!(
        "{} events exported across a broker outage and a hub SIGKILL; {duplicates} re-sent",
        log.len()
    );

    // `fusion hub sales`: every order of the day, 1 USD each.
    let orders = log
        .values()
        .filter(|e| e["topic"] == "order.created")
        .count();
    let (code, out) = fusion(&[
        "hub",
        "sales",
        "--json",
        "--url",
        &hub_url,
        "--data-dir",
        hub_dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let sales: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sales.as_array().unwrap().len(), 1, "{sales}");
    assert_eq!(sales[0]["storeId"], "s1");
    assert_eq!(sales[0]["orders"].as_u64().unwrap() as usize, orders);
    assert_eq!(sales[0]["total"].as_f64().unwrap() as usize, orders);

    // `fusion hub replay` sends a topic's events again: the same event ids, once more each.
    let created: BTreeSet<&String> = log
        .iter()
        .filter(|(_, e)| e["topic"] == "order.created")
        .map(|(id, _)| id)
        .collect();
    let (code, out) = fusion(&[
        "hub",
        "replay",
        "--topic",
        "order.created",
        "--from",
        "2000-01-01T00:00:00Z",
        "--kafka-brokers",
        &brokers,
        "--url",
        &hub_url,
        "--data-dir",
        hub_dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let replayed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        replayed["replayed"].as_u64().unwrap() as usize,
        created.len()
    );
    let again: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("replay-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    again.subscribe(&["order.created"]).unwrap();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while copies.values().filter(|n| **n >= 2).count() < created.len() {
        assert!(
            Instant::now() < deadline,
            "replayed copies: {}",
            copies.len()
        );
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(5), again.recv()).await
        else {
            continue;
        };
        let id = message
            .headers()
            .and_then(|h| h.iter().find(|x| x.key == "event_id").and_then(|x| x.value))
            .map(|v| String::from_utf8_lossy(v).to_string())
            .unwrap();
        *copies.entry(id).or_default() += 1;
    }
    assert!(copies.keys().all(|id| created.contains(id)));

    hub.start_kill().unwrap();
    let _ = hub.wait().await;
    broker.kill().unwrap();
    let _ = broker.wait();
    node.sigkill().await;
}
