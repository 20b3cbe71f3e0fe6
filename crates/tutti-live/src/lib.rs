//! The live hub's transport: WebSocket `/live/v1` (its own framing on the raw socket,
//! connections, the audience fan-out, the performers' feeds), the hub as a registry of
//! shows, performer admission behind one interface ([`Admission`]), and the listen stream
//! `/live/v1/audio` ([`listen`]). The protocol is in `docs/protocol.md`; frame types are in
//! `tutti-protocol`; shows and their ticks are `tutti-show`'s.
//!
//! Chat frames on the same socket go to the chat service through [`Chat`] (a [`ChatSession`]
//! per connection), which the composition root wires; this crate only carries them.
//!
//! Must never: hold a lock across `.await`; let a slow or hostile connection delay others;
//! know about the store, the management API, the chat service or the sound backends (they
//! come in through [`Admission`], [`Chat`], [`PcmSource`] and the show's ticks).

pub mod calibrate;
mod conn;
#[cfg(feature = "autobahn-echo")]
pub mod echo;
mod fanout;
pub mod listen;
mod peer;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tutti_protocol::{ErrorCode, FrameError};
use tutti_show::{HubStats, ShowRuntime, TickSink};

pub use conn::ws_config;
pub use fanout::{DetailFeed, Fanout, Published};
pub use listen::{Listen, PcmSource};
pub use peer::{ack_frame, text_frame, Header, Peer};

/// A boxed future, as [`Admission`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who may perform and which guests belong to a show: the one interface both `/live/v1`
/// and `/live/v1/audio` ask. The composition root implements it (the configured token,
/// the management API's accounts and device tokens); the live crate knows nothing of them.
pub trait Admission: Send + Sync {
    /// Whether `token` admits a performer to `show`.
    fn performer<'a>(
        &'a self,
        token: Option<&'a str>,
        show: &'a ShowRuntime,
    ) -> BoxFuture<'a, bool>;

    /// The guest whose device token is `token`, if it is bound to `show`; otherwise an
    /// `unauthorized` error saying why (or `internal` when it could not be checked).
    fn guest<'a>(
        &'a self,
        token: &'a str,
        show: &'a ShowRuntime,
    ) -> BoxFuture<'a, Result<i64, FrameError>>;
}

/// Where a connection's chat comes from, as the chat service needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatOrigin {
    /// Not a show's audience (a performer, or a connection that joined no show, like the
    /// `/chat` page): it signs in with `chat_auth`.
    Staff,
    /// A display of show `show` (its code): anonymous and read-only, it follows only its
    /// show's wall (the messages crew approved for the big screen).
    Display {
        /// The show's code.
        show: String,
    },
    /// A phone in show `show` (its code), with its guest id when it came with a device token.
    Audience {
        /// The show's code.
        show: String,
        /// The guest, if any.
        guest: Option<i64>,
    },
}

/// Chat over `/live/v1`: the chat service, as the hub sees it (the composition root
/// implements it over the service; this crate knows nothing of rooms or the store).
pub trait Chat: Send + Sync {
    /// A chat session for one connection. The service may write the session's live events
    /// to `peer` itself with [`Peer::send_if_idle`] while the connection waits (never
    /// queueing behind other bytes); everything else it hands out through
    /// [`ChatSession::next`].
    fn session(&self, origin: ChatOrigin, peer: &Arc<Peer>) -> Box<dyn ChatSession>;
}

/// One connection's chat.
pub trait ChatSession: Send {
    /// Handles a chat frame; the replies to write at once, or one error (nothing changed).
    fn handle(
        &mut self,
        frame: tutti_protocol::ClientFrame,
    ) -> BoxFuture<'_, Result<Vec<String>, FrameError>>;

    /// The next frame to write (events, catch-up, presence, typing): waits while there is
    /// none; cancelling it loses nothing. The connection asks only when its socket has room.
    fn next(&mut self) -> BoxFuture<'_, Arc<str>>;

    /// The next frame if one is ready now, without waiting or reading storage (`None`: only
    /// [`ChatSession::next`] can tell; nothing is lost). The connection writes the frames
    /// ready at once together. By default, none.
    fn try_next(&mut self) -> Option<Arc<str>> {
        None
    }

    /// Whether it chats as someone (signed in, or named): such a connection needs no `join`.
    fn signed_in(&self) -> bool;
}

/// Admits performers by one fixed token and no guests (tests and tools).
pub struct TokenAdmission(pub String);

impl TokenAdmission {
    /// Constant-time comparison with the token.
    pub fn check(&self, given: Option<&str>) -> bool {
        token_eq(given, &self.0)
    }
}

/// Constant-time comparison of a given token with the expected one (an empty expected
/// token admits nobody).
pub fn token_eq(given: Option<&str>, expected: &str) -> bool {
    let Some(given) = given else { return false };
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Admission for TokenAdmission {
    fn performer<'a>(
        &'a self,
        token: Option<&'a str>,
        _show: &'a ShowRuntime,
    ) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(self.check(token)))
    }

    fn guest<'a>(
        &'a self,
        _token: &'a str,
        _show: &'a ShowRuntime,
    ) -> BoxFuture<'a, Result<i64, FrameError>> {
        Box::pin(std::future::ready(Err(FrameError::new(
            ErrorCode::Unauthorized,
            "device token refused: this server does not issue device tokens",
        ))))
    }
}

