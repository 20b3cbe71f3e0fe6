//! Builds a [`Report`] from a show's stored snapshots, fed one at a time in tick order, and
//! its override log. Keeps a compact copy of each snapshot (a few hundred bytes), so a
//! three-hour show costs a few megabytes, then computes everything in [`Builder::finish`].
//!
//! Must never: panic on a bad row (it becomes a gap), or produce a non-finite number.

use std::collections::BTreeMap;

use tutti_protocol::{OverrideState, StateFrame};
use tutti_spec::{ParamKindName, PieceSpec};

use crate::health::Health;
use crate::model::*;

/// Most line-chart buckets (a longer show is averaged into this many).
pub const MAX_LINE_BUCKETS: usize = 720;
/// Most heat-map columns.
pub const MAX_HEAT_BUCKETS: usize = 120;
/// A stretch longer than this between two snapshots is a gap (seconds).
pub const GAP_S: f64 = 5.0;

/// One override log entry as the builder takes it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Unix ms.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// Parameter.
    pub param: String,
    /// Action.
    pub action: String,
    /// Arguments (JSON text).
    pub detail_json: String,
}

struct PFrame {
    value: f64,
    raw: Option<f64>,
    agreement: f64,
    dispersion: f64,
    participants: u32,
    dist: Vec<f32>,
    overrides: Vec<OverrideState>,
}

struct Frame {
    t: f64,
    participants: u32,
    health: Option<Health>,
    params: Vec<PFrame>,
}

/// Accumulates a show's snapshots into a report.
pub struct Builder {
    spec: PieceSpec,
    show: ShowInfo,
    running: bool,
    range: Option<TimeRange>,
    frames: Vec<Frame>,
    corrupt: Vec<f64>,
    log: Vec<LogEntry>,
    last_t: f64,
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

fn mean(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for x in xs {
        if x.is_finite() {
            s += x;
            n += 1;
        }
    }
    (n > 0).then(|| s / n as f64)
}

/// Sum of a cumulative counter's increments over consecutive readings (a reading lower
/// than the one before means the counter restarted: its value counts as the increment).
fn increments(values: impl IntoIterator<Item = u64>) -> u64 {
    let mut total = 0u64;
    let mut prev: Option<u64> = None;
    for v in values {
        total = total.saturating_add(match prev {
            Some(p) if v >= p => v - p,
            Some(_) => v,
            None => 0,
        });
        prev = Some(v);
    }
    total
}

/// The median of a distribution over `bins` equal bins of `lo..hi` (`None` when it is
/// empty). A discrete parameter's median is a choice index.
pub fn median_of(dist: &[f32], lo: f64, hi: f64, discrete: bool) -> Option<f64> {
    let total: f64 = dist.iter().map(|&w| f64::from(w.max(0.0))).sum();
    if total <= 0.0 || dist.is_empty() {
        return None;
    }
    let mut cum = 0.0;
    for (j, &w) in dist.iter().enumerate() {
        let share = f64::from(w.max(0.0)) / total;
        if cum + share >= 0.5 && share > 0.0 {
            if discrete {
                return Some(j as f64);
            }
            let width = (hi - lo) / dist.len() as f64;
            let frac = ((0.5 - cum) / share).clamp(0.0, 1.0);
            return Some(lo + (j as f64 + frac) * width);
        }
        cum += share;
    }
    Some(if discrete {
        (dist.len() - 1) as f64
    } else {
        hi
    })
}

fn mode_name(o: &OverrideState) -> String {
    serde_json::to_value(o.mode)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "override".into())
}

impl Builder {
    /// A builder for a show that ran `spec`.
    pub fn new(spec: PieceSpec, show: ShowInfo, range: Option<TimeRange>) -> Builder {
        let running = show.status != "ended";
        Builder {
            spec,
            show,
            running,
            range,
            frames: Vec::new(),
            corrupt: Vec::new(),
            log: Vec::new(),
            last_t: f64::NEG_INFINITY,
        }
    }

