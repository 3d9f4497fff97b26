//! Authority: which kind of origin may write which events. An event is a claim by its origin;
//! before a receiver (the hub, a till) stores or folds a peer's event it asks [`may_write`].
//!
//! Kinds of origin, told apart by name: the hub's own origin (`hub-<endpoint id prefix>`,
//! [`crate::escrow::hub_origin`]), the hub's holders of each store's rights
//! (`hub-<…>-<store hash>`, [`crate::escrow::hub_holder`]), and tills (every other origin; a
//! till's origin is 32 hex digits and never starts with `hub-`). Which endpoint may deliver an
//! origin is the receiver's check (`deliverer_may_send`): a hub origin only the hub's endpoint.
//!
//! Signatures that bind an origin to a key are the next step (issue 16); until then a till
//! origin is bound to the endpoint that first delivered it.

use fusion_contracts::{Event, NodeId};

/// What a hub origin's name starts with; no till origin does.
pub const HUB_ORIGIN_PREFIX: &str = "hub-";

/// Who wrote an event, by the kind of its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginKind {
    Till,
    /// The hub's own origin: its edits (`product.updated`) and its decisions on shared campaigns.
    Hub,
    /// A hub holder of one store's rights: its transfers, receipts and reclaims.
    HubHolder,
}

impl OriginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Till => "till",
            Self::Hub => "hub",
            Self::HubHolder => "hub holder",
        }
    }
}

/// Why an event or a batch is refused: its origin may not say it, or its deliverer may not
/// deliver that origin.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    #[error("a {} origin may not write {topic}", kind.as_str())]
    Topic {
        kind: OriginKind,
        topic: &'static str,
    },
    #[error("origin {origin} is the hub's; only the hub delivers it")]
    HubOrigin { origin: NodeId },
    #[error("origin {origin} was delivered by another peer before; this one may not speak for it")]
    Rebound { origin: NodeId },
}

impl Unauthorized {
    /// The metric label of the refusal (`fusion_events_refused_total{rule}`).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Topic { .. } => "unauthorized_topic",
            Self::HubOrigin { .. } => "hub_origin_from_till",
            Self::Rebound { .. } => "origin_of_another_peer",
        }
    }
}

/// The kind of `origin`, by its name.
pub fn kind_of(origin: &NodeId) -> OriginKind {
    match origin.as_str().strip_prefix(HUB_ORIGIN_PREFIX) {
        None => OriginKind::Till,
        // The hub's own origin is `hub-<32 hex>`; a holder adds `-<16 hex>`.
        Some(rest) if rest.contains('-') => OriginKind::HubHolder,
        Some(_) => OriginKind::Hub,
    }
}

/// Whether a peer may deliver `origin`'s events: a hub origin comes only from the hub.
pub fn deliverer_may_send(origin: &NodeId, deliverer_is_hub: bool) -> Result<(), Unauthorized> {
    match kind_of(origin) {
        OriginKind::Till => Ok(()),
        OriginKind::Hub | OriginKind::HubHolder if deliverer_is_hub => Ok(()),
        OriginKind::Hub | OriginKind::HubHolder => Err(Unauthorized::HubOrigin {
            origin: origin.clone(),
        }),
    }
}

/// Whether an origin of `kind` may write `event`. Tills write their own commerce (catalog,
/// stock, orders, campaigns, payments, shipping, transfers from themselves), never a reclaim
/// nor who is in the fleet; the hub writes catalog edits, its decisions and seat movements on
/// shared campaigns, and enrollments and revocations; a hub holder writes only stock rights'
/// movements (transfers, receipts, reclaims).
pub fn may_write(kind: OriginKind, event: &Event) -> Result<(), Unauthorized> {
    let allowed = match kind {
        OriginKind::Till => !matches!(
            event,
            Event::StockReclaimed(_) | Event::NodeEnrolled(_) | Event::NodeRevoked(_)
        ),
        OriginKind::Hub => matches!(
            event,
            Event::ProductUpdated(_)
                | Event::SeatsTransferred(_)
                | Event::SeatsReceived(_)
                | Event::CampaignSuccessful(_)
                | Event::CampaignFailed(_)
                | Event::CampaignClosed(_)
                | Event::NodeEnrolled(_)
                | Event::NodeRevoked(_)
        ),
        OriginKind::HubHolder => matches!(
            event,
            Event::StockTransferred(_) | Event::StockReceived(_) | Event::StockReclaimed(_)
        ),
    };
    if allowed {
        Ok(())
    } else {
        Err(Unauthorized::Topic {
            kind,
            topic: event.topic(),
        })
    }
}

