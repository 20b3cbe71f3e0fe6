//! Tokenizer of the expression language: numbers, quoted text, identifiers (keywords are
//! identifiers the parser recognises) and operators, each with its byte span.
//!
//! Must never: panic on any input (it walks `char_indices`, never slices inside a
//! character) or accept a number that is not finite.

use super::{ExprError, Span};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Tok {
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number {n}"),
            Tok::Str(s) => format!("text '{}'", crate::error::snippet(s, 20)),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Percent => "'%'".into(),
            Tok::EqEq => "'=='".into(),
            Tok::Ne => "'!='".into(),
            Tok::Lt => "'<'".into(),
            Tok::Le => "'<='".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Eof => "the end of the expression".into(),
        }
    }
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<(Tok, Span)>, ExprError> {
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some(&(start, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let single = |t: Tok| {
            (
                t,
                Span {
                    start,
                    end: start + 1,
                },
            )
        };
        let tok = match c {
            '(' | ')' | '[' | ']' | ',' | '+' | '-' | '*' | '/' | '%' => {
                it.next();
                single(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    ',' => Tok::Comma,
                    '+' => Tok::Plus,
                    '-' => Tok::Minus,
                    '*' => Tok::Star,
                    '/' => Tok::Slash,
                    _ => Tok::Percent,
                })
            }
            '=' | '!' | '<' | '>' => {
                it.next();
                let eq = matches!(it.peek(), Some(&(_, '=')));
                if eq {
                    it.next();
                }
                let span = Span {
                    start,
                    end: start + if eq { 2 } else { 1 },
                };
                let t = match (c, eq) {
                    ('=', true) => Tok::EqEq,
                    ('!', true) => Tok::Ne,
                    ('<', true) => Tok::Le,
                    ('>', true) => Tok::Ge,
                    ('<', false) => Tok::Lt,
                    ('>', false) => Tok::Gt,
                    ('=', false) => {
                        return Err(ExprError::new(span, "use '==' to compare ('=' alone)"))
                    }
                    _ => return Err(ExprError::new(span, "use 'not' for negation ('!' alone)")),
                };
                (t, span)
            }
            '"' | '\'' => lex_string(&mut it, start, c)?,
            c if c.is_ascii_digit() || c == '.' => lex_number(src, &mut it, start)?,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = start;
                while let Some(&(i, ch)) = it.peek() {
                    if ch.is_ascii_alphanumeric() || ch == '_' {
                        end = i + ch.len_utf8();
                        it.next();
                    } else {
                        break;
                    }
                }
                (Tok::Ident(src[start..end].to_string()), Span { start, end })
            }
            other => {
                return Err(ExprError::new(
                    Span {
                        start,
                        end: start + other.len_utf8(),
                    },
                    format!("unexpected character '{}'", other.escape_default()),
                ))
            }
        };
        out.push(tok);
    }
    out.push((
        Tok::Eof,
        Span {
            start: src.len(),
            end: src.len(),
        },
    ));
    Ok(out)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn lex_string(it: &mut Chars<'_>, start: usize, quote: char) -> Result<(Tok, Span), ExprError> {
    it.next();
    let mut s = String::new();
    loop {
        match it.next() {
            None => {
                return Err(ExprError::new(
                    Span {
                        start,
                        end: start + 1,
                    },
                    "text is not closed (missing quote)",
                ))
            }
            Some((i, c)) if c == quote => {
                return Ok((Tok::Str(s), Span { start, end: i + 1 }));
            }
            Some((i, '\\')) => match it.next() {
                Some((_, 'n')) => s.push('\n'),
                Some((_, 't')) => s.push('\t'),
                Some((_, c @ ('\\' | '\'' | '"'))) => s.push(c),
                Some((_, c)) => {
                    return Err(ExprError::new(
                        Span {
                            start: i,
                            end: i + 1 + c.len_utf8(),
                        },
                        format!("unknown escape '\\{}'", c.escape_default()),
                    ))
                }
                None => {
                    return Err(ExprError::new(
                        Span { start, end: i + 1 },
                        "text is not closed (missing quote)",
                    ))
                }
            },
            Some((_, c)) => s.push(c),
        }
    }
}

fn lex_number(src: &str, it: &mut Chars<'_>, start: usize) -> Result<(Tok, Span), ExprError> {
    let mut end = start;
    let mut seen_dot = false;
    let mut seen_exp = false;
    let mut prev = ' ';
    while let Some(&(i, c)) = it.peek() {
        let take = c.is_ascii_digit()
            || (c == '.' && !seen_dot && !seen_exp)
            || ((c == 'e' || c == 'E') && !seen_exp)
            || ((c == '+' || c == '-') && (prev == 'e' || prev == 'E'));
        if !take {
            break;
        }
        seen_dot |= c == '.';
        seen_exp |= c == 'e' || c == 'E';
        prev = c;
        end = i + c.len_utf8();
        it.next();
    }
    let span = Span { start, end };
    let text = &src[start..end];
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && !text.starts_with('.') && !text.ends_with('.') => {
            Ok((Tok::Num(n), span))
        }
        Ok(_) if text.starts_with('.') || text.ends_with('.') => Err(ExprError::new(
            span,
            format!("'{text}' is not a number (write digits on both sides of '.')"),
        )),
        Ok(_) => Err(ExprError::new(span, format!("'{text}' is too large"))),
        Err(_) => Err(ExprError::new(span, format!("'{text}' is not a number"))),
    }
}
