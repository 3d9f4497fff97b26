//! Receipts in the store: the writer's side of `fusion_rules::receipts` — the number a paid
//! order of this till gets, and every till's `receipt.issued` folded into `receipt_heads` and
//! `order_receipts`.

use fusion_contracts::events::{ReceiptIssued, ReceiptPrinted};
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
        t.receipt_orders
            .insert(e.receipt.as_str(), e.order_id.as_u128())?;
    }
    Ok(())
}

/// How many times `till` printed order `id`'s receipt.
pub(super) fn prints(
    table: &impl ReadableTable<(u128, &'static str), u64>,
    id: OrderId,
    till: &NodeId,
) -> Result<u64, StoreError> {
    Ok(table
        .get((id.as_u128(), till.as_str()))?
        .map_or(0, |v| v.value()))
}

/// Folds `origin`'s `receipt.printed`: another till's print, or not its next copy, is refused.
pub(super) fn folded_print(
    t: &Tables,
    origin: &NodeId,
    event: &Event,
) -> Result<Result<Option<ReceiptPrinted>, Refused>, StoreError> {
    let Event::ReceiptPrinted(e) = event else {
        return Ok(Ok(None));
    };
    let printed = prints(&t.receipt_prints, e.order_id, origin)?;
    Ok(receipts::apply_print(printed, origin, e).map(|_| Some(e.clone())))
}

/// Writes what [`folded_print`] gave.
pub(super) fn write_print(
    t: &mut Tables,
    folded: Option<ReceiptPrinted>,
) -> Result<(), StoreError> {
    if let Some(e) = folded {
        t.receipt_prints
            .insert((e.order_id.as_u128(), e.till.as_str()), e.copy)?;
    }
    Ok(())
}

/// Records who sold an order (when a signed-in member did), and a return for its slip.
pub(super) fn record_for_slips(t: &mut Tables, event: &Event) -> Result<(), StoreError> {
    match event {
        Event::OrderCreated(e) => {
            if let Some(staff) = &e.staff {
                t.order_staff.insert(e.order_id.as_u128(), staff.as_str())?;
            }
        }
        Event::OrderReturned(e) => {
            t.returns
                .insert(e.return_id.as_u128(), encode(e).as_slice())?;
        }
        _ => {}
    }
    Ok(())
}

/// Return `id`, if this store holds it.
pub(super) fn return_of(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: uuid::Uuid,
) -> Result<Option<fusion_contracts::events::OrderReturned>, StoreError> {
    table
        .get(id.as_u128())?
        .map(|v| decode("returns", v.value()))
        .transpose()
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

/// The verification code of this till's receipt for order `id` (`None`: another till sold
/// it, or it has no receipt): the seq of its `receipt.issued` and that journal entry's hash.
pub(super) fn code(
    seqs: &impl ReadableTable<u128, u64>,
    events: &impl ReadableTable<u64, &'static [u8]>,
    id: OrderId,
) -> Result<Option<String>, StoreError> {
    let Some(seq) = seqs.get(id.as_u128())?.map(|v| v.value()) else {
        return Ok(None);
    };
    let Some(entry) = events.get(seq)? else {
        return Ok(None);
    };
    let (hash, _) = super::journal::split_entry(entry.value())?;
    Ok(Some(receipts::verification_code(seq, &hash)))
}

/// Folds `origin`'s `receipt.emailed`: a request another till took is refused.
pub(super) fn check_email(origin: &NodeId, event: &Event) -> Result<(), Refused> {
    match event {
        Event::ReceiptEmailed(e) => receipts::apply_email(origin, e),
        _ => Ok(()),
    }
}
