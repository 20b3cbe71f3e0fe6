//! OSC out (a real UDP socket decodes the bundles), OSC in (performer commands and
//! malformed packets), and resuming a show after a restart from the SQLite store.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_leaves_as_one_osc_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(dir.path());
    cfg.osc.targets = vec![sock.local_addr().unwrap()];
    let srv = start_with(cfg).await;
    let (mut phone, _) = Client::audience(srv.addr).await;
    phone
        .send(json!({"type": "input", "param": "tempo", "value": 150.0}))
        .await;
    let mut buf = vec![0u8; 4096];
    let mut saw_tempo_move = false;
    for _ in 0..200 {
        let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
            .await
            .expect("a bundle within 5 s")
            .unwrap();
        let (_, packet) = rosc::decoder::decode_udp(&buf[..n]).expect("valid OSC");
        let rosc::OscPacket::Bundle(b) = packet else {
            panic!("expected a bundle")
        };
        assert!(b.timetag.seconds > 0, "bundles are timestamped");
        let addrs: Vec<String> = b
            .content
            .iter()
            .map(|p| match p {
                rosc::OscPacket::Message(m) => m.addr.clone(),
                _ => panic!("nested bundle"),
            })
            .collect();
        assert_eq!(addrs.len(), 8);
        assert!(addrs.contains(&"/tutti/intensity".to_string()));
        let tempo = b.content.iter().find_map(|p| match p {
            rosc::OscPacket::Message(m) if m.addr == "/tutti/tempo" => m.args[0].clone().float(),
            _ => None,
        });
        if tempo.unwrap() > 101.0 {
            saw_tempo_move = true;
            break;
        }
    }
    assert!(saw_tempo_move, "the crowd's tempo reached OSC");
    srv.shutdown().await.unwrap();
}

fn osc_msg(addr: &str, args: Vec<rosc::OscType>) -> Vec<u8> {
    rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: addr.into(),
        args,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osc_commands_perform_and_malformed_packets_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let osc = srv.osc_listen.expect("osc input enabled");
    let mut perf = Client::performer(srv.addr).await;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"garbage, not OSC", osc).unwrap();
    udp.send_to(
        &osc_msg("/tutti/lock/brightness", vec![rosc::OscType::Float(0.8)]),
        osc,
    )
    .unwrap();
    let s = perf
        .state_until(|s| (value(s, "brightness") - 0.8).abs() < 1e-9)
        .await;
    assert_eq!(s["params"]["brightness"]["overrides"][0]["by"], "osc");
    // Out of range over OSC is refused with the same validation as the page.
    udp.send_to(
        &osc_msg("/tutti/lock/brightness", vec![rosc::OscType::Float(5.0)]),
        osc,
    )
    .unwrap();
    udp.send_to(&osc_msg("/tutti/release/brightness", vec![]), osc)
        .unwrap();
    perf.state_until(|s| s["params"]["brightness"]["overrides"] == json!([]))
        .await;
    let st = perf
        .state_until_stats(|st| st["osc"]["malformed"].as_u64() >= Some(1))
        .await;
    assert!(st["osc"]["received"].as_u64().unwrap() >= 4, "{st}");
    assert!(
        st["errors"]["invalid_override"].as_u64().unwrap() >= 1,
        "{st}"
    );
    srv.shutdown().await.unwrap();
}

trait StatsWait {
    async fn state_until_stats(
        &mut self,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value;
}

impl StatsWait for Client {
    async fn state_until_stats(
        &mut self,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..20 {
            let st = self.recv_type("stats").await;
            if pred(&st) {
                return st;
            }
        }
        panic!("stats never satisfied the condition");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_show_with_its_state_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let code = srv.show_code.clone();
    let mut perf = Client::performer(srv.addr).await;
    let (mut phone, _) = Client::audience(srv.addr).await;
    phone
        .send(json!({"type": "input", "param": "density", "value": 0.9}))
        .await;
    perf.send(json!({"type": "override", "param": "pitch", "mode": "lock", "value": 5, "seq": 1}))
        .await;
    perf.recv_type("ack").await;
    perf.state_until(|s| (value(s, "density") - 0.9).abs() < 0.005)
        .await;
    // A snapshot with the settled value: stored by the next tick (instead of waiting for the
    // once-a-second one); two states later that tick has run, and shutting down commits it.
    srv.hub
        .show(Some(&code))
        .expect("the show")
        .snapshot_at_next_tick();
    perf.recv_type("state").await;
    perf.recv_type("state").await;
    drop(perf);
    drop(phone);
    srv.shutdown().await.unwrap();

    let srv = start(dir.path()).await;
    assert_eq!(srv.show_code, code, "the interrupted show resumes");
    let mut perf = Client::performer(srv.addr).await;
    let s = perf.recv_type("state").await;
    assert_eq!(s["status"], "live");
    assert_eq!(value(&s, "pitch"), 5.0, "the lock is back: {s}");
    assert!(
        (value(&s, "density") - 0.9).abs() < 0.01,
        "the state is back: {s}"
    );
    srv.shutdown().await.unwrap();
}
