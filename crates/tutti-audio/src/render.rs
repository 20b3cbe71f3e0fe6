//! Offline rendering (behind `tutti render`) and the piece-mapping helper that turns the
//! consensus state into engine control updates.
//!
//! [`render_offline`] runs the same [`Engine`] as a show, on the calling thread, as fast as
//! it can: no threads, no clock, every random choice seeded by [`EngineConfig::seed`], so the
//! same inputs give a bit-identical output. Control events apply at the first block boundary
//! at or after their time (blocks of [`EngineConfig::block_frames`]: 5.3 ms at the defaults);
//! the engine's one-block FIFO delay is removed, so event times line up with the output.
//!
//! [`PieceControls`] validates once, at start, that every mapping of a piece targets a
//! control the engine has, and then maps one tick's parameter values to
//! `(ControlId, value)` updates with [`tutti_spec::Mapping::apply`].
//!
//! Must never: be used from the audio thread (it allocates freely).

use std::path::Path;

use tutti_spec::{Mapping, ParamSpec, PieceSpec};

use crate::controls::{self, ControlId};
use crate::engine::{Engine, EngineConfig, EngineHandle};
use crate::AudioError;

/// One control change in a render timeline: `(name, value)`.
pub type NamedUpdate = (String, f32);

/// Renders `duration_s` seconds of the engine's output, applying the timeline's control
/// updates (`(seconds, [(voice.control, value)])`, times non-decreasing). Deterministic.
pub fn render_offline(
    config: &EngineConfig,
    timeline: &[(f64, Vec<NamedUpdate>)],
    duration_s: f64,
) -> Result<Vec<[f32; 2]>, AudioError> {
    if !(duration_s.is_finite() && (0.0..=24.0 * 3600.0).contains(&duration_s)) {
        return Err(AudioError::InvalidConfig {
            field: "duration_s",
            value: duration_s.to_string(),
            reason: "must be within 0 ..= 86400 seconds".into(),
        });
    }
    // Resolve and check everything before rendering a sample.
    let mut events: Vec<(u64, Vec<(ControlId, f32)>)> = Vec::with_capacity(timeline.len());
    let mut prev = 0.0f64;
    for (i, (t, updates)) in timeline.iter().enumerate() {
        if !(t.is_finite() && *t >= 0.0) {
            return Err(AudioError::InvalidTimeline {
                index: i,
                reason: format!("time {t} is not a finite, non-negative number of seconds"),
            });
        }
        if *t < prev {
            return Err(AudioError::InvalidTimeline {
                index: i,
                reason: format!("time {t} s comes before the previous entry's {prev} s"),
            });
        }
        prev = *t;
        let mut resolved = Vec::with_capacity(updates.len());
        for (name, v) in updates {
            let id = controls::control_id(name).map_err(|e| AudioError::InvalidTimeline {
                index: i,
                reason: e.to_string(),
            })?;
            if !v.is_finite() {
                return Err(AudioError::InvalidTimeline {
                    index: i,
                    reason: format!("value {v} of '{name}' is not a finite number"),
                });
            }
            resolved.push((id, *v));
        }
        let frame = (t * config.sample_rate as f64).round() as u64;
        events.push((frame, resolved));
    }
    let (handle, mut core) = Engine::new(config.clone())?;
    let block = config.block_frames;
    let total = (duration_s * config.sample_rate as f64).round() as usize;
    let mut out = Vec::with_capacity(total);
    let mut l = vec![0.0f32; block];
    let mut r = vec![0.0f32; block];
    let mut next = 0usize;
    // Call k of `process` returns the block rendered in call k − 1 and renders block k
    // with the controls set before it. Skipping the first block of output therefore puts
    // block k at output frames [k·block, (k+1)·block): an event at frame f is applied before
    // the first call k with k·block ≥ f.
    let mut rendered_frames: u64 = 0;
    let mut skip = block;
    while out.len() < total {
        while next < events.len() && events[next].0 <= rendered_frames {
            for &(id, v) in &events[next].1 {
                handle.set(id, v)?;
            }
            next += 1;
        }
        core.process(&mut l, &mut r);
        rendered_frames += block as u64;
        for (a, b) in l.iter().zip(&r) {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if out.len() < total {
                out.push([*a, *b]);
            }
        }
    }
    drop(core);
    handle.collect_garbage();
    Ok(out)
}

