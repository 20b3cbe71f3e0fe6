//! The schema as an ordered list of migrations, applied by `rusqlite_migration` (the schema
//! version lives in SQLite's `user_version`; the file is marked with Tutti's `application_id`).
//!
//! Migrations are append-only: a released migration must never be edited, only followed by a new
//! one (migration 2 is issue 6's accounts, ensembles, idempotency keys, outbox and webhooks;
//! migration 4 is issue 13's performance memory, migration 5 its faster text indexing; migration 7
//! is issue 12's chat, migration 8 its audience identities, show rooms and "All Talk", migration 9 its moderation,
//! migration 10 its attachments, migration 14 its sounds through a show's sound). This module must never run anything but schema changes.

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

/// Migration 2 (issue 6): accounts, sessions and tokens, guests, ensembles and memberships, the
/// piece lifecycle and spec authorship, idempotency keys, the outbox, webhooks, wizard sessions.
const V2: &str = r#"
CREATE TABLE users (
    id                     INTEGER PRIMARY KEY,
    username               TEXT    NOT NULL UNIQUE COLLATE NOCASE
                                   CHECK (length(username) BETWEEN 1 AND 64),
    display_name           TEXT    NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    password_hash          TEXT    NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role                   TEXT    NOT NULL CHECK (role IN ('admin', 'performer', 'crew', 'audience')),
    active                 INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at_ms          INTEGER NOT NULL,
    password_changed_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE auth_sessions (
    id            INTEGER PRIMARY KEY,
    token_hash    BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    csrf_token    TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
) STRICT;

CREATE INDEX auth_sessions_by_user ON auth_sessions(user_id) WHERE revoked_at_ms IS NULL;

CREATE TABLE token_families (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
) STRICT;

CREATE INDEX token_families_by_user ON token_families(user_id) WHERE revoked_at_ms IS NULL;

CREATE TABLE refresh_tokens (
    token_hash    BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    family_id     INTEGER NOT NULL REFERENCES token_families(id),
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER,
    revoked_at_ms INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family_id);

CREATE TABLE access_tokens (
    token_hash    BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    family_id     INTEGER NOT NULL REFERENCES token_families(id),
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX access_tokens_by_family ON access_tokens(family_id);

CREATE TABLE guests (
    id            INTEGER PRIMARY KEY,
    show_id       INTEGER NOT NULL REFERENCES shows(id),
    token_hash    BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX guests_by_show ON guests(show_id);

CREATE TABLE ensembles (
    id            INTEGER PRIMARY KEY,
    slug          TEXT    NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 64),
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    ensemble_id   INTEGER NOT NULL REFERENCES ensembles(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    role          TEXT    NOT NULL CHECK (role IN ('owner', 'performer', 'crew')),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (ensemble_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX memberships_by_user ON memberships(user_id, ensemble_id);

ALTER TABLE pieces ADD COLUMN ensemble_id INTEGER REFERENCES ensembles(id);
ALTER TABLE pieces ADD COLUMN status TEXT NOT NULL DEFAULT 'draft'
    CHECK (status IN ('draft', 'rehearsal', 'ready', 'archived'));
CREATE INDEX pieces_by_ensemble ON pieces(ensemble_id, id);

ALTER TABLE spec_versions ADD COLUMN created_by INTEGER REFERENCES users(id);
ALTER TABLE spec_versions ADD COLUMN note TEXT;

CREATE INDEX shows_by_piece_id ON shows(piece_id, id);

CREATE TABLE idempotency_keys (
    user_id        INTEGER NOT NULL REFERENCES users(id),
    key            TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 64),
    method         TEXT    NOT NULL,
    path           TEXT    NOT NULL,
    request_sha256 BLOB    NOT NULL CHECK (length(request_sha256) = 32),
    status         INTEGER NOT NULL CHECK (status BETWEEN 100 AND 599),
    response_json  TEXT    NOT NULL CHECK (json_valid(response_json)),
    created_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at_ms);

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    ensemble_id INTEGER,
    subject     TEXT    NOT NULL,
    data_json   TEXT    NOT NULL CHECK (json_valid(data_json)),
    at_ms       INTEGER NOT NULL
) STRICT;

CREATE INDEX outbox_by_ensemble ON outbox(ensemble_id, id);

CREATE TABLE outbox_cursor (
    name    TEXT    NOT NULL PRIMARY KEY,
    last_id INTEGER NOT NULL
) STRICT;

CREATE TABLE webhooks (
    id                   INTEGER PRIMARY KEY,
    ensemble_id          INTEGER NOT NULL REFERENCES ensembles(id),
    url                  TEXT    NOT NULL,
    secret               TEXT    NOT NULL,
    kinds_json           TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(kinds_json)),
    active               INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    disabled_reason      TEXT,
    created_at_ms        INTEGER NOT NULL
) STRICT;

CREATE INDEX webhooks_by_ensemble ON webhooks(ensemble_id);

CREATE TABLE webhook_deliveries (
    id                 INTEGER PRIMARY KEY,
    webhook_id         INTEGER NOT NULL REFERENCES webhooks(id),
    event_id           INTEGER NOT NULL REFERENCES outbox(id),
    attempt            INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    status             TEXT    NOT NULL
                               CHECK (status IN ('pending', 'delivered', 'retrying', 'gave_up')),
    http_status        INTEGER,
    error              TEXT,
    next_attempt_at_ms INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at_ms)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries(webhook_id, id);

CREATE TABLE wizard_sessions (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    pack_id       TEXT    NOT NULL CHECK (length(pack_id) BETWEEN 1 AND 64),
    piece_id      INTEGER REFERENCES pieces(id),
    state_json    TEXT    NOT NULL CHECK (json_valid(state_json)),
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX wizard_sessions_by_user ON wizard_sessions(user_id, id);
"#;

/// Migration 3 (issue 16): each snapshot may carry the show's health at that moment
/// (connected and moving participants, per zone, counters, the sound's level) for reports.
const V3: &str = r#"
ALTER TABLE snapshots ADD COLUMN health_json TEXT
    CHECK (health_json IS NULL OR json_valid(health_json));
"#;

/// Migration 4 (issue 13): the performance memory. Episodes of any kind (a show is one),
/// their steps, their moments packed in chunks (an opaque blob per chunk: the memory crate
/// owns its format), full-text search over context text and notes (FTS5, kept in step with
/// the episodes by triggers, so a change and its text commit together), and the journal of
/// derived updates that failed and await repair.
const V4: &str = r#"
CREATE TABLE mem_episodes (
    id              INTEGER PRIMARY KEY,
    key             TEXT    NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 128),
    kind            TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    piece           TEXT,
    spec_version    INTEGER,
    ensemble_id     INTEGER,
    subject         TEXT,
    venue           TEXT,
    tags_json       TEXT    NOT NULL CHECK (json_valid(tags_json)),
    text            TEXT    NOT NULL,
    dims_json       TEXT    CHECK (dims_json IS NULL OR json_valid(dims_json)),
    status          TEXT    NOT NULL
                    CHECK (status IN ('open', 'completed', 'interrupted', 'abandoned')),
    started_at_ms   INTEGER NOT NULL,
    ended_at_ms     INTEGER,
    rating          REAL,
    notes           TEXT    NOT NULL DEFAULT '',
    engagement_json TEXT    CHECK (engagement_json IS NULL OR json_valid(engagement_json)),
    reward          REAL,
    steps           INTEGER NOT NULL DEFAULT 0,
    moments         INTEGER NOT NULL DEFAULT 0,
    -- Set (to the next number) whenever the episode is completed or its outcome changes:
    -- the in-memory indexes follow this sequence.
    done_seq        INTEGER UNIQUE,
    CHECK ((status = 'open') = (done_seq IS NULL))
) STRICT;

CREATE INDEX mem_episodes_scope ON mem_episodes(kind, piece, id);
CREATE INDEX mem_episodes_subject ON mem_episodes(subject, id) WHERE subject IS NOT NULL;
CREATE INDEX mem_episodes_open ON mem_episodes(id) WHERE status = 'open';

CREATE TABLE mem_steps (
    episode_id INTEGER NOT NULL REFERENCES mem_episodes(id),
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    at_ms      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    data_json  TEXT    NOT NULL CHECK (json_valid(data_json)),
    PRIMARY KEY (episode_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE mem_moments (
    episode_id INTEGER NOT NULL REFERENCES mem_episodes(id),
    first_seq  INTEGER NOT NULL CHECK (first_seq >= 0),
    count      INTEGER NOT NULL CHECK (count >= 1),
    dims       INTEGER NOT NULL CHECK (dims >= 1),
    data       BLOB    NOT NULL,
    PRIMARY KEY (episode_id, first_seq)
) STRICT, WITHOUT ROWID;

CREATE VIRTUAL TABLE mem_fts USING fts5(
    text, notes, content = 'mem_episodes', content_rowid = 'id', tokenize = 'unicode61'
);
CREATE TRIGGER mem_fts_insert AFTER INSERT ON mem_episodes BEGIN
    INSERT INTO mem_fts(rowid, text, notes) VALUES (new.id, new.text, new.notes);
END;
CREATE TRIGGER mem_fts_update AFTER UPDATE OF text, notes ON mem_episodes
WHEN old.text IS NOT new.text OR old.notes IS NOT new.notes BEGIN
    INSERT INTO mem_fts(mem_fts, rowid, text, notes) VALUES ('delete', old.id, old.text, old.notes);
    INSERT INTO mem_fts(rowid, text, notes) VALUES (new.id, new.text, new.notes);
END;

CREATE TABLE mem_journal (
    id             INTEGER PRIMARY KEY,
    episode_id     INTEGER NOT NULL,
    what           TEXT    NOT NULL,
    error          TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 1,
    at_ms          INTEGER NOT NULL,
    resolved_at_ms INTEGER
) STRICT;

CREATE INDEX mem_journal_pending ON mem_journal(id) WHERE resolved_at_ms IS NULL;
"#;

/// Migration 5 (issue 13, write rate): an episode's text row is no longer written by a
/// trigger per inserted episode. FTS5 writes its pending terms out as a new segment at every
/// savepoint, statement savepoints included, so a row per statement made one segment (and its
/// merges) per episode; the store now inserts the text rows of the episodes a write created
/// with one statement at the end of that write, in the same transaction (and before any
/// update of their text or notes, which the update trigger still follows).
const V5: &str = r#"
DROP TRIGGER mem_fts_insert;
"#;

/// Migration 6 (issue 17, the crowd survives a crash): a live show's participants as of its
/// latest snapshot (slots, hashed resume tokens, latest inputs), one row per show replaced at
/// every snapshot. The blob's format belongs to the show runtime (`tutti-show`).
const V6: &str = r#"
CREATE TABLE show_crowds (
    show_id INTEGER PRIMARY KEY REFERENCES shows(id) ON DELETE CASCADE,
    tick    INTEGER NOT NULL CHECK (tick >= 0),
    at_ms   INTEGER NOT NULL,
    crowd   BLOB    NOT NULL
) STRICT;
"#;

/// Migration 7 (issue 12): chat. Rooms (open, closed, direct, show) with their members and a
/// per-room event counter; one event log per room whose `seq` runs 1, 2, 3, … without gaps
/// (posted, edited, deleted, boosted, boost removed: every change is one event); the current
/// messages and boosts as state derived from that log in the same savepoint; FTS5 over the
/// text of messages not deleted (kept by triggers); each user's recent searches.
///
/// `chat_events.kind` is checked by the store, not by a CHECK list, so later kinds (pins,
/// announcements, moderation) need no table rebuild. A direct room's `direct_key` is its
/// sorted member ids, so the database refuses a second room for the same set of people.
const V7: &str = r#"
CREATE TABLE chat_rooms (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('open', 'closed', 'direct', 'show')),
    ensemble_id   INTEGER REFERENCES ensembles(id),
    show_id       INTEGER UNIQUE REFERENCES shows(id),
    name          TEXT    CHECK (name IS NULL OR length(name) BETWEEN 1 AND 100),
    read_only     INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1)),
    direct_key    TEXT    UNIQUE,
    last_seq      INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_by    INTEGER REFERENCES users(id),
    created_at_ms INTEGER NOT NULL,
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CHECK ((kind = 'show') = (show_id IS NOT NULL)),
    CHECK (kind <> 'open' OR ensemble_id IS NOT NULL)
) STRICT;

CREATE INDEX chat_rooms_by_ensemble ON chat_rooms(ensemble_id, id) WHERE ensemble_id IS NOT NULL;

CREATE TABLE chat_members (
    room_id       INTEGER NOT NULL REFERENCES chat_rooms(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    involvement   TEXT    NOT NULL
                  CHECK (involvement IN ('everything', 'mentions', 'nothing', 'invisible')),
    last_read_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX chat_members_by_user ON chat_members(user_id, room_id);

CREATE TABLE chat_messages (
    id                INTEGER PRIMARY KEY,
    room_id           INTEGER NOT NULL REFERENCES chat_rooms(id),
    author_id         INTEGER NOT NULL REFERENCES users(id),
    client_message_id TEXT    NOT NULL CHECK (length(client_message_id) BETWEEN 1 AND 64),
    body              TEXT    NOT NULL CHECK (length(body) <= 4000),
    reply_to          INTEGER REFERENCES chat_messages(id),
    posted_seq        INTEGER NOT NULL CHECK (posted_seq >= 1),
    last_seq          INTEGER NOT NULL CHECK (last_seq >= posted_seq),
    created_at_ms     INTEGER NOT NULL,
    edited_at_ms      INTEGER,
    edited_by         INTEGER REFERENCES users(id),
    deleted_at_ms     INTEGER,
    deleted_by        INTEGER REFERENCES users(id),
    UNIQUE (room_id, author_id, client_message_id),
    UNIQUE (room_id, posted_seq),
    CHECK (deleted_at_ms IS NULL OR body = '')
) STRICT;

CREATE TABLE chat_events (
    room_id    INTEGER NOT NULL REFERENCES chat_rooms(id),
    seq        INTEGER NOT NULL CHECK (seq >= 1),
    kind       TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    message_id INTEGER NOT NULL REFERENCES chat_messages(id),
    actor_id   INTEGER NOT NULL REFERENCES users(id),
    at_ms      INTEGER NOT NULL,
    text       TEXT,
    boost      TEXT,
    PRIMARY KEY (room_id, seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX chat_events_by_message ON chat_events(message_id);

CREATE TABLE chat_boosts (
    message_id INTEGER NOT NULL REFERENCES chat_messages(id),
    user_id    INTEGER NOT NULL REFERENCES users(id),
    content    TEXT    NOT NULL CHECK (length(content) BETWEEN 1 AND 16),
    seq        INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id, content)
) STRICT, WITHOUT ROWID;

CREATE VIRTUAL TABLE chat_fts USING fts5(
    body, content = 'chat_messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER chat_fts_insert AFTER INSERT ON chat_messages
WHEN new.deleted_at_ms IS NULL BEGIN
    INSERT INTO chat_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER chat_fts_update AFTER UPDATE OF body, deleted_at_ms ON chat_messages BEGIN
    INSERT INTO chat_fts(chat_fts, rowid, body)
        SELECT 'delete', old.id, old.body WHERE old.deleted_at_ms IS NULL;
    INSERT INTO chat_fts(rowid, body)
        SELECT new.id, new.body WHERE new.deleted_at_ms IS NULL;
END;

CREATE TABLE chat_searches (
    user_id INTEGER NOT NULL REFERENCES users(id),
    query   TEXT    NOT NULL CHECK (length(query) BETWEEN 1 AND 1000),
    at_ms   INTEGER NOT NULL,
    PRIMARY KEY (user_id, query)
) STRICT, WITHOUT ROWID;

CREATE INDEX chat_searches_recent ON chat_searches(user_id, at_ms);
"#;

/// Migration 8 (issue 12): who chats from the audience, a room for every show, "All Talk".
///
/// An audience member who chats is a `users` row of role `audience` whose password hash is a
/// placeholder no password verifies (see `chat::AUDIENCE_PASSWORD_HASH`), with a username no
/// staff account can take (it starts with `~`, which usernames refuse); `chat_audience` ties
/// it to its show and, for a phone with a device token, one-to-one to its `guests` row.
/// Every existing show gets its room (read-only when the show has ended) with the members of
/// its piece's ensemble. `chat_rooms.everyone` marks the one room every signed-in (non-audience)
/// account belongs to, "All Talk": a `closed` room of no ensemble that staff join on their
/// first look; installations that already have staff get it here.
const V8: &str = r#"
ALTER TABLE chat_rooms ADD COLUMN everyone INTEGER NOT NULL DEFAULT 0 CHECK (everyone IN (0, 1));
CREATE UNIQUE INDEX chat_rooms_one_everyone ON chat_rooms(everyone) WHERE everyone = 1;

CREATE TABLE chat_audience (
    user_id       INTEGER PRIMARY KEY REFERENCES users(id),
    show_id       INTEGER NOT NULL REFERENCES shows(id),
    guest_id      INTEGER UNIQUE REFERENCES guests(id),
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX chat_audience_by_show ON chat_audience(show_id);

INSERT INTO chat_rooms (kind, ensemble_id, show_id, name, read_only, created_at_ms)
SELECT 'show', p.ensemble_id, s.id, substr('Show ' || s.code, 1, 100), s.status = 'ended',
       s.created_at_ms
FROM shows s JOIN pieces p ON p.id = s.piece_id
WHERE NOT EXISTS (SELECT 1 FROM chat_rooms r WHERE r.show_id = s.id);

INSERT OR IGNORE INTO chat_members (room_id, user_id, involvement, created_at_ms)
SELECT r.id, m.user_id, 'everything', r.created_at_ms
FROM chat_rooms r JOIN memberships m ON m.ensemble_id = r.ensemble_id
WHERE r.kind = 'show';

INSERT INTO chat_rooms (kind, name, everyone, created_at_ms)
SELECT 'closed', 'All Talk', 1, min(created_at_ms) FROM users WHERE role <> 'audience'
HAVING count(*) > 0;
"#;

/// Migration 9 (issue 12, item 8): moderation. Per room: slow mode (seconds between one
/// user's messages) and a word filter (`chat_room_settings`, a row only once a moderator set
/// something). Per user in a room: one restriction at a time (`mute`, `shadow_mute` or `ban`,
/// with who set it and why). A shadow-muted author's messages are stored with `hidden = 1`:
/// they take their `seq` like any other (the sequence stays gap-free) and are handed only to
/// their author and the room's moderators. A deletion's event records whether a moderator
/// removed someone else's message (`moderated`). `chat_mod_log` is the audit log of every
/// moderation action, written in the savepoint of the action itself.
const V9: &str = r#"
CREATE TABLE chat_room_settings (
    room_id       INTEGER PRIMARY KEY REFERENCES chat_rooms(id),
    slow_mode_s   INTEGER NOT NULL DEFAULT 0 CHECK (slow_mode_s BETWEEN 0 AND 3600),
    filter_json   TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(filter_json)),
    updated_by    INTEGER REFERENCES users(id),
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE chat_restrictions (
    room_id       INTEGER NOT NULL REFERENCES chat_rooms(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('mute', 'shadow_mute', 'ban')),
    reason        TEXT    CHECK (reason IS NULL OR length(reason) <= 500),
    created_by    INTEGER NOT NULL REFERENCES users(id),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE chat_messages ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1));
ALTER TABLE chat_events ADD COLUMN moderated INTEGER NOT NULL DEFAULT 0 CHECK (moderated IN (0, 1));

CREATE INDEX chat_messages_by_author ON chat_messages(room_id, author_id, created_at_ms);

CREATE TABLE chat_mod_log (
    id             INTEGER PRIMARY KEY,
    room_id        INTEGER NOT NULL REFERENCES chat_rooms(id),
    actor_id       INTEGER NOT NULL REFERENCES users(id),
    action         TEXT    NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    target_user_id INTEGER REFERENCES users(id),
    message_id     INTEGER REFERENCES chat_messages(id),
    detail_json    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail_json)),
    reason         TEXT    CHECK (reason IS NULL OR length(reason) <= 500),
    at_ms          INTEGER NOT NULL
) STRICT;

CREATE INDEX chat_mod_log_by_room ON chat_mod_log(room_id, id);
"#;

/// Migration 10 (issue 12, item 2): attachments. One row per upload: its room and uploader,
/// the SHA-256 of its bytes (the name of its file under `attachments/` in the data directory,
/// see `chat/attachments.rs`), the media type sniffed from the bytes, the size, the sanitised
/// name, an image's dimensions and its thumbnail's SHA-256. An upload is unattached
/// (`message_id` NULL) until a message takes it, at a `position` (0–3) of that message.
const V10: &str = r#"
CREATE TABLE chat_attachments (
    id            INTEGER PRIMARY KEY,
    room_id       INTEGER NOT NULL REFERENCES chat_rooms(id),
    uploader_id   INTEGER NOT NULL REFERENCES users(id),
    sha256        TEXT    NOT NULL CHECK (length(sha256) = 64),
    media_type    TEXT    NOT NULL CHECK (length(media_type) BETWEEN 1 AND 100),
    size          INTEGER NOT NULL CHECK (size >= 1),
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    width         INTEGER CHECK (width IS NULL OR width >= 1),
    height        INTEGER CHECK (height IS NULL OR height >= 1),
    thumb_sha256  TEXT    CHECK (thumb_sha256 IS NULL OR length(thumb_sha256) = 64),
    message_id    INTEGER REFERENCES chat_messages(id),
    position      INTEGER CHECK (position IS NULL OR position BETWEEN 0 AND 3),
    created_at_ms INTEGER NOT NULL,
    CHECK ((message_id IS NULL) = (position IS NULL)),
    UNIQUE (message_id, position)
) STRICT;

CREATE INDEX chat_attachments_by_message ON chat_attachments(message_id)
    WHERE message_id IS NOT NULL;
"#;

/// Migration 11 (issue 12, item 7): chat bots. A bot is a `users` row of role `audience` (so it
/// has no management rights and never joins "All Talk") whose password hash is a placeholder no
/// password verifies, with its row here: the SHA-256 of its key (the key itself is shown once,
/// at creation and at each rotation), an optional outgoing webhook URL and the secret its
/// deliveries are signed with (kept like a webhook's, since signing needs it), the ensemble
/// whose owners and performers manage it (none: admins only), and when it was deleted. Chat
/// changes now reach the outbox (`chat/published.rs`); deleting a message scrubs its text from
/// its earlier events there, found by subject (`outbox_by_subject`).
const V11: &str = r#"
CREATE TABLE chat_bots (
    user_id           INTEGER PRIMARY KEY REFERENCES users(id),
    ensemble_id       INTEGER REFERENCES ensembles(id),
    key_hash          BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    webhook_url       TEXT    CHECK (webhook_url IS NULL OR length(webhook_url) BETWEEN 1 AND 2000),
    webhook_secret    TEXT    NOT NULL CHECK (length(webhook_secret) BETWEEN 16 AND 200),
    created_by        INTEGER REFERENCES users(id),
    created_at_ms     INTEGER NOT NULL,
    key_rotated_at_ms INTEGER NOT NULL,
    deleted_at_ms     INTEGER
) STRICT;

CREATE INDEX chat_bots_by_ensemble ON chat_bots(ensemble_id) WHERE ensemble_id IS NOT NULL;

CREATE INDEX outbox_by_subject ON outbox(subject);
"#;

/// Migration 12 (issue 12, item 8): a short delay before an audience member's message reaches
/// others, so crew can catch it. Per room, `audience_delay_s` (0–60 s, 0 off). A held message
/// carries `held_until_ms` until it is released or deleted; every event of a message written
/// while it is held is `private` (handed only to its author and the room's moderators, like a
/// shadow-muted author's); its release is a later, public `message_released` event, so the
/// room's sequence stays the one order everyone catches up in.
const V12: &str = r#"
ALTER TABLE chat_room_settings ADD COLUMN audience_delay_s INTEGER NOT NULL DEFAULT 0
    CHECK (audience_delay_s BETWEEN 0 AND 60);
ALTER TABLE chat_messages ADD COLUMN held_until_ms INTEGER;
ALTER TABLE chat_events ADD COLUMN private INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1));
CREATE INDEX chat_messages_held ON chat_messages(held_until_ms) WHERE held_until_ms IS NOT NULL;
"#;

/// Migration 13 (issue 12, item 3): live-show extras. A message may be flagged a `question`
/// (the Q&A list: `votes`, one row per voter in `chat_votes`, and when and by whom it was
/// answered) or an `announcement` (crew's word to every phone of the show); a message may be
/// pinned (`pinned_at_ms`, a few per room) and approved or rejected for the big screen's wall
/// (`wall`, with the `seq` of that decision). Each of these changes is an event of the room's
/// sequence; a vote's event carries the count after it (`chat_events.votes`).
const V13: &str = r#"
ALTER TABLE chat_messages ADD COLUMN flag TEXT
    CHECK (flag IS NULL OR flag IN ('question', 'announcement'));
ALTER TABLE chat_messages ADD COLUMN votes INTEGER NOT NULL DEFAULT 0 CHECK (votes >= 0);
ALTER TABLE chat_messages ADD COLUMN answered_at_ms INTEGER;
ALTER TABLE chat_messages ADD COLUMN answered_by INTEGER REFERENCES users(id);
ALTER TABLE chat_messages ADD COLUMN pinned_at_ms INTEGER;
ALTER TABLE chat_messages ADD COLUMN pinned_by INTEGER REFERENCES users(id);
ALTER TABLE chat_messages ADD COLUMN wall TEXT CHECK (wall IS NULL OR wall IN ('approved', 'rejected'));
ALTER TABLE chat_messages ADD COLUMN wall_seq INTEGER;
ALTER TABLE chat_events ADD COLUMN votes INTEGER CHECK (votes IS NULL OR votes >= 0);

CREATE TABLE chat_votes (
    message_id INTEGER NOT NULL REFERENCES chat_messages(id),
    user_id    INTEGER NOT NULL REFERENCES users(id),
    at_ms      INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX chat_votes_by_user ON chat_votes(user_id, message_id);
CREATE INDEX chat_questions ON chat_messages(room_id, votes DESC, posted_seq)
    WHERE flag = 'question' AND deleted_at_ms IS NULL;
CREATE INDEX chat_announcements ON chat_messages(room_id, posted_seq)
    WHERE flag = 'announcement' AND deleted_at_ms IS NULL;
CREATE INDEX chat_pinned ON chat_messages(room_id) WHERE pinned_at_ms IS NOT NULL;
CREATE INDEX chat_wall ON chat_messages(room_id, wall_seq) WHERE wall = 'approved';
"#;

/// Migration 14 (issue 12, `/play`): a show room's `/play <sound>` posts may also play through
/// the show's own sound (its OSC targets, SuperCollider or the embedded engine), when the room's
/// moderators allow it (`sounds_through_show`, off by default; only show rooms may turn it on).
const V14: &str = r#"
ALTER TABLE chat_room_settings ADD COLUMN sounds_through_show INTEGER NOT NULL DEFAULT 0
    CHECK (sounds_through_show IN (0, 1));
"#;

const STEPS: &[M<'static>] = &[
    M::up(V1).foreign_key_check(),
    M::up(V2).foreign_key_check(),
    M::up(V3).foreign_key_check(),
    M::up(V4).foreign_key_check(),
    M::up(V5).foreign_key_check(),
    M::up(V6).foreign_key_check(),
    M::up(V7).foreign_key_check(),
    M::up(V8).foreign_key_check(),
    M::up(V9).foreign_key_check(),
    M::up(V10).foreign_key_check(),
    M::up(V11).foreign_key_check(),
    M::up(V12).foreign_key_check(),
    M::up(V13).foreign_key_check(),
    M::up(V14).foreign_key_check(),
];

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
    fn a_version_1_database_with_data_migrates_to_the_latest() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("foreign keys");
        Migrations::from_slice(&STEPS[..1])
            .to_latest(&mut conn)
            .expect("apply V1");
        conn.execute_batch(
            "INSERT INTO pieces (id, slug, title, created_at_ms) VALUES (1, 'demo', 'Demo', 5);
             INSERT INTO spec_versions (id, piece_id, version, spec_json, status, created_at_ms)
                 VALUES (1, 1, 1, '{}', 'current', 5);
             INSERT INTO shows (id, piece_id, spec_version_id, code, kind, status, created_at_ms)
                 VALUES (1, 1, 1, 'ABC', 'performance', 'live', 6);
             INSERT INTO overrides (show_id, at_ms, actor, param, action, detail_json)
                 VALUES (1, 7, 'p', 'tempo', 'lock', '{}');",
        )
        .expect("V1 data");
        MIGRATIONS.to_latest(&mut conn).expect("migrate to latest");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("user_version");
        assert_eq!(version, i64::try_from(SCHEMA_VERSION).expect("small"));
        let piece: (String, Option<i64>) = conn
            .query_row(
                "SELECT status, ensemble_id FROM pieces WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("piece");
        assert_eq!(piece, ("draft".to_owned(), None));
        let spec: (String, Option<i64>, Option<String>) = conn
            .query_row(
                "SELECT status, created_by, note FROM spec_versions WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("spec");
        assert_eq!(spec, ("current".to_owned(), None, None));
        let dangling: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .expect("foreign key check");
        assert_eq!(dangling, 0);
        // The new CHECK constraints hold on the migrated table.
        let err = conn
            .execute("UPDATE pieces SET status = 'published' WHERE id = 1", [])
            .expect_err("unknown piece status");
        assert!(err.to_string().contains("CHECK"), "{err}");
    }

    #[test]
    fn a_version_4_memory_keeps_its_text_index_through_migration_5() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        Migrations::from_slice(&STEPS[..4])
            .to_latest(&mut conn)
            .expect("apply V1–V4");
        // Written under migration 4: the trigger indexed the text.
        conn.execute_batch(
            "INSERT INTO mem_episodes (key, kind, tags_json, text, status, started_at_ms) \
                 VALUES ('a', 'task', '[]', 'alpha bravo', 'open', 1);",
        )
        .expect("V4 data");
        MIGRATIONS.to_latest(&mut conn).expect("migrate to latest");
        let triggers: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'mem%' ORDER BY name")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("triggers");
        assert_eq!(triggers, ["mem_fts_update"]);
        let hits = |word: &str| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM mem_fts WHERE mem_fts MATCH ?1",
                [word],
                |r| r.get(0),
            )
            .expect("match")
        };
        assert_eq!(hits("bravo"), 1);
        // The update trigger still replaces the row of an episode written before.
        conn.execute_batch("UPDATE mem_episodes SET notes = 'charlie' WHERE key = 'a';")
            .expect("update");
        assert_eq!(hits("charlie"), 1);
        conn.execute_batch("INSERT INTO mem_fts(mem_fts, rank) VALUES ('integrity-check', 1);")
            .expect("text index intact");
    }

    #[test]
    fn application_id_literal_matches_the_constant() {
        assert!(V1.contains(&format!("PRAGMA application_id = {APPLICATION_ID};")));
    }
}
