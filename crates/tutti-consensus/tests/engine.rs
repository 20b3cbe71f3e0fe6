//! Behaviour tests of the consensus engine through its public API.
//!
//! Each test drives a real [`Engine`] with explicit times and checks the snapshot; none may
//! depend on wall-clock time.

use tutti_consensus::{
    Aggregation, ConfigError, Engine, EngineConfig, InputError, InputValue, Override,
    OverrideError, OverrideKind, OverrideMode, ParamConfig, ParamId, ParamKind, Partials,
    ParticipantId, Smoothing, ZoneId,
};

const P0: ParamId = ParamId(0);

fn cont(agg: Aggregation) -> ParamConfig {
    ParamConfig {
        aggregation: agg,
        ..ParamConfig::continuous(0.0, 1.0, 0.5)
    }
}

fn engine_with(params: Vec<ParamConfig>) -> Engine {
    Engine::new(EngineConfig {
        params,
        ..EngineConfig::default()
    })
    .expect("valid config")
}

fn c(x: f64) -> InputValue {
    InputValue::Continuous(x)
}

fn join_n(e: &mut Engine, n: usize) -> Vec<ParticipantId> {
    (0..n).map(|_| e.join(None, 1.0).expect("join")).collect()
}

fn value(e: &mut Engine, now: f64) -> f64 {
    e.tick(now).params[0].value
}

fn ov(mode: OverrideMode, priority: u8, by: u32, set_at: f64) -> Override {
    Override {
        param: P0,
        mode,
        priority,
        by,
        set_at,
        expires_at: None,
    }
}

#[test]
fn aggregations_give_their_textbook_values() {
    // Inputs 0.1, 0.2, 0.3, 0.4 and 1.0 with equal weights.
    let inputs = [0.1, 0.2, 0.3, 0.4, 1.0];
    let run = |agg| {
        let mut e = engine_with(vec![cont(agg)]);
        for (p, &x) in join_n(&mut e, inputs.len()).into_iter().zip(&inputs) {
            e.submit(p, P0, c(x), 0.0).unwrap();
        }
        value(&mut e, 0.0)
    };
    let mean = run(Aggregation::Mean);
    assert!((mean - 0.4).abs() < 1e-12, "mean {mean}");
    let median = run(Aggregation::Median);
    assert!((median - 0.3).abs() < 1.0 / 256.0, "median {median}");
    // 20 % of 5 = one input cut from each tail: mean of 0.2, 0.3, 0.4.
    let trimmed = run(Aggregation::TrimmedMean { trim: 0.2 });
    assert!((trimmed - 0.3).abs() < 1e-9, "trimmed {trimmed}");
}

#[test]
fn no_input_means_default_and_no_raw() {
    let mut e = engine_with(vec![cont(Aggregation::default())]);
    join_n(&mut e, 3);
    let s = e.tick(1.0);
    let p = &s.params[0];
    assert_eq!(p.value, 0.5);
    assert_eq!(p.raw, None);
    assert_eq!(p.participants, 0);
    assert_eq!(p.participation, 0.0);
    assert!(p.histogram.iter().all(|&h| h == 0.0));
    assert_eq!(s.participants, 3);
}

#[test]
fn outputs_report_participation_agreement_and_histogram() {
    let mut e = engine_with(vec![cont(Aggregation::Mean), cont(Aggregation::Mean)]);
    let ps = join_n(&mut e, 4);
    // Two at each end of param 0: maximal disagreement.
    for (i, &p) in ps.iter().enumerate() {
        e.submit(p, P0, c(if i % 2 == 0 { 0.0 } else { 1.0 }), 0.0)
            .unwrap();
    }
    // Only one participant on param 1.
    e.submit(ps[0], ParamId(1), c(0.25), 0.0).unwrap();
    let s = e.tick(0.0);
    let a = &s.params[0];
    assert_eq!(a.participants, 4);
    assert_eq!(a.participation, 1.0);
    assert!(a.agreement.abs() < 1e-9, "agreement {}", a.agreement);
    assert!(
        (a.dispersion - 0.5).abs() < 1e-9,
        "dispersion {}",
        a.dispersion
    );
    assert_eq!(a.histogram.len(), 16);
    assert!((a.histogram[0] - 0.5).abs() < 1e-6);
    assert!((a.histogram[15] - 0.5).abs() < 1e-6);
    let sum: f32 = a.histogram.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5);
    let b = &s.params[1];
    assert_eq!(b.participants, 1);
    assert_eq!(b.participation, 0.25);
    assert_eq!(b.agreement, 1.0);
    assert_eq!(b.dispersion, 0.0);
    assert!((b.histogram[4] - 1.0).abs() < 1e-6, "{:?}", b.histogram);
}

#[test]
fn uneven_display_bins_split_fine_bins_pro_rata() {
    let mut e = Engine::new(EngineConfig {
        params: vec![cont(Aggregation::Mean)],
        histogram_bins: 3,
        ..EngineConfig::default()
    })
    .unwrap();
    let ps = join_n(&mut e, 3);
    for (p, x) in ps.into_iter().zip([0.1, 0.5, 0.9]) {
        e.submit(p, P0, c(x), 0.0).unwrap();
    }
    let h = &e.tick(0.0).params[0].histogram;
    assert_eq!(h.len(), 3);
    for &v in h {
        assert!((v - 1.0 / 3.0).abs() < 1e-6, "{h:?}");
    }
}

#[test]
fn flood_from_one_participant_changes_nothing() {
    let setup = || {
        let mut e = engine_with(vec![cont(Aggregation::default())]);
        let ps = join_n(&mut e, 10);
        for (i, &p) in ps.iter().enumerate() {
            e.submit(p, P0, c(0.05 * i as f64), 0.0).unwrap();
        }
        (e, ps)
    };
    let (mut once, ps) = setup();
    once.submit(ps[3], P0, c(0.9), 1.0).unwrap();
    let expected = once.tick(1.0).clone();

    let (mut flood, ps) = setup();
    for i in 0..10_000 {
        // Anything in between, then the same final value.
        flood
            .submit(ps[3], P0, c((i % 100) as f64 / 100.0), 1.0)
            .unwrap();
    }
    flood.submit(ps[3], P0, c(0.9), 1.0).unwrap();
    let got = flood.tick(1.0);
    let (a, b) = (&expected.params[0], &got.params[0]);
    assert_eq!(a.participants, b.participants);
    assert!(
        (a.value - b.value).abs() < 1e-9,
        "{} vs {}",
        a.value,
        b.value
    );
    assert!((a.dispersion - b.dispersion).abs() < 1e-9);
    for (x, y) in a.histogram.iter().zip(&b.histogram) {
        assert!((x - y).abs() < 1e-6);
    }
}

