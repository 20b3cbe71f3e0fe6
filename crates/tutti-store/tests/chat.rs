//! Integration tests for chat (issue 12, schema migration 7) against real SQLite files.
//!
//! Each test opens its own store in a temporary directory. What is asserted is what a reader
//! sees after the write was acknowledged, so it is what was committed; the reopen test closes
//! the store and opens the file again, and the `kill -9` test kills a child process that posts
//! (this test binary run again) and reopens what it left.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tempfile::TempDir;
use tokio::task::JoinSet;
use tutti_store::{
    ChatEvent, ChatEventKind, ChatRoomKind, ChatRoomRow, EnsembleRole, Involvement, NewChatMessage,
    NewChatRoom, NewPiece, NewShow, NewSpecDraft, NewUser, ShowKind, ShowStatus, Store,
    StoreConfig, StoreError, UserRole, ALL_TALK, AUDIENCE_PASSWORD_HASH, MAX_CHAT_TEXT_CHARS,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const T0: i64 = 1_700_000_000_000;

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("tutti.db")
}

fn open(dir: &TempDir) -> Store {
    Store::open(StoreConfig::new(db_path(dir))).expect("open store")
}

async fn user(store: &Store, name: &str) -> i64 {
    store
        .create_user(NewUser {
            username: name.into(),
            display_name: name.into(),
            password_hash: HASH.into(),
            role: UserRole::Crew,
            at_ms: T0,
        })
        .await
        .expect("create user")
        .id
}

/// A closed room with these members.
async fn room(store: &Store, name: &str, members: &[i64]) -> ChatRoomRow {
    store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Closed,
            ensemble_id: None,
            show_id: None,
            name: Some(name.into()),
            created_by: members.first().copied(),
            members: members.to_vec(),
            at_ms: T0,
        })
        .await
        .expect("create room")
}

fn msg(room_id: i64, author_id: i64, id: &str, text: &str) -> NewChatMessage {
    NewChatMessage {
        room_id,
        author_id,
        client_message_id: id.into(),
        text: text.into(),
        reply_to: None,
        at_ms: T0 + 1,
    }
}

async fn all_events(store: &Store, room_id: i64) -> Vec<ChatEvent> {
    store
        .chat_events_after(room_id, 0, 1000)
        .await
        .expect("events")
        .events
}

fn seqs(events: &[ChatEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_get_a_gap_free_sequence() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let mut people = Vec::new();
    for i in 0..8 {
        people.push(user(&store, &format!("u{i}")).await);
    }
    let room = room(&store, "crew", &people).await;
    let room_id = room.id;

    let mut tasks = JoinSet::new();
    for (t, &author) in people.iter().enumerate() {
        let store = store.clone();
        tasks.spawn(async move {
            let mut got = Vec::new();
            for i in 0..25 {
                let posted = store
                    .chat_post(msg(
                        room_id,
                        author,
                        &format!("t{t}-{i}"),
                        &format!("hi {t} {i}"),
                    ))
                    .await
                    .expect("post");
                assert!(!posted.duplicate);
                got.push(posted.seq);
            }
            got
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done.expect("task"));
    }
    acked.sort_unstable();
    let expected: Vec<u64> = (1..=200).collect();
    assert_eq!(
        acked, expected,
        "every acknowledged seq is distinct, 1..=200"
    );

    let events = all_events(&store, room.id).await;
    assert_eq!(seqs(&events), expected, "the log has no gaps");
    assert!(events
        .iter()
        .all(|e| e.kind == ChatEventKind::MessagePosted));
    // Each author's own posts appear in the order they were acknowledged.
    for (t, &author) in people.iter().enumerate() {
        let mine: Vec<&str> = events
            .iter()
            .filter(|e| e.author_id == author)
            .map(|e| e.client_message_id.as_str())
            .collect();
        let want: Vec<String> = (0..25).map(|i| format!("t{t}-{i}")).collect();
        assert_eq!(mine, want);
    }
    let head = store
        .chat_room(room.id)
        .await
        .expect("room")
        .expect("exists");
    assert_eq!(head.last_seq, 200);
}

#[tokio::test]
async fn a_retried_send_returns_the_original() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let room = room(&store, "r", &[ana]).await;

    let first = store
        .chat_post(msg(room.id, ana, "c-1", "hello"))
        .await
        .expect("post");
    assert!(!first.duplicate);
    let again = store
        .chat_post(msg(room.id, ana, "c-1", "a different text"))
        .await
        .expect("retry");
    assert!(again.duplicate);
    assert_eq!(again.seq, first.seq);
    assert_eq!(again.message, first.message);
    assert_eq!(again.message.text, "hello", "the first send wins");
    assert_eq!(
        all_events(&store, room.id).await.len(),
        1,
        "nothing written"
    );

    // The same client id from another author, or in another room, is another message.
    let bo = user(&store, "bo").await;
    store
        .chat_add_member(room.id, bo, Involvement::Everything, T0)
        .await
        .expect("join");
    let other = store
        .chat_post(msg(room.id, bo, "c-1", "mine"))
        .await
        .expect("bo posts");
    assert!(!other.duplicate);
    assert_eq!(other.seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_make_exactly_one_message() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let room = room(&store, "r", &[ana]).await;

    let room_id = room.id;
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .chat_post(msg(room_id, ana, "same-id", "once"))
                .await
                .expect("post")
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("task"));
    }
    assert_eq!(answers.iter().filter(|a| !a.duplicate).count(), 1);
    let ids: BTreeSet<i64> = answers.iter().map(|a| a.message.id).collect();
    assert_eq!(ids.len(), 1, "every answer names the one message");
    assert!(answers.iter().all(|a| a.seq == 1));
    let events = all_events(&store, room.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        store
            .chat_messages(room.id, None, 100)
            .await
            .expect("messages")
            .len(),
        1
    );
}

