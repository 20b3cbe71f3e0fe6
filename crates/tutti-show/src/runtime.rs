//! One running show: its consensus engine, participant slots, status, and the ticker (a
//! thread of its own) that turns inputs into state every tick, renders the state texts on
//! their publish schedule, stores a snapshot once a second, and hands one [`Tick`] to
//! every [`TickSink`] (the audience fan-out, performers' feeds, the sound outputs).
//!
//! The engine sits behind a `std::sync::Mutex` held only for short, non-async sections
//! (a submit, a tick); never across `.await`. The tick copies what the sinks need into
//! buffers the ticker owns ([`TickScratch`]) and calls the sinks after releasing the lock.
//! Performer commands are validated, then stored (awaiting the commit), then applied, then
//! acknowledged: an acknowledged override survives a `kill -9`. The crowd (every slot, its
//! resume token's SHA-256 and its latest inputs) is stored with each snapshot, once a second,
//! so a restart gives the audience its slots back with at most a second of inputs lost.
//! Resume tokens themselves are never stored.
//!
//! Must never: hold the engine lock across `.await` or while a sink runs, block the tick on
//! storage or on a consumer, know about sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tutti_consensus::{
    Engine, InputError, InputValue, Member, Override, OverrideKind, OverrideMode, ParamId,
    Partials, ParticipantId, Snapshot, ZoneId,
};
use tutti_protocol::{ErrorCode, FrameError, OverrideModeName, SessionAction, Source, Sweep};
use tutti_spec::{ParamKindName, PieceSpec};
use tutti_store::{NewOverride, ShowStatus, SnapshotRow, Store};

use crate::render::Renderer;
use crate::stats::HubStats;
use crate::tick::{Publish, Tick, TickSink};
use crate::ticktimes::{now_ms, TickTimes};
use crate::ShowError;

/// Wall-clock unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The show's clock, seconds: what inputs are stamped with and ticks run at.
///
/// A single node reads its own monotonic clock from when the runtime started (the
/// default). The nodes of one show (issue 14) must share a time base, because an edge's
/// partials are weighted at its engine time and the conductor merges them at its own:
/// [`ShowClock::since`] counts from a given instant (nodes in one process),
/// [`ShowClock::since_unix_ms`] from a wall-clock moment all nodes know (the show's start).
/// [`ShowClock::manual`] is set by hand, so a test or a tool can drive several runtimes
/// through the same show times deterministically.
#[derive(Debug, Clone)]
pub enum ShowClock {
    /// Seconds since this instant.
    Monotonic(Instant),
    /// Seconds set by hand (f64 bits), shared by every clone.
    Manual(Arc<AtomicU64>),
}

impl Default for ShowClock {
    /// Seconds since now.
    fn default() -> Self {
        ShowClock::Monotonic(Instant::now())
    }
}

impl ShowClock {
    /// Seconds since `origin`.
    pub fn since(origin: Instant) -> ShowClock {
        ShowClock::Monotonic(origin)
    }

    /// Seconds since the wall-clock moment `start_ms` (Unix milliseconds), read through
    /// this process's monotonic clock from here on (a moment in the future counts as now).
    pub fn since_unix_ms(start_ms: i64) -> ShowClock {
        let ago = Duration::from_millis(u64::try_from(unix_ms() - start_ms).unwrap_or(0));
        let now = Instant::now();
        ShowClock::Monotonic(now.checked_sub(ago).unwrap_or(now))
    }

    /// A clock that reads `start` until [`ShowClock::set`] moves it.
    pub fn manual(start: f64) -> ShowClock {
        ShowClock::Manual(Arc::new(AtomicU64::new(start.to_bits())))
    }

    /// Sets a manual clock (and every clone of it) to `t` seconds; `false` (and nothing
    /// changes) for a monotonic one.
    pub fn set(&self, t: f64) -> bool {
        match self {
            ShowClock::Monotonic(_) => false,
            ShowClock::Manual(bits) => {
                bits.store(t.to_bits(), Relaxed);
                true
            }
        }
    }

    /// Seconds now.
    #[inline]
    pub fn now(&self) -> f64 {
        match self {
            ShowClock::Monotonic(origin) => origin.elapsed().as_secs_f64(),
            ShowClock::Manual(bits) => f64::from_bits(bits.load(Relaxed)),
        }
    }
}

/// Share of late deliveries in a second above which the audience state rate is lowered.
const LATE_DEGRADE: f64 = 0.10;
/// Share of late deliveries in a second below which the rate climbs back to the target.
const LATE_RECOVER: f64 = 0.02;
/// The lowest adaptive audience state rate (Hz).
const MIN_STATE_HZ: f64 = 2.0;

/// A resume token as the show keeps it: its SHA-256 (the crowd is stored with these, so a
/// copy of the data directory does not hand out anybody's slot).
type TokenKey = [u8; 32];

fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// The stored crowd's format version (see [`StoredCrowd`]).
const CROWD_VERSION: u32 = 1;

/// A live show's participants as stored with a snapshot: what a restart brings back.
#[derive(Serialize, Deserialize)]
struct StoredCrowd {
    version: u32,
    members: Vec<StoredMember>,
    /// Tokens (hashes) replaced by a later welcome within the resume grace period: still
    /// refused with `resume_replaced` after a restart.
    replaced: Vec<TokenKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredMember {
    /// The SHA-256 of the slot's newest resume token.
    key: TokenKey,
    guest: Option<i64>,
    member: Member,
}

/// A participant slot kept across reconnects.
struct Slot {
    id: ParticipantId,
    connections: u32,
    disconnected_at: Option<f64>,
    /// Zone index in the seat map.
    zone: Option<u16>,
    /// The guest whose slot it is, if any.
    guest: Option<i64>,
    /// How many times the slot was taken (joined, then resumed); the connection holding
    /// it watches this and leaves when a newer connection takes the slot over.
    epoch: watch::Sender<u64>,
}

/// A participant slot as one connection holds it.
#[derive(Debug)]
pub struct SlotLease {
    /// The participant.
    pub id: ParticipantId,
    /// The resume token to give the client (a new one on every join and resume).
    pub token: String,
    /// This connection's epoch of the slot.
    pub epoch: u64,
    /// The slot's epoch: when it changes, another connection took the slot over.
    pub holder: watch::Receiver<u64>,
}

/// Who moved since the last stored snapshot, for the report's health record: per engine
/// slot index, the snapshot period in which it last had an input (so counting is O(1) per
/// input and the counts reset by moving to the next period).
#[derive(Default)]
struct Movement {
    period: u32,
    last_moved: Vec<u32>,
    zone_of: Vec<Option<u16>>,
    moving: u32,
    moving_by_zone: Vec<u32>,
}

impl Movement {
    fn new(zones: usize) -> Movement {
        Movement {
            period: 1,
            moving_by_zone: vec![0; zones],
            ..Movement::default()
        }
    }

    fn joined(&mut self, id: ParticipantId, zone: Option<u16>) {
        let i = id.slot as usize;
        if self.zone_of.len() <= i {
            self.zone_of.resize(i + 1, None);
            self.last_moved.resize(i + 1, 0);
        }
        self.zone_of[i] = zone;
        self.last_moved[i] = 0;
    }

    fn moved(&mut self, id: ParticipantId) {
        let i = id.slot as usize;
        let Some(last) = self.last_moved.get_mut(i) else {
            return;
        };
        if *last != self.period {
            *last = self.period;
            self.moving += 1;
            if let Some(n) =
                self.zone_of[i].and_then(|z| self.moving_by_zone.get_mut(usize::from(z)))
            {
                *n += 1;
            }
        }
    }

    /// The counts of the period that ends now; starts the next one.
    fn take(&mut self) -> (u32, Vec<u32>) {
        let by_zone = self.moving_by_zone.clone();
        let moving = std::mem::take(&mut self.moving);
        self.moving_by_zone.fill(0);
        self.period = self.period.wrapping_add(1).max(1);
        (moving, by_zone)
    }
}

struct Inner {
    engine: Engine,
    status: ShowStatus,
    /// Resume token (its hash) → slot.
    slots: HashMap<TokenKey, Slot>,
    /// Guest id (a device token of this show) → the resume token of its slot, so a device
    /// that joins again gets its slot back without a resume token.
    guests: HashMap<i64, TokenKey>,
    /// Resume tokens replaced by a later welcome → when (show clock), kept for the resume
    /// grace period so they are refused with `resume_replaced` rather than joining anew.
    replaced: HashMap<TokenKey, f64>,
    renderer: Renderer,
    /// The last snapshot computed while live: what a paused show keeps showing.
    last: Snapshot,
    /// The hub's number of `last`.
    last_tick: u64,
    last_sweep: f64,
    last_snapshot_store: f64,
    last_publish: f64,
    last_detail_publish: f64,
    /// Publish phase accumulators (one publish each time they pass 1).
    audience_phase: f64,
    detail_phase: f64,
    force_publish: bool,
    movement: Movement,
}

/// Buffers the ticker owns and reuses every tick: the rendered state texts and the
/// values, which the [`Tick`] handed to the sinks borrows after the show's lock is released.
pub struct TickScratch {
    audience: String,
    detail: String,
    values: Vec<f64>,
}

impl Default for TickScratch {
    fn default() -> Self {
        TickScratch {
            audience: String::with_capacity(1024),
            detail: String::with_capacity(4096),
            values: Vec::with_capacity(16),
        }
    }
}

/// Who is asking for a performer action.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Performer id used by the engine's override priority (0 = OSC input).
    pub by: u32,
    /// Role rank: higher wins over lower.
    pub priority: u8,
    /// Name for the log and the dashboard.
    pub name: String,
}

