//! Payments: tenders towards an order. Pure decide / apply. Provider calls happen outside, at the
//! edge; this core decides what may be asked of the provider (`check_capture`, `check_refund`)
//! and what its answers mean (`card_outcome`, `capture`, `refund`).
//!
//! Rules: an order is paid in its own currency; the payments that hold money (pending, authorized,
//! captured minus refunds) never exceed its total; the order becomes paid when captures cover
//! the total; refunds never exceed what was captured.

use fusion_contracts::commands::{
    ApproveOffline, CardOutcome, CreatePayment, ExpirePending, IssueStoreCredit, RecordCapture,
    RecordCardOutcome, RecordRefund, RecordVoid,
};
use fusion_contracts::events::payments::{PaymentStatus, Tender};
use fusion_contracts::events::{
    OfflineBudgetReceived, OfflineBudgetSet, OfflineBudgetTransferred, OrderFlagged, OrderPaid,
    OrderStatus, PaymentAuthorized, PaymentCreated, PaymentFailed, PaymentOfflineApproved,
    PaymentRefunded, PaymentSucceeded, PaymentVoided, StoreCreditChanged,
};
use fusion_contracts::{Currency, Event, Money, NodeId, OrderId, PaymentId, Timestamp};
use serde::{Deserialize, Serialize};

use super::Order;
use crate::Refused;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub amount: Money,
    pub tender: Tender,
    pub payment_method_id: String,
    pub tendered: Option<Money>,
    /// Cards: capture at once when authorized.
    pub capture: bool,
    pub status: PaymentStatus,
    pub captured_minor: i64,
    pub refunded_minor: i64,
    pub change_due: Option<Money>,
    pub provider_ref: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Payment {
    pub fn currency(&self) -> Currency {
        self.amount.currency
    }

    /// Money this payment holds against its order's total.
    fn holds_minor(&self) -> i64 {
        match self.status {
            PaymentStatus::Pending | PaymentStatus::Authorized | PaymentStatus::OfflineApproved => {
                self.amount.minor
            }
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                self.captured_minor - self.refunded_minor
            }
            PaymentStatus::Failed | PaymentStatus::Voided | PaymentStatus::Refunded => 0,
        }
    }

    /// Captured and not refunded.
    /// What the provider or the drawer can still give back: captured and not refunded.
    pub fn refundable_minor(&self) -> i64 {
        match self.status {
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                self.captured_minor - self.refunded_minor
            }
            _ => 0,
        }
    }

    fn kept_minor(&self) -> i64 {
        // An offline approval counts as captured (the customer left with the goods) until the
        // provider says otherwise.
        match self.status {
            PaymentStatus::OfflineApproved => self.amount.minor,
            _ => self.captured_minor - self.refunded_minor,
        }
    }
}

/// A store credit account: a balance in one currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditAccount {
    pub account: String,
    pub balance: Money,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PaymentRejected {
    #[error("payment {0} not found")]
    NotFound(PaymentId),
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    #[error("order {order_id} is {status:?} and takes no payment")]
    OrderNotPayable {
        order_id: OrderId,
        status: OrderStatus,
    },
    #[error("currency must be the order's currency, {expected}")]
    CurrencyMismatch { expected: Currency },
    #[error("amount exceeds what is left to pay on order {order_id}: {remaining}")]
    Overpayment { order_id: OrderId, remaining: Money },
    #[error("tendered cash does not cover the amount")]
    TenderedTooLittle,
    #[error("payment {payment_id} is {status:?} and cannot be captured")]
    NotCapturable {
        payment_id: PaymentId,
        status: PaymentStatus,
    },
    #[error("amount exceeds the authorized {authorized}")]
    CaptureTooLarge { authorized: Money },
    #[error("payment {payment_id} is {status:?} and has nothing to refund")]
    NotRefundable {
        payment_id: PaymentId,
        status: PaymentStatus,
    },
    #[error("amount exceeds what can still be refunded, {refundable}")]
    RefundTooLarge { refundable: Money },
    #[error("store credit account {0} not found")]
    CreditAccountNotFound(String),
    #[error("store credit account {account} holds only {balance}")]
    InsufficientCredit { account: String, balance: Money },
    #[error(
        "the card provider is unreachable and {amount} is above the offline floor limit {floor_limit}"
    )]
    AboveFloorLimit { amount: Money, floor_limit: Money },
    /// Appended (idempotency records store the variant index).
    #[error(
        "the card provider is unreachable and this till's offline card budget {budget} is used up: {exposure} approved offline and not settled, {amount} more would exceed it"
    )]
    OfflineBudgetExhausted {
        amount: Money,
        budget: Money,
        exposure: Money,
    },
    #[error("this till's unused offline card budget is {unused}; {requested} asked for")]
    OfflineBudgetShort { requested: Money, unused: Money },
    /// (Appended: idempotency records store the variant index.)
    #[error("to names this till")]
    BudgetToSelf,
}

/// What `order` still owes beyond what `payments` hold (captured, authorized or approved
/// offline, less refunds).
pub fn remaining(order: &Order, payments: &[Payment]) -> Money {
    let held: i64 = payments.iter().map(Payment::holds_minor).sum();
    Money {
        minor: order.total.minor - held,
        currency: order.total.currency,
    }
}

