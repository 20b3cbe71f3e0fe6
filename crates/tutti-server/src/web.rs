//! The pages, served from the binary: `web/` is embedded at build time. Also the QR code
//! of a join URL and a small info endpoint the pages use.
//!
//! Must never: read files from disk at run time (the binary is the whole product).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use serde::Deserialize;

use crate::live::Hub;

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_string()),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                ],
                file.data,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no such file: {path}\n")).into_response(),
    }
}

/// `/` — the audience page.
pub async fn audience() -> Response {
    asset("index.html")
}

/// `/perform` — the performer dashboard.
pub async fn perform() -> Response {
    asset("perform.html")
}

/// `/display` — the big screen.
pub async fn display() -> Response {
    asset("display.html")
}

/// `/web/{*path}` — scripts, styles and other assets.
pub async fn file(Path(path): Path<String>) -> Response {
    if path.contains("..") {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    }
    asset(&path)
}

/// Query of `/qr.svg`.
#[derive(Deserialize)]
pub struct QrQuery {
    text: String,
}

/// `/qr.svg?text=…` — a QR code as SVG (text up to 512 bytes).
pub async fn qr(Query(q): Query<QrQuery>) -> Response {
    if q.text.is_empty() || q.text.len() > 512 {
        return (
            StatusCode::BAD_REQUEST,
            "text must be 1–512 bytes\n".to_string(),
        )
            .into_response();
    }
    match qrcode::QrCode::new(q.text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build();
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("cannot encode: {e}\n")).into_response(),
    }
}

/// `/api/v1/info` — the default show and its join URL.
pub async fn info(State(hub): State<Arc<Hub>>) -> Response {
    let show = hub.show(None).ok();
    axum::Json(serde_json::json!({
        "default_show": show.as_ref().map(|s| s.code.clone()),
        "join_url": show.as_ref().map(|s| s.join_url.clone()),
        "title": show.as_ref().map(|s| s.spec.title.clone()),
    }))
    .into_response()
}

/// `/healthz`
pub async fn health() -> &'static str {
    "ok\n"
}
