//! `tutti report` and `tutti export --show` on a data directory holding a synthetic show
//! (the real engine's states in a real store): the files they write, their formats, and the
//! exit codes of bad arguments.

use std::path::Path;
use std::process::{Command, Output};

use tutti_server::synthetic::{self, SyntheticShow};
use tutti_store::{Store, StoreConfig};

fn tutti(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn recorded(dir: &Path) -> synthetic::Recorded {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(StoreConfig::new(dir.join("tutti.db"))).unwrap();
        let r = synthetic::record(
            &store,
            &SyntheticShow {
                seconds: 40,
                participants: 30,
                ..SyntheticShow::default()
            },
        )
        .await
        .unwrap();
        store.close().await.unwrap();
        r
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn report_and_series_from_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recorded(dir.path());
    let data = dir.path().to_str().unwrap();
    let code = rec.show.code.as_str();

    let out = dir.path().join("report.html");
    let o = tutti(&[
        "report",
        "--data-dir",
        data,
        "--show",
        code,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("41 snapshots"), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.matches("<svg").count() >= 10);
    assert!(!html.contains("http://") && !html.contains("<script"));

    // The file is not overwritten unless asked.
    let o = tutti(&[
        "report",
        "--data-dir",
        data,
        "--show",
        code,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));

    let o = tutti(&[
        "report",
        "--data-dir",
        data,
        "--show",
        code,
        "--format",
        "json",
        "--out",
        "-",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["summary"]["snapshots"], 41);
    assert_eq!(j["summary"]["inputs"], rec.inputs);

    let o = tutti(&[
        "export",
        "--show",
        code,
        "--data-dir",
        data,
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("t_s,at_ms,tick,valid,participants,connected,moving"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 42);
    let o = tutti(&[
        "export",
        "--show",
        code,
        "--data-dir",
        data,
        "--format",
        "json",
        "--from",
        "10",
        "--to",
        "19",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["format"], "tutti.show-series/1");
    assert_eq!(j["rows"].as_array().unwrap().len(), 10);

    // Bad arguments: a clear message and exit 2; a missing store: exit 74.
    for (args, needle) in [
        (
            vec!["report", "--data-dir", data, "--show", "NOPE42"],
            "no show with code 'NOPE42'",
        ),
        (
            vec![
                "report",
                "--data-dir",
                data,
                "--show",
                code,
                "--from",
                "30",
                "--to",
                "10",
            ],
            "to: must be after from",
        ),
        (
            vec!["report", "--data-dir", data, "--show", code, "--from", "-5"],
            "from:",
        ),
        (
            vec!["export", "--show", code, "--data-dir", data, "--to", "NaN"],
            "to:",
        ),
        (vec!["export", "--data-dir", data], "--show CODE"),
    ] {
        let o = tutti(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let o = tutti(&[
        "export",
        "--show",
        code,
        "--data-dir",
        data,
        "--format",
        "xlsx",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap refuses the format: {}",
        stderr(&o)
    );
    let empty = tempfile::tempdir().unwrap();
    let o = tutti(&[
        "report",
        "--data-dir",
        empty.path().to_str().unwrap(),
        "--show",
        code,
    ]);
    assert_eq!(o.status.code(), Some(74), "{}", stderr(&o));
    assert!(stderr(&o).contains("no Tutti store"), "{}", stderr(&o));
}
