//! Management objects: ensembles and memberships, pieces with their lifecycle, authored spec
//! drafts and publishing, shows created from a piece — the SQL (run on the writer thread or a read
//! connection) and the `Store` methods that validate arguments and queue them.
//!
//! Must never: leave a piece with two current spec versions (publishing supersedes and promotes
//! in one savepoint, and the partial unique index refuses a second current), let a status change
//! skip its lifecycle check, or change anything without appending its outbox event in the same
//! savepoint.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::json;

use crate::accounts::{page_params, paged, require_user, rows};
use crate::error::{db, invalid_transition, is_unique_violation, StoreError};
use crate::model::{
    self, EnsembleRole, EnsembleRow, EventKind, MemberRow, NewPiece, NewShow, NewSpecDraft, Page,
    PieceRow, PieceStatus, ShowAccess, ShowRow, SpecStatus, SpecVersionRow, MAX_DISPLAY_NAME_LEN,
    MAX_NOTE_LEN, MAX_SPEC_JSON, MAX_TITLE_LEN,
};
use crate::ops::{
    self, current_spec, event, insert_spec_version, parse_col, piece_cols, piece_row, show_cols,
    show_row, spec_cols, spec_row,
};
use crate::Store;

fn not_found(what: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

// ---------------------------------------------------------------- ensembles

fn ensemble_row(r: &Row<'_>) -> rusqlite::Result<EnsembleRow> {
    Ok(EnsembleRow {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        created_at_ms: r.get(3)?,
    })
}

fn ensemble(conn: &Connection, id: i64) -> Result<Option<EnsembleRow>, StoreError> {
    const OP: &str = "reading an ensemble";
    conn.prepare_cached("SELECT id, slug, name, created_at_ms FROM ensembles WHERE id = ?1")
        .map_err(db(OP))?
        .query_row([id], ensemble_row)
        .optional()
        .map_err(db(OP))
}

fn require_ensemble(conn: &Connection, id: i64) -> Result<EnsembleRow, StoreError> {
    ensemble(conn, id)?.ok_or_else(|| not_found("ensemble", id))
}

fn ensembles(
    conn: &Connection,
    user_id: Option<i64>,
    page: Page,
) -> Result<(Vec<EnsembleRow>, Option<i64>), StoreError> {
    const OP: &str = "listing ensembles";
    let (after, limit) = page_params(page);
    let rows = match user_id {
        None => rows(
            conn,
            OP,
            "SELECT id, slug, name, created_at_ms FROM ensembles \
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![after, limit],
            ensemble_row,
        ),
        Some(user) => rows(
            conn,
            OP,
            "SELECT id, slug, name, created_at_ms FROM ensembles \
                 WHERE id IN (SELECT ensemble_id FROM memberships WHERE user_id = ?1) \
                 AND id > ?2 ORDER BY id LIMIT ?3",
            params![user, after, limit],
            ensemble_row,
        ),
    }?;
    Ok(paged(rows, page, |e| e.id))
}

pub(crate) fn membership(
    conn: &Connection,
    ensemble_id: i64,
    user_id: i64,
) -> Result<Option<EnsembleRole>, StoreError> {
    const OP: &str = "reading a membership";
    conn.prepare_cached("SELECT role FROM memberships WHERE ensemble_id = ?1 AND user_id = ?2")
        .map_err(db(OP))?
        .query_row(params![ensemble_id, user_id], |r| {
            parse_col::<EnsembleRole>(r, 0)
        })
        .optional()
        .map_err(db(OP))
}

fn insert_member(
    conn: &Connection,
    ensemble_id: i64,
    user_id: i64,
    role: EnsembleRole,
    at_ms: i64,
) -> Result<MemberRow, StoreError> {
    let user = require_user(conn, user_id)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO memberships (ensemble_id, user_id, role, created_at_ms) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![ensemble_id, user_id, role.as_str(), at_ms]));
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "membership",
                value: format!("user {user_id} in ensemble {ensemble_id}"),
            })
        }
        Err(e) => return Err(db("adding a member")(e)),
    }
    event(
        conn,
        EventKind::EnsembleMemberAdded,
        Some(ensemble_id),
        format!("ensemble:{ensemble_id}"),
        json!({"ensemble_id": ensemble_id, "user_id": user_id, "role": role}),
        at_ms,
    )?;
    Ok(MemberRow {
        ensemble_id,
        user_id,
        username: user.username,
        display_name: user.display_name,
        role,
        created_at_ms: at_ms,
    })
}

