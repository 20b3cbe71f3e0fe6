//! The CLI client's side of the management API: plain HTTP/1.1 requests to a Tutti
//! server, the API's error envelope turned into [`CliError::Api`], and the stored login
//! (tokens per server in `<config dir>/credentials.json`, mode 0600, refreshed when the
//! access token has expired).
//!
//! Must never: print tokens or passwords, write the credentials file readable by others,
//! follow redirects to other hosts, or retry a request that is not safe to repeat (only
//! a request refused with `token_expired` is sent again, after a refresh).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The server used when none is given and none is stored.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Refresh this long before the access token's recorded expiry.
const EXPIRY_MARGIN_MS: i64 = 30_000;
/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Everything a client command can fail with; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong or missing arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server answered with its error envelope (exit 1).
    #[error("error {code}: {message}{}", details_suffix(.message, .details))]
    Api {
        /// HTTP status.
        status: u16,
        /// The envelope's stable code.
        code: String,
        /// The envelope's message.
        message: String,
        /// The envelope's details.
        details: Value,
    },
    /// The server could not be reached or answered something that is not the API (exit 3).
    #[error("{0}")]
    Connection(String),
    /// No stored login for this server, or it can no longer be refreshed (exit 4).
    #[error("not logged in to {server}{reason}: run `tutti login --server {server}`")]
    NotLoggedIn {
        /// The server.
        server: String,
        /// Why, e.g. ` (the session expired)`.
        reason: String,
    },
    /// A local file is wrong: a spec, an answers file, a pack (exit 65).
    #[error("{0}")]
    Data(String),
    /// A local file could not be read or written (exit 74).
    #[error("{0}")]
    Io(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Connection(_) => 3,
            CliError::NotLoggedIn { .. } => 4,
            CliError::Data(_) => 65,
            CliError::Io(_) => 74,
        }
    }
}

/// ` (allowed: a, b)` for invalid transitions, ` (field: problem; …)` for validation
/// errors; nothing when the message already says it.
fn details_suffix(message: &str, details: &Value) -> String {
    let s = details_text(details);
    if s.is_empty()
        || message.contains(s.trim_start().trim_start_matches('(').trim_end_matches(')'))
    {
        String::new()
    } else {
        s
    }
}

fn details_text(details: &Value) -> String {
    if let Some(allowed) = details.get("allowed").and_then(Value::as_array) {
        let list: Vec<String> = allowed
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        return format!(
            " (allowed: {})",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        );
    }
    if let Some(items) = details.as_array() {
        let parts: Vec<String> = items
            .iter()
            .filter_map(|d| {
                let field = d.get("field")?.as_str()?;
                let problem = d.get("problem").and_then(Value::as_str).unwrap_or("");
                Some(format!("{field}: {problem}"))
            })
            .collect();
        if !parts.is_empty() {
            return format!(" ({})", parts.join("; "));
        }
    }
    String::new()
}

/// A parsed `http://host[:port][/prefix]` server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    host: String,
    port: u16,
    prefix: String,
}

