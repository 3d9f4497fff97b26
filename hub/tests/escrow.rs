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
use common::{Till, eventually, serve_hub};

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

/// Two tills of store-1 syncing with the hub and with each other.
struct Pair {
    a: Till,
    b: Till,
    id_a: net::EndpointId,
    addr_a: std::net::SocketAddr,
    addr_b: std::net::SocketAddr,
    dir_b: tempfile::TempDir,
    /// Kept for as long as the tills run: bind it when destructuring.
    _dir_a: tempfile::TempDir,
}

/// The links of a till of the pair: the hub and the other till.
fn links(hub: &common::Served, other: net::EndpointId, at: std::net::SocketAddr) -> Vec<PeerLink> {
    vec![
        PeerLink::new(Role::Hub, hub.id, vec![hub.addr]),
        PeerLink::new(Role::Till, other, vec![at]),
    ]
}

/// Starts a [`Pair`], enrolled at `hub`, each till under its payment policy.
async fn pair(hub: &common::Served, policies: [fusion_node::card::PaymentPolicy; 2]) -> Pair {
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
    let [policy_a, policy_b] = policies;
    let a = Till::start_with(dir_a.path(), ep_a, links(hub, id_b, addr_b), policy_a).await;
    let b = Till::start_with(dir_b.path(), ep_b, links(hub, id_a, addr_a), policy_b).await;
    Pair {
        a,
        b,
        id_a,
        addr_a,
        addr_b,
        dir_b,
        _dir_a: dir_a,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_rights_move_between_tills_and_are_never_oversold() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = serve_hub(hub_dir.path()).await;
    let Pair {
        a,
        b,
        id_a,
        addr_a,
        addr_b,
        dir_b,
        _dir_a,
    } = pair(&hub, Default::default()).await;

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
    // (First the hub has b's sales: what it holds of b is b's journal up to the stop.)
    eventually(&hub.api, "/escrow?sku=TEA", "b's sales at the hub", |e| {
        e[0]["held"] == 6
    })
    .await;
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
    let b = Till::start(dir_b.path(), ep_b, links(&hub, id_a, addr_a)).await;
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

/// A [`Pair`]: a received 10 TEA, and b has a product of its own (the hub gives only to tills it
/// has heard from).
async fn store_with_tea(hub: &common::Served) -> Pair {
    let pair = pair(hub, Default::default()).await;
    let (a, b) = (&pair.a, &pair.b);
    let (status, _) = post(
        a,
        "/products",
        json!({ "sku": "TEA", "name": "Tea", "price": 2, "currency": "USD", "inventory": 10 }),
    )
    .await;
    assert_eq!(status, 201);
    eventually(&b.api, "/products/by-sku/TEA", "the product", |_| true).await;
    let (status, _) = post(
        b,
        "/products",
        json!({ "sku": "MUG", "name": "Mug", "price": 5, "currency": "USD" }),
    )
    .await;
    assert_eq!(status, 201);
    let b_events = format!("/events?origin={}", b.node_id);
    eventually(&hub.api, &b_events, "the hub has heard from b", |page| {
        page["events"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    pair
}

/// With rebalancing on a timer, what a till gives the hub flows on to the till that needs it
/// without anyone asking, and the hub keeps its reserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_rebalances_on_its_own_when_configured() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = common::serve_hub_with(hub_dir.path(), |hub| {
        hub.with_rebalance(fusion_hub::Rebalance {
            every: Duration::from_millis(200),
            keep: 1,
        })
    })
    .await;
    let Pair {
        a,
        b,
        dir_b: _dir_b,
        _dir_a,
        ..
    } = store_with_tea(&hub).await;
    // a gives the hub 4; keeping 1, the hub gives b (holding nothing) the other 3: of the 9
    // sellable units each till's target is 4 or 5, and a holds 6 already.
    let (status, _) = post(
        &a,
        "/inventory/TEA/transfer",
        json!({ "to": "hub", "quantity": 4 }),
    )
    .await;
    assert_eq!(status, 200);
    eventually(&b.api, "/inventory/TEA", "b receives 3 from the hub", |s| {
        s["quantity"] == 3
    })
    .await;
    let at_hub = eventually(&hub.api, "/escrow?sku=TEA", "the hub keeps 1", |e| {
        e[0]["inTransit"] == 0 && e[0]["held"] == 10
    })
    .await;
    let hub_holder = at_hub[0]["hubHolder"].as_str().unwrap();
    let kept = at_hub[0]["holders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["origin"] == hub_holder)
        .unwrap();
    assert_eq!(kept["held"], 1, "{at_hub}");
    a.stop().await;
    b.stop().await;
    hub.stop().await;
}

/// The hub as a holder (the online channel of each store): a till gives it rights (`"to":
/// "hub"`), the hub gives them to a till through its own log (which tills pull), rebalances
/// toward the till that sells, and takes over the rights of a till lost for good — also what
/// was in transit to it. Every holder's view agrees, and nothing is created or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_holds_gives_rebalances_and_reclaims_rights() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = serve_hub(hub_dir.path()).await;
    let Pair {
        a,
        b,
        id_a,
        dir_b: _dir_b,
        _dir_a,
        ..
    } = store_with_tea(&hub).await;

    // a gives the hub 6: the hub takes them in as its store's holder.
    let (status, after) = post(
        &a,
        "/inventory/TEA/transfer",
        json!({ "to": "hub", "quantity": 6 }),
    )
    .await;
    assert_eq!(
        (status, after["quantity"].as_u64()),
        (200, Some(4)),
        "{after}"
    );
    let at_hub = eventually(&hub.api, "/escrow?sku=TEA", "the hub takes 6 in", |e| {
        e[0]["inTransit"] == 0 && e[0]["held"] == 10 && e[0]["holders"][1].is_object()
    })
    .await;
    let holder = at_hub[0]["hubHolder"].as_str().unwrap().to_string();
    let held_by = |view: &Value, key: &str, node: &str| -> Option<u64> {
        view.as_array()?
            .iter()
            .find(|h| h[key] == node)
            .and_then(|h| h["held"].as_u64())
    };
    assert_eq!(held_by(&at_hub[0]["holders"], "origin", &holder), Some(6));
    let tea = |view: &Value| -> Value {
        view["store"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["sku"] == "TEA"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    // b learns it from the hub's log, pulled over its own connection.
    eventually(&b.api, "/escrow", "b sees the hub's rights", |e| {
        held_by(&tea(e)["holders"], "nodeId", &holder) == Some(6)
    })
    .await;

    // The hub gives b 2; bad requests are refused, naming the field.
    let admin = |path: &str, body: Value| {
        let (api, path) = (&hub.api, path.to_string());
        async move { api.call(reqwest::Method::POST, &path, Some(body)).await }
    };
    let give = |to: &str, quantity: u64| json!({ "storeId": "store-1", "sku": "TEA", "to": to, "quantity": quantity });
    let (status, transfer) = admin("/escrow/transfer", give(&b.node_id, 2)).await;
    assert_eq!(status, 201, "{transfer}");
    assert_eq!(transfer["from"], holder.as_str());
    eventually(&b.api, "/inventory/TEA", "b takes the hub's 2 in", |s| {
        s["quantity"] == 2
    })
    .await;
    let (status, body) = admin("/escrow/transfer", give(&b.node_id, 5)).await;
    assert_eq!(
        (status, body["field"].as_str(), body["available"].as_u64()),
        (422, Some("quantity"), Some(4)),
        "{body}"
    );
    for (body, field) in [
        (give("till-nobody", 1), "to"),
        (give(&holder, 1), "to"),
        (give(&b.node_id, 0), "quantity"),
        (
            json!({ "storeId": "store-1", "sku": "TEA", "to": b.node_id }),
            "quantity",
        ),
        (
            json!({ "storeId": "a b", "sku": "TEA", "to": b.node_id, "quantity": 1 }),
            "storeId",
        ),
    ] {
        let (status, refused) = admin("/escrow/transfer", body).await;
        assert_eq!(
            (status, refused["field"].as_str()),
            (400, Some(field)),
            "{refused}"
        );
    }

    // b sells its 2; a sells nothing. Rebalancing (keeping 1 for the online channel) gives
    // the other 3 to b: of the 7 sellable units b's target is 7 × 3/4 = 5, a's 7 × 1/4 = 1,
    // which a already exceeds.
    let order =
        json!({ "customerId": "c", "items": [{ "sku": "TEA", "quantity": 1, "price": 2 }] });
    for _ in 0..2 {
        assert_eq!(post(&b, "/orders", order.clone()).await.0, 201);
    }
    eventually(&hub.api, "/escrow?sku=TEA", "the hub sees b's sales", |e| {
        e[0]["reserved"] == 2
    })
    .await;
    let (status, moved) = admin("/escrow/rebalance", json!({ "keep": 1 })).await;
    assert_eq!(status, 200, "{moved}");
    let moved = moved.as_array().unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        (moved[0]["to"].as_str(), moved[0]["quantity"].as_u64()),
        (Some(b.node_id.as_str()), Some(3))
    );
    eventually(&b.api, "/inventory/TEA", "b takes the 3 in", |s| {
        s["quantity"] == 3
    })
    .await;

    // a is lost for good; b had just given it 1, which a never took in. A manager reclaims a:
    // its 4 and the 1 in transit pass to the hub, and a is revoked.
    let a_id = a.node_id.clone();
    a.stop().await;
    let (status, _) = post(
        &b,
        "/inventory/TEA/transfer",
        json!({ "to": a_id, "quantity": 1 }),
    )
    .await;
    assert_eq!(status, 200);
    eventually(
        &hub.api,
        "/escrow?sku=TEA",
        "the hub sees the transfer to a",
        |e| e[0]["inTransit"] == 1,
    )
    .await;
    let (status, reclaim) = admin("/escrow/reclaim", json!({ "nodeId": a_id })).await;
    assert_eq!(status, 200, "{reclaim}");
    assert_eq!(reclaim["reclaimed"][0]["quantity"], 5, "{reclaim}");
    assert_eq!(
        reclaim["reclaimed"][0]["transfers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(reclaim["revoked"], id_a.to_string());
    let (_, enrolled) = hub.api.get("/enrollments").await;
    assert_eq!(
        enrolled.as_array().unwrap().len(),
        1,
        "a is revoked: {enrolled}"
    );
    let (status, refused) = admin("/escrow/reclaim", json!({ "nodeId": "till-nobody" })).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("nodeId")));

    // Everyone agrees: the hub holds 1 + 5, b 2 (and sold 2), a nothing; 10 in all.
    let at_hub = eventually(&hub.api, "/escrow?sku=TEA", "the hub's view", |e| {
        e[0]["inTransit"] == 0 && e[0]["held"] == 8
    })
    .await;
    assert_eq!(held_by(&at_hub[0]["holders"], "origin", &holder), Some(6));
    assert_eq!(held_by(&at_hub[0]["holders"], "origin", &a_id), Some(0));
    assert_eq!(
        held_by(&at_hub[0]["holders"], "origin", &b.node_id),
        Some(2)
    );
    assert_eq!(at_hub[0]["reserved"], 2);
    let at_b = eventually(&b.api, "/escrow", "b sees the reclaim", |e| {
        e["inTransit"].as_array().is_some_and(|t| t.is_empty())
            && held_by(&tea(e)["holders"], "nodeId", &holder) == Some(6)
    })
    .await;
    assert_eq!(held_by(&tea(&at_b)["holders"], "nodeId", &a_id), Some(0));
    assert_eq!(tea(&at_b)["held"], 8, "{at_b}");

    b.stop().await;
    hub.stop().await;
}

/// The hub's view of each store's offline card budget, folded from the tills' logs: a till's
/// share (`payment.offline_budget_set`), its offline approvals, and their settlement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_shows_each_stores_offline_card_budget() {
    use fusion_contracts::events::{OfflineBudgetSet, PaymentOfflineApproved, PaymentSucceeded};
    use fusion_contracts::{
        CorrelationId, Currency, Decimal, Envelope, Event, EventId, NodeId, OrderId, PaymentId,
        Timestamp,
    };
    use fusion_sync::net::EventSink;

    let hub_dir = tempfile::tempdir().unwrap();
    let hub = serve_hub(hub_dir.path()).await;
    let till_key = net::SecretKey::generate();
    let till = till_key.public();
    hub.hub.state.store.enroll(till, "store-7").unwrap();
    let origin = NodeId::new("till-7").unwrap();
    let usd = |cents: i64| Decimal::new(cents, 2);
    let approved = |n: u128, cents| {
        Event::from(PaymentOfflineApproved {
            payment_id: PaymentId::from_u128(n),
            order_id: OrderId::from_u128(n),
            amount: usd(cents),
            currency: Currency::USD,
            floor_limit: usd(1000),
            reason: "provider unreachable".into(),
        })
    };
    let events = [
        Event::from(OfflineBudgetSet {
            share: usd(2000),
            currency: Currency::USD,
            previous: None,
        }),
        approved(1, 700),
        approved(2, 800),
        Event::from(PaymentSucceeded {
            payment_id: PaymentId::from_u128(1),
            order_id: OrderId::from_u128(1),
            amount: usd(700),
            currency: Currency::USD,
            change_due: None,
            provider_ref: Some("pi_1".into()),
        }),
    ];
    let envelopes: Vec<Envelope> = events
        .into_iter()
        .zip(1u64..)
        .map(|(event, seq)| {
            Envelope::new(
                EventId::from_u128(seq.into()),
                origin.clone(),
                seq,
                Timestamp::from_unix_ms(seq as i64),
                CorrelationId::new("budget").unwrap(),
                None,
                event,
            )
            .unwrap()
        })
        .collect();
    let store = hub.hub.state.store.clone();
    let journal = fusion_sync::proto::VecLog::new(origin.clone(), net::journal_key(&till_key));
    assert_eq!(
        store.store(till, journal.append_batch(&envelopes)).await,
        Ok(4)
    );
    let (status, budget) = hub.api.get("/escrow/budget?store=store-7").await;
    assert_eq!(status, 200);
    assert_eq!(
        budget,
        json!([{
            "storeId": "store-7", "currency": "USD", "cap": 20.0, "exposure": 8.0,
            "holders": [{ "origin": "till-7", "share": 20.0, "exposure": 8.0, "headroom": 12.0 }],
        }]),
        "the settled 7.00 no longer counts"
    );
    let (status, refused) = hub.api.get("/escrow/budget?shop=x").await;
    assert_eq!(status, 400, "{refused}");
    hub.stop().await;
}

/// A shared campaign waits for every holder's part to end; a holder lost for good would block
/// it, so reclaiming that till ends its part with the participants its log showed, and the
/// hub decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaiming_a_lost_holder_unblocks_a_shared_campaigns_decision() {
    use fusion_contracts::events::campaigns::{CampaignSnapshot, CampaignStatus};
    use fusion_contracts::events::{
        CampaignEnded, CampaignJoined, SeatsReceived, SeatsTransferred,
    };
    use fusion_contracts::{
        CampaignId, CorrelationId, Currency, CustomerId, Decimal, Envelope, Event, EventId, NodeId,
        ProductId, Sku, Timestamp,
    };
    use fusion_sync::net::EventSink;

    let hub_dir = tempfile::tempdir().unwrap();
    let hub = serve_hub(hub_dir.path()).await;
    let (secret_a, secret_b) = (net::SecretKey::generate(), net::SecretKey::generate());
    let (key_a, key_b) = (secret_a.public(), secret_b.public());
    hub.hub.state.store.enroll(key_a, "store-a").unwrap();
    hub.hub.state.store.enroll(key_b, "store-b").unwrap();
    let (a, b) = (
        NodeId::new("till-a").unwrap(),
        NodeId::new("till-b").unwrap(),
    );
    let id = CampaignId::from_u128(42);
    let snapshot = |participants: u32| CampaignSnapshot {
        id,
        product_id: ProductId::from_u128(1),
        sku: Sku::new("GB").unwrap(),
        min_participants: 2,
        max_participants: 4,
        price: Decimal::new(500, 2),
        original_price: Decimal::new(900, 2),
        currency: Currency::USD,
        start_time: Timestamp::from_unix_ms(0),
        end_time: Timestamp::from_unix_ms(1_000),
        actual_participants: participants,
        status: CampaignStatus::Active,
        created_at: Timestamp::from_unix_ms(0),
        updated_at: Timestamp::from_unix_ms(0),
    };
    let joined = |user: &str, participants| {
        Event::from(CampaignJoined {
            campaign_id: id,
            campaign: snapshot(participants),
            user_id: CustomerId::new(user).unwrap(),
        })
    };
    let log = |origin: &NodeId, events: Vec<Event>| -> Vec<Envelope> {
        events
            .into_iter()
            .zip(1u64..)
            .map(|(event, seq)| {
                Envelope::new(
                    EventId(uuid::Uuid::now_v7()),
                    origin.clone(),
                    seq,
                    Timestamp::from_unix_ms(seq as i64),
                    CorrelationId::new("seats").unwrap(),
                    None,
                    event,
                )
                .unwrap()
            })
            .collect()
    };
    let transfer = uuid::Uuid::from_u128(7);
    let from_a = log(
        &a,
        vec![
            SeatsTransferred {
                campaign_id: id,
                transfer_id: transfer,
                seats: 2,
                to: b.clone(),
                previous_seats: 4,
                available: 2,
                campaign: snapshot(0),
            }
            .into(),
            joined("a1", 1),
            CampaignEnded {
                campaign_id: id,
                campaign: snapshot(1),
                participants: vec![CustomerId::new("a1").unwrap()],
                seats_left: 1,
            }
            .into(),
        ],
    );
    let from_b = log(
        &b,
        vec![
            SeatsReceived {
                campaign_id: id,
                transfer_id: transfer,
                seats: 2,
                from: a.clone(),
                previous_seats: 0,
                available: 2,
                campaign: snapshot(0),
            }
            .into(),
            joined("b1", 1),
            joined("b2", 2),
        ],
    );
    let store = hub.hub.state.store.clone();
    let signed = |secret: &net::SecretKey, origin: &NodeId, envelopes: Vec<Envelope>| {
        fusion_sync::proto::VecLog::new(origin.clone(), net::journal_key(secret))
            .append_batch(&envelopes)
    };
    assert_eq!(
        store.store(key_a, signed(&secret_a, &a, from_a)).await,
        Ok(3)
    );
    assert_eq!(
        store.store(key_b, signed(&secret_b, &b, from_b)).await,
        Ok(3)
    );
    let path = format!("/campaigns/{id}/seats");
    let (_, row) = hub.api.get(&path).await;
    assert_eq!(row["decided"], Value::Null, "b's part has not ended: {row}");

    let (status, reclaim) = hub
        .api
        .call(
            reqwest::Method::POST,
            "/escrow/reclaim",
            Some(json!({ "nodeId": "till-b" })),
        )
        .await;
    assert_eq!(status, 200, "{reclaim}");
    assert_eq!(reclaim["campaigns"], json!([id.to_string()]));
    let (_, row) = hub.api.get(&path).await;
    assert_eq!(
        row["decided"], "closed",
        "1 + 2 participants reach the minimum of 2: {row}"
    );
    assert_eq!(row["ended"]["till-b"], json!(["b1", "b2"]));
    let (_, all) = hub.api.get("/escrow/campaigns").await;
    assert_eq!(all, json!([row]), "the list of shared campaigns");
    hub.stop().await;
}

/// Offline card budget moves between the tills of a store like stock: the giver's unused
/// budget goes down at once, the receiver's up once it has seen the transfer over the mesh,
/// and the hub's view of the store follows; the store's cap is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_card_budget_moves_between_tills() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = serve_hub(hub_dir.path()).await;
    let usd = |minor| fusion_contracts::Money {
        minor,
        currency: fusion_contracts::Currency::USD,
    };
    let policy = |share| fusion_node::card::PaymentPolicy {
        offline_floor_limit: Some(usd(5_000)),
        offline_budget: Some(usd(share)),
        ..Default::default()
    };
    let Pair {
        a,
        b,
        dir_b: _dir_b,
        _dir_a,
        ..
    } = pair(&hub, [policy(30_000), policy(10_000)]).await;
    let give = |to: &str, amount: f64| json!({ "to": to, "amount": { "amount": amount, "currency": "USD" } });
    let (status, refused) =
        post(&a, "/escrow/card-budget/transfer", give(&b.node_id, 300.01)).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (422, Some("amount")),
        "{refused}"
    );
    for (body, field) in [
        (give(&a.node_id, 1.0), "to"),
        (give(&b.node_id, 0.0), "amount.amount"),
        (
            json!({ "to": b.node_id, "amount": { "amount": 1, "currency": "XYZ" } }),
            "amount.currency",
        ),
    ] {
        let (status, refused) = post(&a, "/escrow/card-budget/transfer", body).await;
        assert_eq!(
            (status, refused["field"].as_str()),
            (400, Some(field)),
            "{refused}"
        );
    }
    let (status, after) = post(&a, "/escrow/card-budget/transfer", give(&b.node_id, 120.0)).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["cardBudget"]["share"], json!(180.0));
    eventually(&b.api, "/escrow", "b takes the budget in", |e| {
        e["cardBudget"]["share"] == json!(220.0)
    })
    .await;
    let at_hub = eventually(&hub.api, "/escrow/budget", "the hub follows", |rows| {
        rows[0]["holders"]
            .as_array()
            .is_some_and(|h| h.iter().any(|t| t["share"] == json!(220.0)))
    })
    .await;
    assert_eq!(
        at_hub[0]["cap"],
        json!(400.0),
        "the store's cap is unchanged: {at_hub}"
    );
    a.stop().await;
    b.stop().await;
    hub.stop().await;
}
