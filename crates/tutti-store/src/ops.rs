//! The SQL behind every operation: write functions run on the writer thread inside a batch
//! transaction, read functions run on a pooled read-only connection inside `spawn_blocking`.
//!
//! This is the only module that writes SQL. It must never be called from an async task, never
//! begin or commit a transaction itself (the writer owns transactions), and never return a SQL
//! type: rows come back as the plain structs of [`crate::model`].

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};

use serde_json::json;

use crate::error::{db, invalid_transition, is_unique_violation, StoreError};
use crate::model::{
    EventKind, NewEvent, OverrideRow, PieceRow, PieceStatus, ShowKind, ShowRow, ShowStatus,
    SnapshotRow, SpecStatus, SpecVersionRow, MAX_EVENT_JSON,
};

macro_rules! piece_cols {
    () => {
        "id, slug, title, created_at_ms, ensemble_id, status"
    };
}
macro_rules! spec_cols {
    () => {
        "id, piece_id, version, spec_json, status, created_at_ms, created_by, note"
    };
}
/// A show's columns, then its spec version's number (from `spec_versions`); the query must
/// read from `shows` without an alias.
macro_rules! show_cols {
    () => {
        "id, piece_id, spec_version_id, code, kind, status, created_at_ms, started_at_ms, \
         ended_at_ms, (SELECT v.version FROM spec_versions v WHERE v.id = shows.spec_version_id)"
    };
}
macro_rules! override_cols {
    () => {
        "id, show_id, at_ms, actor, param, action, detail_json"
    };
}

pub(crate) use {piece_cols, show_cols, spec_cols};

pub(crate) fn parse_col<T: std::str::FromStr<Err = StoreError>>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|e: StoreError| {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e.into())
    })
}

fn tick_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let tick: i64 = row.get(idx)?;
    u64::try_from(tick)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, e.into()))
}

pub(crate) fn piece_row(row: &Row<'_>) -> rusqlite::Result<PieceRow> {
    Ok(PieceRow {
        id: row.get(0)?,
        slug: row.get(1)?,
        title: row.get(2)?,
        created_at_ms: row.get(3)?,
        ensemble_id: row.get(4)?,
        status: parse_col(row, 5)?,
    })
}

pub(crate) fn spec_row(row: &Row<'_>) -> rusqlite::Result<SpecVersionRow> {
    Ok(SpecVersionRow {
        id: row.get(0)?,
        piece_id: row.get(1)?,
        version: row.get(2)?,
        spec_json: row.get(3)?,
        status: parse_col(row, 4)?,
        created_at_ms: row.get(5)?,
        created_by: row.get(6)?,
        note: row.get(7)?,
    })
}

pub(crate) fn show_row(row: &Row<'_>) -> rusqlite::Result<ShowRow> {
    Ok(ShowRow {
        id: row.get(0)?,
        piece_id: row.get(1)?,
        spec_version_id: row.get(2)?,
        code: row.get(3)?,
        kind: parse_col::<ShowKind>(row, 4)?,
        status: parse_col::<ShowStatus>(row, 5)?,
        created_at_ms: row.get(6)?,
        started_at_ms: row.get(7)?,
        ended_at_ms: row.get(8)?,
        spec_version: row.get(9)?,
    })
}

fn snapshot_row(row: &Row<'_>) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        show_id: row.get(0)?,
        tick: tick_col(row, 1)?,
        at_ms: row.get(2)?,
        state_json: row.get(3)?,
        health_json: row.get(4)?,
    })
}

fn override_row(row: &Row<'_>) -> rusqlite::Result<OverrideRow> {
    Ok(OverrideRow {
        id: row.get(0)?,
        show_id: row.get(1)?,
        at_ms: row.get(2)?,
        actor: row.get(3)?,
        param: row.get(4)?,
        action: row.get(5)?,
        detail_json: row.get(6)?,
    })
}

fn tick_param(tick: u64) -> Result<i64, StoreError> {
    i64::try_from(tick).map_err(|_| StoreError::Invalid {
        field: "tick",
        value: tick.to_string(),
        reason: format!("larger than {}", i64::MAX),
    })
}

/// Two JSON documents are the same spec when they parse to equal values (formatting and key
/// order do not matter). Unparseable text compares by bytes.
fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

// ---------------------------------------------------------------- reads (any connection)

pub(crate) fn piece_by_slug(conn: &Connection, slug: &str) -> Result<Option<PieceRow>, StoreError> {
    const OP: &str = "reading a piece by slug";
    conn.prepare_cached(concat!(
        "SELECT ",
        piece_cols!(),
        " FROM pieces WHERE slug = ?1"
    ))
    .map_err(db(OP))?
    .query_row([slug], piece_row)
    .optional()
    .map_err(db(OP))
}

