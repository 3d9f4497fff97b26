//! A receipt at the hub (`GET /fleet/orders/{id}/receipt`): laid out from a real till's log
//! by the tills' rule, it is the till's own receipt line for line — the catalog's names, the
//! store's name and address from its settings, the tenders and change, and the verification
//! code of the till's journal entry, which the hub computes as it stores the entry and again
//! when it rebuilds its projections from the log.

use std::time::{Duration, Instant};

use fusion_node::replication::{PeerLink, Role};
use fusion_sync::net;
use serde_json::json;

mod common;
use common::{Api, Till, serve_hub};

/// The text of `path` once it answers 200 with `wanted`.
async fn text_once(api: &Api, path: &str, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = api
            .http
            .get(format!("{}{path}", api.url))
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        if status == 200 && text == wanted {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: {status}\n{text}\nwanted:\n{wanted}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_receipt_is_the_tills_line_for_line() {
    let hub_dir = tempfile::tempdir().unwrap();
    let served = serve_hub(hub_dir.path()).await;
    let (hub_id, hub_addr) = (served.id, served.addr);
    let dir = tempfile::tempdir().unwrap();
    let ep = net::offline_endpoint(
        net::load_or_create_identity(dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    served.hub.state.store.enroll(ep.id(), "store-1").unwrap();
    let till = Till::start(
        dir.path(),
        ep,
        vec![PeerLink::new(Role::Hub, hub_id, vec![hub_addr])],
    )
    .await;
    let post = |path: &'static str, body: serde_json::Value| {
        till.api.call(reqwest::Method::POST, path, Some(body))
    };
    let (status, _) = till
        .api
        .call(
            reqwest::Method::PATCH,
            "/settings",
            Some(json!({ "name": "Harbour Deli", "address": "3 Quay St\nBristol BS1 4DJ" })),
        )
        .await;
    assert_eq!(status, 200);
    for (sku, name, price) in [
        ("BRD", "Sourdough loaf", 4.2),
        ("OIL", "Olive oil 500 ml", 7.95),
    ] {
        let (status, _) = post(
            "/products",
            json!({ "sku": sku, "name": name, "price": price, "currency": "GBP", "inventory": 10 }),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, order) = post(
        "/orders",
        json!({ "customerId": "c1", "currency": "GBP", "items": [
            { "sku": "BRD", "quantity": 2, "price": 4.2 }, { "sku": "OIL", "quantity": 1, "price": 7.95 }] }),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let total = order["total"].as_f64().unwrap();
    let (status, paid) = post(
        "/payments",
        json!({ "orderId": id, "amount": total, "currency": "GBP", "paymentMethodId": "cash", "tendered": 20 }),
    )
    .await;
    assert_eq!(status, 201, "{paid}");
    let till_text = till
        .api
        .http
        .get(format!("{}/orders/{id}/receipt?format=text", till.api.url))
        .bearer_auth(&till.api.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "Harbour Deli",
        "Bristol BS1 4DJ",
        "Sourdough loaf",
        "Change",
        "Verify ",
    ] {
        assert!(till_text.contains(needle), "{needle}\n{till_text}");
    }
    let path = format!("/fleet/orders/{id}/receipt?format=text");
    text_once(&served.api, &path, &till_text).await;
    let (status, receipt) = served.api.get(&format!("/fleet/orders/{id}/receipt")).await;
    assert_eq!(status, 200, "{receipt}");
    let (_, at_till) = till.api.get(&format!("/orders/{id}/receipt")).await;
    assert_eq!(receipt["verificationCode"], at_till["verificationCode"]);
    assert_eq!(receipt["receipt"], at_till["receipt"]);
    assert_eq!(receipt["storeId"], "store-1");
    assert_eq!(receipt["text"], till_text.as_str());
    assert!(
        receipt["html"]
            .as_str()
            .unwrap()
            .contains("Olive oil 500 ml")
    );
    till.stop().await;

    // The projections rebuilt from the log (another version built them): the same receipt,
    // the code recomputed by chaining the till's entries.
    served.stop().await;
    {
        let db = redb::Database::open(hub_dir.path().join("hub.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            let mut meta = txn.open_table(meta).unwrap();
            meta.insert("projections", 0).unwrap();
            let codes: redb::TableDefinition<u128, &str> =
                redb::TableDefinition::new("fleet_receipt_codes");
            let mut codes = txn.open_table(codes).unwrap();
            assert_eq!(redb::ReadableTableMetadata::len(&codes).unwrap(), 1);
            codes.retain(|_, _| false).unwrap();
        }
        txn.commit().unwrap();
    }
    let served = serve_hub(hub_dir.path()).await;
    text_once(&served.api, &path, &till_text).await;
    served.stop().await;
}
