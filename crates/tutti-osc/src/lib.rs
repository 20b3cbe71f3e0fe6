//! Tutti's OSC edge: the collective state leaves as timestamped OSC bundles to UDP targets every
//! tick, and performer commands arrive as OSC from tools such as TouchOSC, Max or SuperCollider.
//!
//! This crate deals only in OSC addresses, floats and parsed commands. It must never know about
//! HTTP or WebSockets, the consensus engine, or the piece format (the caller maps parameters to
//! addresses and applies commands), and it must never block or await on the tick path:
//! [`encode_bundle`] reuses the caller's buffer and [`OscSender::send`] uses non-blocking sends
//! that drop and count what cannot leave now.
//!
//! # Output
//! Each tick the caller encodes one bundle with [`encode_bundle`] (NTP timetag, one
//! `<address> ,f <value>` message per parameter; addresses checked with [`validate_address`]) and
//! hands the bytes to [`OscSender::send`], which sends the same datagram to every configured
//! target. The default namespace is `/tutti/<param>`; addresses and scaling come from the piece
//! and are applied by the caller.
//!
//! # Input: address scheme
//! [`OscListener::bind`] (default [`DEFAULT_LISTEN_ADDR`], loopback) receives datagrams and
//! forwards [`OscCommand`]s on a bounded channel. [`parse_packet`] accepts (`<param>` is one
//! address segment of 1–64 characters `A-Z a-z 0-9 _ -`; "number" is an `i`, `f`, `h` or `d`
//! argument and must be finite):
//!
//! | address | arguments | command |
//! |---|---|---|
//! | `/tutti/override/<param>` | number | `Override { Lock(v) }` |
//! | `/tutti/lock/<param>` | number | `Override { Lock(v) }` |
//! | `/tutti/bias/<param>` | number | `Override { Bias(v) }` |
//! | `/tutti/blend/<param>` | number target, number factor in 0..=1 | `Override { Blend }` |
//! | `/tutti/clamp/<param>` | number lo, number hi, lo <= hi | `Override { Clamp }` |
//! | `/tutti/freeze/<param>` | trigger | `Override { Freeze }` |
//! | `/tutti/release/<param>` | trigger, or `s` mode (lock, bias, blend, clamp, freeze) | `Release` |
//! | `/tutti/session/start`, `pause`, `resume`, `end` | trigger | `Session(..)` |
//! | `/tutti/reset` | trigger | `Reset` |
//! | `/tutti/bypass` | `i`, `f`, `h`, `d` (non-zero = on) or `T`/`F` | `Bypass(bool)` |
//!
//! A *trigger* is no argument, or one number/`T`/`F`: non-zero or `T` fires, `0` or `F` (what a
//! TouchOSC button sends on release) is accepted and does nothing. Bundles, nested up to
//! [`MAX_BUNDLE_DEPTH`], are flattened in order; their timetags are ignored (commands apply on
//! arrival). A packet is accepted or rejected whole; packets over [`MAX_PACKET_LEN`] (8 KiB) are
//! rejected. Rejected packets are dropped and counted ([`ListenerStats::packets_malformed`]).
//! `docs/osc.md` has the same table with examples.

#![forbid(unsafe_code)]

mod address;
mod command;
mod encode;
mod error;
mod listener;
mod ratelimit;
mod sender;

pub use address::{validate_address, validate_param, MAX_ADDRESS_LEN, MAX_PARAM_LEN};
pub use command::{
    parse_packet, OscCommand, OscOverride, SessionAction, MAX_BUNDLE_DEPTH, MAX_PACKET_LEN,
    OVERRIDE_MODES,
};
pub use encode::{encode_bundle, MAX_UDP_PAYLOAD};
pub use error::OscError;
pub use listener::{ListenerStats, OscListener, OscListenerHandle, DEFAULT_LISTEN_ADDR};
pub use sender::{OscSender, SenderStats, TargetStats, MAX_TARGETS};