pub(crate) fn spec_version(
    conn: &Connection,
    id: i64,
) -> Result<Option<SpecVersionRow>, StoreError> {
    const OP: &str = "reading a spec version";
    conn.prepare_cached(concat!(
        "SELECT ",
        spec_cols!(),
        " FROM spec_versions WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], spec_row)
    .optional()
    .map_err(db(OP))
}

pub(crate) fn current_spec(
    conn: &Connection,
    piece_id: i64,
) -> Result<Option<SpecVersionRow>, StoreError> {
    const OP: &str = "reading a piece's current spec";
    conn.prepare_cached(concat!(
        "SELECT ",
        spec_cols!(),
        " FROM spec_versions WHERE piece_id = ?1 AND status = 'current'"
    ))
    .map_err(db(OP))?
    .query_row([piece_id], spec_row)
    .optional()
    .map_err(db(OP))
}

pub(crate) fn spec_versions(
    conn: &Connection,
    piece_id: i64,
) -> Result<Vec<SpecVersionRow>, StoreError> {
    const OP: &str = "listing a piece's spec versions";
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            spec_cols!(),
            " FROM spec_versions WHERE piece_id = ?1 ORDER BY version"
        ))
        .map_err(db(OP))?;
    let rows = stmt.query_map([piece_id], spec_row).map_err(db(OP))?;
    rows.collect::<Result<_, _>>().map_err(db(OP))
}

pub(crate) fn show(conn: &Connection, id: i64) -> Result<Option<ShowRow>, StoreError> {
    const OP: &str = "reading a show";
    conn.prepare_cached(concat!(
        "SELECT ",
        show_cols!(),
        " FROM shows WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], show_row)
    .optional()
    .map_err(db(OP))
}

pub(crate) fn show_by_code(conn: &Connection, code: &str) -> Result<Option<ShowRow>, StoreError> {
    const OP: &str = "reading a show by code";
    conn.prepare_cached(concat!(
        "SELECT ",
        show_cols!(),
        " FROM shows WHERE code = ?1"
    ))
    .map_err(db(OP))?
    .query_row([code], show_row)
    .optional()
    .map_err(db(OP))
}

pub(crate) fn active_shows(conn: &Connection) -> Result<Vec<ShowRow>, StoreError> {
    const OP: &str = "listing active shows";
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            show_cols!(),
            " FROM shows WHERE status <> 'ended' ORDER BY id"
        ))
        .map_err(db(OP))?;
    let rows = stmt.query_map([], show_row).map_err(db(OP))?;
    rows.collect::<Result<_, _>>().map_err(db(OP))
}

pub(crate) fn latest_snapshot(
    conn: &Connection,
    show_id: i64,
) -> Result<Option<SnapshotRow>, StoreError> {
    const OP: &str = "reading the latest snapshot";
    conn.prepare_cached(
        "SELECT show_id, tick, at_ms, state_json, health_json FROM snapshots \
         WHERE show_id = ?1 ORDER BY tick DESC LIMIT 1",
    )
    .map_err(db(OP))?
    .query_row([show_id], snapshot_row)
    .optional()
    .map_err(db(OP))
}

pub(crate) fn snapshots(
    conn: &Connection,
    show_id: i64,
    after_tick: Option<u64>,
    limit: usize,
) -> Result<Vec<SnapshotRow>, StoreError> {
    const OP: &str = "listing snapshots";
    let after = match after_tick {
        Some(t) => tick_param(t)?,
        None => -1,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT show_id, tick, at_ms, state_json, health_json FROM snapshots \
             WHERE show_id = ?1 AND tick > ?2 ORDER BY tick LIMIT ?3",
        )
        .map_err(db(OP))?;
    let rows = stmt
        .query_map(params![show_id, after, limit], snapshot_row)
        .map_err(db(OP))?;
    rows.collect::<Result<_, _>>().map_err(db(OP))
}

pub(crate) fn overrides(conn: &Connection, show_id: i64) -> Result<Vec<OverrideRow>, StoreError> {
    const OP: &str = "listing overrides";
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            override_cols!(),
            " FROM overrides WHERE show_id = ?1 ORDER BY id"
        ))
        .map_err(db(OP))?;
    let rows = stmt.query_map([show_id], override_row).map_err(db(OP))?;
    rows.collect::<Result<_, _>>().map_err(db(OP))
}

