//! Non-real-time export: a recorded show (its parameter snapshots) becomes a SuperCollider
//! NRT score, and `scsynth -N` renders that score to a WAV file.
//!
//! The score is SuperCollider's binary OSC score format: a sequence of OSC bundles, each
//! preceded by its length as a big-endian int32, whose time tags are seconds from the start
//! (32.32 fixed point). It holds, in order: at 0 s the `/d_recv` of every SynthDef the
//! piece uses, then `/g_new` of the show's group and `/s_new` of each voice (the same plan
//! as the live driver, so the same mappings and the same master node); one bundle of
//! `/n_set`s per snapshot, with linearly interpolated bundles between snapshots at
//! [`ScoreOptions::control_rate`] for continuous parameters (votes hold until the next
//! snapshot); `gate 0` to the group at the show's end; and a final `/n_free` of the group
//! [`ScoreOptions::tail`] seconds later, which is where scsynth stops rendering.
//!
//! Must never: write a score that refers to a SynthDef or control the files lack (the
//! plan checks), or leave a failed render looking like a success.

use std::path::Path;
use std::process::Command;

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tutti_spec::{ParamKindName, PieceSpec};

use crate::client::{g_new, message, n_set, s_new, AddAction};
use crate::error::ScError;
use crate::plan::{default_values, Plan};
use crate::synthdef::SynthDefLibrary;

/// Longest show a score may hold (24 h).
pub const MAX_SCORE_SECONDS: f64 = 86_400.0;

/// How a score is written.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// The SynthDefs (default: the shipped ones).
    pub synthdefs: SynthDefLibrary,
    /// Include the `master` node (default on, as live).
    pub master: bool,
    /// The show's group id (default 1000).
    pub group_id: i32,
    /// Rate of interpolated `/n_set` bundles between snapshots, in Hz (default 20; 0 sends
    /// only the snapshots themselves).
    pub control_rate: f64,
    /// Seconds rendered after the show ends, for the voices' release and the reverb tail
    /// (default 4).
    pub tail: f64,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            synthdefs: SynthDefLibrary::builtin(),
            master: true,
            group_id: 1000,
            control_rate: 20.0,
            tail: 4.0,
        }
    }
}

/// Writes the NRT score of a recorded show with the default options: `snapshots` are
/// `(seconds from the start, parameter values in spec order)`, `duration` the length of
/// the show in seconds. The score renders `duration + 4` seconds.
pub fn write_score(
    spec: &PieceSpec,
    snapshots: &[(f64, Vec<f64>)],
    duration: f64,
) -> Result<Vec<u8>, ScError> {
    write_score_with(spec, snapshots, duration, &ScoreOptions::default())
}

