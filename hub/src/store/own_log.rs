//! The hub's own logs (its origin, and its holder of each store's rights): appending an event
//! numbers it after the origin's last and projects it in the same transaction.

use fusion_contracts::{
    CampaignId, CorrelationId, Envelope, Event, EventId, NodeId, StoreId, Timestamp,
};
use fusion_rules::campaigns::SharedCampaign;
use fusion_rules::inventory::StockLevel;
use redb::ReadableTable;

use super::projections::{Projections, project, stock_level};
use super::tables::*;
use super::{HubStoreError, storage};

/// The tables the hub's own events go into, within one write transaction; `now` is the
/// transaction's time (read once from the hub's clock).
pub(super) struct OwnLog<'t> {
    pub(super) now: Timestamp,
    pub(super) campaigns: redb::Table<'t, u128, &'static [u8]>,
    pub(super) fleet: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    pub(super) positions: redb::Table<'t, &'static str, u64>,
    /// Every origin's journal head as held (`journal::head`).
    pub(super) heads: redb::Table<'t, &'static str, &'static [u8; 32]>,
    own_hashes: redb::Table<'t, (&'static str, u64), &'static [u8; 32]>,
    pub(super) stores: redb::Table<'t, &'static str, &'static str>,
    pub(super) projections: Projections<'t>,
}

impl<'t> OwnLog<'t> {
    pub(super) fn open(
        txn: &'t redb::WriteTransaction,
        now: Timestamp,
    ) -> Result<Self, redb::TableError> {
        Ok(Self {
            now,
            campaigns: txn.open_table(HUB_CAMPAIGNS)?,
            fleet: txn.open_table(FLEET_EVENTS)?,
            positions: txn.open_table(POSITIONS)?,
            heads: txn.open_table(JOURNAL_HEADS)?,
            own_hashes: txn.open_table(OWN_HASHES)?,
            stores: txn.open_table(ORIGIN_STORES)?,
            projections: Projections::open(txn)?,
        })
    }

    /// Appends one event of the hub's `origin` (numbered after its last) and projects it.
    /// The hub decided it against these projections, so a fold refusing it is a broken
    /// invariant.
    pub(super) fn append(
        &mut self,
        origin: &NodeId,
        event: Event,
        correlation_id: CorrelationId,
        causation_id: Option<uuid::Uuid>,
    ) -> Result<Envelope, HubStoreError> {
        let seq = self
            .positions
            .get(origin.as_str())
            .map_err(storage)?
            .map_or(0, |v| v.value())
            + 1;
        let envelope = Envelope::new(
            EventId(uuid::Uuid::now_v7()),
            origin.clone(),
            seq,
            self.now,
            correlation_id,
            causation_id,
            event,
        )
        .map_err(storage)?;
        let bytes = envelope.encode();
        let prev = super::journal::head(&self.heads, origin.as_str())?;
        let hash = fusion_rules::journal::entry_hash(&prev, origin, seq, &bytes);
        self.fleet
            .insert((origin.as_str(), seq), bytes.as_slice())
            .map_err(storage)?;
        self.heads.insert(origin.as_str(), &hash).map_err(storage)?;
        self.own_hashes
            .insert((origin.as_str(), seq), &hash)
            .map_err(storage)?;
        self.positions
            .insert(origin.as_str(), seq)
            .map_err(storage)?;
        project(&mut self.projections, origin.as_str(), &envelope)
            .map_err(storage)?
            .map_err(|refused| storage(format!("the hub's own event refused: {refused}")))?;
        Ok(envelope)
    }

    /// Appends an event of the hub's holder of `store`, which is one more holder of that
    /// store for every projection.
    pub(super) fn append_held(
        &mut self,
        holder: &NodeId,
        store: &StoreId,
        event: Event,
        correlation_id: CorrelationId,
        causation_id: Option<uuid::Uuid>,
    ) -> Result<Envelope, HubStoreError> {
        self.stores
            .insert(holder.as_str(), store.as_str())
            .map_err(storage)?;
        self.append(holder, event, correlation_id, causation_id)
    }

    /// A holder's level of `sku`, as the hub folded it.
    pub(super) fn level(&self, holder: &str, sku: &str) -> Result<StockLevel, HubStoreError> {
        stock_level(&self.projections.stock, holder, sku).map_err(storage)
    }

    pub(super) fn campaign(&self, id: CampaignId) -> Result<Option<SharedCampaign>, HubStoreError> {
        match self.campaigns.get(id.as_u128()).map_err(storage)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(storage)?)),
            None => Ok(None),
        }
    }

    pub(super) fn put_campaign(&mut self, row: &SharedCampaign) -> Result<(), HubStoreError> {
        let json = serde_json::to_vec(row).map_err(storage)?;
        self.campaigns
            .insert(row.campaign.id.as_u128(), json.as_slice())
            .map_err(storage)?;
        Ok(())
    }

    pub(super) fn store_of(&self, origin: &str) -> Result<Option<StoreId>, HubStoreError> {
        match self.stores.get(origin).map_err(storage)? {
            Some(v) => Ok(Some(StoreId::new(v.value()).map_err(storage)?)),
            None => Ok(None),
        }
    }
}
