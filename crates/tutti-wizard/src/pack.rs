//! Domain packs: the JSON format (questions, categories with coverage targets, rules that
//! draft spec fragments and raise warnings or conflicts), loading from text or a
//! directory, and every check a pack must pass before a session may use it.
//!
//! A pack that fails any check is refused whole, and the error names the file, the
//! field path (with the question or rule id) and, for expressions, the column.
//!
//! Must never: accept a pack with an unknown field, a dangling reference, a cycle in the
//! question order, an example answer its own question refuses, or a base that drafts an
//! invalid spec; read anything but the files it is pointed at.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tutti_spec::PieceSpec;

use crate::answer::{AnswerType, INTEGER_LIMIT, TEXT_MAX_LIMIT};
use crate::error::WizardError;
use crate::expr::{Expr, RefInfo, Ty};
use crate::fragment::{Field, Fragment};

/// The pack format version this crate reads.
pub const PACK_FORMAT: u32 = 1;
/// Largest pack file accepted, in bytes.
pub const MAX_PACK_BYTES: usize = 1 << 20;
/// Most questions in one pack.
pub const MAX_QUESTIONS: usize = 200;
/// Most rules in one pack.
pub const MAX_RULES: usize = 500;
/// Most categories in one pack.
pub const MAX_CATEGORIES: usize = 16;

/// A coverage category (e.g. `identity`, `audience`, `rates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Category id, `[a-z][a-z0-9_]{0,31}`.
    pub id: String,
    /// Title shown to people.
    pub title: String,
    /// How many answered questions make this category fully covered (≥ 1, ≤ its
    /// questions).
    pub target: u32,
}

/// Questions asked next when a condition holds after a question is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Condition over the answers (including the one just given); absent = always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expr>,
    /// Question ids to ask next, in order.
    pub ask: Vec<String>,
}

/// One question of a pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Question id, `[a-z][a-z0-9_]{0,63}` and not a keyword; rules refer to it.
    pub id: String,
    /// The question.
    pub text: String,
    /// Why it matters and how to answer.
    pub help: String,
    /// An example answer (checked against `answer` when the pack loads).
    pub example: serde_json::Value,
    /// The category it counts towards.
    pub category: String,
    /// The answer type.
    pub answer: AnswerType,
    /// Whether it may not be skipped.
    #[serde(default)]
    pub required: bool,
    /// Condition over earlier answers that must hold before it is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Expr>,
    /// Questions to ask right after this one when their condition holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<FollowUp>,
}

/// A rule: when its condition holds, apply fragments to the draft and raise messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Rule id, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub id: String,
    /// Condition over the answers.
    pub when: Expr,
    /// Fragments applied in order when it fires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<Fragment>,
    /// A warning; `{question_id}` is replaced by that answer (a choice by its label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
    /// A conflict the performer must resolve; `{question_id}` as for `warn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackData {
    format: u32,
    id: String,
    title: String,
    description: String,
    version: String,
    categories: Vec<Category>,
    questions: Vec<Question>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    base: Vec<Fragment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rules: Vec<Rule>,
}

/// A loaded, checked domain pack. Immutable.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    data: PackData,
    file: String,
    index: HashMap<String, usize>,
    category_of: Vec<usize>,
    order: Vec<usize>,
}

impl Serialize for Pack {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(s)
    }
}

fn is_ident(s: &str, max: usize) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_lowercase())
        && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        && s.len() <= max
}

fn is_slug(s: &str, max: usize, extra: &[char]) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || extra.contains(&ch))
        && s.len() <= max
}

/// What checking derives: question index by id, category of each question, and the
/// "asked before" order.
type Derived = (HashMap<String, usize>, Vec<usize>, Vec<usize>);

struct Checker<'a> {
    file: &'a str,
    data: &'a PackData,
    index: HashMap<String, usize>,
}

