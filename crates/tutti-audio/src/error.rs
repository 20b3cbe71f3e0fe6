//! The crate's one error type. Every message names the offending file, control, field or
//! value so that an operator can fix it without reading code.
//!
//! Errors are produced off the audio thread only (building an engine, resolving names,
//! decoding files, preparing chains); the audio thread itself never fails and never
//! formats a message.

use std::path::PathBuf;

/// Everything that can go wrong in `tutti-audio`.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// An engine or sink setting is out of range.
    #[error("invalid engine config: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The field, e.g. `block_frames`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// A `voice.control` name the engine does not have.
    #[error("unknown control '{name}'; valid controls: {valid}")]
    UnknownControl {
        /// The name asked for.
        name: String,
        /// Comma-separated list of every valid control name.
        valid: String,
    },
    /// Piece mappings whose targets the engine lacks (all of them listed).
    #[error("piece '{piece}' maps to controls the embedded engine lacks: {targets}; valid controls: {valid}")]
    UnknownMappingTargets {
        /// The piece's slug.
        piece: String,
        /// `params[i].map[j] → target` for each unknown target.
        targets: String,
        /// Comma-separated list of every valid control name.
        valid: String,
    },
    /// A control value that is not a finite number.
    #[error("control '{control}': value {value} is not a finite number")]
    NonFiniteValue {
        /// The control's name.
        control: &'static str,
        /// The rejected value.
        value: f32,
    },
    /// A timeline entry of an offline render is wrong.
    #[error("render timeline entry {index}: {reason}")]
    InvalidTimeline {
        /// Index of the entry.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be opened or read.
    #[error("cannot read audio file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not in a format we can decode (or not audio at all).
    #[error("unsupported audio file {}: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A file is in a known format but its data is damaged.
    #[error("corrupt audio file {}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A file is longer than the configured limit.
    #[error("audio file {} is too long: {seconds:.1} s exceeds the limit of {limit_seconds:.1} s", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its duration (or the decoded part of it).
        seconds: f64,
        /// The limit.
        limit_seconds: f64,
    },
    /// A master-chain stage could not be built (bad chain file, missing IR, …).
    #[error("master chain: {0}")]
    Dsp(#[from] tutti_dsp::DspError),
    /// The engine's command queue is full (the audio thread is not running or is far behind).
    #[error("engine command queue is full ({what} not sent): is the audio thread running?")]
    QueueFull {
        /// The command that was not sent.
        what: &'static str,
    },
    /// The single stream tap or recorder is already in use.
    #[error("{what} is already in use (only one at a time)")]
    Busy {
        /// `stream tap` or `recorder`.
        what: &'static str,
    },
    /// Writing a WAV file failed.
    #[error("cannot write WAV file {}: {reason}", path.display())]
    WavWrite {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The sound card could not be opened.
    #[error("sound card: {0}")]
    Device(String),
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}
