//! WAV files (`tutti_dsp::read_wav`, the `tutti dsp` command's input, and
//! `tutti_dsp::convolution::load_ir`, a convolution stage's impulse response): no file
//! panics or makes them allocate more than its samples need; what they accept has
//! channels of equal length, and written back as float WAV it reads back bit for bit.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch file per process (memory-backed where there is /dev/shm).
fn scratch() -> &'static (PathBuf, PathBuf) {
    static S: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    S.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let dir = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let id = std::process::id();
        (
            dir.join(format!("tutti-fuzz-wav-{id}.wav")),
            dir.join(format!("tutti-fuzz-wav-{id}-out.wav")),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (input, output) = scratch();
    std::fs::write(input, data).expect("write the scratch file");
    if let Ok((channels, rate)) = tutti_dsp::read_wav(input) {
        let n = channels[0].len();
        assert!(channels.iter().all(|c| c.len() == n), "ragged channels");
        assert!(n * channels.len() <= data.len(), "more samples than bytes");
        if tutti_dsp::write_wav(output, &channels, rate).is_ok() {
            let (back, back_rate) = tutti_dsp::read_wav(output).expect("our own WAV reads");
            assert_eq!(back_rate, rate);
            let bits = |c: &Vec<Vec<f32>>| -> Vec<Vec<u32>> {
                c.iter()
                    .map(|x| x.iter().map(|v| v.to_bits()).collect())
                    .collect()
            };
            assert_eq!(bits(&back), bits(&channels));
        }
    }
    let rate = match data.get(24..28) {
        Some(b) => u32::from_le_bytes(b.try_into().expect("4 bytes")),
        None => 48_000,
    };
    if let Ok(ir) = tutti_dsp::convolution::load_ir(input, rate, 1 << 21) {
        assert!(matches!(ir.len(), 1 | 2), "{} channels", ir.len());
        assert!(ir.iter().all(|c| c.len() == ir[0].len() && !c.is_empty()));
    }
});
