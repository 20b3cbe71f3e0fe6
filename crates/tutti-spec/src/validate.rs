//! Validation of a [`PieceSpec`]: every limit in one place, every error naming its field.
//! Display text (title, labels, units, choices) is checked by [`crate::text`]: lengths in
//! characters, no bidirectional controls or invisible characters.

use std::collections::HashSet;

use crate::text::check_display;
use crate::{AggregationName, ParamKindName, ParamSpec, PieceSpec, SpecError};

fn name_ok(s: &str, max: usize, allow_dash: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (allow_dash && c == '-')
        })
}

fn finite(field: &str, v: Option<f64>) -> Result<(), SpecError> {
    match v {
        Some(x) if !x.is_finite() => Err(SpecError::invalid(field, "must be a finite number")),
        _ => Ok(()),
    }
}

impl PieceSpec {
    /// Check every field against its limits. The error names the first bad field.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !name_ok(&self.slug, 64, true) {
            return Err(SpecError::invalid(
                "slug",
                "must be 1–64 characters of a-z, 0-9, '-' or '_'",
            ));
        }
        if let Some(problem) = check_display(&self.title, 1, 200) {
            return Err(SpecError::invalid("title", problem));
        }
        if !(10..=60).contains(&self.tick_hz) {
            return Err(SpecError::invalid(
                "tick_hz",
                format!("must be 10–60 Hz (got {})", self.tick_hz),
            ));
        }
        if !(1..=60).contains(&self.state_hz) {
            return Err(SpecError::invalid(
                "state_hz",
                format!("must be 1–60 Hz (got {})", self.state_hz),
            ));
        }
        if !(1..=100).contains(&self.input_rate) {
            return Err(SpecError::invalid(
                "input_rate",
                format!("must be 1–100 inputs/s (got {})", self.input_rate),
            ));
        }
        let h = self.recency_half_life;
        if !h.is_finite() || !(h == 0.0 || (0.1..=3600.0).contains(&h)) {
            return Err(SpecError::invalid(
                "recency_half_life",
                "must be 0 (off) or 0.1–3600 seconds",
            ));
        }
        if !self.agreement.is_finite() || !(0.0..=10.0).contains(&self.agreement) {
            return Err(SpecError::invalid("agreement", "must be 0–10"));
        }
        if !(4..=64).contains(&self.histogram_bins) {
            return Err(SpecError::invalid("histogram_bins", "must be 4–64"));
        }
        if self.zones.len() > 64 {
            return Err(SpecError::invalid("zones", "at most 64 zones"));
        }
        let mut seen = HashSet::new();
        for (i, z) in self.zones.iter().enumerate() {
            if !name_ok(&z.name, 32, true) {
                return Err(SpecError::invalid(
                    format!("zones[{i}].name"),
                    "must be 1–32 characters of a-z, 0-9, '-' or '_'",
                ));
            }
            if !seen.insert(z.name.as_str()) {
                return Err(SpecError::invalid(
                    format!("zones[{i}].name"),
                    format!("duplicate zone '{}'", z.name),
                ));
            }
            if !z.weight.is_finite() || !(0.0..=10.0).contains(&z.weight) {
                return Err(SpecError::invalid(
                    format!("zones[{i}].weight"),
                    "must be 0–10",
                ));
            }
        }
        if self.params.is_empty() || self.params.len() > 32 {
            return Err(SpecError::invalid("params", "needs 1–32 parameters"));
        }
        let mut seen = HashSet::new();
        for (i, p) in self.params.iter().enumerate() {
            let f = format!("params[{i}]");
            if !seen.insert(p.name.as_str()) {
                return Err(SpecError::invalid(
                    format!("{f}.name"),
                    format!("duplicate parameter '{}'", p.name),
                ));
            }
            validate_param(&f, p)?;
        }
        validate_phone(&self.phone)?;
        validate_drones(self)
    }
}

