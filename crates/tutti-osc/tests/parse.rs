//! Encoding round trips and command parsing: every address of the scheme, every malformed case,
//! and property tests that random or mutated bytes never panic the parser.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tutti_osc::{
    encode_bundle, parse_packet, validate_param, OscCommand, OscError, OscOverride, SessionAction,
    MAX_BUNDLE_DEPTH, MAX_PACKET_LEN,
};

fn msg(addr: &str, args: Vec<OscType>) -> OscPacket {
    OscPacket::Message(OscMessage {
        addr: addr.to_owned(),
        args,
    })
}

fn bundle(content: Vec<OscPacket>) -> OscPacket {
    OscPacket::Bundle(OscBundle {
        timetag: OscTime::from((1, 0)),
        content,
    })
}

fn bytes(p: &OscPacket) -> Vec<u8> {
    rosc::encoder::encode(p).expect("rosc encodes")
}

fn parse_one(p: &OscPacket) -> Result<Vec<OscCommand>, OscError> {
    parse_packet(&bytes(p))
}

fn ov(param: &str, mode: OscOverride) -> OscCommand {
    OscCommand::Override {
        param: param.to_owned(),
        mode,
    }
}

// ---------------------------------------------------------------- output

#[test]
fn encoded_bundle_decodes_with_rosc() {
    let t = UNIX_EPOCH + Duration::new(1_754_000_000, 250_000_000);
    let msgs = [
        ("/tutti/cutoff", 0.75f32),
        ("/tutti/density", -3.5),
        ("/synth/1/amp", 1e-6),
    ];
    let mut buf = Vec::new();
    encode_bundle(t, msgs, &mut buf).expect("encode");
    let (rest, packet) = rosc::decoder::decode_udp(&buf).expect("rosc decodes");
    assert!(rest.is_empty());
    let OscPacket::Bundle(b) = packet else {
        panic!("expected a bundle, got {packet:?}")
    };
    assert_eq!(b.timetag, OscTime::try_from(t).expect("timetag"));
    // NTP conversion is lossy by a few nanoseconds only.
    let back = SystemTime::from(b.timetag);
    let diff = back.duration_since(t).unwrap_or_else(|e| e.duration());
    assert!(diff < Duration::from_micros(1), "{diff:?}");
    assert_eq!(b.timetag.seconds, 1_754_000_000 + 2_208_988_800);
    assert_eq!(b.content.len(), msgs.len());
    for (p, (addr, v)) in b.content.iter().zip(msgs) {
        assert_eq!(p, &msg(addr, vec![OscType::Float(v)]));
    }
}

#[test]
fn empty_bundle_is_valid() {
    let mut buf = Vec::new();
    encode_bundle(SystemTime::now(), std::iter::empty(), &mut buf).expect("encode");
    let (_, packet) = rosc::decoder::decode_udp(&buf).expect("decode");
    assert!(matches!(packet, OscPacket::Bundle(ref b) if b.content.is_empty()));
}

proptest! {
    #[test]
    fn encode_round_trips(
        entries in prop::collection::vec(("[a-z0-9_]{1,20}", -1e9f32..1e9f32), 0..40),
        secs in 0u64..2_000_000_000,
        nanos in 0u32..1_000_000_000,
    ) {
        let addrs: Vec<String> = entries.iter().map(|(n, _)| format!("/tutti/{n}")).collect();
        let t = UNIX_EPOCH + Duration::new(secs, nanos);
        let mut buf = Vec::new();
        encode_bundle(t, addrs.iter().map(String::as_str).zip(entries.iter().map(|e| e.1)), &mut buf)
            .expect("encode");
        let (rest, packet) = rosc::decoder::decode_udp(&buf).expect("decode");
        prop_assert!(rest.is_empty());
        let OscPacket::Bundle(b) = packet else { panic!("not a bundle") };
        prop_assert_eq!(b.timetag, OscTime::try_from(t).expect("timetag"));
        prop_assert_eq!(b.content.len(), entries.len());
        for (p, (a, (_, v))) in b.content.iter().zip(addrs.iter().zip(&entries)) {
            prop_assert_eq!(p, &msg(a, vec![OscType::Float(*v)]));
        }
    }
}

