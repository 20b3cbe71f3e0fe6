//! The engine: participants in, one [`Snapshot`] per tick out.
//!
//! [`Engine`] ties the input store (slots, latest inputs, running sums), the aggregation
//! rules, time-based smoothing and the override table together. A tick reads the running
//! sums (or, with the agreement term on, makes one pass over the inputs), aggregates per
//! parameter, smooths over the elapsed time, applies overrides and rewrites the engine's
//! snapshot in place.
//!
//! This module must never read a clock, do I/O, spawn threads or allocate while ticking.

use crate::aggregate;
use crate::config::{Aggregation, EngineConfig, ParamId, ParamKind, ParticipantId, ZoneId};
use crate::crowd::{LatestInput, Member};
use crate::error::{ConfigError, InputError, OverrideError, PartialsError};
use crate::overrides::{Override, OverrideKind, OverrideMode, OverrideTable};
use crate::partials::{ParamPartial, Partials};
use crate::smoothing;
use crate::snapshot::{ParamOutput, Snapshot};
use crate::store::Store;

/// An input value: a number for a continuous parameter, a choice index for a discrete one.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputValue {
    /// A value within the parameter's range.
    Continuous(f64),
    /// A choice index `0..choices`.
    Choice(u32),
}

/// How the raw aggregate of a parameter is computed.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Mean,
    Median,
    Trimmed(f64),
    Plurality { hysteresis: f64 },
}

/// Everything the hot path needs to know about a parameter, precomputed from its config.
#[derive(Clone, Copy, Debug)]
struct Meta {
    discrete: bool,
    min: f64,
    max: f64,
    range: f64,
    step: Option<f64>,
    choices: u32,
    default: f64,
    rule: Rule,
    tau: Option<f64>,
    /// Slew limit in parameter units per second.
    slew: Option<f64>,
}

impl Meta {
    fn new(cfg: &crate::ParamConfig) -> Self {
        let (min, max) = cfg.kind.range();
        let (discrete, step, choices, hysteresis) = match cfg.kind {
            ParamKind::Continuous { step, .. } => (false, step, 0, 0.0),
            ParamKind::Discrete {
                choices,
                hysteresis,
                ..
            } => (true, None, choices, hysteresis),
        };
        let rule = match cfg.aggregation {
            _ if discrete => Rule::Plurality { hysteresis },
            Aggregation::Mean => Rule::Mean,
            Aggregation::TrimmedMean { trim } => Rule::Trimmed(trim),
            // `Plurality` on a continuous parameter is rejected by validation.
            Aggregation::Median | Aggregation::Plurality => Rule::Median,
        };
        let range = max - min;
        Meta {
            discrete,
            min,
            max,
            range,
            step,
            choices,
            default: cfg.kind.default_value(),
            rule,
            tau: cfg.smoothing.time_constant,
            slew: cfg.smoothing.slew_per_second.map(|s| s * range),
        }
    }

    /// Validates an input and returns it in unit form.
    #[inline]
    /// The value an input of unit form `u` was submitted as (the inverse of [`Meta::unit`]).
    fn value_of_unit(&self, u: f64) -> InputValue {
        if self.discrete {
            InputValue::Choice(u as u32)
        } else {
            InputValue::Continuous((self.min + u * self.range).clamp(self.min, self.max))
        }
    }

    fn unit(&self, v: InputValue) -> Result<f64, InputError> {
        match (self.discrete, v) {
            (false, InputValue::Continuous(x)) => {
                if !x.is_finite() {
                    return Err(InputError::NotFinite);
                }
                if x < self.min || x > self.max {
                    return Err(InputError::OutOfRange {
                        min: self.min,
                        max: self.max,
                    });
                }
                let x = match self.step {
                    Some(step) => (self.min + ((x - self.min) / step).round() * step).min(self.max),
                    None => x,
                };
                Ok(((x - self.min) / self.range).clamp(0.0, 1.0))
            }
            (true, InputValue::Choice(c)) => {
                if c >= self.choices {
                    return Err(InputError::InvalidChoice {
                        choices: self.choices,
                    });
                }
                Ok(f64::from(c))
            }
            _ => Err(InputError::WrongType),
        }
    }

