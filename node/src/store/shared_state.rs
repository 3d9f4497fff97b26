//! What the writer does for sync: product documents (local edits written into them, peers'
//! merges projected out of them, their chunks persisted) and the event logs of the store's
//! other tills (held by origin and seq, their orders folded into `peer_orders`).

use fusion_contracts::commands::{
    CampaignCommand, InventoryCommand, OrderCommand, ReceiveSeats, ReceiveStock, SettleCampaign,
};
use fusion_contracts::{CorrelationId, Envelope, Event, NodeId, ProductId, Sku};
use std::sync::Arc;

use fusion_sync::docs::stored::StoredDocs;
use fusion_sync::docs::{
    CampaignDoc, Chunk, DocId, DocSet, ProductField, create_product, encode_heads, read_campaign,
    read_product, update_product, write_campaign,
};
use redb::{Database, ReadableTable};

use super::count_refused;
use super::tables::{self, DOC_HEADS, DOCS, PeerOrder, Tables, decode, encode, put_product};
use super::{Command, Deliverer, StoreError};
use crate::domain::journal;
use crate::domain::{StockLevel, authority, inventory, orders};
use fusion_sync::proto::{Batch, Verified};

/// The stored documents, none loaded yet: each read from `docs` when first used and kept
/// within `budget` bytes (LRU), their heads read from `doc_heads`. `actor` is this node's
/// stable automerge actor. A store from before `doc_heads` gets it filled once, one document
/// at a time.
pub(super) fn open_docs(
    db: &Arc<Database>,
    actor: &[u8],
    budget: usize,
) -> Result<DocSet, StoreError> {
    index_doc_heads(db, actor)?;
    Ok(DocSet::open(
        actor,
        Box::new(StoredDocs(Arc::clone(db))),
        budget,
    ))
}

const META_DOC_HEADS: &str = "doc_heads_indexed";

/// Fills `doc_heads` from `docs`, once (a store from before the table).
fn index_doc_heads(db: &Database, actor: &[u8]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(tables::META)?;
        if meta.get(META_DOC_HEADS)?.is_some() {
            return Ok(());
        }
        let docs = txn.open_table(DOCS)?;
        let mut heads = txn.open_table(DOC_HEADS)?;
        let rows = docs.iter()?.map(|entry| {
            entry
                .map(|(key, bytes)| (key.value().0.to_string(), bytes.value().to_vec()))
                .map_err(|e| e.to_string())
        });
        let indexed = fusion_sync::docs::heads_of_rows(actor, rows, |id, found| {
            heads
                .insert(id.as_str(), encode_heads(found).as_slice())
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .map_err(|reason| StoreError::Corrupt {
            table: "docs",
            reason,
        })?;
        if indexed > 0 {
            tracing::info!(documents = indexed, "indexed the stored documents' heads");
        }
        meta.insert(META_DOC_HEADS, [1u8].as_slice())?;
    }
    txn.commit()?;
    Ok(())
}

const META_PEER_CAMPAIGNS: &str = "peer_campaigns_indexed";

/// Fills `peer_campaigns` from the peers' logs held, once (a store from before the table).
pub(super) fn index_peer_campaigns(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(tables::META)?;
        if meta.get(META_PEER_CAMPAIGNS)?.is_some() {
            return Ok(());
        }
        let events = txn.open_table(tables::PEER_EVENTS)?;
        let mut campaigns = txn.open_table(tables::PEER_CAMPAIGNS)?;
        let mut indexed = 0u64;
        for entry in events.iter()? {
            let (key, bytes) = entry?;
            let (origin, _) = key.value();
            if authority::kind_of(&NodeId::new(origin).map_err(|e| StoreError::Corrupt {
                table: "peer_events",
                reason: e.to_string(),
            })?) != authority::OriginKind::Till
            {
                continue;
            }
            let Ok(envelope) = Envelope::decode(bytes.value()) else {
                continue;
            };
            if let Event::CampaignCreated(e) = &envelope.event
                && campaigns.get(e.campaign_id.as_u128())?.is_none()
            {
                campaigns.insert(e.campaign_id.as_u128(), origin)?;
                indexed += 1;
            }
        }
        meta.insert(META_PEER_CAMPAIGNS, [1u8].as_slice())?;
        if indexed > 0 {
            tracing::info!(campaigns = indexed, "indexed the campaigns of peers' logs");
        }
    }
    txn.commit()?;
    Ok(())
}

