//! [`OscListener`]: a UDP port that accepts performer commands and forwards them on a bounded
//! channel.
//!
//! Every datagram is parsed with [`crate::parse_packet`]; good commands go out with `try_send`
//! (when the channel is full the command is dropped and counted: the listener never waits on the
//! consumer), malformed packets are dropped, counted and logged at most once a minute. The task
//! stops when the handle is dropped, when [`OscListenerHandle::shutdown`] is called, or when the
//! channel's receiver is gone. This module must never decide whether a sender may perform (that is
//! the caller's permission check, made by choosing the bind address) nor interpret commands.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::command::{parse_packet, OscCommand};
use crate::error::OscError;
use crate::ratelimit::{RateLimiter, LOG_INTERVAL};

/// Default address of the OSC command port: loopback only, next to the HTTP port 7878.
pub const DEFAULT_LISTEN_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7879));

/// Receive buffer size: the largest UDP payload, so an oversized packet is measured, not truncated.
const RECV_BUF_LEN: usize = 65_536;

/// Pause after a socket receive error, so a persistent error cannot spin the task.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A snapshot of a listener's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerStats {
    /// Datagrams received (good and malformed).
    pub packets_received: u64,
    /// Datagrams rejected by [`crate::parse_packet`] (none of their commands was forwarded).
    pub packets_malformed: u64,
    /// Commands handed to the channel.
    pub commands_forwarded: u64,
    /// Commands dropped because the channel was full (or closed).
    pub commands_dropped: u64,
    /// Socket receive errors.
    pub recv_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    malformed: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    recv_errors: AtomicU64,
}

/// Binds OSC command ports. See [`OscListener::bind`].
#[derive(Debug)]
pub struct OscListener;

impl OscListener {
    /// Binds a UDP socket on `addr` (use [`DEFAULT_LISTEN_ADDR`] unless the configuration says
    /// otherwise; port 0 picks a free port) and spawns the receive task on the current tokio
    /// runtime. Commands go to `out` with `try_send`.
    ///
    /// Anyone who can reach the port can perform, so binding a non-loopback address is the
    /// caller's explicit choice; it is logged as a warning.
    pub async fn bind(
        addr: SocketAddr,
        out: mpsc::Sender<OscCommand>,
    ) -> Result<OscListenerHandle, OscError> {
        let socket = UdpSocket::bind(addr).await.map_err(|source| OscError::Io {
            context: format!("binding OSC command port {addr}"),
            source,
        })?;
        let local_addr = socket.local_addr().map_err(|source| OscError::Io {
            context: format!("reading local address of OSC command port {addr}"),
            source,
        })?;
        if !local_addr.ip().is_loopback() {
            tracing::warn!(
                target: "tutti_osc",
                %local_addr,
                "OSC command port is reachable from the network: anyone who can send to it can perform"
            );
        } else {
            tracing::info!(target: "tutti_osc", %local_addr, "OSC command port listening");
        }
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(socket, out, Arc::clone(&counters), stop_rx));
        Ok(OscListenerHandle {
            local_addr,
            counters,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// Owns a running listener. Dropping it stops the task (the socket closes shortly after, on the
/// runtime); [`OscListenerHandle::shutdown`] stops it and waits until the socket is closed.
#[derive(Debug)]
pub struct OscListenerHandle {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl OscListenerHandle {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ListenerStats {
        let c = &self.counters;
        ListenerStats {
            packets_received: c.received.load(Ordering::Relaxed),
            packets_malformed: c.malformed.load(Ordering::Relaxed),
            commands_forwarded: c.forwarded.load(Ordering::Relaxed),
            commands_dropped: c.dropped.load(Ordering::Relaxed),
            recv_errors: c.recv_errors.load(Ordering::Relaxed),
        }
    }

    /// Whether the receive task is still running (it stops by itself if the channel closes).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the task and waits until it has finished and closed its socket.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The task may already have stopped on its own; then there is no one to tell.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::error!(target: "tutti_osc", error = %e, "OSC listener task failed");
            }
        }
    }
}

impl Drop for OscListenerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn run(
    socket: UdpSocket,
    out: mpsc::Sender<OscCommand>,
    counters: Arc<Counters>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; RECV_BUF_LEN];
    let malformed_log = RateLimiter::new(LOG_INTERVAL);
    let dropped_log = RateLimiter::new(LOG_INTERVAL);
    let error_log = RateLimiter::new(LOG_INTERVAL);
    'recv: loop {
        let received = tokio::select! {
            biased;
            // Resolves on an explicit stop and when the handle (the sender) is dropped.
            _ = &mut stop => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let (len, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                let total = counters.recv_errors.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(suppressed) = error_log.check(Instant::now()) {
                    tracing::warn!(
                        target: "tutti_osc",
                        error = %e,
                        total_errors = total,
                        suppressed_since_last_log = suppressed,
                        "OSC command port receive error"
                    );
                }
                tokio::time::sleep(RECV_ERROR_PAUSE).await;
                continue;
            }
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        let commands = match parse_packet(&buf[..len]) {
            Ok(c) => c,
            Err(e) => {
                let total = counters.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(suppressed) = malformed_log.check(Instant::now()) {
                    tracing::warn!(
                        target: "tutti_osc",
                        %peer,
                        code = e.code(),
                        error = %e,
                        total_malformed = total,
                        suppressed_since_last_log = suppressed,
                        "malformed OSC packet dropped (logged at most once a minute)"
                    );
                }
                continue;
            }
        };
        for cmd in commands {
            match out.try_send(cmd) {
                Ok(()) => {
                    counters.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) => {
                    let total = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(suppressed) = dropped_log.check(Instant::now()) {
                        tracing::warn!(
                            target: "tutti_osc",
                            %peer,
                            total_dropped = total,
                            suppressed_since_last_log = suppressed,
                            "OSC command dropped: command channel full (logged at most once a minute)"
                        );
                    }
                }
                Err(TrySendError::Closed(_)) => {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        target: "tutti_osc",
                        "OSC command channel closed; OSC command port stops"
                    );
                    break 'recv;
                }
            }
        }
    }
    // Close the socket before the channel, so that once a consumer sees the channel closed the
    // port is free again.
    drop(socket);
    drop(out);
}
