//! The report's charts, rendered to SVG with `plotters` (its SVG backend; text measured with
//! `ab_glyph` and the DejaVu Sans font shipped in this crate, so nothing on the machine is
//! needed). Every chart is a [`LineChart`], a [`HeatChart`] or a [`BarChart`]; the page
//! module decides what goes in them.
//!
//! Must never: draw by hand what plotters draws, or put a non-finite number in a chart.

use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::ReportError;

/// The font every chart's text is measured with (DejaVu Sans; licence in `fonts/`).
const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// The family name charts ask for; SVG viewers draw it with their own sans-serif.
const FAMILY: &str = "sans-serif";

/// Chart width in SVG pixels.
pub const WIDTH: u32 = 960;

/// The palette: value, raw aggregate, shades and a few series colours.
pub mod colour {
    use plotters::style::RGBColor;
    /// The collective value.
    pub const VALUE: RGBColor = RGBColor(31, 78, 121);
    /// The audience aggregate before smoothing and overrides.
    pub const RAW: RGBColor = RGBColor(224, 138, 0);
    /// Override periods.
    pub const OVERRIDE: RGBColor = RGBColor(200, 40, 60);
    /// Gaps in the data.
    pub const GAP: RGBColor = RGBColor(120, 120, 120);
    /// Section changes.
    pub const SECTION: RGBColor = RGBColor(70, 70, 70);
    /// Series without a meaning of their own, in order.
    pub const SERIES: [RGBColor; 8] = [
        RGBColor(31, 78, 121),
        RGBColor(44, 160, 44),
        RGBColor(224, 138, 0),
        RGBColor(148, 103, 189),
        RGBColor(214, 39, 40),
        RGBColor(23, 190, 207),
        RGBColor(140, 86, 75),
        RGBColor(127, 127, 127),
    ];
}

fn font_ready() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are ours and checked by a test; a failure would leave text unmeasured.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Plot(format!("{e:?}"))
}

/// Every chart's coordinates: time (or categories) by value.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend of the labelled series, in every chart's style.
fn legend<'b>(chart: &mut Chart<'b, 'b>) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(err)
}

/// `h:mm:ss` or `m:ss` for a time in seconds.
pub fn clock(s: f64) -> String {
    let s = if s.is_finite() {
        s.max(0.0).round() as u64
    } else {
        0
    };
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// One line of a [`LineChart`].
pub struct Line<'a> {
    /// Legend name.
    pub name: &'a str,
    /// One value per time (`None`: no line there).
    pub values: Vec<Option<f64>>,
    /// Colour.
    pub colour: RGBColor,
    /// Stroke width.
    pub width: u32,
}

/// A shaded stretch of time, with a label at its top.
pub struct Shade {
    /// Start.
    pub from: f64,
    /// End.
    pub to: f64,
    /// Label (empty: none).
    pub label: String,
    /// Colour (drawn translucent).
    pub colour: RGBColor,
}

/// A vertical mark with a label.
pub struct Mark {
    /// When.
    pub t: f64,
    /// Label.
    pub label: String,
}

/// Lines over time, with shaded stretches and marks.
pub struct LineChart<'a> {
    /// Caption.
    pub title: String,
    /// Times of the values.
    pub t: &'a [f64],
    /// The lines.
    pub lines: Vec<Line<'a>>,
    /// Time axis range.
    pub x: (f64, f64),
    /// Value axis range.
    pub y: (f64, f64),
    /// Value axis description.
    pub y_desc: String,
    /// Names of integer values (a vote's choices), instead of numbers.
    pub y_names: Vec<String>,
    /// Shaded stretches.
    pub shades: Vec<Shade>,
    /// Vertical marks.
    pub marks: Vec<Mark>,
    /// A break in the lines wherever two times are further apart than this.
    pub gap: f64,
    /// Height in pixels.
    pub height: u32,
}

fn sane_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo.is_finite() { lo } else { 0.0 };
    let hi = if hi.is_finite() { hi } else { lo + 1.0 };
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    }
}

