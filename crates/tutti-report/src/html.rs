//! The report as one self-contained HTML page: inline CSS, inline SVG charts, no script, no
//! font, no image and no link to anything outside the page, so it works offline, in an
//! e-mail attachment, and prints cleanly to PDF.
//!
//! Must never: put text from a piece, a show or a log into the page without escaping it.

use std::fmt::Write as _;

use crate::error::ReportError;
use crate::model::{ParamReport, Report};
use crate::plot::{self, clock, colour, BarChart, HeatChart, Line, LineChart, Mark, Shade};

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A unix-ms time as `YYYY-MM-DD HH:MM UTC`.
pub fn date(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "—".into(),
    }
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Inline SVG: the XML namespace declaration is not needed inside HTML.
fn inline(svg: String) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

const STYLE: &str = r#"
:root { --ink: #1b1f24; --muted: #5b6570; --line: #e3e6ea; --accent: #1f4e79; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1000px; padding: 24px 20px 48px; background: #fff; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 4px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.running { background: #fff4d6; border: 1px solid #e8c66a; padding: 8px 12px; border-radius: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card b { display: block; font-size: 22px; color: var(--accent); }
.card span { color: var(--muted); font-size: 13px; }
figure { margin: 8px 0 16px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 6px 0 12px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: var(--muted); font-size: 13px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 12px; }
  h2 { break-after: avoid; }
  figure, table, .cards { break-inside: avoid; }
  .running { border-color: #999; background: none; }
}
"#;

/// Renders the whole page.
pub fn render(r: &Report) -> Result<String, ReportError> {
    let mut h = String::with_capacity(256 * 1024);
    let title = esc(&r.show.title);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{title} — show {} — Tutti report</title><style>{STYLE}</style></head><body>\n",
        esc(&r.show.code)
    );
    let _ = write!(
        h,
        "<header><h1>{title}</h1><p class=\"meta\">Show <b>{}</b> · {} · spec version {} · {}</p>",
        esc(&r.show.code),
        esc(&r.show.kind),
        r.show.spec_version,
        r.show
            .t0_ms
            .or(r.show.started_at_ms)
            .map_or_else(|| "not started".to_string(), date),
    );
    if r.running {
        let _ = write!(
            h,
            "<p class=\"running\" id=\"running\">Report so far: the show is still {}; this is \
             what was recorded until now.</p>",
            esc(&r.show.status)
        );
    }
    if let Some(range) = r.range {
        let _ = write!(
            h,
            "<p class=\"meta\">From {} to {} of the show.</p>",
            clock(range.from),
            clock(range.to)
        );
    }
    h.push_str("</header>\n");
    summary(&mut h, r);
    let x = time_axis(r);
    h.push_str("<h2>Parameters</h2>\n");
    for p in &r.params {
        param(&mut h, r, p, x)?;
    }
    participation(&mut h, r, x)?;
    if !r.audio.is_empty() {
        audio(&mut h, r)?;
    }
    interventions(&mut h, r);
    health(&mut h, r, x)?;
    if !r.gaps.is_empty() {
        h.push_str("<h2>Gaps</h2><table><tr><th>from</th><th>to</th><th>why</th></tr>");
        for g in &r.gaps {
            let why = if g.reason == "corrupt" {
                "a stored snapshot could not be read"
            } else {
                "nothing was recorded (the server was stopped or overloaded)"
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{why}</td></tr>",
                clock(g.from),
                clock(g.to)
            );
        }
        h.push_str("</table>\n");
    }
    let _ = write!(
        h,
        "<footer>Made by Tutti {} from the show's recorded snapshots (about one a second) and \
         override log. Times are from the first recorded snapshot.</footer></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    h.push('\n');
    Ok(h)
}

fn time_axis(r: &Report) -> (f64, f64) {
    let first = r.participation.t.first().copied().unwrap_or(0.0);
    let last = r.participation.t.last().copied().unwrap_or(first);
    (first, last.max(first + 1.0))
}

fn card(h: &mut String, value: &str, label: &str) {
    let _ = write!(
        h,
        "<div class=\"card\"><b>{value}</b><span>{label}</span></div>"
    );
}

fn summary(h: &mut String, r: &Report) {
    let s = &r.summary;
    h.push_str("<section class=\"cards\" id=\"summary\">");
    card(h, &clock(s.duration_s), "length");
    card(h, &thousands(u64::from(s.peak_audience)), "peak audience");
    card(h, &num(s.median_audience), "median audience");
    card(
        h,
        &s.inputs.map_or_else(|| "—".into(), thousands),
        "inputs and votes",
    );
    match &s.most_contested {
        Some(c) => {
            let label = r
                .params
                .iter()
                .find(|p| p.name == c.param)
                .map_or(c.param.as_str(), |p| p.label.as_str());
            card(
                h,
                &clock(c.t),
                &format!(
                    "most contested: {} (agreement {}, {} people)",
                    esc(label),
                    num(c.agreement),
                    c.participants
                ),
            );
        }
        None => card(h, "—", "most contested moment (too few inputs)"),
    }
    let actions = s
        .interventions_by_action
        .iter()
        .map(|(a, n)| format!("{n} {}", esc(a)))
        .collect::<Vec<_>>()
        .join(", ");
    card(
        h,
        &thousands(s.interventions),
        &if actions.is_empty() {
            "performer interventions".to_string()
        } else {
            format!("performer interventions ({actions})")
        },
    );
    h.push_str("</section>\n");
}

fn opt(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|&x| Some(x)).collect()
}

