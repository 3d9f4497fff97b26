//! Executing one command inside the writer's transaction: idempotency, loading the state the
//! domain core needs, calling it, appending its events to the log and projecting them into the
//! state tables. Projection (`project`) depends only on the envelope, so replaying the log
//! rebuilds the same tables.

use std::collections::HashMap;
use std::sync::RwLock;

use fusion_contracts::commands::{CatalogCommand, InventoryCommand, OrderCommand};
use fusion_contracts::{Envelope, Event, EventId, NodeId, OrderId, ProductId, Sku, Timestamp};
use redb::{ReadableTable, Table, WriteTransaction};
use uuid::Uuid;

use super::tables::{
    self, EVENTS, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, IdempotencyRecord, ORDER_LIST, ORDERS,
    PRODUCT_LIST, PRODUCT_SKUS, PRODUCTS, RESERVATIONS, STOCK, StoredProduct, TOKENS, decode,
    encode,
};
use super::{
    Applied, Command, Decision, Grant, IDEMPOTENCY_RETENTION_MS, Outcome, StoreError, TokenInfo,
    WriteRequest, held_lines,
};
use crate::domain::{Rejected, catalog, inventory, orders};

/// Every table, opened once per batch.
pub(super) struct Tables<'txn> {
    pub products: Table<'txn, u128, &'static [u8]>,
    pub product_skus: Table<'txn, &'static str, u128>,
    pub product_list: Table<'txn, u64, u128>,
    pub stock: Table<'txn, &'static str, &'static [u8]>,
    pub reservations: Table<'txn, u128, &'static [u8]>,
    pub orders: Table<'txn, u128, &'static [u8]>,
    pub order_list: Table<'txn, u64, u128>,
    pub events: Table<'txn, u64, &'static [u8]>,
    pub idempotency: Table<'txn, &'static str, &'static [u8]>,
    pub idempotency_expiry: Table<'txn, (i64, &'static str), ()>,
    pub tokens: Table<'txn, &'static [u8; 32], &'static [u8]>,
}

impl<'txn> Tables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            products: txn.open_table(PRODUCTS)?,
            product_skus: txn.open_table(PRODUCT_SKUS)?,
            product_list: txn.open_table(PRODUCT_LIST)?,
            stock: txn.open_table(STOCK)?,
            reservations: txn.open_table(RESERVATIONS)?,
            orders: txn.open_table(ORDERS)?,
            order_list: txn.open_table(ORDER_LIST)?,
            events: txn.open_table(EVENTS)?,
            idempotency: txn.open_table(IDEMPOTENCY)?,
            idempotency_expiry: txn.open_table(IDEMPOTENCY_EXPIRY)?,
            tokens: txn.open_table(TOKENS)?,
        })
    }
}

/// State of the batch being written: the clock reading, the next log position, and the
/// effects to publish once the batch commits.
pub(super) struct Batch {
    node_id: NodeId,
    now: Timestamp,
    pub next_seq: u64,
    pub events_appended: u64,
    token_changes: Vec<([u8; 32], Option<Grant>)>,
}

impl Batch {
    pub fn new(node_id: NodeId, now: Timestamp) -> Self {
        Self {
            node_id,
            now,
            next_seq: 0,
            events_appended: 0,
            token_changes: Vec::new(),
        }
    }

    pub fn publish_token_changes(&self, cache: &RwLock<HashMap<[u8; 32], Grant>>) {
        if self.token_changes.is_empty() {
            return;
        }
        let mut cache = cache.write().expect("token cache lock");
        for (hash, grant) in &self.token_changes {
            match grant {
                Some(grant) => cache.insert(*hash, *grant),
                None => cache.remove(hash),
            };
        }
    }

