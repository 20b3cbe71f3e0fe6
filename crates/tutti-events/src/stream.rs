//! Live event streams for authorized clients: Server-Sent Events and WebSocket.
//!
//! A stream starts either at "now" or after a given event id (`?after=<id>` or the SSE
//! `Last-Event-ID` header, which browsers send when they reconnect), replays what it missed from
//! the outbox, then follows the bus. When the client falls behind the bus it lags, and the feed
//! catches up from the outbox by id, so a stream never skips or repeats an event it may see. What
//! a caller may see is decided by a [`Visibility`] the API layer builds from the caller's
//! identity; this module does no authentication itself and must never send an event the
//! visibility refuses, or more of an event than the visibility shows (see
//! [`Visibility::redact`]: crew see webhook events reduced to their ids).
//!
//! Wire form: SSE `id: <id>`, `event: <kind>`, `data: <record JSON>`; WebSocket: one text frame
//! per event with the record JSON (see [`EventRecord`]). Both send keep-alives (SSE comments,
//! WebSocket pings).

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tutti_store::{EventScope, Page, Store, StoreError};

use crate::bus::{BusRecvError, EventBus, Subscription};
use crate::config::StreamConfig;
use crate::event::EventRecord;

/// Decides which events a stream's caller may see, and how much of each.
pub trait Visibility: Send + Sync + 'static {
    /// Whether the caller may see `event`.
    fn can_see(&self, event: &EventRecord) -> bool;

    /// The event as this caller may see it, when that is less than all of it (e.g.
    /// [`EventRecord::redacted`]); `None` shows it whole. Called only for visible events.
    fn redact(&self, _event: &EventRecord) -> Option<EventRecord> {
        None
    }
}

/// `event` as `visibility` lets its caller see it: whole (borrowed), redacted, or not at all.
pub fn present<'a, V: Visibility + ?Sized>(
    visibility: &V,
    event: &'a EventRecord,
) -> Option<Cow<'a, EventRecord>> {
    if !visibility.can_see(event) {
        return None;
    }
    Some(match visibility.redact(event) {
        Some(r) => Cow::Owned(r),
        None => Cow::Borrowed(event),
    })
}

impl<F> Visibility for F
where
    F: Fn(&EventRecord) -> bool + Send + Sync + 'static,
{
    fn can_see(&self, event: &EventRecord) -> bool {
        self(event)
    }
}

/// The usual visibility: everything (administrators), or the events of some ensembles, with
/// the events about objects only editors may read ([`crate::editors_only`], webhooks)
/// [redacted](EventRecord::redacted) in the ensembles where the caller only reads (crew).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsembleVisibility {
    /// Sees every event, including those without an ensemble (account events).
    pub all: bool,
    /// Otherwise: the ensembles whose events it sees.
    pub ensembles: HashSet<i64>,
    /// Of those, the ensembles where it may read but not edit: editors-only events come redacted.
    pub read_only: HashSet<i64>,
}

impl EnsembleVisibility {
    /// Sees everything.
    pub fn everything() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    /// Sees the events of these ensembles, whole.
    pub fn of(ensembles: impl IntoIterator<Item = i64>) -> Self {
        Self {
            all: false,
            ensembles: ensembles.into_iter().collect(),
            read_only: HashSet::new(),
        }
    }

    /// Also sees the events of these ensembles, as a reader who may not edit (crew).
    pub fn reading(mut self, ensembles: impl IntoIterator<Item = i64>) -> Self {
        for id in ensembles {
            self.ensembles.insert(id);
            self.read_only.insert(id);
        }
        self
    }

    /// The matching store scope for history pages ([`Store::events_after`]).
    pub fn scope(&self) -> EventScope {
        if self.all {
            EventScope::All
        } else {
            let mut ids: Vec<i64> = self.ensembles.iter().copied().collect();
            ids.sort_unstable();
            EventScope::Ensembles(ids)
        }
    }
}

impl Visibility for EnsembleVisibility {
    fn can_see(&self, event: &EventRecord) -> bool {
        self.all
            || event
                .ensemble_id
                .is_some_and(|id| self.ensembles.contains(&id))
    }

