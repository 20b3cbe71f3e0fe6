//! `tutti`: the one binary. Parses arguments, sets up logging, and calls into the
//! libraries; every error is mapped to an exit code here, in one place.
//!
//! Must never: contain logic that the libraries should own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tutti_server::{CliOverrides, Config, ServerError};

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
    /// Render a recorded show offline to a WAV file.
    Render(RenderArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults → tutti.toml → TUTTI_* → flags).
    Show(ServeArgs),
}

#[derive(Args, Clone)]
struct RenderArgs {
    /// Render with SuperCollider in non-real-time mode (`scsynth -N`).
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
}

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
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load(self.config.as_deref(), &env, &self.overrides())
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

fn fail(e: &ServerError) -> ExitCode {
    eprintln!("tutti: {e}");
    ExitCode::from(e.exit_code() as u8)
}

async fn serve(args: ServeArgs) -> Result<(), ServerError> {
    let config = args.load()?;
    init_logging(&config.log);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Config(format!("listen {}: {e}", config.listen)))?;
    let running = tutti_server::start(config.clone(), listener).await?;
    let base = config.base_url();
    println!("Tutti is running: show {}", running.show_code);
    println!("  audience   {base}/?show={}", running.show_code);
    println!(
        "  performer  {base}/perform#token={}",
        running.performer_token
    );
    println!("  display    {base}/display");
    if let Some(a) = running.osc_listen {
        println!("  OSC in     udp://{a}");
    }
    for t in &config.osc.targets {
        println!("  OSC out    udp://{t}");
    }
    println!("  data       {}", config.data_dir.display());
    running.wait_for_signal().await
}

async fn render(args: RenderArgs) -> Result<(), ServerError> {
    init_logging("warn");
    if !args.scsynth {
        return Err(ServerError::Config(
            "choose a renderer: --scsynth (SuperCollider non-real-time)".into(),
        ));
    }
    let req = tutti_server::render::RenderRequest {
        data_dir: args.data_dir,
        show: args.show,
        out: args.out.clone(),
        sample_rate: args.sample_rate,
        scsynth: args.scsynth_bin,
    };
    let t = tutti_server::render::render_scsynth(&req).await?;
    println!(
        "rendered show {} ({} snapshots, {:.0} s) to {}",
        t.code,
        t.points.len(),
        t.points.last().map_or(0.0, |p| p.0),
        args.out.display()
    );
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, ServerError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
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
        Command::Serve(args) => match runtime().and_then(|rt| rt.block_on(serve(args))) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Render(args) => match runtime().and_then(|rt| rt.block_on(render(args))) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
    }
}
