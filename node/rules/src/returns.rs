//! Returns (issue 17, part 5): units of a paid order's lines taken back and refunded.
//!
//! **No unit is refunded twice, whatever the partitions.** The right to take an order's
//! returns is escrowed like stock: it starts with the till that sold the order and only its
//! holder records `order.returned` for it, checking its own complete view; the holder gives it
//! away only by `order.return_rights_transferred`, which carries what was returned so far. A
//! till that does not hold the rights asks for them (`order.return_rights_requested`) and,
//! until they arrive, refuses (409 naming the holder). Every receiver folds these events by
//! [`apply`], refusing a return or a transfer from anyone but the holder it knows.
//!
//! **The refund of `k` more units of a line that had `r` returned** is `f(r + k) − f(r)`,
//! `f(n) = paid × n / quantity` rounded half away from zero: what the customer paid for the
//! line, after its promotions and discounts and with its tax, shared exactly over its units,
//! so returning every unit refunds exactly what the line paid.

use fusion_contracts::commands::{AdjustStock, IssueStoreCredit, ReturnOrder};
use fusion_contracts::events::{
    OrderReturned, OrderStatus, RefundTo, ReturnRightsRequested, ReturnRightsTransferred,
    ReturnedLine, SoldItem,
};
use fusion_contracts::{Currency, Event, Money, NodeId, OrderId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Refused;
use crate::inventory::StockLevel;
use crate::orders::Order;
use crate::payments::CreditAccount;
use crate::tax::div_round;

/// Who may take an order's returns, and how many units of each line were returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRights {
    pub holder: NodeId,
    /// Units returned, by line.
    pub returned: Vec<u64>,
}

