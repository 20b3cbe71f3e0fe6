//! Integration tests for the issue-6 operations (accounts, tokens, ensembles, pieces, specs,
//! shows, idempotency keys, wizard sessions, the outbox) against real SQLite files.
//!
//! Each test opens its own fresh store in a temporary directory. Outbox rows and row counts are
//! checked through a separate plain SQLite connection to the same file, so what is asserted is
//! what was committed.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinSet;
use tutti_store::{
    EnsembleRole, KeepCredential, NewAuthSession, NewPiece, NewShow, NewSpecDraft, NewTokenPair,
    NewUser, NewWizardSession, Page, PieceRow, PieceStatus, RotateRefresh, ShowKind, ShowStatus,
    SpecStatus, Store, StoreConfig, StoreError, TokenHash, UserRole, UserRow,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const SPEC: &str = r#"{"params":[{"name":"tempo","min":60,"max":180}]}"#;
const T0: i64 = 1_700_000_000_000;

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("tutti.db")
}

fn open(dir: &TempDir) -> Store {
    Store::open(StoreConfig::new(db_path(dir))).expect("open store")
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open a plain connection")
}

fn count(path: &Path, sql: &str) -> i64 {
    raw(path)
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every outbox row as (id, kind, ensemble_id, subject, data).
fn outbox(path: &Path) -> Vec<(i64, String, Option<i64>, String, Value)> {
    let conn = raw(path);
    let mut stmt = conn
        .prepare("SELECT id, kind, ensemble_id, subject, data_json FROM outbox ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| {
        let data: String = r.get(4)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            serde_json::from_str(&data).expect("outbox data is JSON"),
        ))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn kinds(path: &Path) -> Vec<String> {
    outbox(path).into_iter().map(|e| e.1).collect()
}

fn count_kind(path: &Path, kind: &str) -> usize {
    kinds(path).iter().filter(|k| *k == kind).count()
}

/// Row counts of every table a management op writes, to prove nothing was half-written.
fn table_counts(path: &Path) -> Vec<(String, i64)> {
    [
        "users",
        "auth_sessions",
        "token_families",
        "access_tokens",
        "refresh_tokens",
        "guests",
        "ensembles",
        "memberships",
        "pieces",
        "spec_versions",
        "shows",
        "idempotency_keys",
        "wizard_sessions",
        "outbox",
    ]
    .into_iter()
    .map(|t| {
        (
            t.to_owned(),
            count(path, &format!("SELECT count(*) FROM {t}")),
        )
    })
    .collect()
}

fn new_user(name: &str, role: UserRole) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: format!("{name} (display)"),
        password_hash: HASH.into(),
        role,
        at_ms: T0,
    }
}

fn hash(n: u32) -> TokenHash {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&n.to_be_bytes());
    h[31] = 0xAA;
    h
}

async fn user(store: &Store, name: &str) -> UserRow {
    store
        .create_user(new_user(name, UserRole::Performer))
        .await
        .expect("create user")
}

/// A user, an ensemble they own, and a piece in it.
async fn owned_piece(store: &Store, slug: &str) -> (UserRow, i64, PieceRow) {
    let owner = user(store, &format!("owner-{slug}")).await;
    let ens = store
        .create_ensemble(&format!("ens-{slug}"), "Ensemble", owner.id, T0)
        .await
        .expect("create ensemble");
    let piece = store
        .create_piece(NewPiece {
            ensemble_id: ens.id,
            slug: slug.into(),
            title: format!("Piece {slug}"),
            at_ms: T0,
        })
        .await
        .expect("create piece");
    (owner, ens.id, piece)
}

async fn draft(store: &Store, piece_id: i64, n: i64) -> i64 {
    store
        .create_spec_draft(NewSpecDraft {
            piece_id,
            spec_json: format!(r#"{{"params":[],"n":{n}}}"#),
            created_by: None,
            note: Some(format!("draft {n}")),
            at_ms: T0 + n,
        })
        .await
        .expect("draft")
        .version
}

fn pair(user_id: i64, a: u32, r: u32, at_ms: i64) -> NewTokenPair {
    NewTokenPair {
        user_id,
        access_hash: hash(a),
        refresh_hash: hash(r),
        at_ms,
        access_expires_at_ms: at_ms + 900_000,
        refresh_expires_at_ms: at_ms + 30 * 86_400_000,
    }
}

fn rotate(presented: u32, a: u32, r: u32, at_ms: i64) -> RotateRefresh {
    RotateRefresh {
        presented: hash(presented),
        access_hash: hash(a),
        refresh_hash: hash(r),
        at_ms,
        access_expires_at_ms: at_ms + 900_000,
        refresh_expires_at_ms: at_ms + 30 * 86_400_000,
    }
}

fn allowed(from: PieceStatus) -> Vec<String> {
    from.allowed_next()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The field named by an `Invalid` error (panics on anything else).
fn field<T>(r: Result<T, StoreError>) -> &'static str {
    match r {
        Err(StoreError::Invalid { field, .. }) => field,
        Err(e) => panic!("expected Invalid, got {e}"),
        Ok(_) => panic!("expected Invalid, got Ok"),
    }
}

// ---------------------------------------------------------------- state machines

#[tokio::test]
async fn piece_lifecycle_allows_exactly_the_documented_transitions() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let (_, ens, _) = owned_piece(&store, "seed").await;

    use PieceStatus::*;
    let all = [Draft, Rehearsal, Ready, Archived];
    // How to reach each status from draft.
    let route = |s: PieceStatus| -> &'static [PieceStatus] {
        match s {
            Draft => &[],
            Rehearsal => &[Rehearsal],
            Ready => &[Rehearsal, Ready],
            Archived => &[Archived],
        }
    };
    let expected_allowed = [
        (Draft, Rehearsal),
        (Draft, Archived),
        (Rehearsal, Ready),
        (Rehearsal, Draft),
        (Rehearsal, Archived),
        (Ready, Rehearsal),
        (Ready, Archived),
    ];
    let mut n = 0;
    let mut transitions = 0;
    for from in all {
        for to in all {
            n += 1;
            let piece = store
                .create_piece(NewPiece {
                    ensemble_id: ens,
                    slug: format!("p{n}"),
                    title: "P".into(),
                    at_ms: T0,
                })
                .await
                .expect("create");
            assert_eq!(piece.status, Draft);
            for step in route(from) {
                store
                    .transition_piece(piece.id, *step, T0)
                    .await
                    .expect("route");
                transitions += 1;
            }
            let before = outbox(&path).len();
            let got = store.transition_piece(piece.id, to, T0 + 1).await;
            if expected_allowed.contains(&(from, to)) {
                let row = got.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(row.status, to);
                transitions += 1;
                let last = outbox(&path).pop().expect("event");
                assert_eq!(last.1, "piece.transitioned");
                assert_eq!(last.2, Some(ens));
                assert_eq!(last.3, format!("piece:{}", piece.id));
                assert_eq!(last.4["from"], from.as_str());
                assert_eq!(last.4["to"], to.as_str());
            } else {
                let err = got.expect_err("forbidden transition");
                assert_eq!(
                    err,
                    StoreError::InvalidTransition {
                        what: "piece",
                        from: from.to_string(),
                        to: to.to_string(),
                        allowed: allowed(from),
                    },
                    "{from} -> {to}"
                );
                assert_eq!(
                    outbox(&path).len(),
                    before,
                    "a refused transition appends nothing"
                );
                let stored = store.piece(piece.id).await.expect("read").expect("piece");
                assert_eq!(stored.status, from, "a refused transition changes nothing");
            }
            assert_eq!(from.can_become(to), expected_allowed.contains(&(from, to)));
        }
    }
    assert_eq!(count_kind(&path, "piece.transitioned"), transitions);
    let err = store
        .transition_piece(999_999, Rehearsal, T0)
        .await
        .expect_err("unknown piece");
    assert!(
        matches!(err, StoreError::NotFound { what: "piece", .. }),
        "{err}"
    );
    let msg = StoreError::InvalidTransition {
        what: "piece",
        from: "archived".into(),
        to: "draft".into(),
        allowed: vec![],
    }
    .to_string();
    assert!(msg.contains("allowed from archived: none"), "{msg}");
    store.close().await.expect("close");
}

