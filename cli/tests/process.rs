//! The real `fusion` binary as a process: SIGKILL while clients place orders loses no
//! acknowledged order and leaves no gap in the log; an Idempotency-Key outlives a crash; the
//! token command works against a running node and reports refusals with its exit codes; the hub
//! process admits only nodes enrolled by `fusion hub enroll` and `fusion hub revoke` cuts them off;
//! 10,000 orders taken while the hub is down drain exactly once through a SIGKILL mid-sync.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

mod common;
use common::{NodeProcess, fusion, spawn_hub, spawn_node, spawn_node_with};

async fn all_events(node: &NodeProcess, http: &reqwest::Client) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let after = events
            .last()
            .map(|e: &Value| e["seq"].as_u64().unwrap())
            .unwrap_or(0);
        let (_, page) = node
            .get(http, &format!("/events?after={after}&limit=1000"))
            .await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_order() {
    stopped_under_load_loses_no_acknowledged_order(|node| Box::pin(node.sigkill())).await;
}

/// SIGTERM (what systemd sends) drains: in-flight requests and commits finish, the process exits
/// 0, and every acknowledged order is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_loses_no_acknowledged_order() {
    stopped_under_load_loses_no_acknowledged_order(|node| Box::pin(node.sigterm())).await;
}

type Stopping = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Orders from 16 clients; `stop` ends the node while they write; a restarted node holds every
/// acknowledged order, its log has no gap and its stock agrees with the log.
async fn stopped_under_load_loses_no_acknowledged_order(
    stop_node: impl FnOnce(NodeProcess) -> Stopping,
) {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path()).await;
    let http = reqwest::Client::new();
    let product = json!({ "sku": "BULK", "name": "Bulk", "price": 0.5, "currency": "USD", "inventory": 1_000_000 });
    let created = http
        .post(format!("{}/products", node.url))
        .bearer_auth(&node.admin)
        .json(&product)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (http, url, token) = (http.clone(), node.url.clone(), node.admin.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let body = json!({ "customerId": "load", "items": [{ "sku": "BULK", "quantity": 1, "price": 0.5 }] });
            while !stop.load(Ordering::Relaxed) {
                let Ok(response) = http.post(format!("{url}/orders")).bearer_auth(&token).json(&body).send().await else {
                    return; // the node is gone
                };
                if response.status() == StatusCode::CREATED {
                    let Ok(order) = response.json::<Value>().await else { return };
                    acknowledged.lock().await.push(order["id"].as_str().unwrap().to_string());
                }
            }
        }));
    }
    // Kill once a fair number of orders were acknowledged, while the clients keep writing.
    while acknowledged.lock().await.len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_node(node).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();

    let node = spawn_node(dir.path()).await;
    for id in &acknowledged {
        let (status, order) = node.get(&http, &format!("/orders/{id}")).await;
        assert_eq!(status, StatusCode::OK, "acknowledged order {id} was lost");
        assert_eq!(order["status"], "created");
    }
    let events = all_events(&node, &http).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "the log has a gap"
    );
    let orders_logged = events
        .iter()
        .filter(|e| e["topic"] == "order.created")
        .count();
    assert!(
        orders_logged >= acknowledged.len(),
        "{orders_logged} logged < {} acknowledged",
        acknowledged.len()
    );
    // Every logged order holds exactly one unit: stock and log agree after the crash.
    let (_, stock) = node.get(&http, "/inventory/BULK").await;
    assert_eq!(stock["reserved"].as_u64().unwrap() as usize, orders_logged);
    assert_eq!(
        stock["quantity"].as_u64().unwrap() as usize,
        1_000_000 - orders_logged
    );
    node.sigkill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_outlives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path()).await;
    let http = reqwest::Client::new();
    let product =
        json!({ "sku": "ONE", "name": "One", "price": 3, "currency": "USD", "inventory": 5 });
    http.post(format!("{}/products", node.url))
        .bearer_auth(&node.admin)
        .json(&product)
        .send()
        .await
        .unwrap();
    let order =
        json!({ "customerId": "c", "items": [{ "sku": "ONE", "quantity": 1, "price": 3 }] });
    let place = |url: String, token: String| {
        let (http, order) = (http.clone(), order.clone());
        async move {
            let response = http
                .post(format!("{url}/orders"))
                .bearer_auth(token)
                .header("Idempotency-Key", "pos-7-receipt-1001")
                .json(&order)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let first = place(node.url.clone(), node.admin.clone()).await;
    assert_eq!(first.0, StatusCode::CREATED);
    node.sigkill().await;

    let node = spawn_node(dir.path()).await;
    let retry = place(node.url.clone(), node.admin.clone()).await;
    assert_eq!(
        retry, first,
        "the retry after a crash returns the original order"
    );
    let (_, orders) = node.get(&http, "/orders").await;
    assert_eq!(orders.as_array().unwrap().len(), 1);
    let (_, stock) = node.get(&http, "/inventory/ONE").await;
    assert_eq!(stock["quantity"], 4);
    node.sigkill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_command_against_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path()).await;
    let fusion = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fusion"));
        command
            .args(args)
            .env("FUSION_URL", &node.url)
            .env_remove("FUSION_TOKEN");
        command
    };
    let out = fusion(&[
        "token",
        "create",
        "--role",
        "cashier",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cashier = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(cashier.starts_with("fct_"));

    let http = reqwest::Client::new();
    let order = json!({ "customerId": "c", "items": [{ "sku": "NONE", "quantity": 1 }] });
    let response = http
        .post(format!("{}/orders", node.url))
        .bearer_auth(&cashier)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the cashier token works (and NONE has no catalog price)"
    );

    // A cashier may not create tokens: the node refuses (403) and the CLI exits 3.
    let out = fusion(&["token", "create", "--role", "admin"])
        .env("FUSION_TOKEN", &cashier)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the admin role"));
    // A usage error exits 2; an unreachable node exits 1.
    let out = fusion(&["token", "create", "--role", "owner"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = fusion(&[
        "token",
        "list",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--url",
        "http://127.0.0.1:1",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = fusion(&["token", "list", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        3,
        "header, admin and cashier"
    );
    node.sigkill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_chain_leaves_every_paid_order_shipped_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path()).await;
    let http = reqwest::Client::new();
    let product = json!({ "sku": "CHAIN", "name": "Chain", "price": 4, "currency": "USD", "inventory": 1_000_000 });
    http.post(format!("{}/products", node.url))
        .bearer_auth(&node.admin)
        .json(&product)
        .send()
        .await
        .unwrap();

    let paid = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, url, token, paid) = (
            http.clone(),
            node.url.clone(),
            node.admin.clone(),
            paid.clone(),
        );
        clients.push(tokio::spawn(async move {
            let order = json!({
                "customerId": "chain", "items": [{ "sku": "CHAIN", "quantity": 1, "price": 4 }],
                "shippingAddress": { "street": "1 Loop", "city": "Reno", "country": "US", "zip": "89501" },
            });
            loop {
                let Ok(placed) = http.post(format!("{url}/orders")).bearer_auth(&token).json(&order).send().await else { return };
                let Ok(placed) = placed.json::<Value>().await else { return };
                let id = placed["id"].as_str().unwrap().to_string();
                let pay = json!({ "orderId": id, "amount": 4, "currency": "USD", "paymentMethodId": "cash" });
                let Ok(answer) = http.post(format!("{url}/payments")).bearer_auth(&token).json(&pay).send().await else { return };
                if answer.status() == StatusCode::CREATED {
                    paid.lock().await.push(id);
                }
            }
        }));
    }
    while paid.lock().await.len() < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.sigkill().await;
    for client in clients {
        client.await.unwrap();
    }
    let paid = paid.lock().await.clone();

    let node = spawn_node(dir.path()).await;
    for id in &paid {
        let (_, order) = node.get(&http, &format!("/orders/{id}")).await;
        assert_eq!(order["status"], "paid", "acknowledged payment of {id} lost");
        let (_, shipments) = node.get(&http, &format!("/orders/{id}/shipments")).await;
        assert_eq!(
            shipments.as_array().unwrap().len(),
            1,
            "order {id}: {shipments}"
        );
    }
    // Across the whole log: every order.paid has exactly one label, and every label a payment.
    let events = all_events(&node, &http).await;
    let keys = |topic: &str| {
        let mut keys: Vec<String> = events
            .iter()
            .filter(|e| e["topic"] == topic)
            .map(|e| e["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys("order.paid"), keys("shipping.label.created"));
    assert!(keys("order.paid").len() >= paid.len());

    // The chain goes on after the restart, once.
    let (_, shipments) = node
        .get(&http, &format!("/orders/{}/shipments", paid[0]))
        .await;
    let shipment = shipments[0]["id"].as_str().unwrap().to_string();
    for status in ["in_transit", "delivered"] {
        let moved = http
            .post(format!("{}/shipments/{shipment}/status", node.url))
            .bearer_auth(&node.admin)
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap();
        assert_eq!(moved.status(), StatusCode::OK);
    }
    let (_, order) = node.get(&http, &format!("/orders/{}", paid[0])).await;
    assert_eq!(order["status"], "fulfilled");
    node.sigkill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_sync_still_delivers_every_event_once_without_a_gap() {
    use fusion_hub::store::HubStore;
    use fusion_sync::net;

    let node_dir = tempfile::tempdir().unwrap();
    let hub_dir = tempfile::tempdir().unwrap();
    let id = |dir: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
            .args(["node", "id", "--data-dir"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let node_endpoint = id(node_dir.path());
    assert_eq!(id(node_dir.path()), node_endpoint, "the identity persists");

    // The hub: a real store and endpoint, enrolling only this node.
    let hub = Arc::new(HubStore::open(hub_dir.path()).unwrap());
    let hub_ep = net::offline_endpoint(
        net::load_or_create_identity(hub_dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let enrolled: net::EndpointId = node_endpoint.parse().unwrap();
    let allowed = net::Gate::new(move |peer| peer == enrolled);
    let hub_flag = format!("{}@{}", hub_ep.id(), hub_ep.bound_sockets()[0]);
    tokio::spawn(net::serve(hub_ep, hub.clone(), None, None, allowed));
    let args = ["--hub", hub_flag.as_str(), "--sync-bind", "127.0.0.1:0"];

    let node = spawn_node_with(node_dir.path(), &args).await;
    let http = reqwest::Client::new();
    let product = json!({ "sku": "SYNC", "name": "Sync", "price": 1, "currency": "USD", "inventory": 1_000_000 });
    http.post(format!("{}/products", node.url))
        .bearer_auth(&node.admin)
        .json(&product)
        .send()
        .await
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(0usize));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, url, token, acknowledged) = (
            http.clone(),
            node.url.clone(),
            node.admin.clone(),
            acknowledged.clone(),
        );
        clients.push(tokio::spawn(async move {
            let order = json!({ "customerId": "sync", "items": [{ "sku": "SYNC", "quantity": 1, "price": 1 }] });
            while let Ok(answer) = http.post(format!("{url}/orders")).bearer_auth(&token).json(&order).send().await {
                if answer.status() == StatusCode::CREATED {
                    *acknowledged.lock().await += 1;
                }
            }
        }));
    }
    while *acknowledged.lock().await < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.sigkill().await; // mid-sync: events are being replicated as orders land
    for client in clients {
        client.await.unwrap();
    }

    let node = spawn_node_with(node_dir.path(), &args).await;
    for _ in 0..20 {
        let order = json!({ "customerId": "after", "items": [{ "sku": "SYNC", "quantity": 1, "price": 1 }] });
        http.post(format!("{}/orders", node.url))
            .bearer_auth(&node.admin)
            .json(&order)
            .send()
            .await
            .unwrap();
    }
    let at_node = all_events(&node, &http).await;
    wait_until_hub_holds(&hub, &at_node).await;
    node.sigkill().await;
}

/// Waits until the hub holds all of `at_node` (a node's log as `GET /events` gave it), then
/// checks it holds each event exactly once, in order, without a gap. Returns the hub's copy.
async fn wait_until_hub_holds(
    hub: &fusion_hub::store::HubStore,
    at_node: &[Value],
) -> Vec<fusion_contracts::Envelope> {
    let origin = fusion_contracts::NodeId::new(at_node[0]["origin"].as_str().unwrap()).unwrap();
    let last = at_node.len() as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hub.position(&origin).unwrap() < last {
        assert!(
            std::time::Instant::now() < deadline,
            "hub at {} of {last}",
            hub.position(&origin).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_hub = hub.events(&origin, 1, usize::MAX).unwrap();
    assert_eq!(at_hub.len() as u64, last, "exactly once");
    for (i, (hub_event, node_event)) in at_hub.iter().zip(at_node).enumerate() {
        assert_eq!(hub_event.seq, i as u64 + 1, "no gap, in order");
        assert_eq!(
            hub_event.event_id.to_string(),
            node_event["eventId"].as_str().unwrap()
        );
    }
    at_hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_offline_orders_drain_exactly_once_through_a_sigkill() {
    use fusion_hub::store::HubStore;
    use fusion_sync::net;

    const ORDERS: usize = 10_000;
    const CLIENTS: usize = 16;
    let node_dir = tempfile::tempdir().unwrap();
    let hub_dir = tempfile::tempdir().unwrap();
    // The hub's identity and port are known; nothing listens there while the node sells.
    let hub_key = net::load_or_create_identity(hub_dir.path()).unwrap();
    let hub_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hub_flag = format!("{}@{hub_port}", hub_key.public());
    let args = ["--hub", hub_flag.as_str(), "--sync-bind", "127.0.0.1:0"];
    let node = spawn_node_with(node_dir.path(), &args).await;
    let http = reqwest::Client::new();
    let product = json!({ "sku": "OFF", "name": "Offline", "price": 1, "currency": "USD", "inventory": 1_000_000 });
    http.post(format!("{}/products", node.url))
        .bearer_auth(&node.admin)
        .json(&product)
        .send()
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, token) = (http.clone(), node.url.clone(), node.admin.clone());
        clients.push(tokio::spawn(async move {
            let order = json!({ "customerId": "offline", "items": [{ "sku": "OFF", "quantity": 1, "price": 1 }] });
            for _ in 0..ORDERS / CLIENTS {
                let answer = http.post(format!("{url}/orders")).bearer_auth(&token).json(&order).send().await.unwrap();
                assert_eq!(answer.status(), StatusCode::CREATED);
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let at_node = all_events(&node, &http).await;
    let last = at_node.len() as u64;
    let origin = fusion_contracts::NodeId::new(at_node[0]["origin"].as_str().unwrap()).unwrap();

    // The hub comes up; the node is SIGKILLed as soon as the first batch is stored.
    let hub = Arc::new(HubStore::open(hub_dir.path()).unwrap());
    let hub_ep = net::offline_endpoint(hub_key, hub_port).await.unwrap();
    let enrolled: net::EndpointId = fusion(&[
        "node",
        "id",
        "--data-dir",
        node_dir.path().to_str().unwrap(),
    ])
    .1
    .trim()
    .parse()
    .unwrap();
    tokio::spawn(net::serve(
        hub_ep,
        hub.clone(),
        None,
        None,
        net::Gate::new(move |peer| peer == enrolled),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hub.position(&origin).unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the drain never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    node.sigkill().await;
    let at_kill = hub.position(&origin).unwrap();
    assert!(at_kill < last, "killed mid-sync: {at_kill} of {last}");

    // Restarted, it resumes from the hub's durable position: exactly once, no gap.
    let node = spawn_node_with(node_dir.path(), &args).await;
    let at_hub = wait_until_hub_holds(&hub, &at_node).await;
    let orders = at_hub
        .iter()
        .filter(|e| e.topic() == "order.created")
        .count();
    assert_eq!(orders, ORDERS);
    eprintln!("10,000 offline orders: SIGKILL at {at_kill} of {last} events, then drained");
    node.sigkill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_process_admits_only_enrolled_nodes_and_revoke_cuts_them_off() {
    let hub_dir = tempfile::tempdir().unwrap();
    let node_dir = tempfile::tempdir().unwrap();
    let hub_data = hub_dir.path().to_str().unwrap();
    let mut hub = spawn_hub(
        hub_dir.path(),
        &["--listen", "127.0.0.1:0", "--sync-bind", "127.0.0.1:0"],
    )
    .await;
    let (hub_url, hub_flag) = (hub.url.clone(), hub.endpoint.clone());
    // A dead address first, as when a hub's LAN address is unreachable: the live one is used.
    let hub_flag = hub_flag.replacen('@', "@127.0.0.1:9,", 1);
    let hub_token = std::fs::read_to_string(hub_dir.path().join("admin.token")).unwrap();
    let http = reqwest::Client::new();
    let hub_events = |query: &'static str| {
        let request = http
            .get(format!("{hub_url}/events?limit=1000&{query}"))
            .bearer_auth(hub_token.trim());
        async move {
            let page: Value = request.send().await.unwrap().json().await.unwrap();
            page["events"].as_array().unwrap().clone()
        }
    };

    // A node that is not enrolled replicates nothing.
    let (code, node_endpoint) = fusion(&[
        "node",
        "id",
        "--data-dir",
        node_dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let node_endpoint = node_endpoint.trim().to_string();
    let args = ["--hub", hub_flag.as_str(), "--sync-bind", "127.0.0.1:0"];
    let node = spawn_node_with(node_dir.path(), &args).await;
    let product =
        json!({ "sku": "HUB", "name": "Hub", "price": 1, "currency": "USD", "inventory": 100 });
    let order =
        json!({ "customerId": "c", "items": [{ "sku": "HUB", "quantity": 1, "price": 1 }] });
    let post = |path: &str, body: &Value| {
        http.post(format!("{}{path}", node.url))
            .bearer_auth(&node.admin)
            .json(body)
            .send()
    };
    assert_eq!(post("/products", &product).await.unwrap().status(), 201);
    assert_eq!(post("/orders", &order).await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        hub_events("").await.is_empty(),
        "an unenrolled node is refused"
    );

    // Enrolled by the command: the node's next attempt gets in and everything arrives.
    let hub_target = ["--url", hub_url.as_str(), "--data-dir", hub_data];
    let enroll = [
        &["hub", "enroll", node_endpoint.as_str(), "--store", "shop-1"][..],
        &hub_target[..],
    ]
    .concat();
    assert_eq!(fusion(&enroll).0, 0);
    let (code, listed) = fusion(&[&["hub", "enrollments", "--json"][..], &hub_target[..]].concat());
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap(),
        json!([{ "nodeId": node_endpoint, "storeId": "shop-1" }])
    );
    let (code, table) = fusion(&[&["hub", "enrollments"][..], &hub_target[..]].concat());
    assert_eq!(code, 0);
    assert!(
        table.starts_with("NODE") && table.contains("shop-1"),
        "{table}"
    );
    let bad = [
        &["hub", "enroll", "nonsense", "--store", "shop-1"][..],
        &hub_target[..],
    ]
    .concat();
    assert_eq!(fusion(&bad).0, 3, "a refused request exits 3");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while hub_events("store=shop-1&topic=order.created").await.len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the order never reached the hub"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The node's journal as the hub holds it verifies, under the node's own key.
    let origin = hub_events("store=shop-1&topic=order.created").await[0]["origin"]
        .as_str()
        .unwrap()
        .to_string();
    let hub_token_file = hub_dir.path().join("admin.token");
    let (code, out) = fusion(&[
        "--json",
        "journal",
        "verify",
        "--hub-url",
        hub_url.as_str(),
        "--origin",
        origin.as_str(),
        "--token-file",
        hub_token_file.to_str().unwrap(),
        "--key",
        node_endpoint.as_str(),
    ]);
    assert_eq!(code, 0, "{out}");
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["events"].as_u64().unwrap() >= 2, "{verified}");
    let (code, stores) = fusion(&[&["hub", "stores", "--json"][..], &hub_target[..]].concat());
    assert_eq!(code, 0);
    let stores: Value = serde_json::from_str(&stores).unwrap();
    assert_eq!(
        (stores[0]["storeId"].clone(), stores[0]["tills"].clone()),
        (json!("shop-1"), json!(1))
    );

    // `fusion sync status` on the node: the hub connected, nothing pending.
    let node_target = [
        "--url",
        node.url.as_str(),
        "--data-dir",
        node_dir.path().to_str().unwrap(),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, out) = fusion(&[&["sync", "status"][..], &node_target[..]].concat());
        assert_eq!(code, 0);
        if out.contains("\tconnected\t") && out.contains("pending 0\t") {
            assert!(out.contains(&format!("hub {hub_flag}")), "{out}");
            assert!(
                out.contains("documents ") && out.contains(" held, "),
                "{out}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Revoked by the command: cut off; later orders stay on the node.
    let revoke = [
        &["hub", "revoke", node_endpoint.as_str()][..],
        &hub_target[..],
    ]
    .concat();
    assert_eq!(fusion(&revoke).0, 0);
    let at_revoke = hub_events("").await.len();
    assert_eq!(post("/orders", &order).await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        hub_events("").await.len(),
        at_revoke,
        "nothing after the revocation"
    );
    assert_eq!(fusion(&revoke).0, 3, "revoking twice is refused");
    let (_, out) = fusion(&[&["sync", "status"][..], &node_target[..]].concat());
    // The order after the revocation: order.created and inventory.reserved wait on the node.
    assert!(
        out.contains("\tdisconnected\t") && out.contains("pending 2\t"),
        "{out}"
    );
    node.sigkill().await;
    hub.child.start_kill().unwrap();
}

/// `fusion node backup` under a write load, then `restore` and `verify`: the restored store
/// passes verify and holds every order acknowledged before the backup began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_order_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path()).await;
    let http = reqwest::Client::new();
    let product = json!({ "sku": "BAK", "name": "Bak", "price": 1, "currency": "USD", "inventory": 1_000_000 });
    let created = http
        .post(format!("{}/products", node.url))
        .bearer_auth(&node.admin)
        .json(&product)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, url, token) = (http.clone(), node.url.clone(), node.admin.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let body = json!({ "customerId": "bak", "items": [{ "sku": "BAK", "quantity": 1, "price": 1 }] });
            while !stop.load(Ordering::Relaxed) {
                let response = http.post(format!("{url}/orders")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                let order: Value = response.json().await.unwrap();
                acknowledged.lock().await.push(order["id"].as_str().unwrap().to_string());
            }
        }));
    }
    while acknowledged.lock().await.len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_backup = acknowledged.lock().await.clone();
    let backup_dir = tempfile::tempdir().unwrap();
    let out = backup_dir.path().join("copy");
    let (code, stdout) = tokio::task::block_in_place(|| {
        fusion(&[
            "node",
            "backup",
            "--out",
            out.to_str().unwrap(),
            "--url",
            &node.url,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
    });
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    // The load went on during the backup.
    let during = acknowledged.lock().await.len();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(during > before_backup.len());
    node.sigkill().await;

    // A second backup into the same dir is refused; restore and verify the copy.
    let (again, _) = fusion(&[
        "node",
        "backup",
        "--out",
        out.to_str().unwrap(),
        "--url",
        "http://127.0.0.1:9",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(again, 1);
    let restored = backup_dir.path().join("restored");
    let (restore, out_text) = fusion(&[
        "node",
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--into",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(restore, 0, "{out_text}");
    let (verify, verified) = fusion(&["node", "verify", "--data-dir", restored.to_str().unwrap()]);
    assert_eq!(verify, 0, "{verified}");
    assert!(verified.starts_with("ok: "), "{verified}");
    // Tokens are in the store (hashed), so the original admin token works on the restored node;
    // the token file itself is a secret a backup does not carry.
    std::fs::copy(dir.path().join("admin.token"), restored.join("admin.token")).unwrap();
    let node = spawn_node(&restored).await;
    for id in &before_backup {
        let (status, _) = node.get(&http, &format!("/orders/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "order {id}, acknowledged before the backup, is missing"
        );
    }
    node.sigkill().await;
    // Verify refuses what is not a store.
    let empty = tempfile::tempdir().unwrap();
    let (missing, _) = fusion(&[
        "node",
        "verify",
        "--data-dir",
        empty.path().to_str().unwrap(),
    ]);
    assert_eq!(missing, 1);
}
