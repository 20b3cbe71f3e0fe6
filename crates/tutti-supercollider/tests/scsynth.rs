//! Tests against a real scsynth (Debian's supercollider-server on a JACK dummy server):
//! the client's commands and replies, a show's nodes and control values, recovery after
//! scsynth is killed and restarted, NRT rendering, and bad input.

mod common;

use std::time::{Duration, SystemTime};

use common::{eventually, free_port, scsynth_bin, ScServer};
use tutti_spec::PieceSpec;
use tutti_supercollider::{
    default_values, read_score, render_nrt, write_score, AddAction, LinkState, ScClient, ScConfig,
    ScError, ScEvent, ScOutput, SynthDefFile, SynthDefLibrary, Transport, TreeNode,
    BUILTIN_SYNTHDEFS,
};

const LIVENESS: Duration = Duration::from_secs(20);

fn builtin_file(name: &str) -> SynthDefFile {
    let (_, bytes) = BUILTIN_SYNTHDEFS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("shipped SynthDef");
    SynthDefFile::parse(name, bytes).expect("parses")
}

/// The drone with one UGen renamed to one scsynth does not have: a file that parses but
/// that scsynth cannot install.
fn uninstallable_drone() -> SynthDefFile {
    let (_, bytes) = BUILTIN_SYNTHDEFS[0];
    let needle = b"SinOsc";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the drone uses SinOsc");
    let mut patched = bytes.to_vec();
    patched[at..at + needle.len()].copy_from_slice(b"SinOsx");
    SynthDefFile::parse("patched-drone", &patched).expect("still parses")
}

/// The control values a show must have on scsynth for `values`, computed from the spec
/// alone (independently of the crate's plan): `(voice, control, value)`.
fn expected(spec: &PieceSpec, values: &[f64]) -> Vec<(String, String, f32)> {
    let mut out = Vec::new();
    for (p, param) in spec.params.iter().enumerate() {
        for m in &param.map {
            let t = m.target();
            out.push((
                t.voice.to_string(),
                t.control.to_string(),
                m.apply(param.normalise(values[p])) as f32,
            ));
        }
    }
    out
}

/// Compares the synths under the show's group with the expected values.
fn check_tree(
    out: &ScOutput,
    tree: &TreeNode,
    want: &[(String, String, f32)],
) -> Result<(), String> {
    for (voice, control, value) in want {
        let node = out
            .voices()
            .iter()
            .find(|v| v.voice == *voice)
            .ok_or_else(|| format!("no node for voice {voice}"))?
            .node;
        let synth = tree
            .find(node)
            .ok_or_else(|| format!("node {node} ({voice}) is missing"))?;
        let got = synth
            .control(control)
            .ok_or_else(|| format!("{voice}.{control} not reported"))?;
        if (got - value).abs() > value.abs() * 1e-6 + 1e-7 {
            return Err(format!("{voice}.{control} = {got}, expected {value}"));
        }
    }
    Ok(())
}

async fn tree_matches(
    client: &ScClient,
    out: &ScOutput,
    want: &[(String, String, f32)],
) -> Result<(), String> {
    let tree = client
        .query_tree(out.group_id(), true)
        .await
        .map_err(|e| e.to_string())?;
    check_tree(out, &tree, want)
}

