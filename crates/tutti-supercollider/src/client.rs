//! [`ScClient`]: an asynchronous client for one `scsynth` server over UDP or TCP.
//!
//! Commands go out as OSC messages or timestamped bundles (encoded with `rosc`); replies
//! come back on a receiving task that hands each one to the request waiting for it (matched
//! by reply address and the node, group or sync id it carries; a `/fail` is matched by the
//! command it names) and turns node notifications into [`ScEvent`]s. Every request waits at
//! most the client's timeout, and an address where nothing listens says so.
//!
//! Must never: wait without a timeout, keep a request's waiter after it is dropped, or
//! panic on anything the network delivers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::error::ScError;
use crate::reply::{float, int, NodeInfo, ScEvent, StatusReply, TreeNode};
use crate::synthdef::SynthDefFile;

/// Largest UDP payload scsynth can receive in one datagram over IPv4.
pub const MAX_UDP_PACKET: usize = 65_507;
/// Largest TCP frame the client accepts from scsynth.
const MAX_TCP_FRAME: usize = 16 * 1024 * 1024;
/// Default time to wait for any reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach scsynth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// UDP (`scsynth -u PORT`), the default.
    #[default]
    Udp,
    /// TCP (`scsynth -t PORT`): length-prefixed OSC packets on one connection.
    Tcp,
}

/// Where a new node goes relative to its target (`/s_new` and `/g_new` add actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddAction {
    /// At the head of the target group.
    Head = 0,
    /// At the tail of the target group.
    Tail = 1,
    /// Just before the target node.
    Before = 2,
    /// Just after the target node.
    After = 3,
    /// Replacing the target node.
    Replace = 4,
}

/// Node ids just below this one are used briefly to check that a SynthDef loaded.
const PROBE_NODE: i32 = i32::MAX - 16;

/// The OSC time tag that means "now" (execute on arrival).
pub const IMMEDIATELY: OscTime = OscTime {
    seconds: 0,
    fractional: 1,
};

/// What reply a request waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    /// Reply address, e.g. `/status.reply`.
    reply: &'static str,
    /// An argument the reply must carry to be ours.
    key: Key,
    /// The command name a `/fail` for this request carries in its first argument.
    fail: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Any,
    Int(usize, i32),
    Str(usize, &'static str),
}

impl Expect {
    fn matches(&self, msg: &OscMessage) -> Option<ReplyResult> {
        if msg.addr == self.reply {
            let ours = match self.key {
                Key::Any => true,
                Key::Int(i, v) => int(msg.args.get(i)) == Some(v),
                Key::Str(i, s) => matches!(msg.args.get(i), Some(OscType::String(a)) if a == s),
            };
            return ours.then(|| Ok(msg.args.clone()));
        }
        if msg.addr == "/fail"
            && matches!(msg.args.first(), Some(OscType::String(c)) if c == self.fail)
        {
            return Some(Err(Failure::Server(fail_message(&msg.args[1..]))));
        }
        None
    }
}