/// Records a payment. Cash is captured at once; a card stays pending until the provider answers.
pub fn create(
    cmd: &CreatePayment,
    order: Option<&Order>,
    payments: &[Payment],
    credit: Option<&CreditAccount>,
    now: Timestamp,
) -> Result<Vec<Event>, PaymentRejected> {
    let order = order.ok_or(PaymentRejected::OrderNotFound(cmd.order_id))?;
    if order.status != OrderStatus::Created {
        return Err(PaymentRejected::OrderNotPayable {
            order_id: order.id,
            status: order.status,
        });
    }
    let currency = order.total.currency;
    if cmd.amount.currency != currency {
        return Err(PaymentRejected::CurrencyMismatch { expected: currency });
    }
    assert!(
        cmd.amount.minor > 0,
        "payment amounts are validated positive at the edge"
    );
    let remaining = remaining(order, payments);
    if cmd.amount.minor > remaining.minor {
        return Err(PaymentRejected::Overpayment {
            order_id: order.id,
            remaining,
        });
    }
    if cmd.tender == Tender::StoreCredit {
        return redeem_credit(cmd, order, payments, credit, now);
    }
    let tendered = match (cmd.tender, cmd.tendered) {
        (Tender::Cash, Some(t)) if t.currency != currency || t.minor < cmd.amount.minor => {
            return Err(PaymentRejected::TenderedTooLittle);
        }
        (Tender::Cash, t) => Some(t.unwrap_or(cmd.amount)),
        (Tender::Card | Tender::StoreCredit, _) => None,
    };
    let mut events: Vec<Event> = vec![
        PaymentCreated {
            payment_id: cmd.payment_id,
            order_id: order.id,
            amount: cmd.amount.to_decimal(),
            currency,
            tender: cmd.tender,
            payment_method_id: cmd.payment_method_id.clone(),
            tendered: tendered.map(|t| t.to_decimal()),
            capture: cmd.capture,
            status: PaymentStatus::Pending,
            created_at: now,
            staff: cmd.staff.clone(),
        }
        .into(),
    ];
    if let Some(tendered) = tendered {
        let change = Money {
            minor: tendered.minor - cmd.amount.minor,
            currency,
        };
        events.push(succeeded(
            cmd.payment_id,
            order.id,
            cmd.amount,
            Some(change),
            None,
        ));
        events.extend(paid(order, payments, cmd.amount.minor, now));
    }
    Ok(events)
}

/// The name of the account a `store_credit:<account>` payment draws on.
pub fn credit_account_of(payment_method_id: &str) -> Option<&str> {
    payment_method_id.strip_prefix("store_credit:")
}

fn credit_changed(
    account: &CreditAccount,
    delta_minor: i64,
    reason: &str,
    payment_id: Option<PaymentId>,
) -> Event {
    let currency = account.balance.currency;
    StoreCreditChanged {
        account: account.account.clone(),
        delta: Money {
            minor: delta_minor,
            currency,
        }
        .to_decimal(),
        balance: Money {
            minor: account.balance.minor + delta_minor,
            currency,
        }
        .to_decimal(),
        currency,
        reason: reason.to_string(),
        payment_id,
    }
    .into()
}

/// A store credit payment is taken at once: the account is debited in the same commit.
fn redeem_credit(
    cmd: &CreatePayment,
    order: &Order,
    payments: &[Payment],
    credit: Option<&CreditAccount>,
    now: Timestamp,
) -> Result<Vec<Event>, PaymentRejected> {
    let name = credit_account_of(&cmd.payment_method_id).unwrap_or_default();
    let account = credit.ok_or_else(|| PaymentRejected::CreditAccountNotFound(name.to_string()))?;
    if account.balance.currency != cmd.amount.currency {
        return Err(PaymentRejected::CurrencyMismatch {
            expected: account.balance.currency,
        });
    }
    if account.balance.minor < cmd.amount.minor {
        return Err(PaymentRejected::InsufficientCredit {
            account: account.account.clone(),
            balance: account.balance,
        });
    }
    let mut events: Vec<Event> = vec![
        PaymentCreated {
            payment_id: cmd.payment_id,
            order_id: order.id,
            amount: cmd.amount.to_decimal(),
            currency: cmd.amount.currency,
            tender: Tender::StoreCredit,
            payment_method_id: cmd.payment_method_id.clone(),
            tendered: None,
            capture: true,
            status: PaymentStatus::Pending,
            created_at: now,
            staff: cmd.staff.clone(),
        }
        .into(),
        succeeded(cmd.payment_id, order.id, cmd.amount, None, None),
        credit_changed(account, -cmd.amount.minor, "payment", Some(cmd.payment_id)),
    ];
    events.extend(paid(order, payments, cmd.amount.minor, now));
    Ok(events)
}

/// Adds to an account, creating it on first issue; its currency is fixed by the first issue.
pub fn issue_credit(
    account: Option<&CreditAccount>,
    cmd: &IssueStoreCredit,
    now: Timestamp,
) -> Result<Vec<Event>, PaymentRejected> {
    let current = account.cloned().unwrap_or(CreditAccount {
        account: cmd.account.clone(),
        balance: Money::zero(cmd.amount.currency),
        updated_at: now,
    });
    if current.balance.currency != cmd.amount.currency {
        return Err(PaymentRejected::CurrencyMismatch {
            expected: current.balance.currency,
        });
    }
    Ok(vec![credit_changed(
        &current,
        cmd.amount.minor,
        &cmd.reason,
        None,
    )])
}

pub fn apply_credit(account: &mut Option<CreditAccount>, event: &Event, at: Timestamp) {
    if let Event::StoreCreditChanged(e) = event {
        *account = Some(CreditAccount {
            account: e.account.clone(),
            balance: Money::from_decimal(e.balance, e.currency).expect("validated event"),
            updated_at: at,
        });
    }
}

fn succeeded(
    payment_id: PaymentId,
    order_id: OrderId,
    amount: Money,
    change: Option<Money>,
    provider_ref: Option<String>,
) -> Event {
    PaymentSucceeded {
        payment_id,
        order_id,
        amount: amount.to_decimal(),
        currency: amount.currency,
        change_due: change.map(|c| c.to_decimal()),
        provider_ref,
    }
    .into()
}

/// `order.paid` when `captured_now` brings the order's kept captures up to its total.
fn paid(order: &Order, payments: &[Payment], captured_now: i64, now: Timestamp) -> Option<Event> {
    let kept: i64 = payments.iter().map(Payment::kept_minor).sum::<i64>() + captured_now;
    (order.status == OrderStatus::Created && kept >= order.total.minor).then(|| {
        OrderPaid {
            order_id: order.id,
            total: order.total.to_decimal(),
            paid: Money {
                minor: kept,
                currency: order.total.currency,
            }
            .to_decimal(),
            currency: order.total.currency,
            paid_at: now,
        }
        .into()
    })
}

