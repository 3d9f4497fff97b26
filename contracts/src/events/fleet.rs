//! Fleet event payloads, written only by the hub in its own log (which every till pulls):
//! `fleet.node.enrolled` and `fleet.node.revoked`, so that a till refuses a revoked sibling
//! even while the hub is down.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{EventError, invalid};
use crate::ids::StoreId;
use crate::time::Timestamp;

/// An endpoint id: 64 lowercase hex digits (an Ed25519 public key).
fn check_endpoint(topic: &'static str, node_id: &str) -> Result<(), EventError> {
    let hex = node_id.len() == 64
        && node_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex {
        Ok(())
    } else {
        Err(invalid(
            topic,
            "nodeId must be an endpoint id (64 lowercase hex digits)",
        ))
    }
}

/// `fleet.node.enrolled`: the hub admitted a node (its sync endpoint) as a till of a store
/// (again, if it was revoked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeEnrolled {
    /// The node's endpoint id.
    pub node_id: String,
    pub store_id: StoreId,
}

impl NodeEnrolled {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        check_endpoint("fleet.node.enrolled", &self.node_id)
    }
}

/// `fleet.node.revoked`: the hub no longer admits a node; every till of the fleet refuses it
/// from when it hears of this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeRevoked {
    /// The node's endpoint id.
    pub node_id: String,
    /// The store it was a till of, if it was enrolled.
    pub store_id: Option<StoreId>,
    pub revoked_at: Timestamp,
}

impl NodeRevoked {
    pub(super) fn validate(&self) -> Result<(), EventError> {
        check_endpoint("fleet.node.revoked", &self.node_id)
    }
}
