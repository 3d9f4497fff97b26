//! The shared vocabulary of FusionCommerce Edge: ids, money, time, commands, events, the event
//! envelope and the HTTP bodies. Every other crate depends on this one.
//!
//! This crate does no I/O: it never reads the clock, makes random ids, touches disk or network.
//! It only describes values and checks that they are well formed.

pub mod commands;
pub mod events;
pub mod http;
pub mod ids;
pub mod journal;
pub mod money;
pub mod pricing;
pub mod time;

pub use events::{Envelope, Event, EventError};
pub use ids::{
    CampaignId, CorrelationId, CustomerId, EventId, NodeId, OrderId, PaymentId, ProductId,
    PromotionId, ShipmentId, Sku, StaffId, StoreId, TokenId,
};
pub use money::{Currency, Decimal, Money, MoneyError};
pub use time::Timestamp;
