//! The wizard's small expression language: conditions (`when`, `depends_on`, follow-up
//! `when`) and computed spec fields (`"=expr"`) are written in it, and Tutti really
//! parses, checks and evaluates them.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | compare
//! compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") sum)?
//! sum     := product (("+" | "-") product)*
//! product := unary (("*" | "/" | "%") unary)*
//! unary   := "-" unary | primary
//! primary := NUMBER | STRING | "true" | "false" | "null" | "[" (expr ("," expr)*)? "]"
//!          | IDENT "(" (expr ("," expr)*)? ")" | IDENT | "(" expr ")"
//! ```
//!
//! An `IDENT` on its own is a question id; its value is the answer (number, text,
//! boolean, or a list of option values for multiple choice) or `null` while unanswered.
//! `null` propagates through arithmetic and every comparison (so `q != "x"` does not
//! hold while `q` is unanswered; test that with `answered(q)`), and `and`/`or` use
//! three-valued logic (`false and null` is `false`, `true or null` is `true`); a
//! condition that ends as `null` counts as false.
//!
//! Limits: [`MAX_EXPR_LEN`] bytes of source, [`MAX_NESTING`] levels of brackets, unary
//! operators and calls, and [`MAX_TREE_DEPTH`] levels of syntax tree. Comparisons do not
//! chain (`a < b < c` is an error).
//!
//! Must never: panic on any input text or any answer values, recurse without a bound,
//! or touch anything outside the values it is given.

mod check;
mod eval;
mod lexer;
mod parser;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use check::{RefInfo, Ty};
pub(crate) use parser::is_keyword;

use crate::error::{snippet, WizardError};

/// Longest accepted expression source, in bytes.
pub const MAX_EXPR_LEN: usize = 2048;
/// Deepest accepted nesting of brackets, unary operators and calls.
pub const MAX_NESTING: usize = 32;
/// Deepest accepted syntax tree (e.g. at most 63 terms joined by `or`).
pub const MAX_TREE_DEPTH: usize = 64;
/// Longest text or list an expression may build at run time.
pub const MAX_VALUE_LEN: usize = 10_000;

/// A value an expression works with. Answers arrive as these values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// No value (an unanswered question, or `null`).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A finite number (integers are numbers too).
    Num(f64),
    /// Text (also the value of a single-choice answer).
    Str(String),
    /// A list (the value of a multiple-choice answer is a list of option values).
    List(Vec<Value>),
}

impl Value {
    /// The value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "text",
            Value::List(_) => "list",
        }
    }
}

impl fmt::Display for Value {
    /// People-facing rendering, used in warning messages and `str(x)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("(unanswered)"),
            Value::Bool(true) => f.write_str("yes"),
            Value::Bool(false) => f.write_str("no"),
            Value::Num(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    write!(f, "{}", *n as i64)
                } else {
                    write!(f, "{n}")
                }
            }
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
        }
    }
}

/// Where answer values come from when an expression is evaluated.
pub trait Answers {
    /// The answer to question `id`, or `None` while it is unanswered.
    fn get(&self, id: &str) -> Option<&Value>;
}

impl Answers for BTreeMap<String, Value> {
    fn get(&self, id: &str) -> Option<&Value> {
        BTreeMap::get(self, id)
    }
}

impl Answers for HashMap<String, Value> {
    fn get(&self, id: &str) -> Option<&Value> {
        HashMap::get(self, id)
    }
}

/// A byte range in the expression source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

/// The built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Answered,
    Len,
    Contains,
    Min,
    Max,
    Abs,
    Round,
    Floor,
    Ceil,
    Clamp,
    If,
    Coalesce,
    Slug,
    Lower,
    Str,
    Pow,
}

impl Func {
    /// `(name, function, min arity, max arity)`; `usize::MAX` = variadic.
    pub(crate) const ALL: [(&'static str, Func, usize, usize); 16] = [
        ("answered", Func::Answered, 1, 1),
        ("len", Func::Len, 1, 1),
        ("contains", Func::Contains, 2, 2),
        ("min", Func::Min, 1, usize::MAX),
        ("max", Func::Max, 1, usize::MAX),
        ("abs", Func::Abs, 1, 1),
        ("round", Func::Round, 1, 1),
        ("floor", Func::Floor, 1, 1),
        ("ceil", Func::Ceil, 1, 1),
        ("clamp", Func::Clamp, 3, 3),
        ("if", Func::If, 3, 3),
        ("coalesce", Func::Coalesce, 1, usize::MAX),
        ("slug", Func::Slug, 1, 1),
        ("lower", Func::Lower, 1, 1),
        ("str", Func::Str, 1, 1),
        ("pow", Func::Pow, 2, 2),
    ];

    pub(crate) fn lookup(name: &str) -> Option<(Func, usize, usize)> {
        Func::ALL
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|&(_, f, lo, hi)| (f, lo, hi))
    }

    pub(crate) fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map_or("?", |(n, ..)| n)
    }
}

