//! SSE and WebSocket streams end to end: a real store, the real relay and bus, the stream router
//! served on 127.0.0.1, and real HTTP / WebSocket clients.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use common::{ensemble, eventually, fast_config, fresh_store, piece};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tutti_events::{router, EnsembleVisibility, EventRecord, Events, EventsConfig, Visibility};

/// Serves the stream routes; the caller's ensemble comes from the `x-test-ensemble` header
/// (standing in for the API's authentication), `all` sees everything, no header is a 401.
async fn serve(events: &Events) -> std::net::SocketAddr {
    let app: axum::Router = router(
        events.streams(),
        |headers: axum::http::HeaderMap| async move {
            let who = headers
                .get("x-test-ensemble")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match who.as_deref() {
                Some("all") => {
                    Ok(Arc::new(EnsembleVisibility::everything()) as Arc<dyn Visibility>)
                }
                Some(id) => {
                    let id: i64 = id
                        .parse()
                        .map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
                    Ok(Arc::new(EnsembleVisibility::of([id])) as Arc<dyn Visibility>)
                }
                None => Err::<_, Response>(StatusCode::UNAUTHORIZED.into_response()),
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[derive(Debug)]
struct SseEvent {
    id: i64,
    event: String,
    data: serde_json::Value,
}

/// Reads one SSE response body, event by event (keep-alive comments skipped).
struct SseReader {
    body: axum::body::Body,
    buf: String,
}

impl SseReader {
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if let Some(id) = id {
                    return SseEvent {
                        id,
                        event,
                        data: serde_json::from_str(&data).expect("data is JSON"),
                    };
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(30), self.body.frame())
                .await
                .expect("an SSE event within the deadline")
                .expect("the stream is open")
                .expect("a body frame");
            if let Ok(data) = frame.into_data() {
                self.buf
                    .push_str(std::str::from_utf8(&data).expect("utf-8"));
            }
        }
    }
}

async fn open_sse(
    addr: std::net::SocketAddr,
    who: Option<&str>,
    last_event_id: Option<i64>,
) -> (StatusCode, Option<SseReader>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = Request::get(format!("http://{addr}/events/stream"));
    if let Some(who) = who {
        req = req.header("x-test-ensemble", who);
    }
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let resp = client
        .request(req.body(Empty::new()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    if status != StatusCode::OK {
        return (status, None);
    }
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    (
        status,
        Some(SseReader {
            body: axum::body::Body::new(resp.into_body()),
            buf: String::new(),
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_delivers_visible_events_as_they_are_written() {
    let (_dir, store) = fresh_store();
    let mine = ensemble(&store, "mine").await;
    let theirs = ensemble(&store, "theirs").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let addr = serve(&events).await;

    assert_eq!(open_sse(addr, None, None).await.0, StatusCode::UNAUTHORIZED);
    let (_, sse) = open_sse(addr, Some(&mine.to_string()), None).await;
    let mut sse = sse.expect("stream");

    // Written after the stream opened: another ensemble's piece first, then ours.
    piece(&store, theirs, "hidden").await;
    let p1 = piece(&store, mine, "first").await;
    let ev = sse.next().await;
    assert_eq!(ev.event, "piece.created");
    assert_eq!(ev.data["kind"], "piece.created");
    assert_eq!(ev.data["ensemble_id"], mine);
    assert_eq!(ev.data["data"]["piece_id"], p1.id);
    assert_eq!(ev.data["id"], ev.id);

    let p2 = piece(&store, mine, "second").await;
    let ev2 = sse.next().await;
    assert!(ev2.id > ev.id);
    assert_eq!(ev2.data["data"]["piece_id"], p2.id);
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_replays_from_last_event_id_in_order() {
    let (_dir, store) = fresh_store();
    let mine = ensemble(&store, "mine").await;
    let theirs = ensemble(&store, "theirs").await;
    piece(&store, theirs, "hidden").await;
    let p = piece(&store, mine, "kept").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let addr = serve(&events).await;

    let (_, sse) = open_sse(addr, Some(&mine.to_string()), Some(0)).await;
    let mut sse = sse.expect("stream");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let ev = sse.next().await;
        assert_eq!(ev.data["ensemble_id"], mine, "{ev:?}");
        seen.push(ev);
    }
    let kinds: Vec<&str> = seen.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["ensemble.created", "ensemble.member_added", "piece.created"]
    );
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(seen[2].data["data"]["piece_id"], p.id);
    // Then it follows live events.
    let live = piece(&store, mine, "live").await;
    let ev = sse.next().await;
    assert_eq!(ev.data["data"]["piece_id"], live.id);

    // An id past the end (another database's) starts at the end instead of waiting forever.
    let (_, future) = open_sse(addr, Some(&mine.to_string()), Some(1_000_000)).await;
    let mut future = future.expect("stream");
    let later = piece(&store, mine, "later").await;
    assert_eq!(future.next().await.data["data"]["piece_id"], later.id);

    // An administrator's stream resumes mid-history and sees every ensemble.
    let (_, all) = open_sse(addr, Some("all"), Some(seen[0].id)).await;
    let mut all = all.expect("stream");
    let next = all.next().await;
    assert_eq!(next.id, seen[0].id + 1);
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_feed_catches_up_from_the_outbox_without_gaps() {
    let (_dir, store) = fresh_store();
    let mine = ensemble(&store, "mine").await;
    let mut cfg: EventsConfig = fast_config();
    cfg.bus.capacity = 2;
    let events = Events::start(store.clone(), cfg).expect("start");
    let vis: Arc<dyn Visibility> = Arc::new(|e: &EventRecord| e.kind == "piece.created");
    let mut feed = events.streams().feed(vis, None).await.expect("feed");
    let mut bus = events.bus().subscribe();

    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(piece(&store, mine, &format!("p{i}")).await.id);
    }
    // Let the relay publish everything, so the unread feed falls behind the tiny bus.
    let last = store.last_event_id().await.expect("last id");
    eventually("the relay to publish everything", || async {
        (store.relay_cursor("relay").await.expect("cursor") >= last).then_some(())
    })
    .await;
    assert!(matches!(
        bus.recv().await,
        Err(tutti_events::BusRecvError::Lagged { .. })
    ));

    let mut got = Vec::new();
    while got.len() < ids.len() {
        let ev = tokio::time::timeout(Duration::from_secs(30), feed.next())
            .await
            .expect("an event within the deadline")
            .expect("feed open");
        got.push(ev.data["piece_id"].as_i64().expect("piece id"));
    }
    assert_eq!(got, ids);
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sends_each_visible_event_as_a_text_frame() {
    let (_dir, store) = fresh_store();
    let mine = ensemble(&store, "mine").await;
    let theirs = ensemble(&store, "theirs").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let addr = serve(&events).await;

    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/events/ws"),
    )
    .expect("request");
    req.headers_mut()
        .insert("x-test-ensemble", mine.to_string().parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");

    piece(&store, theirs, "hidden").await;
    let p = piece(&store, mine, "shown").await;
    let text = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame within the deadline")
            .expect("socket open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            break t;
        }
    };
    let ev: serde_json::Value = serde_json::from_str(text.as_str()).expect("json");
    assert_eq!(ev["kind"], "piece.created");
    assert_eq!(ev["data"]["piece_id"], p.id);
    assert_eq!(ev["ensemble_id"], mine);
    events.shutdown().await;
}
