//! docs/protocol.md against the wire. Every client example parses as the frame it
//! documents, every error code is in the table, and every server example is compared field
//! by field with the frame a real server sends when driven by the document's own client
//! examples: the same keys at every level (none missing on either side), the same JSON
//! types, and equal values where they are deterministic. Values that differ from run to
//! run (tokens, codes, clocks, ticks, counters, the crowd's aggregates) are compared by type
//! only; each frame's [`Rules`] name them, and the collections an example shows only part
//! of (the document says so where it shows them).

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tutti_protocol::{ClientFrame, ServerFrame, StateFrame};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// One fenced example: its info string (`json client`, `json server-state`, …), its text,
/// and the heading it is under.
struct Block {
    info: String,
    text: String,
    section: String,
}

fn all_blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<(String, String)> = None;
    for line in DOC.lines() {
        let t = line.trim();
        if let Some((info, text)) = open.as_mut() {
            if t == "```" {
                out.push(Block {
                    info: std::mem::take(info),
                    text: std::mem::take(text),
                    section: section.clone(),
                });
                open = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
        } else if let Some(info) = t.strip_prefix("```") {
            open = Some((info.trim().to_string(), String::new()));
        } else if let Some(h) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("## "))
        {
            section = h.trim().to_string();
        }
    }
    assert!(open.is_none(), "an unclosed code block in docs/protocol.md");
    out
}

