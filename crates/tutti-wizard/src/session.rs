//! The question session: which question comes next (follow-ups first, then the least
//! covered category, then pack order, always respecting `depends_on`), answering with
//! validation, coverage and the maturity score, and evaluating the rules into a draft
//! spec with warnings and conflicts.
//!
//! An answer counts only while its question applies: if a later change makes a
//! question's `depends_on` false, its stored answer is kept but ignored (by rules,
//! coverage and other conditions) until the condition holds again.
//!
//! Must never: panic on any answer, store an answer its question refuses, or hand out a
//! draft spec that `PieceSpec::validate` refuses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tutti_spec::PieceSpec;

use crate::answer::AnswerType;
use crate::error::WizardError;
use crate::expr::Value;
use crate::pack::{Pack, Question};

/// Everything a session must keep to resume: store it as JSON and give it back to
/// [`Session::resume`] with the same pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionState {
    /// The pack id.
    pub pack: String,
    /// The pack version the answers were given under.
    pub pack_version: String,
    /// Answers by question id, as validated JSON values.
    #[serde(default)]
    pub answers: BTreeMap<String, serde_json::Value>,
    /// Questions the performer chose to skip.
    #[serde(default)]
    pub skipped: BTreeSet<String>,
    /// Follow-up questions waiting to be asked, first first.
    #[serde(default)]
    pub pending: Vec<String>,
}

/// Coverage of one category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryCoverage {
    /// Category id.
    pub id: String,
    /// Category title.
    pub title: String,
    /// Answered questions (that currently apply).
    pub answered: usize,
    /// The pack's target.
    pub target: usize,
    /// The target actually used: the pack's target, lowered to the number of the
    /// category's questions that currently apply.
    pub effective_target: usize,
    /// `min(answered, effective_target) / effective_target` (1 when nothing applies).
    pub ratio: f64,
}

/// How complete the session is.
///
/// `maturity` (0–100) is `⌊100 · Σ min(answered_c, effective_target_c) / Σ
/// effective_target_c⌋` over the categories, and is held at 99 while a required
/// question that applies is unanswered: 100 means every category met its target and
/// every required question is answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Per category, in pack order.
    pub categories: Vec<CategoryCoverage>,
    /// Answered questions that currently apply.
    pub answered: usize,
    /// Questions that currently apply.
    pub applicable: usize,
    /// The maturity score, 0–100.
    pub maturity: u8,
    /// Required questions that apply and are unanswered.
    pub missing_required: Vec<String>,
    /// Whether no question is left to ask.
    pub complete: bool,
}

/// What answering did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerOutcome {
    /// The question answered.
    pub question: String,
    /// Whether an earlier answer was replaced.
    pub replaced: bool,
    /// Follow-up questions queued by this answer (asked next).
    pub follow_ups: Vec<String>,
    /// The next question to ask, if any.
    pub next: Option<String>,
    /// Coverage after the answer.
    pub coverage: Coverage,
}

/// A warning or conflict raised by a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's id.
    pub rule: String,
    /// The message, with `{question}` placeholders filled in.
    pub message: String,
}

/// The draft spec and what the rules said about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The draft spec (validated).
    pub spec: PieceSpec,
    /// Warnings: worth a look, not blocking.
    pub warnings: Vec<Finding>,
    /// Conflicts: the answers contradict each other or the platform's limits.
    pub conflicts: Vec<Finding>,
    /// Ids of the rules that fired, in order.
    pub fired_rules: Vec<String>,
    /// Coverage at the time of evaluation.
    pub coverage: Coverage,
}

impl Evaluation {
    /// No conflicts and no required question missing.
    pub fn is_ready(&self) -> bool {
        self.conflicts.is_empty() && self.coverage.missing_required.is_empty()
    }
}

/// One performer's run through a pack.
#[derive(Debug, Clone)]
pub struct Session {
    pack: Arc<Pack>,
    state: SessionState,
    /// Checked values of `state.answers`.
    values: BTreeMap<String, Value>,
}

impl Serialize for Session {
    /// A session serialises as its [`SessionState`].
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.state.serialize(s)
    }
}

/// Which questions apply, and the answers that count.
struct View {
    applies: Vec<bool>,
    env: BTreeMap<String, Value>,
}