/// The provider's answer to an authorization. Recording it twice changes nothing.
pub fn card_outcome(
    payment: Option<&Payment>,
    order: &Order,
    others: &[Payment],
    cmd: &RecordCardOutcome,
    now: Timestamp,
) -> Result<Vec<Event>, PaymentRejected> {
    let payment = payment.ok_or(PaymentRejected::NotFound(cmd.payment_id))?;
    if payment.status == PaymentStatus::OfflineApproved {
        return Ok(forwarded(payment, cmd));
    }
    if payment.status != PaymentStatus::Pending {
        return Ok(Vec::new());
    }
    let authorized = |provider_ref: &str| -> Event {
        PaymentAuthorized {
            payment_id: payment.id,
            order_id: payment.order_id,
            amount: payment.amount.to_decimal(),
            currency: payment.currency(),
            provider_ref: Some(provider_ref.to_string()),
        }
        .into()
    };
    Ok(match &cmd.outcome {
        CardOutcome::Authorized { provider_ref } => vec![authorized(provider_ref)],
        CardOutcome::Captured { provider_ref } => {
            let mut events = vec![
                authorized(provider_ref),
                succeeded(
                    payment.id,
                    payment.order_id,
                    payment.amount,
                    None,
                    Some(provider_ref.clone()),
                ),
            ];
            events.extend(paid(order, others, payment.amount.minor, now));
            events
        }
        CardOutcome::Declined { reason } => {
            vec![
                PaymentFailed {
                    payment_id: payment.id,
                    order_id: payment.order_id,
                    reason: reason.clone(),
                }
                .into(),
            ]
        }
    })
}

/// The provider's answer for an offline-approved payment forwarded to it: taken, or declined —
/// then the order is flagged for a person (the customer already left with the goods).
fn forwarded(payment: &Payment, cmd: &RecordCardOutcome) -> Vec<Event> {
    match &cmd.outcome {
        CardOutcome::Captured { provider_ref } | CardOutcome::Authorized { provider_ref } => {
            vec![succeeded(
                payment.id,
                payment.order_id,
                payment.amount,
                None,
                Some(provider_ref.clone()),
            )]
        }
        CardOutcome::Declined { reason } => vec![
            PaymentFailed {
                payment_id: payment.id,
                order_id: payment.order_id,
                reason: reason.clone(),
            }
            .into(),
            OrderFlagged {
                order_id: payment.order_id,
                reason: format!(
                    "offline-approved card payment {} was declined: {reason}",
                    payment.id
                ),
                payment_id: Some(payment.id),
            }
            .into(),
        ],
    }
}

/// The provider is unreachable: a pending card payment within the floor limit is approved on
/// the till (and counts towards paying the order); above it, it stays pending.
/// `exposure` is what this till approved offline and the provider has not settled yet (in the
/// payment's currency); with a budget, exposure + amount must stay within it.
pub fn approve_offline(
    payment: Option<&Payment>,
    order: &Order,
    others: &[Payment],
    cmd: &ApproveOffline,
    exposure: i64,
    now: Timestamp,
) -> Result<Vec<Event>, PaymentRejected> {
    let payment = payment.ok_or(PaymentRejected::NotFound(cmd.payment_id))?;
    if payment.status != PaymentStatus::Pending || payment.tender != Tender::Card {
        return Ok(Vec::new());
    }
    let limit = cmd.floor_limit;
    if limit.currency != payment.currency() || payment.amount.minor > limit.minor {
        return Err(PaymentRejected::AboveFloorLimit {
            amount: payment.amount,
            floor_limit: limit,
        });
    }
    if let Some(budget) = cmd.budget {
        let within = budget.currency == payment.currency()
            && exposure
                .checked_add(payment.amount.minor)
                .is_some_and(|total| total <= budget.minor);
        if !within {
            return Err(PaymentRejected::OfflineBudgetExhausted {
                amount: payment.amount,
                budget,
                exposure: Money {
                    minor: exposure,
                    currency: payment.currency(),
                },
            });
        }
    }
    let mut events: Vec<Event> = vec![
        PaymentOfflineApproved {
            payment_id: payment.id,
            order_id: payment.order_id,
            amount: payment.amount.to_decimal(),
            currency: payment.currency(),
            floor_limit: limit.to_decimal(),
            reason: cmd.reason.clone(),
        }
        .into(),
    ];
    events.extend(paid(order, others, payment.amount.minor, now));
    Ok(events)
}

/// The policy when an order is cancelled, for what needs no provider: cash comes back at the
/// till and store credit to its account (refunded in full) and an offline approval that was never forwarded is dropped. Card
/// authorizations and captures are settled at the provider by the follow-up worker.
pub fn on_cancelled(payments: &[Payment], credits: &[CreditAccount]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut credits = credits.to_vec();
    for p in payments {
        match (p.tender, p.status) {
            (Tender::Cash, PaymentStatus::Captured | PaymentStatus::PartiallyRefunded)
                if p.kept_minor() > 0 =>
            {
                events.push(refunded_in_full(p));
            }
            (Tender::StoreCredit, PaymentStatus::Captured | PaymentStatus::PartiallyRefunded)
                if p.kept_minor() > 0 =>
            {
                let name = credit_account_of(&p.payment_method_id).unwrap_or_default();
                let Some(account) = credits.iter_mut().find(|a| a.account == name) else {
                    continue;
                };
                events.push(refunded_in_full(p));
                events.push(credit_changed(
                    account,
                    p.kept_minor(),
                    "order cancelled",
                    Some(p.id),
                ));
                account.balance.minor += p.kept_minor();
            }
            (Tender::Card, PaymentStatus::OfflineApproved) => events.push(
                PaymentVoided {
                    payment_id: p.id,
                    order_id: p.order_id,
                    reason: "order cancelled before the payment was forwarded".into(),
                }
                .into(),
            ),
            _ => {}
        }
    }
    events
}

/// Gives back everything a payment kept.
fn refunded_in_full(p: &Payment) -> Event {
    PaymentRefunded {
        payment_id: p.id,
        order_id: p.order_id,
        amount: Money {
            minor: p.kept_minor(),
            currency: p.currency(),
        }
        .to_decimal(),
        refunded_total: Money {
            minor: p.captured_minor,
            currency: p.currency(),
        }
        .to_decimal(),
        currency: p.currency(),
        status: PaymentStatus::Refunded,
        provider_ref: None,
    }
    .into()
}

