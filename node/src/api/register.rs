//! `GET /register`: the till screen (issue 19), plain ES modules and CSS embedded in the binary
//! at build time (`node/register/`: no build step, nothing fetched from anywhere else, so it
//! works with the store's uplink down — this till's node serves it). The page holds no data:
//! every call it makes is an API call with its bearer token. Its Content-Security-Policy lets
//! it talk to this node only.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../register/index.html");
const SCRIPT: &str = include_str!("../../register/register.js");
const STYLE: &str = include_str!("../../register/register.css");

/// Scripts and styles from this origin only; a receipt is shown from a `blob:` of its HTML
/// (whose inline style is the one inline thing allowed); requests to this node only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; frame-src blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, kind)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new binary brings new assets: the browser asks again each time (they are small).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
