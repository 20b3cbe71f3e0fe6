//! `tutti load --chat-rooms` against a real in-process server over plain loopback: on a fresh
//! data directory the generator makes the admin by first-run setup, 5 staff accounts and 3
//! closed rooms through the management API, then opens one connection per user and room
//! (`chat_auth`, `chat_sub`, no show joined); 6 of them post. Every follower reads every
//! message of its room once, in order, and the counts add up room by room. A second run
//! against the same server signs the admin in; a wrong password and bad options are refused
//! naming the option. Correctness only: post→delivery latency is reported, never asserted.

mod common;

use common::server;

use tutti_load::{run, LoadOptions};
use tutti_server::Running;

const ADMIN: &str = "load-admin:a-long-enough-password";

fn options(running: &Running) -> LoadOptions {
    LoadOptions {
        url: format!("ws://{}/live/v1", running.addr),
        ramp: 1000.0,
        duration: "2s".into(),
        max_duration: "60s".into(),
        chat_rooms: 3,
        chat_users: 5,
        chat_senders: 6,
        chat_rate: 12.0,
        admin: Some(ADMIN.into()),
        ..LoadOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_follower_of_every_room_reads_its_messages_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    for (round, admin_made) in [(1, true), (2, false)] {
        let report = run(options(&running)).await.expect("the run completes");
        let table = report.table();
        println!("round {round}:\n{table}");
        assert!(
            report.problems().is_empty(),
            "{:#?}\n{table}",
            report.problems()
        );
        assert!(report.checks.chat_consistent, "{table}");
        let r = report
            .rooms
            .as_ref()
            .expect("room figures with --chat-rooms");
        assert_eq!((r.rooms, r.users, r.connections), (3, 5, 15), "{table}");
        assert_eq!(r.admin_made, admin_made, "{table}");
        assert_eq!(r.room_ids.len(), 3);
        assert!(r.token_ttl_s > 0, "{table}");
        assert_eq!(report.clients.connected, 15, "{table}");
        let c = report.chat.as_ref().expect("chat figures");
        assert_eq!((c.senders, c.rate), (6, 12.0));
        assert!(c.posted >= 12, "a 2 s window at 12/s: {table}");
        assert_eq!(c.acked, c.posted, "{table}");
        assert_eq!(c.duplicate_acks, 0);
        assert!(c.refused.is_empty(), "{table}");
        // New rooms: our posts are their only events, one `room_seq` each, and every room
        // had senders.
        assert_eq!(r.last_seqs.iter().sum::<u64>(), c.posted, "{table}");
        assert!(r.last_seq_min >= 1, "{table}");
        assert_eq!(c.last_seq, r.last_seq_max);
        assert_eq!(
            c.followers, 15,
            "every connection followed its room: {table}"
        );
        assert_eq!(
            (
                c.followers_complete,
                c.followers_incomplete,
                c.followers_dropped
            ),
            (15, 0, 0),
            "{table}"
        );
        assert_eq!((c.gaps, c.duplicates, c.malformed), (0, 0, 0), "{table}");
        // Everyone followed before the first post: each room's 5 followers read each of its
        // messages, and nobody read another room's.
        assert_eq!(c.deliveries, 5 * c.posted, "{table}");
        assert!(
            c.deliveries_in_window > 0 && c.latency_samples > 0,
            "{table}"
        );
        let l = c.latency_ms.expect("latency measured");
        assert!(
            l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max,
            "{table}"
        );
        // No show: no inputs, no states.
        assert_eq!(
            (report.inputs.sent_total, report.states.received_total),
            (0, 0)
        );
        assert!(
            table.contains("rooms ") && table.contains("chat "),
            "{table}"
        );
        let json = report.to_json();
        assert_eq!(json["rooms"]["connections"], 15);
        assert_eq!(json["chat"]["posted"], c.posted);
        assert_eq!(json["checks"]["chat_consistent"], true);
    }
    // The admin exists now: a wrong password is refused, naming the option.
    let err = run(LoadOptions {
        admin: Some("load-admin:not-the-password".into()),
        ..options(&running)
    })
    .await
    .unwrap_err();
    assert_eq!(err.option_name(), Some("--admin"), "{err}");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn room_options_are_checked() {
    let base = || LoadOptions {
        chat_rooms: 50,
        chat_users: 100,
        chat_senders: 400,
        chat_rate: 1500.0,
        admin: Some(ADMIN.into()),
        ..LoadOptions::default()
    };
    base().validate().unwrap();
    let bad = |o: LoadOptions| {
        let e = o.validate().unwrap_err();
        (e.option_name(), e.to_string())
    };
    let cases: Vec<(LoadOptions, &str, &str)> = vec![
        (
            LoadOptions {
                chat_users: 0,
                ..base()
            },
            "--chat-users",
            "users per room",
        ),
        (
            LoadOptions {
                chat_users: 1001,
                ..base()
            },
            "--chat-users",
            "1–1000",
        ),
        (
            LoadOptions {
                chat_rooms: 1001,
                ..base()
            },
            "--chat-rooms",
            "1–1000",
        ),
        (
            LoadOptions {
                admin: None,
                ..base()
            },
            "--chat-rooms",
            "--admin",
        ),
        (
            LoadOptions {
                admin: Some("nopassword".into()),
                ..base()
            },
            "--admin",
            "USER:PASSWORD",
        ),
        (
            LoadOptions {
                admin: Some("a:short".into()),
                ..base()
            },
            "--admin",
            "8–256",
        ),
        (
            LoadOptions {
                admin: Some("bad name:longpassword".into()),
                ..base()
            },
            "--admin",
            "user name",
        ),
        (
            LoadOptions {
                chat_senders: 0,
                chat_rate: 0.0,
                ..base()
            },
            "--chat-senders",
            "needs senders",
        ),
        (
            LoadOptions {
                chat_senders: 49,
                ..base()
            },
            "--chat-senders",
            "at least one a room",
        ),
        (
            LoadOptions {
                chat_senders: 5001,
                ..base()
            },
            "--chat-senders",
            "5000",
        ),
        (
            LoadOptions {
                chat_rate: 2000.0,
                ..base()
            },
            "--chat-rate",
            "add senders",
        ),
        (
            LoadOptions {
                sync: true,
                ..base()
            },
            "--sync",
            "does not go with --chat-rooms",
        ),
        (
            LoadOptions {
                chat_storm: Some(10),
                ..base()
            },
            "--chat-storm",
            "does not go",
        ),
        (
            LoadOptions {
                show: Some("ABCD".into()),
                ..base()
            },
            "--show",
            "does not go",
        ),
        (
            LoadOptions {
                garbage: 1,
                ..base()
            },
            "--garbage",
            "does not go",
        ),
        (
            LoadOptions {
                chat_rooms: 0,
                chat_senders: 0,
                chat_rate: 0.0,
                ..base()
            },
            "--chat-users",
            "only means something with --chat-rooms",
        ),
        (
            LoadOptions {
                chat_rooms: 0,
                chat_users: 0,
                chat_senders: 0,
                chat_rate: 0.0,
                ..base()
            },
            "--admin",
            "only means something with --chat-rooms",
        ),
    ];
    for (o, option, words) in cases {
        let (got, text) = bad(o);
        assert_eq!(got, Some(option), "{text}");
        assert!(text.contains(words), "{option}: {text}");
    }
    // The ramp counts the rooms' connections, not --clients.
    let e = bad(LoadOptions {
        ramp: 1.0,
        max_duration: "60s".into(),
        ..base()
    });
    assert_eq!(e.0, Some("--max-duration"), "{}", e.1);
}
