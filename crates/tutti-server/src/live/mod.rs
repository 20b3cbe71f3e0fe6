//! The live hub on WebSocket `/live/v1`: shows, connections, the stats frame.
//! The protocol is in `docs/protocol.md`; frame types are in `tutti-protocol`.
//!
//! Must never: hold a lock across `.await`; let a slow or hostile connection delay others.

mod conn;
mod fanout;
mod peer;
pub(crate) mod render;
pub mod show;
pub mod stats;
mod ticktimes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tutti_protocol::{ErrorCode, FrameError};

pub use show::{Actor, OverrideRequest, ShowRuntime};
pub use stats::HubStats;

/// Every show this node runs, and what connections share.
pub struct Hub {
    shows: RwLock<HashMap<String, Arc<ShowRuntime>>>,
    default_show: RwLock<Option<String>>,
    performer_token: String,
    /// Counters.
    pub stats: Arc<HubStats>,
    /// The performers' `stats` frame, refreshed once a second.
    pub stats_tx: watch::Sender<Utf8Bytes>,
    /// Fires once at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// The performers' `monitor` frame (levels and spectrum), refreshed 30 times a second.
    pub monitor_tx: watch::Sender<Utf8Bytes>,
    audio: std::sync::OnceLock<Arc<crate::audio::AudioOut>>,
    api: std::sync::OnceLock<tutti_api::ApiState>,
    pub(crate) next_performer: AtomicU32,
    connections: AtomicUsize,
    max_connections: usize,
}

impl Hub {
    /// A hub with no shows.
    pub fn new(
        performer_token: String,
        max_connections: usize,
        stats: Arc<HubStats>,
        shutdown: watch::Receiver<bool>,
    ) -> Hub {
        Hub {
            shows: RwLock::new(HashMap::new()),
            default_show: RwLock::new(None),
            performer_token,
            stats,
            stats_tx: watch::channel(Utf8Bytes::from_static("{}")).0,
            monitor_tx: watch::channel(Utf8Bytes::from_static("{}")).0,
            audio: std::sync::OnceLock::new(),
            api: std::sync::OnceLock::new(),
            shutdown,
            next_performer: AtomicU32::new(1),
            connections: AtomicUsize::new(0),
            max_connections,
        }
    }

    /// Add a show; the first added becomes the default.
    pub fn add_show(&self, show: Arc<ShowRuntime>) {
        let code = show.code.clone();
        self.shows
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(code.clone(), show);
        let mut d = self.default_show.write().unwrap_or_else(|p| p.into_inner());
        if d.is_none() {
            *d = Some(code);
        }
    }

    /// The default show's code.
    pub fn default_code(&self) -> Option<String> {
        self.default_show
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Look a show up by code (case-insensitive), or the default show.
    pub fn show(&self, code: Option<&str>) -> Result<Arc<ShowRuntime>, FrameError> {
        let code = match code {
            Some(c) => c.to_ascii_uppercase(),
            None => self.default_code().ok_or_else(|| {
                FrameError::new(ErrorCode::UnknownShow, "no show is running on this server")
            })?,
        };
        self.shows
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&code)
            .cloned()
            .ok_or_else(|| {
                FrameError::new(
                    ErrorCode::UnknownShow,
                    format!("no show with code '{code}'"),
                )
            })
    }

