//! The processing chain: stages built from a [`ChainConfig`], run in order on stereo blocks, with
//! allocation-free control through [`Chain::set_param`].
//!
//! [`Chain::process`] replaces non-finite input samples (NaN, ±inf) with silence, so a faulty
//! source cannot poison filter and reverb states for the rest of a show.
//!
//! Building ([`Chain::build`]) validates everything, loads impulse responses and allocates every
//! buffer; it runs off the audio thread. [`Chain::process`] and [`Chain::set_param`] never
//! allocate, lock, log or block. To replace a stage while running (e.g. a new impulse response),
//! build the new [`Stage`] off the audio thread and swap it in with [`Chain::swap_stage`]; the
//! old one comes back so it can be dropped off the audio thread.

use std::path::Path;

use crate::basic::{db_to_lin, Delay, Gain, Pan};
use crate::config::{
    resolve, validate_top, ChainConfig, ConvolutionMode, Limits, StageCheck, StageConfig,
};
use crate::convolution::{Convolver, Partitioning};
use crate::denormal::FlushDenormals;
use crate::dynamics::{Compressor, Limiter};
use crate::eq::Eq;
use crate::reverb::Reverb;
use crate::smooth::Ramp;
use crate::{DspError, Processor};

/// A built stage.
#[derive(Debug)]
pub enum Stage {
    /// EQ / biquad.
    Eq(Eq),
    /// Compressor.
    Compressor(Compressor),
    /// Limiter.
    Limiter(Limiter),
    /// Reverb.
    Reverb(Box<Reverb>),
    /// Convolution.
    Convolution(Box<Convolver>),
    /// Gain.
    Gain(Gain),
    /// Pan.
    Pan(Pan),
    /// Delay.
    Delay(Delay),
}

impl Stage {
    /// Kind name as in the chain file (`biquad` stages report `eq`).
    pub fn kind(&self) -> &'static str {
        match self {
            Stage::Eq(_) => "eq",
            Stage::Compressor(_) => "compressor",
            Stage::Limiter(_) => "limiter",
            Stage::Reverb(_) => "reverb",
            Stage::Convolution(_) => "convolution",
            Stage::Gain(_) => "gain",
            Stage::Pan(_) => "pan",
            Stage::Delay(_) => "delay",
        }
    }

    fn as_proc(&mut self) -> &mut dyn Processor {
        match self {
            Stage::Eq(p) => p,
            Stage::Compressor(p) => p,
            Stage::Limiter(p) => p,
            Stage::Reverb(p) => &mut **p,
            Stage::Convolution(p) => &mut **p,
            Stage::Gain(p) => p,
            Stage::Pan(p) => p,
            Stage::Delay(p) => p,
        }
    }
}

impl Processor for Stage {
    #[inline]
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        match self {
            Stage::Eq(p) => p.process(left, right),
            Stage::Compressor(p) => p.process(left, right),
            Stage::Limiter(p) => p.process(left, right),
            Stage::Reverb(p) => p.process(left, right),
            Stage::Convolution(p) => p.process(left, right),
            Stage::Gain(p) => p.process(left, right),
            Stage::Pan(p) => p.process(left, right),
            Stage::Delay(p) => p.process(left, right),
        }
    }

    fn reset(&mut self) {
        self.as_proc().reset()
    }

    fn latency(&self) -> usize {
        match self {
            Stage::Limiter(l) => l.latency(),
            _ => 0,
        }
    }
}

/// A control parameter addressed by [`Chain::set_param`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param {
    /// Gain stage: gain in dB (±48).
    GainDb,
    /// Pan stage: −1 … 1.
    Pan,
    /// EQ / biquad stage: gain of band `n` in dB (±48).
    BandGainDb(usize),
    /// EQ / biquad stage: frequency of band `n` in Hz (0 < f < fs/2).
    BandFreq(usize),
    /// Compressor: threshold in dBFS (−100 … 0).
    ThresholdDb,
    /// Compressor: ratio (1 … 100).
    Ratio,
    /// Compressor: make-up gain in dB (±48).
    MakeupDb,
    /// Limiter: ceiling in dBFS (−60 … 0).
    CeilingDb,
    /// Reverb: wet/dry mix 0 … 1.
    Mix,
    /// Reverb: RT60 in seconds (0.05 … 60).
    DecayS,
    /// Reverb: damping 0 … 1.
    Damping,
}

