//! Configuration in layers: built-in defaults → `tutti.toml` → `TUTTI_*` environment
//! variables → command-line flags. Unknown keys are rejected with their name and the
//! layer they came from; every value is range-checked in [`Config::validate`].
//!
//! Must never: read configuration anywhere else, or start anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::error::ServerError;

/// The whole effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP/WebSocket server listens on.
    pub listen: SocketAddr,
    /// Directory of the embedded store (created if missing).
    pub data_dir: PathBuf,
    /// Base URL for join links and QR codes (default: `http://<listen>`).
    pub public_url: String,
    /// A piece spec (TOML) to run instead of the built-in demo.
    pub piece: Option<PathBuf>,
    /// A directory of extra domain packs (`*.json`) for the guided setup; a pack with a
    /// built-in id replaces it. A broken pack stops the server at start.
    pub packs_dir: Option<PathBuf>,
    /// Token performers use on `/perform`; empty = a random one is made at start and printed.
    pub performer_token: String,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive).
    pub log: String,
    /// Start the default show live at start-up (a demo needs no performer to press start).
    pub auto_start: bool,
    /// What makes the sound: `engine` (the embedded audio engine, default),
    /// `supercollider` (a running scsynth) or `none` (OSC only).
    pub sound: SoundBackend,
    /// SuperCollider settings (used when `sound = "supercollider"`).
    pub supercollider: SuperColliderConfig,
    /// The embedded audio engine (used when `sound = "engine"`).
    pub audio: AudioConfig,
    /// OSC output and input.
    pub osc: OscConfig,
    /// Connection and input limits.
    pub limits: LimitsConfig,
    /// Storage tuning.
    pub store: StoreTuning,
    /// The management API (`/api/v1`).
    pub api: ApiSettings,
    /// The performance memory (shows as episodes, live suggestions, `/api/v1/memory`).
    #[serde(default)]
    pub memory: crate::memory::MemorySettings,
}

/// The management API's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Largest accepted request body in bytes (1 KiB–64 MiB); larger gets 413.
    pub body_limit_bytes: usize,
    /// Lifetime of an access token in seconds (60–86400).
    pub access_token_ttl_s: u64,
    /// Lifetime of a refresh token in seconds (300–31536000).
    pub refresh_token_ttl_s: u64,
    /// Lifetime of a page session cookie in seconds (300–2592000).
    pub session_ttl_s: u64,
    /// Mark session cookies `Secure` (set when Tutti is served over HTTPS).
    pub secure_cookies: bool,
}

impl ApiSettings {
    /// The API crate's configuration for a base URL.
    pub fn to_api_config(&self, base_url: String) -> tutti_api::ApiConfig {
        tutti_api::ApiConfig {
            body_limit: self.body_limit_bytes,
            access_ttl_s: self.access_token_ttl_s,
            refresh_ttl_s: self.refresh_token_ttl_s,
            session_ttl_s: self.session_ttl_s,
            base_url,
            secure_cookies: self.secure_cookies,
        }
    }
}

/// The sound backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoundBackend {
    /// Tutti's own audio engine.
    Engine,
    /// A real scsynth over OSC.
    Supercollider,
    /// No sound from Tutti; OSC targets only.
    None,
}

/// The embedded audio engine's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// `auto` (the sound card, or the null sink when there is none), `soundcard` or `null`.
    pub output: String,
    /// Record every show to `<data_dir>/recordings/<code>-<time>.wav`.
    pub record: bool,
    /// A chain file (TOML, as for `tutti dsp`) for the master chain instead of the default.
    pub chain: Option<PathBuf>,
}

/// How to reach scsynth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperColliderConfig {
    /// `host:port` of scsynth.
    pub server: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// How far ahead parameter bundles are scheduled, in ms (0–1000).
    pub latency_ms: u32,
}

/// OSC settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscConfig {
    /// UDP targets that receive one bundle per tick.
    pub targets: Vec<SocketAddr>,
    /// Where performer commands are received; `None` disables OSC input.
    pub listen: Option<SocketAddr>,
    /// How far ahead bundles are timestamped, in milliseconds (0–1000).
    pub latency_ms: u32,
}

/// Limits on what the outside world may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most simultaneous WebSocket connections; more get HTTP 503.
    pub max_connections: usize,
    /// Seconds a disconnected participant's slot is kept for a resume.
    pub resume_grace_s: u32,
    /// Threads of the async runtime (connections, fan-out, HTTP); 0 = one per core. Fewer
    /// leave cores to other work on the laptop; one per core carries more phones when the
    /// machine is saturated (BENCHMARKS.md, "Live hub under load": 4.6 against 2.4 states
    /// per phone per second at 4× overload on 2 cores). The tick has its own thread
    /// either way.
    #[serde(default)]
    pub workers: usize,
}