    /// Adds the next stored snapshot (in tick order). A row that cannot be read as a state
    /// of this piece is counted and marked as a gap; its health is then ignored.
    pub fn push(&mut self, at_ms: i64, state_json: &str, health_json: Option<&str>) {
        let t0 = *self.show.t0_ms.get_or_insert(at_ms);
        // A clock stepping back (NTP) must not fold time: keep the order of the ticks.
        let t = ((at_ms - t0) as f64 / 1000.0).max(self.last_t.max(0.0));
        self.last_t = t;
        if let Some(r) = self.range {
            if t < r.from || t > r.to {
                return;
            }
        }
        match self.parse(state_json) {
            Some((participants, params)) => {
                let health = health_json.and_then(|h| serde_json::from_str::<Health>(h).ok());
                self.frames.push(Frame {
                    t,
                    participants,
                    health,
                    params,
                });
            }
            None => self.corrupt.push(t),
        }
    }

    fn parse(&self, state_json: &str) -> Option<(u32, Vec<PFrame>)> {
        let mut frame: StateFrame = serde_json::from_str(state_json).ok()?;
        let mut out = Vec::with_capacity(self.spec.params.len());
        for p in &self.spec.params {
            let s = frame.params.remove(&p.name)?;
            if !s.value.is_finite() || !s.agreement.is_finite() {
                return None;
            }
            let dist = match p.kind {
                ParamKindName::Continuous => s.histogram.unwrap_or_default(),
                ParamKindName::Discrete => s.choices.unwrap_or_default(),
            };
            out.push(PFrame {
                value: s.value,
                raw: s.raw.filter(|r| r.is_finite()),
                agreement: s.agreement.clamp(0.0, 1.0),
                dispersion: finite(s.dispersion.unwrap_or(0.0)),
                participants: s.participants,
                dist: dist
                    .into_iter()
                    .map(|d| if d.is_finite() { d } else { 0.0 })
                    .collect(),
                overrides: s.overrides.unwrap_or_default(),
            });
        }
        Some((frame.participants, out))
    }

    /// Adds the show's override log (any order).
    pub fn log(&mut self, entries: Vec<LogEntry>) {
        self.log = entries;
    }

    /// Computes the report.
    pub fn finish(mut self) -> Report {
        self.log.sort_by_key(|e| e.at_ms);
        let frames = &self.frames;
        let spec = &self.spec;
        let t_first = frames.first().map_or(0.0, |f| f.t);
        let t_last = frames.last().map_or(0.0, |f| f.t);
        let audience = |f: &Frame| f.health.as_ref().map_or(f.participants, |h| h.connected);

        // Summary.
        let peak_audience = frames.iter().map(audience).max().unwrap_or(0);
        let median_audience = {
            let mut a: Vec<u32> = frames.iter().map(audience).collect();
            a.sort_unstable();
            match a.len() {
                0 => 0.0,
                n if n % 2 == 1 => f64::from(a[n / 2]),
                n => (f64::from(a[n / 2 - 1]) + f64::from(a[n / 2])) / 2.0,
            }
        };
        let healths: Vec<&Health> = frames.iter().filter_map(|f| f.health.as_ref()).collect();
        let whole = self.range.is_none();
        let per_show = |get: fn(&Health) -> u64| -> u64 {
            let first = if whole {
                healths.first().map_or(0, |h| get(h))
            } else {
                0
            };
            first.saturating_add(increments(healths.iter().map(|h| get(h))))
        };
        let inputs = (!healths.is_empty()).then(|| per_show(|h| h.inputs));
        let min_on_param = (peak_audience / 10).max(Contested::MIN_PARTICIPANTS);
        let mut most_contested: Option<Contested> = None;
        for f in frames {
            for (p, s) in spec.params.iter().zip(&f.params) {
                if s.participants >= min_on_param
                    && most_contested
                        .as_ref()
                        .is_none_or(|c| s.agreement < c.agreement)
                {
                    most_contested = Some(Contested {
                        t: f.t,
                        param: p.name.clone(),
                        agreement: s.agreement,
                        participants: s.participants,
                    });
                }
            }
        }
        let t0 = self.show.t0_ms.unwrap_or(0);
        let in_range = |t: f64| self.range.is_none_or(|r| t >= r.from && t <= r.to);
        let interventions: Vec<Intervention> = self
            .log
            .iter()
            .map(|e| Intervention {
                t: (e.at_ms - t0) as f64 / 1000.0,
                at_ms: e.at_ms,
                actor: e.actor.clone(),
                param: e.param.clone(),
                action: e.action.clone(),
                detail: serde_json::from_str(&e.detail_json).unwrap_or(serde_json::Value::Null),
            })
            .filter(|i| in_range(i.t))
            .collect();
        let mut by_action = BTreeMap::new();
        for i in &interventions {
            *by_action.entry(i.action.clone()).or_insert(0u64) += 1;
        }

        // Buckets.
        let lines = Buckets::new(frames, t_first, t_last, MAX_LINE_BUCKETS);
        let heat_grid = Grid::new(t_first, t_last, frames.len().min(MAX_HEAT_BUCKETS));

        let params = spec
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| self.param_report(i, p, &lines, &heat_grid))
            .collect();

