//! Performer commands received over OSC: the [`OscCommand`] type and [`parse_packet`], which turns
//! one UDP datagram into commands or an error that names what was wrong.
//!
//! Parsing is strict and all-or-nothing: a packet (including every message of every nested
//! bundle) is accepted whole or rejected whole. Decoding uses rosc; because rosc is lenient in
//! places (it ignores unparsed bytes inside bundle elements and non-zero padding), the decoded
//! packet is re-encoded and must reproduce the datagram exactly. Bundle timetags are ignored:
//! commands apply on arrival. This module must never know which parameters exist or what an
//! override does to them (that is the engine's job), and never do I/O.

use rosc::{OscMessage, OscPacket, OscType};

use crate::address::validate_param;
use crate::error::{clip, OscError};

/// Largest datagram [`parse_packet`] accepts, in bytes.
pub const MAX_PACKET_LEN: usize = 8 * 1024;

/// Deepest bundle nesting [`parse_packet`] accepts (a top-level bundle is depth 1).
pub const MAX_BUNDLE_DEPTH: usize = 8;

/// How a performer overrides one parameter (see the engine for the semantics and their order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OscOverride {
    /// Hold the parameter at this value (`/tutti/lock`, `/tutti/override`).
    Lock(f32),
    /// Add this offset to the crowd's value (`/tutti/bias`).
    Bias(f32),
    /// Mix towards `target` by `factor` (0 = crowd only, 1 = target only) (`/tutti/blend`).
    Blend {
        /// The value blended towards.
        target: f32,
        /// Blend factor in `[0, 1]`.
        factor: f32,
    },
    /// Restrict the parameter to `[lo, hi]` (`/tutti/clamp`), `lo <= hi`.
    Clamp {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// Hold the parameter at its current value (`/tutti/freeze`).
    Freeze,
}

/// Names of the override modes, as accepted by `/tutti/release/<param> s <mode>`.
pub const OVERRIDE_MODES: [&str; 5] = ["lock", "bias", "blend", "clamp", "freeze"];

/// Session control (`/tutti/session/<action>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionAction {
    /// Start the show.
    Start,
    /// Pause it.
    Pause,
    /// Resume after a pause.
    Resume,
    /// End it.
    End,
}

/// One performer command parsed from OSC.
#[derive(Debug, Clone, PartialEq)]
pub enum OscCommand {
    /// Set an override on a parameter.
    Override {
        /// Parameter name (validated with [`crate::validate_param`], not checked against a piece).
        param: String,
        /// The override.
        mode: OscOverride,
    },
    /// Release the overrides on a parameter: one mode (one of [`OVERRIDE_MODES`]) or all (`None`).
    Release {
        /// Parameter name.
        param: String,
        /// Which override to release; `None` releases all of them.
        mode: Option<String>,
    },
    /// Session control.
    Session(SessionAction),
    /// Global reset.
    Reset,
    /// Global "bypass audience" on (`true`) or off.
    Bypass(bool),
    /// Play a phone voice on every phone (the piece's cue lead).
    Cue {
        /// Voice name (validated like a parameter name, not checked against a piece).
        voice: String,
    },
}

