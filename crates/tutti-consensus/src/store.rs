//! Participant slots, their latest inputs, and the incrementally maintained per-parameter sums.
//!
//! Inputs are stored per parameter in one contiguous array indexed by slot (`cells[param]
//! [slot]`), each cell holding the input in unit form and its *recency factor*
//! `r = 2^((t − epoch) / h)` relative to the parameter's epoch. An input's weight at time
//! `now` is `r · zone · trust · 2^(−(now − epoch) / h)`; the last factor is common to every
//! input, so it cancels in every aggregate and the running sums `Σ r·zone·trust (·u, ·u²)`
//! and the fine histogram can be kept up to date in O(1) per submit (subtract the old
//! contribution, add the new one) and O(params) per leave or trust change.
//!
//! Two housekeeping passes keep the sums honest:
//! - **Rebase.** When `(now − epoch) / h` grows large, the epoch moves forward by a whole
//!   number `k` of half-lives and every `r` and every sum is multiplied by `2^−k`. That
//!   scaling is exact in binary floating point, so the sums still equal what a recomputation
//!   would give and later subtractions stay exact. One parameter is rebased per tick (past a
//!   soft limit) so the O(participants) cost is spread; a hard limit rebases at once.
//! - **Drift.** Every add or subtract can round by `ε · Σw`. The store adds `Σw` to a
//!   per-parameter *churn* counter per operation, so `churn · ε` bounds the accumulated
//!   error. When the bound passes `1e-9 · Σw` (many operations, or a large cancellation such
//!   as the heaviest inputs leaving) the parameter's sums are recomputed from the cells at a
//!   tick (one such parameter per tick, to spread the O(participants) cost; all of them past
//!   `1e-6 · Σw`), and exported partials of such a parameter are computed afresh. Bins and
//!   totals whose input count drops to zero are reset to exact zeros.
//!
//! This module must never allocate per input: cells are preallocated per slot at join.

use crate::config::{ZoneId, FINE_BINS};
use crate::error::InputError;
use crate::partials::ParamPartial;

/// Rebase (one parameter per tick) when the newest recency exponent passes this.
const SOFT_EXPONENT: f64 = 256.0;
/// Rebase immediately when the newest recency exponent passes this (`2^768 · 10^12` weight
/// per input times millions of inputs stays far below `f64::MAX`).
const HARD_EXPONENT: f64 = 768.0;
/// Relative error bound past which a parameter's sums are recomputed, one parameter per
/// tick (and computed afresh when exported as partials).
const SOFT_DRIFT: f64 = 1e-9;
/// Relative error bound past which every such parameter is recomputed at the next tick.
const HARD_DRIFT: f64 = 1e-6;

/// One participant's latest input on one parameter.
#[derive(Clone, Copy, Debug)]
struct Cell {
    /// Input in unit form; NaN when there is no input.
    u: f64,
    /// Recency factor relative to the parameter's epoch (1 without recency).
    r: f64,
}

impl Cell {
    const EMPTY: Cell = Cell {
        u: f64::NAN,
        r: 0.0,
    };

    #[inline]
    fn is_set(&self) -> bool {
        !self.u.is_nan()
    }
}

/// Fine-histogram bin of an input in unit form.
#[inline]
fn bin_of(discrete: bool, u: f64) -> usize {
    if discrete {
        u as usize
    } else {
        ((u * FINE_BINS as f64) as usize).min(FINE_BINS - 1)
    }
}

#[derive(Clone, Debug)]
struct Slot {
    generation: u32,
    active: bool,
    zone: Option<ZoneId>,
    trust: f64,
}

/// Bookkeeping beside a parameter's sums.
#[derive(Clone, Debug)]
struct Aux {
    /// Inputs per fine bin, to reset emptied bins to exact zeros.
    bin_n: Vec<u32>,
    /// Time at which `r = 1`.
    epoch: f64,
    /// Accumulated magnitude of rounding-error sources since the last recomputation.
    churn: f64,
    /// Last `(now, r)` computed, since many submits share one `now`.
    r_cache: (f64, f64),
}

