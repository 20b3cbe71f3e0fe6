//! One client's socket, shared by its connection task (which reads frames and writes
//! replies) and the audience fan-out (which writes state frames straight from the
//! publishing side, with no task woken per client).
//!
//! Every byte for the client goes through [`Peer::write`] under one short lock, so frames
//! from the two writers never interleave: a frame the socket takes only in part leaves the
//! rest in `pending`, which goes out before anything else. A state frame is written only
//! when nothing is pending; otherwise it waits in the peer's one state slot (latest wins: a
//! newer state replaces it, nothing more is kept) and is written as soon as the pending bytes
//! are out, before any reply, chat or cue frame written after it. So a busy socket — a chat
//! room's frames, replies — delays a phone's state by at most what was pending, and never
//! starves it.
//!
//! Must never: block (every write is `try_write`), hold the lock across `.await`, or queue
//! more than [`MAX_PENDING`] bytes of replies for a client that does not read.

use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use tutti_show::TickTimes;

/// Reply bytes a client that does not read may have waiting; replies beyond are dropped.
/// (State frames are never queued: one waits, latest wins, while anything is pending.)
pub const MAX_PENDING: usize = 256 * 1024;
/// Largest emptied pending buffer a connection keeps (a frame or two); a larger one, left by a
/// backlog, is freed once written, so the many phones that were once behind hold nothing.
const PENDING_KEPT: usize = 4 * 1024;

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
    /// The newest state that found bytes pending: written (with its acks) as soon as they are
    /// out, unless a newer state replaces it first.
    waiting: Option<Waiting>,
}

/// A state frame waiting for the pending bytes to go out.
struct Waiting {
    frame: Bytes,
    tick: u64,
    times: Arc<TickTimes>,
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
    /// The client is not reading fast enough: nothing written now. The state waits in the
    /// peer's slot and goes out when the socket drains, unless a newer state comes first.
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
        let mut out = self.out();
        out.waiting = None;
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

    /// Whether bytes (or a state frame) are waiting for the socket.
    pub fn has_pending(&self) -> bool {
        let out = self.out();
        !out.pending.is_empty() || out.waiting.is_some()
    }