#[tokio::test]
async fn show_lifecycle_appends_an_event_per_change_and_ending_twice_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let (_, ens, piece) = owned_piece(&store, "showy").await;

    let err = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: None,
            code: "NOCUR".into(),
            kind: ShowKind::Rehearsal,
            at_ms: T0,
        })
        .await
        .expect_err("no current spec yet");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "no current spec",
                ..
            }
        ),
        "{err}"
    );
    let v = draft(&store, piece.id, 1).await;
    let err = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: Some(v + 5),
            code: "NOVER".into(),
            kind: ShowKind::Rehearsal,
            at_ms: T0,
        })
        .await
        .expect_err("unknown version");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "spec version",
                ..
            }
        ),
        "{err}"
    );
    // A draft version can be rehearsed explicitly.
    let rehearsal = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: Some(v),
            code: "REH1".into(),
            kind: ShowKind::Rehearsal,
            at_ms: T0,
        })
        .await
        .expect("show of a draft version");
    store.publish_spec(piece.id, v, T0).await.expect("publish");
    let show = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: None,
            code: "PERF1".into(),
            kind: ShowKind::Performance,
            at_ms: T0,
        })
        .await
        .expect("show of the current version");
    assert_eq!(show.status, ShowStatus::Scheduled);
    assert_eq!(show.spec_version_id, rehearsal.spec_version_id);
    // The per-piece version number comes with every read of a show, not only the creation.
    assert_eq!((show.spec_version, rehearsal.spec_version), (v, v));
    let read = store.show(show.id).await.expect("read").expect("exists");
    assert_eq!(read, show);
    let (listed, _) = store
        .shows(Some(piece.id), Page::first(10))
        .await
        .expect("list");
    assert!(listed.iter().all(|s| s.spec_version == v), "{listed:?}");
    let created = outbox(&path)
        .into_iter()
        .filter(|e| e.1 == "show.created")
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 2);
    assert_eq!(created[1].2, Some(ens));
    assert_eq!(created[1].4["code"], "PERF1");
    assert_eq!(created[1].4["version"], v);

    use ShowStatus::*;
    let all = [Scheduled, Live, Paused, Ended];
    let mut changes = 0;
    for (i, step) in [Live, Paused, Live, Paused, Ended].into_iter().enumerate() {
        let now = store
            .show(show.id)
            .await
            .expect("read")
            .expect("show")
            .status;
        for to in all {
            if !now.can_become(to) {
                let err = store
                    .set_show_status(show.id, to, T0)
                    .await
                    .expect_err("forbidden");
                assert!(
                    matches!(&err, StoreError::InvalidTransition { what: "show", allowed, .. }
                        if *allowed == now.allowed_next().iter().map(ToString::to_string).collect::<Vec<_>>()),
                    "{err}"
                );
            }
        }
        let at = T0 + 1000 * i64::try_from(i).expect("small");
        store
            .set_show_status(show.id, step, at)
            .await
            .unwrap_or_else(|e| panic!("{now} -> {step}: {e}"));
        changes += 1;
        let last = outbox(&path).pop().expect("event");
        assert_eq!(
            (
                last.1.as_str(),
                last.2,
                last.4["from"].as_str(),
                last.4["to"].as_str()
            ),
            (
                "show.transitioned",
                Some(ens),
                Some(now.as_str()),
                Some(step.as_str())
            )
        );
    }
    let err = store
        .set_show_status(show.id, Ended, T0)
        .await
        .expect_err("ending twice");
    assert_eq!(
        err,
        StoreError::InvalidTransition {
            what: "show",
            from: "ended".into(),
            to: "ended".into(),
            allowed: vec![],
        }
    );
    assert_eq!(count_kind(&path, "show.transitioned"), changes);
    let (listed, next) = store
        .shows(Some(piece.id), Page::first(10))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|s| s.code.as_str()).collect::<Vec<_>>(),
        ["REH1", "PERF1"]
    );
    assert_eq!(next, None);

    // Archived pieces take no new shows or drafts.
    store
        .transition_piece(piece.id, PieceStatus::Archived, T0)
        .await
        .expect("archive");
    let err = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: None,
            code: "LATE".into(),
            kind: ShowKind::Performance,
            at_ms: T0,
        })
        .await
        .expect_err("archived");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "archived piece",
                ..
            }
        ),
        "{err}"
    );
    store.close().await.expect("close");
}

