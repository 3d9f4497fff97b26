//! Catalog sync over iroh on loopback between a real node and a real hub (redb files, writers,
//! document sessions): `cargo bench -p fusion-hub --bench catalog` (env `BENCH_PRODUCTS`,
//! default 1,000).
//!
//! 1. A node with `BENCH_PRODUCTS` products meets a fresh hub: the time until the hub holds every
//!    product document, and the bytes those documents take on the hub.
//! 2. 50 price changes at the hub, one at a time: the time from the hub's durable edit until the
//!    node serves the new price (p50, p99, max).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fusion_contracts::commands::{CatalogCommand, CreateProduct, UpdateProduct};
use fusion_contracts::{CorrelationId, Currency, Decimal, Money, ProductId, Sku};
use fusion_hub::Hub;
use fusion_node::replication::{PeerLink, Role, SyncLinks};
use fusion_node::store::{Command, Store, StoreOptions, WriteRequest};
use fusion_sync::net;

const PRICE_CHANGES: usize = 50;

fn create(i: usize) -> WriteRequest {
    WriteRequest {
        command: Command::Catalog(CatalogCommand::CreateProduct(CreateProduct {
            product_id: ProductId(uuid::Uuid::now_v7()),
            sku: Sku::new(format!("SKU-{i:06}")).unwrap(),
            name: format!("Product {i}"),
            description: Some("A product of the benchmark catalog".into()),
            price: Money {
                minor: 1000 + i as i64,
                currency: Currency::USD,
            },
            inventory: 100,
            tax_class: None,
            category: None,
        })),
        correlation_id: CorrelationId::new("bench").unwrap(),
        command_id: uuid::Uuid::now_v7(),
        idempotency: None,
    }
}

fn price(store: &Store, id: ProductId) -> i64 {
    store
        .read()
        .unwrap()
        .product(id)
        .unwrap()
        .map_or(-1, |(p, _)| p.price.minor)
}

fn main() {
    let products: usize = std::env::var("BENCH_PRODUCTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(products));
}

async fn run(products: usize) {
    let node_dir = tempfile::tempdir().unwrap();
    let hub_dir = tempfile::tempdir().unwrap();
    let store = Store::open(node_dir.path(), StoreOptions::default()).unwrap();
    let mut ids = Vec::with_capacity(products);
    let writes: Vec<_> = (0..products)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.write(create(i)).await.unwrap() })
        })
        .collect();
    for write in writes {
        match write.await.unwrap().decision.unwrap() {
            fusion_node::store::Outcome::Product { product, .. } => ids.push(product.id),
            other => panic!("{other:?}"),
        }
    }

    let hub = Arc::new(Hub::open(hub_dir.path()).unwrap());
    let hub_ep = net::offline_endpoint(
        net::load_or_create_identity(hub_dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let hub_addr = hub_ep.bound_sockets()[0];
    let node_ep = net::offline_endpoint(
        net::load_or_create_identity(node_dir.path()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    hub.state.store.enroll(node_ep.id(), "bench").unwrap();
    let links = Arc::new(SyncLinks {
        endpoint_id: node_ep.id(),
        peers: vec![PeerLink::new(Role::Hub, hub_ep.id(), vec![hub_addr])],
        relay: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.serve(listener, hub_ep, std::future::pending())
                .await
                .unwrap()
        });
    }
    let started = Instant::now();
    let _sync = fusion_node::replication::start(&store, node_ep, &links);
    while hub.state.docs.products().len() < products {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "catalog sync stalled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let initial = started.elapsed();
    let hub_bytes = std::fs::metadata(hub_dir.path().join(fusion_hub::store::HUB_DB_FILE))
        .unwrap()
        .len();
    println!(
        "initial catalog sync: {products} products in {:.2} s ({:.0} products/s); hub.redb {} KiB",
        initial.as_secs_f64(),
        products as f64 / initial.as_secs_f64(),
        hub_bytes / 1024
    );

    let mut latencies = Vec::with_capacity(PRICE_CHANGES);
    for round in 0..PRICE_CHANGES {
        let id = ids[round * products / PRICE_CHANGES];
        let cents = 5_000 + round as i64;
        let edit = UpdateProduct {
            product_id: id,
            name: None,
            description: None,
            price: Some(Decimal::new(cents, 2)),
            currency: None,
            sku: None,
            tax_class: None,
            category: None,
        };
        let started = Instant::now();
        hub.state
            .docs
            .update_product(
                &edit,
                CorrelationId::new("bench").unwrap(),
                fusion_sync::clock::now(),
            )
            .unwrap();
        while price(&store, id) != cents {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "price change stalled"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "hub price change → served by the node ({PRICE_CHANGES} changes): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(latencies[PRICE_CHANGES / 2]),
        ms(latencies[PRICE_CHANGES * 99 / 100]),
        ms(latencies[PRICE_CHANGES - 1])
    );
}
