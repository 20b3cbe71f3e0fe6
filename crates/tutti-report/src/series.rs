//! A show's time series, one row per stored snapshot (about one a second), as CSV or JSON,
//! streamed: `tutti export --show CODE --format csv` and `GET /api/v1/shows/{id}/series`.
//! The columns are listed by [`columns`] and documented in `docs/report.md`.
//!
//! Must never: buffer the whole series (rows go straight to the writer).

use std::io::Write;

use tutti_protocol::StateFrame;
use tutti_spec::{ParamKindName, PieceSpec};

use crate::error::ReportError;
use crate::health::Health;
use crate::model::{ShowInfo, TimeRange};

/// The JSON document's format tag.
pub const SERIES_FORMAT: &str = "tutti.show-series/1";

/// CSV or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesFormat {
    /// Comma-separated, a header row first; an empty cell is a missing value.
    Csv,
    /// `{"format", "show", "columns", "rows": [[…], …]}`; a missing value is `null`.
    Json,
}

impl std::str::FromStr for SeriesFormat {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, ReportError> {
        match s {
            "csv" => Ok(SeriesFormat::Csv),
            "json" => Ok(SeriesFormat::Json),
            other => Err(ReportError::Invalid {
                field: "format",
                reason: format!(
                    "'{}' is not a series format: use csv or json",
                    other.chars().take(32).collect::<String>()
                ),
            }),
        }
    }
}

/// The columns of a piece's series, in order: `t_s`, `at_ms`, `tick`, `valid`,
/// `participants`, `connected`, `moving`, `state_rate`, `inputs`, `level_dbfs`, then for
/// each parameter `NAME.value`, `NAME.raw`, `NAME.agreement`, `NAME.dispersion`,
/// `NAME.participants`, `NAME.overrides` and, for a vote, `NAME.choice`.
pub fn columns(spec: &PieceSpec) -> Vec<String> {
    let mut c: Vec<String> = [
        "t_s",
        "at_ms",
        "tick",
        "valid",
        "participants",
        "connected",
        "moving",
        "state_rate",
        "inputs",
        "level_dbfs",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    for p in &spec.params {
        for f in [
            "value",
            "raw",
            "agreement",
            "dispersion",
            "participants",
            "overrides",
        ] {
            c.push(format!("{}.{f}", p.name));
        }
        if p.kind == ParamKindName::Discrete {
            c.push(format!("{}.choice", p.name));
        }
    }
    c
}

enum Cell {
    Num(f64),
    Int(i64),
    Str(String),
    Null,
}

impl Cell {
    fn num(v: Option<f64>) -> Cell {
        v.filter(|v| v.is_finite()).map_or(Cell::Null, Cell::Num)
    }
}

/// Writes rows as they come.
pub struct SeriesWriter<'a, W: Write> {
    spec: &'a PieceSpec,
    format: SeriesFormat,
    range: Option<TimeRange>,
    t0: Option<i64>,
    last_t: f64,
    rows: u64,
    csv: Option<csv::Writer<W>>,
    json: Option<W>,
}

