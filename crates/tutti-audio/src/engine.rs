//! The real-time engine: one audio thread renders fixed blocks through
//! voices → master chain (EQ → compressor → reverb send → convolution → gain → limiter)
//! and feeds the taps (monitor, recorder, live stream).
//!
//! [`Engine::new`] returns two halves:
//! * [`EngineHandle`] (cheap to clone, `Send + Sync`) for every other thread: resolve
//!   control names, set controls, swap chains and impulse responses, load samples, start
//!   recordings, open the stream tap, read monitoring frames.
//! * [`EngineCore`], owned by whichever sink drives the audio (sound card callback, null
//!   sink thread, offline renderer), which calls [`EngineCore::process`] per block.
//!
//! # Real-time rules
//! [`EngineCore::process`] **must never allocate, free, lock, log or block**. So:
//! * controls travel through atomics ([`ControlBank`]; newest value per control wins, a
//!   setter never fails for lack of room);
//! * heavier changes (a new chain, a new impulse response, a decoded clip, a grain source)
//!   are built off the audio thread and sent, boxed, through a bounded lock-free SPSC
//!   queue (`rtrb`); the audio thread only moves the box into place;
//! * whatever they replace goes back through a second queue, to be dropped by the handle
//!   ([`EngineHandle::collect_garbage`], also called by every sending method). If that
//!   queue is full, the retired object waits in its slot and new commands of that kind
//!   wait in the command queue: nothing is ever dropped on the audio thread.
//!
//! # Glitch-free swaps
//! A new chain or impulse response runs *in parallel* with the old one for
//! [`EngineConfig::crossfade_ms`] while the output crossfades linearly from old to new, so
//! the output moves by at most `|old − new| / crossfade samples` per sample beyond the
//! signal's own motion.
//!
//! # Block size and latency
//! Internally the engine always renders [`EngineConfig::block_frames`] at a time. `process`
//! accepts any length (a sound card may ask for odd sizes): the engine keeps one block in a
//! FIFO, so input-to-output latency is `block_frames` plus the master chain's latency (the
//! limiter's look-ahead); see [`EngineHandle::latency`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtrb::{Consumer, Producer, RingBuffer};
use serde::Serialize;
use tutti_dsp::{
    BandConfig, Chain, ChainConfig, CompressorConfig, ConvolutionMode, Convolver, EqConfig,
    FilterType, LimiterConfig, Limits, Param, Partitioning, Processor, ReverbConfig, StageConfig,
};
use tutti_dsp::{FlushDenormals, Limiter};

use crate::controls::{self, ids, ControlBank, ControlId, NUM_CONTROLS};
use crate::decode::{self, Clip, DecodeOptions};
use crate::monitor::{Analyser, MonitorFrame, MonitorMailbox};
use crate::record::{self, RecordShared, RecordTap, Recording};
use crate::stream::{self, StreamReader, StreamShared, StreamTap};
use crate::voices::{GrainSource, Voices};
use crate::AudioError;
use tutti_dsp::smooth::Ramp;

/// The master chain around the voices.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterConfig {
    /// Stages before the convolution: by default EQ → compressor → reverb. Its
    /// `sample_rate` and `max_block` are replaced by the engine's. The first stage of kind
    /// `reverb` is the reverb send whose mix `master.reverb_mix` drives.
    pub chain: ChainConfig,
    /// Directory that relative IR paths in `chain` are resolved against.
    pub base_dir: PathBuf,
    /// Impulse response (WAV at the engine's rate) of the convolution stage; `None` = bypass.
    pub impulse_response: Option<PathBuf>,
    /// Partitioning of the convolution stage.
    pub ir_mode: ConvolutionMode,
    /// Gain applied to the impulse response, dB.
    pub ir_gain_db: f32,
    /// The final brick-wall limiter; `None` = no limiter (not for shows).
    pub limiter: Option<LimiterConfig>,
}

