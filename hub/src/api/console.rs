//! `GET /console`: the fleet console (issue 19), plain ES modules and CSS embedded in the binary
//! at build time (`hub/console/`: no build step, nothing fetched from anywhere else). The page
//! holds no data: it reads this hub's API with the hub token it is given (a viewer reads, an
//! admin also retries dead letters), under the same Content-Security-Policy as a till's
//! register (`fusion_http::page`).

use axum::response::Response;
use fusion_http::page as assets;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

pub(super) async fn page() -> Response {
    assets::html(INDEX)
}

pub(super) async fn script() -> Response {
    assets::script(SCRIPT)
}

pub(super) async fn style() -> Response {
    assets::style(STYLE)
}
