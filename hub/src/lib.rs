//! The hub: receives every enrolled node's event log over `fusion_sync` and stores it durably.
//! It holds the fleet log and the enrollments (who may sync); the fleet API, the `fusion hub`
//! commands, Kafka and n8n export arrive in later slices.

pub mod store;
