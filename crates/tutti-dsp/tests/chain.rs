//! Chain files: parsing, building every stage kind, control changes, and every bad-input case
//! giving its named error.

mod common;

use std::path::{Path, PathBuf};

use common::noise;
use tutti_dsp::{Chain, ChainConfig, DspError, Limits, Param, Processor};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tutti-dsp-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn write_ir(dir: &Path, name: &str, rate: u32, frames: usize, channels: usize) -> PathBuf {
    let p = dir.join(name);
    let chans: Vec<Vec<f32>> = (0..channels)
        .map(|c| {
            noise(frames, c as u64 + 1)
                .iter()
                .map(|v| v * 0.1)
                .collect()
        })
        .collect();
    tutti_dsp::write_wav(&p, &chans, rate).expect("write IR");
    p
}

fn build(toml: &str, dir: &Path) -> Result<Chain, DspError> {
    let cfg = ChainConfig::from_toml_str(toml, "<test>")?;
    Chain::build(&cfg, dir, &Limits::default())
}

const FULL: &str = r#"
sample_rate = 48000
max_block = 256
smoothing_ms = 10.0

[[stages]]
kind = "biquad"
type = "highpass"
freq = 30.0
q = 0.7

[[stages]]
kind = "eq"
name = "eq"
bands = [
  { type = "peaking", freq = 1000.0, gain_db = 3.0, q = 1.0 },
  { type = "lowshelf", freq = 100.0, gain_db = -2.0 },
]
graphic = { count = 10, from = 31.5, to = 16000.0, gains_db = [1.0, -1.0] }

[[stages]]
kind = "compressor"
name = "comp"
threshold_db = -18.0
ratio = 3.0
knee_db = 6.0
attack_ms = 5.0
release_ms = 100.0
makeup_db = 2.0

[[stages]]
kind = "reverb"
name = "verb"
size = 0.6
decay_s = 1.5
damping = 0.4
mix = 0.2

[[stages]]
kind = "convolution"
ir = "ir.wav"
mode = "low_latency"
partition = 64
max_partition = 1024

[[stages]]
kind = "gain"
name = "master"
gain_db = -3.0

[[stages]]
kind = "pan"
name = "pan"
pan = 0.25

[[stages]]
kind = "delay"
ms = 1.0

[[stages]]
kind = "limiter"
ceiling_db = -1.0
lookahead_ms = 2.0
release_ms = 50.0
"#;

#[test]
fn full_chain_builds_processes_and_takes_control_changes() {
    let dir = tmpdir("full");
    write_ir(&dir, "ir.wav", 48_000, 5000, 2);
    let mut chain = build(FULL, &dir).expect("build");
    assert_eq!(chain.len(), 9);
    assert_eq!(chain.latency(), 96);
    let x = noise(48_000, 3);
    let (mut l, mut r) = (x.clone(), x.clone());
    for (a, b) in l.chunks_mut(256).zip(r.chunks_mut(256)) {
        chain.process(a, b);
    }
    assert!(l.iter().chain(&r).all(|v| v.is_finite() && v.abs() <= 0.9));
    assert!(l.iter().any(|v| v.abs() > 0.01));

    let eq = chain.stage_index("eq").expect("named");
    chain
        .set_param(eq, Param::BandGainDb(11), 6.0)
        .expect("band gain");
    chain
        .set_param(eq, Param::BandFreq(0), 1200.0)
        .expect("band freq");
    let comp = chain.stage_index("comp").expect("named");
    chain
        .set_param(comp, Param::ThresholdDb, -24.0)
        .expect("threshold");
    let verb = chain.stage_index("verb").expect("named");
    chain.set_param(verb, Param::Mix, 0.5).expect("mix");
    chain.set_param(verb, Param::DecayS, 3.0).expect("decay");
    let master = chain.stage_index("master").expect("named");
    chain.set_param(master, Param::GainDb, -6.0).expect("gain");

    // rejected changes name stage and parameter and change nothing
    let e = chain.set_param(master, Param::GainDb, 90.0).unwrap_err();
    assert!(
        matches!(e, DspError::Param { stage, param: "gain_db", .. } if stage == master),
        "{e}"
    );
    let e = chain.set_param(eq, Param::BandGainDb(99), 1.0).unwrap_err();
    assert!(e.to_string().contains("no such band"), "{e}");
    let e = chain.set_param(master, Param::Mix, 0.5).unwrap_err();
    assert!(
        e.to_string().contains("not a parameter of this stage kind"),
        "{e}"
    );
    let e = chain.set_param(99, Param::Mix, 0.5).unwrap_err();
    assert!(e.to_string().contains("no such stage"), "{e}");

    for (a, b) in l.chunks_mut(256).zip(r.chunks_mut(256)) {
        chain.process(a, b);
    }
    assert!(l.iter().chain(&r).all(|v| v.is_finite()));
}

#[test]
fn config_round_trips_through_toml() {
    let cfg = ChainConfig::from_toml_str(FULL, "<test>").expect("parse");
    let again = ChainConfig::from_toml_str(&cfg.to_toml_string(), "<again>").expect("reparse");
    assert_eq!(cfg, again);
}

