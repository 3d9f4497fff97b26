//! Webhook delivery: `cargo bench -p fusion-hub --bench webhook` (env `BENCH_EVENTS`, default
//! 20,000; `BENCH_LATENCY_MS`, the receiver's answer time, default 0; `BENCH_CONCURRENCY`,
//! keys in flight, default the subscription's default, 8).
//!
//! A hub store holding `BENCH_EVENTS` order events (order.created and inventory.reserved, as
//! tills log them; one key per order) delivers them to a local HTTP receiver that checks each
//! signature and answers 204 after `BENCH_LATENCY_MS`: events/s until the subscription's
//! position reached the end of the log (every delivery answered and checkpointed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use fusion_contracts::NodeId;
use fusion_hub::store::HubStore;
use fusion_hub::webhook::{Subscription, Webhooks, signature};
use fusion_sync::net::{self, EventSink};

#[path = "support.rs"]
mod support;
use support::{env, order_events};

const SECRET: &[u8] = b"bench-secret";

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(
            env("BENCH_EVENTS", 20_000),
            env("BENCH_LATENCY_MS", 0),
            env("BENCH_CONCURRENCY", 8),
        ));
}

async fn run(events: u64, latency_ms: u64, concurrency: usize) {
    let received = Arc::new(AtomicU64::new(0));
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let received = received.clone();
                async move {
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
                    let expected =
                        signature(SECRET, h("x-fusion-event-id"), h("x-fusion-topic"), &body);
                    if h("x-fusion-signature") != expected {
                        return StatusCode::UNAUTHORIZED;
                    }
                    if latency_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(HubStore::open(dir.path()).unwrap());
    let origin = NodeId::new("bench-till").unwrap();
    let till = net::SecretKey::generate();
    let journal = fusion_sync::proto::VecLog::new(origin.clone(), net::journal_key(&till));
    for chunk in order_events(&origin, events).chunks(512) {
        let batch = journal.append_batch(chunk);
        store.store(till.public(), batch).await.unwrap();
    }
    let mut subscription = Subscription::new("bench", &url, vec!["*".into()], SECRET.to_vec());
    subscription.concurrency = concurrency;
    let webhooks = Arc::new(Webhooks::new(vec![subscription]).unwrap());
    let started = Instant::now();
    let tasks = webhooks.spawn(store.clone());
    loop {
        let done = store.webhook_positions("bench").unwrap();
        if done.get(origin.as_str()).copied() == Some(events) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{done:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    for t in tasks {
        t.abort();
    }
    assert_eq!(received.load(Ordering::Relaxed), events);
    println!(
        "hub → webhook ({latency_ms} ms receiver, {concurrency} keys in flight): {events} events in {:.2} s ({:.0} events/s)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
}
