//! `tutti`: the one binary. Parses arguments, sets up logging, and calls into the
//! libraries; every error is mapped to an exit code here, in one place. Besides the
//! server and its tools it holds the guided setup in the terminal (`tutti wizard`,
//! [`wizard_cmd`]) and the arguments of the management API's client (`tutti login`,
//! `pieces`, `specs`, `shows`, `export`, `ensembles`, `members`, `users`, `webhooks`:
//! [`client_args`], over the `tutti-client` library), and the performance memory of a data
//! directory (`tutti memory`: [`memory_cmd`], with its MCP server in [`memory_mcp`]), and
//! a multi-node deployment's nodes and conductors as NATS holds them (`tutti cluster
//! status`: [`cluster_cmd`]).
//!
//! Must never: contain logic that the libraries should own.

mod client_args;
mod cluster_cmd;
mod memory_cmd;
mod memory_mcp;
mod report_cmd;
mod wizard_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tutti_server::{CliOverrides, Config, ServerError};

use client_args::{
    ClientOpts, EnsemblesCmd, ExportCmd, LoginArgs, MembersCmd, PiecesCmd, ShowsCmd, SpecsCmd,
    UsersCmd, WebhooksCmd,
};
use tutti_client::ClientError;
use wizard_cmd::WizardArgs;

#[derive(Parser)]
#[command(
    name = "tutti",
    version,
    about = "Live audience-participation performance platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: live hub, pages, OSC, store.
    Serve(ServeArgs),
    /// Render a recorded show offline to a WAV file (embedded engine, or --scsynth).
    Render(RenderArgs),
    /// Load-test a running server with real WebSocket clients (bounded; stops by itself).
    Load(tutti_load::LoadOptions),
    /// Process audio through a DSP chain: a WAV file, or raw stereo f32 LE with `-`.
    Dsp(DspArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Guided setup of a piece in the terminal (offline): answer a domain pack's questions,
    /// get a draft spec as TOML (or a draft version on a server with --server).
    Wizard(WizardArgs),
    /// Log in to a Tutti server; the tokens are kept in the config directory (mode 0600).
    Login {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(flatten)]
        args: LoginArgs,
    },
    /// Log out: revoke the tokens on the server and forget them here.
    Logout {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Pieces on a server: list, show, create, transition.
    Pieces {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: PiecesCmd,
    },
    /// Spec versions of a piece: list, show, draft from a file, publish.
    Specs {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: SpecsCmd,
    },
    /// Shows: list, show, create, transition.
    Shows {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: ShowsCmd,
    },
    /// Export a recorded show's time series (`--show CODE`, CSV or JSON, from a data
    /// directory), or from a server a spec (JSON, TOML, Markdown) or a show's timeline.
    #[command(args_conflicts_with_subcommands = true)]
    Export {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(flatten)]
        series: report_cmd::SeriesArgs,
        #[command(subcommand)]
        command: Option<ExportCmd>,
    },
    /// A recorded show's report: one self-contained HTML page with its charts (or the data
    /// behind it as JSON), from a data directory; also served at /shows/{id}/report.
    Report(report_cmd::ReportArgs),
    /// Ensembles: list, show, create.
    Ensembles {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: EnsemblesCmd,
    },
    /// Members of an ensemble: list, add, remove, role.
    Members {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: MembersCmd,
    },
    /// Users: list, show.
    Users {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: UsersCmd,
    },
    /// Webhooks of an ensemble: list, create, delete.
    Webhooks {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: WebhooksCmd,
    },
    /// The performance memory of a data directory: search, show, patterns, check, import,
    /// export, and `mcp` (a Model Context Protocol server over stdio).
    Memory(memory_cmd::MemoryArgs),
    /// A multi-node deployment: `status` lists the nodes registered on NATS and each
    /// show's conductor.
    Cluster(cluster_cmd::ClusterArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults → tutti.toml → TUTTI_* → flags).
    Show(ServeArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// DSP kernels and the engine: seconds of audio per CPU second, single core.
    Audio {
        /// Seconds of audio per case.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Only cases whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Measurements per case (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
}

#[derive(Args, Clone)]
struct DspArgs {
    /// The chain file (TOML).
    #[arg(long)]
    chain: PathBuf,
    /// Input: a WAV file, or `-` for raw stereo f32 little-endian interleaved on stdin.
    #[arg(long = "in", default_value = "-")]
    input: String,
    /// Output: a WAV file (32-bit float), or `-` for raw stereo f32 LE on stdout.
    #[arg(long = "out", default_value = "-")]
    output: String,
}

#[derive(Args, Clone)]
struct RenderArgs {
    /// Render with SuperCollider in non-real-time mode (`scsynth -N`) instead of the
    /// embedded engine.
    #[arg(long)]
    scsynth: bool,
    /// Data directory of the store that recorded the show.
    #[arg(long, default_value = "tutti-data")]
    data_dir: PathBuf,
    /// Show code (default: the most recent show that has not ended).
    #[arg(long)]
    show: Option<String>,
    /// Output WAV file.
    #[arg(long, short)]
    out: PathBuf,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48_000, value_parser = clap::value_parser!(u32).range(8_000..=192_000))]
    sample_rate: u32,
    /// The scsynth binary.
    #[arg(long, default_value = "scsynth")]
    scsynth_bin: PathBuf,
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// Configuration file (default: ./tutti.toml when it exists).
    #[arg(long, env = "TUTTI_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:7878 or 0.0.0.0:7878 for a venue network.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory of the embedded store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Base URL for join links and QR codes, e.g. http://192.168.1.20:7878.
    #[arg(long)]
    public_url: Option<String>,
    /// Piece spec (TOML) to run instead of the built-in demo.
    #[arg(long)]
    piece: Option<PathBuf>,
    /// Performer token (default: a random one, printed at start).
    #[arg(long)]
    performer_token: Option<String>,
    /// OSC target host:port that receives one bundle per tick (repeatable).
    #[arg(long = "osc-target")]
    osc_targets: Vec<SocketAddr>,
    /// Address for OSC performer commands.
    #[arg(long)]
    osc_listen: Option<SocketAddr>,
    /// Log filter, e.g. info or tutti_server=debug.
    #[arg(long)]
    log: Option<String>,
    /// Sound backend: engine (default), supercollider or none.
    #[arg(long, value_enum)]
    sound: Option<SoundArg>,
    /// Extra domain packs for the guided setup: every *.json file here (replacing built-in
    /// packs of the same id). Tutti refuses to start when one is invalid.
    #[arg(long, env = "TUTTI_PACKS_DIR")]
    packs_dir: Option<PathBuf>,
}

