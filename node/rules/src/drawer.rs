//! Cash-drawer sessions and their X and Z reports (issue 18, parts 2 and 3).
//!
//! A till has one drawer: [`open`] it with a float, [`move_cash`] (paid in, paid out, a
//! no-sale), [`close`] it with the counted cash. The report's totals are a fold ([`Tally`])
//! of the till's own log from the session's `fromSeq` (the event after the till's last Z) up
//! to the close; the X report is the same fold up to now. Sales made while no drawer was open
//! fall in that range, so they count in the next Z (`outsideSession`).
//!
//! **Z numbers are gap-free per till and only the till writes its drawer's events**:
//! [`apply`] refuses a `session.*` event of another till, a Z that is not the till's next, a
//! move or close of a session that is not the open one.
//!
//! What a tender took: cash and store credit when `payment.succeeded` records them; a card
//! when the provider captured it (`payment.succeeded`) or the till approved it offline
//! (`payment.offline_approved`), once — the capture of a payment approved offline is not
//! counted again, also when it comes after a Z (the Z names the unsettled approvals,
//! `offlinePending`, and the drawer carries them over, [`Drawer::offline_unsettled`]). Cash out of the drawer: a refund to a cash payment
//! (`payment.refunded`) and a return refunded in cash (`refundTo` cash, or a split's cash
//! part).
//!
//! Expected cash = float + cash tendered − change given + paid in − paid out − cash refunds;
//! variance = counted − expected (negative: short).

use std::collections::{BTreeMap, BTreeSet};

use fusion_contracts::StaffId;
use fusion_contracts::commands::{CloseSession, MoveCash, OpenSession};
use fusion_contracts::events::payments::Tender;
use fusion_contracts::events::{
    CashMove, OrderTax, RefundPartTo, RefundTo, SessionCashMoved, SessionClosed, SessionOpened,
    SessionTotals, StaffTotal, TaxTotal, TenderTotal,
};
use fusion_contracts::{Currency, Decimal, Event, Money, NodeId, OrderId, PaymentId, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Refused;

/// A till's drawer as its log leaves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drawer {
    pub open: Option<OpenDrawer>,
    /// The till's last Z number (0: none).
    pub last_z: u64,
    /// The first event of the till's log the next report covers.
    pub since_seq: u64,
    /// Card payments approved offline and not settled at the last Z: their capture is not
    /// counted again.
    pub offline_unsettled: Vec<PaymentId>,
}

impl Default for Drawer {
    fn default() -> Self {
        Self {
            open: None,
            last_z: 0,
            since_seq: 1,
            offline_unsettled: Vec::new(),
        }
    }
}

/// The open session of a drawer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDrawer {
    pub session_id: Uuid,
    pub float: Money,
    pub opened_by: Option<StaffId>,
    pub opened_at: Timestamp,
    pub from_seq: u64,
}

/// Why a drawer command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DrawerRejected {
    #[error("the till's drawer is already open (session {0})")]
    AlreadyOpen(Uuid),
    #[error("session {0} is not this till's open session")]
    NotOpen(Uuid),
    #[error("the session counts in {expected}")]
    CurrencyMismatch { expected: Currency },
    #[error("a no-sale needs a manager's approval")]
    NoSaleNeedsApproval,
    #[error("the till's drawer is closed: open a session to sell (requireOpenSession)")]
    SessionRequired,
}

/// Opens the drawer with a float; its report covers the log from the event after the last Z.
pub fn open(
    drawer: &Drawer,
    till: &NodeId,
    cmd: &OpenSession,
    now: Timestamp,
) -> Result<Event, DrawerRejected> {
    if let Some(open) = &drawer.open {
        return Err(DrawerRejected::AlreadyOpen(open.session_id));
    }
    Ok(SessionOpened {
        session_id: cmd.session_id,
        till: till.clone(),
        float: cmd.float.to_decimal(),
        currency: cmd.float.currency,
        staff: cmd.staff.clone(),
        opened_at: now,
        from_seq: drawer.since_seq,
    }
    .into())
}

fn the_open(drawer: &Drawer, session_id: Uuid) -> Result<&OpenDrawer, DrawerRejected> {
    drawer
        .open
        .as_ref()
        .filter(|o| o.session_id == session_id)
        .ok_or(DrawerRejected::NotOpen(session_id))
}

