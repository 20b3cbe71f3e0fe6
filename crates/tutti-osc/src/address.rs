//! Validation of OSC addresses (outgoing) and parameter names (the `<param>` segment of incoming
//! command addresses).
//!
//! Pure string checks: this module must never allocate on success (it runs per message per tick)
//! and never know which parameters a piece actually has; that is the engine's business.

use crate::error::{clip, OscError};

/// Longest outgoing OSC address accepted, in bytes.
pub const MAX_ADDRESS_LEN: usize = 255;

/// Longest parameter name accepted in a command address, in bytes.
pub const MAX_PARAM_LEN: usize = 64;

/// Checks that `addr` is a plain (non-pattern) OSC address that every receiver treats literally.
///
/// Rules: starts with `/`; 2 to [`MAX_ADDRESS_LEN`] bytes; printable ASCII only; none of the OSC
/// pattern or syntax characters `# * , ? [ ] { }` and no space; no empty segment (`//` or a
/// trailing `/`).
pub fn validate_address(addr: &str) -> Result<(), OscError> {
    let bad = |reason| {
        Err(OscError::InvalidAddress {
            address: clip(addr),
            reason,
        })
    };
    if !addr.starts_with('/') {
        return bad("must start with '/'");
    }
    if addr.len() < 2 {
        return bad("must have at least one character after '/'");
    }
    if addr.len() > MAX_ADDRESS_LEN {
        return bad("longer than 255 bytes");
    }
    let mut prev_slash = false;
    for b in addr.bytes() {
        match b {
            b' ' => return bad("contains a space"),
            b'#' | b'*' | b',' | b'?' | b'[' | b']' | b'{' | b'}' => {
                return bad("contains one of the reserved characters # * , ? [ ] { }")
            }
            b'/' if prev_slash => return bad("contains an empty segment ('//')"),
            0x21..=0x7e => {}
            _ => return bad("contains a control or non-ASCII character"),
        }
        prev_slash = b == b'/';
    }
    if prev_slash {
        return bad("ends with '/'");
    }
    Ok(())
}

/// Checks a parameter name taken from a command address such as `/tutti/bias/<param>`.
///
/// Rules: 1 to [`MAX_PARAM_LEN`] bytes of `A-Z a-z 0-9 _ -` (one address segment, so no `/`).
/// This is a superset of the piece format's parameter names; whether the parameter exists is
/// decided by the engine, not here.
pub fn validate_param(name: &str) -> Result<(), OscError> {
    let bad = |reason| {
        Err(OscError::InvalidParam {
            param: clip(name),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty (the address needs a /<param> segment)");
    }
    if name.len() > MAX_PARAM_LEN {
        return bad("longer than 64 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad("only A-Z, a-z, 0-9, '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_pass() {
        for a in ["/tutti/cutoff", "/a", "/synth/1/freq", "/x-y_z.w~"] {
            validate_address(a).unwrap_or_else(|e| panic!("{a}: {e}"));
        }
        validate_address(&format!("/{}", "a".repeat(MAX_ADDRESS_LEN - 1))).expect("max length");
    }

    #[test]
    fn bad_addresses_fail_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "start with '/'"),
            ("tutti/x", "start with '/'"),
            ("/", "at least one"),
            ("/a b", "space"),
            ("/a#b", "reserved"),
            ("/a*", "reserved"),
            ("/a,b", "reserved"),
            ("/a?", "reserved"),
            ("/a[1]", "reserved"),
            ("/a{b}", "reserved"),
            ("/a//b", "empty segment"),
            ("/a/", "ends with"),
            ("/a\0b", "control"),
            ("/a\tb", "control"),
            ("/café", "non-ASCII"),
        ];
        for (addr, reason) in cases {
            match validate_address(addr) {
                Err(OscError::InvalidAddress { reason: r, .. }) => {
                    assert!(r.contains(reason), "{addr:?}: {r}")
                }
                other => panic!("{addr:?} gave {other:?}"),
            }
        }
        let long = format!("/{}", "a".repeat(MAX_ADDRESS_LEN));
        assert!(matches!(
            validate_address(&long),
            Err(OscError::InvalidAddress { reason, .. }) if reason.contains("longer")
        ));
    }

    #[test]
    fn params() {
        validate_param("cutoff").expect("plain");
        validate_param("Filter_2-b").expect("mixed");
        validate_param(&"p".repeat(MAX_PARAM_LEN)).expect("max length");
        for bad in ["", "a/b", "a b", "é", "a.b", "*"] {
            assert!(
                matches!(validate_param(bad), Err(OscError::InvalidParam { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_param(&"p".repeat(MAX_PARAM_LEN + 1)).is_err());
    }
}
