//! The node's HTTP API over real HTTP, against a real redb file in a temp dir: every route's happy
//! path and its error paths, idempotency across restarts, and the all-or-nothing stock rule under
//! concurrency.

use std::net::SocketAddr;
use std::path::Path;

use fusion_node::server::{self, Node};
use fusion_node::store::{Store, StoreOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct TestNode {
    addr: SocketAddr,
    admin: String,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Store,
}

struct Answer {
    status: StatusCode,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

async fn start(dir: &Path) -> TestNode {
    start_with(dir, None).await
}

async fn start_with(
    dir: &Path,
    card: Option<std::sync::Arc<dyn fusion_node::card::CardProvider>>,
) -> TestNode {
    start_configured(dir, card, fusion_node::card::PaymentPolicy::default()).await
}

async fn start_configured(
    dir: &Path,
    card: Option<std::sync::Arc<dyn fusion_node::card::CardProvider>>,
    policy: fusion_node::card::PaymentPolicy,
) -> TestNode {
    start_full(dir, card, policy, StoreOptions::default()).await
}

async fn start_full(
    dir: &Path,
    card: Option<std::sync::Arc<dyn fusion_node::card::CardProvider>>,
    policy: fusion_node::card::PaymentPolicy,
    options: StoreOptions,
) -> TestNode {
    let mut node = open_again(dir, options).await.with_payment_policy(policy);
    if let Some(card) = card {
        node = node.with_card_provider(card);
    }
    serve_node(node).await
}

/// Opens the node in `dir`. A node just stopped in this process may still be letting go of its
/// file (the last request tasks drop their handles a moment after the server stops): a
/// restarted test node waits for that, up to 5 s, as a restarted process never has to.
async fn open_again(dir: &Path, options: StoreOptions) -> Node {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Node::open(dir, options.clone()).await {
            Ok(node) => return node,
            Err(e)
                if format!("{e:#}").contains("already open")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("opening the node: {e:#}"),
        }
    }
}

/// Serves an opened node on a loopback port.
async fn serve_node(node: Node) -> TestNode {
    let admin = std::fs::read_to_string(&node.admin_token_path)
        .unwrap()
        .trim()
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let store = node.store().clone();
    let task = tokio::spawn(server::serve(listener, node.state.clone(), async {
        let _ = stopped.await;
    }));
    TestNode {
        addr,
        admin,
        http: reqwest::Client::new(),
        stop,
        task,
        store,
    }
}

impl TestNode {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .unwrap();
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            body,
            headers,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, Some(&self.admin), None, &[])
            .await
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> Answer {
        self.call(method, path, Some(&self.admin), Some(&body), &[])
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(&self.admin), Some(&body), &[])
            .await
    }

    async fn token(&self, role: &str) -> String {
        let answer = self.post("/tokens", json!({ "role": role })).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["token"].as_str().unwrap().to_string()
    }

    async fn product(&self, sku: &str, price: Value, inventory: u64) -> Value {
        let answer = self
            .post("/products", json!({ "sku": sku, "name": format!("Product {sku}"), "price": price, "currency": "USD", "inventory": inventory }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }

    async fn stock(&self, sku: &str) -> u64 {
        let answer = self.get(&format!("/inventory/{sku}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["quantity"].as_u64().unwrap()
    }

    /// Every event of the log, paging through `GET /events`.
    async fn events(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = self.get(&format!("/events?after={after}&limit=1000")).await;
            assert_eq!(page.status, StatusCode::OK);
            let page = page.body.as_array().unwrap().clone();
            if page.is_empty() {
                return all;
            }
            after = page.last().unwrap()["seq"].as_u64().unwrap();
            all.extend(page);
        }
    }
}

fn order(items: Value) -> Value {
    json!({ "customerId": "cust-1", "items": items })
}

fn assert_error(answer: &Answer, status: StatusCode, error: &str, field: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"], error, "{}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        answer.body
    );
    match field {
        Some(field) => assert_eq!(answer.body["field"], field, "{}", answer.body),
        None => assert!(answer.body.get("field").is_none(), "{}", answer.body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_routes_auth_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    assert_eq!(
        node.call(Method::GET, "/health", None, None, &[])
            .await
            .body,
        json!({ "status": "ok" })
    );
    assert_eq!(
        node.call(Method::GET, "/ready", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );

    let anonymous = node.call(Method::GET, "/products", None, None, &[]).await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized", None);
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    let forged = node
        .call(Method::GET, "/products", Some("fct_forged"), None, &[])
        .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "unauthorized", None);
    for path in [
        "/metrics",
        "/openapi.json",
        "/events",
        "/orders",
        "/inventory",
    ] {
        assert_eq!(
            node.call(Method::GET, path, None, None, &[]).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }

    let cashier = node.token("cashier").await;
    let manager = node.token("manager").await;
    let body = json!({ "sku": "X1", "name": "x", "price": 1, "currency": "USD" });
    let denied = node
        .call(Method::POST, "/products", Some(&cashier), Some(&body), &[])
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let denied = node
        .call(
            Method::PUT,
            "/inventory",
            Some(&cashier),
            Some(&json!({"sku": "X1", "quantity": 1})),
            &[],
        )
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let denied = node
        .call(
            Method::POST,
            "/tokens",
            Some(&manager),
            Some(&json!({"role": "admin"})),
            &[],
        )
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let allowed = node
        .call(Method::POST, "/products", Some(&manager), Some(&body), &[])
        .await;
    assert_eq!(allowed.status, StatusCode::CREATED);
    let read = node
        .call(Method::GET, "/products", Some(&cashier), None, &[])
        .await;
    assert_eq!(read.status, StatusCode::OK);

    // Tokens are listed without secrets, and a revoked token stops working at once.
    let tokens = node.get("/tokens").await.body;
    assert_eq!(tokens.as_array().unwrap().len(), 3);
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("token").is_none())
    );
    let cashier_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "cashier")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = node
        .call(
            Method::DELETE,
            &format!("/tokens/{cashier_id}"),
            Some(&node.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = node
        .call(Method::GET, "/products", Some(&cashier), None, &[])
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let again = node
        .call(
            Method::DELETE,
            &format!("/tokens/{cashier_id}"),
            Some(&node.admin),
            None,
            &[],
        )
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found", None);

    let metrics = node.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("fusion_http_requests_total")
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let doc = node.get("/openapi.json").await.body;
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/products", "post"),
        ("/products", "get"),
        ("/products/{id}", "get"),
        ("/products/{id}", "patch"),
        ("/products/{id}", "delete"),
        ("/inventory", "put"),
        ("/inventory", "get"),
        ("/inventory/{sku}", "get"),
        ("/inventory/{sku}/adjust", "post"),
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{id}", "get"),
        ("/orders/{id}/cancel", "post"),
        ("/events", "get"),
        ("/tokens", "post"),
        ("/tokens", "get"),
        ("/tokens/{id}", "delete"),
        ("/backup", "get"),
        ("/products/by-sku/{sku}", "get"),
        ("/settings", "get"),
        ("/settings", "patch"),
        ("/campaigns", "post"),
        ("/campaigns", "get"),
        ("/campaigns/{id}", "get"),
        ("/campaigns/{id}/join", "post"),
        ("/campaigns/{id}/leave", "post"),
        ("/campaigns/{id}/cancel", "post"),
        ("/payments", "post"),
        ("/payments/{id}", "get"),
        ("/payments/{id}/capture", "post"),
        ("/payments/{id}/refund", "post"),
        ("/orders/{id}/payments", "get"),
        ("/store-credit/{account}", "get"),
        ("/store-credit/{account}/issue", "post"),
        ("/shipping/labels", "post"),
        ("/shipping/labels/{id}", "get"),
        ("/shipping/labels/{id}/label.zpl", "get"),
        ("/orders/{id}/shipments", "get"),
        ("/shipments/{id}/status", "post"),
        ("/sync/status", "get"),
        ("/inventory/{sku}/transfer", "post"),
        ("/escrow", "get"),
        ("/campaigns/{id}/seats/transfer", "post"),
        ("/escrow/card-budget/transfer", "post"),
        ("/promotions", "get"),
        ("/promotions", "post"),
        ("/promotions/{id}", "put"),
        ("/promotions/{id}", "delete"),
        ("/orders/{id}/returns", "post"),
        ("/orders/{id}/exchanges", "post"),
        ("/orders/{id}/receipt", "get"),
        ("/orders/{id}/receipt/prints", "post"),
        ("/orders/quote", "post"),
        ("/orders/{id}/receipt/emails", "post"),
        ("/printer", "get"),
        ("/receipts/{number}", "get"),
        ("/returns/{id}/receipt", "get"),
        ("/staff", "get"),
        ("/staff", "post"),
        ("/staff/{id}", "patch"),
        ("/staff/{id}", "delete"),
        ("/staff/sign-in", "post"),
        ("/staff/sign-out", "post"),
        ("/sessions", "get"),
        ("/sessions", "post"),
        ("/sessions/current", "get"),
        ("/sessions/{id}", "get"),
        ("/sessions/{id}/cash", "post"),
        ("/sessions/{id}/close", "post"),
        ("/sessions/{id}/report", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        expected.len(),
        "the document lists routes the test does not know"
    );
    assert!(doc["components"]["schemas"]["PlaceOrderRequest"].is_object());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_routes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let created = node.product("TEA", json!(4.5), 12).await;
    assert_eq!(created["price"], json!(4.5));
    assert_eq!(created["inventory"], 12);
    assert_eq!(created["status"], "active");
    assert_eq!(
        node.stock("TEA").await,
        12,
        "the inventory field seeds stock"
    );
    let id = created["id"].as_str().unwrap().to_string();

    let duplicate = node
        .post(
            "/products",
            json!({ "sku": "TEA", "name": "again", "price": 1, "currency": "USD" }),
        )
        .await;
    assert_error(&duplicate, StatusCode::CONFLICT, "sku_taken", Some("sku"));

    let cases = [
        (json!({ "name": "x", "price": 1, "currency": "USD" }), "sku"),
        (json!({ "sku": "B", "price": 1, "currency": "USD" }), "name"),
        (
            json!({ "sku": "B", "name": " ", "price": 1, "currency": "USD" }),
            "name",
        ),
        (
            json!({ "sku": "B", "name": "x", "price": -1, "currency": "USD" }),
            "price",
        ),
        (
            json!({ "sku": "B", "name": "x", "price": 10.005, "currency": "USD" }),
            "price",
        ),
        (
            json!({ "sku": "B", "name": "x", "price": 1.5, "currency": "JPY" }),
            "price",
        ),
        (
            json!({ "sku": "B", "name": "x", "price": "abc", "currency": "USD" }),
            "price",
        ),
        (
            json!({ "sku": "B", "name": "x", "price": 1, "currency": "XYZ" }),
            "currency",
        ),
        (
            json!({ "sku": "B", "name": "x", "price": 1, "currency": "USD", "inventory": -1 }),
            "inventory",
        ),
        (
            json!({ "sku": "a b", "name": "x", "price": 1, "currency": "USD" }),
            "sku",
        ),
        (
            json!({ "sku": "B", "name": 7, "price": 1, "currency": "USD" }),
            "name",
        ),
    ];
    for (body, field) in cases {
        let answer = node.post("/products", body.clone()).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
        assert!(
            answer.body["message"].as_str().unwrap().starts_with(field),
            "{}",
            answer.body
        );
    }
    let yen = node
        .post(
            "/products",
            json!({ "sku": "JP", "name": "Sencha", "price": 1500, "currency": "jpy" }),
        )
        .await;
    assert_eq!(yen.status, StatusCode::CREATED);
    assert_eq!(
        (yen.body["price"].clone(), yen.body["currency"].clone()),
        (json!(1500), json!("JPY"))
    );

    assert_eq!(
        node.get(&format!("/products/{id}")).await.body["sku"],
        "TEA"
    );
    assert_error(
        &node
            .get("/products/00000000-0000-0000-0000-000000000000")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &node.get("/products/not-an-id").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    for sku in ["P1", "P2", "P3"] {
        node.product(sku, json!(1), 0).await;
    }
    let page = node.get("/products?limit=2&offset=1").await.body;
    let skus: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["JP", "P1"], "insertion order");
    assert_error(
        &node.get("/products?limit=0").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("limit"),
    );
    assert_error(
        &node.get("/products?limit=201").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("limit"),
    );
    assert_error(
        &node.get("/products?offset=-1").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("offset"),
    );

    let product_path = format!("/products/{id}");
    let updated = node
        .send(
            Method::PATCH,
            &product_path,
            json!({ "price": 4.75, "description": "Loose leaf" }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        (
            updated.body["price"].clone(),
            updated.body["description"].clone()
        ),
        (json!(4.75), json!("Loose leaf"))
    );
    assert_error(
        &node
            .send(Method::PATCH, &product_path, json!({ "price": 4.755 }))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("price"),
    );
    assert_error(
        &node
            .send(Method::PATCH, &product_path, json!({ "sku": "OTHER" }))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("sku"),
    );
    assert_error(
        &node
            .send(Method::PATCH, &product_path, json!({ "currency": "JPY" }))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("price"),
    );
    assert_eq!(
        node.send(Method::PATCH, &product_path, json!({ "sku": "TEA" }))
            .await
            .status,
        StatusCode::OK,
        "the same sku is accepted"
    );
    let missing = node
        .call(
            Method::PATCH,
            "/products/00000000-0000-0000-0000-000000000001",
            Some(&node.admin),
            Some(&json!({"name": "x"})),
            &[],
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found", None);

    let archived = node
        .call(
            Method::DELETE,
            &format!("/products/{id}"),
            Some(&node.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (archived.status, archived.body["status"].clone()),
        (StatusCode::OK, json!("archived"))
    );
    let listed = node.get("/products?limit=200").await.body;
    assert!(
        listed.as_array().unwrap().iter().all(|p| p["sku"] != "TEA"),
        "archived products leave the list"
    );
    assert_eq!(
        node.get(&format!("/products/{id}")).await.body["status"],
        "archived"
    );
    assert_error(
        &node
            .send(Method::PATCH, &product_path, json!({ "name": "x" }))
            .await,
        StatusCode::CONFLICT,
        "product_archived",
        None,
    );
    let reuse = node
        .post(
            "/products",
            json!({ "sku": "TEA", "name": "again", "price": 1, "currency": "USD" }),
        )
        .await;
    assert_error(&reuse, StatusCode::CONFLICT, "sku_taken", Some("sku"));

    let topics: Vec<String> = node
        .events()
        .await
        .iter()
        .map(|e| e["topic"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&topics[..2], ["product.created", "inventory.adjusted"]);
    assert!(
        topics.contains(&"product.updated".to_string())
            && topics.contains(&"product.archived".to_string())
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_routes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    assert_eq!(
        node.send(
            Method::PUT,
            "/inventory",
            json!({ "sku": "NUT", "quantity": 7 })
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(node.stock("NUT").await, 7);
    assert_error(
        &node
            .send(
                Method::PUT,
                "/inventory",
                json!({ "sku": "NUT", "quantity": -1 }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("quantity"),
    );
    assert_error(
        &node
            .send(Method::PUT, "/inventory", json!({ "quantity": 1 }))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("sku"),
    );

    let adjusted = node
        .post(
            "/inventory/NUT/adjust",
            json!({ "delta": 5, "reason": "delivery" }),
        )
        .await;
    assert_eq!(
        (adjusted.status, adjusted.body["quantity"].clone()),
        (StatusCode::OK, json!(12))
    );
    let adjusted = node
        .post(
            "/inventory/NUT/adjust",
            json!({ "delta": -12, "reason": "damaged" }),
        )
        .await;
    assert_eq!(adjusted.body["quantity"], 0);
    let below = node
        .post(
            "/inventory/NUT/adjust",
            json!({ "delta": -1, "reason": "count" }),
        )
        .await;
    assert_error(
        &below,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_stock",
        Some("delta"),
    );
    assert_eq!(below.body["available"], 0);
    assert_eq!(
        node.stock("NUT").await,
        0,
        "a refused adjustment changes nothing"
    );
    assert_error(
        &node
            .post(
                "/inventory/NUT/adjust",
                json!({ "delta": 0, "reason": "x" }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("delta"),
    );
    assert_error(
        &node
            .post("/inventory/NUT/adjust", json!({ "delta": 1 }))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("reason"),
    );

    node.send(
        Method::PUT,
        "/inventory",
        json!({ "sku": "ALM", "quantity": 3 }),
    )
    .await;
    let all = node.get("/inventory").await.body;
    assert_eq!(
        all,
        json!([
            { "sku": "ALM", "quantity": 3, "reserved": 0, "updatedAt": all[0]["updatedAt"] },
            { "sku": "NUT", "quantity": 0, "reserved": 0, "updatedAt": all[1]["updatedAt"] },
        ])
    );
    assert_error(
        &node.get("/inventory/NOPE").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    let adjustments: Vec<Value> = node
        .events()
        .await
        .into_iter()
        .filter(|e| e["topic"] == "inventory.adjusted")
        .collect();
    let reasons: Vec<&str> = adjustments
        .iter()
        .map(|e| e["payload"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["set", "delivery", "damaged", "set"]);
    assert_eq!(adjustments[1]["key"], "NUT");
    assert_eq!(adjustments[1]["payload"]["previousQuantity"], 7);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_reserve_all_or_nothing_and_cancel_releases() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    node.product("A", json!(0.1), 10).await;
    node.product("B", json!(0.2), 1).await;

    let placed = node.post("/orders", order(json!([{ "sku": "A", "quantity": 1, "price": 0.1 }, { "sku": "B", "quantity": 1, "price": 0.2, "category": "snacks" }]))).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    assert_eq!(placed.body["total"], json!(0.3));
    assert_eq!(placed.body["currency"], "USD");
    assert_eq!(placed.body["status"], "created");
    assert_eq!((node.stock("A").await, node.stock("B").await), (9, 0));
    let order_id = placed.body["id"].as_str().unwrap().to_string();

    // B is short: the whole order is refused, and A keeps every unit.
    let short = node.post("/orders", order(json!([{ "sku": "A", "quantity": 2, "price": 0.1 }, { "sku": "B", "quantity": 1, "price": 0.2 }]))).await;
    assert_error(
        &short,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_stock",
        Some("items[1].quantity"),
    );
    assert_eq!(
        (
            short.body["sku"].clone(),
            short.body["requested"].clone(),
            short.body["available"].clone()
        ),
        (json!("B"), json!(1), json!(0))
    );
    assert_eq!(
        (node.stock("A").await, node.stock("B").await),
        (9, 0),
        "nothing stays reserved"
    );
    let inventory = node.get("/inventory/A").await.body;
    assert_eq!(inventory["reserved"], 1);

    let cases = [
        (order(json!([])), "items"),
        (
            order(json!([{ "sku": "A", "quantity": 0, "price": 1 }])),
            "items[0].quantity",
        ),
        (
            order(json!([{ "sku": "A", "quantity": 1, "price": 1.001 }])),
            "items[0].price",
        ),
        (
            json!({ "items": [{ "sku": "A", "quantity": 1, "price": 1 }] }),
            "customerId",
        ),
        (
            json!({ "customerId": "c", "currency": "JPY", "items": [{ "sku": "A", "quantity": 1, "price": 0.5 }] }),
            "items[0].price",
        ),
    ];
    for (body, field) in cases {
        assert_error(
            &node.post("/orders", body).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
    }
    assert_eq!(node.stock("A").await, 9);

    let got = node.get(&format!("/orders/{order_id}")).await;
    assert_eq!(got.body, placed.body);
    assert_error(
        &node
            .get("/orders/00000000-0000-0000-0000-000000000009")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    let second = node
        .post(
            "/orders",
            order(json!([{ "sku": "A", "quantity": 3, "price": 0.1 }])),
        )
        .await;
    let list = node.get("/orders").await.body;
    assert_eq!(list[0]["id"], second.body["id"], "newest first");
    assert_eq!(list[1]["id"], json!(order_id));

    let cashier = node.token("cashier").await;
    let denied = node
        .call(
            Method::POST,
            &format!("/orders/{order_id}/cancel"),
            Some(&cashier),
            None,
            &[],
        )
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let cancelled = node
        .post(
            &format!("/orders/{order_id}/cancel"),
            json!({ "reason": "customer changed mind" }),
        )
        .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].clone()),
        (StatusCode::OK, json!("cancelled"))
    );
    assert_eq!(
        (node.stock("A").await, node.stock("B").await),
        (7, 1),
        "cancel releases the reservation"
    );
    let twice = node
        .call(
            Method::POST,
            &format!("/orders/{order_id}/cancel"),
            Some(&node.admin),
            None,
            &[],
        )
        .await;
    assert_error(&twice, StatusCode::CONFLICT, "order_not_cancellable", None);
    assert_eq!(node.stock("B").await, 1, "a second cancel releases nothing");
    let unknown = node
        .post(
            "/orders/00000000-0000-0000-0000-000000000009/cancel",
            json!({}),
        )
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found", None);

    let events = node.events().await;
    let topics: Vec<&str> = events
        .iter()
        .map(|e| e["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        &topics[4..],
        [
            "order.created",
            "inventory.reserved",
            "inventory.insufficient",
            "order.created",
            "inventory.reserved",
            "order.cancelled",
            "inventory.released",
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "the log has no gaps"
    );
    let created = &events[4];
    assert_eq!(created["key"], json!(order_id));
    assert_eq!(created["payload"]["orderId"], json!(order_id));
    assert_eq!(created["payload"]["customerId"], "cust-1");
    assert_eq!(created["payload"]["total"], json!(0.3));
    assert_eq!(events[5]["payload"]["status"], "reserved");
    assert_eq!(
        events[5]["causationId"], created["eventId"],
        "reservation is caused by the order"
    );
    assert_eq!(events[5]["correlationId"], created["correlationId"]);
    let insufficient = &events[6]["payload"];
    assert_eq!(
        (
            insufficient["sku"].clone(),
            insufficient["quantity"].clone(),
            insufficient["available"].clone()
        ),
        (json!("B"), json!(1), json!(0))
    );
    assert_eq!(
        events[10]["payload"]["items"],
        json!([{ "sku": "A", "quantity": 1 }, { "sku": "B", "quantity": 1 }])
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_4xx_never_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let raw = |body: Vec<u8>| {
        node.http
            .post(format!("http://{}/orders", node.addr))
            .bearer_auth(&node.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            br#"{"customerId":"c","items":[{"sku":"A","quantity":1,"price":1}]} trailing"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (vec![0xff, 0xfe], StatusCode::BAD_REQUEST, "invalid_json"),
        (
            vec![b' '; fusion_node::api::BODY_BYTES_MAX + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (body, status, error) in cases {
        let response = raw(body).await.unwrap();
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
    }
    let bad_key = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&order(json!([]))),
            &[("Idempotency-Key", "")],
        )
        .await;
    assert_error(
        &bad_key,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("Idempotency-Key"),
    );
    assert_error(
        &node.get("/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &node.get("/events?after=x").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("after"),
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    node.product("A", json!(2.5), 10).await;
    let body = order(json!([{ "sku": "A", "quantity": 2, "price": 2.5 }]));
    let key = [("Idempotency-Key", "till-1-sale-42")];
    let first = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&body),
            &key,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let retry = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&body),
            &key,
        )
        .await;
    assert_eq!(
        (retry.status, &retry.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(node.stock("A").await, 8, "the retry reserved nothing");
    let other = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&order(json!([{ "sku": "A", "quantity": 1, "price": 2.5 }]))),
            &key,
        )
        .await;
    assert_error(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        Some("Idempotency-Key"),
    );

    // A refusal is an answer too: the same key gets the same 422 even after stock arrives.
    let greedy = order(json!([{ "sku": "A", "quantity": 50, "price": 2.5 }]));
    let refused = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&greedy),
            &[("Idempotency-Key", "greedy")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let admin = node.admin.clone();
    node.stop().await;

    let node = start(dir.path()).await;
    assert_eq!(node.admin, admin, "the admin token persists");
    let after_restart = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&body),
            &key,
        )
        .await;
    assert_eq!(
        (after_restart.status, &after_restart.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(node.stock("A").await, 8);
    node.call(
        Method::PUT,
        "/inventory",
        Some(&node.admin),
        Some(&json!({ "sku": "A", "quantity": 100 })),
        &[],
    )
    .await;
    let refused_again = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&greedy),
            &[("Idempotency-Key", "greedy")],
        )
        .await;
    assert_eq!(
        (refused_again.status, &refused_again.body),
        (StatusCode::UNPROCESSABLE_ENTITY, &refused.body)
    );
    let orders = node.get("/orders").await.body;
    assert_eq!(orders.as_array().unwrap().len(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_never_oversell() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    node.product("LAST", json!(1.99), 50).await;
    let cashier = node.token("cashier").await;
    let body = order(json!([{ "sku": "LAST", "quantity": 1, "price": 1.99 }]));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let http = node.http.clone();
        let url = format!("http://{}/orders", node.addr);
        let (cashier, body) = (cashier.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(cashier)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::UNPROCESSABLE_ENTITY => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, refused), (50, 150));
    assert_eq!(node.stock("LAST").await, 0);
    assert_eq!(node.get("/inventory/LAST").await.body["reserved"], 50);
    let events = node.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["topic"] == "order.created")
            .count(),
        50
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["topic"] == "inventory.reserved")
            .count(),
        50
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["topic"] == "inventory.insufficient")
            .count(),
        150
    );
    node.stop().await;
}

#[path = "api/campaigns.rs"]
mod campaigns;
#[path = "api/chain.rs"]
mod chain;
#[path = "api/payments.rs"]
mod payments;
#[path = "api/peers.rs"]
mod peers;
#[path = "api/pricing.rs"]
mod pricing;
#[path = "api/printing.rs"]
mod printing;
#[path = "api/sessions.rs"]
mod sessions;
#[path = "api/shipping.rs"]
mod shipping;
#[path = "api/staff.rs"]
mod staff;

/// Options of a till of store `store-9`.
fn store_options() -> StoreOptions {
    StoreOptions {
        store_id: Some(fusion_contracts::StoreId::new("store-9").unwrap()),
        ..StoreOptions::default()
    }
}

/// A node that is a till of store `store-9`.
async fn of_store(dir: &Path) -> TestNode {
    let options = store_options();
    start_full(
        dir,
        None,
        fusion_node::card::PaymentPolicy::default(),
        options,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_settings_need_a_store_id_and_a_manager() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    // No store id: nothing is shared (the defaults apply), and nothing can be set.
    let answer = node.get("/settings").await;
    assert_eq!(
        (answer.status, answer.body.clone()),
        (StatusCode::OK, json!({ "discountApprovalPercent": 10 }))
    );
    let answer = node
        .send(Method::PATCH, "/settings", json!({ "name": "Main Street" }))
        .await;
    assert_error(&answer, StatusCode::CONFLICT, "no_store_id", None);
    node.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    let cashier = node.token("cashier").await;
    let body = json!({ "orderHoldSecs": 60 });
    let answer = node
        .call(Method::PATCH, "/settings", Some(&cashier), Some(&body), &[])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({ "orderHoldSecs": "soon" }), "orderHoldSecs"),
        (
            json!({ "cardFloorLimit": { "amount": 1, "currency": "XYZ" } }),
            "cardFloorLimit.currency",
        ),
        (json!({ "name": "" }), "name"),
    ] {
        let answer = node.send(Method::PATCH, "/settings", body).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
    }
    let answer = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "name": "Dock", "cardFloorLimit": { "amount": 25.5, "currency": "EUR" } }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body,
        json!({ "storeId": "store-9", "name": "Dock", "cardFloorLimit": { "amount": 25.5, "currency": "EUR" }, "discountApprovalPercent": 10 })
    );
    // Durable: a restart serves the same settings.
    node.stop().await;
    let node = of_store(dir.path()).await;
    assert_eq!(node.get("/settings").await.body["name"], "Dock");
    node.stop().await;
}

/// A sku whose policy (the store's settings) allows backorders takes an order past this till's
/// stock: what there is is reserved, the rest is owed and the order flagged for review; a paid
/// backorder is not fulfilled before its owed units arrive, which they do oldest order first
/// as stock arrives; a cancelled backorder is owed nothing. Other skus are still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backorders_are_taken_flagged_and_filled_as_stock_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    let answer = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "backorders": { "BO": true, "NB": false } }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["backorderSkus"], json!(["BO"]));
    let bad = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "backorders": { "a b": true } }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    node.product("BO", json!(4), 2).await;
    node.product("NB", json!(4), 1).await;
    let order = |sku: &str, quantity: u64| json!({ "customerId": "c", "items": [{ "sku": sku, "quantity": quantity, "price": 4 }] });
    let refused = node.post("/orders", order("NB", 2)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

    let first = node.post("/orders", order("BO", 5)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let first_id = first.body["id"].as_str().unwrap().to_string();
    let second = node.post("/orders", order("BO", 1)).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let second_id = second.body["id"].as_str().unwrap().to_string();
    assert_eq!(node.get("/inventory/BO").await.body["quantity"], 0);
    let events = node.get("/events?limit=200").await.body;
    let topics: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"] == first_id.as_str())
        .filter_map(|e| e["topic"].as_str())
        .collect();
    assert_eq!(
        topics,
        [
            "order.created",
            "inventory.reserved",
            "inventory.backordered",
            "order.flagged"
        ]
    );

    // Paid, but 3 units are owed: not fulfilled yet.
    let paid = node
        .post("/payments", json!({ "orderId": first_id, "amount": 20, "currency": "USD", "paymentMethodId": "cash" }))
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    let status = |id: String| {
        let node = &node;
        async move { node.get(&format!("/orders/{id}")).await.body }
    };
    assert_eq!(status(first_id.clone()).await["status"], "paid");
    // 2 arrive: both go to the oldest backorder, which still owes 1.
    let adjust = |delta: i64| json!({ "delta": delta, "reason": "delivery" });
    assert_eq!(
        node.post("/inventory/BO/adjust", adjust(2)).await.status,
        StatusCode::OK
    );
    assert_eq!(node.get("/inventory/BO").await.body["quantity"], 0);
    assert_eq!(status(first_id.clone()).await["status"], "paid");
    // 1 more: the first order has everything and is fulfilled; the second still owes 1.
    assert_eq!(
        node.post("/inventory/BO/adjust", adjust(1)).await.status,
        StatusCode::OK
    );
    let done = status(first_id.clone()).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    // The second is cancelled: what arrives next stays available.
    let cancelled = node
        .post(&format!("/orders/{second_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(
        node.post("/inventory/BO/adjust", adjust(1)).await.status,
        StatusCode::OK
    );
    assert_eq!(node.get("/inventory/BO").await.body["quantity"], 1);
    node.stop().await;
}
