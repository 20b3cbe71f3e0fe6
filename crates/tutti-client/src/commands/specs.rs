//! `tutti specs list|show|draft|publish`, and the spec helpers `tutti export` and
//! `tutti wizard --server` share: reading and checking a spec file, the spec inside a
//! version, drafting a version.
//!
//! Must never: send a spec the local validator refuses (it is checked first, naming the
//! file and the field).

use std::path::Path;

use serde_json::{json, Value};
use tutti_spec::PieceSpec;

use super::{page_query, piece_id, Page};
use crate::error::ClientError;
use crate::output::{self, print, print_json, SPEC_COLUMNS};
use crate::session::Api;
use crate::table;

/// Read and check a spec file: `.json` as JSON, anything else as TOML.
pub fn read_spec(file: &Path) -> Result<PieceSpec, ClientError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ClientError::Io(format!("{}: {e}", file.display())))?;
    let parsed = if file.extension().is_some_and(|x| x == "json") {
        PieceSpec::from_json(&text)
    } else {
        PieceSpec::from_toml(&text)
    };
    parsed.map_err(|e| ClientError::Data(format!("{}: {e}", file.display())))
}

/// The spec inside a spec version response (`spec` object or `spec_json` text).
pub(crate) fn spec_of(v: &Value) -> Result<PieceSpec, ClientError> {
    let text = match (v.get("spec"), v.get("spec_json")) {
        (Some(s), _) if s.is_object() => s.to_string(),
        (_, Some(Value::String(s))) => s.clone(),
        _ => {
            return Err(ClientError::Connection(
                "the spec version response has no spec".to_string(),
            ))
        }
    };
    PieceSpec::from_json(&text)
        .map_err(|e| ClientError::Data(format!("the stored spec does not load: {e}")))
}

/// The path of a version (`None`: the current one).
pub(crate) fn spec_path(piece: i64, version: Option<i64>) -> String {
    match version {
        Some(v) => format!("/api/v1/pieces/{piece}/specs/{v}"),
        None => format!("/api/v1/pieces/{piece}/specs/current"),
    }
}

/// Create a draft spec version of a piece; prints what was created.
pub async fn draft_spec(
    api: &mut Api,
    piece: &str,
    spec: &PieceSpec,
    note: Option<&str>,
    key: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let mut body = json!({ "spec": spec });
    if let Some(n) = note {
        body["note"] = Value::String(n.to_string());
    }
    let v = api
        .call(
            "POST",
            &format!("/api/v1/pieces/{id}/specs"),
            Some(&body),
            key,
        )
        .await?;
    if json {
        return print_json(&v);
    }
    print(&format!(
        "draft version {} of piece {id} created; publish it with `tutti specs publish {id} {}`\n",
        table::text(table::field(&v, &["version"])),
        table::text(table::field(&v, &["version"])),
    ))
}

/// `tutti specs list PIECE`.
pub async fn list(api: &mut Api, piece: &str, page: &Page, json: bool) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let v = api
        .call(
            "GET",
            &format!("/api/v1/pieces/{id}/specs?{}", page_query(page)),
            None,
            None,
        )
        .await?;
    output::list(&v, SPEC_COLUMNS, json)
}

/// `tutti specs show PIECE [VERSION]`: the metadata and the spec as a readable sheet.
pub async fn show(
    api: &mut Api,
    piece: &str,
    version: Option<i64>,
    json: bool,
) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let v = api.call("GET", &spec_path(id, version), None, None).await?;
    if json {
        return print_json(&v);
    }
    let spec = spec_of(&v)?;
    print(&format!(
        "{}\n{}",
        table::object(&v, &["spec", "spec_json"]),
        spec.to_markdown()
    ))
}

/// `tutti specs draft PIECE --file FILE`.
pub async fn draft(
    api: &mut Api,
    piece: &str,
    file: &Path,
    note: Option<&str>,
    idempotency_key: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let spec = read_spec(file)?;
    draft_spec(api, piece, &spec, note, idempotency_key, json).await
}

/// `tutti specs publish PIECE VERSION`.
pub async fn publish(
    api: &mut Api,
    piece: &str,
    version: i64,
    json: bool,
) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let v = api
        .call(
            "POST",
            &format!("/api/v1/pieces/{id}/specs/{version}/publish"),
            None,
            None,
        )
        .await?;
    if json {
        return print_json(&v);
    }
    print(&format!("version {version} of piece {id} is now current\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_versions_carry_the_spec_as_object_or_text() {
        let demo = PieceSpec::demo();
        let a = json!({"version": 1, "spec": demo});
        let b = json!({"version": 1, "spec_json": demo.to_json()});
        assert_eq!(spec_of(&a).unwrap(), demo);
        assert_eq!(spec_of(&b).unwrap(), demo);
        assert_eq!(spec_of(&json!({"version": 1})).unwrap_err().exit_code(), 3);
    }

    #[test]
    fn spec_files_are_checked_locally_naming_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("p.toml");
        std::fs::write(&good, tutti_spec::DEMO_TOML).unwrap();
        assert_eq!(read_spec(&good).unwrap(), PieceSpec::demo());
        let json_file = dir.path().join("p.json");
        std::fs::write(&json_file, PieceSpec::demo().to_json()).unwrap();
        assert_eq!(read_spec(&json_file).unwrap(), PieceSpec::demo());
        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            tutti_spec::DEMO_TOML.replace("tick_hz = 20", "tick_hz = 500"),
        )
        .unwrap();
        let e = read_spec(&bad).unwrap_err();
        assert_eq!(e.exit_code(), 65);
        assert!(e.to_string().contains("bad.toml: tick_hz"), "{e}");
    }
}
