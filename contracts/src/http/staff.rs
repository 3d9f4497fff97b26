//! The bodies of `/staff`: staff members of a store, their PINs, signing in at a till, and a
//! manager's approval given with a PIN. A PIN is only ever in a request: what is stored and
//! replicated is its argon2 hash ([`StaffRecord::pin_hash`]), and no answer carries either.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FieldError, Role, text};
use crate::ids::StaffId;
use crate::time::Timestamp;

/// A PIN is 4 to 8 digits.
pub const PIN_DIGITS_MIN: usize = 4;
pub const PIN_DIGITS_MAX: usize = 8;
/// Longest staff name, in characters.
pub const STAFF_NAME_LEN_MAX: usize = 80;
/// Most staff members a store keeps (active or not).
pub const STAFF_MAX: usize = 500;

/// A PIN as typed: 4 to 8 ASCII digits.
pub fn check_pin(field: &str, pin: &str) -> Result<(), FieldError> {
    if !(PIN_DIGITS_MIN..=PIN_DIGITS_MAX).contains(&pin.len())
        || !pin.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(FieldError::new(
            field,
            format!("must be {PIN_DIGITS_MIN} to {PIN_DIGITS_MAX} digits"),
        ));
    }
    Ok(())
}

/// A staff member's role: a cashier sells, a manager also approves and manages staff.
fn staff_role(field: &str, role: Role) -> Result<Role, FieldError> {
    match role {
        Role::Cashier | Role::Manager => Ok(role),
        Role::Admin => Err(FieldError::new(field, "must be cashier or manager")),
    }
}

/// A staff member as the store's settings document holds them (JSON, one key each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffRecord {
    pub name: String,
    pub role: Role,
    /// The PIN's argon2id hash in PHC form (`$argon2id$v=19$…`), salted per member.
    pub pin_hash: String,
    /// A member who left stays on record (older orders name them) but cannot sign in.
    pub active: bool,
}

/// `POST /staff`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateStaffRequest {
    /// The member's code at this store: letters, digits, `-`, `_`, `.`; at most 32.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,32}$")]
    pub id: StaffId,
    pub name: String,
    /// `cashier` or `manager`.
    pub role: Role,
    /// 4 to 8 digits; stored only as a salted argon2 hash.
    #[schema(pattern = "^[0-9]{4,8}$")]
    pub pin: String,
}

/// A validated new member (the PIN still in clear: the API hashes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStaff {
    pub id: StaffId,
    pub name: String,
    pub role: Role,
    pub pin: String,
}

impl CreateStaffRequest {
    pub fn validate(self) -> Result<NewStaff, FieldError> {
        check_pin("pin", &self.pin)?;
        Ok(NewStaff {
            name: text("name", self.name, STAFF_NAME_LEN_MAX)?,
            role: staff_role("role", self.role)?,
            id: self.id,
            pin: self.pin,
        })
    }
}

/// `PATCH /staff/{id}`: only the fields given change.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStaffRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    #[schema(pattern = "^[0-9]{4,8}$")]
    pub pin: Option<String>,
    /// `false`: the member can no longer sign in or approve (their sign-ins end).
    #[serde(default)]
    pub active: Option<bool>,
}

/// A validated change of a member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaffUpdate {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub pin: Option<String>,
    pub active: Option<bool>,
}

impl UpdateStaffRequest {
    pub fn validate(self) -> Result<StaffUpdate, FieldError> {
        if let Some(pin) = &self.pin {
            check_pin("pin", pin)?;
        }
        Ok(StaffUpdate {
            name: self
                .name
                .map(|n| text("name", n, STAFF_NAME_LEN_MAX))
                .transpose()?,
            role: self.role.map(|r| staff_role("role", r)).transpose()?,
            pin: self.pin,
            active: self.active,
        })
    }
}

/// A staff member as the API shows them: never their PIN or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaffResponse {
    #[schema(value_type = String)]
    pub id: StaffId,
    pub name: String,
    pub role: Role,
    pub active: bool,
    /// Locked at this till after too many wrong PINs, until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub locked_until: Option<Timestamp>,
}

/// `POST /staff/sign-in`: a member signs in at this till with their PIN.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInRequest {
    #[schema(value_type = String)]
    pub staff: StaffId,
    #[schema(pattern = "^[0-9]{4,8}$")]
    pub pin: String,
}

/// A member signed in: `token` is their bearer token at this till until `expiresAt` or
/// `POST /staff/sign-out`; what it does records them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInResponse {
    pub token: String,
    pub staff: StaffResponse,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// A manager's approval given at the till: the manager's PIN (`staff` and `pin`), or a token
/// of the manager role.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub staff: Option<StaffId>,
    #[serde(default)]
    #[schema(pattern = "^[0-9]{4,8}$")]
    pub pin: Option<String>,
}

/// Who approves, as the request gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    Token(String),
    Pin { staff: StaffId, pin: String },
}

impl ApprovalRequest {
    pub fn validate(self) -> Result<Approval, FieldError> {
        match (self.token, self.staff, self.pin) {
            (Some(token), None, None) => Ok(Approval::Token(token)),
            (None, Some(staff), Some(pin)) => {
                check_pin("approval.pin", &pin)?;
                Ok(Approval::Pin { staff, pin })
            }
            (None, Some(_), None) => Err(FieldError::new("approval.pin", "is required")),
            (None, None, Some(_)) => Err(FieldError::new("approval.staff", "is required")),
            (None, None, None) => Err(FieldError::new(
                "approval",
                "must give a manager's staff and pin, or a token",
            )),
            _ => Err(FieldError::new(
                "approval",
                "gives either staff and pin or a token, not both",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_four_to_eight_digits() {
        for (pin, ok) in [
            ("1234", true),
            ("12345678", true),
            ("123", false),
            ("123456789", false),
            ("12a4", false),
            ("１２３４", false),
            ("", false),
        ] {
            assert_eq!(check_pin("pin", pin).is_ok(), ok, "{pin:?}");
        }
    }

    #[test]
    fn an_approval_is_a_pin_or_a_token() {
        let ana = || Some(StaffId::new("ana").unwrap());
        let cases = [
            (Some("t"), None, None, Ok(Approval::Token("t".into()))),
            (
                None,
                ana(),
                Some("9999"),
                Ok(Approval::Pin {
                    staff: StaffId::new("ana").unwrap(),
                    pin: "9999".into(),
                }),
            ),
            (None, ana(), None, Err("approval.pin")),
            (None, None, Some("9999"), Err("approval.staff")),
            (None, None, None, Err("approval")),
            (Some("t"), ana(), Some("9999"), Err("approval")),
            (None, ana(), Some("99"), Err("approval.pin")),
        ];
        for (token, staff, pin, want) in cases {
            let got = ApprovalRequest {
                token: token.map(str::to_string),
                staff: staff.clone(),
                pin: pin.map(str::to_string),
            }
            .validate()
            .map_err(|e| e.field);
            assert_eq!(
                got,
                want.map_err(str::to_string),
                "{token:?} {staff:?} {pin:?}"
            );
        }
    }

    #[test]
    fn staff_are_cashiers_or_managers() {
        let body = |role| CreateStaffRequest {
            id: StaffId::new("ana").unwrap(),
            name: " Ana ".into(),
            role,
            pin: "1234".into(),
        };
        assert_eq!(body(Role::Cashier).validate().unwrap().name, "Ana");
        assert_eq!(body(Role::Admin).validate().unwrap_err().field, "role");
    }
}
