//! The performance memory in the real server: a show becomes an episode (moments from the
//! stored snapshots, the performer's override and the dashboard's feedback as steps); the
//! dashboard's Memory panel, in headless Chromium, shows a suggestion drawn from past shows of
//! the piece while the show runs, and dismissing it records feedback; `/metrics` reports the
//! breaker; the API's permissions and bad input answer with stable codes.

mod api_support;
mod common;

use std::time::Duration;

use api_support::Api;
use common::browser::{browser, chromedriver};
use fantoccini::Locator;
use serde_json::{json, Value};
use tutti_memory::{Context, Moment, Outcome, Record, Step};
use tutti_protocol::StateFrame;
use tutti_report::Health;
use tutti_spec::PieceSpec;

/// Four past shows of the demo piece that start like the live one, then (20–40 s in) the
/// crowd pushes intensity down and the performer locks it.
fn past_shows(live: &[f32], dims: &[String]) -> Vec<Record> {
    let intensity = dims.iter().position(|d| d == "intensity").unwrap();
    let elapsed = dims.iter().position(|d| d == "elapsed").unwrap();
    (0..4)
        .map(|i| {
            let start = 1_700_000_000_000 + i * 86_400_000;
            let moments = (0..60)
                .map(|k| {
                    let mut v = live.to_vec();
                    if (10..20).contains(&k) {
                        v[intensity] = (live[intensity] - 0.05 * (k - 9) as f32).max(0.0);
                    } else if k >= 20 {
                        v[intensity] = (live[intensity] - 0.5).max(0.0);
                    }
                    v[elapsed] = (k * 2) as f32 / 5400.0;
                    Moment {
                        at_ms: start + k * 2000,
                        section: Some("calm".into()),
                        vector: v,
                    }
                })
                .collect();
            Record {
                key: Some(format!("past-{i}")),
                context: Context {
                    kind: "show".into(),
                    piece: Some("demo".into()),
                    text: format!("an earlier show {i}"),
                    ..Context::default()
                },
                dims: Some(dims.to_vec()),
                started_at_ms: Some(start),
                ended_at_ms: Some(start + 120_000),
                steps: vec![Step {
                    at_ms: start + 26_000,
                    kind: "override".into(),
                    data: json!({"label": "intensity lock", "param": "intensity"}),
                }],
                moments,
                outcome: Some(Outcome::default()),
                open: false,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_becomes_an_episode_and_the_dashboard_shows_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.memory.moment_every_s = 1;
    let srv = common::start_with(cfg).await;
    let mem = srv.memory.clone().expect("the memory runs");
    let store = mem.store().clone();
    let show = store.show_by_code(&srv.show_code).await.unwrap().unwrap();
    let spec = PieceSpec::demo();
    let dims = tutti_server::memory::dims(&spec);

    // The live show's own vector, from its first stored snapshot.
    let mut snap = None;
    for _ in 0..300 {
        snap = store.latest_snapshot(show.id).await.unwrap();
        if snap.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let snap = snap.expect("a snapshot");
    let state: StateFrame = serde_json::from_str(&snap.state_json).unwrap();
    let health: Option<Health> = snap
        .health_json
        .as_deref()
        .and_then(|h| serde_json::from_str(h).ok());
    let live = tutti_server::memory::vector(&spec, &state, health.as_ref(), 5.0);
    assert_eq!(live.len(), dims.len());
    for r in past_shows(&live, &dims) {
        mem.record(r).await.unwrap();
    }
    assert!(mem.flush(Duration::from_secs(20)).await);

    // The dashboard, in Chromium.
    let base = format!("http://{}", srv.addr);
    let driver = chromedriver().await;
    let b = browser(&driver, &dir.path().join("profile"), 1200, 1000).await;
    b.goto(&format!("{base}/perform#token={}", common::TOKEN))
        .await
        .unwrap();
    common::browser::wait_text(&b, "#conn", "live").await;
    let sel = r#"#suggestions li[data-id="trend:intensity:down"] .sugg-text"#;
    let mut text = String::new();
    for _ in 0..200 {
        if let Some(t) = common::browser::text_of(&b, sel).await {
            text = t;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains(
            "of the last 4 shows of this piece the crowd pushed intensity down within 40 s of here"
        ),
        "panel: {text:?}"
    );
    assert!(text.contains("you locked it"), "{text}");
    let state_text = common::browser::text_of(&b, "#memory-state").await.unwrap();
    assert!(state_text.starts_with("4 past shows"), "{state_text}");
    // Dismiss: gone from the panel, and a feedback step of the episode.
    b.find(Locator::Css(
        r#"#suggestions li[data-id="trend:intensity:down"] button[data-action="dismiss"]"#,
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    for _ in 0..100 {
        if common::browser::text_of(&b, sel).await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        common::browser::text_of(&b, sel).await.is_none(),
        "dismissed"
    );
    let _ = b.close().await;

    // The performer locks a parameter, then ends the show.
    let mut perf = common::Client::performer(srv.addr).await;
    perf.send(
        json!({"type": "override", "seq": 1, "param": "brightness", "mode": "lock", "value": 0.2}),
    )
    .await;
    let ack = perf.recv_type("ack").await;
    // Two seconds of show after the lock: two stored snapshots, each a moment.
    common::wait_snapshots(&srv, ack["tick"].as_u64().unwrap(), 2).await;
    perf.send(json!({"type": "session", "seq": 2, "action": "end"}))
        .await;
    perf.recv_type("ack").await;
    let subject = format!("show:{}", show.id);
    common::eventually("the episode to complete", || {
        let store = store.clone();
        let subject = subject.clone();
        async move {
            store
                .memory_latest_of(&subject)
                .await
                .unwrap()
                .is_some_and(|e| e.status.as_str() == "completed")
        }
    })
    .await;
    let ep = store.memory_latest_of(&subject).await.unwrap().unwrap();
    assert!(ep.moments >= 2, "{ep:?}");
    let full = store.memory_episode(ep.id).await.unwrap().unwrap();
    let kinds: Vec<&str> = full.steps.iter().map(|s| s.kind.as_str()).collect();
    assert!(kinds.contains(&"override"), "{kinds:?}");
    assert!(kinds.contains(&"feedback"), "{kinds:?}");
    assert!(full
        .steps
        .iter()
        .any(|s| s.data_json.contains("brightness lock")));
    assert!(mem.flush(Duration::from_secs(20)).await);
    assert_eq!(mem.status().index.episodes, 5);

    // The API: the operator's token reads it; nobody else without signing in.
    let api = Api::new(srv.addr).with(common::TOKEN);
    let got = api
        .get(&format!("/memory/episodes/{}", ep.id))
        .await
        .ok(200);
    assert_eq!(got["status"], "completed");
    assert_eq!(got["context"]["piece"], "demo");
    Api::new(srv.addr)
        .get(&format!("/memory/episodes/{}", ep.id))
        .await
        .err(401, "unauthorized");
    let q = json!({"kind": "show", "piece": "demo", "vector": live, "k": 3, "diversity": 0.5});
    let hits = api.post("/memory/search/moments", q).await.ok(200);
    assert_eq!(hits["hits"].as_array().unwrap().len(), 3);
    assert!(hits["hits"][0]["why"]["filters"]
        .as_array()
        .unwrap()
        .contains(&json!("piece=demo")));
    let bad = json!({"kind": "show", "piece": "demo", "vector": live, "k": 0});
    api.post("/memory/search/moments", bad)
        .await
        .err(422, "invalid_limit");
    let bad = json!({"kind": "show", "piece": "demo", "vector": [0.5], "k": 1_000_000});
    api.post("/memory/search/moments", bad)
        .await
        .err(422, "invalid_limit");
    let bad = json!({"kind": "show", "piece": "demo", "vector": [0.5]});
    api.post("/memory/search/moments", bad)
        .await
        .err(422, "dimension_mismatch");
    let bad = json!({"kind": "show", "piece": "nope", "vector": [0.5]});
    api.post("/memory/search/moments", bad)
        .await
        .err(404, "unknown_piece");
    let bad = json!({"context": {"kind": "show", "piece": "nope"}});
    api.post("/memory/episodes", bad)
        .await
        .err(404, "unknown_piece");
    let bad = json!({"context": {"kind": "task"}, "dims": ["a"], "moments": [{"at_ms": 1, "vector": [1, 2]}]});
    api.post("/memory/episodes", bad)
        .await
        .err(422, "dimension_mismatch");
    let r = api
        .req(
            "POST",
            "/memory/search/moments",
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 400);
    let p = api
        .get("/memory/patterns?kind=show&piece=demo")
        .await
        .ok(200);
    assert_eq!(p["episodes"], 5);
    let like = api
        .post(
            "/memory/search/episodes",
            json!({"episode_id": ep.id, "k": 2}),
        )
        .await
        .ok(200);
    assert_eq!(like["items"].as_array().unwrap().len(), 2);
    let rated = api
        .post(
            &format!("/memory/shows/{}/rating", show.id),
            json!({"rating": 0.9}),
        )
        .await
        .ok(200);
    assert_eq!(rated["durable"], "store");
    api.post(
        &format!("/memory/shows/{}/rating", show.id),
        json!({"rating": 2}),
    )
    .await
    .err(422, "validation_failed");
    let st: Value = api.get("/memory/status").await.ok(200);
    assert_eq!(st["breaker"], "closed");

    // /metrics.
    let m = api_support::raw(srv.addr, "GET", "/metrics", &[], b"").await;
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        text.contains("tutti_memory_breaker_state{state=\"closed\"} 1"),
        "{text}"
    );
    assert!(text.contains("tutti_memory_episodes 5"), "{text}");
    srv.shutdown().await.unwrap();
}