fn gap_of(r: &Report) -> f64 {
    let t = &r.participation.t;
    let step = if t.len() > 1 {
        (t[t.len() - 1] - t[0]) / (t.len() - 1) as f64
    } else {
        1.0
    };
    (step * 2.5).max(crate::builder::GAP_S)
}

fn param(h: &mut String, r: &Report, p: &ParamReport, x: (f64, f64)) -> Result<(), ReportError> {
    let discrete = p.kind == "discrete";
    let unit = p.unit.as_deref().unwrap_or("");
    let _ = write!(
        h,
        "<h3 id=\"param-{}\">{}</h3><p class=\"note\">mean {} · range {}–{} · agreement {} · \
         overridden {}</p>",
        esc(&p.name),
        esc(&p.label),
        if discrete {
            p.choices
                .get(p.stats.mean.round().max(0.0) as usize)
                .map_or_else(|| num(p.stats.mean), |c| esc(c))
        } else {
            format!("{} {}", num(p.stats.mean), esc(unit))
        },
        num(p.stats.min),
        num(p.stats.max),
        p.stats.mean_agreement.map_or_else(|| "—".into(), num),
        clock(p.stats.overridden_s),
    );
    let mut shades: Vec<Shade> = r
        .overrides
        .iter()
        .filter(|o| o.param == p.name)
        .map(|o| Shade {
            from: o.from,
            to: o.to,
            label: match o.a {
                Some(a) => format!("{} {}", o.mode, num(a)),
                None => o.mode.clone(),
            },
            colour: colour::OVERRIDE,
        })
        .collect();
    shades.extend(r.gaps.iter().map(|g| Shade {
        from: g.from,
        to: g.to,
        label: String::new(),
        colour: colour::GAP,
    }));
    let marks: Vec<Mark> = r
        .sections
        .iter()
        .map(|s| Mark {
            t: s.t,
            label: s.to.clone(),
        })
        .collect();
    let names = if discrete {
        p.choices.clone()
    } else {
        Vec::new()
    };
    let y_desc = if unit.is_empty() {
        p.label.clone()
    } else {
        format!("{} ({unit})", p.label)
    };
    let chart = LineChart {
        title: format!("{}: collective value", p.label),
        t: &p.t,
        lines: vec![
            Line {
                name: "crowd (raw aggregate)",
                values: p.raw.clone(),
                colour: colour::RAW,
                width: 1,
            },
            Line {
                name: "collective value",
                values: opt(&p.value),
                colour: colour::VALUE,
                width: 2,
            },
        ],
        x,
        y: (p.min, p.max),
        y_desc: y_desc.clone(),
        y_names: names.clone(),
        shades,
        marks,
        gap: gap_of(r),
        height: 260,
    };
    let _ = write!(
        h,
        "<figure class=\"chart\" data-chart=\"value\" data-param=\"{}\">{}<figcaption>The value \
         sent to the sound (after smoothing and overrides) and the crowd's raw aggregate; \
         override periods shaded and labelled, section changes marked.</figcaption></figure>",
        esc(&p.name),
        inline(chart.svg()?)
    );
    let (y0, y1) = if discrete {
        (-0.5, p.choices.len() as f64 - 0.5)
    } else {
        (p.min, p.max)
    };
    // A vote's median is a choice index: centre it on its row.
    let heat = HeatChart {
        title: format!("{}: what the audience asked for", p.label),
        t: &p.heat.t,
        dt: p.heat.dt,
        cells: &p.heat.cells,
        y: (y0, y1),
        y_desc,
        y_names: names,
        median: p.heat.median.clone(),
        height: 240,
    };
    let _ = write!(
        h,
        "<figure class=\"chart\" data-chart=\"heat\" data-param=\"{}\">{}<figcaption>The share \
         of the audience's weight in each part of the range over time (darker: more people), \
         with its median.</figcaption></figure>",
        esc(&p.name),
        inline(heat.svg()?)
    );
    h.push('\n');
    Ok(())
}

