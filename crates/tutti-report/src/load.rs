//! Reads a show from the store and builds its report or streams its time series. Reads only,
//! page by page (a three-hour show is about 11,000 snapshots).
//!
//! Must never: write to the store, or hold every stored row in memory at once.

use tutti_spec::PieceSpec;
use tutti_store::{ShowRow, Store};

use crate::builder::{Builder, LogEntry};
use crate::error::ReportError;
use crate::model::{Report, ShowInfo, TimeRange};
use crate::series::{SeriesFormat, SeriesWriter};

/// Snapshots read per page.
const PAGE: usize = 2_000;
/// The longest range a report may ask for, seconds (a week).
pub const MAX_RANGE_S: f64 = 7.0 * 86_400.0;

/// Checks a requested range (seconds from the first snapshot); both ends optional.
pub fn check_range(from: Option<f64>, to: Option<f64>) -> Result<Option<TimeRange>, ReportError> {
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let bad = |field, reason: &str| ReportError::Invalid {
        field,
        reason: reason.to_string(),
    };
    let from = from.unwrap_or(0.0);
    let to = to.unwrap_or(MAX_RANGE_S);
    if !from.is_finite() || !(0.0..=MAX_RANGE_S).contains(&from) {
        return Err(bad(
            "from",
            "must be 0–604800 seconds from the show's start",
        ));
    }
    if !to.is_finite() || to <= 0.0 || to > MAX_RANGE_S {
        return Err(bad("to", "must be 0–604800 seconds from the show's start"));
    }
    if to <= from {
        return Err(bad("to", "must be after from"));
    }
    Ok(Some(TimeRange { from, to }))
}

/// A show and what the report needs around it.
pub struct Loaded {
    /// The show's row.
    pub show: ShowRow,
    /// The spec it ran.
    pub spec: PieceSpec,
    /// What the report says about it.
    pub info: ShowInfo,
}

/// Reads the show's spec version and piece.
pub async fn show(store: &Store, show: ShowRow) -> Result<Loaded, ReportError> {
    let version = store
        .spec_version(show.spec_version_id)
        .await?
        .ok_or_else(|| ReportError::Spec(format!("{} is missing", show.spec_version_id)))?;
    let spec = PieceSpec::from_json(&version.spec_json)
        .map_err(|e| ReportError::Spec(format!("{} cannot be read: {e}", version.version)))?;
    let piece = store.piece(show.piece_id).await?;
    let info = ShowInfo {
        id: show.id,
        code: show.code.clone(),
        title: piece
            .as_ref()
            .map_or_else(|| spec.title.clone(), |p| p.title.clone()),
        piece: piece.map_or_else(|| spec.slug.clone(), |p| p.slug),
        kind: show.kind.as_str().into(),
        status: show.status.as_str().into(),
        spec_version: version.version,
        created_at_ms: show.created_at_ms,
        started_at_ms: show.started_at_ms,
        ended_at_ms: show.ended_at_ms,
        t0_ms: None,
    };
    Ok(Loaded { show, spec, info })
}

/// Builds the report of a show.
pub async fn report(
    store: &Store,
    loaded: Loaded,
    range: Option<TimeRange>,
) -> Result<Report, ReportError> {
    let show_id = loaded.show.id;
    let mut b = Builder::new(loaded.spec, loaded.info, range);
    let mut after = None;
    loop {
        let page = store.snapshots(show_id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.tick);
        for s in &page {
            b.push(s.at_ms, &s.state_json, s.health_json.as_deref());
        }
        if page.len() < PAGE {
            break;
        }
    }
    let log = store
        .overrides(show_id)
        .await?
        .into_iter()
        .map(|o| LogEntry {
            at_ms: o.at_ms,
            actor: o.actor,
            param: o.param,
            action: o.action,
            detail_json: o.detail_json,
        })
        .collect();
    b.log(log);
    Ok(b.finish())
}

/// Streams a show's time series (one row per snapshot) to `out`.
pub async fn series<W: std::io::Write>(
    store: &Store,
    loaded: &Loaded,
    range: Option<TimeRange>,
    format: SeriesFormat,
    out: W,
) -> Result<W, ReportError> {
    let mut w = SeriesWriter::new(&loaded.spec, &loaded.info, range, format, out)?;
    let mut after = None;
    loop {
        let page = store.snapshots(loaded.show.id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.tick);
        for s in &page {
            w.row(s.tick, s.at_ms, &s.state_json, s.health_json.as_deref())?;
        }
        if page.len() < PAGE {
            break;
        }
    }
    w.finish()
}
