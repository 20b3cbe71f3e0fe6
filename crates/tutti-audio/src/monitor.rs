//! Level and spectrum monitoring of the engine's output, about 30 frames a second.
//!
//! The [`Analyser`] runs **on the audio thread**, after the master chain: it keeps peak and
//! sum of squares per channel and the last 2048 samples of the mid signal `(L+R)/2`; every
//! `sample_rate / 30` samples it applies a Hann window, runs a 2048-point real FFT
//! (`realfft`, plan and scratch buffers allocated up front — about 10 µs, 30 times a second)
//! and folds the bins into [`BANDS`] log-spaced bands from 20 Hz to 20 kHz, each the loudest
//! bin in the band in dBFS (a full-scale sine reads ≈ 0 dBFS). Bands narrower than a bin
//! (below about 100 Hz at 48 kHz) read the magnitude interpolated at their centre.
//!
//! Frames leave through a [`MonitorMailbox`]: a one-slot, lock-free "latest wins" queue
//! (a sequence lock built of atomics). The audio thread overwrites the slot — an old frame
//! nobody read is dropped — and never waits; a reader retries if it raced a write.
//!
//! Must never: allocate, lock, log or block in [`Analyser::push`] or
//! `MonitorMailbox::publish` (audio thread).

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::Serialize;

/// FFT length.
pub const FFT_SIZE: usize = 2048;
/// Number of spectrum bands.
pub const BANDS: usize = 32;
/// Lowest band edge in Hz.
pub const LOW_HZ: f32 = 20.0;
/// Highest band edge in Hz.
pub const HIGH_HZ: f32 = 20_000.0;
/// Floor of every dB figure.
pub const FLOOR_DB: f32 = -120.0;
/// Frames per second.
pub const FRAME_RATE: u32 = 30;

/// One monitoring frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorFrame {
    /// Frame counter since the engine started (gaps = frames nobody read).
    pub seq: u64,
    /// Engine time at the end of the analysed window, in seconds.
    pub time_s: f64,
    /// Peak |sample| per channel since the previous frame (linear).
    pub peak: [f32; 2],
    /// RMS per channel since the previous frame (linear).
    pub rms: [f32; 2],
    /// `peak` in dBFS.
    pub peak_dbfs: [f32; 2],
    /// `rms` in dBFS.
    pub rms_dbfs: [f32; 2],
    /// Spectrum of `(L+R)/2`: the loudest bin of each band, dBFS.
    pub bands_dbfs: [f32; BANDS],
    /// Centre frequency of each band (geometric mean of its edges), Hz.
    pub bands_hz: [f32; BANDS],
}

/// Lower edge of band `i` (`i = BANDS` gives the top edge), Hz.
pub fn band_edge_hz(i: usize) -> f32 {
    LOW_HZ * (HIGH_HZ / LOW_HZ).powf(i as f32 / BANDS as f32)
}

/// Centre of band `i`, Hz.
pub fn band_centre_hz(i: usize) -> f32 {
    (band_edge_hz(i) * band_edge_hz(i + 1)).sqrt()
}

fn db(x: f32) -> f32 {
    if x > 0.0 {
        (20.0 * x.log10()).max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}

// Slot layout: peak[2], rms[2], bands[BANDS], time (f64 as two u32).
const SLOT_WORDS: usize = 4 + BANDS + 2;

/// The latest-frame mailbox (see the module docs). Shared between the audio thread (one
/// writer) and any number of readers.
#[derive(Debug)]
pub struct MonitorMailbox {
    seq: AtomicU64,
    words: [AtomicU32; SLOT_WORDS],
}

impl Default for MonitorMailbox {
    fn default() -> Self {
        Self::new()
    }
}

impl MonitorMailbox {
    /// An empty mailbox.
    pub fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Audio thread: overwrites the slot. Wait-free.
    fn publish(&self, peak: [f32; 2], rms: [f32; 2], bands: &[f32; BANDS], time_s: f64) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let w = &self.words;
        w[0].store(peak[0].to_bits(), Ordering::Relaxed);
        w[1].store(peak[1].to_bits(), Ordering::Relaxed);
        w[2].store(rms[0].to_bits(), Ordering::Relaxed);
        w[3].store(rms[1].to_bits(), Ordering::Relaxed);
        for (i, b) in bands.iter().enumerate() {
            w[4 + i].store(b.to_bits(), Ordering::Relaxed);
        }
        let t = time_s.to_bits();
        w[4 + BANDS].store(t as u32, Ordering::Relaxed);
        w[5 + BANDS].store((t >> 32) as u32, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The newest frame, or `None` before the first one. Never blocks the writer; retries a
    /// few times if it raced a write.
    pub fn latest(&self) -> Option<MonitorFrame> {
        for _ in 0..64 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 == 0 {
                return None;
            }
            if s1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let vals: [u32; SLOT_WORDS] =
                std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            let f = |i: usize| f32::from_bits(vals[i]);
            let peak = [f(0), f(1)];
            let rms = [f(2), f(3)];
            let bands_dbfs: [f32; BANDS] = std::array::from_fn(|i| f(4 + i));
            let time_s = f64::from_bits(vals[4 + BANDS] as u64 | ((vals[5 + BANDS] as u64) << 32));
            return Some(MonitorFrame {
                seq: s1 / 2,
                time_s,
                peak,
                rms,
                peak_dbfs: [db(peak[0]), db(peak[1])],
                rms_dbfs: [db(rms[0]), db(rms[1])],
                bands_dbfs,
                bands_hz: std::array::from_fn(band_centre_hz),
            });
        }
        None
    }
}

/// Audio-thread side: accumulates levels and history, publishes frames.
pub struct Analyser {
    mailbox: Arc<MonitorMailbox>,
    fft: Arc<dyn RealToComplex<f32>>,
    history: Box<[f32]>,
    write: usize,
    window: Box<[f32]>,
    input: Box<[f32]>,
    spectrum: Box<[Complex<f32>]>,
    scratch: Box<[Complex<f32>]>,
    /// For each band: first bin and one past the last bin; an empty range means the band
    /// is narrower than a bin and reads the spectrum interpolated at `band_pos` (in bins).
    band_bins: [(usize, usize); BANDS],
    band_pos: [f32; BANDS],
    bands: [f32; BANDS],
    hop: usize,
    since: usize,
    peak: [f32; 2],
    sumsq: [f64; 2],
    samples_total: u64,
    sample_rate: f64,
}

impl std::fmt::Debug for Analyser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyser")
            .field("hop", &self.hop)
            .finish_non_exhaustive()
    }
}

