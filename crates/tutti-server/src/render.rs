//! Offline rendering of a recorded show: its stored 1 Hz snapshots (the values after
//! overrides) become a timeline of parameter values, rendered by SuperCollider in
//! non-real-time mode (`scsynth -N`).
//!
//! Must never: touch a running show; it reads the store only.

use std::path::{Path, PathBuf};

use tutti_spec::PieceSpec;
use tutti_store::{Store, StoreConfig};

use crate::ServerError;

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    /// Data directory of the store.
    pub data_dir: PathBuf,
    /// Show code; `None` = the most recent show.
    pub show: Option<String>,
    /// Output WAV file.
    pub out: PathBuf,
    /// Sample rate.
    pub sample_rate: u32,
    /// The scsynth binary.
    pub scsynth: PathBuf,
}

/// A recorded show's timeline: the spec it ran and `(seconds, values)` per snapshot.
pub struct Timeline {
    /// The spec version the show ran.
    pub spec: PieceSpec,
    /// Values in spec order, seconds from the first snapshot.
    pub points: Vec<(f64, Vec<f64>)>,
    /// The show's code.
    pub code: String,
}

/// Load a show's timeline from the store.
pub async fn load_timeline(data_dir: &Path, show: Option<&str>) -> Result<Timeline, ServerError> {
    let db = data_dir.join("tutti.db");
    if !db.is_file() {
        return Err(ServerError::Config(format!(
            "no Tutti store at {} (use --data-dir)",
            db.display()
        )));
    }
    let store = Store::open(StoreConfig::new(db))?;
    let row = match show {
        Some(code) => store
            .show_by_code(code)
            .await?
            .ok_or_else(|| ServerError::Config(format!("no show with code '{code}'")))?,
        None => {
            let mut newest = None;
            for s in store.active_shows().await? {
                if newest
                    .as_ref()
                    .is_none_or(|n: &tutti_store::ShowRow| s.created_at_ms > n.created_at_ms)
                {
                    newest = Some(s);
                }
            }
            match newest {
                Some(s) => s,
                None => {
                    return Err(ServerError::Config(
                        "no show to render: name one with --show CODE".into(),
                    ))
                }
            }
        }
    };
    let version = store
        .spec_version(row.spec_version_id)
        .await?
        .ok_or_else(|| ServerError::Config("the show's spec version is missing".into()))?;
    let spec = PieceSpec::from_json(&version.spec_json).map_err(|source| ServerError::Piece {
        path: format!("stored spec version {}", version.id),
        source,
    })?;
    let mut points = Vec::new();
    let mut after = None;
    let mut first_ms = None;
    loop {
        let page = store.snapshots(row.id, after, 1000).await?;
        if page.is_empty() {
            break;
        }
        for snap in &page {
            let Ok(frame) = serde_json::from_str::<tutti_protocol::StateFrame>(&snap.state_json)
            else {
                continue;
            };
            let t0 = *first_ms.get_or_insert(snap.at_ms);
            let values = spec
                .params
                .iter()
                .map(|p| frame.params.get(&p.name).map_or(p.range().0, |s| s.value))
                .collect();
            points.push(((snap.at_ms - t0) as f64 / 1000.0, values));
        }
        after = page.last().map(|s| s.tick);
    }
    store.close().await?;
    if points.is_empty() {
        return Err(ServerError::Config(format!(
            "show {} has no recorded snapshots to render",
            row.code
        )));
    }
    Ok(Timeline {
        spec,
        points,
        code: row.code,
    })
}

/// `tutti render --scsynth`: render a recorded show with SuperCollider to a WAV file.
pub async fn render_scsynth(req: &RenderRequest) -> Result<Timeline, ServerError> {
    let timeline = load_timeline(&req.data_dir, req.show.as_deref()).await?;
    let duration = timeline.points.last().map_or(1.0, |p| p.0 + 1.0);
    let (spec, points, out, rate, bin) = (
        timeline.spec.clone(),
        timeline.points.clone(),
        req.out.clone(),
        req.sample_rate,
        req.scsynth.clone(),
    );
    tokio::task::spawn_blocking(move || {
        tutti_supercollider::render_show(&spec, &points, duration, &out, rate, &bin)
    })
    .await
    .map_err(|e| ServerError::Audio(format!("render task failed: {e}")))?
    .map_err(|e| ServerError::Audio(format!("scsynth render: {e}")))?;
    Ok(timeline)
}

/// `tutti render` with the embedded engine: deterministic (same store, same WAV).
pub async fn render_engine(req: &RenderRequest) -> Result<Timeline, ServerError> {
    let timeline = load_timeline(&req.data_dir, req.show.as_deref()).await?;
    let duration = timeline.points.last().map_or(1.0, |p| p.0 + 1.0);
    let cfg = tutti_audio::EngineConfig {
        sample_rate: req.sample_rate,
        ..tutti_audio::EngineConfig::default()
    };
    let frames =
        tutti_audio::render_piece_offline(&timeline.spec, &cfg, &timeline.points, duration)
            .map_err(|e| ServerError::Audio(format!("engine render: {e}")))?;
    tutti_audio::write_wav(&req.out, &frames, req.sample_rate)
        .map_err(|e| ServerError::Audio(format!("writing {}: {e}", req.out.display())))?;
    Ok(timeline)
}
