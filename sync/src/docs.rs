//! Shared state as automerge documents: one document per aggregate (today: per product), so no
//! document grows with the catalog, and concurrent edits at the hub and at the stores merge
//! deterministically on every replica.
//!
//! - [`DocId`] names a document (`product/<uuid>`, `campaign/<uuid>`, `settings/<store id>`);
//!   ids from a peer are validated.
//! - [`StoreSettings`]: a store's shared settings (name, payment hold, card floor limit), a key
//!   each, set at the hub or at a till.
//! - [`CampaignDoc`]: a campaign's definition, written once by the till that owns the campaign,
//!   and its status as the owner last recorded it; other tills and the hub read it.
//! - [`Product`] is what a product document holds, one automerge map key per field, so a
//!   price edit at the hub and a description edit at a store are both kept. Concurrent writes of
//!   the *same* field resolve as automerge resolves them: the operation with the greater
//!   (counter, actor) wins, the same on every replica. A price is one key (`"USD:1999"`), so
//!   amount and currency can never mix from two edits.
//! - [`DocSet`] holds a host's documents — every document's heads, and in memory those used
//!   lately, within a byte budget, loaded from the host's store when needed — and turns their
//!   changes into [`Chunk`]s for the host to persist: incremental saves, replaced by one
//!   compacted save every [`COMPACT_AFTER`] chunks, each with the document's heads.
//!
//! No I/O here: hosts store chunks in their redb file, and `net` carries sync messages.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT, ReadDoc, ScalarValue, Value};
use fusion_contracts::events::campaigns::{CampaignSnapshot, CampaignStatus};
use fusion_contracts::events::{Product, ProductStatus};
use fusion_contracts::http::SettingsChange;
use fusion_contracts::{CampaignId, Currency, Money, NodeId, ProductId, Sku, StoreId, Timestamp};
use serde::{Deserialize, Serialize};

pub use automerge::ChangeHash;
pub use automerge::sync::State as SyncState;

/// After this many incremental chunks a document is saved whole (compacted) instead.
pub const COMPACT_AFTER: u32 = 32;
/// Longest document id accepted from a peer.
const DOC_ID_BYTES_MAX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("invalid document id {0:?}")]
    InvalidId(String),
    #[error("document {doc}: {reason}")]
    Automerge { doc: String, reason: String },
}

/// The name of a shared document: `<kind>/<key>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocId(String);

const PRODUCT_PREFIX: &str = "product/";
const CAMPAIGN_PREFIX: &str = "campaign/";
const SETTINGS_PREFIX: &str = "settings/";

impl DocId {
    pub fn product(id: ProductId) -> Self {
        Self(format!("{PRODUCT_PREFIX}{id}"))
    }

    pub fn campaign(id: CampaignId) -> Self {
        Self(format!("{CAMPAIGN_PREFIX}{id}"))
    }

    pub fn parse(text: &str) -> Result<Self, DocError> {
        let invalid = || DocError::InvalidId(text.chars().take(DOC_ID_BYTES_MAX).collect());
        if text.len() > DOC_ID_BYTES_MAX {
            return Err(invalid());
        }
        let id = Self(text.to_string());
        if id.product_id().is_some() || id.campaign_id().is_some() || id.store_id().is_some() {
            Ok(id)
        } else {
            Err(invalid())
        }
    }

    /// The product a product document describes.
    pub fn product_id(&self) -> Option<ProductId> {
        self.uuid_after(PRODUCT_PREFIX).map(ProductId)
    }

    /// The campaign a campaign document defines.
    pub fn campaign_id(&self) -> Option<CampaignId> {
        self.uuid_after(CAMPAIGN_PREFIX).map(CampaignId)
    }

    /// The settings of a store.
    pub fn settings(store: &StoreId) -> Self {
        Self(format!("{SETTINGS_PREFIX}{store}"))
    }

    /// Whether the peer at `endpoint` may change this document, by the rulebook
    /// (`fusion_rules::authority::may_change_doc`). What the kind of document needs is looked
    /// up only then: the peer's store (`peer_store`) for a store's settings, the endpoint of
    /// the till whose journal created a campaign (`campaign_owner`) for a campaign.
    pub fn may_be_changed_by(
        &self,
        endpoint: &str,
        is_hub: bool,
        peer_store: impl FnOnce() -> Option<StoreId>,
        campaign_owner: impl FnOnce(CampaignId) -> Option<String>,
    ) -> bool {
        use fusion_rules::authority::{DocOwner, DocPeer, may_change_doc};
        let (doc_store, owner_endpoint): (StoreId, Option<String>);
        let mut store_of_peer = None;
        let owner = if let Some(store) = self.store_id() {
            doc_store = store;
            store_of_peer = peer_store();
            DocOwner::Store(&doc_store)
        } else if let Some(campaign) = self.campaign_id() {
            owner_endpoint = campaign_owner(campaign);
            DocOwner::Till(owner_endpoint.as_deref())
        } else {
            DocOwner::Fleet
        };
        let peer = DocPeer {
            endpoint,
            store: store_of_peer.as_ref(),
            is_hub,
        };
        may_change_doc(owner, peer)
    }

    /// The store a settings document belongs to.
    pub fn store_id(&self) -> Option<StoreId> {
        StoreId::new(self.0.strip_prefix(SETTINGS_PREFIX)?).ok()
    }

