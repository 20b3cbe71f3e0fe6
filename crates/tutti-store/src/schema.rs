//! The schema as an ordered list of migrations, applied by `rusqlite_migration` (the schema
//! version lives in SQLite's `user_version`; the file is marked with Tutti's `application_id`).
//!
//! Migrations are append-only: a released migration must never be edited, only followed by a new
//! one (issue 6 adds accounts, ensembles, idempotency keys and the outbox as migration 2+). This
//! module must never run anything but schema changes.

use rusqlite_migration::{Migrations, M};

/// `PRAGMA application_id` of a Tutti store: ASCII "Tutt".
pub(crate) const APPLICATION_ID: i32 = 0x5475_7474;

/// Migration 1: pieces, spec versions, shows, snapshots, overrides.
const V1: &str = r#"
PRAGMA application_id = 1416983668;

CREATE TABLE pieces (
    id            INTEGER PRIMARY KEY,
    slug          TEXT    NOT NULL UNIQUE,
    title         TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE spec_versions (
    id            INTEGER PRIMARY KEY,
    piece_id      INTEGER NOT NULL REFERENCES pieces(id),
    version       INTEGER NOT NULL CHECK (version >= 1),
    spec_json     TEXT    NOT NULL CHECK (json_valid(spec_json)),
    status        TEXT    NOT NULL CHECK (status IN ('draft', 'current', 'superseded')),
    created_at_ms INTEGER NOT NULL,
    UNIQUE (piece_id, version)
) STRICT;

-- The "exactly one current spec" invariant, enforced by the database itself.
CREATE UNIQUE INDEX spec_versions_one_current
    ON spec_versions(piece_id) WHERE status = 'current';

CREATE TABLE shows (
    id              INTEGER PRIMARY KEY,
    piece_id        INTEGER NOT NULL REFERENCES pieces(id),
    spec_version_id INTEGER NOT NULL REFERENCES spec_versions(id),
    code            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL CHECK (kind IN ('rehearsal', 'performance')),
    status          TEXT    NOT NULL CHECK (status IN ('scheduled', 'live', 'paused', 'ended')),
    created_at_ms   INTEGER NOT NULL,
    started_at_ms   INTEGER,
    ended_at_ms     INTEGER
) STRICT;

CREATE INDEX shows_active ON shows(id) WHERE status <> 'ended';
CREATE INDEX shows_by_piece ON shows(piece_id);

CREATE TABLE snapshots (
    show_id    INTEGER NOT NULL REFERENCES shows(id),
    tick       INTEGER NOT NULL CHECK (tick >= 0),
    at_ms      INTEGER NOT NULL,
    state_json TEXT    NOT NULL CHECK (json_valid(state_json)),
    PRIMARY KEY (show_id, tick)
) STRICT;

CREATE TABLE overrides (
    id          INTEGER PRIMARY KEY,
    show_id     INTEGER NOT NULL REFERENCES shows(id),
    at_ms       INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail_json TEXT    NOT NULL CHECK (json_valid(detail_json))
) STRICT;

CREATE INDEX overrides_by_show ON overrides(show_id, id);
"#;

const STEPS: &[M<'static>] = &[M::up(V1).foreign_key_check()];

/// Every migration, oldest first.
pub(crate) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

/// The schema version this build writes (the number of migrations).
pub(crate) const SCHEMA_VERSION: usize = STEPS.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().expect("migrations validate");
    }

    #[test]
    fn application_id_literal_matches_the_constant() {
        assert!(V1.contains(&format!("PRAGMA application_id = {APPLICATION_ID};")));
    }
}
