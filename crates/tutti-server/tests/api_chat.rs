//! The chat REST API (`/api/v1/chat/...`, issue 12 item 9) against a real server and a real
//! SQLite store, one [`TestApp`] per test: rooms and memberships, idempotent posts (retried
//! one after another and at once), exact catch-up by `seq` after edits, deletions and boosts,
//! who may read, post, search and moderate, hostile search strings, XSS payloads and bad
//! bodies. What a test asserts was committed: every answer comes after the store's commit.

#[path = "api_support/mod.rs"]
mod api_support;

use api_support::*;
use serde_json::{json, Value};

/// An ensemble owned by a performer, with a crew member: (owner, owner id, crew, crew id,
/// ensemble id).
async fn band(app: &TestApp) -> (Api, i64, Api, i64, i64) {
    let (owner, owner_id) = app.user("olive", "performer").await;
    let (crew, crew_id) = app.user("carl", "crew").await;
    let eid = owner.ensemble("band").await;
    owner.add_member(eid, crew_id, "crew").await;
    (owner, owner_id, crew, crew_id, eid)
}

/// "All Talk", made by first-run setup: every staff account is in it. Its id.
async fn all_talk(app: &TestApp) -> i64 {
    let list = app.admin.get("/chat/rooms").await.ok(200);
    let found: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["everyone"] == true)
        .map(id_of)
        .collect();
    assert_eq!(found.len(), 1, "{list}");
    found[0]
}

/// Creates a room as `api`; its id.
async fn room(api: &Api, body: Value) -> i64 {
    id_of(&api.post("/chat/rooms", body).await.ok(201))
}

/// A closed room of no ensemble with these other members; its id.
async fn closed(api: &Api, members: &[i64]) -> i64 {
    room(
        api,
        json!({"kind": "closed", "name": "side", "members": members}),
    )
    .await
}

/// Posts a new message (asserting 201); the message.
async fn post(api: &Api, room_id: i64, client_id: &str, text: &str) -> Value {
    api.post(
        &format!("/chat/rooms/{room_id}/messages"),
        json!({"client_message_id": client_id, "text": text}),
    )
    .await
    .ok(201)
}

/// The room's events after `after` (one page of at most 1000), asserting 200.
async fn events(api: &Api, room_id: i64, after: u64) -> Value {
    api.get(&format!(
        "/chat/rooms/{room_id}/events?after_seq={after}&limit=1000"
    ))
    .await
    .ok(200)
}

