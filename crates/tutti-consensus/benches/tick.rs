//! Tick cost of the consensus engine for 1k to 1M participants with 8 continuous parameters
//! (trimmed mean, 10 s recency half-life, 0.2 s smoothing), in the workloads of issue 2:
//!
//! - `typical`: each participant changes one parameter per second at a 20 Hz tick, so
//!   `participants / 20` submits (random participant, parameter and value) happen between
//!   ticks; one iteration = those submits + the tick.
//! - `worst`: every participant changed every parameter since the last tick; one iteration =
//!   `participants × 8` submits + the tick.
//! - `tick_only`: a tick with no new inputs (shows that a tick is O(bins), not O(participants)).
//! - `agreement_typical`: the typical workload with the agreement term on, which adds one
//!   pass over all inputs per tick.
//!
//! Sample counts and times are kept small so the whole run takes a few minutes on a shared
//! 2-core machine: `cargo bench -p tutti-consensus --bench tick`.
//! This benchmark must never be used as a test: it asserts nothing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use tutti_consensus::{
    Engine, EngineConfig, InputValue, ParamConfig, ParamId, ParticipantId, Smoothing,
};

const PARAMS: u16 = 8;
const TICK: f64 = 0.05;
const SIZES: [(usize, &str); 4] = [
    (1_000, "1k"),
    (10_000, "10k"),
    (100_000, "100k"),
    (1_000_000, "1M"),
];

/// splitmix64: a tiny deterministic generator, so the benchmark needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn config(agreement: f64) -> EngineConfig {
    EngineConfig {
        params: (0..PARAMS)
            .map(|_| ParamConfig {
                smoothing: Smoothing {
                    time_constant: Some(0.2),
                    slew_per_second: None,
                },
                ..ParamConfig::continuous(0.0, 1.0, 0.5)
            })
            .collect(),
        recency_half_life: Some(10.0),
        agreement,
        ..EngineConfig::default()
    }
}

/// An engine with `n` participants who have all input every parameter once.
struct Show {
    engine: Engine,
    ids: Vec<ParticipantId>,
    rng: Rng,
    now: f64,
}

impl Show {
    fn new(n: usize, agreement: f64) -> Self {
        let mut engine = Engine::with_capacity(config(agreement), n).expect("valid config");
        let mut rng = Rng(42);
        let ids: Vec<_> = (0..n)
            .map(|_| engine.join(None, 1.0).expect("join"))
            .collect();
        for &id in &ids {
            for p in 0..PARAMS {
                engine
                    .submit(id, ParamId(p), InputValue::Continuous(rng.unit()), 0.0)
                    .expect("valid input");
            }
        }
        engine.tick(0.0);
        Show {
            engine,
            ids,
            rng,
            now: 0.0,
        }
    }

    /// `participants / 20` random submits, then a tick.
    fn typical(&mut self) -> f64 {
        self.now += TICK;
        for _ in 0..self.ids.len() / 20 {
            let id = self.ids[self.rng.below(self.ids.len())];
            let p = self.rng.below(usize::from(PARAMS)) as u16;
            let x = self.rng.unit();
            self.engine
                .submit(id, ParamId(p), InputValue::Continuous(x), self.now)
                .expect("valid input");
        }
        self.engine.tick(self.now).params[0].value
    }

    /// Every participant submits every parameter, then a tick.
    fn worst(&mut self) -> f64 {
        self.now += TICK;
        let x = self.rng.unit();
        for (i, &id) in self.ids.iter().enumerate() {
            for p in 0..PARAMS {
                let v = (x + 0.618_033_988_75 * (i as f64 + f64::from(p))).fract();
                self.engine
                    .submit(id, ParamId(p), InputValue::Continuous(v), self.now)
                    .expect("valid input");
            }
        }
        self.engine.tick(self.now).params[0].value
    }

    fn tick_only(&mut self) -> f64 {
        self.now += TICK;
        self.engine.tick(self.now).params[0].value
    }
}

fn group_settings(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
}

fn bench_workload(
    c: &mut Criterion,
    name: &str,
    agreement: f64,
    sizes: &[(usize, &str)],
    run: fn(&mut Show) -> f64,
) {
    let mut g = c.benchmark_group(name);
    group_settings(&mut g);
    for &(n, label) in sizes {
        let mut show = Show::new(n, agreement);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(label), &n, |b, _| {
            b.iter(|| black_box(run(&mut show)));
        });
    }
    g.finish();
}

fn typical(c: &mut Criterion) {
    bench_workload(c, "typical", 0.0, &SIZES, Show::typical);
}

fn worst(c: &mut Criterion) {
    bench_workload(c, "worst", 0.0, &SIZES, Show::worst);
}

fn tick_only(c: &mut Criterion) {
    bench_workload(c, "tick_only", 0.0, &SIZES[3..], Show::tick_only);
}

fn agreement_typical(c: &mut Criterion) {
    bench_workload(c, "agreement_typical", 1.0, &SIZES[2..], Show::typical);
}

criterion_group!(benches, typical, worst, tick_only, agreement_typical);
criterion_main!(benches);
