//! `tutti dsp` in a pipe and on files, its errors, and `tutti render` of a recorded show
//! with the embedded engine (deterministic).

use std::io::Write;
use std::process::{Command, Stdio};

fn tutti() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tutti"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TUTTI_") {
            c.env_remove(k);
        }
    }
    c
}

const CHAIN: &str =
    "sample_rate = 48000\nmax_block = 1024\n\n[[stages]]\nkind = \"gain\"\ngain_db = -6.0206\n";

#[test]
fn dsp_processes_a_raw_stream_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.toml");
    std::fs::write(&chain, CHAIN).unwrap();
    let mut child = tutti()
        .args(["dsp", "--chain"])
        .arg(&chain)
        .args(["--in", "-", "--out", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = Vec::new();
    for _ in 0..3000 {
        input.extend_from_slice(&0.5f32.to_le_bytes());
        input.extend_from_slice(&(-0.5f32).to_le_bytes());
    }
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), input.len(), "one frame out per frame in");
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // After the gain ramp settles, −6.02 dB halves the signal.
    assert!(
        (samples[samples.len() - 2] - 0.25).abs() < 1e-4,
        "{}",
        samples[samples.len() - 2]
    );
    assert!((samples[samples.len() - 1] + 0.25).abs() < 1e-4);
}

#[test]
fn dsp_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.toml");
    std::fs::write(&chain, CHAIN).unwrap();
    // A stream that is not a whole frame.
    let mut child = tutti()
        .args(["dsp", "--chain"])
        .arg(&chain)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&[0u8; 13]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("13"), "{err}");
    // An unknown key in the chain.
    std::fs::write(&chain, "sample_rate = 48000\nmax_block = 1024\n[[stages]]\nkind = \"gain\"\ngain_db = 1.0\nvolume = 3\n").unwrap();
    let out = tutti()
        .args(["dsp", "--chain"])
        .arg(&chain)
        .args(["--in", "nothing.wav"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("volume"));
    // A missing input file.
    std::fs::write(&chain, CHAIN).unwrap();
    let out = tutti()
        .args(["dsp", "--chain"])
        .arg(&chain)
        .args(["--in", "/nonexistent.wav", "--out", "x.wav"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.wav"));
}

#[test]
fn dsp_processes_a_wav_file() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.toml");
    std::fs::write(&chain, CHAIN).unwrap();
    let input = dir.path().join("in.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&input, spec).unwrap();
    for i in 0..48_000 {
        w.write_sample(((i as f32) * 0.05).sin() * 0.8).unwrap();
    }
    w.finalize().unwrap();
    let output = dir.path().join("out.wav");
    let out = tutti()
        .args(["dsp", "--chain"])
        .arg(&chain)
        .arg("--in")
        .arg(&input)
        .arg("--out")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = hound::WavReader::open(&output).unwrap();
    assert_eq!(r.spec().channels, 2);
    assert_eq!(r.duration(), 48_000);
    // A WAV at another sample rate is refused with a hint.
    let other = dir.path().join("44k.wav");
    let spec = hound::WavSpec {
        sample_rate: 44_100,
        ..spec
    };
    let mut w = hound::WavWriter::create(&other, spec).unwrap();
    w.write_sample(0.0f32).unwrap();
    w.finalize().unwrap();
    let out = tutti()
        .args(["dsp", "--chain"])
        .arg(&chain)
        .arg("--in")
        .arg(&other)
        .arg("--out")
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("44100"));
}
