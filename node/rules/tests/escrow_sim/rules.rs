//! The production rules, asked as a till or the hub asks them: each movement the simulation
//! wants to write becomes the command the node would run, decided by the rulebook function the
//! node and the hub call, on the author's own view (its ledger), and the event it produces
//! becomes the movement written.

use fusion_contracts::commands::{
    AdjustStock, OrderLine, PlaceOrder, ReceiveStock, TransferSeats, TransferStock,
};
use fusion_contracts::events::campaigns::CampaignStatus;
use fusion_contracts::{
    CampaignId, Currency, CustomerId, Event, Money, NodeId, OrderId, ProductId, Sku, Timestamp,
};
use fusion_rules::campaigns::{self, Campaign, Seats};
use fusion_rules::escrow::{Ledger, Movement, Resource};
use fusion_rules::{inventory, orders, payments};

/// What the rules say of a movement.
pub enum Decided {
    /// Allowed: the movement the rule's event amounts to.
    Allowed(Movement),
    /// Refused, and why.
    Refused(String),
    /// No production rule decides this kind of movement: the model does.
    NoRule,
}

/// Within every campaign's window: the simulation has no clock of its own.
const NOW: Timestamp = Timestamp::from_unix_ms(1_000_000);

/// Decides `movement` of `me` on `resource`, from what `ledger` (`me`'s view) shows.
pub fn decide(ledger: &Ledger, me: &NodeId, resource: &Resource, movement: &Movement) -> Decided {
    match movement {
        // A till does not know yet that the hub reclaimed another till (revocations do not
        // reach tills: issue 16); the model refuses rights given to a reclaimed holder.
        Movement::Transfer { to, .. } if ledger.is_reclaimed(to) => return Decided::NoRule,
        // A count that changes nothing is a fact to the node; the model has no movement for it.
        Movement::Create { amount: 0 } | Movement::Retire { amount: 0 } => return Decided::NoRule,
        _ => {}
    }
    let rights = ledger.rights(resource, me);
    let used = ledger
        .resource(resource)
        .and_then(|s| s.accounts.get(me))
        .map_or(0, |a| a.used());
    match resource {
        Resource::Stock { sku, .. } => stock(ledger, me, sku, rights, movement, resource),
        Resource::Seats { campaign } => seats(*campaign, me, rights, movement),
        Resource::CardBudget { currency, .. } => budget(*currency, me, rights, used, movement),
    }
}

/// The commands' transfer id: the model names transfers by (author, seq) itself, so any id
/// does here.
const TRANSFER_ID: uuid::Uuid = uuid::Uuid::from_u128(1);

fn stock(
    ledger: &Ledger,
    me: &NodeId,
    sku: &Sku,
    rights: u64,
    movement: &Movement,
    resource: &Resource,
) -> Decided {
    let level = inventory::StockLevel {
        available: rights,
        reserved: 0,
        updated_at: NOW,
    };
    match movement {
        // A sale: the order is placed only if this till holds the units.
        Movement::Consume { amount } => {
            let currency = Currency::parse("USD").unwrap();
            let cmd = PlaceOrder {
                order_id: OrderId::from_u128(1),
                customer_id: CustomerId::new("sim").unwrap(),
                currency,
                // At the catalog price.
                lines: vec![OrderLine {
                    sku: sku.clone(),
                    quantity: *amount,
                    price: None,
                    category: None,
                    override_reason: None,
                    discount: None,
                }],
                shipping_address: None,
                price_approver: None,
                discount: None,
                staff: None,
            };
            let list = |_: &Sku| {
                Some(Money {
                    minor: 100,
                    currency,
                })
            };
            let available = |s: &Sku| if s == sku { rights } else { 0 };
            match orders::place(&cmd, list, available, NOW, None) {
                Ok(events) => match events.iter().find_map(|e| match e {
                    Event::InventoryReserved(r) => Some(r.items.iter().map(|l| l.quantity).sum()),
                    _ => None,
                }) {
                    Some(amount) => Decided::Allowed(Movement::Consume { amount }),
                    None => Decided::Refused("the order reserved nothing".into()),
                },
                Err(rejected) => Decided::Refused(rejected.to_string()),
            }
        }
        Movement::Transfer { to, amount } => {
            let cmd = TransferStock {
                transfer_id: TRANSFER_ID,
                sku: sku.clone(),
                quantity: *amount,
                to: to.clone(),
            };
            match inventory::transfer(&cmd, &level, me) {
                Ok(events) => match &events[..] {
                    [Event::StockTransferred(t)] => Decided::Allowed(Movement::Transfer {
                        to: t.to.clone(),
                        amount: t.quantity,
                    }),
                    other => Decided::Refused(format!("unexpected events {other:?}")),
                },
                Err(rejected) => Decided::Refused(rejected.to_string()),
            }
        }
        Movement::Receive { transfer } => {
            let Some(quantity) = ledger
                .incoming(resource, me)
                .into_iter()
                .find(|(id, _)| id == transfer)
                .map(|(_, amount)| amount)
            else {
                return Decided::Refused("no such transfer in transit to this holder".into());
            };
            let cmd = ReceiveStock {
                transfer_id: TRANSFER_ID,
                sku: sku.clone(),
                quantity,
                from: transfer.author.clone(),
            };
            match inventory::receive(&cmd, &level) {
                Ok(_) => Decided::Allowed(movement.clone()),
                Err(rejected) => Decided::Refused(rejected.to_string()),
            }
        }
        // A restock, or a count that finds shrinkage.
        Movement::Create { amount } | Movement::Retire { amount } => {
            let delta = i64::try_from(*amount).unwrap();
            let delta = if matches!(movement, Movement::Create { .. }) {
                delta
            } else {
                -delta
            };
            let cmd = AdjustStock {
                sku: sku.clone(),
                delta,
                reason: "count".into(),
            };
            match inventory::adjust(&cmd, &level) {
                Ok(events) => match (&events[..], movement) {
                    ([Event::StockAdjusted(a)], Movement::Create { .. }) if a.delta >= 0 => {
                        Decided::Allowed(Movement::Create {
                            amount: a.delta.unsigned_abs(),
                        })
                    }
                    ([Event::StockAdjusted(a)], Movement::Retire { .. }) if a.delta <= 0 => {
                        Decided::Allowed(Movement::Retire {
                            amount: a.delta.unsigned_abs(),
                        })
                    }
                    (other, _) => Decided::Refused(format!("unexpected events {other:?}")),
                },
                Err(rejected) => Decided::Refused(rejected.to_string()),
            }
        }
        // The hub's reclaim of a lost till: what it held plus what was in transit to it.
        Movement::Reclaim { from, .. } => {
            let lost = inventory::LostHolding {
                held: ledger.rights(resource, from),
                transfers: Vec::new(),
                in_transit: ledger
                    .incoming(resource, from)
                    .iter()
                    .map(|(_, amount)| amount)
                    .sum(),
            };
            let upto = ledger.last_seq(from).unwrap_or(0);
            match inventory::reclaim(from, upto, sku, &lost, &level) {
                Some(Event::StockReclaimed(r)) => Decided::Allowed(Movement::Reclaim {
                    from: r.from,
                    upto: r.upto,
                    amount: r.quantity,
                }),
                Some(other) => Decided::Refused(format!("unexpected event {other:?}")),
                // Nothing to take over: the hub records no event; the model records the cut.
                None => Decided::NoRule,
            }
        }
        // A cancelled order's units come back through `orders::cancel` of that order, which the
        // simulation does not keep: the model decides.
        Movement::Restore { .. } => Decided::NoRule,
    }
}

