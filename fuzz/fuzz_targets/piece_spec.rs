//! Piece specs (`tutti_spec::PieceSpec::from_toml`, and `from_json` as the API and the
//! store read them): no text panics; a spec that validates exports to JSON and to TOML
//! that both read back equal, renders as Markdown, and gives an engine configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_spec::PieceSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Most inputs are TOML; one that starts with `{` is read as JSON too.
    let parsed = if text.trim_start().starts_with('{') {
        PieceSpec::from_json(text)
    } else {
        PieceSpec::from_toml(text)
    };
    let Ok(spec) = parsed else {
        return;
    };
    let json = spec.to_json();
    let from_json = PieceSpec::from_json(&json)
        .unwrap_or_else(|e| panic!("its JSON {json} does not read back: {e}"));
    assert_eq!(from_json, spec, "JSON round trip of {text:?}");
    let toml = spec.to_toml().expect("a valid spec writes as TOML");
    let from_toml = PieceSpec::from_toml(&toml)
        .unwrap_or_else(|e| panic!("its TOML {toml} does not read back: {e}"));
    assert_eq!(from_toml, spec, "TOML round trip of {text:?}");
    let _ = spec.to_markdown();
    let _ = spec.engine_config();
});