#[test]
fn thirty_percent_adversaries_move_robust_aggregates_far_less_than_the_mean() {
    let shift = |agg| {
        let mut e = engine_with(vec![cont(agg)]);
        let ps = join_n(&mut e, 1000);
        // 700 honest participants spread over 0.45..0.55 (centre 0.5) ...
        for (i, &p) in ps.iter().take(700).enumerate() {
            e.submit(p, P0, c(0.45 + 0.1 * i as f64 / 699.0), 0.0)
                .unwrap();
        }
        let honest = value(&mut e, 0.0);
        // ... then 300 adversaries push to the top.
        for &p in &ps[700..] {
            e.submit(p, P0, c(1.0), 0.0).unwrap();
        }
        (value(&mut e, 0.0) - honest).abs()
    };
    let mean = shift(Aggregation::Mean);
    let median = shift(Aggregation::Median);
    let trim30 = shift(Aggregation::TrimmedMean { trim: 0.3 });
    let trim20 = shift(Aggregation::TrimmedMean { trim: 0.2 });
    assert!((mean - 0.15).abs() < 1e-3, "mean moved {mean}");
    assert!(median * 5.0 < mean, "median moved {median}, mean {mean}");
    assert!(
        trim30 * 5.0 < mean,
        "30 % trimmed mean moved {trim30}, mean {mean}"
    );
    assert!(
        trim20 * 1.4 < mean,
        "20 % trimmed mean moved {trim20}, mean {mean}"
    );
}

#[test]
fn newer_input_outweighs_older_by_the_half_life_ratio() {
    let h = 4.0;
    let mut e = Engine::new(EngineConfig {
        params: vec![cont(Aggregation::Mean)],
        recency_half_life: Some(h),
        ..EngineConfig::default()
    })
    .unwrap();
    let ps = join_n(&mut e, 2);
    e.submit(ps[0], P0, c(0.0), 10.0).unwrap();
    e.submit(ps[1], P0, c(1.0), 10.0 + h).unwrap();
    // Weights 1/2 and 1 at any later time: mean = 1 / 1.5.
    for now in [10.0 + h, 30.0, 100.0] {
        let v = value(&mut e, now);
        assert!((v - 2.0 / 3.0).abs() < 1e-12, "at {now}: {v}");
    }
    // Two half-lives apart: 1/4 vs 1.
    e.submit(ps[0], P0, c(0.0), 100.0).unwrap();
    e.submit(ps[1], P0, c(1.0), 100.0 + 2.0 * h).unwrap();
    let v = value(&mut e, 120.0);
    assert!((v - 0.8).abs() < 1e-12, "{v}");
    // Absolute weights at `now` are visible in the partials.
    let parts = e.partials(100.0 + 3.0 * h);
    let w = parts.params()[0].total_weight();
    assert!((w - (0.125 + 0.5)).abs() < 1e-12, "total weight {w}");
}

#[test]
fn zone_weight_and_trust_scale_influence() {
    let mut e = Engine::new(EngineConfig {
        params: vec![cont(Aggregation::Mean)],
        zone_weights: vec![1.0, 3.0],
        ..EngineConfig::default()
    })
    .unwrap();
    let a = e.join(Some(ZoneId(0)), 1.0).unwrap();
    let b = e.join(Some(ZoneId(1)), 1.0).unwrap();
    e.submit(a, P0, c(0.0), 0.0).unwrap();
    e.submit(b, P0, c(1.0), 0.0).unwrap();
    assert!((value(&mut e, 0.0) - 0.75).abs() < 1e-12);
    e.set_trust(b, 1.0 / 3.0).unwrap();
    assert!((value(&mut e, 0.0) - 0.5).abs() < 1e-12);
    e.set_trust(b, 0.0).unwrap();
    assert!(value(&mut e, 0.0).abs() < 1e-12);
    assert_eq!(
        e.join(Some(ZoneId(2)), 1.0),
        Err(InputError::UnknownZone { zone: 2, zones: 2 })
    );
    assert!(matches!(
        e.set_trust(a, f64::NAN),
        Err(InputError::InvalidTrust { .. })
    ));
    assert!(matches!(
        e.join(None, -1.0),
        Err(InputError::InvalidTrust { .. })
    ));
}

#[test]
fn leave_removes_inputs_and_stale_handles_are_rejected() {
    let mut e = engine_with(vec![cont(Aggregation::Mean)]);
    let ps = join_n(&mut e, 2);
    e.submit(ps[0], P0, c(0.0), 0.0).unwrap();
    e.submit(ps[1], P0, c(1.0), 0.0).unwrap();
    assert!((value(&mut e, 0.0) - 0.5).abs() < 1e-12);
    assert!(e.leave(ps[1]));
    assert_eq!(e.participants(), 1);
    assert!(value(&mut e, 0.0).abs() < 1e-12);
    assert!(!e.leave(ps[1]), "second leave is a no-op");
    assert_eq!(
        e.submit(ps[1], P0, c(1.0), 0.0),
        Err(InputError::UnknownParticipant)
    );
    // The slot is reused under a new generation; the old handle stays dead.
    let newcomer = e.join(None, 1.0).unwrap();
    assert_eq!(newcomer.slot, ps[1].slot);
    assert_ne!(newcomer.generation, ps[1].generation);
    assert_eq!(
        e.submit(ps[1], P0, c(1.0), 0.0),
        Err(InputError::UnknownParticipant)
    );
    assert_eq!(e.tick(0.0).params[0].participants, 1);
    e.submit(newcomer, P0, c(1.0), 0.0).unwrap();
    assert!((value(&mut e, 0.0) - 0.5).abs() < 1e-12);
}

