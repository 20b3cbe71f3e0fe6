//! Chaos: a real `tutti serve` under load is killed with SIGKILL at random moments, six
//! times, and restarted on the same data directory each time. Meanwhile 24 phones send
//! inputs, a performer sends overrides one after another, and an admin creates ensembles.
//!
//! After every restart: the show is the same show, the crowd of the last snapshot is back
//! (the performer's first state counts every phone's slot before any phone reconnects),
//! every phone resumes with its newest token and gets its own participant back. At the end:
//! every acknowledged override and every acknowledged API write is in the store (counted).
//!
//! The moments are random (the seed is printed; `TUTTI_CHAOS_SEED` replays one), but each
//! kill comes at least 2 s after the phones last (re)joined: a slot is stored with the
//! once-a-second snapshot, so a welcome in the last second before a crash may be lost
//! (docs/operations.md, "After a crash").

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::live::{self};
use support::{http, serve_with, setup_admin, try_http, Server};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "chaos-token";
const PHONES: usize = 24;
const KILLS: usize = 6;

/// A small deterministic generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Phone {
    participant: u64,
    token: String,
}

/// Joins (or resumes with `resume`) and returns the welcome's participant and token, then
/// keeps sending inputs until the server goes away.
async fn phone(
    addr: String,
    resume: Option<String>,
    seed: u64,
) -> Result<(Phone, tokio::task::JoinHandle<()>), String> {
    let mut ws = live::connect(&addr).await?;
    let join = match &resume {
        Some(r) => json!({"type": "join", "resume": r}),
        None => json!({"type": "join"}),
    };
    live::send(&mut ws, join).await?;
    let welcome = live::expect(&mut ws, "welcome")
        .await
        .map_err(|e| e.to_string())?;
    let me = Phone {
        participant: welcome["participant"].as_u64().ok_or("no participant")?,
        token: welcome["resume"].as_str().ok_or("no token")?.to_string(),
    };
    let task = tokio::spawn(async move {
        let (mut tx, mut rx) = ws.split();
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
        let mut rng = Rng(seed | 1);
        for seq in 1u64.. {
            let frame = json!({"type": "input", "param": "brightness",
                               "value": (rng.between(0.0, 1.0) * 100.0).round() / 100.0, "seq": seq});
            if tx.send(Message::text(frame.to_string())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reader.abort();
    });
    Ok((me, task))
}

/// Sends overrides one at a time, each with a value no other has, and records the values
/// acknowledged; stops when the server goes away.
async fn performer(addr: String, round: usize, acked: Arc<std::sync::Mutex<Vec<f64>>>) {
    let Ok(mut ws) = live::connect(&addr).await else {
        return;
    };
    if live::send(
        &mut ws,
        json!({"type": "join", "role": "performer", "token": TOKEN}),
    )
    .await
    .is_err()
        || live::expect(&mut ws, "welcome").await.is_err()
    {
        return;
    }
    for n in 1u64.. {
        // Distinct values in 0..1 on a 1e-6 grid, per round and number.
        let value = (round as f64 * 10_000.0 + n as f64) / 1_000_000.0;
        let frame = json!({"type": "override", "param": "intensity", "mode": "lock",
                           "value": value, "seq": n});
        if live::send(&mut ws, frame).await.is_err() {
            return;
        }
        loop {
            match live::next(&mut ws).await {
                Ok(v) if v["type"] == "ack" && v["seq"] == n => {
                    acked.lock().unwrap().push(value);
                    break;
                }
                Ok(v) if v["type"] == "error" => panic!("override refused: {v}"),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// Creates ensembles one at a time; records the slugs acknowledged with 201.
fn writer(addr: String, admin: String, round: usize, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut made = vec![];
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let slug = format!("chaos-{round}-{n}");
        let Ok((st, v)) = try_http(
            &addr,
            "POST",
            "/api/v1/ensembles",
            Some(&admin),
            Some(&json!({"slug": slug, "name": "Chaos"})),
        ) else {
            break; // the connection died with the server
        };
        match st {
            201 => made.push(slug),
            _ => panic!("ensemble refused: {st} {v}"),
        }
    }
    made
}

fn start(data: &std::path::Path) -> Server {
    serve_with(data, &["--performer-token", TOKEN])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_under_load_loses_nothing_acknowledged_and_the_crowd_comes_back() {
    let seed = std::env::var("TUTTI_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("chaos seed {seed} (TUTTI_CHAOS_SEED={seed} replays these moments)");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let mut srv = start(&data);
    let admin = setup_admin(&srv.addr);
    let (_, welcome) = live::performer(&srv.addr, TOKEN).await;
    let show = welcome["show"]["code"].as_str().unwrap().to_string();

    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut written: Vec<String> = vec![];
    let mut phones: Vec<Option<Phone>> = (0..PHONES).map(|_| None).collect();
    for round in 0..KILLS {
        let addr = srv.addr.clone();
        if round > 0 {
            // Before any phone is back: the same show, with every slot of the crowd.
            let (mut desk, welcome) = live::performer(&addr, TOKEN).await;
            assert_eq!(welcome["show"]["code"], show.as_str(), "round {round}");
            let state = live::expect(&mut desk, "state").await.unwrap();
            assert_eq!(
                state["participants"].as_u64(),
                Some(PHONES as u64),
                "round {round}: the crowd after the restart: {state}"
            );
        }
        // Every phone joins (first round) or resumes with its newest token.
        let mut tasks = vec![];
        for (i, slot) in phones.iter_mut().enumerate() {
            let resume = slot.as_ref().map(|p| p.token.clone());
            let (me, task) = phone(addr.clone(), resume, seed ^ (i as u64 + 1) << 8)
                .await
                .unwrap_or_else(|e| panic!("round {round}: phone {i} could not join: {e}"));
            if let Some(before) = slot {
                assert_eq!(
                    me.participant, before.participant,
                    "round {round}: phone {i} got another participant after the restart"
                );
            }
            *slot = Some(me);
            tasks.push(task);
        }
        let desk = tokio::spawn(performer(addr.clone(), round, acked.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let api = {
            let (addr, admin, stop) = (addr.clone(), admin.clone(), stop.clone());
            tokio::task::spawn_blocking(move || writer(addr, admin, round, stop))
        };

        // A random moment, at least 2 s after the last welcome (one snapshot period plus
        // margin), then SIGKILL.
        let wait = rng.between(2.0, 3.5);
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        srv.child.kill().unwrap();
        srv.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        written.extend(api.await.unwrap());
        desk.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        println!(
            "round {round}: killed after {wait:.2} s; {} overrides and {} writes acknowledged so far",
            acked.lock().unwrap().len(),
            written.len()
        );
        srv = start(&data);
    }

    // Everything acknowledged is there.
    let mut stored = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (st, v) = http(
            &srv.addr,
            "GET",
            &format!("/api/v1/ensembles?limit=100{cursor}"),
            Some(&admin),
            None,
        );
        assert_eq!(st, 200, "{v}");
        for e in v["items"].as_array().unwrap_or_else(|| panic!("{v}")) {
            stored.insert(e["slug"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let missing: Vec<&String> = written.iter().filter(|s| !stored.contains(*s)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged ensembles lost: {missing:?}"
    );
    drop(srv);

    let store =
        tutti_store::Store::open(tutti_store::StoreConfig::new(data.join("tutti.db"))).unwrap();
    let shows = store.active_shows().await.unwrap();
    let row = shows.iter().find(|s| s.code == show).expect("the show");
    let log = store.overrides(row.id).await.unwrap();
    let logged: BTreeMap<i64, ()> = log
        .iter()
        .filter(|o| o.action == "set")
        .filter_map(|o| serde_json::from_str::<Value>(&o.detail_json).ok())
        .filter_map(|d| d["a"].as_f64())
        .map(|a| ((a * 1_000_000.0).round() as i64, ()))
        .collect();
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<f64> = acked
        .iter()
        .copied()
        .filter(|a| !logged.contains_key(&((a * 1_000_000.0).round() as i64)))
        .collect();
    assert!(lost.is_empty(), "acknowledged overrides lost: {lost:?}");
    println!(
        "{KILLS} kills: {} acknowledged overrides and {} acknowledged API writes all stored",
        acked.len(),
        written.len()
    );
    assert!(
        !acked.is_empty() && !written.is_empty(),
        "the load did nothing"
    );
    store.close().await.unwrap();
}
