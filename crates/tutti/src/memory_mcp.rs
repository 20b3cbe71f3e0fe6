//! `tutti memory mcp`: the memory as a Model Context Protocol server over stdio, for coding
//! agents: JSON-RPC 2.0, one message per line (MCP's stdio transport). Methods:
//! `initialize`, `notifications/initialized`, `ping`, `tools/list`, `tools/call`. Tools:
//!
//! * `record`: an episode, whole (the same shape as `POST /api/v1/memory/episodes`);
//! * `search`: `mode` `moments` (a vector), `episodes` (like an episode id, or a description)
//!   or `text` (words);
//! * `patterns`: of a kind and piece.
//!
//! A tool that fails on its arguments answers a result with `isError: true` and a JSON text
//! `{"code", "message"}` with the memory's stable code; protocol errors are JSON-RPC errors
//! (-32700 parse error, -32600 invalid request, -32601 unknown method, -32602 unknown tool or
//! arguments that are not an object).
//!
//! Must never: write anything but JSON-RPC messages to stdout (logs go to stderr), or answer
//! a notification.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tutti_memory::{Access, EpisodeQuery, Memory, MemoryError, MomentQuery, Record};

use crate::memory_cmd::Failure;

/// Protocol versions this server speaks, newest first.
const VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];
/// Longest accepted message, bytes.
const MAX_LINE: usize = 4 << 20;

fn tools() -> Value {
    json!([
        {
            "name": "record",
            "description": "Record an episode of any kind (a show, a rehearsal, an agent's task): its context, steps, moments (vectors with named dimensions) and outcome, stored atomically. Returns its key and id.",
            "inputSchema": {
                "type": "object",
                "required": ["context"],
                "properties": {
                    "key": {"type": "string", "description": "Unique key; recording it again finds the episode"},
                    "context": {"type": "object", "required": ["kind"], "properties": {
                        "kind": {"type": "string"}, "piece": {"type": "string"}, "venue": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}}, "text": {"type": "string"}}},
                    "dims": {"type": "array", "items": {"type": "string"}},
                    "steps": {"type": "array", "items": {"type": "object", "required": ["at_ms", "kind"]}},
                    "moments": {"type": "array", "items": {"type": "object", "required": ["at_ms", "vector"]}},
                    "outcome": {"type": "object", "properties": {
                        "completion": {"enum": ["completed", "abandoned", "interrupted"]},
                        "rating": {"type": "number", "minimum": 0, "maximum": 1}, "notes": {"type": "string"}}}
                }
            }
        },
        {
            "name": "search",
            "description": "Search the memory. mode=moments: the moments most like `vector` (kind, piece, optional section, k, diversity). mode=episodes: episodes like `episode_id` (or a description: kind, piece, text, tags, steps). mode=text: episodes whose text or notes have `text`. Every hit says why it matched.",
            "inputSchema": {
                "type": "object",
                "required": ["mode"],
                "properties": {
                    "mode": {"enum": ["moments", "episodes", "text"]},
                    "kind": {"type": "string"}, "piece": {"type": "string"},
                    "vector": {"type": "array", "items": {"type": "number"}},
                    "dims": {"type": "array", "items": {"type": "string"}},
                    "section": {"type": "string"},
                    "episode_id": {"type": "integer"},
                    "text": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "steps": {"type": "array", "items": {"type": "string"}},
                    "k": {"type": "integer", "minimum": 1, "maximum": 100},
                    "diversity": {"type": "number", "minimum": 0, "maximum": 1}
                }
            }
        },
        {
            "name": "patterns",
            "description": "The patterns of a kind and piece: frequent transitions, overrides and when, step transitions, typical trajectories, outliers, correlations with reward.",
            "inputSchema": {
                "type": "object",
                "required": ["kind", "piece"],
                "properties": {"kind": {"type": "string"}, "piece": {"type": "string"}}
            }
        }
    ])
}

fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn ok(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn tool_error(code: &str, message: &str) -> Value {
    json!({
        "content": [{"type": "text", "text": json!({"code": code, "message": message}).to_string()}],
        "isError": true
    })
}

fn tool_ok(v: Value) -> Value {
    json!({"content": [{"type": "text", "text": v.to_string()}], "structuredContent": v, "isError": false})
}

fn mem_err(e: &MemoryError) -> Value {
    tool_error(e.code(), &e.to_string())
}

/// Parses `args` into `T`, or a tool error naming what is wrong.
fn parse<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, Value> {
    serde_json::from_value(args).map_err(|e| tool_error("validation_failed", &e.to_string()))
}

async fn call(m: &Memory, name: &str, mut args: Value) -> Result<Value, Value> {
    match name {
        "record" => {
            let r: Record = parse(args)?;
            let ack = m.record(r).await.map_err(|e| mem_err(&e))?;
            m.flush(Duration::from_secs(10)).await;
            Ok(tool_ok(json!(ack)))
        }
        "search" => {
            let mode = args
                .as_object_mut()
                .and_then(|o| o.remove("mode"))
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    tool_error("validation_failed", "mode: moments, episodes or text")
                })?;
            match mode.as_str() {
                "moments" => {
                    let q: MomentQuery = parse(args)?;
                    let r = m
                        .search_moments(&q, &Access::All)
                        .map_err(|e| mem_err(&e))?;
                    Ok(tool_ok(json!(r)))
                }
                "episodes" => {
                    let q: EpisodeQuery = parse(args)?;
                    let r = m
                        .similar_episodes(&q, &Access::All)
                        .map_err(|e| mem_err(&e))?;
                    Ok(tool_ok(json!({"items": r})))
                }
                "text" => {
                    #[derive(serde::Deserialize)]
                    #[serde(deny_unknown_fields)]
                    struct T {
                        text: String,
                        kind: Option<String>,
                        piece: Option<String>,
                        k: Option<usize>,
                    }
                    let t: T = parse(args)?;
                    let r = m
                        .search_text(&t.text, t.kind, t.piece, t.k.unwrap_or(10), &Access::All)
                        .await
                        .map_err(|e| mem_err(&e))?;
                    Ok(tool_ok(json!({"items": r})))
                }
                other => Err(tool_error(
                    "validation_failed",
                    &format!("mode {other:?}: use moments, episodes or text"),
                )),
            }
        }
        "patterns" => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct P {
                kind: String,
                piece: String,
            }
            let p: P = parse(args)?;
            let r = m
                .patterns(&p.kind, Some(&p.piece))
                .map_err(|e| mem_err(&e))?;
            Ok(tool_ok(json!(r)))
        }
        other => Err(tool_error(
            "validation_failed",
            &format!("unknown tool {other:?}"),
        )),
    }
}

/// Answers one message (`None` for notifications).
async fn handle(m: &Memory, line: &str) -> Option<Value> {
    let msg: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Some(rpc_error(Value::Null, -32700, &format!("parse error: {e}"))),
    };
    let id = msg.get("id").cloned();
    let method = msg.get("method").and_then(Value::as_str);
    if msg.get("jsonrpc") != Some(&json!("2.0")) || method.is_none() {
        return id.or(Some(Value::Null)).map(|id| {
            rpc_error(
                id,
                -32600,
                "invalid request: jsonrpc must be \"2.0\" with a method",
            )
        });
    }
    let method = method.unwrap_or("");
    // A notification (no id) gets no answer.
    let id = id?;
    let params = msg.get("params").cloned().unwrap_or(json!({}));
    Some(match method {
        "initialize" => {
            let asked = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(VERSIONS[0]);
            let version = VERSIONS
                .iter()
                .find(|v| **v == asked)
                .unwrap_or(&VERSIONS[0]);
            ok(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "tutti-memory", "version": env!("CARGO_PKG_VERSION")},
                    "instructions": "Tutti's performance memory: record episodes, search moments and episodes, read patterns."
                }),
            )
        }
        "ping" => ok(id, json!({})),
        "tools/list" => ok(id, json!({"tools": tools()})),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            if !["record", "search", "patterns"].contains(&name) {
                return Some(rpc_error(id, -32602, &format!("unknown tool {name:?}")));
            }
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            if !args.is_object() {
                return Some(rpc_error(id, -32602, "arguments must be an object"));
            }
            match call(m, name, args).await {
                Ok(r) | Err(r) => ok(id, r),
            }
        }
        other => rpc_error(id, -32601, &format!("method not found: {other}")),
    })
}

/// Serves until standard input ends.
pub async fn serve(m: &Memory) -> Result<(), Failure> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            Err(e) => return Err(Failure::Io(format!("stdin: {e}"))),
        };
        if line.trim().is_empty() {
            continue;
        }
        let reply = if line.len() > MAX_LINE {
            Some(rpc_error(Value::Null, -32600, "message too large"))
        } else {
            handle(m, &line).await
        };
        if let Some(r) = reply {
            let mut text = r.to_string();
            text.push('\n');
            out.write_all(text.as_bytes())
                .await
                .map_err(|e| Failure::Io(format!("stdout: {e}")))?;
            out.flush()
                .await
                .map_err(|e| Failure::Io(format!("stdout: {e}")))?;
        }
    }
}
