//! Load-time checking of expressions against a pack's questions: every identifier must be
//! a question id, operand types must be able to work (an answer may always be `null`, so
//! `null` fits anywhere), and a text literal compared with a choice question must be one
//! of its option values (a typo there would silently never match).
//!
//! Must never: evaluate anything or reject an expression that can work for some answers.

use super::{BinOp, ExprError, Func, Node, NodeKind, UnOp, Value};

/// Static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Always `null`.
    Null,
    /// `true`/`false` (or `null`).
    Bool,
    /// A number (or `null`).
    Num,
    /// Text (or `null`).
    Str,
    /// A list (or `null`).
    List,
    /// Not known until evaluated.
    Any,
}

impl Ty {
    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Null => "null",
            Ty::Bool => "true/false",
            Ty::Num => "a number",
            Ty::Str => "text",
            Ty::List => "a list",
            Ty::Any => "any value",
        }
    }

    /// Whether a value of this static type may be used where `want` is needed.
    pub fn fits(self, want: Ty) -> bool {
        self == want || matches!(self, Ty::Null | Ty::Any) || want == Ty::Any
    }

    fn concrete(self) -> bool {
        !matches!(self, Ty::Null | Ty::Any)
    }

    fn of(v: &Value) -> Ty {
        match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Bool,
            Value::Num(_) => Ty::Num,
            Value::Str(_) => Ty::Str,
            Value::List(_) => Ty::List,
        }
    }
}

