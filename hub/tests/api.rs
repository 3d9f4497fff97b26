//! The hub's HTTP API over real HTTP, with real tills syncing over iroh on loopback:
//! enrollment through the API admits a till, `GET /events` filters and pages the fleet log
//! exactly once, `DELETE /enrollments/{id}` cuts the till off; bad input is a 4xx naming the
//! field.

use std::sync::Arc;
use std::time::Duration;

use fusion_contracts::NodeId;
use fusion_hub::Hub;
use fusion_sync::net;
use fusion_sync::proto::VecLog;
use serde_json::{Value, json};
use tokio::sync::Notify;

mod common;
use common::{Api, append, wait_for};

/// Every event matching `query`, following `next` page by page.
async fn all_events(api: &Api, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = api
            .get(&format!("/events?limit={limit}&{query}{after}"))
            .await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["events"].as_array().unwrap().iter().cloned());
        if page["complete"] == json!(true) {
            return out;
        }
        after = format!("&after={}", page["next"].as_str().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_events_and_revocation_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Arc::new(Hub::open(dir.path()).unwrap());
    let token = hub
        .new_admin_token
        .clone()
        .expect("first start creates the token");
    assert_eq!(
        std::fs::read_to_string(&hub.admin_token_path)
            .unwrap()
            .trim(),
        token
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hub_ep = net::offline_endpoint(
        net::load_or_create_identity(dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let hub_addr = net::peer_addr(hub_ep.id(), hub_ep.bound_sockets()[0]);
    {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.serve(listener, hub_ep, std::future::pending())
                .await
                .unwrap()
        });
    }
    let api = Api {
        http: reqwest::Client::new(),
        url,
        token,
    };

    // No token, wrong token: 401.
    let health = api
        .http
        .get(format!("{}/health", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let anonymous = api
        .http
        .get(format!("{}/events", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = Api {
        token: "fch_wrong".into(),
        http: api.http.clone(),
        url: api.url.clone(),
    };
    assert_eq!(wrong.get("/enrollments").await.0, 401);

    // Bad input names the field.
    let post = |body: Value| api.call(reqwest::Method::POST, "/enrollments", Some(body));
    let (status, body) = post(json!({ "storeId": "s" })).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("nodeId")));
    let (status, body) = post(json!({ "nodeId": "not-a-key", "storeId": "s" })).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("nodeId")));
    let key = net::SecretKey::generate().public().to_string();
    let (status, body) = post(json!({ "nodeId": key, "storeId": "  " })).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("storeId")));
    let (status, body) = api.get("/events?limit=0").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")));
    let (status, body) = api.get("/events?after=nonsense").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("after")));

    // Two tills of two stores, enrolled over HTTP, replicate.
    let mut tills = Vec::new();
    for (name, store, events) in [("till-a", "store-1", 37), ("till-b", "store-2", 23)] {
        let secret = net::SecretKey::generate();
        let key = net::journal_key(&secret);
        let ep = net::offline_endpoint(secret, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (status, body) = post(json!({ "nodeId": ep.id().to_string(), "storeId": store })).await;
        assert_eq!(status, 201, "{body}");
        let log = Arc::new(VecLog::new(NodeId::new(name).unwrap(), key));
        append(&log, events);
        let session = {
            let (ep, log, addr) = (ep.clone(), log.clone(), hub_addr.clone());
            tokio::spawn(async move {
                net::send_log(
                    &ep,
                    addr,
                    log.as_ref(),
                    &Notify::new(),
                    &net::SendStatus::default(),
                )
                .await
            })
        };
        tills.push((ep, log, session, events));
    }
    let (_, enrolled) = api.get("/enrollments").await;
    assert_eq!(enrolled.as_array().unwrap().len(), 2);
    let store = hub.state.store.clone();
    for (_, log, _, events) in &tills {
        wait_for("replication", || {
            store.position(log.origin()).unwrap() == *events
        })
        .await;
    }

    // Sync status: both tills connected, each origin at its last seq under its store.
    let (status, sync) = api.get("/sync/status").await;
    assert_eq!(status, 200);
    let peers = sync["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2);
    assert!(
        peers
            .iter()
            .all(|p| p["connected"] == true && p["lastContactMs"].is_i64()),
        "{sync}"
    );
    let origins = sync["origins"].as_array().unwrap();
    assert!(origins.contains(&json!({ "origin": "till-a", "storeId": "store-1", "position": 37 })));
    assert!(origins.contains(&json!({ "origin": "till-b", "storeId": "store-2", "position": 23 })));

    // The fleet log, paged in small pages: each event exactly once, in per-origin order.
    let all = all_events(&api, "", 5).await;
    // The tills' 60 and the hub's own: its two enrollments, in its journal.
    assert_eq!(all.len(), 62);
    let enrolled = all.iter().filter(|e| e["topic"] == "fleet.node.enrolled");
    assert_eq!(enrolled.count(), 2);
    let store_1 = all_events(&api, "store=store-1", 4).await;
    assert_eq!(store_1.len(), 37);
    assert!(store_1.iter().all(|e| e["origin"] == "till-a"));
    let seqs: Vec<u64> = store_1.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=37).collect::<Vec<_>>());
    let till_b = all_events(&api, "origin=till-b", 100).await;
    assert_eq!(till_b.len(), 23);
    assert!(till_b.iter().all(|e| e["origin"] == "till-b"));
    assert_eq!(
        all_events(&api, "topic=inventory.adjusted", 7).await.len(),
        60
    );
    assert!(all_events(&api, "topic=order.created", 7).await.is_empty());
    assert!(all_events(&api, "store=store-9", 7).await.is_empty());

    // Revoked over HTTP: the live session is cut; a second revoke is 404.
    let (ep_a, log_a, session_a, _) = tills.remove(0);
    let path = format!("/enrollments/{}", ep_a.id());
    assert_eq!(api.call(reqwest::Method::DELETE, &path, None).await.0, 204);
    let ended = tokio::time::timeout(Duration::from_secs(5), session_a)
        .await
        .expect("the revoked till's session is cut")
        .unwrap();
    assert!(ended.is_err());
    append(&log_a, 5);
    let again = net::send_log(
        &ep_a,
        hub_addr.clone(),
        log_a.as_ref(),
        &Notify::new(),
        &net::SendStatus::default(),
    )
    .await;
    assert!(again.is_err(), "a revoked till cannot reconnect");
    assert_eq!(store.position(log_a.origin()).unwrap(), 37);
    let (status, body) = api.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!((status, body["field"].as_str()), (404, Some("nodeId")));
    let (_, enrolled) = api.get("/enrollments").await;
    assert_eq!(enrolled.as_array().unwrap().len(), 1);
    let (_, sync) = api.get("/sync/status").await;
    assert_eq!(sync["peers"].as_array().unwrap().len(), 1);
}
