//! The data behind a report (`?format=json`): plain, serializable, documented field by field
//! in `docs/report.md`. Times are seconds from the first recorded snapshot (`t`), unless a
//! field says unix milliseconds (`*_ms`).
//!
//! Must never: hold anything that cannot be serialized as it is, or a non-finite number
//! (JSON has none; a missing value is `null`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The format tag of the JSON document.
pub const FORMAT: &str = "tutti.show-report/1";

/// A show's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// The show.
    pub show: ShowInfo,
    /// The show has not ended: this is the report so far.
    pub running: bool,
    /// The part of the show reported, seconds from the first snapshot (`None`: all of it).
    pub range: Option<TimeRange>,
    /// The numbers at the top.
    pub summary: Summary,
    /// One entry per parameter, in the piece's order.
    pub params: Vec<ParamReport>,
    /// Connected and moving participants over time.
    pub participation: Participation,
    /// The seat map's zones compared.
    pub zones: Vec<ZoneReport>,
    /// Section changes (values of the discrete parameter named `section`, when the piece has
    /// one).
    pub sections: Vec<SectionChange>,
    /// Override periods, from the active overrides of each snapshot.
    pub overrides: Vec<OverridePeriod>,
    /// The performers' actions, from the override log.
    pub interventions: Vec<Intervention>,
    /// Loudness per minute, when the embedded engine played.
    pub audio: Vec<MinuteLevel>,
    /// Delivery and errors.
    pub health: HealthReport,
    /// Stretches without usable data (the server was down, or a snapshot could not be read).
    pub gaps: Vec<Gap>,
}

/// The show reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowInfo {
    /// Store id.
    pub id: i64,
    /// Join code.
    pub code: String,
    /// The piece's title.
    pub title: String,
    /// The piece's slug.
    pub piece: String,
    /// `rehearsal` or `performance`.
    pub kind: String,
    /// `scheduled`, `live`, `paused` or `ended`.
    pub status: String,
    /// The spec version the show ran (per piece, from 1).
    pub spec_version: i64,
    /// Created, unix ms.
    pub created_at_ms: i64,
    /// First went live, unix ms.
    pub started_at_ms: Option<i64>,
    /// Ended, unix ms.
    pub ended_at_ms: Option<i64>,
    /// The first snapshot's time, unix ms (`t = 0`).
    pub t0_ms: Option<i64>,
}

/// A time range, seconds from the first snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Start (inclusive).
    pub from: f64,
    /// End (inclusive).
    pub to: f64,
}

/// The summary at the top of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// From the first to the last snapshot, seconds.
    pub duration_s: f64,
    /// Snapshots read (about one a second).
    pub snapshots: u64,
    /// Snapshots that could not be read (marked as gaps).
    pub corrupt_snapshots: u64,
    /// Most participants at one snapshot.
    pub peak_audience: u32,
    /// Median participants over the snapshots.
    pub median_audience: f64,
    /// Inputs and votes applied (from the recorded counters; `None` before they were recorded).
    pub inputs: Option<u64>,
    /// The moment of lowest agreement (see [`Contested`]).
    pub most_contested: Option<Contested>,
    /// Entries in the override log.
    pub interventions: u64,
    /// Those entries by action.
    pub interventions_by_action: BTreeMap<String, u64>,
}

/// The most contested moment: the snapshot and parameter with the lowest agreement among
/// those where at least [`Contested::MIN_PARTICIPANTS`] participants, and at least a tenth of
/// the peak audience, had an input on the parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contested {
    /// When.
    pub t: f64,
    /// Which parameter.
    pub param: String,
    /// Its agreement then (0..1).
    pub agreement: f64,
    /// Participants with an input on it then.
    pub participants: u32,
}

impl Contested {
    /// Fewest participants on a parameter for a moment to count.
    pub const MIN_PARTICIPANTS: u32 = 3;
}

/// One parameter over the show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamReport {
    /// Name.
    pub name: String,
    /// Label.
    pub label: String,
    /// `continuous` or `discrete`.
    pub kind: String,
    /// Unit, if any.
    pub unit: Option<String>,
    /// Range bottom (0 for a discrete parameter).
    pub min: f64,
    /// Range top (choices − 1 for a discrete parameter).
    pub max: f64,
    /// Choices of a discrete parameter.
    pub choices: Vec<String>,
    /// Exact figures over every snapshot in range.
    pub stats: ParamStats,
    /// Bucket times (bucket centres; one bucket per snapshot for short shows, at most
    /// [`crate::MAX_LINE_BUCKETS`]).
    pub t: Vec<f64>,
    /// Mean collective value per bucket.
    pub value: Vec<f64>,
    /// Mean audience aggregate per bucket (`null` where nobody had an input).
    pub raw: Vec<Option<f64>>,
    /// Mean agreement per bucket.
    pub agreement: Vec<f64>,
    /// Mean dispersion per bucket (parameter units).
    pub dispersion: Vec<f64>,
    /// The distribution of inputs over time.
    pub heat: Heat,
}