/// What the checker knows about a question id.
#[derive(Debug, Clone, PartialEq)]
pub struct RefInfo {
    /// Type of its answer.
    pub ty: Ty,
    /// Option values for choice and multiple-choice questions.
    pub options: Option<Vec<String>>,
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<RefInfo>;

pub(crate) fn check(node: &Node, lookup: Lookup<'_>) -> Result<Ty, ExprError> {
    let err = |m: String| Err(ExprError::new(node.span, m));
    match &node.kind {
        NodeKind::Lit(v) => Ok(Ty::of(v)),
        NodeKind::Ref(id) => match lookup(id) {
            Some(info) => Ok(info.ty),
            None => err(format!("unknown question '{id}'")),
        },
        NodeKind::List(items) => {
            for n in items {
                check(n, lookup)?;
            }
            Ok(Ty::List)
        }
        NodeKind::Unary(op, a) => {
            let t = check(a, lookup)?;
            let (want, sym) = match op {
                UnOp::Neg => (Ty::Num, "-"),
                UnOp::Not => (Ty::Bool, "not"),
            };
            if !t.fits(want) {
                return err(format!("'{sym}' needs {}, got {}", want.name(), t.name()));
            }
            Ok(want)
        }
        NodeKind::Binary(op, a, b) => {
            let ta = check(a, lookup)?;
            let tb = check(b, lookup)?;
            binary(node, *op, a, b, ta, tb, lookup)
        }
        NodeKind::Call(f, args) => {
            let mut tys = Vec::with_capacity(args.len());
            for a in args {
                tys.push(check(a, lookup)?);
            }
            call(node, *f, args, &tys, lookup)
        }
    }
}

/// Options of the choice question `n` refers to, if it is a bare reference to one.
fn options_of(n: &Node, lookup: Lookup<'_>) -> Option<(String, Vec<String>)> {
    match &n.kind {
        NodeKind::Ref(id) => lookup(id).and_then(|i| i.options.map(|o| (id.clone(), o))),
        _ => None,
    }
}

fn check_option(lit: &Node, q: &(String, Vec<String>)) -> Result<(), ExprError> {
    if let NodeKind::Lit(Value::Str(s)) = &lit.kind {
        if !q.1.contains(s) {
            return Err(ExprError::new(
                lit.span,
                format!(
                    "'{s}' is not an option of question '{}' (options: {})",
                    q.0,
                    q.1.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn check_option_list(list: &Node, q: &(String, Vec<String>)) -> Result<(), ExprError> {
    if let NodeKind::List(items) = &list.kind {
        for it in items {
            check_option(it, q)?;
        }
    }
    Ok(())
}

fn binary(
    node: &Node,
    op: BinOp,
    a: &Node,
    b: &Node,
    ta: Ty,
    tb: Ty,
    lookup: Lookup<'_>,
) -> Result<Ty, ExprError> {
    let mismatch = || {
        Err(ExprError::new(
            node.span,
            format!(
                "'{}' cannot combine {} and {}",
                op.symbol(),
                ta.name(),
                tb.name()
            ),
        ))
    };
    match op {
        BinOp::And | BinOp::Or => {
            if ta.fits(Ty::Bool) && tb.fits(Ty::Bool) {
                Ok(Ty::Bool)
            } else {
                mismatch()
            }
        }
        BinOp::Eq | BinOp::Ne => {
            if ta == Ty::Null || tb == Ty::Null {
                return Err(ExprError::new(
                    node.span,
                    "comparing with null is never true; use answered(q) to test for an answer",
                ));
            }
            if ta.concrete() && tb.concrete() && ta != tb {
                return Err(ExprError::new(
                    node.span,
                    format!("comparing {} with {} is never true", ta.name(), tb.name()),
                ));
            }
            if let Some(q) = options_of(a, lookup) {
                check_option(b, &q)?;
            }
            if let Some(q) = options_of(b, lookup) {
                check_option(a, &q)?;
            }
            Ok(Ty::Bool)
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ok =
                (ta.fits(Ty::Num) && tb.fits(Ty::Num)) || (ta.fits(Ty::Str) && tb.fits(Ty::Str));
            if ok {
                Ok(Ty::Bool)
            } else {
                mismatch()
            }
        }
        BinOp::In | BinOp::NotIn => {
            let ok = tb.fits(Ty::List) || (tb == Ty::Str && ta.fits(Ty::Str));
            if !ok {
                return Err(ExprError::new(
                    node.span,
                    format!(
                        "'{}' needs a list (or text) on the right, got {}",
                        op.symbol(),
                        tb.name()
                    ),
                ));
            }
            if let Some(q) = options_of(b, lookup) {
                check_option(a, &q)?;
            }
            if let Some(q) = options_of(a, lookup) {
                check_option_list(b, &q)?;
            }
            Ok(Ty::Bool)
        }
        BinOp::Add => match (ta, tb) {
            (x, y) if x.concrete() && y.concrete() => {
                if x == y && matches!(x, Ty::Num | Ty::Str | Ty::List) {
                    Ok(x)
                } else {
                    mismatch()
                }
            }
            (x, y) if x.concrete() || y.concrete() => {
                let t = if x.concrete() { x } else { y };
                if matches!(t, Ty::Num | Ty::Str | Ty::List) {
                    Ok(t)
                } else {
                    mismatch()
                }
            }
            _ => Ok(Ty::Any),
        },
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
            if ta.fits(Ty::Num) && tb.fits(Ty::Num) {
                Ok(Ty::Num)
            } else {
                mismatch()
            }
        }
    }
}

fn unify(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        (x, y) if x == y => x,
        (Ty::Null, y) => y,
        (x, Ty::Null) => x,
        _ => Ty::Any,
    }
}

fn call(
    node: &Node,
    f: Func,
    args: &[Node],
    tys: &[Ty],
    lookup: Lookup<'_>,
) -> Result<Ty, ExprError> {
    let want = |i: usize, t: Ty| -> Result<(), ExprError> {
        let got = tys.get(i).copied().unwrap_or(Ty::Any);
        if got.fits(t) {
            Ok(())
        } else {
            let span = args.get(i).map_or(node.span, |a| a.span);
            Err(ExprError::new(
                span,
                format!(
                    "{}() needs {} as argument {}, got {}",
                    f.name(),
                    t.name(),
                    i + 1,
                    got.name()
                ),
            ))
        }
    };
    match f {
        Func::Answered => Ok(Ty::Bool),
        Func::Len => {
            let t = tys.first().copied().unwrap_or(Ty::Any);
            if t.fits(Ty::Str) || t.fits(Ty::List) {
                Ok(Ty::Num)
            } else {
                want(0, Ty::List).map(|_| Ty::Num)
            }
        }
        Func::Contains => {
            let t = tys.first().copied().unwrap_or(Ty::Any);
            if t == Ty::Str {
                want(1, Ty::Str)?;
            } else {
                want(0, Ty::List)?;
            }
            if let (Some(first), Some(second)) = (args.first(), args.get(1)) {
                if let Some(q) = options_of(first, lookup) {
                    check_option(second, &q)?;
                }
            }
            Ok(Ty::Bool)
        }
        Func::Min | Func::Max => {
            if tys.len() == 1 && tys[0] == Ty::List {
                return Ok(Ty::Num);
            }
            for i in 0..tys.len() {
                want(i, Ty::Num)?;
            }
            Ok(Ty::Num)
        }
        Func::Abs | Func::Round | Func::Floor | Func::Ceil => {
            want(0, Ty::Num)?;
            Ok(Ty::Num)
        }
        Func::Pow => {
            want(0, Ty::Num)?;
            want(1, Ty::Num)?;
            Ok(Ty::Num)
        }
        Func::Clamp => {
            for i in 0..3 {
                want(i, Ty::Num)?;
            }
            Ok(Ty::Num)
        }
        Func::If => {
            want(0, Ty::Bool)?;
            Ok(unify(
                tys.get(1).copied().unwrap_or(Ty::Any),
                tys.get(2).copied().unwrap_or(Ty::Any),
            ))
        }
        Func::Coalesce => Ok(tys.iter().copied().fold(Ty::Null, unify)),
        Func::Slug | Func::Lower => {
            want(0, Ty::Str)?;
            Ok(Ty::Str)
        }
        Func::Str => Ok(Ty::Str),
    }
}