/// `TUTTI_*` environment variables that are not server configuration keys: the binary's
/// own flags, the CLI client's, and the DSP kernels' switches. The server's configuration
/// never sees them; any other unknown `TUTTI_*` variable is ignored with a warning.
const CLIENT_ENV: &[&str] = &[
    "TUTTI_CONFIG",
    "TUTTI_PACKS_DIR",
    "TUTTI_SERVER",
    "TUTTI_CONFIG_DIR",
    "TUTTI_PASSWORD",
    "TUTTI_DSP_NO_SIMD",
    "TUTTI_DSP_NO_AVX512",
];

#[derive(Clone, Copy, clap::ValueEnum)]
enum SoundArg {
    Engine,
    Supercollider,
    None,
}

impl ServeArgs {
    fn overrides(&self) -> CliOverrides {
        let osc = if self.osc_targets.is_empty() && self.osc_listen.is_none() {
            None
        } else {
            Some(tutti_server::config::CliOsc {
                targets: (!self.osc_targets.is_empty()).then(|| self.osc_targets.clone()),
                listen: self.osc_listen,
            })
        };
        CliOverrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            public_url: self.public_url.clone(),
            piece: self.piece.clone(),
            performer_token: self.performer_token.clone(),
            log: self.log.clone(),
            sound: self.sound.map(|s| match s {
                SoundArg::Engine => tutti_server::config::SoundBackend::Engine,
                SoundArg::Supercollider => tutti_server::config::SoundBackend::Supercollider,
                SoundArg::None => tutti_server::config::SoundBackend::None,
            }),
            osc,
        }
    }

    fn load(&self) -> Result<Config, ServerError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !CLIENT_ENV.contains(&k.as_str()))
            .collect();
        let loaded = Config::load(self.config.as_deref(), &env, &self.overrides())?;
        // Logging is not set up yet (its filter is part of the configuration).
        for w in &loaded.warnings {
            eprintln!("tutti: warning: {w}");
        }
        let mut config = loaded.config;
        // `--packs-dir` (or TUTTI_PACKS_DIR) over the file's `packs_dir`.
        if let Some(dir) = &self.packs_dir {
            config.packs_dir = Some(dir.clone());
        }
        Ok(config)
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

