//! A signed-in session with a server: the stored logins (tokens per server in
//! `<config dir>/credentials.json`, mode 0600, written atomically) and [`Api::call`], an
//! authenticated request that refreshes the access token when it has expired.
//!
//! Must never: print tokens or passwords, write the credentials file readable by others,
//! or retry a request that is not safe to repeat (only a request refused with
//! `token_expired` is sent again, after a refresh).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ClientError;
use crate::http::{check, request, ServerUrl};

/// The server used when none is given and none is stored.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";
/// Refresh this long before the access token's recorded expiry.
const EXPIRY_MARGIN_MS: i64 = 30_000;

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
    pub fn new(dir: Option<PathBuf>) -> Result<Store, ClientError> {
        let dir =
            match dir {
                Some(d) => d,
                None => match (
                    std::env::var_os("XDG_CONFIG_HOME"),
                    std::env::var_os("HOME"),
                ) {
                    (Some(x), _) if !x.is_empty() => PathBuf::from(x).join("tutti"),
                    (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".config").join("tutti"),
                    _ => return Err(ClientError::Usage(
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
    pub fn load(&self) -> Result<Credentials, ClientError> {
        let path = self.path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                ClientError::Data(format!(
                    "{}: not a credentials file ({e}); delete it and log in again",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(ClientError::Io(format!("{}: {e}", path.display()))),
        }
    }

    /// Write the file atomically with mode 0600 (the directory 0700 when created).
    pub fn save(&self, creds: &Credentials) -> Result<(), ClientError> {
        let io = |p: &Path, e: std::io::Error| ClientError::Io(format!("{}: {e}", p.display()));
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
        let text =
            serde_json::to_string_pretty(creds).map_err(|e| ClientError::Io(e.to_string()))?;
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
pub fn login_from_tokens(
    username: &str,
    v: &Value,
    server: &ServerUrl,
) -> Result<Login, ClientError> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ClientError::Connection(format!(
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
    pub fn open(server: Option<&str>, store: Store) -> Result<Api, ClientError> {
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

    fn not_logged_in(&self, reason: &str) -> ClientError {
        ClientError::NotLoggedIn {
            server: self.server.as_string(),
            reason: reason.to_string(),
        }
    }

    /// Record a login for this server (and make it the default server).
    pub fn remember(&mut self, login: Login) -> Result<(), ClientError> {
        let mut creds = self.store.load()?;
        let key = self.server.as_string();
        creds.servers.insert(key.clone(), login.clone());
        creds.default_server = Some(key);
        self.store.save(&creds)?;
        self.login = Some(login);
        Ok(())
    }

    /// Forget this server's login.
    pub fn forget(&mut self) -> Result<bool, ClientError> {
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
    pub async fn refresh(&mut self) -> Result<(), ClientError> {
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
            Err(ClientError::Api { status: 401, .. }) => {
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
    ) -> Result<Value, ClientError> {
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
                Err(ClientError::Api { code, .. }) if code == "token_expired" && attempt == 0 => {
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
