//! FIR convolution with long impulse responses by partitioned FFT convolution (overlap-save).
//!
//! # Partitioning
//! The IR is cut into *segments*; segment `i` holds `count_i` partitions of `size_i` samples
//! starting at tap `offset_i`, each stored as the spectrum of its zero-padded `2·size_i`-point
//! real FFT. Input spectra live in a *frequency-domain delay line* (FDL) per segment, so one
//! output chunk costs one forward FFT, `count_i` complex multiply-accumulates and one inverse
//! FFT. Spectra are stored as split re/im `f32` arrays so the multiply-accumulate auto-vectorises
//! (compiled for AVX-512 / AVX2+FMA / baseline, picked at run time).
//!
//! * `uniform`: one segment of partitions of `partition` samples (default `max_block`).
//! * `low_latency`: a head segment of 4 partitions of `partition` samples, then segments of 2
//!   partitions of doubling size, up to `max_partition` for the rest of the IR (Gardner-style
//!   non-uniform partitioning). Large partitions make long IRs cheap; the small head keeps the
//!   latency of a small block. By default `max_partition` is `len / 64` rounded to a power of two
//!   within `partition ..= 8192`, the cheapest choice measured (for short IRs this degenerates to
//!   uniform partitioning, which is then cheapest and has the same zero latency).
//!
//! # Zero latency, any call size
//! The head partition is computed on every call from the partially filled current chunk
//! (zero-padded), plus a cached sum of the older partitions, so output is exact with no added
//! latency whatever the call length ([`crate::Processor::latency`] is 0). Calls of exactly the head
//! partition size are the efficient case.
//!
//! # Tail partitions off the critical path
//! A tail segment of size `P` starts a job when `P` input samples have accumulated. Its work
//! (forward FFT, the multiply-accumulates, inverse FFT) is **spread evenly over the next
//! `P / partition` head chunks** (blocks), instead of being done at once; the result lands in an
//! output ring buffer before it is due. The schedule guarantees `offset_i ≥ 2·size_i − partition`,
//! which is exactly the slack this needs. No threads are used: the cost per block is smooth and
//! everything stays on the calling (audio) thread, so a single-core benchmark counts all of it.
//!
//! `process()` never allocates, locks, logs or blocks: FFT plans, scratch space, delay lines and
//! the output ring are all allocated at construction.

use std::path::Path;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::config::ConvolutionMode;
use crate::filter::{fmadd, Isa};
use crate::{DspError, Processor};

/// How to partition an impulse response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioning {
    /// Uniform or low-latency.
    pub mode: ConvolutionMode,
    /// Head (uniform: only) partition size; a power of two ≥ 16.
    pub partition: usize,
    /// Largest tail partition (low-latency); a power of two ≥ `partition`. `None` picks it
    /// from the IR length: `len / 64` rounded up to a power of two, within `partition ..= 8192`
    /// (measured to be the cheapest; see BENCHMARKS.md).
    pub max_partition: Option<usize>,
}

impl Partitioning {
    /// Defaults for a chain with blocks of at most `max_block` samples.
    pub fn for_block(mode: ConvolutionMode, max_block: usize) -> Self {
        let partition = max_block.next_power_of_two().max(16);
        Self {
            mode,
            partition,
            max_partition: None,
        }
    }

    /// The largest partition used for an IR of `len` taps.
    pub fn max_partition_for(&self, len: usize) -> usize {
        match self.max_partition {
            Some(m) => m.max(self.partition),
            None => (len / 64)
                .next_power_of_two()
                .clamp(self.partition, 8192.max(self.partition)),
        }
    }

