//! Nearest neighbours over fixed-dimension vectors: exact search when a set is small, and an
//! inverted-file index with 8-bit scalar quantization (IVF-SQ8) and exact re-ranking when it
//! is large.
//!
//! # Why IVF and not a graph
//! The indexes are derived and rebuilt completely at every start, from every moment. A graph
//! (HNSW) costs hundreds of distance computations per insert, with a cache miss each at
//! millions of points: minutes to rebuild 5 million moments on two cores, and 128 bytes of
//! links per point at M = 16. An inverted file is built in seconds (k-means on a sample, then
//! one pass that assigns each vector to its list) and costs one byte per dimension plus its id
//! per point. `examples/compare_hnsw.rs` measures both on the same data (BENCHMARKS.md).
//!
//! # How a search runs
//! * **Exact** ([`VecSet::search`] on a set below `ann_min`, or with `exact`): one pass over the
//!   candidates (all, or those a filter lets through), a bounded max-heap of the best `k`.
//! * **IVF**: a two-level coarse quantizer (`c1` top cells × `f` fine lists each, trained with
//!   k-means). The query picks the `coarse_probe` nearest top cells, then the `nprobe` nearest
//!   fine lists among theirs, scans those lists' 8-bit codes (an asymmetric distance: the
//!   query stays in floating point, scaled per dimension, so dimensions of different ranges
//!   weigh what they should), keeps the best `rerank`
//!   candidates and re-ranks them with the exact f32 distance. With a filter, more lists are
//!   probed in proportion to what the filter keeps.
//!
//! Must never: return a non-finite distance, or panic on an empty set.

// Numeric kernels index several arrays in step; a range loop says that most plainly.
#![allow(clippy::needless_range_loop)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Squared Euclidean distance.
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for j in 0..8 {
            let d = a[c * 8 + j] - b[c * 8 + j];
            s[j] += d * d;
        }
    }
    let mut t: f32 = s.iter().sum();
    for j in chunks * 8..a.len().min(b.len()) {
        let d = a[j] - b[j];
        t += d * d;
    }
    t
}

/// A candidate: id and distance, ordered by distance (then id, for determinism).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cand {
    /// Distance (squared L2).
    pub d: f32,
    /// Id in the set.
    pub id: u32,
}

impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.d
            .total_cmp(&other.d)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// The best `k` candidates seen (a max-heap on distance).
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl TopK {
    /// An empty selection of up to `k`.
    pub fn new(k: usize) -> Self {
        TopK {
            k: k.max(1),
            heap: BinaryHeap::with_capacity(k.max(1) + 1),
        }
    }

    /// The distance a new candidate must beat (infinity until full).
    #[inline]
    pub fn bound(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |c| c.d)
        }
    }

    /// Offers a candidate.
    #[inline]
    pub fn push(&mut self, c: Cand) {
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(top) = self.heap.peek() {
            if c < *top {
                self.heap.pop();
                self.heap.push(c);
            }
        }
    }

    /// The selection, nearest first.
    pub fn into_sorted(self) -> Vec<Cand> {
        self.heap.into_sorted_vec()
    }
}

/// Settings of the approximate index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnnConfig {
    /// Sets with fewer vectors are searched exactly.
    pub ann_min: usize,
    /// Fine lists scanned per query.
    pub nprobe: usize,
    /// Top cells considered per query.
    pub coarse_probe: usize,
    /// Candidates re-ranked exactly: `max(rerank, 8 × k)`.
    pub rerank: usize,
    /// Vectors the quantizers are trained on.
    pub train_sample: usize,
    /// k-means iterations.
    pub iterations: usize,
}

impl Default for AnnConfig {
    fn default() -> Self {
        AnnConfig {
            ann_min: 50_000,
            nprobe: 56,
            coarse_probe: 12,
            rerank: 160,
            train_sample: 40_000,
            iterations: 8,
        }
    }
}

/// Per-dimension 8-bit quantization.
#[derive(Debug, Clone)]
struct Sq8 {
    min: Vec<f32>,
    step: Vec<f32>,
    /// `step²`: the weight of a code difference in the squared distance.
    w: Vec<f32>,
}

