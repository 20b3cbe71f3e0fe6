//! Recursive-descent parser of the expression language into a syntax tree. Binary
//! operators of one precedence level are parsed in a loop; recursion happens only for
//! brackets, lists, calls and unary operators, and is bounded by [`MAX_NESTING`]; the
//! tree depth is bounded by [`MAX_TREE_DEPTH`], so evaluating and dropping the tree
//! recurse boundedly too. A binary node's span is its operator's, so errors point at
//! the operator.
//!
//! Must never: panic on any input, or accept an unknown function or a wrong number of
//! arguments.

use super::lexer::{tokenize, Tok};
use super::{
    BinOp, ExprError, Func, Node, NodeKind, Span, UnOp, Value, MAX_EXPR_LEN, MAX_NESTING,
    MAX_TREE_DEPTH,
};

pub(crate) fn parse(src: &str) -> Result<Node, ExprError> {
    if src.len() > MAX_EXPR_LEN {
        return Err(ExprError::new(
            Span {
                start: 0,
                end: src.len(),
            },
            format!(
                "expression is {} bytes long; the limit is {MAX_EXPR_LEN}",
                src.len()
            ),
        ));
    }
    if src.trim().is_empty() {
        return Err(ExprError::new(
            Span { start: 0, end: 0 },
            "expression is empty",
        ));
    }
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        nesting: 0,
    };
    let node = p.or()?;
    let (tok, span) = p.peek();
    if *tok != Tok::Eof {
        let msg = if matches!(
            tok,
            Tok::EqEq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
        ) || matches!(tok, Tok::Ident(k) if k == "in")
        {
            "comparisons cannot be chained; join them with 'and'".to_string()
        } else {
            format!("unexpected {} after a complete expression", tok.describe())
        };
        return Err(ExprError::new(span, msg));
    }
    Ok(node)
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    nesting: usize,
}

const KEYWORDS: [&str; 7] = ["and", "or", "not", "in", "true", "false", "null"];

/// Whether `s` is a keyword of the language (not usable as a question id).
pub(crate) fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s)
}

fn node(kind: NodeKind, span: Span) -> Result<Node, ExprError> {
    let child_depth = match &kind {
        NodeKind::Lit(_) | NodeKind::Ref(_) => 0,
        NodeKind::List(items) | NodeKind::Call(_, items) => {
            items.iter().map(|c| c.depth).max().unwrap_or(0)
        }
        NodeKind::Unary(_, a) => a.depth,
        NodeKind::Binary(_, a, b) => a.depth.max(b.depth),
    };
    let depth = 1 + child_depth;
    if depth > MAX_TREE_DEPTH {
        return Err(ExprError::new(
            span,
            format!("expression is nested too deeply (more than {MAX_TREE_DEPTH} levels)"),
        ));
    }
    Ok(Node { kind, span, depth })
}

fn join(a: Span, b: Span) -> Span {
    Span {
        start: a.start.min(b.start),
        end: a.end.max(b.end),
    }
}

