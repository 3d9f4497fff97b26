//! `/payments` over real HTTP: cash with change, split tenders, the order becoming paid, refunds,
//! every 4xx; and cards through the real Stripe adapter against localstripe (a stateful Stripe
//! emulator on loopback, started here): authorize, capture, partial refund, decline (402),
//! idempotent retry, provider down.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fusion_node::card::StripeProvider;

use super::*;

/// The localstripe release these tests were written against.
const LOCALSTRIPE: &str = "localstripe==1.15.10";

/// Installs localstripe from PyPI when this Python lacks it (a fresh machine), once per process.
fn ensure_localstripe() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let present = Command::new("python3")
            .args(["-c", "import localstripe"])
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            let status = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", LOCALSTRIPE])
                .status()
                .expect("python3 is needed to run localstripe");
            assert!(status.success(), "pip install {LOCALSTRIPE} failed");
        }
    });
}

/// True when `url` answers like localstripe: `GET /v1/customers` is a Stripe list.
fn is_localstripe(url: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(url.trim_start_matches("http://")) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /v1/customers HTTP/1.0\r\nAuthorization: Basic c2tfdGVzdF9mdXNpb246\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.contains("\"object\": \"list\"")
}

/// A localstripe process on a free loopback port, killed on drop.
struct LocalStripe {
    child: Child,
    url: String,
}

