//! The shipped domain packs: they load, the embedded copies equal the files on disk, and
//! scripted and random runs through every pack always draft a spec that validates and
//! that the embedded audio engine accepts.

use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value as Json};
use tutti_wizard::{builtin_packs, AnswerType, Pack, Session, BUILTIN_PACK_FILES};

fn packs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../packs")
}

fn packs() -> Vec<Arc<Pack>> {
    builtin_packs()
        .expect("built-in packs load")
        .into_iter()
        .map(Arc::new)
        .collect()
}

#[test]
fn every_shipped_pack_loads_with_14_to_20_questions() {
    let packs = packs();
    let ids: Vec<&str> = packs.iter().map(|p| p.id()).collect();
    assert_eq!(
        ids,
        [
            "acoustic",
            "dance",
            "dj-set",
            "electronic",
            "installation",
            "light-visuals",
            "opera-voice",
            "theatre"
        ]
    );
    for p in &packs {
        let n = p.questions().len();
        assert!((14..=20).contains(&n), "{}: {n} questions", p.id());
        assert!(p.categories().len() >= 6, "{}: few categories", p.id());
        assert!(p.rules().len() >= 10, "{}: few rules", p.id());
        for q in p.questions() {
            assert!(!q.help.is_empty(), "{}: {} has no help", p.id(), q.id);
        }
    }
}

#[test]
fn embedded_packs_equal_the_files_on_disk() {
    let mut on_disk: Vec<(String, String)> = std::fs::read_dir(packs_dir())
        .expect("packs/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    on_disk.sort();
    let embedded: Vec<(String, String)> = BUILTIN_PACK_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let names = |v: &[(String, String)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&embedded),
        names(&on_disk),
        "every file in packs/ must be embedded in BUILTIN_PACK_FILES"
    );
    for ((name, a), (_, b)) in embedded.iter().zip(&on_disk) {
        assert!(
            a == b,
            "{name}: the embedded copy differs from packs/{name}"
        );
    }
    let loaded = Pack::load_dir(packs_dir()).expect("packs/ loads");
    let builtin = builtin_packs().unwrap();
    assert_eq!(loaded, builtin);
}

#[test]
fn packs_round_trip_through_json() {
    for p in packs() {
        let text = p.to_json_pretty();
        let again = Pack::from_json(p.file(), &text).expect("re-serialised pack loads");
        assert_eq!(*p, again, "{}", p.id());
    }
}

/// How a scripted run picks answers.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Example,
    Highest,
    Lowest,
}

fn pick(answer: &AnswerType, example: &Json, how: Pick) -> Json {
    let hi = matches!(how, Pick::Highest);
    match (how, answer) {
        (Pick::Example, _) => example.clone(),
        (_, AnswerType::Text { max_len }) => {
            if hi {
                json!("Ü".repeat(max_len.unwrap_or(500) as usize))
            } else {
                json!("A")
            }
        }
        (_, AnswerType::Number { min, max, .. }) => json!(if hi { *max } else { *min }),
        (_, AnswerType::Integer { min, max, .. }) => {
            json!(if hi {
                max.unwrap_or(1000)
            } else {
                min.unwrap_or(0)
            })
        }
        (_, AnswerType::Boolean) => json!(hi),
        (_, AnswerType::Choice { options }) => {
            let o = if hi { options.last() } else { options.first() };
            json!(o.unwrap().value)
        }
        (_, AnswerType::MultiChoice { options, min, max }) => {
            let n = if hi {
                max.map_or(options.len(), |m| m as usize)
            } else {
                min.map_or(1, |m| m as usize)
            };
            json!(options
                .iter()
                .take(n)
                .map(|o| o.value.clone())
                .collect::<Vec<_>>())
        }
    }
}

/// Answer every question the session offers, evaluating after each answer.
fn scripted_run(pack: &Arc<Pack>, how: Pick) -> Session {
    let mut s = Session::new(Arc::clone(pack));
    let first = s
        .evaluate()
        .unwrap_or_else(|e| panic!("{}: empty draft: {e}", pack.id()));
    first.spec.validate().unwrap();
    let mut asked = 0;
    while let Some(q) = s.next_question() {
        let (id, value) = (q.id.clone(), pick(&q.answer, &q.example, how));
        s.answer(&id, value)
            .unwrap_or_else(|e| panic!("{} {how:?}: answering {id}: {e}", pack.id()));
        let ev = s
            .evaluate()
            .unwrap_or_else(|e| panic!("{} {how:?}: after {id}: {e}", pack.id()));
        ev.spec.validate().unwrap();
        tutti_audio::PieceControls::new(&ev.spec)
            .unwrap_or_else(|e| panic!("{} {how:?}: after {id}: {e}", pack.id()));
        asked += 1;
        assert!(
            asked <= pack.questions().len(),
            "{}: asks forever",
            pack.id()
        );
    }
    s
}