fn fail(e: &ServerError) -> ExitCode {
    eprintln!("tutti: {e}");
    ExitCode::from(e.exit_code() as u8)
}

async fn serve(config: tutti_server::Config) -> Result<(), ServerError> {
    init_logging(&config.log);
    // Refuse to start with an invalid domain pack, naming the file and the field.
    let packs = wizard_cmd::load_packs(config.packs_dir.as_deref())
        .map_err(|e| ServerError::Config(e.to_string()))?;
    tracing::info!(packs = packs.packs().len(), "domain packs loaded");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Config(format!("listen {}: {e}", config.listen)))?;
    let running = tutti_server::start(config.clone(), listener).await?;
    let base = running.base_url.clone();
    println!("Tutti is running: show {}", running.show_code);
    println!("  audience   {base}/?show={}", running.show_code);
    println!(
        "  performer  {base}/perform#token={}",
        running.performer_token
    );
    println!("  display    {base}/display");
    if running.setup_needed().await {
        println!("  setup      {base}/web/setup.html  (no account yet: create the admin there)");
    }
    if let Some(a) = running.osc_listen {
        println!("  OSC in     udp://{a}");
    }
    for t in &config.osc.targets {
        println!("  OSC out    udp://{t}");
    }
    if running.store_read_only() {
        println!(
            "  data       {}  (READ-ONLY: nothing is stored; the show runs from memory)",
            config.data_dir.display()
        );
    } else {
        println!("  data       {}", config.data_dir.display());
    }
    running.wait_for_signal().await
}

async fn render(args: RenderArgs) -> Result<(), ServerError> {
    init_logging("warn");
    let req = tutti_server::render::RenderRequest {
        data_dir: args.data_dir,
        show: args.show,
        out: args.out.clone(),
        sample_rate: args.sample_rate,
        scsynth: args.scsynth_bin,
    };
    let t = if args.scsynth {
        tutti_server::render::render_scsynth(&req).await?
    } else {
        tutti_server::render::render_engine(&req).await?
    };
    println!(
        "rendered show {} ({} snapshots, {:.0} s) to {}",
        t.code,
        t.points.len(),
        t.points.last().map_or(0.0, |p| p.0),
        args.out.display()
    );
    Ok(())
}

fn bench_audio(seconds: f64, filter: Option<String>, repeats: usize) -> ExitCode {
    if !(0.1..=600.0).contains(&seconds) || !(1..=50).contains(&repeats) {
        eprintln!("tutti bench audio: --seconds must be 0.1–600 and --repeats 1–50");
        return ExitCode::from(2);
    }
    println!("# DSP kernels (stereo 48 kHz, single core, thread CPU time)\n");
    let results = tutti_dsp::bench::run(&tutti_dsp::bench::BenchOptions {
        audio_seconds: seconds,
        filter,
        repeats,
    });
    println!("{}", tutti_dsp::bench::markdown(&results));
    println!("# Embedded engine: demo voices + master chain\n");
    println!("| block | CPU per block | share of one core | x real time | latency |\n|---|---|---|---|---|");
    for block in [256usize, 1024] {
        let cfg = tutti_audio::EngineConfig {
            block_frames: block,
            ..tutti_audio::EngineConfig::default()
        };
        match tutti_audio::bench::bench_engine(&cfg, seconds) {
            Ok(b) => println!(
                "| {} | {:.1} µs | {:.2} % | {:.0}× | {:?} |",
                b.block_frames,
                b.cpu_seconds
                    / (b.audio_seconds * f64::from(b.sample_rate) / b.block_frames as f64)
                    * 1e6,
                b.cpu_fraction * 100.0,
                b.realtime_factor,
                b.latency
            ),
            Err(e) => {
                eprintln!("tutti bench audio: {e}");
                return ExitCode::from(70);
            }
        }
    }
    ExitCode::SUCCESS
}

