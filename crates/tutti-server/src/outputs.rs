//! Where each tick's values go besides the phones: OSC bundles to the configured UDP
//! targets (and, as they land, the embedded audio engine and SuperCollider).
//!
//! Must never: block or await; a failing target is counted, never waited for.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tutti_osc::OscSender;
use tutti_spec::PieceSpec;

use crate::ServerError;

/// The OSC plan of one piece: address and output range per parameter.
struct OscPlan {
    addresses: Vec<String>,
}

/// Per-show outputs, driven by the ticker.
pub struct Outputs {
    osc: OscSender,
    plan: OscPlan,
    latency: Duration,
    buf: Mutex<Vec<u8>>,
    /// The SuperCollider output, once it has started.
    sc: Arc<OnceLock<tutti_supercollider::ScOutput>>,
    /// Why SuperCollider is not running yet (shown on the dashboard).
    sc_problem: Arc<Mutex<Option<String>>>,
    sound: crate::config::SoundBackend,
    /// The embedded engine, when it is the sound.
    audio: Option<Arc<crate::audio::AudioOut>>,
    /// Why the embedded engine is not running, if it is the chosen sound.
    audio_problem: Option<String>,
}

impl Outputs {
    /// Prepare the outputs of a piece.
    pub fn new(
        spec: &PieceSpec,
        targets: &[std::net::SocketAddr],
        latency: Duration,
    ) -> Result<Outputs, ServerError> {
        let osc = OscSender::new(targets.iter().copied())
            .map_err(|e| ServerError::Osc(format!("osc.targets: {e}")))?;
        let addresses = spec.params.iter().map(|p| p.osc_target().0).collect();
        Ok(Outputs {
            osc,
            plan: OscPlan { addresses },
            latency,
            buf: Mutex::new(Vec::with_capacity(512)),
            sc: Arc::new(OnceLock::new()),
            sc_problem: Arc::new(Mutex::new(None)),
            sound: crate::config::SoundBackend::None,
            audio: None,
            audio_problem: None,
        })
    }

    /// Start driving scsynth in the background: until it answers, the show runs and the
    /// dashboard says why there is no sound; once started, its own supervisor recovers
    /// from restarts. Configuration errors (a mapping to a missing control, a bad address)
    /// are reported the same way and never stop the show or the other outputs.
    pub fn start_supercollider(
        &mut self,
        cfg: &crate::config::SuperColliderConfig,
        spec: Arc<PieceSpec>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        self.sound = crate::config::SoundBackend::Supercollider;
        let sc_cfg = tutti_supercollider::ScConfig {
            server: cfg.server.clone(),
            transport: if cfg.transport == "tcp" {
                tutti_supercollider::Transport::Tcp
            } else {
                tutti_supercollider::Transport::Udp
            },
            latency: Duration::from_millis(u64::from(cfg.latency_ms)),
            ..Default::default()
        };
        let slot = self.sc.clone();
        let problem = self.sc_problem.clone();
        *problem.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(format!("connecting to scsynth at {}", cfg.server));
        tokio::spawn(async move {
            loop {
                let attempt = tutti_supercollider::ScOutput::start(sc_cfg.clone(), &spec);
                let result = tokio::select! {
                    r = attempt => r,
                    _ = shutdown.changed() => return,
                };
                match result {
                    Ok(out) => {
                        tracing::info!(server = %sc_cfg.server, "SuperCollider is playing the piece");
                        *problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        let _ = slot.set(out);
                        break;
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        let mut p = problem.lock().unwrap_or_else(|p| p.into_inner());
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
        })
    }

    /// Start the embedded engine; a failure is reported on the dashboard, not fatal.
    pub fn start_engine(
        &mut self,
        spec: &PieceSpec,
        cfg: &crate::config::AudioConfig,
        recordings: &std::path::Path,
        code: &str,
    ) -> Option<Arc<crate::audio::AudioOut>> {
        self.sound = crate::config::SoundBackend::Engine;
        match crate::audio::AudioOut::start(spec, cfg, recordings, code) {
            Ok(a) => {
                let a = Arc::new(a);
                self.audio = Some(a.clone());
                Some(a)
            }
            Err(e) => {
                tracing::error!(error = %e, "the embedded audio engine did not start; the show runs without it");
                self.audio_problem = Some(e);
                None
            }
        }
    }

    /// The sound backend's state for the dashboard.
    pub fn sound_status(&self) -> serde_json::Value {
        match self.sound {
            crate::config::SoundBackend::Supercollider => match self.sc.get() {
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
                    "error": self.sc_problem.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                }),
            },
            crate::config::SoundBackend::Engine => match &self.audio {
                Some(a) => a.status(),
                None => serde_json::json!({
                    "backend": "engine",
                    "state": "not started",
                    "error": self.audio_problem,
                }),
            },
            crate::config::SoundBackend::None => serde_json::json!({"backend": "none"}),
        }
    }

    /// Send one tick's values (in spec order).
    pub fn on_tick(&self, spec: &PieceSpec, values: &[f64]) {
        if let Some(sc) = self.sc.get() {
            sc.update(values);
        }
        if let Some(a) = &self.audio {
            a.on_tick(values);
        }
        if self.osc.targets().next().is_some() {
            let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
            let msgs = self
                .plan
                .addresses
                .iter()
                .zip(spec.params.iter().zip(values))
                .map(|(addr, (p, v))| (addr.as_str(), p.osc_value(*v) as f32));
            match tutti_osc::encode_bundle(SystemTime::now() + self.latency, msgs, &mut buf) {
                Ok(()) => self.osc.send(&buf),
                Err(e) => tracing::warn!(error = %e, "could not encode the OSC bundle"),
            }
        }
    }

    /// The embedded engine's output level (RMS dBFS of the louder channel over its latest
    /// monitor window, about 33 ms), when it is the sound. Lock-free.
    pub fn level_dbfs(&self) -> Option<f32> {
        self.audio.as_ref().and_then(|a| a.level_dbfs())
    }

    /// OSC sender counters: (packets sent, send errors).
    pub fn osc_stats(&self) -> (u64, u64) {
        let s = self.osc.stats();
        (
            s.targets.iter().map(|t| t.packets_sent).sum(),
            s.total_errors(),
        )
    }
}