impl ServerUrl {
    /// Parse a server address; only plain `http://` is supported (put TLS in front of
    /// Tutti with a reverse proxy and use the CLI on the venue network).
    pub fn parse(s: &str) -> Result<ServerUrl, CliError> {
        let bad = |why: &str| CliError::Usage(format!("--server '{s}': {why}"));
        let rest = if let Some(r) = s.strip_prefix("http://") {
            r
        } else if s.starts_with("https://") {
            return Err(bad("https is not supported by the CLI; use the server's http address on the venue network"));
        } else {
            return Err(bad("must start with http://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("needs a host (and no user name)"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
                None if after.is_empty() => 80,
                None => return Err(bad("junk after the host")),
            };
            (format!("[{h}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| bad("the port is not a number"))?,
                ),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() || path.contains(['?', '#']) {
            return Err(bad("not a server address"));
        }
        Ok(ServerUrl {
            host,
            port,
            prefix: path.to_string(),
        })
    }

    /// Canonical text, the key of stored logins.
    pub fn as_string(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.prefix)
    }
}

/// A response: status and parsed JSON body (`Null` when empty, a string when not JSON).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

/// Send one request. `path` starts with `/` and is appended to the server's prefix.
pub async fn request(
    server: &ServerUrl,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> Result<Reply, CliError> {
    let fut = request_inner(server, method, path, token, body, idempotency_key);
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| {
            CliError::Connection(format!(
                "{}: no answer within {} s",
                server.as_string(),
                REQUEST_TIMEOUT.as_secs()
            ))
        })?
}

async fn request_inner(
    server: &ServerUrl,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> Result<Reply, CliError> {
    let conn_err = |e: String| CliError::Connection(format!("{}: {e}", server.as_string()));
    let addr = format!("{}:{}", server.host.trim_matches(['[', ']']), server.port);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| conn_err("connection timed out".into()))?
        .map_err(|e| conn_err(format!("cannot connect: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| conn_err(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.prefix))
        .header(
            hyper::header::HOST,
            format!("{}:{}", server.host, server.port),
        )
        .header(hyper::header::ACCEPT, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("tutti-cli/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    let bytes = match body {
        Some(b) => {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(b).map_err(|e| CliError::Usage(e.to_string()))?)
        }
        None => Bytes::new(),
    };
    let req = req
        .body(Full::new(bytes))
        .map_err(|e| CliError::Usage(format!("bad request: {e}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| conn_err(e.to_string()))?;
    let status = resp.status().as_u16();
    let collected = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| conn_err(format!("reading the response: {e}")))?
        .to_bytes();
    driver.abort();
    let body = if collected.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&collected)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&collected).into_owned()))
    };
    Ok(Reply { status, body })
}

/// Turn a non-2xx reply into [`CliError::Api`] (or a connection error when the body is
/// not the API's envelope).
pub fn check(reply: Reply, server: &ServerUrl) -> Result<Value, CliError> {
    if (200..300).contains(&reply.status) {
        return Ok(reply.body);
    }
    match reply.body.get("error") {
        Some(e) if e.get("code").is_some() => Err(CliError::Api {
            status: reply.status,
            code: e["code"].as_str().unwrap_or("unknown").to_string(),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            details: e.get("details").cloned().unwrap_or(Value::Null),
        }),
        _ => Err(CliError::Connection(format!(
            "{}: HTTP {} without the API's error envelope: {}",
            server.as_string(),
            reply.status,
            snippet(&reply.body.to_string(), 200)
        ))),
    }
}

fn snippet(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}

/// One stored login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Login {
    /// The user name logged in as.
    pub username: String,
    /// The bearer token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// When the access token expires (unix ms, as told by the server's `expires_in`).
    pub access_expires_at_ms: i64,
}

/// The credentials file: logins by server, and the server used when none is named.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    /// The last server logged in to.
    #[serde(default)]
    pub default_server: Option<String>,
    /// Logins by canonical server address.
    #[serde(default)]
    pub servers: BTreeMap<String, Login>,
}

