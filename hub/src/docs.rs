//! The hub's shared documents: every product document of the fleet, merged from every node and
//! edited here (a price change made at the hub). Persisted in the hub store; pushed to every
//! connected node by its document session.

use std::sync::Mutex;

use fusion_contracts::commands::UpdateProduct;
use fusion_contracts::events::Product;
use fusion_contracts::http::FieldError;
use fusion_contracts::http::SettingsChange;
use fusion_contracts::{CampaignId, CorrelationId, Event, NodeId, ProductId, StoreId, Timestamp};
use fusion_sync::docs::{
    CampaignDoc, Changed, DocId, DocSet, ProductField, StoreSettings, read_campaign, read_product,
    read_settings, update_product, write_settings,
};
use fusion_sync::net::{BoxFuture, DocHost};
use std::sync::Arc;
use tokio::sync::broadcast;

use crate::store::{HubStore, HubStoreError};

/// Commits' announcements a session may fall behind by before it rescans every document.
const ANNOUNCE_CAPACITY: usize = 1024;

pub struct HubDocs {
    store: Arc<HubStore>,
    set: Mutex<DocSet>,
    changes: broadcast::Sender<Changed>,
    /// The origin of the hub's own events.
    origin: NodeId,
}

/// Why a hub-side product edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("product {0} not found")]
    NotFound(ProductId),
    #[error("product {0} is archived")]
    Archived(ProductId),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] HubStoreError),
}

