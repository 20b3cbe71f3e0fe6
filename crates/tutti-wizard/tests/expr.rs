//! The expression language: precedence, values and null semantics, functions, load-time
//! checks, errors with their column, limits, and that no input text panics it.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tutti_wizard::expr::{RefInfo, Ty, MAX_EXPR_LEN};
use tutti_wizard::{Expr, Value, WizardError};

fn env() -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    m.insert("rate".into(), Value::Num(60.0));
    m.insert("phones".into(), Value::Num(20000.0));
    m.insert("network".into(), Value::Str("venue_wifi".into()));
    m.insert("title".into(), Value::Str("Murmuration No. 2".into()));
    m.insert("votes".into(), Value::Bool(true));
    m.insert(
        "controls".into(),
        Value::List(vec![Value::Str("tempo".into()), Value::Str("pitch".into())]),
    );
    m
}

fn eval(src: &str) -> Value {
    Expr::parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .eval(&env(), "test")
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn num(src: &str) -> f64 {
    match eval(src) {
        Value::Num(n) => n,
        other => panic!("{src} gave {other:?}"),
    }
}

fn is_true(src: &str) -> bool {
    match eval(src) {
        Value::Bool(b) => b,
        other => panic!("{src} gave {other:?}"),
    }
}

/// (column, message) of a parse error.
fn parse_err(src: &str) -> (usize, String) {
    match Expr::parse(src) {
        Err(WizardError::Expression {
            column, message, ..
        }) => (column, message),
        other => panic!("{src}: expected a parse error, got {other:?}"),
    }
}

fn eval_err(src: &str) -> (usize, String) {
    match Expr::parse(src).unwrap().eval(&env(), "rule 'x'.when") {
        Err(WizardError::Expression {
            column,
            message,
            context,
            ..
        }) => {
            assert_eq!(context, "rule 'x'.when");
            (column, message)
        }
        other => panic!("{src}: expected an evaluation error, got {other:?}"),
    }
}

#[test]
fn precedence_and_associativity() {
    assert_eq!(num("1 + 2 * 3"), 7.0);
    assert_eq!(num("(1 + 2) * 3"), 9.0);
    assert_eq!(num("2 - 3 - 4"), -5.0);
    assert_eq!(num("64 / 4 / 2"), 8.0);
    assert_eq!(num("-2 * 3"), -6.0);
    assert_eq!(num("- -2"), 2.0);
    assert_eq!(num("7 % 3 + 1"), 2.0);
    assert_eq!(num("1.5e2"), 150.0);
    assert!(is_true("1 + 2 * 3 == 7"));
    assert!(is_true("not false and false or true"));
    assert!(!is_true("not (false and false or true)"));
    assert!(is_true("false and false or true"));
    assert!(!is_true("false and (false or true)"));
    assert!(!is_true("not rate == 60"));
    assert!(is_true(
        "rate >= 60 and phones >= 20000 and network == \"venue_wifi\""
    ));
    assert!(is_true("(1 < 2) == true"));
    assert_eq!(parse_err("1 < 2 == true").0, 7, "comparisons do not chain");
}

#[test]
fn values_and_operators() {
    assert_eq!(eval("'a' + \"b\""), Value::Str("ab".into()));
    assert_eq!(eval("'it\\'s'"), Value::Str("it's".into()));
    assert_eq!(
        eval("[1, 'x'] + [true]"),
        Value::List(vec![
            Value::Num(1.0),
            Value::Str("x".into()),
            Value::Bool(true)
        ])
    );
    assert!(is_true("'tempo' in controls"));
    assert!(is_true("'space' not in controls"));
    assert!(is_true("'wifi' in network"));
    assert!(is_true("'b' < 'c'"));
    assert!(is_true("[1, 2] == [1, 2]"));
    assert!(is_true("network != 'mobile_data'"));
    assert!(is_true("votes"));
    assert!(is_true("true != false"));
}

#[test]
fn functions() {
    assert!(is_true("answered(rate) and not answered(missing)"));
    assert_eq!(num("len(controls) + len('héllo')"), 7.0);
    assert!(is_true(
        "contains(controls, 'pitch') and contains(title, 'No.')"
    ));
    assert_eq!(num("min(3, 1, 2) + max([4, 9, 2])"), 10.0);
    assert_eq!(num("abs(-2) + round(2.5) + floor(1.9) + ceil(1.1)"), 8.0);
    assert_eq!(num("clamp(rate, 10, 30)"), 30.0);
    assert_eq!(num("pow(2, 10)"), 1024.0);
    assert_eq!(num("if(rate > 30, 1, 2)"), 1.0);
    assert_eq!(
        num("if(missing, 1, 2)"),
        2.0,
        "a null condition takes the else branch"
    );
    assert_eq!(num("coalesce(missing, rate, 5)"), 60.0);
    assert_eq!(eval("slug(title)"), Value::Str("murmuration-no-2".into()));
    assert_eq!(eval("slug('¡¡¡')"), Value::Str("piece".into()));
    assert_eq!(eval("lower('AbC')"), Value::Str("abc".into()));
    assert_eq!(eval("str(rate) + ' Hz'"), Value::Str("60 Hz".into()));
    assert_eq!(eval("str(controls)"), Value::Str("tempo, pitch".into()));
}

#[test]
fn null_propagates_and_logic_is_three_valued() {
    for src in [
        "missing + 1",
        "missing == 1",
        "missing != 1",
        "missing < 1",
        "'x' in missing",
        "not missing",
        "-missing",
        "len(missing)",
        "min(1, missing)",
        "true and missing",
        "false or missing",
    ] {
        assert_eq!(eval(src), Value::Null, "{src}");
    }
    assert_eq!(eval("false and missing"), Value::Bool(false));
    assert_eq!(eval("missing and false"), Value::Bool(false));
    assert_eq!(eval("true or missing"), Value::Bool(true));
    assert_eq!(eval("missing or true"), Value::Bool(true));
    // A condition that ends as null does not hold.
    let e = Expr::parse("missing > 3").unwrap();
    assert!(!e.holds(&env(), "c").unwrap());
    let e = Expr::parse("rate + 1").unwrap();
    let err = e.holds(&env(), "c").unwrap_err();
    assert!(err.to_string().contains("must give true or false"), "{err}");
}

#[test]
fn parse_errors_name_the_column() {
    assert_eq!(
        parse_err("rate = 60"),
        (6, "use '==' to compare ('=' alone)".into())
    );
    let (col, msg) = parse_err("1 +");
    assert_eq!(col, 4);
    assert!(msg.contains("expected a value"), "{msg}");
    let (col, msg) = parse_err("rate > 1 and foo(2)");
    assert_eq!(col, 14);
    assert!(msg.starts_with("unknown function 'foo'"), "{msg}");
    let (col, msg) = parse_err("len(1, 2)");
    assert_eq!(col, 1);
    assert_eq!(msg, "len() takes 1 argument, got 2");
    let (_, msg) = parse_err("clamp(1)");
    assert_eq!(msg, "clamp() takes 3 arguments, got 1");
    let (col, msg) = parse_err("answered(1 + 1)");
    assert_eq!(col, 12);
    assert!(msg.contains("takes a question id"), "{msg}");
    let (col, msg) = parse_err("1 < 2 < 3");
    assert_eq!(col, 7);
    assert!(msg.contains("cannot be chained"), "{msg}");
    let (col, msg) = parse_err("'héllo' + @");
    assert_eq!(col, 11, "columns count characters, not bytes");
    assert!(msg.contains("unexpected character '@'"), "{msg}");
    let (col, msg) = parse_err("title + 'abc");
    assert_eq!(col, 9);
    assert!(msg.contains("not closed"), "{msg}");
    let (_, msg) = parse_err("(1 + 2");
    assert!(msg.contains("')'"), "{msg}");
    let (_, msg) = parse_err("1 2");
    assert!(msg.contains("after a complete expression"), "{msg}");
    let (_, msg) = parse_err("");
    assert_eq!(msg, "expression is empty");
    let (_, msg) = parse_err("and");
    assert!(msg.contains("keyword 'and'"), "{msg}");
    let (_, msg) = parse_err("1e999");
    assert!(msg.contains("too large"), "{msg}");
    let (_, msg) = parse_err("'a\\q'");
    assert!(msg.contains("unknown escape"), "{msg}");
    let (_, msg) = parse_err("!votes");
    assert!(msg.contains("use 'not'"), "{msg}");
}

#[test]
fn evaluation_errors_name_the_operator_column() {
    let (col, msg) = eval_err("rate > 1 and title - 1 > 0");
    assert_eq!(col, 20);
    assert_eq!(msg, "'-' cannot combine text and number");
    let (col, msg) = eval_err("rate / (phones - 20000)");
    assert_eq!(col, 6);
    assert_eq!(msg, "division by zero");
    let (_, msg) = eval_err("pow(10, 400)");
    assert!(msg.contains("not a finite number"), "{msg}");
    let (_, msg) = eval_err("votes and rate");
    assert!(msg.contains("needs true or false"), "{msg}");
    let (_, msg) = eval_err("max([])");
    assert!(msg.contains("empty list"), "{msg}");
    let (_, msg) = eval_err("clamp(1, 5, 2)");
    assert!(msg.contains("reversed"), "{msg}");
    let (_, msg) = eval_err("rate in 5");
    assert!(msg.contains("needs a list"), "{msg}");
}

fn lookup(id: &str) -> Option<RefInfo> {
    let (ty, options) = match id {
        "rate" | "phones" => (Ty::Num, None),
        "title" => (Ty::Str, None),
        "votes" => (Ty::Bool, None),
        "network" => (
            Ty::Str,
            Some(vec!["venue_wifi".to_string(), "mobile_data".to_string()]),
        ),
        "controls" => (
            Ty::List,
            Some(vec!["tempo".to_string(), "pitch".to_string()]),
        ),
        _ => return None,
    };
    Some(RefInfo { ty, options })
}

fn check(src: &str) -> Result<Ty, (usize, String)> {
    Expr::parse(src)
        .unwrap()
        .check(&lookup, "pack.json: rules[0] (id 'r').when")
        .map_err(|e| match e {
            WizardError::Expression {
                column,
                message,
                context,
                ..
            } => {
                assert_eq!(context, "pack.json: rules[0] (id 'r').when");
                (column, message)
            }
            other => panic!("{other:?}"),
        })
}

#[test]
fn load_time_checks() {
    assert_eq!(
        check("rate >= 60 and phones >= 20000 and network == 'venue_wifi'"),
        Ok(Ty::Bool)
    );
    assert_eq!(check("if(votes, rate, 2)"), Ok(Ty::Num));
    assert_eq!(check("coalesce(rate, title)"), Ok(Ty::Any));
    assert_eq!(
        check("network in ['venue_wifi', 'mobile_data']"),
        Ok(Ty::Bool)
    );
    assert_eq!(
        check("'tempo' in controls and contains(controls, 'pitch')"),
        Ok(Ty::Bool)
    );
    assert_eq!(check("str(rate) + ' Hz'"), Ok(Ty::Str));

    assert_eq!(
        check("rate > 1 and ratee > 2"),
        Err((14, "unknown question 'ratee'".into()))
    );
    assert_eq!(
        check("network == 'venue-wifi'"),
        Err((12, "'venue-wifi' is not an option of question 'network' (options: venue_wifi, mobile_data)".into()))
    );
    assert!(check("network in ['wifi']")
        .unwrap_err()
        .1
        .contains("not an option"));
    assert!(check("'drums' in controls")
        .unwrap_err()
        .1
        .contains("not an option of question 'controls'"));
    assert!(check("contains(controls, 'drums')")
        .unwrap_err()
        .1
        .contains("not an option"));
    assert_eq!(
        check("rate == '60'"),
        Err((6, "comparing a number with text is never true".into()))
    );
    assert!(check("rate == null")
        .unwrap_err()
        .1
        .contains("use answered(q)"));
    assert_eq!(
        check("title + 1"),
        Err((7, "'+' cannot combine text and a number".into()))
    );
    assert!(check("votes and rate")
        .unwrap_err()
        .1
        .contains("cannot combine"));
    assert!(check("not rate")
        .unwrap_err()
        .1
        .contains("'not' needs true/false"));
    assert!(check("slug(rate)")
        .unwrap_err()
        .1
        .contains("slug() needs text as argument 1"));
    assert!(check("min(rate, title)")
        .unwrap_err()
        .1
        .contains("argument 2"));
    assert!(check("if(rate, 1, 2)")
        .unwrap_err()
        .1
        .contains("if() needs true/false"));
    assert!(check("rate in 5").unwrap_err().1.contains("needs a list"));
    assert_eq!(
        Expr::parse("rate + phones * rate").unwrap().references(),
        ["rate", "phones"]
    );
}

#[test]
fn length_and_nesting_limits() {
    let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
    let (col, msg) = parse_err(&deep);
    assert_eq!(col, 33);
    assert!(msg.contains("nested too deeply"), "{msg}");
    let ok = format!("{}1{}", "(".repeat(30), ")".repeat(30));
    assert!(Expr::parse(&ok).is_ok());
    let negs = format!("{}1", "-".repeat(40));
    assert!(parse_err(&negs).1.contains("nested too deeply"));
    let nots = format!("{}true", "not ".repeat(40));
    assert!(parse_err(&nots).1.contains("nested too deeply"));
    let chain = vec!["1"; 70].join(" + ");
    let (_, msg) = parse_err(&chain);
    assert!(msg.contains("more than 64 levels"), "{msg}");
    assert_eq!(num(&vec!["1"; 60].join(" + ")), 60.0);
    let long = format!("'{}'", "x".repeat(MAX_EXPR_LEN));
    let (_, msg) = parse_err(&long);
    assert!(msg.contains("the limit is 2048"), "{msg}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_text_never_panics_the_parser(src in "\\PC{0,80}") {
        if let Ok(e) = Expr::parse(&src) {
            let _ = e.eval(&env(), "p");
            let _ = e.check(&lookup, "p");
        }
    }

    #[test]
    fn token_soup_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "(", ")", "[", "]", ",", "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=",
        "and", "or", "not", "in", "true", "false", "null", "rate", "phones", "title", "controls",
        "missing", "1", "0", "2.5", "'x'", "\"tempo\"", "len", "min", "max", "if", "coalesce",
        "answered", "pow", "clamp", "slug", "str", "contains", "1e308",
    ]), 0..60)) {
        let src = parts.join(" ");
        if let Ok(e) = Expr::parse(&src) {
            let _ = e.eval(&env(), "p");
            let _ = e.check(&lookup, "p");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed(depth in 0usize..3000, open in prop::sample::select(vec!["(", "[", "-", "not ", "len("])) {
        let src = format!("{}1", open.repeat(depth));
        let _ = Expr::parse(&src);
    }
}
