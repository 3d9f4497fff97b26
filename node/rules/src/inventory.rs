//! Inventory: stock levels per sku and the reservations orders hold. Pure decide / apply.
//!
//! `available` is what can still be sold (FusionCommerce's `quantity`); `reserved` is held by
//! open orders. Neither ever goes below zero: every decision checks before it records.

use fusion_contracts::commands::{
    AdjustStock, QUANTITY_MAX, ReceiveStock, SetStock, TransferStock,
};
use fusion_contracts::events::{
    StockAdjusted, StockLine, StockReceived, StockReclaimed, StockTransferred,
};
use fusion_contracts::{Event, NodeId, OrderId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Refused, StockRefusal};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub available: u64,
    pub reserved: u64,
    pub updated_at: Timestamp,
}

/// Stock one order holds of one sku.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub order_id: OrderId,
    pub sku: Sku,
    pub quantity: u64,
    pub state: ReservationState,
    pub created_at: Timestamp,
    pub released_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationState {
    Active,
    Released,
}

/// Most units of one sku a node holds: 1000 × the largest single change, far beyond any store,
/// and small enough that every quantity and delta fits an i64.
pub const STOCK_QUANTITY_MAX: u64 = 1000 * QUANTITY_MAX;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum InventoryRejected {
    #[error("stock of {sku} cannot go below zero: available {available}, delta {delta}")]
    WouldGoNegative {
        sku: Sku,
        available: u64,
        delta: i64,
    },
    #[error(
        "stock of {sku} cannot exceed {STOCK_QUANTITY_MAX}: available {available}, delta {delta}"
    )]
    WouldExceedMaximum {
        sku: Sku,
        available: u64,
        delta: i64,
    },
}

/// Why a transfer of stock rights is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TransferRejected {
    /// More than this till holds: `available` is the local headroom.
    #[error("cannot transfer {requested} of {sku}: {available} available here")]
    Insufficient {
        sku: Sku,
        requested: u64,
        available: u64,
    },
    #[error("a till cannot transfer stock to itself")]
    ToSelf,
    #[error("stock of {sku} cannot exceed {STOCK_QUANTITY_MAX}")]
    WouldExceedMaximum { sku: Sku },
}

/// Gives `cmd.quantity` of this node's available stock to `cmd.to`: only what is available
/// here (never reserved units, never units another holder has).
pub fn transfer(
    cmd: &TransferStock,
    level: &StockLevel,
    own: &NodeId,
) -> Result<Vec<Event>, TransferRejected> {
    if cmd.to == *own {
        return Err(TransferRejected::ToSelf);
    }
    let Some(available) = level.available.checked_sub(cmd.quantity) else {
        return Err(TransferRejected::Insufficient {
            sku: cmd.sku.clone(),
            requested: cmd.quantity,
            available: level.available,
        });
    };
    Ok(vec![
        StockTransferred {
            transfer_id: cmd.transfer_id,
            sku: cmd.sku.clone(),
            quantity: cmd.quantity,
            to: cmd.to.clone(),
            previous_quantity: level.available,
            available,
        }
        .into(),
    ])
}

/// Takes in a transfer addressed to this node.
pub fn receive(cmd: &ReceiveStock, level: &StockLevel) -> Result<Vec<Event>, TransferRejected> {
    let available = level
        .available
        .checked_add(cmd.quantity)
        .filter(|q| *q <= STOCK_QUANTITY_MAX)
        .ok_or_else(|| TransferRejected::WouldExceedMaximum {
            sku: cmd.sku.clone(),
        })?;
    Ok(vec![
        StockReceived {
            transfer_id: cmd.transfer_id,
            sku: cmd.sku.clone(),
            quantity: cmd.quantity,
            from: cmd.from.clone(),
            previous_quantity: level.available,
            available,
        }
        .into(),
    ])
}

/// An absolute count. Recorded even when the number does not change: a count is a fact.
pub fn set(cmd: &SetStock, level: &StockLevel) -> Vec<Event> {
    vec![adjusted(&cmd.sku, level.available, cmd.quantity, "set")]
}