// ---------------------------------------------------------------- outbox

/// Appends `ev` to the outbox on `conn` — call it inside a write closure, so the event commits (or
/// rolls back) with the change it describes. Returns the event's id.
pub(crate) fn append_event(conn: &Connection, ev: &NewEvent) -> Result<i64, StoreError> {
    let data = serde_json::to_string(&ev.data).map_err(|e| StoreError::Invalid {
        field: "event data",
        value: ev.kind.as_str().to_owned(),
        reason: e.to_string(),
    })?;
    if data.len() > MAX_EVENT_JSON {
        return Err(StoreError::Invalid {
            field: "event data",
            value: ev.kind.as_str().to_owned(),
            reason: format!("longer than {MAX_EVENT_JSON} bytes ({})", data.len()),
        });
    }
    conn.prepare_cached(
        "INSERT INTO outbox (kind, ensemble_id, subject, data_json, at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )
    .and_then(|mut s| {
        s.query_row(
            params![ev.kind.as_str(), ev.ensemble_id, ev.subject, data, ev.at_ms],
            |r| r.get(0),
        )
    })
    .map_err(db("appending an outbox event"))
}

/// Shorthand for [`append_event`].
pub(crate) fn event(
    conn: &Connection,
    kind: EventKind,
    ensemble_id: Option<i64>,
    subject: String,
    data: serde_json::Value,
    at_ms: i64,
) -> Result<i64, StoreError> {
    append_event(
        conn,
        &NewEvent {
            kind,
            ensemble_id,
            subject,
            data,
            at_ms,
        },
    )
}

/// The ensemble owning the piece (`None` for configuration pieces or an unknown piece).
pub(crate) fn piece_ensemble(conn: &Connection, piece_id: i64) -> Result<Option<i64>, StoreError> {
    const OP: &str = "reading a piece's ensemble";
    Ok(conn
        .prepare_cached("SELECT ensemble_id FROM pieces WHERE id = ?1")
        .map_err(db(OP))?
        .query_row([piece_id], |r| r.get::<_, Option<i64>>(0))
        .optional()
        .map_err(db(OP))?
        .flatten())
}

// ---------------------------------------------------------------- writes (writer thread only)

/// Creates the piece and version 1 (current) if absent; updates the title if it changed; if the
/// current spec differs (as JSON) from `spec_json`, inserts the next version as current and
/// supersedes the old one. All in the caller's transaction, so atomic. Appends `piece.created`,
/// `piece.updated` and `spec.published` for what it changes. A piece owned by an ensemble is
/// never taken over: its slug is a `managed piece` conflict.
pub(crate) fn ensure_piece(
    conn: &Connection,
    slug: &str,
    title: &str,
    spec_json: &str,
    now_ms: i64,
) -> Result<(PieceRow, SpecVersionRow), StoreError> {
    let piece = match piece_by_slug(conn, slug)? {
        Some(piece) if piece.ensemble_id.is_some() => {
            return Err(StoreError::Conflict {
                what: "managed piece",
                value: format!(
                    "the configured piece slug {slug:?} belongs to a piece of ensemble {}; \
                     rename the configured piece",
                    piece.ensemble_id.unwrap_or_default()
                ),
            });
        }
        Some(mut piece) => {
            if piece.title != title {
                conn.prepare_cached("UPDATE pieces SET title = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![piece.id, title]))
                    .map_err(db("updating a piece's title"))?;
                title.clone_into(&mut piece.title);
                event(
                    conn,
                    EventKind::PieceUpdated,
                    piece.ensemble_id,
                    format!("piece:{}", piece.id),
                    json!({"piece_id": piece.id, "title": title}),
                    now_ms,
                )?;
            }
            piece
        }
        None => {
            let id: i64 = conn
                .prepare_cached(
                    "INSERT INTO pieces (slug, title, created_at_ms) VALUES (?1, ?2, ?3) RETURNING id",
                )
                .and_then(|mut s| s.query_row(params![slug, title, now_ms], |r| r.get(0)))
                .map_err(db("creating a piece"))?;
            event(
                conn,
                EventKind::PieceCreated,
                None,
                format!("piece:{id}"),
                json!({"piece_id": id, "slug": slug, "title": title}),
                now_ms,
            )?;
            PieceRow {
                id,
                slug: slug.to_owned(),
                title: title.to_owned(),
                created_at_ms: now_ms,
                ensemble_id: None,
                status: PieceStatus::Draft,
            }
        }
    };

    let mut superseded = None;
    if let Some(current) = current_spec(conn, piece.id)? {
        if same_json(&current.spec_json, spec_json) {
            return Ok((piece, current));
        }
        conn.prepare_cached("UPDATE spec_versions SET status = 'superseded' WHERE id = ?1")
            .and_then(|mut s| s.execute([current.id]))
            .map_err(db("superseding a spec version"))?;
        superseded = Some(current.version);
    }
    let version = insert_spec_version(
        conn,
        piece.id,
        spec_json,
        SpecStatus::Current,
        None,
        None,
        now_ms,
    )?;
    event(
        conn,
        EventKind::SpecPublished,
        piece.ensemble_id,
        format!("piece:{}", piece.id),
        json!({
            "piece_id": piece.id,
            "spec_version_id": version.id,
            "version": version.version,
            "superseded_version": superseded,
        }),
        now_ms,
    )?;
    Ok((piece, version))
}

/// Inserts the piece's next version number with `status`.
pub(crate) fn insert_spec_version(
    conn: &Connection,
    piece_id: i64,
    spec_json: &str,
    status: SpecStatus,
    created_by: Option<i64>,
    note: Option<&str>,
    now_ms: i64,
) -> Result<SpecVersionRow, StoreError> {
    let (id, version): (i64, i64) = conn
        .prepare_cached(
            "INSERT INTO spec_versions (piece_id, version, spec_json, status, created_at_ms, created_by, note) \
             VALUES (?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM spec_versions WHERE piece_id = ?1), \
                     ?2, ?3, ?4, ?5, ?6) \
             RETURNING id, version",
        )
        .and_then(|mut s| {
            s.query_row(
                params![piece_id, spec_json, status.as_str(), now_ms, created_by, note],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .map_err(db("inserting a spec version"))?;
    Ok(SpecVersionRow {
        id,
        piece_id,
        version,
        spec_json: spec_json.to_owned(),
        status,
        created_at_ms: now_ms,
        created_by,
        note: note.map(str::to_owned),
    })
}

/// Creates a show in status `scheduled` and appends `show.created`.
pub(crate) fn create_show(
    conn: &Connection,
    piece_id: i64,
    spec_version_id: i64,
    code: &str,
    kind: ShowKind,
    now_ms: i64,
) -> Result<ShowRow, StoreError> {
    let spec = spec_version(conn, spec_version_id)?.ok_or_else(|| StoreError::NotFound {
        what: "spec version",
        id: spec_version_id.to_string(),
    })?;
    if spec.piece_id != piece_id {
        let piece_exists = conn
            .prepare_cached("SELECT 1 FROM pieces WHERE id = ?1")
            .and_then(|mut s| s.exists([piece_id]))
            .map_err(db("checking a piece"))?;
        if !piece_exists {
            return Err(StoreError::NotFound {
                what: "piece",
                id: piece_id.to_string(),
            });
        }
        return Err(StoreError::Invalid {
            field: "spec_version_id",
            value: spec_version_id.to_string(),
            reason: format!(
                "belongs to piece {}, not to piece {piece_id}",
                spec.piece_id
            ),
        });
    }
    let status = ShowStatus::Scheduled;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO shows (piece_id, spec_version_id, code, kind, status, created_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    piece_id,
                    spec_version_id,
                    code,
                    kind.as_str(),
                    status.as_str(),
                    now_ms
                ],
                |r| r.get::<_, i64>(0),
            )
        });
    let id = match inserted {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "show code",
                value: code.to_owned(),
            })
        }
        Err(e) => return Err(db("creating a show")(e)),
    };
    let ensemble = piece_ensemble(conn, piece_id)?;
    crate::chat::create_show_room(conn, id, ensemble, code, now_ms)?;
    event(
        conn,
        EventKind::ShowCreated,
        ensemble,
        format!("show:{id}"),
        json!({
            "show_id": id,
            "piece_id": piece_id,
            "spec_version_id": spec_version_id,
            "version": spec.version,
            "code": code,
            "kind": kind,
        }),
        now_ms,
    )?;
    Ok(ShowRow {
        id,
        piece_id,
        spec_version_id,
        spec_version: spec.version,
        code: code.to_owned(),
        kind,
        status,
        created_at_ms: now_ms,
        started_at_ms: None,
        ended_at_ms: None,
    })
}