impl Sq8 {
    fn train(sample: &[f32], d: usize) -> Sq8 {
        let mut lo = vec![f32::INFINITY; d];
        let mut hi = vec![f32::NEG_INFINITY; d];
        for v in sample.chunks_exact(d) {
            for j in 0..d {
                lo[j] = lo[j].min(v[j]);
                hi[j] = hi[j].max(v[j]);
            }
        }
        let mut step = vec![1.0; d];
        for j in 0..d {
            if !lo[j].is_finite() {
                lo[j] = 0.0;
                hi[j] = 1.0;
            }
            // A little room beyond the sample's range; codes clamp beyond it.
            let span = (hi[j] - lo[j]).max(1e-6);
            lo[j] -= span * 0.02;
            step[j] = span * 1.04 / 255.0;
        }
        let w = step.iter().map(|s| s * s).collect();
        Sq8 { min: lo, step, w }
    }

    #[inline]
    fn encode_into(&self, v: &[f32], out: &mut Vec<u8>) {
        for (j, x) in v.iter().enumerate() {
            let c = ((x - self.min[j]) / self.step[j]).round();
            out.push(c.clamp(0.0, 255.0) as u8);
        }
    }

    /// The query in code units (not rounded: the distance is asymmetric, exact on the
    /// query's side).
    fn query_units(&self, q: &[f32]) -> Vec<f32> {
        q.iter()
            .enumerate()
            .map(|(j, x)| (x - self.min[j]) / self.step[j])
            .collect()
    }

    /// Squared distance between a query in code units and a code, in the vectors' units.
    #[inline]
    fn dist(&self, q: &[f32], c: &[u8]) -> f32 {
        let mut acc = [0f32; 8];
        let n = q.len() / 8 * 8;
        for ((qs, cs), ws) in q[..n]
            .chunks_exact(8)
            .zip(c[..n].chunks_exact(8))
            .zip(self.w[..n].chunks_exact(8))
        {
            for j in 0..8 {
                let d = qs[j] - f32::from(cs[j]);
                acc[j] += ws[j] * d * d;
            }
        }
        let mut s: f32 = acc.iter().sum();
        for j in n..q.len() {
            let d = q[j] - f32::from(c[j]);
            s += self.w[j] * d * d;
        }
        s
    }
}

/// One inverted list: codes and ids of the vectors assigned to a fine centroid.
#[derive(Debug, Clone, Default)]
struct List {
    codes: Vec<u8>,
    ids: Vec<u32>,
}

/// The inverted-file index over a [`VecSet`]'s vectors.
#[derive(Debug, Clone)]
pub struct Ivf {
    d: usize,
    c1: usize,
    fine_per: usize,
    coarse: Vec<f32>,
    fine: Vec<f32>,
    sq: Sq8,
    lists: Vec<List>,
    /// Vectors it was trained on.
    pub trained_n: usize,
}

/// Deterministic pseudo-random numbers (a 64-bit LCG) for sampling and initialisation.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Lloyd's k-means on `points` (`n × d`); returns `k × d` centroids.
fn kmeans(points: &[f32], d: usize, k: usize, iterations: usize, seed: u64) -> Vec<f32> {
    let n = points.len() / d;
    if n == 0 || k == 0 {
        return vec![0.0; k * d];
    }
    let mut rng = Lcg(seed);
    let mut cent: Vec<f32> = (0..k)
        .flat_map(|_| {
            let i = (rng.next() as usize) % n;
            points[i * d..(i + 1) * d].to_vec()
        })
        .collect();
    let mut assign = vec![0usize; n];
    for _ in 0..iterations {
        for (i, p) in points.chunks_exact(d).enumerate() {
            assign[i] = nearest(&cent, d, p);
        }
        let mut sum = vec![0f64; k * d];
        let mut cnt = vec![0usize; k];
        for (i, p) in points.chunks_exact(d).enumerate() {
            let c = assign[i];
            cnt[c] += 1;
            for j in 0..d {
                sum[c * d + j] += f64::from(p[j]);
            }
        }
        for c in 0..k {
            if cnt[c] == 0 {
                // An empty cell takes a random point (keeps every list useful).
                let i = (rng.next() as usize) % n;
                cent[c * d..(c + 1) * d].copy_from_slice(&points[i * d..(i + 1) * d]);
            } else {
                for j in 0..d {
                    cent[c * d + j] = (sum[c * d + j] / cnt[c] as f64) as f32;
                }
            }
        }
    }
    cent
}

fn nearest(cent: &[f32], d: usize, p: &[f32]) -> usize {
    let mut best = (f32::INFINITY, 0usize);
    for (c, v) in cent.chunks_exact(d).enumerate() {
        let dist = l2(p, v);
        if dist < best.0 {
            best = (dist, c);
        }
    }
    best.1
}

