//! Returns in the store: the writer's side of `fusion_rules::returns` — taking a return when
//! this till holds the order's return rights, asking for them when it does not, giving them
//! to a till that asked, and folding every till's return events into `order_returns`.

use fusion_contracts::commands::{RefundWhere, ReturnOrder};
use fusion_contracts::events::payments::Tender;
use fusion_contracts::events::{OrderReturned, PaymentRefunded, RefundPartTo, RefundTo};
use fusion_contracts::{Event, Money, NodeId, OrderId, Sku};
use redb::ReadableTable;

use super::exec::Batch;
use super::tables::{self, PeerOrder, Tables, decode, encode};
use super::{Outcome, StoreError};
use crate::domain::Refused;
use crate::domain::orders::Order;
use crate::domain::payments;
use crate::domain::returns::{self, Refunding, ReturnRejected, ReturnRights, Tendered};

/// Order `id` as this till knows it — its own or a peer's — and the till that sold it.
pub(super) fn order_and_seller(
    t: &Tables,
    own: &NodeId,
    id: OrderId,
) -> Result<Option<(Order, NodeId)>, StoreError> {
    if let Some(order) = tables::get_order(&t.orders, id)? {
        return Ok(Some((order, own.clone())));
    }
    match t.peer_orders.get(id.as_u128())? {
        Some(v) => {
            let peer: PeerOrder = decode("peer_orders", v.value())?;
            Ok(Some((peer.order, peer.origin)))
        }
        None => Ok(None),
    }
}

/// The order's return rights: its row, or (none returned yet) its seller's.
pub(super) fn rights_of(
    table: &impl ReadableTable<u128, &'static [u8]>,
    order: &Order,
    seller: &NodeId,
) -> Result<ReturnRights, StoreError> {
    match table.get(order.id.as_u128())? {
        Some(v) => decode("order_returns", v.value()),
        None => Ok(ReturnRights::new(order, seller.clone())),
    }
}

/// Decides a return at this till: the return's events when it holds the rights; else, if the
/// return would be valid here, a request for them (`Outcome::ReturnRightsAsked`). In an
/// exchange, `exchange` is the new order and its total.
pub(super) fn decide(
    t: &Tables,
    batch: &Batch,
    cmd: &ReturnOrder,
    exchange: Option<(OrderId, Money)>,
) -> Result<Result<(Vec<Event>, Outcome), ReturnRejected>, StoreError> {
    let me = &batch.node_id;
    let Some((order, seller)) = order_and_seller(t, me, cmd.order_id)? else {
        return Ok(Err(ReturnRejected::NotFound(cmd.order_id)));
    };
    let rights = rights_of(&t.order_returns, &order, &seller)?;
    let mut levels = std::collections::HashMap::new();
    for (line, _) in &cmd.lines {
        if let Some(item) = order.items.get(*line) {
            levels.insert(item.sku.clone(), tables::get_stock(&t.stock, &item.sku)?);
        }
    }
    let credit = match &cmd.refund_to {
        RefundWhere::StoreCredit { account } => tables::get_credit(&t.store_credit, account)?,
        RefundWhere::Cash | RefundWhere::Original => None,
    };
    // The order's payments are the seller's records: only there can they take a refund back.
    let payments = if &seller == me {
        Some(tables::get_order_payments(
            &t.order_payments,
            &t.payments,
            order.id,
        )?)
    } else {
        None
    };
    let mut owed = Vec::new();
    let mut accounts = Vec::new();
    for p in payments.iter().flatten() {
        owed.push(tables::refund_owed(&t.refunds_owed, p.id)?);
        accounts.push(match payments::credit_account_of(&p.payment_method_id) {
            Some(name) if p.tender == Tender::StoreCredit => {
                tables::get_credit(&t.store_credit, name)?
            }
            _ => None,
        });
    }
    let tenders: Option<Vec<Tendered>> = payments.as_ref().map(|ps| {
        ps.iter()
            .zip(&owed)
            .zip(&accounts)
            .map(|((payment, owed), account)| Tendered {
                payment,
                owed_minor: *owed,
                account: account.as_ref(),
            })
            .collect()
    });
    // Decided as if this till held the rights: a return that is wrong anyway is refused here
    // and now, without asking anyone.
    let mut here = rights.clone();
    here.holder = me.clone();
    let at = returns::Counter {
        me,
        approval_limit: batch.return_approval,
        now: batch.now,
    };
    let refunding = Refunding {
        credit: credit.as_ref(),
        tenders: tenders.as_deref(),
        seller: &seller,
        exchange,
    };
    let decided = returns::take_return(
        Some(&order),
        Some(&here),
        at,
        cmd,
        |sku: &Sku| levels.get(sku).cloned().unwrap_or_default(),
        &refunding,
    );
    let events = match decided {
        Ok(events) => events,
        Err(rejected) => return Ok(Err(rejected)),
    };
    if &rights.holder != me {
        let asked = returns::ask_rights(&rights, me, order.id)
            .into_iter()
            .collect();
        return Ok(Ok((
            asked,
            Outcome::ReturnRightsAsked {
                holder: rights.holder,
            },
        )));
    }
    let Some(Event::OrderReturned(returned)) = events.first().cloned() else {
        return Err(StoreError::Invariant(
            "a return starts with order.returned".into(),
        ));
    };
    Ok(Ok((events, Outcome::Return(Box::new(returned)))))
}

