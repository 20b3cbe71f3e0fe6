//! The load generator against a real in-process Tutti server: a small run that checks
//! correctness only (all connected, every frame parsed, nothing rejected, acks matching
//! inputs, latency measured), never timing; the same with garbage, silent and churning
//! attackers alongside, checked against the server's own counters; plus option errors
//! and the calibration floor.

mod common;

use common::server;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tutti_load::attack::GarbageKind;
use tutti_load::{measure_floor, run, LoadError, LoadOptions};
use tutti_protocol::ErrorCode;
use tutti_server::Running;

fn options(running: &Running) -> LoadOptions {
    LoadOptions {
        url: format!("ws://{}/live/v1", running.addr),
        show: Some(running.show_code.clone()),
        clients: 200,
        ramp: 2000.0,
        rate: 10.0,
        moving: 0.8,
        votes: 0.2,
        slow: 0.05,
        duration: "3s".into(),
        max_duration: "60s".into(),
        ..LoadOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_is_correct() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let mut opts = options(&running);
    // The server runs in this process: its CPU is ours.
    opts.server_pid = Some(std::process::id());
    opts.calibrate = true;
    let report = run(opts).await.expect("the run completes");
    let accepted_by_server = running.hub.stats.inputs_accepted.load(Relaxed);

    assert!(
        report.problems().is_empty(),
        "{:#?}\n{}",
        report.problems(),
        report.table()
    );
    let c = &report.clients;
    assert_eq!(
        (c.asked, c.connected, c.failed, c.dropped),
        (200, 200, 0, 0)
    );
    assert_eq!((c.moving, c.slow, c.idle), (160, 10, 30));
    assert_eq!(report.frames.parse_failures, 0);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Acks match inputs: every input sent was acknowledged, and the server applied
    // exactly the inputs the clients sent.
    assert!(report.inputs.sent_total > 0);
    assert_eq!(report.inputs.acked_total, report.inputs.sent_total);
    assert_eq!(accepted_by_server, report.inputs.sent_total);
    assert_eq!(report.acks.checked, 160);
    assert_eq!((report.acks.mismatched, report.acks.anomalies), (0, 0));
    assert!(report.latency.samples > 0);
    assert!(report.latency.p50_ms > 0.0 && report.latency.p50_ms <= report.latency.max_ms);
    // Every ack says when its input was applied, by the same clock here: never before the
    // input was sent, and (the tick runs before the state that carries the ack is written)
    // not after the state arrived, give or take the millisecond the ack rounds to.
    assert_eq!(report.acks.clock_behind, 0, "{}", report.table());
    assert!(report.applied.samples > 0, "{}", report.table());
    assert!(
        report.applied.p50_ms > 0.0 && report.applied.p50_ms <= report.latency.p50_ms + 1.0,
        "{}",
        report.table()
    );
    // Every reading client pinged about once a second and got its pong.
    assert!(report.rtt.samples > 0, "{}", report.table());
    assert!(report.rtt.p50_ms > 0.0 && report.rtt.p50_ms <= report.rtt.max_ms);
    assert!(report.states.received_total > 0);
    assert!(report.states.per_client_min <= report.states.per_client_mean);
    assert!(report.states.per_client_mean <= report.states.per_client_max);
    assert_eq!(report.states.state_hz, 20.0);

    let server = report
        .server
        .as_ref()
        .expect("server figures with --server-pid");
    assert!(server.cpu_s > 0.0 && server.rss_max_mib > 0.0);
    let cal = report
        .calibration
        .as_ref()
        .expect("calibration with --calibrate");
    assert!(cal.floor.us_per_message.is_finite() && cal.floor.us_per_message > 0.0);
    assert!(cal.ratio.is_finite() && cal.ratio > 0.0);
    assert!(
        cal.floor.message_bytes > 100,
        "a state frame is a few hundred bytes"
    );

    let json = report.to_json();
    assert_eq!(json["clients"]["connected"], 200);
    assert_eq!(json["checks"]["acks_consistent"], true);
    assert!(json["latency"]["p99_ms"].as_f64().is_some());
    let table = report.table();
    assert!(table.contains("input->state p50"), "{table}");
    assert!(table.contains("input->applied p50"), "{table}");
    assert!(table.contains("calibration"), "{table}");

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_are_counted_apart_and_leave_honest_clients_correct() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let hub = running.hub.clone();
    // Watch the server's audience connections while the run goes on.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let watcher = tokio::spawn({
        let (hub, done, peak) = (hub.clone(), done.clone(), peak.clone());
        async move {
            while !done.load(Relaxed) {
                peak.fetch_max(hub.stats.audience.load(Relaxed), Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let opts = LoadOptions {
        clients: 100,
        slow: 0.0,
        garbage: 10,
        silent: 10,
        churn: 10,
        ..options(&running)
    };
    let report = run(opts).await.expect("the run completes");
    done.store(true, Relaxed);
    watcher.await.unwrap();
    let stats = &hub.stats;
    let explain = || format!("{}\n{:#?}", report.table(), report.attackers);

    // The honest clients: all connected, every frame parsed, nothing rejected, acks
    // consistent, and the server applied exactly the inputs they sent.
    assert!(
        report.problems().is_empty(),
        "{:#?}\n{}",
        report.problems(),
        explain()
    );
    let c = &report.clients;
    assert_eq!(
        (c.asked, c.connected, c.failed, c.dropped),
        (100, 100, 0, 0)
    );
    assert_eq!(report.frames.parse_failures, 0, "{}", explain());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.inputs.rejected, 0);
    assert!(report.inputs.sent_total > 0);
    assert_eq!(report.inputs.acked_total, report.inputs.sent_total);
    assert_eq!(
        stats.inputs_accepted.load(Relaxed),
        report.inputs.sent_total
    );
    assert_eq!(report.acks.checked, 80);
    assert_eq!((report.acks.mismatched, report.acks.anomalies), (0, 0));
    assert!(report.checks.attackers_handled);

    let a = report.attackers.as_ref().expect("an attackers section");
    // Garbage clients: joined, stayed connected, closed cleanly, and every kind of
    // garbage was sent and answered with its own error code.
    let g = &a.garbage;
    assert_eq!(
        (g.asked, g.connected, g.failed, g.dropped, g.closed_cleanly),
        (10, 10, 0, 0, 10),
        "{}",
        explain()
    );
    assert_eq!((g.unexpected, g.unparseable), (0, 0), "{}", explain());
    assert!(g.states > 0, "garbage clients still receive states");
    assert_eq!(
        g.expected.len(),
        GarbageKind::ALL.len(),
        "the demo piece has sliders"
    );
    let mut expected_codes = BTreeMap::new();
    for kind in GarbageKind::ALL {
        let sent = g.sent_by_kind.get(kind.name()).copied().unwrap_or(0);
        let code = kind.expected();
        assert!(sent > 0, "no {} frame was sent: {}", kind.name(), explain());
        assert_eq!(g.expected[kind.name()], code.as_str());
        assert!(
            g.errors.get(code.as_str()).copied().unwrap_or(0) > 0,
            "no {} error came back for {}: {}",
            code.as_str(),
            kind.name(),
            explain()
        );
        *expected_codes.entry(code.as_str()).or_insert(0u64) += sent;
    }
    assert_eq!(g.sent, g.sent_by_kind.values().sum::<u64>());
    // The server counted each garbage frame under its code, and nothing else: every
    // close handshake completed, so it had read every frame sent.
    for code in ErrorCode::ALL {
        let want = expected_codes.get(code.as_str()).copied().unwrap_or(0);
        assert_eq!(
            stats.errors_of(code),
            want,
            "server count of {}: {}",
            code.as_str(),
            explain()
        );
    }
    // Every error was either sent back or held back by the per-connection error budget.
    let received: u64 = g.errors.values().sum();
    assert_eq!(
        received + stats.errors_suppressed.load(Relaxed),
        g.sent,
        "{}",
        explain()
    );
    assert_eq!(g.unanswered, g.sent - received);
    // Every garbage frame but the binary ones counts as a rejected audience input.
    assert_eq!(
        stats.inputs_rejected.load(Relaxed),
        g.sent - g.sent_by_kind["binary"],
        "{}",
        explain()
    );

    // Silent clients: joined, never read, and found states waiting when they closed.
    let s = &a.silent;
    assert_eq!(
        (s.asked, s.connected, s.failed, s.dropped, s.closed_cleanly),
        (10, 10, 0, 0, 10),
        "{}",
        explain()
    );
    assert!(s.unread_frames > 0 && s.unread_mib > 0.0, "{}", explain());

    // Churners: every attempt joined and closed cleanly.
    let ch = &a.churn;
    assert_eq!(ch.asked, 10);
    assert!(ch.attempts > 0, "{}", explain());
    assert_eq!(
        (ch.joined, ch.failed, ch.closed_cleanly),
        (ch.attempts, 0, ch.attempts),
        "{}",
        explain()
    );
    // The server joined every participant: the probe, the honest clients, the garbage
    // and silent clients, and each churn connection (their slots wait for a resume).
    let show = hub.show(None).unwrap();
    assert_eq!(
        show.participants() as u64,
        1 + 100 + 10 + 10 + ch.joined,
        "{}",
        explain()
    );
    // Honest, garbage and silent clients were all connected at once; none was refused.
    assert!(peak.load(Relaxed) >= 120, "peak {}", peak.load(Relaxed));
    assert_eq!(stats.refused.load(Relaxed), 0);
    // Everyone closed: the server's connection counters return to zero.
    for _ in 0..500 {
        if hub.connections() == 0 && stats.audience.load(Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.connections(), 0);
    assert_eq!(stats.audience.load(Relaxed), 0);
    assert_eq!(stats.pending.load(Relaxed), 0);

    let json = report.to_json();
    assert_eq!(json["attackers"]["garbage"]["connected"], 10);
    assert_eq!(json["attackers"]["silent"]["closed_cleanly"], 10);
    assert_eq!(json["attackers"]["churn"]["failed"], 0);
    assert_eq!(json["asked"]["garbage_rate"], 20.0);
    assert_eq!(json["checks"]["attackers_handled"], true);
    let table = report.table();
    for line in ["attackers", "garbage", "silent", "churn", "attackers ok"] {
        assert!(table.contains(line), "{line}: {table}");
    }

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_join_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let mut opts = options(&running);
    opts.show = Some("NOSUCH".into());
    let e = run(opts).await.unwrap_err();
    assert!(matches!(e, LoadError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("unknown_show"), "{e}");
    running.shutdown().await.unwrap();

    // Nothing listens there any more.
    let mut opts = LoadOptions::default();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    opts.url = format!("ws://{}/live/v1", l.local_addr().unwrap());
    drop(l);
    let e = run(opts).await.unwrap_err();
    assert!(e.to_string().contains("connect"), "{e}");
}

#[tokio::test]
async fn bad_options_give_named_errors() {
    type Spoil = Box<dyn Fn(&mut LoadOptions)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("--clients", Box::new(|o| o.clients = 0)),
        ("--clients", Box::new(|o| o.clients = 1_000_000)),
        ("--ramp", Box::new(|o| o.ramp = 0.0)),
        ("--ramp", Box::new(|o| o.ramp = f64::NAN)),
        ("--rate", Box::new(|o| o.rate = 1000.0)),
        ("--moving", Box::new(|o| o.moving = 1.5)),
        ("--votes", Box::new(|o| o.votes = -0.1)),
        ("--slow", Box::new(|o| o.slow = 2.0)),
        (
            "--slow",
            Box::new(|o| {
                o.moving = 0.8;
                o.slow = 0.5;
            }),
        ),
        ("--duration", Box::new(|o| o.duration = "forever".into())),
        ("--duration", Box::new(|o| o.duration = "2h".into())),
        ("--max-duration", Box::new(|o| o.max_duration = "0s".into())),
        (
            "--max-duration",
            Box::new(|o| {
                o.duration = "30s".into();
                o.max_duration = "20s".into();
            }),
        ),
        (
            "--url",
            Box::new(|o| o.url = "http://127.0.0.1:7878/live/v1".into()),
        ),
        (
            "--url",
            Box::new(|o| o.url = "wss://example.org/live/v1".into()),
        ),
        ("--show", Box::new(|o| o.show = Some(String::new()))),
        (
            "--source-addrs",
            Box::new(|o| o.source_addrs = Some("127.0.0.9-127.0.0.1".into())),
        ),
        ("--calibrate", Box::new(|o| o.calibrate = true)),
        ("--server-pid", Box::new(|o| o.server_pid = Some(0))),
        ("--garbage", Box::new(|o| o.garbage = 20_001)),
        ("--silent", Box::new(|o| o.silent = 1_000_000)),
        ("--churn", Box::new(|o| o.churn = u32::MAX)),
        ("--garbage-rate", Box::new(|o| o.garbage_rate = 0.0)),
        (
            "--garbage-rate",
            Box::new(|o| o.garbage_rate = f64::INFINITY),
        ),
        ("--garbage-rate", Box::new(|o| o.garbage_rate = 5000.0)),
        ("--churn-rate", Box::new(|o| o.churn_rate = -1.0)),
        ("--churn-rate", Box::new(|o| o.churn_rate = f64::NAN)),
        ("--churn-rate", Box::new(|o| o.churn_rate = 1000.0)),
        (
            "--clients",
            Box::new(|o| {
                o.clients = 90_000;
                o.garbage = 20_000;
            }),
        ),
        (
            "--max-duration",
            Box::new(|o| {
                // Attackers ramp up with the clients: 20,000 at --ramp 500 take 40 s.
                o.churn = 20_000;
                o.max_duration = "30s".into();
            }),
        ),
    ];
    for (option, bad) in cases {
        let mut o = LoadOptions::default();
        bad(&mut o);
        let e = o.validate().unwrap_err();
        assert_eq!(e.option_name(), Some(option), "{e}");
        assert!(e.to_string().starts_with(option), "{e}");
        // `run` refuses the same options before touching the network.
        let e = run(o).await.unwrap_err();
        assert_eq!(e.option_name(), Some(option), "{e}");
    }
    // A process id with no process behind it is named too (checked before connecting).
    let o = LoadOptions {
        server_pid: Some(u32::MAX - 1),
        ..LoadOptions::default()
    };
    let e = run(o).await.unwrap_err();
    assert_eq!(e.option_name(), Some("--server-pid"), "{e}");
}

#[test]
fn calibration_floor_is_positive_and_finite() {
    let floor = measure_floor(600, Duration::from_millis(200)).unwrap();
    assert!(floor.messages > 0);
    assert!(
        floor.us_per_message.is_finite() && floor.us_per_message > 0.0,
        "{floor:?}"
    );
    assert_eq!(floor.message_bytes, 600);
    assert!(measure_floor(0, Duration::from_millis(10)).is_err());
}
