//! The staff desk of this till: who is signed in (bearer tokens `fss_…`, held in memory: a
//! restart signs everyone out, as a till's reboot would) and each member's PIN attempts here
//! (`fusion_rules::staff`: five wrong PINs lock the member at this till). The members
//! themselves live in the store's settings document, replicated to every till and the hub.

use std::collections::HashMap;
use std::sync::Mutex;

use fusion_contracts::{StaffId, Timestamp, TokenId};
use fusion_rules::staff::{Attempt, PinAttempts};

/// Prefix of a staff member's sign-in token.
pub const SIGN_IN_TOKEN_PREFIX: &str = "fss_";
/// Most sign-ins held at once; the oldest expiring goes first when full.
const SIGN_INS_MAX: usize = 1_000;

/// A member signed in at this till.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    pub staff: StaffId,
    /// The till's token the sign-in was made with.
    pub token_id: TokenId,
    pub expires_at: Timestamp,
}

#[derive(Default)]
struct Desk {
    sign_ins: HashMap<[u8; 32], SignIn>,
    attempts: HashMap<StaffId, PinAttempts>,
}

#[derive(Default)]
pub struct StaffDesk {
    desk: Mutex<Desk>,
}

impl StaffDesk {
    fn desk(&self) -> std::sync::MutexGuard<'_, Desk> {
        self.desk
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Until when `staff` is locked at this till, if they are at `now`.
    pub fn locked(&self, staff: &StaffId, now: Timestamp) -> Option<Timestamp> {
        self.desk().attempts.get(staff)?.locked(now)
    }

    /// Records a PIN attempt of a known member; a lock it causes is logged and counted.
    pub fn attempt(&self, staff: &StaffId, right: bool, now: Timestamp) -> Attempt {
        let attempt = self
            .desk()
            .attempts
            .entry(staff.clone())
            .or_default()
            .attempt(Some(right), now);
        match attempt {
            Attempt::LockedNow { until } => {
                tracing::warn!(%staff, %until, "too many wrong PINs: the staff member is locked at this till");
                metrics::counter!("fusion_staff_lockouts_total").increment(1);
            }
            Attempt::Wrong { .. } => {
                metrics::counter!("fusion_staff_pin_failures_total").increment(1);
            }
            Attempt::Accepted | Attempt::Locked { .. } => {}
        }
        attempt
    }

    pub fn sign_in(&self, hash: [u8; 32], sign_in: SignIn, now: Timestamp) {
        let mut desk = self.desk();
        desk.sign_ins.retain(|_, s| s.expires_at > now);
        if desk.sign_ins.len() >= SIGN_INS_MAX
            && let Some(first) = desk
                .sign_ins
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(h, _)| *h)
        {
            desk.sign_ins.remove(&first);
        }
        desk.sign_ins.insert(hash, sign_in);
    }

    /// The sign-in a token's hash names, while it lasts.
    pub fn signed_in(&self, hash: &[u8; 32], now: Timestamp) -> Option<SignIn> {
        let desk = self.desk();
        desk.sign_ins
            .get(hash)
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    pub fn sign_out(&self, hash: &[u8; 32]) -> bool {
        self.desk().sign_ins.remove(hash).is_some()
    }

    /// Ends every sign-in of `staff` (deactivated, or their PIN changed).
    pub fn sign_out_all(&self, staff: &StaffId) {
        self.desk().sign_ins.retain(|_, s| &s.staff != staff);
    }
}