    /// A value in parameter units, clamped into range (rounded for a discrete parameter).
    fn clamp(&self, v: f64) -> f64 {
        let v = v.clamp(self.min, self.max);
        if self.discrete {
            v.round()
        } else {
            v
        }
    }

    /// A published value in unit form (for the agreement term).
    fn unit_of(&self, v: f64) -> f64 {
        if self.discrete {
            v
        } else {
            (v - self.min) / self.range
        }
    }
}

/// Output-side state: smoothing, hysteresis, overrides and the reused snapshot.
#[derive(Debug)]
struct Output {
    bypass: bool,
    last_time: Option<f64>,
    /// Smoothed audience value per parameter (before overrides).
    smoothed: Vec<f64>,
    /// Current plurality choice per parameter (discrete only).
    choice: Vec<u32>,
    overrides: OverrideTable,
    snapshot: Snapshot,
    /// Per fine bin: the display bin it starts in and the fraction of its width inside it
    /// (the rest goes to the next display bin).
    hist_split: Vec<(usize, f32)>,
}

impl Output {
    fn new(cfg: &EngineConfig, meta: &[Meta]) -> Self {
        let bins = cfg.histogram_bins;
        let fine = crate::FINE_BINS;
        let hist_split = (0..fine)
            .map(|i| {
                // Fine bin i spans [i·bins, (i+1)·bins) in units of 1/(fine·bins).
                let start = i * bins;
                let j = start / fine;
                let boundary = (j + 1) * fine;
                if start + bins <= boundary {
                    (j, 1.0)
                } else {
                    (j, (boundary - start) as f32 / bins as f32)
                }
            })
            .collect();
        let params = meta
            .iter()
            .map(|m| ParamOutput {
                value: m.default,
                raw: None,
                participants: 0,
                participation: 0.0,
                agreement: 0.0,
                dispersion: 0.0,
                histogram: vec![0.0; if m.discrete { 0 } else { bins }],
                choice_weights: vec![0.0; m.choices as usize],
                overrides: Vec::with_capacity(OverrideKind::ORDER.len()),
                frozen: false,
                locked: false,
            })
            .collect();
        Output {
            bypass: false,
            last_time: None,
            smoothed: meta.iter().map(|m| m.default).collect(),
            choice: meta.iter().map(|m| m.default as u32).collect(),
            overrides: OverrideTable::new(meta.len()),
            snapshot: Snapshot {
                tick: 0,
                time: 0.0,
                bypass: false,
                participants: 0,
                params,
            },
            hist_split,
        }
    }

    /// A usable time: `now` if finite, else the last tick's time.
    fn sane_time(&self, now: f64) -> f64 {
        if now.is_finite() {
            now
        } else {
            self.last_time.unwrap_or(0.0)
        }
    }

    /// Resets every output to its parameter's default (used by `reset`).
    fn reset(&mut self, meta: &[Meta]) {
        self.overrides.clear_all();
        for (p, m) in meta.iter().enumerate() {
            self.smoothed[p] = m.default;
            self.choice[p] = m.default as u32;
            let out = &mut self.snapshot.params[p];
            out.value = m.default;
            out.raw = None;
            out.participants = 0;
            out.participation = 0.0;
            out.agreement = 0.0;
            out.dispersion = 0.0;
            out.histogram.fill(0.0);
            out.choice_weights.fill(0.0);
            out.overrides.clear();
            out.frozen = false;
            out.locked = false;
        }
    }

