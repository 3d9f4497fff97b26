//! The order chain over real HTTP: order (stock reserved) → payment → order.paid → label
//! (shipping address) or fulfilment (carry-out) → delivered, in order, under one correlation id.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_ships_and_a_carry_out_completes_in_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    node.product("CH", json!(25), 10).await;

    let mut shipped = order(json!([{ "sku": "CH", "quantity": 2, "price": 25 }]));
    shipped["shippingAddress"] =
        json!({ "street": "5 Elm St", "city": "Portland", "country": "US", "zip": "97201" });
    let placed = node
        .call(
            Method::POST,
            "/orders",
            Some(&node.admin),
            Some(&shipped),
            &[("X-Correlation-Id", "till-1-sale-9")],
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    assert_eq!(placed.headers["x-correlation-id"], "till-1-sale-9");
    let order_id = placed.body["id"].as_str().unwrap().to_string();
    assert_eq!(placed.body["shippingAddress"]["city"], "Portland");

    // The payment request brings its own correlation id; the chain keeps the order's.
    let paid = node.post("/payments", json!({ "orderId": order_id, "amount": 50, "currency": "USD", "paymentMethodId": "cash" })).await;
    assert_eq!(paid.status, StatusCode::CREATED);
    let shipments = node
        .get(&format!("/orders/{order_id}/shipments"))
        .await
        .body;
    assert_eq!(
        shipments.as_array().unwrap().len(),
        1,
        "paying created the label"
    );
    assert_eq!(
        node.get(&format!("/orders/{order_id}")).await.body["status"],
        "paid"
    );
    let shipment_id = shipments[0]["id"].as_str().unwrap().to_string();
    for status in ["in_transit", "delivered"] {
        let moved = node
            .post(
                &format!("/shipments/{shipment_id}/status"),
                json!({ "status": status }),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK);
    }
    assert_eq!(
        node.get(&format!("/orders/{order_id}")).await.body["status"],
        "fulfilled"
    );

    let events = node.events().await;
    let chain: Vec<&str> = events
        .iter()
        .filter(|e| e["correlationId"] == "till-1-sale-9")
        .map(|e| e["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        chain,
        [
            "order.created",
            "inventory.reserved",
            "payment.created",
            "payment.succeeded",
            "order.paid",
            "receipt.issued",
            "shipping.label.created",
            "shipping.status.changed",
            "shipping.status.changed",
            "order.fulfilled",
        ]
    );
    let label = events
        .iter()
        .find(|e| e["topic"] == "shipping.label.created")
        .unwrap();
    let paid_event = events.iter().find(|e| e["topic"] == "order.paid").unwrap();
    assert_eq!(
        label["causationId"], paid_event["eventId"],
        "the label was caused by the payment completing"
    );

    // A carry-out order (no address) is fulfilled by its payment.
    let carry = node
        .post(
            "/orders",
            order(json!([{ "sku": "CH", "quantity": 1, "price": 25 }])),
        )
        .await
        .body;
    let carry_id = carry["id"].as_str().unwrap();
    node.post(
        "/payments",
        json!({ "orderId": carry_id, "amount": 25, "currency": "USD", "paymentMethodId": "cash" }),
    )
    .await;
    assert_eq!(
        node.get(&format!("/orders/{carry_id}")).await.body["status"],
        "fulfilled"
    );
    assert_eq!(
        node.get(&format!("/orders/{carry_id}/shipments"))
            .await
            .body,
        json!([])
    );

    let mut bad = order(json!([{ "sku": "CH", "quantity": 1, "price": 25 }]));
    bad["shippingAddress"] = json!({ "street": "x", "city": "y", "country": "USA", "zip": "1" });
    assert_error(
        &node.post("/orders", bad).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("shippingAddress.country"),
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_order_releases_its_stock_when_the_hold_ends() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        order_hold: Some(std::time::Duration::from_millis(800)),
        ..StoreOptions::default()
    };
    let node = start_full(
        dir.path(),
        None,
        fusion_node::card::PaymentPolicy::default(),
        options,
    )
    .await;
    node.product("HOLD", json!(3), 5).await;
    let unpaid = node
        .post(
            "/orders",
            order(json!([{ "sku": "HOLD", "quantity": 2, "price": 3 }])),
        )
        .await
        .body;
    let paid = node
        .post(
            "/orders",
            order(json!([{ "sku": "HOLD", "quantity": 1, "price": 3 }])),
        )
        .await
        .body;
    node.post(
        "/payments",
        json!({ "orderId": paid["id"], "amount": 3, "currency": "USD", "paymentMethodId": "cash" }),
    )
    .await;
    assert_eq!(node.stock("HOLD").await, 2);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let unpaid_path = format!("/orders/{}", unpaid["id"].as_str().unwrap());
    while node.get(&unpaid_path).await.body["status"] != "cancelled" {
        assert!(std::time::Instant::now() < deadline, "the hold never ended");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        node.stock("HOLD").await,
        4,
        "exactly the unpaid order's 2 units came back"
    );
    assert_eq!(node.get("/inventory/HOLD").await.body["reserved"], 1);
    assert_eq!(
        node.get(&format!("/orders/{}", paid["id"].as_str().unwrap()))
            .await
            .body["status"],
        "fulfilled"
    );
    let events = node.events().await;
    let cancelled = events
        .iter()
        .find(|e| e["topic"] == "order.cancelled")
        .unwrap();
    assert_eq!(
        cancelled["payload"]["reason"],
        "unpaid when the payment hold ended"
    );
    let created = events
        .iter()
        .find(|e| e["topic"] == "order.created" && e["key"] == unpaid["id"])
        .unwrap();
    assert_eq!(
        cancelled["correlationId"], created["correlationId"],
        "the expiry belongs to the order's chain"
    );
    node.stop().await;
}
