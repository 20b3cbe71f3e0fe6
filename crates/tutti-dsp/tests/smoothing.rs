//! A parameter jump through a smoothed setter produces no sample-to-sample step larger than the
//! smoothing allows.

use tutti_dsp::{Chain, ChainConfig, Limits, Param, Processor};

fn chain(stage: &str) -> Chain {
    let toml =
        format!("sample_rate = 48000\nmax_block = 256\nsmoothing_ms = 10.0\n[[stages]]\n{stage}\n");
    Chain::build(
        &ChainConfig::from_toml_str(&toml, "<t>").expect("parse"),
        std::path::Path::new("."),
        &Limits::default(),
    )
    .expect("build")
}

/// Runs DC 1.0 through `c` for `blocks` blocks of 256 and returns the left channel.
fn run_dc(c: &mut Chain, blocks: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut l, mut r) = (vec![1.0f32; 256 * blocks], vec![1.0f32; 256 * blocks]);
    for (a, b) in l.chunks_mut(256).zip(r.chunks_mut(256)) {
        c.process(a, b);
    }
    (l, r)
}

fn max_step(x: &[f32]) -> f32 {
    x.windows(2).fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()))
}

#[test]
fn gain_jump_is_ramped_over_the_smoothing_time() {
    let mut c = chain("kind = \"gain\"\ngain_db = 0.0");
    run_dc(&mut c, 2);
    c.set_param(0, Param::GainDb, 12.0).expect("set");
    let (l, _) = run_dc(&mut c, 4);
    let g1 = 10f32.powf(12.0 / 20.0);
    let ramp = 480.0; // 10 ms
    let allowed = (g1 - 1.0) / ramp;
    let step = max_step(&l);
    assert!(step <= allowed * 1.001, "step {step} > allowed {allowed}");
    assert!(
        step >= allowed * 0.99,
        "the ramp is linear: max step {step} ~ {allowed}"
    );
    assert!(
        (l[479] - g1).abs() < 1e-5 && (l[1000] - g1).abs() < 1e-6,
        "reaches the target after the ramp"
    );
    assert!(
        l[239] > 1.4 && l[239] < g1 - 1.0,
        "halfway through the ramp: {}",
        l[239]
    );
}

#[test]
fn pan_jump_is_ramped() {
    let mut c = chain("kind = \"pan\"\npan = 0.0");
    run_dc(&mut c, 1);
    c.set_param(0, Param::Pan, 1.0).expect("set");
    let (l, r) = run_dc(&mut c, 4);
    let allowed = std::f32::consts::SQRT_2 - 1.0;
    assert!(
        max_step(&l) <= 1.0 / 480.0 * 1.001,
        "left falls 1 -> 0 over 480 samples"
    );
    assert!(max_step(&r) <= allowed / 480.0 * 1.001);
    assert!(l[1000].abs() < 1e-6 && (r[1000] - std::f32::consts::SQRT_2).abs() < 1e-5);
}

#[test]
fn compressor_threshold_and_reverb_mix_jumps_are_smooth() {
    let mut c = chain("kind = \"reverb\"\nmix = 0.0\ndecay_s = 0.5");
    run_dc(&mut c, 1);
    c.set_param(0, Param::Mix, 1.0).expect("set");
    let (l, _) = run_dc(&mut c, 4);
    // DC 1.0: the dry part falls by at most 1/480 per sample; the wet part is continuous.
    assert!(l[..480]
        .windows(2)
        .all(|w| (w[1] - w[0]).abs() < 1.0 / 480.0 + 0.05));
    let mut c = chain("kind = \"compressor\"\nthreshold_db = 0.0\nratio = 10.0\nattack_ms = 0.01");
    run_dc(&mut c, 1);
    c.set_param(0, Param::ThresholdDb, -40.0).expect("set");
    let (l, _) = run_dc(&mut c, 4);
    // even with a near-instant attack the 40 dB threshold move is spread over the ramp
    let step = max_step(&l);
    assert!(step < 0.01, "largest step {step}");
    assert!(l[1000] < 0.05, "settled far below unity: {}", l[1000]);
}