fn fail_message(args: &[OscType]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| match a {
            OscType::String(s) => s.trim().to_string(),
            OscType::Int(i) => i.to_string(),
            OscType::Float(f) => f.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    if parts.is_empty() {
        "no reason given".to_string()
    } else {
        parts.join(" ")
    }
}

/// Why a request got no reply.
#[derive(Debug)]
enum Failure {
    /// scsynth answered `/fail` with this message.
    Server(String),
    /// The socket learnt that nothing listens at the address.
    Refused,
    /// The connection is gone.
    Closed,
}

type ReplyResult = Result<Vec<OscType>, Failure>;

struct Waiter {
    id: u64,
    expect: Expect,
    tx: oneshot::Sender<ReplyResult>,
}

/// State shared between the client and its receiving task.
struct Shared {
    waiters: Mutex<Vec<Waiter>>,
    next_waiter: AtomicU64,
    /// The last receive failed with "connection refused" (nothing listens at the address).
    refused: AtomicBool,
    /// The TCP connection is gone.
    closed: AtomicBool,
    events: broadcast::Sender<ScEvent>,
}

impl Shared {
    fn waiters(&self) -> MutexGuard<'_, Vec<Waiter>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dispatch(&self, packet: OscPacket, depth: usize) {
        match packet {
            OscPacket::Message(m) => self.dispatch_message(m),
            OscPacket::Bundle(b) if depth < 8 => {
                for p in b.content {
                    self.dispatch(p, depth + 1);
                }
            }
            OscPacket::Bundle(_) => tracing::debug!("scsynth reply bundle nested too deeply"),
        }
    }

    fn dispatch_message(&self, msg: OscMessage) {
        let claimed = {
            let mut waiters = self.waiters();
            let hit = waiters
                .iter()
                .enumerate()
                .find_map(|(i, w)| w.expect.matches(&msg).map(|r| (i, r)));
            hit.map(|(i, r)| (waiters.remove(i), r))
        };
        if let Some((waiter, result)) = claimed {
            // The requester may have given up (timeout); then nobody wants the reply.
            let _ = waiter.tx.send(result);
            return;
        }
        let node =
            |f: fn(NodeInfo) -> ScEvent| NodeInfo::from_args(&msg.addr, &msg.args).ok().map(f);
        let event = match msg.addr.as_str() {
            "/n_go" => node(ScEvent::NodeStarted),
            "/n_end" => node(ScEvent::NodeEnded),
            "/n_off" => node(ScEvent::NodeOff),
            "/n_on" => node(ScEvent::NodeOn),
            "/n_move" => node(ScEvent::NodeMoved),
            "/fail" => {
                let command = match msg.args.first() {
                    Some(OscType::String(s)) => s.clone(),
                    _ => String::from("?"),
                };
                let message = fail_message(msg.args.get(1..).unwrap_or(&[]));
                tracing::debug!(%command, %message, "scsynth reported a failure");
                Some(ScEvent::Failed { command, message })
            }
            other => {
                tracing::trace!(address = other, "unclaimed reply from scsynth");
                None
            }
        };
        if let Some(event) = event {
            // No receivers is fine: events are for whoever listens.
            let _ = self.events.send(event);
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.fail_all(|| Failure::Closed);
    }

    fn fail_all(&self, why: impl Fn() -> Failure) {
        let waiters = std::mem::take(&mut *self.waiters());
        for w in waiters {
            let _ = w.tx.send(Err(why()));
        }
    }
}

/// Removes a waiter when its request is dropped before the reply came.
struct WaiterGuard {
    id: u64,
    shared: Weak<Shared>,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.waiters().retain(|w| w.id != self.id);
        }
    }
}

/// A request that was sent and whose reply has not been read yet.
pub(crate) struct Pending {
    rx: oneshot::Receiver<ReplyResult>,
    _guard: WaiterGuard,
    command: &'static str,
    addr: String,
    timeout: Duration,
    shared: Arc<Shared>,
}

impl Pending {
    /// Waits for the reply, at most the client's timeout.
    pub(crate) async fn wait(mut self) -> Result<Vec<OscType>, ScError> {
        match tokio::time::timeout(self.timeout, &mut self.rx).await {
            Ok(Ok(r)) => self.finish(r),
            Ok(Err(_)) => Err(ScError::Closed {
                addr: self.addr.clone(),
            }),
            Err(_) => Err(self.no_reply()),
        }
    }

    /// The reply if it has arrived: `None` while still waiting, `Some(Err)` for a failure.
    pub(crate) fn try_take(&mut self) -> Option<Result<Vec<OscType>, ScError>> {
        match self.rx.try_recv() {
            Ok(r) => Some(self.finish(r)),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(ScError::Closed {
                addr: self.addr.clone(),
            })),
        }
    }

    /// The error to report when no reply came.
    pub(crate) fn no_reply(&self) -> ScError {
        if self.shared.closed.load(Ordering::Acquire) {
            ScError::Closed {
                addr: self.addr.clone(),
            }
        } else if self.shared.refused.load(Ordering::Acquire) {
            refused(&self.addr)
        } else {
            ScError::Timeout {
                addr: self.addr.clone(),
                command: self.command.to_string(),
                timeout: self.timeout,
            }
        }
    }

    fn finish(&self, r: ReplyResult) -> Result<Vec<OscType>, ScError> {
        r.map_err(|failure| match failure {
            Failure::Server(message) => ScError::Failed {
                addr: self.addr.clone(),
                command: self.command.to_string(),
                message,
            },
            Failure::Refused => refused(&self.addr),
            Failure::Closed => ScError::Closed {
                addr: self.addr.clone(),
            },
        })
    }
}

