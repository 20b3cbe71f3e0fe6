//! One client's socket, shared by its connection task (which reads frames and writes
//! replies) and the audience fan-out (which writes state frames straight from the
//! publishing side, with no task woken per client).
//!
//! Every byte for the client goes through [`Peer::write`] under one short lock, so frames
//! from the two writers never interleave: a frame the socket takes only in part leaves the
//! rest in `pending`, which goes out before anything else. A state frame is written only
//! when nothing is pending; otherwise it is skipped (latest wins).
//!
//! Must never: block (every write is `try_write`), hold the lock across `.await`, or queue
//! more than [`MAX_PENDING`] bytes of replies for a client that does not read.

use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use tokio::net::TcpStream;
use tokio::sync::Notify;

use tutti_show::TickTimes;

/// Reply bytes a client that does not read may have waiting; replies beyond are dropped.
/// (State frames are never queued: they are skipped while anything is pending.)
pub const MAX_PENDING: usize = 256 * 1024;

/// A WebSocket frame header for an unmasked, final frame (server to client).
pub struct Header {
    bytes: [u8; 10],
    len: usize,
}

impl Header {
    /// The header of a final text frame carrying `len` bytes.
    pub fn text(len: usize) -> Header {
        Header::new(0x81, len)
    }

    /// The header of a final binary frame carrying `len` bytes (only the Autobahn echo
    /// endpoint writes binary frames: the live protocol is JSON text).
    pub fn binary(len: usize) -> Header {
        Header::new(0x82, len)
    }

    /// The header of a close frame carrying `len` bytes.
    pub fn close(len: usize) -> Header {
        Header::new(0x88, len)
    }

    fn new(first: u8, len: usize) -> Header {
        let mut bytes = [0u8; 10];
        bytes[0] = first;
        let n = if len < 126 {
            bytes[1] = len as u8;
            2
        } else if len <= usize::from(u16::MAX) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        Header { bytes, len: n }
    }

    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A whole text frame (header and payload) in one buffer, ready to write to many sockets.
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    let h = Header::text(payload.len());
    let mut v = Vec::with_capacity(h.as_bytes().len() + payload.len());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(payload);
    v
}

/// Ticks whose acks a connection keeps apart while it waits for a state (at 20 ticks a
/// second and 2 states a second, ten ticks pass between states; inputs come at most
/// 30 a second). Beyond that the oldest is left to the next one's ack, which covers it.
const MAX_ACKS: usize = 8;

/// What is waiting for the socket, and the acks the next state frame carries.
#[derive(Default)]
pub struct Out {
    /// Bytes that must go before anything else (the rest of a partly written frame).
    pending: Vec<u8>,
    /// `(seq, tick)` of the newest input of each tick not yet acknowledged, oldest first:
    /// each goes in front of the first state of a tick at or after its own, so an ack
    /// tells when its input was applied, and an input that arrives while a state is
    /// being fanned out (promised the next tick) does not push back the ack of one that
    /// state already reflects.
    acks: [(u64, u64); MAX_ACKS],
    /// Entries of `acks` in use.
    n_acks: usize,
}

impl Out {
    /// An input `seq` was applied in (or before) tick `tick`.
    pub fn set_ack(&mut self, seq: u64, tick: u64) {
        if let Some(last) = self.acks[..self.n_acks].last_mut() {
            if tick <= last.1 {
                // The newest input of a tick stands for the earlier ones.
                last.0 = seq;
                return;
            }
        }
        if self.n_acks == MAX_ACKS {
            self.acks.copy_within(1.., 0);
            self.n_acks -= 1;
        }
        self.acks[self.n_acks] = (seq, tick);
        self.n_acks += 1;
    }

    /// The acks that go with the state of `tick`: those of the ticks it reflects.
    fn acks_due(&self, tick: u64) -> &[(u64, u64)] {
        let n = self.acks[..self.n_acks]
            .iter()
            .take_while(|(_, t)| *t <= tick)
            .count();
        &self.acks[..n]
    }

    /// The first `n` acks were written.
    fn acks_sent(&mut self, n: usize) {
        self.acks.copy_within(n..self.n_acks, 0);
        self.n_acks -= n;
    }
}