impl Session {
    /// A fresh session over `pack`.
    pub fn new(pack: Arc<Pack>) -> Session {
        let state = SessionState {
            pack: pack.id().to_string(),
            pack_version: pack.version().to_string(),
            answers: BTreeMap::new(),
            skipped: BTreeSet::new(),
            pending: Vec::new(),
        };
        Session {
            pack,
            state,
            values: BTreeMap::new(),
        }
    }

    /// Resume a stored session. The pack id must match; every stored answer is checked
    /// again against the pack (which may be a newer version), and unknown question ids
    /// are refused.
    pub fn resume(pack: Arc<Pack>, mut state: SessionState) -> Result<Session, WizardError> {
        if state.pack != pack.id() {
            return Err(WizardError::Resume {
                message: format!(
                    "the session is for pack '{}', not '{}'",
                    state.pack,
                    pack.id()
                ),
            });
        }
        let mut values = BTreeMap::new();
        for (id, v) in &state.answers {
            let q = pack.question(id).ok_or_else(|| WizardError::Resume {
                message: format!(
                    "pack '{}' version {} has no question '{id}'",
                    pack.id(),
                    pack.version()
                ),
            })?;
            let val = q.answer.check(id, v).map_err(|e| WizardError::Resume {
                message: e.to_string(),
            })?;
            values.insert(id.clone(), val);
        }
        for id in state.skipped.iter().chain(&state.pending) {
            if pack.question(id).is_none() {
                return Err(WizardError::Resume {
                    message: format!("pack '{}' has no question '{id}'", pack.id()),
                });
            }
        }
        if state.pending.len() > pack.questions().len() {
            return Err(WizardError::Resume {
                message: "too many pending follow-ups".into(),
            });
        }
        state.pack_version = pack.version().to_string();
        Ok(Session {
            pack,
            state,
            values,
        })
    }

    /// The pack.
    pub fn pack(&self) -> &Pack {
        &self.pack
    }

    /// The state to store.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The state to store, by value.
    pub fn into_state(self) -> SessionState {
        self.state
    }

    /// Stored answers (including any that currently do not apply).
    pub fn answers(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.state.answers
    }

    fn view(&self) -> View {
        let qs = self.pack.questions();
        let mut applies = vec![false; qs.len()];
        let mut env = BTreeMap::new();
        for &i in self.pack.order() {
            let q = &qs[i];
            let ok = match &q.depends_on {
                None => true,
                // An evaluation error means the condition cannot hold.
                Some(dep) => dep.holds(&env, "").unwrap_or(false),
            };
            applies[i] = ok;
            if ok {
                if let Some(v) = self.values.get(&q.id) {
                    env.insert(q.id.clone(), v.clone());
                }
            }
        }
        View { applies, env }
    }

    fn askable(&self, view: &View, i: usize) -> bool {
        let q = &self.pack.questions()[i];
        view.applies[i] && !self.values.contains_key(&q.id) && !self.state.skipped.contains(&q.id)
    }

    /// Whether question `id` currently applies (its `depends_on` holds).
    pub fn applies(&self, id: &str) -> bool {
        let view = self.view();
        self.pack
            .question_index(id)
            .is_some_and(|i| view.applies[i])
    }

    fn coverage_of(&self, view: &View) -> Coverage {
        let qs = self.pack.questions();
        let cats = self.pack.categories();
        let mut answered = vec![0usize; cats.len()];
        let mut applicable = vec![0usize; cats.len()];
        let mut missing_required = Vec::new();
        let mut complete = true;
        for (i, q) in qs.iter().enumerate() {
            if !view.applies[i] {
                continue;
            }
            let c = self.pack.category_of(i);
            applicable[c] += 1;
            if view.env.contains_key(&q.id) {
                answered[c] += 1;
            } else {
                if q.required {
                    missing_required.push(q.id.clone());
                }
                if !self.state.skipped.contains(&q.id) {
                    complete = false;
                }
            }
        }
        let mut num = 0usize;
        let mut den = 0usize;
        let categories = cats
            .iter()
            .enumerate()
            .map(|(c, cat)| {
                let target = cat.target as usize;
                let eff = target.min(applicable[c]);
                let covered = answered[c].min(eff);
                num += covered;
                den += eff;
                CategoryCoverage {
                    id: cat.id.clone(),
                    title: cat.title.clone(),
                    answered: answered[c],
                    target,
                    effective_target: eff,
                    ratio: if eff == 0 {
                        1.0
                    } else {
                        covered as f64 / eff as f64
                    },
                }
            })
            .collect();
        let mut maturity = (100 * num).checked_div(den).map_or(100, |m| m as u8);
        if !missing_required.is_empty() {
            maturity = maturity.min(99);
        }
        Coverage {
            categories,
            answered: answered.iter().sum(),
            applicable: applicable.iter().sum(),
            maturity,
            missing_required,
            complete,
        }
    }

