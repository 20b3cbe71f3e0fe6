//! The session engine on a tiny pack: question order by coverage, dependencies and
//! follow-ups; answers that stop counting when their condition turns false; skipping;
//! answer validation; coverage and maturity; storing and resuming.

use std::sync::Arc;

use serde_json::json;
use tutti_wizard::{Pack, Session, SessionState, Wizard, WizardError};

/// Categories x (target 1), y (target 2), z (target 1).
/// q1 x number; q2 y boolean (follow-up q5 when true); q3 y choice; q4 z depends on
/// q1 > 15; q5 x text; q6 z multi-choice, required.
const TINY: &str = r#"{
  "format": 1, "id": "tiny", "title": "Tiny", "description": "A pack for tests.", "version": "1",
  "categories": [
    {"id": "x", "title": "X", "target": 1},
    {"id": "y", "title": "Y", "target": 2},
    {"id": "z", "title": "Z", "target": 1}
  ],
  "questions": [
    {"id": "q1", "text": "Rate?", "help": "", "example": 20, "category": "x",
     "answer": {"type": "number", "min": 10, "max": 60, "unit": "Hz"}},
    {"id": "q2", "text": "Votes?", "help": "", "example": true, "category": "y",
     "answer": {"type": "boolean"},
     "follow_ups": [{"when": "q2", "ask": ["q5"]}]},
    {"id": "q3", "text": "Network?", "help": "", "example": "wifi", "category": "y",
     "answer": {"type": "choice", "options": [{"value": "wifi", "label": "Wi-Fi"}, {"value": "mobile", "label": "Mobile data"}]}},
    {"id": "q4", "text": "Fast detail?", "help": "", "example": 3, "category": "z",
     "answer": {"type": "integer", "min": 1, "max": 5}, "depends_on": "q1 > 15"},
    {"id": "q5", "text": "Vote name?", "help": "", "example": "Next", "category": "x",
     "answer": {"type": "text", "max_len": 10}},
    {"id": "q6", "text": "Zones?", "help": "", "example": ["front", "back"], "category": "z",
     "answer": {"type": "multi_choice", "min": 2, "options": [{"value": "front", "label": "Front"}, {"value": "middle", "label": "Middle"}, {"value": "back", "label": "Back"}]},
     "required": true}
  ],
  "base": [
    {"set": {"title": "Tiny piece"}},
    {"param": {"name": "level", "kind": "continuous", "min": 0, "max": 1}}
  ],
  "rules": [
    {"id": "rate", "when": "answered(q1)", "then": [{"set": {"tick_hz": "=round(q1)"}}]},
    {"id": "detail", "when": "answered(q4)", "then": [{"set": {"histogram_bins": "=q4 * 4"}}],
     "warn": "detail is {q4} at {q1} Hz"},
    {"id": "zones", "when": "answered(q6)", "then": [{"zones": {"names": "=q6", "weight": 2}}]},
    {"id": "vote", "when": "q2 and answered(q5)", "then": [{"param": {"name": "vote", "kind": "discrete",
       "label": "=q5", "choices": ["a", "b"]}}]},
    {"id": "mobile-fast", "when": "q3 == \"mobile\" and q1 >= 50", "conflict": "{q1} Hz on {q3}"}
  ]
}"#;

fn tiny() -> Arc<Pack> {
    Arc::new(Pack::from_json("tiny.json", TINY).expect("tiny pack loads"))
}

fn next(s: &Session) -> Option<String> {
    s.next_question().map(|q| q.id.clone())
}

