//! Trust across the fleet with real nodes over iroh: a rogue till holding its own enrolled key
//! and speaking the real protocol forges nothing at the hub or at a sibling; a revocation
//! travels in the hub's signed journal to every till, and a sibling till refuses the revoked
//! till from then on — also with the hub down afterwards.

use std::time::{Duration, Instant};

use fusion_contracts::StoreId;
use fusion_contracts::events::{CampaignClosed, StockAdjusted, StockReclaimed, StockTransferred};
use fusion_contracts::http::SettingsChange;
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, Sku, Timestamp};
use fusion_node::replication::{PeerLink, Role};
use fusion_rules::journal::Checkpoint;
use fusion_sync::docs::{
    CampaignDoc, Changed, DocId, DocSet, read_campaign, write_campaign, write_settings,
};
use fusion_sync::frame::Frame;
use fusion_sync::net;
use fusion_sync::proto::{LogSource, VecLog};
use serde_json::{Value, json};
use tokio::sync::Notify;

mod common;
use common::{Api, Till, eventually, serve_hub, wait_for};

/// How far `till` holds `peer`'s log.
fn held(till: &Till, peer: &str) -> u64 {
    let peer = NodeId::new(peer).unwrap();
    till.store
        .read()
        .unwrap()
        .peer_positions()
        .unwrap()
        .get(&peer)
        .copied()
        .unwrap_or(0)
}

