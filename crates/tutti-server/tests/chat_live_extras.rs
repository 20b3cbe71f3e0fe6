//! Live-show extras of chat over `/live/v1` (issue 12, item 3) with real WebSocket clients, a
//! real server and a real SQLite store: questions and one vote per person, answered by crew
//! only; pins; the big screen's wall (crew approve, a display is handed only what was
//! approved); announcements to every phone of the show, a reconnecting one included; exact
//! catch-up of all of these; bad input with stable codes and nothing stored. Nothing waits a
//! fixed time: every wait is for a frame (with a guard against a hang).

#[path = "api_support/mod.rs"]
mod api_support;

use std::net::SocketAddr;
use std::time::Duration;

use api_support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A guard against a hang, not a timing requirement.
const WAIT: Duration = Duration::from_secs(15);

struct Ws {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_seq: u64,
    /// The room `seq` of the last `chat_event` read (whoever read it).
    last_event: u64,
}

impl Ws {
    async fn connect(addr: SocketAddr) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/v1"))
            .await
            .expect("websocket connects");
        Ws {
            ws,
            next_seq: 1,
            last_event: 0,
        }
    }

    async fn staff(addr: SocketAddr, token: &str) -> (Ws, Value) {
        let mut c = Ws::connect(addr).await;
        c.send(json!({"type": "chat_auth", "token": token})).await;
        let hello = c.recv_type("chat_hello").await;
        (c, hello)
    }

    /// A show's connection (`role`: audience or display), joined.
    async fn joined(addr: SocketAddr, code: &str, role: &str, device: Option<&str>) -> Ws {
        let mut c = Ws::connect(addr).await;
        let mut join = json!({"type": "join", "show": code, "role": role});
        if let Some(t) = device {
            join["token"] = json!(t);
        }
        c.send(join).await;
        c.recv_type("welcome").await;
        c
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    async fn recv(&mut self) -> Value {
        // One guard for the frame wanted, whatever else arrives meanwhile.
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(until, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("the connection is open")
                .expect("a frame");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["type"] == "chat_event" {
                    self.last_event = v["room_seq"].as_u64().unwrap();
                }
                // Displays also get the detailed feed (a first `{}`, states, stats).
                if ![
                    "",
                    "state",
                    "detail",
                    "stats",
                    "chat_presence",
                    "chat_typing",
                ]
                .contains(&v["type"].as_str().unwrap_or(""))
                {
                    return v;
                }
            }
        }
    }

    /// The next frame of type `ty`; anything else but events fails the test.
    async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
            assert_eq!(v["type"], "chat_event", "waiting for {ty}, got {v}");
        }
    }

    async fn sub(&mut self, room: i64, after: u64) -> Vec<Value> {
        self.send(json!({"type": "chat_sub", "rooms": [{"room": room, "after_seq": after}]}))
            .await;
        let mut events = Vec::new();
        loop {
            let v = self.recv().await;
            match v["type"].as_str().unwrap_or("") {
                "chat_event" => events.push(v),
                "chat_caught_up" => return events,
                _ => panic!("during catch-up: {v}"),
            }
        }
    }

    async fn event(&mut self) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], "chat_event", "{v}");
        v
    }

    /// The next event of this kind (earlier events passed over).
    async fn event_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.event().await;
            if v["kind"] == kind {
                return v;
            }
        }
    }

    /// Sends a change with the next `seq`; its `chat_ack` or `error` (events passed over).
    async fn change(&mut self, mut frame: Value) -> Value {
        let seq = self.next_seq;
        self.next_seq += 1;
        frame["seq"] = json!(seq);
        self.send(frame).await;
        loop {
            let v = self.recv().await;
            if v["type"] == "chat_ack" || v["type"] == "error" {
                assert_eq!(v["seq"], seq, "{v}");
                return v;
            }
            assert_eq!(v["type"], "chat_event", "{v}");
        }
    }

    async fn ok(&mut self, frame: Value) -> Value {
        let v = self.change(frame).await;
        assert_eq!(v["type"], "chat_ack", "{v}");
        v
    }

    async fn refused(&mut self, frame: Value) -> String {
        let v = self.change(frame).await;
        assert_eq!(v["type"], "error", "{v}");
        v["code"].as_str().unwrap().to_owned()
    }
}

