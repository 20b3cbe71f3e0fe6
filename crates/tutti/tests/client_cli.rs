//! The CLI client against a real server: `tutti serve` in a child process with a fresh
//! store, and `tutti login`, `pieces`, `specs`, `shows`, `export`, `wizard --server` and
//! `logout` run as real processes. Also the wizard's HTTP routes, and the API's errors as
//! the CLI prints them (`error <code>: <message>`, nonzero exit).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use support::{free_addr, http, serve, serve_with, tutti, Server};

struct Cli {
    server: String,
    config: PathBuf,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = tutti();
        c.args(args)
            .env("TUTTI_SERVER", &self.server)
            .env("TUTTI_CONFIG_DIR", &self.config);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tutti {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "tutti {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn login(&self, user: &str, password: &str) -> Output {
        let mut child = self
            .cmd(&["login", "--username", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn credentials(&self) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.config.join("credentials.json")).unwrap(),
        )
        .unwrap()
    }
}

const PASSWORD: &str = "correct horse battery";

/// A server with an admin `ada`, an ensemble `band` (id in the return), and a CLI logged in.
fn setup(dir: &Path) -> (Server, Cli, String, i64) {
    let server = serve(&dir.join("data"));
    let (st, v) = http(
        &server.addr,
        "POST",
        "/api/v1/setup",
        None,
        Some(&json!({"username": "ada", "password": PASSWORD, "display_name": "Ada"})),
    );
    assert_eq!(st, 201, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();
    let (st, e) = http(
        &server.addr,
        "POST",
        "/api/v1/ensembles",
        Some(&token),
        Some(&json!({"slug": "band", "name": "Band"})),
    );
    assert_eq!(st, 201, "{e}");
    let cli = Cli {
        server: format!("http://{}", server.addr),
        config: dir.join("cfg"),
    };
    let out = cli.login("ada", PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = e["id"].as_i64().unwrap();
    (server, cli, token, id)
}

#[test]
fn login_pieces_specs_shows_export_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, cli, _token, ensemble) = setup(dir.path());

    // The tokens are stored privately.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cli.config.join("credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A wrong password is the API's error, and the stored login is kept.
    let out = cli.login("ada", "wrong password!");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error unauthorized: "));

    // Pieces.
    let ens = ensemble.to_string();
    let created = cli.json(&[
        "pieces",
        "create",
        "--ensemble",
        &ens,
        "--slug",
        "club",
        "--title",
        "Club Night",
        "--json",
    ]);
    assert_eq!(created["status"], "draft");
    let piece = created["id"].as_i64().unwrap().to_string();
    let table = cli.ok(&["pieces", "list"]);
    assert!(table.starts_with("ID  SLUG"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("club") && l.contains("Club Night") && l.contains("draft")),
        "{table}"
    );
    let err = cli.fails(
        &[
            "pieces",
            "create",
            "--ensemble",
            &ens,
            "--slug",
            "club",
            "--title",
            "Again",
        ],
        1,
    );
    assert!(err.starts_with("error already_exists: "), "{err}");
    let err = cli.fails(&["pieces", "transition", "club", "ready"], 1);
    assert!(err.starts_with("error invalid_transition: "), "{err}");
    assert_eq!(err.matches("allowed").count(), 1, "{err}");
    assert!(err.contains("rehearsal"), "{err}");
    let moved = cli.ok(&["pieces", "transition", "club", "rehearsal"]);
    assert!(
        moved.lines().any(|l| l == "status         rehearsal"),
        "{moved}"
    );
    let err = cli.fails(&["pieces", "show", "no-such-slug"], 2);
    assert!(err.contains("no piece with slug 'no-such-slug'"), "{err}");
    let err = cli.fails(&["pieces", "show", "999"], 1);
    assert!(err.starts_with("error not_found: "), "{err}");

    // Specs: a bad file is refused locally, naming the field; a good one is drafted.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        tutti_spec::DEMO_TOML.replace("tick_hz = 20", "tick_hz = 500"),
    )
    .unwrap();
    let err = cli.fails(
        &["specs", "draft", "club", "--file", bad.to_str().unwrap()],
        65,
    );
    assert!(err.contains("bad.toml: tick_hz"), "{err}");
    let good = dir.path().join("demo.toml");
    std::fs::write(&good, tutti_spec::DEMO_TOML).unwrap();
    let drafted = cli.ok(&[
        "specs",
        "draft",
        "club",
        "--file",
        good.to_str().unwrap(),
        "--note",
        "first cut",
    ]);
    assert!(drafted.starts_with("draft version 1 of piece"), "{drafted}");
    let list = cli.json(&["specs", "list", &piece, "--json"]);
    assert_eq!(list["items"][0]["status"], "draft");
    assert_eq!(list["items"][0]["note"], "first cut");
    let err = cli.fails(&["specs", "show", "club"], 1);
    assert!(err.starts_with("error not_found: "), "{err}");
    assert!(cli
        .ok(&["specs", "publish", "club", "1"])
        .contains("version 1 of piece"));
    let shown = cli.ok(&["specs", "show", "club"]);
    assert!(shown.contains("status         current"), "{shown}");
    assert!(shown.contains("## Parameters (8)"), "{shown}");
    let v1 = cli.ok(&["specs", "show", "club", "1"]);
    assert!(v1.contains("note           first cut"), "{v1}");
    let err = cli.fails(&["specs", "show", "club", "7"], 1);
    assert!(err.starts_with("error not_found: "), "{err}");

    // Paging: one piece a page, the cursor on stderr, the next page with it.
    let out = cli.run(&["pieces", "list", "--limit", "1"]);
    assert!(out.status.success());
    let first = String::from_utf8(out.stdout).unwrap();
    let hint = String::from_utf8(out.stderr).unwrap();
    let cursor = hint
        .trim()
        .strip_prefix("more: --cursor ")
        .unwrap_or_else(|| panic!("{hint}"))
        .to_string();
    let second = cli.ok(&["pieces", "list", "--limit", "1", "--cursor", &cursor]);
    assert_eq!(first.lines().count(), 3, "{first}");
    assert_eq!(second.lines().count(), 3, "{second}");
    assert_ne!(first.lines().nth(2), second.lines().nth(2));

    // Exports: TOML and JSON load back to the demo; Markdown is the sheet; a file output.
    let toml = cli.ok(&["export", "spec", "club", "--format", "toml"]);
    assert_eq!(
        tutti_spec::PieceSpec::from_toml(&toml).unwrap(),
        tutti_spec::PieceSpec::demo()
    );
    let json_text = cli.ok(&[
        "export",
        "spec",
        "club",
        "--version",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(
        tutti_spec::PieceSpec::from_json(&json_text).unwrap(),
        tutti_spec::PieceSpec::demo()
    );
    let md_file = dir.path().join("club.md");
    cli.ok(&[
        "export",
        "spec",
        "club",
        "--format",
        "markdown",
        "--out",
        md_file.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(&md_file).unwrap();
    assert!(md.starts_with("# Murmuration (Tutti demo)"), "{md}");
    let err = cli.fails(&["export", "spec", "club", "--format", "yaml"], 2);
    assert!(err.contains("'yaml' is not an export format"), "{err}");

    // Shows.
    let show = cli.json(&["shows", "create", "club", "--kind", "rehearsal", "--json"]);
    assert_eq!(show["status"], "scheduled");
    let sid = show["id"].as_i64().unwrap().to_string();
    cli.ok(&["shows", "transition", &sid, "live"]);
    cli.ok(&["shows", "transition", &sid, "ended"]);
    let err = cli.fails(&["shows", "transition", &sid, "ended"], 1);
    assert!(err.starts_with("error "), "{err}");
    let one = cli.ok(&["shows", "show", &sid]);
    assert!(one.lines().any(|l| l == "status           ended"), "{one}");
    assert!(one.contains("join_url"), "{one}");
    let shows = cli.ok(&["shows", "list", "--piece", "club"]);
    assert!(
        shows
            .lines()
            .any(|l| l.contains("rehearsal") && l.contains("ended")),
        "{shows}"
    );
    let export = cli.json(&["export", "show", &sid]);
    assert_eq!(export["show"]["id"].as_i64().unwrap().to_string(), sid);
    let err = cli.fails(&["shows", "transition", &sid, "sideways"], 2);
    assert!(err.contains("sideways"), "{err}");

    // An expired access token is refreshed (the refresh token rotates).
    let mut creds = cli.credentials();
    let key = creds["default_server"].as_str().unwrap().to_string();
    let old_refresh = creds["servers"][&key]["refresh_token"].clone();
    creds["servers"][&key]["access_expires_at_ms"] = json!(0);
    std::fs::write(cli.config.join("credentials.json"), creds.to_string()).unwrap();
    cli.ok(&["pieces", "list"]);
    let creds = cli.credentials();
    assert_ne!(creds["servers"][&key]["refresh_token"], old_refresh);
    assert!(
        creds["servers"][&key]["access_expires_at_ms"]
            .as_i64()
            .unwrap()
            > 0
    );

    // Logout forgets the tokens; then commands say how to log in.
    assert!(cli.ok(&["logout"]).starts_with("logged out of"));
    let err = cli.fails(&["pieces", "list"], 4);
    assert!(
        err.contains("not logged in to") && err.contains("tutti login"),
        "{err}"
    );
}

#[test]
fn wizard_routes_and_wizard_to_server() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli, token, ensemble) = setup(dir.path());
    let addr = &server.addr;
    let (st, piece) = http(
        addr,
        "POST",
        &format!("/api/v1/ensembles/{ensemble}/pieces"),
        Some(&token),
        Some(&json!({"slug": "swarm", "title": "Swarm"})),
    );
    assert_eq!(st, 201, "{piece}");
    let piece_id = piece["id"].as_i64().unwrap();

    // Packs.
    let (st, packs) = http(addr, "GET", "/api/v1/wizard/packs", Some(&token), None);
    assert_eq!(st, 200);
    let ids: Vec<&str> = packs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 8, "{ids:?}");
    assert!(ids.contains(&"electronic") && ids.contains(&"theatre"));

    // A session: the first question, answers, a refused answer, coverage rising.
    let (st, s) = http(
        addr,
        "POST",
        "/api/v1/wizard/sessions",
        Some(&token),
        Some(&json!({"pack": "electronic"})),
    );
    assert_eq!(st, 201, "{s}");
    let sid = s["id"].as_i64().unwrap();
    assert_eq!(s["question"]["id"], "title");
    assert_eq!(s["coverage"]["maturity"], 0);
    let answers = format!("/api/v1/wizard/sessions/{sid}/answers");
    let (st, s) = http(
        addr,
        "POST",
        &answers,
        Some(&token),
        Some(&json!({"question": "title", "answer": "Swarm Night"})),
    );
    assert_eq!(st, 200, "{s}");
    assert_eq!(s["draft"]["title"], "Swarm Night");
    assert!(s["coverage"]["maturity"].as_u64().unwrap() > 0);
    let (st, e) = http(
        addr,
        "POST",
        &answers,
        Some(&token),
        Some(&json!({"question": "tick_rate", "answer": 500})),
    );
    assert_eq!(st, 422, "{e}");
    assert_eq!(e["error"]["code"], "validation_failed");
    assert_eq!(e["error"]["details"][0]["field"], "answer");
    let (st, e) = http(
        addr,
        "POST",
        &answers,
        Some(&token),
        Some(&json!({"question": "title", "answer": "x", "extra": 1})),
    );
    assert_eq!(st, 422, "{e}");
    let (st, e) = http(
        addr,
        "POST",
        &answers,
        Some(&token),
        Some(&json!({"question": "nope", "answer": 1})),
    );
    assert_eq!(st, 422, "{e}");
    assert_eq!(e["error"]["details"][0]["field"], "question");
    for (q, a) in [
        ("audience_size", json!(25000)),
        ("network", json!("venue_wifi")),
        ("tick_rate", json!("60 Hz")),
    ] {
        let (st, s) = http(
            addr,
            "POST",
            &answers,
            Some(&token),
            Some(&json!({"question": q, "answer": a})),
        );
        assert_eq!(st, 200, "{q}: {s}");
    }
    let (st, s) = http(
        addr,
        "GET",
        &format!("/api/v1/wizard/sessions/{sid}"),
        Some(&token),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(s["answers"]["tick_rate"], 60);
    assert_eq!(s["ready"], false);
    assert!(
        s["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["rule"] == "wifi-60hz-crowd"),
        "{s}"
    );

    // Another staff member cannot see it.
    let (st, _) = http(
        addr,
        "POST",
        "/api/v1/users",
        Some(&token),
        Some(
            &json!({"username": "bob", "password": PASSWORD, "display_name": "Bob", "role": "performer"}),
        ),
    );
    assert_eq!(st, 201);
    let (_, bob) = http(
        addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "bob", "password": PASSWORD})),
    );
    let bob_token = bob["access_token"].as_str().unwrap();
    let (st, e) = http(
        addr,
        "GET",
        &format!("/api/v1/wizard/sessions/{sid}"),
        Some(bob_token),
        None,
    );
    assert_eq!(st, 404, "{e}");
    assert_eq!(e["error"]["code"], "not_found");
    // Nor draft into a piece of an ensemble he is not in (with his own session).
    let (_, bs) = http(
        addr,
        "POST",
        "/api/v1/wizard/sessions",
        Some(bob_token),
        Some(&json!({"pack": "dance"})),
    );
    let (st, e) = http(
        addr,
        "POST",
        &format!("/api/v1/wizard/sessions/{}/draft", bs["id"]),
        Some(bob_token),
        Some(&json!({"piece_id": piece_id})),
    );
    assert_eq!(st, 404, "{e}");

    // The draft becomes a spec version of the piece.
    let (st, v) = http(
        addr,
        "POST",
        &format!("/api/v1/wizard/sessions/{sid}/draft"),
        Some(&token),
        Some(&json!({"piece_id": piece_id})),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["status"], "draft");
    assert_eq!(v["version"], 1);
    assert_eq!(v["spec"]["tick_hz"], 60);
    assert!(
        v["note"].as_str().unwrap().contains("pack electronic"),
        "{v}"
    );
    let (_, s) = http(
        addr,
        "GET",
        &format!("/api/v1/wizard/sessions/{sid}"),
        Some(&token),
        None,
    );
    assert_eq!(s["piece_id"], piece_id);

    // `tutti wizard --server`: the scripted draft goes to the piece as version 2.
    let answers_file = dir.path().join("answers.json");
    std::fs::write(
        &answers_file,
        json!({"pack": "theatre", "answers": {"title": "Swarm Play"}}).to_string(),
    )
    .unwrap();
    let out = cli.ok(&[
        "wizard",
        "--answers",
        answers_file.to_str().unwrap(),
        "--server",
        &cli.server,
        "--piece",
        "swarm",
    ]);
    assert!(out.contains("draft version 2 of piece"), "{out}");
    let versions = cli.json(&["specs", "list", "swarm", "--json"]);
    assert_eq!(versions["items"][1]["spec"]["title"], "Swarm Play");
    assert!(versions["items"][1]["note"]
        .as_str()
        .unwrap()
        .contains("pack theatre"));
}