#[test]
fn invalid_inputs_return_the_right_error_and_change_nothing() {
    let mut e = engine_with(vec![
        ParamConfig::continuous(-1.0, 1.0, 0.0),
        ParamConfig::discrete(3, 0),
    ]);
    let p = e.join(None, 1.0).unwrap();
    e.submit(p, P0, c(0.5), 0.0).unwrap();
    let before = e.tick(0.0).clone();
    let parts_before = e.partials(0.0);
    let ghost = ParticipantId {
        slot: 99,
        generation: 0,
    };
    let cases = [
        (ghost, P0, c(0.1), 0.0, InputError::UnknownParticipant),
        (p, ParamId(2), c(0.1), 0.0, InputError::UnknownParam),
        (p, P0, InputValue::Choice(1), 0.0, InputError::WrongType),
        (p, ParamId(1), c(1.0), 0.0, InputError::WrongType),
        (p, P0, c(f64::NAN), 0.0, InputError::NotFinite),
        (p, P0, c(f64::INFINITY), 0.0, InputError::NotFinite),
        (p, P0, c(0.1), f64::NAN, InputError::NotFinite),
        (
            p,
            P0,
            c(1.5),
            0.0,
            InputError::OutOfRange {
                min: -1.0,
                max: 1.0,
            },
        ),
        (
            p,
            ParamId(1),
            InputValue::Choice(3),
            0.0,
            InputError::InvalidChoice { choices: 3 },
        ),
    ];
    for (who, param, v, now, err) in cases {
        assert_eq!(
            e.submit(who, param, v, now),
            Err(err),
            "{who:?} {param:?} {v:?}"
        );
    }
    assert_eq!(e.partials(0.0), parts_before);
    let mut after = e.tick(0.0).clone();
    after.tick = before.tick;
    assert_eq!(after, before);
}

#[test]
fn continuous_step_snaps_inputs() {
    let mut e = engine_with(vec![ParamConfig {
        kind: ParamKind::Continuous {
            min: 0.0,
            max: 10.0,
            default: 0.0,
            step: Some(2.5),
        },
        aggregation: Aggregation::Mean,
        smoothing: Smoothing::default(),
    }]);
    let p = e.join(None, 1.0).unwrap();
    e.submit(p, P0, c(6.0), 0.0).unwrap();
    assert_eq!(value(&mut e, 0.0), 5.0);
    e.submit(p, P0, c(9.9), 0.0).unwrap();
    assert_eq!(value(&mut e, 0.0), 10.0);
}

#[test]
fn plurality_with_hysteresis() {
    let mut e = engine_with(vec![ParamConfig {
        kind: ParamKind::Discrete {
            choices: 3,
            default: 0,
            hysteresis: 0.2,
        },
        aggregation: Aggregation::Plurality,
        smoothing: Smoothing::default(),
    }]);
    let ps = join_n(&mut e, 10);
    let vote = |e: &mut Engine, counts: [usize; 3]| {
        let mut it = ps.iter();
        for (choice, &n) in counts.iter().enumerate() {
            for &p in it.by_ref().take(n) {
                e.submit(p, P0, InputValue::Choice(choice as u32), 0.0)
                    .unwrap();
            }
        }
    };
    // 4 vs 6: choice 1 leads the current (default 0) by 0.2, not more: no switch.
    vote(&mut e, [4, 6, 0]);
    let s = e.tick(0.0);
    assert_eq!(s.params[0].value, 0.0);
    assert!((s.params[0].agreement - 0.4).abs() < 1e-9);
    assert_eq!(s.params[0].choice_weights, vec![0.4, 0.6, 0.0]);
    assert!(s.params[0].histogram.is_empty());
    // 3 vs 7: lead 0.4 > 0.2: switch to 1.
    vote(&mut e, [3, 7, 0]);
    assert_eq!(value(&mut e, 0.0), 1.0);
    // Now 1 is current: 2 needs to beat it by more than 0.2 as well.
    vote(&mut e, [1, 4, 5]);
    assert_eq!(value(&mut e, 0.0), 1.0);
    vote(&mut e, [1, 2, 7]);
    assert_eq!(value(&mut e, 0.0), 2.0);
}

#[test]
fn each_override_mode() {
    let base = || {
        let mut e = engine_with(vec![ParamConfig {
            aggregation: Aggregation::Mean,
            ..ParamConfig::continuous(0.0, 10.0, 5.0)
        }]);
        let p = e.join(None, 1.0).unwrap();
        e.submit(p, P0, c(8.0), 0.0).unwrap();
        assert_eq!(value(&mut e, 0.0), 8.0);
        e
    };
    let with = |mode| {
        let mut e = base();
        e.set_override(ov(mode, 1, 7, 0.0)).unwrap();
        let s = e.tick(0.1);
        (s.params[0].value, s.params[0].clone())
    };
    assert_eq!(with(OverrideMode::Clamp { lo: 2.0, hi: 6.0 }).0, 6.0);
    assert_eq!(with(OverrideMode::Bias { amount: -3.0 }).0, 5.0);
    // Bias past the range is clamped into it.
    assert_eq!(with(OverrideMode::Bias { amount: 5.0 }).0, 10.0);
    let (v, out) = with(OverrideMode::Blend {
        target: 0.0,
        factor: 0.25,
    });
    assert_eq!(v, 6.0);
    assert_eq!(out.overrides.len(), 1);
    assert_eq!(out.overrides[0].by, 7);
    assert_eq!(out.raw, Some(8.0), "raw is before overrides");
    let (v, out) = with(OverrideMode::Lock { value: 1.0 });
    assert_eq!(v, 1.0);
    assert!(out.locked && !out.frozen);
    assert_eq!(with(OverrideMode::Lock { value: 99.0 }).0, 10.0);

    // Freeze holds the value published when it was set, while the crowd moves.
    let mut e = base();
    let p = e.join(None, 1.0).unwrap();
    e.set_override(ov(OverrideMode::Freeze, 1, 7, 0.0)).unwrap();
    e.submit(p, P0, c(0.0), 0.1).unwrap();
    let s = e.tick(0.2);
    assert_eq!(s.params[0].value, 8.0);
    assert!(s.params[0].frozen);
    assert_eq!(s.params[0].raw, Some(4.0));
    assert_eq!(e.clear_override(P0, OverrideKind::Freeze, None), 1);
    assert_eq!(value(&mut e, 0.3), 4.0);
}

