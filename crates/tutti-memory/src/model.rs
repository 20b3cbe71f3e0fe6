//! What an episode is, generic over its kind (a show, a rehearsal, an installation's day, an
//! agent's task), and the limits every input is checked against before anything is stored.
//!
//! An episode has a [`Context`], ordered [`Step`]s with timestamps, [`Moment`]s (points of the
//! episode described by a fixed-dimension vector whose dimensions are named when the episode
//! starts), and an [`Outcome`]. Its reward is computed from the outcome and the engagement
//! measured during it ([`reward`]).
//!
//! Must never: accept a non-finite number, an oversized field or a vector of the wrong
//! dimension (each is a [`MemoryError::Invalid`] with a stable code, raised before anything is
//! queued, so nothing is stored half-way).

use serde::{Deserialize, Serialize};

use crate::error::MemoryError;

/// Most steps per episode.
pub const MAX_STEPS: u64 = 100_000;
/// Most moments per episode (a three-hour show with a moment a second is 10,800).
pub const MAX_MOMENTS: u64 = 50_000;
/// Most dimensions of a moment vector.
pub const MAX_DIMS: usize = 64;
/// Most tags of an episode.
pub const MAX_TAGS: usize = 32;
/// Longest tag, dimension name, kind, piece, venue, section or step kind, in bytes.
pub const MAX_NAME: usize = 64;
/// Longest context text or notes, in bytes.
pub const MAX_TEXT: usize = 8 << 10;
/// Largest step data (serialized JSON), in bytes.
pub const MAX_STEP_DATA: usize = 8 << 10;
/// Most steps or moments in one call.
pub const MAX_BATCH: usize = 10_000;
/// Most results a query may ask for.
pub const MAX_K: usize = 100;

/// Where and what an episode is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// What kind of episode: `show`, `rehearsal`, `installation`, `task`, … (1–64 of
    /// `a-z 0-9 _ - .`).
    pub kind: String,
    /// The piece (or another grouping within the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece: Option<String>,
    /// The spec version it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<i64>,
    /// The ensemble it belongs to (who may read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble_id: Option<i64>,
    /// What it is about, e.g. `show:42`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Where it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free text (searchable).
    #[serde(default)]
    pub text: String,
}

/// Something that happened at a time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unix ms.
    pub at_ms: i64,
    /// What kind of step: for a show `override`, `section`, `status`, `feedback`, `level`, ….
    pub kind: String,
    /// Its data. A `label` string field, when present, names the step in patterns and
    /// suggestions (for an override: `intensity lock`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// A point of an episode described by a fixed-dimension vector.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moment {
    /// Unix ms.
    pub at_ms: i64,
    /// The section of the episode (for a show: its `section` vote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The vector, in the order of the episode's dimension names.
    pub vector: Vec<f32>,
}

/// How an episode ended, as its recorder says.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Completion {
    /// Ran to its end.
    #[default]
    Completed,
    /// Given up.
    Abandoned,
    /// Cut short (the memory completes episodes left open by a crash this way; an export
    /// keeps it).
    Interrupted,
}

impl Completion {
    /// Its share in the reward: 1 completed, 0.5 interrupted, 0 abandoned.
    pub fn factor(self) -> f64 {
        match self {
            Completion::Completed => 1.0,
            Completion::Interrupted => 0.5,
            Completion::Abandoned => 0.0,
        }
    }
}

/// Engagement measured during an episode, each 0–1 (missing ones are left out of the reward).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Engagement {
    /// Share of the audience taking part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participation: Option<f64>,
    /// How much they agreed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// Activity (chat, inputs) relative to the audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<f64>,
}

/// The outcome of an episode.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Completed or abandoned.
    #[serde(default)]
    pub completion: Completion,
    /// A rating, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<f64>,
    /// Notes (searchable).
    #[serde(default)]
    pub notes: String,
    /// Engagement; measured from the moments when left out (dimensions named
    /// `participation`, `agreement`, `activity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement: Option<Engagement>,
}

