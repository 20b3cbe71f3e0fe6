//! Spec fragments: what a pack's `base` and a fired rule's `then` do to the draft
//! [`PieceSpec`]. Each fragment is a one-key object (`set`, `param`, `patch_param`,
//! `remove_param`, `map`, `zone`, `zones`); any value in it may be a literal or a
//! computed field `"=expr"`. A computed field that gives `null` (e.g. from an unanswered
//! question) leaves the draft's field as it was.
//!
//! Must never: produce a number that is not finite, an integer out of range, or silently
//! accept a value of the wrong type (each is an error naming the field).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tutti_spec::{
    AggregationName, Curve, Mapping, OscSpec, ParamKindName, ParamSpec, PieceSpec, SmoothingSpec,
    ZoneSpec,
};

use crate::expr::{Answers, Expr, Ty, Value};

/// A literal value, or an expression written as a string starting with `=`.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<T> {
    /// A literal.
    Lit(T),
    /// A computed value.
    Expr(Expr),
}

/// Types a [`Field`] can hold: how an expression value converts into them.
pub trait FieldValue: Sized + Clone {
    /// The static type an expression for this field must have.
    const TY: Ty;
    /// What the field wants, in words.
    const WHAT: &'static str;
    /// Convert an evaluated (non-null) value.
    fn from_value(v: &Value) -> Option<Self>;
}

impl FieldValue for f64 {
    const TY: Ty = Ty::Num;
    const WHAT: &'static str = "a finite number";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Num(n) if n.is_finite() => Some(*n),
            _ => None,
        }
    }
}

impl FieldValue for u32 {
    const TY: Ty = Ty::Num;
    const WHAT: &'static str = "a whole number from 0 to 4294967295";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Num(n) if n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(n) => {
                Some(*n as u32)
            }
            _ => None,
        }
    }
}

impl FieldValue for usize {
    const TY: Ty = Ty::Num;
    const WHAT: &'static str = "a whole number from 0 to 65535";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Num(n) if n.fract() == 0.0 && (0.0..=65535.0).contains(n) => Some(*n as usize),
            _ => None,
        }
    }
}

impl FieldValue for String {
    const TY: Ty = Ty::Str;
    const WHAT: &'static str = "text";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FieldValue for Vec<String> {
    const TY: Ty = Ty::List;
    const WHAT: &'static str = "a list of texts";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::List(items) => items
                .iter()
                .map(|i| match i {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

impl FieldValue for Vec<f64> {
    const TY: Ty = Ty::List;
    const WHAT: &'static str = "a list of numbers";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::List(items) => items.iter().map(f64::from_value).collect(),
            _ => None,
        }
    }
}

impl FieldValue for AggregationName {
    const TY: Ty = Ty::Str;
    const WHAT: &'static str = "one of mean, median, trimmed_mean, plurality";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Str(s) => serde_json::from_value(serde_json::Value::String(s.clone())).ok(),
            _ => None,
        }
    }
}

impl FieldValue for Curve {
    const TY: Ty = Ty::Str;
    const WHAT: &'static str = "one of linear, exp, db, steps";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Str(s) => serde_json::from_value(serde_json::Value::String(s.clone())).ok(),
            _ => None,
        }
    }
}

impl<T: FieldValue> Field<T> {
    /// The field's value for these answers; `None` when an expression gives `null`.
    pub fn resolve(&self, env: &dyn Answers, path: &str) -> Result<Option<T>, FragError> {
        match self {
            Field::Lit(v) => Ok(Some(v.clone())),
            Field::Expr(e) => {
                let v = e.eval(env, path).map_err(|err| FragError {
                    field: path.to_string(),
                    message: err.to_string(),
                })?;
                if v == Value::Null {
                    return Ok(None);
                }
                T::from_value(&v).map(Some).ok_or_else(|| FragError {
                    field: path.to_string(),
                    message: format!(
                        "`{}` gave {} ({}), expected {}",
                        e.source(),
                        crate::error::snippet(&v.to_string(), 40),
                        v.type_name(),
                        T::WHAT
                    ),
                })
            }
        }
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Lit(v) => v.serialize(s),
            Field::Expr(e) => s.serialize_str(&format!("={}", e.source())),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if let serde_json::Value::String(s) = &v {
            if let Some(src) = s.strip_prefix('=') {
                return Expr::parse_for_serde(src)
                    .map(Field::Expr)
                    .map_err(D::Error::custom);
            }
        }
        T::deserialize(v).map(Field::Lit).map_err(D::Error::custom)
    }
}

