//! Criterion benchmarks of the same cases as `tutti bench audio` (`tutti_dsp::bench::cases`).
//! Throughput is reported in stereo frames per second; divide by 48 000 for "x real time".
//!
//! `cargo bench -p tutti-dsp` (or `cargo bench -p tutti-dsp -- biquad_512` for one case).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tutti_dsp::Processor;

fn cases(c: &mut Criterion) {
    let mut group = c.benchmark_group("audio");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_millis(500));
    group.measurement_time(std::time::Duration::from_secs(2));
    for case in tutti_dsp::bench::cases() {
        let (mut chain, _) = case.build();
        let (src_l, src_r) = (
            tutti_dsp::bench::noise(case.block, 1),
            tutti_dsp::bench::noise(case.block, 2),
        );
        let (mut l, mut r) = (src_l.clone(), src_r.clone());
        group.throughput(Throughput::Elements(case.block as u64));
        group.bench_function(case.name, |b| {
            b.iter(|| {
                l.copy_from_slice(&src_l);
                r.copy_from_slice(&src_r);
                chain.process(&mut l, &mut r);
                std::hint::black_box((&l, &r));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cases);
criterion_main!(benches);
