//! A real node (HTTP, redb, writer) replicates to a real hub store over iroh on loopback: orders
//! taken while the hub is down (10,000 of them, from 16 concurrent clients) arrive, once it starts,
//! exactly once and in order; `/sync/status` and the metrics report the backlog and its drain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fusion_hub::store::HubStore;
use fusion_node::replication::{PeerLink, Role, SyncLinks};
use fusion_node::server::{self, Node};
use fusion_node::store::StoreOptions;
use fusion_sync::net;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_taken_while_the_hub_is_down_arrive_exactly_once() {
    let node_dir = tempfile::tempdir().unwrap();
    let hub_dir = tempfile::tempdir().unwrap();
    let node = Node::open(node_dir.path(), StoreOptions::default())
        .await
        .unwrap();
    let store = node.store().clone();
    let admin = std::fs::read_to_string(&node.admin_token_path)
        .unwrap()
        .trim()
        .to_string();

    // The hub's identity and address are known; nothing listens there yet.
    let hub_key = net::load_or_create_identity(hub_dir.path()).unwrap();
    let hub_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let node_ep = net::offline_endpoint(
        net::load_or_create_identity(node_dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let node_id = node_ep.id();
    let links = Arc::new(SyncLinks {
        endpoint_id: node_id,
        peers: vec![PeerLink::new(Role::Hub, hub_key.public(), vec![hub_port])],
        relay: None,
    });
    let _sync = fusion_node::replication::start(&store, node_ep, &links);
    let node = node.with_sync_links(links);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::serve(
        listener,
        node.state.clone(),
        std::future::pending(),
    ));

    let http = reqwest::Client::new();
    let product =
        json!({ "sku": "REP", "name": "Rep", "price": 2, "currency": "USD", "inventory": 20_000 });
    http.post(format!("{url}/products"))
        .bearer_auth(&admin)
        .json(&product)
        .send()
        .await
        .unwrap();
    // 10,000 orders from 16 concurrent tills' worth of clients, each acknowledged (durable).
    const ORDERS: usize = 10_000;
    const CLIENTS: usize = 16;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, admin) = (http.clone(), url.clone(), admin.clone());
        clients.push(tokio::spawn(async move {
            let order =
                json!({ "customerId": "c", "items": [{ "sku": "REP", "quantity": 1, "price": 2 }] });
            for _ in 0..ORDERS / CLIENTS {
                let placed = http
                    .post(format!("{url}/orders"))
                    .bearer_auth(&admin)
                    .json(&order)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(placed.status(), 201);
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let node_last = store.read().unwrap().last_seq().unwrap();
    assert!(
        node_last >= 2 * ORDERS as u64 + 2,
        "product, seed and 10,000 × (order, reservation)"
    );

    // The node reports the hub as unreachable, with everything pending and a lag.
    let sync_status = || {
        let request = http.get(format!("{url}/sync/status")).bearer_auth(&admin);
        async move {
            let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            body["peers"][0].clone()
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let down = sync_status().await;
    assert_eq!(down["role"], "hub");
    assert_eq!(down["connected"], false);
    assert_eq!(down["pendingEvents"].as_u64(), Some(node_last), "{down}");
    assert!(down["lagMs"].as_u64().unwrap() > 0, "{down}");

    // The hub starts; the node's session reconnects on its own.
    let hub = Arc::new(HubStore::open(hub_dir.path()).unwrap());
    let hub_ep = net::offline_endpoint(hub_key, hub_port).await.unwrap();
    let allowed = net::Gate::new(move |peer| peer == node_id);
    tokio::spawn(net::serve(hub_ep, hub.clone(), None, None, allowed));
    let origin = store.node_id().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.position(&origin).unwrap() < node_last {
        assert!(
            Instant::now() < deadline,
            "hub at {} of {node_last}",
            hub.position(&origin).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let caught_up = Instant::now() + Duration::from_secs(10);
    loop {
        let up = sync_status().await;
        if up["pendingEvents"] == 0 {
            assert_eq!(up["connected"], true, "{up}");
            assert_eq!(up["lagMs"], 0, "{up}");
            assert!(up["lastContact"].is_string(), "{up}");
            break;
        }
        assert!(Instant::now() < caught_up, "status never caught up: {up}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = http
        .get(format!("{url}/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fusion_sync_pending_events{peer=\"hub\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("fusion_sync_connected{peer=\"hub\"} 1"));
    let at_hub = hub.events(&origin, 1, usize::MAX).unwrap();
    let at_node = store.read().unwrap().events_after(0, usize::MAX).unwrap();
    assert_eq!(
        at_hub,
        at_node[..at_hub.len()],
        "the hub holds the node's log, in order, once"
    );
    assert_eq!(
        at_hub
            .iter()
            .filter(|e| e.topic() == "order.created")
            .count(),
        ORDERS
    );

    // New orders flow while connected.
    let order =
        json!({ "customerId": "c", "items": [{ "sku": "REP", "quantity": 1, "price": 2 }] });
    http.post(format!("{url}/orders"))
        .bearer_auth(&admin)
        .json(&order)
        .send()
        .await
        .unwrap();
    let last = store.read().unwrap().last_seq().unwrap();
    while hub.position(&origin).unwrap() < last {
        assert!(Instant::now() < deadline, "the live order did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