impl LimitsConfig {
    /// Runtime threads to start: `workers`, or one per core.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Storage tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreTuning {
    /// Capacity of the writer queue.
    pub writer_queue: usize,
    /// Read connections.
    pub readers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir: PathBuf::from("tutti-data"),
            public_url: String::new(),
            piece: None,
            packs_dir: None,
            performer_token: String::new(),
            log: "info".into(),
            auto_start: true,
            sound: SoundBackend::Engine,
            audio: AudioConfig {
                output: "auto".into(),
                record: false,
                chain: None,
            },
            supercollider: SuperColliderConfig {
                server: "127.0.0.1:57110".into(),
                transport: "udp".into(),
                latency_ms: 50,
            },
            osc: OscConfig {
                targets: Vec::new(),
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 7879))),
                latency_ms: 20,
            },
            limits: LimitsConfig {
                max_connections: 15_000,
                resume_grace_s: 120,
                workers: 0,
            },
            store: StoreTuning {
                writer_queue: 4096,
                readers: 2,
            },
            api: ApiSettings {
                body_limit_bytes: 2 << 20,
                access_token_ttl_s: 900,
                refresh_token_ttl_s: 30 * 86_400,
                session_ttl_s: 12 * 3600,
                secure_cookies: false,
            },
            memory: crate::memory::MemorySettings::default(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CliOverrides {
    /// `--listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--public-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `--piece`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piece: Option<PathBuf>,
    /// `--performer-token`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performer_token: Option<String>,
    /// `--log`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// `--sound`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sound: Option<SoundBackend>,
    /// `--osc-target` (repeatable) and `--osc-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub osc: Option<CliOsc>,
}

/// OSC flags.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CliOsc {
    /// `--osc-target`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<SocketAddr>>,
    /// `--osc-listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Load the layers. `file` is the config file (`None`: `tutti.toml` if it exists);
    /// `env` is the environment to read `TUTTI_*` from (the process's in production;
    /// tests pass their own).
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        cli: &CliOverrides,
    ) -> Result<Config, ServerError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ServerError::Config(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                fig = fig.merge(Toml::file_exact(path));
            }
            None => {
                let default = Path::new("tutti.toml");
                if default.is_file() {
                    fig = fig.merge(Toml::file_exact(default));
                }
            }
        }
        // Figment's Env provider reads the process environment; to keep tests hermetic
        // we feed it the given pairs through a TOML-valued dictionary instead.
        let mut dict = figment::value::Dict::new();
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("TUTTI_") else {
                continue;
            };
            if rest == "CONFIG" {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let value: figment::value::Value = v
                .parse::<figment::value::Value>()
                .unwrap_or_else(|_| figment::value::Value::from(v.clone()));
            insert_path(&mut dict, &path, value);
        }
        if !dict.is_empty() {
            fig = fig.merge(Serialized::globals(dict).profile(figment::Profile::Default));
        }
        fig = fig.merge(Serialized::defaults(cli));
        let _ = Env::prefixed("TUTTI_"); // the naming scheme we follow: TUTTI_OSC__LATENCY_MS
        let cfg: Config = fig
            .extract()
            .map_err(|e| ServerError::Config(describe_figment_error(e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Range checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad = |k: &str, m: &str| Err(ServerError::Config(format!("{k}: {m}")));
        if self.limits.max_connections == 0 || self.limits.max_connections > 1_000_000 {
            return bad("limits.max_connections", "must be 1–1000000");
        }
        if self.limits.workers > 256 {
            return bad("limits.workers", "must be 0 (automatic) to 256");
        }
        if self.limits.resume_grace_s > 86_400 {
            return bad("limits.resume_grace_s", "must be at most 86400 seconds");
        }
        if !matches!(self.audio.output.as_str(), "auto" | "soundcard" | "null") {
            return bad(
                "audio.output",
                "must be \"auto\", \"soundcard\" or \"null\"",
            );
        }
        if !matches!(self.supercollider.transport.as_str(), "udp" | "tcp") {
            return bad("supercollider.transport", "must be \"udp\" or \"tcp\"");
        }
        if self.supercollider.latency_ms > 1000 {
            return bad("supercollider.latency_ms", "must be 0–1000");
        }
        if self.supercollider.server.trim().is_empty() {
            return bad("supercollider.server", "must be host:port");
        }
        if self.osc.latency_ms > 1000 {
            return bad("osc.latency_ms", "must be 0–1000");
        }
        if self.osc.targets.len() > 64 {
            return bad("osc.targets", "at most 64 targets");
        }
        if self.store.writer_queue < 16 || self.store.writer_queue > 1_000_000 {
            return bad("store.writer_queue", "must be 16–1000000");
        }
        if self.store.readers == 0 || self.store.readers > 64 {
            return bad("store.readers", "must be 1–64");
        }
        if !(1..=600).contains(&self.memory.moment_every_s) {
            return bad("memory.moment_every_s", "must be 1–600 seconds");
        }
        if !(1024..=64 << 20).contains(&self.api.body_limit_bytes) {
            return bad("api.body_limit_bytes", "must be 1024–67108864");
        }
        if !(60..=86_400).contains(&self.api.access_token_ttl_s) {
            return bad("api.access_token_ttl_s", "must be 60–86400 seconds");
        }
        if !(300..=31_536_000).contains(&self.api.refresh_token_ttl_s) {
            return bad("api.refresh_token_ttl_s", "must be 300–31536000 seconds");
        }
        if self.api.refresh_token_ttl_s < self.api.access_token_ttl_s {
            return bad(
                "api.refresh_token_ttl_s",
                "must be at least api.access_token_ttl_s",
            );
        }
        if !(300..=2_592_000).contains(&self.api.session_ttl_s) {
            return bad("api.session_ttl_s", "must be 300–2592000 seconds");
        }
        let url = &self.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return bad("public_url", "must start with http:// or https://");
        }
        if !self.performer_token.is_empty()
            && (self.performer_token.len() < 8 || self.performer_token.len() > 64)
        {
            return bad("performer_token", "must be 8–64 characters");
        }
        Ok(())
    }

    /// The effective configuration as TOML (what `tutti config show` prints).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if !shown.performer_token.is_empty() {
            shown.performer_token = "********".into();
        }
        toml::to_string_pretty(&shown).expect("config always serialises")
    }

    /// The base URL for links.
    pub fn base_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }
}

