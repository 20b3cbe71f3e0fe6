//! Chat's `/play <sound>` through a show's own sound (issue 12), against the real server: a
//! live show's room with `sounds_through_show` on sends a `/play` posted through REST or by a
//! phone over `/live/v1` to the show's OSC target (a real UDP socket) as `/tutti/sound s:NAME`;
//! with the setting off nothing reaches it; a post held by the room's audience delay plays
//! only at its release; at most one sound per room every 2 s (by the API's clock, moved by
//! hand); and bad input — the setting on a room that is not a show's, changed
//! by someone who does not moderate the room — gets its code and changes nothing. With
//! SuperCollider as the show's sound, a real scsynth plays it (its `tutti_clip` synth runs in
//! the show's group until the sound ends). Every wait is for a condition (with a guard against
//! a hang), never a fixed time.

#[path = "api_support/mod.rs"]
mod api_support;

#[path = "../../tutti-supercollider/tests/common/mod.rs"]
mod sc;

use std::net::SocketAddr;
use std::time::Duration;

use api_support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;
use tutti_server::chat_sounds::SoundCounts;

/// A guard against a hang, not a timing requirement.
const WAIT: Duration = Duration::from_secs(20);

async fn put(api: &Api, path: &str, body: Value) -> Res {
    api.req("PUT", path, Some(body), &[]).await
}

/// The `/tutti/sound` messages among what the OSC target receives (tick bundles skipped), in
/// order, until `until` arrives.
async fn sounds_until(osc: &UdpSocket, until: &str) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = tokio::time::timeout(WAIT, osc.recv(&mut buf))
            .await
            .expect("an OSC packet in time")
            .expect("recv");
        let packet = &buf[..n];
        if !packet.starts_with(b"/tutti/sound\0") {
            continue;
        }
        let (_, msg) = rosc::decoder::decode_udp(packet).expect("a valid OSC packet");
        let rosc::OscPacket::Message(m) = msg else {
            panic!("a sound is a message, not a bundle");
        };
        assert_eq!(m.addr, "/tutti/sound");
        let [rosc::OscType::String(name)] = m.args.as_slice() else {
            panic!("one string argument: {:?}", m.args);
        };
        got.push(name.clone());
        if name == until {
            return got;
        }
    }
}

