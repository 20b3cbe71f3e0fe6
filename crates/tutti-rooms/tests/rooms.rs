//! The chat service over a real SQLite store, without any transport: sessions driven by frames,
//! time moved by a manual clock. What is checked: every event handed out once and in order
//! (when the session's queue overflows, when events are published out of order or through
//! the API's path, when the backlog and live events overlap), presence expiring exactly at the
//! TTL, presence in a big room sent at most once per interval with its count and a bounded
//! list (a newcomer still told at once), typing limited and never stored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tutti_protocol::{ChatSubRoom, ClientFrame};
use tutti_rooms::{
    BoxFuture, ManualClock, Origin, Outlet, Rooms, RoomsConfig, Session, Staff, StaffAuth, Wrote,
};
use tutti_store::{
    ChatRoomKind, NewChatMessage, NewChatRoom, NewUser, Store, StoreConfig, UserRole,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const T0: i64 = 1_700_000_000_000;

/// Tokens are `user:<id>` (the test's own scheme).
struct Tokens;

impl StaffAuth for Tokens {
    fn staff<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Staff>> {
        let user = token.strip_prefix("user:").and_then(|u| u.parse().ok());
        Box::pin(async move {
            user.map(|user| Staff {
                user,
                name: format!("u{user}"),
                admin: false,
            })
        })
    }
}

struct World {
    _dir: TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    rooms: Rooms,
    room: i64,
    users: Vec<i64>,
}

async fn world(config: RoomsConfig) -> World {
    world_of(config, 3).await
}

/// A world whose room has `people` members (user ids in increasing order).
async fn world_of(config: RoomsConfig, people: usize) -> World {
    let dir = TempDir::new().unwrap();
    let store = Store::open(StoreConfig::new(dir.path().join("tutti.db"))).unwrap();
    let mut users = Vec::new();
    for i in 0..people {
        users.push(
            store
                .create_user(NewUser {
                    username: format!("u{i}"),
                    display_name: format!("u{i}"),
                    password_hash: HASH.into(),
                    role: UserRole::Crew,
                    at_ms: T0,
                })
                .await
                .unwrap()
                .id,
        );
    }
    let room = store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Closed,
            ensemble_id: None,
            show_id: None,
            name: Some("r".into()),
            created_by: None,
            members: users.clone(),
            at_ms: T0,
        })
        .await
        .unwrap()
        .id;
    let clock = Arc::new(ManualClock::new(T0));
    let rooms = Rooms::new(store.clone(), Arc::new(Tokens), clock.clone(), config);
    World {
        _dir: dir,
        store,
        clock,
        rooms,
        room,
        users,
    }
}

impl World {
    async fn session(&self, user: i64) -> Session {
        let mut s = self.rooms.session(Origin::Staff);
        let hello = s
            .handle(ClientFrame::ChatAuth {
                token: format!("user:{user}"),
            })
            .await
            .unwrap();
        assert!(hello[0].contains("chat_hello"));
        s
    }

    /// Posts as `user` through the store, as a REST route does, then tells the service.
    async fn post_elsewhere(&self, user: i64, i: u64) -> u64 {
        let p = self
            .store
            .chat_post(NewChatMessage {
                room_id: self.room,
                author_id: user,
                client_message_id: format!("x{i}"),
                text: format!("m{i}"),
                reply_to: None,
                at_ms: T0,
            })
            .await
            .unwrap();
        p.seq
    }
}

async fn sub(s: &mut Session, room: i64, after: u64) {
    let out = s
        .handle(ClientFrame::ChatSub {
            rooms: vec![ChatSubRoom {
                room,
                after_seq: after,
                extras: false,
            }],
        })
        .await
        .unwrap();
    assert!(out.is_empty());
}

/// The next frame as JSON (a guard against a hang, not a timing requirement).
async fn next(s: &mut Session) -> Value {
    let f = tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("a frame");
    serde_json::from_str(&f).unwrap()
}

/// The next frame of type `ty`, passing over presence frames and catch-up markers.
async fn next_type(s: &mut Session, ty: &str) -> Value {
    loop {
        let v = next(s).await;
        if v["type"] == ty {
            return v;
        }
        assert!(
            v["type"] == "chat_presence" || v["type"] == "chat_caught_up",
            "waiting for {ty}: {v}"
        );
    }
}

/// The frames the session hands out now (until it has had nothing for a moment: this can
/// only make a test pass that should fail when the machine is very slow, never the reverse
/// for the checks below, which look for frames that must not be there).
async fn drain(s: &mut Session) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(f) = tokio::time::timeout(Duration::from_millis(50), s.next()).await {
        out.push(serde_json::from_str(&f).unwrap());
    }
    out
}

