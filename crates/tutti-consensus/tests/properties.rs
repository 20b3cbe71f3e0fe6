//! Property tests of the consensus engine: invariants that must hold for any inputs.
//!
//! - submission order does not matter (permutation invariance);
//! - every published value is within its parameter's range, whatever the inputs and overrides;
//! - merging partials is associative and commutative, and finishing a tick from merged
//!   shards equals one engine holding everyone;
//! - smoothing depends on elapsed time only, not on the tick rate or regularity;
//! - the incrementally maintained sums equal a brute-force recomputation from a model of the
//!   participants after any sequence of joins, leaves, trust changes, submits and ticks.

use proptest::prelude::*;
use tutti_consensus::{
    Aggregation, Engine, EngineConfig, InputValue, Override, OverrideMode, ParamConfig, ParamId,
    ParamKind, ParamPartial, Partials, Smoothing, Snapshot, ZoneId,
};

/// A continuous trimmed mean on [-1, 1], a median on [0, 10], a 5-way vote.
fn config(half_life: Option<f64>) -> EngineConfig {
    EngineConfig {
        params: vec![
            ParamConfig::continuous(-1.0, 1.0, 0.0),
            ParamConfig {
                aggregation: Aggregation::Median,
                ..ParamConfig::continuous(0.0, 10.0, 5.0)
            },
            ParamConfig {
                kind: ParamKind::Discrete {
                    choices: 5,
                    default: 0,
                    hysteresis: 0.1,
                },
                aggregation: Aggregation::Plurality,
                smoothing: Smoothing::default(),
            },
        ],
        zone_weights: vec![1.0, 2.5, 0.0],
        recency_half_life: half_life,
        ..EngineConfig::default()
    }
}

/// One participant: zone, trust, and an optional (value, time) per parameter.
#[derive(Clone, Debug)]
struct Person {
    zone: Option<u16>,
    trust: f64,
    inputs: [Option<(f64, f64)>; 3],
}

fn value_for(param: usize, x: f64) -> InputValue {
    match param {
        0 => InputValue::Continuous(-1.0 + 2.0 * x),
        1 => InputValue::Continuous(10.0 * x),
        _ => InputValue::Choice(((x * 5.0) as u32).min(4)),
    }
}

fn person() -> impl Strategy<Value = Person> {
    (
        prop::option::of(0u16..3),
        prop_oneof![Just(1.0), 0.0..4.0f64],
        prop::array::uniform3(prop::option::of((0.0..=1.0f64, 0.0..10.0f64))),
    )
        .prop_map(|(zone, trust, inputs)| Person {
            zone,
            trust,
            inputs,
        })
}

/// Joins everyone, submits every (participant, param) input in `order`, ticks at 10 s.
fn run(cfg: &EngineConfig, people: &[Person], order: &[(usize, usize)]) -> Snapshot {
    let mut e = Engine::new(cfg.clone()).unwrap();
    let ids: Vec<_> = people
        .iter()
        .map(|p| e.join(p.zone.map(ZoneId), p.trust).unwrap())
        .collect();
    for &(who, param) in order {
        if let Some((x, t)) = people[who].inputs[param] {
            e.submit(ids[who], ParamId(param as u16), value_for(param, x), t)
                .unwrap();
        }
    }
    e.tick(10.0).clone()
}

fn assert_close(a: &Snapshot, b: &Snapshot, tol: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.participants, b.participants);
    for (i, (x, y)) in a.params.iter().zip(&b.params).enumerate() {
        prop_assert!(
            (x.value - y.value).abs() <= tol,
            "param {}: {} vs {}",
            i,
            x.value,
            y.value
        );
        prop_assert_eq!(x.raw.is_some(), y.raw.is_some());
        prop_assert_eq!(x.participants, y.participants);
        prop_assert!((x.dispersion - y.dispersion).abs() <= tol);
        prop_assert!((x.agreement - y.agreement).abs() <= tol);
        for (h, k) in x.histogram.iter().zip(&y.histogram) {
            prop_assert!((h - k).abs() <= 1e-5);
        }
        for (h, k) in x.choice_weights.iter().zip(&y.choice_weights) {
            prop_assert!((h - k).abs() <= 1e-5);
        }
    }
    Ok(())
}