fn participation(h: &mut String, r: &Report, x: (f64, f64)) -> Result<(), ReportError> {
    h.push_str("<h2>Participation and agreement</h2>\n");
    let pa = &r.participation;
    let peak = pa
        .participants
        .iter()
        .copied()
        .chain(pa.connected.iter().flatten().copied())
        .fold(1.0, f64::max);
    let chart = LineChart {
        title: "Audience".into(),
        t: &pa.t,
        lines: vec![
            Line {
                name: "joined (slots held)",
                values: opt(&pa.participants),
                colour: colour::SERIES[7],
                width: 1,
            },
            Line {
                name: "connected",
                values: pa.connected.clone(),
                colour: colour::SERIES[0],
                width: 2,
            },
            Line {
                name: "moving",
                values: pa.moving.clone(),
                colour: colour::SERIES[1],
                width: 2,
            },
        ],
        x,
        y: (0.0, peak * 1.1),
        y_desc: "participants".into(),
        y_names: Vec::new(),
        shades: Vec::new(),
        marks: Vec::new(),
        gap: gap_of(r),
        height: 240,
    };
    let _ = write!(
        h,
        "<figure class=\"chart\" data-chart=\"participation\">{}<figcaption>Joined, connected, \
         and moving (an input since the previous second).</figcaption></figure>",
        inline(chart.svg()?)
    );
    let mut lines: Vec<Line<'_>> = r
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| Line {
            name: p.label.as_str(),
            values: p
                .agreement
                .iter()
                .zip(r.participation.agreement.iter())
                .map(|(&a, any)| any.map(|_| a))
                .collect(),
            colour: colour::SERIES[i % colour::SERIES.len()],
            width: 1,
        })
        .collect();
    lines.push(Line {
        name: "mean",
        values: pa.agreement.clone(),
        colour: RGB_BLACK,
        width: 2,
    });
    let chart = LineChart {
        title: "Agreement".into(),
        t: &pa.t,
        lines,
        x,
        y: (0.0, 1.0),
        y_desc: "agreement (1 = unanimous)".into(),
        y_names: Vec::new(),
        shades: Vec::new(),
        marks: Vec::new(),
        gap: gap_of(r),
        height: 260,
    };
    let _ = write!(
        h,
        "<figure class=\"chart\" data-chart=\"agreement\">{}<figcaption>How much the crowd \
         agreed on each parameter (1 − dispersion ÷ half the range; for a vote, the winning \
         choice's share).</figcaption></figure>",
        inline(chart.svg()?)
    );
    if !r.zones.is_empty() && r.health.recorded {
        let chart = BarChart {
            title: "Zones".into(),
            categories: r.zones.iter().map(|z| z.name.clone()).collect(),
            series: vec![
                (
                    "connected (mean)",
                    plot::colour::SERIES[5],
                    r.zones.iter().map(|z| z.mean_connected).collect(),
                ),
                (
                    "moving (mean)",
                    plot::colour::SERIES[1],
                    r.zones.iter().map(|z| z.mean_moving).collect(),
                ),
            ],
            y_desc: "participants".into(),
            floor: 0.0,
            height: 220,
        };
        let _ = write!(
            h,
            "<figure class=\"chart\" data-chart=\"zones\">{}</figure>",
            inline(chart.svg()?)
        );
        h.push_str(
            "<table><tr><th>zone</th><th class=\"n\">mean connected</th><th class=\"n\">peak</th>\
             <th class=\"n\">mean moving</th><th class=\"n\">activity</th></tr>",
        );
        for z in &r.zones {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{:.0} %</td></tr>",
                esc(&z.name),
                num(z.mean_connected),
                z.peak_connected,
                num(z.mean_moving),
                z.activity * 100.0
            );
        }
        h.push_str("</table>\n");
    }
    Ok(())
}

const RGB_BLACK: plotters::style::RGBColor = plotters::style::RGBColor(20, 20, 20);

