//! Test support for the `/api/v1` tests: a real server on port 0 with a fresh SQLite store
//! (one temporary directory per test), and a tiny HTTP/1.1 client over a real TCP socket
//! that can send any bytes (invalid UTF-8, wrong content types, oversized bodies).
//!
//! [`TestApp::spawn`] is the usual start: the server, its directory and the signed-in admin
//! in one value. The typed helpers on [`Api`] ([`Api::ensemble`], [`Api::piece`],
//! [`Api::draft_spec`], [`Api::publish`], [`Api::published_piece`], [`Api::show`],
//! [`Api::show_to`], [`Api::add_member`]) and [`TestApp::user`] are for a test's setup: each
//! asserts its step succeeded and returns what later steps need. A test about a request
//! itself (its body, headers, status or envelope) sends it with [`Api::req`], [`Api::post`],
//! … or [`raw`].
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tutti_server::{Config, Running};

pub const PERFORMER_TOKEN: &str = "test-performer-token";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub fn config(dir: &Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        performer_token: PERFORMER_TOKEN.into(),
        sound: tutti_server::config::SoundBackend::None,
        ..Config::default()
    };
    cfg.osc.listen = None;
    cfg.api.body_limit_bytes = 64 * 1024;
    cfg
}

pub async fn start(dir: &Path) -> Running {
    start_with(config(dir)).await
}

/// Starts a server with this configuration (from [`config`], changed by the test).
pub async fn start_with(cfg: Config) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tutti_server::start(cfg, listener)
        .await
        .expect("server starts")
}

/// A server of its own for one test: a fresh store in a temporary directory, first-run setup
/// done, and the admin signed in (in the manner of zero2prod's `spawn_app()`).
pub struct TestApp {
    /// Holds the data directory; dropped with the app (after [`TestApp::shutdown`]).
    pub dir: TempDir,
    pub server: Running,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The admin set up at the start, signed in with a bearer token.
    pub admin: Api,
}

impl TestApp {
    /// A server with the test [`config`], set up, its admin signed in.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// [`TestApp::spawn`] with the test [`config`] changed by `change` first.
    pub async fn spawn_with(change: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        change(&mut cfg);
        let server = start_with(cfg).await;
        let addr = server.addr;
        let (admin, _) = setup_admin(addr).await;
        TestApp {
            dir,
            server,
            addr,
            admin,
        }
    }

    /// A client without credentials.
    pub fn anon(&self) -> Api {
        Api::new(self.addr)
    }

    /// A user created by the admin with this role, signed in; their client and id.
    pub async fn user(&self, name: &str, role: &str) -> (Api, i64) {
        user(&self.admin, name, role).await
    }

    /// Stops the server (the store flushed); the data directory, still there, for a restart.
    pub async fn shutdown(self) -> TempDir {
        self.server.shutdown().await.expect("server shuts down");
        self.dir
    }
}

