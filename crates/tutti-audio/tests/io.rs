//! Files and sinks on real data: decoding the fixtures (made with sox and lame, a few KB
//! each: a 440 Hz sine at half scale — WAV 16 kHz mono, FLAC 22.05 kHz stereo, Ogg Vorbis
//! and MP3 44.1 kHz mono), corrupt files, the WAV recording round trip, the live stream
//! tap, the null sink and the sound-card fallback on a machine without one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tutti_audio::decode::{decode_file, DecodeOptions};
use tutti_audio::{AudioError, Engine, EngineConfig, MasterConfig, NullSink, Output, OutputChoice};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Dominant frequency by counting upward zero crossings.
fn frequency(x: &[f32], fs: u32) -> f64 {
    let ups = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    ups as f64 * fs as f64 / x.len() as f64
}

#[test]
fn the_player_decodes_wav_flac_ogg_and_mp3() {
    let opts = DecodeOptions::default();
    for (name, secs, channels, rate) in [
        ("sine440.wav", 0.2, 1, 16_000),
        ("sine440.flac", 0.25, 2, 22_050),
        ("sine440.ogg", 0.3, 1, 44_100),
        ("sine440.mp3", 0.3, 1, 44_100),
    ] {
        let clip = decode_file(&fixture(name), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(clip.sample_rate, 48_000, "{name}");
        assert_eq!(clip.source_rate, rate, "{name}");
        assert_eq!(clip.source_channels, channels, "{name}");
        // Lossy codecs add encoder delay/padding: allow 100 ms.
        assert!(
            (clip.seconds() - secs).abs() < 0.1,
            "{name}: {} s",
            clip.seconds()
        );
        let mid = &clip.left[clip.frames() / 4..3 * clip.frames() / 4];
        let f = frequency(mid, 48_000);
        assert!((f - 440.0).abs() < 15.0, "{name}: {f} Hz");
        let peak = mid.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.06, "{name}: peak {peak}");
        assert_eq!(clip.left.len(), clip.right.len());
    }
}

