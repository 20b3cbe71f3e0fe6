//! The node registry over a real `nats-server -js` (started per test): a conductor that
//! leads and an edge heartbeat themselves in; the edge's process dies (its task aborted)
//! and its record expires while the conductor's stays; a clean stop removes the record at
//! once; a value that is not a record is counted, never listed as a node.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tutti_bus::{connect, Leases, NodeList, Nodes, Role};
use tutti_cluster::EdgeId;
use tutti_node::{Admission, Conductor, ConductorConfig, Edge, Heartbeat};
use tutti_show::{ShowClock, ShowRuntime};
use tutti_store::Store;

const GUARD: Duration = Duration::from_secs(10);
const CODE: &str = "REG";
/// The registry's TTL: short, so a dead node's record expires within the test.
const TTL: Duration = Duration::from_secs(1);

async fn store_with_show(dir: &std::path::Path) -> (Store, i64) {
    common::store_with_show(dir, CODE).await
}

fn runtime(id: i64, store: &Store, clock: &ShowClock) -> Arc<ShowRuntime> {
    common::runtime(CODE, id, store, clock)
}

/// Lists the registry until `done` holds of it (the guard fails the test otherwise).
async fn until(nodes: &Nodes, what: &str, done: impl Fn(&NodeList) -> bool) -> NodeList {
    let start = Instant::now();
    loop {
        let list = nodes.list().await.unwrap();
        if done(&list) {
            return list;
        }
        assert!(start.elapsed() < GUARD * 3, "never: {what}; last {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(list: &NodeList) -> Vec<&str> {
    list.nodes.iter().map(|n| n.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_heartbeat_in_and_a_dead_one_expires() {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = store_with_show(dir.path()).await;
    let clock = ShowClock::manual(1.0);
    let cbus = connect(&nats.url, GUARD).await.unwrap();
    let leases = Leases::open(&cbus, "leases", Duration::from_secs(30))
        .await
        .unwrap();
    let mut conductor = Conductor::new(
        ConductorConfig {
            id: EdgeId::new("conductor-1").unwrap(),
            admission: Admission::FirstSight,
            retry: Duration::from_millis(100),
            max_age: 0.5,
        },
        runtime(id, &store, &clock),
        cbus.clone(),
        leases,
        vec![],
    )
    .await
    .unwrap();
    assert!(conductor.lead().await);
    let ebus = connect(&nats.url, GUARD).await.unwrap();
    let edge = Edge::new(
        EdgeId::new("edge-a").unwrap(),
        runtime(id, &store, &clock),
        ebus.clone(),
        vec![],
    )
    .await
    .unwrap();

    let nodes = Nodes::open(&cbus, "nodes", TTL).await.unwrap();
    let mut hc = Heartbeat::new(
        nodes.clone(),
        cbus.clone(),
        EdgeId::new("conductor-1").unwrap(),
        Role::Conductor,
    );
    hc.serve(CODE, conductor.metrics());
    let mut he = Heartbeat::new(
        Nodes::open(&ebus, "nodes", TTL).await.unwrap(),
        ebus.clone(),
        EdgeId::new("edge-a").unwrap(),
        Role::Edge,
    );
    he.serve(CODE, edge.metrics());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let conductor_task = tokio::spawn(hc.run(stopped.clone()));
    let edge_task = tokio::spawn(he.run(stopped));

    let list = until(&nodes, "both registered", |l| {
        ids(l) == ["conductor-1", "edge-a"]
    })
    .await;
    let port = nats.url.rsplit(':').next().unwrap();
    let c = &list.nodes[0];
    assert_eq!(c.role, Role::Conductor);
    assert_eq!(c.bus, format!("127.0.0.1:{port}"));
    assert!(c.connected);
    assert_eq!(c.shows.len(), 1);
    assert_eq!(c.shows[0].code, CODE);
    assert!(c.shows[0].leading);
    assert!(c.shows[0].term >= 1);
    assert_eq!(c.shows[0].counters["takeovers"], 1);
    let e = &list.nodes[1];
    assert_eq!(e.role, Role::Edge);
    assert!(!e.shows[0].leading);
    assert!(e.at_ms > 0);
    assert!(list.unreadable.is_empty());

    // The edge's process dies: no more writes; its record expires, the conductor's stays
    // (its heartbeat goes on writing).
    edge_task.abort();
    let _ = edge_task.await;
    let list = until(&nodes, "the dead edge expired", |l| {
        !ids(l).contains(&"edge-a")
    })
    .await;
    assert_eq!(ids(&list), ["conductor-1"]);

    // A value that is not a record: counted by key, not a node.
    let js = async_nats::jetstream::new(cbus.clone());
    let kv = js.get_key_value("nodes").await.unwrap();
    kv.put("forged", "not a record".into()).await.unwrap();
    let list = nodes.list().await.unwrap();
    assert_eq!(ids(&list), ["conductor-1"]);
    assert_eq!(list.unreadable, ["forged"]);

    // A clean stop removes the record at once.
    stop.send(true).unwrap();
    conductor_task.await.unwrap();
    let list = nodes.list().await.unwrap();
    assert!(list.nodes.is_empty(), "{list:?}");
}
