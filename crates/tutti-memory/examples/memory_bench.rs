//! The memory's benchmark and its data generator (BENCHMARKS.md, "Performance memory").
//!
//! ```text
//! cargo run --release -p tutti-memory --example memory_bench -- generate small 100000 DIR
//! cargo run --release -p tutti-memory --example memory_bench -- generate show 10000 DIR
//! cargo run --release -p tutti-memory --example memory_bench -- query small DIR [QUERIES]
//! cargo run --release -p tutti-memory --example memory_bench -- query show DIR [QUERIES]
//! cargo run --release -p tutti-memory --example memory_bench -- scale MOMENTS [QUERIES] [NPROBE] [COARSE_PROBE] [RERANK]
//! ```
//!
//! * `generate` writes synthetic episodes (`tutti_memory::synth`) into a new store in DIR
//!   through the memory's real write path (group commit, `synchronous=FULL`), 1,024 records in
//!   flight, and reports durable inserts per second (an insert is one whole episode,
//!   acknowledged once committed).
//! * `query` opens DIR (the full rebuild of the indexes, timed), then runs distinct queries:
//!   `small`: "episodes like this one" for different episodes; `show`: "moments like now"
//!   (k = 10) for moments of shows not in the memory, with recall@10 against exact search on
//!   a sample, and the bytes the moment indexes hold per moment.
//! * `scale` builds the indexes in memory only (no store) from synthetic shows up to MOMENTS
//!   moments and measures the same query (the 20-million-moment figure).
//!
//! Must never: report a figure it did not measure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tutti_memory::index::Index;
use tutti_memory::retrieve::{self, Access, EpisodeQuery, MomentQuery};
use tutti_memory::synth::{self, ShowShape};
use tutti_memory::vector::AnnConfig;
use tutti_memory::{codec, Memory, MemoryConfig};
use tutti_store::{
    MemChunkRow, MemContext, MemEpisodeFull, MemEpisodeRow, MemStatus, Store, StoreConfig,
};

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
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut lat_ms: Vec<f64>) {
    let mean = lat_ms.iter().sum::<f64>() / lat_ms.len().max(1) as f64;
    println!(
        "{name}: {} queries, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {:.3} ms",
        lat_ms.len(),
        pct(&mut lat_ms, 0.5),
        pct(&mut lat_ms, 0.9),
        pct(&mut lat_ms, 0.99),
        pct(&mut lat_ms, 1.0),
        mean
    );
}

fn cfg(dir: &std::path::Path) -> MemoryConfig {
    let mut c = MemoryConfig::new(dir);
    c.max_batch = 1024;
    c.write_timeout = Duration::from_secs(30);
    c.flush_every = Duration::from_millis(5);
    c
}

async fn generate(shape: &str, n: u64, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let store = Store::open(StoreConfig::new(dir.join("tutti.db"))).unwrap();
    let mem = Memory::open(store.clone(), cfg(dir)).await.unwrap();
    let show = ShowShape::default();
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(1024));
    let mut tasks = Vec::new();
    let mut last = Instant::now();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let rec = match shape {
            "small" => synth::small(i, 42),
            _ => synth::show(i, 42, &show),
        };
        let m = mem.clone();
        tasks.push(tokio::spawn(async move {
            let r = m.record(rec).await;
            drop(permit);
            r.map(|a| a.durable)
        }));
        if last.elapsed() > Duration::from_secs(5) {
            last = Instant::now();
            eprintln!(
                "  {i} queued, {:.0}/s",
                i as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    let mut spilled = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() == tutti_memory::Durable::Spill {
            spilled += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "generate {shape}: {n} episodes durable in {secs:.1} s = {:.0} durable inserts/s ({} spilled), store stats {:?}",
        n as f64 / secs,
        spilled,
        store.stats()
    );
    let t = Instant::now();
    mem.flush(Duration::from_secs(3600)).await;
    println!(
        "  derived indexes caught up {:.1} s later",
        t.elapsed().as_secs_f64()
    );
    mem.close(Duration::from_secs(60)).await;
    store.close().await.unwrap();
}

fn recall(ix: &Index, queries: &[MomentQuery]) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for q in queries {
        let a = retrieve::moments(ix, q, &Access::All).unwrap();
        let e = retrieve::moments(
            ix,
            &MomentQuery {
                exact: true,
                ..q.clone()
            },
            &Access::All,
        )
        .unwrap();
        let truth: Vec<(i64, u32)> = e.hits.iter().map(|h| (h.episode_id, h.seq)).collect();
        hit += a
            .hits
            .iter()
            .filter(|h| truth.contains(&(h.episode_id, h.seq)))
            .count();
        total += truth.len();
    }
    hit as f64 / total.max(1) as f64
}