    /// Appends `events` to the log as one causal chain (the command causes the first event,
    /// each event the next) and projects each into the state tables.
    fn record(
        &mut self,
        t: &mut Tables,
        events: Vec<Event>,
        request: &WriteRequest,
    ) -> Result<(), StoreError> {
        let mut causation = request.command_id;
        for event in events {
            let envelope = Envelope::new(
                EventId(Uuid::now_v7()),
                self.node_id.clone(),
                self.next_seq,
                self.now,
                request.correlation_id.clone(),
                Some(causation),
                event,
            )
            .map_err(|e| {
                StoreError::Invariant(format!("a domain core produced an invalid event: {e}"))
            })?;
            t.events
                .insert(envelope.seq, envelope.encode().as_slice())?;
            project(t, &envelope)?;
            causation = envelope.event_id.0;
            self.next_seq += 1;
            self.events_appended += 1;
        }
        Ok(())
    }
}

/// Runs one command, or replays the stored answer of an earlier one with the same key.
pub(super) fn run(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
) -> Result<Applied, StoreError> {
    if let Some(idem) = &request.idempotency
        && let Some(stored) = t.idempotency.get(idem.key.as_str())?
    {
        let stored: IdempotencyRecord = decode("idempotency", stored.value())?;
        let key_reused = stored.fingerprint != idem.fingerprint;
        return Ok(Applied {
            decision: stored.decision,
            replayed: !key_reused,
            key_reused,
        });
    }
    let decision = execute(t, batch, request)?;
    if let Some(idem) = &request.idempotency {
        let record = IdempotencyRecord {
            fingerprint: idem.fingerprint,
            stored_at_ms: batch.now.unix_ms(),
            decision: decision.clone(),
        };
        t.idempotency
            .insert(idem.key.as_str(), encode(&record).as_slice())?;
        t.idempotency_expiry
            .insert((record.stored_at_ms, idem.key.as_str()), ())?;
    }
    Ok(Applied {
        decision,
        replayed: false,
        key_reused: false,
    })
}

fn execute(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
) -> Result<Decision, StoreError> {
    let now = batch.now;
    match &request.command {
        Command::Catalog(CatalogCommand::CreateProduct(cmd)) => {
            let owner = t
                .product_skus
                .get(cmd.sku.as_str())?
                .map(|v| ProductId::from_u128(v.value()));
            let stock = tables::get_stock(&t.stock, &cmd.sku)?;
            let decided = catalog::create(cmd, owner, &stock, now);
            commit_then(t, batch, request, decided.map_err(Rejected::from), |t| {
                product_outcome(t, cmd.product_id)
            })
        }
        Command::Catalog(CatalogCommand::UpdateProduct(cmd)) => {
            let product = tables::get_product(&t.products, cmd.product_id)?.map(|s| s.product);
            let decided = catalog::update(product.as_ref(), cmd, now);
            commit_then(t, batch, request, decided.map_err(Rejected::from), |t| {
                product_outcome(t, cmd.product_id)
            })
        }
        Command::Catalog(CatalogCommand::ArchiveProduct(cmd)) => {
            let product = tables::get_product(&t.products, cmd.product_id)?.map(|s| s.product);
            let decided = catalog::archive(product.as_ref(), cmd, now);
            commit_then(t, batch, request, decided.map_err(Rejected::from), |t| {
                product_outcome(t, cmd.product_id)
            })
        }
        Command::Inventory(InventoryCommand::SetStock(cmd)) => {
            let level = tables::get_stock(&t.stock, &cmd.sku)?;
            let decided = Ok(inventory::set(cmd, &level));
            commit_then(t, batch, request, decided, |t| stock_outcome(t, &cmd.sku))
        }
        Command::Inventory(InventoryCommand::AdjustStock(cmd)) => {
            let level = tables::get_stock(&t.stock, &cmd.sku)?;
            let decided = inventory::adjust(cmd, &level).map_err(Rejected::from);
            commit_then(t, batch, request, decided, |t| stock_outcome(t, &cmd.sku))
        }
        Command::Order(OrderCommand::PlaceOrder(cmd)) => {
            let mut available = HashMap::with_capacity(cmd.lines.len());
            for line in &cmd.lines {
                if !available.contains_key(&line.sku) {
                    available.insert(
                        line.sku.clone(),
                        tables::get_stock(&t.stock, &line.sku)?.available,
                    );
                }
            }
            match orders::place(cmd, |sku| available.get(sku).copied().unwrap_or(0), now) {
                Ok(events) => {
                    batch.record(t, events, request)?;
                    order_outcome(t, cmd.order_id)
                }
                Err(rejected) => {
                    // The refusal is a fact worth keeping (reorder alerts), though no order exists.
                    if let Some(event) = rejected.event(cmd.order_id) {
                        batch.record(t, vec![event], request)?;
                    }
                    Ok(Err(rejected.into()))
                }
            }
        }
        Command::Order(OrderCommand::CancelOrder(cmd)) => {
            let order = tables::get_order(&t.orders, cmd.order_id)?;
            let held = held_lines(&tables::get_reservations(&t.reservations, cmd.order_id)?);
            let decided = orders::cancel(order.as_ref(), held, cmd, now).map_err(Rejected::from);
            commit_then(t, batch, request, decided, |t| {
                order_outcome(t, cmd.order_id)
            })
        }
        Command::CreateToken {
            id,
            role,
            label,
            hash,
        } => {
            let info = TokenInfo {
                id: *id,
                role: *role,
                label: label.clone(),
                created_at: now,
            };
            t.tokens.insert(hash, encode(&info).as_slice())?;
            batch.token_changes.push((
                *hash,
                Some(Grant {
                    token_id: *id,
                    role: *role,
                }),
            ));
            Ok(Ok(Outcome::Token(info)))
        }
        Command::RevokeToken(id) => match tables::find_token(&t.tokens, *id)? {
            Some((hash, _)) => {
                t.tokens.remove(&hash)?;
                batch.token_changes.push((hash, None));
                Ok(Ok(Outcome::TokenRevoked(*id)))
            }
            None => Ok(Err(Rejected::TokenNotFound(*id))),
        },
    }
}

