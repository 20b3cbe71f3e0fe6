//! Renders 20 s of the demo piece moving through its three sections to a WAV file:
//! `cargo run -p tutti-audio --release --example render_demo -- demo.wav`

use tutti_audio::{render_piece_offline, write_wav, EngineConfig};
use tutti_spec::PieceSpec;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "demo.wav".into());
    let spec = PieceSpec::demo();
    let idx = |n: &str| spec.param_index(n).expect("demo parameter");
    let defaults: Vec<f64> = spec
        .params
        .iter()
        .map(|p| p.default.unwrap_or(0.0))
        .collect();
    // A crowd that slowly gets excited: every 50 ms, parameters drift; sections at 7 s / 14 s.
    let mut timeline = Vec::new();
    for k in 0..400 {
        let t = k as f64 * 0.05;
        let x = t / 20.0;
        let mut v = defaults.clone();
        v[idx("intensity")] = 0.2 + 0.7 * x;
        v[idx("brightness")] = 0.3 + 0.6 * (0.5 + 0.5 * (t * 0.7).sin()) * x.max(0.3);
        v[idx("density")] = 0.2 + 0.7 * x;
        v[idx("pitch")] = (5.0 * (t * 0.2).sin()).round();
        v[idx("space")] = 0.6 - 0.3 * x;
        v[idx("tempo")] = 90.0 + 60.0 * x;
        v[idx("width")] = 0.3 + 0.6 * x;
        v[idx("section")] = if t < 7.0 {
            0.0
        } else if t < 14.0 {
            1.0
        } else {
            2.0
        };
        timeline.push((t, v));
    }
    let audio = render_piece_offline(&spec, &EngineConfig::default(), &timeline, 20.0)?;
    write_wav(std::path::Path::new(&path), &audio, 48_000)?;
    println!("wrote {path}: {} frames", audio.len());
    Ok(())
}
