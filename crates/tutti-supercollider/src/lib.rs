//! Tutti's SuperCollider path: a real `scsynth` plays the piece.
//!
//! - [`ScClient`] talks to one scsynth over UDP (or TCP): `/status`, `/notify`, `/d_recv`,
//!   `/g_new`, `/s_new`, `/n_set` in time-stamped bundles, `/n_free`, `/sync`, and the
//!   queries `/g_queryTree`, `/s_get` and `/n_query`. Replies (`/done`, `/fail`, `/synced`,
//!   `/status.reply`, `/n_go`, `/n_end`, ...) are read on a receiving task; every wait has
//!   a timeout, and an address where nothing listens is reported as such.
//! - [`SynthDefFile`] parses compiled SynthDefs (`.scsyndef`, versions 1 and 2) for their
//!   controls; [`SynthDefLibrary::builtin`] holds the SynthDefs shipped in `synthdefs/`
//!   (`drone`, `granular`, `rhythm`, `master`, compiled from their `.scd` sources by
//!   `scripts/build-synthdefs`).
//! - [`ScOutput`] drives a show: it checks the piece's mappings (`voice.control`) against
//!   the SynthDefs (a missing voice or control is an error naming both), loads them,
//!   creates a group and one node per voice, sends each tick's values as one bundle of
//!   `/n_set`s scheduled [`ScConfig::latency`] ahead, and recovers by itself when scsynth
//!   stops answering and comes back ([`ScHealth`] says which).
//! - [`ScOutput::play_clip`] plays a one-shot clip (Tutti's chat sounds) from a buffer with
//!   the `tutti_clip` SynthDef, built in Rust ([`clip`]).
//! - [`write_score`] and [`render_nrt`] turn a recorded show into a non-real-time score and
//!   a WAV file rendered by `scsynth -N`.
//!
//! # Mapping
//! A parameter value `v` is normalised with the spec (`ParamSpec::normalise`; a vote's value
//! is its choice index) and each of its mappings gives `Mapping::apply(n)` for one control.
//! The voice of a target is the SynthDef of the same name; each voice is one node, ids
//! `group_id + 1 ..` in order of first mention. `master.*` targets belong to the embedded
//! engine's master chain; here they go to the `master` SynthDef (reverb and limiter at the
//! tail of the group, processing what the voices wrote to buses 0-1), and a `master`
//! control that SynthDef lacks is skipped with a warning (listed in [`ScHealth::skipped`])
//! rather than rejected, because the embedded chain has controls scsynth does not.
//!
//! # Recovery
//! The supervisor sends `/status` and `/g_queryTree <group>` every
//! [`ScConfig::status_interval`]. After [`ScConfig::lost_after`] unanswered probes the
//! state is [`LinkState::Lost`] (updates are kept, latest only, and not sent); every interval
//! it then asks again (over TCP it first reconnects) and, once scsynth answers, registers for
//! notifications, reloads the SynthDefs, recreates group and nodes with the current values,
//! and returns to [`LinkState::Connected`]. A server that restarted between two probes (group
//! or node gone) is rebuilt the same way.
//!
//! # Loading SynthDefs
//! scsynth 3.13 answers `/d_recv` with `/done` even when it cannot install a SynthDef (it
//! only logs why). [`ScClient::load_synthdefs`] therefore `/d_free`s each SynthDef first and
//! afterwards creates and frees a node of it in one bundle: a `/fail` for that `/s_new` is
//! a load error naming the SynthDef. SynthDefs are global on a server: two shows shipping
//! different SynthDefs under one name on one scsynth replace each other's.
//!
//! # Transport
//! UDP is the default. TCP (`scsynth -t PORT`) frames each packet with a 4-byte length;
//! over UDP a SynthDef file must fit one datagram (65,507 bytes; the shipped ones are under
//! 6 KB).
//!
//! Must never: block or fail the show's tick (`ScOutput::update` is synchronous and
//! latest-wins), wait on the network without a timeout, or send scsynth SynthDef bytes
//! that did not parse (scsynth 3.13 crashes on truncated ones).

mod client;
pub mod clip;
mod error;
mod output;
mod plan;
mod reply;
mod score;
mod synthdef;

pub use client::{
    resolve, AddAction, ScClient, Transport, DEFAULT_TIMEOUT, IMMEDIATELY, MAX_UDP_PACKET,
};
pub use error::ScError;
pub use output::{LinkState, ScConfig, ScHealth, ScOutput, DEFAULT_SERVER};
pub use plan::{default_values, VoiceNode};
pub use reply::{ControlValue, NodeInfo, ScEvent, StatusReply, TreeNode};
pub use score::{
    read_score, render_nrt, render_show, write_score, write_score_with, ScoreOptions,
    MAX_SCORE_SECONDS,
};
pub use synthdef::{
    Control, SynthDefFile, SynthDefInfo, SynthDefLibrary, BUILTIN_SYNTHDEFS, MASTER_VOICE,
};
