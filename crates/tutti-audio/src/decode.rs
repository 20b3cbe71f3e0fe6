//! Decoding audio files (WAV, FLAC, MP3, Ogg Vorbis) with `symphonia` into memory, as a
//! planar stereo [`Clip`] at the engine's sample rate, ready for the player or the granular
//! voice.
//!
//! Mono files are duplicated to both channels; files with more than two channels keep their
//! first two (front left/right). Files at another rate are resampled with cubic (Hermite)
//! interpolation — fine for sample playback, not a mastering-grade converter.
//!
//! Errors name the file: [`AudioError::Io`] when it cannot be read,
//! [`AudioError::Unsupported`] when it is not a format we decode, [`AudioError::Corrupt`]
//! when its data is damaged, [`AudioError::TooLong`] past [`DecodeOptions::max_seconds`].
//!
//! Must never: run on the audio thread (it allocates and does file I/O).

use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::AudioError;

/// Decoded audio, planar stereo at `sample_rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// Left channel.
    pub left: Vec<f32>,
    /// Right channel (a copy of the left for mono files).
    pub right: Vec<f32>,
    /// Sample rate of `left`/`right`.
    pub sample_rate: u32,
    /// Sample rate of the file before resampling.
    pub source_rate: u32,
    /// Channels in the file.
    pub source_channels: usize,
}

impl Clip {
    /// Frames per channel.
    pub fn frames(&self) -> usize {
        self.left.len()
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / self.sample_rate as f64
    }

    /// Mono mix (for the granular voice's source table).
    pub fn mono(&self) -> Vec<f32> {
        self.left
            .iter()
            .zip(&self.right)
            .map(|(l, r)| 0.5 * (l + r))
            .collect()
    }
}

/// What to decode into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    /// Sample rate of the resulting clip (the engine's).
    pub target_rate: u32,
    /// Longest accepted file, in seconds.
    pub max_seconds: f64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            target_rate: 48_000,
            max_seconds: 600.0,
        }
    }
}

/// Decodes a file. Off the audio thread only.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<Clip, AudioError> {
    let file = std::fs::File::open(path).map_err(|source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    decode_source(Box::new(file), path, ext.as_deref(), opts)
}

/// Decodes in-memory bytes; `name` is used in error messages (and its extension as a hint).
pub fn decode_bytes(name: &str, bytes: Vec<u8>, opts: &DecodeOptions) -> Result<Clip, AudioError> {
    let path = PathBuf::from(name);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    decode_source(
        Box::new(std::io::Cursor::new(bytes)),
        &path,
        ext.as_deref(),
        opts,
    )
}

const KNOWN_EXTENSIONS: &[&str] = &["wav", "wave", "flac", "mp3", "ogg", "oga"];

/// [`decode_inner`], with a panic inside the decoders (symphonia has had them on malformed
/// files, e.g. a shift overflow on a WAVE_FORMAT_EXTENSIBLE header with 213 channels, found by
/// fuzzing) turned into [`AudioError::Corrupt`]: a hostile file must not take down its caller.
fn decode_source(
    source: Box<dyn MediaSource>,
    path: &Path,
    ext: Option<&str>,
    opts: &DecodeOptions,
) -> Result<Clip, AudioError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_inner(source, path, ext, opts)
    }))
    .unwrap_or_else(|_| {
        Err(AudioError::Corrupt {
            path: path.to_path_buf(),
            reason: "the decoder failed on malformed data".into(),
        })
    })
}