/// An error applying a fragment: the field path within the fragment list and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct FragError {
    /// E.g. `then[1].param.max`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn ferr(field: impl Into<String>, message: impl Into<String>) -> FragError {
    FragError {
        field: field.into(),
        message: message.into(),
    }
}

/// Spec-wide settings; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFragment {
    /// `slug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<Field<String>>,
    /// `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Field<String>>,
    /// `tick_hz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_hz: Option<Field<u32>>,
    /// `state_hz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_hz: Option<Field<u32>>,
    /// `input_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_rate: Option<Field<u32>>,
    /// `recency_half_life`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recency_half_life: Option<Field<f64>>,
    /// `agreement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Field<f64>>,
    /// `histogram_bins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_bins: Option<Field<usize>>,
}

/// Smoothing of a parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoothingFragment {
    /// Exponential time constant in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_constant: Option<Field<f64>>,
    /// Maximum change per second (fraction of the range).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slew: Option<Field<f64>>,
}

/// OSC output of a parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscFragment {
    /// OSC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Field<String>>,
    /// Output at the bottom of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Field<f64>>,
    /// Output at the top of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Field<f64>>,
}

/// A mapping to a synth control (`voice.control`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFragment {
    /// `voice.control`, e.g. `drone.cutoff` or `master.reverb_mix`.
    pub target: Field<String>,
    /// Output at the bottom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Field<f64>>,
    /// Output at the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Field<f64>>,
    /// Curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<Field<Curve>>,
    /// Outputs for the `steps` curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Field<Vec<f64>>>,
}

/// A parameter, whole (`param`) or in part (`patch_param`). Fields mirror
/// [`ParamSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamFragment {
    /// Parameter name (a literal: other fragments refer to it).
    pub name: String,
    /// Slider or vote (required for `param`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ParamKindName>,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Field<String>>,
    /// Bottom of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Field<f64>>,
    /// Top of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Field<f64>>,
    /// Default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Field<f64>>,
    /// Slider step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Field<f64>>,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Field<String>>,
    /// Vote choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Field<Vec<String>>>,
    /// Default choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_choice: Option<Field<String>>,
    /// Vote hysteresis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hysteresis: Option<Field<f64>>,
    /// Aggregation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<Field<AggregationName>>,
    /// Trimmed-mean trim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Option<Field<f64>>,
    /// Smoothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<SmoothingFragment>,
    /// OSC output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osc: Option<OscFragment>,
    /// Mappings (replace the parameter's mappings when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<Vec<MappingFragment>>,
}

/// Add a mapping to an existing parameter (replacing one with the same target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMapping {
    /// The parameter's name.
    pub param: String,
    /// `voice.control`.
    pub target: Field<String>,
    /// Output at the bottom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Field<f64>>,
    /// Output at the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Field<f64>>,
    /// Curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<Field<Curve>>,
    /// Outputs for `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Field<Vec<f64>>>,
}

/// Add or replace one zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFragment {
    /// Zone name.
    pub name: Field<String>,
    /// Zone weight (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Field<f64>>,
}

/// Replace all zones by these names, each with the same weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZonesFragment {
    /// Zone names (e.g. a multiple-choice answer).
    pub names: Field<Vec<String>>,
    /// Weight of each (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Field<f64>>,
}

/// One change to the draft spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fragment {
    /// Set spec-wide settings (slug, title, rates, weighting).
    Set(SettingsFragment),
    /// Add a parameter, or replace the one with the same name.
    Param(ParamFragment),
    /// Change some fields of an existing parameter.
    PatchParam(ParamFragment),
    /// Remove a parameter if present.
    RemoveParam(String),
    /// Add a mapping to an existing parameter.
    Map(AddMapping),
    /// Add or replace a zone.
    Zone(ZoneFragment),
    /// Replace all zones.
    Zones(ZonesFragment),
}

/// Calls `f(path, expr, wanted type)` for every computed field of a fragment.
pub(crate) type ExprVisitor<'a> = dyn FnMut(&str, &Expr, Ty) -> Result<(), crate::WizardError> + 'a;