async fn token(app: &TestApp, name: &str) -> String {
    login(&app.anon(), name, &format!("{name}-password"))
        .await
        .ok(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn device_token(app: &TestApp, code: &str) -> String {
    app.anon()
        .post_empty(&format!("/join/{code}/guests"))
        .await
        .ok(201)["device_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A phone of show `code` with its own device token, chatting as `name`, following `room`.
async fn phone(app: &TestApp, code: &str, device: &str, name: &str, room: i64) -> (Ws, i64) {
    let mut p = Ws::joined(app.addr, code, "audience", Some(device)).await;
    p.send(json!({"type": "chat_name", "name": name})).await;
    let user = p.recv_type("chat_hello").await["user"].as_i64().unwrap();
    p.sub(room, 0).await;
    (p, user)
}

struct Show {
    app: TestApp,
    owner: Api,
    code: String,
    room: i64,
    staff: Ws,
}

/// A live show of an ensemble whose owner (a moderator of the show's room) follows the room.
async fn live_show() -> Show {
    let app = TestApp::spawn().await;
    let (owner, _) = app.user("olga", "performer").await;
    let eid = owner.ensemble("band").await;
    let pid = owner.published_piece(eid, "aria").await;
    let show = owner.show(pid, "performance").await;
    owner.show_to(id_of(&show), "live").await;
    let code = show["code"].as_str().unwrap().to_owned();
    let (mut staff, hello) = Ws::staff(app.addr, &token(&app, "olga").await).await;
    let room = hello["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("Show {code}"))
        .and_then(|r| r["room"].as_i64())
        .expect("the show's room");
    staff.sub(room, 0).await;
    Show {
        app,
        owner,
        code,
        room,
        staff,
    }
}

fn kinds(events: &[Value]) -> Vec<(u64, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["room_seq"].as_u64().unwrap(),
                e["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn head(api: &Api, room: i64) -> u64 {
    api.get(&format!("/chat/rooms/{room}/events?after_seq=0&limit=1000"))
        .await
        .ok(200)["items"]
        .as_array()
        .unwrap()
        .len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_take_one_vote_per_person_crew_answer_and_pin_and_a_reconnect_catches_up() {
    let Show {
        app,
        owner,
        code,
        room,
        mut staff,
    } = live_show().await;
    let (dev_a, dev_b) = (
        device_token(&app, &code).await,
        device_token(&app, &code).await,
    );
    let (mut ada, _) = phone(&app, &code, &dev_a, "Ada", room).await;
    let (mut bea, _) = phone(&app, &code, &dev_b, "Bea", room).await;

    // Two questions; everyone following the room sees them flagged.
    let q1 = ada
        .ok(json!({"type": "chat_post", "room": room, "client_id": "q1",
            "text": "Which synth is that?", "flag": "question"}))
        .await["message"]
        .as_i64()
        .unwrap();
    let q2 = bea
        .ok(json!({"type": "chat_post", "room": room, "client_id": "q2",
            "text": "Will there be an encore?", "flag": "question"}))
        .await["message"]
        .as_i64()
        .unwrap();
    let posted = staff.event().await;
    assert_eq!(
        (&posted["kind"], &posted["flag"], &posted["message"]),
        (&json!("message_posted"), &json!("question"), &json!(q1))
    );
    assert_eq!(staff.event().await["message"], q2);

    // Votes: one per person, taken back, counted in the events.
    ada.ok(json!({"type": "chat_vote", "message": q2})).await;
    assert_eq!(
        ada.refused(json!({"type": "chat_vote", "message": q2}))
            .await,
        "conflict"
    );
    bea.ok(json!({"type": "chat_vote", "message": q2})).await;
    bea.ok(json!({"type": "chat_vote", "message": q1})).await;
    bea.ok(json!({"type": "chat_vote", "message": q1, "remove": true}))
        .await;
    assert_eq!(
        bea.refused(json!({"type": "chat_vote", "message": q1, "remove": true}))
            .await,
        "conflict"
    );
    let mut votes = Vec::new();
    for _ in 0..4 {
        let e = staff.event().await;
        votes.push((e["kind"].clone(), e["message"].clone(), e["votes"].clone()));
    }
    assert_eq!(
        votes,
        vec![
            (json!("vote_added"), json!(q2), json!(1)),
            (json!("vote_added"), json!(q2), json!(2)),
            (json!("vote_added"), json!(q1), json!(1)),
            (json!("vote_removed"), json!(q1), json!(0)),
        ]
    );

    // Bea drops after seeing everything so far.
    while bea.last_event < 6 {
        bea.event().await;
    }
    let seen = bea.last_event;
    drop(bea);

    // The audience may not answer or pin; the crew may. Unknown messages are not found.
    assert_eq!(
        ada.refused(json!({"type": "chat_answered", "message": q2}))
            .await,
        "forbidden"
    );
    assert_eq!(
        ada.refused(json!({"type": "chat_pin", "message": q1}))
            .await,
        "forbidden"
    );
    assert_eq!(
        ada.refused(json!({"type": "chat_vote", "message": 999_999}))
            .await,
        "not_found"
    );
    assert_eq!(head(&owner, room).await, 6, "refusals store nothing");
    ada.ok(json!({"type": "chat_vote", "message": q1})).await;
    staff
        .ok(json!({"type": "chat_answered", "message": q2}))
        .await;
    assert_eq!(
        staff
            .refused(json!({"type": "chat_answered", "message": q2}))
            .await,
        "conflict"
    );
    staff.ok(json!({"type": "chat_pin", "message": q1})).await;

    // The list through REST: most votes first, answered marked, pinned listed.
    let qs = owner
        .get(&format!("/chat/rooms/{room}/questions"))
        .await
        .ok(200);
    let order: Vec<(i64, u64, bool)> = qs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["id"].as_i64().unwrap(),
                q["votes"].as_u64().unwrap(),
                q["answered_at"].is_i64(),
            )
        })
        .collect();
    assert_eq!(order, vec![(q2, 2, true), (q1, 1, false)]);
    let pins = owner.get(&format!("/chat/rooms/{room}/pins")).await.ok(200);
    assert_eq!(pins["items"][0]["id"], q1);

    // Bea comes back with the last seq she saw: exactly the missed events, in order.
    let mut bea = Ws::joined(app.addr, &code, "audience", Some(&dev_b)).await;
    bea.send(json!({"type": "chat_name", "name": "Bea"})).await;
    bea.recv_type("chat_hello").await;
    let missed = bea.sub(room, seen).await;
    assert_eq!(
        kinds(&missed),
        vec![
            (7, "vote_added".to_owned()),
            (8, "question_answered".to_owned()),
            (9, "message_pinned".to_owned()),
        ]
    );
    assert_eq!(missed[0]["votes"], 1);
    assert_eq!(missed[2]["message"], q1);
    // Then live ones, once.
    staff
        .ok(json!({"type": "chat_pin", "message": q1, "remove": true}))
        .await;
    let live = bea.event().await;
    assert_eq!(
        (live["room_seq"].as_u64(), live["kind"].as_str()),
        (Some(10), Some("message_unpinned"))
    );
    drop((ada, bea, staff));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_shows_only_what_crew_approved_and_announcements_reach_every_phone() {
    let Show {
        app,
        owner,
        code,
        room,
        mut staff,
    } = live_show().await;
    let (dev_a, dev_b, dev_c) = (
        device_token(&app, &code).await,
        device_token(&app, &code).await,
        device_token(&app, &code).await,
    );
    let (mut ada, _) = phone(&app, &code, &dev_a, "Ada", room).await;
    let (mut bea, _) = phone(&app, &code, &dev_b, "Bea", room).await;

    // The big screen follows the wall: an anonymous, read-only display.
    let mut display = Ws::joined(app.addr, &code, "display", None).await;
    display.send(json!({"type": "chat_show"})).await;
    let hello = display.recv_type("chat_hello").await;
    assert_eq!(
        (hello["user"].as_i64(), hello["rooms"][0]["room"].as_i64()),
        (Some(0), Some(room))
    );
    assert_eq!(hello["rooms"][0]["read_only"], true);
    assert!(display.sub(room, 0).await.is_empty());
    assert_eq!(
        display
            .refused(json!({"type": "chat_post", "room": room, "client_id": "d1", "text": "hi"}))
            .await,
        "forbidden"
    );
    display
        .send(json!({"type": "chat_name", "name": "Screen"}))
        .await;
    assert_eq!(display.recv_type("error").await["code"], "forbidden");

    let m1 = ada
        .ok(json!({"type": "chat_post", "room": room, "client_id": "a1", "text": "Hello screen!"}))
        .await["message"]
        .as_i64()
        .unwrap();
    let m2 = bea
        .ok(json!({"type": "chat_post", "room": room, "client_id": "b1", "text": "not for the wall"}))
        .await["message"]
        .as_i64()
        .unwrap();
    // Approval is crew's: the audience is refused and nothing is stored.
    assert_eq!(
        ada.refused(json!({"type": "chat_approve", "message": m1}))
            .await,
        "forbidden"
    );
    assert_eq!(head(&owner, room).await, 2);
    staff
        .ok(json!({"type": "chat_approve", "message": m2, "reject": true}))
        .await;
    staff
        .ok(json!({"type": "chat_approve", "message": m1}))
        .await;
    assert_eq!(
        staff
            .refused(json!({"type": "chat_approve", "message": m1}))
            .await,
        "conflict"
    );
    // The display was handed neither post: the rejection, then the approval with its text.
    let rejected = display.event().await;
    assert_eq!(
        (
            rejected["kind"].as_str(),
            rejected["message"].as_i64(),
            rejected.get("text")
        ),
        (Some("wall_rejected"), Some(m2), None)
    );
    let approved = display.event().await;
    assert_eq!(
        (
            approved["kind"].as_str(),
            approved["message"].as_i64(),
            approved["text"].as_str()
        ),
        (Some("wall_approved"), Some(m1), Some("Hello screen!"))
    );
    assert!(approved["html"].as_str().unwrap().contains("Hello screen!"));
    // Logged like other moderation actions.
    let log = owner
        .get(&format!("/chat/rooms/{room}/moderation-log"))
        .await
        .ok(200);
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["wall_approved", "wall_rejected"], "{log}");
    let wall = owner.get(&format!("/chat/rooms/{room}/wall")).await.ok(200);
    assert_eq!(wall["items"].as_array().unwrap().len(), 1);
    assert_eq!(wall["items"][0]["id"], m1);

    // Announcements: crew only, at most 500 characters; a refusal stores nothing.
    assert_eq!(
        ada.refused(json!({"type": "chat_post", "room": room, "client_id": "a2",
            "text": "free drinks!", "flag": "announcement"}))
            .await,
        "forbidden"
    );
    assert_eq!(
        staff
            .refused(json!({"type": "chat_post", "room": room, "client_id": "s0",
                "text": "x".repeat(501), "flag": "announcement"}))
            .await,
        "too_long"
    );
    assert_eq!(
        staff
            .refused(json!({"type": "chat_post", "room": room, "client_id": "s0",
                "text": "hm", "flag": "poll"}))
            .await,
        "invalid_choice"
    );
    let before = head(&owner, room).await;
    // Bea drops; a phone that chose no name (Cal) follows the room too.
    while bea.last_event < before {
        bea.event().await;
    }
    let bea_seen = bea.last_event;
    drop(bea);
    let mut cal = Ws::joined(app.addr, &code, "audience", Some(&dev_c)).await;
    cal.send(json!({"type": "chat_show"})).await;
    assert_eq!(cal.recv_type("chat_hello").await["rooms"][0]["room"], room);
    cal.sub(room, 0).await;

    staff
        .ok(json!({"type": "chat_post", "room": room, "client_id": "s1",
            "text": "Intermission: 10 minutes", "flag": "announcement"}))
        .await;
    for p in [&mut ada, &mut cal] {
        let e = loop {
            let e = p.event().await;
            if e["kind"] == "message_posted" {
                break e;
            }
        };
        assert_eq!(
            (e["flag"].as_str(), e["text"].as_str()),
            (Some("announcement"), Some("Intermission: 10 minutes"))
        );
    }
    // The display is not handed announcements (only the wall).
    // Bea reconnects and gets it in her catch-up; REST names it the latest.
    let mut bea = Ws::joined(app.addr, &code, "audience", Some(&dev_b)).await;
    bea.send(json!({"type": "chat_name", "name": "Bea"})).await;
    bea.recv_type("chat_hello").await;
    let missed = bea.sub(room, bea_seen).await;
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["flag"], "announcement");
    let latest = owner
        .get(&format!("/chat/rooms/{room}/announcements"))
        .await
        .ok(200);
    assert_eq!(latest["items"][0]["text"], "Intermission: 10 minutes");

    // A display that reconnects from the start gets the wall again, and only the wall.
    let mut display2 = Ws::joined(app.addr, &code, "display", None).await;
    display2.send(json!({"type": "chat_show"})).await;
    display2.recv_type("chat_hello").await;
    let wall_events = display2.sub(room, 0).await;
    assert_eq!(
        kinds(&wall_events),
        vec![
            (3, "wall_rejected".to_owned()),
            (4, "wall_approved".to_owned())
        ]
    );
    drop((ada, bea, cal, display, display2, staff));
    app.shutdown().await;
}

/// Follows `room` after `after` asking for its pins and announcement (`extras`): the events of
/// the catch-up and the `chat_extras` frame(s), up to `chat_caught_up`.
async fn sub_extras(ws: &mut Ws, room: i64, after: u64) -> (Vec<Value>, Vec<Value>) {
    ws.send(
        json!({"type": "chat_sub", "rooms": [{"room": room, "after_seq": after, "extras": true}]}),
    )
    .await;
    let (mut events, mut extras) = (Vec::new(), Vec::new());
    loop {
        let v = ws.recv().await;
        match v["type"].as_str().unwrap_or("") {
            "chat_event" => {
                assert!(extras.is_empty(), "an event after chat_extras: {v}");
                events.push(v);
            }
            "chat_extras" => extras.push(v),
            "chat_caught_up" => return (events, extras),
            _ => panic!("during catch-up: {v}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_page_gets_the_rooms_pins_and_announcement_however_old() {
    let Show {
        app,
        owner,
        code,
        room,
        staff,
    } = live_show().await;
    let dev = device_token(&app, &code).await;
    let (mut ada, _) = phone(&app, &code, &dev, "Ada", room).await;
    // Crew's changes through REST (a connection may make 5 chat changes a second).
    let say = |path: &'static str, id: String, text: String| {
        let owner = owner.clone();
        async move {
            owner
                .post(
                    &format!("/chat/rooms/{room}/{path}"),
                    json!({"client_message_id": id, "text": text}),
                )
                .await
                .ok(201)["id"]
                .as_i64()
                .unwrap()
        }
    };
    let on = |method: &'static str, message: i64, what: &'static str| {
        let owner = owner.clone();
        async move {
            owner
                .req(
                    method,
                    &format!("/chat/messages/{message}/{what}"),
                    None,
                    &[],
                )
                .await
                .ok(200);
        }
    };
    // Early in the show: two announcements (the later one counts), a question voted for,
    // answered and pinned, a message pinned then unpinned, one pinned then deleted.
    say("announcements", "a0".into(), "Doors open".into()).await;
    let q = ada
        .ok(json!({"type": "chat_post", "room": room, "client_id": "q1",
            "text": "Which synth is that?", "flag": "question"}))
        .await["message"]
        .as_i64()
        .unwrap();
    ada.ok(json!({"type": "chat_vote", "message": q})).await;
    on("PUT", q, "vote").await;
    on("PUT", q, "answered").await;
    on("PUT", q, "pin").await;
    let unpinned = say("messages", "s1".into(), "Welcome!".into()).await;
    on("PUT", unpinned, "pin").await;
    on("DELETE", unpinned, "pin").await;
    let gone = say("messages", "s2".into(), "Gone soon".into()).await;
    on("PUT", gone, "pin").await;
    owner
        .req("DELETE", &format!("/chat/messages/{gone}"), None, &[])
        .await
        .ok(200);
    let ann = say(
        "announcements",
        "a1".into(),
        "Intermission: 10 minutes".into(),
    )
    .await;
    drop(ada);
    // Then more than a page's 200 events of talk.
    for i in 0..205 {
        say("messages", format!("f{i}"), format!("filler {i}")).await;
    }

    // A phone opening the page reads the last 200 events: none of those above.
    let mut bea = Ws::joined(
        app.addr,
        &code,
        "audience",
        Some(&device_token(&app, &code).await),
    )
    .await;
    bea.send(json!({"type": "chat_name", "name": "Bea"})).await;
    let hello = bea.recv_type("chat_hello").await;
    let head = hello["rooms"][0]["last_seq"].as_u64().unwrap();
    let (events, extras) = sub_extras(&mut bea, room, head - 200).await;
    assert_eq!(events.len(), 200);
    assert!(
        events
            .iter()
            .all(|e| ![q, ann].contains(&e["message"].as_i64().unwrap())),
        "the pins and the announcement are older than the page"
    );
    // Yet chat_extras states them, as of the room's head.
    assert_eq!(extras.len(), 1, "{extras:?}");
    let x = &extras[0];
    assert_eq!(
        (x["room"].as_i64(), x["room_seq"].as_u64()),
        (Some(room), Some(head))
    );
    let pins: Vec<i64> = x["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_i64().unwrap())
        .collect();
    assert_eq!(pins, [q], "unpinned and deleted ones are not pins: {x}");
    let pin = &x["pins"][0];
    assert_eq!(
        (
            &pin["text"],
            &pin["author_name"],
            &pin["flag"],
            &pin["votes"],
            &pin["answered"]
        ),
        (
            &json!("Which synth is that?"),
            &json!("Ada"),
            &json!("question"),
            &json!(2),
            &json!(true)
        )
    );
    assert!(pin["html"]
        .as_str()
        .unwrap()
        .contains("Which synth is that?"));
    assert_eq!(x["announcement"]["message"], ann);
    assert_eq!(x["announcement"]["text"], "Intermission: 10 minutes");
    assert_eq!(x["announcement"]["flag"], "announcement");
    // The documented example has the frame's shape.
    let doc = doc_examples("json extras-state");
    assert_eq!(doc.len(), 1);
    serde_json::from_value::<tutti_protocol::ServerFrame>(doc[0].clone()).expect("it parses");
    same_shape(&doc[0], x, "");
    let sub = doc_examples("json extras-sub");
    assert_eq!(sub.len(), 1);
    tutti_protocol::ClientFrame::parse(&sub[0].to_string()).expect("it parses");

    // Later changes come as events after it.
    on("DELETE", q, "pin").await;
    let e = bea.event().await;
    assert_eq!(
        (e["kind"].as_str(), e["message"].as_i64()),
        (Some("message_unpinned"), Some(q))
    );
    assert!(e["room_seq"].as_u64().unwrap() > head);

    // A reconnect that does not ask gets none; neither does a display, asking or not.
    drop(bea);
    let mut cy = Ws::joined(app.addr, &code, "audience", None).await;
    cy.send(json!({"type": "chat_show"})).await;
    cy.recv_type("chat_hello").await;
    assert_eq!(cy.sub(room, head).await.len(), 1, "only the unpin");
    let mut display = Ws::joined(app.addr, &code, "display", None).await;
    display.send(json!({"type": "chat_show"})).await;
    display.recv_type("chat_hello").await;
    let (_, none) = sub_extras(&mut display, room, 0).await;
    assert!(none.is_empty(), "{none:?}");
    drop((cy, display, staff));
    app.shutdown().await;
}

// ---------------------------------------------------------------- docs/protocol.md

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The fenced examples of the extras section with this info string, in order.
fn doc_examples(info: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for line in DOC.lines() {
        let t = line.trim();
        if let Some(text) = open.as_mut() {
            if t == "```" {
                out.push(serde_json::from_str(text).expect("an example is JSON"));
                open = None;
            } else {
                text.push_str(line);
            }
        } else if t.strip_prefix("```") == Some(info) {
            open = Some(String::new());
        }
    }
    out
}

/// The same keys at every level with the same JSON types; equal values for the keys that do
/// not vary from run to run.
fn same_shape(doc: &Value, real: &Value, key: &str) {
    const FIXED: &[&str] = &["type", "kind", "flag", "votes", "text", "html", "read_only"];
    match (doc, real) {
        (Value::Object(d), Value::Object(r)) => {
            let dk: Vec<&String> = d.keys().collect();
            let rk: Vec<&String> = r.keys().collect();
            assert_eq!(dk, rk, "keys of the doc's {doc} and the server's {real}");
            for (k, dv) in d {
                same_shape(dv, &r[k], k);
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            assert_eq!(d.len(), r.len(), "{doc} vs {real}");
            for (dv, rv) in d.iter().zip(r) {
                same_shape(dv, rv, key);
            }
        }
        _ => {
            assert_eq!(
                std::mem::discriminant(doc),
                std::mem::discriminant(real),
                "{key}: the doc has {doc}, the server sent {real}"
            );
            if FIXED.contains(&key) {
                assert_eq!(doc, real, "{key}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_extras_examples_parse_and_match_a_real_server() {
    let clients = doc_examples("json extras-client");
    let servers = doc_examples("json extras-server");
    assert_eq!((clients.len(), servers.len()), (7, 4));
    for c in &clients {
        tutti_protocol::ClientFrame::parse(&c.to_string()).unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    for s in &servers {
        serde_json::from_value::<tutti_protocol::ServerFrame>(s.clone())
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let client = |ty: &str, flag: Option<&str>| -> Value {
        clients
            .iter()
            .find(|c| c["type"] == ty && c["flag"].as_str() == flag)
            .cloned()
            .unwrap_or_else(|| panic!("an example of {ty}"))
    };
    let server = |kind: &str| -> Value {
        servers
            .iter()
            .find(|s| s["kind"] == kind || (kind == "hello" && s["type"] == "chat_hello"))
            .cloned()
            .unwrap()
    };

    let Show {
        app,
        code,
        room,
        mut staff,
        ..
    } = live_show().await;
    let dev = device_token(&app, &code).await;
    let (mut ada, _) = phone(&app, &code, &dev, "Ada", room).await;
    let mut ask = client("chat_post", Some("question"));
    ask["room"] = json!(room);
    let q = ada.ok(ask).await["message"].as_i64().unwrap();
    same_shape(&server("message_posted"), &staff.event().await, "");
    let with = |mut f: Value| {
        f["message"] = json!(q);
        f
    };
    ada.ok(with(client("chat_vote", None))).await;
    same_shape(&server("vote_added"), &staff.event().await, "");
    staff.ok(with(client("chat_answered", None))).await;
    ada.event_of("question_answered").await;
    staff.ok(with(client("chat_pin", None))).await;
    ada.event_of("message_pinned").await;
    staff.ok(with(client("chat_approve", None))).await;
    let approved = ada.event_of("wall_approved").await;
    same_shape(&server("wall_approved"), &approved, "");
    let mut announce = client("chat_post", Some("announcement"));
    announce["room"] = json!(room);
    staff.ok(announce).await;
    assert_eq!(ada.event_of("message_posted").await["flag"], "announcement");

    let mut display = Ws::joined(app.addr, &code, "display", None).await;
    display.send(client("chat_show", None)).await;
    let hello = display.recv_type("chat_hello").await;
    same_shape(&server("hello"), &hello, "");
    drop((ada, staff, display));
    app.shutdown().await;
}