/// Splits a line where a value is missing or two times are more than `gap` apart.
fn segments(t: &[f64], v: &[Option<f64>], gap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut prev_t = f64::NEG_INFINITY;
    for (&t, v) in t.iter().zip(v) {
        match v {
            Some(v) if v.is_finite() && t.is_finite() => {
                if t - prev_t > gap && !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.push((t, *v));
                prev_t = t;
            }
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl LineChart<'_> {
    /// Renders the chart as an SVG document.
    pub fn svg(&self) -> Result<String, ReportError> {
        font_ready();
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, self.height)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let (x0, x1) = sane_range(self.x.0, self.x.1);
            let (y0, y1) = sane_range(self.y.0, self.y.1);
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, (FAMILY, 17))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(err)?;
            let names = &self.y_names;
            let name_of = |v: &f64| {
                let i = v.round();
                if !names.is_empty() && (v - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else if names.is_empty() {
                    let s = format!("{v:.3}");
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    String::new()
                }
            };
            let mut mesh = chart.configure_mesh();
            mesh.x_labels(10)
                .x_label_formatter(&|x| clock(*x))
                .y_label_formatter(&name_of)
                .y_desc(self.y_desc.as_str())
                .label_style((FAMILY, 12))
                .axis_desc_style((FAMILY, 12))
                .light_line_style(RGBColor(238, 238, 238));
            if !names.is_empty() {
                mesh.y_labels(names.len().max(2) * 2 - 1);
            }
            mesh.draw().map_err(err)?;
            for s in &self.shades {
                let (a, b) = (s.from.max(x0), s.to.min(x1));
                if b < a {
                    continue;
                }
                // A one-snapshot stretch still shows: at least a thousandth of the axis.
                let b = b.max(a + (x1 - x0) / 1000.0);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, y0), (b, y1)],
                        s.colour.mix(0.14).filled(),
                    )))
                    .map_err(err)?;
                if !s.label.is_empty() {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            s.label.clone(),
                            (a, y1),
                            (FAMILY, 11).into_font().color(&s.colour),
                        )))
                        .map_err(err)?;
                }
            }
            for m in &self.marks {
                if m.t < x0 || m.t > x1 {
                    continue;
                }
                chart
                    .draw_series(DashedLineSeries::new(
                        [(m.t, y0), (m.t, y1)],
                        4,
                        4,
                        colour::SECTION.stroke_width(1),
                    ))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        m.label.clone(),
                        (m.t, y0 + (y1 - y0) * 0.06),
                        (FAMILY, 11).into_font().color(&colour::SECTION),
                    )))
                    .map_err(err)?;
            }
            for line in &self.lines {
                let style = line.colour.stroke_width(line.width);
                let mut labelled = false;
                for seg in segments(self.t, &line.values, self.gap) {
                    let drawn = chart
                        .draw_series(LineSeries::new(seg, style))
                        .map_err(err)?;
                    if !labelled {
                        let c = line.colour;
                        drawn.label(line.name).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                        });
                        labelled = true;
                    }
                }
            }
            if !self.lines.is_empty() {
                legend(&mut chart)?;
            }
            root.present().map_err(err)?;
        }
        Ok(buf)
    }
}

/// A heat map over time with a line over it (the median).
pub struct HeatChart<'a> {
    /// Caption.
    pub title: String,
    /// Column start times.
    pub t: &'a [f64],
    /// Column width.
    pub dt: f64,
    /// Columns of shares, `bins` each.
    pub cells: &'a [Vec<f32>],
    /// Value axis: the range the bins cover (a vote: `-0.5..choices − 0.5`).
    pub y: (f64, f64),
    /// Value axis description.
    pub y_desc: String,
    /// Names of integer values (a vote's choices).
    pub y_names: Vec<String>,
    /// The median of each column, drawn as a line.
    pub median: Vec<Option<f64>>,
    /// Height in pixels.
    pub height: u32,
}

/// White to deep blue by `share` of the map's largest cell.
fn heat_colour(share: f64) -> RGBColor {
    let s = share.clamp(0.0, 1.0).sqrt();
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * s).round() as u8;
    RGBColor(lerp(247, 8), lerp(251, 48), lerp(255, 107))
}

