//! The crate's one error type. Every message names the option or the thing that was
//! wrong, so a user can fix the command line without reading code.
//!
//! Must never: carry a bare I/O error without saying what was being done.

/// Why a load run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A command-line option is out of its limits or malformed.
    #[error("{option}: {message}")]
    Option {
        /// The option, as typed on the command line (e.g. `--clients`).
        option: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The target could not be reached or did not speak the live protocol.
    #[error("cannot use the server at {url}: {message}")]
    Unreachable {
        /// The `--url` given.
        url: String,
        /// What happened.
        message: String,
    },
    /// A system call or file read failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl LoadError {
    /// An option error.
    pub(crate) fn option(option: &'static str, message: impl Into<String>) -> LoadError {
        LoadError::Option {
            option,
            message: message.into(),
        }
    }

    /// An I/O error with context.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> LoadError {
        LoadError::Io {
            what: what.into(),
            source,
        }
    }

    /// The option this error names, if it is an option error (for tests and callers
    /// that want to point at the flag).
    pub fn option_name(&self) -> Option<&'static str> {
        match self {
            LoadError::Option { option, .. } => Some(option),
            _ => None,
        }
    }
}