fn audio(h: &mut String, r: &Report) -> Result<(), ReportError> {
    h.push_str("<h2>Sound</h2>\n");
    let floor = r
        .audio
        .iter()
        .map(|m| m.level_dbfs)
        .fold(0.0, f64::min)
        .max(-120.0);
    let floor = (floor / 6.0).floor() * 6.0 - 6.0;
    let chart = BarChart {
        title: "Loudness per minute".into(),
        categories: r.audio.iter().map(|m| format!("{}'", m.minute)).collect(),
        series: vec![
            (
                "mean level",
                colour::SERIES[0],
                r.audio.iter().map(|m| m.level_dbfs).collect(),
            ),
            (
                "loudest second",
                colour::SERIES[2],
                r.audio.iter().map(|m| m.peak_dbfs).collect(),
            ),
        ],
        y_desc: "dBFS (RMS)".into(),
        floor,
        height: 220,
    };
    let _ = write!(
        h,
        "<figure class=\"chart\" data-chart=\"audio\">{}<figcaption>The embedded engine's \
         output level, a reading a second, averaged by power per minute.</figcaption></figure>",
        inline(chart.svg()?)
    );
    h.push('\n');
    Ok(())
}

fn interventions(h: &mut String, r: &Report) {
    h.push_str("<h2>Performer interventions</h2>\n");
    if r.interventions.is_empty() {
        h.push_str("<p class=\"note\">None: the crowd had the show to itself.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"interventions\"><tr><th>time</th><th>who</th><th>parameter</th>\
         <th>action</th><th>details</th></tr>",
    );
    const SHOWN: usize = 500;
    for i in r.interventions.iter().take(SHOWN) {
        let detail = match &i.detail {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "by" | "priority"))
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if i.t < 0.0 {
                "before".to_string()
            } else {
                clock(i.t)
            },
            esc(&i.actor),
            esc(&i.param),
            esc(&i.action),
            esc(&detail)
        );
    }
    h.push_str("</table>\n");
    if r.interventions.len() > SHOWN {
        let _ = write!(
            h,
            "<p class=\"note\">The first {SHOWN} of {}; the JSON has them all.</p>",
            r.interventions.len()
        );
    }
}

fn health(h: &mut String, r: &Report, x: (f64, f64)) -> Result<(), ReportError> {
    h.push_str("<h2>Health</h2>\n");
    let hr = &r.health;
    if !hr.recorded {
        h.push_str(
            "<p class=\"note\">No delivery figures were recorded for this show (it ran on a \
             Tutti that did not record them).</p>\n",
        );
        return Ok(());
    }
    let top = hr.state_rate.iter().flatten().copied().fold(1.0, f64::max);
    let chart = LineChart {
        title: "State rate delivered to phones".into(),
        t: &hr.t,
        lines: vec![Line {
            name: "states per second",
            values: hr.state_rate.clone(),
            colour: colour::SERIES[0],
            width: 2,
        }],
        x,
        y: (0.0, top * 1.15),
        y_desc: "Hz".into(),
        y_names: Vec::new(),
        shades: Vec::new(),
        marks: Vec::new(),
        gap: gap_of(r),
        height: 200,
    };
    let _ = write!(
        h,
        "<figure class=\"chart\" data-chart=\"rate\">{}<figcaption>Lowered evenly for \
         everyone when too many deliveries were late.</figcaption></figure>",
        inline(chart.svg()?)
    );
    let _ = write!(
        h,
        "<table id=\"health\"><tr><th class=\"n\">delivered states</th><th class=\"n\">late</th>\
         <th class=\"n\">skipped (slow phones)</th><th class=\"n\">reconnects</th></tr><tr><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>",
        thousands(hr.delivered),
        thousands(hr.late_total),
        thousands(hr.skipped),
        thousands(hr.reconnects)
    );
    if hr.errors.is_empty() {
        h.push_str("<p class=\"note\">No error frames were sent.</p>");
    } else {
        h.push_str("<table id=\"errors\"><tr><th>error code</th><th class=\"n\">frames</th></tr>");
        for (code, n) in &hr.errors {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td class=\"n\">{}</td></tr>",
                esc(code),
                thousands(*n)
            );
        }
        h.push_str("</table>");
    }
    h.push_str(
        "<p class=\"note\">Delivery and error counts are the node's: they include any other \
         show it ran at the same time.</p>\n",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(
            esc(r#"<script>alert('x')</script> & "q""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1234.6), "1235");
        assert_eq!(num(f64::NAN), "—");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
    }
}
