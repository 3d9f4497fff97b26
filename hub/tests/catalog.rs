//! Shared documents and the store mesh with real nodes (HTTP, redb files, writer), a real hub and
//! iroh on loopback, relays off:
//! - two tills of one store, hub down: an order on till A is visible on till B within 1 s, and a
//!   product created on A is sold on B's catalog; when the hub comes back a price set there
//!   reaches both tills;
//! - concurrent edits of one product while the hub is away: the hub's price and the store's
//!   description are both kept; two prices end as the same winner on every replica; the node's
//!   catalog survives a restart (its documents are in its redb file).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fusion_contracts::commands::UpdateProduct;
use fusion_contracts::{CorrelationId, Decimal, ProductId, Timestamp};
use fusion_hub::Hub;
use fusion_node::replication::{PeerLink, Role};
use fusion_sync::net;
use serde_json::{Value, json};

mod common;
use common::{Api, Till};

struct RunningHub {
    api: Api,
    shutdown: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

/// Opens the hub in `dir` (waiting for a previous instance to let go of its file).
async fn open_hub(dir: &Path) -> Hub {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Hub::open(dir) {
            Ok(hub) => return hub,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("reopening the hub: {e}"),
        }
    }
}

impl RunningHub {
    /// Serves `hub` over HTTP and on its sync endpoint at `sync_addr`.
    async fn serve(hub: Hub, dir: &Path, sync_addr: SocketAddr) -> RunningHub {
        let hub = Arc::new(hub);
        let endpoint = net::offline_endpoint(net::load_or_create_identity(dir).unwrap(), sync_addr)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let served = {
            let hub = hub.clone();
            tokio::spawn(async move {
                hub.serve(listener, endpoint, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
            })
        };
        let token = std::fs::read_to_string(&hub.admin_token_path)
            .unwrap()
            .trim()
            .to_string();
        RunningHub {
            api: Api {
                http: reqwest::Client::new(),
                url,
                token,
            },
            shutdown,
            served,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.served.await.unwrap();
    }
}

/// Waits until `check` holds, up to `within`; returns how long it took.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

async fn endpoint(dir: &Path) -> net::Endpoint {
    net::offline_endpoint(
        net::load_or_create_identity(dir).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

fn free_udp_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Sets a product's price at the hub through the hub's own edit path, while it is not serving.
fn hub_sets_price(hub: &Hub, id: ProductId, cents: i64) {
    hub.state
        .docs
        .update_product(
            &UpdateProduct {
                product_id: id,
                name: None,
                description: None,
                price: Some(Decimal::new(cents, 2)),
                currency: None,
                sku: None,
                tax_class: None,
                category: None,
            },
            CorrelationId::new("hub-edit").unwrap(),
            fusion_sync::clock::now(),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tills_see_each_other_with_the_hub_down_and_hub_prices_reach_both() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub_id = net::load_or_create_identity(hub_dir.path())
        .unwrap()
        .public();
    let hub_addr = free_udp_port();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_ep, b_ep) = (endpoint(a_dir.path()).await, endpoint(b_dir.path()).await);
    let (a_id, b_id) = (a_ep.id(), b_ep.id());
    let (a_addr, b_addr) = (a_ep.bound_sockets()[0], b_ep.bound_sockets()[0]);
    let links = |other, addr| {
        vec![
            PeerLink::new(Role::Hub, hub_id, vec![hub_addr]),
            PeerLink::new(Role::Till, other, vec![addr]),
        ]
    };
    let a = Till::start(a_dir.path(), a_ep, links(b_id, b_addr)).await;
    let b = Till::start(b_dir.path(), b_ep, links(a_id, a_addr)).await;

    // A product created on till A reaches till B's catalog over the mesh.
    let (status, product) = a
        .api
        .call(
            reqwest::Method::POST,
            "/products",
            Some(json!({ "sku": "TEA", "name": "Tea", "price": 4.5, "currency": "USD", "inventory": 10 })),
        )
        .await;
    assert_eq!(status, 201, "{product}");
    let product_id = product["id"].as_str().unwrap().to_string();
    let path = format!("/products/{product_id}");
    eventually("the product on till B", Duration::from_secs(10), || async {
        b.api.get(&path).await.0 == 200
    })
    .await;
    assert_eq!(b.api.get(&path).await.1["name"], "Tea");

    // An order on A is visible on B within a second, hub down all along.
    let (status, order) = a
        .api
        .call(
            reqwest::Method::POST,
            "/orders",
            Some(json!({ "customerId": "c1", "items": [{ "sku": "TEA", "quantity": 2, "price": 4.5 }] })),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_path = format!("/orders/{}", order["id"].as_str().unwrap());
    let took = eventually("the order on till B", Duration::from_secs(5), || async {
        b.api.get(&order_path).await.0 == 200
    })
    .await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let (_, seen) = b.api.get(&order_path).await;
    assert_eq!(seen["origin"], a.node_id.as_str());
    assert_eq!(seen["total"].as_f64(), Some(9.0));
    assert_eq!(seen["status"], "created");
    // Paid on A: B follows the order's state.
    let (status, paid) = a
        .api
        .call(
            reqwest::Method::POST,
            "/payments",
            Some(json!({ "orderId": order["id"], "amount": 9, "currency": "USD", "paymentMethodId": "cash", "tendered": 10 })),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    eventually(
        "the paid order on till B",
        Duration::from_secs(5),
        || async {
            let (_, o) = b.api.get(&order_path).await;
            o["status"] != "created"
        },
    )
    .await;
    let (_, sync) = b.api.get("/sync/status").await;
    let till_a = sync["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "till")
        .unwrap()
        .clone();
    assert_eq!(till_a["endpointId"], a_id.to_string());
    assert_eq!(till_a["connected"], true, "{sync}");
    assert_eq!(till_a["documentsConnected"], true, "{sync}");

    // A campaign created on A: B serves its definition (read-only, with its owner); A's status
    // changes follow.
    let at = |offset_ms: i64| {
        Timestamp::from_unix_ms(fusion_sync::clock::now().unix_ms() + offset_ms).to_string()
    };
    let (status, campaign) = a
        .api
        .call(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({
                "productId": product_id, "minParticipants": 2, "maxParticipants": 5,
                "price": 3.5, "originalPrice": 4.5, "startTime": at(-1000), "endTime": at(3_600_000),
            })),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let campaign_path = format!("/campaigns/{}", campaign["id"].as_str().unwrap());
    eventually("the campaign on till B", Duration::from_secs(5), || async {
        b.api.get(&campaign_path).await.0 == 200
    })
    .await;
    let (_, seen) = b.api.get(&campaign_path).await;
    assert_eq!(seen["origin"], a.node_id.as_str());
    assert_eq!(seen["status"], "active");
    assert_eq!(seen["maxParticipants"], 5);
    let (status, _) = a
        .api
        .call(
            reqwest::Method::POST,
            &format!("{campaign_path}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    eventually(
        "the cancellation on till B",
        Duration::from_secs(5),
        || async { b.api.get(&campaign_path).await.1["status"] == "cancelled" },
    )
    .await;

    // Store settings set on A apply on B: a one-second payment hold cancels B's unpaid order.
    let (status, settings) = a
        .api
        .call(
            reqwest::Method::PATCH,
            "/settings",
            Some(json!({ "name": "Main Street", "orderHoldSecs": 1 })),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    eventually("the settings on till B", Duration::from_secs(5), || async {
        b.api.get("/settings").await.1["orderHoldSecs"] == 1
    })
    .await;
    let (_, settings) = b.api.get("/settings").await;
    assert_eq!(
        (settings["storeId"].as_str(), settings["name"].as_str()),
        (Some("store-1"), Some("Main Street"))
    );
    let (status, _) = b
        .api
        .call(
            reqwest::Method::PUT,
            "/inventory",
            Some(json!({ "sku": "TEA", "quantity": 5 })),
        )
        .await;
    assert_eq!(status, 204);
    let (status, held) = b
        .api
        .call(
            reqwest::Method::POST,
            "/orders",
            Some(json!({ "customerId": "c2", "items": [{ "sku": "TEA", "quantity": 1, "price": 4.5 }] })),
        )
        .await;
    assert_eq!(status, 201, "{held}");
    let held_path = format!("/orders/{}", held["id"].as_str().unwrap());
    eventually(
        "B's unpaid order cancelled by the store's hold",
        Duration::from_secs(10),
        || async { b.api.get(&held_path).await.1["status"] == "cancelled" },
    )
    .await;

    // The hub comes back; a price set there reaches both tills.
    let hub = open_hub(hub_dir.path()).await;
    hub.state.store.enroll(a_id, "store-1").unwrap();
    hub.state.store.enroll(b_id, "store-1").unwrap();
    let hub = RunningHub::serve(hub, hub_dir.path(), hub_addr).await;
    eventually(
        "the product at the hub",
        Duration::from_secs(30),
        || async { hub.api.call(reqwest::Method::GET, &path, None).await.0 == 200 },
    )
    .await;
    let (status, edited) = hub
        .api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "price": 5.25 })),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["price"].as_f64(), Some(5.25));
    for till in [&a, &b] {
        eventually(
            "the hub's price on a till",
            Duration::from_secs(10),
            || async { till.api.get(&path).await.1["price"].as_f64() == Some(5.25) },
        )
        .await;
    }
    // Store settings at the hub: the tills' name is there, a floor limit set there reaches them.
    let (status, at_hub) = hub
        .api
        .call(
            reqwest::Method::PATCH,
            "/stores/store-1/settings",
            Some(json!({ "cardFloorLimit": { "amount": 20, "currency": "USD" }, "orderHoldSecs": null })),
        )
        .await;
    assert_eq!(status, 200, "{at_hub}");
    assert_eq!(at_hub["name"], "Main Street");
    for till in [&a, &b] {
        eventually(
            "the hub's settings on a till",
            Duration::from_secs(10),
            || async {
                let (_, s) = till.api.get("/settings").await;
                s["cardFloorLimit"]["amount"].as_f64() == Some(20.0)
                    && s.get("orderHoldSecs").is_none()
            },
        )
        .await;
    }
    for (body, field) in [
        (json!({ "orderHoldSecs": -1 }), "orderHoldSecs"),
        (json!({ "orderHoldSecs": 10_000_000 }), "orderHoldSecs"),
        (
            json!({ "cardFloorLimit": { "amount": -5, "currency": "USD" } }),
            "cardFloorLimit.amount",
        ),
        (
            json!({ "cardFloorLimit": { "amount": 5.001, "currency": "USD" } }),
            "cardFloorLimit.amount",
        ),
        (json!({ "name": "  " }), "name"),
    ] {
        let (status, error) = hub
            .api
            .call(
                reqwest::Method::PATCH,
                "/stores/store-1/settings",
                Some(body),
            )
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some(field)),
            "{error}"
        );
    }
    let (status, error) = hub.api.get("/stores/not%20a%20store/settings").await;
    assert_eq!((status, error["field"].as_str()), (400, Some("id")));

    // The hub holds every store's campaigns too: taken from the till whose journal created
    // it, once that journal reached the hub (the document may come first).
    eventually(
        "the campaign at the hub",
        Duration::from_secs(5),
        || async { hub.api.get(&campaign_path).await.1["status"] == "cancelled" },
    )
    .await;
    let (status, fleet_campaign) = hub
        .api
        .call(reqwest::Method::GET, &campaign_path, None)
        .await;
    assert_eq!(status, 200, "{fleet_campaign}");
    assert_eq!(fleet_campaign["origin"], a.node_id.as_str());
    assert_eq!(fleet_campaign["status"], "cancelled");
    // The edit is a fleet event of the hub's own origin.
    let (_, events) = hub
        .api
        .call(reqwest::Method::GET, "/events?topic=product.updated", None)
        .await;
    let updates = events["events"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{events}");
    assert!(updates[0]["origin"].as_str().unwrap().starts_with("hub-"));
    // Bad edits are 4xx naming the field.
    let (status, body) = hub
        .api
        .call(reqwest::Method::PATCH, &path, Some(json!({ "price": -1 })))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("price")));
    let (status, body) = hub
        .api
        .call(reqwest::Method::PATCH, &path, Some(json!({ "price": "x" })))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("price")));
    let (status, _) = hub
        .api
        .call(
            reqwest::Method::PATCH,
            &format!("/products/{}", uuid::Uuid::now_v7()),
            Some(json!({ "price": 1 })),
        )
        .await;
    assert_eq!(status, 404);
    hub.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_merge_the_same_way_everywhere() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub_addr = free_udp_port();
    let node_dir = tempfile::tempdir().unwrap();
    let node_ep = endpoint(node_dir.path()).await;
    let node_id = node_ep.id();
    let hub = open_hub(hub_dir.path()).await;
    hub.state.store.enroll(node_id, "store-1").unwrap();
    let hub_id = net::load_or_create_identity(hub_dir.path())
        .unwrap()
        .public();
    let mut hub = RunningHub::serve(hub, hub_dir.path(), hub_addr).await;
    let till_links = || vec![PeerLink::new(Role::Hub, hub_id, vec![hub_addr])];
    let mut till = Till::start(node_dir.path(), node_ep, till_links()).await;