impl ReturnRights {
    /// An order's rights before any return: its till's (`origin`).
    pub fn new(order: &Order, origin: NodeId) -> Self {
        Self {
            holder: origin,
            returned: vec![0; order.items.len()],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ReturnRejected {
    #[error("order {0} not found")]
    NotFound(OrderId),
    #[error("order {order_id} is {status:?}: only a paid order is returned (cancel an unpaid one)")]
    NotPaid {
        order_id: OrderId,
        status: OrderStatus,
    },
    /// Another till holds the order's return rights; they were asked for.
    #[error("the return rights of order {order_id} are at {holder}; asked for, not here yet")]
    RightsElsewhere { order_id: OrderId, holder: NodeId },
    #[error("order {order_id} has no line {line}")]
    NoSuchLine { order_id: OrderId, line: usize },
    #[error("line {line} is named twice")]
    LineTwice { line: usize },
    #[error("line {line}: {asked} more units asked back, {sold} sold and {returned} returned")]
    MoreThanSold {
        line: usize,
        sold: u64,
        returned: u64,
        asked: u64,
    },
    /// A refund above the store's `returnApprovalAmount`, with nobody who may approve it.
    #[error("a refund of {refund} needs a manager's approval (above {limit})")]
    NeedsApproval { refund: String, limit: String },
    /// Store credit in another currency than the account's.
    #[error("store credit account {account} is in another currency")]
    CreditCurrency { account: String },
    /// Restocking would take a level past its maximum.
    #[error("restocking {sku} would exceed its maximum")]
    RestockOverflow { sku: Sku },
}

/// What `quantity` more units of `item` refund when `before` were returned: the rule in the
/// module doc.
pub fn refund_of(item: &SoldItem, before: u64, quantity: u64, currency: Currency) -> Money {
    let paid = Money::from_decimal(item.paid, currency).map_or(0, |m| m.minor);
    let share = |n: u64| div_round(i128::from(paid) * i128::from(n), i128::from(item.quantity));
    // Both shares are at most `paid`: the difference fits.
    Money {
        minor: (share(before + quantity) - share(before)) as i64,
        currency,
    }
}

/// The till taking a return: who it is, the store's `returnApprovalAmount` (`None`: no
/// limit), and the time.
#[derive(Clone, Copy, Debug)]
pub struct Counter<'a> {
    pub me: &'a NodeId,
    pub approval_limit: Option<Money>,
    pub now: Timestamp,
}

/// Takes a return at `at`: `order.returned`, then the restock (`inventory.adjusted`, reason
/// `return`) and the store credit, if any. `stock` and `credit` are this till's.
pub fn take_return(
    order: Option<&Order>,
    rights: Option<&ReturnRights>,
    at: Counter,
    cmd: &ReturnOrder,
    stock: impl Fn(&Sku) -> StockLevel,
    credit: Option<&CreditAccount>,
) -> Result<Vec<Event>, ReturnRejected> {
    let Counter {
        me,
        approval_limit,
        now,
    } = at;
    let order = order.ok_or(ReturnRejected::NotFound(cmd.order_id))?;
    if !matches!(order.status, OrderStatus::Paid | OrderStatus::Fulfilled) {
        return Err(ReturnRejected::NotPaid {
            order_id: order.id,
            status: order.status,
        });
    }
    let rights = rights.ok_or(ReturnRejected::NotFound(order.id))?;
    if &rights.holder != me {
        return Err(ReturnRejected::RightsElsewhere {
            order_id: order.id,
            holder: rights.holder.clone(),
        });
    }
    let currency = order.total.currency;
    let mut lines = Vec::with_capacity(cmd.lines.len());
    let mut seen = std::collections::BTreeSet::new();
    let mut refund = Money::zero(currency);
    for &(line, quantity) in &cmd.lines {
        let item = order.items.get(line).ok_or(ReturnRejected::NoSuchLine {
            order_id: order.id,
            line,
        })?;
        if !seen.insert(line) {
            return Err(ReturnRejected::LineTwice { line });
        }
        let returned = rights.returned.get(line).copied().unwrap_or(0);
        if quantity == 0 || returned + quantity > item.quantity {
            return Err(ReturnRejected::MoreThanSold {
                line,
                sold: item.quantity,
                returned,
                asked: quantity,
            });
        }
        let back = refund_of(item, returned, quantity, currency);
        // Σ of shares of the order's total: fits.
        refund.minor += back.minor;
        lines.push(ReturnedLine {
            line: line as u32,
            sku: item.sku.clone(),
            quantity,
            refund: back.to_decimal(),
        });
    }
    if let Some(limit) = approval_limit
        && refund.minor > limit.minor
        && cmd.approver.is_none()
    {
        return Err(ReturnRejected::NeedsApproval {
            refund: refund.to_decimal().to_string(),
            limit: limit.to_decimal().to_string(),
        });
    }
    let mut events: Vec<Event> = vec![
        OrderReturned {
            return_id: cmd.return_id,
            order_id: order.id,
            lines: lines.clone(),
            refund: refund.to_decimal(),
            currency,
            refund_to: cmd.refund_to.clone(),
            restock: cmd.restock,
            approved_by: cmd.approver.clone(),
            reason: cmd.reason.clone(),
            returned_at: now,
        }
        .into(),
    ];
    if cmd.restock {
        // Lines of one sku restock together, from the level the last one left.
        let mut levels: std::collections::BTreeMap<Sku, StockLevel> = Default::default();
        for l in &lines {
            let level = levels.entry(l.sku.clone()).or_insert_with(|| stock(&l.sku));
            let adjusted = crate::inventory::adjust(
                &AdjustStock {
                    sku: l.sku.clone(),
                    delta: l.quantity as i64,
                    reason: "return".into(),
                },
                level,
            )
            .map_err(|_| ReturnRejected::RestockOverflow { sku: l.sku.clone() })?;
            for e in &adjusted {
                if let Event::StockAdjusted(a) = e {
                    level.available = a.quantity;
                }
            }
            events.extend(adjusted);
        }
    }
    if let RefundTo::StoreCredit { account } = &cmd.refund_to
        && refund.minor > 0
    {
        let issued = crate::payments::issue_credit(
            credit,
            &IssueStoreCredit {
                account: account.clone(),
                amount: refund,
                reason: "return".into(),
            },
            now,
        )
        .map_err(|_| ReturnRejected::CreditCurrency {
            account: account.clone(),
        })?;
        events.extend(issued);
    }
    Ok(events)
}

/// Asks the holder for an order's return rights, unless `me` holds them.
pub fn ask_rights(rights: &ReturnRights, me: &NodeId, order_id: OrderId) -> Option<Event> {
    (&rights.holder != me).then(|| {
        ReturnRightsRequested {
            order_id,
            holder: rights.holder.clone(),
        }
        .into()
    })
}

/// Gives an order's return rights to `to` when `me` holds them (a request can arrive after
/// they left: then nothing).
pub fn give_rights(
    rights: &ReturnRights,
    me: &NodeId,
    order_id: OrderId,
    to: &NodeId,
) -> Option<Event> {
    (&rights.holder == me && to != me).then(|| {
        ReturnRightsTransferred {
            order_id,
            to: to.clone(),
            returned: rights.returned.clone(),
        }
        .into()
    })
}

/// Folds a return event of `origin` into an order's rights: only the holder returns or gives
/// them away, and never more units than were sold.
pub fn apply(
    rights: &mut ReturnRights,
    order: &Order,
    origin: &NodeId,
    event: &Event,
) -> Result<(), Refused> {
    let refuse = |topic: &'static str, reason: String| Err(Refused::Returns { topic, reason });
    match event {
        Event::OrderReturned(e) => {
            if origin != &rights.holder {
                return refuse(
                    "order.returned",
                    format!("{origin} does not hold the return rights of {}", e.order_id),
                );
            }
            let mut returned = rights.returned.clone();
            returned.resize(order.items.len(), 0);
            for l in &e.lines {
                let line = l.line as usize;
                let Some(item) = order.items.get(line) else {
                    return refuse("order.returned", format!("no line {line}"));
                };
                returned[line] += l.quantity;
                if returned[line] > item.quantity || item.sku != l.sku {
                    return refuse(
                        "order.returned",
                        format!("line {line}: more units back than were sold"),
                    );
                }
            }
            rights.returned = returned;
        }
        Event::ReturnRightsTransferred(e) => {
            if origin != &rights.holder {
                return refuse(
                    "order.return_rights_transferred",
                    format!("{origin} does not hold the return rights of {}", e.order_id),
                );
            }
            if e.returned.len() > order.items.len()
                || e.returned
                    .iter()
                    .zip(&order.items)
                    .any(|(r, i)| *r > i.quantity)
            {
                return refuse(
                    "order.return_rights_transferred",
                    "more units returned than were sold".into(),
                );
            }
            rights.holder = e.to.clone();
            rights.returned.resize(order.items.len(), 0);
            for (line, r) in e.returned.iter().enumerate() {
                rights.returned[line] = rights.returned[line].max(*r);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use fusion_contracts::CustomerId;
    use fusion_contracts::events::{Adjustment, AdjustmentKind};

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_ms(1_000);

    fn usd(minor: i64) -> Money {
        Money {
            minor,
            currency: Currency::USD,
        }
    }

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    /// A line of `quantity` units that paid `paid` cents in all.
    fn item(sku: &str, quantity: u64, unit: i64, paid: i64) -> SoldItem {
        let gross = unit * quantity as i64;
        SoldItem {
            sku: Sku::new(sku).unwrap(),
            quantity,
            price: usd(unit).to_decimal(),
            category: None,
            list_price: Some(usd(unit).to_decimal()),
            price_override: None,
            tax_class: "standard".into(),
            adjustments: if gross > paid {
                vec![Adjustment {
                    kind: AdjustmentKind::Discount,
                    amount: usd(gross - paid).to_decimal(),
                    promotion_id: None,
                    reason: None,
                    approved_by: None,
                }]
            } else {
                vec![]
            },
            net: usd(paid.min(gross)).to_decimal(),
            tax: usd((paid - gross).max(0)).to_decimal(),
            paid: usd(paid).to_decimal(),
        }
    }

    fn order(items: Vec<SoldItem>, status: OrderStatus) -> Order {
        let total: i64 = items
            .iter()
            .map(|i| Money::from_decimal(i.paid, Currency::USD).unwrap().minor)
            .sum();
        Order {
            id: OrderId::from_u128(1),
            customer_id: CustomerId::new("c").unwrap(),
            items,
            total: usd(total),
            status,
            created_at: NOW,
            updated_at: NOW,
            flag: None,
            shipping_address: None,
            hold_until: None,
            subtotal: usd(total),
            discount_total: usd(0),
            promotions: vec![],
            discount: None,
            taxes: vec![],
            tax_included: false,
        }
    }

    fn cmd(lines: Vec<(usize, u64)>) -> ReturnOrder {
        ReturnOrder {
            return_id: uuid::Uuid::from_u128(9),
            order_id: OrderId::from_u128(1),
            lines,
            restock: false,
            refund_to: RefundTo::Cash,
            reason: None,
            approver: None,
        }
    }

    /// The refund of k more units: each unit's exact share of what the line paid, so the
    /// units of a line refund exactly its paid, in any split.
    #[test]
    fn refunds_share_what_a_line_paid() {
        // (units, paid cents, returns in turn, refunds)
        let cases: &[(u64, i64, &[u64], &[i64])] = &[
            (3, 1000, &[1, 1, 1], &[333, 334, 333]),
            (3, 1000, &[3], &[1000]),
            (3, 1000, &[2, 1], &[667, 333]),
            // A discounted and taxed line: 3 × 4.00 − 1.00 + 20 % = 13.20.
            (3, 1320, &[1, 2], &[440, 880]),
            (7, 1, &[1, 1, 1, 1, 1, 1, 1], &[0, 0, 0, 1, 0, 0, 0]),
            (2, 0, &[2], &[0]),
        ];
        for (quantity, paid, returns, refunds) in cases {
            let line = item("A", *quantity, 1000, *paid);
            let mut before = 0;
            let got: Vec<i64> = returns
                .iter()
                .map(|k| {
                    let r = refund_of(&line, before, *k, Currency::USD).minor;
                    before += k;
                    r
                })
                .collect();
            assert_eq!(&got, refunds, "{quantity} units paid {paid}: {returns:?}");
            assert_eq!(got.iter().sum::<i64>(), *paid);
        }
    }

    #[test]
    fn take_return_table() {
        let me = node("till-a");
        let sold = || {
            order(
                vec![item("A", 2, 500, 1000), item("B", 1, 300, 360)],
                OrderStatus::Paid,
            )
        };
        let rights = |returned: Vec<u64>, holder: &str| ReturnRights {
            holder: node(holder),
            returned,
        };
        type Expected = Result<i64, &'static str>;
        // (name, order, rights, lines, approval limit, approver, expected refund or refusal)
        type Case = (
            &'static str,
            Order,
            ReturnRights,
            Vec<(usize, u64)>,
            Option<i64>,
            bool,
            Expected,
        );
        let cases: Vec<Case> = vec![
            (
                "one unit",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(0, 1)],
                None,
                false,
                Ok(500),
            ),
            (
                "both lines",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(0, 2), (1, 1)],
                None,
                false,
                Ok(1360),
            ),
            (
                "the last unit",
                sold(),
                rights(vec![1, 0], "till-a"),
                vec![(0, 1)],
                None,
                false,
                Ok(500),
            ),
            (
                "one more than left",
                sold(),
                rights(vec![2, 0], "till-a"),
                vec![(0, 1)],
                None,
                false,
                Err("more"),
            ),
            (
                "zero units",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(0, 0)],
                None,
                false,
                Err("more"),
            ),
            (
                "no such line",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(2, 1)],
                None,
                false,
                Err("line"),
            ),
            (
                "a line twice",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(0, 1), (0, 1)],
                None,
                false,
                Err("twice"),
            ),
            (
                "rights elsewhere",
                sold(),
                rights(vec![0, 0], "till-b"),
                vec![(0, 1)],
                None,
                false,
                Err("elsewhere"),
            ),
            (
                "unpaid",
                order(vec![item("A", 1, 500, 500)], OrderStatus::Created),
                rights(vec![0], "till-a"),
                vec![(0, 1)],
                None,
                false,
                Err("unpaid"),
            ),
            (
                "above the limit",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(0, 2)],
                Some(999),
                false,
                Err("approval"),
            ),
            (
                "above the limit, approved",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(0, 2)],
                Some(999),
                true,
                Ok(1000),
            ),
            (
                "at the limit",
                sold(),
                rights(vec![0, 0], "till-a"),
                vec![(0, 2)],
                Some(1000),
                false,
                Ok(1000),
            ),
        ];
        for (name, order, rights, lines, limit, approved, expected) in cases {
            let mut c = cmd(lines);
            c.approver = approved.then(|| "token:m".into());
            let at = Counter {
                me: &me,
                approval_limit: limit.map(usd),
                now: NOW,
            };
            let got = take_return(
                Some(&order),
                Some(&rights),
                at,
                &c,
                |_| StockLevel::default(),
                None,
            );
            match (got, expected) {
                (Ok(events), Ok(refund)) => {
                    let Event::OrderReturned(e) = &events[0] else {
                        panic!("{name}: {events:?}")
                    };
                    assert_eq!(e.refund, usd(refund).to_decimal(), "{name}");
                    // The event is valid, and the fold takes it.
                    assert!(events[0].validate().is_ok(), "{name}");
                    let mut folded = rights.clone();
                    apply(&mut folded, &order, &me, &events[0]).unwrap();
                }
                (Err(ReturnRejected::MoreThanSold { .. }), Err("more"))
                | (Err(ReturnRejected::NoSuchLine { .. }), Err("line"))
                | (Err(ReturnRejected::LineTwice { .. }), Err("twice"))
                | (Err(ReturnRejected::RightsElsewhere { .. }), Err("elsewhere"))
                | (Err(ReturnRejected::NotPaid { .. }), Err("unpaid"))
                | (Err(ReturnRejected::NeedsApproval { .. }), Err("approval")) => {}
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    /// Restocking puts the units back at this till; store credit is issued in the same
    /// events.
    #[test]
    fn a_return_restocks_and_credits() {
        let me = node("till-a");
        let sold = order(vec![item("A", 2, 500, 1000)], OrderStatus::Fulfilled);
        let mut c = cmd(vec![(0, 2)]);
        c.restock = true;
        c.refund_to = RefundTo::StoreCredit {
            account: "alice".into(),
        };
        let at = Counter {
            me: &me,
            approval_limit: None,
            now: NOW,
        };
        let events = take_return(
            Some(&sold),
            Some(&ReturnRights::new(&sold, me.clone())),
            at,
            &c,
            |_| StockLevel {
                available: 3,
                ..StockLevel::default()
            },
            None,
        )
        .unwrap();
        let topics: Vec<&str> = events.iter().map(|e| e.topic()).collect();
        assert_eq!(
            topics,
            [
                "order.returned",
                "inventory.adjusted",
                "store-credit.changed"
            ]
        );
        let Event::StockAdjusted(a) = &events[1] else {
            unreachable!()
        };
        assert_eq!((a.previous_quantity, a.quantity), (3, 5));
    }

    /// Two tills, partitioned, both asked for the order's last unit: only the holder refunds
    /// it; the other asks for the rights and refuses. After the heal each folds the other's
    /// events to the same returned quantities, and a return by a non-holder is refused.
    #[test]
    fn partitioned_tills_never_refund_a_unit_twice() {
        let (a, b) = (node("till-a"), node("till-b"));
        let sold = order(vec![item("A", 1, 500, 500)], OrderStatus::Paid);
        let start = ReturnRights::new(&sold, a.clone());
        let (mut at_a, mut at_b) = (start.clone(), start.clone());
        let c = cmd(vec![(0, 1)]);
        let take = |rights: &ReturnRights, me: &NodeId| {
            let at = Counter {
                me,
                approval_limit: None,
                now: NOW,
            };
            take_return(
                Some(&sold),
                Some(rights),
                at,
                &c,
                |_| StockLevel::default(),
                None,
            )
        };
        let by_a = take(&at_a, &a).unwrap();
        let refused = take(&at_b, &b).unwrap_err();
        assert_eq!(
            refused,
            ReturnRejected::RightsElsewhere {
                order_id: sold.id,
                holder: a.clone()
            }
        );
        let asked = ask_rights(&at_b, &b, sold.id).expect("b asks");
        apply(&mut at_a, &sold, &a, &by_a[0]).unwrap();
        // Heal: b folds a's return, a sees b's request and gives the rights, with the count.
        apply(&mut at_b, &sold, &a, &by_a[0]).unwrap();
        assert!(matches!(asked, Event::ReturnRightsRequested(_)));
        let given = give_rights(&at_a, &a, sold.id, &b).expect("a holds them");
        apply(&mut at_a, &sold, &a, &given).unwrap();
        apply(&mut at_b, &sold, &a, &given).unwrap();
        assert_eq!(at_a, at_b);
        assert_eq!(
            (at_b.holder.clone(), at_b.returned.clone()),
            (b.clone(), vec![1])
        );
        // b holds them now, and nothing is left to return.
        assert!(matches!(
            take(&at_b, &b).unwrap_err(),
            ReturnRejected::MoreThanSold { .. }
        ));
        // a, no longer the holder, can neither return nor give them again; a forged return
        // from it is refused by every fold.
        assert!(give_rights(&at_a, &a, sold.id, &b).is_none());
        let mut fresh = ReturnRights::new(&sold, a.clone());
        fresh.holder = b.clone();
        assert!(apply(&mut fresh, &sold, &a, &by_a[0]).is_err());
    }
}