    fn redact(&self, event: &EventRecord) -> Option<EventRecord> {
        let reader = !self.all
            && event
                .ensemble_id
                .is_some_and(|id| self.read_only.contains(&id));
        (reader && crate::event::editors_only(&event.kind)).then(|| event.redacted())
    }
}

/// The `?after=<event id>` query of the stream routes.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StreamQuery {
    /// Start after this event id (replaying the rest from the outbox).
    pub after: Option<i64>,
}

/// Where a stream starts: the `Last-Event-ID` header when present and numeric (a reconnecting
/// browser), else `after`. `None` means "from now on".
pub fn resume_after(headers: &HeaderMap, after: Option<i64>) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(after)
}

/// Makes feeds and stream responses. Cheap to clone; hand one to the API layer.
#[derive(Clone)]
pub struct EventStreams {
    store: Store,
    bus: EventBus,
    cfg: StreamConfig,
}

impl std::fmt::Debug for EventStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStreams")
            .field("subscribers", &self.bus.subscribers())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// One client's ordered view of the events it may see (see the module documentation).
pub struct EventFeed {
    store: Store,
    sub: Subscription,
    visibility: Arc<dyn Visibility>,
    last_id: i64,
    backlog: VecDeque<EventRecord>,
    catching_up: bool,
    batch: u32,
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeed")
            .field("last_id", &self.last_id)
            .field("catching_up", &self.catching_up)
            .finish_non_exhaustive()
    }
}

impl EventFeed {
    /// The next visible event, in id order; `None` when the bus or the store closed. Cancel-safe.
    pub async fn next(&mut self) -> Option<Arc<EventRecord>> {
        loop {
            if let Some(ev) = self.backlog.pop_front() {
                self.last_id = ev.id;
                match shown(self.visibility.as_ref(), Arc::new(ev)) {
                    Some(ev) => return Some(ev),
                    None => continue,
                }
            }
            if self.catching_up {
                let page = self
                    .store
                    .events_after(
                        Page {
                            after_id: Some(self.last_id),
                            limit: self.batch,
                        },
                        EventScope::All,
                    )
                    .await;
                match page {
                    Ok((rows, _)) if rows.is_empty() => self.catching_up = false,
                    Ok((rows, _)) => self
                        .backlog
                        .extend(rows.into_iter().map(EventRecord::from_row)),
                    Err(e) => {
                        if e != StoreError::Closed {
                            tracing::warn!(error = %e, "event stream: cannot catch up from the outbox");
                        }
                        return None;
                    }
                }
                continue;
            }
            match self.sub.recv().await {
                Ok(ev) if ev.id <= self.last_id => {}
                Ok(ev) => {
                    self.last_id = ev.id;
                    if let Some(ev) = shown(self.visibility.as_ref(), ev) {
                        return Some(ev);
                    }
                }
                Err(BusRecvError::Lagged { missed }) => {
                    tracing::debug!(missed, "event stream lagged; catching up from the outbox");
                    self.catching_up = true;
                }
                Err(BusRecvError::Closed) => return None,
            }
        }
    }

    /// The id of the last event this feed passed (shown or filtered out).
    pub fn last_id(&self) -> i64 {
        self.last_id
    }
}

/// What a feed sends for `ev`: nothing when hidden, else the event whole or redacted.
fn shown(visibility: &dyn Visibility, ev: Arc<EventRecord>) -> Option<Arc<EventRecord>> {
    let redacted = match present(visibility, &ev)? {
        Cow::Borrowed(_) => None,
        Cow::Owned(r) => Some(r),
    };
    Some(redacted.map_or(ev, Arc::new))
}

fn sse_event(ev: &EventRecord) -> SseEvent {
    SseEvent::default()
        .id(ev.id.to_string())
        .event(ev.kind.as_str())
        .data(ev.to_json())
}

/// 503 `unavailable` (the API's code for a saturated or stopped part) with `Retry-After`.
fn unavailable(e: &StoreError) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "unavailable",
            "message": format!("the event stream cannot start: {e}"),
            "details": null,
            "request_id": null,
        }
    });
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        axum::Json(body),
    )
        .into_response()
}

impl EventStreams {
    /// Streams over this store and bus.
    pub fn new(store: Store, bus: EventBus, cfg: StreamConfig) -> Self {
        Self { store, bus, cfg }
    }

