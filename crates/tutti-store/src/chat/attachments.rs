//! Chat attachments (issue 12, schema migration 10): files kept content-addressed under the
//! data directory, their rows (`chat_attachments`), and their link to the message that carries
//! them.
//!
//! # Files
//! A file's bytes are kept once, at `attachments/<first two hex digits of its SHA-256>/<the
//! other 62>` beside the database file; an image's thumbnail the same way. A file is written to
//! a temporary file in `attachments/tmp/`, synced, and renamed into place, so a name never
//! holds part of a file; the same bytes uploaded twice are written once (the name is the
//! content). The files are written before the row that names them commits, so a row never
//! names a missing file; a file whose row was refused is left unnamed (and used again by the
//! next upload of the same bytes).
//!
//! # Rows
//! An upload is a row of its room, its uploader, the sniffed media type (judged by the caller
//! from the bytes, never from the name), the size, the sanitised name and, for images, the
//! dimensions and the thumbnail's hash. It is unattached until a message of the same author in
//! the same room takes it ([`Store::chat_post_attached`], at most
//! [`MAX_CHAT_MESSAGE_ATTACHMENTS`], each once); the message's events and rows then carry it.
//! Deleting the message deletes its attachment rows in the deletion's savepoint.
//!
//! Must never: name a file by anything but its content's hash, leave a partly written file
//! under its final name, attach a file to a message of another room or another author.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{invalid, moderation, not_found, read_only, require_member, require_room};
use crate::accounts::rows;
use crate::error::{db, StorageProblem, StoreError};
use crate::model;
use crate::Store;

/// The most attachments one message may carry.
pub const MAX_CHAT_MESSAGE_ATTACHMENTS: usize = 4;
/// The most characters in an attachment's name.
pub const MAX_CHAT_ATTACHMENT_NAME_CHARS: usize = 200;

/// A file to store and record (its type already judged from its bytes by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatAttachment {
    /// The room it is uploaded to; the uploader must be a member who may post there.
    pub room_id: i64,
    /// Who uploads it.
    pub uploader_id: i64,
    /// Its name for showing (1–200 characters, no control characters): it decides nothing.
    pub name: String,
    /// Its media type as sniffed from the bytes.
    pub media_type: String,
    /// The file.
    pub bytes: Vec<u8>,
    /// An image's width and height.
    pub dimensions: Option<(u32, u32)>,
    /// An image's thumbnail (PNG).
    pub thumbnail: Option<Vec<u8>>,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// A stored attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatAttachmentRow {
    /// Its id.
    pub id: i64,
    /// Its room.
    pub room_id: i64,
    /// Who uploaded it.
    pub uploader_id: i64,
    /// The SHA-256 of its bytes (hex): its file's name.
    pub sha256: String,
    /// Its media type, as sniffed.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its (sanitised) name.
    pub name: String,
    /// An image's width.
    pub width: Option<u32>,
    /// An image's height.
    pub height: Option<u32>,
    /// The SHA-256 of an image's thumbnail (PNG).
    pub thumbnail_sha256: Option<String>,
    /// The message carrying it (none until posted).
    pub message_id: Option<i64>,
    /// When it was uploaded.
    pub created_at_ms: i64,
}

const COLS: &str = "id, room_id, uploader_id, sha256, media_type, size, name, width, height, \
                    thumb_sha256, message_id, created_at_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<ChatAttachmentRow> {
    let dim = |i: usize| -> rusqlite::Result<Option<u32>> {
        Ok(r.get::<_, Option<i64>>(i)?
            .and_then(|v| u32::try_from(v).ok()))
    };
    Ok(ChatAttachmentRow {
        id: r.get(0)?,
        room_id: r.get(1)?,
        uploader_id: r.get(2)?,
        sha256: r.get(3)?,
        media_type: r.get(4)?,
        size: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
        name: r.get(6)?,
        width: dim(7)?,
        height: dim(8)?,
        thumbnail_sha256: r.get(9)?,
        message_id: r.get(10)?,
        created_at_ms: r.get(11)?,
    })
}

/// The attachments of a message, in the order it listed them.
pub(super) fn of_message(
    conn: &Connection,
    message_id: i64,
) -> Result<Vec<ChatAttachmentRow>, StoreError> {
    rows(
        conn,
        "reading a message's attachments",
        &format!("SELECT {COLS} FROM chat_attachments WHERE message_id = ?1 ORDER BY position"),
        [message_id],
        row,
    )
}

fn attachment(conn: &Connection, id: i64) -> Result<Option<ChatAttachmentRow>, StoreError> {
    const OP: &str = "reading an attachment";
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM chat_attachments WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], row)
    .optional()
    .map_err(db(OP))
}

