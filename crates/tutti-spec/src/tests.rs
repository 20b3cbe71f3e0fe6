use super::*;

#[test]
fn demo_is_valid_and_round_trips_through_json() {
    let demo = PieceSpec::demo();
    assert_eq!(demo.slug, "demo");
    assert_eq!(demo.params.len(), 8);
    let back = PieceSpec::from_json(&demo.to_json()).unwrap();
    assert_eq!(back, demo);
    let cfg = demo.engine_config();
    assert_eq!(cfg.params.len(), 8);
}

fn with_param(extra: &str) -> String {
    format!("slug = \"t\"\ntitle = \"T\"\n[[params]]\nname = \"x\"\n{extra}\n")
}

fn err_field(text: &str) -> String {
    match PieceSpec::from_toml(text).unwrap_err() {
        SpecError::Invalid { field, .. } => field,
        SpecError::Parse(m) => format!("parse: {m}"),
    }
}

#[test]
fn errors_name_the_field() {
    assert_eq!(
        err_field(&with_param("kind = \"continuous\"\nmin = 1.0\nmax = 0.0")),
        "params[0].max"
    );
    assert_eq!(
        err_field(&with_param("kind = \"continuous\"\nmax = 1.0")),
        "params[0].min"
    );
    assert_eq!(
        err_field(&with_param(
            "kind = \"continuous\"\nmin = 0.0\nmax = 1.0\ndefault = 2.0"
        )),
        "params[0].default"
    );
    assert_eq!(
        err_field(&with_param("kind = \"discrete\"\nchoices = [\"a\"]")),
        "params[0].choices"
    );
    assert_eq!(
        err_field(&with_param(
            "kind = \"discrete\"\nchoices = [\"a\", \"b\"]\nmin = 0.0"
        )),
        "params[0].min"
    );
    assert_eq!(
        err_field(&with_param(
            "kind = \"continuous\"\nmin = 0.0\nmax = 1.0\nmap = [{ target = \"drone.amp\", min = 0.0, max = 1.0, curve = \"exp\" }]"
        )),
        "params[0].map[0].curve"
    );
    assert_eq!(
        err_field(&with_param(
            "kind = \"continuous\"\nmin = 0.0\nmax = 1.0\nmap = [{ target = \"amp\", min = 0.0, max = 1.0 }]"
        )),
        "params[0].map[0].target"
    );
    assert_eq!(
        err_field("slug = \"t\"\ntitle = \"T\"\ntick_hz = 100\n[[params]]\nname = \"x\"\nkind = \"continuous\"\nmin = 0.0\nmax = 1.0\n"),
        "tick_hz"
    );
}

