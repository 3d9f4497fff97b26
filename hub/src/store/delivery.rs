//! Delivery bookkeeping: how far the Kafka export and each webhook subscription got per
//! origin, and the webhook dead-letter queue.

use std::collections::BTreeMap;

use fusion_contracts::{EventId, Timestamp};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::tables::*;
use super::{HubStore, HubStoreError, storage};

/// An event a webhook subscription gave up on: what `fusion hub dlq list` shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub subscription: String,
    pub origin: String,
    pub seq: u64,
    pub event_id: EventId,
    pub topic: String,
    pub key: String,
    /// Delivery attempts so far (live and retried).
    pub attempts: u32,
    pub last_error: String,
    pub failed_at: Timestamp,
}

impl HubStore {
    /// Every origin's durable position.
    pub fn durable_positions(&self) -> Result<BTreeMap<String, u64>, HubStoreError> {
        self.read_positions(POSITIONS)
    }

    /// Every origin's export position (what Kafka confirmed).
    pub fn export_positions(&self) -> Result<BTreeMap<String, u64>, HubStoreError> {
        self.read_positions(EXPORT_POSITIONS)
    }

    pub(super) fn read_positions(
        &self,
        table: TableDefinition<&str, u64>,
    ) -> Result<BTreeMap<String, u64>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(table).map_err(storage)?;
        let mut out = BTreeMap::new();
        for entry in table.iter().map_err(storage)? {
            let (origin, seq) = entry.map_err(storage)?;
            out.insert(origin.value().to_string(), seq.value());
        }
        Ok(out)
    }

    /// Records, durably, that Kafka confirmed `origin`'s events up to `seq`.
    pub fn set_export_position(&self, origin: &str, seq: u64) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(EXPORT_POSITIONS)
            .map_err(storage)?
            .insert(origin, seq)
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// Every origin's position for the webhook subscription `name`.
    pub fn webhook_positions(&self, name: &str) -> Result<BTreeMap<String, u64>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(WEBHOOK_POSITIONS).map_err(storage)?;
        let mut out = BTreeMap::new();
        for entry in table.range((name, "")..).map_err(storage)? {
            let (key, seq) = entry.map_err(storage)?;
            let (subscription, origin) = key.value();
            if subscription != name {
                break;
            }
            out.insert(origin.to_string(), seq.value());
        }
        Ok(out)
    }

    /// Records, in one durable transaction, that subscription `name` is done with `origin`'s
    /// events up to `seq`, and the dead letters among them.
    pub fn advance_webhook(
        &self,
        name: &str,
        origin: &str,
        seq: u64,
        dead: &[DeadLetter],
    ) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut dlq = txn.open_table(WEBHOOK_DLQ).map_err(storage)?;
            for letter in dead {
                let json = serde_json::to_vec(letter).map_err(storage)?;
                dlq.insert((name, letter.origin.as_str(), letter.seq), json.as_slice())
                    .map_err(storage)?;
            }
            txn.open_table(WEBHOOK_POSITIONS)
                .map_err(storage)?
                .insert((name, origin), seq)
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// The dead letters of subscription `name` (all subscriptions when `None`), in
    /// (subscription, origin, seq) order.
    pub fn dead_letters(&self, name: Option<&str>) -> Result<Vec<DeadLetter>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(WEBHOOK_DLQ).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table
            .range((name.unwrap_or(""), "", 0)..)
            .map_err(storage)?
        {
            let (key, json) = entry.map_err(storage)?;
            if name.is_some_and(|n| n != key.value().0) {
                break;
            }
            out.push(serde_json::from_slice(json.value()).map_err(storage)?);
        }
        Ok(out)
    }

    /// How many dead letters each subscription holds.
    pub fn dead_letter_counts(&self) -> Result<BTreeMap<String, u64>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(WEBHOOK_DLQ).map_err(storage)?;
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for entry in table.iter().map_err(storage)? {
            let (key, _) = entry.map_err(storage)?;
            *out.entry(key.value().0.to_string()).or_default() += 1;
        }
        Ok(out)
    }

    /// Removes a delivered dead letter, or (when `failed` is given) records one more failed
    /// attempt on it. Durable on return.
    pub fn settle_dead_letter(
        &self,
        letter: &DeadLetter,
        failed: Option<&str>,
    ) -> Result<(), HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut dlq = txn.open_table(WEBHOOK_DLQ).map_err(storage)?;
            let key = (
                letter.subscription.as_str(),
                letter.origin.as_str(),
                letter.seq,
            );
            match failed {
                None => {
                    dlq.remove(key).map_err(storage)?;
                }
                Some(error) => {
                    let mut updated = letter.clone();
                    updated.attempts += 1;
                    updated.last_error = error.to_string();
                    let json = serde_json::to_vec(&updated).map_err(storage)?;
                    dlq.insert(key, json.as_slice()).map_err(storage)?;
                }
            }
        }
        txn.commit().map_err(storage)
    }
}