fn blocks(info: &str) -> Vec<String> {
    all_blocks()
        .into_iter()
        .filter(|b| b.info == info)
        .map(|b| b.text)
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The blocks (info, text) under the heading `section`.
fn section(section: &str) -> Vec<(String, String)> {
    let found: Vec<_> = all_blocks()
        .into_iter()
        .filter(|b| b.section == section)
        .map(|b| (b.info, b.text))
        .collect();
    assert!(!found.is_empty(), "no examples under {section}");
    found
}

/// The server example of frame type `ty` (exactly one).
fn server_example(ty: &str) -> Value {
    let found: Vec<Value> = all_blocks()
        .into_iter()
        .filter(|b| b.info.starts_with("json server"))
        .map(|b| parse(&b.text))
        .filter(|v| v["type"] == ty)
        .collect();
    assert_eq!(found.len(), 1, "server examples of type {ty}");
    found.into_iter().next().unwrap()
}

/// The client examples under a heading.
fn client_examples(heading: &str) -> Vec<Value> {
    section(heading)
        .into_iter()
        .filter(|(info, _)| info == "json client")
        .map(|(_, t)| parse(&t))
        .collect()
}

#[test]
fn client_examples_parse() {
    let examples = blocks("json client");
    assert!(examples.len() >= 15, "found {}", examples.len());
    for e in examples {
        let compact: Value = serde_json::from_str(&e).expect("valid JSON");
        ClientFrame::parse(&compact.to_string()).unwrap_or_else(|err| panic!("{e}: {err}"));
    }
    // The refused examples are refused, with the code and `seq` of the error after them.
    let err = section("`error`");
    let mut refused = 0;
    for pair in err.windows(2) {
        if pair[0].0 == "text client-refused" {
            refused += 1;
            let u = ClientFrame::read(pair[0].1.trim()).expect_err(&pair[0].1);
            let want = parse(&pair[1].1);
            assert_eq!(json!(u.error.code), want["code"], "{}", pair[0].1);
            assert_eq!(json!(u.seq), want["seq"], "{}", pair[0].1);
        }
    }
    assert!(refused >= 2);
}

#[test]
fn server_examples_parse() {
    let examples = blocks("json server");
    assert!(examples.len() >= 6);
    for e in examples {
        serde_json::from_str::<ServerFrame>(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
    }
    let states = blocks("json server-state");
    assert_eq!(states.len(), 2);
    for e in states {
        let s: StateFrame = serde_json::from_str(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
        assert_eq!(s.kind, "state");
    }
    for (info, ty) in [
        ("json server-stats", "stats"),
        ("json server-monitor", "monitor"),
        ("json server-audio", "audio_format"),
    ] {
        let b = blocks(info);
        assert_eq!(b.len(), 1, "{info}");
        assert_eq!(parse(&b[0])["type"], ty);
    }
}

#[test]
fn every_error_code_is_documented() {
    for code in tutti_protocol::ErrorCode::ALL {
        assert!(
            DOC.contains(&format!("| `{}` |", code.as_str())),
            "{} is not in the error table",
            code.as_str()
        );
    }
}

/// How a documented frame is compared with a real one. Paths are keys (and array indexes)
/// joined by dots; `*` matches any one key or index.
struct Rules {
    /// Values that differ from run to run: compared by JSON type only.
    varies: &'static [&'static str],
    /// Collections the example shows part of: maps keyed by data (parameter names, error
    /// codes), whose documented entries must be there; arrays shortened in the example,
    /// whose documented elements are compared with the first ones sent.
    partial: &'static [&'static str],
}

const WELCOME: Rules = Rules {
    varies: &["participant", "resume", "show.code", "show.join_url"],
    partial: &[],
};
const ACK: Rules = Rules {
    varies: &["tick", "at"],
    partial: &[],
};
const ERROR: Rules = Rules {
    varies: &["message"],
    partial: &[],
};
const EXACT: Rules = Rules {
    varies: &[],
    partial: &[],
};
const STATE: Rules = Rules {
    varies: &[
        "tick",
        "rate",
        "participants",
        "params.intensity.value",
        "params.*.participants",
        "params.*.agreement",
        "params.*.raw",
        "params.*.participation",
        "params.*.dispersion",
        "params.*.histogram.*",
        "params.*.choices.*",
        "params.*.overrides.*.expires_in",
    ],
    partial: &["params"],
};
const STATS: Rules = Rules {
    varies: &[
        "connections.*",
        "inputs.*",
        "errors.*",
        "tick.last_ms",
        "tick.max_ms",
        "state_rate",
        "degraded",
        "states.*",
        "latency_ms.*",
        "osc.*",
        "cues.*",
        "sync.reporting",
        "sync.within_ms.*",
        "sound.output",
        "sound.recording",
        "sound.blocks",
        "sound.non_finite_samples",
        "sound.swaps",
        "store.*",
    ],
    partial: &["errors"],
};
const MONITOR: Rules = Rules {
    varies: &[
        "seq",
        "time_s",
        "peak.*",
        "rms.*",
        "peak_dbfs.*",
        "rms_dbfs.*",
        "bands_dbfs.*",
    ],
    partial: &["bands_dbfs", "bands_hz"],
};

fn matches(pattern: &str, path: &[String]) -> bool {
    let segs: Vec<&str> = pattern.split('.').collect();
    segs.len() == path.len() && segs.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

fn compare(
    doc: &Value,
    real: &Value,
    rules: &Rules,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    let here = if path.is_empty() {
        "(the frame)".to_string()
    } else {
        path.join(".")
    };
    if json_type(doc) != json_type(real) {
        out.push(format!(
            "{here}: the doc has {} ({doc}), the server sent {} ({real})",
            json_type(doc),
            json_type(real)
        ));
        return;
    }
    let partial = rules.partial.iter().any(|p| matches(p, path));
    match (doc, real) {
        (Value::Object(d), Value::Object(r)) => {
            for (k, dv) in d {
                path.push(k.clone());
                match r.get(k) {
                    Some(rv) => compare(dv, rv, rules, path, out),
                    None => out.push(format!("{}: documented, not sent", path.join("."))),
                }
                path.pop();
            }
            if !partial {
                for (k, rv) in r {
                    if !d.contains_key(k) {
                        path.push(k.clone());
                        out.push(format!("{}: sent ({rv}), not documented", path.join(".")));
                        path.pop();
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            if d.len() > r.len() || (d.len() < r.len() && !partial) {
                out.push(format!(
                    "{here}: the doc has {} elements, the server sent {} ({real})",
                    d.len(),
                    r.len()
                ));
            }
            for (i, (dv, rv)) in d.iter().zip(r).enumerate() {
                path.push(i.to_string());
                compare(dv, rv, rules, path, out);
                path.pop();
            }
        }
        _ => {
            let varies = rules.varies.iter().any(|p| matches(p, path));
            if !varies && !same_scalar(doc, real) {
                out.push(format!(
                    "{here}: the doc says {doc}, the server sent {real}"
                ));
            }
        }
    }
}

/// Panics with every difference between a documented frame and a real one.
fn check(what: &str, doc: &Value, real: &Value, rules: &Rules) {
    let mut diffs = Vec::new();
    compare(doc, real, rules, &mut Vec::new(), &mut diffs);
    assert!(
        diffs.is_empty(),
        "docs/protocol.md's {what} differs from the server's:\n  {}\nthe server sent: {real}",
        diffs.join("\n  ")
    );
}

/// `frame` with every string equal to a placeholder of the document replaced by the real
/// value (the show code, the resume token).
fn bind(frame: &Value, subs: &[(&str, &str)]) -> Value {
    match frame {
        Value::String(s) => subs
            .iter()
            .find(|(from, _)| from == s)
            .map_or_else(|| frame.clone(), |(_, to)| json!(to)),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), bind(v, subs))).collect())
        }
        other => other.clone(),
    }
}

/// The documented ack with the `seq` of the frame it answers.
fn ack_for(doc_ack: &Value, frame: &Value) -> Value {
    let mut a = doc_ack.clone();
    a["seq"] = frame["seq"].clone();
    a
}

