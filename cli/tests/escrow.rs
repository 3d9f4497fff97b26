//! Real processes on loopback (docs/ESCROW.md): three tills of a store and a hub. The last 10
//! units of a sku are spread over the tills by transfers; the hub is killed and the tills are
//! cut off from each other (restarted without peers); all three then sell concurrently until
//! refused: never an 11th sale. After the heal every replica — each till and the hub —
//! reports the same rights for every till.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{NodeProcess, free_port, fusion, spawn_hub, spawn_node_with};

struct Till {
    dir: tempfile::TempDir,
    /// Its fixed sync address, so that peers find it again after a restart.
    sync: String,
    /// Its endpoint id (`fusion node id`).
    id: String,
}

/// `fusion node serve` for `till` of store s1 at its fixed sync address, with these peers and
/// hub.
async fn start(till: &Till, peers: &[String], hub: Option<&str>) -> NodeProcess {
    start_in("s1", till, peers, hub).await
}

async fn start_in(store: &str, till: &Till, peers: &[String], hub: Option<&str>) -> NodeProcess {
    let mut args = vec![
        "--sync-bind".to_string(),
        till.sync.clone(),
        "--store-id".to_string(),
        store.to_string(),
    ];
    if let Some(hub) = hub {
        args.push("--hub".to_string());
        args.push(hub.to_string());
    }
    for p in peers {
        args.push("--peer".to_string());
        args.push(p.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_node_with(till.dir.path(), &args).await
}

async fn call(
    node: &NodeProcess,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", node.url))
        .bearer_auth(&node.admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn escrow(node: &NodeProcess) -> Value {
    call(node, reqwest::Method::GET, "/escrow", Value::Null)
        .await
        .1
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check().await {
            Ok(()) => return,
            Err(state) => {
                assert!(Instant::now() < deadline, "timed out: {what}: {state}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Every till's (node id, held, reserved) of `sku` as a replica reports it.
fn holders(store: &Value, sku: &str) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = store
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["sku"] == sku)
        .flat_map(|s| s["holders"].as_array().cloned().unwrap_or_default())
        .map(|h| {
            let id = h["nodeId"]
                .as_str()
                .or(h["origin"].as_str())
                .unwrap()
                .to_string();
            (
                id,
                h["held"].as_u64().unwrap(),
                h["reserved"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `fusion hub serve` flags with fixed HTTP and sync ports, so a restarted hub is found again.
fn fixed_hub_args() -> Vec<String> {
    vec![
        "--listen".into(),
        format!("127.0.0.1:{}", free_port()),
        "--sync-bind".into(),
        format!("127.0.0.1:{}", free_port()),
    ]
}

fn node_id_of(dir: &Path) -> String {
    let (code, id) = fusion(&["node", "id", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    id.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_ten_units_sold_from_three_cut_off_tills_never_sell_eleven() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub_args = fixed_hub_args();
    let hub_args: Vec<&str> = hub_args.iter().map(String::as_str).collect();
    let mut hub = spawn_hub(hub_dir.path(), &hub_args).await;
    let hub_target = [
        "--url",
        hub.url.as_str(),
        "--data-dir",
        hub_dir.path().to_str().unwrap(),
    ];
    let tills: Vec<Till> = (0..3)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let id = node_id_of(dir.path());
            Till {
                sync: format!("127.0.0.1:{}", free_port()),
                dir,
                id,
            }
        })
        .collect();
    for t in &tills {
        let enroll = [
            &["hub", "enroll", t.id.as_str(), "--store", "s1"][..],
            &hub_target[..],
        ]
        .concat();
        assert_eq!(fusion(&enroll).0, 0);
    }
    let flag = |t: &Till| format!("{}@{}", t.id, t.sync);
    let peers_of = |i: usize| -> Vec<String> {
        (0..3)
            .filter(|j| *j != i)
            .map(|j| flag(&tills[j]))
            .collect()
    };
    let hub_flag = hub.endpoint.clone();
    let mut nodes = Vec::new();
    for (i, till) in tills.iter().enumerate() {
        nodes.push(start(till, &peers_of(i), Some(&hub_flag)).await);
    }
    // Each till's node id: the holder name in events and escrow reports.
    let mut node_ids = Vec::new();
    for n in &nodes {
        node_ids.push(escrow(n).await["nodeId"].as_str().unwrap().to_string());
    }

    // Till 0 receives the last 10 units and gives 3 to each of the others.
    let (status, _) = call(
        &nodes[0],
        reqwest::Method::POST,
        "/products",
        json!({ "sku": "LAST", "name": "Last", "price": 9, "currency": "USD", "inventory": 10 }),
    )
    .await;
    assert_eq!(status, 201);
    for to in &node_ids[1..] {
        let body = json!({ "to": to, "quantity": 3 });
        let (status, _) = call(
            &nodes[0],
            reqwest::Method::POST,
            "/inventory/LAST/transfer",
            body,
        )
        .await;
        assert_eq!(status, 200);
    }
    for node in &nodes[1..] {
        until("the transfers are taken in", || async move {
            let e = escrow(node).await;
            match e["stock"][0]["held"].as_u64() {
                Some(3) => Ok(()),
                _ => Err(e.to_string()),
            }
        })
        .await;
    }

    // The hub dies; the tills are cut off from each other (restarted without peers).
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    for n in nodes.drain(..) {
        n.sigterm().await;
    }
    for t in &tills {
        nodes.push(start(t, &[], None).await);
    }

    // All three sell concurrently, one unit at a time, until each is refused.
    let order =
        json!({ "customerId": "c", "items": [{ "sku": "LAST", "quantity": 1, "price": 9 }] });
    let mut sellers = Vec::new();
    for n in &nodes {
        let (url, admin, order) = (n.url.clone(), n.admin.clone(), order.clone());
        sellers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut sold, mut refused) = (0u64, 0u64);
            for _ in 0..12 {
                let r = http
                    .post(format!("{url}/orders"))
                    .bearer_auth(&admin)
                    .json(&order)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    201 => sold += 1,
                    422 => refused += 1,
                    other => panic!("unexpected {other}"),
                }
            }
            (sold, refused)
        }));
    }
    let mut sold = 0;
    for s in sellers {
        let (n, refused) = s.await.unwrap();
        assert!(refused > 0, "every till ran into its headroom");
        sold += n;
    }
    assert_eq!(sold, 10, "exactly the last ten: never an eleventh");

    // Heal: the hub is back, the tills see each other again. Every replica reports the same.
    let mut hub = spawn_hub(hub_dir.path(), &hub_args).await;
    for n in nodes.drain(..) {
        n.sigterm().await;
    }
    for (i, till) in tills.iter().enumerate() {
        nodes.push(start(till, &peers_of(i), Some(&hub.endpoint)).await);
    }
    let hub_url = hub.url.clone();
    let token = std::fs::read_to_string(hub_dir.path().join("admin.token")).unwrap();
    let expected: Vec<(String, u64, u64)> = {
        let mut e: Vec<(String, u64, u64)> = node_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), 0, if i == 0 { 4 } else { 3 }))
            .collect();
        e.sort();
        e
    };
    for n in &nodes {
        let expected = expected.clone();
        until("the till agrees", || {
            let expected = expected.clone();
            async move {
                let e = escrow(n).await;
                let seen = holders(&e["store"], "LAST");
                if seen == expected {
                    Ok(())
                } else {
                    Err(format!("{seen:?}"))
                }
            }
        })
        .await;
    }
    until("the hub agrees", || {
        let (url, token, expected) = (hub_url.clone(), token.clone(), expected.clone());
        async move {
            let e = hub_get(&url, &token, "/escrow?sku=LAST").await?;
            let seen = holders(&e, "LAST");
            if seen == expected && e[0]["inTransit"] == 0 {
                Ok(())
            } else {
                Err(e.to_string())
            }
        }
    })
    .await;

    // The CLI moves rights through the hub: till 0 restocks 2 and gives them to the hub
    // (`--to hub`); the hub refuses to give more than it holds; a rebalance gives both to
    // tills (all three sold, so the largest remainders win); `fusion escrow` on a till shows it.
    let token_file = hub_dir.path().join("admin.token");
    let hub_target = [
        "--url",
        hub_url.as_str(),
        "--token-file",
        token_file.to_str().unwrap(),
    ];
    let node_target = |i: usize| {
        vec![
            "--url".to_string(),
            nodes[i].url.clone(),
            "--data-dir".to_string(),
            tills[i].dir.path().display().to_string(),
        ]
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fusion(&args)
    };
    let strings = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (code, _) = run([
        strings(&["stock", "adjust", "LAST", "2", "--reason", "restock"]),
        node_target(0),
    ]
    .concat());
    assert_eq!(code, 0);
    let (code, out) = run([
        strings(&[
            "stock",
            "transfer",
            "LAST",
            "--to",
            "hub",
            "--quantity",
            "2",
        ]),
        node_target(0),
    ]
    .concat());
    assert_eq!(code, 0, "{out}");
    until("the hub takes the 2 in", || {
        let hub_target = hub_target.map(str::to_string);
        async move {
            let (_, out) = fusion(
                &[
                    &["hub", "escrow", "--sku", "LAST", "--json"][..],
                    &hub_target.iter().map(String::as_str).collect::<Vec<_>>(),
                ]
                .concat(),
            );
            let rows: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            let hub_held = rows[0]["holders"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| h["origin"] == rows[0]["hubHolder"])
                .and_then(|h| h["held"].as_u64());
            if hub_held == Some(2) {
                Ok(())
            } else {
                Err(out)
            }
        }
    })
    .await;
    let give = |quantity: &str| {
        let mut args = strings(&[
            "hub",
            "escrow",
            "give",
            "--store",
            "s1",
            "--sku",
            "LAST",
            "--to",
            node_ids[1].as_str(),
            "--quantity",
            quantity,
        ]);
        args.extend(strings(&hub_target));
        run(args)
    };
    assert_ne!(give("3").0, 0, "the hub holds only 2");
    let (code, moved) = run([
        strings(&["hub", "escrow", "rebalance", "--json"]),
        strings(&hub_target),
    ]
    .concat());
    assert_eq!(code, 0, "{moved}");
    let moved: Value = serde_json::from_str(&moved).unwrap();
    assert_eq!(
        moved
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["quantity"].as_u64().unwrap())
            .sum::<u64>(),
        2,
        "{moved}"
    );
    let to = moved[0]["to"].as_str().unwrap().to_string();
    let i = node_ids.iter().position(|id| *id == to).unwrap();
    // A till without an offline card budget has none to give: refused (exit 3, a 4xx).
    let (code, _) = run([
        strings(&[
            "escrow",
            "give-budget",
            "--to",
            node_ids[1].as_str(),
            "--amount",
            "1.00",
        ]),
        node_target(0),
    ]
    .concat());
    assert_eq!(code, 3);
    until("the till takes the hub's unit in", || {
        let args = [strings(&["escrow", "--json"]), node_target(i)].concat();
        async move {
            let (_, out) = run(args);
            let e: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            if e["stock"][0]["held"] == 1 {
                Ok(())
            } else {
                Err(out)
            }
        }
    })
    .await;
    for n in nodes {
        n.sigterm().await;
    }
    hub.child.start_kill().unwrap();
}

/// GET on the hub's API with `token`.
async fn hub_get(url: &str, token: &str, path: &str) -> Result<Value, String> {
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(token.trim())
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

fn new_till() -> Till {
    let dir = tempfile::tempdir().unwrap();
    let id = node_id_of(dir.path());
    Till {
        sync: format!("127.0.0.1:{}", free_port()),
        dir,
        id,
    }
}

/// The scenario for campaign seats: a campaign of store A with 6 seats, 3 of them given
/// to a till of store B through the hub; the hub is SIGKILLed (the stores only meet at the
/// hub), and 5 customers at each store try to join: exactly 6 join. At the end each till
/// records its part while the hub is still down; when the hub is back it decides once
/// (successful: 6 ≥ 2), each store learns the outcome and places its own participants'
/// orders, and every replica reports the same counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_seats_joined_from_two_cut_off_stores_never_exceed_the_maximum() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub_args = fixed_hub_args();
    let hub_args: Vec<&str> = hub_args.iter().map(String::as_str).collect();
    let mut hub = spawn_hub(hub_dir.path(), &hub_args).await;
    let hub_url = hub.url.clone();
    let hub_target = [
        "--url",
        hub_url.as_str(),
        "--data-dir",
        hub_dir.path().to_str().unwrap(),
    ];
    let (till_a, till_b) = (new_till(), new_till());
    for (t, store) in [(&till_a, "store-a"), (&till_b, "store-b")] {
        let enroll = [
            &["hub", "enroll", t.id.as_str(), "--store", store][..],
            &hub_target[..],
        ]
        .concat();
        assert_eq!(fusion(&enroll).0, 0);
    }
    let hub_flag = hub.endpoint.clone();
    let a = start_in("store-a", &till_a, &[], Some(&hub_flag)).await;
    let b = start_in("store-b", &till_b, &[], Some(&hub_flag)).await;
    let b_id = escrow(&b).await["nodeId"].as_str().unwrap().to_string();
    let post = |node: &NodeProcess, path: String, body: Value| {
        let (url, admin) = (node.url.clone(), node.admin.clone());
        async move {
            let response = reqwest::Client::new()
                .post(format!("{url}{path}"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    // Store A has the product and stock; the product reaches store B through the hub, which
    // counts its own stock.
    let (status, product) = post(
        &a,
        "/products".into(),
        json!({ "sku": "GB", "name": "Group box", "price": 9, "currency": "USD", "inventory": 10 }),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    until("the product reaches store B", || async {
        match call(&b, reqwest::Method::GET, "/products/by-sku/GB", Value::Null).await {
            (200, _) => Ok(()),
            (status, body) => Err(format!("{status} {body}")),
        }
    })
    .await;
    let (status, _) = post(
        &b,
        "/inventory/GB/adjust".into(),
        json!({ "delta": 10, "reason": "delivery" }),
    )
    .await;
    assert_eq!(status, 200);
    let now = fusion_sync::clock::now().unix_ms();
    let end_ms = now + 20_000;
    let (status, campaign) = post(
        &a,
        "/campaigns".into(),
        json!({
            "productId": product["id"], "minParticipants": 2, "maxParticipants": 6,
            "price": 5, "originalPrice": 9,
            "startTime": fusion_contracts::Timestamp::from_unix_ms(now - 1000),
            "endTime": fusion_contracts::Timestamp::from_unix_ms(end_ms),
        }),
    )
    .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_string();

    // A gives the hub 3 seats; the hub passes them to B (the CLI on both sides).
    let a_target = [
        "--url".to_string(),
        a.url.clone(),
        "--data-dir".to_string(),
        till_a.dir.path().display().to_string(),
    ];
    let give = [
        &[
            "campaigns",
            "seats",
            id.as_str(),
            "--to",
            "hub",
            "--seats",
            "3",
            "--json",
        ][..],
        &a_target.iter().map(String::as_str).collect::<Vec<_>>()[..],
    ]
    .concat();
    let (code, rights) = fusion(&give);
    assert_eq!(code, 0, "{rights}");
    let rights: Value = serde_json::from_str(&rights).unwrap();
    assert_eq!(
        (rights["free"].as_u64(), rights["shared"].as_bool()),
        (Some(3), Some(true))
    );
    let seats_at_hub = || {
        let (_, out) = fusion(
            &[
                &["hub", "seats", id.as_str(), "--json"][..],
                &hub_target[..],
            ]
            .concat(),
        );
        serde_json::from_str::<Value>(&out).unwrap_or(Value::Null)
    };
    until("the hub takes the 3 seats in", || async {
        let row = seats_at_hub();
        if row["hubSeats"] == 3 {
            Ok(())
        } else {
            Err(row.to_string())
        }
    })
    .await;
    let pass_on = |seats: &str| {
        let give = [
            "hub",
            "seats",
            id.as_str(),
            "--give-to",
            b_id.as_str(),
            "--seats",
            seats,
        ];
        fusion(&[&give[..], &hub_target[..]].concat()).0
    };
    assert_ne!(pass_on("4"), 0, "the hub holds only 3");
    assert_eq!(pass_on("3"), 0);
    let seats_of = |e: &Value, id: &str| -> Value {
        e["seats"]
            .as_array()
            .and_then(|s| s.iter().find(|r| r["campaignId"] == id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    until("B takes the 3 seats in", || async {
        let e = escrow(&b).await;
        if seats_of(&e, &id)["free"] == 3 {
            Ok(())
        } else {
            Err(e.to_string())
        }
    })
    .await;

    // The hub dies: the two stores cannot reach each other. Five customers at each store try
    // to join at once: exactly 3 join at each, 6 in all — never a seventh.
    hub.child.start_kill().unwrap();
    let _ = hub.child.wait().await;
    let join = |node: &NodeProcess, user: String| {
        post(
            node,
            format!("/campaigns/{id}/join"),
            json!({ "userId": user }),
        )
    };
    let attempts: Vec<_> = (0..5)
        .flat_map(|i| {
            [
                tokio::spawn(join(&a, format!("a{i}"))),
                tokio::spawn(join(&b, format!("b{i}"))),
            ]
        })
        .collect();
    let mut results = Vec::new();
    for attempt in attempts {
        results.push(attempt.await.unwrap());
    }
    let joined: Vec<u16> = results.iter().map(|(status, _)| *status).collect();
    let (a_ok, b_ok) = (
        joined.iter().step_by(2).filter(|s| **s == 200).count(),
        joined
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|s| **s == 200)
            .count(),
    );
    assert_eq!((a_ok, b_ok), (3, 3), "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (409, Some("campaign_full")),
            "{body}"
        );
    }

    // The end passes with the hub still down: each till records its part.
    for node in [&a, &b] {
        until("the till's part ends", || async {
            let e = escrow(node).await;
            if seats_of(&e, &id)["ended"] == true {
                Ok(())
            } else {
                Err(e.to_string())
            }
        })
        .await;
    }
    assert!(fusion_sync::clock::now().unix_ms() >= end_ms);

    // The hub is back: it decides once; both stores learn it and place their orders.
    let hub = spawn_hub(hub_dir.path(), &hub_args).await;
    until("the hub decides", || async {
        let row = seats_at_hub();
        if row["decided"] == "closed" {
            Ok(())
        } else {
            Err(row.to_string())
        }
    })
    .await;
    let row = seats_at_hub();
    let ended: Vec<usize> = row["ended"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_array().unwrap().len())
        .collect();
    assert_eq!(ended, [3, 3], "{row}");
    for node in [&a, &b] {
        until("the till settles its part", || async {
            let (_, c) = call(
                node,
                reqwest::Method::GET,
                &format!("/campaigns/{id}"),
                Value::Null,
            )
            .await;
            if c["status"] == "closed" && c["actualParticipants"] == 6 {
                Ok(())
            } else {
                Err(c.to_string())
            }
        })
        .await;
        let (_, orders) = call(node, reqwest::Method::GET, "/orders", Value::Null).await;
        let campaign_orders = orders
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["items"][0]["category"] == "group-buying")
            .count();
        assert_eq!(
            campaign_orders, 3,
            "each store orders for its own participants: {orders}"
        );
    }
    let token = std::fs::read_to_string(hub_dir.path().join("admin.token")).unwrap();
    let participants = hub_get(&hub.url, &token, &format!("/campaigns/{id}/participants"))
        .await
        .unwrap();
    assert_eq!(participants.as_array().unwrap().len(), 6, "{participants}");
    // The owning till wrote the outcome into the campaign's document: the fleet catalog and
    // store B's (which holds no document of its own about it) show it too.
    until("the hub's catalog shows the outcome", || {
        let (url, token) = (hub.url.clone(), token.clone());
        let path = format!("/campaigns/{id}");
        async move {
            let c = hub_get(&url, &token, &path).await?;
            if c["status"] == "closed" && c["actualParticipants"] == 6 {
                Ok(())
            } else {
                Err(c.to_string())
            }
        }
    })
    .await;
    a.sigterm().await;
    b.sigterm().await;
    drop(hub);
}

/// Returns across a partition (issue 17, part 5), real processes: till 0 sells an order of one
/// unit; till 1 learns it through the mesh. Online, a return asked at till 1 fetches the
/// return rights from till 0. Then the hub dies and the tills are cut off: asked at both for
/// the order's last unit, exactly one refunds it (the holder) and the other answers 409 naming
/// where the rights are. After the heal both show the same returned quantities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_unit_returned_at_two_cut_off_tills_is_refunded_once() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub_args = fixed_hub_args();
    let hub_args: Vec<&str> = hub_args.iter().map(String::as_str).collect();
    let mut hub = spawn_hub(hub_dir.path(), &hub_args).await;
    let hub_target = [
        "--url",
        hub.url.as_str(),
        "--data-dir",
        hub_dir.path().to_str().unwrap(),
    ];
    let tills: Vec<Till> = (0..2).map(|_| new_till()).collect();
    for t in &tills {
        let enroll = [
            &["hub", "enroll", t.id.as_str(), "--store", "s1"][..],
            &hub_target[..],
        ]
        .concat();
        assert_eq!(fusion(&enroll).0, 0);
    }
    let flag = |t: &Till| format!("{}@{}", t.id, t.sync);
    let peers_of = |i: usize| vec![flag(&tills[1 - i])];
    let mut nodes = Vec::new();
    for (i, till) in tills.iter().enumerate() {
        nodes.push(start(till, &peers_of(i), Some(&hub.endpoint)).await);
    }
    let (status, _) = call(
        &nodes[0],
        reqwest::Method::POST,
        "/products",
        json!({ "sku": "MUG", "name": "Mug", "price": 5, "currency": "USD", "inventory": 10 }),
    )
    .await;
    assert_eq!(status, 201);
    // Two paid orders at till 0: one of two mugs, one of a single mug.
    let mut orders = Vec::new();
    for quantity in [2, 1] {
        let (status, order) = call(
            &nodes[0],
            reqwest::Method::POST,
            "/orders",
            json!({ "customerId": "c", "items": [{ "sku": "MUG", "quantity": quantity }] }),
        )
        .await;
        assert_eq!(status, 201, "{order}");
        let id = order["id"].as_str().unwrap().to_string();
        let (status, paid) = call(
            &nodes[0],
            reqwest::Method::POST,
            "/payments",
            json!({ "orderId": id, "amount": order["total"], "currency": "USD", "paymentMethodId": "cash" }),
        )
        .await;
        assert_eq!(status, 201, "{paid}");
        orders.push(id);
    }
    for id in &orders {
        let path = format!("/orders/{id}");
        let node = &nodes[1];
        until("till 1 knows the paid order", || {
            let path = path.clone();
            async move {
                let (status, o) = call(node, reqwest::Method::GET, &path, Value::Null).await;
                if status == 200 && o["status"] == "fulfilled" {
                    Ok(())
                } else {
                    Err(o.to_string())
                }
            }
        })
        .await;
    }
    // Online: till 1 takes a return of till 0's order, fetching the rights over the mesh.
    // Back to the order's own payments it cannot: they are till 0's records.
    let (status, refused) = call(
        &nodes[1],
        reqwest::Method::POST,
        &format!("/orders/{}/returns", orders[0]),
        json!({ "lines": [{ "sku": "MUG", "quantity": 1 }], "refundTo": { "kind": "original" } }),
    )
    .await;
    assert_eq!(
        (status, refused["error"].clone()),
        (409, json!("tenders_at_another_till")),
        "{refused}"
    );
    let back = json!({ "lines": [{ "sku": "MUG", "quantity": 1 }] });
    let (status, returned) = call(
        &nodes[1],
        reqwest::Method::POST,
        &format!("/orders/{}/returns", orders[0]),
        back.clone(),
    )
    .await;
    assert_eq!(status, 201, "{returned}");
    assert_eq!(returned["refund"], json!(5.00));

    // The hub dies; the tills are cut off from each other.
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    for n in nodes.drain(..) {
        n.sigterm().await;
    }
    for t in &tills {
        nodes.push(start(t, &[], None).await);
    }
    // Both asked for each order's last unit at once: one refund per unit, never two.
    let mut answers = Vec::new();
    for id in &orders {
        let path = format!("/orders/{id}/returns");
        let (a, b) = tokio::join!(
            call(&nodes[0], reqwest::Method::POST, &path, back.clone()),
            call(&nodes[1], reqwest::Method::POST, &path, back.clone()),
        );
        answers.push((a, b));
    }
    // Order 0's rights moved to till 1 (online return); order 1's stayed with till 0.
    let ((a0, a0_body), (b0, b0_body)) = answers[0].clone();
    assert_eq!((a0, b0), (409, 201), "{a0_body} {b0_body}");
    assert_eq!(a0_body["error"], "return_rights_elsewhere");
    assert!(
        a0_body["message"]
            .as_str()
            .unwrap()
            .contains(orders[0].as_str()),
        "{a0_body}"
    );
    let ((a1, a1_body), (b1, b1_body)) = answers[1].clone();
    assert_eq!((a1, b1), (201, 409), "{a1_body} {b1_body}");
    assert_eq!(b1_body["error"], "return_rights_elsewhere");

    // Heal: both show every order fully returned, once.
    let hub = spawn_hub(hub_dir.path(), &hub_args).await;
    for n in nodes.drain(..) {
        n.sigterm().await;
    }
    for (i, till) in tills.iter().enumerate() {
        nodes.push(start(till, &peers_of(i), Some(&hub.endpoint)).await);
    }
    for node in &nodes {
        for (id, expected) in orders.iter().zip([json!([2]), json!([1])]) {
            let path = format!("/orders/{id}");
            until("both tills show the same returns", || {
                let (path, expected) = (path.clone(), expected.clone());
                async move {
                    let (_, o) = call(node, reqwest::Method::GET, &path, Value::Null).await;
                    if o["returned"] == expected {
                        Ok(())
                    } else {
                        Err(o.to_string())
                    }
                }
            })
            .await;
        }
    }
    // And nothing more comes back anywhere.
    for node in &nodes {
        let (status, _) = call(
            node,
            reqwest::Method::POST,
            &format!("/orders/{}/returns", orders[1]),
            back.clone(),
        )
        .await;
        assert!(status == 422 || status == 409, "{status}");
    }
    drop(hub);
}
