//! The crate's one error type. Every message names what is at fault: the pack file and
//! the field path (with the question or rule id), the position in an expression, or the
//! question and what its answer should have been.
//!
//! Must never: carry secrets or whole documents (snippets of user text are truncated).

use tutti_spec::SpecError;

/// Everything that can go wrong while loading packs, answering questions or drafting a spec.
#[derive(Debug, thiserror::Error)]
pub enum WizardError {
    /// A pack file or directory could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// The file or directory.
        file: String,
        /// The operating system's reason.
        message: String,
    },
    /// A pack file is not valid JSON of the pack format (syntax, unknown field, wrong
    /// type, missing field, or an expression that does not parse).
    #[error("{file}: {path}: {message}")]
    PackFormat {
        /// The pack file name.
        file: String,
        /// The field path, e.g. `questions[3] (id 'tick_rate').answer.min`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A pack file parsed but breaks a rule of the format (duplicate ids, unknown
    /// references, cycles, out-of-range targets, …).
    #[error("{file}: {location}: {message}")]
    PackInvalid {
        /// The pack file name.
        file: String,
        /// Where in the pack, e.g. `rules[2] (id 'wifi-load').when`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// An expression is wrong: a syntax error, an unknown question or function, a type
    /// error found when the pack is loaded, or an error while evaluating it.
    #[error("{context}: column {column} of `{text}`: {message}")]
    Expression {
        /// Where the expression lives (`file: rules[2] (id 'x').when`, `rule 'x'.when`).
        context: String,
        /// 1-based column (in characters) of the offending part.
        column: usize,
        /// The expression text (truncated to 80 characters).
        text: String,
        /// What is wrong.
        message: String,
    },
    /// Two pack files declare the same pack id.
    #[error("pack id '{id}' is declared by both {first} and {second}")]
    DuplicatePack {
        /// The pack id.
        id: String,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// No pack with this id is loaded.
    #[error("unknown pack '{id}'")]
    UnknownPack {
        /// The id asked for.
        id: String,
    },
    /// The pack has no question with this id.
    #[error("pack '{pack}' has no question '{question}'")]
    UnknownQuestion {
        /// The pack id.
        pack: String,
        /// The question id asked for.
        question: String,
    },
    /// An answer does not fit its question's answer type.
    #[error("question '{question}': expected {expected}, got {got}")]
    InvalidAnswer {
        /// The question id.
        question: String,
        /// What the question accepts, e.g. `a whole number from 1 to 100000`.
        expected: String,
        /// What was given (truncated).
        got: String,
    },
    /// The question's `depends_on` condition does not hold for the current answers.
    #[error("question '{question}' does not apply: its condition `{condition}` does not hold")]
    NotApplicable {
        /// The question id.
        question: String,
        /// The condition's source text.
        condition: String,
    },
    /// A required question cannot be skipped.
    #[error("question '{question}' is required and cannot be skipped")]
    Required {
        /// The question id.
        question: String,
    },
    /// A rule's spec fragment could not be applied to the draft.
    #[error("{rule}: {field}: {message}")]
    Fragment {
        /// `base` or `rule 'id'`.
        rule: String,
        /// Path of the fragment field, e.g. `then[1].param.max`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The rules produced a draft spec that `PieceSpec::validate` refuses.
    #[error("the drafted spec is invalid (rules fired: {fired}): {source}")]
    Draft {
        /// The rules that fired, comma separated (`none` when no rule fired).
        fired: String,
        /// The spec's validation error, naming the field.
        source: SpecError,
    },
    /// A stored session does not belong to this pack or holds answers the pack refuses.
    #[error("cannot resume session: {message}")]
    Resume {
        /// What does not match.
        message: String,
    },
}

/// Truncate user-supplied text for an error message.
pub(crate) fn snippet(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}
