//! The Tutti server, the composition root: configuration, [`start`] (which builds the
//! store, the management API, the live hub, each show with its ticker and the sinks of its
//! ticks, the memory and the events), the router, the pages, metrics and limits.
//!
//! The parts live in their own crates with one-way dependencies: `tutti-show` (a running
//! show and its [`show::Tick`]), `tutti-live` (the WebSocket transport and the hub as a
//! registry, re-exported as [`live`]), `tutti-sound` (OSC, SuperCollider, the embedded
//! engine). Read in this order: [`config`], [`start`], [`admission`], `osc_in`, `web`.
//!
//! Must never: hold a lock across `.await`, call SQLite from an async task (the store does
//! that on its own threads), or let one client's behaviour delay another's.

pub mod admission;
mod chat;
pub mod chat_sounds;
pub mod config;
mod error;
pub mod limits;
pub mod memory;
mod osc_in;
pub mod render;
pub mod synthetic;
mod web;

pub use tutti_live as live;
pub use tutti_show as show;
pub use tutti_show::metrics;
pub use tutti_sound as sound;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tutti_spec::PieceSpec;
use tutti_store::{ShowKind, ShowStatus, Store, StoreConfig};

pub use config::{CliOverrides, Config};
pub use error::ServerError;
use tutti_live::{Hub, Listen};
use tutti_show::{unix_ms, HubStats, ShowRuntime, TickSink};
use tutti_sound::{AudioOut, Outputs};
pub use web::CONTENT_SECURITY_POLICY;

/// A running server.
pub struct Running {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// The base of join links and QR codes (`public_url`, or `http://<listen>`).
    pub base_url: String,
    /// The performer token in force.
    pub performer_token: String,
    /// Code of the default show.
    pub show_code: String,
    /// Where OSC commands are received, if enabled.
    pub osc_listen: Option<SocketAddr>,
    /// The hub (for tests and the binary's summary).
    pub hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    events: tutti_events::Events,
    store: Store,
    api: tutti_api::ApiState,
    /// The performance memory, when enabled.
    pub memory: Option<tutti_memory::Memory>,
    engine: Option<Arc<AudioOut>>,
    chat_sounds: chat_sounds::ChatSounds,
}

impl Running {
    /// Stop accepting, close connections, flush the store.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(m) = &self.memory {
            m.close(Duration::from_secs(5)).await;
        }
        self.events.shutdown().await;
        self.store.close().await?;
        Ok(())
    }

    /// The default show's embedded audio engine, when it is the sound and runs.
    pub fn engine(&self) -> Option<&Arc<AudioOut>> {
        self.engine.as_ref()
    }

    /// Chat's `/play` sounds through the shows' outputs (what became of them).
    pub fn chat_sounds(&self) -> &chat_sounds::ChatSounds {
        &self.chat_sounds
    }

    /// The management API's state (its limits, for operators' tools and tests).
    pub fn api(&self) -> &tutti_api::ApiState {
        &self.api
    }

    /// Whether first-run setup is still open (no account exists yet): the first visitor of
    /// the setup page creates the admin. False when the store cannot be read.
    pub async fn setup_needed(&self) -> bool {
        self.store.user_count().await.is_ok_and(|n| n == 0)
    }

    /// The store (for embedding tools and tests that read what the show recorded).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the store could only be opened read-only: the show runs from memory and
    /// every write is refused (`storage_unavailable`).
    pub fn store_read_only(&self) -> bool {
        self.store.read_only()
    }

    /// Wait until the server stops (it stops on shutdown only).
    pub async fn wait_for_signal(self) -> Result<(), ServerError> {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| ServerError::io("installing the SIGTERM handler", e))?;
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Load the piece the configuration names (or the demo).
pub fn load_piece(config: &Config) -> Result<PieceSpec, ServerError> {
    match &config.piece {
        None => Ok(PieceSpec::demo()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ServerError::Piece {
                path: path.display().to_string(),
                source: tutti_spec::SpecError::Parse(e.to_string()),
            })?;
            PieceSpec::from_toml(&text).map_err(|source| ServerError::Piece {
                path: path.display().to_string(),
                source,
            })
        }
    }
}