fn validate_drones(spec: &crate::PieceSpec) -> Result<(), SpecError> {
    let ph = &spec.phone;
    if ph.drones.len() > 4 {
        return Err(SpecError::invalid("phone.drones", "at most 4 drones"));
    }
    let mut seen: HashSet<&str> = ph.voices.iter().map(|v| v.name.as_str()).collect();
    for (i, d) in ph.drones.iter().enumerate() {
        let f = format!("phone.drones[{i}]");
        if !name_ok(&d.name, 32, true) {
            return Err(SpecError::invalid(
                format!("{f}.name"),
                "must be 1–32 characters of a-z, 0-9, '-' or '_'",
            ));
        }
        if !seen.insert(d.name.as_str()) {
            return Err(SpecError::invalid(
                format!("{f}.name"),
                format!("'{}' is already a voice or drone", d.name),
            ));
        }
        let continuous =
            |field: String, name: &str| match spec.params.iter().find(|p| p.name == name) {
                None => Err(SpecError::invalid(field, format!("no parameter '{name}'"))),
                Some(p) if p.kind != ParamKindName::Continuous => Err(SpecError::invalid(
                    field,
                    format!("'{name}' is not a continuous parameter"),
                )),
                Some(_) => Ok(()),
            };
        continuous(format!("{f}.follow"), &d.follow)?;
        if let Some(s) = &d.source {
            if ph.hall.is_none() {
                return Err(SpecError::invalid(
                    format!("{f}.source"),
                    "a moving source needs the piece's hall ([phone] hall = { width, depth })",
                ));
            }
            continuous(format!("{f}.source.x"), &s.x)?;
            continuous(format!("{f}.source.y"), &s.y)?;
            if !s.radius.is_finite() || !(0.5..=2_000.0).contains(&s.radius) {
                return Err(SpecError::invalid(
                    format!("{f}.source.radius"),
                    format!("must be 0.5–2000 metres (got {})", s.radius),
                ));
            }
        }
        for (field, x, lo, hi) in [
            ("freq", d.freq, 20.0, 20_000.0),
            ("freq_to", d.freq_to.unwrap_or(d.freq), 20.0, 20_000.0),
            ("gain", d.gain, 0.0, 1.0),
            ("smooth_ms", d.smooth_ms, 10.0, 10_000.0),
        ] {
            if !x.is_finite() || !(lo..=hi).contains(&x) {
                return Err(SpecError::invalid(
                    format!("{f}.{field}"),
                    format!("must be {lo}–{hi} (got {x})"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_phone(ph: &crate::PhoneSpec) -> Result<(), SpecError> {
    if !(20..=2_000).contains(&ph.lead_ms) {
        return Err(SpecError::invalid(
            "phone.lead_ms",
            format!("must be 20–2000 ms (got {})", ph.lead_ms),
        ));
    }
    if let Some(h) = ph.hall {
        for (field, x) in [("width", h.width), ("depth", h.depth)] {
            if !x.is_finite() || !(1.0..=1_000.0).contains(&x) {
                return Err(SpecError::invalid(
                    format!("phone.hall.{field}"),
                    format!("must be 1–1000 metres (got {x})"),
                ));
            }
        }
    }
    if ph.voices.len() > 16 {
        return Err(SpecError::invalid("phone.voices", "at most 16 voices"));
    }
    let mut seen = HashSet::new();
    for (i, v) in ph.voices.iter().enumerate() {
        let f = format!("phone.voices[{i}]");
        if !name_ok(&v.name, 32, true) {
            return Err(SpecError::invalid(
                format!("{f}.name"),
                "must be 1–32 characters of a-z, 0-9, '-' or '_'",
            ));
        }
        if !seen.insert(v.name.as_str()) {
            return Err(SpecError::invalid(
                format!("{f}.name"),
                format!("duplicate voice '{}'", v.name),
            ));
        }
        for (field, x, lo, hi) in [
            ("freq", v.freq, 20.0, 20_000.0),
            ("gain", v.gain, 0.0, 1.0),
            ("attack_ms", v.attack_ms, 0.0, 5_000.0),
            ("hold_ms", v.hold_ms, 0.0, 10_000.0),
            ("release_ms", v.release_ms, 1.0, 10_000.0),
        ] {
            if !x.is_finite() || !(lo..=hi).contains(&x) {
                return Err(SpecError::invalid(
                    format!("{f}.{field}"),
                    format!("must be {lo}–{hi} (got {x})"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_param(f: &str, p: &ParamSpec) -> Result<(), SpecError> {
    if !(p.name.starts_with(|c: char| c.is_ascii_lowercase()) && name_ok(&p.name, 32, false)) {
        return Err(SpecError::invalid(
            format!("{f}.name"),
            "must start with a-z and have 1–32 characters of a-z, 0-9 or '_'",
        ));
    }
    for (k, text, max) in [("label", &p.label, 64), ("unit", &p.unit, 32)] {
        if let Some(problem) = text.as_deref().and_then(|t| check_display(t, 1, max)) {
            return Err(SpecError::invalid(format!("{f}.{k}"), problem));
        }
    }
    for (k, v) in [
        ("min", p.min),
        ("max", p.max),
        ("default", p.default),
        ("step", p.step),
        ("hysteresis", p.hysteresis),
        ("trim", p.trim),
        ("smoothing.time_constant", p.smoothing.time_constant),
        ("smoothing.slew", p.smoothing.slew),
    ] {
        finite(&format!("{f}.{k}"), v)?;
    }
    if let Some(tc) = p.smoothing.time_constant {
        if !(0.0..=60.0).contains(&tc) {
            return Err(SpecError::invalid(
                format!("{f}.smoothing.time_constant"),
                "must be 0–60 seconds",
            ));
        }
    }
    if let Some(s) = p.smoothing.slew {
        if s <= 0.0 || s > 1000.0 {
            return Err(SpecError::invalid(
                format!("{f}.smoothing.slew"),
                "must be > 0 and ≤ 1000 (fraction of the range per second)",
            ));
        }
    }
    let not_allowed = |k: &str| {
        SpecError::invalid(
            format!("{f}.{k}"),
            format!("not allowed for a {:?} parameter", p.kind).to_lowercase(),
        )
    };
    match p.kind {
        ParamKindName::Continuous => {
            let (min, max) = match (p.min, p.max) {
                (Some(a), Some(b)) => (a, b),
                (None, _) => return Err(SpecError::invalid(format!("{f}.min"), "is required")),
                (_, None) => return Err(SpecError::invalid(format!("{f}.max"), "is required")),
            };
            if min >= max {
                return Err(SpecError::invalid(
                    format!("{f}.max"),
                    format!("must be greater than min ({min} ≥ {max})"),
                ));
            }
            if let Some(d) = p.default {
                if !(min..=max).contains(&d) {
                    return Err(SpecError::invalid(
                        format!("{f}.default"),
                        format!("{d} is outside {min}..{max}"),
                    ));
                }
            }
            if let Some(s) = p.step {
                if s <= 0.0 || s > max - min {
                    return Err(SpecError::invalid(
                        format!("{f}.step"),
                        "must be > 0 and no larger than the range",
                    ));
                }
            }
            if p.choices.is_some() {
                return Err(not_allowed("choices"));
            }
            if p.default_choice.is_some() {
                return Err(not_allowed("default_choice"));
            }
            if p.hysteresis.is_some() {
                return Err(not_allowed("hysteresis"));
            }
            if p.aggregation == Some(AggregationName::Plurality) {
                return Err(SpecError::invalid(
                    format!("{f}.aggregation"),
                    "plurality is for discrete parameters",
                ));
            }
            if let Some(t) = p.trim {
                if !(0.0..=0.45).contains(&t) {
                    return Err(SpecError::invalid(format!("{f}.trim"), "must be 0–0.45"));
                }
            }
        }
        ParamKindName::Discrete => {
            let choices = p
                .choices
                .as_ref()
                .ok_or_else(|| SpecError::invalid(format!("{f}.choices"), "is required"))?;
            if !(2..=16).contains(&choices.len()) {
                return Err(SpecError::invalid(
                    format!("{f}.choices"),
                    "needs 2–16 choices",
                ));
            }
            let mut seen = HashSet::new();
            for (j, c) in choices.iter().enumerate() {
                if let Some(problem) = check_display(c, 1, 32) {
                    return Err(SpecError::invalid(format!("{f}.choices[{j}]"), problem));
                }
                if !seen.insert(c.as_str()) {
                    return Err(SpecError::invalid(
                        format!("{f}.choices[{j}]"),
                        format!("duplicate choice '{c}'"),
                    ));
                }
            }
            if let Some(d) = &p.default_choice {
                if p.choice_index(d).is_none() {
                    return Err(SpecError::invalid(
                        format!("{f}.default_choice"),
                        format!("'{d}' is not one of the choices"),
                    ));
                }
            }
            if let Some(h) = p.hysteresis {
                if !(0.0..=0.5).contains(&h) {
                    return Err(SpecError::invalid(
                        format!("{f}.hysteresis"),
                        "must be 0–0.5",
                    ));
                }
            }
            for k in ["min", "max", "default", "step", "trim"] {
                let present = match k {
                    "min" => p.min.is_some(),
                    "max" => p.max.is_some(),
                    "default" => p.default.is_some(),
                    "step" => p.step.is_some(),
                    _ => p.trim.is_some(),
                };
                if present {
                    return Err(not_allowed(k));
                }
            }
            if matches!(p.aggregation, Some(a) if a != AggregationName::Plurality) {
                return Err(SpecError::invalid(
                    format!("{f}.aggregation"),
                    "discrete parameters use plurality",
                ));
            }
        }
    }
    if let Some(o) = &p.osc {
        if let Some(a) = &o.address {
            let bad = a.chars().any(|c| " #*,?[]{}".contains(c) || c.is_control());
            if !a.starts_with('/') || a.len() > 128 || bad {
                return Err(SpecError::invalid(
                    format!("{f}.osc.address"),
                    format!("'{a}' is not a valid OSC address"),
                ));
            }
        }
        finite(&format!("{f}.osc.min"), o.min)?;
        finite(&format!("{f}.osc.max"), o.max)?;
    }
    if p.map.len() > 16 {
        return Err(SpecError::invalid(
            format!("{f}.map"),
            "at most 16 mappings",
        ));
    }
    for (j, m) in p.map.iter().enumerate() {
        m.validate(&format!("{f}.map[{j}]"))?;
    }
    Ok(())
}