    /// Write `parts` in order, after anything pending, as far as the socket takes them;
    /// keep the rest pending. `Ok(true)` when something is left pending.
    pub fn write_locked(&self, out: &mut Out, parts: [&[u8]; 2]) -> io::Result<bool> {
        self.flush_locked(out)?;
        if let Some(w) = out.waiting.take() {
            // The socket is full and a state waits: it keeps its place ahead of these bytes.
            let mut acks = Vec::new();
            self.write_state(out, &w.frame, w.tick, &w.times, &mut acks, true);
        }
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

    /// One `writev` of both parts when nothing is pending (none when something is: they
    /// must wait for it, as if the socket took none of them).
    fn writev_after(&self, out: &Out, parts: [&[u8]; 2]) -> io::Result<usize> {
        if out.pending.is_empty() {
            self.writev(parts)
        } else {
            Ok(0)
        }
    }

    /// One `writev` of both parts.
    fn writev(&self, parts: [&[u8]; 2]) -> io::Result<usize> {
        self.stream
            .try_write_vectored(&[IoSlice::new(parts[0]), IoSlice::new(parts[1])])
    }

    /// Write what is pending as far as the socket takes it, then the state waiting for it.
    pub fn flush_locked(&self, out: &mut Out) -> io::Result<()> {
        while !out.pending.is_empty() {
            match self.stream.try_write(&out.pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    out.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if out.pending.capacity() > PENDING_KEPT {
            // The client caught up: it does not keep the buffer of its backlog.
            out.pending = Vec::new();
        }
        if let Some(w) = out.waiting.take() {
            if !self.is_closed() {
                let mut acks = Vec::new();
                if let Some(Delivery::Skipped) =
                    self.write_state(out, &w.frame, w.tick, &w.times, &mut acks, false)
                {
                    out.waiting = Some(w);
                }
            }
        }
        Ok(())
    }

    /// One `writev` of the acks due with the state of `tick` and the state frame, with
    /// nothing pending; `None` when written (the rest, if any, now pending; with `commit`,
    /// all of it when the socket took nothing), `Some(Skipped)` when the socket took nothing,
    /// `Some(Failed)` when it failed.
    fn write_state(
        &self,
        out: &mut Out,
        frame: &[u8],
        tick: u64,
        times: &TickTimes,
        scratch: &mut Vec<u8>,
        commit: bool,
    ) -> Option<Delivery> {
        scratch.clear();
        let acks = out.acks_due(tick);
        for &(seq, t) in acks {
            ack_frame(scratch, seq, t, times.at_most(t));
        }
        let n_acks = acks.len();
        let n = match self.writev_after(out, [scratch, frame]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && commit => 0,
            // Nothing written: the acks wait for the next state.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(Delivery::Skipped),
            Err(_) => return Some(Delivery::Failed),
        };
        out.acks_sent(n_acks);
        keep_rest(&mut out.pending, [scratch, frame], n);
        None
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

    /// Writes `parts` only if nothing is pending or waiting for the socket and the
    /// connection is open (a writer other than the connection task: it never queues behind
    /// others' bytes, and never past [`MAX_PENDING`]). `None`: nothing written; `Some(true)`:
    /// written, part of it left pending, and the connection task woken to write the rest.
    pub fn send_if_idle(&self, parts: [&[u8]; 2]) -> Option<bool> {
        let mut out = self.out();
        if self.is_closed() || !out.pending.is_empty() || out.waiting.is_some() {
            return None;
        }
        let left = match self.writev(parts) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                keep_rest(&mut out.pending, parts, 0)
            }
            // A failed socket shows up as a failed read on the connection's next turn.
            Err(_) => false,
            Ok(n) => keep_rest(&mut out.pending, parts, n),
        };
        drop(out);
        if left {
            self.wake.notify_one();
        }
        Some(left)
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
        Ok(!out.pending.is_empty() || out.waiting.is_some())
    }

    /// Write one audience state frame, with an ack in front of it for each tick it reflects
    /// that applied an input of this client not yet acknowledged, dated by `times`.
    /// `scratch` holds the ack frames. While bytes are pending (the client is behind) it is
    /// not written but waits in the peer's state slot, replacing any older one, and the
    /// connection task is woken to write it when the socket drains.
    pub fn deliver(
        &self,
        frame: &Bytes,
        tick: u64,
        times: &Arc<TickTimes>,
        scratch: &mut Vec<u8>,
    ) -> Delivery {
        let mut out = self.out();
        if self.is_closed() {
            return Delivery::Skipped;
        }
        // A newer state replaces the one waiting.
        out.waiting = None;
        if !out.pending.is_empty() {
            if self.flush_locked(&mut out).is_err() {
                return Delivery::Failed;
            }
            if !out.pending.is_empty() {
                return self.wait(out, frame, tick, times);
            }
        }
        match self.write_state(&mut out, frame, tick, times, scratch, false) {
            Some(Delivery::Skipped) => self.wait(out, frame, tick, times),
            Some(d) => d,
            None => {
                if !out.pending.is_empty() {
                    drop(out);
                    self.wake.notify_one();
                }
                Delivery::Written
            }
        }
    }

    /// Keep a state that could not be written in the slot, and wake the connection task to
    /// write it when the socket has room.
    fn wait(
        &self,
        mut out: MutexGuard<'_, Out>,
        frame: &Bytes,
        tick: u64,
        times: &Arc<TickTimes>,
    ) -> Delivery {
        out.waiting = Some(Waiting {
            frame: frame.clone(),
            tick,
            times: times.clone(),
        });
        drop(out);
        self.wake.notify_one();
        Delivery::Skipped
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

    /// The payloads of the server-to-client frames in `bytes` (unmasked, lengths < 64 KiB).
    fn payloads(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (len, head) = match bytes[1] {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                n => (usize::from(n), 2),
            };
            out.push(bytes[head..head + len].to_vec());
            bytes = &bytes[head + len..];
        }
        out
    }

    /// A peer on a real socket with small buffers, written full of 1,000-byte reply frames
    /// until bytes are left pending: (peer, the client's socket, the reply frame, replies
    /// written).
    async fn full_peer() -> (Peer, socket2::Socket, Vec<u8>, usize) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client.connect(&addr.into()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(4096)
            .unwrap();
        let peer = Peer::new(server);
        let reply = text_frame(&[b'r'; 1000]);
        let mut replies = 1;
        while !peer.send([&reply, &[]]).unwrap() {
            replies += 1;
        }
        (peer, client, reply, replies)
    }

    /// A state that finds the socket full of other frames (a busy chat room's) is not lost
    /// to them: it waits, the newest replacing an older one, and goes out as soon as the
    /// pending bytes have, ahead of the frames written after it.
    #[tokio::test]
    async fn a_state_that_finds_bytes_pending_waits_and_goes_out_before_later_frames() {
        let (peer, client, reply, replies) = full_peer().await;
        let times = Arc::new(TickTimes::new(0));
        let older = Bytes::from(text_frame(b"{\"state\":1}"));
        let newer = Bytes::from(text_frame(b"{\"state\":2}"));
        let mut scratch = Vec::new();
        assert_eq!(
            peer.deliver(&older, 1, &times, &mut scratch),
            Delivery::Skipped
        );
        assert_eq!(
            peer.deliver(&newer, 2, &times, &mut scratch),
            Delivery::Skipped
        );
        assert!(peer.has_pending());
        peer.send_text("after").unwrap();
        // The client reads everything; the server writes as the socket drains, then closes.
        let reader = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut std::net::TcpStream::from(client), &mut all).unwrap();
            all
        });
        while peer.flush().unwrap() {
            peer.stream().writable().await.unwrap();
        }
        peer.close();
        let got = payloads(&reader.await.unwrap());
        let mut want = vec![reply[4..].to_vec(); replies];
        want.push(b"{\"state\":2}".to_vec());
        want.push(b"after".to_vec());
        assert_eq!(got.len(), want.len());
        assert!(got == want, "frames out of order or lost");
    }

    /// A closing connection drops the state waiting for it: nothing follows a close frame.
    #[tokio::test]
    async fn a_waiting_state_never_follows_a_close_frame() {
        let (peer, client, reply, replies) = full_peer().await;
        let times = Arc::new(TickTimes::new(0));
        let state = Bytes::from(text_frame(b"{\"state\":1}"));
        let mut scratch = Vec::new();
        assert_eq!(
            peer.deliver(&state, 1, &times, &mut scratch),
            Delivery::Skipped
        );
        peer.send_close(&[]).unwrap();
        let reader = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut std::net::TcpStream::from(client), &mut all).unwrap();
            all
        });
        while peer.flush().unwrap() {
            peer.stream().writable().await.unwrap();
        }
        let _ = socket2::SockRef::from(peer.stream()).shutdown(std::net::Shutdown::Both);
        let all = reader.await.unwrap();
        let got = payloads(&all);
        assert_eq!(got.len(), replies + 1);
        assert!(got[..replies].iter().all(|p| *p == reply[4..]));
        assert_eq!(&all[all.len() - 2..], Header::close(0).as_bytes());
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