/// `GET /journal/{origin}` as text.
async fn fetch_journal(api: &Api, origin: &str) -> String {
    let response = api
        .http
        .get(format!("{}/journal/{origin}", api.url))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// docs/verify_journal.py on `export` under `key`: (exit code, stdout).
fn python_verify(export: &std::path::Path, key: &str) -> (i32, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/verify_journal.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(export)
        .args(["--key", key])
        .output()
        .expect("python3 runs (./test.sh installs the cryptography package)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn peer_status<'a>(status: &'a Value, endpoint: &str) -> &'a Value {
    status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["endpointId"] == endpoint)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_revoked_at_the_hub_is_refused_by_its_sibling_while_the_hub_is_down() {
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
    let (id_a, addr_a) = (ep_a.id(), ep_a.bound_sockets()[0]);
    let (id_b, addr_b) = (ep_b.id(), ep_b.bound_sockets()[0]);
    for id in [id_a, id_b] {
        hub.hub.state.store.enroll(id, "store-1").unwrap();
    }
    let links = |other, at| {
        vec![
            PeerLink::new(Role::Hub, hub.id, vec![hub.addr]),
            PeerLink::new(Role::Till, other, vec![at]),
        ]
    };
    let a = Till::start(dir_a.path(), ep_a, links(id_b, addr_b)).await;
    let b = Till::start(dir_b.path(), ep_b, links(id_a, addr_a)).await;

    // b's events reach a directly.
    let product = |sku: &str| json!({ "sku": sku, "name": "Tea", "price": 2, "currency": "USD", "inventory": 5 });
    let (status, _) = b
        .api
        .call(reqwest::Method::POST, "/products", Some(product("TEA")))
        .await;
    assert_eq!(status, 201);
    wait_for("b's log to reach a", || held(&a, &b.node_id) > 0).await;

    // b's journal as the hub holds it, and the hub's own, verify with a script that shares no
    // code with either (docs/verify_journal.py), under their endpoint ids.
    let b_origin = b.node_id.clone();
    let store = hub.hub.state.store.clone();
    let b_id = NodeId::new(&b_origin).unwrap();
    wait_for("b's journal to be verified at the hub", || {
        store.verified_checkpoint(&b_id).unwrap().is_some()
    })
    .await;
    let hub_origin = hub.hub.state.store.origin().to_string();
    for (origin, key) in [
        (&b_origin, id_b.to_string()),
        (&hub_origin, hub.id.to_string()),
    ] {
        let export = fetch_journal(&hub.api, origin).await;
        let file = hub_dir.path().join(format!("{origin}.jsonl"));
        std::fs::write(&file, export).unwrap();
        let (code, out) = python_verify(&file, &key);
        assert_eq!(code, 0, "{origin}: {out}");
        // Against another key, it fails.
        let (code, _) = python_verify(&file, &"11".repeat(32));
        assert_eq!(code, 1);
    }
    let (status, body) = hub.api.get("/journal/nobody").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (404, Some("origin")),
        "{body}"
    );
    let (status, body) = hub.api.get(&format!("/journal/{b_origin}?from=x")).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("from")),
        "{body}"
    );

    // Revoked at the hub: the revocation is in the hub's journal, which a pulls.
    let (status, body) = hub
        .api
        .call(
            reqwest::Method::DELETE,
            &format!("/enrollments/{id_b}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let heard = Instant::now();
    let b_endpoint = id_b.to_string();
    eventually(&a.api, "/sync/status", "a hears of b's revocation", |s| {
        peer_status(s, &b_endpoint)["revoked"] == true
    })
    .await;
    // Within seconds of hearing of it, a has dropped every session with b.
    eventually(&a.api, "/sync/status", "a drops its sessions with b", |s| {
        let b = peer_status(s, &b_endpoint);
        b["connected"] == false && b["documentsConnected"] == false
    })
    .await;
    let heard = heard.elapsed();
    assert!(heard < Duration::from_secs(10), "cut off after {heard:?}");

    // The hub goes down; b goes on selling and tries to reach a.
    hub.stop().await;
    let before = held(&a, &b.node_id);
    let (status, _) = b
        .api
        .call(reqwest::Method::POST, "/products", Some(product("MUG")))
        .await;
    assert_eq!(status, 201);
    // a refuses b: nothing more of b's log is stored, and the refusal is counted.
    let status = eventually(&a.api, "/sync/status", "a refuses b", |s| {
        s["refused"]["peer_revoked"].as_u64().unwrap_or(0) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(held(&a, &b.node_id), before, "{status}");
    let (_, mug) = a.api.get("/products/by-sku/MUG").await;
    assert_eq!(
        mug["error"], "not_found",
        "b's new product must not reach a: {mug}"
    );
    a.stop().await;
    b.stop().await;
}

/// A rogue's documents, offered in a document session.
struct RogueDocs {
    set: std::sync::Mutex<DocSet>,
    changes: tokio::sync::broadcast::Sender<Changed>,
}

impl RogueDocs {
    fn new(actor: &NodeId) -> Self {
        Self {
            set: std::sync::Mutex::new(DocSet::new(actor.as_str().as_bytes())),
            changes: tokio::sync::broadcast::channel(16).0,
        }
    }
}

impl net::DocHost for RogueDocs {
    fn docs(&self) -> &std::sync::Mutex<DocSet> {
        &self.set
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Changed> {
        self.changes.subscribe()
    }
    fn changed(&self, _: Vec<DocId>) -> net::BoxFuture<'_, Result<(), String>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn may_change(&self, _: net::EndpointId, _: &DocId) -> bool {
        true
    }
    fn is_hub(&self, _: net::EndpointId) -> bool {
        false
    }
    fn refuse(&self, _: &'static str) {}
}

/// A log that shows one journal and signs another: what a till that changed an event after
/// signing it (or in flight) sends.
struct Tampered {
    shown: VecLog,
    signed: VecLog,
}

impl LogSource for Tampered {
    fn heads(&self) -> Vec<(NodeId, u64)> {
        self.shown.heads()
    }
    fn read(&self, origin: &NodeId, from: u64, limit: usize) -> Vec<Vec<u8>> {
        self.shown.read(origin, from, limit)
    }
    fn checkpoint(&self, origin: &NodeId, seq: u64) -> Option<Checkpoint> {
        self.signed.checkpoint(origin, seq)
    }
}

fn envelope(origin: &NodeId, seq: u64, event: Event) -> Vec<u8> {
    Envelope::new(
        EventId(uuid::Uuid::now_v7()),
        origin.clone(),
        seq,
        Timestamp::from_unix_ms(1_000 + seq as i64),
        CorrelationId::new("rogue").unwrap(),
        None,
        event,
    )
    .unwrap()
    .encode()
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

/// One session of `log` to `to`, until the receiver ends it (a refusal) or 3 s pass.
async fn session(
    rogue: &net::Endpoint,
    to: net::EndpointAddr,
    log: &(impl LogSource + Send + Sync),
) {
    let _ = tokio::time::timeout(
        Duration::from_secs(3),
        net::send_log(rogue, to, log, &Notify::new(), &net::SendStatus::default()),
    )
    .await;
}

/// An enrolled till gone rogue holds its own key and speaks the real sync protocol to the hub
/// and to a sibling till: every forgery is refused and counted at both, nothing of it is
/// stored or folded, and the honest tills go on syncing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_till_with_its_own_key_forges_nothing() {
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
    let rogue_key = net::SecretKey::generate();
    let rogue = net::offline_endpoint(rogue_key.clone(), any).await.unwrap();
    let (id_a, addr_a) = (ep_a.id(), ep_a.bound_sockets()[0]);
    let (id_b, addr_b) = (ep_b.id(), ep_b.bound_sockets()[0]);
    for id in [id_a, id_b, rogue.id()] {
        hub.hub.state.store.enroll(id, "store-1").unwrap();
    }
    let hub_link = || PeerLink::new(Role::Hub, hub.id, vec![hub.addr]);
    let till = |id, at| PeerLink::new(Role::Till, id, vec![at]);
    let rogue_at = rogue.bound_sockets()[0];
    // a knows the rogue as one of its store's tills (it is one).
    let a = Till::start(
        dir_a.path(),
        ep_a,
        vec![hub_link(), till(id_b, addr_b), till(rogue.id(), rogue_at)],
    )
    .await;
    let b = Till::start(dir_b.path(), ep_b, vec![hub_link(), till(id_a, addr_a)]).await;
    let store = hub.hub.state.store.clone();
    let hub_at = net::peer_addr(hub.id, hub.addr);
    let a_at = net::peer_addr(id_a, addr_a);

    // b's journal reaches a and the hub.
    let (status, _) = b
        .api
        .call(
            reqwest::Method::POST,
            "/products",
            Some(json!({ "sku": "TEA", "name": "Tea", "price": 2, "currency": "USD", "inventory": 5 })),
        )
        .await;
    assert_eq!(status, 201);
    let b_origin = NodeId::new(&b.node_id).unwrap();
    wait_for("b's log to reach a and the hub", || {
        held(&a, &b.node_id) > 0 && store.position(&b_origin).unwrap() > 0
    })
    .await;

    // The rogue's own journal starts honestly: one stock count, taken by both.
    let rogue_origin = NodeId::new("rogue-till-origin").unwrap();
    let honest = VecLog::new(rogue_origin.clone(), net::journal_key(&rogue_key));
    honest.extend([envelope(&rogue_origin, 1, counted(2))]);
    session(&rogue, hub_at.clone(), &honest).await;
    session(&rogue, a_at.clone(), &honest).await;
    assert_eq!(store.position(&rogue_origin).unwrap(), 1);
    assert_eq!(held(&a, rogue_origin.as_str()), 1);

    // A campaign of a's whose seats a shares with b (so the hub follows it, and only the hub
    // decides it).
    let (status, product) = a
        .api
        .call(
            reqwest::Method::POST,
            "/products",
            Some(json!({ "sku": "GB", "name": "Kettle", "price": 40, "currency": "USD", "inventory": 5 })),
        )
        .await;
    assert_eq!(status, 201, "{product}");
    let now = fusion_sync::clock::now().unix_ms();
    let at = |offset: i64| Timestamp::from_unix_ms(now + offset).to_string();
    let (status, campaign) = a
        .api
        .call(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({
                "productId": product["id"], "minParticipants": 1, "maxParticipants": 4,
                "price": 30, "originalPrice": 40, "startTime": at(-1_000), "endTime": at(3_600_000),
            })),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let campaign_id =
        fusion_contracts::CampaignId::parse(campaign["id"].as_str().unwrap()).unwrap();
    let (status, given) = a
        .api
        .call(
            reqwest::Method::POST,
            &format!("/campaigns/{campaign_id}/seats/transfer"),
            Some(json!({ "to": b.node_id, "seats": 1 })),
        )
        .await;
    assert_eq!(status, 200, "{given}");
    let a_origin = NodeId::new(&a.node_id).unwrap();
    let a_head = a.store.read().unwrap().last_seq().unwrap();
    wait_for("a's seat transfer at the hub", || {
        store.position(&a_origin).unwrap() >= a_head
    })
    .await;
    let shared = a
        .store
        .read()
        .unwrap()
        .campaign(campaign_id)
        .unwrap()
        .unwrap();
    // b takes the seat in (its log grows): where a and the hub hold b now.
    wait_for("b to take the seat in", || {
        b.store
            .read()
            .unwrap()
            .seat_rights()
            .unwrap()
            .iter()
            .any(|r| r.campaign_id == campaign_id && r.free == 1)
    })
    .await;
    let b_head = b.store.read().unwrap().last_seq().unwrap();
    wait_for("b's receipt to reach a and the hub", || {
        held(&a, &b.node_id) >= b_head && store.position(&b_origin).unwrap() >= b_head
    })
    .await;
    let (b_at_a, b_at_hub) = (held(&a, &b.node_id), store.position(&b_origin).unwrap());

    let refused_at_hub = |rule: &str| store.refusals().get(rule).copied().unwrap_or(0);
    let refused_at_a = |rule: &'static str| a.store.refusals().get(rule).copied().unwrap_or(0);
    let forgeries: Vec<(&str, &'static str, Box<dyn LogSource + Send + Sync>)> = vec![
        // b's events, signed by the rogue (past what the receivers hold of b).
        ("another till's origin", "origin_of_another_peer", {
            let log = VecLog::new(b_origin.clone(), net::journal_key(&rogue_key));
            log.extend(
                (1..=b_at_a.max(b_at_hub) + 1).map(|seq| envelope(&b_origin, seq, counted(9))),
            );
            Box::new(log)
        }),
        // The hub's own origin.
        ("the hub's events", "hub_origin_from_till", {
            let own = store.origin().clone();
            let log = VecLog::new(own.clone(), net::journal_key(&rogue_key));
            let next = store.position(&own).unwrap() + 1;
            log.extend((1..=next).map(|seq| envelope(&own, seq, counted(1))));
            Box::new(log)
        }),
        // A reclaim of b's rights (the hub's to write).
        ("a reclaim", "unauthorized_topic", {
            let log = VecLog::new(rogue_origin.clone(), net::journal_key(&rogue_key));
            let reclaim: Event = StockReclaimed {
                sku: Sku::new("TEA").unwrap(),
                from: b_origin.clone(),
                upto: 1,
                quantity: 5,
                transfers: Vec::new(),
                previous_quantity: 2,
                available: 7,
            }
            .into();
            log.extend(honest.read(&rogue_origin, 1, 1));
            log.extend([envelope(&rogue_origin, 2, reclaim)]);
            Box::new(log)
        }),
        // The decision of a's shared campaign (the hub's to make): it would settle it at a.
        ("a campaign.closed", "shared_campaign_from_till", {
            let log = VecLog::new(rogue_origin.clone(), net::journal_key(&rogue_key));
            let mut decided = shared.snapshot();
            decided.status = fusion_contracts::events::campaigns::CampaignStatus::Closed;
            let closed: Event = CampaignClosed {
                campaign_id,
                campaign: decided,
                orders: Vec::new(),
            }
            .into();
            log.extend(honest.read(&rogue_origin, 1, 1));
            log.extend([envelope(&rogue_origin, 2, closed)]);
            Box::new(log)
        }),
        // An event changed after it was signed.
        ("a tampered event", "journal_signature", {
            let signed = VecLog::new(rogue_origin.clone(), net::journal_key(&rogue_key));
            let shown = VecLog::new(rogue_origin.clone(), net::journal_key(&rogue_key));
            signed.extend(honest.read(&rogue_origin, 1, 1));
            shown.extend(honest.read(&rogue_origin, 1, 1));
            signed.extend([envelope(&rogue_origin, 2, counted(3))]);
            shown.extend([envelope(&rogue_origin, 2, counted(300))]);
            Box::new(Tampered { shown, signed })
        }),
    ];
    for (what, rule, log) in &forgeries {
        let (at_hub, at_a) = (refused_at_hub(rule), refused_at_a(rule));
        session(&rogue, hub_at.clone(), log).await;
        session(&rogue, a_at.clone(), log).await;
        assert!(
            refused_at_hub(rule) > at_hub,
            "the hub did not refuse {what} ({rule})"
        );
        assert!(
            refused_at_a(rule) > at_a,
            "a did not refuse {what} ({rule})"
        );
    }
    // Nothing of it was stored.
    assert_eq!(store.position(&rogue_origin).unwrap(), 1);
    assert_eq!(held(&a, rogue_origin.as_str()), 1);
    assert_eq!(store.position(&b_origin).unwrap(), b_at_hub);
    assert_eq!(held(&a, &b.node_id), b_at_a);

    // Another store's settings and a's own campaign (a cheaper price), in document sessions.
    let other_store = DocId::settings(&StoreId::new("store-2").unwrap());
    let a_campaign = DocId::campaign(campaign_id);
    wait_for("a's campaign document at the hub", || {
        hub.hub.state.docs.campaign(campaign_id).is_some()
    })
    .await;
    let rogue_docs = RogueDocs::new(&rogue_origin);
    {
        let mut set = rogue_docs.set.lock().unwrap();
        set.edit(&other_store, |doc| {
            write_settings(
                doc,
                &SettingsChange {
                    name: Some(Some("Not yours".into())),
                    ..Default::default()
                },
            )
        })
        .unwrap();
        let mut cheaper = shared.snapshot();
        cheaper.price = fusion_contracts::Decimal::new(1, 2);
        set.edit(&a_campaign, |doc| {
            write_campaign(
                doc,
                &CampaignDoc {
                    owner: rogue_origin.clone(),
                    campaign: cheaper,
                },
            )
        })
        .unwrap();
    }
    let campaign_at_a = || {
        let mut docs = a.store.docs().lock().unwrap();
        read_campaign(docs.get(&a_campaign).unwrap(), campaign_id).unwrap()
    };
    let (at_a_before, at_hub_before) = (campaign_at_a(), hub.hub.state.docs.campaign(campaign_id));
    // Following the protocol, the rogue is told both are read-only from it and sends nothing
    // of them…
    for at in [a_at.clone(), hub_at.clone()] {
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            net::dial_docs(&rogue, at, &rogue_docs, &net::SendStatus::default()),
        )
        .await;
    }
    // …and pushing its changes anyway, as sync messages and as whole documents, they are
    // refused and counted at a and at the hub.
    let pushed: Vec<Frame> = {
        let mut set = rogue_docs.set.lock().unwrap();
        [&other_store, &a_campaign]
            .into_iter()
            .flat_map(|doc| {
                let (_, bytes) = set.saves(std::slice::from_ref(doc)).unwrap().remove(0);
                [
                    Frame::DocSync {
                        doc: doc.clone(),
                        message: set.unsolicited_message(doc).unwrap(),
                    },
                    Frame::DocSave {
                        doc: doc.clone(),
                        bytes,
                    },
                ]
            })
            .collect()
    };
    let (at_a, at_hub) = (
        refused_at_a("doc_unauthorized"),
        refused_at_hub("doc_unauthorized"),
    );
    for at in [a_at.clone(), hub_at.clone()] {
        net::send_doc_frames(&rogue, at, &pushed, Duration::from_secs(1))
            .await
            .unwrap();
    }
    assert!(
        refused_at_a("doc_unauthorized") >= at_a + 4,
        "a took the rogue's documents"
    );
    assert!(
        refused_at_hub("doc_unauthorized") >= at_hub + 4,
        "the hub took the rogue's documents"
    );
    assert!(!a.store.docs().lock().unwrap().holds(&other_store));
    assert_eq!(campaign_at_a(), at_a_before);
    assert_eq!(hub.hub.state.docs.campaign(campaign_id), at_hub_before);
    assert_eq!(
        hub.hub
            .state
            .docs
            .settings(&StoreId::new("store-2").unwrap()),
        Default::default()
    );

    // 10,000 made-up document ids announced: each is asked for whole (`DocWant`), none is
    // created, at a or at the hub.
    let docs_at_a = || a.store.docs().lock().unwrap().ids().unwrap().len();
    let docs_at_hub = || {
        net::DocHost::docs(&*hub.hub.state.docs)
            .lock()
            .unwrap()
            .ids()
            .unwrap()
            .len()
    };
    let (before_a, before_hub) = (docs_at_a(), docs_at_hub());
    let made_up: Vec<(DocId, Vec<[u8; 32]>)> = (0..10_000u128)
        .map(|n| {
            let id = fusion_contracts::ProductId::from_u128(1_000_000 + n);
            (DocId::product(id), vec![[7u8; 32]])
        })
        .collect();
    let announced: Vec<Frame> = made_up
        .chunks(fusion_sync::frame::DOC_HEADS_MAX)
        .map(|docs| Frame::DocHeads {
            docs: docs.to_vec(),
        })
        .collect();
    for at in [a_at.clone(), hub_at.clone()] {
        let answers = net::send_doc_frames(&rogue, at, &announced, Duration::from_secs(5))
            .await
            .unwrap();
        let asked: usize = answers
            .iter()
            .map(|f| match f {
                Frame::DocWant { docs } => docs.len(),
                Frame::DocSync { .. } => 1,
                _ => 0,
            })
            .sum();
        assert!(asked >= 10_000, "{asked} of the ids were asked for");
    }
    assert_eq!(docs_at_a(), before_a);
    assert_eq!(docs_at_hub(), before_hub);

    // A transfer of rights it never held (its own signed journal says it): refused by the
    // rules' fold, never stored, never taken in.
    let beyond = VecLog::new(rogue_origin.clone(), net::journal_key(&rogue_key));
    beyond.extend(honest.read(&rogue_origin, 1, 1));
    let transfer: Event = StockTransferred {
        transfer_id: uuid::Uuid::now_v7(),
        sku: Sku::new("TEA").unwrap(),
        quantity: 1_000,
        to: a_origin.clone(),
        previous_quantity: 1_002,
        available: 2,
    }
    .into();
    beyond.extend([envelope(&rogue_origin, 2, transfer)]);
    let (at_hub, at_a) = (
        refused_at_hub("stock_underflow"),
        refused_at_a("stock_underflow"),
    );
    session(&rogue, hub_at.clone(), &beyond).await;
    session(&rogue, a_at.clone(), &beyond).await;
    assert!(
        refused_at_hub("stock_underflow") > at_hub,
        "{:?} at {}",
        store.refusals(),
        store.position(&rogue_origin).unwrap()
    );
    assert!(refused_at_a("stock_underflow") > at_a);
    assert_eq!(store.position(&rogue_origin).unwrap(), 1);
    assert_eq!(held(&a, rogue_origin.as_str()), 1);
    // a's campaign is still a's: open, not settled by the forged decision.
    let (_, seen) = a.api.get(&format!("/campaigns/{campaign_id}")).await;
    assert_eq!(seen["status"], "active", "{seen}");
    let (_, tea) = a.api.get("/inventory/TEA").await;
    assert_eq!(
        tea["quantity"].as_u64().unwrap_or(0),
        0,
        "a took in nothing: {tea}"
    );

    // The refusals are visible in a's /sync/status; the honest tills keep syncing.
    let (_, status) = a.api.get("/sync/status").await;
    for rule in [
        "origin_of_another_peer",
        "hub_origin_from_till",
        "unauthorized_topic",
        "shared_campaign_from_till",
        "journal_signature",
        "stock_underflow",
    ] {
        assert!(
            status["refused"][rule].as_u64().unwrap_or(0) > 0,
            "{rule}: {status}"
        );
    }
    let (status, _) = a
        .api
        .call(
            reqwest::Method::POST,
            "/products",
            Some(json!({ "sku": "MUG", "name": "Mug", "price": 9, "currency": "USD", "inventory": 3 })),
        )
        .await;
    assert_eq!(status, 201);
    let a_head = a.store.read().unwrap().last_seq().unwrap();
    wait_for("a's new events to reach b and the hub", || {
        held(&b, &a.node_id) >= a_head && store.position(&a_origin).unwrap() >= a_head
    })
    .await;
    a.stop().await;
    b.stop().await;
    hub.stop().await;
}
