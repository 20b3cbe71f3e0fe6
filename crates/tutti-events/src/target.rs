//! Where webhooks may be delivered: a [`TargetPolicy`] refuses addresses a webhook must never
//! reach, and the dispatcher's connector ([`GuardedConnector`]) applies it to the addresses a
//! host name *resolves to* at delivery time, just before connecting (so a name that resolves
//! somewhere forbidden, or starts to later, is refused too).
//!
//! Always refused: the unspecified address (`0.0.0.0`, `::`, which reach this machine),
//! link-local addresses (`169.254.0.0/16`, `fe80::/10`: cloud metadata services answer at
//! `169.254.169.254`), other known metadata addresses, multicast and reserved ranges, and this
//! server's own listeners (any address of this machine on a listening port). Refused unless
//! [`TargetPolicy::allow_private`]: loopback (`127.0.0.0/8`, `::1`, `localhost`) and private
//! ranges (`10/8`, `172.16/12`, `192.168/16`, `100.64/10`, `198.18/15`, `fc00::/7`) where a
//! venue's own receivers often live.
//!
//! Must never: connect before checking the address it connects to, or follow a name's
//! resolution to an address it did not check.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a webhook may not be delivered to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// `0.0.0.0/8` or `::`: reaches this machine.
    Unspecified,
    /// `169.254.0.0/16` or `fe80::/10`.
    LinkLocal,
    /// A cloud provider's metadata service.
    Metadata,
    /// Multicast, broadcast or another reserved range.
    Reserved,
    /// This server's own listener.
    OwnListener,
    /// `127.0.0.0/8` or `::1` (allowed by `allow_private`).
    Loopback,
    /// A private or shared range (allowed by `allow_private`).
    Private,
}

impl Forbidden {
    /// A stable name, e.g. `link_local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Forbidden::Unspecified => "unspecified",
            Forbidden::LinkLocal => "link_local",
            Forbidden::Metadata => "metadata",
            Forbidden::Reserved => "reserved",
            Forbidden::OwnListener => "own_listener",
            Forbidden::Loopback => "loopback",
            Forbidden::Private => "private",
        }
    }

    /// Whether `allow_private` lifts it.
    pub fn is_private(self) -> bool {
        matches!(self, Forbidden::Loopback | Forbidden::Private)
    }

    fn describe(self) -> &'static str {
        match self {
            Forbidden::Unspecified => "the unspecified address, which reaches this machine",
            Forbidden::LinkLocal => "a link-local address (cloud metadata services answer there)",
            Forbidden::Metadata => "a cloud metadata service",
            Forbidden::Reserved => "a multicast, broadcast or reserved address",
            Forbidden::OwnListener => "this server's own listener",
            Forbidden::Loopback => {
                "a loopback address (set webhooks.allow_private = true to allow it)"
            }
            Forbidden::Private => {
                "a private network address (set webhooks.allow_private = true to allow it)"
            }
        }
    }
}

/// A refused webhook target. Its text starts with `webhook_target_forbidden`, the API's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook_target_forbidden: {addr} is {}", .reason.describe())]
pub struct TargetForbidden {
    /// The address (or the host name as written).
    pub addr: String,
    /// Why.
    pub reason: Forbidden,
}

/// Which addresses webhooks may be delivered to (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Allow loopback and private ranges (a venue's own receivers; tests' local receivers).
    pub allow_private: bool,
    /// The server's own listening addresses: never a target, on any address of this machine.
    pub own_listeners: Vec<SocketAddr>,
}

impl TargetPolicy {
    /// Checks one address a webhook would connect to.
    pub fn check(&self, addr: SocketAddr) -> Result<(), TargetForbidden> {
        let forbidden = |reason| TargetForbidden {
            addr: addr.to_string(),
            reason,
        };
        let ip = canonical(addr.ip());
        if let Some(r) = classify(ip).filter(|r| !r.is_private()) {
            return Err(forbidden(r));
        }
        if self.is_own_listener(ip, addr.port()) {
            return Err(forbidden(Forbidden::OwnListener));
        }
        match classify(ip) {
            Some(r) if !self.allow_private => Err(forbidden(r)),
            _ => Ok(()),
        }
    }

