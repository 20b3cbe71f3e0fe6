//! Chat bots and chat events (issue 12, item 7) against a real server, a real SQLite store and
//! a real local HTTP receiver (an axum listener in the test): bots managed over REST, acting
//! with their key in a header (never the URL), kept to their rooms and their own messages;
//! outgoing webhooks signed as issue 6's, answered in the room as the bot, with a clear
//! failure message on a timeout or a bad answer; chat events on the event history, streams and
//! signed webhooks, never from a direct room. No test measures time: the short bot timeout is a
//! setting, and waits poll until a condition holds.

#[path = "api_support/mod.rs"]
mod api_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// One request the receiver got: its path, `tutti-event`, `tutti-signature` and body.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    event: String,
    signature: String,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Checks the signature with `secret`, as a receiver does.
    fn verify(&self, secret: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        tutti_events::signature::verify(
            secret,
            &self.signature,
            &self.body,
            now,
            Duration::from_secs(300),
        )
        .expect("a valid signature");
        assert!(tutti_events::signature::verify(
            "another-secret-entirely",
            &self.signature,
            &self.body,
            now,
            Duration::from_secs(300)
        )
        .is_err());
    }
}

type Log = Arc<Mutex<Vec<Got>>>;

fn record(log: &Log, path: &str, headers: &HeaderMap, body: &Bytes) -> Value {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    log.lock().unwrap().push(Got {
        path: path.to_owned(),
        event: h("tutti-event"),
        signature: h("tutti-signature"),
        body: body.to_vec(),
    });
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// A real HTTP receiver on a loopback port: `/text` answers `text/plain`, `/json` answers
/// `{"text": ...}`, `/fail` answers 500, `/slow` never answers, `/hook` (event webhooks)
/// answers 204; each records what it got.
async fn receiver() -> (SocketAddr, Log) {
    let log: Log = Arc::default();
    let app = Router::new()
        .route(
            "/text",
            post(|State(log): State<Log>, h: HeaderMap, b: Bytes| async move {
                let v = record(&log, "/text", &h, &b);
                let text = v["message"]["text"].as_str().unwrap_or_default().to_owned();
                (
                    [("content-type", "text/plain; charset=utf-8")],
                    format!("echo: {text}"),
                )
            }),
        )
        .route(
            "/json",
            post(|State(log): State<Log>, h: HeaderMap, b: Bytes| async move {
                let v = record(&log, "/json", &h, &b);
                axum::Json(json!({"text": format!("hello {}", v["author"]["name"].as_str().unwrap_or("?"))}))
            }),
        )
        .route(
            "/fail",
            post(|State(log): State<Log>, h: HeaderMap, b: Bytes| async move {
                record(&log, "/fail", &h, &b);
                (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
            }),
        )
        .route(
            "/slow",
            post(|State(log): State<Log>, h: HeaderMap, b: Bytes| async move {
                record(&log, "/slow", &h, &b);
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .route(
            "/hook",
            post(|State(log): State<Log>, h: HeaderMap, b: Bytes| async move {
                record(&log, "/hook", &h, &b);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, log)
}

/// A server whose webhooks and bots may reach loopback (the receiver), with a short bot
/// timeout.
async fn app() -> TestApp {
    TestApp::spawn_with(|cfg| {
        cfg.webhooks.allow_private = true;
        cfg.api.bot_timeout_ms = 300;
    })
    .await
}

/// Creates a bot as `api`; (its id, key, webhook secret).
async fn bot(api: &Api, body: Value) -> (i64, String, String) {
    let out = api.post("/chat/bots", body).await.ok(201);
    (
        out["bot"]["id"].as_i64().unwrap(),
        out["key"].as_str().unwrap().to_owned(),
        out["webhook_secret"].as_str().unwrap().to_owned(),
    )
}

/// A request as the bot with `key` (`Authorization: Bot <key>`).
async fn as_bot(app: &TestApp, key: &str, method: &str, path: &str, body: Option<Value>) -> Res {
    let auth = format!("Bot {key}");
    app.anon()
        .req(method, path, body, &[("authorization", &auth)])
        .await
}

/// Every event of a room (as a staff member).
async fn room_events(api: &Api, room: i64) -> Vec<Value> {
    api.get(&format!("/chat/rooms/{room}/events?after_seq=0&limit=1000"))
        .await
        .ok(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the room has a post by `author` replying to `to`; that event.
async fn reply_by(api: &Api, room: i64, author: i64, to: i64) -> Value {
    let mut found = Value::Null;
    for _ in 0..300 {
        if let Some(e) = room_events(api, room).await.into_iter().find(|e| {
            e["kind"] == "message_posted" && e["author_id"] == author && e["reply_to"] == to
        }) {
            found = e;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !found.is_null(),
        "no reply by {author} to {to} in room {room}"
    );
    found
}

/// Posts as a staff member; the message.
async fn say(api: &Api, room: i64, id: &str, text: &str) -> Value {
    api.post(
        &format!("/chat/rooms/{room}/messages"),
        json!({"client_message_id": id, "text": text}),
    )
    .await
    .ok(201)
}

#[tokio::test]
async fn a_mentioned_or_messaged_bot_answers_in_the_room_as_itself() {
    let (rx, log) = receiver().await;
    let app = app().await;
    let admin = &app.admin;
    let (echo_id, _, echo_secret) = bot(
        admin,
        json!({"name": "echo", "webhook_url": format!("http://{rx}/text")}),
    )
    .await;
    let (greeter_id, _, _) = bot(
        admin,
        json!({"name": "greeter", "webhook_url": format!("http://{rx}/json")}),
    )
    .await;
    let room = id_of(
        &admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "desk", "members": [echo_id, greeter_id]}),
            )
            .await
            .ok(201),
    );

    // A mention: the bot gets the message signed, and its text answer is posted as the bot,
    // replying to the message.
    let m = say(admin, room, "m1", "hi @Echo, how are you?").await;
    let mid = m["id"].as_i64().unwrap();
    let reply = reply_by(admin, room, echo_id, mid).await;
    assert_eq!(reply["text"], "echo: hi @Echo, how are you?", "{reply}");
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "only the mentioned bot was called: {got:?}");
    let call = &got[0];
    assert_eq!(
        (call.path.as_str(), call.event.as_str()),
        ("/text", "chat.bot_call")
    );
    call.verify(&echo_secret);
    let payload = call.json();
    assert_eq!(payload["reason"], "mention");
    assert_eq!(payload["room"]["id"], room);
    assert_eq!(payload["message"]["id"], mid);
    assert_eq!(payload["message"]["seq"], m["posted_seq"]);
    assert_eq!(payload["message"]["text"], "hi @Echo, how are you?");
    assert_eq!(payload["author"]["name"], "The Admin");
    assert_eq!(payload["bot"], json!({"id": echo_id, "name": "echo"}));

    // A JSON answer `{"text": ...}` works the same.
    let m = say(admin, room, "m2", "@greeter hello").await;
    let reply = reply_by(admin, room, greeter_id, m["id"].as_i64().unwrap()).await;
    assert_eq!(reply["text"], "hello The Admin");

    // A direct room with the bot: every message calls it, no mention needed.
    let direct = admin
        .post(
            "/chat/rooms",
            json!({"kind": "direct", "members": [echo_id]}),
        )
        .await
        .ok(201);
    let direct = id_of(&direct);
    let m = say(admin, direct, "d1", "just between us").await;
    let reply = reply_by(admin, direct, echo_id, m["id"].as_i64().unwrap()).await;
    assert_eq!(reply["text"], "echo: just between us");
    let last = log.lock().unwrap().last().unwrap().json();
    assert_eq!(last["reason"], "direct");

    // A bot's own posts call no bot (no loops), and a retried post calls nobody again.
    let calls = log.lock().unwrap().len();
    say(admin, room, "m3", "nobody here").await;
    admin
        .post(
            &format!("/chat/rooms/{room}/messages"),
            json!({"client_message_id": "m1", "text": "hi @Echo, how are you?"}),
        )
        .await
        .ok(200);
    // The reply of the direct room is the last write; a later post's reply would follow
    // a later call, and none was made.
    let events = room_events(admin, room).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["author_id"] == echo_id || e["author_id"] == greeter_id)
            .count(),
        2,
        "{events:?}"
    );
    assert_eq!(log.lock().unwrap().len(), calls);
    app.shutdown().await;
}

#[tokio::test]
async fn a_timeout_or_a_bad_answer_posts_a_clear_failure_message() {
    let (rx, log) = receiver().await;
    let app = app().await;
    let admin = &app.admin;
    let mut ids = Vec::new();
    for (name, path) in [("sleepy", "slow"), ("broken", "fail")] {
        let (id, _, _) = bot(
            admin,
            json!({"name": name, "webhook_url": format!("http://{rx}/{path}")}),
        )
        .await;
        ids.push(id);
    }
    let room = id_of(
        &admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "ops", "members": ids}),
            )
            .await
            .ok(201),
    );
    // The poster's request does not wait for the bots: it is answered while the slow bot
    // still holds its call (the receiver never answers it).
    let m = say(admin, room, "x", "@sleepy @broken status?").await;
    let mid = m["id"].as_i64().unwrap();
    let slow = reply_by(admin, room, ids[0], mid).await;
    assert_eq!(slow["text"], "Bot sleepy did not answer within 0.3 s.");
    let broken = reply_by(admin, room, ids[1], mid).await;
    assert_eq!(
        broken["text"],
        "Bot broken answered HTTP 500 instead of a reply."
    );
    let paths: Vec<String> = log.lock().unwrap().iter().map(|g| g.path.clone()).collect();
    assert!(paths.contains(&"/slow".to_owned()) && paths.contains(&"/fail".to_owned()));
    app.shutdown().await;
}

#[tokio::test]
async fn a_bot_key_works_only_in_the_header_and_only_while_current() {
    let app = app().await;
    let admin = &app.admin;
    let (id, key, _) = bot(admin, json!({"name": "keyed"})).await;
    let me = as_bot(&app, &key, "GET", "/chat/bot/me", None)
        .await
        .ok(200);
    assert_eq!(
        (me["id"].as_i64(), me["name"].as_str()),
        (Some(id), Some("keyed"))
    );
    assert!(me.get("key").is_none(), "{me}");

    // In the URL: refused with its own code, with or without the header.
    for q in ["key", "token", "access_token", "bot_key"] {
        let e = app
            .anon()
            .get(&format!("/chat/bot/me?{q}={key}"))
            .await
            .err(400, "key_in_url");
        assert!(!e.to_string().contains(&key), "{e}");
        as_bot(&app, &key, "GET", &format!("/chat/bot/rooms?{q}=x"), None)
            .await
            .err(400, "key_in_url");
    }
    // A wrong key, no key, a bearer token: 401.
    as_bot(&app, "tbot_wrong", "GET", "/chat/bot/me", None)
        .await
        .err(401, "unauthorized");
    app.anon()
        .get("/chat/bot/me")
        .await
        .err(401, "unauthorized");
    admin.get("/chat/bot/me").await.err(401, "unauthorized");
    // A bot key is no bearer token on staff routes.
    app.anon()
        .with(&key)
        .get("/chat/rooms")
        .await
        .err(401, "unauthorized");

    // Rotation: the old key stops, the new one works; the key is never listed.
    let rotated = admin
        .post_empty(&format!("/chat/bots/{id}/key"))
        .await
        .ok(200);
    let new_key = rotated["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    as_bot(&app, &key, "GET", "/chat/bot/me", None)
        .await
        .err(401, "unauthorized");
    as_bot(&app, new_key, "GET", "/chat/bot/me", None)
        .await
        .ok(200);
    let list = admin.get("/chat/bots").await.ok(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(new_key) && !list.to_string().contains("tbot_"));

    // Deletion: the key stops and the name is free again.
    let gone = admin
        .req("DELETE", &format!("/chat/bots/{id}"), None, &[])
        .await
        .ok(200);
    assert_eq!(gone["deleted"], true);
    as_bot(&app, new_key, "GET", "/chat/bot/me", None)
        .await
        .err(401, "unauthorized");
    admin
        .get(&format!("/chat/bots/{id}"))
        .await
        .err(404, "not_found");
    bot(admin, json!({"name": "keyed"})).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_bot_acts_only_in_its_rooms_and_changes_only_its_own_messages() {
    let app = app().await;
    let admin = &app.admin;
    let (id, key, _) = bot(admin, json!({"name": "worker"})).await;
    let (_, carl) = app.user("carl", "crew").await;
    let mine = id_of(
        &admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "with bot", "members": [id, carl]}),
            )
            .await
            .ok(201),
    );
    let other = id_of(
        &admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "without", "members": [carl]}),
            )
            .await
            .ok(201),
    );
    let rooms = as_bot(&app, &key, "GET", "/chat/bot/rooms", None)
        .await
        .ok(200);
    let ids: Vec<i64> = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, vec![mine]);

    // Not its room: 404 for reading and posting, nothing written.
    let before = room_events(admin, other).await.len();
    as_bot(
        &app,
        &key,
        "POST",
        &format!("/chat/bot/rooms/{other}/messages"),
        Some(json!({"client_message_id": "a", "text": "let me in"})),
    )
    .await
    .err(404, "not_found");
    as_bot(
        &app,
        &key,
        "GET",
        &format!("/chat/bot/rooms/{other}/events"),
        None,
    )
    .await
    .err(404, "not_found");
    let theirs = say(admin, other, "o1", "private").await;
    as_bot(
        &app,
        &key,
        "POST",
        &format!("/chat/bot/messages/{}/boosts", theirs["id"]),
        Some(json!({"content": "+1"})),
    )
    .await
    .err(404, "not_found");
    assert_eq!(room_events(admin, other).await.len(), before + 1);

    // Its room: post (idempotent), read by after_seq, boost others', change only its own.
    let admins = say(admin, mine, "a1", "welcome").await;
    let path = format!("/chat/bot/rooms/{mine}/messages");
    let posted = as_bot(
        &app,
        &key,
        "POST",
        &path,
        Some(json!({"client_message_id": "b1", "text": "on it", "reply_to": admins["id"]})),
    )
    .await
    .ok(201);
    assert_eq!(posted["author_id"], id);
    as_bot(
        &app,
        &key,
        "POST",
        &path,
        Some(json!({"client_message_id": "b1", "text": "on it"})),
    )
    .await
    .ok(200);
    let page = as_bot(
        &app,
        &key,
        "GET",
        &format!("/chat/bot/rooms/{mine}/events?after_seq=1"),
        None,
    )
    .await
    .ok(200);
    let seqs: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2]);
    as_bot(
        &app,
        &key,
        "GET",
        &format!("/chat/bot/rooms/{mine}/events?after_seq=99"),
        None,
    )
    .await
    .err(422, "future_seq");
    as_bot(
        &app,
        &key,
        "POST",
        &format!("/chat/bot/messages/{}/boosts", admins["id"]),
        Some(json!({"content": "🎉"})),
    )
    .await
    .ok(201);
    let others = format!("/chat/bot/messages/{}", admins["id"]);
    as_bot(
        &app,
        &key,
        "PATCH",
        &others,
        Some(json!({"text": "hijacked"})),
    )
    .await
    .err(403, "forbidden");
    as_bot(&app, &key, "DELETE", &others, None)
        .await
        .err(403, "forbidden");
    let own = format!("/chat/bot/messages/{}", posted["id"]);
    let edited = as_bot(&app, &key, "PATCH", &own, Some(json!({"text": "done"})))
        .await
        .ok(200);
    assert_eq!(edited["text"], "done");
    let deleted = as_bot(&app, &key, "DELETE", &own, None).await.ok(200);
    assert_eq!(deleted["deleted"], true);
    let kinds: Vec<String> = room_events(admin, mine)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "message_posted",
            "message_posted",
            "boost_added",
            "message_edited",
            "message_deleted"
        ]
    );
    assert_eq!(
        room_events(admin, mine).await[0]["text"],
        "welcome",
        "the others' message is untouched"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn bad_bot_input_gets_a_stable_code_and_stores_nothing() {
    let app = app().await;
    let admin = &app.admin;
    let long = "b".repeat(33);
    let long_url = format!("http://example.com/{}", "x".repeat(2000));
    for (body, field) in [
        (json!({"name": long}), "name"),
        (json!({"name": "two words"}), "name"),
        (json!({"name": ""}), "name"),
        (
            json!({"name": "ok", "webhook_url": "ftp://example.com/hook"}),
            "webhook_url",
        ),
        (
            json!({"name": "ok", "webhook_url": "javascript:alert(1)"}),
            "webhook_url",
        ),
        (
            json!({"name": "ok", "webhook_url": long_url}),
            "webhook_url",
        ),
    ] {
        let e = admin
            .post("/chat/bots", body.clone())
            .await
            .err(422, "validation_failed");
        assert_eq!(e["details"][0]["field"], field, "{body}: {e}");
    }
    // A forbidden target (metadata), an unknown field, a taken name.
    admin
        .post(
            "/chat/bots",
            json!({"name": "ok", "webhook_url": "http://169.254.169.254/"}),
        )
        .await
        .err(422, "webhook_target_forbidden");
    admin
        .post("/chat/bots", json!({"name": "ok", "key": "mine"}))
        .await
        .err(422, "validation_failed");
    admin
        .post("/chat/bots", json!({"name": "ADMIN"}))
        .await
        .err(409, "already_exists");
    // Staff who are not admins make bots only for an ensemble they edit.
    let (carl, _) = app.user("carl", "crew").await;
    carl.post("/chat/bots", json!({"name": "mine"}))
        .await
        .err(403, "forbidden");
    assert_eq!(admin.get("/chat/bots").await.ok(200)["items"], json!([]));
    // Nobody was created: the name is free.
    bot(admin, json!({"name": "ok"})).await;
    app.shutdown().await;
}

#[tokio::test]
async fn ensemble_owners_manage_their_bots_and_add_them_to_their_rooms() {
    let app = app().await;
    let (olive, _) = app.user("olive", "performer").await;
    let (carl, carl_id) = app.user("carl", "crew").await;
    let eid = olive.ensemble("band").await;
    olive.add_member(eid, carl_id, "crew").await;
    let (id, _, _) = bot(&olive, json!({"name": "bandbot", "ensemble_id": eid})).await;
    // Crew of the ensemble neither make nor see its bots.
    carl.post("/chat/bots", json!({"name": "x", "ensemble_id": eid}))
        .await
        .err(403, "forbidden");
    carl.get(&format!("/chat/bots/{id}"))
        .await
        .err(404, "not_found");
    assert_eq!(carl.get("/chat/bots").await.ok(200)["items"], json!([]));
    assert_eq!(olive.get("/chat/bots").await.ok(200)["items"][0]["id"], id);
    // The ensemble's open room takes the bot as a member.
    let room = id_of(
        &olive
            .post(
                "/chat/rooms",
                json!({"kind": "open", "ensemble_id": eid, "name": "all"}),
            )
            .await
            .ok(201),
    );
    olive
        .post(
            &format!("/chat/rooms/{room}/members"),
            json!({"user_id": id}),
        )
        .await
        .ok(201);
    // Another ensemble's room does not.
    let other = app.admin.ensemble("other").await;
    let elsewhere = id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "open", "ensemble_id": other, "name": "o"}),
            )
            .await
            .ok(201),
    );
    app.admin
        .post(
            &format!("/chat/rooms/{elsewhere}/members"),
            json!({"user_id": id}),
        )
        .await
        .err(422, "validation_failed");
    app.shutdown().await;
}

