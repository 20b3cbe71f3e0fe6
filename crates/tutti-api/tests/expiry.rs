//! The API alone over a real SQLite store, with a one-second access-token lifetime and a
//! manual clock (no waiting): an expired access token is refused with `token_expired`, and
//! refreshing gives a working one.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tutti_api::{ApiConfig, ApiState};
use tutti_store::{Store, StoreConfig};

async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text[9..12].parse().unwrap();
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn expired_access_tokens_are_refused_and_refresh_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path().join("t.db"))).unwrap();
    let config = ApiConfig {
        access_ttl_s: 1,
        ..ApiConfig::default()
    };
    let clock = tutti_api::Clock::manual(tutti_api::now_ms());
    let app = tutti_api::router(ApiState::new(store.clone(), config).with_clock(clock.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (status, setup) = call(
        addr,
        "POST",
        "/api/v1/setup",
        None,
        Some(json!({"username": "root", "password": "root-password", "display_name": "Root"})),
    )
    .await;
    assert_eq!(status, 201, "{setup}");
    let access = setup["access_token"].as_str().unwrap().to_owned();
    let (status, _) = call(addr, "GET", "/api/v1/me", Some(&access), None).await;
    assert_eq!(status, 200);
    // Still valid 999 ms later, expired at 1 s.
    clock.advance(999);
    let (status, _) = call(addr, "GET", "/api/v1/me", Some(&access), None).await;
    assert_eq!(status, 200);
    clock.advance(1);
    let (status, e) = call(addr, "GET", "/api/v1/me", Some(&access), None).await;
    assert_eq!(status, 401, "{e}");
    assert_eq!(e["error"]["code"], "token_expired", "{e}");
    let (status, pair) = call(
        addr,
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": setup["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    let (status, me) = call(
        addr,
        "GET",
        "/api/v1/me",
        pair["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "root");
    server.abort();
    store.close().await.unwrap();
}
