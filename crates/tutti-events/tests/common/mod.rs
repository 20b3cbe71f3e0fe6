//! Shared parts of the integration tests: a fresh real store, a real local HTTP receiver that
//! verifies signatures, and a condition waiter with a generous deadline (no wall-clock
//! assertions). Must never mock the store or the network.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tutti_events::{DispatcherConfig, EventsConfig, RelayConfig, TargetPolicy};
use tutti_store::{NewPiece, NewUser, PieceRow, Store, StoreConfig, UserRole};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh store in its own temporary directory (kept alive by the returned guard).
pub fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(StoreConfig::new(dir.path().join("tutti.db"))).expect("open store");
    (dir, store)
}

pub fn reopen(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreConfig::new(dir.path().join("tutti.db"))).expect("reopen store")
}

/// A user and an ensemble it owns; returns the ensemble id.
pub async fn ensemble(store: &Store, slug: &str) -> i64 {
    let user = store
        .create_user(NewUser {
            username: format!("owner-{slug}"),
            display_name: "Owner".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            role: UserRole::Performer,
            at_ms: now_ms(),
        })
        .await
        .expect("create user");
    store
        .create_ensemble(slug, "Ensemble", user.id, now_ms())
        .await
        .expect("create ensemble")
        .id
}

pub async fn piece(store: &Store, ensemble_id: i64, slug: &str) -> PieceRow {
    store
        .create_piece(NewPiece {
            ensemble_id,
            slug: slug.into(),
            title: format!("Piece {slug}"),
            at_ms: now_ms(),
        })
        .await
        .expect("create piece")
}

/// Quick timings for tests: short polls, backoffs and timeouts.
pub fn fast_config() -> EventsConfig {
    EventsConfig {
        relay: RelayConfig {
            poll_interval: Duration::from_millis(50),
            ..RelayConfig::default()
        },
        dispatcher: DispatcherConfig {
            request_timeout: Duration::from_secs(5),
            max_attempts: 5,
            failure_threshold: 3,
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(50),
            poll_interval: Duration::from_millis(20),
            lease_margin: Duration::from_secs(5),
            // The receivers of these tests listen on 127.0.0.1, a loopback address that
            // webhooks may reach only when the configuration allows private targets.
            targets: TargetPolicy {
                allow_private: true,
                own_listeners: Vec::new(),
            },
            ..DispatcherConfig::default()
        },
        ..EventsConfig::default()
    }
}

/// Waits until `f` returns `Some`, checking every 20 ms, for at most 30 s (a generous deadline,
/// not a performance threshold).
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Sleep this long, then answer 200.
    Sleep(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub event: String,
    pub delivery: String,
    pub signature_ok: bool,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct ReceiverState {
    secrets: Mutex<Vec<String>>,
    script: Mutex<VecDeque<Reply>>,
    default_reply: Mutex<u16>,
    received: Mutex<Vec<Received>>,
}

/// A real HTTP server on 127.0.0.1 that records every POST and verifies its signature against
/// the secrets it was given.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let signature = header("tutti-signature");
    let now_s = now_ms() / 1000;
    let signature_ok = state.secrets.lock().expect("lock").iter().any(|secret| {
        tutti_events::verify(secret, &signature, &body, now_s, Duration::from_secs(300)).is_ok()
    });
    state.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        event: header("tutti-event"),
        delivery: header("tutti-delivery"),
        signature_ok,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let reply = state.script.lock().expect("lock").pop_front();
    let default = *state.default_reply.lock().expect("lock");
    if !signature_ok {
        return StatusCode::UNAUTHORIZED;
    }
    match reply {
        Some(Reply::Status(s)) => StatusCode::from_u16(s).expect("status"),
        Some(Reply::Sleep(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
        None => StatusCode::from_u16(default).expect("status"),
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState {
            default_reply: Mutex::new(200),
            ..ReceiverState::default()
        });
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn trust(&self, secret: &str) {
        self.state
            .secrets
            .lock()
            .expect("lock")
            .push(secret.to_owned());
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }

    pub fn always(&self, status: u16) {
        *self.state.default_reply.lock().expect("lock") = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }
}
