//! Chat moderation in the store (issue 12, item 8; migration 9): restrictions, slow mode and
//! the word filter enforced by the post itself, shadow-muted posts kept in the sequence but
//! hidden, moderators' removals, and the audit log — against a real SQLite file.

use tempfile::TempDir;
use tutti_store::{
    ChatModAction, ChatRefusal, ChatRestrictionKind, ChatRoomKind, ChatRoomRow, ChatSettingsChange,
    Involvement, NewChatMessage, NewChatRoom, NewUser, Store, StoreConfig, StoreError, UserRole,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const T0: i64 = 1_700_000_000_000;

fn open(dir: &TempDir) -> Store {
    Store::open(StoreConfig::new(dir.path().join("tutti.db"))).expect("open store")
}

async fn user(store: &Store, name: &str, role: UserRole) -> i64 {
    store
        .create_user(NewUser {
            username: name.into(),
            display_name: name.into(),
            password_hash: HASH.into(),
            role,
            at_ms: T0,
        })
        .await
        .expect("create user")
        .id
}

async fn room(store: &Store, members: &[i64]) -> ChatRoomRow {
    store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Closed,
            ensemble_id: None,
            show_id: None,
            name: Some("lobby".into()),
            created_by: members.first().copied(),
            members: members.to_vec(),
            at_ms: T0,
        })
        .await
        .expect("create room")
}

fn msg(room_id: i64, author_id: i64, id: &str, text: &str, at_ms: i64) -> NewChatMessage {
    NewChatMessage {
        room_id,
        author_id,
        client_message_id: id.into(),
        text: text.into(),
        reply_to: None,
        at_ms,
    }
}

fn refusal(r: Result<impl std::fmt::Debug, StoreError>) -> ChatRefusal {
    match r {
        Err(StoreError::ChatRefused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Admin (moderator), and two plain accounts in a room of no ensemble.
async fn setup(store: &Store) -> (i64, i64, i64, ChatRoomRow) {
    let admin = user(store, "admin", UserRole::Admin).await;
    let ann = user(store, "ann", UserRole::Crew).await;
    let bob = user(store, "bob", UserRole::Crew).await;
    let r = room(store, &[admin, ann, bob]).await;
    (admin, ann, bob, r)
}

#[tokio::test]
async fn mute_and_ban_refuse_posts_and_use_up_no_seq() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (admin, ann, bob, r) = setup(&store).await;
    store
        .chat_restrict(
            r.id,
            ann,
            ChatRestrictionKind::Mute,
            admin,
            Some("spam"),
            T0,
        )
        .await
        .unwrap();
    store
        .chat_restrict(r.id, bob, ChatRestrictionKind::Ban, admin, None, T0)
        .await
        .unwrap();
    assert_eq!(
        refusal(store.chat_post(msg(r.id, ann, "a", "hi", T0)).await),
        ChatRefusal::Muted
    );
    assert_eq!(
        refusal(store.chat_post(msg(r.id, bob, "b", "hi", T0)).await),
        ChatRefusal::Banned
    );
    assert_eq!(store.chat_room(r.id).await.unwrap().unwrap().last_seq, 0);
    // Lifting the mute lets ann post; the room's first seq is 1.
    let lifted = store
        .chat_unrestrict(r.id, ann, admin, None, T0 + 1)
        .await
        .unwrap();
    assert_eq!(lifted.kind, ChatRestrictionKind::Mute);
    let posted = store
        .chat_post(msg(r.id, ann, "a", "hi", T0 + 2))
        .await
        .unwrap();
    assert_eq!(posted.seq, 1);
    // A moderator cannot be restricted; lifting nothing is not found.
    assert!(matches!(
        store
            .chat_restrict(r.id, admin, ChatRestrictionKind::Ban, admin, None, T0)
            .await,
        Err(StoreError::Conflict {
            what: "moderator",
            ..
        })
    ));
    assert!(matches!(
        store.chat_unrestrict(r.id, ann, admin, None, T0).await,
        Err(StoreError::NotFound { .. })
    ));
    let list = store.chat_restrictions(r.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].user_id, list[0].kind),
        (bob, ChatRestrictionKind::Ban)
    );
}

