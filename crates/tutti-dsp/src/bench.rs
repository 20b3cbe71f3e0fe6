//! The audio benchmark behind `tutti bench audio` and `cargo bench`: seconds of stereo 48 kHz
//! audio processed per CPU second, single thread, on the chains measured for CamillaDSP in
//! `shared/reference/peers.md`.
//!
//! CPU time is the calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID` through the `cpu-time`
//! crate), not wall time, because the machine is shared. Each case processes a warm-up second
//! first (not counted). This module runs on an ordinary thread; it is not part of the real-time
//! path.

use std::time::Duration;

use crate::config::{
    BandConfig, CompressorConfig, ConvolutionMode, FilterType, LimiterConfig, ReverbConfig,
};
use crate::convolution::{Convolver, Partitioning};
use crate::dynamics::{Compressor, Limiter};
use crate::eq::Eq;
use crate::reverb::Reverb;
use crate::{Chain, Processor, Stage};

/// Sample rate of every benchmark case.
pub const SAMPLE_RATE: u32 = 48_000;

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Seconds of audio per case (after one warm-up second).
    pub audio_seconds: f64,
    /// Only cases whose name contains this string.
    pub filter: Option<String>,
    /// Measurements per case; the median CPU time is reported (the machine is shared, so single
    /// runs are noisy).
    pub repeats: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            audio_seconds: 10.0,
            filter: None,
            repeats: 3,
        }
    }
}

/// One measured case.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Case name, e.g. `biquad_512`.
    pub name: String,
    /// Block size in frames.
    pub block: usize,
    /// Seconds of stereo audio processed (excluding warm-up).
    pub audio_seconds: f64,
    /// Thread CPU seconds spent.
    pub cpu_seconds: f64,
    /// `audio_seconds / cpu_seconds`: how many times faster than real time.
    pub realtime_factor: f64,
    /// Fraction of one core needed in real time (`1 / realtime_factor`).
    pub core_fraction: f64,
    /// Largest thread CPU time of a single block, in microseconds (the real-time spike).
    pub worst_block_us: f64,
    /// Real-time budget of one block (`block / 48 kHz`), in microseconds.
    pub block_budget_us: f64,
    /// Latency the chain adds, in frames.
    pub latency_frames: usize,
    /// Extra information (e.g. partitioning).
    pub detail: String,
}

/// Peaking bands of the benchmark: log-spaced 20 Hz – 20 kHz, gains alternating ±1 dB, Q 4.
pub fn benchmark_bands(count: usize) -> Vec<BandConfig> {
    crate::config::GraphicConfig {
        count,
        from: 20.0,
        to: 20_000.0,
        gains_db: vec![1.0, -1.0],
        q: 4.0,
        filter: FilterType::Peaking,
    }
    .bands()
}

/// Deterministic xorshift noise in −1 … 1.
pub fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A synthetic room-like IR: exponentially decaying noise (−60 dB over its length).
pub fn synthetic_ir(taps: usize, seed: u64) -> Vec<f32> {
    let n = noise(taps, seed);
    let k = (1e-3f64).ln() / taps.max(1) as f64;
    n.iter()
        .enumerate()
        .map(|(i, v)| v * ((k * i as f64).exp() as f32) * 0.1)
        .collect()
}

/// A named case: builds its processor and gives its block size.
pub struct Case {
    /// Name.
    pub name: &'static str,
    /// Block size.
    pub block: usize,
    build: fn() -> (Chain, String),
}

impl Case {
    /// Builds the case's chain and a description of it.
    pub fn build(&self) -> (Chain, String) {
        (self.build)()
    }
}

fn chain_of(block: usize, stages: Vec<Stage>) -> Chain {
    Chain::from_stages(
        SAMPLE_RATE,
        block,
        stages.into_iter().map(|s| (None, s)).collect(),
    )
}

fn eq_case(bands: usize, block: usize) -> (Chain, String) {
    let eq = Eq::new(&benchmark_bands(bands), SAMPLE_RATE as f64, 960);
    (
        chain_of(block, vec![Stage::Eq(eq)]),
        format!("{bands} peaking bands"),
    )
}

fn fir_case(taps: usize, block: usize, mode: ConvolutionMode) -> (Chain, String) {
    let ir = vec![synthetic_ir(taps, 1), synthetic_ir(taps, 2)];
    let part = Partitioning::for_block(mode, block);
    let conv = Convolver::new(&ir, part, 1.0).expect("valid benchmark IR");
    let detail = format!("stereo IR, segments (size x count) {:?}", conv.segments());
    (
        chain_of(block, vec![Stage::Convolution(Box::new(conv))]),
        detail,
    )
}

fn master_case(block: usize) -> (Chain, String) {
    let fs = SAMPLE_RATE as f64;
    let eq = Eq::new(&benchmark_bands(10), fs, 960);
    let comp = Compressor::new(
        &CompressorConfig {
            name: None,
            threshold_db: -18.0,
            ratio: 3.0,
            knee_db: 6.0,
            attack_ms: 5.0,
            release_ms: 120.0,
            makeup_db: 3.0,
        },
        fs,
        960,
    );
    let rev = Reverb::new(
        &ReverbConfig {
            name: None,
            size: 0.7,
            decay_s: 2.5,
            damping: 0.4,
            mix: 0.2,
        },
        fs,
        960,
    );
    let ir = vec![synthetic_ir(96_000, 3), synthetic_ir(96_000, 4)];
    let conv = Convolver::new(
        &ir,
        Partitioning::for_block(ConvolutionMode::LowLatency, block),
        1.0,
    )
    .expect("valid benchmark IR");
    let lim = Limiter::new(
        &LimiterConfig {
            name: None,
            ceiling_db: -1.0,
            lookahead_ms: 2.0,
            release_ms: 60.0,
        },
        fs,
        960,
    );
    let chain = chain_of(
        block,
        vec![
            Stage::Eq(eq),
            Stage::Compressor(comp),
            Stage::Reverb(Box::new(rev)),
            Stage::Convolution(Box::new(conv)),
            Stage::Limiter(lim),
        ],
    );
    (
        chain,
        "eq(10) > compressor > reverb > convolution(2 s, low latency) > limiter".into(),
    )
}

