//! A product created at one till reaches another till through the hub alone, also when that
//! till holds no document yet. (It once did not: a document session sends nothing until it has
//! something to say, and iroh streams are lazy, so the hub never saw the empty till's stream
//! and never sent it anything.)

use std::time::{Duration, Instant};

use fusion_node::replication::{PeerLink, Role};
use fusion_sync::net;
use serde_json::json;

mod common;
use common::{Till, serve_hub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_reaches_another_store_through_the_hub() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = serve_hub(hub_dir.path()).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let any = "127.0.0.1:0".parse().unwrap();
    let ep_a = net::offline_endpoint(net::load_or_create_identity(dir_a.path()).unwrap(), any)
        .await
        .unwrap();
    let ep_b = net::offline_endpoint(net::load_or_create_identity(dir_b.path()).unwrap(), any)
        .await
        .unwrap();
    for ep in [&ep_a, &ep_b] {
        hub.hub.state.store.enroll(ep.id(), "store-1").unwrap();
    }
    let hub_link = || vec![PeerLink::new(Role::Hub, hub.id, vec![hub.addr])];
    let a = Till::start(dir_a.path(), ep_a, hub_link()).await;
    let b = Till::start(dir_b.path(), ep_b, hub_link()).await;
    let (status, _) = a
        .api
        .call(
            reqwest::Method::POST,
            "/products",
            Some(json!({ "sku": "X", "name": "X", "price": 1, "currency": "USD" })),
        )
        .await;
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = b.api.get("/products/by-sku/X").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
    hub.stop().await;
}