impl HeatChart<'_> {
    /// Renders the chart as an SVG document.
    pub fn svg(&self) -> Result<String, ReportError> {
        font_ready();
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, self.height)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let x0 = self.t.first().copied().unwrap_or(0.0);
            let x1 = self.t.last().map_or(x0 + 1.0, |t| t + self.dt);
            let (x0, x1) = sane_range(x0, x1);
            let (y0, y1) = sane_range(self.y.0, self.y.1);
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, (FAMILY, 17))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(err)?;
            let names = &self.y_names;
            let name_of = |v: &f64| {
                let i = v.round();
                if names.is_empty() {
                    let s = format!("{v:.3}");
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                } else if (v - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(10)
                .x_label_formatter(&|x| clock(*x))
                .y_label_formatter(&name_of)
                .y_desc(self.y_desc.as_str())
                .label_style((FAMILY, 12))
                .axis_desc_style((FAMILY, 12))
                .draw()
                .map_err(err)?;
            let top =
                self.cells
                    .iter()
                    .flatten()
                    .fold(0f32, |m, &v| if v.is_finite() { m.max(v) } else { m });
            let bins = self.cells.first().map_or(0, Vec::len).max(1);
            let h = (y1 - y0) / bins as f64;
            let cells = self.t.iter().zip(self.cells).flat_map(|(&t, col)| {
                col.iter()
                    .enumerate()
                    .filter(move |&(_, &v)| v.is_finite() && v > 0.0 && top > 0.0)
                    .map(move |(j, &v)| {
                        Rectangle::new(
                            [
                                (t, y0 + j as f64 * h),
                                (t + self.dt, y0 + (j + 1) as f64 * h),
                            ],
                            heat_colour(f64::from(v / top)).filled(),
                        )
                    })
            });
            chart.draw_series(cells).map_err(err)?;
            let centres: Vec<f64> = self.t.iter().map(|t| t + self.dt / 2.0).collect();
            let mut labelled = false;
            for seg in segments(&centres, &self.median, self.dt * 1.5) {
                let drawn = chart
                    .draw_series(LineSeries::new(seg, colour::RAW.stroke_width(2)))
                    .map_err(err)?;
                if !labelled {
                    drawn.label("median").legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], colour::RAW.stroke_width(2))
                    });
                    labelled = true;
                }
            }
            if labelled {
                legend(&mut chart)?;
            }
            root.present().map_err(err)?;
        }
        Ok(buf)
    }
}

/// Grouped bars: one group per category, one bar per series.
pub struct BarChart<'a> {
    /// Caption.
    pub title: String,
    /// Category names (x axis).
    pub categories: Vec<String>,
    /// Series: name, colour, one value per category.
    pub series: Vec<(&'a str, RGBColor, Vec<f64>)>,
    /// Value axis description.
    pub y_desc: String,
    /// The value the bars grow from (0, or the floor of a dB scale).
    pub floor: f64,
    /// Height in pixels.
    pub height: u32,
}

impl BarChart<'_> {
    /// Renders the chart as an SVG document.
    pub fn svg(&self) -> Result<String, ReportError> {
        font_ready();
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, self.height)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let n = self.categories.len().max(1);
            let top = self
                .series
                .iter()
                .flat_map(|s| s.2.iter().copied())
                .filter(|v| v.is_finite())
                .fold(self.floor, f64::max);
            let (y0, y1) = sane_range(self.floor, top + (top - self.floor).abs() * 0.1);
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, (FAMILY, 17))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(64)
                .build_cartesian_2d(0f64..n as f64, y0..y1)
                .map_err(err)?;
            let cats = &self.categories;
            let cat_of = |x: &f64| {
                let i = x.floor();
                if (x - i - 0.5).abs() < 1e-6 && i >= 0.0 {
                    cats.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            let plain = |v: &f64| {
                let s = format!("{v:.2}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            };
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n * 2 + 1)
                .x_label_formatter(&cat_of)
                .y_label_formatter(&plain)
                .y_desc(self.y_desc.as_str())
                .label_style((FAMILY, 12))
                .axis_desc_style((FAMILY, 12))
                .light_line_style(RGBColor(238, 238, 238))
                .draw()
                .map_err(err)?;
            let k = self.series.len().max(1) as f64;
            let width = 0.8 / k;
            for (si, (name, c, values)) in self.series.iter().enumerate() {
                let c = *c;
                let bars = values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(move |(i, &v)| {
                        let left = i as f64 + 0.1 + si as f64 * width;
                        Rectangle::new([(left, y0), (left + width * 0.92, v.max(y0))], c.filled())
                    });
                chart
                    .draw_series(bars)
                    .map_err(err)?
                    .label(*name)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled())
                    });
            }
            legend(&mut chart)?;
            root.present().map_err(err)?;
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_font_loads() {
        assert!(plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn clock_formats() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(75.4), "1:15");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(f64::NAN), "0:00");
    }

    #[test]
    fn lines_break_at_gaps_and_missing_values() {
        let t = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0];
        let v = [
            Some(1.0),
            Some(2.0),
            None,
            Some(3.0),
            Some(4.0),
            Some(f64::NAN),
        ];
        let s = segments(&t, &v, 5.0);
        assert_eq!(
            s,
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(10.0, 3.0), (11.0, 4.0)]]
        );
        let s = segments(&[0.0, 1.0, 20.0], &[Some(1.0), Some(1.0), Some(1.0)], 5.0);
        assert_eq!(s.len(), 2);
    }
}