        let participation = Participation {
            t: lines.times(frames),
            participants: lines
                .map(frames, |f| Some(f64::from(f.participants)))
                .into_iter()
                .map(|v| v.unwrap_or(0.0))
                .collect(),
            connected: lines.map(frames, |f| {
                f.health.as_ref().map(|h| f64::from(h.connected))
            }),
            moving: lines.map(frames, |f| f.health.as_ref().map(|h| f64::from(h.moving))),
            agreement: lines.map(frames, |f| {
                mean(
                    f.params
                        .iter()
                        .filter(|s| s.participants > 0)
                        .map(|s| s.agreement),
                )
            }),
        };

        let zones = spec
            .zones
            .iter()
            .enumerate()
            .map(|(z, zone)| {
                let per: Vec<_> = healths.iter().filter_map(|h| h.zones.get(z)).collect();
                let mean_connected =
                    mean(per.iter().map(|z| f64::from(z.connected))).unwrap_or(0.0);
                let mean_moving = mean(per.iter().map(|z| f64::from(z.moving))).unwrap_or(0.0);
                ZoneReport {
                    name: zone.name.clone(),
                    mean_connected,
                    peak_connected: per.iter().map(|z| z.connected).max().unwrap_or(0),
                    mean_moving,
                    activity: if mean_connected > 0.0 {
                        mean_moving / mean_connected
                    } else {
                        0.0
                    },
                }
            })
            .collect();

        let sections = self.sections();
        let overrides = self.override_periods();
        let audio = self.audio();
        let health = HealthReport {
            t: lines.times(frames),
            state_rate: lines.map(frames, |f| f.health.as_ref().map(|h| h.state_rate)),
            late: lines.increments(frames, |h| h.late),
            delivered: increments(healths.iter().map(|h| h.delivered)),
            late_total: increments(healths.iter().map(|h| h.late)),
            skipped: increments(healths.iter().map(|h| h.skipped)),
            reconnects: if healths.is_empty() {
                0
            } else {
                per_show(|h| h.resumes)
            },
            errors: {
                let mut codes: Vec<&String> =
                    healths.iter().flat_map(|h| h.errors.keys()).collect();
                codes.sort();
                codes.dedup();
                codes
                    .into_iter()
                    .map(|c| {
                        let n = increments(
                            healths
                                .iter()
                                .map(|h| h.errors.get(c).copied().unwrap_or(0)),
                        );
                        (c.clone(), n)
                    })
                    .filter(|(_, n)| *n > 0)
                    .collect()
            },
            recorded: !healths.is_empty(),
        };
        let gaps = self.gaps();

