//! `tutti load --sync` against a real in-process server over plain loopback: a few clients
//! run the clock-sync estimator over their own connections for a few seconds; the report has
//! every figure, the reference found the truth, every client converged, nothing was refused,
//! and the server counted every client's `sync_report`. Correctness only, never timing.

mod common;

use common::server;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use tutti_load::{run, LoadOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_clients_converge_against_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    // The server's own count of connections that reported their sync error.
    let done = Arc::new(AtomicBool::new(false));
    let reporting = Arc::new(AtomicU64::new(0));
    let watcher = tokio::spawn({
        let (hub, done, reporting) = (running.hub.clone(), done.clone(), reporting.clone());
        async move {
            while !done.load(Relaxed) {
                let n = hub.stats.sync.json()["reporting"].as_u64().unwrap_or(0);
                reporting.fetch_max(n, Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let url = format!("ws://{}/live/v1", running.addr);
    let opts = LoadOptions {
        url: url.clone(),
        show: Some(running.show_code.clone()),
        clients: 6,
        ramp: 1000.0,
        rate: 5.0,
        moving: 0.5,
        duration: "3s".into(),
        max_duration: "60s".into(),
        sync: true,
        sync_drift_ppm: 50.0,
        ..LoadOptions::default()
    };
    let report = run(opts).await.expect("the run completes");
    done.store(true, Relaxed);
    watcher.await.unwrap();

    assert!(
        report.problems().is_empty(),
        "{:#?}\n{}",
        report.problems(),
        report.table()
    );
    assert!(report.checks.sync_consistent);
    assert!(report.errors.is_empty(), "no refusals: {:?}", report.errors);
    let y = report.sync.as_ref().expect("sync figures with --sync");
    let table = report.table();

    // The reference: on loopback, its exchanges bound the truth and agree with each other.
    let r = &y.reference;
    assert_eq!(r.url, url);
    assert!(r.consistent, "{table}");
    assert!(r.answered >= 20 && r.answered <= r.exchanges, "{table}");
    assert!(r.bound_ms.is_finite() && r.bound_ms >= 0.0, "{table}");
    assert!(r.round_trip_min_ms.is_some_and(|ms| ms >= 0.0), "{table}");
    assert!(
        r.later_bound_ms.is_some() && r.later_shift_ms.is_some(),
        "{table}"
    );

    // Every client synced, nothing was refused, every client reported.
    assert_eq!(y.clients, 6, "{table}");
    assert_eq!(y.drift_ppm_max, 50.0);
    let x = &y.exchanges;
    assert!(x.answered > 0 && x.answered <= x.sent, "{table}");
    assert!(
        x.sent_in_window > 0 && x.sent_in_window <= x.sent,
        "{table}"
    );
    assert_eq!(
        (x.refused, x.unknown_answers, x.clock_steps),
        (0, 0, 0),
        "{table}"
    );
    assert!(x.reports >= 6, "{table}");
    assert_eq!(
        reporting.load(Relaxed),
        6,
        "the server counted every client's report"
    );

    // The moments: 1, 2, 3, 5, 10 s and the end; a 3 s window reaches the first three.
    let after: Vec<Option<f64>> = y.at.iter().map(|a| a.after_s).collect();
    assert_eq!(
        after,
        [Some(1.0), Some(2.0), Some(3.0), Some(5.0), Some(10.0), None]
    );
    for a in y.at.iter().take(3).chain(y.at.last()) {
        assert_eq!((a.clients, a.without_estimate), (6, 0), "{table}");
        let t = a.true_error_ms.expect("true errors");
        let e = a.estimated_error_ms.expect("estimated errors");
        let b = a.bound_ms.expect("bounds");
        let d = a.drift_ppm.expect("drifts");
        assert!(a.drift_fitted <= a.clients);
        for s in [t, e, b, d] {
            assert!(s.p50 >= 0.0 && s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max);
        }
    }

    // Converged: every client's true error came within the threshold and stayed there.
    let c = &y.converged;
    assert_eq!((c.converged, c.not_converged), (6, 0), "{table}");
    let after = c.after_s.expect("convergence times");
    assert!(after.p50 > 0.0 && after.p50 <= after.max, "{table}");

    let json = report.to_json();
    for key in ["reference", "exchanges", "at", "converged", "clients"] {
        assert!(!json["sync"][key].is_null(), "sync.{key} in {json:#}");
    }
    for key in ["p50", "p95", "p99", "max"] {
        assert!(json["sync"]["at"][2]["true_error_ms"][key].is_f64());
        assert!(json["sync"]["at"][5]["bound_ms"][key].is_f64());
        assert!(json["sync"]["converged"]["after_s"][key].is_f64());
    }
    assert_eq!(json["checks"]["sync_consistent"], true);
    assert!(table.contains("true error p50/p95/p99/max"), "{table}");
    assert!(table.contains("converged"), "{table}");

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sync_there_are_no_sync_figures() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let opts = LoadOptions {
        url: format!("ws://{}/live/v1", running.addr),
        show: Some(running.show_code.clone()),
        clients: 2,
        duration: "1s".into(),
        max_duration: "30s".into(),
        ..LoadOptions::default()
    };
    let report = run(opts).await.expect("the run completes");
    assert!(report.sync.is_none());
    assert!(report.checks.sync_consistent);
    assert!(report.to_json()["sync"].is_null());
    assert_eq!(running.hub.stats.sync.json()["reporting"], 0);
    running.shutdown().await.unwrap();
}