/// Moves a show along its lifecycle and appends `show.transitioned`.
pub(crate) fn set_show_status(
    conn: &Connection,
    show_id: i64,
    to: ShowStatus,
    at_ms: i64,
) -> Result<ShowRow, StoreError> {
    let mut row = show(conn, show_id)?.ok_or_else(|| StoreError::NotFound {
        what: "show",
        id: show_id.to_string(),
    })?;
    let from = row.status;
    if !from.can_become(to) {
        return Err(invalid_transition("show", from, to, from.allowed_next()));
    }
    row.status = to;
    if to == ShowStatus::Live && row.started_at_ms.is_none() {
        row.started_at_ms = Some(at_ms);
    }
    if to == ShowStatus::Ended {
        row.ended_at_ms = Some(at_ms);
    }
    conn.prepare_cached(
        "UPDATE shows SET status = ?2, started_at_ms = ?3, ended_at_ms = ?4 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            show_id,
            to.as_str(),
            row.started_at_ms,
            row.ended_at_ms
        ])
    })
    .map_err(db("updating a show's status"))?;
    if to == ShowStatus::Ended {
        crate::chat::end_show_room(conn, show_id)?;
    }
    event(
        conn,
        EventKind::ShowTransitioned,
        piece_ensemble(conn, row.piece_id)?,
        format!("show:{show_id}"),
        json!({"show_id": show_id, "piece_id": row.piece_id, "from": from, "to": to}),
        at_ms,
    )?;
    Ok(row)
}