fn visit<T: FieldValue>(
    field: &Option<Field<T>>,
    path: &str,
    name: &str,
    f: &mut ExprVisitor<'_>,
) -> Result<(), crate::WizardError> {
    if let Some(Field::Expr(e)) = field {
        f(&format!("{path}.{name}"), e, T::TY)?;
    }
    Ok(())
}

fn visit_req<T: FieldValue>(
    field: &Field<T>,
    path: &str,
    name: &str,
    f: &mut ExprVisitor<'_>,
) -> Result<(), crate::WizardError> {
    if let Field::Expr(e) = field {
        f(&format!("{path}.{name}"), e, T::TY)?;
    }
    Ok(())
}

fn visit_mapping(
    target: &Field<String>,
    min: &Option<Field<f64>>,
    max: &Option<Field<f64>>,
    curve: &Option<Field<Curve>>,
    steps: &Option<Field<Vec<f64>>>,
    p: &str,
    f: &mut ExprVisitor<'_>,
) -> Result<(), crate::WizardError> {
    visit_req(target, p, "target", f)?;
    visit(min, p, "min", f)?;
    visit(max, p, "max", f)?;
    visit(curve, p, "curve", f)?;
    visit(steps, p, "steps", f)
}

impl Fragment {
    /// The fragment's key (`set`, `param`, …).
    pub fn key(&self) -> &'static str {
        match self {
            Fragment::Set(_) => "set",
            Fragment::Param(_) => "param",
            Fragment::PatchParam(_) => "patch_param",
            Fragment::RemoveParam(_) => "remove_param",
            Fragment::Map(_) => "map",
            Fragment::Zone(_) => "zone",
            Fragment::Zones(_) => "zones",
        }
    }

    pub(crate) fn visit_exprs(
        &self,
        path: &str,
        f: &mut ExprVisitor<'_>,
    ) -> Result<(), crate::WizardError> {
        let p = format!("{path}.{}", self.key());
        match self {
            Fragment::Set(s) => {
                visit(&s.slug, &p, "slug", f)?;
                visit(&s.title, &p, "title", f)?;
                visit(&s.tick_hz, &p, "tick_hz", f)?;
                visit(&s.state_hz, &p, "state_hz", f)?;
                visit(&s.input_rate, &p, "input_rate", f)?;
                visit(&s.recency_half_life, &p, "recency_half_life", f)?;
                visit(&s.agreement, &p, "agreement", f)?;
                visit(&s.histogram_bins, &p, "histogram_bins", f)
            }
            Fragment::Param(pf) | Fragment::PatchParam(pf) => {
                visit(&pf.label, &p, "label", f)?;
                visit(&pf.min, &p, "min", f)?;
                visit(&pf.max, &p, "max", f)?;
                visit(&pf.default, &p, "default", f)?;
                visit(&pf.step, &p, "step", f)?;
                visit(&pf.unit, &p, "unit", f)?;
                visit(&pf.choices, &p, "choices", f)?;
                visit(&pf.default_choice, &p, "default_choice", f)?;
                visit(&pf.hysteresis, &p, "hysteresis", f)?;
                visit(&pf.aggregation, &p, "aggregation", f)?;
                visit(&pf.trim, &p, "trim", f)?;
                if let Some(s) = &pf.smoothing {
                    visit(&s.time_constant, &p, "smoothing.time_constant", f)?;
                    visit(&s.slew, &p, "smoothing.slew", f)?;
                }
                if let Some(o) = &pf.osc {
                    visit(&o.address, &p, "osc.address", f)?;
                    visit(&o.min, &p, "osc.min", f)?;
                    visit(&o.max, &p, "osc.max", f)?;
                }
                for (i, m) in pf.map.iter().flatten().enumerate() {
                    let mp = format!("{p}.map[{i}]");
                    visit_mapping(&m.target, &m.min, &m.max, &m.curve, &m.steps, &mp, f)?;
                }
                Ok(())
            }
            Fragment::RemoveParam(_) => Ok(()),
            Fragment::Map(m) => visit_mapping(&m.target, &m.min, &m.max, &m.curve, &m.steps, &p, f),
            Fragment::Zone(z) => {
                visit_req(&z.name, &p, "name", f)?;
                visit(&z.weight, &p, "weight", f)
            }
            Fragment::Zones(z) => {
                visit_req(&z.names, &p, "names", f)?;
                visit(&z.weight, &p, "weight", f)
            }
        }
    }

    /// Apply to the draft. `path` is the fragment's place (e.g. `then[2]`).
    pub fn apply(
        &self,
        spec: &mut PieceSpec,
        env: &dyn Answers,
        path: &str,
    ) -> Result<(), FragError> {
        let p = format!("{path}.{}", self.key());
        match self {
            Fragment::Set(s) => apply_settings(s, spec, env, &p),
            Fragment::Param(pf) => {
                let kind = pf
                    .kind
                    .ok_or_else(|| ferr(format!("{p}.kind"), "is required to add a parameter"))?;
                let mut param = ParamSpec {
                    name: pf.name.clone(),
                    label: None,
                    kind,
                    min: None,
                    max: None,
                    default: None,
                    step: None,
                    unit: None,
                    choices: None,
                    default_choice: None,
                    hysteresis: None,
                    aggregation: None,
                    trim: None,
                    smoothing: SmoothingSpec::default(),
                    osc: None,
                    map: Vec::new(),
                };
                patch_param(&mut param, pf, env, &p)?;
                match spec.param_index(&pf.name) {
                    Some(i) => spec.params[i] = param,
                    None => spec.params.push(param),
                }
                Ok(())
            }
            Fragment::PatchParam(pf) => {
                let i = spec.param_index(&pf.name).ok_or_else(|| {
                    ferr(
                        format!("{p}.name"),
                        format!("no parameter '{}' in the draft to patch", pf.name),
                    )
                })?;
                let mut param = spec.params[i].clone();
                if let Some(k) = pf.kind {
                    param.kind = k;
                }
                patch_param(&mut param, pf, env, &p)?;
                spec.params[i] = param;
                Ok(())
            }
            Fragment::RemoveParam(name) => {
                spec.params.retain(|x| x.name != *name);
                Ok(())
            }
            Fragment::Map(m) => {
                let i = spec.param_index(&m.param).ok_or_else(|| {
                    ferr(
                        format!("{p}.param"),
                        format!("no parameter '{}' in the draft to map", m.param),
                    )
                })?;
                let Some(mapping) =
                    build_mapping(&m.target, &m.min, &m.max, &m.curve, &m.steps, env, &p)?
                else {
                    return Ok(());
                };
                let maps = &mut spec.params[i].map;
                match maps.iter().position(|x| x.target == mapping.target) {
                    Some(j) => maps[j] = mapping,
                    None => maps.push(mapping),
                }
                Ok(())
            }
            Fragment::Zone(z) => {
                let Some(name) = z.name.resolve(env, &format!("{p}.name"))? else {
                    return Ok(());
                };
                let weight = resolve(&z.weight, env, &p, "weight")?.unwrap_or(1.0);
                match spec.zone_index(&name) {
                    Some(i) => spec.zones[i].weight = weight,
                    None => spec.zones.push(ZoneSpec { name, weight }),
                }
                Ok(())
            }
            Fragment::Zones(z) => {
                let Some(names) = z.names.resolve(env, &format!("{p}.names"))? else {
                    return Ok(());
                };
                let weight = resolve(&z.weight, env, &p, "weight")?.unwrap_or(1.0);
                spec.zones = names
                    .into_iter()
                    .map(|name| ZoneSpec { name, weight })
                    .collect();
                Ok(())
            }
        }
    }
}

