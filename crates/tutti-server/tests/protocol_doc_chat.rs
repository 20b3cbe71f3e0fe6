//! docs/protocol.md's chat section against the wire: the document's own chat client examples
//! (with the real room and message ids put in) are sent to a real server with a real store,
//! and every chat server example is compared field by field with the frame the server sent:
//! the same keys at every level, the same JSON types, equal values except ids and clocks,
//! which differ from run to run and are compared by type only. (protocol_doc.rs parses every
//! example and checks the error table; this file drives the chat frames.)

#[path = "api_support/mod.rs"]
mod api_support;

use std::time::Duration;

use api_support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const DOC: &str = include_str!("../../../docs/protocol.md");
/// A guard against a hang, not a timing requirement.
const WAIT: Duration = Duration::from_secs(15);

/// The fenced blocks of the document with their info strings, in order.
fn blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in DOC.lines() {
        let t = line.trim();
        if let Some((info, text)) = open.as_mut() {
            if t == "```" {
                out.push((std::mem::take(info), std::mem::take(text)));
                open = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
        } else if let Some(info) = t.strip_prefix("```") {
            open = Some((info.trim().to_string(), String::new()));
        }
    }
    out
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The one example of `ty` among the blocks marked `info`.
fn example(info: &str, ty: &str) -> Value {
    let found: Vec<Value> = blocks()
        .into_iter()
        .filter(|(i, _)| i == info)
        .map(|(_, t)| parse(&t))
        .filter(|v| v["type"] == ty)
        .collect();
    assert_eq!(found.len(), 1, "{info} examples of type {ty}");
    found.into_iter().next().unwrap()
}

/// Keys whose values differ from run to run (ids, clocks, tokens): compared by type only.
const VARIES: &[&str] = &["room", "user", "message", "author", "actor", "at"];

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn compare(doc: &Value, real: &Value, key: &str, path: &str, out: &mut Vec<String>) {
    if json_type(doc) != json_type(real) {
        out.push(format!("{path}: the doc has {doc}, the server sent {real}"));
        return;
    }
    match (doc, real) {
        (Value::Object(d), Value::Object(r)) => {
            for (k, dv) in d {
                match r.get(k) {
                    Some(rv) => compare(dv, rv, k, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: documented, not sent")),
                }
            }
            for k in r.keys() {
                if !d.contains_key(k) {
                    out.push(format!("{path}.{k}: sent ({}), not documented", r[k]));
                }
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            if d.len() != r.len() {
                out.push(format!("{path}: the doc has {doc}, the server sent {real}"));
            }
            for (i, (dv, rv)) in d.iter().zip(r).enumerate() {
                compare(dv, rv, key, &format!("{path}.{i}"), out);
            }
        }
        _ => {
            if !VARIES.contains(&key) && doc != real {
                out.push(format!(
                    "{path}: the doc says {doc}, the server sent {real}"
                ));
            }
        }
    }
}

#[track_caller]
fn check(doc: &Value, real: &Value) {
    let mut diffs = Vec::new();
    compare(doc, real, "", "", &mut diffs);
    assert!(
        diffs.is_empty(),
        "docs/protocol.md's {} differs from the server's:\n  {}\nthe server sent: {real}",
        doc["type"],
        diffs.join("\n  ")
    );
}

/// A client example with the real ids: `room` (also in `rooms`), `message`, `token`.
fn bind(frame: &Value, room: i64, message: i64, token: &str) -> Value {
    let mut f = frame.clone();
    if f.get("room").is_some() {
        f["room"] = json!(room);
    }
    if f.get("message").is_some() {
        f["message"] = json!(message);
    }
    if f.get("token").is_some() {
        f["token"] = json!(token);
    }
    if let Some(rooms) = f.get_mut("rooms").and_then(Value::as_array_mut) {
        for r in rooms {
            if r.is_object() {
                r["room"] = json!(room);
            } else {
                *r = json!(room);
            }
        }
    }
    f
}

struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    async fn connect(app: &TestApp) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/live/v1", app.addr))
            .await
            .expect("websocket connects");
        Ws(ws)
    }

    async fn send(&mut self, v: &Value) {
        self.0
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// The next text frame.
    async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("a frame");
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// The next frame of type `ty` (others but errors passed over).
    async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            assert_ne!(v["type"], "error", "waiting for {ty}: {v}");
            if v["type"] == ty {
                return v;
            }
        }
    }
}

