//! Replication throughput over iroh on loopback, into the hub's real redb store:
//! `cargo bench -p fusion-hub --bench replication` (env `BENCH_EVENTS`, default 100,000).
//!
//! A log of order events (order.created and inventory.reserved, as a till writes them) is built
//! in memory, then drained to a fresh hub: events/s, the time to drain the first 10,000
//! orders (20,000 events: order.created + inventory.reserved each), and bytes on the wire per
//! event (frame bytes / events).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fusion_contracts::commands::{OrderLine, PlaceOrder};
use fusion_contracts::{
    CorrelationId, Currency, CustomerId, Envelope, EventId, Money, NodeId, OrderId, Sku, Timestamp,
};
use fusion_hub::store::HubStore;
use fusion_sync::frame::{self, Frame};
use fusion_sync::net;
use fusion_sync::proto::VecLog;
use tokio::sync::Notify;

/// Realistic order events: what a till logs for a 3-line order.
fn build_log(origin: &NodeId, n: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n as usize);
    let mut seq = 0;
    // At the catalog's prices.
    let line = |sku: &str, _cents: i64| OrderLine {
        sku: Sku::new(sku).unwrap(),
        quantity: 1,
        price: None,
        category: None,
        override_reason: None,
        discount: None,
    };
    let list = |sku: &Sku| {
        let minor = match sku.as_str() {
            "COF-ESP-250" => 1299,
            "MUG-STONE" => 1450,
            _ => 650,
        };
        Some(Money {
            minor,
            currency: Currency::USD,
        })
    };
    while seq < n {
        let cmd = PlaceOrder {
            order_id: OrderId::from_u128(u128::from(seq) + 1),
            customer_id: CustomerId::new("walk-in").unwrap(),
            currency: Currency::USD,
            lines: vec![
                line("COF-ESP-250", 1299),
                line("MUG-STONE", 1450),
                line("SYR-VAN", 650),
            ],
            shipping_address: None,
            price_approver: None,
            discount: None,
            staff: None,
        };
        let events = fusion_node::domain::orders::place(
            &cmd,
            list,
            |_| 1_000_000,
            Timestamp::from_unix_ms(1_795_000_000_000),
            Some(1_800_000),
        )
        .unwrap();
        for event in events {
            seq += 1;
            let envelope = Envelope::new(
                EventId::from_u128(u128::from(seq)),
                origin.clone(),
                seq,
                Timestamp::from_unix_ms(1_795_000_000_000),
                CorrelationId::new("01a20bfc-1358-7347-8820-cf0d30707a48").unwrap(),
                Some(EventId::from_u128(u128::from(seq) << 64).0),
                event,
            )
            .unwrap();
            out.push(envelope.encode());
        }
    }
    out.truncate(n as usize);
    out
}

async fn drain(events: u64) -> (Duration, Duration, f64) {
    let dir = tempfile::tempdir().unwrap();
    let origin = NodeId::new("bench-till").unwrap();
    let encoded = build_log(&origin, events);
    let wire: usize = encoded
        .chunks(512)
        .enumerate()
        .map(|(i, chunk)| {
            frame::encode(&Frame::Events {
                origin: origin.clone(),
                first_seq: 1 + 512 * i as u64,
                events: chunk.to_vec(),
                checkpoint: fusion_rules::journal::JournalKey::from_secret(&[0; 32]).sign(
                    &origin,
                    512 * (i as u64 + 1),
                    [0; 32],
                ),
            })
            .len()
        })
        .sum();
    let till_secret = net::SecretKey::generate();
    let log = Arc::new(VecLog::new(origin.clone(), net::journal_key(&till_secret)));
    log.extend(encoded);
    let hub = Arc::new(HubStore::open(dir.path()).unwrap());
    let hub_ep = net::offline_endpoint(net::SecretKey::generate(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let till_ep = net::offline_endpoint(till_secret, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let till_id = till_ep.id();
    let addr = net::peer_addr(hub_ep.id(), hub_ep.bound_sockets()[0]);
    tokio::spawn(net::serve(
        hub_ep,
        hub.clone(),
        None,
        None,
        net::Gate::new(move |p| p == till_id),
    ));
    let started = Instant::now();
    let session = {
        let log = log.clone();
        tokio::spawn(async move {
            net::send_log(
                &till_ep,
                addr,
                log.as_ref(),
                &Notify::new(),
                &net::SendStatus::default(),
            )
            .await
        })
    };
    let mut first_10k_orders = None;
    while hub.position(&origin).unwrap() < events {
        if first_10k_orders.is_none() && hub.position(&origin).unwrap() >= 20_000 {
            first_10k_orders = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let total = started.elapsed();
    session.abort();
    (
        total,
        first_10k_orders.unwrap_or(total),
        wire as f64 / events as f64,
    )
}

fn main() {
    let events: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (total, first_orders, bytes) = runtime.block_on(drain(events));
    println!(
        "| events | time | events/s | first 10,000 orders (20,000 events) | bytes on the wire per event |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {events} | {:.2} s | {:.0} | {:.0} ms | {bytes:.0} |",
        total.as_secs_f64(),
        events as f64 / total.as_secs_f64(),
        first_orders.as_secs_f64() * 1000.0
    );
}
