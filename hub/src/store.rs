//! The hub's store: one redb file with the fleet's events by (origin, seq), each origin's
//! durable position, the projections folded from them and the hub's own logs. The only module
//! of the hub that imports redb. A batch of received events is one durable transaction; the
//! receiver acknowledges only after it committed. Time is the store's [`Clock`], read once per
//! write transaction.
//!
//! - `tables`: every table definition.
//! - `ingest`: a till's batch in, projected, with what it asks of the hub.
//! - `projections`: the fleet's stock, budgets, transfers and order index, by the rulebook's
//!   folds; rebuilt when their version changes.
//! - `own_log`: appending the hub's own events (its origin, its holders of each store).
//! - `escrow`: the hub's holders give, rebalance and reclaim; shared campaigns; budgets.
//! - `fleet`: reads of the fleet log (pages, sales, orders, participants).
//! - `docs`: the shared documents' chunks.
//! - `access`: API tokens, enrollments, revocations.
//! - `delivery`: Kafka export and webhook positions, the dead-letter queue.

mod access;
mod delivery;
mod docs;
mod escrow;
mod fleet;
mod ingest;
mod journal;
mod own_log;
mod projections;
mod tables;

pub use access::{HubRole, HubToken};
pub use delivery::DeadLetter;
pub use escrow::{
    BudgetHolder, BudgetRow, EscrowRefusal, HubCampaign, Reclaim, StockRow, TillStock,
};
pub use fleet::{FleetFilter, FleetPage, Participant, SalesRow};
pub use projections::Transfer;

use std::collections::BTreeMap;
use std::path::Path;

use fusion_contracts::{NodeId, StoreId, Timestamp};
use fusion_rules::escrow::{hub_holder, hub_origin};
use fusion_sync::Refusals;
use fusion_sync::clock::{Clock, system_clock};
use redb::Database;

use projections::rebuild_projections;
use tables::*;

/// The hub store's file name in its data dir.
pub const HUB_DB_FILE: &str = "hub.redb";

#[derive(Debug, thiserror::Error)]
pub enum HubStoreError {
    #[error("hub store: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> HubStoreError {
    HubStoreError::Storage(e.to_string())
}

pub struct HubStore {
    db: std::sync::Arc<Database>,
    /// The hub's own origin (from the identity in the same data dir); its holders of each
    /// store's rights are derived from it (`escrow::hub_holder`).
    origin: NodeId,
    /// Woken after every commit that added events (the Kafka exporter waits on it).
    appended: std::sync::Arc<tokio::sync::Notify>,
    /// What "now" is for the hub's own events and decisions (tests pass a fixed clock).
    clock: Clock,
    /// Tills' batches and events refused (never stored), by rule.
    refusals: Refusals,
    /// Signs the hub's own journals: its identity.
    journal_key: fusion_rules::journal::JournalKey,
}

impl HubStore {
    /// Opens (or creates) the hub's store in `dir`, on the system clock.
    pub fn open(dir: &Path) -> Result<Self, HubStoreError> {
        Self::open_with_clock(dir, system_clock())
    }

    /// Opens (or creates) the hub's store in `dir`; `clock` is the hub's time.
    pub fn open_with_clock(dir: &Path, clock: Clock) -> Result<Self, HubStoreError> {
        fusion_sync::files::private_dir(dir).map_err(storage)?;
        // redb's own default page cache is 1 GiB; the kernel's page cache holds the file too.
        const HUB_STORE_CACHE_BYTES: usize = 64 * 1024 * 1024;
        let db = Database::builder()
            .set_cache_size(HUB_STORE_CACHE_BYTES)
            .create(dir.join(HUB_DB_FILE))
            .map_err(storage)?;
        fusion_sync::files::private_file(&dir.join(HUB_DB_FILE)).map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(FLEET_EVENTS).map_err(storage)?;
        txn.open_table(POSITIONS).map_err(storage)?;
        txn.open_table(ENROLLMENTS).map_err(storage)?;
        txn.open_table(REVOCATIONS).map_err(storage)?;
        txn.open_table(ORIGIN_STORES).map_err(storage)?;
        txn.open_table(DOCS).map_err(storage)?;
        txn.open_table(DOC_HEADS).map_err(storage)?;
        txn.open_table(EXPORT_POSITIONS).map_err(storage)?;
        txn.open_table(WEBHOOK_POSITIONS).map_err(storage)?;
        txn.open_table(WEBHOOK_DLQ).map_err(storage)?;
        txn.open_table(TOKENS).map_err(storage)?;
        txn.open_table(ORIGIN_PEERS).map_err(storage)?;
        txn.open_table(HUB_CAMPAIGNS).map_err(storage)?;
        txn.open_table(JOURNAL_HEADS).map_err(storage)?;
        txn.open_table(OWN_HASHES).map_err(storage)?;
        txn.open_table(TILL_CHECKPOINTS).map_err(storage)?;
        journal::chain_stored_logs(&txn)?;
        let refused = rebuild_projections(&txn)?;
        txn.commit().map_err(storage)?;
        let identity = fusion_sync::net::load_or_create_identity(dir).map_err(storage)?;
        let refusals = Refusals::default();
        for r in &refused {
            tracing::warn!(refused = %r, "a stored event refused while rebuilding projections");
            refusals.count(r.rule());
        }
        Ok(Self {
            db: std::sync::Arc::new(db),
            origin: hub_origin(&identity.public().to_string()),
            journal_key: fusion_sync::net::journal_key(&identity),
            appended: Default::default(),
            clock,
            refusals,
        })
    }

    /// The hub's time now.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Counts a till's message refused by `rule` (a document change it may not make).
    pub fn count_refusal(&self, rule: &'static str) {
        self.refusals.count(rule);
        tracing::warn!(rule, "a till's message refused");
    }

    /// Tills' batches and events refused by a rule so far (never stored), by rule.
    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        self.refusals.snapshot()
    }

    /// The hub's own origin: its edits and decisions are events of this origin.
    pub fn origin(&self) -> &NodeId {
        &self.origin
    }

    /// The hub's holder of `store`'s rights (the online channel of that store).
    pub fn holder(&self, store: &StoreId) -> NodeId {
        hub_holder(&self.origin, store)
    }

    /// Woken after every commit that added events.
    pub fn appended(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.appended.clone()
    }
}
