//! The engine's benchmark figures (behind `tutti bench audio` and `cargo bench`): the demo
//! voices through the full master chain as a fraction of one core in real time, and the
//! input-to-output latency.
//!
//! The voices are driven hard — the `storm` pattern, 60 grains/s, wide detune — so the
//! figure is a busy show, not an idle one. CPU time is the calling thread's
//! (`cpu-time`), so the figure is single-core.
//!
//! Must never: run on the audio thread (it measures one, on the calling thread).

use cpu_time::ThreadTime;
use serde::Serialize;

use crate::engine::{Engine, EngineConfig, Latency};
use crate::AudioError;

/// Result of [`bench_engine`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineBench {
    /// Frames per block.
    pub block_frames: usize,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Seconds of audio rendered.
    pub audio_seconds: f64,
    /// CPU seconds the rendering thread used.
    pub cpu_seconds: f64,
    /// CPU time per block ÷ block duration (0.05 = 5 % of one core).
    pub cpu_fraction: f64,
    /// Seconds of audio per CPU second (1 / `cpu_fraction`).
    pub realtime_factor: f64,
    /// Slowest single block (wall clock) ÷ block duration.
    pub worst_block_fraction: f64,
    /// Input-to-output latency.
    pub latency: Latency,
}

/// The busy-show control values used by the benchmark.
pub fn busy_show() -> Vec<(String, f32)> {
    [
        ("drone.amp", 0.5),
        ("drone.freq", 110.0),
        ("drone.cutoff", 3000.0),
        ("drone.detune", 0.015),
        ("granular.amp", 0.4),
        ("granular.density", 60.0),
        ("granular.pitch", 1.5),
        ("granular.spread", 1.0),
        ("rhythm.amp", 0.5),
        ("rhythm.tempo", 170.0),
        ("rhythm.pattern", 2.0),
        ("rhythm.tone", 0.8),
        ("master.reverb_mix", 0.4),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect()
}

/// Renders `seconds` of a busy show with `config` (its `initial` values are replaced by
/// [`busy_show`]) and measures CPU time.
pub fn bench_engine(config: &EngineConfig, seconds: f64) -> Result<EngineBench, AudioError> {
    let mut cfg = config.clone();
    cfg.initial = busy_show();
    let (handle, mut core) = Engine::new(cfg)?;
    let block = handle.block_frames();
    let sr = handle.sample_rate();
    let blocks = ((seconds * sr as f64) / block as f64).ceil().max(1.0) as usize;
    let mut l = vec![0.0f32; block];
    let mut r = vec![0.0f32; block];
    // Warm up (fill caches, settle envelopes) for half a second.
    for _ in 0..(sr as usize / 2 / block).max(1) {
        core.process(&mut l, &mut r);
    }
    let block_s = block as f64 / sr as f64;
    let mut worst = 0.0f64;
    let start = ThreadTime::now();
    for _ in 0..blocks {
        let t = std::time::Instant::now();
        core.process(&mut l, &mut r);
        worst = worst.max(t.elapsed().as_secs_f64());
    }
    let cpu = start.elapsed().as_secs_f64();
    let audio = blocks as f64 * block_s;
    let fraction = cpu / audio;
    Ok(EngineBench {
        block_frames: block,
        sample_rate: sr,
        audio_seconds: audio,
        cpu_seconds: cpu,
        cpu_fraction: fraction,
        realtime_factor: if fraction > 0.0 {
            1.0 / fraction
        } else {
            f64::INFINITY
        },
        worst_block_fraction: worst / block_s,
        latency: handle.latency(),
    })
}