fn new_show_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..6)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Start everything on an already bound listener.
pub async fn start(mut config: Config, listener: TcpListener) -> Result<Running, ServerError> {
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::io("reading the listen address", e))?;
    // Listening on port 0 picks a port: links and QR codes carry the one picked.
    if config.listen.port() == 0 {
        config.listen.set_port(addr.port());
    }
    let piece = load_piece(&config)?;
    let packs = tutti_wizard::Wizard::load(config.packs_dir.as_deref())
        .map_err(|e| ServerError::Config(format!("domain pack: {e}")))?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        ServerError::io(
            format!("creating the data directory {}", config.data_dir.display()),
            e,
        )
    })?;
    let mut store_cfg = StoreConfig::new(config.data_dir.join("tutti.db"));
    store_cfg.writer_queue = config.store.writer_queue;
    store_cfg.readers = config.store.readers;
    let store = Store::open(store_cfg)?;
    if store.read_only() {
        tracing::error!(
            path = %store.path().display(),
            "the data directory is read-only: the show runs from memory, nothing is stored, \
             and performer commands and API writes are refused (storage_unavailable) until \
             it is writable and Tutti restarts"
        );
    }

    let (piece_row, current) = store
        .ensure_piece(&piece.slug, &piece.title, &piece.to_json())
        .await?;
    // Resume an interrupted show of this piece, or create one.
    let active = store
        .active_shows()
        .await?
        .into_iter()
        .filter(|s| s.piece_id == piece_row.id)
        .max_by_key(|s| s.created_at_ms);
    let (show_row, resumed) = match active {
        Some(s) => (s, true),
        None => {
            let mut row = None;
            for _ in 0..8 {
                match store
                    .create_show(
                        piece_row.id,
                        current.id,
                        &new_show_code(),
                        ShowKind::Performance,
                    )
                    .await
                {
                    Ok(r) => {
                        row = Some(r);
                        break;
                    }
                    Err(tutti_store::StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let row =
                row.ok_or_else(|| ServerError::Config("could not pick a show code".into()))?;
            (row, false)
        }
    };
    let show_row = if config.auto_start && show_row.status == ShowStatus::Scheduled {
        store
            .set_show_status(show_row.id, ShowStatus::Live, unix_ms())
            .await?
    } else {
        show_row
    };
    // A show runs the spec version it was created with.
    let spec = if show_row.spec_version_id == current.id {
        piece
    } else {
        let v = store
            .spec_version(show_row.spec_version_id)
            .await?
            .ok_or_else(|| ServerError::Config("the show's spec version is missing".into()))?;
        PieceSpec::from_json(&v.spec_json).map_err(|source| ServerError::Piece {
            path: format!("stored spec version {}", v.id),
            source,
        })?
    };
    let spec = Arc::new(spec);

    let performer_token = if config.performer_token.is_empty() {
        tutti_show::new_token()
    } else {
        config.performer_token.clone()
    };
    let fds = limits::raise_nofile();
    let max_connections =
        limits::effective_max_connections(config.limits.max_connections, fds.map(|f| f.0));
    match fds {
        Some((soft, hard)) => {
            tracing::info!(
            soft, hard, max_connections,
            "file descriptors: up to {max_connections} connections (limits.max_connections = {})",
            config.limits.max_connections
        )
        }
        None => tracing::warn!(max_connections, "could not read the file-descriptor limit"),
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let base = config.base_url();
    let targets = config.webhooks.target_policy(addr);
    // The API's state comes first: the hub admits performers and guests through it.
    let api = tutti_api::ApiState::new(store.clone(), config.api.to_api_config(base.clone()))
        .with_wizard(Arc::new(packs))
        .with_webhook_targets(targets.clone())
        .with_clock(config.api_clock.0.clone());
    let stats = Arc::new(HubStats::default());
    let admission = admission::ServerAdmission {
        token: performer_token.clone(),
        api: api.clone(),
    };
    // Chat's live side: staff sign in with the API's tokens; the API tells it of REST changes.
    let presence_ttl = Duration::from_millis(config.limits.chat_presence_ttl_ms);
    let presence_every = Duration::from_millis(config.limits.chat_presence_every_ms);
    let rooms = tutti_rooms::Rooms::new(
        store.clone(),
        Arc::new(chat::ApiStaff(api.clone())),
        // The API's one clock (the system's, or a test's manual one): live posts are stamped,
        // slow-moded and held by the same time as REST posts, and the chat sweep releases held
        // messages by it.
        Arc::new(RoomsClock(config.api_clock.0.clone())),
        tutti_rooms::RoomsConfig {
            presence_ttl_ms: i64::try_from(config.limits.chat_presence_ttl_ms).unwrap_or(30_000),
            presence_every_ms: i64::try_from(config.limits.chat_presence_every_ms).unwrap_or(1_000),
            ..tutti_rooms::RoomsConfig::default()
        },
    );
    // `/play` posts through their show's sound, when the room allows it.
    let sounds = chat_sounds::ChatSounds::new(store.clone(), config.api_clock.0.clone());
    let api = api.with_chat(Arc::new(chat::Notifier(rooms.clone(), sounds.clone())));
    let hub = Arc::new(
        Hub::new(
            Arc::new(admission),
            max_connections,
            stats.clone(),
            shutdown_rx.clone(),
        )
        .with_chat(Arc::new(chat::LiveChat(
            rooms.clone(),
            api.clone(),
            sounds.clone(),
        ))),
    );
    let join_url = format!("{base}/?show={}", show_row.code);
    let show = ShowRuntime::new(
        show_row.code.clone(),
        show_row.id,
        spec.clone(),
        show_row.status,
        join_url,
        stats.clone(),
        store.clone(),
        f64::from(config.limits.resume_grace_s),
    )?;
    if resumed {
        show.restore().await?;
        tracing::info!(show = %show.code, "resumed an interrupted show");
    }
    let mut sinks = hub.add_show(show.clone());

    let mut outputs = Outputs::new(
        &spec,
        &config.osc.targets,
        Duration::from_millis(u64::from(config.osc.latency_ms)),
    )?;
    let mut tasks = vec![
        tokio::spawn(chat::sweep_presence(
            rooms.clone(),
            api.clone(),
            sounds.clone(),
            presence_ttl,
            presence_every,
            shutdown_rx.clone(),
        )),
        tokio::spawn(chat::sweep_uploads(store.clone(), shutdown_rx.clone())),
    ];
    if config.sound == config::SoundBackend::Supercollider {
        tasks.push(outputs.start_supercollider(
            &config.supercollider.settings(),
            spec.clone(),
            shutdown_rx.clone(),
        ));
    }
    let mut engine = None;
    if config.sound == config::SoundBackend::Engine {
        if let Some(audio) = outputs.start_engine(
            &spec,
            &config.audio.settings(),
            &config.data_dir.join("recordings"),
            &show_row.code,
        ) {
            tasks.push(tokio::spawn(
                audio
                    .clone()
                    .run_taps(hub.monitor_tx.clone(), shutdown_rx.clone()),
            ));
            engine = Some(audio);
        }
    }
    sinks.extend(outputs.sinks());
    let outputs = Arc::new(outputs);
    sounds.add_show(show.clone(), outputs.clone());
    tasks.push(tokio::spawn(
        show.clone().run_ticker(sinks, shutdown_rx.clone()),
    ));

    let osc_handle = match config.osc.listen {
        Some(a) => {
            let (tx, rx) = mpsc::channel(256);
            let h = tutti_osc::OscListener::bind(a, tx)
                .await
                .map_err(|e| ServerError::Osc(format!("osc.listen {a}: {e}")))?;
            tasks.push(tokio::spawn(osc_in::run(hub.clone(), rx)));
            Some(h)
        }
        None => None,
    };
    let osc_listen = osc_handle.as_ref().map(|h| h.local_addr());
    tasks.push(tokio::spawn(stats_task(
        hub.clone(),
        outputs.clone(),
        store.clone(),
        osc_handle,
        shutdown_rx.clone(),
    )));

    let opener = Arc::new(ShowOpener {
        hub: hub.clone(),
        performer_token: performer_token.clone(),
        store: store.clone(),
        base: base.clone(),
        resume_grace: f64::from(config.limits.resume_grace_s),
        osc_targets: config.osc.targets.clone(),
        osc_latency: Duration::from_millis(u64::from(config.osc.latency_ms)),
        shutdown: shutdown_rx.clone(),
        tickers: std::sync::Mutex::new(std::collections::HashMap::new()),
        sounds: sounds.clone(),
    });
    let mut events_cfg = tutti_events::EventsConfig::default();
    events_cfg.dispatcher.targets = targets;
    let events = tutti_events::Events::start(store.clone(), events_cfg)
        .map_err(|e| ServerError::Config(format!("events: {e}")))?;
    // The performance memory: shows become episodes; live suggestions; `/api/v1/memory`.
    let memory = if config.memory.enabled {
        let (m, task) = memory::start(
            &config.memory,
            &config.data_dir,
            store.clone(),
            events.bus(),
            shutdown_rx.clone(),
        )
        .await?;
        tasks.push(task);
        Some(m)
    } else {
        None
    };
    let api = api
        .with_live(opener.clone())
        .with_events(events.streams())
        .with_memory(memory.clone());
    // Shows started through the API that were live or paused when the server stopped.
    for row in store.active_shows().await? {
        if row.id != show_row.id && matches!(row.status, ShowStatus::Live | ShowStatus::Paused) {
            opener.open(row, true).await;
        }
    }

    let listen = Listen {
        hub: hub.clone(),
        pcm: engine
            .clone()
            .map(|a| Arc::new(admission::EnginePcm(a)) as Arc<dyn tutti_live::PcmSource>),
    };
    let app = router(hub.clone(), listen)
        .merge(tutti_api::router(api.clone()))
        .layer(axum::Extension(web::MemoryMetrics(memory.clone())))
        .layer(axum::Extension(web::ChatMetrics(
            rooms.clone(),
            sounds.clone(),
        )));
    let server = tokio::spawn(serve_http(listener, app, shutdown_rx.clone()));

    Ok(Running {
        addr,
        base_url: base.clone(),
        performer_token,
        show_code: show_row.code,
        osc_listen,
        hub,
        shutdown: shutdown_tx,
        server,
        tasks,
        events,
        store,
        api,
        memory,
        engine,
        chat_sounds: sounds,
    })
}

/// Opens shows created through the API on the live hub when they go live (from their
/// recorded spec version), and makes the hub follow their later status changes.
/// The management API's clock as the chat service's.
struct RoomsClock(tutti_api::Clock);

impl tutti_rooms::Clock for RoomsClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
}

struct ShowOpener {
    hub: Arc<Hub>,
    performer_token: String,
    store: Store,
    base: String,
    resume_grace: f64,
    osc_targets: Vec<SocketAddr>,
    osc_latency: Duration,
    shutdown: watch::Receiver<bool>,
    /// The tickers of the shows opened here, stopped a little after the show ends.
    tickers: std::sync::Mutex<std::collections::HashMap<String, tokio::task::JoinHandle<()>>>,
    /// Chat's `/play` through the shows' outputs.
    sounds: chat_sounds::ChatSounds,
}

impl ShowOpener {
    /// How long an ended show keeps ticking, so its last state (status `ended`) reaches everyone.
    const ENDED_GRACE: Duration = Duration::from_secs(2);

    async fn open(&self, row: tutti_store::ShowRow, resumed: bool) {
        if let Ok(show) = self.hub.show(Some(&row.code)) {
            show.follow_status(row.status);
            if row.status == ShowStatus::Ended {
                self.sounds.remove_show(row.id);
                let ticker = self
                    .tickers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&row.code);
                if let Some(ticker) = ticker {
                    tokio::spawn(async move {
                        tokio::time::sleep(Self::ENDED_GRACE).await;
                        ticker.abort();
                    });
                }
            }
            return;
        }
        if !matches!(row.status, ShowStatus::Live | ShowStatus::Paused) {
            return;
        }
        if let Err(e) = self.start_runtime(&row, resumed).await {
            tracing::error!(show = %row.code, error = %e, "could not open the show on the live hub");
        }
    }

    async fn start_runtime(
        &self,
        row: &tutti_store::ShowRow,
        resumed: bool,
    ) -> Result<(), ServerError> {
        let v = self
            .store
            .spec_version(row.spec_version_id)
            .await?
            .ok_or_else(|| ServerError::Config("the show's spec version is missing".into()))?;
        let spec = PieceSpec::from_json(&v.spec_json).map_err(|source| ServerError::Piece {
            path: format!("stored spec version {}", v.id),
            source,
        })?;
        let spec = Arc::new(spec);
        let show = ShowRuntime::new(
            row.code.clone(),
            row.id,
            spec.clone(),
            row.status,
            format!("{}/?show={}", self.base, row.code),
            self.hub.stats.clone(),
            self.store.clone(),
            self.resume_grace,
        )?;
        if resumed {
            show.restore().await?;
        }
        let outputs = Outputs::new(&spec, &self.osc_targets, self.osc_latency)?;
        let mut sinks: Vec<Arc<dyn TickSink>> = self.hub.add_show(show.clone());
        sinks.extend(outputs.sinks());
        self.sounds.add_show(show.clone(), Arc::new(outputs));
        let ticker = tokio::spawn(show.clone().run_ticker(sinks, self.shutdown.clone()));
        self.tickers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.code.clone(), ticker);
        tracing::info!(show = %row.code, "opened on the live hub");
        Ok(())
    }
}

