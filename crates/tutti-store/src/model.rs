//! The plain structs and enums the store hands out and takes in, and the validation of values at
//! the store's edge.
//!
//! These types are what callers see instead of SQL: rows are owned Rust values, statuses are
//! enums. They must never expose a SQL type, and validation here must never touch the database
//! (it runs on the caller's task, before anything is queued).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Longest accepted piece slug, in bytes.
pub const MAX_SLUG_LEN: usize = 64;
/// Longest accepted piece title, in bytes.
pub const MAX_TITLE_LEN: usize = 200;
/// Longest accepted show code, in bytes.
pub const MAX_CODE_LEN: usize = 64;
/// Longest accepted override actor, parameter or action name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Largest accepted spec document, in bytes.
pub const MAX_SPEC_JSON: usize = 1 << 20;
/// Largest accepted snapshot state document, in bytes.
pub const MAX_STATE_JSON: usize = 4 << 20;
/// Largest accepted override detail document, in bytes.
pub const MAX_DETAIL_JSON: usize = 64 << 10;

/// Whether a show is a rehearsal or a performance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShowKind {
    /// A rehearsal.
    Rehearsal,
    /// A performance in front of an audience.
    Performance,
}

impl ShowKind {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rehearsal => "rehearsal",
            Self::Performance => "performance",
        }
    }
}

/// Where a show is in its lifecycle: `scheduled → live ⇄ paused → ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShowStatus {
    /// Created, not started.
    Scheduled,
    /// Running.
    Live,
    /// Temporarily stopped; can go live again.
    Paused,
    /// Over; final.
    Ended,
}

impl ShowStatus {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Live => "live",
            Self::Paused => "paused",
            Self::Ended => "ended",
        }
    }

    /// The statuses a show in this status may move to.
    pub const fn allowed_next(self) -> &'static [ShowStatus] {
        match self {
            Self::Scheduled => &[Self::Live],
            Self::Live => &[Self::Paused, Self::Ended],
            Self::Paused => &[Self::Live, Self::Ended],
            Self::Ended => &[],
        }
    }

    /// Whether `self → to` is an allowed transition.
    pub fn can_become(self, to: ShowStatus) -> bool {
        self.allowed_next().contains(&to)
    }
}

/// The status of one version of a piece's spec. At most one version per piece is `Current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecStatus {
    /// Written but not published.
    Draft,
    /// The version new shows run.
    Current,
    /// Replaced by a later current version.
    Superseded,
}

impl SpecStatus {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Current => "current",
            Self::Superseded => "superseded",
        }
    }
}

macro_rules! text_enum {
    ($ty:ident, $field:literal, [$($variant:ident),+]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s == Self::$variant.as_str() {
                    return Ok(Self::$variant);
                })+
                Err(StoreError::Invalid {
                    field: $field,
                    value: preview(s),
                    reason: format!(
                        "expected one of: {}",
                        [$(Self::$variant.as_str()),+].join(", ")
                    ),
                })
            }
        }
    };
}

text_enum!(ShowKind, "show kind", [Rehearsal, Performance]);
text_enum!(ShowStatus, "show status", [Scheduled, Live, Paused, Ended]);
text_enum!(SpecStatus, "spec status", [Draft, Current, Superseded]);

/// A piece: a work that can be performed, identified by its slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRow {
    /// Store id.
    pub id: i64,
    /// Unique, URL-safe name (`[a-z0-9_-]`).
    pub slug: String,
    /// Human title.
    pub title: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
}

/// One immutable version of a piece's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecVersionRow {
    /// Store id.
    pub id: i64,
    /// The piece it belongs to.
    pub piece_id: i64,
    /// 1, 2, 3, … per piece.
    pub version: i64,
    /// The spec document, exactly as it was given.
    pub spec_json: String,
    /// Draft, current or superseded.
    pub status: SpecStatus,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
}

/// A show (a rehearsal or performance session) of a piece, running one spec version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowRow {
    /// Store id.
    pub id: i64,
    /// The piece performed.
    pub piece_id: i64,
    /// The spec version the show runs.
    pub spec_version_id: i64,
    /// The unique join code.
    pub code: String,
    /// Rehearsal or performance.
    pub kind: ShowKind,
    /// Lifecycle status.
    pub status: ShowStatus,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// When it first went live.
    pub started_at_ms: Option<i64>,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
}

/// The consensus state of a show at one tick (written about once a second).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    /// The show.
    pub show_id: i64,
    /// The tick number; increasing within a show (a resumed show continues from the latest one).
    pub tick: u64,
    /// The tick's time, unix milliseconds.
    pub at_ms: i64,
    /// The state document.
    pub state_json: String,
}

/// An override to log: who did what to which parameter, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOverride {
    /// The show.
    pub show_id: i64,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// Who (a performer name, token label or `osc`).
    pub actor: String,
    /// Which parameter (or `*` for a global action).
    pub param: String,
    /// What, e.g. `lock`, `bias`, `release`, `reset`.
    pub action: String,
    /// The action's arguments as a JSON document.
    pub detail_json: String,
}

/// A logged override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRow {
    /// Store id; increases in commit order.
    pub id: i64,
    /// The show.
    pub show_id: i64,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// Which parameter.
    pub param: String,
    /// What.
    pub action: String,
    /// The action's arguments as a JSON document.
    pub detail_json: String,
}