impl LocalStripe {
    /// Starts localstripe on a free port. Picking a port and handing it over leaves a window in
    /// which another test may bind it, so the answering server is checked to be our localstripe
    /// (alive, and speaking Stripe's list format), and a lost race is retried on a new port.
    fn start() -> LocalStripe {
        ensure_localstripe();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("python3")
                // --from-scratch: every instance writes /tmp/localstripe.pickle; none may read it.
                .args([
                    "-m",
                    "localstripe",
                    "--from-scratch",
                    "--port",
                    &port.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting localstripe");
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break; // it exited: the port was taken
                }
                if is_localstripe(&url) {
                    return LocalStripe { child, url };
                }
                assert!(
                    Instant::now() < deadline,
                    "localstripe did not start on port {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("localstripe could not get a free port in 5 tries");
    }

    fn provider(&self) -> Arc<dyn fusion_node::card::CardProvider> {
        Arc::new(StripeProvider::new(&self.url, "sk_test_fusion").unwrap())
    }

    /// A card payment method at the emulator, as a till's card reader would create it.
    async fn card(&self, number: &str) -> String {
        let form = [
            ("type", "card"),
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ];
        let response = reqwest::Client::new()
            .post(format!("{}/v1/payment_methods", self.url))
            .basic_auth("sk_test_fusion", None::<&str>)
            .form(&form)
            .send()
            .await
            .unwrap();
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn intent(&self, id: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/payment_intents/{id}", self.url))
            .basic_auth("sk_test_fusion", None::<&str>)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An order of `total` (one line) on a fresh product.
async fn order_of(node: &TestNode, sku: &str, total: Value) -> String {
    node.product(sku, total.clone(), 10).await;
    let placed = node
        .post(
            "/orders",
            order(json!([{ "sku": sku, "quantity": 1, "price": total }])),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED);
    placed.body["id"].as_str().unwrap().to_string()
}

fn payment(order_id: &str, amount: Value, method: &str) -> Value {
    json!({ "orderId": order_id, "amount": amount, "currency": "USD", "paymentMethodId": method })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cash_split_tenders_refunds_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let order_id = order_of(&node, "P1", json!(30.48)).await;

    let mut cash = payment(&order_id, json!(10), "cash");
    cash["tendered"] = json!(20);
    let first = node.post("/payments", cash).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(
        (
            first.body["status"].clone(),
            first.body["changeDue"].clone()
        ),
        (json!("captured"), json!(10.0))
    );
    assert_eq!(first.body["orderId"], json!(order_id));

    let cases = [
        (
            payment(&order_id, json!(20.49), "cash"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "overpayment",
            Some("amount"),
        ),
        (
            json!({ "orderId": order_id, "amount": 1, "currency": "EUR", "paymentMethodId": "cash" }),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("currency"),
        ),
        (
            payment("00000000-0000-0000-0000-000000000001", json!(1), "cash"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_not_found",
            Some("orderId"),
        ),
        (
            payment(&order_id, json!(1), "store_credit:acct-1"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "store_credit_not_found",
            Some("paymentMethodId"),
        ),
        (
            payment(&order_id, json!(1), "store_credit:no spaces"),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("paymentMethodId"),
        ),
        (
            payment(&order_id, json!(1), "bitcoin"),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("paymentMethodId"),
        ),
        (
            payment(&order_id, json!(1), "pm_card_visa"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_card_provider",
            Some("paymentMethodId"),
        ),
        (
            payment(&order_id, json!(0), "cash"),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("amount"),
        ),
        (
            payment(&order_id, json!(1.001), "cash"),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("amount"),
        ),
        (
            json!({ "orderId": order_id, "amount": 5, "currency": "USD", "paymentMethodId": "cash", "tendered": 4 }),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("tendered"),
        ),
    ];
    for (body, status, error, field) in cases {
        assert_error(&node.post("/payments", body).await, status, error, field);
    }

    let second = node
        .post("/payments", payment(&order_id, json!(20.48), "cash"))
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(
        node.get(&format!("/orders/{order_id}")).await.body["status"],
        "fulfilled"
    );
    assert_error(
        &node
            .post("/payments", payment(&order_id, json!(1), "cash"))
            .await,
        StatusCode::CONFLICT,
        "order_not_payable",
        None,
    );

    let listed = node.get(&format!("/orders/{order_id}/payments")).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_error(
        &node
            .get("/orders/00000000-0000-0000-0000-000000000001/payments")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    let id = second.body["id"].as_str().unwrap();
    let cashier = node.token("cashier").await;
    let denied = node
        .call(
            Method::POST,
            &format!("/payments/{id}/refund"),
            Some(&cashier),
            Some(&json!({ "amount": 1 })),
            &[],
        )
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let partial = node
        .post(&format!("/payments/{id}/refund"), json!({ "amount": 5.48 }))
        .await;
    assert_eq!(
        (
            partial.status,
            partial.body["status"].clone(),
            partial.body["refundedAmount"].clone()
        ),
        (StatusCode::OK, json!("partially_refunded"), json!(5.48))
    );
    let too_much = node
        .post(
            &format!("/payments/{id}/refund"),
            json!({ "amount": 15.01 }),
        )
        .await;
    assert_error(
        &too_much,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_too_large",
        Some("amount"),
    );
    let rest = node
        .post(&format!("/payments/{id}/refund"), json!({}))
        .await;
    assert_eq!(
        (
            rest.body["status"].clone(),
            rest.body["refundedAmount"].clone()
        ),
        (json!("refunded"), json!(20.48))
    );
    assert_error(
        &node
            .post(&format!("/payments/{id}/refund"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "payment_not_refundable",
        None,
    );
    assert_error(
        &node
            .post(&format!("/payments/{id}/capture"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "payment_not_capturable",
        None,
    );

    let missing = node
        .get("/payments/00000000-0000-0000-0000-000000000001")
        .await;
    assert_eq!(
        (missing.status, missing.body["message"].clone()),
        (StatusCode::NOT_FOUND, json!("Payment not found"))
    );

    let topics: Vec<String> = node
        .events()
        .await
        .iter()
        .map(|e| e["topic"].as_str().unwrap().to_string())
        .collect();
    let payment_topics: Vec<&str> = topics
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with("payment.") || *t == "order.paid")
        .collect();
    assert_eq!(
        payment_topics,
        [
            "payment.created",
            "payment.succeeded",
            "payment.created",
            "payment.succeeded",
            "order.paid",
            "payment.refunded",
            "payment.refunded",
        ]
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_through_stripe_against_localstripe() {
    let stripe = LocalStripe::start();
    let dir = tempfile::tempdir().unwrap();
    let node = start_with(dir.path(), Some(stripe.provider())).await;
    let visa = stripe.card("4242424242424242").await;
    let declining = stripe.card("4000000000000341").await;

    // Authorize only, then capture part: the rest is released, the order is not yet paid.
    let order_id = order_of(&node, "C1", json!(29.99)).await;
    let mut body = payment(&order_id, json!(29.99), &visa);
    body["capture"] = json!(false);
    let authorized = node.post("/payments", body).await;
    assert_eq!(
        authorized.status,
        StatusCode::CREATED,
        "{}",
        authorized.body
    );
    assert_eq!(authorized.body["status"], "authorized");
    let intent_id = authorized.body["providerRef"].as_str().unwrap().to_string();
    assert_eq!(
        stripe.intent(&intent_id).await["status"],
        "requires_capture"
    );
    let id = authorized.body["id"].as_str().unwrap().to_string();
    assert_error(
        &node
            .post(&format!("/payments/{id}/capture"), json!({ "amount": 30 }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "capture_too_large",
        Some("amount"),
    );
    let captured = node
        .post(&format!("/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(
        (
            captured.status,
            captured.body["status"].clone(),
            captured.body["capturedAmount"].clone()
        ),
        (StatusCode::OK, json!("captured"), json!(29.99))
    );
    assert_eq!(stripe.intent(&intent_id).await["status"], "succeeded");
    assert_eq!(
        node.get(&format!("/orders/{order_id}")).await.body["status"],
        "fulfilled"
    );

    let refunded = node
        .post(&format!("/payments/{id}/refund"), json!({ "amount": 9.99 }))
        .await;
    assert_eq!(
        (refunded.status, refunded.body["status"].clone()),
        (StatusCode::OK, json!("partially_refunded"))
    );
    assert_error(
        &node
            .post(
                &format!("/payments/{id}/refund"),
                json!({ "amount": 20.01 }),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_too_large",
        Some("amount"),
    );

    // Declined: 402 with the payment record, status failed and the reason.
    let order2 = order_of(&node, "C2", json!(5)).await;
    let declined = node
        .post("/payments", payment(&order2, json!(5), &declining))
        .await;
    assert_eq!(
        declined.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        declined.body
    );
    assert_eq!(declined.body["status"], "failed");
    assert!(
        declined.body["failureReason"]
            .as_str()
            .unwrap()
            .contains("declined"),
        "{}",
        declined.body
    );

    // Captured at once, retried with the same Idempotency-Key: one payment, one intent.
    let key = [("Idempotency-Key", "till-2-card-77")];
    let once = node
        .call(
            Method::POST,
            "/payments",
            Some(&node.admin),
            Some(&payment(&order2, json!(5), &visa)),
            &key,
        )
        .await;
    assert_eq!(
        (once.status, once.body["status"].clone()),
        (StatusCode::CREATED, json!("captured"))
    );
    let twice = node
        .call(
            Method::POST,
            "/payments",
            Some(&node.admin),
            Some(&payment(&order2, json!(5), &visa)),
            &key,
        )
        .await;
    assert_eq!(
        (twice.status, &twice.body),
        (StatusCode::CREATED, &once.body)
    );
    let payments = node.get(&format!("/orders/{order2}/payments")).await.body;
    assert_eq!(
        payments.as_array().unwrap().len(),
        2,
        "the declined one and the captured one"
    );
    assert_eq!(
        node.get(&format!("/orders/{order2}")).await.body["status"],
        "fulfilled"
    );

    // The provider is down: no answer, the payment stays pending (503), nothing is charged.
    let order3 = order_of(&node, "C3", json!(7)).await;
    drop(stripe);
    let down = node
        .post("/payments", payment(&order3, json!(7), &visa))
        .await;
    assert_error(
        &down,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        None,
    );
    let pending = node.get(&format!("/orders/{order3}/payments")).await.body;
    assert_eq!(pending[0]["status"], "pending");

    let events = node.events().await;
    let topics: Vec<&str> = events
        .iter()
        .map(|e| e["topic"].as_str().unwrap())
        .filter(|t| t.starts_with("payment."))
        .collect();
    assert_eq!(
        &topics[..4],
        [
            "payment.created",
            "payment.authorized",
            "payment.succeeded",
            "payment.refunded"
        ]
    );
    assert!(topics.contains(&"payment.failed"));
    let failed = events
        .iter()
        .find(|e| e["topic"] == "payment.failed")
        .unwrap();
    assert_eq!(failed["payload"]["orderId"], json!(order2));
    node.stop().await;
}

/// A loopback TCP link in front of a server that can be cut (refusing new connections and
/// dropping open ones) and restored: the provider becomes unreachable without losing its state.
struct Link {
    url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Link {
    async fn to(target: &str) -> Link {
        let target: std::net::SocketAddr = target.trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accept_up, accept_open) = (up.clone(), open.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropping `inbound` resets the connection
                }
                accept_open.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Link {
            url,
            up,
            open,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for connection in self.open.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Polls a payment until `done` holds for it.
async fn wait_for_payment(node: &TestNode, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let payment = node.get(&format!("/payments/{id}")).await.body;
        if done(&payment) {
            return payment;
        }
        assert!(
            Instant::now() < deadline,
            "payment {id} never settled: {payment}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_approval_forwarding_and_the_pending_timeout() {
    let stripe = LocalStripe::start();
    let link = Link::to(&stripe.url).await;
    let dir = tempfile::tempdir().unwrap();
    let provider: Arc<dyn fusion_node::card::CardProvider> =
        Arc::new(StripeProvider::new(&link.url, "sk_test_fusion").unwrap());
    let policy = fusion_node::card::PaymentPolicy {
        pending_timeout: Duration::from_secs(2),
        offline_floor_limit: Some(fusion_contracts::Money {
            minor: 1000,
            currency: fusion_contracts::Currency::USD,
        }),
        offline_budget: None,
    };
    let node = start_configured(dir.path(), Some(provider), policy).await;
    let visa = stripe.card("4242424242424242").await;
    let declining = stripe.card("4000000000000341").await;
    let (a, b, c) = (
        order_of(&node, "O1", json!(7)).await,
        order_of(&node, "O2", json!(8)).await,
        order_of(&node, "O3", json!(20)).await,
    );

    link.cut();
    let approved = node.post("/payments", payment(&a, json!(7), &visa)).await;
    assert_eq!(
        (approved.status, approved.body["status"].clone()),
        (StatusCode::CREATED, json!("offline_approved")),
        "{}",
        approved.body
    );
    assert_eq!(
        node.get(&format!("/orders/{a}")).await.body["status"],
        "fulfilled",
        "the sale completes offline"
    );
    let doomed = node
        .post("/payments", payment(&b, json!(8), &declining))
        .await;
    assert_eq!(doomed.body["status"], "offline_approved");
    let above = node.post("/payments", payment(&c, json!(20), &visa)).await;
    assert_error(
        &above,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        None,
    );
    let pending_id = node.get(&format!("/orders/{c}/payments")).await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // BR-007: still no answer after the timeout → failed.
    let expired = wait_for_payment(&node, &pending_id, |p| p["status"] != "pending").await;
    assert_eq!(expired["status"], "failed");
    assert!(
        expired["failureReason"]
            .as_str()
            .unwrap()
            .contains("BR-007")
    );

    // The provider is back: offline approvals are forwarded; the declined one flags its order.
    link.restore();
    let forwarded = wait_for_payment(&node, approved.body["id"].as_str().unwrap(), |p| {
        p["status"] != "offline_approved"
    })
    .await;
    assert_eq!(forwarded["status"], "captured");
    assert!(
        forwarded["providerRef"]
            .as_str()
            .unwrap()
            .starts_with("pi_")
    );
    let declined = wait_for_payment(&node, doomed.body["id"].as_str().unwrap(), |p| {
        p["status"] != "offline_approved"
    })
    .await;
    assert_eq!(declined["status"], "failed");
    let flagged = node.get(&format!("/orders/{b}")).await.body;
    assert!(
        flagged["flag"].as_str().unwrap().contains("was declined"),
        "{flagged}"
    );
    assert!(
        node.get(&format!("/orders/{a}"))
            .await
            .body
            .get("flag")
            .is_none()
    );

    let topics: Vec<String> = node
        .events()
        .await
        .iter()
        .map(|e| e["topic"].as_str().unwrap().to_string())
        .collect();
    let count = |t: &str| topics.iter().filter(|x| *x == t).count();
    assert_eq!(
        (
            count("payment.offline_approved"),
            count("payment.failed"),
            count("order.flagged")
        ),
        (2, 2, 1)
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_before_shipment_refunds_or_voids_every_payment() {
    let stripe = LocalStripe::start();
    let dir = tempfile::tempdir().unwrap();
    let node = start_with(dir.path(), Some(stripe.provider())).await;
    let visa = stripe.card("4242424242424242").await;
    node.product("CX", json!(10), 20).await;
    let place = |qty: u64, address: bool| {
        let mut body = order(json!([{ "sku": "CX", "quantity": qty, "price": 10 }]));
        if address {
            body["shippingAddress"] =
                json!({ "street": "9 Oak", "city": "Austin", "country": "US", "zip": "73301" });
        }
        node.post("/orders", body)
    };

    // Part paid in cash: the cash comes back with the cancellation, in the same commit.
    let a = place(3, false).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cash = node
        .post("/payments", payment(&a, json!(10), "cash"))
        .await
        .body;
    assert_eq!(node.stock("CX").await, 17);
    let cancelled = node
        .post(
            &format!("/orders/{a}/cancel"),
            json!({ "reason": "changed mind" }),
        )
        .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].clone()),
        (StatusCode::OK, json!("cancelled"))
    );
    let refunded = node
        .get(&format!("/payments/{}", cash["id"].as_str().unwrap()))
        .await
        .body;
    assert_eq!(
        (
            refunded["status"].clone(),
            refunded["refundedAmount"].clone()
        ),
        (json!("refunded"), json!(10.0))
    );
    assert_eq!(node.stock("CX").await, 20, "stock restored exactly");

    // Paid by card and labelled, not yet handed over: the label is voided, the card refunded.
    let b = place(2, true).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let card = node
        .post("/payments", payment(&b, json!(20), &visa))
        .await
        .body;
    assert_eq!(card["status"], "captured");
    let label = node.get(&format!("/orders/{b}/shipments")).await.body[0].clone();
    assert_eq!(label["status"], "label_created");
    assert_eq!(
        node.post(&format!("/orders/{b}/cancel"), json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        node.get(&format!("/orders/{b}/shipments")).await.body[0]["status"],
        "voided"
    );
    let card_refunded = wait_for_payment(&node, card["id"].as_str().unwrap(), |p| {
        p["status"] != "captured"
    })
    .await;
    assert_eq!(
        (
            card_refunded["status"].clone(),
            card_refunded["refundedAmount"].clone()
        ),
        (json!("refunded"), json!(20.0))
    );

    // Only authorized: the authorization is released at the provider.
    let c = place(1, false).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut hold = payment(&c, json!(10), &visa);
    hold["capture"] = json!(false);
    let authorized = node.post("/payments", hold).await.body;
    assert_eq!(authorized["status"], "authorized");
    node.post(&format!("/orders/{c}/cancel"), json!({})).await;
    let voided = wait_for_payment(&node, authorized["id"].as_str().unwrap(), |p| {
        p["status"] != "authorized"
    })
    .await;
    assert_eq!(voided["status"], "voided");
    assert_eq!(
        stripe
            .intent(authorized["providerRef"].as_str().unwrap())
            .await["status"],
        "canceled"
    );

    // Once the parcel has left, cancelling is refused.
    let d = place(1, true).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    node.post("/payments", payment(&d, json!(10), "cash")).await;
    let shipment = node.get(&format!("/orders/{d}/shipments")).await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    node.post(
        &format!("/shipments/{shipment}/status"),
        json!({ "status": "in_transit" }),
    )
    .await;
    assert_error(
        &node.post(&format!("/orders/{d}/cancel"), json!({})).await,
        StatusCode::CONFLICT,
        "order_shipped",
        None,
    );
    assert_eq!(node.stock("CX").await, 19);

    let events = node.events().await;
    let correlation = events
        .iter()
        .find(|e| e["topic"] == "order.created" && e["key"] == json!(b))
        .unwrap()["correlationId"]
        .clone();
    let chain_b: Vec<&str> = events
        .iter()
        .filter(|e| e["correlationId"] == correlation)
        .map(|e| e["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        chain_b,
        [
            "order.created",
            "inventory.reserved",
            "payment.created",
            "payment.authorized",
            "payment.succeeded",
            "order.paid",
            "receipt.issued",
            "shipping.label.created",
            "order.cancelled",
            "inventory.released",
            "shipping.status.changed",
            "payment.refunded",
        ]
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_credit_accounts_pay_and_get_credited_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let issue = |amount: Value| {
        node.post(
            "/store-credit/gift-42/issue",
            json!({ "amount": amount, "currency": "USD", "reason": "gift card sold" }),
        )
    };
    let issued = issue(json!(25)).await;
    assert_eq!(
        (issued.status, issued.body["balance"].clone()),
        (StatusCode::OK, json!(25.0))
    );
    assert_eq!(issue(json!(5)).await.body["balance"], json!(30.0));
    assert_error(
        &node
            .post(
                "/store-credit/gift-42/issue",
                json!({ "amount": 1, "currency": "EUR", "reason": "x" }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("currency"),
    );
    assert_error(
        &node
            .post(
                "/store-credit/bad%20name/issue",
                json!({ "amount": 1, "currency": "USD", "reason": "x" }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("account"),
    );
    assert_error(
        &issue(json!(0)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("amount"),
    );
    let cashier = node.token("cashier").await;
    let denied = node
        .call(
            Method::POST,
            "/store-credit/gift-42/issue",
            Some(&cashier),
            Some(&json!({ "amount": 1, "currency": "USD", "reason": "x" })),
            &[],
        )
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    assert_error(
        &node.get("/store-credit/nobody").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    let order_id = order_of(&node, "GC", json!(20)).await;
    assert_error(
        &node
            .post(
                "/payments",
                payment(&order_id, json!(31), "store_credit:gift-42"),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "overpayment",
        Some("amount"),
    );
    let split = node
        .post(
            "/payments",
            payment(&order_id, json!(12), "store_credit:gift-42"),
        )
        .await;
    assert_eq!(
        (
            split.status,
            split.body["status"].clone(),
            split.body["tender"].clone()
        ),
        (
            StatusCode::CREATED,
            json!("captured"),
            json!("store_credit")
        )
    );
    assert_eq!(
        node.get("/store-credit/gift-42").await.body["balance"],
        json!(18.0)
    );
    let other = order_of(&node, "GD", json!(25)).await;
    assert_error(
        &node
            .post(
                "/payments",
                payment(&other, json!(19), "store_credit:gift-42"),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_store_credit",
        Some("amount"),
    );

    // A refund goes back to the account; cancelling the order returns the rest.
    let id = split.body["id"].as_str().unwrap();
    let refunded = node
        .post(&format!("/payments/{id}/refund"), json!({ "amount": 2 }))
        .await;
    assert_eq!(refunded.body["status"], "partially_refunded");
    assert_eq!(
        node.get("/store-credit/gift-42").await.body["balance"],
        json!(20.0)
    );
    node.post(&format!("/orders/{order_id}/cancel"), json!({}))
        .await;
    assert_eq!(
        node.get("/store-credit/gift-42").await.body["balance"],
        json!(30.0)
    );
    let changes = node
        .events()
        .await
        .into_iter()
        .filter(|e| e["topic"] == "store-credit.changed")
        .count();
    assert_eq!(changes, 5, "2 issues, 1 payment, 1 refund, 1 cancellation");
    node.stop().await;
}

/// The till's share of the store's offline card budget: payments it approved offline and the
/// provider has not settled never total more; settling them frees the budget again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_card_budget_caps_unsettled_offline_approvals() {
    let stripe = LocalStripe::start();
    let link = Link::to(&stripe.url).await;
    let dir = tempfile::tempdir().unwrap();
    let provider: Arc<dyn fusion_node::card::CardProvider> =
        Arc::new(StripeProvider::new(&link.url, "sk_test_fusion").unwrap());
    let usd = |minor| fusion_contracts::Money {
        minor,
        currency: fusion_contracts::Currency::USD,
    };
    let policy = fusion_node::card::PaymentPolicy {
        pending_timeout: Duration::from_secs(600),
        offline_floor_limit: Some(usd(1000)),
        offline_budget: Some(usd(2000)),
    };
    let node = start_configured(dir.path(), Some(provider), policy).await;
    let visa = stripe.card("4242424242424242").await;
    let mut orders = Vec::new();
    for (i, amount) in [7, 8, 6, 5, 9].iter().enumerate() {
        orders.push(order_of(&node, &format!("B{i}"), json!(amount)).await);
    }

    link.cut();
    let pay = |i: usize, amount: i64| {
        let body = payment(&orders[i], json!(amount), &visa);
        let node = &node;
        async move { node.post("/payments", body).await }
    };
    let mut approved = Vec::new();
    for (i, amount) in [(0, 7), (1, 8)] {
        let r = pay(i, amount).await;
        assert_eq!(r.body["status"], "offline_approved", "{}", r.body);
        approved.push(r.body["id"].as_str().unwrap().to_string());
    }
    // 15 approved offline: 6 more would make 21 of a 20 budget (each within the floor limit).
    let over = pay(2, 6).await;
    assert_error(
        &over,
        StatusCode::SERVICE_UNAVAILABLE,
        "offline_budget_exhausted",
        None,
    );
    assert!(
        over.body["message"].as_str().unwrap().contains("15.00 USD"),
        "the refusal states the exposure: {}",
        over.body
    );
    let exactly = pay(3, 5).await;
    assert_eq!(
        exactly.body["status"], "offline_approved",
        "{}",
        exactly.body
    );
    approved.push(exactly.body["id"].as_str().unwrap().to_string());
    let budget = node.get("/escrow").await.body["cardBudget"].clone();
    assert_eq!(
        budget,
        json!({ "share": 20.0, "exposure": 20.0, "headroom": 0.0, "currency": "USD" }),
        "the escrow view shows the budget used up"
    );

    // The provider is back: the approvals are forwarded and settled, the budget is free again.
    link.restore();
    for id in &approved {
        let settled = wait_for_payment(&node, id, |p| p["status"] != "offline_approved").await;
        assert_eq!(settled["status"], "captured");
    }
    assert_eq!(
        node.get("/escrow").await.body["cardBudget"]["headroom"],
        json!(20.0)
    );
    link.cut();
    let again = pay(4, 9).await;
    assert_eq!(again.body["status"], "offline_approved", "{}", again.body);
    // The share is recorded in the till's log (once), so the hub knows the store's budget.
    let recorded: Vec<Value> = node
        .get("/events?limit=1000")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["topic"] == "payment.offline_budget_set")
        .cloned()
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0]["payload"]["share"],
        json!(20.0),
        "{}",
        recorded[0]
    );
    // Budget given away is budget this till no longer has: 9 of 20 is exposed, so at most 11
    // can go; after giving 11, another offline approval of 6 is refused (9 + 6 > 9).
    let give = |amount: i64| json!({ "to": "till-next-door", "amount": { "amount": amount, "currency": "USD" } });
    let short = node.post("/escrow/card-budget/transfer", give(12)).await;
    assert_eq!(
        short.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        short.body
    );
    let given = node.post("/escrow/card-budget/transfer", give(11)).await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.body);
    assert_eq!(given.body["cardBudget"]["share"], json!(9.0));
    let extra = order_of(&node, "B5", json!(6)).await;
    let refused = node
        .post("/payments", payment(&extra, json!(6), &visa))
        .await;
    assert_error(
        &refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "offline_budget_exhausted",
        None,
    );
    node.stop().await;
}

/// A return to the original tenders of an order paid by card and cash: the card takes its
/// part back first, through the provider (recorded once localstripe refunded it), the cash the
/// rest in the same commit; once all is back a manager's refund finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_refunds_the_original_card_through_the_provider() {
    let stripe = LocalStripe::start();
    let dir = tempfile::tempdir().unwrap();
    let node = start_with(dir.path(), Some(stripe.provider())).await;
    let visa = stripe.card("4242424242424242").await;
    node.product("RT", json!(10), 20).await;
    let placed = node
        .post("/orders", order(json!([{ "sku": "RT", "quantity": 3 }])))
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let id = placed.body["id"].as_str().unwrap().to_string();
    let card = node.post("/payments", payment(&id, json!(12), &visa)).await;
    assert_eq!(card.body["status"], "captured", "{}", card.body);
    let card_id = card.body["id"].as_str().unwrap().to_string();
    let cash = node
        .post("/payments", payment(&id, json!(18), "cash"))
        .await;
    assert_eq!(cash.status, StatusCode::CREATED, "{}", cash.body);
    let cash_id = cash.body["id"].as_str().unwrap().to_string();

    // Two units (20.00): 12.00 back to the card, 8.00 to the cash payment.
    let back = node
        .post(
            &format!("/orders/{id}/returns"),
            json!({ "lines": [{ "sku": "RT", "quantity": 2 }], "refundTo": { "kind": "original" } }),
        )
        .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.body);
    assert_eq!(
        back.body["refundTo"],
        json!({ "split": { "parts": [
            { "to": { "payment": { "paymentId": card_id, "tender": "card" } }, "amount": 12.0 },
            { "to": { "payment": { "paymentId": cash_id, "tender": "cash" } }, "amount": 8.0 },
        ] } }),
        "{}",
        back.body
    );
    let cash_now = node.get(&format!("/payments/{cash_id}")).await.body;
    assert_eq!(
        (
            cash_now["status"].clone(),
            cash_now["refundedAmount"].clone()
        ),
        (json!("partially_refunded"), json!(8.0))
    );
    let card_now = wait_for_payment(&node, &card_id, |p| p["status"] != "captured").await;
    assert_eq!(
        (
            card_now["status"].clone(),
            card_now["refundedAmount"].clone()
        ),
        (json!("refunded"), json!(12.0)),
        "{card_now}"
    );
    // The last unit: the card has nothing left, the cash gives it.
    let last = node
        .post(
            &format!("/orders/{id}/returns"),
            json!({ "lines": [{ "sku": "RT", "quantity": 1 }], "refundTo": { "kind": "original" } }),
        )
        .await;
    assert_eq!(last.status, StatusCode::CREATED, "{}", last.body);
    assert_eq!(
        last.body["refundTo"]["split"]["parts"][0]["to"]["payment"]["paymentId"],
        json!(cash_id)
    );
    // Everything went back: a manager's refund of the cash payment finds nothing left.
    let again = node
        .post(&format!("/payments/{cash_id}/refund"), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    node.stop().await;
}
