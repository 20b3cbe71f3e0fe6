//! Audio files a piece plays (`tutti_audio::decode`: WAV, FLAC, MP3, Ogg Vorbis through
//! symphonia, then resampling to the engine's rate): no input panics; a clip it accepts
//! has two equal-length channels of finite samples at the requested rate.
//!
//! `decode_bytes` turns a panic inside symphonia into an error (a malformed file must not
//! take its caller down), so this target puts back the default panic hook, which libFuzzer's
//! would otherwise abort on before that `catch_unwind` is reached; a panic that escapes
//! `decode_bytes` still fails the run.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use tutti_audio::decode::{decode_bytes, DecodeOptions};

const NAMES: [&str; 6] = ["a.wav", "a.flac", "a.mp3", "a.ogg", "a.bin", "a"];
const RATES: [u32; 4] = [48_000, 44_100, 8_000, 96_000];

static HOOK: Once = Once::new();

fuzz_target!(|input: &[u8]| {
    HOOK.call_once(|| drop(std::panic::take_hook()));
    let Some((&how, data)) = input.split_first() else {
        return;
    };
    let name = NAMES[usize::from(how) % NAMES.len()];
    let opts = DecodeOptions {
        target_rate: RATES[usize::from(how >> 4) % RATES.len()],
        max_seconds: 30.0,
    };
    if let Ok(clip) = decode_bytes(name, data.to_vec(), &opts) {
        assert_eq!(clip.left.len(), clip.right.len());
        assert_eq!(clip.sample_rate, opts.target_rate);
        assert!(clip.left.iter().chain(&clip.right).all(|s| s.is_finite()));
        assert!(
            clip.seconds() <= opts.max_seconds + 1.0,
            "{} s",
            clip.seconds()
        );
    }
});
