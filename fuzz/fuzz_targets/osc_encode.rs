//! The per-tick OSC bundle writer (`tutti_osc::encode_bundle`): for any addresses, values
//! and time it either refuses (leaving the buffer empty) or writes exactly what rosc
//! writes for the same bundle, which decodes back to the same messages.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

fuzz_target!(|input: &[u8]| {
    if input.len() < 8 {
        return;
    }
    let (head, rest) = input.split_at(8);
    let secs = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
    let nanos = u32::from_le_bytes(head[4..].try_into().expect("4 bytes")) % 1_000_000_000;
    let time = UNIX_EPOCH + Duration::new(secs * 3, nanos);
    // Messages: `address\0` then 4 bytes of f32, repeated.
    let mut msgs: Vec<(String, f32)> = Vec::new();
    let mut rest = rest;
    while let Some(end) = rest.iter().position(|&b| b == 0) {
        let addr = String::from_utf8_lossy(&rest[..end]).into_owned();
        let Some(v) = rest.get(end + 1..end + 5) else {
            break;
        };
        msgs.push((addr, f32::from_le_bytes(v.try_into().expect("4 bytes"))));
        rest = &rest[end + 5..];
    }
    let mut buf = vec![1, 2, 3];
    let result =
        tutti_osc::encode_bundle(time, msgs.iter().map(|(a, v)| (a.as_str(), *v)), &mut buf);
    if result.is_err() {
        assert!(buf.is_empty(), "a refused bundle left {} bytes", buf.len());
        return;
    }
    let bundle = OscPacket::Bundle(OscBundle {
        timetag: OscTime::try_from(time).expect("a time encode_bundle accepted"),
        content: msgs
            .iter()
            .map(|(a, v)| {
                OscPacket::Message(OscMessage {
                    addr: a.clone(),
                    args: vec![OscType::Float(*v)],
                })
            })
            .collect(),
    });
    let reference = rosc::encoder::encode(&bundle).expect("rosc encodes it");
    assert_eq!(buf, reference, "differs from rosc for {msgs:?}");
    let (left, decoded) = rosc::decoder::decode_udp(&buf).expect("it decodes");
    assert!(left.is_empty());
    assert_eq!(decoded, bundle);
});