pub fn adjust(cmd: &AdjustStock, level: &StockLevel) -> Result<Vec<Event>, InventoryRejected> {
    let (sku, available, delta) = (cmd.sku.clone(), level.available, cmd.delta);
    let quantity = match level.available.checked_add_signed(cmd.delta) {
        None => {
            return Err(InventoryRejected::WouldGoNegative {
                sku,
                available,
                delta,
            });
        }
        Some(q) if q > STOCK_QUANTITY_MAX => {
            return Err(InventoryRejected::WouldExceedMaximum {
                sku,
                available,
                delta,
            });
        }
        Some(q) => q,
    };
    Ok(vec![adjusted(
        &cmd.sku,
        level.available,
        quantity,
        &cmd.reason,
    )])
}

/// The stock a new product brings with it.
pub fn seed(sku: &Sku, level: &StockLevel, quantity: u64) -> Event {
    adjusted(sku, level.available, quantity, "product.created")
}

fn adjusted(sku: &Sku, previous: u64, quantity: u64, reason: &str) -> Event {
    // Levels stay within STOCK_QUANTITY_MAX (1e12) and counts within QUANTITY_MAX (1e9), so the
    // difference fits an i64.
    let delta = quantity as i64 - previous as i64;
    StockAdjusted {
        sku: sku.clone(),
        previous_quantity: previous,
        quantity,
        delta,
        reason: reason.to_string(),
    }
    .into()
}

