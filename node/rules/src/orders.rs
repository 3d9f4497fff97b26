//! Orders: placing reserves every line's stock, all or nothing (or, for skus that allow
//! backorders, what there is, the rest owed); cancelling releases it.
//! Pure decide / apply.

use std::collections::BTreeMap;

use fusion_contracts::commands::CreateShipment;
use fusion_contracts::commands::{CancelOrder, ExpireHold, PlaceOrder};
use fusion_contracts::events::OrderFulfilled;
use fusion_contracts::events::shipping::Address;
use fusion_contracts::events::{
    AppliedPromotion, InventoryBackordered, InventoryInsufficient, InventoryReleased,
    InventoryReserved, OrderCancelled, OrderCreated, OrderDiscount, OrderFlagged, OrderStatus,
    OrderTax, PriceOverride, ReservationStatus, SoldItem, StockLine,
};
use fusion_contracts::http::PARCEL_GRAMS_DEFAULT;
use fusion_contracts::{CustomerId, Event, Money, OrderId, ShipmentId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Refused;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub customer_id: CustomerId,
    /// As sold: list prices, overrides, tax classes, adjustments, each line's tax and paid.
    pub items: Vec<SoldItem>,
    pub total: Money,
    pub status: OrderStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Why the order needs a person (an offline card approval declined later), if it does.
    pub flag: Option<String>,
    /// Where it ships once paid; `None`: carried out.
    pub shipping_address: Option<Address>,
    /// Unpaid by then, it is cancelled and its stock released.
    pub hold_until: Option<Timestamp>,
    /// Σ price × quantity.
    pub subtotal: Money,
    /// What promotions and discounts took off.
    pub discount_total: Money,
    pub promotions: Vec<AppliedPromotion>,
    pub discount: Option<Box<OrderDiscount>>,
    /// The tax of every rate; empty: none charged.
    pub taxes: Vec<OrderTax>,
    pub tax_included: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum OrderRejected {
    #[error("order {0} not found")]
    NotFound(OrderId),
    /// `line` is the index of the first order line naming the sku; `requested` sums every
    /// line of that sku.
    #[error("insufficient stock for {sku}: requested {requested}, available {available}")]
    InsufficientStock {
        sku: Sku,
        requested: u64,
        available: u64,
        line: usize,
    },
    #[error("order total overflows")]
    TotalOverflow,
    #[error("order {0} has shipped; return the shipment instead")]
    AlreadyShipped(OrderId),
    #[error("order {order_id} is {status:?} and cannot be cancelled")]
    NotCancellable {
        order_id: OrderId,
        status: OrderStatus,
    },
    /// A line names no price and the till holds no catalog price for its sku in the order's
    /// currency.
    #[error("{sku} has no catalog price in {currency}; give the line a price")]
    NoListPrice {
        sku: Sku,
        currency: fusion_contracts::Currency,
        line: usize,
    },
    /// A line priced otherwise than the catalog, with nobody who may approve it.
    #[error(
        "line {line} ({sku}) asks {asked} against the catalog's {list}: a price override needs a manager's approval"
    )]
    OverrideNeedsApproval {
        sku: Sku,
        line: usize,
        asked: String,
        list: String,
    },
    /// The store charges tax but has no rate for a line's tax class.
    #[error("line {line} ({sku}): the store has no rate for tax class {class:?}")]
    NoTaxRate {
        sku: Sku,
        class: String,
        line: usize,
    },
    /// A discount above the store's `discountApprovalPercent`, with nobody who may approve it.
    /// `line`: the line it is given on; `None`: the order.
    #[error("a discount above {percent} % needs a manager's approval")]
    DiscountNeedsApproval {
        line: Option<usize>,
        percent: String,
    },
    /// A discount larger than what it applies to (minor units).
    #[error("a discount of {asked} is more than the {base} it applies to")]
    DiscountTooLarge {
        line: Option<usize>,
        asked: i64,
        base: i64,
    },
}

