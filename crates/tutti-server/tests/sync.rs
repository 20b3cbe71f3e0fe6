//! Clock sync over `/live/v1` (issue 15): a phone's `sync` frames are answered on the show
//! clock, the reference estimator (`tutti-sync`) converges on those answers over a real
//! socket, `sync_report`s reach the performers' stats and leave them with the connection,
//! and bad or flooding sync frames get their codes and change nothing. In Chromium: the
//! audience page syncs and reports, and the page's estimator (`web/sync.js`) gives the same
//! estimates as the crate's on the same exchanges.

mod common;

use std::time::Instant;

use common::*;
use serde_json::{json, Value};
use tutti_sync::{Estimator, Exchange};

use common::browser;

/// One exchange: send at the local clock, read the answer (skipping states).
async fn exchange(c: &mut Client, epoch: Instant, id: u64) -> (Exchange, Value) {
    let t0 = epoch.elapsed().as_secs_f64() * 1000.0;
    c.send(json!({"type": "sync", "id": id, "t0": t0})).await;
    let reply = c.recv_type("sync").await;
    let t3 = epoch.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(reply["id"], id, "{reply}");
    // Echoed to the last digits (the server's JSON reader may round the final bit).
    let echoed = reply["t0"].as_f64().unwrap();
    assert!(
        (echoed - t0).abs() <= 1e-12 * t0.abs().max(1.0),
        "{t0}: {reply}"
    );
    let x = Exchange {
        t0,
        t1: reply["t1"].as_f64().unwrap(),
        t2: reply["t2"].as_f64().unwrap(),
        t3,
    };
    (x, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_syncs_to_the_show_clock() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut phone, _) = Client::audience(srv.addr).await;
    let epoch = Instant::now();
    let mut est = Estimator::default();
    let mut last_t2 = 0.0;
    // Twenty exchanges back to back: the burst a connection may send at once.
    for id in 0..15 {
        let (x, reply) = exchange(&mut phone, epoch, id).await;
        assert!(x.t1 <= x.t2, "read before written: {reply}");
        assert!(x.t1 >= last_t2, "the show clock never goes back: {reply}");
        last_t2 = x.t2;
        est.add(x).expect("a real exchange is valid");
    }
    assert_eq!(est.refused(), 0);
    let e = est.estimate().unwrap();
    // Every later exchange bounds the true offset from both sides; the estimate, within its
    // own bound, must be consistent with them.
    for id in 15..20 {
        let (x, _) = exchange(&mut phone, epoch, id).await;
        let at = e.show_time(x.t0) - x.t0;
        assert!(at - e.bound_ms <= x.t1 - x.t0, "{e:?} against {x:?}");
        assert!(at + e.bound_ms >= x.t2 - x.t3, "{e:?} against {x:?}");
    }
    assert!(e.error_ms <= e.bound_ms, "{e:?}");

    // The phone reports; a performer sees it in one class, until the phone leaves.
    let mut perf = Client::performer(srv.addr).await;
    phone
        .send(json!({"type": "sync_report", "error_ms": e.error_ms, "offset_ms": e.offset_ms}))
        .await;
    let class = tutti_show::stats::SyncQuality::class(e.error_ms);
    let key = ["1", "2", "5", "10", "20", "more"][class];
    let s = stats_until(&mut perf, |s| s["sync"]["reporting"] == 1).await;
    assert_eq!(s["sync"]["within_ms"][key], 1, "{s}");
    drop(phone);
    stats_until(&mut perf, |s| s["sync"]["reporting"] == 0).await;
    srv.shutdown().await.unwrap();
}