fn resolve<T: FieldValue>(
    field: &Option<Field<T>>,
    env: &dyn Answers,
    path: &str,
    name: &str,
) -> Result<Option<T>, FragError> {
    match field {
        Some(f) => f.resolve(env, &format!("{path}.{name}")),
        None => Ok(None),
    }
}

fn set<T: FieldValue>(
    target: &mut T,
    field: &Option<Field<T>>,
    env: &dyn Answers,
    path: &str,
    name: &str,
) -> Result<(), FragError> {
    if let Some(v) = resolve(field, env, path, name)? {
        *target = v;
    }
    Ok(())
}

fn set_opt<T: FieldValue>(
    target: &mut Option<T>,
    field: &Option<Field<T>>,
    env: &dyn Answers,
    path: &str,
    name: &str,
) -> Result<(), FragError> {
    if let Some(v) = resolve(field, env, path, name)? {
        *target = Some(v);
    }
    Ok(())
}

fn apply_settings(
    s: &SettingsFragment,
    spec: &mut PieceSpec,
    env: &dyn Answers,
    p: &str,
) -> Result<(), FragError> {
    set(&mut spec.slug, &s.slug, env, p, "slug")?;
    set(&mut spec.title, &s.title, env, p, "title")?;
    set(&mut spec.tick_hz, &s.tick_hz, env, p, "tick_hz")?;
    set(&mut spec.state_hz, &s.state_hz, env, p, "state_hz")?;
    set(&mut spec.input_rate, &s.input_rate, env, p, "input_rate")?;
    set(
        &mut spec.recency_half_life,
        &s.recency_half_life,
        env,
        p,
        "recency_half_life",
    )?;
    set(&mut spec.agreement, &s.agreement, env, p, "agreement")?;
    set(
        &mut spec.histogram_bins,
        &s.histogram_bins,
        env,
        p,
        "histogram_bins",
    )
}

