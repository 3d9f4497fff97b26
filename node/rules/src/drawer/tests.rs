use fusion_contracts::events::payments::PaymentStatus;
use fusion_contracts::events::{
    AppliedPromotion, OrderCancelled, OrderCreated, OrderPaid, OrderReturned, OrderStatus,
    PaymentCreated, PaymentOfflineApproved, PaymentRefunded, PaymentSucceeded, RefundPart,
};
use fusion_contracts::{CustomerId, PromotionId};

use super::*;

const NOW: Timestamp = Timestamp::from_unix_ms(1_764_700_000_000);

fn till(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn usd(minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::USD,
    }
}

fn d(minor: i64) -> Decimal {
    usd(minor).to_decimal()
}

fn staff(id: &str) -> Option<StaffId> {
    Some(StaffId::new(id).unwrap())
}

fn session(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn opened(till_name: &str, id: u128, from_seq: u64) -> Event {
    SessionOpened {
        session_id: session(id),
        till: till(till_name),
        float: d(10_000),
        currency: Currency::USD,
        staff: staff("ana"),
        opened_at: NOW,
        from_seq,
    }
    .into()
}

fn moved(till_name: &str, id: u128, kind: CashMove, minor: i64) -> Event {
    SessionCashMoved {
        session_id: session(id),
        till: till(till_name),
        kind,
        amount: d(minor),
        currency: Currency::USD,
        reason: "float top-up".into(),
        staff: staff("ana"),
        approved_by: (kind == CashMove::NoSale).then(|| "staff:max".to_string()),
        at: NOW,
    }
    .into()
}

fn closed(till_name: &str, id: u128, z: u64) -> Event {
    SessionClosed {
        session_id: session(id),
        till: till(till_name),
        z,
        currency: Currency::USD,
        float: d(10_000),
        expected: d(10_000),
        counted: d(10_000),
        variance: d(0),
        denominations: vec![],
        totals: Box::new(Tally::new(Currency::USD, &Drawer::default()).totals()),
        opened_at: NOW,
        opened_by: None,
        closed_at: NOW,
        staff: None,
        from_seq: 1,
        to_seq: 1,
        offline_pending: vec![],
        reprints: Some(0),
    }
    .into()
}

fn open_drawer(id: u128, last_z: u64) -> Drawer {
    Drawer {
        open: Some(OpenDrawer {
            session_id: session(id),
            float: usd(10_000),
            opened_by: None,
            opened_at: NOW,
            from_seq: 1,
        }),
        last_z,
        since_seq: 1,
        offline_unsettled: vec![],
    }
}

#[test]
fn a_drawer_folds_only_its_tills_sessions_in_order() {
    let closed_drawer = Drawer {
        last_z: 4,
        since_seq: 40,
        ..Drawer::default()
    };
    let cases: &[(&str, Drawer, &str, Event, bool)] = &[
        (
            "opened",
            closed_drawer.clone(),
            "a",
            opened("a", 1, 40),
            true,
        ),
        (
            "opened by another till",
            closed_drawer.clone(),
            "b",
            opened("a", 1, 40),
            false,
        ),
        (
            "opened twice",
            open_drawer(1, 4),
            "a",
            opened("a", 2, 40),
            false,
        ),
        (
            "a paid-in",
            open_drawer(1, 4),
            "a",
            moved("a", 1, CashMove::PaidIn, 500),
            true,
        ),
        (
            "a move of another session",
            open_drawer(1, 4),
            "a",
            moved("a", 2, CashMove::PaidIn, 500),
            false,
        ),
        (
            "a move while closed",
            closed_drawer.clone(),
            "a",
            moved("a", 1, CashMove::PaidOut, 500),
            false,
        ),
        (
            "another till's move",
            open_drawer(1, 4),
            "b",
            moved("a", 1, CashMove::PaidIn, 500),
            false,
        ),
        (
            "the next Z",
            open_drawer(1, 4),
            "a",
            closed("a", 1, 5),
            true,
        ),
        ("a Z gap", open_drawer(1, 4), "a", closed("a", 1, 6), false),
        (
            "a Z again",
            open_drawer(1, 4),
            "a",
            closed("a", 1, 4),
            false,
        ),
        (
            "a close of another session",
            open_drawer(1, 4),
            "a",
            closed("a", 2, 5),
            false,
        ),
        (
            "a close while closed",
            closed_drawer.clone(),
            "a",
            closed("a", 1, 5),
            false,
        ),
        (
            "another till's close",
            open_drawer(1, 4),
            "b",
            closed("a", 1, 5),
            false,
        ),
    ];
    for (name, drawer, origin, event, ok) in cases {
        assert!(event.validate().is_ok(), "{name}: {:?}", event.validate());
        let mut after = drawer.clone();
        let got = apply(&mut after, &till(origin), 77, event);
        assert_eq!(got.is_ok(), *ok, "{name}: {got:?}");
        match (got, event) {
            (Err(refused), _) => {
                assert_eq!(refused.rule(), "drawer", "{name}");
                assert_eq!(&after, drawer, "{name}: a refusal changes nothing");
            }
            (Ok(()), Event::SessionClosed(e)) => {
                assert_eq!(after.open, None, "{name}");
                assert_eq!(after.last_z, e.z, "{name}");
                assert_eq!(
                    after.since_seq, 78,
                    "{name}: the next report starts after it"
                );
            }
            (Ok(()), Event::SessionOpened(e)) => {
                assert_eq!(
                    after.open.map(|o| o.session_id),
                    Some(e.session_id),
                    "{name}"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn drawer_commands_are_decided_by_the_drawer() {
    let a = till("a");
    let open_cmd = OpenSession {
        session_id: session(2),
        float: usd(15_000),
        staff: staff("ana"),
    };
    assert_eq!(
        open(&open_drawer(1, 0), &a, &open_cmd, NOW),
        Err(DrawerRejected::AlreadyOpen(session(1)))
    );
    let fresh = Drawer {
        since_seq: 12,
        ..Drawer::default()
    };
    let Ok(Event::SessionOpened(e)) = open(&fresh, &a, &open_cmd, NOW) else {
        panic!("opens")
    };
    assert_eq!((e.from_seq, e.float), (12, d(15_000)));

    let cash = |kind, minor, approved: Option<&str>, id| MoveCash {
        session_id: session(id),
        kind,
        amount: usd(minor),
        reason: "till".into(),
        staff: staff("ana"),
        approved_by: approved.map(str::to_string),
    };
    let cases: &[(&str, MoveCash, Result<(), DrawerRejected>)] = &[
        ("paid in", cash(CashMove::PaidIn, 500, None, 1), Ok(())),
        ("paid out", cash(CashMove::PaidOut, 500, None, 1), Ok(())),
        (
            "a no-sale approved",
            cash(CashMove::NoSale, 0, Some("staff:max"), 1),
            Ok(()),
        ),
        (
            "a no-sale alone",
            cash(CashMove::NoSale, 0, None, 1),
            Err(DrawerRejected::NoSaleNeedsApproval),
        ),
        (
            "another session",
            cash(CashMove::PaidIn, 500, None, 9),
            Err(DrawerRejected::NotOpen(session(9))),
        ),
        (
            "another currency",
            MoveCash {
                amount: Money {
                    minor: 500,
                    currency: Currency::EUR,
                },
                ..cash(CashMove::PaidIn, 500, None, 1)
            },
            Err(DrawerRejected::CurrencyMismatch {
                expected: Currency::USD,
            }),
        ),
    ];
    for (name, cmd, expected) in cases {
        let got = move_cash(&open_drawer(1, 0), &a, cmd, NOW);
        assert_eq!(got.clone().map(|_| ()), expected.clone(), "{name}");
        if let Ok(event) = got {
            assert!(event.validate().is_ok(), "{name}");
        }
    }

    // The close: Z one past the last, the variance against the fold's expected cash.
    let mut tally = Tally::new(Currency::USD, &Drawer::default());
    tally.add(&moved("a", 1, CashMove::PaidIn, 2_500), &NoFacts);
    let close_cmd = CloseSession {
        session_id: session(1),
        counted: usd(12_400),
        denominations: vec![],
        staff: staff("max"),
    };
    let Ok(Event::SessionClosed(z)) = close(&open_drawer(1, 6), &a, &close_cmd, &tally, 30, NOW)
    else {
        panic!("closes")
    };
    assert_eq!(
        (z.z, z.expected, z.variance, z.to_seq),
        (7, d(12_500), d(-100), 30)
    );
    assert!(Event::from(z).validate().is_ok());
    assert_eq!(
        close(&Drawer::default(), &a, &close_cmd, &tally, 30, NOW),
        Err(DrawerRejected::NotOpen(session(1)))
    );
}

struct NoFacts;

impl Facts for NoFacts {
    fn order(&self, _: OrderId) -> Option<SaleFacts> {
        None
    }
    fn tender(&self, _: PaymentId) -> Option<Tender> {
        None
    }
}

/// Facts of orders and payments created before the report's range.
struct Earlier;

impl Facts for Earlier {
    fn order(&self, id: OrderId) -> Option<SaleFacts> {
        (id == order(90)).then(|| SaleFacts {
            total: usd(2_000),
            taxes: vec![],
            discount_total: usd(0),
            promotions: usd(0),
            staff: None,
        })
    }
    fn tender(&self, id: PaymentId) -> Option<Tender> {
        (id == payment(90)).then_some(Tender::Card)
    }
}

fn order(n: u128) -> OrderId {
    OrderId::from_u128(n)
}

fn payment(n: u128) -> PaymentId {
    PaymentId::from_u128(n)
}

fn created(n: u128, total: i64, who: &str, promotion: i64, discount: i64) -> Event {
    OrderCreated {
        order_id: order(n),
        customer_id: CustomerId::new("walk-in").unwrap(),
        items: vec![],
        total: d(total),
        currency: Currency::USD,
        status: OrderStatus::Created,
        created_at: NOW,
        shipping_address: None,
        hold_until: None,
        subtotal: d(total + promotion + discount),
        taxes: vec![OrderTax {
            class: "standard".into(),
            rate: Decimal::new(20, 0),
            base: d(total * 5 / 6),
            tax: d(total - total * 5 / 6),
        }],
        tax_included: true,
        discount_total: d(promotion + discount),
        promotions: (promotion > 0)
            .then(|| AppliedPromotion {
                promotion_id: PromotionId(Uuid::from_u128(5)),
                name: "winter".into(),
                amount: d(promotion),
            })
            .into_iter()
            .collect(),
        discount: None,
        staff: staff(who),
    }
    .into()
}

fn pay(p: u128, o: u128, tender: Tender, minor: i64, tendered: Option<i64>) -> Vec<Event> {
    let mut events = vec![
        PaymentCreated {
            payment_id: payment(p),
            order_id: order(o),
            amount: d(minor),
            currency: Currency::USD,
            tender,
            payment_method_id: "cash".into(),
            tendered: tendered.map(d),
            capture: true,
            status: PaymentStatus::Pending,
            created_at: NOW,
            staff: None,
        }
        .into(),
    ];
    if tender != Tender::Card || tendered.is_some() {
        events.push(succeeded(p, o, minor, tendered.map(|t| t - minor)));
    }
    events
}

fn succeeded(p: u128, o: u128, minor: i64, change: Option<i64>) -> Event {
    PaymentSucceeded {
        payment_id: payment(p),
        order_id: order(o),
        amount: d(minor),
        currency: Currency::USD,
        change_due: change.map(d),
        provider_ref: None,
    }
    .into()
}

fn paid(o: u128, total: i64) -> Event {
    OrderPaid {
        order_id: order(o),
        total: d(total),
        paid: d(total),
        currency: Currency::USD,
        paid_at: NOW,
    }
    .into()
}

fn refunded(p: u128, o: u128, minor: i64) -> Event {
    PaymentRefunded {
        payment_id: payment(p),
        order_id: order(o),
        amount: d(minor),
        refunded_total: d(minor),
        currency: Currency::USD,
        status: PaymentStatus::PartiallyRefunded,
        provider_ref: None,
    }
    .into()
}

fn returned(o: u128, minor: i64, refund_to: RefundTo, who: &str) -> Event {
    OrderReturned {
        return_id: Uuid::from_u128(o + 1000),
        order_id: order(o),
        lines: vec![fusion_contracts::events::ReturnedLine {
            line: 0,
            sku: fusion_contracts::Sku::new("MUG").unwrap(),
            quantity: 1,
            refund: d(minor),
        }],
        refund: d(minor),
        currency: Currency::USD,
        refund_to,
        restock: true,
        approved_by: None,
        reason: None,
        returned_at: NOW,
        staff: staff(who),
    }
    .into()
}

/// A day's log: a sale before the drawer opened, cash with change, a card captured, a card
/// approved offline and captured later, a return in cash, a split refund to a card, a
/// cancelled order, a paid-in, a paid-out and a no-sale.
fn a_day() -> Vec<Event> {
    let mut log = vec![created(1, 1_200, "ana", 0, 0)];
    log.extend(pay(1, 1, Tender::Cash, 1_200, Some(1_200)));
    log.push(paid(1, 1_200));
    log.push(opened("a", 7, 1));
    log.push(created(2, 4_500, "ana", 500, 250));
    log.extend(pay(2, 2, Tender::Cash, 4_500, Some(5_000)));
    log.push(paid(2, 4_500));
    log.push(created(3, 3_000, "bo", 0, 0));
    log.extend(pay(3, 3, Tender::Card, 3_000, None));
    log.push(succeeded(3, 3, 3_000, None));
    log.push(paid(3, 3_000));
    log.push(created(4, 800, "bo", 0, 0));
    log.extend(pay(4, 4, Tender::Card, 800, None));
    log.push(
        PaymentOfflineApproved {
            payment_id: payment(4),
            order_id: order(4),
            amount: d(800),
            currency: Currency::USD,
            floor_limit: d(5_000),
            reason: "provider unreachable".into(),
        }
        .into(),
    );
    log.push(paid(4, 800));
    log.push(succeeded(4, 4, 800, None)); // forwarded later: counted once
    log.push(returned(2, 1_500, RefundTo::Cash, "bo"));
    log.push(returned(
        3,
        1_000,
        RefundTo::Split {
            parts: vec![RefundPart {
                to: RefundPartTo::Payment {
                    payment_id: payment(3),
                    tender: Tender::Card,
                },
                amount: d(1_000),
            }],
        },
        "ana",
    ));
    log.push(refunded(3, 3, 1_000));
    log.push(created(5, 999, "ana", 0, 0));
    log.push(
        OrderCancelled {
            order_id: order(5),
            status: OrderStatus::Cancelled,
            reason: None,
            cancelled_at: NOW,
        }
        .into(),
    );
    // An order created before the range, paid by a card created before it too.
    log.push(succeeded(90, 90, 2_000, None));
    log.push(paid(90, 2_000));
    log.push(moved("a", 7, CashMove::PaidIn, 2_000));
    log.push(moved("a", 7, CashMove::PaidOut, 700));
    log.push(moved("a", 7, CashMove::NoSale, 0));
    log
}

#[test]
fn the_report_is_the_sum_of_the_days_events() {
    let mut tally = Tally::new(Currency::USD, &Drawer::default());
    for event in a_day() {
        // (The orders are bare: their lines do not matter here.)
        if !matches!(event, Event::OrderCreated(_)) {
            assert!(event.validate().is_ok(), "{event:?}");
        }
        tally.add(&event, &Earlier);
    }
    let t = tally.totals();
    let tender = |tender| {
        t.tenders
            .iter()
            .find(|x| x.tender == tender)
            .cloned()
            .unwrap()
    };
    let cases: &[(&str, String, String)] = &[
        ("sales", t.sales.to_string(), "5".into()),
        ("sales total", t.sales_total.to_string(), "115.00".into()),
        (
            "outside a session",
            t.outside_session.to_string(),
            "1".into(),
        ),
        ("cash tendered", t.cash_tendered.to_string(), "62.00".into()),
        ("change", t.change_given.to_string(), "5.00".into()),
        ("cash refunds", t.cash_refunds.to_string(), "15.00".into()),
        (
            "cash taken",
            format!(
                "{} {}",
                tender(Tender::Cash).count,
                tender(Tender::Cash).taken
            ),
            "2 57.00".into(),
        ),
        (
            "cards taken",
            format!(
                "{} {}",
                tender(Tender::Card).count,
                tender(Tender::Card).taken
            ),
            "3 58.00".into(),
        ),
        (
            "card refunds",
            tender(Tender::Card).refunded.to_string(),
            "10.00".into(),
        ),
        ("paid in", t.paid_in.to_string(), "20.00".into()),
        ("paid out", t.paid_out.to_string(), "7.00".into()),
        ("no-sales", t.no_sales.to_string(), "1".into()),
        ("promotions", t.promotions.to_string(), "5.00".into()),
        ("discounts", t.discounts.to_string(), "2.50".into()),
        (
            "returns",
            format!("{} {}", t.returns, t.refunds),
            "2 25.00".into(),
        ),
        (
            "voids",
            format!("{} {}", t.voids, t.voids_total),
            "1 9.99".into(),
        ),
        (
            "taxes",
            format!("{} {} {}", t.taxes.len(), t.taxes[0].rate, t.taxes[0].tax),
            "1 20 15.84".into(),
        ),
    ];
    for (name, got, expected) in cases {
        assert_eq!(got, expected, "{name}");
    }
    let of = |id: Option<&str>| {
        t.staff
            .iter()
            .find(|s| s.staff.as_ref().map(|s| s.as_str()) == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (of(Some("ana")).sales, of(Some("ana")).sales_total),
        (2, d(5_700))
    );
    assert_eq!((of(Some("bo")).sales, of(Some("bo")).returns), (2, 1));
    assert_eq!(of(None).sales, 1, "the earlier order's sale has no staff");
    assert_eq!(of(Some("ana")).no_sales, 1);
    // float 100 + tendered 62 − change 5 + in 20 − out 7 − refunds 15
    assert_eq!(expected_cash(usd(10_000), &t), usd(15_500));
    assert!(tally.offline_unsettled().is_empty());
}

#[test]
fn an_offline_approval_settled_after_a_z_is_counted_once() {
    let mut first = Tally::new(Currency::USD, &Drawer::default());
    let mut log = vec![created(4, 800, "bo", 0, 0)];
    log.extend(pay(4, 4, Tender::Card, 800, None));
    log.push(
        PaymentOfflineApproved {
            payment_id: payment(4),
            order_id: order(4),
            amount: d(800),
            currency: Currency::USD,
            floor_limit: d(5_000),
            reason: "offline".into(),
        }
        .into(),
    );
    for event in &log {
        first.add(event, &NoFacts);
    }
    assert_eq!(first.offline_unsettled(), vec![payment(4)]);
    let drawer = Drawer {
        offline_unsettled: first.offline_unsettled(),
        ..Drawer::default()
    };
    let mut next = Tally::new(Currency::USD, &drawer);
    next.add(&succeeded(4, 4, 800, None), &Earlier);
    assert!(next.totals().tenders.is_empty(), "{:?}", next.totals());
    assert!(next.offline_unsettled().is_empty());
}

#[test]
fn money_in_another_currency_is_counted_apart() {
    let mut tally = Tally::new(Currency::USD, &Drawer::default());
    tally.add(
        &PaymentSucceeded {
            payment_id: payment(1),
            order_id: order(1),
            amount: Decimal::new(500, 2),
            currency: Currency::EUR,
            change_due: None,
            provider_ref: None,
        }
        .into(),
        &NoFacts,
    );
    let t = tally.totals();
    assert_eq!((t.other_currency, t.tenders.len()), (1, 0));
}