/// [`write_score`] with explicit options.
pub fn write_score_with(
    spec: &PieceSpec,
    snapshots: &[(f64, Vec<f64>)],
    duration: f64,
    options: &ScoreOptions,
) -> Result<Vec<u8>, ScError> {
    let input = |what: &str, reason: String| ScError::Input {
        what: what.to_string(),
        reason,
    };
    if !duration.is_finite() || duration <= 0.0 || duration > MAX_SCORE_SECONDS {
        return Err(input(
            "score duration",
            format!("{duration} s is not within 0..{MAX_SCORE_SECONDS} s"),
        ));
    }
    if !options.tail.is_finite() || !(0.0..=600.0).contains(&options.tail) {
        return Err(input(
            "score tail",
            format!("{} s is not within 0..600 s", options.tail),
        ));
    }
    if !options.control_rate.is_finite() || !(0.0..=1000.0).contains(&options.control_rate) {
        return Err(input(
            "score control rate",
            format!("{} Hz is not within 0..1000 Hz", options.control_rate),
        ));
    }
    let plan = Plan::new(spec, &options.synthdefs, options.group_id, options.master)?;
    for (i, (t, values)) in snapshots.iter().enumerate() {
        if !t.is_finite() || *t < 0.0 {
            return Err(input(
                &format!("snapshot {i}"),
                format!("time {t} s is not a time in the show"),
            ));
        }
        plan.check_values(values)
            .map_err(|e| input(&format!("snapshot {i} (at {t} s)"), e.to_string()))?;
    }
    let mut order: Vec<usize> = (0..snapshots.len())
        .filter(|&i| snapshots[i].0 <= duration)
        .collect();
    order.sort_by(|&a, &b| snapshots[a].0.total_cmp(&snapshots[b].0));

    let discrete: Vec<bool> = spec
        .params
        .iter()
        .map(|p| p.kind == ParamKindName::Discrete)
        .collect();
    let initial = match order.first() {
        Some(&i) if snapshots[i].0 == 0.0 => snapshots[i].1.clone(),
        _ => default_values(spec),
    };

    let mut out = Vec::new();
    let blobs: Vec<OscPacket> = plan
        .files
        .iter()
        .map(|f| OscPacket::Message(message("/d_recv", vec![OscType::Blob(f.bytes.to_vec())])))
        .collect();
    push_bundle(&mut out, 0.0, blobs)?;
    let controls = plan.controls(&initial);
    let mut start = vec![OscPacket::Message(g_new(plan.group, AddAction::Head, 0))];
    for (voice, cs) in plan.voices.iter().zip(&controls) {
        start.push(OscPacket::Message(s_new(
            &voice.voice,
            voice.node,
            AddAction::Tail,
            plan.group,
            cs,
        )));
    }
    push_bundle(&mut out, 0.0, start)?;

    let step = if options.control_rate > 0.0 {
        1.0 / options.control_rate
    } else {
        f64::INFINITY
    };
    let mut scratch = vec![0.0; spec.params.len()];
    for (k, &i) in order.iter().enumerate() {
        let (t0, v0) = &snapshots[i];
        push_values(&mut out, &plan, *t0, v0)?;
        let Some(&next) = order.get(k + 1) else {
            break;
        };
        let (t1, v1) = &snapshots[next];
        let mut t = t0 + step;
        while t < *t1 - 1e-9 {
            let x = (t - t0) / (t1 - t0);
            for (p, s) in scratch.iter_mut().enumerate() {
                *s = if discrete[p] {
                    v0[p]
                } else {
                    v0[p] + x * (v1[p] - v0[p])
                };
            }
            push_values(&mut out, &plan, t, &scratch)?;
            t += step;
        }
    }
    let gate_off = message(
        "/n_set",
        vec![
            OscType::Int(plan.group),
            OscType::String(String::from("gate")),
            OscType::Float(0.0),
        ],
    );
    push_bundle(&mut out, duration, vec![OscPacket::Message(gate_off)])?;
    let free = message("/n_free", vec![OscType::Int(plan.group)]);
    push_bundle(
        &mut out,
        duration + options.tail,
        vec![OscPacket::Message(free)],
    )?;
    Ok(out)
}

fn push_values(out: &mut Vec<u8>, plan: &Plan, t: f64, values: &[f64]) -> Result<(), ScError> {
    let msgs: Vec<OscPacket> = plan
        .node_controls(values)
        .iter()
        .map(|(node, cs)| OscPacket::Message(n_set(*node, cs)))
        .collect();
    if msgs.is_empty() {
        return Ok(());
    }
    push_bundle(out, t, msgs)
}

/// Seconds from the start as an NRT time tag (32.32 fixed point).
fn score_time(seconds: f64) -> OscTime {
    let whole = seconds.floor();
    let frac = ((seconds - whole) * 4_294_967_296.0).min(4_294_967_295.0);
    OscTime {
        seconds: whole as u32,
        fractional: frac as u32,
    }
}