#[test]
fn overrides_apply_in_the_fixed_order() {
    let mut e = engine_with(vec![ParamConfig::continuous(0.0, 10.0, 5.0)]);
    let p = e.join(None, 1.0).unwrap();
    e.submit(p, P0, c(9.0), 0.0).unwrap();
    // Set in reverse order; they must still apply clamp → bias → blend.
    e.set_override(ov(
        OverrideMode::Blend {
            target: 0.0,
            factor: 0.5,
        },
        1,
        1,
        0.0,
    ))
    .unwrap();
    e.set_override(ov(OverrideMode::Bias { amount: 2.0 }, 1, 1, 0.0))
        .unwrap();
    e.set_override(ov(OverrideMode::Clamp { lo: 0.0, hi: 4.0 }, 1, 1, 0.0))
        .unwrap();
    // clamp(9) = 4, + 2 = 6, blend with 0 by half = 3.
    let s = e.tick(0.0);
    assert_eq!(s.params[0].value, 3.0);
    let kinds: Vec<OverrideKind> = s.params[0]
        .overrides
        .iter()
        .map(|o| o.mode.kind())
        .collect();
    assert_eq!(
        kinds,
        vec![OverrideKind::Clamp, OverrideKind::Bias, OverrideKind::Blend]
    );
    // Lock beats all three; freeze beats the lock and holds what was published (3).
    e.set_override(ov(OverrideMode::Lock { value: 7.0 }, 1, 1, 0.0))
        .unwrap();
    assert_eq!(value(&mut e, 0.0), 7.0);
    e.set_override(ov(OverrideMode::Freeze, 1, 1, 0.0)).unwrap();
    e.set_override(ov(OverrideMode::Lock { value: 1.0 }, 1, 1, 0.0))
        .unwrap();
    let s = e.tick(0.0);
    assert_eq!(s.params[0].value, 7.0);
    assert!(s.params[0].frozen && s.params[0].locked);
}

#[test]
fn priority_then_recency_decides_between_performers() {
    let mut e = engine_with(vec![ParamConfig::continuous(0.0, 10.0, 5.0)]);
    let lock = |v| OverrideMode::Lock { value: v };
    e.set_override(ov(lock(1.0), 2, 10, 5.0)).unwrap();
    e.set_override(ov(lock(2.0), 1, 11, 9.0)).unwrap();
    // Higher priority wins although older.
    assert_eq!(value(&mut e, 10.0), 1.0);
    // Same priority: the more recent wins.
    e.set_override(ov(lock(3.0), 2, 12, 8.0)).unwrap();
    let s = e.tick(10.0);
    assert_eq!(s.params[0].value, 3.0);
    assert_eq!(s.params[0].overrides[0].by, 12);
    // A performer's new override of the same kind replaces their old one.
    e.set_override(ov(lock(4.0), 2, 12, 9.5)).unwrap();
    assert_eq!(e.override_count(), 3);
    assert_eq!(value(&mut e, 10.0), 4.0);
    // Clearing one performer's leaves the others.
    assert_eq!(e.clear_override(P0, OverrideKind::Lock, Some(12)), 1);
    assert_eq!(value(&mut e, 10.0), 1.0);
    assert_eq!(e.clear_override(P0, OverrideKind::Lock, None), 2);
    assert_eq!(value(&mut e, 10.0), 5.0);
}

#[test]
fn overrides_expire() {
    let mut e = engine_with(vec![ParamConfig::continuous(0.0, 10.0, 5.0)]);
    e.set_override(Override {
        expires_at: Some(2.0),
        ..ov(OverrideMode::Lock { value: 9.0 }, 1, 1, 1.0)
    })
    .unwrap();
    assert_eq!(value(&mut e, 1.5), 9.0);
    assert_eq!(value(&mut e, 1.999), 9.0);
    assert_eq!(value(&mut e, 2.0), 5.0);
    assert_eq!(e.override_count(), 0);
}

#[test]
fn invalid_overrides_are_rejected() {
    let mut e = engine_with(vec![ParamConfig::continuous(0.0, 10.0, 5.0)]);
    let bad = [
        (
            Override {
                param: ParamId(1),
                ..ov(OverrideMode::Freeze, 1, 1, 0.0)
            },
            OverrideError::UnknownParam,
        ),
        (
            ov(OverrideMode::Clamp { lo: 3.0, hi: 2.0 }, 1, 1, 0.0),
            OverrideError::InvalidClamp { lo: 3.0, hi: 2.0 },
        ),
        (
            ov(
                OverrideMode::Blend {
                    target: 1.0,
                    factor: 1.5,
                },
                1,
                1,
                0.0,
            ),
            OverrideError::InvalidBlendFactor { factor: 1.5 },
        ),
        (
            ov(OverrideMode::Bias { amount: f64::NAN }, 1, 1, 0.0),
            OverrideError::NotFinite { field: "amount" },
        ),
        (
            ov(OverrideMode::Freeze, 1, 1, f64::INFINITY),
            OverrideError::NotFinite { field: "set_at" },
        ),
        (
            Override {
                expires_at: Some(1.0),
                ..ov(OverrideMode::Freeze, 1, 1, 1.0)
            },
            OverrideError::ExpiresBeforeSet {
                set_at: 1.0,
                expires_at: 1.0,
            },
        ),
    ];
    for (o, err) in bad {
        assert_eq!(e.set_override(o), Err(err));
    }
    assert_eq!(e.override_count(), 0);
}

#[test]
fn reset_clears_inputs_and_overrides() {
    let mut e = engine_with(vec![
        ParamConfig {
            smoothing: Smoothing {
                time_constant: Some(1.0),
                slew_per_second: None,
            },
            ..ParamConfig::continuous(0.0, 1.0, 0.5)
        },
        ParamConfig::discrete(4, 2),
    ]);
    let ps = join_n(&mut e, 3);
    for &p in &ps {
        e.submit(p, P0, c(1.0), 0.0).unwrap();
        e.submit(p, ParamId(1), InputValue::Choice(0), 0.0).unwrap();
    }
    e.set_override(ov(OverrideMode::Bias { amount: -0.1 }, 1, 1, 0.0))
        .unwrap();
    e.tick(0.0);
    let s = e.tick(5.0);
    assert!(s.params[0].value > 0.85);
    assert_eq!(s.params[1].value, 0.0);
    e.reset();
    assert_eq!(e.override_count(), 0);
    assert_eq!(e.participants(), 3);
    assert_eq!(e.snapshot().params[0].value, 0.5);
    let s = e.tick(5.1);
    assert_eq!(
        s.params[0].value, 0.5,
        "back to default at once, not smoothed"
    );
    assert_eq!(s.params[0].raw, None);
    assert_eq!(s.params[0].participants, 0);
    assert_eq!(s.params[1].value, 2.0);
    // Participants can input again after a reset.
    e.submit(ps[0], P0, c(0.0), 6.0).unwrap();
    assert_eq!(e.tick(6.0).params[0].participants, 1);
}