    fn uuid_after(&self, prefix: &str) -> Option<uuid::Uuid> {
        let key = self.0.strip_prefix(prefix)?;
        let uuid = uuid::Uuid::parse_str(key).ok()?;
        // Only the canonical spelling, so one aggregate has one document.
        (uuid.hyphenated().to_string() == key).then_some(uuid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DocId {
    type Error = DocError;
    fn try_from(value: String) -> Result<Self, DocError> {
        DocId::parse(&value)
    }
}

impl From<DocId> for String {
    fn from(id: DocId) -> String {
        id.0
    }
}

impl std::fmt::Display for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One editable field of a product document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductField {
    Name,
    Description,
    Price,
    Status,
    TaxClass,
    Category,
}

impl ProductField {
    /// The field a `product.updated` event's `changed` entry names (`currency` is the price).
    pub fn from_changed(name: &str) -> Option<Self> {
        match name {
            "name" => Some(Self::Name),
            "description" => Some(Self::Description),
            "price" | "currency" => Some(Self::Price),
            "status" => Some(Self::Status),
            "taxClass" => Some(Self::TaxClass),
            "category" => Some(Self::Category),
            _ => None,
        }
    }
}

fn price_text(price: &Money) -> String {
    format!("{}:{}", price.currency.code(), price.minor)
}

fn parse_price(text: &str) -> Option<Money> {
    let (code, minor) = text.split_once(':')?;
    Some(Money {
        minor: minor.parse().ok().filter(|m: &i64| *m >= 0)?,
        currency: Currency::parse(code).ok()?,
    })
}

fn status_text(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "active",
        ProductStatus::Archived => "archived",
    }
}

/// Writes a new product: every field, once. Identity fields (id, sku, created_at) are never
/// written again.
pub fn create_product(doc: &mut AutoCommit, p: &Product) -> Result<(), DocError> {
    put(doc, "id", p.id.to_string())?;
    put(doc, "sku", p.sku.as_str())?;
    put(doc, "created_at", p.created_at.unix_ms())?;
    update_product(
        doc,
        p,
        &[
            ProductField::Name,
            ProductField::Description,
            ProductField::Price,
            ProductField::Status,
            ProductField::TaxClass,
            ProductField::Category,
        ],
    )
}

/// Writes only `fields` (and `updated_at`): a field this replica did not change is not written,
/// so a concurrent edit of it elsewhere is kept.
pub fn update_product(
    doc: &mut AutoCommit,
    p: &Product,
    fields: &[ProductField],
) -> Result<(), DocError> {
    for field in fields {
        match field {
            ProductField::Name => put(doc, "name", p.name.as_str())?,
            ProductField::Description => match &p.description {
                Some(d) => put(doc, "description", d.as_str())?,
                None => put(doc, "description", ScalarValue::Null)?,
            },
            ProductField::Price => put(doc, "price", price_text(&p.price))?,
            ProductField::Status => put(doc, "status", status_text(p.status))?,
            ProductField::TaxClass => match &p.tax_class {
                Some(c) => put(doc, "tax_class", c.as_str())?,
                None => put(doc, "tax_class", ScalarValue::Null)?,
            },
            ProductField::Category => match &p.category {
                Some(c) => put(doc, "category", c.as_str())?,
                None => put(doc, "category", ScalarValue::Null)?,
            },
        }
    }
    put(doc, "updated_at", p.updated_at.unix_ms())?;
    doc.commit();
    Ok(())
}

fn put(doc: &mut AutoCommit, key: &str, value: impl Into<ScalarValue>) -> Result<(), DocError> {
    doc.put(ROOT, key, value.into())
        .map_err(|e| DocError::Automerge {
            doc: key.to_string(),
            reason: e.to_string(),
        })
}

fn scalar(doc: &AutoCommit, key: &str) -> Option<ScalarValue> {
    match doc.get(ROOT, key).ok()?? {
        (Value::Scalar(s), _) => Some(s.into_owned()),
        _ => None,
    }
}

fn text(doc: &AutoCommit, key: &str) -> Option<String> {
    match scalar(doc, key)? {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn int(doc: &AutoCommit, key: &str) -> Option<i64> {
    match scalar(doc, key)? {
        ScalarValue::Int(i) => Some(i),
        _ => None,
    }
}

/// The product a document describes, or `None` while it is incomplete or holds values this
/// build cannot read (a peer's document is untrusted: never a panic).
pub fn read_product(doc: &AutoCommit, id: ProductId) -> Option<Product> {
    if text(doc, "id")? != id.to_string() {
        return None;
    }
    let description = match scalar(doc, "description")? {
        ScalarValue::Null => None,
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => return None,
    };
    let status = match text(doc, "status")?.as_str() {
        "active" => ProductStatus::Active,
        "archived" => ProductStatus::Archived,
        _ => return None,
    };
    Some(Product {
        id,
        sku: Sku::new(text(doc, "sku")?).ok()?,
        name: text(doc, "name")?,
        description,
        price: parse_price(&text(doc, "price")?)?,
        status,
        created_at: Timestamp::from_unix_ms(int(doc, "created_at")?),
        updated_at: Timestamp::from_unix_ms(int(doc, "updated_at")?),
        // Absent in documents from before them; a value no edit could write reads as unset.
        tax_class: text(doc, "tax_class")
            .filter(|c| fusion_contracts::http::tax_class("taxClass", c).is_ok()),
        category: text(doc, "category").filter(|c| {
            !c.trim().is_empty()
                && c.chars().count() <= fusion_contracts::commands::CATEGORY_LEN_MAX
        }),
    })
}

/// Runs automerge on untrusted bytes. Some malformed input makes automerge 0.12's column
/// decoders panic (hexane 1.0.0-alpha.5 unwraps; found by `fuzz/doc_message`): such a panic is
/// an error here, so a peer's bytes never take a node down.
fn guarded<T>(doc: &DocId, f: impl FnOnce() -> Result<T, String>) -> Result<T, DocError> {
    let error = |reason: String| DocError::Automerge {
        doc: doc.to_string(),
        reason,
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(error),
        Err(_) => Err(error(
            "malformed input (the automerge decoder panicked)".into(),
        )),
    }
}

/// A campaign as its document holds it: the definition its owner (the till that created it, which
/// runs its joins and its close) wrote once, and the status the owner last recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignDoc {
    pub owner: NodeId,
    pub campaign: CampaignSnapshot,
}

fn status_name(status: CampaignStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Writes a campaign's definition (first time) or its status. Only the owner writes a campaign
/// document, so its keys are never edited concurrently. Joins and leaves are not written: the
/// participant count is recorded with each status change (a hot counter stays out of the
/// document).
pub fn write_campaign(doc: &mut AutoCommit, c: &CampaignDoc) -> Result<(), DocError> {
    if scalar(doc, "definition").is_none() {
        let definition = serde_json::to_string(&c.campaign).map_err(|e| DocError::Automerge {
            doc: "definition".into(),
            reason: e.to_string(),
        })?;
        put(doc, "id", c.campaign.id.to_string())?;
        put(doc, "owner", c.owner.as_str())?;
        put(doc, "definition", definition)?;
    }
    put(doc, "status", status_name(c.campaign.status))?;
    put(
        doc,
        "participants",
        i64::from(c.campaign.actual_participants),
    )?;
    put(doc, "updated_at", c.campaign.updated_at.unix_ms())?;
    doc.commit();
    Ok(())
}

/// The campaign a document describes, or `None` while it is incomplete or unreadable.
pub fn read_campaign(doc: &AutoCommit, id: CampaignId) -> Option<CampaignDoc> {
    if text(doc, "id")? != id.to_string() {
        return None;
    }
    let mut campaign: CampaignSnapshot = serde_json::from_str(&text(doc, "definition")?).ok()?;
    if campaign.id != id {
        return None;
    }
    campaign.status =
        serde_json::from_value(serde_json::Value::String(text(doc, "status")?)).ok()?;
    campaign.actual_participants = u32::try_from(int(doc, "participants")?).ok()?;
    campaign.updated_at = Timestamp::from_unix_ms(int(doc, "updated_at")?);
    Some(CampaignDoc {
        owner: NodeId::new(text(doc, "owner")?).ok()?,
        campaign,
    })
}

/// A store's shared settings: set at the hub or at any of its tills, the same on every till of
/// the store. `None`: unset (the node's flags apply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreSettings {
    pub name: Option<String>,
    /// The store's address as receipts print it (lines separated by newlines).
    pub address: Option<String>,
    /// 0: an unpaid order holds its stock until paid.
    pub order_hold_secs: Option<u64>,
    pub card_floor_limit: Option<Money>,
    /// Skus whose orders a till may take past its stock, as backorders.
    pub backorder_skus: BTreeSet<Sku>,
    /// Catalog prices include tax (`None`: unset, as `false`).
    pub prices_include_tax: Option<bool>,
    /// Tax class → rate in parts per million; empty: the store charges no tax.
    pub tax_rates: std::collections::BTreeMap<String, u32>,
    /// A discount above this share (parts per million) of what it applies to needs a
    /// manager; `None`: 10 %.
    pub discount_approval_ppm: Option<u32>,
    /// The store's promotions, by id.
    pub promotions: Vec<fusion_contracts::pricing::Promotion>,
    /// A return refunding more needs a manager; `None`: no limit.
    pub return_approval_amount: Option<Money>,
    /// Tills refuse sales while their drawer is closed (`None`: unset, as `false`).
    pub require_open_session: Option<bool>,
    /// The store's staff, by id; their PINs only as argon2 hashes. Never in an answer.
    pub staff: BTreeMap<fusion_contracts::StaffId, fusion_contracts::http::staff::StaffRecord>,
}

impl StoreSettings {
    /// The store's taxes as orders are taxed by them; `None` when it charges none (no rates).
    /// Prices include tax only when the settings say so.
    pub fn taxes(&self) -> Option<fusion_rules::tax::Taxes> {
        use fusion_rules::tax::{Prices, Taxes};
        (!self.tax_rates.is_empty()).then(|| Taxes {
            prices: if self.prices_include_tax == Some(true) {
                Prices::Inclusive
            } else {
                Prices::Exclusive
            },
            rates: self.tax_rates.clone(),
        })
    }

    /// A discount above this share (ppm) of what it applies to needs a manager.
    pub fn discount_approval_ppm(&self) -> u32 {
        self.discount_approval_ppm
            .unwrap_or(fusion_rules::pricing::DISCOUNT_APPROVAL_PPM_DEFAULT)
    }

    /// The settings as `GET /settings` shows them, at the node and at the hub.
    pub fn response(
        self,
        store_id: Option<fusion_contracts::StoreId>,
    ) -> fusion_contracts::http::SettingsResponse {
        fusion_contracts::http::SettingsResponse {
            taxes: self.taxes_body(),
            discount_approval_percent: Some(fusion_contracts::http::rate_percent(
                self.discount_approval_ppm(),
            )),
            store_id,
            name: self.name,
            address: self.address,
            order_hold_secs: self.order_hold_secs,
            card_floor_limit: self.card_floor_limit.map(Into::into),
            backorder_skus: self.backorder_skus.into_iter().collect(),
            return_approval_amount: self.return_approval_amount.map(Into::into),
            require_open_session: self.require_open_session,
        }
    }

    /// The store's taxes as `GET /settings` shows them; `None` when it charges none.
    pub fn taxes_body(&self) -> Option<fusion_contracts::http::TaxesBody> {
        if self.tax_rates.is_empty() && self.prices_include_tax.is_none() {
            return None;
        }
        Some(fusion_contracts::http::TaxesBody {
            prices_include_tax: self.prices_include_tax.unwrap_or(false),
            rates: self
                .tax_rates
                .iter()
                .map(|(class, ppm)| (class.clone(), fusion_contracts::http::rate_percent(*ppm)))
                .collect(),
        })
    }
}

/// The settings key of a promotion (its JSON `PromotionBody`): one key per promotion.
const PROMOTION_PREFIX: &str = "promotion:";

/// The settings key of a staff member (their JSON `StaffRecord`): one key per member.
const STAFF_PREFIX: &str = "staff:";

/// The settings key of a tax class's rate (parts per million): one key per class.
const TAX_RATE_PREFIX: &str = "tax_rate:";

/// The settings key of a sku's backorder policy: one key per sku, so concurrent changes of
/// different skus are all kept.
const BACKORDER_PREFIX: &str = "backorder:";

/// Applies a change to a store's settings document: only the fields it names are written
/// (`null` for an unset one), so concurrent changes of different fields are all kept.
pub fn write_settings(doc: &mut AutoCommit, change: &SettingsChange) -> Result<(), DocError> {
    let null = || ScalarValue::Null;
    if let Some(name) = &change.name {
        match name {
            Some(n) => put(doc, "name", n.as_str())?,
            None => put(doc, "name", null())?,
        }
    }
    if let Some(address) = &change.address {
        match address {
            Some(a) => put(doc, "address", a.as_str())?,
            None => put(doc, "address", null())?,
        }
    }
    if let Some(secs) = change.order_hold_secs {
        match secs {
            Some(s) => put(doc, "order_hold_secs", i64::try_from(s).unwrap_or(i64::MAX))?,
            None => put(doc, "order_hold_secs", null())?,
        }
    }
    if let Some(limit) = &change.card_floor_limit {
        match limit {
            Some(m) => put(doc, "card_floor_limit", price_text(m))?,
            None => put(doc, "card_floor_limit", null())?,
        }
    }
    for (sku, allowed) in &change.backorders {
        put(doc, &format!("{BACKORDER_PREFIX}{sku}"), *allowed)?;
    }
    if let Some(inclusive) = change.prices_include_tax {
        put(doc, "prices_include_tax", inclusive)?;
    }
    for (class, rate) in &change.tax_rates {
        let key = format!("{TAX_RATE_PREFIX}{class}");
        match rate {
            Some(ppm) => put(doc, &key, i64::from(*ppm))?,
            None => put(doc, &key, null())?,
        }
    }
    if let Some(limit) = &change.return_approval_amount {
        match limit {
            Some(m) => put(doc, "return_approval_amount", price_text(m))?,
            None => put(doc, "return_approval_amount", null())?,
        }
    }
    if let Some(required) = change.require_open_session {
        put(doc, "require_open_session", required)?;
    }
    if let Some(ppm) = change.discount_approval_ppm {
        match ppm {
            Some(p) => put(doc, "discount_approval_ppm", i64::from(p))?,
            None => put(doc, "discount_approval_ppm", null())?,
        }
    }
    for (id, promotion) in &change.promotions {
        let key = format!("{PROMOTION_PREFIX}{id}");
        match promotion {
            Some(p) => {
                let body = fusion_contracts::pricing::PromotionBody::from(p);
                let json = serde_json::to_string(&body).expect("a promotion body is JSON");
                put(doc, &key, json)?
            }
            None => put(doc, &key, null())?,
        }
    }
    for (id, record) in &change.staff {
        let json = serde_json::to_string(record).expect("a staff record is JSON");
        put(doc, &format!("{STAFF_PREFIX}{id}"), json)?;
    }
    doc.commit();
    Ok(())
}

/// A store's settings as its document holds them; unreadable values read as unset.
pub fn read_settings(doc: &AutoCommit) -> StoreSettings {
    StoreSettings {
        name: text(doc, "name"),
        address: text(doc, "address"),
        order_hold_secs: int(doc, "order_hold_secs").and_then(|s| u64::try_from(s).ok()),
        card_floor_limit: text(doc, "card_floor_limit").and_then(|t| parse_price(&t)),
        backorder_skus: doc
            .keys(ROOT)
            .filter_map(|key| {
                let sku = key.strip_prefix(BACKORDER_PREFIX)?;
                matches!(scalar(doc, &key)?, ScalarValue::Boolean(true))
                    .then(|| Sku::new(sku).ok())
                    .flatten()
            })
            .collect(),
        prices_include_tax: match scalar(doc, "prices_include_tax") {
            Some(ScalarValue::Boolean(b)) => Some(b),
            _ => None,
        },
        // A rate no settings change could write (a peer's document) reads as unset.
        tax_rates: doc
            .keys(ROOT)
            .filter_map(|key| {
                let class = key.strip_prefix(TAX_RATE_PREFIX)?;
                let ppm = u32::try_from(int(doc, &key)?).ok()?;
                (ppm <= fusion_contracts::http::RATE_PPM_MAX).then(|| (class.to_string(), ppm))
            })
            .collect(),
        return_approval_amount: text(doc, "return_approval_amount").and_then(|t| parse_price(&t)),
        require_open_session: match scalar(doc, "require_open_session") {
            Some(ScalarValue::Boolean(b)) => Some(b),
            _ => None,
        },
        discount_approval_ppm: int(doc, "discount_approval_ppm")
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p <= fusion_contracts::http::RATE_PPM_MAX),
        // A promotion a peer wrote that this build cannot read, or that is invalid, is ignored.
        promotions: doc
            .keys(ROOT)
            .filter_map(|key| {
                let id = fusion_contracts::PromotionId(
                    uuid::Uuid::parse_str(key.strip_prefix(PROMOTION_PREFIX)?).ok()?,
                );
                let body: fusion_contracts::pricing::PromotionBody =
                    serde_json::from_str(&text(doc, &key)?).ok()?;
                body.into_promotion(id).ok().filter(|p| p.id == id)
            })
            .take(fusion_contracts::pricing::PROMOTIONS_MAX)
            .collect(),
        // A member a peer wrote that this build cannot read is ignored.
        staff: doc
            .keys(ROOT)
            .filter_map(|key| {
                let id = fusion_contracts::StaffId::new(key.strip_prefix(STAFF_PREFIX)?).ok()?;
                let record = serde_json::from_str(&text(doc, &key)?).ok()?;
                Some((id, record))
            })
            .take(fusion_contracts::http::staff::STAFF_MAX)
            .collect(),
    }
}

/// What a host writes to keep a document durable. Chunk 0 is a whole save; chunks 1, 2, … are
/// incremental saves after it. `Compacted` replaces all of a document's chunks with chunk 0.
/// Each carries the document's heads after it: the host stores them beside the chunks, so a
/// sync session compares heads without loading the document ([`DocSet::open`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    Append {
        doc: DocId,
        index: u32,
        bytes: Vec<u8>,
        heads: Vec<ChangeHash>,
    },
    Compacted {
        doc: DocId,
        bytes: Vec<u8>,
        heads: Vec<ChangeHash>,
    },
}

