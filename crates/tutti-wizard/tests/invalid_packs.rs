//! Every kind of invalid pack file is refused, and the error names the file and the
//! field (with the question or rule id) or the expression's column.

use serde_json::{json, Value as Json};
use tutti_wizard::{Pack, WizardError};

fn valid() -> Json {
    json!({
        "format": 1, "id": "tiny", "title": "Tiny", "description": "A pack for tests.", "version": "1",
        "categories": [{"id": "x", "title": "X", "target": 1}, {"id": "y", "title": "Y", "target": 1}],
        "questions": [
            {"id": "rate", "text": "Rate?", "help": "", "example": 20, "category": "x",
             "answer": {"type": "integer", "min": 10, "max": 60, "unit": "Hz"}},
            {"id": "net", "text": "Network?", "help": "", "example": "wifi", "category": "y",
             "answer": {"type": "choice", "options": [{"value": "wifi", "label": "Wi-Fi"}, {"value": "mobile", "label": "Mobile"}]}},
            {"id": "votes", "text": "Votes?", "help": "", "example": true, "category": "y",
             "answer": {"type": "boolean"}, "depends_on": "net == \"wifi\""}
        ],
        "base": [{"param": {"name": "level", "kind": "continuous", "min": 0, "max": 1}}],
        "rules": [
            {"id": "rate", "when": "answered(rate)", "then": [{"set": {"tick_hz": "=rate"}}]},
            {"id": "load", "when": "rate >= 60 and net == \"wifi\"", "conflict": "{rate} Hz on {net}"}
        ]
    })
}

fn load(v: &Json) -> Result<Pack, WizardError> {
    Pack::from_json("tiny.json", &serde_json::to_string_pretty(v).unwrap())
}

/// Apply `f` to a valid pack and expect it refused; returns the error's text.
fn refused(f: impl FnOnce(&mut Json)) -> WizardError {
    let mut v = valid();
    f(&mut v);
    match load(&v) {
        Ok(_) => panic!("accepted: {v:#}"),
        Err(e) => {
            assert!(
                e.to_string().starts_with("tiny.json: "),
                "the file is not named: {e}"
            );
            e
        }
    }
}

fn format_err(e: &WizardError) -> (&str, &str) {
    match e {
        WizardError::PackFormat { path, message, .. } => (path, message),
        other => panic!("expected a format error, got {other}"),
    }
}

fn invalid(e: &WizardError) -> (&str, &str) {
    match e {
        WizardError::PackInvalid {
            location, message, ..
        } => (location, message),
        other => panic!("expected an invalid pack, got {other}"),
    }
}

#[test]
fn the_valid_pack_loads() {
    let p = load(&valid()).unwrap();
    assert_eq!(p.id(), "tiny");
    assert_eq!(p.questions().len(), 3);
}

#[test]
fn json_syntax_errors_name_the_line() {
    let e = Pack::from_json("tiny.json", "{\"format\": 1,\n  \"id\": }").unwrap_err();
    let (_, msg) = format_err(&e);
    assert!(msg.contains("line 2"), "{e}");
    let e = Pack::from_json("tiny.json", &format!("{} {{}}", valid())).unwrap_err();
    assert!(e.to_string().contains("trailing characters"), "{e}");
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let e = refused(|v| v["colour"] = json!("red"));
    let (_, msg) = format_err(&e);
    assert!(msg.contains("unknown field `colour`"), "{e}");
    let e = refused(|v| v["questions"][1]["colour"] = json!("red"));
    let (path, msg) = format_err(&e);
    assert!(path.starts_with("questions[1] (id 'net')"), "{e}");
    assert!(msg.contains("unknown field `colour`"), "{e}");
    let e = refused(|v| v["questions"][0]["answer"]["step"] = json!(1));
    let (path, msg) = format_err(&e);
    assert_eq!(path, "questions[0] (id 'rate').answer", "{e}");
    assert!(msg.contains("unknown field `step`"), "{e}");
    let e = refused(|v| v["rules"][0]["then"][0]["set"]["tickrate"] = json!(20));
    let (path, msg) = format_err(&e);
    assert!(path.starts_with("rules[0] (id 'rate').then[0]"), "{e}");
    assert!(msg.contains("unknown field `tickrate`"), "{e}");
    let e = refused(|v| v["rules"][0]["then"][0] = json!({"sett": {}}));
    assert!(format_err(&e).1.contains("unknown variant `sett`"), "{e}");
}

#[test]
fn wrong_types_and_missing_fields_name_the_field() {
    let e = refused(|v| v["categories"][0]["target"] = json!("two"));
    let (path, _) = format_err(&e);
    assert_eq!(path, "categories[0] (id 'x').target", "{e}");
    let e = refused(|v| {
        v["questions"][2].as_object_mut().unwrap().remove("text");
    });
    let (path, msg) = format_err(&e);
    assert!(path.starts_with("questions[2] (id 'votes')"), "{e}");
    assert!(msg.contains("missing field `text`"), "{e}");
    let e = refused(|v| v["questions"][0]["answer"]["type"] = json!("float"));
    assert!(format_err(&e).1.contains("unknown variant `float`"), "{e}");
    let e = refused(|v| v["rules"][0]["then"][0]["set"]["tick_hz"] = json!(-5));
    let (path, _) = format_err(&e);
    assert_eq!(path, "rules[0] (id 'rate').then[0].set.tick_hz", "{e}");
    let e = refused(|v| {
        v.as_object_mut().unwrap().remove("version");
    });
    assert!(format_err(&e).1.contains("missing field `version`"), "{e}");
}