/// Exact figures of one parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamStats {
    /// Mean collective value.
    pub mean: f64,
    /// Lowest collective value.
    pub min: f64,
    /// Highest collective value.
    pub max: f64,
    /// Mean agreement over the snapshots where someone had an input.
    pub mean_agreement: Option<f64>,
    /// Seconds with at least one active override.
    pub overridden_s: f64,
}

/// A heat map: time buckets × value bins, each cell the mean share of the audience's weight
/// in that bin (a column sums to 1, or to 0 without inputs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heat {
    /// Bucket start times.
    pub t: Vec<f64>,
    /// Bucket width, seconds.
    pub dt: f64,
    /// Bins per column (histogram bins, or choices of a discrete parameter).
    pub bins: usize,
    /// Columns, one per bucket, `bins` shares each.
    pub cells: Vec<Vec<f32>>,
    /// The median of each column in parameter units (`null` without inputs).
    pub median: Vec<Option<f64>>,
}

/// Participation over time (bucket means).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Participation {
    /// Bucket centre times.
    pub t: Vec<f64>,
    /// Participants joined (slots held, disconnected ones within their resume grace
    /// included).
    pub participants: Vec<f64>,
    /// Connected participants (`null` before health was recorded).
    pub connected: Vec<Option<f64>>,
    /// Participants with an input since the previous snapshot.
    pub moving: Vec<Option<f64>>,
    /// Mean agreement over the parameters with inputs.
    pub agreement: Vec<Option<f64>>,
}

/// One zone over the show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneReport {
    /// Zone name.
    pub name: String,
    /// Mean connected participants in the zone.
    pub mean_connected: f64,
    /// Peak connected participants in the zone.
    pub peak_connected: u32,
    /// Mean participants moving per snapshot.
    pub mean_moving: f64,
    /// `mean_moving / mean_connected` (0 when nobody connected).
    pub activity: f64,
}

/// A change of section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionChange {
    /// When.
    pub t: f64,
    /// The section before (`None` at the start).
    pub from: Option<String>,
    /// The section after.
    pub to: String,
}

/// A stretch during which an override of one mode held a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverridePeriod {
    /// Parameter name.
    pub param: String,
    /// Mode (`lock`, `blend`, `bias`, `clamp`, `freeze`).
    pub mode: String,
    /// Who set it.
    pub by: String,
    /// First snapshot with it.
    pub from: f64,
    /// Last snapshot with it.
    pub to: f64,
    /// lock value, bias amount, blend target or clamp bottom, at its start.
    pub a: Option<f64>,
    /// blend factor or clamp top, at its start.
    pub b: Option<f64>,
}

/// One entry of the override log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    /// When, seconds from the first snapshot (negative: before it).
    pub t: f64,
    /// Unix ms.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// Which parameter (`*` for the whole show).
    pub param: String,
    /// What (`set`, `clear`, `bypass`, `reset`, …).
    pub action: String,
    /// Arguments, as logged.
    pub detail: serde_json::Value,
}

/// The mean level of one minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteLevel {
    /// Minute from the first snapshot (0-based).
    pub minute: u32,
    /// Mean RMS level, dBFS.
    pub level_dbfs: f64,
    /// Loudest second's level, dBFS.
    pub peak_dbfs: f64,
}

/// Delivery and errors over the range (increments of the recorded counters; delivery and
/// error counters are the node's, so they include other shows running on it at the time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Bucket centre times of `state_rate`.
    pub t: Vec<f64>,
    /// The audience state rate in force (Hz), bucket means (`null` before health was recorded).
    pub state_rate: Vec<Option<f64>>,
    /// Late deliveries per bucket.
    pub late: Vec<Option<f64>>,
    /// State frames delivered.
    pub delivered: u64,
    /// Deliveries later than a state period or 200 ms.
    pub late_total: u64,
    /// State frames skipped for slow readers.
    pub skipped: u64,
    /// Reconnects that got their slot back.
    pub reconnects: u64,
    /// Error frames by code.
    pub errors: BTreeMap<String, u64>,
    /// Whether any health was recorded (shows recorded before it was are `false`).
    pub recorded: bool,
}

/// A stretch without usable data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// Last good time before it.
    pub from: f64,
    /// First good time after it.
    pub to: f64,
    /// Why: `no_snapshots` (nothing recorded, e.g. the server was down) or `corrupt`
    /// (a snapshot could not be read).
    pub reason: String,
}