/// Whether a card payment still needs the provider: an answer (pending), forwarding (offline
/// approval), or — its order cancelled — a void or refund.
pub fn needs_provider(payment: &Payment, order_cancelled: bool) -> bool {
    match payment.status {
        PaymentStatus::Pending | PaymentStatus::OfflineApproved => true,
        PaymentStatus::Authorized | PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
            order_cancelled
        }
        PaymentStatus::Failed | PaymentStatus::Voided | PaymentStatus::Refunded => false,
    }
}

/// Records that the provider released an authorization.
pub fn void(payment: Option<&Payment>, cmd: &RecordVoid) -> Result<Vec<Event>, PaymentRejected> {
    let payment = payment.ok_or(PaymentRejected::NotFound(cmd.payment_id))?;
    if !matches!(
        payment.status,
        PaymentStatus::Authorized | PaymentStatus::OfflineApproved
    ) {
        return Ok(Vec::new());
    }
    Ok(vec![
        PaymentVoided {
            payment_id: payment.id,
            order_id: payment.order_id,
            reason: cmd.reason.clone(),
        }
        .into(),
    ])
}

/// BR-007: a card payment still pending after the timeout fails.
pub fn expire(
    payment: Option<&Payment>,
    cmd: &ExpirePending,
) -> Result<Vec<Event>, PaymentRejected> {
    let payment = payment.ok_or(PaymentRejected::NotFound(cmd.payment_id))?;
    if payment.status != PaymentStatus::Pending || payment.created_at > cmd.created_before {
        return Ok(Vec::new());
    }
    Ok(vec![
        PaymentFailed {
            payment_id: payment.id,
            order_id: payment.order_id,
            reason: "no answer from the card provider within the payment timeout (BR-007)".into(),
        }
        .into(),
    ])
}

/// What a capture of `amount` (all that is authorized when absent) may take.
pub fn check_capture(payment: &Payment, amount: Option<Money>) -> Result<Money, PaymentRejected> {
    if payment.status != PaymentStatus::Authorized {
        return Err(PaymentRejected::NotCapturable {
            payment_id: payment.id,
            status: payment.status,
        });
    }
    let amount = amount.unwrap_or(payment.amount);
    if amount.currency != payment.currency() {
        return Err(PaymentRejected::CurrencyMismatch {
            expected: payment.currency(),
        });
    }
    if amount.minor > payment.amount.minor {
        return Err(PaymentRejected::CaptureTooLarge {
            authorized: payment.amount,
        });
    }
    Ok(amount)
}

/// Records a capture the provider made (the rest of the authorization is released).
pub fn capture(
    payment: Option<&Payment>,
    order: &Order,
    others: &[Payment],
    cmd: &RecordCapture,
    now: Timestamp,
) -> Result<Vec<Event>, PaymentRejected> {
    let payment = payment.ok_or(PaymentRejected::NotFound(cmd.payment_id))?;
    let amount = check_capture(payment, Some(cmd.amount))?;
    let mut events = vec![succeeded(
        payment.id,
        payment.order_id,
        amount,
        None,
        payment.provider_ref.clone(),
    )];
    events.extend(paid(order, others, amount.minor, now));
    Ok(events)
}

/// What a refund of `amount` (all that is left when absent) may give back.
///
/// `owed_minor`: refunds the payment owes returns and has not made yet (a card's, until the
/// provider answers); they are not refundable twice.
pub fn check_refund(
    payment: &Payment,
    amount: Option<Money>,
    owed_minor: i64,
) -> Result<Money, PaymentRejected> {
    if !matches!(
        payment.status,
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
    ) {
        return Err(PaymentRejected::NotRefundable {
            payment_id: payment.id,
            status: payment.status,
        });
    }
    let refundable = Money {
        minor: (payment.kept_minor() - owed_minor).max(0),
        currency: payment.currency(),
    };
    let amount = amount.unwrap_or(refundable);
    if amount.currency != payment.currency() {
        return Err(PaymentRejected::CurrencyMismatch {
            expected: payment.currency(),
        });
    }
    if amount.minor > refundable.minor {
        return Err(PaymentRejected::RefundTooLarge { refundable });
    }
    Ok(amount)
}

/// Records a refund; store credit goes back to its account in the same commit.
pub fn refund(
    payment: Option<&Payment>,
    cmd: &RecordRefund,
    credit: Option<&CreditAccount>,
) -> Result<Vec<Event>, PaymentRejected> {
    let payment = payment.ok_or(PaymentRejected::NotFound(cmd.payment_id))?;
    // What returns owe is refunded by this command: nothing is held back from it.
    let amount = check_refund(payment, Some(cmd.amount), 0)?;
    let total = payment.refunded_minor + amount.minor;
    let status = if total == payment.captured_minor {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    };
    let mut events: Vec<Event> = vec![
        PaymentRefunded {
            payment_id: payment.id,
            order_id: payment.order_id,
            amount: amount.to_decimal(),
            refunded_total: Money {
                minor: total,
                currency: amount.currency,
            }
            .to_decimal(),
            currency: amount.currency,
            status,
            provider_ref: cmd.provider_ref.clone(),
        }
        .into(),
    ];
    if payment.tender == Tender::StoreCredit {
        let name = credit_account_of(&payment.payment_method_id).unwrap_or_default();
        let account =
            credit.ok_or_else(|| PaymentRejected::CreditAccountNotFound(name.to_string()))?;
        events.push(credit_changed(
            account,
            amount.minor,
            "refund",
            Some(payment.id),
        ));
    }
    Ok(events)
}

/// The payment a payment event is about.
pub fn payment_of(event: &Event) -> Option<fusion_contracts::PaymentId> {
    match event {
        Event::PaymentCreated(e) => Some(e.payment_id),
        Event::PaymentAuthorized(e) => Some(e.payment_id),
        Event::PaymentSucceeded(e) => Some(e.payment_id),
        Event::PaymentFailed(e) => Some(e.payment_id),
        Event::PaymentRefunded(e) => Some(e.payment_id),
        Event::PaymentOfflineApproved(e) => Some(e.payment_id),
        Event::PaymentVoided(e) => Some(e.payment_id),
        _ => None,
    }
}