fn nearest_n(cent: &[f32], d: usize, p: &[f32], n: usize) -> Vec<Cand> {
    let mut top = TopK::new(n);
    for (c, v) in cent.chunks_exact(d).enumerate() {
        top.push(Cand {
            d: l2(p, v),
            id: c as u32,
        });
    }
    top.into_sorted()
}

impl Ivf {
    /// Trains the quantizers on a sample of `data` (`n × d`) and assigns every vector.
    pub fn build(data: &[f32], d: usize, cfg: &AnnConfig) -> Ivf {
        let n = data.len() / d.max(1);
        // About 2 sqrt(n) lists (a power of two), as a top level × a fine level.
        let lists = (2.0 * (n as f64).sqrt()).clamp(16.0, 32_768.0) as usize;
        let lists = lists.next_power_of_two();
        let c1 = ((lists as f64).sqrt() as usize)
            .next_power_of_two()
            .clamp(4, 128);
        let fine_per = (lists / c1).max(1);
        let step = (n / cfg.train_sample.max(1)).max(1);
        let mut sample = Vec::with_capacity(cfg.train_sample.min(n) * d);
        for v in data.chunks_exact(d).step_by(step) {
            sample.extend_from_slice(v);
        }
        let sq = Sq8::train(&sample, d);
        let coarse = kmeans(&sample, d, c1, cfg.iterations, 0x5eed);
        // The sample's points of each top cell train that cell's fine centroids.
        let mut cells: Vec<Vec<f32>> = vec![Vec::new(); c1];
        for p in sample.chunks_exact(d) {
            cells[nearest(&coarse, d, p)].extend_from_slice(p);
        }
        let mut fine = Vec::with_capacity(c1 * fine_per * d);
        for (c, pts) in cells.iter().enumerate() {
            if pts.is_empty() {
                for _ in 0..fine_per {
                    fine.extend_from_slice(&coarse[c * d..(c + 1) * d]);
                }
            } else {
                fine.extend(kmeans(pts, d, fine_per, cfg.iterations, 0x5eed ^ c as u64));
            }
        }
        let mut ivf = Ivf {
            d,
            c1,
            fine_per,
            coarse,
            fine,
            sq,
            lists: vec![List::default(); c1 * fine_per],
            trained_n: n,
        };
        ivf.assign_all(data);
        ivf
    }

    fn list_of(&self, v: &[f32]) -> usize {
        let c = nearest(&self.coarse, self.d, v);
        let f = &self.fine[c * self.fine_per * self.d..(c + 1) * self.fine_per * self.d];
        c * self.fine_per + nearest(f, self.d, v)
    }

    /// Assigns every vector, on up to two threads.
    fn assign_all(&mut self, data: &[f32]) {
        let d = self.d;
        let n = data.len() / d;
        let threads = std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .clamp(1, 4);
        let per = n.div_ceil(threads).max(1);
        let this = &*self;
        let parts: Vec<Vec<u32>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (from, to) = ((t * per).min(n), ((t + 1) * per).min(n));
                    s.spawn(move || {
                        (from..to)
                            .map(|i| this.list_of(&data[i * d..(i + 1) * d]) as u32)
                            .collect::<Vec<u32>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut i = 0usize;
        for part in parts {
            for l in part {
                let list = &mut self.lists[l as usize];
                self.sq
                    .encode_into(&data[i * d..(i + 1) * d], &mut list.codes);
                list.ids.push(i as u32);
                i += 1;
            }
        }
    }

    /// Adds one vector (its id is its position in the set).
    pub fn add(&mut self, id: u32, v: &[f32]) {
        let l = self.list_of(v);
        let list = &mut self.lists[l];
        self.sq.encode_into(v, &mut list.codes);
        list.ids.push(id);
    }

    /// Bytes held (codes, ids, centroids).
    pub fn bytes(&self) -> usize {
        self.lists
            .iter()
            .map(|l| l.codes.capacity() + 4 * l.ids.capacity() + 48)
            .sum::<usize>()
            + 4 * (self.coarse.len() + self.fine.len())
    }

    /// Candidates by quantized distance: the best `want` among the probed lists that pass
    /// `keep`. `probe_scale` ≥ 1 widens the probe (for filtered searches).
    fn candidates(
        &self,
        q: &[f32],
        want: usize,
        nprobe: usize,
        coarse_probe: usize,
        keep: Option<&dyn Fn(u32) -> bool>,
    ) -> (Vec<Cand>, usize) {
        let d = self.d;
        let top = nearest_n(&self.coarse, d, q, coarse_probe.clamp(1, self.c1));
        let mut fine = TopK::new(nprobe.max(1));
        for c in &top {
            let c = c.id as usize;
            let f = &self.fine[c * self.fine_per * d..(c + 1) * self.fine_per * d];
            for (j, v) in f.chunks_exact(d).enumerate() {
                fine.push(Cand {
                    d: l2(q, v),
                    id: (c * self.fine_per + j) as u32,
                });
            }
        }
        let qc = self.sq.query_units(q);
        let mut best = TopK::new(want);
        let mut scanned = 0usize;
        for l in fine.into_sorted() {
            let list = &self.lists[l.id as usize];
            scanned += list.ids.len();
            for (k, code) in list.codes.chunks_exact(d).enumerate() {
                let id = list.ids[k];
                let dist = self.sq.dist(&qc, code);
                if dist < best.bound() && keep.is_none_or(|f| f(id)) {
                    best.push(Cand { d: dist, id });
                }
            }
        }
        (best.into_sorted(), scanned)
    }
}

/// How a search ran (for the "why" of each result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchPath {
    /// Every candidate compared exactly.
    Exact {
        /// Candidates compared.
        compared: usize,
    },
    /// The inverted file.
    Ivf {
        /// Lists probed.
        nprobe: usize,
        /// Codes scanned.
        scanned: usize,
    },
}

impl std::fmt::Display for SearchPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchPath::Exact { compared } => write!(f, "exact over {compared} candidates"),
            SearchPath::Ivf { nprobe, scanned } => {
                write!(f, "ivf-sq8: {nprobe} lists, {scanned} codes, exact re-rank")
            }
        }
    }
}

