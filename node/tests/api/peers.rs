//! A peer's events are claims. One the rulebook's fold refuses (it would take more of a peer's
//! stock than that peer's own log shows it had) is held in the peer's log, folded into nothing
//! and counted, and the till keeps serving. One its origin may not write, or an origin its
//! deliverer may not speak for, is never stored: the batch stops before it, counted.

use fusion_contracts::events::{
    InventoryReserved, ReservationStatus, StockAdjusted, StockLine, StockReclaimed,
};
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, OrderId, Sku, Timestamp};
use fusion_node::store::Deliverer;

fn till(endpoint: &str) -> Deliverer {
    Deliverer {
        endpoint: endpoint.to_string(),
        is_hub: false,
    }
}

use super::*;

fn envelope(origin: &NodeId, seq: u64, event: Event) -> Envelope {
    Envelope::new(
        EventId::from_u128(u128::from(seq)),
        origin.clone(),
        seq,
        Timestamp::from_unix_ms(1_000 + seq as i64),
        CorrelationId::new("peer-test").unwrap(),
        None,
        event,
    )
    .unwrap()
}

fn counted(sku: &Sku, previous: u64, quantity: u64) -> Event {
    StockAdjusted {
        sku: sku.clone(),
        previous_quantity: previous,
        quantity,
        delta: quantity as i64 - previous as i64,
        reason: "count".into(),
    }
    .into()
}

/// The peer's rights of `sku` as this till's `GET /escrow` store view shows them.
async fn peer_rights(node: &TestNode, peer: &NodeId, sku: &Sku) -> Option<(u64, u64)> {
    let escrow = node.get("/escrow").await;
    assert_eq!(escrow.status, StatusCode::OK, "{}", escrow.body);
    let row = escrow.body["store"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sku"] == sku.as_str())?
        .clone();
    let holder = row["holders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["nodeId"] == peer.as_str())?
        .clone();
    Some((
        holder["held"].as_u64().unwrap(),
        holder["reserved"].as_u64().unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_event_that_would_underflow_its_stock_is_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let peer = NodeId::new("till-peer").unwrap();
    let sku = Sku::new("TEA-PEER").unwrap();
    let reserve_five: Event = InventoryReserved {
        order_id: OrderId::from_u128(7),
        status: ReservationStatus::Reserved,
        items: vec![StockLine {
            sku: sku.clone(),
            quantity: 5,
        }],
    }
    .into();
    // The peer's log: it counts 2, then claims to reserve 5 of them, then counts 7.
    let log = vec![
        envelope(&peer, 1, counted(&sku, 0, 2)),
        envelope(&peer, 2, reserve_five),
        envelope(&peer, 3, counted(&sku, 2, 7)),
    ];
    let before = node.store.refusals().get("stock_underflow").copied();
    assert_eq!(before, None);
    let position = node
        .store
        .store_peer_events(till("endpoint-a"), peer.clone(), log)
        .await
        .unwrap();
    // The whole log is held (a gapless replica of the peer's journal)…
    assert_eq!(position, Ok(3));
    // …the impossible event is counted under its rule and folded into nothing…
    assert_eq!(node.store.refusals().get("stock_underflow"), Some(&1));
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((7, 0)));
    let metrics = node.get("/metrics").await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("fusion_events_refused_total{rule=\"stock_underflow\"}")),
        "{text}"
    );
    // …and the till keeps serving: it sells, and takes the peer's next events.
    node.product("MUG-PEER", json!(9.5), 3).await;
    let sold = node
        .post(
            "/orders",
            order(json!([{ "sku": "MUG-PEER", "quantity": 1, "price": 9.5 }])),
        )
        .await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
    let next = vec![envelope(&peer, 4, counted(&sku, 7, 4))];
    assert_eq!(
        node.store
            .store_peer_events(till("endpoint-a"), peer.clone(), next)
            .await
            .unwrap(),
        Ok(4)
    );
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((4, 0)));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_their_origin_may_not_write_are_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let peer = NodeId::new("till-honest").unwrap();
    let sku = Sku::new("TEA-AUTH").unwrap();
    let refused = |rule: &str| node.store.refusals().get(rule).copied().unwrap_or(0);
    // A till origin claiming a reclaim (the hub's) at seq 2: seq 1 is kept, 2 and 3 are not.
    let reclaim: Event = StockReclaimed {
        sku: sku.clone(),
        from: NodeId::new("till-victim").unwrap(),
        upto: 9,
        quantity: 5,
        transfers: Vec::new(),
        previous_quantity: 0,
        available: 5,
    }
    .into();
    let log = vec![
        envelope(&peer, 1, counted(&sku, 0, 2)),
        envelope(&peer, 2, reclaim),
        envelope(&peer, 3, counted(&sku, 2, 3)),
    ];
    let answer = node
        .store
        .store_peer_events(till("endpoint-a"), peer.clone(), log.clone())
        .await
        .unwrap();
    assert!(
        answer
            .as_ref()
            .is_err_and(|e| e.contains("inventory.reclaimed")),
        "{answer:?}"
    );
    assert_eq!(refused("unauthorized_topic"), 1);
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((2, 0)));
    let read = node.store.read().unwrap();
    assert_eq!(read.peer_positions().unwrap().get(&peer), Some(&1));
    drop(read);
    // Another endpoint speaking for the same origin is refused whole.
    let answer = node
        .store
        .store_peer_events(till("endpoint-b"), peer.clone(), log[..1].to_vec())
        .await
        .unwrap();
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(refused("origin_of_another_peer"), 1);
    // A till delivering the hub's own origin is refused whole; the hub may deliver it.
    let hub = fusion_node::domain::escrow::hub_origin(&"ab".repeat(32));
    let hub_log = vec![envelope(&hub, 1, counted(&sku, 0, 1))];
    let answer = node
        .store
        .store_peer_events(till("endpoint-a"), hub.clone(), hub_log)
        .await
        .unwrap();
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(refused("hub_origin_from_till"), 1);
    let read = node.store.read().unwrap();
    assert_eq!(read.peer_positions().unwrap().get(&hub), None);
    drop(read);
    // The honest origin goes on from where it was.
    let next = vec![envelope(&peer, 2, counted(&sku, 2, 6))];
    assert_eq!(
        node.store
            .store_peer_events(till("endpoint-a"), peer.clone(), next)
            .await
            .unwrap(),
        Ok(2)
    );
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((6, 0)));
    node.stop().await;
}
