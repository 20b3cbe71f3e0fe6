//! `cargo bench -p tutti-audio`: one block of the busy demo show (all voices, full master
//! chain) per iteration, at 256 and 1024 frames, plus the summary figure of
//! `tutti_audio::bench::bench_engine` (fraction of one core, latency).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tutti_audio::bench::{bench_engine, busy_show};
use tutti_audio::{Engine, EngineConfig};

fn engine_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.sample_size(30);
    for block in [256usize, 1024] {
        let (_h, mut core) = Engine::new(EngineConfig {
            block_frames: block,
            initial: busy_show(),
            ..EngineConfig::default()
        })
        .unwrap();
        let mut l = vec![0.0f32; block];
        let mut r = vec![0.0f32; block];
        group.throughput(Throughput::Elements(block as u64));
        group.bench_function(format!("demo_show_block_{block}"), |b| {
            b.iter(|| core.process(&mut l, &mut r))
        });
    }
    group.finish();
    for block in [256usize, 1024] {
        let cfg = EngineConfig {
            block_frames: block,
            ..EngineConfig::default()
        };
        let r = bench_engine(&cfg, 10.0).unwrap();
        println!(
            "engine block {block}: {:.2} % of one core ({:.0}x real time), worst block {:.1} %, latency {} samples = {:.2} ms",
            r.cpu_fraction * 100.0,
            r.realtime_factor,
            r.worst_block_fraction * 100.0,
            r.latency.total_samples,
            r.latency.total_ms
        );
    }
}

criterion_group!(benches, engine_block);
criterion_main!(benches);