#[tokio::test]
async fn catch_up_returns_exactly_the_missed_events_in_order() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let bo = user(&store, "bo").await;
    let room = room(&store, "r", &[ana, bo]).await;

    let m1 = store
        .chat_post(msg(room.id, ana, "a1", "first"))
        .await
        .expect("post");
    let m2 = store
        .chat_post(msg(room.id, ana, "a2", "second"))
        .await
        .expect("post");
    // Bo saw everything up to here, then went away.
    let seen = m2.seq;

    let boosted = store
        .chat_boost(m1.message.id, ana, "👏", T0 + 2)
        .await
        .expect("boost");
    let edited = store
        .chat_edit(m1.message.id, ana, "first (fixed)", T0 + 3)
        .await
        .expect("edit");
    let m3 = store
        .chat_post(NewChatMessage {
            reply_to: Some(m1.message.id),
            ..msg(room.id, ana, "a3", "third")
        })
        .await
        .expect("post");
    let unboosted = store
        .chat_unboost(m1.message.id, ana, "👏", T0 + 4)
        .await
        .expect("unboost");
    let deleted = store
        .chat_delete(m2.message.id, bo, T0 + 5)
        .await
        .expect("delete");

    let page = store
        .chat_events_after(room.id, seen, 100)
        .await
        .expect("catch up");
    assert!(!page.more);
    assert_eq!(page.head_seq, 7);
    let got: Vec<(u64, ChatEventKind, i64)> = page
        .events
        .iter()
        .map(|e| (e.seq, e.kind, e.message_id))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, ChatEventKind::BoostAdded, m1.message.id),
            (4, ChatEventKind::MessageEdited, m1.message.id),
            (5, ChatEventKind::MessagePosted, m3.message.id),
            (6, ChatEventKind::BoostRemoved, m1.message.id),
            (7, ChatEventKind::MessageDeleted, m2.message.id),
        ]
    );
    assert_eq!(page.events[0], boosted);
    assert_eq!(page.events[1], edited);
    assert_eq!(page.events[3], unboosted);
    assert_eq!(page.events[4], deleted);
    assert_eq!(page.events[0].boost.as_deref(), Some("👏"));
    assert_eq!(page.events[1].text.as_deref(), Some("first (fixed)"));
    assert_eq!(page.events[2].reply_to, Some(m1.message.id));
    assert_eq!(page.events[4].actor_id, bo, "who deleted it is stored");

    // The deleted text is gone from its earlier event too, the sequence keeps its place.
    let all = all_events(&store, room.id).await;
    assert_eq!(seqs(&all), (1..=7).collect::<Vec<_>>());
    assert_eq!(all[1].kind, ChatEventKind::MessagePosted);
    assert_eq!(all[1].text, None);
    let gone = store
        .chat_message(m2.message.id)
        .await
        .expect("read")
        .expect("row stays");
    assert_eq!(gone.text, "");
    assert_eq!(gone.deleted_by, Some(bo));
    let edited_row = store
        .chat_message(m1.message.id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(edited_row.edited_by, Some(ana));
    assert_eq!(edited_row.last_seq, 6);

    // Caught up: nothing more.
    let none = store
        .chat_events_after(room.id, 7, 100)
        .await
        .expect("nothing new");
    assert!(none.events.is_empty());
    assert!(!none.more);
}