#[test]
fn corrupt_and_foreign_files_give_errors_naming_the_file() {
    let opts = DecodeOptions::default();
    let err = decode_file(&fixture("corrupt.flac"), &opts).unwrap_err();
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("corrupt.flac"), "{err}");

    let err = decode_file(&fixture("not_audio.wav"), &opts).unwrap_err();
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("not_audio.wav"), "{err}");

    let err = decode_file(&fixture("missing.ogg"), &opts).unwrap_err();
    assert!(matches!(err, AudioError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.ogg"), "{err}");

    let short = DecodeOptions {
        max_seconds: 0.1,
        ..opts
    };
    let err = decode_file(&fixture("sine440.wav"), &short).unwrap_err();
    assert!(matches!(err, AudioError::TooLong { .. }), "{err}");

    // The engine's own entry point says the same, and nothing changes in the show.
    let (h, _core) = Engine::new(EngineConfig::default()).unwrap();
    let err = h.play_file(&fixture("corrupt.flac"), false).unwrap_err();
    assert!(err.to_string().contains("corrupt.flac"), "{err}");
}

/// Found by fuzzing (`audio_decode`): a WAVE_FORMAT_EXTENSIBLE header claiming 213 channels
/// made symphonia panic (a shift overflow while fixing up the channel mask). A malformed file
/// is an error naming it, never a panic.
#[test]
fn a_decoder_panic_on_a_malformed_file_is_an_error() {
    let bytes = vec![
        0x52, 0x49, 0x46, 0x46, 0x4c, 0x00, 0x00, 0x00, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74,
        0x20, 0x28, 0x00, 0x00, 0x00, 0xfe, 0xff, 0xd5, 0x00, 0x00, 0x77, 0x01, 0x00, 0x00, 0xb8,
        0x0b, 0x00, 0x08, 0x00, 0x20, 0x00, 0x16, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
        0x64, 0x61, 0x74, 0x61, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x3f, 0x00, 0x00, 0x80, 0xbf, 0x6f, 0x12, 0x83, 0x3a,
    ];
    let e = tutti_audio::decode::decode_bytes("hostile.wav", bytes, &DecodeOptions::default())
        .unwrap_err();
    assert!(
        matches!(&e, AudioError::Corrupt { .. }) && e.to_string().contains("hostile.wav"),
        "{e}"
    );
}

#[test]
fn a_played_file_comes_out_of_the_engine() {
    let (h, mut core) = Engine::new(EngineConfig {
        master: MasterConfig::bypass(),
        initial: vec![
            ("drone.amp".into(), 0.0),
            ("granular.amp".into(), 0.0),
            ("rhythm.amp".into(), 0.0),
            ("player.amp".into(), 1.0),
        ],
        ..EngineConfig::default()
    })
    .unwrap();
    h.play_file(&fixture("sine440.flac"), false).unwrap();
    let mut out = Vec::new();
    let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    for _ in 0..80 {
        core.process(&mut l, &mut r);
        out.extend_from_slice(&l);
    }
    let f = frequency(&out[2_000..10_000], 48_000);
    assert!((f - 440.0).abs() < 10.0, "{f}");
    // A one-shot clip ends (with a fade) and is handed back to be dropped off-thread.
    assert!(out[15_000..].iter().all(|v| v.abs() < 1e-6));
    assert_eq!(h.collect_garbage(), 1);
}

#[test]
fn a_recording_reads_back_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("show.wav");
    let (h, mut core) = Engine::new(EngineConfig::default()).unwrap();
    let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    for _ in 0..10 {
        core.process(&mut l, &mut r);
    }
    let rec = h.start_recording(&path).unwrap();
    assert!(matches!(
        h.start_recording(&dir.path().join("b.wav")),
        Err(AudioError::Busy { .. })
    ));
    let mut played = Vec::new();
    for _ in 0..200 {
        core.process(&mut l, &mut r);
        for (a, b) in l.iter().zip(&r) {
            played.push(*a);
            played.push(*b);
        }
    }
    let summary = rec.stop().unwrap();
    assert_eq!(summary.dropped_blocks, 0);
    assert_eq!(summary.frames, 200 * 256);
    let mut reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(reader.spec().channels, 2);
    assert_eq!(reader.spec().sample_rate, 48_000);
    let back: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    assert_eq!(back.len(), played.len());
    // Taps see each block when it is rendered, one block (256 frames, 512 samples) before
    // `process` hands it to the sink.
    let shift = 2 * 256;
    assert!(
        back.iter()
            .zip(&played[shift..])
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "bit-exact"
    );
    assert!(played.iter().any(|v| *v != 0.0));
    // The recorder is free again.
    h.start_recording(&dir.path().join("again.wav"))
        .unwrap()
        .stop()
        .unwrap();
}

#[test]
fn a_full_recording_ring_drops_blocks_and_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (h, mut core) = Engine::new(EngineConfig {
        record_ring_seconds: 0.05,
        ..EngineConfig::default()
    })
    .unwrap();
    let rec = h.start_recording(&dir.path().join("x.wav")).unwrap();
    let (mut l, mut r) = (vec![0.0f32; 4096], vec![0.0f32; 4096]);
    // Far faster than real time: the writer cannot keep up with 2 minutes in a burst.
    for _ in 0..1_500 {
        core.process(&mut l, &mut r);
    }
    let summary = rec.stop().unwrap();
    assert!(summary.dropped_blocks > 0, "{summary:?}");
    assert_eq!(summary.frames % 256, 0, "whole blocks only");
}

