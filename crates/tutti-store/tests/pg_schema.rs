//! PostgreSQL's schema (`tutti_store::pg_schema`) against a real, private PostgreSQL server
//! that each test starts for itself (`common_pg`): the migrations apply and are idempotent, the
//! schema matches SQLite's table for table (columns, types, nullability, keys, indexes, foreign
//! keys, the number of CHECKs), and the database itself enforces the rules the store relies on.
//!
//! Needs PostgreSQL's server binaries (`./scripts/deps test`); without them every test fails.

mod common_pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common_pg::PrivatePostgres;
use postgres::error::SqlState;
use postgres::Client;
use tutti_store::pg_schema::{self, PgSchemaError, SCHEMA_VERSION};
use tutti_store::{Store, StoreConfig};

/// SQLite tables with no PostgreSQL table: the FTS5 virtual tables and their shadow tables.
/// `mem_fts` became the generated column `mem_episodes.fts`, `chat_fts` became
/// `chat_messages.fts` (see `pg_schema`).
const SQLITE_ONLY_TABLES: &[&str] = &[
    "chat_fts",
    "chat_fts_config",
    "chat_fts_data",
    "chat_fts_docsize",
    "chat_fts_idx",
    "mem_fts",
    "mem_fts_config",
    "mem_fts_data",
    "mem_fts_docsize",
    "mem_fts_idx",
];

/// PostgreSQL tables with no SQLite table: the schema version (SQLite's `PRAGMA user_version`).
const PG_ONLY_TABLES: &[&str] = &["tutti_schema_version"];

/// PostgreSQL columns with no SQLite column: the `tsvector`s that replace FTS5.
const PG_ONLY_COLUMNS: &[(&str, &str)] = &[("chat_messages", "fts"), ("mem_episodes", "fts")];

/// PostgreSQL indexes with no SQLite index: the GIN indexes over those `tsvector`s.
const PG_ONLY_INDEXES: &[&str] = &["chat_messages_fts", "mem_episodes_fts"];

/// One column: its name, its type in PostgreSQL's words, and whether it may be NULL.
type Column = (String, String, bool);

/// One index: its name when it was made by `CREATE INDEX` (a constraint's index has a name of
/// each engine's choosing), whether it is unique, its columns, whether it is partial.
type Index = (Option<String>, bool, Vec<String>, bool);

/// One foreign key: column, referenced table, referenced column, `ON DELETE` action.
type ForeignKey = (String, String, String, String);

/// What the comparison reads of one table.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: Vec<Column>,
    primary_key: Vec<String>,
    indexes: BTreeSet<Index>,
    foreign_keys: BTreeSet<ForeignKey>,
    checks: usize,
}

fn migrated(pg: &PrivatePostgres) -> Client {
    let mut client = pg.connect();
    let applied = pg_schema::migrate(&mut client).expect("migrate");
    assert_eq!(applied, SCHEMA_VERSION);
    client
}

