//! Authority: which kind of origin may write which events. An event is a claim by its origin;
//! before a receiver (the hub, a till) stores or folds a peer's event it asks [`may_write`].
//!
//! Kinds of origin, told apart by name: the hub's own origin (`hub-<endpoint id prefix>`,
//! [`crate::escrow::hub_origin`]), the hub's holders of each store's rights
//! (`hub-<…>-<store hash>`, [`crate::escrow::hub_holder`]), and tills (every other origin; a
//! till's origin is 32 hex digits and never starts with `hub-`). Which endpoint may deliver an
//! origin is the receiver's check (`deliverer_may_send`): a hub origin only the hub's endpoint.
//!
//! An origin is bound to a key by its journal's signatures (`crate::journal`): a till origin
//! to the endpoint that first delivered it, the hub's origins to the hub's.

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
    #[error(
        "campaign {campaign}'s seats are shared: only the hub decides it, not a till's {topic}"
    )]
    SharedCampaign {
        campaign: fusion_contracts::CampaignId,
        topic: &'static str,
    },
}

impl Unauthorized {
    /// The metric label of the refusal (`fusion_events_refused_total{rule}`).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Topic { .. } => "unauthorized_topic",
            Self::HubOrigin { .. } => "hub_origin_from_till",
            Self::Rebound { .. } => "origin_of_another_peer",
            Self::SharedCampaign { .. } => "shared_campaign_from_till",
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

/// Who approves the prices other than the catalog's in an order placed by `caller` (its role
/// and name) with a manager's `approval` given at the till, if any: a manager (or admin)
/// caller itself, else an approval of that role; `None`: the order must sell every line at
/// the catalog price. The name recorded is the approver's (`token:<id>`).
pub fn price_approver(
    caller: (fusion_contracts::http::Role, &str),
    approval: Option<(fusion_contracts::http::Role, &str)>,
) -> Option<String> {
    use fusion_contracts::http::Role;
    [Some(caller), approval]
        .into_iter()
        .flatten()
        .find(|(role, _)| *role >= Role::Manager)
        .map(|(_, name)| name.to_string())
}

/// Whose a shared document is, for who may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocOwner<'a> {
    /// The fleet's catalog (a product): any admitted peer (the manager role is the API's
    /// check, at the till where the edit is made).
    Fleet,
    /// A store's settings (`settings/<store>`): that store's tills and the hub.
    Store(&'a fusion_contracts::StoreId),
    /// A campaign: the hub, and the endpoint of the till whose own journal created it (`None`:
    /// the receiver holds no such journal, so only the hub).
    Till(Option<&'a str>),
}

/// A peer in a document session, as the receiver knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocPeer<'a> {
    /// Its endpoint id.
    pub endpoint: &'a str,
    /// Its store: at a till every peer counts as of the till's own store (a till holds only
    /// its own store's settings, from the hub too); at the hub, the store it enrolled in.
    pub store: Option<&'a fusion_contracts::StoreId>,
    /// It is the hub.
    pub is_hub: bool,
}

/// Whether `peer` may change a document whose owner is `owner`. A session syncs a document
/// its peer may not change read-only from that peer: its changes are never applied.
pub fn may_change_doc(owner: DocOwner<'_>, peer: DocPeer<'_>) -> bool {
    match owner {
        DocOwner::Fleet => true,
        DocOwner::Store(store) => peer.store == Some(store),
        DocOwner::Till(owner) => peer.is_hub || owner == Some(peer.endpoint),
    }
}

/// The campaign `event` decides (`campaign.successful`, `.failed`, `.closed`), if it is such.
pub fn decided_campaign(event: &Event) -> Option<fusion_contracts::CampaignId> {
    match event {
        Event::CampaignSuccessful(e) => Some(e.campaign_id),
        Event::CampaignFailed(e) => Some(e.campaign_id),
        Event::CampaignClosed(e) => Some(e.campaign_id),
        _ => None,
    }
}

/// Whether an origin of `kind` may write `event` about a campaign whose seats are `shared` (as
/// the receiver knows it: it holds some of them, or follows them at the hub). A shared
/// campaign is decided only by the hub — each till records its own part (`campaign.ended`,
/// `campaign.settled`) — so a till's decision of one is a forgery; a till decides its own
/// unshared campaigns.
pub fn may_decide_campaign(
    kind: OriginKind,
    event: &Event,
    shared: bool,
) -> Result<(), Unauthorized> {
    match decided_campaign(event) {
        Some(campaign) if shared && kind != OriginKind::Hub => Err(Unauthorized::SharedCampaign {
            campaign,
            topic: event.topic(),
        }),
        _ => Ok(()),
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

    /// (caller's role, approval's role, approver)
    #[test]
    fn who_approves_a_price_override() {
        use fusion_contracts::http::Role::{Admin, Cashier, Manager};
        let cases = [
            (Cashier, None, None),
            (Cashier, Some(Cashier), None),
            (Cashier, Some(Manager), Some("token:approver")),
            (Cashier, Some(Admin), Some("token:approver")),
            (Manager, None, Some("token:caller")),
            (Manager, Some(Manager), Some("token:caller")),
            (Admin, Some(Cashier), Some("token:caller")),
        ];
        for (caller, approval, approver) in cases {
            assert_eq!(
                price_approver(
                    (caller, "token:caller"),
                    approval.map(|role| (role, "token:approver"))
                )
                .as_deref(),
                approver,
                "{caller:?} with {approval:?}"
            );
        }
    }

    /// (owner, peer's endpoint, peer's store, peer is the hub, allowed)
    #[test]
    fn who_may_change_a_document() {
        let (one, two) = (
            StoreId::new("store-1").unwrap(),
            StoreId::new("store-2").unwrap(),
        );
        let cases = [
            (DocOwner::Fleet, "a", None, false, true),
            (DocOwner::Fleet, "a", Some(&one), false, true),
            (DocOwner::Store(&one), "a", Some(&one), false, true),
            (DocOwner::Store(&one), "a", Some(&two), false, false),
            (DocOwner::Store(&one), "a", None, false, false),
            // At a till the hub counts as of the till's store: it edits that store's settings…
            (DocOwner::Store(&one), "hub", Some(&one), true, true),
            // …and never hands it another store's.
            (DocOwner::Store(&two), "hub", Some(&one), true, false),
            (DocOwner::Till(Some("a")), "a", Some(&one), false, true),
            (DocOwner::Till(Some("a")), "b", Some(&one), false, false),
            (DocOwner::Till(Some("a")), "hub", None, true, true),
            (DocOwner::Till(None), "a", Some(&one), false, false),
            (DocOwner::Till(None), "hub", None, true, true),
        ];
        for (owner, endpoint, store, is_hub, allowed) in cases {
            let peer = DocPeer {
                endpoint,
                store,
                is_hub,
            };
            assert_eq!(
                may_change_doc(owner, peer),
                allowed,
                "{owner:?} by {peer:?}"
            );
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
            tax_class: None,
            category: None,
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

    /// (kind, event, shared, allowed): a shared campaign is decided by the hub alone.
    #[test]
    fn who_decides_a_campaign() {
        use fusion_contracts::events::campaigns::{CampaignSnapshot, CampaignStatus};
        use fusion_contracts::events::{CampaignClosed, CampaignEnded, CampaignFailed};
        use fusion_contracts::{CampaignId, Currency, Decimal};
        let id = CampaignId::from_u128(9);
        let snapshot = CampaignSnapshot {
            id,
            product_id: ProductId::from_u128(1),
            sku: Sku::new("GB").unwrap(),
            min_participants: 1,
            max_participants: 3,
            price: Decimal::new(500, 2),
            original_price: Decimal::new(900, 2),
            currency: Currency::USD,
            start_time: Timestamp::from_unix_ms(0),
            end_time: Timestamp::from_unix_ms(1_000),
            actual_participants: 1,
            status: CampaignStatus::Closed,
            created_at: Timestamp::from_unix_ms(0),
            updated_at: Timestamp::from_unix_ms(1_000),
        };
        let closed: Event = CampaignClosed {
            campaign_id: id,
            campaign: snapshot.clone(),
            orders: Vec::new(),
        }
        .into();
        let failed: Event = CampaignFailed {
            campaign_id: id,
            campaign: snapshot.clone(),
            reason: "too few".into(),
        }
        .into();
        let ended: Event = CampaignEnded {
            campaign_id: id,
            campaign: snapshot,
            participants: Vec::new(),
            seats_left: 2,
        }
        .into();
        let cases = [
            (OriginKind::Till, &closed, false, true),
            (OriginKind::Till, &closed, true, false),
            (OriginKind::Till, &failed, true, false),
            (OriginKind::Till, &failed, false, true),
            (OriginKind::Till, &ended, true, true),
            (OriginKind::Hub, &closed, true, true),
            (OriginKind::Hub, &failed, true, true),
            (OriginKind::HubHolder, &closed, true, false),
        ];
        for (kind, event, shared, allowed) in cases {
            let answer = may_decide_campaign(kind, event, shared);
            assert_eq!(
                answer.is_ok(),
                allowed,
                "{kind:?} {} shared={shared}",
                event.topic()
            );
            if let Err(refused) = answer {
                assert_eq!(refused.rule(), "shared_campaign_from_till");
            }
        }
    }
}
