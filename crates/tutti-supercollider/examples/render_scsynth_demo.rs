//! Renders a made-up 60 s performance of the demo piece with scsynth in non-real-time mode,
//! to listen to the shipped SynthDefs and the mappings without running a show:
//!
//! `cargo run -p tutti-supercollider --example render_scsynth_demo -- demo.wav [path/to/scsynth]`
//!
//! The crowd wanders: intensity and brightness swell, pitch steps around, the section vote
//! goes calm → pulse → storm → calm. The score is written next to the WAV (`.osc`).

use std::path::PathBuf;

use tutti_spec::PieceSpec;
use tutti_supercollider::{default_values, render_show};

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| String::from("demo.wav")));
    let scsynth = PathBuf::from(args.next().unwrap_or_else(|| String::from("scsynth")));
    let spec = PieceSpec::demo();
    let idx = |name: &str| spec.param_index(name).expect("demo parameter");
    let duration = 60.0;
    let snapshots: Vec<(f64, Vec<f64>)> = (0..=60)
        .map(|s| {
            let t = f64::from(s);
            let x = t / duration;
            let mut v = default_values(&spec);
            v[idx("intensity")] = 0.15 + 0.75 * (std::f64::consts::PI * x).sin().powi(2);
            v[idx("brightness")] = 0.2 + 0.6 * x;
            v[idx("density")] = 0.2 + 0.7 * (2.0 * std::f64::consts::PI * x).sin().abs();
            v[idx("pitch")] = [0.0, 0.0, 5.0, 7.0, 3.0, 0.0][(s / 10) as usize % 6];
            v[idx("space")] = 0.2 + 0.5 * x;
            v[idx("tempo")] = 90.0 + 50.0 * x;
            v[idx("width")] = 0.3 + 0.6 * x;
            v[idx("section")] = match s {
                0..=14 => 0.0,
                15..=29 => 1.0,
                30..=49 => 2.0,
                _ => 0.0,
            };
            (t, v)
        })
        .collect();
    match render_show(&spec, &snapshots, duration, &out, 48_000, &scsynth) {
        Ok(()) => println!("wrote {}", out.display()),
        Err(e) => {
            eprintln!("render failed: {e}");
            std::process::exit(1);
        }
    }
}