/// Every payment `events` (one log's, in order, each with when it happened) create, folded
/// by [`apply`], in the order they were created.
pub fn fold_all<'a>(events: impl IntoIterator<Item = (&'a Event, Timestamp)>) -> Vec<Payment> {
    let mut order: Vec<fusion_contracts::PaymentId> = Vec::new();
    let mut held: std::collections::HashMap<fusion_contracts::PaymentId, Option<Payment>> =
        std::collections::HashMap::new();
    for (event, at) in events {
        let Some(id) = payment_of(event) else {
            continue;
        };
        let payment = held.entry(id).or_insert_with(|| {
            order.push(id);
            None
        });
        apply(payment, event, at);
    }
    order
        .into_iter()
        .filter_map(|id| held.remove(&id).flatten())
        .collect()
}

pub fn apply(payment: &mut Option<Payment>, event: &Event, at: Timestamp) {
    let money = |amount, currency| Money::from_decimal(amount, currency).expect("validated event");
    match event {
        Event::PaymentCreated(e) => {
            *payment = Some(Payment {
                id: e.payment_id,
                order_id: e.order_id,
                amount: money(e.amount, e.currency),
                tender: e.tender,
                payment_method_id: e.payment_method_id.clone(),
                tendered: e.tendered.map(|t| money(t, e.currency)),
                capture: e.capture,
                status: PaymentStatus::Pending,
                captured_minor: 0,
                refunded_minor: 0,
                change_due: None,
                provider_ref: None,
                failure_reason: None,
                created_at: e.created_at,
                updated_at: e.created_at,
            });
        }
        Event::PaymentAuthorized(e) => {
            if let Some(p) = payment {
                p.status = PaymentStatus::Authorized;
                p.provider_ref = e.provider_ref.clone();
                p.updated_at = at;
            }
        }
        Event::PaymentSucceeded(e) => {
            if let Some(p) = payment {
                p.status = PaymentStatus::Captured;
                p.captured_minor += money(e.amount, e.currency).minor;
                p.change_due = e.change_due.map(|c| money(c, e.currency));
                if e.provider_ref.is_some() {
                    p.provider_ref = e.provider_ref.clone();
                }
                p.updated_at = at;
            }
        }
        Event::PaymentOfflineApproved(_) => {
            if let Some(p) = payment {
                p.status = PaymentStatus::OfflineApproved;
                p.updated_at = at;
            }
        }
        Event::PaymentVoided(_) => {
            if let Some(p) = payment {
                p.status = PaymentStatus::Voided;
                p.updated_at = at;
            }
        }
        Event::PaymentFailed(e) => {
            if let Some(p) = payment {
                p.status = PaymentStatus::Failed;
                p.failure_reason = Some(e.reason.clone());
                p.updated_at = at;
            }
        }
        Event::PaymentRefunded(e) => {
            if let Some(p) = payment {
                p.status = e.status;
                p.refunded_minor = money(e.refunded_total, e.currency).minor;
                p.updated_at = at;
            }
        }
        _ => {}
    }
}

/// A till's offline card budget in one currency, in minor units: the share it was configured
/// with, and what it holds now (the share, less what it gave to other tills, plus what it took
/// in). The node keeps its own; the hub keeps every till's, folded by [`apply_budget`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub configured: i64,
    pub held: i64,
}

/// The currency a budget event is about; `None` for any other event.
pub fn budget_currency(event: &Event) -> Option<Currency> {
    match event {
        Event::OfflineBudgetSet(e) => Some(e.currency),
        Event::OfflineBudgetTransferred(e) => Some(e.currency),
        Event::OfflineBudgetReceived(e) => Some(e.currency),
        _ => None,
    }
}

/// Folds a budget event into the budget recorded before it (zero when none). A new configured
/// share moves what is held by the difference; a transfer or receipt states what is held
/// afterwards. An amount that is not money of its currency is refused.
pub fn apply_budget(budget: &mut Budget, event: &Event) -> Result<(), Refused> {
    let minor = |amount, currency| {
        Money::from_decimal(amount, currency)
            .map(|m| m.minor)
            .map_err(|e| Refused::Amount {
                topic: event.topic(),
                reason: e.to_string(),
            })
    };
    let after = match event {
        Event::OfflineBudgetSet(e) => {
            let share = minor(e.share, e.currency)?;
            let held = budget
                .held
                .checked_add(share)
                .and_then(|h| h.checked_sub(budget.configured))
                .ok_or_else(|| Refused::Amount {
                    topic: event.topic(),
                    reason: "the budget held would overflow".into(),
                })?;
            Budget {
                configured: share,
                held,
            }
        }
        Event::OfflineBudgetTransferred(e) => Budget {
            configured: budget.configured,
            held: minor(e.share, e.currency)?,
        },
        Event::OfflineBudgetReceived(e) => Budget {
            configured: budget.configured,
            held: minor(e.share, e.currency)?,
        },
        _ => return Ok(()),
    };
    *budget = after;
    Ok(())
}

/// What of a held budget is free to spend or give: held less the exposure (offline approvals
/// not settled yet), never below zero.
pub fn budget_headroom(held: i64, exposure: i64) -> i64 {
    held.saturating_sub(exposure).max(0)
}

/// Records a till's configured share of the offline card budget, when it changed.
pub fn set_budget(recorded: Option<i64>, share: Money) -> Vec<Event> {
    if recorded == Some(share.minor) {
        return Vec::new();
    }
    let money = |minor| Money {
        minor,
        currency: share.currency,
    };
    vec![
        OfflineBudgetSet {
            share: share.to_decimal(),
            currency: share.currency,
            previous: recorded.map(|minor| money(minor).to_decimal()),
        }
        .into(),
    ]
}