/// Where logins are kept.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The directory: `dir` when given, else `$XDG_CONFIG_HOME/tutti`, else
    /// `$HOME/.config/tutti`.
    pub fn new(dir: Option<PathBuf>) -> Result<Store, CliError> {
        let dir =
            match dir {
                Some(d) => d,
                None => match (
                    std::env::var_os("XDG_CONFIG_HOME"),
                    std::env::var_os("HOME"),
                ) {
                    (Some(x), _) if !x.is_empty() => PathBuf::from(x).join("tutti"),
                    (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".config").join("tutti"),
                    _ => return Err(CliError::Usage(
                        "no configuration directory: set --config-dir, TUTTI_CONFIG_DIR or HOME"
                            .into(),
                    )),
                },
            };
        Ok(Store { dir })
    }

    /// The credentials file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join("credentials.json")
    }

    /// Read the file (empty when it does not exist).
    pub fn load(&self) -> Result<Credentials, CliError> {
        let path = self.path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::Data(format!(
                    "{}: not a credentials file ({e}); delete it and log in again",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(CliError::Io(format!("{}: {e}", path.display()))),
        }
    }

    /// Write the file atomically with mode 0600 (the directory 0700 when created).
    pub fn save(&self, creds: &Credentials) -> Result<(), CliError> {
        let io = |p: &Path, e: std::io::Error| CliError::Io(format!("{}: {e}", p.display()));
        if !self.dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&self.dir).map_err(|e| io(&self.dir, e))?;
        }
        let path = self.path();
        let tmp = self
            .dir
            .join(format!(".credentials.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(creds).map_err(|e| CliError::Io(e.to_string()))?;
        {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let mut f = o.open(&tmp).map_err(|e| io(&tmp, e))?;
            // The mode applies only to new files: make sure a leftover is private too.
            #[cfg(unix)]
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| io(&tmp, e))?;
            f.write_all(text.as_bytes()).map_err(|e| io(&tmp, e))?;
            f.sync_all().map_err(|e| io(&tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A login from a token response (`access_token`, `refresh_token`, `expires_in`).
pub fn login_from_tokens(username: &str, v: &Value, server: &ServerUrl) -> Result<Login, CliError> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                CliError::Connection(format!(
                    "{}: the token response has no '{k}'",
                    server.as_string()
                ))
            })
    };
    let expires_in = v.get("expires_in").and_then(Value::as_i64).unwrap_or(900);
    Ok(Login {
        username: username.to_string(),
        access_token: s("access_token")?,
        refresh_token: s("refresh_token")?,
        access_expires_at_ms: now_ms() + expires_in.saturating_mul(1000),
    })
}

/// An API session: the server, and the login when there is one.
pub struct Api {
    /// The server.
    pub server: ServerUrl,
    store: Store,
    login: Option<Login>,
}

impl Api {
    /// The server named, else the stored default, else [`DEFAULT_SERVER`]; and its login.
    pub fn open(server: Option<&str>, store: Store) -> Result<Api, CliError> {
        let creds = store.load()?;
        let server = match server {
            Some(s) => ServerUrl::parse(s)?,
            None => ServerUrl::parse(creds.default_server.as_deref().unwrap_or(DEFAULT_SERVER))?,
        };
        let login = creds.servers.get(&server.as_string()).cloned();
        Ok(Api {
            server,
            store,
            login,
        })
    }

    /// The stored login, if any.
    pub fn login(&self) -> Option<&Login> {
        self.login.as_ref()
    }