/// Renders a piece from a timeline of parameter values (`(seconds, values in the spec's
/// parameter order)`, e.g. a recorded show's snapshots), through the piece's mappings.
/// Every mapping must target a control the engine has (see [`PieceControls::new`]).
pub fn render_piece_offline(
    spec: &PieceSpec,
    config: &EngineConfig,
    param_timeline: &[(f64, Vec<f64>)],
    duration_s: f64,
) -> Result<Vec<[f32; 2]>, AudioError> {
    let pc = PieceControls::new(spec)?;
    let mut timeline = Vec::with_capacity(param_timeline.len());
    let mut buf = Vec::new();
    for (i, (t, values)) in param_timeline.iter().enumerate() {
        if values.len() != spec.params.len() {
            return Err(AudioError::InvalidTimeline {
                index: i,
                reason: format!(
                    "{} parameter values given; piece '{}' has {} parameters",
                    values.len(),
                    spec.slug,
                    spec.params.len()
                ),
            });
        }
        buf.clear();
        pc.updates(values, &mut buf);
        timeline.push((
            *t,
            buf.iter()
                .map(|(id, v)| (id.name().to_string(), *v))
                .collect(),
        ));
    }
    render_offline(config, &timeline, duration_s)
}

/// Writes frames as a 32-bit float stereo WAV file (bit-exact).
pub fn write_wav(path: &Path, frames: &[[f32; 2]], sample_rate: u32) -> Result<(), AudioError> {
    let err = |e: hound::Error| AudioError::WavWrite {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for f in frames {
        w.write_sample(f[0]).map_err(err)?;
        w.write_sample(f[1]).map_err(err)?;
    }
    w.finalize().map_err(err)
}

#[derive(Debug, Clone)]
struct Entry {
    param: usize,
    id: ControlId,
    mapping: Mapping,
}

/// A piece's mappings resolved against the engine's controls (see the module docs).
#[derive(Debug, Clone)]
pub struct PieceControls {
    params: Vec<ParamSpec>,
    entries: Vec<Entry>,
}

impl PieceControls {
    /// Resolves every mapping; any target the engine lacks is an error listing all of them
    /// (and the valid names).
    pub fn new(spec: &PieceSpec) -> Result<Self, AudioError> {
        let (pc, unknown) = Self::new_lenient(spec);
        if unknown.is_empty() {
            Ok(pc)
        } else {
            Err(AudioError::UnknownMappingTargets {
                piece: spec.slug.clone(),
                targets: unknown.join(", "),
                valid: controls::valid_control_names(),
            })
        }
    }

    /// Resolves the mappings it can and reports the others as
    /// `params[i].map[j] → target` (for a show that should play what it can).
    pub fn new_lenient(spec: &PieceSpec) -> (Self, Vec<String>) {
        let mut entries = Vec::new();
        let mut unknown = Vec::new();
        for (pi, p) in spec.params.iter().enumerate() {
            for (mi, m) in p.map.iter().enumerate() {
                match controls::control_id(&m.target) {
                    Ok(id) => entries.push(Entry {
                        param: pi,
                        id,
                        mapping: m.clone(),
                    }),
                    Err(_) => unknown.push(format!(
                        "params[{pi}].map[{mi}] ({}) → {}",
                        p.name, m.target
                    )),
                }
            }
        }
        (
            Self {
                params: spec.params.clone(),
                entries,
            },
            unknown,
        )
    }

    /// Number of resolved mappings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no mapping resolved.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the control updates for one tick's parameter values (in the spec's
    /// parameter order; a vote's value is its choice index). Missing values are skipped.
    pub fn updates(&self, values: &[f64], out: &mut Vec<(ControlId, f32)>) {
        for e in &self.entries {
            let Some(&v) = values.get(e.param) else {
                continue;
            };
            let n = self.params[e.param].normalise(v);
            let y = e.mapping.apply(n) as f32;
            if y.is_finite() {
                out.push((e.id, y));
            }
        }
    }

    /// Maps one tick's values and sets them on the engine.
    pub fn apply(&self, handle: &EngineHandle, values: &[f64]) -> Result<(), AudioError> {
        let mut buf = Vec::with_capacity(self.entries.len());
        self.updates(values, &mut buf);
        for (id, v) in buf {
            handle.set(id, v)?;
        }
        Ok(())
    }
}
