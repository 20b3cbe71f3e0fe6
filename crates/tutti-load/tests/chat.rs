//! `tutti load --chat-senders` against a real in-process server over plain loopback: 60
//! phones join the demo show and follow its room over their sockets, 10 of them post; every
//! follower reads every message once, in the room's order, and the counts add up with what
//! the store holds. Bad options are refused with errors that name them. Correctness only:
//! post→delivery latency is reported, never asserted.

mod common;

use common::server;

use tutti_load::{run, LoadOptions};
use tutti_server::Running;

fn options(running: &Running) -> LoadOptions {
    LoadOptions {
        url: format!("ws://{}/live/v1", running.addr),
        show: Some(running.show_code.clone()),
        clients: 60,
        ramp: 1000.0,
        rate: 5.0,
        moving: 0.1,
        duration: "2s".into(),
        max_duration: "60s".into(),
        chat_senders: 10,
        chat_rate: 20.0,
        ..LoadOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_follower_reads_every_message_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let report = run(options(&running)).await.expect("the run completes");
    let table = report.table();
    assert!(
        report.problems().is_empty(),
        "{:#?}\n{table}",
        report.problems()
    );
    println!("{table}");
    assert!(report.checks.chat_consistent, "{table}");
    let c = report
        .chat
        .as_ref()
        .expect("chat figures with --chat-senders");
    assert_eq!((c.senders, c.rate), (10, 20.0));
    assert!(c.posted >= 20, "a 2 s window at 20/s: {table}");
    assert_eq!(c.acked, c.posted, "{table}");
    assert_eq!(c.duplicate_acks, 0);
    // A fresh show's room: our posts are its only events, one `room_seq` each.
    assert_eq!(c.last_seq, c.posted, "{table}");
    assert_eq!(c.followers, 60, "every client followed the room: {table}");
    assert_eq!(
        (
            c.followers_complete,
            c.followers_incomplete,
            c.followers_dropped
        ),
        (60, 0, 0),
        "{table}"
    );
    assert_eq!((c.gaps, c.duplicates, c.malformed), (0, 0, 0), "{table}");
    // Everyone subscribed before the first post, so everyone read every message.
    assert_eq!(c.deliveries, 60 * c.posted, "{table}");
    assert!(
        c.deliveries_in_window > 0 && c.latency_samples > 0,
        "{table}"
    );
    let l = c.latency_ms.expect("latency measured");
    // A message reaches the socket before the follower reads it.
    let a = c.arrival_ms.expect("arrival measured");
    assert!(a.p50 <= l.p50 && a.max <= l.max, "{table}");
    assert!(
        l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max,
        "{table}"
    );
    assert!(table.contains("chat "), "{table}");
    // The JSON report carries the same figures.
    let json = report.to_json();
    assert_eq!(json["chat"]["posted"], c.posted);
    assert_eq!(json["checks"]["chat_consistent"], true);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn chat_options_are_checked() {
    let bad = |o: LoadOptions| {
        let e = o.validate().unwrap_err();
        (e.option_name(), e.to_string())
    };
    let base = || LoadOptions {
        clients: 10,
        chat_senders: 5,
        chat_rate: 10.0,
        ..LoadOptions::default()
    };
    base().validate().unwrap();
    let (option, _) = bad(LoadOptions {
        chat_senders: 0,
        ..base()
    });
    assert_eq!(option, Some("--chat-rate"), "a rate without senders");
    let (option, text) = bad(LoadOptions {
        chat_senders: 11,
        ..base()
    });
    assert_eq!(option, Some("--chat-senders"));
    assert!(text.contains("10 clients"), "{text}");
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 20_000.0] {
        let (option, _) = bad(LoadOptions {
            chat_rate: rate,
            ..base()
        });
        assert_eq!(option, Some("--chat-rate"), "{rate}");
    }
    let (option, text) = bad(LoadOptions {
        chat_rate: 25.0,
        ..base()
    });
    assert_eq!(option, Some("--chat-rate"));
    assert!(text.contains("add senders"), "{text}");
}
