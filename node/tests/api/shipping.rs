//! Shipping over real HTTP: labels priced from the rate table with valid tracking numbers, the
//! ZPL document, status transitions (only legal ones) and fulfilment on delivery.

use super::*;

fn label(order_id: &str, country: &str) -> Value {
    json!({ "orderId": order_id, "address": { "street": "1 Main St", "city": "Springfield", "country": country, "zip": "12345" } })
}

async fn placed(node: &TestNode, sku: &str) -> String {
    node.product(sku, json!(12), 5).await;
    let answer = node
        .post(
            "/orders",
            order(json!([{ "sku": sku, "quantity": 1, "price": 12 }])),
        )
        .await;
    answer.body["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_tracking_status_and_fulfilment() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let order_id = placed(&node, "S1").await;

    let created = node.post("/shipping/labels", label(&order_id, "US")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let s = &created.body;
    let tracking = s["trackingNumber"].as_str().unwrap().to_string();
    assert!(
        fusion_contracts::events::shipping::tracking_number_is_valid(&tracking),
        "{tracking}"
    );
    assert_eq!(
        (
            s["carrier"].clone(),
            s["service"].clone(),
            s["price"].clone(),
            s["status"].clone()
        ),
        (
            json!("FusionPost"),
            json!("ground"),
            json!(5.99),
            json!("label_created")
        )
    );
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(
        s["labelUrl"],
        json!(format!("/shipping/labels/{id}/label.zpl"))
    );
    assert_eq!(
        node.get(&format!("/shipping/labels/{id}")).await.body,
        created.body
    );
    let document = node.get(&format!("/shipping/labels/{id}/label.zpl")).await;
    assert_eq!(
        document.headers["content-type"],
        "application/zpl; charset=utf-8"
    );
    let zpl = document.body.as_str().unwrap();
    assert!(zpl.starts_with("^XA") && zpl.contains(&tracking) && zpl.contains("Springfield"));
    assert_eq!(
        node.get(&format!("/orders/{order_id}/shipments"))
            .await
            .body,
        json!([created.body])
    );

    let mut bad_zip = label(&order_id, "US");
    bad_zip["address"]["zip"] = json!("");
    let mut heavy = label(&order_id, "US");
    heavy["weightGrams"] = json!(70_001);
    let mut no_city = label(&order_id, "US");
    no_city["address"].as_object_mut().unwrap().remove("city");
    let cases = [
        (
            label(&order_id, "ZZ"),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("address.country"),
        ),
        (
            bad_zip,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("address.zip"),
        ),
        (
            heavy,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("weightGrams"),
        ),
        (
            no_city,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some("address.city"),
        ),
        (
            label("00000000-0000-0000-0000-000000000001", "US"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_not_found",
            Some("orderId"),
        ),
        (
            label(&order_id, "DE"),
            StatusCode::CONFLICT,
            "already_shipped",
            None,
        ),
    ];
    for (body, status, error, field) in cases {
        assert_error(
            &node.post("/shipping/labels", body).await,
            status,
            error,
            field,
        );
    }
    let abroad = placed(&node, "S2").await;
    let de = node.post("/shipping/labels", label(&abroad, "DE")).await;
    assert_eq!(
        (de.body["service"].clone(), de.body["price"].clone()),
        (json!("international"), json!(19.99))
    );
    assert_ne!(
        de.body["trackingNumber"],
        json!(tracking),
        "tracking numbers are unique"
    );
    let cancelled = placed(&node, "S3").await;
    node.post(&format!("/orders/{cancelled}/cancel"), json!({}))
        .await;
    assert_error(
        &node.post("/shipping/labels", label(&cancelled, "US")).await,
        StatusCode::CONFLICT,
        "order_not_shippable",
        None,
    );

    let status_path = format!("/shipments/{id}/status");
    let move_to = |status: &str| node.post(&status_path, json!({ "status": status }));
    assert_error(
        &move_to("delivered").await,
        StatusCode::CONFLICT,
        "illegal_transition",
        Some("status"),
    );
    assert_error(
        &move_to("lost").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("status"),
    );
    assert_eq!(move_to("in_transit").await.body["status"], "in_transit");
    assert_eq!(move_to("delivered").await.body["status"], "delivered");
    assert_eq!(
        node.get(&format!("/orders/{order_id}")).await.body["status"],
        "fulfilled"
    );
    assert_error(
        &node
            .get("/shipping/labels/00000000-0000-0000-0000-000000000001")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    let events = node.events().await;
    let created_event = events
        .iter()
        .find(|e| e["topic"] == "shipping.label.created")
        .unwrap();
    let payload = &created_event["payload"];
    assert_eq!(
        (
            payload["orderId"].clone(),
            payload["trackingNumber"].clone(),
            payload["carrier"].clone()
        ),
        (json!(order_id), json!(tracking), json!("FusionPost"))
    );
    assert!(payload["labelUrl"].is_string());
    let changes: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["topic"] == "shipping.status.changed")
        .map(|e| {
            (
                e["payload"]["from"].as_str().unwrap(),
                e["payload"]["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("label_created", "in_transit"), ("in_transit", "delivered")]
    );
    assert_eq!(events.last().unwrap()["topic"], "order.fulfilled");
    node.stop().await;
}