/// Writes a local catalog event into its product's document, then projects the document back
/// onto the product row: the row is always the document's projection.
pub(super) fn record_product_event(
    t: &mut Tables,
    docs: &mut DocSet,
    event: &Event,
) -> Result<Option<DocId>, StoreError> {
    let (id, fields): (ProductId, Vec<ProductField>) = match event {
        Event::ProductCreated(e) => (e.id, Vec::new()),
        Event::ProductUpdated(e) => {
            let mut fields: Vec<ProductField> = e
                .changed
                .iter()
                .filter_map(|c| ProductField::from_changed(c))
                .collect();
            fields.dedup();
            (e.id, fields)
        }
        Event::ProductArchived(e) => (e.id, vec![ProductField::Status]),
        _ => return Ok(None),
    };
    let product = tables::get_product(&t.products, id)?
        .ok_or_else(|| StoreError::Invariant(format!("product {id} missing after its event")))?
        .product;
    let doc = DocId::product(id);
    let p = product;
    let written = docs.edit(&doc, |d| {
        if fields.is_empty() {
            create_product(d, &p)
        } else {
            update_product(d, &p, &fields)
        }
    });
    written.map_err(|e| StoreError::Invariant(format!("writing {doc}: {e}")))?;
    project_doc(t, docs, &doc)?;
    Ok(Some(doc))
}

/// Writes a campaign's definition (when it is created here) or its new status into its document.
/// Joins and leaves that change no status write nothing.
pub(super) fn record_campaign_event(
    t: &Tables,
    docs: &mut DocSet,
    owner: &NodeId,
    event: &Event,
) -> Result<Option<DocId>, StoreError> {
    let id = match event {
        Event::CampaignCreated(e) => e.campaign_id,
        Event::CampaignJoined(e) => e.campaign_id,
        Event::CampaignLeft(e) => e.campaign_id,
        Event::CampaignSuccessful(e) => e.campaign_id,
        Event::CampaignFailed(e) => e.campaign_id,
        Event::CampaignClosed(e) => e.campaign_id,
        Event::CampaignCancelled(e) => e.campaign_id,
        Event::CampaignSettled(e) => e.campaign_id,
        _ => return Ok(None),
    };
    let campaign = tables::get_campaign(&t.campaigns, id)?
        .ok_or_else(|| StoreError::Invariant(format!("campaign {id} missing after its event")))?
        .campaign
        .snapshot();
    let doc = DocId::campaign(id);
    let recorded = docs.get(&doc).and_then(|d| read_campaign(d, id));
    // Only the till that created a campaign writes its document: a till holding seats of
    // another till's campaign never does, whether or not that document reached it yet.
    let writes = match &recorded {
        Some(c) => c.owner == *owner && c.campaign.status != campaign.status,
        None => matches!(event, Event::CampaignCreated(_)),
    };
    if !writes {
        return Ok(None);
    }
    let written = docs.edit(&doc, |d| {
        write_campaign(
            d,
            &CampaignDoc {
                owner: owner.clone(),
                campaign,
            },
        )
    });
    written.map_err(|e| StoreError::Invariant(format!("writing {doc}: {e}")))?;
    Ok(Some(doc))
}

/// Projects a document onto the tables (today: product documents onto the product row). A
/// document that is still incomplete or unreadable is left out until it is readable.
pub(super) fn project_doc(
    t: &mut Tables,
    docs: &mut DocSet,
    doc: &DocId,
) -> Result<(), StoreError> {
    let Some(id) = doc.product_id() else {
        return Ok(());
    };
    let stored = docs.try_get(doc).map_err(|e| StoreError::Corrupt {
        table: "docs",
        reason: e.to_string(),
    })?;
    let Some(fields) = stored.and_then(|d| read_product(d, id)) else {
        tracing::warn!(%doc, "a product document is not readable yet; not projected");
        return Ok(());
    };
    let product = fields;
    if let Some(existing) = tables::get_product(&t.products, id)? {
        if existing.product == product {
            return Ok(());
        }
        if existing.product.sku != product.sku {
            return Err(StoreError::Invariant(format!(
                "{doc} changed its sku from {} to {}",
                existing.product.sku, product.sku
            )));
        }
    }
    put_product(t, &product)
}

/// Writes chunks, and the heads they leave their documents at, in the batch's transaction.
pub(super) fn persist_chunks(t: &mut Tables, chunks: &[Chunk]) -> Result<(), StoreError> {
    Ok(fusion_sync::docs::stored::store_chunks(
        &mut t.docs,
        &mut t.doc_heads,
        chunks,
    )?)
}

