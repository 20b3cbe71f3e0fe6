//! The hub's own frame writing (`tutti_live::{text_frame, Header, ack_frame}`): every frame
//! it writes reads back through tungstenite's reader (client role, as a browser reads)
//! as exactly the message that was meant, whatever the length (all three length
//! encodings) and whatever the numbers of an ack.
#![no_main]

use std::io::{self, Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};
use tutti_protocol::ServerFrame;

/// Reads `bytes`, discards writes.
struct Stream(Cursor<Vec<u8>>);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The messages a client reads from `bytes`, until the stream ends.
fn read_all(bytes: Vec<u8>) -> Vec<Message> {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(1 << 20);
    config.max_frame_size = Some(1 << 20);
    let mut ws = WebSocketContext::new(Role::Client, Some(config));
    let mut s = Stream(Cursor::new(bytes));
    let mut out = Vec::new();
    loop {
        match ws.read(&mut s) {
            Ok(m) => out.push(m),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return out
            }
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => return out,
            Err(e) => panic!("the hub's frames do not read back: {e} (after {out:?})"),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 26 {
        return;
    }
    let (nums, rest) = input.split_at(26);
    let u64_at = |i: usize| u64::from_le_bytes(nums[i..i + 8].try_into().expect("8 bytes"));
    let (seq, tick, at) = (u64_at(0), u64_at(8), u64_at(16));
    // A text payload of a length that reaches past 65535 now and then (the 8-byte length
    // encoding), made of the input's text repeated.
    let text = String::from_utf8_lossy(rest).into_owned();
    let want = usize::from(u16::from_le_bytes([nums[24], nums[25]]));
    let want = if want % 5 == 0 { want * 2 } else { want };
    let mut payload = String::new();
    while payload.len() < want && !text.is_empty() {
        payload.push_str(&text);
    }
    if payload.is_empty() {
        payload.push_str(&text);
    }

    let mut stream = tutti_live::text_frame(payload.as_bytes());
    tutti_live::ack_frame(&mut stream, seq, tick, at);
    // A close frame as the hub writes it (one of the codes it sends, a reason cut to fit a
    // control frame).
    let code: u16 = [1000, 1002, 1007, 1008, 1009, 1011][(seq % 6) as usize];
    let mut close = code.to_be_bytes().to_vec();
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    close.extend_from_slice(&text.as_bytes()[..end]);
    stream.extend_from_slice(tutti_live::Header::close(close.len()).as_bytes());
    stream.extend_from_slice(&close);

    let msgs = read_all(stream);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert_eq!(msgs[0], Message::Text(payload.into()));
    let Message::Text(ack) = &msgs[1] else {
        panic!("the ack is {:?}", msgs[1]);
    };
    let ack: ServerFrame = serde_json::from_str(ack.as_str()).expect("the ack is JSON");
    assert_eq!(ack, ServerFrame::Ack { seq, tick, at });
    let Message::Close(Some(frame)) = &msgs[2] else {
        panic!("the close is {:?}", msgs[2]);
    };
    assert_eq!(frame.code, CloseCode::from(code));
    assert_eq!(frame.reason.as_str(), &text[..end]);
});