fn applied_versions(client: &mut Client) -> Vec<i64> {
    client
        .query(
            "SELECT version FROM tutti_schema_version ORDER BY version",
            &[],
        )
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn migrations_apply_on_an_empty_database_and_a_second_run_applies_nothing() {
    let pg = PrivatePostgres::start();
    let mut client = pg.connect();
    assert_eq!(pg_schema::schema_version(&mut client).expect("version"), 0);

    assert_eq!(
        pg_schema::migrate(&mut client).expect("first run"),
        SCHEMA_VERSION
    );
    assert_eq!(
        pg_schema::schema_version(&mut client).expect("version"),
        SCHEMA_VERSION
    );
    let all: Vec<i64> = (1..=i64::from(SCHEMA_VERSION)).collect();
    assert_eq!(applied_versions(&mut client), all);

    // Again, and from a second connection: nothing left to apply, nothing recorded twice.
    assert_eq!(pg_schema::migrate(&mut client).expect("second run"), 0);
    let mut other = pg.connect();
    assert_eq!(pg_schema::migrate(&mut other).expect("third run"), 0);
    assert_eq!(applied_versions(&mut client), all);

    // A database migrated by a newer build is refused, not touched.
    client
        .execute(
            "INSERT INTO tutti_schema_version (version, applied_at_ms) VALUES ($1, 0)",
            &[&(i64::from(SCHEMA_VERSION) + 1)],
        )
        .expect("pretend a newer build migrated");
    let err = pg_schema::migrate(&mut client).expect_err("too new");
    assert!(
        matches!(err, PgSchemaError::TooNew { found, known }
            if found == i64::from(SCHEMA_VERSION) + 1 && known == SCHEMA_VERSION),
        "{err}"
    );
}

#[test]
fn a_migration_moves_data_written_under_the_schema_before_it() {
    // Migration 8 makes a room for every existing show, with its ensemble's members, and
    // "All Talk" when staff exist: its INSERTs must do in PostgreSQL what they do in SQLite.
    let pg = PrivatePostgres::start();
    let mut client = pg.connect();
    assert_eq!(pg_schema::migrate_to(&mut client, 7).expect("to 7"), 7);
    assert_eq!(pg_schema::schema_version(&mut client).expect("version"), 7);
    client
        .batch_execute(
            "INSERT INTO users (id, username, display_name, password_hash, role, \
                 created_at_ms, password_changed_at_ms) \
                 VALUES (1, 'ada', 'Ada', '$argon2id$x', 'performer', 10, 10), \
                        (2, 'bo', 'Bo', '$argon2id$x', 'crew', 20, 20);
             INSERT INTO ensembles (id, slug, name, created_at_ms) VALUES (1, 'e', 'E', 5);
             INSERT INTO memberships (ensemble_id, user_id, role, created_at_ms) \
                 VALUES (1, 1, 'owner', 11);
             INSERT INTO pieces (id, slug, title, created_at_ms, ensemble_id) \
                 VALUES (1, 'p', 'P', 5, 1);
             INSERT INTO spec_versions (id, piece_id, version, spec_json, status, created_at_ms) \
                 VALUES (1, 1, 1, '{}', 'current', 5);
             INSERT INTO shows (id, piece_id, spec_version_id, code, kind, status, created_at_ms) \
                 VALUES (1, 1, 1, 'ABC', 'performance', 'ended', 6), \
                        (2, 1, 1, 'DEF', 'rehearsal', 'live', 7);",
        )
        .expect("data under migration 7");
    assert_eq!(
        pg_schema::migrate(&mut client).expect("the rest"),
        SCHEMA_VERSION - 7
    );
    // kind, show, name, read-only, everyone
    type Room = (String, Option<i64>, Option<String>, i64, i64);
    let rooms: Vec<Room> = client
        .query(
            "SELECT kind, show_id, name, read_only, everyone FROM chat_rooms \
             ORDER BY show_id NULLS LAST",
            &[],
        )
        .expect("rooms")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        rooms,
        [
            (
                "show".to_owned(),
                Some(1),
                Some("Show ABC".to_owned()),
                1,
                0
            ),
            (
                "show".to_owned(),
                Some(2),
                Some("Show DEF".to_owned()),
                0,
                0
            ),
            ("closed".to_owned(), None, Some("All Talk".to_owned()), 0, 1),
        ]
    );
    let members: i64 = client
        .query_one(
            "SELECT count(*) FROM chat_members m JOIN chat_rooms r ON r.id = m.room_id \
             WHERE r.kind = 'show' AND m.user_id = 1",
            &[],
        )
        .expect("members")
        .get(0);
    assert_eq!(members, 2, "the ensemble's member is in both shows' rooms");
}

