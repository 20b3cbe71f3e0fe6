//! The sweep of attachment files (issue 12, item 2) against a real SQLite file and a real
//! `attachments/` directory: uploads no message took in time are forgotten, files no row names
//! (those of deleted messages too) are removed, and files a row still names are kept.

use std::path::PathBuf;

use tempfile::TempDir;
use tutti_store::{
    sha256_hex, ChatRoomKind, NewChatAttachment, NewChatMessage, NewChatRoom, NewUser, Store,
    StoreConfig, UploadSweep, UserRole,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const T0: i64 = 1_700_000_000_000;

fn file_of(store: &Store, bytes: &[u8]) -> PathBuf {
    store.attachment_file(&sha256_hex(bytes)).unwrap()
}

fn upload(room_id: i64, uploader_id: i64, bytes: &[u8], at_ms: i64) -> NewChatAttachment {
    NewChatAttachment {
        room_id,
        uploader_id,
        name: "notes.txt".into(),
        media_type: "text/plain".into(),
        bytes: bytes.to_vec(),
        dimensions: None,
        thumbnail: None,
        at_ms,
    }
}

#[tokio::test]
async fn unposted_uploads_and_unnamed_files_are_swept_and_named_files_kept() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(StoreConfig::new(dir.path().join("tutti.db"))).unwrap();
    let ann = store
        .create_user(NewUser {
            username: "ann".into(),
            display_name: "Ann".into(),
            password_hash: HASH.into(),
            role: UserRole::Crew,
            at_ms: T0,
        })
        .await
        .unwrap()
        .id;
    let room = store
        .chat_create_room(NewChatRoom {
            kind: ChatRoomKind::Closed,
            ensemble_id: None,
            show_id: None,
            name: Some("crew".into()),
            created_by: Some(ann),
            members: vec![ann],
            at_ms: T0,
        })
        .await
        .unwrap()
        .id;
    // A posted upload, an unposted one, and the same bytes as the posted one uploaded again
    // and never posted (one file for both rows).
    let (posted, loose, shared) = (
        b"set list".as_slice(),
        b"draft".as_slice(),
        b"set list".as_slice(),
    );
    let a = store
        .chat_attach(upload(room, ann, posted, T0))
        .await
        .unwrap();
    store
        .chat_attach(upload(room, ann, loose, T0 + 10))
        .await
        .unwrap();
    store
        .chat_attach(upload(room, ann, shared, T0 + 20))
        .await
        .unwrap();
    let m = store
        .chat_post_attached(
            NewChatMessage {
                room_id: room,
                author_id: ann,
                client_message_id: "m1".into(),
                text: "the set list".into(),
                reply_to: None,
                at_ms: T0 + 30,
            },
            vec![a.id],
        )
        .await
        .unwrap();
    // A temporary file an interrupted upload left behind.
    let tmp = store.attachments_dir().join("tmp").join("leftover");
    std::fs::write(&tmp, b"half a file").unwrap();

    // Before any upload is old enough, only the leftover goes.
    let swept = store.chat_sweep_uploads(T0).await.unwrap();
    assert_eq!(swept, UploadSweep { rows: 0, files: 1 });
    assert!(!tmp.exists());
    assert!(file_of(&store, loose).is_file());

    // The unposted uploads are forgotten; the loose file goes, the posted one's file stays
    // (the second, unposted row of the same bytes no longer names it, the message's does).
    let swept = store.chat_sweep_uploads(T0 + 1_000).await.unwrap();
    assert_eq!(swept, UploadSweep { rows: 2, files: 1 });
    assert!(!file_of(&store, loose).exists());
    assert!(file_of(&store, posted).is_file());
    assert!(store.chat_attachment(a.id).await.unwrap().is_some());

    // Deleting the message frees its file on the next sweep; the same bytes can come back.
    store
        .chat_delete(m.message.id, ann, T0 + 2_000)
        .await
        .unwrap();
    let swept = store.chat_sweep_uploads(T0 + 1_000).await.unwrap();
    assert_eq!(swept, UploadSweep { rows: 0, files: 1 });
    assert!(!file_of(&store, posted).exists());
    let again = store
        .chat_attach(upload(room, ann, posted, T0 + 3_000))
        .await
        .unwrap();
    assert_eq!(again.sha256, sha256_hex(posted));
    assert!(file_of(&store, posted).is_file());
    // A sweep with nothing to do changes nothing.
    assert_eq!(
        store.chat_sweep_uploads(T0 + 1_000).await.unwrap(),
        UploadSweep::default()
    );
    assert!(file_of(&store, posted).is_file());
}