#[derive(Debug)]
pub(crate) struct Store {
    half_life: Option<f64>,
    /// Strength of the agreement term (0 = off).
    agreement: f64,
    /// With the agreement term on, per continuous parameter and slot:
    /// `g = exp(−agreement · (u − ½))`, so that a tick gets `exp(−agreement · |u − c|)` as
    /// the smaller of `g · exp(agreement · (c − ½))` and `exp(−agreement · (c − ½)) / g`
    /// without an `exp` (or a branch) per input. Centring on ½ keeps both factors finite
    /// for any allowed strength. Empty vectors when the term is off or the parameter is
    /// discrete.
    agree_g: Vec<Vec<f64>>,
    zone_weights: Vec<f64>,
    discrete: Vec<bool>,
    slots: Vec<Slot>,
    /// zone weight × trust per slot (0 for a free slot).
    factor: Vec<f64>,
    free: Vec<u32>,
    pub(crate) joined: u64,
    /// `cells[param][slot]`.
    cells: Vec<Vec<Cell>>,
    /// Running sums per parameter, relative to the parameter's epoch (`log2_scale` = 0).
    pub(crate) sums: Vec<ParamPartial>,
    aux: Vec<Aux>,
}

impl Store {
    pub(crate) fn new(
        half_life: Option<f64>,
        agreement: f64,
        zone_weights: Vec<f64>,
        bins: &[(bool, usize)],
        capacity: usize,
    ) -> Self {
        Store {
            half_life,
            agreement,
            agree_g: bins
                .iter()
                .map(|&(discrete, _)| {
                    if agreement > 0.0 && !discrete {
                        Vec::with_capacity(capacity)
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            zone_weights,
            discrete: bins.iter().map(|&(d, _)| d).collect(),
            slots: Vec::with_capacity(capacity),
            factor: Vec::with_capacity(capacity),
            free: Vec::new(),
            joined: 0,
            cells: bins.iter().map(|_| Vec::with_capacity(capacity)).collect(),
            sums: bins.iter().map(|&(_, n)| ParamPartial::new(n)).collect(),
            aux: bins
                .iter()
                .map(|&(_, n)| Aux {
                    bin_n: vec![0; n],
                    epoch: 0.0,
                    churn: 0.0,
                    r_cache: (f64::NAN, 1.0),
                })
                .collect(),
        }
    }

    /// The epoch of parameter `p` (time at which a stored `r` of 1 means weight 1).
    pub(crate) fn epoch(&self, p: usize) -> f64 {
        self.aux[p].epoch
    }

    /// The slot of a live participant.
    pub(crate) fn slot(&self, id: crate::ParticipantId) -> Result<usize, InputError> {
        let i = id.slot as usize;
        match self.slots.get(i) {
            Some(s) if s.active && s.generation == id.generation => Ok(i),
            _ => Err(InputError::UnknownParticipant),
        }
    }

    fn factor_for(&self, zone: Option<ZoneId>, trust: f64) -> Result<f64, InputError> {
        if !(0.0..=crate::MAX_WEIGHT).contains(&trust) {
            return Err(InputError::InvalidTrust { trust });
        }
        let zone_weight = match zone {
            None => 1.0,
            Some(z) => *self
                .zone_weights
                .get(usize::from(z.0))
                .ok_or(InputError::UnknownZone {
                    zone: z.0,
                    zones: self.zone_weights.len(),
                })?,
        };
        Ok(zone_weight * trust)
    }

    pub(crate) fn join(
        &mut self,
        zone: Option<ZoneId>,
        trust: f64,
    ) -> Result<crate::ParticipantId, InputError> {
        let factor = self.factor_for(zone, trust)?;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => self.grow()?,
        };
        Ok(self.take(slot, zone, trust, factor))
    }

    /// A new free slot at the end (not on the free list).
    fn grow(&mut self) -> Result<u32, InputError> {
        let s = u32::try_from(self.slots.len()).map_err(|_| InputError::TooManyParticipants)?;
        self.slots.push(Slot {
            generation: 0,
            active: false,
            zone: None,
            trust: 0.0,
        });
        self.factor.push(0.0);
        for cells in &mut self.cells {
            cells.push(Cell::EMPTY);
        }
        for (g, &discrete) in self.agree_g.iter_mut().zip(&self.discrete) {
            if self.agreement > 0.0 && !discrete {
                g.push(1.0);
            }
        }
        Ok(s)
    }

    fn take(
        &mut self,
        slot: u32,
        zone: Option<ZoneId>,
        trust: f64,
        factor: f64,
    ) -> crate::ParticipantId {
        let i = slot as usize;
        let s = &mut self.slots[i];
        s.active = true;
        s.zone = zone;
        s.trust = trust;
        self.factor[i] = factor;
        self.joined += 1;
        crate::ParticipantId {
            slot,
            generation: s.generation,
        }
    }

    /// Joins a participant under the handle it had before a restart: the slot must be free
    /// (slots below it that do not exist yet are created free). Cheapest when participants
    /// are readmitted in slot order, as [`Store::members`] lists them.
    pub(crate) fn readmit(
        &mut self,
        id: crate::ParticipantId,
        zone: Option<ZoneId>,
        trust: f64,
    ) -> Result<usize, InputError> {
        let factor = self.factor_for(zone, trust)?;
        let unavailable = InputError::SlotUnavailable { slot: id.slot };
        if id.slot > crate::MAX_READMIT_SLOT {
            return Err(unavailable);
        }
        let i = id.slot as usize;
        if i < self.slots.len() {
            if self.slots[i].active {
                return Err(unavailable);
            }
            // A free slot is on the free list: take it off (most recently freed last).
            if let Some(at) = self.free.iter().rposition(|&s| s == id.slot) {
                self.free.remove(at);
            }
        } else {
            while self.slots.len() < i {
                let s = self.grow()?;
                self.free.push(s);
            }
            self.grow()?;
        }
        self.slots[i].generation = id.generation;
        self.take(id.slot, zone, trust, factor);
        Ok(i)
    }

    /// Every joined participant's slot, handle, zone and trust, in slot order.
    pub(crate) fn members(
        &self,
    ) -> impl Iterator<Item = (usize, crate::ParticipantId, Option<ZoneId>, f64)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active)
            .map(|(i, s)| {
                (
                    i,
                    crate::ParticipantId {
                        slot: i as u32,
                        generation: s.generation,
                    },
                    s.zone,
                    s.trust,
                )
            })
    }

