//! `tutti cluster status` against a real `nats-server -js` (started per test): two nodes
//! registered and a show's lease taken through the library, then the real binary's table
//! and JSON; a value that is not a record is reported as unreadable, never as a node; a
//! NATS that cannot be reached is an error naming the URL, with exit code 3.

mod nats;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use tutti_bus::{connect, Leases, NodeRecord, Nodes, Role, ServedShow};

const GUARD: Duration = Duration::from_secs(10);
/// Long enough that nothing expires while the test runs.
const TTL: Duration = Duration::from_secs(120);

fn tutti(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(args)
        .env_remove("TUTTI_NATS")
        .output()
        .unwrap()
}

fn record(id: &str, role: Role, show: &str, leading: bool, term: u64, at_ms: i64) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        role,
        shows: vec![ServedShow {
            code: show.into(),
            leading,
            term,
            counters: BTreeMap::from([("rejected".to_owned(), 2)]),
        }],
        bus: "127.0.0.1:4222".into(),
        connected: true,
        at_ms,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn cluster_status_lists_the_registered_nodes_and_each_shows_conductor() {
    let server = nats::nats();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Nothing registered yet: an empty cluster, not an error (and no bucket is made).
    let out = tutti(&["cluster", "status", "--nats", &server.url]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("nodes: none registered"), "{text}");
    assert!(text.contains("shows: no conductor holds a lease"), "{text}");

    let (bus, term, revision) = rt.block_on(async {
        let bus = connect(&server.url, GUARD).await.unwrap();
        let leases = Leases::open(&bus, tutti_bus::LEASES_BUCKET, TTL)
            .await
            .unwrap();
        let held = leases
            .try_acquire("DEMO", "conductor-1")
            .await
            .unwrap()
            .expect("a free lease");
        let nodes = Nodes::open(&bus, tutti_bus::NODES_BUCKET, TTL)
            .await
            .unwrap();
        let at = now_ms();
        nodes
            .put(&record(
                "conductor-1",
                Role::Conductor,
                "DEMO",
                true,
                held.term,
                at,
            ))
            .await
            .unwrap();
        nodes
            .put(&record("edge-a", Role::Edge, "DEMO", false, held.term, at))
            .await
            .unwrap();
        // A value that is not a record.
        let js = async_nats::jetstream::new(bus.clone());
        let kv = js.get_key_value(tutti_bus::NODES_BUCKET).await.unwrap();
        kv.put("forged", "not a record".into()).await.unwrap();
        (bus, held.term, held.revision)
    });

    let out = tutti(&["cluster", "status", "--nats", &server.url]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |start: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line for {start}: {text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert!(text.contains("nodes: 2"), "{text}");
    let c = line("conductor-1");
    assert_eq!(
        c[..5],
        ["conductor-1", "conductor", "DEMO", "DEMO", "127.0.0.1:4222"]
    );
    assert!(c[5].ends_with('s') && c[6] == "ago", "{c:?}");
    assert_eq!(line("edge-a")[..4], ["edge-a", "edge", "DEMO", "-"]);
    assert!(
        text.contains("unreadable records (ignored): 1 (forged)"),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("forged")), "{text}");
    assert!(text.contains("shows: 1"), "{text}");
    assert_eq!(
        line("DEMO"),
        [
            "DEMO".to_owned(),
            "conductor-1".to_owned(),
            term.to_string(),
            revision.to_string()
        ]
    );

    let out = tutti(&["cluster", "status", "--nats", &server.url, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nats"], server.url.as_str());
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["id"], "conductor-1");
    assert_eq!(nodes[0]["role"], "conductor");
    assert_eq!(nodes[0]["shows"][0]["code"], "DEMO");
    assert_eq!(nodes[0]["shows"][0]["leading"], true);
    assert_eq!(nodes[0]["shows"][0]["counters"]["rejected"], 2);
    assert!(nodes[0]["last_seen_ms_ago"].as_i64().unwrap() >= 0);
    assert_eq!(nodes[1]["id"], "edge-a");
    assert_eq!(nodes[1]["role"], "edge");
    assert_eq!(nodes[1]["shows"][0]["leading"], false);
    assert_eq!(v["unreadable"], serde_json::json!(["forged"]));
    assert_eq!(
        v["shows"],
        serde_json::json!([{
            "show": "DEMO",
            "conductor": "conductor-1",
            "term": term,
            "revision": revision,
        }])
    );
    drop(bus);
}

#[test]
fn an_unreachable_nats_is_exit_3_naming_the_url() {
    // A port nothing listens on.
    let url = format!("nats://127.0.0.1:{}", nats::free_port());
    let out = tutti(&["cluster", "status", "--nats", &url, "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("cannot reach NATS at {url}")),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // --json changes nothing about the failure.
    let out = tutti(&[
        "cluster",
        "status",
        "--nats",
        &url,
        "--json",
        "--timeout",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}