/// `tutti wizard`: run the session, print the summary, write or upload the draft.
fn wizard(args: WizardArgs) -> Result<(), ClientError> {
    use std::io::Write as _;
    let wizard = wizard_cmd::load_packs(args.packs_dir.as_deref())?;
    if args.list_packs {
        print!("{}", wizard_cmd::pack_list(&wizard));
        return Ok(());
    }
    let to_stdout = args.out.as_ref().is_some_and(|o| o.as_os_str() == "-");
    if to_stdout && (args.json || args.server.is_some()) {
        return Err(ClientError::Usage(
            "--out - cannot be combined with --json or --server".into(),
        ));
    }
    // Prompts and the summary go to stderr when stdout carries the result.
    let quiet_stdout = to_stdout || args.json;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let session = if quiet_stdout {
        wizard_cmd::run_session(&args, &wizard, &mut input, &mut std::io::stderr())?
    } else {
        wizard_cmd::run_session(&args, &wizard, &mut input, &mut std::io::stdout())?
    };
    let Some(session) = session else {
        return Err(ClientError::Usage(
            "no pack chosen (the input ended); see --list-packs and --pack".into(),
        ));
    };
    let ev = session
        .evaluate()
        .map_err(|e| ClientError::Data(e.to_string()))?;
    let pack = session.pack().id().to_string();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&wizard_cmd::result_json(&pack, &ev, &session))
                .unwrap_or_default()
        );
    } else if to_stdout {
        eprint!("{}", wizard_cmd::summary(&ev));
    } else {
        print!("{}", wizard_cmd::summary(&ev));
    }
    let report = |s: String| {
        if quiet_stdout {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    };
    if let (Some(server), Some(piece)) = (&args.server, &args.piece) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Io(format!("tokio runtime: {e}")))?;
        let store = tutti_client::Store::new(args.config_dir.clone())?;
        let note = format!(
            "tutti wizard: pack {pack}, maturity {}%",
            ev.coverage.maturity
        );
        return rt.block_on(async {
            let mut api = tutti_client::Api::open(Some(server), store)?;
            tutti_client::commands::specs::draft_spec(
                &mut api,
                piece,
                &ev.spec,
                Some(&note),
                None,
                args.json,
            )
            .await
        });
    }
    let text = wizard_cmd::toml_file(&pack, &ev)?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| ClientError::Io(format!("stdout: {e}")));
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.toml", ev.spec.slug)));
    if path.exists() && !args.force {
        return Err(ClientError::Usage(format!(
            "{} exists: choose another file with --out or overwrite it with --force",
            path.display()
        )));
    }
    std::fs::write(&path, text).map_err(|e| ClientError::Io(format!("{}: {e}", path.display())))?;
    report(format!(
        "wrote the draft spec to {} (load it with `tutti serve --piece {}`)",
        path.display(),
        path.display()
    ));
    Ok(())
}

/// Run a client command on a small runtime and map its error to an exit code.
fn client_command<F>(name: &str, fut: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), ClientError>>,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tutti {name}: tokio runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli_fail(name, &e),
    }
}

fn cli_fail(name: &str, e: &ClientError) -> ExitCode {
    match e {
        ClientError::Api { .. } => eprintln!("{e}"),
        _ => eprintln!("tutti {name}: {e}"),
    }
    ExitCode::from(e.exit_code())
}