    let (status, product) = till
        .api
        .call(
            reqwest::Method::POST,
            "/products",
            Some(json!({ "sku": "MUG", "name": "Mug", "price": 3, "currency": "USD", "inventory": 5 })),
        )
        .await;
    assert_eq!(status, 201, "{product}");
    let id = ProductId::parse(product["id"].as_str().unwrap()).unwrap();
    let path = format!("/products/{id}");
    eventually(
        "the product at the hub",
        Duration::from_secs(10),
        || async { hub.api.call(reqwest::Method::GET, &path, None).await.0 == 200 },
    )
    .await;

    // Hub away: the store changes the description, the hub the price. Both are kept.
    hub.stop().await;
    let (status, _) = till
        .api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "description": "Stoneware, 300 ml" })),
        )
        .await;
    assert_eq!(status, 200);
    let reopened = open_hub(hub_dir.path()).await;
    hub_sets_price(&reopened, id, 500);
    hub = RunningHub::serve(reopened, hub_dir.path(), hub_addr).await;
    let both_kept = |body: &Value| {
        body["price"].as_f64() == Some(5.0) && body["description"] == "Stoneware, 300 ml"
    };
    eventually(
        "both edits on the till",
        Duration::from_secs(30),
        || async { both_kept(&till.api.get(&path).await.1) },
    )
    .await;
    eventually("both edits at the hub", Duration::from_secs(10), || async {
        both_kept(&hub.api.call(reqwest::Method::GET, &path, None).await.1)
    })
    .await;

    // Hub away again: both change the price. One winner, the same on both replicas.
    hub.stop().await;
    let (status, _) = till
        .api
        .call(reqwest::Method::PATCH, &path, Some(json!({ "price": 6 })))
        .await;
    assert_eq!(status, 200);
    let reopened = open_hub(hub_dir.path()).await;
    hub_sets_price(&reopened, id, 700);
    hub = RunningHub::serve(reopened, hub_dir.path(), hub_addr).await;
    eventually(
        "one price on both replicas",
        Duration::from_secs(30),
        || async {
            let at_till = till.api.get(&path).await.1["price"].as_f64();
            let at_hub = hub.api.call(reqwest::Method::GET, &path, None).await.1["price"].as_f64();
            at_till == at_hub && (at_till == Some(6.0) || at_till == Some(7.0))
        },
    )
    .await;
    let agreed = hub.api.call(reqwest::Method::GET, &path, None).await.1["price"].clone();
    // Settled: it stays that way, and the description survived the price conflict.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, at_till) = till.api.get(&path).await;
    assert_eq!(at_till["price"], agreed);
    assert_eq!(at_till["description"], "Stoneware, 300 ml");

    // The node's catalog is in its redb file: a restart serves the merged product.
    till.stop().await;
    hub.stop().await;
    let node_ep = endpoint(node_dir.path()).await;
    till = Till::start(node_dir.path(), node_ep, till_links()).await;
    let (status, after) = till.api.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(after["price"], agreed);
    assert_eq!(after["description"], "Stoneware, 300 ml");
    till.stop().await;
}