impl HubDocs {
    /// Opens the stored documents, none loaded until used (their heads from the store; at
    /// most `budget` bytes of them in memory). `actor` is the hub's stable automerge actor.
    pub fn open(
        store: Arc<HubStore>,
        actor: &[u8],
        origin: NodeId,
        budget: usize,
    ) -> Result<Self, HubStoreError> {
        let set = DocSet::open(actor, store.doc_source(actor)?, budget);
        Ok(Self {
            store,
            set: Mutex::new(set),
            changes: broadcast::channel(ANNOUNCE_CAPACITY).0,
            origin,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DocSet> {
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every readable product, in id (creation) order.
    pub fn products(&self) -> Vec<Product> {
        let mut set = self.lock();
        let ids = held_ids(&set, |id| id.product_id().is_some());
        ids.iter()
            .filter_map(|id| read_product(set.get(id)?, id.product_id()?))
            .collect()
    }

    /// Every readable campaign of the fleet, with the till that owns it.
    pub fn campaigns(&self) -> Vec<CampaignDoc> {
        let mut set = self.lock();
        let ids = held_ids(&set, |id| id.campaign_id().is_some());
        ids.iter()
            .filter_map(|id| read_campaign(set.get(id)?, id.campaign_id()?))
            .collect()
    }

    pub fn campaign(&self, id: CampaignId) -> Option<CampaignDoc> {
        let mut set = self.lock();
        read_campaign(set.get(&DocId::campaign(id))?, id)
    }

    /// What the set holds and has loaded, for `/sync/status`.
    pub fn stats(&self) -> fusion_sync::docs::DocStats {
        self.lock().stats()
    }

    /// A store's shared settings (all unset if nobody set any).
    pub fn settings(&self, store: &StoreId) -> StoreSettings {
        let mut set = self.lock();
        set.get(&DocId::settings(store))
            .map(read_settings)
            .unwrap_or_default()
    }

    /// Changes a store's shared settings: durable before it returns, then pushed to the nodes.
    pub fn update_settings(
        &self,
        store: &StoreId,
        change: &SettingsChange,
    ) -> Result<StoreSettings, EditError> {
        let doc = DocId::settings(store);
        let mut set = self.lock();
        set.edit(&doc, |d| write_settings(d, change))
            .map_err(|e| HubStoreError::Storage(e.to_string()))?;
        let chunks = set.take_chunks();
        let now = self.store.now();
        if let Err(e) = self
            .store
            .commit_docs(&chunks, &self.origin, Vec::new(), now)
        {
            set.chunks_lost(&chunks);
            return Err(e.into());
        }
        set.chunks_stored(&chunks);
        let settings = set.get(&doc).map(read_settings).unwrap_or_default();
        drop(set);
        let _ = self.changes.send(vec![doc].into());
        Ok(settings)
    }

    /// The catalog's name of each of `skus` that has a product (one pass over the catalog;
    /// it stops once every sku is found).
    pub fn names_of(
        &self,
        skus: &std::collections::BTreeSet<fusion_contracts::Sku>,
    ) -> std::collections::HashMap<fusion_contracts::Sku, String> {
        let mut set = self.lock();
        let mut names = std::collections::HashMap::new();
        let ids = held_ids(&set, |id| id.product_id().is_some());
        for id in &ids {
            if names.len() == skus.len() {
                break;
            }
            let Some(product) = id.product_id().and_then(|p| read_product(set.get(id)?, p)) else {
                continue;
            };
            if skus.contains(&product.sku) {
                names.insert(product.sku, product.name);
            }
        }
        names
    }

    pub fn product(&self, id: ProductId) -> Option<Product> {
        let mut set = self.lock();
        read_product(set.get(&DocId::product(id))?, id)
    }

    /// Changes a product at the hub: durable (with a `product.updated` event of the hub's
    /// origin) before it returns, then pushed to every connected node.
    pub fn update_product(
        &self,
        cmd: &UpdateProduct,
        correlation_id: CorrelationId,
        now: Timestamp,
    ) -> Result<Product, EditError> {
        let doc = DocId::product(cmd.product_id);
        let mut set = self.lock();
        let current = set
            .get(&doc)
            .and_then(|d| read_product(d, cmd.product_id))
            .ok_or(EditError::NotFound(cmd.product_id))?;
        // The rulebook decides the change, as at a till.
        let decided =
            fusion_rules::catalog::update(Some(&current), cmd, now).map_err(|r| match r {
                fusion_rules::CatalogRejected::Archived(id) => EditError::Archived(id),
                fusion_rules::CatalogRejected::InvalidField { field, message } => {
                    EditError::Field(FieldError::new(field, message))
                }
                other => EditError::Field(FieldError::new("id", other.to_string())),
            })?;
        let Some(Event::ProductUpdated(event)) = decided.into_iter().next() else {
            return Ok(current);
        };
        let mut next = Some(current);
        fusion_rules::catalog::apply(&mut next, &Event::ProductUpdated(event.clone()));
        let next = next.expect("an update keeps the product");
        let mut fields: Vec<ProductField> = Vec::new();
        for field in event
            .changed
            .iter()
            .filter_map(|c| ProductField::from_changed(c))
        {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        set.edit(&doc, |d| update_product(d, &next, &fields))
            .map_err(|e| HubStoreError::Storage(e.to_string()))?;
        let chunks = set.take_chunks();
        if let Err(e) = self.store.commit_docs(
            &chunks,
            &self.origin,
            vec![(event.into(), correlation_id)],
            now,
        ) {
            set.chunks_lost(&chunks);
            return Err(e.into());
        }
        set.chunks_stored(&chunks);
        drop(set);
        let _ = self.changes.send(vec![doc].into());
        Ok(next)
    }
}

/// The held documents `keep` selects; documents that cannot be read are none (logged).
fn held_ids(set: &DocSet, keep: impl Fn(&DocId) -> bool) -> Vec<DocId> {
    match set.ids() {
        Ok(ids) => ids.into_iter().filter(|id| keep(id)).collect(),
        Err(error) => {
            tracing::error!(%error, "reading the hub's documents");
            Vec::new()
        }
    }
}

impl DocHost for HubDocs {
    fn docs(&self) -> &Mutex<DocSet> {
        &self.set
    }

    /// By the rulebook: a store's settings only from that store's tills (as enrolled), a
    /// campaign only from the till whose journal created it.
    fn may_change(&self, peer: fusion_sync::net::EndpointId, doc: &DocId) -> bool {
        doc.may_be_changed_by(
            &peer.to_string(),
            false,
            || {
                let store = self.store.enrollment(peer).ok().flatten()?;
                StoreId::new(store).ok()
            },
            |campaign| self.store.campaign_owner(campaign).ok().flatten(),
        )
    }

    fn is_hub(&self, _peer: fusion_sync::net::EndpointId) -> bool {
        false
    }

    fn refuse(&self, rule: &'static str) {
        self.store.count_refusal(rule);
    }

    fn subscribe(&self) -> broadcast::Receiver<Changed> {
        self.changes.subscribe()
    }

    fn changed(&self, docs: Vec<DocId>) -> BoxFuture<'_, Result<(), String>> {
        let result = (|| {
            let mut set = self.lock();
            let chunks = set.take_chunks();
            let now = self.store.now();
            if let Err(e) = self
                .store
                .commit_docs(&chunks, &self.origin, Vec::new(), now)
            {
                set.chunks_lost(&chunks);
                return Err(e.to_string());
            }
            set.chunks_stored(&chunks);
            Ok(())
        })();
        if result.is_ok() {
            let _ = self.changes.send(docs.into());
        }
        Box::pin(std::future::ready(result))
    }
}
