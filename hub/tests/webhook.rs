//! Webhook delivery against a local receiver that fails on purpose: retries with growing
//! backoff, only a 2xx counts, dead letters after `max_attempts` with the key parked behind
//! them, `dlq retry` in order, and dead letters that survive a hub restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fusion_contracts::events::StockAdjusted;
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, Sku, Timestamp};
use fusion_hub::webhook::Subscription;
use fusion_sync::net::{self, EventSink};
use fusion_sync::proto::VecLog;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

mod common;
use common::{Api, Served, serve_hub_with};

const SECRET: &[u8] = b"whsec-test-0123456789";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    event_id: String,
    key: String,
    seq: u64,
    attempt: u32,
    status: u16,
}

/// How the receiver answers, per key: `Ok` → 200; `FailFirst(n)` → 500 for the first `n`
/// attempts of each event, then 200; `Redirect` → 302 always (not a delivery).
#[derive(Clone, Copy, Debug)]
enum Mode {
    Ok,
    FailFirst(u32),
    Redirect,
}

#[derive(Default)]
struct Receiver {
    modes: Mutex<BTreeMap<String, Mode>>,
    log: Mutex<Vec<Received>>,
    tries: Mutex<BTreeMap<String, u32>>,
}

async fn receive(
    State(rx): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (event_id, topic, key) = (
        h("x-fusion-event-id"),
        h("x-fusion-topic"),
        h("x-fusion-key"),
    );
    // Every request is signed over id, topic and the raw body (checked with the HMAC
    // primitive directly, not the hub's helper).
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(format!("{event_id}.{topic}.").as_bytes());
    mac.update(&body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    if h("x-fusion-signature") != expected {
        return StatusCode::UNAUTHORIZED;
    }
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["sku"], key, "the key header is the aggregate id");
    assert_eq!(h("content-type"), "application/json");
    assert!(!h("x-fusion-correlation-id").is_empty());
    assert!(!h("x-fusion-origin").is_empty());
    let mode = rx
        .modes
        .lock()
        .unwrap()
        .get(&key)
        .copied()
        .unwrap_or(Mode::Ok);
    let tries = {
        let mut tries = rx.tries.lock().unwrap();
        let n = tries.entry(event_id.clone()).or_default();
        *n += 1;
        *n
    };
    let status = match mode {
        Mode::Ok => StatusCode::OK,
        Mode::FailFirst(n) if tries <= n => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::FailFirst(_) => StatusCode::NO_CONTENT,
        Mode::Redirect => StatusCode::FOUND,
    };
    rx.log.lock().unwrap().push(Received {
        at: Instant::now(),
        event_id,
        key,
        seq: h("x-fusion-seq").parse().unwrap(),
        attempt: h("x-fusion-attempt").parse().unwrap(),
        status: status.as_u16(),
    });
    status
}

