//! `serve --sound supercollider` against a real scsynth (with a dummy JACK clock): the
//! show's nodes follow the crowd and the performer, the dashboard reports the link, and a
//! recorded show renders offline with `scsynth -N`.

#[path = "../../tutti-supercollider/tests/common/mod.rs"]
mod sc;

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tutti_server::config::SoundBackend;
use tutti_supercollider::{ControlValue, ScClient, Transport, TreeNode};

async fn control(client: &ScClient, def: &str, name: &str) -> Option<f32> {
    let tree = client.query_tree(1000, true).await.ok()?;
    let TreeNode::Group { children, .. } = tree else {
        return None;
    };
    children.iter().find_map(|n| match n {
        TreeNode::Synth {
            def: d, controls, ..
        } if d == def => controls.iter().find_map(|(k, v)| match v {
            ControlValue::Number(x) if k == name => Some(*x),
            _ => None,
        }),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crowd_and_the_performer_play_scsynth() {
    let server = sc::ScServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.sound = SoundBackend::Supercollider;
    cfg.supercollider.server = server.addr();
    let srv = start_with(cfg).await;
    let mut perf = Client::performer(srv.addr).await;
    let st = perf.recv_type("stats").await;
    assert_eq!(st["sound"]["backend"], "supercollider");
    let client = ScClient::connect(&server.addr(), Transport::Udp, Duration::from_secs(2))
        .await
        .unwrap();

    // A lock on intensity reaches the drone's amp through the piece's mapping:
    // 0.01–0.8 exponential at 0.5 → 0.01·80^0.5.
    perf.send(
        json!({"type": "override", "param": "intensity", "mode": "lock", "value": 0.5, "seq": 1}),
    )
    .await;
    perf.recv_type("ack").await;
    let want = 0.01f32 * 80f32.sqrt();
    let mut got = None;
    for _ in 0..100 {
        got = control(&client, "drone", "amp").await;
        if got.is_some_and(|v| (v - want).abs() < 1e-4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        got.is_some_and(|v| (v - want).abs() < 1e-4),
        "drone.amp = {got:?}, want {want}"
    );

    // A vote for "storm" sets the rhythm's pattern to 2.
    let (mut phone, _) = Client::audience(srv.addr).await;
    phone
        .send(json!({"type": "vote", "param": "section", "choice": "storm"}))
        .await;
    let mut pattern = None;
    for _ in 0..100 {
        pattern = control(&client, "rhythm", "pattern").await;
        if pattern == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pattern, Some(2.0));
    let st = perf.recv_type("stats").await;
    assert_eq!(st["sound"]["state"], "connected", "{st}");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scsynth_is_reported_and_the_show_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.sound = SoundBackend::Supercollider;
    cfg.supercollider.server = format!("127.0.0.1:{}", sc::free_port());
    let srv = start_with(cfg).await;
    let mut perf = Client::performer(srv.addr).await;
    let st = perf.recv_type("stats").await;
    assert_eq!(st["sound"]["state"], "not started", "{st}");
    let st = perf.state_until_stats_error().await;
    assert!(
        st["sound"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{st}"
    );
    // The show runs: inputs still move the state.
    let (mut phone, _) = Client::audience(srv.addr).await;
    phone
        .send(json!({"type": "input", "param": "tempo", "value": 160.0}))
        .await;
    perf.state_until(|s| raw(s, "tempo") == Some(160.0)).await;
    srv.shutdown().await.unwrap();
}

trait StatsError {
    async fn state_until_stats_error(&mut self) -> serde_json::Value;
}

impl StatsError for Client {
    async fn state_until_stats_error(&mut self) -> serde_json::Value {
        for _ in 0..20 {
            let st = self.recv_type("stats").await;
            if st["sound"]["error"]
                .as_str()
                .is_some_and(|e| !e.starts_with("connecting"))
            {
                return st;
            }
        }
        panic!("no error reported for the unreachable scsynth");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_show_renders_with_scsynth_nrt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let srv = start_with(cfg).await;
    let mut perf = Client::performer(srv.addr).await;
    // Quiet for three seconds, loud for three: the render's level must follow.
    // (Three stored snapshots, one a second of show time, after each lock.)
    for (seq, value) in [(1, 0.0), (2, 1.0)] {
        perf.send(json!({"type": "override", "seq": seq, "param": "intensity", "mode": "lock", "value": value}))
            .await;
        let ack = perf.recv_type("ack").await;
        wait_snapshots(&srv, ack["tick"].as_u64().unwrap(), 3).await;
    }
    srv.shutdown().await.unwrap();

    let out = dir.path().join("show.wav");
    let req = tutti_server::render::RenderRequest {
        data_dir: dir.path().to_path_buf(),
        show: None,
        out: out.clone(),
        sample_rate: 48_000,
        scsynth: sc::scsynth_bin(),
    };
    let t = tutti_server::render::render_scsynth(&req).await.unwrap();
    assert!(t.points.len() >= 5, "{} snapshots", t.points.len());
    let mut reader = hound::WavReader::open(&out).unwrap();
    let spec = reader.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => reader
            .samples::<i32>()
            .map(|s| s.unwrap() as f32 / (1u32 << (spec.bits_per_sample - 1)) as f32)
            .collect(),
        hound::SampleFormat::Float => reader.samples::<f32>().map(|s| s.unwrap()).collect(),
    };
    let frames = samples.len() / spec.channels as usize;
    let rms = |from: f64, to: f64| {
        let a = (from * f64::from(spec.sample_rate)) as usize * spec.channels as usize;
        let b = ((to * f64::from(spec.sample_rate)) as usize * spec.channels as usize)
            .min(samples.len());
        let s = &samples[a..b];
        (s.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    };
    assert!(frames > 48_000 * 5, "{frames} frames");
    let quiet = rms(0.5, 2.5);
    let loud = rms(4.0, 5.5);
    assert!(loud > 0.01, "the render is not silent (rms {loud})");
    assert!(
        loud > 3.0 * quiet,
        "level follows intensity: quiet {quiet}, loud {loud}"
    );
}