fn parse_err(toml: &str) -> String {
    match ChainConfig::from_toml_str(toml, "<test>") {
        Err(e @ DspError::ChainParse { .. }) => e.to_string(),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let e = parse_err("sample_rate = 48000\nmax_block = 64\nbogus = 1\n");
    assert!(e.contains("bogus"), "{e}");
    let e = parse_err("sample_rate = 48000\nmax_block = 64\n[[stages]]\nkind = \"gain\"\ngain_db = 1.0\nvolume = 2\n");
    assert!(e.contains("volume"), "{e}");
    let e = parse_err("sample_rate = 48000\nmax_block = 64\n[[stages]]\nkind = \"eq\"\nbands = [{ type = \"peaking\", freq = 100.0, gian_db = 1.0 }]\n");
    assert!(e.contains("gian_db"), "{e}");
    let e = parse_err("sample_rate = 48000\nmax_block = 64\n[[stages]]\nkind = \"fuzz\"\n");
    assert!(e.contains("fuzz"), "{e}");
    let e = parse_err("sample_rate = 48000\nmax_block = 64\n[[stages]]\nkind = \"biquad\"\ntype = \"wobble\"\nfreq = 100.0\n");
    assert!(e.contains("wobble"), "{e}");
}

fn stage_err(toml_stage: &str) -> (usize, String, String) {
    let toml = format!("sample_rate = 48000\nmax_block = 64\n[[stages]]\nkind = \"gain\"\ngain_db = 0.0\n[[stages]]\n{toml_stage}\n");
    match build(&toml, Path::new(".")) {
        Err(DspError::InvalidStage { stage, field, .. }) => {
            let msg = build(&toml, Path::new(".")).unwrap_err().to_string();
            (stage, field, msg)
        }
        other => panic!("expected InvalidStage for {toml_stage:?}, got {other:?}"),
    }
}

#[test]
fn out_of_range_values_name_stage_and_field() {
    let cases = [
        ("kind = \"biquad\"\ntype = \"peaking\"\nfreq = 24000.0", "freq"),
        ("kind = \"biquad\"\ntype = \"peaking\"\nfreq = 0.0", "freq"),
        ("kind = \"biquad\"\ntype = \"peaking\"\nfreq = 100.0\nq = 0.0", "q"),
        ("kind = \"biquad\"\ntype = \"peaking\"\nfreq = 100.0\nq = -1.0", "q"),
        ("kind = \"biquad\"\ntype = \"peaking\"\nfreq = 100.0\ngain_db = 60.0", "gain_db"),
        ("kind = \"eq\"\nbands = [{ type = \"peaking\", freq = 100.0 }, { type = \"notch\", freq = 30000.0 }]", "bands[1].freq"),
        ("kind = \"eq\"\ngraphic = { count = 0, from = 20.0, to = 20000.0 }", "graphic.count"),
        ("kind = \"eq\"\ngraphic = { count = 8, from = 20.0, to = 25000.0 }", "graphic.to"),
        ("kind = \"eq\"\ngraphic = { count = 8, from = 20.0, to = 2000.0, gains_db = [0.0, 99.0] }", "graphic.gains_db[1]"),
        ("kind = \"compressor\"\nthreshold_db = 6.0", "threshold_db"),
        ("kind = \"compressor\"\nthreshold_db = -6.0\nratio = 0.5", "ratio"),
        ("kind = \"limiter\"\nceiling_db = 3.0", "ceiling_db"),
        ("kind = \"limiter\"\nlookahead_ms = 500.0", "lookahead_ms"),
        ("kind = \"reverb\"\ndecay_s = 0.0", "decay_s"),
        ("kind = \"reverb\"\nmix = 1.5", "mix"),
        ("kind = \"gain\"\ngain_db = -100.0", "gain_db"),
        ("kind = \"pan\"\npan = 2.0", "pan"),
        ("kind = \"delay\"\nms = -1.0", "ms"),
        ("kind = \"convolution\"\nir = \"x.wav\"\npartition = 100", "partition"),
        ("kind = \"convolution\"\nir = \"x.wav\"\nmax_partition = 1024", "max_partition"),
    ];
    for (stage, field) in cases {
        let (idx, f, msg) = stage_err(stage);
        assert_eq!(idx, 1, "{msg}");
        assert_eq!(f, field, "{msg}");
        assert!(msg.contains("stage 1") && msg.contains(field), "{msg}");
    }
}

#[test]
fn bad_top_level_values_are_named() {
    for (toml, field) in [
        ("sample_rate = 1000\nmax_block = 64\n", "sample_rate"),
        ("sample_rate = 48000\nmax_block = 0\n", "max_block"),
        (
            "sample_rate = 48000\nmax_block = 64\nsmoothing_ms = -1.0\n",
            "smoothing_ms",
        ),
    ] {
        let e = build(toml, Path::new(".")).unwrap_err();
        assert!(
            matches!(&e, DspError::InvalidChain { field: f, .. } if *f == field),
            "{e}"
        );
    }
}

fn conv_chain(dir: &Path, ir: &str, limits: &Limits) -> Result<Chain, DspError> {
    let toml = format!(
        "sample_rate = 48000\nmax_block = 64\n[[stages]]\nkind = \"convolution\"\nir = \"{ir}\"\n"
    );
    Chain::build(&ChainConfig::from_toml_str(&toml, "<t>")?, dir, limits)
}

#[test]
fn bad_impulse_responses_give_clear_errors() {
    let dir = tmpdir("irs");
    // missing
    let e = conv_chain(&dir, "missing.wav", &Limits::default()).unwrap_err();
    assert!(
        matches!(&e, DspError::ImpulseResponse { reason, .. } if reason.contains("not found")),
        "{e}"
    );
    assert!(e.to_string().contains("missing.wav"));
    // not a WAV
    std::fs::write(dir.join("text.wav"), b"this is not audio at all, just text").expect("write");
    let e = conv_chain(&dir, "text.wav", &Limits::default()).unwrap_err();
    assert!(
        matches!(&e, DspError::ImpulseResponse { reason, .. } if reason.contains("not a readable WAV")),
        "{e}"
    );
    // wrong sample rate
    write_ir(&dir, "44k.wav", 44_100, 100, 1);
    let e = conv_chain(&dir, "44k.wav", &Limits::default()).unwrap_err();
    assert!(
        matches!(
            &e,
            DspError::IrSampleRate {
                found: 44_100,
                expected: 48_000,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("44100"), "{e}");
    // too long for the configured limit
    write_ir(&dir, "long.wav", 48_000, 5000, 1);
    let limits = Limits {
        max_ir_frames: 4096,
        ..Limits::default()
    };
    let e = conv_chain(&dir, "long.wav", &limits).unwrap_err();
    assert!(
        matches!(
            &e,
            DspError::IrTooLong {
                frames: 5000,
                limit: 4096,
                ..
            }
        ),
        "{e}"
    );
    // too many channels
    write_ir(&dir, "quad.wav", 48_000, 100, 4);
    let e = conv_chain(&dir, "quad.wav", &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("4 channels"), "{e}");
    // truncated (corrupt) data: header claims more samples than present
    let good = write_ir(&dir, "good.wav", 48_000, 1000, 2);
    let bytes = std::fs::read(&good).expect("read");
    std::fs::write(dir.join("cut.wav"), &bytes[..bytes.len() - 1001]).expect("write");
    let e = conv_chain(&dir, "cut.wav", &Limits::default()).unwrap_err();
    assert!(matches!(&e, DspError::ImpulseResponse { .. }), "{e}");
    // and the good one builds
    conv_chain(&dir, "good.wav", &Limits::default()).expect("good IR");
}

#[test]
fn chain_file_io_errors_name_the_file() {
    let e = Chain::from_file(Path::new("/nonexistent/chain.toml"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&e, DspError::ChainIo { .. }) && e.to_string().contains("/nonexistent/chain.toml"),
        "{e}"
    );
    let dir = tmpdir("file");
    let p = dir.join("chain.toml");
    std::fs::write(&p, "sample_rate = 48000\nmax_block = 64\nstages = 3\n").expect("write");
    let e = Chain::from_file(&p, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("chain.toml"), "{e}");
}

#[test]
fn stage_replacement_swaps_without_touching_other_stages() {
    let dir = tmpdir("swap");
    write_ir(&dir, "a.wav", 48_000, 300, 1);
    let mut chain = conv_chain(&dir, "a.wav", &Limits::default()).expect("chain");
    let ir = vec![vec![0.5f32]];
    let new = tutti_dsp::Convolver::new(
        &ir,
        tutti_dsp::Partitioning::for_block(tutti_dsp::ConvolutionMode::Uniform, 64),
        1.0,
    )
    .expect("conv");
    let mut stage = tutti_dsp::Stage::Convolution(Box::new(new));
    chain.swap_stage(0, &mut stage).expect("swap");
    assert!(
        matches!(&stage, tutti_dsp::Stage::Convolution(c) if c.ir_len() == 300),
        "old stage handed back"
    );
    assert!(chain.swap_stage(5, &mut stage).is_err());
    let (mut l, mut r) = (vec![1.0f32; 64], vec![1.0f32; 64]);
    chain.process(&mut l, &mut r);
    assert!(l.iter().all(|v| (*v - 0.5).abs() < 1e-6));
}

#[test]
fn non_finite_input_does_not_poison_the_chain() {
    let toml = "sample_rate = 48000\nmax_block = 64\n[[stages]]\nkind = \"biquad\"\ntype = \"lowpass\"\nfreq = 100.0\n[[stages]]\nkind = \"reverb\"\n";
    let mut chain = build(toml, Path::new(".")).expect("build");
    let (mut l, mut r) = (vec![0.1f32; 64], vec![0.1f32; 64]);
    l[3] = f32::NAN;
    r[7] = f32::INFINITY;
    chain.process(&mut l, &mut r);
    for _ in 0..10 {
        let (mut l, mut r) = (vec![0.1f32; 64], vec![0.1f32; 64]);
        chain.process(&mut l, &mut r);
        assert!(l.iter().chain(&r).all(|v| v.is_finite()));
    }
}