fn all_pairs(n: usize) -> Vec<(usize, usize)> {
    (0..n).flat_map(|w| (0..3).map(move |p| (w, p))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn submission_order_does_not_matter(
        people in prop::collection::vec(person(), 1..40),
        half_life in prop::option::of(0.5..20.0f64),
        seed in any::<u64>(),
    ) {
        let cfg = config(half_life);
        let order = all_pairs(people.len());
        let mut shuffled = order.clone();
        // Fisher–Yates with a splitmix64 stream from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            shuffled.swap(i, (z % (i as u64 + 1)) as usize);
        }
        let a = run(&cfg, &people, &order);
        let b = run(&cfg, &people, &shuffled);
        assert_close(&a, &b, 1e-9)?;
    }

    #[test]
    fn values_stay_within_range(
        min in -100.0..100.0f64,
        width in 1e-3..1e3f64,
        agg in prop_oneof![
            Just(Aggregation::Mean),
            Just(Aggregation::Median),
            (0.0..0.49f64).prop_map(|trim| Aggregation::TrimmedMean { trim }),
        ],
        tau in prop::option::of(0.01..5.0f64),
        slew in prop::option::of(0.01..5.0f64),
        inputs in prop::collection::vec((0.0..=1.0f64, 0.0..1.0f64), 0..30),
        modes in prop::collection::vec(
            prop_oneof![
                (-2.0..2.0f64, 0.0..3.0f64).prop_map(|(lo, w)| OverrideMode::Clamp { lo, hi: lo + w }),
                (-3.0..3.0f64).prop_map(|amount| OverrideMode::Bias { amount }),
                (-2.0..3.0f64, 0.0..=1.0f64).prop_map(|(target, factor)| OverrideMode::Blend { target, factor }),
                (-2.0..3.0f64).prop_map(|value| OverrideMode::Lock { value }),
                Just(OverrideMode::Freeze),
            ],
            0..4,
        ),
        agreement in prop_oneof![Just(0.0), 0.0..5.0f64],
    ) {
        let max = min + width;
        // Override numbers are drawn relative to the range, so they reach past both ends.
        let to_units = |v: f64| min + v * width;
        let cfg = EngineConfig {
            params: vec![ParamConfig {
                kind: ParamKind::Continuous { min, max, default: min + 0.3 * width, step: None },
                aggregation: agg,
                smoothing: Smoothing { time_constant: tau, slew_per_second: slew },
            }],
            agreement,
            ..EngineConfig::default()
        };
        let mut e = Engine::new(cfg).unwrap();
        let mut now = 0.0;
        for (i, &(x, dt)) in inputs.iter().enumerate() {
            let p = e.join(None, 1.0).unwrap();
            let v = (min + x * width).clamp(min, max);
            e.submit(p, ParamId(0), InputValue::Continuous(v), now).unwrap();
            if let Some(&mode) = modes.get(i % 7) {
                let mode = match mode {
                    OverrideMode::Clamp { lo, hi } => OverrideMode::Clamp { lo: to_units(lo), hi: to_units(hi) },
                    OverrideMode::Bias { amount } => OverrideMode::Bias { amount: amount * width },
                    OverrideMode::Blend { target, factor } => OverrideMode::Blend { target: to_units(target), factor },
                    OverrideMode::Lock { value } => OverrideMode::Lock { value: to_units(value) },
                    OverrideMode::Freeze => OverrideMode::Freeze,
                };
                e.set_override(Override {
                    param: ParamId(0), mode, priority: (i % 3) as u8, by: i as u32,
                    set_at: now, expires_at: Some(now + 1.0),
                }).unwrap();
            }
            now += dt;
            let s = e.tick(now);
            let out = &s.params[0];
            prop_assert!(out.value >= min && out.value <= max, "{} outside {}..{}", out.value, min, max);
            if let Some(raw) = out.raw {
                prop_assert!(raw >= min && raw <= max, "raw {} outside {}..{}", raw, min, max);
            }
            prop_assert!((0.0..=1.0).contains(&out.agreement));
            prop_assert!((0.0..=1.0).contains(&out.participation));
            prop_assert!(out.dispersion >= 0.0 && out.dispersion <= width / 2.0 + 1e-9 * width);
            let sum: f32 = out.histogram.iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-4 || sum == 0.0, "histogram sums to {}", sum);
        }
    }

    #[test]
    fn merge_is_associative_and_commutative_and_matches_one_engine(
        people in prop::collection::vec((person(), 0usize..3), 0..60),
        half_life in prop::option::of(0.5..20.0f64),
    ) {
        let cfg = config(half_life);
        let mut single = Engine::new(cfg.clone()).unwrap();
        let mut shards: Vec<Engine> = (0..3).map(|_| Engine::new(cfg.clone()).unwrap()).collect();
        for (p, shard) in &people {
            for e in [&mut single, &mut shards[*shard]] {
                let id = e.join(p.zone.map(ZoneId), p.trust).unwrap();
                for (param, input) in p.inputs.iter().enumerate() {
                    if let Some((x, t)) = *input {
                        e.submit(id, ParamId(param as u16), value_for(param, x), t).unwrap();
                    }
                }
            }
        }
        let now = 10.0;
        let [a, b, c] = [0, 1, 2].map(|i| shards[i].partials(now));
        let merged = |parts: &[&Partials]| {
            let mut m = parts[0].clone();
            for p in &parts[1..] {
                m.merge(p).unwrap();
            }
            m
        };
        let mut bc = b.clone();
        bc.merge(&c).unwrap();
        let left = merged(&[&a, &b, &c]);           // (a + b) + c
        let right = merged(&[&a, &bc]);             // a + (b + c)
        let swapped = merged(&[&c, &a, &b]);        // (c + a) + b
        let mut ba = b.clone();
        ba.merge(&a).unwrap();
        let ab = merged(&[&a, &b]);
        for (x, y) in ab.params().iter().zip(ba.params()) {
            // Commutativity of one merge is exact.
            prop_assert_eq!(x.total_weight(), y.total_weight());
            prop_assert_eq!(x.weighted_sum(), y.weighted_sum());
        }
        for other in [&right, &swapped] {
            prop_assert_eq!(left.participants(), other.participants());
            for (x, y) in left.params().iter().zip(other.params()) {
                assert_partial_close(x, y)?;
            }
        }
        let want = single.tick(now).clone();
        for m in [&left, &right, &swapped] {
            let mut finisher = Engine::new(cfg.clone()).unwrap();
            let got = finisher.tick_from(m, now).unwrap().clone();
            assert_close(&want, &got, 1e-9)?;
        }
    }

    #[test]
    fn agreement_term_matches_its_formula(
        inputs in prop::collection::vec((0.0..=1.0f64, 0.0..3.0f64), 1..40),
        a in prop_oneof![0.01..5.0f64, 5.0..1000.0f64],
        current in 0.0..=1.0f64,
    ) {
        let mut e = Engine::new(EngineConfig {
            params: vec![ParamConfig {
                aggregation: Aggregation::Mean,
                ..ParamConfig::continuous(-3.0, 1.0, 0.0)
            }],
            agreement: a,
            ..EngineConfig::default()
        })
        .unwrap();
        e.restore(&[-3.0 + 4.0 * current]);
        let (mut sw, mut swx) = (0.0, 0.0);
        for &(u, trust) in &inputs {
            let p = e.join(None, trust).unwrap();
            let x = -3.0 + 4.0 * u;
            e.submit(p, ParamId(0), InputValue::Continuous(x), 0.0).unwrap();
            let u = (x + 3.0) / 4.0;
            let w = trust * (-a * (u - current).abs()).exp();
            sw += w;
            swx += w * x;
        }
        let got = e.tick(0.0).params[0].raw;
        if sw > 1e-300 {
            let want = swx / sw;
            let got = got.unwrap();
            prop_assert!((got - want).abs() <= 1e-9, "{} vs {}", got, want);
        }
    }

    #[test]
    fn incremental_sums_equal_brute_force(
        ops in prop::collection::vec(op(), 1..250),
        half_life in prop_oneof![Just(None), Just(Some(0.25)), Just(Some(2.0))],
    ) {
        let cfg = config(half_life);
        let mut e = Engine::new(cfg.clone()).unwrap();
        let mut model: Vec<(tutti_consensus::ParticipantId, Person)> = Vec::new();
        let mut now = 0.0;
        for op in ops {
            match op {
                Op::Join(zone, trust) => {
                    let id = e.join(zone.map(ZoneId), trust).unwrap();
                    model.push((id, Person { zone, trust, inputs: [None; 3] }));
                }
                Op::Leave(k) if !model.is_empty() => {
                    let (id, _) = model.swap_remove(k % model.len());
                    prop_assert!(e.leave(id));
                }
                Op::Trust(k, trust) if !model.is_empty() => {
                    let k = k % model.len();
                    e.set_trust(model[k].0, trust).unwrap();
                    model[k].1.trust = trust;
                }
                Op::Submit(k, param, x, dt) if !model.is_empty() => {
                    now += dt;
                    let k = k % model.len();
                    e.submit(model[k].0, ParamId(param as u16), value_for(param, x), now).unwrap();
                    model[k].1.inputs[param] = Some((x, now));
                }
                Op::Tick(dt) => {
                    now += dt;
                    e.tick(now);
                }
                _ => {}
            }
        }
        prop_assert_eq!(e.participants(), model.len());
        let parts = e.partials(now);
        let zone_weights = &cfg.zone_weights;
        for (param, got) in parts.params().iter().enumerate() {
            let mut expected = ParamPartialModel::new(got.bins());
            for (_, p) in &model {
                if let Some((x, t)) = p.inputs[param] {
                    let zone = p.zone.map_or(1.0, |z| zone_weights[usize::from(z)]);
                    let recency = half_life.map_or(1.0, |h| (-(now - t) / h).exp2());
                    expected.add(param, x, recency * zone * p.trust);
                }
            }
            expected.check(got)?;
        }
    }
}

