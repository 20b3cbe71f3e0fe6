//! Chat attachments, `/api/v1/chat/...` (issue 12, items 2 and 9): uploading a file to a room,
//! downloading it and an image's thumbnail. A message takes uploads by id
//! (`POST /chat/rooms/{id}/messages` with `attachments`).
//!
//! # Uploads
//! The body is the file itself (any `Content-Type`: it is ignored), its name in the `name`
//! query parameter (sanitised; shown only). The body is read as a stream and refused with
//! `413 payload_too_large` as soon as it passes `api.attachment_limit_bytes` (at once when
//! `Content-Length` says so). The type is judged from the bytes alone
//! (`tutti_chat::attach::sniff`): anything off the allow-list, markup included, is
//! `415 unsupported_media_type` naming what was found, whatever the name's extension says; an
//! image whose header claims more than 8,000 pixels on a side is `422 image_too_large` before
//! it is decoded, one that does not decode `422 invalid_image`. A refused upload stores
//! nothing. The file and an image's thumbnail (made here, off the async threads) are kept
//! content-addressed by the store.
//!
//! # Who may do what
//! Uploading needs what posting needs (a member of the room who may post: not read-only, not
//! muted or banned); downloading needs reading the room, and an upload no message carries yet
//! is its uploader's alone. Everyone else gets `404`, as for the room itself.
//!
//! # Downloads
//! Served with the sniffed `Content-Type`, `X-Content-Type-Options: nosniff`, a
//! Content-Security-Policy that runs nothing (`default-src 'none'; sandbox`), and
//! `Content-Disposition: attachment` for everything but images (shown inline).
//!
//! Must never: decide a type by a file's name or the client's `Content-Type`, read a body past
//! the limit, decode an image before checking its dimensions, serve a file to someone who may
//! not read its room.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tutti_chat::{AttachError, MediaType};
use tutti_store::{ChatAttachmentRow, NewChatAttachment};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chat::{store_err, RoomNeed};
use super::check_id;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{idem_key, ApiPath, ApiQuery, Problems, Validate};
use crate::idem;
use crate::ApiState;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(download))
        .routes(routes!(thumbnail))
        // The upload reads its body itself, under its own limit.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// The policy of a served file: it runs nothing, loads nothing, and is its own sandbox.
pub const ATTACHMENT_CSP: &str = "default-src 'none'; sandbox";

/// A stored attachment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentOut {
    /// Id (what a message lists in `attachments`).
    pub id: i64,
    /// Its room.
    pub room_id: i64,
    /// Who uploaded it.
    pub uploader_id: i64,
    /// Its name for showing (sanitised; it decides nothing).
    pub name: String,
    /// The media type sniffed from its bytes: `image/png`, `image/jpeg`, `image/gif`,
    /// `image/webp`, `application/pdf`, `text/plain`, `audio/wav`, `audio/mpeg` or
    /// `audio/ogg`.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// An image's width in pixels.
    pub width: Option<u32>,
    /// An image's height in pixels.
    pub height: Option<u32>,
    /// Where to download it.
    pub url: String,
    /// Where to download an image's thumbnail (PNG, at most 320 pixels on its longest side).
    pub thumbnail_url: Option<String>,
    /// The message carrying it (null until posted).
    pub message_id: Option<i64>,
    /// Upload time, unix ms.
    pub created_at_ms: i64,
}

impl From<ChatAttachmentRow> for AttachmentOut {
    fn from(a: ChatAttachmentRow) -> Self {
        let url = format!("/api/v1/chat/attachments/{}", a.id);
        AttachmentOut {
            thumbnail_url: a
                .thumbnail_sha256
                .as_ref()
                .map(|_| format!("{url}/thumbnail")),
            url,
            id: a.id,
            room_id: a.room_id,
            uploader_id: a.uploader_id,
            name: a.name,
            media_type: a.media_type,
            size: a.size,
            sha256: a.sha256,
            width: a.width,
            height: a.height,
            message_id: a.message_id,
            created_at_ms: a.created_at_ms,
        }
    }
}

