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

use fusion_contracts::commands::{
    AdjustStock, IssueStoreCredit, RecordRefund, RefundWhere, ReturnOrder,
};
use fusion_contracts::events::payments::Tender;
use fusion_contracts::events::{
    OrderReturned, OrderStatus, RefundPart, RefundPartTo, RefundTo, ReturnRightsRequested,
    ReturnRightsTransferred, ReturnedLine, SoldItem, exchange_account,
};
use fusion_contracts::{Currency, Event, Money, NodeId, OrderId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Refused;
use crate::inventory::StockLevel;
use crate::orders::Order;
use crate::payments::{CreditAccount, Payment};
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
    /// A refund to the order's own payments asked at a till that does not hold them.
    #[error(
        "the payments of order {order_id} are at till {seller}: refund to them there, or to cash or store credit here"
    )]
    TendersElsewhere { order_id: OrderId, seller: NodeId },
    /// The order's payments cannot take the refund back (refunded already, or not captured).
    #[error("the payments of order {order_id} can take back {refundable}, not {refund}")]
    TendersShort {
        order_id: OrderId,
        refundable: String,
        refund: String,
    },
}

/// One of the order's payments, as a refund to it sees it.
#[derive(Clone, Copy, Debug)]
pub struct Tendered<'a> {
    pub payment: &'a Payment,
    /// Card refunds earlier returns owe it and the provider has not made yet.
    pub owed_minor: i64,
    /// A store-credit payment's account.
    pub account: Option<&'a CreditAccount>,
}

impl Tendered<'_> {
    fn refundable_minor(&self) -> i64 {
        (self.payment.refundable_minor() - self.owed_minor).max(0)
    }
}

/// Where a return's refund goes, and what deciding it needs.
#[derive(Clone, Copy, Debug)]
pub struct Refunding<'a> {
    /// The store-credit account of `RefundWhere::StoreCredit`, if it exists.
    pub credit: Option<&'a CreditAccount>,
    /// The order's payments, in the order they were made; `None` at a till that does not
    /// hold them (another till sold the order).
    pub tenders: Option<&'a [Tendered<'a>]>,
    /// The till that sold the order.
    pub seller: &'a NodeId,
    /// An exchange: its new order and that order's total, paid first.
    pub exchange: Option<(OrderId, Money)>,
}

/// Tenders a refund to the order's payments goes back to first: cards (the money returns where
/// it came from), then store credit, then cash.
const TENDER_ORDER: [Tender; 3] = [Tender::Card, Tender::StoreCredit, Tender::Cash];

/// Where `refund` goes: in an exchange first to the new order (up to its total), the rest as
/// asked — to cash, to a store-credit account, or back over the order's payments
/// ([`TENDER_ORDER`], each up to what it can still take back).
pub fn refund_parts(
    order_id: OrderId,
    refund: Money,
    to: &RefundWhere,
    refunding: &Refunding,
) -> Result<RefundTo, ReturnRejected> {
    let part = |to: RefundPartTo, minor: i64| RefundPart {
        to,
        amount: Money {
            minor,
            currency: refund.currency,
        }
        .to_decimal(),
    };
    let mut parts = Vec::new();
    let mut rest = refund.minor;
    if let Some((new_order, total)) = refunding.exchange {
        let applied = rest.min(total.minor);
        if applied > 0 {
            parts.push(part(
                RefundPartTo::Order {
                    order_id: new_order,
                },
                applied,
            ));
            rest -= applied;
        }
    }
    match to {
        RefundWhere::Cash | RefundWhere::StoreCredit { .. } if parts.is_empty() => {
            // Nothing shared: the plain destination, as a return without an exchange says it.
            return Ok(match to {
                RefundWhere::StoreCredit { account } => RefundTo::StoreCredit {
                    account: account.clone(),
                },
                _ => RefundTo::Cash,
            });
        }
        RefundWhere::Cash if rest > 0 => parts.push(part(RefundPartTo::Cash, rest)),
        RefundWhere::StoreCredit { account } if rest > 0 => parts.push(part(
            RefundPartTo::StoreCredit {
                account: account.clone(),
            },
            rest,
        )),
        RefundWhere::Original if rest > 0 => {
            let tenders = refunding
                .tenders
                .ok_or_else(|| ReturnRejected::TendersElsewhere {
                    order_id,
                    seller: refunding.seller.clone(),
                })?;
            let asked = rest;
            for tender in TENDER_ORDER {
                for t in tenders.iter().filter(|t| t.payment.tender == tender) {
                    let take = rest.min(t.refundable_minor());
                    if take > 0 {
                        parts.push(part(
                            RefundPartTo::Payment {
                                payment_id: t.payment.id,
                                tender,
                            },
                            take,
                        ));
                        rest -= take;
                    }
                }
            }
            if rest > 0 {
                let money = |minor| {
                    Money {
                        minor,
                        currency: refund.currency,
                    }
                    .to_decimal()
                    .to_string()
                };
                return Err(ReturnRejected::TendersShort {
                    order_id,
                    refundable: money(asked - rest),
                    refund: money(asked),
                });
            }
        }
        _ => {}
    }
    Ok(if parts.is_empty() {
        // A refund of nothing (lines that paid nothing).
        RefundTo::Cash
    } else {
        RefundTo::Split { parts }
    })
}