fn insert(
    conn: &Connection,
    a: &NewChatAttachment,
    sha256: &str,
    thumb: Option<&str>,
) -> Result<ChatAttachmentRow, StoreError> {
    let room = require_room(conn, a.room_id)?;
    if room.read_only {
        return Err(read_only(room.id));
    }
    require_member(conn, a.room_id, a.uploader_id)?;
    match moderation::restriction(conn, a.room_id, a.uploader_id)?.map(|r| r.kind) {
        Some(super::ChatRestrictionKind::Ban) => {
            return Err(StoreError::ChatRefused(super::ChatRefusal::Banned))
        }
        Some(super::ChatRestrictionKind::Mute) => {
            return Err(StoreError::ChatRefused(super::ChatRefusal::Muted))
        }
        _ => {}
    }
    let (w, h) = a.dimensions.unzip();
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO chat_attachments (room_id, uploader_id, sha256, media_type, size, name, \
             width, height, thumb_sha256, created_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    a.room_id,
                    a.uploader_id,
                    sha256,
                    a.media_type,
                    i64::try_from(a.bytes.len()).unwrap_or(i64::MAX),
                    a.name,
                    w,
                    h,
                    thumb,
                    a.at_ms
                ],
                |r| r.get(0),
            )
        })
        .map_err(db("recording an attachment"))?;
    attachment(conn, id)?.ok_or_else(|| StoreError::Internal(format!("attachment {id} vanished")))
}

/// Links attachments to a new message (inside the post's savepoint): each must be in the
/// message's room, uploaded by its author and not carried by another message.
pub(super) fn link(
    conn: &Connection,
    message_id: i64,
    room_id: i64,
    author_id: i64,
    ids: &[i64],
) -> Result<(), StoreError> {
    for (position, &id) in ids.iter().enumerate() {
        let a = attachment(conn, id)?
            .filter(|a| a.room_id == room_id && a.uploader_id == author_id)
            .ok_or_else(|| not_found("attachment", format!("{id} of yours in room {room_id}")))?;
        if a.message_id.is_some() {
            return Err(StoreError::Conflict {
                what: "attachment",
                value: format!("attachment {id} is already posted with another message"),
            });
        }
        conn.prepare_cached(
            "UPDATE chat_attachments SET message_id = ?2, position = ?3 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, message_id, position as i64]))
        .map_err(db("attaching a file to a message"))?;
    }
    Ok(())
}

/// Deletes a deleted message's attachment rows (its files stay: other rows may name them).
pub(super) fn unlink(conn: &Connection, message_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM chat_attachments WHERE message_id = ?1")
        .and_then(|mut s| s.execute([message_id]))
        .map_err(db("deleting a message's attachments"))?;
    Ok(())
}

/// Checks the attachment ids of a post: at most [`MAX_CHAT_MESSAGE_ATTACHMENTS`], none twice.
pub(super) fn validate_ids(ids: &[i64]) -> Result<(), StoreError> {
    if ids.len() > MAX_CHAT_MESSAGE_ATTACHMENTS {
        return Err(invalid(
            "attachments",
            &ids.len().to_string(),
            format!("a message carries at most {MAX_CHAT_MESSAGE_ATTACHMENTS} attachments"),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(invalid("attachments", &id.to_string(), "listed twice"));
        }
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), StoreError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_CHAT_ATTACHMENT_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            name,
            format!("1–{MAX_CHAT_ATTACHMENT_NAME_CHARS} characters, no control characters"),
        ));
    }
    Ok(())
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    let problem = match e.raw_os_error() {
        Some(28) => StorageProblem::Full,     // ENOSPC
        Some(30) => StorageProblem::ReadOnly, // EROFS
        _ if e.kind() == std::io::ErrorKind::PermissionDenied => StorageProblem::ReadOnly,
        _ => StorageProblem::Io,
    };
    StoreError::Storage {
        path: path.to_path_buf(),
        problem,
        detail: e.to_string(),
    }
}

/// Writes `bytes` under its hash in `dir` (temp file, sync, rename), unless it is there.
fn put_blob(dir: &Path, bytes: &[u8]) -> Result<String, StoreError> {
    let hash = sha256_hex(bytes);
    let path = blob_path(dir, &hash);
    if path.is_file() {
        return Ok(hash);
    }
    let parent = path.parent().unwrap_or(dir);
    let tmp_dir = dir.join("tmp");
    for d in [parent, tmp_dir.as_path()] {
        std::fs::create_dir_all(d).map_err(|e| io_error(d, &e))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| io_error(&tmp_dir, &e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_error(tmp.path(), &e))?;
    tmp.persist(&path).map_err(|e| io_error(&path, &e.error))?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(hash)
}

fn blob_path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(&hash[..2]).join(&hash[2..])
}

impl Store {
    /// Where attachment files live: `attachments/` beside the database file.
    pub fn attachments_dir(&self) -> PathBuf {
        let parent = self.path().parent().unwrap_or(Path::new(""));
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        parent.join("attachments")
    }