impl tutti_api::LiveHook for ShowOpener {
    fn show_changed(
        &self,
        show: tutti_store::ShowRow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.open(show, false))
    }

    fn performer_token_ok(&self, token: &str) -> bool {
        tutti_live::token_eq(Some(token), &self.performer_token)
    }
}

/// Accept HTTP connections until shutdown; each is served by hyper's HTTP/1 connection
/// with upgrades, so `/live/v1` can take over its TCP socket (see `live::upgrade`), and
/// each request carries the peer's address (`ConnectInfo<SocketAddr>`).
/// At shutdown, connections in the middle of a request finish it; idle ones close.
async fn serve_http(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper cannot time out a client that never finishes its headers.
    http.timer(hyper_util::rt::TokioTimer::new());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // TCP_NODELAY on every accepted socket: an ack and the state after it are one
        // write, but replies and states are separate ones, and with Nagle a state could
        // wait for the phone's delayed ACK of the reply (~40 ms on Linux).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted socket");
        }
        // Every request of the connection carries the peer's address (the API limits
        // sign-ins and guest tokens per client address). A `Router` is always ready
        // (`poll_ready` is a no-op), so calling a clone is enough.
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, req).await }
        });
        let conn = http
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
            .with_upgrades();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        });
    }
}

/// The HTTP routes of the pages, the live hub and the listen stream.
pub fn router(hub: Arc<Hub>, listen: Listen) -> Router {
    // Pages and their assets carry the security headers (`web::security_headers`).
    let pages = Router::new()
        .route("/", get(web::audience))
        .route("/perform", get(web::perform))
        .route("/display", get(web::display))
        .route("/chat", get(web::chat))
        .route("/web/{*path}", get(web::file))
        .route("/qr.svg", get(web::qr))
        .layer(axum::middleware::map_response(web::security_headers));
    Router::new()
        .merge(pages)
        .route("/api/v1/info", get(web::info))
        .route("/healthz", get(web::health))
        .route("/metrics", get(web::metrics))
        .route("/live/v1", get(live::upgrade))
        .with_state(hub)
        .merge(
            Router::new()
                .route("/live/v1/audio", get(tutti_live::listen::listen))
                .with_state(listen),
        )
}

