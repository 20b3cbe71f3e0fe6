//! The live hub end to end: real server, real WebSocket clients, real SQLite.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_input_reaches_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut phone, welcome) = Client::audience(srv.addr).await;
    assert_eq!(welcome["show"]["code"], srv.show_code);
    assert_eq!(welcome["params"].as_array().unwrap().len(), 8);
    assert!(welcome["resume"].as_str().unwrap().len() >= 32);
    let mut perf = Client::performer(srv.addr).await;
    let (mut other, _) = Client::audience(srv.addr).await;

    let sent_ms = unix_ms();
    phone
        .send(json!({"type": "input", "param": "intensity", "value": 0.9, "seq": 1}))
        .await;
    let ack = phone.recv_type("ack").await;
    let acked_ms = unix_ms();
    assert_eq!(ack["seq"], 1);
    let tick = ack["tick"].as_u64().unwrap();
    // The ack says when the tick that applied the input ran, by the server's clock (the
    // same clock as ours here): after the input was sent, before the ack arrived.
    let at = ack["at"].as_u64().unwrap();
    assert!(
        sent_ms <= at && at <= acked_ms,
        "{sent_ms} <= {at} <= {acked_ms}"
    );
    // The performer's detailed state shows the raw aggregate at once, the smoothed value soon.
    let s = perf
        .state_until(|s| s["tick"].as_u64().unwrap() >= tick && raw(s, "intensity").is_some())
        .await;
    assert!((raw(&s, "intensity").unwrap() - 0.9).abs() < 1e-6, "{s}");
    assert!(s["params"]["intensity"]["histogram"].is_array());
    perf.state_until(|s| (value(s, "intensity") - 0.9).abs() < 0.01)
        .await;
    // Another phone sees the collective value move too (compact state, no detail).
    let s = other
        .state_until(|s| (value(s, "intensity") - 0.9).abs() < 0.01)
        .await;
    assert!(s["params"]["intensity"].get("histogram").is_none());
    assert_eq!(s["participants"], 2);

    // A vote.
    phone
        .send(json!({"type": "vote", "param": "section", "choice": "storm", "seq": 2}))
        .await;
    let s = other
        .state_until(|s| s["params"]["section"]["choice"] == "storm")
        .await;
    assert_eq!(value(&s, "section"), 2.0);
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_token_gives_back_the_same_slot() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut a, w) = Client::audience(srv.addr).await;
    let token = w["resume"].as_str().unwrap().to_string();
    let slot = w["participant"].clone();
    a.send(json!({"type": "input", "param": "pitch", "value": 5.0, "seq": 1}))
        .await;
    a.recv_type("ack").await;
    drop(a);
    let mut b = Client::connect(srv.addr).await;
    b.send(json!({"type": "join", "resume": token})).await;
    let w2 = b.recv_type("welcome").await;
    assert_eq!(w2["participant"], slot);
    // Every welcome rotates the token.
    assert_ne!(w2["resume"], token.as_str());
    let mut perf = Client::performer(srv.addr).await;
    let s = perf.state_until(|s| raw(s, "pitch").is_some()).await;
    // Still one participant, still their input.
    assert_eq!(s["participants"], 1);
    assert_eq!(raw(&s, "pitch"), Some(5.0));
    srv.shutdown().await.unwrap();
}

