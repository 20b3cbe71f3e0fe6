//! WAV round trip (bit-exact), integer WAV decoding, corrupt files, raw f32 streams.

mod common;

use std::path::PathBuf;

use tutti_dsp::{
    process_raw_stream, read_raw_f32, read_wav, write_raw_f32, write_wav, DspError, Limiter,
    LimiterConfig, Processor,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tutti-dsp-io-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp");
    d.join(name)
}

#[test]
fn wav_round_trip_is_bit_exact() {
    // random bit patterns (every finite value class: normal, subnormal, ±0, extremes)
    let mut s: u64 = 0x1234_5678_9abc_def1;
    let mut gen = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let v = f32::from_bits((s >> 32) as u32);
        if v.is_finite() {
            v
        } else {
            0.25
        }
    };
    let mut l: Vec<f32> = (0..10_000).map(|_| gen()).collect();
    let r: Vec<f32> = (0..10_000).map(|_| gen()).collect();
    l[..6].copy_from_slice(&[0.0, -0.0, f32::MIN_POSITIVE / 3.0, f32::MAX, f32::MIN, 1.0]);
    let p = tmp("roundtrip.wav");
    write_wav(&p, &[l.clone(), r.clone()], 96_000).expect("write");
    let (chans, rate) = read_wav(&p).expect("read");
    assert_eq!(rate, 96_000);
    assert_eq!(chans.len(), 2);
    for (a, b) in [(&l, &chans[0]), (&r, &chans[1])] {
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}

#[test]
fn integer_wavs_are_scaled_to_unit_range() {
    let p = tmp("int16.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&p, spec).expect("create");
    for v in [0i16, 16384, -32768, 32767] {
        w.write_sample(v).expect("write");
    }
    w.finalize().expect("finalize");
    let (c, _) = read_wav(&p).expect("read");
    assert_eq!(c[0], vec![0.0, 0.5, -1.0, 32767.0 / 32768.0]);
}

#[test]
fn corrupt_and_missing_files_name_the_path() {
    let p = tmp("garbage.wav");
    std::fs::write(&p, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk").expect("write");
    let e = read_wav(&p).unwrap_err();
    assert!(
        matches!(&e, DspError::Wav { .. }) && e.to_string().contains("garbage.wav"),
        "{e}"
    );
    let e = read_wav(&tmp("nope.wav")).unwrap_err();
    assert!(e.to_string().contains("nope.wav"), "{e}");
}

/// Found by fuzzing (`wav_read`): a WAV whose header says 0 Hz was read, and writing its
/// samples back (as `tutti dsp --in x.wav --out y.wav` does) panicked in hound (it divides
/// by the rate). Both ends now refuse it.
#[test]
fn a_sample_rate_of_zero_is_an_error_not_a_panic() {
    // RIFF/WAVE, PCM, 1 channel, 0 Hz, 16-bit, two samples.
    let mut wav = b"RIFF\x28\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00".to_vec();
    wav.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 16, 0]);
    wav.extend_from_slice(b"data\x04\x00\x00\x00\x01\x00\xff\x7f");
    let p = tmp("rate0.wav");
    std::fs::write(&p, &wav).expect("write");
    let e = read_wav(&p).unwrap_err();
    assert!(e.to_string().contains("sample rate 0"), "{e}");
    let e = write_wav(&tmp("rate0-out.wav"), &[vec![0.0, 0.5]], 0).unwrap_err();
    assert!(e.to_string().contains("sample rate of 0"), "{e}");
}

/// Found by fuzzing (`wav_read`): a file read at a huge sample rate with several channels,
/// written back as float WAV, overflowed hound's 32-bit byte rate (a panic, or in a release
/// build a wrong header). Writing refuses it, naming why; nothing is written.
#[test]
fn a_byte_rate_past_32_bits_is_an_error_not_a_panic() {
    let out = tmp("byterate-out.wav");
    let _ = std::fs::remove_file(&out);
    let e = write_wav(&out, &[vec![0.0], vec![0.0]], u32::MAX / 4).unwrap_err();
    assert!(e.to_string().contains("byte rate"), "{e}");
    assert!(!out.exists());
    // The largest rate that fits still writes and reads back.
    let ok = tmp("byterate-ok.wav");
    write_wav(&ok, &[vec![0.25]], u32::MAX / 4).expect("fits in 32 bits");
    let (back, rate) = read_wav(&ok).expect("reads");
    assert_eq!((back, rate), (vec![vec![0.25]], u32::MAX / 4));
}

#[test]
fn raw_stream_round_trip_and_partial_frame_error() {
    let l = common::noise(1000, 1);
    let r = common::noise(1000, 2);
    let mut bytes = Vec::new();
    write_raw_f32(&mut bytes, &[&l, &r]).expect("write");
    assert_eq!(bytes.len(), 8000);
    let back = read_raw_f32(&bytes[..], 2).expect("read");
    assert_eq!(back, vec![l, r]);
    let mut odd = bytes.clone();
    odd.extend_from_slice(&[1, 2, 3]);
    let e = read_raw_f32(&odd[..], 2).unwrap_err();
    assert!(
        matches!(
            e,
            DspError::PartialFrame {
                bytes: 8003,
                frame_bytes: 8,
                remainder: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("8003 bytes"), "{e}");
}

#[test]
fn raw_stream_processing_compensates_latency_and_rejects_partial_frames() {
    let cfg = LimiterConfig {
        name: None,
        ceiling_db: 0.0,
        lookahead_ms: 1.0,
        release_ms: 10.0,
    };
    let mut lim = Limiter::new(&cfg, 48_000.0, 1);
    assert_eq!(lim.latency(), 48);
    let n = 1000;
    let mut l = vec![0.0f32; n];
    l[100] = 0.5;
    let r = l.clone();
    let mut input = Vec::new();
    write_raw_f32(&mut input, &[&l, &r]).expect("write");
    let mut out = Vec::new();
    let frames = process_raw_stream(&mut lim, &input[..], &mut out, 64).expect("process");
    assert_eq!(frames, n as u64);
    let back = read_raw_f32(&out[..], 2).expect("parse output");
    assert_eq!(back[0].len(), n);
    assert!(
        (back[0][100] - 0.5).abs() < 1e-6,
        "impulse stays at frame 100"
    );
    assert_eq!(back[0].iter().filter(|v| v.abs() > 1e-6).count(), 1);

    lim.reset();
    let e =
        process_raw_stream(&mut lim, &input[..input.len() - 5], &mut Vec::new(), 64).unwrap_err();
    assert!(
        matches!(
            e,
            DspError::PartialFrame {
                bytes: 7995,
                remainder: 3,
                ..
            }
        ),
        "{e}"
    );
}
