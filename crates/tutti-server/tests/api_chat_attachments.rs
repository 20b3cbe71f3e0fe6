//! Chat attachments through the REST API (issue 12, items 2 and 9) against a real server, a
//! real SQLite store and the real data directory: upload and download round trips, the same
//! bytes kept once, types judged by content whatever the name says, the size limit and a
//! decompression bomb refused with nothing stored, who may upload and download, and a
//! message's attachments carried by catch-up (and gone with the message).

#[path = "api_support/mod.rs"]
mod api_support;

use std::path::Path;

use api_support::*;
use serde_json::{json, Value};

/// A PNG of `w` × `h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    out.into_inner()
}

/// The width and height of a PNG.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).expect("png");
    (img.width(), img.height())
}

/// The first bytes of a PNG whose header claims `w` × `h` pixels (a decompression bomb).
fn bomb(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0xed, 0xc1, 0x01, 0x0d]);
    out
}

/// Uploads `bytes` named `name` to a room as `api`.
async fn upload(api: &Api, room: i64, name: &str, bytes: &[u8]) -> Res {
    let auth = format!("Bearer {}", api.token.as_deref().unwrap_or(""));
    raw(
        api.addr,
        "POST",
        &format!("/api/v1/chat/rooms/{room}/attachments?name={name}"),
        &[
            ("authorization", &auth),
            // What the client claims is ignored.
            ("content-type", "image/png"),
        ],
        bytes,
    )
    .await
}

