//! `tutti load`: a load generator for Tutti's live hub, in the product so that users can
//! check their laptop and network before a show.
//!
//! Real WebSocket clients (tokio + tungstenite with a 4 KiB read buffer) join a show,
//! move sliders and vote at a given rate, read every state, and measure input→state
//! latency from the protocol's acks (`ack {seq, tick}`: the first `state` with
//! `tick ≥` that value reflects the input). Slow readers read one frame a second. The
//! run is bounded in clients and time and stops by itself; the [`Report`] gives clients
//! connected and failed, inputs sent and acknowledged per second, states per client per
//! second, latency percentiles (hdrhistogram), errors by code, the server's CPU and
//! memory (`--server-pid`), the generator's own CPU, and with `--calibrate` the server's
//! CPU per message as a ratio to the machine's raw loopback TCP floor ([`measure_floor`]).
//!
//! Attackers can run alongside the honest clients for the same bounded run ([`attack`]):
//! `--garbage` clients send malformed frames at `--garbage-rate`, `--silent` clients join
//! and never read, `--churn` clients connect, join and close in a loop at `--churn-rate`.
//! Their figures are reported apart ([`report::Attackers`]) and never mixed into the
//! honest clients'.
//!
//! With `--sync` every reading client also keeps its clock in step with the show clock as
//! a phone page does (`tutti_sync::Estimator` over its own connection), and the report gives
//! each estimate's true error against a reference connection with a tiny round trip, at 1,
//! 2, 3, 5 and 10 s after joining and at the end, with convergence times (`sync`).
//!
//! With `--chat-rooms N --chat-users M --chat-senders S --chat-rate R --admin USER:PASSWORD`
//! the run is chat in many rooms instead of a show: an admin makes `M` staff accounts and `N`
//! closed rooms with all of them as members through the management API ([`rooms`]), then
//! every user opens one connection per room (`chat_auth`, `chat_sub` of that room, no show
//! joined), `S` of them post through the window, and every delivery is checked against its
//! room's sequence and timed as in the show's room (`chat`, `rooms`).
//!
//! With `--cues RATE` (and `--performer-token`) one performer connection sends `cue` frames
//! through the measured window and every reading client records each cue it receives; the
//! report gives, over cues × clients, the deliveries that came before their time (`at`),
//! the late and the missing ones and the margins, timed against the show clock that the
//! reference connection found (`cues`).
//!
//! Limits: one process holds at most its file-descriptor limit (raised at start from the
//! soft to the hard limit) minus [`FD_MARGIN`] connections, and about 28,000 connections
//! per source address (the ephemeral port range); past either, `run` refuses with an
//! error naming the option, and the way out is several processes (each with its own
//! `--source-addrs`).
//!
//! Read in this order: [`options`] (what can be asked), `run` (the phases), `client`
//! (one phone), `sync` (its clock sync and the truth), `cues` (the performer and the cues'
//! deliveries), [`storm`] (the chat reconnect storm), [`attack`] (the attackers),
//! [`report`] (what comes out), [`calibrate`] (the floor).
//!
//! Must never: run without bound, hide a failure inside an average, or judge timing in
//! its correctness checks.

pub mod attack;
pub mod calibrate;
mod chat;
mod client;
mod cues;
mod error;
pub mod options;
mod progress;
pub mod report;
pub mod rooms;
mod run;
mod stamped;
pub mod storm;
mod sync;
mod sys;

pub use calibrate::{measure_floor, measure_floor_with, Floor};
pub use error::LoadError;
pub use options::LoadOptions;
pub use report::Report;
pub use rooms::RoomsFigures;
pub use run::{run, FD_MARGIN, SETTLE_MAX};
pub use storm::{run_storm, StormReport};
