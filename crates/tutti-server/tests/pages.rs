//! The pages and their assets from a real server: every one carries the security headers
//! (a strict Content-Security-Policy, no framing, no content sniffing). That the pages
//! still work under that policy is proven by the browser tests (`browser.rs`,
//! `browser_audio.rs`), which also check that Chromium reported no violation.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` over a plain HTTP/1.1 connection: the status and the header lines.
async fn head_of(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<(String, String)>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn every_page_and_asset_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    for (path, status, kind) in [
        ("/", 200, "text/html"),
        ("/perform", 200, "text/html"),
        ("/display", 200, "text/html"),
        ("/chat", 200, "text/html"),
        ("/web/chat.js", 200, "javascript"),
        ("/web/setup.html", 200, "text/html"),
        ("/web/app.css", 200, "text/css"),
        ("/web/audience.js", 200, "javascript"),
        ("/web/audio/pcm-worklet.js", 200, "javascript"),
        ("/qr.svg?text=http%3A%2F%2Fexample", 200, "image/svg+xml"),
        ("/web/no-such-file.js", 404, ""),
    ] {
        let (got, h) = head_of(srv.addr, path).await;
        assert_eq!(got, status, "{path}");
        assert!(
            header(&h, "content-type")
                .unwrap_or_default()
                .contains(kind),
            "{path}: {h:?}"
        );
        let csp = header(&h, "content-security-policy").unwrap_or_else(|| panic!("{path}: {h:?}"));
        assert_eq!(csp, tutti_server::CONTENT_SECURITY_POLICY, "{path}");
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(header(&h, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(&h, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    srv.shutdown().await.unwrap();
}
