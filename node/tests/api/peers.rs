//! A peer's events are claims. One the rulebook's fold refuses (it would take more of a peer's
//! stock than that peer's own log shows it had), one its origin may not write, or an origin
//! its deliverer may not speak for, is never stored: the batch stops before it (what came
//! before is kept), counted, and the till keeps serving.

use fusion_contracts::events::{
    InventoryReserved, ReservationStatus, StockAdjusted, StockLine, StockReclaimed,
};
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, OrderId, Sku, Timestamp};
use fusion_node::domain::journal::JournalKey;
use fusion_node::store::Deliverer;
use fusion_sync::proto::{Batch, VecLog};

/// A peer endpoint: its key, and the batches it signs.
struct Peer {
    key: JournalKey,
}

fn till(name: &str) -> Peer {
    let mut secret = [0u8; 32];
    secret[..name.len()].copy_from_slice(name.as_bytes());
    Peer {
        key: JournalKey::from_secret(&secret),
    }
}

impl Peer {
    fn deliverer(&self) -> Deliverer {
        Deliverer {
            endpoint: fusion_node::domain::journal::hex(&self.key.public()),
            key: self.key.public(),
            is_hub: false,
        }
    }

    /// Events `from..` of `log` (the origin's journal from seq 1), signed at the last.
    fn batch(&self, log: &[Envelope], from: u64) -> Batch {
        let journal = VecLog::new(log[0].origin.clone(), self.key.clone());
        journal.extend(log.iter().map(Envelope::encode));
        journal.batch(from, log.len()).unwrap()
    }

    async fn send(&self, node: &TestNode, log: &[Envelope], from: u64) -> Result<u64, String> {
        node.store
            .store_peer_events(self.deliverer(), self.batch(log, from))
            .await
            .unwrap()
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
    let a = till("endpoint-a");
    let answer = a.send(&node, &log, 1).await;
    // The batch stops before the impossible event: seq 1 is held, 2 and 3 are not…
    assert!(
        answer.as_ref().is_err_and(|e| e.contains("TEA-PEER")),
        "{answer:?}"
    );
    let read = node.store.read().unwrap();
    assert_eq!(read.peer_positions().unwrap().get(&peer), Some(&1));
    drop(read);
    // …it is counted under its rule and folded into nothing…
    assert_eq!(node.store.refusals().get("stock_underflow"), Some(&1));
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((2, 0)));
    let metrics = node.get("/metrics").await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("fusion_events_refused_total{rule=\"stock_underflow\"}")),
        "{text}"
    );
    // …sent again, it is refused again…
    assert!(a.send(&node, &log, 2).await.is_err());
    assert_eq!(node.store.refusals().get("stock_underflow"), Some(&2));
    // (an honest journal of that peer goes on from seq 1)
    let log = vec![log[0].clone(), envelope(&peer, 2, counted(&sku, 2, 7))];
    assert_eq!(a.send(&node, &log, 2).await, Ok(2));
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((7, 0)));
    // …and the till keeps serving: it sells, and takes the peer's next events.
    node.product("MUG-PEER", json!(9.5), 3).await;
    let sold = node
        .post(
            "/orders",
            order(json!([{ "sku": "MUG-PEER", "quantity": 1, "price": 9.5 }])),
        )
        .await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
    let mut log = log;
    log.push(envelope(&peer, 3, counted(&sku, 7, 4)));
    assert_eq!(a.send(&node, &log, 3).await, Ok(3));
    // A batch that does not chain from what is held, or is signed by another key, is refused
    // whole and counted.
    let mut forged = log.clone();
    forged.push(envelope(&peer, 4, counted(&sku, 4, 40)));
    forged[0] = envelope(&peer, 1, counted(&sku, 0, 9));
    let refused = a.send(&node, &forged, 4).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(node.store.refusals().get("journal_signature"), Some(&1));
    let mut next = log.clone();
    next.push(envelope(&peer, 4, counted(&sku, 4, 40)));
    let signed_by_another = till("endpoint-z").batch(&next, 4);
    let refused = node
        .store
        .store_peer_events(a.deliverer(), signed_by_another)
        .await
        .unwrap();
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(node.store.refusals().get("journal_signature"), Some(&2));
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((4, 0)));
    // Resent from seq 1 (a reconnect), what is held is skipped and the rest taken.
    assert_eq!(a.send(&node, &next, 1).await, Ok(4));
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((40, 0)));
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
    let a = till("endpoint-a");
    let answer = a.send(&node, &log, 1).await;
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
    let answer = till("endpoint-b").send(&node, &log[..1], 1).await;
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(refused("origin_of_another_peer"), 1);
    // A till delivering the hub's own origin is refused whole; the hub may deliver it.
    let hub = fusion_node::domain::escrow::hub_origin(&"ab".repeat(32));
    let hub_log = vec![envelope(&hub, 1, counted(&sku, 0, 1))];
    let answer = a.send(&node, &hub_log, 1).await;
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(refused("hub_origin_from_till"), 1);
    let read = node.store.read().unwrap();
    assert_eq!(read.peer_positions().unwrap().get(&hub), None);
    drop(read);
    // The honest origin goes on from where it was.
    let honest = vec![log[0].clone(), envelope(&peer, 2, counted(&sku, 2, 6))];
    assert_eq!(a.send(&node, &honest, 2).await, Ok(2));
    assert_eq!(peer_rights(&node, &peer, &sku).await, Some((6, 0)));
    node.stop().await;
}

/// A till can hear a sibling's return before the sale it returns (the seller's log comes by
/// another path): the return waits — the batch stops before it and is delivered again — and
/// is not counted as a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_return_of_an_order_not_known_yet_waits_and_is_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let peer = NodeId::new("till-returns").unwrap();
    let sku = Sku::new("MUG-PEER").unwrap();
    let returned: Event = fusion_contracts::events::OrderReturned {
        return_id: uuid::Uuid::from_u128(5),
        order_id: OrderId::from_u128(77),
        lines: vec![fusion_contracts::events::ReturnedLine {
            line: 0,
            sku: sku.clone(),
            quantity: 1,
            refund: fusion_contracts::Decimal::new(500, 2),
        }],
        refund: fusion_contracts::Decimal::new(500, 2),
        currency: fusion_contracts::Currency::USD,
        refund_to: fusion_contracts::events::RefundTo::Cash,
        restock: false,
        approved_by: None,
        reason: None,
        returned_at: Timestamp::from_unix_ms(2_000),
        staff: None,
    }
    .into();
    let log = vec![
        envelope(&peer, 1, counted(&sku, 0, 2)),
        envelope(&peer, 2, returned),
    ];
    let answer = till("endpoint-r").send(&node, &log, 1).await;
    assert!(
        answer.as_ref().is_err_and(
            |e| e.starts_with("waiting") && e.contains(&OrderId::from_u128(77).to_string())
        ),
        "{answer:?}"
    );
    let read = node.store.read().unwrap();
    assert_eq!(read.peer_positions().unwrap().get(&peer), Some(&1));
    drop(read);
    assert!(
        node.store.refusals().is_empty(),
        "{:?}",
        node.store.refusals()
    );
    node.stop().await;
}
