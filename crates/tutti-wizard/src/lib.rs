//! Tutti's guided setup (the piece wizard): a performer answers questions from a
//! **domain pack** (electronic music, acoustic/orchestral, dance, theatre, installation,
//! DJ set, opera/voice, light and visuals), and the pack's **rules** turn the answers
//! into a draft [`tutti_spec::PieceSpec`] plus warnings and conflicts. It works fully
//! offline: no model, no network, just the pack and the answers.
//!
//! # Pack format (in brief; `packs/README.md` has the whole of it)
//! A pack is one JSON file: `format` (1), `id` (equal to the file stem), `title`,
//! `description`, `version`; `categories` (id, title, `target`: how many answered
//! questions cover it); `questions` (id, text, help, example, category, `answer` type:
//! `text`, `number{min,max,unit}`, `integer{min,max,unit}`, `boolean`,
//! `choice{options}`, `multi_choice{options,min,max}`; `required`; `depends_on`: a
//! condition over earlier answers; `follow_ups`: `{when, ask: [ids]}` asked right
//! after); `base` (spec fragments always applied); `rules` (`when` → `then` fragments,
//! `warn`, `conflict`). Fragments are one-key objects — `set`, `param`, `patch_param`,
//! `remove_param`, `map`, `zone`, `zones` — whose values are literals or computed
//! fields written `"=expression"`.
//!
//! # Expression grammar
//! ```text
//! expr    := or            or := and ("or" and)*          and := not ("and" not)*
//! not     := "not" not | compare
//! compare := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not in") sum)?
//! sum     := product (("+"|"-") product)*        product := unary (("*"|"/"|"%") unary)*
//! unary   := "-" unary | primary
//! primary := NUMBER | STRING | true | false | null | "[" list "]" | IDENT "(" list ")"
//!          | IDENT | "(" expr ")"
//! ```
//! Identifiers are question ids (their answers, `null` while unanswered); functions are
//! `answered(q)`, `len`, `contains`, `min`, `max`, `abs`, `round`, `floor`, `ceil`,
//! `clamp`, `pow`, `if`, `coalesce`, `slug`, `lower`, `str`. Expressions are type-checked when
//! the pack loads (unknown questions or functions, wrong arity, impossible types, choice
//! literals that are not options) and evaluated with three-valued logic over `null`.
//! See [`expr`] for limits and semantics.
//!
//! # Sessions
//! [`Session::next_question`] asks pending follow-ups first, then the question of the
//! least covered category (pack order breaks ties), skipping questions whose
//! `depends_on` does not hold. [`Session::coverage`] gives per-category coverage and a
//! 0–100 maturity score; [`Session::evaluate`] drafts the spec. [`SessionState`] is the
//! serialisable part to store and [`Session::resume`] from.
//!
//! Must never: use the network, read or write storage (beyond reading the pack files it
//! is pointed at), call a language model, or panic on user input (answers, pack files,
//! expressions, stored sessions).

pub mod answer;
mod error;
pub mod expr;
pub mod fragment;
pub mod pack;
mod session;

use std::path::Path;
use std::sync::Arc;

pub use answer::{AnswerType, ChoiceOption};
pub use error::WizardError;
pub use expr::{Expr, Value};
pub use fragment::{Field, Fragment};
pub use pack::{Category, FollowUp, Pack, Question, Rule};
pub use session::{
    AnswerOutcome, CategoryCoverage, Coverage, Evaluation, Finding, Session, SessionState,
};

/// The packs shipped with Tutti, as `(file name, JSON text)`, embedded at build time
/// from the repository's `packs/` directory.
pub const BUILTIN_PACK_FILES: &[(&str, &str)] = &[
    (
        "acoustic.json",
        include_str!("../../../packs/acoustic.json"),
    ),
    ("dance.json", include_str!("../../../packs/dance.json")),
    ("dj-set.json", include_str!("../../../packs/dj-set.json")),
    (
        "electronic.json",
        include_str!("../../../packs/electronic.json"),
    ),
    (
        "installation.json",
        include_str!("../../../packs/installation.json"),
    ),
    (
        "light-visuals.json",
        include_str!("../../../packs/light-visuals.json"),
    ),
    (
        "opera-voice.json",
        include_str!("../../../packs/opera-voice.json"),
    ),
    ("theatre.json", include_str!("../../../packs/theatre.json")),
];

/// Load and check the built-in packs.
pub fn builtin_packs() -> Result<Vec<Pack>, WizardError> {
    BUILTIN_PACK_FILES
        .iter()
        .map(|(name, text)| Pack::from_json(name, text))
        .collect()
}

/// A set of packs with distinct ids: start and resume sessions by pack id.
#[derive(Debug, Clone)]
pub struct Wizard {
    packs: Vec<Arc<Pack>>,
}

impl Wizard {
    /// A wizard over these packs; two packs with one id are refused.
    pub fn new(packs: Vec<Pack>) -> Result<Wizard, WizardError> {
        let mut out: Vec<Arc<Pack>> = Vec::with_capacity(packs.len());
        for p in packs {
            if let Some(other) = out.iter().find(|o| o.id() == p.id()) {
                return Err(WizardError::DuplicatePack {
                    id: p.id().to_string(),
                    first: other.file().to_string(),
                    second: p.file().to_string(),
                });
            }
            out.push(Arc::new(p));
        }
        Ok(Wizard { packs: out })
    }

    /// A wizard over the built-in packs.
    pub fn builtin() -> Result<Wizard, WizardError> {
        Wizard::new(builtin_packs()?)
    }

    /// The packs Tutti runs with: the built-in ones, overlaid by every `*.json` file of
    /// `dir` when one is configured (a file whose pack id is a built-in one replaces it;
    /// the others are added after the built-ins, in file name order). Any invalid file
    /// refuses the whole set, and the error names the file and the field.
    pub fn load(dir: Option<&Path>) -> Result<Wizard, WizardError> {
        let mut packs = builtin_packs()?;
        if let Some(dir) = dir {
            for p in Pack::load_dir(dir)? {
                match packs.iter_mut().find(|b| b.id() == p.id()) {
                    Some(slot) => *slot = p,
                    None => packs.push(p),
                }
            }
        }
        Wizard::new(packs)
    }

    /// The packs, in the order given.
    pub fn packs(&self) -> &[Arc<Pack>] {
        &self.packs
    }

    /// A pack by id.
    pub fn pack(&self, id: &str) -> Option<&Arc<Pack>> {
        self.packs.iter().find(|p| p.id() == id)
    }

    /// Start a session with the pack `id`.
    pub fn start(&self, id: &str) -> Result<Session, WizardError> {
        let pack = self.pack(id).ok_or_else(|| WizardError::UnknownPack {
            id: error::snippet(id, 64),
        })?;
        Ok(Session::new(Arc::clone(pack)))
    }

    /// Resume a stored session with its pack.
    pub fn resume(&self, state: SessionState) -> Result<Session, WizardError> {
        let pack = self
            .pack(&state.pack)
            .ok_or_else(|| WizardError::UnknownPack {
                id: error::snippet(&state.pack, 64),
            })?;
        Session::resume(Arc::clone(pack), state)
    }
}
