//! `GET /register`: the till screen (issue 19), plain ES modules and CSS embedded in the binary
//! at build time (`node/register/`: no build step, nothing fetched from anywhere else, so it
//! works with the store's uplink down — this till's node serves it). The page holds no data:
//! every call it makes is an API call with its bearer token. Its Content-Security-Policy
//! (`fusion_http::page`) lets it talk to this node only.

use axum::response::Response;
use fusion_http::page as assets;

const INDEX: &str = include_str!("../../register/index.html");
const SCRIPT: &str = include_str!("../../register/register.js");
const STYLE: &str = include_str!("../../register/register.css");

pub async fn page() -> Response {
    assets::html(INDEX)
}

pub async fn script() -> Response {
    assets::script(SCRIPT)
}

pub async fn style() -> Response {
    assets::style(STYLE)
}
