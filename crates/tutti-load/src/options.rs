//! Command-line options of `tutti load` and their validation into a [`Plan`].
//!
//! Every count, fraction and time has a stated limit, and a value outside it is an error
//! that names the option. The binary flattens [`LoadOptions`] into its `load` subcommand.
//!
//! Must never: start anything, open sockets or read the system; that is `run`'s job.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::LoadError;

/// Most clients one process may be asked for (the file-descriptor limit usually binds
/// first: see the crate documentation).
pub const MAX_CLIENTS: u32 = 100_000;
/// Fastest ramp, in new connections per second.
pub const MAX_RAMP: f64 = 20_000.0;
/// Most inputs per second per moving client.
pub const MAX_RATE: f64 = 100.0;
/// Longest steady phase.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Longest hard cap on a whole run.
pub const MAX_MAX_DURATION: Duration = Duration::from_secs(7200);
/// Most client threads.
pub const MAX_THREADS: usize = 64;
/// Most source addresses.
pub const MAX_SOURCE_ADDRS: usize = 1024;
/// Time a run needs beyond ramp and steady phase (settle and close), within `--max-duration`.
pub const TAIL_MARGIN: Duration = Duration::from_secs(5);
/// Time calibration adds to a run.
pub const CALIBRATION_TIME: Duration = Duration::from_secs(2);
/// Most attackers of each kind (`--garbage`, `--silent`, `--churn`).
pub const MAX_ATTACKERS: u32 = 20_000;
/// Fastest garbage rate, in frames per second per garbage client.
pub const MAX_GARBAGE_RATE: f64 = 1000.0;
/// Fastest churn rate, in connections per second per churner.
pub const MAX_CHURN_RATE: f64 = 100.0;
/// Largest clock drift `--sync-drift-ppm` may give the clients' clocks.
pub const MAX_SYNC_DRIFT_PPM: f64 = 500.0;
/// Fastest `--cues` rate, in cues per second (the server takes at most 10 a second from a
/// performer connection and refuses more with `rate_limited`).
pub const MAX_CUE_RATE: f64 = 10.0;
/// Slowest `--cues` rate, in cues per second.
pub const MIN_CUE_RATE: f64 = 0.1;
/// Most rooms `--chat-rooms` may ask for.
pub const MAX_CHAT_ROOMS: u32 = 1000;
/// Most users per room `--chat-users` may ask for (a closed room is made with at most 1,000
/// members besides its creator).
pub const MAX_CHAT_USERS: u32 = 1000;