// ---------------------------------------------------------------- specs

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_leave_exactly_one_current_version() {
    const N: i64 = 50;
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let (_, ens, piece) = owned_piece(&store, "contended").await;
    for n in 1..=N {
        assert_eq!(draft(&store, piece.id, n).await, n);
    }
    assert_eq!(count_kind(&path, "spec.drafted"), 50);

    let mut tasks = JoinSet::new();
    for version in 1..=N {
        let store = store.clone();
        let piece_id = piece.id;
        tasks.spawn(async move { store.publish_spec(piece_id, version, T0 + version).await });
    }
    let mut published = 0;
    while let Some(joined) = tasks.join_next().await {
        let row = joined.expect("task").expect("publish");
        assert_eq!(row.status, SpecStatus::Current);
        published += 1;
    }
    assert_eq!(published, N);

    let versions = store.spec_versions(piece.id).await.expect("list");
    let current: Vec<_> = versions
        .iter()
        .filter(|v| v.status == SpecStatus::Current)
        .collect();
    assert_eq!(current.len(), 1, "exactly one current version");
    assert_eq!(
        versions
            .iter()
            .filter(|v| v.status == SpecStatus::Superseded)
            .count(),
        49,
        "every other version superseded"
    );
    let events: Vec<_> = outbox(&path)
        .into_iter()
        .filter(|e| e.1 == "spec.published")
        .collect();
    assert_eq!(events.len(), 50, "one spec.published per publish");
    // Events chain: each publish superseded the version published just before it, and the last
    // one published is the current one.
    for pair in events.windows(2) {
        assert_eq!(pair[1].4["superseded_version"], pair[0].4["version"]);
    }
    assert_eq!(events[0].4["superseded_version"], Value::Null);
    assert_eq!(events[49].4["version"], current[0].version);
    assert!(events.iter().all(|e| e.2 == Some(ens)));
    assert_eq!(
        store
            .current_spec(piece.id)
            .await
            .expect("read")
            .map(|v| v.id),
        Some(current[0].id)
    );

    // Publishing the current version again is a no-op without an event; a superseded one can be
    // published again (rollback).
    let again = store
        .publish_spec(piece.id, current[0].version, T0)
        .await
        .expect("republish current");
    assert_eq!(again.id, current[0].id);
    assert_eq!(count_kind(&path, "spec.published"), 50);
    let old = if current[0].version == 1 { 2 } else { 1 };
    store
        .publish_spec(piece.id, old, T0)
        .await
        .expect("rollback");
    assert_eq!(
        store
            .current_spec(piece.id)
            .await
            .expect("read")
            .map(|v| v.version),
        Some(old)
    );
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM spec_versions WHERE status = 'current'"
        ),
        1
    );
    let err = store
        .publish_spec(piece.id, 99, T0)
        .await
        .expect_err("unknown version");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "spec version",
                ..
            }
        ),
        "{err}"
    );
    store.close().await.expect("close");
}

#[tokio::test]
async fn spec_drafts_record_author_and_note_and_page_by_version() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let (owner, _, piece) = owned_piece(&store, "authored").await;
    let v = store
        .create_spec_draft(NewSpecDraft {
            piece_id: piece.id,
            spec_json: SPEC.into(),
            created_by: Some(owner.id),
            note: Some("first take\nwith two lines".into()),
            at_ms: T0,
        })
        .await
        .expect("draft");
    assert_eq!((v.version, v.status), (1, SpecStatus::Draft));
    let read = store
        .spec_version_by_number(piece.id, 1)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read, v);
    assert_eq!(read.created_by, Some(owner.id));
    assert_eq!(read.note.as_deref(), Some("first take\nwith two lines"));
    assert_eq!(store.current_spec(piece.id).await.expect("read"), None);
    let err = store
        .create_spec_draft(NewSpecDraft {
            piece_id: piece.id,
            spec_json: SPEC.into(),
            created_by: Some(424_242),
            note: None,
            at_ms: T0,
        })
        .await
        .expect_err("unknown author");
    assert!(
        matches!(err, StoreError::NotFound { what: "user", .. }),
        "{err}"
    );
    for n in 2..=7 {
        draft(&store, piece.id, n).await;
    }
    let mut seen = Vec::new();
    let mut page = Page::first(3);
    loop {
        let (rows, next) = store
            .spec_versions_page(piece.id, page)
            .await
            .expect("page");
        assert!(rows.len() <= 3);
        seen.extend(rows.iter().map(|r| r.version));
        match next {
            Some(after) => page.after_id = Some(after),
            None => break,
        }
    }
    assert_eq!(seen, (1..=7).collect::<Vec<_>>());
    store.close().await.expect("close");
}

// ---------------------------------------------------------------- tokens and accounts

#[tokio::test]
async fn refresh_rotation_and_reuse_detection() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let u = user(&store, "rotator").await;

    let first = store
        .issue_token_pair(pair(u.id, 1, 2, T0))
        .await
        .expect("login");
    let access = store
        .access_token(hash(1))
        .await
        .expect("read")
        .expect("access token");
    assert_eq!(
        (access.family_id, access.user.id, access.revoked_at_ms),
        (first.family_id, u.id, None)
    );

    let (second, who) = store
        .rotate_refresh(rotate(2, 3, 4, T0 + 10))
        .await
        .expect("rotate");
    assert_eq!(second.family_id, first.family_id, "same family");
    assert_eq!(who.id, u.id);
    let (third, _) = store
        .rotate_refresh(rotate(4, 5, 6, T0 + 20))
        .await
        .expect("rotate again");
    assert_eq!(third.family_id, first.family_id);

    // Presenting a used refresh token revokes the whole family, and that sticks.
    let err = store
        .rotate_refresh(rotate(2, 7, 8, T0 + 30))
        .await
        .expect_err("reuse");
    assert_eq!(
        err,
        StoreError::TokenReused {
            family_id: first.family_id
        }
    );
    for a in [1, 3, 5] {
        let t = store.access_token(hash(a)).await.expect("read").expect("t");
        assert_eq!(t.revoked_at_ms, Some(T0 + 30), "access token {a} revoked");
    }
    assert!(
        store.access_token(hash(7)).await.expect("read").is_none(),
        "the reuse attempt issued nothing"
    );
    // The newest refresh token of the revoked family no longer works either.
    let err = store
        .rotate_refresh(rotate(6, 9, 10, T0 + 40))
        .await
        .expect_err("revoked family");
    assert_eq!(err, StoreError::TokenRevoked);
    // Reuse survives a reopen (the revocation committed even though the call failed).
    store.close().await.expect("close");
    let store = open(&dir);
    let t = store.access_token(hash(5)).await.expect("read").expect("t");
    assert_eq!(t.revoked_at_ms, Some(T0 + 30));

    // Another login is unaffected; an expired refresh token is refused as expired.
    let other = store
        .issue_token_pair(NewTokenPair {
            refresh_expires_at_ms: T0 + 100,
            ..pair(u.id, 11, 12, T0)
        })
        .await
        .expect("second login");
    assert_ne!(other.family_id, first.family_id);
    let err = store
        .rotate_refresh(rotate(12, 13, 14, T0 + 100))
        .await
        .expect_err("expired");
    assert_eq!(err, StoreError::TokenExpired);
    let err = store
        .rotate_refresh(rotate(99, 15, 16, T0))
        .await
        .expect_err("unknown");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "refresh token",
                ..
            }
        ),
        "{err}"
    );
    // Logout revokes a family.
    let fresh = store
        .issue_token_pair(pair(u.id, 21, 22, T0))
        .await
        .expect("third login");
    assert_eq!(
        store
            .revoke_token_family(fresh.family_id, T0 + 5)
            .await
            .expect("logout"),
        2
    );
    let err = store
        .rotate_refresh(rotate(22, 23, 24, T0 + 6))
        .await
        .expect_err("logged out");
    assert_eq!(err, StoreError::TokenRevoked);
    // Reusing a hash is a conflict, not a silent overwrite.
    let err = store
        .issue_token_pair(pair(u.id, 11, 30, T0))
        .await
        .expect_err("duplicate hash");
    assert!(
        matches!(err, StoreError::Conflict { what: "token", .. }),
        "{err}"
    );
    store.close().await.expect("close");
}

