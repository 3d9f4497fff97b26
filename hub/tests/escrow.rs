//! Stock rights moving between two tills of a store over the mesh (docs/ESCROW.md), with real
//! nodes syncing over iroh to each other and to the hub: a till sells only what it holds
//! (422 with its local headroom), a transfer leaves the giver at once and reaches the receiver
//! when the receiver sees it — also after the receiver was down — and the till, the hub and
//! the receiver agree on what is held and in transit.

use std::time::{Duration, Instant};

use fusion_node::replication::{PeerLink, Role};
use fusion_sync::net;
use serde_json::{Value, json};

mod common;
use common::{Api, Till, serve_hub};

async fn eventually(
    api: &Api,
    path: &str,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.get(path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {path} → {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(till: &Till, path: &str, body: Value) -> (u16, Value) {
    till.api.call(reqwest::Method::POST, path, Some(body)).await
}

async fn endpoint(dir: &std::path::Path, at: std::net::SocketAddr) -> net::Endpoint {
    // The UDP port of a till that just stopped can take a moment to be free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match net::offline_endpoint(net::load_or_create_identity(dir).unwrap(), at).await {
            Ok(ep) => return ep,
            Err(e) => {
                assert!(Instant::now() < deadline, "binding {at}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_rights_move_between_tills_and_are_never_oversold() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = serve_hub(hub_dir.path()).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let any = "127.0.0.1:0".parse().unwrap();
    let (ep_a, ep_b) = (
        endpoint(dir_a.path(), any).await,
        endpoint(dir_b.path(), any).await,
    );
    let (id_a, addr_a) = (ep_a.id(), ep_a.bound_sockets()[0]);
    let (id_b, addr_b) = (ep_b.id(), ep_b.bound_sockets()[0]);
    for ep in [&ep_a, &ep_b] {
        hub.hub.state.store.enroll(ep.id(), "store-1").unwrap();
    }
    let hub_link = || PeerLink::new(Role::Hub, hub.id, vec![hub.addr]);
    let a = Till::start(
        dir_a.path(),
        ep_a,
        vec![hub_link(), PeerLink::new(Role::Till, id_b, vec![addr_b])],
    )
    .await;
    let peers_of_b = || vec![hub_link(), PeerLink::new(Role::Till, id_a, vec![addr_a])];
    let b = Till::start(dir_b.path(), ep_b, peers_of_b()).await;

    // Till a receives 10 TEA; the product reaches b, its stock does not.
    let (status, _) = post(
        &a,
        "/products",
        json!({ "sku": "TEA", "name": "Tea", "price": 2, "currency": "USD", "inventory": 10 }),
    )
    .await;
    assert_eq!(status, 201);
    eventually(
        &b.api,
        "/products/by-sku/TEA",
        "the product reaches b",
        |_| true,
    )
    .await;
    let order = |n: u64| json!({ "customerId": "c", "items": [{ "sku": "TEA", "quantity": n, "price": 2 }] });
    let (status, refused) = post(&b, "/orders", order(1)).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["available"], 0, "the refusal states b's headroom");

    // a gives b 4: gone from a at once, b can sell them once it has seen the transfer.
    let to_b = json!({ "to": b.node_id, "quantity": 4 });
    let (status, after) = post(&a, "/inventory/TEA/transfer", to_b.clone()).await;
    assert_eq!(
        (status, after["quantity"].as_u64()),
        (200, Some(6)),
        "{after}"
    );
    eventually(&b.api, "/inventory/TEA", "b takes the 4 in", |s| {
        s["quantity"] == 4
    })
    .await;
    eventually(&a.api, "/escrow", "a sees b's receipt", |e| {
        e["inTransit"].as_array().is_some_and(|t| t.is_empty())
    })
    .await;
    for _ in 0..4 {
        assert_eq!(post(&b, "/orders", order(1)).await.0, 201);
    }
    let (status, refused) = post(&b, "/orders", order(1)).await;
    assert_eq!((status, refused["available"].as_u64()), (422, Some(0)));

    // Bad transfers: more than a holds (422, its headroom), to itself, to nobody, nothing.
    let (status, body) = post(
        &a,
        "/inventory/TEA/transfer",
        json!({ "to": b.node_id, "quantity": 7 }),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str(), body["available"].as_u64()),
        (422, Some("quantity"), Some(6)),
        "{body}"
    );
    for (to, quantity, field) in [
        (a.node_id.as_str(), 1, "to"),
        ("", 1, "to"),
        (b.node_id.as_str(), 0, "quantity"),
    ] {
        let body = json!({ "to": to, "quantity": quantity });
        let (status, body) = post(&a, "/inventory/TEA/transfer", body).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }

    // b is down: a gives it 2 more; they are in transit at a and at the hub, sellable by nobody.
    let b_id = b.node_id.clone();
    b.stop().await;
    let (status, after) = post(
        &a,
        "/inventory/TEA/transfer",
        json!({ "to": b_id, "quantity": 2 }),
    )
    .await;
    assert_eq!((status, after["quantity"].as_u64()), (200, Some(4)));
    let escrow_a = eventually(&a.api, "/escrow", "in transit at a", |e| {
        e["stock"][0]["inTransit"] == 2
    })
    .await;
    assert_eq!(escrow_a["inTransit"][0]["to"], b_id.as_str());
    let at_hub = eventually(&hub.api, "/escrow?sku=TEA", "in transit at the hub", |e| {
        e[0]["inTransit"] == 2
    })
    .await;
    assert_eq!(at_hub[0]["held"], 4, "{at_hub}");

    // b comes back (where a knows it): it takes the 2 in; everyone agrees: 4 + 2 held, 4
    // sold, nothing in transit.
    let ep_b = endpoint(dir_b.path(), addr_b).await;
    let b = Till::start(dir_b.path(), ep_b, peers_of_b()).await;
    eventually(&b.api, "/inventory/TEA", "b takes the 2 in", |s| {
        s["quantity"] == 2
    })
    .await;
    eventually(&a.api, "/escrow", "a sees the receipt", |e| {
        e["stock"][0]["inTransit"] == 0
    })
    .await;
    let at_hub = eventually(&hub.api, "/escrow?sku=TEA", "the hub agrees", |e| {
        e[0]["inTransit"] == 0 && e[0]["held"] == 6
    })
    .await;
    assert_eq!(at_hub[0]["storeId"], "store-1");
    assert_eq!(at_hub[0]["reserved"], 4, "b's four open orders");
    let holders = at_hub[0]["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 2);
    let (_, escrow_b) = b.api.get("/escrow").await;
    assert_eq!(
        escrow_b["stock"][0],
        json!({ "sku": "TEA", "held": 2, "reserved": 4, "inTransit": 0 })
    );

    a.stop().await;
    b.stop().await;
    hub.stop().await;
}