#[test]
fn next_question_follows_coverage_dependencies_and_follow_ups() {
    let mut s = Session::new(tiny());
    // Nothing answered: every category at 0, pack order decides; q4 does not apply.
    assert_eq!(next(&s).as_deref(), Some("q1"));
    s.answer("q1", json!(3)).unwrap_err(); // below 10
    let out = s.answer("q1", json!(20)).unwrap();
    assert!(!out.replaced);
    // x is covered (1/1); y (0/2) and z (0/1) tie at 0: pack order picks q2 over q6.
    assert_eq!(out.next.as_deref(), Some("q2"));
    // q1 = 20 > 15, so q4 now applies.
    assert!(s.applies("q4"));
    let out = s.answer("q2", json!(true)).unwrap();
    assert_eq!(out.follow_ups, ["q5"]);
    // The follow-up comes first although its category (x) is already covered.
    assert_eq!(out.next.as_deref(), Some("q5"));
    s.answer("q5", json!("Next")).unwrap();
    // y is 1/2 = 0.5, z is 0/1: z is least covered, q4 comes before q6 in pack order.
    assert_eq!(next(&s).as_deref(), Some("q4"));
    s.answer("q4", json!(2)).unwrap();
    // z is covered (target 1); y at 0.5 is now least covered.
    assert_eq!(next(&s).as_deref(), Some("q3"));
    s.answer("q3", json!("wifi")).unwrap();
    assert_eq!(next(&s).as_deref(), Some("q6"));
    let out = s.answer("q6", json!(["front", "back"])).unwrap();
    assert_eq!(out.next, None);
    let cov = out.coverage;
    assert!(cov.complete);
    assert_eq!(cov.maturity, 100);
    assert_eq!(cov.answered, 6);
}

#[test]
fn a_follow_up_is_not_queued_when_its_condition_is_false() {
    let mut s = Session::new(tiny());
    s.answer("q1", json!(20)).unwrap();
    let out = s.answer("q2", json!(false)).unwrap();
    assert!(out.follow_ups.is_empty());
    // y is 1/2 and z 0/1: z first (q4 applies, pack order before q6).
    assert_eq!(out.next.as_deref(), Some("q4"));
    // Changing the answer queues the follow-up; changing it back withdraws it.
    let out = s.answer("q2", json!(true)).unwrap();
    assert!(out.replaced);
    assert_eq!(out.next.as_deref(), Some("q5"));
    assert_eq!(s.state().pending, ["q5"]);
    let out = s.answer("q2", json!(false)).unwrap();
    assert_eq!(out.next.as_deref(), Some("q4"));
    assert!(s.state().pending.is_empty());
}

#[test]
fn depends_on_gates_questions_and_answers_stop_counting_when_it_turns_false() {
    let mut s = Session::new(tiny());
    // q1 unanswered: q4's condition is null, so q4 does not apply.
    let err = s.answer("q4", json!(2)).unwrap_err();
    assert!(
        matches!(&err, WizardError::NotApplicable { question, condition } if question == "q4" && condition == "q1 > 15"),
        "{err}"
    );
    s.answer("q1", json!(20)).unwrap();
    s.answer("q4", json!(3)).unwrap();
    let ev = s.evaluate().unwrap();
    assert_eq!(ev.spec.histogram_bins, 12);
    assert!(ev.fired_rules.contains(&"detail".to_string()));
    assert_eq!(ev.warnings[0].message, "detail is 3 at 20 Hz");
    // q1 now 10 (not > 15): q4's answer is kept but ignored.
    s.answer("q1", json!(10)).unwrap();
    assert!(!s.applies("q4"));
    let ev = s.evaluate().unwrap();
    assert!(!ev.fired_rules.contains(&"detail".to_string()));
    assert!(ev.warnings.is_empty());
    assert_eq!(ev.coverage.answered, 1);
    assert!(s.answers().contains_key("q4"));
    // And counts again when the condition holds again.
    s.answer("q1", json!(30)).unwrap();
    assert!(s
        .evaluate()
        .unwrap()
        .fired_rules
        .contains(&"detail".to_string()));
}

#[test]
fn coverage_and_maturity() {
    let mut s = Session::new(tiny());
    let cov = s.coverage();
    assert_eq!(cov.maturity, 0);
    assert_eq!(cov.missing_required, ["q6"]);
    // q4 does not apply yet: z's effective target is min(1, 1 applicable) = 1.
    s.answer("q1", json!(20)).unwrap(); // x 1/1
    s.answer("q2", json!(false)).unwrap(); // y 1/2
    s.answer("q3", json!("wifi")).unwrap(); // y 2/2
    s.answer("q4", json!(1)).unwrap(); // z 1/1
    let cov = s.coverage();
    // Every target met, but the required q6 is missing: held at 99.
    assert_eq!(cov.maturity, 99);
    assert_eq!(cov.missing_required, ["q6"]);
    for c in &cov.categories {
        assert_eq!(c.ratio, 1.0, "{c:?}");
    }
    let z = cov.categories.iter().find(|c| c.id == "z").unwrap();
    assert_eq!((z.answered, z.target, z.effective_target), (1, 1, 1));
    s.answer("q6", json!(["front", "middle"])).unwrap();
    assert_eq!(s.coverage().maturity, 100);
    // Half-way: x 1/1, y 0/2, z 0/1 → 1 of 4 target answers = 25.
    let mut s = Session::new(tiny());
    s.answer("q1", json!(20)).unwrap();
    assert_eq!(s.coverage().maturity, 25);
}

