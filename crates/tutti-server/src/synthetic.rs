//! A deterministic synthetic show, fed through the real consensus engine and the hub's own
//! state renderer and written to a real store, for the report's tests and its benchmark
//! (`cargo run --release -p tutti-server --example synthetic_show`). Its structure is
//! planted and known: a ramp of joins, a crowd drifting slowly, a lock on the first
//! parameter, two section changes, a split crowd (the most contested moment), zones of
//! different activity.
//!
//! Must never: read a clock or randomness it was not given (the same options give the same
//! store contents), or run as part of a real show.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tutti_consensus::{
    Engine, InputValue, Override, OverrideKind, OverrideMode, ParamId, ParticipantId,
};
use tutti_report::{Health, ZoneHealth};
use tutti_spec::PieceSpec;
use tutti_store::{NewOverride, ShowKind, ShowRow, ShowStatus, SnapshotRow, Store};

use crate::ServerError;
use tutti_show::render::Renderer;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SyntheticShow {
    /// Join code of the show.
    pub code: String,
    /// Length in seconds (one snapshot a second).
    pub seconds: u32,
    /// Participants (all joined after the ramp).
    pub participants: u32,
    /// Continuous parameters (besides the `section` vote), 1–8.
    pub params: usize,
    /// Share of the participants moving in a second (front zone ×1.5, back ×0.5).
    pub moving: f64,
    /// Engine ticks per second of show.
    pub tick_hz: u32,
    /// Randomness seed.
    pub seed: u64,
    /// The show's start, unix ms.
    pub start_ms: i64,
    /// End the show afterwards (otherwise it stays live).
    pub end: bool,
    /// Record an output level (as if the embedded engine played).
    pub audio: bool,
}

impl Default for SyntheticShow {
    fn default() -> Self {
        SyntheticShow {
            code: "SYNTH1".into(),
            seconds: 90,
            participants: 60,
            params: 3,
            moving: 0.3,
            tick_hz: 20,
            seed: 7,
            start_ms: 1_767_225_600_000, // 2026-01-01 00:00 UTC
            end: true,
            audio: true,
        }
    }
}

/// What was planted, for checking a report against.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The show.
    pub show: ShowRow,
    /// The spec it ran.
    pub spec: PieceSpec,
    /// Inputs and votes the engine accepted (all before the last snapshot).
    pub inputs: u64,
    /// The lock on the first parameter: from, to (seconds), value.
    pub lock: (f64, f64, f64),
    /// Section changes: second, section.
    pub sections: Vec<(f64, String)>,
    /// The stretch (seconds) when the crowd split on the second parameter (or the first, if
    /// there is one parameter).
    pub split: (f64, f64),
    /// Override log entries written.
    pub interventions: u64,
}

const NAMES: [&str; 8] = [
    "intensity",
    "brightness",
    "density",
    "space",
    "motion",
    "texture",
    "warmth",
    "tension",
];
const SECTIONS: [&str; 3] = ["calm", "pulse", "storm"];

/// The synthetic piece: `params` continuous parameters 0..1 and a `section` vote, three zones.
pub fn spec(params: usize) -> Result<PieceSpec, ServerError> {
    let mut toml = String::from(
        "slug = \"synthetic\"\ntitle = \"Synthetic show\"\ntick_hz = 20\nstate_hz = 20\n\
         input_rate = 30\nrecency_half_life = 5.0\nhistogram_bins = 16\n\
         [[zones]]\nname = \"front\"\nweight = 1.0\n[[zones]]\nname = \"middle\"\nweight = 1.0\n[[zones]]\nname = \"back\"\nweight = 1.0\n",
    );
    for name in NAMES.iter().take(params.clamp(1, NAMES.len())) {
        toml.push_str(&format!(
            "[[params]]\nname = \"{name}\"\nkind = \"continuous\"\nmin = 0.0\nmax = 1.0\n\
             default = 0.5\nsmoothing = {{ time_constant = 0.3 }}\n"
        ));
    }
    toml.push_str(
        "[[params]]\nname = \"section\"\nkind = \"discrete\"\nchoices = [\"calm\", \"pulse\", \
         \"storm\"]\ndefault_choice = \"calm\"\nhysteresis = 0.1\n",
    );
    PieceSpec::from_toml(&toml).map_err(|source| ServerError::Piece {
        path: "synthetic".into(),
        source,
    })
}