#[tokio::test]
async fn chat_events_reach_the_event_stream_and_signed_webhooks_but_not_from_direct_rooms() {
    let (rx, log) = receiver().await;
    let app = app().await;
    let (olive, _) = app.user("olive", "performer").await;
    let (_, carl_id) = app.user("carl", "crew").await;
    let eid = olive.ensemble("band").await;
    olive.add_member(eid, carl_id, "crew").await;
    let hook = olive
        .post(
            &format!("/ensembles/{eid}/webhooks"),
            json!({"url": format!("http://{rx}/hook")}),
        )
        .await
        .ok(201);
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let room = id_of(
        &olive
            .post(
                "/chat/rooms",
                json!({"kind": "open", "ensemble_id": eid, "name": "all"}),
            )
            .await
            .ok(201),
    );
    // A direct message and a closed room of the ensemble: never on the stream.
    let direct = id_of(
        &olive
            .post(
                "/chat/rooms",
                json!({"kind": "direct", "members": [carl_id]}),
            )
            .await
            .ok(201),
    );
    say(&olive, direct, "d", "secret plans").await;
    let closed = id_of(
        &olive
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "ensemble_id": eid, "name": "few"}),
            )
            .await
            .ok(201),
    );
    say(&olive, closed, "c", "closed talk").await;

    let m = say(&olive, room, "o1", "curtain in five").await;
    let mid = m["id"].as_i64().unwrap();
    olive
        .post(
            &format!("/chat/messages/{mid}/boosts"),
            json!({"content": "👏"}),
        )
        .await
        .ok(201);
    olive
        .req(
            "PATCH",
            &format!("/chat/messages/{mid}"),
            Some(json!({"text": "curtain in ten"})),
            &[],
        )
        .await
        .ok(200);

    // The stream (WebSocket) carries the post with its text, scoped to the ensemble.
    let ev = ws_event(&olive, "chat.message").await;
    assert_eq!(ev["ensemble_id"], eid);
    assert_eq!(ev["subject"], format!("chat_message:{mid}"));
    assert_eq!(ev["data"]["room_id"], room);
    assert_eq!(ev["data"]["message_id"], mid);
    assert_eq!(ev["data"]["text"], "curtain in five");
    assert_eq!(ev["data"]["author_name"], "olive");
    assert_eq!(
        ws_event(&olive, "chat.boost_added").await["data"]["boost"],
        "👏"
    );
    assert_eq!(
        ws_event(&olive, "chat.message_edited").await["data"]["text"],
        "curtain in ten"
    );

    // A signed webhook delivery of the post reaches the receiver.
    let mut delivered = None;
    for _ in 0..300 {
        delivered = log
            .lock()
            .unwrap()
            .iter()
            .find(|g| g.path == "/hook" && g.event == "chat.message")
            .cloned();
        if delivered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = delivered.expect("a chat.message webhook delivery");
    delivered.verify(&secret);
    assert_eq!(delivered.json()["data"]["text"], "curtain in five");

    // Deleting the message takes its text out of the stored events too.
    olive
        .req("DELETE", &format!("/chat/messages/{mid}"), None, &[])
        .await
        .ok(200);
    ws_event(&olive, "chat.message_deleted").await;
    let history = app.admin.get("/events?limit=100").await.ok(200);
    let text = history.to_string();
    assert!(
        !text.contains("secret plans") && !text.contains("closed talk"),
        "{text}"
    );
    assert!(
        !text.contains("curtain in"),
        "deleted text stays in the history: {text}"
    );
    let chat: Vec<&Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("chat."))
        .collect();
    assert!(
        chat.iter().all(|e| e["data"]["room_id"] == room),
        "{chat:?}"
    );
    assert_eq!(chat.len(), 4, "{chat:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn every_bot_route_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.anon().get("/openapi.json").await.ok(200);
    let routes = [
        ("/api/v1/chat/bots", "get", "bearer"),
        ("/api/v1/chat/bots", "post", "bearer"),
        ("/api/v1/chat/bots/{id}", "get", "bearer"),
        ("/api/v1/chat/bots/{id}", "patch", "bearer"),
        ("/api/v1/chat/bots/{id}", "delete", "bearer"),
        ("/api/v1/chat/bots/{id}/key", "post", "bearer"),
        ("/api/v1/chat/bot/me", "get", "bot"),
        ("/api/v1/chat/bot/rooms", "get", "bot"),
        ("/api/v1/chat/bot/rooms/{id}/events", "get", "bot"),
        ("/api/v1/chat/bot/rooms/{id}/messages", "post", "bot"),
        ("/api/v1/chat/bot/messages/{id}", "patch", "bot"),
        ("/api/v1/chat/bot/messages/{id}", "delete", "bot"),
        ("/api/v1/chat/bot/messages/{id}/boosts", "post", "bot"),
    ];
    for (path, method, scheme) in routes {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(op["responses"].get("default").is_some(), "{method} {path}");
        assert!(
            op["security"][0].get(scheme).is_some(),
            "{method} {path}: {op}"
        );
    }
    let bot_paths = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/api/v1/chat/bot"))
        .count();
    assert_eq!(bot_paths, 9, "a bot route added here is listed above too");
    assert_eq!(
        doc["components"]["securitySchemes"]["bot"]["name"],
        "Authorization"
    );
    app.shutdown().await;
}

type LiveWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next frame of this type on a `/live/v1` connection (others skipped).
async fn next_frame(ws: &mut LiveWs, kind: &str) -> Value {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

async fn send_frame(ws: &mut LiveWs, v: Value) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(v.to_string()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_post_over_the_live_socket_calls_the_bot_too() {
    let (rx, log) = receiver().await;
    let app = app().await;
    let admin = &app.admin;
    let (echo_id, _, secret) = bot(
        admin,
        json!({"name": "echo", "webhook_url": format!("http://{rx}/text")}),
    )
    .await;
    let room = id_of(
        &admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "live", "members": [echo_id]}),
            )
            .await
            .ok(201),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/live/v1", app.addr))
        .await
        .expect("websocket connects");
    let token = admin.token.clone().unwrap();
    send_frame(&mut ws, json!({"type": "chat_auth", "token": token})).await;
    next_frame(&mut ws, "chat_hello").await;
    send_frame(
        &mut ws,
        json!({"type": "chat_post", "room": room, "client_id": "live-1",
            "text": "@echo over the socket"}),
    )
    .await;
    let ack = next_frame(&mut ws, "chat_ack").await;
    let mid = ack["message"].as_i64().unwrap();
    let reply = reply_by(admin, room, echo_id, mid).await;
    assert_eq!(reply["text"], "echo: @echo over the socket");
    log.lock().unwrap().last().unwrap().verify(&secret);
    app.shutdown().await;
}

