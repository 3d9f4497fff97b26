//! `/campaigns` over real HTTP: the rules, concurrency at the maximum, and closing at the end —
//! also when the end passed while the node was down — exactly once.

use std::time::{Duration, Instant};

use super::*;

fn rfc3339(offset_ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    fusion_contracts::Timestamp::from_unix_ms(now + offset_ms).to_string()
}

/// A campaign on a new product, open from a second ago for `open_ms`.
async fn campaign(
    node: &TestNode,
    sku: &str,
    stock: u64,
    min: u32,
    max: u32,
    open_ms: i64,
) -> Value {
    let product = node.product(sku, json!(10), stock).await;
    let body = json!({
        "productId": product["id"], "minParticipants": min, "maxParticipants": max,
        "price": 7.5, "originalPrice": 10, "startTime": rfc3339(-1000), "endTime": rfc3339(open_ms),
    });
    let created = node.post("/campaigns", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body
}

async fn join(node: &TestNode, id: &str, user: &str) -> Answer {
    node.post(&format!("/campaigns/{id}/join"), json!({ "userId": user }))
        .await
}

/// Polls until the campaign leaves the open states (the scheduler runs about once a second).
async fn wait_until_ended(node: &TestNode, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let campaign = node.get(&format!("/campaigns/{id}")).await.body;
        if !matches!(campaign["status"].as_str(), Some("active" | "successful")) {
            return campaign;
        }
        assert!(
            Instant::now() < deadline,
            "campaign {id} did not close: {campaign}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let product = node.product("GB", json!(10), 5).await;
    let valid = json!({
        "productId": product["id"], "minParticipants": 2, "maxParticipants": 3,
        "price": 7.5, "originalPrice": 10, "startTime": rfc3339(-1000), "endTime": rfc3339(60_000),
    });
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("minParticipants", json!(0)), "minParticipants"),
        (with("minParticipants", json!(4)), "minParticipants"),
        (with("maxParticipants", json!(0)), "maxParticipants"),
        (with("maxParticipants", json!(1001)), "maxParticipants"),
        (with("endTime", json!(rfc3339(-2000))), "endTime"),
        (with("endTime", json!("tomorrow")), "endTime"),
        (with("price", json!(10.01)), "price"),
        (with("price", json!(7.505)), "price"),
        (with("originalPrice", json!(-1)), "originalPrice"),
        (
            with("productId", json!("00000000-0000-0000-0000-000000000000")),
            "productId",
        ),
        (with("productId", json!("nope")), "productId"),
    ];
    for (body, field) in cases {
        let answer = node.post("/campaigns", body).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(field),
        );
    }

    let created = node.post("/campaigns", valid.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let c = created.body;
    assert_eq!(
        (c["actualParticipants"].clone(), c["status"].clone()),
        (json!(0), json!("active"))
    );
    assert_eq!(
        (
            c["price"].clone(),
            c["originalPrice"].clone(),
            c["currency"].clone()
        ),
        (json!(7.5), json!(10.0), json!("USD"))
    );
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(node.get(&format!("/campaigns/{id}")).await.body, c);
    assert_eq!(node.get("/campaigns").await.body, json!([c]));
    assert_error(
        &node
            .get("/campaigns/00000000-0000-0000-0000-000000000000")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &join(&node, "00000000-0000-0000-0000-000000000000", "u1").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    let later = node
        .post("/campaigns", with("startTime", json!(rfc3339(30_000))))
        .await
        .body;
    let early = join(&node, later["id"].as_str().unwrap(), "u1").await;
    assert_error(&early, StatusCode::CONFLICT, "campaign_not_open", None);

    let one = join(&node, &id, "u1").await;
    assert_eq!(
        (
            one.status,
            one.body["actualParticipants"].clone(),
            one.body["status"].clone()
        ),
        (StatusCode::OK, json!(1), json!("active"))
    );
    assert_error(
        &join(&node, &id, "u1").await,
        StatusCode::CONFLICT,
        "already_joined",
        None,
    );
    let two = join(&node, &id, "u2").await;
    assert_eq!(
        two.body["status"], "successful",
        "the answer carries the new status"
    );
    join(&node, &id, "u3").await;
    assert_error(
        &join(&node, &id, "u4").await,
        StatusCode::CONFLICT,
        "campaign_full",
        None,
    );
    assert_error(
        &node.post(&format!("/campaigns/{id}/join"), json!({})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("userId"),
    );

    let left = node
        .post(&format!("/campaigns/{id}/leave"), json!({ "userId": "u2" }))
        .await;
    assert_eq!(
        (
            left.body["actualParticipants"].clone(),
            left.body["status"].clone()
        ),
        (json!(2), json!("successful"))
    );
    let left = node
        .post(&format!("/campaigns/{id}/leave"), json!({ "userId": "u3" }))
        .await;
    assert_eq!(left.body["status"], "active", "below the minimum again");
    let not_joined = node
        .post(&format!("/campaigns/{id}/leave"), json!({ "userId": "u9" }))
        .await;
    assert_error(&not_joined, StatusCode::CONFLICT, "not_joined", None);

    let cashier = node.token("cashier").await;
    let denied = node
        .call(
            Method::POST,
            &format!("/campaigns/{id}/cancel"),
            Some(&cashier),
            None,
            &[],
        )
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let joined_by_cashier = node
        .call(
            Method::POST,
            &format!("/campaigns/{id}/join"),
            Some(&cashier),
            Some(&json!({ "userId": "u5" })),
            &[],
        )
        .await;
    assert_eq!(joined_by_cashier.status, StatusCode::OK);
    let cancelled = node
        .post(
            &format!("/campaigns/{id}/cancel"),
            json!({ "reason": "supplier out" }),
        )
        .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].clone()),
        (StatusCode::OK, json!("cancelled"))
    );
    assert_error(
        &join(&node, &id, "u6").await,
        StatusCode::CONFLICT,
        "campaign_closed",
        None,
    );
    assert_error(
        &node
            .post(&format!("/campaigns/{id}/cancel"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "campaign_closed",
        None,
    );

    let events = node.events().await;
    let joined: Vec<&Value> = events
        .iter()
        .filter(|e| e["topic"] == "group-commerce.campaign.joined")
        .collect();
    assert_eq!(joined.len(), 4);
    assert_eq!(joined[0]["payload"]["userId"], "u1");
    assert_eq!(
        joined[1]["payload"]["campaign"]["status"], "successful",
        "events carry the new status"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["topic"] == "group-commerce.campaign.successful")
            .count(),
        2,
        "again after dropping below"
    );
    assert!(
        events
            .iter()
            .any(|e| e["topic"] == "group-commerce.campaign.cancelled" && e["key"] == json!(id))
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_joins_fill_exactly_the_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let id = campaign(&node, "HOT", 100, 5, 10, 60_000).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (http, url, admin) = (
            node.http.clone(),
            format!("http://{}/campaigns/{id}/join", node.addr),
            node.admin.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(admin)
                .json(&json!({ "userId": format!("user-{i}") }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body["error"].clone())
        }));
    }
    let mut joined = 0;
    let mut full = 0;
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::OK, _) => joined += 1,
            (StatusCode::CONFLICT, error) if error == "campaign_full" => full += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((joined, full), (10, 90));
    let campaign = node.get(&format!("/campaigns/{id}")).await.body;
    assert_eq!(
        (
            campaign["actualParticipants"].clone(),
            campaign["status"].clone()
        ),
        (json!(10), json!("successful"))
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_places_one_order_per_participant_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    // Stock 2 for 3 participants: two orders are placed, the third is recorded as refused.
    let good = campaign(&node, "DEAL", 2, 2, 5, 1500).await;
    let good_id = good["id"].as_str().unwrap().to_string();
    for user in ["alice", "bob", "carol"] {
        assert_eq!(join(&node, &good_id, user).await.status, StatusCode::OK);
    }
    let poor = campaign(&node, "FLOP", 10, 3, 5, 1500).await;
    let poor_id = poor["id"].as_str().unwrap().to_string();
    join(&node, &poor_id, "dave").await;

    assert_eq!(wait_until_ended(&node, &good_id).await["status"], "closed");
    assert_eq!(wait_until_ended(&node, &poor_id).await["status"], "failed");
    assert_eq!(node.stock("DEAL").await, 0);
    assert_eq!(
        node.stock("FLOP").await,
        10,
        "a failed campaign orders nothing"
    );

    let events = node.events().await;
    let closed: Vec<&Value> = events
        .iter()
        .filter(|e| e["topic"] == "group-commerce.campaign.closed")
        .collect();
    assert_eq!(closed.len(), 2);
    let good_closed = closed.iter().find(|e| e["key"] == json!(good_id)).unwrap();
    let orders = good_closed["payload"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 3, "every participant is accounted for");
    let placed: Vec<&Value> = orders.iter().filter(|o| o["failure"].is_null()).collect();
    let refused: Vec<&Value> = orders.iter().filter(|o| !o["failure"].is_null()).collect();
    assert_eq!((placed.len(), refused.len()), (2, 1));
    assert!(
        refused[0]["failure"]
            .as_str()
            .unwrap()
            .contains("insufficient stock for DEAL")
    );
    for o in &placed {
        let order = node
            .get(&format!("/orders/{}", o["orderId"].as_str().unwrap()))
            .await
            .body;
        assert_eq!(
            (order["total"].clone(), order["customerId"].clone()),
            (json!(7.5), o["userId"].clone())
        );
    }
    // The whole chain shares the campaign's correlation id.
    let correlation = events
        .iter()
        .find(|e| e["topic"] == "group-commerce.campaign.created" && e["key"] == json!(good_id))
        .unwrap()["correlationId"]
        .clone();
    let chain: Vec<&str> = events
        .iter()
        .filter(|e| e["correlationId"] == correlation)
        .map(|e| e["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        chain,
        [
            "group-commerce.campaign.created",
            "order.created",
            "inventory.reserved",
            "order.created",
            "inventory.reserved",
            "inventory.insufficient",
            "group-commerce.campaign.closed",
        ]
    );
    let failed = events
        .iter()
        .find(|e| e["topic"] == "group-commerce.campaign.failed")
        .unwrap();
    assert_eq!(failed["payload"]["reason"], "1 of 3 participants needed");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_that_ended_while_the_node_was_down_closes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let c = campaign(&node, "LATE", 10, 1, 5, 1200).await;
    let id = c["id"].as_str().unwrap().to_string();
    join(&node, &id, "erin").await;
    join(&node, &id, "frank").await;
    node.stop().await;
    // The end passes while nothing runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let node = start(dir.path()).await;
    assert_eq!(wait_until_ended(&node, &id).await["status"], "closed");
    node.stop().await;
    let node = start(dir.path()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await; // a full scheduler period after restart
    let events = node.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["topic"] == "group-commerce.campaign.closed")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["topic"] == "order.created")
            .count(),
        2
    );
    assert_eq!(node.stock("LATE").await, 8);
    node.stop().await;
}