/// Whether a peer of the store `peer_store` (as the receiver knows it: its own store for a
/// till's peers, the enrollment at the hub) may change a document of the store `doc_store`
/// (a store's settings): only a till of that store. Documents of no store (products,
/// campaigns) are any admitted peer's to edit.
pub fn may_change_doc(
    doc_store: Option<&fusion_contracts::StoreId>,
    peer_store: Option<&fusion_contracts::StoreId>,
) -> bool {
    match doc_store {
        None => true,
        Some(store) => peer_store == Some(store),
    }
}

/// Whether an event of an origin of `kind` may decide a campaign whose seats are shared: only
/// the hub's `campaign.closed` settles it at the tills.
pub fn decides_shared_campaign(kind: OriginKind, event: &Event) -> bool {
    kind == OriginKind::Hub && matches!(event, Event::CampaignClosed(_))
}

#[cfg(test)]
mod tests {
    use fusion_contracts::StoreId;
    use fusion_contracts::events::{ProductUpdated, StockAdjusted, StockReclaimed};
    use fusion_contracts::{ProductId, Sku, Timestamp};

    use super::*;
    use crate::escrow::{hub_holder, hub_origin};

    #[test]
    fn origins_are_told_apart_by_name() {
        let hub = hub_origin("a3f1c2d4e5f60718293a4b5c6d7e8f90aabbccddeeff00112233445566778899");
        let holder = hub_holder(&hub, &StoreId::new("store-1").unwrap());
        let till = NodeId::new("0c1d2e3f405162738495a6b7c8d9eafb").unwrap();
        assert_eq!(kind_of(&hub), OriginKind::Hub);
        assert_eq!(kind_of(&holder), OriginKind::HubHolder);
        assert_eq!(kind_of(&till), OriginKind::Till);
        assert_eq!(deliverer_may_send(&till, false), Ok(()));
        assert_eq!(deliverer_may_send(&hub, true), Ok(()));
        assert_eq!(deliverer_may_send(&holder, true), Ok(()));
        for forged in [&hub, &holder] {
            let refused = deliverer_may_send(forged, false).unwrap_err();
            assert_eq!(refused.rule(), "hub_origin_from_till");
        }
    }

    /// (document's store, the peer's store, allowed)
    #[test]
    fn a_stores_settings_are_its_own_tills_to_change() {
        let (one, two) = (
            StoreId::new("store-1").unwrap(),
            StoreId::new("store-2").unwrap(),
        );
        let cases = [
            (Some(&one), Some(&one), true),
            (Some(&one), Some(&two), false),
            (Some(&one), None, false),
            (None, Some(&two), true),
            (None, None, true),
        ];
        for (doc, peer, allowed) in cases {
            assert_eq!(may_change_doc(doc, peer), allowed, "{doc:?} by {peer:?}");
        }
    }

    /// (kind, event, allowed)
    #[test]
    fn the_authority_table() {
        let sku = Sku::new("TEA").unwrap();
        let adjusted: Event = StockAdjusted {
            sku: sku.clone(),
            previous_quantity: 0,
            quantity: 1,
            delta: 1,
            reason: "count".into(),
        }
        .into();
        let reclaimed: Event = StockReclaimed {
            sku: sku.clone(),
            from: NodeId::new("lost").unwrap(),
            upto: 3,
            quantity: 2,
            transfers: Vec::new(),
            previous_quantity: 0,
            available: 2,
        }
        .into();
        let edited: Event = ProductUpdated {
            id: ProductId::from_u128(1),
            sku,
            changed: vec!["name".into()],
            name: "Tea".into(),
            description: None,
            price: fusion_contracts::Decimal::new(100, 2),
            currency: fusion_contracts::Currency::parse("USD").unwrap(),
            updated_at: Timestamp::from_unix_ms(1),
        }
        .into();
        let revoked: Event = fusion_contracts::events::NodeRevoked {
            node_id: "ab".repeat(32),
            store_id: None,
            revoked_at: Timestamp::from_unix_ms(1),
        }
        .into();
        let cases = [
            (OriginKind::Till, &revoked, false),
            (OriginKind::Hub, &revoked, true),
            (OriginKind::HubHolder, &revoked, false),
            (OriginKind::Till, &adjusted, true),
            (OriginKind::Till, &edited, true),
            (OriginKind::Till, &reclaimed, false),
            (OriginKind::Hub, &edited, true),
            (OriginKind::Hub, &adjusted, false),
            (OriginKind::Hub, &reclaimed, false),
            (OriginKind::HubHolder, &reclaimed, true),
            (OriginKind::HubHolder, &adjusted, false),
            (OriginKind::HubHolder, &edited, false),
        ];
        for (kind, event, allowed) in cases {
            assert_eq!(
                may_write(kind, event).is_ok(),
                allowed,
                "{kind:?} writing {}",
                event.topic()
            );
        }
        // Only the hub's `campaign.closed` decides a shared campaign.
        assert!(!decides_shared_campaign(OriginKind::Hub, &edited));
        assert!(!decides_shared_campaign(OriginKind::Till, &reclaimed));
    }
}
