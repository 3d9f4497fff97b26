//! The hub: receives every enrolled node's event log over `fusion_sync` and stores it durably.
//! This first slice holds the fleet log; the fleet API, enrollment commands, Kafka and n8n
//! export arrive with their issues.

pub mod store;
