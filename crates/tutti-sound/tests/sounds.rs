//! Tutti's own sounds through the embedded engine (issue 12's `/play` through the show's
//! sound): a sound's clip, rendered once off the audio thread, goes through the engine's
//! lock-free command queue to its player voice and comes out of the engine's output, whole and
//! at the player's level, then ends; and a running show's engine accepts every sound.

use tutti_audio::{Engine, EngineConfig, MasterConfig};
use tutti_sound::sounds::{osc_message, Clips, SOUND_ADDRESS};
use tutti_sound::{AudioOut, EngineSettings, Outputs, SoundName};

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

#[test]
fn a_sound_comes_out_of_the_engine_whole_and_then_ends() {
    let (h, mut core) = Engine::new(EngineConfig {
        master: MasterConfig::bypass(),
        initial: vec![
            ("drone.amp".into(), 0.0),
            ("granular.amp".into(), 0.0),
            ("rhythm.amp".into(), 0.0),
        ],
        ..EngineConfig::default()
    })
    .unwrap();
    let rate = core.sample_rate();
    let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    // Silence before: the voices are off.
    for _ in 0..20 {
        core.process(&mut l, &mut r);
    }
    assert!(rms(&l) < 1e-6, "{}", rms(&l));

    let clips = Clips::new(rate);
    let gong = clips.get(SoundName::parse("gong").unwrap());
    h.play_clip(gong.clone(), false).unwrap();
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for _ in 0..(3 * rate as usize / 256) {
        core.process(&mut l, &mut r);
        left.extend_from_slice(&l);
        right.extend_from_slice(&r);
    }
    // It starts within the first two blocks and follows the clip at `player.amp` (0.8 by
    // default): past the 5 ms fade-in, sample for sample. (The gong swells from silence, so
    // its start is found by matching, not by the first non-zero sample.)
    let settled = (0.05 * rate as f32) as usize;
    let mismatch = |o: usize| -> f32 {
        (settled..settled + 4_000)
            .map(|i| (left[i] - 0.8 * gong.left[i - o]).abs())
            .sum()
    };
    let start = (0..=512)
        .min_by(|a, b| mismatch(*a).total_cmp(&mismatch(*b)))
        .unwrap();
    assert!(start <= 512, "{start}");
    for i in settled..gong.frames() - settled {
        let want = 0.8 * gong.left[i - start];
        assert!(
            (left[i] - want).abs() < 1e-3 && (right[i] - want).abs() < 1e-3,
            "frame {i}: {} / {} against {want}",
            left[i],
            right[i]
        );
    }
    assert!(rms(&left[..rate as usize]) > 0.05);
    assert!(left.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    // It ends: silence after the clip, which is handed back to be dropped off the audio thread.
    assert!(left[gong.frames() + start + 256..]
        .iter()
        .all(|v| v.abs() < 1e-6));
    assert_eq!(h.collect_garbage(), 1);
}

#[test]
fn a_shows_engine_and_osc_targets_take_every_sound() {
    let target = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    target
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let spec = tutti_spec::PieceSpec::demo();
    let mut outputs = Outputs::new(
        &spec,
        &[target.local_addr().unwrap()],
        std::time::Duration::from_millis(10),
    )
    .unwrap();
    let dir = std::env::temp_dir();
    let engine = EngineSettings {
        output: "null".into(),
        ..EngineSettings::default()
    };
    let audio: Option<std::sync::Arc<AudioOut>> =
        outputs.start_engine(&spec, &engine, &dir, "SOUNDS");
    assert!(audio.is_some(), "{}", outputs.sound_status());
    for name in tutti_audio::tutti_dsp::sounds::NAMES {
        let sound = SoundName::parse(name).unwrap();
        assert_eq!(outputs.play_sound(sound), vec!["osc", "engine"], "{name}");
        // The OSC target is told, one message per sound (no tick runs here to send bundles).
        let mut buf = [0u8; 256];
        let n = target.recv(&mut buf).expect("the OSC message arrives");
        assert_eq!(&buf[..n], osc_message(sound).as_slice());
        assert!(buf.starts_with(SOUND_ADDRESS.as_bytes()));
    }
    audio.unwrap().stop();
}