/// The reward of an episode, 0–1: 0.5 × rating + 0.3 × mean engagement + 0.2 × completion
/// (1 completed, 0.5 interrupted, 0 abandoned), over the parts that are known (weights of
/// missing parts are left out and the rest rescaled).
pub fn reward(rating: Option<f64>, engagement: &Engagement, completion: f64) -> f64 {
    let parts = [
        engagement.participation,
        engagement.agreement,
        engagement.activity,
    ];
    let known: Vec<f64> = parts.into_iter().flatten().collect();
    let eng = (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64);
    let mut sum = 0.2 * completion;
    let mut w = 0.2;
    if let Some(r) = rating {
        sum += 0.5 * r;
        w += 0.5;
    }
    if let Some(e) = eng {
        sum += 0.3 * e;
        w += 0.3;
    }
    (sum / w).clamp(0.0, 1.0)
}

fn name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control)
}

fn kind_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
}

/// Checks a kind (`a-z 0-9 _ - .`, 1–64 bytes).
pub fn check_kind(field: &str, kind: &str) -> Result<(), MemoryError> {
    if kind_ok(kind) {
        Ok(())
    } else {
        Err(MemoryError::invalid(
            field,
            "must be 1–64 characters of a-z, 0-9, '_', '-' and '.'",
        ))
    }
}

fn check_name(field: &str, s: &str) -> Result<(), MemoryError> {
    if name_ok(s) {
        Ok(())
    } else {
        Err(MemoryError::invalid(
            field,
            "must be 1–64 bytes without control characters",
        ))
    }
}

