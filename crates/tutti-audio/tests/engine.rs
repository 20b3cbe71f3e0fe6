//! The real-time engine on real signals: smoothing bounds, glitch-free swaps, latency,
//! every voice in every section and at every control extreme, bad input.

use std::path::Path;

use tutti_audio::controls::{all_controls, ids};
use tutti_audio::{AudioError, Engine, EngineConfig, EngineCore, EngineHandle, MasterConfig};

const FS: u32 = 48_000;

/// Every voice silent, so only the input (or the voice under test) reaches the output.
fn silent_voices() -> Vec<(String, f32)> {
    ["drone.amp", "granular.amp", "rhythm.amp", "player.amp"]
        .iter()
        .map(|n| (n.to_string(), 0.0))
        .collect()
}

fn engine(master: MasterConfig, initial: Vec<(String, f32)>) -> (EngineHandle, EngineCore) {
    Engine::new(EngineConfig {
        master,
        initial,
        ..EngineConfig::default()
    })
    .unwrap()
}

/// Runs `blocks` blocks with the given input generator; returns the output (left, right).
fn run_input(
    core: &mut EngineCore,
    blocks: usize,
    start: usize,
    input: impl Fn(usize) -> f32,
) -> (Vec<f32>, Vec<f32>) {
    let b = core.block_frames();
    let (mut ol, mut or) = (Vec::new(), Vec::new());
    for k in 0..blocks {
        let mut l: Vec<f32> = (0..b).map(|i| input(start + k * b + i)).collect();
        let mut r = l.clone();
        core.process_input(&mut l, &mut r);
        ol.extend_from_slice(&l);
        or.extend_from_slice(&r);
    }
    (ol, or)
}

fn max_step(x: &[f32]) -> f32 {
    x.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

#[test]
fn a_gain_jump_moves_no_faster_than_its_ramp() {
    let (h, mut core) = engine(
        MasterConfig::bypass(),
        [silent_voices(), vec![("master.gain".into(), 0.1)]].concat(),
    );
    let dc = 0.5f32;
    run_input(&mut core, 10, 0, |_| dc);
    h.set(ids::MASTER_GAIN, 2.0).unwrap();
    let (l, _) = run_input(&mut core, 20, 0, |_| dc);
    let ramp = ids::MASTER_GAIN.spec().ramp_samples(FS) as f32;
    let bound = dc * (2.0 - 0.1) / ramp;
    let step = max_step(&l);
    assert!(step <= bound * 1.001 + 1e-6, "step {step} > bound {bound}");
    // It did move, all the way: without smoothing the step would have been 0.95.
    assert!(
        (l.last().unwrap() - 1.0).abs() < 1e-6,
        "{}",
        l.last().unwrap()
    );
    assert!(step > bound * 0.9, "the ramp is used: {step} vs {bound}");
    assert_eq!(core.control_value(ids::MASTER_GAIN), 2.0);
}

#[test]
fn a_drone_amp_jump_adds_no_click() {
    let cfg = |amp: f32| {
        [
            silent_voices(),
            vec![("drone.amp".into(), amp), ("drone.cutoff".into(), 20_000.0)],
        ]
        .concat()
    };
    // Reference: the settled drone at full amplitude.
    let (_, mut steady) = engine(MasterConfig::bypass(), cfg(1.0));
    run_input(&mut steady, 200, 0, |_| 0.0);
    let (s, _) = run_input(&mut steady, 50, 0, |_| 0.0);
    let steady_step = max_step(&s);
    let peak = s.iter().fold(0.0f32, |m, v| m.max(v.abs()));

    let (h, mut core) = engine(MasterConfig::bypass(), cfg(0.0));
    run_input(&mut core, 200, 0, |_| 0.0);
    h.set(ids::DRONE_AMP, 1.0).unwrap();
    let (l, _) = run_input(&mut core, 50, 0, |_| 0.0);
    let ramp = ids::DRONE_AMP.spec().ramp_samples(FS) as f32;
    // x = a·s ⇒ |Δx| ≤ a·|Δs| + |Δa|·|s| ≤ steady step + peak/ramp.
    let bound = steady_step + peak / ramp;
    let step = max_step(&l);
    assert!(step <= bound * 1.05, "step {step} > bound {bound}");
    let late_peak = l[l.len() / 2..].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        late_peak > 0.5 * peak,
        "the drone came up: {late_peak} vs {peak}"
    );
}