        Report {
            format: FORMAT.into(),
            show: self.show.clone(),
            running: self.running,
            range: self.range,
            summary: Summary {
                duration_s: t_last - t_first,
                snapshots: frames.len() as u64,
                corrupt_snapshots: self.corrupt.len() as u64,
                peak_audience,
                median_audience,
                inputs,
                most_contested,
                interventions: interventions.len() as u64,
                interventions_by_action: by_action,
            },
            params,
            participation,
            zones,
            sections,
            overrides,
            interventions,
            audio,
            health,
            gaps,
        }
    }

    fn param_report(
        &self,
        i: usize,
        p: &tutti_spec::ParamSpec,
        lines: &Buckets,
        grid: &Grid,
    ) -> ParamReport {
        let frames = &self.frames;
        let discrete = p.kind == ParamKindName::Discrete;
        let choices = p.choices.clone().unwrap_or_default();
        let (lo, hi) = if discrete {
            (0.0, choices.len().saturating_sub(1) as f64)
        } else {
            p.range()
        };
        let values = frames.iter().map(|f| f.params[i].value);
        let (min, max) = if frames.is_empty() {
            (0.0, 0.0)
        } else {
            (
                values.clone().fold(f64::INFINITY, f64::min),
                values.clone().fold(f64::NEG_INFINITY, f64::max),
            )
        };
        let mut overridden_s = 0.0;
        for w in frames.windows(2) {
            let dt = w[1].t - w[0].t;
            if dt <= GAP_S && !w[0].params[i].overrides.is_empty() {
                overridden_s += dt;
            }
        }
        let stats = ParamStats {
            mean: mean(values).unwrap_or(0.0),
            min,
            max,
            mean_agreement: mean(
                frames
                    .iter()
                    .map(|f| &f.params[i])
                    .filter(|s| s.participants > 0)
                    .map(|s| s.agreement),
            ),
            overridden_s,
        };
        let bins = if discrete {
            choices.len()
        } else {
            self.spec.histogram_bins
        };
        let mut cells = vec![vec![0f32; bins]; grid.n];
        let mut counts = vec![0u32; grid.n];
        for f in frames {
            let b = grid.index(f.t);
            let d = &f.params[i].dist;
            if d.len() == bins {
                for (c, &v) in cells[b].iter_mut().zip(d) {
                    *c += v;
                }
                counts[b] += 1;
            }
        }
        for (col, &n) in cells.iter_mut().zip(&counts) {
            if n > 0 {
                for c in col.iter_mut() {
                    *c /= n as f32;
                }
            }
        }
        let median = cells
            .iter()
            .map(|c| median_of(c, lo, hi, discrete))
            .collect();
        ParamReport {
            name: p.name.clone(),
            label: p.label().to_string(),
            kind: if discrete { "discrete" } else { "continuous" }.into(),
            unit: p.unit.clone(),
            min: lo,
            max: hi,
            choices,
            stats,
            t: lines.times(frames),
            value: lines
                .map(frames, |f| Some(f.params[i].value))
                .into_iter()
                .map(|v| v.unwrap_or(0.0))
                .collect(),
            raw: lines.map(frames, |f| f.params[i].raw),
            agreement: lines
                .map(frames, |f| Some(f.params[i].agreement))
                .into_iter()
                .map(|v| v.unwrap_or(0.0))
                .collect(),
            dispersion: lines
                .map(frames, |f| Some(f.params[i].dispersion))
                .into_iter()
                .map(|v| v.unwrap_or(0.0))
                .collect(),
            heat: Heat {
                t: (0..grid.n).map(|b| grid.start(b)).collect(),
                dt: grid.width,
                bins,
                cells,
                median,
            },
        }
    }

    fn sections(&self) -> Vec<SectionChange> {
        let Some(i) = self
            .spec
            .params
            .iter()
            .position(|p| p.name == "section" && p.kind == ParamKindName::Discrete)
        else {
            return Vec::new();
        };
        let choices = self.spec.params[i].choices.clone().unwrap_or_default();
        let name = |v: f64| {
            let idx = (v.round().max(0.0) as usize).min(choices.len().saturating_sub(1));
            choices.get(idx).cloned().unwrap_or_default()
        };
        let mut out: Vec<SectionChange> = Vec::new();
        for f in &self.frames {
            let now = name(f.params[i].value);
            let prev = out.last().map(|c| c.to.clone());
            if prev.as_deref() != Some(now.as_str()) {
                out.push(SectionChange {
                    t: f.t,
                    from: prev,
                    to: now,
                });
            }
        }
        out
    }

    fn override_periods(&self) -> Vec<OverridePeriod> {
        let mut out = Vec::new();
        for (i, p) in self.spec.params.iter().enumerate() {
            let mut open: Vec<OverridePeriod> = Vec::new();
            let mut prev_t = 0.0;
            for f in &self.frames {
                let now: Vec<(String, &OverrideState)> = f.params[i]
                    .overrides
                    .iter()
                    .map(|o| (mode_name(o), o))
                    .collect();
                let mut still = Vec::new();
                for period in open.drain(..) {
                    if now
                        .iter()
                        .any(|(m, o)| *m == period.mode && o.by == period.by)
                    {
                        still.push(period);
                    } else {
                        let mut closed = period;
                        closed.to = prev_t;
                        out.push(closed);
                    }
                }
                open = still;
                for (m, o) in now {
                    if !open.iter().any(|p| p.mode == m && p.by == o.by) {
                        open.push(OverridePeriod {
                            param: p.name.clone(),
                            mode: m,
                            by: o.by.clone(),
                            from: f.t,
                            to: f.t,
                            a: o.a.filter(|v| v.is_finite()),
                            b: o.b.filter(|v| v.is_finite()),
                        });
                    }
                }
                prev_t = f.t;
            }
            for mut period in open {
                period.to = prev_t;
                out.push(period);
            }
        }
        out.sort_by(|a, b| a.from.total_cmp(&b.from));
        out
    }

    fn audio(&self) -> Vec<MinuteLevel> {
        let mut minutes: BTreeMap<u32, (f64, f64, u32)> = BTreeMap::new();
        for f in &self.frames {
            let Some(level) = f.health.as_ref().and_then(|h| h.level_dbfs) else {
                continue;
            };
            let level = f64::from(level);
            if !level.is_finite() {
                continue;
            }
            let m = (f.t / 60.0).floor().max(0.0) as u32;
            let e = minutes.entry(m).or_insert((0.0, f64::NEG_INFINITY, 0));
            e.0 += 10f64.powf(level.max(-200.0) / 10.0);
            e.1 = e.1.max(level);
            e.2 += 1;
        }
        minutes
            .into_iter()
            .map(|(minute, (power, peak, n))| MinuteLevel {
                minute,
                level_dbfs: (10.0 * (power / f64::from(n)).log10()).max(-200.0),
                peak_dbfs: peak,
            })
            .collect()
    }

    fn gaps(&self) -> Vec<Gap> {
        let mut gaps = Vec::new();
        for w in self.frames.windows(2) {
            let (a, b) = (w[0].t, w[1].t);
            let corrupt = self.corrupt.iter().any(|&c| c >= a && c <= b);
            if corrupt {
                gaps.push(Gap {
                    from: a,
                    to: b,
                    reason: "corrupt".into(),
                });
            } else if b - a > GAP_S {
                gaps.push(Gap {
                    from: a,
                    to: b,
                    reason: "no_snapshots".into(),
                });
            }
        }
        // Corrupt rows before the first or after the last good one.
        let first = self.frames.first().map(|f| f.t);
        let last = self.frames.last().map(|f| f.t);
        for &c in &self.corrupt {
            if first.is_none_or(|t| c < t) {
                gaps.push(Gap {
                    from: c,
                    to: first.unwrap_or(c),
                    reason: "corrupt".into(),
                });
            } else if last.is_some_and(|t| c > t) {
                gaps.push(Gap {
                    from: last.unwrap_or(c),
                    to: c,
                    reason: "corrupt".into(),
                });
            }
        }
        gaps.sort_by(|a, b| a.from.total_cmp(&b.from));
        gaps.dedup_by(|b, a| a.from == b.from && a.to == b.to);
        gaps
    }
}

