//! Guests in the live hub: an audience `join` with the device token from
//! `POST /api/v1/join/{code}/guests` joins its own show and gets its slot back on a rejoin;
//! a token of another show or an unknown token is refused with `unauthorized`; a join
//! without a token stays anonymous. Real server, fresh SQLite store.

#[path = "api_support/mod.rs"]
mod api_support;

use std::net::SocketAddr;
use std::time::Duration;

use api_support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(addr: SocketAddr) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/live/v1"))
        .await
        .unwrap()
        .0
}

/// Sends `frame` and returns the first `welcome` or `error` answering it.
async fn join(ws: &mut Ws, frame: Value) -> Value {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "welcome" || v["type"] == "error" {
                return v;
            }
        }
    }
}

/// A live show of a new published piece; returns (show id, join code).
async fn live_show(api: &Api, eid: i64, slug: &str) -> (i64, String) {
    let pid = api.published_piece(eid, slug).await;
    let show = api.show(pid, "performance").await;
    let sid = id_of(&show);
    api.show_to(sid, "live").await;
    (sid, show["code"].as_str().unwrap().to_owned())
}

async fn device_token(addr: SocketAddr, code: &str) -> String {
    let g = Api::new(addr)
        .post_empty(&format!("/join/{code}/guests"))
        .await
        .ok(201);
    g["device_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn guest_device_tokens_join_their_own_show_and_keep_their_slot() {
    let app = TestApp::spawn().await;
    let (addr, admin) = (app.addr, &app.admin);
    let eid = admin.ensemble("duo").await;
    let (_, code_a) = live_show(admin, eid, "aria").await;
    let (_, code_b) = live_show(admin, eid, "bolero").await;
    let guest_a = device_token(addr, &code_a).await;
    let guest_b = device_token(addr, &code_b).await;

    // A guest of this show joins; the same device joining again gets the same slot back.
    let mut first = connect(addr).await;
    let w1 = join(
        &mut first,
        json!({"type": "join", "show": code_a, "token": guest_a}),
    )
    .await;
    assert_eq!(w1["type"], "welcome", "{w1}");
    assert_eq!(w1["role"], "audience");
    let slot = w1["participant"].as_u64().unwrap();
    drop(first);
    let mut again = connect(addr).await;
    let w2 = join(
        &mut again,
        json!({"type": "join", "show": code_a, "token": guest_a}),
    )
    .await;
    assert_eq!(w2["type"], "welcome", "{w2}");
    assert_eq!(w2["participant"].as_u64(), Some(slot), "{w2}");
    // The slot is the same; its resume token is a new one (every welcome rotates it).
    assert_ne!(w2["resume"], w1["resume"]);

    // Anonymous phones (the QR code) still join, each in a slot of its own.
    let mut anon = connect(addr).await;
    let w3 = join(&mut anon, json!({"type": "join", "show": code_a})).await;
    assert_eq!(w3["type"], "welcome", "{w3}");
    assert_ne!(w3["participant"].as_u64(), Some(slot));

    // Another show's guest and an unknown token are refused; the connection stays usable.
    let mut other = connect(addr).await;
    let e = join(
        &mut other,
        json!({"type": "join", "show": code_a, "token": guest_b}),
    )
    .await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "unauthorized", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("another show"),
        "{e}"
    );
    let e = join(
        &mut other,
        json!({"type": "join", "show": code_a, "token": "ttg_not-a-device-token"}),
    )
    .await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "unauthorized", "{e}");
    assert!(e["message"].as_str().unwrap().contains("unknown"), "{e}");
    let w4 = join(
        &mut other,
        json!({"type": "join", "show": code_a, "token": guest_a}),
    )
    .await;
    assert_eq!(w4["type"], "welcome", "{w4}");
    assert_eq!(w4["participant"].as_u64(), Some(slot), "{w4}");

    drop((again, anon, other));
    app.shutdown().await;
}
