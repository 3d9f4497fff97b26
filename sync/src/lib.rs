//! Sync: replicating each node's event log to the hub and to the other tills of its store,
//! exactly once and in per-origin order, over any byte stream.
//!
//! - `frame`: the wire format — length-prefixed, versioned postcard frames with a size limit;
//!   bytes from a peer are untrusted and decoding never panics.
//! - `proto`: the protocol core as two state machines, `Sender` and `Receiver`, with no I/O:
//!   frames and time go in, frames and "persist these events" requests come out.
//! - `sim`: a seeded network simulator (drop, duplicate, reorder, partition, heal, crash) that
//!   checks after every step that no event is lost or applied twice.
//! - `clock`: the wall clock, for the edges (`Clock`, `system_clock`, `now`).
//! - `docs`: shared state as automerge documents (one per product) and their persistence chunks.
//! - `refusals`: counts of peers' events refused by a rule, by rule.
//! - `files`: data dirs 0700 and files 0600, whatever the umask.
//! - `net` (feature `net`, on by default): the iroh transport — identities, log sessions and
//!   document sessions.
//!
//! `fuzz/` holds the fuzz targets (cargo-fuzz): frame decoding and document sync messages; their
//! bodies are `fuzzing`, which `tests/fuzz_replay.rs` runs over the regressions and seeds.

pub mod clock;
pub mod docs;
pub mod files;
pub mod frame;
pub mod fuzzing;
#[cfg(feature = "net")]
pub mod net;
pub mod proto;
pub mod refusals;
pub mod sim;

pub use refusals::Refusals;
