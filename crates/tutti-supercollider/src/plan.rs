//! The show plan: which synth nodes a piece needs on scsynth and which control of which
//! node each parameter drives, checked against the real SynthDefs' controls.
//!
//! Every mapping `voice.control` of the piece becomes one route: the voice is a SynthDef
//! of the same name (one node per voice, in order of first mention), the control must
//! exist in that SynthDef. `master.*` targets go to the `master` SynthDef, which runs at
//! the tail of the show's group and processes what the voices wrote; they are shared with
//! the embedded engine's master chain, so a `master` control that this SynthDef lacks is
//! skipped with a warning instead of rejected.
//!
//! Must never: do I/O, or accept a mapping to a control the SynthDef lacks (except the
//! documented `master.*` leniency).

use std::sync::Arc;

use tutti_spec::{Mapping, ParamKindName, ParamSpec, PieceSpec};

use crate::error::ScError;
use crate::synthdef::{SynthDefFile, SynthDefLibrary, MASTER_VOICE};

/// One synth node of a show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceNode {
    /// The voice name (also its SynthDef's name).
    pub voice: String,
    /// The node id on scsynth.
    pub node: i32,
}

#[derive(Debug, Clone)]
struct Route {
    param: usize,
    voice: usize,
    control: String,
    mapping: Mapping,
}

/// The nodes and routes of one show on one server.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) group: i32,
    pub(crate) voices: Vec<VoiceNode>,
    pub(crate) files: Vec<Arc<SynthDefFile>>,
    params: Vec<ParamSpec>,
    routes: Vec<Route>,
    /// `master.*` mappings that were skipped, as messages.
    pub(crate) skipped: Vec<String>,
}

impl Plan {
    /// Builds the plan for `spec`. Node ids are `group + 1 ..` in voice order; the master
    /// node (when `master` is on and the library has a `master` SynthDef) comes last.
    pub(crate) fn new(
        spec: &PieceSpec,
        library: &SynthDefLibrary,
        group: i32,
        master: bool,
    ) -> Result<Plan, ScError> {
        let with_master = master && library.get(MASTER_VOICE).is_some();
        let mut names: Vec<String> = Vec::new();
        let mut pending: Vec<(usize, String, String, Mapping)> = Vec::new();
        let mut skipped = Vec::new();
        for (p, param) in spec.params.iter().enumerate() {
            for (m, mapping) in param.map.iter().enumerate() {
                let field = format!("params[{p}].map[{m}].target");
                let target = mapping.target();
                let (voice, control) = (target.voice, target.control);
                if voice.is_empty() || control.is_empty() {
                    return Err(ScError::Input {
                        what: field,
                        reason: format!("'{}' is not of the form voice.control", mapping.target),
                    });
                }
                if voice == MASTER_VOICE {
                    let def = library.get(MASTER_VOICE).filter(|_| with_master);
                    match def {
                        Some(def) if def.control(control).is_some() => {}
                        Some(def) => {
                            skipped.push(format!(
                                "{field}: master control '{control}' is not in the SuperCollider master SynthDef (its controls: {}); skipped",
                                def.control_names()
                            ));
                            continue;
                        }
                        None => {
                            skipped.push(format!(
                                "{field}: master.{control} skipped (no master SynthDef in use)"
                            ));
                            continue;
                        }
                    }
                } else {
                    let def = library.get(voice).ok_or_else(|| ScError::UnknownVoice {
                        field: field.clone(),
                        voice: voice.to_string(),
                        available: library.names().join(", "),
                    })?;
                    if def.control(control).is_none() {
                        return Err(ScError::MissingControl {
                            field,
                            voice: voice.to_string(),
                            control: control.to_string(),
                            available: def.control_names(),
                        });
                    }
                    if !names.iter().any(|n| n == voice) {
                        names.push(voice.to_string());
                    }
                }
                pending.push((p, voice.to_string(), control.to_string(), mapping.clone()));
            }
        }
        if with_master {
            names.push(MASTER_VOICE.to_string());
        }
        let last = i64::from(group) + names.len() as i64;
        if group < 2 || last > i64::from(i32::MAX) {
            return Err(ScError::Input {
                what: String::from("group id"),
                reason: format!(
                    "{group} leaves no room for {} node ids (use 2..2^31-64)",
                    names.len()
                ),
            });
        }
        let voices: Vec<VoiceNode> = names
            .iter()
            .enumerate()
            .map(|(i, n)| VoiceNode {
                voice: n.clone(),
                node: group + 1 + i as i32,
            })
            .collect();
        let routes = pending
            .into_iter()
            .map(|(param, voice, control, mapping)| Route {
                param,
                voice: names.iter().position(|n| *n == voice).unwrap_or(0),
                control,
                mapping,
            })
            .collect();
        let mut files: Vec<Arc<SynthDefFile>> = Vec::new();
        for n in &names {
            if let Some(f) = library.file_of(n) {
                if !files.iter().any(|g| Arc::ptr_eq(f, g)) {
                    files.push(Arc::clone(f));
                }
            }
        }
        for s in &skipped {
            tracing::warn!("{s}");
        }
        Ok(Plan {
            group,
            voices,
            files,
            params: spec.params.clone(),
            routes,
            skipped,
        })
    }

    /// Checks that `values` has one finite value per parameter.
    pub(crate) fn check_values(&self, values: &[f64]) -> Result<(), ScError> {
        if values.len() != self.params.len() {
            return Err(ScError::Input {
                what: String::from("parameter values"),
                reason: format!(
                    "got {} values, the piece has {} parameters",
                    values.len(),
                    self.params.len()
                ),
            });
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(ScError::Input {
                what: format!("parameter '{}'", self.params[i].name),
                reason: format!("value {} is not finite", values[i]),
            });
        }
        Ok(())
    }

