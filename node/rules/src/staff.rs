//! Staff at a till: who may manage whom, and the PIN lockout.
//!
//! **Five wrong PINs in a row lock that member on that till for [`PIN_LOCK_MS`]**; while
//! locked, even the right PIN neither signs in nor approves. A right PIN resets the count.
//! Checking a PIN (argon2) is the caller's; this decides what an attempt's result means.

use fusion_contracts::Timestamp;
use fusion_contracts::http::Role;

/// Wrong PINs in a row that lock a member at a till.
pub const PIN_FAILURES_MAX: u32 = 5;
/// How long a lock lasts: 5 minutes.
pub const PIN_LOCK_MS: i64 = 5 * 60 * 1000;
/// How long a sign-in lasts without signing out: a 12-hour shift.
pub const SIGN_IN_MS: i64 = 12 * 60 * 60 * 1000;

/// A member's PIN attempts at one till.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinAttempts {
    /// Wrong PINs since the last right one (or the last lock).
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
}

/// What an attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The PIN was right and the member is not locked.
    Accepted,
    /// Wrong; this many more wrong PINs lock the member.
    Wrong { left: u32 },
    /// This wrong PIN locked the member, until then.
    LockedNow { until: Timestamp },
    /// Locked already: the PIN was not even considered.
    Locked { until: Timestamp },
}

impl PinAttempts {
    /// Locked at `now`, until when.
    pub fn locked(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| now < *until)
    }

    /// Records an attempt whose PIN was `right` (`None`: not checked, because locked).
    pub fn attempt(&mut self, right: Option<bool>, now: Timestamp) -> Attempt {
        if let Some(until) = self.locked(now) {
            return Attempt::Locked { until };
        }
        match right {
            // Locked callers never get here with `None`; an unchecked PIN counts as wrong.
            Some(true) => {
                *self = Self::default();
                Attempt::Accepted
            }
            Some(false) | None => {
                self.locked_until = None;
                self.failures += 1;
                if self.failures >= PIN_FAILURES_MAX {
                    let until = now.plus_ms(PIN_LOCK_MS);
                    *self = Self {
                        failures: 0,
                        locked_until: Some(until),
                    };
                    Attempt::LockedNow { until }
                } else {
                    Attempt::Wrong {
                        left: PIN_FAILURES_MAX - self.failures,
                    }
                }
            }
        }
    }
}

/// Why a caller may not make or change a staff member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StaffRefused {
    #[error("managing staff needs a manager")]
    NotAManager,
    #[error("a {} cannot make or change a {}", caller.as_str(), target.as_str())]
    Above { caller: Role, target: Role },
}

/// Whether `caller` may create or change a member whose role is (or becomes) `target`: a
/// manager or admin, and never above their own role.
pub fn may_manage(caller: Role, target: Role) -> Result<(), StaffRefused> {
    if caller < Role::Manager {
        return Err(StaffRefused::NotAManager);
    }
    if target > caller {
        return Err(StaffRefused::Above { caller, target });
    }
    Ok(())
}

/// The name an approval or a sale records for a member: `staff:<id>`.
pub fn staff_name(id: &fusion_contracts::StaffId) -> String {
    format!("staff:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    #[test]
    fn five_wrong_pins_lock_and_the_lock_ends() {
        // (pin right?, time, what it came to)
        let lock_at = 40 + PIN_LOCK_MS;
        let table = [
            (Some(false), 0, Attempt::Wrong { left: 4 }),
            (Some(false), 10, Attempt::Wrong { left: 3 }),
            (Some(true), 20, Attempt::Accepted),
            (Some(false), 21, Attempt::Wrong { left: 4 }),
            (Some(false), 22, Attempt::Wrong { left: 3 }),
            (Some(false), 23, Attempt::Wrong { left: 2 }),
            (Some(false), 24, Attempt::Wrong { left: 1 }),
            (Some(false), 40, Attempt::LockedNow { until: at(lock_at) }),
            // Locked: the right PIN does not open it, and nothing extends the lock.
            (Some(true), 41, Attempt::Locked { until: at(lock_at) }),
            (None, lock_at - 1, Attempt::Locked { until: at(lock_at) }),
            // Over: a fresh count.
            (Some(false), lock_at, Attempt::Wrong { left: 4 }),
            (Some(true), lock_at + 1, Attempt::Accepted),
        ];
        let mut attempts = PinAttempts::default();
        for (i, (right, t, want)) in table.into_iter().enumerate() {
            assert_eq!(attempts.attempt(right, at(t)), want, "row {i}");
        }
        assert_eq!(attempts, PinAttempts::default());
    }

    #[test]
    fn who_manages_whom() {
        use Role::*;
        let table = [
            (Cashier, Cashier, Err(StaffRefused::NotAManager)),
            (Manager, Cashier, Ok(())),
            (Manager, Manager, Ok(())),
            (Admin, Manager, Ok(())),
            (
                Manager,
                Admin,
                Err(StaffRefused::Above {
                    caller: Manager,
                    target: Admin,
                }),
            ),
        ];
        for (caller, target, want) in table {
            assert_eq!(may_manage(caller, target), want, "{caller:?} {target:?}");
        }
    }
}