/// Options of `tutti load` (flatten into a clap command with `#[command(flatten)]`).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct LoadOptions {
    /// WebSocket URL of the live hub (plain ws:// only).
    #[arg(long, default_value = "ws://127.0.0.1:7878/live/v1")]
    pub url: String,
    /// Show join code (absent: the server's default show).
    #[arg(long)]
    pub show: Option<String>,
    /// Number of WebSocket clients (1–100000; one process holds at most its
    /// file-descriptor limit minus a margin: run several processes for more).
    #[arg(long, default_value_t = 100)]
    pub clients: u32,
    /// New connections per second while ramping up (1–20000).
    #[arg(long, default_value_t = 500.0)]
    pub ramp: f64,
    /// Local source addresses to spread connections over, e.g. `127.0.0.1-127.0.0.8` or
    /// `127.0.0.1,127.0.0.2` (at most 1024; about 28,000 connections fit per address).
    /// Absent: the system picks.
    #[arg(long)]
    pub source_addrs: Option<String>,
    /// Inputs per second per moving client (0.1–100).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Fraction of clients that send inputs (0–1).
    #[arg(long, default_value_t = 1.0)]
    pub moving: f64,
    /// Fraction of inputs that are votes rather than slider moves (0–1).
    #[arg(long, default_value_t = 0.1)]
    pub votes: f64,
    /// Fraction of clients that are slow readers, reading one frame a second (0–1; they
    /// send no inputs, so `--moving` + `--slow` ≤ 1).
    #[arg(long, default_value_t = 0.0)]
    pub slow: f64,
    /// Threads that run the clients, each a single-threaded runtime (1–64). One is the
    /// leanest; add threads only when the generator needs more than one core.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Length of the measured steady phase after the ramp, e.g. `30s`, `5m` (1 s–1 h).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Hard cap on the whole run, ramp and calibration included (1 s–2 h).
    #[arg(long, default_value = "10m")]
    pub max_duration: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// First measure the machine's raw loopback TCP floor, then report the server's CPU
    /// per message as a ratio to it (needs `--server-pid`).
    #[arg(long)]
    pub calibrate: bool,
    /// Process id of the server, to report its CPU and memory (Linux /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Attackers: clients that join, then send garbage frames (invalid JSON, unknown
    /// types, 5 KiB frames, non-finite and mistyped values, unknown parameters, out-of-range
    /// values, binary frames) at `--garbage-rate` (0–20000). Counted apart from the
    /// honest clients.
    #[arg(long, default_value_t = 0)]
    pub garbage: u32,
    /// Garbage frames per second per garbage client (0.1–1000).
    #[arg(long, default_value_t = 20.0)]
    pub garbage_rate: f64,
    /// Attackers: clients that connect, join and never read, so their receive buffers
    /// fill (0–20000).
    #[arg(long, default_value_t = 0)]
    pub silent: u32,
    /// Attackers: clients that open a WebSocket, join and close, in a loop at
    /// `--churn-rate` (0–20000).
    #[arg(long, default_value_t = 0)]
    pub churn: u32,
    /// Connections per second per churner (0.1–100).
    #[arg(long, default_value_t = 5.0)]
    pub churn_rate: f64,
    /// Clock sync: every reading client (slow readers excepted) also keeps its own clock
    /// in step with the show clock as a phone page does (`tutti_sync::Estimator`, `sync`
    /// exchanges at its pace, a `sync_report` every 5 s), and the report gives each
    /// estimate's true error, measured against a reference connection (`--sync-reference`).
    #[arg(long)]
    pub sync: bool,
    /// With `--sync`: the URL of the reference connection that finds the true show clock
    /// (absent: `--url`). It must reach the same server over a path with a tiny round trip
    /// (loopback, or a clean link beside the one under test); the report gives its bound.
    #[arg(long)]
    pub sync_reference: Option<String>,
    /// With `--sync`: each client's clock runs fast or slow by up to this many parts per
    /// million (uniform, one rate per client; 0–500). Every client's clock also starts at
    /// its own random offset of up to an hour either way.
    #[arg(long, default_value_t = 0.0)]
    pub sync_drift_ppm: f64,
    /// Cues (issue 15): one performer connection (`--performer-token`) sends `cue` frames
    /// at this many per second (0.1–10) through the measured window, and every reading
    /// client records each `cue` it receives; the report gives how many of the deliveries
    /// came before their time (`at`), their margins, the late and the missing ones, timed
    /// against the show clock found by a reference connection (`--sync-reference`).
    #[arg(long, value_name = "RATE")]
    pub cues: Option<f64>,
    /// With `--cues`: the server's performer token (`tutti serve --performer-token`), for
    /// the performer connection that sends the cues.
    #[arg(long, value_name = "TOKEN")]
    pub performer_token: Option<String>,
    /// With `--cues`: the phone voice every cue plays (absent: the piece's voices in turn,
    /// from `welcome`'s `phone.voices`).
    #[arg(long, value_name = "NAME")]
    pub cue_voice: Option<String>,
    /// Chat (issue 12): every reading client (slow readers excepted) also follows its
    /// show's room over its socket (`chat_name`, `chat_sub`), and this many of them post
    /// (`--chat-rate` messages a second in all) through the measured window; every delivery
    /// is checked against the room's sequence (no gap, no duplicate, in order) and timed
    /// from post to delivery.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chat_senders: u32,
    /// With `--chat-senders`: messages per second in all (at most 4 per sender, under the
    /// server's 5 chat changes a second per connection; at most 10,000).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub chat_rate: f64,
    /// Chat reconnect storm (issue 12), instead of the usual run: `--clients` phones follow
    /// the show's room, drop at once, the room moves this many events on (1–10,000), and
    /// every phone reconnects at the same moment and follows it again from its last
    /// `room_seq`; each must get exactly what it missed. Uses `--threads` worker threads.
    #[arg(long, value_name = "EVENTS_BEHIND")]
    pub chat_storm: Option<u64>,
    /// Chat in many rooms (issue 12), instead of the show's: this many closed rooms (1–1000),
    /// each with `--chat-users` staff accounts as members, made through the management API
    /// before the run (with `--admin`); every user holds one connection per room, signed in
    /// with `chat_auth` and following that room only (no show is joined: `--clients`,
    /// `--rate`, `--moving`, `--votes` and `--slow` do not apply). `--chat-senders`
    /// connections (spread evenly over the rooms, at least one a room) post `--chat-rate`
    /// messages a second in all through the window; every delivery is checked against its
    /// room's sequence and timed from post to delivery.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chat_rooms: u32,
    /// With `--chat-rooms`: users in every room (1–1000), each a staff account (role crew)
    /// made for the run, so `--chat-rooms` × `--chat-users` connections in all.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chat_users: u32,
    /// With `--chat-rooms`: the admin account that makes the users and rooms, as
    /// `USER:PASSWORD`. On a server that has no account yet it is made by first-run setup
    /// (`POST /api/v1/setup`); otherwise it signs in.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub admin: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            opts: LoadOptions,
        }
        <Wrapper as clap::Parser>::parse_from(["tutti-load"]).opts
    }
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Host name or address (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Validated options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub target: Target,
    pub show: Option<String>,
    pub clients: u32,
    pub ramp: f64,
    pub source_addrs: Vec<IpAddr>,
    pub rate: f64,
    pub moving: f64,
    pub votes: f64,
    pub slow: f64,
    pub threads: usize,
    pub duration: Duration,
    pub max_duration: Duration,
    pub calibrate: bool,
    pub server_pid: Option<u32>,
    pub garbage: u32,
    pub garbage_rate: f64,
    pub silent: u32,
    pub churn: u32,
    pub churn_rate: f64,
    /// With `--sync`: the reference connection's target and the clients' largest drift.
    pub sync: Option<SyncPlan>,
    /// With `--cues`: the performer's rate, token and voice, and the reference's target.
    pub cues: Option<CuePlan>,
    /// With `--chat-senders`: how many post, and how fast in all.
    pub chat: Option<ChatPlan>,
    /// With `--chat-rooms`: the rooms, their users and the admin who makes them.
    pub rooms: Option<RoomsPlan>,
}

