//! The embedded audio engine as the show's sound (the default): the crowd's state reaches
//! its controls through the piece's mappings, performers get levels and a spectrum, and
//! performers (only) can listen to the output.

mod api_support;
mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Keep reading for `settle`, then return the loudest channel's RMS of the last monitor
/// frame (reading all along, so no stale frame is left in the socket).
async fn monitor_rms_db(perf: &mut Client, settle: Duration) -> f64 {
    let until = tokio::time::Instant::now() + settle;
    let mut last = None;
    while tokio::time::Instant::now() < until || last.is_none() {
        let f = perf.recv().await;
        if f["type"] == "monitor" {
            last = Some(f);
        }
    }
    let m = last.unwrap();
    let rms = m["rms_dbfs"].as_array().unwrap();
    rms.iter()
        .map(|v| v.as_f64().unwrap())
        .fold(f64::MIN, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_plays_the_crowd() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let audio = srv
        .engine()
        .cloned()
        .expect("the engine is the default sound");
    let mut perf = Client::performer(srv.addr).await;
    let st = perf.recv_type("stats").await;
    assert_eq!(st["sound"]["backend"], "engine", "{st}");
    assert_eq!(st["sound"]["state"], "playing", "{st}");

    // Quiet, then loud: the mapping intensity → drone.amp (0.01–0.8 exp) reaches the
    // engine, and the monitored level follows.
    perf.send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": 0.0}))
        .await;
    let mut amp = None;
    for _ in 0..50 {
        amp = audio.control("drone.amp");
        if amp.is_some_and(|a| (a - 0.01).abs() < 1e-6) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(amp.is_some_and(|a| (a - 0.01).abs() < 1e-6), "{amp:?}");
    let quiet = monitor_rms_db(&mut perf, Duration::from_millis(2500)).await;
    perf.send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": 1.0}))
        .await;
    let loud = monitor_rms_db(&mut perf, Duration::from_millis(1500)).await;
    assert!((audio.control("drone.amp").unwrap() - 0.8).abs() < 1e-6);
    assert!(loud > quiet + 10.0, "quiet {quiet} dBFS, loud {loud} dBFS");
    let m = perf.recv_type("monitor").await;
    assert!(m["bands_dbfs"].as_array().unwrap().len() >= 16, "{m}");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performers_listen_and_nobody_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let url = format!("ws://{}/live/v1/audio", srv.addr);

    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text(json!({"type": "join"}).to_string()))
        .await
        .unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("expected an error frame")
    };
    let e: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(e["code"], "unauthorized");

    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "join", "role": "performer", "token": TOKEN}).to_string(),
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("expected the format frame")
    };
    let f: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(f["type"], "audio_format");
    assert_eq!(f["encoding"], "s16le");
    let mut bytes = 0;
    while bytes < 48_000 {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("audio within the wait")
            .unwrap()
            .unwrap();
        if let Message::Binary(b) = msg {
            assert_eq!(b.len() % 4, 0, "whole stereo 16-bit frames");
            bytes += b.len();
        }
    }
    srv.shutdown().await.unwrap();
}

/// The first frame the listen stream answers a performer join with `token`.
async fn listen_reply(addr: std::net::SocketAddr, token: &str) -> serde_json::Value {
    let url = format!("ws://{addr}/live/v1/audio");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "join", "role": "performer", "token": token}).to_string(),
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("expected a text frame")
    };
    serde_json::from_str(t.as_str()).unwrap()
}

/// The listen stream admits performers as `/live/v1` does: an admin signed in through the
/// management API listens; a crew member, who may not perform, does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performers_signed_in_through_the_api_listen_too() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (admin, _) = api_support::setup_admin(srv.addr).await;
    let (crew, _) = api_support::user(&admin, "crewmember", "crew").await;
    let f = listen_reply(srv.addr, admin.token.as_deref().unwrap()).await;
    assert_eq!(f["type"], "audio_format", "{f}");
    let e = listen_reply(srv.addr, crew.token.as_deref().unwrap()).await;
    assert_eq!(e["code"], "unauthorized", "{e}");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_show_renders_deterministically_with_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let mut perf = Client::performer(srv.addr).await;
    perf.send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": 0.9}))
        .await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    srv.shutdown().await.unwrap();
    let render = |name: &str| tutti_server::render::RenderRequest {
        data_dir: dir.path().to_path_buf(),
        show: None,
        out: dir.path().join(name),
        sample_rate: 48_000,
        scsynth: "scsynth".into(),
    };
    let a = render("a.wav");
    let b = render("b.wav");
    let t = tutti_server::render::render_engine(&a).await.unwrap();
    assert!(t.points.len() >= 3);
    tutti_server::render::render_engine(&b).await.unwrap();
    let (wa, wb) = (
        std::fs::read(&a.out).unwrap(),
        std::fs::read(&b.out).unwrap(),
    );
    assert_eq!(wa, wb, "the same show renders to the same bytes");
    let mut r = hound::WavReader::open(&a.out).unwrap();
    let peak = r
        .samples::<f32>()
        .map(|s| s.unwrap().abs())
        .fold(0.0f32, f32::max);
    assert!(peak > 0.01 && peak <= 1.0, "peak {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_is_recorded_to_wav_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.audio.record = true;
    let srv = start_with(cfg).await;
    let mut perf = Client::performer(srv.addr).await;
    perf.send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": 0.8}))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    srv.shutdown().await.unwrap();
    let recordings: Vec<_> = std::fs::read_dir(dir.path().join("recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let mut r = hound::WavReader::open(&recordings[0]).unwrap();
    assert_eq!(r.spec().channels, 2);
    assert!(r.duration() > 48_000 / 2, "{} frames", r.duration());
    let peak = r
        .samples::<f32>()
        .map(|s| s.unwrap().abs())
        .fold(0.0f32, f32::max);
    assert!(peak > 0.01, "the recording is not silent (peak {peak})");
}
