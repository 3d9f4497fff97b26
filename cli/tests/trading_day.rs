//! A trading day on real processes (issue 18): a hub exporting to a tansu broker, two tills of
//! store s1, localstripe for cards. At till A: staff added with `fusion staff` (reaching till
//! B through the hub), the drawer opened with `fusion session open`, sales by two cashiers
//! (cash with change, a card), a return, a no-sale a manager approves by PIN, the X report,
//! the close 1.00 short — the Z report's totals are the sum of that day's events, variance
//! −1.00, Z 1. Till B closes its own Z 1. The next day at A, sales while the node is SIGKILLed
//! and restarted: receipt numbers and Z numbers stay gap-free (Z 2). The hub's
//! `/fleet/sessions` shows the three Z reports and each is a `session.closed` record on Kafka.

use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::{Value, json};

mod common;
use common::{
    NodeProcess, free_port, fusion, spawn_node_with, start_broker, start_localstripe, wait_until,
};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `fusion ARGS…` against `node` with `token` (and `pin` in FUSION_PIN); exit code, stdout and
/// stderr.
fn fusion_io(
    node: &NodeProcess,
    token: &str,
    pin: Option<&str>,
    args: &[&str],
) -> (i32, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fusion"));
    command
        .args(args)
        .env("FUSION_URL", &node.url)
        .env("FUSION_TOKEN", token);
    if let Some(pin) = pin {
        command.env("FUSION_PIN", pin);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn fusion_as(node: &NodeProcess, token: &str, pin: Option<&str>, args: &[&str]) -> (i32, String) {
    let (code, out, err) = fusion_io(node, token, pin, args);
    (code, out + &err)
}

/// A new cashier token of `node`.
fn cashier_token(node: &NodeProcess) -> String {
    let (code, out, err) = fusion_io(
        node,
        &node.admin,
        None,
        &["token", "create", "--role", "cashier"],
    );
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

fn ok_json(node: &NodeProcess, token: &str, pin: Option<&str>, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = fusion_io(node, token, pin, &all);
    assert_eq!(code, 0, "fusion {args:?}: {out}{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn call(
    node: &NodeProcess,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", node.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A sale of `items` paid by `method` (`cash` with `tendered`, or a card); its order.
async fn sale(
    node: &NodeProcess,
    token: &str,
    items: Value,
    method: &str,
    tendered: Option<f64>,
) -> Value {
    let (status, placed) = call(
        node,
        token,
        reqwest::Method::POST,
        "/orders",
        json!({ "customerId": "walk-in", "items": items }),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    let mut body = json!({ "orderId": placed["id"], "amount": placed["total"], "currency": "USD", "paymentMethodId": method });
    if let Some(t) = tendered {
        body["tendered"] = json!(t);
    }
    let (status, paid) = call(node, token, reqwest::Method::POST, "/payments", body).await;
    assert_eq!(status, 201, "{paid}");
    placed
}

/// Every event of `node`'s log.
async fn events(node: &NodeProcess) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = call(
            node,
            &node.admin,
            reqwest::Method::GET,
            &format!("/events?after={after}&limit=1000"),
            Value::Null,
        )
        .await;
        let page = page.as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else { return all };
        after = last["seq"].as_u64().unwrap();
        all.extend(page);
    }
}

fn minor(v: &Value) -> i64 {
    (v.as_f64().unwrap_or_else(|| panic!("{v} is no amount")) * 100.0).round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trading_day_on_two_tills_reaches_the_hub_and_kafka() {
    let broker_dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let brokers = format!("127.0.0.1:{broker_port}");
    let _broker = Killed(start_broker(broker_dir.path(), broker_port));
    let stripe = start_localstripe().await;
    let stripe_url = stripe.url.clone();

    let hub_dir = tempfile::tempdir().unwrap();
    let sync = format!("127.0.0.1:{}", free_port());
    let hub = common::spawn_hub(
        hub_dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--sync-bind",
            &sync,
            "--kafka-brokers",
            &brokers,
        ],
    )
    .await;
    let hub_target = [
        "--url",
        hub.url.as_str(),
        "--data-dir",
        hub_dir.path().to_str().unwrap(),
    ];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        let (_, id) = fusion(&["node", "id", "--data-dir", dir.path().to_str().unwrap()]);
        let enroll = [
            &["hub", "enroll", id.trim(), "--store", "s1"][..],
            &hub_target[..],
        ]
        .concat();
        assert_eq!(fusion(&enroll).0, 0);
    }
    let key_file = hub_dir.path().join("stripe.key");
    std::fs::write(&key_file, "sk_test_fusion").unwrap();
    let args = [
        "--hub",
        hub.endpoint.as_str(),
        "--sync-bind",
        "127.0.0.1:0",
        "--store-id",
        "s1",
        "--stripe-url",
        stripe_url.as_str(),
        "--stripe-key-file",
        key_file.to_str().unwrap(),
    ];
    let mut a = spawn_node_with(dirs[0].path(), &args).await;
    let b = spawn_node_with(dirs[1].path(), &args).await;
    for (sku, price) in [("MUG", 4.50), ("GRN-HAND", 49.99)] {
        let (status, body) = call(
            &a,
            &a.admin,
            reqwest::Method::POST,
            "/products",
            json!({ "sku": sku, "name": sku, "price": price, "currency": "USD", "inventory": 500 }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }

    // Staff, added at till A with `fusion staff add`, reach till B through the hub.
    for (id, role, pin) in [
        ("ana", "cashier", "1234"),
        ("bo", "cashier", "2468"),
        ("max", "manager", "9999"),
    ] {
        ok_json(
            &a,
            &a.admin,
            Some(pin),
            &["staff", "add", "--id", id, "--name", id, "--role", role],
        );
    }
    wait_until("the staff at till B", 60, || async {
        let (_, staff) = call(&b, &b.admin, reqwest::Method::GET, "/staff", Value::Null).await;
        let n = staff.as_array().map_or(0, Vec::len);
        if n == 3 {
            Ok(())
        } else {
            Err(format!("{n} members"))
        }
    })
    .await;
    let till_a = cashier_token(&a);
    let sign_in = |node: &NodeProcess, till: &str, id: &str, pin: &str| {
        ok_json(node, till, Some(pin), &["staff", "sign-in", id])["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ana = sign_in(&a, &till_a, "ana", "1234");
    let bo = sign_in(&a, &till_a, "bo", "2468");

    // The day at till A.
    let opened = ok_json(
        &a,
        &ana,
        None,
        &["session", "open", "--float", "100.00 USD"],
    );
    assert_eq!(opened["status"], "open");
    let from_seq = events(&a).await.last().unwrap()["seq"].as_u64().unwrap();
    let mugs = sale(
        &a,
        &ana,
        json!([{ "sku": "MUG", "quantity": 2 }]),
        "cash",
        Some(20.0),
    )
    .await;
    let method: Value = reqwest::Client::new()
        .post(format!("{stripe_url}/v1/payment_methods"))
        .basic_auth("sk_test_fusion", None::<&str>)
        .form(&[
            ("type", "card"),
            ("card[number]", "4242424242424242"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sale(
        &a,
        &bo,
        json!([{ "sku": "GRN-HAND", "quantity": 1 }]),
        method["id"].as_str().unwrap(),
        None,
    )
    .await;
    let (status, back) = call(
        &a,
        &ana,
        reqwest::Method::POST,
        &format!("/orders/{}/returns", mugs["id"].as_str().unwrap()),
        json!({ "lines": [{ "line": 0, "quantity": 1 }] }),
    )
    .await;
    assert_eq!(status, 201, "{back}");
    let (code, out) = fusion_as(
        &a,
        &ana,
        Some("0000"),
        &[
            "session",
            "cash",
            "no-sale",
            "--reason",
            "change",
            "--approver",
            "max",
        ],
    );
    assert_eq!(code, 3, "a wrong PIN approves nothing: {out}");
    let no_sale = ok_json(
        &a,
        &ana,
        Some("9999"),
        &[
            "session",
            "cash",
            "no-sale",
            "--reason",
            "change",
            "--approver",
            "max",
        ],
    );
    assert_eq!(no_sale["moves"][0]["approvedBy"], "staff:max");
    let x = ok_json(&a, &ana, None, &["session", "report"]);
    assert_eq!(x["kind"], "X");
    // 100 float + 20 tendered − 11 change − 4.50 refunded in cash.
    assert_eq!(minor(&x["expectedCash"]), 10_450, "{x}");
    let z = ok_json(&a, &ana, None, &["session", "close", "--counted", "103.50"]);
    assert_eq!(
        (z["kind"].as_str(), z["z"].as_u64()),
        (Some("Z"), Some(1)),
        "{z}"
    );
    assert_eq!(minor(&z["variance"]), -100, "{z}");
    let (code, text) = fusion_as(
        &a,
        &ana,
        None,
        &["session", "report", z["sessionId"].as_str().unwrap()],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Z report 1") && text.contains("-1.00"),
        "{text}"
    );

    // The receipt from the CLI: text to read, ESC/POS bytes to print (recorded: a print).
    let mugs_id = mugs["id"].as_str().unwrap();
    let (code, text) = fusion_as(&a, &ana, None, &["receipt", mugs_id]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Served by ana") && text.contains("TOTAL"),
        "{text}"
    );
    let escpos = std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args(["receipt", mugs_id, "--format", "escpos", "--print"])
        .env("FUSION_URL", &a.url)
        .env("FUSION_TOKEN", &ana)
        .output()
        .unwrap();
    assert!(escpos.status.success());
    assert!(escpos.stdout.starts_with(&[0x1b, 0x40]), "ESC @ first");
    assert!(
        escpos.stdout.ends_with(&[0x1d, 0x56, 0x42, 0x00]),
        "the cut last"
    );
    assert!(
        escpos.stdout.windows(2).any(|w| w == [0x1b, 0x70]),
        "the first print of a cash sale opens the drawer"
    );

    // The Z's totals are the sum of the day's events in the till's log.
    let day: Vec<Value> = events(&a)
        .await
        .into_iter()
        .filter(|e| (from_seq..=z["toSeq"].as_u64().unwrap()).contains(&e["seq"].as_u64().unwrap()))
        .collect();
    let sum = |topic: &str, field: &str| -> i64 {
        day.iter()
            .filter(|e| e["topic"] == topic)
            .map(|e| minor(&e["payload"][field]))
            .sum()
    };
    let t = &z["totals"];
    assert_eq!(
        t["sales"].as_u64().unwrap() as usize,
        day.iter().filter(|e| e["topic"] == "order.paid").count()
    );
    assert_eq!(minor(&t["salesTotal"]), sum("order.paid", "total"));
    assert_eq!(minor(&t["refunds"]), sum("order.returned", "refund"));
    assert_eq!(t["noSales"], 1);
    let card = t["tenders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tender"] == "card")
        .expect("a card tender");
    assert_eq!(minor(&card["taken"]), 4_999);
    let change: i64 = day
        .iter()
        .filter(|e| e["topic"] == "payment.succeeded" && !e["payload"]["changeDue"].is_null())
        .map(|e| minor(&e["payload"]["changeDue"]))
        .sum();
    assert_eq!(minor(&t["changeGiven"]), change);

    // Till B's own day: its Z is its number 1.
    let till_b = cashier_token(&b);
    ok_json(
        &b,
        &till_b,
        None,
        &["session", "open", "--float", "50.00 USD"],
    );
    let zb = ok_json(&b, &till_b, None, &["session", "close", "--counted", "50"]);
    assert_eq!(zb["z"], 1);

    // The next day at A: sales, a SIGKILL in the middle of them, a restart, more sales.
    ok_json(
        &a,
        &ana,
        None,
        &["session", "open", "--float", "100.00 USD"],
    );
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, token) = (a.url.clone(), ana.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..200 {
                let placed = http.post(format!("{url}/orders")).bearer_auth(&token).json(&json!({ "customerId": "walk-in", "items": [{ "sku": "MUG", "quantity": 1 }] })).send().await;
                let Ok(placed) = placed else { return };
                let Ok(order) = placed.json::<Value>().await else { return };
                let paid = http.post(format!("{url}/payments")).bearer_auth(&token).json(&json!({ "orderId": order["id"], "amount": order["total"], "currency": "USD", "paymentMethodId": "cash" })).send().await;
                if paid.is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.child.start_kill().unwrap(); // SIGKILL mid-sale
    a.child.wait().await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    a = spawn_node_with(dirs[0].path(), &args).await;
    // Sign-ins live in the till's memory: after the crash Ana signs in again.
    let ana = sign_in(&a, &till_a, "ana", "1234");
    sale(
        &a,
        &ana,
        json!([{ "sku": "MUG", "quantity": 1 }]),
        "cash",
        Some(5.0),
    )
    .await;
    let z2 = ok_json(&a, &ana, None, &["session", "close", "--counted", "100"]);
    assert_eq!(z2["z"], 2, "{z2}");
    let receipts: Vec<u64> = events(&a)
        .await
        .iter()
        .filter(|e| e["topic"] == "receipt.issued")
        .map(|e| e["payload"]["number"].as_u64().unwrap())
        .collect();
    assert!(receipts.len() > 3, "{receipts:?}");
    assert_eq!(
        receipts,
        (1..=receipts.len() as u64).collect::<Vec<_>>(),
        "receipt numbers are gap-free"
    );
    assert_eq!(
        z2["totals"]["sales"].as_u64().unwrap() as usize,
        receipts.len() - 2,
        "every sale of the day since Z 1"
    );

    // The hub shows the three Z reports of store s1; each is a session.closed record on Kafka.
    wait_until("the Z reports at the hub", 60, || async {
        let (code, out) = fusion(
            &[
                &["--json", "hub", "sessions", "--store", "s1"][..],
                &hub_target[..],
            ]
            .concat(),
        );
        let rows: Vec<Value> = serde_json::from_str(out.trim()).unwrap_or_default();
        let zs: Vec<(String, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r["till"].as_str().unwrap_or("").to_string(),
                    r["z"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        if code == 0 && rows.len() == 3 && rows.iter().all(|r| r["storeId"] == "s1") {
            Ok(())
        } else {
            Err(format!("{zs:?}"))
        }
    })
    .await;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("z-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["session.closed"]).unwrap();
    let mut closes = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while closes.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "session.closed records: {closes:?}"
        );
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
        else {
            continue;
        };
        let record: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        let payload = if record.get("payload").is_some() {
            &record["payload"]
        } else {
            &record
        };
        closes.insert((
            payload["till"].as_str().unwrap().to_string(),
            payload["z"].as_u64().unwrap(),
        ));
    }
    let zs: Vec<u64> = closes.iter().map(|(_, z)| *z).collect();
    assert_eq!(zs.iter().filter(|z| **z == 1).count(), 2, "{closes:?}");
    a.sigkill().await;
    b.sigkill().await;
}