/// A paid-in, paid-out or no-sale; a no-sale only with a manager's approval.
pub fn move_cash(
    drawer: &Drawer,
    till: &NodeId,
    cmd: &MoveCash,
    now: Timestamp,
) -> Result<Event, DrawerRejected> {
    let open = the_open(drawer, cmd.session_id)?;
    if cmd.amount.currency != open.float.currency {
        return Err(DrawerRejected::CurrencyMismatch {
            expected: open.float.currency,
        });
    }
    if cmd.kind == CashMove::NoSale && cmd.approved_by.is_none() {
        return Err(DrawerRejected::NoSaleNeedsApproval);
    }
    let amount = if cmd.kind == CashMove::NoSale {
        Money::zero(cmd.amount.currency)
    } else {
        cmd.amount
    };
    Ok(SessionCashMoved {
        session_id: cmd.session_id,
        till: till.clone(),
        kind: cmd.kind,
        amount: amount.to_decimal(),
        currency: amount.currency,
        reason: cmd.reason.clone(),
        staff: cmd.staff.clone(),
        approved_by: cmd.approved_by.clone(),
        at: now,
    }
    .into())
}

/// What the drawer should hold.
pub fn expected_cash(float: Money, totals: &SessionTotals) -> Money {
    let minor = |d: Decimal| {
        Money::from_decimal(d, float.currency)
            .map(|m| m.minor)
            .unwrap_or(0)
    };
    Money {
        minor: float.minor + minor(totals.cash_tendered) - minor(totals.change_given)
            + minor(totals.paid_in)
            - minor(totals.paid_out)
            - minor(totals.cash_refunds),
        currency: float.currency,
    }
}

/// Closes the open session with the counted cash: the Z report, numbered one past the till's
/// last. `tally` is the fold of the till's log from the session's `fromSeq`; `to_seq` the
/// last event it folded.
pub fn close(
    drawer: &Drawer,
    till: &NodeId,
    cmd: &CloseSession,
    tally: &Tally,
    to_seq: u64,
    now: Timestamp,
) -> Result<Event, DrawerRejected> {
    let open = the_open(drawer, cmd.session_id)?;
    if cmd.counted.currency != open.float.currency {
        return Err(DrawerRejected::CurrencyMismatch {
            expected: open.float.currency,
        });
    }
    let totals = tally.totals();
    let expected = expected_cash(open.float, &totals);
    Ok(SessionClosed {
        session_id: open.session_id,
        till: till.clone(),
        z: drawer.last_z + 1,
        currency: open.float.currency,
        float: open.float.to_decimal(),
        expected: expected.to_decimal(),
        counted: cmd.counted.to_decimal(),
        variance: Money {
            minor: cmd.counted.minor - expected.minor,
            currency: expected.currency,
        }
        .to_decimal(),
        denominations: cmd.denominations.clone(),
        totals: Box::new(totals),
        opened_at: open.opened_at,
        opened_by: open.opened_by.clone(),
        closed_at: now,
        staff: cmd.staff.clone(),
        from_seq: open.from_seq,
        to_seq,
        offline_pending: tally.offline_unsettled(),
        reprints: Some(tally.reprints()),
    }
    .into())
}

/// Folds `origin`'s event at position `seq` of its log into its drawer. Only `session.*`
/// events change it; the till's own, in order.
pub fn apply(drawer: &mut Drawer, origin: &NodeId, seq: u64, event: &Event) -> Result<(), Refused> {
    let (till, session_id) = match event {
        Event::SessionOpened(e) => (&e.till, e.session_id),
        Event::SessionCashMoved(e) => (&e.till, e.session_id),
        Event::SessionClosed(e) => (&e.till, e.session_id),
        _ => return Ok(()),
    };
    let refuse = |reason: String| {
        Err(Refused::Drawer {
            topic: event.topic(),
            reason,
        })
    };
    if till != origin {
        return refuse(format!("{origin} wrote till {till}'s drawer"));
    }
    let open = drawer.open.as_ref().map(|o| o.session_id);
    match event {
        Event::SessionOpened(e) => {
            if let Some(open) = open {
                return refuse(format!("session {open} is still open"));
            }
            drawer.open = Some(OpenDrawer {
                session_id,
                float: money(e.float, e.currency).map_err(|r| amount_refused(event, r))?,
                opened_by: e.staff.clone(),
                opened_at: e.opened_at,
                from_seq: e.from_seq,
            });
        }
        _ if open != Some(session_id) => {
            return refuse(format!("session {session_id} is not open"));
        }
        Event::SessionClosed(e) => {
            if e.z != drawer.last_z + 1 {
                return refuse(format!(
                    "Z {} follows {}: Z numbers are gap-free",
                    e.z, drawer.last_z
                ));
            }
            drawer.open = None;
            drawer.last_z = e.z;
            drawer.since_seq = seq + 1;
            drawer.offline_unsettled = e.offline_pending.clone();
        }
        _ => {}
    }
    Ok(())
}