/// A crew account with this display name, signed in: (id, access token).
async fn person(app: &TestApp, username: &str, display: &str) -> (i64, String) {
    let password = format!("{username}-password");
    let u = app
        .admin
        .post(
            "/users",
            json!({"username": username, "password": password, "display_name": display,
                "role": "crew"}),
        )
        .await
        .ok(201);
    let t = login(&app.anon(), username, &password).await.ok(200);
    (id_of(&u), t["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_examples_match_a_real_server() {
    let app = TestApp::spawn().await;
    let (ana, ana_token) = person(&app, "ana", "Ana").await;
    let (ben, ben_token) = person(&app, "ben", "Ben").await;
    let room = id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "crew", "members": [ana, ben]}),
            )
            .await
            .ok(201),
    );
    let client = |ty: &str| example("json client", ty);
    let server = |ty: &str| example("json server", ty);

    // Ana signs in and follows the room: hello, caught up, and she is there.
    let mut a = Ws::connect(&app).await;
    a.send(&bind(&client("chat_auth"), room, 0, &ana_token))
        .await;
    check(&server("chat_hello"), &a.recv_type("chat_hello").await);
    a.send(&bind(&client("chat_sub"), room, 0, "")).await;
    let present = a.recv_type("chat_presence").await;
    check(&server("chat_presence"), &present);
    check(
        &server("chat_caught_up"),
        &a.recv_type("chat_caught_up").await,
    );

    // Ben follows too; Ana posts: her ack, his event.
    let mut b = Ws::connect(&app).await;
    b.send(&bind(&client("chat_auth"), room, 0, &ben_token))
        .await;
    b.recv_type("chat_hello").await;
    b.send(&bind(&client("chat_sub"), room, 0, "")).await;
    b.recv_type("chat_caught_up").await;
    a.send(&bind(&client("chat_post"), room, 0, "")).await;
    let ack = a.recv_type("chat_ack").await;
    check(&server("chat_ack"), &ack);
    let message = ack["message"].as_i64().unwrap();
    let event = b.recv_type("chat_event").await;
    check(&server("chat_event"), &event);
    assert_eq!(
        (event["author"].as_i64(), event["actor"].as_i64()),
        (Some(ana), Some(ana))
    );

    // Ben types; Ana sees it.
    b.send(&bind(&client("chat_typing"), room, 0, "")).await;
    let typing = a.recv_type("chat_typing").await;
    check(&server("chat_typing"), &typing);
    assert_eq!(typing["user"].as_i64(), Some(ben));

    // Edit, boost, delete: each acknowledged and seen by Ben in order.
    for (ty, kind) in [
        ("chat_edit", "message_edited"),
        ("chat_boost", "boost_added"),
        ("chat_delete", "message_deleted"),
    ] {
        let f = bind(&client(ty), room, message, "");
        a.send(&f).await;
        let ack = a.recv_type("chat_ack").await;
        assert_eq!((&ack["seq"], &ack["message"]), (&f["seq"], &json!(message)));
        assert_eq!(b.recv_type("chat_event").await["kind"], kind);
    }

    // Read marks, the heartbeat, leaving.
    a.send(&bind(&client("chat_read"), room, 0, "")).await;
    check(&server("chat_unread"), &a.recv_type("chat_unread").await);
    a.send(&client("chat_here")).await;
    a.send(&bind(&client("chat_unsub"), room, 0, "")).await;
    // Frames are handled in order: the pong says the unsub was.
    a.send(&json!({"type": "ping", "id": 4})).await;
    assert_eq!(a.recv_type("pong").await["id"], 4);
    // Once Ana has left, a post of Ben's is not sent to her: her next frame is the pong.
    b.send(&json!({"type": "chat_post", "room": room, "client_id": "after", "text": "x"}))
        .await;
    b.recv_type("chat_ack").await;
    a.send(&json!({"type": "ping", "id": 5})).await;
    loop {
        let v = a.recv().await;
        assert!(
            v["type"] == "chat_presence" || v["type"] == "pong",
            "after chat_unsub: {v}"
        );
        if v["type"] == "pong" {
            break;
        }
    }

    // A phone names itself in the default show's room.
    let mut phone = Ws::connect(&app).await;
    phone
        .send(&json!({"type": "join", "show": app.server.show_code}))
        .await;
    phone.recv_type("welcome").await;
    phone.send(&client("chat_name")).await;
    let hello = phone.recv_type("chat_hello").await;
    assert_eq!(hello["name"], client("chat_name")["name"]);
    assert_eq!(hello["rooms"][0]["kind"], "show");
    drop((a, b, phone));
    app.shutdown().await;
}
