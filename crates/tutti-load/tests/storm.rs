//! `tutti load --chat-storm` against a real in-process server over plain loopback: 40 phones
//! follow the demo show's room, drop at once, the room moves 20 events on, and all reconnect
//! together; each gets exactly the events it missed, in order, then `chat_caught_up`. The
//! store's room head agrees. Bad options are refused naming the option. Correctness only: the
//! times are reported, never asserted.

mod common;

use common::server;

use tutti_load::{run_storm, LoadOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phone_of_a_reconnect_storm_catches_up_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let opts = LoadOptions {
        url: format!("ws://{}/live/v1", running.addr),
        show: Some(running.show_code.clone()),
        clients: 40,
        ..LoadOptions::default()
    };
    let report = run_storm(&opts, 20).await.expect("the storm runs");
    let table = report.table();
    println!("{table}");
    assert!(report.passed(), "{table}");
    assert_eq!(
        (report.followed, report.exact, report.wrong),
        (40, 40, 0),
        "{table}"
    );
    // A fresh show's room: the 20 posts are its only events.
    assert_eq!(report.head_seq, 20, "{table}");
    assert_eq!(report.events, 40 * 20, "{table}");
    let s = report.caught_up_ms.expect("times");
    assert!(s.p50 <= s.p99 && s.p99 <= s.max, "{table}");
    assert_eq!(report.all_caught_up_ms, Some(s.max));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["exact"], 40);

    for bad in [0, 10_001] {
        let err = run_storm(&opts, bad).await.unwrap_err();
        assert_eq!(err.option_name(), Some("--chat-storm"), "{err}");
    }
}
