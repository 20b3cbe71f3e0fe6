//! The report layer's one error type. The API maps it to HTTP (`tutti-api`), the binary to
//! exit codes (`crates/tutti`).
//!
//! Must never: carry a message that is not fit to show to the person who asked.

/// Why a report or a time series could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No such show (or not one the caller may read; the API answers 404 either way).
    #[error("no show {0}")]
    NotFound(String),
    /// A bad request: a time range that is empty, negative, absurdly long or not finite.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument at fault (`from`, `to`, `format`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The show's stored spec version cannot be read.
    #[error("the show's spec version {0}")]
    Spec(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] tutti_store::StoreError),
    /// A chart could not be drawn (a bug: the data is checked before it is drawn).
    #[error("drawing a chart: {0}")]
    Plot(String),
    /// Writing the output failed.
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

impl ReportError {
    /// The stable code for the API's error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            ReportError::NotFound(_) => "not_found",
            ReportError::Invalid { .. } => "invalid_range",
            ReportError::Spec(_) => "corrupt_show",
            ReportError::Store(_) | ReportError::Io(_) | ReportError::Plot(_) => "internal",
        }
    }
}