fn insert_path(dict: &mut figment::value::Dict, path: &[String], value: figment::value::Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| figment::value::Value::from(figment::value::Dict::new()));
            if let figment::value::Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            } else {
                let mut inner = figment::value::Dict::new();
                insert_path(&mut inner, rest, value);
                *entry = figment::value::Value::from(inner);
            }
        }
    }
}

fn describe_figment_error(e: figment::Error) -> String {
    e.into_iter()
        .map(|err| {
            let key = err.path.join(".");
            let source = err
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(figment::Source::File(p)) => format!(" (in {})", p.display()),
                    _ if m.name.contains("Dict") || m.name.contains("Serialized") => {
                        " (from TUTTI_* environment or flags)".to_string()
                    }
                    _ => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", err.kind)
            } else {
                format!("{key}: {}{source}", err.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tutti.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n[osc]\nlatency_ms = 5\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &[], &CliOverrides::default()).unwrap();
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.osc.latency_ms, 5);
        assert_eq!(cfg.data_dir, PathBuf::from("tutti-data"));

        let e = env(&[("TUTTI_LOG", "warn"), ("TUTTI_OSC__LATENCY_MS", "7")]);
        let cfg = Config::load(Some(&file), &e, &CliOverrides::default()).unwrap();
        assert_eq!(cfg.log, "warn");
        assert_eq!(cfg.osc.latency_ms, 7);
        assert_eq!(cfg.listen.port(), 9000);

        let cli = CliOverrides {
            log: Some("error".into()),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let cfg = Config::load(Some(&file), &e, &cli).unwrap();
        assert_eq!(cfg.log, "error");
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.osc.latency_ms, 7);
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tutti.toml");
        std::fs::write(&file, "[osc]\ntargetz = []\n").unwrap();
        let e = Config::load(Some(&file), &[], &CliOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("targetz"), "{e}");
        assert!(e.contains("tutti.toml"), "{e}");

        let e = Config::load(
            None,
            &env(&[("TUTTI_COLOUR", "red")]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::load(
            None,
            &env(&[("TUTTI_OSC__LATENCY_MS", "5000")]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("osc.latency_ms"), "{e}");
        let e = Config::load(
            None,
            &env(&[("TUTTI_API__BODY_LIMIT_BYTES", "12")]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("api.body_limit_bytes"), "{e}");
        let e = Config::load(
            None,
            &env(&[("TUTTI_API__ACCESS_TOKEN_TTL_S", "5")]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("api.access_token_ttl_s"), "{e}");
        let e = Config::load(
            None,
            &env(&[("TUTTI_LISTEN", "not-an-address")]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("listen"), "{e}");
        let missing = Config::load(
            Some(Path::new("/nonexistent/tutti.toml")),
            &[],
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(missing.contains("/nonexistent/tutti.toml"), "{missing}");
    }

    #[test]
    fn show_masks_the_token() {
        let cfg = Config {
            performer_token: "supersecret".into(),
            ..Config::default()
        };
        let text = cfg.to_toml();
        assert!(!text.contains("supersecret"));
        assert!(text.contains("listen = \"127.0.0.1:7878\""));
    }
}
