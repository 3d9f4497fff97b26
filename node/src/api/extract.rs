//! Request extractors: JSON bodies with errors that name the field, bearer-token principals,
//! the write context (correlation id, `Idempotency-Key`), and list paging.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use fusion_contracts::CorrelationId;
use fusion_contracts::http::Role;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::store::{Grant, Idempotency};

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
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the request body exceeds {BODY_BYTES_MAX} bytes"),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the request body could not be read",
                )
            }
        })?;
        let value = parse_json(&bytes)?;
        let digest = hasher.take().map(|mut h| {
            h.update(&bytes);
            h.finalize().into()
        });
        Ok(JsonBody { value, digest })
    }
}

/// Parses a body; an empty body is `{}` so all-optional bodies may be omitted.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        field_error(&path, &inner)
    })?;
    de.end().map_err(|e| field_error(".", &e))?;
    Ok(value)
}

fn field_error(path: &str, err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let text = err.to_string();
    let message = match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    if !matches!(err.classify(), Category::Data) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {message}"),
        );
    }
    let parent = if path == "." {
        String::new()
    } else {
        path.to_string()
    };
    // serde reports a missing field at its parent; name the field itself.
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        let field = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
        return ApiError::validation(field, "is required");
    }
    if parent.is_empty() {
        return ApiError::validation("body", message);
    }
    ApiError::validation(
        parent,
        message.replace("invalid type: ", "has the wrong type: "),
    )
}

/// The authenticated caller.
#[derive(Clone, Copy, Debug)]
pub struct Principal(pub Grant);

impl Principal {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(role))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        let grant = state
            .store
            .authenticate(&crate::auth::hash(token))
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Principal(grant))
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

/// A numeric query parameter within `min..=max`, or `default` when absent.
pub fn query_number(
    query: &HashMap<String, String>,
    name: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match query.get(name) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(
                name,
                format!("must be an integer from {min} to {max}"),
            )),
        },
    }
}
