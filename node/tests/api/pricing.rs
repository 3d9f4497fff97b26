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

/// Promotions, discounts and tax classes (issue 17, parts 2–4) over HTTP: every line of an
/// order is priced by the store's promotions, then its discount, then the order's discount,
/// then taxed by its product's class; the order and its `order.created` show what each
/// promotion and discount took, each line's tax and what the customer paid for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_discounts_and_tax_classes_price_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    let (cashier, _) = token_with_id(&node, "cashier").await;
    let (manager, manager_id) = token_with_id(&node, "manager").await;
    let product = |body: Value| node.post("/products", body);
    for body in [
        json!({ "sku": "BEAN", "name": "Beans", "price": 10, "currency": "USD", "inventory": 50, "category": "coffee" }),
        json!({ "sku": "MILK", "name": "Milk", "price": 2, "currency": "USD", "inventory": 50, "taxClass": "reduced" }),
        json!({ "sku": "MUG", "name": "Mug", "price": 3, "currency": "USD", "inventory": 50 }),
    ] {
        let created = product(body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    assert_error(
        &product(json!({ "sku": "BAD", "name": "Bad", "price": 1, "currency": "USD", "taxClass": "Bad Class" }))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("taxClass"),
    );
    let milk = node.get("/products/by-sku/MILK").await;
    assert_eq!(milk.body["taxClass"], "reduced", "{}", milk.body);
    let set = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "taxes": { "pricesIncludeTax": false, "rates": { "standard": 20, "reduced": 5 } } }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["discountApprovalPercent"], json!(10));

    // Promotions: a manager's; invalid ones are named.
    let coffee_week = json!({ "name": "Coffee week", "kind": "percentOff", "percent": 10, "categories": ["coffee"] });
    assert_error(
        &node
            .call(
                Method::POST,
                "/promotions",
                Some(&cashier),
                Some(&coffee_week),
                &[],
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        None,
    );
    assert_error(
        &node
            .post("/promotions", json!({ "name": "x", "kind": "multiBuy", "skus": ["MUG"], "quantity": 1, "price": 7, "currency": "USD" }))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("quantity"),
    );
    let week = node
        .call(
            Method::POST,
            "/promotions",
            Some(&manager),
            Some(&coffee_week),
            &[],
        )
        .await;
    assert_eq!(week.status, StatusCode::CREATED, "{}", week.body);
    let week_id = week.body["id"].as_str().unwrap().to_string();
    let mugs = node
        .post("/promotions", json!({ "name": "3 mugs for 7", "kind": "multiBuy", "skus": ["MUG"], "quantity": 3, "price": 7, "currency": "USD" }))
        .await;
    assert_eq!(mugs.status, StatusCode::CREATED, "{}", mugs.body);
    let listed = node.get("/promotions").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2, "{}", listed.body);

    // A cashier's order: beans (10 % off, coffee week), three mugs (3 for 7.00), milk at 5 %
    // off, and 1.00 off the order.
    let mut body = order(json!([
        { "sku": "BEAN", "quantity": 1 },
        { "sku": "MUG", "quantity": 3 },
        { "sku": "MILK", "quantity": 1, "discount": { "percent": 5, "reason": "dented" } },
    ]));
    body["discount"] = json!({ "amount": 1, "reason": "regular" });
    let sold = place_as(&node, &cashier, body).await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
    // BEAN 10.00 − 1.00 = 9.00; MUG 9.00 − 2.00 = 7.00; MILK 2.00 − 0.10 = 1.90. The order's
    // 1.00 shared 50 : 39 : 11 → nets 8.50, 6.61, 1.79. Standard 20 % of 15.11 = 3.022 → 3.02,
    // shared 1.70 : 1.32; reduced 5 % of 1.79 = 0.0895 → 0.09.
    let lines: Vec<(Value, Value, Value, Value)> = sold.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["taxClass"].clone(),
                i["net"].clone(),
                i["tax"].clone(),
                i["paid"].clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (json!("standard"), json!(8.50), json!(1.70), json!(10.20)),
            (json!("standard"), json!(6.61), json!(1.32), json!(7.93)),
            (json!("reduced"), json!(1.79), json!(0.09), json!(1.88)),
        ]
    );
    assert_eq!(sold.body["subtotal"], json!(21.00));
    assert_eq!(sold.body["discountTotal"], json!(4.10));
    assert_eq!(sold.body["total"], json!(20.01));
    assert_eq!(
        sold.body["taxes"],
        json!([
            { "class": "reduced", "rate": 5, "base": 1.79, "tax": 0.09 },
            { "class": "standard", "rate": 20, "base": 15.11, "tax": 3.02 },
        ])
    );
    let promotions: Vec<(Value, Value)> = sold.body["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].clone(), p["amount"].clone()))
        .collect();
    assert_eq!(
        promotions,
        [
            (json!("3 mugs for 7"), json!(2.00)),
            (json!("Coffee week"), json!(1.00))
        ]
    );
    assert_eq!(sold.body["discount"]["amount"], json!(1.00));
    assert_eq!(
        sold.body["items"][0]["adjustments"][0]["promotionId"],
        json!(week_id)
    );
    let id = sold.body["id"].as_str().unwrap().to_string();
    let event = created_event(&node, &id).await;
    assert_eq!(event["items"], sold.body["items"]);
    assert_eq!(event["discountTotal"], json!(4.10));
    assert_eq!(event["total"], json!(20.01));
    assert_eq!(node.get(&format!("/orders/{id}")).await.body, sold.body);
    let paid = node
        .post(
            "/payments",
            json!({ "orderId": id, "amount": 20.01, "currency": "USD", "paymentMethodId": "cash" }),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);

    // A cashier's discount above the store's 10 %: 403 naming it; with a manager's approval
    // it is taken and the approver recorded.
    let mut body = order(json!([{ "sku": "MUG", "quantity": 1, "discount": { "percent": 15 } }]));
    assert_error(
        &place_as(&node, &cashier, body.clone()).await,
        StatusCode::FORBIDDEN,
        "discount_requires_approval",
        Some("items[0].discount"),
    );
    body["approval"] = json!({ "token": manager });
    let approved = place_as(&node, &cashier, body).await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.body);
    assert_eq!(
        approved.body["items"][0]["adjustments"][0]["approvedBy"],
        format!("token:{manager_id}")
    );
    // More than the line: 422 naming it; both fields at once: 400.
    assert_error(
        &place_as(
            &node,
            &manager,
            order(json!([{ "sku": "MUG", "quantity": 1, "discount": { "amount": 3.01 } }])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "discount_too_large",
        Some("items[0].discount"),
    );
    assert_error(
        &place_as(
            &node,
            &cashier,
            order(
                json!([{ "sku": "MUG", "quantity": 1, "discount": { "amount": 1, "percent": 5 } }]),
            ),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("items[0].discount"),
    );
    // The store raises its threshold: the cashier's 15 % needs nobody now.
    let set = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "discountApprovalPercent": 20 }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let alone = place_as(
        &node,
        &cashier,
        order(json!([{ "sku": "MUG", "quantity": 1, "discount": { "percent": 15 } }])),
    )
    .await;
    assert_eq!(alone.status, StatusCode::CREATED, "{}", alone.body);

    // Ended, a promotion prices nothing more.
    let ended = node
        .call(
            Method::DELETE,
            &format!("/promotions/{week_id}"),
            Some(&manager),
            None,
            &[],
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.body);
    let plain = place_as(
        &node,
        &cashier,
        order(json!([{ "sku": "BEAN", "quantity": 1 }])),
    )
    .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert_eq!(plain.body["discountTotal"], json!(0.00));
    assert_eq!(plain.body["total"], json!(12.00));
    node.stop().await;
}

/// Returns (issue 17, part 5) at the till that sold the order: each unit refunds its share of
/// what its line paid (after promotions and discounts, with tax), to cash or store credit,
/// restocked or not; never more units than were sold; above the store's
/// `returnApprovalAmount` a manager approves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_refund_what_each_unit_paid_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    let (cashier, _) = token_with_id(&node, "cashier").await;
    let (manager, manager_id) = token_with_id(&node, "manager").await;
    node.product("CUP", json!(4), 10).await;
    node.product("LID", json!(1), 10).await;
    let set = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "taxes": { "rates": { "standard": 20 } }, "returnApprovalAmount": { "amount": 10, "currency": "USD" } }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let mut body = order(json!([{ "sku": "CUP", "quantity": 3 }, { "sku": "LID", "quantity": 1 }]));
    body["discount"] = json!({ "amount": 1 });
    let sold = place_as(&node, &cashier, body).await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
    // CUP 12.00 − 0.92 (its share of 1.00) = 11.08 + 20 % = 13.30 paid; LID 0.92 + 0.18.
    assert_eq!(sold.body["items"][0]["paid"], json!(13.30), "{}", sold.body);
    let id = sold.body["id"].as_str().unwrap().to_string();
    let returns = format!("/orders/{id}/returns");
    let give_back = |token: &str, body: Value| {
        let token = token.to_string();
        let path = returns.clone();
        let node = &node;
        async move {
            node.call(Method::POST, &path, Some(&token), Some(&body), &[])
                .await
        }
    };

    // Unpaid: cancel it instead.
    assert_error(
        &give_back(
            &cashier,
            json!({ "lines": [{ "sku": "CUP", "quantity": 1 }] }),
        )
        .await,
        StatusCode::CONFLICT,
        "order_not_returnable",
        None,
    );
    let total = sold.body["total"].clone();
    let paid = node
        .post(
            "/payments",
            json!({ "orderId": id, "amount": total, "currency": "USD", "paymentMethodId": "cash" }),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);

    // Bad lines are named.
    for (body, field) in [
        (json!({ "lines": [] }), "lines"),
        (
            json!({ "lines": [{ "sku": "NOPE", "quantity": 1 }] }),
            "lines[0].sku",
        ),
        (
            json!({ "lines": [{ "line": 7, "quantity": 1 }] }),
            "lines[0].line",
        ),
        (
            json!({ "lines": [{ "line": 0, "sku": "CUP", "quantity": 1 }] }),
            "lines[0]",
        ),
        (
            json!({ "lines": [{ "line": 0, "quantity": 0 }] }),
            "lines[0].quantity",
        ),
    ] {
        assert_error(
            &give_back(&cashier, body).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
    }
    // One cup back to the shelf, in cash: 13.30 / 3 = 4.4333 → 4.43.
    let first = give_back(
        &cashier,
        json!({ "lines": [{ "sku": "CUP", "quantity": 1 }], "restock": true, "reason": "cracked" }),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["refund"], json!(4.43), "{}", first.body);
    assert_eq!(first.body["refundTo"], json!("cash"));
    assert_eq!(node.stock("CUP").await, 8);
    // Two more to store credit: 8.87 (so the three refund exactly 13.30); above the store's
    // 10.00 only the lid would need approval — this one does not.
    let second = give_back(
        &cashier,
        json!({ "lines": [{ "line": 0, "quantity": 2 }], "refundTo": { "kind": "storeCredit", "account": "alice" } }),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["refund"], json!(8.87), "{}", second.body);
    assert_eq!(node.stock("CUP").await, 8, "not restocked");
    let credit = node.get("/store-credit/alice").await;
    assert_eq!(credit.body["balance"], json!(8.87), "{}", credit.body);
    // Nothing is refunded twice: no cup is left to return.
    assert_error(
        &give_back(
            &cashier,
            json!({ "lines": [{ "sku": "CUP", "quantity": 1 }] }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "more_than_sold",
        Some("lines"),
    );
    let got = node.get(&format!("/orders/{id}")).await;
    assert_eq!(got.body["returned"], json!([3, 0]), "{}", got.body);
    // The events are in the log, with what each line refunded.
    let returned: Vec<Value> = node
        .events()
        .await
        .into_iter()
        .filter(|e| e["topic"] == "order.returned")
        .map(|e| e["payload"]["lines"][0]["refund"].clone())
        .collect();
    assert_eq!(returned, [json!(4.43), json!(8.87)]);

    // Above the store's limit a manager approves: a second order of three cups, all back.
    let big = place_as(
        &node,
        &cashier,
        order(json!([{ "sku": "CUP", "quantity": 3 }])),
    )
    .await;
    let big_id = big.body["id"].as_str().unwrap().to_string();
    let total = big.body["total"].clone();
    node.post(
        "/payments",
        json!({ "orderId": big_id, "amount": total, "currency": "USD", "paymentMethodId": "cash" }),
    )
    .await;
    let path = format!("/orders/{big_id}/returns");
    let all = json!({ "lines": [{ "sku": "CUP", "quantity": 3 }] });
    assert_error(
        &node
            .call(Method::POST, &path, Some(&cashier), Some(&all), &[])
            .await,
        StatusCode::FORBIDDEN,
        "return_requires_approval",
        None,
    );
    let mut approved = all.clone();
    approved["approval"] = json!({ "token": manager });
    let back = node
        .call(Method::POST, &path, Some(&cashier), Some(&approved), &[])
        .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.body);
    assert_eq!(back.body["refund"], json!(14.40));
    assert_eq!(back.body["approvedBy"], format!("token:{manager_id}"));
    node.stop().await;
}

/// A return to the original tenders gives each payment back what it can, store credit before
/// cash (cards first, tested against localstripe in `payments.rs`); it is taken only where the
/// payments are. An exchange is one transaction: the return pays the new order, the rest is
/// refunded, or the customer pays what is due; a restocked unit can be sold again in it; an
/// exchange that cannot be sold leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_and_refunds_to_the_original_tenders() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    node.product("TEE-M", json!(20), 1).await;
    node.product("TEE-L", json!(20), 0).await;
    node.product("SOCKS", json!(5), 10).await;
    node.product("COAT", json!(80), 1).await;
    let issued = node
        .post(
            "/store-credit/gift/issue",
            json!({ "amount": 6, "currency": "USD", "reason": "gift card" }),
        )
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let pay = |id: &str, amount: Value, method: &str| {
        node.post(
            "/payments",
            json!({ "orderId": id, "amount": amount, "currency": "USD", "paymentMethodId": method }),
        )
    };

    // 4 socks (20.00), paid 6.00 by gift card and 14.00 in cash.
    let socks = node
        .post("/orders", order(json!([{ "sku": "SOCKS", "quantity": 4 }])))
        .await;
    let socks_id = socks.body["id"].as_str().unwrap().to_string();
    let gift = pay(&socks_id, json!(6), "store_credit:gift").await;
    assert_eq!(gift.status, StatusCode::CREATED, "{}", gift.body);
    let cash = pay(&socks_id, json!(14), "cash").await;
    assert_eq!(cash.status, StatusCode::CREATED, "{}", cash.body);
    assert_eq!(
        node.get("/store-credit/gift").await.body["balance"],
        json!(0.0)
    );
    // Two pairs back (10.00): the gift card gets its 6.00 back, the cash payment 4.00.
    let back = node
        .post(
            &format!("/orders/{socks_id}/returns"),
            json!({ "lines": [{ "sku": "SOCKS", "quantity": 2 }], "refundTo": { "kind": "original" } }),
        )
        .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.body);
    let parts = &back.body["refundTo"]["split"]["parts"];
    assert_eq!(
        (
            parts[0]["to"]["payment"]["tender"].clone(),
            parts[0]["amount"].clone()
        ),
        (json!("store_credit"), json!(6.0)),
        "{}",
        back.body
    );
    assert_eq!(
        (
            parts[1]["to"]["payment"]["tender"].clone(),
            parts[1]["amount"].clone()
        ),
        (json!("cash"), json!(4.0))
    );
    assert_eq!(
        node.get("/store-credit/gift").await.body["balance"],
        json!(6.0)
    );
    let cash_id = cash.body["id"].as_str().unwrap();
    assert_eq!(
        node.get(&format!("/payments/{cash_id}")).await.body["refundedAmount"],
        json!(4.0)
    );
    // Asking for more than the payments can still give back is refused, naming refundTo.
    node.post(
        &format!("/payments/{cash_id}/refund"),
        json!({ "amount": 9 }),
    )
    .await;
    assert_error(
        &node
            .post(
                &format!("/orders/{socks_id}/returns"),
                json!({ "lines": [{ "sku": "SOCKS", "quantity": 2 }], "refundTo": { "kind": "original" } }),
            )
            .await,
        StatusCode::CONFLICT,
        "tenders_not_refundable",
        Some("refundTo"),
    );
    assert_eq!(
        node.get(&format!("/orders/{socks_id}")).await.body["returned"],
        json!([2])
    );

    // A medium tee exchanged for a large, which is out of stock: the returned medium is no
    // large, so the exchange is refused whole — nothing is returned, nothing sold.
    let tee = node
        .post("/orders", order(json!([{ "sku": "TEE-M", "quantity": 1 }])))
        .await;
    let tee_id = tee.body["id"].as_str().unwrap().to_string();
    pay(&tee_id, json!(20), "cash").await;
    let exchanges = format!("/orders/{tee_id}/exchanges");
    let refused = node
        .post(
            &exchanges,
            json!({ "lines": [{ "sku": "TEE-M", "quantity": 1 }], "restock": true,
                    "items": [{ "sku": "TEE-L", "quantity": 1 }] }),
        )
        .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_stock",
        Some("items[0].quantity"),
    );
    assert_eq!(
        node.get(&format!("/orders/{tee_id}")).await.body["returned"],
        json!(null)
    );
    assert_eq!(node.stock("TEE-M").await, 0);
    // The same medium again: the returned unit is back on the shelf and sold in the
    // exchange; the new order is paid by the return, nothing due, nothing refunded.
    let same = node
        .post(
            &exchanges,
            json!({ "lines": [{ "sku": "TEE-M", "quantity": 1 }], "restock": true,
                    "items": [{ "sku": "TEE-M", "quantity": 1 }], "reason": "stained" }),
        )
        .await;
    assert_eq!(same.status, StatusCode::CREATED, "{}", same.body);
    assert_eq!(same.body["amountDue"], json!(0.0), "{}", same.body);
    assert_eq!(same.body["order"]["status"], "fulfilled", "{}", same.body);
    assert_eq!(same.body["payment"]["tender"], "store_credit");
    assert_eq!(same.body["return"]["refund"], json!(20.0));
    assert_eq!(node.stock("TEE-M").await, 0, "one back, one sold");
    let exchange_account = format!(
        "exchange-{}",
        same.body["return"]["returnId"].as_str().unwrap()
    );
    assert_eq!(
        node.get(&format!("/store-credit/{exchange_account}"))
            .await
            .body["balance"],
        json!(0.0),
        "the exchange's account is credited and debited in one commit"
    );

    // That tee for socks (cheaper): 5.00 pays the socks, 15.00 comes back in cash.
    let second = same.body["order"]["id"].as_str().unwrap().to_string();
    let cheaper = node
        .post(
            &format!("/orders/{second}/exchanges"),
            json!({ "lines": [{ "line": 0, "quantity": 1 }], "items": [{ "sku": "SOCKS", "quantity": 1 }] }),
        )
        .await;
    assert_eq!(cheaper.status, StatusCode::CREATED, "{}", cheaper.body);
    assert_eq!(
        cheaper.body["return"]["refundTo"]["split"]["parts"][1],
        json!({ "to": "cash", "amount": 15.0 }),
        "{}",
        cheaper.body
    );
    // The socks for the coat (dearer): the 5.00 pays part, 75.00 is due and paid in cash.
    let third = cheaper.body["order"]["id"].as_str().unwrap().to_string();
    let dearer = node
        .post(
            &format!("/orders/{third}/exchanges"),
            json!({ "lines": [{ "sku": "SOCKS", "quantity": 1 }], "restock": true, "items": [{ "sku": "COAT", "quantity": 1 }] }),
        )
        .await;
    assert_eq!(dearer.status, StatusCode::CREATED, "{}", dearer.body);
    assert_eq!(dearer.body["amountDue"], json!(75.0), "{}", dearer.body);
    assert_eq!(dearer.body["order"]["status"], "created");
    let coat = dearer.body["order"]["id"].as_str().unwrap().to_string();
    let rest = pay(&coat, json!(75), "cash").await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
    assert_eq!(
        node.get(&format!("/orders/{coat}")).await.body["status"],
        "fulfilled"
    );
    // Bad exchanges are named: the return's lines and the new order's items.
    for (body, field) in [
        (
            json!({ "lines": [], "items": [{ "sku": "COAT", "quantity": 1 }] }),
            "lines",
        ),
        (
            json!({ "lines": [{ "sku": "SOCKS", "quantity": 1 }], "items": [] }),
            "items",
        ),
        (
            json!({ "lines": [{ "sku": "SOCKS", "quantity": 1 }], "items": [{ "sku": "COAT", "quantity": 0 }] }),
            "items[0].quantity",
        ),
    ] {
        assert_error(
            &node.post(&format!("/orders/{third}/exchanges"), body).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
    }
    node.stop().await;
}