/// The kinds and seqs of a page of events.
fn kinds(page: &Value) -> Vec<(u64, String)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The ids of the caller's rooms.
async fn my_rooms(api: &Api, query: &str) -> Vec<i64> {
    let list = api.get(&format!("/chat/rooms{query}")).await.ok(200);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

/// The message ids a search finds.
async fn found(api: &Api, q: &str) -> Vec<i64> {
    let path = format!("/chat/search?q={}", urlencode(q));
    let hits = api.get(&path).await.ok(200);
    hits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message_id"].as_i64().unwrap())
        .collect()
}

/// Percent-encodes every byte but ASCII letters and digits (for a query value).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn rooms_are_created_listed_with_unread_counts_and_direct_rooms_are_unique() {
    let app = TestApp::spawn().await;
    let (owner, owner_id, crew, crew_id, eid) = band(&app).await;
    let (outsider, outsider_id) = app.user("otto", "performer").await;

    // An open room: every member of the ensemble is in it.
    let open = owner
        .post(
            "/chat/rooms",
            json!({"kind": "open", "ensemble_id": eid, "name": "All Talk"}),
        )
        .await
        .ok(201);
    let open_id = id_of(&open);
    assert_eq!(open["kind"], "open");
    assert_eq!(open["ensemble_id"], eid);
    assert_eq!(open["last_seq"], 0);
    assert_eq!(open["membership"]["involvement"], "everything");
    let members = owner
        .get(&format!("/chat/rooms/{open_id}/members"))
        .await
        .ok(200);
    let ids: Vec<i64> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![owner_id, crew_id]);
    // Crew may not make an ensemble-wide room; an outsider does not see the ensemble.
    crew.post("/chat/rooms", json!({"kind": "open", "ensemble_id": eid}))
        .await
        .err(403, "forbidden");
    outsider
        .post("/chat/rooms", json!({"kind": "open", "ensemble_id": eid}))
        .await
        .err(404, "not_found");

    // Direct rooms: one per exact set of people, whoever asks and in whatever order.
    let direct = owner
        .post(
            "/chat/rooms",
            json!({"kind": "direct", "members": [crew_id]}),
        )
        .await
        .ok(201);
    assert_eq!(direct["kind"], "direct");
    let again = crew
        .post(
            "/chat/rooms",
            json!({"kind": "direct", "members": [owner_id, crew_id, owner_id]}),
        )
        .await
        .ok(200);
    assert_eq!(again["id"], direct["id"]);
    let three = owner
        .post(
            "/chat/rooms",
            json!({"kind": "direct", "members": [crew_id, outsider_id]}),
        )
        .await
        .ok(201);
    assert_ne!(three["id"], direct["id"]);
    owner
        .post(
            "/chat/rooms",
            json!({"kind": "direct", "members": [owner_id]}),
        )
        .await
        .err(422, "validation_failed");
    owner
        .post("/chat/rooms", json!({"kind": "direct", "members": [999]}))
        .await
        .err(422, "validation_failed");
    // A direct room's members are fixed.
    let direct_id = id_of(&direct);
    owner
        .post(
            &format!("/chat/rooms/{direct_id}/members"),
            json!({"user_id": outsider_id}),
        )
        .await
        .err(409, "conflict");

    // Lists: each sees their own rooms only.
    assert_eq!(
        my_rooms(&crew, "").await,
        vec![all_talk(&app).await, open_id, direct_id, id_of(&three)]
    );
    assert_eq!(
        my_rooms(&outsider, "").await,
        vec![all_talk(&app).await, id_of(&three)]
    );
    outsider
        .get(&format!("/chat/rooms/{open_id}"))
        .await
        .err(404, "not_found");

    // Unread counts follow posts of others and the read marker; a future seq is refused.
    post(&owner, open_id, "m1", "hello").await;
    post(&owner, open_id, "m2", "anyone?").await;
    post(&crew, open_id, "m3", "me").await;
    let list = crew.get("/chat/rooms").await.ok(200);
    // Item 0 is "All Talk" (made by setup); then the open room.
    assert_eq!(list["items"][1]["id"], open_id, "{list}");
    assert_eq!(list["items"][1]["unread"], 2, "{list}");
    assert_eq!(list["items"][1]["last_seq"], 3, "{list}");
    let marked = crew
        .post(&format!("/chat/rooms/{open_id}/read"), json!({"seq": 2}))
        .await
        .ok(200);
    assert_eq!(marked["last_read_seq"], 2);
    let got = crew.get(&format!("/chat/rooms/{open_id}")).await.ok(200);
    assert_eq!(got["unread"], 0, "{got}");
    let e = crew
        .post(&format!("/chat/rooms/{open_id}/read"), json!({"seq": 4}))
        .await
        .err(422, "future_seq");
    assert_eq!(e["details"]["head_seq"], 3, "{e}");

    // Involvement: invisible hides the room from the list unless asked for.
    let m = crew
        .req(
            "PUT",
            &format!("/chat/rooms/{open_id}/involvement"),
            Some(json!({"involvement": "invisible"})),
            &[],
        )
        .await
        .ok(200);
    assert_eq!(m["involvement"], "invisible");
    assert!(!my_rooms(&crew, "").await.contains(&open_id));
    assert!(my_rooms(&crew, "?include_invisible=true")
        .await
        .contains(&open_id));
    crew.req(
        "PUT",
        &format!("/chat/rooms/{open_id}/involvement"),
        Some(json!({"involvement": "loud"})),
        &[],
    )
    .await
    .err(422, "validation_failed");

    // Someone who joins the ensemble later is in its open room at their next look, and
    // leaving the ensemble leaves its rooms.
    owner.add_member(eid, outsider_id, "crew").await;
    assert!(my_rooms(&outsider, "").await.contains(&open_id));
    let history = events(&outsider, open_id, 0).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 3);
    owner
        .req(
            "DELETE",
            &format!("/ensembles/{eid}/members/{outsider_id}"),
            None,
            &[],
        )
        .await
        .ok(204);
    assert!(!my_rooms(&outsider, "").await.contains(&open_id));
    outsider
        .get(&format!("/chat/rooms/{open_id}/events"))
        .await
        .err(404, "not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn closed_rooms_are_managed_by_their_creator_and_admins_and_members_may_leave() {
    let app = TestApp::spawn().await;
    let (a, a_id) = app.user("ann", "performer").await;
    let (b, b_id) = app.user("bob", "performer").await;
    let (c, c_id) = app.user("cid", "crew").await;
    let room_id = closed(&a, &[b_id]).await;
    // A plain member may not add or remove others.
    b.post(
        &format!("/chat/rooms/{room_id}/members"),
        json!({"user_id": c_id}),
    )
    .await
    .err(403, "forbidden");
    // The creator adds; twice is already_member.
    let added = a
        .post(
            &format!("/chat/rooms/{room_id}/members"),
            json!({"user_id": c_id, "involvement": "mentions"}),
        )
        .await
        .ok(201);
    assert_eq!(added["involvement"], "mentions");
    a.post(
        &format!("/chat/rooms/{room_id}/members"),
        json!({"user_id": c_id}),
    )
    .await
    .err(409, "already_member");
    // A member leaves; the admin (not a member) removes another.
    c.req(
        "DELETE",
        &format!("/chat/rooms/{room_id}/members/{c_id}"),
        None,
        &[],
    )
    .await
    .ok(204);
    b.req(
        "DELETE",
        &format!("/chat/rooms/{room_id}/members/{a_id}"),
        None,
        &[],
    )
    .await
    .err(403, "forbidden");
    app.admin
        .req(
            "DELETE",
            &format!("/chat/rooms/{room_id}/members/{b_id}"),
            None,
            &[],
        )
        .await
        .ok(204);
    let members = app
        .admin
        .get(&format!("/chat/rooms/{room_id}/members"))
        .await
        .ok(200);
    assert_eq!(members["items"].as_array().unwrap().len(), 1, "{members}");
    b.get(&format!("/chat/rooms/{room_id}"))
        .await
        .err(404, "not_found");
    // Audience accounts have no chat API (yet).
    let (aud, _) = app.user("aud", "audience").await;
    aud.get("/chat/rooms").await.err(403, "forbidden");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_post_returns_the_original_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (a, _) = app.user("ann", "performer").await;
    let (_, b_id) = app.user("bob", "performer").await;
    let room_id = closed(&a, &[b_id]).await;
    let path = format!("/chat/rooms/{room_id}/messages");

    // One after another: the retry answers the original (even with another text), 200.
    let first = post(&a, room_id, "c-1", "the first").await;
    let retry = a
        .post(
            &path,
            json!({"client_message_id": "c-1", "text": "changed"}),
        )
        .await
        .ok(200);
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(retry["text"], "the first");
    assert_eq!(retry["posted_seq"], 1);
    assert_eq!(kinds(&events(&a, room_id, 0).await).len(), 1);

    // At once: eight sends of one id make one message.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (a, path) = (a.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            a.post(
                &path,
                json!({"client_message_id": "c-2", "text": "at once"}),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        statuses.push(r.status);
        ids.push(r.json()["id"].as_i64().unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 200, 200, 201]);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(
        kinds(&events(&a, room_id, 0).await),
        vec![(1, "message_posted".into()), (2, "message_posted".into())]
    );

    // Idempotency-Key as on every create: the first response replayed.
    let body = Some(json!({"client_message_id": "c-3", "text": "keyed"}));
    let r1 = a
        .req("POST", &path, body.clone(), &[("idempotency-key", "k-1")])
        .await;
    r1.ok(201);
    let r2 = a
        .req("POST", &path, body, &[("idempotency-key", "k-1")])
        .await;
    assert_eq!(r2.ok(201)["id"], r1.json()["id"]);
    assert_eq!(r2.header("idempotent-replayed"), Some("true"));
    a.req(
        "POST",
        &path,
        Some(json!({"client_message_id": "c-4", "text": "other"})),
        &[("idempotency-key", "k-1")],
    )
    .await
    .err(422, "idempotency_key_reused");
    assert_eq!(kinds(&events(&a, room_id, 0).await).len(), 3);
    app.shutdown().await;
}