/// Once a second: the performers' `stats` frame.
async fn stats_task(
    hub: Arc<Hub>,
    outputs: Arc<Outputs>,
    store: Store,
    osc_in: Option<tutti_osc::OscListenerHandle>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => {
                if let Some(h) = osc_in { h.shutdown().await; }
                break;
            }
        }
        let s = &hub.stats;
        let (osc_sent, osc_errors) = outputs.osc_stats();
        let osc_in_stats = osc_in.as_ref().map(|h| h.stats()).unwrap_or_default();
        let st = store.stats();
        let hz = hub.show(None).map(|s| s.spec.tick_hz).unwrap_or(0);
        let state_rate = hub.show(None).map(|s| s.state_rate()).unwrap_or(0.0);
        let target_rate = hub.show(None).map(|s| s.spec.state_hz).unwrap_or(0);
        let frame = serde_json::json!({
            "type": "stats",
            "connections": {
                "audience": s.audience.load(Relaxed),
                "performer": s.performer.load(Relaxed),
                "display": s.display.load(Relaxed),
                "pending": s.pending.load(Relaxed),
                "refused": s.refused.load(Relaxed),
                "listeners": s.listeners.load(Relaxed),
            },
            "inputs": {
                "accepted": s.inputs_accepted.load(Relaxed),
                "rejected": s.inputs_rejected.load(Relaxed),
            },
            "errors": s.errors_json(),
            "tick": {
                "hz": hz,
                "last_ms": s.tick_last_us.load(Relaxed) as f64 / 1000.0,
                "max_ms": s.tick_max_us.load(Relaxed) as f64 / 1000.0,
            },
            "state_rate": state_rate,
            "state_rate_target": target_rate,
            "degraded": state_rate < f64::from(target_rate),
            "states": {
                "delivered": s.states_delivered.load(Relaxed),
                "skipped": s.states_skipped.load(Relaxed),
                "late": s.states_late.load(Relaxed),
            },
            "latency_ms": {
                "tick_p99": s.tick.quantile(0.99) * 1000.0,
                "serialize_p99": s.serialize.quantile(0.99) * 1000.0,
                "fanout_p99": s.fanout.quantile(0.99) * 1000.0,
                "lag_p99": s.lag.quantile(0.99) * 1000.0,
                "input_wait_p99": s.input_wait.quantile(0.99) * 1000.0,
            },
            "osc": {
                "sent": osc_sent,
                "send_errors": osc_errors,
                "received": osc_in_stats.packets_received,
                "malformed": osc_in_stats.packets_malformed,
                "dropped": osc_in_stats.commands_dropped,
            },
            "sync": s.sync.json(),
            "cues": s.cues_json(),
            "sound": outputs.sound_status(),
            "store": {
                "queued": st.queued,
                "transactions": st.transactions_committed,
                "snapshots_dropped": st.snapshots_dropped,
            },
        });
        hub.stats_tx.send_replace(Arc::from(frame.to_string()));
    }
}