fn amount_refused(event: &Event, reason: String) -> Refused {
    Refused::Amount {
        topic: event.topic(),
        reason,
    }
}

fn money(amount: Decimal, currency: Currency) -> Result<Money, String> {
    Money::from_decimal(amount, currency).map_err(|e| e.to_string())
}

/// What a report needs of an order paid or cancelled in its range but created before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleFacts {
    pub total: Money,
    pub taxes: Vec<OrderTax>,
    /// Σ of the lines' adjustments (promotions and discounts).
    pub discount_total: Money,
    /// What promotions took off.
    pub promotions: Money,
    pub staff: Option<StaffId>,
}

impl SaleFacts {
    pub fn of_order(order: &crate::Order) -> Self {
        let currency = order.total.currency;
        let promotions = order
            .promotions
            .iter()
            .filter_map(|p| Money::from_decimal(p.amount, currency).ok())
            .map(|m| m.minor)
            .sum();
        Self {
            total: order.total,
            taxes: order.taxes.clone(),
            discount_total: order.discount_total,
            promotions: Money {
                minor: promotions,
                currency,
            },
            staff: None,
        }
    }
}

/// What the store knows of events before a report's range: orders and payments created earlier.
pub trait Facts {
    fn order(&self, id: OrderId) -> Option<SaleFacts>;
    fn tender(&self, id: PaymentId) -> Option<Tender>;
}

#[derive(Clone, Debug, Default)]
struct TenderSum {
    count: u64,
    taken: i64,
    refunded: i64,
}

#[derive(Clone, Debug, Default)]
struct StaffSum {
    sales: u64,
    sales_total: i64,
    returns: u64,
    refunds: i64,
    no_sales: u64,
}

/// The fold of a till's log into a report's totals, event by event from the range's first.
#[derive(Clone, Debug)]
pub struct Tally {
    currency: Currency,
    open: bool,
    orders: BTreeMap<OrderId, SaleFacts>,
    payments: BTreeMap<PaymentId, Tender>,
    offline: BTreeSet<PaymentId>,
    sales: u64,
    sales_total: i64,
    outside_session: u64,
    tenders: BTreeMap<Tender, TenderSum>,
    cash_tendered: i64,
    change_given: i64,
    cash_refunds: i64,
    paid_in: i64,
    paid_out: i64,
    no_sales: u64,
    taxes: BTreeMap<(String, String), (Decimal, i64, i64)>,
    discounts: i64,
    promotions: i64,
    returns: u64,
    refunds: i64,
    voids: u64,
    voids_total: i64,
    staff: BTreeMap<Option<StaffId>, StaffSum>,
    other_currency: u64,
    reprints: u64,
}

impl Tally {
    /// A fold in `currency` starting right after a Z (no session open), with the drawer's
    /// offline approvals not settled then.
    pub fn new(currency: Currency, drawer: &Drawer) -> Self {
        Self {
            currency,
            open: false,
            orders: BTreeMap::new(),
            payments: BTreeMap::new(),
            offline: drawer.offline_unsettled.iter().copied().collect(),
            sales: 0,
            sales_total: 0,
            outside_session: 0,
            tenders: BTreeMap::new(),
            cash_tendered: 0,
            change_given: 0,
            cash_refunds: 0,
            paid_in: 0,
            paid_out: 0,
            no_sales: 0,
            taxes: BTreeMap::new(),
            discounts: 0,
            promotions: 0,
            returns: 0,
            refunds: 0,
            voids: 0,
            voids_total: 0,
            staff: BTreeMap::new(),
            other_currency: 0,
            reprints: 0,
        }
    }

