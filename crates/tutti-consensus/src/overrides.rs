//! Performer overrides: their data types, the table of active ones, and how they apply.
//!
//! Overrides act on the smoothed audience value in a fixed order, clamping into the
//! parameter's range after every stage:
//!
//! 1. **clamp** `v = clamp(v, lo, hi)`
//! 2. **bias** `v += amount`
//! 3. **blend** `v = (1 − factor)·v + factor·target`
//! 4. **lock** `v = value`
//! 5. **freeze** `v =` the published value at the moment the freeze was set
//!
//! Several performers may hold the same mode on the same parameter; one wins per mode: the
//! highest `priority` (role rank), then the latest `set_at`, then the highest `by` (so the
//! result never depends on insertion order). An override with `expires_at <= now` is dropped
//! at the next tick.
//!
//! This module must never allocate while ticking: expiry uses `retain` and the list of
//! active overrides is written into a vector reserved for all five modes.

use serde::{Deserialize, Serialize};

use crate::config::ParamId;

/// What an override does (see the module documentation for the order they apply in).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum OverrideMode {
    /// Restrict the value to `lo..=hi` (parameter units).
    Clamp {
        /// Lower bound.
        lo: f64,
        /// Upper bound (at least `lo`).
        hi: f64,
    },
    /// Add `amount` (parameter units) to the value.
    Bias {
        /// Offset, may be negative.
        amount: f64,
    },
    /// Mix the value with `target`: `(1 − factor)·v + factor·target`.
    Blend {
        /// The performer's value.
        target: f64,
        /// `0` = audience only, `1` = performer only.
        factor: f64,
    },
    /// Set the value outright.
    Lock {
        /// The value (clamped into the parameter's range).
        value: f64,
    },
    /// Hold the value published when the freeze was set.
    Freeze,
}

/// The five override modes without their data (used to name and clear them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// [`OverrideMode::Clamp`].
    Clamp,
    /// [`OverrideMode::Bias`].
    Bias,
    /// [`OverrideMode::Blend`].
    Blend,
    /// [`OverrideMode::Lock`].
    Lock,
    /// [`OverrideMode::Freeze`].
    Freeze,
}

impl OverrideKind {
    /// All kinds in the order they apply.
    pub const ORDER: [OverrideKind; 5] = [
        OverrideKind::Clamp,
        OverrideKind::Bias,
        OverrideKind::Blend,
        OverrideKind::Lock,
        OverrideKind::Freeze,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl OverrideMode {
    /// The mode's kind.
    pub fn kind(&self) -> OverrideKind {
        match self {
            OverrideMode::Clamp { .. } => OverrideKind::Clamp,
            OverrideMode::Bias { .. } => OverrideKind::Bias,
            OverrideMode::Blend { .. } => OverrideKind::Blend,
            OverrideMode::Lock { .. } => OverrideKind::Lock,
            OverrideMode::Freeze => OverrideKind::Freeze,
        }
    }
}

/// A performer's override of one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The parameter.
    pub param: ParamId,
    /// What it does.
    pub mode: OverrideMode,
    /// Role rank of the performer; higher wins.
    pub priority: u8,
    /// The performer's id (an override replaces the same performer's one of the same kind).
    pub by: u32,
    /// When it was set (engine time, seconds).
    pub set_at: f64,
    /// When it stops applying; `None` = until cleared.
    pub expires_at: Option<f64>,
}

/// The winning override of one mode on one parameter, as reported in a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ActiveOverride {
    /// The mode and its data.
    pub mode: OverrideMode,
    /// The performer who set it.
    pub by: u32,
    /// Their priority.
    pub priority: u8,
    /// When it was set.
    pub set_at: f64,
    /// When it expires.
    pub expires_at: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    o: Override,
    /// For a freeze: the published value when it was set.
    captured: f64,
}

impl Entry {
    fn beats(&self, other: &Entry) -> bool {
        (self.o.priority, self.o.set_at, self.o.by) > (other.o.priority, other.o.set_at, other.o.by)
    }
}