fn config(server: &ScServer, group: i32) -> ScConfig {
    ScConfig {
        server: server.addr(),
        group_id: group,
        ..ScConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_speaks_scsynth_over_udp_and_tcp() {
    let server = ScServer::start_with(true);
    let client = ScClient::connect(&server.addr(), Transport::Udp, Duration::from_secs(2))
        .await
        .expect("connect");
    let status = client.status().await.expect("status");
    assert_eq!(status.nominal_sample_rate, 48_000.0);
    assert!(status.groups >= 1, "{status:?}");
    client.notify(true).await.expect("notify");
    client.notify(true).await.expect("a second notify is fine");
    let mut events = client.events();

    client
        .load_synthdefs(&builtin_file("drone"))
        .await
        .expect("d_recv");
    client
        .new_group(500, AddAction::Head, 0)
        .await
        .expect("g_new");
    client
        .new_synth(
            "drone",
            501,
            AddAction::Tail,
            500,
            &[("freq", 220.0), ("amp", 0.0)],
        )
        .await
        .expect("s_new");
    client.sync().await.expect("sync");

    let tree = client.query_tree(500, true).await.expect("g_queryTree");
    assert_eq!(tree.synth_ids(), [501]);
    match tree.find(501) {
        Some(TreeNode::Synth { def, .. }) => assert_eq!(def, "drone"),
        other => panic!("node 501: {other:?}"),
    }
    assert_eq!(tree.find(501).and_then(|n| n.control("freq")), Some(220.0));
    let got = client
        .get_controls(501, &["freq", "amp"])
        .await
        .expect("s_get");
    assert_eq!(got, [("freq".to_string(), 220.0), ("amp".to_string(), 0.0)]);
    let info = client.query_node(501).await.expect("n_query");
    assert_eq!((info.parent, info.is_group), (500, false));

    // A bundle time-stamped 50 ms ahead is applied by scsynth at its time.
    let at = SystemTime::now() + Duration::from_millis(50);
    client
        .set_controls_at(at, &[(501, vec![("freq", 330.0)])])
        .await
        .expect("bundle");
    eventually("the bundled /n_set applies", LIVENESS, || async {
        let v = client
            .get_controls(501, &["freq"])
            .await
            .map_err(|e| e.to_string())?;
        (v[0].1 == 330.0)
            .then_some(())
            .ok_or(format!("freq {}", v[0].1))
    })
    .await;

    client.free_node(500).await.expect("n_free");
    client.sync().await.expect("sync");
    let err = client.query_tree(500, false).await.unwrap_err();
    assert!(
        matches!(&err, ScError::Failed { command, .. } if command == "/g_queryTree"),
        "{err}"
    );
    assert!(err.to_string().contains("500"), "{err}");
    let err = client
        .get_controls(501, &["freq"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/s_get") && err.contains("not found"), "{err}");

    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    for id in [500, 501] {
        assert!(
            seen.iter()
                .any(|e| matches!(e, ScEvent::NodeStarted(i) if i.id == id)),
            "/n_go {id}: {seen:?}"
        );
        assert!(
            seen.iter()
                .any(|e| matches!(e, ScEvent::NodeEnded(i) if i.id == id)),
            "/n_end {id}: {seen:?}"
        );
    }

    // A SynthDef scsynth cannot install is an error naming it, and the server survives.
    let err = client
        .load_synthdefs(&uninstallable_drone())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ScError::SynthDefLoad { name, .. } if name == "drone"),
        "{err}"
    );
    assert!(err.to_string().contains("'drone'"), "{err}");
    client.status().await.expect("scsynth still answers");

    // The same over TCP.
    let tcp_addr = format!("127.0.0.1:{}", server.tcp_port.expect("tcp port"));
    let tcp = ScClient::connect(&tcp_addr, Transport::Tcp, Duration::from_secs(2))
        .await
        .expect("tcp connect");
    tcp.notify(true).await.expect("tcp notify");
    tcp.load_synthdefs(&builtin_file("granular"))
        .await
        .expect("tcp d_recv");
    tcp.new_synth(
        "granular",
        601,
        AddAction::Head,
        0,
        &[("amp", 0.0), ("density", 7.0)],
    )
    .await
    .expect("tcp s_new");
    tcp.sync().await.expect("tcp sync");
    let got = tcp
        .get_controls(601, &["density"])
        .await
        .expect("tcp s_get");
    assert_eq!(got[0].1, 7.0);
    tcp.free_node(601).await.expect("tcp n_free");
    tcp.sync().await.expect("tcp sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_plays_on_scsynth_and_follows_the_values() {
    let server = ScServer::start();
    let spec = PieceSpec::demo();
    let out = ScOutput::start(config(&server, 2000), &spec)
        .await
        .expect("start");
    let probe = ScClient::connect(&server.addr(), Transport::Udp, Duration::from_secs(2))
        .await
        .expect("probe client");

    // One node per voice, in the show's group, running the voice's SynthDef, with the
    // controls at the mapping of the piece's defaults.
    let tree = probe.query_tree(2000, true).await.expect("tree");
    let nodes: Vec<i32> = out.voices().iter().map(|v| v.node).collect();
    assert_eq!(tree.synth_ids(), nodes);
    for v in out.voices() {
        match tree.find(v.node) {
            Some(TreeNode::Synth { def, .. }) => assert_eq!(*def, v.voice),
            other => panic!("{}: {other:?}", v.voice),
        }
    }
    let names: Vec<&str> = out.voices().iter().map(|v| v.voice.as_str()).collect();
    assert_eq!(names, ["drone", "granular", "rhythm", "master"]);
    check_tree(&out, &tree, &expected(&spec, &default_values(&spec))).expect("defaults");
    let health = out.health();
    assert_eq!(health.state, LinkState::Connected);
    assert!(health.status.is_some());

    // New consensus values reach every mapped control.
    let values = vec![0.8, 0.2, 0.9, 5.0, 0.6, 150.0, 0.1, 1.0];
    out.update(&values);
    let want = expected(&spec, &values);
    eventually("values reach scsynth", LIVENESS, || {
        tree_matches(&probe, &out, &want)
    })
    .await;
    // Read back with /s_get too.
    let drone = out.voices()[0].node;
    let got = probe
        .get_controls(drone, &["amp", "cutoff"])
        .await
        .expect("s_get");
    let amp = want
        .iter()
        .find(|(v, c, _)| v == "drone" && c == "amp")
        .expect("amp")
        .2;
    assert_eq!(got[0].1, amp);

    // An override-like change (intensity locked to the top, the vote switched to storm).
    let overridden = vec![1.0, 0.2, 0.9, 5.0, 0.6, 150.0, 0.1, 2.0];
    out.update(&overridden);
    let want = expected(&spec, &overridden);
    eventually("the override reaches scsynth", LIVENESS, || {
        tree_matches(&probe, &out, &want)
    })
    .await;
    let rhythm = out.voices()[2].node;
    assert_eq!(
        probe
            .get_controls(rhythm, &["pattern"])
            .await
            .expect("s_get")[0]
            .1,
        2.0
    );

    // Values that do not fit the piece are reported, not sent, and do not stop the show.
    out.update(&[1.0, 2.0, 3.0]);
    let health = out.health();
    assert_eq!(health.state, LinkState::Connected);
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("got 3 values")),
        "{health:?}"
    );
    tree_matches(&probe, &out, &want).await.expect("unchanged");

    // Bad input at start-up, against the live server: a missing control and a SynthDef
    // scsynth cannot install. Neither disturbs the running show.
    let mut bad_spec = spec.clone();
    bad_spec.params[1].map[0].target = "drone.resonance".to_string();
    let err = ScOutput::start(config(&server, 3000), &bad_spec)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ScError::MissingControl { voice, control, .. } if voice == "drone" && control == "resonance"),
        "{err}"
    );
    let mut library = SynthDefLibrary::builtin();
    library.insert(uninstallable_drone());
    let cfg = ScConfig {
        synthdefs: library,
        ..config(&server, 3000)
    };
    let err = ScOutput::start(cfg, &spec).await.unwrap_err();
    assert!(
        matches!(&err, ScError::SynthDefLoad { name, .. } if name == "drone"),
        "{err}"
    );
    // The failed start replaced the server's drone SynthDef; the running node keeps playing.
    tree_matches(&probe, &out, &want)
        .await
        .expect("the first show is untouched");

    // Stop frees the group and its nodes.
    out.stop().await.expect("stop");
    eventually("the show's group is freed", LIVENESS, || async {
        match probe.query_tree(2000, false).await {
            Err(ScError::Failed { .. }) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_show_comes_back_after_scsynth_restarts() {
    let mut server = ScServer::start_with(true);
    let spec = PieceSpec::demo();
    let fast = |transport, server_addr: String, group| ScConfig {
        server: server_addr,
        transport,
        group_id: group,
        status_interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        ..ScConfig::default()
    };
    let tcp_addr = format!("127.0.0.1:{}", server.tcp_port.expect("tcp port"));
    // Two shows on one server: one driven over UDP, one over TCP.
    let outs = [
        ScOutput::start(fast(Transport::Udp, server.addr(), 4000), &spec)
            .await
            .expect("start udp"),
        ScOutput::start(fast(Transport::Tcp, tcp_addr, 5000), &spec)
            .await
            .expect("start tcp"),
    ];
    let first = vec![0.7, 0.7, 0.7, 3.0, 0.3, 120.0, 0.5, 1.0];
    let probe = ScClient::connect(&server.addr(), Transport::Udp, Duration::from_secs(2))
        .await
        .expect("probe");
    let want = expected(&spec, &first);
    for out in &outs {
        out.update(&first);
        eventually("first values", LIVENESS, || {
            tree_matches(&probe, out, &want)
        })
        .await;
    }

    server.kill_scsynth();
    let mut lost = Vec::new();
    for out in &outs {
        let mut health = out.health_watch();
        tokio::time::timeout(LIVENESS, health.wait_for(|h| h.state == LinkState::Lost))
            .await
            .expect("health reports Lost")
            .expect("health channel open");
        let h = out.health();
        assert!(
            h.last_error
                .as_deref()
                .is_some_and(|e| e.contains("stopped answering")),
            "{h:?}"
        );
        lost.push(h);
    }
    // The show goes on: updates during the loss are accepted (and kept, latest only).
    let during = vec![0.2, 0.9, 0.1, -7.0, 0.8, 90.0, 0.9, 2.0];
    for out in &outs {
        out.update(&[0.5; 8]);
        out.update(&during);
    }

    server.start_scsynth();
    let probe = ScClient::connect(&server.addr(), Transport::Udp, Duration::from_secs(2))
        .await
        .expect("probe after restart");
    let want = expected(&spec, &during);
    for (out, lost) in outs.iter().zip(&lost) {
        let mut health = out.health_watch();
        tokio::time::timeout(
            LIVENESS,
            health.wait_for(|h| h.state == LinkState::Connected && h.recoveries >= 1),
        )
        .await
        .expect("health reports Connected again")
        .expect("health channel open");
        eventually("nodes back with the current values", LIVENESS, || {
            tree_matches(&probe, out, &want)
        })
        .await;
        assert!(out.health().since >= lost.since);
    }

    // Someone frees a show's group (as a restart between two probes would): rebuilt.
    let out = &outs[0];
    let before = out.health().recoveries;
    probe.free_node(out.group_id()).await.expect("free");
    probe.sync().await.expect("sync");
    let mut health = out.health_watch();
    tokio::time::timeout(LIVENESS, health.wait_for(|h| h.recoveries > before))
        .await
        .expect("rebuild counted")
        .expect("health channel open");
    eventually("group rebuilt", LIVENESS, || {
        tree_matches(&probe, out, &want)
    })
    .await;
    for out in outs {
        out.stop().await.expect("stop");
    }
}

fn rms(samples: &[i16], channels: usize, from: f64, to: f64, rate: f64) -> f64 {
    let a = (from * rate) as usize * channels;
    let b = ((to * rate) as usize * channels).min(samples.len());
    let sum: f64 = samples[a..b]
        .iter()
        .map(|&s| (f64::from(s) / 32768.0).powi(2))
        .sum();
    (sum / (b - a) as f64).sqrt()
}

#[test]
fn nrt_render_follows_the_recorded_intensity() {
    let scsynth = scsynth_bin();
    let spec = PieceSpec::demo();
    let intensity = spec.param_index("intensity").expect("intensity");
    let section = spec.param_index("section").expect("section");
    // A 12 s show: quiet and calm for 6 s, then loud and stormy, one snapshot a second.
    let snapshots: Vec<(f64, Vec<f64>)> = (0..=12)
        .map(|s| {
            let mut v = default_values(&spec);
            let loud = s >= 6;
            v[intensity] = if loud { 0.95 } else { 0.05 };
            v[section] = if loud { 2.0 } else { 0.0 };
            (f64::from(s), v)
        })
        .collect();
    let score = write_score(&spec, &snapshots, 12.0).expect("score");
    assert!(read_score(&score).expect("reads back").len() > 12);

    let dir = tempfile::tempdir().expect("tempdir");
    let score_path = dir.path().join("show.osc");
    let wav = dir.path().join("show.wav");
    std::fs::write(&score_path, &score).expect("write score");
    render_nrt(&score_path, &wav, 48_000, &scsynth).expect("render");

    let mut reader = hound::WavReader::open(&wav).expect("open wav");
    let spec_wav = reader.spec();
    assert_eq!(
        (
            spec_wav.channels,
            spec_wav.sample_rate,
            spec_wav.bits_per_sample
        ),
        (2, 48_000, 16)
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("samples");
    let seconds = samples.len() as f64 / 2.0 / 48_000.0;
    assert!(
        (15.9..=16.1).contains(&seconds),
        "12 s show + 4 s tail, got {seconds} s"
    );
    let quiet = rms(&samples, 2, 2.0, 5.5, 48_000.0);
    let loud = rms(&samples, 2, 8.0, 11.5, 48_000.0);
    assert!(quiet > 1e-4, "the quiet half is not silent: rms {quiet}");
    assert!(
        loud > 4.0 * quiet,
        "loud half rms {loud} vs quiet half rms {quiet}"
    );
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(
        peak < 32_767,
        "the master limiter keeps the render from clipping: {peak}"
    );
}

#[tokio::test]
async fn bad_addresses_give_clear_errors() {
    let t = Duration::from_millis(500);
    let port = free_port();
    let err = ScClient::connect(&format!("127.0.0.1:{port}"), Transport::Udp, t)
        .await
        .unwrap_err();
    assert!(matches!(err, ScError::Unreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&port.to_string()) && text.contains("scsynth"),
        "{text}"
    );

    let err = ScClient::connect(&format!("127.0.0.1:{port}"), Transport::Tcp, t)
        .await
        .unwrap_err();
    assert!(matches!(err, ScError::Unreachable { .. }), "{err}");

    for bad in ["localhost", "127.0.0.1:0", "127.0.0.1:notaport", ":57110"] {
        let err = ScClient::connect(bad, Transport::Udp, t).await.unwrap_err();
        assert!(
            matches!(&err, ScError::Address { addr, .. } if addr == bad),
            "{bad}: {err}"
        );
    }
    let err = ScClient::connect("no-such-host.invalid:57110", Transport::Udp, t)
        .await
        .unwrap_err();
    assert!(matches!(err, ScError::Address { .. }), "{err}");

    // The driver: mapping errors come before any network, then the address.
    let spec = PieceSpec::demo();
    let cfg = ScConfig {
        server: format!("127.0.0.1:{port}"),
        timeout: t,
        ..ScConfig::default()
    };
    let err = ScOutput::start(cfg.clone(), &spec).await.unwrap_err();
    assert!(matches!(err, ScError::Unreachable { .. }), "{err}");
    let mut bad_spec = spec.clone();
    bad_spec.params[0].map[1].target = "granular.grain_size".to_string();
    let err = ScOutput::start(cfg, &bad_spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'granular'") && err.contains("'grain_size'"),
        "{err}"
    );
}
