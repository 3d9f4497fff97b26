//! Format 2 → 3 (issue 17): an order's row holds its lines as sold (tax class, adjustments,
//! each line's tax and paid) and its amounts, and a product's row its tax class and category.
//!
//! Order rows are rebuilt from their `order.created` in the log (this till's, or the peer's
//! that took it), which every schema version decodes into today's layout; what happened to
//! the order since (status, flag, last change) is kept from the old row. Product rows gain
//! no tax class or category (their documents had none). `order_pricing`, which held the
//! lines of taxed and overridden orders, is dropped: the order rows hold them now. One write
//! transaction: the upgrade happens whole or not at all.

use fusion_contracts::events::{OrderItem, OrderStatus, ProductStatus, shipping::Address};
use fusion_contracts::{
    CustomerId, Envelope, Event, Money, NodeId, OrderId, ProductId, Sku, Timestamp,
};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::tables::{self, PeerOrder, StoredProduct, decode, encode};
use crate::domain::orders::{self, Order};

/// The table format 2 kept for orders with more than their row held; dropped by the upgrade.
const ORDER_PRICING: TableDefinition<u128, &[u8]> = TableDefinition::new("order_pricing");

/// An order row of formats 1 and 2.
#[derive(Deserialize)]
struct OrderV2 {
    _id: OrderId,
    _customer_id: CustomerId,
    _items: Vec<OrderItem>,
    _total: Money,
    status: OrderStatus,
    _created_at: Timestamp,
    updated_at: Timestamp,
    flag: Option<String>,
    _shipping_address: Option<Address>,
    _hold_until: Option<Timestamp>,
}

#[derive(Deserialize)]
struct PeerOrderV2 {
    _origin: NodeId,
    order: OrderV2,
}

/// A product row of formats 1 and 2.
#[derive(Serialize, Deserialize)]
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

/// The order `created` makes, with what happened to it since as `old` records.
fn rebuilt(created: &Envelope, old: OrderV2) -> Result<Order, StoreError> {
    let mut order = None;
    orders::apply(&mut order, &created.event).map_err(|refused| StoreError::Corrupt {
        table: "events",
        reason: refused.to_string(),
    })?;
    let mut order = order.ok_or_else(|| StoreError::Corrupt {
        table: "events",
        reason: "order.created made no order".into(),
    })?;
    order.status = old.status;
    order.updated_at = old.updated_at;
    order.flag = old.flag;
    Ok(order)
}

/// Upgrades a store of format 1 or 2 (after the journal upgrade of format 1) to format 3.
/// Returns the orders and products rewritten.
pub(super) fn upgrade_v2(db: &Database) -> Result<(u64, u64), StoreError> {
    let txn = db.begin_write()?;
    let (mut orders_done, mut products_done) = (0u64, 0u64);
    {
        let list = txn.open_table(tables::ORDER_LIST)?;
        let events = txn.open_table(tables::EVENTS)?;
        let mut rows = txn.open_table(tables::ORDERS)?;
        for entry in list.iter()? {
            let (seq, id) = entry?;
            let (seq, id) = (seq.value(), id.value());
            let Some(old) = rows.get(id)?.map(|v| v.value().to_vec()) else {
                continue;
            };
            let value = events.get(seq)?.ok_or_else(|| StoreError::Corrupt {
                table: "order_list",
                reason: format!("no event at {seq}"),
            })?;
            let (_, bytes) = super::journal::split_entry(value.value())?;
            let created = Envelope::decode(bytes).map_err(|e| StoreError::Corrupt {
                table: "events",
                reason: e.to_string(),
            })?;
            drop(value);
            let order = rebuilt(&created, decode::<OrderV2>("orders", &old)?)?;
            rows.insert(id, encode(&order).as_slice())?;
            orders_done += 1;
        }
        let peer_events = txn.open_table(tables::PEER_EVENTS)?;
        let mut peer_orders = txn.open_table(tables::PEER_ORDERS)?;
        for entry in peer_events.iter()? {
            let (key, bytes) = entry?;
            let Ok(envelope) = Envelope::decode(bytes.value()) else {
                continue;
            };
            let Event::OrderCreated(e) = &envelope.event else {
                continue;
            };
            let id = e.order_id.as_u128();
            let Some(old) = peer_orders.get(id)?.map(|v| v.value().to_vec()) else {
                continue;
            };
            let origin = NodeId::new(key.value().0).map_err(|e| StoreError::Corrupt {
                table: "peer_events",
                reason: e.to_string(),
            })?;
            let old: PeerOrderV2 = decode("peer_orders", &old)?;
            let record = PeerOrder {
                origin,
                order: rebuilt(&envelope, old.order)?,
            };
            peer_orders.insert(id, encode(&record).as_slice())?;
            orders_done += 1;
        }
        let mut products = txn.open_table(tables::PRODUCTS)?;
        let old: Vec<(u128, Vec<u8>)> = products
            .iter()?
            .map(|e| e.map(|(k, v)| (k.value(), v.value().to_vec())))
            .collect::<Result<_, _>>()?;
        for (id, bytes) in old {
            let p: ProductV2 = decode("products", &bytes)?;
            let stored = StoredProduct {
                product: fusion_contracts::events::Product {
                    id: p.id,
                    sku: p.sku,
                    name: p.name,
                    description: p.description,
                    price: p.price,
                    status: p.status,
                    created_at: p.created_at,
                    updated_at: p.updated_at,
                    tax_class: None,
                    category: None,
                },
            };
            products.insert(id, encode(&stored).as_slice())?;
            products_done += 1;
        }
    }
    txn.delete_table(ORDER_PRICING)?;
    tables::set_format_version(&txn, super::FORMAT_VERSION)?;
    txn.commit()?;
    Ok((orders_done, products_done))
}