#[tokio::test]
async fn slow_mode_and_the_filter_hold_for_everyone_but_moderators() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (admin, ann, _bob, r) = setup(&store).await;
    let s = store
        .chat_set_room_settings(r.id, admin, settings(10, &[" Spoiler ", "boo"], 0), T0)
        .await
        .unwrap();
    assert_eq!(
        (s.slow_mode_s, s.filter.clone()),
        (10, vec!["Spoiler".into(), "boo".into()])
    );
    assert_eq!(store.chat_room_settings(r.id).await.unwrap(), s);

    store
        .chat_post(msg(r.id, ann, "1", "first", T0))
        .await
        .unwrap();
    assert_eq!(
        refusal(
            store
                .chat_post(msg(r.id, ann, "2", "second", T0 + 2_500))
                .await
        ),
        ChatRefusal::SlowMode {
            retry_after_s: 8,
            slow_mode_s: 10
        }
    );
    // A retry of the first send is answered with the original, slow mode or not.
    assert!(
        store
            .chat_post(msg(r.id, ann, "1", "first", T0 + 1))
            .await
            .unwrap()
            .duplicate
    );
    store
        .chat_post(msg(r.id, ann, "3", "third", T0 + 10_000))
        .await
        .unwrap();
    assert_eq!(
        refusal(
            store
                .chat_post(msg(r.id, ann, "4", "a SPOILER!", T0 + 30_000))
                .await
        ),
        ChatRefusal::Filtered {
            word: "Spoiler".into()
        }
    );
    // Not a whole word: accepted.
    store
        .chat_post(msg(r.id, ann, "5", "booking", T0 + 40_000))
        .await
        .unwrap();
    // The admin moderates: neither rule applies.
    store
        .chat_post(msg(r.id, admin, "m1", "boo", T0))
        .await
        .unwrap();
    store
        .chat_post(msg(r.id, admin, "m2", "boo", T0))
        .await
        .unwrap();
    assert!(store
        .chat_set_room_settings(r.id, admin, settings(3601, &[], 0), T0)
        .await
        .is_err());
}

#[tokio::test]
async fn shadow_muted_posts_take_their_seq_but_are_hidden() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (admin, ann, bob, r) = setup(&store).await;
    store
        .chat_restrict(r.id, ann, ChatRestrictionKind::ShadowMute, admin, None, T0)
        .await
        .unwrap();
    let p = store
        .chat_post(msg(r.id, ann, "s", "secret words", T0))
        .await
        .unwrap();
    assert!(p.message.hidden);
    let q = store
        .chat_post(msg(r.id, bob, "v", "visible words", T0))
        .await
        .unwrap();
    assert!(!q.message.hidden);
    let page = store.chat_events_after(r.id, 0, 100).await.unwrap();
    let seqs: Vec<(u64, bool)> = page.events.iter().map(|e| (e.seq, e.hidden)).collect();
    assert_eq!(seqs, [(1, true), (2, false)]);
    // Others do not find it or count it as unread; its author finds it.
    assert!(store
        .chat_search(bob, "secret", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.chat_search(ann, "secret", 10).await.unwrap().len(), 1);
    let bobs = store.chat_rooms_of(bob).await.unwrap();
    assert_eq!(bobs[0].unread, 0);
}

