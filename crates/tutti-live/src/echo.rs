//! The Autobahn echo endpoint: a WebSocket server that echoes every text and binary
//! message back, over exactly the hub's framing (the same handshake, [`crate::peer`]'s
//! writer and headers, the same `WebSocketContext` reading with the live limits, the same
//! close, ping and error handling as `/live/v1`). It exists so the Autobahn testsuite's
//! cases can be run against that code (`crates/tutti-live/tests/autobahn.rs`,
//! `docs/conformance/autobahn.md`).
//!
//! Compiled only with the `autobahn-echo` feature, which only the crate's own tests and
//! its `autobahn_echo` example turn on: no server routes it.

use std::convert::Infallible;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tutti_show::HubStats;

use crate::{upgrade_as, Hub, TokenAdmission};

/// Serve the echo endpoint on `listener` (every GET, at any path, upgrades) until
/// accepting fails. Connections are served as the server serves them: hyper's HTTP/1 with
/// upgrades, so the hub takes the TCP socket after the handshake, and TCP_NODELAY.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    // Connections end at shutdown; it never comes while this runs.
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let hub = Arc::new(Hub::new(
        Arc::new(TokenAdmission(String::new())),
        1024,
        Arc::new(HubStats::default()),
        shutdown,
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new());
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let hub = hub.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
            let hub = hub.clone();
            async move {
                Ok::<_, Infallible>(upgrade_as(hub, req.map(axum::body::Body::new), true).await)
            }
        });
        let conn = http
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "echo connection ended with an error");
            }
        });
    }
}