fn runtime() -> Result<tokio::runtime::Runtime, ServerError> {
    runtime_with(0)
}

/// A multi-thread runtime with `workers` threads (0 = tokio's default, one per core).
fn runtime_with(workers: usize) -> Result<tokio::runtime::Runtime, ServerError> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        b.worker_threads(workers);
    }
    b.enable_all()
        .build()
        .map_err(|e| ServerError::Config(format!("tokio runtime: {e}")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Show(args),
        } => match args.load() {
            Ok(cfg) => {
                print!("{}", cfg.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Serve(args) => match args.load().and_then(|config| {
            runtime_with(config.limits.worker_threads()).and_then(|rt| rt.block_on(serve(config)))
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Render(args) => match runtime().and_then(|rt| rt.block_on(render(args))) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Load(opts) if opts.chat_storm.is_some() => {
            let behind = opts.chat_storm.unwrap_or(0);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(opts.threads.max(1))
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&ServerError::Config(format!("tokio runtime: {e}"))),
            };
            match rt.block_on(tutti_load::run_storm(&opts, behind)) {
                Ok(report) => {
                    if opts.json {
                        println!("{:#}", serde_json::json!(report));
                    } else {
                        print!("{}", report.table());
                    }
                    if report.passed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("tutti load: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Load(opts) => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&ServerError::Config(format!("tokio runtime: {e}"))),
            };
            let json = opts.json;
            match rt.block_on(tutti_load::run(opts)) {
                Ok(report) => {
                    if json {
                        println!("{:#}", report.to_json());
                    } else {
                        print!("{}", report.table());
                    }
                    let problems = report.problems();
                    for p in &problems {
                        eprintln!("tutti load: {p}");
                    }
                    if problems.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("tutti load: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Dsp(args) => {
            let input = tutti_dsp::command::Endpoint::parse(&args.input);
            let output = tutti_dsp::command::Endpoint::parse(&args.output);
            match tutti_dsp::command::run(&args.chain, &input, &output) {
                Ok(frames) => {
                    eprintln!("tutti dsp: {frames} frames");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tutti dsp: {e}");
                    ExitCode::from(65)
                }
            }
        }
        Command::Wizard(args) => match wizard(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => cli_fail("wizard", &e),
        },
        Command::Login { opts, args } => client_command("login", client_args::login(&opts, &args)),
        Command::Logout { opts } => client_command("logout", client_args::logout(&opts)),
        Command::Pieces { opts, command } => {
            client_command("pieces", client_args::pieces(&opts, &command))
        }
        Command::Specs { opts, command } => {
            client_command("specs", client_args::specs(&opts, &command))
        }
        Command::Shows { opts, command } => {
            client_command("shows", client_args::shows(&opts, &command))
        }
        Command::Export {
            opts,
            series,
            command,
        } => match (command, &series.show) {
            (Some(command), _) => client_command("export", client_args::export(&opts, &command)),
            (None, Some(code)) => report_cmd::series_command(&series, code),
            (None, None) => {
                eprintln!(
                    "tutti export: name a recorded show with --show CODE, or use `export spec` \
                     or `export show` (see --help)"
                );
                ExitCode::from(2)
            }
        },
        Command::Report(args) => report_cmd::report_command(&args),
        Command::Ensembles { opts, command } => {
            client_command("ensembles", client_args::ensembles(&opts, &command))
        }
        Command::Members { opts, command } => {
            client_command("members", client_args::members(&opts, &command))
        }
        Command::Users { opts, command } => {
            client_command("users", client_args::users(&opts, &command))
        }
        Command::Webhooks { opts, command } => {
            client_command("webhooks", client_args::webhooks(&opts, &command))
        }
        Command::Memory(args) => memory_cmd::command(args),
        Command::Cluster(args) => cluster_cmd::command(args),
        Command::Bench {
            command:
                BenchCommand::Audio {
                    seconds,
                    filter,
                    repeats,
                },
        } => bench_audio(seconds, filter, repeats),
    }
}
