//! Test harness: a real server on port 0 with a temporary data directory, and real
//! WebSocket clients.
#![allow(dead_code)]

pub mod browser;
pub mod netdelay;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tutti_server::{Config, Running};

pub const TOKEN: &str = "test-performer-token";

pub fn config(dir: &Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        performer_token: TOKEN.into(),
        ..Config::default()
    };
    cfg.osc.listen = Some("127.0.0.1:0".parse().unwrap());
    // No sound card on test machines: the engine runs on its null sink.
    cfg.audio.output = "null".into();
    cfg
}

/// A config running the demo piece without recency weighting, so that tests can compare
/// aggregates exactly whatever the timing.
pub fn config_no_recency(dir: &Path) -> Config {
    let mut cfg = config(dir);
    let piece = dir.join("piece.toml");
    let text = tutti_spec::DEMO_TOML.replace("recency_half_life = 5.0", "recency_half_life = 0.0");
    assert_ne!(text, tutti_spec::DEMO_TOML);
    std::fs::write(&piece, text).unwrap();
    cfg.piece = Some(piece);
    cfg
}

pub async fn start_with(cfg: Config) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tutti_server::start(cfg, listener)
        .await
        .expect("server starts")
}

pub async fn start(dir: &Path) -> Running {
    start_with(config(dir)).await
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after 30 s (a guard against a
/// hang, not a timing requirement).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits until the default show has stored `n` snapshots after `tick` (one a second of show
/// time): the show has run that long, whatever the machine's pace.
pub async fn wait_snapshots(srv: &Running, after_tick: u64, n: usize) {
    let store = srv.store().clone();
    let code = srv.show_code.clone();
    eventually(&format!("{n} snapshots after tick {after_tick}"), || {
        let (store, code) = (store.clone(), code.clone());
        async move {
            let Ok(Some(show)) = store.show_by_code(&code).await else {
                return false;
            };
            store
                .snapshots(show.id, Some(after_tick), n)
                .await
                .is_ok_and(|rows| rows.len() >= n)
        }
    })
    .await;
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/v1"))
            .await
            .expect("websocket connects");
        Client { ws }
    }

    /// Connect and join as audience; returns the client and the welcome.
    pub async fn audience(addr: SocketAddr) -> (Client, Value) {
        let mut c = Client::connect(addr).await;
        c.send(json!({"type": "join"})).await;
        let w = c.recv_type("welcome").await;
        (c, w)
    }

    pub async fn performer(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr).await;
        c.send(json!({"type": "join", "role": "performer", "token": TOKEN}))
            .await;
        c.recv_type("welcome").await;
        c
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t)).await.expect("send");
    }

    pub async fn send_binary(&mut self, b: Vec<u8>) {
        self.ws.send(Message::binary(b)).await.expect("send");
    }

    /// Read until the server's close frame; its code and reason (`None` if the stream
    /// ended without one).
    pub async fn close_frame(&mut self) -> Option<(u16, String)> {
        let read = async {
            while let Some(msg) = self.ws.next().await {
                match msg {
                    Ok(Message::Close(Some(f))) => {
                        return Some((u16::from(f.code), f.reason.to_string()))
                    }
                    Ok(Message::Close(None)) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
            None
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("a close frame in time")
    }

    /// Next text frame as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait")
                .expect("socket open")
                .expect("frame ok");
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).expect("server frames are JSON");
            }
        }
    }

    /// Skip frames until one of this type arrives.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "no {ty} frame");
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// The next error frame (skipping states).
    pub async fn error(&mut self) -> Value {
        self.recv_type("error").await
    }

    /// Wait for a state frame satisfying `pred`.
    pub async fn state_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "state never satisfied the condition"
            );
            let v = self.recv_type("state").await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// A ping answered by a pong proves the connection is open and served.
    pub async fn alive(&mut self) -> bool {
        self.send(json!({"type": "ping", "id": 4242})).await;
        let p = self.recv_type("pong").await;
        p["id"] == 4242
    }
}

pub fn value(state: &Value, param: &str) -> f64 {
    state["params"][param]["value"].as_f64().unwrap()
}

pub fn raw(state: &Value, param: &str) -> Option<f64> {
    state["params"][param]["raw"].as_f64()
}