impl Param {
    fn name(&self) -> &'static str {
        match self {
            Param::GainDb => "gain_db",
            Param::Pan => "pan",
            Param::BandGainDb(_) => "band gain_db",
            Param::BandFreq(_) => "band freq",
            Param::ThresholdDb => "threshold_db",
            Param::Ratio => "ratio",
            Param::MakeupDb => "makeup_db",
            Param::CeilingDb => "ceiling_db",
            Param::Mix => "mix",
            Param::DecayS => "decay_s",
            Param::Damping => "damping",
        }
    }
}

/// A chain of stages (see module docs).
#[derive(Debug)]
pub struct Chain {
    stages: Vec<Stage>,
    names: Vec<Option<String>>,
    sample_rate: u32,
    max_block: usize,
}

fn in_range(v: f32, lo: f32, hi: f32) -> bool {
    v.is_finite() && v >= lo && v <= hi
}

impl Chain {
    /// Validates `cfg` and builds every stage. Relative IR paths are resolved against
    /// `base_dir` (the chain file's directory).
    pub fn build(cfg: &ChainConfig, base_dir: &Path, limits: &Limits) -> Result<Chain, DspError> {
        validate_top(cfg, limits)?;
        let fs = cfg.sample_rate as f64;
        let ramp = Ramp::len_for(cfg.smoothing_ms, fs);
        let mut stages = Vec::with_capacity(cfg.stages.len());
        let mut names = Vec::with_capacity(cfg.stages.len());
        for (i, sc) in cfg.stages.iter().enumerate() {
            let ck = StageCheck {
                stage: i,
                kind: sc.kind(),
            };
            let stage = match sc {
                StageConfig::Biquad(b) => {
                    let band = crate::config::BandConfig {
                        filter: b.filter,
                        freq: b.freq,
                        gain_db: b.gain_db,
                        q: b.q,
                    };
                    ck.band("", &band, fs)?;
                    Stage::Eq(Eq::new(&[band], fs, ramp))
                }
                StageConfig::Eq(e) => {
                    if let Some(g) = &e.graphic {
                        if g.count == 0 {
                            return Err(ck.err("graphic.count", 0, "must be at least 1"));
                        }
                        if g.count > limits.max_bands {
                            return Err(ck.err(
                                "graphic.count",
                                g.count,
                                format!("at most {} bands", limits.max_bands),
                            ));
                        }
                        for (f, v) in [("graphic.from", g.from), ("graphic.to", g.to)] {
                            if !(v.is_finite() && v > 0.0 && v < fs / 2.0) {
                                return Err(ck.err(
                                    f,
                                    v,
                                    format!("must satisfy 0 < freq < sample_rate/2 = {}", fs / 2.0),
                                ));
                            }
                        }
                        for (j, gdb) in g.gains_db.iter().enumerate() {
                            ck.range(&format!("graphic.gains_db[{j}]"), *gdb, -48.0, 48.0)?;
                        }
                        if !(g.q.is_finite() && g.q > 0.0 && g.q <= 100.0) {
                            return Err(ck.err("graphic.q", g.q, "must satisfy 0 < q <= 100"));
                        }
                    }
                    let bands = e.all_bands();
                    if bands.len() > limits.max_bands {
                        return Err(ck.err(
                            "bands",
                            bands.len(),
                            format!("at most {} bands", limits.max_bands),
                        ));
                    }
                    for (j, b) in e.bands.iter().enumerate() {
                        ck.band(&format!("bands[{j}]."), b, fs)?;
                    }
                    Stage::Eq(Eq::new(&bands, fs, ramp))
                }
                StageConfig::Compressor(c) => {
                    ck.range("threshold_db", c.threshold_db, -100.0, 0.0)?;
                    ck.range("ratio", c.ratio, 1.0, 100.0)?;
                    ck.range("knee_db", c.knee_db, 0.0, 48.0)?;
                    ck.range("attack_ms", c.attack_ms, 0.01, 1000.0)?;
                    ck.range("release_ms", c.release_ms, 1.0, 10_000.0)?;
                    ck.range("makeup_db", c.makeup_db, -48.0, 48.0)?;
                    Stage::Compressor(Compressor::new(c, fs, ramp))
                }
                StageConfig::Limiter(c) => {
                    ck.range("ceiling_db", c.ceiling_db, -60.0, 0.0)?;
                    ck.range("lookahead_ms", c.lookahead_ms, 0.0, 50.0)?;
                    ck.range("release_ms", c.release_ms, 1.0, 5000.0)?;
                    Stage::Limiter(Limiter::new(c, fs, ramp))
                }
                StageConfig::Reverb(c) => {
                    ck.range("size", c.size, 0.0, 1.0)?;
                    ck.range("decay_s", c.decay_s, 0.05, 60.0)?;
                    ck.range("damping", c.damping, 0.0, 1.0)?;
                    ck.range("mix", c.mix, 0.0, 1.0)?;
                    Stage::Reverb(Box::new(Reverb::new(c, fs, ramp)))
                }
                StageConfig::Convolution(c) => {
                    ck.range("gain_db", c.gain_db, -48.0, 48.0)?;
                    let mut part = Partitioning::for_block(c.mode, cfg.max_block);
                    if let Some(p) = c.partition {
                        if !p.is_power_of_two() || !(16..=65536).contains(&p) {
                            return Err(ck.err(
                                "partition",
                                p,
                                "must be a power of two within 16 ..= 65536",
                            ));
                        }
                        part.partition = p;
                    }
                    if let Some(m) = c.max_partition {
                        if c.mode != ConvolutionMode::LowLatency {
                            return Err(ck.err(
                                "max_partition",
                                m,
                                "only valid with mode = \"low_latency\"",
                            ));
                        }
                        if !m.is_power_of_two() || m < part.partition || m > 1 << 18 {
                            return Err(ck.err(
                                "max_partition",
                                m,
                                format!(
                                    "must be a power of two within partition ({}) ..= 262144",
                                    part.partition
                                ),
                            ));
                        }
                        part.max_partition = Some(m);
                    }
                    let path = resolve(base_dir, &c.ir);
                    let conv = Convolver::from_wav(
                        &path,
                        cfg.sample_rate,
                        part,
                        db_to_lin(c.gain_db) as f32,
                        limits.max_ir_frames,
                    )?;
                    Stage::Convolution(Box::new(conv))
                }
                StageConfig::Gain(c) => {
                    ck.range("gain_db", c.gain_db, -48.0, 48.0)?;
                    Stage::Gain(Gain::new(c.gain_db, ramp))
                }
                StageConfig::Pan(c) => {
                    ck.range("pan", c.pan, -1.0, 1.0)?;
                    Stage::Pan(Pan::new(c.pan, ramp))
                }
                StageConfig::Delay(c) => {
                    ck.range("ms", c.ms, 0.0, limits.max_delay_ms)?;
                    Stage::Delay(Delay::new((c.ms * 1e-3 * fs).round() as usize))
                }
            };
            stages.push(stage);
            names.push(sc.name().map(str::to_string));
        }
        Ok(Chain {
            stages,
            names,
            sample_rate: cfg.sample_rate,
            max_block: cfg.max_block,
        })
    }

