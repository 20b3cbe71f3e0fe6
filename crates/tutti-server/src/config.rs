//! Configuration in layers: built-in defaults → `tutti.toml` → `TUTTI_*` environment
//! variables → command-line flags ([`Config::load`]; `sources` keeps track of which layer
//! set each value). Unknown keys in the file are refused; unknown `TUTTI_*` variables are
//! ignored with a warning; every error names the file and line, the environment variable
//! or the flag it came from. Every value is range-checked in [`Config::validate`].
//!
//! Must never: read configuration anywhere else, or start anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ServerError;

mod sources;

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
    /// Webhook deliveries.
    pub webhooks: WebhooksConfig,
    /// The management API's clock, also live chat's (posts' times, slow mode, the audience
    /// delay's release): the system's, unless a test sets a manual one
    /// (`tutti_api::Clock::manual`) to move time without waiting. No file or variable sets it.
    #[serde(skip)]
    pub api_clock: ApiClock,
}

/// The management API's clock as part of the configuration; it is no setting, so any two
/// compare equal.
#[derive(Debug, Clone, Default)]
pub struct ApiClock(pub tutti_api::Clock);

impl PartialEq for ApiClock {
    fn eq(&self, _: &ApiClock) -> bool {
        true
    }
}

/// Webhook deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Allow webhooks to loopback (`127.0.0.0/8`, `::1`, `localhost`) and private network
    /// addresses (`10/8`, `172.16/12`, `192.168/16`, `100.64/10`, `fc00::/7`), e.g. a
    /// receiver on the venue's LAN. Link-local and cloud metadata addresses and this server's
    /// own listener are refused whatever this says.
    pub allow_private: bool,
}

impl WebhooksConfig {
    /// The delivery policy, given the server's own listening address.
    pub fn target_policy(&self, listen: SocketAddr) -> tutti_events::TargetPolicy {
        tutti_events::TargetPolicy {
            allow_private: self.allow_private,
            own_listeners: vec![listen],
        }
    }
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
    /// Password hashes (argon2id, about 19 MiB each) computed at once, 0–1024; 0 = one per
    /// core. Sign-ins finding every slot busy get 429 `rate_limited` with `Retry-After`.
    pub password_hash_concurrency: usize,
    /// Guest tokens (`POST /api/v1/join/{code}/guests`) one client address may ask for per
    /// minute, 1–100000: that many at once, then refilled evenly; more get 429 `rate_limited`.
    pub guests_per_minute: u32,
    /// Largest chat attachment in bytes (1 KiB–256 MiB, default 10 MiB); larger uploads get
    /// 413 `payload_too_large` and nothing is stored.
    #[serde(default = "default_attachment_limit")]
    pub attachment_limit_bytes: usize,
    /// How long a chat bot's outgoing webhook has to answer, in milliseconds (100–60000,
    /// default 7000); past it the bot posts that it did not answer in time.
    #[serde(default = "default_bot_timeout_ms")]
    pub bot_timeout_ms: u64,
}

fn default_bot_timeout_ms() -> u64 {
    u64::try_from(tutti_api::DEFAULT_BOT_TIMEOUT.as_millis()).unwrap_or(7000)
}

fn default_attachment_limit() -> usize {
    tutti_api::DEFAULT_ATTACHMENT_LIMIT
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
            password_hash_concurrency: self.password_hash_concurrency,
            guests_per_minute: self.guests_per_minute,
            attachment_limit: self.attachment_limit_bytes,
            bot_timeout: std::time::Duration::from_millis(self.bot_timeout_ms),
        }
    }
}

/// The sound backend (`engine`, `supercollider` or `none`).
pub use tutti_sound::SoundBackend;

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

impl AudioConfig {
    /// The engine's settings.
    pub fn settings(&self) -> tutti_sound::EngineSettings {
        tutti_sound::EngineSettings {
            output: self.output.clone(),
            record: self.record,
            chain: self.chain.clone(),
        }
    }
}

impl SuperColliderConfig {
    /// The SuperCollider output's settings.
    pub fn settings(&self) -> tutti_sound::ScSettings {
        tutti_sound::ScSettings {
            server: self.server.clone(),
            tcp: self.transport == "tcp",
            latency: std::time::Duration::from_millis(u64::from(self.latency_ms)),
        }
    }
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
    /// Milliseconds a chat connection stays in its rooms' presence after its last chat frame
    /// (100–3600000; clients send `chat_here` well within it).
    #[serde(default = "default_presence_ttl_ms")]
    pub chat_presence_ttl_ms: u64,
    /// A chat room sends its followers at most one presence frame per this many
    /// milliseconds (0–60000; 0: every arrival and departure at once, which costs a frame
    /// to every follower per arrival in a big room).
    #[serde(default = "default_presence_every_ms")]
    pub chat_presence_every_ms: u64,
}

fn default_presence_ttl_ms() -> u64 {
    30_000
}

