//! # tutti-dsp — the DSP kernels of Tutti's embedded audio engine
//!
//! Stereo, planar `f32` processing blocks: biquad filters and EQs of any number of bands, a
//! compressor, a brick-wall look-ahead limiter, a feedback-delay-network reverb, partitioned FFT
//! convolution with long impulse responses (uniform and low-latency), gain, pan and delay; a TOML
//! chain format ([`ChainConfig`], used by `tutti dsp --chain`); WAV and raw-stream helpers; chat's
//! `/play` sounds rendered offline ([`sounds::render`]); and
//! the benchmark behind `tutti bench audio` ([`bench::run`]).
//!
//! The crate knows nothing of tokio, HTTP, SQLite or I/O threads.
//!
//! ## Real-time rule
//! Every [`Processor::process`] implementation (and every setter documented as
//! allocation-free) **must never allocate, lock, log or block**: all memory is allocated when a
//! stage is built, off the audio thread. Errors on the real-time path carry only static data.
//!
//! ## Subnormals
//! [`Chain::process`] sets FTZ/DAZ on x86-64 for the duration of each block
//! ([`denormal::FlushDenormals`]); recursive kernels additionally zero tiny state at block ends.
//!
//! ## SIMD
//! The hot kernels (biquad wavefront, spectral multiply-accumulate) are compiled for AVX-512,
//! AVX2+FMA and the portable baseline; the variant is chosen at run time by CPU feature
//! detection, so the binary runs on any x86-64 (and other architectures use the portable code).
//! Setting the environment variable `TUTTI_DSP_NO_SIMD` (or `TUTTI_DSP_NO_AVX512`) when a
//! stage is built forces the portable (or at most the AVX2) variant, for comparisons.
//!
//! ## Example
//! ```
//! use tutti_dsp::{Chain, ChainConfig, Limits, Processor, Param};
//! let cfg = ChainConfig::from_toml_str(r#"
//!     sample_rate = 48000
//!     max_block = 256
//!     [[stages]]
//!     kind = "eq"
//!     name = "master_eq"
//!     bands = [{ type = "peaking", freq = 1000.0, gain_db = 3.0, q = 1.0 }]
//!     [[stages]]
//!     kind = "gain"
//!     gain_db = -6.0
//! "#, "<doc>").unwrap();
//! let mut chain = Chain::build(&cfg, std::path::Path::new("."), &Limits::default()).unwrap();
//! let (mut l, mut r) = (vec![0.1f32; 256], vec![0.1f32; 256]);
//! chain.process(&mut l, &mut r);
//! let eq = chain.stage_index("master_eq").unwrap();
//! chain.set_param(eq, Param::BandGainDb(0), -3.0).unwrap();
//! ```

pub mod basic;
pub mod bench;
pub mod chain;
pub mod command;
pub mod config;
pub mod convolution;
pub mod denormal;
pub mod dynamics;
pub mod eq;
mod error;
pub mod filter;
pub mod reverb;
pub mod smooth;
pub mod sounds;
pub mod wav;

pub use basic::{db_to_lin, lin_to_db, Delay, Gain, Pan};
pub use chain::{Chain, Param, Stage};
pub use config::{
    BandConfig, BiquadConfig, ChainConfig, CompressorConfig, ConvolutionConfig, ConvolutionMode,
    DelayConfig, EqConfig, FilterType, GainConfig, GraphicConfig, LimiterConfig, Limits, PanConfig,
    ReverbConfig, StageConfig,
};
pub use convolution::{Convolver, Partitioning};
pub use denormal::FlushDenormals;
pub use dynamics::{Compressor, Limiter};
pub use eq::Eq;
pub use error::DspError;
pub use filter::{Cascade, Svf, SvfCoeffs};
pub use reverb::Reverb;
pub use smooth::Ramp;
pub use wav::{
    process_buffers, process_raw_stream, read_raw_f32, read_wav, write_raw_f32, write_wav,
};

/// A stereo block processor.
///
/// `process` works in place on planar channels with `left.len() == right.len() <= max_block`
/// (the block size given at construction). It **must not allocate, lock, log or block**.
pub trait Processor: Send {
    /// Processes one block in place.
    fn process(&mut self, left: &mut [f32], right: &mut [f32]);
    /// Clears all internal state (delay lines, filter memories, envelopes) and ends ramps.
    fn reset(&mut self);
    /// Latency in samples this processor adds (0 for IIR and convolution, the look-ahead for the
    /// limiter).
    fn latency(&self) -> usize {
        0
    }
}

impl<P: Processor + ?Sized> Processor for Box<P> {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        (**self).process(left, right)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn latency(&self) -> usize {
        (**self).latency()
    }
}
