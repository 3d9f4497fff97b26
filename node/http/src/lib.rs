//! The HTTP edge the node and the hub share: one [`ApiError`] (JSON `{error, message, field?}`)
//! with the one mapping of the rulebook's refusals to statuses, JSON bodies whose errors name
//! the field ([`parse_json`], [`Json`]), query numbers within bounds, bearer tokens and their
//! minting (`token`), and blocking store
//! work off the async threads. Only this crate and the node's and hub's `api` modules import
//! axum.

mod error;
pub mod page;
pub mod pin;
pub mod token;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

pub use error::ApiError;

/// The bearer token of a request's `Authorization` header, if it has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// A JSON body whose errors name the field; an empty body is `{}`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| unreadable_body(r, AXUM_BODY_BYTES_MAX))?;
        parse_json(&bytes).map(Json)
    }
}

/// axum's default body limit, which [`Json`] reads under unless a router sets another.
pub const AXUM_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;

/// A body that could not be read: larger than `limit_bytes` (413), or broken (400).
pub fn unreadable_body(rejection: BytesRejection, limit_bytes: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit_bytes} bytes"),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request body could not be read",
        )
    }
}

/// Runs blocking store work off the async threads; a failure is a 500 (logged, not shown).
pub async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal_from)?
        .map_err(ApiError::internal_from)
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
