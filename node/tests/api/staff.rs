//! Staff and PINs (issue 18, part 1): members in the store's settings (PINs as argon2 hashes,
//! never shown), signing in at the till with a PIN, what a signed-in member does recorded
//! with them, a manager's approval given by PIN, and five wrong PINs locking a member.

use super::*;

async fn add(node: &TestNode, id: &str, name: &str, role: &str, pin: &str) -> Answer {
    node.post(
        "/staff",
        json!({ "id": id, "name": name, "role": role, "pin": pin }),
    )
    .await
}

async fn sign_in(node: &TestNode, till: &str, staff: &str, pin: &str) -> Answer {
    node.call(
        Method::POST,
        "/staff/sign-in",
        Some(till),
        Some(&json!({ "staff": staff, "pin": pin })),
        &[],
    )
    .await
}

async fn event_of(node: &TestNode, topic: &str, order_id: &str) -> Value {
    node.events()
        .await
        .into_iter()
        .find(|e| e["topic"] == topic && e["payload"]["orderId"] == order_id)
        .unwrap_or_else(|| panic!("no {topic} for {order_id}"))["payload"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_with_pins_and_a_manager_approves_by_pin() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    node.product("GRN-HAND", json!(49.99), 5).await;
    let till = node.token("cashier").await;

    // Who may add whom, and what a body must hold.
    assert_eq!(
        add(&node, "max", "Max", "manager", "9999").await.status,
        StatusCode::CREATED
    );
    let ana = add(&node, "ana", " Ana ", "cashier", "1234").await;
    assert_eq!(ana.status, StatusCode::CREATED, "{}", ana.body);
    assert_eq!(
        ana.body,
        json!({ "id": "ana", "name": "Ana", "role": "cashier", "active": true })
    );
    assert_error(
        &add(&node, "ana", "Ana", "cashier", "1234").await,
        StatusCode::CONFLICT,
        "staff_exists",
        Some("id"),
    );
    assert_error(
        &add(&node, "bo", "Bo", "cashier", "12").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("pin"),
    );
    assert_error(
        &add(&node, "bo", "Bo", "admin", "1234").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("role"),
    );
    let by_cashier = node
        .call(
            Method::POST,
            "/staff",
            Some(&till),
            Some(&json!({ "id": "bo", "name": "Bo", "role": "cashier", "pin": "1234" })),
            &[],
        )
        .await;
    assert_eq!(
        by_cashier.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_cashier.body
    );

    // No answer shows a PIN or its hash.
    for path in ["/staff", "/settings"] {
        let text = node.get(path).await.body.to_string();
        assert!(
            !text.contains("argon2") && !text.contains("1234") && !text.contains("pinHash"),
            "{path}: {text}"
        );
    }

    // Ana signs in at the till; what she does is hers.
    let signed = sign_in(&node, &till, "ana", "1234").await;
    assert_eq!(signed.status, StatusCode::CREATED, "{}", signed.body);
    assert_eq!(signed.headers["cache-control"], "no-store");
    let ana_token = signed.body["token"].as_str().unwrap().to_string();
    assert!(ana_token.starts_with("fss_"), "{ana_token}");
    let sale = node
        .call(
            Method::POST,
            "/orders",
            Some(&ana_token),
            Some(&order(json!([{ "sku": "GRN-HAND", "quantity": 1 }]))),
            &[],
        )
        .await;
    assert_eq!(sale.status, StatusCode::CREATED, "{}", sale.body);
    let order_id = sale.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        event_of(&node, "order.created", &order_id).await["staff"],
        "ana"
    );
    let paid = node
        .call(Method::POST, "/payments", Some(&ana_token), Some(&json!({ "orderId": order_id, "amount": 49.99, "currency": "USD", "paymentMethodId": "cash", "tendered": 50 })), &[])
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(
        event_of(&node, "payment.created", &order_id).await["staff"],
        "ana"
    );
    // A sale by a token alone names no one.
    let by_token = node
        .post(
            "/orders",
            order(json!([{ "sku": "GRN-HAND", "quantity": 1 }])),
        )
        .await;
    let token_order = by_token.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        event_of(&node, "order.created", &token_order).await["staff"],
        Value::Null
    );

    // Her override needs a manager: Max approves with his PIN, without signing her out.
    let cheap = |approval: Value| {
        let mut body = order(
            json!([{ "sku": "GRN-HAND", "quantity": 1, "price": 0.01, "overrideReason": "damaged box" }]),
        );
        body["approval"] = approval;
        body
    };
    let as_ana = |body: Value| {
        let node = &node;
        let token = ana_token.clone();
        async move {
            node.call(Method::POST, "/orders", Some(&token), Some(&body), &[])
                .await
        }
    };
    assert_error(
        &as_ana(cheap(Value::Null)).await,
        StatusCode::FORBIDDEN,
        "price_override_requires_approval",
        Some("items[0].price"),
    );
    // A cashier's PIN approves nothing.
    assert_error(
        &as_ana(cheap(json!({ "staff": "ana", "pin": "1234" }))).await,
        StatusCode::FORBIDDEN,
        "price_override_requires_approval",
        Some("items[0].price"),
    );
    let approved = as_ana(cheap(json!({ "staff": "max", "pin": "9999" }))).await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.body);
    let created = event_of(
        &node,
        "order.created",
        approved.body["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(created["staff"], "ana");
    assert_eq!(
        created["items"][0]["priceOverride"]["approvedBy"],
        "staff:max"
    );
    assert_error(
        &as_ana(cheap(json!({ "staff": "max" }))).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("approval.pin"),
    );

    // An unknown member cannot approve, and says no more than a wrong PIN does.
    assert_error(
        &as_ana(cheap(json!({ "staff": "nobody", "pin": "9999" }))).await,
        StatusCode::FORBIDDEN,
        "pin_invalid",
        Some("approval.pin"),
    );
    // Five wrong PINs lock Max at this till: then not even his right PIN approves or signs in.
    for _ in 0..4 {
        assert_error(
            &as_ana(cheap(json!({ "staff": "max", "pin": "0000" }))).await,
            StatusCode::FORBIDDEN,
            "pin_invalid",
            Some("approval.pin"),
        );
    }
    let locked = as_ana(cheap(json!({ "staff": "max", "pin": "0000" }))).await;
    assert_error(
        &locked,
        StatusCode::TOO_MANY_REQUESTS,
        "staff_locked",
        Some("approval.pin"),
    );
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((299..=300).contains(&retry), "{retry}");
    assert_error(
        &as_ana(cheap(json!({ "staff": "max", "pin": "9999" }))).await,
        StatusCode::TOO_MANY_REQUESTS,
        "staff_locked",
        Some("approval.pin"),
    );
    assert_error(
        &sign_in(&node, &till, "max", "9999").await,
        StatusCode::TOO_MANY_REQUESTS,
        "staff_locked",
        Some("pin"),
    );
    let listed = node.get("/staff").await.body;
    let max = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "max")
        .unwrap();
    assert!(max["lockedUntil"].is_string(), "{listed}");
    // Ana is not locked by Max's failures.
    assert_eq!(
        sign_in(&node, &till, "ana", "1234").await.status,
        StatusCode::CREATED
    );

    // A member made inactive is signed out at once and cannot sign in again.
    let removed = node
        .call(Method::DELETE, "/staff/ana", Some(&node.admin), None, &[])
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert_eq!(
        node.call(Method::GET, "/orders", Some(&ana_token), None, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_error(
        &sign_in(&node, &till, "ana", "1234").await,
        StatusCode::FORBIDDEN,
        "pin_invalid",
        Some("pin"),
    );
    // Back, with a new PIN: the old one is wrong.
    let back = node
        .send(
            Method::PATCH,
            "/staff/ana",
            json!({ "active": true, "pin": "4321" }),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_error(
        &sign_in(&node, &till, "ana", "1234").await,
        StatusCode::FORBIDDEN,
        "pin_invalid",
        Some("pin"),
    );
    let again = sign_in(&node, &till, "ana", "4321").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    let token = again.body["token"].as_str().unwrap().to_string();

    // Signing out ends the token; a token that is not a sign-in cannot sign out.
    assert_error(
        &node.post("/staff/sign-out", json!({})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("Authorization"),
    );
    let out = node
        .call(Method::POST, "/staff/sign-out", Some(&token), None, &[])
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_eq!(
        node.call(Method::GET, "/orders", Some(&token), None, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    node.stop().await;
}
