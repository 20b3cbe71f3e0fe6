//! Audio I/O helpers: WAV files (via `hound`) and raw little-endian f32 interleaved streams
//! (`tutti dsp --in - --out -`).
//!
//! File I/O happens off the audio thread; nothing here is called from `process()`.
//! [`write_wav`] writes 32-bit float WAV, so `read_wav(write_wav(x)) == x` bit for bit.

use std::io::{Read, Write};
use std::path::Path;

use crate::{DspError, Processor};

/// Decodes all samples of an open WAV reader into planar f32 (integers scaled to ±1).
pub(crate) fn decode<R: Read>(reader: hound::WavReader<R>) -> Result<(Vec<Vec<f32>>, u32), String> {
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 {
        return Err("0 channels".into());
    }
    if spec.sample_rate == 0 {
        return Err("sample rate 0".into());
    }
    let frames = reader.duration() as usize;
    let mut out = vec![Vec::with_capacity(frames); channels];
    let mut push = |i: usize, v: f32| out[i % channels].push(v);
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            for (i, s) in reader.into_samples::<f32>().enumerate() {
                push(i, s.map_err(|e| format!("corrupt sample data: {e}"))?);
            }
        }
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            for (i, s) in reader.into_samples::<i32>().enumerate() {
                let v = s.map_err(|e| format!("corrupt sample data: {e}"))?;
                push(i, (v as f64 * scale) as f32);
            }
        }
        (fmt, bits) => {
            return Err(format!(
                "unsupported sample format {fmt:?} with {bits} bits"
            ))
        }
    }
    let n = out[0].len();
    if out.iter().any(|c| c.len() != n) {
        return Err("truncated: last frame incomplete".into());
    }
    Ok((out, spec.sample_rate))
}

/// Reads a WAV file into planar channels and its sample rate.
pub fn read_wav(path: &Path) -> Result<(Vec<Vec<f32>>, u32), DspError> {
    let err = |reason: String| DspError::Wav {
        path: path.to_path_buf(),
        reason,
    };
    let reader = hound::WavReader::open(path).map_err(|e| err(e.to_string()))?;
    decode(reader).map_err(err)
}

/// Writes planar channels (equal lengths) as a 32-bit float WAV file.
pub fn write_wav(path: &Path, channels: &[Vec<f32>], sample_rate: u32) -> Result<(), DspError> {
    let err = |reason: String| DspError::Wav {
        path: path.to_path_buf(),
        reason,
    };
    if channels.is_empty() || channels.len() > u16::MAX as usize {
        return Err(err(format!("cannot write {} channels", channels.len())));
    }
    let n = channels[0].len();
    if channels.iter().any(|c| c.len() != n) {
        return Err(err("channels have different lengths".into()));
    }
    // (hound divides by the rate: 0 would panic.)
    if sample_rate == 0 {
        return Err(err("cannot write a sample rate of 0".into()));
    }
    // The header's byte rate (rate × channels × 4 bytes) is a 32-bit field: hound would
    // overflow computing it (a panic, or a wrong header).
    if u64::from(sample_rate) * channels.len() as u64 * 4 > u64::from(u32::MAX) {
        return Err(err(format!(
            "{} channels at {sample_rate} Hz need a byte rate past a WAV header's 32 bits",
            channels.len()
        )));
    }
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| err(e.to_string()))?;
    for i in 0..n {
        for c in channels {
            w.write_sample(c[i]).map_err(|e| err(e.to_string()))?;
        }
    }
    w.finalize().map_err(|e| err(e.to_string()))
}

