//! Sinks: where the engine's blocks go in real time.
//!
//! * [`NullSink`] — runs [`EngineCore::process`] on its own thread at real-time pace,
//!   discarding the audio (monitoring, recording and the live stream still see it). Its
//!   clock is a sleep *between* blocks, outside `process`. The binary uses it on machines
//!   without audio hardware.
//! * The sound card, through `cpal` (cargo feature `cpal`, on by default): the device's
//!   callback calls `process` for whatever buffer size the device asks.
//!
//! [`Output::start`] with [`OutputChoice::Auto`] tries the sound card and, when there is
//! none (or it cannot be opened at the engine's rate), logs that **once per process** and
//! falls back to the null sink, so a show always runs. On Linux it first reads
//! `/proc/asound/cards` ([`sound_cards`]): when the kernel has no sound card, it goes
//! straight to the null sink without opening ALSA at all, because the ALSA library prints
//! its own errors to stderr while it looks for a device (about ten `ALSA lib …` lines) and
//! that output cannot be silenced from safe Rust. `OutputChoice::SoundCard` always asks
//! the sound library (a user-space sound server may still provide a device).
//!
//! Must never: allocate, lock, log or block inside the audio callback / the null sink's
//! block (only `process` runs there; the sleep is between blocks).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::EngineCore;
use crate::AudioError;

/// Which sink to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputChoice {
    /// The sound card if one can be opened, else the null sink (warned once).
    #[default]
    Auto,
    /// The sound card or an error.
    SoundCard,
    /// The null sink.
    Null,
}

/// The sink actually running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// A sound card, by device name.
    SoundCard(String),
    /// The null sink.
    Null,
}

/// Counters shared with a sink's audio thread.
#[derive(Debug, Default)]
struct SinkStats {
    blocks: AtomicU64,
    late: AtomicU64,
}

/// The null sink (see the module docs).
#[derive(Debug)]
pub struct NullSink {
    stop: Arc<AtomicBool>,
    stats: Arc<SinkStats>,
    thread: Option<JoinHandle<EngineCore>>,
}

impl NullSink {
    /// Starts a thread that renders one block per block duration.
    pub fn start(mut core: EngineCore) -> Result<Self, AudioError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SinkStats::default());
        let block = core.block_frames();
        let period = Duration::from_secs_f64(block as f64 / core.sample_rate() as f64);
        let thread = {
            let stop = Arc::clone(&stop);
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name("tutti-audio-null".into())
                .spawn(move || {
                    let mut l = vec![0.0f32; block];
                    let mut r = vec![0.0f32; block];
                    let mut deadline = Instant::now();
                    while !stop.load(Ordering::Acquire) {
                        core.process(&mut l, &mut r);
                        stats.blocks.fetch_add(1, Ordering::Relaxed);
                        deadline += period;
                        let now = Instant::now();
                        if deadline > now {
                            std::thread::sleep(deadline - now);
                        } else if now - deadline > period * 8 {
                            // Far behind (machine suspended, debugger): resynchronise
                            // instead of racing to catch up.
                            stats.late.fetch_add(1, Ordering::Relaxed);
                            deadline = now;
                        }
                    }
                    core
                })
                .map_err(|source| AudioError::Thread {
                    what: "null sink",
                    source,
                })?
        };
        Ok(Self {
            stop,
            stats,
            thread: Some(thread),
        })
    }

    /// Blocks rendered so far.
    pub fn blocks(&self) -> u64 {
        self.stats.blocks.load(Ordering::Relaxed)
    }

    /// Times the sink fell more than 8 blocks behind and resynchronised.
    pub fn resyncs(&self) -> u64 {
        self.stats.late.load(Ordering::Relaxed)
    }

    /// Stops the thread and returns the engine core.
    pub fn stop(mut self) -> Option<EngineCore> {
        self.halt()
    }

    fn halt(&mut self) -> Option<EngineCore> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A running sink.
#[derive(Debug)]
pub struct Output {
    kind: OutputKind,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Null(NullSink),
    #[cfg(feature = "cpal")]
    Card(card::CardSink),
}

/// A sound-card failure, with the core handed back when it could be saved.
type CardErr = Box<(AudioError, Option<EngineCore>)>;

static NO_CARD_WARNED: AtomicBool = AtomicBool::new(false);