    /// `(size, count, offset)` of each segment for an IR of `len` taps.
    pub fn plan(&self, len: usize) -> Vec<(usize, usize, usize)> {
        let p0 = self.partition;
        let max_p = self.max_partition_for(len);
        let mut out = Vec::new();
        if self.mode == ConvolutionMode::Uniform || max_p <= p0 {
            out.push((p0, len.div_ceil(p0).max(1), 0));
            return out;
        }
        let mut offset = 0;
        let mut size = p0;
        let mut count = 4;
        while offset < len.max(1) {
            let remaining = len.max(1) - offset;
            let c = if size >= max_p {
                remaining.div_ceil(size)
            } else {
                count.min(remaining.div_ceil(size))
            };
            out.push((size, c, offset));
            offset += c * size;
            size = (size * 2).min(max_p);
            count = 2;
        }
        out
    }
}

/// Split complex spectra of `count` partitions, `bins` bins each.
#[derive(Debug)]
struct Spectra {
    re: Vec<f32>,
    im: Vec<f32>,
}

struct Chan {
    h: Arc<Spectra>,
    fdl_re: Vec<f32>,
    fdl_im: Vec<f32>,
    newest: usize,
    window: Vec<f32>,
    fill: usize,
    acc_re: Vec<f32>,
    acc_im: Vec<f32>,
    cur_re: Vec<f32>,
    cur_im: Vec<f32>,
}

struct Segment {
    size: usize,
    count: usize,
    offset: usize,
    bins: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    ifft: Arc<dyn ComplexToReal<f32>>,
    ch: [Chan; 2],
    time: Vec<f32>,
    spec: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    // head only: is the cached sum of older partitions valid for the current chunk?
    old_valid: bool,
    // tail only: running job
    job_tick: usize,
    job_active: bool,
    job_out: u64,
}

/// Multiply-accumulate `acc += x * h` over split complex arrays.
#[inline(always)]
fn cmac<const FMA: bool>(
    acc_re: &mut [f32],
    acc_im: &mut [f32],
    x_re: &[f32],
    x_im: &[f32],
    h_re: &[f32],
    h_im: &[f32],
) {
    let n = acc_re.len();
    let (acc_im, x_re, x_im, h_re, h_im) = (
        &mut acc_im[..n],
        &x_re[..n],
        &x_im[..n],
        &h_re[..n],
        &h_im[..n],
    );
    for i in 0..n {
        let (xr, xi, hr, hi) = (x_re[i], x_im[i], h_re[i], h_im[i]);
        acc_re[i] = fmadd::<FMA>(xr, hr, fmadd::<FMA>(-xi, hi, acc_re[i]));
        acc_im[i] = fmadd::<FMA>(xr, hi, fmadd::<FMA>(xi, hr, acc_im[i]));
    }
}

/// `acc += Σ x_j * h_j` over four partitions at once (a quarter of the accumulator traffic).
#[inline(always)]
fn cmac4<const FMA: bool>(
    acc_re: &mut [f32],
    acc_im: &mut [f32],
    x: [(&[f32], &[f32]); 4],
    h: [(&[f32], &[f32]); 4],
) {
    let n = acc_re.len();
    let acc_im = &mut acc_im[..n];
    let [(x0r, x0i), (x1r, x1i), (x2r, x2i), (x3r, x3i)] = x.map(|(r, i)| (&r[..n], &i[..n]));
    let [(h0r, h0i), (h1r, h1i), (h2r, h2i), (h3r, h3i)] = h.map(|(r, i)| (&r[..n], &i[..n]));
    for i in 0..n {
        let mut re = acc_re[i];
        let mut im = acc_im[i];
        for (xr, xi, hr, hi) in [
            (x0r[i], x0i[i], h0r[i], h0i[i]),
            (x1r[i], x1i[i], h1r[i], h1i[i]),
            (x2r[i], x2i[i], h2r[i], h2i[i]),
            (x3r[i], x3i[i], h3r[i], h3i[i]),
        ] {
            re = fmadd::<FMA>(xr, hr, fmadd::<FMA>(-xi, hi, re));
            im = fmadd::<FMA>(xr, hi, fmadd::<FMA>(xi, hr, im));
        }
        acc_re[i] = re;
        acc_im[i] = im;
    }
}

