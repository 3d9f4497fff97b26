//! Storing a till's batch of events ([`EventSink`]): gapless by (origin, seq), projected by
//! the rulebook's folds in the same durable transaction (an event they refuse is counted and
//! never stored: the batch stops before it), and what the events ask of the hub (a transfer to its holder, a seat
//! movement) done in that transaction too.

use std::collections::BTreeMap;

use fusion_contracts::commands::ReceiveStock;
use fusion_contracts::{Envelope, Event, NodeId, StoreId};
use fusion_rules::Refused;
use fusion_rules::authority::{self, OriginKind};
use fusion_rules::campaigns::SharedCampaign;
use fusion_rules::inventory;
use fusion_rules::journal;
use fusion_sync::net::{BoxFuture, EndpointId, EventSink};
use fusion_sync::proto::{Batch, Verified};
use redb::{ReadableDatabase, ReadableTable};

use super::own_log::OwnLog;
use super::projections::project;
use super::tables::*;
use super::{HubStore, HubStoreError, storage};

impl HubStore {
    /// Follows a stored event's seat movements by the rulebook ([`SharedCampaign::follow`]):
    /// takes in seats given to the hub, records who holds seats and whose part ended, and
    /// decides the campaign once every holder's part has ended. The hub's events go into its
    /// own log, which every till pulls.
    pub(super) fn follow_seats(
        &self,
        own: &mut OwnLog<'_>,
        origin: &NodeId,
        envelope: &Envelope,
    ) -> Result<(), HubStoreError> {
        let Some(snapshot) = SharedCampaign::snapshot_of(&envelope.event) else {
            return Ok(());
        };
        let mut row = own
            .campaign(snapshot.id)?
            .unwrap_or_else(|| SharedCampaign::new(snapshot.clone()));
        let events = row.follow(&self.origin, origin, &envelope.event, own.now);
        for event in events {
            own.append(
                &self.origin,
                event,
                envelope.correlation_id.clone(),
                Some(envelope.event_id.0),
            )?;
        }
        own.put_campaign(&row)
    }
}

impl EventSink for HubStore {
    fn positions(&self) -> BTreeMap<NodeId, u64> {
        let read = || -> Result<BTreeMap<NodeId, u64>, HubStoreError> {
            let txn = self.db.begin_read().map_err(storage)?;
            let table = txn.open_table(POSITIONS).map_err(storage)?;
            let mut out = BTreeMap::new();
            for entry in table.iter().map_err(storage)? {
                let (origin, seq) = entry.map_err(storage)?;
                out.insert(NodeId::new(origin.value()).map_err(storage)?, seq.value());
            }
            Ok(out)
        };
        // Without positions every origin would be resent from the start: duplicates, which
        // `store` ignores. Wasteful, never wrong.
        read().unwrap_or_default()
    }

    fn store(&self, peer: EndpointId, batch: Batch) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(std::future::ready(self.store_events(peer, batch)))
    }
}

impl HubStore {
    /// Counts and logs a till's event a fold refused; the answer for the session.
    pub(super) fn refuse(
        &self,
        peer: EndpointId,
        origin: &NodeId,
        seq: u64,
        refused: &Refused,
    ) -> String {
        self.refusals.count(refused.rule());
        tracing::warn!(%peer, %origin, seq, %refused, "a till's event refused");
        format!("refused: {refused}")
    }

    /// The hub's holder takes in a transfer a till addressed to it, by the rule a till takes
    /// in its own ([`inventory::receive`]).
    pub(super) fn take_in(
        &self,
        own: &mut OwnLog<'_>,
        holder: &NodeId,
        store: &StoreId,
        origin: &NodeId,
        envelope: &Envelope,
        t: &fusion_contracts::events::StockTransferred,
    ) -> Result<(), HubStoreError> {
        let level = own.level(holder.as_str(), t.sku.as_str())?;
        let cmd = ReceiveStock {
            transfer_id: t.transfer_id,
            sku: t.sku.clone(),
            quantity: t.quantity,
            from: origin.clone(),
        };
        match inventory::receive(&cmd, &level) {
            Ok(events) => {
                for event in events {
                    own.append_held(
                        holder,
                        store,
                        event,
                        envelope.correlation_id.clone(),
                        Some(envelope.event_id.0),
                    )?;
                }
            }
            Err(rejected) => {
                tracing::error!(%origin, %rejected, "a transfer to the hub could not be taken in");
            }
        }
        Ok(())
    }