impl Chunk {
    pub fn doc(&self) -> &DocId {
        match self {
            Chunk::Append { doc, .. } | Chunk::Compacted { doc, .. } => doc,
        }
    }

    /// The document's heads once this chunk is stored.
    pub fn heads(&self) -> &[ChangeHash] {
        match self {
            Chunk::Append { heads, .. } | Chunk::Compacted { heads, .. } => heads,
        }
    }
}

/// Heads as stored: their 32-byte hashes one after another.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

/// Stored heads back; `None` when the bytes are not whole hashes.
pub fn decode_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .map(|c| ChangeHash(c.try_into().expect("32 bytes")))
            .collect(),
    )
}

/// Documents changed together (by one commit), as hosts announce them to their sessions.
pub type Changed = std::sync::Arc<[DocId]>;

/// The heads of stored documents, from their `(document id, chunk)` rows in key order, one
/// document loaded at a time (`found` gets each): how a host fills its heads table once from
/// chunks stored before it kept one. Returns how many documents it read.
pub fn heads_of_rows(
    actor: &[u8],
    rows: impl IntoIterator<Item = Result<(String, Vec<u8>), String>>,
    mut found: impl FnMut(&DocId, &[ChangeHash]) -> Result<(), String>,
) -> Result<u64, String> {
    let mut current: Option<(String, Vec<Vec<u8>>)> = None;
    let mut read = 0u64;
    let mut flush = |doc: Option<(String, Vec<Vec<u8>>)>| -> Result<(), String> {
        let Some((id, chunks)) = doc else {
            return Ok(());
        };
        let id = DocId::parse(&id).map_err(|e| e.to_string())?;
        let mut one = DocSet::new(actor);
        one.load(id.clone(), &chunks).map_err(|e| e.to_string())?;
        read += 1;
        found(&id, &one.heads(&id))
    };
    for row in rows {
        let (id, bytes) = row?;
        match &mut current {
            Some((held, chunks)) if *held == id => chunks.push(bytes),
            _ => flush(current.replace((id, vec![bytes])))?,
        }
    }
    flush(current.take())?;
    Ok(read)
}