/// Records the events of an accepted command and reads back the outcome; passes a refusal on.
fn commit_then(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    decided: Result<Vec<Event>, Rejected>,
    outcome: impl FnOnce(&Tables) -> Result<Decision, StoreError>,
) -> Result<Decision, StoreError> {
    match decided {
        Ok(events) => {
            batch.record(t, events, request)?;
            outcome(t)
        }
        Err(rejected) => Ok(Err(rejected)),
    }
}

fn product_outcome(t: &Tables, id: ProductId) -> Result<Decision, StoreError> {
    let stored = tables::get_product(&t.products, id)?
        .ok_or_else(|| StoreError::Invariant(format!("product {id} missing after its command")))?;
    let stock = tables::get_stock(&t.stock, &stored.product.sku)?;
    Ok(Ok(Outcome::Product {
        product: stored.product,
        stock,
    }))
}

fn stock_outcome(t: &Tables, sku: &Sku) -> Result<Decision, StoreError> {
    Ok(Ok(Outcome::Stock {
        sku: sku.clone(),
        level: tables::get_stock(&t.stock, sku)?,
    }))
}

fn order_outcome(t: &Tables, id: OrderId) -> Result<Decision, StoreError> {
    let order = tables::get_order(&t.orders, id)?
        .ok_or_else(|| StoreError::Invariant(format!("order {id} missing after its command")))?;
    Ok(Ok(Outcome::Order(order)))
}