fn moment_queries(n: usize, piece: &str) -> Vec<MomentQuery> {
    let shape = ShowShape {
        piece: piece.into(),
        ..ShowShape::default()
    };
    (0..n)
        .map(|i| {
            let r = synth::show(1_000_000 + i as u64, 777, &shape);
            MomentQuery {
                kind: "show".into(),
                piece: Some(piece.into()),
                vector: r.moments[(i * 37) % r.moments.len()].vector.clone(),
                k: 10,
                ..MomentQuery::default()
            }
        })
        .collect()
}

fn moment_bench(ix: &Index, queries: usize, label: &str) {
    let st = ix.stats();
    println!(
        "{label}: {} moments in {} spaces ({} approximate), {:.0} bytes per moment in the moment indexes, RSS {:.0} MB",
        st.moments,
        st.spaces,
        st.approximate_spaces,
        st.moment_bytes as f64 / st.moments.max(1) as f64,
        rss_mb()
    );
    let qs = moment_queries(queries, "synthetic");
    let mut lat = Vec::with_capacity(qs.len());
    for q in &qs {
        let t = Instant::now();
        let r = retrieve::moments(ix, q, &Access::All).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.hits.len(), 10);
    }
    report("moments like now (k = 10)", lat);
    let sample = &qs[..qs.len().min(200)];
    let t = Instant::now();
    let rec = recall(ix, sample);
    println!(
        "recall@10 against exact search: {rec:.4} over {} queries (exact search: {:.1} ms per query)",
        sample.len(),
        t.elapsed().as_secs_f64() * 1000.0 / sample.len() as f64 / 2.0
    );
}

async fn query(shape: &str, dir: &std::path::Path, queries: usize) {
    let store = Store::open(StoreConfig::new(dir.join("tutti.db"))).unwrap();
    let before = rss_mb();
    let t = Instant::now();
    let mem = Memory::open(store.clone(), cfg(dir)).await.unwrap();
    let st = mem.status();
    println!(
        "rebuild at start: {} episodes, {} moments in {:.1} s (reported by the memory: {} ms); RSS {:.0} → {:.0} MB",
        st.index.episodes,
        st.index.moments,
        t.elapsed().as_secs_f64(),
        st.rebuild_ms,
        before,
        rss_mb()
    );
    if shape == "small" {
        let ids: Vec<i64> = {
            let ix = mem.index();
            let step = (ix.docs.len() / queries.max(1)).max(1);
            ix.docs
                .iter()
                .step_by(step)
                .take(queries)
                .map(|d| d.id)
                .collect()
        };
        let mut lat = Vec::with_capacity(ids.len());
        for id in &ids {
            let q = EpisodeQuery {
                episode_id: Some(*id),
                k: 10,
                ..EpisodeQuery::default()
            };
            let t = Instant::now();
            let r = mem.similar_episodes(&q, &Access::All).unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(!r.is_empty());
        }
        report("episodes like this one (k = 10)", lat);
        let mut lat = Vec::with_capacity(ids.len());
        for id in &ids {
            let q = EpisodeQuery {
                episode_id: Some(*id),
                k: 10,
                diversity: Some(0.3),
                ..EpisodeQuery::default()
            };
            let t = Instant::now();
            let _ = mem.similar_episodes(&q, &Access::All).unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        report("episodes like this one (k = 10, diversity 0.3)", lat);
    } else {
        let ix = mem.index();
        moment_bench(&ix, queries, "show episodes");
    }
    drop(mem);
    store.close().await.unwrap();
}

fn full(id: i64, r: &tutti_memory::Record) -> MemEpisodeFull {
    let dims = r.dims.clone().unwrap_or_default();
    MemEpisodeFull {
        episode: MemEpisodeRow {
            id,
            key: r.key.clone().unwrap_or_default(),
            context: MemContext {
                kind: r.context.kind.clone(),
                piece: r.context.piece.clone(),
                spec_version: None,
                ensemble_id: None,
                subject: None,
                venue: r.context.venue.clone(),
                tags: r.context.tags.clone(),
                text: r.context.text.clone(),
            },
            dims_json: Some(serde_json::to_string(&dims).unwrap()),
            status: MemStatus::Completed,
            started_at_ms: r.started_at_ms.unwrap_or(0),
            ended_at_ms: r.ended_at_ms,
            rating: None,
            notes: String::new(),
            engagement_json: None,
            reward: Some(0.5),
            steps: r.steps.len() as i64,
            moments: r.moments.len() as i64,
            done_seq: Some(id),
        },
        steps: r
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| tutti_store::MemStepRow {
                seq: i as i64,
                at_ms: s.at_ms,
                kind: s.kind.clone(),
                data_json: s.data.to_string(),
            })
            .collect(),
        chunks: vec![MemChunkRow {
            first_seq: 0,
            count: r.moments.len() as i64,
            dims: dims.len() as i64,
            data: codec::encode(&r.moments, dims.len()),
        }],
    }
}