/// The skus whose stock an event changes, each once, in the order the event names them.
pub fn skus_of(event: &Event) -> Vec<&Sku> {
    let mut skus: Vec<&Sku> = match event {
        Event::StockAdjusted(e) => vec![&e.sku],
        Event::StockTransferred(e) => vec![&e.sku],
        Event::StockReceived(e) => vec![&e.sku],
        Event::StockReclaimed(e) => vec![&e.sku],
        Event::InventoryReserved(e) => e.items.iter().map(|l| &l.sku).collect(),
        Event::InventoryReleased(e) => e.items.iter().map(|l| &l.sku).collect(),
        _ => Vec::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    skus.retain(|sku| seen.insert(*sku));
    skus
}

/// Folds an event into the level of `sku`; `at` is when the event occurred. All or nothing:
/// a refused event leaves the level as it was. This node's own events are decided against the
/// level, so a refusal of one is a broken invariant; a peer's is an impossible claim, refused.
pub fn apply(
    level: &mut StockLevel,
    sku: &Sku,
    event: &Event,
    at: Timestamp,
) -> Result<(), Refused> {
    let lines_of = |lines: &[StockLine]| {
        lines
            .iter()
            .filter(|l| l.sku == *sku)
            .map(|l| l.quantity)
            .try_fold(0u64, u64::checked_add)
            .filter(|q| *q <= STOCK_QUANTITY_MAX)
    };
    let refused = |kind, held, quantity| Refused::Stock {
        topic: event.topic(),
        sku: sku.clone(),
        kind,
        held,
        quantity,
    };
    let within = |q: u64| (q <= STOCK_QUANTITY_MAX).then_some(q);
    // A movement of rights is taken only from what the holder's own log shows it held: it
    // gives away no more than its level, and states the level the fold holds (a transfer
    // decided elsewhere, or invented, does not count).
    let held = |previous: u64, taken: u64| {
        if taken > level.available {
            Err(refused(
                StockRefusal::AvailableBelowZero,
                level.available,
                taken,
            ))
        } else if previous != level.available {
            Err(refused(StockRefusal::Misstated, level.available, previous))
        } else {
            Ok(())
        }
    };
    let (available, reserved) = match event {
        Event::StockAdjusted(e) if e.sku == *sku => (e.quantity, level.reserved),
        Event::StockTransferred(e) if e.sku == *sku => {
            held(e.previous_quantity, e.quantity)?;
            (e.available, level.reserved)
        }
        Event::StockReceived(e) if e.sku == *sku => {
            held(e.previous_quantity, 0)?;
            (e.available, level.reserved)
        }
        Event::StockReclaimed(e) if e.sku == *sku => {
            held(e.previous_quantity, 0)?;
            (e.available, level.reserved)
        }
        Event::InventoryReserved(e) => {
            let q = lines_of(&e.items).ok_or(refused(StockRefusal::Overflow, 0, u64::MAX))?;
            let available = level.available.checked_sub(q).ok_or(refused(
                StockRefusal::AvailableBelowZero,
                level.available,
                q,
            ))?;
            let reserved = within(level.reserved + q).ok_or(refused(
                StockRefusal::Overflow,
                level.reserved,
                q,
            ))?;
            (available, reserved)
        }
        Event::InventoryReleased(e) => {
            let q = lines_of(&e.items).ok_or(refused(StockRefusal::Overflow, 0, u64::MAX))?;
            let reserved = level.reserved.checked_sub(q).ok_or(refused(
                StockRefusal::ReservedBelowZero,
                level.reserved,
                q,
            ))?;
            let available = within(level.available + q).ok_or(refused(
                StockRefusal::Overflow,
                level.available,
                q,
            ))?;
            (available, reserved)
        }
        _ => return Ok(()),
    };
    if available > STOCK_QUANTITY_MAX {
        return Err(refused(StockRefusal::Overflow, level.available, available));
    }
    level.available = available;
    level.reserved = reserved;
    level.updated_at = at;
    Ok(())
}

/// Folds an event into the levels of every sku it changes ([`skus_of`]), which the caller
/// loaded into `levels` (a missing sku starts at zero). All or nothing: when any sku refuses
/// it, no level changes.
pub fn apply_all(
    levels: &mut std::collections::BTreeMap<Sku, StockLevel>,
    event: &Event,
    at: Timestamp,
) -> Result<(), Refused> {
    let mut after = Vec::new();
    for sku in skus_of(event) {
        let mut level = levels.get(sku).cloned().unwrap_or_default();
        apply(&mut level, sku, event, at)?;
        after.push((sku.clone(), level));
    }
    levels.extend(after);
    Ok(())
}

/// What every replica does to a lost till's level when the hub reclaims its rights
/// (`inventory.reclaimed` from the hub's holder): it holds nothing any more; what it reserved
/// stays sold.
pub fn apply_reclaimed(lost: &mut StockLevel, at: Timestamp) {
    lost.available = 0;
    lost.updated_at = at;
}

/// Folds an event into the reservations one order holds (one per sku).
pub fn apply_reservations(
    held: &mut Vec<Reservation>,
    order_id: OrderId,
    event: &Event,
    at: Timestamp,
) {
    match event {
        Event::InventoryReserved(e) if e.order_id == order_id => {
            held.extend(e.items.iter().map(|line| Reservation {
                order_id,
                sku: line.sku.clone(),
                quantity: line.quantity,
                state: ReservationState::Active,
                created_at: at,
                released_at: None,
            }));
        }
        Event::InventoryReleased(e) if e.order_id == order_id => {
            for r in held.iter_mut() {
                if r.state == ReservationState::Active && e.items.iter().any(|l| l.sku == r.sku) {
                    r.state = ReservationState::Released;
                    r.released_at = Some(at);
                }
            }
        }
        _ => {}
    }
}

/// What a lost till held of one sku as far as the hub has seen: its available rights, and the
/// transfers to it that it never took in (void once reclaimed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostHolding {
    pub held: u64,
    pub transfers: Vec<uuid::Uuid>,
    pub in_transit: u64,
}

/// The hub's holder takes over what the lost till `from` held of `sku` (its rights and what
/// was in transit to it): `inventory.reclaimed`, recording that `from`'s events after `upto`
/// never count. `None` when it held nothing.
pub fn reclaim(
    from: &NodeId,
    upto: u64,
    sku: &Sku,
    lost: &LostHolding,
    holder: &StockLevel,
) -> Option<Event> {
    let quantity = lost.held.saturating_add(lost.in_transit);
    if quantity == 0 {
        return None;
    }
    Some(
        StockReclaimed {
            sku: sku.clone(),
            from: from.clone(),
            upto,
            quantity,
            transfers: lost.transfers.clone(),
            previous_quantity: holder.available,
            available: holder.available.saturating_add(quantity),
        }
        .into(),
    )
}