    /// All shows.
    pub fn shows(&self) -> Vec<Arc<ShowRuntime>> {
        self.shows
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Constant-time comparison with the configured performer token.
    pub fn check_performer_token(&self, given: Option<&str>) -> bool {
        let Some(given) = given else { return false };
        let (a, b) = (given.as_bytes(), self.performer_token.as_bytes());
        if a.len() != b.len() || b.is_empty() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Attach the management API, whose access tokens then admit performers (once).
    pub fn set_api(&self, api: tutti_api::ApiState) {
        let _ = self.api.set(api);
    }

    /// Whether `token` admits a performer to `show`: the configured performer token, or an
    /// access token of an admin or of an owner or performer of the show's ensemble.
    pub async fn authorize_performer(&self, token: Option<&str>, show: &ShowRuntime) -> bool {
        if self.check_performer_token(token) {
            return true;
        }
        let (Some(token), Some(api)) = (token, self.api.get()) else {
            return false;
        };
        let ensemble = match api.store.show(show.show_id).await {
            Ok(Some(row)) => match api.store.piece(row.piece_id).await {
                Ok(Some(piece)) => piece.ensemble_id,
                _ => None,
            },
            _ => None,
        };
        api.may_perform(token, ensemble).await
    }

    /// The guest whose device token (from `POST /api/v1/shows/{id}/guests`) is `token`, if
    /// it is bound to `show`. An unknown token, one of another show, or a server without the
    /// management API is `unauthorized`; a store failure is `internal`. The store is async,
    /// so this never blocks the connection's task on SQLite.
    pub async fn guest_of(&self, token: &str, show: &ShowRuntime) -> Result<i64, FrameError> {
        let refused = |why: &str| {
            FrameError::new(
                ErrorCode::Unauthorized,
                format!("device token refused: {why}"),
            )
        };
        let Some(api) = self.api.get() else {
            return Err(refused("this server does not issue device tokens"));
        };
        let guest = api
            .store
            .guest(tutti_api::auth::token_hash(token))
            .await
            .map_err(|e| {
                FrameError::new(
                    ErrorCode::Internal,
                    format!("could not check the device token: {e}"),
                )
            })?
            .ok_or_else(|| refused("unknown device token"))?;
        if guest.show_id != show.show_id {
            return Err(refused(&format!(
                "the device token belongs to another show, not '{}'",
                show.code
            )));
        }
        Ok(guest.id)
    }

    /// Attach the embedded audio engine (once).
    pub fn set_audio(&self, audio: Arc<crate::audio::AudioOut>) {
        let _ = self.audio.set(audio);
    }

    /// The embedded audio engine, when it is the show's sound.
    pub fn audio(&self) -> Option<Arc<crate::audio::AudioOut>> {
        self.audio.get().cloned()
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.connections.load(Relaxed)
    }
}

/// Decrements the connection count when a socket task ends.
struct ConnGuard(Arc<Hub>);
impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Relaxed);
    }
}

/// Whether a comma-separated header has `token` among its values (case-insensitive).
fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Check a WebSocket opening handshake (RFC 6455 §4.2.1); the `Sec-WebSocket-Key`, or
/// what is wrong with the request.
fn handshake_key(req: &Request) -> Result<HeaderValue, &'static str> {
    if req.method() != Method::GET {
        return Err("a WebSocket handshake is a GET request");
    }
    let h = req.headers();
    if !header_has(h, header::CONNECTION, "upgrade") {
        return Err("the Connection header must include 'upgrade'");
    }
    if !header_has(h, header::UPGRADE, "websocket") {
        return Err("the Upgrade header must be 'websocket'");
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    h.get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or("the Sec-WebSocket-Key header is missing")
}

/// `GET /live/v1`: upgrade, unless the server is at its connection limit.
///
/// The hub takes the TCP socket itself after the handshake (see `peer`): the audience
/// fan-out writes state frames to it directly, which needs the socket rather than a
/// WebSocket stream owned by one task.
pub async fn upgrade(State(hub): State<Arc<Hub>>, mut req: Request) -> Response {
    let key = match handshake_key(&req) {
        Ok(k) => k,
        Err(why) => return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket\n",
        )
            .into_response();
    };
    let n = hub.connections.fetch_add(1, Relaxed);
    if n >= hub.max_connections {
        hub.connections.fetch_sub(1, Relaxed);
        hub.stats.refused.fetch_add(1, Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            format!(
                "Tutti is at its limit of {} connections; try again shortly.\n",
                hub.max_connections
            ),
        )
            .into_response();
    }
    let guard = ConnGuard(hub.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let peer = Arc::new(peer::Peer::new(parts.io.into_inner()));
                conn::serve(peer, parts.read_buf.to_vec(), hub).await;
            }
            Err(_) => tracing::error!(
                "a live connection did not come from the server's own listener; closed"
            ),
        }
    });
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