#[tokio::test]
async fn deactivation_and_password_change_revoke_credentials() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let u = user(&store, "leaver").await;
    let bystander = user(&store, "stayer").await;
    let session = |user_id, n| NewAuthSession {
        user_id,
        token_hash: hash(n),
        csrf_token: format!("csrf-token-{n:08}"),
        created_at_ms: T0,
        expires_at_ms: T0 + 86_400_000,
    };
    store
        .create_auth_session(session(u.id, 100))
        .await
        .expect("session");
    store
        .create_auth_session(session(u.id, 101))
        .await
        .expect("session 2");
    store
        .create_auth_session(session(bystander.id, 102))
        .await
        .expect("bystander session");
    let f1 = store
        .issue_token_pair(pair(u.id, 1, 2, T0))
        .await
        .expect("login 1");
    store
        .issue_token_pair(pair(u.id, 3, 4, T0))
        .await
        .expect("login 2");
    store
        .issue_token_pair(pair(bystander.id, 5, 6, T0))
        .await
        .expect("bystander login");

    // Password change from session 100 keeps session 100 and nothing else... and from a token
    // family keeps that family.
    let changed = store
        .set_password_hash(u.id, HASH, KeepCredential::Family(f1.family_id), T0 + 1)
        .await
        .expect("change password");
    assert_eq!(changed.password_changed_at_ms, T0 + 1);
    let revoked = |n| {
        let store = store.clone();
        async move {
            store
                .access_token(hash(n))
                .await
                .expect("read")
                .expect("token")
                .revoked_at_ms
                .is_some()
        }
    };
    assert!(!revoked(1).await, "the kept family stays valid");
    assert!(revoked(3).await, "the other family is revoked");
    for n in [100, 101] {
        let (s, _) = store
            .auth_session(hash(n))
            .await
            .expect("read")
            .expect("session");
        assert_eq!(s.revoked_at_ms, Some(T0 + 1));
    }
    store
        .create_auth_session(session(u.id, 103))
        .await
        .expect("new session");
    store
        .set_password_hash(u.id, HASH, KeepCredential::Session(hash(103)), T0 + 2)
        .await
        .expect("change password again");
    let (s, _) = store
        .auth_session(hash(103))
        .await
        .expect("read")
        .expect("s");
    assert_eq!(s.revoked_at_ms, None, "the kept session stays valid");
    assert!(revoked(1).await, "now the family is revoked too");

    store
        .create_auth_session(session(u.id, 104))
        .await
        .expect("session");
    store
        .issue_token_pair(pair(u.id, 7, 8, T0 + 3))
        .await
        .expect("login 3");
    let before = count_kind(&path, "account.deactivated");
    let gone = store
        .deactivate_user(u.id, T0 + 10)
        .await
        .expect("deactivate");
    assert!(!gone.active);
    assert_eq!(count_kind(&path, "account.deactivated"), before + 1);
    assert!(revoked(7).await);
    for n in [103, 104] {
        let (s, owner) = store.auth_session(hash(n)).await.expect("read").expect("s");
        assert_eq!(s.revoked_at_ms, Some(T0 + 10));
        assert!(!owner.active);
    }
    let err = store
        .rotate_refresh(rotate(8, 9, 10, T0 + 11))
        .await
        .expect_err("deactivated");
    assert_eq!(err, StoreError::TokenRevoked);
    // Deactivating again changes nothing and appends nothing.
    store.deactivate_user(u.id, T0 + 20).await.expect("again");
    assert_eq!(count_kind(&path, "account.deactivated"), before + 1);
    // The bystander is untouched.
    assert!(!revoked(5).await);
    let (s, _) = store
        .auth_session(hash(102))
        .await
        .expect("read")
        .expect("s");
    assert_eq!(s.revoked_at_ms, None);
    // Revoking a session by hand.
    assert!(store
        .revoke_auth_session(hash(102), T0)
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_auth_session(hash(102), T0)
        .await
        .expect("again"));
    // No event carries a password hash.
    assert!(outbox(&path)
        .iter()
        .all(|e| !e.4.to_string().contains("argon2")));
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_admin_is_created_once_and_usernames_ignore_case() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    assert_eq!(store.user_count().await.expect("count"), 0);
    let mut tasks = JoinSet::new();
    for i in 0..10 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .create_first_admin(new_user(&format!("admin{i}"), UserRole::Audience))
                .await
        });
    }
    let (mut ok, mut closed) = (Vec::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            Ok(u) => ok.push(u),
            Err(StoreError::Conflict { what: "setup", .. }) => closed += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok.len(), closed), (1, 9));
    assert_eq!(ok[0].role, UserRole::Admin, "the first account is an admin");
    assert_eq!(store.user_count().await.expect("count"), 1);
    assert_eq!(count_kind(&path, "account.created"), 1);

    user(&store, "Alice").await;
    let err = store
        .create_user(new_user("ALICE", UserRole::Crew))
        .await
        .expect_err("same name, other case");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "username",
                ..
            }
        ),
        "{err}"
    );
    let found = store
        .user_by_username("alice")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found.username, "Alice");
    let creds = store
        .user_credentials("aLiCe")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(creds.password_hash, HASH);
    assert!(
        !format!("{creds:?}").contains("argon2"),
        "Debug redacts the hash"
    );
    assert_eq!(store.user(found.id).await.expect("read"), Some(found));
    store.close().await.expect("close");
}

// ---------------------------------------------------------------- ensembles