#[test]
fn skipping_and_clearing() {
    let mut s = Session::new(tiny());
    let err = s.skip("q6").unwrap_err();
    assert!(
        matches!(err, WizardError::Required { ref question } if question == "q6"),
        "{err}"
    );
    s.skip("q1").unwrap();
    assert_eq!(next(&s).as_deref(), Some("q2"));
    // A skipped question is not asked, but may still be answered.
    s.answer("q1", json!(12)).unwrap();
    assert!(!s.state().skipped.contains("q1"));
    s.clear("q1").unwrap();
    assert!(!s.answers().contains_key("q1"));
    assert_eq!(next(&s).as_deref(), Some("q1"));
}

#[test]
fn rules_draft_the_spec_and_raise_conflicts() {
    let mut s = Session::new(tiny());
    let ev = s.evaluate().unwrap();
    assert_eq!(ev.spec.title, "Tiny piece");
    assert_eq!(ev.spec.slug, "tiny");
    assert_eq!(ev.spec.params.len(), 1);
    assert!(ev.fired_rules.is_empty());
    s.answer("q1", json!(55.4)).unwrap();
    s.answer("q2", json!(true)).unwrap();
    s.answer("q5", json!("Which way")).unwrap();
    s.answer("q3", json!("mobile")).unwrap();
    s.answer("q6", json!(["back", "front"])).unwrap();
    let ev = s.evaluate().unwrap();
    assert_eq!(ev.spec.tick_hz, 55);
    let vote = &ev.spec.params[ev.spec.param_index("vote").unwrap()];
    assert_eq!(vote.label.as_deref(), Some("Which way"));
    let zones: Vec<(&str, f64)> = ev
        .spec
        .zones
        .iter()
        .map(|z| (z.name.as_str(), z.weight))
        .collect();
    assert_eq!(zones, [("back", 2.0), ("front", 2.0)]);
    assert_eq!(ev.conflicts.len(), 1);
    assert_eq!(ev.conflicts[0].rule, "mobile-fast");
    assert_eq!(
        ev.conflicts[0].message, "55.4 Hz on Mobile data",
        "choices show their label"
    );
    assert!(!ev.is_ready());
    assert_eq!(ev.fired_rules, ["rate", "zones", "vote", "mobile-fast"]);
}

#[test]
fn answers_are_validated_against_their_type() {
    let mut s = Session::new(tiny());
    let expect = |r: Result<_, WizardError>, q: &str, expected: &str| match r {
        Err(WizardError::InvalidAnswer {
            question,
            expected: e,
            ..
        }) => {
            assert_eq!(question, q);
            assert!(e.contains(expected), "{e}");
        }
        other => panic!("expected an invalid answer, got {other:?}"),
    };
    expect(s.answer("q1", json!(61)), "q1", "a number from 10 to 60 Hz");
    expect(
        s.answer("q1", json!("fast")),
        "q1",
        "a number from 10 to 60 Hz",
    );
    expect(s.answer("q1", json!(null)), "q1", "a number");
    expect(s.answer("q2", json!("yes")), "q2", "true or false");
    expect(s.answer("q3", json!("cable")), "q3", "one of: wifi, mobile");
    expect(
        s.answer("q5", json!("")),
        "q5",
        "text of 1 to 10 characters",
    );
    expect(
        s.answer("q5", json!("eleven chars")),
        "q5",
        "text of 1 to 10",
    );
    expect(s.answer("q5", json!("a\u{7}b")), "q5", "text");
    expect(
        s.answer("q6", json!(["front"])),
        "q6",
        "a list of 2 to 3 different options",
    );
    expect(
        s.answer("q6", json!(["front", "front"])),
        "q6",
        "different options",
    );
    expect(
        s.answer("q6", json!(["front", "stage"])),
        "q6",
        "front, middle, back",
    );
    expect(s.answer("q6", json!("front,back")), "q6", "a list");
    s.answer("q1", json!(20)).unwrap();
    expect(
        s.answer("q4", json!(2.5)),
        "q4",
        "a whole number from 1 to 5",
    );
    expect(s.answer("q4", json!(6)), "q4", "a whole number from 1 to 5");
    s.answer("q4", json!(5.0)).unwrap();
    let err = s.answer("nope", json!(1)).unwrap_err();
    assert_eq!(err.to_string(), "pack 'tiny' has no question 'nope'");
    // The error message names the question and what was expected.
    let err = s.answer("q1", json!(100)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "question 'q1': expected a number from 10 to 60 Hz, got 100"
    );
    // Nothing invalid was stored.
    assert_eq!(s.answers().len(), 2);
}