/// Inserts (or, for a repeated tick, replaces) a snapshot.
pub(crate) fn insert_snapshot(conn: &Connection, s: &SnapshotRow) -> Result<(), StoreError> {
    let tick = tick_param(s.tick)?;
    conn.prepare_cached(
        "INSERT INTO snapshots (show_id, tick, at_ms, state_json, health_json) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (show_id, tick) DO UPDATE SET at_ms = excluded.at_ms, \
         state_json = excluded.state_json, health_json = excluded.health_json",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.show_id,
            tick,
            s.at_ms,
            s.state_json,
            s.health_json
        ])
    })
    .map_err(db("writing a snapshot"))?;
    Ok(())
}

/// Replaces the show's crowd.
pub(crate) fn put_crowd(
    conn: &Connection,
    show_id: i64,
    tick: u64,
    at_ms: i64,
    crowd: &[u8],
) -> Result<(), StoreError> {
    let tick = tick_param(tick)?;
    conn.prepare_cached(
        "INSERT INTO show_crowds (show_id, tick, at_ms, crowd) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (show_id) DO UPDATE SET tick = excluded.tick, at_ms = excluded.at_ms, \
         crowd = excluded.crowd",
    )
    .and_then(|mut st| st.execute(params![show_id, tick, at_ms, crowd]))
    .map_err(db("writing a show's crowd"))?;
    Ok(())
}

/// The show's crowd as of its latest snapshot: tick and blob.
pub(crate) fn crowd(conn: &Connection, show_id: i64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    conn.prepare_cached("SELECT tick, crowd FROM show_crowds WHERE show_id = ?1")
        .and_then(|mut st| {
            st.query_row(params![show_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
        })
        .map(|row| row.map(|(tick, blob)| (u64::try_from(tick).unwrap_or(0), blob)))
        .map_err(db("reading a show's crowd"))
}

/// Logs an override and appends `override.applied`.
pub(crate) fn insert_override(
    conn: &Connection,
    o: &crate::model::NewOverride,
) -> Result<i64, StoreError> {
    const OP: &str = "checking a show";
    let ensemble: Option<Option<i64>> = conn
        .prepare_cached(
            "SELECT p.ensemble_id FROM shows s JOIN pieces p ON p.id = s.piece_id WHERE s.id = ?1",
        )
        .map_err(db(OP))?
        .query_row([o.show_id], |r| r.get(0))
        .optional()
        .map_err(db(OP))?;
    let Some(ensemble_id) = ensemble else {
        return Err(StoreError::NotFound {
            what: "show",
            id: o.show_id.to_string(),
        });
    };
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO overrides (show_id, at_ms, actor, param, action, detail_json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    o.show_id,
                    o.at_ms,
                    o.actor,
                    o.param,
                    o.action,
                    o.detail_json
                ],
                |r| r.get(0),
            )
        })
        .map_err(db("logging an override"))?;
    let detail: serde_json::Value =
        serde_json::from_str(&o.detail_json).unwrap_or(serde_json::Value::Null);
    event(
        conn,
        EventKind::OverrideApplied,
        ensemble_id,
        format!("show:{}", o.show_id),
        json!({
            "override_id": id,
            "show_id": o.show_id,
            "actor": o.actor,
            "param": o.param,
            "action": o.action,
            "detail": detail,
        }),
        o.at_ms,
    )?;
    Ok(id)
}
