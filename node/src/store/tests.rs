//! Store tests on real redb files: format versioning, and that the state tables equal a replay
//! of the event log.

use fusion_contracts::commands::{
    AdjustStock, ArchiveProduct, CancelOrder, CreateProduct, OrderLine, PaymentCommand, PlaceOrder,
    SetStock, UpdateProduct,
};
use fusion_contracts::{Currency, CustomerId, Decimal, Money, OrderId, ProductId};
use redb::{Database, Key, ReadableDatabase, ReadableTable, TableDefinition, Value};

use super::exec;
use super::tables::Tables;
use super::tables::{
    self, CAMPAIGN_LIST, CAMPAIGNS, EVENTS, META, ORDER_LIST, ORDERS, PARTICIPANTS, PRODUCT_LIST,
    PRODUCT_SKUS, PRODUCTS, RESERVATIONS, STOCK, TIMERS,
};
use super::*;

fn open(dir: &Path) -> Result<Store, OpenError> {
    Store::open(dir, StoreOptions::default())
}

#[test]
fn a_store_of_another_format_version_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).unwrap().shutdown();
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format_version", 99u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = open(dir.path()).err().expect("version 99 must be refused");
    assert!(
        matches!(
            err,
            OpenError::UnknownFormat {
                found: 99,
                supported: FORMAT_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!(
            "has format version 99; this build reads only version {FORMAT_VERSION}"
        )),
        "{err}"
    );
}

#[test]
fn a_redb_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        let other: TableDefinition<u64, u64> = TableDefinition::new("other");
        txn.open_table(other).unwrap().insert(1, 1).unwrap();
        txn.commit().unwrap();
    }
    let err = open(dir.path())
        .err()
        .expect("a foreign file must be refused");
    assert!(matches!(err, OpenError::Foreign { .. }), "{err:?}");
    std::fs::write(dir.path().join(DB_FILE), b"not a database at all").unwrap();
    assert!(matches!(open(dir.path()), Err(OpenError::Database { .. })));
}

#[test]
fn the_node_id_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = store.node_id().clone();
    store.shutdown();
    drop(store);
    assert_eq!(open(dir.path()).unwrap().node_id(), &id);
}

fn request(command: Command) -> WriteRequest {
    WriteRequest {
        command,
        correlation_id: CorrelationId::new("test").unwrap(),
        command_id: Uuid::now_v7(),
        idempotency: None,
    }
}

fn usd(cents: i64) -> Money {
    Money {
        minor: cents,
        currency: Currency::USD,
    }
}

/// Every row of a table, as bytes.
fn dump<K: Key + 'static, V: Value + 'static>(
    db: &Database,
    table: TableDefinition<K, V>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(table).unwrap();
    table
        .iter()
        .unwrap()
        .map(|entry| {
            let (k, v) = entry.unwrap();
            (
                K::as_bytes(&k.value()).as_ref().to_vec(),
                V::as_bytes(&v.value()).as_ref().to_vec(),
            )
        })
        .collect()
}

