//! Answer types of questions and the validation of answers: a JSON value from the API, or
//! a line of text from the terminal, becomes a checked [`Value`] or an error that names
//! the question and says what was expected.
//!
//! Must never: accept a value outside the question's range or options, or keep
//! unbounded user text.

use serde::{Deserialize, Serialize};

use crate::error::{snippet, WizardError};
use crate::expr::{RefInfo, Ty, Value};

/// Default and largest `max_len` of a text answer, in characters.
pub const TEXT_MAX_DEFAULT: u32 = 500;
/// Largest allowed `max_len` of a text answer.
pub const TEXT_MAX_LIMIT: u32 = 10_000;
/// Integer answers without bounds stay within ±2^53 (exact in a JSON number).
pub const INTEGER_LIMIT: i64 = 1 << 53;

/// One option of a choice question: the value rules see, and the label people see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// Value used in expressions and answers, `[a-z0-9_]{1,32}`.
    pub value: String,
    /// Label shown to people.
    pub label: String,
}

/// What kind of answer a question takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnswerType {
    /// Free text of 1..=`max_len` characters (default 500).
    Text {
        /// Longest answer in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<u32>,
    },
    /// A number in `min..=max`.
    Number {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
        /// Unit shown next to the value (e.g. `Hz`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// A whole number, optionally bounded.
    Integer {
        /// Smallest accepted value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        /// Largest accepted value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
        /// Unit shown next to the value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// Yes or no.
    Boolean,
    /// Exactly one of the options.
    Choice {
        /// The options (2–32).
        options: Vec<ChoiceOption>,
    },
    /// Any number of distinct options within `min..=max` (default 1..=all).
    MultiChoice {
        /// The options (2–32).
        options: Vec<ChoiceOption>,
        /// Fewest options to pick (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u32>,
        /// Most options to pick (default all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
    },
}

fn fmt_num(x: f64) -> String {
    Value::Num(x).to_string()
}

fn got(v: &serde_json::Value) -> String {
    snippet(&v.to_string(), 60)
}

impl AnswerType {
    /// The static type of this answer in expressions, and the options of choices.
    pub fn ref_info(&self) -> RefInfo {
        let (ty, options) = match self {
            AnswerType::Text { .. } => (Ty::Str, None),
            AnswerType::Number { .. } | AnswerType::Integer { .. } => (Ty::Num, None),
            AnswerType::Boolean => (Ty::Bool, None),
            AnswerType::Choice { options } => (Ty::Str, Some(options)),
            AnswerType::MultiChoice { options, .. } => (Ty::List, Some(options)),
        };
        RefInfo {
            ty,
            options: options.map(|o| o.iter().map(|o| o.value.clone()).collect()),
        }
    }

    fn integer_bounds(&self) -> (i64, i64) {
        match self {
            AnswerType::Integer { min, max, .. } => (
                min.unwrap_or(-INTEGER_LIMIT).max(-INTEGER_LIMIT),
                max.unwrap_or(INTEGER_LIMIT).min(INTEGER_LIMIT),
            ),
            _ => (-INTEGER_LIMIT, INTEGER_LIMIT),
        }
    }

    fn multi_bounds(&self) -> (usize, usize) {
        match self {
            AnswerType::MultiChoice { options, min, max } => (
                min.map_or(1, |m| m as usize),
                max.map_or(options.len(), |m| m as usize),
            ),
            _ => (0, 0),
        }
    }

    /// What this type accepts, in words (used in error messages and prompts).
    pub fn expected(&self) -> String {
        let unit = |u: &Option<String>| u.as_ref().map(|u| format!(" {u}")).unwrap_or_default();
        let list = |o: &[ChoiceOption]| {
            o.iter()
                .map(|o| o.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            AnswerType::Text { max_len } => format!(
                "text of 1 to {} characters",
                max_len.unwrap_or(TEXT_MAX_DEFAULT)
            ),
            AnswerType::Number { min, max, unit: u } => {
                format!(
                    "a number from {} to {}{}",
                    fmt_num(*min),
                    fmt_num(*max),
                    unit(u)
                )
            }
            AnswerType::Integer { unit: u, .. } => {
                let (lo, hi) = self.integer_bounds();
                format!("a whole number from {lo} to {hi}{}", unit(u))
            }
            AnswerType::Boolean => "true or false (yes or no)".into(),
            AnswerType::Choice { options } => format!("one of: {}", list(options)),
            AnswerType::MultiChoice { options, .. } => {
                let (lo, hi) = self.multi_bounds();
                format!(
                    "a list of {lo} to {hi} different options from: {}",
                    list(options)
                )
            }
        }
    }

    /// Check a JSON answer; on success the value expressions will see.
    pub fn check(&self, question: &str, v: &serde_json::Value) -> Result<Value, WizardError> {
        let bad = || WizardError::InvalidAnswer {
            question: question.to_string(),
            expected: self.expected(),
            got: got(v),
        };
        match self {
            AnswerType::Text { max_len } => {
                let s = v.as_str().ok_or_else(bad)?;
                let s = s.trim();
                let max = max_len.unwrap_or(TEXT_MAX_DEFAULT).min(TEXT_MAX_LIMIT) as usize;
                let ok = !s.is_empty()
                    && s.chars().count() <= max
                    && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
                if ok {
                    Ok(Value::Str(s.to_string()))
                } else {
                    Err(bad())
                }
            }
            AnswerType::Number { min, max, .. } => match v.as_f64() {
                Some(x) if x.is_finite() && *min <= x && x <= *max => Ok(Value::Num(x)),
                _ => Err(bad()),
            },
            AnswerType::Integer { .. } => {
                let (lo, hi) = self.integer_bounds();
                let x = match (v.as_i64(), v.as_f64()) {
                    (Some(i), _) => Some(i),
                    (None, Some(f)) if f.fract() == 0.0 && f.abs() <= INTEGER_LIMIT as f64 => {
                        Some(f as i64)
                    }
                    _ => None,
                };
                match x {
                    Some(i) if lo <= i && i <= hi => Ok(Value::Num(i as f64)),
                    _ => Err(bad()),
                }
            }
            AnswerType::Boolean => v.as_bool().map(Value::Bool).ok_or_else(bad),
            AnswerType::Choice { options } => match v.as_str() {
                Some(s) if options.iter().any(|o| o.value == s) => Ok(Value::Str(s.to_string())),
                _ => Err(bad()),
            },
            AnswerType::MultiChoice { options, .. } => {
                let items = v.as_array().ok_or_else(bad)?;
                let (lo, hi) = self.multi_bounds();
                if items.len() < lo || items.len() > hi {
                    return Err(bad());
                }
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for it in items {
                    let s = it.as_str().ok_or_else(bad)?;
                    if !options.iter().any(|o| o.value == s) {
                        return Err(bad());
                    }
                    let val = Value::Str(s.to_string());
                    if out.contains(&val) {
                        return Err(bad());
                    }
                    out.push(val);
                }
                Ok(Value::List(out))
            }
        }
    }

    /// Turn a line typed in a terminal into a JSON answer for [`AnswerType::check`]:
    /// numbers may carry their unit (`30 Hz`), booleans accept yes/no/y/n/true/false,
    /// choices accept the value, the label (any case) or the 1-based number shown, and
    /// multiple choices a comma-separated list of those.
    pub fn parse_text(&self, question: &str, text: &str) -> Result<serde_json::Value, WizardError> {
        let t = text.trim();
        let bad = || WizardError::InvalidAnswer {
            question: question.to_string(),
            expected: self.expected(),
            got: format!("'{}'", snippet(t, 60)),
        };
        let strip_unit = |u: &Option<String>| -> String {
            let mut s = t.to_string();
            if let Some(u) = u {
                if let Some(rest) = s.strip_suffix(u.as_str()) {
                    s = rest.trim_end().to_string();
                }
            }
            s
        };
        let pick = |options: &[ChoiceOption], s: &str| -> Option<String> {
            let s = s.trim();
            if let Ok(n) = s.parse::<usize>() {
                return n
                    .checked_sub(1)
                    .and_then(|i| options.get(i))
                    .map(|o| o.value.clone());
            }
            options
                .iter()
                .find(|o| o.value == s || o.label.eq_ignore_ascii_case(s))
                .map(|o| o.value.clone())
        };
        match self {
            AnswerType::Text { .. } => Ok(serde_json::Value::String(t.to_string())),
            AnswerType::Number { unit, .. } => {
                let s = strip_unit(unit);
                let x: f64 = s.parse().map_err(|_| bad())?;
                serde_json::Number::from_f64(x)
                    .map(serde_json::Value::Number)
                    .ok_or_else(bad)
            }
            AnswerType::Integer { unit, .. } => {
                let s = strip_unit(unit).replace('_', "");
                let x: i64 = s.parse().map_err(|_| bad())?;
                Ok(serde_json::Value::from(x))
            }
            AnswerType::Boolean => match t.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "1" => Ok(serde_json::Value::Bool(true)),
                "n" | "no" | "false" | "0" => Ok(serde_json::Value::Bool(false)),
                _ => Err(bad()),
            },
            AnswerType::Choice { options } => pick(options, t)
                .map(serde_json::Value::String)
                .ok_or_else(bad),
            AnswerType::MultiChoice { options, .. } => {
                let mut out = Vec::new();
                for part in t.split(',').filter(|p| !p.trim().is_empty()) {
                    out.push(serde_json::Value::String(
                        pick(options, part).ok_or_else(bad)?,
                    ));
                }
                Ok(serde_json::Value::Array(out))
            }
        }
    }
}
