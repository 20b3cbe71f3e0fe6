//! `/live/v1` client frames: `ClientFrame::parse` never panics, and a frame it accepts,
//! serialised again, parses back to the same frame (numbers to within one unit in the last
//! place: serde_json, built without its `float_roundtrip` feature, may read a long decimal
//! such as `3.444444444444445e43` one ULP off; harmless for frames, and found by this target).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tutti_protocol::ClientFrame;

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 2.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(frame) = ClientFrame::parse(text) else {
        return;
    };
    let again = serde_json::to_string(&frame).expect("a parsed frame serialises");
    let back = ClientFrame::parse(&again)
        .unwrap_or_else(|e| panic!("{again} (from {text:?}) no longer parses: {e}"));
    let json = |f: &ClientFrame| serde_json::to_value(f).expect("a frame serialises");
    assert!(
        same(&json(&back), &json(&frame)),
        "{again} parsed as {back:?}, not {frame:?} (from {text:?})"
    );
});