/// A new till's initial sync: every document it lacks is asked for whole and sent as the hub
/// stored it — the hub, just restarted (nothing loaded), loads none to send 120 products —
/// and the till reports the progress; afterwards a price edited at the hub still reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_till_takes_the_catalog_whole_and_the_hub_loads_none_to_send_it() {
    const PRODUCTS: usize = 120;
    let hub_dir = tempfile::tempdir().unwrap();
    let hub_addr = free_udp_port();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_ep, b_ep) = (endpoint(a_dir.path()).await, endpoint(b_dir.path()).await);
    let hub = open_hub(hub_dir.path()).await;
    hub.state.store.enroll(a_ep.id(), "store-1").unwrap();
    hub.state.store.enroll(b_ep.id(), "store-1").unwrap();
    let hub_id = net::load_or_create_identity(hub_dir.path())
        .unwrap()
        .public();
    let links = || vec![PeerLink::new(Role::Hub, hub_id, vec![hub_addr])];
    let hub = RunningHub::serve(hub, hub_dir.path(), hub_addr).await;
    let a = Till::start(a_dir.path(), a_ep, links()).await;
    let mut ids = Vec::new();
    for n in 0..PRODUCTS {
        let (status, product) = a
            .api
            .call(
                reqwest::Method::POST,
                "/products",
                Some(json!({ "sku": format!("SKU-{n}"), "name": format!("Product {n}"), "price": 2, "currency": "USD", "inventory": 1 })),
            )
            .await;
        assert_eq!(status, 201, "{product}");
        ids.push(product["id"].as_str().unwrap().to_string());
    }
    let held = |body: &Value| body["documents"]["held"].as_u64().unwrap_or(0) as usize;
    eventually(
        "every product at the hub",
        Duration::from_secs(30),
        || async { held(&hub.api.get("/sync/status").await.1) >= PRODUCTS },
    )
    .await;
    a.stop().await;
    hub.stop().await;

    let hub = RunningHub::serve(open_hub(hub_dir.path()).await, hub_dir.path(), hub_addr).await;
    let before = hub.api.get("/sync/status").await.1["documents"].clone();
    assert_eq!(before["loaded"], 0, "{before}");
    let b = Till::start(b_dir.path(), b_ep, links()).await;
    eventually(
        "the catalog at the new till",
        Duration::from_secs(30),
        || async { held(&b.api.get("/sync/status").await.1) >= PRODUCTS },
    )
    .await;
    let last = format!("/products/{}", ids[PRODUCTS - 1]);
    eventually("the last product row", Duration::from_secs(10), || async {
        b.api.get(&last).await.0 == 200
    })
    .await;
    eventually("the progress settled", Duration::from_secs(10), || async {
        b.api.get("/sync/status").await.1["documents"]["fetching"] == 0
    })
    .await;
    let status = b.api.get("/sync/status").await.1;
    assert!(
        status["documents"]["fetched"].as_u64().unwrap() >= PRODUCTS as u64,
        "{status}"
    );
    let after = hub.api.get("/sync/status").await.1["documents"].clone();
    assert_eq!(
        after["loads"], before["loads"],
        "the hub loaded documents to send them: {after}"
    );

    let (code, body) = hub
        .api
        .call(reqwest::Method::PATCH, &last, Some(json!({ "price": 9 })))
        .await;
    assert_eq!(code, 200, "{body}");
    eventually(
        "the hub's price at the new till",
        Duration::from_secs(10),
        || async { b.api.get(&last).await.1["price"].as_f64() == Some(9.0) },
    )
    .await;
    b.stop().await;
    hub.stop().await;
}
