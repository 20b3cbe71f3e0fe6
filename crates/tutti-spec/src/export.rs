//! Exports of a piece spec for people and other tools: JSON (pretty, the same fields the
//! store keeps), TOML (the format [`PieceSpec::from_toml`] reads, so an export can be
//! edited and loaded back) and Markdown (a readable sheet: rates, weighting, zones, and a
//! table of parameters with their ranges, aggregation, smoothing, OSC and mappings).
//!
//! Must never: change the spec it is given, or write text that does not load back (JSON
//! and TOML exports of a valid spec always parse and validate to an equal spec).

use std::fmt::Write as _;
use std::str::FromStr;

use crate::{AggregationName, Curve, Mapping, ParamKindName, ParamSpec, PieceSpec, SpecError};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Pretty-printed JSON.
    Json,
    /// TOML, loadable with [`PieceSpec::from_toml`].
    Toml,
    /// A Markdown sheet for people.
    Markdown,
}

impl ExportFormat {
    /// All formats, in a stable order.
    pub const ALL: [ExportFormat; 3] = [
        ExportFormat::Json,
        ExportFormat::Toml,
        ExportFormat::Markdown,
    ];

    /// The format's name as accepted by [`FromStr`]: `json`, `toml` or `markdown`.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Toml => "toml",
            ExportFormat::Markdown => "markdown",
        }
    }

    /// The HTTP content type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Toml => "application/toml; charset=utf-8",
            ExportFormat::Markdown => "text/markdown; charset=utf-8",
        }
    }

    /// The usual file extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Toml => "toml",
            ExportFormat::Markdown => "md",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = SpecError;

    /// `json`, `toml`, `markdown` (or `md`), case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(ExportFormat::Json),
            "toml" => Ok(ExportFormat::Toml),
            "markdown" | "md" => Ok(ExportFormat::Markdown),
            _ => Err(SpecError::invalid(
                "format",
                format!(
                    "'{}' is not an export format (json, toml or markdown)",
                    s.chars().take(32).collect::<String>()
                ),
            )),
        }
    }
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PieceSpec {
    /// The spec in `format`. Fails only when the spec cannot be written as TOML (it always
    /// can once it validates).
    pub fn export(&self, format: ExportFormat) -> Result<String, SpecError> {
        match format {
            ExportFormat::Json => Ok(self.to_json_pretty()),
            ExportFormat::Toml => self.to_toml(),
            ExportFormat::Markdown => Ok(self.to_markdown()),
        }
    }

    /// Pretty-printed JSON, ending with a newline.
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a spec always serialises");
        s.push('\n');
        s
    }

    /// TOML text that [`PieceSpec::from_toml`] reads back to an equal spec.
    pub fn to_toml(&self) -> Result<String, SpecError> {
        let body = toml::to_string_pretty(self)
            .map_err(|e| SpecError::invalid("spec", format!("cannot be written as TOML: {e}")))?;
        Ok(format!(
            "# Tutti piece spec '{}', exported as TOML. Load it with `tutti serve --piece FILE`.\n{body}",
            one_line(&self.slug)
        ))
    }

    /// A Markdown sheet of the spec for people: identity, rates and weighting, zones, a
    /// table of parameters, and a table of mappings.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {}\n", cell(&self.title));
        let _ = writeln!(out, "Piece `{}`.\n", one_line(&self.slug).replace('`', "'"));
        out.push_str("## Rates and weighting\n\n| setting | value |\n|---|---|\n");
        let _ = writeln!(out, "| tick rate | {} Hz |", self.tick_hz);
        let _ = writeln!(out, "| state frames to phones | {} Hz |", self.state_hz);
        let _ = writeln!(out, "| inputs per client | {} /s |", self.input_rate);
        let _ = writeln!(
            out,
            "| recency half-life | {} |",
            if self.recency_half_life > 0.0 {
                format!("{} s", num(self.recency_half_life))
            } else {
                "off".to_string()
            }
        );
        let _ = writeln!(
            out,
            "| agreement weight | {} |",
            if self.agreement > 0.0 {
                num(self.agreement)
            } else {
                "off".to_string()
            }
        );
        let _ = writeln!(out, "| histogram bins | {} |", self.histogram_bins);

        out.push_str("\n## Zones\n\n");
        if self.zones.is_empty() {
            out.push_str("No seat zones: every input weighs the same.\n");
        } else {
            out.push_str("| zone | weight |\n|---|---|\n");
            for z in &self.zones {
                let _ = writeln!(out, "| {} | {} |", cell(&z.name), num(z.weight));
            }
        }

        let _ = writeln!(out, "\n## Parameters ({})\n", self.params.len());
        out.push_str(
            "| name | label | kind | range / choices | default | aggregation | smoothing | OSC |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for p in &self.params {
            let (address, lo, hi) = p.osc_target();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&p.name),
                cell(p.label()),
                kind_name(p.kind),
                range_text(p),
                default_text(p),
                aggregation_text(p),
                smoothing_text(p),
                cell(&format!("{address} ({} to {})", num(lo), num(hi))),
            );
        }

        let mappings: usize = self.params.iter().map(|p| p.map.len()).sum();
        let _ = writeln!(out, "\n## Mappings ({mappings})\n");
        if mappings == 0 {
            out.push_str("No synth mappings: parameters go out as OSC only.\n");
        } else {
            out.push_str("| parameter | target | curve | output |\n|---|---|---|---|\n");
            for p in &self.params {
                for m in &p.map {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} |",
                        cell(&p.name),
                        cell(&m.target),
                        curve_name(m.curve),
                        mapping_output(m)
                    );
                }
            }
        }
        if !self.phone.voices.is_empty() {
            let _ = writeln!(
                out,
                "\n## Phone voices ({}, cues sent {} ms ahead)\n",
                self.phone.voices.len(),
                self.phone.lead_ms
            );
            out.push_str("| voice | wave | frequency | gain | attack / hold / release |\n|---|---|---|---|---|\n");
            for v in &self.phone.voices {
                let _ = writeln!(
                    out,
                    "| {} | {:?} | {} Hz | {} | {} / {} / {} ms |",
                    cell(&v.name),
                    v.wave,
                    num(v.freq),
                    num(v.gain),
                    num(v.attack_ms),
                    num(v.hold_ms),
                    num(v.release_ms)
                );
            }
        }
        if !self.phone.drones.is_empty() {
            let _ = writeln!(out, "\n## Phone drones ({})\n", self.phone.drones.len());
            out.push_str("| drone | follows | wave | frequency | gain | smoothing |\n|---|---|---|---|---|---|\n");
            for d in &self.phone.drones {
                let freq = match d.freq_to {
                    Some(to) => format!("{}–{} Hz", num(d.freq), num(to)),
                    None => format!("{} Hz", num(d.freq)),
                };
                let follows = match &d.source {
                    Some(s) => format!(
                        "{}, from the point ({}, {}) within {} m",
                        d.follow,
                        s.x,
                        s.y,
                        num(s.radius)
                    ),
                    None => d.follow.clone(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {:?} | {freq} | 0–{} | {} ms |",
                    cell(&d.name),
                    cell(&follows),
                    d.wave,
                    num(d.gain),
                    num(d.smooth_ms)
                );
            }
        }
        out
    }
}