/// How a state frame fared with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The socket took it (possibly in part; the rest is pending).
    Written,
    /// The client is not reading fast enough: skipped, nothing written.
    Skipped,
    /// The socket failed: the client is gone.
    Failed,
}

/// One connected client.
pub struct Peer {
    stream: TcpStream,
    out: Mutex<Out>,
    /// Fired when bytes were left pending by someone other than the connection task.
    pub wake: Notify,
    closed: AtomicBool,
    shut: AtomicBool,
}

impl Peer {
    /// Wrap an accepted, upgraded socket.
    pub fn new(stream: TcpStream) -> Peer {
        Peer {
            stream,
            out: Mutex::new(Out::default()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            shut: AtomicBool::new(false),
        }
    }

    /// The socket (for readiness).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Lock the outgoing side.
    pub fn out(&self) -> MutexGuard<'_, Out> {
        // Plain data: a panic elsewhere cannot leave it inconsistent.
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the connection has ended (the fan-out then forgets it).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Stop state frames: the connection is closing (a close frame follows, and nothing
    /// may follow a close frame). Checked under the outgoing lock, so a state written
    /// concurrently goes before the close frame, never after.
    pub fn retire(&self) {
        let _out = self.out();
        self.closed.store(true, Relaxed);
    }

    /// End the connection: no more writes, and the client sees the socket close now
    /// rather than when the last reference to it goes.
    pub fn close(&self) {
        self.retire();
        if !self.shut.swap(true, Relaxed) {
            // Shutdown, not close: the descriptor stays valid while others hold the peer.
            let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Both);
        }
    }

    /// Whether bytes are waiting for the socket.
    pub fn has_pending(&self) -> bool {
        !self.out().pending.is_empty()
    }

    /// How many bytes are waiting for the socket.
    pub fn pending_len(&self) -> usize {
        self.out().pending.len()
    }

    /// Write `parts` in order, after anything pending, as far as the socket takes them;
    /// keep the rest pending. `Ok(true)` when something is left pending.
    pub fn write_locked(&self, out: &mut Out, parts: [&[u8]; 2]) -> io::Result<bool> {
        self.flush_locked(out)?;
        if !out.pending.is_empty() {
            keep_rest(&mut out.pending, parts, 0);
            return Ok(true);
        }
        let n = match self.writev(parts) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            other => other?,
        };
        Ok(keep_rest(&mut out.pending, parts, n))
    }

    /// One `writev` of both parts.
    fn writev(&self, parts: [&[u8]; 2]) -> io::Result<usize> {
        self.stream
            .try_write_vectored(&[IoSlice::new(parts[0]), IoSlice::new(parts[1])])
    }