impl Default for MasterConfig {
    fn default() -> Self {
        let q = std::f64::consts::FRAC_1_SQRT_2;
        Self {
            chain: ChainConfig {
                sample_rate: 48_000,
                max_block: 256,
                smoothing_ms: 20.0,
                stages: vec![
                    StageConfig::Eq(EqConfig {
                        name: Some("master_eq".into()),
                        bands: vec![
                            BandConfig {
                                filter: FilterType::Highpass,
                                freq: 25.0,
                                gain_db: 0.0,
                                q,
                            },
                            BandConfig {
                                filter: FilterType::Lowshelf,
                                freq: 120.0,
                                gain_db: 1.0,
                                q,
                            },
                            BandConfig {
                                filter: FilterType::Highshelf,
                                freq: 9000.0,
                                gain_db: 1.0,
                                q,
                            },
                        ],
                        graphic: None,
                    }),
                    StageConfig::Compressor(CompressorConfig {
                        name: Some("master_compressor".into()),
                        threshold_db: -16.0,
                        ratio: 3.0,
                        knee_db: 6.0,
                        attack_ms: 10.0,
                        release_ms: 150.0,
                        makeup_db: 2.0,
                    }),
                    StageConfig::Reverb(ReverbConfig {
                        name: Some("master_reverb".into()),
                        size: 0.8,
                        decay_s: 3.5,
                        damping: 0.4,
                        mix: controls::ids::MASTER_REVERB_MIX.spec().default as f64,
                    }),
                ],
            },
            base_dir: PathBuf::from("."),
            impulse_response: None,
            ir_mode: ConvolutionMode::LowLatency,
            ir_gain_db: 0.0,
            limiter: Some(LimiterConfig {
                name: Some("master_limiter".into()),
                ceiling_db: -1.0,
                lookahead_ms: 2.0,
                release_ms: 80.0,
            }),
        }
    }
}

impl MasterConfig {
    /// A master section with no processing at all (no chain stages, no IR, no limiter): the
    /// voices reach the output untouched except for `master.gain`. For tests and analysis.
    pub fn bypass() -> Self {
        let mut m = Self::default();
        m.chain.stages.clear();
        m.limiter = None;
        m
    }
}

/// Everything [`Engine::new`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Sample rate in Hz (8 000 – 192 000).
    pub sample_rate: u32,
    /// Frames per internal block (16 – 4096).
    pub block_frames: usize,
    /// Seed of every random choice (grain timing, noise): same seed and inputs ⇒ same output.
    pub seed: u32,
    /// Crossfade length of chain and impulse-response swaps, ms (1 – 2000).
    pub crossfade_ms: f32,
    /// The master chain.
    pub master: MasterConfig,
    /// Control values to start from instead of the defaults (applied without ramps).
    pub initial: Vec<(String, f32)>,
    /// Resource limits for chains and impulse responses.
    pub limits: Limits,
    /// Longest audio file the player or granular voice accepts, seconds.
    pub max_file_seconds: f64,
    /// Capacity of the recording ring, seconds of audio.
    pub record_ring_seconds: f64,
    /// Capacity of the live-stream ring, seconds of audio.
    pub stream_ring_seconds: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            sample_rate: 48_000,
            block_frames: 256,
            seed: 0x7077_1001,
            crossfade_ms: 50.0,
            master: MasterConfig::default(),
            initial: Vec::new(),
            limits: Limits::default(),
            max_file_seconds: 600.0,
            record_ring_seconds: 4.0,
            stream_ring_seconds: 1.0,
        }
    }
}

/// Input-to-output latency of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// The block FIFO.
    pub block_samples: usize,
    /// The master chain (limiter look-ahead and any other stage latency).
    pub chain_samples: usize,
    /// Sum of both.
    pub total_samples: usize,
    /// `total_samples` in milliseconds.
    pub total_ms: f64,
}

/// Counters of the audio thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Blocks rendered.
    pub blocks: u64,
    /// Samples that came out non-finite and were replaced by silence.
    pub non_finite_samples: u64,
    /// Chain / impulse-response swaps completed.
    pub swaps: u64,
}

enum Command {
    Chain(Box<Chain>),
    ImpulseResponse(Option<Box<Convolver>>),
    GrainSource(Box<GrainSource>),
    Play { clip: Box<Clip>, looped: bool },
    StopPlayer,
}

impl Command {
    fn what(&self) -> &'static str {
        match self {
            Command::Chain(_) => "chain",
            Command::ImpulseResponse(_) => "impulse response",
            Command::GrainSource(_) => "grain source",
            Command::Play { .. } => "clip",
            Command::StopPlayer => "player stop",
        }
    }
}

/// Objects the audio thread retired, dropped by the handle off the audio thread.
#[allow(dead_code)] // the payloads exist only to be dropped
enum Garbage {
    Chain(Box<Chain>),
    Convolver(Box<Convolver>),
    GrainSource(Box<GrainSource>),
    Clip(Box<Clip>),
}

