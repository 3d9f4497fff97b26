//! Replication over real iroh endpoints on loopback (relays off, no address lookup): 10,000
//! events arrive exactly once and in order; a sender cut off mid-stream resumes from the
//! receiver's durable position; a peer that is not enrolled is refused and stores nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fusion_contracts::events::StockAdjusted;
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, Sku, Timestamp};
use fusion_rules::journal::{self, Hash};
use fusion_sync::net::{self, EventSink};
use fusion_sync::proto::{Batch, LogSource, VecLog};
use tokio::sync::Notify;

/// Appends `n` stock adjustments to `log`, numbered on from its last seq.
fn append(log: &VecLog, n: u64) {
    let first = log.next_seq();
    log.extend((first..first + n).map(|seq| {
        let event = Event::StockAdjusted(StockAdjusted {
            sku: Sku::new("SKU").unwrap(),
            previous_quantity: seq - 1,
            quantity: seq,
            delta: 1,
            reason: "sale".into(),
        });
        Envelope::new(
            EventId::from_u128(seq.into()),
            log.origin().clone(),
            seq,
            Timestamp::from_unix_ms(seq as i64),
            CorrelationId::new("net-test").unwrap(),
            None,
            event,
        )
        .unwrap()
        .encode()
    }));
}

/// A receiving host that stores a batch only if it chains from the head it holds to a
/// checkpoint signed by the sending endpoint's key, as the node and the hub do.
#[derive(Default)]
struct Hub {
    logs: Mutex<BTreeMap<NodeId, (Vec<Envelope>, Hash)>>,
}

impl EventSink for Hub {
    fn positions(&self) -> BTreeMap<NodeId, u64> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|(o, (l, _))| (o.clone(), l.len() as u64))
            .collect()
    }
    fn store(
        &self,
        peer: net::EndpointId,
        batch: Batch,
    ) -> net::BoxFuture<'_, Result<u64, String>> {
        Box::pin(std::future::ready(self.store_now(peer.as_bytes(), batch)))
    }
}

impl Hub {
    fn store_now(&self, key: &[u8; 32], batch: Batch) -> Result<u64, String> {
        let mut logs = self.logs.lock().unwrap();
        let (log, head) = logs
            .entry(batch.origin.clone())
            .or_insert((Vec::new(), journal::GENESIS));
        let new = batch
            .verified((log.len() as u64, *head), key)
            .map_err(|e| e.to_string())?;
        for event in new {
            log.push(event.envelope.clone());
            *head = event.hash;
        }
        Ok(log.len() as u64)
    }
}

impl Hub {
    fn count(&self, origin: &NodeId) -> usize {
        self.logs
            .lock()
            .unwrap()
            .get(origin)
            .map_or(0, |(l, _)| l.len())
    }
}

