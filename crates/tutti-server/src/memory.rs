//! Shows become episodes of the performance memory (`tutti-memory`), without touching the
//! live hub: this task follows the event bus (`show.transitioned`, `override.applied`) and
//! reads the 1 Hz snapshots (with the show's health) the hub already stores.
//!
//! * A show going live starts an episode (`show:<id>`; after a restart the interrupted one is
//!   completed by the memory and a new one, `show:<id>:<n>`, continues). Its dimensions are
//!   the piece's parameters in the piece's own terms (each value scaled to 0–1 over its range;
//!   a vote as its choice's position), then `participation`, `agreement`, `dispersion` (means
//!   over the parameters), `activity` (share of the connected audience that moved since the
//!   previous snapshot), `level` (the sound's level, −60–0 dBFS as 0–1) and `elapsed`
//!   (seconds / 5,400: a fixed scale, so moments of every show compare).
//! * Every `moment_every_s` seconds of stored snapshots makes a moment; a change of the
//!   `section` vote, a pause and every override (`<param> <mode>`, e.g. `intensity lock`) make
//!   steps; the show ending completes the episode (its reward measured from participation,
//!   agreement and activity, until someone rates the show).
//! * At most once a second per live show it computes suggestions and puts them on the
//!   memory's board, where `GET /api/v1/memory/suggestions?show=CODE` reads them.
//!
//! Must never: run on the tick's thread, wait for the store while holding anything the hub
//! uses, or stop a show because the memory cannot record it (errors are logged; appends
//! never wait).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tutti_events::{BusRecvError, EventBus};
use tutti_memory::{Context, Entry, Memory, MemoryConfig, Moment, Now, Outcome, Step};
use tutti_protocol::StateFrame;
use tutti_report::Health;
use tutti_spec::{ParamKindName, PieceSpec};
use tutti_store::{ShowKind, ShowRow, ShowStatus, Store};

use crate::ServerError;

/// The memory's settings (`[memory]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySettings {
    /// Record shows as episodes and serve `/api/v1/memory`.
    pub enabled: bool,
    /// Seconds of show between two moments (1–600).
    pub moment_every_s: u32,
    /// Compute live suggestions for the performer dashboard.
    pub suggestions: bool,
}

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            enabled: true,
            moment_every_s: 10,
            suggestions: true,
        }
    }
}

/// The scale of the `elapsed` dimension, seconds.
pub const ELAPSED_SCALE_S: f64 = 5400.0;

/// The dimension names of a piece's moments.
pub fn dims(spec: &PieceSpec) -> Vec<String> {
    let mut d: Vec<String> = spec.params.iter().map(|p| p.name.clone()).collect();
    for extra in [
        "participation",
        "agreement",
        "dispersion",
        "activity",
        "level",
        "elapsed",
    ] {
        if !d.iter().any(|n| n == extra) {
            d.push(extra.into());
        }
    }
    d
}