#[test]
fn duplicate_ids_are_refused() {
    let e = refused(|v| v["questions"][1]["id"] = json!("rate"));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "questions[1] (id 'rate').id");
    assert_eq!(msg, "duplicate question id 'rate'");
    let e = refused(|v| v["rules"][1]["id"] = json!("rate"));
    assert_eq!(invalid(&e).1, "duplicate rule id 'rate'");
    let e = refused(|v| v["categories"][1]["id"] = json!("x"));
    assert!(invalid(&e).1.contains("duplicate category"), "{e}");
    let e = refused(|v| v["questions"][1]["answer"]["options"][1]["value"] = json!("wifi"));
    assert!(invalid(&e).1.contains("duplicate option 'wifi'"), "{e}");
}

#[test]
fn dangling_references_are_refused() {
    let e = refused(|v| v["questions"][0]["follow_ups"] = json!([{"ask": ["nope"]}]));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "questions[0] (id 'rate').follow_ups[0].ask[0]");
    assert_eq!(msg, "unknown question 'nope'");
    let e = refused(|v| v["questions"][0]["category"] = json!("zz"));
    assert_eq!(invalid(&e).1, "unknown category 'zz'");
    let e = refused(|v| v["rules"][0]["warn"] = json!("at {rat} Hz"));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "rules[0] (id 'rate').warn");
    assert!(msg.contains("'{rat}'"), "{e}");
}

#[test]
fn cycles_are_refused() {
    // rate depends on votes, votes depends on net, net follows up rate → a cycle.
    let e = refused(|v| {
        v["questions"][0]["depends_on"] = json!("votes");
        v["questions"][1]["depends_on"] = json!("rate > 10");
    });
    let (_, msg) = invalid(&e);
    assert!(msg.contains("cycle"), "{e}");
    assert!(
        msg.contains("'rate'") && msg.contains("'votes'") && msg.contains("'net'"),
        "{e}"
    );
    let e = refused(|v| {
        v["questions"][0]["follow_ups"] = json!([{"ask": ["net"]}]);
        v["questions"][1]["follow_ups"] = json!([{"ask": ["rate"]}]);
    });
    assert!(invalid(&e).1.contains("'rate' → 'net' → 'rate'"), "{e}");
    let e = refused(|v| v["questions"][0]["depends_on"] = json!("rate > 10"));
    assert!(invalid(&e).1.contains("its own answer"), "{e}");
    let e = refused(|v| v["questions"][0]["follow_ups"] = json!([{"ask": ["rate"]}]));
    assert!(invalid(&e).1.contains("follow up itself"), "{e}");
    // A follow-up that depends on its parent is the normal case, not a cycle.
    let mut v = valid();
    v["questions"][1]["follow_ups"] = json!([{"when": "net == \"wifi\"", "ask": ["votes"]}]);
    load(&v).unwrap();
}

fn expr_err(e: &WizardError) -> (&str, usize, &str) {
    match e {
        WizardError::Expression {
            context,
            column,
            message,
            ..
        } => (context, *column, message),
        other => panic!("expected an expression error, got {other}"),
    }
}

#[test]
fn expression_errors_name_the_rule_and_column() {
    let e = refused(|v| v["rules"][1]["when"] = json!("rate >= 60 and nett == \"wifi\""));
    let (ctx, col, msg) = expr_err(&e);
    assert_eq!(ctx, "tiny.json: rules[1] (id 'load').when");
    assert_eq!(col, 16);
    assert_eq!(msg, "unknown question 'nett'");
    // Syntax errors are found while parsing the file: the path names the rule.
    let e = refused(|v| v["rules"][1]["when"] = json!("rate >= 60 and and"));
    let (path, msg) = format_err(&e);
    assert!(path.starts_with("rules[1] (id 'load').when"), "{e}");
    assert!(msg.contains("column 16"), "{e}");
    let e = refused(|v| v["rules"][1]["when"] = json!("avg(rate) > 1"));
    assert!(format_err(&e).1.contains("unknown function 'avg'"), "{e}");
    let e = refused(|v| v["rules"][1]["when"] = json!("len(rate, net)"));
    assert!(
        format_err(&e).1.contains("len() takes 1 argument, got 2"),
        "{e}"
    );
    let e = refused(|v| v["rules"][1]["when"] = json!("net == \"wi-fi\""));
    let (_, col, msg) = expr_err(&e);
    assert_eq!(col, 8);
    assert!(msg.contains("not an option of question 'net'"), "{e}");
    let e = refused(|v| v["rules"][1]["when"] = json!("rate + 1"));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "rules[1] (id 'load').when");
    assert!(
        msg.contains("gives a number, but true/false is needed"),
        "{e}"
    );
    let e = refused(|v| v["questions"][2]["depends_on"] = json!("net == 1"));
    let (ctx, _, _) = expr_err(&e);
    assert_eq!(ctx, "tiny.json: questions[2] (id 'votes').depends_on");
    let e = refused(|v| v["rules"][0]["then"][0]["set"]["tick_hz"] = json!("=net"));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "rules[0] (id 'rate').then[0].set.tick_hz");
    assert!(msg.contains("gives text, but a number is needed"), "{e}");
    let deep = format!("{}1{}", "(".repeat(50), ")".repeat(50));
    let e = refused(|v| v["rules"][0]["then"][0]["set"]["tick_hz"] = json!(format!("={deep}")));
    assert!(format_err(&e).1.contains("nested too deeply"), "{e}");
}