/// The error of the demo spec with this title, first continuous parameter's label and unit,
/// and last choice of its vote.
fn display_error(title: &str, label: &str, unit: &str, choice: &str) -> Option<(String, String)> {
    let mut spec = PieceSpec::demo();
    spec.title = title.to_owned();
    let cont = spec
        .params
        .iter_mut()
        .find(|p| p.choices.is_none())
        .unwrap();
    cont.label = Some(label.to_owned());
    cont.unit = Some(unit.to_owned());
    let disc = spec
        .params
        .iter_mut()
        .find(|p| p.choices.is_some())
        .unwrap();
    *disc.choices.as_mut().unwrap().last_mut().unwrap() = choice.to_owned();
    match spec.validate() {
        Ok(()) => None,
        Err(SpecError::Invalid { field, message }) => Some((field, message)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn display_texts_count_characters_and_refuse_spoofing() {
    let e200 = "é".repeat(200);
    assert_eq!(display_error(&e200, &"é".repeat(64), "µs", "Ré"), None);
    let (field, message) = display_error(&"é".repeat(201), "L", "u", "c").unwrap();
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("title", "must be 1–200 characters (got 201)")
    );
    let (field, message) = display_error("Cheap \u{202E}tfig", "L", "u", "c").unwrap();
    assert_eq!(field, "title");
    assert!(
        message.contains("bidirectional control characters (U+202E"),
        "{message}"
    );
    let (field, message) = display_error("T", "Lo\u{200B}ud", "u", "c").unwrap();
    assert!(field.ends_with(".label"), "{field}");
    assert!(
        message.contains("invisible characters (U+200B"),
        "{message}"
    );
    let (field, _) = display_error("T", "L", "\u{2066}dB", "c").unwrap();
    assert!(field.ends_with(".unit"), "{field}");
    let (field, _) = display_error("T", "L", &"x".repeat(33), "c").unwrap();
    assert!(field.ends_with(".unit"), "{field}");
    let (field, _) = display_error("T", "L", "u", "a\u{FEFF}").unwrap();
    assert!(field.ends_with(".choices[2]"), "{field}");
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let e = PieceSpec::from_toml(&with_param(
        "kind = \"continuous\"\nmin = 0.0\nmax = 1.0\ncolour = 3",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}

#[test]
fn mapping_curves() {
    let m = |curve, min, max| Mapping {
        target: "a.b".into(),
        min: Some(min),
        max: Some(max),
        curve,
        steps: None,
    };
    let lin = m(Curve::Linear, 10.0, 20.0);
    assert_eq!(lin.apply(0.5), 15.0);
    let exp = m(Curve::Exp, 200.0, 8000.0);
    assert!((exp.apply(0.0) - 200.0).abs() < 1e-9);
    assert!((exp.apply(1.0) - 8000.0).abs() < 1e-6);
    assert!((exp.apply(0.5) - (200.0f64 * 8000.0).sqrt()).abs() < 1e-6);
    let db = m(Curve::Db, -60.0, 0.0);
    assert!((db.apply(1.0) - 1.0).abs() < 1e-12);
    assert!((db.apply(0.0) - 0.001).abs() < 1e-12);
    assert_eq!(lin.apply(f64::NAN), 10.0);
    assert_eq!(lin.apply(7.0), 20.0);
    let steps = Mapping {
        target: "rhythm.pattern".into(),
        min: None,
        max: None,
        curve: Curve::Steps,
        steps: Some(vec![0.0, 1.0, 2.0]),
    };
    assert_eq!(steps.apply(0.0), 0.0);
    assert_eq!(steps.apply(0.5), 1.0);
    assert_eq!(steps.apply(1.0), 2.0);
}

#[test]
fn osc_scaling_uses_the_param_range_by_default() {
    let demo = PieceSpec::demo();
    let tempo = &demo.params[demo.param_index("tempo").unwrap()];
    assert_eq!(tempo.osc_target().0, "/tutti/tempo");
    assert_eq!(tempo.osc_value(120.0), 120.0);
}

#[test]
fn phone_voices_are_checked_field_by_field() {
    let demo = PieceSpec::demo();
    assert_eq!(demo.phone.lead_ms, 150);
    assert_eq!(demo.phone.voice("chime").map(|v| v.wave), Some(Wave::Sine));
    // A piece without a [phone] section keeps its JSON as before.
    let param = "kind = \"continuous\"\nmin = 0.0\nmax = 1.0";
    let plain = PieceSpec::from_toml(&with_param(param)).unwrap();
    assert!(plain.phone.is_unset());
    assert!(!plain.to_json().contains("phone"));
    let base = with_param(param);
    let phone = |extra: &str| format!("{base}[phone]\n{extra}\n");
    let voice = |extra: &str| phone(&format!("[[phone.voices]]\nname = \"v\"\n{extra}"));
    assert_eq!(err_field(&phone("lead_ms = 5")), "phone.lead_ms");
    assert_eq!(err_field(&phone("lead_ms = 2001")), "phone.lead_ms");
    assert_eq!(err_field(&voice("freq = 5.0")), "phone.voices[0].freq");
    assert_eq!(err_field(&voice("gain = 1.5")), "phone.voices[0].gain");
    assert_eq!(
        err_field(&voice("attack_ms = -1.0")),
        "phone.voices[0].attack_ms"
    );
    assert_eq!(
        err_field(&voice("hold_ms = 1e9")),
        "phone.voices[0].hold_ms"
    );
    assert_eq!(
        err_field(&voice("release_ms = 0.0")),
        "phone.voices[0].release_ms"
    );
    assert_eq!(
        err_field(&phone("[[phone.voices]]\nname = \"Bell!\"")),
        "phone.voices[0].name"
    );
    assert_eq!(
        err_field(&phone(
            "[[phone.voices]]\nname = \"a\"\n[[phone.voices]]\nname = \"a\""
        )),
        "phone.voices[1].name"
    );
    let many: String = (0..17)
        .map(|i| format!("[[phone.voices]]\nname = \"v{i}\"\n"))
        .collect();
    assert_eq!(err_field(&phone(&many)), "phone.voices");
    assert!(err_field(&voice("wave = \"kazoo\"")).starts_with("parse:"));
    // Drones follow a continuous parameter, within their ranges, under distinct names.
    assert_eq!(demo.phone.drones[0].follow, "intensity");
    let drone = |extra: &str| {
        phone(&format!(
            "[[phone.drones]]\nname = \"d\"\nfollow = \"x\"\n{extra}"
        ))
    };
    assert!(PieceSpec::from_toml(&drone("freq_to = 330.0")).is_ok());
    assert_eq!(
        err_field(&phone("[[phone.drones]]\nname = \"d\"\nfollow = \"nope\"")),
        "phone.drones[0].follow"
    );
    assert_eq!(
        err_field(&drone("freq_to = 1e6")),
        "phone.drones[0].freq_to"
    );
    assert_eq!(err_field(&drone("gain = -0.1")), "phone.drones[0].gain");
    assert_eq!(
        err_field(&drone("smooth_ms = 1.0")),
        "phone.drones[0].smooth_ms"
    );
    assert_eq!(
        err_field(&phone(
            "[[phone.voices]]\nname = \"a\"\n[[phone.drones]]\nname = \"a\"\nfollow = \"x\""
        )),
        "phone.drones[0].name"
    );
    // A moving source: two continuous parameters and a radius, in a hall.
    let hall = "hall = { width = 20.0, depth = 30.0 }\n";
    let moving = |src: &str| {
        phone(&format!(
            "{hall}[[phone.drones]]\nname = \"d\"\nfollow = \"x\"\nsource = {src}"
        ))
    };
    assert!(PieceSpec::from_toml(&moving("{ x = \"x\", y = \"x\", radius = 8.0 }")).is_ok());
    assert_eq!(
        err_field(&moving("{ x = \"nope\", y = \"x\", radius = 8.0 }")),
        "phone.drones[0].source.x"
    );
    assert_eq!(
        err_field(&moving("{ x = \"x\", y = \"x\", radius = 0.1 }")),
        "phone.drones[0].source.radius"
    );
    assert_eq!(
        err_field(&drone("source = { x = \"x\", y = \"x\", radius = 8.0 }")),
        "phone.drones[0].source"
    );
    assert!(err_field(&moving("{ x = \"x\", radius = 8.0 }")).starts_with("parse:"));
    let five: String = (0..5)
        .map(|i| format!("[[phone.drones]]\nname = \"d{i}\"\nfollow = \"x\"\n"))
        .collect();
    assert_eq!(err_field(&phone(&five)), "phone.drones");
    assert!(err_field(&phone("[[phone.drones]]\nname = \"d\"")).starts_with("parse:"));
    assert!(err_field(&voice("colour = 1")).starts_with("parse:"));
    assert_eq!(
        err_field(&phone("hall = { width = 0.5, depth = 10.0 }")),
        "phone.hall.width"
    );
    assert_eq!(
        err_field(&phone("hall = { width = 20.0, depth = 1e9 }")),
        "phone.hall.depth"
    );
    assert_eq!(
        demo.phone.hall,
        Some(Hall {
            width: 24.0,
            depth: 30.0
        })
    );
    // A valid voice round-trips.
    let ok = PieceSpec::from_toml(&voice("wave = \"noise\"\nhold_ms = 20.0")).unwrap();
    assert_eq!(PieceSpec::from_json(&ok.to_json()).unwrap(), ok);
}
