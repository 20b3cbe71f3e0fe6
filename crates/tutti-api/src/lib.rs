//! Tutti's HTTP management API, `/api/v1`: first-run setup, accounts and sign-in (bearer
//! tokens with refresh rotation, cookie sessions with CSRF), ensembles and members, pieces
//! and their lifecycle, immutable spec versions with atomic publishing, shows with their
//! lifecycle, guests, exports, the event history and streams, webhooks, the guided-setup
//! wizard, the performance memory (`routes::memory`), and the OpenAPI document generated from
//! this code.
//!
//! Read in this order: [`ApiState`] and [`router`] (here), [`error`] (the one envelope),
//! [`extract`] (strict JSON bodies), [`auth`] (who is calling, what they may do; the
//! credential cache), [`limits`] (the client's address, sign-in and guest-token limits, the
//! password-hashing slots), [`middleware`] (request ids, envelopes, deprecation headers),
//! then the route modules. `docs/api.md` is the reference and the versioning policy.
//!
//! Hot path: an authenticated `GET /pieces/{id}` is answered from memory (verified
//! credentials, pieces and memberships are cached briefly and dropped on every change made
//! here), so it costs one SHA-256 and no SQLite or argon2 work.
//!
//! Must never: answer a failure outside the envelope, write half of a change (each change is
//! one store operation), hash passwords on the async threads or beyond the hashing slots, let
//! one client's failures lock an account for others, or reveal a secret twice (tokens are
//! shown once; the store keeps sha256 hashes).

pub mod auth;
mod bots;
mod cache;
pub mod error;
pub mod extract;
mod idem;
pub mod limits;
pub mod middleware;
mod openapi;
mod page;
mod routes;
mod wizard;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tutti_store::{ShowRow, Store};

pub use auth::{Caller, Need};
pub use error::ApiError;
pub use middleware::{deprecation_headers, Deprecation, RequestId, DEPRECATIONS};

/// Settings of the API (the server's `[api]` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Largest request body in bytes; larger ones get 413 `payload_too_large`.
    pub body_limit: usize,
    /// Lifetime of an access token, seconds.
    pub access_ttl_s: u64,
    /// Lifetime of a refresh token, seconds.
    pub refresh_ttl_s: u64,
    /// Lifetime of a cookie session, seconds.
    pub session_ttl_s: u64,
    /// Base URL for join links (`http://host:port`, no trailing slash).
    pub base_url: String,
    /// Mark cookies `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// Password hashes (argon2id) computed at once; 0 means one per core. Sign-ins finding
    /// every slot busy get 429 `rate_limited`.
    pub password_hash_concurrency: usize,
    /// Guest tokens one client address may ask for per minute (all at once, then refilled
    /// evenly); more get 429 `rate_limited`.
    pub guests_per_minute: u32,
    /// Largest chat attachment in bytes; larger uploads get 413 `payload_too_large` and
    /// nothing is stored.
    pub attachment_limit: usize,
    /// How long a chat bot's outgoing webhook has to answer before the failure message is
    /// posted instead (default 7 s).
    pub bot_timeout: std::time::Duration,
}

/// The default time a chat bot's webhook has to answer: 7 s.
pub const DEFAULT_BOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7);

/// The default largest chat attachment: 10 MiB.
pub const DEFAULT_ATTACHMENT_LIMIT: usize = 10 << 20;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: 2 << 20,
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 86_400,
            session_ttl_s: 12 * 3600,
            base_url: "http://127.0.0.1:7878".into(),
            secure_cookies: false,
            password_hash_concurrency: 0,
            guests_per_minute: 120,
            attachment_limit: DEFAULT_ATTACHMENT_LIMIT,
            bot_timeout: DEFAULT_BOT_TIMEOUT,
        }
    }
}

/// What the API tells the live hub: a show changed status (the hub opens a show going live
/// from its recorded spec version, and follows pauses and ends). The returned future
/// completes once the hub has acted.
pub trait LiveHook: Send + Sync + 'static {
    /// Called after a show's status change was committed.
    fn show_changed(&self, show: ShowRow) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// Whether `token` is this node's performer token (its holder may read every show's
    /// report, as the dashboard does).
    fn performer_token_ok(&self, _token: &str) -> bool {
        false
    }
}

