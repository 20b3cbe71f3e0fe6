//! Evaluator of the expression language over answer values.
//!
//! Semantics: `null` (an unanswered question) propagates through arithmetic, every
//! comparison (`==` and `!=` included: "unanswered" is neither equal nor unequal to
//! anything; test it with `answered(q)`), `in` and most functions; `and`/`or` are
//! three-valued and short-circuit; `if(c, a, b)` takes `b` when `c` is `null`;
//! `coalesce` gives its first non-null argument; `answered` is never `null`. Operand types that do not fit are errors naming the operator's position.
//!
//! Must never: panic, produce a non-finite number, or build text or lists longer than
//! [`MAX_VALUE_LEN`]. Recursion is bounded by the tree depth the parser enforces.

use super::{Answers, BinOp, ExprError, Func, Node, NodeKind, UnOp, Value, MAX_VALUE_LEN};

type R = Result<Value, ExprError>;

pub(crate) fn eval(node: &Node, env: &dyn Answers) -> R {
    match &node.kind {
        NodeKind::Lit(v) => Ok(v.clone()),
        NodeKind::Ref(id) => Ok(env.get(id).cloned().unwrap_or(Value::Null)),
        NodeKind::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for n in items {
                out.push(eval(n, env)?);
            }
            Ok(Value::List(out))
        }
        NodeKind::Unary(op, a) => {
            let v = eval(a, env)?;
            match (op, v) {
                (_, Value::Null) => Ok(Value::Null),
                (UnOp::Neg, Value::Num(n)) => Ok(Value::Num(-n)),
                (UnOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                (UnOp::Neg, v) => Err(ExprError::new(
                    node.span,
                    format!("'-' needs a number, got {}", v.type_name()),
                )),
                (UnOp::Not, v) => Err(ExprError::new(
                    node.span,
                    format!("'not' needs true or false, got {}", v.type_name()),
                )),
            }
        }
        NodeKind::Binary(op, a, b) => binary(node, *op, a, b, env),
        NodeKind::Call(f, args) => call(node, *f, args, env),
    }
}

fn logic(node: &Node, op: BinOp, v: &Value) -> Result<Option<bool>, ExprError> {
    match v {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Null => Ok(None),
        other => Err(ExprError::new(
            node.span,
            format!(
                "'{}' needs true or false on both sides, got {}",
                op.symbol(),
                other.type_name()
            ),
        )),
    }
}

