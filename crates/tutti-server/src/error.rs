//! The server layer's one error type. The binary maps it to exit codes in one place
//! (`ServerError::exit_code`); protocol errors travel as `tutti_protocol::FrameError`.

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Invalid configuration (file, environment or flags).
    #[error("configuration: {0}")]
    Config(String),
    /// The piece spec is invalid.
    #[error("piece {path}: {source}")]
    Piece {
        /// Where the spec came from.
        path: String,
        /// What is wrong.
        source: tutti_spec::SpecError,
    },
    /// The store could not be opened or used.
    #[error("store: {0}")]
    Store(#[from] tutti_store::StoreError),
    /// A socket could not be bound or used.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// OSC set-up failed.
    #[error("osc: {0}")]
    Osc(String),
    /// Rendering or processing audio failed.
    #[error("audio: {0}")]
    Audio(String),
}

impl ServerError {
    /// Process exit code for this error (sysexits-style).
    pub fn exit_code(&self) -> i32 {
        match self {
            ServerError::Config(_) | ServerError::Piece { .. } => 78, // EX_CONFIG
            ServerError::Store(_) => 74,                              // EX_IOERR
            ServerError::Io { .. } | ServerError::Osc(_) => 71,       // EX_OSERR
            ServerError::Audio(_) => 65,                              // EX_DATAERR
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ServerError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<tutti_show::ShowError> for ServerError {
    fn from(e: tutti_show::ShowError) -> Self {
        match e {
            tutti_show::ShowError::Engine { piece, reason } => ServerError::Piece {
                path: piece,
                source: tutti_spec::SpecError::Parse(format!(
                    "rejected by the consensus engine: {reason}"
                )),
            },
            tutti_show::ShowError::Store(e) => ServerError::Store(e),
        }
    }
}

impl From<tutti_sound::SoundError> for ServerError {
    fn from(e: tutti_sound::SoundError) -> Self {
        ServerError::Osc(e.to_string())
    }
}