    /// Checks what can be known from a URL's text before any name is resolved: a literal IP
    /// address, or a `localhost` name (loopback). Other names pass here and are checked when
    /// delivered. `url` must already be a valid http(s) URL.
    pub fn check_url(&self, url: &str) -> Result<(), TargetForbidden> {
        let Ok(uri) = url.parse::<Uri>() else {
            return Ok(());
        };
        let Some(host) = uri.host() else {
            return Ok(());
        };
        let port = uri.port_u16().unwrap_or_else(|| default_port(&uri));
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check(SocketAddr::new(ip, port));
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            self.check(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
                .map_err(|e| TargetForbidden {
                    addr: host.to_owned(),
                    ..e
                })?;
        }
        Ok(())
    }

    fn is_own_listener(&self, ip: IpAddr, port: u16) -> bool {
        self.own_listeners.iter().any(|l| {
            l.port() == port
                && (canonical(l.ip()) == ip
                    || ip.is_loopback()
                    || ip.is_unspecified()
                    || is_this_machine(ip))
        })
    }
}

/// The port a URL without one uses.
pub(crate) fn default_port(uri: &Uri) -> u16 {
    if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    }
}

/// An IPv4-mapped IPv6 address as IPv4; anything else as is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address belongs to this machine: only then can a socket be bound to it.
fn is_this_machine(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The class of an address that is not an ordinary public one.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, d] = ip.octets();
    const METADATA: [[u8; 4]; 2] = [
        [168, 63, 129, 16],   // Azure
        [100, 100, 100, 200], // Alibaba Cloud
    ];
    Some(match (a, b) {
        _ if METADATA.contains(&[a, b, c, d]) => Forbidden::Metadata,
        (0, _) => Forbidden::Unspecified,
        (127, _) => Forbidden::Loopback,
        (169, 254) => Forbidden::LinkLocal,
        (10, _) | (192, 168) => Forbidden::Private,
        (172, 16..=31) | (100, 64..=127) | (198, 18..=19) => Forbidden::Private,
        (192, 0) if c == 0 => Forbidden::Reserved,
        (224..=255, _) => Forbidden::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    let s = ip.segments();
    Some(match s {
        _ if ip.is_unspecified() => Forbidden::Unspecified,
        _ if ip.is_loopback() => Forbidden::Loopback,
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => Forbidden::Metadata, // AWS over IPv6
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            let [a, b] = hi.to_be_bytes();
            let [c, d] = lo.to_be_bytes();
            return classify_v4(Ipv4Addr::new(a, b, c, d));
        }
        [x, ..] if x & 0xffc0 == 0xfe80 => Forbidden::LinkLocal,
        [x, ..] if x & 0xffc0 == 0xfec0 || x & 0xfe00 == 0xfc00 => Forbidden::Private,
        [x, ..] if x & 0xff00 == 0xff00 => Forbidden::Reserved,
        _ => return None,
    })
}

/// The error of a refused or failed connection.
pub(crate) type ConnectError = Box<dyn std::error::Error + Send + Sync>;

/// Connects webhook deliveries over TCP, only to addresses its [`TargetPolicy`] allows: it
/// resolves the URL's host itself, checks every address, and connects to the first allowed
/// one that answers.
#[derive(Debug, Clone)]
pub(crate) struct GuardedConnector {
    pub(crate) policy: Arc<TargetPolicy>,
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future =
        Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, ConnectError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move { connect(&policy, &dst).await })
    }
}