    /// The control values of every voice for one set of parameter values (checked with
    /// [`Plan::check_values`] first), as `(voice index, control, value)`, grouped by voice.
    pub(crate) fn controls(&self, values: &[f64]) -> Vec<Vec<(&str, f32)>> {
        let mut out: Vec<Vec<(&str, f32)>> = vec![Vec::new(); self.voices.len()];
        for r in &self.routes {
            let v = values.get(r.param).copied().unwrap_or(0.0);
            let n = self.params[r.param].normalise(v);
            out[r.voice].push((r.control.as_str(), r.mapping.apply(n) as f32));
        }
        out
    }

    /// `(node, controls)` pairs for an `/n_set` bundle; voices with no route are left out.
    pub(crate) fn node_controls(&self, values: &[f64]) -> Vec<(i32, Vec<(&str, f32)>)> {
        self.controls(values)
            .into_iter()
            .zip(&self.voices)
            .filter(|(c, _)| !c.is_empty())
            .map(|(c, v)| (v.node, c))
            .collect()
    }
}

/// The starting value of every parameter of `spec`, in spec order: a continuous
/// parameter's default (or its minimum), a discrete parameter's default choice index.
pub fn default_values(spec: &PieceSpec) -> Vec<f64> {
    spec.params
        .iter()
        .map(|p| match p.kind {
            ParamKindName::Continuous => p.default.or(p.min).unwrap_or(0.0),
            ParamKindName::Discrete => p
                .default_choice
                .as_deref()
                .and_then(|c| p.choice_index(c))
                .map_or(0.0, f64::from),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_plan(spec: &PieceSpec) -> Result<Plan, ScError> {
        Plan::new(spec, &SynthDefLibrary::builtin(), 1000, true)
    }

    #[test]
    fn demo_plan_has_one_node_per_voice_and_master_last() {
        let spec = PieceSpec::demo();
        let plan = demo_plan(&spec).expect("demo maps onto the shipped SynthDefs");
        let voices: Vec<(&str, i32)> = plan
            .voices
            .iter()
            .map(|v| (v.voice.as_str(), v.node))
            .collect();
        assert_eq!(
            voices,
            [
                ("drone", 1001),
                ("granular", 1002),
                ("rhythm", 1003),
                ("master", 1004)
            ]
        );
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        assert_eq!(plan.files.len(), 4);
    }

    #[test]
    fn controls_are_the_spec_mappings_of_the_values() {
        let spec = PieceSpec::demo();
        let plan = demo_plan(&spec).expect("plan");
        let mut values = default_values(&spec);
        let section = spec.param_index("section").expect("section");
        values[section] = 2.0;
        let per_node = plan.node_controls(&values);
        let mut expected = 0;
        for (p, param) in spec.params.iter().enumerate() {
            for m in &param.map {
                let t = m.target();
                let want = m.apply(param.normalise(values[p])) as f32;
                let node = plan
                    .voices
                    .iter()
                    .find(|v| v.voice == t.voice)
                    .expect("voice")
                    .node;
                let (_, cs) = per_node.iter().find(|(n, _)| *n == node).expect("node");
                let got = cs.iter().find(|(c, _)| *c == t.control).expect("control").1;
                assert_eq!(got, want, "{}", m.target);
                expected += 1;
            }
        }
        let sent: usize = per_node.iter().map(|(_, c)| c.len()).sum();
        assert_eq!(sent, expected);
        let rhythm = per_node.iter().find(|(n, _)| *n == 1003).expect("rhythm");
        assert!(rhythm.1.contains(&("pattern", 2.0)));
    }

    #[test]
    fn a_missing_control_names_voice_and_control() {
        let mut spec = PieceSpec::demo();
        spec.params[1].map[0].target = String::from("drone.resonance");
        let err = demo_plan(&spec).unwrap_err();
        assert!(
            matches!(&err, ScError::MissingControl { voice, control, .. } if voice == "drone" && control == "resonance"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("params[1].map[0].target"), "{text}");
        assert!(text.contains("cutoff"), "lists the real controls: {text}");
    }

    #[test]
    fn an_unknown_voice_names_it() {
        let mut spec = PieceSpec::demo();
        spec.params[0].map[0].target = String::from("bass.amp");
        let err = demo_plan(&spec).unwrap_err().to_string();
        assert!(
            err.contains("voice 'bass'") && err.contains("drone"),
            "{err}"
        );
    }

    #[test]
    fn unknown_master_controls_are_skipped_not_fatal() {
        let mut spec = PieceSpec::demo();
        spec.params[4].map[0].target = String::from("master.eq_low");
        let plan = demo_plan(&spec).expect("master.* is lenient");
        assert_eq!(plan.skipped.len(), 1);
        assert!(plan.skipped[0].contains("eq_low"), "{:?}", plan.skipped);
        let without = Plan::new(&PieceSpec::demo(), &SynthDefLibrary::builtin(), 1000, false)
            .expect("plan without master");
        assert_eq!(without.voices.len(), 3);
        assert_eq!(without.skipped.len(), 1);
    }

    #[test]
    fn bad_values_are_rejected_by_name() {
        let spec = PieceSpec::demo();
        let plan = demo_plan(&spec).expect("plan");
        let err = plan.check_values(&[0.0; 3]).unwrap_err().to_string();
        assert!(
            err.contains("got 3 values") && err.contains("8 parameters"),
            "{err}"
        );
        let mut v = default_values(&spec);
        v[3] = f64::NAN;
        let err = plan.check_values(&v).unwrap_err().to_string();
        assert!(err.contains("'pitch'"), "{err}");
        assert!(Plan::new(&spec, &SynthDefLibrary::builtin(), 1, true).is_err());
    }
}