#[tokio::test]
async fn a_moderators_removal_is_marked_and_audited() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (admin, ann, bob, r) = setup(&store).await;
    let p = store
        .chat_post(msg(r.id, ann, "x", "rude", T0))
        .await
        .unwrap();
    let own = store
        .chat_post(msg(r.id, bob, "y", "mine", T0))
        .await
        .unwrap();
    let ev = store
        .chat_remove(p.message.id, admin, Some("rude"), T0 + 5)
        .await
        .unwrap();
    assert!(ev.moderated);
    let ev = store
        .chat_delete(own.message.id, bob, T0 + 6)
        .await
        .unwrap();
    assert!(!ev.moderated);
    store
        .chat_restrict(
            r.id,
            ann,
            ChatRestrictionKind::Ban,
            admin,
            Some("again"),
            T0 + 7,
        )
        .await
        .unwrap();
    store
        .chat_set_room_settings(r.id, admin, settings(5, &[], 0), T0 + 8)
        .await
        .unwrap();
    let log = store.chat_mod_log(r.id, None, 100).await.unwrap();
    let actions: Vec<ChatModAction> = log.iter().map(|l| l.action).collect();
    assert_eq!(
        actions,
        [
            ChatModAction::SettingsChanged,
            ChatModAction::Restricted,
            ChatModAction::MessageRemoved
        ]
    );
    assert_eq!(log[1].target_user_id, Some(ann));
    assert_eq!(log[1].reason.as_deref(), Some("again"));
    assert_eq!(log[1].detail["kind"], "ban");
    assert_eq!(log[2].message_id, Some(p.message.id));
    assert_eq!(log[2].actor_id, admin);
    let older = store
        .chat_mod_log(r.id, Some(log[1].id), 100)
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
}

fn settings(slow_mode_s: u32, filter: &[&str], audience_delay_s: u32) -> ChatSettingsChange {
    ChatSettingsChange {
        slow_mode_s,
        filter: filter.iter().map(|w| (*w).to_owned()).collect(),
        audience_delay_s,
        ..ChatSettingsChange::default()
    }
}

#[tokio::test]
async fn an_audience_post_is_held_for_the_rooms_delay_and_released_as_a_later_event() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (admin, ann, _bob, r) = setup(&store).await;
    let aud = user(&store, "aud", UserRole::Audience).await;
    store
        .chat_add_member(r.id, aud, Involvement::Everything, T0)
        .await
        .unwrap();
    let set = store
        .chat_set_room_settings(r.id, admin, settings(0, &[], 5), T0)
        .await
        .unwrap();
    assert_eq!(set.audience_delay_s, 5);
    assert_eq!(
        store
            .chat_room_settings(r.id)
            .await
            .unwrap()
            .audience_delay_s,
        5
    );

    // Staff are not held; the audience member is, until T0 + 10 + 5 s.
    let staff = store
        .chat_post(msg(r.id, ann, "a1", "from crew", T0 + 1))
        .await
        .unwrap();
    assert_eq!(staff.message.held_until_ms, None);
    let held = store
        .chat_post(msg(r.id, aud, "h1", "hello catchword", T0 + 10))
        .await
        .unwrap();
    assert_eq!(held.message.held_until_ms, Some(T0 + 10 + 5000));
    // Its edit while held is as private as the post.
    let edit = store
        .chat_edit(held.message.id, aud, "hello again catchword", T0 + 20)
        .await
        .unwrap();
    assert!(edit.hidden && edit.held);
    // A second held post that a moderator removes before its time is never released.
    let removed = store
        .chat_post(msg(r.id, aud, "h2", "something rude", T0 + 30))
        .await
        .unwrap();
    let removal = store
        .chat_remove(removed.message.id, admin, Some("rude"), T0 + 40)
        .await
        .unwrap();
    assert!(removal.hidden && removal.held && removal.moderated);

    let page = store.chat_events_after(r.id, 0, 100).await.unwrap();
    let flags: Vec<(u64, &str, bool, bool)> = page
        .events
        .iter()
        .map(|e| (e.seq, e.kind.as_str(), e.hidden, e.held))
        .collect();
    assert_eq!(
        flags,
        [
            (1, "message_posted", false, false),
            (2, "message_posted", true, true),
            (3, "message_edited", true, true),
            (4, "message_posted", true, true),
            (5, "message_deleted", true, true),
        ]
    );
    // Not in others' search or unread counts while held; in its author's search.
    assert!(store
        .chat_search(ann, "catchword", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.chat_search(aud, "catchword", 10).await.unwrap().len(),
        1
    );
    let unread = |rooms: Vec<tutti_store::ChatRoomListing>| {
        rooms.iter().find(|l| l.room.id == r.id).unwrap().unread
    };
    assert_eq!(unread(store.chat_rooms_of(admin).await.unwrap()), 1);

    // Nothing is due a millisecond early; at its time exactly one release, with its text.
    assert!(store
        .chat_release_due(T0 + 10 + 4999)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.chat_release_due(T0 + 10 + 5000).await.unwrap(),
        [(r.id, 6, held.message.id)]
    );
    assert!(store
        .chat_release_due(T0 + 60_000)
        .await
        .unwrap()
        .is_empty());
    let page = store.chat_events_after(r.id, 5, 100).await.unwrap();
    let released = &page.events[0];
    assert_eq!(released.kind.as_str(), "message_released");
    assert_eq!(released.message_id, held.message.id);
    assert_eq!(released.text.as_deref(), Some("hello again catchword"));
    assert!(!released.hidden && !released.held);
    let m = store.chat_message(held.message.id).await.unwrap().unwrap();
    assert_eq!((m.held_until_ms, m.posted_seq, m.last_seq), (None, 2, 6));
    assert_eq!(
        store.chat_search(ann, "catchword", 10).await.unwrap().len(),
        1
    );
    assert_eq!(unread(store.chat_rooms_of(admin).await.unwrap()), 2);
    // After the release its changes are public like any message's.
    let later = store
        .chat_edit(held.message.id, aud, "hello, finally", T0 + 70_000)
        .await
        .unwrap();
    assert!(!later.hidden && !later.held);
}