// ---------------------------------------------------------------- every command parses

#[test]
fn every_command_address_parses() {
    let f = OscType::Float;
    let cases: Vec<(OscPacket, OscCommand)> = vec![
        (
            msg("/tutti/override/cutoff", vec![f(0.5)]),
            ov("cutoff", OscOverride::Lock(0.5)),
        ),
        (
            msg("/tutti/lock/cutoff", vec![f(0.25)]),
            ov("cutoff", OscOverride::Lock(0.25)),
        ),
        (
            msg("/tutti/bias/cutoff", vec![f(-0.1)]),
            ov("cutoff", OscOverride::Bias(-0.1)),
        ),
        (
            msg("/tutti/blend/cutoff", vec![f(0.9), f(0.3)]),
            ov(
                "cutoff",
                OscOverride::Blend {
                    target: 0.9,
                    factor: 0.3,
                },
            ),
        ),
        (
            msg("/tutti/clamp/cutoff", vec![f(0.2), f(0.8)]),
            ov("cutoff", OscOverride::Clamp { lo: 0.2, hi: 0.8 }),
        ),
        (
            msg("/tutti/freeze/cutoff", vec![]),
            ov("cutoff", OscOverride::Freeze),
        ),
        (
            msg("/tutti/release/cutoff", vec![]),
            OscCommand::Release {
                param: "cutoff".into(),
                mode: None,
            },
        ),
        (
            msg(
                "/tutti/release/cutoff",
                vec![OscType::String("bias".into())],
            ),
            OscCommand::Release {
                param: "cutoff".into(),
                mode: Some("bias".into()),
            },
        ),
        (
            msg("/tutti/session/start", vec![]),
            OscCommand::Session(SessionAction::Start),
        ),
        (
            msg("/tutti/session/pause", vec![]),
            OscCommand::Session(SessionAction::Pause),
        ),
        (
            msg("/tutti/session/resume", vec![]),
            OscCommand::Session(SessionAction::Resume),
        ),
        (
            msg("/tutti/session/end", vec![]),
            OscCommand::Session(SessionAction::End),
        ),
        (msg("/tutti/reset", vec![]), OscCommand::Reset),
        (
            msg("/tutti/bypass", vec![OscType::Int(1)]),
            OscCommand::Bypass(true),
        ),
        (
            msg("/tutti/bypass", vec![OscType::Int(0)]),
            OscCommand::Bypass(false),
        ),
        (msg("/tutti/bypass", vec![f(1.0)]), OscCommand::Bypass(true)),
        (
            msg("/tutti/bypass", vec![f(0.0)]),
            OscCommand::Bypass(false),
        ),
        (
            msg("/tutti/bypass", vec![OscType::Bool(true)]),
            OscCommand::Bypass(true),
        ),
        (
            msg("/tutti/bypass", vec![OscType::Bool(false)]),
            OscCommand::Bypass(false),
        ),
        (
            msg("/tutti/cue/chime", vec![]),
            OscCommand::Cue {
                voice: "chime".into(),
            },
        ),
        (
            msg("/tutti/cue/pulse", vec![f(1.0)]),
            OscCommand::Cue {
                voice: "pulse".into(),
            },
        ),
    ];
    for (packet, want) in cases {
        let got = parse_one(&packet).unwrap_or_else(|e| panic!("{packet:?}: {e}"));
        assert_eq!(got, vec![want], "{packet:?}");
    }
}

#[test]
fn every_release_mode_parses() {
    for mode in tutti_osc::OVERRIDE_MODES {
        let got = parse_one(&msg("/tutti/release/x", vec![OscType::String(mode.into())]))
            .expect("parses");
        assert_eq!(
            got,
            vec![OscCommand::Release {
                param: "x".into(),
                mode: Some(mode.into())
            }]
        );
    }
}