impl Parser {
    fn peek(&self) -> (&Tok, Span) {
        let i = self.pos.min(self.toks.len().saturating_sub(1));
        match self.toks.get(i) {
            Some((t, s)) => (t, *s),
            None => (&Tok::Eof, Span { start: 0, end: 0 }),
        }
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|(t, _)| t)
    }

    fn bump(&mut self) -> (Tok, Span) {
        let (t, s) = self.peek();
        let out = (t.clone(), s);
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        out
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek().0, Tok::Ident(s) if s == kw)
    }

    fn enter(&mut self, span: Span) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ExprError::new(
                span,
                format!("expression is nested too deeply (more than {MAX_NESTING} levels of brackets, calls or unary operators)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<Span, ExprError> {
        let (t, s) = self.peek();
        if *t == want {
            self.bump();
            Ok(s)
        } else {
            Err(ExprError::new(
                s,
                format!("expected {what}, found {}", t.describe()),
            ))
        }
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        let mut left = self.and()?;
        while self.is_kw("or") {
            let (_, span) = self.bump();
            let right = self.and()?;
            left = node(
                NodeKind::Binary(BinOp::Or, Box::new(left), Box::new(right)),
                span,
            )?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut left = self.not()?;
        while self.is_kw("and") {
            let (_, span) = self.bump();
            let right = self.not()?;
            left = node(
                NodeKind::Binary(BinOp::And, Box::new(left), Box::new(right)),
                span,
            )?;
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, ExprError> {
        if self.is_kw("not") {
            let (_, s) = self.bump();
            self.enter(s)?;
            let inner = self.not();
            self.leave();
            let inner = inner?;
            let span = join(s, inner.span);
            return node(NodeKind::Unary(UnOp::Not, Box::new(inner)), span);
        }
        self.compare()
    }

    fn compare_op(&self) -> Option<(BinOp, usize)> {
        let op = match self.peek().0 {
            Tok::EqEq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Lt => BinOp::Lt,
            Tok::Le => BinOp::Le,
            Tok::Gt => BinOp::Gt,
            Tok::Ge => BinOp::Ge,
            Tok::Ident(k) if k == "in" => BinOp::In,
            Tok::Ident(k)
                if k == "not" && matches!(self.peek_at(1), Some(Tok::Ident(n)) if n == "in") =>
            {
                return Some((BinOp::NotIn, 2))
            }
            _ => return None,
        };
        Some((op, 1))
    }

    fn compare(&mut self) -> Result<Node, ExprError> {
        let left = self.sum()?;
        let Some((op, ntoks)) = self.compare_op() else {
            return Ok(left);
        };
        let (_, mut span) = self.bump();
        if ntoks == 2 {
            span.end = self.bump().1.end;
        }
        let right = self.sum()?;
        if let Some((_, _)) = self.compare_op() {
            return Err(ExprError::new(
                self.peek().1,
                "comparisons cannot be chained; join them with 'and'",
            ));
        }
        node(NodeKind::Binary(op, Box::new(left), Box::new(right)), span)
    }

    fn sum(&mut self) -> Result<Node, ExprError> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek().0 {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(left),
            };
            let (_, span) = self.bump();
            let right = self.product()?;
            left = node(NodeKind::Binary(op, Box::new(left), Box::new(right)), span)?;
        }
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek().0 {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ => return Ok(left),
            };
            let (_, span) = self.bump();
            let right = self.unary()?;
            left = node(NodeKind::Binary(op, Box::new(left), Box::new(right)), span)?;
        }
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if *self.peek().0 == Tok::Minus {
            let (_, s) = self.bump();
            self.enter(s)?;
            let inner = self.unary();
            self.leave();
            let inner = inner?;
            // Fold a literal number so `-3` is a literal.
            if let NodeKind::Lit(Value::Num(n)) = inner.kind {
                return node(NodeKind::Lit(Value::Num(-n)), join(s, inner.span));
            }
            let span = join(s, inner.span);
            return node(NodeKind::Unary(UnOp::Neg, Box::new(inner)), span);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let (tok, span) = self.bump();
        match tok {
            Tok::Num(n) => node(NodeKind::Lit(Value::Num(n)), span),
            Tok::Str(s) => node(NodeKind::Lit(Value::Str(s)), span),
            Tok::LParen => {
                self.enter(span)?;
                let inner = self.or();
                self.leave();
                let inner = inner?;
                self.expect(Tok::RParen, "')' to close '('")?;
                Ok(inner)
            }
            Tok::LBracket => {
                self.enter(span)?;
                let items = self.items(Tok::RBracket, "']'");
                self.leave();
                let (items, close) = items?;
                node(NodeKind::List(items), join(span, close))
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => node(NodeKind::Lit(Value::Bool(true)), span),
                "false" => node(NodeKind::Lit(Value::Bool(false)), span),
                "null" => node(NodeKind::Lit(Value::Null), span),
                kw if is_keyword(kw) => Err(ExprError::new(
                    span,
                    format!("expected a value, found the keyword '{kw}'"),
                )),
                _ if *self.peek().0 == Tok::LParen => self.call(name, span),
                _ => node(NodeKind::Ref(name), span),
            },
            other => Err(ExprError::new(
                span,
                format!("expected a value, found {}", other.describe()),
            )),
        }
    }

    fn call(&mut self, name: String, name_span: Span) -> Result<Node, ExprError> {
        let Some((func, lo, hi)) = Func::lookup(&name) else {
            let known: Vec<&str> = Func::ALL.iter().map(|(n, ..)| *n).collect();
            return Err(ExprError::new(
                name_span,
                format!("unknown function '{name}' (known: {})", known.join(", ")),
            ));
        };
        self.bump(); // '('
        self.enter(name_span)?;
        let items = self.items(Tok::RParen, "')'");
        self.leave();
        let (args, close) = items?;
        let span = join(name_span, close);
        if args.len() < lo || args.len() > hi {
            let want = if lo == hi {
                format!("{lo}")
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(ExprError::new(
                span,
                format!(
                    "{name}() takes {want} argument{}, got {}",
                    if want == "1" { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        if func == Func::Answered && !matches!(args[0].kind, NodeKind::Ref(_)) {
            return Err(ExprError::new(
                args[0].span,
                "answered() takes a question id, e.g. answered(tick_rate)",
            ));
        }
        node(NodeKind::Call(func, args), span)
    }

    /// Comma-separated expressions up to `close` (already past the opening bracket).
    fn items(&mut self, close: Tok, what: &str) -> Result<(Vec<Node>, Span), ExprError> {
        let mut items = Vec::new();
        if *self.peek().0 == close {
            let (_, s) = self.bump();
            return Ok((items, s));
        }
        loop {
            items.push(self.or()?);
            let (t, s) = self.peek();
            if *t == close {
                self.bump();
                return Ok((items, s));
            }
            if *t != Tok::Comma {
                return Err(ExprError::new(
                    s,
                    format!("expected ',' or {what}, found {}", t.describe()),
                ));
            }
            self.bump();
        }
    }
}