#[tokio::test]
async fn catch_up_returns_exactly_the_missed_events_in_order_with_paging() {
    let app = TestApp::spawn().await;
    let (a, a_id) = app.user("ann", "performer").await;
    let (b, b_id) = app.user("bob", "performer").await;
    let room_id = closed(&a, &[b_id]).await;
    let mut ids = Vec::new();
    for i in 1..=4 {
        ids.push(id_of(
            &post(&a, room_id, &format!("m{i}"), &format!("message {i}")).await,
        ));
    }
    // B saw everything up to seq 4, then went away. Meanwhile:
    let seen = events(&b, room_id, 0).await["next_after_seq"]
        .as_u64()
        .unwrap();
    assert_eq!(seen, 4);
    let edited = a
        .req(
            "PATCH",
            &format!("/chat/messages/{}", ids[0]),
            Some(json!({"text": "message 1, **edited**"})),
            &[],
        )
        .await
        .ok(200);
    assert_eq!(edited["edited_by"], a_id);
    assert_eq!(edited["html"], "<p>message 1, <strong>edited</strong></p>");
    let boost = b
        .post(
            &format!("/chat/messages/{}/boosts", ids[2]),
            json!({"content": "👏"}),
        )
        .await
        .ok(201);
    assert_eq!(boost["kind"], "boost_added");
    b.post(
        &format!("/chat/messages/{}/boosts", ids[2]),
        json!({"content": "👏"}),
    )
    .await
    .err(409, "already_exists");
    let deleted = a
        .req("DELETE", &format!("/chat/messages/{}", ids[1]), None, &[])
        .await
        .ok(200);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["text"], "");
    let unboost = b
        .req(
            "DELETE",
            &format!(
                "/chat/messages/{}/boosts?content={}",
                ids[2],
                urlencode("👏")
            ),
            None,
            &[],
        )
        .await
        .ok(200);
    assert_eq!(unboost["kind"], "boost_removed");
    post(&a, room_id, "m5", "message 5").await;

    // Back: exactly what was missed, in order.
    let missed = events(&b, room_id, seen).await;
    assert_eq!(
        kinds(&missed),
        vec![
            (5, "message_edited".into()),
            (6, "boost_added".into()),
            (7, "message_deleted".into()),
            (8, "boost_removed".into()),
            (9, "message_posted".into()),
        ]
    );
    assert_eq!(missed["items"][0]["text"], "message 1, **edited**");
    assert_eq!(missed["items"][1]["boost"], "👏");
    assert_eq!(missed["more"], false);
    assert_eq!(missed["head_seq"], 9);
    assert_eq!(missed["next_after_seq"], 9);
    // A deleted text is gone from every event, the earlier post included.
    let all = events(&b, room_id, 0).await;
    assert_eq!(all["items"][1]["kind"], "message_posted");
    assert_eq!(all["items"][1]["message_id"], ids[1]);
    assert!(all["items"][1]["text"].is_null(), "{all}");

    // Paged: two at a time, no loss, no repeats.
    let mut after = seen;
    let mut paged = Vec::new();
    loop {
        let page = b
            .get(&format!(
                "/chat/rooms/{room_id}/events?after_seq={after}&limit=2"
            ))
            .await
            .ok(200);
        paged.extend(kinds(&page));
        after = page["next_after_seq"].as_u64().unwrap();
        if page["more"] == false {
            break;
        }
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
    }
    assert_eq!(paged, kinds(&missed));
    // Up to date: an empty page.
    let none = events(&b, room_id, 9).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    assert_eq!(none["next_after_seq"], 9);

    // A seq from the future is refused with its own code.
    let e = b
        .get(&format!("/chat/rooms/{room_id}/events?after_seq=10"))
        .await
        .err(422, "future_seq");
    assert_eq!(e["details"]["field"], "after_seq");
    assert_eq!(e["details"]["head_seq"], 9);
    b.get(&format!(
        "/chat/rooms/{room_id}/events?after_seq=18446744073709551615"
    ))
    .await
    .err(422, "future_seq");
    b.get(&format!("/chat/rooms/{room_id}/events?after_seq=-1"))
        .await
        .err(422, "validation_failed");
    b.get(&format!("/chat/rooms/{room_id}/events?limit=0"))
        .await
        .err(422, "validation_failed");

    // Scrolling back shows messages as they are now, deleted ones left out.
    let page = b
        .get(&format!("/chat/rooms/{room_id}/messages?limit=2"))
        .await
        .ok(200);
    let texts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["message 5", "message 4"]);
    let before = page["next_before_seq"].as_u64().unwrap();
    let older = b
        .get(&format!(
            "/chat/rooms/{room_id}/messages?before_seq={before}"
        ))
        .await
        .ok(200);
    let texts: Vec<&str> = older["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["message 3", "message 1, **edited**"]);
    assert!(older["next_before_seq"].is_null());
    // A deleted message cannot be edited or deleted again.
    a.req(
        "PATCH",
        &format!("/chat/messages/{}", ids[1]),
        Some(json!({"text": "back"})),
        &[],
    )
    .await
    .err(409, "conflict");
    a.req("DELETE", &format!("/chat/messages/{}", ids[1]), None, &[])
        .await
        .err(409, "conflict");
    assert_eq!(events(&b, room_id, 0).await["head_seq"], 9);
    app.shutdown().await;
}