fn default_presence_every_ms() -> u64 {
    1_000
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
                chat_presence_ttl_ms: default_presence_ttl_ms(),
                chat_presence_every_ms: default_presence_every_ms(),
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
                password_hash_concurrency: 0,
                guests_per_minute: 120,
                attachment_limit_bytes: default_attachment_limit(),
                bot_timeout_ms: default_bot_timeout_ms(),
            },
            webhooks: WebhooksConfig {
                allow_private: false,
            },
            memory: crate::memory::MemorySettings::default(),
            api_clock: ApiClock::default(),
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

/// A configuration that loaded, and what was ignored on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// One line per ignored input (an unknown `TUTTI_*` environment variable), for the
    /// binary to print before it starts.
    pub warnings: Vec<String>,
}

impl Config {
    /// Load the layers. `file` is the config file (`None`: `tutti.toml` if it exists);
    /// `env` is the environment to read `TUTTI_*` from (the process's in production;
    /// tests pass their own). An unknown key in the file is an error; an unknown
    /// `TUTTI_*` variable is ignored with a warning. Every error names where the bad value
    /// was set: the file and line, the environment variable, or the flag.
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        cli: &CliOverrides,
    ) -> Result<Loaded, ServerError> {
        let sources = sources::Sources::load(file, env, cli)?;
        let config = sources.extract()?;
        if let Err((key, problem)) = config.check() {
            return Err(ServerError::Config(format!(
                "{}: {key}: {problem}",
                sources.locate(key)
            )));
        }
        Ok(Loaded {
            config,
            warnings: sources.warnings,
        })
    }

    /// Range checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ServerError> {
        self.check()
            .map_err(|(key, problem)| ServerError::Config(format!("{key}: {problem}")))
    }

    /// The first value out of range, as (dotted key, problem).
    fn check(&self) -> Result<(), (&'static str, String)> {
        let bad = |k: &'static str, m: &str| Err((k, m.to_string()));
        if self.limits.max_connections == 0 || self.limits.max_connections > 1_000_000 {
            return bad("limits.max_connections", "must be 1–1000000");
        }
        if self.limits.workers > 256 {
            return bad("limits.workers", "must be 0 (automatic) to 256");
        }
        if !(100..=3_600_000).contains(&self.limits.chat_presence_ttl_ms) {
            return bad(
                "limits.chat_presence_ttl_ms",
                "must be 100–3600000 milliseconds",
            );
        }
        if self.limits.chat_presence_every_ms > 60_000 {
            return bad(
                "limits.chat_presence_every_ms",
                "must be 0–60000 milliseconds",
            );
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
        if !(1024..=256 << 20).contains(&self.api.attachment_limit_bytes) {
            return bad("api.attachment_limit_bytes", "must be 1024–268435456");
        }
        if !(100..=60_000).contains(&self.api.bot_timeout_ms) {
            return bad("api.bot_timeout_ms", "must be 100–60000 milliseconds");
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
        if self.api.password_hash_concurrency > 1024 {
            return bad(
                "api.password_hash_concurrency",
                "must be 0 (one per core) to 1024",
            );
        }
        if !(1..=100_000).contains(&self.api.guests_per_minute) {
            return bad("api.guests_per_minute", "must be 1–100000");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(file: Option<&Path>, e: &[(String, String)]) -> Result<Loaded, String> {
        Config::load(file, e, &CliOverrides::default()).map_err(|e| e.to_string())
    }

    /// No message may show a Rust type or module path.
    fn assert_plain(e: &str) {
        for t in ["::", "struct ", "enum ", "BTreeMap", "u32", "usize", "u64"] {
            assert!(!e.contains(t), "{t:?} in: {e}");
        }
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
        let cfg = load(Some(&file), &[]).unwrap().config;
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.osc.latency_ms, 5);
        assert_eq!(cfg.data_dir, PathBuf::from("tutti-data"));

        let e = env(&[("TUTTI_LOG", "warn"), ("TUTTI_OSC__LATENCY_MS", "7")]);
        let cfg = load(Some(&file), &e).unwrap().config;
        assert_eq!(cfg.log, "warn");
        assert_eq!(cfg.osc.latency_ms, 7);
        assert_eq!(cfg.listen.port(), 9000);

        let cli = CliOverrides {
            log: Some("error".into()),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let cfg = Config::load(Some(&file), &e, &cli).unwrap().config;
        assert_eq!(cfg.log, "error");
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.osc.latency_ms, 7);
    }

    #[test]
    fn unknown_keys_in_a_file_are_refused_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tutti.toml");
        std::fs::write(&file, "log = \"info\"\n\n[osc]\ntargetz = []\n").unwrap();
        let e = load(Some(&file), &[]).unwrap_err();
        assert!(
            e.contains(&format!(
                "{}, line 4: unknown key osc.targetz",
                file.display()
            )),
            "{e}"
        );
        assert!(e.contains("the keys in [osc] are: "), "{e}");
        assert!(e.contains("latency_ms"), "{e}");
        assert_plain(&e);

        std::fs::write(&file, "bin = \"/usr/bin\"\n").unwrap();
        let e = load(Some(&file), &[]).unwrap_err();
        assert!(
            e.contains("line 1: unknown key bin (the keys at the top level"),
            "{e}"
        );
        assert_plain(&e);

        // Not TOML at all: the line and column of the syntax error.
        std::fs::write(&file, "log = \"info\"\nlisten = \n").unwrap();
        let e = load(Some(&file), &[]).unwrap_err();
        assert!(e.contains("line 2, column"), "{e}");
        assert!(e.contains("not valid TOML"), "{e}");
    }

    #[test]
    fn unknown_environment_variables_are_ignored_with_a_warning() {
        let e = env(&[
            ("TUTTI_HOME", "/opt/tutti"),
            ("TUTTI_BIN", "/opt/tutti/bin"),
            ("TUTTI_OSC__TARGETZ", "[]"),
            ("TUTTI_OSC", "x"),
            ("TUTTI_LOG", "debug"),
            ("HOME", "/root"),
        ]);
        let loaded = load(None, &e).unwrap();
        assert_eq!(loaded.config.log, "debug");
        assert_eq!(loaded.warnings.len(), 4, "{:?}", loaded.warnings);
        for (w, var) in loaded.warnings.iter().zip([
            "TUTTI_HOME",
            "TUTTI_BIN",
            "TUTTI_OSC__TARGETZ",
            "TUTTI_OSC",
        ]) {
            assert!(
                w.starts_with(&format!("ignoring the environment variable {var}: ")),
                "{w}"
            );
            assert_plain(w);
        }
        // Nothing else changed.
        let plain = load(None, &env(&[("TUTTI_LOG", "debug")])).unwrap();
        assert_eq!(plain.config, loaded.config);
        assert!(plain.warnings.is_empty());
    }

    #[test]
    fn bad_values_name_where_they_were_set() {
        let e = load(None, &env(&[("TUTTI_OSC__LATENCY_MS", "5000")])).unwrap_err();
        assert_eq!(
            e,
            "configuration: environment variable TUTTI_OSC__LATENCY_MS: osc.latency_ms: must be 0–1000"
        );
        let e = load(None, &env(&[("TUTTI_API__BODY_LIMIT_BYTES", "12")])).unwrap_err();
        assert!(
            e.contains("environment variable TUTTI_API__BODY_LIMIT_BYTES: api.body_limit_bytes"),
            "{e}"
        );
        let e = load(None, &env(&[("TUTTI_API__ACCESS_TOKEN_TTL_S", "5")])).unwrap_err();
        assert!(e.contains("api.access_token_ttl_s"), "{e}");
        let e = load(None, &env(&[("TUTTI_LISTEN", "not-an-address")])).unwrap_err();
        assert!(
            e.starts_with("configuration: environment variable TUTTI_LISTEN: listen: "),
            "{e}"
        );
        assert_plain(&e);
        let e = load(None, &env(&[("TUTTI_OSC__LATENCY_MS", "soon")])).unwrap_err();
        assert!(
            e.contains("environment variable TUTTI_OSC__LATENCY_MS: osc.latency_ms: expected a whole number"),
            "{e}"
        );
        assert_plain(&e);
        let e = load(None, &env(&[("TUTTI_SOUND", "loud")])).unwrap_err();
        assert!(
            e.contains("TUTTI_SOUND: sound: \"loud\" is not one of"),
            "{e}"
        );
        assert_plain(&e);

        // In a file: the file and the line.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tutti.toml");
        std::fs::write(&file, "log = \"info\"\n[limits]\nmax_connections = 0\n").unwrap();
        let e = load(Some(&file), &[]).unwrap_err();
        assert_eq!(
            e,
            format!(
                "configuration: {}, line 3: limits.max_connections: must be 1–1000000",
                file.display()
            )
        );
        std::fs::write(&file, "[limits]\nworkers = \"many\"\n").unwrap();
        let e = load(Some(&file), &[]).unwrap_err();
        assert!(
            e.contains(&format!(
                "{}, line 2: limits.workers: expected a whole number",
                file.display()
            )),
            "{e}"
        );
        assert_plain(&e);
        std::fs::write(&file, "limits = 5\n").unwrap();
        let e = load(Some(&file), &[]).unwrap_err();
        assert!(e.contains("line 1: limits: expected a table"), "{e}");
        assert_plain(&e);

        // From a flag: the flag.
        let cli = CliOverrides {
            performer_token: Some("short".into()),
            ..Default::default()
        };
        let e = Config::load(None, &[], &cli).unwrap_err().to_string();
        assert_eq!(
            e,
            "configuration: flag --performer-token: performer_token: must be 8–64 characters"
        );

        let missing = load(Some(Path::new("/nonexistent/tutti.toml")), &[]).unwrap_err();
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
