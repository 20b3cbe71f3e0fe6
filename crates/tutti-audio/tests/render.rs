//! Offline rendering and the piece-mapping helper.

use tutti_audio::controls::ids;
use tutti_audio::{
    render_offline, render_piece_offline, write_wav, AudioError, EngineConfig, PieceControls,
};
use tutti_spec::PieceSpec;

fn timeline() -> Vec<(f64, Vec<(String, f32)>)> {
    vec![
        (
            0.0,
            vec![("rhythm.pattern".into(), 1.0), ("drone.amp".into(), 0.4)],
        ),
        (
            0.5,
            vec![
                ("granular.density".into(), 40.0),
                ("drone.cutoff".into(), 4000.0),
            ],
        ),
        (
            1.0,
            vec![
                ("rhythm.pattern".into(), 2.0),
                ("master.reverb_mix".into(), 0.7),
            ],
        ),
        (
            1.2,
            vec![
                ("granular.pitch".into(), 2.0),
                ("rhythm.tempo".into(), 160.0),
            ],
        ),
    ]
}

#[test]
fn offline_renders_are_bit_identical_and_seeded() {
    let cfg = EngineConfig::default();
    let a = render_offline(&cfg, &timeline(), 1.5).unwrap();
    let b = render_offline(&cfg, &timeline(), 1.5).unwrap();
    assert_eq!(a.len(), 72_000);
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x[0].to_bits() == y[0].to_bits() && x[1].to_bits() == y[1].to_bits()));
    let energy: f32 = a.iter().map(|f| f[0] * f[0] + f[1] * f[1]).sum();
    assert!(energy > 1.0, "it is a show: {energy}");
    // A different seed is a different performance (grain timing, noise).
    let c = render_offline(&EngineConfig { seed: 99, ..cfg }, &timeline(), 1.5).unwrap();
    assert!(a.iter().zip(&c).any(|(x, y)| x != y));
}

#[test]
fn timeline_events_land_at_their_time() {
    // Only the input-free gain matters here: a drone alone, then master.gain → 0 at 0.5 s.
    let cfg = EngineConfig {
        master: tutti_audio::MasterConfig::bypass(),
        initial: vec![
            ("granular.amp".into(), 0.0),
            ("rhythm.amp".into(), 0.0),
            ("drone.amp".into(), 1.0),
        ],
        ..EngineConfig::default()
    };
    let out = render_offline(&cfg, &[(0.5, vec![("master.gain".into(), 0.0)])], 1.0).unwrap();
    let ramp = ids::MASTER_GAIN.spec().ramp_samples(48_000) as usize;
    let before = out[20_000..24_000]
        .iter()
        .fold(0.0f32, |m, f| m.max(f[0].abs()));
    let after = out[24_000 + ramp + 256..]
        .iter()
        .fold(0.0f32, |m, f| m.max(f[0].abs()));
    assert!(before > 0.05, "{before}");
    assert_eq!(after, 0.0);
    // Not earlier than the event's block.
    let just_before = out[23_000..24_000]
        .iter()
        .fold(0.0f32, |m, f| m.max(f[0].abs()));
    assert!(just_before > 0.05, "{just_before}");
}

#[test]
fn bad_timelines_are_refused_with_the_entry() {
    let cfg = EngineConfig::default();
    let e = render_offline(&cfg, &[(1.0, vec![]), (0.5, vec![])], 2.0).unwrap_err();
    assert!(
        matches!(e, AudioError::InvalidTimeline { index: 1, .. }),
        "{e}"
    );
    let e = render_offline(&cfg, &[(0.0, vec![("drone.volume".into(), 1.0)])], 1.0).unwrap_err();
    assert!(
        e.to_string().contains("drone.volume") && e.to_string().contains("entry 0"),
        "{e}"
    );
    let e = render_offline(&cfg, &[(f64::NAN, vec![])], 1.0).unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
    assert!(render_offline(&cfg, &[], -1.0).is_err());
}

#[test]
fn the_demo_piece_maps_onto_the_engine() {
    let spec = PieceSpec::demo();
    let pc = PieceControls::new(&spec).unwrap();
    assert_eq!(
        pc.len(),
        spec.params.iter().map(|p| p.map.len()).sum::<usize>()
    );
    // intensity 1.0, brightness 0, density .., pitch +12 st, space, tempo, width, section storm
    let mut values: Vec<f64> = spec
        .params
        .iter()
        .map(|p| p.default.unwrap_or(0.0))
        .collect();
    let idx = |n: &str| spec.param_index(n).unwrap();
    values[idx("intensity")] = 1.0;
    values[idx("brightness")] = 0.0;
    values[idx("pitch")] = 12.0;
    values[idx("section")] = 2.0;
    let mut out = Vec::new();
    pc.updates(&values, &mut out);
    let get = |id| out.iter().find(|(i, _)| *i == id).map(|(_, v)| *v).unwrap();
    assert!((get(ids::DRONE_AMP) - 0.8).abs() < 1e-6);
    assert!((get(ids::GRANULAR_AMP) - 0.5).abs() < 1e-6);
    assert!((get(ids::RHYTHM_AMP) - 0.6).abs() < 1e-6);
    assert!((get(ids::DRONE_CUTOFF) - 200.0).abs() < 1e-3);
    assert!((get(ids::DRONE_FREQ) - 220.0).abs() < 1e-3);
    assert!((get(ids::GRANULAR_PITCH) - 2.0).abs() < 1e-6);
    assert_eq!(get(ids::RHYTHM_PATTERN), 2.0);
    assert!((get(ids::RHYTHM_TEMPO) - 100.0).abs() < 1e-3);

    // The whole path: a little show of parameter snapshots, rendered.
    let show = vec![
        (0.0, values.clone()),
        (0.5, {
            let mut v = values.clone();
            v[idx("section")] = 0.0;
            v
        }),
    ];
    let audio = render_piece_offline(&spec, &EngineConfig::default(), &show, 1.0).unwrap();
    assert_eq!(audio.len(), 48_000);
    assert!(audio.iter().all(|f| f[0].is_finite() && f[0].abs() <= 1.0));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.wav");
    write_wav(&path, &audio, 48_000).unwrap();
    let back: Vec<f32> = hound::WavReader::open(&path)
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(back.len(), 96_000);
    assert_eq!(back[1001].to_bits(), audio[500][1].to_bits());

    let e = render_piece_offline(&spec, &EngineConfig::default(), &[(0.0, vec![1.0])], 1.0)
        .unwrap_err();
    assert!(e.to_string().contains("parameters"), "{e}");
}

#[test]
fn mappings_to_missing_controls_are_listed() {
    let mut spec = PieceSpec::demo();
    spec.params[0].map.push(tutti_spec::Mapping {
        target: "lights.hue".into(),
        min: Some(0.0),
        max: Some(1.0),
        curve: tutti_spec::Curve::Linear,
        steps: None,
    });
    spec.params[2].map[0].target = "granular.size".into();
    let err = PieceControls::new(&spec).unwrap_err().to_string();
    assert!(
        err.contains("lights.hue") && err.contains("granular.size"),
        "{err}"
    );
    assert!(
        err.contains("params[0].map[3]") && err.contains("params[2].map[0]"),
        "{err}"
    );
    assert!(err.contains("drone.amp"), "lists the valid names: {err}");
    let (pc, skipped) = PieceControls::new_lenient(&spec);
    assert_eq!(skipped.len(), 2);
    assert_eq!(
        pc.len(),
        spec.params.iter().map(|p| p.map.len()).sum::<usize>() - 2
    );
}
