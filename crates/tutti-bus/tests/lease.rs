//! Leadership leases on a real `nats-server` with JetStream (started here, on its own port
//! and data directory): one holder at a time; a holder that stops renewing is replaced, with
//! a higher term, and its own renewal is then refused; a released lease is taken at once;
//! an unreachable bus is a clear error.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, nats};
use tutti_bus::{connect, LeaseError, Leases};

const TTL: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_and_a_silent_one_is_replaced() {
    let n = nats();
    let (ca, cb) = (
        connect(&n.url, Duration::from_secs(5)).await.unwrap(),
        connect(&n.url, Duration::from_secs(5)).await.unwrap(),
    );
    let a = Leases::open(&ca, "leases_t1", TTL).await.unwrap();
    let b = Leases::open(&cb, "leases_t1", TTL).await.unwrap();
    let mut held = a
        .try_acquire("SHOW1", "node-a")
        .await
        .unwrap()
        .expect("free");
    assert_eq!(held.term, held.revision);
    assert_eq!(
        b.holder("SHOW1").await.unwrap().map(|(h, _)| h).as_deref(),
        Some("node-a")
    );
    // Renewed for longer than the TTL: nobody else gets it.
    for _ in 0..5 {
        tokio::time::sleep(TTL / 3).await;
        a.renew(&mut held).await.unwrap();
        assert_eq!(b.try_acquire("SHOW1", "node-b").await.unwrap(), None);
    }
    assert!(held.revision > held.term);
    // node-a falls silent: node-b gets it once the last write expired, with a higher term.
    let silent = Instant::now();
    let taken = loop {
        if let Some(h) = b.try_acquire("SHOW1", "node-b").await.unwrap() {
            break h;
        }
        assert!(
            silent.elapsed() < TTL * 30,
            "the lease never expired (node-a's last write stays)"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    println!(
        "taken over {:?} after node-a's last renewal",
        taken.renewed - held.renewed
    );
    assert!(taken.term > held.revision, "{taken:?} after {held:?}");
    // A takeover never happens before the old holder's lease ran out.
    assert!(taken.renewed >= held.valid_until(TTL) - Duration::from_millis(50));
    // node-a comes back: its renewal is refused, and it knows it lost.
    let before = held.clone();
    match a.renew(&mut held).await {
        Err(LeaseError::Lost { key }) => assert_eq!(key, "SHOW1"),
        other => panic!("node-a renewed a lease node-b holds: {other:?}"),
    }
    assert_eq!(held, before, "nothing changed on a refused renewal");
    assert_eq!(
        a.holder("SHOW1").await.unwrap().map(|(h, _)| h).as_deref(),
        Some("node-b")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_is_taken_at_once_and_terms_only_grow() {
    let n = nats();
    let c = connect(&n.url, Duration::from_secs(5)).await.unwrap();
    let leases = Leases::open(&c, "leases_t2", Duration::from_secs(30))
        .await
        .unwrap();
    let mut last = 0;
    for round in 0..4 {
        let holder = format!("node-{round}");
        let held = leases
            .try_acquire("SHOW2", &holder)
            .await
            .unwrap()
            .expect("released by the one before");
        assert!(held.term > last, "term {} after {last}", held.term);
        last = held.term;
        // Another show's lease is independent.
        let other = leases
            .try_acquire(&format!("OTHER{round}"), &holder)
            .await
            .unwrap();
        assert!(other.is_some());
        assert_eq!(leases.try_acquire("SHOW2", "someone").await.unwrap(), None);
        leases.release(held).await.unwrap();
        assert_eq!(leases.holder("SHOW2").await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bus_is_a_clear_error() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let e = connect(&url, Duration::from_millis(800)).await.unwrap_err();
    assert_eq!(e.url, url);
    assert!(e.to_string().contains(&url), "{e}");
}