    /// Write what is pending as far as the socket takes it.
    pub fn flush_locked(&self, out: &mut Out) -> io::Result<()> {
        while !out.pending.is_empty() {
            match self.stream.try_write(&out.pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    out.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Write a reply frame (a whole frame's bytes). Replies beyond [`MAX_PENDING`] for a
    /// client that does not read are dropped, and so is anything once the connection is
    /// closing. `Ok(true)` when something is left pending.
    pub fn send(&self, parts: [&[u8]; 2]) -> io::Result<bool> {
        if self.is_closed() {
            return Ok(self.has_pending());
        }
        self.send_anyway(parts)
    }

    /// Write a close frame: [`Peer::retire`] first, then this, and nothing after it.
    pub fn send_close(&self, payload: &[u8]) -> io::Result<bool> {
        self.retire();
        self.send_anyway([Header::close(payload.len()).as_bytes(), payload])
    }

    fn send_anyway(&self, parts: [&[u8]; 2]) -> io::Result<bool> {
        let mut out = self.out();
        if out.pending.len() > MAX_PENDING {
            self.flush_locked(&mut out)?;
            if out.pending.len() > MAX_PENDING {
                return Ok(true);
            }
        }
        self.write_locked(&mut out, parts)
    }

    /// Write a text frame.
    pub fn send_text(&self, text: &str) -> io::Result<bool> {
        let h = Header::text(text.len());
        self.send([h.as_bytes(), text.as_bytes()])
    }

    /// Write what is pending; `Ok(true)` when something is still left.
    pub fn flush(&self) -> io::Result<bool> {
        let mut out = self.out();
        self.flush_locked(&mut out)?;
        Ok(!out.pending.is_empty())
    }

    /// Write one audience state frame unless the client is behind, with an ack in front of
    /// it for each tick it reflects that applied an input of this client not yet
    /// acknowledged, dated by `times`. `scratch` holds the ack frames.
    pub fn deliver(
        &self,
        frame: &[u8],
        tick: u64,
        times: &TickTimes,
        scratch: &mut Vec<u8>,
    ) -> Delivery {
        let mut out = self.out();
        if self.is_closed() {
            return Delivery::Skipped;
        }
        if !out.pending.is_empty() {
            if self.flush_locked(&mut out).is_err() {
                return Delivery::Failed;
            }
            if !out.pending.is_empty() {
                return Delivery::Skipped;
            }
        }
        scratch.clear();
        let acks = out.acks_due(tick);
        for &(seq, t) in acks {
            ack_frame(scratch, seq, t, times.at_most(t));
        }
        let n_acks = acks.len();
        let n = match self.writev([scratch, frame]) {
            Ok(n) => n,
            // Nothing written: the acks wait for the next state.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Delivery::Skipped,
            Err(_) => return Delivery::Failed,
        };
        out.acks_sent(n_acks);
        if keep_rest(&mut out.pending, [scratch, frame], n) {
            drop(out);
            self.wake.notify_one();
        }
        Delivery::Written
    }
}

/// Keep what the socket did not take of `parts` (it took `n` bytes) in `pending`; whether
/// anything was left.
fn keep_rest(pending: &mut Vec<u8>, parts: [&[u8]; 2], mut n: usize) -> bool {
    let mut left = false;
    for p in parts {
        if n >= p.len() {
            n -= p.len();
        } else {
            pending.extend_from_slice(&p[n..]);
            n = 0;
            left = true;
        }
    }
    left
}

/// The ack frame `{"type":"ack","seq":…,"tick":…,"at":…}`, header included, into `buf`.
pub fn ack_frame(buf: &mut Vec<u8>, seq: u64, tick: u64, at: u64) {
    let mut json = [0u8; 112];
    let mut cur = io::Cursor::new(&mut json[..]);
    // 112 bytes hold the longest ack (three 20-digit numbers and 36 bytes of the rest).
    let _ = write!(
        cur,
        "{{\"type\":\"ack\",\"seq\":{seq},\"tick\":{tick},\"at\":{at}}}"
    );
    let len = cur.position() as usize;
    buf.extend_from_slice(Header::text(len).as_bytes());
    buf.extend_from_slice(&json[..len]);
}

/// The socket as `std::io` for the WebSocket protocol state machine: reads never block
/// (`WouldBlock` when nothing is there), and its own writes (pongs, the close reply) join
/// the peer's outgoing bytes in order.
///
/// (Skipping the `recv` that follows a short read is not safe here: clearing the
/// runtime's readiness without the event captured before the read can lose a wake-up for
/// data that arrived in between; a test that restarts the server caught it.)
pub struct SockIo<'a> {
    peer: &'a Peer,
}

impl<'a> SockIo<'a> {
    /// Reads and writes on `peer`'s socket.
    pub fn new(peer: &'a Peer) -> SockIo<'a> {
        SockIo { peer }
    }
}

impl Read for SockIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.peer.stream.try_read(buf)
    }
}

impl Write for SockIo<'_> {
    /// What tungstenite writes itself (pongs, the close reply) is bounded like every other
    /// reply: past [`MAX_PENDING`] for a client that does not read, it is dropped. Every
    /// write is taken whole, so tungstenite always hands over whole frames and a dropped
    /// write drops whole frames, never part of one.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.peer.send_anyway([buf, &[]])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // What the socket does not take now waits in `pending`; the connection task
        // writes it when the socket is writable again.
        let mut out = self.peer.out();
        self.peer.flush_locked(&mut out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        assert_eq!(Header::text(0).as_bytes(), &[0x81, 0]);
        assert_eq!(Header::text(125).as_bytes(), &[0x81, 125]);
        assert_eq!(Header::text(126).as_bytes(), &[0x81, 126, 0, 126]);
        assert_eq!(Header::text(65_535).as_bytes(), &[0x81, 126, 0xff, 0xff]);
        assert_eq!(
            Header::text(65_536).as_bytes(),
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(Header::close(2).as_bytes(), &[0x88, 2]);
        assert_eq!(Header::binary(3).as_bytes(), &[0x82, 3]);
    }

    /// A client that never reads cannot grow what the server keeps for it through the
    /// frames tungstenite writes (pongs): past the cap, whole writes are dropped.
    #[tokio::test]
    async fn control_replies_for_a_client_that_does_not_read_are_capped() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client.connect(&addr.into()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let peer = Peer::new(server);
        let pong = [0x8a, 125]
            .iter()
            .copied()
            .chain([7u8; 125])
            .collect::<Vec<u8>>();
        let mut io = SockIo::new(&peer);
        for _ in 0..100_000 {
            assert_eq!(io.write(&pong).unwrap(), pong.len());
        }
        let kept = peer.out().pending.len();
        assert!(kept <= MAX_PENDING + pong.len(), "{kept} bytes kept");
        drop(client);
    }

    #[test]
    fn what_the_socket_did_not_take_is_kept_in_order() {
        let mut pending = Vec::new();
        assert!(!keep_rest(&mut pending, [b"ab", b"cde"], 5));
        assert!(pending.is_empty());
        assert!(keep_rest(&mut pending, [b"ab", b"cde"], 1));
        assert_eq!(pending, b"bcde");
        pending.clear();
        assert!(keep_rest(&mut pending, [b"ab", b"cde"], 3));
        assert_eq!(pending, b"de");
        assert!(keep_rest(&mut pending, [b"", b"xy"], 0));
        assert_eq!(pending, b"dexy");
    }

    #[test]
    fn a_state_acknowledges_the_newest_input_of_each_tick_it_reflects() {
        let mut out = Out::default();
        // Input 1 in tick 6; input 2 arrives while tick 8 is fanned out: promised tick 9.
        out.set_ack(1, 6);
        out.set_ack(2, 9);
        assert_eq!(out.acks_due(8), [(1, 6)], "tick 8 reflects input 1 only");
        out.acks_sent(1);
        assert_eq!(out.acks_due(8), []);
        assert_eq!(out.acks_due(9), [(2, 9)]);
        out.acks_sent(1);
        // Inputs of the same tick: the newest one stands for both.
        out.set_ack(3, 10);
        out.set_ack(4, 10);
        assert_eq!(out.acks_due(10), [(4, 10)]);
        out.acks_sent(1);
        // A state that reflects two ticks carries one ack for each, oldest first, so each
        // input is dated by its own tick.
        out.set_ack(5, 11);
        out.set_ack(6, 12);
        out.set_ack(7, 13);
        assert_eq!(out.acks_due(12), [(5, 11), (6, 12)]);
        // Not written (the socket was full): they wait for the next state.
        assert_eq!(out.acks_due(13), [(5, 11), (6, 12), (7, 13)]);
        out.acks_sent(3);
        assert_eq!(out.acks_due(99), []);
        // Past MAX_ACKS ticks the oldest is left to the next one's ack.
        for i in 0..MAX_ACKS as u64 + 2 {
            out.set_ack(100 + i, 20 + i);
        }
        let due = out.acks_due(u64::MAX);
        assert_eq!(due.len(), MAX_ACKS);
        assert_eq!(due[0], (102, 22));
        assert_eq!(*due.last().unwrap(), (109, 29));
    }

    #[test]
    fn the_ack_frame_is_what_the_protocol_serialises() {
        for (seq, tick, at) in [
            (0, 0, 0),
            (1, 2, 1_763_900_000_123),
            (u64::MAX, u64::MAX, u64::MAX),
        ] {
            let mut buf = Vec::new();
            ack_frame(&mut buf, seq, tick, at);
            let json = tutti_protocol::ServerFrame::Ack { seq, tick, at }.to_json();
            assert_eq!(&buf[2..], json.as_bytes());
            assert_eq!(buf[..2], *Header::text(json.len()).as_bytes());
        }
    }
}