#[test]
fn numbers_may_be_int_long_float_or_double() {
    for arg in [
        OscType::Int(3),
        OscType::Long(3),
        OscType::Float(3.0),
        OscType::Double(3.0),
    ] {
        let got = parse_one(&msg("/tutti/override/p", vec![arg.clone()])).expect("parses");
        assert_eq!(got, vec![ov("p", OscOverride::Lock(3.0))], "{arg:?}");
    }
    let got = parse_one(&msg(
        "/tutti/blend/p",
        vec![OscType::Int(2), OscType::Double(0.5)],
    ))
    .expect("mixed types");
    assert_eq!(
        got,
        vec![ov(
            "p",
            OscOverride::Blend {
                target: 2.0,
                factor: 0.5
            }
        )]
    );
}

#[test]
fn triggers_fire_on_press_and_ignore_release() {
    let pressed = [OscType::Float(1.0), OscType::Int(1), OscType::Bool(true)];
    let released = [OscType::Float(0.0), OscType::Int(0), OscType::Bool(false)];
    for addr in [
        "/tutti/freeze/p",
        "/tutti/release/p",
        "/tutti/session/start",
        "/tutti/reset",
        "/tutti/cue/chime",
    ] {
        for a in &pressed {
            assert_eq!(
                parse_one(&msg(addr, vec![a.clone()])).expect("press").len(),
                1,
                "{addr} {a:?}"
            );
        }
        for a in &released {
            assert_eq!(
                parse_one(&msg(addr, vec![a.clone()])).expect("release"),
                vec![],
                "{addr} {a:?}"
            );
        }
    }
}

#[test]
fn nested_bundles_flatten_in_order() {
    let p = bundle(vec![
        msg("/tutti/reset", vec![]),
        bundle(vec![
            msg("/tutti/lock/a", vec![OscType::Float(1.0)]),
            bundle(vec![msg("/tutti/freeze/b", vec![])]),
        ]),
        msg("/tutti/bypass", vec![OscType::Bool(true)]),
        bundle(vec![]),
    ]);
    let got = parse_one(&p).expect("parses");
    assert_eq!(
        got,
        vec![
            OscCommand::Reset,
            ov("a", OscOverride::Lock(1.0)),
            ov("b", OscOverride::Freeze),
            OscCommand::Bypass(true),
        ]
    );
}

// ---------------------------------------------------------------- malformed input

fn nested(depth: usize) -> OscPacket {
    let mut p = msg("/tutti/reset", vec![]);
    for _ in 0..depth {
        p = bundle(vec![p]);
    }
    p
}

#[test]
fn bundle_depth_is_limited() {
    assert_eq!(
        parse_one(&nested(MAX_BUNDLE_DEPTH)).expect("at limit"),
        vec![OscCommand::Reset]
    );
    assert!(matches!(
        parse_one(&nested(MAX_BUNDLE_DEPTH + 1)),
        Err(OscError::BundleTooDeep {
            max: MAX_BUNDLE_DEPTH
        })
    ));
    // The deepest nesting that fits in 8 KiB must not overflow the stack either.
    let mut deepest = Vec::new();
    let mut depth = 0;
    loop {
        let b = bytes(&nested(depth + 1));
        if b.len() > MAX_PACKET_LEN {
            break;
        }
        deepest = b;
        depth += 1;
    }
    assert!(depth > 300, "{depth}");
    assert!(matches!(
        parse_packet(&deepest),
        Err(OscError::BundleTooDeep { .. })
    ));
}