    /// Participant `slot`'s latest input on parameter `p`, in unit form, with its time
    /// (`None` without recency, where an input's time is not kept).
    pub(crate) fn latest(&self, p: usize, slot: usize) -> Option<(f64, Option<f64>)> {
        let cell = self.cells[p][slot];
        if !cell.is_set() {
            return None;
        }
        let time = self
            .half_life
            .map(|h| self.aux[p].epoch + h * cell.r.log2());
        Some((cell.u, time))
    }

    pub(crate) fn leave(&mut self, slot: usize) {
        let f = self.factor[slot];
        for p in 0..self.cells.len() {
            let cell = self.cells[p][slot];
            if cell.is_set() {
                let bin = bin_of(self.discrete[p], cell.u);
                remove(&mut self.sums[p], &mut self.aux[p], cell.u, cell.r * f, bin);
                self.cells[p][slot] = Cell::EMPTY;
            }
        }
        let s = &mut self.slots[slot];
        s.active = false;
        s.generation = s.generation.wrapping_add(1);
        self.factor[slot] = 0.0;
        // Slot indices fit in u32: `join` refuses to create more.
        self.free.push(slot as u32);
        self.joined -= 1;
    }

    pub(crate) fn set_trust(&mut self, slot: usize, trust: f64) -> Result<(), InputError> {
        let new = self.factor_for(self.slots[slot].zone, trust)?;
        let old = self.factor[slot];
        for p in 0..self.cells.len() {
            let cell = self.cells[p][slot];
            if cell.is_set() {
                let bin = bin_of(self.discrete[p], cell.u);
                remove(
                    &mut self.sums[p],
                    &mut self.aux[p],
                    cell.u,
                    cell.r * old,
                    bin,
                );
                add(
                    &mut self.sums[p],
                    &mut self.aux[p],
                    cell.u,
                    cell.r * new,
                    bin,
                );
            }
        }
        self.factor[slot] = new;
        self.slots[slot].trust = trust;
        Ok(())
    }

    /// Recency factor of an input at `now` for parameter `p` (rebasing first if needed).
    #[inline]
    fn recency(&mut self, p: usize, now: f64) -> f64 {
        let Some(h) = self.half_life else {
            return 1.0;
        };
        let aux = &self.aux[p];
        if aux.r_cache.0 == now {
            return aux.r_cache.1;
        }
        if (now - aux.epoch) / h > HARD_EXPONENT {
            self.rebase(p, now);
        }
        let aux = &mut self.aux[p];
        let r = ((now - aux.epoch) / h).exp2();
        aux.r_cache = (now, r);
        r
    }