impl<'a, W: Write> SeriesWriter<'a, W> {
    /// Starts the output (the CSV header, or the JSON document's head).
    pub fn new(
        spec: &'a PieceSpec,
        show: &ShowInfo,
        range: Option<TimeRange>,
        format: SeriesFormat,
        mut out: W,
    ) -> Result<Self, ReportError> {
        let cols = columns(spec);
        let (csv, json) = match format {
            SeriesFormat::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&cols).map_err(csv_err)?;
                (Some(w), None)
            }
            SeriesFormat::Json => {
                write!(
                    out,
                    "{{\"format\":\"{SERIES_FORMAT}\",\"show\":{},\"columns\":{},\"rows\":[",
                    serde_json::to_string(show).unwrap_or_else(|_| "null".into()),
                    serde_json::to_string(&cols).unwrap_or_else(|_| "[]".into()),
                )?;
                (None, Some(out))
            }
        };
        Ok(SeriesWriter {
            spec,
            format,
            range,
            t0: None,
            last_t: f64::NEG_INFINITY,
            rows: 0,
            csv,
            json,
        })
    }

    /// Writes the row of one stored snapshot. A snapshot that cannot be read as a state of
    /// this piece is written with `valid` = 0 and its values empty.
    pub fn row(
        &mut self,
        tick: u64,
        at_ms: i64,
        state_json: &str,
        health_json: Option<&str>,
    ) -> Result<(), ReportError> {
        let t0 = *self.t0.get_or_insert(at_ms);
        let t = ((at_ms - t0) as f64 / 1000.0).max(self.last_t.max(0.0));
        self.last_t = t;
        if self.range.is_some_and(|r| t < r.from || t > r.to) {
            return Ok(());
        }
        let frame = serde_json::from_str::<StateFrame>(state_json)
            .ok()
            .filter(|f| {
                self.spec
                    .params
                    .iter()
                    .all(|p| f.params.contains_key(&p.name))
            });
        let health = health_json.and_then(|h| serde_json::from_str::<Health>(h).ok());
        let mut cells = vec![
            Cell::Num(t),
            Cell::Int(at_ms),
            Cell::Int(i64::try_from(tick).unwrap_or(i64::MAX)),
            Cell::Int(i64::from(frame.is_some())),
        ];
        match &frame {
            Some(f) => cells.push(Cell::Int(i64::from(f.participants))),
            None => cells.push(Cell::Null),
        }
        let h = health.as_ref();
        cells.push(h.map_or(Cell::Null, |h| Cell::Int(i64::from(h.connected))));
        cells.push(h.map_or(Cell::Null, |h| Cell::Int(i64::from(h.moving))));
        cells.push(Cell::num(h.map(|h| h.state_rate)));
        cells.push(h.map_or(Cell::Null, |h| {
            Cell::Int(i64::try_from(h.inputs).unwrap_or(i64::MAX))
        }));
        cells.push(Cell::num(h.and_then(|h| h.level_dbfs).map(f64::from)));
        for p in &self.spec.params {
            let s = frame.as_ref().and_then(|f| f.params.get(&p.name));
            cells.push(Cell::num(s.map(|s| s.value)));
            cells.push(Cell::num(s.and_then(|s| s.raw)));
            cells.push(Cell::num(s.map(|s| s.agreement)));
            cells.push(Cell::num(s.and_then(|s| s.dispersion)));
            cells.push(s.map_or(Cell::Null, |s| Cell::Int(i64::from(s.participants))));
            cells.push(s.map_or(Cell::Null, |s| {
                Cell::Str(
                    s.overrides
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|o| serde_json::to_value(o.mode).ok())
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                        .join("+"),
                )
            }));
            if p.kind == ParamKindName::Discrete {
                cells.push(
                    s.and_then(|s| s.choice.clone())
                        .map_or(Cell::Null, Cell::Str),
                );
            }
        }
        self.write(&cells)
    }

    fn write(&mut self, cells: &[Cell]) -> Result<(), ReportError> {
        match self.format {
            SeriesFormat::Csv => {
                let w = self.csv.as_mut().ok_or_else(closed)?;
                let record: Vec<String> = cells
                    .iter()
                    .map(|c| match c {
                        Cell::Num(v) => format!("{v}"),
                        Cell::Int(v) => v.to_string(),
                        Cell::Str(s) => s.clone(),
                        Cell::Null => String::new(),
                    })
                    .collect();
                w.write_record(&record).map_err(csv_err)?;
            }
            SeriesFormat::Json => {
                let w = self.json.as_mut().ok_or_else(closed)?;
                if self.rows > 0 {
                    w.write_all(b",")?;
                }
                let row: Vec<serde_json::Value> = cells
                    .iter()
                    .map(|c| match c {
                        Cell::Num(v) => serde_json::json!(v),
                        Cell::Int(v) => serde_json::json!(v),
                        Cell::Str(s) => serde_json::json!(s),
                        Cell::Null => serde_json::Value::Null,
                    })
                    .collect();
                serde_json::to_writer(&mut *w, &row).map_err(std::io::Error::from)?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Ends the output and returns the writer.
    pub fn finish(mut self) -> Result<W, ReportError> {
        match self.format {
            SeriesFormat::Csv => {
                let w = self.csv.take().ok_or_else(closed)?;
                w.into_inner()
                    .map_err(|e| ReportError::Io(std::io::Error::other(e.to_string())))
            }
            SeriesFormat::Json => {
                let mut w = self.json.take().ok_or_else(closed)?;
                w.write_all(b"]}\n")?;
                w.flush()?;
                Ok(w)
            }
        }
    }
}

fn closed() -> ReportError {
    ReportError::Io(std::io::Error::other("the series writer is finished"))
}

fn csv_err(e: csv::Error) -> ReportError {
    ReportError::Io(std::io::Error::other(e.to_string()))
}
