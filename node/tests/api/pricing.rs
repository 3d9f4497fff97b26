//! Selling at the catalog's price (issue 17, part 1): a line without a price sells at the price
//! this till's catalog holds; a line priced otherwise is a price override — a manager's, or a
//! cashier's with a manager's approval given at the till — recorded with the order and its
//! `order.created` (list price, price sold, who approved, why). A cashier alone gets 403
//! naming the line's price.

use super::*;

/// A token of `role` and its id (what an approval records: `token:<id>`).
async fn token_with_id(node: &TestNode, role: &str) -> (String, String) {
    let answer = node.post("/tokens", json!({ "role": role })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    (
        answer.body["token"].as_str().unwrap().to_string(),
        answer.body["id"].as_str().unwrap().to_string(),
    )
}

async fn place_as(node: &TestNode, token: &str, body: Value) -> Answer {
    node.call(Method::POST, "/orders", Some(token), Some(&body), &[])
        .await
}

/// The `order.created` payload of `order_id`, from `GET /events`.
async fn created_event(node: &TestNode, order_id: &str) -> Value {
    node.events()
        .await
        .into_iter()
        .find(|e| e["topic"] == "order.created" && e["payload"]["orderId"] == order_id)
        .unwrap_or_else(|| panic!("no order.created for {order_id}"))["payload"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grinder_sells_at_its_catalog_price_unless_a_manager_approves() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    node.product("GRN-HAND", json!(49.99), 5).await;
    let (cashier, _) = token_with_id(&node, "cashier").await;
    let (manager, manager_id) = token_with_id(&node, "manager").await;
    let (other_cashier, _) = token_with_id(&node, "cashier").await;
    let grinder_at =
        |price: Value| order(json!([{ "sku": "GRN-HAND", "quantity": 1, "price": price }]));

    // A cashier selling the 49.99 grinder for 0.01: refused, naming the line's price.
    let refused = place_as(&node, &cashier, grinder_at(json!(0.01))).await;
    assert_error(
        &refused,
        StatusCode::FORBIDDEN,
        "price_override_requires_approval",
        Some("items[0].price"),
    );
    // Nor does another cashier's approval do, and a made-up token is named.
    let mut body = grinder_at(json!(0.01));
    body["approval"] = json!({ "token": other_cashier });
    assert_error(
        &place_as(&node, &cashier, body.clone()).await,
        StatusCode::FORBIDDEN,
        "price_override_requires_approval",
        Some("items[0].price"),
    );
    body["approval"] = json!({ "token": "not-a-token" });
    assert_error(
        &place_as(&node, &cashier, body).await,
        StatusCode::FORBIDDEN,
        "approval_invalid",
        Some("approval.token"),
    );
    assert_eq!(node.stock("GRN-HAND").await, 5, "nothing was sold");

    // With a manager's approval given at the till: sold, and the override recorded.
    let mut body = order(
        json!([{ "sku": "GRN-HAND", "quantity": 1, "price": 0.01, "overrideReason": "floor model" }]),
    );
    body["approval"] = json!({ "token": manager });
    let sold = place_as(&node, &cashier, body).await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
    assert_eq!(sold.body["total"], json!(0.01));
    let line = &sold.body["items"][0];
    assert_eq!(line["price"], json!(0.01));
    assert_eq!(line["listPrice"], json!(49.99));
    assert_eq!(
        line["priceOverride"]["approvedBy"],
        format!("token:{manager_id}")
    );
    assert_eq!(line["priceOverride"]["reason"], "floor model");
    let id = sold.body["id"].as_str().unwrap();
    let got = node.get(&format!("/orders/{id}")).await;
    assert_eq!(got.body["items"], sold.body["items"]);
    let event = created_event(&node, id).await;
    assert_eq!(event["items"][0]["listPrice"], json!(49.99));
    assert_eq!(event["items"][0]["price"], json!(0.01));
    assert_eq!(
        event["items"][0]["priceOverride"]["approvedBy"],
        format!("token:{manager_id}")
    );

    // A line without a price sells at the catalog's: no override.
    let plain = place_as(
        &node,
        &cashier,
        order(json!([{ "sku": "GRN-HAND", "quantity": 2 }])),
    )
    .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert_eq!(plain.body["total"], json!(99.98));
    assert!(
        plain.body["items"][0].get("priceOverride").is_none(),
        "{}",
        plain.body
    );
    let id = plain.body["id"].as_str().unwrap();
    let event = created_event(&node, id).await;
    assert_eq!(event["items"][0]["price"], json!(49.99));
    assert_eq!(event["items"][0]["listPrice"], json!(49.99));
    assert!(event["items"][0].get("priceOverride").is_none(), "{event}");
    // Naming the catalog's own price is no override either.
    let named = place_as(&node, &cashier, grinder_at(json!(49.99))).await;
    assert_eq!(named.status, StatusCode::CREATED, "{}", named.body);

    // A manager overrides alone (FusionCommerce clients, which always send a price, use a
    // manager's token).
    let by_manager = place_as(&node, &manager, grinder_at(json!(45))).await;
    assert_eq!(
        by_manager.status,
        StatusCode::CREATED,
        "{}",
        by_manager.body
    );
    assert_eq!(
        by_manager.body["items"][0]["priceOverride"]["approvedBy"],
        format!("token:{manager_id}")
    );
    assert_eq!(node.stock("GRN-HAND").await, 0);

    // A sku the catalog does not hold, without a price: 422 naming it.
    assert_error(
        &place_as(
            &node,
            &cashier,
            order(json!([{ "sku": "NOPE", "quantity": 1 }])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_list_price",
        Some("items[0].price"),
    );
    node.stop().await;
}

/// Taxes (issue 17, part 2): the store's settings hold rates by class and whether prices
/// include them; every order is taxed once per rate, half away from zero, and carries its
/// subtotal, taxes and total in the response and in `order.created`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_taxed_by_the_stores_settings() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    node.product("BAG", json!(9.99), 10).await;
    node.product("KETTLE", json!(12), 10).await;
    let settings = |taxes: Value| node.send(Method::PATCH, "/settings", json!({ "taxes": taxes }));

    // Bad rates and classes are named.
    for (taxes, field) in [
        (
            json!({ "rates": { "standard": 101 } }),
            "taxes.rates.standard",
        ),
        (
            json!({ "rates": { "standard": -1 } }),
            "taxes.rates.standard",
        ),
        (
            json!({ "rates": { "standard": 8.12345 } }),
            "taxes.rates.standard",
        ),
        (json!({ "rates": { "Bad Class": 5 } }), "taxes.rates"),
    ] {
        assert_error(
            &settings(taxes).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
    }
    // No rates: no tax, as before.
    let untaxed = node
        .post("/orders", order(json!([{ "sku": "BAG", "quantity": 1 }])))
        .await;
    assert_eq!(untaxed.status, StatusCode::CREATED, "{}", untaxed.body);
    assert_eq!(untaxed.body["total"], json!(9.99));
    assert!(untaxed.body.get("taxes").is_none(), "{}", untaxed.body);

    // US sales tax: 8.875 % on top; 9.99 → 0.8866 → 0.89.
    let set = settings(json!({ "pricesIncludeTax": false, "rates": { "standard": 8.875 } })).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        set.body["taxes"],
        json!({ "pricesIncludeTax": false, "rates": { "standard": 8.875 } })
    );
    let sold = node
        .post("/orders", order(json!([{ "sku": "BAG", "quantity": 1 }])))
        .await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
    assert_eq!(sold.body["subtotal"], json!(9.99));
    assert_eq!(
        sold.body["taxes"],
        json!([{ "class": "standard", "rate": 8.875, "base": 9.99, "tax": 0.89 }])
    );
    assert_eq!(sold.body["total"], json!(10.88));
    assert_eq!(sold.body["taxIncluded"], json!(false));
    let id = sold.body["id"].as_str().unwrap();
    let got = node.get(&format!("/orders/{id}")).await;
    assert_eq!(got.body, sold.body);
    let event = created_event(&node, id).await;
    assert_eq!(event["subtotal"], json!(9.99));
    assert_eq!(event["taxes"], sold.body["taxes"]);
    assert_eq!(event["total"], json!(10.88));
    // The payment is for what the customer pays, tax included.
    let paid = node
        .post(
            "/payments",
            json!({ "orderId": id, "amount": 10.88, "currency": "USD", "paymentMethodId": "cash" }),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    // Paid in full, the carry-out order is done.
    assert_eq!(
        node.get(&format!("/orders/{id}")).await.body["status"],
        "fulfilled"
    );

    // VAT: 20 % included; 12.00 + 9.99 gross in one rate, rounded once.
    let set = settings(json!({ "pricesIncludeTax": true, "rates": { "standard": 20 } })).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let sold = node
        .post(
            "/orders",
            order(json!([{ "sku": "KETTLE", "quantity": 1 }, { "sku": "BAG", "quantity": 1 }])),
        )
        .await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
    // 21.99 × 0.2 / 1.2 = 3.665 → 3.67 (half away from zero); base 18.32.
    assert_eq!(
        sold.body["taxes"],
        json!([{ "class": "standard", "rate": 20, "base": 18.32, "tax": 3.67 }])
    );
    assert_eq!(
        (sold.body["subtotal"].clone(), sold.body["total"].clone()),
        (json!(21.99), json!(21.99))
    );
    assert_eq!(sold.body["taxIncluded"], json!(true));

    // Rates without the standard class: a line of that class is refused, naming it.
    let set = settings(json!({ "rates": { "standard": null, "reduced": 5.5 } })).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_error(
        &node
            .post("/orders", order(json!([{ "sku": "BAG", "quantity": 1 }])))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_tax_rate",
        Some("items[0].sku"),
    );
    node.stop().await;
}