    /// Stores participant `slot`'s input `u` (unit form) on parameter `p` at time `now`.
    #[inline]
    pub(crate) fn put(&mut self, p: usize, slot: usize, u: f64, now: f64) {
        let discrete = self.discrete[p];
        let f = self.factor[slot];
        let old = self.cells[p][slot];
        if old.is_set() {
            remove(
                &mut self.sums[p],
                &mut self.aux[p],
                old.u,
                old.r * f,
                bin_of(discrete, old.u),
            );
        }
        if self.sums[p].inputs == 0 {
            // Nobody else has input: start a fresh epoch (the sums are exact zeros).
            let aux = &mut self.aux[p];
            aux.epoch = now;
            aux.r_cache = (now, 1.0);
            aux.churn = 0.0;
        }
        let r = self.recency(p, now);
        self.cells[p][slot] = Cell { u, r };
        if let Some(g) = self.agree_g[p].get_mut(slot) {
            *g = (-self.agreement * (u - 0.5)).exp();
        }
        add(
            &mut self.sums[p],
            &mut self.aux[p],
            u,
            r * f,
            bin_of(discrete, u),
        );
    }

    /// Clears every input (participants stay joined).
    pub(crate) fn clear_inputs(&mut self) {
        for cells in &mut self.cells {
            cells.fill(Cell::EMPTY);
        }
        for (sums, aux) in self.sums.iter_mut().zip(&mut self.aux) {
            sums.clear();
            aux.bin_n.fill(0);
            aux.churn = 0.0;
            aux.r_cache = (f64::NAN, 1.0);
        }
    }

    /// Moves parameter `p`'s epoch forward by whole half-lives towards `now`, scaling every
    /// stored factor and sum by the same power of two (exact).
    fn rebase(&mut self, p: usize, now: f64) {
        let Some(h) = self.half_life else {
            return;
        };
        let aux = &mut self.aux[p];
        let k = ((now - aux.epoch) / h).floor();
        if k.is_nan() || k < 1.0 {
            return;
        }
        let scale = pow2_neg(k);
        for cell in &mut self.cells[p] {
            cell.r *= scale;
        }
        let sums = &mut self.sums[p];
        sums.sum_w *= scale;
        sums.sum_wu *= scale;
        sums.sum_wu2 *= scale;
        for w in &mut sums.bin_w {
            *w *= scale;
        }
        for w in &mut sums.bin_wu {
            *w *= scale;
        }
        aux.churn *= scale;
        aux.epoch += k * h;
        aux.r_cache = (f64::NAN, 1.0);
    }

    /// Whether parameter `p`'s accumulated rounding-error bound exceeds `tolerance · Σw`.
    fn drifted(&self, p: usize, tolerance: f64) -> bool {
        self.aux[p].churn * f64::EPSILON > tolerance * self.sums[p].sum_w
    }

    /// Parameter `p`'s sums computed afresh from its cells into `dst` (relative to the
    /// epoch), with per-bin counts into `bin_n` when given.
    fn sum_cells(&self, p: usize, dst: &mut ParamPartial, mut bin_n: Option<&mut [u32]>) {
        let discrete = self.discrete[p];
        dst.clear();
        if let Some(n) = bin_n.as_deref_mut() {
            n.fill(0);
        }
        for (cell, &f) in self.cells[p].iter().zip(&self.factor) {
            if cell.is_set() {
                let bin = bin_of(discrete, cell.u);
                dst.add(cell.u, cell.r * f, bin);
                if let Some(n) = bin_n.as_deref_mut() {
                    n[bin] += 1;
                }
            }
        }
    }

    /// Recomputes parameter `p`'s running sums from its cells.
    fn recompute(&mut self, p: usize) {
        let mut sums = std::mem::replace(&mut self.sums[p], ParamPartial::new(0));
        let mut bin_n = std::mem::take(&mut self.aux[p].bin_n);
        self.sum_cells(p, &mut sums, Some(&mut bin_n));
        self.sums[p] = sums;
        let aux = &mut self.aux[p];
        aux.bin_n = bin_n;
        aux.churn = 0.0;
    }

    /// Parameter `p`'s sums into `dst` (relative to the epoch): a copy of the running sums,
    /// or a fresh computation when their error bound has grown past the soft tolerance.
    pub(crate) fn export(&self, p: usize, dst: &mut ParamPartial, shift: f64) {
        if self.drifted(p, SOFT_DRIFT) {
            self.sum_cells(p, dst, None);
            dst.log2_scale = shift;
        } else {
            dst.assign_scaled(&self.sums[p], shift);
        }
    }

