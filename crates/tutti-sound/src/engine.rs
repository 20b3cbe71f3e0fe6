//! The embedded audio engine as a show's sound: each tick's values become control updates
//! through the piece's mappings; levels and spectrum go to performers 30 times a second;
//! the output is offered as PCM chunks (the live crate streams them to listeners); a show
//! can be recorded.
//!
//! Must never: touch the audio thread except through the engine handle (lock-free), or
//! stop the show when the engine cannot start (the dashboard says why instead).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tutti_audio::{
    Engine, EngineConfig, EngineHandle, MonitorFrame, Output, OutputChoice, PieceControls,
    Recording,
};
use tutti_show::{Tick, TickSink};
use tutti_spec::PieceSpec;

use crate::sounds::{Clips, SoundName};

/// The embedded engine's settings.
#[derive(Debug, Clone, Default)]
pub struct EngineSettings {
    /// `auto` (the sound card, or the null sink when there is none), `soundcard` or `null`.
    pub output: String,
    /// Record every show to `<recordings>/<code>-<time>.wav`.
    pub record: bool,
    /// A chain file (TOML, as for `tutti dsp`) for the master chain instead of the default.
    pub chain: Option<PathBuf>,
}

/// The running engine of a show.
pub struct AudioOut {
    handle: EngineHandle,
    controls: PieceControls,
    output: Mutex<Option<Output>>,
    recording: Mutex<Option<Recording>>,
    /// Mapping targets the engine does not have (reported, skipped).
    pub unknown_targets: Vec<String>,
    kind: String,
    /// PCM chunks for listeners (bounded; a lagging listener skips chunks).
    pub pcm: broadcast::Sender<Bytes>,
    /// Tutti's own sounds, rendered at the engine's rate on first use.
    clips: Clips,
}