fn binary(node: &Node, op: BinOp, a: &Node, b: &Node, env: &dyn Answers) -> R {
    if matches!(op, BinOp::And | BinOp::Or) {
        let short = op == BinOp::Or; // the value that decides on its own
        let l = logic(node, op, &eval(a, env)?)?;
        if l == Some(short) {
            return Ok(Value::Bool(short));
        }
        let r = logic(node, op, &eval(b, env)?)?;
        return Ok(match (l, r) {
            (_, Some(x)) if x == short => Value::Bool(short),
            (Some(_), Some(_)) => Value::Bool(!short),
            _ => Value::Null,
        });
    }
    let l = eval(a, env)?;
    let r = eval(b, env)?;
    if matches!(l, Value::Null) || matches!(r, Value::Null) {
        return Ok(Value::Null);
    }
    match op {
        BinOp::Eq => return Ok(Value::Bool(l == r)),
        BinOp::Ne => return Ok(Value::Bool(l != r)),
        _ => {}
    }
    let mismatch = |l: &Value, r: &Value| {
        ExprError::new(
            node.span,
            format!(
                "'{}' cannot combine {} and {}",
                op.symbol(),
                l.type_name(),
                r.type_name()
            ),
        )
    };
    match op {
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (&l, &r) {
                (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
                (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
                _ => return Err(mismatch(&l, &r)),
            };
            let Some(ord) = ord else {
                return Err(mismatch(&l, &r));
            };
            Ok(Value::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }
        BinOp::In | BinOp::NotIn => {
            let found = match (&l, &r) {
                (x, Value::List(items)) => items.contains(x),
                (Value::Str(x), Value::Str(y)) => y.contains(x.as_str()),
                _ => {
                    return Err(ExprError::new(
                        node.span,
                        format!(
                            "'{}' needs a list (or text) on the right, got {}",
                            op.symbol(),
                            r.type_name()
                        ),
                    ))
                }
            };
            Ok(Value::Bool(found == (op == BinOp::In)))
        }
        BinOp::Add => match (l, r) {
            (Value::Num(x), Value::Num(y)) => num(node, x + y),
            (Value::Str(mut x), Value::Str(y)) => {
                if x.len() + y.len() > MAX_VALUE_LEN {
                    return Err(too_long(node));
                }
                x.push_str(&y);
                Ok(Value::Str(x))
            }
            (Value::List(mut x), Value::List(y)) => {
                if x.len() + y.len() > MAX_VALUE_LEN {
                    return Err(too_long(node));
                }
                x.extend(y);
                Ok(Value::List(x))
            }
            (l, r) => Err(mismatch(&l, &r)),
        },
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
            let (Value::Num(x), Value::Num(y)) = (&l, &r) else {
                return Err(mismatch(&l, &r));
            };
            let (x, y) = (*x, *y);
            if matches!(op, BinOp::Div | BinOp::Rem) && y == 0.0 {
                return Err(ExprError::new(node.span, "division by zero"));
            }
            num(
                node,
                match op {
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div => x / y,
                    _ => x % y,
                },
            )
        }
        // And, Or, Eq, Ne are handled above.
        _ => Err(mismatch(&l, &r)),
    }
}

fn num(node: &Node, x: f64) -> R {
    if x.is_finite() {
        Ok(Value::Num(x))
    } else {
        Err(ExprError::new(
            node.span,
            "the result is not a finite number",
        ))
    }
}

fn too_long(node: &Node) -> ExprError {
    ExprError::new(
        node.span,
        format!("the result would be longer than {MAX_VALUE_LEN}"),
    )
}

fn want_num(node: &Node, f: Func, v: &Value) -> Result<f64, ExprError> {
    match v {
        Value::Num(n) => Ok(*n),
        other => Err(ExprError::new(
            node.span,
            format!("{}() needs numbers, got {}", f.name(), other.type_name()),
        )),
    }
}

fn call(node: &Node, f: Func, args: &[Node], env: &dyn Answers) -> R {
    // Lazy functions first.
    match f {
        Func::Answered => {
            return Ok(Value::Bool(match args.first().map(|a| &a.kind) {
                Some(NodeKind::Ref(id)) => env.get(id).is_some_and(|v| *v != Value::Null),
                _ => false,
            }))
        }
        Func::If => {
            let [c, a, b] = args else {
                return Err(ExprError::new(node.span, "if() takes 3 arguments"));
            };
            return match eval(c, env)? {
                Value::Bool(true) => eval(a, env),
                Value::Bool(false) | Value::Null => eval(b, env),
                other => Err(ExprError::new(
                    c.span,
                    format!(
                        "if() needs true or false as its condition, got {}",
                        other.type_name()
                    ),
                )),
            };
        }
        Func::Coalesce => {
            for a in args {
                let v = eval(a, env)?;
                if v != Value::Null {
                    return Ok(v);
                }
            }
            return Ok(Value::Null);
        }
        _ => {}
    }
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(eval(a, env)?);
    }
    if vals.contains(&Value::Null) {
        return Ok(Value::Null);
    }
    let arg = |i: usize| vals.get(i).unwrap_or(&Value::Null);
    match f {
        Func::Len => match arg(0) {
            Value::Str(s) => Ok(Value::Num(s.chars().count() as f64)),
            Value::List(l) => Ok(Value::Num(l.len() as f64)),
            other => Err(ExprError::new(
                node.span,
                format!("len() needs text or a list, got {}", other.type_name()),
            )),
        },
        Func::Contains => match (arg(0), arg(1)) {
            (Value::List(l), x) => Ok(Value::Bool(l.contains(x))),
            (Value::Str(s), Value::Str(x)) => Ok(Value::Bool(s.contains(x.as_str()))),
            (a, b) => Err(ExprError::new(
                node.span,
                format!(
                    "contains() needs a list (or text and text), got {} and {}",
                    a.type_name(),
                    b.type_name()
                ),
            )),
        },
        Func::Min | Func::Max => {
            let items: &[Value] = match vals.as_slice() {
                [Value::List(l)] => l,
                all => all,
            };
            let mut best: Option<f64> = None;
            for v in items {
                let x = match v {
                    Value::Null => return Ok(Value::Null),
                    v => want_num(node, f, v)?,
                };
                best = Some(match best {
                    None => x,
                    Some(b) if f == Func::Min => b.min(x),
                    Some(b) => b.max(x),
                });
            }
            best.map(Value::Num).ok_or_else(|| {
                ExprError::new(node.span, format!("{}() of an empty list", f.name()))
            })
        }
        Func::Abs | Func::Round | Func::Floor | Func::Ceil => {
            let x = want_num(node, f, arg(0))?;
            Ok(Value::Num(match f {
                Func::Abs => x.abs(),
                Func::Round => x.round(),
                Func::Floor => x.floor(),
                _ => x.ceil(),
            }))
        }
        Func::Pow => {
            let x = want_num(node, f, arg(0))?;
            let y = want_num(node, f, arg(1))?;
            num(node, x.powf(y))
        }
        Func::Clamp => {
            let x = want_num(node, f, arg(0))?;
            let lo = want_num(node, f, arg(1))?;
            let hi = want_num(node, f, arg(2))?;
            if lo > hi {
                return Err(ExprError::new(
                    node.span,
                    format!("clamp() bounds are reversed ({lo} > {hi})"),
                ));
            }
            Ok(Value::Num(x.clamp(lo, hi)))
        }
        Func::Slug | Func::Lower => match arg(0) {
            Value::Str(s) if f == Func::Slug => Ok(Value::Str(super::slugify(s))),
            Value::Str(s) => Ok(Value::Str(s.to_lowercase())),
            other => Err(ExprError::new(
                node.span,
                format!("{}() needs text, got {}", f.name(), other.type_name()),
            )),
        },
        Func::Str => {
            let s = arg(0).to_string();
            if s.len() > MAX_VALUE_LEN {
                return Err(too_long(node));
            }
            Ok(Value::Str(s))
        }
        Func::Answered | Func::If | Func::Coalesce => Ok(Value::Null),
    }
}
