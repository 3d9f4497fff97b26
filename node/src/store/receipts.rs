//! Receipts in the store: the writer's side of `fusion_rules::receipts` — the number a paid
//! order of this till gets, and every till's `receipt.issued` folded into `receipt_heads` and
//! `order_receipts`.

use fusion_contracts::events::ReceiptIssued;
use fusion_contracts::{Event, NodeId, OrderId};
use redb::ReadableTable;

use super::StoreError;
use super::tables::{Tables, decode, encode};
use crate::domain::Refused;
use crate::domain::orders::Order;
use crate::domain::receipts;

/// The last receipt number `till` issued (0: none).
pub(super) fn last(
    table: &impl ReadableTable<&'static str, u64>,
    till: &NodeId,
) -> Result<u64, StoreError> {
    Ok(table.get(till.as_str())?.map_or(0, |v| v.value()))
}

/// The receipt of this till's order, just paid.
pub(super) fn issue(
    t: &Tables,
    till: &NodeId,
    order: &Order,
    now: fusion_contracts::Timestamp,
) -> Result<Event, StoreError> {
    Ok(receipts::issue(
        order,
        till,
        last(&t.receipt_heads, till)?,
        now,
    ))
}

/// Folds `origin`'s event: a `receipt.issued` that is not its till's next is refused.
pub(super) fn folded(
    t: &Tables,
    origin: &NodeId,
    event: &Event,
) -> Result<Result<Option<ReceiptIssued>, Refused>, StoreError> {
    let Event::ReceiptIssued(e) = event else {
        return Ok(Ok(None));
    };
    let last = last(&t.receipt_heads, origin)?;
    Ok(receipts::apply(last, origin, e).map(|_| Some(e.clone())))
}

/// Writes what [`folded`] gave.
pub(super) fn write(t: &mut Tables, folded: Option<ReceiptIssued>) -> Result<(), StoreError> {
    if let Some(e) = folded {
        t.receipt_heads.insert(e.till.as_str(), e.number)?;
        t.order_receipts
            .insert(e.order_id.as_u128(), encode(&e).as_slice())?;
    }
    Ok(())
}

/// The receipt of order `id`, if it has one.
pub(super) fn of_order(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: OrderId,
) -> Result<Option<ReceiptIssued>, StoreError> {
    match table.get(id.as_u128())? {
        Some(v) => decode("order_receipts", v.value()).map(Some),
        None => Ok(None),
    }
}