/// A till's standing for rebalancing: (origin, available, reserved — what it sold and holds
/// for open orders, its demand).
pub type TillLevel = (String, u64, u64);

/// What the hub's holder gives when it rebalances `held` units of a sku: it keeps `keep` (the
/// online channel's reserve) and splits the rest by [`rebalance_shares`].
pub fn rebalance(held: u64, keep: u64, tills: &[TillLevel]) -> Vec<(String, u64)> {
    rebalance_shares(held.saturating_sub(keep), tills)
}

/// How rebalancing splits `pool` units among tills: each till's target is its share of
/// everything sellable (pool + what the tills hold), weighted by reserved + 1 (so a till that
/// sold nothing still gets some) and rounded by largest remainder (so small pools are not lost
/// to rounding); tills below their target get the difference, neediest first, while the pool
/// lasts. Never more than the pool in all.
pub fn rebalance_shares(pool: u64, tills: &[TillLevel]) -> Vec<(String, u64)> {
    let total = u128::from(pool) + tills.iter().map(|t| u128::from(t.1)).sum::<u128>();
    let weight = |t: &TillLevel| u128::from(t.2) + 1;
    let weights: u128 = tills.iter().map(weight).sum();
    if weights == 0 {
        return Vec::new();
    }
    let mut targets: Vec<u128> = tills.iter().map(|t| total * weight(t) / weights).collect();
    let mut by_remainder: Vec<usize> = (0..tills.len()).collect();
    by_remainder.sort_by(|&a, &b| {
        let rem = |i: usize| total * weight(&tills[i]) % weights;
        rem(b)
            .cmp(&rem(a))
            .then_with(|| weight(&tills[b]).cmp(&weight(&tills[a])))
            .then_with(|| tills[a].0.cmp(&tills[b].0))
    });
    let leftover = total - targets.iter().sum::<u128>();
    for &i in by_remainder
        .iter()
        .take(usize::try_from(leftover).unwrap_or(usize::MAX))
    {
        targets[i] += 1;
    }
    let mut needs: Vec<(String, u64)> = tills
        .iter()
        .zip(targets)
        .map(|((origin, available, _), target)| {
            let need = u64::try_from(target)
                .unwrap_or(u64::MAX)
                .saturating_sub(*available);
            (origin.clone(), need)
        })
        .filter(|(_, need)| *need > 0)
        .collect();
    needs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut left = pool;
    let mut out = Vec::new();
    for (origin, need) in needs {
        let quantity = need.min(left);
        if quantity == 0 {
            break;
        }
        left -= quantity;
        out.push((origin, quantity));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku() -> Sku {
        Sku::new("TEA").unwrap()
    }

    fn level(available: u64) -> StockLevel {
        StockLevel {
            available,
            reserved: 0,
            updated_at: Timestamp::from_unix_ms(0),
        }
    }

    #[test]
    fn a_transfer_gives_only_what_is_held_here_and_the_receipt_adds_it() {
        let (me, other) = (NodeId::new("a").unwrap(), NodeId::new("b").unwrap());
        let cmd = |quantity, to: &NodeId| TransferStock {
            transfer_id: uuid::Uuid::from_u128(1),
            sku: sku(),
            quantity,
            to: to.clone(),
        };
        assert_eq!(
            transfer(&cmd(6, &other), &level(5), &me),
            Err(TransferRejected::Insufficient {
                sku: sku(),
                requested: 6,
                available: 5
            })
        );
        assert_eq!(
            transfer(&cmd(1, &me), &level(5), &me),
            Err(TransferRejected::ToSelf)
        );
        let mut giver = level(5);
        for e in transfer(&cmd(5, &other), &giver, &me).unwrap() {
            e.validate().unwrap();
            apply(&mut giver, &sku(), &e, Timestamp::from_unix_ms(1)).unwrap();
        }
        assert_eq!(giver.available, 0);
        let mut taker = level(2);
        let receipt = ReceiveStock {
            transfer_id: uuid::Uuid::from_u128(1),
            sku: sku(),
            quantity: 5,
            from: me.clone(),
        };
        for e in receive(&receipt, &taker).unwrap() {
            e.validate().unwrap();
            apply(&mut taker, &sku(), &e, Timestamp::from_unix_ms(2)).unwrap();
        }
        assert_eq!(taker.available, 7);
    }

    #[test]
    fn adjust_table() {
        let top = STOCK_QUANTITY_MAX;
        let cases = [
            (top - 1, 1, Ok(top)),
            (top, 1, Err(())),
            (5, 3, Ok(8)),
            (5, -5, Ok(0)),
            (5, -6, Err(())),
            (0, -1, Err(())),
        ];
        for (available, delta, expected) in cases {
            let cmd = AdjustStock {
                sku: sku(),
                delta,
                reason: "count".into(),
            };
            let got = adjust(&cmd, &level(available)).map_err(drop).map(|events| {
                let mut l = level(available);
                for e in &events {
                    apply(&mut l, &sku(), e, Timestamp::from_unix_ms(1)).unwrap();
                }
                l.available
            });
            assert_eq!(got, expected, "available {available} delta {delta}");
        }
    }

    /// A holder's transfer, as a peer folds it: (level held, stated previous, quantity) →
    /// the level after, or the rule that refuses it.
    #[test]
    fn a_transfer_is_taken_only_from_rights_the_holders_log_shows() {
        let cases = [
            (10, 10, 4, Ok(6)),
            (10, 10, 10, Ok(0)),
            (2, 1_002, 1_000, Err("stock_underflow")),
            (10, 12, 4, Err("stock_misstated")),
            (10, 8, 4, Err("stock_misstated")),
        ];
        for (held, previous, quantity, expected) in cases {
            let event: Event = StockTransferred {
                transfer_id: uuid::Uuid::from_u128(1),
                sku: sku(),
                quantity,
                to: NodeId::new("other").unwrap(),
                previous_quantity: previous,
                available: previous - quantity,
            }
            .into();
            let mut l = level(held);
            let got = apply(&mut l, &sku(), &event, Timestamp::from_unix_ms(1))
                .map(|()| l.available)
                .map_err(|r| r.rule());
            assert_eq!(
                got, expected,
                "held {held}, states {previous}, gives {quantity}"
            );
            if expected.is_err() {
                assert_eq!(
                    l.available, held,
                    "a refused event leaves the level as it was"
                );
            }
        }
    }

    #[test]
    fn set_is_absolute_and_records_the_previous_value() {
        let events = set(
            &SetStock {
                sku: sku(),
                quantity: 2,
            },
            &level(9),
        );
        let Event::StockAdjusted(e) = &events[0] else {
            panic!()
        };
        assert_eq!((e.previous_quantity, e.quantity, e.delta), (9, 2, -7));
    }

    /// name, pool, tills, expected transfers.
    type Case = (&'static str, u64, Vec<TillLevel>, Vec<(&'static str, u64)>);

    fn till(origin: &str, available: u64, sold: u64) -> TillLevel {
        (origin.to_string(), available, sold)
    }

    #[test]
    fn rebalancing_gives_toward_demand_and_never_more_than_the_pool() {
        let cases: Vec<Case> = vec![
            ("nothing to give", 0, vec![till("a", 0, 5)], vec![]),
            ("no tills", 5, vec![], vec![]),
            (
                "the seller gets it; a till above its share gets nothing",
                3,
                vec![till("a", 4, 0), till("b", 0, 2)],
                vec![("b", 3)],
            ),
            (
                "equal demand, equal shares",
                6,
                vec![till("a", 0, 0), till("b", 0, 0), till("c", 0, 0)],
                vec![("a", 2), ("b", 2), ("c", 2)],
            ),
            (
                "a small pool still moves, by largest remainder",
                2,
                vec![till("a", 0, 4), till("b", 0, 3), till("c", 0, 3)],
                vec![("a", 1), ("b", 1)],
            ),
            (
                "proportional to sold + 1",
                10,
                vec![till("a", 0, 0), till("b", 0, 3)],
                vec![("b", 8), ("a", 2)],
            ),
        ];
        for (name, pool, tills, expected) in cases {
            let got = rebalance_shares(pool, &tills);
            let expected: Vec<(String, u64)> = expected
                .into_iter()
                .map(|(o, q)| (o.to_string(), q))
                .collect();
            assert_eq!(got, expected, "{name}");
            assert!(got.iter().map(|g| g.1).sum::<u64>() <= pool, "{name}");
        }
    }

    /// The one stock fold refuses what no level can take, and changes nothing then.
    #[test]
    fn the_fold_refuses_impossible_events_whole() {
        let tea = sku();
        let mug = Sku::new("MUG").unwrap();
        let line = |sku: &Sku, quantity| StockLine {
            sku: sku.clone(),
            quantity,
        };
        let reserved = |items| -> Event {
            fusion_contracts::events::InventoryReserved {
                order_id: OrderId::from_u128(1),
                status: fusion_contracts::events::ReservationStatus::Reserved,
                items,
            }
            .into()
        };
        let released = |items| -> Event {
            fusion_contracts::events::InventoryReleased {
                order_id: OrderId::from_u128(1),
                status: fusion_contracts::events::ReservationStatus::Released,
                items,
                reason: "order.cancelled".into(),
            }
            .into()
        };
        let at = Timestamp::from_unix_ms(9);
        // (name, tea (available, reserved), mug available, event, outcome: tea and mug after, or
        // the rule that refused)
        type Case = (
            &'static str,
            (u64, u64),
            u64,
            Event,
            Result<((u64, u64), u64), &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "a reservation within",
                (5, 0),
                1,
                reserved(vec![line(&tea, 3)]),
                Ok(((2, 3), 1)),
            ),
            (
                "the same sku twice in one event counts twice",
                (5, 0),
                0,
                reserved(vec![line(&tea, 2), line(&tea, 2)]),
                Ok(((1, 4), 0)),
            ),
            (
                "more than available",
                (2, 0),
                1,
                reserved(vec![line(&tea, 3)]),
                Err("stock_underflow"),
            ),
            (
                "one line short refuses every line",
                (5, 0),
                0,
                reserved(vec![line(&tea, 1), line(&mug, 1)]),
                Err("stock_underflow"),
            ),
            (
                "a release of what is reserved",
                (0, 3),
                0,
                released(vec![line(&tea, 3)]),
                Ok(((3, 0), 0)),
            ),
            (
                "a release of more than reserved",
                (0, 1),
                0,
                released(vec![line(&tea, 2)]),
                Err("stock_underflow"),
            ),
            (
                "past the maximum",
                (STOCK_QUANTITY_MAX, 1),
                0,
                released(vec![line(&tea, 1)]),
                Err("stock_overflow"),
            ),
        ];
        for (name, (available, reserved), mug_available, event, expected) in cases {
            let mut levels = std::collections::BTreeMap::from([
                (
                    tea.clone(),
                    StockLevel {
                        available,
                        reserved,
                        updated_at: Timestamp::default(),
                    },
                ),
                (mug.clone(), level(mug_available)),
            ]);
            let before = levels.clone();
            let got = apply_all(&mut levels, &event, at).map(|()| {
                (
                    (levels[&tea].available, levels[&tea].reserved),
                    levels[&mug].available,
                )
            });
            match expected {
                Ok(after) => assert_eq!(got, Ok(after), "{name}"),
                Err(rule) => {
                    assert_eq!(got.map_err(|r| r.rule()), Err(rule), "{name}");
                    assert_eq!(levels, before, "{name}: a refused event changes nothing");
                }
            }
        }
    }
}