/// What `--chat-rooms` asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RoomsPlan {
    pub rooms: u32,
    /// Users per room (every user is in every room).
    pub users: u32,
    pub admin_user: String,
    pub admin_password: String,
}

/// What `--chat-senders` asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatPlan {
    pub senders: u32,
    /// Messages per second in all.
    pub rate: f64,
}

/// What `--cues` asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CuePlan {
    /// Cues per second.
    pub rate: f64,
    pub token: String,
    /// `--cue-voice`, checked against the piece's voices once `welcome` names them.
    pub voice: Option<String>,
    /// The reference connection that maps this machine's clock to the show clock.
    pub reference: Target,
}

/// What `--sync` asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyncPlan {
    pub reference: Target,
    pub drift_ppm: f64,
}

impl Plan {
    /// Seconds the ramp takes (attackers ramp up with the honest clients).
    pub fn ramp_time(&self) -> Duration {
        Duration::from_secs_f64(self.connections() as f64 / self.ramp)
    }

    /// Attackers of every kind.
    pub fn attackers(&self) -> u64 {
        u64::from(self.garbage) + u64::from(self.silent) + u64::from(self.churn)
    }

    /// Connections open at once at most: every client and attacker (a churner holds one
    /// at a time).
    pub fn connections(&self) -> u64 {
        u64::from(self.clients) + self.attackers()
    }
}

fn fraction(option: &'static str, v: f64) -> Result<f64, LoadError> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(LoadError::option(
            option,
            format!("must be a fraction between 0 and 1 (got {v})"),
        ));
    }
    Ok(v)
}

fn within(option: &'static str, v: f64, lo: f64, hi: f64, unit: &str) -> Result<f64, LoadError> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(LoadError::option(
            option,
            format!("must be within {lo}–{hi} {unit} (got {v})"),
        ));
    }
    Ok(v)
}

impl LoadOptions {
    /// Check every option against its limits.
    pub fn validate(&self) -> Result<(), LoadError> {
        self.plan().map(|_| ())
    }