#[tokio::test]
async fn memberships_are_unique_and_an_ensemble_keeps_an_owner() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let owner = user(&store, "olga").await;
    let perf = user(&store, "pavel").await;
    let ens = store
        .create_ensemble("quartet", "The Quartet", owner.id, T0)
        .await
        .expect("create");
    assert_eq!(
        store.membership(ens.id, owner.id).await.expect("read"),
        Some(EnsembleRole::Owner)
    );
    let err = store
        .create_ensemble("quartet", "Another", perf.id, T0)
        .await
        .expect_err("slug taken");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "ensemble slug",
                ..
            }
        ),
        "{err}"
    );

    let m = store
        .add_member(ens.id, perf.id, EnsembleRole::Performer, T0)
        .await
        .expect("add");
    assert_eq!(
        (m.username.as_str(), m.role),
        ("pavel", EnsembleRole::Performer)
    );
    let events_before = outbox(&path).len();
    let err = store
        .add_member(ens.id, perf.id, EnsembleRole::Crew, T0)
        .await
        .expect_err("twice");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "membership",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(outbox(&path).len(), events_before);
    assert_eq!(
        store.membership(ens.id, perf.id).await.expect("read"),
        Some(EnsembleRole::Performer),
        "the failed add changed nothing"
    );
    let err = store
        .add_member(ens.id, 9_999, EnsembleRole::Crew, T0)
        .await
        .expect_err("no such user");
    assert!(
        matches!(err, StoreError::NotFound { what: "user", .. }),
        "{err}"
    );
    let err = store
        .add_member(9_999, perf.id, EnsembleRole::Crew, T0)
        .await
        .expect_err("no such ensemble");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "ensemble",
                ..
            }
        ),
        "{err}"
    );

    let members = store.members(ens.id).await.expect("list");
    assert_eq!(
        members
            .iter()
            .map(|m| (m.user_id, m.role))
            .collect::<Vec<_>>(),
        [
            (owner.id, EnsembleRole::Owner),
            (perf.id, EnsembleRole::Performer)
        ]
    );
    let err = store
        .remove_member(ens.id, owner.id, T0)
        .await
        .expect_err("last owner");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "last owner",
                ..
            }
        ),
        "{err}"
    );
    store
        .remove_member(ens.id, perf.id, T0)
        .await
        .expect("remove");
    let err = store
        .remove_member(ens.id, perf.id, T0)
        .await
        .expect_err("not a member");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "membership",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.membership(ens.id, perf.id).await.expect("read"), None);
    // Re-adding after removal is fine.
    store
        .add_member(ens.id, perf.id, EnsembleRole::Owner, T0)
        .await
        .expect("re-add");
    store
        .remove_member(ens.id, owner.id, T0)
        .await
        .expect("another owner remains");
    assert_eq!(
        kinds(&path)
            .into_iter()
            .filter(|k| k.starts_with("ensemble."))
            .collect::<Vec<_>>(),
        [
            "ensemble.created",
            "ensemble.member_added",
            "ensemble.member_added",
            "ensemble.member_removed",
            "ensemble.member_added",
            "ensemble.member_removed",
        ]
    );
    let (mine, _) = store
        .ensembles_for_user(perf.id, Page::first(10))
        .await
        .expect("mine");
    assert_eq!(mine, vec![ens.clone()]);
    let (theirs, _) = store
        .ensembles_for_user(owner.id, Page::first(10))
        .await
        .expect("theirs");
    assert!(theirs.is_empty());
    store.close().await.expect("close");
}

// ---------------------------------------------------------------- outbox atomicity

#[tokio::test]
async fn an_op_whose_event_cannot_be_written_writes_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let (owner, ens, piece) = owned_piece(&store, "atomic").await;
    let before = table_counts(&path);

    // Make every outbox insert fail from outside the store.
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER refuse_events BEFORE INSERT ON outbox \
             BEGIN SELECT RAISE(ABORT, 'outbox refused by test'); END;",
        )
        .expect("trigger");
    let err = store
        .create_piece(NewPiece {
            ensemble_id: ens,
            slug: "never".into(),
            title: "Never".into(),
            at_ms: T0,
        })
        .await
        .expect_err("event refused");
    assert!(err.to_string().contains("outbox refused by test"), "{err}");
    assert!(store
        .transition_piece(piece.id, PieceStatus::Rehearsal, T0)
        .await
        .is_err());
    assert!(store.deactivate_user(owner.id, T0).await.is_err());
    assert!(store
        .create_user(new_user("ghost", UserRole::Crew))
        .await
        .is_err());
    assert_eq!(table_counts(&path), before, "no change without its event");
    assert_eq!(
        store
            .piece(piece.id)
            .await
            .expect("read")
            .expect("p")
            .status,
        PieceStatus::Draft
    );
    assert!(store.user(owner.id).await.expect("read").expect("u").active);

    raw(&path)
        .execute_batch("DROP TRIGGER refuse_events")
        .expect("drop trigger");
    store
        .create_piece(NewPiece {
            ensemble_id: ens,
            slug: "later".into(),
            title: "Later".into(),
            at_ms: T0,
        })
        .await
        .expect("works again");
    assert_eq!(
        kinds(&path).last().map(String::as_str),
        Some("piece.created")
    );
    store.close().await.expect("close");
}

#[tokio::test]
async fn outbox_rows_survive_close_and_reopen_and_wake_watchers() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let mut watch = store.events_watch();
    let seen = *watch.borrow_and_update();
    let (_, _, piece) = owned_piece(&store, "durable").await;
    assert!(
        watch.has_changed().expect("watch open"),
        "a committed event wakes watchers"
    );
    assert_ne!(*watch.borrow_and_update(), seen);
    let v = draft(&store, piece.id, 1).await;
    store.publish_spec(piece.id, v, T0).await.expect("publish");
    let (demo, spec) = store
        .ensure_piece("demo", "Demo", SPEC)
        .await
        .expect("config piece");
    let show = store
        .create_show(demo.id, spec.id, "DEMO1", ShowKind::Performance)
        .await
        .expect("show");
    store
        .record_override(tutti_store::NewOverride {
            show_id: show.id,
            at_ms: T0,
            actor: "performer".into(),
            param: "tempo".into(),
            action: "lock".into(),
            detail_json: r#"{"value":120}"#.into(),
        })
        .await
        .expect("override");
    let before = outbox(&path);
    assert_eq!(
        before.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        [
            "account.created",
            "ensemble.created",
            "ensemble.member_added",
            "piece.created",
            "spec.drafted",
            "spec.published",
            "piece.created",
            "spec.published",
            "show.created",
            "override.applied",
        ]
    );
    let last = before.last().expect("override event");
    assert_eq!(last.3, format!("show:{}", show.id));
    assert_eq!(last.4["detail"]["value"], 120);
    assert_eq!(last.2, None, "config pieces belong to no ensemble");
    store.close().await.expect("close");

    let store = open(&dir);
    assert_eq!(
        outbox(&path),
        before,
        "the outbox survives a restart unchanged"
    );
    store.close().await.expect("close");
}

// ---------------------------------------------------------------- pagination