#[test]
fn the_schema_matches_sqlite_table_for_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tutti.db");
    let store = Store::open(StoreConfig::new(&db)).expect("open a fresh SQLite store");
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(store.close())
        .expect("close the store");
    let sqlite = sqlite_schema(&db);

    let pg = PrivatePostgres::start();
    let mut client = migrated(&pg);
    let postgres = pg_schema_of(&mut client);

    let sqlite_names: BTreeSet<&str> = sqlite.keys().map(String::as_str).collect();
    let pg_names: BTreeSet<&str> = postgres.keys().map(String::as_str).collect();
    let only_sqlite: Vec<&str> = sqlite_names.difference(&pg_names).copied().collect();
    let only_pg: Vec<&str> = pg_names.difference(&sqlite_names).copied().collect();
    assert_eq!(only_sqlite, SQLITE_ONLY_TABLES, "tables only SQLite has");
    assert_eq!(only_pg, PG_ONLY_TABLES, "tables only PostgreSQL has");

    let mut compared = 0;
    for name in sqlite_names.intersection(&pg_names) {
        let (lite, pg) = (&sqlite[*name], &postgres[*name]);
        assert_eq!(
            lite, pg,
            "table {name}: SQLite (left) and PostgreSQL (right)"
        );
        compared += 1;
    }
    // Not an empty intersection: migration 14 has 37 tables besides FTS5's.
    assert!(compared >= 37, "only {compared} tables compared");
}

#[test]
fn postgresql_enforces_the_rules_the_store_relies_on() {
    let pg = PrivatePostgres::start();
    let mut c = migrated(&pg);
    c.batch_execute(
        "INSERT INTO pieces (slug, title, created_at_ms) VALUES ('one', 'One', 1), ('two', 'Two', 1);
         INSERT INTO spec_versions (piece_id, version, spec_json, status, created_at_ms)
             SELECT id, 1, '{\"v\":1}', 'current', 2 FROM pieces;",
    )
    .expect("two pieces, each with a current spec");
    let piece: i64 = c
        .query_one("SELECT id FROM pieces WHERE slug = 'one'", &[])
        .expect("piece")
        .get(0);

    // At most one current spec per piece: the partial unique index refuses a second one…
    let err = c
        .execute(
            "INSERT INTO spec_versions (piece_id, version, spec_json, status, created_at_ms) \
             VALUES ($1, 2, '{}', 'current', 3)",
            &[&piece],
        )
        .expect_err("a second current spec");
    assert_refused(
        &err,
        &SqlState::UNIQUE_VIOLATION,
        "spec_versions_one_current",
    );
    // …but not a draft, and the current one can be handed over within a transaction.
    c.execute(
        "INSERT INTO spec_versions (piece_id, version, spec_json, status, created_at_ms) \
         VALUES ($1, 2, '{}', 'draft', 3)",
        &[&piece],
    )
    .expect("a draft beside the current spec");
    let mut tx = c.transaction().expect("begin");
    tx.execute(
        "UPDATE spec_versions SET status = 'superseded' WHERE piece_id = $1 AND version = 1",
        &[&piece],
    )
    .expect("supersede");
    tx.execute(
        "UPDATE spec_versions SET status = 'current' WHERE piece_id = $1 AND version = 2",
        &[&piece],
    )
    .expect("publish");
    tx.commit().expect("commit");
    let current: Vec<i64> = c
        .query(
            "SELECT version FROM spec_versions WHERE piece_id = $1 AND status = 'current'",
            &[&piece],
        )
        .expect("current")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(current, [2]);

    // A foreign key: a show of a piece that does not exist.
    let err = c
        .execute(
            "INSERT INTO shows (piece_id, spec_version_id, code, kind, status, created_at_ms) \
             VALUES (999, 1, 'NOPE', 'performance', 'scheduled', 4)",
            &[],
        )
        .expect_err("a show of no piece");
    assert_refused(
        &err,
        &SqlState::FOREIGN_KEY_VIOLATION,
        "shows_piece_id_fkey",
    );

    // A CHECK: a show status outside the lifecycle.
    let spec: i64 = c
        .query_one(
            "SELECT id FROM spec_versions WHERE piece_id = $1 AND status = 'current'",
            &[&piece],
        )
        .expect("spec")
        .get(0);
    let show = |status: &str| {
        format!(
            "INSERT INTO shows (piece_id, spec_version_id, code, kind, status, created_at_ms) \
             VALUES ({piece}, {spec}, 'S-{status}', 'performance', '{status}', 4)"
        )
    };
    let err = c.execute(&show("finished"), &[]).expect_err("bad status");
    assert_refused(&err, &SqlState::CHECK_VIOLATION, "shows_status_check");
    c.execute(&show("scheduled"), &[]).expect("a good status");

    // json_valid in a CHECK: a spec that is not JSON.
    let err = c
        .execute(
            "INSERT INTO spec_versions (piece_id, version, spec_json, status, created_at_ms) \
             VALUES ($1, 3, '{not json', 'draft', 5)",
            &[&piece],
        )
        .expect_err("not JSON");
    assert_refused(
        &err,
        &SqlState::CHECK_VIOLATION,
        "spec_versions_spec_json_check",
    );

    // COLLATE NOCASE: usernames are unique and found regardless of case.
    c.execute(
        "INSERT INTO users (username, display_name, password_hash, role, created_at_ms, \
         password_changed_at_ms) VALUES ('Ada', 'Ada', '$argon2id$x', 'admin', 1, 1)",
        &[],
    )
    .expect("a user");
    let err = c
        .execute(
            "INSERT INTO users (username, display_name, password_hash, role, created_at_ms, \
             password_changed_at_ms) VALUES ('ADA', 'Other', '$argon2id$y', 'crew', 1, 1)",
            &[],
        )
        .expect_err("the same name in other letters");
    assert_refused(&err, &SqlState::UNIQUE_VIOLATION, "users_username_key");
    let found: i64 = c
        .query_one("SELECT count(*) FROM users WHERE username = 'aDa'", &[])
        .expect("by name")
        .get(0);
    assert_eq!(found, 1);

    // The text index that replaces FTS5: words without their diacritics, text and notes apart.
    c.execute(
        "INSERT INTO mem_episodes (key, kind, tags_json, text, notes, status, started_at_ms) \
         VALUES ('k', 'show', '[]', 'Crème brûlée at the Café', 'encore', 'open', 1)",
        &[],
    )
    .expect("an episode");
    let mut hits = |query: &str| -> i64 {
        c.query_one(
            "SELECT count(*) FROM mem_episodes WHERE fts @@ to_tsquery('tutti_fts', $1)",
            &[&query],
        )
        .expect("search")
        .get(0)
    };
    assert_eq!(hits("cafe & creme"), 1);
    assert_eq!(hits("encore:B"), 1);
    assert_eq!(hits("encore:A"), 0);
    assert_eq!(hits("tiramisu"), 0);
}