#[test]
fn bypass_holds_defaults_but_overrides_still_apply() {
    let mut e = engine_with(vec![cont(Aggregation::Mean), ParamConfig::discrete(3, 1)]);
    let p = e.join(None, 1.0).unwrap();
    e.submit(p, P0, c(0.9), 0.0).unwrap();
    e.submit(p, ParamId(1), InputValue::Choice(2), 0.0).unwrap();
    assert_eq!(value(&mut e, 0.0), 0.9);
    e.set_bypass(true);
    let s = e.tick(0.1);
    assert!(s.bypass);
    assert_eq!(s.params[0].value, 0.5);
    assert_eq!(s.params[0].raw, Some(0.9), "raw still shows the audience");
    assert_eq!(s.params[1].value, 1.0);
    e.set_override(ov(OverrideMode::Bias { amount: 0.2 }, 1, 1, 0.1))
        .unwrap();
    assert!((value(&mut e, 0.2) - 0.7).abs() < 1e-12);
    e.set_bypass(false);
    assert!((value(&mut e, 0.3) - 1.0).abs() < 1e-12);
}

#[test]
fn smoothing_is_independent_of_tick_rate() {
    let smoothing = [
        Smoothing {
            time_constant: Some(0.4),
            slew_per_second: None,
        },
        Smoothing {
            time_constant: None,
            slew_per_second: Some(0.3),
        },
        Smoothing {
            time_constant: Some(0.4),
            slew_per_second: Some(0.3),
        },
    ];
    for sm in smoothing {
        let run = |rate: f64| {
            let mut e = engine_with(vec![ParamConfig {
                smoothing: sm,
                ..ParamConfig::continuous(0.0, 10.0, 0.0)
            }]);
            let p = e.join(None, 1.0).unwrap();
            e.tick(0.0);
            e.submit(p, P0, c(10.0), 0.0).unwrap();
            let mut at = Vec::new();
            let ticks = (4.0 * rate) as usize;
            for k in 1..=ticks {
                let now = k as f64 / rate;
                let v = e.tick(now).params[0].value;
                if k % (rate as usize / 2) == 0 {
                    at.push((now, v));
                }
            }
            at
        };
        let slow = run(10.0);
        let fast = run(60.0);
        assert_eq!(slow.len(), fast.len());
        for ((t1, a), (t2, b)) in slow.iter().zip(&fast) {
            assert!((t1 - t2).abs() < 1e-9);
            assert!((a - b).abs() < 1e-9, "{sm:?} at {t1}: {a} vs {b}");
        }
        // And it does move gradually.
        assert!(slow[0].1 > 0.0 && slow[0].1 < 10.0, "{sm:?}: {:?}", slow[0]);
    }
}

#[test]
fn restore_resumes_values() {
    let mut e = engine_with(vec![
        ParamConfig {
            smoothing: Smoothing {
                time_constant: Some(10.0),
                slew_per_second: None,
            },
            ..ParamConfig::continuous(0.0, 1.0, 0.5)
        },
        ParamConfig::discrete(3, 0),
    ]);
    e.restore(&[0.8, 2.0]);
    assert_eq!(e.snapshot().params[0].value, 0.8);
    let s = e.tick(100.0);
    assert_eq!(s.params[0].value, 0.8);
    assert_eq!(
        s.params[1].value, 2.0,
        "no votes: the restored choice stands"
    );
    // With nobody giving input, a resumed show holds its state however long it waits.
    let s = e.tick(200.0);
    assert_eq!(s.params[0].value, 0.8);
    assert_eq!(s.params[1].value, 2.0);
    // Bypass, by contrast, glides to the default.
    e.set_bypass(true);
    let s = e.tick(400.0);
    assert!(
        (s.params[0].value - 0.5).abs() < 1e-6,
        "{}",
        s.params[0].value
    );
    // Out-of-range restores are clamped.
    e.restore(&[7.0]);
    assert_eq!(e.snapshot().params[0].value, 1.0);
}

#[test]
fn freeze_after_restore_holds_the_restored_value() {
    let mut e = engine_with(vec![ParamConfig::continuous(0.0, 1.0, 0.5)]);
    e.restore(&[0.3]);
    e.set_override(ov(OverrideMode::Freeze, 1, 1, 0.0)).unwrap();
    let p = e.join(None, 1.0).unwrap();
    e.submit(p, P0, c(1.0), 0.0).unwrap();
    assert_eq!(value(&mut e, 1.0), 0.3);
}

#[test]
fn agreement_term_favours_inputs_near_the_current_value() {
    let a = 3.0;
    let mut e = Engine::new(EngineConfig {
        params: vec![cont(Aggregation::Mean)],
        agreement: a,
        ..EngineConfig::default()
    })
    .unwrap();
    let ps = join_n(&mut e, 2);
    // Current value is the default 0.5; inputs at 0.6 (distance 0.1) and 0.0 (0.5).
    e.submit(ps[0], P0, c(0.6), 0.0).unwrap();
    e.submit(ps[1], P0, c(0.0), 0.0).unwrap();
    let w0 = (-a * 0.1f64).exp();
    let w1 = (-a * 0.5f64).exp();
    let expected = 0.6 * w0 / (w0 + w1);
    let v = value(&mut e, 0.0);
    assert!((v - expected).abs() < 1e-12, "{v} vs {expected}");
    // Next tick uses the new current value.
    let (d0, d1) = (0.6 - v, v);
    let (w0, w1) = ((-a * d0).exp(), (-a * d1).exp());
    let expected = 0.6 * w0 / (w0 + w1);
    let v2 = value(&mut e, 0.05);
    assert!((v2 - expected).abs() < 1e-12, "{v2} vs {expected}");
}