/// A growing set of vectors of one dimension, with its index.
#[derive(Debug, Clone)]
pub struct VecSet {
    /// Dimension.
    pub d: usize,
    data: Vec<f32>,
    ivf: Option<Ivf>,
}

/// What to search.
#[derive(Clone, Copy)]
pub struct Search<'a> {
    /// Results wanted.
    pub k: usize,
    /// Only these ids (an exact search over them), when given.
    pub only: Option<&'a [u32]>,
    /// Only ids this keeps.
    pub keep: Option<&'a dyn Fn(u32) -> bool>,
    /// The share of the set `keep` is expected to let through (widens the probe).
    pub selectivity: f32,
    /// Force an exact search.
    pub exact: bool,
}

impl VecSet {
    /// An empty set of dimension `d`.
    pub fn new(d: usize) -> Self {
        VecSet {
            d,
            data: Vec::new(),
            ivf: None,
        }
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.data.len() / self.d.max(1)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The vector with this id.
    #[inline]
    pub fn get(&self, id: u32) -> &[f32] {
        let i = id as usize * self.d;
        &self.data[i..i + self.d]
    }

    /// Adds a vector; returns its id.
    pub fn push(&mut self, v: &[f32]) -> u32 {
        let id = self.len() as u32;
        self.data.extend_from_slice(&v[..self.d]);
        if let Some(ivf) = &mut self.ivf {
            ivf.add(id, v);
        }
        id
    }

    /// Adds vectors without indexing them (call [`VecSet::reindex`] after a bulk load).
    pub fn push_unindexed(&mut self, v: &[f32]) -> u32 {
        let id = self.len() as u32;
        self.data.extend_from_slice(&v[..self.d]);
        id
    }

    /// Whether the index should be (re)built: the set crossed `ann_min`, or doubled since
    /// the index was trained, or vectors were loaded unindexed.
    pub fn needs_index(&self, cfg: &AnnConfig) -> bool {
        let n = self.len();
        match &self.ivf {
            None => n >= cfg.ann_min,
            Some(ivf) => {
                n >= 2 * ivf.trained_n || ivf.lists.iter().map(|l| l.ids.len()).sum::<usize>() != n
            }
        }
    }

    /// Builds the index for the current vectors (without changing the set).
    pub fn build_index(&self, cfg: &AnnConfig) -> Option<Ivf> {
        (self.len() >= cfg.ann_min).then(|| Ivf::build(&self.data, self.d, cfg))
    }

    /// Installs an index built by [`VecSet::build_index`] (vectors added since are added).
    pub fn install(&mut self, ivf: Option<Ivf>) {
        self.ivf = ivf.map(|mut ivf| {
            let have: usize = ivf.lists.iter().map(|l| l.ids.len()).sum();
            for id in have..self.len() {
                let v = self.get(id as u32).to_vec();
                ivf.add(id as u32, &v);
            }
            ivf
        });
    }

    /// Builds and installs the index when [`VecSet::needs_index`].
    pub fn reindex(&mut self, cfg: &AnnConfig) {
        if self.needs_index(cfg) {
            let ivf = self.build_index(cfg);
            self.install(ivf);
        }
    }

    /// Whether searches use the approximate index.
    pub fn is_approximate(&self) -> bool {
        self.ivf.is_some()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        4 * self.data.capacity() + self.ivf.as_ref().map_or(0, Ivf::bytes)
    }

    /// The `s.k` nearest to `q` (squared distances), nearest first.
    pub fn search(&self, q: &[f32], s: Search<'_>, cfg: &AnnConfig) -> (Vec<Cand>, SearchPath) {
        if self.is_empty() || q.len() != self.d {
            return (Vec::new(), SearchPath::Exact { compared: 0 });
        }
        if let Some(only) = s.only {
            let mut top = TopK::new(s.k);
            let mut compared = 0;
            for &id in only {
                if s.keep.is_some_and(|f| !f(id)) {
                    continue;
                }
                compared += 1;
                let d = l2(q, self.get(id));
                if d < top.bound() {
                    top.push(Cand { d, id });
                }
            }
            return (top.into_sorted(), SearchPath::Exact { compared });
        }
        match (&self.ivf, s.exact) {
            (Some(ivf), false) => {
                let widen = (1.0 / s.selectivity.clamp(0.01, 1.0)).min(16.0);
                let nprobe = ((cfg.nprobe as f32) * widen) as usize;
                let want = cfg.rerank.max(8 * s.k);
                let (cands, scanned) =
                    ivf.candidates(q, want, nprobe, cfg.coarse_probe.max(1), s.keep);
                let mut top = TopK::new(s.k);
                for c in cands {
                    top.push(Cand {
                        d: l2(q, self.get(c.id)),
                        id: c.id,
                    });
                }
                (top.into_sorted(), SearchPath::Ivf { nprobe, scanned })
            }
            _ => {
                let mut top = TopK::new(s.k);
                let mut compared = 0;
                for (i, v) in self.data.chunks_exact(self.d).enumerate() {
                    let id = i as u32;
                    if s.keep.is_some_and(|f| !f(id)) {
                        continue;
                    }
                    compared += 1;
                    let d = l2(q, v);
                    if d < top.bound() {
                        top.push(Cand { d, id });
                    }
                }
                (top.into_sorted(), SearchPath::Exact { compared })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut r = Lcg(seed);
        (0..n * d)
            .map(|_| (r.next() % 10_000) as f32 / 10_000.0)
            .collect()
    }

    #[test]
    fn ivf_recall_is_high_on_uniform_data() {
        let d = 8;
        let cfg = AnnConfig {
            ann_min: 1000,
            ..AnnConfig::default()
        };
        let mut set = VecSet::new(d);
        for v in data(20_000, d, 3).chunks_exact(d) {
            set.push_unindexed(v);
        }
        set.reindex(&cfg);
        assert!(set.is_approximate());
        let queries = data(50, d, 9);
        let mut hit = 0;
        for q in queries.chunks_exact(d) {
            let s = Search {
                k: 10,
                only: None,
                keep: None,
                selectivity: 1.0,
                exact: false,
            };
            let (approx, _) = set.search(q, s, &cfg);
            let (exact, _) = set.search(q, Search { exact: true, ..s }, &cfg);
            let truth: std::collections::HashSet<u32> = exact.iter().map(|c| c.id).collect();
            hit += approx.iter().filter(|c| truth.contains(&c.id)).count();
        }
        let recall = hit as f64 / 500.0;
        assert!(recall >= 0.9, "recall {recall}");
    }

    #[test]
    fn incremental_adds_are_found() {
        let d = 4;
        let cfg = AnnConfig {
            ann_min: 500,
            ..AnnConfig::default()
        };
        let mut set = VecSet::new(d);
        for v in data(1000, d, 1).chunks_exact(d) {
            set.push(v);
        }
        set.reindex(&cfg);
        let id = set.push(&[5.0, 5.0, 5.0, 5.0]);
        let s = Search {
            k: 1,
            only: None,
            keep: None,
            selectivity: 1.0,
            exact: false,
        };
        let (r, _) = set.search(&[5.0, 5.0, 5.0, 5.0], s, &cfg);
        assert_eq!(r[0].id, id);
    }
}