    /// Tick-time housekeeping: rebase epochs that ran far behind `now` and recompute sums
    /// whose rounding-error bound grew too large.
    pub(crate) fn maintain(&mut self, now: f64) {
        if let Some(h) = self.half_life {
            let mut soft_budget = 1;
            for p in 0..self.sums.len() {
                if self.sums[p].inputs == 0 {
                    continue;
                }
                let x = (now - self.aux[p].epoch) / h;
                if x > HARD_EXPONENT || (x > SOFT_EXPONENT && soft_budget > 0) {
                    soft_budget -= 1;
                    self.rebase(p, now);
                }
            }
        }
        let mut soft_budget = 1;
        for p in 0..self.sums.len() {
            if self.drifted(p, HARD_DRIFT) || (soft_budget > 0 && self.drifted(p, SOFT_DRIFT)) {
                soft_budget -= 1;
                self.recompute(p);
            }
        }
    }

    /// Sums weighted by the agreement term `exp(−a · dist(u, current[p]))` into `out`
    /// (relative to each parameter's epoch), where `a` is the configured strength. `dist` is
    /// `|u − c|` in unit form for a continuous parameter and 0/1 (same choice or not) for a
    /// discrete one. One pass over the inputs: O(participants · params).
    pub(crate) fn agreement_pass(&self, current: &[f64], out: &mut [ParamPartial]) {
        let a = self.agreement;
        let far = (-a).exp();
        for (p, dst) in out.iter_mut().enumerate() {
            dst.clear();
            let c = current[p];
            let cells = &self.cells[p];
            if self.discrete[p] {
                for (cell, &f) in cells.iter().zip(&self.factor) {
                    if cell.is_set() {
                        let term = if cell.u == c { 1.0 } else { far };
                        dst.add(cell.u, cell.r * f * term, bin_of(true, cell.u));
                    }
                }
            } else {
                let above = (a * (c - 0.5)).exp();
                let below = (-a * (c - 0.5)).exp();
                for ((cell, &f), &g) in cells.iter().zip(&self.factor).zip(&self.agree_g[p]) {
                    if cell.is_set() {
                        // exp(−a(u − c)) for u ≥ c and exp(a(u − c)) below: the smaller
                        // of the two is always the right one, and `min` needs no branch.
                        let term = (g * above).min(below / g);
                        dst.add(cell.u, cell.r * f * term, bin_of(false, cell.u));
                    }
                }
            }
        }
    }
}

#[inline]
fn add(sums: &mut ParamPartial, aux: &mut Aux, u: f64, w: f64, bin: usize) {
    sums.add(u, w, bin);
    aux.bin_n[bin] += 1;
    aux.churn += sums.sum_w;
}

#[inline]
fn remove(sums: &mut ParamPartial, aux: &mut Aux, u: f64, w: f64, bin: usize) {
    aux.churn += sums.sum_w;
    sums.inputs -= 1;
    if sums.inputs == 0 {
        sums.sum_w = 0.0;
        sums.sum_wu = 0.0;
        sums.sum_wu2 = 0.0;
        aux.churn = 0.0;
    } else {
        let wu = w * u;
        sums.sum_w -= w;
        sums.sum_wu -= wu;
        sums.sum_wu2 -= wu * u;
    }
    aux.bin_n[bin] -= 1;
    if aux.bin_n[bin] == 0 {
        sums.bin_w[bin] = 0.0;
        sums.bin_wu[bin] = 0.0;
    } else {
        sums.bin_w[bin] -= w;
        sums.bin_wu[bin] -= w * u;
    }
}

/// `2^−k` for a whole number `k ≥ 1`, exactly (0 past the subnormal range).
fn pow2_neg(k: f64) -> f64 {
    if k <= 1022.0 {
        // k is a whole number in 1..=1022: the biased exponent 1023 − k is in 1..=1022.
        f64::from_bits((1023 - k as u64) << 52)
    } else if k <= 1074.0 {
        f64::from_bits(1u64 << (1074 - k as u64))
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::pow2_neg;

    #[test]
    fn pow2_neg_is_exact() {
        for k in [1.0, 2.0, 10.0, 300.0, 1022.0, 1023.0, 1074.0] {
            assert_eq!(pow2_neg(k), (-k).exp2(), "k = {k}");
        }
        assert_eq!(pow2_neg(1075.0), 0.0);
    }
}
