//! Group buying: campaigns that sell a product at a lower price to a bounded group. Pure decide /
//! apply. Joins are taken within [start, end); reaching the minimum makes a campaign successful
//! (joins continue to the maximum); at the end a successful campaign places one order per
//! participant at the campaign price, an unsuccessful one fails.

use fusion_contracts::commands::{
    CancelCampaign, CreateCampaign, JoinCampaign, LeaveCampaign, OrderLine, PlaceOrder,
    ReceiveSeats, TransferSeats,
};
use fusion_contracts::events::campaigns::{CampaignSnapshot, CampaignStatus, ParticipantOrder};
use fusion_contracts::events::{
    CampaignCancelled, CampaignClosed, CampaignCreated, CampaignEnded, CampaignFailed,
    CampaignJoined, CampaignLeft, CampaignSettled, CampaignSuccessful, ProductStatus,
    SeatsReceived, SeatsTransferred,
};
use fusion_contracts::http::price;
use fusion_contracts::{
    CampaignId, CustomerId, Event, Money, NodeId, OrderId, ProductId, Sku, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::Product;
use crate::Refused;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub product_id: ProductId,
    pub sku: Sku,
    pub min_participants: u32,
    pub max_participants: u32,
    pub price: Money,
    pub original_price: Money,
    pub start_at: Timestamp,
    pub end_at: Timestamp,
    pub participants: u32,
    pub status: CampaignStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Campaign {
    pub fn snapshot(&self) -> CampaignSnapshot {
        CampaignSnapshot {
            id: self.id,
            product_id: self.product_id,
            sku: self.sku.clone(),
            min_participants: self.min_participants,
            max_participants: self.max_participants,
            price: self.price.to_decimal(),
            original_price: self.original_price.to_decimal(),
            currency: self.price.currency,
            start_time: self.start_at,
            end_time: self.end_at,
            actual_participants: self.participants,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    pub fn from_snapshot(s: &CampaignSnapshot) -> Self {
        let money = |amount| Money::from_decimal(amount, s.currency).expect("validated event");
        Self {
            id: s.id,
            product_id: s.product_id,
            sku: s.sku.clone(),
            min_participants: s.min_participants,
            max_participants: s.max_participants,
            price: money(s.price),
            original_price: money(s.original_price),
            start_at: s.start_time,
            end_at: s.end_time,
            participants: s.actual_participants,
            status: s.status,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }

    /// The campaign with `participants` members at `now`: successful once the minimum is met.
    fn with_participants(&self, participants: u32, now: Timestamp) -> Self {
        let status = if participants >= self.min_participants {
            CampaignStatus::Successful
        } else {
            CampaignStatus::Active
        };
        Self {
            participants,
            status,
            updated_at: now,
            ..self.clone()
        }
    }

    fn with_status(&self, status: CampaignStatus, now: Timestamp) -> Self {
        Self {
            status,
            updated_at: now,
            ..self.clone()
        }
    }
}

/// A till's seats of a campaign (escrow, docs/ESCROW.md): the free seats it may fill with joins
/// alone, offline; whether seats are shared with other holders (then the hub judges the
/// minimum, once every holder's part has ended); and whether its part ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seats {
    pub free: u32,
    pub shared: bool,
    pub ended: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CampaignRejected {
    #[error("campaign {0} not found")]
    NotFound(CampaignId),
    #[error("{field} {message}")]
    InvalidField { field: String, message: String },
    #[error("campaign {campaign_id} opens at {starts_at}")]
    NotOpenYet {
        campaign_id: CampaignId,
        starts_at: Timestamp,
    },
    #[error("campaign {campaign_id} ended at {ended_at}")]
    Ended {
        campaign_id: CampaignId,
        ended_at: Timestamp,
    },
    #[error("campaign {campaign_id} is {status:?}")]
    NotOpen {
        campaign_id: CampaignId,
        status: CampaignStatus,
    },
    #[error("campaign {campaign_id} is full ({max} participants)")]
    Full { campaign_id: CampaignId, max: u32 },
    #[error("{user_id} already joined campaign {campaign_id}")]
    AlreadyJoined {
        campaign_id: CampaignId,
        user_id: CustomerId,
    },
    #[error("{user_id} has not joined campaign {campaign_id}")]
    NotJoined {
        campaign_id: CampaignId,
        user_id: CustomerId,
    },
    #[error("this till holds {free} free seats of campaign {campaign_id}; {requested} asked for")]
    NotEnoughSeats {
        campaign_id: CampaignId,
        requested: u32,
        free: u32,
    },
    #[error(
        "campaign {campaign_id} shares its seats with other tills: it ends at its endTime, and \
         the hub decides it"
    )]
    Shared { campaign_id: CampaignId },
}

fn invalid(field: &str, message: impl Into<String>) -> CampaignRejected {
    CampaignRejected::InvalidField {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A campaign for an existing, active product; its prices are in the product's currency.
pub fn create(
    cmd: &CreateCampaign,
    product: Option<&Product>,
    now: Timestamp,
) -> Result<Vec<Event>, CampaignRejected> {
    let product = product.ok_or_else(|| {
        invalid(
            "productId",
            format!("names no product ({})", cmd.product_id),
        )
    })?;
    if product.status == ProductStatus::Archived {
        return Err(invalid("productId", "names an archived product"));
    }
    let currency = product.price.currency;
    let as_field = |e: fusion_contracts::http::FieldError| invalid(&e.field, e.message);
    let campaign_price = price("price", cmd.price, currency).map_err(as_field)?;
    let original_price = price("originalPrice", cmd.original_price, currency).map_err(as_field)?;
    if campaign_price.minor > original_price.minor {
        return Err(invalid("price", "must not exceed originalPrice"));
    }
    let campaign = Campaign {
        id: cmd.campaign_id,
        product_id: product.id,
        sku: product.sku.clone(),
        min_participants: cmd.min_participants,
        max_participants: cmd.max_participants,
        price: campaign_price,
        original_price,
        start_at: cmd.start_at,
        end_at: cmd.end_at,
        participants: 0,
        status: CampaignStatus::Active,
        created_at: now,
        updated_at: now,
    };
    Ok(vec![
        CampaignCreated {
            campaign_id: campaign.id,
            campaign: campaign.snapshot(),
        }
        .into(),
    ])
}

/// Joins and leaves need an open campaign inside its time window.
fn check_open(campaign: &Campaign, now: Timestamp) -> Result<(), CampaignRejected> {
    if !campaign.status.is_open() {
        return Err(CampaignRejected::NotOpen {
            campaign_id: campaign.id,
            status: campaign.status,
        });
    }
    if now < campaign.start_at {
        return Err(CampaignRejected::NotOpenYet {
            campaign_id: campaign.id,
            starts_at: campaign.start_at,
        });
    }
    if now >= campaign.end_at {
        return Err(CampaignRejected::Ended {
            campaign_id: campaign.id,
            ended_at: campaign.end_at,
        });
    }
    Ok(())
}

/// The campaign after a join or leave at a till: with shared seats the till knows only its own
/// participants, so the status is left to the hub's decision.
fn after_change(
    campaign: &Campaign,
    participants: u32,
    seats: Option<Seats>,
    now: Timestamp,
) -> Campaign {
    if seats.is_some_and(|s| s.shared) {
        Campaign {
            participants,
            updated_at: now,
            ..campaign.clone()
        }
    } else {
        campaign.with_participants(participants, now)
    }
}

/// `joined`: whether the user is already a participant; `seats`: this till's seats (a join
/// takes a free one: a till never fills more seats than it holds).
pub fn join(
    campaign: Option<&Campaign>,
    joined: bool,
    seats: Option<Seats>,
    cmd: &JoinCampaign,
    now: Timestamp,
) -> Result<Vec<Event>, CampaignRejected> {
    let campaign = campaign.ok_or(CampaignRejected::NotFound(cmd.campaign_id))?;
    check_open(campaign, now)?;
    if joined {
        return Err(CampaignRejected::AlreadyJoined {
            campaign_id: campaign.id,
            user_id: cmd.user_id.clone(),
        });
    }
    if campaign.participants >= campaign.max_participants || seats.is_some_and(|s| s.free == 0) {
        return Err(CampaignRejected::Full {
            campaign_id: campaign.id,
            max: campaign.max_participants,
        });
    }
    let after = after_change(campaign, campaign.participants + 1, seats, now);
    let mut events: Vec<Event> = vec![
        CampaignJoined {
            campaign_id: after.id,
            campaign: after.snapshot(),
            user_id: cmd.user_id.clone(),
        }
        .into(),
    ];
    if campaign.status == CampaignStatus::Active && after.status == CampaignStatus::Successful {
        events.push(
            CampaignSuccessful {
                campaign_id: after.id,
                campaign: after.snapshot(),
            }
            .into(),
        );
    }
    Ok(events)
}

/// Leaving below the minimum makes a successful campaign active again; the seat is free again.
pub fn leave(
    campaign: Option<&Campaign>,
    joined: bool,
    seats: Option<Seats>,
    cmd: &LeaveCampaign,
    now: Timestamp,
) -> Result<Vec<Event>, CampaignRejected> {
    let campaign = campaign.ok_or(CampaignRejected::NotFound(cmd.campaign_id))?;
    check_open(campaign, now)?;
    if !joined {
        return Err(CampaignRejected::NotJoined {
            campaign_id: campaign.id,
            user_id: cmd.user_id.clone(),
        });
    }
    let after = after_change(campaign, campaign.participants - 1, seats, now);
    Ok(vec![
        CampaignLeft {
            campaign_id: after.id,
            campaign: after.snapshot(),
            user_id: cmd.user_id.clone(),
        }
        .into(),
    ])
}

/// Cancelling needs every seat here: once seats are shared, other stores may be taking joins
/// offline, so the campaign runs to its end and the hub decides it.
pub fn cancel(
    campaign: Option<&Campaign>,
    seats: Option<Seats>,
    cmd: &CancelCampaign,
    now: Timestamp,
) -> Result<Vec<Event>, CampaignRejected> {
    let campaign = campaign.ok_or(CampaignRejected::NotFound(cmd.campaign_id))?;
    if seats.is_some_and(|s| s.shared) {
        return Err(CampaignRejected::Shared {
            campaign_id: campaign.id,
        });
    }
    if !campaign.status.is_open() {
        return Err(CampaignRejected::NotOpen {
            campaign_id: campaign.id,
            status: campaign.status,
        });
    }
    let after = campaign.with_status(CampaignStatus::Cancelled, now);
    Ok(vec![
        CampaignCancelled {
            campaign_id: after.id,
            campaign: after.snapshot(),
            reason: cmd.reason.clone(),
        }
        .into(),
    ])
}

/// Gives `cmd.seats` of this till's free seats to another holder: they leave at once and count
/// for the receiver once it has seen the transfer. Only while the campaign takes joins.
pub fn transfer_seats(
    campaign: Option<&Campaign>,
    seats: Option<Seats>,
    cmd: &TransferSeats,
    own: &NodeId,
    now: Timestamp,
) -> Result<Vec<Event>, CampaignRejected> {
    let campaign = campaign.ok_or(CampaignRejected::NotFound(cmd.campaign_id))?;
    check_open(campaign, now)?;
    if cmd.to == *own {
        return Err(invalid("to", "names this till"));
    }
    if cmd.seats == 0 {
        return Err(invalid("seats", "must be positive"));
    }
    let free = seats.map_or(0, |s| s.free);
    if free < cmd.seats {
        return Err(CampaignRejected::NotEnoughSeats {
            campaign_id: campaign.id,
            requested: cmd.seats,
            free,
        });
    }
    Ok(vec![
        SeatsTransferred {
            campaign_id: campaign.id,
            transfer_id: cmd.transfer_id,
            seats: cmd.seats,
            to: cmd.to.clone(),
            previous_seats: free,
            available: free - cmd.seats,
            campaign: campaign.snapshot(),
        }
        .into(),
    ])
}

/// Takes in seats given to this till: `campaign` is what it knows of it (maybe nothing yet:
/// the campaign of another store comes with the seats).
pub fn receive_seats(
    campaign: Option<&Campaign>,
    seats: Option<Seats>,
    cmd: &ReceiveSeats,
) -> Vec<Event> {
    let free = seats.map_or(0, |s| s.free);
    let snapshot = campaign.map_or_else(|| cmd.campaign.clone(), Campaign::snapshot);
    vec![
        SeatsReceived {
            campaign_id: cmd.campaign.id,
            transfer_id: cmd.transfer_id,
            seats: cmd.seats,
            from: cmd.from.clone(),
            previous_seats: free,
            available: free.saturating_add(cmd.seats),
            campaign: snapshot,
        }
        .into(),
    ]
}

/// A campaign received with seats, as this till starts it: none of the giver's participants
/// are this till's.
pub fn received(snapshot: &CampaignSnapshot) -> Campaign {
    Campaign {
        participants: 0,
        status: CampaignStatus::Active,
        ..Campaign::from_snapshot(snapshot)
    }
}

/// At its end, a campaign with shared seats records this till's part (`ended`): its
/// participants are final. The hub decides once every holder's part has ended.
pub fn end(
    campaign: &Campaign,
    seats: Seats,
    participants: Vec<CustomerId>,
    now: Timestamp,
) -> Option<Event> {
    if !seats.shared || seats.ended || !campaign.status.is_open() || now < campaign.end_at {
        return None;
    }
    Some(
        CampaignEnded {
            campaign_id: campaign.id,
            campaign: campaign.snapshot(),
            participants,
            seats_left: seats.free,
        }
        .into(),
    )
}

/// This till's part of a shared campaign after the hub's `decision`, with the orders it placed
/// for its own participants (none when the campaign failed).
pub fn settled(
    decision: &CampaignSnapshot,
    orders: Vec<ParticipantOrder>,
    now: Timestamp,
) -> Event {
    let mut campaign = decision.clone();
    campaign.updated_at = now;
    CampaignSettled {
        campaign_id: campaign.id,
        campaign,
        orders,
    }
    .into()
}

/// What closing a campaign at `now` amounts to.
#[derive(Debug, PartialEq)]
pub enum Close {
    /// Not ended yet, or already closed, failed or cancelled: nothing to do.
    Nothing,
    /// Ended below the minimum: these events.
    Fail(Vec<Event>),
    /// Ended successfully: place one order per participant, then record [`closed`].
    PlaceOrders,
}

pub fn close(campaign: &Campaign, now: Timestamp) -> Close {
    if !campaign.status.is_open() || now < campaign.end_at {
        return Close::Nothing;
    }
    if campaign.participants >= campaign.min_participants {
        return Close::PlaceOrders;
    }
    let after = campaign.with_status(CampaignStatus::Failed, now);
    let reason = format!(
        "{} of {} participants needed",
        campaign.participants, campaign.min_participants
    );
    Close::Fail(vec![
        CampaignFailed {
            campaign_id: after.id,
            campaign: after.snapshot(),
            reason,
        }
        .into(),
        CampaignClosed {
            campaign_id: after.id,
            campaign: after.snapshot(),
            orders: Vec::new(),
        }
        .into(),
    ])
}

/// The policy of a successful close: one unit of the product at the campaign price, which the
/// campaign approves (`campaign:<id>`; its manager set it when creating the campaign).
pub fn participant_order(
    campaign: &Campaign,
    user_id: CustomerId,
    order_id: OrderId,
) -> PlaceOrder {
    PlaceOrder {
        order_id,
        customer_id: user_id,
        currency: campaign.price.currency,
        // Group-buying orders are collected in store.
        shipping_address: None,
        lines: vec![OrderLine {
            sku: campaign.sku.clone(),
            quantity: 1,
            price: Some(campaign.price),
            category: Some("group-buying".into()),
            override_reason: Some("group-buying campaign price".into()),
            discount: None,
        }],
        price_approver: Some(format!("campaign:{}", campaign.id)),
        discount: None,
        staff: None,
    }
}

/// The event that ends a successful campaign, with every participant's order or refusal.
pub fn closed(campaign: &Campaign, orders: Vec<ParticipantOrder>, now: Timestamp) -> Event {
    let after = campaign.with_status(CampaignStatus::Closed, now);
    CampaignClosed {
        campaign_id: after.id,
        campaign: after.snapshot(),
        orders,
    }
    .into()
}

/// Every campaign event carries the campaign as it is afterwards.
pub fn apply(campaign: &mut Option<Campaign>, event: &Event) {
    let snapshot = match event {
        Event::CampaignCreated(e) => &e.campaign,
        Event::CampaignJoined(e) => &e.campaign,
        Event::CampaignLeft(e) => &e.campaign,
        Event::CampaignSuccessful(e) => &e.campaign,
        Event::CampaignFailed(e) => &e.campaign,
        Event::CampaignClosed(e) => &e.campaign,
        Event::CampaignCancelled(e) => &e.campaign,
        Event::CampaignSettled(e) => &e.campaign,
        Event::SeatsReceived(e) if campaign.is_none() => {
            *campaign = Some(received(&e.campaign));
            return;
        }
        _ => return,
    };
    *campaign = Some(Campaign::from_snapshot(snapshot));
}

/// Folds one of a till's campaign events into its seats of that campaign: creation gives it
/// every seat; a join takes one and a leave gives it back; a transfer or receipt states what is
/// free afterwards (and makes the seats shared); the till's end of its part ends them. `None`
/// before the campaign is created here or received (campaigns from before seats were recorded
/// have none: their joins are bounded by `maxParticipants` alone, and stay so).
pub fn apply_seats(seats: &mut Option<Seats>, event: &Event) -> Result<(), Refused> {
    match (event, seats.as_mut()) {
        (Event::CampaignCreated(e), _) => {
            *seats = Some(Seats {
                free: e.campaign.max_participants,
                ..Seats::default()
            })
        }
        (Event::SeatsReceived(e), held) => {
            let mut after = held.copied().unwrap_or_default();
            after.free = e.available;
            after.shared = true;
            *seats = Some(after);
        }
        (Event::CampaignJoined(_), Some(s)) => {
            s.free = s.free.checked_sub(1).ok_or(Refused::Seats {
                topic: event.topic(),
            })?;
        }
        (Event::CampaignLeft(_), Some(s)) => s.free = s.free.saturating_add(1),
        (Event::SeatsTransferred(e), Some(s)) => {
            s.free = e.available;
            s.shared = true;
        }
        (Event::CampaignEnded(_), Some(s)) => s.ended = true,
        _ => {}
    }
    Ok(())
}

/// A campaign whose seats are shared between holders (tills of any store, and the hub), as
/// the hub follows it: who holds or held seats, whose part ended with which participants, the
/// seats the hub holds, and the decision once made. The hub decides a shared campaign — once —
/// when every holder's part has ended; every till then settles its own part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedCampaign {
    /// The campaign's definition (min, max, end) as the first seat movement carried it.
    pub campaign: CampaignSnapshot,
    /// Tills that hold or held seats: each must end its part before the hub decides.
    pub holders: std::collections::BTreeSet<String>,
    /// Each holder whose part ended, with the participants it took.
    pub ended: std::collections::BTreeMap<String, Vec<String>>,
    /// Seats the hub holds.
    pub hub_seats: u32,
    /// The hub's decision (closed or failed), once made.
    pub decided: Option<CampaignStatus>,
}

impl SharedCampaign {
    pub fn new(campaign: CampaignSnapshot) -> Self {
        Self {
            campaign,
            holders: Default::default(),
            ended: Default::default(),
            hub_seats: 0,
            decided: None,
        }
    }

    /// The campaign a seat movement is about, if `event` is one.
    pub fn snapshot_of(event: &Event) -> Option<&CampaignSnapshot> {
        match event {
            Event::SeatsTransferred(e) => Some(&e.campaign),
            Event::SeatsReceived(e) => Some(&e.campaign),
            Event::CampaignEnded(e) => Some(&e.campaign),
            _ => None,
        }
    }

    /// Follows a seat movement of the till `origin`: records who holds seats and whose part
    /// ended, takes in seats given to the hub (`hub`), and decides when every part has ended.
    /// Returns the events the hub appends to its own log, in order.
    pub fn follow(
        &mut self,
        hub: &NodeId,
        origin: &NodeId,
        event: &Event,
        now: Timestamp,
    ) -> Vec<Event> {
        let touched: Vec<&NodeId> = match event {
            Event::SeatsTransferred(e) => vec![origin, &e.to],
            Event::SeatsReceived(_) | Event::CampaignEnded(_) => vec![origin],
            _ => return Vec::new(),
        };
        self.holders.extend(
            touched
                .into_iter()
                .filter(|h| *h != hub)
                .map(|h| h.to_string()),
        );
        let mut events = Vec::new();
        match event {
            Event::SeatsTransferred(e) if e.to == *hub => {
                events.extend(receive_seats(
                    None,
                    Some(self.seats()),
                    &ReceiveSeats {
                        transfer_id: e.transfer_id,
                        seats: e.seats,
                        from: origin.clone(),
                        campaign: self.campaign.clone(),
                    },
                ));
                self.hub_seats = self.hub_seats.saturating_add(e.seats);
            }
            Event::CampaignEnded(e) => {
                self.ended.insert(
                    origin.to_string(),
                    e.participants.iter().map(|p| p.to_string()).collect(),
                );
            }
            _ => {}
        }
        events.extend(self.decide(now));
        events
    }

    /// The hub gives `cmd.seats` of the seats it holds to the till `cmd.to`, by the same rule
    /// a till gives its own ([`transfer_seats`]); not once the campaign is decided.
    pub fn give(
        &mut self,
        hub: &NodeId,
        cmd: &TransferSeats,
        now: Timestamp,
    ) -> Result<Vec<Event>, CampaignRejected> {
        let campaign = Campaign::from_snapshot(&self.campaign);
        if let Some(status) = self.decided {
            return Err(CampaignRejected::NotOpen {
                campaign_id: campaign.id,
                status,
            });
        }
        let events = transfer_seats(Some(&campaign), Some(self.seats()), cmd, hub, now)?;
        self.hub_seats -= cmd.seats;
        self.holders.insert(cmd.to.to_string());
        Ok(events)
    }

    /// Ends the part of a lost till (reclaimed at the hub) with the participants its log showed
    /// up to the reclaim; decides when that was the last part. `None` when it held no seats or
    /// its part had ended already.
    pub fn end_lost(
        &mut self,
        node: &NodeId,
        participants: Vec<String>,
        now: Timestamp,
    ) -> Option<Vec<Event>> {
        let open = self.decided.is_none()
            && self.holders.contains(node.as_str())
            && !self.ended.contains_key(node.as_str());
        if !open {
            return None;
        }
        self.ended.insert(node.to_string(), participants);
        Some(self.decide(now))
    }

    /// The seats the hub holds, as a holder's seats.
    fn seats(&self) -> Seats {
        Seats {
            free: self.hub_seats,
            shared: true,
            ended: self.decided.is_some(),
        }
    }

    /// Decides — once — when every holder's part has ended: successful (then closed) when the
    /// participants of all stores reach the minimum, failed otherwise. Each till places its
    /// own participants' orders when it learns the decision.
    fn decide(&mut self, now: Timestamp) -> Vec<Event> {
        if self.decided.is_some() || !self.holders.iter().all(|h| self.ended.contains_key(h)) {
            return Vec::new();
        }
        let taken: usize = self.ended.values().map(Vec::len).sum();
        let mut decision = self.campaign.clone();
        decision.actual_participants = u32::try_from(taken).unwrap_or(u32::MAX);
        decision.updated_at = now;
        let mut events: Vec<Event> = Vec::new();
        if decision.actual_participants >= decision.min_participants {
            decision.status = CampaignStatus::Successful;
            events.push(
                CampaignSuccessful {
                    campaign_id: decision.id,
                    campaign: decision.clone(),
                }
                .into(),
            );
            decision.status = CampaignStatus::Closed;
        } else {
            decision.status = CampaignStatus::Failed;
            events.push(
                CampaignFailed {
                    campaign_id: decision.id,
                    campaign: decision.clone(),
                    reason: format!(
                        "{} of {} participants needed, across every store",
                        decision.actual_participants, decision.min_participants
                    ),
                }
                .into(),
            );
        }
        events.push(
            CampaignClosed {
                campaign_id: decision.id,
                campaign: decision.clone(),
                orders: Vec::new(),
            }
            .into(),
        );
        self.decided = Some(decision.status);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusion_contracts::{Currency, Decimal};

    const START: Timestamp = Timestamp::from_unix_ms(1_000);
    const END: Timestamp = Timestamp::from_unix_ms(2_000);
    const DURING: Timestamp = Timestamp::from_unix_ms(1_500);

    fn product(status: ProductStatus) -> Product {
        Product {
            id: ProductId::from_u128(1),
            sku: Sku::new("TEA").unwrap(),
            name: "Tea".into(),
            description: None,
            price: Money {
                minor: 1000,
                currency: Currency::USD,
            },
            status,
            created_at: START,
            updated_at: START,
            tax_class: None,
            category: None,
        }
    }

    fn create_cmd(price: i64, original: i64) -> CreateCampaign {
        CreateCampaign {
            campaign_id: CampaignId::from_u128(9),
            product_id: ProductId::from_u128(1),
            min_participants: 2,
            max_participants: 3,
            price: Decimal::new(price, 2),
            original_price: Decimal::new(original, 2),
            start_at: START,
            end_at: END,
        }
    }

    fn campaign() -> Campaign {
        let mut c = None;
        for e in create(
            &create_cmd(700, 1000),
            Some(&product(ProductStatus::Active)),
            START,
        )
        .unwrap()
        {
            apply(&mut c, &e);
        }
        c.unwrap()
    }

    fn user(name: &str) -> CustomerId {
        CustomerId::new(name).unwrap()
    }

    fn join_as(
        c: &Campaign,
        name: &str,
        joined: bool,
        now: Timestamp,
    ) -> Result<Vec<Event>, CampaignRejected> {
        join(
            Some(c),
            joined,
            None,
            &JoinCampaign {
                campaign_id: c.id,
                user_id: user(name),
            },
            now,
        )
    }

    fn applied(c: &Campaign, events: &[Event]) -> Campaign {
        let mut c = Some(c.clone());
        for e in events {
            apply(&mut c, e);
        }
        c.unwrap()
    }

    #[test]
    fn create_table() {
        let active = product(ProductStatus::Active);
        let cases = [
            ("fine", create_cmd(700, 1000), Some(&active), Ok(())),
            (
                "price above original",
                create_cmd(1100, 1000),
                Some(&active),
                Err("price must not exceed originalPrice"),
            ),
            (
                "price equal is fine",
                create_cmd(1000, 1000),
                Some(&active),
                Ok(()),
            ),
            (
                "no product",
                create_cmd(700, 1000),
                None,
                Err("productId names no product (00000000-0000-0000-0000-000000000001)"),
            ),
        ];
        for (name, cmd, product, expected) in cases {
            let got = create(&cmd, product, START)
                .map(drop)
                .map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(String::from), "{name}");
        }
        let archived = product(ProductStatus::Archived);
        assert!(create(&create_cmd(700, 1000), Some(&archived), START).is_err());
        let mut too_precise = create_cmd(700, 1000);
        too_precise.price = Decimal::new(7001, 3);
        let err = create(&too_precise, Some(&active), START).unwrap_err();
        assert_eq!(
            err.to_string(),
            "price has more decimals than USD allows (2)"
        );
    }

    #[test]
    fn join_window_and_limits() {
        let c = campaign();
        let before = Timestamp::from_unix_ms(999);
        assert!(matches!(
            join_as(&c, "a", false, before),
            Err(CampaignRejected::NotOpenYet { .. })
        ));
        assert!(
            matches!(
                join_as(&c, "a", false, END),
                Err(CampaignRejected::Ended { .. })
            ),
            "end is exclusive"
        );
        assert!(matches!(
            join_as(&c, "a", true, DURING),
            Err(CampaignRejected::AlreadyJoined { .. })
        ));
        assert!(matches!(
            join(
                None,
                false,
                None,
                &JoinCampaign {
                    campaign_id: c.id,
                    user_id: user("a")
                },
                DURING
            ),
            Err(CampaignRejected::NotFound(_))
        ));

        let events = join_as(&c, "a", false, DURING).unwrap();
        assert_eq!(events.len(), 1);
        let one = applied(&c, &events);
        assert_eq!((one.participants, one.status), (1, CampaignStatus::Active));

        let events = join_as(&one, "b", false, DURING).unwrap();
        let topics: Vec<_> = events.iter().map(Event::topic).collect();
        assert_eq!(
            topics,
            [
                "group-commerce.campaign.joined",
                "group-commerce.campaign.successful"
            ]
        );
        let Event::CampaignJoined(joined) = &events[0] else {
            panic!()
        };
        assert_eq!(
            joined.campaign.status,
            CampaignStatus::Successful,
            "the event carries the new status"
        );
        let two = applied(&one, &events);

        let events = join_as(&two, "c", false, DURING).unwrap();
        assert_eq!(events.len(), 1, "successful only once");
        let three = applied(&two, &events);
        assert!(matches!(
            join_as(&three, "d", false, DURING),
            Err(CampaignRejected::Full { max: 3, .. })
        ));
    }

    #[test]
    fn leaving_below_the_minimum_reopens_and_not_joined_is_refused() {
        let two = applied(
            &campaign(),
            &[
                join_as(&campaign(), "a", false, DURING).unwrap(),
                join_as(&campaign().with_participants(1, DURING), "b", false, DURING).unwrap(),
            ]
            .concat(),
        );
        assert_eq!(two.status, CampaignStatus::Successful);
        let left = leave(
            Some(&two),
            true,
            None,
            &LeaveCampaign {
                campaign_id: two.id,
                user_id: user("a"),
            },
            DURING,
        )
        .unwrap();
        assert_eq!(applied(&two, &left).status, CampaignStatus::Active);
        let err = leave(
            Some(&two),
            false,
            None,
            &LeaveCampaign {
                campaign_id: two.id,
                user_id: user("z"),
            },
            DURING,
        );
        assert!(matches!(err, Err(CampaignRejected::NotJoined { .. })));
    }

    #[test]
    fn close_table() {
        let c = campaign();
        assert_eq!(close(&c, DURING), Close::Nothing, "not ended");
        let Close::Fail(events) = close(&c, END) else {
            panic!("below minimum fails")
        };
        assert_eq!(
            events.iter().map(Event::topic).collect::<Vec<_>>(),
            [
                "group-commerce.campaign.failed",
                "group-commerce.campaign.closed"
            ]
        );
        let failed = applied(&c, &events);
        assert_eq!(failed.status, CampaignStatus::Failed);
        assert_eq!(
            close(&failed, END),
            Close::Nothing,
            "closing twice does nothing"
        );
        let full = c.with_participants(2, DURING);
        assert_eq!(close(&full, END), Close::PlaceOrders);
        let done = applied(&full, &[closed(&full, vec![], END)]);
        assert_eq!(
            (done.status, close(&done, END)),
            (CampaignStatus::Closed, Close::Nothing)
        );
        let cancelled = applied(
            &c,
            &cancel(
                Some(&c),
                None,
                &CancelCampaign {
                    campaign_id: c.id,
                    reason: None,
                },
                DURING,
            )
            .unwrap(),
        );
        assert_eq!(close(&cancelled, END), Close::Nothing);
        assert!(matches!(
            cancel(
                Some(&cancelled),
                None,
                &CancelCampaign {
                    campaign_id: c.id,
                    reason: None
                },
                DURING
            ),
            Err(CampaignRejected::NotOpen { .. })
        ));
    }

    #[test]
    fn a_till_fills_only_the_seats_it_holds_and_shared_seats_leave_the_status_to_the_hub() {
        let c = campaign();
        let (me, other) = (NodeId::new("me").unwrap(), NodeId::new("other").unwrap());
        let seats = |free, shared| {
            Some(Seats {
                free,
                shared,
                ended: false,
            })
        };
        let cmd = |name: &str| JoinCampaign {
            campaign_id: c.id,
            user_id: user(name),
        };
        assert!(matches!(
            join(Some(&c), false, seats(0, true), &cmd("a"), DURING),
            Err(CampaignRejected::Full { .. })
        ));
        // Shared: the local count crosses the minimum (2) without a `successful`: only the hub
        // knows every store's participants.
        let one = applied(
            &c,
            &join(Some(&c), false, seats(2, true), &cmd("a"), DURING).unwrap(),
        );
        let events = join(Some(&one), false, seats(1, true), &cmd("b"), DURING).unwrap();
        assert_eq!(events.len(), 1);
        let two = applied(&one, &events);
        assert_eq!((two.participants, two.status), (2, CampaignStatus::Active));

        let give = |seats_asked| TransferSeats {
            campaign_id: c.id,
            transfer_id: uuid::Uuid::from_u128(3),
            seats: seats_asked,
            to: other.clone(),
        };
        assert_eq!(
            transfer_seats(Some(&c), seats(2, false), &give(3), &me, DURING),
            Err(CampaignRejected::NotEnoughSeats {
                campaign_id: c.id,
                requested: 3,
                free: 2
            })
        );
        let mut to_me = give(1);
        to_me.to = me.clone();
        assert!(transfer_seats(Some(&c), seats(2, false), &to_me, &me, DURING).is_err());
        assert!(matches!(
            transfer_seats(Some(&c), seats(2, false), &give(1), &me, END),
            Err(CampaignRejected::Ended { .. })
        ));
        let events = transfer_seats(Some(&c), seats(2, false), &give(2), &me, DURING).unwrap();
        events[0].validate().unwrap();
        let Event::SeatsTransferred(t) = &events[0] else {
            panic!()
        };
        // The receiver, in another store, starts the campaign from the snapshot with none of
        // the giver's participants.
        let receipt = ReceiveSeats {
            transfer_id: t.transfer_id,
            seats: t.seats,
            from: me.clone(),
            campaign: two.snapshot(),
        };
        let events = receive_seats(None, None, &receipt);
        events[0].validate().unwrap();
        let mut there = None;
        apply(&mut there, &events[0]);
        let there = there.unwrap();
        assert_eq!(
            (there.participants, there.status),
            (0, CampaignStatus::Active)
        );

        assert!(
            cancel(
                Some(&c),
                seats(1, true),
                &CancelCampaign {
                    campaign_id: c.id,
                    reason: None
                },
                DURING
            )
            .is_err()
        );
        assert_eq!(
            end(
                &two,
                Seats {
                    free: 0,
                    shared: true,
                    ended: false
                },
                vec![],
                DURING
            ),
            None
        );
        let ended = end(
            &two,
            Seats {
                free: 0,
                shared: true,
                ended: false,
            },
            vec![user("a"), user("b")],
            END,
        )
        .unwrap();
        ended.validate().unwrap();
        assert_eq!(
            end(
                &two,
                Seats {
                    free: 0,
                    shared: false,
                    ended: false
                },
                vec![],
                END
            ),
            None,
            "not shared: the till closes it itself"
        );
        assert_eq!(
            end(
                &two,
                Seats {
                    free: 0,
                    shared: true,
                    ended: true
                },
                vec![],
                END
            ),
            None,
            "once"
        );
    }

    #[test]
    fn participants_order_one_unit_at_the_campaign_price() {
        let order = participant_order(&campaign(), user("a"), OrderId::from_u128(5));
        assert_eq!(order.lines.len(), 1);
        assert_eq!(
            (
                order.lines[0].quantity,
                order.lines[0].price.map(|p| p.minor)
            ),
            (1, Some(700))
        );
        assert_eq!(order.customer_id, user("a"));
    }

    /// The hub's rule for shared campaigns: given seat movements of tills a, b and the hub,
    /// what the hub appends, and when it decides.
    #[test]
    fn shared_campaign_table() {
        let (hub, a, b) = (
            NodeId::new("hub").unwrap(),
            NodeId::new("a").unwrap(),
            NodeId::new("b").unwrap(),
        );
        let c = campaign(); // min 2, max 3
        let gave = |from_to: &NodeId, seats| -> Event {
            SeatsTransferred {
                campaign_id: c.id,
                transfer_id: uuid::Uuid::from_u128(1),
                seats,
                to: from_to.clone(),
                previous_seats: 3,
                available: 3 - seats,
                campaign: c.snapshot(),
            }
            .into()
        };
        let ended = |names: &[&str]| -> Event {
            CampaignEnded {
                campaign_id: c.id,
                campaign: c.snapshot(),
                participants: names.iter().map(|n| user(n)).collect(),
                seats_left: 0,
            }
            .into()
        };
        let topics = |events: &[Event]| events.iter().map(Event::topic).collect::<Vec<_>>();
        // (name, movements by origin, topics the last one makes the hub append, decision)
        type Step<'a> = (&'a NodeId, Event);
        type Case<'a> = (&'a str, Vec<Step<'a>>, Vec<&'a str>, Option<CampaignStatus>);
        let cases: Vec<Case> = vec![
            (
                "seats given to the hub are taken in",
                vec![(&a, gave(&hub, 2))],
                vec!["group-commerce.campaign.seats-received"],
                None,
            ),
            (
                "one holder ended, another still holds seats: no decision",
                vec![(&a, gave(&b, 1)), (&a, ended(&["u1"]))],
                vec![],
                None,
            ),
            (
                "every part ended at the minimum: successful, then closed",
                vec![
                    (&a, gave(&b, 1)),
                    (&a, ended(&["u1"])),
                    (&b, ended(&["u2"])),
                ],
                vec![
                    "group-commerce.campaign.successful",
                    "group-commerce.campaign.closed",
                ],
                Some(CampaignStatus::Closed),
            ),
            (
                "every part ended below the minimum: failed, then closed",
                vec![(&a, gave(&b, 1)), (&a, ended(&["u1"])), (&b, ended(&[]))],
                vec![
                    "group-commerce.campaign.failed",
                    "group-commerce.campaign.closed",
                ],
                Some(CampaignStatus::Failed),
            ),
            (
                "decided once: a late part changes nothing",
                vec![(&a, ended(&["u1", "u2"])), (&b, ended(&["u3"]))],
                vec![],
                Some(CampaignStatus::Closed),
            ),
        ];
        for (name, steps, expected, decided) in cases {
            let mut shared = SharedCampaign::new(c.snapshot());
            let mut last = Vec::new();
            for (origin, event) in &steps {
                last = shared.follow(&hub, origin, event, DURING);
                for e in &last {
                    e.validate().unwrap();
                }
            }
            assert_eq!(topics(&last), expected, "{name}");
            assert_eq!(shared.decided, decided, "{name}");
        }
    }

    #[test]
    fn the_hub_gives_only_seats_it_holds_and_only_while_undecided() {
        let (hub, a) = (NodeId::new("hub").unwrap(), NodeId::new("a").unwrap());
        let c = campaign();
        let give = |seats| TransferSeats {
            campaign_id: c.id,
            transfer_id: uuid::Uuid::from_u128(2),
            seats,
            to: a.clone(),
        };
        let mut shared = SharedCampaign::new(c.snapshot());
        shared.hub_seats = 2;
        assert!(matches!(
            shared.give(&hub, &give(3), DURING),
            Err(CampaignRejected::NotEnoughSeats { free: 2, .. })
        ));
        assert!(matches!(
            shared.give(&hub, &give(1), END),
            Err(CampaignRejected::Ended { .. })
        ));
        let events = shared.give(&hub, &give(2), DURING).unwrap();
        assert_eq!(
            events[0].topic(),
            "group-commerce.campaign.seats-transferred"
        );
        assert_eq!(shared.hub_seats, 0);
        assert!(shared.holders.contains("a"));
        shared.decided = Some(CampaignStatus::Failed);
        assert!(matches!(
            shared.give(&hub, &give(1), DURING),
            Err(CampaignRejected::NotOpen { .. })
        ));
        // A lost till's part ends with what its log showed; once only.
        let mut lost = SharedCampaign::new(c.snapshot());
        lost.holders.insert("a".into());
        let decision = lost.end_lost(&a, vec!["u1".into(), "u2".into()], DURING);
        assert_eq!(
            decision
                .unwrap()
                .iter()
                .map(Event::topic)
                .collect::<Vec<_>>(),
            [
                "group-commerce.campaign.successful",
                "group-commerce.campaign.closed"
            ]
        );
        assert_eq!(lost.end_lost(&a, Vec::new(), DURING), None);
    }

    #[test]
    fn the_seat_fold_table() {
        let c = campaign(); // max 3
        let created = create(
            &create_cmd(700, 1000),
            Some(&product(ProductStatus::Active)),
            START,
        )
        .unwrap();
        let joined = join_as(&c, "u1", false, DURING).unwrap();
        let gave: Event = SeatsTransferred {
            campaign_id: c.id,
            transfer_id: uuid::Uuid::from_u128(3),
            seats: 1,
            to: NodeId::new("b").unwrap(),
            previous_seats: 2,
            available: 1,
            campaign: c.snapshot(),
        }
        .into();
        let mut seats = None;
        apply_seats(&mut seats, &joined[0]).unwrap();
        assert_eq!(seats, None, "no seats before the campaign is created here");
        for e in &created {
            apply_seats(&mut seats, e).unwrap();
        }
        assert_eq!(seats.map(|s| s.free), Some(3));
        apply_seats(&mut seats, &joined[0]).unwrap();
        apply_seats(&mut seats, &gave).unwrap();
        assert_eq!(
            seats,
            Some(Seats {
                free: 1,
                shared: true,
                ended: false
            })
        );
        apply_seats(&mut seats, &joined[0]).unwrap();
        let refused = apply_seats(&mut seats, &joined[0]).unwrap_err();
        assert_eq!(refused.rule(), "seats_underflow");
        assert_eq!(
            seats.map(|s| s.free),
            Some(0),
            "a refused event changes nothing"
        );
    }
}