fn create_ensemble(
    conn: &Connection,
    slug: &str,
    name: &str,
    owner_id: i64,
    at_ms: i64,
) -> Result<EnsembleRow, StoreError> {
    require_user(conn, owner_id)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO ensembles (slug, name, created_at_ms) VALUES (?1, ?2, ?3) RETURNING id",
        )
        .and_then(|mut s| s.query_row(params![slug, name, at_ms], |r| r.get::<_, i64>(0)));
    let id = match inserted {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "ensemble slug",
                value: slug.to_owned(),
            })
        }
        Err(e) => return Err(db("creating an ensemble")(e)),
    };
    event(
        conn,
        EventKind::EnsembleCreated,
        Some(id),
        format!("ensemble:{id}"),
        json!({"ensemble_id": id, "slug": slug, "name": name, "owner_id": owner_id}),
        at_ms,
    )?;
    insert_member(conn, id, owner_id, EnsembleRole::Owner, at_ms)?;
    Ok(EnsembleRow {
        id,
        slug: slug.to_owned(),
        name: name.to_owned(),
        created_at_ms: at_ms,
    })
}

fn add_member(
    conn: &Connection,
    ensemble_id: i64,
    user_id: i64,
    role: EnsembleRole,
    at_ms: i64,
) -> Result<MemberRow, StoreError> {
    require_ensemble(conn, ensemble_id)?;
    insert_member(conn, ensemble_id, user_id, role, at_ms)
}

fn remove_member(
    conn: &Connection,
    ensemble_id: i64,
    user_id: i64,
    at_ms: i64,
) -> Result<(), StoreError> {
    let role = membership(conn, ensemble_id, user_id)?.ok_or_else(|| {
        not_found(
            "membership",
            format!("user {user_id} in ensemble {ensemble_id}"),
        )
    })?;
    if role == EnsembleRole::Owner {
        let owners: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM memberships WHERE ensemble_id = ?1 AND role = 'owner'",
            )
            .and_then(|mut s| s.query_row([ensemble_id], |r| r.get(0)))
            .map_err(db("counting owners"))?;
        if owners <= 1 {
            return Err(StoreError::Conflict {
                what: "last owner",
                value: format!("user {user_id} is the only owner of ensemble {ensemble_id}"),
            });
        }
    }
    conn.prepare_cached("DELETE FROM memberships WHERE ensemble_id = ?1 AND user_id = ?2")
        .and_then(|mut s| s.execute(params![ensemble_id, user_id]))
        .map_err(db("removing a member"))?;
    event(
        conn,
        EventKind::EnsembleMemberRemoved,
        Some(ensemble_id),
        format!("ensemble:{ensemble_id}"),
        json!({"ensemble_id": ensemble_id, "user_id": user_id, "role": role}),
        at_ms,
    )?;
    Ok(())
}

fn members(conn: &Connection, ensemble_id: i64) -> Result<Vec<MemberRow>, StoreError> {
    const OP: &str = "listing members";
    conn.prepare_cached(
        "SELECT m.ensemble_id, m.user_id, u.username, u.display_name, m.role, m.created_at_ms \
         FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.ensemble_id = ?1 ORDER BY m.user_id",
    )
    .map_err(db(OP))?
    .query_map([ensemble_id], |r| {
        Ok(MemberRow {
            ensemble_id: r.get(0)?,
            user_id: r.get(1)?,
            username: r.get(2)?,
            display_name: r.get(3)?,
            role: parse_col(r, 4)?,
            created_at_ms: r.get(5)?,
        })
    })
    .map_err(db(OP))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(db(OP))
}

// ---------------------------------------------------------------- pieces

