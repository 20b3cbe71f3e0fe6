//! One-shot clips on a real scsynth (Tutti's chat sounds through a SuperCollider show): the
//! `tutti_clip` SynthDef built in Rust plays a buffer's samples exactly, on both channels, and
//! stops at their end (rendered by `scsynth -N`); a running show's output loads a clip into
//! its slot's buffer and plays it in the show's group, where the synth frees itself at the
//! clip's end, and plays it again from the loaded buffer.

mod common;

use std::time::Duration;

use common::{eventually, scsynth_bin, ScServer};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tutti_spec::PieceSpec;
use tutti_supercollider::clip::{clip_synthdef, CLIP_SYNTHDEF};
use tutti_supercollider::{ScClient, ScConfig, ScOutput, Transport, TreeNode};

const LIVENESS: Duration = Duration::from_secs(20);
const RATE: u32 = 48_000;

/// `seconds` of a decaying 330 Hz sine, peak 0.5.
fn clip_of(seconds: f32) -> Vec<f32> {
    (0..(seconds * RATE as f32) as usize)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            0.5 * (-4.0 * t).exp() * (std::f32::consts::TAU * 330.0 * t).sin()
        })
        .collect()
}

fn clip() -> Vec<f32> {
    clip_of(0.5)
}

fn msg(addr: &str, args: Vec<OscType>) -> OscPacket {
    OscPacket::Message(OscMessage {
        addr: addr.into(),
        args,
    })
}

fn push(score: &mut Vec<u8>, seconds: f64, content: Vec<OscPacket>) {
    let whole = seconds.floor();
    let bytes = rosc::encoder::encode(&OscPacket::Bundle(OscBundle {
        timetag: OscTime {
            seconds: whole as u32,
            fractional: ((seconds - whole) * 4_294_967_296.0) as u32,
        },
        content,
    }))
    .unwrap();
    score.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    score.extend_from_slice(&bytes);
}

#[test]
fn the_clip_synthdef_plays_a_buffer_exactly_and_stops_at_its_end() {
    let samples = clip();
    let mut setn = vec![
        OscType::Int(0),
        OscType::Int(0),
        OscType::Int(samples.len() as i32),
    ];
    setn.extend(samples.iter().map(|v| OscType::Float(*v)));
    let mut score = Vec::new();
    push(
        &mut score,
        0.0,
        vec![
            msg("/d_recv", vec![OscType::Blob(clip_synthdef())]),
            msg(
                "/b_alloc",
                vec![
                    OscType::Int(0),
                    OscType::Int(samples.len() as i32),
                    OscType::Int(1),
                ],
            ),
        ],
    );
    push(&mut score, 0.0, vec![msg("/b_setn", setn)]);
    push(
        &mut score,
        0.1,
        vec![msg(
            "/s_new",
            vec![
                OscType::String(CLIP_SYNTHDEF.into()),
                OscType::Int(1000),
                OscType::Int(0),
                OscType::Int(0),
                OscType::String("buf".into()),
                OscType::Float(0.0),
                OscType::String("amp".into()),
                OscType::Float(1.0),
            ],
        )],
    );
    push(
        &mut score,
        1.0,
        vec![msg("/c_set", vec![OscType::Int(0), OscType::Float(0.0)])],
    );
    let dir = tempfile::tempdir().unwrap();
    let score_path = dir.path().join("clip.osc");
    let wav = dir.path().join("clip.wav");
    std::fs::write(&score_path, &score).unwrap();
    tutti_supercollider::render_nrt(&score_path, &wav, RATE, &scsynth_bin()).expect("render");

    let frames: Vec<[f32; 2]> = {
        let mut reader = hound::WavReader::open(&wav).unwrap();
        let s: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        s.chunks(2)
            .map(|c| [f32::from(c[0]) / 32768.0, f32::from(c[1]) / 32768.0])
            .collect()
    };
    // Silence, then the clip sample for sample on both channels, then silence again.
    let start = frames
        .iter()
        .position(|f| f[0] != 0.0)
        .expect("the clip is heard");
    let at = (0.1 * f64::from(RATE)) as usize;
    assert!((at - 64..=at + 64).contains(&start), "starts at {start}");
    // The clip's first sample is 0: match the start by the first non-zero one.
    let first = samples
        .iter()
        .position(|v| v.abs() >= 1.0 / 32768.0)
        .unwrap();
    let offset = start - first;
    for (i, want) in samples.iter().enumerate() {
        let [l, r] = frames[offset + i];
        assert!(
            (l - want).abs() < 2.0 / 32768.0 && l == r,
            "frame {i}: {l} / {r} against {want}"
        );
    }
    assert!(frames[offset + samples.len() + 1..]
        .iter()
        .all(|f| f[0] == 0.0 && f[1] == 0.0));
}

/// The synths running `tutti_clip` in group `group`.
async fn clip_synths(probe: &ScClient, group: i32) -> Result<Vec<i32>, String> {
    let tree = probe
        .query_tree(group, true)
        .await
        .map_err(|e| e.to_string())?;
    let TreeNode::Group { children, .. } = tree else {
        return Err(format!("{tree:?} is not a group"));
    };
    Ok(children
        .iter()
        .filter_map(|c| match c {
            TreeNode::Synth { id, def, .. } if def == CLIP_SYNTHDEF => Some(*id),
            _ => None,
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_plays_a_clip_in_its_group_and_the_synth_ends_with_it() {
    let server = ScServer::start();
    let group = 7000;
    let out = ScOutput::start(
        ScConfig {
            server: server.addr(),
            group_id: group,
            ..ScConfig::default()
        },
        &PieceSpec::demo(),
    )
    .await
    .expect("start");
    let probe = ScClient::connect(&server.addr(), Transport::Udp, Duration::from_secs(2))
        .await
        .expect("probe client");
    let rate = out.sample_rate().expect("the server's rate");
    assert!(rate >= 8_000.0, "{rate}");

    // Bad slots and clips are refused at once.
    assert!(!out.play_clip(64, clip().into()));
    assert!(!out.play_clip(0, Vec::new().into()));

    for round in 0..2 {
        // Two seconds: long enough for the probe to see it running.
        assert!(out.play_clip(3, clip_of(2.0).into()), "round {round}");
        // It plays at the head of the show's group (before the master node)...
        eventually("the clip's synth runs", LIVENESS, || async {
            let tree = probe
                .query_tree(group, true)
                .await
                .map_err(|e| e.to_string())?;
            match tree {
                TreeNode::Group { children, .. } => match children.first() {
                    Some(TreeNode::Synth { def, .. }) if def == CLIP_SYNTHDEF => Ok(()),
                    other => Err(format!("first in the group: {other:?}")),
                },
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        // ... and frees itself at the clip's end (PlayBuf's doneAction), which it reaches
        // only by playing the loaded clip.
        eventually("the clip's synth ends", LIVENESS, || async {
            match clip_synths(&probe, group).await?.as_slice() {
                [] => Ok(()),
                left => Err(format!("still running: {left:?}")),
            }
        })
        .await;
    }
    let health = out.health();
    assert!(health.last_error.is_none(), "{:?}", health.last_error);
    out.stop().await.expect("stop");
}