#[test]
fn an_unreachable_server_and_bad_addresses_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        server: format!("http://{}", free_addr()),
        config: dir.path().join("cfg"),
    };
    let out = cli.login("ada", PASSWORD);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
    let err = cli.fails(&["pieces", "list"], 4);
    assert!(err.contains("not logged in"), "{err}");
    let bad = Cli {
        server: "https://example.org".into(),
        config: dir.path().join("cfg"),
    };
    let err = bad.fails(&["pieces", "list"], 2);
    assert!(err.contains("https is not supported"), "{err}");
    let err = cli.fails(&["pieces", "list", "--limit", "0"], 2);
    assert!(err.contains("--limit"), "{err}");
}

#[test]
fn a_configured_pack_directory_reaches_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let packs = dir.path().join("packs");
    std::fs::create_dir(&packs).unwrap();
    let mut pack: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../packs/dance.json"
        ))
        .unwrap(),
    )
    .unwrap();
    pack["id"] = "my-dance".into();
    pack["title"] = "Our dance company".into();
    std::fs::write(packs.join("my-dance.json"), pack.to_string()).unwrap();

    // `config show` reports it.
    let out = tutti()
        .args(["config", "show", "--packs-dir"])
        .arg(&packs)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("packs_dir = "),
        "{out:?}"
    );

    let server = serve_with(
        &dir.path().join("data"),
        &["--packs-dir", packs.to_str().unwrap()],
    );
    let (st, v) = http(
        &server.addr,
        "POST",
        "/api/v1/setup",
        None,
        Some(&json!({"username": "ada", "password": PASSWORD, "display_name": "Ada"})),
    );
    assert_eq!(st, 201, "{v}");
    let token = v["access_token"].as_str().unwrap();
    let (st, packs) = http(
        &server.addr,
        "GET",
        "/api/v1/wizard/packs",
        Some(token),
        None,
    );
    assert_eq!(st, 200);
    let items = packs["items"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    assert_eq!(items[8]["title"], "Our dance company");
    let (st, s) = http(
        &server.addr,
        "POST",
        "/api/v1/wizard/sessions",
        Some(token),
        Some(&json!({"pack": "my-dance"})),
    );
    assert_eq!(st, 201, "{s}");
    let sid = s["id"].as_i64().unwrap();
    // An audience account has no access to the wizard.
    let (st, _) = http(
        &server.addr,
        "POST",
        "/api/v1/users",
        Some(token),
        Some(
            &json!({"username": "eve", "password": PASSWORD, "display_name": "Eve", "role": "audience"}),
        ),
    );
    assert_eq!(st, 201);
    let (_, eve) = http(
        &server.addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "eve", "password": PASSWORD})),
    );
    let (st, e) = http(
        &server.addr,
        "GET",
        "/api/v1/wizard/packs",
        eve["access_token"].as_str(),
        None,
    );
    assert_eq!(st, 403, "{e}");
    assert_eq!(e["error"]["code"], "forbidden");

    // Restarted without the directory: the stored session cannot be resumed, and says so.
    drop(server);
    let server = serve(&dir.path().join("data"));
    let (_, ada) = http(
        &server.addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "ada", "password": PASSWORD})),
    );
    let (st, e) = http(
        &server.addr,
        "GET",
        &format!("/api/v1/wizard/sessions/{sid}"),
        ada["access_token"].as_str(),
        None,
    );
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["error"]["code"], "conflict");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("my-dance"),
        "{e}"
    );
}

