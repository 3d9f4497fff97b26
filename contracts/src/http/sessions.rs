//! The bodies of `/sessions`: a till's cash drawer opened with a float, paid in, paid out and
//! no-sales, closed with a count, and its X and Z reports (`fusion_rules::drawer`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::staff::ApprovalRequest;
use super::{FieldError, price, text};
use crate::commands::{CloseSession, MoveCash, OpenSession};
use crate::events::sessions::{
    CASH_REASON_LEN_MAX, DENOMINATIONS_MAX, SessionCashMoved, SessionClosed, SessionOpened,
};
use crate::events::{CashMove, Denomination, SessionTotals};
use crate::ids::{NodeId, StaffId};
use crate::money::{Currency, Decimal, Money};
use crate::time::Timestamp;

/// `POST /sessions`: open this till's drawer.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenSessionRequest {
    /// The cash in the drawer at the start.
    #[schema(value_type = f64, minimum = 0)]
    pub float: Decimal,
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
}

impl OpenSessionRequest {
    pub fn into_command(self, session_id: Uuid) -> Result<OpenSession, FieldError> {
        Ok(OpenSession {
            session_id,
            float: price("float", self.float, self.currency)?,
            staff: None,
        })
    }
}

/// `POST /sessions/{id}/cash`: a paid-in, paid-out or no-sale.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CashRequest {
    pub kind: CashMove,
    /// Above 0 for a paid-in or paid-out; absent (or 0) for a no-sale.
    #[serde(default)]
    #[schema(value_type = Option<f64>, minimum = 0)]
    pub amount: Option<Decimal>,
    /// Why (1 to 200 characters).
    pub reason: String,
    /// A manager's approval of a no-sale (a cashier's own request needs one).
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

impl CashRequest {
    /// The command in the session's `currency`; `approval` is taken out by the caller first.
    pub fn into_command(
        self,
        session_id: Uuid,
        currency: Currency,
    ) -> Result<MoveCash, FieldError> {
        let amount = price(
            "amount",
            self.amount.unwrap_or(Decimal::new(0, 0)),
            currency,
        )?;
        match (self.kind, amount.minor) {
            (CashMove::NoSale, 0) => {}
            (CashMove::NoSale, _) => {
                return Err(FieldError::new("amount", "a no-sale moves no cash"));
            }
            (_, 0) => return Err(FieldError::new("amount", "must be above 0")),
            _ => {}
        }
        Ok(MoveCash {
            session_id,
            kind: self.kind,
            amount,
            reason: text("reason", self.reason, CASH_REASON_LEN_MAX)?,
            staff: None,
            approved_by: None,
        })
    }
}

/// `POST /sessions/{id}/close`: the counted cash, as a sum or by denomination (or both, when
/// they agree).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseSessionRequest {
    #[serde(default)]
    #[schema(value_type = Option<f64>, minimum = 0)]
    pub counted: Option<Decimal>,
    #[serde(default)]
    pub denominations: Option<Vec<Denomination>>,
}

/// Largest count of one denomination.
pub const DENOMINATION_COUNT_MAX: u64 = 1_000_000;

impl CloseSessionRequest {
    pub fn into_command(
        self,
        session_id: Uuid,
        currency: Currency,
    ) -> Result<CloseSession, FieldError> {
        let denominations = self.denominations.unwrap_or_default();
        if denominations.len() > DENOMINATIONS_MAX {
            return Err(FieldError::new(
                "denominations",
                format!("at most {DENOMINATIONS_MAX}"),
            ));
        }
        let mut sum: i64 = 0;
        for (i, d) in denominations.iter().enumerate() {
            let value = price(&format!("denominations[{i}].value"), d.value, currency)?;
            if value.minor == 0 {
                return Err(FieldError::new(
                    format!("denominations[{i}].value"),
                    "must be above 0",
                ));
            }
            if d.count > DENOMINATION_COUNT_MAX {
                return Err(FieldError::new(
                    format!("denominations[{i}].count"),
                    format!("must be at most {DENOMINATION_COUNT_MAX}"),
                ));
            }
            sum = value
                .minor
                .checked_mul(d.count as i64)
                .and_then(|m| sum.checked_add(m))
                .ok_or_else(|| FieldError::new("denominations", "the count overflows"))?;
        }
        let by_denomination = Money {
            minor: sum,
            currency,
        };
        let counted = match (self.counted, denominations.is_empty()) {
            (Some(c), _) => {
                let counted = price("counted", c, currency)?;
                if !denominations.is_empty() && counted != by_denomination {
                    return Err(FieldError::new(
                        "counted",
                        format!(
                            "differs from the denominations' sum {}",
                            by_denomination.to_decimal()
                        ),
                    ));
                }
                counted
            }
            (None, false) => by_denomination,
            (None, true) => {
                return Err(FieldError::new(
                    "counted",
                    "give the counted cash or its denominations",
                ));
            }
        };
        Ok(CloseSession {
            session_id,
            counted,
            denominations,
            staff: None,
        })
    }
}

