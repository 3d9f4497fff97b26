//! Authority at the hub: a till speaks only for its own origin. Another endpoint speaking for
//! an origin it did not first deliver, a till delivering the hub's own origin, and an event a
//! till may not write (a reclaim) are refused, never stored, and counted; the honest origin
//! goes on.

use fusion_contracts::events::{StockAdjusted, StockReclaimed};
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, Sku, Timestamp};
use fusion_hub::store::HubStore;
use fusion_sync::net::{self, EndpointId, EventSink, SecretKey};
use fusion_sync::proto::VecLog;

fn envelope(origin: &NodeId, seq: u64, event: Event) -> Envelope {
    Envelope::new(
        EventId::from_u128((u128::from(seq) << 8) + origin.as_str().len() as u128),
        origin.clone(),
        seq,
        Timestamp::from_unix_ms(1_000 + seq as i64),
        CorrelationId::new("authority-test").unwrap(),
        None,
        event,
    )
    .unwrap()
}

fn counted(quantity: u64) -> Event {
    StockAdjusted {
        sku: Sku::new("TEA").unwrap(),
        previous_quantity: 0,
        quantity,
        delta: quantity as i64,
        reason: "count".into(),
    }
    .into()
}

#[tokio::test]
async fn a_till_speaks_only_for_its_own_origin_and_topics() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubStore::open(dir.path()).unwrap();
    let (key_a, key_b) = (SecretKey::generate(), SecretKey::generate());
    let (a, b): (EndpointId, EndpointId) = (key_a.public(), key_b.public());
    hub.enroll(a, "store-1").unwrap();
    hub.enroll(b, "store-1").unwrap();
    let till_a = NodeId::new("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a").unwrap();
    let refused = |rule: &str| hub.refusals().get(rule).copied().unwrap_or(0);
    // Each endpoint's journal of the origin, signed with its own key.
    let journal_a = VecLog::new(till_a.clone(), net::journal_key(&key_a));
    let by_b = VecLog::new(till_a.clone(), net::journal_key(&key_b));

    assert_eq!(
        hub.store(
            a,
            journal_a.append_batch(&[envelope(&till_a, 1, counted(2))])
        )
        .await,
        Ok(1)
    );

    // b speaks for a's origin: refused whole.
    by_b.append_batch(&[envelope(&till_a, 1, counted(2))]);
    let forged = hub
        .store(b, by_b.append_batch(&[envelope(&till_a, 2, counted(9))]))
        .await;
    assert!(forged.is_err(), "{forged:?}");
    assert_eq!(refused("origin_of_another_peer"), 1);
    assert_eq!(hub.position(&till_a).unwrap(), 1);

    // a delivers the hub's own origin: refused whole, nothing of it stored.
    let own = hub.origin().clone();
    // (The hub's own log holds the two enrollments.)
    let own_before = hub.position(&own).unwrap();
    assert_eq!(own_before, 2);
    let forged = hub
        .store(
            a,
            VecLog::new(own.clone(), net::journal_key(&key_a)).append_batch(&[envelope(
                &own,
                1,
                counted(1),
            )]),
        )
        .await;
    assert!(forged.is_err(), "{forged:?}");
    assert_eq!(refused("hub_origin_from_till"), 1);
    assert_eq!(hub.position(&own).unwrap(), own_before);

    // a claims a reclaim (the hub's to write): the batch stops before it.
    let reclaim: Event = StockReclaimed {
        sku: Sku::new("TEA").unwrap(),
        from: NodeId::new("victim").unwrap(),
        upto: 1,
        quantity: 5,
        transfers: Vec::new(),
        previous_quantity: 2,
        available: 7,
    }
    .into();
    let batch = journal_a.append_batch(&[
        envelope(&till_a, 2, counted(3)),
        envelope(&till_a, 3, reclaim),
        envelope(&till_a, 4, counted(4)),
    ]);
    let answer = hub.store(a, batch).await;
    assert!(
        answer
            .as_ref()
            .is_err_and(|e| e.contains("inventory.reclaimed")),
        "{answer:?}"
    );
    assert_eq!(refused("unauthorized_topic"), 1);
    assert_eq!(
        hub.position(&till_a).unwrap(),
        2,
        "what came before the refusal is kept"
    );
    let stored = hub.events(&till_a, 1, 100).unwrap();
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
}