#[test]
fn example_answers_reach_full_coverage_and_a_valid_draft() {
    for pack in packs() {
        let s = scripted_run(&pack, Pick::Example);
        let cov = s.coverage();
        assert_eq!(cov.maturity, 100, "{}: {cov:?}", pack.id());
        assert!(cov.complete && cov.missing_required.is_empty());
        for c in &cov.categories {
            assert_eq!(c.ratio, 1.0, "{}: category {} not covered", pack.id(), c.id);
            assert!(c.effective_target >= 1, "{}: {} unused", pack.id(), c.id);
        }
        // With the example answers every question applies.
        assert_eq!(
            s.answers().len(),
            pack.questions().len(),
            "{}: some questions were never asked",
            pack.id()
        );
        let ev = s.evaluate().unwrap();
        assert!(
            ev.conflicts.is_empty(),
            "{}: the examples conflict: {:?}",
            pack.id(),
            ev.conflicts
        );
        assert!(ev.is_ready());
        assert!(ev.spec.params.len() >= 2, "{}: {:?}", pack.id(), ev.spec);
        let title = s.answers()["title"].as_str().unwrap();
        assert_eq!(ev.spec.title, title);
        assert_eq!(
            ev.spec.tick_hz as f64,
            s.answers()["tick_rate"].as_f64().unwrap()
        );
        assert!(ev.fired_rules.iter().any(|r| r == "identity"));
    }
}

#[test]
fn highest_and_lowest_answers_still_draft_valid_specs() {
    for pack in packs() {
        for how in [Pick::Highest, Pick::Lowest] {
            let s = scripted_run(&pack, how);
            let cov = s.coverage();
            assert_eq!(cov.maturity, 100, "{} {how:?}: {cov:?}", pack.id());
        }
    }
}

#[test]
fn sixty_hz_with_twenty_thousand_phones_on_venue_wifi_is_a_conflict() {
    for pack in packs() {
        let run = |tick: u32, phones: u32, network: &str| {
            let mut s = Session::new(Arc::clone(&pack));
            s.answer("tick_rate", json!(tick)).unwrap();
            s.answer("audience_size", json!(phones)).unwrap();
            s.answer("network", json!(network)).unwrap();
            s.evaluate().unwrap()
        };
        let ev = run(60, 20_000, "venue_wifi");
        let c = ev
            .conflicts
            .iter()
            .find(|c| c.rule == "wifi-60hz-crowd")
            .unwrap_or_else(|| panic!("{}: no conflict: {:?}", pack.id(), ev.conflicts));
        assert!(
            c.message.contains("60 Hz") && c.message.contains("20000 phones"),
            "{}",
            c.message
        );
        assert!(!ev.is_ready());
        // The draft is still valid, with phone updates capped for the crowd.
        assert!(
            ev.spec.state_hz <= 10 && ev.spec.input_rate <= 5,
            "{}",
            pack.id()
        );
        for (tick, phones, net) in [
            (30, 20_000, "venue_wifi"),
            (60, 19_999, "venue_wifi"),
            (60, 20_000, "dedicated_wifi"),
        ] {
            let ev = run(tick, phones, net);
            assert!(
                ev.conflicts.iter().all(|c| c.rule != "wifi-60hz-crowd"),
                "{}: {tick} Hz {phones} {net}",
                pack.id()
            );
        }
    }
}

fn random_value(answer: &AnswerType, r: &mut u64) -> Json {
    let mut next = || {
        // xorshift64*
        *r ^= *r >> 12;
        *r ^= *r << 25;
        *r ^= *r >> 27;
        r.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let unit = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64;
    match answer {
        AnswerType::Text { .. } => {
            json!(["Piece", "Ünïcode ✓", "a-b c", "x"][(next() % 4) as usize])
        }
        AnswerType::Number { min, max, .. } => json!(min + unit(next()) * (max - min)),
        AnswerType::Integer { min, max, .. } => {
            let lo = min.unwrap_or(0);
            let hi = max.unwrap_or(100_000);
            json!(lo + (next() % ((hi - lo) as u64 + 1)) as i64)
        }
        AnswerType::Boolean => json!(next() % 2 == 0),
        AnswerType::Choice { options } => {
            json!(options[(next() % options.len() as u64) as usize].value)
        }
        AnswerType::MultiChoice { options, min, max } => {
            let lo = min.map_or(1, |m| m as usize);
            let hi = max.map_or(options.len(), |m| m as usize);
            let n = lo + (next() % (hi - lo + 1) as u64) as usize;
            let mut pool: Vec<String> = options.iter().map(|o| o.value.clone()).collect();
            let mut out = Vec::new();
            for _ in 0..n {
                let i = (next() % pool.len() as u64) as usize;
                out.push(pool.remove(i));
            }
            json!(out)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// Answer, re-answer, skip and clear questions in a random order with random valid
    /// values: evaluating never fails and the draft always validates.
    #[test]
    fn random_sessions_always_draft_a_valid_spec(seed in 1u64.., which in 0usize..8, steps in 1usize..40) {
        let packs = packs();
        let pack = &packs[which % packs.len()];
        let mut s = Session::new(Arc::clone(pack));
        let mut r = seed;
        for step in 0..steps {
            let qs = pack.questions();
            let q = &qs[(r.wrapping_mul(2654435761).wrapping_add(step as u64) >> 7) as usize % qs.len()];
            let v = random_value(&q.answer, &mut r);
            match r % 10 {
                0 if !q.required => s.skip(&q.id).unwrap(),
                1 => s.clear(&q.id).unwrap(),
                _ => {
                    if s.applies(&q.id) {
                        s.answer(&q.id, v).unwrap();
                    } else {
                        prop_assert!(s.answer(&q.id, v).is_err());
                    }
                }
            }
            let ev = s.evaluate();
            prop_assert!(ev.is_ok(), "{} after {}: {}", pack.id(), q.id, ev.unwrap_err());
            let ev = ev.unwrap();
            prop_assert!(tutti_audio::PieceControls::new(&ev.spec).is_ok());
            prop_assert!(ev.coverage.maturity <= 100);
        }
    }
}
