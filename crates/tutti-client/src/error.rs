//! The client layer's one error type, [`ClientError`], and its exit codes (in one place,
//! [`ClientError::exit_code`], as `ServerError::exit_code` is for the server). The API's
//! error envelope becomes [`ClientError::Api`], printed as `error <code>: <message>` with
//! the details that help (`(allowed: …)`, `(field: problem)`).
//!
//! Must never: put a token or a password into a message.

use serde_json::Value;

/// Everything a client command can fail with; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Wrong or missing arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server answered with its error envelope (exit 1).
    #[error("error {code}: {message}{}", details_suffix(.message, .details))]
    Api {
        /// HTTP status.
        status: u16,
        /// The envelope's stable code.
        code: String,
        /// The envelope's message.
        message: String,
        /// The envelope's details.
        details: Value,
    },
    /// The server could not be reached or answered something that is not the API (exit 3).
    #[error("{0}")]
    Connection(String),
    /// No stored login for this server, or it can no longer be refreshed (exit 4).
    #[error("not logged in to {server}{reason}: run `tutti login --server {server}`")]
    NotLoggedIn {
        /// The server.
        server: String,
        /// Why, e.g. ` (the session expired)`.
        reason: String,
    },
    /// A local file is wrong: a spec, an answers file, a pack (exit 65).
    #[error("{0}")]
    Data(String),
    /// A local file could not be read or written (exit 74).
    #[error("{0}")]
    Io(String),
}

impl ClientError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Api { .. } => 1,
            ClientError::Usage(_) => 2,
            ClientError::Connection(_) => 3,
            ClientError::NotLoggedIn { .. } => 4,
            ClientError::Data(_) => 65,
            ClientError::Io(_) => 74,
        }
    }
}

/// ` (allowed: a, b)` for invalid transitions, ` (field: problem; …)` for validation
/// errors; nothing when the message already says it.
fn details_suffix(message: &str, details: &Value) -> String {
    let s = details_text(details);
    if s.is_empty()
        || message.contains(s.trim_start().trim_start_matches('(').trim_end_matches(')'))
    {
        String::new()
    } else {
        s
    }
}

fn details_text(details: &Value) -> String {
    if let Some(allowed) = details.get("allowed").and_then(Value::as_array) {
        let list: Vec<String> = allowed
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        return format!(
            " (allowed: {})",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        );
    }
    if let Some(items) = details.as_array() {
        let parts: Vec<String> = items
            .iter()
            .filter_map(|d| {
                let field = d.get("field")?.as_str()?;
                let problem = d.get("problem").and_then(Value::as_str).unwrap_or("");
                Some(format!("{field}: {problem}"))
            })
            .collect();
        if !parts.is_empty() {
            return format!(" ({})", parts.join("; "));
        }
    }
    String::new()
}