    /// Coverage per category and the maturity score.
    pub fn coverage(&self) -> Coverage {
        self.coverage_of(&self.view())
    }

    fn next_index(&self, view: &View) -> Option<usize> {
        for id in &self.state.pending {
            if let Some(i) = self.pack.question_index(id) {
                if self.askable(view, i) {
                    return Some(i);
                }
            }
        }
        let cov = self.coverage_of(view);
        // Least covered category first (compare covered/target as fractions), then
        // pack order.
        let frac = |i: usize| {
            let c = &cov.categories[self.pack.category_of(i)];
            let eff = c.effective_target.max(1);
            (c.answered.min(eff), eff)
        };
        (0..self.pack.questions().len())
            .filter(|&i| self.askable(view, i))
            .min_by(|&a, &b| {
                let (na, da) = frac(a);
                let (nb, db) = frac(b);
                (na * db).cmp(&(nb * da)).then(a.cmp(&b))
            })
    }

    /// The next question to ask, or `None` when every question that applies is answered
    /// or skipped.
    pub fn next_question(&self) -> Option<&Question> {
        let view = self.view();
        self.next_index(&view).map(|i| &self.pack.questions()[i])
    }

    fn find(&self, id: &str) -> Result<usize, WizardError> {
        self.pack
            .question_index(id)
            .ok_or_else(|| WizardError::UnknownQuestion {
                pack: self.pack.id().to_string(),
                question: crate::error::snippet(id, 64),
            })
    }

    fn ensure_applies(&self, view: &View, i: usize) -> Result<(), WizardError> {
        if view.applies[i] {
            return Ok(());
        }
        let q = &self.pack.questions()[i];
        Err(WizardError::NotApplicable {
            question: q.id.clone(),
            condition: q
                .depends_on
                .as_ref()
                .map_or_else(String::new, |d| d.source().to_string()),
        })
    }

    /// Answer (or re-answer) a question with a JSON value of its answer type. The
    /// question must apply; its follow-ups whose condition now holds are asked next.
    pub fn answer(
        &mut self,
        id: &str,
        value: serde_json::Value,
    ) -> Result<AnswerOutcome, WizardError> {
        let i = self.find(id)?;
        let view = self.view();
        self.ensure_applies(&view, i)?;
        let pack = Arc::clone(&self.pack);
        let q = &pack.questions()[i];
        let checked = q.answer.check(&q.id, &value)?;
        let replaced = self.values.insert(q.id.clone(), checked).is_some();
        self.state.answers.insert(q.id.clone(), value);
        self.state.skipped.remove(&q.id);
        // Drop this question, and follow-ups an earlier answer to it queued: they are
        // queued again below if their condition still holds.
        self.state
            .pending
            .retain(|p| *p != q.id && !q.follow_ups.iter().any(|f| f.ask.contains(p)));

        let view = self.view();
        let mut queued = Vec::new();
        for f in &q.follow_ups {
            let fires = match &f.when {
                None => true,
                Some(w) => w.holds(&view.env, "").unwrap_or(false),
            };
            if fires {
                for a in &f.ask {
                    if !queued.contains(a) && !self.values.contains_key(a) {
                        queued.push(a.clone());
                    }
                }
            }
        }
        self.state.pending.retain(|p| !queued.contains(p));
        let mut pending = queued.clone();
        pending.append(&mut self.state.pending);
        self.state.pending = pending;

        let coverage = self.coverage_of(&view);
        let next = self
            .next_index(&view)
            .map(|n| pack.questions()[n].id.clone());
        Ok(AnswerOutcome {
            question: q.id.clone(),
            replaced,
            follow_ups: queued,
            next,
            coverage,
        })
    }

