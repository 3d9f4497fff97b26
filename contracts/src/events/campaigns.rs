//! Group-buying (campaign) event payloads: FusionCommerce's `group-commerce.campaign.*` topics.
//! Every payload carries the campaign as it is after the event (`campaign`), so its status is
//! never stale — the original sent the status from before the change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{EventError, check_amount, invalid};
use crate::ids::{CampaignId, CustomerId, NodeId, OrderId, ProductId, Sku};
use crate::money::{Currency, Decimal};
use crate::time::Timestamp;

/// Most participants one campaign may admit: bounds the close transaction (one order each) and
/// the size of the `closed` event.
pub const CAMPAIGN_PARTICIPANTS_MAX: u32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    /// Taking joins (within its time window); the minimum is not reached yet.
    Active,
    /// The minimum is reached; still taking joins until the maximum or the end.
    Successful,
    /// Ended successfully: one order was placed per participant.
    Closed,
    /// Ended below the minimum.
    Failed,
    /// Cancelled by a manager before it ended.
    Cancelled,
}

impl CampaignStatus {
    /// Still taking joins and leaves (time window permitting).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Active | Self::Successful)
    }
}

/// A campaign as FusionCommerce served it, plus `currency`, `sku` and `updatedAt`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSnapshot {
    pub id: CampaignId,
    pub product_id: ProductId,
    pub sku: Sku,
    pub min_participants: u32,
    pub max_participants: u32,
    /// Campaign price per participant.
    pub price: Decimal,
    pub original_price: Decimal,
    pub currency: Currency,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    pub actual_participants: u32,
    pub status: CampaignStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl CampaignSnapshot {
    fn validate(&self, topic: &'static str) -> Result<(), EventError> {
        if self.min_participants == 0 || self.min_participants > self.max_participants {
            return Err(invalid(
                topic,
                "minParticipants must be 1 to maxParticipants",
            ));
        }
        if self.max_participants > CAMPAIGN_PARTICIPANTS_MAX
            || self.actual_participants > self.max_participants
        {
            return Err(invalid(topic, "participants out of range"));
        }
        if self.start_time >= self.end_time {
            return Err(invalid(topic, "startTime must be before endTime"));
        }
        let price = check_amount(topic, "price", self.price, self.currency)?;
        let original = check_amount(topic, "originalPrice", self.original_price, self.currency)?;
        if price.minor > original.minor {
            return Err(invalid(topic, "price must not exceed originalPrice"));
        }
        Ok(())
    }

    fn expect_status(
        &self,
        topic: &'static str,
        allowed: &[CampaignStatus],
    ) -> Result<(), EventError> {
        if !allowed.contains(&self.status) {
            return Err(invalid(
                topic,
                format!("status {:?} is not possible here", self.status),
            ));
        }
        Ok(())
    }
}

/// `group-commerce.campaign.created`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignCreated {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
}

/// `group-commerce.campaign.joined`: FusionCommerce's `{campaign, userId}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignJoined {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
    pub user_id: CustomerId,
}

/// `group-commerce.campaign.left`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignLeft {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
    pub user_id: CustomerId,
}

/// `group-commerce.campaign.successful`: the minimum was reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSuccessful {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
}

/// `group-commerce.campaign.failed`: the campaign ended below its minimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignFailed {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
    pub reason: String,
}

/// The order placed for one participant when a successful campaign closed, or why none was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantOrder {
    pub user_id: CustomerId,
    pub order_id: OrderId,
    /// Absent when the order was placed; the refusal otherwise (no order exists under `orderId`).
    pub failure: Option<String>,
}

/// `group-commerce.campaign.closed`: the campaign ended; for a successful one, the order of every
/// participant (or why it could not be placed — never dropped silently).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignClosed {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
    pub orders: Vec<ParticipantOrder>,
}

/// `group-commerce.campaign.cancelled`: a manager cancelled it before it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignCancelled {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
    pub reason: Option<String>,
}

/// `group-commerce.campaign.seats-transferred`: this till (or the hub) gave seats of a campaign
/// to another holder; they are in transit until its `seats-received`. Carries the campaign so
/// the receiver, maybe in another store, can take joins for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatsTransferred {
    pub campaign_id: CampaignId,
    pub transfer_id: uuid::Uuid,
    pub seats: u32,
    /// The receiving holder's node id.
    #[schemars(with = "String")]
    pub to: NodeId,
    /// Free seats here before and after.
    pub previous_seats: u32,
    pub available: u32,
    pub campaign: CampaignSnapshot,
}