/// Text on one line (no control characters).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Text safe inside a Markdown table cell: one line, `|` escaped, no raw HTML.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A number without a needless `.0`.
fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn kind_name(k: ParamKindName) -> &'static str {
    match k {
        ParamKindName::Continuous => "continuous",
        ParamKindName::Discrete => "discrete",
    }
}

fn curve_name(c: Curve) -> &'static str {
    match c {
        Curve::Linear => "linear",
        Curve::Exp => "exp",
        Curve::Db => "dB",
        Curve::Steps => "steps",
    }
}

fn range_text(p: &ParamSpec) -> String {
    match p.kind {
        ParamKindName::Continuous => {
            let (lo, hi) = p.range();
            let mut s = format!("{} to {}", num(lo), num(hi));
            if let Some(u) = &p.unit {
                s.push(' ');
                s.push_str(&cell(u));
            }
            if let Some(step) = p.step {
                let _ = write!(s, ", step {}", num(step));
            }
            s
        }
        ParamKindName::Discrete => p
            .choices
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| cell(c))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn default_text(p: &ParamSpec) -> String {
    match p.kind {
        ParamKindName::Continuous => num(p.default.unwrap_or(p.range().0)),
        ParamKindName::Discrete => cell(
            p.default_choice
                .as_deref()
                .or_else(|| {
                    p.choices
                        .as_ref()
                        .and_then(|c| c.first())
                        .map(String::as_str)
                })
                .unwrap_or("-"),
        ),
    }
}

fn aggregation_text(p: &ParamSpec) -> String {
    match (p.kind, p.aggregation) {
        (ParamKindName::Discrete, _) => format!(
            "plurality (hysteresis {})",
            num(p.hysteresis.unwrap_or(0.1))
        ),
        (_, Some(AggregationName::Mean)) => "mean".to_string(),
        (_, Some(AggregationName::Median)) => "median".to_string(),
        _ => format!("trimmed mean ({})", num(p.trim.unwrap_or(0.2))),
    }
}

fn smoothing_text(p: &ParamSpec) -> String {
    let mut parts = Vec::new();
    if let Some(t) = p.smoothing.time_constant {
        parts.push(format!("τ {} s", num(t)));
    }
    if let Some(s) = p.smoothing.slew {
        parts.push(format!("slew {}/s", num(s)));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

fn mapping_output(m: &Mapping) -> String {
    match m.curve {
        Curve::Steps => m
            .steps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|x| num(*x))
            .collect::<Vec<_>>()
            .join(", "),
        Curve::Db => format!(
            "{} dB to {} dB",
            num(m.min.unwrap_or(0.0)),
            num(m.max.unwrap_or(0.0))
        ),
        _ => format!(
            "{} to {}",
            num(m.min.unwrap_or(0.0)),
            num(m.max.unwrap_or(1.0))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rich_spec() -> PieceSpec {
        PieceSpec::from_toml(
            r#"
slug = "rich-one"
title = "Rich | <b>one</b>"
tick_hz = 30
state_hz = 15
input_rate = 12
recency_half_life = 0.0
agreement = 1.5
histogram_bins = 8
[[zones]]
name = "stalls"
weight = 1.25
[[zones]]
name = "balcony"
weight = 0.5
[[params]]
name = "gain"
label = "Gain"
kind = "continuous"
min = -40.0
max = 0.0
default = -12.0
step = 0.5
unit = "dB"
aggregation = "mean"
smoothing = { time_constant = 0.25, slew = 2.0 }
osc = { address = "/mixer/gain", min = 0.0, max = 1.0 }
map = [{ target = "master.gain", min = -40.0, max = 0.0, curve = "db" }]
[[params]]
name = "mood"
kind = "discrete"
choices = ["calm", "wild"]
default_choice = "wild"
hysteresis = 0.2
map = [{ target = "rhythm.pattern", curve = "steps", steps = [0.0, 2.0] }]
[[params]]
name = "bare"
kind = "continuous"
min = 0.0
max = 1.0
"#,
        )
        .unwrap()
    }

    #[test]
    fn toml_export_round_trips() {
        for spec in [PieceSpec::demo(), rich_spec()] {
            let text = spec.export(ExportFormat::Toml).unwrap();
            let back = PieceSpec::from_toml(&text)
                .unwrap_or_else(|e| panic!("{e}\n--- exported ---\n{text}"));
            assert_eq!(back, spec);
        }
    }

    #[test]
    fn json_export_round_trips() {
        for spec in [PieceSpec::demo(), rich_spec()] {
            let text = spec.export(ExportFormat::Json).unwrap();
            assert!(text.ends_with('\n'));
            assert_eq!(PieceSpec::from_json(&text).unwrap(), spec);
        }
    }

    #[test]
    fn markdown_lists_every_parameter_zone_and_mapping() {
        let spec = rich_spec();
        let md = spec.export(ExportFormat::Markdown).unwrap();
        // The title is escaped: no raw HTML, no broken table.
        assert!(
            md.starts_with("# Rich \\| &lt;b&gt;one&lt;/b&gt;\n"),
            "{md}"
        );
        assert!(md.contains("| tick rate | 30 Hz |"));
        assert!(md.contains("| recency half-life | off |"));
        assert!(md.contains("| agreement weight | 1.5 |"));
        assert!(md.contains("| stalls | 1.25 |"));
        assert!(md.contains("| balcony | 0.5 |"));
        assert!(md.contains(
            "| gain | Gain | continuous | -40 to 0 dB, step 0.5 | -12 | mean | τ 0.25 s, slew 2/s | /mixer/gain (0 to 1) |"
        ), "{md}");
        assert!(md.contains(
            "| mood | mood | discrete | calm, wild | wild | plurality (hysteresis 0.2) | none | /tutti/mood (0 to 1) |"
        ), "{md}");
        assert!(md.contains("| bare | bare | continuous | 0 to 1 | 0 | trimmed mean (0.2) |"));
        assert!(md.contains("## Mappings (2)"));
        assert!(md.contains("| gain | master.gain | dB | -40 dB to 0 dB |"));
        assert!(md.contains("| mood | rhythm.pattern | steps | 0, 2 |"));
        // Every table row has the same number of cells as its header.
        for block in md.split("\n\n") {
            let rows: Vec<&str> = block.lines().filter(|l| l.starts_with('|')).collect();
            if let Some(head) = rows.first() {
                let n = head.matches(" | ").count();
                for r in &rows[2..] {
                    assert_eq!(r.replace("\\|", "").matches(" | ").count(), n, "{r}");
                }
            }
        }
    }

    #[test]
    fn markdown_of_the_demo_has_all_eight_parameters() {
        let md = PieceSpec::demo().to_markdown();
        assert!(md.contains("## Parameters (8)"));
        for p in &PieceSpec::demo().params {
            assert!(md.contains(&format!("\n| {} | ", p.name)), "{}", p.name);
        }
        assert!(md.contains("| front | 1 |"));
        assert!(
            md.contains("| intensity | drone.amp | exp | 0.01 to 0.8 |"),
            "{md}"
        );
        assert!(
            md.contains("| section | rhythm.pattern | steps | 0, 1, 2 |"),
            "{md}"
        );
    }

    #[test]
    fn formats_parse_by_name() {
        for f in ExportFormat::ALL {
            assert_eq!(f.name().parse::<ExportFormat>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(
            "MD".parse::<ExportFormat>().unwrap(),
            ExportFormat::Markdown
        );
        match "yaml".parse::<ExportFormat>().unwrap_err() {
            SpecError::Invalid { field, message } => {
                assert_eq!(field, "format");
                assert!(message.contains("'yaml'"), "{message}");
            }
            e => panic!("{e}"),
        }
    }
}