    pub(crate) fn plan(&self) -> Result<Plan, LoadError> {
        let target = parse_url(&self.url)?;
        if let Some(show) = &self.show {
            if show.is_empty() || show.len() > tutti_protocol::MAX_NAME {
                return Err(LoadError::option(
                    "--show",
                    format!("a show code is 1–{} characters", tutti_protocol::MAX_NAME),
                ));
            }
        }
        let rooms = self.rooms_plan()?;
        // With many rooms, the connections are the rooms' users, not --clients.
        let clients = rooms.as_ref().map_or(self.clients, |r| r.rooms * r.users);
        if rooms.is_none() && (self.clients == 0 || self.clients > MAX_CLIENTS) {
            return Err(LoadError::option(
                "--clients",
                format!("must be within 1–{MAX_CLIENTS} (got {})", self.clients),
            ));
        }
        let ramp = within("--ramp", self.ramp, 1.0, MAX_RAMP, "connections per second")?;
        let source_addrs = match &self.source_addrs {
            None => Vec::new(),
            Some(s) => parse_source_addrs(s)?,
        };
        let rate = within("--rate", self.rate, 0.1, MAX_RATE, "inputs per second")?;
        let moving = fraction("--moving", self.moving)?;
        let votes = fraction("--votes", self.votes)?;
        let slow = fraction("--slow", self.slow)?;
        if moving + slow > 1.0 + 1e-9 {
            return Err(LoadError::option(
                "--slow",
                format!(
                    "slow readers send no inputs, so --moving ({moving}) + --slow ({slow}) must be at most 1"
                ),
            ));
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(LoadError::option(
                "--threads",
                format!("must be within 1–{MAX_THREADS} (got {})", self.threads),
            ));
        }
        let duration = parse_duration("--duration", &self.duration)?;
        if duration < Duration::from_secs(1) || duration > MAX_DURATION {
            return Err(LoadError::option(
                "--duration",
                format!(
                    "must be within 1 s–{} s (got {duration:?})",
                    MAX_DURATION.as_secs()
                ),
            ));
        }
        let max_duration = parse_duration("--max-duration", &self.max_duration)?;
        if max_duration < Duration::from_secs(1) || max_duration > MAX_MAX_DURATION {
            return Err(LoadError::option(
                "--max-duration",
                format!(
                    "must be within 1 s–{} s (got {max_duration:?})",
                    MAX_MAX_DURATION.as_secs()
                ),
            ));
        }
        if self.calibrate && self.server_pid.is_none() {
            return Err(LoadError::option(
                "--calibrate",
                "needs --server-pid: the ratio is the server's CPU per message over the floor",
            ));
        }
        if self.server_pid == Some(0) {
            return Err(LoadError::option("--server-pid", "0 is not a process id"));
        }
        for (option, n) in [
            ("--garbage", self.garbage),
            ("--silent", self.silent),
            ("--churn", self.churn),
        ] {
            if n > MAX_ATTACKERS {
                return Err(LoadError::option(
                    option,
                    format!("must be within 0–{MAX_ATTACKERS} (got {n})"),
                ));
            }
        }
        let garbage_rate = within(
            "--garbage-rate",
            self.garbage_rate,
            0.1,
            MAX_GARBAGE_RATE,
            "frames per second",
        )?;
        let churn_rate = within(
            "--churn-rate",
            self.churn_rate,
            0.1,
            MAX_CHURN_RATE,
            "connections per second",
        )?;
        let all = u64::from(clients)
            + u64::from(self.garbage)
            + u64::from(self.silent)
            + u64::from(self.churn);
        if all > u64::from(MAX_CLIENTS) {
            return Err(LoadError::option(
                "--clients",
                format!(
                    "--clients ({}) + --garbage ({}) + --silent ({}) + --churn ({}) = {all} is over {MAX_CLIENTS}",
                    self.clients, self.garbage, self.silent, self.churn
                ),
            ));
        }
        let cueing = self.cues.is_some();
        if !self.sync && !cueing && self.sync_reference.is_some() {
            return Err(LoadError::option(
                "--sync-reference",
                "only means something with --sync or --cues",
            ));
        }
        if !self.sync && self.sync_drift_ppm != 0.0 {
            return Err(LoadError::option(
                "--sync-drift-ppm",
                "only means something with --sync",
            ));
        }
        let reference = match &self.sync_reference {
            None => target.clone(),
            Some(url) => parse_url(url).map_err(|e| match e {
                LoadError::Option { message, .. } => LoadError::option("--sync-reference", message),
                other => other,
            })?,
        };
        let cues = self.cue_plan(&reference)?;
        let chat = self.chat_plan(clients, rooms.as_ref())?;
        let sync = if self.sync {
            let reference = reference.clone();
            let drift_ppm = within(
                "--sync-drift-ppm",
                self.sync_drift_ppm,
                0.0,
                MAX_SYNC_DRIFT_PPM,
                "parts per million",
            )?;
            Some(SyncPlan {
                reference,
                drift_ppm,
            })
        } else {
            None
        };
        let plan = Plan {
            target,
            show: self.show.clone(),
            clients,
            ramp,
            source_addrs,
            rate,
            moving,
            votes,
            slow,
            threads: self.threads,
            duration,
            max_duration,
            calibrate: self.calibrate,
            server_pid: self.server_pid,
            garbage: self.garbage,
            garbage_rate,
            silent: self.silent,
            churn: self.churn,
            churn_rate,
            sync,
            cues,
            chat,
            rooms,
        };
        let calibration = if self.calibrate {
            CALIBRATION_TIME
        } else {
            Duration::ZERO
        };
        let reference = if plan.sync.is_some() || plan.cues.is_some() {
            crate::sync::REFERENCE_TIME
        } else {
            Duration::ZERO
        };
        let calibration = calibration + reference;
        let needed = plan.ramp_time() + duration + TAIL_MARGIN + calibration;
        if needed > max_duration {
            return Err(LoadError::option(
                "--max-duration",
                format!(
                    "{:.1} s is too short: the ramp ({:.1} s at --ramp {}), --duration ({:.1} s) and settling ({} s) need {:.1} s",
                    max_duration.as_secs_f64(),
                    plan.ramp_time().as_secs_f64(),
                    ramp,
                    duration.as_secs_f64(),
                    TAIL_MARGIN.as_secs() + calibration.as_secs(),
                    needed.as_secs_f64()
                ),
            ));
        }
        Ok(plan)
    }

