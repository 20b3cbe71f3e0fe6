//! # tutti-audio — Tutti's embedded real-time audio engine
//!
//! When no SuperCollider is configured, this engine is the sound of the show: the demo
//! piece's voices (`drone`, `granular`, `rhythm`) and a file `player`, mixed through the
//! master chain (EQ → compressor → reverb send → convolution → gain → limiter, built from
//! `tutti-dsp` kernels), out to a sink (sound card, null sink, offline render), with taps for
//! WAV recording, a live PCM stream for the browser and level/spectrum monitoring.
//!
//! ```text
//!  other threads                         audio thread (EngineCore::process)
//!  ─────────────                         ────────────────────────────────────────────
//!  EngineHandle::set ──atomics──────────▶ controls → ramps ─────┐
//!  set_chain / set_impulse_response /                          ▼
//!  play_file ──rtrb commands (boxed, ───▶ voices → chain ⇄ (crossfade) → convolution ⇄
//!              built off-thread)               → master.gain → limiter → output
//!  collect_garbage ◀──rtrb garbage──────── retired chains / IRs / clips      │
//!  latest_monitor ◀──seqlock mailbox────── analyser (peak, RMS, FFT bands) ◀─┤
//!  Recording (hound writer) ◀──rtrb f32── record tap ◀───────────────────────┤
//!  StreamReader (→ WebSocket) ◀─rtrb i16─ stream tap ◀───────────────────────┘
//! ```
//!
//! ## The real-time rule
//! Code on the audio thread — [`EngineCore::process`] and everything it calls — **must never
//! allocate, free, lock, log or block**. Every buffer is allocated in [`Engine::new`];
//! heavier objects are built off the audio thread, moved in through lock-free queues, and
//! moved out again to be dropped elsewhere; every queue out of the audio thread drops (and
//! counts) rather than waits when full. `tests/no_alloc.rs` enforces this with a checking
//! global allocator.
//!
//! ## Example
//! ```
//! use tutti_audio::{Engine, EngineConfig};
//! // Off the audio thread: build, resolve names once.
//! let (handle, mut core) = Engine::new(EngineConfig::default())?;
//! let amp = handle.control_id("drone.amp")?;
//! handle.set(amp, 0.5)?; // from any thread, never blocks
//! // On the audio thread (normally inside a sink):
//! let (mut left, mut right) = (vec![0.0f32; 256], vec![0.0f32; 256]);
//! core.process(&mut left, &mut right);
//! # Ok::<(), tutti_audio::AudioError>(())
//! ```
//!
//! ## Modules
//! * [`controls`] — the `voice.control` table and the lock-free control bank.
//! * [`synth`] — oscillators, noise, filter, envelopes. (Controls are smoothed with
//!   [`tutti_dsp::Ramp`], the same linear ramp the DSP chain uses.)
//! * [`voices`] — drone, granular, rhythm, player.
//! * [`decode`] — WAV/FLAC/MP3/Ogg decoding into memory (off the audio thread).
//! * [`engine`] — [`Engine`], [`EngineHandle`], [`EngineCore`].
//! * [`monitor`] — peak/RMS/spectrum frames.
//! * [`record`] — WAV recording of a show.
//! * [`stream`] — the 16-bit PCM live stream tap.
//! * `tap` — the output ring-buffer tap that `record` and `stream` share.
//! * [`sink`] — sound card (`cpal` feature) and null sink.
//! * [`render`] — deterministic offline rendering and the piece-mapping helper.
//! * [`mod@bench`] — the engine's CPU-load and latency figures.

pub mod bench;
pub mod controls;
pub mod decode;
pub mod engine;
mod error;
pub mod monitor;
pub mod record;
pub mod render;
pub mod sink;
pub mod stream;
pub mod synth;
mod tap;
pub mod voices;

pub use controls::{control_id, ControlId, ControlSpec, CONTROLS};
pub use decode::{decode_file, Clip, DecodeOptions};
pub use engine::{
    Engine, EngineConfig, EngineCore, EngineHandle, EngineStats, Latency, MasterConfig,
};
pub use error::AudioError;
pub use monitor::MonitorFrame;
pub use record::{Recording, RecordingSummary};
pub use render::{render_offline, render_piece_offline, write_wav, PieceControls};
pub use sink::{NullSink, Output, OutputChoice, OutputKind, SoundCards};
pub use stream::{StreamFormat, StreamReader};
/// The DSP kernels the master chain is built from (for `ChainConfig` and friends).
pub use tutti_dsp;