/// What a peer's events ask of this till, done by the writer in the same transaction that holds
/// them: take in a transfer addressed to it, settle a shared campaign the hub decided.
pub(super) struct FollowUp {
    pub command: Command,
    /// The command id (the transfer's, or the deciding event's).
    pub id: uuid::Uuid,
    pub correlation_id: CorrelationId,
}

/// Holds a peer till's (or the hub's) events (ignoring those already held); a gap is refused.
/// Returns the origin's position afterwards, or why the batch was refused. Transfers addressed
/// to this node and the hub's decisions on campaigns whose seats this till shares are pushed to
/// `follow_ups`: the writer carries them out in the same transaction.
pub(super) fn store_peer_events(
    t: &mut Tables,
    own: &NodeId,
    deliverer: &Deliverer,
    batch: &Batch,
    follow_ups: &mut Vec<FollowUp>,
    refusals: &fusion_sync::Refusals,
) -> Result<Result<u64, String>, StoreError> {
    let origin = &batch.origin;
    if origin == own {
        return Ok(Err("a peer sent this node's own events back".into()));
    }
    let unauthorized = |refused: authority::Unauthorized, seq: u64| {
        count_refused(refusals, refused.rule());
        tracing::warn!(peer = %deliverer.endpoint, %origin, seq, %refused, "a peer's batch refused");
        format!("refused: {refused}")
    };
    // A peer the hub revoked is heard no more (the hub's log said so; the hub may be down now).
    if t.revoked_peers.get(deliverer.endpoint.as_str())?.is_some() {
        count_refused(refusals, "peer_revoked");
        tracing::warn!(peer = %deliverer.endpoint, %origin, "a revoked peer's batch refused");
        return Ok(Err("refused: the hub revoked this peer".into()));
    }
    // The hub's own origins come only from the hub; a till origin only from the endpoint that
    // first delivered it.
    if let Err(refused) = authority::deliverer_may_send(origin, deliverer.is_hub) {
        return Ok(Err(unauthorized(refused, 0)));
    }
    let kind = authority::kind_of(origin);
    if kind == authority::OriginKind::Till {
        let bound = t
            .peer_origin_peers
            .get(origin.as_str())?
            .map(|v| v.value().to_string());
        match bound {
            Some(bound) if bound != deliverer.endpoint => {
                let refused = authority::Unauthorized::Rebound {
                    origin: origin.clone(),
                };
                return Ok(Err(unauthorized(refused, 0)));
            }
            Some(_) => {}
            None => {
                t.peer_origin_peers
                    .insert(origin.as_str(), deliverer.endpoint.as_str())?;
            }
        }
    }
    let mut position = t
        .peer_positions
        .get(origin.as_str())?
        .map_or(0, |v| v.value());
    let mut head = match t.peer_heads.get(origin.as_str())? {
        Some(hash) => *hash.value(),
        None if position == 0 => journal::GENESIS,
        None => {
            return Err(StoreError::Corrupt {
                table: "peer_heads",
                reason: format!("{origin} is held up to seq {position} without its hash"),
            });
        }
    };
    // Nothing is stored unless the batch chains from what is held to the origin's signature:
    // a till's events signed by its own key (the deliverer it is bound to), the hub's by the
    // hub's.
    let new = match batch.verified((position, head), &deliverer.key) {
        Ok(new) => new,
        Err(fault) => {
            count_refused(refusals, fault.rule());
            tracing::warn!(peer = %deliverer.endpoint, %origin, seq = fault.seq(), %fault, "a peer's batch does not verify");
            return Ok(Err(format!("refused: {fault}")));
        }
    };
    // Why the batch stops early; what came before it is kept (and its position recorded, so a
    // resend never folds it twice).
    let mut stopped = None;
    for Verified {
        envelope,
        bytes,
        hash,
    } in new
    {
        // An event its origin may not write is never stored, and the origin's log cannot grow
        // past it.
        if let Err(refused) = authority::may_write(kind, &envelope.event) {
            stopped = Some(unauthorized(refused, envelope.seq));
            break;
        }
        // Nor may a till decide a campaign whose seats this till shares: the hub's to decide.
        if let Some(campaign) = authority::decided_campaign(&envelope.event) {
            let shared = tables::get_seats(&t.campaign_seats, campaign)?.is_some_and(|s| s.shared);
            if let Err(refused) = authority::may_decide_campaign(kind, &envelope.event, shared) {
                stopped = Some(unauthorized(refused, envelope.seq));
                break;
            }
        }
        if let Some(order_id) = super::returns::waits_for(t, own, &envelope.event)? {
            tracing::info!(peer = %deliverer.endpoint, %origin, seq = envelope.seq, %order_id, "a peer's return waits for its order");
            stopped = Some(format!(
                "waiting: order {order_id} is not known here yet (its seller's log comes first)"
            ));
            break;
        }
        // Folded by the same rules as the origin's own; an event they refuse (stock it never
        // held, an impossible order step) is never stored, and the origin's log cannot grow
        // past it: an honest till never writes one.
        let folded = fold_peer_order(t, envelope).and_then(|order| {
            let stock = fold_peer_stock(t, origin, envelope)?;
            let returns = super::returns::folded(t, own, origin, &envelope.event)?
                .map_err(PeerFold::Refused)?;
            let receipt =
                super::receipts::folded(t, origin, &envelope.event)?.map_err(PeerFold::Refused)?;
            let drawer = super::drawer::folded(t, origin, envelope.seq, &envelope.event)?
                .map_err(PeerFold::Refused)?;
            let print = super::receipts::folded_print(t, origin, &envelope.event)?
                .map_err(PeerFold::Refused)?;
            super::receipts::check_email(origin, &envelope.event).map_err(PeerFold::Refused)?;
            Ok((order, stock, returns, (receipt, print), drawer))
        });
        let (order, stock, returns, (receipt, print), drawer) = match folded {
            Ok(folded) => folded,
            Err(PeerFold::Refused(refused)) => {
                count_refused(refusals, refused.rule());
                tracing::warn!(peer = %deliverer.endpoint, %origin, seq = envelope.seq, %refused, "a peer's event refused");
                stopped = Some(format!("refused: {refused}"));
                break;
            }
            Err(PeerFold::Store(e)) => return Err(e),
        };
        // As it came: the bytes its origin's journal hashes.
        t.peer_events
            .insert((origin.as_str(), envelope.seq), bytes)?;
        super::returns::write(t, returns)?;
        super::receipts::write(t, receipt)?;
        super::drawer::write(t, drawer)?;
        super::receipts::write_print(t, print)?;
        super::receipts::record_for_slips(t, &envelope.event)?;
        if let Some(order) = order {
            let record = PeerOrder {
                origin: origin.clone(),
                order,
            };
            t.peer_orders
                .insert(record.order.id.as_u128(), encode(&record).as_slice())?;
        }
        for ((holder, sku), level) in stock {
            t.peer_stock
                .insert((holder.as_str(), sku.as_str()), encode(&level).as_slice())?;
        }
        let follow_up = |command, id| FollowUp {
            command,
            id,
            correlation_id: envelope.correlation_id.clone(),
        };
        match &envelope.event {
            Event::StockTransferred(e) if e.to == *own => follow_ups.push(follow_up(
                Command::Inventory(InventoryCommand::ReceiveStock(ReceiveStock {
                    transfer_id: e.transfer_id,
                    sku: e.sku.clone(),
                    quantity: e.quantity,
                    from: origin.clone(),
                })),
                e.transfer_id,
            )),
            // A till asks this one for an order's return rights: given if still held here.
            Event::ReturnRightsRequested(e) if e.holder == *own => follow_ups.push(follow_up(
                Command::Order(OrderCommand::GiveReturnRights {
                    order_id: e.order_id,
                    to: origin.clone(),
                }),
                envelope.event_id.0,
            )),
            Event::SeatsTransferred(e) if e.to == *own => follow_ups.push(follow_up(
                Command::Campaign(CampaignCommand::ReceiveSeats(ReceiveSeats {
                    transfer_id: e.transfer_id,
                    seats: e.seats,
                    from: origin.clone(),
                    campaign: e.campaign.clone(),
                })),
                e.transfer_id,
            )),
            Event::OfflineBudgetTransferred(e) if e.to == *own => {
                let amount =
                    fusion_contracts::Money::from_decimal(e.amount, e.currency).map_err(|err| {
                        StoreError::Corrupt {
                            table: "peer_events",
                            reason: err.to_string(),
                        }
                    })?;
                follow_ups.push(follow_up(
                    Command::ReceiveBudget {
                        transfer_id: e.transfer_id,
                        from: origin.clone(),
                        amount,
                    },
                    e.transfer_id,
                ))
            }
            // Only the hub closes a campaign whose seats are shared: its decision.
            Event::CampaignClosed(e)
                if authority::decides_shared_campaign(kind, &envelope.event)
                    && tables::get_seats(&t.campaign_seats, e.campaign_id)?
                        .is_some_and(|s| s.shared) =>
            {
                follow_ups.push(follow_up(
                    Command::Campaign(CampaignCommand::SettleCampaign(SettleCampaign {
                        decision: e.campaign.clone(),
                    })),
                    envelope.event_id.0,
                ))
            }
            // Who is in the fleet: the hub's word (only the hub may write these).
            Event::NodeRevoked(e) if kind == authority::OriginKind::Hub => {
                t.revoked_peers
                    .insert(e.node_id.as_str(), e.revoked_at.unix_ms())?;
                tracing::warn!(peer = %e.node_id, "the hub revoked a node: refused from now on");
            }
            Event::NodeEnrolled(e) if kind == authority::OriginKind::Hub => {
                t.revoked_peers.remove(e.node_id.as_str())?;
            }
            // Whose campaign it is: that till's endpoint (and the hub) may change its document.
            Event::CampaignCreated(e)
                if kind == authority::OriginKind::Till
                    && t.peer_campaigns.get(e.campaign_id.as_u128())?.is_none() =>
            {
                t.peer_campaigns
                    .insert(e.campaign_id.as_u128(), origin.as_str())?;
            }
            Event::StockReceived(e) => {
                t.peer_receipts
                    .insert(e.transfer_id.as_u128(), origin.as_str())?;
            }
            Event::StockReclaimed(e) => {
                // The hub took over a lost till: the transfers to it that it never took in are
                // void (no longer in transit).
                for id in &e.transfers {
                    t.peer_receipts.insert(id.as_u128(), origin.as_str())?;
                }
            }
            _ => {}
        }
        position = envelope.seq;
        head = hash;
    }
    t.peer_positions.insert(origin.as_str(), position)?;
    t.peer_heads.insert(origin.as_str(), &head)?;
    Ok(stopped.map_or(Ok(position), Err))
}