    /// A feed of the events `visibility` allows, after event id `after` (replayed from the
    /// outbox) or, when `None`, from now on.
    pub async fn feed(
        &self,
        visibility: Arc<dyn Visibility>,
        after: Option<i64>,
    ) -> Result<EventFeed, StoreError> {
        // Subscribe before reading the outbox's end, so nothing falls between the two.
        let sub = self.bus.subscribe();
        let tail = self.store.last_event_id().await?;
        // An id past the end (e.g. from another database) starts at the end.
        let (last_id, catching_up) = match after {
            Some(after) if after < tail => (after.max(0), true),
            _ => (tail, false),
        };
        Ok(EventFeed {
            store: self.store.clone(),
            sub,
            visibility,
            last_id,
            backlog: VecDeque::new(),
            catching_up,
            batch: self.cfg.catch_up_batch,
        })
    }

    /// An SSE response (`text/event-stream`) following the events `visibility` allows, after
    /// `after` (see [`resume_after`]). Call it from an authenticated handler for
    /// `GET /api/v1/events/stream`.
    pub async fn sse(&self, visibility: Arc<dyn Visibility>, after: Option<i64>) -> Response {
        let feed = match self.feed(visibility, after).await {
            Ok(feed) => feed,
            Err(e) => return unavailable(&e),
        };
        let events = futures_util::stream::unfold(feed, |mut feed| async move {
            let ev = feed.next().await?;
            Some((Ok::<_, Infallible>(sse_event(&ev)), feed))
        });
        Sse::new(events)
            .keep_alive(KeepAlive::new().interval(self.cfg.keep_alive))
            .into_response()
    }

    /// Accepts a WebSocket upgrade and sends the events `visibility` allows, after `after`, one
    /// text frame each. Messages from the client are ignored (a close ends the stream). Call it
    /// from an authenticated handler for `GET /api/v1/events/ws`.
    pub async fn websocket(
        &self,
        upgrade: WebSocketUpgrade,
        visibility: Arc<dyn Visibility>,
        after: Option<i64>,
    ) -> Response {
        let feed = match self.feed(visibility, after).await {
            Ok(feed) => feed,
            Err(e) => return unavailable(&e),
        };
        let keep_alive = self.cfg.keep_alive;
        upgrade.on_upgrade(move |socket| ws_loop(socket, feed, keep_alive))
    }
}

async fn ws_loop(socket: WebSocket, mut feed: EventFeed, keep_alive: std::time::Duration) {
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval(keep_alive);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            ev = feed.next() => {
                let Some(ev) = ev else {
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                };
                if tx.send(Message::Text(ev.to_json().into())).await.is_err() {
                    return;
                }
            }
            msg = rx.next() => match msg {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if tx.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Routes `GET /events/stream` (SSE) and `GET /events/ws` (WebSocket), relative to where they
/// are nested (the API nests them under `/api/v1`). `authorize` turns the request headers into
/// the caller's [`Visibility`], or into the response to send instead (401, 403, …).
pub fn router<S, A, Fut>(streams: EventStreams, authorize: A) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    A: Fn(HeaderMap) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Arc<dyn Visibility>, Response>> + Send + 'static,
{
    let (sse_streams, sse_auth) = (streams.clone(), authorize.clone());
    let sse = move |headers: HeaderMap, Query(q): Query<StreamQuery>| {
        let (streams, authorize) = (sse_streams.clone(), sse_auth.clone());
        async move {
            let after = resume_after(&headers, q.after);
            match authorize(headers).await {
                Ok(visibility) => streams.sse(visibility, after).await,
                Err(response) => response,
            }
        }
    };
    let ws = move |upgrade: WebSocketUpgrade, headers: HeaderMap, Query(q): Query<StreamQuery>| {
        let (streams, authorize) = (streams.clone(), authorize.clone());
        async move {
            match authorize(headers).await {
                Ok(visibility) => streams.websocket(upgrade, visibility, q.after).await,
                Err(response) => response,
            }
        }
    };
    Router::new()
        .route("/events/stream", get(sse))
        .route("/events/ws", get(ws))
}
