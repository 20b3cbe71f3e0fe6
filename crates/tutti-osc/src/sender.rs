//! [`OscSender`]: sends the same encoded bundle to every configured UDP target, from the tick.
//!
//! Sends are non-blocking (`send_to` on a socket in non-blocking mode, the same syscall as
//! tokio's `try_send_to`), so a full socket buffer or a dead target costs one failed syscall, is
//! counted, and is logged at most once per minute per target. One target's failure never stops
//! the others. This module must never await, block, retry or queue: a packet that cannot leave
//! now is dropped, because the next tick carries a fresher state anyway.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::OscError;
use crate::ratelimit::{RateLimiter, LOG_INTERVAL};

/// Most UDP targets one sender accepts.
pub const MAX_TARGETS: usize = 64;

/// Counters for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetStats {
    /// The target.
    pub target: SocketAddr,
    /// Datagrams handed to the OS in full.
    pub packets_sent: u64,
    /// Bytes in those datagrams.
    pub bytes_sent: u64,
    /// Datagrams dropped because the send failed (would block, unreachable, too big, …).
    pub send_errors: u64,
}

/// A snapshot of an [`OscSender`]'s counters, one entry per target in configuration order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderStats {
    /// Per-target counters.
    pub targets: Vec<TargetStats>,
}

impl SenderStats {
    /// Total failed sends over all targets.
    pub fn total_errors(&self) -> u64 {
        self.targets.iter().map(|t| t.send_errors).sum()
    }
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    packets: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    log_gate: RateLimiter,
}

/// Sends encoded OSC packets to a fixed list of UDP targets without ever blocking.
///
/// Holds one socket per address family in use, bound to an ephemeral port: on loopback when every
/// target of that family is a loopback address, otherwise on the unspecified address.
/// `send` takes `&self`, so the sender can be shared (e.g. in an `Arc`) with a stats reader.
#[derive(Debug)]
pub struct OscSender {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    targets: Box<[Target]>,
}

