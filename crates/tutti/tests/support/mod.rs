//! Shared by the client tests: the binary without `TUTTI_*` from the environment, a real
//! `tutti serve` child with a fresh store, and a minimal HTTP/1.1 request helper.

#![allow(dead_code)]

pub mod live;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub fn tutti() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tutti"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TUTTI_") {
            c.env_remove(k);
        }
    }
    c
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// What `tutti serve` printed on start, up to and including its `data` line.
    pub banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

pub fn serve(data: &Path) -> Server {
    serve_with(data, &[])
}

/// `tutti serve` with extra arguments.
pub fn serve_with(data: &Path, extra: &[&str]) -> Server {
    let addr = free_addr();
    let mut child = tutti()
        .args([
            "serve", "--listen", &addr, "--log", "warn", "--sound", "none",
        ])
        .args(["--osc-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    assert!(first.starts_with("Tutti is running"), "{first}");
    let mut banner = vec![first];
    while !banner
        .last()
        .is_some_and(|l| l.trim_start().starts_with("data "))
    {
        banner.push(lines.next().expect("the banner's data line").unwrap());
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        banner,
    }
}

/// First-run setup of the admin `ada`; returns its access token.
pub fn setup_admin(addr: &str) -> String {
    let (st, v) = http(
        addr,
        "POST",
        "/api/v1/setup",
        None,
        Some(
            &serde_json::json!({"username": "ada", "password": "correct horse battery",
                                 "display_name": "Ada"}),
        ),
    );
    assert_eq!(st, 201, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the JSON body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    try_http(addr, method, path, token, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// [`http`], with an error rather than a panic when the server is gone or answers nothing
/// readable.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let payload = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let v = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
    Ok((status, v))
}

pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}