fn assert_refused(err: &postgres::Error, code: &SqlState, constraint: &str) {
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not the database's refusal: {err}"));
    assert_eq!(db.code(), code, "{db}");
    assert_eq!(db.constraint(), Some(constraint), "{db}");
}

// ---------------------------------------------------------------- reading both schemas

/// Every table of a SQLite store, read with plain SQL on its file.
fn sqlite_schema(path: &Path) -> BTreeMap<String, Table> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open SQLite read-only");
    let tables: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("tables");
    let mut out = BTreeMap::new();
    for (name, sql) in tables {
        let mut table = Table::default();
        let mut pk: Vec<(i64, String)> = Vec::new();
        let columns: Vec<(String, String, bool, i64)> = conn
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")
            .and_then(|mut s| {
                s.query_map([&name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()
            })
            .expect("columns");
        for (column, decl, notnull, pk_pos) in columns {
            if pk_pos > 0 {
                pk.push((pk_pos, column.clone()));
            }
            let pg_type = match decl.as_str() {
                "INTEGER" => "bigint",
                "TEXT" => "text",
                "BLOB" => "bytea",
                "REAL" => "double precision",
                // FTS5 columns have no type; their tables are not compared.
                "" => "",
                other => panic!("{name}.{column}: unexpected SQLite type {other}"),
            };
            // A primary key column is never NULL (SQLite's rowid alias says notnull = 0).
            table
                .columns
                .push((column, pg_type.to_owned(), !(notnull || pk_pos > 0)));
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();

        let indexes: Vec<(String, bool, String, bool)> = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
            .and_then(|mut s| {
                s.query_map([&name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()
            })
            .expect("indexes");
        for (index, unique, origin, partial) in indexes {
            if origin == "pk" {
                continue; // compared as the primary key
            }
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .and_then(|mut s| {
                    s.query_map([&index], |r| r.get::<_, Option<String>>(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("index columns")
                .into_iter()
                .map(|c| c.unwrap_or_else(|| panic!("index {index}: an expression")))
                .collect();
            let named = (origin == "c").then_some(index);
            table.indexes.insert((named, unique, columns, partial));
        }

        let keys: Vec<ForeignKey> = conn
            .prepare(
                "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list(?1)",
            )
            .and_then(|mut s| {
                s.query_map([&name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()
            })
            .expect("foreign keys");
        table.foreign_keys = keys.into_iter().collect();
        // SQLite keeps each table's CREATE TABLE text, with added columns written into it.
        table.checks = sql.matches("CHECK (").count() + sql.matches("CHECK(").count();
        out.insert(name, table);
    }
    out
}

/// Every table of the PostgreSQL database's `public` schema, read from its catalogs.
fn pg_schema_of(c: &mut Client) -> BTreeMap<String, Table> {
    let mut out: BTreeMap<String, Table> = BTreeMap::new();
    for r in c
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES' \
             FROM information_schema.columns WHERE table_schema = 'public' \
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .expect("columns")
    {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        if PG_ONLY_COLUMNS.contains(&(table.as_str(), column.as_str())) {
            continue;
        }
        out.entry(table)
            .or_default()
            .columns
            .push((column, r.get(2), r.get(3)));
    }
    for r in c
        .query(
            "SELECT t.relname::text, i.relname::text, x.indisprimary, x.indisunique, \
                    x.indpred IS NOT NULL, \
                    EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid), \
                    ARRAY(SELECT a.attname::text \
                          FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS u(num, pos) \
                          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = u.num \
                          ORDER BY u.pos), \
                    x.indnkeyatts = array_length(x.indkey::int2[], 1) \
                    AND 0 <> ALL (x.indkey::int2[]) \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = 'public'",
            &[],
        )
        .expect("indexes")
    {
        let (table, index): (String, String) = (r.get(0), r.get(1));
        let (primary, unique, partial, of_constraint): (bool, bool, bool, bool) =
            (r.get(2), r.get(3), r.get(4), r.get(5));
        let columns: Vec<String> = r.get(6);
        let plain_columns: bool = r.get(7);
        if PG_ONLY_INDEXES.contains(&index.as_str()) {
            continue;
        }
        assert!(
            plain_columns,
            "index {index}: an expression or included columns"
        );
        let entry = out.entry(table).or_default();
        if primary {
            entry.primary_key = columns;
        } else {
            let named = (!of_constraint).then_some(index);
            entry.indexes.insert((named, unique, columns, partial));
        }
    }
    for r in c
        .query(
            "SELECT t.relname::text, a.attname::text, ft.relname::text, fa.attname::text, \
                    k.confdeltype::text, array_length(k.conkey, 1) \
             FROM pg_constraint k \
             JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             JOIN pg_class ft ON ft.oid = k.confrelid \
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] \
             JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1] \
             WHERE k.contype = 'f' AND n.nspname = 'public'",
            &[],
        )
        .expect("foreign keys")
    {
        let table: String = r.get(0);
        let width: i32 = r.get(5);
        assert_eq!(width, 1, "{table}: a foreign key of several columns");
        let on_delete = match r.get::<_, String>(4).as_str() {
            "a" => "NO ACTION",
            "c" => "CASCADE",
            "r" => "RESTRICT",
            "n" => "SET NULL",
            "d" => "SET DEFAULT",
            other => panic!("unknown confdeltype {other}"),
        };
        out.entry(table).or_default().foreign_keys.insert((
            r.get(1),
            r.get(2),
            r.get(3),
            on_delete.to_owned(),
        ));
    }
    for r in c
        .query(
            "SELECT t.relname::text, count(*) FROM pg_constraint k \
             JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE k.contype = 'c' AND n.nspname = 'public' GROUP BY t.relname",
            &[],
        )
        .expect("checks")
    {
        let count: i64 = r.get(1);
        out.entry(r.get(0)).or_default().checks = usize::try_from(count).expect("a count");
    }
    out
}