impl OrderRejected {
    /// The event a refusal leaves in the log, if any: a short sku is worth knowing about
    /// (reorder alerts) even though no order exists.
    pub fn event(&self, order_id: OrderId) -> Option<Event> {
        match self {
            OrderRejected::InsufficientStock {
                sku,
                requested,
                available,
                ..
            } => Some(
                InventoryInsufficient {
                    order_id,
                    status: ReservationStatus::Insufficient,
                    sku: sku.clone(),
                    quantity: *requested,
                    available: *available,
                }
                .into(),
            ),
            _ => None,
        }
    }
}

/// Quantity per sku, in the order the skus first appear, with the first line naming each.
fn demand(cmd: &PlaceOrder) -> Vec<(Sku, u64, usize)> {
    let mut index: BTreeMap<&Sku, usize> = BTreeMap::new();
    let mut demand: Vec<(Sku, u64, usize)> = Vec::new();
    for (line, item) in cmd.lines.iter().enumerate() {
        match index.get(&item.sku) {
            Some(&i) => demand[i].1 += item.quantity,
            None => {
                index.insert(&item.sku, demand.len());
                demand.push((item.sku.clone(), item.quantity, line));
            }
        }
    }
    demand
}

/// Places the order if every sku has enough available stock: `order.created` then
/// `inventory.reserved` for all lines. Otherwise nothing is reserved.
/// `hold_ms`: how long the stock is held for an unpaid order (`None`: until paid).
pub fn place(
    cmd: &PlaceOrder,
    list: impl Fn(&Sku) -> Option<Money>,
    available: impl Fn(&Sku) -> u64,
    now: Timestamp,
    hold_ms: Option<i64>,
) -> Result<Vec<Event>, OrderRejected> {
    place_with_backorders(
        cmd,
        |sku| list(sku).map(crate::pricing::Listing::standard),
        available,
        |_| false,
        &crate::pricing::Terms::default(),
        now,
        hold_ms,
    )
}

/// The price of every line: the catalog's (`list`: the active product's price this till holds
/// for a sku, in the order's currency) when the line names none; a line priced otherwise is a
/// price override, allowed only with the order's `price_approver` and recorded with it. A sku
/// without a catalog price sells only at a price the line names, as an override.
pub fn price_lines(
    cmd: &PlaceOrder,
    list: impl Fn(&Sku) -> Option<Money>,
) -> Result<Vec<(SoldItem, Money)>, OrderRejected> {
    let mut sold = Vec::with_capacity(cmd.lines.len());
    for (line, l) in cmd.lines.iter().enumerate() {
        let listed = list(&l.sku).filter(|p| p.currency == cmd.currency);
        let price = match (l.price, listed) {
            (Some(asked), _) => asked,
            (None, Some(listed)) => listed,
            (None, None) => {
                return Err(OrderRejected::NoListPrice {
                    sku: l.sku.clone(),
                    currency: cmd.currency,
                    line,
                });
            }
        };
        assert_eq!(
            price.currency, cmd.currency,
            "order lines are priced in the order currency"
        );
        let price_override = if listed == Some(price) {
            None
        } else {
            let approved_by =
                cmd.price_approver
                    .clone()
                    .ok_or_else(|| OrderRejected::OverrideNeedsApproval {
                        sku: l.sku.clone(),
                        line,
                        asked: price.to_decimal().to_string(),
                        list: listed.map_or("none".into(), |p| p.to_decimal().to_string()),
                    })?;
            Some(PriceOverride {
                approved_by,
                reason: l.override_reason.clone(),
            })
        };
        sold.push((
            SoldItem {
                sku: l.sku.clone(),
                quantity: l.quantity,
                price: price.to_decimal(),
                category: l.category.clone(),
                list_price: listed.map(|p| p.to_decimal()),
                price_override,
                // Filled by `pricing::price_order`.
                tax_class: crate::tax::STANDARD.to_string(),
                adjustments: Vec::new(),
                net: price.to_decimal(),
                tax: Money::zero(cmd.currency).to_decimal(),
                paid: price.to_decimal(),
            },
            price,
        ));
    }
    Ok(sold)
}

