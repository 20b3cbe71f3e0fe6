//! Webhook signatures: `tutti-signature: t=<unix seconds>,v1=<hex hmac_sha256(secret, "<t>.<body>")>`.
//!
//! [`sign`] makes the header value; [`verify`] is what a receiver runs (it accepts several `v1=`
//! entries, compares in constant time, and refuses timestamps outside a tolerance, which stops
//! replays). This module must never log or return the secret or a computed signature in an error.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "tutti-signature";
/// The header carrying the event kind.
pub const EVENT_HEADER: &str = "tutti-event";
/// The header carrying the delivery id (the same on every retry of one delivery: dedupe on it).
pub const DELIVERY_HEADER: &str = "tutti-delivery";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<seconds>,v1=<hex>[,v1=<hex>…]`.
    #[error("malformed tutti-signature header: {0}")]
    Malformed(&'static str),
    /// The timestamp is too far from now.
    #[error("signature timestamp {t} is {skew_s} s away from now (tolerance {tolerance_s} s)")]
    Expired {
        /// The header's timestamp.
        t: i64,
        /// Distance from now, in seconds.
        skew_s: u64,
        /// The allowed distance.
        tolerance_s: u64,
    },
    /// No `v1` entry matches the body and secret.
    #[error("no v1 signature matches the body")]
    Mismatch,
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// The `tutti-signature` header value for `body` sent at unix second `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let tag = mac(secret.as_bytes(), t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex(&tag))
}

/// Checks a `tutti-signature` header against the raw request body, the webhook's secret and the
/// receiver's clock (`now_unix_s`); the timestamp must be within `tolerance` of it.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix_s: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("an entry without '='"))?;
        match key {
            "t" => {
                let parsed = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is not an integer"))?;
                if t.replace(parsed).is_some() {
                    return Err(SignatureError::Malformed("more than one t"));
                }
            }
            "v1" => tags.push(unhex(value).ok_or(SignatureError::Malformed("v1 is not hex"))?),
            _ => {} // other schemes: ignored, so new ones can be added
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no t"))?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed("no v1"));
    }
    let skew_s = now_unix_s.abs_diff(t);
    if skew_s > tolerance.as_secs() {
        return Err(SignatureError::Expired {
            t,
            skew_s,
            tolerance_s: tolerance.as_secs(),
        });
    }
    let expected = mac(secret.as_bytes(), t, body);
    if tags
        .iter()
        .any(|tag| expected.clone().verify_slice(tag).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Duration = Duration::from_secs(300);

    #[test]
    fn known_vector() {
        // Python: hmac.new(b'whsec_test', b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        let h = sign("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            h,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_eq!(
            verify("whsec_test", &h, br#"{"a":1}"#, 1_700_000_000, TOL),
            Ok(())
        );
    }

    #[test]
    fn tampering_and_wrong_secrets_and_old_timestamps_fail() {
        let body = b"{\"id\":1}";
        let h = sign("s1", 1000, body);
        assert_eq!(
            verify("s2", &h, body, 1000, TOL),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s1", &h, b"{\"id\":2}", 1000, TOL),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify("s1", &h, body, 1000 + 301, TOL),
            Err(SignatureError::Expired { skew_s: 301, .. })
        ));
        let rotated = format!("{},v1={}", h, "00".repeat(32));
        assert_eq!(verify("s1", &rotated, body, 1000, TOL), Ok(()));
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
        ] {
            assert!(
                matches!(
                    verify("s1", bad, body, 1, TOL),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