/// A cash move as a session shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CashMoveBody {
    pub kind: CashMove,
    #[schema(value_type = f64)]
    pub amount: Decimal,
    pub reason: String,
    #[schema(value_type = Option<String>)]
    pub staff: Option<StaffId>,
    pub approved_by: Option<String>,
    #[schema(value_type = String)]
    pub at: Timestamp,
}

impl From<&SessionCashMoved> for CashMoveBody {
    fn from(e: &SessionCashMoved) -> Self {
        Self {
            kind: e.kind,
            amount: e.amount,
            reason: e.reason.clone(),
            staff: e.staff.clone(),
            approved_by: e.approved_by.clone(),
            at: e.at,
        }
    }
}

/// Open or closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Open,
    Closed,
}

/// A drawer session, `GET /sessions/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub till: NodeId,
    pub status: SessionStatus,
    #[schema(value_type = String)]
    pub currency: Currency,
    #[schema(value_type = f64)]
    pub float: Decimal,
    #[schema(value_type = String)]
    pub opened_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub opened_by: Option<StaffId>,
    pub moves: Vec<CashMoveBody>,
    /// The Z number, once closed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub z: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>)]
    pub closed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>)]
    pub closed_by: Option<StaffId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<f64>)]
    pub expected: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<f64>)]
    pub counted: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<f64>)]
    pub variance: Option<Decimal>,
}

impl SessionResponse {
    pub fn new(
        opened: &SessionOpened,
        moves: &[SessionCashMoved],
        closed: Option<&SessionClosed>,
    ) -> Self {
        Self {
            id: opened.session_id,
            till: opened.till.clone(),
            status: if closed.is_some() {
                SessionStatus::Closed
            } else {
                SessionStatus::Open
            },
            currency: opened.currency,
            float: opened.float,
            opened_at: opened.opened_at,
            opened_by: opened.staff.clone(),
            moves: moves.iter().map(CashMoveBody::from).collect(),
            z: closed.map(|c| c.z),
            closed_at: closed.map(|c| c.closed_at),
            closed_by: closed.and_then(|c| c.staff.clone()),
            expected: closed.map(|c| c.expected),
            counted: closed.map(|c| c.counted),
            variance: closed.map(|c| c.variance),
        }
    }
}

/// X (the session still open: so far) or Z (closed: final, numbered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ReportKind {
    X,
    Z,
}

/// `GET /sessions/{id}/report`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportResponse {
    pub kind: ReportKind,
    pub session_id: Uuid,
    #[schema(value_type = String)]
    pub till: NodeId,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub z: Option<u64>,
    #[schema(value_type = String)]
    pub currency: Currency,
    #[schema(value_type = f64)]
    pub float: Decimal,
    pub totals: SessionTotals,
    /// Float + cash tendered − change + paid in − paid out − cash refunds.
    #[schema(value_type = f64)]
    pub expected_cash: Decimal,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<f64>)]
    pub counted: Option<Decimal>,
    /// Counted − expected: negative when short.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<f64>)]
    pub variance: Option<Decimal>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub denominations: Vec<Denomination>,
    #[schema(value_type = String)]
    pub opened_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub opened_by: Option<StaffId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>)]
    pub closed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>)]
    pub closed_by: Option<StaffId>,
    /// The till's log from `fromSeq` to `toSeq` is what the report sums.
    pub from_seq: u64,
    pub to_seq: u64,
    /// Receipts printed again (DUPLICATE).
    pub reprints: u64,
}

impl ReportResponse {
    /// The Z report a close recorded.
    pub fn z(closed: &SessionClosed) -> Self {
        Self {
            kind: ReportKind::Z,
            session_id: closed.session_id,
            till: closed.till.clone(),
            z: Some(closed.z),
            currency: closed.currency,
            float: closed.float,
            totals: (*closed.totals).clone(),
            expected_cash: closed.expected,
            counted: Some(closed.counted),
            variance: Some(closed.variance),
            denominations: closed.denominations.clone(),
            opened_at: closed.opened_at,
            opened_by: closed.opened_by.clone(),
            closed_at: Some(closed.closed_at),
            closed_by: closed.staff.clone(),
            from_seq: closed.from_seq,
            to_seq: closed.to_seq,
            reprints: closed.reprints.unwrap_or(0),
        }
    }
}