fn decode_inner(
    source: Box<dyn MediaSource>,
    path: &Path,
    ext: Option<&str>,
    opts: &DecodeOptions,
) -> Result<Clip, AudioError> {
    if !(8_000..=384_000).contains(&opts.target_rate) {
        return Err(AudioError::InvalidConfig {
            field: "target_rate",
            value: opts.target_rate.to_string(),
            reason: "must be within 8000 ..= 384000 Hz".into(),
        });
    }
    let corrupt = |reason: String| AudioError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let unsupported = |reason: String| AudioError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(e) = ext {
        hint.with_extension(e);
    }
    let claims_known = ext.is_some_and(|e| KNOWN_EXTENSIONS.contains(&e));
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| {
            let msg = format!("not a WAV, FLAC, MP3 or Ogg Vorbis stream ({e})");
            if claims_known {
                corrupt(msg)
            } else {
                unsupported(msg)
            }
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| unsupported("no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| unsupported("the audio track has no codec parameters".into()))?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| unsupported(format!("no decoder for this codec ({e})")))?;

    let mut interleaved: Vec<f32> = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count());
    let mut packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(SymError::IoError(e)) => {
                return Err(AudioError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })
            }
            Err(e) => return Err(corrupt(format!("after {packets} packets: {e}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        packets += 1;
        let buf = decoder
            .decode(&packet)
            .map_err(|e| corrupt(format!("packet {packets}: {e}")))?;
        if buf.frames() == 0 {
            continue;
        }
        rate = buf.spec().rate();
        channels = buf.spec().channels().count();
        buf.copy_to_vec_interleaved(&mut scratch);
        interleaved.extend_from_slice(&scratch);
        if channels > 0 && rate > 0 {
            let secs = (interleaved.len() / channels) as f64 / rate as f64;
            if secs > opts.max_seconds {
                return Err(AudioError::TooLong {
                    path: path.to_path_buf(),
                    seconds: secs,
                    limit_seconds: opts.max_seconds,
                });
            }
        }
    }
    if channels == 0 || rate == 0 || interleaved.is_empty() {
        return Err(corrupt(format!(
            "no audio frames could be decoded ({packets} packets read)"
        )));
    }
    if let Some(i) = interleaved.iter().position(|s| !s.is_finite()) {
        return Err(corrupt(format!("sample {i} is not a finite number")));
    }
    let frames = interleaved.len() / channels;
    let mut left = Vec::with_capacity(frames);
    let mut right = Vec::with_capacity(frames);
    for f in interleaved.chunks_exact(channels) {
        left.push(f[0]);
        right.push(if channels > 1 { f[1] } else { f[0] });
    }
    if rate != opts.target_rate {
        left = resample(&left, rate, opts.target_rate);
        right = resample(&right, rate, opts.target_rate);
    }
    Ok(Clip {
        left,
        right,
        sample_rate: opts.target_rate,
        source_rate: rate,
        source_channels: channels,
    })
}

/// Cubic Hermite resampling from `from` Hz to `to` Hz.
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let n_out = ((x.len() as u64 * to as u64) / from as u64).max(1) as usize;
    let step = from as f64 / to as f64;
    let at = |i: isize| -> f32 { x[i.clamp(0, x.len() as isize - 1) as usize] };
    (0..n_out)
        .map(|k| {
            let pos = k as f64 * step;
            let i = pos.floor() as isize;
            let t = (pos - i as f64) as f32;
            let (y0, y1, y2, y3) = (at(i - 1), at(i), at(i + 1), at(i + 2));
            let c0 = y1;
            let c1 = 0.5 * (y2 - y0);
            let c2 = y0 - 2.5 * y1 + 2.0 * y2 - 0.5 * y3;
            let c3 = 0.5 * (y3 - y0) + 1.5 * (y1 - y2);
            ((c3 * t + c2) * t + c1) * t + c0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_a_sine() {
        let x: Vec<f32> = (0..44_100)
            .map(|i| (std::f32::consts::TAU * 440.0 * i as f32 / 44_100.0).sin())
            .collect();
        let y = resample(&x, 44_100, 48_000);
        assert_eq!(y.len(), 48_000);
        let max_err = y[10..47_990]
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let t = (k + 10) as f32 / 48_000.0;
                (v - (std::f32::consts::TAU * 440.0 * t).sin()).abs()
            })
            .fold(0.0f32, f32::max);
        assert!(max_err < 1e-3, "{max_err}");
    }

    #[test]
    fn garbage_bytes_are_refused_with_the_name() {
        let err = decode_bytes("junk.bin", vec![7u8; 4096], &DecodeOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, AudioError::Unsupported { .. }), "{msg}");
        assert!(msg.contains("junk.bin"), "{msg}");
    }
}
