//! A show's outputs besides the phones, each a consumer of ticks: OSC bundles to the
//! configured UDP targets ([`OscOut`]), SuperCollider ([`ScOut`], started in the
//! background and retried until scsynth answers), and the embedded engine
//! ([`crate::AudioOut`]). [`Outputs`] holds a show's set and its sound status.
//!
//! Must never: block or await on the tick; a failing target is counted, never waited for.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tutti_osc::OscSender;
use tutti_show::{Tick, TickSink};
use tutti_spec::PieceSpec;

use crate::engine::{AudioOut, EngineSettings};
use crate::sounds::{self, SoundName};
use crate::{SoundBackend, SoundError};

/// One OSC bundle per tick to every configured target: each parameter at its address,
/// scaled to its output range.
pub struct OscOut {
    osc: OscSender,
    addresses: Vec<String>,
    latency: Duration,
    /// The encode buffer (used by the tick thread only; the lock is never contended).
    buf: Mutex<Vec<u8>>,
}

impl OscOut {
    /// Prepare the bundles of a piece for `targets`, scheduled `latency` ahead.
    pub fn new(
        spec: &PieceSpec,
        targets: &[std::net::SocketAddr],
        latency: Duration,
    ) -> Result<OscOut, SoundError> {
        let osc = OscSender::new(targets.iter().copied())
            .map_err(|e| SoundError::OscTargets(e.to_string()))?;
        Ok(OscOut {
            osc,
            addresses: spec.params.iter().map(|p| p.osc_target().0).collect(),
            latency,
            buf: Mutex::new(Vec::with_capacity(512)),
        })
    }

    /// Tells every target that a sound plays now: `/tutti/sound s:NAME` (one message, not a
    /// bundle). Never blocks; failures are counted like the bundles'.
    /// Whether there was a target to tell.
    pub fn play_sound(&self, name: SoundName) -> bool {
        if self.osc.targets().next().is_none() {
            return false;
        }
        self.osc.send(&sounds::osc_message(name));
        true
    }

    /// Sender counters: (packets sent, send errors).
    pub fn stats(&self) -> (u64, u64) {
        let s = self.osc.stats();
        (
            s.targets.iter().map(|t| t.packets_sent).sum(),
            s.total_errors(),
        )
    }
}

impl TickSink for OscOut {
    fn on_tick(&self, tick: &Tick<'_>) {
        if self.osc.targets().next().is_none() {
            return;
        }
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let msgs = self
            .addresses
            .iter()
            .zip(tick.spec.params.iter().zip(tick.values))
            .map(|(addr, (p, v))| (addr.as_str(), p.osc_value(*v) as f32));
        match tutti_osc::encode_bundle(SystemTime::now() + self.latency, msgs, &mut buf) {
            Ok(()) => self.osc.send(&buf),
            Err(e) => tracing::warn!(error = %e, "could not encode the OSC bundle"),
        }
    }
}

/// How to reach scsynth.
#[derive(Debug, Clone)]
pub struct ScSettings {
    /// `host:port`.
    pub server: String,
    /// TCP instead of UDP.
    pub tcp: bool,
    /// How far ahead parameter bundles are scheduled.
    pub latency: Duration,
}

/// SuperCollider playing the piece, once it has started.
#[derive(Default)]
pub struct ScOut {
    sc: OnceLock<tutti_supercollider::ScOutput>,
    /// Why SuperCollider is not running yet (shown on the dashboard).
    problem: Mutex<Option<String>>,
    /// Tutti's sounds rendered for scsynth, by sound and the server's rate.
    sounds: Mutex<ScSounds>,
}

/// Sounds rendered for scsynth, by sound and sample rate.
type ScSounds = std::collections::HashMap<(SoundName, u32), Arc<[f32]>>;

impl TickSink for ScOut {
    fn on_tick(&self, tick: &Tick<'_>) {
        if let Some(sc) = self.sc.get() {
            sc.update(tick.values);
        }
    }
}