/// Records what this till's return owes its card payments (their part of a refund to the
/// original tenders) and puts them on the follow-up list, where the provider refunds them.
pub(super) fn owe_card_refunds(t: &mut Tables, returned: &OrderReturned) -> Result<(), StoreError> {
    let RefundTo::Split { parts } = &returned.refund_to else {
        return Ok(());
    };
    for part in parts {
        let RefundPartTo::Payment {
            payment_id,
            tender: Tender::Card,
        } = &part.to
        else {
            continue;
        };
        let Some(payment) = tables::get_payment(&t.payments, *payment_id)? else {
            return Err(StoreError::Invariant(format!(
                "order.returned owes unknown payment {payment_id}"
            )));
        };
        let minor = Money::from_decimal(part.amount, returned.currency)
            .map_err(|e| StoreError::Invariant(format!("order.returned: {e}")))?
            .minor;
        let owed = tables::refund_owed(&t.refunds_owed, *payment_id)?;
        t.refunds_owed.insert(payment_id.as_u128(), owed + minor)?;
        t.payment_followups
            .insert((payment.created_at.unix_ms(), payment_id.as_u128()), ())?;
    }
    Ok(())
}

/// A refund of a payment pays off what returns owe it, first.
pub(super) fn refunded(t: &mut Tables, refunded: &PaymentRefunded) -> Result<(), StoreError> {
    let owed = tables::refund_owed(&t.refunds_owed, refunded.payment_id)?;
    if owed == 0 {
        return Ok(());
    }
    let minor = Money::from_decimal(refunded.amount, refunded.currency)
        .map_err(|e| StoreError::Invariant(format!("payment.refunded: {e}")))?
        .minor;
    let key = refunded.payment_id.as_u128();
    match owed - minor.min(owed) {
        0 => t.refunds_owed.remove(key)?,
        left => t.refunds_owed.insert(key, left)?,
    };
    Ok(())
}

/// The transfer of an order's return rights to `to`, if this till holds them.
pub(super) fn give(
    t: &Tables,
    me: &NodeId,
    order_id: OrderId,
    to: &NodeId,
) -> Result<Vec<Event>, StoreError> {
    let Some((order, seller)) = order_and_seller(t, me, order_id)? else {
        return Ok(Vec::new());
    };
    let rights = rights_of(&t.order_returns, &order, &seller)?;
    Ok(returns::give_rights(&rights, me, order_id, to)
        .into_iter()
        .collect())
}

/// The order a peer's return event names when this till does not know that order yet: the
/// event waits for its seller's log (a till can hear a return before the sale it returns),
/// which is no refusal — the batch stops there and is delivered again.
pub(super) fn waits_for(
    t: &Tables,
    own: &NodeId,
    event: &Event,
) -> Result<Option<OrderId>, StoreError> {
    let order_id = match event {
        Event::OrderReturned(e) => e.order_id,
        Event::ReturnRightsTransferred(e) => e.order_id,
        _ => return Ok(None),
    };
    Ok(order_and_seller(t, own, order_id)?
        .is_none()
        .then_some(order_id))
}

/// The order's rights after a return event of `origin`, by the rulebook's fold; `None` for
/// other events. A peer's event of an order this till does not know yet waits before this
/// ([`waits_for`]); here it can only be refused.
pub(super) fn folded(
    t: &Tables,
    own: &NodeId,
    origin: &NodeId,
    event: &Event,
) -> Result<Result<Option<(OrderId, ReturnRights)>, Refused>, StoreError> {
    let order_id = match event {
        Event::OrderReturned(e) => e.order_id,
        Event::ReturnRightsTransferred(e) => e.order_id,
        _ => return Ok(Ok(None)),
    };
    let Some((order, seller)) = order_and_seller(t, own, order_id)? else {
        return Ok(Err(Refused::Returns {
            topic: event.topic(),
            reason: format!("order {order_id} is not known here yet"),
        }));
    };
    let mut rights = rights_of(&t.order_returns, &order, &seller)?;
    Ok(returns::apply(&mut rights, &order, origin, event).map(|()| Some((order_id, rights))))
}

/// Writes what [`folded`] gave.
pub(super) fn write(
    t: &mut Tables,
    folded: Option<(OrderId, ReturnRights)>,
) -> Result<(), StoreError> {
    if let Some((id, rights)) = folded {
        t.order_returns
            .insert(id.as_u128(), encode(&rights).as_slice())?;
    }
    Ok(())
}
