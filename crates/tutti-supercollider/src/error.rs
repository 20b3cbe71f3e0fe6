//! The crate's one error type. Every variant names what is wrong: the server address, the
//! command that failed, the SynthDef, the voice and control, the file.
//!
//! Must never: carry a bare `io::Error` without saying what was being done.

use std::time::Duration;

/// Everything that can go wrong talking to scsynth, loading SynthDefs, validating a piece's
/// mappings or rendering a score.
#[derive(Debug, thiserror::Error)]
pub enum ScError {
    /// The configured server address is not `host:port` or does not resolve.
    #[error("invalid scsynth address '{addr}': {reason}")]
    Address {
        /// The address as configured.
        addr: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Nothing answers at the address (connection refused, or no reply to `/status`).
    #[error(
        "cannot reach scsynth at {addr}: {reason} (is scsynth running, e.g. `scsynth -u PORT`?)"
    )]
    Unreachable {
        /// The resolved address.
        addr: String,
        /// Connection refused, timed out, ...
        reason: String,
    },
    /// A command got no reply in time.
    #[error("scsynth at {addr} did not answer {command} within {} ms", timeout.as_millis())]
    Timeout {
        /// The server address.
        addr: String,
        /// The OSC command that was sent, e.g. `/g_queryTree`.
        command: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// scsynth answered a command with `/fail`.
    #[error("scsynth at {addr} failed {command}: {message}")]
    Failed {
        /// The server address.
        addr: String,
        /// The OSC command that failed.
        command: String,
        /// scsynth's message.
        message: String,
    },
    /// scsynth sent a reply we cannot read.
    #[error("unexpected reply to {command} from scsynth: {reason}")]
    BadReply {
        /// The command whose reply was malformed.
        command: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A SynthDef could not be loaded into scsynth (`/fail` to `/d_recv`, or too large).
    #[error("SynthDef '{name}' failed to load: {reason}")]
    SynthDefLoad {
        /// The SynthDef (or, for a file with several, all their names joined by `+`).
        name: String,
        /// scsynth's message or our own.
        reason: String,
    },
    /// A `.scsyndef` file is not a valid SynthDef file.
    #[error("SynthDef file {source_name}: {reason} (at byte {offset})")]
    SynthDefParse {
        /// The file name or label the bytes came from.
        source_name: String,
        /// Byte offset where parsing failed.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A mapping targets a voice with no SynthDef of that name.
    #[error("{field}: voice '{voice}' has no SynthDef named '{voice}' (available: {available})")]
    UnknownVoice {
        /// The mapping's field path, e.g. `params[0].map[1].target`.
        field: String,
        /// The voice name.
        voice: String,
        /// The SynthDefs that are available, comma separated.
        available: String,
    },
    /// A mapping targets a control the voice's SynthDef does not have.
    #[error("{field}: SynthDef '{voice}' has no control '{control}' (its controls: {available})")]
    MissingControl {
        /// The mapping's field path, e.g. `params[0].map[1].target`.
        field: String,
        /// The voice (SynthDef) name.
        voice: String,
        /// The missing control.
        control: String,
        /// The controls the SynthDef does have, comma separated.
        available: String,
    },
    /// A voice's node is not on the server after it was created.
    #[error("node {node} of voice '{voice}' is not on scsynth at {addr} after /s_new: {reason}")]
    NodeMissing {
        /// The server address.
        addr: String,
        /// The voice.
        voice: String,
        /// The node id.
        node: i32,
        /// scsynth's `/fail` message for `/s_new`, if it sent one.
        reason: String,
    },
    /// Input handed to the driver or the score writer does not fit the piece.
    #[error("{what}: {reason}")]
    Input {
        /// What was wrong, e.g. `snapshot 3`.
        what: String,
        /// Why.
        reason: String,
    },
    /// An OSC packet could not be encoded.
    #[error("cannot encode OSC packet {command}: {reason}")]
    Encode {
        /// The command being encoded.
        command: String,
        /// rosc's message.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `sending /status to 127.0.0.1:57110`.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The connection to scsynth was closed (TCP) or the client was shut down.
    #[error("connection to scsynth at {addr} is closed")]
    Closed {
        /// The server address.
        addr: String,
    },
    /// `scsynth -N` failed or produced no file.
    #[error("NRT render with {program} failed: {reason}")]
    Render {
        /// The scsynth binary.
        program: String,
        /// Exit status and the tail of its output.
        reason: String,
    },
}

impl ScError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ScError::Io {
            context: context.into(),
            source,
        }
    }
}