#[tokio::test]
async fn catch_up_pages_without_loss_or_repeats() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let room = room(&store, "r", &[ana]).await;
    for i in 0..23 {
        let p = store
            .chat_post(msg(room.id, ana, &format!("m{i}"), &format!("message {i}")))
            .await
            .expect("post");
        if i % 5 == 0 {
            store
                .chat_edit(p.message.id, ana, "edited", T0 + 9)
                .await
                .expect("edit");
        }
    }
    let total = 23 + 5;
    let mut after = 0;
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let page = store
            .chat_events_after(room.id, after, 4)
            .await
            .expect("page");
        pages += 1;
        assert!(page.events.len() <= 4);
        got.extend(page.events.iter().map(|e| e.seq));
        if let Some(last) = page.events.last() {
            after = last.seq;
        }
        if !page.more {
            break;
        }
    }
    assert_eq!(got, (1..=total).collect::<Vec<u64>>());
    assert_eq!(pages, 7);

    // A page limit out of range is refused.
    let err = store
        .chat_events_after(room.id, 0, 0)
        .await
        .expect_err("limit 0");
    assert!(
        matches!(err, StoreError::Invalid { field: "limit", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_sequence_from_the_future_is_refused() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let room = room(&store, "r", &[ana]).await;
    store
        .chat_post(msg(room.id, ana, "a", "one"))
        .await
        .expect("post");
    let err = store
        .chat_events_after(room.id, 2, 10)
        .await
        .expect_err("future");
    match &err {
        StoreError::Invalid { field, reason, .. } => {
            assert_eq!(*field, "after_seq");
            assert!(
                reason.contains("future") && reason.contains("seq 1"),
                "{reason}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let err = store
        .chat_events_after(room.id, u64::MAX, 10)
        .await
        .expect_err("far future");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    let err = store
        .chat_mark_read(room.id, ana, 5)
        .await
        .expect_err("future read mark");
    assert!(
        matches!(err, StoreError::Invalid { field: "seq", .. }),
        "{err}"
    );
    let err = store
        .chat_events_after(room.id + 100, 0, 10)
        .await
        .expect_err("unknown room");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "chat room",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let bo = user(&store, "bo").await;
    let room = room(&store, "r", &[ana]).await;

    let long = "é".repeat(MAX_CHAT_TEXT_CHARS + 1);
    let fits = "é".repeat(MAX_CHAT_TEXT_CHARS);
    for (text, what) in [
        ("", "empty"),
        ("  \n\t ", "blank"),
        (long.as_str(), "too long"),
        ("bell \u{7}", "control"),
        ("nul \u{0}", "nul"),
    ] {
        let err = store
            .chat_post(msg(room.id, ana, "x", text))
            .await
            .expect_err(what);
        assert!(
            matches!(err, StoreError::Invalid { field: "text", .. }),
            "{what}: {err}"
        );
    }
    for id in ["", "has space", "ü", &"x".repeat(65)] {
        let err = store
            .chat_post(msg(room.id, ana, id, "hi"))
            .await
            .expect_err("bad client id");
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "client_message_id",
                    ..
                }
            ),
            "{id:?}: {err}"
        );
    }
    // Not a member, unknown room.
    let err = store
        .chat_post(msg(room.id, bo, "b", "hi"))
        .await
        .expect_err("not a member");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "room membership",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .chat_post(msg(room.id + 9, ana, "b", "hi"))
        .await
        .expect_err("no room");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(
        all_events(&store, room.id).await.is_empty(),
        "nothing stored"
    );
    assert_eq!(
        store
            .chat_room(room.id)
            .await
            .expect("room")
            .expect("exists")
            .last_seq,
        0,
        "no sequence number was used up"
    );

    // 4,000 characters (8,000 bytes) fit.
    let p = store
        .chat_post(msg(room.id, ana, "ok", &fits))
        .await
        .expect("4000 chars");
    assert_eq!(p.seq, 1);

    // Boosts: at most 16 characters, once per user and content.
    let err = store
        .chat_boost(p.message.id, ana, &"x".repeat(17), T0)
        .await
        .expect_err("long boost");
    assert!(
        matches!(err, StoreError::Invalid { field: "boost", .. }),
        "{err}"
    );
    store
        .chat_boost(p.message.id, ana, &"🎉".repeat(16), T0)
        .await
        .expect("16 characters");
    store
        .chat_boost(p.message.id, ana, "+1", T0)
        .await
        .expect("boost");
    let err = store
        .chat_boost(p.message.id, ana, "+1", T0)
        .await
        .expect_err("same boost twice");
    assert!(
        matches!(err, StoreError::Conflict { what: "boost", .. }),
        "{err}"
    );
    let err = store
        .chat_unboost(p.message.id, ana, "nope", T0)
        .await
        .expect_err("no such boost");
    assert!(
        matches!(err, StoreError::NotFound { what: "boost", .. }),
        "{err}"
    );
    assert_eq!(
        store.chat_boosts(p.message.id).await.expect("boosts").len(),
        2
    );
    assert_eq!(
        all_events(&store, room.id).await.len(),
        3,
        "post and two boosts"
    );

    // A read-only room refuses posts, edits and boosts but still allows deletion.
    store
        .chat_set_read_only(room.id, true)
        .await
        .expect("read-only");
    let err = store
        .chat_post(msg(room.id, ana, "late", "hi"))
        .await
        .expect_err("read-only");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "read-only room",
                ..
            }
        ),
        "{err}"
    );
    // ... but a retry of a send made before still gets its original answer.
    let retry = store
        .chat_post(msg(room.id, ana, "ok", &fits))
        .await
        .expect("retry");
    assert!(retry.duplicate);
    let err = store
        .chat_edit(p.message.id, ana, "changed", T0)
        .await
        .expect_err("read-only edit");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "read-only room",
                ..
            }
        ),
        "{err}"
    );
    store
        .chat_delete(p.message.id, ana, T0)
        .await
        .expect("delete in a read-only room");
    assert!(store
        .chat_boosts(p.message.id)
        .await
        .expect("boosts")
        .is_empty());
    let err = store
        .chat_delete(p.message.id, ana, T0)
        .await
        .expect_err("twice");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "deleted message",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(seqs(&all_events(&store, room.id).await), vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn rooms_memberships_and_unread() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let bo = user(&store, "bo").await;
    let cy = user(&store, "cy").await;

    // Direct rooms: one per exact set of people, in any order.
    let (d1, created) = store
        .chat_direct_room(&[bo, ana], Some(ana), T0)
        .await
        .expect("direct");
    assert!(created);
    assert_eq!(d1.kind, ChatRoomKind::Direct);
    let (d2, created) = store
        .chat_direct_room(&[ana, bo, ana], Some(bo), T0)
        .await
        .expect("again");
    assert!(!created);
    assert_eq!(d2.id, d1.id);
    let (d3, created) = store
        .chat_direct_room(&[ana, bo, cy], Some(cy), T0)
        .await
        .expect("a group");
    assert!(created);
    assert_ne!(d3.id, d1.id);
    let err = store
        .chat_direct_room(&[ana, ana], None, T0)
        .await
        .expect_err("one person");
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "members",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .chat_add_member(d1.id, cy, Involvement::Everything, T0)
        .await
        .expect_err("direct members are fixed");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "direct room",
                ..
            }
        ),
        "{err}"
    );

    // An open room needs its ensemble; a show room its show, once.
    let err = store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Open,
            ensemble_id: None,
            show_id: None,
            name: Some("All Talk".into()),
            created_by: None,
            members: vec![],
            at_ms: T0,
        })
        .await
        .expect_err("open without ensemble");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    let ensemble = store
        .create_ensemble("band", "Band", ana, T0)
        .await
        .expect("ensemble");
    let open_room = store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Open,
            ensemble_id: Some(ensemble.id),
            show_id: None,
            name: Some("All Talk".into()),
            created_by: Some(ana),
            members: vec![ana, bo],
            at_ms: T0,
        })
        .await
        .expect("open room");
    assert_eq!(open_room.ensemble_id, Some(ensemble.id));
    let (piece, spec) = store
        .ensure_piece("demo", "Demo", "{}")
        .await
        .expect("piece");
    let show = store
        .create_show(piece.id, spec.id, "SHOW1", ShowKind::Performance)
        .await
        .expect("show");
    let show_room = NewChatRoom {
        kind: ChatRoomKind::Show,
        ensemble_id: None,
        show_id: Some(show.id),
        name: Some("Tonight".into()),
        created_by: None,
        members: vec![],
        at_ms: T0,
    };
    // A show's room is made with the show (migration 8): a second one is refused.
    let made = store
        .chat_show_room(show.id)
        .await
        .expect("read")
        .expect("the show's room");
    assert_eq!(made.kind, ChatRoomKind::Show);
    assert!(!made.read_only);
    let err = store
        .chat_create_room(show_room)
        .await
        .expect_err("second show room");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "show room",
                ..
            }
        ),
        "{err}"
    );

    // Unread: others' messages after the read mark, deleted ones not counted.
    for i in 0..3 {
        store
            .chat_post(msg(open_room.id, ana, &format!("a{i}"), "news"))
            .await
            .expect("post");
    }
    store
        .chat_post(msg(open_room.id, bo, "b0", "mine"))
        .await
        .expect("own post");
    let unread = |listing: &[tutti_store::ChatRoomListing], id: i64| {
        listing
            .iter()
            .find(|l| l.room.id == id)
            .map(|l| l.unread)
            .expect("listed")
    };
    let list = store.chat_rooms_of(bo).await.expect("bo's rooms");
    assert_eq!(
        list.iter().map(|l| l.room.id).collect::<Vec<_>>(),
        vec![d1.id, d3.id, open_room.id]
    );
    assert_eq!(unread(&list, open_room.id), 3);
    store
        .chat_mark_read(open_room.id, bo, 2)
        .await
        .expect("read two");
    // The mark never moves back.
    let member = store
        .chat_mark_read(open_room.id, bo, 1)
        .await
        .expect("older mark");
    assert_eq!(member.last_read_seq, 2);
    assert_eq!(
        unread(&store.chat_rooms_of(bo).await.expect("rooms"), open_room.id),
        1
    );
    let member = store
        .chat_set_involvement(open_room.id, bo, Involvement::Invisible)
        .await
        .expect("involvement");
    assert_eq!(member.involvement, Involvement::Invisible);
    store
        .chat_remove_member(open_room.id, bo)
        .await
        .expect("leave");
    assert_eq!(store.chat_rooms_of(bo).await.expect("rooms").len(), 2);
    let err = store
        .chat_remove_member(open_room.id, bo)
        .await
        .expect_err("not a member any more");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let members = store.chat_members(open_room.id).await.expect("members");
    assert_eq!(
        members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![ana]
    );
}