fn patch_param(
    param: &mut ParamSpec,
    pf: &ParamFragment,
    env: &dyn Answers,
    p: &str,
) -> Result<(), FragError> {
    set_opt(&mut param.label, &pf.label, env, p, "label")?;
    set_opt(&mut param.min, &pf.min, env, p, "min")?;
    set_opt(&mut param.max, &pf.max, env, p, "max")?;
    set_opt(&mut param.default, &pf.default, env, p, "default")?;
    set_opt(&mut param.step, &pf.step, env, p, "step")?;
    set_opt(&mut param.unit, &pf.unit, env, p, "unit")?;
    set_opt(&mut param.choices, &pf.choices, env, p, "choices")?;
    set_opt(
        &mut param.default_choice,
        &pf.default_choice,
        env,
        p,
        "default_choice",
    )?;
    set_opt(&mut param.hysteresis, &pf.hysteresis, env, p, "hysteresis")?;
    set_opt(
        &mut param.aggregation,
        &pf.aggregation,
        env,
        p,
        "aggregation",
    )?;
    set_opt(&mut param.trim, &pf.trim, env, p, "trim")?;
    if let Some(s) = &pf.smoothing {
        set_opt(
            &mut param.smoothing.time_constant,
            &s.time_constant,
            env,
            p,
            "smoothing.time_constant",
        )?;
        set_opt(&mut param.smoothing.slew, &s.slew, env, p, "smoothing.slew")?;
    }
    if let Some(o) = &pf.osc {
        let osc = param.osc.get_or_insert(OscSpec {
            address: None,
            min: None,
            max: None,
        });
        set_opt(&mut osc.address, &o.address, env, p, "osc.address")?;
        set_opt(&mut osc.min, &o.min, env, p, "osc.min")?;
        set_opt(&mut osc.max, &o.max, env, p, "osc.max")?;
    }
    if let Some(maps) = &pf.map {
        let mut out = Vec::with_capacity(maps.len());
        for (i, m) in maps.iter().enumerate() {
            let mp = format!("{p}.map[{i}]");
            if let Some(mapping) =
                build_mapping(&m.target, &m.min, &m.max, &m.curve, &m.steps, env, &mp)?
            {
                out.push(mapping);
            }
        }
        param.map = out;
    }
    Ok(())
}

/// A mapping, or `None` when its target expression gives `null`.
fn build_mapping(
    target: &Field<String>,
    min: &Option<Field<f64>>,
    max: &Option<Field<f64>>,
    curve: &Option<Field<Curve>>,
    steps: &Option<Field<Vec<f64>>>,
    env: &dyn Answers,
    p: &str,
) -> Result<Option<Mapping>, FragError> {
    let Some(target) = target.resolve(env, &format!("{p}.target"))? else {
        return Ok(None);
    };
    Ok(Some(Mapping {
        target,
        min: resolve(min, env, p, "min")?,
        max: resolve(max, env, p, "max")?,
        curve: resolve(curve, env, p, "curve")?.unwrap_or_default(),
        steps: resolve(steps, env, p, "steps")?,
    }))
}