/// A fixed grid of `n` equal time buckets over `from..=to`.
struct Grid {
    from: f64,
    width: f64,
    n: usize,
}

impl Grid {
    fn new(from: f64, to: f64, n: usize) -> Grid {
        let n = n.max(1);
        let span = (to - from).max(0.0);
        let width = if span > 0.0 { span / n as f64 } else { 1.0 };
        Grid { from, width, n }
    }

    fn index(&self, t: f64) -> usize {
        (((t - self.from) / self.width).floor().max(0.0) as usize).min(self.n - 1)
    }

    fn start(&self, b: usize) -> f64 {
        self.from + b as f64 * self.width
    }
}

/// Line-chart buckets: the frames of each non-empty bucket of a grid (one frame per bucket
/// when there are few).
struct Buckets {
    /// Frame index ranges, one per non-empty bucket.
    spans: Vec<std::ops::Range<usize>>,
}

impl Buckets {
    fn new(frames: &[Frame], from: f64, to: f64, max: usize) -> Buckets {
        if frames.len() <= max {
            return Buckets {
                spans: (0..frames.len()).map(|i| i..i + 1).collect(),
            };
        }
        let grid = Grid::new(from, to, max);
        let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
        let mut current = usize::MAX;
        for (i, f) in frames.iter().enumerate() {
            let b = grid.index(f.t);
            match spans.last_mut() {
                Some(s) if b == current => s.end = i + 1,
                _ => {
                    spans.push(i..i + 1);
                    current = b;
                }
            }
        }
        Buckets { spans }
    }