#[test]
fn the_stream_tap_delivers_16_bit_pcm_of_the_output() {
    let (h, mut core) = Engine::new(EngineConfig::default()).unwrap();
    let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    // Nobody listens: nothing is queued.
    for _ in 0..10 {
        core.process(&mut l, &mut r);
    }
    let mut reader = h.stream_tap().unwrap();
    assert!(matches!(h.stream_tap(), Err(AudioError::Busy { .. })));
    assert_eq!(reader.available_frames(), 0, "no stale audio");
    let fmt = reader.format();
    assert_eq!(
        (fmt.sample_rate, fmt.channels, fmt.encoding),
        (48_000, 2, "s16le")
    );
    let mut expect = Vec::new();
    for _ in 0..20 {
        core.process(&mut l, &mut r);
        for (a, b) in l.iter().zip(&r) {
            expect.push(tutti_audio::stream::to_i16(*a));
            expect.push(tutti_audio::stream::to_i16(*b));
        }
    }
    let mut bytes = Vec::new();
    while reader.read_pcm(&mut bytes, 1000) > 0 {}
    let got: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(got.len(), expect.len());
    // One block ahead of what `process` returns (see the recording test).
    assert_eq!(got[..got.len() - 512], expect[512..]);
    assert!(got.iter().any(|v| *v != 0));
    // Nobody reads for a while: blocks are dropped, the audio thread goes on.
    for _ in 0..1000 {
        core.process(&mut l, &mut r);
    }
    assert!(reader.dropped_blocks() > 0);
    drop(reader);
    let again = h.stream_tap().unwrap();
    assert_eq!(again.available_frames(), 0, "a new reader starts fresh");
}

#[test]
fn the_null_sink_runs_in_real_time_without_a_sound_card() {
    let (h, core) = Engine::new(EngineConfig::default()).unwrap();
    let sink = NullSink::start(core).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.blocks() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(sink.blocks() >= 40, "blocks: {}", sink.blocks());
    let frame = h.latest_monitor().expect("monitor frames while running");
    assert!(frame.rms[0] > 0.0 && frame.peak[0] <= 1.0, "{frame:?}");
    let core = sink.stop().expect("the core comes back");
    assert!(h.stats().blocks >= 40);
    drop(core);
}

#[test]
fn auto_output_falls_back_to_the_null_sink_when_there_is_no_card() {
    let (h, core) = Engine::new(EngineConfig::default()).unwrap();
    let out = Output::start(core, OutputChoice::Auto).unwrap();
    // On a machine without audio hardware (CI, this one) the null sink runs; on one with a
    // card, the card does. Either way the engine runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.stats().blocks < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        h.stats().blocks >= 20,
        "{:?} ran {:?}",
        out.kind(),
        h.stats()
    );
    out.stop();
}

#[test]
fn a_decoded_file_becomes_the_granular_source() {
    let (h, mut core) = Engine::new(EngineConfig {
        master: MasterConfig::bypass(),
        initial: vec![
            ("drone.amp".into(), 0.0),
            ("rhythm.amp".into(), 0.0),
            ("granular.amp".into(), 1.0),
            ("granular.density".into(), 30.0),
        ],
        ..EngineConfig::default()
    })
    .unwrap();
    let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    for _ in 0..20 {
        core.process(&mut l, &mut r);
    }
    h.set_grain_source_file(&fixture("sine440.ogg")).unwrap();
    let mut out = Vec::new();
    for _ in 0..400 {
        core.process(&mut l, &mut r);
        out.extend_from_slice(&l);
    }
    // The internal wavetable was retired (after its grains finished) and comes back here.
    assert_eq!(h.collect_garbage(), 1);
    // Grains of a 440 Hz sine at pitch 1: the last second is dominated by 440 Hz.
    let tail = &out[out.len() - 48_000..];
    let f = frequency(tail, 48_000);
    assert!((f - 440.0).abs() < 40.0, "{f} Hz");
    let err = h
        .set_grain_source_file(&fixture("corrupt.flac"))
        .unwrap_err();
    assert!(err.to_string().contains("corrupt.flac"), "{err}");
}
