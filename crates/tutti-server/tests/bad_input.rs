//! Every kind of bad input gets an error frame with a stable code, is counted, never
//! disconnects the sender, and never changes anyone else's influence.

mod common;

use std::sync::atomic::Ordering::Relaxed;

use common::*;
use serde_json::json;
use tutti_protocol::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_frame_gets_its_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let mut perf = Client::performer(srv.addr).await;
    let (mut honest, _) = Client::audience(srv.addr).await;
    honest
        .send(json!({"type": "input", "param": "intensity", "value": 0.25, "seq": 1}))
        .await;
    honest.recv_type("ack").await;
    perf.state_until(|s| raw(s, "intensity") == Some(0.25))
        .await;

    // Before joining.
    let mut fresh = Client::connect(srv.addr).await;
    fresh
        .send(json!({"type": "input", "param": "intensity", "value": 1.0}))
        .await;
    assert_eq!(fresh.error().await["code"], "not_joined");
    fresh.send(json!({"type": "join", "show": "NOSUCH"})).await;
    assert_eq!(fresh.error().await["code"], "unknown_show");
    fresh.send(json!({"type": "join", "zone": "balcony"})).await;
    let e = fresh.error().await;
    assert_eq!(e["code"], "unknown_zone");
    assert!(e["message"].as_str().unwrap().contains("front"), "{e}");

    let (mut bad, _) = Client::audience(srv.addr).await;
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_json"),
        ("[1, 2, 3]".into(), "bad_json"),
        (json!({"param": "intensity"}).to_string(), "bad_frame"),
        (json!({"type": "shout"}).to_string(), "unknown_type"),
        (
            json!({"type": "input", "param": "volume", "value": 0.5}).to_string(),
            "unknown_param",
        ),
        (
            json!({"type": "input", "param": "intensity", "value": "loud"}).to_string(),
            "wrong_type",
        ),
        (
            json!({"type": "input", "param": "section", "value": 1}).to_string(),
            "wrong_type",
        ),
        (
            json!({"type": "vote", "param": "intensity", "choice": "calm"}).to_string(),
            "wrong_type",
        ),
        (
            json!({"type": "vote", "param": "section", "choice": "chaos"}).to_string(),
            "invalid_choice",
        ),
        (
            json!({"type": "input", "param": "intensity", "value": 1.5}).to_string(),
            "out_of_range",
        ),
        (
            json!({"type": "input", "param": "intensity", "value": -0.1}).to_string(),
            "out_of_range",
        ),
        (
            r#"{"type":"input","param":"intensity","value":1e999}"#.into(),
            "not_finite",
        ),
        (
            r#"{"type":"input","param":"intensity","value":NaN}"#.into(),
            "not_finite",
        ),
        (
            format!(
                r#"{{"type":"input","param":"intensity","value":0.5,"pad":"{}"}}"#,
                "x".repeat(5000)
            ),
            "frame_too_large",
        ),
        (json!({"type": "join"}).to_string(), "already_joined"),
        (json!({"type": "reset"}).to_string(), "forbidden"),
        (
            json!({"type": "session", "action": "end"}).to_string(),
            "forbidden",
        ),
        (
            json!({"type": "bypass", "on": true}).to_string(),
            "forbidden",
        ),
    ];
    for (text, code) in &cases {
        bad.send_text(text).await;
        let e = bad.error().await;
        assert_eq!(e["code"], *code, "for {text:.80}: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    // Frames refused while reading echo their seq, even when they are not valid JSON (on a
    // connection of its own: this one has spent its error budget).
    let (mut again, _) = Client::audience(srv.addr).await;
    for (text, code) in [
        (
            r#"{"type":"input","param":"intensity","value":NaN,"seq":41}"#,
            "not_finite",
        ),
        (
            r#"{"type":"input","param":"intensity","value":-Infinity,"seq":41}"#,
            "not_finite",
        ),
        (r#"{"type":"dance","seq":41}"#, "unknown_type"),
        (
            r#"{"type":"input","param":"intensity","value":"loud","seq":41}"#,
            "wrong_type",
        ),
        (
            r#"{"type":"input","param":"intensity","seq":41}"#,
            "bad_frame",
        ),
        (
            r#"{"type":"override","param":"intensity","mode":"smash","value":1,"seq":41}"#,
            "invalid_override",
        ),
    ] {
        again.send_text(text).await;
        let e = again.error().await;
        assert_eq!(e["code"], code, "for {text}: {e}");
        assert_eq!(e["seq"], 41, "for {text}: {e}");
    }
    bad.send_binary(vec![1, 2, 3]).await;
    assert_eq!(bad.error().await["code"], "binary_not_supported");
    // Still connected and served.
    assert!(bad.alive().await);
    assert!(honest.alive().await);

    // Counted per code.
    let stats = &srv.hub.stats;
    for code in [
        ErrorCode::BadJson,
        ErrorCode::UnknownType,
        ErrorCode::UnknownParam,
        ErrorCode::WrongType,
        ErrorCode::OutOfRange,
        ErrorCode::NotFinite,
        ErrorCode::FrameTooLarge,
        ErrorCode::Forbidden,
        ErrorCode::NotJoined,
        ErrorCode::UnknownShow,
        ErrorCode::UnknownZone,
        ErrorCode::BinaryNotSupported,
    ] {
        assert!(stats.errors_of(code) >= 1, "{code:?} not counted");
    }
    assert!(stats.inputs_rejected.load(Relaxed) >= 8);

    // Nobody's influence changed: the aggregate is still the honest input alone.
    let s = perf.recv_type("state").await;
    assert_eq!(raw(&s, "intensity"), Some(0.25), "{s}");
    assert_eq!(s["params"]["intensity"]["participants"], 1);
    // The stats frame reports the errors.
    let st = perf.recv_type("stats").await;
    assert!(st["errors"]["out_of_range"].as_u64().unwrap() >= 2, "{st}");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_gains_no_influence_and_keeps_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with(config_no_recency(dir.path())).await;
    let mut perf = Client::performer(srv.addr).await;
    let (mut honest, _) = Client::audience(srv.addr).await;
    let (mut flooder, _) = Client::audience(srv.addr).await;
    // An honest client at 10 inputs per second is never rate limited.
    for i in 0..20 {
        honest
            .send(json!({"type": "input", "param": "intensity", "value": 0.2, "seq": i}))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The flooder sends 2,000 inputs as fast as it can, all at the extreme.
    for i in 0..2000 {
        flooder
            .send(json!({"type": "input", "param": "intensity", "value": 1.0, "seq": i}))
            .await;
    }
    let e = flooder.error().await;
    assert_eq!(e["code"], "rate_limited");
    assert!(flooder.alive().await, "the flooder is not disconnected");
    assert!(honest.alive().await);
    // Two participants, one input each: the aggregate is their mean, as if the flooder
    // had sent once.
    let s = perf
        .state_until(|s| s["params"]["intensity"]["participants"] == 2)
        .await;
    // (The trimmed mean is computed from a fine histogram: exact to a bin fraction.)
    assert!((raw(&s, "intensity").unwrap() - 0.6).abs() < 0.005, "{s}");
    assert!(srv.hub.stats.errors_of(ErrorCode::RateLimited) > 0);
    // The honest client got no rate_limited error: drain its frames and look.
    honest.send(json!({"type": "ping", "id": 1})).await;
    loop {
        let f = honest.recv().await;
        assert_ne!(f["code"], "rate_limited", "honest client was rate limited");
        if f["type"] == "pong" && f["id"] == 1 {
            break;
        }
    }
    srv.shutdown().await.unwrap();
}

/// A request to `/live/v1` that is not a WebSocket handshake gets 400 and a body naming
/// what is wrong; the hub is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_handshake_gets_400_naming_the_problem() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let cases = [
        ("", "the Connection header must include 'upgrade'"),
        (
            "Connection: upgrade\r\n",
            "the Upgrade header must be 'websocket'",
        ),
        (
            "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n",
            "Sec-WebSocket-Version must be 13",
        ),
        (
            "Connection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n",
            "the Sec-WebSocket-Key header is missing",
        ),
    ];
    for (headers, why) in cases {
        let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        let req = format!("GET /live/v1 HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        let resp = String::from_utf8_lossy(&buf[..n]);
        assert!(resp.starts_with("HTTP/1.1 400"), "{headers:?}: {resp}");
        assert!(resp.contains(why), "{headers:?}: {resp}");
    }
    // A proper handshake after all that still works, and nobody joined on the way.
    let (mut c, _) = Client::audience(srv.addr).await;
    assert!(c.alive().await);
    assert_eq!(srv.hub.stats.audience.load(Relaxed), 1);
}

/// A frame over 64 KiB (no honest client sends one) closes that connection with code
/// 1009 and a reason; everyone else keeps their state and their influence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_with_1009_and_touches_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut honest, _) = Client::audience(srv.addr).await;
    honest
        .send(json!({"type": "input", "param": "intensity", "value": 0.75, "seq": 1}))
        .await;
    honest.recv_type("ack").await;
    let (mut big, _) = Client::audience(srv.addr).await;
    big.send_text(&"x".repeat(70 * 1024)).await;
    let (code, reason) = big.close_frame().await.expect("a close frame");
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("65536"), "{reason}");
    // The honest client still gets states that carry its input.
    let st = honest.state_until(|s| value(s, "intensity") > 0.7).await;
    assert!(value(&st, "intensity") > 0.7, "{st}");
    assert!(honest.alive().await);
}

/// Pings are not free: each costs a pong. A client pinging past its budget (5 a second,
/// 10 in a burst) is closed with 1008, and nobody else notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_is_closed_with_1008_and_touches_nobody_else() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut honest, _) = Client::audience(srv.addr).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/live/v1", srv.addr))
        .await
        .unwrap();
    ws.send(Message::text(json!({"type": "join"}).to_string()))
        .await
        .unwrap();
    // Pings without reading anything (the send fails once the server has closed).
    for _ in 0..200 {
        if ws.send(Message::Ping(vec![7; 125].into())).await.is_err() {
            break;
        }
    }
    let mut pongs = 0;
    let close = tokio::time::timeout(WAIT, async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Pong(_)) => pongs += 1,
                Ok(Message::Close(f)) => return f,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the server closes in time")
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1008, "{close:?}");
    assert!(close.reason.contains("pings"), "{close:?}");
    assert!(pongs <= 20, "{pongs} pongs");
    honest
        .send(json!({"type": "input", "param": "intensity", "value": 0.75, "seq": 1}))
        .await;
    honest.recv_type("ack").await;
    assert!(honest.alive().await);
}
