//! The pages, served from the binary: `web/` is embedded at build time. Also the QR code
//! of a join URL and a small info endpoint the pages use. Every page and asset response
//! carries [`security_headers`]: a strict Content-Security-Policy (the pages load nothing
//! from outside the server and run no inline script or style), no framing, no sniffing.
//!
//! Must never: read files from disk at run time (the binary is the whole product), or
//! serve a page without the security headers.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use serde::Deserialize;

use tutti_live::Hub;

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

/// The pages' Content-Security-Policy. `'self'` covers what the pages use: their ES
/// modules and style sheets, the audio worklet (`web/audio/pcm-worklet.js`), the QR code
/// image (`/qr.svg`), `fetch` to the API and the WebSocket to the same host and port
/// (CSP level 3 matches `ws:`/`wss:` of the page's own origin with `'self'`). Images may
/// also be `data:` URLs: each page's empty icon (`<link rel="icon" href="data:,">`, so
/// browsers do not ask for `/favicon.ico`), and `blob:` URLs: chat attachments, which the
/// `/chat` page downloads with its bearer token and shows from a `blob:` URL of the bytes
/// (an `<img src>` cannot send the token). No inline script or style attribute is
/// allowed: the scripts set styles through the CSSOM.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to a page or asset response (a `map_response` layer on the
/// page routes): [`CONTENT_SECURITY_POLICY`], `X-Frame-Options: DENY` for browsers without
/// `frame-ancestors`, and `X-Content-Type-Options: nosniff`.
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `/` — the audience page.
pub async fn audience() -> Response {
    asset("index.html")
}

/// `/perform` — the performer dashboard.
pub async fn perform() -> Response {
    asset("perform.html")
}