/// `acc (+)= Σ_{i in parts} X[slot(i)] · H[i]` where `slot(i) = (newest + k - i + shift) % k`.
#[inline(always)]
fn mac_range_impl<const FMA: bool>(
    c: &mut Chan,
    k: usize,
    bins: usize,
    parts: std::ops::Range<usize>,
    shift: usize,
) {
    let h = &*c.h;
    let newest = c.newest;
    let slot = |i: usize| {
        let s = (newest + k + shift - i) % k;
        s * bins..(s + 1) * bins
    };
    let hpart = |i: usize| i * bins..(i + 1) * bins;
    let mut i = parts.start;
    while i + 4 <= parts.end {
        let x = [0, 1, 2, 3].map(|j| {
            let r = slot(i + j);
            (&c.fdl_re[r.clone()], &c.fdl_im[r])
        });
        let hh = [0, 1, 2, 3].map(|j| {
            let r = hpart(i + j);
            (&h.re[r.clone()], &h.im[r])
        });
        cmac4::<FMA>(&mut c.acc_re, &mut c.acc_im, x, hh);
        i += 4;
    }
    while i < parts.end {
        let x = slot(i);
        let hb = hpart(i);
        cmac::<FMA>(
            &mut c.acc_re,
            &mut c.acc_im,
            &c.fdl_re[x.clone()],
            &c.fdl_im[x],
            &h.re[hb.clone()],
            &h.im[hb],
        );
        i += 1;
    }
}

