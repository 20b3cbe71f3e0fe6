//! WebSocket conformance: the Autobahn testsuite's cases of sections 1–7 (framing, pings,
//! reserved bits, opcodes, fragmentation, UTF-8, closing) against the echo endpoint
//! (`tutti_live::echo`, the hub's own framing), driven by the suite's fuzzing client
//! (`tests/autobahn/fuzz.py`; `scripts/deps test` installs it into `.venv-tools/autobahn`).
//!
//! Every case must pass, or be NON-STRICT and listed with its reason in
//! `tests/autobahn/non-strict.txt`; the per-case table in `docs/conformance/autobahn.md`
//! must be what this run produced (`TUTTI_AUTOBAHN_UPDATE=1` rewrites it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BEGIN: &str =
    "<!-- autobahn-results:begin (written by crates/tutti-live/tests/autobahn.rs) -->\n";
const END: &str = "<!-- autobahn-results:end -->";
/// The whole run takes well under a minute; past this something hangs.
const LIMIT: Duration = Duration::from_secs(300);

fn tools(repo: &Path) -> (PathBuf, PathBuf) {
    let venv = std::env::var_os("TUTTI_AUTOBAHN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv-tools/autobahn"));
    let python = venv.join("bin/python");
    let ported = venv.join("ported");
    assert!(
        python.exists() && ported.join("autobahntestsuite/case/__init__.py").exists(),
        "the Autobahn testsuite is missing from {}: run scripts/deps test (or set \
         TUTTI_AUTOBAHN_VENV)",
        venv.display()
    );
    (python, ported)
}

#[test]
fn autobahn_cases_of_sections_1_to_7_pass() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = here.join("../..");
    let (python, ported) = tools(&repo);

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("address"))
                .expect("send");
            tutti_live::echo::serve(listener).await.expect("serve");
        });
    });
    let addr = rx.recv().expect("echo endpoint started");

    let summary = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("autobahn-summary.md");
    let _ = std::fs::remove_file(&summary);
    let dir = here.join("tests/autobahn");
    let mut child = Command::new(&python)
        .arg(dir.join("fuzz.py"))
        .arg(format!("ws://{addr}"))
        .arg(&ported)
        .arg(dir.join("non-strict.txt"))
        .arg(&summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Autobahn client");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("the Autobahn run took over {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("Cases = "))
        .collect();
    println!("{}", tail.join("\n"));
    assert!(
        status.success(),
        "Autobahn cases failed:\n{}",
        tail.join("\n")
    );

    let table = std::fs::read_to_string(&summary).expect("summary");
    let doc_path = repo.join("docs/conformance/autobahn.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/conformance/autobahn.md");
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/conformance/autobahn.md lacks the results markers");
    };
    let committed = &doc[b + BEGIN.len()..e];
    if committed != table {
        if std::env::var_os("TUTTI_AUTOBAHN_UPDATE").is_some() {
            let new = format!("{}{}{}", &doc[..b + BEGIN.len()], table, &doc[e..]);
            std::fs::write(&doc_path, new).expect("write the summary");
        } else {
            panic!(
                "the results differ from docs/conformance/autobahn.md (rerun with \
                 TUTTI_AUTOBAHN_UPDATE=1 to rewrite it, and review the change):\n{}",
                differing_rows(committed, &table)
            );
        }
    }
}

/// The rows of two result tables that differ, case by case (`-` committed, `+` this run),
/// so a CI log that keeps only the end of the output still shows what changed.
fn differing_rows(committed: &str, now: &str) -> String {
    let rows = |t: &str| -> std::collections::BTreeMap<String, String> {
        t.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| Case"))
            .map(|l| {
                (
                    l.split('|').nth(1).unwrap_or("").trim().to_string(),
                    l.to_string(),
                )
            })
            .collect()
    };
    let (old, new) = (rows(committed), rows(now));
    let mut out = String::new();
    for case in old
        .keys()
        .chain(new.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if old.get(case) != new.get(case) {
            for (sign, row) in [("-", old.get(case)), ("+", new.get(case))] {
                if let Some(row) = row {
                    out.push_str(&format!("{sign} {row}\n"));
                }
            }
        }
    }
    if out.is_empty() {
        out.push_str("(same rows; the text around them differs)\n");
    }
    out
}
