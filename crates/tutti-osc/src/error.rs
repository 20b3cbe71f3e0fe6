//! The crate's single error type.
//!
//! Every variant names the offending address, argument, parameter or value so that a log line (or
//! an error shown to a performer) says what was wrong. Strings that come from the network are
//! clipped before they are stored, so a hostile packet cannot blow up a log line.
//! This module must never hold anything but error descriptions (no I/O, no logging).

use std::net::SocketAddr;

/// Longest piece of untrusted text (address, parameter name, mode) kept in an error.
const MAX_QUOTED: usize = 80;

/// Errors from encoding, sending, receiving and parsing OSC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OscError {
    /// An outgoing address failed [`crate::validate_address`].
    #[error("invalid OSC address {address:?}: {reason}")]
    InvalidAddress {
        /// The address (clipped).
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An outgoing value was NaN or infinite.
    #[error("value for OSC address {address:?} is not finite ({value})")]
    NonFiniteValue {
        /// The address the value was meant for (clipped).
        address: String,
        /// The offending value.
        value: f32,
    },
    /// The bundle timetag cannot be expressed as an OSC (NTP) timetag.
    #[error("OSC timetag: {reason}")]
    InvalidTimetag {
        /// Why the conversion failed (before 1970, or past 2036's NTP era).
        reason: String,
    },
    /// A UDP target was rejected.
    #[error("invalid OSC target {target}: {reason}")]
    InvalidTarget {
        /// The target.
        target: SocketAddr,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Too many UDP targets for one sender.
    #[error("{count} OSC targets given, at most {max} allowed")]
    TooManyTargets {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A packet (incoming or outgoing) is over the size limit.
    #[error("OSC packet is {len} bytes, over the {max}-byte limit")]
    PacketTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a well-formed OSC packet.
    #[error("not a valid OSC packet: {reason}")]
    NotOsc {
        /// What the decoder found wrong.
        reason: String,
    },
    /// Bundles nested deeper than allowed.
    #[error("OSC bundles nested deeper than {max} levels")]
    BundleTooDeep {
        /// The limit.
        max: usize,
    },
    /// The message address is not one of the commands in `docs/osc.md`.
    #[error("unknown OSC address {address:?}")]
    UnknownAddress {
        /// The address (clipped).
        address: String,
    },
    /// Wrong number of arguments for the address.
    #[error("{address}: expected {expected} argument(s), got {got}")]
    WrongArgCount {
        /// The address (clipped).
        address: String,
        /// What the command accepts, in words.
        expected: &'static str,
        /// How many arguments the message had.
        got: usize,
    },
    /// An argument has a type the command does not accept.
    #[error("{address}: argument {index} must be {expected}, got OSC type tag '{got}'")]
    WrongArgType {
        /// The address (clipped).
        address: String,
        /// Zero-based argument index.
        index: usize,
        /// What the command accepts, in words.
        expected: &'static str,
        /// The OSC type tag that was received.
        got: char,
    },
    /// A numeric argument is NaN or infinite (or overflows `f32`).
    #[error("{address}: argument {index} is not finite ({value})")]
    NonFiniteArg {
        /// The address (clipped).
        address: String,
        /// Zero-based argument index.
        index: usize,
        /// The value as received (widened to `f64`).
        value: f64,
    },
    /// A numeric argument is finite but outside what the command allows.
    #[error("{address}: argument {index} ({value}) {reason}")]
    ArgOutOfRange {
        /// The address (clipped).
        address: String,
        /// Zero-based argument index.
        index: usize,
        /// The value.
        value: f32,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The `<param>` segment of a command address is not a valid parameter name.
    #[error("invalid parameter name {param:?}: {reason}")]
    InvalidParam {
        /// The name (clipped).
        param: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `/tutti/release/<param> s` named an override mode that does not exist.
    #[error("invalid release mode {mode:?}: expected one of lock, bias, blend, clamp, freeze")]
    InvalidReleaseMode {
        /// The mode (clipped).
        mode: String,
    },
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the address involved.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl OscError {
    /// A stable, machine-readable code for the error (for stats, metrics and error frames).
    pub fn code(&self) -> &'static str {
        match self {
            OscError::InvalidAddress { .. } => "invalid_address",
            OscError::NonFiniteValue { .. } => "non_finite_value",
            OscError::InvalidTimetag { .. } => "invalid_timetag",
            OscError::InvalidTarget { .. } => "invalid_target",
            OscError::TooManyTargets { .. } => "too_many_targets",
            OscError::PacketTooLarge { .. } => "packet_too_large",
            OscError::NotOsc { .. } => "not_osc",
            OscError::BundleTooDeep { .. } => "bundle_too_deep",
            OscError::UnknownAddress { .. } => "unknown_address",
            OscError::WrongArgCount { .. } => "wrong_arg_count",
            OscError::WrongArgType { .. } => "wrong_arg_type",
            OscError::NonFiniteArg { .. } => "non_finite_arg",
            OscError::ArgOutOfRange { .. } => "arg_out_of_range",
            OscError::InvalidParam { .. } => "invalid_param",
            OscError::InvalidReleaseMode { .. } => "invalid_release_mode",
            OscError::Io { .. } => "io",
        }
    }
}

/// Copies at most [`MAX_QUOTED`] characters of untrusted text, marking the cut with `…`.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        None => s.to_owned(),
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&s[..cut]);
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text() {
        assert_eq!(clip("/tutti/x"), "/tutti/x");
        let long = "é".repeat(200);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_QUOTED + 1);
        assert!(clipped.ends_with('…'));
    }

    #[test]
    fn messages_name_the_offender() {
        let e = OscError::WrongArgType {
            address: "/tutti/bias/cutoff".into(),
            index: 0,
            expected: "a number (i, f, h or d)",
            got: 's',
        };
        let msg = e.to_string();
        assert!(msg.contains("/tutti/bias/cutoff"), "{msg}");
        assert!(msg.contains("'s'"), "{msg}");
        assert_eq!(e.code(), "wrong_arg_type");
    }
}
