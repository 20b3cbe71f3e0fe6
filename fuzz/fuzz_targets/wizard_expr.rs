//! The wizard's expression language (`tutti_wizard::Expr`): no source text panics the
//! parser, the type checker or the evaluator, with the questions answered or not; what
//! evaluates is finite and of the type the checker promised.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tutti_wizard::expr::{RefInfo, Ty};
use tutti_wizard::{Expr, Value};

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

/// Answers to the questions of `lookup`; bit i of `mask` leaves question i unanswered.
fn answers(mask: u8) -> BTreeMap<String, Value> {
    let all = [
        ("rate", Value::Num(60.0)),
        ("phones", Value::Num(20000.0)),
        ("title", Value::Str("Murmuration No. 2".into())),
        ("votes", Value::Bool(true)),
        ("network", Value::Str("venue_wifi".into())),
        (
            "controls",
            Value::List(vec![Value::Str("tempo".into()), Value::Str("pitch".into())]),
        ),
    ];
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) == 0)
        .map(|(_, (k, v))| (k.to_string(), v))
        .collect()
}

fn fits(v: &Value, ty: Ty) -> bool {
    matches!(
        (v, ty),
        (Value::Null, _)
            | (_, Ty::Any)
            | (Value::Bool(_), Ty::Bool)
            | (Value::Num(_), Ty::Num)
            | (Value::Str(_), Ty::Str)
            | (Value::List(_), Ty::List)
    )
}

fuzz_target!(|input: &[u8]| {
    let Some((&mask, src)) = input.split_first() else {
        return;
    };
    let Ok(src) = std::str::from_utf8(src) else {
        return;
    };
    let Ok(expr) = Expr::parse_in(src, "fuzz") else {
        return;
    };
    let _ = expr.references();
    let checked = expr.check(&lookup, "fuzz");
    let env = answers(mask);
    let value = expr.eval(&env, "fuzz");
    let _ = expr.holds(&env, "fuzz");
    if let Ok(v) = &value {
        if let Value::Num(n) = v {
            assert!(n.is_finite(), "{src} gave {n}");
        }
        if let Ok(ty) = checked {
            assert!(fits(v, ty), "{src} checks as {ty:?} but gives {v:?}");
        }
    }
    let again = Expr::parse(expr.source()).expect("its own source parses");
    assert_eq!(again.references(), expr.references());
});
