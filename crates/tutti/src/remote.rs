//! The CLI client's commands against a running server: `login`, `logout`, `pieces`,
//! `specs`, `shows` and `export`. Human tables by default, the API's JSON with `--json`;
//! failures are [`CliError`]s (the API's envelope printed as `error <code>: <message>`).
//!
//! Must never: send a spec the local validator refuses (it is checked first, naming the
//! field), print tokens, or guess when an argument is ambiguous (a slug matching no
//! piece is an error, not the first piece).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use tutti_spec::{ExportFormat, PieceSpec};

use crate::client::{self, Api, CliError, Store};
use crate::table;

/// Options shared by every client command.
#[derive(Args, Clone, Debug)]
pub struct ClientOpts {
    /// Server address, e.g. http://127.0.0.1:7878 (default: the last one logged in to).
    #[arg(long, global = true, env = "TUTTI_SERVER")]
    pub server: Option<String>,
    /// Directory of the stored logins (default: $XDG_CONFIG_HOME/tutti or ~/.config/tutti).
    #[arg(long, global = true, env = "TUTTI_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientOpts {
    fn api(&self) -> Result<Api, CliError> {
        Api::open(self.server.as_deref(), Store::new(self.config_dir.clone())?)
    }
}

/// `tutti login`.
#[derive(Args, Clone, Debug)]
pub struct LoginArgs {
    /// User name (asked for when missing).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the password from the first line of stdin (for scripts). Otherwise
    /// TUTTI_PASSWORD, else it is asked for without echo.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Piece lifecycle states.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PieceState {
    /// Being written.
    Draft,
    /// In rehearsal.
    Rehearsal,
    /// Ready to perform.
    Ready,
    /// Archived (final).
    Archived,
}

/// Show lifecycle states one can move to.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShowState {
    /// Running.
    Live,
    /// Paused.
    Paused,
    /// Ended (final).
    Ended,
}

/// Show kinds.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShowKind {
    /// A rehearsal.
    Rehearsal,
    /// A performance.
    Performance,
}

fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// Paging of list commands.
#[derive(Args, Clone, Debug)]
pub struct PageArgs {
    /// Items per page (1–100).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    /// Continue after this cursor (printed after a full page).
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `tutti pieces …`.
#[derive(Subcommand, Clone, Debug)]
pub enum PiecesCmd {
    /// List the pieces you can see.
    List {
        /// Only this ensemble's pieces.
        #[arg(long)]
        ensemble: Option<i64>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one piece (id or slug).
    Show {
        /// Piece id or slug.
        piece: String,
    },
    /// Create a piece in an ensemble.
    Create {
        /// The ensemble id.
        #[arg(long)]
        ensemble: i64,
        /// URL-safe slug, [a-z0-9-]{1,64}.
        #[arg(long)]
        slug: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Idempotency key: the same key and body replay the first answer.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Move a piece along its lifecycle (draft → rehearsal → ready → archived).
    Transition {
        /// Piece id or slug.
        piece: String,
        /// The new state.
        #[arg(value_enum)]
        to: PieceState,
    },
}

/// `tutti specs …`.
#[derive(Subcommand, Clone, Debug)]
pub enum SpecsCmd {
    /// List a piece's spec versions.
    List {
        /// Piece id or slug.
        piece: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a spec version (default: the current one) as a readable sheet.
    Show {
        /// Piece id or slug.
        piece: String,
        /// Version number (default: current).
        version: Option<i64>,
    },
    /// Upload a spec file (TOML or JSON, checked locally first) as a new draft version.
    Draft {
        /// Piece id or slug.
        piece: String,
        /// The spec file (.json for JSON, anything else is read as TOML).
        #[arg(long)]
        file: PathBuf,
        /// A note kept with the version.
        #[arg(long)]
        note: Option<String>,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Make a version the current one (the previous current is superseded).
    Publish {
        /// Piece id or slug.
        piece: String,
        /// Version number.
        version: i64,
    },
}

/// `tutti shows …`.
#[derive(Subcommand, Clone, Debug)]
pub enum ShowsCmd {
    /// List shows.
    List {
        /// Only this piece's shows (id or slug).
        #[arg(long)]
        piece: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one show.
    Show {
        /// Show id.
        show: i64,
    },
    /// Create a show of a piece.
    Create {
        /// Piece id or slug.
        piece: String,
        /// Rehearsal or performance.
        #[arg(long, value_enum, default_value = "rehearsal")]
        kind: ShowKind,
        /// The spec version it runs (default: the current one).
        #[arg(long)]
        spec_version: Option<i64>,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Move a show along its lifecycle (scheduled → live ⇄ paused → ended).
    Transition {
        /// Show id.
        show: i64,
        /// The new state.
        #[arg(value_enum)]
        to: ShowState,
    },
}

/// `tutti export …`.
#[derive(Subcommand, Clone, Debug)]
pub enum ExportCmd {
    /// A spec version as JSON, TOML or Markdown.
    Spec {
        /// Piece id or slug.
        piece: String,
        /// Version number (default: current).
        #[arg(long)]
        version: Option<i64>,
        /// json, toml or markdown.
        #[arg(long, default_value = "toml", value_parser = parse_format)]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// A show's metadata and timeline as JSON.
    Show {
        /// Show id.
        show: i64,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

fn parse_format(s: &str) -> Result<ExportFormat, String> {
    s.parse::<ExportFormat>()
        .map_err(|_| format!("'{s}' is not an export format: use json, toml or markdown"))
}

fn print(s: &str) -> Result<(), CliError> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| CliError::Io(format!("stdout: {e}")))
}

fn print_json(v: &Value) -> Result<(), CliError> {
    print(&(serde_json::to_string_pretty(v).unwrap_or_default() + "\n"))
}

fn write_out(out: Option<&Path>, text: &str) -> Result<(), CliError> {
    match out {
        None => print(text),
        Some(p) if p.as_os_str() == "-" => print(text),
        Some(p) => {
            std::fs::write(p, text).map_err(|e| CliError::Io(format!("{}: {e}", p.display())))?;
            eprintln!("wrote {}", p.display());
            Ok(())
        }
    }
}

fn page_query(page: &PageArgs) -> String {
    let mut q = format!("limit={}", page.limit);
    if let Some(c) = &page.cursor {
        q.push_str("&cursor=");
        q.push_str(&encode(c));
    }
    q
}

/// Percent-encode a query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn list_output(v: &Value, columns: &[(&str, &[&str])], json: bool) -> Result<(), CliError> {
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

const PIECE_COLUMNS: &[(&str, &[&str])] = &[
    ("ID", &["id"]),
    ("SLUG", &["slug"]),
    ("TITLE", &["title"]),
    ("STATUS", &["status"]),
    ("ENSEMBLE", &["ensemble_id"]),
];
const SPEC_COLUMNS: &[(&str, &[&str])] = &[
    ("VERSION", &["version"]),
    ("STATUS", &["status"]),
    ("CREATED", &["created_at_ms", "created_at"]),
    ("BY", &["created_by"]),
    ("NOTE", &["note"]),
];
const SHOW_COLUMNS: &[(&str, &[&str])] = &[
    ("ID", &["id"]),
    ("CODE", &["code"]),
    ("KIND", &["kind"]),
    ("STATUS", &["status"]),
    ("PIECE", &["piece_id"]),
    ("SPEC", &["spec_version", "spec_version_id"]),
    ("CREATED", &["created_at_ms", "created_at"]),
];

/// A piece id from an id or a slug (looked up among the pieces you can see).
async fn piece_id(api: &mut Api, piece: &str) -> Result<i64, CliError> {
    if let Ok(id) = piece.parse::<i64>() {
        if id > 0 {
            return Ok(id);
        }
        return Err(CliError::Usage(format!(
            "piece '{piece}': ids are positive numbers"
        )));
    }
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = "/api/v1/pieces?limit=100".to_string();
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&encode(c));
        }
        let v = api.call("GET", &path, None, None).await?;
        if let Some(items) = v.get("items").and_then(Value::as_array) {
            if let Some(p) = items
                .iter()
                .find(|p| p.get("slug").and_then(Value::as_str) == Some(piece))
            {
                return p.get("id").and_then(Value::as_i64).ok_or_else(|| {
                    CliError::Connection("a piece in the list has no id".to_string())
                });
            }
        }
        match v.get("next_cursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    Err(CliError::Usage(format!(
        "no piece with slug '{piece}' among the pieces you can see (`tutti pieces list`)"
    )))
}

/// Read and check a spec file: `.json` as JSON, anything else as TOML.
pub fn read_spec(file: &Path) -> Result<PieceSpec, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Io(format!("{}: {e}", file.display())))?;
    let parsed = if file.extension().is_some_and(|x| x == "json") {
        PieceSpec::from_json(&text)
    } else {
        PieceSpec::from_toml(&text)
    };
    parsed.map_err(|e| CliError::Data(format!("{}: {e}", file.display())))
}

/// The spec inside a spec version response (`spec` object or `spec_json` text).
fn spec_of(v: &Value) -> Result<PieceSpec, CliError> {
    let text = match (v.get("spec"), v.get("spec_json")) {
        (Some(s), _) if s.is_object() => s.to_string(),
        (_, Some(Value::String(s))) => s.clone(),
        _ => {
            return Err(CliError::Connection(
                "the spec version response has no spec".to_string(),
            ))
        }
    };
    PieceSpec::from_json(&text)
        .map_err(|e| CliError::Data(format!("the stored spec does not load: {e}")))
}

fn spec_path(piece: i64, version: Option<i64>) -> String {
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
) -> Result<(), CliError> {
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

fn read_secret_line(prompt: &str) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    // Turn echo off with stty(1) while the password is typed (no unsafe terminal calls).
    let echo_off = tty
        && std::process::Command::new("stty")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
        eprintln!();
    }
    read.map_err(|e| CliError::Io(format!("stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `tutti login`.
pub async fn login(opts: &ClientOpts, args: &LoginArgs) -> Result<(), CliError> {
    let mut api = opts.api()?;
    let username = match &args.username {
        Some(u) => u.clone(),
        None if args.password_stdin => {
            return Err(CliError::Usage(
                "--password-stdin needs --username".to_string(),
            ))
        }
        None => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| CliError::Io(format!("stdin: {e}")))?;
            line.trim().to_string()
        }
    };
    if username.is_empty() {
        return Err(CliError::Usage("the user name is empty".to_string()));
    }
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Io(format!("stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if let Ok(p) = std::env::var("TUTTI_PASSWORD") {
        p
    } else {
        read_secret_line("Password: ")?
    };
    if password.is_empty() {
        return Err(CliError::Usage("the password is empty".to_string()));
    }
    let body = json!({ "username": username, "password": password, "mode": "token" });
    let reply = client::request(
        &api.server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&body),
        None,
    )
    .await?;
    let v = client::check(reply, &api.server)?;
    let login = client::login_from_tokens(&username, &v, &api.server)?;
    api.remember(login)?;
    if opts.json {
        let mut shown = v.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("access_token");
            o.remove("refresh_token");
        }
        return print_json(&shown);
    }
    let role = v
        .pointer("/user/role")
        .and_then(Value::as_str)
        .unwrap_or("?");
    print(&format!(
        "logged in to {} as {username} ({role}); tokens stored in {}\n",
        api.server.as_string(),
        api.store().path().display()
    ))
}

/// `tutti logout`: revoke on the server (best effort) and forget the tokens.
pub async fn logout(opts: &ClientOpts) -> Result<(), CliError> {
    let mut api = opts.api()?;
    let Some(login) = api.login().cloned() else {
        print(&format!("not logged in to {}\n", api.server.as_string()))?;
        return Ok(());
    };
    let revoked = client::request(
        &api.server,
        "POST",
        "/api/v1/auth/logout",
        Some(&login.access_token),
        None,
        None,
    )
    .await
    .and_then(|r| client::check(r, &api.server));
    api.forget()?;
    match revoked {
        Ok(_) => print(&format!("logged out of {}\n", api.server.as_string())),
        Err(e) => {
            eprintln!(
                "tutti logout: the server did not confirm ({e}); the local tokens are deleted"
            );
            Ok(())
        }
    }
}

/// `tutti pieces …`.
pub async fn pieces(opts: &ClientOpts, cmd: &PiecesCmd) -> Result<(), CliError> {
    let mut api = opts.api()?;
    match cmd {
        PiecesCmd::List { ensemble, page } => {
            let mut path = format!("/api/v1/pieces?{}", page_query(page));
            if let Some(e) = ensemble {
                path.push_str(&format!("&ensemble_id={e}"));
            }
            let v = api.call("GET", &path, None, None).await?;
            list_output(&v, PIECE_COLUMNS, opts.json)
        }
        PiecesCmd::Show { piece } => {
            let id = piece_id(&mut api, piece).await?;
            let v = api
                .call("GET", &format!("/api/v1/pieces/{id}"), None, None)
                .await?;
            object_output(&v, opts.json)
        }
        PiecesCmd::Create {
            ensemble,
            slug,
            title,
            idempotency_key,
        } => {
            let body = json!({ "slug": slug, "title": title });
            let v = api
                .call(
                    "POST",
                    &format!("/api/v1/ensembles/{ensemble}/pieces"),
                    Some(&body),
                    idempotency_key.as_deref(),
                )
                .await?;
            object_output(&v, opts.json)
        }
        PiecesCmd::Transition { piece, to } => {
            let id = piece_id(&mut api, piece).await?;
            let body = json!({ "to": value_name(to) });
            let v = api
                .call(
                    "POST",
                    &format!("/api/v1/pieces/{id}/transition"),
                    Some(&body),
                    None,
                )
                .await?;
            object_output(&v, opts.json)
        }
    }
}

fn object_output(v: &Value, json: bool) -> Result<(), CliError> {
    if json {
        print_json(v)
    } else {
        print(&table::object(v, &[]))
    }
}

/// `tutti specs …`.
pub async fn specs(opts: &ClientOpts, cmd: &SpecsCmd) -> Result<(), CliError> {
    let mut api = opts.api()?;
    match cmd {
        SpecsCmd::List { piece, page } => {
            let id = piece_id(&mut api, piece).await?;
            let v = api
                .call(
                    "GET",
                    &format!("/api/v1/pieces/{id}/specs?{}", page_query(page)),
                    None,
                    None,
                )
                .await?;
            list_output(&v, SPEC_COLUMNS, opts.json)
        }
        SpecsCmd::Show { piece, version } => {
            let id = piece_id(&mut api, piece).await?;
            let v = api
                .call("GET", &spec_path(id, *version), None, None)
                .await?;
            if opts.json {
                return print_json(&v);
            }
            let spec = spec_of(&v)?;
            print(&format!(
                "{}\n{}",
                table::object(&v, &["spec", "spec_json"]),
                spec.to_markdown()
            ))
        }
        SpecsCmd::Draft {
            piece,
            file,
            note,
            idempotency_key,
        } => {
            let spec = read_spec(file)?;
            draft_spec(
                &mut api,
                piece,
                &spec,
                note.as_deref(),
                idempotency_key.as_deref(),
                opts.json,
            )
            .await
        }
        SpecsCmd::Publish { piece, version } => {
            let id = piece_id(&mut api, piece).await?;
            let v = api
                .call(
                    "POST",
                    &format!("/api/v1/pieces/{id}/specs/{version}/publish"),
                    None,
                    None,
                )
                .await?;
            if opts.json {
                return print_json(&v);
            }
            print(&format!("version {version} of piece {id} is now current\n"))
        }
    }
}

/// `tutti shows …`.
pub async fn shows(opts: &ClientOpts, cmd: &ShowsCmd) -> Result<(), CliError> {
    let mut api = opts.api()?;
    match cmd {
        ShowsCmd::List { piece, page } => {
            let mut path = format!("/api/v1/shows?{}", page_query(page));
            if let Some(p) = piece {
                let id = piece_id(&mut api, p).await?;
                path.push_str(&format!("&piece_id={id}"));
            }
            let v = api.call("GET", &path, None, None).await?;
            list_output(&v, SHOW_COLUMNS, opts.json)
        }
        ShowsCmd::Show { show } => {
            let v = api
                .call("GET", &format!("/api/v1/shows/{show}"), None, None)
                .await?;
            object_output(&v, opts.json)
        }
        ShowsCmd::Create {
            piece,
            kind,
            spec_version,
            idempotency_key,
        } => {
            let id = piece_id(&mut api, piece).await?;
            let mut body = json!({ "kind": value_name(kind) });
            if let Some(v) = spec_version {
                body["spec_version"] = json!(v);
            }
            let v = api
                .call(
                    "POST",
                    &format!("/api/v1/pieces/{id}/shows"),
                    Some(&body),
                    idempotency_key.as_deref(),
                )
                .await?;
            object_output(&v, opts.json)
        }
        ShowsCmd::Transition { show, to } => {
            let body = json!({ "to": value_name(to) });
            let v = api
                .call(
                    "POST",
                    &format!("/api/v1/shows/{show}/transition"),
                    Some(&body),
                    None,
                )
                .await?;
            object_output(&v, opts.json)
        }
    }
}

/// `tutti export …`. Specs are rendered locally from the stored version by the same code
/// the server uses, so every format works against any v1 server.
pub async fn export(opts: &ClientOpts, cmd: &ExportCmd) -> Result<(), CliError> {
    let mut api = opts.api()?;
    match cmd {
        ExportCmd::Spec {
            piece,
            version,
            format,
            out,
        } => {
            let id = piece_id(&mut api, piece).await?;
            let v = api
                .call("GET", &spec_path(id, *version), None, None)
                .await?;
            let spec = spec_of(&v)?;
            let text = spec
                .export(*format)
                .map_err(|e| CliError::Data(e.to_string()))?;
            write_out(out.as_deref(), &text)
        }
        ExportCmd::Show { show, out } => {
            let v = api
                .call("GET", &format!("/api/v1/shows/{show}/export"), None, None)
                .await?;
            write_out(
                out.as_deref(),
                &(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("abc-_.~"), "abc-_.~");
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        let p = PageArgs {
            limit: 10,
            cursor: Some("x y".into()),
        };
        assert_eq!(page_query(&p), "limit=10&cursor=x%20y");
    }

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
