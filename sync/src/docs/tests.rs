use super::*;
use proptest::prelude::*;

fn product() -> Product {
    Product {
        id: ProductId::from_u128(7),
        sku: Sku::new("TEA").unwrap(),
        name: "Tea".into(),
        description: None,
        price: Money {
            minor: 450,
            currency: Currency::USD,
        },
        status: ProductStatus::Active,
        created_at: Timestamp::from_unix_ms(1_000),
        updated_at: Timestamp::from_unix_ms(1_000),
        tax_class: None,
        category: None,
    }
}

fn id() -> DocId {
    DocId::product(ProductId::from_u128(7))
}

/// Runs the sync protocol between two sets until neither has anything to say.
fn sync_pair(a: &mut DocSet, b: &mut DocSet, doc: &DocId) -> usize {
    let (mut sa, mut sb) = (SyncState::new(), SyncState::new());
    let mut rounds = 0;
    loop {
        let mut quiet = true;
        if let Some(m) = a.generate(doc, &mut sa).unwrap() {
            b.receive(doc, &mut sb, &m).unwrap();
            quiet = false;
        }
        if let Some(m) = b.generate(doc, &mut sb).unwrap() {
            a.receive(doc, &mut sa, &m).unwrap();
            quiet = false;
        }
        if quiet {
            return rounds;
        }
        rounds += 1;
        assert!(rounds < 20, "sync did not settle");
    }
}

/// A hub and a store that both hold the product the store created.
fn hub_and_store() -> (DocSet, DocSet) {
    let mut hub = DocSet::new(b"hub");
    let mut store = DocSet::new(b"store");
    store
        .edit(&id(), |d| create_product(d, &product()))
        .unwrap();
    sync_pair(&mut store, &mut hub, &id());
    (hub, store)
}

fn read(set: &mut DocSet) -> Product {
    read_product(set.get(&id()).unwrap(), ProductId::from_u128(7)).unwrap()
}