/// The names of the built-in functions (for documentation and help texts).
pub fn function_names() -> impl Iterator<Item = &'static str> {
    Func::ALL.iter().map(|(n, ..)| *n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Lit(Value),
    List(Vec<Node>),
    Ref(String),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// One node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub span: Span,
    /// Depth of the subtree rooted here (a leaf is 1); bounded by [`MAX_TREE_DEPTH`].
    pub depth: usize,
}

/// A parsed expression: its source text and syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    src: String,
    root: Node,
}

/// An error inside an expression: where and what. Turned into
/// [`WizardError::Expression`] with a context by [`ExprError::into_error`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExprError {
    pub span: Span,
    pub message: String,
}

impl ExprError {
    pub(crate) fn new(span: Span, message: impl Into<String>) -> Self {
        ExprError {
            span,
            message: message.into(),
        }
    }

    pub(crate) fn into_error(self, context: &str, src: &str) -> WizardError {
        let start = self.span.start.min(src.len());
        let column = src.char_indices().take_while(|(i, _)| *i < start).count() + 1;
        WizardError::Expression {
            context: context.to_string(),
            column,
            text: snippet(src, 80),
            message: self.message,
        }
    }
}

impl Expr {
    /// Parse an expression. Syntax errors, unknown functions, wrong arity and the length
    /// and nesting limits are reported with the column; question ids are checked later
    /// by [`Expr::check`] against a pack.
    pub fn parse(src: &str) -> Result<Expr, WizardError> {
        Expr::parse_in(src, "expression")
    }

    /// [`Expr::parse`] with a context for the error message (e.g. `rule 'x'.when`).
    pub fn parse_in(src: &str, context: &str) -> Result<Expr, WizardError> {
        match parser::parse(src) {
            Ok(root) => Ok(Expr {
                src: src.to_string(),
                root,
            }),
            Err(e) => Err(e.into_error(context, src)),
        }
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Evaluate against the answers. Never panics; type mismatches, division by zero and
    /// non-finite results are errors naming the column.
    pub fn eval(&self, answers: &dyn Answers, context: &str) -> Result<Value, WizardError> {
        eval::eval(&self.root, answers).map_err(|e| e.into_error(context, &self.src))
    }

    /// Evaluate a condition: `true` holds; `false` and `null` do not; anything else is an
    /// error.
    pub fn holds(&self, answers: &dyn Answers, context: &str) -> Result<bool, WizardError> {
        match self.eval(answers, context)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            other => Err(ExprError::new(
                self.root.span,
                format!(
                    "a condition must give true or false, this gives {}",
                    other.type_name()
                ),
            )
            .into_error(context, &self.src)),
        }
    }

    /// Type-check against the questions (`lookup` gives each question id's type) and
    /// return the expression's static type. Unknown question ids, operand types that can
    /// never work, and text literals that are not options of the choice question they are
    /// compared with are errors.
    pub fn check(
        &self,
        lookup: &dyn Fn(&str) -> Option<RefInfo>,
        context: &str,
    ) -> Result<Ty, WizardError> {
        check::check(&self.root, lookup).map_err(|e| e.into_error(context, &self.src))
    }

    /// The question ids this expression refers to (each once, in order of appearance).
    pub fn references(&self) -> Vec<&str> {
        let mut out = Vec::new();
        collect_refs(&self.root, &mut out);
        out
    }
}

fn collect_refs<'a>(node: &'a Node, out: &mut Vec<&'a str>) {
    match &node.kind {
        NodeKind::Ref(id) => {
            if !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        NodeKind::Lit(_) => {}
        NodeKind::List(items) | NodeKind::Call(_, items) => {
            items.iter().for_each(|n| collect_refs(n, out));
        }
        NodeKind::Unary(_, a) => collect_refs(a, out),
        NodeKind::Binary(_, a, b) => {
            collect_refs(a, out);
            collect_refs(b, out);
        }
    }
}

impl Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.src)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let src = String::deserialize(d)?;
        Expr::parse_for_serde(&src).map_err(serde::de::Error::custom)
    }
}

impl Expr {
    /// Parse inside a deserializer: the message leaves out the context, because the
    /// deserializer's error already carries the field path.
    pub(crate) fn parse_for_serde(src: &str) -> Result<Expr, String> {
        parser::parse(src)
            .map(|root| Expr {
                src: src.to_string(),
                root,
            })
            .map_err(|e| match e.into_error("", src) {
                WizardError::Expression {
                    column,
                    text,
                    message,
                    ..
                } => format!("column {column} of `{text}`: {message}"),
                other => other.to_string(),
            })
    }
}

/// Lower-case URL-safe slug of a text: runs of anything but `a-z0-9` become one `-`,
/// at most 64 characters, `piece` when nothing is left.
pub fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if out.len() == 64 {
                break;
            }
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            if out.len() >= 63 {
                break;
            }
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("piece");
    }
    out
}