impl Checker<'_> {
    fn invalid(&self, location: impl Into<String>, message: impl Into<String>) -> WizardError {
        WizardError::PackInvalid {
            file: self.file.to_string(),
            location: location.into(),
            message: message.into(),
        }
    }

    fn qloc(&self, i: usize) -> String {
        format!("questions[{i}] (id '{}')", self.data.questions[i].id)
    }

    fn rloc(&self, i: usize) -> String {
        format!("rules[{i}] (id '{}')", self.data.rules[i].id)
    }

    fn lookup(&self, id: &str) -> Option<RefInfo> {
        self.index
            .get(id)
            .map(|&i| self.data.questions[i].answer.ref_info())
    }

    /// Type-check `e` at `location`; it must fit `want`.
    fn expr(&self, e: &Expr, location: &str, want: Ty) -> Result<(), WizardError> {
        let context = format!("{}: {location}", self.file);
        let ty = e.check(&|id| self.lookup(id), &context)?;
        if !ty.fits(want) {
            return Err(self.invalid(
                location,
                format!(
                    "`{}` gives {}, but {} is needed here",
                    crate::error::snippet(e.source(), 80),
                    ty.name(),
                    want.name()
                ),
            ));
        }
        Ok(())
    }

    fn text(&self, location: &str, s: &str, max: usize, required: bool) -> Result<(), WizardError> {
        if required && s.trim().is_empty() {
            return Err(self.invalid(location, "must not be empty"));
        }
        if s.chars().count() > max {
            return Err(self.invalid(location, format!("must be at most {max} characters")));
        }
        Ok(())
    }

    fn message(&self, location: &str, msg: &str) -> Result<(), WizardError> {
        self.text(location, msg, 500, true)?;
        for name in placeholders(msg) {
            if !self.index.contains_key(name) {
                return Err(self.invalid(
                    location,
                    format!("placeholder '{{{name}}}' is not a question id"),
                ));
            }
        }
        Ok(())
    }

    fn fragments(&self, frags: &[Fragment], location: &str) -> Result<(), WizardError> {
        for (j, f) in frags.iter().enumerate() {
            let path = format!("{location}[{j}]");
            f.visit_exprs(&path, &mut |p, e, want| self.expr(e, p, want))?;
            match f {
                Fragment::Param(pf) | Fragment::PatchParam(pf) => {
                    if !is_ident(&pf.name, 32) {
                        return Err(self.invalid(
                            format!("{path}.{}.name", f.key()),
                            format!(
                                "'{}' is not a parameter name ([a-z][a-z0-9_]{{0,31}})",
                                pf.name
                            ),
                        ));
                    }
                    if matches!(f, Fragment::Param(_)) && pf.kind.is_none() {
                        return Err(self.invalid(
                            format!("{path}.param.kind"),
                            "is required to add a parameter (continuous or discrete)",
                        ));
                    }
                }
                Fragment::RemoveParam(name) if !is_ident(name, 32) => {
                    return Err(self.invalid(
                        format!("{path}.remove_param"),
                        format!("'{name}' is not a parameter name"),
                    ));
                }
                Fragment::Map(m) => {
                    if !is_ident(&m.param, 32) {
                        return Err(self.invalid(
                            format!("{path}.map.param"),
                            format!("'{}' is not a parameter name", m.param),
                        ));
                    }
                    if let Field::Lit(t) = &m.target {
                        self.target(&format!("{path}.map.target"), t)?;
                    }
                }
                _ => {}
            }
            if let Fragment::Param(pf) | Fragment::PatchParam(pf) = f {
                for (k, m) in pf.map.iter().flatten().enumerate() {
                    if let Field::Lit(t) = &m.target {
                        self.target(&format!("{path}.{}.map[{k}].target", f.key()), t)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn target(&self, location: &str, t: &str) -> Result<(), WizardError> {
        match t.split_once('.') {
            Some((v, c)) if is_ident(v, 32) && is_ident(c, 32) => Ok(()),
            _ => Err(self.invalid(
                location,
                format!("'{t}' is not of the form voice.control (lower-case names)"),
            )),
        }
    }

    fn answer_type(&self, loc: &str, a: &AnswerType) -> Result<(), WizardError> {
        let loc = format!("{loc}.answer");
        match a {
            AnswerType::Text { max_len } => {
                if let Some(m) = max_len {
                    if *m == 0 || *m > TEXT_MAX_LIMIT {
                        return Err(self.invalid(
                            format!("{loc}.max_len"),
                            format!("must be 1–{TEXT_MAX_LIMIT}"),
                        ));
                    }
                }
            }
            AnswerType::Number { min, max, unit } => {
                if !min.is_finite() || !max.is_finite() || min >= max {
                    return Err(self.invalid(
                        format!("{loc}.max"),
                        format!("min and max must be finite with min < max (got {min} and {max})"),
                    ));
                }
                if let Some(u) = unit {
                    self.text(&format!("{loc}.unit"), u, 16, true)?;
                }
            }
            AnswerType::Integer { min, max, unit } => {
                for (k, v) in [("min", min), ("max", max)] {
                    if let Some(v) = v {
                        if v.abs() > INTEGER_LIMIT {
                            return Err(self.invalid(
                                format!("{loc}.{k}"),
                                format!("must be within ±{INTEGER_LIMIT}"),
                            ));
                        }
                    }
                }
                if let (Some(a), Some(b)) = (min, max) {
                    if a > b {
                        return Err(self.invalid(
                            format!("{loc}.max"),
                            format!("must be at least min ({a} > {b})"),
                        ));
                    }
                }
                if let Some(u) = unit {
                    self.text(&format!("{loc}.unit"), u, 16, true)?;
                }
            }
            AnswerType::Boolean => {}
            AnswerType::Choice { options } | AnswerType::MultiChoice { options, .. } => {
                if !(2..=32).contains(&options.len()) {
                    return Err(self.invalid(format!("{loc}.options"), "needs 2–32 options"));
                }
                let mut seen = BTreeSet::new();
                for (k, o) in options.iter().enumerate() {
                    let ol = format!("{loc}.options[{k}]");
                    if !is_slug(&o.value, 32, &['_']) {
                        return Err(self.invalid(
                            format!("{ol}.value"),
                            format!("'{}' must be 1–32 characters of a-z, 0-9 or '_'", o.value),
                        ));
                    }
                    if !seen.insert(o.value.as_str()) {
                        return Err(self.invalid(
                            format!("{ol}.value"),
                            format!("duplicate option '{}'", o.value),
                        ));
                    }
                    self.text(&format!("{ol}.label"), &o.label, 100, true)?;
                }
                if let AnswerType::MultiChoice { min, max, .. } = a {
                    let lo = min.unwrap_or(1) as usize;
                    let hi = max.map_or(options.len(), |m| m as usize);
                    if hi == 0 || lo > hi || hi > options.len() {
                        return Err(self.invalid(
                            format!("{loc}.max"),
                            format!(
                                "need min ≤ max, 1 ≤ max ≤ {} options (got {lo} and {hi})",
                                options.len()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn run(mut self) -> Result<Derived, WizardError> {
        let d = self.data;
        if d.format != PACK_FORMAT {
            return Err(self.invalid(
                "format",
                format!(
                    "unsupported pack format {} (this Tutti reads {PACK_FORMAT})",
                    d.format
                ),
            ));
        }
        if !is_slug(&d.id, 64, &['-']) {
            return Err(self.invalid(
                "id",
                format!("'{}' must be 1–64 characters of a-z, 0-9 or '-'", d.id),
            ));
        }
        let file_name = Path::new(self.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(self.file);
        if let Some(stem) = file_name.strip_suffix(".json") {
            if stem != d.id {
                return Err(self.invalid(
                    "id",
                    format!(
                        "'{}' does not match the file name '{file_name}' (expected '{stem}')",
                        d.id
                    ),
                ));
            }
        }
        self.text("title", &d.title, 200, true)?;
        self.text("description", &d.description, 2000, true)?;
        self.text("version", &d.version, 32, true)?;

        if d.categories.is_empty() || d.categories.len() > MAX_CATEGORIES {
            return Err(self.invalid("categories", format!("needs 1–{MAX_CATEGORIES} categories")));
        }
        let mut cat_index = HashMap::new();
        for (i, c) in d.categories.iter().enumerate() {
            let loc = format!("categories[{i}] (id '{}')", c.id);
            if !is_ident(&c.id, 32) {
                return Err(self.invalid(
                    format!("{loc}.id"),
                    "must be 1–32 characters of a-z, 0-9 or '_', starting with a letter",
                ));
            }
            if cat_index.insert(c.id.clone(), i).is_some() {
                return Err(self.invalid(
                    format!("{loc}.id"),
                    format!("duplicate category '{}'", c.id),
                ));
            }
            self.text(&format!("{loc}.title"), &c.title, 100, true)?;
            if c.target == 0 {
                return Err(self.invalid(format!("{loc}.target"), "must be at least 1"));
            }
        }

        if d.questions.is_empty() || d.questions.len() > MAX_QUESTIONS {
            return Err(self.invalid("questions", format!("needs 1–{MAX_QUESTIONS} questions")));
        }
        let mut category_of = Vec::with_capacity(d.questions.len());
        for (i, q) in d.questions.iter().enumerate() {
            let loc = self.qloc(i);
            if !is_ident(&q.id, 64) || crate::expr::is_keyword(&q.id) {
                return Err(self.invalid(
                    format!("{loc}.id"),
                    "must be 1–64 characters of a-z, 0-9 or '_', start with a letter, and not be a keyword (and, or, not, in, true, false, null)",
                ));
            }
            if self.index.insert(q.id.clone(), i).is_some() {
                return Err(self.invalid(
                    format!("{loc}.id"),
                    format!("duplicate question id '{}'", q.id),
                ));
            }
            let Some(&c) = cat_index.get(&q.category) else {
                return Err(self.invalid(
                    format!("{loc}.category"),
                    format!("unknown category '{}'", q.category),
                ));
            };
            category_of.push(c);
        }
        for (i, q) in d.questions.iter().enumerate() {
            let loc = self.qloc(i);
            self.text(&format!("{loc}.text"), &q.text, 500, true)?;
            self.text(&format!("{loc}.help"), &q.help, 2000, false)?;
            self.answer_type(&loc, &q.answer)?;
            if let Err(e) = q.answer.check(&q.id, &q.example) {
                return Err(self.invalid(format!("{loc}.example"), e.to_string()));
            }
            if let Some(dep) = &q.depends_on {
                self.expr(dep, &format!("{loc}.depends_on"), Ty::Bool)?;
                if dep.references().contains(&q.id.as_str()) {
                    return Err(self.invalid(
                        format!("{loc}.depends_on"),
                        "a question cannot depend on its own answer",
                    ));
                }
            }
            for (j, f) in q.follow_ups.iter().enumerate() {
                let fl = format!("{loc}.follow_ups[{j}]");
                if let Some(w) = &f.when {
                    self.expr(w, &format!("{fl}.when"), Ty::Bool)?;
                }
                if f.ask.is_empty() {
                    return Err(
                        self.invalid(format!("{fl}.ask"), "must name at least one question")
                    );
                }
                for (k, id) in f.ask.iter().enumerate() {
                    if !self.index.contains_key(id) {
                        return Err(self.invalid(
                            format!("{fl}.ask[{k}]"),
                            format!("unknown question '{id}'"),
                        ));
                    }
                    if *id == q.id {
                        return Err(self.invalid(
                            format!("{fl}.ask[{k}]"),
                            "a question cannot follow up itself",
                        ));
                    }
                }
            }
        }
        for (c, cat) in d.categories.iter().enumerate() {
            let n = category_of.iter().filter(|&&x| x == c).count();
            let loc = format!("categories[{c}] (id '{}')", cat.id);
            if n == 0 {
                return Err(self.invalid(loc, "has no questions"));
            }
            if cat.target as usize > n {
                return Err(self.invalid(
                    format!("{loc}.target"),
                    format!(
                        "is {} but the category has only {n} question(s)",
                        cat.target
                    ),
                ));
            }
        }
        let order = self.order()?;

        self.fragments(&d.base, "base")?;
        if d.rules.len() > MAX_RULES {
            return Err(self.invalid("rules", format!("at most {MAX_RULES} rules")));
        }
        let mut rule_ids = BTreeSet::new();
        for (i, r) in d.rules.iter().enumerate() {
            let loc = self.rloc(i);
            if !is_slug(&r.id, 64, &['-', '_']) {
                return Err(self.invalid(
                    format!("{loc}.id"),
                    "must be 1–64 characters of a-z, 0-9, '-' or '_'",
                ));
            }
            if !rule_ids.insert(r.id.as_str()) {
                return Err(
                    self.invalid(format!("{loc}.id"), format!("duplicate rule id '{}'", r.id))
                );
            }
            self.expr(&r.when, &format!("{loc}.when"), Ty::Bool)?;
            if r.then.is_empty() && r.warn.is_none() && r.conflict.is_none() {
                return Err(self.invalid(loc, "does nothing: give it then, warn or conflict"));
            }
            if let Some(w) = &r.warn {
                self.message(&format!("{loc}.warn"), w)?;
            }
            if let Some(c) = &r.conflict {
                self.message(&format!("{loc}.conflict"), c)?;
            }
            self.fragments(&r.then, &format!("{loc}.then"))?;
        }
        let index = std::mem::take(&mut self.index);
        Ok((index, category_of, order))
    }

    /// Topological order of the questions over the "asked before" relation: a question
    /// referenced by another's `depends_on` comes before it, and a question comes before
    /// its follow-ups. Ties keep pack order. A cycle is an error naming its questions.
    fn order(&self) -> Result<Vec<usize>, WizardError> {
        let qs = &self.data.questions;
        let n = qs.len();
        let mut succ: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for (i, q) in qs.iter().enumerate() {
            if let Some(dep) = &q.depends_on {
                for r in dep.references() {
                    if let Some(&j) = self.index.get(r) {
                        succ[j].insert(i);
                    }
                }
            }
            for f in &q.follow_ups {
                for id in &f.ask {
                    if let Some(&j) = self.index.get(id) {
                        succ[i].insert(j);
                    }
                }
            }
        }
        let mut indeg = vec![0usize; n];
        for s in &succ {
            for &j in s {
                indeg[j] += 1;
            }
        }
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &j in &succ[i] {
                indeg[j] -= 1;
                if indeg[j] == 0 {
                    ready.insert(j);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Walk from a question left over until one repeats: that is a cycle.
        let left: Vec<bool> = (0..n).map(|i| indeg[i] > 0).collect();
        let start = left.iter().position(|&l| l).unwrap_or(0);
        let mut path = vec![start];
        let mut cur = start;
        while let Some(&next) = succ[cur].iter().find(|&&j| left[j]) {
            if let Some(p) = path.iter().position(|&x| x == next) {
                path.drain(..p);
                path.push(next);
                break;
            }
            path.push(next);
            cur = next;
        }
        let names: Vec<String> = path.iter().map(|&i| format!("'{}'", qs[i].id)).collect();
        Err(self.invalid(
            self.qloc(start),
            format!(
                "questions form a cycle through depends_on/follow_ups: {} (each must be asked before the next)",
                names.join(" → ")
            ),
        ))
    }
}

/// `{name}` placeholders in a message: `{`, identifier characters, `}`. Other braces
/// are literal.
pub(crate) fn placeholders(msg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = msg;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let n = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if n > 0 && after[n..].starts_with('}') {
            out.push(&after[..n]);
            rest = &after[n + 1..];
        } else {
            rest = after;
        }
    }
    out
}

/// Render the field path of a serde error, adding the `id` of each question, rule or
/// category it passes through (looked up in the JSON value, when the text parses).
fn annotate(path: &serde_path_to_error::Path, text: &str) -> String {
    let root: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let mut cur = root.as_ref();
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                cur = cur.and_then(|v| v.get(*index));
                if let Some(id) = cur.and_then(|v| v.get("id")).and_then(|v| v.as_str()) {
                    out.push_str(&format!(" (id '{}')", crate::error::snippet(id, 40)));
                }
            }
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
                cur = cur.and_then(|v| v.get(key));
            }
            serde_path_to_error::Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
                cur = cur.and_then(|v| v.get(variant));
            }
            serde_path_to_error::Segment::Unknown => {
                out.push_str(".?");
                cur = None;
            }
        }
    }
    if out.is_empty() {
        "(top level)".to_string()
    } else {
        out
    }
}

impl Pack {
    /// Parse and check a pack from its JSON text. `name` names it in errors (a file name;
    /// when it ends in `.json`, the stem must equal the pack id).
    pub fn from_json(name: &str, text: &str) -> Result<Pack, WizardError> {
        let format_err = |path: String, message: String| WizardError::PackFormat {
            file: name.to_string(),
            path,
            message,
        };
        if text.len() > MAX_PACK_BYTES {
            return Err(format_err(
                "(file)".into(),
                format!("is {} bytes; the limit is {MAX_PACK_BYTES}", text.len()),
            ));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let data: PackData = match serde_path_to_error::deserialize(&mut de) {
            Ok(d) => d,
            Err(e) => {
                let path = annotate(e.path(), text);
                return Err(format_err(path, e.into_inner().to_string()));
            }
        };
        de.end()
            .map_err(|e| format_err("(top level)".into(), e.to_string()))?;
        let checker = Checker {
            file: name,
            data: &data,
            index: HashMap::new(),
        };
        let (index, category_of, order) = checker.run()?;
        let pack = Pack {
            data,
            file: name.to_string(),
            index,
            category_of,
            order,
        };
        // The base alone must draft a valid spec, so a fresh session always has one.
        let mut spec = pack.initial_draft();
        let empty = std::collections::BTreeMap::new();
        for (j, f) in pack.data.base.iter().enumerate() {
            f.apply(&mut spec, &empty, &format!("base[{j}]"))
                .map_err(|e| WizardError::PackInvalid {
                    file: name.to_string(),
                    location: e.field,
                    message: e.message,
                })?;
        }
        spec.validate().map_err(|e| WizardError::PackInvalid {
            file: name.to_string(),
            location: "base".into(),
            message: format!("the base fragments must draft a valid spec with no answers: {e}"),
        })?;
        Ok(pack)
    }

    /// Load and check one pack file.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Pack, WizardError> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("(unnamed)")
            .to_string();
        let io = |m: String| WizardError::Io {
            file: path.display().to_string(),
            message: m,
        };
        let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
        if meta.len() > MAX_PACK_BYTES as u64 {
            return Err(WizardError::PackFormat {
                file: name,
                path: "(file)".into(),
                message: format!("is {} bytes; the limit is {MAX_PACK_BYTES}", meta.len()),
            });
        }
        let bytes = std::fs::read(path).map_err(|e| io(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| WizardError::PackFormat {
            file: name.clone(),
            path: "(file)".into(),
            message: format!(
                "is not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Pack::from_json(&name, &text)
    }

    /// Load every `*.json` file of a directory (sorted by name; other files are ignored).
    /// The first bad file stops the load; two files with the same pack id are refused.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<Pack>, WizardError> {
        let dir = dir.as_ref();
        let io = |m: String| WizardError::Io {
            file: dir.display().to_string(),
            message: m,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(e.to_string()))? {
            let entry = entry.map_err(|e| io(e.to_string()))?;
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "json") && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        let mut packs: Vec<Pack> = Vec::with_capacity(files.len());
        for f in files {
            let pack = Pack::load_file(&f)?;
            if let Some(other) = packs.iter().find(|p| p.id() == pack.id()) {
                return Err(WizardError::DuplicatePack {
                    id: pack.id().to_string(),
                    first: other.file.clone(),
                    second: pack.file.clone(),
                });
            }
            packs.push(pack);
        }
        Ok(packs)
    }

    /// Pack id (e.g. `electronic`).
    pub fn id(&self) -> &str {
        &self.data.id
    }
    /// Title.
    pub fn title(&self) -> &str {
        &self.data.title
    }
    /// Description.
    pub fn description(&self) -> &str {
        &self.data.description
    }
    /// Version string of the pack's content.
    pub fn version(&self) -> &str {
        &self.data.version
    }
    /// The file (or name) it was loaded from.
    pub fn file(&self) -> &str {
        &self.file
    }
    /// Categories in pack order.
    pub fn categories(&self) -> &[Category] {
        &self.data.categories
    }
    /// Questions in pack order.
    pub fn questions(&self) -> &[Question] {
        &self.data.questions
    }
    /// Fragments applied before any rule.
    pub fn base(&self) -> &[Fragment] {
        &self.data.base
    }
    /// Rules in pack order.
    pub fn rules(&self) -> &[Rule] {
        &self.data.rules
    }
    /// A question by id.
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.index.get(id).map(|&i| &self.data.questions[i])
    }
    /// The pack as pretty JSON (loading it again gives an equal pack).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.data).unwrap_or_default()
    }

    pub(crate) fn question_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
    pub(crate) fn category_of(&self, question: usize) -> usize {
        self.category_of.get(question).copied().unwrap_or(0)
    }
    /// Questions in "asked before" order (dependencies and parents first).
    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }

    /// The draft before any fragment: the pack's id as slug, its title, and the spec's
    /// default rates.
    pub(crate) fn initial_draft(&self) -> PieceSpec {
        PieceSpec {
            slug: self.data.id.clone(),
            title: format!("Untitled {} piece", self.data.title.to_lowercase()),
            tick_hz: 20,
            state_hz: 20,
            input_rate: 30,
            recency_half_life: 5.0,
            agreement: 0.0,
            histogram_bins: 16,
            zones: Vec::new(),
            params: Vec::new(),
            phone: tutti_spec::PhoneSpec::default(),
        }
    }
}