/// Generates the show into `store` and returns what was planted.
pub async fn record(store: &Store, o: &SyntheticShow) -> Result<Recorded, ServerError> {
    let spec = spec(o.params)?;
    let (piece, version) = store
        .ensure_piece(&spec.slug, &spec.title, &spec.to_json())
        .await?;
    let show = store
        .create_show(piece.id, version.id, &o.code, ShowKind::Performance)
        .await?;
    store
        .set_show_status(show.id, ShowStatus::Live, o.start_ms)
        .await?;
    let mut engine = Engine::new(spec.engine_config()).map_err(|e| ServerError::Piece {
        path: "synthetic".into(),
        source: tutti_spec::SpecError::Parse(e.to_string()),
    })?;
    let mut renderer = Renderer::new(&spec);
    renderer.name_performer(1, "performer");
    let mut rng = StdRng::seed_from_u64(o.seed);
    let n = o.participants as usize;
    let continuous = spec.params.len() - 1;
    // Each participant's own lean on each parameter, fixed for the show.
    let offsets: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            (0..continuous)
                .map(|_| rng.random_range(-0.25..0.25))
                .collect()
        })
        .collect();
    let len = f64::from(o.seconds.max(10));
    let ramp = (len / 10.0).min(10.0);
    let lock = ((len * 0.2).round(), (len * 0.35).round(), 0.9);
    let split = ((len * 0.5).round(), (len * 0.55).round());
    let sections = vec![
        (0.0, SECTIONS[0].to_string()),
        ((len / 3.0).round(), SECTIONS[1].to_string()),
        ((len * 2.0 / 3.0).round(), SECTIONS[2].to_string()),
    ];
    let split_param = usize::from(continuous > 1);
    let mut joined: Vec<(ParticipantId, u16)> = Vec::with_capacity(n);
    let mut inputs = 0u64;
    let mut interventions = 0u64;
    let mut batch = Vec::with_capacity(512);
    let (mut delivered, mut buf) = (0u64, String::with_capacity(8192));
    let ticks_per_s = o.tick_hz.max(1);
    // Moving participants between the previous snapshot and the next one.
    let (mut moving, mut moving_by_zone) = (0u32, [0u32; 3]);
    let last = o.seconds.max(10);
    for second in 0..=last {
        let t = f64::from(second);
        // The ticks up to this second; the snapshot is the state at its last one.
        if second == 0 {
            engine.tick(0.0);
        } else {
            for k in 1..=ticks_per_s {
                engine.tick(t - 1.0 + f64::from(k) / f64::from(ticks_per_s));
            }
        }
        let tick = u64::from(second) * u64::from(ticks_per_s) + 1;
        let at_ms = o.start_ms + i64::from(second) * 1000;
        let snap = engine.snapshot();
        renderer.render(&mut buf, snap, tick, "live", 20.0, joined.len(), true, t);
        delivered += joined.len() as u64 * 20;
        let zones = (0..3)
            .map(|z| ZoneHealth {
                connected: joined.iter().filter(|j| usize::from(j.1) == z).count() as u32,
                moving: moving_by_zone[z],
            })
            .collect();
        let health = Health {
            connected: joined.len() as u32,
            moving,
            zones,
            inputs,
            resumes: 0,
            state_rate: 20.0,
            delivered,
            late: 0,
            skipped: 0,
            errors: Default::default(),
            level_dbfs: o.audio.then(|| -40.0 + 30.0 * snap.params[0].value as f32),
        };
        batch.push(SnapshotRow {
            show_id: show.id,
            tick,
            at_ms,
            state_json: buf.clone(),
            health_json: Some(health.to_json()),
        });
        if batch.len() >= 500 {
            store.import_snapshots(std::mem::take(&mut batch)).await?;
        }
        if second == last {
            // Nothing after the last snapshot: every input is in a recorded state.
            break;
        }
        // Joins during the ramp, spread evenly; zone by participant number.
        let due = if t >= ramp {
            n
        } else {
            ((t / ramp) * n as f64) as usize
        };
        while joined.len() < due {
            let zone = (joined.len() % 3) as u16;
            let id = engine
                .join(Some(tutti_consensus::ZoneId(zone)), 1.0)
                .map_err(|e| ServerError::Config(format!("synthetic join: {e}")))?;
            joined.push((id, zone));
        }
        // Inputs of this second.
        (moving, moving_by_zone) = (0, [0; 3]);
        let splitting = t >= split.0 && t < split.1;
        let section_now = sections.iter().rposition(|(at, _)| t >= *at).unwrap_or(0);
        for (i, &(id, zone)) in joined.iter().enumerate() {
            let share = o.moving * [1.5, 1.0, 0.5][usize::from(zone)];
            if !(splitting || rng.random_bool(share.clamp(0.0, 1.0))) {
                continue;
            }
            moving += 1;
            moving_by_zone[usize::from(zone)] += 1;
            let mut submit = |engine: &mut Engine, k: usize, v: InputValue| {
                if engine.submit(id, ParamId(k as u16), v, t).is_ok() {
                    inputs += 1;
                }
            };
            if splitting {
                let v = if i % 2 == 0 { 0.0 } else { 1.0 };
                submit(&mut engine, split_param, InputValue::Continuous(v));
                continue;
            }
            for _ in 0..2 {
                let k = rng.random_range(0..continuous);
                let centre = 0.5 + 0.3 * (t / (120.0 + 37.0 * k as f64) + k as f64).sin();
                let v = (centre + offsets[i][k] + rng.random_range(-0.05..0.05)).clamp(0.0, 1.0);
                submit(&mut engine, k, InputValue::Continuous(v));
            }
            if rng.random_bool(0.3) {
                // Most vote for the planned section, a few for another.
                let c = if t < ramp || rng.random_bool(0.85) {
                    section_now
                } else {
                    rng.random_range(0..SECTIONS.len())
                };
                submit(&mut engine, continuous, InputValue::Choice(c as u32));
            }
        }
        // The performer: a lock on the first parameter, then its release.
        let (lock_at, release_at) = (lock.0.round(), lock.1.round());
        if t == lock_at || t == release_at {
            let set = t == lock_at;
            let detail = if set {
                engine
                    .set_override(Override {
                        param: ParamId(0),
                        mode: OverrideMode::Lock { value: lock.2 },
                        priority: 1,
                        by: 1,
                        set_at: t,
                        expires_at: None,
                    })
                    .map_err(|e| ServerError::Config(format!("synthetic lock: {e}")))?;
                format!(r#"{{"mode":"lock","a":{},"by":1,"priority":1}}"#, lock.2)
            } else {
                engine.clear_override(ParamId(0), OverrideKind::Lock, None);
                r#"{"mode":"lock","by":1,"priority":1}"#.to_string()
            };
            store
                .record_override(NewOverride {
                    show_id: show.id,
                    at_ms,
                    actor: "performer".into(),
                    param: spec.params[0].name.clone(),
                    action: if set { "set" } else { "release" }.into(),
                    detail_json: detail,
                })
                .await?;
            interventions += 1;
        }
    }
    if !batch.is_empty() {
        store.import_snapshots(batch).await?;
    }
    let show = if o.end {
        let end_ms = o.start_ms + i64::from(last) * 1000;
        store
            .set_show_status(show.id, ShowStatus::Ended, end_ms)
            .await?
    } else {
        store.show(show.id).await?.unwrap_or(show)
    };
    Ok(Recorded {
        show,
        spec,
        inputs,
        lock,
        sections,
        split,
        interventions,
    })
}
