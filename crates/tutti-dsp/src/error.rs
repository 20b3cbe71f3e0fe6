//! The crate's single error type.
//!
//! Every message names the offending thing: the stage index and field of a chain, the path of an
//! impulse response or audio file, the byte count of a truncated raw stream. Variants used on the
//! real-time path ([`DspError::Param`], [`DspError::BlockTooLong`]) carry only `Copy` data so that
//! constructing them never allocates.

use std::path::PathBuf;

/// Everything that can go wrong in `tutti-dsp`.
#[derive(Debug, thiserror::Error)]
pub enum DspError {
    /// A chain file could not be read.
    #[error("chain file {path}: {source}")]
    ChainIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A chain file is not valid TOML for a chain (unknown key, wrong type, missing field …).
    #[error("chain file {origin}: {message}")]
    ChainParse {
        /// File path or `<string>`.
        origin: String,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A top-level chain field is out of range.
    #[error("chain: {field} = {value}: {reason}")]
    InvalidChain {
        /// Field name, e.g. `sample_rate`.
        field: &'static str,
        /// Offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A stage field is out of range.
    #[error("stage {stage} ({kind}): {field} = {value}: {reason}")]
    InvalidStage {
        /// Index of the stage in the chain (0-based).
        stage: usize,
        /// Stage kind, e.g. `eq`.
        kind: &'static str,
        /// Field path, e.g. `bands[3].freq`.
        field: String,
        /// Offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// An impulse response is missing, unreadable or not a usable WAV file.
    #[error("impulse response {path}: {reason}")]
    ImpulseResponse {
        /// The IR file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An impulse response has a sample rate other than the chain's.
    #[error(
        "impulse response {path}: sample rate {found} Hz does not match the chain's {expected} Hz \
         (resample the file, e.g. `sox in.wav -r {expected} out.wav`)"
    )]
    IrSampleRate {
        /// The IR file.
        path: PathBuf,
        /// Its sample rate.
        found: u32,
        /// The chain's sample rate.
        expected: u32,
    },
    /// An impulse response is longer than [`crate::Limits::max_ir_frames`].
    #[error("impulse response {path}: {frames} frames exceeds the limit of {limit} frames")]
    IrTooLong {
        /// The IR file (or `<memory>`).
        path: PathBuf,
        /// Its length.
        frames: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A WAV file could not be read or written (missing, corrupt, unsupported format).
    #[error("WAV file {path}: {reason}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A raw f32 stream ended in the middle of a frame.
    #[error(
        "raw f32 stream: {bytes} bytes is not a whole number of {frame_bytes}-byte frames \
         ({channels} channels x 4 bytes); {remainder} trailing bytes"
    )]
    PartialFrame {
        /// Total bytes read.
        bytes: u64,
        /// Bytes per frame.
        frame_bytes: usize,
        /// Channels per frame.
        channels: usize,
        /// `bytes % frame_bytes`.
        remainder: usize,
    },
    /// Plain I/O error on a stream.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A control change was rejected (allocation-free: only static strings).
    #[error("stage {stage}: parameter {param}: {reason}")]
    Param {
        /// Stage index.
        stage: usize,
        /// Parameter name.
        param: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
}