fn mac_range_generic(
    c: &mut Chan,
    k: usize,
    bins: usize,
    parts: std::ops::Range<usize>,
    shift: usize,
) {
    mac_range_impl::<false>(c, k, bins, parts, shift)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn mac_range_avx2(
    c: &mut Chan,
    k: usize,
    bins: usize,
    parts: std::ops::Range<usize>,
    shift: usize,
) {
    mac_range_impl::<true>(c, k, bins, parts, shift)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn mac_range_avx512(
    c: &mut Chan,
    k: usize,
    bins: usize,
    parts: std::ops::Range<usize>,
    shift: usize,
) {
    mac_range_impl::<true>(c, k, bins, parts, shift)
}

fn mac_range(
    isa: Isa,
    c: &mut Chan,
    k: usize,
    bins: usize,
    parts: std::ops::Range<usize>,
    shift: usize,
) {
    if parts.is_empty() {
        return;
    }
    match isa {
        Isa::Generic => mac_range_generic(c, k, bins, parts, shift),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` only comes from `Isa::detect`, which checked AVX2 and FMA.
        #[allow(unsafe_code)]
        Isa::Avx2Fma => unsafe { mac_range_avx2(c, k, bins, parts, shift) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` only comes from `Isa::detect`, which checked AVX-512F and FMA.
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe { mac_range_avx512(c, k, bins, parts, shift) },
    }
}

impl Segment {
    fn new(
        planner: &mut RealFftPlanner<f32>,
        ir: &[&[f32]; 2],
        shared: bool,
        size: usize,
        count: usize,
        offset: usize,
        scale: f32,
    ) -> Self {
        let n = 2 * size;
        let fft = planner.plan_fft_forward(n);
        let ifft = planner.plan_fft_inverse(n);
        let bins = size + 1;
        let scratch_len = fft.get_scratch_len().max(ifft.get_scratch_len());
        let mut scratch = vec![Complex::new(0.0, 0.0); scratch_len];
        let mut time = vec![0.0f32; n];
        let mut spec = vec![Complex::new(0.0, 0.0); bins];
        let norm = scale / n as f32;
        let mut make = |taps: &[f32]| -> Arc<Spectra> {
            let mut re = vec![0.0f32; count * bins];
            let mut im = vec![0.0f32; count * bins];
            for i in 0..count {
                time.fill(0.0);
                let lo = (offset + i * size).min(taps.len());
                let hi = (offset + (i + 1) * size).min(taps.len());
                time[..hi - lo].copy_from_slice(&taps[lo..hi]);
                fft.process_with_scratch(&mut time, &mut spec, &mut scratch)
                    .ok();
                for (b, z) in spec.iter().enumerate() {
                    re[i * bins + b] = z.re * norm;
                    im[i * bins + b] = z.im * norm;
                }
            }
            Arc::new(Spectra { re, im })
        };
        let h0 = make(ir[0]);
        let h1 = if shared { h0.clone() } else { make(ir[1]) };
        let chan = |h: Arc<Spectra>| Chan {
            h,
            fdl_re: vec![0.0; count * bins],
            fdl_im: vec![0.0; count * bins],
            newest: 0,
            window: vec![0.0; n],
            fill: 0,
            acc_re: vec![0.0; bins],
            acc_im: vec![0.0; bins],
            cur_re: vec![0.0; bins],
            cur_im: vec![0.0; bins],
        };
        Self {
            size,
            count,
            offset,
            bins,
            fft,
            ifft,
            ch: [chan(h0), chan(h1)],
            time,
            spec,
            scratch,
            old_valid: false,
            job_tick: 0,
            job_active: false,
            job_out: 0,
        }
    }

    /// FFT of channel `c`'s window into its `cur` arrays.
    fn forward(&mut self, c: usize) {
        let ch = &mut self.ch[c];
        self.time.copy_from_slice(&ch.window);
        self.fft
            .process_with_scratch(&mut self.time, &mut self.spec, &mut self.scratch)
            .ok();
        for (b, z) in self.spec.iter().enumerate() {
            ch.cur_re[b] = z.re;
            ch.cur_im[b] = z.im;
        }
    }

    /// Inverse FFT of `re/im` into `self.time`.
    fn inverse(&mut self, c: usize, from_acc_plus_cur_h0: bool, isa: Isa) {
        let bins = self.bins;
        if from_acc_plus_cur_h0 {
            // spec = acc + cur · H0  (head)
            let ch = &mut self.ch[c];
            // reuse cur arrays as the product target: compute into spec directly
            let h = &*ch.h;
            for b in 0..bins {
                let (xr, xi) = (ch.cur_re[b], ch.cur_im[b]);
                let (hr, hi) = (h.re[b], h.im[b]);
                self.spec[b] = Complex::new(
                    ch.acc_re[b] + xr * hr - xi * hi,
                    ch.acc_im[b] + xr * hi + xi * hr,
                );
            }
            let _ = isa;
        } else {
            let ch = &self.ch[c];
            for b in 0..bins {
                self.spec[b] = Complex::new(ch.acc_re[b], ch.acc_im[b]);
            }
        }
        self.spec[0].im = 0.0;
        self.spec[bins - 1].im = 0.0;
        self.ifft
            .process_with_scratch(&mut self.spec, &mut self.time, &mut self.scratch)
            .ok();
    }

    /// Pushes channel `c`'s `cur` spectrum into the FDL as the newest entry.
    fn push_cur(&mut self, c: usize) {
        let bins = self.bins;
        let k = self.count;
        let ch = &mut self.ch[c];
        ch.newest = (ch.newest + 1) % k;
        let s = ch.newest * bins;
        ch.fdl_re[s..s + bins].copy_from_slice(&ch.cur_re);
        ch.fdl_im[s..s + bins].copy_from_slice(&ch.cur_im);
    }

    fn shift_window(&mut self, c: usize) {
        let p = self.size;
        let w = &mut self.ch[c].window;
        w.copy_within(p.., 0);
        w[p..].fill(0.0);
    }
}

/// A stereo partitioned convolver (see module docs).
pub struct Convolver {
    segs: Vec<Segment>,
    p0: usize,
    pos: usize,
    time: u64,
    ring: [Vec<f32>; 2],
    ring_mask: usize,
    isa: Isa,
    ir_len: usize,
}

impl std::fmt::Debug for Convolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Convolver")
            .field("ir_len", &self.ir_len)
            .field("segments", &self.segments())
            .finish()
    }
}