/// An override as the protocol (or OSC) asks for it, before validation.
#[derive(Debug, Clone, Copy)]
pub struct OverrideRequest {
    /// Mode.
    pub mode: OverrideModeName,
    /// lock value / bias amount / blend target / clamp lo.
    pub a: Option<f64>,
    /// blend factor / clamp hi.
    pub b: Option<f64>,
    /// Seconds until it expires.
    pub expires_in: Option<f64>,
}

/// What the override log stores for one action (JSON in `overrides.detail_json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<OverrideModeName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<i64>,
    #[serde(default)]
    by: u32,
    #[serde(default)]
    priority: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
}

/// One live show.
pub struct ShowRuntime {
    /// Join code.
    pub code: String,
    /// Store id.
    pub show_id: i64,
    /// The piece spec it runs.
    pub spec: Arc<PieceSpec>,
    /// Join URL for audiences.
    pub join_url: String,
    clock: ShowClock,
    inner: Mutex<Inner>,
    /// The tick that will apply inputs submitted now.
    next_tick: AtomicU64,
    stats: Arc<HubStats>,
    /// Audience publishes so far.
    publish_seq: AtomicU64,
    /// Engine-clock ns of the first input since the last tick (0 = none).
    first_pending_ns: AtomicU64,
    /// The adaptive audience state rate, f64 bits.
    state_rate_bits: Arc<AtomicU64>,
    /// When each recent tick ran (acks carry it).
    tick_times: Arc<TickTimes>,
    store: Store,
    resume_grace: f64,
    /// Inputs and votes applied (for the report's health record).
    inputs: AtomicU64,
    /// Joins that got a kept slot back.
    resumes: AtomicU64,
    /// Cues sent so far (the last cue's number).
    cues: AtomicU64,
}

/// A cue the show accepted: its number, its time on the show clock, and the tick current
/// when it was taken (for the performer's `ack`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cue {
    /// 1, 2, … per show runtime.
    pub id: u64,
    /// When the phones play it: show clock, milliseconds.
    pub at_ms: f64,
    /// The tick that will run next.
    pub tick: u64,
}

/// The wire name of a status.
pub fn status_str(s: ShowStatus) -> &'static str {
    match s {
        ShowStatus::Scheduled => "scheduled",
        ShowStatus::Live => "live",
        ShowStatus::Paused => "paused",
        ShowStatus::Ended => "ended",
    }
}

fn kind_of(mode: OverrideModeName) -> OverrideKind {
    match mode {
        OverrideModeName::Clamp => OverrideKind::Clamp,
        OverrideModeName::Bias => OverrideKind::Bias,
        OverrideModeName::Blend => OverrideKind::Blend,
        OverrideModeName::Lock => OverrideKind::Lock,
        OverrideModeName::Freeze => OverrideKind::Freeze,
    }
}

fn fe(code: ErrorCode, msg: impl Into<String>) -> FrameError {
    FrameError::new(code, msg)
}

fn fmt_range(lo: f64, hi: f64) -> String {
    format!("{lo}..{hi}")
}