/// What a host committed of its documents, where a [`DocSet`] reads what it does not hold in
/// memory: their chunks and the heads stored beside them ([`stored::StoredDocs`] over redb).
/// Called with the set's lock held, so it must not wait for the host's writer (read a
/// committed snapshot). Each method answers for many documents at once (one snapshot).
pub trait DocSource: Send + Sync {
    /// The chunks of each of `docs`, in index order (empty: not stored).
    fn chunks(&self, docs: &[DocId]) -> Result<Vec<Vec<Vec<u8>>>, String>;
    /// The stored heads of each of `docs` (`None`: not stored).
    fn heads(&self, docs: &[DocId]) -> Result<Vec<Option<Vec<ChangeHash>>>, String>;
    /// Up to `limit` stored documents after `after` (from the first when `None`), in id order,
    /// with their heads.
    fn heads_after(
        &self,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<Vec<(DocId, Vec<ChangeHash>)>, String>;
    /// How many documents are stored.
    fn count(&self) -> Result<u64, String>;
}

#[cfg(feature = "redb")]
pub mod stored;

/// Memory a loaded document is reckoned to take per byte of its stored chunks: automerge's
/// in-memory form of a product document measured about 40 times its saved size here (23 KB
/// against ~600 bytes), so a budget in bytes bounds the resident set.
pub const MEMORY_PER_STORED_BYTE: usize = 40;
/// What a loaded document is reckoned to take at least, whatever its saved size.
const LOADED_MIN_BYTES: usize = 4 * 1024;
/// The loaded documents' budget when the host gives none: enough for the store's settings, its
/// campaigns and the products a day's selling touches, small against a till's memory.
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

struct Entry {
    doc: AutoCommit,
    /// Index of the next chunk; 0 while nothing of the document is stored.
    next_chunk: u32,
    /// The last chunk taken may not have been stored: save whole next time.
    unsure: bool,
    /// What it is reckoned to take in memory.
    cost: usize,
    /// Its place in the least-recently-used order.
    used: u64,
}

/// A host's documents: the heads of every one it holds (what a sync session compares), and
/// those loaded in memory — every one of them, or, opened over a [`DocSource`], those used
/// lately within a byte budget (least recently used evicted first; a document with changes
/// not yet stored is never evicted), with the heads of the others read from the source, so
/// its memory does not grow with the catalog. Turns changes into [`Chunk`]s for the host to
/// persist.
pub struct DocSet {
    actor: ActorId,
    /// The heads of documents changed since their chunks were stored (all of them, without a
    /// source): the source has every other document's.
    heads: BTreeMap<DocId, Vec<ChangeHash>>,
    loaded: BTreeMap<DocId, Entry>,
    /// Loaded documents by last use.
    order: BTreeMap<u64, DocId>,
    tick: u64,
    /// None: every document stays loaded (nothing to reload from).
    source: Option<Box<dyn DocSource>>,
    budget: usize,
    cost: usize,
    /// Changed since their chunks were last taken.
    unsaved: BTreeSet<DocId>,
    /// Chunks taken, not yet known to be stored ([`DocSet::chunks_stored`]).
    in_flight: BTreeSet<DocId>,
    /// Documents loaded from the source since the set was made.
    loads: u64,
    /// Documents asked of peers whole and not arrived yet, and arrived so far.
    fetching: u64,
    fetched: u64,
}

impl DocSet {
    /// `actor` is this replica's stable automerge actor (its endpoint id, say): the tie-breaker
    /// of concurrent writes to one field. Everything stays in memory.
    pub fn new(actor: &[u8]) -> Self {
        Self {
            actor: ActorId::from(actor),
            heads: BTreeMap::new(),
            loaded: BTreeMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            source: None,
            budget: usize::MAX,
            cost: 0,
            unsaved: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            loads: 0,
            fetching: 0,
            fetched: 0,
        }
    }