/// Counters describing the writer, read from atomics (cheap, never blocks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Operations accepted but not yet committed (or failed): in the queue or in the open batch.
    pub queued: u64,
    /// The writer queue's capacity.
    pub queue_capacity: u64,
    /// Batch transactions committed.
    pub transactions_committed: u64,
    /// Operations committed (snapshots included).
    pub ops_committed: u64,
    /// Operations that failed (their own error or their batch's).
    pub ops_failed: u64,
    /// Snapshots committed.
    pub snapshots_written: u64,
    /// Snapshots dropped because the queue was full.
    pub snapshots_dropped: u64,
    /// Snapshots that reached the writer but failed (e.g. unknown show).
    pub snapshots_failed: u64,
    /// The most operations committed in one transaction.
    pub largest_batch: u64,
}

/// A value shortened for error messages.
pub(crate) fn preview(value: &str) -> String {
    const MAX: usize = 64;
    if value.len() <= MAX {
        return value.to_owned();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        value: preview(value),
        reason: reason.into(),
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(invalid(field, value, "must not be empty"));
    }
    if value.len() > max {
        return Err(invalid(
            field,
            value,
            format!("longer than {max} bytes ({})", value.len()),
        ));
    }
    Ok(())
}

/// A slug: 1–64 bytes of `[a-z0-9_-]`.
pub(crate) fn validate_slug(slug: &str) -> Result<(), StoreError> {
    check_len("slug", slug, MAX_SLUG_LEN)?;
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "slug",
            slug,
            "only lowercase ASCII letters, digits, '-' and '_' are allowed",
        ));
    }
    Ok(())
}

/// A show code: 1–64 bytes of `[A-Za-z0-9_-]`.
pub(crate) fn validate_code(code: &str) -> Result<(), StoreError> {
    check_len("code", code, MAX_CODE_LEN)?;
    if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "code",
            code,
            "only ASCII letters, digits, '-' and '_' are allowed",
        ));
    }
    Ok(())
}

/// Free text (a title, actor, parameter or action): non-empty, bounded, no control characters.
pub(crate) fn validate_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), StoreError> {
    check_len(field, value, max)?;
    if value.trim().is_empty() {
        return Err(invalid(field, value, "must not be blank"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, value, "must not contain control characters"));
    }
    Ok(())
}

/// A well-formed JSON document of at most `max` bytes.
pub(crate) fn validate_json(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), StoreError> {
    if value.len() > max {
        return Err(invalid(
            field,
            value,
            format!("longer than {max} bytes ({})", value.len()),
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(value)
        .map(|_| ())
        .map_err(|e| invalid(field, value, format!("not valid JSON: {e}")))
}

/// A caller-supplied time: unix milliseconds, not negative.
pub(crate) fn validate_time(field: &'static str, at_ms: i64) -> Result<(), StoreError> {
    if at_ms < 0 {
        return Err(invalid(
            field,
            &at_ms.to_string(),
            "must be unix milliseconds (not negative)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_lifecycle() {
        use ShowStatus::*;
        let all = [Scheduled, Live, Paused, Ended];
        let allowed = [
            (Scheduled, Live),
            (Live, Paused),
            (Paused, Live),
            (Live, Ended),
            (Paused, Ended),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn enums_round_trip_through_text_and_reject_unknown_names() {
        for s in [
            ShowStatus::Scheduled,
            ShowStatus::Live,
            ShowStatus::Paused,
            ShowStatus::Ended,
        ] {
            assert_eq!(s.as_str().parse::<ShowStatus>(), Ok(s));
        }
        for k in [ShowKind::Rehearsal, ShowKind::Performance] {
            assert_eq!(k.to_string().parse::<ShowKind>(), Ok(k));
        }
        let err = "Live".parse::<ShowStatus>().unwrap_err();
        assert!(err.to_string().contains("\"Live\""), "{err}");
        assert!(
            err.to_string().contains("scheduled, live, paused, ended"),
            "{err}"
        );
    }

    #[test]
    fn validation_names_the_field_and_value() {
        let err = validate_slug("Bad Slug").unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid { field: "slug", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("Bad Slug"), "{err}");
        assert!(validate_slug("demo-piece_2").is_ok());
        assert!(validate_slug("").is_err());
        assert!(validate_slug(&"a".repeat(MAX_SLUG_LEN + 1)).is_err());
        assert!(validate_code("AB12-x").is_ok());
        assert!(validate_code("AB 12").is_err());
        assert!(validate_text("title", "  ", 10).is_err());
        assert!(validate_text("title", "a\nb", 10).is_err());
        assert!(validate_json("spec_json", "{\"a\":1}", 100).is_ok());
        let err = validate_json("spec_json", "{\"a\":", 100).unwrap_err();
        assert!(err.to_string().contains("spec_json"), "{err}");
        assert!(validate_json("spec_json", "{} x", 100).is_err());
        assert!(validate_json("spec_json", "[1,2,3]", 3).is_err());
        assert!(validate_time("at_ms", -1).is_err());
    }

    #[test]
    fn preview_cuts_long_values_on_a_char_boundary() {
        let long = "é".repeat(100);
        let p = preview(&long);
        assert!(p.ends_with('…'));
        assert!(p.len() <= 64 + '…'.len_utf8());
    }
}
