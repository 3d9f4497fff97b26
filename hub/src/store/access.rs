//! Who may talk to the hub: API tokens (hashed), node enrollments (endpoint id → store) and
//! revocations.

pub use fusion_contracts::http::hub::{HubRole, HubToken};

use fusion_contracts::events::{NodeEnrolled, NodeRevoked};
use fusion_contracts::{CorrelationId, StoreId};
use fusion_sync::net::EndpointId;
use redb::{ReadableDatabase, ReadableTable};

use super::own_log::OwnLog;
use super::tables::*;
use super::{HubStore, HubStoreError, storage};

impl HubStore {
    /// Stores a token by the hash of its secret. Durable on return.
    pub fn add_token(&self, hash: &[u8; 32], token: &HubToken) -> Result<(), HubStoreError> {
        let json = serde_json::to_vec(token).map_err(storage)?;
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(TOKENS)
            .map_err(storage)?
            .insert(hash.as_slice(), json.as_slice())
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// The token whose secret hashes to `hash`.
    pub fn token(&self, hash: &[u8; 32]) -> Result<Option<HubToken>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(TOKENS).map_err(storage)?;
        table
            .get(hash.as_slice())
            .map_err(storage)?
            .map(|v| serde_json::from_slice(v.value()).map_err(storage))
            .transpose()
    }

    /// Every token, oldest first.
    pub fn tokens(&self) -> Result<Vec<HubToken>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(TOKENS).map_err(storage)?;
        let mut out: Vec<HubToken> = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, json) = entry.map_err(storage)?;
            out.push(serde_json::from_slice(json.value()).map_err(storage)?);
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// Revokes the token `id`; false when there is none. Durable on return.
    pub fn revoke_token(&self, id: &str) -> Result<bool, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let found = {
            let mut table = txn.open_table(TOKENS).map_err(storage)?;
            let mut hash = None;
            for entry in table.iter().map_err(storage)? {
                let (key, json) = entry.map_err(storage)?;
                let token: HubToken = serde_json::from_slice(json.value()).map_err(storage)?;
                if token.id == id {
                    hash = Some(key.value().to_vec());
                    break;
                }
            }
            match hash {
                Some(h) => {
                    table.remove(h.as_slice()).map_err(storage)?;
                    true
                }
                None => false,
            }
        };
        txn.commit().map_err(storage)?;
        Ok(found)
    }

    /// Enrolls `node` as a till of `store` (again, if it was revoked), and says so in the
    /// hub's own log (`fleet.node.enrolled`), which every till pulls. Durable on return.
    pub fn enroll(&self, node: EndpointId, store: &str) -> Result<(), HubStoreError> {
        let store_id = StoreId::new(store).map_err(storage)?;
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let key = node.to_string();
            txn.open_table(ENROLLMENTS)
                .map_err(storage)?
                .insert(key.as_str(), store)
                .map_err(storage)?;
            txn.open_table(REVOCATIONS)
                .map_err(storage)?
                .remove(key.as_str())
                .map_err(storage)?;
            let mut own = OwnLog::open(&txn, self.now()).map_err(storage)?;
            let event = NodeEnrolled {
                node_id: key,
                store_id,
            };
            own.append(&self.origin, event.into(), fleet_correlation(), None)?;
        }
        txn.commit().map_err(storage)?;
        self.appended.notify_waiters();
        Ok(())
    }

    /// Revokes `node`: it is no longer admitted, here nor — once they pulled the hub's log,
    /// where this writes `fleet.node.revoked` — at any till. Returns false when it was not
    /// enrolled. Durable on return; cutting its live connections is the caller's
    /// (`Gate::cut`).
    pub fn revoke(&self, node: EndpointId) -> Result<bool, HubStoreError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let was_enrolled = {
            let mut own = OwnLog::open(&txn, self.now()).map_err(storage)?;
            self.record_revocation(&txn, &mut own, &node.to_string(), fleet_correlation())?
        };
        txn.commit().map_err(storage)?;
        self.appended.notify_waiters();
        Ok(was_enrolled)
    }

    /// Revokes the endpoint `node` in `txn`: no longer enrolled, revoked now, and
    /// `fleet.node.revoked` in the hub's own log. Returns whether it was enrolled.
    pub(super) fn record_revocation(
        &self,
        txn: &redb::WriteTransaction,
        own: &mut OwnLog<'_>,
        node: &str,
        correlation_id: CorrelationId,
    ) -> Result<bool, HubStoreError> {
        let store = txn
            .open_table(ENROLLMENTS)
            .map_err(storage)?
            .remove(node)
            .map_err(storage)?
            .map(|s| s.value().to_string());
        txn.open_table(REVOCATIONS)
            .map_err(storage)?
            .insert(node, own.now.unix_ms())
            .map_err(storage)?;
        let event = NodeRevoked {
            node_id: node.to_string(),
            store_id: store
                .as_deref()
                .map(StoreId::new)
                .transpose()
                .map_err(storage)?,
            revoked_at: own.now,
        };
        own.append(&self.origin, event.into(), correlation_id, None)?;
        Ok(store.is_some())
    }

    /// The store `node` is enrolled in; `None` when it is not (never enrolled, or revoked).
    pub fn enrollment(&self, node: EndpointId) -> Result<Option<String>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(ENROLLMENTS).map_err(storage)?;
        Ok(table
            .get(node.to_string().as_str())
            .map_err(storage)?
            .map(|v| v.value().to_string()))
    }

    /// The endpoint of the till whose journal created campaign `id`, if the hub holds it: that
    /// till may change the campaign's document.
    pub fn campaign_owner(
        &self,
        id: fusion_contracts::CampaignId,
    ) -> Result<Option<String>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let campaigns = read.open_table(FLEET_CAMPAIGNS).map_err(storage)?;
        let Some(origin) = campaigns
            .get(id.as_u128())
            .map_err(storage)?
            .map(|v| v.value().to_string())
        else {
            return Ok(None);
        };
        let peers = read.open_table(ORIGIN_PEERS).map_err(storage)?;
        Ok(peers
            .get(origin.as_str())
            .map_err(storage)?
            .map(|v| v.value().to_string()))
    }

    /// The sync endpoint (as text) that first delivered `origin`'s events: the till whose
    /// journal it is.
    pub fn origin_peer(&self, origin: &str) -> Result<Option<String>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let peers = read.open_table(ORIGIN_PEERS).map_err(storage)?;
        Ok(peers
            .get(origin)
            .map_err(storage)?
            .map(|v| v.value().to_string()))
    }

    /// Every enrolled node and its store.
    pub fn enrollments(&self) -> Result<Vec<(String, String)>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(ENROLLMENTS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (node, store) = entry.map_err(storage)?;
            out.push((node.value().to_string(), store.value().to_string()));
        }
        Ok(out)
    }

    /// The store whose enrolled node first delivered `origin`'s events.
    pub fn origin_store(&self, origin: &str) -> Result<Option<String>, HubStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(ORIGIN_STORES).map_err(storage)?;
        Ok(table
            .get(origin)
            .map_err(storage)?
            .map(|v| v.value().to_string()))
    }
}

/// The correlation id of a fleet change made at the hub (an enrollment, a revocation).
fn fleet_correlation() -> CorrelationId {
    CorrelationId::new(format!("fleet-{}", uuid::Uuid::now_v7().simple()))
        .expect("a prefixed uuid is a valid correlation id")
}
