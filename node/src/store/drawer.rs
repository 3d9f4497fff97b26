//! Cash drawers in the store: the writer's side of `fusion_rules::drawer` — this till's
//! drawer opened, cash moved and closed with its Z report folded from the log in the same
//! transaction, and every till's `session.*` events folded into `drawers` and `sessions`.

use fusion_contracts::events::payments::Tender;
use fusion_contracts::events::{SessionCashMoved, SessionClosed, SessionOpened};
use fusion_contracts::{Currency, Event, NodeId, OrderId, PaymentId};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use super::tables::{self, Tables, decode, encode};
use crate::domain::Refused;
use crate::domain::drawer::{self, Drawer, Facts, SaleFacts, Tally};

/// A session as the store keeps it: how it opened, its cash moves, how it closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub opened: SessionOpened,
    pub moves: Vec<SessionCashMoved>,
    pub closed: Option<SessionClosed>,
}

/// Most cash moves a session keeps in its row (the log keeps every one).
const MOVES_KEPT_MAX: usize = 1000;

/// `till`'s drawer (a fresh one when it never opened).
pub(super) fn get(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    till: &NodeId,
) -> Result<Drawer, StoreError> {
    Ok(table
        .get(till.as_str())?
        .map(|v| decode("drawers", v.value()))
        .transpose()?
        .unwrap_or_default())
}

/// Session `id`, if this store knows it.
pub(super) fn session(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: Uuid,
) -> Result<Option<SessionRow>, StoreError> {
    table
        .get(id.as_u128())?
        .map(|v| decode("sessions", v.value()))
        .transpose()
}

/// What [`folded`] gave: the drawer after the event and the session's row.
pub(super) type Folded = Option<(NodeId, Drawer, SessionRow)>;

/// Folds `origin`'s event at `seq` of its log: a `session.*` event the drawer refuses is
/// refused.
pub(super) fn folded(
    t: &Tables,
    origin: &NodeId,
    seq: u64,
    event: &Event,
) -> Result<Result<Folded, Refused>, StoreError> {
    let id = match event {
        Event::SessionOpened(e) => e.session_id,
        Event::SessionCashMoved(e) => e.session_id,
        Event::SessionClosed(e) => e.session_id,
        _ => return Ok(Ok(None)),
    };
    let mut state = get(&t.drawers, origin)?;
    if let Err(refused) = drawer::apply(&mut state, origin, seq, event) {
        return Ok(Err(refused));
    }
    let row = match (event, session(&t.sessions, id)?) {
        (Event::SessionOpened(e), _) => SessionRow {
            opened: e.clone(),
            moves: Vec::new(),
            closed: None,
        },
        (Event::SessionCashMoved(e), Some(mut row)) => {
            if row.moves.len() < MOVES_KEPT_MAX {
                row.moves.push(e.clone());
            }
            row
        }
        (Event::SessionClosed(e), Some(mut row)) => {
            row.closed = Some(e.clone());
            row
        }
        _ => {
            return Err(StoreError::Invariant(format!(
                "session {id} is open in its drawer but has no row"
            )));
        }
    };
    Ok(Ok(Some((origin.clone(), state, row))))
}

/// Writes what [`folded`] gave.
pub(super) fn write(t: &mut Tables, folded: Folded) -> Result<(), StoreError> {
    if let Some((till, state, row)) = folded {
        t.drawers.insert(till.as_str(), encode(&state).as_slice())?;
        t.sessions
            .insert(row.opened.session_id.as_u128(), encode(&row).as_slice())?;
    }
    Ok(())
}

/// Orders and payments of the store, for a report's events whose order or payment came before
/// its range.
struct StoreFacts<'a, O, P> {
    orders: &'a O,
    payments: &'a P,
}

impl<O, P> Facts for StoreFacts<'_, O, P>
where
    O: ReadableTable<u128, &'static [u8]>,
    P: ReadableTable<u128, &'static [u8]>,
{
    fn order(&self, id: OrderId) -> Option<SaleFacts> {
        // Unreadable: the report counts the sale without its taxes and discounts.
        tables::get_order(self.orders, id)
            .ok()
            .flatten()
            .map(|o| SaleFacts::of_order(&o))
    }

    fn tender(&self, id: PaymentId) -> Option<Tender> {
        tables::get_payment(self.payments, id)
            .ok()
            .flatten()
            .map(|p| p.tender)
    }
}

/// Folds this till's log from `from_seq` to its end into a report's totals; returns the fold
/// and the last seq it read.
pub(super) fn tally(
    events: &impl ReadableTable<u64, &'static [u8]>,
    orders: &impl ReadableTable<u128, &'static [u8]>,
    payments: &impl ReadableTable<u128, &'static [u8]>,
    state: &Drawer,
    currency: Currency,
    from_seq: u64,
) -> Result<(Tally, u64), StoreError> {
    let facts = StoreFacts { orders, payments };
    let mut tally = Tally::new(currency, state);
    let mut last = from_seq.saturating_sub(1);
    for entry in events.range(from_seq..)? {
        let (seq, value) = entry?;
        tally.add(&super::journal::envelope_of(value.value())?.event, &facts);
        last = seq.value();
    }
    Ok((tally, last))
}