fn refused(addr: &str) -> ScError {
    ScError::Unreachable {
        addr: addr.to_string(),
        reason: String::from("connection refused: nothing listens on that port"),
    }
}

enum Io {
    Udp(Arc<UdpSocket>),
    Tcp(tokio::sync::Mutex<OwnedWriteHalf>),
}

struct Inner {
    addr: SocketAddr,
    addr_text: String,
    timeout: Duration,
    transport: Transport,
    io: Io,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    next_sync: AtomicI32,
    /// Serialises commands whose replies carry no id (`/d_recv`, `/notify`).
    exclusive: tokio::sync::Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A client for one scsynth server. Cheap to clone; the receiving task stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct ScClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ScClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScClient")
            .field("addr", &self.inner.addr)
            .field("transport", &self.inner.transport)
            .finish()
    }
}

/// Resolves `host:port` to one socket address, or says why it cannot.
pub async fn resolve(addr: &str, timeout: Duration) -> Result<SocketAddr, ScError> {
    let bad = |reason: String| ScError::Address {
        addr: addr.to_string(),
        reason,
    };
    if let Ok(a) = addr.parse::<SocketAddr>() {
        if a.port() == 0 {
            return Err(bad(String::from("port 0 is not a server port")));
        }
        return Ok(a);
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad(String::from("expected host:port, e.g. 127.0.0.1:57110")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("'{port}' is not a port number")))?;
    if host.is_empty() || port == 0 {
        return Err(bad(String::from("expected host:port with a non-zero port")));
    }
    let lookup = tokio::net::lookup_host((host, port));
    let mut addrs = match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(bad(format!("cannot resolve '{host}': {e}"))),
        Err(_) => return Err(bad(format!("resolving '{host}' timed out"))),
    };
    addrs
        .next()
        .ok_or_else(|| bad(format!("'{host}' resolves to no address")))
}