fn push_bundle(out: &mut Vec<u8>, seconds: f64, content: Vec<OscPacket>) -> Result<(), ScError> {
    let packet = OscPacket::Bundle(OscBundle {
        timetag: score_time(seconds),
        content,
    });
    let bytes = rosc::encoder::encode(&packet).map_err(|e| ScError::Encode {
        command: format!("score bundle at {seconds} s"),
        reason: e.to_string(),
    })?;
    let len = i32::try_from(bytes.len()).map_err(|_| ScError::Encode {
        command: format!("score bundle at {seconds} s"),
        reason: String::from("larger than 2 GiB"),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Reads a score back into `(seconds, messages)` bundles (for checks and tools).
pub fn read_score(bytes: &[u8]) -> Result<Vec<(f64, Vec<OscMessage>)>, ScError> {
    let bad = |offset: usize, reason: String| ScError::Input {
        what: format!("score at byte {offset}"),
        reason,
    };
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(head) = bytes.get(pos..pos + 4) else {
            return Err(bad(pos, String::from("truncated length")));
        };
        let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let len = usize::try_from(len).map_err(|_| bad(pos, format!("negative length {len}")))?;
        let Some(body) = bytes.get(pos + 4..pos + 4 + len) else {
            return Err(bad(pos, format!("bundle of {len} bytes is truncated")));
        };
        let (_, packet) = rosc::decoder::decode_udp(body).map_err(|e| bad(pos, e.to_string()))?;
        let OscPacket::Bundle(b) = packet else {
            return Err(bad(pos, String::from("a score entry must be a bundle")));
        };
        let t = f64::from(b.timetag.seconds) + f64::from(b.timetag.fractional) / 4_294_967_296.0;
        let mut msgs = Vec::new();
        for p in b.content {
            match p {
                OscPacket::Message(m) => msgs.push(m),
                OscPacket::Bundle(_) => return Err(bad(pos, String::from("nested bundle"))),
            }
        }
        out.push((t, msgs));
        pos += 4 + len;
    }
    Ok(out)
}

/// Renders an NRT score to a 16-bit stereo WAV file by running
/// `scsynth -N <score> _ <out_wav> <sample_rate> WAV int16 -o 2`. Blocks until scsynth is
/// done (run it on a blocking thread from async code).
pub fn render_nrt(
    score_path: &Path,
    out_wav: &Path,
    sample_rate: u32,
    scsynth_bin: &Path,
) -> Result<(), ScError> {
    let program = scsynth_bin.display().to_string();
    let fail = |reason: String| ScError::Render {
        program: program.clone(),
        reason,
    };
    if !(8_000..=192_000).contains(&sample_rate) {
        return Err(fail(format!(
            "sample rate {sample_rate} Hz is not within 8000..192000"
        )));
    }
    if !score_path.is_file() {
        return Err(fail(format!(
            "score file {} does not exist",
            score_path.display()
        )));
    }
    // A stale file must not pass for this render's output.
    match std::fs::remove_file(out_wav) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ScError::io(
                format!("removing old {}", out_wav.display()),
                e,
            ))
        }
    }
    let output = Command::new(scsynth_bin)
        .arg("-N")
        .arg(score_path)
        .arg("_")
        .arg(out_wav)
        .arg(sample_rate.to_string())
        .arg("WAV")
        .arg("int16")
        .arg("-o")
        .arg("2")
        .output()
        .map_err(|e| {
            fail(format!(
                "cannot run it: {e} (install Debian's supercollider-server)"
            ))
        })?;
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    };
    if !output.status.success() {
        return Err(fail(format!(
            "{}; output: {} {}",
            output.status,
            tail(&output.stdout),
            tail(&output.stderr)
        )));
    }
    match std::fs::metadata(out_wav) {
        Ok(m) if m.len() > 44 => Ok(()),
        _ => Err(fail(format!(
            "it exited successfully but wrote no audio to {}; output: {}",
            out_wav.display(),
            tail(&output.stdout)
        ))),
    }
}

