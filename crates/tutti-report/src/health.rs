//! What the live hub records about a show's health next to each stored snapshot (about once a
//! second, in `snapshots.health_json`): who is connected and moving, per zone, cumulative
//! counters, and the sound's level. The report reads it back; the hub writes it.
//!
//! Must never: hold anything but plain counters (it is written on the tick thread).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A show's health at one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Audience slots with an open connection.
    pub connected: u32,
    /// Participants whose input or vote was applied since the previous snapshot.
    pub moving: u32,
    /// Per zone of the piece's seat map, in its order (participants without a zone are in no
    /// entry).
    #[serde(default)]
    pub zones: Vec<ZoneHealth>,
    /// Inputs and votes applied to this show so far (cumulative since the runtime started).
    #[serde(default)]
    pub inputs: u64,
    /// Reconnects that got their slot back (cumulative since the runtime started).
    #[serde(default)]
    pub resumes: u64,
    /// The audience state rate in force (Hz).
    #[serde(default)]
    pub state_rate: f64,
    /// Audience state frames written (node-wide, cumulative since the node started).
    #[serde(default)]
    pub delivered: u64,
    /// Deliveries later than a state period or 200 ms (node-wide, cumulative).
    #[serde(default)]
    pub late: u64,
    /// State frames skipped by latest-wins for slow readers (node-wide, cumulative).
    #[serde(default)]
    pub skipped: u64,
    /// Error frames by stable code (node-wide, cumulative; zero counts left out).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    /// The embedded engine's output level (RMS, dBFS, louder channel), when it plays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_dbfs: Option<f32>,
}

/// One zone's share of the audience at a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneHealth {
    /// Connected participants seated in the zone.
    pub connected: u32,
    /// Of those, participants with an input since the previous snapshot.
    pub moving: u32,
}

impl Health {
    /// The JSON stored with a snapshot.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
