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

/// The loudest channel's RMS of the next monitor frame.
async fn monitor_rms_db(perf: &mut Client) -> f64 {
    let m = perf.recv_type("monitor").await;
    let rms = m["rms_dbfs"].as_array().unwrap();
    rms.iter()
        .map(|v| v.as_f64().unwrap())
        .fold(f64::MIN, f64::max)
}

/// The level once it has stopped falling: the lowest of the monitor frames, read until ten
/// in a row bring it no more than 0.5 dB lower (within 300 frames).
async fn settled_low_db(perf: &mut Client) -> f64 {
    let mut low = monitor_rms_db(perf).await;
    let mut calm = 0;
    for _ in 0..300 {
        let db = monitor_rms_db(perf).await;
        if db < low - 0.5 {
            calm = 0;
        } else {
            calm += 1;
        }
        low = low.min(db);
        if calm == 10 {
            return low;
        }
    }
    panic!("the level kept falling: {low} dBFS");
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
    let quiet = settled_low_db(&mut perf).await;
    perf.send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": 1.0}))
        .await;
    let mut loud = f64::MIN;
    for _ in 0..300 {
        loud = loud.max(monitor_rms_db(&mut perf).await);
        if loud > quiet + 10.0 {
            break;
        }
    }
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
    perf.send(
        json!({"type": "override", "seq": 1, "param": "intensity", "mode": "lock", "value": 0.9}),
    )
    .await;
    let ack = perf.recv_type("ack").await;
    // Three seconds of show after the lock, as three stored snapshots.
    wait_snapshots(&srv, ack["tick"].as_u64().unwrap(), 3).await;
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
    let recordings = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path().join("recordings"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    // Until more than half a second of stereo 32-bit frames has reached the file.
    let half_second = 44 + 48_000 / 2 * 2 * 4;
    eventually("half a second of recording", || {
        let r = recordings();
        async move {
            r.first()
                .and_then(|p| std::fs::metadata(p).ok())
                .is_some_and(|m| m.len() > half_second + 8192)
        }
    })
    .await;
    srv.shutdown().await.unwrap();
    let recordings = recordings();
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
