//! Inventory: stock levels per sku and the reservations orders hold. Pure decide / apply.
//!
//! `available` is what can still be sold (FusionCommerce's `quantity`); `reserved` is held by
//! open orders. Neither ever goes below zero: every decision checks before it records.

use fusion_contracts::commands::{
    AdjustStock, QUANTITY_MAX, ReceiveStock, SetStock, TransferStock,
};
use fusion_contracts::events::{StockAdjusted, StockLine, StockReceived, StockTransferred};
use fusion_contracts::{Event, NodeId, OrderId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

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

/// Folds an event into the level of `sku`; `at` is when the event occurred.
pub fn apply(level: &mut StockLevel, sku: &Sku, event: &Event, at: Timestamp) {
    let lines_of = |lines: &[StockLine]| {
        lines
            .iter()
            .filter(|l| l.sku == *sku)
            .map(|l| l.quantity)
            .sum::<u64>()
    };
    match event {
        Event::StockAdjusted(e) if e.sku == *sku => level.available = e.quantity,
        Event::StockTransferred(e) if e.sku == *sku => level.available = e.available,
        Event::StockReceived(e) if e.sku == *sku => level.available = e.available,
        Event::StockReclaimed(e) if e.sku == *sku => level.available = e.available,
        Event::InventoryReserved(e) => {
            let q = lines_of(&e.items);
            level.available = level
                .available
                .checked_sub(q)
                .expect("reservation decided against available stock");
            level.reserved += q;
        }
        Event::InventoryReleased(e) => {
            let q = lines_of(&e.items);
            level.reserved = level
                .reserved
                .checked_sub(q)
                .expect("release of a recorded reservation");
            level.available += q;
        }
        _ => return,
    }
    level.updated_at = at;
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
            apply(&mut giver, &sku(), &e, Timestamp::from_unix_ms(1));
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
            apply(&mut taker, &sku(), &e, Timestamp::from_unix_ms(2));
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
                    apply(&mut l, &sku(), e, Timestamp::from_unix_ms(1));
                }
                l.available
            });
            assert_eq!(got, expected, "available {available} delta {delta}");
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
}
