//! DSP chain files (`tutti_dsp::ChainConfig` from TOML, then `Chain::build` with the
//! default limits): no text panics; a chain that parses writes back to TOML that reads
//! back the same; a chain that builds processes a block of audio without panicking.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tutti_dsp::{Chain, ChainConfig, Limits, Processor};

/// A directory holding `ir.wav`, a short stereo impulse response at 48 kHz, for the
/// convolution stages of the seeds.
fn ir_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("tutti-fuzz-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the IR directory");
        let ir: Vec<f32> = (0..64).map(|i| 0.9f32.powi(i)).collect();
        tutti_dsp::write_wav(&dir.join("ir.wav"), &[ir.clone(), ir], 48_000).expect("write the IR");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = ChainConfig::from_toml_str(text, "fuzz") else {
        return;
    };
    let again = cfg.to_toml_string();
    let back = ChainConfig::from_toml_str(&again, "again")
        .unwrap_or_else(|e| panic!("{again} does not read back: {e}"));
    // (Compared as text: a chain may hold a NaN until it is built, and NaN != NaN.)
    assert_eq!(back.to_toml_string(), again, "TOML round trip of {text:?}");
    let Ok(mut chain) = Chain::build(&cfg, ir_dir(), &Limits::default()) else {
        return;
    };
    let n = chain.max_block().min(256);
    let mut left: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0).collect();
    let mut right = left.clone();
    chain.process(&mut left, &mut right);
    chain.reset();
});
