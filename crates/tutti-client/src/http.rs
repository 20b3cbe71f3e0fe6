//! Plain HTTP/1.1 requests to a Tutti server (`http://` only: TLS belongs in a reverse
//! proxy) with connect and answer timeouts and a cap on the body read, and the API's
//! envelope turned into [`ClientError::Api`].
//!
//! Must never: follow redirects, read an unbounded body, or send a request twice.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;

use crate::error::ClientError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A parsed `http://host[:port][/prefix]` server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    host: String,
    port: u16,
    prefix: String,
}

impl ServerUrl {
    /// Parse a server address; only plain `http://` is supported (put TLS in front of
    /// Tutti with a reverse proxy and use the CLI on the venue network).
    pub fn parse(s: &str) -> Result<ServerUrl, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("--server '{s}': {why}"));
        let rest = if let Some(r) = s.strip_prefix("http://") {
            r
        } else if s.starts_with("https://") {
            return Err(bad("https is not supported by the CLI; use the server's http address on the venue network"));
        } else {
            return Err(bad("must start with http://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("needs a host (and no user name)"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
                None if after.is_empty() => 80,
                None => return Err(bad("junk after the host")),
            };
            (format!("[{h}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| bad("the port is not a number"))?,
                ),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() || path.contains(['?', '#']) {
            return Err(bad("not a server address"));
        }
        Ok(ServerUrl {
            host,
            port,
            prefix: path.to_string(),
        })
    }

    /// Canonical text, the key of stored logins.
    pub fn as_string(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.prefix)
    }
}

/// A response: status and parsed JSON body (`Null` when empty, a string when not JSON).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

/// Send one request. `path` starts with `/` and is appended to the server's prefix.
pub async fn request(
    server: &ServerUrl,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> Result<Reply, ClientError> {
    let fut = request_inner(server, method, path, token, body, idempotency_key);
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| {
            ClientError::Connection(format!(
                "{}: no answer within {} s",
                server.as_string(),
                REQUEST_TIMEOUT.as_secs()
            ))
        })?
}

async fn request_inner(
    server: &ServerUrl,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> Result<Reply, ClientError> {
    let conn_err = |e: String| ClientError::Connection(format!("{}: {e}", server.as_string()));
    let addr = format!("{}:{}", server.host.trim_matches(['[', ']']), server.port);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| conn_err("connection timed out".into()))?
        .map_err(|e| conn_err(format!("cannot connect: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| conn_err(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.prefix))
        .header(
            hyper::header::HOST,
            format!("{}:{}", server.host, server.port),
        )
        .header(hyper::header::ACCEPT, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("tutti-cli/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    let bytes = match body {
        Some(b) => {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(b).map_err(|e| ClientError::Usage(e.to_string()))?)
        }
        None => Bytes::new(),
    };
    let req = req
        .body(Full::new(bytes))
        .map_err(|e| ClientError::Usage(format!("bad request: {e}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| conn_err(e.to_string()))?;
    let status = resp.status().as_u16();
    let collected = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| conn_err(format!("reading the response: {e}")))?
        .to_bytes();
    driver.abort();
    let body = if collected.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&collected)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&collected).into_owned()))
    };
    Ok(Reply { status, body })
}

/// Turn a non-2xx reply into [`ClientError::Api`] (or a connection error when the body is
/// not the API's envelope).
pub fn check(reply: Reply, server: &ServerUrl) -> Result<Value, ClientError> {
    if (200..300).contains(&reply.status) {
        return Ok(reply.body);
    }
    match reply.body.get("error") {
        Some(e) if e.get("code").is_some() => Err(ClientError::Api {
            status: reply.status,
            code: e["code"].as_str().unwrap_or("unknown").to_string(),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            details: e.get("details").cloned().unwrap_or(Value::Null),
        }),
        _ => Err(ClientError::Connection(format!(
            "{}: HTTP {} without the API's error envelope: {}",
            server.as_string(),
            reply.status,
            snippet(&reply.body.to_string(), 200)
        ))),
    }
}

fn snippet(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::DEFAULT_SERVER;

    #[test]
    fn server_urls_parse_and_refuse_clearly() {
        let u = ServerUrl::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(u.as_string(), "http://127.0.0.1:9000");
        assert_eq!(
            ServerUrl::parse("http://venue.local/").unwrap().as_string(),
            "http://venue.local:80"
        );
        assert_eq!(
            ServerUrl::parse("http://[::1]:7878/tutti/")
                .unwrap()
                .as_string(),
            "http://[::1]:7878/tutti"
        );
        for (bad, why) in [
            ("https://x", "https is not supported"),
            ("ftp://x", "must start with http://"),
            ("http://", "needs a host"),
            ("http://u@h", "needs a host"),
            ("http://h:port", "port is not a number"),
            ("http://h:99999", "port is not a number"),
        ] {
            let e = ServerUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn api_errors_show_code_message_and_details() {
        let server = ServerUrl::parse(DEFAULT_SERVER).unwrap();
        let reply = Reply {
            status: 409,
            body: serde_json::json!({"error": {"code": "invalid_transition", "message": "piece 3 is archived",
                "details": {"allowed": []}, "request_id": "r1"}}),
        };
        let e = check(reply, &server).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error invalid_transition: piece 3 is archived (allowed: none)"
        );
        // Not repeated when the message already says it.
        let reply = Reply {
            status: 409,
            body: serde_json::json!({"error": {"code": "invalid_transition",
                "message": "a piece cannot go from draft to ready (allowed: rehearsal, archived)",
                "details": {"allowed": ["rehearsal", "archived"]}}}),
        };
        assert_eq!(
            check(reply, &server).unwrap_err().to_string(),
            "error invalid_transition: a piece cannot go from draft to ready (allowed: rehearsal, archived)"
        );
        assert_eq!(e.exit_code(), 1);
        let reply = Reply {
            status: 422,
            body: serde_json::json!({"error": {"code": "validation_failed", "message": "invalid body",
                "details": [{"field": "slug", "problem": "must be 1-64 characters"}]}}),
        };
        assert_eq!(
            check(reply, &server).unwrap_err().to_string(),
            "error validation_failed: invalid body (slug: must be 1-64 characters)"
        );
        let reply = Reply {
            status: 502,
            body: Value::String("Bad gateway".into()),
        };
        let e = check(reply, &server).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("HTTP 502"), "{e}");
    }
}