/// [`place`], except that a sku whose policy allows backorders (`backorders`) never refuses
/// the order: what is available is reserved, the rest is owed (`inventory.backordered`), and
/// the order is flagged for review. The owed units are reserved later, as stock arrives; they
/// are never sold from stock this till does not hold.
pub fn place_with_backorders(
    cmd: &PlaceOrder,
    listing: impl Fn(&Sku) -> Option<crate::pricing::Listing>,
    available: impl Fn(&Sku) -> u64,
    backorders: impl Fn(&Sku) -> bool,
    terms: &crate::pricing::Terms,
    now: Timestamp,
    hold_ms: Option<i64>,
) -> Result<Vec<Event>, OrderRejected> {
    let priced = crate::pricing::price_order(cmd, listing, terms, now)?;
    let mut reserve = Vec::new();
    let mut owed = Vec::new();
    for (sku, requested, line) in demand(cmd) {
        let available = available(&sku);
        if requested <= available {
            reserve.push(StockLine {
                sku,
                quantity: requested,
            });
        } else if backorders(&sku) {
            owed.push(StockLine {
                sku: sku.clone(),
                quantity: requested - available,
            });
            if available > 0 {
                reserve.push(StockLine {
                    sku,
                    quantity: available,
                });
            }
        } else {
            return Err(OrderRejected::InsufficientStock {
                sku,
                requested,
                available,
                line,
            });
        }
    }
    let created = OrderCreated {
        order_id: cmd.order_id,
        customer_id: cmd.customer_id.clone(),
        items: priced.items,
        total: priced.total.to_decimal(),
        currency: cmd.currency,
        status: OrderStatus::Created,
        created_at: now,
        shipping_address: cmd.shipping_address.clone(),
        hold_until: hold_ms.map(|ms| now.plus_ms(ms)),
        subtotal: priced.subtotal.to_decimal(),
        taxes: priced.taxes,
        tax_included: priced.tax_included,
        discount_total: priced.discount_total.to_decimal(),
        promotions: priced.promotions,
        discount: priced.discount,
        staff: cmd.staff.clone(),
    };
    let mut events: Vec<Event> = vec![created.into()];
    if !reserve.is_empty() {
        events.push(
            InventoryReserved {
                order_id: cmd.order_id,
                status: ReservationStatus::Reserved,
                items: reserve,
            }
            .into(),
        );
    }
    if !owed.is_empty() {
        let reason = owed
            .iter()
            .map(|l| format!("{} × {}", l.quantity, l.sku))
            .collect::<Vec<_>>()
            .join(", ");
        events.push(
            InventoryBackordered {
                order_id: cmd.order_id,
                items: owed,
            }
            .into(),
        );
        events.push(
            OrderFlagged {
                order_id: cmd.order_id,
                reason: format!("backordered: {reason} owed, reserved as stock arrives"),
                payment_id: None,
            }
            .into(),
        );
    }
    Ok(events)
}

/// Cancels an order that has not shipped (created or paid) and releases what it still holds
/// (`held`: its active reservations). Its payments are settled by `payments::on_cancelled`.
pub fn cancel(
    order: Option<&Order>,
    held: Vec<StockLine>,
    shipped: bool,
    cmd: &CancelOrder,
    now: Timestamp,
) -> Result<Vec<Event>, OrderRejected> {
    let order = order.ok_or(OrderRejected::NotFound(cmd.order_id))?;
    if !matches!(order.status, OrderStatus::Created | OrderStatus::Paid) {
        return Err(OrderRejected::NotCancellable {
            order_id: order.id,
            status: order.status,
        });
    }
    if shipped {
        return Err(OrderRejected::AlreadyShipped(order.id));
    }
    let mut events: Vec<Event> = vec![
        OrderCancelled {
            order_id: order.id,
            status: OrderStatus::Cancelled,
            reason: cmd.reason.clone(),
            cancelled_at: now,
        }
        .into(),
    ];
    if !held.is_empty() {
        events.push(
            InventoryReleased {
                order_id: order.id,
                status: ReservationStatus::Released,
                items: held,
                reason: "order.cancelled".into(),
            }
            .into(),
        );
    }
    Ok(events)
}