#[tokio::test]
async fn pagination_returns_every_row_exactly_once() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let (owner, ens, _) = owned_piece(&store, "page-0").await;
    let other = store
        .create_ensemble("other", "Other", owner.id, T0)
        .await
        .expect("other ensemble");
    for i in 1..=22 {
        let ensemble_id = if i % 4 == 0 { other.id } else { ens };
        store
            .create_piece(NewPiece {
                ensemble_id,
                slug: format!("page-{i}"),
                title: format!("Page {i}"),
                at_ms: T0,
            })
            .await
            .expect("piece");
    }
    for i in 0..13 {
        user(&store, &format!("u{i}")).await;
    }

    async fn collect<F, Fut, T>(limit: u32, mut f: F) -> Vec<T>
    where
        F: FnMut(Page) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, Option<i64>), StoreError>>,
    {
        let mut out = Vec::new();
        let mut page = Page::first(limit);
        loop {
            let (rows, next) = f(page).await.expect("page");
            assert!(rows.len() <= limit as usize);
            out.extend(rows);
            match next {
                Some(after) => page.after_id = Some(after),
                None => return out,
            }
        }
    }

    for limit in [1, 4, 5, 17, 100] {
        let in_ens: Vec<_> = collect(limit, |p| store.pieces(Some(ens), p))
            .await
            .into_iter()
            .map(|p| p.slug)
            .collect();
        let mut expected = vec!["page-0".to_owned()];
        expected.extend((1..=22).filter(|i| i % 4 != 0).map(|i| format!("page-{i}")));
        assert_eq!(in_ens, expected, "limit {limit}");
        let all = collect(limit, |p| store.pieces(None, p)).await;
        assert_eq!(all.len(), 23);
        let ids: Vec<i64> = all.iter().map(|p| p.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted, "ascending, no duplicates");
        let mine = collect(limit, |p| store.pieces_for_user(owner.id, p)).await;
        assert_eq!(mine.len(), 23, "the owner is in both ensembles");
        let users = collect(limit, |p| store.users(p)).await;
        assert_eq!(users.len(), 14);
        let ensembles = collect(limit, |p| store.ensembles(p)).await;
        assert_eq!(ensembles.len(), 2);
    }
    // Exactly `limit` rows left: the last full page says there is no next one.
    let (rows, next) = store.users(Page::first(14)).await.expect("page");
    assert_eq!((rows.len(), next), (14, None));
    let (rows, next) = store.users(Page::first(13)).await.expect("page");
    assert_eq!((rows.len(), next), (13, rows.last().map(|u| u.id)));

    for limit in [0, 1001] {
        let err = store
            .users(Page::first(limit))
            .await
            .expect_err("bad limit");
        assert!(
            matches!(err, StoreError::Invalid { field: "limit", .. }),
            "{err}"
        );
    }
    store.close().await.expect("close");
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn bad_input_is_refused_by_name_and_writes_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let (owner, ens, piece) = owned_piece(&store, "strict").await;
    let before = table_counts(&path);

    let long = "a".repeat(65);
    assert_eq!(
        field(store.create_user(new_user(&long, UserRole::Crew)).await),
        "username"
    );
    assert_eq!(
        field(
            store
                .create_user(new_user("has space", UserRole::Crew))
                .await
        ),
        "username"
    );
    assert_eq!(
        field(
            store
                .create_user(NewUser {
                    display_name: "x".repeat(201),
                    ..new_user("okname", UserRole::Crew)
                })
                .await
        ),
        "display_name"
    );
    let err = store
        .create_user(NewUser {
            password_hash: "plaintext-password".into(),
            ..new_user("okname", UserRole::Crew)
        })
        .await
        .expect_err("not a PHC string");
    assert!(matches!(
        err,
        StoreError::Invalid {
            field: "password_hash",
            ..
        }
    ));
    assert!(!err.to_string().contains("plaintext-password"), "{err}");
    assert_eq!(
        field(store.create_ensemble(&long, "Name", owner.id, T0).await),
        "slug"
    );
    assert_eq!(
        field(
            store
                .create_ensemble("Bad_Slug", "Name", owner.id, T0)
                .await
        ),
        "slug"
    );
    assert_eq!(
        field(store.create_ensemble("fine", "", owner.id, T0).await),
        "name"
    );
    assert_eq!(
        field(
            store
                .create_piece(NewPiece {
                    ensemble_id: ens,
                    slug: long.clone(),
                    title: "T".into(),
                    at_ms: T0,
                })
                .await
        ),
        "slug"
    );
    assert_eq!(
        field(
            store
                .create_piece(NewPiece {
                    ensemble_id: ens,
                    slug: "ok".into(),
                    title: "t".repeat(201),
                    at_ms: T0,
                })
                .await
        ),
        "title"
    );
    assert_eq!(
        field(
            store
                .update_piece_title(piece.id, "bad\u{7}title", T0)
                .await
        ),
        "title"
    );
    for bad in ["{\"params\":", "not json", "{} {}", ""] {
        assert_eq!(
            field(
                store
                    .create_spec_draft(NewSpecDraft {
                        piece_id: piece.id,
                        spec_json: bad.into(),
                        created_by: None,
                        note: None,
                        at_ms: T0,
                    })
                    .await
            ),
            "spec_json",
            "{bad:?}"
        );
    }
    assert_eq!(
        field(
            store
                .create_spec_draft(NewSpecDraft {
                    piece_id: piece.id,
                    spec_json: SPEC.into(),
                    created_by: None,
                    note: Some("n".repeat(2001)),
                    at_ms: T0,
                })
                .await
        ),
        "note"
    );
    assert_eq!(
        field(
            store
                .create_auth_session(NewAuthSession {
                    user_id: owner.id,
                    token_hash: hash(1),
                    csrf_token: "short".into(),
                    created_at_ms: T0,
                    expires_at_ms: T0 + 1,
                })
                .await
        ),
        "csrf_token"
    );
    assert_eq!(
        field(
            store
                .issue_token_pair(NewTokenPair {
                    access_expires_at_ms: T0,
                    ..pair(owner.id, 1, 2, T0)
                })
                .await
        ),
        "access_expires_at_ms"
    );
    assert_eq!(
        field(
            store
                .create_wizard_session(NewWizardSession {
                    user_id: owner.id,
                    pack_id: "dance".into(),
                    state_json: "{".into(),
                    at_ms: T0,
                })
                .await
        ),
        "state_json"
    );
    assert_eq!(
        field(
            store
                .put_idempotency_key(tutti_store::IdempotencyRow {
                    user_id: owner.id,
                    key: "k".repeat(65),
                    method: "POST".into(),
                    path: "/api/v1/ensembles".into(),
                    request_sha256: [0; 32],
                    status: 201,
                    response_json: "{}".into(),
                    created_at_ms: T0,
                })
                .await
        ),
        "idempotency key"
    );
    assert_eq!(
        field(
            store
                .create_show_for_piece(NewShow {
                    piece_id: piece.id,
                    spec_version: None,
                    code: "bad code".into(),
                    kind: ShowKind::Rehearsal,
                    at_ms: T0,
                })
                .await
        ),
        "code"
    );
    assert_eq!(
        field(
            store
                .transition_piece(piece.id, PieceStatus::Ready, -1)
                .await
        ),
        "at_ms"
    );
    // Duplicates where unique: refused by name, nothing written.
    let err = store
        .create_piece(NewPiece {
            ensemble_id: ens,
            slug: "strict".into(),
            title: "Again".into(),
            at_ms: T0,
        })
        .await
        .expect_err("slug taken");
    assert_eq!(
        err,
        StoreError::Conflict {
            what: "piece slug",
            value: "strict".into()
        }
    );
    let err = store
        .create_piece(NewPiece {
            ensemble_id: 777,
            slug: "orphan".into(),
            title: "Orphan".into(),
            at_ms: T0,
        })
        .await
        .expect_err("no ensemble");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "ensemble",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(table_counts(&path), before, "nothing half-written");
    store.close().await.expect("close");
}

