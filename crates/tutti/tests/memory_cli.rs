//! `tutti memory` from outside: import, search (moments, episodes, text), show, patterns,
//! check and export over a data directory, with stable codes for bad input; `tutti memory
//! mcp` driven by an MCP client exchange over the child's stdio (initialize, tools/list,
//! tools/call, errors); and `kill -9` of a real server mid-show: the episode is there after
//! the crash, and the server's restart completes it as "interrupted".

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tutti_memory::synth::{self, ShowShape};

fn tutti() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tutti"));
    c.env_remove("RUST_LOG").env("TUTTI_LOG", "warn");
    c
}

fn memory(data: &Path, args: &[&str]) -> std::process::Output {
    tutti()
        .arg("memory")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("tutti runs")
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The JSON a successful command printed, or None (while a server is still writing).
fn try_json(out: &std::process::Output) -> Option<Value> {
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Checks `f` every 100 ms until it holds; panics naming `what` after 30 s (a guard against
/// a hang, not a timing requirement).
fn poll(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn import_search_show_patterns_check_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shape = ShowShape {
        moments: 60,
        ..ShowShape::default()
    };
    let mut lines = Vec::new();
    for i in 0..12 {
        lines.push(serde_json::to_string(&synth::show(i, 1, &shape)).unwrap());
    }
    for i in 0..20 {
        lines.push(serde_json::to_string(&synth::small(i, 2)).unwrap());
    }
    let mut bad = synth::small(99, 2);
    bad.dims = Some(vec!["a".into()]);
    bad.moments = vec![tutti_memory::Moment {
        at_ms: 1,
        section: None,
        vector: vec![1.0, 2.0],
    }];
    lines.push(serde_json::to_string(&bad).unwrap());
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let out = memory(&data, &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 32 episodes"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 33") && err.contains("dimension_mismatch"),
        "{err}"
    );

    let hits = json_of(&memory(
        &data,
        &[
            "search",
            "--text",
            "synthetic show",
            "--kind",
            "show",
            "--json",
        ],
    ));
    assert_eq!(hits.as_array().unwrap().len(), 10);
    let id = hits[0]["episode_id"].as_i64().unwrap();
    let r = synth::show(3, 1, &shape);
    let v: Vec<String> = r.moments[10].vector.iter().map(|x| x.to_string()).collect();
    let v = v.join(",");
    let m = json_of(&memory(
        &data,
        &[
            "search",
            "--vector",
            &v,
            "--kind",
            "show",
            "--piece",
            "synthetic",
            "--k",
            "3",
            "--json",
        ],
    ));
    assert_eq!(m["hits"][0]["episode_key"], "synth-show-1-3");
    assert_eq!(m["hits"][0]["seq"], 10);
    let table = memory(
        &data,
        &[
            "search",
            "--vector",
            &v,
            "--kind",
            "show",
            "--piece",
            "synthetic",
        ],
    );
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("synth-show-1-3"));
    let like = json_of(&memory(
        &data,
        &["search", "--like", &id.to_string(), "--k", "4", "--json"],
    ));
    assert_eq!(like.as_array().unwrap().len(), 4);
    let shown = json_of(&memory(&data, &["show", &id.to_string(), "--json"]));
    assert_eq!(shown["status"], "completed");
    assert!(memory(&data, &["show", &id.to_string()]).status.success());
    let scopes = json_of(&memory(&data, &["patterns", "--json"]));
    assert!(scopes
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["piece"] == "synthetic" && s["episodes"] == 12));
    let p = json_of(&memory(
        &data,
        &["patterns", "--piece", "synthetic", "--json"],
    ));
    assert_eq!(p["episodes"], 12);
    assert!(memory(&data, &["patterns", "--piece", "synthetic"])
        .status
        .success());
    let c = json_of(&memory(&data, &["check", "--json"]));
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(c["stored_episodes"], 32);

    // Bad input: stable codes, exit 65.
    let out = memory(
        &data,
        &[
            "search",
            "--vector",
            "0.1",
            "--kind",
            "show",
            "--piece",
            "synthetic",
        ],
    );
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dimension_mismatch"));
    let out = memory(&data, &["search", "--text", "x", "--k", "0"]);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_limit"));
    let out = memory(
        &data,
        &[
            "search", "--vector", "0.5", "--kind", "show", "--piece", "nope",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_piece"));
    assert_eq!(memory(&data, &["search"]).status.code(), Some(2));

    // Export, and import into a fresh directory: the same episodes.
    let exported = dir.path().join("out.jsonl");
    let out = memory(&data, &["export", "--out", exported.to_str().unwrap()]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(text.lines().count(), 32);
    let data2 = dir.path().join("data2");
    let out = memory(&data2, &["import", exported.to_str().unwrap(), "--json"]);
    let j = json_of(&out);
    assert_eq!(j["imported"], 32);
    let m2 = json_of(&memory(
        &data2,
        &[
            "search",
            "--vector",
            &v,
            "--kind",
            "show",
            "--piece",
            "synthetic",
            "--k",
            "1",
            "--json",
        ],
    ));
    assert_eq!(m2["hits"][0]["episode_key"], "synth-show-1-3");
}

struct Mcp {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Mcp {
    fn send(&mut self, v: Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn send_raw(&mut self, s: &str) {
        writeln!(self.stdin, "{s}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {line:?}"))
    }

    fn call(&mut self, id: i64, name: &str, args: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}}));
        let r = self.recv();
        assert_eq!(r["id"], id, "{r}");
        r
    }
}

