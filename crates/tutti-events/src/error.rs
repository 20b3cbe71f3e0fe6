//! The crate's one error type, [`EventsError`].
//!
//! Every variant names what went wrong in words an operator can act on (the configuration field
//! and value, the event kind, the header). It must never carry a secret: signing secrets and
//! signatures are never put into error messages.

use tutti_store::StoreError;

/// Everything that can go wrong in the event system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    /// A configuration value is out of range.
    #[error("invalid events configuration: {field} = {value}: {reason}")]
    Config {
        /// The field, e.g. `dispatcher.max_attempts`.
        field: &'static str,
        /// The rejected value, as text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An event's kind is not one Tutti knows.
    #[error("unknown event kind {0:?}")]
    UnknownKind(String),
    /// An event's data does not have the shape its kind requires.
    #[error("event {kind} has malformed data: {detail}")]
    Data {
        /// The event kind.
        kind: String,
        /// What serde reported.
        detail: String,
    },
    /// A webhook URL this build cannot deliver to.
    #[error("webhook url {url:?} is not deliverable: {reason}")]
    WebhookUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// [`crate::Events::start`] was called outside a tokio runtime.
    #[error("the event system must be started inside a tokio runtime")]
    NoRuntime,
}