/// `group-commerce.campaign.seats-received`: this till (or the hub) took in seats given to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatsReceived {
    pub campaign_id: CampaignId,
    pub transfer_id: uuid::Uuid,
    pub seats: u32,
    #[schemars(with = "String")]
    pub from: NodeId,
    pub previous_seats: u32,
    pub available: u32,
    pub campaign: CampaignSnapshot,
}

/// `group-commerce.campaign.ended`: a campaign whose seats are shared between holders reached
/// its end at this till: these are the participants it took (its joins are final). The hub
/// judges the minimum once every holder's `ended` has arrived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignEnded {
    pub campaign_id: CampaignId,
    /// The campaign as this till knows it (its own participants).
    pub campaign: CampaignSnapshot,
    pub participants: Vec<CustomerId>,
    /// Seats this till held and did not use.
    pub seats_left: u32,
}

/// `group-commerce.campaign.settled`: this till learnt the hub's decision on a shared campaign
/// (`campaign`, as the hub closed it) and placed its own participants' orders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSettled {
    pub campaign_id: CampaignId,
    pub campaign: CampaignSnapshot,
    pub orders: Vec<ParticipantOrder>,
}

impl SeatsTransferred {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.seats-transferred";
        check_id(T, self.campaign_id, &self.campaign)?;
        if self.seats == 0 {
            return Err(invalid(T, "seats must be positive"));
        }
        if self.previous_seats.checked_sub(self.seats) != Some(self.available) {
            return Err(invalid(T, "available must equal previousSeats - seats"));
        }
        Ok(())
    }
}

impl SeatsReceived {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.seats-received";
        check_id(T, self.campaign_id, &self.campaign)?;
        if self.seats == 0 {
            return Err(invalid(T, "seats must be positive"));
        }
        if self.previous_seats.checked_add(self.seats) != Some(self.available) {
            return Err(invalid(T, "available must equal previousSeats + seats"));
        }
        Ok(())
    }
}

impl CampaignEnded {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.ended";
        check_id(T, self.campaign_id, &self.campaign)?;
        if self.participants.len() > self.campaign.max_participants as usize {
            return Err(invalid(T, "at most maxParticipants participants"));
        }
        Ok(())
    }
}

impl CampaignSettled {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.settled";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign
            .expect_status(T, &[CampaignStatus::Closed, CampaignStatus::Failed])?;
        if self.orders.len() > self.campaign.actual_participants as usize {
            return Err(invalid(T, "at most one order per participant"));
        }
        Ok(())
    }
}

fn check_id(
    topic: &'static str,
    id: CampaignId,
    campaign: &CampaignSnapshot,
) -> Result<(), EventError> {
    if id != campaign.id {
        return Err(invalid(topic, "campaignId must equal campaign.id"));
    }
    campaign.validate(topic)
}

impl CampaignCreated {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.created";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign.expect_status(T, &[CampaignStatus::Active])?;
        if self.campaign.actual_participants != 0 {
            return Err(invalid(T, "a new campaign has no participants"));
        }
        Ok(())
    }
}

impl CampaignJoined {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.joined";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign
            .expect_status(T, &[CampaignStatus::Active, CampaignStatus::Successful])?;
        if self.campaign.actual_participants == 0 {
            return Err(invalid(T, "a joined campaign has a participant"));
        }
        Ok(())
    }
}

impl CampaignLeft {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.left";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign
            .expect_status(T, &[CampaignStatus::Active, CampaignStatus::Successful])
    }
}

impl CampaignSuccessful {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.successful";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign
            .expect_status(T, &[CampaignStatus::Successful])?;
        if self.campaign.actual_participants < self.campaign.min_participants {
            return Err(invalid(T, "a successful campaign has reached its minimum"));
        }
        Ok(())
    }
}

impl CampaignFailed {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.failed";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign.expect_status(T, &[CampaignStatus::Failed])
    }
}

impl CampaignClosed {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.closed";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign
            .expect_status(T, &[CampaignStatus::Closed, CampaignStatus::Failed])?;
        if self.orders.len() > self.campaign.actual_participants as usize {
            return Err(invalid(T, "at most one order per participant"));
        }
        Ok(())
    }
}

impl CampaignCancelled {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        const T: &str = "group-commerce.campaign.cancelled";
        check_id(T, self.campaign_id, &self.campaign)?;
        self.campaign.expect_status(T, &[CampaignStatus::Cancelled])
    }
}