/// Seats given away leave this till at once: it fills only the seats it still holds, refuses
/// to give more than it has (422 naming `seats`, with `available`), names the field of a bad
/// request, and a campaign whose seats are shared can no longer be cancelled here (the hub
/// decides it at its end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_given_away_leave_the_till_and_make_the_campaign_shared() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let c = campaign(&node, "SEAT", 10, 1, 3, 60_000).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/campaigns/{id}/seats/transfer");
    let give = |to: &str, seats: Value| json!({ "to": to, "seats": seats });
    for (body, field) in [
        (give("till-b", json!(0)), "seats"),
        (give("", json!(1)), "to"),
        (give("a b", json!(1)), "to"),
        (give("till-b", json!(-1)), "seats"),
        (give("hub", json!(1)), "to"),
    ] {
        let refused = node.post(&path, body).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{}",
            refused.body
        );
    }
    let refused = node.post(&path, give("till-b", json!(4))).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        (
            refused.body["field"].as_str(),
            refused.body["available"].as_u64()
        ),
        (Some("seats"), Some(3))
    );
    let given = node.post(&path, give("till-b", json!(2))).await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.body);
    assert_eq!(
        (given.body["free"].as_u64(), given.body["shared"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(join(&node, id, "u1").await.status, StatusCode::OK);
    let full = join(&node, id, "u2").await;
    assert_eq!(
        (full.status, full.body["error"].as_str()),
        (StatusCode::CONFLICT, Some("campaign_full")),
        "one seat was left here: {}",
        full.body
    );
    let after = node.get(&format!("/campaigns/{id}")).await.body;
    assert_eq!(
        (
            after["actualParticipants"].as_u64(),
            after["status"].as_str()
        ),
        (Some(1), Some("active")),
        "the minimum (1) is the hub's to judge once seats are shared: {after}"
    );
    let cancel = node
        .post(&format!("/campaigns/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (cancel.status, cancel.body["error"].as_str()),
        (StatusCode::CONFLICT, Some("campaign_shared"))
    );
    let escrow = node.get("/escrow").await.body;
    assert_eq!(
        escrow["seats"][0],
        json!({ "campaignId": id, "free": 0, "participants": 1, "shared": true, "ended": false, "status": "active" })
    );
}