impl Convolver {
    /// A convolver for an IR of one (used for both channels) or two channels, scaled by `gain`
    /// (linear). `partitioning.partition` and `max_partition` must be powers of two ≥ 16.
    pub fn new(ir: &[Vec<f32>], partitioning: Partitioning, gain: f32) -> Result<Self, DspError> {
        let bad = |reason: String| DspError::ImpulseResponse {
            path: "<memory>".into(),
            reason,
        };
        if ir.is_empty() || ir.len() > 2 {
            return Err(bad(format!("{} channels; need 1 or 2", ir.len())));
        }
        let len = ir.iter().map(Vec::len).max().unwrap_or(0);
        if len == 0 {
            return Err(bad("no samples".into()));
        }
        if ir.iter().flatten().any(|v| !v.is_finite()) {
            return Err(bad("contains NaN or infinite samples".into()));
        }
        let p0 = partitioning.partition;
        if !p0.is_power_of_two() || p0 < 16 {
            return Err(bad(format!(
                "partition = {p0}: must be a power of two >= 16"
            )));
        }
        if let Some(m) = partitioning.max_partition {
            if !m.is_power_of_two() || m < p0 {
                return Err(bad(format!(
                    "max_partition = {m}: must be a power of two >= partition ({p0})"
                )));
            }
        }
        let shared = ir.len() == 1;
        let taps: [&[f32]; 2] = [&ir[0], &ir[ir.len() - 1]];
        let mut planner = RealFftPlanner::<f32>::new();
        let segs: Vec<Segment> = partitioning
            .plan(len)
            .into_iter()
            .map(|(size, count, offset)| {
                Segment::new(&mut planner, &taps, shared, size, count, offset, gain)
            })
            .collect();
        let span = segs
            .iter()
            .map(|s| s.offset + 2 * s.size)
            .max()
            .unwrap_or(0)
            + 2 * p0;
        let ring_len = span.next_power_of_two();
        Ok(Self {
            segs,
            p0,
            pos: 0,
            time: 0,
            ring: [vec![0.0; ring_len], vec![0.0; ring_len]],
            ring_mask: ring_len - 1,
            isa: Isa::detect(),
            ir_len: len,
        })
    }

