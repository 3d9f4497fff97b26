//! The FusionCommerce Edge node: pure domain cores (`domain`), the durable redb store with its
//! event log (`store`), the HTTP API (`api`), the campaign scheduler (`scheduler`), and the
//! wiring that runs them (`server`).

pub mod api;
pub mod card;
pub mod demo;
/// The rulebook (`fusion-rules`), under the name the node has always used for it.
pub use fusion_rules as domain;
pub mod followup;
pub mod metrics;
pub mod printer;
pub mod replication;
pub mod scheduler;
pub mod server;
pub mod staff;
pub mod store;