#[tokio::test]
async fn nobody_reads_posts_or_finds_messages_outside_their_rooms() {
    let app = TestApp::spawn().await;
    let (a, _) = app.user("ann", "performer").await;
    let (_, b_id) = app.user("bob", "performer").await;
    let (c, c_id) = app.user("cid", "performer").await;
    let secret_room = closed(&a, &[b_id]).await;
    let secret = post(&a, secret_room, "s1", "the pineapple plan").await;
    let own_room = closed(&c, &[]).await;
    let own = post(&c, own_room, "o1", "my pineapple").await;

    // C is outside A's room: 404 for everything, whatever the route.
    for path in [
        format!("/chat/rooms/{secret_room}"),
        format!("/chat/rooms/{secret_room}/members"),
        format!("/chat/rooms/{secret_room}/events"),
        format!("/chat/rooms/{secret_room}/messages"),
    ] {
        c.get(&path).await.err(404, "not_found");
    }
    c.post(
        &format!("/chat/rooms/{secret_room}/messages"),
        json!({"client_message_id": "x", "text": "let me in"}),
    )
    .await
    .err(404, "not_found");
    c.post(
        &format!("/chat/rooms/{secret_room}/read"),
        json!({"seq": 1}),
    )
    .await
    .err(404, "not_found");
    let sid = id_of(&secret);
    c.req(
        "PATCH",
        &format!("/chat/messages/{sid}"),
        Some(json!({"text": "mine now"})),
        &[],
    )
    .await
    .err(404, "not_found");
    c.req("DELETE", &format!("/chat/messages/{sid}"), None, &[])
        .await
        .err(404, "not_found");
    c.post(
        &format!("/chat/messages/{sid}/boosts"),
        json!({"content": "+1"}),
    )
    .await
    .err(404, "not_found");
    c.post(
        &format!("/chat/rooms/{secret_room}/members"),
        json!({"user_id": c_id}),
    )
    .await
    .err(404, "not_found");

    // Search: each finds what they may read, never the other's.
    assert_eq!(found(&c, "pineapple").await, vec![id_of(&own)]);
    assert_eq!(found(&a, "pineapple").await, vec![sid]);
    assert!(found(&c, "plan").await.is_empty());
    // Nothing of A's room changed.
    assert_eq!(events(&a, secret_room, 0).await["head_seq"], 1);

    // In an ensemble's room, leaving the ensemble ends reading and finding.
    let (owner, _, crew, crew_id, eid) = band(&app).await;
    let open = room(
        &owner,
        json!({"kind": "open", "ensemble_id": eid, "name": "all"}),
    )
    .await;
    let m = post(&crew, open, "e1", "mango meeting").await;
    assert_eq!(found(&owner, "mango").await, vec![id_of(&m)]);
    owner
        .req(
            "DELETE",
            &format!("/ensembles/{eid}/members/{crew_id}"),
            None,
            &[],
        )
        .await
        .ok(204);
    assert!(found(&crew, "mango").await.is_empty());
    crew.post(
        &format!("/chat/rooms/{open}/messages"),
        json!({"client_message_id": "e2", "text": "still here?"}),
    )
    .await
    .err(404, "not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn crew_and_admins_change_others_messages_and_plain_members_may_not() {
    let app = TestApp::spawn().await;
    let (a, a_id) = app.user("ann", "performer").await;
    let (b, b_id) = app.user("bob", "performer").await;
    // A room of no ensemble: B is a plain member there.
    let room_id = closed(&a, &[b_id]).await;
    let m = id_of(&post(&a, room_id, "a1", "mine").await);
    b.req(
        "PATCH",
        &format!("/chat/messages/{m}"),
        Some(json!({"text": "yours"})),
        &[],
    )
    .await
    .err(403, "forbidden");
    b.req("DELETE", &format!("/chat/messages/{m}"), None, &[])
        .await
        .err(403, "forbidden");
    assert_eq!(
        events(&a, room_id, 0).await["head_seq"],
        1,
        "nothing written"
    );
    // The author edits; an admin, not even a member, deletes.
    a.req(
        "PATCH",
        &format!("/chat/messages/{m}"),
        Some(json!({"text": "mine, edited"})),
        &[],
    )
    .await
    .ok(200);
    let gone = app
        .admin
        .req("DELETE", &format!("/chat/messages/{m}"), None, &[])
        .await
        .ok(200);
    assert_eq!(gone["deleted_by"], 1);
    let log = events(&a, room_id, 0).await;
    assert_eq!(log["items"][2]["kind"], "message_deleted");
    assert_eq!(log["items"][2]["actor_id"], 1);
    assert_ne!(a_id, 1);

    // In an ensemble's room its crew moderate: they edit and delete the owner's messages.
    let (owner, owner_id, crew, _, eid) = band(&app).await;
    let open = room(
        &owner,
        json!({"kind": "open", "ensemble_id": eid, "name": "all"}),
    )
    .await;
    let o1 = id_of(&post(&owner, open, "o1", "rude word").await);
    let o2 = id_of(&post(&owner, open, "o2", "another").await);
    let fixed = crew
        .req(
            "PATCH",
            &format!("/chat/messages/{o1}"),
            Some(json!({"text": "[removed by crew]"})),
            &[],
        )
        .await
        .ok(200);
    assert_eq!(fixed["author_id"], owner_id);
    crew.req("DELETE", &format!("/chat/messages/{o2}"), None, &[])
        .await
        .ok(200);
    app.shutdown().await;
}

#[tokio::test]
async fn hostile_search_strings_get_results_or_a_clear_422_never_a_500() {
    let app = TestApp::spawn().await;
    let (a, _) = app.user("ann", "performer").await;
    let room_id = closed(&a, &[]).await;
    let quoted = id_of(&post(&a, room_id, "q1", r#"she said "quoted" AND (parens) NEAR*"#).await);
    let plain = id_of(&post(&a, room_id, "q2", "plain words here").await);

    let hostile = [
        "\"",
        "\"unbalanced",
        "quoted\"",
        "\"quoted\"",
        "AND",
        "OR NOT",
        "NEAR(a b)",
        "NEAR",
        "*",
        "^",
        "()",
        "(parens",
        "a OR b",
        "body:plain",
        "chat_fts:plain",
        "plain*",
        "-plain",
        "+plain",
        "'; DROP TABLE chat_messages; --",
        "\u{0}plain",
        "{plain}",
        "\\",
        "%",
        "   ",
        "\"\"\"\"",
        "AND OR NOT NEAR",
    ];
    for q in hostile {
        let r = a.get(&format!("/chat/search?q={}", urlencode(q))).await;
        match r.status {
            200 => assert!(r.json()["items"].is_array(), "{q:?}"),
            422 => {
                let e = r.err(422, "validation_failed");
                assert_eq!(e["details"][0]["field"], "q", "{q:?}: {e}");
            }
            other => panic!(
                "{q:?} answered {other}: {:?}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
    // Operators are searched for as words, quotes as text around them.
    assert_eq!(found(&a, "\"quoted\" AND").await, vec![quoted]);
    assert_eq!(found(&a, "(parens").await, vec![quoted]);
    assert_eq!(found(&a, "plain*").await, vec![plain]);
    assert_eq!(found(&a, "-plain").await, vec![plain]);
    assert_eq!(found(&a, "body:plain").await, Vec::<i64>::new());
    // Only operators and punctuation: nothing to search for, said clearly.
    for q in ["*", "()", "\"\"", "^ - +"] {
        let e = a
            .get(&format!("/chat/search?q={}", urlencode(q)))
            .await
            .err(422, "validation_failed");
        assert_eq!(e["details"][0]["field"], "q");
    }
    let long = "a".repeat(501);
    a.get(&format!("/chat/search?q={long}"))
        .await
        .err(422, "validation_failed");
    a.get("/chat/search").await.err(422, "validation_failed");

    // Snippets come in parts, the matches highlighted.
    let hits = a.get("/chat/search?q=words").await.ok(200);
    let parts = hits["items"][0]["snippet"].as_array().unwrap();
    assert!(parts
        .iter()
        .any(|p| p["highlighted"] == true && p["text"] == "words"));
    // Recent searches: at most ten, only searches that ran, trimmed.
    let recent = a.get("/chat/searches/recent").await.ok(200);
    let queries: Vec<&str> = recent["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["query"].as_str().unwrap())
        .collect();
    assert_eq!(queries.len(), 10, "{recent}");
    assert!(
        !queries.contains(&"*") && !queries.contains(&"()"),
        "{recent}"
    );
    let (b, _) = app.user("bob", "performer").await;
    assert!(found(&b, "  alpha ").await.is_empty());
    assert!(found(&b, "beta").await.is_empty());
    b.get("/chat/search?q=%5E")
        .await
        .err(422, "validation_failed");
    let recent = b.get("/chat/searches/recent").await.ok(200);
    let mut queries: Vec<&str> = recent["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["query"].as_str().unwrap())
        .collect();
    queries.sort_unstable();
    assert_eq!(queries, vec!["alpha", "beta"]);
    app.shutdown().await;
}

#[tokio::test]
async fn xss_payloads_come_back_escaped_in_the_rendered_html() {
    let app = TestApp::spawn().await;
    let (a, _) = app.user("ann", "performer").await;
    let room_id = closed(&a, &[]).await;
    let payloads = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](javascript&#58;alert(1))",
        "<a href=\"javascript:alert(1)\">x</a>",
        "**bold** <iframe src=//evil>",
        "\"><svg onload=alert(1)>",
    ];
    for (i, text) in payloads.iter().enumerate() {
        let m = post(&a, room_id, &format!("x{i}"), text).await;
        assert_eq!(m["text"], *text, "the raw text is kept");
        let html = m["html"].as_str().unwrap();
        for bad in [
            "<script",
            "<img",
            "<iframe",
            "<svg",
            "href=\"javascript",
            "<a href=\"javascript",
        ] {
            assert!(!html.contains(bad), "{text:?} rendered as {html:?}");
        }
        assert!(html.starts_with("<p>"), "{html}");
    }
    let page = events(&a, room_id, 0).await;
    assert_eq!(
        page["items"][0]["html"],
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    );
    let link = post(&a, room_id, "ok", "[docs](https://example.org/a?b=1&c=2)").await;
    assert!(
        link["html"]
            .as_str()
            .unwrap()
            .contains("href=\"https://example.org/a?b=1&amp;c=2\""),
        "{link}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_get_the_envelope_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (a, _) = app.user("ann", "performer").await;
    let room_id = closed(&a, &[]).await;
    let path = format!("/chat/rooms/{room_id}/messages");
    let field_of = |e: &Value| e["details"][0]["field"].as_str().unwrap().to_owned();

    let e = a
        .post(
            &path,
            json!({"client_message_id": "t1", "text": "x".repeat(4001)}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(field_of(&e), "text");
    assert!(e["message"].as_str().unwrap().contains("4000"), "{e}");
    for (body, field) in [
        (json!({"client_message_id": "t1", "text": "   "}), "text"),
        (
            json!({"client_message_id": "t1", "text": "evil \u{202E}txt"}),
            "text",
        ),
        (
            json!({"client_message_id": "t1", "text": "bell \u{7}"}),
            "text",
        ),
        (
            json!({"client_message_id": "", "text": "hi"}),
            "client_message_id",
        ),
        (
            json!({"client_message_id": "has space", "text": "hi"}),
            "client_message_id",
        ),
        (
            json!({"client_message_id": "x".repeat(65), "text": "hi"}),
            "client_message_id",
        ),
        (
            json!({"client_message_id": "t1", "text": "hi", "colour": "red"}),
            "colour",
        ),
        (json!({"client_message_id": "t1"}), "text"),
        (json!({"client_message_id": "t1", "text": 5}), "text"),
        (
            json!({"client_message_id": "t1", "text": "hi", "reply_to": 999}),
            "reply_to",
        ),
    ] {
        let e = a
            .post(&path, body.clone())
            .await
            .err(422, "validation_failed");
        assert_eq!(field_of(&e), field, "{body}: {e}");
    }
    // Not UTF-8, not JSON, not application/json, too large.
    let auth = format!("Bearer {}", a.token.as_deref().unwrap());
    let api_path = format!("/api/v1{path}");
    let json_headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    raw(
        app.addr,
        "POST",
        &api_path,
        &json_headers,
        b"{\"client_message_id\": \"u1\", \"text\": \"\xff\xfe\"}",
    )
    .await
    .err(400, "invalid_utf8");
    raw(app.addr, "POST", &api_path, &json_headers, b"{\"text\": ")
        .await
        .err(400, "malformed_json");
    raw(
        app.addr,
        "POST",
        &api_path,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "text/plain"),
        ],
        b"{}",
    )
    .await
    .err(415, "unsupported_media_type");
    let huge = format!(
        "{{\"client_message_id\": \"h1\", \"text\": \"{}\"}}",
        "x".repeat(70 * 1024)
    );
    raw(app.addr, "POST", &api_path, &json_headers, huge.as_bytes())
        .await
        .err(413, "payload_too_large");
    // Unknown rooms and messages, ids that are not ids.
    a.post(
        "/chat/rooms/999/messages",
        json!({"client_message_id": "t1", "text": "hi"}),
    )
    .await
    .err(404, "not_found");
    a.post(
        "/chat/rooms/abc/messages",
        json!({"client_message_id": "t1", "text": "hi"}),
    )
    .await
    .err(404, "not_found");
    a.req(
        "PATCH",
        "/chat/messages/999",
        Some(json!({"text": "hi"})),
        &[],
    )
    .await
    .err(404, "not_found");
    // Rooms and boosts refuse bad input the same way.
    for (body, field) in [
        (json!({"kind": "open"}), "ensemble_id"),
        (json!({"kind": "party"}), "kind"),
        (json!({"kind": "closed", "name": ""}), "name"),
        (json!({"kind": "closed", "name": "x".repeat(101)}), "name"),
        (json!({"kind": "closed", "members": [0]}), "members[0]"),
        (json!({"kind": "direct"}), "members"),
        (
            json!({"kind": "direct", "members": [2], "name": "dm"}),
            "name",
        ),
    ] {
        let e = a
            .post("/chat/rooms", body.clone())
            .await
            .err(422, "validation_failed");
        assert_eq!(field_of(&e), field, "{body}: {e}");
    }
    let m = id_of(&post(&a, room_id, "ok", "fine").await);
    let e = a
        .post(
            &format!("/chat/messages/{m}/boosts"),
            json!({"content": "x".repeat(17)}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(field_of(&e), "content");
    a.req(
        "DELETE",
        &format!("/chat/messages/{m}/boosts?content=nope"),
        None,
        &[],
    )
    .await
    .err(404, "not_found");

    // Nothing of all that was stored: one room, one message.
    let log = events(&a, room_id, 0).await;
    assert_eq!(kinds(&log), vec![(1, "message_posted".into())]);
    assert_eq!(my_rooms(&a, "").await, vec![all_talk(&app).await, room_id]);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_room_asked_for_at_once_is_made_once() {
    let app = TestApp::spawn().await;
    let (a, a_id) = app.user("ann", "performer").await;
    let (b, b_id) = app.user("bob", "performer").await;
    let (_, c_id) = app.user("cid", "crew").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        // Half ask as A, half as B: the same three people each time.
        let (api, body) = if i % 2 == 0 {
            (
                a.clone(),
                json!({"kind": "direct", "members": [b_id, c_id]}),
            )
        } else {
            (
                b.clone(),
                json!({"kind": "direct", "members": [c_id, a_id]}),
            )
        };
        tasks.push(tokio::spawn(
            async move { api.post("/chat/rooms", body).await },
        ));
    }
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        statuses.push(r.status);
        ids.push(id_of(&r.json()));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 201]);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn every_chat_route_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.anon().get("/openapi.json").await.ok(200);
    for (path, method) in [
        ("/api/v1/chat/rooms", "get"),
        ("/api/v1/chat/rooms", "post"),
        ("/api/v1/chat/rooms/{id}", "get"),
        ("/api/v1/chat/rooms/{id}/members", "get"),
        ("/api/v1/chat/rooms/{id}/members", "post"),
        ("/api/v1/chat/rooms/{id}/members/{user_id}", "delete"),
        ("/api/v1/chat/rooms/{id}/involvement", "put"),
        ("/api/v1/chat/rooms/{id}/read", "post"),
        ("/api/v1/chat/rooms/{id}/messages", "get"),
        ("/api/v1/chat/rooms/{id}/messages", "post"),
        ("/api/v1/chat/rooms/{id}/events", "get"),
        ("/api/v1/chat/messages/{id}", "patch"),
        ("/api/v1/chat/messages/{id}", "delete"),
        ("/api/v1/chat/messages/{id}/boosts", "post"),
        ("/api/v1/chat/messages/{id}/boosts", "delete"),
        ("/api/v1/chat/search", "get"),
        ("/api/v1/chat/searches/recent", "get"),
        ("/api/v1/chat/rooms/{id}/settings", "get"),
        ("/api/v1/chat/rooms/{id}/settings", "put"),
        ("/api/v1/chat/rooms/{id}/restrictions", "get"),
        ("/api/v1/chat/rooms/{id}/restrictions/{user_id}", "put"),
        ("/api/v1/chat/rooms/{id}/restrictions/{user_id}", "delete"),
        ("/api/v1/chat/rooms/{id}/moderation-log", "get"),
        ("/api/v1/chat/rooms/{id}/attachments", "post"),
        ("/api/v1/chat/attachments/{id}", "get"),
        ("/api/v1/chat/attachments/{id}/thumbnail", "get"),
        ("/api/v1/chat/rooms/{id}/questions", "get"),
        ("/api/v1/chat/rooms/{id}/questions", "post"),
        ("/api/v1/chat/rooms/{id}/pins", "get"),
        ("/api/v1/chat/rooms/{id}/wall", "get"),
        ("/api/v1/chat/rooms/{id}/announcements", "get"),
        ("/api/v1/chat/rooms/{id}/announcements", "post"),
        ("/api/v1/chat/messages/{id}/vote", "put"),
        ("/api/v1/chat/messages/{id}/vote", "delete"),
        ("/api/v1/chat/messages/{id}/answered", "put"),
        ("/api/v1/chat/messages/{id}/pin", "put"),
        ("/api/v1/chat/messages/{id}/pin", "delete"),
        ("/api/v1/chat/messages/{id}/wall", "put"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(op["responses"].get("default").is_some(), "{method} {path}");
    }
    let chat_paths = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        // Bots' routes are listed in `api_chat_bots.rs`.
        .filter(|p| p.starts_with("/api/v1/chat/") && !p.starts_with("/api/v1/chat/bot"))
        .count();
    assert_eq!(
        chat_paths, 27,
        "a chat route added here is listed above too"
    );
    // Both answers of a post and of a room creation are documented.
    for path in ["/api/v1/chat/rooms", "/api/v1/chat/rooms/{id}/messages"] {
        let responses = &doc["paths"][path]["post"]["responses"];
        assert!(responses.get("200").is_some() && responses.get("201").is_some());
    }
    app.shutdown().await;
}

/// The ids and names of the rooms the caller lists.
async fn listed(api: &Api) -> Vec<(i64, String)> {
    api.get("/chat/rooms").await.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (id_of(r), r["name"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn setup_makes_all_talk_for_every_staff_account_and_each_show_gets_a_room() {
    let app = TestApp::spawn().await;
    // First-run setup made "All Talk"; every staff account finds it on its first look.
    let all_talk_id = all_talk(&app).await;
    let admin_rooms = listed(&app.admin).await;
    assert_eq!(admin_rooms.len(), 1, "{admin_rooms:?}");
    let (all_talk, name) = admin_rooms[0].clone();
    assert_eq!((all_talk, name.as_str()), (all_talk_id, "All Talk"));
    let (owner, _, crew, crew_id, eid) = band(&app).await;
    assert!(listed(&crew).await.contains(&(all_talk, "All Talk".into())));
    post(&crew, all_talk, "hello-all", "hello everyone").await;
    let (aud, _) = app.user("aud2", "audience").await;
    aud.get("/chat/rooms").await.err(403, "forbidden");

    // A show's room is made with the show, for its ensemble's members.
    let piece = owner.published_piece(eid, "gig").await;
    let show = owner.show(piece, "performance").await;
    let show_id = id_of(&show);
    let rooms = crew.get("/chat/rooms").await.ok(200);
    let show_room = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["show_id"] == json!(show_id))
        .unwrap_or_else(|| panic!("no show room in {rooms}"))
        .clone();
    assert_eq!(show_room["kind"], "show");
    assert_eq!(show_room["read_only"], false);
    let room_id = id_of(&show_room);
    post(&crew, room_id, "c1", "house open").await;
    // Outsiders do not see it.
    let (outsider, _) = app.user("otto", "crew").await;
    outsider
        .get(&format!("/chat/rooms/{room_id}/events"))
        .await
        .err(404, "not_found");

    // It turns read-only as the show ends: posting is refused, nothing stored.
    owner.show_to(show_id, "live").await;
    owner.show_to(show_id, "ended").await;
    let room = crew.get(&format!("/chat/rooms/{room_id}")).await.ok(200);
    assert_eq!(room["read_only"], true);
    crew.post(
        &format!("/chat/rooms/{room_id}/messages"),
        json!({"client_message_id": "c2", "text": "after"}),
    )
    .await
    .err(409, "room_read_only");
    assert_eq!(kinds(&events(&crew, room_id, 0).await).len(), 1);
    let _ = crew_id;
}

// ---------------------------------------------------------------- moderation (item 8)

/// `PUT path body` as `api`.
async fn put(api: &Api, path: &str, body: Value) -> Res {
    api.req("PUT", path, Some(body), &[]).await
}

/// The actions of a room's moderation log, newest first, as (action, target).
async fn mod_log(api: &Api, room_id: i64) -> Vec<(String, Option<i64>)> {
    let page = api
        .get(&format!("/chat/rooms/{room_id}/moderation-log"))
        .await
        .ok(200);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target_user_id"].as_i64(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_muted_or_banned_user_cannot_post_and_only_moderators_moderate() {
    let app = TestApp::spawn().await;
    let (ann, ann_id) = app.user("ann", "crew").await;
    let (bob, bob_id) = app.user("bob", "crew").await;
    let (stranger, _) = app.user("sam", "crew").await;
    let admin_id = app.admin.get("/me").await.ok(200)["id"].as_i64().unwrap();
    let r = closed(&app.admin, &[ann_id, bob_id]).await;
    let restrict = |who: i64| format!("/chat/rooms/{r}/restrictions/{who}");

    // A member who does not moderate is 403; someone outside the room 404.
    put(&ann, &restrict(bob_id), json!({"kind": "ban"}))
        .await
        .err(403, "forbidden");
    put(&stranger, &restrict(bob_id), json!({"kind": "ban"}))
        .await
        .err(404, "not_found");
    ann.get(&format!("/chat/rooms/{r}/restrictions"))
        .await
        .err(403, "forbidden");
    ann.get(&format!("/chat/rooms/{r}/moderation-log"))
        .await
        .err(403, "forbidden");
    put(
        &ann,
        &format!("/chat/rooms/{r}/settings"),
        json!({"slow_mode_s": 5, "filter": []}),
    )
    .await
    .err(403, "forbidden");
    put(&app.admin, &restrict(bob_id), json!({"kind": "gag"}))
        .await
        .err(422, "validation_failed");

    // The admin mutes ann and bans bob.
    let m = put(
        &app.admin,
        &restrict(ann_id),
        json!({"kind": "mute", "reason": "shouting"}),
    )
    .await
    .ok(200);
    assert_eq!(m["kind"], "mute");
    assert_eq!(m["created_by"], admin_id);
    put(&app.admin, &restrict(bob_id), json!({"kind": "ban"}))
        .await
        .ok(200);
    ann.post(
        &format!("/chat/rooms/{r}/messages"),
        json!({"client_message_id": "a1", "text": "hello?"}),
    )
    .await
    .err(403, "muted");
    bob.post(
        &format!("/chat/rooms/{r}/messages"),
        json!({"client_message_id": "b1", "text": "hello?"}),
    )
    .await
    .err(403, "banned");
    // A banned user cannot read either; a muted one still reads.
    bob.get(&format!("/chat/rooms/{r}/events"))
        .await
        .err(403, "banned");
    ann.get(&format!("/chat/rooms/{r}/events")).await.ok(200);
    // A moderator (here the admin) cannot be restricted.
    put(&app.admin, &restrict(admin_id), json!({"kind": "mute"}))
        .await
        .err(409, "conflict");

    let list = app
        .admin
        .get(&format!("/chat/rooms/{r}/restrictions"))
        .await
        .ok(200);
    let kinds: Vec<(i64, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["user_id"].as_i64().unwrap(),
                x["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [(ann_id, "mute".to_owned()), (bob_id, "ban".to_owned())]
    );

    // Lifting the mute lets ann post; lifting nothing is 404.
    let lifted = app
        .admin
        .req(
            "DELETE",
            &format!("{}?reason=calm", restrict(ann_id)),
            None,
            &[],
        )
        .await
        .ok(200);
    assert_eq!(lifted["kind"], "mute");
    app.admin
        .req("DELETE", &restrict(ann_id), None, &[])
        .await
        .err(404, "not_found");
    post(&ann, r, "a2", "sorry").await;

    let log = mod_log(&app.admin, r).await;
    assert_eq!(
        log,
        [
            ("unrestricted".to_owned(), Some(ann_id)),
            ("restricted".to_owned(), Some(bob_id)),
            ("restricted".to_owned(), Some(ann_id)),
        ]
    );
    let page = app
        .admin
        .get(&format!("/chat/rooms/{r}/moderation-log?limit=1"))
        .await
        .ok(200);
    assert_eq!(page["items"][0]["reason"], "calm");
    assert_eq!(page["items"][0]["actor_id"], admin_id);
    assert!(page["next_before_id"].is_i64(), "{page}");

    // In a room of an ensemble, its crew moderates.
    let (owner, _, crew, _, eid) = band(&app).await;
    let open = room(
        &owner,
        json!({"kind": "open", "ensemble_id": eid, "name": "band"}),
    )
    .await;
    put(
        &crew,
        &format!("/chat/rooms/{open}/settings"),
        json!({"slow_mode_s": 2, "filter": ["boo"]}),
    )
    .await
    .ok(200);
    app.shutdown().await;
}

#[tokio::test]
async fn slow_mode_waits_by_the_api_clock_and_the_filter_refuses_words() {
    let clock = tutti_api::Clock::manual(tutti_api::now_ms());
    let c = clock.clone();
    let app =
        TestApp::spawn_with(move |cfg| cfg.api_clock = tutti_server::config::ApiClock(c)).await;
    let (ann, ann_id) = app.user("ann", "crew").await;
    let r = closed(&app.admin, &[ann_id]).await;
    let settings = put(
        &app.admin,
        &format!("/chat/rooms/{r}/settings"),
        json!({"slow_mode_s": 30, "filter": [" Spoiler ", "spoiler", "the end"]}),
    )
    .await
    .ok(200);
    assert_eq!(settings["filter"], json!(["Spoiler", "the end"]));
    // Readers see the slow mode, not the filter.
    let seen = ann.get(&format!("/chat/rooms/{r}/settings")).await.ok(200);
    assert_eq!(seen["slow_mode_s"], 30);
    assert!(seen["filter"].is_null(), "{seen}");

    post(&ann, r, "1", "first").await;
    let refused = ann
        .post(
            &format!("/chat/rooms/{r}/messages"),
            json!({"client_message_id": "2", "text": "second"}),
        )
        .await;
    let e = refused.err(429, "slow_mode");
    assert_eq!(e["details"]["retry_after_s"], 30);
    assert_eq!(e["details"]["slow_mode_s"], 30);
    assert_eq!(refused.header("retry-after"), Some("30"));
    clock.advance(29_000);
    let e = ann
        .post(
            &format!("/chat/rooms/{r}/messages"),
            json!({"client_message_id": "2", "text": "second"}),
        )
        .await
        .err(429, "slow_mode");
    assert_eq!(e["details"]["retry_after_s"], 1);
    clock.advance(1_000);
    post(&ann, r, "2", "second").await;
    // A retry of a committed send is answered, slow mode or not.
    let retry = ann
        .post(
            &format!("/chat/rooms/{r}/messages"),
            json!({"client_message_id": "2", "text": "second"}),
        )
        .await
        .ok(200);
    assert_eq!(retry["text"], "second");

    clock.advance(60_000);
    let e = ann
        .post(
            &format!("/chat/rooms/{r}/messages"),
            json!({"client_message_id": "3", "text": "a big SPOILER: The End."}),
        )
        .await
        .err(422, "filtered");
    assert_eq!(e["details"]["word"], "Spoiler");
    // A word inside another word is not filtered.
    post(&ann, r, "4", "spoilers ahead").await;
    // The admin moderates: no slow mode, no filter.
    post(&app.admin, r, "m1", "spoiler").await;
    post(&app.admin, r, "m2", "spoiler again").await;
    // Bad settings.
    put(
        &app.admin,
        &format!("/chat/rooms/{r}/settings"),
        json!({"slow_mode_s": 3601, "filter": ["!!"]}),
    )
    .await
    .err(422, "validation_failed");
    app.shutdown().await;
}

#[tokio::test]
async fn shadow_muted_posts_reach_their_author_and_moderators_and_removals_say_so() {
    let app = TestApp::spawn().await;
    let (ann, ann_id) = app.user("ann", "crew").await;
    let (bob, bob_id) = app.user("bob", "crew").await;
    let r = closed(&app.admin, &[ann_id, bob_id]).await;
    put(
        &app.admin,
        &format!("/chat/rooms/{r}/restrictions/{ann_id}"),
        json!({"kind": "shadow_mute"}),
    )
    .await
    .ok(200);
    let hidden = post(&ann, r, "s", "nobody sees this").await;
    assert_eq!(hidden["hidden"], true);
    let seen = post(&bob, r, "v", "everyone sees this").await;
    // The author and the moderator see both; bob only his own (seq 1 stays taken).
    assert_eq!(kinds(&events(&ann, r, 0).await).len(), 2);
    assert_eq!(kinds(&events(&app.admin, r, 0).await).len(), 2);
    let bobs = events(&bob, r, 0).await;
    assert_eq!(kinds(&bobs), [(2, "message_posted".to_owned())]);
    assert_eq!(bobs["next_after_seq"], 2);
    let listed = bob.get(&format!("/chat/rooms/{r}/messages")).await.ok(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(found(&bob, "nobody").await.is_empty());

    // A moderator's removal of bob's message is marked on its event and audited; bob's own
    // deletion is not.
    app.admin
        .req(
            "DELETE",
            &format!("/chat/messages/{}", id_of(&seen)),
            None,
            &[],
        )
        .await
        .ok(200);
    let own = post(&bob, r, "w", "mine").await;
    bob.req(
        "DELETE",
        &format!("/chat/messages/{}", id_of(&own)),
        None,
        &[],
    )
    .await
    .ok(200);
    let page = events(&bob, r, 2).await;
    let removed: Vec<(String, bool)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["moderated"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        removed,
        [
            ("message_deleted".to_owned(), true),
            ("message_posted".to_owned(), false),
            ("message_deleted".to_owned(), false),
        ]
    );
    let log = mod_log(&app.admin, r).await;
    assert_eq!(log[0], ("message_removed".to_owned(), Some(bob_id)));
    app.shutdown().await;
}
