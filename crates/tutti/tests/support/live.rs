//! A phone or a performer on `/live/v1`, for the tests that drive a real `tutti serve`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/live/v1` (an error if the server does not answer).
pub async fn connect(addr: &str) -> Result<Ws, String> {
    tokio_tungstenite::connect_async(format!("ws://{addr}/live/v1"))
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

pub async fn send(ws: &mut Ws, frame: Value) -> Result<(), String> {
    ws.send(Message::text(frame.to_string()))
        .await
        .map_err(|e| e.to_string())
}

/// The next text frame, as JSON (an error when the socket closes or nothing comes in 10 s).
pub async fn next(ws: &mut Ws) -> Result<Value, String> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "nothing in 10 s".to_string())?
            .ok_or("closed")?
            .map_err(|e| e.to_string())?;
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).map_err(|e| e.to_string());
        }
    }
}

/// The next frame of type `ty`, skipping others; an `error` frame is returned as `Err`.
pub async fn expect(ws: &mut Ws, ty: &str) -> Result<Value, Value> {
    loop {
        let v = next(ws).await.map_err(Value::String)?;
        if v["type"] == ty {
            return Ok(v);
        }
        if v["type"] == "error" {
            return Err(v);
        }
    }
}

/// A performer joined with `token`; returns the socket and its welcome.
pub async fn performer(addr: &str, token: &str) -> (Ws, Value) {
    let mut ws = connect(addr).await.expect("connect");
    send(
        &mut ws,
        json!({"type": "join", "role": "performer", "token": token}),
    )
    .await
    .expect("send");
    let welcome = expect(&mut ws, "welcome").await.expect("welcome");
    (ws, welcome)
}
