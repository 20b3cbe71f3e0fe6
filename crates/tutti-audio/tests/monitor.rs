//! Monitoring on real signals: a 1 kHz sine shows its peak in the right band, the right
//! peak and RMS, and the spectrum falls away elsewhere.

use tutti_audio::monitor::{band_edge_hz, BANDS, FRAME_RATE};
use tutti_audio::{Engine, EngineConfig, MasterConfig};

fn run_sine(freq: f32, amp: f32, right_amp: f32) -> tutti_audio::MonitorFrame {
    let (h, mut core) = Engine::new(EngineConfig {
        master: MasterConfig::bypass(),
        initial: ["drone.amp", "granular.amp", "rhythm.amp", "player.amp"]
            .iter()
            .map(|n| (n.to_string(), 0.0))
            .collect(),
        ..EngineConfig::default()
    })
    .unwrap();
    assert!(h.latest_monitor().is_none(), "no frame before audio");
    let mut n = 0usize;
    for _ in 0..100 {
        let mut l: Vec<f32> = (0..256)
            .map(|i| amp * (std::f32::consts::TAU * freq * (n + i) as f32 / 48_000.0).sin())
            .collect();
        let mut r: Vec<f32> = l.iter().map(|v| v * right_amp / amp).collect();
        n += 256;
        core.process_input(&mut l, &mut r);
    }
    let frame = h.latest_monitor().unwrap();
    // 100 blocks of 256 at 48 kHz = 0.533 s ⇒ 16 frames at 30 Hz.
    assert_eq!(
        frame.seq,
        (100 * 256) / (48_000 / FRAME_RATE as usize) as u64
    );
    frame
}

#[test]
fn a_1khz_sine_peaks_in_its_band_with_the_right_levels() {
    let frame = run_sine(1000.0, 0.5, 0.25);
    let band = (0..BANDS)
        .find(|&b| band_edge_hz(b) <= 1000.0 && 1000.0 < band_edge_hz(b + 1))
        .unwrap();
    let loudest = (0..BANDS)
        .max_by(|a, b| frame.bands_dbfs[*a].total_cmp(&frame.bands_dbfs[*b]))
        .unwrap();
    assert_eq!(loudest, band, "{:?}", frame.bands_dbfs);
    assert!(
        frame.bands_hz[band] > band_edge_hz(band) && frame.bands_hz[band] < band_edge_hz(band + 1)
    );
    // The mid signal (L+R)/2 has amplitude 0.375 → −8.5 dBFS; Hann scalloping ≤ 1.5 dB.
    let expect = 20.0 * 0.375f32.log10();
    assert!(
        (frame.bands_dbfs[band] - expect).abs() < 1.5,
        "{} vs {expect}",
        frame.bands_dbfs[band]
    );
    // Far bands are quiet (Hann sidelobes fall fast).
    for b in 0..BANDS {
        let centre = frame.bands_hz[b];
        if !(250.0..4000.0).contains(&centre) {
            assert!(
                frame.bands_dbfs[b] < expect - 60.0,
                "band {b} ({centre} Hz): {}",
                frame.bands_dbfs[b]
            );
        }
    }
    assert!((frame.peak[0] - 0.5).abs() < 1e-3, "{:?}", frame.peak);
    assert!((frame.peak[1] - 0.25).abs() < 1e-3, "{:?}", frame.peak);
    let rms = 0.5 / 2f32.sqrt();
    assert!((frame.rms[0] - rms).abs() < 0.005, "{:?}", frame.rms);
    assert!((frame.rms[1] - rms / 2.0).abs() < 0.005, "{:?}", frame.rms);
    assert!((frame.rms_dbfs[0] - 20.0 * rms.log10()).abs() < 0.1);
    let json = serde_json::to_string(&frame).unwrap();
    assert!(
        json.contains("bands_dbfs") && json.contains("rms_dbfs"),
        "{json}"
    );
}

#[test]
fn a_low_and_a_high_sine_land_in_their_bands() {
    for freq in [60.0f32, 12_000.0] {
        let frame = run_sine(freq, 0.5, 0.5);
        let loudest = (0..BANDS)
            .max_by(|a, b| frame.bands_dbfs[*a].total_cmp(&frame.bands_dbfs[*b]))
            .unwrap();
        assert!(
            band_edge_hz(loudest) <= freq * 1.05 && freq * 0.95 < band_edge_hz(loudest + 1),
            "{freq} Hz in band {loudest} ({}–{} Hz)",
            band_edge_hz(loudest),
            band_edge_hz(loudest + 1)
        );
    }
}