#[test]
fn non_osc_bytes_are_rejected() {
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        b"hello world!".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n\0\0".to_vec(),
        vec![0xff; 16],
        vec![0; 8],
        b"{\"type\":\"x\"}".to_vec(),
        b"#bundle\0".to_vec(),                           // no timetag
        b"/tutti/reset\0\0\0\0".to_vec(),                // no type tag string
        b"/tutti/reset\0\0\0\0x\0\0\0".to_vec(),         // type tags not starting with ','
        b"/tutti/reset\0\0\0\0,\0\0\0\0\0\0\0".to_vec(), // trailing bytes
        b"/tutti/reset\0\x01\0\0,\0\0\0".to_vec(),       // non-zero padding
        b"/tutti/lock/p\0\0\0,q\0\0\0\0\0\0".to_vec(),   // unknown type tag
        b"/tutti/\xff\xfe\0\0,\0\0\0".to_vec(),          // address not UTF-8
    ];
    for b in cases {
        match parse_packet(&b) {
            Err(OscError::NotOsc { reason }) => assert!(!reason.is_empty()),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(&b)),
        }
    }
}

#[test]
fn truncated_packets_are_rejected() {
    let full = bytes(&bundle(vec![
        msg(
            "/tutti/blend/cutoff",
            vec![OscType::Float(0.5), OscType::Float(0.5)],
        ),
        msg("/tutti/reset", vec![]),
    ]));
    let all = parse_packet(&full).expect("the untruncated packet is fine");
    assert_eq!(all.len(), 2);
    // Cutting a bundle exactly between elements leaves a shorter, valid bundle: a prefix.
    let first_len = u32::from_be_bytes(full[16..20].try_into().expect("4 bytes")) as usize;
    let boundaries = [(16, 0), (20 + first_len, 1)];
    for len in 0..full.len() {
        let r = parse_packet(&full[..len]);
        match boundaries.iter().find(|(b, _)| *b == len) {
            Some((_, n)) => assert_eq!(r.expect("boundary cut"), all[..*n].to_vec()),
            None => assert!(
                matches!(r, Err(OscError::NotOsc { .. })),
                "truncated to {len} of {}: {r:?}",
                full.len()
            ),
        }
    }
}

#[test]
fn bundle_element_with_hidden_bytes_is_rejected() {
    // A bundle element whose declared size is larger than its message: rosc alone would accept it.
    let inner = bytes(&msg("/tutti/reset", vec![]));
    let mut b = bytes(&bundle(vec![]));
    b.extend_from_slice(&((inner.len() + 4) as u32).to_be_bytes());
    b.extend_from_slice(&inner);
    b.extend_from_slice(b"junk");
    assert!(matches!(parse_packet(&b), Err(OscError::NotOsc { .. })));
}

#[test]
fn oversized_packet_is_rejected() {
    let big = bytes(&msg(
        "/tutti/release/p",
        vec![OscType::Blob(vec![0; MAX_PACKET_LEN])],
    ));
    assert!(matches!(
        parse_packet(&big),
        Err(OscError::PacketTooLarge { len, max: MAX_PACKET_LEN }) if len == big.len()
    ));
}

#[test]
fn unknown_addresses_are_rejected() {
    for addr in [
        "/tutti",
        "/tutti/",
        "/tutti/cutoff",
        "/tutti/unlock/p",
        "/tutti/session",
        "/tutti/session/stop",
        "/tutti/session/start/now",
        "/tutti/reset/all",
        "/tutti/bypass/p",
        "/other/override/p",
        "/TUTTI/reset",
    ] {
        match parse_one(&msg(addr, vec![])) {
            Err(OscError::UnknownAddress { address }) => assert_eq!(address, addr),
            other => panic!("{addr}: {other:?}"),
        }
    }
}