fn scale(
    moments: u64,
    queries: usize,
    nprobe: Option<usize>,
    coarse: Option<usize>,
    rerank: Option<usize>,
) {
    let shape = ShowShape::default();
    let shows = moments.div_ceil(shape.moments as u64);
    let mut ann = AnnConfig::default();
    if let Some(n) = nprobe {
        ann.nprobe = n;
    }
    if let Some(c) = coarse {
        ann.coarse_probe = c;
    }
    if let Some(r) = rerank {
        ann.rerank = r;
    }
    println!("settings: {ann:?}");
    let mut ix = Index::new(ann);
    let t = Instant::now();
    for i in 0..shows {
        let r = synth::show(i, 42, &shape);
        ix.insert(&full(i as i64 + 1, &r), true).unwrap();
        if i % 5000 == 4999 {
            eprintln!(
                "  {} shows loaded, {:.0} s, RSS {:.0} MB",
                i + 1,
                t.elapsed().as_secs_f64(),
                rss_mb()
            );
        }
    }
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    ix.finish_bulk();
    println!(
        "in-memory build: {shows} shows, loading {load:.1} s (generating and decoding included), index build {:.1} s",
        t.elapsed().as_secs_f64()
    );
    moment_bench(&ix, queries, &format!("scale {moments}"));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match (arg(1), arg(2)) {
        (Some("generate"), Some(shape @ ("small" | "show"))) => {
            let n: u64 = arg(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let dir = std::path::PathBuf::from(arg(4).unwrap_or("memory-bench-data"));
            rt.block_on(generate(shape, n, &dir));
        }
        (Some("query"), Some(shape @ ("small" | "show"))) => {
            let dir = std::path::PathBuf::from(arg(3).unwrap_or("memory-bench-data"));
            let q: usize = arg(4).and_then(|s| s.parse().ok()).unwrap_or(2000);
            rt.block_on(query(shape, &dir, q));
        }
        (Some("scale"), Some(m)) => {
            let moments: u64 = m.parse().expect("MOMENTS");
            let q: usize = arg(3).and_then(|s| s.parse().ok()).unwrap_or(2000);
            let nprobe = arg(4).and_then(|s| s.parse().ok());
            let coarse = arg(5).and_then(|s| s.parse().ok());
            let rerank = arg(6).and_then(|s| s.parse().ok());
            scale(moments, q, nprobe, coarse, rerank);
        }
        _ => {
            eprintln!("usage: memory_bench generate small|show N DIR | query small|show DIR [QUERIES] | scale MOMENTS [QUERIES] [NPROBE]");
            std::process::exit(2);
        }
    }
}