    /// Finishes a tick from per-parameter sums (any common scale per parameter).
    fn finish(&mut self, meta: &[Meta], parts: &[ParamPartial], joined: u64, now: f64) {
        let dt = match self.last_time {
            Some(t) if now > t => now - t,
            _ => 0.0,
        };
        self.last_time = Some(self.last_time.map_or(now, |t| t.max(now)));
        self.overrides.expire(now);
        let snap = &mut self.snapshot;
        snap.tick += 1;
        snap.time = now;
        snap.bypass = self.bypass;
        snap.participants = joined;
        for (p, (m, part)) in meta.iter().zip(parts).enumerate() {
            let out = &mut snap.params[p];
            let raw = match m.rule {
                Rule::Mean => aggregate::moments(part).map(|(mean, _)| mean),
                Rule::Median => aggregate::median(part),
                Rule::Trimmed(trim) => aggregate::trimmed_mean(part, trim),
                Rule::Plurality { hysteresis } => match aggregate::plurality(part) {
                    Some((best, total)) => {
                        let current = self.choice[p] as usize;
                        let lead = part.bin_w[best] - part.bin_w[current].max(0.0);
                        if best != current && lead / total > hysteresis + aggregate::TIE {
                            // `best` indexes a bin, and bins are `choices: u32` many.
                            self.choice[p] = best as u32;
                        }
                        Some(f64::from(self.choice[p]))
                    }
                    // Nobody votes: the current choice stands.
                    None => None,
                },
            };
            let raw = raw.map(|u| {
                if m.discrete {
                    u
                } else {
                    m.clamp(m.min + u * m.range)
                }
            });
            // Without inputs a parameter holds its value (the crowd left it there, and a
            // show resumed after a restart keeps its state); bypass returns to the default.
            let target = match raw {
                _ if self.bypass => m.default,
                Some(x) => x,
                None if m.discrete => f64::from(self.choice[p]),
                None => self.smoothed[p],
            };
            let y = if m.discrete {
                target
            } else {
                m.clamp(smoothing::advance(
                    self.smoothed[p],
                    target,
                    dt,
                    m.tau,
                    m.slew,
                ))
            };
            self.smoothed[p] = y;
            let applied = self.overrides.apply(p, y, m.min, m.max, &mut out.overrides);
            out.value = m.clamp(applied.value);
            out.frozen = applied.frozen;
            out.locked = applied.locked;
            out.raw = raw;
            out.participants = u32::try_from(part.inputs).unwrap_or(u32::MAX);
            out.participation = if joined > 0 {
                (part.inputs as f64 / joined as f64).min(1.0)
            } else {
                0.0
            };
            let (std, total) = match aggregate::moments(part) {
                Some((_, std)) => (std, part.bin_w.iter().map(|w| w.max(0.0)).sum::<f64>()),
                None => (0.0, 0.0),
            };
            if m.discrete {
                out.dispersion = std;
                if total > 0.0 {
                    for (dst, &w) in out.choice_weights.iter_mut().zip(&part.bin_w) {
                        *dst = (w.max(0.0) / total) as f32;
                    }
                    out.agreement = raw
                        .map_or(0.0, |c| part.bin_w[c as usize].max(0.0) / total)
                        .clamp(0.0, 1.0);
                } else {
                    out.choice_weights.fill(0.0);
                    out.agreement = 0.0;
                }
            } else {
                out.dispersion = std * m.range;
                out.histogram.fill(0.0);
                if total > 0.0 {
                    out.agreement = (1.0 - 2.0 * std).clamp(0.0, 1.0);
                    for (&w, &(j, f)) in part.bin_w.iter().zip(&self.hist_split) {
                        let share = (w.max(0.0) / total) as f32;
                        out.histogram[j] += share * f;
                        if f < 1.0 {
                            out.histogram[j + 1] += share * (1.0 - f);
                        }
                    }
                } else {
                    out.agreement = 0.0;
                }
            }
        }
    }
}

/// The consensus engine. See the crate documentation for the model.
pub struct Engine {
    cfg: EngineConfig,
    meta: Vec<Meta>,
    store: Store,
    out: Output,
    /// Agreement-weighted sums, rebuilt each tick when `agreement > 0`.
    scratch: Vec<ParamPartial>,
    /// Published values in unit form (input of the agreement term).
    current: Vec<f64>,
}