impl Analyser {
    /// An analyser publishing into `mailbox`. Allocates (off the audio thread).
    pub fn new(sample_rate: u32, mailbox: Arc<MonitorMailbox>) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        let spectrum = fft.make_output_vec().into_boxed_slice();
        let scratch = fft.make_scratch_vec().into_boxed_slice();
        let window: Box<[f32]> = (0..FFT_SIZE)
            .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / FFT_SIZE as f32).cos())
            .collect();
        let bin_hz = sample_rate as f32 / FFT_SIZE as f32;
        let nyquist_bin = FFT_SIZE / 2;
        let band_bins = std::array::from_fn(|b| {
            let lo = (band_edge_hz(b) / bin_hz).ceil() as usize;
            let hi = (band_edge_hz(b + 1) / bin_hz).ceil() as usize;
            (lo.clamp(1, nyquist_bin), hi.clamp(1, nyquist_bin + 1))
        });
        let band_pos = std::array::from_fn(|b| {
            (band_centre_hz(b) / bin_hz).clamp(1.0, (nyquist_bin - 1) as f32)
        });
        Self {
            mailbox,
            fft,
            history: vec![0.0; FFT_SIZE].into_boxed_slice(),
            write: 0,
            window,
            input: vec![0.0; FFT_SIZE].into_boxed_slice(),
            spectrum,
            scratch,
            band_bins,
            band_pos,
            bands: [FLOOR_DB; BANDS],
            hop: (sample_rate / FRAME_RATE).max(1) as usize,
            since: 0,
            peak: [0.0; 2],
            sumsq: [0.0; 2],
            samples_total: 0,
            sample_rate: sample_rate as f64,
        }
    }

    /// Audio thread: feeds one block of output. Allocation-free.
    pub fn push(&mut self, left: &[f32], right: &[f32]) {
        for (&l, &r) in left.iter().zip(right) {
            self.peak[0] = self.peak[0].max(l.abs());
            self.peak[1] = self.peak[1].max(r.abs());
            self.sumsq[0] += (l as f64) * (l as f64);
            self.sumsq[1] += (r as f64) * (r as f64);
            self.history[self.write] = 0.5 * (l + r);
            self.write = (self.write + 1) % FFT_SIZE;
            self.since += 1;
            self.samples_total += 1;
            if self.since >= self.hop {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        let n = self.since as f64;
        let rms = [
            (self.sumsq[0] / n).sqrt() as f32,
            (self.sumsq[1] / n).sqrt() as f32,
        ];
        // Oldest sample first.
        for i in 0..FFT_SIZE {
            self.input[i] = self.history[(self.write + i) % FFT_SIZE] * self.window[i];
        }
        let ok = self
            .fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .is_ok();
        // Hann coherent gain 0.5: a sine of amplitude A peaks at |X| = A·N/4.
        let scale = 4.0 / FFT_SIZE as f32;
        for (b, &(lo, hi)) in self.band_bins.iter().enumerate() {
            let mut m = 0.0f32;
            if ok && hi > lo {
                for c in &self.spectrum[lo..hi.min(self.spectrum.len())] {
                    m = m.max(c.norm());
                }
            } else if ok {
                // Narrower than a bin: interpolate the magnitude at the band's centre.
                let p = self.band_pos[b];
                let i = p as usize;
                let f = p - i as f32;
                let (a, c) = (self.spectrum[i].norm(), self.spectrum[i + 1].norm());
                m = a + (c - a) * f;
            }
            self.bands[b] = db(m * scale);
        }
        let time_s = self.samples_total as f64 / self.sample_rate;
        self.mailbox.publish(self.peak, rms, &self.bands, time_s);
        self.since = 0;
        self.peak = [0.0; 2];
        self.sumsq = [0.0; 2];
    }
}