impl ScOut {
    /// Start driving scsynth in the background: until it answers, the show runs and the
    /// dashboard says why there is no sound; once started, its own supervisor recovers
    /// from restarts. Configuration errors (a mapping to a missing control, a bad address)
    /// are reported the same way and never stop the show or the other outputs.
    pub fn start(
        settings: &ScSettings,
        spec: Arc<PieceSpec>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> (Arc<ScOut>, tokio::task::JoinHandle<()>) {
        let sc_cfg = tutti_supercollider::ScConfig {
            server: settings.server.clone(),
            transport: if settings.tcp {
                tutti_supercollider::Transport::Tcp
            } else {
                tutti_supercollider::Transport::Udp
            },
            latency: settings.latency,
            ..Default::default()
        };
        let out = Arc::new(ScOut {
            sc: OnceLock::new(),
            problem: Mutex::new(Some(format!(
                "connecting to scsynth at {}",
                settings.server
            ))),
            sounds: Mutex::default(),
        });
        let me = out.clone();
        let task = tokio::spawn(async move {
            loop {
                let attempt = tutti_supercollider::ScOutput::start(sc_cfg.clone(), &spec);
                let result = tokio::select! {
                    r = attempt => r,
                    _ = shutdown.changed() => return,
                };
                match result {
                    Ok(sc) => {
                        tracing::info!(server = %sc_cfg.server, "SuperCollider is playing the piece");
                        *me.problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        let _ = me.sc.set(sc);
                        break;
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        let mut p = me.problem.lock().unwrap_or_else(|p| p.into_inner());
                        if p.as_deref() != Some(msg.as_str()) {
                            tracing::error!(error = %msg, "SuperCollider is not playing; retrying");
                        }
                        *p = Some(msg);
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.changed() => return,
                }
            }
            let _ = shutdown.changed().await;
            // The output stops (frees its nodes) when dropped with the show.
        });
        (out, task)
    }

    /// Plays one of Tutti's sounds on scsynth, once it plays the piece: rendered at the
    /// server's rate (once per sound), loaded into a buffer the first time, and started with
    /// the `tutti_clip` SynthDef at the head of the show's group. Whether it was queued.
    pub fn play_sound(&self, name: SoundName) -> bool {
        let Some(sc) = self.sc.get() else {
            return false;
        };
        let rate = sc.sample_rate().map_or(48_000, |r| r.round() as u32);
        let samples = {
            let mut done = self.sounds.lock().unwrap_or_else(|p| p.into_inner());
            done.entry((name, rate))
                .or_insert_with(|| Arc::from(sounds::render_mono(name, rate)))
                .clone()
        };
        sc.play_clip(name.slot(), samples)
    }

    /// The dashboard's view of it.
    pub fn status(&self) -> serde_json::Value {
        match self.sc.get() {
            Some(sc) => {
                let h = sc.health();
                serde_json::json!({
                    "backend": "supercollider",
                    "server": h.server,
                    "state": format!("{:?}", h.state).to_lowercase(),
                    "error": h.last_error,
                    "recoveries": h.recoveries,
                })
            }
            None => serde_json::json!({
                "backend": "supercollider",
                "state": "not started",
                "error": self.problem.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            }),
        }
    }
}

/// A show's outputs: OSC always (it may have no targets), and the chosen sound.
pub struct Outputs {
    osc: Arc<OscOut>,
    sound: SoundBackend,
    sc: Option<Arc<ScOut>>,
    engine: Option<Arc<AudioOut>>,
    /// Why the embedded engine is not running, if it is the chosen sound.
    engine_problem: Option<String>,
}

impl Outputs {
    /// Prepare the OSC output of a piece; no sound yet.
    pub fn new(
        spec: &PieceSpec,
        targets: &[std::net::SocketAddr],
        latency: Duration,
    ) -> Result<Outputs, SoundError> {
        Ok(Outputs {
            osc: Arc::new(OscOut::new(spec, targets, latency)?),
            sound: SoundBackend::None,
            sc: None,
            engine: None,
            engine_problem: None,
        })
    }

    /// Make SuperCollider the sound (started in the background; see [`ScOut::start`]).
    pub fn start_supercollider(
        &mut self,
        settings: &ScSettings,
        spec: Arc<PieceSpec>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        self.sound = SoundBackend::Supercollider;
        let (sc, task) = ScOut::start(settings, spec, shutdown);
        self.sc = Some(sc);
        task
    }

    /// Make the embedded engine the sound; a failure is reported on the dashboard, not fatal.
    pub fn start_engine(
        &mut self,
        spec: &PieceSpec,
        settings: &EngineSettings,
        recordings: &std::path::Path,
        code: &str,
    ) -> Option<Arc<AudioOut>> {
        self.sound = SoundBackend::Engine;
        match AudioOut::start(spec, settings, recordings, code) {
            Ok(a) => {
                let a = Arc::new(a);
                self.engine = Some(a.clone());
                Some(a)
            }
            Err(e) => {
                tracing::error!(error = %e, "the embedded audio engine did not start; the show runs without it");
                self.engine_problem = Some(e);
                None
            }
        }
    }

    /// The consumers of the show's ticks: the sound (if any) and OSC.
    pub fn sinks(&self) -> Vec<Arc<dyn TickSink>> {
        let mut sinks: Vec<Arc<dyn TickSink>> = Vec::with_capacity(3);
        if let Some(sc) = &self.sc {
            sinks.push(sc.clone());
        }
        if let Some(a) = &self.engine {
            sinks.push(a.clone());
        }
        sinks.push(self.osc.clone());
        sinks
    }

    /// The sound backend's state for the dashboard.
    pub fn sound_status(&self) -> serde_json::Value {
        match self.sound {
            SoundBackend::Supercollider => self.sc.as_ref().map_or_else(
                || serde_json::json!({"backend": "supercollider"}),
                |s| s.status(),
            ),
            SoundBackend::Engine => match &self.engine {
                Some(a) => a.status(),
                None => serde_json::json!({
                    "backend": "engine",
                    "state": "not started",
                    "error": self.engine_problem,
                }),
            },
            SoundBackend::None => serde_json::json!({"backend": "none"}),
        }
    }

    /// OSC sender counters: (packets sent, send errors).
    pub fn osc_stats(&self) -> (u64, u64) {
        self.osc.stats()
    }

    /// Plays one of Tutti's own sounds through the show's sound now: announced to the OSC
    /// targets (`/tutti/sound s:NAME`), and played by the embedded engine or by scsynth when
    /// either is the show's sound and running. Where it went (`osc`, `engine`,
    /// `supercollider`); a sound that could not play on one is logged, never an error for the
    /// others. Call it off the audio thread and outside the tick: the first play of a sound
    /// renders it (a few milliseconds).
    pub fn play_sound(&self, name: SoundName) -> Vec<&'static str> {
        let mut went = Vec::with_capacity(2);
        if self.osc.play_sound(name) {
            went.push("osc");
        }
        if let Some(engine) = &self.engine {
            match engine.play_sound(name) {
                Ok(()) => went.push("engine"),
                Err(e) => {
                    tracing::warn!(sound = %name, error = %e, "the engine did not play a sound")
                }
            }
        }
        if let Some(sc) = &self.sc {
            if sc.play_sound(name) {
                went.push("supercollider");
            }
        }
        went
    }

    /// The embedded engine, when it is the show's sound and running.
    pub fn engine(&self) -> Option<&Arc<AudioOut>> {
        self.engine.as_ref()
    }
}