    /// Loads a WAV IR (mono or stereo), checking sample rate and length.
    pub fn from_wav(
        path: &Path,
        sample_rate: u32,
        partitioning: Partitioning,
        gain: f32,
        max_frames: usize,
    ) -> Result<Self, DspError> {
        let ir = load_ir(path, sample_rate, max_frames)?;
        Self::new(&ir, partitioning, gain).map_err(|e| match e {
            DspError::ImpulseResponse { reason, .. } => DspError::ImpulseResponse {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// `(partition size, partition count)` of each segment.
    pub fn segments(&self) -> Vec<(usize, usize)> {
        self.segs.iter().map(|s| (s.size, s.count)).collect()
    }

    /// IR length in taps.
    pub fn ir_len(&self) -> usize {
        self.ir_len
    }

    /// Forces the portable MAC kernel (tests / comparisons).
    pub fn force_generic(&mut self) {
        self.isa = Isa::Generic;
    }

    fn head(&mut self, c: usize, x: &mut [f32]) {
        let isa = self.isa;
        let pos = self.pos;
        let seg = &mut self.segs[0];
        let p = seg.size;
        let (k, bins) = (seg.count, seg.bins);
        seg.ch[c].window[p + pos..p + pos + x.len()].copy_from_slice(x);
        if !seg.old_valid {
            let ch = &mut seg.ch[c];
            ch.acc_re.fill(0.0);
            ch.acc_im.fill(0.0);
            // partitions 1..k pair with the FDL entries newest, newest-1, …
            mac_range(isa, ch, k, bins, 1..k, 1);
        }
        seg.forward(c);
        seg.inverse(c, true, isa);
        x.copy_from_slice(&seg.time[p + pos..p + pos + x.len()]);
    }

    /// Called when a head chunk completes (after its output was produced).
    fn chunk_complete(&mut self) {
        let isa = self.isa;
        let p0 = self.p0;
        let t_end = self.time; // absolute index just after the completed chunk
        let (head, tails) = self.segs.split_at_mut(1);
        let head = &mut head[0];
        for tail in tails.iter_mut() {
            // 1. advance a running job by one tick
            if tail.job_active {
                tail.job_tick += 1;
                run_tick(tail, isa, p0, &mut self.ring, self.ring_mask);
            }
            // 2. feed the completed head chunk
            let p = tail.size;
            for c in 0..2 {
                let fill = tail.ch[c].fill;
                let (src, dst) = (&head.ch[c].window[p0..2 * p0], &mut tail.ch[c].window);
                dst[p + fill..p + fill + p0].copy_from_slice(src);
                tail.ch[c].fill += p0;
            }
            if tail.ch[0].fill == p {
                for c in 0..2 {
                    tail.ch[c].fill = 0;
                }
                debug_assert!(!tail.job_active);
                tail.job_active = true;
                tail.job_tick = 0;
                tail.job_out = t_end + tail.offset as u64 - p as u64;
                run_tick(tail, isa, p0, &mut self.ring, self.ring_mask);
            }
        }
        for c in 0..2 {
            head.push_cur(c);
            head.shift_window(c);
        }
        head.old_valid = false;
    }
}

/// One tick of a tail segment's job: tick 0 does the forward FFT; the partitions are spread
/// over all ticks; the last tick does the inverse FFT and adds into the ring.
#[allow(clippy::needless_range_loop)]
fn run_tick(seg: &mut Segment, isa: Isa, p0: usize, ring: &mut [Vec<f32>; 2], mask: usize) {
    let ticks = seg.size / p0;
    let t = seg.job_tick;
    let (k, bins, p) = (seg.count, seg.bins, seg.size);
    for c in 0..2 {
        if t == 0 {
            seg.forward(c);
            seg.push_cur(c);
            seg.shift_window(c);
            seg.ch[c].acc_re.fill(0.0);
            seg.ch[c].acc_im.fill(0.0);
        }
        let lo = t * k / ticks;
        let hi = (t + 1) * k / ticks;
        mac_range(isa, &mut seg.ch[c], k, bins, lo..hi, 0);
        if t + 1 == ticks {
            seg.inverse(c, false, isa);
            let start = seg.job_out;
            for (i, v) in seg.time[p..].iter().enumerate() {
                ring[c][(start as usize + i) & mask] += *v;
            }
        }
    }
    if t + 1 == ticks {
        seg.job_active = false;
    }
}

impl Processor for Convolver {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len());
        let mut done = 0;
        while done < n {
            let take = (n - done).min(self.p0 - self.pos);
            let (l, r) = (&mut left[done..done + take], &mut right[done..done + take]);
            self.head(0, l);
            self.head(1, r);
            self.segs[0].old_valid = true;
            let t0 = self.time as usize;
            for (c, x) in [l, r].into_iter().enumerate() {
                let ring = &mut self.ring[c];
                for (i, s) in x.iter_mut().enumerate() {
                    let slot = (t0 + i) & self.ring_mask;
                    *s += ring[slot];
                    ring[slot] = 0.0;
                }
            }
            self.pos += take;
            self.time += take as u64;
            done += take;
            if self.pos == self.p0 {
                self.chunk_complete();
                self.pos = 0;
            }
        }
    }

    fn reset(&mut self) {
        for s in &mut self.segs {
            for ch in &mut s.ch {
                ch.fdl_re.fill(0.0);
                ch.fdl_im.fill(0.0);
                ch.window.fill(0.0);
                ch.fill = 0;
                ch.newest = 0;
            }
            s.old_valid = false;
            s.job_active = false;
            s.job_tick = 0;
        }
        self.ring.iter_mut().for_each(|r| r.fill(0.0));
        self.pos = 0;
        self.time = 0;
    }
}

/// Reads an IR WAV: 1 or 2 channels, matching `sample_rate`, at most `max_frames` frames.
pub fn load_ir(
    path: &Path,
    sample_rate: u32,
    max_frames: usize,
) -> Result<Vec<Vec<f32>>, DspError> {
    let bad = |reason: String| DspError::ImpulseResponse {
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        return Err(bad("file not found".into()));
    }
    let reader =
        hound::WavReader::open(path).map_err(|e| bad(format!("not a readable WAV file: {e}")))?;
    let spec = reader.spec();
    if spec.sample_rate != sample_rate {
        return Err(DspError::IrSampleRate {
            path: path.to_path_buf(),
            found: spec.sample_rate,
            expected: sample_rate,
        });
    }
    if spec.channels == 0 || spec.channels > 2 {
        return Err(bad(format!("{} channels; need 1 or 2", spec.channels)));
    }
    let frames = reader.duration() as usize;
    if frames > max_frames {
        return Err(DspError::IrTooLong {
            path: path.to_path_buf(),
            frames,
            limit: max_frames,
        });
    }
    let (ch, _) = crate::wav::decode(reader).map_err(bad)?;
    if ch.iter().all(|c| c.is_empty()) {
        return Err(bad("contains no samples".into()));
    }
    Ok(ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_latency_plan_leaves_slack_for_spreading_and_covers_the_ir() {
        for p0 in [16usize, 64, 256, 1024] {
            for len in [1usize, 100, 5000, 65_536, 262_144, 1_000_003] {
                for maxp in [None, Some(p0), Some(p0 * 4), Some(8192.max(p0))] {
                    let part = Partitioning {
                        mode: ConvolutionMode::LowLatency,
                        partition: p0,
                        max_partition: maxp,
                    };
                    let plan = part.plan(len);
                    assert_eq!(plan[0].2, 0);
                    assert_eq!(plan[0].0, p0);
                    let mut end = 0;
                    for &(size, count, offset) in &plan {
                        assert_eq!(offset, end, "segments are contiguous");
                        assert!(count >= 1 && size.is_power_of_two());
                        if offset > 0 {
                            assert!(
                                offset + p0 >= 2 * size,
                                "{plan:?}: tail {size} at {offset} lacks slack"
                            );
                        }
                        end = offset + size * count;
                    }
                    assert!(end >= len, "covers the IR");
                    assert!(
                        end < len + plan.last().map(|s| s.0).unwrap_or(0),
                        "no empty partition at the end"
                    );
                }
            }
        }
    }

    #[test]
    fn uniform_plan_is_one_segment() {
        let part = Partitioning::for_block(ConvolutionMode::Uniform, 1000);
        assert_eq!(part.partition, 1024);
        assert_eq!(part.plan(5000), vec![(1024, 5, 0)]);
    }

    #[test]
    fn portable_and_simd_kernels_agree() {
        let ir = vec![crate::bench::noise(3000, 1)];
        let part = Partitioning {
            mode: ConvolutionMode::LowLatency,
            partition: 64,
            max_partition: Some(512),
        };
        let mut a = Convolver::new(&ir, part, 1.0).expect("conv");
        let mut b = Convolver::new(&ir, part, 1.0).expect("conv");
        b.force_generic();
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            a.isa = Isa::Avx2Fma; // the AVX-512 variant is covered by the integration tests
        }
        let x = crate::bench::noise(8192, 2);
        let (mut l1, mut r1, mut l2, mut r2) = (x.clone(), x.clone(), x.clone(), x);
        for i in (0..8192).step_by(64) {
            a.process(&mut l1[i..i + 64], &mut r1[i..i + 64]);
            b.process(&mut l2[i..i + 64], &mut r2[i..i + 64]);
        }
        for (p, q) in l1.iter().zip(&l2) {
            assert!((p - q).abs() < 1e-4, "{p} vs {q}");
        }
    }
}