/// Why a peer's event was not folded.
enum PeerFold {
    Refused(crate::domain::Refused),
    Store(StoreError),
}

impl From<StoreError> for PeerFold {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<redb::StorageError> for PeerFold {
    fn from(e: redb::StorageError) -> Self {
        Self::Store(e.into())
    }
}

/// A holder's level of a sku, as this till knows it: ((holder, sku), level).
type PeerLevel = ((NodeId, Sku), StockLevel);

/// Folds a peer's inventory event into what this till knows of that peer's stock rights (and,
/// for the hub's reclaim of a lost till, of the lost till's): the same fold as the till's own.
/// Returns the levels to write; writes nothing.
fn fold_peer_stock(
    t: &Tables,
    origin: &NodeId,
    envelope: &Envelope,
) -> Result<Vec<PeerLevel>, PeerFold> {
    let at = envelope.occurred_at;
    let peer_level =
        |t: &Tables, holder: &NodeId, sku: &Sku| -> Result<Option<StockLevel>, StoreError> {
            match t.peer_stock.get((holder.as_str(), sku.as_str()))? {
                Some(bytes) => decode("peer_stock", bytes.value()).map(Some),
                None => Ok(None),
            }
        };
    let mut levels = std::collections::BTreeMap::new();
    for sku in inventory::skus_of(&envelope.event) {
        levels.insert(sku.clone(), peer_level(t, origin, sku)?.unwrap_or_default());
    }
    inventory::apply_all(&mut levels, &envelope.event, at).map_err(PeerFold::Refused)?;
    let mut writes: Vec<_> = levels
        .into_iter()
        .map(|(sku, level)| ((origin.clone(), sku), level))
        .collect();
    // The lost till a reclaim names holds nothing any more (if this till knew of it at all).
    if let Event::StockReclaimed(e) = &envelope.event
        && let Some(mut lost) = peer_level(t, &e.from, &e.sku)?
    {
        inventory::apply_reclaimed(&mut lost, at);
        writes.push(((e.from.clone(), e.sku.clone()), lost));
    }
    Ok(writes)
}

/// Folds a peer's order event into the order as this till knows it; returns it to write
/// (`None`: not an order event, or nothing to keep). Writes nothing.
fn fold_peer_order(t: &Tables, envelope: &Envelope) -> Result<Option<orders::Order>, PeerFold> {
    let event = &envelope.event;
    let id = match event {
        Event::OrderCreated(e) => e.order_id,
        Event::OrderPaid(e) => e.order_id,
        Event::OrderCancelled(e) => e.order_id,
        Event::OrderFulfilled(e) => e.order_id,
        Event::OrderFlagged(e) => e.order_id,
        _ => return Ok(None),
    };
    let mut order = match t.peer_orders.get(id.as_u128())? {
        Some(bytes) => Some(decode::<PeerOrder>("peer_orders", bytes.value())?.order),
        None => None,
    };
    orders::apply(&mut order, event).map_err(PeerFold::Refused)?;
    Ok(order)
}