impl OscSender {
    /// Validates `targets` and binds the sending socket(s) to ephemeral ports.
    ///
    /// A target is rejected if its port is 0, its address is unspecified (`0.0.0.0`, `::`) or the
    /// IPv4 broadcast address, or if it is listed twice; at most [`MAX_TARGETS`]. An empty list
    /// is allowed and makes [`OscSender::send`] a no-op.
    pub fn new(targets: impl IntoIterator<Item = SocketAddr>) -> Result<Self, OscError> {
        let targets = validate_targets(targets)?;
        let bind_for = |v6: bool| -> Option<SocketAddr> {
            let mut family = targets.iter().filter(|t| t.is_ipv6() == v6).peekable();
            family.peek()?;
            let all_loopback = family.all(|t| t.ip().is_loopback());
            let ip = match (v6, all_loopback) {
                (false, true) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                (false, false) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                (true, true) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                (true, false) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            Some(SocketAddr::new(ip, 0))
        };
        let v4 = bind_for(false).map(bind_nonblocking).transpose()?;
        let v6 = bind_for(true).map(bind_nonblocking).transpose()?;
        Ok(Self::from_parts(v4, v6, targets))
    }

    /// Like [`OscSender::new`] but binds the single sending socket to `bind` (e.g. to pick the
    /// network interface, or a fixed source port). Every target must have `bind`'s address family.
    pub fn with_bind(
        bind: SocketAddr,
        targets: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Self, OscError> {
        let targets = validate_targets(targets)?;
        if let Some(t) = targets.iter().find(|t| t.is_ipv6() != bind.is_ipv6()) {
            return Err(OscError::InvalidTarget {
                target: *t,
                reason: "address family differs from the bind address",
            });
        }
        let socket = bind_nonblocking(bind)?;
        let (v4, v6) = if bind.is_ipv6() {
            (None, Some(socket))
        } else {
            (Some(socket), None)
        };
        Ok(Self::from_parts(v4, v6, targets))
    }

    fn from_parts(v4: Option<UdpSocket>, v6: Option<UdpSocket>, targets: Vec<SocketAddr>) -> Self {
        let targets = targets
            .into_iter()
            .map(|addr| Target {
                addr,
                packets: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                log_gate: RateLimiter::new(LOG_INTERVAL),
            })
            .collect();
        Self { v4, v6, targets }
    }

    /// Sends `packet` as one datagram to every target, in configuration order, without blocking.
    ///
    /// Failures (including "would block" when the socket buffer is full, and partial sends) are
    /// counted per target and logged at most once per minute per target; they never stop the
    /// remaining targets. Allocation-free unless a warning is actually logged.
    pub fn send(&self, packet: &[u8]) {
        for t in self.targets.iter() {
            let socket = if t.addr.is_ipv6() {
                self.v6.as_ref()
            } else {
                self.v4.as_ref()
            };
            let result = match socket {
                Some(s) => s.send_to(packet, t.addr),
                // Unreachable by construction (a socket exists for every family in use).
                None => Err(io::Error::from(io::ErrorKind::AddrNotAvailable)),
            };
            match result {
                Ok(n) if n == packet.len() => {
                    t.packets.fetch_add(1, Ordering::Relaxed);
                    t.bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(n) => self.fail(
                    t,
                    &io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("partial send: {n} of {} bytes", packet.len()),
                    ),
                ),
                Err(e) => self.fail(t, &e),
            }
        }
    }

    fn fail(&self, t: &Target, err: &io::Error) {
        let total = t.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(suppressed) = t.log_gate.check(Instant::now()) {
            tracing::warn!(
                target: "tutti_osc",
                osc_target = %t.addr,
                error = %err,
                total_errors = total,
                suppressed_since_last_log = suppressed,
                "OSC send failed; packet dropped (logged at most once a minute per target)"
            );
        }
    }

    /// A snapshot of the per-target counters.
    pub fn stats(&self) -> SenderStats {
        SenderStats {
            targets: self
                .targets
                .iter()
                .map(|t| TargetStats {
                    target: t.addr,
                    packets_sent: t.packets.load(Ordering::Relaxed),
                    bytes_sent: t.bytes.load(Ordering::Relaxed),
                    send_errors: t.errors.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }

    /// The configured targets, in order.
    pub fn targets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.targets.iter().map(|t| t.addr)
    }

    /// The local addresses of the sending socket(s) (the source address receivers see).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        [&self.v4, &self.v6]
            .into_iter()
            .flatten()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

fn validate_targets(
    targets: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, OscError> {
    let targets: Vec<SocketAddr> = targets.into_iter().collect();
    if targets.len() > MAX_TARGETS {
        return Err(OscError::TooManyTargets {
            count: targets.len(),
            max: MAX_TARGETS,
        });
    }
    for (i, t) in targets.iter().enumerate() {
        let reason = if t.port() == 0 {
            Some("port 0 cannot be sent to")
        } else if t.ip().is_unspecified() {
            Some("the unspecified address cannot be sent to")
        } else if t.ip() == IpAddr::V4(Ipv4Addr::BROADCAST) {
            Some("broadcast is not supported; use a subnet or multicast address")
        } else if targets[..i].contains(t) {
            Some("listed more than once")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(OscError::InvalidTarget { target: *t, reason });
        }
    }
    Ok(targets)
}

fn bind_nonblocking(addr: SocketAddr) -> Result<UdpSocket, OscError> {
    let io_err = |context: &str, source| OscError::Io {
        context: format!("{context} OSC sending socket on {addr}"),
        source,
    };
    let socket = UdpSocket::bind(addr).map_err(|e| io_err("binding", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| io_err("making non-blocking the", e))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn invalid_targets_are_named() {
        let cases = [
            (vec![addr("127.0.0.1:0")], "port 0"),
            (vec![addr("0.0.0.0:9000")], "unspecified"),
            (vec![addr("[::]:9000")], "unspecified"),
            (vec![addr("255.255.255.255:9000")], "broadcast"),
            (
                vec![addr("127.0.0.1:9000"), addr("127.0.0.1:9000")],
                "more than once",
            ),
        ];
        for (targets, want) in cases {
            match OscSender::new(targets.clone()) {
                Err(OscError::InvalidTarget { target, reason }) => {
                    assert!(reason.contains(want), "{targets:?}: {reason}");
                    assert!(targets.contains(&target));
                }
                other => panic!("{targets:?}: {other:?}"),
            }
        }
        let many =
            (1..=(MAX_TARGETS as u16 + 1)).map(|p| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), p));
        assert!(matches!(
            OscSender::new(many),
            Err(OscError::TooManyTargets {
                count: 65,
                max: MAX_TARGETS
            })
        ));
    }

    #[test]
    fn binds_loopback_only_when_all_targets_are_loopback() {
        let s = OscSender::new([addr("127.0.0.1:9000")]).expect("sender");
        let local = s.local_addrs();
        assert_eq!(local.len(), 1);
        assert!(local[0].ip().is_loopback());
        assert_ne!(local[0].port(), 0);

        let s = OscSender::new([addr("127.0.0.1:9000"), addr("192.0.2.7:9000")]).expect("sender");
        assert!(s.local_addrs()[0].ip().is_unspecified());

        let s = OscSender::new([]).expect("empty");
        assert!(s.local_addrs().is_empty());
        s.send(b"ignored");
        assert_eq!(s.stats(), SenderStats::default());
    }

    #[test]
    fn with_bind_rejects_mixed_families() {
        let err =
            OscSender::with_bind(addr("127.0.0.1:0"), [addr("[::1]:9000")]).expect_err("mixed");
        assert!(matches!(err, OscError::InvalidTarget { .. }));
    }
}