/// The events moving a refund's money, by where [`refund_parts`] sent it: store credit
/// issued (an exchange's through its account), cash and store-credit payments refunded. A
/// card payment's part is owed until the provider refunds it (the node's follow-up).
fn money_back(
    return_id: uuid::Uuid,
    refund_to: &RefundTo,
    refund: Money,
    refunding: &Refunding,
    now: Timestamp,
) -> Result<Vec<Event>, ReturnRejected> {
    let money = |minor| Money {
        minor,
        currency: refund.currency,
    };
    let exchange = exchange_account(return_id);
    // (account, amount) credited, in order; a store-credit payment's account is credited by
    // its refund.
    let mut credits: Vec<(&str, i64)> = Vec::new();
    let mut refunds: Vec<(&Tendered, i64)> = Vec::new();
    match refund_to {
        RefundTo::Cash => {}
        RefundTo::StoreCredit { account } => credits.push((account, refund.minor)),
        RefundTo::Split { parts } => {
            for p in parts {
                let minor = Money::from_decimal(p.amount, refund.currency).map_or(0, |m| m.minor);
                match &p.to {
                    RefundPartTo::Cash
                    | RefundPartTo::Payment {
                        tender: Tender::Card,
                        ..
                    } => {}
                    RefundPartTo::StoreCredit { account } => credits.push((account, minor)),
                    RefundPartTo::Order { .. } => credits.push((&exchange, minor)),
                    RefundPartTo::Payment { payment_id, .. } => {
                        if let Some(t) = refunding
                            .tenders
                            .unwrap_or_default()
                            .iter()
                            .find(|t| t.payment.id == *payment_id)
                        {
                            refunds.push((t, minor));
                        }
                    }
                }
            }
        }
    }
    // Accounts as this return's events leave them (two parts can touch one account).
    let mut accounts: std::collections::BTreeMap<String, Option<CreditAccount>> =
        Default::default();
    let mut events = Vec::new();
    let mut fold = |accounts: &mut std::collections::BTreeMap<String, Option<CreditAccount>>,
                    new: Vec<Event>| {
        for e in &new {
            if let Event::StoreCreditChanged(c) = e {
                crate::payments::apply_credit(
                    accounts.entry(c.account.clone()).or_default(),
                    e,
                    now,
                );
            }
        }
        events.extend(new);
    };
    let known = |accounts: &std::collections::BTreeMap<String, Option<CreditAccount>>,
                 name: &str,
                 given: Option<&CreditAccount>|
     -> Option<CreditAccount> {
        match accounts.get(name) {
            Some(now) => now.clone(),
            None => given.filter(|a| a.account == name).cloned(),
        }
    };
    for (account, minor) in credits.into_iter().filter(|(_, m)| *m > 0) {
        let current = known(&accounts, account, refunding.credit);
        let issued = crate::payments::issue_credit(
            current.as_ref(),
            &IssueStoreCredit {
                account: account.to_string(),
                amount: money(minor),
                reason: "return".into(),
            },
            now,
        )
        .map_err(|_| ReturnRejected::CreditCurrency {
            account: account.to_string(),
        })?;
        fold(&mut accounts, issued);
    }
    for (t, minor) in refunds {
        let account = crate::payments::credit_account_of(&t.payment.payment_method_id)
            .filter(|_| t.payment.tender == Tender::StoreCredit)
            .and_then(|name| known(&accounts, name, t.account));
        let refunded = crate::payments::refund(
            Some(t.payment),
            &RecordRefund {
                payment_id: t.payment.id,
                amount: money(minor),
                provider_ref: None,
            },
            account.as_ref(),
        );
        // refund_parts took no more than each payment could give back.
        fold(&mut accounts, refunded.unwrap_or_default());
    }
    Ok(events)
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
    refunding: &Refunding,
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
    let refund_to = refund_parts(order.id, refund, &cmd.refund_to, refunding)?;
    let mut events: Vec<Event> = vec![
        OrderReturned {
            return_id: cmd.return_id,
            order_id: order.id,
            lines: lines.clone(),
            refund: refund.to_decimal(),
            currency,
            refund_to: refund_to.clone(),
            restock: cmd.restock,
            approved_by: cmd.approver.clone(),
            reason: cmd.reason.clone(),
            returned_at: now,
            staff: cmd.staff.clone(),
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
    events.extend(money_back(
        cmd.return_id,
        &refund_to,
        refund,
        refunding,
        now,
    )?);
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

    /// A return at the seller `me` that holds no payments and is no exchange.
    fn plain(me: &NodeId) -> Refunding<'_> {
        Refunding {
            credit: None,
            tenders: Some(&[]),
            seller: me,
            exchange: None,
        }
    }

    fn cmd(lines: Vec<(usize, u64)>) -> ReturnOrder {
        ReturnOrder {
            return_id: uuid::Uuid::from_u128(9),
            order_id: OrderId::from_u128(1),
            lines,
            restock: false,
            refund_to: RefundWhere::Cash,
            reason: None,
            approver: None,
            staff: None,
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
                &plain(&me),
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
        c.refund_to = RefundWhere::StoreCredit {
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
            &plain(&me),
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
                &plain(&a),
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

    fn payment(id: u128, tender: Tender, captured: i64, refunded: i64) -> Payment {
        Payment {
            id: fusion_contracts::PaymentId::from_u128(id),
            order_id: OrderId::from_u128(1),
            amount: usd(captured),
            tender,
            payment_method_id: match tender {
                Tender::Cash => "cash".into(),
                Tender::Card => "pm_card_visa".into(),
                Tender::StoreCredit => "store_credit:alice".into(),
            },
            tendered: None,
            capture: true,
            status: if refunded == 0 {
                fusion_contracts::events::payments::PaymentStatus::Captured
            } else {
                fusion_contracts::events::payments::PaymentStatus::PartiallyRefunded
            },
            captured_minor: captured,
            refunded_minor: refunded,
            change_due: None,
            provider_ref: Some("pi_1".into()),
            failure_reason: None,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    /// Where a refund goes: an exchange's new order first, then the asked destination; the
    /// order's own payments take it back cards first, then store credit, then cash, each up to
    /// what it can still give back less what earlier returns owe it.
    #[test]
    fn refund_parts_table() {
        let seller = node("till-a");
        let (cash, card, credit) = (
            payment(1, Tender::Cash, 600, 0),
            payment(2, Tender::Card, 300, 0),
            payment(3, Tender::StoreCredit, 100, 0),
        );
        fn tendered(p: &Payment, owed: i64) -> Tendered<'_> {
            Tendered {
                payment: p,
                owed_minor: owed,
                account: None,
            }
        }
        let all = [tendered(&cash, 0), tendered(&card, 0), tendered(&credit, 0)];
        let card_owed = [
            tendered(&cash, 0),
            tendered(&card, 250),
            tendered(&credit, 0),
        ];
        let refunded_cash = payment(1, Tender::Cash, 600, 550);
        let short = [tendered(&refunded_cash, 0)];
        let pay = |id: u128, tender: Tender, minor: i64| RefundPart {
            to: RefundPartTo::Payment {
                payment_id: fusion_contracts::PaymentId::from_u128(id),
                tender,
            },
            amount: usd(minor).to_decimal(),
        };
        let part = |to: RefundPartTo, minor: i64| RefundPart {
            to,
            amount: usd(minor).to_decimal(),
        };
        let new_order = OrderId::from_u128(7);
        let alice = || RefundWhere::StoreCredit {
            account: "alice".into(),
        };
        type Case<'a> = (
            &'static str,
            i64,
            RefundWhere,
            Option<&'a [Tendered<'a>]>,
            Option<i64>,
            Result<RefundTo, &'static str>,
        );
        // (name, refund, asked, the order's payments here, an exchange's new total, expected)
        let cases: Vec<Case> = vec![
            (
                "cash",
                500,
                RefundWhere::Cash,
                None,
                None,
                Ok(RefundTo::Cash),
            ),
            (
                "store credit",
                500,
                alice(),
                None,
                None,
                Ok(RefundTo::StoreCredit {
                    account: "alice".into(),
                }),
            ),
            (
                "original: the card first",
                200,
                RefundWhere::Original,
                Some(&all),
                None,
                Ok(RefundTo::Split {
                    parts: vec![pay(2, Tender::Card, 200)],
                }),
            ),
            (
                "original: card, store credit, then cash",
                700,
                RefundWhere::Original,
                Some(&all),
                None,
                Ok(RefundTo::Split {
                    parts: vec![
                        pay(2, Tender::Card, 300),
                        pay(3, Tender::StoreCredit, 100),
                        pay(1, Tender::Cash, 300),
                    ],
                }),
            ),
            (
                "original: what an earlier return owes the card is not given twice",
                100,
                RefundWhere::Original,
                Some(&card_owed),
                None,
                Ok(RefundTo::Split {
                    parts: vec![pay(2, Tender::Card, 50), pay(3, Tender::StoreCredit, 50)],
                }),
            ),
            (
                "original: more than the payments can take back",
                100,
                RefundWhere::Original,
                Some(&short),
                None,
                Err("short"),
            ),
            (
                "original at a till without the payments",
                100,
                RefundWhere::Original,
                None,
                None,
                Err("elsewhere"),
            ),
            (
                "exchange for dearer: all of it pays the new order",
                500,
                RefundWhere::Cash,
                None,
                Some(800),
                Ok(RefundTo::Split {
                    parts: vec![part(
                        RefundPartTo::Order {
                            order_id: new_order,
                        },
                        500,
                    )],
                }),
            ),
            (
                "exchange for cheaper: the rest in cash",
                500,
                RefundWhere::Cash,
                None,
                Some(350),
                Ok(RefundTo::Split {
                    parts: vec![
                        part(
                            RefundPartTo::Order {
                                order_id: new_order,
                            },
                            350,
                        ),
                        part(RefundPartTo::Cash, 150),
                    ],
                }),
            ),
            (
                "exchange for cheaper: the rest to the card",
                500,
                RefundWhere::Original,
                Some(&all),
                Some(350),
                Ok(RefundTo::Split {
                    parts: vec![
                        part(
                            RefundPartTo::Order {
                                order_id: new_order,
                            },
                            350,
                        ),
                        pay(2, Tender::Card, 150),
                    ],
                }),
            ),
            (
                "exchange, the rest to store credit",
                500,
                alice(),
                None,
                Some(100),
                Ok(RefundTo::Split {
                    parts: vec![
                        part(
                            RefundPartTo::Order {
                                order_id: new_order,
                            },
                            100,
                        ),
                        part(
                            RefundPartTo::StoreCredit {
                                account: "alice".into(),
                            },
                            400,
                        ),
                    ],
                }),
            ),
            (
                "nothing to refund",
                0,
                RefundWhere::Original,
                None,
                None,
                Ok(RefundTo::Cash),
            ),
        ];
        for (name, refund, asked, tenders, exchange, expected) in cases {
            let refunding = Refunding {
                credit: None,
                tenders,
                seller: &seller,
                exchange: exchange.map(|total| (new_order, usd(total))),
            };
            let got = refund_parts(OrderId::from_u128(1), usd(refund), &asked, &refunding);
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{name}"),
                (Err(ReturnRejected::TendersShort { .. }), Err("short"))
                | (Err(ReturnRejected::TendersElsewhere { .. }), Err("elsewhere")) => {}
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    /// A return to the original tenders refunds cash and store-credit payments in its own
    /// events and leaves the card's part owed; an exchange credits its account with what pays
    /// the new order. Every event is valid.
    #[test]
    fn money_goes_back_in_the_same_events() {
        let me = node("till-a");
        let sold = order(vec![item("A", 2, 500, 1000)], OrderStatus::Paid);
        let (cash, card) = (
            payment(1, Tender::Cash, 600, 0),
            payment(2, Tender::Card, 400, 0),
        );
        let tenders = [
            Tendered {
                payment: &cash,
                owed_minor: 0,
                account: None,
            },
            Tendered {
                payment: &card,
                owed_minor: 0,
                account: None,
            },
        ];
        let at = Counter {
            me: &me,
            approval_limit: None,
            now: NOW,
        };
        let rights = ReturnRights::new(&sold, me.clone());
        let mut c = cmd(vec![(0, 2)]);
        c.refund_to = RefundWhere::Original;
        let events = take_return(
            Some(&sold),
            Some(&rights),
            at,
            &c,
            |_| StockLevel::default(),
            &Refunding {
                tenders: Some(&tenders),
                ..plain(&me)
            },
        )
        .unwrap();
        let topics: Vec<&str> = events.iter().map(|e| e.topic()).collect();
        assert_eq!(topics, ["order.returned", "payment.refunded"]);
        let Event::PaymentRefunded(r) = &events[1] else {
            unreachable!()
        };
        assert_eq!((r.payment_id, r.amount), (cash.id, usd(600).to_decimal()));
        let exchanged = take_return(
            Some(&sold),
            Some(&rights),
            at,
            &cmd(vec![(0, 1)]),
            |_| StockLevel::default(),
            &Refunding {
                exchange: Some((OrderId::from_u128(7), usd(300))),
                ..plain(&me)
            },
        )
        .unwrap();
        let topics: Vec<&str> = exchanged.iter().map(|e| e.topic()).collect();
        assert_eq!(topics, ["order.returned", "store-credit.changed"]);
        let Event::StoreCreditChanged(credit) = &exchanged[1] else {
            unreachable!()
        };
        assert_eq!(
            (credit.account.as_str(), credit.balance),
            (
                exchange_account(c.return_id).as_str(),
                usd(300).to_decimal()
            )
        );
        for e in events.iter().chain(&exchanged) {
            assert!(e.validate().is_ok(), "{e:?}");
        }
    }
}