#[test]
fn a_reused_refresh_token_logs_the_cli_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, cli, _token, _) = setup(dir.path());
    let file = cli.config.join("credentials.json");
    // Expire the access token and keep a copy of the login as it is now.
    let mut creds = cli.credentials();
    let key = creds["default_server"].as_str().unwrap().to_string();
    creds["servers"][&key]["access_expires_at_ms"] = json!(0);
    let stale = creds.to_string();
    std::fs::write(&file, &stale).unwrap();
    cli.ok(&["pieces", "list"]); // refreshes: the copied refresh token is now used
                                 // Someone replays the old refresh token: the server revokes the family.
    std::fs::write(&file, &stale).unwrap();
    let err = cli.fails(&["pieces", "list"], 4);
    assert!(
        err.contains("not logged in to") && err.contains("expired or was revoked"),
        "{err}"
    );
    assert!(cli.credentials()["servers"].get(&key).is_none());
    // Logging in again starts a new family.
    let out = cli.login("ada", PASSWORD);
    assert!(out.status.success());
    cli.ok(&["pieces", "list"]);
}

/// The value of column `col` in the table row whose first cell is `first`.
fn cell(table: &str, first: &str, col: &str) -> String {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let at = header
        .split_whitespace()
        .position(|h| h == col)
        .unwrap_or_else(|| panic!("no column {col}: {table}"));
    lines
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .and_then(|cells| cells.get(at).map(|c| c.to_string()))
        .unwrap_or_else(|| panic!("no row {first}: {table}"))
}

