//! Enrollment over real iroh endpoints on loopback: the hub refuses a node it never enrolled
//! before any event is stored, and a revoked node is cut off mid-session and cannot reconnect.

use std::sync::Arc;
use std::time::Duration;

use fusion_contracts::NodeId;
use fusion_hub::store::HubStore;
use fusion_sync::net::{self, EndpointId};
use fusion_sync::proto::VecLog;
use tokio::sync::Notify;

mod common;
use common::{append, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unenrolled_nodes_are_refused_and_revoked_ones_cut_off_for_good() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = Arc::new(HubStore::open(hub_dir.path()).unwrap());
    let hub_ep = net::offline_endpoint(net::SecretKey::generate(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let hub_addr = net::peer_addr(hub_ep.id(), hub_ep.bound_sockets()[0]);
    let gate = {
        let hub = hub.clone();
        net::Gate::new(move |peer: EndpointId| matches!(hub.enrollment(peer), Ok(Some(_))))
    };
    tokio::spawn(net::serve(hub_ep, hub.clone(), None, None, gate.clone()));

    let till = |name: &'static str| async move {
        let secret = net::SecretKey::generate();
        let key = net::journal_key(&secret);
        let ep = net::offline_endpoint(secret, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        (ep, Arc::new(VecLog::new(NodeId::new(name).unwrap(), key)))
    };

    // A stranger: refused before anything is stored.
    let (stranger_ep, stranger_log) = till("stranger").await;
    append(&stranger_log, 10);
    let refused = net::send_log(
        &stranger_ep,
        hub_addr.clone(),
        stranger_log.as_ref(),
        &Notify::new(),
        &net::SendStatus::default(),
    )
    .await;
    assert!(
        refused.is_err(),
        "a stranger's session must fail, got {refused:?}"
    );
    assert_eq!(hub.position(stranger_log.origin()).unwrap(), 0);
    assert!(hub.events(stranger_log.origin(), 1, 10).unwrap().is_empty());

    // An enrolled till replicates.
    let (till_ep, till_log) = till("till-a").await;
    hub.enroll(till_ep.id(), "store-1").unwrap();
    assert_eq!(
        hub.enrollment(till_ep.id()).unwrap().as_deref(),
        Some("store-1")
    );
    append(&till_log, 100);
    let appended = Arc::new(Notify::new());
    let session = {
        let (ep, log, appended, addr) = (
            till_ep.clone(),
            till_log.clone(),
            appended.clone(),
            hub_addr.clone(),
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
    wait_for("the enrolled till's 100 events", || {
        hub.position(till_log.origin()).unwrap() == 100
    })
    .await;
    wait_for("the live connection to be listed", || {
        gate.connected().contains(&till_ep.id())
    })
    .await;

    // Revoked: the live session is cut at once, and reconnecting is refused.
    assert!(hub.revoke(till_ep.id()).unwrap());
    assert_eq!(gate.cut(till_ep.id()), 1);
    let ended = tokio::time::timeout(Duration::from_secs(5), session)
        .await
        .expect("the cut session ends")
        .unwrap();
    assert!(
        ended.is_err(),
        "a cut session reports an error, got {ended:?}"
    );
    append(&till_log, 50);
    let again = net::send_log(
        &till_ep,
        hub_addr.clone(),
        till_log.as_ref(),
        &Notify::new(),
        &net::SendStatus::default(),
    )
    .await;
    assert!(again.is_err(), "a revoked till is refused, got {again:?}");
    assert_eq!(
        hub.position(till_log.origin()).unwrap(),
        100,
        "nothing after the revocation"
    );
    assert_eq!(hub.enrollment(till_ep.id()).unwrap(), None);
    assert!(hub.enrollments().unwrap().is_empty());

    // Enrolled again on purpose, it resumes where it stopped: exactly once, no gap.
    hub.enroll(till_ep.id(), "store-1").unwrap();
    let session = {
        let (ep, log, addr) = (till_ep.clone(), till_log.clone(), hub_addr.clone());
        tokio::spawn(async move {
            net::send_log(
                &ep,
                addr,
                log.as_ref(),
                &Notify::new(),
                &net::SendStatus::default(),
            )
            .await
        })
    };
    wait_for("the re-enrolled till's 150 events", || {
        hub.position(till_log.origin()).unwrap() == 150
    })
    .await;
    let stored = hub.events(till_log.origin(), 1, usize::MAX).unwrap();
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=150).collect::<Vec<_>>()
    );
    session.abort();
}