async fn wait_for(hub: &Hub, origin: &NodeId, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.count(origin) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events arrived",
            hub.count(origin)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A relay configured for NAT'ed sites but unreachable (here: nothing listens at its address)
/// does not stand in the way of direct LAN sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_relay_that_is_down_leaves_direct_sync_working() {
    let dead_relay: net::RelayUrl = "http://127.0.0.1:9/".parse().unwrap();
    let hub_ep = net::sync_endpoint(
        net::SecretKey::generate(),
        "127.0.0.1:0".parse().unwrap(),
        Some(dead_relay.clone()),
    )
    .await
    .unwrap();
    let till_secret = net::SecretKey::generate();
    let till_ep = net::sync_endpoint(
        till_secret.clone(),
        "127.0.0.1:0".parse().unwrap(),
        Some(dead_relay.clone()),
    )
    .await
    .unwrap();
    let till_id = till_ep.id();
    let hub = Arc::new(Hub::default());
    tokio::spawn(net::serve(
        hub_ep.clone(),
        hub.clone(),
        None,
        None,
        net::Gate::new(move |peer| peer == till_id),
    ));
    let hub_addr =
        net::peer_addr(hub_ep.id(), hub_ep.bound_sockets()[0]).with_relay_url(dead_relay);
    let origin = NodeId::new("till-r").unwrap();
    let log = Arc::new(VecLog::new(origin.clone(), net::journal_key(&till_secret)));
    append(&log, 100);
    let session = {
        let log = log.clone();
        tokio::spawn(async move {
            net::send_log(
                &till_ep,
                hub_addr,
                log.as_ref(),
                &Notify::new(),
                &net::SendStatus::default(),
            )
            .await
        })
    };
    wait_for(&hub, &origin, 100).await;
    session.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_replicate_exactly_once_and_resume_after_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let hub_key = net::load_or_create_identity(dir.path()).unwrap();
    assert_eq!(
        net::load_or_create_identity(dir.path()).unwrap().public(),
        hub_key.public(),
        "the identity persists"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join(net::IDENTITY_FILE))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let hub_ep = net::offline_endpoint(hub_key, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let till_secret = net::SecretKey::generate();
    let till_ep = net::offline_endpoint(till_secret.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let till_id = till_ep.id();
    let hub = Arc::new(Hub::default());
    let allowed = net::Gate::new(move |peer| peer == till_id);
    tokio::spawn(net::serve(hub_ep.clone(), hub.clone(), None, None, allowed));
    let hub_addr = net::peer_addr(hub_ep.id(), hub_ep.bound_sockets()[0]);

    let origin = NodeId::new("till-1").unwrap();
    let log = Arc::new(VecLog::new(origin.clone(), net::journal_key(&till_secret)));
    append(&log, 10_000);
    let appended = Arc::new(Notify::new());

    let started = Instant::now();
    let session = {
        let (ep, addr, log, appended) = (
            till_ep.clone(),
            hub_addr.clone(),
            log.clone(),
            appended.clone(),
        );
        tokio::spawn(async move {
            net::send_log(
                &ep,
                addr,
                log.as_ref(),
                &appended,
                &net::SendStatus::default(),
            )
            .await
        })
    };
    wait_for(&hub, &origin, 5_000).await;
    session.abort(); // cut mid-stream
    let _ = session.await;
    let at_cut = hub.count(&origin);

    append(&log, 2_000);
    let status = Arc::new(net::SendStatus::default());
    let session = {
        let (ep, addr, log, appended, status) = (
            till_ep.clone(),
            hub_addr.clone(),
            log.clone(),
            appended.clone(),
            status.clone(),
        );
        tokio::spawn(
            async move { net::send_log(&ep, addr, log.as_ref(), &appended, &status).await },
        )
    };
    wait_for(&hub, &origin, 12_000).await;
    // The sender's status catches up with the receiver: connected, all acknowledged.
    let deadline = Instant::now() + Duration::from_secs(10);
    while status.report().acked.get(&origin) != Some(&12_000) {
        assert!(Instant::now() < deadline, "{:?}", status.report());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = status.report();
    assert!(report.connected);
    assert!(report.last_contact_ms.is_some());
    assert_eq!(report.acked.get(&origin), Some(&12_000));
    eprintln!(
        "12,000 events over iroh on loopback in {:?} (cut at {at_cut})",
        started.elapsed()
    );
    {
        let logs = hub.logs.lock().unwrap();
        let stored = &logs[&origin].0;
        assert_eq!(stored.len(), 12_000);
        assert!(
            stored
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == i as u64 + 1),
            "in order, no gap, no duplicate"
        );
        assert_eq!(
            stored.iter().map(Envelope::encode).collect::<Vec<_>>(),
            log.read(&origin, 1, usize::MAX)
        );
    }
    session.abort();
    let _ = session.await;
    assert!(
        !status.report().connected,
        "a dropped session reports disconnected"
    );

    // A peer that is not enrolled is refused before anything is stored.
    let stranger_secret = net::SecretKey::generate();
    let stranger_ep =
        net::offline_endpoint(stranger_secret.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let stranger_log = VecLog::new(
        NodeId::new("stranger").unwrap(),
        net::journal_key(&stranger_secret),
    );
    append(&stranger_log, 10);
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        net::send_log(
            &stranger_ep,
            hub_addr,
            &stranger_log,
            &Notify::new(),
            &net::SendStatus::default(),
        ),
    )
    .await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "the stranger's session must fail: {refused:?}"
    );
    assert_eq!(hub.count(&NodeId::new("stranger").unwrap()), 0);
}

/// A sender whose log is shorter than what the receiver already holds of its origin (a store
/// restored from an older backup) stops with an error instead of reusing seq numbers the
/// receiver would drop as duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_behind_the_receiver_refuses_to_sync() {
    let hub_ep = net::offline_endpoint(net::SecretKey::generate(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let till_secret = net::SecretKey::generate();
    let till_ep = net::offline_endpoint(till_secret.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let till_id = till_ep.id();
    let origin = NodeId::new("till-restored").unwrap();
    let hub = Arc::new(Hub::default());
    let full = VecLog::new(origin.clone(), net::journal_key(&till_secret));
    append(&full, 100);
    hub.store_now(till_id.as_bytes(), full.batch(1, 100).unwrap())
        .unwrap();
    tokio::spawn(net::serve(
        hub_ep.clone(),
        hub.clone(),
        None,
        None,
        net::Gate::new(move |peer| peer == till_id),
    ));
    let restored = VecLog::new(origin.clone(), net::journal_key(&till_secret));
    append(&restored, 50);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        net::send_log(
            &till_ep,
            net::peer_addr(hub_ep.id(), hub_ep.bound_sockets()[0]),
            &restored,
            &Notify::new(),
            &net::SendStatus::default(),
        ),
    )
    .await
    .expect("the session ends by itself");
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("holds 100 events") && error.contains("ends at 50"),
        "{error}"
    );
    assert_eq!(hub.count(&origin), 100);
}
