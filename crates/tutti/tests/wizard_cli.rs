//! `tutti wizard` and pack validation from outside: the real binary with piped stdin, a
//! scripted answers file, and `tutti serve` refusing a broken pack directory.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

fn tutti() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tutti"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TUTTI_") {
            c.env_remove(k);
        }
    }
    c
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn interactive_session_reprompts_and_writes_a_loadable_spec() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("club.toml");
    // Pack by name after a wrong one; an invalid answer; a skipped required question;
    // then answers until `:done`.
    let input = "nonsense\nelectronic\nClub Night\nlots\n900\n\ndedicated_wifi\n:done\n";
    let out = run_with_stdin(tutti().arg("wizard").arg("--out").arg(&out_file), input);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("'nonsense' is not a pack"), "{stdout}");
    assert!(stdout.contains("What is the piece called?"), "{stdout}");
    assert!(
        stdout.contains("question 'audience_size': expected a whole number from 1 to 100000 phones, got 'lots'; try again"),
        "{stdout}"
    );
    assert!(
        stdout.contains("is required and cannot be skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("Coverage: maturity"), "{stdout}");
    assert!(stdout.contains("Missing required answers: "), "{stdout}");
    let toml = std::fs::read_to_string(&out_file).unwrap();
    assert!(toml.starts_with("# Drafted by `tutti wizard` with the 'electronic' pack"));
    let spec = tutti_spec::PieceSpec::from_toml(&toml).unwrap();
    assert_eq!(spec.slug, "club-night");
    assert_eq!(spec.title, "Club Night");

    // The file exists now: refused without --force.
    let again = run_with_stdin(
        tutti()
            .args(["wizard", "--pack", "electronic", "--out"])
            .arg(&out_file),
        "Other\n:done\n",
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn warnings_show_right_after_the_answer_that_raises_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_stdin(
        tutti()
            .args(["wizard", "--pack", "electronic", "--out"])
            .arg(dir.path().join("w.toml")),
        "Crowd\n6000\n:done\n",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let warning = "  warning: With 6000 phones each phone may send at most 10 inputs";
    let at = stdout.find(warning).expect("the warning is shown");
    let answered = stdout.rfind("✓ maturity").unwrap();
    let summary = stdout.find("Coverage: maturity").unwrap();
    // After the answer's confirmation, before the next question and the summary.
    assert!(answered < at && at < summary, "{stdout}");
    assert_eq!(stdout.matches(warning).count(), 1, "shown once: {stdout}");
}

#[test]
fn end_of_input_before_a_pack_is_a_usage_error() {
    let out = run_with_stdin(tutti().arg("wizard"), "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no pack chosen"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn scripted_answers_draft_the_spec_with_findings_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("answers.json");
    std::fs::write(
        &answers,
        json!({
            "pack": "electronic",
            "answers": {
                // Dependent questions may come before what they depend on.
                "tempo_min": 150, "tempo_max": "90 bpm",
                "title": "Stress Test", "audience_size": 25000, "network": "venue_wifi",
                "tick_rate": 60, "controls": ["tempo", "brightness"], "performer_override": "no",
                "duration_min": null
            }
        })
        .to_string(),
    )
    .unwrap();
    let out = tutti()
        .args(["wizard", "--json", "--answers"])
        .arg(&answers)
        .arg("--out")
        .arg(dir.path().join("s.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pack"], "electronic");
    assert_eq!(v["spec"]["slug"], "stress-test");
    assert_eq!(v["ready"], false);
    let conflicts: Vec<&str> = v["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule"].as_str().unwrap())
        .collect();
    assert!(conflicts.contains(&"wifi-60hz-crowd"), "{v:#}");
    assert!(v["coverage"]["maturity"].as_u64().unwrap() > 0);
    let toml = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    assert!(toml.contains("# CONFLICT (wifi-60hz-crowd)"), "{toml}");
    tutti_spec::PieceSpec::from_toml(&toml).unwrap();

    // To stdout with `--out -`: the TOML alone on stdout, the summary on stderr.
    let out = tutti()
        .args(["wizard", "--out", "-", "--answers"])
        .arg(&answers)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec = tutti_spec::PieceSpec::from_toml(&text(&out.stdout)).unwrap();
    assert_eq!(spec.tick_hz, 60);
    assert!(text(&out.stderr).contains("CONFLICT (wifi-60hz-crowd)"));
}

#[test]
fn bad_answers_files_name_the_question() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.json");
    for (answers, expect) in [
        (
            json!({"pack": "electronic", "answers": {"tick_rate": 500}}),
            "question 'tick_rate': expected",
        ),
        (
            json!({"pack": "electronic", "answers": {"nope": 1}}),
            "has no question 'nope'",
        ),
        (
            json!({"pack": "nowhere", "answers": {}}),
            "unknown pack 'nowhere'",
        ),
        (
            json!({"pack": "electronic", "answers": {"pitch_span": 5}}),
            "question 'pitch_span' does not apply",
        ),
        (json!({"pack": "electronic", "answerz": {}}), "--pack"),
    ] {
        std::fs::write(&f, answers.to_string()).unwrap();
        let out = tutti()
            .args(["wizard", "--out", "-", "--answers"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{answers}");
        assert!(
            text(&out.stderr).contains(expect),
            "{answers}: {}",
            text(&out.stderr)
        );
    }
}

fn broken_pack_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packs/dance.json"
    ))
    .unwrap();
    let mut pack: Value = serde_json::from_str(&src).unwrap();
    pack["id"] = "my-dance".into();
    pack["categories"][0]["target"] = json!("three");
    std::fs::write(dir.path().join("my-dance.json"), pack.to_string()).unwrap();
    dir
}

#[test]
fn serve_refuses_to_start_with_an_invalid_pack_naming_file_and_field() {
    let packs = broken_pack_dir();
    let data = tempfile::tempdir().unwrap();
    let out = tutti()
        .args(["serve", "--listen", "127.0.0.1:0", "--packs-dir"])
        .arg(packs.path())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(
        err.contains("my-dance.json: categories[0] (id 'identity').target: invalid type"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("Tutti is running"));

    // The same through the environment, and for `tutti wizard`.
    let out = tutti()
        .args(["wizard", "--list-packs"])
        .env("TUTTI_PACKS_DIR", packs.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(
        text(&out.stderr).contains("my-dance.json: categories[0]"),
        "{}",
        text(&out.stderr)
    );

    // A valid extra pack is listed after the built-in ones.
    let good = tempfile::tempdir().unwrap();
    let mut pack: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../packs/dance.json"
        ))
        .unwrap(),
    )
    .unwrap();
    pack["id"] = "my-dance".into();
    std::fs::write(good.path().join("my-dance.json"), pack.to_string()).unwrap();
    let out = tutti()
        .args(["wizard", "--list-packs", "--packs-dir"])
        .arg(good.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .contains("my-dance"));
}