/// The files stored under the data directory's `attachments/` (not its temporary files).
fn stored_files(data: &Path) -> Vec<String> {
    let root = data.join("attachments");
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for d in dirs {
        let d = d.unwrap();
        if d.file_name() == "tmp" {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            out.push(format!(
                "{}{}",
                d.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

/// A closed room of the admin with `members`; its id.
async fn room_with(app: &TestApp, members: &[i64]) -> i64 {
    id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "files", "members": members}),
            )
            .await
            .ok(201),
    )
}

async fn post_with(api: &Api, room: i64, client_id: &str, attachments: &[i64]) -> Res {
    api.post(
        &format!("/chat/rooms/{room}/messages"),
        json!({"client_message_id": client_id, "text": "look", "attachments": attachments}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_round_trips_with_its_thumbnail_and_catch_up_carries_it() {
    let app = TestApp::spawn().await;
    let (bob, bob_id) = app.user("bob", "crew").await;
    let room = room_with(&app, &[bob_id]).await;
    let photo = png(640, 480);

    let up = upload(&app.admin, room, "holiday.png", &photo)
        .await
        .ok(201);
    assert_eq!(up["media_type"], "image/png", "{up}");
    assert_eq!(up["name"], "holiday.png");
    assert_eq!(up["size"], photo.len());
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(up["message_id"], Value::Null);
    let id = id_of(&up);
    let url = up["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("/api/v1")
        .to_owned();
    let thumb_url = up["thumbnail_url"]
        .as_str()
        .unwrap()
        .trim_start_matches("/api/v1")
        .to_owned();

    // Nobody but the uploader sees an upload no message carries yet.
    bob.get(&url).await.err(404, "not_found");

    let msg = post_with(&app.admin, room, "m1", &[id]).await.ok(201);
    assert_eq!(msg["attachments"][0]["id"], id, "{msg}");
    let seq = msg["posted_seq"].as_u64().unwrap();

    let file = bob.get(&url).await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body, photo);
    assert_eq!(file.header("content-type"), Some("image/png"));
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        file.header("content-security-policy"),
        Some("default-src 'none'; sandbox")
    );
    assert!(file
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));

    let thumb = bob.get(&thumb_url).await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/png"));
    assert_eq!(png_size(&thumb.body), (320, 240));

    // Catch-up from before the post carries the attachment; so does scrolling back.
    let page = bob
        .get(&format!("/chat/rooms/{room}/events?after_seq={}", seq - 1))
        .await
        .ok(200);
    let ev = &page["items"][0];
    assert_eq!(ev["kind"], "message_posted");
    assert_eq!(ev["attachments"][0]["id"], id, "{page}");
    assert_eq!(ev["attachments"][0]["media_type"], "image/png");
    let msgs = bob
        .get(&format!("/chat/rooms/{room}/messages"))
        .await
        .ok(200);
    assert_eq!(msgs["items"][0]["attachments"][0]["name"], "holiday.png");

    // A deleted message takes its attachments with it.
    app.admin
        .req(
            "DELETE",
            &format!("/chat/messages/{}", id_of(&msg)),
            None,
            &[],
        )
        .await
        .ok(200);
    bob.get(&url).await.err(404, "not_found");
    let page = bob
        .get(&format!("/chat/rooms/{room}/events?after_seq={}", seq - 1))
        .await
        .ok(200);
    assert_eq!(page["items"][0]["attachments"], json!([]), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_that_lie_decide_nothing_and_the_same_bytes_are_kept_once() {
    let app = TestApp::spawn().await;
    let room = room_with(&app, &[]).await;
    // Larger than a thumbnail, so its thumbnail is another file.
    let photo = png(400, 300);

    // A PNG named .pdf is a PNG.
    let a = upload(&app.admin, room, "report.pdf", &photo).await.ok(201);
    assert_eq!(a["media_type"], "image/png", "{a}");
    assert_eq!(a["name"], "report.pdf");
    // The same bytes again: a second upload, one file (and one thumbnail).
    let b = upload(&app.admin, room, "again.png", &photo).await.ok(201);
    assert_eq!(a["sha256"], b["sha256"]);
    assert_ne!(id_of(&a), id_of(&b));
    let files = stored_files(app.dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.contains(&a["sha256"].as_str().unwrap().to_owned()));

    // HTML named .png is refused, named for what it is; nothing is stored.
    let html = b"<!doctype html><html><script>alert(document.cookie)</script></html>";
    let e = upload(&app.admin, room, "cat.png", html)
        .await
        .err(415, "unsupported_media_type");
    assert_eq!(e["details"]["found"], "HTML, XML or SVG markup", "{e}");
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    upload(&app.admin, room, "logo.jpg", svg)
        .await
        .err(415, "unsupported_media_type");
    let zip = b"PK\x03\x04\x14\0\0\0\x08\0";
    let e = upload(&app.admin, room, "notes.txt", zip)
        .await
        .err(415, "unsupported_media_type");
    assert_eq!(
        e["details"]["found"],
        "a ZIP archive (or an office document)"
    );
    assert_eq!(stored_files(app.dir.path()), files);

    // Plain text named .html is plain text, downloaded as such.
    let t = upload(&app.admin, room, "page.html", b"just words\n")
        .await
        .ok(201);
    assert_eq!(t["media_type"], "text/plain");
    assert_eq!(t["thumbnail_url"], Value::Null);
    let id = id_of(&t);
    post_with(&app.admin, room, "t1", &[id]).await.ok(201);
    let file = app.admin.get(&format!("/chat/attachments/{id}")).await;
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let disposition = file.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    app.admin
        .get(&format!("/chat/attachments/{id}/thumbnail"))
        .await
        .err(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_files_and_bomb_images_are_refused_with_nothing_stored() {
    let app = TestApp::spawn_with(|c| c.api.attachment_limit_bytes = 4096).await;
    let room = room_with(&app, &[]).await;

    let e = upload(&app.admin, room, "big.txt", &vec![b'a'; 5000])
        .await
        .err(413, "payload_too_large");
    assert_eq!(e["details"]["limit_bytes"], 4096, "{e}");
    // Exactly at the limit is accepted.
    upload(&app.admin, room, "fits.txt", &vec![b'a'; 4096])
        .await
        .ok(201);
    let before = stored_files(app.dir.path());
    assert_eq!(before.len(), 1);

    let e = upload(&app.admin, room, "tiny.png", &bomb(100_000, 100_000))
        .await
        .err(422, "image_too_large");
    assert_eq!(e["details"]["width"], 100_000, "{e}");
    let mut broken = png(30, 30);
    broken.truncate(70);
    upload(&app.admin, room, "broken.png", &broken)
        .await
        .err(422, "invalid_image");
    upload(&app.admin, room, "empty.txt", b"")
        .await
        .err(422, "empty_file");
    assert_eq!(stored_files(app.dir.path()), before);

    // A message may carry at most four, each once.
    let e = post_with(&app.admin, room, "m", &[1, 2, 3, 4, 5])
        .await
        .err(422, "validation_failed");
    assert!(e.to_string().contains("attachments"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_posters_upload_and_only_readers_download() {
    let app = TestApp::spawn().await;
    let (bob, bob_id) = app.user("bob", "crew").await;
    let (eve, _) = app.user("eve", "crew").await;
    let room = room_with(&app, &[bob_id]).await;
    let photo = png(20, 20);

    // Outside the room: nothing to upload to.
    upload(&eve, room, "x.png", &photo)
        .await
        .err(404, "not_found");
    upload(&app.anon(), room, "x.png", &photo)
        .await
        .err(401, "unauthorized");
    assert!(stored_files(app.dir.path()).is_empty());

    let mine = id_of(&upload(&bob, room, "bob.png", &photo).await.ok(201));
    // Another member cannot post (or see) bob's upload.
    post_with(&app.admin, room, "steal", &[mine])
        .await
        .err(404, "not_found");
    post_with(&bob, room, "b1", &[mine]).await.ok(201);
    // Posted once: a second message cannot carry it too.
    post_with(&bob, room, "b2", &[mine])
        .await
        .err(409, "conflict");

    let url = format!("/chat/attachments/{mine}");
    assert_eq!(app.admin.get(&url).await.status, 200);
    eve.get(&url).await.err(404, "not_found");
    eve.get(&format!("{url}/thumbnail"))
        .await
        .err(404, "not_found");
    app.anon().get(&url).await.err(401, "unauthorized");

    // Muted: no uploads; removed from the room: no downloads.
    let muted = app
        .admin
        .req(
            "PUT",
            &format!("/chat/rooms/{room}/restrictions/{bob_id}"),
            Some(json!({"kind": "mute"})),
            &[],
        )
        .await;
    assert!(matches!(muted.status, 200 | 201), "{muted:?}");
    upload(&bob, room, "more.png", &png(21, 21))
        .await
        .err(403, "muted");
    app.admin
        .req(
            "DELETE",
            &format!("/chat/rooms/{room}/members/{bob_id}"),
            None,
            &[],
        )
        .await
        .ok(204);
    bob.get(&url).await.err(404, "not_found");
}

async fn upload_keyed(api: &Api, room: i64, name: &str, key: &str, bytes: &[u8]) -> Res {
    let auth = format!("Bearer {}", api.token.as_deref().unwrap_or(""));
    raw(
        api.addr,
        "POST",
        &format!("/api/v1/chat/rooms/{room}/attachments?name={name}"),
        &[("authorization", &auth), ("idempotency-key", key)],
        bytes,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_upload_with_its_idempotency_key_is_answered_with_the_first() {
    let app = TestApp::spawn().await;
    let (api, uid) = app.user("ann", "crew").await;
    let room = room_with(&app, &[uid]).await;
    let first = upload_keyed(&api, room, "a.txt", "up-1", b"hello world").await;
    let a = first.ok(201);
    assert!(first.header("idempotent-replayed").is_none());
    // The same request again: the same upload, replayed; no second row.
    let again = upload_keyed(&api, room, "a.txt", "up-1", b"hello world").await;
    assert_eq!(again.ok(201)["id"], a["id"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The key with other bytes, or another name, is refused; nothing is stored.
    upload_keyed(&api, room, "a.txt", "up-1", b"other bytes")
        .await
        .err(422, "idempotency_key_reused");
    upload_keyed(&api, room, "b.txt", "up-1", b"hello world")
        .await
        .err(422, "idempotency_key_reused");
    // A malformed key is refused before the body counts.
    upload_keyed(&api, room, "a.txt", "", b"hello world")
        .await
        .err(422, "validation_failed");
    // Without a key, each upload is its own.
    let b = upload(&api, room, "a.txt", b"hello world").await.ok(201);
    assert_ne!(b["id"], a["id"]);
    let c = upload_keyed(&api, room, "a.txt", "up-2", b"hello world")
        .await
        .ok(201);
    assert_ne!(c["id"], a["id"]);
    assert_eq!(
        stored_files(app.dir.path()).len(),
        1,
        "one file for the same bytes"
    );
    app.shutdown().await;
}
