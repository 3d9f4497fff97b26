//! The fleet API with real tills syncing to the hub over iroh: stores and their sync state,
//! stock per store and sku (equal to each till's own inventory), an order found across the
//! fleet with its whole story, Prometheus metrics; the projections survive a hub restart.

use std::time::{Duration, Instant};

use fusion_node::replication::{PeerLink, Role};
use fusion_sync::net;
use serde_json::{Value, json};

mod common;
use common::{Api, Till, serve_hub};

async fn eventually(api: &Api, path: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.get(path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_stock_orders_and_metrics_across_the_fleet() {
    let hub_dir = tempfile::tempdir().unwrap();
    let served = serve_hub(hub_dir.path()).await;
    let (hub, api, hub_id, hub_addr) = (served.hub.clone(), &served.api, served.id, served.addr);
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
        tills.push(
            Till::start(
                dir.path(),
                ep,
                vec![PeerLink::new(Role::Hub, hub_id, vec![hub_addr])],
            )
            .await,
        );
        dirs.push(dir);
    }

    // Both tills sell TEA (their own stock); till b also cancels one order.
    let mut orders = Vec::new();
    // The product is created once and reaches the other store through the hub; each store
    // receives its own stock.
    let (status, _) = tills[0]
        .api
        .call(
            reqwest::Method::POST,
            "/products",
            Some(json!({ "sku": "TEA", "name": "Tea", "price": 3.5, "currency": "EUR", "inventory": 40 })),
        )
        .await;
    assert_eq!(status, 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tills[1].api.get("/products/by-sku/TEA").await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the product reaches store 2"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _) = tills[1]
        .api
        .call(
            reqwest::Method::POST,
            "/inventory/TEA/adjust",
            Some(json!({ "delta": 41, "reason": "delivery" })),
        )
        .await;
    assert_eq!(status, 200);
    for (i, till) in tills.iter().enumerate() {
        for n in 0..3 + i {
            let (status, order) = till
                .api
                .call(
                    reqwest::Method::POST,
                    "/orders",
                    Some(json!({ "customerId": format!("c{n}"), "currency": "EUR", "items": [{ "sku": "TEA", "quantity": 2, "price": 3.5 }] })),
                )
                .await;
            assert_eq!(status, 201, "{order}");
            orders.push((i, order["id"].as_str().unwrap().to_string()));
        }
    }
    let cancelled = orders.last().unwrap().1.clone();
    let (status, _) = tills[1]
        .api
        .call(
            reqwest::Method::POST,
            &format!("/orders/{cancelled}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let held: u64 = tills
        .iter()
        .map(|t| t.store.read().unwrap().last_seq().unwrap())
        .sum();

    // Stores: one till each, connected, every event held.
    let stores = eventually(api, "/fleet/stores", |b| {
        b.as_array()
            .is_some_and(|s| s.iter().map(|s| s["events"].as_u64().unwrap()).sum::<u64>() == held)
    })
    .await;
    for s in stores.as_array().unwrap() {
        assert_eq!(
            (s["tills"].as_u64(), s["connected"].as_u64()),
            (Some(1), Some(1)),
            "{s}"
        );
        assert!(s["lastContact"].is_string(), "{s}");
        // The till's journal: every event held is covered by the till's verified signature.
        let journal = &s["journals"][0];
        assert_eq!(journal["events"], s["events"], "{s}");
        assert_eq!(journal["verifiedUpTo"], s["events"], "{s}");
    }

    // Stock per store equals each till's own view.
    let (status, stock) = api.get("/fleet/stock?sku=TEA").await;
    assert_eq!(status, 200);
    let mut expected = Vec::new();
    for (till, store) in tills.iter().zip(["store-a", "store-b"]) {
        let (_, own) = till.api.get("/inventory/TEA").await;
        expected.push(json!({ "storeId": store, "sku": "TEA", "available": own["quantity"], "reserved": own["reserved"], "tills": 1 }));
    }
    assert_eq!(stock, Value::Array(expected.clone()));
    assert_eq!(expected[0]["available"], 34); // 40 - 3 × 2
    assert_eq!(expected[1]["available"], 35); // 41 - 4 × 2 + 2 released
    let (_, only_b) = api.get("/fleet/stock?store=store-b").await;
    assert_eq!(only_b, json!([expected[1]]));
    let (status, body) = api.get("/fleet/stock?colour=red").await;
    assert_eq!(status, 400, "{body}");

    // An order of store b, found from the hub with its whole story.
    let (status, order) = api.get(&format!("/fleet/orders/{cancelled}")).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["storeId"], "store-b");
    assert_eq!(order["origin"], tills[1].node_id.as_str());
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["total"], json!(7.0));
    assert_eq!(order["currency"], "EUR");
    let topics: Vec<&str> = order["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        topics,
        [
            "order.created",
            "inventory.reserved",
            "order.cancelled",
            "inventory.released"
        ]
    );
    let (_, first) = api.get(&format!("/fleet/orders/{}", orders[0].1)).await;
    assert_eq!(
        (first["storeId"].as_str(), first["status"].as_str()),
        (Some("store-a"), Some("created"))
    );
    let unknown = uuid::Uuid::now_v7();
    for id in [unknown.to_string(), "not-an-id".to_string()] {
        let (status, body) = api.get(&format!("/fleet/orders/{id}")).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (404, Some("id")),
            "{body}"
        );
    }
    let (status, body) = api.get(&format!("/campaigns/{unknown}/participants")).await;
    assert_eq!((status, body["field"].as_str()), (404, Some("id")));

    // Prometheus: stores, tills and lag, behind the admin token.
    let anonymous = api
        .http
        .get(format!("{}/metrics", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let text = api
        .http
        .get(format!("{}/metrics", api.url))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "fusion_hub_tills{store=\"store-a\"} 1",
        "fusion_hub_tills_connected{store=\"store-b\"} 1",
        "fusion_hub_export_enabled 0",
        // The tills' events and the hub's own (its enrollments of the two tills).
        &format!("fusion_hub_export_behind_events {}", held + 2),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    // A viewer token reads the fleet and changes nothing; revoked, it is refused.
    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/tokens",
            Some(json!({ "role": "viewer", "label": "grafana" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let viewer = Api {
        http: api.http.clone(),
        url: api.url.clone(),
        token: created["token"].as_str().unwrap().to_string(),
    };
    assert_eq!(viewer.get("/fleet/stock").await.0, 200);
    assert_eq!(viewer.get("/metrics").await.0, 200);
    let key = net::SecretKey::generate().public().to_string();
    let (status, body) = viewer
        .call(
            reqwest::Method::POST,
            "/enrollments",
            Some(json!({ "nodeId": key, "storeId": "store-z" })),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(viewer.get("/tokens").await.0, 403);
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/tokens",
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("role")),
        "{body}"
    );
    let (_, listed) = api.get("/tokens").await;
    assert_eq!(listed[0]["label"], "grafana");
    assert!(
        listed[0].get("token").is_none(),
        "a listing never shows secrets"
    );
    let path = format!("/tokens/{}", created["id"].as_str().unwrap());
    assert_eq!(api.call(reqwest::Method::DELETE, &path, None).await.0, 204);
    assert_eq!(viewer.get("/fleet/stock").await.0, 401);
    assert_eq!(api.call(reqwest::Method::DELETE, &path, None).await.0, 404);

    // The projections are durable: a restarted hub answers the same.
    for till in tills {
        till.stop().await;
    }
    drop(hub);
    served.stop().await;
    let served = serve_hub(hub_dir.path()).await;
    let api = &served.api;
    let (_, again) = api.get("/fleet/stock?sku=TEA").await;
    assert_eq!(again, Value::Array(expected));
    let (_, order_again) = api.get(&format!("/fleet/orders/{cancelled}")).await;
    assert_eq!(order_again["status"], "cancelled");
    served.stop().await;
}