impl ShowRuntime {
    /// Build a runtime for a stored show, on its own clock (seconds since now).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        code: String,
        show_id: i64,
        spec: Arc<PieceSpec>,
        status: ShowStatus,
        join_url: String,
        stats: Arc<HubStats>,
        store: Store,
        resume_grace: f64,
    ) -> Result<Arc<ShowRuntime>, ShowError> {
        Self::new_on_clock(
            code,
            show_id,
            spec,
            status,
            join_url,
            stats,
            store,
            resume_grace,
            ShowClock::default(),
        )
    }

    /// [`ShowRuntime::new`] on a given clock (the nodes of one show share a time base).
    #[allow(clippy::too_many_arguments)]
    pub fn new_on_clock(
        code: String,
        show_id: i64,
        spec: Arc<PieceSpec>,
        status: ShowStatus,
        join_url: String,
        stats: Arc<HubStats>,
        store: Store,
        resume_grace: f64,
        clock: ShowClock,
    ) -> Result<Arc<ShowRuntime>, ShowError> {
        let engine = Engine::new(spec.engine_config()).map_err(|e| ShowError::Engine {
            piece: spec.slug.clone(),
            reason: e.to_string(),
        })?;
        let last = engine.snapshot().clone();
        let show = Arc::new(ShowRuntime {
            code,
            show_id,
            spec: spec.clone(),
            join_url,
            clock,
            inner: Mutex::new(Inner {
                engine,
                status,
                slots: HashMap::new(),
                guests: HashMap::new(),
                replaced: HashMap::new(),
                renderer: Renderer::new(&spec),
                last,
                last_tick: 0,
                last_sweep: 0.0,
                last_snapshot_store: 0.0,
                last_publish: f64::NEG_INFINITY,
                last_detail_publish: f64::NEG_INFINITY,
                audience_phase: 0.0,
                detail_phase: 0.0,
                force_publish: true,
                movement: Movement::new(spec.zones.len()),
            }),
            next_tick: AtomicU64::new(1),
            cues: AtomicU64::new(0),
            publish_seq: AtomicU64::new(0),
            first_pending_ns: AtomicU64::new(0),
            state_rate_bits: Arc::new(AtomicU64::new(f64::from(spec.state_hz.max(1)).to_bits())),
            tick_times: Arc::default(),
            stats,
            store,
            resume_grace,
            inputs: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
        });
        show.stats
            .state_rate_millihz
            .store(u64::from(spec.state_hz) * 1000, Relaxed);
        Ok(show)
    }

    /// Makes the next live tick store a snapshot (with the crowd) whatever the snapshot
    /// period: for a benchmark of that tick, or before a planned stop.
    pub fn snapshot_at_next_tick(&self) {
        self.lock().last_snapshot_store = f64::NEG_INFINITY;
    }

    /// Seconds since this runtime started (the engine's clock).
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    /// A cue: `voice` (one of the piece's phone voices) to play on every phone `lead_ms`
    /// from now (the piece's lead when absent). Nothing is stored; a show that has ended
    /// takes no cue.
    ///
    /// `zones` (names of the piece's zones), `sweep` and `source` (points in the piece's
    /// hall) are checked here and passed to the phones, which apply them by their own zone
    /// and place.
    pub fn cue(
        &self,
        voice: &str,
        lead_ms: Option<u32>,
        zones: Option<&[String]>,
        sweep: Option<Sweep>,
        source: Option<Source>,
    ) -> Result<Cue, FrameError> {
        for z in zones.unwrap_or_default() {
            if self.spec.zone_index(z).is_none() {
                return Err(FrameError::new(
                    ErrorCode::UnknownZone,
                    format!("the piece has no zone '{z}'"),
                ));
            }
        }
        let points = [
            sweep.map(|w| (w.x, w.y, "sweep")),
            source.map(|s| (s.x, s.y, "source")),
        ];
        for (x, y, what) in points.into_iter().flatten() {
            let Some(h) = self.spec.phone.hall else {
                return Err(FrameError::new(
                    ErrorCode::InvalidCue,
                    format!("a {what} needs the piece's hall ([phone] hall = {{ width, depth }})"),
                ));
            };
            if !(0.0..=h.width).contains(&x) || !(0.0..=h.depth).contains(&y) {
                return Err(FrameError::new(
                    ErrorCode::InvalidCue,
                    format!(
                        "the {what} at ({x}, {y}) is outside the hall (0–{} × 0–{} m)",
                        h.width, h.depth
                    ),
                ));
            }
        }
        if self.spec.phone.voice(voice).is_none() {
            let known: Vec<&str> = self
                .spec
                .phone
                .voices
                .iter()
                .map(|v| v.name.as_str())
                .collect();
            return Err(FrameError::new(
                ErrorCode::UnknownVoice,
                if known.is_empty() {
                    format!("the piece has no phone voices (asked for '{voice}')")
                } else {
                    format!(
                        "no phone voice '{voice}': the voices are {}",
                        known.join(", ")
                    )
                },
            ));
        }
        if self.status() == ShowStatus::Ended {
            return Err(FrameError::new(ErrorCode::ShowEnded, "the show has ended"));
        }
        let lead = f64::from(lead_ms.unwrap_or(self.spec.phone.lead_ms));
        Ok(Cue {
            id: self.cues.fetch_add(1, Relaxed) + 1,
            at_ms: self.clock_ms() + lead,
            tick: self.next_tick.load(Relaxed),
        })
    }

    /// The show clock that phones sync to: milliseconds since this runtime started, to the
    /// nanosecond the OS gives (monotonic; it starts again at 0 when the server restarts).
    pub fn clock_ms(&self) -> f64 {
        self.clock.now() * 1000.0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current status.
    pub fn status(&self) -> ShowStatus {
        self.lock().status
    }

    /// Whether the show has ended.
    pub fn ended(&self) -> bool {
        self.status() == ShowStatus::Ended
    }

    /// The hub-wide counters this show adds to.
    pub fn stats(&self) -> &Arc<HubStats> {
        &self.stats
    }

    /// The audience state rate in force, as f64 bits (shared with the fan-out, which
    /// judges lateness by it).
    pub fn state_rate_handle(&self) -> Arc<AtomicU64> {
        self.state_rate_bits.clone()
    }

    /// When each recent tick ran (acks carry it).
    pub fn tick_times(&self) -> Arc<TickTimes> {
        self.tick_times.clone()
    }

    /// Audience publishes so far.
    pub fn publishes(&self) -> u64 {
        self.publish_seq.load(Relaxed)
    }

    /// Participants joined to the engine.
    pub fn participants(&self) -> usize {
        self.lock().engine.participants()
    }

    /// Join an audience member, or give back the slot of `resume` (taking it over from a
    /// connection that still holds it). Every welcome gets a new resume token; the one it
    /// replaces is refused with `resume_replaced` for the resume grace period.
    pub fn join_audience(
        &self,
        zone: Option<&str>,
        resume: Option<&str>,
    ) -> Result<SlotLease, FrameError> {
        self.join_slot(zone, resume, None)
    }

    /// Join a guest (the holder of a device token of this show, already checked by the
    /// caller): the guest's slot while the show still holds it, else a new one remembered
    /// for the guest. `resume` is used as in [`ShowRuntime::join_audience`] otherwise.
    pub fn join_guest(
        &self,
        zone: Option<&str>,
        guest_id: i64,
        resume: Option<&str>,
    ) -> Result<SlotLease, FrameError> {
        self.join_slot(zone, resume, Some(guest_id))
    }

    fn join_slot(
        &self,
        zone: Option<&str>,
        resume: Option<&str>,
        guest: Option<i64>,
    ) -> Result<SlotLease, FrameError> {
        let zone = match zone {
            Some(z) => Some(ZoneId(self.spec.zone_index(z).ok_or_else(|| {
                fe(
                    ErrorCode::UnknownZone,
                    format!(
                        "zone '{z}' is not in the seat map ({})",
                        self.spec
                            .zones
                            .iter()
                            .map(|z| z.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })? as u16)),
            None => None,
        };
        let now = self.now();
        let mut inner = self.lock();
        let Inner {
            slots,
            guests,
            replaced,
            ..
        } = &mut *inner;
        let kept = guest.and_then(|g| guests.get(&g).copied());
        let resume_key = resume.map(token_key);
        for key in kept.into_iter().chain(resume_key) {
            if let Some(mut slot) = slots.remove(&key) {
                // The slot is taken over: whoever held it is told (its epoch changes) and
                // this connection gets a new token; the old one is refused from now on.
                let fresh = new_token();
                slot.connections = 1;
                slot.disconnected_at = None;
                let epoch = *slot.epoch.borrow() + 1;
                slot.epoch.send_replace(epoch);
                let lease = SlotLease {
                    id: slot.id,
                    token: fresh.clone(),
                    epoch,
                    holder: slot.epoch.subscribe(),
                };
                let fresh_key = token_key(&fresh);
                if let Some(g) = slot.guest.or(guest) {
                    slot.guest = Some(g);
                    guests.insert(g, fresh_key);
                }
                replaced.insert(key, now);
                slots.insert(fresh_key, slot);
                self.resumes.fetch_add(1, Relaxed);
                return Ok(lease);
            }
        }
        if resume_key.is_some_and(|k| replaced.contains_key(&k)) {
            return Err(fe(
                ErrorCode::ResumeReplaced,
                "this resume token was replaced by a later welcome; resume with the newest \
                 token, or join without one",
            ));
        }
        let id = inner.engine.join(zone, 1.0).map_err(|e| {
            fe(
                ErrorCode::Internal,
                format!("could not join the engine: {e}"),
            )
        })?;
        let token = new_token();
        let zone = zone.map(|z| z.0);
        inner.movement.joined(id, zone);
        let (epoch, holder) = watch::channel(1);
        let key = token_key(&token);
        inner.slots.insert(
            key,
            Slot {
                id,
                connections: 1,
                disconnected_at: None,
                zone,
                guest,
                epoch,
            },
        );
        if let Some(g) = guest {
            inner.guests.insert(g, key);
        }
        Ok(SlotLease {
            id,
            token,
            epoch: 1,
            holder,
        })
    }

    /// An audience connection closed: keep the slot for the resume grace period.
    pub fn disconnect(&self, token: &str) {
        let now = self.now();
        let mut inner = self.lock();
        if let Some(slot) = inner.slots.get_mut(&token_key(token)) {
            slot.connections = slot.connections.saturating_sub(1);
            if slot.connections == 0 {
                slot.disconnected_at = Some(now);
            }
        }
    }

    fn param(&self, name: &str) -> Result<usize, FrameError> {
        self.spec.param_index(name).ok_or_else(|| {
            let shown: String = name.chars().take(64).collect();
            fe(
                ErrorCode::UnknownParam,
                format!("this piece has no parameter '{shown}'"),
            )
        })
    }

    fn require_live(status: ShowStatus) -> Result<(), FrameError> {
        match status {
            ShowStatus::Live => Ok(()),
            ShowStatus::Ended => Err(fe(ErrorCode::ShowEnded, "the show has ended")),
            s => Err(fe(
                ErrorCode::ShowNotLive,
                format!("the show is {}; inputs are not taken", status_str(s)),
            )),
        }
    }

    /// Apply a slider value. Returns the tick that applies it. The engine checks the
    /// value (kind, finiteness, range); its refusals become protocol codes in
    /// [`ShowRuntime::input_error`].
    pub fn input(&self, who: ParticipantId, param: &str, value: f64) -> Result<u64, FrameError> {
        let idx = self.param(param)?;
        self.submit(who, idx, InputValue::Continuous(value))
    }

    /// Apply a vote (a choice by name). Returns the tick that applies it.
    pub fn vote(&self, who: ParticipantId, param: &str, choice: &str) -> Result<u64, FrameError> {
        let idx = self.param(param)?;
        let p = &self.spec.params[idx];
        if p.kind != ParamKindName::Discrete {
            // A name is not a value: the engine would see a choice for a slider.
            return Err(self.input_error(InputError::WrongType, idx, None));
        }
        let c = p.choice_index(choice).ok_or_else(|| {
            fe(
                ErrorCode::InvalidChoice,
                format!(
                    "'{}' is not a choice of {param} ({})",
                    choice.chars().take(64).collect::<String>(),
                    p.choices.as_deref().unwrap_or_default().join(", ")
                ),
            )
        })?;
        self.submit(who, idx, InputValue::Choice(c))
    }

    /// The one place where the consensus engine's input errors become protocol codes.
    fn input_error(&self, e: InputError, idx: usize, value: Option<f64>) -> FrameError {
        let p = &self.spec.params[idx];
        let name = &p.name;
        match e {
            InputError::UnknownParticipant => {
                fe(ErrorCode::NotJoined, "your slot has expired; join again")
            }
            InputError::WrongType => match p.kind {
                ParamKindName::Discrete => fe(
                    ErrorCode::WrongType,
                    format!("'{name}' is a vote: send a vote frame with a choice"),
                ),
                ParamKindName::Continuous => fe(
                    ErrorCode::WrongType,
                    format!("'{name}' is a slider: send an input frame with a value"),
                ),
            },
            InputError::NotFinite => fe(
                ErrorCode::NotFinite,
                format!("{name} must be a finite number"),
            ),
            InputError::OutOfRange { min, max } => fe(
                ErrorCode::OutOfRange,
                match value {
                    Some(v) => format!("{name} must be within {} (got {v})", fmt_range(min, max)),
                    None => format!("{name} must be within {}", fmt_range(min, max)),
                },
            ),
            InputError::InvalidChoice { choices } => fe(
                ErrorCode::InvalidChoice,
                format!("{name} has {choices} choices"),
            ),
            InputError::UnknownParam => fe(
                ErrorCode::UnknownParam,
                format!("this piece has no parameter '{name}'"),
            ),
            other => fe(ErrorCode::BadFrame, other.to_string()),
        }
    }

    fn submit(&self, who: ParticipantId, idx: usize, v: InputValue) -> Result<u64, FrameError> {
        let now = self.now();
        let mut inner = self.lock();
        Self::require_live(inner.status)?;
        inner
            .engine
            .submit(who, ParamId(idx as u16), v, now)
            .map_err(|e| {
                let value = match v {
                    InputValue::Continuous(x) => Some(x),
                    InputValue::Choice(_) => None,
                };
                self.input_error(e, idx, value)
            })?;
        inner.movement.moved(who);
        self.inputs.fetch_add(1, Relaxed);
        let _ = self.first_pending_ns.compare_exchange(
            0,
            ((now * 1e9) as u64).max(1),
            Relaxed,
            Relaxed,
        );
        Ok(self.next_tick.load(Relaxed))
    }

    /// Validate an override request into an engine override.
    fn build_override(
        &self,
        idx: usize,
        req: &OverrideRequest,
        actor: &Actor,
        now: f64,
    ) -> Result<Override, FrameError> {
        let p = &self.spec.params[idx];
        let (lo, hi) = p.range();
        let span = hi - lo;
        let need = |v: Option<f64>, what: &str| {
            v.ok_or_else(|| {
                fe(
                    ErrorCode::InvalidOverride,
                    format!("{:?} override needs '{what}'", req.mode).to_lowercase(),
                )
            })
        };
        let in_range = |v: f64, what: &str| {
            if !v.is_finite() || v < lo || v > hi {
                Err(fe(
                    ErrorCode::InvalidOverride,
                    format!("{what} must be within {} (got {v})", fmt_range(lo, hi)),
                ))
            } else {
                Ok(v)
            }
        };
        let mode = match req.mode {
            OverrideModeName::Lock => OverrideMode::Lock {
                value: in_range(need(req.a, "value")?, "value")?,
            },
            OverrideModeName::Bias => {
                let amount = need(req.a, "amount")?;
                if !amount.is_finite() || amount.abs() > span {
                    return Err(fe(
                        ErrorCode::InvalidOverride,
                        format!("amount must be within ±{span} (got {amount})"),
                    ));
                }
                OverrideMode::Bias { amount }
            }
            OverrideModeName::Blend => {
                let target = in_range(need(req.a, "target")?, "target")?;
                let factor = need(req.b, "factor")?;
                if !(0.0..=1.0).contains(&factor) {
                    return Err(fe(
                        ErrorCode::InvalidOverride,
                        format!("factor must be within 0..1 (got {factor})"),
                    ));
                }
                OverrideMode::Blend { target, factor }
            }
            OverrideModeName::Clamp => {
                let a = in_range(need(req.a, "lo")?, "lo")?;
                let b = in_range(need(req.b, "hi")?, "hi")?;
                if a > b {
                    return Err(fe(
                        ErrorCode::InvalidOverride,
                        format!("lo must not exceed hi (got {a} > {b})"),
                    ));
                }
                OverrideMode::Clamp { lo: a, hi: b }
            }
            OverrideModeName::Freeze => OverrideMode::Freeze,
        };
        if p.kind == ParamKindName::Discrete
            && !matches!(mode, OverrideMode::Lock { .. } | OverrideMode::Freeze)
        {
            return Err(fe(
                ErrorCode::InvalidOverride,
                "votes take only lock (a choice index) and freeze",
            ));
        }
        let expires_at = match req.expires_in {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Some(now + s),
            Some(s) => {
                return Err(fe(
                    ErrorCode::InvalidOverride,
                    format!("expires_in must be within 0..86400 seconds (got {s})"),
                ))
            }
        };
        Ok(Override {
            param: ParamId(idx as u16),
            mode,
            priority: actor.priority,
            by: actor.by,
            set_at: now,
            expires_at,
        })
    }

    async fn log(
        &self,
        actor: &Actor,
        param: &str,
        action: &str,
        detail: LogDetail,
    ) -> Result<(), FrameError> {
        self.store
            .record_override(NewOverride {
                show_id: self.show_id,
                at_ms: unix_ms(),
                actor: actor.name.clone(),
                param: param.to_string(),
                action: action.to_string(),
                detail_json: serde_json::to_string(&detail).unwrap_or_default(),
            })
            .await
            .map(|_| ())
            .map_err(|e| match e {
                tutti_store::StoreError::Storage { .. } => {
                    tracing::warn!(error = %e, "a performer command was refused: storage");
                    fe(
                        ErrorCode::StorageUnavailable,
                        format!("{e}; nothing changed, the show goes on"),
                    )
                }
                e => {
                    tracing::error!(error = %e, "could not store an override");
                    fe(
                        ErrorCode::Internal,
                        "the override could not be stored; nothing changed",
                    )
                }
            })
    }

    fn check_not_ended(&self) -> Result<(), FrameError> {
        if self.status() == ShowStatus::Ended {
            return Err(fe(ErrorCode::ShowEnded, "the show has ended"));
        }
        Ok(())
    }

    /// Set an override: validate, store (await the commit), apply.
    pub async fn set_override(
        &self,
        actor: &Actor,
        param: &str,
        req: OverrideRequest,
    ) -> Result<u64, FrameError> {
        self.check_not_ended()?;
        let idx = self.param(param)?;
        let now = self.now();
        let ov = self.build_override(idx, &req, actor, now)?;
        let expires_at_ms = req.expires_in.map(|s| unix_ms() + (s * 1000.0) as i64);
        self.log(
            actor,
            param,
            "set",
            LogDetail {
                mode: Some(req.mode),
                a: req.a,
                b: req.b,
                expires_at_ms,
                by: actor.by,
                priority: actor.priority,
                on: None,
            },
        )
        .await?;
        let mut inner = self.lock();
        inner.renderer.name_performer(actor.by, &actor.name);
        inner
            .engine
            .set_override(ov)
            .map_err(|e| fe(ErrorCode::InvalidOverride, e.to_string()))?;
        inner.force_publish = true;
        Ok(self.next_tick.load(Relaxed))
    }

    /// Release one mode or all overrides of a parameter.
    pub async fn release(
        &self,
        actor: &Actor,
        param: &str,
        mode: Option<OverrideModeName>,
    ) -> Result<u64, FrameError> {
        self.check_not_ended()?;
        let idx = self.param(param)?;
        self.log(
            actor,
            param,
            "release",
            LogDetail {
                mode,
                ..empty_detail(actor)
            },
        )
        .await?;
        let mut inner = self.lock();
        apply_release(&mut inner.engine, idx, mode);
        inner.force_publish = true;
        Ok(self.next_tick.load(Relaxed))
    }

    /// Global reset.
    pub async fn reset(&self, actor: &Actor) -> Result<u64, FrameError> {
        self.check_not_ended()?;
        self.log(actor, "*", "reset", empty_detail(actor)).await?;
        let mut inner = self.lock();
        inner.engine.reset();
        inner.force_publish = true;
        Ok(self.next_tick.load(Relaxed))
    }

    /// Bypass the audience (or stop bypassing).
    pub async fn bypass(&self, actor: &Actor, on: bool) -> Result<u64, FrameError> {
        self.check_not_ended()?;
        let mut d = empty_detail(actor);
        d.on = Some(on);
        self.log(actor, "*", "bypass", d).await?;
        let mut inner = self.lock();
        inner.engine.set_bypass(on);
        inner.force_publish = true;
        Ok(self.next_tick.load(Relaxed))
    }

    /// Change the show's status (stored before it takes effect).
    pub async fn session(&self, actor: &Actor, action: SessionAction) -> Result<u64, FrameError> {
        let from = self.status();
        let to = match (action, from) {
            (SessionAction::Start, ShowStatus::Scheduled) => ShowStatus::Live,
            (SessionAction::Pause, ShowStatus::Live) => ShowStatus::Paused,
            (SessionAction::Resume, ShowStatus::Paused) => ShowStatus::Live,
            (SessionAction::End, ShowStatus::Live | ShowStatus::Paused) => ShowStatus::Ended,
            _ => {
                return Err(fe(
                    ErrorCode::InvalidTransition,
                    format!(
                        "cannot {} a show that is {}",
                        format!("{action:?}").to_lowercase(),
                        status_str(from)
                    ),
                ))
            }
        };
        self.store
            .set_show_status(self.show_id, to, unix_ms())
            .await
            .map_err(|e| match e {
                tutti_store::StoreError::InvalidTransition { .. } => {
                    fe(ErrorCode::InvalidTransition, e.to_string())
                }
                tutti_store::StoreError::Storage { .. } => fe(
                    ErrorCode::StorageUnavailable,
                    format!("{e}; the show stays {}", status_str(from)),
                ),
                other => {
                    tracing::error!(error = %other, "could not store a status change");
                    fe(ErrorCode::Internal, "the status change could not be stored")
                }
            })?;
        tracing::info!(show = %self.code, by = %actor.name, status = status_str(to), "session");
        let mut inner = self.lock();
        inner.status = to;
        inner.force_publish = true;
        Ok(self.next_tick.load(Relaxed))
    }

    /// Follow a status change that was already stored elsewhere (the management API).
    pub fn follow_status(&self, status: ShowStatus) {
        let mut inner = self.lock();
        if inner.status != status {
            inner.status = status;
            inner.force_publish = true;
        }
    }

    /// The once-a-second upkeep of a tick, without the tick: sweeps the slots whose phone
    /// has been gone longer than the resume grace period (their participants leave the
    /// engine), forgets replaced tokens past the grace, and adapts the audience state rate
    /// to what the fan-out achieved in the last second. [`ShowRuntime::tick_with`] does
    /// it itself; an edge of issue 14, which never ticks its engine, calls this at its
    /// tick rate instead. Does nothing until a second (show clock) has passed since the
    /// last upkeep.
    pub fn upkeep(&self) {
        let now = self.now();
        let mut guard = self.lock();
        self.upkeep_locked(&mut guard, now);
    }

    fn upkeep_locked(&self, inner: &mut Inner, now: f64) {
        if now - inner.last_sweep < 1.0 {
            return;
        }
        inner.last_sweep = now;
        let grace = self.resume_grace;
        let engine = &mut inner.engine;
        inner.slots.retain(|_, s| match s.disconnected_at {
            Some(t) if now - t > grace => {
                engine.leave(s.id);
                false
            }
            _ => true,
        });
        let Inner {
            slots,
            guests,
            replaced,
            ..
        } = inner;
        guests.retain(|_, token| slots.contains_key(token));
        replaced.retain(|_, at| now - *at <= grace);
        self.adapt_rate();
    }

    /// Compute one tick: engine, render, persistence, then every sink. Called by the
    /// ticker only (or a test or tool driving the show by hand). The consensus tick
    /// (feeding OSC and audio) always runs at the piece's rate; only the audience's state
    /// texts follow the adaptive rate.
    pub fn tick(&self, scratch: &mut TickScratch, sinks: &[Arc<dyn TickSink>]) {
        self.tick_with(scratch, sinks, None);
    }

    /// [`ShowRuntime::tick`], finished from `merged` when given: a show's conductor
    /// (issue 14) passes the partials its edges sent, merged, instead of its own engine's
    /// inputs (it holds no phones). Everything else — tick numbers, overrides, smoothing,
    /// rendering, snapshots, sinks — runs exactly as on a single node; the state's
    /// participant count is the merged one. Partials that do not fit the engine (the
    /// caller checked them; this cannot happen through `tutti-cluster`'s inbox) leave the
    /// last state in place, logged.
    pub fn tick_with(
        &self,
        scratch: &mut TickScratch,
        sinks: &[Arc<dyn TickSink>],
        merged: Option<&Partials>,
    ) {
        let now = self.now();
        let started = Instant::now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let live = inner.status == ShowStatus::Live;
        if live {
            // Inputs submitted since the last tick waited this long at most.
            let first = self.first_pending_ns.swap(0, Relaxed);
            if first != 0 {
                let waited = now - first as f64 / 1e9;
                self.stats.input_wait.observe(waited.max(0.0));
            }
            // The hub numbers ticks itself (acks promise this number), under the same
            // lock that submits take, so an acknowledged input is in the promised tick.
            inner.last_tick = self.next_tick.fetch_add(1, Relaxed);
            self.tick_times.record(inner.last_tick, now_ms());
            match merged {
                None => {
                    let snap = inner.engine.tick(now);
                    inner.last.clone_from(snap);
                }
                Some(m) => match inner.engine.tick_from(m, now) {
                    Ok(snap) => inner.last.clone_from(snap),
                    Err(e) => {
                        tracing::warn!(show = %self.code, error = %e, "merged partials do not fit the engine; the last state stays");
                    }
                },
            }
        }
        let computed = started.elapsed();
        self.upkeep_locked(inner, now);
        let rate = self.state_rate();
        let target = f64::from(self.spec.state_hz.max(1));
        // Publishes are scheduled by tick phase, not by comparing clock readings: at
        // state_hz = tick_hz every tick publishes, at half the rate every other one, and
        // timer jitter cannot make a tick skip its publish.
        let tick_hz = f64::from(self.spec.tick_hz.max(1));
        let due = |phase: &mut f64, hz: f64| {
            *phase += (hz / tick_hz).min(1.0);
            if *phase >= 1.0 - 1e-9 {
                *phase -= 1.0;
                true
            } else {
                false
            }
        };
        let audience_due = live && due(&mut inner.audience_phase, rate);
        let detail_due = live && due(&mut inner.detail_phase, target);
        let publish_audience =
            inner.force_publish || audience_due || now - inner.last_publish >= 1.0;
        let publish_detail =
            inner.force_publish || detail_due || now - inner.last_detail_publish >= 1.0;
        // A publish out of schedule (forced, or the once-a-second refresh) restarts it.
        if publish_audience && !audience_due {
            inner.audience_phase = 0.0;
        }
        if publish_detail && !detail_due {
            inner.detail_phase = 0.0;
        }
        let store_snapshot = live && now - inner.last_snapshot_store >= 1.0;
        inner.force_publish = false;
        let status = status_str(inner.status);
        let participants = merged.map_or_else(
            || inner.engine.participants(),
            |m| usize::try_from(m.participants()).unwrap_or(usize::MAX),
        );
        let mut audience_seq = None;
        if publish_audience {
            let t = Instant::now();
            inner.last_publish = now;
            inner.renderer.render(
                &mut scratch.audience,
                &inner.last,
                inner.last_tick,
                status,
                rate,
                participants,
                false,
                now,
            );
            self.stats.serialize.observe(t.elapsed().as_secs_f64());
            audience_seq = Some(self.publish_seq.fetch_add(1, Relaxed) + 1);
        }
        let mut health = None;
        if publish_detail || store_snapshot {
            inner.last_detail_publish = now;
            inner.renderer.render(
                &mut scratch.detail,
                &inner.last,
                inner.last_tick,
                status,
                target,
                participants,
                true,
                now,
            );
            if store_snapshot {
                inner.last_snapshot_store = now;
                health = Some((self.health(inner), Self::crowd(inner, now)));
            }
        }
        scratch.values.clear();
        scratch
            .values
            .extend(inner.last.params.iter().map(|p| p.value));
        let number = inner.last_tick;
        drop(guard);
        self.stats.tick.observe(computed.as_secs_f64());
        let unix = unix_ms();
        if let Some((mut health, crowd)) = health {
            for sink in sinks {
                sink.health(&mut health);
            }
            let row = SnapshotRow {
                show_id: self.show_id,
                tick: number,
                at_ms: unix,
                state_json: scratch.detail.clone(),
                health_json: Some(health.to_json()),
            };
            let stored = match postcard::to_stdvec(&crowd) {
                Ok(blob) if blob.len() <= tutti_store::MAX_CROWD_BYTES => {
                    self.store.record_snapshot_with_crowd(row, blob)
                }
                Ok(blob) => {
                    tracing::warn!(
                        bytes = blob.len(),
                        "the crowd is too large to store; snapshot stored without it"
                    );
                    self.store.record_snapshot(row)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot encode the crowd; snapshot stored without it");
                    self.store.record_snapshot(row)
                }
            };
            if let Err(e) = stored {
                tracing::debug!(error = %e, "snapshot dropped");
            }
        }
        self.stats.record_tick(started.elapsed().as_micros() as u64);
        let tick = Tick {
            show: &self.code,
            number,
            time: now,
            unix_ms: unix,
            spec: &self.spec,
            values: &scratch.values,
            live,
            audience: audience_seq.map(|seq| Publish {
                json: &scratch.audience,
                seq,
            }),
            detail: publish_detail.then_some(Publish {
                json: &scratch.detail,
                seq: 0,
            }),
        };
        for sink in sinks {
            sink.on_tick(&tick);
        }
    }

    /// This show's crowd as mergeable partial aggregates at the show clock's now, which is
    /// returned (an edge of issue 14 publishes them every tick). Taken under the show's
    /// lock like a submit; no tick, no sink. `out` is reused when it has the engine's shape.
    pub fn partials_into(&self, out: &mut Partials) -> f64 {
        let now = self.now();
        self.lock().engine.partials_into(now, out);
        now
    }

    /// An edge's tick (issue 14): hands the state a show's conductor published —
    /// `audience`, the compact `state` frame's JSON, for tick `number` — to every sink as
    /// a [`Tick`] whose audience text is those bytes, unchanged, live when this runtime's
    /// status is (an edge follows the conductor's status first, [`ShowRuntime::follow_status`],
    /// so a paused or ended show reaches its phones as on one node). This runtime's engine
    /// computes nothing: it only takes the published values as its reference (the
    /// agreement term of the partials it sends next, and the tick that inputs' acks
    /// promise). Returns `false`, handing nothing on, when `audience` is not a state frame
    /// of this piece.
    pub fn follow_state(
        &self,
        scratch: &mut TickScratch,
        sinks: &[Arc<dyn TickSink>],
        number: u64,
        audience: &str,
    ) -> bool {
        let Ok(frame) = serde_json::from_str::<tutti_protocol::StateFrame>(audience) else {
            return false;
        };
        if frame.kind != "state" || frame.tick != number {
            return false;
        }
        let now = self.now();
        let live = {
            let mut inner = self.lock();
            scratch.values.clear();
            for (i, p) in self.spec.params.iter().enumerate() {
                let v = frame.params.get(&p.name).map_or_else(
                    || inner.last.params.get(i).map_or(p.range().0, |s| s.value),
                    |s| s.value,
                );
                scratch.values.push(v);
            }
            inner.engine.restore(&scratch.values);
            for (dst, &v) in inner.last.params.iter_mut().zip(&scratch.values) {
                dst.value = v;
            }
            inner.last_tick = number;
            self.next_tick.store(number + 1, Relaxed);
            inner.status == ShowStatus::Live
        };
        self.tick_times.record(number, now_ms());
        let tick = Tick {
            show: &self.code,
            number,
            time: now,
            unix_ms: unix_ms(),
            spec: &self.spec,
            values: &scratch.values,
            live,
            audience: Some(Publish {
                json: audience,
                seq: self.publish_seq.fetch_add(1, Relaxed) + 1,
            }),
            detail: None,
        };
        for sink in sinks {
            sink.on_tick(&tick);
        }
        true
    }

    /// The crowd to store with a snapshot: every slot with its token's hash, its guest and
    /// its participant's latest inputs (ages taken at `now`).
    fn crowd(inner: &Inner, now: f64) -> StoredCrowd {
        let mut members: HashMap<ParticipantId, Member> = inner
            .engine
            .crowd(now)
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let mut out: Vec<StoredMember> = inner
            .slots
            .iter()
            .filter_map(|(key, slot)| {
                members.remove(&slot.id).map(|member| StoredMember {
                    key: *key,
                    guest: slot.guest,
                    member,
                })
            })
            .collect();
        // Slot order: the engine readmits cheapest that way.
        out.sort_unstable_by_key(|m| m.member.id.slot);
        StoredCrowd {
            version: CROWD_VERSION,
            members: out,
            replaced: inner.replaced.keys().copied().collect(),
        }
    }

    /// Bring the crowd stored with the latest snapshot back: each participant under its
    /// handle with its latest inputs, its slot kept for the resume grace period as if it had
    /// just disconnected. Returns how many came back.
    fn restore_crowd(&self, inner: &mut Inner, blob: &[u8], now: f64) -> usize {
        let crowd: StoredCrowd = match postcard::from_bytes(blob) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(show = %self.code, error = %e, "the stored crowd is unreadable; the show resumes without it");
                return 0;
            }
        };
        if crowd.version != CROWD_VERSION {
            tracing::warn!(show = %self.code, version = crowd.version, "the stored crowd has another format; the show resumes without it");
            return 0;
        }
        for key in crowd.replaced {
            inner.replaced.insert(key, now);
        }
        let mut back = 0;
        for m in crowd.members {
            match inner.engine.readmit(&m.member, now) {
                Ok(id) => {
                    let zone = m.member.zone.map(|z| z.0);
                    inner.movement.joined(id, zone);
                    inner.slots.insert(
                        m.key,
                        Slot {
                            id,
                            connections: 0,
                            disconnected_at: Some(now),
                            zone,
                            guest: m.guest,
                            epoch: watch::channel(1).0,
                        },
                    );
                    if let Some(g) = m.guest {
                        inner.guests.insert(g, m.key);
                    }
                    back += 1;
                }
                Err(e) => {
                    tracing::warn!(show = %self.code, slot = m.member.id.slot, error = %e, "a stored participant could not be brought back");
                }
            }
        }
        back
    }

    /// The show's health for the snapshot being stored (once a second, on the tick thread:
    /// one pass over the slots); starts the next period of "moving". The sinks add theirs
    /// (the engine's level) after the lock is released.
    fn health(&self, inner: &mut Inner) -> tutti_report::Health {
        let zones = self.spec.zones.len();
        let mut by_zone = vec![tutti_report::ZoneHealth::default(); zones];
        let mut connected = 0u32;
        for slot in inner.slots.values().filter(|s| s.connections > 0) {
            connected += 1;
            if let Some(z) = slot.zone.and_then(|z| by_zone.get_mut(usize::from(z))) {
                z.connected += 1;
            }
        }
        let (moving, moving_by_zone) = inner.movement.take();
        for (z, n) in by_zone.iter_mut().zip(moving_by_zone) {
            z.moving = n;
        }
        let errors = tutti_protocol::ErrorCode::ALL
            .iter()
            .map(|&c| (c.as_str().to_string(), self.stats.errors_of(c)))
            .filter(|(_, n)| *n > 0)
            .collect();
        tutti_report::Health {
            connected,
            moving,
            zones: by_zone,
            inputs: self.inputs.load(Relaxed),
            resumes: self.resumes.load(Relaxed),
            state_rate: self.state_rate(),
            delivered: self.stats.states_delivered.load(Relaxed),
            late: self.stats.states_late.load(Relaxed),
            skipped: self.stats.states_skipped.load(Relaxed),
            errors,
            level_dbfs: None,
        }
    }

    /// The audience state rate in force (Hz).
    pub fn state_rate(&self) -> f64 {
        f64::from_bits(self.state_rate_bits.load(Relaxed))
    }

    /// Once a second: lower the audience state rate evenly for everyone when too many
    /// deliveries were late (the server cannot keep up), raise it back when they are not.
    pub(crate) fn adapt_rate(&self) {
        let delivered = self.stats.states_window.swap(0, Relaxed);
        let late = self.stats.states_late_window.swap(0, Relaxed);
        let target = f64::from(self.spec.state_hz.max(1));
        let rate = self.state_rate();
        let next = if delivered == 0 {
            rate
        } else {
            let late_share = late as f64 / delivered as f64;
            if late_share > LATE_DEGRADE {
                (rate * 0.75).max(MIN_STATE_HZ.min(target))
            } else if late_share < LATE_RECOVER && rate < target {
                (rate * 1.25 + 0.5).min(target)
            } else {
                rate
            }
        };
        if next != rate {
            tracing::info!(
                from = rate,
                to = next,
                late,
                delivered,
                "audience state rate {}",
                if next < rate { "lowered" } else { "raised" }
            );
            self.state_rate_bits.store(next.to_bits(), Relaxed);
        }
        self.stats
            .state_rate_millihz
            .store((next * 1000.0) as u64, Relaxed);
    }

    /// Run the ticker until `shutdown` fires (or this future is dropped, as when its task
    /// is aborted). The ticks run on a thread of their own, not on the async runtime: the
    /// consensus tick feeds audio and OSC, and must keep its rate however many phones keep
    /// the runtime's threads busy.
    pub async fn run_ticker(
        self: Arc<Self>,
        sinks: Vec<Arc<dyn TickSink>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        /// Stops the thread when the ticker's future goes, however it goes.
        struct Stop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Stop {
            fn drop(&mut self) {
                self.0.store(true, Relaxed);
            }
        }
        let stop = Stop(Arc::default());
        let flag = stop.0.clone();
        let period = Duration::from_secs_f64(1.0 / f64::from(self.spec.tick_hz.max(1)));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let show = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("tutti-tick-{}", self.code))
            .spawn(move || {
                let mut scratch = TickScratch::default();
                let mut next = Instant::now() + period;
                while !flag.load(Relaxed) {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    if flag.load(Relaxed) {
                        break;
                    }
                    show.tick(&mut scratch, &sinks);
                    next += period;
                    // A tick missed (the machine stalled) is skipped, not caught up in a burst.
                    let now = Instant::now();
                    while next <= now {
                        next += period;
                    }
                }
                drop(done_tx);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, show = %self.code, "cannot start the ticker thread");
            return;
        }
        let _ = shutdown.changed().await;
        drop(stop);
        let _ = done_rx.await;
    }

    /// Bring the show back to where it was: the last stored state, the crowd stored with it
    /// (participants under their handles, resumable with their tokens, latest inputs), and
    /// the overrides still in force (replayed from the override log, expired ones skipped).
    pub async fn restore(&self) -> Result<(), ShowError> {
        let snapshot = self.store.latest_snapshot(self.show_id).await?;
        let crowd = self.store.latest_crowd(self.show_id).await?;
        let log = self.store.overrides(self.show_id).await?;
        let now_ms = unix_ms();
        let now = self.now();
        let mut inner = self.lock();
        let mut snapshot_restored = false;
        if let Some(s) = snapshot {
            if let Ok(frame) = serde_json::from_str::<tutti_protocol::StateFrame>(&s.state_json) {
                let values: Vec<f64> = self
                    .spec
                    .params
                    .iter()
                    .map(|p| {
                        frame
                            .params
                            .get(&p.name)
                            .map_or_else(|| p.range().0, |ps| ps.value)
                    })
                    .collect();
                inner.engine.restore(&values);
                inner.engine.set_bypass(frame.bypass);
                self.next_tick.store(frame.tick + 1, Relaxed);
                inner.last_tick = frame.tick;
                snapshot_restored = true;
            }
        }
        if let Some((tick, blob)) = crowd {
            let back = self.restore_crowd(&mut inner, &blob, now);
            tracing::info!(show = %self.code, participants = back, tick, "brought the crowd back");
        }
        if snapshot_restored {
            let snap = inner.engine.tick(now).clone();
            inner.last = snap;
        }
        for row in log {
            let Ok(d) = serde_json::from_str::<LogDetail>(&row.detail_json) else {
                continue;
            };
            match row.action.as_str() {
                "reset" => inner.engine.reset(),
                "bypass" => inner.engine.set_bypass(d.on.unwrap_or(false)),
                "release" => {
                    if let Some(idx) = self.spec.param_index(&row.param) {
                        apply_release(&mut inner.engine, idx, d.mode);
                    }
                }
                "set" => {
                    let (Some(idx), Some(mode)) = (self.spec.param_index(&row.param), d.mode)
                    else {
                        continue;
                    };
                    if d.expires_at_ms.is_some_and(|t| t <= now_ms) {
                        continue;
                    }
                    let req = OverrideRequest {
                        mode,
                        a: d.a,
                        b: d.b,
                        expires_in: d.expires_at_ms.map(|t| (t - now_ms) as f64 / 1000.0),
                    };
                    let actor = Actor {
                        by: d.by,
                        priority: d.priority,
                        name: row.actor.clone(),
                    };
                    if let Ok(ov) = self.build_override(idx, &req, &actor, now) {
                        inner.renderer.name_performer(actor.by, &actor.name);
                        let _ = inner.engine.set_override(ov);
                    }
                }
                _ => {}
            }
        }
        inner.force_publish = true;
        Ok(())
    }
}

