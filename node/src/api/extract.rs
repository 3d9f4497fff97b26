//! Request extractors: JSON bodies with errors that name the field, bearer-token principals,
//! the write context (correlation id, `Idempotency-Key`), and list paging.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use fusion_contracts::http::Role;
use fusion_contracts::{CorrelationId, StaffId};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::store::{Grant, Idempotency};
pub use fusion_http::{parse_json, query_number};

/// Largest accepted request body: a 200-line order is ~20 KiB.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted `Idempotency-Key`.
const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
/// List paging bounds (FusionCommerce: limit 1–200, default 50).
pub const LIST_LIMIT_DEFAULT: usize = 50;
pub const LIST_LIMIT_MAX: usize = 200;
/// Deepest offset served; paging deeper than this should filter instead.
const LIST_OFFSET_MAX: usize = 1_000_000;

/// A JSON body, and — when the request carries an `Idempotency-Key` — a digest of the request
/// (method, path, body) to recognise a retry.
pub struct JsonBody<T> {
    pub value: T,
    pub digest: Option<[u8; 32]>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let keyed = req.headers().contains_key(IDEMPOTENCY_KEY);
        let mut hasher = keyed.then(|| {
            let mut hasher = Sha256::new();
            hasher.update(req.method().as_str().as_bytes());
            hasher.update(b" ");
            hasher.update(req.uri().path().as_bytes());
            hasher.update(b"\n");
            hasher
        });
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| fusion_http::unreadable_body(r, BODY_BYTES_MAX))?;
        let value = parse_json(&bytes)?;
        let digest = hasher.take().map(|mut h| {
            h.update(&bytes);
            h.finalize().into()
        });
        Ok(JsonBody { value, digest })
    }
}

/// The authenticated caller: a token's grant, or a staff member signed in at this till
/// (`POST /staff/sign-in`), whose role is their role in the store's staff (read at each
/// request, so a member made inactive or demoted is so at once).
#[derive(Clone, Debug)]
pub struct Principal {
    pub grant: Grant,
    pub staff: Option<StaffId>,
}

impl Principal {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.grant.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(role))
        }
    }

    /// Who an approval or a record names: `staff:<id>`, else `token:<id>`.
    pub fn name(&self) -> String {
        match &self.staff {
            Some(staff) => fusion_rules::staff::staff_name(staff),
            None => format!("token:{}", self.grant.token_id),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = fusion_http::bearer_token(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let hash = fusion_http::token::hash(token);
        if token.starts_with(crate::staff::SIGN_IN_TOKEN_PREFIX) {
            let now = state.store.now();
            let sign_in = state
                .staff
                .signed_in(&hash, now)
                .ok_or_else(ApiError::unauthorized)?;
            // The till's token it was made with must still be valid, and the member active.
            let device = state
                .store
                .authenticate_id(sign_in.token_id)
                .ok_or_else(ApiError::unauthorized)?;
            let record = state
                .store
                .settings()
                .staff
                .remove(&sign_in.staff)
                .filter(|r| r.active)
                .ok_or_else(ApiError::unauthorized)?;
            return Ok(Principal {
                grant: Grant {
                    token_id: device.token_id,
                    role: record.role,
                },
                staff: Some(sign_in.staff),
            });
        }
        let grant = state
            .store
            .authenticate(&hash)
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Principal { grant, staff: None })
    }
}

/// The request's correlation id, shared between the request middleware (which fills it from
/// `X-Correlation-Id` and echoes it in the answer) and the write path (which makes one when the
/// client sent none).
#[derive(Clone, Debug, Default)]
pub struct CorrelationSlot(pub Arc<OnceLock<CorrelationId>>);

/// What every write carries besides its command.
pub struct WriteContext {
    pub correlation_id: CorrelationId,
    pub idempotency_key: Option<String>,
}

impl WriteContext {
    pub fn idempotency(&self, digest: [u8; 32]) -> Option<Idempotency> {
        self.idempotency_key.clone().map(|key| Idempotency {
            key,
            fingerprint: digest,
        })
    }
}

impl FromRequestParts<AppState> for WriteContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        // Without an X-Correlation-Id this write starts a new correlation; the answer carries it.
        let correlation_id = match parts.extensions.get::<CorrelationSlot>() {
            Some(slot) => slot.0.get_or_init(super::new_correlation_id).clone(),
            None => super::new_correlation_id(),
        };
        let idempotency_key = match parts.headers.get(IDEMPOTENCY_KEY) {
            None => None,
            Some(value) => {
                let key = value.to_str().ok().filter(|k| {
                    !k.is_empty()
                        && k.len() <= IDEMPOTENCY_KEY_LEN_MAX
                        && k.bytes().all(|b| b.is_ascii_graphic())
                });
                let key = key.ok_or_else(|| {
                    ApiError::validation(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    )
                })?;
                Some(key.to_string())
            }
        };
        Ok(WriteContext {
            correlation_id,
            idempotency_key,
        })
    }
}

/// `?limit=&offset=` of list endpoints.
pub struct Page {
    pub limit: usize,
    pub offset: usize,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::validation("query", "is not a valid query string"))?;
        Ok(Page {
            limit: query_number(&query, "limit", LIST_LIMIT_DEFAULT, 1, LIST_LIMIT_MAX)?,
            offset: query_number(&query, "offset", 0, 0, LIST_OFFSET_MAX)?,
        })
    }
}