#[test]
fn doc_ids_are_canonical_and_bounded() {
    let canonical = DocId::product(ProductId::from_u128(7));
    assert_eq!(DocId::parse(canonical.as_str()).unwrap(), canonical);
    for bad in [
        "product/00000000-0000-0000-0000-00000000000G",
        "product/00000000000000000000000000000007",
        "order/00000000-0000-0000-0000-000000000007",
        "",
        &"x".repeat(500),
    ] {
        assert!(DocId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn price_at_hub_and_description_at_store_are_both_kept() {
    let (mut hub, mut store) = hub_and_store();

    let mut at_hub = read(&mut hub);
    at_hub.price.minor = 500;
    hub.edit(&id(), |d| {
        update_product(d, &at_hub, &[ProductField::Price])
    })
    .unwrap();
    let mut at_store = read(&mut store);
    at_store.description = Some("Green, loose leaf".into());
    store
        .edit(&id(), |d| {
            update_product(d, &at_store, &[ProductField::Description])
        })
        .unwrap();

    sync_pair(&mut store, &mut hub, &id());
    let (h, s) = (read(&mut hub), read(&mut store));
    assert_eq!(h, s);
    assert_eq!(h.price.minor, 500);
    assert_eq!(h.description.as_deref(), Some("Green, loose leaf"));
}

#[test]
fn chunks_reload_to_the_same_document_and_compact() {
    let mut set = DocSet::new(b"a");
    let mut stored: Vec<Vec<u8>> = Vec::new();
    let mut p = product();
    set.edit(&id(), |d| create_product(d, &p)).unwrap();
    for i in 0..(COMPACT_AFTER + 5) {
        p.price.minor = 100 + i64::from(i);
        set.edit(&id(), |d| update_product(d, &p, &[ProductField::Price]))
            .unwrap();
        for chunk in set.take_chunks() {
            match chunk {
                Chunk::Append { index, bytes, .. } => {
                    assert_eq!(index as usize, stored.len());
                    stored.push(bytes);
                }
                Chunk::Compacted { bytes, .. } => stored = vec![bytes],
            }
        }
        assert!(stored.len() <= COMPACT_AFTER as usize);
    }
    let mut reloaded = DocSet::new(b"a");
    reloaded.load(id(), &stored).unwrap();
    assert_eq!(read(&mut reloaded), read(&mut set));
    assert_eq!(reloaded.heads(&id()), set.heads(&id()));
}

#[test]
fn lost_chunks_are_saved_whole_next_time() {
    let mut set = DocSet::new(b"a");
    set.edit(&id(), |d| create_product(d, &product())).unwrap();
    let first = set.take_chunks();
    let mut p = product();
    p.name = "Chai".into();
    set.edit(&id(), |d| update_product(d, &p, &[ProductField::Name]))
        .unwrap();
    let lost = set.take_chunks();
    set.chunks_lost(&lost);
    let again = set.take_chunks();
    assert!(matches!(again.as_slice(), [Chunk::Compacted { .. }]));
    let Chunk::Compacted { bytes, .. } = &again[0] else {
        unreachable!()
    };
    assert!(!first.is_empty());
    let mut reloaded = DocSet::new(b"b");
    reloaded.load(id(), std::slice::from_ref(bytes)).unwrap();
    assert_eq!(read(&mut reloaded).name, "Chai");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut set = DocSet::new(b"a");
    assert!(
        set.receive(&id(), &mut SyncState::new(), b"\x42junk")
            .is_err()
    );
    assert!(set.load(id(), &[b"junk".to_vec()]).is_err());
    // A document a peer filled with the wrong types is unreadable, not a crash.
    set.edit(&id(), |d| {
        put(d, "id", ProductId::from_u128(7).to_string())?;
        put(d, "price", 5_i64)
    })
    .unwrap();
    assert_eq!(
        read_product(set.get(&id()).unwrap(), ProductId::from_u128(7)),
        None
    );
}

#[derive(Clone, Debug)]
enum Step {
    /// Replica `r` writes `field` with value `v`.
    Edit { r: usize, field: u8, v: u16 },
    /// Replicas `a` and `b` run the sync protocol to the end.
    Sync { a: usize, b: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..3u8, any::<u16>()).prop_map(|(r, field, v)| Step::Edit { r, field, v }),
        (0..3usize, 0..3usize).prop_map(|(a, b)| Step::Sync { a, b }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any interleaving of edits and pairwise syncs: once everyone has synced with everyone,
    /// every replica holds the same document and reads the same product, whichever order the
    /// merges took; and each field holds a value some replica wrote.
    #[test]
    fn replicas_converge(steps in proptest::collection::vec(step(), 1..40)) {
        let mut sets: Vec<DocSet> = (0..3u8).map(|i| DocSet::new(&[b'r', i])).collect();
        sets[0].edit(&id(), |d| create_product(d, &product())).unwrap();
        let mut written_prices = vec![450];
        for s in &steps {
            match *s {
                Step::Edit { r, field, v } => {
                    if sets[r].get(&id()).and_then(|d| read_product(d, ProductId::from_u128(7))).is_none() {
                        continue;
                    }
                    let mut p = read(&mut sets[r]);
                    let field = match field {
                        0 => { p.price.minor = i64::from(v); written_prices.push(i64::from(v)); ProductField::Price }
                        1 => { p.name = format!("n{v}"); ProductField::Name }
                        _ => { p.description = Some(format!("d{v}")); ProductField::Description }
                    };
                    sets[r].edit(&id(), |d| update_product(d, &p, &[field])).unwrap();
                }
                Step::Sync { a, b } if a != b => {
                    let (x, y) = if a < b { (a, b) } else { (b, a) };
                    let (left, right) = sets.split_at_mut(y);
                    sync_pair(&mut left[x], &mut right[0], &id());
                }
                Step::Sync { .. } => {}
            }
        }
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            let (left, right) = sets.split_at_mut(b);
            sync_pair(&mut left[a], &mut right[0], &id());
        }
        let heads: Vec<_> = sets.iter_mut().map(|s| s.heads(&id())).collect();
        prop_assert_eq!(&heads[0], &heads[1]);
        prop_assert_eq!(&heads[1], &heads[2]);
        let products: Vec<_> = sets.iter_mut().map(read).collect();
        prop_assert_eq!(&products[0], &products[1]);
        prop_assert_eq!(&products[1], &products[2]);
        prop_assert!(written_prices.contains(&products[0].price.minor));
    }
}

#[test]
fn concurrent_prices_pick_one_winner_everywhere() {
    let (mut hub, mut store) = hub_and_store();
    for (set, minor) in [(&mut hub, 500), (&mut store, 600)] {
        let mut p = read(set);
        p.price.minor = minor;
        set.edit(&id(), |d| update_product(d, &p, &[ProductField::Price]))
            .unwrap();
    }
    sync_pair(&mut store, &mut hub, &id());
    // Same counter on both sides: the greater actor id wins ("store" > "hub").
    assert_eq!(read(&mut hub).price.minor, 600);
    assert_eq!(read(&mut store).price.minor, 600);
}

#[test]
fn settings_edited_at_hub_and_store_keep_both_fields() {
    let store_id = StoreId::new("store-1").unwrap();
    let doc = DocId::settings(&store_id);
    assert_eq!(
        DocId::parse(doc.as_str()).unwrap().store_id(),
        Some(store_id)
    );
    let (mut hub, mut till) = (DocSet::new(b"hub"), DocSet::new(b"till"));
    hub.edit(&doc, |d| {
        write_settings(
            d,
            &SettingsChange {
                card_floor_limit: Some(Some(Money {
                    minor: 2_000,
                    currency: Currency::USD,
                })),
                prices_include_tax: Some(true),
                tax_rates: [("standard".to_string(), Some(200_000))].into(),
                ..SettingsChange::default()
            },
        )
    })
    .unwrap();
    till.edit(&doc, |d| {
        write_settings(
            d,
            &SettingsChange {
                name: Some(Some("Main Street".into())),
                order_hold_secs: Some(Some(600)),
                backorders: [
                    (Sku::new("TEA").unwrap(), true),
                    (Sku::new("MUG").unwrap(), false),
                ]
                .into(),
                // Another class, concurrently: both are kept.
                tax_rates: [("zero".to_string(), Some(0))].into(),
                ..SettingsChange::default()
            },
        )
    })
    .unwrap();
    sync_pair(&mut hub, &mut till, &doc);
    let expected = StoreSettings {
        name: Some("Main Street".into()),
        order_hold_secs: Some(600),
        card_floor_limit: Some(Money {
            minor: 2_000,
            currency: Currency::USD,
        }),
        backorder_skus: [Sku::new("TEA").unwrap()].into(),
        prices_include_tax: Some(true),
        tax_rates: [("standard".to_string(), 200_000), ("zero".to_string(), 0)].into(),
        discount_approval_ppm: None,
        promotions: Vec::new(),
        return_approval_amount: None,
        require_open_session: None,
        address: None,
        staff: Default::default(),
    };
    assert_eq!(read_settings(hub.get(&doc).unwrap()), expected);
    assert_eq!(read_settings(till.get(&doc).unwrap()), expected);
    // Unsetting writes null: the field reads as unset everywhere.
    till.edit(&doc, |d| {
        write_settings(
            d,
            &SettingsChange {
                order_hold_secs: Some(None),
                tax_rates: [("zero".to_string(), None)].into(),
                ..SettingsChange::default()
            },
        )
    })
    .unwrap();
    sync_pair(&mut hub, &mut till, &doc);
    let after = read_settings(hub.get(&doc).unwrap());
    assert_eq!(after.order_hold_secs, None);
    assert_eq!(after.tax_rates, [("standard".to_string(), 200_000)].into());
}

/// Staff members added at two tills at once are both kept; a record a peer wrote that cannot
/// be read is ignored.
#[test]
fn staff_added_at_two_tills_are_both_kept() {
    use fusion_contracts::StaffId;
    use fusion_contracts::http::Role;
    use fusion_contracts::http::staff::StaffRecord;
    let doc = DocId::settings(&StoreId::new("store-1").unwrap());
    let record = |name: &str, role| StaffRecord {
        name: name.into(),
        role,
        pin_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        active: true,
    };
    let (mut a, mut b) = (DocSet::new(b"till-a"), DocSet::new(b"till-b"));
    let add = |set: &mut DocSet, id: &str, r: StaffRecord| {
        set.edit(&doc, |d| {
            write_settings(
                d,
                &SettingsChange {
                    staff: [(StaffId::new(id).unwrap(), r)].into(),
                    ..SettingsChange::default()
                },
            )
        })
        .unwrap()
    };
    add(&mut a, "ana", record("Ana", Role::Cashier));
    add(&mut b, "max", record("Max", Role::Manager));
    b.edit(&doc, |d| put(d, "staff:bad", "{\"name\": 1}"))
        .unwrap();
    sync_pair(&mut a, &mut b, &doc);
    for set in [&mut a, &mut b] {
        let staff = read_settings(set.get(&doc).unwrap()).staff;
        let names: Vec<(&str, &str)> = staff
            .iter()
            .map(|(id, r)| (id.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(names, [("ana", "Ana"), ("max", "Max")]);
    }
}

#[test]
fn a_campaign_document_without_a_readable_definition_reads_as_nothing() {
    let id = CampaignId::from_u128(3);
    let doc = DocId::campaign(id);
    let mut set = DocSet::new(b"a");
    set.edit(&doc, |d| {
        put(d, "id", id.to_string())?;
        put(d, "owner", "till-a")?;
        put(d, "definition", "{\"not\": \"a campaign\"}")?;
        put(d, "status", "active")
    })
    .unwrap();
    assert_eq!(read_campaign(set.get(&doc).unwrap(), id), None);
    assert_eq!(
        read_campaign(set.get(&doc).unwrap(), CampaignId::from_u128(4)),
        None
    );
}

/// Announced ids create nothing: a document comes into being only when a peer sends its
/// changes (which its host may refuse first), so a flood of made-up ids costs no memory.
#[test]
fn asking_for_unknown_documents_creates_none() {
    let mut set = DocSet::new(b"receiver");
    for n in 0..10_000u128 {
        let made_up = DocId::product(ProductId::from_u128(n));
        assert!(
            set.generate(&made_up, &mut SyncState::new())
                .unwrap()
                .is_some()
        );
        assert!(!set.holds(&made_up));
    }
    assert_eq!(set.ids().unwrap().len(), 0);
    // A peer holding nothing answers with nothing: still none.
    let mut empty = DocSet::new(b"peer");
    let mut theirs = SyncState::new();
    let made_up = DocId::product(ProductId::from_u128(1));
    let mut ours = SyncState::new();
    let ask = set.generate(&made_up, &mut ours).unwrap().unwrap();
    assert!(!empty.receive(&made_up, &mut theirs, &ask).unwrap());
    if let Some(answer) = empty.generate(&made_up, &mut theirs).unwrap() {
        assert!(!set.receive(&made_up, &mut ours, &answer).unwrap());
    }
    assert!(!set.holds(&made_up) && !empty.holds(&made_up));
    // A real document still syncs into a set that did not hold it.
    let mut a = DocSet::new(b"a");
    a.edit(&id(), |doc| create_product(doc, &product()))
        .unwrap();
    let mut b = DocSet::new(b"b");
    sync_pair(&mut a, &mut b, &id());
    assert_eq!(
        read_product(b.get(&id()).unwrap(), product().id),
        Some(product())
    );
}

/// A document synced read-only from a peer takes none of its changes, whether the peer
/// follows the protocol (told so, it sends none) or pushes them anyway; made writable, the
/// same peer's changes arrive.
#[test]
fn a_read_only_state_applies_no_change() {
    let mut writer = DocSet::new(b"writer");
    writer
        .edit(&id(), |d| create_product(d, &product()))
        .unwrap();
    // Pushed unasked.
    let pushed = writer.unsolicited_message(&id()).unwrap();
    assert!(DocSet::carries_changes(&pushed));
    let mut reader = DocSet::new(b"reader");
    let mut read_only = SyncState::new_read_only();
    assert!(!reader.receive(&id(), &mut read_only, &pushed).unwrap());
    assert!(!reader.holds(&id()));
    // By the protocol: the writer learns the reader is read-only and sends no changes.
    let mut theirs = SyncState::new();
    for _ in 0..4 {
        if let Some(m) = reader.generate(&id(), &mut read_only).unwrap() {
            assert!(!DocSet::carries_changes(&m));
            writer.receive(&id(), &mut theirs, &m).unwrap();
        }
        if let Some(m) = writer.generate(&id(), &mut theirs).unwrap() {
            assert!(!DocSet::carries_changes(&m), "sent to a read-only peer");
            assert!(!reader.receive(&id(), &mut read_only, &m).unwrap());
        }
    }
    assert!(!reader.holds(&id()));
    // Writable again (the reader learnt the writer may change it): the changes arrive.
    read_only.set_read_only(false);
    let mut changed = false;
    for _ in 0..4 {
        if let Some(m) = reader.generate(&id(), &mut read_only).unwrap() {
            writer.receive(&id(), &mut theirs, &m).unwrap();
        }
        if let Some(m) = writer.generate(&id(), &mut theirs).unwrap() {
            changed |= reader.receive(&id(), &mut read_only, &m).unwrap();
        }
    }
    assert!(changed);
    assert_eq!(
        read_product(reader.get(&id()).unwrap(), product().id),
        Some(product())
    );
    assert!(!DocSet::carries_changes(b"\x42junk"));
}

/// A host's store in memory: chunks by (document, index) and heads, as a redb host keeps them.
#[derive(Default)]
struct MemStore {
    chunks: std::sync::Mutex<BTreeMap<(String, u32), Vec<u8>>>,
    heads: std::sync::Mutex<BTreeMap<String, Vec<ChangeHash>>>,
}

impl MemStore {
    fn persist(&self, chunks: &[Chunk]) {
        let mut stored = self.chunks.lock().unwrap();
        for chunk in chunks {
            match chunk {
                Chunk::Append {
                    doc, index, bytes, ..
                } => {
                    stored.insert((doc.to_string(), *index), bytes.clone());
                }
                Chunk::Compacted { doc, bytes, .. } => {
                    stored.retain(|(d, _), _| d != doc.as_str());
                    stored.insert((doc.to_string(), 0), bytes.clone());
                }
            }
            self.heads
                .lock()
                .unwrap()
                .insert(chunk.doc().to_string(), chunk.heads().to_vec());
        }
    }

    fn stored_heads(&self) -> Vec<(DocId, Vec<ChangeHash>)> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|(id, h)| (DocId::parse(id).unwrap(), h.clone()))
            .collect()
    }
}

struct MemSource(std::sync::Arc<MemStore>);

impl DocSource for MemSource {
    fn chunks(&self, docs: &[DocId]) -> Result<Vec<Vec<Vec<u8>>>, String> {
        let stored = self.0.chunks.lock().unwrap();
        Ok(docs
            .iter()
            .map(|doc| {
                stored
                    .range((doc.to_string(), 0)..=(doc.to_string(), u32::MAX))
                    .map(|(_, b)| b.clone())
                    .collect()
            })
            .collect())
    }

    fn heads(&self, docs: &[DocId]) -> Result<Vec<Option<Vec<ChangeHash>>>, String> {
        let heads = self.0.heads.lock().unwrap();
        Ok(docs
            .iter()
            .map(|d| heads.get(d.as_str()).cloned())
            .collect())
    }

    fn heads_after(
        &self,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<Vec<(DocId, Vec<ChangeHash>)>, String> {
        Ok(self
            .0
            .stored_heads()
            .into_iter()
            .filter(|(id, _)| after.is_none_or(|a| id > a))
            .take(limit)
            .collect())
    }

    fn count(&self) -> Result<u64, String> {
        Ok(self.0.heads.lock().unwrap().len() as u64)
    }
}

fn lazy(store: &std::sync::Arc<MemStore>, actor: &[u8], budget: usize) -> DocSet {
    DocSet::open(actor, Box::new(MemSource(store.clone())), budget)
}

/// Every document's heads, a page at a time.
fn summary(set: &DocSet) -> Vec<(DocId, Vec<ChangeHash>)> {
    let mut all = Vec::new();
    loop {
        let page = set.heads_page(all.last().map(|(id, _)| id), 7).unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

fn nth_product(n: u128) -> Product {
    Product {
        id: ProductId::from_u128(1_000 + n),
        sku: Sku::new(format!("SKU-{n}")).unwrap(),
        name: format!("Product {n}"),
        ..product()
    }
}

#[test]
fn a_lazy_set_loads_a_document_only_when_used_and_keeps_to_its_budget() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut writer = DocSet::new(b"writer");
    for n in 0..200 {
        let p = nth_product(n);
        writer
            .edit(&DocId::product(p.id), |d| create_product(d, &p))
            .unwrap();
    }
    let chunks = writer.take_chunks();
    store.persist(&chunks);
    writer.chunks_stored(&chunks);

    let budget = 100 * 1024;
    let mut set = lazy(&store, b"reader", budget);
    // Heads come from the store: a peer's summary is compared with nothing loaded.
    assert_eq!(summary(&set), summary(&writer));
    assert_eq!(summary(&writer).len(), 200);
    assert_eq!(set.stats().loaded, 0);
    for n in 0..200 {
        let p = nth_product(n);
        assert_eq!(
            read_product(set.get(&DocId::product(p.id)).unwrap(), p.id),
            Some(p)
        );
        let stats = set.stats();
        assert!(stats.loaded_bytes <= budget, "{stats:?}");
    }
    let stats = set.stats();
    assert_eq!((stats.held, stats.loads), (200, 200));
    assert!(stats.loaded <= budget / LOADED_MIN_BYTES, "{stats:?}");
    // The most recently used is still loaded: reading it again loads nothing.
    set.get(&DocId::product(nth_product(199).id)).unwrap();
    assert_eq!(set.stats().loads, 200);
}

#[test]
fn an_evicted_document_merges_a_concurrent_edit_also_after_a_restart() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut till = lazy(&store, b"till", 16 * 1024);
    till.edit(&id(), |d| create_product(d, &product())).unwrap();
    let chunks = till.take_chunks();
    store.persist(&chunks);
    till.chunks_stored(&chunks);
    let mut hub = DocSet::new(b"hub");
    sync_pair(&mut till, &mut hub, &id());

    // The till changes the price and stores it; other documents push the product out.
    let mut p = read(&mut till);
    p.price.minor = 500;
    till.edit(&id(), |d| update_product(d, &p, &[ProductField::Price]))
        .unwrap();
    // Not evicted while its chunk is unstored, whatever else is loaded.
    for n in 0..5 {
        let other = nth_product(n);
        till.edit(&DocId::product(other.id), |d| create_product(d, &other))
            .unwrap();
    }
    let chunks = till.take_chunks();
    store.persist(&chunks);
    till.chunks_stored(&chunks);
    for n in 0..5 {
        till.get(&DocId::product(nth_product(n).id)).unwrap();
    }
    let loads = till.stats().loads;

    // Meanwhile the hub changes the description.
    let mut q = read(&mut hub);
    q.description = Some("Green, loose leaf".into());
    hub.edit(&id(), |d| {
        update_product(d, &q, &[ProductField::Description])
    })
    .unwrap();

    sync_pair(&mut till, &mut hub, &id());
    assert!(
        till.stats().loads > loads,
        "the product was evicted and read again"
    );
    let merged = read(&mut till);
    assert_eq!(merged, read(&mut hub));
    assert_eq!(
        (merged.price.minor, merged.description.as_deref()),
        (500, Some("Green, loose leaf"))
    );

    // A restart: a new set over what is stored, and another concurrent edit.
    let chunks = till.take_chunks();
    store.persist(&chunks);
    drop(till);
    let mut restarted = lazy(&store, b"till", 16 * 1024);
    assert_eq!(restarted.heads(&id()), hub.heads(&id()));
    let mut r = read(&mut hub);
    r.name = "Sencha".into();
    hub.edit(&id(), |d| update_product(d, &r, &[ProductField::Name]))
        .unwrap();
    sync_pair(&mut restarted, &mut hub, &id());
    let after = read(&mut restarted);
    assert_eq!(after, read(&mut hub));
    assert_eq!((after.name.as_str(), after.price.minor), ("Sencha", 500));
}

#[test]
fn stored_heads_round_trip_and_odd_bytes_are_refused() {
    let mut set = DocSet::new(b"a");
    set.edit(&id(), |d| create_product(d, &product())).unwrap();
    let heads = set.heads(&id());
    assert_eq!(decode_heads(&encode_heads(&heads)), Some(heads));
    assert_eq!(decode_heads(&[]), Some(Vec::new()));
    assert_eq!(decode_heads(&[0u8; 33]), None);
}

#[test]
fn whole_documents_go_out_from_storage_unloaded_and_merge_on_arrival() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut writer = DocSet::new(b"writer");
    let ids: Vec<DocId> = (0..50).map(|n| DocId::product(nth_product(n).id)).collect();
    for n in 0..50 {
        let p = nth_product(n);
        writer
            .edit(&ids[n as usize], |d| create_product(d, &p))
            .unwrap();
    }
    let chunks = writer.take_chunks();
    store.persist(&chunks);
    writer.chunks_stored(&chunks);
    // A second chunk for some: a save is every chunk of a document, one after another.
    for n in 0..10 {
        let mut p = nth_product(n);
        p.price.minor += 1;
        writer
            .edit(&ids[n as usize], |d| {
                update_product(d, &p, &[ProductField::Price])
            })
            .unwrap();
    }
    let chunks = writer.take_chunks();
    store.persist(&chunks);

    let mut sender = lazy(&store, b"sender", 16 * 1024);
    let unknown = DocId::product(ProductId::from_u128(99));
    let mut asked = ids.clone();
    asked.push(unknown.clone());
    let saves = sender.saves(&asked).unwrap();
    assert_eq!(
        sender.stats().loads,
        0,
        "nothing loaded to send documents whole"
    );
    assert_eq!(saves.len(), 50, "a document not held is left out");

    let mut receiver = DocSet::new(b"receiver");
    for (doc, bytes) in &saves {
        assert!(receiver.receive_save(doc, bytes).unwrap());
        assert_eq!(receiver.heads(doc), writer.heads(doc));
    }
    let p = nth_product(3);
    assert_eq!(
        read_product(receiver.get(&ids[3]).unwrap(), p.id).map(|r| r.price.minor),
        Some(p.price.minor + 1)
    );
    // The same again changes nothing; stored whole, it reloads the same.
    assert!(!receiver.receive_save(&saves[0].0, &saves[0].1).unwrap());
    let stored = receiver.take_chunks();
    assert_eq!(stored.len(), 50);
    assert!(stored.iter().all(|c| matches!(c, Chunk::Compacted { .. })));
    let mut reloaded = DocSet::new(b"receiver");
    for chunk in &stored {
        let Chunk::Compacted { doc, bytes, .. } = chunk else {
            unreachable!()
        };
        reloaded
            .load(doc.clone(), std::slice::from_ref(bytes))
            .unwrap();
        assert_eq!(reloaded.heads(doc), writer.heads(doc));
    }

    // A replica with a concurrent edit of its own keeps both.
    let mut other = DocSet::new(b"other");
    sync_pair(&mut writer, &mut other, &ids[0]);
    let mut q = read_product(other.get(&ids[0]).unwrap(), nth_product(0).id).unwrap();
    q.description = Some("Kept".into());
    other
        .edit(&ids[0], |d| {
            update_product(d, &q, &[ProductField::Description])
        })
        .unwrap();
    let mut r = q.clone();
    r.description = None;
    r.name = "Renamed".into();
    writer
        .edit(&ids[0], |d| update_product(d, &r, &[ProductField::Name]))
        .unwrap();
    let (_, bytes) = writer.saves(&ids[..1]).unwrap().remove(0);
    assert!(other.receive_save(&ids[0], &bytes).unwrap());
    let merged = read_product(other.get(&ids[0]).unwrap(), q.id).unwrap();
    assert_eq!(
        (merged.name.as_str(), merged.description.as_deref()),
        ("Renamed", Some("Kept"))
    );
}

#[test]
fn a_damaged_or_empty_whole_document_creates_nothing() {
    let mut writer = DocSet::new(b"writer");
    writer
        .edit(&id(), |d| create_product(d, &product()))
        .unwrap();
    let (_, bytes) = writer.saves(&[id()]).unwrap().remove(0);
    let mut receiver = DocSet::new(b"receiver");
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            receiver.receive_save(&id(), &bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    assert!(receiver.receive_save(&id(), &flipped).is_err());
    assert!(!receiver.holds(&id()));
    let empty = AutoCommit::new().save();
    assert!(!receiver.receive_save(&id(), &empty).unwrap());
    assert!(!receiver.holds(&id()));
    assert!(receiver.take_chunks().is_empty());
}
