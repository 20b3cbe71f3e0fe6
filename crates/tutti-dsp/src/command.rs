//! What `tutti dsp` does: run a chain file over a WAV file or a raw stereo f32
//! little-endian interleaved stream (`-` for stdin/stdout), so Tutti's engine can sit in a
//! shell pipe and be compared with other engines.
//!
//! Must never: guess a sample rate (a WAV at another rate than the chain's is refused).

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{process_buffers, process_raw_stream, read_wav, write_wav, Chain, DspError, Limits};

/// Where audio comes from or goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Raw stereo f32 LE interleaved on stdin or stdout.
    Stdio,
    /// A WAV file.
    Wav(PathBuf),
}

impl Endpoint {
    /// `-` is standard input/output; anything else a WAV file.
    pub fn parse(s: &str) -> Endpoint {
        if s == "-" {
            Endpoint::Stdio
        } else {
            Endpoint::Wav(PathBuf::from(s))
        }
    }
}

/// Run `chain` over `input` into `output`; returns the frames written.
pub fn run(chain: &Path, input: &Endpoint, output: &Endpoint) -> Result<u64, DspError> {
    let mut chain = Chain::from_file(chain, &Limits::default())?;
    let block = chain.max_block();
    match input {
        Endpoint::Stdio => {
            let stdin = std::io::stdin().lock();
            match output {
                Endpoint::Stdio => {
                    let mut out = BufWriter::new(std::io::stdout().lock());
                    let n = process_raw_stream(&mut chain, BufReader::new(stdin), &mut out, block)?;
                    out.flush().map_err(|e| io_err("stdout", e))?;
                    Ok(n)
                }
                Endpoint::Wav(path) => {
                    let mut raw = Vec::new();
                    let n = process_raw_stream(&mut chain, BufReader::new(stdin), &mut raw, block)?;
                    let (l, r) = deinterleave(&raw);
                    write_wav(path, &[l, r], chain.sample_rate())?;
                    Ok(n)
                }
            }
        }
        Endpoint::Wav(path) => {
            let (channels, rate) = read_wav(path)?;
            if rate != chain.sample_rate() {
                return Err(DspError::Wav {
                    path: path.clone(),
                    reason: format!(
                        "sample rate {rate} Hz differs from the chain's {} Hz (resample it, e.g. sox in.wav -r {} out.wav)",
                        chain.sample_rate(),
                        chain.sample_rate()
                    ),
                });
            }
            let (left, right) = match channels.len() {
                1 => (channels[0].clone(), channels[0].clone()),
                2 => (channels[0].clone(), channels[1].clone()),
                n => {
                    return Err(DspError::Wav {
                        path: path.clone(),
                        reason: format!("{n} channels; mono or stereo expected"),
                    })
                }
            };
            let (l, r) = process_buffers(&mut chain, &left, &right, block);
            let frames = l.len() as u64;
            match output {
                Endpoint::Wav(out) => write_wav(out, &[l, r], rate)?,
                Endpoint::Stdio => {
                    let mut out = BufWriter::new(std::io::stdout().lock());
                    for (a, b) in l.iter().zip(&r) {
                        out.write_all(&a.to_le_bytes())
                            .and_then(|()| out.write_all(&b.to_le_bytes()))
                            .map_err(|e| io_err("stdout", e))?;
                    }
                    out.flush().map_err(|e| io_err("stdout", e))?;
                }
            }
            Ok(frames)
        }
    }
}

fn deinterleave(raw: &[u8]) -> (Vec<f32>, Vec<f32>) {
    raw.chunks_exact(8)
        .map(|f| {
            (
                f32::from_le_bytes([f[0], f[1], f[2], f[3]]),
                f32::from_le_bytes([f[4], f[5], f[6], f[7]]),
            )
        })
        .unzip()
}

fn io_err(what: &str, e: std::io::Error) -> DspError {
    DspError::Wav {
        path: PathBuf::from(what),
        reason: e.to_string(),
    }
}
