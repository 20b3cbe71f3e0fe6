//! Our index against a well-kept HNSW crate (`instant-distance`) on the same moments:
//! build time, query latency, recall@10 against exact search, memory.
//!
//! ```text
//! cargo run --release -p tutti-memory --features compare-hnsw --example compare_hnsw -- 500000 1000
//! ```
//!
//! Must never: give either side data or queries the other does not get.

use std::time::Instant;

use instant_distance::{Builder, Point, Search};
use tutti_memory::synth::{self, ShowShape};
use tutti_memory::vector::{AnnConfig, Search as VSearch, VecSet};

#[derive(Clone, Copy)]
struct P([f32; 16]);

impl Point for P {
    fn distance(&self, other: &Self) -> f32 {
        tutti_memory::vector::l2(&self.0, &other.0).sqrt()
    }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(500_000);
    let nq: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let shape = ShowShape::default();
    let mut points: Vec<P> = Vec::with_capacity(n);
    let mut i = 0u64;
    while points.len() < n {
        for m in synth::show(i, 42, &shape).moments {
            if points.len() < n {
                let mut a = [0f32; 16];
                a.copy_from_slice(&m.vector);
                points.push(P(a));
            }
        }
        i += 1;
    }
    let queries: Vec<P> = (0..nq)
        .map(|q| {
            let r = synth::show(1_000_000 + q as u64, 777, &shape);
            let mut a = [0f32; 16];
            a.copy_from_slice(&r.moments[(q * 37) % r.moments.len()].vector);
            P(a)
        })
        .collect();
    // Exact answers.
    let mut exact_set = VecSet::new(16);
    for p in &points {
        exact_set.push_unindexed(&p.0);
    }
    let cfg = AnnConfig {
        ann_min: 1,
        ..AnnConfig::default()
    };
    let s = VSearch {
        k: 10,
        only: None,
        keep: None,
        selectivity: 1.0,
        exact: true,
    };
    let truth: Vec<Vec<u32>> = queries
        .iter()
        .map(|q| {
            exact_set
                .search(&q.0, s, &cfg)
                .0
                .iter()
                .map(|c| c.id)
                .collect()
        })
        .collect();

    // Ours.
    let before = rss_mb();
    let t = Instant::now();
    let mut ours = VecSet::new(16);
    for p in &points {
        ours.push_unindexed(&p.0);
    }
    ours.reindex(&cfg);
    let build = t.elapsed().as_secs_f64();
    let mem = rss_mb() - before;
    let mut lat = Vec::new();
    let mut hit = 0;
    for (q, tr) in queries.iter().zip(&truth) {
        let t = Instant::now();
        let (r, _) = ours.search(&q.0, VSearch { exact: false, ..s }, &cfg);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        hit += r.iter().filter(|c| tr.contains(&c.id)).count();
    }
    println!(
        "ivf-sq8 (ours): n {n}, build {build:.1} s, p50 {:.3} ms, p99 {:.3} ms, recall@10 {:.4}, +{mem:.0} MB RSS (vectors included), {} bytes held",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        hit as f64 / (10 * nq) as f64,
        ours.bytes()
    );
    drop(ours);

    // instant-distance (HNSW).
    let before = rss_mb();
    let t = Instant::now();
    let values: Vec<u32> = (0..points.len() as u32).collect();
    let map = Builder::default().build(points.clone(), values);
    let build = t.elapsed().as_secs_f64();
    let mem = rss_mb() - before;
    let mut lat = Vec::new();
    let mut hit = 0;
    let mut search = Search::default();
    for (q, tr) in queries.iter().zip(&truth) {
        let t = Instant::now();
        let r: Vec<u32> = map
            .search(q, &mut search)
            .take(10)
            .map(|item| *item.value)
            .collect();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        hit += r.iter().filter(|id| tr.contains(id)).count();
    }
    println!(
        "instant-distance 0.6 (hnsw, default ef): n {n}, build {build:.1} s, p50 {:.3} ms, p99 {:.3} ms, recall@10 {:.4}, +{mem:.0} MB RSS (points included)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        hit as f64 / (10 * nq) as f64
    );
}