#[test]
fn every_voice_sounds_in_every_section_and_at_every_extreme() {
    // Each voice alone, raw (no master chain), for each section and with every one of its
    // controls at its minimum and at its maximum in turn.
    for voice in ["drone", "granular", "rhythm"] {
        let amp = format!("{voice}.amp");
        for section in 0..3 {
            for id in all_controls().filter(|c| c.name().starts_with(voice) && c.name() != amp) {
                for extreme in [id.spec().min, id.spec().max] {
                    let mut initial = silent_voices();
                    initial.push((amp.clone(), 0.8));
                    initial.push(("rhythm.pattern".into(), section as f32));
                    initial.push((id.name().into(), extreme));
                    let (_, mut core) = engine(MasterConfig::bypass(), initial);
                    // Two seconds: every pattern's first step (and the first grain) sounds
                    // at once, even at the slowest tempo and the lowest density.
                    let (l, r) = run_input(&mut core, 2 * FS as usize / 256, 0, |_| 0.0);
                    let what = format!("{voice} section {section} {}={extreme}", id.name());
                    assert!(
                        l.iter().chain(&r).all(|v| v.is_finite()),
                        "{what}: non-finite"
                    );
                    let peak = l.iter().chain(&r).fold(0.0f32, |m, v| m.max(v.abs()));
                    let rms = (l.iter().chain(&r).map(|v| v * v).sum::<f32>()
                        / (2 * l.len()) as f32)
                        .sqrt();
                    assert!(peak <= 1.5, "{what}: peak {peak}");
                    assert!(rms > 1e-3, "{what}: silent (rms {rms})");
                }
            }
        }
    }
}

#[test]
fn the_full_show_is_bounded_by_the_limiter() {
    let mut initial: Vec<(String, f32)> = all_controls()
        .filter(|c| !c.spec().is_discrete())
        .map(|c| (c.name().to_string(), c.spec().max))
        .collect();
    initial.push(("rhythm.pattern".into(), 2.0));
    let (h, mut core) = engine(MasterConfig::default(), initial);
    let (l, r) = run_input(&mut core, 400, 0, |_| 0.0);
    let ceiling = 10f32.powf(-1.0 / 20.0);
    let peak = l.iter().chain(&r).fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        peak <= ceiling * 1.001,
        "peak {peak} over the ceiling {ceiling}"
    );
    assert!(peak > 0.3, "loud show is loud: {peak}");
    assert_eq!(h.stats().non_finite_samples, 0);
}

#[test]
fn an_impulse_response_swap_crossfades_without_a_click() {
    let (h, mut core) = engine(MasterConfig::bypass(), silent_voices());
    let a = 0.5f32;
    let sine = |n: usize| a * (std::f32::consts::TAU * 100.0 * n as f32 / FS as f32).sin();
    h.set_impulse_response_samples(&[vec![1.0]]).unwrap();
    let (warm, _) = run_input(&mut core, 40, 0, sine);
    let steady_step = max_step(&warm[20 * 256..]);
    // Swap to the inverted IR: an instant switch would jump by up to 2·a.
    h.set_impulse_response_samples(&[vec![-1.0]]).unwrap();
    let (l, _) = run_input(&mut core, 40, 40 * 256, sine);
    let n = h.crossfade_samples() as f32;
    let bound = steady_step + 2.0 * a / n;
    let step = max_step(&l);
    assert!(step <= bound * 1.01, "step {step} > bound {bound}");
    // After the fade the output is the inverted input (one block later).
    let end = 40 * 256 - 1;
    let expect = -sine(40 * 256 + end - 256);
    assert!((l[end] - expect).abs() < 1e-4, "{} vs {expect}", l[end]);
    assert_eq!(h.stats().swaps, 2);
    assert_eq!(
        h.collect_garbage(),
        1,
        "the identity IR came back to be dropped here"
    );
}

#[test]
fn a_chain_swap_crossfades_without_a_click() {
    let (h, mut core) = engine(MasterConfig::bypass(), silent_voices());
    let a = 0.5f32;
    let sine = |n: usize| a * (std::f32::consts::TAU * 220.0 * n as f32 / FS as f32).sin();
    let (warm, _) = run_input(&mut core, 20, 0, sine);
    let steady_step = max_step(&warm[10 * 256..]);
    let chain = tutti_dsp::ChainConfig::from_toml_str(
        "sample_rate = 48000\nmax_block = 256\n[[stages]]\nkind = \"gain\"\ngain_db = -40.0\n",
        "test",
    )
    .unwrap();
    h.set_chain(&chain, Path::new(".")).unwrap();
    let (l, _) = run_input(&mut core, 40, 20 * 256, sine);
    let bound = steady_step + a / h.crossfade_samples() as f32;
    assert!(max_step(&l) <= bound * 1.01, "{} > {bound}", max_step(&l));
    let tail = l[30 * 256..].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(tail < a * 0.011, "new chain in place: {tail}");
}

