//! The rulebook: every business rule of FusionCommerce Edge, once. For each commerce domain,
//! which events a command produces (`decide`-style functions, refusing with a `…Rejected` fact)
//! and how events change state (folds, refusing an impossible event with [`Refused`]). The node
//! and the hub call the same functions; neither has a copy of a rule.
//!
//! Pure, and kept so by Cargo: this crate depends on `fusion-contracts`, serde and thiserror
//! only (no storage, network, async runtime; `tests/purity.rs` checks it), and never reads the
//! clock or makes random ids — time and ids arrive as arguments, state arrives loaded by the
//! caller.

pub mod authority;
pub mod campaigns;
pub mod catalog;
pub mod drawer;
pub mod escrow;
pub mod inventory;
pub mod journal;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod receipts;
pub mod returns;
pub mod shipping;
pub mod staff;
pub mod tax;

use serde::{Deserialize, Serialize};

pub use campaigns::{Campaign, CampaignRejected};
pub use catalog::{CatalogRejected, Product};
pub use inventory::{InventoryRejected, Reservation, StockLevel};
pub use orders::{Order, OrderRejected};
pub use payments::{Payment, PaymentRejected};
pub use shipping::{RateTable, Shipment, ShipmentRejected};

/// Why a command was refused: a fact about the state, never a storage failure.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum Rejected {
    #[error(transparent)]
    Catalog(#[from] CatalogRejected),
    #[error(transparent)]
    Inventory(#[from] InventoryRejected),
    #[error(transparent)]
    Order(#[from] OrderRejected),
    #[error(transparent)]
    Campaign(#[from] CampaignRejected),
    #[error(transparent)]
    Payment(#[from] PaymentRejected),
    #[error(transparent)]
    Shipment(#[from] ShipmentRejected),
    #[error("token {0} not found")]
    TokenNotFound(fusion_contracts::TokenId),
    /// (Appended: idempotency records store the variant index.)
    #[error(transparent)]
    Transfer(#[from] inventory::TransferRejected),
    #[error(transparent)]
    Return(#[from] returns::ReturnRejected),
    #[error(transparent)]
    Drawer(#[from] drawer::DrawerRejected),
}

/// FNV-1a, 64 bits: a stable hash of names (the same on every build and platform, unlike
/// `std::hash`), for ids derived from names — the hub's holder of a store, a till's tracking
/// number prefix. Pinned by its published test vectors.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An event a fold cannot take without breaking a rule: it claims the impossible (more stock
/// taken than there is, an amount that is not money). From a peer it is refused — counted,
/// logged with this reason, and never stored or folded; never a panic, never a silent clamp. From a
/// node's own log it is a broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{topic} of {sku}: {kind} ({quantity} against {held})")]
    Stock {
        topic: &'static str,
        sku: fusion_contracts::Sku,
        kind: StockRefusal,
        /// What the level held of the side the event takes from.
        held: u64,
        quantity: u64,
    },
    #[error("{topic}: {reason}")]
    Amount { topic: &'static str, reason: String },
    #[error("{topic} takes a seat the till does not hold")]
    Seats { topic: &'static str },
    /// A return or a transfer of return rights from a till that does not hold them, or of
    /// more units than were sold.
    #[error("{topic}: {reason}")]
    Returns { topic: &'static str, reason: String },
    /// A receipt number that is not its till's next, or a receipt of another till.
    #[error("{topic}: {reason}")]
    Receipts { topic: &'static str, reason: String },
    /// A drawer event of another till, of a session that is not open, or a Z number that is
    /// not the till's next.
    #[error("{topic}: {reason}")]
    Drawer { topic: &'static str, reason: String },
}

/// How an event would break a stock level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockRefusal {
    AvailableBelowZero,
    ReservedBelowZero,
    Overflow,
    /// A movement of rights states a level before it other than the one its holder's log shows.
    Misstated,
}

impl std::fmt::Display for StockRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AvailableBelowZero => "available would go below zero",
            Self::ReservedBelowZero => "reserved would go below zero",
            Self::Overflow => "stock would exceed its maximum",
            Self::Misstated => "the event states a level its holder's log does not show",
        })
    }
}

impl Refused {
    /// The metric label of the rule that refused (`fusion_events_refused_total{rule}`).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Stock {
                kind: StockRefusal::Overflow,
                ..
            } => "stock_overflow",
            Self::Stock {
                kind: StockRefusal::Misstated,
                ..
            } => "stock_misstated",
            Self::Stock { .. } => "stock_underflow",
            Self::Amount { .. } => "amount",
            Self::Seats { .. } => "seats_underflow",
            Self::Returns { .. } => "returns",
            Self::Receipts { .. } => "receipts",
            Self::Drawer { .. } => "drawer",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a64_matches_its_published_test_vectors() {
        // From the FNV reference (Fowler, Noll, Vo): "", "a", "foobar".
        for (input, hash) in [
            ("", 0xcbf2_9ce4_8422_2325u64),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ] {
            assert_eq!(super::fnv1a64(input.as_bytes()), hash, "{input:?}");
        }
    }
}