fn check_text(field: &str, s: &str) -> Result<(), MemoryError> {
    if s.len() > MAX_TEXT {
        return Err(MemoryError::coded(
            "too_large",
            field,
            format!("longer than {MAX_TEXT} bytes ({})", s.len()),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(MemoryError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_unit(field: &str, v: f64) -> Result<(), MemoryError> {
    if !v.is_finite() {
        return Err(MemoryError::coded(
            "non_finite_vector",
            field,
            "must be a finite number",
        ));
    }
    if !(0.0..=1.0).contains(&v) {
        return Err(MemoryError::invalid(field, "must be 0–1"));
    }
    Ok(())
}

impl Context {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), MemoryError> {
        check_kind("context.kind", &self.kind)?;
        if let Some(p) = &self.piece {
            check_name("context.piece", p)?;
        }
        if let Some(v) = &self.venue {
            check_name("context.venue", v)?;
        }
        if let Some(s) = &self.subject {
            check_name("context.subject", s)?;
        }
        if self.tags.len() > MAX_TAGS {
            return Err(MemoryError::coded(
                "too_large",
                "context.tags",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        for (i, t) in self.tags.iter().enumerate() {
            check_name(&format!("context.tags[{i}]"), t)?;
        }
        if self.spec_version.is_some_and(|v| v < 1) || self.ensemble_id.is_some_and(|v| v < 1) {
            return Err(MemoryError::invalid(
                "context",
                "spec_version and ensemble_id are positive",
            ));
        }
        check_text("context.text", &self.text)
    }
}

/// Checks dimension names: 1–64 distinct names.
pub fn check_dims(dims: &[String]) -> Result<(), MemoryError> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(MemoryError::coded(
            "dimension_mismatch",
            "dims",
            format!("a moment has 1–{MAX_DIMS} dimensions (got {})", dims.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, d) in dims.iter().enumerate() {
        check_name(&format!("dims[{i}]"), d)?;
        if !seen.insert(d.as_str()) {
            return Err(MemoryError::invalid(
                format!("dims[{i}]"),
                format!("{d:?} appears twice"),
            ));
        }
    }
    Ok(())
}

/// Checks a vector against the dimension count: right length, finite components.
pub fn check_vector(field: &str, v: &[f32], dims: usize) -> Result<(), MemoryError> {
    if v.len() != dims {
        return Err(MemoryError::coded(
            "dimension_mismatch",
            field,
            format!("has {} components; the dimensions are {dims}", v.len()),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(MemoryError::coded(
            "non_finite_vector",
            format!("{field}[{i}]"),
            "must be a finite number",
        ));
    }
    Ok(())
}

impl Step {
    /// Checks the step; `field` names it in errors.
    pub fn validate(&self, field: &str) -> Result<(), MemoryError> {
        self.checked_data(|| field.to_owned()).map(drop)
    }

    /// Checks the step and returns its data as stored (JSON, serialized once); `field` names
    /// it in errors (and is only built for one).
    pub fn checked_data(&self, field: impl Fn() -> String) -> Result<String, MemoryError> {
        if self.at_ms < 0 {
            return Err(MemoryError::invalid(
                format!("{}.at_ms", field()),
                "must be >= 0",
            ));
        }
        if !kind_ok(&self.kind) {
            check_kind(&format!("{}.kind", field()), &self.kind)?;
        }
        serde_json::to_string(&self.data)
            .ok()
            .filter(|s| s.len() <= MAX_STEP_DATA)
            .ok_or_else(|| {
                MemoryError::coded(
                    "too_large",
                    format!("{}.data", field()),
                    format!("larger than {MAX_STEP_DATA} bytes"),
                )
            })
    }

    /// The step's label: its `data.label` when it is a string.
    pub fn label(&self) -> Option<&str> {
        self.data.get("label").and_then(|l| l.as_str())
    }
}

impl Moment {
    /// Checks the moment against `dims` dimensions; `field` names it in errors.
    pub fn validate(&self, field: &str, dims: usize) -> Result<(), MemoryError> {
        self.check(|| field.to_owned(), dims)
    }

    /// [`Moment::validate`], with the field's name only built for an error.
    pub fn check(&self, field: impl Fn() -> String, dims: usize) -> Result<(), MemoryError> {
        if self.at_ms < 0 {
            return Err(MemoryError::invalid(
                format!("{}.at_ms", field()),
                "must be >= 0",
            ));
        }
        if let Some(s) = &self.section {
            if !name_ok(s) {
                check_name(&format!("{}.section", field()), s)?;
            }
        }
        if self.vector.len() != dims || !self.vector.iter().all(|x| x.is_finite()) {
            check_vector(&format!("{}.vector", field()), &self.vector, dims)?;
        }
        Ok(())
    }
}

impl Outcome {
    /// Checks the outcome.
    pub fn validate(&self) -> Result<(), MemoryError> {
        if let Some(r) = self.rating {
            check_unit("outcome.rating", r)?;
        }
        check_text("outcome.notes", &self.notes)?;
        if let Some(e) = &self.engagement {
            for (name, v) in [
                ("participation", e.participation),
                ("agreement", e.agreement),
                ("activity", e.activity),
            ] {
                if let Some(v) = v {
                    check_unit(&format!("outcome.engagement.{name}"), v)?;
                }
            }
        }
        Ok(())
    }
}

/// Checks a result count: 1–[`MAX_K`].
pub fn check_k(field: &str, k: usize) -> Result<(), MemoryError> {
    if (1..=MAX_K).contains(&k) {
        Ok(())
    } else {
        Err(MemoryError::coded(
            "invalid_limit",
            field,
            format!("must be 1–{MAX_K} (got {k})"),
        ))
    }
}

/// Checks a batch size: at most [`MAX_BATCH`].
pub fn check_batch(field: &str, n: usize) -> Result<(), MemoryError> {
    if n > MAX_BATCH {
        Err(MemoryError::coded(
            "too_large",
            field,
            format!("at most {MAX_BATCH} per call (got {n})"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_uses_the_parts_it_has() {
        let none = Engagement::default();
        assert_eq!(reward(None, &none, 1.0), 1.0);
        assert_eq!(reward(None, &none, 0.0), 0.0);
        let r = reward(Some(1.0), &none, 1.0);
        assert!((r - 1.0).abs() < 1e-9);
        let e = Engagement {
            participation: Some(0.5),
            agreement: Some(0.5),
            activity: None,
        };
        let r = reward(Some(0.0), &e, 1.0);
        assert!((r - (0.2 + 0.15) / 1.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn bad_vectors_have_stable_codes() {
        let e = check_vector("v", &[1.0, f32::NAN], 2).unwrap_err();
        assert_eq!(e.code(), "non_finite_vector");
        let e = check_vector("v", &[1.0], 2).unwrap_err();
        assert_eq!(e.code(), "dimension_mismatch");
        assert_eq!(check_k("k", 0).unwrap_err().code(), "invalid_limit");
        assert_eq!(check_k("k", 1_000_000).unwrap_err().code(), "invalid_limit");
        assert!(check_kind("kind", "Show!").is_err());
        assert!(check_dims(&["a".into(), "a".into()]).is_err());
    }
}