/// A campaign open at [`NOW`] whose seats are shared.
fn campaign(id: CampaignId) -> Campaign {
    let currency = Currency::parse("USD").unwrap();
    Campaign {
        id,
        product_id: ProductId::from_u128(1),
        sku: Sku::new("TEA").unwrap(),
        min_participants: 1,
        max_participants: 1000,
        price: Money {
            minor: 100,
            currency,
        },
        original_price: Money {
            minor: 200,
            currency,
        },
        start_at: Timestamp::from_unix_ms(0),
        end_at: Timestamp::from_unix_ms(i64::MAX),
        participants: 0,
        status: CampaignStatus::Active,
        created_at: Timestamp::from_unix_ms(0),
        updated_at: Timestamp::from_unix_ms(0),
    }
}

fn seats(id: CampaignId, me: &NodeId, rights: u64, movement: &Movement) -> Decided {
    let Movement::Transfer { to, amount } = movement else {
        // Joins and leaves go through `campaigns::join`/`leave` with the campaign's
        // participants, which the simulation does not keep; set-up is the hub's.
        return Decided::NoRule;
    };
    let seats = Seats {
        free: u32::try_from(rights).unwrap(),
        shared: true,
        ended: false,
    };
    let cmd = TransferSeats {
        campaign_id: id,
        transfer_id: TRANSFER_ID,
        seats: u32::try_from(*amount).unwrap(),
        to: to.clone(),
    };
    match campaigns::transfer_seats(Some(&campaign(id)), Some(seats), &cmd, me, NOW) {
        Ok(events) => match &events[..] {
            [Event::SeatsTransferred(t)] => Decided::Allowed(Movement::Transfer {
                to: t.to.clone(),
                amount: u64::from(t.seats),
            }),
            other => Decided::Refused(format!("unexpected events {other:?}")),
        },
        Err(rejected) => Decided::Refused(rejected.to_string()),
    }
}

fn budget(currency: Currency, me: &NodeId, rights: u64, used: u64, movement: &Movement) -> Decided {
    let Movement::Transfer { to, amount } = movement else {
        // Offline approvals go through `payments::approve_offline` with a payment and its
        // order, which the simulation does not keep; set-up is the hub's.
        return Decided::NoRule;
    };
    // A till holds its share less what it gave; what is free is that less its exposure.
    let budget = payments::Budget {
        configured: 0,
        held: i64::try_from(rights + used).unwrap(),
    };
    let exposure = i64::try_from(used).unwrap();
    let amount = Money {
        minor: i64::try_from(*amount).unwrap(),
        currency,
    };
    match payments::transfer_budget(budget, exposure, TRANSFER_ID, me, to, amount) {
        Ok(events) => match &events[..] {
            [Event::OfflineBudgetTransferred(t)] => {
                let minor = Money::from_decimal(t.amount, t.currency).unwrap().minor;
                Decided::Allowed(Movement::Transfer {
                    to: t.to.clone(),
                    amount: u64::try_from(minor).unwrap(),
                })
            }
            other => Decided::Refused(format!("unexpected events {other:?}")),
        },
        Err(rejected) => Decided::Refused(rejected.to_string()),
    }
}
