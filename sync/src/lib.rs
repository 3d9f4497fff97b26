//! Sync: replicating each node's event log to the hub and to the other tills of its store,
//! exactly once and in per-origin order, over any byte stream.
//!
//! - `frame`: the wire format — length-prefixed, versioned postcard frames with a size limit;
//!   bytes from a peer are untrusted and decoding never panics.
//! - `proto`: the protocol core as two state machines, `Sender` and `Receiver`, with no I/O:
//!   frames and time go in, frames and "persist these events" requests come out.
//! - `sim`: a seeded network simulator (drop, duplicate, reorder, partition, heal, crash) that
//!   checks after every step that no event is lost or applied twice.
//!
//! The iroh transport, automerge documents and the hub arrive in later slices.

pub mod docs;
pub mod frame;
pub mod net;
pub mod proto;
pub mod sim;