#[test]
fn ensembles_members_users_webhooks_and_shows_without_a_piece() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli, token, _band) = setup(dir.path());
    // Two more accounts, made by the admin.
    for (user, role) in [("bea", "performer"), ("cy", "crew")] {
        let (st, v) = http(
            &server.addr,
            "POST",
            "/api/v1/users",
            Some(&token),
            Some(
                &json!({"username": user, "password": PASSWORD, "display_name": user.to_uppercase(), "role": role}),
            ),
        );
        assert_eq!(st, 201, "{v}");
    }

    // Ensembles: create, list, show by slug and by id.
    let q = cli.json(&[
        "ensembles",
        "create",
        "--slug",
        "quartet",
        "--name",
        "The Quartet",
        "--json",
    ]);
    assert_eq!(q["slug"], "quartet");
    let qid = q["id"].as_i64().unwrap().to_string();
    let table = cli.ok(&["ensembles", "list"]);
    assert!(table.starts_with("ID  SLUG"), "{table}");
    assert_eq!(cell(&table, &qid, "SLUG"), "quartet");
    let shown = cli.ok(&["ensembles", "show", "quartet"]);
    assert!(
        shown.lines().any(|l| l == "name           The Quartet"),
        "{shown}"
    );
    assert_eq!(
        cli.json(&["ensembles", "show", &qid, "--json"])["slug"],
        "quartet"
    );
    let err = cli.fails(&["ensembles", "show", "no-such"], 2);
    assert!(err.contains("no ensemble with slug 'no-such'"), "{err}");
    let err = cli.fails(
        &["ensembles", "create", "--slug", "Bad Slug", "--name", "x"],
        1,
    );
    assert!(err.starts_with("error validation_failed: "), "{err}");

    // Members: add by name, change a role, remove; the creator is the owner.
    cli.ok(&["members", "add", "quartet", "bea", "--role", "performer"]);
    let added = cli.json(&["members", "add", &qid, "cy", "--role", "crew", "--json"]);
    assert_eq!(added["role"], "crew");
    let members = cli.ok(&["members", "list", "quartet"]);
    assert!(members.starts_with("USER  USERNAME"), "{members}");
    let roles: Vec<(String, String)> = cli.json(&["members", "list", "quartet", "--json"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("ada", "owner"), ("bea", "performer"), ("cy", "crew")]
            .map(|(u, r)| (u.to_string(), r.to_string()))
    );
    let err = cli.fails(
        &["members", "add", "quartet", "nobody", "--role", "crew"],
        2,
    );
    assert!(err.contains("no user named 'nobody'"), "{err}");
    let err = cli.fails(&["members", "add", "quartet", "cy", "--role", "crew"], 1);
    assert!(err.starts_with("error "), "{err}");
    let err = cli.fails(&["members", "add", "quartet", "cy", "--role", "boss"], 2);
    assert!(err.contains("boss"), "{err}");
    let changed = cli.json(&["members", "role", "quartet", "cy", "performer", "--json"]);
    assert_eq!(changed["role"], "performer");
    assert_eq!(
        cell(&cli.ok(&["members", "list", "quartet"]), "3", "ROLE"),
        "performer"
    );
    assert!(cli
        .ok(&["members", "role", "quartet", "cy", "performer"])
        .contains("already performer"));
    let err = cli.fails(&["members", "role", "quartet", "ada", "crew"], 2);
    assert!(err.contains("your own role"), "{err}");
    let err = cli.fails(&["members", "remove", "quartet", "dora"], 2);
    assert!(err.contains("'dora' is not a member"), "{err}");
    assert!(cli
        .ok(&["members", "remove", "quartet", "cy"])
        .starts_with("cy removed from ensemble"));
    assert_eq!(
        cli.json(&["members", "list", "quartet", "--json"])["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The last owner stays.
    let err = cli.fails(&["members", "remove", "quartet", "ada"], 1);
    assert!(err.starts_with("error "), "{err}");

    // Users (the admin reads the directory).
    let users = cli.ok(&["users", "list"]);
    for u in ["ada", "bea", "cy"] {
        assert!(users.lines().any(|l| l.contains(u)), "{users}");
    }
    let bea = cli.json(&["users", "show", "bea", "--json"]);
    assert_eq!(bea["role"], "performer");
    assert!(bea.get("password_hash").is_none(), "{bea}");
    assert!(cli
        .ok(&["users", "show", "1"])
        .lines()
        .any(|l| l == "username       ada"));

    // Webhooks: the secret once, a table, delete.
    let hook = cli.json(&[
        "webhooks",
        "create",
        "quartet",
        "--url",
        "http://hooks.example.com/tutti",
        "--kind",
        "show.created",
        "--json",
    ]);
    assert!(
        hook["secret"].as_str().is_some_and(|s| !s.is_empty()),
        "{hook}"
    );
    assert_eq!(hook["kinds"], json!(["show.created"]));
    let out = cli.run(&[
        "webhooks",
        "create",
        "quartet",
        "--url",
        "http://hooks.example.com/all",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("secret ")), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only now"));
    let list = cli.ok(&["webhooks", "list", "quartet"]);
    let hid = hook["id"].as_i64().unwrap().to_string();
    assert_eq!(cell(&list, &hid, "URL"), "http://hooks.example.com/tutti");
    assert!(!list.contains(hook["secret"].as_str().unwrap()), "{list}");
    let err = cli.fails(&["webhooks", "create", "quartet", "--url", "http://a b"], 2);
    assert!(err.contains("--url"), "{err}");
    let err = cli.fails(
        &[
            "webhooks",
            "create",
            "quartet",
            "--url",
            "http://h.example/x",
            "--kind",
            "nope",
        ],
        1,
    );
    assert!(err.starts_with("error validation_failed: "), "{err}");
    assert_eq!(
        cli.ok(&["webhooks", "delete", &hid]),
        format!("webhook {hid} deleted\n")
    );
    assert_eq!(
        cli.json(&["webhooks", "list", &qid, "--json"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    cli.fails(&["webhooks", "delete", &hid], 1);

    // A piece of the quartet with a show.
    let good = dir.path().join("demo.toml");
    std::fs::write(&good, tutti_spec::DEMO_TOML).unwrap();
    cli.ok(&[
        "pieces",
        "create",
        "--ensemble",
        &qid,
        "--slug",
        "nocturne",
        "--title",
        "Nocturne",
    ]);
    cli.ok(&[
        "specs",
        "draft",
        "nocturne",
        "--file",
        good.to_str().unwrap(),
    ]);
    cli.ok(&["specs", "publish", "nocturne", "1"]);
    let show = cli.json(&["shows", "create", "nocturne", "--json"]);
    let code = show["code"].as_str().unwrap().to_string();
    let sid = show["id"].as_i64().unwrap().to_string();
    let second = cli.json(&[
        "shows",
        "create",
        "nocturne",
        "--kind",
        "performance",
        "--json",
    ]);

    // bea, a performer of the quartet but no admin: `shows list` without --piece works.
    let bea_cli = Cli {
        server: cli.server.clone(),
        config: dir.path().join("cfg-bea"),
    };
    let out = bea_cli.login("bea", PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mine = bea_cli.ok(&["shows", "list"]);
    assert!(mine.starts_with("ID  CODE"), "{mine}");
    assert_eq!(cell(&mine, &sid, "CODE"), code);
    // SPEC: the per-piece version when the server sends it, else the version's store id.
    let want = show
        .get("spec_version")
        .filter(|v| !v.is_null())
        .unwrap_or(&show["spec_version_id"])
        .to_string();
    assert_eq!(cell(&mine, &sid, "SPEC"), want);
    let listed = bea_cli.json(&["shows", "list", "--json"]);
    let ids: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(
        ids,
        [&show["id"], &second["id"]],
        "the quartet's shows by id: {listed}"
    );
    // More than --limit: the first ones, and how many there are on stderr.
    let out = bea_cli.run(&["shows", "list", "--limit", "1"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
    let hint = String::from_utf8(out.stderr).unwrap();
    assert!(hint.starts_with("more: 2 shows in all"), "{hint}");
    // A cursor belongs to one piece's list.
    let out = bea_cli.run(&["shows", "list", "--piece", "nocturne", "--limit", "1"]);
    let hint = String::from_utf8(out.stderr).unwrap();
    let cursor = hint
        .trim()
        .strip_prefix("more: --cursor ")
        .unwrap_or_else(|| panic!("{hint}"));
    let err = bea_cli.fails(&["shows", "list", "--cursor", cursor], 2);
    assert!(err.contains("give --piece too"), "{err}");
    // The admin's list comes from the API itself and has the show too.
    let all = cli.json(&["shows", "list", "--json"]);
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["code"] == code.as_str()),
        "{all}"
    );
}