/// Waits until the server's sound counts satisfy `ok`.
async fn counts_until(app: &TestApp, ok: impl Fn(&SoundCounts) -> bool) -> SoundCounts {
    let guard = tokio::time::Instant::now() + WAIT;
    loop {
        let c = app.server.chat_sounds().counts();
        if ok(&c) {
            return c;
        }
        assert!(tokio::time::Instant::now() < guard, "counts stuck at {c:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn post(api: &Api, room: i64, id: &str, text: &str) {
    api.post(
        &format!("/chat/rooms/{room}/messages"),
        json!({"client_message_id": id, "text": text}),
    )
    .await
    .ok(201);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A phone of show `code` named `name`, following nothing; its socket and its `chat_hello`.
async fn phone(addr: SocketAddr, code: &str, name: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/v1"))
        .await
        .expect("websocket connects");
    for frame in [
        json!({"type": "join", "show": code}),
        json!({"type": "chat_name", "name": name}),
    ] {
        ws.send(Message::text(frame.to_string())).await.unwrap();
    }
    let hello = recv_type(&mut ws, "chat_hello").await;
    (ws, hello)
}

async fn recv_type(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    ty: &str,
) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == ty {
                return v;
            }
            assert_ne!(v["type"], "error", "waiting for {ty}: {v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_in_a_live_shows_room_reaches_its_sound_only_when_the_room_allows_it() {
    let osc = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = osc.local_addr().unwrap();
    let clock = tutti_api::Clock::manual(tutti_api::now_ms());
    let c = clock.clone();
    let app = TestApp::spawn_with(move |cfg| {
        cfg.osc.targets = vec![target];
        cfg.api_clock = tutti_server::config::ApiClock(c);
    })
    .await;
    let (owner, _) = app.user("olga", "performer").await;
    let eid = owner.ensemble("band").await;
    let pid = owner.published_piece(eid, "aria").await;
    let show = owner.show(pid, "performance").await;
    let code = show["code"].as_str().unwrap().to_owned();
    owner.show_to(id_of(&show), "live").await;
    let rooms = owner.get("/chat/rooms").await.ok(200);
    let room = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["show_id"] == show["id"])
        .unwrap_or_else(|| panic!("no room of the show in {rooms}"))["id"]
        .as_i64()
        .unwrap();
    let settings = format!("/chat/rooms/{room}/settings");
    assert_eq!(
        owner.get(&settings).await.ok(200)["sounds_through_show"],
        false
    );

    // Off (the default): the post is stored and shown, but nothing reaches the show.
    post(&owner, room, "p1", "/play gong").await;
    counts_until(&app, |c| c.off == 1).await;

    // On, by a moderator of the room (the ensemble's performer): stored, shown, audited.
    let on = put(
        &owner,
        &settings,
        json!({"slow_mode_s": 0, "filter": [], "sounds_through_show": true}),
    )
    .await
    .ok(200);
    assert_eq!(on["sounds_through_show"], true);
    assert_eq!(
        owner.get(&settings).await.ok(200)["sounds_through_show"],
        true
    );
    let log = owner
        .get(&format!("/chat/rooms/{room}/moderation-log"))
        .await
        .ok(200);
    assert_eq!(log["items"][0]["action"], "settings_changed");
    assert_eq!(log["items"][0]["detail"]["sounds_through_show"], true);

    // A /play through REST reaches the OSC target; plain text and mentions of /play do not.
    post(&owner, room, "p2", "hello").await;
    post(&owner, room, "p3", "/play bell").await;
    counts_until(&app, |c| c.played == 1).await;
    // Another within 2 s (the API's clock has not moved) is limited: the phones still get it.
    post(&owner, room, "p4", "/play gong").await;
    counts_until(&app, |c| c.limited == 1).await;

    // Two seconds later, a phone's /play over /live/v1 plays.
    clock.advance(2_000);
    let (mut ws, _) = phone(app.addr, &code, "Ada").await;
    ws.send(Message::text(
        json!({"type": "chat_post", "room": room, "client_id": "a1", "text": "/play tada",
            "seq": 1})
        .to_string(),
    ))
    .await
    .unwrap();
    let ack = recv_type(&mut ws, "chat_ack").await;
    assert_eq!(ack["duplicate"], false);

    // What reached the show's OSC target, in order: the bell, then the tada — neither the gong
    // posted while the setting was off nor the one limited.
    assert_eq!(sounds_until(&osc, "tada").await, ["bell", "tada"]);
    let counts = counts_until(&app, |c| c.played == 2).await;
    assert_eq!(
        counts,
        SoundCounts {
            played: 2,
            off: 1,
            not_live: 0,
            limited: 1
        }
    );
    // The same counts on /metrics.
    let m = raw(app.addr, "GET", "/metrics", &[], b"").await;
    let text = String::from_utf8_lossy(&m.body).to_string();
    for line in [
        "tutti_chat_sounds_total{outcome=\"played\"} 2",
        "tutti_chat_sounds_total{outcome=\"off\"} 1",
        "tutti_chat_sounds_total{outcome=\"not_live\"} 0",
        "tutti_chat_sounds_total{outcome=\"limited\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in {text}");
    }

    // Ended: its room is read-only and its outputs gone; turning the setting off works.
    owner.show_to(id_of(&show), "ended").await;
    let off = put(&owner, &settings, json!({"slow_mode_s": 0, "filter": []}))
        .await
        .ok(200);
    assert_eq!(off["sounds_through_show"], false);
    drop(ws);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_play_reaches_the_show_only_at_its_release() {
    let osc = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = osc.local_addr().unwrap();
    let clock = tutti_api::Clock::manual(tutti_api::now_ms());
    let c = clock.clone();
    let app = TestApp::spawn_with(move |cfg| {
        cfg.osc.targets = vec![target];
        cfg.api_clock = tutti_server::config::ApiClock(c);
    })
    .await;
    let (owner, _) = app.user("olga", "performer").await;
    let eid = owner.ensemble("band").await;
    let pid = owner.published_piece(eid, "aria").await;
    let show = owner.show(pid, "performance").await;
    let code = show["code"].as_str().unwrap().to_owned();
    owner.show_to(id_of(&show), "live").await;
    let (mut ws, hello) = phone(app.addr, &code, "Ada").await;
    let room = hello["rooms"][0]["room"].as_i64().unwrap();
    put(
        &owner,
        &format!("/chat/rooms/{room}/settings"),
        json!({"slow_mode_s": 0, "filter": [], "audience_delay_s": 5,
            "sounds_through_show": true}),
    )
    .await
    .ok(200);

    // The phone's /play is held (its audience delay): it plays nothing yet. The crew's, never
    // held, plays at once — the first sound the show's OSC target hears.
    ws.send(Message::text(
        json!({"type": "chat_post", "room": room, "client_id": "a1", "text": "/play horn",
            "seq": 1})
        .to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(recv_type(&mut ws, "chat_ack").await["duplicate"], false);
    post(&owner, room, "c1", "/play bell").await;
    assert_eq!(sounds_until(&osc, "bell").await, ["bell"]);
    // Released five seconds later (by the API's clock, which the chat sweep reads): it plays.
    clock.advance(5_000);
    assert_eq!(sounds_until(&osc, "horn").await, ["horn"]);
    let counts = counts_until(&app, |c| c.played == 2).await;
    assert_eq!((counts.limited, counts.off), (0, 0));
    drop(ws);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setting_is_a_show_rooms_and_its_moderators_only() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.user("olga", "performer").await;
    let (crew, crew_id) = app.user("carl", "crew").await;
    let (otto, _) = app.user("otto", "crew").await;
    let eid = owner.ensemble("band").await;
    let pid = owner.published_piece(eid, "aria").await;
    let show = owner.show(pid, "performance").await;
    owner.show_to(id_of(&show), "live").await;
    let rooms = owner.get("/chat/rooms").await.ok(200);
    let show_room = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["show_id"] == show["id"])
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let on = json!({"slow_mode_s": 0, "filter": [], "sounds_through_show": true});

    // A closed room (no show) of the owner with a plain member: refused by name for its
    // moderator (the admin), forbidden for the member; nothing changes, nothing is logged.
    let closed = owner
        .post(
            "/chat/rooms",
            json!({"kind": "closed", "name": "side", "members": [crew_id]}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    let path = format!("/chat/rooms/{closed}/settings");
    let e = put(&app.admin, &path, on.clone())
        .await
        .err(409, "not_a_show_room");
    assert_eq!(e["details"]["field"], "sounds_through_show");
    put(&crew, &path, on.clone()).await.err(403, "forbidden");
    let kept = app.admin.get(&path).await.ok(200);
    assert_eq!(kept["sounds_through_show"], false);
    assert!(kept["updated_at_ms"].is_null(), "{kept}");
    let log = app
        .admin
        .get(&format!("/chat/rooms/{closed}/moderation-log"))
        .await
        .ok(200);
    assert_eq!(log["items"], json!([]));
    // Off is allowed anywhere (the moderation panel sends it for every room).
    put(
        &app.admin,
        &path,
        json!({"slow_mode_s": 0, "filter": [], "sounds_through_show": false}),
    )
    .await
    .ok(200);

    // The show's room: someone outside its ensemble does not see it; a wrong type is a
    // validation error; nothing changed.
    let path = format!("/chat/rooms/{show_room}/settings");
    put(&otto, &path, on.clone()).await.err(404, "not_found");
    put(
        &owner,
        &path,
        json!({"slow_mode_s": 0, "filter": [], "sounds_through_show": "yes"}),
    )
    .await
    .err(422, "validation_failed");
    let kept = owner.get(&path).await.ok(200);
    assert_eq!(kept["sounds_through_show"], false);
    assert!(kept["updated_at_ms"].is_null(), "{kept}");
    // Its moderator may.
    put(&owner, &path, on).await.ok(200);
    assert_eq!(owner.get(&path).await.ok(200)["sounds_through_show"], true);
    app.shutdown().await;
}

#[test]
fn every_chat_sound_has_a_rendition_for_the_shows_sound() {
    assert_eq!(tutti_chat::SOUNDS, tutti_audio::tutti_dsp::sounds::NAMES);
    for name in tutti_chat::SOUNDS {
        assert!(tutti_sound::SoundName::parse(name).is_ok(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_reaches_a_real_scsynth_when_it_is_the_shows_sound() {
    let server = sc::ScServer::start();
    let app = TestApp::spawn_with(|cfg| {
        cfg.sound = tutti_server::config::SoundBackend::Supercollider;
        cfg.supercollider.server = server.addr();
    })
    .await;
    let probe = tutti_supercollider::ScClient::connect(
        &server.addr(),
        tutti_supercollider::Transport::Udp,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    // Once scsynth plays the configured show (live from the start; its group is 1000)...
    let guard = tokio::time::Instant::now() + WAIT;
    while probe.query_tree(1000, false).await.is_err() {
        assert!(
            tokio::time::Instant::now() < guard,
            "scsynth never played the show"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... a phone in its room plays a sound.
    let (mut ws, hello) = phone(app.addr, &app.server.show_code, "Ada").await;
    let room = hello["rooms"][0]["room"].as_i64().unwrap();
    put(
        &app.admin,
        &format!("/chat/rooms/{room}/settings"),
        json!({"slow_mode_s": 0, "filter": [], "sounds_through_show": true}),
    )
    .await
    .ok(200);
    ws.send(Message::text(
        json!({"type": "chat_post", "room": room, "client_id": "a1", "text": "/play gong",
            "seq": 1})
        .to_string(),
    ))
    .await
    .unwrap();
    recv_type(&mut ws, "chat_ack").await;
    counts_until(&app, |c| c.played == 1).await;
    // scsynth plays it in the show's group (1000) — once it has loaded the sound — and the
    // synth frees itself when the gong (2.6 s) has played to its end.
    let clip_synths = || async {
        let tree = probe
            .query_tree(1000, false)
            .await
            .expect("the show's group");
        let tutti_supercollider::TreeNode::Group { children, .. } = tree else {
            panic!("{tree:?}");
        };
        children
            .iter()
            .filter(|c| {
                matches!(c, tutti_supercollider::TreeNode::Synth { def, .. }
                    if def == tutti_supercollider::clip::CLIP_SYNTHDEF)
            })
            .count()
    };
    let guard = tokio::time::Instant::now() + WAIT;
    while clip_synths().await == 0 {
        assert!(tokio::time::Instant::now() < guard, "no clip synth ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while clip_synths().await > 0 {
        assert!(
            tokio::time::Instant::now() < guard,
            "the clip synth never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(ws);
    app.shutdown().await;
}