fn dump_state(db: &Database) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    vec![
        dump(db, PRODUCTS),
        dump(db, PRODUCT_SKUS),
        dump(db, PRODUCT_LIST),
        dump(db, STOCK),
        dump(db, RESERVATIONS),
        dump(db, ORDERS),
        dump(db, ORDER_LIST),
        // The log without its commits' signatures (a replay signs nothing): hash and event.
        dump(db, EVENTS)
            .into_iter()
            .map(|(k, v)| {
                let (hash, envelope) = super::journal::split_entry(&v).unwrap();
                (k, [hash.as_slice(), envelope].concat())
            })
            .collect(),
        dump(db, CAMPAIGNS),
        dump(db, CAMPAIGN_LIST),
        dump(db, PARTICIPANTS),
        dump(db, TIMERS),
        dump(db, tables::PAYMENTS),
        dump(db, tables::ORDER_PAYMENTS),
        dump(db, tables::PAYMENT_FOLLOWUPS),
        dump(db, tables::SHIPMENTS),
        dump(db, tables::ORDER_SHIPMENTS),
        dump(db, tables::TRACKING_NUMBERS),
        dump(db, tables::ORDER_CORRELATIONS),
        dump(db, tables::ORDER_HOLDS),
        dump(db, tables::STORE_CREDIT),
        dump(db, tables::TRANSFERS_OUT),
        dump(db, tables::ORDER_RETURNS),
        dump(db, tables::REFUNDS_OWED),
        dump(db, tables::RECEIPT_HEADS),
        dump(db, tables::ORDER_RECEIPTS),
        dump(db, tables::RECEIPT_ORDERS),
        dump(db, tables::RECEIPT_PRINTS),
        dump(db, tables::ORDER_STAFF),
        dump(db, tables::RETURNS),
        dump(db, tables::RECEIPT_SEQS),
        dump(db, tables::DRAWERS),
        dump(db, tables::SESSIONS),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_log_rebuilds_the_state_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let product = ProductId(Uuid::now_v7());
    let sku = Sku::new("A").unwrap();
    let mut commands = vec![
        Command::Catalog(CatalogCommand::CreateProduct(CreateProduct {
            product_id: product,
            sku: sku.clone(),
            name: "A".into(),
            description: None,
            price: usd(250),
            inventory: 20,
            tax_class: None,
            category: None,
        })),
        Command::Inventory(InventoryCommand::SetStock(SetStock {
            sku: Sku::new("B").unwrap(),
            quantity: 3,
        })),
        Command::Inventory(InventoryCommand::AdjustStock(AdjustStock {
            sku: sku.clone(),
            delta: -2,
            reason: "broken".into(),
        })),
        Command::Catalog(CatalogCommand::UpdateProduct(UpdateProduct {
            product_id: product,
            name: Some("A2".into()),
            description: None,
            price: Some(Decimal::new(275, 2)),
            currency: None,
            sku: None,
            tax_class: None,
            category: None,
        })),
    ];
    let orders: Vec<OrderId> = (0..6).map(|_| OrderId(Uuid::now_v7())).collect();
    for (i, id) in orders.iter().enumerate() {
        commands.push(Command::Order(OrderCommand::PlaceOrder(PlaceOrder {
            order_id: *id,
            customer_id: CustomerId::new(format!("c{i}")).unwrap(),
            currency: Currency::USD,
            shipping_address: None,
            price_approver: Some("token:test".into()),
            lines: vec![
                OrderLine {
                    sku: sku.clone(),
                    quantity: 3,
                    price: Some(usd(275)),
                    category: None,
                    override_reason: None,
                    discount: None,
                },
                OrderLine {
                    sku: Sku::new("B").unwrap(),
                    quantity: 1,
                    price: Some(usd(100)),
                    category: None,
                    override_reason: None,
                    discount: None,
                },
            ],
            discount: None,
            staff: None,
        })));
    }
    commands.push(Command::Order(OrderCommand::CancelOrder(CancelOrder {
        order_id: orders[0],
        reason: None,
    })));
    commands.push(Command::Catalog(CatalogCommand::ArchiveProduct(
        ArchiveProduct {
            product_id: product,
        },
    )));
    // Stock rights given to another till, and a transfer taken in from one.
    commands.push(Command::Inventory(InventoryCommand::TransferStock(
        fusion_contracts::commands::TransferStock {
            transfer_id: Uuid::now_v7(),
            sku: sku.clone(),
            quantity: 2,
            to: fusion_contracts::NodeId::new("till-other").unwrap(),
        },
    )));
    commands.push(Command::Inventory(InventoryCommand::ReceiveStock(
        fusion_contracts::commands::ReceiveStock {
            transfer_id: Uuid::now_v7(),
            sku: Sku::new("B").unwrap(),
            quantity: 5,
            from: fusion_contracts::NodeId::new("till-other").unwrap(),
        },
    )));
    // Order 1 paid in cash, a unit of A back to that payment, its B exchanged for another B.
    let b_line = |order_id: OrderId| PlaceOrder {
        order_id,
        customer_id: CustomerId::new("c1").unwrap(),
        currency: Currency::USD,
        shipping_address: None,
        price_approver: Some("token:test".into()),
        lines: vec![OrderLine {
            sku: Sku::new("B").unwrap(),
            quantity: 1,
            price: Some(usd(100)),
            category: None,
            override_reason: None,
            discount: None,
        }],
        discount: None,
        staff: None,
    };
    let first_money = commands.len();
    commands.push(Command::Payment(PaymentCommand::CreatePayment(
        fusion_contracts::commands::CreatePayment {
            payment_id: fusion_contracts::PaymentId(Uuid::now_v7()),
            order_id: orders[1],
            amount: usd(925),
            tender: fusion_contracts::events::payments::Tender::Cash,
            payment_method_id: "cash".into(),
            tendered: None,
            capture: true,
            staff: None,
        },
    )));
    let give_back = |lines: Vec<(usize, u64)>, refund_to| fusion_contracts::commands::ReturnOrder {
        return_id: Uuid::now_v7(),
        order_id: orders[1],
        lines,
        restock: true,
        refund_to,
        reason: None,
        approver: None,
        staff: None,
    };
    commands.push(Command::Order(OrderCommand::ReturnOrder(give_back(
        vec![(0, 1)],
        fusion_contracts::commands::RefundWhere::Original,
    ))));
    commands.push(Command::Order(OrderCommand::Exchange(Box::new(
        fusion_contracts::commands::Exchange {
            take_back: give_back(vec![(1, 1)], fusion_contracts::commands::RefundWhere::Cash),
            order: b_line(OrderId(Uuid::now_v7())),
            payment_id: fusion_contracts::PaymentId(Uuid::now_v7()),
        },
    ))));
    for (i, command) in commands.into_iter().enumerate() {
        let applied = store.write(request(command)).await.unwrap();
        if i >= first_money {
            assert!(applied.decision.is_ok(), "{:?}", applied.decision);
        }
    }
    // Orders 0..=2 take B's 3 units, 3..=5 are refused, cancelling order 0 gives one back;
    // 5 more arrive from another till.
    let read = store.read().unwrap();
    assert_eq!(
        read.stock(&Sku::new("B").unwrap())
            .unwrap()
            .unwrap()
            .available,
        6
    );
    assert_eq!(read.transfers_in_transit().unwrap().len(), 1);
    assert!(read.order(orders[2]).unwrap().is_some());
    assert!(read.order(orders[3]).unwrap().is_none());
    let envelopes = read.events_after(0, usize::MAX).unwrap();
    drop(read);

    let replica = Database::builder()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .unwrap();
    tables::initialize(&replica).unwrap();
    tables::ensure_tables(&replica).unwrap();
    let txn = replica.begin_write().unwrap();
    {
        let mut t = Tables::open(&txn).unwrap();
        let mut prev = crate::domain::journal::GENESIS;
        for envelope in &envelopes {
            let bytes = envelope.encode();
            prev =
                crate::domain::journal::entry_hash(&prev, &envelope.origin, envelope.seq, &bytes);
            t.events
                .insert(
                    envelope.seq,
                    super::journal::entry_value(&prev, None, &bytes).as_slice(),
                )
                .unwrap();
            exec::project(&mut t, envelope).unwrap();
        }
    }
    txn.commit().unwrap();

    let path = store.path().to_path_buf();
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .unwrap();
    let original = Database::create(path).unwrap();
    assert_eq!(dump_state(&original), dump_state(&replica));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_campaign_places_orders_once_under_a_controlled_clock() {
    use std::sync::atomic::{AtomicI64, Ordering};

    use fusion_contracts::CampaignId;
    use fusion_contracts::commands::{
        CampaignCommand, CloseCampaign, CreateCampaign, JoinCampaign,
    };

    let dir = tempfile::tempdir().unwrap();
    let clock_ms = Arc::new(AtomicI64::new(1_000_000));
    let clock = clock_ms.clone();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            clock: Arc::new(move || Timestamp::from_unix_ms(clock.load(Ordering::SeqCst))),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let product = ProductId(Uuid::now_v7());
    let campaign = CampaignId(Uuid::now_v7());
    let commands = [
        Command::Catalog(CatalogCommand::CreateProduct(CreateProduct {
            product_id: product,
            sku: Sku::new("GB").unwrap(),
            name: "GB".into(),
            description: None,
            price: usd(1000),
            inventory: 1,
            tax_class: None,
            category: None,
        })),
        Command::Campaign(CampaignCommand::CreateCampaign(CreateCampaign {
            campaign_id: campaign,
            product_id: product,
            min_participants: 1,
            max_participants: 5,
            price: Decimal::new(750, 2),
            original_price: Decimal::new(1000, 2),
            start_at: Timestamp::from_unix_ms(0),
            end_at: Timestamp::from_unix_ms(2_000_000),
        })),
        Command::Campaign(CampaignCommand::JoinCampaign(JoinCampaign {
            campaign_id: campaign,
            user_id: CustomerId::new("a").unwrap(),
        })),
        Command::Campaign(CampaignCommand::JoinCampaign(JoinCampaign {
            campaign_id: campaign,
            user_id: CustomerId::new("b").unwrap(),
        })),
    ];
    for command in commands {
        store
            .write(request(command))
            .await
            .unwrap()
            .decision
            .unwrap();
    }
    let close = || {
        request(Command::Campaign(CampaignCommand::CloseCampaign(
            CloseCampaign {
                campaign_id: campaign,
            },
        )))
    };
    assert_eq!(
        store.read().unwrap().next_campaign_end().unwrap(),
        Some((Timestamp::from_unix_ms(2_000_000), campaign))
    );
    store.write(close()).await.unwrap().decision.unwrap();
    assert_eq!(
        store.read().unwrap().order_count().unwrap(),
        0,
        "not ended yet: nothing happens"
    );

    clock_ms.store(2_000_000, Ordering::SeqCst);
    let closed = store.write(close()).await.unwrap().decision.unwrap();
    let Outcome::Campaign(closed) = closed else {
        panic!("{closed:?}")
    };
    assert_eq!(
        closed.status,
        fusion_contracts::events::campaigns::CampaignStatus::Closed
    );
    let read = store.read().unwrap();
    assert_eq!(
        read.order_count().unwrap(),
        1,
        "stock 1: one order, one refusal"
    );
    assert_eq!(read.next_campaign_end().unwrap(), None, "the timer is gone");
    drop(read);
    store.write(close()).await.unwrap().decision.unwrap();
    assert_eq!(
        store.read().unwrap().order_count().unwrap(),
        1,
        "closing twice does nothing"
    );
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_a_sound_store_and_finds_a_gap_and_a_forged_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let product = ProductId(Uuid::now_v7());
    let sku = Sku::new("V").unwrap();
    store
        .write(request(Command::Catalog(CatalogCommand::CreateProduct(
            CreateProduct {
                product_id: product,
                sku: sku.clone(),
                name: "V".into(),
                description: None,
                price: usd(100),
                inventory: 10,
                tax_class: None,
                category: None,
            },
        ))))
        .await
        .unwrap();
    for i in 0..3 {
        store
            .write(request(Command::Order(OrderCommand::PlaceOrder(
                PlaceOrder {
                    order_id: OrderId(Uuid::now_v7()),
                    customer_id: CustomerId::new(format!("v{i}")).unwrap(),
                    currency: Currency::USD,
                    shipping_address: None,
                    price_approver: Some("token:test".into()),
                    lines: vec![OrderLine {
                        sku: sku.clone(),
                        quantity: 1,
                        price: Some(usd(100)),
                        category: None,
                        override_reason: None,
                        discount: None,
                    }],
                    discount: None,
                    staff: None,
                },
            ))))
            .await
            .unwrap();
    }
    let path = store.path().to_path_buf();
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .unwrap();
    let report = super::verify(dir.path()).unwrap();
    assert_eq!((report.events, report.products), (8, 1));

    // A product row that is not its document's projection.
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = Tables::open(&txn).unwrap();
            let mut row = tables::get_product(&t.products, product).unwrap().unwrap();
            row.product.price = usd(1);
            tables::put_product(&mut t, &row.product).unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(
        super::verify(dir.path()),
        Err(super::VerifyError::ProductDocument { .. })
    ));

    // A hole in the log.
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(EVENTS).unwrap().remove(5).unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        super::verify(dir.path()),
        Err(super::VerifyError::Journal(
            crate::domain::journal::Fault::Gap {
                expected_after: 4,
                found: 6
            }
        ))
    ));
}

