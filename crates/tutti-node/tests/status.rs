//! A show's status reaches its edges over a real `nats-server -js` (started per test): a
//! paused conductor publishes its tick again with the status, at once and then once a
//! second of show time; the edge follows it (its phones see `paused`, their inputs are
//! refused as on one node), then `live` and `ended`. A replayed or inconsistent status
//! message is refused, counted and never applied.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tutti_bus::{connect, state_subject, Leases};
use tutti_cluster::{EdgeId, StateMsg, Status};
use tutti_node::{Admission, Conductor, ConductorConfig, Edge};
use tutti_protocol::{ErrorCode, StateFrame};
use tutti_show::{ShowClock, ShowRuntime, Tick, TickSink};
use tutti_spec::{ParamKindName, PieceSpec};
use tutti_store::{ShowStatus, Store};

const GUARD: Duration = Duration::from_secs(10);
const CODE: &str = "PAUSE";

async fn store_with_show(dir: &std::path::Path) -> (Store, i64) {
    common::store_with_show(dir, CODE).await
}

fn runtime(id: i64, store: &Store, clock: &ShowClock) -> Arc<ShowRuntime> {
    common::runtime(CODE, id, store, clock)
}

/// What a sink was handed: tick number, whether live, audience text.
#[derive(Default)]
struct Recorder(Mutex<Vec<(u64, bool, String)>>);

impl TickSink for Recorder {
    fn on_tick(&self, t: &Tick<'_>) {
        if let Some(a) = t.audience {
            let mut r = self.0.lock().unwrap();
            r.push((t.number, t.live, a.json.to_owned()));
        }
    }
}