/// Applies one logged event to the state tables. Depends on nothing but the envelope and the
/// tables, so a replay of the log reproduces them.
pub(super) fn project(t: &mut Tables, envelope: &Envelope) -> Result<(), StoreError> {
    let event = &envelope.event;
    let at = envelope.occurred_at;
    match event {
        Event::ProductCreated(e) => {
            let mut product = None;
            catalog::apply(&mut product, event);
            let product = product.expect("product.created creates a product");
            let stored = StoredProduct {
                list_key: envelope.seq,
                product,
            };
            t.products
                .insert(e.id.as_u128(), encode(&stored).as_slice())?;
            t.product_skus.insert(e.sku.as_str(), e.id.as_u128())?;
            t.product_list.insert(envelope.seq, e.id.as_u128())?;
        }
        Event::ProductUpdated(fusion_contracts::events::ProductUpdated { id, .. })
        | Event::ProductArchived(fusion_contracts::events::ProductArchived { id, .. }) => {
            let mut stored = tables::get_product(&t.products, *id)?.ok_or_else(|| {
                StoreError::Invariant(format!("{} names unknown product {id}", event.topic()))
            })?;
            let mut product = Some(stored.product);
            catalog::apply(&mut product, event);
            stored.product = product.expect("apply keeps an existing product");
            if matches!(event, Event::ProductArchived(_)) {
                t.product_list.remove(stored.list_key)?;
            }
            t.products
                .insert(id.as_u128(), encode(&stored).as_slice())?;
        }
        Event::StockAdjusted(e) => update_stock(t, &e.sku, event, at)?,
        Event::InventoryReserved(fusion_contracts::events::InventoryReserved {
            order_id,
            items,
            ..
        })
        | Event::InventoryReleased(fusion_contracts::events::InventoryReleased {
            order_id,
            items,
            ..
        }) => {
            for line in items {
                update_stock(t, &line.sku, event, at)?;
            }
            update_reservations(t, *order_id, event, at)?;
        }
        Event::InventoryInsufficient(_) => {}
        Event::OrderCreated(e) => {
            let mut order = None;
            orders::apply(&mut order, event);
            let order = order.expect("order.created creates an order");
            t.orders
                .insert(e.order_id.as_u128(), encode(&order).as_slice())?;
            t.order_list.insert(envelope.seq, e.order_id.as_u128())?;
        }
        Event::OrderCancelled(e) => {
            let mut order = tables::get_order(&t.orders, e.order_id)?;
            if order.is_none() {
                return Err(StoreError::Invariant(format!(
                    "order.cancelled names unknown order {}",
                    e.order_id
                )));
            }
            orders::apply(&mut order, event);
            let order = order.expect("apply keeps an existing order");
            t.orders
                .insert(e.order_id.as_u128(), encode(&order).as_slice())?;
        }
    }
    Ok(())
}

fn update_stock(t: &mut Tables, sku: &Sku, event: &Event, at: Timestamp) -> Result<(), StoreError> {
    let mut level = tables::get_stock(&t.stock, sku)?;
    inventory::apply(&mut level, sku, event, at);
    t.stock.insert(sku.as_str(), encode(&level).as_slice())?;
    Ok(())
}

fn update_reservations(
    t: &mut Tables,
    order_id: OrderId,
    event: &Event,
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut held = tables::get_reservations(&t.reservations, order_id)?;
    inventory::apply_reservations(&mut held, order_id, event, at);
    t.reservations
        .insert(order_id.as_u128(), encode(&held).as_slice())?;
    Ok(())
}

/// Most expired idempotency keys removed in one pass.
const PRUNE_KEYS_MAX: usize = 10_000;

/// Forgets idempotency keys older than the retention period.
pub(super) fn prune_idempotency(t: &mut Tables, now: Timestamp) -> Result<(), StoreError> {
    let cutoff = now.unix_ms() - IDEMPOTENCY_RETENTION_MS;
    let mut expired = Vec::new();
    // Bounded so one prune never makes a batch slow; the rest goes in the next pass.
    for entry in t
        .idempotency_expiry
        .range(..(cutoff, ""))?
        .take(PRUNE_KEYS_MAX)
    {
        let (key, _) = entry?;
        let (stored_at, idem_key) = key.value();
        expired.push((stored_at, idem_key.to_string()));
    }
    for (stored_at, key) in &expired {
        t.idempotency_expiry.remove((*stored_at, key.as_str()))?;
        t.idempotency.remove(key.as_str())?;
    }
    if !expired.is_empty() {
        tracing::debug!(n = expired.len(), "pruned expired idempotency keys");
    }
    Ok(())
}