#[test]
fn a_backup_copies_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let copy = dir.path().join("copy.redb");
    let info = store.backup_to(&copy).unwrap();
    assert_eq!(info.last_seq, 0);
    let names = |db: &Database| {
        let mut names: Vec<String> = db
            .begin_read()
            .unwrap()
            .list_tables()
            .unwrap()
            .map(|t| redb::TableHandle::name(&t).to_string())
            .collect();
        names.sort();
        names
    };
    let source = names(&store.shared.db);
    store.shutdown();
    assert_eq!(names(&Database::open(&copy).unwrap()), source);
    assert!(source.len() >= 29, "{source:?}");
}

mod journal;

/// A store of format 2 (orders without their lines as sold, products without tax class or
/// category, `order_pricing` beside them) opens upgraded: each order row is rebuilt from its
/// `order.created`, keeping what happened to it since; the version is 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_2_store_opens_with_its_orders_as_sold() {
    use fusion_contracts::events::{OrderItem, OrderStatus, ProductStatus, shipping::Address};
    use fusion_contracts::{NodeId, Timestamp};

    #[derive(serde::Serialize)]
    struct OrderV2 {
        id: OrderId,
        customer_id: CustomerId,
        items: Vec<OrderItem>,
        total: Money,
        status: OrderStatus,
        created_at: Timestamp,
        updated_at: Timestamp,
        flag: Option<String>,
        shipping_address: Option<Address>,
        hold_until: Option<Timestamp>,
    }
    #[derive(serde::Serialize)]
    struct ProductV2 {
        id: ProductId,
        sku: Sku,
        name: String,
        description: Option<String>,
        price: Money,
        status: ProductStatus,
        created_at: Timestamp,
        updated_at: Timestamp,
    }
    #[derive(serde::Serialize)]
    struct PeerOrderV2 {
        origin: NodeId,
        order: OrderV2,
    }
    let v2 = |o: crate::domain::Order| OrderV2 {
        id: o.id,
        customer_id: o.customer_id,
        items: o.items.into_iter().map(OrderItem::from).collect(),
        total: o.total,
        status: o.status,
        created_at: o.created_at,
        updated_at: o.updated_at,
        flag: o.flag,
        shipping_address: o.shipping_address,
        hold_until: o.hold_until,
    };

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let product = ProductId(Uuid::now_v7());
    store
        .write(request(Command::Catalog(CatalogCommand::CreateProduct(
            CreateProduct {
                product_id: product,
                sku: Sku::new("A").unwrap(),
                name: "A".into(),
                description: None,
                price: usd(275),
                inventory: 20,
                tax_class: None,
                category: None,
            },
        ))))
        .await
        .unwrap();
    let ids = [OrderId(Uuid::now_v7()), OrderId(Uuid::now_v7())];
    for id in ids {
        store
            .write(request(Command::Order(OrderCommand::PlaceOrder(
                PlaceOrder {
                    order_id: id,
                    customer_id: CustomerId::new("c").unwrap(),
                    currency: Currency::USD,
                    shipping_address: None,
                    price_approver: None,
                    lines: vec![OrderLine {
                        sku: Sku::new("A").unwrap(),
                        quantity: 2,
                        price: None,
                        category: None,
                        override_reason: None,
                        discount: None,
                    }],
                    discount: None,
                    staff: None,
                },
            ))))
            .await
            .unwrap();
    }
    store
        .write(request(Command::Order(OrderCommand::CancelOrder(
            CancelOrder {
                order_id: ids[0],
                reason: None,
            },
        ))))
        .await
        .unwrap();
    let read = store.read().unwrap();
    let before: Vec<_> = ids
        .iter()
        .map(|id| read.order(*id).unwrap().unwrap())
        .collect();
    let product_before = read.product(product).unwrap().unwrap();
    drop(read);
    assert_eq!(before[0].status, OrderStatus::Cancelled);
    let path = store.path().to_path_buf();
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .unwrap();

    // Back to format 2's layout. A peer's order is there too, under a made-up origin whose
    // log holds its order.created.
    let peer_order = OrderId(Uuid::now_v7());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut orders = txn.open_table(ORDERS).unwrap();
            for order in &before {
                let bytes = postcard::to_allocvec(&v2(order.clone())).unwrap();
                orders.insert(order.id.as_u128(), bytes.as_slice()).unwrap();
            }
            let mut products = txn.open_table(PRODUCTS).unwrap();
            let p = product_before.0.clone();
            let bytes = postcard::to_allocvec(&ProductV2 {
                id: p.id,
                sku: p.sku,
                name: p.name,
                description: p.description,
                price: p.price,
                status: p.status,
                created_at: p.created_at,
                updated_at: p.updated_at,
            })
            .unwrap();
            products.insert(p.id.as_u128(), bytes.as_slice()).unwrap();
            // The peer's order: the second order's order.created, as another origin's.
            let events = txn.open_table(EVENTS).unwrap();
            let seq = txn
                .open_table(ORDER_LIST)
                .unwrap()
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .find(|(_, id)| id.value() == ids[1].as_u128())
                .unwrap()
                .0
                .value();
            let row = events.get(seq).unwrap().unwrap().value().to_vec();
            let (_, bytes) = super::journal::split_entry(&row).unwrap();
            let mut created = fusion_contracts::Envelope::decode(bytes).unwrap();
            let peer = NodeId::new("till-peer").unwrap();
            created.origin = peer.clone();
            let fusion_contracts::Event::OrderCreated(e) = &mut created.event else {
                panic!("{created:?}")
            };
            e.order_id = peer_order;
            txn.open_table(tables::PEER_EVENTS)
                .unwrap()
                .insert((peer.as_str(), 1), created.encode().as_slice())
                .unwrap();
            let mut peer_row = v2(before[1].clone());
            peer_row.id = peer_order;
            peer_row.status = OrderStatus::Paid;
            let bytes = postcard::to_allocvec(&PeerOrderV2 {
                origin: peer,
                order: peer_row,
            })
            .unwrap();
            txn.open_table(tables::PEER_ORDERS)
                .unwrap()
                .insert(peer_order.as_u128(), bytes.as_slice())
                .unwrap();
            let pricing: TableDefinition<u128, &[u8]> = TableDefinition::new("order_pricing");
            txn.open_table(pricing)
                .unwrap()
                .insert(ids[1].as_u128(), [1u8, 2, 3].as_slice())
                .unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("format_version", 2u32.to_le_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }

    let store = open(dir.path()).unwrap();
    let read = store.read().unwrap();
    for order in &before {
        assert_eq!(&read.order(order.id).unwrap().unwrap(), order);
    }
    assert_eq!(read.product(product).unwrap().unwrap().0, product_before.0);
    let peer = read.peer_order(peer_order).unwrap().unwrap();
    assert_eq!(
        (peer.order.status, peer.order.items, peer.order.total),
        (OrderStatus::Paid, before[1].items.clone(), before[1].total)
    );
    drop(read);
    let path = store.path().to_path_buf();
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .unwrap();
    let db = Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let version = txn
        .open_table(META)
        .unwrap()
        .get("format_version")
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(version, FORMAT_VERSION.to_le_bytes());
    assert!(
        !txn.list_tables()
            .unwrap()
            .any(|t| redb::TableHandle::name(&t) == "order_pricing")
    );
}