    /// `--chat-senders` and `--chat-rate`, for `clients` connections (in `rooms`).
    fn chat_plan(
        &self,
        clients: u32,
        rooms: Option<&RoomsPlan>,
    ) -> Result<Option<ChatPlan>, LoadError> {
        if self.chat_senders == 0 {
            if rooms.is_some() {
                return Err(LoadError::option(
                    "--chat-senders",
                    "--chat-rooms needs senders (at least one a room) and --chat-rate",
                ));
            }
            if self.chat_rate != 0.0 {
                return Err(LoadError::option(
                    "--chat-rate",
                    "only means something with --chat-senders",
                ));
            }
            return Ok(None);
        }
        match rooms {
            Some(r) if self.chat_senders < r.rooms || self.chat_senders > clients => {
                return Err(LoadError::option(
                    "--chat-senders",
                    format!(
                        "{} senders for {} rooms of {} users: at least one a room, at most \
                         every connection ({clients})",
                        self.chat_senders, r.rooms, r.users
                    ),
                ));
            }
            None if self.chat_senders > clients => {
                return Err(LoadError::option(
                    "--chat-senders",
                    format!(
                        "{} senders but only {clients} clients (--clients)",
                        self.chat_senders
                    ),
                ));
            }
            _ => {}
        }
        let rate = within(
            "--chat-rate",
            self.chat_rate,
            0.1,
            crate::chat::MAX_CHAT_RATE,
            "messages per second",
        )?;
        let per_sender = rate / f64::from(self.chat_senders);
        if per_sender > crate::chat::MAX_RATE_PER_SENDER {
            return Err(LoadError::option(
                "--chat-rate",
                format!(
                    "{rate} messages a second from {} senders is {per_sender:.2} each, over {} \
                     (the server takes 5 chat changes a second per connection): add senders",
                    self.chat_senders,
                    crate::chat::MAX_RATE_PER_SENDER
                ),
            ));
        }
        Ok(Some(ChatPlan {
            senders: self.chat_senders,
            rate,
        }))
    }