/// The room of show `show_id`, as `api` lists it.
async fn show_room(api: &Api, show_id: i64) -> i64 {
    let rooms = api.get("/chat/rooms").await.ok(200);
    rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["show_id"] == json!(show_id))
        .and_then(|r| r["id"].as_i64())
        .unwrap_or_else(|| panic!("no room of show {show_id} in {rooms}"))
}

/// Waits until the receiver got `n` requests on `path`; them.
async fn got_on(log: &Log, path: &str, n: usize) -> Vec<Got> {
    for _ in 0..300 {
        let got: Vec<Got> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == path)
            .cloned()
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {n} requests on {path}: {:?}",
        log.lock().unwrap()
    );
}

#[tokio::test]
async fn live_show_extras_reach_the_event_stream_and_signed_webhooks_but_not_from_closed_rooms() {
    let (rx, log) = receiver().await;
    let app = app().await;
    let (olive, olive_uid) = app.user("olive", "performer").await;
    let (carl, carl_id) = app.user("carl", "crew").await;
    let eid = olive.ensemble("band").await;
    olive.add_member(eid, carl_id, "crew").await;
    // A subscription names the new kinds (an unknown one is refused).
    let extras = [
        "chat.vote_changed",
        "chat.question_answered",
        "chat.message_pinned",
        "chat.message_unpinned",
        "chat.wall_approved",
        "chat.wall_rejected",
    ];
    let mut kinds: Vec<&str> = extras.to_vec();
    kinds.push("chat.message");
    olive
        .post(
            &format!("/ensembles/{eid}/webhooks"),
            json!({"url": format!("http://{rx}/hook"), "kinds": ["chat.vote_cast"]}),
        )
        .await
        .err(422, "validation_failed");
    let hook = olive
        .post(
            &format!("/ensembles/{eid}/webhooks"),
            json!({"url": format!("http://{rx}/hook"), "kinds": kinds}),
        )
        .await
        .ok(201);
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let pid = olive.published_piece(eid, "aria").await;
    let show = olive.show(pid, "performance").await;
    let show_id = id_of(&show);
    olive.show_to(show_id, "live").await;
    let room = show_room(&olive, show_id).await;

    // A closed room of the ensemble: its pins and wall decisions never leave it.
    let closed = id_of(
        &olive
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "ensemble_id": eid, "name": "few"}),
            )
            .await
            .ok(201),
    );
    let c = say(&olive, closed, "c1", "closed talk").await;
    let cid = c["id"].as_i64().unwrap();
    olive
        .req("PUT", &format!("/chat/messages/{cid}/pin"), None, &[])
        .await
        .ok(200);
    olive
        .req(
            "PUT",
            &format!("/chat/messages/{cid}/wall"),
            Some(json!({"approve": true})),
            &[],
        )
        .await
        .ok(200);

    // In the show's room: a question, votes (one taken back), answered, pinned and unpinned,
    // approved for the wall and taken off, and an announcement.
    let q = carl
        .post(
            &format!("/chat/rooms/{room}/questions"),
            json!({"client_message_id": "q1", "text": "Which synth is that?"}),
        )
        .await
        .ok(201);
    let qid = id_of(&q);
    let vote = format!("/chat/messages/{qid}/vote");
    olive.req("PUT", &vote, None, &[]).await.ok(200);
    carl.req("PUT", &vote, None, &[]).await.ok(200);
    carl.req("DELETE", &vote, None, &[]).await.ok(200);
    for (method, path, body) in [
        ("PUT", "answered", None),
        ("PUT", "pin", None),
        ("DELETE", "pin", None),
        ("PUT", "wall", Some(json!({"approve": true}))),
        ("PUT", "wall", Some(json!({"approve": false}))),
    ] {
        olive
            .req(method, &format!("/chat/messages/{qid}/{path}"), body, &[])
            .await
            .ok(200);
    }
    let a = olive
        .post(
            &format!("/chat/rooms/{room}/announcements"),
            json!({"client_message_id": "a1", "text": "Intermission: 10 minutes"}),
        )
        .await
        .ok(201);
    let aid = id_of(&a);

    // The stream (WebSocket) carries them, scoped to the ensemble.
    let approved = ws_event(&olive, "chat.wall_approved").await;
    assert_eq!(approved["ensemble_id"], eid);
    assert_eq!(approved["subject"], format!("chat_message:{qid}"));
    assert_eq!(approved["data"]["text"], "Which synth is that?");
    assert_eq!(approved["data"]["author_name"], "carl");
    assert_eq!(approved["data"]["flag"], "question");

    // The history: every extra once, in order, with what each carries; nothing of the closed
    // room; a vote's count but not who voted.
    let history = olive.get("/events?limit=100").await.ok(200);
    let chat: Vec<Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("chat."))
        .cloned()
        .collect();
    assert!(
        chat.iter()
            .all(|e| e["data"]["room_id"] == room && e["data"]["show_id"] == show_id),
        "{chat:?}"
    );
    let seen: Vec<(&str, i64)> = chat
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["data"]["message_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("chat.message", qid),
            ("chat.vote_changed", qid),
            ("chat.vote_changed", qid),
            ("chat.vote_changed", qid),
            ("chat.question_answered", qid),
            ("chat.message_pinned", qid),
            ("chat.message_unpinned", qid),
            ("chat.wall_approved", qid),
            ("chat.wall_rejected", qid),
            ("chat.message", aid),
        ]
    );
    assert_eq!(chat[0]["data"]["flag"], "question");
    assert_eq!(chat[0]["data"]["author_id"], carl_id);
    let votes: Vec<&Value> = chat[1..4].iter().map(|e| &e["data"]["votes"]).collect();
    assert_eq!(votes, [&json!(1), &json!(2), &json!(1)]);
    assert!(
        chat[1..4]
            .iter()
            .all(|e| e["data"].get("actor_id").is_none()),
        "who voted is not published: {chat:?}"
    );
    assert_eq!(chat[4]["data"]["actor_id"], olive_uid);
    assert_eq!(chat[9]["data"]["flag"], "announcement");
    assert_eq!(chat[9]["data"]["text"], "Intermission: 10 minutes");
    // Each event parses into its typed form.
    for e in &chat {
        let rec: tutti_events::EventRecord = serde_json::from_value(e.clone()).unwrap();
        rec.event().unwrap_or_else(|err| panic!("{e}: {err}"));
    }

    // The same ten reach the webhook, signed, and nothing of the closed room.
    let delivered = got_on(&log, "/hook", 10).await;
    let mut got: Vec<String> = delivered.iter().map(|g| g.event.clone()).collect();
    got.sort();
    let mut want: Vec<String> = seen.iter().map(|(k, _)| k.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    for g in &delivered {
        g.verify(&secret);
        assert_eq!(g.json()["data"]["room_id"], room, "{:?}", g.json());
    }

    // Deleting the question takes its text out of the wall approval's event too.
    olive
        .req("DELETE", &format!("/chat/messages/{qid}"), None, &[])
        .await
        .ok(200);
    ws_event(&olive, "chat.message_deleted").await;
    let text = olive.get("/events?limit=100").await.ok(200).to_string();
    assert!(!text.contains("Which synth"), "{text}");
    assert!(!text.contains("closed talk"), "{text}");
    app.shutdown().await;
}