#[test]
fn bad_param_names_are_rejected() {
    let long = format!("/tutti/lock/{}", "p".repeat(65));
    for (addr, why) in [
        ("/tutti/lock", "empty"),
        ("/tutti/lock/", "empty"),
        ("/tutti/lock/a/b", "only"),
        ("/tutti/lock/a b", "only"),
        ("/tutti/lock/*", "only"),
        ("/tutti/lock/caf\u{e9}", "only"),
        (long.as_str(), "longer"),
        ("/tutti/freeze/", "empty"),
        ("/tutti/release/a.b", "only"),
        ("/tutti/cue", "empty"),
        ("/tutti/cue/a/b", "only"),
    ] {
        match parse_one(&msg(addr, vec![OscType::Float(1.0)])) {
            Err(OscError::InvalidParam { reason, .. }) => {
                assert!(reason.contains(why), "{addr}: {reason}")
            }
            other => panic!("{addr}: {other:?}"),
        }
    }
}

#[test]
fn wrong_argument_counts_are_rejected() {
    let f = || OscType::Float(0.5);
    for (addr, args) in [
        ("/tutti/lock/p", vec![]),
        ("/tutti/override/p", vec![f(), f()]),
        ("/tutti/bias/p", vec![]),
        ("/tutti/blend/p", vec![f()]),
        ("/tutti/blend/p", vec![f(), f(), f()]),
        ("/tutti/clamp/p", vec![f()]),
        ("/tutti/freeze/p", vec![f(), f()]),
        (
            "/tutti/release/p",
            vec![OscType::String("lock".into()), f()],
        ),
        ("/tutti/session/end", vec![f(), f()]),
        ("/tutti/reset", vec![f(), f()]),
        ("/tutti/bypass", vec![]),
        ("/tutti/bypass", vec![f(), f()]),
    ] {
        let n = args.len();
        match parse_one(&msg(addr, args)) {
            Err(OscError::WrongArgCount { address, got, .. }) => {
                assert_eq!(address, addr);
                assert_eq!(got, n);
            }
            other => panic!("{addr} with {n} args: {other:?}"),
        }
    }
}

#[test]
fn wrong_argument_types_are_rejected() {
    let s = || OscType::String("x".into());
    for (addr, args, index, tag) in [
        ("/tutti/lock/p", vec![s()], 0, 's'),
        ("/tutti/bias/p", vec![OscType::Bool(true)], 0, 'T'),
        (
            "/tutti/blend/p",
            vec![OscType::Float(1.0), OscType::Blob(vec![1])],
            1,
            'b',
        ),
        (
            "/tutti/clamp/p",
            vec![OscType::Nil, OscType::Float(1.0)],
            0,
            'N',
        ),
        ("/tutti/override/p", vec![OscType::Char('a')], 0, 'c'),
        ("/tutti/bypass", vec![s()], 0, 's'),
        ("/tutti/reset", vec![s()], 0, 's'),
        ("/tutti/freeze/p", vec![OscType::Nil], 0, 'N'),
        (
            "/tutti/release/p",
            vec![OscType::Time(OscTime::from((1, 2)))],
            0,
            't',
        ),
    ] {
        match parse_one(&msg(addr, args)) {
            Err(OscError::WrongArgType {
                address,
                index: i,
                got,
                ..
            }) => {
                assert_eq!((address.as_str(), i, got), (addr, index, tag));
            }
            other => panic!("{addr}: {other:?}"),
        }
    }
}

#[test]
fn non_finite_numbers_are_rejected() {
    for (addr, args, index) in [
        ("/tutti/lock/p", vec![OscType::Float(f32::NAN)], 0),
        ("/tutti/override/p", vec![OscType::Float(f32::INFINITY)], 0),
        ("/tutti/bias/p", vec![OscType::Float(f32::NEG_INFINITY)], 0),
        (
            "/tutti/blend/p",
            vec![OscType::Float(1.0), OscType::Double(f64::NAN)],
            1,
        ),
        (
            "/tutti/clamp/p",
            vec![OscType::Double(1e300), OscType::Float(1.0)],
            0,
        ),
        ("/tutti/lock/p", vec![OscType::Inf], 0),
        ("/tutti/bypass", vec![OscType::Float(f32::NAN)], 0),
        ("/tutti/freeze/p", vec![OscType::Float(f32::INFINITY)], 0),
    ] {
        match parse_one(&msg(addr, args)) {
            Err(OscError::NonFiniteArg {
                address, index: i, ..
            }) => {
                assert_eq!((address.as_str(), i), (addr, index));
            }
            other => panic!("{addr}: {other:?}"),
        }
    }
}

