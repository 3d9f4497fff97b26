//! Executing one command inside the writer's transaction: idempotency, loading the state the
//! domain core needs, calling it, appending its events to the log and projecting them into the
//! state tables. Projection (`project`) depends only on the envelope, so replaying the log
//! rebuilds the same tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use fusion_contracts::commands::{
    CampaignCommand, CatalogCommand, CreatePayment, Exchange, InventoryCommand, OrderCommand,
    PaymentCommand, PlaceOrder, SessionCommand, ShipmentCommand,
};
use fusion_contracts::events::OrderStatus;
use fusion_contracts::events::campaigns::{CampaignStatus, ParticipantOrder};
use fusion_contracts::events::payments::Tender;
use fusion_contracts::events::shipping::ShipmentStatus;
use fusion_contracts::events::{
    CampaignCancelled, CampaignClosed, CampaignFailed, CampaignSuccessful, OrderCancelled,
    OrderFlagged, OrderFulfilled, OrderPaid, PaymentAuthorized, PaymentFailed,
    PaymentOfflineApproved, PaymentRefunded, PaymentSucceeded, PaymentVoided, RefundPartTo,
    RefundTo, exchange_account,
};
use fusion_contracts::{
    CampaignId, CorrelationId, CustomerId, Envelope, Event, EventId, Money, NodeId, OrderId,
    ProductId, ShipmentId, Sku, Timestamp,
};
use fusion_sync::docs::{DocId, DocSet};
use redb::{ReadableTable, ReadableTableMetadata};
use uuid::Uuid;

use super::journal::new_row;
use super::tables::{self, IdempotencyRecord, StoredCampaign, Tables, decode, encode, put_product};
use super::{
    Applied, Command, Decision, Grant, IDEMPOTENCY_RETENTION_MS, Outcome, StoreError, TokenInfo,
    WriteRequest, held_lines, shared_state,
};
use crate::domain::campaigns::{self, Close};
use crate::domain::drawer::{self, DrawerRejected};
use crate::domain::returns::ReturnRejected;
use crate::domain::{
    CampaignRejected, OrderRejected, Payment, PaymentRejected, RateTable, Rejected, catalog,
    inventory, orders, payments, shipping,
};

/// State of the batch being written: the clock reading, the next log position, and the
/// effects to publish once the batch commits.
pub(super) struct Batch {
    pub(super) node_id: NodeId,
    pub(super) now: Timestamp,
    pub next_seq: u64,
    /// The entry hash of the log's last event (the journal's head).
    pub head: crate::domain::journal::Hash,
    pub events_appended: u64,
    token_changes: Vec<([u8; 32], Option<Grant>)>,
    rates: Arc<RateTable>,
    order_hold_ms: Option<i64>,
    docs: Arc<Mutex<DocSet>>,
    /// Documents local commands of this batch wrote.
    pub touched_docs: Vec<DocId>,
    /// Skus whose orders may be backordered (the store's settings when the batch began).
    backorder_skus: std::collections::BTreeSet<Sku>,
    /// The store's taxes (its settings when the batch began); `None`: it charges none.
    pub taxes: Option<crate::domain::tax::Taxes>,
    /// The store's promotions and discount approval threshold (its settings when the batch
    /// began).
    pub promotions: Vec<fusion_contracts::pricing::Promotion>,
    pub discount_approval_ppm: u32,
    /// A refund above this needs a manager (`returnApprovalAmount`); `None`: no limit.
    pub return_approval: Option<fusion_contracts::Money>,
    /// The till refuses sales while its drawer is closed (`requireOpenSession`).
    pub require_open_session: bool,
}

impl Batch {
    pub fn new(
        node_id: NodeId,
        now: Timestamp,
        rates: Arc<RateTable>,
        order_hold_ms: Option<i64>,
        backorder_skus: std::collections::BTreeSet<Sku>,
        docs: Arc<Mutex<DocSet>>,
    ) -> Self {
        Self {
            node_id,
            now,
            next_seq: 0,
            head: crate::domain::journal::GENESIS,
            events_appended: 0,
            token_changes: Vec::new(),
            rates,
            order_hold_ms,
            docs,
            touched_docs: Vec::new(),
            backorder_skus,
            taxes: None,
            promotions: Vec::new(),
            discount_approval_ppm: crate::domain::pricing::DISCOUNT_APPROVAL_PPM_DEFAULT,
            return_approval: None,
            require_open_session: false,
        }
    }