const COMMAND_CAPACITY: usize = 16;
const GARBAGE_CAPACITY: usize = 64;

struct Stats {
    blocks: AtomicU64,
    non_finite: AtomicU64,
    swaps: AtomicU64,
}

struct Shared {
    sample_rate: u32,
    block_frames: usize,
    chain_latency: usize,
    crossfade_ms: f32,
    limits: Limits,
    max_file_seconds: f64,
    ir_mode: ConvolutionMode,
    controls: ControlBank,
    commands: Mutex<Producer<Command>>,
    garbage: Mutex<Consumer<Garbage>>,
    monitor: Arc<MonitorMailbox>,
    record: Arc<RecordShared>,
    stream: Arc<StreamShared>,
    stats: Stats,
}

/// The thread-safe control side of the engine (see the module docs).
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("sample_rate", &self.shared.sample_rate)
            .field("block_frames", &self.shared.block_frames)
            .finish_non_exhaustive()
    }
}

/// One processor slot whose content can be replaced with a crossfade.
struct Swappable<P> {
    active: Option<Box<P>>,
    incoming: Option<Box<P>>,
    fading: bool,
    pos: u32,
    len: u32,
    retired: Option<Box<P>>,
    scratch_l: Box<[f32]>,
    scratch_r: Box<[f32]>,
}

impl<P: Processor> Swappable<P> {
    fn new(active: Option<Box<P>>, block: usize, len: u32) -> Self {
        Self {
            active,
            incoming: None,
            fading: false,
            pos: 0,
            len: len.max(1),
            retired: None,
            scratch_l: vec![0.0; block].into_boxed_slice(),
            scratch_r: vec![0.0; block].into_boxed_slice(),
        }
    }

    /// Whether a new processor can be accepted now.
    fn ready(&self) -> bool {
        !self.fading && self.retired.is_none()
    }

    fn begin(&mut self, new: Option<Box<P>>) {
        self.incoming = new;
        self.fading = true;
        self.pos = 0;
    }

    fn for_each(&mut self, mut f: impl FnMut(&mut P)) {
        if let Some(p) = self.active.as_deref_mut() {
            f(p);
        }
        if let Some(p) = self.incoming.as_deref_mut() {
            f(p);
        }
    }

    /// Processes a block in place; returns true when a swap just completed.
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) -> bool {
        if !self.fading {
            if let Some(p) = self.active.as_deref_mut() {
                p.process(left, right);
            }
            return false;
        }
        let n = left.len();
        let (sl, sr) = (&mut self.scratch_l[..n], &mut self.scratch_r[..n]);
        sl.copy_from_slice(left);
        sr.copy_from_slice(right);
        if let Some(p) = self.active.as_deref_mut() {
            p.process(left, right);
        }
        if let Some(p) = self.incoming.as_deref_mut() {
            p.process(sl, sr);
        }
        let inv = 1.0 / self.len as f32;
        for i in 0..n {
            let t = ((self.pos + 1 + i as u32) as f32 * inv).min(1.0);
            left[i] += (sl[i] - left[i]) * t;
            right[i] += (sr[i] - right[i]) * t;
        }
        self.pos += n as u32;
        if self.pos >= self.len {
            self.fading = false;
            self.retired = std::mem::replace(&mut self.active, self.incoming.take());
            return true;
        }
        false
    }

    fn latency(&self) -> usize {
        self.active.as_deref().map_or(0, Processor::latency)
    }
}

/// The audio-thread side of the engine (see the module docs).
pub struct EngineCore {
    shared: Arc<Shared>,
    commands: Consumer<Command>,
    garbage: Producer<Garbage>,
    voices: Voices,
    chain: Swappable<Chain>,
    conv: Swappable<Convolver>,
    limiter: Option<Limiter>,
    gain: Ramp,
    reverb_mix: f32,
    in_l: Box<[f32]>,
    in_r: Box<[f32]>,
    out_l: Box<[f32]>,
    out_r: Box<[f32]>,
    pos: usize,
    analyser: Analyser,
    record: RecordTap,
    stream: StreamTap,
}

impl std::fmt::Debug for EngineCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineCore")
            .field("sample_rate", &self.shared.sample_rate)
            .field("block_frames", &self.shared.block_frames)
            .finish_non_exhaustive()
    }
}

/// Constructor of the engine's two halves.
#[derive(Debug)]
pub struct Engine;