/// A resume takes the slot over from a connection that still holds it (the older one is told
/// and closed), and the token it replaced is refused with a stable code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_takes_over_and_a_replaced_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut a, w) = Client::audience(srv.addr).await;
    let token = w["resume"].as_str().unwrap().to_string();
    let mut b = Client::connect(srv.addr).await;
    b.send(json!({"type": "join", "resume": token})).await;
    let wb = b.recv_type("welcome").await;
    assert_eq!(wb["participant"], w["participant"]);
    let e = a.error().await;
    assert_eq!(e["code"], "taken_over", "{e}");
    let (code, _) = a
        .close_frame()
        .await
        .expect("the older connection is closed");
    assert_eq!(code, 4001);
    // The newer connection holds the slot: its inputs count.
    b.send(json!({"type": "input", "param": "pitch", "value": 4.0, "seq": 1}))
        .await;
    assert_eq!(b.recv_type("ack").await["seq"], 1);
    // The replaced token is refused (the connection stays open and may join afresh).
    let mut c = Client::connect(srv.addr).await;
    c.send(json!({"type": "join", "resume": token})).await;
    assert_eq!(c.error().await["code"], "resume_replaced");
    c.send(json!({"type": "join"})).await;
    let wc = c.recv_type("welcome").await;
    assert_ne!(wc["participant"], w["participant"]);
    // b still holds its slot: the takeover did not disturb it.
    b.send(json!({"type": "input", "param": "pitch", "value": 6.0, "seq": 2}))
        .await;
    assert_eq!(b.recv_type("ack").await["seq"], 2);
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performer_overrides_sessions_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let mut perf = Client::performer(srv.addr).await;
    let (mut phone, _) = Client::audience(srv.addr).await;

    // Audience cannot perform.
    phone
        .send(json!({"type": "override", "param": "pitch", "mode": "lock", "value": 3, "seq": 9}))
        .await;
    let e = phone.error().await;
    assert_eq!(e["code"], "forbidden");
    assert_eq!(e["seq"], 9);
    // Wrong token.
    let mut bad = Client::connect(srv.addr).await;
    bad.send(json!({"type": "join", "role": "performer", "token": "nope-nope-nope"}))
        .await;
    assert_eq!(bad.error().await["code"], "unauthorized");
    // Performers do not send inputs.
    perf.send(json!({"type": "input", "param": "pitch", "value": 1}))
        .await;
    assert_eq!(perf.error().await["code"], "forbidden");

    // Lock wins over the crowd.
    phone
        .send(json!({"type": "input", "param": "pitch", "value": -10.0}))
        .await;
    let sent_ms = unix_ms();
    perf.send(json!({"type": "override", "param": "pitch", "mode": "lock", "value": 7, "seq": 1}))
        .await;
    let ack = perf.recv_type("ack").await;
    assert_eq!(ack["seq"], 1);
    let at = ack["at"].as_u64().unwrap();
    assert!(sent_ms <= at && at <= unix_ms(), "stored at {at}");
    let s = perf.state_until(|s| value(s, "pitch") == 7.0).await;
    let ov = &s["params"]["pitch"]["overrides"][0];
    assert_eq!(ov["mode"], "lock");
    assert_eq!(ov["a"], 7.0);
    // Release returns to the crowd.
    perf.send(json!({"type": "release", "param": "pitch", "seq": 2}))
        .await;
    assert_eq!(perf.recv_type("ack").await["seq"], 2);
    perf.state_until(|s| value(s, "pitch") < 0.0).await;

    // Invalid overrides are named.
    for (frame, needle) in [
        (
            json!({"type": "override", "param": "pitch", "mode": "lock", "value": 99}),
            "value",
        ),
        (
            json!({"type": "override", "param": "pitch", "mode": "blend", "target": 1}),
            "factor",
        ),
        (
            json!({"type": "override", "param": "pitch", "mode": "clamp", "lo": 5, "hi": 1}),
            "lo",
        ),
        (
            json!({"type": "override", "param": "pitch", "mode": "lock", "value": 1, "expires_in": -3}),
            "expires_in",
        ),
    ] {
        perf.send(frame).await;
        let e = perf.error().await;
        assert_eq!(e["code"], "invalid_override");
        assert!(e["message"].as_str().unwrap().contains(needle), "{e}");
    }
    perf.send(json!({"type": "override", "param": "nope", "mode": "freeze"}))
        .await;
    assert_eq!(perf.error().await["code"], "unknown_param");

    // Session: pause stops inputs, resume restarts, end ends, end twice is refused.
    perf.send(json!({"type": "session", "action": "pause", "seq": 3}))
        .await;
    assert_eq!(perf.recv_type("ack").await["seq"], 3);
    phone
        .send(json!({"type": "input", "param": "pitch", "value": 1.0, "seq": 5}))
        .await;
    assert_eq!(phone.error().await["code"], "show_not_live");
    perf.send(json!({"type": "session", "action": "start"}))
        .await;
    assert_eq!(perf.error().await["code"], "invalid_transition");
    perf.send(json!({"type": "session", "action": "resume", "seq": 4}))
        .await;
    perf.recv_type("ack").await;
    phone
        .send(json!({"type": "input", "param": "pitch", "value": 1.0, "seq": 6}))
        .await;
    assert_eq!(phone.recv_type("ack").await["seq"], 6);
    perf.send(json!({"type": "session", "action": "end", "seq": 7}))
        .await;
    perf.recv_type("ack").await;
    perf.send(json!({"type": "session", "action": "end"})).await;
    assert_eq!(perf.error().await["code"], "invalid_transition");
    phone
        .send(json!({"type": "input", "param": "pitch", "value": 1.0}))
        .await;
    assert_eq!(phone.error().await["code"], "show_ended");
    let mut late = Client::connect(srv.addr).await;
    late.send(json!({"type": "join"})).await;
    assert_eq!(late.error().await["code"], "show_ended");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_bypass() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let mut perf = Client::performer(srv.addr).await;
    let (mut phone, _) = Client::audience(srv.addr).await;
    phone
        .send(json!({"type": "input", "param": "tempo", "value": 170.0}))
        .await;
    perf.state_until(|s| raw(s, "tempo") == Some(170.0)).await;
    perf.send(json!({"type": "bypass", "on": true, "seq": 1}))
        .await;
    perf.recv_type("ack").await;
    let s = perf.state_until(|s| s["bypass"] == true).await;
    assert!(value(&s, "tempo") <= 170.0);
    perf.state_until(|s| (value(s, "tempo") - 100.0).abs() < 0.5)
        .await;
    perf.send(json!({"type": "bypass", "on": false})).await;
    perf.send(json!({"type": "reset", "seq": 2})).await;
    perf.recv_type("ack").await;
    let s = perf
        .state_until(|s| s["bypass"] == false && raw(s, "tempo").is_none())
        .await;
    assert_eq!(s["params"]["tempo"]["participants"], 0);
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.max_connections = 2;
    let srv = start_with(cfg).await;
    let (_a, _) = Client::audience(srv.addr).await;
    let (_b, _) = Client::audience(srv.addr).await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/live/v1", srv.addr))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status(), 503);
            let body =
                String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("limit of 2 connections"), "{body}");
        }
        other => panic!("expected HTTP 503, got {other}"),
    }
    assert_eq!(
        srv.hub
            .stats
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_histograms_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut phone, _) = Client::audience(srv.addr).await;
    phone
        .send(json!({"type": "input", "param": "width", "value": 0.7, "seq": 1}))
        .await;
    phone.recv_type("ack").await;
    for _ in 0..5 {
        phone.recv_type("state").await;
    }
    // A fan-out round adds its deliveries to the counters once it has written to every
    // socket of its share, which can be just after this phone read its state.
    let mut body = String::new();
    for _ in 0..50 {
        body = metrics(srv.addr).await;
        let delivered: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix("tutti_states_delivered_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if delivered >= 5.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(body.starts_with("HTTP/1.1 200"), "{body:.200}");
    for needle in [
        "tutti_tick_seconds_count",
        "tutti_serialize_seconds_bucket",
        "tutti_fanout_seconds_sum",
        "tutti_outbound_lag_seconds_count",
        "tutti_input_wait_seconds_count",
        "tutti_connections{state=\"audience\"} 1",
        "tutti_inputs_accepted_total 1",
        "tutti_state_rate_hz 20",
        "tutti_errors_total{code=\"rate_limited\"} 0",
    ] {
        assert!(body.contains(needle), "missing {needle}");
    }
    let delivered: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("tutti_states_delivered_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(delivered >= 5.0);
    srv.shutdown().await.unwrap();
}

/// `GET /metrics`, the whole response.
async fn metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

/// This machine's clock, Unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
