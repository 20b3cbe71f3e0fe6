//! `tutti load --cues` against a real in-process server over plain loopback: a performer
//! connection cues the demo piece's voices while 50 clients read; every cue reaches every
//! client, the counts add up, the margins are within the lead, and the server counted the
//! same cues. Bad options are refused with errors that name them. Correctness only, never
//! timing: whether a delivery came before its time is reported, not asserted.

mod common;

use common::{server, TOKEN};

use tutti_load::{run, LoadOptions};
use tutti_server::Running;

fn options(running: &Running) -> LoadOptions {
    LoadOptions {
        url: format!("ws://{}/live/v1", running.addr),
        show: Some(running.show_code.clone()),
        clients: 50,
        ramp: 1000.0,
        rate: 5.0,
        moving: 0.1,
        duration: "2s".into(),
        max_duration: "60s".into(),
        cues: Some(4.0),
        performer_token: Some(TOKEN.into()),
        ..LoadOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cue_reaches_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let url = format!("ws://{}/live/v1", running.addr);
    let report = run(options(&running)).await.expect("the run completes");
    let table = report.table();
    assert!(
        report.problems().is_empty(),
        "{:#?}\n{table}",
        report.problems()
    );
    assert!(report.checks.cues_consistent, "{table}");
    assert!(report.sync.is_none(), "--cues alone runs no client sync");
    let c = report.cues.as_ref().expect("cue figures with --cues");

    // The performer: the demo's two voices in turn, its lead, every cue acknowledged.
    let p = &c.performer;
    assert_eq!(p.rate, 4.0);
    assert_eq!(p.voices, ["chime", "pulse"]);
    assert_eq!(p.lead_ms, 150.0);
    assert!(p.sent >= 2, "a 2 s window at 4/s: {table}");
    assert_eq!(p.acked, p.sent, "{table}");
    assert!(p.refused.is_empty() && p.problem.is_none(), "{table}");
    let cues = p.acked;
    let stats = running.hub.stats.cues_json();
    assert_eq!(
        stats["sent"], cues,
        "the server counted the same cues: {stats}"
    );
    assert!(
        stats["delivered"].as_u64().unwrap() >= cues * 50,
        "the server handed every cue to every client: {stats}"
    );

    // The reference that maps our clock to the show clock.
    let r = &c.reference;
    assert_eq!(r.url, url);
    assert!(r.consistent, "{table}");
    assert!(r.bound_ms.is_finite() && r.bound_ms >= 0.0, "{table}");

    // Every cue reached every client, once; the counts add up.
    assert_eq!(c.clients, 50, "{table}");
    assert_eq!(c.expected, cues * 50, "{table}");
    assert_eq!((c.received, c.missing), (c.expected, 0), "{table}");
    assert_eq!(c.before + c.late, c.received, "{table}");
    let share = c.before as f64 / c.expected as f64 * 100.0;
    assert!((c.before_pct - share).abs() < 1e-9, "{table}");
    // A frame reaches the socket (the kernel's stamp) before the client reads it.
    assert!(c.before_read <= c.before, "{table}");
    assert_eq!((c.cues_complete, c.clients_complete), (cues, 50), "{table}");
    assert_eq!(
        (c.unknown, c.out_of_order, c.malformed, c.at_differs),
        (0, 0, 0, 0),
        "{table}"
    );

    // One line per cue: consecutive ids from 1 on a fresh server, times in order.
    assert_eq!(c.listed, cues);
    assert_eq!(c.per_cue.len() as u64, cues);
    for (i, line) in c.per_cue.iter().enumerate() {
        assert_eq!(line.id, Some(i as u64 + 1), "{table}");
        assert_eq!((line.received, line.missing), (50, 0), "{table}");
        assert_eq!(line.before + line.late, line.received);
        let at = line.at_ms.expect("a time");
        if i > 0 {
            assert!(at > c.per_cue[i - 1].at_ms.unwrap(), "{table}");
        }
    }

    // Margins: no delivery can come more than the lead before its time (the server
    // stamps `at` = its now + lead before sending), give or take the reference's bound
    // (the smallest and largest margins are exact, not read from a histogram).
    let m = c.margin_ms.expect("margins");
    assert!(m.max <= p.lead_ms + r.bound_ms + 1e-6, "{m:?}\n{table}");
    assert!(
        m.min <= m.p1 && m.p1 <= m.p5 && m.p5 <= m.p50 && m.p50 <= m.max,
        "{m:?}"
    );

    let json = report.to_json();
    for key in [
        "performer",
        "reference",
        "expected",
        "received",
        "before",
        "late",
        "missing",
        "before_pct",
        "before_read",
        "before_read_pct",
        "margin_ms",
        "per_cue",
    ] {
        assert!(!json["cues"][key].is_null(), "cues.{key} in {json:#}");
    }
    for key in ["p50", "p5", "p1", "min", "max"] {
        assert!(json["cues"]["margin_ms"][key].is_f64(), "{key}");
    }
    assert!(json["cues"]["reference"]["bound_ms"].is_f64());
    assert_eq!(json["checks"]["cues_consistent"], true);
    assert!(
        table.contains("deliveries reached their socket before their time"),
        "{table}"
    );
    assert!(
        table.contains("margin (at - arrival at the socket)"),
        "{table}"
    );

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cue_options_are_checked() {
    let bad = |o: LoadOptions| {
        let e = o.validate().unwrap_err();
        (e.option_name(), e.to_string())
    };
    let base = || LoadOptions {
        cues: Some(2.0),
        performer_token: Some(TOKEN.into()),
        ..LoadOptions::default()
    };
    base().validate().unwrap();
    let (option, text) = bad(LoadOptions {
        performer_token: None,
        ..base()
    });
    assert_eq!(option, Some("--cues"));
    assert!(text.contains("--performer-token"), "{text}");
    for rate in [0.0, 0.05, 10.5, 100.0, -1.0, f64::NAN, f64::INFINITY] {
        let (option, text) = bad(LoadOptions {
            cues: Some(rate),
            ..base()
        });
        assert_eq!(option, Some("--cues"), "{rate}");
        assert!(text.contains("0.1–10 cues per second"), "{text}");
    }
    for token in ["", &"x".repeat(65)] {
        let (option, _) = bad(LoadOptions {
            performer_token: Some(token.to_string()),
            ..base()
        });
        assert_eq!(option, Some("--performer-token"));
    }
    let (option, text) = bad(LoadOptions {
        cues: None,
        ..base()
    });
    assert_eq!(option, Some("--performer-token"));
    assert!(text.contains("only means something with --cues"), "{text}");
    let (option, _) = bad(LoadOptions {
        cue_voice: Some("chime".into()),
        ..LoadOptions::default()
    });
    assert_eq!(option, Some("--cue-voice"));
    let (option, text) = bad(LoadOptions {
        sync_reference: Some("ws://127.0.0.1:9/live/v1".into()),
        ..LoadOptions::default()
    });
    assert_eq!(option, Some("--sync-reference"));
    assert!(text.contains("--cues"), "{text}");
    LoadOptions {
        sync_reference: Some("ws://127.0.0.1:9/live/v1".into()),
        ..base()
    }
    .validate()
    .expect("--cues takes a reference");

    // What only the server can tell: a wrong token, a voice the piece lacks.
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let e = run(LoadOptions {
        performer_token: Some("not-the-token".into()),
        ..options(&running)
    })
    .await
    .unwrap_err();
    assert_eq!(e.option_name(), Some("--performer-token"), "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    let e = run(LoadOptions {
        cue_voice: Some("tuba".into()),
        ..options(&running)
    })
    .await
    .unwrap_err();
    assert_eq!(e.option_name(), Some("--cue-voice"), "{e}");
    assert!(e.to_string().contains("chime, pulse"), "{e}");
    assert_eq!(running.hub.stats.cues_json()["sent"], 0, "nothing was cued");

    // Without --cues: no figures, the check holds.
    let report = run(LoadOptions {
        clients: 2,
        duration: "1s".into(),
        cues: None,
        performer_token: None,
        ..options(&running)
    })
    .await
    .expect("the run completes");
    assert!(report.cues.is_none() && report.checks.cues_consistent);
    assert!(report.to_json()["cues"].is_null());
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cues_and_sync_share_one_reference() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let url = format!("ws://{}/live/v1", running.addr);
    let report = run(LoadOptions {
        clients: 8,
        duration: "1s".into(),
        cues: Some(3.0),
        cue_voice: Some("pulse".into()),
        sync: true,
        sync_reference: Some(url.clone()),
        ..options(&running)
    })
    .await
    .expect("the run completes");
    let table = report.table();
    assert!(report.problems().is_empty(), "{table}");
    let (y, c) = (report.sync.as_ref().unwrap(), report.cues.as_ref().unwrap());
    assert_eq!(y.reference, c.reference, "one reference serves both");
    assert_eq!(c.reference.url, url);
    assert_eq!(c.performer.voices, ["pulse"]);
    assert!(c.performer.acked >= 1, "{table}");
    assert_eq!(
        (c.clients, c.expected),
        (8, c.performer.acked * 8),
        "{table}"
    );
    assert_eq!((c.received, c.missing), (c.expected, 0), "{table}");
    running.shutdown().await.unwrap();
}