#[tokio::test]
async fn a_delay_out_of_range_is_refused_and_nothing_changes() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (admin, _ann, _bob, r) = setup(&store).await;
    let err = store
        .chat_set_room_settings(r.id, admin, settings(0, &[], 61), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "audience_delay_s",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        store.chat_room_settings(r.id).await.unwrap().updated_at_ms,
        None
    );
}

/// A show's room (made with the show, or here when the show was made without one).
async fn show_room(store: &Store, admin: i64) -> ChatRoomRow {
    let (piece, spec) = store.ensure_piece("demo", "Demo", "{}").await.unwrap();
    let show = store
        .create_show(
            piece.id,
            spec.id,
            "SND1",
            tutti_store::ShowKind::Performance,
        )
        .await
        .unwrap();
    if let Some(r) = store.chat_show_room(show.id).await.unwrap() {
        return r;
    }
    store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Show,
            ensemble_id: None,
            show_id: Some(show.id),
            name: Some("Tonight".into()),
            created_by: Some(admin),
            members: vec![admin],
            at_ms: T0,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn sounds_through_the_show_are_a_show_rooms_setting_stored_and_audited() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let (admin, _ann, _bob, closed) = setup(&store).await;
    let show = show_room(&store, admin).await;
    assert!(
        !store
            .chat_room_settings(show.id)
            .await
            .unwrap()
            .sounds_through_show
    );

    let on = ChatSettingsChange {
        sounds_through_show: true,
        ..settings(0, &[], 0)
    };
    let set = store
        .chat_set_room_settings(show.id, admin, on.clone(), T0)
        .await
        .unwrap();
    assert!(set.sounds_through_show);
    assert!(
        store
            .chat_room_settings(show.id)
            .await
            .unwrap()
            .sounds_through_show
    );
    let log = store.chat_mod_log(show.id, None, 10).await.unwrap();
    assert_eq!(log[0].action, ChatModAction::SettingsChanged);
    assert_eq!(log[0].detail["sounds_through_show"], true);

    // Another room kind: refused by name, and nothing changes (no settings, no log entry).
    let err = store
        .chat_set_room_settings(closed.id, admin, on, T0 + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "not a show room",
                ..
            }
        ),
        "{err:?}"
    );
    let kept = store.chat_room_settings(closed.id).await.unwrap();
    assert!(!kept.sounds_through_show);
    assert_eq!(kept.updated_at_ms, None);
    assert!(store
        .chat_mod_log(closed.id, None, 10)
        .await
        .unwrap()
        .is_empty());
    // Off is every room's default and may be written anywhere.
    let off = store
        .chat_set_room_settings(closed.id, admin, settings(5, &[], 0), T0 + 2)
        .await
        .unwrap();
    assert!(!off.sounds_through_show);
}