fn assert_partial_close(x: &ParamPartial, y: &ParamPartial) -> Result<(), TestCaseError> {
    let scale = x.total_weight().max(y.total_weight());
    let tol = 1e-12 * scale + f64::MIN_POSITIVE;
    prop_assert_eq!(x.inputs(), y.inputs());
    prop_assert!((x.total_weight() - y.total_weight()).abs() <= tol);
    prop_assert!((x.weighted_sum() - y.weighted_sum()).abs() <= tol * 5.0);
    prop_assert!((x.weighted_sum_sq() - y.weighted_sum_sq()).abs() <= tol * 25.0);
    for i in 0..x.bins() {
        prop_assert!((x.bin_weight(i) - y.bin_weight(i)).abs() <= tol);
        prop_assert!((x.bin_weighted_sum(i) - y.bin_weighted_sum(i)).abs() <= tol * 5.0);
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Op {
    Join(Option<u16>, f64),
    Leave(usize),
    Trust(usize, f64),
    Submit(usize, usize, f64, f64),
    Tick(f64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (prop::option::of(0u16..3), 0.0..3.0f64).prop_map(|(z, t)| Op::Join(z, t)),
        1 => any::<usize>().prop_map(Op::Leave),
        1 => (any::<usize>(), 0.0..3.0f64).prop_map(|(k, t)| Op::Trust(k, t)),
        6 => (any::<usize>(), 0usize..3, 0.0..=1.0f64, 0.0..1.0f64)
            .prop_map(|(k, p, x, dt)| Op::Submit(k, p, x, dt)),
        1 => (0.0..3.0f64).prop_map(Op::Tick),
    ]
}

/// Brute-force sums of one parameter, in the engine's unit form.
struct ParamPartialModel {
    inputs: u64,
    w: f64,
    wu: f64,
    wu2: f64,
    bins: Vec<f64>,
    bins_wu: Vec<f64>,
}

impl ParamPartialModel {
    fn new(bins: usize) -> Self {
        ParamPartialModel {
            inputs: 0,
            w: 0.0,
            wu: 0.0,
            wu2: 0.0,
            bins: vec![0.0; bins],
            bins_wu: vec![0.0; bins],
        }
    }

    fn add(&mut self, param: usize, x: f64, w: f64) {
        let (u, bin) = match value_for(param, x) {
            InputValue::Continuous(v) => {
                let u = match param {
                    0 => (v + 1.0) / 2.0,
                    _ => v / 10.0,
                };
                (u, ((u * 256.0) as usize).min(255))
            }
            InputValue::Choice(c) => (f64::from(c), c as usize),
        };
        self.inputs += 1;
        self.w += w;
        self.wu += w * u;
        self.wu2 += w * u * u;
        self.bins[bin] += w;
        self.bins_wu[bin] += w * u;
    }

    fn check(&self, got: &ParamPartial) -> Result<(), TestCaseError> {
        // Discrete u goes up to 4, so Σw·u² up to 16·Σw.
        let tol = 1e-9 * self.w + 1e-300;
        prop_assert_eq!(got.inputs(), self.inputs);
        prop_assert!(
            (got.total_weight() - self.w).abs() <= tol,
            "Σw {} vs {}",
            got.total_weight(),
            self.w
        );
        prop_assert!(
            (got.weighted_sum() - self.wu).abs() <= 4.0 * tol,
            "Σwu {} vs {}",
            got.weighted_sum(),
            self.wu
        );
        prop_assert!((got.weighted_sum_sq() - self.wu2).abs() <= 16.0 * tol);
        for (i, (&w, &wu)) in self.bins.iter().zip(&self.bins_wu).enumerate() {
            prop_assert!(
                (got.bin_weight(i) - w).abs() <= tol,
                "bin {}: {} vs {}",
                i,
                got.bin_weight(i),
                w
            );
            prop_assert!((got.bin_weighted_sum(i) - wu).abs() <= 4.0 * tol);
        }
        Ok(())
    }
}

/// One participant moves a smoothed parameter on [-10, 10] from `start` to `target` at
/// time 0; the value at each checkpoint (every 0.5 s up to 3 s) when the engine ticks at
/// `times` (which contain the checkpoints).
fn smoothed_run(sm: Smoothing, start: f64, target: f64, times: &[f64]) -> Vec<f64> {
    let mut e = Engine::new(EngineConfig {
        params: vec![ParamConfig {
            smoothing: sm,
            ..ParamConfig::continuous(-10.0, 10.0, start)
        }],
        ..EngineConfig::default()
    })
    .unwrap();
    let p = e.join(None, 1.0).unwrap();
    e.tick(0.0);
    e.submit(p, ParamId(0), InputValue::Continuous(target), 0.0)
        .unwrap();
    let mut at = Vec::new();
    for &t in times {
        let v = e.tick(t).params[0].value;
        if (t * 2.0 - (t * 2.0).round()).abs() < 1e-12 {
            at.push(v);
        }
    }
    at
}

/// Tick times up to 3 s: every `1/rate`, or with `jitter`, gaps drawn from it (in units of
/// `1/rate`); always with the checkpoints 0.5, 1, …, 3 s.
fn tick_times(rate: f64, jitter: &[f64]) -> Vec<f64> {
    let mut times: Vec<f64> = (1..=6).map(|k| f64::from(k) * 0.5).collect();
    let mut t = 0.0;
    let mut i = 0;
    loop {
        let gap = if jitter.is_empty() {
            1.0
        } else {
            jitter[i % jitter.len()]
        };
        i += 1;
        t += gap / rate;
        if t >= 3.0 {
            break;
        }
        times.push(t);
    }
    times.sort_by(f64::total_cmp);
    times.dedup();
    times
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Smoothing depends on elapsed time only: a smoothed value at a given time is the same
    /// whatever the tick rate, and with irregular ticks.
    #[test]
    fn smoothing_is_independent_of_tick_rate(
        tau in prop::option::of(0.01..5.0f64),
        slew in prop::option::of(0.01..20.0f64),
        start in -10.0..10.0f64,
        target in -10.0..10.0f64,
        rate_a in 2.0..240.0f64,
        rate_b in 2.0..240.0f64,
        jitter in prop::collection::vec(0.05..3.0f64, 0..8),
    ) {
        let sm = Smoothing { time_constant: tau, slew_per_second: slew };
        let a = smoothed_run(sm, start, target, &tick_times(rate_a, &[]));
        let b = smoothed_run(sm, start, target, &tick_times(rate_b, &jitter));
        prop_assert_eq!(a.len(), 6);
        prop_assert_eq!(b.len(), 6);
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            prop_assert!(
                (x - y).abs() <= 1e-9,
                "at {} s: {} at {} Hz vs {} at {} Hz with jitter",
                0.5 * (k + 1) as f64, x, rate_a, y, rate_b
            );
            // And it never overshoots: it stays between where it started and the target.
            prop_assert!(*x >= start.min(target) - 1e-9 && *x <= start.max(target) + 1e-9);
        }
    }
}