#[test]
fn terminal_text_answers() {
    let mut s = Session::new(tiny());
    s.answer_text("q1", " 30 Hz ").unwrap();
    assert_eq!(s.answers()["q1"], json!(30.0));
    s.answer_text("q2", "Yes").unwrap();
    s.answer_text("q3", "Mobile data").unwrap();
    assert_eq!(s.answers()["q3"], json!("mobile"));
    s.answer_text("q3", "1").unwrap();
    assert_eq!(s.answers()["q3"], json!("wifi"));
    s.answer_text("q6", "front, 3").unwrap();
    assert_eq!(s.answers()["q6"], json!(["front", "back"]));
    assert!(s.answer_text("q2", "perhaps").is_err());
    assert!(s.answer_text("q3", "9").is_err());
    assert!(s.answer_text("q1", "30 bpm").is_err());
}

#[test]
fn sessions_store_and_resume() {
    let pack = tiny();
    let mut s = Session::new(Arc::clone(&pack));
    s.answer("q1", json!(20)).unwrap();
    s.answer("q2", json!(true)).unwrap();
    let stored = serde_json::to_string(&s).unwrap();
    let state: SessionState = serde_json::from_str(&stored).unwrap();
    let resumed = Session::resume(Arc::clone(&pack), state.clone()).unwrap();
    assert_eq!(resumed, s);
    assert_eq!(next(&resumed).as_deref(), Some("q5"));
    assert_eq!(resumed.coverage(), s.coverage());
    assert_eq!(resumed.evaluate().unwrap(), s.evaluate().unwrap());

    let wizard = Wizard::new(vec![(*pack).clone()]).unwrap();
    assert_eq!(wizard.resume(state.clone()).unwrap(), s);
    assert!(matches!(
        wizard.start("nope"),
        Err(WizardError::UnknownPack { .. })
    ));

    let mut other = state.clone();
    other.pack = "electronic".into();
    assert!(matches!(
        Session::resume(Arc::clone(&pack), other),
        Err(WizardError::Resume { .. })
    ));
    let mut bad = state.clone();
    bad.answers.insert("q1".into(), json!(1000));
    let err = Session::resume(Arc::clone(&pack), bad).unwrap_err();
    assert!(err.to_string().contains("q1"), "{err}");
    let mut unknown = state.clone();
    unknown.answers.insert("zz".into(), json!(1));
    let err = Session::resume(Arc::clone(&pack), unknown).unwrap_err();
    assert!(err.to_string().contains("'zz'"), "{err}");
    // Unknown fields in a stored state are refused.
    let mut v: serde_json::Value = serde_json::from_str(&stored).unwrap();
    v["extra"] = json!(1);
    assert!(serde_json::from_value::<SessionState>(v).is_err());
}

#[test]
fn the_wizard_refuses_two_packs_with_one_id() {
    let p = (*tiny()).clone();
    let err = Wizard::new(vec![p.clone(), p]).unwrap_err();
    assert!(
        matches!(err, WizardError::DuplicatePack { ref id, .. } if id == "tiny"),
        "{err}"
    );
    let w = Wizard::builtin().unwrap();
    assert_eq!(w.packs().len(), 8);
    let s = w.start("electronic").unwrap();
    assert_eq!(s.next_question().unwrap().id, "title");
}