async fn stats_until(perf: &mut Client, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..10 {
        let s = perf.recv_type("stats").await;
        if pred(&s) {
            return s;
        }
    }
    panic!("no stats frame matched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sync_frames_get_their_codes_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;

    let mut c = Client::connect(srv.addr).await;
    c.send(json!({"type": "sync", "t0": 1.0})).await;
    assert_eq!(c.error().await["code"], "not_joined");

    let (mut phone, _) = Client::audience(srv.addr).await;
    for (frame, code) in [
        (r#"{"type": "sync"}"#, "bad_frame"),
        (r#"{"type": "sync", "t0": "soon"}"#, "bad_frame"),
        (r#"{"type": "sync", "t0": 1e400}"#, "not_finite"),
        (r#"{"type": "sync", "t0": 1, "t1": 2}"#, "bad_frame"),
        (r#"{"type": "sync_report"}"#, "bad_frame"),
        (r#"{"type": "sync_report", "error_ms": -1}"#, "out_of_range"),
        (
            r#"{"type": "sync_report", "error_ms": 1e9}"#,
            "out_of_range",
        ),
        (
            r#"{"type": "sync_report", "error_ms": 1, "offset_ms": 1e400}"#,
            "not_finite",
        ),
    ] {
        phone.send_text(frame).await;
        let e = phone.error().await;
        assert_eq!(e["code"], code, "{frame}: {e}");
    }
    // Nothing was counted from the refused reports.
    let mut perf = Client::performer(srv.addr).await;
    let s = perf.recv_type("stats").await;
    assert_eq!(s["sync"]["reporting"], 0, "{s}");

    // A flood: 50 at once. The first 20 (the burst) are answered, the rest refused with
    // rate_limited; a ping after them marks the end of the answers.
    for id in 0..50 {
        phone
            .send(json!({"type": "sync", "id": id, "t0": 1.0}))
            .await;
    }
    phone.send(json!({"type": "ping", "id": 7})).await;
    let (mut answered, mut limited) = (0, 0);
    loop {
        let f = phone.recv().await;
        match f["type"].as_str() {
            Some("sync") => answered += 1,
            Some("error") => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                limited += 1;
            }
            Some("pong") => break,
            _ => {}
        }
    }
    assert!((20..50).contains(&answered), "{answered} answered");
    assert!(limited >= 1, "{limited} refused");
    // The connection still works, and another phone was never touched.
    let (mut other, _) = Client::audience(srv.addr).await;
    other
        .send(json!({"type": "sync", "id": 1, "t0": 5.0}))
        .await;
    assert_eq!(other.recv_type("sync").await["t0"], 5.0);
    srv.shutdown().await.unwrap();
}

/// Exchanges with everything the estimator meets: jitter, slow outliers, drift over minutes,
/// a refused one, a clock step.
fn cases() -> Vec<Exchange> {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::new();
    let (mut local, mut offset) = (1_000.0, 123_456.0);
    for i in 0..400 {
        if i == 300 {
            offset -= 40_000.0; // the page slept
        }
        let up = 10.0 + 20.0 * rand() + if i % 37 == 0 { 300.0 } else { 0.0 };
        let down = 10.0 + 20.0 * rand();
        let t1 = local + offset + up;
        let t2 = t1 + 0.1 * rand();
        let t3 = t2 - offset + down;
        out.push(Exchange {
            t0: local,
            t1,
            t2,
            t3,
        });
        if i == 150 {
            out.push(Exchange {
                t0: local,
                t1,
                t2: t1 - 1.0,
                t3,
            }); // refused
        }
        local += if i < 16 { 100.0 } else { 2_000.0 };
        offset += 2_000.0 * 80e-6; // the show clock runs 80 ppm fast
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audience_page_syncs_and_its_estimator_is_the_crates() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let driver = browser::chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let b = browser::browser(&driver, profile.path(), 400, 800).await;
    b.goto(&format!("http://{}/", srv.addr)).await.unwrap();

    // The page syncs on its own, says so, and reports to the performers.
    let mut state = Value::Null;
    for _ in 0..150 {
        state = b
            .execute(
                "return document.getElementById('sync').dataset.state;",
                vec![],
            )
            .await
            .unwrap();
        if state == "synced" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state, "synced");
    let text = browser::text_of(&b, "#sync").await.unwrap();
    assert!(text.starts_with("clock: synced ±"), "{text}");
    let mut perf = Client::performer(srv.addr).await;
    stats_until(&mut perf, |s| s["sync"]["reporting"] == 1).await;

    // The same exchanges through both estimators, estimate by estimate.
    let cases = cases();
    let mut rust = Estimator::default();
    let mut want = Vec::new();
    for x in &cases {
        let _ = rust.add(*x);
        want.push(rust.estimate().unwrap());
    }
    assert_eq!((rust.refused(), rust.steps()), (1, 1));
    let js = b
        .execute_async(
            r#"const [cases, done] = arguments;
               import('/web/sync.js').then((m) => {
                 const s = new m.SyncEstimator();
                 const out = cases.map((x) => { s.add(x); return s.estimate(); });
                 done({ out, refused: s.refused, steps: s.steps });
               }, (e) => done({ error: String(e) }));"#,
            vec![json!(cases
                .iter()
                .map(|x| json!({"t0": x.t0, "t1": x.t1, "t2": x.t2, "t3": x.t3}))
                .collect::<Vec<_>>())],
        )
        .await
        .unwrap();
    assert_eq!(js["error"], Value::Null, "{js}");
    assert_eq!((&js["refused"], &js["steps"]), (&json!(1), &json!(1)));
    let out = js["out"].as_array().unwrap();
    assert_eq!(out.len(), want.len());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    for (i, (j, r)) in out.iter().zip(&want).enumerate() {
        for (name, r) in [
            ("offsetMs", r.offset_ms),
            ("driftPpm", r.drift_ppm),
            ("atLocalMs", r.at_local_ms),
            ("errorMs", r.error_ms),
            ("boundMs", r.bound_ms),
            ("roundTripMs", r.round_trip_ms),
        ] {
            let v = j[name].as_f64().unwrap();
            assert!(
                close(v, r),
                "exchange {i}: {name} {v} in the page, {r} in the crate"
            );
        }
        assert_eq!(j["used"], r.used, "exchange {i}");
    }
    // The drift was seen (80 ppm) before the step.
    assert!((want[299].drift_ppm - 80.0).abs() < 5.0, "{:?}", want[299]);
    b.close().await.unwrap();
    srv.shutdown().await.unwrap();
}