    /// Answer with a line of text as typed in a terminal (see
    /// [`crate::AnswerType::parse_text`]).
    pub fn answer_text(&mut self, id: &str, text: &str) -> Result<AnswerOutcome, WizardError> {
        let i = self.find(id)?;
        let q = &self.pack.questions()[i];
        let value = q.answer.parse_text(&q.id, text)?;
        self.answer(id, value)
    }

    /// Skip a question that is not required: it is not asked again unless answered
    /// later.
    pub fn skip(&mut self, id: &str) -> Result<(), WizardError> {
        let i = self.find(id)?;
        let q = &self.pack.questions()[i];
        if q.required {
            return Err(WizardError::Required {
                question: q.id.clone(),
            });
        }
        let qid = q.id.clone();
        self.values.remove(&qid);
        self.state.answers.remove(&qid);
        self.state.pending.retain(|p| *p != qid);
        self.state.skipped.insert(qid);
        Ok(())
    }

    /// Forget the answer to a question (it will be asked again).
    pub fn clear(&mut self, id: &str) -> Result<(), WizardError> {
        let i = self.find(id)?;
        let qid = self.pack.questions()[i].id.clone();
        self.values.remove(&qid);
        self.state.answers.remove(&qid);
        self.state.skipped.remove(&qid);
        Ok(())
    }

    /// Run the base fragments and every rule over the answers that count, validate the
    /// draft, and collect warnings and conflicts. Rules fire in pack order; later
    /// fragments override earlier ones.
    pub fn evaluate(&self) -> Result<Evaluation, WizardError> {
        let view = self.view();
        let pack = &self.pack;
        let mut spec = pack.initial_draft();
        for (j, f) in pack.base().iter().enumerate() {
            f.apply(&mut spec, &view.env, &format!("base[{j}]"))
                .map_err(|e| WizardError::Fragment {
                    rule: "base".into(),
                    field: e.field,
                    message: e.message,
                })?;
        }
        let mut fired = Vec::new();
        let mut warnings = Vec::new();
        let mut conflicts = Vec::new();
        for rule in pack.rules() {
            let ctx = format!("rule '{}'.when", rule.id);
            if !rule.when.holds(&view.env, &ctx)? {
                continue;
            }
            fired.push(rule.id.clone());
            for (j, f) in rule.then.iter().enumerate() {
                f.apply(&mut spec, &view.env, &format!("then[{j}]"))
                    .map_err(|e| WizardError::Fragment {
                        rule: format!("rule '{}'", rule.id),
                        field: e.field,
                        message: e.message,
                    })?;
            }
            if let Some(w) = &rule.warn {
                warnings.push(Finding {
                    rule: rule.id.clone(),
                    message: fill(pack, w, &view.env),
                });
            }
            if let Some(c) = &rule.conflict {
                conflicts.push(Finding {
                    rule: rule.id.clone(),
                    message: fill(pack, c, &view.env),
                });
            }
        }
        spec.validate().map_err(|source| WizardError::Draft {
            fired: if fired.is_empty() {
                "none".into()
            } else {
                fired.join(", ")
            },
            source,
        })?;
        Ok(Evaluation {
            spec,
            warnings,
            conflicts,
            fired_rules: fired,
            coverage: self.coverage_of(&view),
        })
    }
}

/// An answer as people read it: option labels for choices, `yes`/`no`, plain numbers.
fn display(pack: &Pack, id: &str, v: &Value) -> String {
    let options = match pack.question(id).map(|q| &q.answer) {
        Some(AnswerType::Choice { options }) | Some(AnswerType::MultiChoice { options, .. }) => {
            options
        }
        _ => return v.to_string(),
    };
    let label = |v: &Value| match v {
        Value::Str(s) => options
            .iter()
            .find(|o| o.value == *s)
            .map_or_else(|| s.clone(), |o| o.label.clone()),
        other => other.to_string(),
    };
    match v {
        Value::List(items) => items.iter().map(label).collect::<Vec<_>>().join(", "),
        other => label(other),
    }
}

/// Replace `{question_id}` placeholders with the answers (people-facing rendering).
/// Braces around anything that is not an identifier stay as they are.
fn fill(pack: &Pack, msg: &str, env: &BTreeMap<String, Value>) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let id = &after[..name_len];
            let v = env.get(id).cloned().unwrap_or(Value::Null);
            out.push_str(&display(pack, id, &v));
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        self.pack.id() == other.pack.id() && self.state == other.state
    }
}