#[test]
fn config_validation_names_the_field() {
    let bad = |mutate: &dyn Fn(&mut EngineConfig)| {
        let mut cfg = EngineConfig {
            params: vec![
                ParamConfig::continuous(0.0, 1.0, 0.5),
                ParamConfig::discrete(3, 0),
            ],
            zone_weights: vec![1.0, 2.0],
            ..EngineConfig::default()
        };
        cfg.validate().expect("base config is valid");
        mutate(&mut cfg);
        let err: ConfigError = Engine::new(cfg).expect_err("invalid config");
        assert!(err.to_string().starts_with(&err.field_path()), "{err}");
        err.field_path()
    };
    let set_kind =
        |i: usize, k: ParamKind| move |c: &mut EngineConfig| c.params[i].kind = k.clone();
    let cont = |min, max, default, step| ParamKind::Continuous {
        min,
        max,
        default,
        step,
    };
    assert_eq!(
        bad(&set_kind(0, cont(f64::NAN, 1.0, 0.5, None))),
        "params[0].min"
    );
    assert_eq!(
        bad(&set_kind(0, cont(1.0, 1.0, 1.0, None))),
        "params[0].max"
    );
    assert_eq!(
        bad(&set_kind(0, cont(0.0, 1.0, 2.0, None))),
        "params[0].default"
    );
    assert_eq!(
        bad(&set_kind(0, cont(0.0, 1.0, 0.5, Some(0.0)))),
        "params[0].step"
    );
    let disc = |choices, default, hysteresis| ParamKind::Discrete {
        choices,
        default,
        hysteresis,
    };
    assert_eq!(bad(&set_kind(1, disc(0, 0, 0.0))), "params[1].choices");
    assert_eq!(bad(&set_kind(1, disc(3, 3, 0.0))), "params[1].default");
    assert_eq!(bad(&set_kind(1, disc(3, 0, 1.0))), "params[1].hysteresis");
    assert_eq!(
        bad(&|c| c.params[1].aggregation = Aggregation::Mean),
        "params[1].aggregation"
    );
    assert_eq!(
        bad(&|c| c.params[0].aggregation = Aggregation::Plurality),
        "params[0].aggregation"
    );
    assert_eq!(
        bad(&|c| c.params[0].aggregation = Aggregation::TrimmedMean { trim: 0.5 }),
        "params[0].aggregation.trim"
    );
    assert_eq!(
        bad(&|c| c.params[0].smoothing.time_constant = Some(0.0)),
        "params[0].smoothing.time_constant"
    );
    assert_eq!(
        bad(&|c| c.params[1].smoothing.slew_per_second = Some(f64::INFINITY)),
        "params[1].smoothing.slew_per_second"
    );
    assert_eq!(bad(&|c| c.zone_weights[1] = -1.0), "zone_weights[1]");
    assert_eq!(
        bad(&|c| c.recency_half_life = Some(-3.0)),
        "recency_half_life"
    );
    assert_eq!(bad(&|c| c.agreement = f64::NAN), "agreement");
    assert_eq!(bad(&|c| c.histogram_bins = 0), "histogram_bins");
    assert_eq!(bad(&|c| c.histogram_bins = 257), "histogram_bins");
}