/// Rooms where `searcher` is a member and one where only others are, each with a message
/// holding the same word.
#[tokio::test]
async fn search_sees_only_the_searchers_rooms() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let bo = user(&store, "bo").await;
    let mine = room(&store, "mine", &[ana, bo]).await;
    let theirs = room(&store, "theirs", &[bo]).await;
    let (direct, _) = store
        .chat_direct_room(&[ana, bo], None, T0)
        .await
        .expect("direct");

    let visible = store
        .chat_post(msg(mine.id, bo, "1", "the **secret** soundcheck is at six"))
        .await
        .expect("post");
    store
        .chat_post(msg(theirs.id, bo, "2", "a secret only bo may read"))
        .await
        .expect("post");
    let dm = store
        .chat_post(msg(direct.id, ana, "3", "secret plans, secret secret"))
        .await
        .expect("post");
    let deleted = store
        .chat_post(msg(mine.id, ana, "4", "secret to delete"))
        .await
        .expect("post");
    store
        .chat_delete(deleted.message.id, ana, T0)
        .await
        .expect("delete");

    let hits = store.chat_search(ana, "secret", 100).await.expect("search");
    let found: BTreeSet<i64> = hits.iter().map(|h| h.message_id).collect();
    assert_eq!(found, BTreeSet::from([visible.message.id, dm.message.id]));
    // Ranked: the message that says it three times comes first.
    assert_eq!(hits[0].message_id, dm.message.id);
    assert!(hits[0].rank <= hits[1].rank);
    let marked: Vec<&str> = hits[1]
        .snippet
        .iter()
        .filter(|p| p.highlighted)
        .map(|p| p.text.as_str())
        .collect();
    assert_eq!(marked, vec!["secret"]);
    let whole: String = hits[1].snippet.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(whole, "the **secret** soundcheck is at six");

    // Bo sees all three rooms; a stranger nothing.
    assert_eq!(
        store
            .chat_search(bo, "secret", 100)
            .await
            .expect("bo")
            .len(),
        3
    );
    let cy = user(&store, "cy").await;
    assert!(store
        .chat_search(cy, "secret", 100)
        .await
        .expect("cy")
        .is_empty());
    // Leaving a room takes its messages out of one's results.
    store.chat_remove_member(mine.id, ana).await.expect("leave");
    let hits = store.chat_search(ana, "secret", 100).await.expect("search");
    assert_eq!(
        hits.iter().map(|h| h.message_id).collect::<Vec<_>>(),
        vec![dm.message.id]
    );
    // An edit replaces the indexed text.
    store
        .chat_edit(dm.message.id, ana, "nothing to see", T0)
        .await
        .expect("edit");
    assert!(store
        .chat_search(ana, "secret", 100)
        .await
        .expect("search")
        .is_empty());
    assert_eq!(
        store
            .chat_search(ana, "nothing", 100)
            .await
            .expect("search")
            .len(),
        1
    );
}