    /// The file of the content with this SHA-256 (hex), when the hash is well formed. The file
    /// exists for every hash a committed row names.
    pub fn attachment_file(&self, sha256: &str) -> Option<PathBuf> {
        is_hash(sha256).then(|| blob_path(&self.attachments_dir(), sha256))
    }

    /// Stores a file (and an image's thumbnail) content-addressed and records it as an
    /// unattached upload of `uploader_id` in `room_id`, who must be a member, not muted or
    /// banned, of a room that is not read-only. Nothing is recorded when a check or a write
    /// fails.
    pub async fn chat_attach(&self, a: NewChatAttachment) -> Result<ChatAttachmentRow, StoreError> {
        model::validate_time("at_ms", a.at_ms)?;
        validate_name(&a.name)?;
        if a.bytes.is_empty() {
            return Err(invalid("bytes", "", "the file is empty"));
        }
        if a.media_type.is_empty() || a.media_type.len() > 100 {
            return Err(invalid("media_type", &a.media_type, "1–100 bytes"));
        }
        // Refused before any file is written (checked again in the savepoint).
        let (room_id, uploader) = (a.room_id, a.uploader_id);
        self.read(move |c| {
            let room = require_room(c, room_id)?;
            if room.read_only {
                return Err(read_only(room_id));
            }
            require_member(c, room_id, uploader).map(|_| ())
        })
        .await?;
        let _files = self.inner.blobs.read().await;
        let dir = self.attachments_dir();
        let (a, sha, thumb) = tokio::task::spawn_blocking(move || {
            let sha = put_blob(&dir, &a.bytes)?;
            let thumb = a
                .thumbnail
                .as_deref()
                .map(|t| put_blob(&dir, t))
                .transpose()?;
            Ok::<_, StoreError>((a, sha, thumb))
        })
        .await
        .map_err(|e| StoreError::Internal(format!("writing an attachment: {e}")))??;
        self.write(move |c| insert(c, &a, &sha, thumb.as_deref()))
            .await
    }

    /// The attachment with this id.
    pub async fn chat_attachment(&self, id: i64) -> Result<Option<ChatAttachmentRow>, StoreError> {
        self.read(move |c| attachment(c, id)).await
    }

    /// Forgets the uploads no message took before `cutoff_ms` (unix milliseconds), then
    /// removes every file under `attachments/` that no row names any more (those of deleted
    /// messages too) and any temporary file left by an interrupted upload. Uploads wait while
    /// it runs (it holds the files alone), so no upload's file is removed under it.
    pub async fn chat_sweep_uploads(&self, cutoff_ms: i64) -> Result<UploadSweep, StoreError> {
        model::validate_time("cutoff_ms", cutoff_ms)?;
        let _files = self.inner.blobs.write().await;
        let rows = self.write(move |c| forget_unposted(c, cutoff_ms)).await?;
        let named = self.read(named_files).await?;
        let dir = self.attachments_dir();
        let files = tokio::task::spawn_blocking(move || remove_unnamed(&dir, &named))
            .await
            .map_err(|e| StoreError::Internal(format!("sweeping attachment files: {e}")))??;
        Ok(UploadSweep { rows, files })
    }
}

/// What [`Store::chat_sweep_uploads`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct UploadSweep {
    /// Uploads no message took in time.
    pub rows: u64,
    /// Files no row named (and stale temporary files).
    pub files: u64,
}

fn forget_unposted(conn: &Connection, cutoff_ms: i64) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "DELETE FROM chat_attachments WHERE message_id IS NULL AND created_at_ms < ?1",
    )
    .and_then(|mut s| s.execute([cutoff_ms]))
    .map(|n| n as u64)
    .map_err(db("forgetting unposted uploads"))
}

fn named_files(conn: &Connection) -> Result<std::collections::HashSet<String>, StoreError> {
    Ok(rows(
        conn,
        "listing attachment files",
        "SELECT sha256 FROM chat_attachments \
         UNION SELECT thumb_sha256 FROM chat_attachments WHERE thumb_sha256 IS NOT NULL",
        [],
        |r| r.get::<_, String>(0),
    )?
    .into_iter()
    .collect())
}

/// Removes the blob files `named` does not hold, and everything in `tmp/`; how many.
fn remove_unnamed(
    dir: &Path,
    named: &std::collections::HashSet<String>,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    let Ok(top) = std::fs::read_dir(dir) else {
        return Ok(0); // nothing was ever uploaded
    };
    for entry in top {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        let prefix = entry.file_name().to_string_lossy().into_owned();
        let sub = entry.path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).map_err(|e| io_error(&sub, &e))? {
            let f = f.map_err(|e| io_error(&sub, &e))?;
            let rest = f.file_name().to_string_lossy().into_owned();
            let hash = format!("{prefix}{rest}");
            let stale = if prefix == "tmp" {
                true
            } else {
                is_hash(&hash) && !named.contains(&hash)
            };
            if stale && f.path().is_file() {
                std::fs::remove_file(f.path()).map_err(|e| io_error(&f.path(), &e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