#[test]
fn config_deserializes_with_defaults() {
    let cfg: EngineConfig = serde_json::from_str(
        r#"{
            "params": [
                {"kind": {"type": "continuous", "min": 0, "max": 1, "default": 0.5}},
                {"kind": {"type": "discrete", "choices": 3, "hysteresis": 0.1}},
                {"kind": {"type": "continuous", "min": 0, "max": 1, "default": 0},
                 "aggregation": {"type": "median"},
                 "smoothing": {"time_constant": 0.5}}
            ],
            "recency_half_life": 10
        }"#,
    )
    .unwrap();
    assert_eq!(
        cfg.params[0].aggregation,
        Aggregation::TrimmedMean { trim: 0.2 }
    );
    assert_eq!(cfg.params[1].aggregation, Aggregation::Plurality);
    assert_eq!(cfg.params[2].aggregation, Aggregation::Median);
    assert_eq!(cfg.histogram_bins, 16);
    cfg.validate().unwrap();
    let unknown = serde_json::from_str::<EngineConfig>(r#"{"params": [], "bogus": 1}"#);
    assert!(unknown.unwrap_err().to_string().contains("bogus"));
    let mode: OverrideMode =
        serde_json::from_str(r#"{"mode": "blend", "target": 1, "factor": 0.5}"#).unwrap();
    assert_eq!(
        mode,
        OverrideMode::Blend {
            target: 1.0,
            factor: 0.5
        }
    );
}

#[test]
fn snapshot_serializes() {
    let mut e = engine_with(vec![ParamConfig::continuous(0.0, 1.0, 0.5)]);
    e.set_override(ov(OverrideMode::Lock { value: 0.2 }, 1, 3, 0.0))
        .unwrap();
    let json = serde_json::to_value(e.tick(1.0)).unwrap();
    assert_eq!(json["tick"], 1);
    assert_eq!(json["params"][0]["value"], 0.2);
    assert_eq!(json["params"][0]["overrides"][0]["mode"]["mode"], "lock");
    assert_eq!(json["params"][0]["raw"], serde_json::Value::Null);
}

#[test]
fn sharded_engines_match_a_single_engine() {
    let cfg = EngineConfig {
        params: vec![
            ParamConfig::continuous(0.0, 1.0, 0.5),
            ParamConfig {
                aggregation: Aggregation::Median,
                ..ParamConfig::continuous(-5.0, 5.0, 0.0)
            },
            ParamConfig {
                kind: ParamKind::Discrete {
                    choices: 4,
                    default: 0,
                    hysteresis: 0.05,
                },
                aggregation: Aggregation::Plurality,
                smoothing: Smoothing::default(),
            },
        ],
        zone_weights: vec![1.0, 0.5],
        recency_half_life: Some(3.0),
        ..EngineConfig::default()
    };
    let mut single = Engine::new(cfg.clone()).unwrap();
    let mut shards: Vec<Engine> = (0..3).map(|_| Engine::new(cfg.clone()).unwrap()).collect();
    let mut coordinator = Engine::new(cfg.clone()).unwrap();
    for i in 0..300u32 {
        let zone = Some(ZoneId((i % 2) as u16));
        let trust = 0.5 + f64::from(i % 3) * 0.25;
        let a = single.join(zone, trust).unwrap();
        let shard = &mut shards[(i % 3) as usize];
        let b = shard.join(zone, trust).unwrap();
        let t = f64::from(i) * 0.05;
        let x = f64::from((i * 37) % 101) / 100.0;
        let y = -5.0 + 10.0 * f64::from((i * 53) % 97) / 96.0;
        let ch = InputValue::Choice((i * 7) % 4);
        for (e, p) in [(&mut single, a), (&mut *shard, b)] {
            e.submit(p, ParamId(0), c(x), t).unwrap();
            e.submit(p, ParamId(1), c(y), t).unwrap();
            e.submit(p, ParamId(2), ch, t).unwrap();
        }
    }
    let now = 20.0;
    let mut merged = Partials::empty(&cfg, now);
    for s in &shards {
        merged.merge(&s.partials(now)).unwrap();
    }
    assert_eq!(merged.participants(), 300);
    let want = single.tick(now).clone();
    let got = coordinator.tick_from(&merged, now).unwrap();
    assert_eq!(got.participants, want.participants);
    for (a, b) in want.params.iter().zip(&got.params) {
        assert!(
            (a.value - b.value).abs() < 1e-9,
            "{} vs {}",
            a.value,
            b.value
        );
        assert_eq!(a.participants, b.participants);
        assert!((a.dispersion - b.dispersion).abs() < 1e-9);
        assert!((a.agreement - b.agreement).abs() < 1e-9);
        for (x, y) in a.histogram.iter().zip(&b.histogram) {
            assert!((x - y).abs() < 1e-6);
        }
        for (x, y) in a.choice_weights.iter().zip(&b.choice_weights) {
            assert!((x - y).abs() < 1e-6);
        }
    }
}

#[test]
fn partials_of_another_shape_are_rejected() {
    let a = Engine::new(EngineConfig {
        params: vec![ParamConfig::continuous(0.0, 1.0, 0.5)],
        ..EngineConfig::default()
    })
    .unwrap();
    let mut b = Engine::new(EngineConfig {
        params: vec![ParamConfig::discrete(3, 0)],
        ..EngineConfig::default()
    })
    .unwrap();
    let mut pa = a.partials(0.0);
    let before = pa.clone();
    assert!(pa.merge(&b.partials(0.0)).is_err());
    assert_eq!(pa, before, "a failed merge changes nothing");
    assert!(b.tick_from(&pa, 0.0).is_err());
    // A corrupt (negative) weight from the wire is rejected too.
    let mut json = serde_json::to_value(&pa).unwrap();
    json["params"][0]["sum_w"] = serde_json::json!(-1.0);
    let corrupt: Partials = serde_json::from_value(json).unwrap();
    assert!(pa.merge(&corrupt).is_err());
}

#[test]
fn merging_partials_of_different_times_decays_the_older() {
    let cfg = EngineConfig {
        params: vec![ParamConfig {
            aggregation: Aggregation::Mean,
            ..ParamConfig::continuous(0.0, 1.0, 0.5)
        }],
        recency_half_life: Some(2.0),
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg).unwrap();
    let p = e.join(None, 1.0).unwrap();
    e.submit(p, P0, c(1.0), 0.0).unwrap();
    let mut late = e.partials(4.0);
    let early = e.partials(2.0);
    assert!((early.params()[0].total_weight() - 0.5).abs() < 1e-12);
    late.merge(&early).unwrap();
    // Both seen at t = 4: 0.25 + 0.25.
    assert!((late.params()[0].total_weight() - 0.5).abs() < 1e-12);
}

#[test]
fn long_gaps_and_cancellation_keep_weights_right() {
    let mut e = Engine::new(EngineConfig {
        params: vec![cont(Aggregation::Mean)],
        recency_half_life: Some(1.0),
        ..EngineConfig::default()
    })
    .unwrap();
    let ps = join_n(&mut e, 2);
    e.submit(ps[0], P0, c(0.2), 0.0).unwrap();
    // 800 half-lives later without a tick: the store must rebase on the spot.
    e.submit(ps[1], P0, c(0.9), 800.0).unwrap();
    let w = e.partials(800.0).params()[0].total_weight();
    assert!((w - 1.0).abs() < 1e-12, "{w}");
    assert!((value(&mut e, 800.0) - 0.9).abs() < 1e-12);
    // The heavy input leaves: Σw cancels down to 2^-800, which the running sum cannot
    // represent; the next tick must notice and recompute.
    assert!(e.leave(ps[1]));
    let s = e.tick(800.0);
    assert_eq!(
        s.params[0].raw,
        Some(0.2),
        "the old input is all that is left"
    );
    let w = e.partials(800.0).params()[0].total_weight();
    assert!((w / 2f64.powi(-800) - 1.0).abs() < 1e-9, "{w:e}");
}

/// A crowd exported from one engine and readmitted into a fresh one (a restart) gives the
/// same handles and, at the same time since export, the same aggregates.
#[test]
fn a_readmitted_crowd_aggregates_as_before() {
    let cfg = || EngineConfig {
        params: vec![
            ParamConfig::continuous(-10.0, 10.0, 0.0),
            ParamConfig::discrete(4, 0),
        ],
        recency_half_life: Some(5.0),
        zone_weights: vec![1.0, 3.0],
        ..EngineConfig::default()
    };
    let mut a = Engine::new(cfg()).unwrap();
    let ids: Vec<ParticipantId> = (0..6)
        .map(|i| a.join(Some(ZoneId(i % 2)), 1.0).unwrap())
        .collect();
    // A gap and a reused slot (a newer generation) must survive too.
    assert!(a.leave(ids[1]));
    assert!(a.leave(ids[4]));
    let again = a.join(None, 0.5).unwrap();
    assert_eq!(again.slot, ids[4].slot);
    assert_ne!(again.generation, ids[4].generation);
    let members = [ids[0], ids[2], ids[3], ids[5], again];
    for (k, &p) in members.iter().enumerate() {
        let t = k as f64 * 2.0;
        a.submit(p, P0, c(-9.0 + 4.0 * k as f64), t).unwrap();
        if k % 2 == 0 {
            a.submit(p, ParamId(1), InputValue::Choice(k as u32 % 4), t)
                .unwrap();
        }
    }
    let crowd = a.crowd(10.0);
    assert_eq!(crowd.len(), 5);
    assert_eq!(
        crowd.iter().map(|m| m.id).collect::<Vec<_>>(),
        {
            let mut m = members.to_vec();
            m.sort();
            m
        },
        "slot order, same handles"
    );
    assert_eq!(crowd.iter().find(|m| m.id == again).unwrap().trust, 0.5);
    let before = a.tick(12.0).clone();

    // The new engine's clock starts elsewhere (a restarted process).
    let mut b = Engine::new(cfg()).unwrap();
    for m in &crowd {
        assert_eq!(b.readmit(m, 100.0).unwrap(), m.id);
    }
    assert_eq!(b.participants(), 5);
    let after = b.tick(102.0).clone();
    for (x, y) in before.params.iter().zip(&after.params) {
        assert!(
            (x.raw.unwrap() - y.raw.unwrap()).abs() < 1e-9,
            "{:?} vs {:?}",
            x.raw,
            y.raw
        );
        assert_eq!(x.participants, y.participants);
    }
    // Old handles still submit; a stale one does not; a new join takes a free slot.
    b.submit(ids[0], P0, c(1.0), 103.0).unwrap();
    assert_eq!(
        b.submit(ids[4], P0, c(1.0), 103.0),
        Err(InputError::UnknownParticipant)
    );
    let fresh = b.join(None, 1.0).unwrap();
    assert_eq!(fresh.slot, ids[1].slot, "the gap is free");
}

#[test]
fn a_bad_member_is_refused_and_changes_nothing() {
    let cfg = EngineConfig {
        params: vec![ParamConfig::continuous(0.0, 1.0, 0.5)],
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg).unwrap();
    let p = e.join(None, 1.0).unwrap();
    let mut crowd = e.crowd(0.0);
    // The slot is held.
    assert_eq!(
        e.readmit(&crowd[0], 0.0),
        Err(InputError::SlotUnavailable { slot: p.slot })
    );
    // Out of range, a negative age, a parameter the piece lacks, an absurd slot.
    crowd[0].id.slot = 7;
    let mut bad = crowd[0].clone();
    bad.inputs = vec![Some(tutti_consensus::LatestInput {
        value: c(2.0),
        age: 0.0,
    })];
    assert!(matches!(
        e.readmit(&bad, 0.0),
        Err(InputError::OutOfRange { .. })
    ));
    bad.inputs = vec![Some(tutti_consensus::LatestInput {
        value: c(0.2),
        age: -1.0,
    })];
    assert_eq!(e.readmit(&bad, 0.0), Err(InputError::NotFinite));
    bad.inputs = vec![
        None,
        Some(tutti_consensus::LatestInput {
            value: c(0.2),
            age: 0.0,
        }),
    ];
    assert_eq!(e.readmit(&bad, 0.0), Err(InputError::UnknownParam));
    bad.inputs.clear();
    bad.id.slot = tutti_consensus::MAX_READMIT_SLOT + 1;
    assert!(matches!(
        e.readmit(&bad, 0.0),
        Err(InputError::SlotUnavailable { .. })
    ));
    assert_eq!(e.participants(), 1);
    // A good one in a slot beyond the end: the slots between are free for joins.
    assert_eq!(e.readmit(&crowd[0], 0.0).unwrap().slot, 7);
    assert_eq!(e.participants(), 2);
    let next = e.join(None, 1.0).unwrap();
    assert!(next.slot > p.slot && next.slot < 7, "{next:?}");
}

#[test]
fn sparse_partials_merge_exactly_like_dense_ones() {
    let cfg = EngineConfig {
        params: vec![
            ParamConfig::continuous(0.0, 1.0, 0.5),
            ParamConfig {
                kind: ParamKind::Discrete {
                    choices: 3,
                    default: 0,
                    hysteresis: 0.05,
                },
                aggregation: Aggregation::Plurality,
                smoothing: Smoothing::default(),
            },
        ],
        recency_half_life: Some(2.0),
        ..EngineConfig::default()
    };
    // Shards of different sizes with inputs at different times (so their scales differ).
    let mut shards: Vec<Engine> = (0..5).map(|_| Engine::new(cfg.clone()).unwrap()).collect();
    for i in 0..40u32 {
        let s = &mut shards[(i % 5) as usize];
        let p = s.join(None, 1.0).unwrap();
        let t = f64::from(i) * 0.3;
        s.submit(p, ParamId(0), c(f64::from((i * 13) % 17) / 16.0), t)
            .unwrap();
        s.submit(p, ParamId(1), InputValue::Choice(i % 3), t)
            .unwrap();
    }
    let now = 12.5;
    // In several orders, with the dense result as the reference.
    for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]] {
        let mut dense = Partials::empty(&cfg, now);
        let mut sparse = Partials::empty(&cfg, now);
        for &k in &order {
            let p = shards[k].partials(now - 0.1 * k as f64);
            dense.merge(&p).unwrap();
            let sp = p.to_sparse();
            assert!(sp.bins_used() < 40, "{} bins used", sp.bins_used());
            sparse.merge_sparse(&sp).unwrap();
        }
        assert_eq!(sparse, dense, "order {order:?}");
    }
    // Through serde, forged: a bin out of range or out of order, a negative weight.
    let good = shards[0].partials(now).to_sparse();
    let json = serde_json::to_value(&good).unwrap();
    let bins = json["params"][0]["bins"].as_array().unwrap().clone();
    assert!(bins.len() >= 2);
    let forge = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut j = json.clone();
        f(&mut j);
        let sp: tutti_consensus::SparsePartials = serde_json::from_value(j).unwrap();
        let mut into = Partials::empty(&cfg, now);
        let before = into.clone();
        let e = into.merge_sparse(&sp).unwrap_err();
        assert_eq!(into, before, "unchanged on error");
        assert!(sp.check(&cfg).is_err());
        e
    };
    assert!(matches!(
        forge(&|j| j["params"][0]["bins"][0][0] = 256.into()),
        tutti_consensus::PartialsError::Shape { .. }
    ));
    assert!(matches!(
        forge(&|j| {
            let b = j["params"][0]["bins"].as_array_mut().unwrap();
            b.swap(0, 1);
        }),
        tutti_consensus::PartialsError::Shape { .. }
    ));
    assert!(matches!(
        forge(&|j| j["params"][0]["bins"][0][1] = (-1.0).into()),
        tutti_consensus::PartialsError::Invalid { .. }
    ));
    assert!(matches!(
        forge(&|j| j["params"][1]["len"] = 4.into()),
        tutti_consensus::PartialsError::Shape { .. }
    ));
}