pub(crate) fn piece(conn: &Connection, id: i64) -> Result<Option<PieceRow>, StoreError> {
    const OP: &str = "reading a piece";
    conn.prepare_cached(concat!(
        "SELECT ",
        piece_cols!(),
        " FROM pieces WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], piece_row)
    .optional()
    .map_err(db(OP))
}

/// The piece and the user's role in its ensemble, in one read (for permission checks).
fn piece_with_role(
    conn: &Connection,
    piece_id: i64,
    user_id: i64,
) -> Result<Option<(PieceRow, Option<EnsembleRole>)>, StoreError> {
    const OP: &str = "reading a piece with the caller's role";
    conn.prepare_cached(concat!(
        "SELECT ",
        piece_cols!(),
        ", (SELECT role FROM memberships m WHERE m.ensemble_id = pieces.ensemble_id AND m.user_id = ?2) \
         FROM pieces WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row(params![piece_id, user_id], |r| {
        let role: Option<String> = r.get(6)?;
        let role = match role {
            Some(_) => Some(parse_col::<EnsembleRole>(r, 6)?),
            None => None,
        };
        Ok((piece_row(r)?, role))
    })
    .optional()
    .map_err(db(OP))
}

/// The show, its piece's ensemble and the user's role there, in one read.
fn show_with_role(
    conn: &Connection,
    show_id: i64,
    user_id: i64,
) -> Result<Option<ShowAccess>, StoreError> {
    const OP: &str = "reading a show with the caller's role";
    conn.prepare_cached(
        "SELECT s.id, s.piece_id, s.spec_version_id, s.code, s.kind, s.status, s.created_at_ms, \
         s.started_at_ms, s.ended_at_ms, \
         (SELECT v.version FROM spec_versions v WHERE v.id = s.spec_version_id), \
         p.ensemble_id, \
         (SELECT role FROM memberships m WHERE m.ensemble_id = p.ensemble_id AND m.user_id = ?2) \
         FROM shows s JOIN pieces p ON p.id = s.piece_id WHERE s.id = ?1",
    )
    .map_err(db(OP))?
    .query_row(params![show_id, user_id], |r| {
        let role: Option<String> = r.get(11)?;
        let role = match role {
            Some(_) => Some(parse_col::<EnsembleRole>(r, 11)?),
            None => None,
        };
        Ok(ShowAccess {
            show: show_row(r)?,
            ensemble_id: r.get(10)?,
            role,
        })
    })
    .optional()
    .map_err(db(OP))
}

fn require_piece(conn: &Connection, id: i64) -> Result<PieceRow, StoreError> {
    piece(conn, id)?.ok_or_else(|| not_found("piece", id))
}

/// The piece, refusing an archived one (archived pieces are read-only).
fn require_live_piece(conn: &Connection, id: i64) -> Result<PieceRow, StoreError> {
    let p = require_piece(conn, id)?;
    if p.status == PieceStatus::Archived {
        return Err(StoreError::Conflict {
            what: "archived piece",
            value: format!("piece {id} is archived"),
        });
    }
    Ok(p)
}

fn pieces(
    conn: &Connection,
    ensemble_id: Option<i64>,
    user_id: Option<i64>,
    page: Page,
) -> Result<(Vec<PieceRow>, Option<i64>), StoreError> {
    const OP: &str = "listing pieces";
    let (after, limit) = page_params(page);
    let rows = match (ensemble_id, user_id) {
        (Some(e), _) => rows(
            conn,
            OP,
            concat!(
                "SELECT ",
                piece_cols!(),
                " FROM pieces WHERE ensemble_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ),
            params![e, after, limit],
            piece_row,
        ),
        (None, Some(u)) => rows(
            conn,
            OP,
            concat!(
                "SELECT ",
                piece_cols!(),
                " FROM pieces WHERE ensemble_id IN \
                 (SELECT ensemble_id FROM memberships WHERE user_id = ?1) \
                 AND id > ?2 ORDER BY id LIMIT ?3"
            ),
            params![u, after, limit],
            piece_row,
        ),
        (None, None) => rows(
            conn,
            OP,
            concat!(
                "SELECT ",
                piece_cols!(),
                " FROM pieces WHERE id > ?1 ORDER BY id LIMIT ?2"
            ),
            params![after, limit],
            piece_row,
        ),
    }?;
    Ok(paged(rows, page, |p| p.id))
}

fn create_piece(conn: &Connection, p: &NewPiece) -> Result<PieceRow, StoreError> {
    require_ensemble(conn, p.ensemble_id)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO pieces (slug, title, created_at_ms, ensemble_id, status) \
             VALUES (?1, ?2, ?3, ?4, 'draft') RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![p.slug, p.title, p.at_ms, p.ensemble_id], |r| {
                r.get::<_, i64>(0)
            })
        });
    let id = match inserted {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "piece slug",
                value: p.slug.clone(),
            })
        }
        Err(e) => return Err(db("creating a piece")(e)),
    };
    event(
        conn,
        EventKind::PieceCreated,
        Some(p.ensemble_id),
        format!("piece:{id}"),
        json!({"piece_id": id, "ensemble_id": p.ensemble_id, "slug": p.slug, "title": p.title}),
        p.at_ms,
    )?;
    Ok(PieceRow {
        id,
        slug: p.slug.clone(),
        title: p.title.clone(),
        created_at_ms: p.at_ms,
        ensemble_id: Some(p.ensemble_id),
        status: PieceStatus::Draft,
    })
}