async fn connect(policy: &TargetPolicy, dst: &Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
    let host = dst.host().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = dst.port_u16().unwrap_or_else(|| default_port(dst));
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
    };
    let (mut refused, mut failed) = (None, None);
    for addr in addrs {
        if let Err(f) = policy.check(addr) {
            refused.get_or_insert(f);
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(TokioIo::new(tcp));
            }
            Err(e) => failed = Some(e),
        }
    }
    Err(match (failed, refused) {
        (Some(e), _) => e.into(),
        (None, Some(f)) => f.into(),
        (None, None) => format!("{host} resolved to no address").into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn reason(p: &TargetPolicy, s: &str) -> Option<Forbidden> {
        p.check(at(s)).err().map(|e| e.reason)
    }

    #[test]
    fn addresses_are_classified() {
        let strict = TargetPolicy::default();
        for (addr, want) in [
            ("169.254.169.254:80", Some(Forbidden::LinkLocal)),
            ("[fe80::1]:80", Some(Forbidden::LinkLocal)),
            ("168.63.129.16:80", Some(Forbidden::Metadata)),
            ("[fd00:ec2::254]:80", Some(Forbidden::Metadata)),
            ("0.0.0.0:7878", Some(Forbidden::Unspecified)),
            ("[::]:7878", Some(Forbidden::Unspecified)),
            ("224.0.0.1:80", Some(Forbidden::Reserved)),
            ("255.255.255.255:80", Some(Forbidden::Reserved)),
            ("127.0.0.1:9000", Some(Forbidden::Loopback)),
            ("[::1]:9000", Some(Forbidden::Loopback)),
            ("[::ffff:127.0.0.1]:9000", Some(Forbidden::Loopback)),
            ("[64:ff9b::a9fe:a9fe]:80", Some(Forbidden::LinkLocal)),
            ("10.1.2.3:80", Some(Forbidden::Private)),
            ("172.20.0.1:80", Some(Forbidden::Private)),
            ("192.168.1.10:80", Some(Forbidden::Private)),
            ("100.64.0.1:80", Some(Forbidden::Private)),
            ("[fd12::1]:80", Some(Forbidden::Private)),
            ("93.184.215.14:80", None),
            ("172.32.0.1:80", None),
            ("[2001:db8::1]:80", None),
        ] {
            assert_eq!(reason(&strict, addr), want, "{addr}");
        }
    }

    #[test]
    fn allow_private_lifts_only_loopback_and_private_ranges() {
        let venue = TargetPolicy {
            allow_private: true,
            own_listeners: vec![at("0.0.0.0:7878")],
        };
        assert_eq!(reason(&venue, "127.0.0.1:9000"), None);
        assert_eq!(reason(&venue, "192.168.1.10:80"), None);
        assert_eq!(
            reason(&venue, "169.254.169.254:80"),
            Some(Forbidden::LinkLocal)
        );
        assert_eq!(reason(&venue, "0.0.0.0:7878"), Some(Forbidden::Unspecified));
        // The server's own port, on any address of this machine.
        assert_eq!(
            reason(&venue, "127.0.0.1:7878"),
            Some(Forbidden::OwnListener)
        );
        assert_eq!(reason(&venue, "[::1]:7878"), Some(Forbidden::OwnListener));
        assert_eq!(
            reason(&venue, "127.0.0.5:7878"),
            Some(Forbidden::OwnListener)
        );
        // Another machine may run something on the same port.
        assert_eq!(reason(&venue, "192.0.2.44:7878"), None);
    }

    #[test]
    fn urls_are_checked_by_their_text_where_it_says_enough() {
        let strict = TargetPolicy::default();
        let why = |url: &str| strict.check_url(url).err().map(|e| e.reason);
        assert_eq!(
            why("http://169.254.169.254/latest/meta-data/"),
            Some(Forbidden::LinkLocal)
        );
        assert_eq!(why("http://[::1]:8080/"), Some(Forbidden::Loopback));
        assert_eq!(why("HTTP://LOCALHOST:8080/x"), Some(Forbidden::Loopback));
        assert_eq!(why("http://api.localhost./x"), Some(Forbidden::Loopback));
        assert_eq!(why("https://hooks.example.com/in"), None);
        let e = strict
            .check_url("http://0.0.0.0:7878/api/v1/setup")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("webhook_target_forbidden: 0.0.0.0:7878 is the unspecified"),
            "{e}"
        );
        let own = TargetPolicy {
            allow_private: true,
            own_listeners: vec![at("127.0.0.1:7878")],
        };
        assert_eq!(
            own.check_url("http://localhost:7878/api/v1/setup")
                .unwrap_err()
                .reason,
            Forbidden::OwnListener
        );
        assert!(own.check_url("http://localhost:9000/").is_ok());
    }
}