    /// A set over a host's stored documents that reads nothing until used: `source` has
    /// their chunks and heads, `budget` bounds the memory of the loaded ones.
    pub fn open(actor: &[u8], source: Box<dyn DocSource>, budget: usize) -> Self {
        let mut set = Self::new(actor);
        set.source = Some(source);
        set.budget = budget;
        set
    }

    /// Loads a stored document from its chunks, in index order.
    pub fn load(&mut self, id: DocId, chunks: &[Vec<u8>]) -> Result<(), DocError> {
        let (entry, heads) = self.read(&id, chunks)?;
        self.heads.insert(id.clone(), heads);
        self.insert(id, entry);
        Ok(())
    }

    /// A document from its chunks, and its heads.
    fn read(&self, id: &DocId, chunks: &[Vec<u8>]) -> Result<(Entry, Vec<ChangeHash>), DocError> {
        let mut doc = AutoCommit::new().with_actor(self.actor.clone());
        for chunk in chunks {
            guarded(id, || {
                doc.load_incremental(chunk).map_err(|e| e.to_string())
            })?;
        }
        // What is loaded is stored already: the next incremental save starts after it.
        doc.save_incremental();
        let heads = doc.get_heads();
        let stored: usize = chunks.iter().map(Vec::len).sum();
        let entry = Entry {
            doc,
            next_chunk: chunks.len() as u32,
            unsure: false,
            cost: (stored * MEMORY_PER_STORED_BYTE).max(LOADED_MIN_BYTES),
            used: 0,
        };
        Ok((entry, heads))
    }

