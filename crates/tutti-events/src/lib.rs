//! Tutti's events: typed events, the outbox relay, an in-process bus, signed webhooks with
//! retries and automatic disabling, and SSE / WebSocket streams.
//!
//! # How events flow
//! 1. A store operation that changes a management object appends its event to the `outbox` table
//!    **in the same transaction** (`tutti-store`), so no event is lost on a crash and none exists
//!    for a change that did not commit.
//! 2. The **relay** task ([`relay`]) reads the outbox after its cursor and, in one store write,
//!    creates a pending delivery for every matching active webhook and advances the cursor; then it
//!    publishes the events on the **bus** ([`EventBus`]). Its position is in `outbox_cursor`, so it
//!    resumes after a restart.
//! 3. The **dispatcher** task ([`dispatch`]) POSTs due deliveries, signed with HMAC-SHA256
//!    ([`signature`]), only to addresses its [`TargetPolicy`] allows ([`target`]), retries
//!    with jittered exponential backoff, and records every outcome (the delivery log); the
//!    store disables a webhook after repeated failures and appends `webhook.disabled`.
//! 4. **Signed calls** ([`call`]): one signed POST whose answer matters, for chat bots'
//!    outgoing webhooks (the API waits for the answer; nothing is retried or stored here).
//! 5. **Streams** ([`stream`]) follow the bus for authorized clients, replaying from the outbox by
//!    id when they start late or lag.
//!
//! # Starting it
//! ```no_run
//! # async fn demo(store: tutti_store::Store) -> Result<(), tutti_events::EventsError> {
//! let events = tutti_events::Events::start(store, tutti_events::EventsConfig::default())?;
//! let streams = events.streams(); // hand to the API layer (SSE / WebSocket handlers)
//! // ... serve ...
//! events.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Must never
//! Block a store write on the network (HTTP runs on tokio tasks, the store only records
//! outcomes), block the bus's publisher on a slow subscriber, or send an event to a stream whose
//! visibility refuses it, or deliver a webhook to an address its [`TargetPolicy`] refuses
//! (checked on the resolved address when connecting). Webhook delivery is at least once
//! (receivers dedupe on the `tutti-delivery` header), to `http://` and `https://` receivers.

mod bus;
pub mod call;
mod config;
pub mod dispatch;
mod error;
mod event;
pub mod relay;
pub mod signature;
pub mod stream;
pub mod target;

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tutti_store::Store;

pub use bus::{BusRecvError, EventBus, Subscription};
pub use call::{Answer, CallError, SignedCaller};
pub use config::{BusConfig, DispatcherConfig, EventsConfig, RelayConfig, StreamConfig};
pub use dispatch::{backoff_delay, check_webhook_url};
pub use error::EventsError;
pub use event::{
    editors_only, AccountData, ChatData, EnsembleData, Event, EventRecord, MemberData,
    OverrideData, PieceData, PieceTransitionData, ShowData, ShowTransitionData, SpecData,
    WebhookCreatedData, WebhookDisabledData,
};
pub use signature::{sign, verify, SignatureError};
pub use stream::{
    present, resume_after, router, EnsembleVisibility, EventFeed, EventStreams, StreamQuery,
    Visibility,
};
pub use target::{Forbidden, TargetForbidden, TargetPolicy};
pub use tutti_store::EventKind;

/// The running event system: the bus, the relay task and the dispatcher task.
pub struct Events {
    store: Store,
    bus: EventBus,
    cfg: EventsConfig,
    relay_wake: Arc<Notify>,
    dispatcher_wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("cfg", &self.cfg)
            .field("subscribers", &self.bus.subscribers())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Validates `cfg` and spawns the relay and the dispatcher on the current tokio runtime.
    /// Deliveries and events left over from a previous run are picked up at once.
    pub fn start(store: Store, cfg: EventsConfig) -> Result<Events, EventsError> {
        cfg.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| EventsError::NoRuntime)?;
        let bus = EventBus::new(cfg.bus.capacity);
        let (stop, stop_rx) = watch::channel(false);
        let relay_wake = Arc::new(Notify::new());
        let dispatcher_wake = Arc::new(Notify::new());
        let relay = relay::Relay {
            store: store.clone(),
            bus: bus.clone(),
            cfg: cfg.relay.clone(),
            wake: Arc::clone(&relay_wake),
            dispatcher_wake: Arc::clone(&dispatcher_wake),
            stop: stop_rx.clone(),
        };
        let dispatcher = dispatch::Dispatcher {
            store: store.clone(),
            cfg: cfg.dispatcher.clone(),
            client: dispatch::http_client(cfg.dispatcher.targets.clone()),
            wake: Arc::clone(&dispatcher_wake),
            stop: stop_rx,
        };
        let tasks = vec![runtime.spawn(relay.run()), runtime.spawn(dispatcher.run())];
        Ok(Events {
            store,
            bus,
            cfg,
            relay_wake,
            dispatcher_wake,
            stop,
            tasks,
        })
    }

    /// The bus (subscribe for in-process consumers).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Stream handlers over this system's store and bus.
    pub fn streams(&self) -> EventStreams {
        EventStreams::new(
            self.store.clone(),
            self.bus.clone(),
            self.cfg.stream.clone(),
        )
    }

    /// Hints that events were written or webhooks changed (the store already signals committed
    /// events; this only shortens the wait, e.g. after enabling a webhook).
    pub fn wake(&self) {
        self.relay_wake.notify_one();
        self.dispatcher_wake.notify_one();
    }

    /// Stops the relay and the dispatcher (dropping the `Events` stops them too, without
    /// waiting) (attempts in flight finish and are recorded, bounded by
    /// the request timeout) and waits for them. Open streams end when the last bus handle goes.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