    /// The credentials store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn not_logged_in(&self, reason: &str) -> CliError {
        CliError::NotLoggedIn {
            server: self.server.as_string(),
            reason: reason.to_string(),
        }
    }

    /// Record a login for this server (and make it the default server).
    pub fn remember(&mut self, login: Login) -> Result<(), CliError> {
        let mut creds = self.store.load()?;
        let key = self.server.as_string();
        creds.servers.insert(key.clone(), login.clone());
        creds.default_server = Some(key);
        self.store.save(&creds)?;
        self.login = Some(login);
        Ok(())
    }

    /// Forget this server's login.
    pub fn forget(&mut self) -> Result<bool, CliError> {
        let mut creds = self.store.load()?;
        let key = self.server.as_string();
        let had = creds.servers.remove(&key).is_some();
        if creds.default_server.as_deref() == Some(key.as_str()) {
            creds.default_server = None;
        }
        self.store.save(&creds)?;
        self.login = None;
        Ok(had)
    }

    /// Exchange the refresh token for a new pair and store it.
    pub async fn refresh(&mut self) -> Result<(), CliError> {
        let Some(login) = self.login.clone() else {
            return Err(self.not_logged_in(""));
        };
        let body = serde_json::json!({ "refresh_token": login.refresh_token });
        let reply = request(
            &self.server,
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&body),
            None,
        )
        .await?;
        match check(reply, &self.server) {
            Ok(v) => {
                let fresh = login_from_tokens(&login.username, &v, &self.server)?;
                self.remember(fresh)
            }
            Err(CliError::Api { status: 401, .. }) => {
                self.forget()?;
                Err(self.not_logged_in(" (the session expired or was revoked)"))
            }
            Err(e) => Err(e),
        }
    }

    /// An authenticated request; refreshes the access token first when it has expired, and
    /// once more when the server says `token_expired`.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, CliError> {
        let expired = match &self.login {
            None => return Err(self.not_logged_in("")),
            Some(l) => l.access_expires_at_ms - EXPIRY_MARGIN_MS <= now_ms(),
        };
        if expired {
            self.refresh().await?;
        }
        for attempt in 0..2 {
            let token = self.login.as_ref().map(|l| l.access_token.clone());
            let reply = request(
                &self.server,
                method,
                path,
                token.as_deref(),
                body,
                idempotency_key,
            )
            .await?;
            match check(reply, &self.server) {
                Err(CliError::Api { code, .. }) if code == "token_expired" && attempt == 0 => {
                    self.refresh().await?;
                }
                other => return other,
            }
        }
        Err(self.not_logged_in(" (the token keeps expiring)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_parse_and_refuse_clearly() {
        let u = ServerUrl::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(u.as_string(), "http://127.0.0.1:9000");
        assert_eq!(
            ServerUrl::parse("http://venue.local/").unwrap().as_string(),
            "http://venue.local:80"
        );
        assert_eq!(
            ServerUrl::parse("http://[::1]:7878/tutti/")
                .unwrap()
                .as_string(),
            "http://[::1]:7878/tutti"
        );
        for (bad, why) in [
            ("https://x", "https is not supported"),
            ("ftp://x", "must start with http://"),
            ("http://", "needs a host"),
            ("http://u@h", "needs a host"),
            ("http://h:port", "port is not a number"),
            ("http://h:99999", "port is not a number"),
        ] {
            let e = ServerUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn api_errors_show_code_message_and_details() {
        let server = ServerUrl::parse(DEFAULT_SERVER).unwrap();
        let reply = Reply {
            status: 409,
            body: serde_json::json!({"error": {"code": "invalid_transition", "message": "piece 3 is archived",
                "details": {"allowed": []}, "request_id": "r1"}}),
        };
        let e = check(reply, &server).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error invalid_transition: piece 3 is archived (allowed: none)"
        );
        // Not repeated when the message already says it.
        let reply = Reply {
            status: 409,
            body: serde_json::json!({"error": {"code": "invalid_transition",
                "message": "a piece cannot go from draft to ready (allowed: rehearsal, archived)",
                "details": {"allowed": ["rehearsal", "archived"]}}}),
        };
        assert_eq!(
            check(reply, &server).unwrap_err().to_string(),
            "error invalid_transition: a piece cannot go from draft to ready (allowed: rehearsal, archived)"
        );
        assert_eq!(e.exit_code(), 1);
        let reply = Reply {
            status: 422,
            body: serde_json::json!({"error": {"code": "validation_failed", "message": "invalid body",
                "details": [{"field": "slug", "problem": "must be 1-64 characters"}]}}),
        };
        assert_eq!(
            check(reply, &server).unwrap_err().to_string(),
            "error validation_failed: invalid body (slug: must be 1-64 characters)"
        );
        let reply = Reply {
            status: 502,
            body: Value::String("Bad gateway".into()),
        };
        let e = check(reply, &server).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("HTTP 502"), "{e}");
    }

    #[test]
    fn credentials_are_saved_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Some(dir.path().join("cfg"))).unwrap();
        assert_eq!(store.load().unwrap(), Credentials::default());
        let mut creds = Credentials {
            default_server: Some("http://h:1".into()),
            ..Credentials::default()
        };
        creds.servers.insert(
            "http://h:1".into(),
            Login {
                username: "ada".into(),
                access_token: "a".into(),
                refresh_token: "r".into(),
                access_expires_at_ms: 5,
            },
        );
        store.save(&creds).unwrap();
        assert_eq!(store.load().unwrap(), creds);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = std::fs::metadata(dir.path().join("cfg"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
        std::fs::write(store.path(), "{not json").unwrap();
        let e = store.load().unwrap_err();
        assert_eq!(e.exit_code(), 65);
        assert!(e.to_string().contains("credentials.json"), "{e}");
    }
}