/// A show on the hub: its runtime and the two tick sinks the hub owns for it.
#[derive(Clone)]
pub struct LiveShow {
    /// The show.
    pub runtime: Arc<ShowRuntime>,
    /// The audience's sockets, written every audience publish.
    pub fanout: Arc<Fanout>,
    /// The detailed state for performers and displays.
    pub detail: Arc<DetailFeed>,
    /// Phones' calibration chirps and the performers who time them.
    pub calibration: Arc<calibrate::Calibrations>,
}

impl LiveShow {
    /// A cue from a performer (the page, OSC): `voice` on every phone of the show,
    /// `lead_ms` from now (the piece's lead when absent), sent at once.
    pub fn cue(
        &self,
        voice: &str,
        lead_ms: Option<u32>,
        zones: Option<Vec<String>>,
        sweep: Option<tutti_protocol::Sweep>,
        source: Option<tutti_protocol::Source>,
    ) -> Result<tutti_show::Cue, FrameError> {
        let cue = self
            .runtime
            .cue(voice, lead_ms, zones.as_deref(), sweep, source)?;
        let frame = tutti_protocol::ServerFrame::Cue {
            id: cue.id,
            voice: voice.to_owned(),
            at: cue.at_ms,
            zones,
            sweep,
            source,
        };
        self.fanout.cue(&frame.to_json());
        Ok(cue)
    }
}

/// Every show this node runs, and what connections share.
pub struct Hub {
    shows: RwLock<HashMap<String, LiveShow>>,
    default_show: RwLock<Option<String>>,
    admission: Arc<dyn Admission>,
    chat: Option<Arc<dyn Chat>>,
    /// Counters.
    pub stats: Arc<HubStats>,
    /// The performers' `stats` frame, refreshed once a second.
    pub stats_tx: watch::Sender<Arc<str>>,
    /// Fires once at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// The performers' `monitor` frame (levels and spectrum), refreshed 30 times a second.
    pub monitor_tx: watch::Sender<Arc<str>>,
    next_performer: AtomicU32,
    connections: AtomicUsize,
    max_connections: usize,
}

impl Hub {
    /// A hub with no shows.
    pub fn new(
        admission: Arc<dyn Admission>,
        max_connections: usize,
        stats: Arc<HubStats>,
        shutdown: watch::Receiver<bool>,
    ) -> Hub {
        Hub {
            shows: RwLock::new(HashMap::new()),
            default_show: RwLock::new(None),
            admission,
            chat: None,
            stats,
            stats_tx: watch::channel(Arc::from("{}")).0,
            monitor_tx: watch::channel(Arc::from("{}")).0,
            shutdown,
            next_performer: AtomicU32::new(1),
            connections: AtomicUsize::new(0),
            max_connections,
        }
    }

    /// Carries chat frames to `chat` (without it they are refused as `forbidden`).
    pub fn with_chat(mut self, chat: Arc<dyn Chat>) -> Hub {
        self.chat = Some(chat);
        self
    }

    /// The chat service, if chat is on.
    pub fn chat(&self) -> Option<&Arc<dyn Chat>> {
        self.chat.as_ref()
    }

    /// Add a show; the first added becomes the default. Returns the sinks the hub needs
    /// fed with the show's ticks (the audience fan-out and the detailed feed), for the
    /// caller to give its ticker with any others.
    pub fn add_show(&self, show: Arc<ShowRuntime>) -> Vec<Arc<dyn TickSink>> {
        let code = show.code.clone();
        let live = LiveShow {
            fanout: Arc::new(Fanout::new(&show)),
            detail: Arc::new(DetailFeed::default()),
            calibration: Arc::default(),
            runtime: show,
        };
        let sinks: Vec<Arc<dyn TickSink>> = vec![live.fanout.clone(), live.detail.clone()];
        self.shows
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(code.clone(), live);
        let mut d = self.default_show.write().unwrap_or_else(|p| p.into_inner());
        if d.is_none() {
            *d = Some(code);
        }
        sinks
    }

    /// The default show's code.
    pub fn default_code(&self) -> Option<String> {
        self.default_show
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Look a show up by code (case-insensitive), or the default show.
    pub fn live(&self, code: Option<&str>) -> Result<LiveShow, FrameError> {
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

    /// A show's runtime by code (case-insensitive), or the default show's.
    pub fn show(&self, code: Option<&str>) -> Result<Arc<ShowRuntime>, FrameError> {
        self.live(code).map(|l| l.runtime)
    }

    /// All shows.
    pub fn shows(&self) -> Vec<Arc<ShowRuntime>> {
        self.shows
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|l| l.runtime.clone())
            .collect()
    }

    /// Who may perform, and which guests belong to a show.
    pub fn admission(&self) -> &Arc<dyn Admission> {
        &self.admission
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
pub async fn upgrade(State(hub): State<Arc<Hub>>, req: Request) -> Response {
    upgrade_as(hub, req, false).await
}

/// [`upgrade`], for the live protocol or (`echo`) the Autobahn echo endpoint.
async fn upgrade_as(hub: Arc<Hub>, mut req: Request, echo: bool) -> Response {
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
                conn::serve(peer, parts.read_buf.to_vec(), hub, echo).await;
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
