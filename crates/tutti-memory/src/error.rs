//! The crate's one error type, [`MemoryError`], each with a stable [`MemoryError::code`] that
//! the API, the CLI and the MCP server pass on unchanged.

use tutti_store::StoreError;

/// Everything that can go wrong in the memory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// Bad input: nothing was stored. `code` is stable (see [`MemoryError::code`]).
    #[error("{field}: {reason}")]
    Invalid {
        /// `validation_failed`, `dimension_mismatch`, `non_finite_vector`, `too_many_steps`,
        /// `too_large`, `invalid_limit`, `unknown_piece`.
        code: &'static str,
        /// The offending field (dotted for nested ones).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No such episode (or one the caller may not see).
    #[error("{what} {id} not found")]
    NotFound {
        /// `episode`, `suggestion`, …
        what: &'static str,
        /// The key that was looked up.
        id: String,
    },
    /// The episode's state forbids the operation (`episode_ended`, `episode_open`).
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// The store is unavailable and the operation could not be kept durably either
    /// (`memory_unavailable`).
    #[error("the memory is unavailable: {0}")]
    Unavailable(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(StoreError),
    /// A bug; the message says which.
    #[error("internal memory error: {0}")]
    Internal(String),
}

impl MemoryError {
    /// A bad field with the generic code.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            code: "validation_failed",
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A bad field with a specific code.
    pub fn coded(code: &'static str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. } => code,
            Self::NotFound { .. } => "not_found",
            Self::Conflict { code, .. } => code,
            Self::Unavailable(_) => "memory_unavailable",
            Self::Store(StoreError::QueueFull { .. }) => "memory_unavailable",
            Self::Store(_) | Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for MemoryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, reason, .. } => Self::invalid(field, reason),
            StoreError::NotFound { what, id } => Self::NotFound { what, id },
            StoreError::Conflict {
                what: "episode ended",
                value,
            } => Self::Conflict {
                code: "episode_ended",
                message: value,
            },
            StoreError::Conflict {
                what: "episode open",
                value,
            } => Self::Conflict {
                code: "episode_open",
                message: value,
            },
            other => Self::Store(other),
        }
    }
}
