//! Chain description: the TOML format of `tutti dsp --chain CHAIN.toml`, and its validation.
//!
//! Everything here runs at build time, off the audio thread: parsing and validation may allocate.
//! Unknown keys are rejected (`deny_unknown_fields`) and every range error names the stage index
//! and the field.
//!
//! ```toml
//! sample_rate = 48000
//! max_block = 1024
//! smoothing_ms = 20.0          # optional: ramp time of the smoothed setters
//!
//! [[stages]]
//! kind = "eq"
//! bands = [ { type = "peaking", freq = 1000.0, gain_db = 3.0, q = 1.0 } ]
//! graphic = { count = 31, from = 20.0, to = 20000.0, gains_db = [1.0, -1.0], q = 4.0 }
//!
//! [[stages]]
//! kind = "compressor"
//! threshold_db = -18.0
//! ratio = 4.0
//!
//! [[stages]]
//! kind = "convolution"
//! ir = "hall.wav"              # relative to the chain file's directory
//! mode = "low_latency"         # or "uniform"
//! ```

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::DspError;

/// Resource limits applied when building a chain (so a hostile or mistaken file cannot make the
/// engine allocate gigabytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest impulse response accepted, in frames.
    pub max_ir_frames: usize,
    /// Most stages in one chain.
    pub max_stages: usize,
    /// Most bands in one EQ stage.
    pub max_bands: usize,
    /// Longest delay stage, in milliseconds.
    pub max_delay_ms: f64,
    /// Largest `max_block`.
    pub max_block: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ir_frames: 1 << 21,
            max_stages: 256,
            max_bands: 4096,
            max_delay_ms: 10_000.0,
            max_block: 1 << 16,
        }
    }
}

fn default_smoothing_ms() -> f64 {
    20.0
}

/// A whole processing chain: stereo, planar f32, fixed sample rate, blocks of at most `max_block`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Sample rate in Hz (8 000 – 384 000).
    pub sample_rate: u32,
    /// Largest block `process()` will be given.
    pub max_block: usize,
    /// Ramp time of smoothed parameter changes, in ms (0 – 1000).
    #[serde(default = "default_smoothing_ms")]
    pub smoothing_ms: f64,
    /// The stages, applied in order.
    #[serde(default)]
    pub stages: Vec<StageConfig>,
}

impl ChainConfig {
    /// Parses a chain from TOML text. `origin` names the source in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, DspError> {
        toml::from_str(text).map_err(|e| DspError::ChainParse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Reads and parses a chain file.
    pub fn from_file(path: &Path) -> Result<Self, DspError> {
        let text = std::fs::read_to_string(path).map_err(|source| DspError::ChainIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Serialises back to TOML.
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// One stage of a chain, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StageConfig {
    /// A single filter.
    Biquad(BiquadConfig),
    /// Parametric and/or graphic EQ of any number of bands.
    Eq(EqConfig),
    /// Feed-forward stereo-linked compressor.
    Compressor(CompressorConfig),
    /// Brick-wall look-ahead limiter.
    Limiter(LimiterConfig),
    /// Feedback-delay-network reverb.
    Reverb(ReverbConfig),
    /// Partitioned FFT convolution with an impulse response from a WAV file.
    Convolution(ConvolutionConfig),
    /// Gain.
    Gain(GainConfig),
    /// Constant-power pan / balance.
    Pan(PanConfig),
    /// Plain delay.
    Delay(DelayConfig),
}

impl StageConfig {
    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Biquad(_) => "biquad",
            Self::Eq(_) => "eq",
            Self::Compressor(_) => "compressor",
            Self::Limiter(_) => "limiter",
            Self::Reverb(_) => "reverb",
            Self::Convolution(_) => "convolution",
            Self::Gain(_) => "gain",
            Self::Pan(_) => "pan",
            Self::Delay(_) => "delay",
        }
    }

    /// Optional stage name (for [`crate::Chain::stage_index`]).
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Biquad(c) => c.name.as_deref(),
            Self::Eq(c) => c.name.as_deref(),
            Self::Compressor(c) => c.name.as_deref(),
            Self::Limiter(c) => c.name.as_deref(),
            Self::Reverb(c) => c.name.as_deref(),
            Self::Convolution(c) => c.name.as_deref(),
            Self::Gain(c) => c.name.as_deref(),
            Self::Pan(c) => c.name.as_deref(),
            Self::Delay(c) => c.name.as_deref(),
        }
    }
}

