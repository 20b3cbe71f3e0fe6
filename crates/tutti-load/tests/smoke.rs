//! The load generator against a real in-process Tutti server: a small run that checks
//! correctness only (all connected, every frame parsed, nothing rejected, acks matching
//! inputs, latency measured), never timing; plus option errors and the calibration floor.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tutti_load::{measure_floor, run, LoadError, LoadOptions};
use tutti_server::{Config, Running};

async fn server(dir: &std::path::Path) -> Running {
    let defaults = Config::default();
    let cfg = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        osc: tutti_server::config::OscConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..defaults.osc.clone()
        },
        performer_token: "load-test-token".into(),
        ..defaults
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tutti_server::start(cfg, listener)
        .await
        .expect("server starts")
}

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
    assert!(table.contains("calibration"), "{table}");

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
