//! FFT convolution equals direct convolution (difference below −120 dB relative to the output
//! peak) for random signals and IRs, across block boundaries, in uniform and low-latency modes.

mod common;

use common::{db, direct_convolution, noise, peak};
use tutti_dsp::{ConvolutionMode, Convolver, Partitioning, Processor};

/// Runs `x` through the convolver in calls whose sizes cycle through `calls`.
fn run(conv: &mut Convolver, xl: &[f32], xr: &[f32], calls: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let (mut l, mut r) = (xl.to_vec(), xr.to_vec());
    let mut pos = 0;
    let mut i = 0;
    while pos < l.len() {
        let n = calls[i % calls.len()].min(l.len() - pos);
        conv.process(&mut l[pos..pos + n], &mut r[pos..pos + n]);
        pos += n;
        i += 1;
    }
    (l, r)
}

fn check(
    ir_len: usize,
    stereo_ir: bool,
    part: Partitioning,
    calls: &[usize],
    sig_len: usize,
    seed: u64,
) {
    let irl = noise(ir_len, seed)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (-(i as f32) / ir_len as f32 * 3.0).exp())
        .collect::<Vec<_>>();
    let irr = noise(ir_len, seed + 100);
    let ir = if stereo_ir {
        vec![irl.clone(), irr.clone()]
    } else {
        vec![irl.clone()]
    };
    let xl = noise(sig_len, seed + 7);
    let xr = noise(sig_len, seed + 9);
    let mut conv = Convolver::new(&ir, part, 1.0).expect("convolver");
    assert_eq!(conv.latency(), 0);
    let (yl, yr) = run(&mut conv, &xl, &xr, calls);
    let refl = direct_convolution(&xl, &irl);
    let refr = direct_convolution(&xr, if stereo_ir { &irr } else { &irl });
    for (y, rf, ch) in [(&yl, &refl, "L"), (&yr, &refr, "R")] {
        let diff: Vec<f64> = y
            .iter()
            .zip(rf.iter())
            .map(|(a, b)| *a as f64 - b)
            .collect();
        let rel = db(peak(&diff) / peak(rf));
        assert!(
            rel < -120.0,
            "{ch}: ir {ir_len} {part:?} calls {calls:?}: max difference {rel:.1} dB (segments {:?})",
            conv.segments()
        );
    }
}

#[test]
fn uniform_matches_direct_for_several_block_sizes() {
    for (ir_len, p, calls) in [
        (1usize, 16usize, vec![16usize]),
        (100, 16, vec![16]),
        (1000, 64, vec![64]),
        (3000, 64, vec![32]),
        (3000, 64, vec![100]),
        (5000, 128, vec![7, 128, 33, 1, 250]),
        (4096, 256, vec![256]),
    ] {
        let part = Partitioning {
            mode: ConvolutionMode::Uniform,
            partition: p,
            max_partition: None,
        };
        check(ir_len, ir_len % 2 == 0, part, &calls, 12_000, ir_len as u64);
    }
}

#[test]
fn low_latency_matches_direct_across_block_boundaries() {
    for (ir_len, p, maxp, calls) in [
        (20_000usize, 16usize, 256usize, vec![16usize]),
        (20_000, 32, 512, vec![32]),
        (9_000, 64, 1024, vec![64]),
        (9_000, 64, 1024, vec![17, 64, 5, 200]),
        (300, 16, 1024, vec![16]),
        (7_777, 16, 64, vec![16, 3]),
    ] {
        let part = Partitioning {
            mode: ConvolutionMode::LowLatency,
            partition: p,
            max_partition: Some(maxp),
        };
        check(ir_len, true, part, &calls, 24_000, ir_len as u64 + p as u64);
    }
}

#[test]
fn mono_ir_is_used_for_both_channels_and_reset_clears_history() {
    let part = Partitioning {
        mode: ConvolutionMode::LowLatency,
        partition: 32,
        max_partition: Some(128),
    };
    let ir = vec![noise(1000, 5)];
    let mut conv = Convolver::new(&ir, part, 1.0).expect("convolver");
    let x = noise(4000, 6);
    let (a, b) = run(&mut conv, &x, &x, &[32]);
    assert_eq!(a, b, "same IR on both channels");
    conv.reset();
    let (c, _) = run(&mut conv, &x, &x, &[32]);
    assert_eq!(a, c, "reset forgets all history");
}

#[test]
fn gain_scales_the_ir() {
    let part = Partitioning::for_block(ConvolutionMode::Uniform, 64);
    let ir = vec![noise(500, 5)];
    let x = noise(2000, 1);
    let mut a = Convolver::new(&ir, part, 1.0).expect("convolver");
    let mut b = Convolver::new(&ir, part, 0.5).expect("convolver");
    let (ya, _) = run(&mut a, &x, &x, &[64]);
    let (yb, _) = run(&mut b, &x, &x, &[64]);
    for (p, q) in ya.iter().zip(&yb) {
        assert!((p * 0.5 - q).abs() < 1e-5);
    }
}