/// Sends one of the document's client examples and checks the ack against the documented
/// ack.
async fn acked(c: &mut Client, frame: &Value, doc_ack: &Value) {
    c.send(frame.clone()).await;
    let ack = c.recv_type("ack").await;
    check(
        &format!("ack of {frame}"),
        &ack_for(doc_ack, frame),
        &ack,
        &ACK,
    );
}

/// Waits for the state that the documented one shows (the inputs and overrides sent
/// reflected); at the wait's end, the differences of the last one.
async fn state_like(c: &mut Client, what: &str, doc: &Value) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = c.recv_type("state").await;
        let mut diffs = Vec::new();
        compare(doc, &s, &STATE, &mut Vec::new(), &mut diffs);
        if diffs.is_empty() {
            return s;
        }
        if tokio::time::Instant::now() > deadline {
            check(what, doc, &s, &STATE);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_examples_match_a_real_server() {
    let welcome_doc = server_example("welcome");
    let ack_doc = server_example("ack");
    let joins = client_examples("`join`");
    let is = |f: &Value, key: &str| f.get(key).is_some();
    let plain = joins
        .iter()
        .find(|f| !is(f, "resume") && !is(f, "token") && !is(f, "role"))
        .expect("an anonymous join example");
    let resume = joins.iter().find(|f| is(f, "resume")).expect("a resume");
    let performer = joins
        .iter()
        .find(|f| f["role"] == "performer")
        .expect("a performer join");
    // The guest's join (a device token) needs a guest made through the management API:
    // api_guest.rs drives it; here it only parses.

    // The server's performer token is the document's, so its performer join works as is.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.performer_token = performer["token"].as_str().unwrap().to_string();
    let srv = start_with(cfg).await;
    let code = srv.show_code.clone();
    let doc_code = welcome_doc["show"]["code"].as_str().unwrap();
    let doc_resume = welcome_doc["resume"].as_str().unwrap();

    // A performer joins: the welcome is the documented one, with no slot and no token.
    let mut perf = Client::connect(srv.addr).await;
    perf.send(bind(performer, &[(doc_code, &code)])).await;
    let w = perf.recv_type("welcome").await;
    let mut want = welcome_doc.clone();
    want["role"] = json!("performer");
    check("welcome (performer)", &want, &w, &WELCOME);
    assert_eq!((&w["participant"], &w["resume"]), (&json!(0), &json!("")));

    // An audience member joins the default show with the anonymous example.
    assert!(
        !is(plain, "show"),
        "the anonymous example joins the default show"
    );
    let mut phone = Client::connect(srv.addr).await;
    phone.send(plain.clone()).await;
    let w = phone.recv_type("welcome").await;
    check("welcome", &welcome_doc, &w, &WELCOME);
    assert_eq!(w["show"]["code"], json!(code));
    let url = w["show"]["join_url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/?show={code}")), "{url}");
    let slot = w["participant"].clone();
    let token = w["resume"].as_str().unwrap().to_string();

    // Inputs: acked as documented.
    let input = &client_examples("`input`")[0];
    assert_eq!(
        input["seq"], ack_doc["seq"],
        "the ack example answers the input"
    );
    acked(&mut phone, input, &ack_doc).await;
    let vote = &client_examples("`vote`")[0];
    acked(&mut phone, vote, &ack_doc).await;

    // Errors: each example after the frame that gets it (a join on a new connection).
    let err = section("`error`");
    let mut pairs = 0;
    for pair in err.windows(2) {
        let (info, sent) = (&pair[0].0, pair[0].1.trim());
        if info != "json client" && info != "text client-refused" {
            continue;
        }
        assert_eq!(pair[1].0, "json server", "an error example after {sent}");
        let want = parse(&pair[1].1);
        let got = if sent.contains("\"join\"") {
            let mut c = Client::connect(srv.addr).await;
            c.send_text(sent).await;
            c.error().await
        } else {
            phone.send_text(sent).await;
            phone.error().await
        };
        check(&format!("error answering {sent}"), &want, &got, &ERROR);
        pairs += 1;
    }
    assert!(pairs >= 4, "{pairs} error examples");

    // Overrides as documented; the detailed and compact states show them.
    for f in client_examples("`override` (performer)") {
        if is(&f, "seq") {
            acked(&mut perf, &f, &ack_doc).await;
        } else {
            perf.send(f).await;
        }
    }
    let states: Vec<Value> = blocks("json server-state")
        .iter()
        .map(|t| parse(t))
        .collect();
    let detailed_doc = states
        .iter()
        .find(|s| s["params"]["intensity"].get("overrides").is_some())
        .expect("a detailed state example");
    let compact_doc = states
        .iter()
        .find(|s| s["params"]["intensity"].get("overrides").is_none())
        .expect("a compact state example");
    state_like(&mut perf, "detailed state", detailed_doc).await;
    state_like(&mut phone, "compact state", compact_doc).await;

    // Stats, once the errors above are counted.
    let stats_doc = server_example("stats");
    let mut stats = perf.recv_type("stats").await;
    for _ in 0..5 {
        let counted = stats_doc["errors"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| stats["errors"].get(k).is_some());
        if counted {
            break;
        }
        stats = perf.recv_type("stats").await;
    }
    check("stats", &stats_doc, &stats, &STATS);

    let monitor = perf.recv_type("monitor").await;
    check("monitor", &server_example("monitor"), &monitor, &MONITOR);

    let ping = &client_examples("`ping`")[0];
    perf.send(ping.clone()).await;
    let pong = perf.recv_type("pong").await;
    check("pong", &server_example("pong"), &pong, &EXACT);

    // Clock sync: the documented exchange, answered on the show clock; the report shows
    // in the performers' stats.
    let sync_doc = server_example("sync");
    let [sync, report] =
        &client_examples("`sync` and `sync_report` (clock sync, after `join`)")[..]
    else {
        panic!("a sync and a sync_report example")
    };
    perf.send(sync.clone()).await;
    let reply = perf.recv_type("sync").await;
    check(
        "sync",
        &sync_doc,
        &reply,
        &Rules {
            varies: &["t1", "t2"],
            partial: &[],
        },
    );
    let (t1, t2) = (reply["t1"].as_f64().unwrap(), reply["t2"].as_f64().unwrap());
    assert!(0.0 < t1 && t1 <= t2, "{reply}");
    perf.send(report.clone()).await;
    let mut stats = perf.recv_type("stats").await;
    for _ in 0..5 {
        if stats["sync"]["reporting"] == 1 {
            break;
        }
        stats = perf.recv_type("stats").await;
    }
    let class = stats["sync"]["within_ms"]["1"].clone();
    assert_eq!(
        (&stats["sync"]["reporting"], &class),
        (&json!(1), &json!(1)),
        "{stats}"
    );

    // A cue: acked as documented; every phone gets the documented frame, timed on the
    // show clock `lead_ms` ahead.
    let cues = client_examples("`cue` (performer)");
    let cue = cues
        .iter()
        .find(|c| is(c, "seq"))
        .expect("a cue with a seq");
    acked(&mut perf, cue, &ack_doc).await;
    let got = phone.recv_type("cue").await;
    check(
        "cue",
        &server_example("cue"),
        &got,
        &Rules {
            varies: &["id", "at"],
            partial: &[],
        },
    );
    assert_eq!(got["id"], 1, "{got}");

    // The listen stream answers the documented performer join with its format.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/live/v1/audio", srv.addr))
        .await
        .unwrap();
    let join = bind(performer, &[(doc_code, &code)]);
    ws.send(Message::text(join.to_string())).await.unwrap();
    let format = loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => break parse(t.as_str()),
            Ok(Some(Ok(_))) => {}
            other => panic!("no format frame: {other:?}"),
        }
    };
    check(
        "audio_format",
        &server_example("audio_format"),
        &format,
        &EXACT,
    );
    drop(ws);

    // The phone goes away: its slot is held, and still counted in `participants`, until it
    // resumes with the documented resume join.
    drop(phone);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let s = perf.state_until(|_| true).await;
    let s = perf
        .state_until(|x| x["tick"].as_u64() > s["tick"].as_u64())
        .await;
    assert_eq!(s["participants"], 1, "a held slot counts: {s}");
    let mut phone = Client::connect(srv.addr).await;
    phone
        .send(bind(resume, &[(doc_code, &code), (doc_resume, &token)]))
        .await;
    let w = phone.recv_type("welcome").await;
    check("welcome (resumed)", &welcome_doc, &w, &WELCOME);
    assert_eq!(w["participant"], slot, "the same slot back");

    // The remaining performer commands, acked as documented (pausing last: a paused show
    // does not tick, so the others would show only once it resumes).
    for heading in ["`release` (performer)", "`reset` and `bypass` (performer)"] {
        for f in client_examples(heading) {
            acked(&mut perf, &f, &ack_doc).await;
        }
    }
    let s = perf.state_until(|s| s["bypass"] == true).await;
    assert!(s["params"]["pitch"]["overrides"] == json!([]), "{s}");
    for f in client_examples("`session` (performer)") {
        acked(&mut perf, &f, &ack_doc).await;
    }
    perf.state_until(|s| s["status"] == "paused").await;
    srv.shutdown().await.unwrap();
}