impl std::fmt::Debug for Engine {
    /// A summary: the inputs of a million participants are not worth printing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("params", &self.meta.len())
            .field("participants", &self.store.joined)
            .field("tick", &self.out.snapshot.tick)
            .field("time", &self.out.snapshot.time)
            .field("bypass", &self.out.bypass)
            .field("overrides", &self.out.overrides.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Validates `cfg` and builds an engine with no participants.
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        Engine::with_capacity(cfg, 0)
    }

    /// Like [`Engine::new`], with room for `participants` slots reserved up front.
    pub fn with_capacity(cfg: EngineConfig, participants: usize) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let meta: Vec<Meta> = cfg.params.iter().map(Meta::new).collect();
        let bins: Vec<(bool, usize)> = cfg
            .params
            .iter()
            .map(|p| (p.kind.is_discrete(), ParamPartial::bins_for(&p.kind)))
            .collect();
        let store = Store::new(
            cfg.recency_half_life,
            cfg.agreement,
            cfg.zone_weights.clone(),
            &bins,
            participants,
        );
        let out = Output::new(&cfg, &meta);
        let scratch = if cfg.agreement > 0.0 {
            bins.iter().map(|&(_, n)| ParamPartial::new(n)).collect()
        } else {
            Vec::new()
        };
        Ok(Engine {
            current: meta.iter().map(|m| m.unit_of(m.default)).collect(),
            cfg,
            meta,
            store,
            out,
            scratch,
        })
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Adds a participant in `zone` (zone weight 1 without one) with `trust` (1 = normal,
    /// 0 = muted, at most `MAX_WEIGHT`).
    ///
    /// Reuses a free slot if there is one; never allocates then.
    pub fn join(&mut self, zone: Option<ZoneId>, trust: f64) -> Result<ParticipantId, InputError> {
        self.store.join(zone, trust)
    }

    /// Removes a participant and its inputs from every aggregate. Returns whether it was
    /// present (a stale or unknown handle changes nothing).
    pub fn leave(&mut self, p: ParticipantId) -> bool {
        match self.store.slot(p) {
            Ok(slot) => {
                self.store.leave(slot);
                true
            }
            Err(_) => false,
        }
    }

    /// Every joined participant with its latest inputs, their ages taken at `now`, in slot
    /// order: what a restart needs to bring the crowd back with [`Engine::readmit`].
    /// O(participants · params) and allocates: for a periodic snapshot, not the input path.
    pub fn crowd(&self, now: f64) -> Vec<Member> {
        self.store
            .members()
            .map(|(slot, id, zone, trust)| Member {
                id,
                zone,
                trust,
                inputs: self
                    .meta
                    .iter()
                    .enumerate()
                    .map(|(p, m)| {
                        self.store.latest(p, slot).map(|(u, time)| LatestInput {
                            value: m.value_of_unit(u),
                            age: time.map_or(0.0, |t| (now - t).max(0.0)),
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    /// Brings back a participant exported by [`Engine::crowd`] under the same handle, with
    /// its inputs as old as they were then (each is submitted at `now − age`). Everything is
    /// checked before anything changes: an input is validated like a submitted one, its age
    /// must be finite and not negative, and the slot must be free
    /// ([`InputError::SlotUnavailable`] otherwise).
    pub fn readmit(&mut self, m: &Member, now: f64) -> Result<ParticipantId, InputError> {
        if !now.is_finite() {
            return Err(InputError::NotFinite);
        }
        if m.inputs.len() > self.meta.len()
            && m.inputs[self.meta.len()..].iter().any(Option::is_some)
        {
            return Err(InputError::UnknownParam);
        }
        let mut units = Vec::with_capacity(m.inputs.len());
        for (meta, input) in self.meta.iter().zip(&m.inputs) {
            let Some(input) = input else {
                units.push(None);
                continue;
            };
            if !input.age.is_finite() || input.age < 0.0 {
                return Err(InputError::NotFinite);
            }
            units.push(Some((meta.unit(input.value)?, now - input.age)));
        }
        let slot = self.store.readmit(m.id, m.zone, m.trust)?;
        for (p, unit) in units.into_iter().enumerate() {
            if let Some((u, at)) = unit {
                self.store.put(p, slot, u, at);
            }
        }
        Ok(m.id)
    }

    /// Changes a participant's trust; its inputs are reweighted at once.
    pub fn set_trust(&mut self, p: ParticipantId, trust: f64) -> Result<(), InputError> {
        let slot = self.store.slot(p)?;
        self.store.set_trust(slot, trust)
    }

    /// Records participant `p`'s input `v` on `param` at time `now`, replacing its previous
    /// input on that parameter. O(1); a rejected input changes nothing.
    pub fn submit(
        &mut self,
        p: ParticipantId,
        param: ParamId,
        v: InputValue,
        now: f64,
    ) -> Result<(), InputError> {
        let slot = self.store.slot(p)?;
        let index = usize::from(param.0);
        let meta = self.meta.get(index).ok_or(InputError::UnknownParam)?;
        let u = meta.unit(v)?;
        if !now.is_finite() {
            return Err(InputError::NotFinite);
        }
        self.store.put(index, slot, u, now);
        Ok(())
    }

    /// Sets a performer override, replacing the same performer's override of the same kind on
    /// the same parameter. A freeze holds the value published by the last tick.
    pub fn set_override(&mut self, o: Override) -> Result<(), OverrideError> {
        let index = usize::from(o.param.0);
        if index >= self.meta.len() {
            return Err(OverrideError::UnknownParam);
        }
        let finite = |field: &'static str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(OverrideError::NotFinite { field })
            }
        };
        finite("set_at", o.set_at)?;
        if let Some(t) = o.expires_at {
            finite("expires_at", t)?;
            if t <= o.set_at {
                return Err(OverrideError::ExpiresBeforeSet {
                    set_at: o.set_at,
                    expires_at: t,
                });
            }
        }
        match o.mode {
            OverrideMode::Clamp { lo, hi } => {
                finite("lo", lo)?;
                finite("hi", hi)?;
                if lo > hi {
                    return Err(OverrideError::InvalidClamp { lo, hi });
                }
            }
            OverrideMode::Bias { amount } => finite("amount", amount)?,
            OverrideMode::Blend { target, factor } => {
                finite("target", target)?;
                finite("factor", factor)?;
                if !(0.0..=1.0).contains(&factor) {
                    return Err(OverrideError::InvalidBlendFactor { factor });
                }
            }
            OverrideMode::Lock { value } => finite("value", value)?,
            OverrideMode::Freeze => {}
        }
        let published = self.out.snapshot.params[index].value;
        self.out.overrides.set(o, published);
        Ok(())
    }

    /// Removes overrides of `kind` on `param` set by performer `by` (everyone's for `None`).
    /// Returns how many were removed.
    pub fn clear_override(&mut self, param: ParamId, kind: OverrideKind, by: Option<u32>) -> usize {
        self.out.overrides.clear(param, kind, by)
    }

    /// Number of overrides held (every parameter, mode and performer, expired ones included
    /// until the next tick drops them).
    pub fn override_count(&self) -> usize {
        self.out.overrides.len()
    }

    /// Global reset: every input and override is cleared and every value returns to its
    /// default at once. Participants stay joined; bypass is unchanged. O(participants).
    pub fn reset(&mut self) {
        self.store.clear_inputs();
        self.out.reset(&self.meta);
        for (c, m) in self.current.iter_mut().zip(&self.meta) {
            *c = m.unit_of(m.default);
        }
    }

    /// "Bypass audience": while on, every parameter's target is its default (smoothing still
    /// applies, so the value glides there) and overrides still apply. Inputs are still
    /// recorded and `raw` still reports the audience.
    pub fn set_bypass(&mut self, on: bool) {
        self.out.bypass = on;
    }

    /// Whether the audience is bypassed.
    pub fn bypass(&self) -> bool {
        self.out.bypass
    }

    /// Resumes after a restart: sets each parameter's smoothed and published value (and a
    /// discrete parameter's current choice) from `values`, indexed like the parameters.
    /// Non-finite entries are skipped, others clamped into range; extra entries are ignored.
    pub fn restore(&mut self, values: &[f64]) {
        for (p, (m, &v)) in self.meta.iter().zip(values).enumerate() {
            if !v.is_finite() {
                continue;
            }
            let v = m.clamp(v);
            self.out.smoothed[p] = v;
            if m.discrete {
                self.out.choice[p] = v as u32;
            }
            self.out.snapshot.params[p].value = v;
            self.current[p] = m.unit_of(v);
        }
    }

    /// Number of participants joined.
    pub fn participants(&self) -> usize {
        usize::try_from(self.store.joined).unwrap_or(usize::MAX)
    }

    /// The snapshot of the last tick (defaults before the first).
    pub fn snapshot(&self) -> &Snapshot {
        &self.out.snapshot
    }

    /// Advances to time `now` and returns the new state. O(bins · params), plus one pass over
    /// the inputs when the agreement term is on. Never allocates.
    ///
    /// A non-finite `now` is treated as the previous tick's time.
    pub fn tick(&mut self, now: f64) -> &Snapshot {
        let now = self.out.sane_time(now);
        self.store.maintain(now);
        let parts = if self.cfg.agreement > 0.0 {
            self.store.agreement_pass(&self.current, &mut self.scratch);
            &self.scratch
        } else {
            &self.store.sums
        };
        self.out.finish(&self.meta, parts, self.store.joined, now);
        self.sync_current();
        &self.out.snapshot
    }

    fn sync_current(&mut self) {
        for ((c, m), out) in self
            .current
            .iter_mut()
            .zip(&self.meta)
            .zip(&self.out.snapshot.params)
        {
            *c = m.unit_of(out.value);
        }
    }

    /// This engine's partial aggregates, with weights evaluated at time `now` (allocates; see
    /// [`Engine::partials_into`] to reuse a buffer).
    pub fn partials(&self, now: f64) -> Partials {
        let mut out = Partials::empty(&self.cfg, now);
        self.partials_into(now, &mut out);
        out
    }

    /// Writes this engine's partial aggregates at time `now` into `out`, reusing its memory
    /// when it already has this engine's shape.
    pub fn partials_into(&self, now: f64, out: &mut Partials) {
        let now = self.out.sane_time(now);
        if !out.fits(&self.cfg) {
            *out = Partials::empty(&self.cfg, now);
        }
        out.time = now;
        out.half_life = self.cfg.recency_half_life;
        out.participants = self.store.joined;
        if self.cfg.agreement > 0.0 {
            self.store.agreement_pass(&self.current, &mut out.params);
            for (p, dst) in out.params.iter_mut().enumerate() {
                dst.log2_scale = self.time_shift(p, now);
            }
        } else {
            for (p, dst) in out.params.iter_mut().enumerate() {
                self.store.export(p, dst, self.time_shift(p, now));
            }
        }
    }

    /// log2 of the factor turning parameter `p`'s epoch-relative weights into weights at `now`.
    fn time_shift(&self, p: usize, now: f64) -> f64 {
        match self.cfg.recency_half_life {
            Some(h) => (self.store.epoch(p) - now) / h,
            None => 0.0,
        }
    }

    /// Finishes a tick from partials merged across shards (this engine's own inputs are not
    /// read). Smoothing, hysteresis, overrides and bypass use this engine's state, so with
    /// several shards call it on every shard (it is O(bins · params)) to keep their outputs,
    /// and the agreement term's reference, identical.
    pub fn tick_from(&mut self, merged: &Partials, now: f64) -> Result<&Snapshot, PartialsError> {
        merged.check(&self.cfg)?;
        let now = self.out.sane_time(now);
        self.store.maintain(now);
        self.out
            .finish(&self.meta, &merged.params, merged.participants, now);
        self.sync_current();
        Ok(&self.out.snapshot)
    }
}
