//! Web pages served from assets embedded in the binary (the node's register, the hub's
//! console): one set of response headers for both. The Content-Security-Policy keeps a page to
//! its own origin — nothing is fetched from anywhere else, so a page works with the uplink down.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Scripts and styles from this origin only; a receipt is shown from a `blob:` of its HTML
/// (whose inline style is the one inline thing allowed); requests to this origin only.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; frame-src blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// An embedded asset of `kind` (a MIME type) with the page headers.
pub fn asset(kind: &'static str, body: &'static str) -> Response {
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

/// An HTML page.
pub fn html(body: &'static str) -> Response {
    asset("text/html; charset=utf-8", body)
}

/// An ES module.
pub fn script(body: &'static str) -> Response {
    asset("text/javascript; charset=utf-8", body)
}

/// A style sheet.
pub fn style(body: &'static str) -> Response {
    asset("text/css; charset=utf-8", body)
}