fn invalid(field: &'static str, value: impl ToString, reason: &str) -> AudioError {
    AudioError::InvalidConfig {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn build_chain(
    cfg: &ChainConfig,
    base_dir: &Path,
    sample_rate: u32,
    block: usize,
    limits: &Limits,
) -> Result<Box<Chain>, AudioError> {
    let mut cfg = cfg.clone();
    cfg.sample_rate = sample_rate;
    cfg.max_block = block;
    Ok(Box::new(Chain::build(&cfg, base_dir, limits)?))
}

fn reverb_stage(chain: &Chain) -> Option<usize> {
    (0..chain.len()).find(|&i| chain.stage_kind(i) == Some("reverb"))
}

fn set_reverb_mix(chain: &mut Chain, mix: f32) {
    if let Some(i) = reverb_stage(chain) {
        // In range by construction (controls are clamped); an Err carries static data only.
        let _ = chain.set_param(i, Param::Mix, mix);
    }
}

fn build_convolver(
    path: &Path,
    sample_rate: u32,
    block: usize,
    mode: ConvolutionMode,
    gain_db: f32,
    limits: &Limits,
) -> Result<Box<Convolver>, AudioError> {
    let part = Partitioning::for_block(mode, block);
    let gain = 10f32.powf(gain_db / 20.0);
    Ok(Box::new(Convolver::from_wav(
        path,
        sample_rate,
        part,
        gain,
        limits.max_ir_frames,
    )?))
}

impl Engine {
    /// Validates `config`, builds voices, master chain, taps and queues. Off the audio thread.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(config: EngineConfig) -> Result<(EngineHandle, EngineCore), AudioError> {
        let sr = config.sample_rate;
        if !(8_000..=192_000).contains(&sr) {
            return Err(invalid(
                "sample_rate",
                sr,
                "must be within 8000 ..= 192000 Hz",
            ));
        }
        let block = config.block_frames;
        if !(16..=4096).contains(&block) {
            return Err(invalid("block_frames", block, "must be within 16 ..= 4096"));
        }
        if !(config.crossfade_ms.is_finite() && (1.0..=2000.0).contains(&config.crossfade_ms)) {
            return Err(invalid(
                "crossfade_ms",
                config.crossfade_ms,
                "must be within 1 ..= 2000",
            ));
        }
        if !(config.max_file_seconds.is_finite() && config.max_file_seconds > 0.0) {
            return Err(invalid(
                "max_file_seconds",
                config.max_file_seconds,
                "must be > 0",
            ));
        }
        for (field, v) in [
            ("record_ring_seconds", config.record_ring_seconds),
            ("stream_ring_seconds", config.stream_ring_seconds),
        ] {
            if !(v.is_finite() && (0.05..=60.0).contains(&v)) {
                return Err(invalid(field, v, "must be within 0.05 ..= 60 s"));
            }
        }
        if !(config.master.ir_gain_db.is_finite() && config.master.ir_gain_db.abs() <= 48.0) {
            return Err(invalid(
                "master.ir_gain_db",
                config.master.ir_gain_db,
                "must be within -48 ..= 48 dB",
            ));
        }
        let m = &config.master;
        let mut chain = build_chain(&m.chain, &m.base_dir, sr, block, &config.limits)?;
        let conv = match &m.impulse_response {
            Some(p) => Some(build_convolver(
                p,
                sr,
                block,
                m.ir_mode,
                m.ir_gain_db,
                &config.limits,
            )?),
            None => None,
        };
        let limiter = match &m.limiter {
            Some(l) => {
                // Validate through the chain builder (its errors name the bad field), then
                // keep a bare limiter for the very end of the master section.
                let check = ChainConfig {
                    sample_rate: sr,
                    max_block: block,
                    smoothing_ms: 20.0,
                    stages: vec![StageConfig::Limiter(l.clone())],
                };
                Chain::build(&check, &m.base_dir, &config.limits)?;
                let ramp = (0.02 * sr as f64).round() as u32;
                Some(Limiter::new(l, sr as f64, ramp))
            }
            None => None,
        };

        let mut voices = Voices::new(sr, config.seed);
        let mut gain_spec_value = ids::MASTER_GAIN.spec().default;
        let mut reverb_mix = ids::MASTER_REVERB_MIX.spec().default;
        let bank = ControlBank::new();
        for (name, v) in &config.initial {
            let id = controls::control_id(name)?;
            let v = bank.store(id, *v)?;
            voices.snap(id, v);
            match id {
                ids::MASTER_GAIN => gain_spec_value = v,
                ids::MASTER_REVERB_MIX => reverb_mix = v,
                _ => {}
            }
        }
        // Initial values are applied already; nothing is pending.
        bank.drain(|_, _| {});
        set_reverb_mix(&mut chain, reverb_mix);
        chain.reset();

        let chain_latency = chain.latency()
            + conv.as_deref().map_or(0, Processor::latency)
            + limiter.as_ref().map_or(0, Processor::latency);
        let fade = ((config.crossfade_ms as f64 * 1e-3 * sr as f64).round() as u32).max(1);
        let (cmd_tx, cmd_rx) = RingBuffer::new(COMMAND_CAPACITY);
        let (garbage_tx, garbage_rx) = RingBuffer::new(GARBAGE_CAPACITY);
        let monitor = Arc::new(MonitorMailbox::new());
        let (record_tap, record_shared) = record::record_ring(sr, config.record_ring_seconds);
        let (stream_tap, stream_shared) = stream::stream_ring(sr, config.stream_ring_seconds);
        let gain_spec = ids::MASTER_GAIN.spec();
        let shared = Arc::new(Shared {
            sample_rate: sr,
            block_frames: block,
            chain_latency,
            crossfade_ms: config.crossfade_ms,
            limits: config.limits.clone(),
            max_file_seconds: config.max_file_seconds,
            ir_mode: m.ir_mode,
            controls: bank,
            commands: Mutex::new(cmd_tx),
            garbage: Mutex::new(garbage_rx),
            monitor: Arc::clone(&monitor),
            record: record_shared,
            stream: stream_shared,
            stats: Stats {
                blocks: AtomicU64::new(0),
                non_finite: AtomicU64::new(0),
                swaps: AtomicU64::new(0),
            },
        });
        let core = EngineCore {
            shared: Arc::clone(&shared),
            commands: cmd_rx,
            garbage: garbage_tx,
            voices,
            chain: Swappable::new(Some(chain), block, fade),
            conv: Swappable::new(conv, block, fade),
            limiter,
            gain: Ramp::new(gain_spec_value, gain_spec.ramp_samples(sr)),
            reverb_mix,
            in_l: vec![0.0; block].into_boxed_slice(),
            in_r: vec![0.0; block].into_boxed_slice(),
            out_l: vec![0.0; block].into_boxed_slice(),
            out_r: vec![0.0; block].into_boxed_slice(),
            pos: 0,
            analyser: Analyser::new(sr, monitor),
            record: record_tap,
            stream: stream_tap,
        };
        Ok((EngineHandle { shared }, core))
    }
}

impl EngineHandle {
    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.shared.sample_rate
    }

    /// Frames per internal block.
    pub fn block_frames(&self) -> usize {
        self.shared.block_frames
    }

    /// Resolves a `voice.control` name once (off the audio thread). Unknown names give an
    /// error listing every valid name.
    pub fn control_id(&self, name: &str) -> Result<ControlId, AudioError> {
        controls::control_id(name)
    }

    /// Sets a control (clamped into its range; the value applied is returned). Never
    /// blocks; the newest value per control wins if several arrive within one block.
    pub fn set(&self, id: ControlId, value: f32) -> Result<f32, AudioError> {
        self.shared.controls.store(id, value)
    }

    /// [`EngineHandle::control_id`] then [`EngineHandle::set`].
    pub fn set_by_name(&self, name: &str, value: f32) -> Result<f32, AudioError> {
        self.set(controls::control_id(name)?, value)
    }

    /// The latest value set for a control (the target; the audio thread ramps towards it).
    pub fn get(&self, id: ControlId) -> f32 {
        self.shared.controls.load(id)
    }

    /// Number of controls.
    pub fn control_count(&self) -> usize {
        NUM_CONTROLS
    }

    fn send(&self, cmd: Command) -> Result<(), AudioError> {
        self.collect_garbage();
        let what = cmd.what();
        let mut tx = self
            .shared
            .commands
            .lock()
            .map_err(|_| AudioError::QueueFull { what })?;
        tx.push(cmd).map_err(|_| AudioError::QueueFull { what })
    }

    /// Drops (here, off the audio thread) everything the audio thread has retired.
    /// Returns how many objects were dropped.
    pub fn collect_garbage(&self) -> usize {
        let Ok(mut rx) = self.shared.garbage.lock() else {
            return 0;
        };
        let mut n = 0;
        while rx.pop().is_ok() {
            n += 1;
        }
        n
    }

    /// Builds a new master chain from `cfg` (its `sample_rate`/`max_block` are replaced by
    /// the engine's) off the audio thread and crossfades to it. On error the running chain
    /// keeps playing unchanged.
    pub fn set_chain(&self, cfg: &ChainConfig, base_dir: &Path) -> Result<(), AudioError> {
        let mut chain = build_chain(
            cfg,
            base_dir,
            self.shared.sample_rate,
            self.shared.block_frames,
            &self.shared.limits,
        )?;
        set_reverb_mix(&mut chain, self.get(ids::MASTER_REVERB_MIX));
        chain.reset();
        self.send(Command::Chain(chain))
    }

    /// Reads a chain file (TOML) and crossfades to it; see [`EngineHandle::set_chain`].
    pub fn set_chain_file(&self, path: &Path) -> Result<(), AudioError> {
        let cfg = ChainConfig::from_file(path)?;
        self.set_chain(&cfg, path.parent().unwrap_or(Path::new(".")))
    }

    /// Loads an impulse response (WAV at the engine's rate) off the audio thread and
    /// crossfades the convolution stage to it; `None` crossfades to bypass. On error the
    /// running convolution keeps playing unchanged.
    pub fn set_impulse_response(
        &self,
        path: Option<&Path>,
        gain_db: f32,
    ) -> Result<(), AudioError> {
        if !(gain_db.is_finite() && gain_db.abs() <= 48.0) {
            return Err(invalid(
                "ir gain_db",
                gain_db,
                "must be within -48 ..= 48 dB",
            ));
        }
        let conv = match path {
            Some(p) => Some(build_convolver(
                p,
                self.shared.sample_rate,
                self.shared.block_frames,
                self.shared.ir_mode,
                gain_db,
                &self.shared.limits,
            )?),
            None => None,
        };
        self.send(Command::ImpulseResponse(conv))
    }

    /// Like [`EngineHandle::set_impulse_response`] with an IR given as samples (one or two
    /// channels at the engine's rate).
    pub fn set_impulse_response_samples(&self, ir: &[Vec<f32>]) -> Result<(), AudioError> {
        let frames = ir.iter().map(Vec::len).max().unwrap_or(0);
        if frames > self.shared.limits.max_ir_frames {
            return Err(tutti_dsp::DspError::IrTooLong {
                path: "<memory>".into(),
                frames,
                limit: self.shared.limits.max_ir_frames,
            }
            .into());
        }
        let part = Partitioning::for_block(self.shared.ir_mode, self.shared.block_frames);
        let conv = Box::new(Convolver::new(ir, part, 1.0)?);
        self.send(Command::ImpulseResponse(Some(conv)))
    }

    fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            target_rate: self.shared.sample_rate,
            max_seconds: self.shared.max_file_seconds,
        }
    }

    /// Decodes an audio file (WAV, FLAC, MP3, Ogg Vorbis) off the audio thread.
    pub fn decode(&self, path: &Path) -> Result<Clip, AudioError> {
        decode::decode_file(path, &self.decode_options())
    }

    /// Decodes `path` and plays it on the `player` voice (after fading out what plays).
    pub fn play_file(&self, path: &Path, looped: bool) -> Result<(), AudioError> {
        let clip = self.decode(path)?;
        self.play_clip(clip, looped)
    }

    /// Plays an already decoded clip (resampled to the engine's rate if needed).
    pub fn play_clip(&self, mut clip: Clip, looped: bool) -> Result<(), AudioError> {
        if clip.sample_rate != self.shared.sample_rate {
            clip.left = decode::resample(&clip.left, clip.sample_rate, self.shared.sample_rate);
            clip.right = decode::resample(&clip.right, clip.sample_rate, self.shared.sample_rate);
            clip.sample_rate = self.shared.sample_rate;
        }
        self.send(Command::Play {
            clip: Box::new(clip),
            looped,
        })
    }

    /// Fades the player out.
    pub fn stop_player(&self) -> Result<(), AudioError> {
        self.send(Command::StopPlayer)
    }

    /// Decodes `path` and makes it the granular voice's source (mono mix).
    pub fn set_grain_source_file(&self, path: &Path) -> Result<(), AudioError> {
        let clip = self.decode(path)?;
        let src = GrainSource::from_mono(clip.mono(), self.shared.sample_rate);
        self.send(Command::GrainSource(Box::new(src)))
    }

    /// Switches the granular voice back to its internal wavetable.
    pub fn set_grain_source_internal(&self, seed: u32) -> Result<(), AudioError> {
        let src = GrainSource::internal(self.shared.sample_rate, seed);
        self.send(Command::GrainSource(Box::new(src)))
    }

    /// Starts recording the output to a 32-bit float stereo WAV file.
    pub fn start_recording(&self, path: &Path) -> Result<Recording, AudioError> {
        record::start(&self.shared.record, path)
    }

    /// Opens the live PCM stream tap (one reader at a time).
    pub fn stream_tap(&self) -> Result<StreamReader, AudioError> {
        stream::open_reader(&self.shared.stream)
    }

    /// The newest monitoring frame (levels and spectrum), if any was produced yet.
    pub fn latest_monitor(&self) -> Option<MonitorFrame> {
        self.shared.monitor.latest()
    }

    /// Input-to-output latency.
    pub fn latency(&self) -> Latency {
        let total = self.shared.block_frames + self.shared.chain_latency;
        Latency {
            block_samples: self.shared.block_frames,
            chain_samples: self.shared.chain_latency,
            total_samples: total,
            total_ms: total as f64 * 1000.0 / self.shared.sample_rate as f64,
        }
    }

    /// Crossfade length of swaps in samples.
    pub fn crossfade_samples(&self) -> u32 {
        ((self.shared.crossfade_ms as f64 * 1e-3 * self.shared.sample_rate as f64).round() as u32)
            .max(1)
    }

    /// Counters of the audio thread.
    pub fn stats(&self) -> EngineStats {
        let s = &self.shared.stats;
        EngineStats {
            blocks: s.blocks.load(Ordering::Relaxed),
            non_finite_samples: s.non_finite.load(Ordering::Relaxed),
            swaps: s.swaps.load(Ordering::Relaxed),
        }
    }
}

