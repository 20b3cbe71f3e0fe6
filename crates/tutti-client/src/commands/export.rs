//! `tutti export spec|show`. Specs are rendered locally from the stored version by the
//! same code the server uses (`tutti_spec::export`), so every format works against any v1
//! server.
//!
//! Must never: write a file the user did not name (stdout otherwise).

use std::path::Path;

use tutti_spec::ExportFormat;

use super::piece_id;
use super::specs::{spec_of, spec_path};
use crate::error::ClientError;
use crate::output::write_out;
use crate::session::Api;

/// `tutti export spec PIECE [--version N] [--format F] [--out FILE]`.
pub async fn spec(
    api: &mut Api,
    piece: &str,
    version: Option<i64>,
    format: ExportFormat,
    out: Option<&Path>,
) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let v = api.call("GET", &spec_path(id, version), None, None).await?;
    let spec = spec_of(&v)?;
    let text = spec
        .export(format)
        .map_err(|e| ClientError::Data(e.to_string()))?;
    write_out(out, &text)
}

/// `tutti export show ID [--out FILE]`: the show's metadata and timeline as JSON.
pub async fn show(api: &mut Api, show: i64, out: Option<&Path>) -> Result<(), ClientError> {
    let v = api
        .call("GET", &format!("/api/v1/shows/{show}/export"), None, None)
        .await?;
    write_out(
        out,
        &(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"),
    )
}