    /// Receipts printed again (DUPLICATE) so far.
    pub fn reprints(&self) -> u64 {
        self.reprints
    }

    /// Card payments approved offline and not settled yet: what the next Z carries over.
    pub fn offline_unsettled(&self) -> Vec<PaymentId> {
        self.offline.iter().copied().collect()
    }

    /// The amount in minor units when it is in the report's currency.
    fn minor(&mut self, amount: Decimal, currency: Currency) -> Option<i64> {
        if currency != self.currency {
            self.other_currency += 1;
            return None;
        }
        Money::from_decimal(amount, currency).ok().map(|m| m.minor)
    }

    fn tender_of(&self, id: PaymentId, facts: &impl Facts) -> Option<Tender> {
        self.payments.get(&id).copied().or_else(|| facts.tender(id))
    }

    fn take(&mut self, tender: Tender, minor: i64) {
        let sum = self.tenders.entry(tender).or_default();
        sum.count += 1;
        sum.taken += minor;
    }

    fn refund_to(&mut self, tender: Tender, minor: i64) {
        self.tenders.entry(tender).or_default().refunded += minor;
        if tender == Tender::Cash {
            self.cash_refunds += minor;
        }
    }

    /// Folds the till's next event.
    pub fn add(&mut self, event: &Event, facts: &impl Facts) {
        match event {
            Event::OrderCreated(o) => {
                // Counted in another currency when it is paid or cancelled.
                if o.currency != self.currency {
                    return;
                }
                let Ok(total) = Money::from_decimal(o.total, o.currency).map(|m| m.minor) else {
                    return;
                };
                let m = |d: Decimal| Money::from_decimal(d, o.currency).map_or(0, |m| m.minor);
                let promotions = o.promotions.iter().map(|p| m(p.amount)).sum();
                let facts = SaleFacts {
                    total: Money {
                        minor: total,
                        currency: o.currency,
                    },
                    taxes: o.taxes.clone(),
                    discount_total: Money {
                        minor: m(o.discount_total),
                        currency: o.currency,
                    },
                    promotions: Money {
                        minor: promotions,
                        currency: o.currency,
                    },
                    staff: o.staff.clone(),
                };
                self.orders.insert(o.order_id, facts);
            }
            Event::PaymentCreated(p) => {
                self.payments.insert(p.payment_id, p.tender);
            }
            Event::PaymentSucceeded(s) => {
                if self.offline.remove(&s.payment_id) {
                    return; // counted when approved offline
                }
                let Some(amount) = self.minor(s.amount, s.currency) else {
                    return;
                };
                let tender = self.tender_of(s.payment_id, facts).unwrap_or(Tender::Card);
                self.take(tender, amount);
                if tender == Tender::Cash {
                    let change = s
                        .change_due
                        .and_then(|c| Money::from_decimal(c, s.currency).ok())
                        .map_or(0, |c| c.minor);
                    self.cash_tendered += amount + change;
                    self.change_given += change;
                }
            }
            Event::PaymentOfflineApproved(a) => {
                if let Some(amount) = self.minor(a.amount, a.currency) {
                    self.offline.insert(a.payment_id);
                    self.take(Tender::Card, amount);
                }
            }
            // An offline approval declined later or dropped: nothing more to skip.
            Event::PaymentFailed(f) => {
                self.offline.remove(&f.payment_id);
            }
            Event::PaymentVoided(v) => {
                self.offline.remove(&v.payment_id);
            }
            Event::PaymentRefunded(r) => {
                if let Some(amount) = self.minor(r.amount, r.currency) {
                    let tender = self.tender_of(r.payment_id, facts).unwrap_or(Tender::Card);
                    self.refund_to(tender, amount);
                }
            }
            Event::OrderReturned(r) => {
                let Some(refund) = self.minor(r.refund, r.currency) else {
                    return;
                };
                self.returns += 1;
                self.refunds += refund;
                let staff = self.staff.entry(r.staff.clone()).or_default();
                staff.returns += 1;
                staff.refunds += refund;
                match &r.refund_to {
                    RefundTo::Cash => self.refund_to(Tender::Cash, refund),
                    RefundTo::StoreCredit { .. } => self.refund_to(Tender::StoreCredit, refund),
                    RefundTo::Split { parts } => {
                        for part in parts {
                            let minor =
                                Money::from_decimal(part.amount, r.currency).map_or(0, |m| m.minor);
                            match &part.to {
                                RefundPartTo::Cash => self.refund_to(Tender::Cash, minor),
                                RefundPartTo::StoreCredit { .. } => {
                                    self.refund_to(Tender::StoreCredit, minor)
                                }
                                // `payment.refunded` counts it; an exchange pays the new order.
                                RefundPartTo::Payment { .. } | RefundPartTo::Order { .. } => {}
                            }
                        }
                    }
                }
            }
            Event::OrderPaid(p) => {
                let Some(total) = self.minor(p.total, p.currency) else {
                    return;
                };
                let sale = self
                    .orders
                    .get(&p.order_id)
                    .cloned()
                    .or_else(|| facts.order(p.order_id));
                self.sales += 1;
                self.sales_total += total;
                if !self.open {
                    self.outside_session += 1;
                }
                if let Some(sale) = sale {
                    self.promotions += sale.promotions.minor;
                    self.discounts += sale.discount_total.minor - sale.promotions.minor;
                    for tax in &sale.taxes {
                        let m =
                            |d: Decimal| Money::from_decimal(d, p.currency).map_or(0, |m| m.minor);
                        let key = (tax.class.clone(), tax.rate.to_string());
                        let row = self.taxes.entry(key).or_insert((tax.rate, 0, 0));
                        row.1 += m(tax.base);
                        row.2 += m(tax.tax);
                    }
                    let staff = self.staff.entry(sale.staff).or_default();
                    staff.sales += 1;
                    staff.sales_total += total;
                } else {
                    let staff = self.staff.entry(None).or_default();
                    staff.sales += 1;
                    staff.sales_total += total;
                }
            }
            Event::OrderCancelled(c) => {
                self.voids += 1;
                let sale = self
                    .orders
                    .get(&c.order_id)
                    .cloned()
                    .or_else(|| facts.order(c.order_id));
                if let Some(sale) = sale.filter(|s| s.total.currency == self.currency) {
                    self.voids_total += sale.total.minor;
                }
            }
            Event::ReceiptPrinted(p) if p.duplicate => self.reprints += 1,
            Event::SessionOpened(_) => self.open = true,
            Event::SessionClosed(_) => self.open = false,
            Event::SessionCashMoved(m) => {
                let Some(amount) = self.minor(m.amount, m.currency) else {
                    return;
                };
                match m.kind {
                    CashMove::PaidIn => self.paid_in += amount,
                    CashMove::PaidOut => self.paid_out += amount,
                    CashMove::NoSale => {
                        self.no_sales += 1;
                        self.staff.entry(m.staff.clone()).or_default().no_sales += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// The totals so far.
    pub fn totals(&self) -> SessionTotals {
        let d = |minor: i64| {
            Money {
                minor,
                currency: self.currency,
            }
            .to_decimal()
        };
        SessionTotals {
            sales: self.sales,
            sales_total: d(self.sales_total),
            outside_session: self.outside_session,
            tenders: self
                .tenders
                .iter()
                .map(|(tender, s)| TenderTotal {
                    tender: *tender,
                    count: s.count,
                    taken: d(s.taken),
                    refunded: d(s.refunded),
                })
                .collect(),
            cash_tendered: d(self.cash_tendered),
            change_given: d(self.change_given),
            cash_refunds: d(self.cash_refunds),
            paid_in: d(self.paid_in),
            paid_out: d(self.paid_out),
            no_sales: self.no_sales,
            taxes: self
                .taxes
                .iter()
                .map(|((class, _), (rate, base, tax))| TaxTotal {
                    class: class.clone(),
                    rate: *rate,
                    base: d(*base),
                    tax: d(*tax),
                })
                .collect(),
            discounts: d(self.discounts),
            promotions: d(self.promotions),
            returns: self.returns,
            refunds: d(self.refunds),
            voids: self.voids,
            voids_total: d(self.voids_total),
            staff: self
                .staff
                .iter()
                .map(|(staff, s)| StaffTotal {
                    staff: staff.clone(),
                    sales: s.sales,
                    sales_total: d(s.sales_total),
                    returns: s.returns,
                    refunds: d(s.refunds),
                    no_sales: s.no_sales,
                })
                .collect(),
            other_currency: self.other_currency,
        }
    }
}

#[cfg(test)]
mod tests;