#[test]
fn semantic_checks() {
    let e = refused(|v| v["questions"][0]["example"] = json!(100));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "questions[0] (id 'rate').example");
    assert!(msg.contains("a whole number from 10 to 60 Hz"), "{e}");
    let e = refused(|v| v["categories"][0]["target"] = json!(2));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "categories[0] (id 'x').target");
    assert!(msg.contains("only 1 question"), "{e}");
    let e = refused(|v| v["categories"][1]["target"] = json!(0));
    assert!(invalid(&e).1.contains("at least 1"), "{e}");
    let e = refused(|v| v["id"] = json!("other"));
    assert!(
        invalid(&e).1.contains("does not match the file name"),
        "{e}"
    );
    let e = refused(|v| v["format"] = json!(2));
    assert_eq!(invalid(&e).0, "format");
    let e = refused(|v| v["questions"][0]["id"] = json!("not"));
    assert!(invalid(&e).1.contains("keyword"), "{e}");
    let e = refused(|v| v["questions"][0]["id"] = json!("Rate"));
    assert_eq!(invalid(&e).0, "questions[0] (id 'Rate').id");
    let e =
        refused(|v| v["questions"][0]["answer"] = json!({"type": "number", "min": 5, "max": 5}));
    assert!(invalid(&e).0.ends_with(".answer.max"), "{e}");
    let e =
        refused(|v| v["questions"][1]["answer"]["options"] = json!([{"value": "a", "label": "A"}]));
    assert!(invalid(&e).1.contains("2–32 options"), "{e}");
    let e = refused(|v| v["rules"][1] = json!({"id": "noop", "when": "true"}));
    assert!(invalid(&e).1.contains("does nothing"), "{e}");
    let e = refused(|v| v["base"][0]["param"]["min"] = json!(2));
    let (loc, msg) = invalid(&e);
    assert_eq!(loc, "base");
    assert!(msg.contains("params[0].max"), "{e}");
    let e = refused(|v| v["base"] = json!([]));
    assert!(invalid(&e).1.contains("needs 1–32 parameters"), "{e}");
    let e =
        refused(|v| v["rules"][0]["then"] = json!([{"param": {"name": "x", "min": 0, "max": 1}}]));
    assert!(invalid(&e).0.ends_with("then[0].param.kind"), "{e}");
    let e = refused(|v| {
        v["rules"][0]["then"] = json!([{"map": {"param": "level", "target": "drone"}}])
    });
    assert!(invalid(&e).1.contains("voice.control"), "{e}");
}

#[test]
fn directories_name_the_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::to_string_pretty(&valid()).unwrap();
    std::fs::write(dir.path().join("tiny.json"), &good).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a pack").unwrap();
    let packs = Pack::load_dir(dir.path()).unwrap();
    assert_eq!(packs.len(), 1);

    let mut bad = valid();
    bad["id"] = json!("broken");
    bad["questions"][0]["answer"]["max"] = json!("sixty");
    std::fs::write(
        dir.path().join("broken.json"),
        serde_json::to_string(&bad).unwrap(),
    )
    .unwrap();
    let e = Pack::load_dir(dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("broken.json: questions[0] (id 'rate').answer"),
        "{e}"
    );
    std::fs::remove_file(dir.path().join("broken.json")).unwrap();

    std::fs::write(dir.path().join("bytes.json"), [b'{', 0xff, 0xfe, b'}']).unwrap();
    let e = Pack::load_dir(dir.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bytes.json: (file): is not valid UTF-8 (at byte 1)"
    );
    std::fs::remove_file(dir.path().join("bytes.json")).unwrap();

    std::fs::write(dir.path().join("huge.json"), vec![b' '; (1 << 20) + 1]).unwrap();
    let e = Pack::load_dir(dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("huge.json: (file): is 1048577 bytes"),
        "{e}"
    );
    std::fs::remove_file(dir.path().join("huge.json")).unwrap();

    let e = Pack::load_dir(dir.path().join("missing")).unwrap_err();
    assert!(matches!(e, WizardError::Io { .. }), "{e}");
}