/// Units of one sku an order still owes (`inventory.backordered`); `seq` orders backorders,
/// oldest first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owed {
    pub seq: u64,
    pub order_id: OrderId,
    pub sku: Sku,
    pub quantity: u64,
}

/// The backorder policy: which owed units to reserve now from what this till has available of
/// each sku (`available`), oldest backorder first, each taking what is left of its sku. Never
/// more than is available.
pub fn fill_backorders(
    mut owed: Vec<Owed>,
    available: impl Fn(&Sku) -> u64,
) -> Vec<(OrderId, StockLine)> {
    owed.sort();
    let mut left: BTreeMap<Sku, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for o in owed {
        let left = left
            .entry(o.sku.clone())
            .or_insert_with(|| available(&o.sku));
        let take = (*left).min(o.quantity);
        if take == 0 {
            continue;
        }
        *left -= take;
        out.push((
            o.order_id,
            StockLine {
                sku: o.sku,
                quantity: take,
            },
        ));
    }
    out
}

/// What an order still owes of a sku after `reserved` more of it were reserved for it;
/// `None` once nothing is owed.
pub fn owed_after(owed: u64, reserved: u64) -> Option<u64> {
    owed.checked_sub(reserved).filter(|left| *left > 0)
}

/// Folds an order event into the order it names.
pub fn apply(order: &mut Option<Order>, event: &Event) -> Result<(), Refused> {
    match event {
        Event::OrderCreated(e) => {
            let total =
                Money::from_decimal(e.total, e.currency).map_err(|err| Refused::Amount {
                    topic: event.topic(),
                    reason: format!("total: {err}"),
                })?;
            let amount = |field: &str, d| {
                Money::from_decimal(d, e.currency).map_err(|err| Refused::Amount {
                    topic: event.topic(),
                    reason: format!("{field}: {err}"),
                })
            };
            *order = Some(Order {
                id: e.order_id,
                customer_id: e.customer_id.clone(),
                items: e.items.clone(),
                total,
                status: OrderStatus::Created,
                created_at: e.created_at,
                updated_at: e.created_at,
                flag: None,
                shipping_address: e.shipping_address.clone(),
                hold_until: e.hold_until,
                subtotal: amount("subtotal", e.subtotal)?,
                discount_total: amount("discountTotal", e.discount_total)?,
                promotions: e.promotions.clone(),
                discount: e.discount.clone(),
                taxes: e.taxes.clone(),
                tax_included: e.tax_included,
            });
        }
        Event::OrderFulfilled(e) => {
            if let Some(o) = order {
                o.status = OrderStatus::Fulfilled;
                o.updated_at = e.fulfilled_at;
            }
        }
        Event::OrderFlagged(e) => {
            if let Some(o) = order {
                o.flag = Some(e.reason.clone());
            }
        }
        Event::OrderPaid(e) => {
            if let Some(o) = order {
                o.status = OrderStatus::Paid;
                o.updated_at = e.paid_at;
            }
        }
        Event::OrderCancelled(e) => {
            if let Some(o) = order {
                o.status = OrderStatus::Cancelled;
                o.updated_at = e.cancelled_at;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Cancels an order still unpaid when its hold ends, releasing its stock. A paid, fulfilled or
/// cancelled order, or one whose hold has not ended, is left alone (the scheduler may ask twice).
pub fn expire_hold(
    order: Option<&Order>,
    held: Vec<StockLine>,
    cmd: &ExpireHold,
    now: Timestamp,
) -> Result<Vec<Event>, OrderRejected> {
    let order = order.ok_or(OrderRejected::NotFound(cmd.order_id))?;
    let ended = order.hold_until.is_some_and(|until| until <= now);
    if order.status != OrderStatus::Created || !ended {
        return Ok(Vec::new());
    }
    let reason = Some("unpaid when the payment hold ended".to_string());
    cancel(
        Some(order),
        held,
        false,
        &CancelOrder {
            order_id: order.id,
            reason,
        },
        now,
    )
}

/// What follows an order's payment: shipping it (it has an address) or, for a carry-out order,
/// fulfilling it at once. A pure policy: the store runs the reaction in the same transaction
/// as the `order.paid` that caused it, so a chain is never left half done.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterPaid {
    Ship(CreateShipment),
    Fulfil(Event),
}

pub fn after_paid(order: &Order, shipment_id: ShipmentId, now: Timestamp) -> AfterPaid {
    match &order.shipping_address {
        Some(address) => AfterPaid::Ship(CreateShipment {
            shipment_id,
            order_id: order.id,
            address: address.clone(),
            weight_grams: PARCEL_GRAMS_DEFAULT,
        }),
        None => AfterPaid::Fulfil(
            OrderFulfilled {
                order_id: order.id,
                shipment_id: None,
                fulfilled_at: now,
            }
            .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusion_contracts::Currency;
    use fusion_contracts::commands::OrderLine;

    const NOW: Timestamp = Timestamp::from_unix_ms(5);

    fn line(sku: &str, quantity: u64, cents: i64) -> OrderLine {
        OrderLine {
            sku: Sku::new(sku).unwrap(),
            quantity,
            price: Some(Money {
                minor: cents,
                currency: Currency::USD,
            }),
            category: None,
            override_reason: None,
            discount: None,
        }
    }

    /// An order whose every price a manager approved (the tests of stock and totals).
    fn cmd(lines: Vec<OrderLine>) -> PlaceOrder {
        PlaceOrder {
            order_id: OrderId::from_u128(1),
            customer_id: CustomerId::new("c").unwrap(),
            currency: Currency::USD,
            shipping_address: None,
            lines,
            price_approver: Some("token:manager".into()),
            discount: None,
            staff: None,
        }
    }

    /// No catalog: every line sells at the price it names.
    fn no_list(_: &Sku) -> Option<Money> {
        None
    }

    fn usd(minor: i64) -> Money {
        Money {
            minor,
            currency: Currency::USD,
        }
    }

    /// (name, price asked, catalog price, approved, expected: Ok((price, list, overridden)) or
    /// the refusal's name)
    #[test]
    fn price_table() {
        type Expected = Result<(i64, Option<i64>, bool), &'static str>;
        type Case = (&'static str, Option<Money>, Option<Money>, bool, Expected);
        let eur = Money {
            minor: 4999,
            currency: Currency::parse("EUR").unwrap(),
        };
        let cases: Vec<Case> = vec![
            (
                "no price: the catalog's",
                None,
                Some(usd(4999)),
                false,
                Ok((4999, Some(4999), false)),
            ),
            (
                "the catalog's price named",
                Some(usd(4999)),
                Some(usd(4999)),
                false,
                Ok((4999, Some(4999), false)),
            ),
            (
                "0.01 for 49.99 by a cashier",
                Some(usd(1)),
                Some(usd(4999)),
                false,
                Err("override"),
            ),
            (
                "0.01 for 49.99 approved",
                Some(usd(1)),
                Some(usd(4999)),
                true,
                Ok((1, Some(4999), true)),
            ),
            (
                "above the catalog is an override too",
                Some(usd(5000)),
                Some(usd(4999)),
                false,
                Err("override"),
            ),
            (
                "free, approved",
                Some(usd(0)),
                Some(usd(4999)),
                true,
                Ok((0, Some(4999), true)),
            ),
            (
                "no price, no catalog",
                None,
                None,
                true,
                Err("no list price"),
            ),
            (
                "a price, no catalog, a cashier",
                Some(usd(500)),
                None,
                false,
                Err("override"),
            ),
            (
                "a price, no catalog, approved",
                Some(usd(500)),
                None,
                true,
                Ok((500, None, true)),
            ),
            (
                "catalog in another currency",
                None,
                Some(eur),
                true,
                Err("no list price"),
            ),
            (
                "named, catalog in another currency",
                Some(usd(4999)),
                Some(eur),
                false,
                Err("override"),
            ),
        ];
        for (name, asked, list, approved, expected) in cases {
            let mut order = cmd(vec![OrderLine {
                price: asked,
                override_reason: Some("damaged box".into()),
                ..line("GRN", 1, 0)
            }]);
            order.price_approver = approved.then(|| "token:m".to_string());
            let got = price_lines(&order, |_| list).map(|sold| sold.into_iter().next().unwrap());
            match (got, expected) {
                (Ok((item, price)), Ok((minor, listed, overridden))) => {
                    assert_eq!(price, usd(minor), "{name}");
                    assert_eq!(item.price, usd(minor).to_decimal(), "{name}");
                    assert_eq!(
                        item.list_price,
                        listed.map(|m| usd(m).to_decimal()),
                        "{name}"
                    );
                    let expected_override = overridden.then(|| PriceOverride {
                        approved_by: "token:m".into(),
                        reason: Some("damaged box".into()),
                    });
                    assert_eq!(item.price_override, expected_override, "{name}");
                }
                (Err(OrderRejected::OverrideNeedsApproval { line, .. }), Err("override")) => {
                    assert_eq!(line, 0, "{name}")
                }
                (Err(OrderRejected::NoListPrice { line, .. }), Err("no list price")) => {
                    assert_eq!(line, 0, "{name}")
                }
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
        // The refusal names the first line that needs approval.
        let mut order = cmd(vec![
            OrderLine {
                price: None,
                ..line("A", 1, 0)
            },
            line("B", 1, 1),
        ]);
        order.price_approver = None;
        let refused = price_lines(&order, |_| Some(usd(100))).unwrap_err();
        assert!(
            matches!(
                refused,
                OrderRejected::OverrideNeedsApproval { line: 1, .. }
            ),
            "{refused:?}"
        );
    }

    fn stock(sku: &Sku) -> u64 {
        match sku.as_str() {
            "A" => 5,
            "B" => 1,
            _ => 0,
        }
    }

    #[test]
    fn place_table() {
        type Expected = Result<&'static str, (&'static str, u64, u64, usize)>;
        let cases: Vec<(&str, Vec<OrderLine>, Expected)> = vec![
            ("one line", vec![line("A", 2, 10)], Ok("0.20")),
            (
                "tenths sum exactly",
                vec![line("A", 1, 10), line("B", 1, 20)],
                Ok("0.30"),
            ),
            ("exactly all stock", vec![line("A", 5, 199)], Ok("9.95")),
            (
                "short on second sku",
                vec![line("A", 1, 10), line("B", 2, 10)],
                Err(("B", 2, 1, 1)),
            ),
            (
                "same sku on two lines sums",
                vec![line("A", 3, 10), line("B", 1, 1), line("A", 3, 10)],
                Err(("A", 6, 5, 0)),
            ),
            (
                "unknown sku has no stock",
                vec![line("Z", 1, 10)],
                Err(("Z", 1, 0, 0)),
            ),
        ];
        for (name, lines, expected) in cases {
            let got = place(&cmd(lines), no_list, stock, NOW, None);
            match (got, expected) {
                (Ok(events), Ok(total)) => {
                    let Event::OrderCreated(created) = &events[0] else {
                        panic!("{name}")
                    };
                    assert_eq!(created.total.to_string(), total, "{name}");
                    assert_eq!(events[1].topic(), "inventory.reserved", "{name}");
                }
                (
                    Err(OrderRejected::InsufficientStock {
                        sku,
                        requested,
                        available,
                        line,
                    }),
                    Err(e),
                ) => {
                    assert_eq!((sku.as_str(), requested, available, line), e, "{name}");
                }
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn reservation_merges_lines_of_one_sku() {
        let events = place(
            &cmd(vec![line("A", 1, 10), line("A", 2, 10)]),
            no_list,
            stock,
            NOW,
            None,
        )
        .unwrap();
        let Event::InventoryReserved(r) = &events[1] else {
            panic!()
        };
        assert_eq!(
            r.items,
            vec![StockLine {
                sku: Sku::new("A").unwrap(),
                quantity: 3
            }]
        );
    }

    #[test]
    fn overflow_is_refused() {
        let err = place(
            &cmd(vec![line("A", 2, i64::MAX)]),
            no_list,
            stock,
            NOW,
            None,
        )
        .unwrap_err();
        assert_eq!(err, OrderRejected::TotalOverflow);
    }

    #[test]
    fn cancel_releases_and_only_once() {
        let mut order = None;
        for e in place(&cmd(vec![line("A", 2, 10)]), no_list, stock, NOW, None).unwrap() {
            apply(&mut order, &e).unwrap();
        }
        let held = vec![StockLine {
            sku: Sku::new("A").unwrap(),
            quantity: 2,
        }];
        let cancel_cmd = CancelOrder {
            order_id: OrderId::from_u128(1),
            reason: None,
        };
        let events = cancel(order.as_ref(), held.clone(), false, &cancel_cmd, NOW).unwrap();
        assert_eq!(
            events.iter().map(Event::topic).collect::<Vec<_>>(),
            ["order.cancelled", "inventory.released"]
        );
        for e in &events {
            apply(&mut order, e).unwrap();
        }
        let again = cancel(order.as_ref(), held, false, &cancel_cmd, NOW).unwrap_err();
        assert!(matches!(
            again,
            OrderRejected::NotCancellable {
                status: OrderStatus::Cancelled,
                ..
            }
        ));
        assert!(matches!(
            cancel(None, vec![], false, &cancel_cmd, NOW),
            Err(OrderRejected::NotFound(_))
        ));
    }

    #[test]
    fn an_unpaid_order_is_cancelled_when_its_hold_ends_and_a_paid_one_is_not() {
        let mut order = None;
        for e in place(
            &cmd(vec![line("A", 2, 10)]),
            no_list,
            stock,
            NOW,
            Some(1_000),
        )
        .unwrap()
        {
            apply(&mut order, &e).unwrap();
        }
        let order = order.unwrap();
        assert_eq!(order.hold_until, Some(NOW.plus_ms(1_000)));
        let held = vec![StockLine {
            sku: Sku::new("A").unwrap(),
            quantity: 2,
        }];
        let expire = ExpireHold { order_id: order.id };
        assert_eq!(
            expire_hold(Some(&order), held.clone(), &expire, NOW.plus_ms(999)).unwrap(),
            vec![],
            "not yet"
        );
        let events = expire_hold(Some(&order), held.clone(), &expire, NOW.plus_ms(1_000)).unwrap();
        assert_eq!(
            events.iter().map(Event::topic).collect::<Vec<_>>(),
            ["order.cancelled", "inventory.released"]
        );
        let paid = Order {
            status: OrderStatus::Paid,
            ..order
        };
        assert_eq!(
            expire_hold(Some(&paid), held, &expire, NOW.plus_ms(5_000)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn backorders_fill_oldest_first_and_never_past_what_is_available() {
        let (tea, mug) = (Sku::new("TEA").unwrap(), Sku::new("MUG").unwrap());
        let owed = |seq, order, sku: &Sku, quantity| Owed {
            seq,
            order_id: OrderId::from_u128(order),
            sku: sku.clone(),
            quantity,
        };
        let line = |order, sku: &Sku, quantity| {
            (
                OrderId::from_u128(order),
                StockLine {
                    sku: sku.clone(),
                    quantity,
                },
            )
        };
        // (name, owed, available tea, available mug, reserved now)
        let cases = vec![
            ("nothing available", vec![owed(1, 1, &tea, 3)], 0, 0, vec![]),
            (
                "the oldest first, the next gets what is left",
                vec![owed(5, 2, &tea, 2), owed(3, 1, &tea, 2)],
                3,
                0,
                vec![line(1, &tea, 2), line(2, &tea, 1)],
            ),
            (
                "skus are independent",
                vec![owed(1, 1, &tea, 1), owed(2, 1, &mug, 4)],
                1,
                2,
                vec![line(1, &tea, 1), line(1, &mug, 2)],
            ),
        ];
        for (name, owed, tea_left, mug_left, expected) in cases {
            let available = |sku: &Sku| if *sku == tea { tea_left } else { mug_left };
            assert_eq!(fill_backorders(owed, available), expected, "{name}");
        }
        assert_eq!(owed_after(3, 1), Some(2));
        assert_eq!(owed_after(3, 3), None);
        assert_eq!(owed_after(3, 5), None);
    }
}