impl ScClient {
    /// Connects to scsynth at `addr` (`host:port`) and checks that it answers `/status`
    /// within `timeout` (which also bounds every later request).
    pub async fn connect(
        addr: &str,
        transport: Transport,
        timeout: Duration,
    ) -> Result<ScClient, ScError> {
        let server = resolve(addr, timeout).await?;
        let addr_text = server.to_string();
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            waiters: Mutex::new(Vec::new()),
            next_waiter: AtomicU64::new(1),
            refused: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            events,
        });
        let (io, reader) = match transport {
            Transport::Udp => {
                let local: IpAddr = match (server.ip().is_loopback(), server.is_ipv4()) {
                    (true, true) => Ipv4Addr::LOCALHOST.into(),
                    (true, false) => Ipv6Addr::LOCALHOST.into(),
                    (false, true) => Ipv4Addr::UNSPECIFIED.into(),
                    (false, false) => Ipv6Addr::UNSPECIFIED.into(),
                };
                let sock = UdpSocket::bind(SocketAddr::new(local, 0))
                    .await
                    .map_err(|e| ScError::io("binding a UDP socket for scsynth", e))?;
                // A connected socket only hears from scsynth and learns of "port
                // unreachable", which turns a silent timeout into a clear error.
                sock.connect(server)
                    .await
                    .map_err(|e| ScError::io(format!("connecting a UDP socket to {server}"), e))?;
                let sock = Arc::new(sock);
                let reader = tokio::spawn(read_udp(Arc::clone(&sock), Arc::clone(&shared)));
                (Io::Udp(sock), reader)
            }
            Transport::Tcp => {
                let stream = match tokio::time::timeout(timeout, TcpStream::connect(server)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        return Err(ScError::Unreachable {
                            addr: addr_text,
                            reason: format!("TCP connect failed: {e}"),
                        })
                    }
                    Err(_) => {
                        return Err(ScError::Unreachable {
                            addr: addr_text,
                            reason: format!(
                                "TCP connect timed out after {} ms",
                                timeout.as_millis()
                            ),
                        })
                    }
                };
                // Best effort: small control messages should not wait for Nagle.
                let _ = stream.set_nodelay(true);
                let (read, write) = stream.into_split();
                let reader = tokio::spawn(read_tcp(read, Arc::clone(&shared)));
                (Io::Tcp(tokio::sync::Mutex::new(write)), reader)
            }
        };
        let client = ScClient {
            inner: Arc::new(Inner {
                addr: server,
                addr_text,
                timeout,
                transport,
                io,
                shared,
                reader,
                next_sync: AtomicI32::new(1),
                exclusive: tokio::sync::Mutex::new(()),
            }),
        };
        match client.status().await {
            Ok(_) => Ok(client),
            Err(ScError::Timeout { addr, timeout, .. }) => Err(ScError::Unreachable {
                addr,
                reason: format!("no reply to /status within {} ms", timeout.as_millis()),
            }),
            Err(e) => Err(e),
        }
    }

    /// The server's address.
    pub fn server_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Node notifications and unclaimed failures (after [`ScClient::notify`]). A receiver
    /// that falls behind loses the oldest events (the channel holds 256).
    pub fn events(&self) -> broadcast::Receiver<ScEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Sends one OSC packet.
    pub async fn send(&self, packet: &OscPacket) -> Result<(), ScError> {
        let command = packet_name(packet);
        let bytes = rosc::encoder::encode(packet).map_err(|e| ScError::Encode {
            command: command.clone(),
            reason: e.to_string(),
        })?;
        self.send_bytes(&command, &bytes).await
    }

    async fn send_bytes(&self, command: &str, bytes: &[u8]) -> Result<(), ScError> {
        let inner = &self.inner;
        if inner.shared.closed.load(Ordering::Acquire) {
            return Err(ScError::Closed {
                addr: inner.addr_text.clone(),
            });
        }
        let context = || format!("sending {command} to scsynth at {}", inner.addr_text);
        match &inner.io {
            Io::Udp(sock) => {
                if bytes.len() > MAX_UDP_PACKET {
                    return Err(ScError::Input {
                        what: format!("OSC packet {command}"),
                        reason: format!(
                            "{} bytes do not fit in one UDP datagram ({MAX_UDP_PACKET}); use TCP",
                            bytes.len()
                        ),
                    });
                }
                match sock.send(bytes).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        inner.shared.refused.store(true, Ordering::Release);
                        Err(refused(&inner.addr_text))
                    }
                    Err(e) => Err(ScError::io(context(), e)),
                }
            }
            Io::Tcp(write) => {
                let len = u32::try_from(bytes.len()).map_err(|_| ScError::Input {
                    what: format!("OSC packet {command}"),
                    reason: String::from("larger than 4 GiB"),
                })?;
                // A server that stops reading must not stall us: the whole write, lock
                // included, is bounded by the timeout, and a timed-out write closes the
                // connection (a partial frame cannot be resumed).
                let write = async {
                    let mut w = write.lock().await;
                    w.write_all(&len.to_be_bytes()).await?;
                    w.write_all(bytes).await?;
                    w.flush().await
                };
                let r = match tokio::time::timeout(inner.timeout, write).await {
                    Ok(r) => r,
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("write took longer than {} ms", inner.timeout.as_millis()),
                    )),
                };
                r.map_err(|e| {
                    inner.shared.close();
                    ScError::io(context(), e)
                })
            }
        }
    }

    /// Sends `msg` and registers for the reply described by `expect`; the waiter is in
    /// place before the message leaves, so a fast reply cannot be missed.
    pub(crate) async fn request(
        &self,
        msg: OscMessage,
        command: &'static str,
        expect: Expect,
    ) -> Result<Pending, ScError> {
        let shared = &self.inner.shared;
        let id = shared.next_waiter.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        shared.waiters().push(Waiter { id, expect, tx });
        let pending = Pending {
            rx,
            _guard: WaiterGuard {
                id,
                shared: Arc::downgrade(shared),
            },
            command,
            addr: self.inner.addr_text.clone(),
            timeout: self.inner.timeout,
            shared: Arc::clone(shared),
        };
        self.send(&OscPacket::Message(msg)).await?;
        Ok(pending)
    }

    /// `/status`: the server's load and sample rate.
    pub async fn status(&self) -> Result<StatusReply, ScError> {
        let args = self.request_status().await?.wait().await?;
        StatusReply::from_args(&args)
    }

    pub(crate) async fn request_status(&self) -> Result<Pending, ScError> {
        self.request(
            message("/status", vec![]),
            "/status",
            Expect {
                reply: "/status.reply",
                key: Key::Any,
                fail: "/status",
            },
        )
        .await
    }

    /// `/notify 1` (or `0`): (un)registers this client for node notifications. Being
    /// registered already counts as success.
    pub async fn notify(&self, on: bool) -> Result<(), ScError> {
        let _one = self.inner.exclusive.lock().await;
        let pending = self
            .request(
                message("/notify", vec![OscType::Int(i32::from(on))]),
                "/notify",
                Expect {
                    reply: "/done",
                    key: Key::Str(0, "/notify"),
                    fail: "/notify",
                },
            )
            .await?;
        match pending.wait().await {
            Ok(_) => Ok(()),
            Err(ScError::Failed { message, .. }) if message.contains("already registered") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `/notify 0` without waiting for the answer (best effort, e.g. before the
    /// client is dropped), so the server does not keep a registration for a dead port.
    pub async fn unregister(&self) {
        let _ = self
            .send(&OscPacket::Message(message(
                "/notify",
                vec![OscType::Int(0)],
            )))
            .await;
    }

    /// `/d_recv`: loads the SynthDefs of a parsed file, waits for `/done`, and checks that
    /// scsynth really installed each one. scsynth 3.13 acknowledges a SynthDef it could not
    /// install (e.g. one using a UGen plugin it lacks) with `/done` and only logs the
    /// problem, so each SynthDef is first removed (`/d_free`, so an older one of the same
    /// name cannot stand in) and afterwards instantiated and freed in one bundle (no block
    /// is computed in between); a `/fail` for that `/s_new` means the load failed. Any
    /// failure, a timeout or a file too large for UDP is an error naming the SynthDef.
    pub async fn load_synthdefs(&self, file: &SynthDefFile) -> Result<(), ScError> {
        let _one = self.inner.exclusive.lock().await;
        let load_error = |name: String, reason: String| ScError::SynthDefLoad { name, reason };
        let names: Vec<OscType> = file
            .defs
            .iter()
            .map(|d| OscType::String(d.name.clone()))
            .collect();
        self.send(&OscPacket::Message(message("/d_free", names)))
            .await?;
        let msg = message("/d_recv", vec![OscType::Blob(file.bytes.to_vec())]);
        let pending = self
            .request(
                msg,
                "/d_recv",
                Expect {
                    reply: "/done",
                    key: Key::Str(0, "/d_recv"),
                    fail: "/d_recv",
                },
            )
            .await
            .map_err(|e| match e {
                ScError::Input { reason, .. } => load_error(file.label(), reason),
                other => other,
            })?;
        match pending.wait().await {
            Ok(_) => {}
            Err(ScError::Failed { message, .. }) => return Err(load_error(file.label(), message)),
            Err(ScError::Timeout { timeout, .. }) => {
                return Err(load_error(
                    file.label(),
                    format!(
                        "scsynth did not acknowledge /d_recv within {} ms",
                        timeout.as_millis()
                    ),
                ))
            }
            Err(e) => return Err(e),
        }
        for def in &file.defs {
            let mut events = self.events();
            let probe = PROBE_NODE - (self.inner.next_sync.load(Ordering::Relaxed) & 0xffff);
            let check = OscBundle {
                timetag: IMMEDIATELY,
                content: vec![
                    OscPacket::Message(s_new(&def.name, probe, AddAction::Tail, 0, &[])),
                    OscPacket::Message(message("/n_free", vec![OscType::Int(probe)])),
                ],
            };
            self.send(&OscPacket::Bundle(check)).await?;
            self.sync().await?;
            while let Some(ev) = next_event(&mut events) {
                if let ScEvent::Failed { command, message } = ev {
                    if command == "/s_new" {
                        return Err(load_error(
                            def.name.clone(),
                            format!(
                                "scsynth acknowledged /d_recv but cannot instantiate it ({message}); \
                                 its log names the cause, e.g. a UGen plugin that is not installed"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `/sync`: waits until scsynth has processed everything sent before it.
    pub async fn sync(&self) -> Result<(), ScError> {
        let id = self.inner.next_sync.fetch_add(1, Ordering::Relaxed);
        self.request(
            message("/sync", vec![OscType::Int(id)]),
            "/sync",
            Expect {
                reply: "/synced",
                key: Key::Int(0, id),
                fail: "/sync",
            },
        )
        .await?
        .wait()
        .await
        .map(|_| ())
    }

    /// `/g_new`: creates group `id` relative to `target`.
    pub async fn new_group(&self, id: i32, action: AddAction, target: i32) -> Result<(), ScError> {
        self.send(&OscPacket::Message(g_new(id, action, target)))
            .await
    }

    /// `/s_new`: starts a synth of SynthDef `def` as node `id` with initial control values.
    pub async fn new_synth(
        &self,
        def: &str,
        id: i32,
        action: AddAction,
        target: i32,
        controls: &[(&str, f32)],
    ) -> Result<(), ScError> {
        self.send(&OscPacket::Message(s_new(
            def, id, action, target, controls,
        )))
        .await
    }

    /// `/n_set`: sets controls of node `id` now.
    pub async fn set_controls(&self, id: i32, controls: &[(&str, f32)]) -> Result<(), ScError> {
        self.send(&OscPacket::Message(n_set(id, controls))).await
    }

    /// One bundle of `/n_set`s (one per node), to take effect at `at` (scsynth schedules
    /// it; use a time slightly ahead, e.g. 50 ms, for jitter-free changes).
    pub async fn set_controls_at(
        &self,
        at: SystemTime,
        nodes: &[(i32, Vec<(&str, f32)>)],
    ) -> Result<(), ScError> {
        let timetag = OscTime::try_from(at).map_err(|e| ScError::Input {
            what: String::from("bundle time"),
            reason: e.to_string(),
        })?;
        let content = nodes
            .iter()
            .map(|(id, controls)| OscPacket::Message(n_set(*id, controls)))
            .collect();
        self.send(&OscPacket::Bundle(OscBundle { timetag, content }))
            .await
    }

    /// `/n_free`: frees node `id` (a group frees everything in it).
    pub async fn free_node(&self, id: i32) -> Result<(), ScError> {
        self.send(&OscPacket::Message(message(
            "/n_free",
            vec![OscType::Int(id)],
        )))
        .await
    }

    /// `/g_queryTree`: the tree below group `group`, with control values when `controls`.
    pub async fn query_tree(&self, group: i32, controls: bool) -> Result<TreeNode, ScError> {
        let args = self.request_tree(group, controls).await?.wait().await?;
        TreeNode::from_reply(&args)
    }

    pub(crate) async fn request_tree(
        &self,
        group: i32,
        controls: bool,
    ) -> Result<Pending, ScError> {
        self.request(
            message(
                "/g_queryTree",
                vec![OscType::Int(group), OscType::Int(i32::from(controls))],
            ),
            "/g_queryTree",
            Expect {
                reply: "/g_queryTree.reply",
                key: Key::Int(1, group),
                fail: "/g_queryTree",
            },
        )
        .await
    }

    /// `/s_get`: the current values of the named controls of synth `id`, in order.
    pub async fn get_controls(
        &self,
        id: i32,
        names: &[&str],
    ) -> Result<Vec<(String, f32)>, ScError> {
        let mut args = vec![OscType::Int(id)];
        args.extend(names.iter().map(|n| OscType::String((*n).to_string())));
        let reply = self
            .request(
                message("/s_get", args),
                "/s_get",
                Expect {
                    reply: "/n_set",
                    key: Key::Int(0, id),
                    fail: "/s_get",
                },
            )
            .await?
            .wait()
            .await?;
        let mut out = Vec::with_capacity(names.len());
        for pair in reply.get(1..).unwrap_or(&[]).chunks(2) {
            let name = match pair.first() {
                Some(OscType::String(s)) => s.clone(),
                Some(OscType::Int(i)) => i.to_string(),
                _ => {
                    return Err(ScError::BadReply {
                        command: String::from("/s_get"),
                        reason: String::from("a control name is missing"),
                    })
                }
            };
            let value = float(pair.get(1)).ok_or_else(|| ScError::BadReply {
                command: String::from("/s_get"),
                reason: format!("control '{name}' has no numeric value"),
            })?;
            out.push((name, value as f32));
        }
        Ok(out)
    }

    /// `/n_query`: where node `id` is in the tree.
    pub async fn query_node(&self, id: i32) -> Result<NodeInfo, ScError> {
        let args = self
            .request(
                message("/n_query", vec![OscType::Int(id)]),
                "/n_query",
                Expect {
                    reply: "/n_info",
                    key: Key::Int(0, id),
                    fail: "/n_query",
                },
            )
            .await?
            .wait()
            .await?;
        NodeInfo::from_args("/n_query", &args)
    }
}

/// The next event already received, skipping over a gap if the receiver fell behind.
pub(crate) fn next_event(events: &mut broadcast::Receiver<ScEvent>) -> Option<ScEvent> {
    loop {
        match events.try_recv() {
            Ok(ev) => return Some(ev),
            Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
            Err(_) => return None,
        }
    }
}

async fn read_udp(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.recv(&mut buf).await {
            Ok(n) => {
                shared.refused.store(false, Ordering::Release);
                match rosc::decoder::decode_udp(&buf[..n]) {
                    Ok((_, packet)) => shared.dispatch(packet, 0),
                    Err(e) => tracing::debug!(error = %e, "undecodable packet from scsynth"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                // "Port unreachable": nothing listens now, so no pending request will be
                // answered; fail them at once instead of letting each time out.
                shared.refused.store(true, Ordering::Release);
                shared.fail_all(|| Failure::Refused);
            }
            Err(e) => {
                tracing::debug!(error = %e, "receiving from scsynth");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn read_tcp(mut read: tokio::net::tcp::OwnedReadHalf, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if read.read_exact(&mut len).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_TCP_FRAME {
            tracing::warn!(len, "scsynth sent an oversized TCP frame; closing");
            break;
        }
        buf.resize(len, 0);
        if read.read_exact(&mut buf).await.is_err() {
            break;
        }
        match rosc::decoder::decode_udp(&buf) {
            Ok((_, packet)) => shared.dispatch(packet, 0),
            Err(e) => tracing::debug!(error = %e, "undecodable packet from scsynth"),
        }
    }
    shared.close();
}

fn packet_name(packet: &OscPacket) -> String {
    match packet {
        OscPacket::Message(m) => m.addr.clone(),
        OscPacket::Bundle(b) => match b.content.first() {
            Some(p) => format!("bundle of {}", packet_name(p)),
            None => String::from("empty bundle"),
        },
    }
}

pub(crate) fn message(addr: &str, args: Vec<OscType>) -> OscMessage {
    OscMessage {
        addr: addr.to_string(),
        args,
    }
}

pub(crate) fn g_new(id: i32, action: AddAction, target: i32) -> OscMessage {
    message(
        "/g_new",
        vec![
            OscType::Int(id),
            OscType::Int(action as i32),
            OscType::Int(target),
        ],
    )
}

pub(crate) fn s_new(
    def: &str,
    id: i32,
    action: AddAction,
    target: i32,
    controls: &[(&str, f32)],
) -> OscMessage {
    let mut args = Vec::with_capacity(4 + 2 * controls.len());
    args.push(OscType::String(def.to_string()));
    args.push(OscType::Int(id));
    args.push(OscType::Int(action as i32));
    args.push(OscType::Int(target));
    for (name, value) in controls {
        args.push(OscType::String((*name).to_string()));
        args.push(OscType::Float(*value));
    }
    message("/s_new", args)
}

pub(crate) fn n_set(id: i32, controls: &[(&str, f32)]) -> OscMessage {
    let mut args = Vec::with_capacity(1 + 2 * controls.len());
    args.push(OscType::Int(id));
    for (name, value) in controls {
        args.push(OscType::String((*name).to_string()));
        args.push(OscType::Float(*value));
    }
    message("/n_set", args)
}