impl AudioOut {
    /// Start the engine and its output for a piece.
    pub fn start(
        spec: &PieceSpec,
        cfg: &EngineSettings,
        recordings: &Path,
        show_code: &str,
    ) -> Result<AudioOut, String> {
        let mut engine_cfg = EngineConfig::default();
        if let Some(chain) = &cfg.chain {
            let text = std::fs::read_to_string(chain)
                .map_err(|e| format!("audio.chain {}: {e}", chain.display()))?;
            let chain_cfg: tutti_audio::tutti_dsp::ChainConfig = toml::from_str(&text)
                .map_err(|e| format!("audio.chain {}: {e}", chain.display()))?;
            engine_cfg.master.chain = chain_cfg;
            engine_cfg.master.base_dir = chain.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        let (handle, core) = Engine::new(engine_cfg).map_err(|e| e.to_string())?;
        let (controls, unknown_targets) = PieceControls::new_lenient(spec);
        if !unknown_targets.is_empty() {
            tracing::warn!(targets = ?unknown_targets, "mappings the embedded engine does not have are skipped");
        }
        let choice = match cfg.output.as_str() {
            "soundcard" => OutputChoice::SoundCard,
            "null" => OutputChoice::Null,
            _ => OutputChoice::Auto,
        };
        let output = Output::start(core, choice).map_err(|e| e.to_string())?;
        let kind = format!("{:?}", output.kind()).to_lowercase();
        tracing::info!(output = %kind, "embedded audio engine running");
        let recording = if cfg.record {
            std::fs::create_dir_all(recordings)
                .map_err(|e| format!("creating {}: {e}", recordings.display()))?;
            let path = recordings.join(format!("{show_code}-{}.wav", tutti_show::unix_ms() / 1000));
            let r = handle.start_recording(&path).map_err(|e| e.to_string())?;
            tracing::info!(path = %path.display(), "recording the show");
            Some(r)
        } else {
            None
        };
        Ok(AudioOut {
            clips: Clips::new(handle.sample_rate()),
            handle,
            controls,
            output: Mutex::new(Some(output)),
            recording: Mutex::new(recording),
            unknown_targets,
            kind,
            pcm: broadcast::channel(32).0,
        })
    }

    /// Apply values (in spec order). Never blocks.
    pub fn apply(&self, values: &[f64]) {
        if let Err(e) = self.controls.apply(&self.handle, values) {
            tracing::debug!(error = %e, "engine control update refused");
        }
    }

    /// Plays one of Tutti's sounds once on the engine's `player` voice (after fading out
    /// what it plays), its clip rendered on the first call (call off the audio thread; it may
    /// take a few milliseconds). A full command queue is an error; nothing waits.
    pub fn play_sound(&self, name: SoundName) -> Result<(), String> {
        self.handle
            .play_clip(self.clips.get(name), false)
            .map_err(|e| e.to_string())
    }

    /// The engine's output, for whoever records or analyses it (a tap reader).
    pub fn stream_tap(&self) -> Result<tutti_audio::StreamReader, String> {
        self.handle.stream_tap().map_err(|e| e.to_string())
    }

    /// Output level: RMS dBFS of the louder channel in the latest monitor frame.
    pub fn level_dbfs(&self) -> Option<f32> {
        self.handle
            .latest_monitor()
            .map(|m| m.rms_dbfs[0].max(m.rms_dbfs[1]))
            .filter(|l| l.is_finite())
    }

    /// The value an engine control is set to (e.g. `drone.amp`).
    pub fn control(&self, name: &str) -> Option<f32> {
        let id = self.handle.control_id(name).ok()?;
        Some(self.handle.get(id))
    }

    /// State for the dashboard.
    pub fn status(&self) -> serde_json::Value {
        let st = self.handle.stats();
        serde_json::json!({
            "backend": "engine",
            "state": "playing",
            "output": self.kind,
            "unknown_targets": self.unknown_targets,
            "recording": self.recording.lock().map(|r| r.is_some()).unwrap_or(false),
            "blocks": st.blocks,
            "non_finite_samples": st.non_finite_samples,
            "swaps": st.swaps,
        })
    }

    /// Stop recording and the output.
    pub fn stop(&self) {
        if let Some(r) = self
            .recording
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            match r.stop() {
                Ok(s) => tracing::info!(
                    frames = s.frames,
                    dropped = s.dropped_blocks,
                    "recording closed"
                ),
                Err(e) => tracing::error!(error = %e, "recording could not be closed"),
            }
        }
        if let Some(o) = self.output.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = o.stop();
        }
    }

    /// Performers' `monitor` frames (30 Hz) and the PCM stream for listeners, until shutdown.
    pub async fn run_taps(
        self: Arc<Self>,
        monitor_tx: watch::Sender<Arc<str>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut reader = self.handle.stream_tap().ok();
        let mut buf = Vec::with_capacity(48_000 * 4 / 10);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if let Some(frame) = self.handle.latest_monitor() {
                if let Some(text) = monitor_json(&frame) {
                    monitor_tx.send_replace(Arc::from(text));
                }
            }
            if let Some(r) = reader.as_mut() {
                buf.clear();
                let frames = r.read_pcm(&mut buf, 4800);
                if frames > 0 && self.pcm.receiver_count() > 0 {
                    let _ = self.pcm.send(Bytes::copy_from_slice(&buf));
                }
            }
        }
        self.stop();
    }

    /// The PCM format of the listen stream.
    pub fn format_frame(&self) -> String {
        serde_json::json!({"type": "audio_format", "sample_rate": 48_000, "channels": 2, "encoding": "s16le"})
            .to_string()
    }
}

/// The `monitor` frame: the engine's frame with its `type`. Serialised directly, so its
/// numbers are written as the shortest text of their `f32` (going through a JSON value
/// would widen them to `f64` and write `22.279476165771484` for `22.279476`).
fn monitor_json(frame: &MonitorFrame) -> Option<String> {
    let body = serde_json::to_string(frame).ok()?;
    Some(format!(
        "{{\"type\":\"monitor\",{}",
        body.strip_prefix('{')?
    ))
}

impl TickSink for AudioOut {
    fn on_tick(&self, tick: &Tick<'_>) {
        self.apply(tick.values);
    }

    fn health(&self, health: &mut tutti_report::Health) {
        health.level_dbfs = self.level_dbfs();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_audio::monitor::BANDS;

    #[test]
    fn monitor_frames_carry_their_type_and_short_numbers() {
        let frame = MonitorFrame {
            seq: 7,
            time_s: 1.5,
            peak: [0.1, 0.2],
            rms: [0.05, 0.06],
            peak_dbfs: [-20.0, -14.0],
            rms_dbfs: [-26.0, -24.4],
            bands_dbfs: [-120.0; BANDS],
            bands_hz: [22.279_476; BANDS],
        };
        let text = monitor_json(&frame).unwrap();
        assert!(text.starts_with(r#"{"type":"monitor","seq":7,"#), "{text}");
        assert!(text.contains(r#""bands_hz":[22.279476,"#), "{text}");
        assert!(text.contains(r#""peak":[0.1,0.2]"#), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rms_dbfs"][1], -24.4);
    }
}