fn apply_release(engine: &mut Engine, idx: usize, mode: Option<OverrideModeName>) {
    let kinds: &[OverrideModeName] = match mode {
        Some(ref m) => std::slice::from_ref(m),
        None => &[
            OverrideModeName::Clamp,
            OverrideModeName::Bias,
            OverrideModeName::Blend,
            OverrideModeName::Lock,
            OverrideModeName::Freeze,
        ],
    };
    for m in kinds {
        engine.clear_override(ParamId(idx as u16), kind_of(*m), None);
    }
}

fn empty_detail(actor: &Actor) -> LogDetail {
    LogDetail {
        mode: None,
        a: None,
        b: None,
        expires_at_ms: None,
        by: actor.by,
        priority: actor.priority,
        on: None,
    }
}

/// A random 128-bit token in hex.
pub fn new_token() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(spec: PieceSpec, dir: &std::path::Path) -> Arc<ShowRuntime> {
        runtime_at("TEST", 1, spec, &dir.join("t.db"))
    }

    /// A live runtime of show `id` over the store at `db`.
    fn runtime_at(code: &str, id: i64, spec: PieceSpec, db: &std::path::Path) -> Arc<ShowRuntime> {
        let store = Store::open(tutti_store::StoreConfig::new(db)).unwrap();
        ShowRuntime::new(
            code.into(),
            id,
            Arc::new(spec),
            ShowStatus::Live,
            String::new(),
            Arc::new(HubStats::default()),
            store,
            120.0,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn every_tick_publishes_at_the_full_rate_and_every_other_at_half() {
        let dir = tempfile::tempdir().unwrap();
        let spec = PieceSpec::demo();
        let mut scratch = TickScratch::default();
        // Ticks called back to back: clock readings barely move, so a time-based schedule
        // would skip; the phase schedule publishes exactly once per tick.
        let show = runtime(spec.clone(), dir.path());
        for _ in 0..40 {
            show.tick(&mut scratch, &[]);
        }
        assert_eq!(show.publish_seq.load(Relaxed), 40);
        let mut half = spec;
        half.state_hz = 10;
        let show = runtime(half, dir.path());
        for _ in 0..40 {
            show.tick(&mut scratch, &[]);
        }
        assert_eq!(show.publish_seq.load(Relaxed), 20);
    }

    #[tokio::test]
    async fn the_state_rate_falls_when_deliveries_are_late_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(tutti_store::StoreConfig::new(dir.path().join("t.db"))).unwrap();
        let stats = Arc::new(HubStats::default());
        let show = ShowRuntime::new(
            "TEST".into(),
            1,
            Arc::new(PieceSpec::demo()),
            ShowStatus::Live,
            String::new(),
            stats.clone(),
            store,
            120.0,
        )
        .unwrap();
        assert_eq!(show.state_rate(), 20.0);
        // What the fan-out counts in a second: deliveries, and those later than a period.
        let second = |delivered: u64, late: u64| {
            stats.states_window.fetch_add(delivered, Relaxed);
            stats.states_late_window.fetch_add(late, Relaxed);
        };
        // A second in which half the deliveries came a whole period late: the server is behind.
        let mut rates = vec![];
        for _ in 0..12 {
            second(100, 50);
            show.adapt_rate();
            rates.push(show.state_rate());
        }
        assert!(rates.windows(2).all(|w| w[1] <= w[0]), "{rates:?}");
        assert_eq!(*rates.last().unwrap(), MIN_STATE_HZ, "{rates:?}");
        // Deliveries on time again: back up to the piece's rate.
        for _ in 0..20 {
            second(100, 0);
            show.adapt_rate();
        }
        assert_eq!(show.state_rate(), 20.0);
        assert_eq!(stats.state_rate_millihz.load(Relaxed), 20_000);
        // A few late deliveries (under the threshold) do not lower everyone's rate.
        second(100, 5);
        show.adapt_rate();
        assert_eq!(show.state_rate(), 20.0);
    }

    /// An edge never ticks its engine; its upkeep alone sweeps a phone gone past the resume
    /// grace (not before) and adapts the state rate, and no state is computed or published.
    #[tokio::test]
    async fn an_edges_upkeep_sweeps_gone_phones_and_adapts_the_rate_without_a_tick() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(tutti_store::StoreConfig::new(dir.path().join("t.db"))).unwrap();
        let stats = Arc::new(HubStats::default());
        let clock = ShowClock::manual(0.0);
        let edge = ShowRuntime::new_on_clock(
            "TEST".into(),
            1,
            Arc::new(PieceSpec::demo()),
            ShowStatus::Live,
            String::new(),
            stats.clone(),
            store,
            120.0,
            clock.clone(),
        )
        .unwrap();
        let gone = edge.join_audience(None, None).unwrap();
        let stays = edge.join_audience(None, None).unwrap();
        assert_eq!(edge.participants(), 2);
        clock.set(5.0);
        edge.disconnect(&gone.token);
        // Within the grace the slot is kept, and a resume gets it back.
        clock.set(5.0 + 119.0);
        edge.upkeep();
        assert_eq!(edge.participants(), 2);
        // Past the grace it is swept (once a second of show time has passed since the
        // last upkeep), the other phone's slot untouched.
        clock.set(5.0 + 121.0);
        edge.upkeep();
        assert_eq!(edge.participants(), 1);
        let e = edge.join_audience(None, Some(&gone.token)).unwrap();
        assert_ne!(e.id, gone.id, "a swept slot is not resumed");
        assert_eq!(
            edge.join_audience(None, Some(&stays.token)).unwrap().id,
            stays.id
        );
        // Late deliveries lower the rate at the next upkeep, not before a second has passed.
        assert_eq!(edge.state_rate(), 20.0);
        stats.states_window.fetch_add(100, Relaxed);
        stats.states_late_window.fetch_add(50, Relaxed);
        edge.upkeep();
        assert_eq!(edge.state_rate(), 20.0);
        clock.set(5.0 + 122.0);
        edge.upkeep();
        assert!(edge.state_rate() < 20.0, "{}", edge.state_rate());
        // No tick ran: nothing computed, nothing published.
        assert_eq!(edge.publishes(), 0);
        assert_eq!(edge.next_tick.load(Relaxed), 1);
    }

    /// What a sink was handed: tick number, audience text, values.
    #[derive(Default)]
    struct Seen(Mutex<Vec<(u64, String, Vec<f64>)>>);

    impl TickSink for Seen {
        fn on_tick(&self, t: &Tick<'_>) {
            if let Some(a) = t.audience {
                let mut s = self.0.lock().unwrap();
                s.push((t.number, a.json.to_owned(), t.values.to_vec()));
            }
        }
    }

    /// Issue 14's seams: a tick finished from merged partials (a conductor's) is the tick
    /// a single node computes from its own inputs, overrides included; an edge following the
    /// published state hands its sinks the same bytes and values, and computes nothing.
    #[tokio::test]
    async fn a_tick_from_partials_is_the_single_nodes_and_an_edge_follows_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(tutti_store::StoreConfig::new(dir.path().join("t.db"))).unwrap();
        let spec = Arc::new(PieceSpec::demo());
        let clock = ShowClock::manual(0.0);
        let open = || {
            ShowRuntime::new_on_clock(
                "TEST".into(),
                1,
                spec.clone(),
                ShowStatus::Live,
                String::new(),
                Arc::new(HubStats::default()),
                store.clone(),
                120.0,
                clock.clone(),
            )
            .unwrap()
        };
        let (single, conductor, edge) = (open(), open(), open());
        let slider = spec
            .params
            .iter()
            .find(|p| p.kind == ParamKindName::Continuous)
            .unwrap();
        let (lo, hi) = slider.range();
        for i in 0..30 {
            clock.set(0.1 * f64::from(i));
            let x = lo + (hi - lo) * f64::from(i % 7) / 6.0;
            for rt in [&single, &edge] {
                let p = rt.join_audience(None, None).unwrap();
                rt.input(p.id, &slider.name, x).unwrap();
            }
        }
        // The same override on both finishing nodes, straight into their engines.
        for rt in [&single, &conductor] {
            let ov = Override {
                param: ParamId(spec.param_index(&slider.name).unwrap() as u16),
                mode: OverrideMode::Bias {
                    amount: (hi - lo) * 0.1,
                },
                priority: 1,
                by: 1,
                set_at: 0.0,
                expires_at: None,
            };
            rt.lock().engine.set_override(ov).unwrap();
        }
        let (a, b, c) = (
            Arc::new(Seen::default()),
            Arc::new(Seen::default()),
            Arc::new(Seen::default()),
        );
        let sinks = |s: &Arc<Seen>| -> Vec<Arc<dyn TickSink>> { vec![s.clone()] };
        let (sa, sb, sc) = (sinks(&a), sinks(&b), sinks(&c));
        let mut scratch = TickScratch::default();
        let mut merged = Partials::empty(&spec.engine_config(), 0.0);
        for k in 1..=10 {
            clock.set(3.0 + 0.05 * f64::from(k));
            single.tick(&mut scratch, &sa);
            assert_eq!(edge.partials_into(&mut merged), clock.now());
            conductor.tick_with(&mut scratch, &sb, Some(&merged));
            let (n, json, _) = b.0.lock().unwrap().last().unwrap().clone();
            assert!(edge.follow_state(&mut scratch, &sc, n, &json));
        }
        assert!(!edge.follow_state(&mut scratch, &sc, 99, "{\"type\":\"nope\"}"));
        let (a, b, c) = (
            a.0.lock().unwrap().clone(),
            b.0.lock().unwrap().clone(),
            c.0.lock().unwrap().clone(),
        );
        assert_eq!(a.len(), 10);
        assert_ne!(a[0].2, a[9].2, "smoothing moves the values");
        for ((sa, sb), sc) in a.iter().zip(&b).zip(&c) {
            assert_eq!(sa.0, sb.0);
            for (x, y) in sa.2.iter().zip(&sb.2) {
                assert!((x - y).abs() <= 1e-9, "{x} on one node, {y} from partials");
            }
            assert!(sb.1.contains("\"participants\":30,"), "{}", sb.1);
            assert_eq!(
                (sb.0, &sb.1),
                (sc.0, &sc.1),
                "the edge hands on the same bytes"
            );
        }
        // The edge's engine never ticked, and its acks promise the conductor's next tick.
        assert_eq!(edge.lock().engine.snapshot().tick, 0);
        assert_eq!(edge.next_tick.load(Relaxed), b[9].0 + 1);
    }

    /// A sink that reads the show from inside `on_tick` (it would deadlock if the tick
    /// still held the show's lock) and counts what it was given.
    struct Probe {
        show: std::sync::OnceLock<Arc<ShowRuntime>>,
        ticks: AtomicU64,
        audience: AtomicU64,
        last_values: Mutex<Vec<f64>>,
    }

    impl TickSink for Probe {
        fn on_tick(&self, tick: &Tick<'_>) {
            if let Some(show) = self.show.get() {
                let _ = show.participants();
            }
            self.ticks.fetch_add(1, Relaxed);
            if let Some(a) = tick.audience {
                assert!(a.json.starts_with('{'), "{}", a.json);
                self.audience.fetch_add(1, Relaxed);
            }
            *self.last_values.lock().unwrap() = tick.values.to_vec();
        }

        fn health(&self, h: &mut tutti_report::Health) {
            h.level_dbfs = Some(-12.0);
        }
    }

    #[tokio::test]
    async fn sinks_get_every_tick_after_the_lock_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let show = runtime(PieceSpec::demo(), dir.path());
        let probe = Arc::new(Probe {
            show: std::sync::OnceLock::new(),
            ticks: AtomicU64::new(0),
            audience: AtomicU64::new(0),
            last_values: Mutex::new(vec![]),
        });
        let _ = probe.show.set(show.clone());
        let who = show.join_audience(None, None).unwrap().id;
        show.input(who, "intensity", 1.0).unwrap();
        let sinks: Vec<Arc<dyn TickSink>> = vec![probe.clone()];
        let mut scratch = TickScratch::default();
        for _ in 0..10 {
            show.tick(&mut scratch, &sinks);
        }
        assert_eq!(probe.ticks.load(Relaxed), 10);
        assert_eq!(probe.audience.load(Relaxed), show.publishes());
        let values = probe.last_values.lock().unwrap().clone();
        assert_eq!(values.len(), show.spec.params.len());
        assert!(values[0] > 0.0, "{values:?}");
    }

    #[tokio::test]
    async fn the_engines_refusals_become_protocol_codes() {
        let dir = tempfile::tempdir().unwrap();
        let show = runtime(PieceSpec::demo(), dir.path());
        let who = show.join_audience(None, None).unwrap().id;
        let code = |r: Result<u64, FrameError>| r.unwrap_err().code;
        assert_eq!(
            code(show.input(who, "intensity", f64::NAN)),
            ErrorCode::NotFinite
        );
        let e = show.input(who, "intensity", 7.0).unwrap_err();
        assert_eq!(e.code, ErrorCode::OutOfRange);
        assert!(e.message.contains("got 7"), "{}", e.message);
        assert_eq!(code(show.input(who, "nope", 0.5)), ErrorCode::UnknownParam);
        let vote = show
            .spec
            .params
            .iter()
            .find(|p| p.kind == ParamKindName::Discrete)
            .expect("the demo has a vote")
            .name
            .clone();
        assert_eq!(code(show.input(who, &vote, 0.0)), ErrorCode::WrongType);
        assert_eq!(code(show.vote(who, "intensity", "a")), ErrorCode::WrongType);
        assert_eq!(
            code(show.vote(who, &vote, "no-such")),
            ErrorCode::InvalidChoice
        );
        show.follow_status(ShowStatus::Paused);
        assert_eq!(
            code(show.input(who, "intensity", 0.5)),
            ErrorCode::ShowNotLive
        );
    }

    #[tokio::test]
    async fn a_resume_takes_the_slot_over_and_retires_the_replaced_token() {
        let dir = tempfile::tempdir().unwrap();
        let show = runtime(PieceSpec::demo(), dir.path());
        let first = show.join_audience(None, None).unwrap();
        assert_eq!(*first.holder.borrow(), first.epoch);
        // A second connection resumes while the first still holds the slot: same
        // participant, a new token, and the first connection sees the slot taken over.
        let second = show.join_audience(None, Some(&first.token)).unwrap();
        assert_eq!(second.id, first.id);
        assert_ne!(second.token, first.token);
        assert!(first.holder.has_changed().unwrap());
        assert_ne!(*first.holder.borrow(), first.epoch);
        assert_eq!(*second.holder.borrow(), second.epoch);
        // The replaced token is refused with a stable code, not a new participant.
        let e = show.join_audience(None, Some(&first.token)).unwrap_err();
        assert_eq!(e.code, ErrorCode::ResumeReplaced);
        assert_eq!(show.participants(), 1);
        // The older connection closing does not release the slot the newer one holds.
        show.disconnect(&first.token);
        let third = show.join_audience(None, Some(&second.token)).unwrap();
        assert_eq!(third.id, first.id);
        // A token nobody issued still joins anew.
        let other = show.join_audience(None, Some("not-a-token")).unwrap();
        assert_ne!(other.id, first.id);
    }

    /// A `kill -9` and a restart on the same store: every participant of the last snapshot
    /// is back under its handle with its latest inputs, and resumes with its newest token.
    #[tokio::test]
    async fn the_crowd_comes_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let spec = PieceSpec::demo();
        let slider = spec
            .params
            .iter()
            .find(|p| p.kind == ParamKindName::Continuous)
            .unwrap()
            .name
            .clone();
        let vote = spec
            .params
            .iter()
            .find(|p| p.kind == ParamKindName::Discrete)
            .unwrap()
            .clone();
        let (lo, hi) = spec.params[spec.param_index(&slider).unwrap()].range();
        let open = |path: &std::path::Path, id: i64| runtime_at("CROWD", id, spec.clone(), path);
        let store = Store::open(tutti_store::StoreConfig::new(&path)).unwrap();
        let (piece, version) = store
            .ensure_piece("demo", "Demo", &spec.to_json())
            .await
            .unwrap();
        let row = store
            .create_show(
                piece.id,
                version.id,
                "CROWD",
                tutti_store::ShowKind::Performance,
            )
            .await
            .unwrap();
        store.close().await.unwrap();

        let show = open(&path, row.id);
        let mut scratch = TickScratch::default();
        let mut leases = vec![];
        for i in 0..5 {
            let lease = show.join_audience(None, None).unwrap();
            let x = lo + (hi - lo) * (i as f64 + 1.0) / 6.0;
            show.input(lease.id, &slider, x).unwrap();
            leases.push(lease);
        }
        show.vote(leases[0].id, &vote.name, &vote.choices.as_ref().unwrap()[1])
            .unwrap();
        // A guest, and a participant whose token was replaced by a later welcome.
        let guest = show.join_guest(None, 42, None).unwrap();
        let moved = show.join_audience(None, Some(&leases[4].token)).unwrap();
        // One who left for good is not brought back.
        let gone = show.join_audience(None, None).unwrap();
        show.lock().engine.leave(gone.id);
        show.lock().slots.remove(&token_key(&gone.token));
        // The snapshot is due (normally once a second).
        show.snapshot_at_next_tick();
        show.tick(&mut scratch, &[]);
        let before = show.lock().engine.crowd(show.now());
        let raw_before = show.lock().last.params[spec.param_index(&slider).unwrap()].raw;
        show.store.flush().await.unwrap();
        drop(show); // as a kill -9 would: nothing else is written

        let show = open(&path, row.id);
        show.restore().await.unwrap();
        assert_eq!(
            show.participants(),
            6,
            "five audience members and the guest"
        );
        let after = show.lock().engine.crowd(show.now());
        assert_eq!(
            after.iter().map(|m| m.id).collect::<Vec<_>>(),
            before.iter().map(|m| m.id).collect::<Vec<_>>()
        );
        for (a, b) in after.iter().zip(&before) {
            for (x, y) in a.inputs.iter().zip(&b.inputs) {
                match (x.map(|i| i.value), y.map(|i| i.value)) {
                    (Some(InputValue::Continuous(x)), Some(InputValue::Continuous(y))) => {
                        assert!((x - y).abs() < 1e-9, "{x} {y}");
                    }
                    (x, y) => assert_eq!(x, y),
                }
            }
        }
        let raw_after = show.lock().last.params[spec.param_index(&slider).unwrap()].raw;
        assert!(
            (raw_after.unwrap() - raw_before.unwrap()).abs() < 1e-9,
            "{raw_before:?} {raw_after:?}"
        );
        // Resume tokens keep working, and get the same participant.
        for lease in &leases[..4] {
            let back = show.join_audience(None, Some(&lease.token)).unwrap();
            assert_eq!(back.id, lease.id);
        }
        assert_eq!(
            show.join_audience(None, Some(&moved.token)).unwrap().id,
            moved.id
        );
        assert_eq!(show.join_guest(None, 42, None).unwrap().id, guest.id);
        // The token that resume replaced is still refused, not a new participant.
        let e = show
            .join_audience(None, Some(&leases[4].token))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ResumeReplaced);
        assert_eq!(show.participants(), 6, "nobody joined anew");
        // The slot that left stays gone; its token joins anew.
        let fresh = show.join_audience(None, Some(&gone.token)).unwrap();
        assert_eq!(show.participants(), 7);
        assert!(!before.iter().any(|m| m.id == fresh.id));
        // The stored crowd holds no token, only their hashes.
        let store = Store::open(tutti_store::StoreConfig::new(&path)).unwrap();
        let (_, blob) = store.latest_crowd(row.id).await.unwrap().unwrap();
        for lease in leases.iter().chain([&guest, &moved]) {
            assert!(
                !blob
                    .windows(lease.token.len())
                    .any(|w| w == lease.token.as_bytes()),
                "a resume token is stored in the clear"
            );
        }
    }

    #[tokio::test]
    async fn a_guest_keeps_its_slot_across_takeovers() {
        let dir = tempfile::tempdir().unwrap();
        let show = runtime(PieceSpec::demo(), dir.path());
        let a = show.join_guest(None, 7, None).unwrap();
        // Resumed by token (not by device): the guest's slot follows the new token.
        let b = show.join_audience(None, Some(&a.token)).unwrap();
        let c = show.join_guest(None, 7, None).unwrap();
        assert_eq!(c.id, a.id);
        assert_eq!(b.id, a.id);
        assert_eq!(show.participants(), 1);
    }
}
