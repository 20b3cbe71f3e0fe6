//! Renders a consensus snapshot into the `state` frame's JSON, once per tick, into a
//! reused buffer. Two forms: compact (audience) and detailed (performers, displays).
//! See `docs/protocol.md`.
//!
//! Must never: allocate per participant, or be called more than once per tick per form.

use std::fmt::Write;

use tutti_consensus::{OverrideMode, Snapshot};
use tutti_spec::{ParamKindName, PieceSpec};

/// Pre-escaped names of the piece, so rendering writes only numbers.
pub struct Renderer {
    names: Vec<String>,
    choices: Vec<Vec<String>>,
    performers: std::collections::HashMap<u32, String>,
}

fn num(out: &mut String, v: f64) {
    let v = if v.is_finite() { v } else { 0.0 };
    let r = (v * 1e5).round() / 1e5;
    // `{}` prints the shortest representation that round-trips.
    let _ = write!(out, "{}", if r == 0.0 { 0.0 } else { r });
}

impl Renderer {
    /// Prepare for a piece.
    pub fn new(spec: &PieceSpec) -> Renderer {
        let esc = |s: &str| serde_json::to_string(s).expect("strings serialise");
        Renderer {
            names: spec.params.iter().map(|p| esc(&p.name)).collect(),
            choices: spec
                .params
                .iter()
                .map(|p| match p.kind {
                    ParamKindName::Discrete => p
                        .choices
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .map(|c| esc(c))
                        .collect(),
                    ParamKindName::Continuous => Vec::new(),
                })
                .collect(),
            performers: Default::default(),
        }
    }

    /// Name shown for an override's author (`by` id).
    pub fn name_performer(&mut self, by: u32, name: &str) {
        self.performers.insert(by, name.to_string());
    }

    /// Render into `out` (cleared first).
    #[allow(clippy::too_many_arguments)]
    pub fn render(
        &self,
        out: &mut String,
        snap: &Snapshot,
        tick: u64,
        status: &str,
        rate: f64,
        participants: usize,
        detail: bool,
        now: f64,
    ) {
        out.clear();
        let _ = write!(
            out,
            "{{\"type\":\"state\",\"tick\":{},\"status\":\"{status}\",\"bypass\":{},\"rate\":",
            tick, snap.bypass
        );
        num(out, rate);
        let _ = write!(out, ",\"participants\":{participants},\"params\":{{");
        for (i, p) in snap.params.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&self.names[i]);
            out.push_str(":{\"value\":");
            num(out, p.value);
            let choices = &self.choices[i];
            if !choices.is_empty() {
                let idx = (p.value.round().max(0.0) as usize).min(choices.len() - 1);
                out.push_str(",\"choice\":");
                out.push_str(&choices[idx]);
            }
            let _ = write!(out, ",\"participants\":{},\"agreement\":", p.participants);
            num(out, p.agreement);
            if detail {
                if let Some(raw) = p.raw {
                    out.push_str(",\"raw\":");
                    num(out, raw);
                }
                out.push_str(",\"participation\":");
                num(out, p.participation);
                out.push_str(",\"dispersion\":");
                num(out, p.dispersion);
                if choices.is_empty() {
                    out.push_str(",\"histogram\":[");
                    for (j, h) in p.histogram.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        num(out, f64::from(*h));
                    }
                    out.push(']');
                } else {
                    out.push_str(",\"choices\":[");
                    for (j, h) in p.choice_weights.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        num(out, f64::from(*h));
                    }
                    out.push(']');
                }
                out.push_str(",\"overrides\":[");
                for (j, o) in p.overrides.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    let (mode, a, b) = match o.mode {
                        OverrideMode::Clamp { lo, hi } => ("clamp", Some(lo), Some(hi)),
                        OverrideMode::Bias { amount } => ("bias", Some(amount), None),
                        OverrideMode::Blend { target, factor } => {
                            ("blend", Some(target), Some(factor))
                        }
                        OverrideMode::Lock { value } => ("lock", Some(value), None),
                        OverrideMode::Freeze => ("freeze", None, None),
                    };
                    let by = self
                        .performers
                        .get(&o.by)
                        .map_or("performer", String::as_str);
                    let _ = write!(out, "{{\"mode\":\"{mode}\",\"by\":\"{by}\"");
                    if let Some(a) = a {
                        out.push_str(",\"a\":");
                        num(out, a);
                    }
                    if let Some(b) = b {
                        out.push_str(",\"b\":");
                        num(out, b);
                    }
                    if let Some(exp) = o.expires_at {
                        out.push_str(",\"expires_in\":");
                        num(out, (exp - now).max(0.0));
                    }
                    out.push('}');
                }
                out.push(']');
            }
            out.push('}');
        }
        out.push_str("}}");
    }
}