/// One bot call as the probing receiver saw it: the message it was called for, and whether
/// the room's events held that message's `message_released` at the moment of the call.
#[derive(Debug, Clone)]
struct Probed {
    message: i64,
    released_then: bool,
}

/// A bot receiver that, on each call, reads the room's events through the API (as `reader`)
/// before it answers `text/plain`: what was committed when the bot was called.
async fn probing_receiver(reader: Api) -> (SocketAddr, Arc<Mutex<Vec<Probed>>>) {
    let log: Arc<Mutex<Vec<Probed>>> = Arc::default();
    let state = (log.clone(), reader);
    let app = Router::new()
        .route(
            "/probe",
            post(
                |State((log, reader)): State<(Arc<Mutex<Vec<Probed>>>, Api)>, b: Bytes| async move {
                    let v: Value = serde_json::from_slice(&b).unwrap();
                    let message = v["message"]["id"].as_i64().unwrap();
                    let room = v["room"]["id"].as_i64().unwrap();
                    let released_then = room_events(&reader, room)
                        .await
                        .iter()
                        .any(|e| e["kind"] == "message_released" && e["message_id"] == message);
                    log.lock().unwrap().push(Probed {
                        message,
                        released_then,
                    });
                    (
                        [("content-type", "text/plain; charset=utf-8")],
                        format!("echo: {}", v["message"]["text"].as_str().unwrap_or("")),
                    )
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_audience_post_calls_its_bot_at_the_release_and_a_removed_one_never() {
    // The API's clock, which live chat and its sweep read too: moved by hand, never waited for.
    let clock = tutti_api::Clock::manual(tutti_api::now_ms());
    let c = clock.clone();
    let app = TestApp::spawn_with(move |cfg| {
        cfg.webhooks.allow_private = true;
        cfg.api_clock = tutti_server::config::ApiClock(c);
    })
    .await;
    let (olive, _) = app.user("olive", "performer").await;
    let eid = olive.ensemble("band").await;
    let (rx, probed) = probing_receiver(olive.clone()).await;
    let pid = olive.published_piece(eid, "aria").await;
    let show = olive.show(pid, "performance").await;
    let show_id = id_of(&show);
    olive.show_to(show_id, "live").await;
    let code = show["code"].as_str().unwrap().to_owned();
    let room = show_room(&olive, show_id).await;
    let (echo, _, _) = bot(
        &olive,
        json!({"name": "echo", "ensemble_id": eid, "webhook_url": format!("http://{rx}/probe")}),
    )
    .await;
    olive
        .post(
            &format!("/chat/rooms/{room}/members"),
            json!({"user_id": echo}),
        )
        .await
        .ok(201);
    olive
        .req(
            "PUT",
            &format!("/chat/rooms/{room}/settings"),
            Some(json!({"slow_mode_s": 0, "filter": [], "audience_delay_s": 60})),
            &[],
        )
        .await
        .ok(200);

    // A phone of the show posts two messages that mention the bot: both held for 60 s.
    let device = app
        .anon()
        .post_empty(&format!("/join/{code}/guests"))
        .await
        .ok(201)["device_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/live/v1", app.addr))
        .await
        .expect("websocket connects");
    send_frame(
        &mut ws,
        json!({"type": "join", "show": code, "role": "audience", "token": device}),
    )
    .await;
    next_frame(&mut ws, "welcome").await;
    send_frame(&mut ws, json!({"type": "chat_name", "name": "Ada"})).await;
    next_frame(&mut ws, "chat_hello").await;
    let mut held = Vec::new();
    for (seq, (id, text)) in [
        ("a1", "@echo which key is this in?"),
        ("a2", "@echo rude words"),
    ]
    .into_iter()
    .enumerate()
    {
        send_frame(
            &mut ws,
            json!({"type": "chat_post", "room": room, "client_id": id, "text": text, "seq": seq + 1}),
        )
        .await;
        held.push(
            next_frame(&mut ws, "chat_ack").await["message"]
                .as_i64()
                .unwrap(),
        );
    }
    let (kept, removed) = (held[0], held[1]);
    let events = room_events(&olive, room).await;
    assert!(
        events.iter().all(|e| e["kind"] == "message_posted"),
        "{events:?}"
    );
    // A moderator removes the second before its time.
    olive
        .req("DELETE", &format!("/chat/messages/{removed}"), None, &[])
        .await
        .ok(200);

    // Before the release the bot is not called: a post by crew (never held) calls it, and
    // its answer comes back while the audience posts are still held and uncalled.
    let ping = say(&olive, room, "s1", "@echo are you there?").await;
    let ping_id = ping["id"].as_i64().unwrap();
    reply_by(&olive, room, echo, ping_id).await;
    let calls: Vec<i64> = probed.lock().unwrap().iter().map(|p| p.message).collect();
    assert_eq!(
        calls,
        [ping_id],
        "only the crew's post called the bot so far"
    );

    // The room's delay passes (by the clock): the sweep releases the kept post and only then
    // is the bot called for it; the removed one is never released nor sent to the bot.
    clock.advance(61_000);
    let reply = reply_by(&olive, room, echo, kept).await;
    assert_eq!(reply["text"], "echo: @echo which key is this in?");
    let events = room_events(&olive, room).await;
    let released: Vec<i64> = events
        .iter()
        .filter(|e| e["kind"] == "message_released")
        .map(|e| e["message_id"].as_i64().unwrap())
        .collect();
    assert_eq!(released, [kept], "{events:?}");
    let release_seq = events
        .iter()
        .find(|e| e["kind"] == "message_released")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    assert!(reply["seq"].as_u64().unwrap() > release_seq, "{events:?}");
    // One more call after it: by then the sweep that released the kept post (and would have
    // released the removed one with it, due at the same moment) has called every bot it calls.
    let after = say(&olive, room, "s2", "@echo still there?").await;
    reply_by(&olive, room, echo, after["id"].as_i64().unwrap()).await;
    let calls = probed.lock().unwrap().clone();
    let order: Vec<i64> = calls.iter().map(|p| p.message).collect();
    assert_eq!(
        order,
        [ping_id, kept, after["id"].as_i64().unwrap()],
        "{calls:?}"
    );
    assert!(
        calls[1].released_then,
        "the bot was called before the post's release: {calls:?}"
    );
    app.shutdown().await;
}