/// Filter shapes (RBJ cookbook analog prototypes, bilinear transform with pre-warping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterType {
    /// Bell: `gain_db` at `freq`, bandwidth from `q`.
    Peaking,
    /// Low shelf, `gain_db` below `freq`.
    Lowshelf,
    /// High shelf, `gain_db` above `freq`.
    Highshelf,
    /// 2nd-order low pass.
    Lowpass,
    /// 2nd-order high pass.
    Highpass,
    /// Band pass, 0 dB peak.
    Bandpass,
    /// Notch.
    Notch,
    /// All pass.
    Allpass,
}

fn default_q() -> f64 {
    std::f64::consts::FRAC_1_SQRT_2
}

/// One filter band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandConfig {
    /// Shape.
    #[serde(rename = "type")]
    pub filter: FilterType,
    /// Centre / corner frequency in Hz, `0 < freq < sample_rate / 2`.
    pub freq: f64,
    /// Gain in dB (peaking and shelves), within ±48.
    #[serde(default)]
    pub gain_db: f64,
    /// Quality factor, `0 < q <= 100`.
    #[serde(default = "default_q")]
    pub q: f64,
}

/// `kind = "biquad"`: a single band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiquadConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Shape.
    #[serde(rename = "type")]
    pub filter: FilterType,
    /// Frequency in Hz.
    pub freq: f64,
    /// Gain in dB.
    #[serde(default)]
    pub gain_db: f64,
    /// Quality factor.
    #[serde(default = "default_q")]
    pub q: f64,
}

fn default_graphic_q() -> f64 {
    4.0
}
fn default_peaking() -> FilterType {
    FilterType::Peaking
}

/// A generated bank of log-spaced bands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphicConfig {
    /// Number of bands.
    pub count: usize,
    /// Lowest centre frequency (Hz).
    pub from: f64,
    /// Highest centre frequency (Hz).
    pub to: f64,
    /// Gains in dB, repeated cyclically over the bands (`[1, -1]` alternates). Empty = 0 dB.
    #[serde(default)]
    pub gains_db: Vec<f64>,
    /// Q of every band.
    #[serde(default = "default_graphic_q")]
    pub q: f64,
    /// Shape of every band.
    #[serde(rename = "type", default = "default_peaking")]
    pub filter: FilterType,
}

impl GraphicConfig {
    /// Expands to explicit bands (log spacing from `from` to `to`).
    pub fn bands(&self) -> Vec<BandConfig> {
        (0..self.count)
            .map(|i| {
                let t = if self.count > 1 {
                    i as f64 / (self.count - 1) as f64
                } else {
                    0.0
                };
                let freq = self.from * (self.to / self.from).powf(t);
                let gain_db = if self.gains_db.is_empty() {
                    0.0
                } else {
                    self.gains_db[i % self.gains_db.len()]
                };
                BandConfig {
                    filter: self.filter,
                    freq,
                    gain_db,
                    q: self.q,
                }
            })
            .collect()
    }
}

/// `kind = "eq"`: explicit `bands` followed by the generated `graphic` bands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EqConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Explicit bands.
    #[serde(default)]
    pub bands: Vec<BandConfig>,
    /// Generated bands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphic: Option<GraphicConfig>,
}

impl EqConfig {
    /// All bands: explicit then generated.
    pub fn all_bands(&self) -> Vec<BandConfig> {
        let mut v = self.bands.clone();
        if let Some(g) = &self.graphic {
            v.extend(g.bands());
        }
        v
    }
}

fn default_ratio() -> f64 {
    4.0
}
fn default_attack() -> f64 {
    10.0
}
fn default_release() -> f64 {
    100.0
}

/// `kind = "compressor"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressorConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Threshold in dBFS (−100 – 0).
    pub threshold_db: f64,
    /// Ratio (1 – 100).
    #[serde(default = "default_ratio")]
    pub ratio: f64,
    /// Soft-knee width in dB (0 – 48).
    #[serde(default)]
    pub knee_db: f64,
    /// Attack time constant in ms (0.01 – 1000; 63 % of a step).
    #[serde(default = "default_attack")]
    pub attack_ms: f64,
    /// Release time constant in ms (1 – 10 000).
    #[serde(default = "default_release")]
    pub release_ms: f64,
    /// Make-up gain in dB (±48).
    #[serde(default)]
    pub makeup_db: f64,
}

fn default_ceiling() -> f64 {
    -0.3
}
fn default_lookahead() -> f64 {
    5.0
}
fn default_limiter_release() -> f64 {
    50.0
}

/// `kind = "limiter"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Output ceiling in dBFS (−60 – 0).
    #[serde(default = "default_ceiling")]
    pub ceiling_db: f64,
    /// Look-ahead in ms (0 – 50); this is the limiter's latency.
    #[serde(default = "default_lookahead")]
    pub lookahead_ms: f64,
    /// Release time constant in ms (1 – 5000).
    #[serde(default = "default_limiter_release")]
    pub release_ms: f64,
}