/// Whether the session has no event to hand out now.
async fn idle(s: &mut Session) -> bool {
    drain(s).await.iter().all(|v| v["type"] != "chat_event")
}

#[tokio::test]
async fn a_session_whose_queue_overflows_catches_up_from_the_store_without_loss() {
    let w = world(RoomsConfig {
        queue: 4,
        page: 7,
        ..RoomsConfig::default()
    })
    .await;
    let mut reader = w.session(w.users[0]).await;
    sub(&mut reader, w.room, 0).await;
    assert_eq!(
        next_type(&mut reader, "chat_caught_up").await["room_seq"],
        0
    );
    // 50 changes while the reader reads nothing: its queue holds 4.
    for i in 1..=50 {
        let seq = w.post_elsewhere(w.users[1], i).await;
        w.rooms.advanced(w.room, seq).await;
    }
    let mut got = Vec::new();
    while got.len() < 50 {
        let v = next(&mut reader).await;
        match v["type"].as_str().unwrap() {
            "chat_event" => got.push(v["room_seq"].as_u64().unwrap()),
            "chat_caught_up" | "chat_presence" => {}
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(got, (1..=50).collect::<Vec<_>>());
    // And live again after that, once.
    let seq = w.post_elsewhere(w.users[1], 51).await;
    w.rooms.advanced(w.room, seq).await;
    assert_eq!(next_type(&mut reader, "chat_event").await["room_seq"], 51);
    assert!(idle(&mut reader).await);
}

#[tokio::test]
async fn events_published_out_of_order_or_twice_reach_subscribers_once_in_order() {
    let w = world(RoomsConfig::default()).await;
    let mut s = w.session(w.users[0]).await;
    sub(&mut s, w.room, 0).await;
    next_type(&mut s, "chat_caught_up").await;
    // The session's catch-up gave the room its head: nothing published yet, seq 0.
    assert_eq!(w.rooms.published_head(w.room), Some(0));
    for i in 1..=6 {
        w.post_elsewhere(w.users[1], i).await;
    }
    let events = w
        .store
        .chat_events_after(w.room, 0, 10)
        .await
        .unwrap()
        .events;
    // Through the service's own path: the third's publication comes first, so the room
    // reads the first two from the store; the others come again, late.
    w.rooms.publish(events[2].clone()).await;
    // The third is not the room's next: the room read from the store everything after its
    // head (all six are committed) and published it in order.
    assert_eq!(w.rooms.published_head(w.room), Some(6));
    w.rooms.publish(events[0].clone()).await;
    w.rooms.publish(events[1].clone()).await;
    w.rooms.publish(events[2].clone()).await;
    // Through the API's notice: the sixth first, then the fourth, twice.
    w.rooms.advanced(w.room, 6).await;
    w.rooms.advanced(w.room, 4).await;
    w.rooms.advanced(w.room, 4).await;
    let mut seqs = Vec::new();
    for _ in 0..6 {
        seqs.push(
            next_type(&mut s, "chat_event").await["room_seq"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    assert!(idle(&mut s).await);
}

#[tokio::test]
async fn a_backlog_and_live_events_that_overlap_are_handed_out_once() {
    let w = world(RoomsConfig {
        page: 2,
        ..RoomsConfig::default()
    })
    .await;
    for i in 1..=5 {
        w.post_elsewhere(w.users[1], i).await;
    }
    let mut s = w.session(w.users[0]).await;
    sub(&mut s, w.room, 1).await;
    // Posted after the subscription, before the backlog was read: in both.
    let late = w.post_elsewhere(w.users[1], 6).await;
    w.rooms.advanced(w.room, late).await;
    let mut got = Vec::new();
    loop {
        let v = next(&mut s).await;
        match v["type"].as_str().unwrap() {
            "chat_event" => got.push(v["room_seq"].as_u64().unwrap()),
            "chat_caught_up" => break,
            _ => {}
        }
    }
    assert_eq!(got, vec![2, 3, 4, 5, 6]);
    assert!(idle(&mut s).await);
}

#[tokio::test]
async fn presence_expires_at_the_ttl_by_the_injected_clock_and_typing_is_limited() {
    let w = world(RoomsConfig {
        presence_ttl_ms: 1_000,
        typing_every_ms: 2_000,
        ..RoomsConfig::default()
    })
    .await;
    let mut a = w.session(w.users[0]).await;
    let mut b = w.session(w.users[1]).await;
    sub(&mut a, w.room, 0).await;
    sub(&mut b, w.room, 0).await;
    a.handle(ClientFrame::ChatHere {}).await.unwrap();
    b.handle(ClientFrame::ChatHere {}).await.unwrap();
    let here = |v: &Value| v["here"].as_array().unwrap().len();
    loop {
        let v = next_type(&mut b, "chat_presence").await;
        if here(&v) == 2 {
            break;
        }
    }
    // 999 ms later nobody has gone; at 1,001 ms without a frame from A, A has.
    w.clock.advance(600);
    b.handle(ClientFrame::ChatHere {}).await.unwrap();
    w.clock.advance(399);
    assert_eq!(w.rooms.sweep_presence(), 0);
    w.clock.advance(2);
    assert_eq!(w.rooms.sweep_presence(), 1);
    let last = drain(&mut b).await.pop().unwrap_or(Value::Null);
    assert_eq!(last["type"], "chat_presence");
    assert_eq!(last["here"][0]["user"].as_i64(), Some(w.users[1]), "{last}");
    assert_eq!(here(&last), 1);

    // Typing: one indicator per 2 s per room reaches the others; nothing is stored.
    for _ in 0..3 {
        a.handle(ClientFrame::ChatTyping { room: w.room })
            .await
            .unwrap();
    }
    let typing = drain(&mut b)
        .await
        .iter()
        .filter(|v| v["type"] == "chat_typing")
        .count();
    assert_eq!(typing, 1);
    w.clock.advance(2_000);
    a.handle(ClientFrame::ChatTyping { room: w.room })
        .await
        .unwrap();
    assert_eq!(next_type(&mut b, "chat_typing").await["user"], w.users[0]);
    assert_eq!(
        w.store.chat_room(w.room).await.unwrap().unwrap().last_seq,
        0
    );
    // A session that ends leaves the room's followers.
    assert_eq!(w.rooms.counts(), (1, 2));
    drop(a);
    assert_eq!(w.rooms.counts(), (1, 1));
    drop(b);
    assert_eq!(w.rooms.counts(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_small_queues_still_give_every_reader_each_event_once_in_order() {
    let w = Arc::new(
        world(RoomsConfig {
            queue: 8,
            page: 5,
            ..RoomsConfig::default()
        })
        .await,
    );
    const PER_WRITER: u64 = 40;
    let writers = 3u64;
    let total = PER_WRITER * writers;
    // One reader follows from the start; another joins mid-stream from 0.
    let mut early = w.session(w.users[0]).await;
    sub(&mut early, w.room, 0).await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..writers {
        let w = w.clone();
        tasks.spawn(async move {
            let author = w.users[(t as usize) % w.users.len()];
            let mut s = w.session(author).await;
            for i in 0..PER_WRITER {
                let out = s
                    .handle(ClientFrame::ChatPost {
                        room: w.room,
                        client_id: format!("w{t}-{i}"),
                        text: format!("{t}/{i}"),
                        reply_to: None,
                        flag: None,
                        seq: Some(i),
                    })
                    .await
                    .expect("post");
                assert!(out[0].contains("chat_ack"), "{out:?}");
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    let w2 = w.clone();
    let late = tokio::spawn(async move {
        tokio::task::yield_now().await;
        let mut late = w2.session(w2.users[1]).await;
        sub(&mut late, w2.room, 0).await;
        late
    });
    let read_all = |mut s: Session| async move {
        let mut got = Vec::new();
        while (got.len() as u64) < total {
            let v = next(&mut s).await;
            if v["type"] == "chat_event" {
                got.push(v["room_seq"].as_u64().unwrap());
            }
        }
        (got, s)
    };
    let early_reader = tokio::spawn(read_all(early));
    while let Some(r) = tasks.join_next().await {
        r.expect("writer");
    }
    let late = late.await.expect("late reader");
    let (late_got, mut late) = read_all(late).await;
    let (early_got, mut early) = early_reader.await.expect("early reader");
    let want: Vec<u64> = (1..=total).collect();
    assert_eq!(early_got, want);
    assert_eq!(late_got, want);
    assert!(idle(&mut early).await && idle(&mut late).await);
}

/// The presence frames among `frames`.
fn presences(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|v| v["type"] == "chat_presence")
        .cloned()
        .collect()
}

/// The user ids a presence frame names.
fn named(p: &Value) -> Vec<i64> {
    p["here"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["user"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_big_room_sends_its_presence_once_per_interval_with_a_count_and_newcomers_get_it_at_once()
{
    const PEOPLE: usize = 60;
    const LIST: usize = 5;
    let w = world_of(
        RoomsConfig {
            presence_ttl_ms: 10_000,
            presence_every_ms: 1_000,
            presence_list: LIST,
            ..RoomsConfig::default()
        },
        PEOPLE,
    )
    .await;
    // The first to come: told the presence at once, and the room's first change goes out at
    // once too (nothing was sent before).
    let mut watcher = w.session(w.users[0]).await;
    sub(&mut watcher, w.room, 0).await;
    let first = presences(&drain(&mut watcher).await);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first
        .iter()
        .all(|p| p["count"] == 1 && named(p) == w.users[..1]));

    // Everyone else arrives at the same moment: each newcomer is told the room as it is now,
    // at once (the count exact, the first LIST people by user id); the followers get nothing
    // more within the interval.
    let mut others = Vec::new();
    for (i, user) in w.users[1..].iter().enumerate() {
        let mut s = w.session(*user).await;
        sub(&mut s, w.room, 0).await;
        let p = next_type(&mut s, "chat_presence").await;
        let count = i + 2;
        assert_eq!(p["count"].as_u64(), Some(count as u64), "{p}");
        assert_eq!(named(&p), w.users[..count.min(LIST)]);
        others.push(s);
    }
    assert!(presences(&drain(&mut watcher).await).is_empty());
    w.clock.advance(999);
    assert_eq!(w.rooms.sweep_presence(), 0);
    assert!(presences(&drain(&mut watcher).await).is_empty());
    // When the interval has passed: one frame for all those arrivals.
    w.clock.advance(1);
    assert_eq!(w.rooms.sweep_presence(), 0);
    let p = presences(&drain(&mut watcher).await);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["count"].as_u64(), Some(PEOPLE as u64));
    assert_eq!(named(&p[0]), w.users[..LIST]);
    // Nothing changed since: nothing more is sent.
    w.clock.advance(1_000);
    w.rooms.sweep_presence();
    assert!(presences(&drain(&mut watcher).await).is_empty());

    // Ten leave: the first departure goes out at once (the last frame is a second old), the
    // nine after it together at the end of the interval.
    others.drain(..10);
    let p = presences(&drain(&mut watcher).await);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["count"].as_u64(), Some(PEOPLE as u64 - 1));
    w.clock.advance(1_000);
    w.rooms.sweep_presence();
    let p = presences(&drain(&mut watcher).await);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["count"].as_u64(), Some(PEOPLE as u64 - 10));
    let mut left = vec![w.users[0]];
    left.extend_from_slice(&w.users[11..11 + LIST - 1]);
    assert_eq!(named(&p[0]), left);

    // Expiry: only the watcher and five others keep a heartbeat; the rest expire at the TTL,
    // in one frame.
    w.clock.advance(5_000);
    watcher.handle(ClientFrame::ChatHere {}).await.unwrap();
    for s in &mut others[..5] {
        s.handle(ClientFrame::ChatHere {}).await.unwrap();
    }
    w.clock.advance(2_001);
    assert_eq!(w.rooms.sweep_presence(), PEOPLE - 10 - 6);
    let p = presences(&drain(&mut watcher).await);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["count"].as_u64(), Some(6));
    let mut kept = vec![w.users[0]];
    kept.extend_from_slice(&w.users[11..16]);
    assert_eq!(named(&p[0]), kept[..LIST]);
    assert_eq!(w.rooms.counts(), (1, PEOPLE - 10));
}

/// A transport's outlet as a list: every frame written to it, in order, and what it answers
/// (`All`, `Behind` or `Not`, cycled through `answers` when there are several).
struct ListOutlet {
    written: Arc<std::sync::Mutex<Vec<Value>>>,
    answers: std::sync::Mutex<Vec<Wrote>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl ListOutlet {
    fn new(written: Arc<std::sync::Mutex<Vec<Value>>>, answers: Vec<Wrote>) -> Arc<ListOutlet> {
        Arc::new(ListOutlet {
            written,
            answers: std::sync::Mutex::new(answers),
            calls: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn answer(&self, answers: Vec<Wrote>) {
        *self.answers.lock().unwrap() = answers;
    }
}

impl Outlet for ListOutlet {
    fn write(&self, frames: &[&str]) -> Wrote {
        let answers = self.answers.lock().unwrap();
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = answers[n % answers.len()];
        if answer != Wrote::Not {
            let mut written = self.written.lock().unwrap();
            written.extend(
                frames
                    .iter()
                    .map(|f| serde_json::from_str::<Value>(f).unwrap()),
            );
        }
        answer
    }
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter(|v| v["type"] == "chat_event")
        .map(|v| v["room_seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_waiting_sessions_events_go_straight_to_its_outlet_once_and_in_order() {
    let w = world(RoomsConfig::default()).await;
    let written = Arc::new(std::sync::Mutex::new(Vec::new()));
    let outlet = ListOutlet::new(written.clone(), vec![Wrote::All]);
    let mut reader = w.session(w.users[0]).await;
    reader.write_to(outlet.clone());
    sub(&mut reader, w.room, 0).await;
    next_type(&mut reader, "chat_caught_up").await;
    // Waiting (the wait is given up, the lane stays open): five posts reach the outlet.
    assert!(idle(&mut reader).await);
    let mut poster = w.session(w.users[1]).await;
    for i in 0..5 {
        post(&mut poster, w.room, i).await;
    }
    wait_for(&written, 5).await;
    assert_eq!(seqs(&written.lock().unwrap()), vec![1, 2, 3, 4, 5]);
    // The session hands none of them out again.
    assert!(idle(&mut reader).await);
    // A transport with bytes waiting takes nothing: the events come through the session.
    outlet.answer(vec![Wrote::Not]);
    for i in 5..8 {
        post(&mut poster, w.room, i).await;
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        let v = next_type(&mut reader, "chat_event").await;
        got.push(v["room_seq"].as_u64().unwrap());
    }
    assert_eq!(got, vec![6, 7, 8]);
    assert_eq!(seqs(&written.lock().unwrap()), vec![1, 2, 3, 4, 5]);
    // Taken but behind: that event went out, the next ones come through the session.
    outlet.answer(vec![Wrote::Behind]);
    assert!(idle(&mut reader).await);
    post(&mut poster, w.room, 8).await;
    wait_for(&written, 6).await;
    // Published while the session does not wait (the room's writer runs at the yield, on
    // this test's one thread): the lane is closed, the event is queued.
    post(&mut poster, w.room, 9).await;
    tokio::task::yield_now().await;
    assert_eq!(next_type(&mut reader, "chat_event").await["room_seq"], 10);
    assert_eq!(seqs(&written.lock().unwrap()), vec![1, 2, 3, 4, 5, 9]);
    assert!(idle(&mut reader).await);
}

async fn post(s: &mut Session, room: i64, i: u64) {
    let out = s
        .handle(ClientFrame::ChatPost {
            room,
            client_id: format!("p{i}"),
            text: format!("m{i}"),
            reply_to: None,
            flag: None,
            seq: Some(i),
        })
        .await
        .expect("post");
    assert!(out[0].contains("chat_ack"), "{out:?}");
}

/// Until `n` frames were written (a guard against a hang, not a timing requirement).
async fn wait_for(written: &std::sync::Mutex<Vec<Value>>, n: usize) {
    for _ in 0..1000 {
        if written.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} frames never reached the outlet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outlets_that_take_some_frames_and_refuse_others_still_get_each_event_once_in_order() {
    let w = Arc::new(
        world(RoomsConfig {
            queue: 8,
            page: 5,
            ..RoomsConfig::default()
        })
        .await,
    );
    const PER_WRITER: u64 = 40;
    let writers = 3u64;
    let total = PER_WRITER * writers;
    // Each reader's frames, from its outlet and from the session, in the order they left.
    let answers = [
        vec![Wrote::All],
        vec![Wrote::All, Wrote::Not, Wrote::All, Wrote::Behind],
        vec![Wrote::Not, Wrote::All, Wrote::All],
    ];
    let mut readers = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut s = w.session(w.users[i % w.users.len()]).await;
        s.write_to(ListOutlet::new(written.clone(), a.clone()));
        sub(&mut s, w.room, 0).await;
        readers.push(tokio::spawn(async move {
            loop {
                let have = seqs(&written.lock().unwrap()).len() as u64;
                if have >= total {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(20), s.next()).await {
                    Ok(f) => written
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&f).unwrap()),
                    Err(_) => tokio::task::yield_now().await,
                }
            }
            let got = seqs(&written.lock().unwrap());
            (got, s)
        }));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..writers {
        let w = w.clone();
        tasks.spawn(async move {
            let mut s = w.session(w.users[(t as usize) % w.users.len()]).await;
            for i in 0..PER_WRITER {
                post(&mut s, w.room, t * 1000 + i).await;
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer");
    }
    let want: Vec<u64> = (1..=total).collect();
    for r in readers {
        let (got, mut s) = tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .expect("a reader that gets every event")
            .expect("reader");
        assert_eq!(got, want);
        assert!(idle(&mut s).await);
    }
}