async fn start_receiver(rx: Arc<Receiver>, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(rx);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Stock adjustments of the given skus (keys), in order, as one origin's log from `first` on.
fn events(origin: &NodeId, first: u64, skus: &[&str]) -> Vec<Envelope> {
    skus.iter()
        .enumerate()
        .map(|(i, sku)| {
            let seq = first + i as u64;
            Envelope::new(
                EventId(uuid::Uuid::now_v7()),
                origin.clone(),
                seq,
                Timestamp::from_unix_ms(1_700_000_000_000 + seq as i64),
                CorrelationId::new("webhook-test").unwrap(),
                None,
                Event::StockAdjusted(StockAdjusted {
                    sku: Sku::new(*sku).unwrap(),
                    previous_quantity: seq,
                    quantity: seq + 1,
                    delta: 1,
                    reason: "webhook test".into(),
                }),
            )
            .unwrap()
        })
        .collect()
}

/// A hub serving HTTP (and sync, unused here) with one subscription; events enter through
/// its durable sink (`store`, as the hub's own endpoint id) exactly as synced ones do.
async fn start_hub(dir: &std::path::Path, subscription: Subscription) -> Served {
    serve_hub_with(dir, |hub| hub.with_webhooks(vec![subscription]).unwrap()).await
}

fn subscription(url: &str) -> Subscription {
    let mut s = Subscription::new("n8n", url, vec!["inventory.*".into()], SECRET.to_vec());
    s.max_attempts = 4;
    s.backoff_initial = Duration::from_millis(100);
    s.backoff_max = Duration::from_secs(1);
    s.timeout = Duration::from_secs(2);
    s
}

/// Successful deliveries per key, as seqs, in the order the receiver accepted them.
fn delivered(rx: &Receiver) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in rx.log.lock().unwrap().iter() {
        if (200..300).contains(&r.status) {
            out.entry(r.key.clone()).or_default().push(r.seq);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_dead_letter_in_key_order_and_retry_delivers() {
    let rx = Arc::new(Receiver::default());
    rx.modes
        .lock()
        .unwrap()
        .insert("FLAKY".into(), Mode::FailFirst(3));
    rx.modes
        .lock()
        .unwrap()
        .insert("DEAD".into(), Mode::Redirect);
    let addr = free_addr();
    let _receiver = start_receiver(rx.clone(), addr).await;
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), subscription(&format!("http://{addr}/hook"))).await;

    let origin = NodeId::new("till-webhook-1").unwrap();
    let skus = [
        "A", "FLAKY", "DEAD", "B", "A", "DEAD", "FLAKY", "B", "DEAD", "A",
    ];
    let log = events(&origin, 1, &skus);
    let till = net::SecretKey::generate();
    let journal = VecLog::new(origin.clone(), net::journal_key(&till));
    hub.hub
        .state
        .store
        .store(till.public(), journal.append_batch(&log))
        .await
        .unwrap();

    // Everything is dealt with: delivered, or dead-lettered.
    wait_for_lag(&hub.api, 0).await;
    let got = delivered(&rx);
    let seqs = |sku: &str| -> Vec<u64> {
        (1..=skus.len() as u64)
            .filter(|s| skus[*s as usize - 1] == sku)
            .collect()
    };
    // Healthy and flaky keys: every event once, in log order.
    assert_eq!(got["A"], seqs("A"));
    assert_eq!(got["B"], seqs("B"));
    assert_eq!(got["FLAKY"], seqs("FLAKY"));
    assert!(!got.contains_key("DEAD"), "a 302 is not a delivery");

    // A flaky event was tried 4 times: 3 failures then success, with growing waits (equal
    // jitter: at least half of 100, 200, 400 ms).
    let flaky_first = &log[1].event_id.to_string();
    let tries: Vec<Received> = rx
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| &r.event_id == flaky_first)
        .cloned()
        .collect();
    assert_eq!(
        tries.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 500, 204]
    );
    for (i, floor) in [50u64, 100, 200].iter().enumerate() {
        let gap = tries[i + 1].at - tries[i].at;
        assert!(
            gap >= Duration::from_millis(*floor),
            "wait {} was {gap:?}",
            i + 1
        );
    }

    // The first DEAD event used its 4 attempts; the later ones were parked behind it, not sent.
    let dead_first = log[2].event_id.to_string();
    let dead_tries = rx
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.key == "DEAD")
        .map(|r| r.event_id.clone())
        .collect::<Vec<_>>();
    assert_eq!(dead_tries, vec![dead_first.clone(); 4]);
    let (status, letters) = hub.api.get("/webhooks/dlq?subscription=n8n").await;
    assert_eq!(status, 200);
    let letters = letters.as_array().unwrap();
    assert_eq!(
        letters
            .iter()
            .map(|l| l["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        seqs("DEAD")
    );
    assert_eq!(letters[0]["attempts"], 4);
    assert_eq!(letters[0]["lastError"], "HTTP 302 Found");
    assert_eq!(letters[1]["attempts"], 0);
    assert_eq!(letters[0]["eventId"], dead_first);
    let (_, lag) = hub.api.get("/fleet/lag").await;
    assert_eq!(lag["webhooks"][0]["deadLetters"], 3);
    assert_eq!(lag["webhooks"][0]["behind"], 0);
    assert_eq!(lag["export"]["enabled"], false);

    // While parked, a new DEAD event joins the list behind the others; other keys go on.
    let more = events(&origin, 11, &["DEAD", "B"]);
    hub.hub
        .state
        .store
        .store(till.public(), journal.append_batch(&more))
        .await
        .unwrap();
    wait_for_lag(&hub.api, 0).await;
    assert_eq!(delivered(&rx)["B"], [4, 8, 12]);
    let (_, letters) = hub.api.get("/webhooks/dlq").await;
    assert_eq!(letters.as_array().unwrap().len(), 4);

    // A retry while the receiver still refuses: one attempt on the first letter, the key stops.
    let (status, report) = hub
        .api
        .call(reqwest::Method::POST, "/webhooks/dlq/retry", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        report,
        json!({ "attempted": 1, "delivered": 0, "remaining": 4 })
    );
    let (_, letters) = hub.api.get("/webhooks/dlq").await;
    assert_eq!(letters[0]["attempts"], 5);

    // The receiver is fixed: the retry delivers every letter, in key order, and unparks.
    rx.modes.lock().unwrap().insert("DEAD".into(), Mode::Ok);
    let (status, report) = hub
        .api
        .call(
            reqwest::Method::POST,
            "/webhooks/dlq/retry",
            Some(json!({ "subscription": "n8n" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        report,
        json!({ "attempted": 4, "delivered": 4, "remaining": 0 })
    );
    assert_eq!(delivered(&rx)["DEAD"], [3, 6, 9, 11]);
    let after = events(&origin, 13, &["DEAD"]);
    hub.hub
        .state
        .store
        .store(till.public(), journal.append_batch(&after))
        .await
        .unwrap();
    wait_for_lag(&hub.api, 0).await;
    assert_eq!(delivered(&rx)["DEAD"], [3, 6, 9, 11, 13]);

    // Bad requests are 4xx naming the field.
    let (status, body) = hub
        .api
        .call(
            reqwest::Method::POST,
            "/webhooks/dlq/retry",
            Some(json!({ "subscription": 7 })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "subscription");
    let (status, body) = hub.api.get("/webhooks/dlq?subscription=nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["field"], "subscription");
    hub.stop().await;
}

/// Dead letters and positions are durable: a receiver that is down for good fills the list;
/// after a hub restart it is still there, nothing is sent twice, and a retry delivers it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_survive_a_restart() {
    let addr = free_addr(); // nobody listens yet: connection refused
    let dir = tempfile::tempdir().unwrap();
    let mut sub = subscription(&format!("http://{addr}/hook"));
    sub.max_attempts = 2;
    let origin = NodeId::new("till-webhook-2").unwrap();
    let till = net::SecretKey::generate();
    let journal = VecLog::new(origin.clone(), net::journal_key(&till));
    {
        let hub = start_hub(dir.path(), sub.clone()).await;
        hub.hub
            .state
            .store
            .store(
                till.public(),
                journal.append_batch(&events(&origin, 1, &["A", "B", "A"])),
            )
            .await
            .unwrap();
        wait_for_lag(&hub.api, 0).await;
        let (_, letters) = hub.api.get("/webhooks/dlq").await;
        assert_eq!(letters.as_array().unwrap().len(), 3);
        assert!(
            letters[0]["lastError"]
                .as_str()
                .unwrap()
                .starts_with("POST http://"),
            "{letters}"
        );
        hub.stop().await;
    }
    let rx = Arc::new(Receiver::default());
    let _receiver = start_receiver(rx.clone(), addr).await;
    let hub = start_hub(dir.path(), sub).await;
    let (_, letters) = hub.api.get("/webhooks/dlq").await;
    assert_eq!(letters.as_array().unwrap().len(), 3);
    // The restarted hub does not redeliver what it already dealt with.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.log.lock().unwrap().is_empty());
    let (_, report) = hub
        .api
        .call(reqwest::Method::POST, "/webhooks/dlq/retry", None)
        .await;
    assert_eq!(
        report,
        json!({ "attempted": 3, "delivered": 3, "remaining": 0 })
    );
    let got = delivered(&rx);
    assert_eq!(got["A"], [1, 3]);
    assert_eq!(got["B"], [2]);
    hub.stop().await;
}

async fn wait_for_lag(api: &Api, behind: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, lag) = api.get("/fleet/lag").await;
        if lag["webhooks"][0]["behind"] == behind {
            return;
        }
        assert!(Instant::now() < deadline, "lag: {lag}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