/// Gives `amount` of this till's (`own`) unused offline card budget (what it holds less its
/// exposure) to another till, `to`.
pub fn transfer_budget(
    budget: Budget,
    exposure: i64,
    transfer_id: uuid::Uuid,
    own: &NodeId,
    to: &NodeId,
    amount: Money,
) -> Result<Vec<Event>, PaymentRejected> {
    if to == own {
        return Err(PaymentRejected::BudgetToSelf);
    }
    let money = |minor| Money {
        minor,
        currency: amount.currency,
    };
    let unused = budget_headroom(budget.held, exposure);
    if amount.minor > unused {
        return Err(PaymentRejected::OfflineBudgetShort {
            requested: amount,
            unused: money(unused),
        });
    }
    Ok(vec![
        OfflineBudgetTransferred {
            transfer_id,
            to: to.clone(),
            amount: amount.to_decimal(),
            currency: amount.currency,
            previous_share: money(budget.held).to_decimal(),
            share: money(budget.held - amount.minor).to_decimal(),
        }
        .into(),
    ])
}

/// Takes in budget another till gave this one.
pub fn receive_budget(
    budget: Budget,
    transfer_id: uuid::Uuid,
    from: &NodeId,
    amount: Money,
) -> Vec<Event> {
    let money = |minor| Money {
        minor,
        currency: amount.currency,
    };
    vec![
        OfflineBudgetReceived {
            transfer_id,
            from: from.clone(),
            amount: amount.to_decimal(),
            currency: amount.currency,
            previous_share: money(budget.held).to_decimal(),
            share: money(budget.held.saturating_add(amount.minor)).to_decimal(),
        }
        .into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusion_contracts::CustomerId;

    const NOW: Timestamp = Timestamp::from_unix_ms(10);

    fn usd(minor: i64) -> Money {
        Money {
            minor,
            currency: Currency::USD,
        }
    }

    fn order(total: i64) -> Order {
        Order {
            id: OrderId::from_u128(1),
            customer_id: CustomerId::new("c").unwrap(),
            items: vec![],
            total: usd(total),
            status: OrderStatus::Created,
            created_at: NOW,
            updated_at: NOW,
            flag: None,
            shipping_address: None,
            hold_until: None,
            subtotal: usd(total),
            discount_total: Money::zero(Currency::USD),
            promotions: vec![],
            discount: None,
            taxes: vec![],
            tax_included: false,
        }
    }

    fn pay(id: u128, tender: Tender, amount: i64, tendered: Option<i64>) -> CreatePayment {
        CreatePayment {
            payment_id: PaymentId::from_u128(id),
            order_id: OrderId::from_u128(1),
            amount: usd(amount),
            tender,
            payment_method_id: if tender == Tender::Cash {
                "cash".into()
            } else {
                "pm_x".into()
            },
            tendered: tendered.map(usd),
            capture: true,
            staff: None,
        }
    }

    fn fold(events: &[Event]) -> Payment {
        let mut p = None;
        for e in events {
            apply(&mut p, e, NOW);
        }
        p.unwrap()
    }

    /// An order's log folded into its payments: two, in the order they were created, each
    /// by its own events (the card's failure leaves the cash alone).
    #[test]
    fn every_payment_of_an_orders_log_is_folded() {
        let card = create(
            &pay(2, Tender::Card, 600, None),
            Some(&order(1000)),
            &[],
            None,
            NOW,
        )
        .unwrap();
        let failed: Event = fusion_contracts::events::PaymentFailed {
            payment_id: PaymentId::from_u128(2),
            order_id: OrderId::from_u128(1),
            reason: "card_declined".into(),
        }
        .into();
        let cash = create(
            &pay(1, Tender::Cash, 1000, Some(2000)),
            Some(&order(1000)),
            &[],
            None,
            NOW,
        )
        .unwrap();
        let log: Vec<Event> = card.into_iter().chain([failed]).chain(cash).collect();
        let folded = fold_all(log.iter().map(|e| (e, NOW)));
        let got: Vec<_> = folded.iter().map(|p| (p.id, p.status)).collect();
        assert_eq!(
            got,
            [
                (PaymentId::from_u128(2), PaymentStatus::Failed),
                (PaymentId::from_u128(1), PaymentStatus::Captured),
            ]
        );
        assert_eq!(payment_of(&log[0]), Some(PaymentId::from_u128(2)));
        assert_eq!(payment_of(log.last().unwrap()), None, "order.paid");
        assert!(fold_all(std::iter::empty()).is_empty());
    }

    #[test]
    fn cash_is_captured_with_change_and_pays_the_order() {
        let events = create(
            &pay(1, Tender::Cash, 1000, Some(2000)),
            Some(&order(1000)),
            &[],
            None,
            NOW,
        )
        .unwrap();
        let topics: Vec<_> = events.iter().map(Event::topic).collect();
        assert_eq!(
            topics,
            ["payment.created", "payment.succeeded", "order.paid"]
        );
        let p = fold(&events);
        assert_eq!(
            (p.status, p.captured_minor, p.change_due),
            (PaymentStatus::Captured, 1000, Some(usd(1000)))
        );
    }

    #[test]
    fn create_table() {
        let o = order(1000);
        let cases = [
            ("split tender part", pay(1, Tender::Cash, 400, None), Ok(2)),
            ("card pending", pay(1, Tender::Card, 1000, None), Ok(1)),
            (
                "overpayment",
                pay(1, Tender::Card, 1001, None),
                Err(
                    "amount exceeds what is left to pay on order 00000000-0000-0000-0000-000000000001: 10.00 USD",
                ),
            ),
            (
                "too little cash",
                pay(1, Tender::Cash, 500, Some(499)),
                Err("tendered cash does not cover the amount"),
            ),
        ];
        for (name, cmd, expected) in cases {
            let got = create(&cmd, Some(&o), &[], None, NOW)
                .map(|e| e.len())
                .map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(String::from), "{name}");
        }
        let mut eur = pay(1, Tender::Cash, 100, None);
        eur.amount = Money {
            minor: 100,
            currency: Currency::EUR,
        };
        assert!(matches!(
            create(&eur, Some(&o), &[], None, NOW),
            Err(PaymentRejected::CurrencyMismatch { .. })
        ));
        assert!(matches!(
            create(&pay(1, Tender::Cash, 1, None), None, &[], None, NOW),
            Err(PaymentRejected::OrderNotFound(_))
        ));
        let cancelled = Order {
            status: OrderStatus::Cancelled,
            ..order(1000)
        };
        assert!(matches!(
            create(
                &pay(1, Tender::Cash, 1, None),
                Some(&cancelled),
                &[],
                None,
                NOW
            ),
            Err(PaymentRejected::OrderNotPayable { .. })
        ));
    }

    #[test]
    fn split_tenders_pay_the_order_when_captures_cover_it() {
        let o = order(1000);
        let cash =
            fold(&create(&pay(1, Tender::Cash, 400, None), Some(&o), &[], None, NOW).unwrap());
        let card_events = create(
            &pay(2, Tender::Card, 600, None),
            Some(&o),
            std::slice::from_ref(&cash),
            None,
            NOW,
        )
        .unwrap();
        let card = fold(&card_events);
        assert!(
            matches!(
                create(
                    &pay(3, Tender::Cash, 1, None),
                    Some(&o),
                    &[cash.clone(), card.clone()],
                    None,
                    NOW
                ),
                Err(PaymentRejected::Overpayment { .. })
            ),
            "pending holds its amount"
        );
        let cmd = RecordCardOutcome {
            payment_id: card.id,
            outcome: CardOutcome::Authorized {
                provider_ref: "pi_1".into(),
            },
        };
        let authorized = fold(
            &[
                card_events.clone(),
                card_outcome(Some(&card), &o, std::slice::from_ref(&cash), &cmd, NOW).unwrap(),
            ]
            .concat(),
        );
        assert_eq!(
            check_capture(&authorized, Some(usd(601))),
            Err(PaymentRejected::CaptureTooLarge {
                authorized: usd(600)
            })
        );
        let events = capture(
            Some(&authorized),
            &o,
            std::slice::from_ref(&cash),
            &RecordCapture {
                payment_id: card.id,
                amount: usd(600),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(
            events.iter().map(Event::topic).collect::<Vec<_>>(),
            ["payment.succeeded", "order.paid"]
        );
    }

    #[test]
    fn declines_fail_and_outcomes_are_recorded_once() {
        let o = order(1000);
        let events = create(&pay(2, Tender::Card, 1000, None), Some(&o), &[], None, NOW).unwrap();
        let pending = fold(&events);
        let declined = RecordCardOutcome {
            payment_id: pending.id,
            outcome: CardOutcome::Declined {
                reason: "card_declined".into(),
            },
        };
        let failed_events = card_outcome(Some(&pending), &o, &[], &declined, NOW).unwrap();
        assert_eq!(failed_events[0].topic(), "payment.failed");
        let failed = fold(&[events, failed_events].concat());
        assert_eq!(
            card_outcome(Some(&failed), &o, &[], &declined, NOW).unwrap(),
            vec![]
        );
        assert!(
            create(
                &pay(3, Tender::Cash, 1000, None),
                Some(&o),
                &[failed],
                None,
                NOW
            )
            .is_ok(),
            "a failed payment holds nothing"
        );
    }

    #[test]
    fn refunds_never_exceed_captures() {
        let o = order(1000);
        let p = fold(&create(&pay(1, Tender::Cash, 1000, None), Some(&o), &[], None, NOW).unwrap());
        assert_eq!(
            check_refund(&p, Some(usd(1001)), 0),
            Err(PaymentRejected::RefundTooLarge {
                refundable: usd(1000)
            })
        );
        let partial = refund(
            Some(&p),
            &RecordRefund {
                payment_id: p.id,
                amount: usd(300),
                provider_ref: None,
            },
            None,
        )
        .unwrap();
        let p2 = {
            let mut x = Some(p.clone());
            apply(&mut x, &partial[0], NOW);
            x.unwrap()
        };
        assert_eq!(
            (p2.status, p2.refunded_minor),
            (PaymentStatus::PartiallyRefunded, 300)
        );
        assert_eq!(check_refund(&p2, None, 0), Ok(usd(700)));
        // 200 owed to a return's card refund is not refundable again.
        assert_eq!(check_refund(&p2, None, 200), Ok(usd(500)));
        assert_eq!(
            check_refund(&p2, Some(usd(501)), 200),
            Err(PaymentRejected::RefundTooLarge {
                refundable: usd(500)
            })
        );
        let rest = refund(
            Some(&p2),
            &RecordRefund {
                payment_id: p.id,
                amount: usd(700),
                provider_ref: None,
            },
            None,
        )
        .unwrap();
        let Event::PaymentRefunded(r) = &rest[0] else {
            panic!()
        };
        assert_eq!(r.status, PaymentStatus::Refunded);
    }

    #[test]
    fn offline_approval_within_the_floor_limit_then_forwarding() {
        let o = order(1000);
        let created = create(&pay(2, Tender::Card, 1000, None), Some(&o), &[], None, NOW).unwrap();
        let pending = fold(&created);
        let approve = |limit| ApproveOffline {
            budget: None,
            payment_id: pending.id,
            floor_limit: usd(limit),
            reason: "down".into(),
        };
        assert_eq!(
            approve_offline(Some(&pending), &o, &[], &approve(999), 0, NOW),
            Err(PaymentRejected::AboveFloorLimit {
                amount: usd(1000),
                floor_limit: usd(999)
            })
        );
        let approved_events =
            approve_offline(Some(&pending), &o, &[], &approve(1000), 0, NOW).unwrap();
        assert_eq!(
            approved_events.iter().map(Event::topic).collect::<Vec<_>>(),
            ["payment.offline_approved", "order.paid"]
        );
        let approved = fold(&[created.clone(), approved_events].concat());
        assert_eq!(approved.status, PaymentStatus::OfflineApproved);
        assert_eq!(
            approve_offline(Some(&approved), &o, &[], &approve(1000), 0, NOW).unwrap(),
            vec![],
            "once"
        );

        let cases = [
            (
                CardOutcome::Captured {
                    provider_ref: "pi_1".into(),
                },
                vec!["payment.succeeded"],
            ),
            (
                CardOutcome::Declined {
                    reason: "card_declined".into(),
                },
                vec!["payment.failed", "order.flagged"],
            ),
        ];
        for (outcome, topics) in cases {
            let cmd = RecordCardOutcome {
                payment_id: approved.id,
                outcome,
            };
            let events = card_outcome(Some(&approved), &o, &[], &cmd, NOW).unwrap();
            assert_eq!(events.iter().map(Event::topic).collect::<Vec<_>>(), topics);
        }
    }

    #[test]
    fn pending_payments_expire_after_the_timeout_only() {
        let created = create(
            &pay(2, Tender::Card, 500, None),
            Some(&order(1000)),
            &[],
            None,
            NOW,
        )
        .unwrap();
        let pending = fold(&created);
        let expire_before = |ms| ExpirePending {
            payment_id: pending.id,
            created_before: Timestamp::from_unix_ms(ms),
        };
        assert_eq!(
            expire(Some(&pending), &expire_before(9)).unwrap(),
            vec![],
            "created after the cutoff"
        );
        let events = expire(Some(&pending), &expire_before(10)).unwrap();
        let Event::PaymentFailed(failed) = &events[0] else {
            panic!()
        };
        assert!(failed.reason.contains("BR-007"));
        let cash = fold(
            &create(
                &pay(3, Tender::Cash, 500, None),
                Some(&order(1000)),
                &[],
                None,
                NOW,
            )
            .unwrap(),
        );
        assert_eq!(
            expire(Some(&cash), &expire_before(10)).unwrap(),
            vec![],
            "settled payments never expire"
        );
    }

    #[test]
    fn store_credit_is_debited_with_the_payment_and_credited_back() {
        let issue = IssueStoreCredit {
            account: "gift-1".into(),
            amount: usd(1500),
            reason: "gift card".into(),
        };
        let mut account = None;
        for e in issue_credit(None, &issue, NOW).unwrap() {
            apply_credit(&mut account, &e, NOW);
        }
        let account = account.unwrap();
        assert_eq!(account.balance, usd(1500));
        let mut cmd = pay(5, Tender::StoreCredit, 1000, None);
        cmd.payment_method_id = "store_credit:gift-1".into();
        let events = create(&cmd, Some(&order(1000)), &[], Some(&account), NOW).unwrap();
        let topics: Vec<_> = events.iter().map(Event::topic).collect();
        assert_eq!(
            topics,
            [
                "payment.created",
                "payment.succeeded",
                "store-credit.changed",
                "order.paid"
            ]
        );
        let Event::StoreCreditChanged(debit) = &events[2] else {
            panic!()
        };
        assert_eq!(
            (debit.delta.to_string(), debit.balance.to_string()),
            ("-10.00".into(), "5.00".into())
        );

        let mut too_much = cmd.clone();
        too_much.amount = usd(1501);
        assert!(matches!(
            create(&too_much, Some(&order(2000)), &[], Some(&account), NOW),
            Err(PaymentRejected::InsufficientCredit { .. })
        ));
        assert!(matches!(
            create(&cmd, Some(&order(1000)), &[], None, NOW),
            Err(PaymentRejected::CreditAccountNotFound(_))
        ));
        let eur = IssueStoreCredit {
            amount: Money {
                minor: 1,
                currency: Currency::EUR,
            },
            ..issue
        };
        assert!(matches!(
            issue_credit(Some(&account), &eur, NOW),
            Err(PaymentRejected::CurrencyMismatch { .. })
        ));

        let paid = fold(&events[..2]);
        let after = CreditAccount {
            balance: usd(500),
            ..account
        };
        let back = on_cancelled(&[paid], &[after]);
        assert_eq!(
            back.iter().map(Event::topic).collect::<Vec<_>>(),
            ["payment.refunded", "store-credit.changed"]
        );
        let Event::StoreCreditChanged(credit) = &back[1] else {
            panic!()
        };
        assert_eq!(
            credit.balance.to_string(),
            "15.00",
            "the whole amount comes back"
        );
    }

    /// The one budget fold, as the till and the hub run it.
    #[test]
    fn budget_fold_table() {
        let usd = Currency::parse("USD").unwrap();
        let d = |minor| {
            Money {
                minor,
                currency: usd,
            }
            .to_decimal()
        };
        let till = NodeId::new("t2").unwrap();
        let set = |share, previous: Option<i64>| -> Event {
            OfflineBudgetSet {
                share: d(share),
                currency: usd,
                previous: previous.map(d),
            }
            .into()
        };
        let gave = |share| -> Event {
            OfflineBudgetTransferred {
                transfer_id: uuid::Uuid::from_u128(1),
                to: till.clone(),
                amount: d(1),
                currency: usd,
                previous_share: d(share + 1),
                share: d(share),
            }
            .into()
        };
        // (name, events, (configured, held) after)
        let cases: Vec<(&str, Vec<Event>, (i64, i64))> = vec![
            ("a first share", vec![set(500, None)], (500, 500)),
            (
                "a new share moves what is held by the difference",
                vec![set(500, None), gave(300), set(800, Some(500))],
                (800, 600),
            ),
            (
                "a transfer states what is held after it",
                vec![set(500, None), gave(300)],
                (500, 300),
            ),
        ];
        for (name, events, expected) in cases {
            let mut budget = Budget::default();
            for e in &events {
                apply_budget(&mut budget, e).unwrap();
            }
            assert_eq!((budget.configured, budget.held), expected, "{name}");
        }
        assert_eq!(budget_headroom(300, 120), 180);
        assert_eq!(budget_headroom(100, 120), 0);
        let give = |budget, exposure, to: &NodeId, minor| {
            transfer_budget(
                budget,
                exposure,
                uuid::Uuid::from_u128(2),
                &NodeId::new("t1").unwrap(),
                to,
                Money {
                    minor,
                    currency: usd,
                },
            )
        };
        let held = Budget {
            configured: 500,
            held: 500,
        };
        assert!(give(held, 200, &till, 300).is_ok());
        assert!(matches!(
            give(held, 200, &till, 301),
            Err(PaymentRejected::OfflineBudgetShort { .. })
        ));
        assert_eq!(
            give(held, 0, &NodeId::new("t1").unwrap(), 1),
            Err(PaymentRejected::BudgetToSelf)
        );
    }
}