/// The query of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, for showing (1–1000 bytes; sanitised to its last path component, at
    /// most 200 characters). Its extension decides nothing.
    pub name: String,
}

impl Validate for UploadQuery {
    fn validate(&self, p: &mut Problems) {
        if self.name.is_empty() || self.name.len() > 1000 {
            p.add("name", "must be 1–1000 bytes");
        }
    }
}

/// A file's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(#[allow(dead_code)] Vec<u8>);

fn attach_error(e: &AttachError) -> ApiError {
    let (status, details) = match e {
        AttachError::Unsupported { found } => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({"found": found}))
        }
        AttachError::ImageTooLarge { width, height } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"width": width, "height": height, "max_side": tutti_chat::attach::MAX_IMAGE_SIDE}),
        ),
        AttachError::BadImage { media_type, .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"media_type": media_type.mime()}),
        ),
        AttachError::Empty => (StatusCode::UNPROCESSABLE_ENTITY, json!({})),
    };
    ApiError::new(status, e.code(), e.to_string()).with_details(details)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the file is larger than {limit} bytes (api.attachment_limit_bytes)"),
    )
    .with_details(json!({"limit_bytes": limit}))
}

/// Reads a body up to `limit` bytes, refusing it as soon as it passes the limit.
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let cap = declared.map_or(64 << 10, |n| n as usize).min(limit);
    let mut out = Vec::with_capacity(cap);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// `POST /api/v1/chat/rooms/{id}/attachments?name=`: stores the body as an upload of the
/// caller in the room (201); post it with a message to show it. With an `Idempotency-Key`,
/// the same upload sent again (same name and bytes) is answered with the first one's answer.
#[utoipa::path(post, path = "/api/v1/chat/rooms/{id}/attachments", tag = "chat",
    params(("id" = i64, Path, description = "Room id"), UploadQuery),
    request_body(content = FileBytes, content_type = "application/octet-stream",
        description = "The file; its type is judged from these bytes alone"),
    security(("bearer" = [])),
    responses((status = 201, description = "Stored", body = AttachmentOut),
        (status = 413, description = "Larger than api.attachment_limit_bytes (payload_too_large)"),
        (status = 415, description = "Not an accepted type (unsupported_media_type)")))]
async fn upload(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = check_id("chat room", id)?;
    // A malformed key is refused before the body is read.
    idem_key(&headers, "POST", "", b"")?;
    let access = s.room_access(&caller, id, RoomNeed::Read).await?;
    if access.room.read_only {
        return Err(ApiError::conflict(
            "room_read_only",
            "the room is read-only: nothing can be posted, edited or boosted in it",
        ));
    }
    let bytes = read_limited(&headers, body, s.config.attachment_limit).await?;
    // The key's request is the path with its query (the name) and the bytes.
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let idem = idem_key(&headers, "POST", target, &bytes)?;
    let caller_id = caller.id();
    idem::run(
        &s,
        caller_id,
        idem,
        store_upload(&s, caller_id, id, q, bytes),
    )
    .await
}

/// Judges, thumbnails and stores an upload; the created answer.
async fn store_upload(
    s: &ApiState,
    caller: i64,
    id: i64,
    q: UploadQuery,
    bytes: Vec<u8>,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let media_type = tutti_chat::sniff(&bytes).map_err(|e| attach_error(&e))?;
    let (bytes, image) = if media_type.is_image() {
        let (bytes, info) = tokio::task::spawn_blocking(move || {
            let info = tutti_chat::image_info(&bytes, media_type);
            (bytes, info)
        })
        .await
        .map_err(|e| ApiError::internal(format!("making a thumbnail: {e}")))?;
        (bytes, Some(info.map_err(|e| attach_error(&e))?))
    } else {
        (bytes, None)
    };
    let row = s
        .store
        .chat_attach(NewChatAttachment {
            room_id: id,
            uploader_id: caller,
            name: tutti_chat::sanitize_file_name(&q.name),
            media_type: media_type.mime().to_owned(),
            bytes,
            dimensions: image.as_ref().map(|i| (i.width, i.height)),
            thumbnail: image.map(|i| i.thumbnail_png),
            at_ms: s.now_ms(),
        })
        .await
        .map_err(store_err)?;
    let out = serde_json::to_value(AttachmentOut::from(row))
        .map_err(|e| ApiError::internal(format!("an upload's answer: {e}")))?;
    Ok((StatusCode::CREATED, out))
}