    /// `--chat-rooms`, `--chat-users`, `--admin`, and the options that do not go with them.
    fn rooms_plan(&self) -> Result<Option<RoomsPlan>, LoadError> {
        if self.chat_rooms == 0 {
            for (option, given) in [
                ("--chat-users", self.chat_users != 0),
                ("--admin", self.admin.is_some()),
            ] {
                if given {
                    return Err(LoadError::option(
                        option,
                        "only means something with --chat-rooms",
                    ));
                }
            }
            return Ok(None);
        }
        if self.chat_rooms > MAX_CHAT_ROOMS {
            return Err(LoadError::option(
                "--chat-rooms",
                format!(
                    "must be within 1–{MAX_CHAT_ROOMS} (got {})",
                    self.chat_rooms
                ),
            ));
        }
        if self.chat_users == 0 || self.chat_users > MAX_CHAT_USERS {
            return Err(LoadError::option(
                "--chat-users",
                format!(
                    "--chat-rooms needs 1–{MAX_CHAT_USERS} users per room (got {})",
                    self.chat_users
                ),
            ));
        }
        let connections = u64::from(self.chat_rooms) * u64::from(self.chat_users);
        if connections > u64::from(MAX_CLIENTS) {
            return Err(LoadError::option(
                "--chat-users",
                format!(
                    "{} rooms × {} users is {connections} connections, over {MAX_CLIENTS}",
                    self.chat_rooms, self.chat_users
                ),
            ));
        }
        for (option, given) in [
            ("--chat-storm", self.chat_storm.is_some()),
            ("--show", self.show.is_some()),
            ("--sync", self.sync),
            ("--cues", self.cues.is_some()),
            ("--calibrate", self.calibrate),
            ("--garbage", self.garbage > 0),
            ("--silent", self.silent > 0),
            ("--churn", self.churn > 0),
        ] {
            if given {
                return Err(LoadError::option(
                    option,
                    "does not go with --chat-rooms (its connections join no show)",
                ));
            }
        }
        let Some(admin) = &self.admin else {
            return Err(LoadError::option(
                "--chat-rooms",
                "needs --admin USER:PASSWORD: an admin makes the rooms' users and rooms",
            ));
        };
        let Some((user, password)) = admin.split_once(':') else {
            return Err(LoadError::option(
                "--admin",
                "must be USER:PASSWORD (a colon between the two)",
            ));
        };
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if user.is_empty() || user.len() > 64 || !user.chars().all(name_ok) {
            return Err(LoadError::option(
                "--admin",
                "the user name is 1–64 of A-Z a-z 0-9 . _ -",
            ));
        }
        let chars = password.chars().count();
        if !(8..=256).contains(&chars) {
            return Err(LoadError::option(
                "--admin",
                format!("the password is 8–256 characters (got {chars})"),
            ));
        }
        Ok(Some(RoomsPlan {
            rooms: self.chat_rooms,
            users: self.chat_users,
            admin_user: user.to_owned(),
            admin_password: password.to_owned(),
        }))
    }

    /// `--cues` and the options that go with it.
    fn cue_plan(&self, reference: &Target) -> Result<Option<CuePlan>, LoadError> {
        let Some(rate) = self.cues else {
            for (option, given) in [
                ("--performer-token", self.performer_token.is_some()),
                ("--cue-voice", self.cue_voice.is_some()),
            ] {
                if given {
                    return Err(LoadError::option(
                        option,
                        "only means something with --cues",
                    ));
                }
            }
            return Ok(None);
        };
        let rate = within(
            "--cues",
            rate,
            MIN_CUE_RATE,
            MAX_CUE_RATE,
            "cues per second",
        )?;
        let max = tutti_protocol::MAX_NAME;
        let token = match &self.performer_token {
            None => {
                return Err(LoadError::option(
                    "--cues",
                    "needs --performer-token: cues are sent by a performer connection \
                     (the server's --performer-token)",
                ))
            }
            Some(t) if t.is_empty() || t.len() > max => {
                return Err(LoadError::option(
                    "--performer-token",
                    format!("a performer token is 1–{max} characters"),
                ))
            }
            Some(t) => t.clone(),
        };
        if let Some(v) = &self.cue_voice {
            if v.is_empty() || v.len() > max {
                return Err(LoadError::option(
                    "--cue-voice",
                    format!("a voice name is 1–{max} characters"),
                ));
            }
        }
        Ok(Some(CuePlan {
            rate,
            token,
            voice: self.cue_voice.clone(),
            reference: reference.clone(),
        }))
    }
}