fn tool_json(r: &Value) -> Value {
    let text = r["result"]["content"][0]["text"]
        .as_str()
        .expect("text content");
    serde_json::from_str(text).unwrap()
}

#[test]
fn an_mcp_client_records_searches_and_reads_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tutti()
        .args(["memory", "mcp", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut c = Mcp {
        child,
        stdin,
        stdout,
    };

    c.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test-client", "version": "1"}}}),
    );
    let init = c.recv();
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "tutti-memory");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let list = c.recv();
    assert_eq!(list["id"], 2, "a notification gets no answer: {list}");
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["record", "search", "patterns"]);
    assert!(list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["inputSchema"]["type"] == "object"));

    for i in 0..3 {
        let r = c.call(10 + i, "record", json!({
            "key": format!("task-{i}"),
            "context": {"kind": "task", "piece": "parser", "text": format!("fix the parser timeout {i}")},
            "dims": ["effort", "confidence"],
            "steps": [{"at_ms": 1000, "kind": "edit"}, {"at_ms": 2000, "kind": "test"}],
            "moments": [{"at_ms": 1000, "vector": [0.1 * i as f64, 0.5]}, {"at_ms": 2000, "vector": [0.2, 0.9]}],
            "outcome": {"rating": 0.8}
        }));
        assert_eq!(r["result"]["isError"], false, "{r}");
        assert_eq!(tool_json(&r)["key"], format!("task-{i}"));
    }
    let r = c.call(
        20,
        "search",
        json!({"mode": "moments", "kind": "task", "piece": "parser", "vector": [0.2, 0.5], "k": 2}),
    );
    let hits = tool_json(&r);
    assert_eq!(hits["hits"].as_array().unwrap().len(), 2, "{hits}");
    assert_eq!(hits["hits"][0]["episode_key"], "task-2");
    assert!(hits["hits"][0]["why"]["path"]
        .as_str()
        .unwrap()
        .starts_with("exact"));
    let r = c.call(
        21,
        "search",
        json!({"mode": "text", "text": "parser timeout"}),
    );
    assert_eq!(tool_json(&r)["items"].as_array().unwrap().len(), 3);
    let r = c.call(22, "search", json!({"mode": "episodes", "kind": "task", "piece": "parser", "text": "parser", "steps": ["edit", "test"], "k": 2}));
    assert_eq!(tool_json(&r)["items"].as_array().unwrap().len(), 2);
    let r = c.call(23, "patterns", json!({"kind": "task", "piece": "parser"}));
    assert_eq!(tool_json(&r)["episodes"], 3);

    // Bad arguments: a tool error with the memory's stable code; nothing stored half-way.
    for (id, args, code) in [
        (
            30,
            json!({"mode": "moments", "kind": "task", "piece": "parser", "vector": [0.2]}),
            "dimension_mismatch",
        ),
        (
            31,
            json!({"mode": "moments", "kind": "task", "piece": "parser", "vector": [0.2, 0.5], "k": 0}),
            "invalid_limit",
        ),
        (
            32,
            json!({"mode": "moments", "kind": "task", "piece": "parser", "vector": [0.2, 0.5], "k": 1_000_000}),
            "invalid_limit",
        ),
        (
            33,
            json!({"mode": "moments", "kind": "task", "piece": "nope", "vector": [0.2]}),
            "unknown_piece",
        ),
        (34, json!({"mode": "sideways"}), "validation_failed"),
        (
            35,
            json!({"mode": "text", "text": "x", "bogus": 1}),
            "validation_failed",
        ),
    ] {
        let r = c.call(id, "search", args);
        assert_eq!(r["result"]["isError"], true, "{r}");
        assert_eq!(tool_json(&r)["code"], code, "{r}");
    }
    let r = c.call(36, "record", json!({"context": {"kind": "task", "piece": "parser"}, "dims": ["a"], "moments": [{"at_ms": 1, "vector": [1, 2]}]}));
    assert_eq!(tool_json(&r)["code"], "dimension_mismatch");
    let r = c.call(37, "record", json!({"context": {"kind": "Not A Kind"}}));
    assert_eq!(tool_json(&r)["code"], "validation_failed");
    let r = c.call(38, "patterns", json!({"kind": "task", "piece": "parser"}));
    assert_eq!(
        tool_json(&r)["episodes"],
        3,
        "the refused records stored nothing"
    );

    // Protocol errors.
    c.send(json!({"jsonrpc": "2.0", "id": 40, "method": "tools/call", "params": {"name": "erase", "arguments": {}}}));
    assert_eq!(c.recv()["error"]["code"], -32602);
    c.send(json!({"jsonrpc": "2.0", "id": 41, "method": "resources/list"}));
    assert_eq!(c.recv()["error"]["code"], -32601);
    c.send_raw("{not json");
    assert_eq!(c.recv()["error"]["code"], -32700);
    c.send(json!({"jsonrpc": "2.0", "id": 42, "method": "ping"}));
    assert_eq!(c.recv()["result"], json!({}));

    drop(c.stdin);
    let status = c.child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn kill_nine_mid_show_leaves_an_interrupted_episode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut child = tutti()
        .args([
            "serve",
            "--listen",
            &addr,
            "--sound",
            "none",
            "--performer-token",
            "t0ken-mem",
            "--data-dir",
        ])
        .arg(&data)
        .env("TUTTI_MEMORY__MOMENT_EVERY_S", "1")
        .env("TUTTI_OSC__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("Tutti is running"), "{first}");
    let code = first.rsplit(' ').next().unwrap().to_owned();
    std::thread::spawn(move || for _ in lines {});
    // Show time: snapshots every second, a moment from each, flushed often; until the
    // open episode holds two moments.
    poll("two moments of the open episode", || {
        let Some(hits) = try_json(&memory(&data, &["search", "--text", &code, "--json"])) else {
            return false;
        };
        let Some(id) = hits[0]["episode_id"].as_i64() else {
            return false;
        };
        try_json(&memory(&data, &["show", &id.to_string(), "--json"]))
            .is_some_and(|ep| ep["moment_count"].as_i64().is_some_and(|n| n >= 2))
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The episode is still open: the CLI leaves it to the server.
    let hits = json_of(&memory(&data, &["search", "--text", &code, "--json"]));
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    let id = hits[0]["episode_id"].as_i64().unwrap();
    let key = hits[0]["key"].as_str().unwrap().to_owned();
    assert_eq!(
        json_of(&memory(&data, &["show", &id.to_string(), "--json"]))["status"],
        "open"
    );

    // The server starts again: the episode completes as interrupted; the show resumes in a
    // new episode.
    let mut child = tutti()
        .args([
            "serve",
            "--listen",
            &addr,
            "--sound",
            "none",
            "--performer-token",
            "t0ken-mem",
            "--data-dir",
        ])
        .arg(&data)
        .env("TUTTI_MEMORY__MOMENT_EVERY_S", "1")
        .env("TUTTI_OSC__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let again = lines.next().unwrap().unwrap();
    assert!(again.ends_with(&code), "the show resumes: {again}");
    std::thread::spawn(move || for _ in lines {});
    poll(
        "the interrupted episode indexed and the resumed show's one open",
        || {
            try_json(&memory(&data, &["check", "--json"]))
                .is_some_and(|c| c["indexed_episodes"] == 1 && c["open_episodes"] == 1)
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let ep = json_of(&memory(&data, &["show", &id.to_string(), "--json"]));
    assert_eq!(ep["key"], key);
    assert_eq!(ep["status"], "interrupted", "{ep}");
    assert!(ep["moment_count"].as_i64().unwrap() >= 1, "{ep}");
    assert_eq!(ep["context"]["kind"], "show");
    let hits = json_of(&memory(&data, &["search", "--text", &code, "--json"]));
    assert_eq!(
        hits.as_array().unwrap().len(),
        2,
        "the resumed show is a second episode: {hits}"
    );
    let c = json_of(&memory(&data, &["check", "--json"]));
    assert_eq!(c["indexed_episodes"], 1, "{c}");
    assert_eq!(c["open_episodes"], 1, "{c}");
}