    /// Stores a batch of one origin's events in one durable transaction; see [`EventSink::store`].
    /// Transfers addressed to one of the hub's holders are taken in in the same transaction, so
    /// each is taken in once and never lost.
    pub(super) fn store_events(&self, peer: EndpointId, batch: Batch) -> Result<u64, String> {
        let origin = &batch.origin;
        // A till speaks only for till origins: the hub's own origins are the hub's.
        if let Err(refused) = authority::deliverer_may_send(origin, false) {
            return Err(self.unauthorized(peer, origin, 0, &refused));
        }
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        let mut stopped = None;
        let position = {
            let mut own = OwnLog::open(&txn, self.now()).map_err(|e| e.to_string())?;
            // An origin is bound to the endpoint that first delivered it; no other may speak for
            // it (until signatures bind origins to keys).
            let mut peers = txn.open_table(ORIGIN_PEERS).map_err(|e| e.to_string())?;
            let bound = peers
                .get(origin.as_str())
                .map_err(|e| e.to_string())?
                .map(|v| v.value().to_string());
            match bound {
                Some(bound) if bound != peer.to_string() => {
                    let refused = authority::Unauthorized::Rebound {
                        origin: origin.clone(),
                    };
                    return Err(self.unauthorized(peer, origin, 0, &refused));
                }
                Some(_) => {}
                None => {
                    peers
                        .insert(origin.as_str(), peer.to_string().as_str())
                        .map_err(|e| e.to_string())?;
                }
            }
            if own
                .stores
                .get(origin.as_str())
                .map_err(|e| e.to_string())?
                .is_none()
            {
                let enrollments = txn.open_table(ENROLLMENTS).map_err(|e| e.to_string())?;
                if let Some(store) = enrollments
                    .get(peer.to_string().as_str())
                    .map_err(|e| e.to_string())?
                {
                    own.stores
                        .insert(origin.as_str(), store.value())
                        .map_err(|e| e.to_string())?;
                }
            }
            let store = own.store_of(origin.as_str()).map_err(|e| e.to_string())?;
            let mut position = own
                .positions
                .get(origin.as_str())
                .map_err(|e| e.to_string())?
                .map_or(0, |v| v.value());
            let mut head =
                super::journal::head(&own.heads, origin.as_str()).map_err(|e| e.to_string())?;
            // Nothing is stored unless the batch chains from the head held to a checkpoint
            // signed by the till's key: the endpoint the origin is bound to. Events already
            // stored are skipped.
            let new = match batch.verified((position, head), peer.as_bytes()) {
                Ok(new) => new,
                Err(fault) => return Err(self.unverified(peer, origin, &fault)),
            };
            let mut kept_all = true;
            for &Verified {
                envelope,
                bytes,
                hash,
            } in &new
            {
                // An event its origin may not write is never stored: the batch ends before it
                // (what came before is kept), and the origin's log cannot grow past it.
                let mut authorized = authority::may_write(OriginKind::Till, &envelope.event);
                // Nor does a till decide a campaign whose seats are shared (the hub follows it).
                if let (Ok(()), Some(campaign)) =
                    (&authorized, authority::decided_campaign(&envelope.event))
                {
                    let shared = own.campaign(campaign).map_err(|e| e.to_string())?.is_some();
                    authorized =
                        authority::may_decide_campaign(OriginKind::Till, &envelope.event, shared);
                }
                if let Err(refused) = authorized {
                    stopped = Some(self.unauthorized(peer, origin, envelope.seq, &refused));
                    kept_all = false;
                    break;
                }
                // Folded by the same rules as the till's own; an event they refuse (rights it
                // never held, an impossible order step) changes nothing and is never stored,
                // and the origin's log cannot grow past it: an honest till never writes one.
                let folded = project(&mut own.projections, origin.as_str(), envelope)
                    .map_err(|e| e.to_string())?;
                if let Err(refused) = folded {
                    stopped = Some(self.refuse(peer, origin, envelope.seq, &refused));
                    kept_all = false;
                    break;
                }
                super::projections::record_receipt_code(&mut own.projections, envelope, &hash)
                    .map_err(|e| e.to_string())?;
                // As it came: the bytes the till's journal hashes.
                own.fleet
                    .insert((origin.as_str(), envelope.seq), bytes)
                    .map_err(|e| e.to_string())?;
                position = envelope.seq;
                head = hash;
                // Recorded now, so the receipt below comes after it in the hub's log.
                own.positions
                    .insert(origin.as_str(), position)
                    .map_err(|e| e.to_string())?;
                own.heads
                    .insert(origin.as_str(), &head)
                    .map_err(|e| e.to_string())?;
                if let (Event::StockTransferred(t), Some(store)) = (&envelope.event, &store) {
                    let holder = self.holder(store);
                    if t.to == holder {
                        self.take_in(&mut own, &holder, store, origin, envelope, t)
                            .map_err(|e| e.to_string())?;
                    }
                }
                self.follow_seats(&mut own, origin, envelope)
                    .map_err(|e| e.to_string())?;
            }
            if kept_all && !new.is_empty() {
                // The till's signature over all it sent: its journal is proven up to there.
                txn.open_table(TILL_CHECKPOINTS)
                    .map_err(|e| e.to_string())?
                    .insert(
                        origin.as_str(),
                        postcard::to_allocvec(&batch.checkpoint)
                            .map_err(|e| e.to_string())?
                            .as_slice(),
                    )
                    .map_err(|e| e.to_string())?;
            }
            position
        };
        txn.commit().map_err(|e| e.to_string())?;
        self.appended.notify_waiters();
        match stopped {
            Some(refusal) => Err(refusal),
            None => Ok(position),
        }
    }

    /// Counts and logs a batch whose chain or signature does not verify; the answer for the
    /// session. Nothing of it is stored.
    fn unverified(&self, peer: EndpointId, origin: &NodeId, fault: &journal::Fault) -> String {
        self.refusals.count(fault.rule());
        tracing::warn!(%peer, %origin, seq = fault.seq(), %fault, "a till's batch does not verify");
        format!("refused: {fault}")
    }

    /// Counts and logs a batch refused by the authority rules; the answer for the session.
    fn unauthorized(
        &self,
        peer: EndpointId,
        origin: &NodeId,
        seq: u64,
        refused: &authority::Unauthorized,
    ) -> String {
        self.refusals.count(refused.rule());
        tracing::warn!(%peer, %origin, seq, %refused, "a till's batch refused");
        format!("refused: {refused}")
    }
}
