//! The hub's WebSocket reading: bytes from a client through tungstenite's
//! `WebSocketContext` in the server role with the hub's own limits (`tutti_live::ws_config`),
//! arriving in chunks of varying size as from a socket, every text message then through
//! `ClientFrame::parse`. Nothing panics, and no message is over the 64 KiB limit.
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::{Message, Role, WebSocketContext};
use tutti_protocol::ClientFrame;

/// A non-blocking socket: reads hand out `data` in chunks whose sizes come from `sizes`,
/// with a `WouldBlock` between chunks; writes are kept.
struct Sock<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
    blocked: bool,
    written: usize,
}

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Ok(0);
        }
        if self.blocked {
            self.blocked = false;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let size = self
            .sizes
            .get(self.turn % self.sizes.len().max(1))
            .map_or(self.data.len(), |&s| usize::from(s) * 7 + 1);
        self.turn += 1;
        self.blocked = true;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many chunk sizes follow; then the sizes; then the stream. The bytes
    // the HTTP layer read past the handshake (`leftover`) are a prefix of the stream.
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, rest) = rest.split_at(n);
    let Some((&lead, data)) = rest.split_first() else {
        return;
    };
    let lead = usize::from(lead).min(data.len());
    let mut ws = WebSocketContext::from_partially_read(
        data[..lead].to_vec(),
        Role::Server,
        Some(tutti_live::ws_config()),
    );
    let mut sock = Sock {
        data: &data[lead..],
        sizes,
        turn: 0,
        blocked: false,
        written: 0,
    };
    // Each read consumes input or ends; the bound only guards against a livelock bug.
    for _ in 0..100_000 {
        match ws.read(&mut sock) {
            Ok(msg) => {
                assert!(msg.len() <= 64 * 1024, "a message of {} bytes", msg.len());
                if let Message::Text(text) = msg {
                    let _ = ClientFrame::parse(text.as_str());
                }
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    panic!("100000 reads without an end");
});