/// A snapshot as a moment vector in the order of [`dims`].
pub fn vector(
    spec: &PieceSpec,
    state: &StateFrame,
    health: Option<&Health>,
    elapsed_s: f64,
) -> Vec<f32> {
    let mut v = Vec::with_capacity(spec.params.len() + 6);
    let (mut part, mut agree, mut disp, mut n) = (0.0, 0.0, 0.0, 0.0);
    for p in &spec.params {
        let (lo, hi) = p.range();
        let span = (hi - lo).max(1e-9);
        let s = state.params.get(&p.name);
        let value = s.map_or(0.0, |s| ((s.value - lo) / span).clamp(0.0, 1.0));
        v.push(value as f32);
        if let Some(s) = s {
            part += s.participation.unwrap_or_else(|| {
                f64::from(s.participants) / f64::from(state.participants.max(1))
            });
            agree += s.agreement;
            if p.kind == ParamKindName::Continuous {
                disp += s.dispersion.unwrap_or(0.0) / span;
            }
            n += 1.0;
        }
    }
    let mean = |x: f64| {
        if n > 0.0 {
            (x / n).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let d = dims(spec);
    let named = d.len() - spec.params.len();
    let extras = [
        ("participation", mean(part)),
        ("agreement", mean(agree)),
        ("dispersion", mean(disp)),
        (
            "activity",
            health.map_or(0.0, |h| {
                (f64::from(h.moving) / f64::from(h.connected.max(1))).clamp(0.0, 1.0)
            }),
        ),
        (
            "level",
            health
                .and_then(|h| h.level_dbfs)
                .map_or(0.0, |l| ((f64::from(l) + 60.0) / 60.0).clamp(0.0, 1.0)),
        ),
        ("elapsed", (elapsed_s / ELAPSED_SCALE_S).clamp(0.0, 4.0)),
    ];
    for name in &d[d.len() - named..] {
        let x = extras.iter().find(|(n, _)| n == name).map_or(0.0, |e| e.1);
        v.push(x as f32);
    }
    v
}

/// The memory's configuration for a data directory.
pub fn memory_config(data_dir: &std::path::Path) -> MemoryConfig {
    MemoryConfig::new(data_dir)
}

/// Opens the memory over the store (rebuilding its indexes) and starts the task that turns
/// shows into episodes.
pub async fn start(
    settings: &MemorySettings,
    data_dir: &std::path::Path,
    store: Store,
    bus: &EventBus,
    shutdown: watch::Receiver<bool>,
) -> Result<(Memory, tokio::task::JoinHandle<()>), ServerError> {
    let mem = Memory::open(store.clone(), memory_config(data_dir))
        .await
        .map_err(|e| ServerError::Config(format!("memory: {e}")))?;
    let task = Recorder {
        mem: mem.clone(),
        store,
        every_ms: i64::from(settings.moment_every_s.clamp(1, 600)) * 1000,
        suggestions: settings.suggestions,
        live: HashMap::new(),
    };
    let sub = bus.subscribe();
    let handle = tokio::spawn(task.run(sub, shutdown));
    Ok((mem, handle))
}

struct LiveShow {
    code: String,
    key: String,
    kind: &'static str,
    piece: String,
    spec: Arc<PieceSpec>,
    dims: Vec<String>,
    origin_ms: i64,
    after_tick: Option<u64>,
    last_moment_ms: i64,
    section: Option<String>,
    latest: Option<(Vec<f32>, f64)>,
    last_suggest: Option<Instant>,
}

struct Recorder {
    mem: Memory,
    store: Store,
    every_ms: i64,
    suggestions: bool,
    live: HashMap<i64, LiveShow>,
}

impl Recorder {
    async fn run(
        mut self,
        mut sub: tutti_events::Subscription,
        mut shutdown: watch::Receiver<bool>,
    ) {
        self.rescan().await;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                ev = sub.recv() => match ev {
                    Ok(ev) => self.event(&ev).await,
                    Err(BusRecvError::Lagged { .. }) => self.rescan().await,
                    Err(BusRecvError::Closed) => break,
                },
                _ = tick.tick() => self.poll().await,
                _ = shutdown.changed() => break,
            }
        }
    }

    /// Follows the store: begins episodes for live shows it does not follow yet, finishes
    /// those of shows that ended.
    async fn rescan(&mut self) {
        let active = match self.store.active_shows().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "memory: cannot list active shows");
                return;
            }
        };
        for row in &active {
            if matches!(row.status, ShowStatus::Live | ShowStatus::Paused)
                && !self.live.contains_key(&row.id)
            {
                self.begin(row).await;
            }
        }
        let gone: Vec<i64> = self
            .live
            .keys()
            .filter(|id| !active.iter().any(|a| a.id == **id))
            .copied()
            .collect();
        for id in gone {
            self.finish(id).await;
        }
    }

    async fn event(&mut self, ev: &tutti_events::EventRecord) {
        let show_id = ev.data.get("show_id").and_then(serde_json::Value::as_i64);
        match (ev.kind.as_str(), show_id) {
            ("show.transitioned", Some(id)) => {
                let to = ev.data.get("to").and_then(|v| v.as_str()).unwrap_or("");
                match to {
                    "live" if !self.live.contains_key(&id) => {
                        if let Ok(Some(row)) = self.store.show(id).await {
                            self.begin(&row).await;
                        }
                    }
                    "ended" => self.finish(id).await,
                    "paused" | "live" => {
                        if let Some(l) = self.live.get(&id) {
                            let step = Step {
                                at_ms: ev.at_ms,
                                kind: "status".into(),
                                data: serde_json::json!({"label": format!("status {to}"), "to": to}),
                            };
                            if let Err(e) = self.mem.append_steps(&l.key, &[step]) {
                                tracing::debug!(error = %e, "memory: status step not recorded");
                            }
                        }
                    }
                    _ => {}
                }
            }
            ("override.applied", Some(id)) => {
                let Some(l) = self.live.get(&id) else { return };
                let param = ev.data.get("param").and_then(|v| v.as_str()).unwrap_or("*");
                let action = ev
                    .data
                    .get("action")
                    .and_then(|v| v.as_str())
                    .unwrap_or("set");
                let detail = ev.data.get("detail").cloned().unwrap_or_default();
                let mode = detail.get("mode").and_then(|v| v.as_str());
                let label = match (action, mode) {
                    ("set", Some(m)) => format!("{param} {m}"),
                    ("release", _) => format!("{param} release"),
                    ("bypass", _) => "bypass".to_owned(),
                    (a, _) => format!("{param} {a}"),
                };
                let step = Step {
                    at_ms: ev.at_ms,
                    kind: "override".into(),
                    data: serde_json::json!({
                        "label": label, "param": param, "action": action,
                        "actor": ev.data.get("actor"), "detail": detail,
                    }),
                };
                if let Err(e) = self.mem.append_steps(&l.key, &[step]) {
                    tracing::debug!(error = %e, "memory: override step not recorded");
                }
            }
            _ => {}
        }
    }

    async fn begin(&mut self, row: &ShowRow) {
        match self.try_begin(row).await {
            Ok(l) => {
                tracing::info!(show = %row.code, episode = %l.key, "memory: recording the show");
                self.live.insert(row.id, l);
            }
            Err(e) => {
                tracing::warn!(show = %row.code, error = %e, "memory: cannot record the show")
            }
        }
    }

    async fn try_begin(&self, row: &ShowRow) -> Result<LiveShow, String> {
        let version = self
            .store
            .spec_version(row.spec_version_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the show's spec version is missing")?;
        let spec = PieceSpec::from_json(&version.spec_json).map_err(|e| e.to_string())?;
        let piece = self
            .store
            .piece(row.piece_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the show's piece is missing")?;
        let subject = format!("show:{}", row.id);
        let earlier = self
            .store
            .memory_episodes_of(&subject)
            .await
            .map_err(|e| e.to_string())?;
        let key = match earlier.len() {
            0 => subject.clone(),
            n => format!("{subject}:{}", n + 1),
        };
        let dims = dims(&spec);
        let kind = match row.kind {
            ShowKind::Performance => "show",
            ShowKind::Rehearsal => "rehearsal",
        };
        let origin_ms = row.started_at_ms.unwrap_or_else(tutti_memory::now_ms);
        // A continued recording starts from now; a first one from the show's first snapshot.
        let after_tick = if earlier.is_empty() {
            None
        } else {
            self.store
                .latest_snapshot(row.id)
                .await
                .map_err(|e| e.to_string())?
                .map(|s| s.tick)
        };
        let ctx = Context {
            kind: kind.into(),
            piece: Some(piece.slug.clone()),
            spec_version: Some(version.version),
            ensemble_id: piece.ensemble_id,
            subject: Some(subject),
            venue: None,
            tags: vec![row.kind.as_str().into()],
            text: format!("{} — show {}", piece.title, row.code),
        };
        let start_ms = if earlier.is_empty() {
            origin_ms
        } else {
            tutti_memory::now_ms()
        };
        if !self.mem.is_recording(&key) {
            self.mem
                .start(Some(key.clone()), ctx, Some(dims.clone()), start_ms)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(LiveShow {
            code: row.code.clone(),
            key,
            kind: if kind == "show" { "show" } else { "rehearsal" },
            piece: piece.slug,
            spec: Arc::new(spec),
            dims,
            origin_ms,
            after_tick,
            last_moment_ms: i64::MIN,
            section: None,
            latest: None,
            last_suggest: None,
        })
    }

    /// Reads the new snapshots of every followed show; makes moments and section steps;
    /// computes suggestions.
    async fn poll(&mut self) {
        let ids: Vec<i64> = self.live.keys().copied().collect();
        for id in ids {
            self.read_snapshots(id).await;
            self.suggest(id);
        }
    }

    async fn read_snapshots(&mut self, id: i64) {
        loop {
            let Some(l) = self.live.get(&id) else { return };
            let rows = match self.store.snapshots(id, l.after_tick, 256).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "memory: cannot read snapshots");
                    return;
                }
            };
            let n = rows.len();
            let Some(l) = self.live.get_mut(&id) else {
                return;
            };
            let mut moments = Vec::new();
            let mut steps = Vec::new();
            for s in rows {
                l.after_tick = Some(s.tick);
                let Ok(state) = serde_json::from_str::<StateFrame>(&s.state_json) else {
                    continue;
                };
                let health = s
                    .health_json
                    .as_deref()
                    .and_then(|h| serde_json::from_str::<Health>(h).ok());
                let elapsed = (s.at_ms - l.origin_ms).max(0) as f64 / 1000.0;
                let v = vector(&l.spec, &state, health.as_ref(), elapsed);
                let section = state.params.get("section").and_then(|p| p.choice.clone());
                if section.is_some() && section != l.section {
                    if l.section.is_some() {
                        steps.push(Step {
                            at_ms: s.at_ms,
                            kind: "section".into(),
                            data: serde_json::json!({
                                "label": format!("section {}", section.as_deref().unwrap_or("")),
                                "from": l.section, "to": section,
                            }),
                        });
                    }
                    l.section = section.clone();
                }
                if s.at_ms.saturating_sub(l.last_moment_ms) >= self.every_ms {
                    l.last_moment_ms = s.at_ms;
                    moments.push(Moment {
                        at_ms: s.at_ms,
                        section,
                        vector: v.clone(),
                    });
                }
                l.latest = Some((v, elapsed));
            }
            if let Err(e) = self.mem.append_steps(&l.key, &steps) {
                tracing::debug!(error = %e, "memory: steps not recorded");
            }
            if let Err(e) = self.mem.append_moments(&l.key, &moments) {
                tracing::debug!(error = %e, "memory: moments not recorded");
            }
            if n < 256 {
                return;
            }
        }
    }

    fn suggest(&mut self, id: i64) {
        if !self.suggestions {
            return;
        }
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        let Some((v, elapsed)) = &l.latest else {
            return;
        };
        if l.last_suggest
            .is_some_and(|t| t.elapsed() < Duration::from_millis(950))
        {
            return;
        }
        l.last_suggest = Some(Instant::now());
        let suggestions = self.mem.suggest(&Now {
            kind: l.kind,
            piece: Some(&l.piece),
            dims: &l.dims,
            vector: v,
            elapsed_s: *elapsed as f32,
            episode_id: None,
            noun: "shows",
        });
        let past = {
            let ix = self.mem.index();
            ix.scope(l.kind, Some(&l.piece))
                .map_or(0, |s| ix.scopes[s as usize].docs.len() as u32)
        };
        self.mem.board().publish(
            &l.code,
            Entry {
                episode_id: None,
                episode_key: l.key.clone(),
                updated_ms: tutti_memory::now_ms(),
                elapsed_s: *elapsed as f32,
                past_episodes: past,
                suggestions,
                dismissed: Default::default(),
            },
        );
    }

    async fn finish(&mut self, id: i64) {
        if !self.live.contains_key(&id) {
            return;
        }
        self.read_snapshots(id).await;
        let Some(l) = self.live.remove(&id) else {
            return;
        };
        let ended = self
            .store
            .show(id)
            .await
            .ok()
            .flatten()
            .and_then(|r| r.ended_at_ms);
        match self.mem.complete(&l.key, Outcome::default(), ended).await {
            Ok(_) => {
                tracing::info!(show = %l.code, episode = %l.key, "memory: the show is an episode")
            }
            Err(e) => {
                tracing::warn!(show = %l.code, error = %e, "memory: cannot complete the show's episode")
            }
        }
        self.mem.board().remove(&l.code);
    }
}