/// Parses one UDP datagram into the commands it carries, flattening (nested) bundles in order.
///
/// Returns an empty `Vec` for a well-formed packet whose only messages are trigger commands with
/// a released-button argument (`0` or `F`, see `docs/osc.md`) or an empty bundle.
pub fn parse_packet(bytes: &[u8]) -> Result<Vec<OscCommand>, OscError> {
    if bytes.len() > MAX_PACKET_LEN {
        return Err(OscError::PacketTooLarge {
            len: bytes.len(),
            max: MAX_PACKET_LEN,
        });
    }
    let not_osc = |reason: &str| OscError::NotOsc {
        reason: reason.to_owned(),
    };
    if bytes.is_empty() {
        return Err(not_osc("empty packet"));
    }
    if bytes.len() % 4 != 0 {
        return Err(not_osc("length is not a multiple of 4 bytes"));
    }
    let (rest, packet) = rosc::decoder::decode_udp(bytes).map_err(|e| OscError::NotOsc {
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(not_osc("trailing bytes after the packet"));
    }
    let messages = flatten(&packet)?;
    let reencoded = rosc::encoder::encode(&packet).map_err(|e| OscError::NotOsc {
        reason: e.to_string(),
    })?;
    if reencoded != bytes {
        return Err(not_osc(
            "unparsed bytes inside a bundle element, or non-zero padding",
        ));
    }
    let mut commands = Vec::with_capacity(messages.len());
    for msg in messages {
        if let Some(cmd) = parse_message(msg)? {
            commands.push(cmd);
        }
    }
    Ok(commands)
}

/// Collects the messages of `packet` depth-first in order, enforcing [`MAX_BUNDLE_DEPTH`].
fn flatten(packet: &OscPacket) -> Result<Vec<&OscMessage>, OscError> {
    let mut out = Vec::new();
    // Explicit stack of (remaining packets at this level, depth): no recursion on hostile input.
    let mut stack: Vec<(std::slice::Iter<'_, OscPacket>, usize)> =
        vec![(std::slice::from_ref(packet).iter(), 0)];
    while let Some((iter, depth)) = stack.last_mut() {
        let depth = *depth;
        match iter.next() {
            None => {
                stack.pop();
            }
            Some(OscPacket::Message(m)) => out.push(m),
            Some(OscPacket::Bundle(b)) => {
                if depth + 1 > MAX_BUNDLE_DEPTH {
                    return Err(OscError::BundleTooDeep {
                        max: MAX_BUNDLE_DEPTH,
                    });
                }
                stack.push((b.content.iter(), depth + 1));
            }
        }
    }
    Ok(out)
}

fn parse_message(msg: &OscMessage) -> Result<Option<OscCommand>, OscError> {
    let address = msg.addr.as_str();
    let args = msg.args.as_slice();
    let unknown = || OscError::UnknownAddress {
        address: clip(address),
    };
    let rest = address.strip_prefix("/tutti/").ok_or_else(unknown)?;
    let (head, tail) = match rest.split_once('/') {
        Some((h, t)) => (h, Some(t)),
        None => (rest, None),
    };
    let a = Args { address, args };
    match head {
        "override" | "lock" => {
            let p = param(tail)?;
            a.count(1, "1 (number: value)")?;
            Ok(Some(OscCommand::Override {
                param: p,
                mode: OscOverride::Lock(a.number(0)?),
            }))
        }
        "bias" => {
            let p = param(tail)?;
            a.count(1, "1 (number: offset)")?;
            Ok(Some(OscCommand::Override {
                param: p,
                mode: OscOverride::Bias(a.number(0)?),
            }))
        }
        "blend" => {
            let p = param(tail)?;
            a.count(2, "2 (numbers: target, factor)")?;
            let target = a.number(0)?;
            let factor = a.number(1)?;
            if !(0.0..=1.0).contains(&factor) {
                return Err(a.out_of_range(1, factor, "must be between 0 and 1"));
            }
            Ok(Some(OscCommand::Override {
                param: p,
                mode: OscOverride::Blend { target, factor },
            }))
        }
        "clamp" => {
            let p = param(tail)?;
            a.count(2, "2 (numbers: lo, hi)")?;
            let lo = a.number(0)?;
            let hi = a.number(1)?;
            if lo > hi {
                return Err(a.out_of_range(0, lo, "must not be above hi (argument 1)"));
            }
            Ok(Some(OscCommand::Override {
                param: p,
                mode: OscOverride::Clamp { lo, hi },
            }))
        }
        "freeze" => {
            let p = param(tail)?;
            if a.trigger()? {
                Ok(Some(OscCommand::Override {
                    param: p,
                    mode: OscOverride::Freeze,
                }))
            } else {
                Ok(None)
            }
        }
        "release" => {
            let p = param(tail)?;
            match args {
                [OscType::String(mode)] => {
                    if !OVERRIDE_MODES.contains(&mode.as_str()) {
                        return Err(OscError::InvalidReleaseMode { mode: clip(mode) });
                    }
                    Ok(Some(OscCommand::Release {
                        param: p,
                        mode: Some(mode.clone()),
                    }))
                }
                [] | [_] => Ok(a.trigger()?.then_some(OscCommand::Release {
                    param: p,
                    mode: None,
                })),
                _ => Err(OscError::WrongArgCount {
                    address: clip(address),
                    expected: "0 or 1 (s mode, or a trigger)",
                    got: args.len(),
                }),
            }
        }
        "session" => {
            let action = match tail {
                Some("start") => SessionAction::Start,
                Some("pause") => SessionAction::Pause,
                Some("resume") => SessionAction::Resume,
                Some("end") => SessionAction::End,
                _ => return Err(unknown()),
            };
            Ok(a.trigger()?.then_some(OscCommand::Session(action)))
        }
        "reset" if tail.is_none() => Ok(a.trigger()?.then_some(OscCommand::Reset)),
        "cue" => {
            let voice = param(tail)?;
            Ok(a.trigger()?.then_some(OscCommand::Cue { voice }))
        }
        "bypass" if tail.is_none() => {
            a.count(1, "1 (i, f, h, d, T or F)")?;
            Ok(Some(OscCommand::Bypass(a.boolean(0)?)))
        }
        _ => Err(unknown()),
    }
}

/// The `<param>` segment: present, one segment, valid characters.
fn param(tail: Option<&str>) -> Result<String, OscError> {
    let name = tail.unwrap_or("");
    validate_param(name)?;
    Ok(name.to_owned())
}

/// Argument accessors that produce errors naming the address and argument index.
struct Args<'a> {
    address: &'a str,
    args: &'a [OscType],
}

const NUMBER: &str = "a number (i, f, h or d)";
const TRIGGER: &str = "a trigger (i, f, h, d, T or F)";

impl Args<'_> {
    fn count(&self, n: usize, expected: &'static str) -> Result<(), OscError> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(OscError::WrongArgCount {
                address: clip(self.address),
                expected,
                got: self.args.len(),
            })
        }
    }

    fn wrong_type(&self, index: usize, expected: &'static str) -> OscError {
        OscError::WrongArgType {
            address: clip(self.address),
            index,
            expected,
            got: type_tag(&self.args[index]),
        }
    }

    fn non_finite(&self, index: usize, value: f64) -> OscError {
        OscError::NonFiniteArg {
            address: clip(self.address),
            index,
            value,
        }
    }

    fn out_of_range(&self, index: usize, value: f32, reason: &'static str) -> OscError {
        OscError::ArgOutOfRange {
            address: clip(self.address),
            index,
            value,
            reason,
        }
    }

    /// A finite `f32` from an `i`, `f`, `h` or `d` argument (`I`, Infinitum, is non-finite).
    fn number(&self, index: usize) -> Result<f32, OscError> {
        let wide = match &self.args[index] {
            OscType::Float(v) => f64::from(*v),
            OscType::Int(v) => f64::from(*v),
            OscType::Long(v) => *v as f64,
            OscType::Double(v) => *v,
            OscType::Inf => f64::INFINITY,
            _ => return Err(self.wrong_type(index, NUMBER)),
        };
        let narrow = wide as f32;
        if narrow.is_finite() {
            Ok(narrow)
        } else {
            Err(self.non_finite(index, wide))
        }
    }

    /// A boolean from `T`/`F` or a number (non-zero = true).
    fn boolean(&self, index: usize) -> Result<bool, OscError> {
        match &self.args[index] {
            OscType::Bool(b) => Ok(*b),
            OscType::Int(_) | OscType::Long(_) | OscType::Float(_) | OscType::Double(_) => {
                Ok(self.number(index)? != 0.0)
            }
            OscType::Inf => Err(self.non_finite(index, f64::INFINITY)),
            _ => Err(self.wrong_type(index, "a boolean (i, f, h, d, T or F)")),
        }
    }

    /// Trigger commands fire with no argument, or with one argument that is non-zero / `T`
    /// (a button press); `0` / `F` (the button's release) is well-formed but fires nothing.
    fn trigger(&self) -> Result<bool, OscError> {
        match self.args {
            [] => Ok(true),
            [OscType::String(_)] => Err(self.wrong_type(0, TRIGGER)),
            [_] => self.boolean(0).map_err(|e| match e {
                OscError::WrongArgType { .. } => self.wrong_type(0, TRIGGER),
                other => other,
            }),
            _ => Err(OscError::WrongArgCount {
                address: clip(self.address),
                expected: "0 or 1 (trigger)",
                got: self.args.len(),
            }),
        }
    }
}

/// The OSC type tag of an argument, for error messages.
fn type_tag(arg: &OscType) -> char {
    match arg {
        OscType::Int(_) => 'i',
        OscType::Float(_) => 'f',
        OscType::String(_) => 's',
        OscType::Blob(_) => 'b',
        OscType::Time(_) => 't',
        OscType::Long(_) => 'h',
        OscType::Double(_) => 'd',
        OscType::Char(_) => 'c',
        OscType::Color(_) => 'r',
        OscType::Midi(_) => 'm',
        OscType::Bool(true) => 'T',
        OscType::Bool(false) => 'F',
        OscType::Array(_) => '[',
        OscType::Nil => 'N',
        OscType::Inf => 'I',
    }
}