    /// Reads, validates and builds a chain file (IR paths relative to the file's directory).
    pub fn from_file(path: &Path, limits: &Limits) -> Result<Chain, DspError> {
        let cfg = ChainConfig::from_file(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Chain::build(&cfg, base, limits)
    }

    /// A chain assembled from already-built stages (e.g. by the engine, or for benchmarks).
    pub fn from_stages(
        sample_rate: u32,
        max_block: usize,
        stages: Vec<(Option<String>, Stage)>,
    ) -> Chain {
        let (names, stages) = stages.into_iter().unzip();
        Chain {
            stages,
            names,
            sample_rate,
            max_block,
        }
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Largest block `process` expects (longer blocks are split).
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether the chain has no stages (pass-through).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Index of the stage named `name`.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }

    /// Kind of stage `i`.
    pub fn stage_kind(&self, i: usize) -> Option<&'static str> {
        self.stages.get(i).map(Stage::kind)
    }

    /// Mutable access to stage `i` (for stage-specific setters).
    pub fn stage_mut(&mut self, i: usize) -> Option<&mut Stage> {
        self.stages.get_mut(i)
    }

    /// Swaps stage `i` with `stage` (built off the audio thread): afterwards the chain holds the
    /// new stage and `stage` holds the old one, which the caller should send back and drop off
    /// the audio thread. Allocation-free; an out-of-range index changes nothing.
    pub fn swap_stage(&mut self, i: usize, stage: &mut Stage) -> Result<(), DspError> {
        match self.stages.get_mut(i) {
            Some(slot) => {
                std::mem::swap(slot, stage);
                Ok(())
            }
            None => Err(DspError::Param {
                stage: i,
                param: "stage",
                reason: "no such stage",
            }),
        }
    }