/// Reads a whole raw f32 LE interleaved stream of `channels` channels into planar channels.
/// A length that is not a whole number of frames is an error naming the byte count.
pub fn read_raw_f32<R: Read>(mut r: R, channels: usize) -> Result<Vec<Vec<f32>>, DspError> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    let frame = 4 * channels.max(1);
    if bytes.len() % frame != 0 {
        return Err(DspError::PartialFrame {
            bytes: bytes.len() as u64,
            frame_bytes: frame,
            channels,
            remainder: bytes.len() % frame,
        });
    }
    let mut out = vec![Vec::with_capacity(bytes.len() / frame); channels];
    for (i, b) in bytes.chunks_exact(4).enumerate() {
        out[i % channels].push(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
    Ok(out)
}

/// Writes planar channels (equal lengths) as raw f32 LE interleaved.
pub fn write_raw_f32<W: Write>(mut w: W, channels: &[&[f32]]) -> Result<(), DspError> {
    let n = channels.iter().map(|c| c.len()).min().unwrap_or(0);
    let mut buf = Vec::with_capacity(4096 * channels.len() * 4);
    for i in 0..n {
        for c in channels {
            buf.extend_from_slice(&c[i].to_le_bytes());
        }
        if buf.len() >= 4096 * 4 * channels.len() {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Streams raw stereo f32 LE interleaved audio from `input` through `proc` to `output`, block by
/// block (`block` frames), without reading the whole input first. The processor's latency is
/// compensated (the first `latency()` output frames are dropped and the input is padded with as
/// many zero frames at the end), so output frame `i` corresponds to input frame `i`. Returns the
/// number of frames written. A stream whose length is not a whole number of frames gives
/// [`DspError::PartialFrame`] (after writing the whole frames before it).
pub fn process_raw_stream<R: Read, W: Write, P: Processor + ?Sized>(
    proc: &mut P,
    mut input: R,
    mut output: W,
    block: usize,
) -> Result<u64, DspError> {
    let block = block.max(1);
    let frame = 8usize;
    let mut inbuf = vec![0u8; block * frame];
    let mut have = 0usize; // bytes in inbuf
    let mut total: u64 = 0;
    let mut left = vec![0.0f32; block];
    let mut right = vec![0.0f32; block];
    let mut out = Vec::with_capacity(block * frame);
    let mut skip = proc.latency();
    let mut written: u64 = 0;
    let mut frames_in: u64 = 0;
    let mut eof = false;
    let emit = |left: &[f32],
                right: &[f32],
                skip: &mut usize,
                out: &mut Vec<u8>,
                output: &mut W|
     -> Result<u64, DspError> {
        out.clear();
        let s = (*skip).min(left.len());
        *skip -= s;
        for i in s..left.len() {
            out.extend_from_slice(&left[i].to_le_bytes());
            out.extend_from_slice(&right[i].to_le_bytes());
        }
        output.write_all(out)?;
        Ok((left.len() - s) as u64)
    };
    while !eof {
        while have < inbuf.len() {
            let n = input.read(&mut inbuf[have..])?;
            if n == 0 {
                eof = true;
                break;
            }
            have += n;
            total += n as u64;
        }
        let frames = have / frame;
        if frames == 0 {
            break;
        }
        for i in 0..frames {
            let b = &inbuf[i * frame..];
            left[i] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            right[i] = f32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        }
        proc.process(&mut left[..frames], &mut right[..frames]);
        written += emit(
            &left[..frames],
            &right[..frames],
            &mut skip,
            &mut out,
            &mut output,
        )?;
        frames_in += frames as u64;
        inbuf.copy_within(frames * frame..have, 0);
        have -= frames * frame;
    }
    if have != 0 {
        output.flush()?;
        return Err(DspError::PartialFrame {
            bytes: total,
            frame_bytes: frame,
            channels: 2,
            remainder: (total % frame as u64) as usize,
        });
    }
    // flush the latency tail
    while written < frames_in {
        let n = ((frames_in - written) as usize + skip).min(block);
        left[..n].fill(0.0);
        right[..n].fill(0.0);
        proc.process(&mut left[..n], &mut right[..n]);
        let w = emit(&left[..n], &right[..n], &mut skip, &mut out, &mut output)?;
        let keep = w.min(frames_in - written);
        // emit already wrote `w` frames; never more than needed because n is bounded
        written += keep;
    }
    output.flush()?;
    Ok(written)
}

/// Processes whole planar stereo buffers offline in blocks of `block`, compensating latency as
/// [`process_raw_stream`] does. Returns output of the same length as the input.
pub fn process_buffers<P: Processor + ?Sized>(
    proc: &mut P,
    left: &[f32],
    right: &[f32],
    block: usize,
) -> (Vec<f32>, Vec<f32>) {
    let n = left.len().min(right.len());
    let lat = proc.latency();
    let total = n + lat;
    let mut l = left[..n].to_vec();
    let mut r = right[..n].to_vec();
    l.resize(total, 0.0);
    r.resize(total, 0.0);
    for (lc, rc) in l.chunks_mut(block.max(1)).zip(r.chunks_mut(block.max(1))) {
        proc.process(lc, rc);
    }
    (l[lat..].to_vec(), r[lat..].to_vec())
}