fn warn_no_card_once(reason: &str) {
    if !NO_CARD_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            reason,
            "no usable sound card; the embedded engine falls back to the null sink \
             (audio is rendered, recorded, streamed and monitored, but not played here)"
        );
    }
}

/// What the kernel says about sound cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundCards {
    /// At least one card is listed.
    Present,
    /// None: why, in words (for the one warning).
    Absent(String),
    /// Cannot tell (not Linux, or the list could not be read): ask the sound library.
    Unknown,
}

/// Where Linux lists its ALSA sound cards.
pub const ASOUND_CARDS: &str = "/proc/asound/cards";

/// Reads `/proc/asound/cards` at `path` ([`ASOUND_CARDS`]): missing (no ALSA in the
/// kernel), empty or `--- no soundcards ---` means [`SoundCards::Absent`].
pub fn sound_cards(path: &std::path::Path) -> SoundCards {
    match std::fs::read_to_string(path) {
        Ok(text) => sound_cards_in(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SoundCards::Absent(format!(
            "{} does not exist (no sound support in this system's kernel)",
            path.display()
        )),
        Err(_) => SoundCards::Unknown,
    }
}

/// [`sound_cards`] for a file's text.
pub fn sound_cards_in(path: &std::path::Path, text: &str) -> SoundCards {
    let text = text.trim();
    if text.is_empty() || text.contains("--- no soundcards ---") {
        SoundCards::Absent(format!("{} lists no sound card", path.display()))
    } else {
        SoundCards::Present
    }
}

impl Output {
    /// Starts the chosen sink with `core` (see the module docs for the fallback).
    pub fn start(core: EngineCore, choice: OutputChoice) -> Result<Self, AudioError> {
        match choice {
            OutputChoice::Null => Ok(Self {
                kind: OutputKind::Null,
                inner: Inner::Null(NullSink::start(core)?),
            }),
            OutputChoice::SoundCard => Self::card(core).map_err(|b| b.0),
            OutputChoice::Auto => Self::auto(core, Self::kernel_cards()),
        }
    }

    /// The kernel's card list where there is one to read (Linux with the sound library).
    fn kernel_cards() -> SoundCards {
        if cfg!(all(target_os = "linux", feature = "cpal")) {
            sound_cards(std::path::Path::new(ASOUND_CARDS))
        } else {
            SoundCards::Unknown
        }
    }

    /// [`OutputChoice::Auto`] given what the kernel says: no card → the null sink at once
    /// (the sound library is never opened); otherwise try the card and fall back.
    fn auto(core: EngineCore, cards: SoundCards) -> Result<Self, AudioError> {
        if let SoundCards::Absent(why) = cards {
            warn_no_card_once(&why);
            return Ok(Self {
                kind: OutputKind::Null,
                inner: Inner::Null(NullSink::start(core)?),
            });
        }
        match Self::card(core).map_err(|b| *b) {
            Ok(o) => Ok(o),
            Err((e, Some(core))) => {
                warn_no_card_once(&e.to_string());
                Ok(Self {
                    kind: OutputKind::Null,
                    inner: Inner::Null(NullSink::start(core)?),
                })
            }
            Err((e, None)) => Err(e),
        }
    }

    #[cfg(feature = "cpal")]
    fn card(core: EngineCore) -> Result<Self, CardErr> {
        let (sink, name) = card::CardSink::start(core).map_err(Box::new)?;
        Ok(Self {
            kind: OutputKind::SoundCard(name),
            inner: Inner::Card(sink),
        })
    }

    #[cfg(not(feature = "cpal"))]
    fn card(core: EngineCore) -> Result<Self, CardErr> {
        Err(Box::new((
            AudioError::Device("built without the `cpal` feature".into()),
            Some(core),
        )))
    }

    /// Which sink runs.
    pub fn kind(&self) -> &OutputKind {
        &self.kind
    }

    /// Blocks (null sink) or device callbacks (sound card) so far.
    pub fn blocks(&self) -> u64 {
        match &self.inner {
            Inner::Null(n) => n.blocks(),
            #[cfg(feature = "cpal")]
            Inner::Card(c) => c.callbacks(),
        }
    }

    /// Stops the sink. The null sink gives the core back; a sound card drops it with its
    /// stream (after the device stopped calling it).
    pub fn stop(self) -> Option<EngineCore> {
        match self.inner {
            Inner::Null(n) => n.stop(),
            #[cfg(feature = "cpal")]
            Inner::Card(c) => {
                c.stop();
                None
            }
        }
    }
}

#[cfg(feature = "cpal")]
mod card {
    //! The `cpal` sound-card sink. The stream lives on its own thread (cpal streams are not
    //! `Send` on every platform); the callback owns the engine core.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

    use crate::engine::EngineCore;
    use crate::AudioError;

    #[derive(Debug)]
    pub(super) struct CardSink {
        stop: SyncSender<()>,
        thread: Option<JoinHandle<()>>,
        callbacks: Arc<AtomicU64>,
    }

    /// Planar scratch the callback renders into, then interleaves from. The core arrives
    /// through a one-slot lock-free queue once the stream is known to work (so a failed
    /// open can hand the core back for the null-sink fallback).
    struct Callback {
        core: Option<EngineCore>,
        incoming: rtrb::Consumer<EngineCore>,
        l: Vec<f32>,
        r: Vec<f32>,
        channels: usize,
        callbacks: Arc<AtomicU64>,
    }

    impl Callback {
        fn fill<T: cpal::SizedSample + cpal::FromSample<f32>>(&mut self, data: &mut [T]) {
            if self.core.is_none() {
                self.core = self.incoming.pop().ok();
            }
            let ch = self.channels.max(1);
            let Some(core) = self.core.as_mut() else {
                data.fill(T::from_sample(0.0f32));
                return;
            };
            let frames = data.len() / ch;
            let mut done = 0;
            while done < frames {
                let n = (frames - done).min(self.l.len());
                let (l, r) = (&mut self.l[..n], &mut self.r[..n]);
                core.process(l, r);
                for (i, frame) in data[done * ch..(done + n) * ch].chunks_mut(ch).enumerate() {
                    if ch == 1 {
                        frame[0] = T::from_sample(0.5 * (l[i] + r[i]));
                    } else {
                        frame[0] = T::from_sample(l[i]);
                        frame[1] = T::from_sample(r[i]);
                        for s in &mut frame[2..] {
                            *s = T::from_sample(0.0f32);
                        }
                    }
                }
                done += n;
            }
            self.callbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn dev_err(e: impl std::fmt::Display) -> AudioError {
        AudioError::Device(e.to_string())
    }

    type Ready = Result<(), (AudioError, EngineCore)>;

    fn open(
        device: &cpal::Device,
        rate: u32,
        name: &str,
    ) -> Result<cpal::SupportedStreamConfig, AudioError> {
        let configs = device
            .supported_output_configs()
            .map_err(|e| dev_err(format!("{name}: {e}")))?;
        configs
            .filter(|c| {
                matches!(
                    c.sample_format(),
                    cpal::SampleFormat::F32 | cpal::SampleFormat::I16
                )
            })
            .filter(|c| c.channels() >= 1)
            .filter_map(|c| c.try_with_sample_rate(rate))
            .max_by_key(|c| {
                (
                    c.channels() == 2,
                    c.sample_format() == cpal::SampleFormat::F32,
                )
            })
            .ok_or_else(|| {
                dev_err(format!(
                    "{name}: no f32/i16 output configuration at {rate} Hz"
                ))
            })
    }

    fn run(
        core: EngineCore,
        ready: SyncSender<Ready>,
        stop: Receiver<()>,
        callbacks: Arc<AtomicU64>,
    ) {
        let host = cpal::default_host();
        let Some(device) = host.default_output_device() else {
            let _ = ready.send(Err((dev_err("no output device found"), core)));
            return;
        };
        let name = device
            .id()
            .map(|id| id.to_string())
            .unwrap_or_else(|_| "default".into());
        let supported = match open(&device, core.sample_rate(), &name) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err((e, core)));
                return;
            }
        };
        let format = supported.sample_format();
        let config: cpal::StreamConfig = supported.into();
        let (mut core_tx, core_rx) = rtrb::RingBuffer::new(1);
        let block = core.block_frames();
        let mut cb = Callback {
            core: None,
            incoming: core_rx,
            l: vec![0.0; block],
            r: vec![0.0; block],
            channels: config.channels as usize,
            callbacks,
        };
        // Called by cpal off the real-time path.
        let err_fn = |e: cpal::Error| tracing::warn!(error = %e, "sound card stream error");
        let stream = match format {
            cpal::SampleFormat::I16 => device.build_output_stream(
                config,
                move |d: &mut [i16], _: &cpal::OutputCallbackInfo| cb.fill(d),
                err_fn,
                None,
            ),
            _ => device.build_output_stream(
                config,
                move |d: &mut [f32], _: &cpal::OutputCallbackInfo| cb.fill(d),
                err_fn,
                None,
            ),
        };
        let stream = match stream.and_then(|s| s.play().map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err((dev_err(format!("{name}: {e}")), core)));
                return;
            }
        };
        if let Err(rtrb::PushError::Full(core)) = core_tx.push(core) {
            let _ = ready.send(Err((dev_err("internal: core queue full"), core)));
            return;
        }
        let _ = ready.send(Ok(()));
        let _ = stop.recv();
        drop(stream);
    }

    impl CardSink {
        /// Opens the default output device at the engine's rate. On failure the core comes
        /// back with the error (`None` only if the OS refused to start a thread).
        #[allow(clippy::result_large_err)] // boxed by the caller
        pub(super) fn start(
            core: EngineCore,
        ) -> Result<(Self, String), (AudioError, Option<EngineCore>)> {
            let callbacks = Arc::new(AtomicU64::new(0));
            let (ready_tx, ready_rx) = sync_channel::<Ready>(1);
            let (stop_tx, stop_rx) = sync_channel::<()>(1);
            let thread = {
                let callbacks = Arc::clone(&callbacks);
                std::thread::Builder::new()
                    .name("tutti-audio-card".into())
                    .spawn(move || run(core, ready_tx, stop_rx, callbacks))
                    .map_err(|source| {
                        (
                            AudioError::Thread {
                                what: "sound card",
                                source,
                            },
                            None,
                        )
                    })?
            };
            match ready_rx.recv() {
                Ok(Ok(())) => {
                    let name = cpal::default_host()
                        .default_output_device()
                        .and_then(|d| d.id().ok())
                        .map_or_else(|| "default".to_string(), |id| id.to_string());
                    Ok((
                        Self {
                            stop: stop_tx,
                            thread: Some(thread),
                            callbacks,
                        },
                        name,
                    ))
                }
                Ok(Err((e, core))) => {
                    let _ = thread.join();
                    Err((e, Some(core)))
                }
                Err(_) => {
                    let _ = thread.join();
                    Err((
                        AudioError::Device("the sound card thread ended unexpectedly".into()),
                        None,
                    ))
                }
            }
        }

        pub(super) fn callbacks(&self) -> u64 {
            self.callbacks.load(Ordering::Relaxed)
        }

        pub(super) fn stop(mut self) {
            let _ = self.stop.send(());
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_kernel_card_list_is_read() {
        let p = Path::new(ASOUND_CARDS);
        assert_eq!(
            sound_cards_in(p, "--- no soundcards ---\n"),
            SoundCards::Absent("/proc/asound/cards lists no sound card".into())
        );
        assert!(matches!(sound_cards_in(p, "\n"), SoundCards::Absent(_)));
        let one = " 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n                      \
                   HDA Intel PCH at 0xf7f10000 irq 32\n";
        assert_eq!(sound_cards_in(p, one), SoundCards::Present);

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("asound").join("cards");
        match sound_cards(&missing) {
            SoundCards::Absent(why) => {
                assert!(why.contains(&missing.display().to_string()), "{why}");
                assert!(why.contains("does not exist"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let file = dir.path().join("cards");
        std::fs::write(&file, "--- no soundcards ---\n").unwrap();
        assert!(matches!(sound_cards(&file), SoundCards::Absent(_)));
        std::fs::write(&file, one).unwrap();
        assert_eq!(sound_cards(&file), SoundCards::Present);
        // A directory where the file should be cannot be read: let the library decide.
        assert_eq!(sound_cards(dir.path()), SoundCards::Unknown);
    }

    #[test]
    fn no_card_in_the_kernel_means_the_null_sink() {
        let (_handle, core) =
            crate::Engine::new(crate::EngineConfig::default()).expect("an engine");
        let out = Output::auto(core, SoundCards::Absent("test: no card".into())).unwrap();
        assert_eq!(out.kind(), &OutputKind::Null);
        out.stop().expect("the null sink gives the core back");
    }
}