// ---------------------------------------------------------------- guests, idempotency, wizard

#[tokio::test]
async fn guests_idempotency_keys_and_wizard_sessions_round_trip() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let (owner, _, piece) = owned_piece(&store, "misc").await;
    let v = draft(&store, piece.id, 1).await;
    let show = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: Some(v),
            code: "GUESTS".into(),
            kind: ShowKind::Rehearsal,
            at_ms: T0,
        })
        .await
        .expect("show");

    let g = store
        .create_guest(show.id, hash(50), T0)
        .await
        .expect("guest");
    assert_eq!(store.guest(hash(50)).await.expect("read"), Some(g.clone()));
    assert_eq!(store.guest(hash(51)).await.expect("read"), None);
    let err = store
        .create_guest(show.id, hash(50), T0)
        .await
        .expect_err("same device token");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "guest token",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .create_guest(4242, hash(52), T0)
        .await
        .expect_err("no show");
    assert!(
        matches!(err, StoreError::NotFound { what: "show", .. }),
        "{err}"
    );

    let row = tutti_store::IdempotencyRow {
        user_id: owner.id,
        key: "create-1".into(),
        method: "POST".into(),
        path: "/api/v1/ensembles".into(),
        request_sha256: [7; 32],
        status: 201,
        response_json: r#"{"id":1}"#.into(),
        created_at_ms: T0,
    };
    assert_eq!(
        store
            .idempotency_key(owner.id, "create-1")
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store.put_idempotency_key(row.clone()).await.expect("put"),
        row
    );
    let second = tutti_store::IdempotencyRow {
        request_sha256: [8; 32],
        response_json: r#"{"id":2}"#.into(),
        ..row.clone()
    };
    assert_eq!(
        store.put_idempotency_key(second).await.expect("put again"),
        row,
        "the first writer wins"
    );
    assert_eq!(
        store
            .idempotency_key(owner.id, "create-1")
            .await
            .expect("read"),
        Some(row.clone())
    );
    assert_eq!(store.purge_idempotency_keys(T0).await.expect("purge"), 0);
    assert_eq!(
        store.purge_idempotency_keys(T0 + 1).await.expect("purge"),
        1
    );
    assert_eq!(
        store
            .idempotency_key(owner.id, "create-1")
            .await
            .expect("read"),
        None
    );

    let w = store
        .create_wizard_session(NewWizardSession {
            user_id: owner.id,
            pack_id: "electronic".into(),
            state_json: r#"{"answers":{}}"#.into(),
            at_ms: T0,
        })
        .await
        .expect("wizard");
    assert_eq!(w.piece_id, None);
    let updated = store
        .update_wizard_session(w.id, r#"{"answers":{"tick":20}}"#, Some(piece.id), T0 + 5)
        .await
        .expect("update");
    assert_eq!(
        (
            updated.piece_id,
            updated.updated_at_ms,
            updated.created_at_ms
        ),
        (Some(piece.id), T0 + 5, T0)
    );
    let kept = store
        .update_wizard_session(w.id, r#"{"answers":{"tick":30}}"#, None, T0 + 6)
        .await
        .expect("update keeps piece");
    assert_eq!(kept.piece_id, Some(piece.id));
    assert_eq!(store.wizard_session(w.id).await.expect("read"), Some(kept));
    let err = store
        .update_wizard_session(w.id, "{}", Some(999), T0)
        .await
        .expect_err("unknown piece");
    assert!(
        matches!(err, StoreError::NotFound { what: "piece", .. }),
        "{err}"
    );
    let err = store
        .update_wizard_session(999, "{}", None, T0)
        .await
        .expect_err("unknown session");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "wizard session",
                ..
            }
        ),
        "{err}"
    );
    let (mine, next) = store
        .wizard_sessions_for_user(owner.id, Page::first(10))
        .await
        .expect("list");
    assert_eq!((mine.len(), next), (1, None));
    store.close().await.expect("close");
}

#[tokio::test]
async fn permission_reads_return_the_callers_role_with_the_object() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let (owner, ens, piece) = owned_piece(&store, "guarded").await;
    let crew = user(&store, "carla").await;
    let outsider = user(&store, "oscar").await;
    store
        .add_member(ens, crew.id, EnsembleRole::Crew, T0)
        .await
        .expect("add crew");
    let v = draft(&store, piece.id, 1).await;
    let show = store
        .create_show_for_piece(NewShow {
            piece_id: piece.id,
            spec_version: Some(v),
            code: "GUARD".into(),
            kind: ShowKind::Rehearsal,
            at_ms: T0,
        })
        .await
        .expect("show");
    for (who, role) in [
        (owner.id, Some(EnsembleRole::Owner)),
        (crew.id, Some(EnsembleRole::Crew)),
        (outsider.id, None),
    ] {
        let (p, r) = store
            .piece_with_role(piece.id, who)
            .await
            .expect("read")
            .expect("piece");
        assert_eq!((p.id, r), (piece.id, role));
        let access = store
            .show_with_role(show.id, who)
            .await
            .expect("read")
            .expect("show");
        assert_eq!(
            (access.show, access.ensemble_id, access.role),
            (show.clone(), Some(ens), role)
        );
    }
    assert_eq!(
        store.piece_with_role(9_999, owner.id).await.expect("read"),
        None
    );
    assert_eq!(
        store.show_with_role(9_999, owner.id).await.expect("read"),
        None
    );
    // A configuration piece has no ensemble and nobody has a role in it.
    let (demo, spec) = store
        .ensure_piece("demo", "Demo", SPEC)
        .await
        .expect("config piece");
    let demo_show = store
        .create_show(demo.id, spec.id, "DEMO", ShowKind::Performance)
        .await
        .expect("show");
    let (p, r) = store
        .piece_with_role(demo.id, owner.id)
        .await
        .expect("read")
        .expect("demo");
    assert_eq!((p.ensemble_id, r), (None, None));
    let access = store
        .show_with_role(demo_show.id, owner.id)
        .await
        .expect("read")
        .expect("demo show");
    assert_eq!((access.ensemble_id, access.role), (None, None));
    store.close().await.expect("close");
}