    fn insert(&mut self, id: DocId, mut entry: Entry) {
        self.tick += 1;
        entry.used = self.tick;
        self.order.insert(self.tick, id.clone());
        self.cost += entry.cost;
        if let Some(old) = self.loaded.insert(id, entry) {
            self.order.remove(&old.used);
            self.cost -= old.cost;
        }
    }

    /// The loaded entry of `id`, reading it from the source if it is held but not loaded;
    /// `None` when the set does not hold it. Makes room first.
    fn entry(&mut self, id: &DocId) -> Result<Option<&mut Entry>, DocError> {
        if let Some(entry) = self.loaded.get_mut(id) {
            self.order.remove(&entry.used);
            self.tick += 1;
            entry.used = self.tick;
            self.order.insert(self.tick, id.clone());
            return Ok(self.loaded.get_mut(id));
        }
        let Some(source) = &self.source else {
            return Ok(None);
        };
        let chunks = source
            .chunks(std::slice::from_ref(id))
            .map_err(|reason| source_failed(id, reason))?
            .pop()
            .unwrap_or_default();
        if chunks.is_empty() {
            return Ok(None);
        }
        let (entry, _) = self.read(id, &chunks)?;
        self.loads += 1;
        self.make_room(entry.cost);
        self.insert(id.clone(), entry);
        Ok(self.loaded.get_mut(id))
    }

    /// The entry of `id`, created empty when the set does not hold it.
    fn entry_or_new(&mut self, id: &DocId) -> Result<&mut Entry, DocError> {
        if self.entry(id)?.is_none() {
            let entry = Entry {
                doc: AutoCommit::new().with_actor(self.actor.clone()),
                next_chunk: 0,
                unsure: false,
                cost: LOADED_MIN_BYTES,
                used: 0,
            };
            self.make_room(entry.cost);
            self.insert(id.clone(), entry);
        }
        Ok(self.loaded.get_mut(id).expect("inserted above"))
    }

    /// Evicts the least recently used documents that are stored until `more` fits the budget
    /// (only when there is a source to load them again).
    fn make_room(&mut self, more: usize) {
        if self.source.is_none() {
            return;
        }
        let mut pinned = Vec::new();
        while self.cost + more > self.budget {
            let Some((used, id)) = self.order.pop_first() else {
                break;
            };
            if self.unsaved.contains(&id) || self.in_flight.contains(&id) {
                pinned.push((used, id));
                continue;
            }
            if let Some(entry) = self.loaded.remove(&id) {
                self.cost -= entry.cost;
            }
        }
        self.order.extend(pinned);
    }

    /// The document, loading it if it is held but not loaded; `None` when the set does not
    /// hold it. An error: its stored chunks could not be read.
    pub fn try_get(&mut self, id: &DocId) -> Result<Option<&AutoCommit>, DocError> {
        Ok(self.entry(id)?.map(|e| &e.doc))
    }

    /// The heads of the document itself, loading it (to check the heads stored beside its
    /// chunks); `None` when the set does not hold it.
    pub fn document_heads(&mut self, id: &DocId) -> Result<Option<Vec<ChangeHash>>, DocError> {
        Ok(self.entry(id)?.map(|e| e.doc.get_heads()))
    }

    /// [`DocSet::try_get`], with a document whose chunks cannot be read as not readable.
    pub fn get(&mut self, id: &DocId) -> Option<&AutoCommit> {
        self.try_get(id).ok().flatten()
    }

    /// Whether the set holds `id` (a document with content, or one this host made); one
    /// that cannot be read is not held.
    pub fn holds(&self, id: &DocId) -> bool {
        self.loaded.contains_key(id)
            || self
                .heads_of(std::slice::from_ref(id))
                .is_ok_and(|h| h[0].is_some())
    }

    /// The stored heads of `ids` (`None`: not stored); none without a source.
    fn stored_heads(&self, ids: &[DocId]) -> Result<Vec<Option<Vec<ChangeHash>>>, DocError> {
        match &self.source {
            Some(source) if !ids.is_empty() => source
                .heads(ids)
                .map_err(|reason| source_failed(&ids[0], reason)),
            _ => Ok(vec![None; ids.len()]),
        }
    }

    /// Every document held, loaded or not, in id order (read from the source a page at a
    /// time).
    pub fn ids(&self) -> Result<Vec<DocId>, DocError> {
        let mut ids = Vec::new();
        let mut after: Option<DocId> = None;
        loop {
            let page = self.heads_page(after.as_ref(), 4096)?;
            let Some((last, _)) = page.last() else {
                return Ok(ids);
            };
            after = Some(last.clone());
            ids.extend(page.into_iter().map(|(id, _)| id));
        }
    }

    /// How many documents are held, loaded, and were loaded from the source so far, and the
    /// loaded ones' reckoned memory.
    pub fn stats(&self) -> DocStats {
        // Held: what is stored, and what was made or received here and is not stored yet.
        let unstored: Vec<DocId> = self.heads.keys().cloned().collect();
        let not_stored = self
            .stored_heads(&unstored)
            .map(|h| h.iter().filter(|h| h.is_none()).count())
            .unwrap_or(0);
        let stored = match &self.source {
            Some(source) => source.count().unwrap_or(0) as usize,
            None => 0,
        };
        DocStats {
            held: stored + not_stored,
            loaded: self.loaded.len(),
            loads: self.loads,
            loaded_bytes: self.cost,
            budget_bytes: self.budget,
            fetching: self.fetching,
            fetched: self.fetched,
        }
    }