#[test]
fn input_to_output_latency_is_block_plus_chain() {
    let mut master = MasterConfig::bypass();
    master.limiter = MasterConfig::default().limiter;
    let (h, mut core) = engine(master, silent_voices());
    let (l, _) = run_input(&mut core, 8, 0, |n| if n == 0 { 0.5 } else { 0.0 });
    let at = l
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap()
        .0;
    let lat = h.latency();
    assert_eq!(lat.block_samples, 256);
    assert_eq!(lat.chain_samples, 96, "2 ms look-ahead at 48 kHz");
    assert_eq!(at, lat.total_samples);
    assert!((l[at] - 0.5).abs() < 1e-3, "{}", l[at]);
    assert!((lat.total_ms - 352.0 / 48.0).abs() < 1e-9);
}

#[test]
fn unknown_control_names_list_the_valid_ones() {
    let (h, _core) = engine(MasterConfig::bypass(), vec![]);
    let err = h.control_id("drone.volume").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AudioError::UnknownControl { .. }));
    assert!(
        msg.contains("drone.volume") && msg.contains("drone.amp") && msg.contains("master.gain"),
        "{msg}"
    );
    assert!(h.set_by_name("lights.colour", 1.0).is_err());
    let bad = Engine::new(EngineConfig {
        initial: vec![("granular.size".into(), 1.0)],
        ..EngineConfig::default()
    })
    .unwrap_err();
    assert!(bad.to_string().contains("granular.size"), "{bad}");
    assert!(h
        .set(ids::DRONE_AMP, f32::NAN)
        .unwrap_err()
        .to_string()
        .contains("drone.amp"));
}

#[test]
fn bad_chains_and_impulse_responses_are_refused_and_the_show_plays_on() {
    let dir = tempfile::tempdir().unwrap();
    let (h, mut core) = engine(MasterConfig::default(), vec![]);
    let mut l = vec![0.0f32; 256];
    let mut r = vec![0.0f32; 256];
    for _ in 0..20 {
        core.process(&mut l, &mut r);
    }
    let bad_key = "sample_rate = 48000\nmax_block = 256\n[[stages]]\nkind = \"gain\"\ngain_db = 1.0\nloudness = 3\n";
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, bad_key).unwrap();
    let e = h.set_chain_file(&p).unwrap_err().to_string();
    assert!(e.contains("loudness"), "{e}");
    let bad_freq = "sample_rate = 48000\nmax_block = 256\n[[stages]]\nkind = \"eq\"\nbands = [{ type = \"peaking\", freq = 30000.0, gain_db = 1.0, q = 1.0 }]\n";
    std::fs::write(&p, bad_freq).unwrap();
    let e = h.set_chain_file(&p).unwrap_err().to_string();
    assert!(e.contains("freq") && e.contains("30000"), "{e}");

    let missing = dir.path().join("nope.wav");
    let e = h
        .set_impulse_response(Some(&missing), 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.wav"), "{e}");
    let text = dir.path().join("text.wav");
    std::fs::write(&text, "not a wav").unwrap();
    let e = h
        .set_impulse_response(Some(&text), 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("text.wav"), "{e}");
    let wrong_rate = dir.path().join("ir44.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&wrong_rate, spec).unwrap();
    for i in 0..64 {
        w.write_sample(if i == 0 { 1.0f32 } else { 0.0 }).unwrap();
    }
    w.finalize().unwrap();
    let e = h
        .set_impulse_response(Some(&wrong_rate), 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("44100") && e.contains("48000"), "{e}");
    let e = h
        .set_impulse_response_samples(&[vec![0.0; (1 << 21) + 1]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit"), "{e}");

    // Nothing was swapped; the show keeps playing.
    for _ in 0..200 {
        core.process(&mut l, &mut r);
    }
    assert_eq!(h.stats().swaps, 0);
    assert!(l.iter().any(|v| *v != 0.0));
}

#[test]
fn a_discrete_pattern_change_waits_for_the_next_step() {
    let (h, mut core) = engine(MasterConfig::bypass(), vec![("rhythm.tempo".into(), 60.0)]);
    let mut l = vec![0.0f32; 256];
    let mut r = vec![0.0f32; 256];
    core.process(&mut l, &mut r);
    h.set(ids::RHYTHM_PATTERN, 2.0).unwrap();
    core.process(&mut l, &mut r);
    // A step at 60 bpm lasts 250 ms; 512 frames in, the calm pattern still plays.
    assert_eq!(core.control_value(ids::RHYTHM_PATTERN), 0.0);
    for _ in 0..60 {
        core.process(&mut l, &mut r);
    }
    assert_eq!(core.control_value(ids::RHYTHM_PATTERN), 2.0);
}