/// Signs in; the response as it came.
pub async fn login(api: &Api, username: &str, password: &str) -> Res {
    api.post(
        "/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

/// A response.
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Res {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the envelope with this status and code; returns the error object.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> Value {
        let j = self.json();
        assert_eq!(self.status, status, "status of {j}");
        assert_eq!(j["error"]["code"], code, "code of {j}");
        assert!(
            j["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{j}"
        );
        assert!(j["error"].get("details").is_some(), "{j}");
        let rid = j["error"]["request_id"].as_str().expect("request_id");
        assert_eq!(self.header("x-request-id"), Some(rid), "{j}");
        j["error"].clone()
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(self.header("x-request-id").is_some());
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// Sends raw bytes as one HTTP/1.1 request and reads the whole response.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Res {
    raw_from(None, addr, method, path, headers, body).await
}

/// Connects to `addr` from the local address `from` (any of 127.0.0.0/8 works on Linux, so
/// tests can be several clients), or from the default one.
pub async fn connect_from(from: Option<IpAddr>, addr: SocketAddr) -> TcpStream {
    let Some(ip) = from else {
        return TcpStream::connect(addr).await.expect("connects");
    };
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .expect("a socket");
    socket
        .bind(SocketAddr::new(ip, 0))
        .unwrap_or_else(|e| panic!("binding the client to {ip}: {e}"));
    socket.connect(addr).await.expect("connects")
}

/// [`raw`] from the local address `from`.
pub async fn raw_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Res {
    let mut s = connect_from(from, addr).await;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (413) before reading everything; ignore a reset while writing.
    let _ = s.write_all(&bytes).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    parse(&out)
}

fn parse(out: &[u8]) -> Res {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(out)));
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = out[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Res {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
    out
}

/// A client with an optional bearer token, connecting from an optional local address.
#[derive(Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub token: Option<String>,
    pub from: Option<IpAddr>,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        Api {
            addr,
            token: None,
            from: None,
        }
    }

    pub fn with(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The same client connecting from the local address `ip` (e.g. `127.0.0.2`).
    pub fn connecting_from(&self, ip: &str) -> Api {
        Api {
            from: Some(ip.parse().expect("an IP address")),
            ..self.clone()
        }
    }

    pub async fn req(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Res {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let bytes = match &body {
            Some(b) => {
                headers.push(("content-type", "application/json"));
                serde_json::to_vec(b).unwrap()
            }
            None => Vec::new(),
        };
        raw_from(
            self.from,
            self.addr,
            method,
            &format!("/api/v1{path}"),
            &headers,
            &bytes,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Res {
        self.req("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.req("POST", path, Some(body), &[]).await
    }

    pub async fn post_empty(&self, path: &str) -> Res {
        self.req("POST", path, None, &[]).await
    }

    // Setup steps as this client; each asserts success and returns what later steps need.

    /// Creates an ensemble named by its slug (the caller becomes its owner); its id.
    pub async fn ensemble(&self, slug: &str) -> i64 {
        let body = json!({"slug": slug, "name": slug});
        id_of(&self.post("/ensembles", body).await.ok(201))
    }

    /// Adds a user to an ensemble by id with an ensemble role.
    pub async fn add_member(&self, ensemble_id: i64, user_id: i64, role: &str) {
        self.post(
            &format!("/ensembles/{ensemble_id}/members"),
            json!({"user_id": user_id, "role": role}),
        )
        .await
        .ok(201);
    }

    /// Creates a draft piece titled by its slug; its id.
    pub async fn piece(&self, ensemble_id: i64, slug: &str) -> i64 {
        let path = format!("/ensembles/{ensemble_id}/pieces");
        let body = json!({"slug": slug, "title": slug});
        id_of(&self.post(&path, body).await.ok(201))
    }

    /// Stores `spec` as a new draft version of a piece; its version number.
    pub async fn draft_spec(&self, piece_id: i64, spec: Value) -> i64 {
        let path = format!("/pieces/{piece_id}/specs");
        let created = self.post(&path, json!({ "spec": spec })).await.ok(201);
        created["version"].as_i64().expect("a version number")
    }

    /// Publishes a spec version of a piece; the version as published.
    pub async fn publish(&self, piece_id: i64, version: i64) -> Value {
        self.post_empty(&format!("/pieces/{piece_id}/specs/{version}/publish"))
            .await
            .ok(200)
    }

    /// A new piece in the ensemble with [`spec`]`(slug)` drafted and published as version 1;
    /// its id.
    pub async fn published_piece(&self, ensemble_id: i64, slug: &str) -> i64 {
        let piece_id = self.piece(ensemble_id, slug).await;
        let version = self.draft_spec(piece_id, spec(slug)).await;
        self.publish(piece_id, version).await;
        piece_id
    }

    /// Creates a show of a piece's current spec (`kind`: `rehearsal` or `performance`); the
    /// show as created (`id`, `code`, …).
    pub async fn show(&self, piece_id: i64, kind: &str) -> Value {
        self.post(
            &format!("/pieces/{piece_id}/shows"),
            json!({ "kind": kind }),
        )
        .await
        .ok(201)
    }

    /// Moves a show to `status` (`live`, `paused`, `ended`); the show as it is then.
    pub async fn show_to(&self, show_id: i64, status: &str) -> Value {
        self.post(
            &format!("/shows/{show_id}/transition"),
            json!({ "to": status }),
        )
        .await
        .ok(200)
    }
}

/// The `id` of a created resource.
#[track_caller]
pub fn id_of(created: &Value) -> i64 {
    created["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {created}"))
}

/// Runs first-run setup; returns (admin client, setup response).
pub async fn setup_admin(addr: SocketAddr) -> (Api, Value) {
    let r = Api::new(addr)
        .post(
            "/setup",
            json!({"username": "admin", "password": ADMIN_PASSWORD, "display_name": "The Admin"}),
        )
        .await;
    let j = r.ok(201);
    let token = j["access_token"].as_str().unwrap().to_owned();
    (Api::new(addr).with(&token), j)
}

/// Creates a user with a role and signs them in; returns their client and id.
pub async fn user(admin: &Api, name: &str, role: &str) -> (Api, i64) {
    let password = format!("{name}-password");
    let j = admin
        .post(
            "/users",
            json!({"username": name, "password": password, "display_name": name, "role": role}),
        )
        .await
        .ok(201);
    let id = j["id"].as_i64().unwrap();
    let t = Api::new(admin.addr)
        .post(
            "/auth/login",
            json!({"username": name, "password": password}),
        )
        .await
        .ok(200);
    (admin.with(t["access_token"].as_str().unwrap()), id)
}

/// The demo spec as JSON with another slug/title.
pub fn spec(slug: &str) -> Value {
    let mut v: Value = serde_json::from_str(&tutti_spec::PieceSpec::demo().to_json()).unwrap();
    v["slug"] = json!(slug);
    v["title"] = json!(format!("{slug} title"));
    v
}

/// Opens `GET /api/v1/events/stream?after=0` as `api` and reads until `until` appears in the
/// stream (10 s at most); the text read.
pub async fn sse_until(api: &Api, until: &str) -> String {
    let mut s = connect_from(api.from, api.addr).await;
    let req = format!(
        "GET /api/v1/events/stream?after=0 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n",
        api.token.as_deref().unwrap_or("")
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in time: {}", String::from_utf8_lossy(&got)))
            .unwrap();
        assert!(n > 0, "stream closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Opens `GET /api/v1/events/ws?after=0` as `api` and returns the first event of `kind`.
pub async fn ws_event(api: &Api, kind: &str) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/api/v1/events/ws?after=0", api.addr)
        .into_client_request()
        .unwrap();
    let auth = format!("Bearer {}", api.token.as_deref().unwrap_or(""));
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event in time"))
            .expect("open")
            .expect("a frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["kind"] == kind {
                return v;
            }
        }
    }
}
