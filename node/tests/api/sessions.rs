//! Cash-drawer sessions (issue 18, parts 2 and 3): a day at one till — a sale before the
//! drawer opened, the drawer opened with a float, sales by two cashiers, a return in cash, a
//! no-sale a manager approves by PIN, a paid-out, the X report, the close 1.00 short and its
//! Z report; the next day's Z is number 2. With `requireOpenSession` a closed drawer sells
//! nothing.

use super::*;

async fn as_(node: &TestNode, token: &str, method: Method, path: &str, body: Value) -> Answer {
    node.call(method, path, Some(token), Some(&body), &[]).await
}

async fn signed_in(
    node: &TestNode,
    till: &str,
    id: &str,
    name: &str,
    role: &str,
    pin: &str,
) -> String {
    let added = node
        .post(
            "/staff",
            json!({ "id": id, "name": name, "role": role, "pin": pin }),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let answer = as_(
        node,
        till,
        Method::POST,
        "/staff/sign-in",
        json!({ "staff": id, "pin": pin }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.body["token"].as_str().unwrap().to_string()
}

/// A carry-out sale paid in cash with `tendered`; its order id.
async fn cash_sale(node: &TestNode, token: &str, items: Value, tendered: &str) -> String {
    let placed = as_(node, token, Method::POST, "/orders", order(items)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let id = placed.body["id"].as_str().unwrap().to_string();
    let total = placed.body["total"].clone();
    let paid = as_(
        node,
        token,
        Method::POST,
        "/payments",
        json!({ "orderId": id, "amount": total, "currency": "USD", "paymentMethodId": "cash", "tendered": tendered.parse::<f64>().unwrap() }),
    )
    .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    id
}

fn money(v: &Value) -> String {
    format!(
        "{:.2}",
        v.as_f64().unwrap_or_else(|| panic!("{v} is no amount"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trading_day_opens_sells_and_closes_with_a_z_report() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    node.product("MUG", json!(4.50), 20).await;
    node.product("GRN-HAND", json!(49.99), 5).await;
    let till = node.token("cashier").await;
    let ana = signed_in(&node, &till, "ana", "Ana", "cashier", "1234").await;
    let bo = signed_in(&node, &till, "bo", "Bo", "cashier", "2468").await;
    signed_in(&node, &till, "max", "Max", "manager", "9999").await;

    // Early: a sale before the drawer is open (by default a till sells without one).
    cash_sale(
        &node,
        &ana,
        json!([{ "sku": "MUG", "quantity": 1 }]),
        "4.50",
    )
    .await;
    assert_error(
        &node.get("/sessions/current").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    // The morning: Ana opens the drawer with 100.00; it opens once.
    let opened = as_(
        &node,
        &ana,
        Method::POST,
        "/sessions",
        json!({ "float": 100.00, "currency": "USD" }),
    )
    .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let id = opened.body["id"].as_str().unwrap().to_string();
    assert_eq!(opened.body["status"], "open");
    assert_eq!(opened.body["openedBy"], "ana");
    assert_error(
        &as_(
            &node,
            &bo,
            Method::POST,
            "/sessions",
            json!({ "float": 50, "currency": "USD" }),
        )
        .await,
        StatusCode::CONFLICT,
        "session_open",
        None,
    );
    assert_error(
        &as_(
            &node,
            &ana,
            Method::POST,
            "/sessions",
            json!({ "float": -1, "currency": "USD" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("float"),
    );
    assert_eq!(node.get("/sessions/current").await.body["id"], id.as_str());

    // Sales by two cashiers, cash with change; a return in cash.
    let mugs = cash_sale(&node, &ana, json!([{ "sku": "MUG", "quantity": 2 }]), "20").await;
    cash_sale(
        &node,
        &bo,
        json!([{ "sku": "GRN-HAND", "quantity": 1 }]),
        "49.99",
    )
    .await;
    let back = as_(
        &node,
        &bo,
        Method::POST,
        &format!("/orders/{mugs}/returns"),
        json!({ "lines": [{ "line": 0, "quantity": 1 }] }),
    )
    .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.body);

    // A no-sale: Ana alone may not; Max approves with his PIN (a wrong one approves nothing).
    let cash = format!("/sessions/{id}/cash");
    assert_error(
        &as_(
            &node,
            &ana,
            Method::POST,
            &cash,
            json!({ "kind": "no_sale", "reason": "change for a customer" }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "no_sale_requires_approval",
        Some("approval"),
    );
    assert_error(
        &as_(&node, &ana, Method::POST, &cash, json!({ "kind": "no_sale", "reason": "change", "approval": { "staff": "max", "pin": "0000" } })).await,
        StatusCode::FORBIDDEN,
        "pin_invalid",
        Some("approval.pin"),
    );
    let no_sale = as_(&node, &ana, Method::POST, &cash, json!({ "kind": "no_sale", "reason": "change", "approval": { "staff": "max", "pin": "9999" } })).await;
    assert_eq!(no_sale.status, StatusCode::CREATED, "{}", no_sale.body);
    assert_eq!(no_sale.body["moves"][0]["approvedBy"], "staff:max");
    assert_eq!(no_sale.body["moves"][0]["staff"], "ana");
    let paid_out = as_(
        &node,
        &bo,
        Method::POST,
        &cash,
        json!({ "kind": "paid_out", "amount": 5.00, "reason": "window cleaner" }),
    )
    .await;
    assert_eq!(paid_out.status, StatusCode::CREATED, "{}", paid_out.body);
    for (body, field) in [
        (json!({ "kind": "paid_in", "reason": "float" }), "amount"),
        (
            json!({ "kind": "no_sale", "amount": 1, "reason": "x" }),
            "amount",
        ),
        (
            json!({ "kind": "paid_in", "amount": 1, "reason": " " }),
            "reason",
        ),
    ] {
        assert_error(
            &as_(&node, &ana, Method::POST, &cash, body).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
    }

    // The X report: everything since the till's last Z (there was none), the early sale too.
    // Expected: 100 + 74.49 tendered − 11.00 change − 4.50 refunded − 5.00 paid out.
    let report = format!("/sessions/{id}/report");
    let x = node.get(&report).await;
    assert_eq!(x.status, StatusCode::OK, "{}", x.body);
    assert_eq!(x.body["kind"], "X");
    let t = &x.body["totals"];
    for (what, got, expected) in [
        ("sales", t["sales"].to_string(), "3"),
        ("outside the session", t["outsideSession"].to_string(), "1"),
        ("sales total", money(&t["salesTotal"]), "63.49"),
        ("cash tendered", money(&t["cashTendered"]), "74.49"),
        ("change", money(&t["changeGiven"]), "11.00"),
        ("cash refunds", money(&t["cashRefunds"]), "4.50"),
        ("paid out", money(&t["paidOut"]), "5.00"),
        ("no-sales", t["noSales"].to_string(), "1"),
        ("returns", t["returns"].to_string(), "1"),
        ("expected", money(&x.body["expectedCash"]), "153.99"),
    ] {
        assert_eq!(got, expected, "{what}: {}", x.body);
    }
    let staff = |report: &Value, who: &str| {
        report["totals"]["staff"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["staff"] == who)
            .cloned()
            .unwrap_or_else(|| panic!("no {who} in {report}"))
    };
    assert_eq!(staff(&x.body, "ana")["sales"], 2);
    assert_eq!(staff(&x.body, "bo")["sales"], 1);
    assert_eq!(staff(&x.body, "bo")["returns"], 1);
    assert_eq!(staff(&x.body, "ana")["noSales"], 1);

    // The close: counted 1.00 short, by denomination. Z number 1, the X's totals.
    let closed = as_(
        &node,
        &ana,
        Method::POST,
        &format!("/sessions/{id}/close"),
        json!({ "denominations": [{ "value": 50, "count": 3 }, { "value": 1, "count": 2 }, { "value": 0.99, "count": 1 }] }),
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(closed.body["kind"], "Z");
    assert_eq!(closed.body["z"], 1);
    assert_eq!(money(&closed.body["counted"]), "152.99");
    assert_eq!(money(&closed.body["variance"]), "-1.00");
    assert_eq!(closed.body["totals"], x.body["totals"]);
    assert_eq!(closed.body["closedBy"], "ana");
    let z = node.get(&report).await;
    assert_eq!(
        z.body, closed.body,
        "the Z report is what the close recorded"
    );
    assert_error(
        &as_(
            &node,
            &ana,
            Method::POST,
            &format!("/sessions/{id}/close"),
            json!({ "counted": 1 }),
        )
        .await,
        StatusCode::CONFLICT,
        "session_not_open",
        None,
    );
    assert_error(
        &as_(
            &node,
            &ana,
            Method::POST,
            &cash,
            json!({ "kind": "paid_in", "amount": 1, "reason": "late" }),
        )
        .await,
        StatusCode::CONFLICT,
        "session_not_open",
        None,
    );
    let events = node.events().await;
    let recorded = events
        .iter()
        .find(|e| e["topic"] == "session.closed")
        .expect("session.closed in the log");
    assert_eq!(recorded["payload"]["z"], 1);
    assert_eq!(money(&recorded["payload"]["variance"]), "-1.00");

    // The store now requires an open drawer to sell: the closed till refuses a sale.
    let set = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "requireOpenSession": true }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["requireOpenSession"], true);
    assert_error(
        &as_(
            &node,
            &ana,
            Method::POST,
            "/orders",
            order(json!([{ "sku": "MUG", "quantity": 1 }])),
        )
        .await,
        StatusCode::CONFLICT,
        "session_required",
        None,
    );

    // The next day: a new session, whose report starts after Z 1; its Z is number 2.
    let day2 = as_(
        &node,
        &bo,
        Method::POST,
        "/sessions",
        json!({ "float": 100, "currency": "USD" }),
    )
    .await;
    assert_eq!(day2.status, StatusCode::CREATED, "{}", day2.body);
    let id2 = day2.body["id"].as_str().unwrap().to_string();
    cash_sale(&node, &bo, json!([{ "sku": "MUG", "quantity": 1 }]), "5").await;
    let z2 = as_(
        &node,
        &bo,
        Method::POST,
        &format!("/sessions/{id2}/close"),
        json!({ "counted": 104.50 }),
    )
    .await;
    assert_eq!(z2.status, StatusCode::OK, "{}", z2.body);
    assert_eq!(z2.body["z"], 2);
    assert_eq!(z2.body["totals"]["sales"], 1);
    assert_eq!(z2.body["totals"]["outsideSession"], 0);
    assert_eq!(money(&z2.body["variance"]), "0.00");
    let listed = node.get("/sessions").await;
    let zs: Vec<Value> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["z"].clone())
        .collect();
    assert_eq!(zs, vec![json!(2), json!(1)], "newest first");
    node.stop().await;
}
