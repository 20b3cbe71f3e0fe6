//! Reverb energy decays for every parameter in range (corners of the parameter space).

use tutti_dsp::{Processor, Reverb, ReverbConfig};

const FS: f64 = 48_000.0;

fn energies(size: f64, decay_s: f64, damping: f64, seconds: f64, window: usize) -> Vec<f64> {
    let mut rv = Reverb::new(
        &ReverbConfig {
            name: None,
            size,
            decay_s,
            damping,
            mix: 1.0,
        },
        FS,
        1,
    );
    let n = (seconds * FS) as usize;
    let (mut l, mut r) = (vec![0.0f32; n], vec![0.0f32; n]);
    l[0] = 1.0;
    r[0] = 0.5;
    for (a, b) in l.chunks_mut(512).zip(r.chunks_mut(512)) {
        rv.process(a, b);
    }
    assert!(l.iter().chain(&r).all(|v| v.is_finite()), "finite output");
    l.chunks(window)
        .zip(r.chunks(window))
        .map(|(a, b)| a.iter().chain(b).map(|v| (*v as f64).powi(2)).sum::<f64>())
        .collect()
}

#[test]
fn energy_decays_at_every_corner_of_the_parameter_space() {
    let w = 4800; // 100 ms windows
    for size in [0.0, 1.0] {
        for damping in [0.0, 1.0] {
            for decay in [0.05, 60.0] {
                let secs = if decay > 1.0 { 4.0 } else { 1.0 };
                let e = energies(size, decay, damping, secs, w);
                let peak = e.iter().cloned().fold(0.0, f64::max);
                assert!(peak > 0.0);
                // after build-up (first 300 ms) no window ever exceeds the loudest window before
                // it: the network never gains energy
                let mut running_max = e[..3].iter().cloned().fold(0.0, f64::max);
                for (k, ek) in e.iter().enumerate().skip(3) {
                    assert!(
                        *ek <= running_max * 1.05 + 1e-30,
                        "size {size} damping {damping} decay {decay}: window {k} energy {ek} > earlier max {running_max}"
                    );
                    running_max = running_max.max(*ek);
                }
                let last = *e.last().unwrap_or(&0.0);
                if decay < 1.0 {
                    assert!(
                        10.0 * (last / peak).log10() < -100.0,
                        "fast decay dies out: {last} vs {peak}"
                    );
                } else {
                    // 60 s RT60 = 1 dB/s: over ~3.5 s the energy must still fall, but slowly
                    let drop = 10.0 * (e[e.len() - 1] / e[5]).log10();
                    assert!(
                        drop < -1.0 && drop > -12.0,
                        "size {size} damping {damping}: drop {drop:.2} dB"
                    );
                }
            }
        }
    }
}

#[test]
fn decay_time_matches_rt60() {
    // RT60 1 s with no damping: about -60 dB per second of energy decay
    let e = energies(0.5, 1.0, 0.0, 2.0, 4800);
    let drop = 10.0 * (e[15] / e[5]).log10();
    assert!(
        (drop + 60.0).abs() < 8.0,
        "energy fell {drop:.1} dB in 1 s for RT60 = 1 s"
    );
}

#[test]
fn stays_bounded_on_continuous_loud_noise_at_max_decay() {
    let mut rv = Reverb::new(
        &ReverbConfig {
            name: None,
            size: 1.0,
            decay_s: 60.0,
            damping: 0.0,
            mix: 1.0,
        },
        FS,
        1,
    );
    let x = tutti_dsp::bench::noise(48_000, 9);
    let mut peak = 0.0f32;
    for _ in 0..10 {
        let (mut l, mut r) = (x.clone(), x.clone());
        rv.process(&mut l, &mut r);
        peak = l.iter().chain(&r).fold(peak, |m, v| m.max(v.abs()));
    }
    assert!(peak.is_finite() && peak < 200.0, "peak {peak}");
}