/// Writes the score of a recorded show next to `out_wav` (same name, `.osc`) and renders
/// it with [`render_nrt`].
pub fn render_show(
    spec: &PieceSpec,
    snapshots: &[(f64, Vec<f64>)],
    duration: f64,
    out_wav: &Path,
    sample_rate: u32,
    scsynth_bin: &Path,
) -> Result<(), ScError> {
    let score = write_score(spec, snapshots, duration)?;
    let score_path = out_wav.with_extension("osc");
    std::fs::write(&score_path, score)
        .map_err(|e| ScError::io(format!("writing score {}", score_path.display()), e))?;
    render_nrt(&score_path, out_wav, sample_rate, scsynth_bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_holds_setup_snapshots_interpolation_and_end() {
        let spec = PieceSpec::demo();
        let mut v0 = default_values(&spec);
        let mut v1 = v0.clone();
        v0[0] = 0.0;
        v1[0] = 1.0;
        v1[7] = 2.0;
        let opts = ScoreOptions {
            control_rate: 4.0,
            ..ScoreOptions::default()
        };
        let bytes = write_score_with(&spec, &[(1.0, v1.clone()), (0.0, v0.clone())], 3.0, &opts)
            .expect("score");
        let score = read_score(&bytes).expect("reads back");
        let times: Vec<f64> = score.iter().map(|(t, _)| *t).collect();
        // d_recv, nodes, snapshot 0, three interpolated points, snapshot 1, gate off, free.
        assert_eq!(times, [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 3.0, 7.0]);
        assert_eq!(score[0].1.len(), 4);
        assert!(score[0].1.iter().all(|m| m.addr == "/d_recv"));
        let addrs: Vec<&str> = score[1].1.iter().map(|m| m.addr.as_str()).collect();
        assert_eq!(addrs, ["/g_new", "/s_new", "/s_new", "/s_new", "/s_new"]);
        let amp_at = |i: usize| -> f32 {
            let m = score[i]
                .1
                .iter()
                .find(|m| m.args[0] == OscType::Int(1001))
                .expect("drone");
            let k = m
                .args
                .iter()
                .position(|a| *a == OscType::String("amp".into()))
                .expect("amp");
            m.args[k + 1].clone().float().expect("float")
        };
        let exp = |n: f64| (0.01 * (0.8f64 / 0.01).powf(n)) as f32;
        assert_eq!(amp_at(2), exp(0.0));
        assert_eq!(amp_at(4), exp(0.5));
        assert_eq!(amp_at(6), exp(1.0));
        // The vote holds until its snapshot, then steps.
        let pattern_at = |i: usize| -> f32 {
            let m = score[i]
                .1
                .iter()
                .find(|m| m.args[0] == OscType::Int(1003))
                .expect("rhythm");
            let k = m
                .args
                .iter()
                .position(|a| *a == OscType::String("pattern".into()))
                .expect("pattern");
            m.args[k + 1].clone().float().expect("float")
        };
        assert_eq!(pattern_at(5), 0.0);
        assert_eq!(pattern_at(6), 2.0);
        assert_eq!(score[8].1[0].addr, "/n_free");
    }

    #[test]
    fn bad_score_input_is_named() {
        let spec = PieceSpec::demo();
        let v = default_values(&spec);
        let err = write_score(&spec, &[(0.0, vec![1.0])], 10.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("snapshot 0"), "{err}");
        let err = write_score(&spec, &[(f64::NAN, v.clone())], 10.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("snapshot 0"), "{err}");
        let err = write_score(&spec, &[(0.0, v)], -1.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duration"), "{err}");
        assert!(read_score(&[0, 0, 0, 9, 1]).is_err());
    }

    #[test]
    fn render_reports_a_missing_binary() {
        let dir = std::env::temp_dir();
        let score = dir.join(format!("tutti-missing-bin-{}.osc", std::process::id()));
        std::fs::write(
            &score,
            write_score(&PieceSpec::demo(), &[], 1.0).expect("score"),
        )
        .expect("write");
        let err = render_nrt(
            &score,
            &dir.join("x.wav"),
            48_000,
            Path::new("/nonexistent/scsynth"),
        )
        .unwrap_err()
        .to_string();
        let _ = std::fs::remove_file(&score);
        assert!(
            err.contains("/nonexistent/scsynth") && err.contains("cannot run"),
            "{err}"
        );
    }
}