    /// A session asked a peer for `n` documents whole ([`DocSet::receive_save`] takes them).
    pub fn fetch_asked(&mut self, n: usize) {
        self.fetching += n as u64;
    }

    /// `arrived` of the documents a session asked for came, and `abandoned` never will (the
    /// session ended): the progress `stats` reports.
    pub fn fetch_settled(&mut self, arrived: usize, abandoned: usize) {
        let settled = (arrived + abandoned) as u64;
        self.fetching = self.fetching.saturating_sub(settled);
        self.fetched += arrived as u64;
    }

    /// Edits a document (loading it, or creating it empty if new); it is persisted with the
    /// next chunks. An error: the stored document could not be read, or `f`'s own.
    pub fn edit<R>(
        &mut self,
        id: &DocId,
        f: impl FnOnce(&mut AutoCommit) -> Result<R, DocError>,
    ) -> Result<R, DocError> {
        let entry = self.entry_or_new(id)?;
        let out = f(&mut entry.doc);
        entry.doc.commit();
        let heads = entry.doc.get_heads();
        self.heads.insert(id.clone(), heads);
        self.unsaved.insert(id.clone());
        out
    }

    /// The heads of about `limit` documents after `after` (from the first when `None`), in id
    /// order, for a peer to compare with its own: loads nothing. An empty page: no more.
    pub fn heads_page(
        &self,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<Vec<(DocId, Vec<ChangeHash>)>, DocError> {
        use std::ops::Bound;
        let stored = match &self.source {
            Some(source) => source
                .heads_after(after, limit)
                .map_err(|reason| source_failed(after.unwrap_or(&DocId(String::new())), reason))?,
            None => Vec::new(),
        };
        // Documents changed here and not stored yet count within the page's range (to its
        // end, the last page).
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let end = match stored.last() {
            Some((last, _)) if stored.len() >= limit => Bound::Included(last.clone()),
            _ => Bound::Unbounded,
        };
        let end = end.as_ref();
        let mut page: BTreeMap<DocId, Vec<ChangeHash>> = stored.into_iter().collect();
        let unstored = self.heads.range::<DocId, _>((start, end));
        let limit_without_source = if self.source.is_none() {
            limit
        } else {
            usize::MAX
        };
        for (id, heads) in unstored.take(limit_without_source) {
            page.insert(id.clone(), heads.clone());
        }
        Ok(page.into_iter().collect())
    }

    /// The heads of one document (empty when it does not exist, or cannot be read): loads
    /// nothing.
    pub fn heads(&self, id: &DocId) -> Vec<ChangeHash> {
        self.heads_of(std::slice::from_ref(id))
            .ok()
            .and_then(|mut h| h.pop())
            .flatten()
            .unwrap_or_default()
    }

    /// The heads of each of `ids` (`None`: not held), read from the source at once.
    pub fn heads_of(&self, ids: &[DocId]) -> Result<Vec<Option<Vec<ChangeHash>>>, DocError> {
        let unknown: Vec<DocId> = ids
            .iter()
            .filter(|id| !self.heads.contains_key(*id))
            .cloned()
            .collect();
        let mut stored = self.stored_heads(&unknown)?.into_iter();
        Ok(ids
            .iter()
            .map(|id| match self.heads.get(id) {
                Some(heads) => Some(heads.clone()),
                None => stored.next().flatten(),
            })
            .collect())
    }

    /// The next sync message for a peer whose state is `state`, if one is due. A document the
    /// set does not hold is asked for from an empty one, and not created: only changes a peer
    /// may make create a document (see [`DocSet::receive`]).
    pub fn generate(
        &mut self,
        id: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocError> {
        let message = match self.entry(id)? {
            Some(entry) => entry.doc.sync().generate_sync_message(state),
            None => AutoCommit::new().sync().generate_sync_message(state),
        };
        Ok(message.map(|m| m.encode()))
    }

    /// Each held document of `ids` whole, as automerge loads it, for a peer that holds none of
    /// it (`Frame::DocSave`): a loaded one saved from memory, any other as its stored chunks one
    /// after another (a saved document and its incremental saves load as one), so nothing is
    /// loaded. Documents the set does not hold are left out.
    pub fn saves(&mut self, ids: &[DocId]) -> Result<Vec<(DocId, Vec<u8>)>, DocError> {
        let mut saves = Vec::with_capacity(ids.len());
        let mut stored = Vec::new();
        for id in ids {
            if let Some(entry) = self.loaded.get_mut(id) {
                saves.push((id.clone(), entry.doc.document().save()));
            } else {
                stored.push(id.clone());
            }
        }
        if let (Some(source), false) = (&self.source, stored.is_empty()) {
            let chunks = source
                .chunks(&stored)
                .map_err(|reason| source_failed(&stored[0], reason))?;
            for (id, chunks) in stored.into_iter().zip(chunks) {
                if !chunks.is_empty() {
                    saves.push((id, chunks.concat()));
                }
            }
        }
        Ok(saves)
    }

    /// Takes a peer's document whole (`Frame::DocSave`): loaded strictly (every chunk whole,
    /// its heads verified), merged into ours, or held as it came when new (an empty one is not
    /// created). True when the set changed. Whether the peer may change the document is the
    /// caller's to decide first, as for [`DocSet::receive`].
    pub fn receive_save(&mut self, id: &DocId, bytes: &[u8]) -> Result<bool, DocError> {
        let theirs = guarded(id, || AutoCommit::load(bytes).map_err(|e| e.to_string()))?;
        let mut theirs = theirs.with_actor(self.actor.clone());
        if self.holds(id) {
            let entry = self.entry_or_new(id)?;
            let before = entry.doc.get_heads();
            let backup = entry.doc.clone();
            let merged = guarded(id, || {
                entry
                    .doc
                    .merge(&mut theirs)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = merged {
                entry.doc = backup;
                return Err(e);
            }
            let after = entry.doc.get_heads();
            return Ok(self.record(id, &before, after));
        }
        let heads = theirs.get_heads();
        if heads.is_empty() {
            return Ok(false);
        }
        let entry = Entry {
            doc: theirs,
            next_chunk: 0,
            // Stored whole (a compact save), not as the changes since an empty document.
            unsure: true,
            cost: (bytes.len() * MEMORY_PER_STORED_BYTE).max(LOADED_MIN_BYTES),
            used: 0,
        };
        self.make_room(entry.cost);
        self.insert(id.clone(), entry);
        self.heads.insert(id.clone(), heads);
        self.unsaved.insert(id.clone());
        Ok(true)
    }

    /// A sync message pushing every change of `id`, whatever its receiver asked or said: what
    /// a peer that ignores a read-only receiver sends (for tests and fuzz seeds).
    pub fn unsolicited_message(&mut self, id: &DocId) -> Option<Vec<u8>> {
        let entry = self.entry(id).ok()??;
        let heads = entry.doc.get_heads();
        let changes: Vec<Vec<u8>> = entry
            .doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let message = automerge::sync::Message {
            heads,
            need: Vec::new(),
            have: Vec::new(),
            changes: changes.into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        Some(message.encode())
    }

    /// Whether a sync message carries changes (a message that does not decode carries none
    /// that could be applied).
    pub fn carries_changes(message: &[u8]) -> bool {
        automerge::sync::Message::decode(message).is_ok_and(|m| !m.changes.is_empty())
    }

    /// Applies a peer's sync message; true when the document changed. With a read-only
    /// `state` no change is applied.
    pub fn receive(
        &mut self,
        id: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocError> {
        let error = |reason: String| DocError::Automerge {
            doc: id.to_string(),
            reason,
        };
        let message =
            automerge::sync::Message::decode(message).map_err(|e| error(e.to_string()))?;
        let held = self.holds(id);
        let entry = self.entry_or_new(id)?;
        let before = entry.doc.get_heads();
        // Kept to restore the document should automerge panic half-way through applying.
        let backup = entry.doc.clone();
        let received = guarded(id, || {
            entry
                .doc
                .sync()
                .receive_sync_message(state, message)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = received {
            entry.doc = backup;
            if !held {
                self.forget(id);
            }
            return Err(e);
        }
        let after = entry.doc.get_heads();
        let changed = self.record(id, &before, after);
        if !changed && !held {
            // Nothing arrived for a document the set did not hold: it is not created.
            self.forget(id);
        }
        Ok(changed)
    }

    /// Records `id`'s heads after a peer's change was applied: to be stored when they moved
    /// (true).
    fn record(&mut self, id: &DocId, before: &[ChangeHash], after: Vec<ChangeHash>) -> bool {
        let changed = after != before;
        if changed {
            self.heads.insert(id.clone(), after);
            self.unsaved.insert(id.clone());
        }
        changed
    }

    fn forget(&mut self, id: &DocId) {
        if let Some(entry) = self.loaded.remove(id) {
            self.order.remove(&entry.used);
            self.cost -= entry.cost;
        }
    }

    /// The chunks that make every changed document durable; hand them to the store's
    /// transaction, then call [`DocSet::chunks_stored`] once it committed, or
    /// [`DocSet::chunks_lost`] if it failed.
    pub fn take_chunks(&mut self) -> Vec<Chunk> {
        let ids = std::mem::take(&mut self.unsaved);
        let mut chunks = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(entry) = self.loaded.get_mut(&id) else {
                continue;
            };
            let heads = entry.doc.get_heads();
            let compact = entry.unsure || entry.next_chunk >= COMPACT_AFTER;
            let bytes = if compact {
                entry.doc.save()
            } else {
                entry.doc.save_incremental()
            };
            if bytes.is_empty() {
                continue;
            }
            // A document grows in memory as it grows on disk.
            let grown = (bytes.len() * MEMORY_PER_STORED_BYTE).min(self.budget / 4);
            entry.cost += grown;
            self.cost += grown;
            self.in_flight.insert(id.clone());
            if compact {
                // save() also resets what the next incremental save starts from.
                entry.next_chunk = 1;
                entry.unsure = false;
                chunks.push(Chunk::Compacted {
                    doc: id,
                    bytes,
                    heads,
                });
            } else {
                chunks.push(Chunk::Append {
                    doc: id,
                    index: entry.next_chunk,
                    bytes,
                    heads,
                });
                entry.next_chunk += 1;
            }
        }
        chunks
    }

    /// The chunks last taken are stored: their documents may be evicted again, and their
    /// heads are read from the source from now on (unless they changed again since).
    pub fn chunks_stored(&mut self, chunks: &[Chunk]) {
        for chunk in chunks {
            let doc = chunk.doc();
            self.in_flight.remove(doc);
            if self.source.is_some()
                && !self.unsaved.contains(doc)
                && self.heads.get(doc).map(Vec::as_slice) == Some(chunk.heads())
            {
                self.heads.remove(doc);
            }
        }
        self.make_room(0);
    }

    /// The chunks last taken were not stored: save those documents whole next time.
    pub fn chunks_lost(&mut self, chunks: &[Chunk]) {
        for chunk in chunks {
            let doc = chunk.doc();
            self.in_flight.remove(doc);
            if let Some(entry) = self.loaded.get_mut(doc) {
                entry.unsure = true;
                self.unsaved.insert(doc.clone());
            }
        }
    }
}

/// The source could not be read (for `doc`, or a page of documents from it).
fn source_failed(doc: &DocId, reason: String) -> DocError {
    DocError::Automerge {
        doc: doc.to_string(),
        reason: format!("reading the stored documents: {reason}"),
    }
}

/// What a [`DocSet`] holds ([`DocSet::stats`]), for status pages and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocStats {
    pub held: usize,
    pub loaded: usize,
    pub loads: u64,
    pub loaded_bytes: usize,
    pub budget_bytes: usize,
    pub fetching: u64,
    pub fetched: u64,
}

impl From<DocStats> for fusion_contracts::http::DocumentsStatus {
    fn from(s: DocStats) -> Self {
        Self {
            held: s.held as u64,
            loaded: s.loaded as u64,
            loads: s.loads,
            loaded_bytes: s.loaded_bytes as u64,
            budget_bytes: s.budget_bytes as u64,
            fetching: s.fetching,
            fetched: s.fetched,
        }
    }
}

#[cfg(test)]
mod tests;
