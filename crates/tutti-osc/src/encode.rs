//! Per-tick encoding of the state as one OSC bundle of `<address> f` messages.
//!
//! The bundle is written byte by byte into a caller-owned `Vec<u8>` that is cleared and reused, so
//! in steady state a tick allocates nothing here. We deliberately do not build a `rosc::OscPacket`
//! for this: rosc's encoder needs an owned `String` per address, a `Vec` of arguments per message
//! and a `Vec` of packets per bundle, i.e. several allocations per parameter per tick. The layout
//! written here is plain OSC 1.0 and is checked byte-for-byte against rosc's encoder in the tests.
//! This module must never do I/O or read a clock (the timetag is passed in).

use std::time::SystemTime;

use rosc::OscTime;

use crate::address::validate_address;
use crate::error::{clip, OscError};

/// Largest payload of one UDP datagram over IPv4; bigger bundles cannot be sent.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Encodes one OSC bundle with NTP timetag `timetag` and one message `<address> ,f <value>` per
/// entry of `msgs`, in order, into `buf`.
///
/// `buf` is cleared first and reused: once it has grown to the bundle's size no further
/// allocation happens (rosc is only used for the `SystemTime` → NTP conversion, which does not
/// allocate). Every address is checked with [`validate_address`] and every value must be finite.
/// On error `buf` is left empty, so a half-written bundle can never be sent.
///
/// OSC receivers schedule a bundle at its timetag; pass a time slightly in the future (e.g. one
/// tick ahead) for jitter-free audio, or the current time for "as soon as possible".
pub fn encode_bundle<'a>(
    timetag: SystemTime,
    msgs: impl IntoIterator<Item = (&'a str, f32)>,
    buf: &mut Vec<u8>,
) -> Result<(), OscError> {
    buf.clear();
    let result = write_bundle(timetag, msgs, buf);
    if result.is_err() {
        buf.clear();
    }
    result
}

fn write_bundle<'a>(
    timetag: SystemTime,
    msgs: impl IntoIterator<Item = (&'a str, f32)>,
    buf: &mut Vec<u8>,
) -> Result<(), OscError> {
    let time = OscTime::try_from(timetag).map_err(|e| OscError::InvalidTimetag {
        reason: e.to_string(),
    })?;
    buf.extend_from_slice(b"#bundle\0");
    buf.extend_from_slice(&time.seconds.to_be_bytes());
    buf.extend_from_slice(&time.fractional.to_be_bytes());
    for (address, value) in msgs {
        validate_address(address)?;
        if !value.is_finite() {
            return Err(OscError::NonFiniteValue {
                address: clip(address),
                value,
            });
        }
        // Address string: NUL-terminated, padded with NULs to a multiple of 4.
        let padded = (address.len() + 4) & !3;
        // Element = padded address + ",f\0\0" + 4-byte float.
        let size = padded + 8;
        // `validate_address` bounds the address to 255 bytes, so `size` fits in u32.
        buf.extend_from_slice(&(size as u32).to_be_bytes());
        buf.extend_from_slice(address.as_bytes());
        buf.extend_from_slice(&[0u8; 4][..padded - address.len()]);
        buf.extend_from_slice(b",f\0\0");
        buf.extend_from_slice(&value.to_be_bytes());
        if buf.len() > MAX_UDP_PAYLOAD {
            return Err(OscError::PacketTooLarge {
                len: buf.len(),
                max: MAX_UDP_PAYLOAD,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn bytes_match_rosc_encoder() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let msgs = [("/tutti/a", 0.5f32), ("/tutti/abc", -1.25), ("/x/yz1", 3.0)];
        let mut buf = Vec::new();
        encode_bundle(t, msgs, &mut buf).expect("encode");
        let expected = rosc::encoder::encode(&rosc::OscPacket::Bundle(rosc::OscBundle {
            timetag: OscTime::try_from(t).expect("time"),
            content: msgs
                .iter()
                .map(|(a, v)| {
                    rosc::OscPacket::Message(rosc::OscMessage {
                        addr: (*a).to_owned(),
                        args: vec![rosc::OscType::Float(*v)],
                    })
                })
                .collect(),
        }))
        .expect("rosc encode");
        assert_eq!(buf, expected);
    }

    #[test]
    fn buffer_is_reused_without_growing() {
        let mut buf = Vec::new();
        let msgs = [("/tutti/a", 0.5f32), ("/tutti/b", 0.25)];
        encode_bundle(SystemTime::now(), msgs, &mut buf).expect("first");
        let cap = buf.capacity();
        let ptr = buf.as_ptr();
        for _ in 0..100 {
            encode_bundle(SystemTime::now(), msgs, &mut buf).expect("again");
        }
        assert_eq!(buf.capacity(), cap);
        assert_eq!(buf.as_ptr(), ptr);
    }

    #[test]
    fn errors_leave_the_buffer_empty() {
        let mut buf = vec![1, 2, 3];
        let err = encode_bundle(
            SystemTime::now(),
            [("/ok", 1.0f32), ("/nan", f32::NAN)],
            &mut buf,
        )
        .expect_err("NaN");
        assert!(matches!(err, OscError::NonFiniteValue { ref address, .. } if address == "/nan"));
        assert!(buf.is_empty());

        let err = encode_bundle(SystemTime::now(), [("/bad addr", 1.0f32)], &mut buf)
            .expect_err("address");
        assert!(matches!(err, OscError::InvalidAddress { .. }));
        assert!(buf.is_empty());

        let err = encode_bundle(
            UNIX_EPOCH - Duration::from_secs(1),
            [("/ok", 1.0f32)],
            &mut buf,
        )
        .expect_err("before epoch");
        assert!(matches!(err, OscError::InvalidTimetag { .. }));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_bundle_is_rejected() {
        let addr = format!("/{}", "a".repeat(250));
        let msgs = std::iter::repeat_n((addr.as_str(), 1.0f32), 300);
        let mut buf = Vec::new();
        let err = encode_bundle(SystemTime::now(), msgs, &mut buf).expect_err("too big");
        assert!(matches!(
            err,
            OscError::PacketTooLarge {
                max: MAX_UDP_PAYLOAD,
                ..
            }
        ));
    }
}
