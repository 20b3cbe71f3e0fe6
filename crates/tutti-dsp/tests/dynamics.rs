//! Compressor static curve and attack/release times; limiter ceiling, latency and transparency.

mod common;

use common::noise;
use tutti_dsp::{Compressor, CompressorConfig, Limiter, LimiterConfig, Processor};

const FS: f64 = 48_000.0;

fn comp(
    threshold_db: f64,
    ratio: f64,
    knee_db: f64,
    attack_ms: f64,
    release_ms: f64,
    makeup_db: f64,
) -> Compressor {
    Compressor::new(
        &CompressorConfig {
            name: None,
            threshold_db,
            ratio,
            knee_db,
            attack_ms,
            release_ms,
            makeup_db,
        },
        FS,
        1,
    )
}

/// Independent statement of the soft-knee static curve (Giannoulis et al. 2012, eq. 4).
fn expected_curve(x: f64, t: f64, r: f64, w: f64) -> f64 {
    if 2.0 * (x - t) < -w {
        x
    } else if w > 0.0 && 2.0 * (x - t).abs() <= w {
        x + (1.0 / r - 1.0) * (x - t + w / 2.0).powi(2) / (2.0 * w)
    } else {
        t + (x - t) / r
    }
}

/// Output level (dB) of a steady DC input at `level_db` after settling.
fn settle(c: &mut Compressor, level_db: f64) -> f64 {
    let v = 10f64.powf(level_db / 20.0) as f32;
    let (mut l, mut r) = (vec![v; 4800], vec![v; 4800]);
    for _ in 0..20 {
        l.fill(v);
        r.fill(v);
        c.process(&mut l, &mut r);
    }
    20.0 * (l[4799] as f64).log10()
}

#[test]
fn static_curve_matches_settings() {
    for (t, ratio, knee, makeup) in [
        (-20.0, 4.0, 6.0, 0.0),
        (-30.0, 2.0, 0.0, 3.0),
        (-10.0, 10.0, 12.0, -2.0),
    ] {
        let mut c = comp(t, ratio, knee, 1.0, 20.0, makeup);
        for i in 0..=25 {
            let x = -50.0 + 2.0 * i as f64;
            let y = settle(&mut c, x);
            let e = expected_curve(x, t, ratio, knee) + makeup;
            assert!(
                (y - e).abs() < 0.02,
                "T {t} R {ratio} W {knee}: in {x} dB -> {y:.3} dB, expected {e:.3}"
            );
        }
    }
}

/// Gain change (dB) per sample after a level step, from `from_db` to `to_db`.
fn step_response(c: &mut Compressor, from_db: f64, to_db: f64, len: usize) -> Vec<f64> {
    settle(c, from_db);
    let v = 10f64.powf(to_db / 20.0) as f32;
    let (mut l, mut r) = (vec![v; len], vec![v; len]);
    c.process(&mut l, &mut r);
    l.iter()
        .map(|y| 20.0 * (*y as f64).log10() - to_db)
        .collect()
}

#[test]
fn attack_and_release_times_match_settings() {
    for (attack_ms, release_ms) in [(10.0, 200.0), (1.0, 50.0), (30.0, 1000.0)] {
        let mut c = comp(-20.0, 10.0, 0.0, attack_ms, release_ms, 0.0);
        // 0 dB input: static gain -18 dB. Attack: 0 -> -18 dB; 63 % after attack_ms.
        let g = step_response(&mut c, -40.0, 0.0, 96_000);
        let n = (attack_ms * 1e-3 * FS) as usize;
        let expect = -18.0 * (1.0 - (-1.0f64).exp());
        assert!(
            (g[n - 1] - expect).abs() < 0.1,
            "attack {attack_ms} ms: {:.3} dB at {n} samples, expected {expect:.3}",
            g[n - 1]
        );
        assert!((g[95_999] + 18.0).abs() < 0.05);
        // Release: -18 dB -> 0 dB; 63 % after release_ms.
        let g = step_response(&mut c, 0.0, -40.0, 96_000 * 2);
        let n = (release_ms * 1e-3 * FS) as usize;
        let expect = -18.0 * (-1.0f64).exp();
        assert!(
            (g[n - 1] - expect).abs() < 0.1,
            "release {release_ms} ms: {:.3} dB, expected {expect:.3}",
            g[n - 1]
        );
    }
}

fn limiter(ceiling_db: f64, lookahead_ms: f64, release_ms: f64) -> Limiter {
    Limiter::new(
        &LimiterConfig {
            name: None,
            ceiling_db,
            lookahead_ms,
            release_ms,
        },
        FS,
        1,
    )
}

fn run_blocks(p: &mut impl Processor, l: &mut [f32], r: &mut [f32], blocks: &[usize]) {
    let mut pos = 0;
    let mut i = 0;
    while pos < l.len() {
        let n = blocks[i % blocks.len()].min(l.len() - pos);
        p.process(&mut l[pos..pos + n], &mut r[pos..pos + n]);
        pos += n;
        i += 1;
    }
}

#[test]
fn limiter_never_exceeds_the_ceiling() {
    for (ceiling, look) in [(-1.0, 5.0), (-6.0, 1.0), (0.0, 0.0), (-0.3, 20.0)] {
        let mut lim = limiter(ceiling, look, 50.0);
        let mut l: Vec<f32> = noise(96_000, 3).iter().map(|v| v * 4.0).collect();
        let mut r: Vec<f32> = noise(96_000, 4).iter().map(|v| v * 2.0).collect();
        for k in (1000..96_000).step_by(7919) {
            l[k] = 10.0;
            r[k + 3] = -12.0;
        }
        run_blocks(&mut lim, &mut l, &mut r, &[256, 100, 1]);
        let c = 10f32.powf(ceiling as f32 / 20.0);
        let m = l.iter().chain(&r).fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(m <= c * (1.0 + 1e-6), "ceiling {ceiling}: peak {m} > {c}");
        assert!(
            m > c * 0.9,
            "limiter should not crush the signal far below the ceiling"
        );
    }
}

#[test]
fn limiter_is_transparent_below_the_ceiling_with_the_reported_latency() {
    let mut lim = limiter(-1.0, 5.0, 50.0);
    assert_eq!(lim.latency(), 240);
    let x: Vec<f32> = noise(20_000, 5).iter().map(|v| v * 0.5).collect();
    let (mut l, mut r) = (x.clone(), x.clone());
    run_blocks(&mut lim, &mut l, &mut r, &[64, 1000]);
    for i in 240..20_000 {
        assert!((l[i] - x[i - 240]).abs() < 1e-6, "sample {i}");
    }
}

#[test]
fn limiter_gain_reduction_starts_before_the_peak() {
    let mut lim = limiter(-6.0, 5.0, 50.0);
    let mut l = vec![0.1f32; 4800];
    l[2400] = 1.0;
    let mut r = l.clone();
    lim.process(&mut l, &mut r);
    let lat = lim.latency();
    let ceil = 10f32.powf(-6.0 / 20.0);
    assert!(
        (l[2400 + lat] - ceil).abs() < 1e-3,
        "peak limited to the ceiling: {}",
        l[2400 + lat]
    );
    // half the look-ahead before the peak the gain is already reduced (smooth, not a clip)
    let g = l[2400 + lat - 120] / 0.1;
    assert!(g < 0.9 && g > ceil, "gain {g}");
}