fn default_size() -> f64 {
    0.5
}
fn default_decay() -> f64 {
    2.0
}
fn default_damping() -> f64 {
    0.3
}
fn default_mix() -> f64 {
    0.25
}

/// `kind = "reverb"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReverbConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Room size 0 – 1 (scales the delay lengths).
    #[serde(default = "default_size")]
    pub size: f64,
    /// Decay time (RT60) in seconds, 0.05 – 60.
    #[serde(default = "default_decay")]
    pub decay_s: f64,
    /// High-frequency damping 0 – 1.
    #[serde(default = "default_damping")]
    pub damping: f64,
    /// Wet/dry mix 0 – 1.
    #[serde(default = "default_mix")]
    pub mix: f64,
}

/// Convolution partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConvolutionMode {
    /// One partition size (`partition`, default `max_block`).
    #[default]
    Uniform,
    /// Head partitions of `partition` samples, then doubling sizes up to `max_partition`.
    LowLatency,
}

/// `kind = "convolution"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvolutionConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// WAV file (mono or stereo), relative to the chain file's directory.
    pub ir: PathBuf,
    /// Partitioning scheme.
    #[serde(default)]
    pub mode: ConvolutionMode,
    /// Head (or uniform) partition size in samples, a power of two (default: `max_block`
    /// rounded up to a power of two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<usize>,
    /// Largest tail partition in low-latency mode, a power of two (default: chosen from the IR
    /// length, see [`crate::Partitioning::max_partition`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_partition: Option<usize>,
    /// Gain applied to the IR, in dB (±48).
    #[serde(default)]
    pub gain_db: f64,
}

/// `kind = "gain"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GainConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Gain in dB (±48).
    pub gain_db: f64,
}

/// `kind = "pan"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// −1 (left) … 0 (centre, unity) … 1 (right); constant power.
    pub pan: f64,
}

/// `kind = "delay"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Delay in milliseconds (0 – `Limits::max_delay_ms`), rounded to whole samples.
    pub ms: f64,
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

pub(crate) struct StageCheck {
    pub stage: usize,
    pub kind: &'static str,
}

impl StageCheck {
    pub fn err(
        &self,
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> DspError {
        DspError::InvalidStage {
            stage: self.stage,
            kind: self.kind,
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// `lo <= v <= hi` and finite.
    pub fn range(&self, field: &str, v: f64, lo: f64, hi: f64) -> Result<(), DspError> {
        if v.is_finite() && v >= lo && v <= hi {
            Ok(())
        } else {
            Err(self.err(field, v, format!("must be within {lo} ..= {hi}")))
        }
    }

    pub fn band(&self, prefix: &str, b: &BandConfig, fs: f64) -> Result<(), DspError> {
        let nyq = fs / 2.0;
        if !(b.freq.is_finite() && b.freq > 0.0 && b.freq < nyq) {
            return Err(self.err(
                format!("{prefix}freq"),
                b.freq,
                format!("must satisfy 0 < freq < sample_rate/2 = {nyq}"),
            ));
        }
        if !(b.q.is_finite() && b.q > 0.0 && b.q <= 100.0) {
            return Err(self.err(format!("{prefix}q"), b.q, "must satisfy 0 < q <= 100"));
        }
        self.range(&format!("{prefix}gain_db"), b.gain_db, -48.0, 48.0)
    }
}

pub(crate) fn validate_top(cfg: &ChainConfig, limits: &Limits) -> Result<(), DspError> {
    if !(8_000..=384_000).contains(&cfg.sample_rate) {
        return Err(DspError::InvalidChain {
            field: "sample_rate",
            value: cfg.sample_rate.to_string(),
            reason: "must be within 8000 ..= 384000 Hz".into(),
        });
    }
    if cfg.max_block == 0 || cfg.max_block > limits.max_block {
        return Err(DspError::InvalidChain {
            field: "max_block",
            value: cfg.max_block.to_string(),
            reason: format!("must be within 1 ..= {}", limits.max_block),
        });
    }
    if !(cfg.smoothing_ms.is_finite() && (0.0..=1000.0).contains(&cfg.smoothing_ms)) {
        return Err(DspError::InvalidChain {
            field: "smoothing_ms",
            value: cfg.smoothing_ms.to_string(),
            reason: "must be within 0 ..= 1000".into(),
        });
    }
    if cfg.stages.len() > limits.max_stages {
        return Err(DspError::InvalidChain {
            field: "stages",
            value: cfg.stages.len().to_string(),
            reason: format!("at most {} stages", limits.max_stages),
        });
    }
    Ok(())
}

/// Resolves an IR path against the chain file's directory.
pub(crate) fn resolve(base_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}