/// All benchmark cases, in report order.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "passthrough",
            block: 1024,
            build: || (chain_of(1024, vec![]), "empty chain".into()),
        },
        Case {
            name: "biquad_10",
            block: 1024,
            build: || eq_case(10, 1024),
        },
        Case {
            name: "biquad_512",
            block: 1024,
            build: || eq_case(512, 1024),
        },
        Case {
            name: "fir_65536_uniform",
            block: 1024,
            build: || fir_case(65_536, 1024, ConvolutionMode::Uniform),
        },
        Case {
            name: "fir_65536_low_latency",
            block: 1024,
            build: || fir_case(65_536, 1024, ConvolutionMode::LowLatency),
        },
        Case {
            name: "fir_262144_uniform",
            block: 1024,
            build: || fir_case(262_144, 1024, ConvolutionMode::Uniform),
        },
        Case {
            name: "fir_262144_low_latency",
            block: 1024,
            build: || fir_case(262_144, 1024, ConvolutionMode::LowLatency),
        },
        Case {
            name: "fir_262144_low_latency_b256",
            block: 256,
            build: || fir_case(262_144, 256, ConvolutionMode::LowLatency),
        },
        Case {
            name: "fir_262144_uniform_b256",
            block: 256,
            build: || fir_case(262_144, 256, ConvolutionMode::Uniform),
        },
        Case {
            name: "master_chain_b256",
            block: 256,
            build: || master_case(256),
        },
    ]
}

/// Thread CPU time spent processing `seconds` of noise through `p` in blocks of `block`.
pub fn measure<P: Processor + ?Sized>(p: &mut P, block: usize, seconds: f64) -> Duration {
    measure_detailed(p, block, seconds, false).0
}

/// Like [`measure`], also returning the largest CPU time of one block when `per_block` is set
/// (which adds one clock read per block).
pub fn measure_detailed<P: Processor + ?Sized>(
    p: &mut P,
    block: usize,
    seconds: f64,
    per_block: bool,
) -> (Duration, Duration) {
    let fs = SAMPLE_RATE as usize;
    let src_l = noise(fs, 11);
    let src_r = noise(fs, 12);
    let mut l = vec![0.0f32; block];
    let mut r = vec![0.0f32; block];
    let mut worst = Duration::ZERO;
    let mut run = |p: &mut P, frames: usize, worst: &mut Duration, per_block: bool| {
        let mut pos = 0usize;
        let mut done = 0usize;
        while done < frames {
            if pos + block > fs {
                pos = 0;
            }
            l.copy_from_slice(&src_l[pos..pos + block]);
            r.copy_from_slice(&src_r[pos..pos + block]);
            if per_block {
                let t = cpu_time::ThreadTime::now();
                p.process(&mut l, &mut r);
                *worst = (*worst).max(t.elapsed());
            } else {
                p.process(&mut l, &mut r);
            }
            std::hint::black_box((&l, &r));
            pos += block;
            done += block;
        }
    };
    let mut unused = Duration::ZERO;
    run(p, fs, &mut unused, false); // warm-up second
    let t0 = cpu_time::ThreadTime::now();
    run(p, (seconds * fs as f64) as usize, &mut worst, per_block);
    (t0.elapsed(), worst)
}

/// Runs the benchmark cases selected by `opts`.
pub fn run(opts: &BenchOptions) -> Vec<BenchResult> {
    let mut out = Vec::new();
    for case in cases() {
        if let Some(f) = &opts.filter {
            if !case.name.contains(f.as_str()) {
                continue;
            }
        }
        let (mut chain, detail) = (case.build)();
        let frames =
            ((opts.audio_seconds * SAMPLE_RATE as f64) as usize).div_ceil(case.block) * case.block;
        let audio = frames as f64 / SAMPLE_RATE as f64;
        let cpu = measure(&mut chain, case.block, audio)
            .as_secs_f64()
            .max(1e-9);
        // a second, shorter pass with per-block timing for the worst-case spike
        let (_, worst) = measure_detailed(&mut chain, case.block, audio.min(5.0), true);
        out.push(BenchResult {
            name: case.name.to_string(),
            block: case.block,
            audio_seconds: audio,
            cpu_seconds: cpu,
            realtime_factor: audio / cpu,
            core_fraction: cpu / audio,
            worst_block_us: worst.as_secs_f64() * 1e6,
            block_budget_us: case.block as f64 / SAMPLE_RATE as f64 * 1e6,
            latency_frames: chain.latency(),
            detail,
        });
    }
    out
}

/// Formats results as a Markdown table.
pub fn markdown(results: &[BenchResult]) -> String {
    let mut s = String::from(
        "| case | block | audio s | CPU s | x real time | % of a core | worst block (budget) | latency | detail |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.3} | {:.1} | {:.2} % | {:.0} µs ({:.0} µs) | {} | {} |\n",
            r.name,
            r.block,
            r.audio_seconds,
            r.cpu_seconds,
            r.realtime_factor,
            100.0 * r.core_fraction,
            r.worst_block_us,
            r.block_budget_us,
            r.latency_frames,
            r.detail
        ));
    }
    s
}