/// The attachment, when the caller may download it (404 otherwise).
async fn readable(s: &ApiState, caller: &Caller, id: i64) -> Result<ChatAttachmentRow, ApiError> {
    let not_found = || ApiError::not_found(format!("attachment {id}"));
    let id = check_id("attachment", id)?;
    caller.require_staff()?;
    let a = s.store.chat_attachment(id).await?.ok_or_else(not_found)?;
    if a.message_id.is_none() && a.uploader_id != caller.id() {
        return Err(not_found());
    }
    s.room_access(caller, a.room_id, RoomNeed::Read)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                not_found()
            } else {
                e
            }
        })?;
    Ok(a)
}

/// Serves a stored file with headers that make a browser run nothing.
async fn serve(
    s: &ApiState,
    sha256: &str,
    media_type: &str,
    name: &str,
    inline: bool,
) -> Result<Response, ApiError> {
    let path = s
        .store
        .attachment_file(sha256)
        .ok_or_else(|| ApiError::internal("an attachment's hash is malformed"))?;
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || std::fs::read(path))
    };
    let bytes = read
        .await
        .map_err(|e| ApiError::internal(format!("reading an attachment: {e}")))?
        .map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "reading an attachment");
            ApiError::internal("the attachment's file cannot be read")
        })?;
    let content_type = if media_type == MediaType::Text.mime() {
        "text/plain; charset=utf-8".to_owned()
    } else {
        media_type.to_owned()
    };
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::CONTENT_TYPE, value(&content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(ATTACHMENT_CSP),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&content_disposition(name, inline)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    h.insert(header::ETAG, value(&format!("\"{sha256}\"")));
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    Ok(resp)
}

/// `attachment` (or `inline`) with the name as RFC 6266 wants it: an ASCII fallback and the
/// UTF-8 name percent-encoded.
fn content_disposition(name: &str, inline: bool) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `GET /api/v1/chat/attachments/{id}`: the file, with its sniffed type (images inline,
/// everything else as a download).
#[utoipa::path(get, path = "/api/v1/chat/attachments/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Attachment id")), security(("bearer" = [])),
    responses((status = 200, description = "The file", content(
        (FileBytes = "image/png"), (FileBytes = "image/jpeg"), (FileBytes = "image/gif"),
        (FileBytes = "image/webp"), (FileBytes = "application/pdf"),
        (FileBytes = "text/plain; charset=utf-8"), (FileBytes = "audio/wav"),
        (FileBytes = "audio/mpeg"), (FileBytes = "audio/ogg")))))]
async fn download(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let a = readable(&s, &caller, id).await?;
    let inline = MediaType::from_mime(&a.media_type).is_some_and(MediaType::is_image);
    serve(&s, &a.sha256, &a.media_type, &a.name, inline).await
}

/// `GET /api/v1/chat/attachments/{id}/thumbnail`: an image's thumbnail (PNG); `404` for
/// other files.
#[utoipa::path(get, path = "/api/v1/chat/attachments/{id}/thumbnail", tag = "chat",
    params(("id" = i64, Path, description = "Attachment id")), security(("bearer" = [])),
    responses((status = 200, description = "The thumbnail", content((FileBytes = "image/png")))))]
async fn thumbnail(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let a = readable(&s, &caller, id).await?;
    let Some(sha) = a.thumbnail_sha256.as_deref() else {
        return Err(ApiError::not_found(format!("thumbnail of attachment {id}")));
    };
    let name = format!("{}.thumbnail.png", a.name);
    serve(&s, sha, "image/png", &name, true).await
}