/// What the API tells chat's live side after a chat change made through a route committed:
/// the room and the `seq` of the change, so that live subscribers get it too (the live side
/// reads the event from the store). Implemented by the chat service in the composition root;
/// the API knows nothing of it. It must return at once (it may spawn work).
pub trait ChatNotifier: Send + Sync + 'static {
    /// Room `room_id` committed the change with this `seq`.
    fn chat_changed(&self, room_id: i64, seq: u64);

    /// User `user_id` was banned from room `room_id` (committed): close their live sessions
    /// in that room at once. Does nothing unless implemented.
    fn chat_banned(&self, room_id: i64, user_id: i64) {
        let _ = (room_id, user_id);
    }
}

/// The API's shared state. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Store,
    /// Settings.
    pub config: Arc<ApiConfig>,
    pub(crate) tokens: Arc<auth::TokenCache>,
    pub(crate) caches: Arc<cache::Caches>,
    pub(crate) logins: Arc<limits::LoginLimiter>,
    pub(crate) passwords: Arc<limits::PasswordGate>,
    pub(crate) guests: Arc<limits::RateLimiter>,
    pub(crate) live: Option<Arc<dyn LiveHook>>,
    /// Chat's live side, told of every chat change committed here.
    pub(crate) chat: Option<Arc<dyn ChatNotifier>>,
    /// The event streams (SSE and WebSocket), when the event system runs.
    pub(crate) events: Option<tutti_events::EventStreams>,
    /// The domain packs of the guided setup (`wizard.rs`).
    pub(crate) wizard: Arc<tutti_wizard::Wizard>,
    /// Reports being built at once (each parses every snapshot of a show).
    pub(crate) reports: Arc<tokio::sync::Semaphore>,
    /// Keys that open a report page (`routes::reports`).
    pub(crate) report_links: Arc<routes::reports::ReportLinks>,
    /// Where webhooks may point (checked on the URL's text at creation; the dispatcher checks
    /// resolved addresses at delivery).
    pub(crate) webhook_targets: Arc<tutti_events::TargetPolicy>,
    /// Chat bots' outgoing webhooks (`bots.rs`), connecting where `webhook_targets` allows.
    pub(crate) bots: Arc<bots::BotCalls>,
    /// The performance memory (`routes::memory`), when the server runs it.
    pub(crate) memory: Option<tutti_memory::Memory>,
    /// Where the API reads the time.
    pub(crate) clock: Clock,
}

impl ApiState {
    /// State over a store.
    pub fn new(store: Store, config: ApiConfig) -> ApiState {
        ApiState {
            store,
            passwords: Arc::new(limits::PasswordGate::new(config.password_hash_concurrency)),
            guests: Arc::new(limits::RateLimiter::new(config.guests_per_minute)),
            config: Arc::new(config),
            tokens: Arc::new(auth::TokenCache::default()),
            caches: Arc::new(cache::Caches::default()),
            logins: Arc::new(limits::LoginLimiter::default()),
            live: None,
            chat: None,
            events: None,
            wizard: wizard::default_wizard(),
            reports: Arc::new(tokio::sync::Semaphore::new(2)),
            report_links: Arc::default(),
            memory: None,
            clock: Clock::system(),
            webhook_targets: Arc::new(tutti_events::TargetPolicy::default()),
            bots: Arc::new(bots::BotCalls::new(tutti_events::TargetPolicy::default())),
        }
    }

    /// Uses this policy for new webhooks' URLs (default: public addresses only); give it the
    /// same policy as the dispatcher.
    pub fn with_webhook_targets(mut self, policy: tutti_events::TargetPolicy) -> ApiState {
        self.bots = Arc::new(bots::BotCalls::new(policy.clone()));
        self.webhook_targets = Arc::new(policy);
        self
    }

    /// Adds the performance memory (`/memory/...`).
    pub fn with_memory(mut self, memory: Option<tutti_memory::Memory>) -> ApiState {
        self.memory = memory;
        self
    }

    /// Reads the time from `clock` (default: the system clock).
    pub fn with_clock(mut self, clock: Clock) -> ApiState {
        self.clock = clock;
        self
    }

    /// Unix milliseconds now, by the API's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Uses these domain packs for the guided setup (default: the built-in ones).
    pub fn with_wizard(mut self, packs: Arc<tutti_wizard::Wizard>) -> ApiState {
        self.wizard = packs;
        self
    }