    /// Writes what a local event changes in the shared documents: a product's fields, a
    /// campaign's definition or status.
    fn record_in_docs(&mut self, t: &mut Tables, event: &Event) -> Result<(), StoreError> {
        let doc = match event {
            Event::ProductCreated(_) | Event::ProductUpdated(_) | Event::ProductArchived(_) => {
                let mut docs = super::lock_docs(&self.docs);
                shared_state::record_product_event(t, &mut docs, event)?
            }
            Event::CampaignCreated(_)
            | Event::CampaignJoined(_)
            | Event::CampaignLeft(_)
            | Event::CampaignSuccessful(_)
            | Event::CampaignFailed(_)
            | Event::CampaignClosed(_)
            | Event::CampaignCancelled(_)
            | Event::CampaignSettled(_) => {
                let mut docs = super::lock_docs(&self.docs);
                shared_state::record_campaign_event(t, &mut docs, &self.node_id, event)?
            }
            _ => None,
        };
        self.touched_docs.extend(doc);
        Ok(())
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
    /// Appends `events` as a causal chain under `correlation_id`, the first caused by `cause`;
    /// returns the id of the last event (or `cause` when there were none).
    fn record_chain(
        &mut self,
        t: &mut Tables,
        events: Vec<Event>,
        correlation_id: &CorrelationId,
        cause: Uuid,
    ) -> Result<Uuid, StoreError> {
        let mut causation = cause;
        let mut paid_orders = Vec::new();
        for event in events {
            let envelope = Envelope::new(
                EventId(Uuid::now_v7()),
                self.node_id.clone(),
                self.next_seq,
                self.now,
                correlation_id.clone(),
                Some(causation),
                event,
            )
            .map_err(|e| {
                StoreError::Invariant(format!("a domain core produced an invalid event: {e}"))
            })?;
            let (row, hash) = new_row(&self.head, &self.node_id, envelope.seq, &envelope);
            t.events.insert(envelope.seq, row.as_slice())?;
            self.head = hash;
            project(t, &envelope)?;
            self.record_in_docs(t, &envelope.event)?;
            if let Event::OrderPaid(paid) = &envelope.event {
                paid_orders.push((paid.order_id, envelope.event_id.0));
            }
            causation = envelope.event_id.0;
            self.next_seq += 1;
            self.events_appended += 1;
        }
        for (order_id, paid_event) in paid_orders {
            // Its receipt, numbered in this transaction: gap-free whatever crashes.
            let order = tables::get_order(&t.orders, order_id)?.ok_or_else(|| {
                StoreError::Invariant(format!("order.paid names unknown order {order_id}"))
            })?;
            let receipt = super::receipts::issue(t, &self.node_id, &order, self.now)?;
            // Both the receipt and what ships the order are caused by the payment completing.
            self.record_chain(t, vec![receipt], correlation_id, paid_event)?;
            causation = self.after_paid(t, order_id, correlation_id, paid_event)?;
        }
        Ok(causation)
    }

    /// The reaction to `order.paid`, in the same transaction: ship it, or fulfil a carry-out.
    /// A label that cannot be made (no rate to the country) flags the order instead.
    fn after_paid(
        &mut self,
        t: &mut Tables,
        order_id: OrderId,
        correlation_id: &CorrelationId,
        cause: Uuid,
    ) -> Result<Uuid, StoreError> {
        let order = tables::get_order(&t.orders, order_id)?.ok_or_else(|| {
            StoreError::Invariant(format!("order.paid names unknown order {order_id}"))
        })?;
        // A backordered order waits for its last owed unit (`fill_backorders` comes back).
        if owes(t, order_id)? {
            return Ok(cause);
        }
        let events = match orders::after_paid(&order, ShipmentId(Uuid::now_v7()), self.now) {
            orders::AfterPaid::Fulfil(event) => vec![event],
            orders::AfterPaid::Ship(cmd) => match self.create_shipment(t, &cmd, Some(&order))? {
                Ok(events) => events,
                Err(rejected) => vec![
                    OrderFlagged {
                        order_id,
                        reason: format!("paid, but no label could be made: {rejected}"),
                        payment_id: None,
                    }
                    .into(),
                ],
            },
        };
        self.record_chain(t, events, correlation_id, cause)
    }

    /// Decides a shipment against the order's live shipment and the next tracking number.
    fn create_shipment(
        &self,
        t: &Tables,
        cmd: &fusion_contracts::commands::CreateShipment,
        order: Option<&crate::domain::Order>,
    ) -> Result<Result<Vec<Event>, crate::domain::ShipmentRejected>, StoreError> {
        let shipments =
            tables::get_order_shipments(&t.order_shipments, &t.shipments, cmd.order_id)?;
        let live = shipments
            .iter()
            .find(|s| !matches!(s.status, ShipmentStatus::Returned | ShipmentStatus::Voided));
        let number = shipping::tracking_number(
            shipping::tracking_prefix(&self.node_id),
            t.shipments.len()? + 1,
        );
        Ok(shipping::create(
            cmd,
            order,
            live,
            &self.rates,
            number,
            self.now,
        ))
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
    fill_backorders(t, batch, request)?;
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
        Command::Inventory(InventoryCommand::TransferStock(cmd)) => {
            let level = tables::get_stock(&t.stock, &cmd.sku)?;
            let decided = inventory::transfer(cmd, &level, &batch.node_id).map_err(Rejected::from);
            commit_then(t, batch, request, decided, |t| stock_outcome(t, &cmd.sku))
        }
        Command::Inventory(InventoryCommand::ReceiveStock(cmd)) => {
            let level = tables::get_stock(&t.stock, &cmd.sku)?;
            let decided = inventory::receive(cmd, &level).map_err(Rejected::from);
            commit_then(t, batch, request, decided, |t| stock_outcome(t, &cmd.sku))
        }
        Command::Order(OrderCommand::PlaceOrder(_) | OrderCommand::Exchange(_))
            if batch.require_open_session
                && super::drawer::get(&t.drawers, &batch.node_id)?
                    .open
                    .is_none() =>
        {
            Ok(Err(DrawerRejected::SessionRequired.into()))
        }
        Command::Order(OrderCommand::PlaceOrder(cmd)) => {
            match place_order(t, batch, cmd, &request.correlation_id, request.command_id)? {
                Ok(()) => order_outcome(t, cmd.order_id),
                Err(rejected) => Ok(Err(rejected.into())),
            }
        }
        Command::Order(OrderCommand::ReturnOrder(cmd)) => {
            match super::returns::decide(t, batch, cmd, None)? {
                Ok((events, outcome)) => {
                    commit_then(t, batch, request, Ok(events), |_| Ok(Ok(outcome)))
                }
                Err(rejected) => Ok(Err(rejected.into())),
            }
        }
        Command::Order(OrderCommand::Exchange(x)) => exchange(t, batch, request, x),
        Command::Order(OrderCommand::GiveReturnRights { order_id, to }) => {
            let events = super::returns::give(t, &batch.node_id, *order_id, to)?;
            let holder = to.clone();
            commit_then(t, batch, request, Ok(events), |_| {
                Ok(Ok(Outcome::ReturnRightsAsked { holder }))
            })
        }
        Command::Order(OrderCommand::ExpireHold(cmd)) => {
            let order = tables::get_order(&t.orders, cmd.order_id)?;
            let held = held_lines(&tables::get_reservations(&t.reservations, cmd.order_id)?);
            let decided = orders::expire_hold(order.as_ref(), held, cmd, now);
            cancel_in_chain(t, batch, request, cmd.order_id, decided)
        }
        Command::Order(OrderCommand::CancelOrder(cmd)) => {
            let order = tables::get_order(&t.orders, cmd.order_id)?;
            let held = held_lines(&tables::get_reservations(&t.reservations, cmd.order_id)?);
            let shipments =
                tables::get_order_shipments(&t.order_shipments, &t.shipments, cmd.order_id)?;
            let decided = orders::cancel(
                order.as_ref(),
                held,
                shipping::has_left(&shipments),
                cmd,
                now,
            );
            cancel_in_chain(t, batch, request, cmd.order_id, decided)
        }
        Command::Campaign(command) => execute_campaign(t, batch, request, command),
        Command::Session(command) => execute_session(t, batch, request, command),
        Command::PrintReceipt { order_id, staff } => {
            let Some(issued) = super::receipts::of_order(&t.order_receipts, *order_id)? else {
                return Ok(Err(OrderRejected::NotFound(*order_id).into()));
            };
            let till = batch.node_id.clone();
            let printed = super::receipts::prints(&t.receipt_prints, *order_id, &till)?;
            let event = crate::domain::receipts::print(&issued, &till, printed, staff.clone(), now);
            let outcome = Outcome::Printed(Box::new(event.clone()));
            commit_then(t, batch, request, Ok(vec![event.into()]), |_| {
                Ok(Ok(outcome))
            })
        }
        Command::QuoteOrder(cmd) => match price_order(t, batch, cmd, &HashMap::new())? {
            Ok(events) => {
                let mut order = None;
                for event in &events {
                    orders::apply(&mut order, event).map_err(|refused| {
                        StoreError::Invariant(format!("a quote's own events: {refused}"))
                    })?;
                }
                let order =
                    order.ok_or_else(|| StoreError::Invariant("a quote is an order".into()))?;
                Ok(Ok(Outcome::Quoted(Box::new(order))))
            }
            Err(rejected) => Ok(Err(rejected.into())),
        },
        Command::EmailReceipt {
            order_id,
            to,
            staff,
        } => {
            let Some(issued) = super::receipts::of_order(&t.order_receipts, *order_id)? else {
                return Ok(Err(OrderRejected::NotFound(*order_id).into()));
            };
            let code = super::receipts::code(&t.receipt_seqs, &t.events, *order_id)?;
            let event = crate::domain::receipts::email(
                &issued,
                &batch.node_id,
                to.clone(),
                code,
                staff.clone(),
                now,
            );
            let outcome = Outcome::Emailed(Box::new(event.clone()));
            commit_then(t, batch, request, Ok(vec![event.into()]), |_| {
                Ok(Ok(outcome))
            })
        }
        Command::Payment(command) => execute_payment(t, batch, request, command),
        Command::IssueStoreCredit(cmd) => execute_issue_credit(t, batch, request, cmd),
        Command::Shipment(command) => execute_shipment(t, batch, request, command),
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
        Command::SetOfflineBudget(share) => {
            let recorded = t
                .offline_budget
                .get(share.currency.to_string().as_str())?
                .map(|v| v.value().0);
            let events = payments::set_budget(recorded, *share);
            batch.record_chain(t, events, &request.correlation_id, request.command_id)?;
            Ok(Ok(Outcome::OfflineBudget(*share)))
        }
        Command::TransferBudget {
            transfer_id,
            to,
            amount,
        } => {
            let budget = tables::budget(&t.offline_budget, amount.currency)?;
            let exposure =
                tables::offline_exposure(&t.payment_followups, &t.payments, amount.currency)?;
            let events = match payments::transfer_budget(
                budget,
                exposure,
                *transfer_id,
                &batch.node_id,
                to,
                *amount,
            ) {
                Ok(events) => events,
                Err(rejected) => return Ok(Err(rejected.into())),
            };
            batch.record_chain(t, events, &request.correlation_id, request.command_id)?;
            let held = tables::budget(&t.offline_budget, amount.currency)?.held;
            Ok(Ok(Outcome::OfflineBudget(Money {
                minor: held,
                currency: amount.currency,
            })))
        }
        Command::ReceiveBudget {
            transfer_id,
            from,
            amount,
        } => {
            let budget = tables::budget(&t.offline_budget, amount.currency)?;
            let events = payments::receive_budget(budget, *transfer_id, from, *amount);
            batch.record_chain(t, events, &request.correlation_id, request.command_id)?;
            let held = tables::budget(&t.offline_budget, amount.currency)?.held;
            Ok(Ok(Outcome::OfflineBudget(Money {
                minor: held,
                currency: amount.currency,
            })))
        }
    }
}

/// Places an order the one way orders are placed: every line reserved or none. A refusal
/// records its `inventory.insufficient` event — a fact worth keeping (reorder alerts) though no
/// order exists.
fn place_order(
    t: &mut Tables,
    batch: &mut Batch,
    cmd: &PlaceOrder,
    correlation_id: &CorrelationId,
    cause: Uuid,
) -> Result<Result<(), OrderRejected>, StoreError> {
    match price_order(t, batch, cmd, &HashMap::new())? {
        Ok(events) => {
            batch.record_chain(t, events, correlation_id, cause)?;
            Ok(Ok(()))
        }
        Err(rejected) => {
            if let Some(event) = rejected.event(cmd.order_id) {
                batch.record_chain(t, vec![event], correlation_id, cause)?;
            }
            Ok(Err(rejected))
        }
    }
}

/// Decides an order by the rulebook against this till's catalog, stock (plus `restocked`
/// units, which an exchange's return puts back first) and the store's terms.
fn price_order(
    t: &Tables,
    batch: &Batch,
    cmd: &PlaceOrder,
    restocked: &HashMap<Sku, u64>,
) -> Result<Result<Vec<Event>, OrderRejected>, StoreError> {
    let mut available = HashMap::with_capacity(cmd.lines.len());
    let mut list = HashMap::with_capacity(cmd.lines.len());
    for line in &cmd.lines {
        if !available.contains_key(&line.sku) {
            let back = restocked.get(&line.sku).copied().unwrap_or(0);
            available.insert(
                line.sku.clone(),
                tables::get_stock(&t.stock, &line.sku)?.available + back,
            );
            list.insert(line.sku.clone(), catalog_listing(t, &line.sku)?);
        }
    }
    let terms = crate::domain::pricing::Terms {
        taxes: batch.taxes.as_ref(),
        promotions: &batch.promotions,
        discount_approval_ppm: batch.discount_approval_ppm,
    };
    Ok(orders::place_with_backorders(
        cmd,
        |sku| list.get(sku).cloned().flatten(),
        |sku| available.get(sku).copied().unwrap_or(0),
        |sku| batch.backorder_skus.contains(sku),
        &terms,
        batch.now,
        batch.order_hold_ms,
    ))
}

/// An exchange, all or nothing: the new order is decided against this till's stock with the
/// returned units back in it (when restocked), then the return, whose refund pays the new
/// order first (`RefundPartTo::Order`): its events, the order's, and the payment of the new
/// order from the return's exchange account are recorded in that order.
fn exchange(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    x: &Exchange,
) -> Result<Decision, StoreError> {
    let back = &x.take_back;
    let Some((sold, _)) = super::returns::order_and_seller(t, &batch.node_id, back.order_id)?
    else {
        return Ok(Err(ReturnRejected::NotFound(back.order_id).into()));
    };
    let mut restocked: HashMap<Sku, u64> = HashMap::new();
    if back.restock {
        for (line, quantity) in &back.lines {
            if let Some(item) = sold.items.get(*line) {
                *restocked.entry(item.sku.clone()).or_default() += quantity;
            }
        }
    }
    let placed = match price_order(t, batch, &x.order, &restocked)? {
        Ok(events) => events,
        Err(rejected) => return Ok(Err(rejected.into())),
    };
    let total = placed
        .iter()
        .find_map(|e| match e {
            Event::OrderCreated(c) => Money::from_decimal(c.total, c.currency).ok(),
            _ => None,
        })
        .ok_or_else(|| StoreError::Invariant("an order starts with order.created".into()))?;
    let decided = super::returns::decide(t, batch, back, Some((x.order.order_id, total)))?;
    let (events, outcome) = match decided {
        Ok(decided) => decided,
        Err(rejected) => return Ok(Err(rejected.into())),
    };
    let Outcome::Return(returned) = outcome else {
        // The return rights are at another till: asked for; the exchange waits for them.
        batch.record_chain(t, events, &request.correlation_id, request.command_id)?;
        return Ok(Ok(outcome));
    };
    let (correlation, cause) = (&request.correlation_id, request.command_id);
    batch.record_chain(t, events, correlation, cause)?;
    batch.record_chain(t, placed, correlation, cause)?;
    let applied = match &returned.refund_to {
        RefundTo::Split { parts } => parts
            .iter()
            .filter(|p| matches!(p.to, RefundPartTo::Order { .. }))
            .filter_map(|p| Money::from_decimal(p.amount, returned.currency).ok())
            .next(),
        _ => None,
    };
    let mut payment = None;
    if let Some(amount) = applied {
        let account = exchange_account(returned.return_id);
        let cmd = CreatePayment {
            payment_id: x.payment_id,
            order_id: x.order.order_id,
            amount,
            tender: Tender::StoreCredit,
            payment_method_id: format!("store_credit:{account}"),
            tendered: None,
            capture: true,
            staff: x.order.staff.clone(),
        };
        let order = tables::get_order(&t.orders, x.order.order_id)?;
        let credit = tables::get_credit(&t.store_credit, &account)?;
        let events = payments::create(&cmd, order.as_ref(), &[], credit.as_ref(), batch.now)
            .map_err(|e| StoreError::Invariant(format!("an exchange's payment: {e}")))?;
        batch.record_chain(t, events, correlation, cause)?;
        payment = tables::get_payment(&t.payments, x.payment_id)?;
    }
    let order = tables::get_order(&t.orders, x.order.order_id)?
        .ok_or_else(|| StoreError::Invariant("an exchange's order is recorded".into()))?;
    Ok(Ok(Outcome::Exchange(Box::new(super::Exchanged {
        returned: *returned,
        order,
        payment,
    }))))
}

/// What this till's catalog says of `sku`: its active product's price, tax class, category.
fn catalog_listing(
    t: &Tables,
    sku: &Sku,
) -> Result<Option<crate::domain::pricing::Listing>, StoreError> {
    let Some(id) = t.product_skus.get(sku.as_str())?.map(|v| v.value()) else {
        return Ok(None);
    };
    Ok(
        tables::get_product(&t.products, fusion_contracts::ProductId::from_u128(id))?
            .map(|stored| stored.product)
            .filter(|p| p.status == fusion_contracts::events::ProductStatus::Active)
            .map(|p| crate::domain::pricing::Listing {
                price: p.price,
                tax_class: p.tax_class().to_string(),
                category: p.category,
            }),
    )
}

fn execute_campaign(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    command: &CampaignCommand,
) -> Result<Decision, StoreError> {
    let now = batch.now;
    let load = |t: &Tables, id: CampaignId| tables::get_campaign(&t.campaigns, id);
    let joined = |t: &Tables, id: CampaignId, user: &CustomerId| -> Result<bool, StoreError> {
        Ok(t.participants.get((id.as_u128(), user.as_str()))?.is_some())
    };
    let seats = |t: &Tables, id: CampaignId| tables::get_seats(&t.campaign_seats, id);
    let decided = match command {
        CampaignCommand::CreateCampaign(cmd) => {
            let product = tables::get_product(&t.products, cmd.product_id)?.map(|s| s.product);
            campaigns::create(cmd, product.as_ref(), now)
        }
        CampaignCommand::JoinCampaign(cmd) => {
            let campaign = load(t, cmd.campaign_id)?.map(|s| s.campaign);
            campaigns::join(
                campaign.as_ref(),
                joined(t, cmd.campaign_id, &cmd.user_id)?,
                seats(t, cmd.campaign_id)?,
                cmd,
                now,
            )
        }
        CampaignCommand::LeaveCampaign(cmd) => {
            let campaign = load(t, cmd.campaign_id)?.map(|s| s.campaign);
            campaigns::leave(
                campaign.as_ref(),
                joined(t, cmd.campaign_id, &cmd.user_id)?,
                seats(t, cmd.campaign_id)?,
                cmd,
                now,
            )
        }
        CampaignCommand::CancelCampaign(cmd) => {
            let campaign = load(t, cmd.campaign_id)?.map(|s| s.campaign);
            campaigns::cancel(campaign.as_ref(), seats(t, cmd.campaign_id)?, cmd, now)
        }
        CampaignCommand::CloseCampaign(cmd) => {
            let Some(stored) = load(t, cmd.campaign_id)? else {
                return Ok(Err(CampaignRejected::NotFound(cmd.campaign_id).into()));
            };
            match seats(t, cmd.campaign_id)? {
                Some(held) if held.shared => {
                    let users = participants_of(t, cmd.campaign_id)?;
                    if let Some(ended) = campaigns::end(&stored.campaign, held, users, now) {
                        let correlation_id = &stored.correlation_id;
                        batch.record_chain(t, vec![ended], correlation_id, request.command_id)?;
                    }
                }
                _ => close_campaign(t, batch, request, stored)?,
            }
            return campaign_outcome(t, cmd.campaign_id);
        }
        CampaignCommand::TransferSeats(cmd) => {
            let campaign = load(t, cmd.campaign_id)?.map(|s| s.campaign);
            let held = seats(t, cmd.campaign_id)?;
            campaigns::transfer_seats(campaign.as_ref(), held, cmd, &batch.node_id, now)
        }
        CampaignCommand::ReceiveSeats(cmd) => {
            let campaign = load(t, cmd.campaign.id)?.map(|s| s.campaign);
            let held = seats(t, cmd.campaign.id)?;
            Ok(campaigns::receive_seats(campaign.as_ref(), held, cmd))
        }
        CampaignCommand::SettleCampaign(cmd) => {
            let id = cmd.decision.id;
            let Some(stored) = load(t, id)? else {
                return Ok(Err(CampaignRejected::NotFound(id).into()));
            };
            // Settled once: a decision seen again (or after the part was settled) does nothing.
            if stored.campaign.status.is_open() {
                let orders = if cmd.decision.status == CampaignStatus::Closed {
                    place_participant_orders(t, batch, request, &stored)?
                } else {
                    Vec::new()
                };
                let settled = campaigns::settled(&cmd.decision, orders, now);
                batch.record_chain(t, vec![settled], &stored.correlation_id, request.command_id)?;
            }
            return campaign_outcome(t, id);
        }
    };
    let id = campaign_id(command);
    commit_then(t, batch, request, decided.map_err(Rejected::from), |t| {
        campaign_outcome(t, id)
    })
}

fn campaign_id(command: &CampaignCommand) -> CampaignId {
    match command {
        CampaignCommand::CreateCampaign(c) => c.campaign_id,
        CampaignCommand::JoinCampaign(c) => c.campaign_id,
        CampaignCommand::LeaveCampaign(c) => c.campaign_id,
        CampaignCommand::CancelCampaign(c) => c.campaign_id,
        CampaignCommand::CloseCampaign(c) => c.campaign_id,
        CampaignCommand::TransferSeats(c) => c.campaign_id,
        CampaignCommand::ReceiveSeats(c) => c.campaign.id,
        CampaignCommand::SettleCampaign(c) => c.decision.id,
    }
}

/// A campaign's participants at this till, in user order.
fn participants_of(t: &Tables, id: CampaignId) -> Result<Vec<CustomerId>, StoreError> {
    let mut users = Vec::new();
    for entry in t.participants.range((id.as_u128(), "")..)? {
        let (key, _) = entry?;
        let (campaign, user) = key.value();
        if campaign != id.as_u128() {
            break;
        }
        users.push(CustomerId::new(user).map_err(|e| StoreError::Corrupt {
            table: "participants",
            reason: e.to_string(),
        })?);
    }
    Ok(users)
}

/// Places one order per participant at this till (in this transaction), each refusal kept.
fn place_participant_orders(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    stored: &StoredCampaign,
) -> Result<Vec<ParticipantOrder>, StoreError> {
    let campaign = &stored.campaign;
    let users = participants_of(t, campaign.id)?;
    let mut orders = Vec::with_capacity(users.len());
    for user_id in users {
        let order_id = OrderId(Uuid::now_v7());
        let cmd = campaigns::participant_order(campaign, user_id.clone(), order_id);
        let placed = place_order(t, batch, &cmd, &stored.correlation_id, request.command_id)?;
        orders.push(ParticipantOrder {
            user_id,
            order_id,
            failure: placed.err().map(|e| e.to_string()),
        });
    }
    Ok(orders)
}

/// Closes a campaign that has ended, in this one transaction: a failed one records its failure;
/// a successful one places one order per participant through `place_order` and records every
/// order (or refusal) in its `closed` event. Closing an already closed campaign does nothing,
/// so the scheduler may ask twice. Every event carries the campaign's correlation id.
fn close_campaign(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    stored: StoredCampaign,
) -> Result<(), StoreError> {
    let campaign = &stored.campaign;
    let correlation_id = &stored.correlation_id;
    match campaigns::close(campaign, batch.now) {
        Close::Nothing => {}
        Close::Fail(events) => {
            batch.record_chain(t, events, correlation_id, request.command_id)?;
        }
        Close::PlaceOrders => {
            let orders = place_participant_orders(t, batch, request, &stored)?;
            let closed = campaigns::closed(campaign, orders, batch.now);
            batch.record_chain(t, vec![closed], correlation_id, request.command_id)?;
        }
    }
    Ok(())
}

/// A drawer command: decided by the rulebook against this till's drawer; a close folds the
/// till's log since its last Z into the report in this transaction.
fn execute_session(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    command: &SessionCommand,
) -> Result<Decision, StoreError> {
    let till = batch.node_id.clone();
    let state = super::drawer::get(&t.drawers, &till)?;
    let (id, decided) = match command {
        SessionCommand::Open(cmd) => (cmd.session_id, drawer::open(&state, &till, cmd, batch.now)),
        SessionCommand::MoveCash(cmd) => (
            cmd.session_id,
            drawer::move_cash(&state, &till, cmd, batch.now),
        ),
        SessionCommand::Close(cmd) => {
            let decided = match &state.open {
                Some(open) if open.session_id == cmd.session_id => {
                    let (tally, to_seq) = super::drawer::tally(
                        &t.events,
                        &t.orders,
                        &t.payments,
                        &state,
                        open.float.currency,
                        open.from_seq,
                    )?;
                    drawer::close(&state, &till, cmd, &tally, to_seq, batch.now)
                }
                _ => Err(DrawerRejected::NotOpen(cmd.session_id)),
            };
            (cmd.session_id, decided)
        }
    };
    let decided = decided.map(|e| vec![e]).map_err(Rejected::from);
    commit_then(t, batch, request, decided, |t| {
        let row = super::drawer::session(&t.sessions, id)?.ok_or_else(|| {
            StoreError::Invariant(format!("session {id} missing after its event"))
        })?;
        Ok(Ok(Outcome::Session(Box::new(row))))
    })
}

fn execute_issue_credit(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    cmd: &fusion_contracts::commands::IssueStoreCredit,
) -> Result<Decision, StoreError> {
    let account = tables::get_credit(&t.store_credit, &cmd.account)?;
    let decided = payments::issue_credit(account.as_ref(), cmd, batch.now).map_err(Rejected::from);
    commit_then(t, batch, request, decided, |t| {
        let account = tables::get_credit(&t.store_credit, &cmd.account)?.ok_or_else(|| {
            StoreError::Invariant(format!("store credit {} missing after issue", cmd.account))
        })?;
        Ok(Ok(Outcome::StoreCredit(account)))
    })
}

fn execute_payment(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    command: &PaymentCommand,
) -> Result<Decision, StoreError> {
    let now = batch.now;
    let payment_id = match command {
        PaymentCommand::CreatePayment(c) => c.payment_id,
        PaymentCommand::RecordCardOutcome(c) => c.payment_id,
        PaymentCommand::RecordCapture(c) => c.payment_id,
        PaymentCommand::RecordRefund(c) => c.payment_id,
        PaymentCommand::ApproveOffline(c) => c.payment_id,
        PaymentCommand::ExpirePending(c) => c.payment_id,
        PaymentCommand::RecordVoid(c) => c.payment_id,
    };
    let payment = tables::get_payment(&t.payments, payment_id)?;
    let order_id = match (command, &payment) {
        (PaymentCommand::CreatePayment(c), _) => c.order_id,
        (_, Some(p)) => p.order_id,
        (_, None) => return Ok(Err(PaymentRejected::NotFound(payment_id).into())),
    };
    let order = tables::get_order(&t.orders, order_id)?;
    let others: Vec<Payment> =
        tables::get_order_payments(&t.order_payments, &t.payments, order_id)?
            .into_iter()
            .filter(|p| p.id != payment_id)
            .collect();
    let decided = match (command, &order) {
        (PaymentCommand::CreatePayment(c), _) => {
            let credit = match payments::credit_account_of(&c.payment_method_id) {
                Some(name) if c.tender == Tender::StoreCredit => {
                    tables::get_credit(&t.store_credit, name)?
                }
                _ => None,
            };
            payments::create(c, order.as_ref(), &others, credit.as_ref(), now)
        }
        (_, None) => {
            return Err(StoreError::Invariant(format!(
                "payment {payment_id} names missing order {order_id}"
            )));
        }
        (PaymentCommand::RecordCardOutcome(c), Some(o)) => {
            payments::card_outcome(payment.as_ref(), o, &others, c, now)
        }
        (PaymentCommand::RecordCapture(c), Some(o)) => {
            payments::capture(payment.as_ref(), o, &others, c, now)
        }
        (PaymentCommand::RecordRefund(c), _) => {
            let credit = match payment
                .as_ref()
                .and_then(|p| payments::credit_account_of(&p.payment_method_id))
            {
                Some(name) => tables::get_credit(&t.store_credit, name)?,
                None => None,
            };
            payments::refund(payment.as_ref(), c, credit.as_ref())
        }
        (PaymentCommand::ApproveOffline(c), Some(o)) => {
            // The budget this till holds now (its configured share, moved by transfers).
            let mut c = c.clone();
            if let (Some(p), Some(_)) = (&payment, c.budget)
                && let Some(minor) = tables::held_budget(&t.offline_budget, p.currency())?
            {
                c.budget = Some(fusion_contracts::Money {
                    minor,
                    currency: p.currency(),
                });
            }
            let c = &c;
            let exposure = match (&payment, c.budget) {
                (Some(p), Some(_)) => {
                    tables::offline_exposure(&t.payment_followups, &t.payments, p.currency())?
                }
                _ => 0,
            };
            payments::approve_offline(payment.as_ref(), o, &others, c, exposure, now)
        }
        (PaymentCommand::ExpirePending(c), _) => payments::expire(payment.as_ref(), c),
        (PaymentCommand::RecordVoid(c), _) => payments::void(payment.as_ref(), c),
    };
    let correlation_id = chain_correlation(t, order_id, request)?;
    commit_in_chain(
        t,
        batch,
        request,
        &correlation_id,
        decided.map_err(Rejected::from),
        |t| {
            let payment = tables::get_payment(&t.payments, payment_id)?.ok_or_else(|| {
                StoreError::Invariant(format!("payment {payment_id} missing after its command"))
            })?;
            Ok(Ok(Outcome::Payment(payment)))
        },
    )
}

fn execute_shipment(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    command: &ShipmentCommand,
) -> Result<Decision, StoreError> {
    let now = batch.now;
    let (id, order_id, decided) = match command {
        ShipmentCommand::CreateShipment(cmd) => {
            let order = tables::get_order(&t.orders, cmd.order_id)?;
            (
                cmd.shipment_id,
                cmd.order_id,
                batch.create_shipment(t, cmd, order.as_ref())?,
            )
        }
        ShipmentCommand::ChangeShipmentStatus(cmd) => {
            let shipment = tables::get_shipment(&t.shipments, cmd.shipment_id)?;
            let order_id = shipment
                .as_ref()
                .map_or(OrderId::from_u128(0), |s| s.order_id);
            (
                cmd.shipment_id,
                order_id,
                shipping::change_status(shipment.as_ref(), cmd, now),
            )
        }
    };
    let correlation_id = chain_correlation(t, order_id, request)?;
    commit_in_chain(
        t,
        batch,
        request,
        &correlation_id,
        decided.map_err(Rejected::from),
        |t| {
            let shipment = tables::get_shipment(&t.shipments, id)?.ok_or_else(|| {
                StoreError::Invariant(format!("shipment {id} missing after its command"))
            })?;
            Ok(Ok(Outcome::Shipment(shipment)))
        },
    )
}

fn campaign_outcome(t: &Tables, id: CampaignId) -> Result<Decision, StoreError> {
    let stored = tables::get_campaign(&t.campaigns, id)?
        .ok_or_else(|| StoreError::Invariant(format!("campaign {id} missing after its command")))?;
    Ok(Ok(Outcome::Campaign(stored.campaign)))
}

/// Records the events of an accepted command and reads back the outcome; passes a refusal on.
fn commit_then(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    decided: Result<Vec<Event>, Rejected>,
    outcome: impl FnOnce(&Tables) -> Result<Decision, StoreError>,
) -> Result<Decision, StoreError> {
    commit_in_chain(
        t,
        batch,
        request,
        &request.correlation_id.clone(),
        decided,
        outcome,
    )
}

/// Records an order's cancellation (if decided) with what the payment and shipping policies add
/// — cash refunded, unforwarded offline approvals voided, unused labels voided — under the
/// order's correlation id.
fn cancel_in_chain(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    order_id: OrderId,
    decided: Result<Vec<Event>, OrderRejected>,
) -> Result<Decision, StoreError> {
    let decided = match decided {
        Ok(mut events) if !events.is_empty() => {
            let paid = tables::get_order_payments(&t.order_payments, &t.payments, order_id)?;
            let mut credits = Vec::new();
            for name in paid
                .iter()
                .filter_map(|p| payments::credit_account_of(&p.payment_method_id))
            {
                credits.extend(tables::get_credit(&t.store_credit, name)?);
            }
            events.extend(payments::on_cancelled(&paid, &credits));
            let shipments =
                tables::get_order_shipments(&t.order_shipments, &t.shipments, order_id)?;
            events.extend(shipping::on_cancelled(&shipments, batch.now));
            Ok(events)
        }
        other => other.map_err(Rejected::from),
    };
    let correlation_id = chain_correlation(t, order_id, request)?;
    commit_in_chain(t, batch, request, &correlation_id, decided, |t| {
        order_outcome(t, order_id)
    })
}

/// Like `commit_then`, with the events under `correlation_id` (an order's chain).
fn commit_in_chain(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
    correlation_id: &CorrelationId,
    decided: Result<Vec<Event>, Rejected>,
    outcome: impl FnOnce(&Tables) -> Result<Decision, StoreError>,
) -> Result<Decision, StoreError> {
    match decided {
        Ok(events) => {
            batch.record_chain(t, events, correlation_id, request.command_id)?;
            outcome(t)
        }
        Err(rejected) => Ok(Err(rejected)),
    }
}

/// The correlation id of an order's chain (that of the request that placed it); the request's
/// own for an unknown order.
fn chain_correlation(
    t: &Tables,
    order_id: OrderId,
    request: &WriteRequest,
) -> Result<CorrelationId, StoreError> {
    match t.order_correlations.get(order_id.as_u128())? {
        Some(id) => CorrelationId::new(id.value()).map_err(|e| StoreError::Corrupt {
            table: "order_correlations",
            reason: e.to_string(),
        }),
        None => Ok(request.correlation_id.clone()),
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

/// Whether `order` still owes backordered units.
fn owes(t: &Tables, order: OrderId) -> Result<bool, StoreError> {
    let first = t
        .backorders
        .range((order.as_u128(), "")..)?
        .next()
        .transpose()?;
    Ok(first.is_some_and(|(key, _)| key.value().0 == order.as_u128()))
}

/// Reserves owed backordered units from the stock this till holds now, oldest backorder
/// first; an order whose last owed unit is reserved and that is paid gets its after-payment
/// reaction (fulfilment or shipping) then. Runs after every command; costs one lookup while
/// nothing is owed.
fn fill_backorders(
    t: &mut Tables,
    batch: &mut Batch,
    request: &WriteRequest,
) -> Result<(), StoreError> {
    if t.backorders.is_empty()? {
        return Ok(());
    }
    let mut owed = Vec::new();
    for entry in t.backorders.iter()? {
        let (key, value) = entry?;
        let (order, sku) = key.value();
        let (seq, quantity) = value.value();
        let sku = Sku::new(sku).map_err(|e| StoreError::Corrupt {
            table: "backorders",
            reason: e.to_string(),
        })?;
        owed.push(orders::Owed {
            seq,
            order_id: OrderId::from_u128(order),
            sku,
            quantity,
        });
    }
    let mut available = HashMap::new();
    for o in &owed {
        if !available.contains_key(&o.sku) {
            available.insert(
                o.sku.clone(),
                tables::get_stock(&t.stock, &o.sku)?.available,
            );
        }
    }
    let fills = orders::fill_backorders(owed, |sku| available.get(sku).copied().unwrap_or(0));
    for (order_id, line) in fills {
        let correlation_id = chain_correlation(t, order_id, request)?;
        let reserved = fusion_contracts::events::InventoryReserved {
            order_id,
            status: fusion_contracts::events::ReservationStatus::Reserved,
            items: vec![line],
        };
        let cause = batch.record_chain(
            t,
            vec![reserved.into()],
            &correlation_id,
            request.command_id,
        )?;
        let paid =
            tables::get_order(&t.orders, order_id)?.is_some_and(|o| o.status == OrderStatus::Paid);
        if paid && !owes(t, order_id)? {
            batch.after_paid(t, order_id, &correlation_id, cause)?;
        }
    }
    Ok(())
}

/// Folds one of this till's campaign events into its seats of the campaign (the rules'
/// `campaigns::apply_seats`).
fn update_seats(t: &mut Tables, id: CampaignId, event: &Event) -> Result<(), StoreError> {
    let mut seats = tables::get_seats(&t.campaign_seats, id)?;
    campaigns::apply_seats(&mut seats, event).map_err(own_refused)?;
    if let Some(seats) = seats {
        t.campaign_seats
            .insert(id.as_u128(), encode(&seats).as_slice())?;
    }
    Ok(())
}

/// Applies one logged event to the state tables. Depends on nothing but the envelope and the
/// tables, so a replay of the log reproduces them.
pub(super) fn project(t: &mut Tables, envelope: &Envelope) -> Result<(), StoreError> {
    let event = &envelope.event;
    let at = envelope.occurred_at;
    match event {
        Event::ProductCreated(_) | Event::ProductUpdated(_) | Event::ProductArchived(_) => {
            let id = match event {
                Event::ProductCreated(e) => e.id,
                Event::ProductUpdated(e) => e.id,
                Event::ProductArchived(e) => e.id,
                _ => unreachable!("matched above"),
            };
            let mut product = tables::get_product(&t.products, id)?.map(|s| s.product);
            if product.is_none() && !matches!(event, Event::ProductCreated(_)) {
                return Err(StoreError::Invariant(format!(
                    "{} names unknown product {id}",
                    event.topic()
                )));
            }
            catalog::apply(&mut product, event);
            put_product(t, &product.expect("apply keeps or creates the product"))?;
        }
        Event::StockAdjusted(_) | Event::StockReceived(_) => update_stock(t, event, at)?,
        Event::StockTransferred(e) => {
            update_stock(t, event, at)?;
            // In transit until the receiver's `inventory.received` arrives from its log.
            t.transfers_out.insert(
                e.transfer_id.as_u128(),
                encode(&(e.sku.clone(), e.to.clone(), e.quantity, at)).as_slice(),
            )?;
        }
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
            update_stock(t, event, at)?;
            for line in items {
                if let Event::InventoryReserved(_) = event {
                    // A reservation of a backordered order pays off what it owes.
                    let key = (order_id.as_u128(), line.sku.as_str());
                    let owed = t.backorders.get(key)?.map(|v| v.value());
                    if let Some((seq, owed)) = owed {
                        match orders::owed_after(owed, line.quantity) {
                            Some(left) => t.backorders.insert(key, (seq, left))?,
                            None => t.backorders.remove(key)?,
                        };
                    }
                }
            }
            update_reservations(t, *order_id, event, at)?;
        }
        // A reclaim is the hub's (its holder of the store records it); a till only folds it
        // from the hub's log (`shared_state::store_peer_events`).
        Event::InventoryInsufficient(_) | Event::StockReclaimed(_) => {}
        // The hub's (a till folds them from the hub's log into `revoked_peers`).
        Event::NodeEnrolled(_) | Event::NodeRevoked(_) => {}
        // This till's own: it held the rights (it checked before recording).
        Event::OrderReturned(_) | Event::ReturnRightsTransferred(_) => {
            super::receipts::record_for_slips(t, event)?;
            let folded = super::returns::folded(t, &envelope.origin, &envelope.origin, event)?
                .map_err(own_refused)?;
            super::returns::write(t, folded)?;
            if let Event::OrderReturned(returned) = event {
                super::returns::owe_card_refunds(t, returned)?;
            }
        }
        // A request of this till: the holder answers it.
        Event::ReturnRightsRequested(_) => {}
        Event::ReceiptIssued(e) => {
            let folded =
                super::receipts::folded(t, &envelope.origin, event)?.map_err(own_refused)?;
            super::receipts::write(t, folded)?;
            // This till's own: its verification code is this entry of the signed journal.
            t.receipt_seqs.insert(e.order_id.as_u128(), envelope.seq)?;
        }
        Event::ReceiptPrinted(_) => {
            let folded =
                super::receipts::folded_print(t, &envelope.origin, event)?.map_err(own_refused)?;
            super::receipts::write_print(t, folded)?;
        }
        Event::ReceiptEmailed(_) => {
            super::receipts::check_email(&envelope.origin, event).map_err(own_refused)?;
        }
        Event::SessionOpened(_) | Event::SessionCashMoved(_) | Event::SessionClosed(_) => {
            let folded = super::drawer::folded(t, &envelope.origin, envelope.seq, event)?
                .map_err(own_refused)?;
            super::drawer::write(t, folded)?;
        }
        Event::OfflineBudgetSet(_)
        | Event::OfflineBudgetTransferred(_)
        | Event::OfflineBudgetReceived(_) => {
            let currency = payments::budget_currency(event).expect("matched a budget event");
            let mut budget = tables::budget(&t.offline_budget, currency)?;
            payments::apply_budget(&mut budget, event).map_err(own_refused)?;
            t.offline_budget.insert(
                currency.to_string().as_str(),
                (budget.configured, budget.held),
            )?;
        }
        Event::InventoryBackordered(e) => {
            for line in &e.items {
                let key = (e.order_id.as_u128(), line.sku.as_str());
                let owed = t.backorders.get(key)?.map_or(0, |v| v.value().1);
                t.backorders
                    .insert(key, (envelope.seq, owed + line.quantity))?;
            }
        }
        Event::StoreCreditChanged(e) => {
            let mut account = tables::get_credit(&t.store_credit, &e.account)?;
            payments::apply_credit(&mut account, event, at);
            let account = account.expect("a credit change leaves an account");
            t.store_credit
                .insert(e.account.as_str(), encode(&account).as_slice())?;
        }
        Event::PaymentCreated(e) => {
            let mut payment = None;
            payments::apply(&mut payment, event, at);
            let payment = payment.expect("payment.created creates a payment");
            t.payments
                .insert(e.payment_id.as_u128(), encode(&payment).as_slice())?;
            t.order_payments
                .insert((e.order_id.as_u128(), e.payment_id.as_u128()), ())?;
            if payment.tender == Tender::Card {
                t.payment_followups
                    .insert((payment.created_at.unix_ms(), e.payment_id.as_u128()), ())?;
            }
        }
        Event::PaymentAuthorized(PaymentAuthorized { payment_id, .. })
        | Event::PaymentSucceeded(PaymentSucceeded { payment_id, .. })
        | Event::PaymentFailed(PaymentFailed { payment_id, .. })
        | Event::PaymentRefunded(PaymentRefunded { payment_id, .. })
        | Event::PaymentOfflineApproved(PaymentOfflineApproved { payment_id, .. })
        | Event::PaymentVoided(PaymentVoided { payment_id, .. }) => {
            let mut payment = tables::get_payment(&t.payments, *payment_id)?;
            if payment.is_none() {
                return Err(StoreError::Invariant(format!(
                    "{} names unknown payment {payment_id}",
                    event.topic()
                )));
            }
            payments::apply(&mut payment, event, at);
            let payment = payment.expect("apply keeps an existing payment");
            if let Event::PaymentRefunded(refunded) = event {
                super::returns::refunded(t, refunded)?;
            }
            // A card payment leaves the follow-up list once the provider owes it nothing and
            // it owes no return a refund.
            let key = (payment.created_at.unix_ms(), payment_id.as_u128());
            let cancelled = tables::get_order(&t.orders, payment.order_id)?
                .is_some_and(|o| o.status == OrderStatus::Cancelled);
            let owes = tables::refund_owed(&t.refunds_owed, *payment_id)? > 0;
            if !payments::needs_provider(&payment, cancelled) && !owes {
                t.payment_followups.remove(key)?;
            }
            t.payments
                .insert(payment_id.as_u128(), encode(&payment).as_slice())?;
        }
        Event::CampaignCreated(e) => {
            let mut campaign = None;
            campaigns::apply(&mut campaign, event);
            let campaign = campaign.expect("campaign.created creates a campaign");
            let due = (campaign.end_at.unix_ms(), e.campaign_id.as_u128());
            let stored = StoredCampaign {
                list_key: envelope.seq,
                correlation_id: envelope.correlation_id.clone(),
                campaign,
            };
            t.campaigns
                .insert(e.campaign_id.as_u128(), encode(&stored).as_slice())?;
            t.campaign_list
                .insert(envelope.seq, e.campaign_id.as_u128())?;
            t.timers.insert(due, ())?;
            update_seats(t, e.campaign_id, event)?;
        }
        Event::CampaignJoined(e) => {
            update_campaign(t, e.campaign_id, event)?;
            t.participants
                .insert((e.campaign_id.as_u128(), e.user_id.as_str()), at.unix_ms())?;
            update_seats(t, e.campaign_id, event)?;
        }
        Event::CampaignLeft(e) => {
            update_campaign(t, e.campaign_id, event)?;
            t.participants
                .remove((e.campaign_id.as_u128(), e.user_id.as_str()))?;
            update_seats(t, e.campaign_id, event)?;
        }
        Event::SeatsTransferred(e) => update_seats(t, e.campaign_id, event)?,
        Event::SeatsReceived(e) => {
            if tables::get_campaign(&t.campaigns, e.campaign_id)?.is_none() {
                // A campaign of another till (maybe another store), known from its seats.
                let stored = StoredCampaign {
                    list_key: envelope.seq,
                    correlation_id: envelope.correlation_id.clone(),
                    campaign: campaigns::received(&e.campaign),
                };
                t.campaigns
                    .insert(e.campaign_id.as_u128(), encode(&stored).as_slice())?;
                t.campaign_list
                    .insert(envelope.seq, e.campaign_id.as_u128())?;
                t.timers
                    .insert((e.campaign.end_time.unix_ms(), e.campaign_id.as_u128()), ())?;
            }
            update_seats(t, e.campaign_id, event)?;
        }
        Event::CampaignEnded(e) => {
            update_seats(t, e.campaign_id, event)?;
            t.timers
                .remove((e.campaign.end_time.unix_ms(), e.campaign_id.as_u128()))?;
        }
        Event::CampaignSettled(e) => {
            update_campaign(t, e.campaign_id, event)?;
            t.timers
                .remove((e.campaign.end_time.unix_ms(), e.campaign_id.as_u128()))?;
        }
        Event::CampaignSuccessful(CampaignSuccessful { campaign_id, .. })
        | Event::CampaignFailed(CampaignFailed { campaign_id, .. }) => {
            update_campaign(t, *campaign_id, event)?
        }
        Event::CampaignClosed(CampaignClosed {
            campaign_id,
            campaign,
            ..
        })
        | Event::CampaignCancelled(CampaignCancelled {
            campaign_id,
            campaign,
            ..
        }) => {
            update_campaign(t, *campaign_id, event)?;
            t.timers
                .remove((campaign.end_time.unix_ms(), campaign_id.as_u128()))?;
        }
        Event::OrderCreated(e) => {
            t.order_correlations
                .insert(e.order_id.as_u128(), envelope.correlation_id.as_str())?;
            super::receipts::record_for_slips(t, event)?;
            if let Some(until) = e.hold_until {
                t.order_holds
                    .insert((until.unix_ms(), e.order_id.as_u128()), ())?;
            }
            let mut order = None;
            orders::apply(&mut order, event).map_err(own_refused)?;
            let order = order.expect("order.created creates an order");
            t.orders
                .insert(e.order_id.as_u128(), encode(&order).as_slice())?;
            t.order_list.insert(envelope.seq, e.order_id.as_u128())?;
        }
        Event::ShippingLabelCreated(e) => {
            if t.tracking_numbers
                .get(e.tracking_number.as_str())?
                .is_some()
            {
                return Err(StoreError::Invariant(format!(
                    "tracking number {} issued twice",
                    e.tracking_number
                )));
            }
            let mut shipment = None;
            shipping::apply(&mut shipment, event);
            let shipment = shipment.expect("label.created creates a shipment");
            t.shipments
                .insert(e.shipment_id.as_u128(), encode(&shipment).as_slice())?;
            t.order_shipments
                .insert((e.order_id.as_u128(), e.shipment_id.as_u128()), ())?;
            t.tracking_numbers
                .insert(e.tracking_number.as_str(), e.shipment_id.as_u128())?;
        }
        Event::ShippingStatusChanged(e) => {
            let mut shipment = tables::get_shipment(&t.shipments, e.shipment_id)?;
            if shipment.is_none() {
                return Err(StoreError::Invariant(format!(
                    "status change of unknown shipment {}",
                    e.shipment_id
                )));
            }
            shipping::apply(&mut shipment, event);
            t.shipments.insert(
                e.shipment_id.as_u128(),
                encode(&shipment.expect("kept")).as_slice(),
            )?;
        }
        Event::OrderPaid(OrderPaid { order_id, .. })
        | Event::OrderFulfilled(OrderFulfilled { order_id, .. })
        | Event::OrderFlagged(OrderFlagged { order_id, .. })
        | Event::OrderCancelled(OrderCancelled { order_id, .. }) => {
            let mut order = tables::get_order(&t.orders, *order_id)?;
            if order.is_none() {
                return Err(StoreError::Invariant(format!(
                    "{} names unknown order {order_id}",
                    event.topic()
                )));
            }
            orders::apply(&mut order, event).map_err(own_refused)?;
            let order = order.expect("apply keeps an existing order");
            if order.status == OrderStatus::Cancelled {
                // Nothing is owed to a cancelled order.
                t.backorders.retain_in(
                    (order_id.as_u128(), "")..=(order_id.as_u128(), "\u{10FFFF}"),
                    |_, _| false,
                )?;
            }
            if let (Some(until), true) = (order.hold_until, order.status != OrderStatus::Created) {
                t.order_holds
                    .remove((until.unix_ms(), order_id.as_u128()))?;
            }
            if order.status == OrderStatus::Cancelled {
                // Card payments of a cancelled order are voided or refunded at the provider.
                for p in tables::get_order_payments(&t.order_payments, &t.payments, *order_id)? {
                    if p.tender == Tender::Card && payments::needs_provider(&p, true) {
                        t.payment_followups
                            .insert((p.created_at.unix_ms(), p.id.as_u128()), ())?;
                    }
                }
            }
            t.orders
                .insert(order_id.as_u128(), encode(&order).as_slice())?;
        }
    }
    Ok(())
}

fn update_campaign(t: &mut Tables, id: CampaignId, event: &Event) -> Result<(), StoreError> {
    let mut stored = tables::get_campaign(&t.campaigns, id)?.ok_or_else(|| {
        StoreError::Invariant(format!("{} names unknown campaign {id}", event.topic()))
    })?;
    let mut campaign = Some(stored.campaign);
    campaigns::apply(&mut campaign, event);
    stored.campaign = campaign.expect("apply keeps an existing campaign");
    t.campaigns
        .insert(id.as_u128(), encode(&stored).as_slice())?;
    Ok(())
}

/// A rule refused one of this node's own events: they were decided against the same state, so
/// this is a broken invariant, never a peer's doing.
fn own_refused(refused: crate::domain::Refused) -> StoreError {
    StoreError::Invariant(format!("own event refused: {refused}"))
}

/// Folds one of this till's own inventory events into its stock levels. Its events were decided
/// against these levels, so a refusal is a broken invariant.
fn update_stock(t: &mut Tables, event: &Event, at: Timestamp) -> Result<(), StoreError> {
    let mut levels = std::collections::BTreeMap::new();
    for sku in inventory::skus_of(event) {
        levels.insert(sku.clone(), tables::get_stock(&t.stock, sku)?);
    }
    inventory::apply_all(&mut levels, event, at).map_err(own_refused)?;
    for (sku, level) in levels {
        t.stock.insert(sku.as_str(), encode(&level).as_slice())?;
    }
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