impl Recorder {
    fn last(&self) -> (u64, bool, String) {
        self.0.lock().unwrap().last().cloned().expect("a tick")
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn frame_status(json: &str) -> String {
    serde_json::from_str::<StateFrame>(json).unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_or_ended_show_reaches_the_edge_as_on_one_node() {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = store_with_show(dir.path()).await;
    let clock = ShowClock::manual(1.0);
    let cbus = connect(&nats.url, GUARD).await.unwrap();
    let leases = Leases::open(&cbus, "leases", Duration::from_secs(30))
        .await
        .unwrap();
    let crec = Arc::new(Recorder::default());
    let mut conductor = Conductor::new(
        ConductorConfig {
            id: EdgeId::new("conductor-1").unwrap(),
            admission: Admission::Listed(vec![EdgeId::new("edge-a").unwrap()]),
            retry: Duration::from_millis(100),
            max_age: 0.5,
        },
        runtime(id, &store, &clock),
        cbus,
        leases,
        vec![crec.clone()],
    )
    .await
    .unwrap();
    assert!(conductor.lead().await);
    let erec = Arc::new(Recorder::default());
    let edge_rt = runtime(id, &store, &clock);
    let mut edge = Edge::new(
        EdgeId::new("edge-a").unwrap(),
        edge_rt.clone(),
        connect(&nats.url, GUARD).await.unwrap(),
        vec![erec.clone()],
    )
    .await
    .unwrap();
    // Everything the conductor publishes, as bytes, for replaying later.
    let raw = connect(&nats.url, GUARD).await.unwrap();
    let mut tap = raw.subscribe(state_subject(CODE)).await.unwrap();
    raw.flush().await.unwrap();
    let slider = PieceSpec::demo()
        .params
        .iter()
        .find(|p| p.kind == ParamKindName::Continuous)
        .unwrap()
        .name
        .clone();
    let phone = edge_rt.join_audience(None, None).unwrap();
    let em = edge.metrics();

    // Live: a tick goes out and the edge takes it.
    clock.set(1.05);
    let live_tick = conductor.tick().await.expect("a live state");
    assert_eq!(edge.next_state(GUARD).await.unwrap().unwrap(), live_tick);
    let live_bytes = tap.next().await.unwrap().payload;
    let m = StateMsg::decode(&live_bytes).unwrap();
    assert_eq!((m.status, m.seq, m.tick), (Status::Live, 1, live_tick));
    assert_eq!(edge_rt.status(), ShowStatus::Live);
    assert!(erec.last().1);

    // Paused (stored elsewhere; the conductor's runtime follows): published at once, the
    // same tick, with the status; the edge's phones see the conductor's paused frame.
    conductor.show().follow_status(ShowStatus::Paused);
    clock.set(1.10);
    assert_eq!(conductor.tick().await, Some(live_tick));
    assert_eq!(edge.next_state(GUARD).await.unwrap().unwrap(), live_tick);
    let paused_bytes = tap.next().await.unwrap().payload;
    let m = StateMsg::decode(&paused_bytes).unwrap();
    assert_eq!((m.status, m.seq, m.tick), (Status::Paused, 2, live_tick));
    assert_eq!(edge_rt.status(), ShowStatus::Paused);
    let (n, live, json) = erec.last();
    assert_eq!((n, live), (live_tick, false));
    assert_eq!(frame_status(&json), "paused");
    assert_eq!(
        json,
        crec.last().2,
        "the edge hands on the conductor's bytes"
    );
    let e = edge_rt.input(phone.id, &slider, 0.5).unwrap_err();
    assert_eq!(e.code, ErrorCode::ShowNotLive);

    // While paused: nothing more within the second, then the same tick again (alive).
    clock.set(1.6);
    assert_eq!(conductor.tick().await, None);
    clock.set(2.2);
    assert_eq!(conductor.tick().await, Some(live_tick));
    assert_eq!(edge.next_state(GUARD).await.unwrap().unwrap(), live_tick);
    let m = StateMsg::decode(&tap.next().await.unwrap().payload).unwrap();
    assert_eq!((m.status, m.seq, m.tick), (Status::Paused, 3, live_tick));
    assert_eq!(em.states_received.load(Relaxed), 3);
    assert_eq!(em.rejects_total(), 0);

    // Live again: the tick rises, inputs are taken.
    conductor.show().follow_status(ShowStatus::Live);
    clock.set(2.25);
    let next = conductor.tick().await.expect("a live state");
    assert!(next > live_tick);
    assert_eq!(edge.next_state(GUARD).await.unwrap().unwrap(), next);
    let _ = tap.next().await.unwrap();
    assert_eq!(edge_rt.status(), ShowStatus::Live);
    assert!(erec.last().1);
    edge_rt.input(phone.id, &slider, 0.5).unwrap();

    // Bad status messages: the old paused one replayed; a message that says paused around
    // a live frame. Both refused, counted, and the edge stays live.
    let before = erec.len();
    raw.publish(state_subject(CODE), paused_bytes.clone())
        .await
        .unwrap();
    raw.flush().await.unwrap();
    assert_eq!(
        edge.next_state(GUARD).await.unwrap().unwrap_err().kind(),
        "replayed"
    );
    let mut lie = StateMsg::decode(&live_bytes).unwrap();
    lie.seq = 100;
    lie.tick = next + 1;
    lie.status = Status::Paused;
    lie.audience = String::from_utf8(lie.audience)
        .unwrap()
        .replacen(
            &format!("\"tick\":{live_tick},"),
            &format!("\"tick\":{},", next + 1),
            1,
        )
        .into_bytes();
    raw.publish(state_subject(CODE), lie.encode().into())
        .await
        .unwrap();
    raw.flush().await.unwrap();
    assert!(edge.next_state(GUARD).await.unwrap().is_err());
    assert_eq!(em.rejects("replayed"), 1);
    assert_eq!(em.rejects("unreadable_state"), 1);
    assert_eq!(erec.len(), before, "nothing refused reached the sinks");
    assert_eq!(edge_rt.status(), ShowStatus::Live);
    edge_rt.input(phone.id, &slider, 0.6).unwrap();

    // Ended: published with the status; the edge refuses inputs as on one node.
    conductor.show().follow_status(ShowStatus::Ended);
    clock.set(2.3);
    assert_eq!(conductor.tick().await, Some(next));
    assert_eq!(edge.next_state(GUARD).await.unwrap().unwrap(), next);
    assert_eq!(edge_rt.status(), ShowStatus::Ended);
    let (_, live, json) = erec.last();
    assert!(!live);
    assert_eq!(frame_status(&json), "ended");
    let e = edge_rt.input(phone.id, &slider, 0.5).unwrap_err();
    assert_eq!(e.code, ErrorCode::ShowEnded);
}
