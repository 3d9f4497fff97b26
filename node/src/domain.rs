//! The domain cores: for each commerce domain, which events a command produces (`decide`-style
//! functions) and how events change state (`apply`). Pure: no clock, no randomness, no I/O —
//! time and ids arrive as arguments, state arrives loaded by the store.

pub mod campaigns;
pub mod catalog;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod shipping;

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
}