#[tokio::test]
async fn expired_credentials_are_purged_and_live_ones_kept() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let path = db_path(&dir);
    let u = user(&store, "tidy").await;
    // Family 1 expires entirely at T0 + 100; family 2 lives on.
    store
        .issue_token_pair(NewTokenPair {
            access_expires_at_ms: T0 + 50,
            refresh_expires_at_ms: T0 + 100,
            ..pair(u.id, 1, 2, T0)
        })
        .await
        .expect("short login");
    store
        .issue_token_pair(NewTokenPair {
            access_expires_at_ms: T0 + 50,
            ..pair(u.id, 3, 4, T0)
        })
        .await
        .expect("long login");
    store
        .create_auth_session(NewAuthSession {
            user_id: u.id,
            token_hash: hash(5),
            csrf_token: "0123456789abcdef".into(),
            created_at_ms: T0,
            expires_at_ms: T0 + 100,
        })
        .await
        .expect("session");
    assert_eq!(store.purge_expired_credentials(T0).await.expect("purge"), 0);
    // Access tokens 1 and 3, refresh token 2, the session: 4 rows.
    assert_eq!(
        store
            .purge_expired_credentials(T0 + 101)
            .await
            .expect("purge"),
        4
    );
    assert_eq!(store.access_token(hash(1)).await.expect("read"), None);
    assert_eq!(store.auth_session(hash(5)).await.expect("read"), None);
    assert_eq!(count(&path, "SELECT count(*) FROM token_families"), 1);
    let (rotated, _) = store
        .rotate_refresh(rotate(4, 6, 7, T0 + 200))
        .await
        .expect("the long family still refreshes");
    assert!(store.access_token(hash(6)).await.expect("read").is_some());
    assert_eq!(count(&path, "SELECT count(*) FROM token_families"), 1);
    assert_eq!(
        count(&path, "SELECT id FROM token_families"),
        rotated.family_id
    );
    let err = store
        .rotate_refresh(rotate(2, 8, 9, T0 + 200))
        .await
        .expect_err("purged token");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "refresh token",
                ..
            }
        ),
        "{err}"
    );
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_is_claimed_by_exactly_one_request() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let u = user(&store, "clicker").await;
    let claim = |sha: u8| tutti_store::NewIdempotencyClaim {
        user_id: u.id,
        key: "double-click".into(),
        method: "POST".into(),
        path: "/api/v1/ensembles".into(),
        request_sha256: [sha; 32],
        at_ms: T0,
    };
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        let c = claim(1);
        tasks.spawn(async move { store.claim_idempotency_key(c).await });
    }
    let (mut claimed, mut in_flight) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task").expect("claim") {
            tutti_store::IdempotencyClaim::Claimed => claimed += 1,
            tutti_store::IdempotencyClaim::InFlight { request_sha256, .. } => {
                assert_eq!(request_sha256, [1; 32]);
                in_flight += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((claimed, in_flight), (1, 19));
    let err = store
        .complete_idempotency_key(u.id, "double-click", 102, "{}")
        .await
        .expect_err("102 is not final");
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "status",
                ..
            }
        ),
        "{err}"
    );
    let done = store
        .complete_idempotency_key(u.id, "double-click", 201, r#"{"id":7}"#)
        .await
        .expect("complete");
    assert_eq!(
        (done.status, done.response_json.as_str()),
        (201, r#"{"id":7}"#)
    );
    match store.claim_idempotency_key(claim(2)).await.expect("claim") {
        tutti_store::IdempotencyClaim::Done(row) => {
            assert_eq!(row, done);
            assert_ne!(
                row.request_sha256, [2; 32],
                "the caller sees the body differs"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = store
        .complete_idempotency_key(u.id, "double-click", 200, "{}")
        .await
        .expect_err("already complete");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "idempotency claim",
                ..
            }
        ),
        "{err}"
    );
    assert!(!store
        .release_idempotency_key(u.id, "double-click")
        .await
        .expect("release"));
    // A failed request releases its claim so a retry can run.
    let mut second = claim(3);
    second.key = "retry-me".into();
    assert_eq!(
        store
            .claim_idempotency_key(second.clone())
            .await
            .expect("claim"),
        tutti_store::IdempotencyClaim::Claimed
    );
    assert!(store
        .release_idempotency_key(u.id, "retry-me")
        .await
        .expect("release"));
    assert_eq!(
        store
            .claim_idempotency_key(second)
            .await
            .expect("claim again"),
        tutti_store::IdempotencyClaim::Claimed
    );
    store.close().await.expect("close");
}

#[tokio::test]
async fn the_last_admin_stays_and_configured_pieces_never_take_over_ensemble_pieces() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let admin = store
        .create_first_admin(new_user("root", UserRole::Admin))
        .await
        .expect("admin");
    let err = store
        .deactivate_user(admin.id, T0)
        .await
        .expect_err("the only admin");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "last admin",
                ..
            }
        ),
        "{err}"
    );
    let second = store
        .create_user(new_user("root2", UserRole::Admin))
        .await
        .expect("second admin");
    store
        .deactivate_user(admin.id, T0)
        .await
        .expect("another admin remains");
    let err = store
        .deactivate_user(second.id, T0)
        .await
        .expect_err("now the only one");
    assert!(err.to_string().contains("only active admin"), "{err}");

    let (_, _, piece) = owned_piece(&store, "taken").await;
    let before = store.spec_versions(piece.id).await.expect("read");
    let err = store
        .ensure_piece("taken", "From the config", SPEC)
        .await
        .expect_err("an ensemble's piece");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "managed piece",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"taken\""), "{err}");
    let after = store.piece(piece.id).await.expect("read").expect("piece");
    assert_eq!(after.title, piece.title);
    assert_eq!(store.spec_versions(piece.id).await.expect("read"), before);
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_let_one_through_and_revoke_the_family() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let u = user(&store, "racer").await;
    let login = store
        .issue_token_pair(pair(u.id, 1, 2, T0))
        .await
        .expect("login");
    let mut tasks = JoinSet::new();
    for i in 0..10u32 {
        let store = store.clone();
        tasks.spawn(async move {
            (
                i,
                store
                    .rotate_refresh(rotate(2, 100 + i, 200 + i, T0 + 1))
                    .await,
            )
        });
    }
    let (mut winners, mut reused) = (Vec::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            (i, Ok((p, _))) => {
                assert_eq!(p.family_id, login.family_id);
                winners.push(i);
            }
            (_, Err(StoreError::TokenReused { family_id })) => {
                assert_eq!(family_id, login.family_id);
                reused += 1;
            }
            (_, Err(e)) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((winners.len(), reused), (1, 9));
    // The winner's new tokens died with the family when the token was presented again.
    let w = winners[0];
    let t = store
        .access_token(hash(100 + w))
        .await
        .expect("read")
        .expect("winner's access token");
    assert!(t.revoked_at_ms.is_some());
    let err = store
        .rotate_refresh(rotate(200 + w, 300, 301, T0 + 2))
        .await
        .expect_err("family revoked");
    assert_eq!(err, StoreError::TokenRevoked);
    store.close().await.expect("close");
}