    /// Adds the event streams (`/events/stream`, `/events/ws`).
    pub fn with_events(mut self, streams: tutti_events::EventStreams) -> ApiState {
        self.events = Some(streams);
        self
    }

    /// Adds the live hub's hook.
    pub fn with_live(mut self, hook: Arc<dyn LiveHook>) -> ApiState {
        self.live = Some(hook);
        self
    }

    /// Tells `chat` of every chat change committed through the routes.
    pub fn with_chat(mut self, chat: Arc<dyn ChatNotifier>) -> ApiState {
        self.chat = Some(chat);
        self
    }

    /// A chat change committed: tell chat's live side.
    pub(crate) fn chat_changed(&self, room_id: i64, seq: u64) {
        if let Some(c) = &self.chat {
            c.chat_changed(room_id, seq);
        }
    }

    /// A ban committed: tell chat's live side to close the user's sessions in the room.
    pub(crate) fn chat_banned(&self, room_id: i64, user_id: i64) {
        if let Some(c) = &self.chat {
            c.chat_banned(room_id, user_id);
        }
    }

    /// The password-hashing slots (see [`limits::PasswordGate`]).
    pub fn password_gate(&self) -> &limits::PasswordGate {
        &self.passwords
    }

    /// The join URL of a show code.
    pub fn join_url(&self, code: &str) -> String {
        format!("{}/?show={code}", self.config.base_url)
    }
}

/// The name of every JSON request body type of `/api/v1`, for [`check_body`].
#[doc(hidden)]
pub const BODY_TYPES: [&str; 31] = [
    "setup",
    "login",
    "refresh",
    "password",
    "new_user",
    "new_ensemble",
    "new_member",
    "new_webhook",
    "memory_record",
    "memory_append",
    "memory_outcome",
    "memory_moments",
    "memory_episodes",
    "memory_rating",
    "memory_feedback",
    "new_piece",
    "patch_piece",
    "piece_transition",
    "new_spec",
    "new_show",
    "show_transition",
    "wizard_session",
    "wizard_answer",
    "wizard_draft",
    "chat_room",
    "chat_member",
    "chat_involvement",
    "chat_read",
    "chat_message",
    "chat_edit",
    "chat_boost",
];

/// Parses and validates `bytes` as a JSON body of the named type (one of [`BODY_TYPES`])
/// exactly as its route's extractor does, without HTTP: for the fuzz target `api_body`
/// (`docs/fuzzing.md`). An unknown name panics.
#[doc(hidden)]
pub fn check_body(name: &str, bytes: &[u8]) -> Result<(), ApiError> {
    routes::check_body(name, bytes)
        .or_else(|| wizard::check_body(name, bytes))
        .unwrap_or_else(|| panic!("no request body type named {name}"))
}

/// Where the API reads the time, in unix milliseconds: the system clock, or a manual clock
/// that tests move forward ([`Clock::manual`], [`Clock::advance`]) so that token lifetimes,
/// sign-in delays and rate limits are tested without waiting. (The short read caches of
/// `cache.rs` age on the system clock.)
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<std::sync::atomic::AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands at `start_ms` until [`Clock::advance`] moves it.
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(std::sync::atomic::AtomicI64::new(start_ms))),
        }
    }

    /// Moves a manual clock forward by `ms` (every copy of it sees the change); the system
    /// clock is not moved.
    pub fn advance(&self, ms: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Unix milliseconds now, by this clock.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(std::sync::atomic::Ordering::Relaxed),
            None => now_ms(),
        }
    }
}

/// Unix milliseconds now, by the system clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The whole API with absolute paths (`/api/v1/...`), ready to merge into the server's
/// router: every route, the OpenAPI document, the reference page, the envelope for
/// unknown paths and methods under `/api/v1`, the body limit and the request id.
pub fn router(state: ApiState) -> Router {
    let body_limit = state.config.body_limit;
    let (api, doc) = openapi::build();
    let doc = Arc::new(doc);
    api.merge(openapi::doc_routes(doc))
        .route("/api/v1/{*rest}", axum::routing::any(routes::unknown_path))
        .route("/api/v1", axum::routing::any(routes::unknown_path))
        .route(
            "/shows/{id}/report",
            axum::routing::get(routes::reports::page),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state)
}
