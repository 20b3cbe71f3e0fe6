//! Every example in docs/protocol.md parses as the frame it documents, so the document
//! cannot drift from the code.

use tutti_protocol::{ClientFrame, ServerFrame, StateFrame};

fn blocks(kind: &str) -> Vec<String> {
    let doc = include_str!("../../../docs/protocol.md");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim() == format!("```json {kind}") => current = Some(String::new()),
            Some(buf) if line.trim() == "```" => {
                out.push(std::mem::take(buf));
                current = None;
            }
            Some(buf) => {
                buf.push_str(line);
                buf.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn client_examples_parse() {
    let examples = blocks("client");
    assert!(examples.len() >= 12, "found {}", examples.len());
    for e in examples {
        let compact: serde_json::Value = serde_json::from_str(&e).expect("valid JSON");
        ClientFrame::parse(&compact.to_string()).unwrap_or_else(|err| panic!("{e}: {err}"));
    }
}

#[test]
fn server_examples_parse() {
    let examples = blocks("server");
    assert!(examples.len() >= 4);
    for e in examples {
        serde_json::from_str::<ServerFrame>(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
    }
    let states = blocks("server-state");
    assert_eq!(states.len(), 2);
    for e in states {
        let s: StateFrame = serde_json::from_str(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
        assert_eq!(s.kind, "state");
    }
    let stats = blocks("server-stats");
    assert_eq!(stats.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&stats[0]).unwrap();
    assert_eq!(v["type"], "stats");
    let monitor = blocks("server-monitor");
    assert_eq!(monitor.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&monitor[0]).unwrap();
    assert_eq!(v["type"], "monitor");
    assert_eq!(v["rms_dbfs"].as_array().unwrap().len(), 2);
    let audio = blocks("server-audio");
    let v: serde_json::Value = serde_json::from_str(&audio[0]).unwrap();
    assert_eq!(v["encoding"], "s16le");
}

#[test]
fn every_error_code_is_documented() {
    let doc = include_str!("../../../docs/protocol.md");
    for code in tutti_protocol::ErrorCode::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", code.as_str())),
            "{} is not in the error table",
            code.as_str()
        );
    }
}