#[tokio::test]
async fn hostile_search_strings_never_break_the_query() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let room = room(&store, "r", &[ana]).await;
    for (i, text) in [
        "rock AND roll tonight",
        "say \"hello\" to NEAR the stage",
        "c++ (and) 50% off*",
        "NOT a drill",
        "caret ^start",
    ]
    .iter()
    .enumerate()
    {
        store
            .chat_post(msg(room.id, ana, &format!("m{i}"), text))
            .await
            .expect("post");
    }

    // (query, how many messages it must find)
    let table: &[(&str, usize)] = &[
        ("rock AND roll", 1),
        ("AND", 2), // "AND" in message 0, "(and)" in message 2: searched as a word
        ("OR", 0),
        ("NOT", 1),
        ("NOT drill", 1),
        ("NEAR", 1),
        ("NEAR(rock roll)", 0),
        ("\"hello", 1),
        ("hello\"", 1),
        ("\"\"hello\"\"", 1),
        ("'hello'", 1), // quotes are not part of a word
        ("(and", 2),
        ("roll)", 1),
        ("((((rock", 1),
        ("off*", 1),
        ("of*", 0), // no prefix matching: `*` is not an operator
        ("^start", 1),
        ("caret:start", 1), // a phrase of two words, not a column filter
        ("body:rock", 0),
        ("{body}: rock", 0), // "body" is a word no message holds
        ("rock -roll", 1),
        ("c++", 1), // the word "c"
        ("50%", 1),
        ("drill\u{0}NOT", 1),
        ("ROCK", 1),
    ];
    for (query, want) in table {
        let hits = store
            .chat_search(ana, query, 100)
            .await
            .unwrap_or_else(|e| panic!("query {query:?} failed: {e}"));
        assert_eq!(hits.len(), *want, "query {query:?}");
    }

    // Strings without a word are a clear error, never an FTS5 syntax error.
    for query in [
        "",
        "   ",
        "*",
        "\"",
        "\"\"",
        "()",
        ")(",
        "^",
        "* ^ ( ) \" : -",
        "\u{0}",
    ] {
        let err = store
            .chat_search(ana, query, 100)
            .await
            .expect_err("no words");
        match &err {
            StoreError::Invalid { field, reason, .. } => {
                assert_eq!(*field, "query", "{query:?}");
                assert!(reason.contains("no word"), "{query:?}: {reason}");
            }
            other => panic!("{query:?}: expected Invalid, got {other:?}"),
        }
    }
    let err = store
        .chat_search(ana, &"a".repeat(501), 10)
        .await
        .expect_err("too long");
    assert!(
        matches!(err, StoreError::Invalid { field: "query", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn recent_searches_keep_the_last_ten_distinct() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let bo = user(&store, "bo").await;
    for i in 0..12 {
        store
            .chat_record_search(ana, &format!("  query {i} "), T0 + i)
            .await
            .expect("record");
    }
    store
        .chat_record_search(ana, "query 5", T0 + 100)
        .await
        .expect("again");
    store
        .chat_record_search(bo, "bo's own", T0)
        .await
        .expect("bo");
    let recent = store.chat_recent_searches(ana).await.expect("recent");
    let queries: Vec<&str> = recent.iter().map(|r| r.query.as_str()).collect();
    assert_eq!(
        queries,
        vec![
            "query 5", "query 11", "query 10", "query 9", "query 8", "query 7", "query 6",
            "query 4", "query 3", "query 2"
        ]
    );
    let err = store
        .chat_record_search(ana, "**", T0)
        .await
        .expect_err("no words");
    assert!(
        matches!(err, StoreError::Invalid { field: "query", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn open_rooms_to_join_are_those_of_the_users_ensembles_not_yet_joined() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (owner, later, outsider) = (
        user(&store, "owner").await,
        user(&store, "later").await,
        user(&store, "outsider").await,
    );
    let band = store
        .create_ensemble("band", "Band", owner, T0)
        .await
        .unwrap();
    let other = store
        .create_ensemble("other", "Other", outsider, T0)
        .await
        .unwrap();
    let open_room = |ensemble_id: i64, members: Vec<i64>| NewChatRoom {
        kind: ChatRoomKind::Open,
        ensemble_id: Some(ensemble_id),
        show_id: None,
        name: Some("all".into()),
        created_by: Some(owner),
        members,
        at_ms: T0,
    };
    let a = store
        .chat_create_room(open_room(band.id, vec![owner]))
        .await
        .unwrap();
    let b = store
        .chat_create_room(open_room(band.id, vec![]))
        .await
        .unwrap();
    store
        .chat_create_room(open_room(other.id, vec![]))
        .await
        .unwrap();
    // A closed room of the ensemble is not for everyone.
    store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Closed,
            ..open_room(band.id, vec![])
        })
        .await
        .unwrap();
    assert_eq!(
        store.chat_open_rooms_to_join(owner).await.unwrap(),
        vec![b.id]
    );
    assert!(store
        .chat_open_rooms_to_join(later)
        .await
        .unwrap()
        .is_empty());
    store
        .add_member(band.id, later, EnsembleRole::Crew, T0)
        .await
        .unwrap();
    assert_eq!(
        store.chat_open_rooms_to_join(later).await.unwrap(),
        vec![a.id, b.id]
    );
    store
        .chat_add_member(a.id, later, Involvement::Everything, T0)
        .await
        .unwrap();
    assert_eq!(
        store.chat_open_rooms_to_join(later).await.unwrap(),
        vec![b.id]
    );
}

#[tokio::test]
async fn everything_survives_close_and_reopen() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let ana = user(&store, "ana").await;
    let bo = user(&store, "bo").await;
    let room = room(&store, "r", &[ana, bo]).await;
    let p = store
        .chat_post(msg(room.id, ana, "a", "kept across restarts"))
        .await
        .expect("post");
    store
        .chat_boost(p.message.id, bo, "🔥", T0)
        .await
        .expect("boost");
    store.chat_mark_read(room.id, bo, 2).await.expect("read");
    store
        .chat_record_search(bo, "restarts", T0)
        .await
        .expect("recent");
    let before = all_events(&store, room.id).await;
    store.close().await.expect("close");

    let store = open(&dir);
    assert_eq!(all_events(&store, room.id).await, before);
    assert_eq!(
        store
            .chat_member(room.id, bo)
            .await
            .expect("member")
            .expect("exists")
            .last_read_seq,
        2
    );
    assert_eq!(
        store.chat_boosts(p.message.id).await.expect("boosts").len(),
        1
    );
    assert_eq!(
        store
            .chat_search(bo, "restarts", 10)
            .await
            .expect("search")
            .len(),
        1
    );
    assert_eq!(
        store.chat_recent_searches(bo).await.expect("recent").len(),
        1
    );
    // The retry after a restart still finds the original; the sequence continues.
    let retry = store
        .chat_post(msg(room.id, ana, "a", "kept across restarts"))
        .await
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!(retry.message.id, p.message.id);
    let next = store
        .chat_post(msg(room.id, bo, "b", "after"))
        .await
        .expect("post");
    assert_eq!(next.seq, 3);
    store.close().await.expect("close");
}

const KILL9_CHILD_ENV: &str = "TUTTI_STORE_CHAT_KILL9_CHILD";
const KILL9_TEST: &str = "kill9_keeps_every_acknowledged_message_and_no_gap";
const KILL9_AFTER: usize = 300;
const KILL9_TASKS: i64 = 4;

/// The child: posts from several tasks until killed, printing `ACK task n seq` after each
/// acknowledgement.
fn kill9_child(arg: &str) {
    let (path, ids) = arg.split_once('|').expect("PATH|ROOM,AUTHOR");
    let (room_id, author) = ids.split_once(',').expect("ROOM,AUTHOR");
    let (room_id, author): (i64, i64) = (
        room_id.parse().expect("room"),
        author.parse().expect("author"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(StoreConfig::new(path)).expect("child opens store");
        let mut tasks = JoinSet::new();
        for task in 0..KILL9_TASKS {
            let store = store.clone();
            tasks.spawn(async move {
                for n in 0..100_000 {
                    let posted = store
                        .chat_post(msg(room_id, author, &format!("t{task}-{n}"), "still here?"))
                        .await
                        .expect("post acknowledged");
                    println!("ACK {task} {n} {}", posted.seq);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("posting task");
        }
    });
}

/// Notes one `ACK task n seq` line of the child as client message id → seq.
fn record_ack(acked: &mut BTreeMap<String, u64>, line: &str) {
    let Some(rest) = line.strip_prefix("ACK ") else {
        return;
    };
    let parts: Vec<&str> = rest.split(' ').collect();
    let seq = parts[2].parse().expect("seq");
    acked.insert(format!("t{}-{}", parts[0], parts[1]), seq);
}

#[test]
fn kill9_keeps_every_acknowledged_message_and_no_gap() {
    if let Ok(arg) = std::env::var(KILL9_CHILD_ENV) {
        kill9_child(&arg);
        return;
    }
    let dir = TempDir::new().expect("temp dir");
    let path = db_path(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (room_id, author) = rt.block_on(async {
        let store = open(&dir);
        let ana = user(&store, "ana").await;
        let room = room(&store, "r", &[ana]).await;
        store.close().await.expect("close");
        (room.id, ana)
    });

    let mut proc = Command::new(std::env::current_exe().expect("test binary"))
        .args([KILL9_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(
            KILL9_CHILD_ENV,
            format!("{}|{room_id},{author}", path.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(proc.stdout.take().expect("child stdout")).lines();
    // client message id → acknowledged seq
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    for line in lines.by_ref() {
        record_ack(&mut acked, &line.expect("read child stdout"));
        if acked.len() >= KILL9_AFTER {
            break;
        }
    }
    // `Child::kill` sends SIGKILL on Unix.
    proc.kill().expect("SIGKILL the child");
    // What the child printed before it died is acknowledged too.
    for line in lines {
        record_ack(&mut acked, &line.expect("read child stdout"));
    }
    let status = proc.wait().expect("wait child");
    assert_eq!(
        status.signal(),
        Some(9),
        "child must die by SIGKILL, got {status}"
    );
    assert!(
        acked.len() >= KILL9_AFTER,
        "child stopped early: {}",
        acked.len()
    );

    rt.block_on(async {
        let store = open(&dir);
        let head = store
            .chat_room(room_id)
            .await
            .expect("room")
            .expect("exists")
            .last_seq;
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = store
                .chat_events_after(room_id, after, 1000)
                .await
                .expect("events");
            events.extend(page.events);
            after = events.last().map_or(0, |e| e.seq);
            if !page.more {
                break;
            }
        }
        assert_eq!(
            seqs(&events),
            (1..=head).collect::<Vec<u64>>(),
            "no gap after a crash"
        );
        let stored: BTreeMap<&str, u64> = events
            .iter()
            .map(|e| (e.client_message_id.as_str(), e.seq))
            .collect();
        for (id, seq) in &acked {
            assert_eq!(
                stored.get(id.as_str()),
                Some(seq),
                "acknowledged {id} at {seq}"
            );
        }
        // A client retrying an acknowledged send after the crash gets its original answer.
        let (id, seq) = acked.iter().next().expect("some ack");
        let retry = store
            .chat_post(msg(room_id, author, id, "still here?"))
            .await
            .expect("retry");
        assert!(retry.duplicate);
        assert_eq!(retry.seq, *seq);
        store.close().await.expect("close");
    });
}

/// An ensemble owned by `owner` with `crew` in it, a piece with a published spec, and a show of
/// it (migration 8: the show's room is made with it).
async fn ensemble_show(store: &Store, owner: i64, crew: i64, code: &str) -> (i64, i64) {
    let ens = store
        .create_ensemble(&format!("ens-{code}").to_lowercase(), "Band", owner, T0)
        .await
        .expect("ensemble");
    store
        .add_member(ens.id, crew, EnsembleRole::Crew, T0)
        .await
        .expect("crew member");
    let piece = store
        .create_piece(NewPiece {
            ensemble_id: ens.id,
            slug: format!("piece-{code}").to_lowercase(),
            title: "Piece".into(),
            at_ms: T0,
        })
        .await
        .expect("piece");
    let v = store
        .create_spec_draft(NewSpecDraft {
            piece_id: piece.id,
            spec_json: r#"{"params":[]}"#.into(),
            created_by: None,
            note: None,
            at_ms: T0,
        })
        .await
        .expect("draft")
        .version;
    store.publish_spec(piece.id, v, T0).await.expect("publish");
    let show = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: None,
            code: code.into(),
            kind: ShowKind::Performance,
            at_ms: T0,
        })
        .await
        .expect("show");
    (ens.id, show.id)
}

#[tokio::test]
async fn a_show_gets_its_room_with_its_staff_and_the_room_turns_read_only_as_the_show_ends() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let owner = user(&store, "owner").await;
    let crew = user(&store, "crew").await;
    let later = user(&store, "later").await;
    let (ens, show) = ensemble_show(&store, owner, crew, "GIG1").await;

    let room = store
        .chat_show_room(show)
        .await
        .expect("read")
        .expect("made with the show");
    assert_eq!(room.kind, ChatRoomKind::Show);
    assert_eq!(room.ensemble_id, Some(ens));
    assert_eq!(room.name.as_deref(), Some("Show GIG1"));
    assert!(!room.read_only);
    let members: Vec<i64> = store
        .chat_members(room.id)
        .await
        .expect("members")
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(members, vec![owner, crew]);

    // Who joins the ensemble later finds the show's room among the rooms to join.
    assert!(!store
        .chat_open_rooms_to_join(later)
        .await
        .expect("to join")
        .contains(&room.id));
    store
        .add_member(ens, later, EnsembleRole::Performer, T0)
        .await
        .expect("join ensemble");
    assert!(store
        .chat_open_rooms_to_join(later)
        .await
        .expect("to join")
        .contains(&room.id));

    store
        .chat_post(msg(room.id, crew, "c1", "doors open"))
        .await
        .expect("post while scheduled");
    store
        .set_show_status(show, ShowStatus::Live, T0 + 5)
        .await
        .expect("live");
    assert!(!store.chat_room(room.id).await.unwrap().unwrap().read_only);
    store
        .set_show_status(show, ShowStatus::Ended, T0 + 10)
        .await
        .expect("end");
    let ended = store.chat_room(room.id).await.unwrap().unwrap();
    assert!(
        ended.read_only,
        "read-only in the savepoint that ended the show"
    );
    let err = store
        .chat_post(msg(room.id, crew, "c2", "too late"))
        .await
        .expect_err("read-only");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "read-only room",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(all_events(&store, room.id).await.len(), 1);
}

#[tokio::test]
async fn audience_identities_are_one_per_guest_never_sign_in_and_join_their_shows_room_to_chat() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    let owner = user(&store, "owner").await;
    let crew = user(&store, "crew").await;
    let (_, show) = ensemble_show(&store, owner, crew, "GIG2").await;
    let (_, other_show) = ensemble_show(&store, owner, crew, "GIG3").await;
    let guest = store
        .create_guest(show, [7u8; 32], T0)
        .await
        .expect("guest");

    let first = store
        .chat_guest_identity(show, guest.id, Some("Ada"), T0)
        .await
        .expect("identity");
    assert_eq!(first.show_id, show);
    assert_eq!(first.guest_id, Some(guest.id));
    assert_eq!(first.display_name, "Ada");
    // The same guest is the same identity; a new name renames it.
    let again = store
        .chat_guest_identity(show, guest.id, None, T0 + 1)
        .await
        .expect("again");
    assert_eq!(again.user_id, first.user_id);
    let renamed = store
        .chat_guest_identity(show, guest.id, Some("Ada L."), T0 + 2)
        .await
        .expect("rename");
    assert_eq!(
        (renamed.user_id, renamed.display_name.as_str()),
        (first.user_id, "Ada L.")
    );
    // A guest of another show is refused.
    let err = store
        .chat_guest_identity(other_show, guest.id, Some("X"), T0)
        .await
        .expect_err("wrong show");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");

    // The user behind it: role audience, a username no account can take, a hash no
    // password verifies (it is no PHC string at all).
    let u = store.user(first.user_id).await.unwrap().expect("user");
    assert_eq!(u.role, UserRole::Audience);
    assert!(u.username.starts_with('~'), "{}", u.username);
    let creds = store
        .user_credentials(&u.username)
        .await
        .unwrap()
        .expect("creds");
    assert_eq!(creds.password_hash, AUDIENCE_PASSWORD_HASH);
    assert!(!creds.password_hash.contains("$v="));

    // Anonymous joiners get a new identity each time.
    let a1 = store
        .chat_anonymous_identity(show, "Bo", T0)
        .await
        .expect("anon");
    let a2 = store
        .chat_anonymous_identity(show, "Bo", T0)
        .await
        .expect("anon");
    assert_ne!(a1.user_id, a2.user_id);
    assert_eq!(a1.guest_id, None);
    assert!(store.chat_anonymous_identity(show, "", T0).await.is_err());

    // Audience members are not in "All Talk" nor in rooms to join.
    assert!(store
        .chat_open_rooms_to_join(a1.user_id)
        .await
        .unwrap()
        .is_empty());

    // They become members of their show's room when they first chat, once.
    let (room, m) = store
        .chat_join_show_room(first.user_id, T0 + 3)
        .await
        .expect("join");
    assert_eq!(room.show_id, Some(show));
    assert_eq!(m.user_id, first.user_id);
    let (room2, _) = store
        .chat_join_show_room(first.user_id, T0 + 4)
        .await
        .expect("join again");
    assert_eq!(room2.id, room.id);
    store
        .chat_post(msg(room.id, first.user_id, "p1", "bravo"))
        .await
        .expect("audience post");
    assert!(store.chat_join_show_room(crew, T0).await.is_err());
}

#[tokio::test]
async fn first_run_setup_makes_all_talk_which_staff_join_on_first_look() {
    let dir = TempDir::new().expect("temp dir");
    let store = open(&dir);
    assert_eq!(store.chat_all_talk().await.unwrap(), None);
    let admin = store
        .create_first_admin(NewUser {
            username: "root".into(),
            display_name: "Root".into(),
            password_hash: HASH.into(),
            role: UserRole::Admin,
            at_ms: T0,
        })
        .await
        .expect("setup")
        .id;
    let all = store.chat_all_talk().await.unwrap().expect("All Talk");
    assert_eq!(all.name.as_deref(), Some(ALL_TALK));
    assert!(all.everyone);
    assert_eq!(all.kind, ChatRoomKind::Closed);
    assert_eq!(all.ensemble_id, None);
    assert!(store.chat_member(all.id, admin).await.unwrap().is_some());

    let crew = user(&store, "crew").await;
    assert_eq!(
        store.chat_open_rooms_to_join(crew).await.unwrap(),
        vec![all.id]
    );
    store
        .chat_add_member(all.id, crew, Involvement::Everything, T0)
        .await
        .expect("join");
    assert!(store
        .chat_open_rooms_to_join(crew)
        .await
        .unwrap()
        .is_empty());
}

/// What a post's permission check reads at once: the room, the poster's membership, their
/// role in the room's ensemble and a ban; `None` for a room that does not exist.
#[tokio::test]
async fn chat_access_reads_room_membership_ensemble_role_and_restriction_at_once() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let owner = user(&store, "owner").await;
    let crew = user(&store, "crew").await;
    let outsider = user(&store, "outsider").await;
    let ens = store
        .create_ensemble("band", "Band", owner, T0)
        .await
        .unwrap();
    store
        .add_member(ens.id, crew, EnsembleRole::Crew, T0)
        .await
        .unwrap();
    let r = store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Open,
            ensemble_id: Some(ens.id),
            show_id: None,
            name: Some("band talk".into()),
            created_by: Some(owner),
            members: vec![owner],
            at_ms: T0,
        })
        .await
        .unwrap();

    let a = store.chat_access(r.id, owner).await.unwrap().unwrap();
    assert_eq!(a.room, r);
    assert_eq!(a.member.map(|m| m.user_id), Some(owner));
    assert_eq!(a.ensemble_role, Some(EnsembleRole::Owner));
    assert_eq!(a.restriction, None);

    // In the ensemble, not yet in the room.
    let a = store.chat_access(r.id, crew).await.unwrap().unwrap();
    assert_eq!(a.member, None);
    assert_eq!(a.ensemble_role, Some(EnsembleRole::Crew));

    // Neither, and banned.
    store
        .chat_restrict(
            r.id,
            outsider,
            tutti_store::ChatRestrictionKind::Ban,
            owner,
            None,
            T0 + 5,
        )
        .await
        .unwrap();
    let a = store.chat_access(r.id, outsider).await.unwrap().unwrap();
    assert_eq!((a.member, a.ensemble_role), (None, None));
    assert_eq!(
        a.restriction.map(|x| x.kind),
        Some(tutti_store::ChatRestrictionKind::Ban)
    );

    assert_eq!(store.chat_access(r.id + 1000, owner).await.unwrap(), None);
}

/// Posts skip the bot lookups only while no bot was ever made: a new store says no, a bot's
/// creation says yes at once, and a store reopened over a file with a bot says yes.
#[tokio::test]
async fn bots_may_exist_once_one_was_made_and_after_a_reopen() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    assert!(!store.chat_bots_may_exist());
    let admin = user(&store, "admin").await;
    store
        .chat_create_bot(tutti_store::NewChatBot {
            name: "helper".into(),
            ensemble_id: None,
            webhook_url: None,
            webhook_secret: "a-secret-of-sixteen-bytes".into(),
            key_hash: [7; 32],
            created_by: Some(admin),
            at_ms: T0,
        })
        .await
        .unwrap();
    assert!(store.chat_bots_may_exist());
    store.close().await.unwrap();
    let store = open(&dir);
    assert!(store.chat_bots_may_exist());
    store.close().await.unwrap();

    let other = TempDir::new().unwrap();
    let store = open(&other);
    assert!(!store.chat_bots_may_exist());
    // A refused creation (an invalid name) leaves it so.
    assert!(store
        .chat_create_bot(tutti_store::NewChatBot {
            name: "no spaces allowed".into(),
            ensemble_id: None,
            webhook_url: None,
            webhook_secret: "a-secret-of-sixteen-bytes".into(),
            key_hash: [8; 32],
            created_by: None,
            at_ms: T0,
        })
        .await
        .is_err());
    assert!(!store.chat_bots_may_exist());
}