/// Result of applying the overrides of one parameter.
pub(crate) struct Applied {
    pub(crate) value: f64,
    pub(crate) frozen: bool,
    pub(crate) locked: bool,
}

/// All overrides, per parameter and per kind.
#[derive(Debug, Default)]
pub(crate) struct OverrideTable {
    per_param: Vec<[Vec<Entry>; 5]>,
}

impl OverrideTable {
    pub(crate) fn new(params: usize) -> Self {
        OverrideTable {
            per_param: (0..params).map(|_| Default::default()).collect(),
        }
    }

    /// Inserts `o`, replacing the same performer's override of the same kind.
    /// `published` is the parameter's current published value (captured by a freeze).
    pub(crate) fn set(&mut self, o: Override, published: f64) {
        let list = &mut self.per_param[usize::from(o.param.0)][o.mode.kind().index()];
        let entry = Entry {
            o,
            captured: published,
        };
        match list.iter_mut().find(|e| e.o.by == o.by) {
            Some(existing) => *existing = entry,
            None => list.push(entry),
        }
    }

    /// Removes overrides of `kind` on `param` by `by` (everyone's for `None`); returns how many.
    pub(crate) fn clear(&mut self, param: ParamId, kind: OverrideKind, by: Option<u32>) -> usize {
        let Some(kinds) = self.per_param.get_mut(usize::from(param.0)) else {
            return 0;
        };
        let list = &mut kinds[kind.index()];
        let before = list.len();
        list.retain(|e| by.is_some_and(|b| e.o.by != b));
        before - list.len()
    }

    /// Removes every override.
    pub(crate) fn clear_all(&mut self) {
        for kinds in &mut self.per_param {
            for list in kinds {
                list.clear();
            }
        }
    }

    /// Drops overrides that expired at or before `now`.
    pub(crate) fn expire(&mut self, now: f64) {
        for kinds in &mut self.per_param {
            for list in kinds {
                list.retain(|e| e.o.expires_at.is_none_or(|t| t > now));
            }
        }
    }

    /// Number of overrides held (all parameters, all kinds, all performers).
    pub(crate) fn len(&self) -> usize {
        self.per_param.iter().flatten().map(Vec::len).sum()
    }

    fn winner(list: &[Entry]) -> Option<&Entry> {
        list.iter()
            .fold(None, |best: Option<&Entry>, e| match best {
                Some(b) if !e.beats(b) => Some(b),
                _ => Some(e),
            })
    }

    /// Applies `param`'s overrides to `v` within `lo..=hi`, writing the winners into `active`
    /// (which is cleared first and must have capacity for five entries).
    pub(crate) fn apply(
        &self,
        param: usize,
        mut v: f64,
        lo: f64,
        hi: f64,
        active: &mut Vec<ActiveOverride>,
    ) -> Applied {
        active.clear();
        let mut frozen = false;
        let mut locked = false;
        for (k, list) in self.per_param[param].iter().enumerate() {
            let Some(e) = Self::winner(list) else {
                continue;
            };
            v = match e.o.mode {
                OverrideMode::Clamp { lo: a, hi: b } => v.clamp(a, b),
                OverrideMode::Bias { amount } => v + amount,
                OverrideMode::Blend { target, factor } => (1.0 - factor) * v + factor * target,
                OverrideMode::Lock { value } => {
                    locked = true;
                    value
                }
                OverrideMode::Freeze => {
                    frozen = true;
                    e.captured
                }
            }
            .clamp(lo, hi);
            debug_assert_eq!(k, e.o.mode.kind().index());
            active.push(ActiveOverride {
                mode: e.o.mode,
                by: e.o.by,
                priority: e.o.priority,
                set_at: e.o.set_at,
                expires_at: e.o.expires_at,
            });
        }
        Applied {
            value: v,
            frozen,
            locked,
        }
    }
}