#[test]
fn out_of_range_arguments_are_rejected() {
    let f = OscType::Float;
    for (addr, args, index) in [
        ("/tutti/blend/p", vec![f(0.5), f(1.5)], 1),
        ("/tutti/blend/p", vec![f(0.5), f(-0.1)], 1),
        ("/tutti/clamp/p", vec![f(0.8), f(0.2)], 0),
    ] {
        match parse_one(&msg(addr, args)) {
            Err(OscError::ArgOutOfRange { index: i, .. }) => assert_eq!(i, index, "{addr}"),
            other => panic!("{addr}: {other:?}"),
        }
    }
    assert!(matches!(
        parse_one(&msg("/tutti/release/p", vec![OscType::String("everything".into())])),
        Err(OscError::InvalidReleaseMode { mode }) if mode == "everything"
    ));
}

#[test]
fn one_bad_message_rejects_the_whole_bundle() {
    let p = bundle(vec![
        msg("/tutti/reset", vec![]),
        msg("/tutti/lock/p", vec![OscType::Float(f32::NAN)]),
    ]);
    assert!(matches!(parse_one(&p), Err(OscError::NonFiniteArg { .. })));
}

// ---------------------------------------------------------------- fuzz

fn valid_commands(cmds: &[OscCommand]) -> bool {
    cmds.iter().all(|c| match c {
        OscCommand::Override { param, mode } => {
            validate_param(param).is_ok()
                && match *mode {
                    OscOverride::Lock(v) | OscOverride::Bias(v) => v.is_finite(),
                    OscOverride::Blend { target, factor } => {
                        target.is_finite() && (0.0..=1.0).contains(&factor)
                    }
                    OscOverride::Clamp { lo, hi } => lo.is_finite() && hi.is_finite() && lo <= hi,
                    OscOverride::Freeze => true,
                }
        }
        OscCommand::Release { param, mode } => {
            validate_param(param).is_ok()
                && mode
                    .as_deref()
                    .is_none_or(|m| tutti_osc::OVERRIDE_MODES.contains(&m))
        }
        OscCommand::Session(_) | OscCommand::Reset | OscCommand::Bypass(_) => true,
        OscCommand::Cue { voice } => validate_param(voice).is_ok(),
    })
}

fn seed_packets() -> Vec<Vec<u8>> {
    vec![
        bytes(&msg(
            "/tutti/blend/cutoff",
            vec![OscType::Float(0.5), OscType::Float(0.25)],
        )),
        bytes(&msg(
            "/tutti/release/p",
            vec![OscType::String("clamp".into())],
        )),
        bytes(&bundle(vec![
            msg("/tutti/reset", vec![]),
            bundle(vec![msg(
                "/tutti/clamp/x",
                vec![OscType::Int(1), OscType::Double(2.0)],
            )]),
        ])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..(MAX_PACKET_LEN + 64))) {
        if let Ok(cmds) = parse_packet(&data) {
            prop_assert!(valid_commands(&cmds));
        }
    }

    #[test]
    fn random_word_aligned_bytes_never_panic(words in prop::collection::vec(any::<u32>(), 0..64)) {
        let data: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        if let Ok(cmds) = parse_packet(&data) {
            prop_assert!(valid_commands(&cmds));
        }
    }

    #[test]
    fn mutated_packets_never_panic(
        seed in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut data = seed_packets().swap_remove(seed);
        for (i, b) in edits {
            let at = i.index(data.len());
            data[at] = b;
        }
        if truncate {
            data.truncate(cut.index(data.len() + 1));
        }
        if let Ok(cmds) = parse_packet(&data) {
            prop_assert!(valid_commands(&cmds));
        }
    }
}