fn update_piece_title(
    conn: &Connection,
    id: i64,
    title: &str,
    at_ms: i64,
) -> Result<PieceRow, StoreError> {
    let mut p = require_live_piece(conn, id)?;
    if p.title == title {
        return Ok(p);
    }
    conn.prepare_cached("UPDATE pieces SET title = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, title]))
        .map_err(db("updating a piece's title"))?;
    event(
        conn,
        EventKind::PieceUpdated,
        p.ensemble_id,
        format!("piece:{id}"),
        json!({"piece_id": id, "title": title}),
        at_ms,
    )?;
    title.clone_into(&mut p.title);
    Ok(p)
}

fn transition_piece(
    conn: &Connection,
    id: i64,
    to: PieceStatus,
    at_ms: i64,
) -> Result<PieceRow, StoreError> {
    let mut p = require_piece(conn, id)?;
    let from = p.status;
    if !from.can_become(to) {
        return Err(invalid_transition("piece", from, to, from.allowed_next()));
    }
    conn.prepare_cached("UPDATE pieces SET status = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, to.as_str()]))
        .map_err(db("changing a piece's status"))?;
    event(
        conn,
        EventKind::PieceTransitioned,
        p.ensemble_id,
        format!("piece:{id}"),
        json!({"piece_id": id, "from": from, "to": to}),
        at_ms,
    )?;
    p.status = to;
    Ok(p)
}

// ---------------------------------------------------------------- spec versions

fn spec_version_by_number(
    conn: &Connection,
    piece_id: i64,
    version: i64,
) -> Result<Option<SpecVersionRow>, StoreError> {
    const OP: &str = "reading a spec version by number";
    conn.prepare_cached(concat!(
        "SELECT ",
        spec_cols!(),
        " FROM spec_versions WHERE piece_id = ?1 AND version = ?2"
    ))
    .map_err(db(OP))?
    .query_row(params![piece_id, version], spec_row)
    .optional()
    .map_err(db(OP))
}

fn spec_versions_page(
    conn: &Connection,
    piece_id: i64,
    page: Page,
) -> Result<(Vec<SpecVersionRow>, Option<i64>), StoreError> {
    const OP: &str = "listing spec versions";
    let (after, limit) = page_params(page);
    let rows = rows(
        conn,
        OP,
        concat!(
            "SELECT ",
            spec_cols!(),
            " FROM spec_versions WHERE piece_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        params![piece_id, after, limit],
        spec_row,
    )?;
    Ok(paged(rows, page, |v| v.id))
}

fn create_spec_draft(conn: &Connection, d: &NewSpecDraft) -> Result<SpecVersionRow, StoreError> {
    let p = require_live_piece(conn, d.piece_id)?;
    if let Some(author) = d.created_by {
        require_user(conn, author)?;
    }
    let v = insert_spec_version(
        conn,
        d.piece_id,
        &d.spec_json,
        SpecStatus::Draft,
        d.created_by,
        d.note.as_deref(),
        d.at_ms,
    )?;
    event(
        conn,
        EventKind::SpecDrafted,
        p.ensemble_id,
        format!("piece:{}", d.piece_id),
        json!({
            "piece_id": d.piece_id,
            "spec_version_id": v.id,
            "version": v.version,
            "created_by": d.created_by,
        }),
        d.at_ms,
    )?;
    Ok(v)
}

fn publish_spec(
    conn: &Connection,
    piece_id: i64,
    version: i64,
    at_ms: i64,
) -> Result<SpecVersionRow, StoreError> {
    let p = require_piece(conn, piece_id)?;
    let mut v = spec_version_by_number(conn, piece_id, version)?
        .ok_or_else(|| not_found("spec version", format!("{version} of piece {piece_id}")))?;
    if v.status == SpecStatus::Current {
        return Ok(v);
    }
    if p.status == PieceStatus::Archived {
        return Err(StoreError::Conflict {
            what: "archived piece",
            value: format!("piece {piece_id} is archived"),
        });
    }
    let previous = current_spec(conn, piece_id)?;
    if let Some(prev) = &previous {
        conn.prepare_cached("UPDATE spec_versions SET status = 'superseded' WHERE id = ?1")
            .and_then(|mut s| s.execute([prev.id]))
            .map_err(db("superseding a spec version"))?;
    }
    conn.prepare_cached("UPDATE spec_versions SET status = 'current' WHERE id = ?1")
        .and_then(|mut s| s.execute([v.id]))
        .map_err(db("publishing a spec version"))?;
    event(
        conn,
        EventKind::SpecPublished,
        p.ensemble_id,
        format!("piece:{piece_id}"),
        json!({
            "piece_id": piece_id,
            "spec_version_id": v.id,
            "version": v.version,
            "superseded_version": previous.map(|prev| prev.version),
        }),
        at_ms,
    )?;
    v.status = SpecStatus::Current;
    Ok(v)
}

// ---------------------------------------------------------------- shows

fn create_show_for_piece(conn: &Connection, s: &NewShow) -> Result<ShowRow, StoreError> {
    require_live_piece(conn, s.piece_id)?;
    let spec = match s.spec_version {
        Some(version) => spec_version_by_number(conn, s.piece_id, version)?.ok_or_else(|| {
            not_found("spec version", format!("{version} of piece {}", s.piece_id))
        })?,
        None => current_spec(conn, s.piece_id)?.ok_or_else(|| StoreError::Conflict {
            what: "no current spec",
            value: format!("piece {} has no published spec version", s.piece_id),
        })?,
    };
    ops::create_show(conn, s.piece_id, spec.id, &s.code, s.kind, s.at_ms)
}

fn shows(
    conn: &Connection,
    piece_id: Option<i64>,
    page: Page,
) -> Result<(Vec<ShowRow>, Option<i64>), StoreError> {
    const OP: &str = "listing shows";
    let (after, limit) = page_params(page);
    let rows = match piece_id {
        Some(p) => rows(
            conn,
            OP,
            concat!(
                "SELECT ",
                show_cols!(),
                " FROM shows WHERE piece_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ),
            params![p, after, limit],
            show_row,
        ),
        None => rows(
            conn,
            OP,
            concat!(
                "SELECT ",
                show_cols!(),
                " FROM shows WHERE id > ?1 ORDER BY id LIMIT ?2"
            ),
            params![after, limit],
            show_row,
        ),
    }?;
    Ok(paged(rows, page, |s| s.id))
}

// ---------------------------------------------------------------- Store methods

impl Store {
    /// Creates an ensemble with `owner_id` as its owner. A taken slug is
    /// [`StoreError::Conflict`] (`what: "ensemble slug"`). Appends `ensemble.created` and
    /// `ensemble.member_added`.
    pub async fn create_ensemble(
        &self,
        slug: &str,
        name: &str,
        owner_id: i64,
        at_ms: i64,
    ) -> Result<EnsembleRow, StoreError> {
        model::validate_slug(slug)?;
        model::validate_text("name", name, MAX_DISPLAY_NAME_LEN)?;
        model::validate_time("at_ms", at_ms)?;
        let (slug, name) = (slug.to_owned(), name.to_owned());
        self.write_ev(move |c| create_ensemble(c, &slug, &name, owner_id, at_ms))
            .await
    }

    /// The ensemble with this id.
    pub async fn ensemble(&self, id: i64) -> Result<Option<EnsembleRow>, StoreError> {
        self.read(move |c| ensemble(c, id)).await
    }

    /// A page of all ensembles in id order.
    pub async fn ensembles(
        &self,
        page: Page,
    ) -> Result<(Vec<EnsembleRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| ensembles(c, None, page)).await
    }

    /// A page of the ensembles the user is a member of, in id order.
    pub async fn ensembles_for_user(
        &self,
        user_id: i64,
        page: Page,
    ) -> Result<(Vec<EnsembleRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| ensembles(c, Some(user_id), page)).await
    }

    /// Adds a member. Already a member: [`StoreError::Conflict`] (`what: "membership"`).
    /// Appends `ensemble.member_added`.
    pub async fn add_member(
        &self,
        ensemble_id: i64,
        user_id: i64,
        role: EnsembleRole,
        at_ms: i64,
    ) -> Result<MemberRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write_ev(move |c| add_member(c, ensemble_id, user_id, role, at_ms))
            .await
    }

    /// Removes a member. Not a member: [`StoreError::NotFound`] (`what: "membership"`); the
    /// only owner: [`StoreError::Conflict`] (`what: "last owner"`). Appends
    /// `ensemble.member_removed`.
    pub async fn remove_member(
        &self,
        ensemble_id: i64,
        user_id: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write_ev(move |c| remove_member(c, ensemble_id, user_id, at_ms))
            .await
    }

    /// The ensemble's members, by user id.
    pub async fn members(&self, ensemble_id: i64) -> Result<Vec<MemberRow>, StoreError> {
        self.read(move |c| members(c, ensemble_id)).await
    }

    /// The user's role in the ensemble, if a member.
    pub async fn membership(
        &self,
        ensemble_id: i64,
        user_id: i64,
    ) -> Result<Option<EnsembleRole>, StoreError> {
        self.read(move |c| membership(c, ensemble_id, user_id))
            .await
    }

    /// Creates a piece (status `draft`) in an ensemble. Slugs are unique across all pieces
    /// (configuration pieces included): a taken one is [`StoreError::Conflict`]
    /// (`what: "piece slug"`). Appends `piece.created`.
    pub async fn create_piece(&self, p: NewPiece) -> Result<PieceRow, StoreError> {
        model::validate_slug(&p.slug)?;
        model::validate_text("title", &p.title, MAX_TITLE_LEN)?;
        model::validate_time("at_ms", p.at_ms)?;
        self.write_ev(move |c| create_piece(c, &p)).await
    }

    /// The piece with this id.
    pub async fn piece(&self, id: i64) -> Result<Option<PieceRow>, StoreError> {
        self.read(move |c| piece(c, id)).await
    }

    /// The piece and `user_id`'s role in the piece's ensemble (`None`: not a member, or a
    /// configuration piece), in one read — for permission checks on every request.
    pub async fn piece_with_role(
        &self,
        piece_id: i64,
        user_id: i64,
    ) -> Result<Option<(PieceRow, Option<EnsembleRole>)>, StoreError> {
        self.read(move |c| piece_with_role(c, piece_id, user_id))
            .await
    }

    /// The show, its piece's ensemble (`None` for configuration pieces) and `user_id`'s role
    /// there, in one read — e.g. for the live hub's performer check.
    pub async fn show_with_role(
        &self,
        show_id: i64,
        user_id: i64,
    ) -> Result<Option<ShowAccess>, StoreError> {
        self.read(move |c| show_with_role(c, show_id, user_id))
            .await
    }

    /// A page of pieces in id order: the ensemble's, or all of them when `ensemble_id` is `None`.
    pub async fn pieces(
        &self,
        ensemble_id: Option<i64>,
        page: Page,
    ) -> Result<(Vec<PieceRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| pieces(c, ensemble_id, None, page)).await
    }

    /// A page of the pieces of every ensemble the user is a member of, in id order.
    pub async fn pieces_for_user(
        &self,
        user_id: i64,
        page: Page,
    ) -> Result<(Vec<PieceRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| pieces(c, None, Some(user_id), page))
            .await
    }

    /// Renames a piece (an archived one is [`StoreError::Conflict`], `what: "archived piece"`).
    /// Appends `piece.updated` when the title changes.
    pub async fn update_piece_title(
        &self,
        piece_id: i64,
        title: &str,
        at_ms: i64,
    ) -> Result<PieceRow, StoreError> {
        model::validate_text("title", title, MAX_TITLE_LEN)?;
        model::validate_time("at_ms", at_ms)?;
        let title = title.to_owned();
        self.write_ev(move |c| update_piece_title(c, piece_id, &title, at_ms))
            .await
    }

    /// Moves a piece along its lifecycle ([`PieceStatus::allowed_next`]); anything else is
    /// [`StoreError::InvalidTransition`] naming the allowed statuses. Appends
    /// `piece.transitioned`.
    pub async fn transition_piece(
        &self,
        piece_id: i64,
        to: PieceStatus,
        at_ms: i64,
    ) -> Result<PieceRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write_ev(move |c| transition_piece(c, piece_id, to, at_ms))
            .await
    }

    /// Adds the piece's next spec version as a draft. Appends `spec.drafted`.
    pub async fn create_spec_draft(&self, d: NewSpecDraft) -> Result<SpecVersionRow, StoreError> {
        model::validate_json("spec_json", &d.spec_json, MAX_SPEC_JSON)?;
        model::validate_note("note", d.note.as_deref(), MAX_NOTE_LEN)?;
        model::validate_time("at_ms", d.at_ms)?;
        self.write_ev(move |c| create_spec_draft(c, &d)).await
    }

    /// The piece's spec version with this number.
    pub async fn spec_version_by_number(
        &self,
        piece_id: i64,
        version: i64,
    ) -> Result<Option<SpecVersionRow>, StoreError> {
        self.read(move |c| spec_version_by_number(c, piece_id, version))
            .await
    }

    /// A page of the piece's spec versions in id (= version) order.
    pub async fn spec_versions_page(
        &self,
        piece_id: i64,
        page: Page,
    ) -> Result<(Vec<SpecVersionRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| spec_versions_page(c, piece_id, page))
            .await
    }

    /// Publishes a version: it becomes the piece's current one and the previous current one is
    /// superseded, in one transaction. Drafts and superseded versions (a rollback) can be
    /// published; publishing the version that is already current changes nothing and appends no
    /// event (it returns the row). Appends `spec.published`.
    pub async fn publish_spec(
        &self,
        piece_id: i64,
        version: i64,
        at_ms: i64,
    ) -> Result<SpecVersionRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write_ev(move |c| publish_spec(c, piece_id, version, at_ms))
            .await
    }

    /// Creates a show (status `scheduled`) of a piece running the given spec version number, or
    /// the current one when `None` (none current: [`StoreError::Conflict`],
    /// `what: "no current spec"`). Appends `show.created`.
    pub async fn create_show_for_piece(&self, s: NewShow) -> Result<ShowRow, StoreError> {
        model::validate_code(&s.code)?;
        model::validate_time("at_ms", s.at_ms)?;
        self.write_ev(move |c| create_show_for_piece(c, &s)).await
    }

    /// A page of shows in id order: the piece's, or all of them when `piece_id` is `None`.
    pub async fn shows(
        &self,
        piece_id: Option<i64>,
        page: Page,
    ) -> Result<(Vec<ShowRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| shows(c, piece_id, page)).await
    }
}
