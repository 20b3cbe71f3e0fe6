//! What a command prints: the API's JSON unchanged with `--json`, else a table of a list's
//! items (with `more: --cursor X` on stderr after a full page) or the fields of one object,
//! and the column sets of each resource.
//!
//! Must never: print a token or a password (responses that carry them are shown without).

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::error::ClientError;
use crate::table;

/// Columns of a table: (header, keys to try in order).
pub type Columns = &'static [(&'static str, &'static [&'static str])];

/// Pieces.
pub const PIECE_COLUMNS: Columns = &[
    ("ID", &["id"]),
    ("SLUG", &["slug"]),
    ("TITLE", &["title"]),
    ("STATUS", &["status"]),
    ("ENSEMBLE", &["ensemble_id"]),
];
/// Spec versions.
pub const SPEC_COLUMNS: Columns = &[
    ("VERSION", &["version"]),
    ("STATUS", &["status"]),
    ("CREATED", &["created_at_ms", "created_at"]),
    ("BY", &["created_by"]),
    ("NOTE", &["note"]),
];
/// Shows: `SPEC` is the per-piece `spec_version` when the server sends it, else the store
/// id `spec_version_id` (older servers).
pub const SHOW_COLUMNS: Columns = &[
    ("ID", &["id"]),
    ("CODE", &["code"]),
    ("KIND", &["kind"]),
    ("STATUS", &["status"]),
    ("PIECE", &["piece_id"]),
    ("SPEC", &["spec_version", "spec_version_id"]),
    ("CREATED", &["created_at_ms", "created_at"]),
];
/// Ensembles.
pub const ENSEMBLE_COLUMNS: Columns = &[
    ("ID", &["id"]),
    ("SLUG", &["slug"]),
    ("NAME", &["name"]),
    ("CREATED", &["created_at_ms"]),
];
/// Members of an ensemble.
pub const MEMBER_COLUMNS: Columns = &[
    ("USER", &["user_id"]),
    ("USERNAME", &["username"]),
    ("NAME", &["display_name"]),
    ("ROLE", &["role"]),
    ("SINCE", &["created_at_ms"]),
];
/// Users.
pub const USER_COLUMNS: Columns = &[
    ("ID", &["id"]),
    ("USERNAME", &["username"]),
    ("NAME", &["display_name"]),
    ("ROLE", &["role"]),
    ("ACTIVE", &["active"]),
    ("CREATED", &["created_at_ms"]),
];
/// Webhooks.
pub const WEBHOOK_COLUMNS: Columns = &[
    ("ID", &["id"]),
    ("URL", &["url"]),
    ("KINDS", &["kinds"]),
    ("ACTIVE", &["active"]),
    ("FAILURES", &["consecutive_failures"]),
    ("CREATED", &["created_at_ms"]),
];

/// Writes `s` to stdout.
pub fn print(s: &str) -> Result<(), ClientError> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| ClientError::Io(format!("stdout: {e}")))
}

/// Pretty JSON on stdout.
pub fn print_json(v: &Value) -> Result<(), ClientError> {
    print(&(serde_json::to_string_pretty(v).unwrap_or_default() + "\n"))
}

/// `text` to a file (`None` or `-`: stdout).
pub fn write_out(out: Option<&Path>, text: &str) -> Result<(), ClientError> {
    match out {
        None => print(text),
        Some(p) if p.as_os_str() == "-" => print(text),
        Some(p) => {
            std::fs::write(p, text)
                .map_err(|e| ClientError::Io(format!("{}: {e}", p.display())))?;
            eprintln!("wrote {}", p.display());
            Ok(())
        }
    }
}

/// A list answer (`{items, next_cursor?}`): JSON, or a table and the cursor on stderr.
pub fn list(v: &Value, columns: Columns, json: bool) -> Result<(), ClientError> {
    if json {
        return print_json(v);
    }
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    print(&table::items(&items, columns))?;
    if let Some(c) = v.get("next_cursor").and_then(Value::as_str) {
        eprintln!("more: --cursor {c}");
    }
    Ok(())
}

/// One object: JSON, or its fields.
pub fn object(v: &Value, json: bool) -> Result<(), ClientError> {
    if json {
        print_json(v)
    } else {
        print(&table::object(v, &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_spec_column_prefers_the_per_piece_version() {
        let shows = [
            json!({"id": 1, "code": "AB", "spec_version": 1, "spec_version_id": 2}),
            json!({"id": 2, "code": "CD", "spec_version_id": 5}),
            json!({"id": 3, "code": "EF", "spec_version": null, "spec_version_id": 7}),
        ];
        let t = table::items(&shows, SHOW_COLUMNS);
        // ID CODE KIND STATUS PIECE SPEC CREATED, absent values as `-`: SPEC is the 6th.
        let spec_col: Vec<&str> = t
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().nth(5).unwrap())
            .collect();
        assert_eq!(spec_col, ["1", "5", "7"], "{t}");
    }
}