    fn times(&self, frames: &[Frame]) -> Vec<f64> {
        self.spans
            .iter()
            .map(|s| mean(frames[s.clone()].iter().map(|f| f.t)).unwrap_or(0.0))
            .collect()
    }

    fn map(&self, frames: &[Frame], get: impl Fn(&Frame) -> Option<f64>) -> Vec<Option<f64>> {
        self.spans
            .iter()
            .map(|s| mean(frames[s.clone()].iter().filter_map(&get)))
            .collect()
    }

    /// Per bucket: the increments of a cumulative health counter from the bucket's previous
    /// reading (`None` where no health was recorded).
    fn increments(&self, frames: &[Frame], get: fn(&Health) -> u64) -> Vec<Option<f64>> {
        let mut prev: Option<u64> = None;
        self.spans
            .iter()
            .map(|s| {
                let mut total: Option<u64> = None;
                for f in &frames[s.clone()] {
                    if let Some(h) = &f.health {
                        let v = get(h);
                        let inc = match prev {
                            Some(p) if v >= p => v - p,
                            Some(_) => v,
                            None => 0,
                        };
                        prev = Some(v);
                        total = Some(total.unwrap_or(0) + inc);
                    }
                }
                total.map(|t| t as f64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_survive_a_restart() {
        assert_eq!(increments([5, 7, 10, 2, 4]), 2 + 3 + 2 + 2);
        assert_eq!(increments(std::iter::empty()), 0);
    }

    #[test]
    fn median_of_a_histogram() {
        // Everything in the top half's first bin of 4 over 0..1: the median is inside it.
        let m = median_of(&[0.0, 0.0, 1.0, 0.0], 0.0, 1.0, false).unwrap();
        assert!((m - 0.625).abs() < 1e-9, "{m}");
        assert_eq!(median_of(&[0.0; 4], 0.0, 1.0, false), None);
        assert_eq!(median_of(&[0.2, 0.2, 0.6], 0.0, 2.0, true), Some(2.0));
        // Evenly spread: the middle of the range.
        let m = median_of(&[0.25; 4], -1.0, 1.0, false).unwrap();
        assert!(m.abs() < 1e-9, "{m}");
    }

    fn spec() -> PieceSpec {
        PieceSpec::from_toml(
            "slug = \"t\"\ntitle = \"T\"\ntick_hz = 20\nstate_hz = 20\ninput_rate = 30\n\
             recency_half_life = 5.0\nhistogram_bins = 4\n[[zones]]\nname = \"a\"\nweight = 1.0\n\
             [[params]]\nname = \"x\"\nkind = \"continuous\"\nmin = 0.0\nmax = 1.0\ndefault = 0.5\n",
        )
        .expect("spec")
    }

    fn show() -> ShowInfo {
        ShowInfo {
            id: 1,
            code: "ABC".into(),
            title: "T".into(),
            piece: "t".into(),
            kind: "rehearsal".into(),
            status: "ended".into(),
            spec_version: 1,
            created_at_ms: 0,
            started_at_ms: None,
            ended_at_ms: None,
            t0_ms: None,
        }
    }

    fn state(v: f64, agreement: f64, n: u32) -> String {
        format!(
            r#"{{"type":"state","tick":1,"status":"live","bypass":false,"rate":20,"participants":{n},
            "params":{{"x":{{"value":{v},"participants":{n},"agreement":{agreement},"raw":{v},
            "histogram":[0,1,0,0],"overrides":[]}}}}}}"#
        )
    }

    #[test]
    fn silences_and_bad_rows_are_gaps_and_ranges_cut() {
        let mut b = Builder::new(spec(), show(), None);
        for s in 0..5 {
            b.push(1_000_000 + s * 1000, &state(0.5, 0.9, 4), None);
        }
        // The server was down for 20 s, then a row that is not a state of this piece.
        b.push(1_025_000, &state(0.6, 0.8, 4), None);
        b.push(1_026_000, r#"{"type":"state"}"#, None);
        b.push(1_027_000, &state(0.7, 0.1, 4), Some("{not health"));
        let r = b.finish();
        assert_eq!(r.summary.snapshots, 7);
        assert_eq!(r.summary.corrupt_snapshots, 1);
        assert_eq!(r.gaps.len(), 2, "{:?}", r.gaps);
        assert_eq!((r.gaps[0].from, r.gaps[0].to), (4.0, 25.0));
        assert_eq!(r.gaps[0].reason, "no_snapshots");
        assert_eq!((r.gaps[1].from, r.gaps[1].to), (25.0, 27.0));
        assert_eq!(r.gaps[1].reason, "corrupt");
        assert_eq!(r.summary.inputs, None, "no health recorded");
        assert!(!r.health.recorded);
        let c = r.summary.most_contested.expect("contested");
        assert_eq!((c.t, c.agreement), (27.0, 0.1));
        assert_eq!(r.summary.duration_s, 27.0);

        let range = Some(TimeRange {
            from: 2.0,
            to: 25.0,
        });
        let mut b = Builder::new(spec(), show(), range);
        for s in 0..30 {
            b.push(1_000_000 + s * 1000, &state(0.5, 0.9, 4), None);
        }
        let r = b.finish();
        assert_eq!(r.summary.snapshots, 24);
        assert_eq!(r.params[0].t.first(), Some(&2.0));
        assert_eq!(r.params[0].t.last(), Some(&25.0));
        assert_eq!(r.params[0].heat.median.last(), Some(&Some(0.375)));
    }

    #[test]
    fn long_shows_are_averaged_into_buckets() {
        let mut b = Builder::new(spec(), show(), None);
        for s in 0..3_000 {
            b.push(s * 1000, &state((s % 2) as f64, 0.5, 4), None);
        }
        let r = b.finish();
        let p = &r.params[0];
        assert!(p.t.len() <= MAX_LINE_BUCKETS && p.t.len() > MAX_LINE_BUCKETS / 2);
        assert_eq!(p.heat.cells.len(), MAX_HEAT_BUCKETS);
        // Alternating 0 and 1 averages to about a half in every bucket.
        assert!(
            p.value.iter().all(|v| (v - 0.5).abs() < 0.2),
            "{:?}",
            &p.value[..5]
        );
        assert_eq!(p.stats.mean, 0.5);
        assert_eq!((p.stats.min, p.stats.max), (0.0, 1.0));
    }

    #[test]
    fn grid_indexes_clamp_to_the_ends() {
        let g = Grid::new(10.0, 20.0, 5);
        assert_eq!(g.index(10.0), 0);
        assert_eq!(g.index(20.0), 4);
        assert_eq!(g.index(-5.0), 0);
        assert_eq!(g.index(99.0), 4);
        assert_eq!(g.start(2), 14.0);
    }
}