    /// Applies a control change to stage `stage`. Values are range-checked; smoothed
    /// parameters ramp over the chain's `smoothing_ms`. Allocation-free (errors carry only
    /// static strings), so the engine can call it on the audio thread.
    pub fn set_param(&mut self, stage: usize, param: Param, value: f32) -> Result<(), DspError> {
        let fs = self.sample_rate as f32;
        let err = |reason: &'static str| DspError::Param {
            stage,
            param: param.name(),
            reason,
        };
        let Some(st) = self.stages.get_mut(stage) else {
            return Err(err("no such stage"));
        };
        match (st, param) {
            (Stage::Gain(g), Param::GainDb) => {
                if !in_range(value, -48.0, 48.0) {
                    return Err(err("must be within -48 ..= 48 dB"));
                }
                g.set_gain_db(value);
            }
            (Stage::Pan(p), Param::Pan) => {
                if !in_range(value, -1.0, 1.0) {
                    return Err(err("must be within -1 ..= 1"));
                }
                p.set_pan(value);
            }
            (Stage::Eq(e), Param::BandGainDb(b)) => {
                if b >= e.bands() {
                    return Err(err("no such band"));
                }
                if !in_range(value, -48.0, 48.0) {
                    return Err(err("must be within -48 ..= 48 dB"));
                }
                e.set_band_gain_db(b, value);
            }
            (Stage::Eq(e), Param::BandFreq(b)) => {
                if b >= e.bands() {
                    return Err(err("no such band"));
                }
                if !(value.is_finite() && value > 0.0 && value < fs / 2.0) {
                    return Err(err("must satisfy 0 < freq < sample_rate/2"));
                }
                e.set_band_freq(b, value);
            }
            (Stage::Compressor(c), Param::ThresholdDb) => {
                if !in_range(value, -100.0, 0.0) {
                    return Err(err("must be within -100 ..= 0 dB"));
                }
                c.set_threshold_db(value);
            }
            (Stage::Compressor(c), Param::Ratio) => {
                if !in_range(value, 1.0, 100.0) {
                    return Err(err("must be within 1 ..= 100"));
                }
                c.set_ratio(value);
            }
            (Stage::Compressor(c), Param::MakeupDb) => {
                if !in_range(value, -48.0, 48.0) {
                    return Err(err("must be within -48 ..= 48 dB"));
                }
                c.set_makeup_db(value);
            }
            (Stage::Limiter(l), Param::CeilingDb) => {
                if !in_range(value, -60.0, 0.0) {
                    return Err(err("must be within -60 ..= 0 dB"));
                }
                l.set_ceiling_db(value);
            }
            (Stage::Reverb(r), Param::Mix) => {
                if !in_range(value, 0.0, 1.0) {
                    return Err(err("must be within 0 ..= 1"));
                }
                r.set_mix(value);
            }
            (Stage::Reverb(r), Param::DecayS) => {
                if !in_range(value, 0.05, 60.0) {
                    return Err(err("must be within 0.05 ..= 60 s"));
                }
                r.set_decay_s(value);
            }
            (Stage::Reverb(r), Param::Damping) => {
                if !in_range(value, 0.0, 1.0) {
                    return Err(err("must be within 0 ..= 1"));
                }
                r.set_damping(value);
            }
            _ => return Err(err("not a parameter of this stage kind")),
        }
        Ok(())
    }
}

impl Processor for Chain {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let _ftz = FlushDenormals::new();
        let n = left.len().min(right.len());
        // One NaN or infinity from a source would poison every recursive state for good: replace
        // non-finite input samples by silence.
        for s in left[..n].iter_mut().chain(right[..n].iter_mut()) {
            if !s.is_finite() {
                *s = 0.0;
            }
        }
        let mb = self.max_block.max(1);
        let mut off = 0;
        while off < n {
            let end = (off + mb).min(n);
            let (l, r) = (&mut left[off..end], &mut right[off..end]);
            for s in &mut self.stages {
                s.process(l, r);
            }
            off = end;
        }
    }

    fn reset(&mut self) {
        for s in &mut self.stages {
            s.reset();
        }
    }

    fn latency(&self) -> usize {
        self.stages.iter().map(Processor::latency).sum()
    }
}