impl EngineCore {
    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.shared.sample_rate
    }

    /// Frames per internal block.
    pub fn block_frames(&self) -> usize {
        self.shared.block_frames
    }

    /// The value a control has *now* on the audio thread (after smoothing; for
    /// `master.reverb_mix`, the target handed to the reverb, which ramps it over the
    /// master chain's `smoothing_ms`).
    pub fn control_value(&self, id: ControlId) -> f32 {
        match id {
            ids::MASTER_GAIN => self.gain.value(),
            ids::MASTER_REVERB_MIX => self.reverb_mix,
            _ => self.voices.value(id).unwrap_or(f32::NAN),
        }
    }

    /// Renders `left.len()` frames of output into `left`/`right` (overwriting them).
    /// Any length; `left` and `right` must have the same length (the shorter one wins).
    /// **Real-time safe**: never allocates, frees, locks, logs or blocks.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        left.fill(0.0);
        right.fill(0.0);
        self.process_input(left, right);
    }

    /// Like [`EngineCore::process`], but `left`/`right` hold input on entry (e.g. a live
    /// microphone) that is mixed with the voices into the master chain; they hold the
    /// output on return. **Real-time safe.**
    pub fn process_input(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len());
        let block = self.shared.block_frames;
        let mut off = 0;
        while off < n {
            let k = (n - off).min(block - self.pos);
            let p = self.pos;
            self.in_l[p..p + k].copy_from_slice(&left[off..off + k]);
            self.in_r[p..p + k].copy_from_slice(&right[off..off + k]);
            left[off..off + k].copy_from_slice(&self.out_l[p..p + k]);
            right[off..off + k].copy_from_slice(&self.out_r[p..p + k]);
            self.pos += k;
            off += k;
            if self.pos == block {
                self.render_block();
                self.pos = 0;
            }
        }
    }

    fn apply_control(&mut self, id: ControlId, v: f32) {
        match id {
            ids::MASTER_GAIN => self.gain.set(v),
            ids::MASTER_REVERB_MIX => {
                self.reverb_mix = v;
                self.chain.for_each(|c| set_reverb_mix(c, v));
            }
            _ => self.voices.set(id, v),
        }
    }

    fn accepts(&self, cmd: &Command) -> bool {
        match cmd {
            Command::Chain(_) => self.chain.ready(),
            Command::ImpulseResponse(_) => self.conv.ready(),
            Command::GrainSource(_) => self.voices.granular.accepts_source(),
            Command::Play { .. } => self.voices.player.accepts_clip(),
            Command::StopPlayer => true,
        }
    }

    fn handle_commands(&mut self) {
        // Bounded work per block; a command that cannot be taken now waits in the queue.
        for _ in 0..4 {
            let ok = match self.commands.peek() {
                Ok(cmd) => self.accepts(cmd),
                Err(_) => false,
            };
            if !ok {
                break;
            }
            let Ok(cmd) = self.commands.pop() else { break };
            match cmd {
                Command::Chain(mut c) => {
                    set_reverb_mix(&mut c, self.reverb_mix);
                    self.chain.begin(Some(c));
                }
                Command::ImpulseResponse(c) => self.conv.begin(c),
                Command::GrainSource(s) => {
                    // Accepted only when nothing is pending, so nothing is displaced.
                    if let Some(old) = self.voices.granular.replace_source(s) {
                        self.voices.granular.stash_retired(old);
                    }
                }
                Command::Play { clip, looped } => {
                    if let Some(old) = self.voices.player.play(clip, looped) {
                        self.voices.player.stash_retired(old);
                    }
                }
                Command::StopPlayer => self.voices.player.stop(),
            }
        }
    }

    fn collect_retired(&mut self) {
        if self.garbage.is_full() {
            return;
        }
        if let Some(c) = self.chain.retired.take() {
            if let Err(rtrb::PushError::Full(Garbage::Chain(c))) =
                self.garbage.push(Garbage::Chain(c))
            {
                self.chain.retired = Some(c);
            }
        }
        if let Some(c) = self.conv.retired.take() {
            if let Err(rtrb::PushError::Full(Garbage::Convolver(c))) =
                self.garbage.push(Garbage::Convolver(c))
            {
                self.conv.retired = Some(c);
            }
        }
        if let Some(s) = self.voices.granular.take_retired_source() {
            if let Err(rtrb::PushError::Full(Garbage::GrainSource(s))) =
                self.garbage.push(Garbage::GrainSource(s))
            {
                self.voices.granular.stash_retired(s);
            }
        }
        if let Some(c) = self.voices.player.take_retired() {
            if let Err(rtrb::PushError::Full(Garbage::Clip(c))) =
                self.garbage.push(Garbage::Clip(c))
            {
                self.voices.player.stash_retired(c);
            }
        }
    }

    fn render_block(&mut self) {
        // Flush subnormals to zero for the whole block (voices included); restored on return.
        let _ftz = FlushDenormals::new();
        let mut pending = [(ids::MASTER_GAIN, 0.0f32); NUM_CONTROLS];
        let mut n = 0;
        self.shared.controls.drain(|id, v| {
            pending[n] = (id, v);
            n += 1;
        });
        for &(id, v) in &pending[..n] {
            self.apply_control(id, v);
        }
        self.handle_commands();

        let block = self.shared.block_frames;
        let (l, r) = (&mut self.out_l[..block], &mut self.out_r[..block]);
        l.copy_from_slice(&self.in_l[..block]);
        r.copy_from_slice(&self.in_r[..block]);
        self.voices.render(l, r);
        let mut swaps = 0;
        swaps += u64::from(self.chain.process(l, r));
        swaps += u64::from(self.conv.process(l, r));
        if self.gain.is_ramping() {
            for (a, b) in l.iter_mut().zip(r.iter_mut()) {
                let g = self.gain.next_value();
                *a *= g;
                *b *= g;
            }
        } else {
            let g = self.gain.value();
            if g != 1.0 {
                for (a, b) in l.iter_mut().zip(r.iter_mut()) {
                    *a *= g;
                    *b *= g;
                }
            }
        }
        if let Some(lim) = self.limiter.as_mut() {
            lim.process(l, r);
        }
        let mut bad = 0u64;
        for s in l.iter_mut().chain(r.iter_mut()) {
            if !s.is_finite() {
                *s = 0.0;
                bad += 1;
            }
        }
        self.analyser.push(l, r);
        self.record.push(l, r);
        self.stream.push(l, r);
        self.collect_retired();

        let st = &self.shared.stats;
        st.blocks.fetch_add(1, Ordering::Relaxed);
        if bad > 0 {
            st.non_finite.fetch_add(bad, Ordering::Relaxed);
        }
        if swaps > 0 {
            st.swaps.fetch_add(swaps, Ordering::Relaxed);
        }
    }

    /// Latency of the master chain now (limiter look-ahead etc.), samples.
    pub fn chain_latency(&self) -> usize {
        self.chain.latency()
            + self.conv.latency()
            + self.limiter.as_ref().map_or(0, Processor::latency)
    }
}
