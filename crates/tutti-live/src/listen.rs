//! `GET /live/v1/audio`: performers listen to the show's sound as PCM. The first frame must
//! be a performer `join` (admitted by the same [`crate::Admission`] as `/live/v1`, so a
//! performer signed in through the management API can listen too); then a format frame
//! and binary frames of 16-bit PCM follow.
//!
//! Must never: let a slow listener hold others back (chunks come through a bounded
//! broadcast; a lagging listener skips chunks), or know where the PCM comes from.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tutti_protocol::{ClientFrame, ErrorCode, FrameError, Role, ServerFrame};

use crate::Hub;

/// Where the PCM comes from (the embedded engine).
pub trait PcmSource: Send + Sync {
    /// The format frame sent before the first chunk (JSON text).
    fn format_frame(&self) -> String;
    /// A receiver of PCM chunks (bounded; a lagging receiver skips chunks).
    fn subscribe(&self) -> broadcast::Receiver<Bytes>;
}

/// The listen stream's state: the hub (shows, admission, counters, shutdown) and the
/// PCM source, when the show's sound has one.
#[derive(Clone)]
pub struct Listen {
    /// The hub.
    pub hub: Arc<Hub>,
    /// The sound's PCM, if it has any.
    pub pcm: Option<Arc<dyn PcmSource>>,
}

/// `GET /live/v1/audio`.
pub async fn listen(State(listen): State<Listen>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(4096)
        .on_upgrade(move |socket| listen_socket(socket, listen))
}

async fn admitted(first: Option<Result<Message, axum::Error>>, hub: &Hub) -> bool {
    let Some(Ok(Message::Text(t))) = first else {
        return false;
    };
    let Ok(ClientFrame::Join {
        role: Role::Performer,
        token,
        show,
        ..
    }) = ClientFrame::parse(t.as_str())
    else {
        return false;
    };
    let Ok(show) = hub.show(show.as_deref()) else {
        return false;
    };
    hub.admission().performer(token.as_deref(), &show).await
}

async fn listen_socket(socket: WebSocket, Listen { hub, pcm }: Listen) {
    let (mut tx, mut rx) = socket.split();
    let err = |e: FrameError| Message::Text(ServerFrame::error(e, None).to_json().into());
    let first = tokio::time::timeout(Duration::from_secs(10), rx.next())
        .await
        .ok()
        .flatten();
    if !admitted(first, &hub).await {
        let _ = tx
            .send(err(FrameError::new(
                ErrorCode::Unauthorized,
                "listening needs a performer join with a performer's token",
            )))
            .await;
        return;
    }
    let Some(source) = pcm else {
        let _ = tx
            .send(err(FrameError::new(
                ErrorCode::Internal,
                "the embedded audio engine is not running (sound is not \"engine\")",
            )))
            .await;
        return;
    };
    if tx
        .send(Message::Text(source.format_frame().into()))
        .await
        .is_err()
    {
        return;
    }
    hub.stats.listeners.fetch_add(1, Relaxed);
    let mut chunks = source.subscribe();
    let mut shutdown = hub.shutdown.clone();
    loop {
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                Ok(b) => if tx.send(Message::Binary(b)).await.is_err() { break },
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            msg = rx.next() => if !matches!(msg, Some(Ok(_))) { break },
            _ = shutdown.changed() => break,
        }
    }
    hub.stats.listeners.fetch_sub(1, Relaxed);
}