/// Every paid order gets a receipt number, gap-free at its till (`<till>-<n>`), recorded as
/// `receipt.issued` with the payment; `GET /orders/{id}/receipt` shows it as JSON and as
/// 42-column text; an unpaid order has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_orders_get_gap_free_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    let named = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "name": "Corner Coffee" }),
        )
        .await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.body);
    node.product("BEANS", json!(12.5), 10).await;
    let till = node.store.node_id().to_string();
    let mut receipts = Vec::new();
    for tendered in [20, 30] {
        let placed = node
            .post("/orders", order(json!([{ "sku": "BEANS", "quantity": 1 }])))
            .await;
        let id = placed.body["id"].as_str().unwrap().to_string();
        let path = format!("/orders/{id}/receipt");
        assert_error(
            &node.get(&path).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
        let paid = node
            .post(
                "/payments",
                json!({ "orderId": id, "amount": 12.5, "currency": "USD", "paymentMethodId": "cash", "tendered": tendered }),
            )
            .await;
        assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
        receipts.push((id, node.get(&path).await));
    }
    for (n, (id, receipt)) in receipts.iter().enumerate() {
        let number = n as u64 + 1;
        assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.body);
        assert_eq!(receipt.body["number"], json!(number), "{}", receipt.body);
        assert_eq!(receipt.body["receipt"], json!(format!("{till}-{number}")));
        assert_eq!(receipt.body["store"], "Corner Coffee");
        assert_eq!(receipt.body["order"]["id"], json!(id));
        assert_eq!(receipt.body["tenders"][0]["tender"], "cash");
        let text = receipt.body["text"].as_str().unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= 42), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("TOTAL") && l.ends_with("USD 12.50")),
            "{text}"
        );
    }
    assert!(
        receipts[1].1.body["text"]
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Change") && l.ends_with("17.50")),
        "{}",
        receipts[1].1.body["text"]
    );
    // As text/plain for the printer; a format it does not know is named.
    let id = &receipts[0].0;
    let plain = node
        .http
        .get(format!(
            "http://{}/orders/{id}/receipt?format=text",
            node.addr
        ))
        .bearer_auth(&node.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(
        plain.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let plain = plain.text().await.unwrap();
    assert_eq!(plain, receipts[0].1.body["text"].as_str().unwrap());
    assert_error(
        &node.get(&format!("/orders/{id}/receipt?format=pdf")).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("format"),
    );
    // The numbers are events, in the log with the payments.
    let issued: Vec<Value> = node
        .events()
        .await
        .into_iter()
        .filter(|e| e["topic"] == "receipt.issued")
        .map(|e| e["payload"]["number"].clone())
        .collect();
    assert_eq!(issued, [json!(1), json!(2)]);
    node.stop().await;
}