/// Parse `30`, `30s`, `250ms`, `1.5s`, `5m`, `1h`.
pub fn parse_duration(option: &'static str, text: &str) -> Result<Duration, LoadError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        LoadError::option(
            option,
            format!("'{text}' is not a duration (examples: 30s, 250ms, 5m, 1h)"),
        )
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs > 1e7 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse `ws://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<Target, LoadError> {
    let bad = |why: &str| LoadError::option("--url", format!("'{url}' {why}"));
    if url.starts_with("wss://") {
        return Err(bad(
            "uses TLS, which tutti load does not speak: point it at the server's plain ws:// address",
        ));
    }
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| bad("must start with ws:// (e.g. ws://127.0.0.1:7878/live/v1)"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("has an unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("has junk after the IPv6 address")),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("has an invalid port"))?,
    };
    Ok(Target {
        url: url.to_string(),
        host,
        port,
    })
}

/// Parse `127.0.0.1-127.0.0.8`, `127.0.0.1,127.0.0.2`, `::1`, or a mix.
pub fn parse_source_addrs(text: &str) -> Result<Vec<IpAddr>, LoadError> {
    let bad = |why: String| LoadError::option("--source-addrs", why);
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| {
                bad(format!(
                    "'{a}' is not an IPv4 address (ranges are IPv4 only)"
                ))
            })?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| {
                bad(format!(
                    "'{b}' is not an IPv4 address (ranges are IPv4 only)"
                ))
            })?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a {
                return Err(bad(format!("the range '{part}' runs backwards")));
            }
            if (b - a) as usize >= MAX_SOURCE_ADDRS {
                return Err(bad(format!(
                    "the range '{part}' has more than {MAX_SOURCE_ADDRS} addresses"
                )));
            }
            out.extend((a..=b).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
        } else {
            let ip: IpAddr = part
                .parse()
                .map_err(|_| bad(format!("'{part}' is not an IP address")))?;
            out.push(ip);
        }
        if out.len() > MAX_SOURCE_ADDRS {
            return Err(bad(format!("at most {MAX_SOURCE_ADDRS} addresses")));
        }
    }
    if out.is_empty() {
        return Err(bad("no address given".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |t| parse_duration("--duration", t).unwrap();
        assert_eq!(d("30"), Duration::from_secs(30));
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        for bad in ["", "s", "abc", "5 parsecs", "-3s", "1e400"] {
            assert!(parse_duration("--duration", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        let t = parse_url("ws://127.0.0.1:7878/live/v1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 7878));
        let t = parse_url("ws://[::1]:9/live/v1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        let t = parse_url("ws://example.org/live/v1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("example.org", 80));
        for bad in [
            "http://x/",
            "wss://x/",
            "ws://",
            "ws://:80/",
            "ws://h:0/",
            "ws://h:x/",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.option_name(), Some("--url"), "{bad}");
        }
    }

    #[test]
    fn source_addrs() {
        let v = parse_source_addrs("127.0.0.1-127.0.0.8").unwrap();
        assert_eq!(v.len(), 8);
        assert_eq!(v[7], "127.0.0.8".parse::<IpAddr>().unwrap());
        let v = parse_source_addrs("127.0.0.1, 127.0.0.3,::1").unwrap();
        assert_eq!(v.len(), 3);
        for bad in ["", "127.0.0.9-127.0.0.1", "x", "10.0.0.0-10.0.255.255"] {
            assert!(parse_source_addrs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sync_options() {
        let o = LoadOptions {
            sync: true,
            sync_reference: Some("ws://127.0.0.9:7/live/v1".into()),
            sync_drift_ppm: 100.0,
            ..LoadOptions::default()
        };
        let sync = o.plan().unwrap().sync.unwrap();
        assert_eq!(
            (sync.reference.host.as_str(), sync.reference.port),
            ("127.0.0.9", 7)
        );
        assert_eq!(sync.drift_ppm, 100.0);
        let plain = LoadOptions {
            sync: true,
            ..LoadOptions::default()
        };
        assert_eq!(plain.plan().unwrap().sync.unwrap().reference.port, 7878);
        let bad = |o: LoadOptions| o.plan().unwrap_err().option_name();
        assert_eq!(
            bad(LoadOptions {
                sync_reference: Some("ws://x/".into()),
                ..LoadOptions::default()
            }),
            Some("--sync-reference")
        );
        assert_eq!(
            bad(LoadOptions {
                sync: true,
                sync_reference: Some("http://x/".into()),
                ..LoadOptions::default()
            }),
            Some("--sync-reference")
        );
        for ppm in [-1.0, 501.0, f64::NAN] {
            assert_eq!(
                bad(LoadOptions {
                    sync: true,
                    sync_drift_ppm: ppm,
                    ..LoadOptions::default()
                }),
                Some("--sync-drift-ppm")
            );
        }
    }

    #[test]
    fn defaults_are_valid() {
        let o = LoadOptions::default();
        assert_eq!(o.clients, 100);
        assert_eq!(o.url, "ws://127.0.0.1:7878/live/v1");
        o.validate().unwrap();
    }
}