/// `/chat` — staff chat (signs in through the API; the chat rides on `/live/v1`).
pub async fn chat() -> Response {
    asset("chat.html")
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

/// The memory whose state `/metrics` reports (a request extension set in `start`).
#[derive(Clone)]
pub struct MemoryMetrics(pub Option<tutti_memory::Memory>);

/// The chat service whose rooms `/metrics` counts (a request extension set in `start`).
#[derive(Clone)]
pub struct ChatMetrics(pub tutti_rooms::Rooms, pub crate::chat_sounds::ChatSounds);

/// The chat service's lines of `/metrics`: rooms followed and the sessions following them.
fn chat_metrics(
    out: &mut String,
    rooms: &tutti_rooms::Rooms,
    sounds: &crate::chat_sounds::ChatSounds,
) {
    use crate::metrics::scalar;
    use std::fmt::Write;
    let (followed, sessions) = rooms.counts();
    scalar(
        out,
        "tutti_chat_rooms_followed",
        "gauge",
        "Chat rooms that live connections follow now.",
        followed as f64,
    );
    scalar(
        out,
        "tutti_chat_room_followers",
        "gauge",
        "Live connections following a chat room, summed over rooms.",
        sessions as f64,
    );
    let c = sounds.counts();
    out.push_str(
        "# HELP tutti_chat_sounds_total Chat /play messages considered for a show's sound, by what became of them.\n# TYPE tutti_chat_sounds_total counter\n",
    );
    for (outcome, n) in [
        ("played", c.played),
        ("off", c.off),
        ("not_live", c.not_live),
        ("limited", c.limited),
    ] {
        let _ = writeln!(out, "tutti_chat_sounds_total{{outcome=\"{outcome}\"}} {n}");
    }
}

/// The memory's lines of `/metrics`: its breaker, queue, spill and indexes.
fn memory_metrics(out: &mut String, m: &tutti_memory::Memory) {
    use crate::metrics::scalar;
    use std::fmt::Write;
    let st = m.status();
    out.push_str(
        "# HELP tutti_memory_breaker_state The memory's circuit breaker around the store (1 for the state it is in).\n# TYPE tutti_memory_breaker_state gauge\n",
    );
    for s in ["closed", "open", "half_open"] {
        let _ = writeln!(
            out,
            "tutti_memory_breaker_state{{state=\"{s}\"}} {}",
            u8::from(st.breaker.as_str() == s)
        );
    }
    let rows: [(&str, &str, &str, f64); 12] = [
        (
            "tutti_memory_breaker_opens_total",
            "counter",
            "Times the breaker opened.",
            st.breaker_opens as f64,
        ),
        (
            "tutti_memory_write_failures_total",
            "counter",
            "Memory writes that failed or stalled.",
            st.write_failures as f64,
        ),
        (
            "tutti_memory_buffered",
            "gauge",
            "Memory writes waiting in memory.",
            st.buffered as f64,
        ),
        (
            "tutti_memory_spilled",
            "gauge",
            "Memory writes waiting in the spill files.",
            st.spilled as f64,
        ),
        (
            "tutti_memory_spilled_total",
            "counter",
            "Memory writes ever spilled.",
            st.spilled_total as f64,
        ),
        (
            "tutti_memory_replayed_total",
            "counter",
            "Memory writes replayed from the spill.",
            st.replayed_total as f64,
        ),
        (
            "tutti_memory_committed_total",
            "counter",
            "Memory writes committed.",
            st.committed_total as f64,
        ),
        (
            "tutti_memory_derive_failures_total",
            "counter",
            "Derived index updates that failed (journalled).",
            st.derive_failures as f64,
        ),
        (
            "tutti_memory_episodes",
            "gauge",
            "Episodes in the memory's indexes.",
            st.index.episodes as f64,
        ),
        (
            "tutti_memory_moments",
            "gauge",
            "Moments in the memory's indexes.",
            st.index.moments as f64,
        ),
        (
            "tutti_memory_index_bytes",
            "gauge",
            "Bytes held by the memory's moment indexes.",
            st.index.moment_bytes as f64,
        ),
        (
            "tutti_memory_rebuild_seconds",
            "gauge",
            "How long the start-up rebuild of the indexes took.",
            st.rebuild_ms as f64 / 1000.0,
        ),
    ];
    for (name, kind, help, v) in rows {
        scalar(out, name, kind, help, v);
    }
}

/// `/metrics` — Prometheus text format.
pub async fn metrics(
    State(hub): State<Arc<Hub>>,
    memory: Option<axum::Extension<MemoryMetrics>>,
    chat: Option<axum::Extension<ChatMetrics>>,
) -> Response {
    use crate::metrics::scalar;
    use std::sync::atomic::Ordering::Relaxed;
    let s = &hub.stats;
    let mut out = String::with_capacity(8192);
    s.tick.render(
        &mut out,
        "tutti_tick_seconds",
        "Consensus tick computation time.",
    );
    s.serialize.render(
        &mut out,
        "tutti_serialize_seconds",
        "Rendering the audience state frame.",
    );
    s.fanout.render(
        &mut out,
        "tutti_fanout_seconds",
        "From publishing a state to its latest delivery.",
    );
    s.lag.render(
        &mut out,
        "tutti_outbound_lag_seconds",
        "From publishing a state to writing it to one connection.",
    );
    s.input_wait.render(
        &mut out,
        "tutti_input_wait_seconds",
        "How long the oldest input waited for its tick.",
    );
    for (role, n) in [
        ("audience", s.audience.load(Relaxed)),
        ("performer", s.performer.load(Relaxed)),
        ("display", s.display.load(Relaxed)),
        ("pending", s.pending.load(Relaxed)),
    ] {
        use std::fmt::Write;
        if role == "audience" {
            out.push_str("# HELP tutti_connections Open WebSocket connections by state.\n# TYPE tutti_connections gauge\n");
        }
        let _ = writeln!(out, "tutti_connections{{state=\"{role}\"}} {n}");
    }
    scalar(
        &mut out,
        "tutti_connections_refused_total",
        "counter",
        "Connections refused at the limit.",
        s.refused.load(Relaxed) as f64,
    );
    scalar(
        &mut out,
        "tutti_inputs_accepted_total",
        "counter",
        "Inputs and votes applied.",
        s.inputs_accepted.load(Relaxed) as f64,
    );
    scalar(
        &mut out,
        "tutti_inputs_rejected_total",
        "counter",
        "Inputs and votes refused.",
        s.inputs_rejected.load(Relaxed) as f64,
    );
    scalar(
        &mut out,
        "tutti_states_delivered_total",
        "counter",
        "Audience state frames written.",
        s.states_delivered.load(Relaxed) as f64,
    );
    scalar(
        &mut out,
        "tutti_states_skipped_total",
        "counter",
        "Audience state frames skipped by latest-wins.",
        s.states_skipped.load(Relaxed) as f64,
    );
    scalar(
        &mut out,
        "tutti_states_late_total",
        "counter",
        "Deliveries later than one state period (or 200 ms, whichever is shorter).",
        s.states_late.load(Relaxed) as f64,
    );
    scalar(
        &mut out,
        "tutti_state_rate_hz",
        "gauge",
        "Audience state frames per second in force.",
        s.state_rate_millihz.load(Relaxed) as f64 / 1000.0,
    );
    scalar(
        &mut out,
        "tutti_ticks_total",
        "counter",
        "Consensus ticks computed.",
        s.ticks.load(Relaxed) as f64,
    );
    out.push_str(
        "# HELP tutti_errors_total Error frames by code.\n# TYPE tutti_errors_total counter\n",
    );
    for code in tutti_protocol::ErrorCode::ALL {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "tutti_errors_total{{code=\"{}\"}} {}",
            code.as_str(),
            s.errors_of(code)
        );
    }
    if let Some(axum::Extension(MemoryMetrics(Some(m)))) = &memory {
        memory_metrics(&mut out, m);
    }
    if let Some(axum::Extension(ChatMetrics(rooms, sounds))) = &chat {
        chat_metrics(&mut out, rooms, sounds);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
