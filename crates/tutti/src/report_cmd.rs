//! `tutti report` and `tutti export --show`: a recorded show's report (one self-contained
//! HTML page, or its data as JSON) and its time series (CSV or JSON), read from a data
//! directory, offline. The same report is served at `/shows/{id}/report`.
//!
//! Must never: write to the store it reads, or overwrite a file without being told to.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tutti_report::{ReportError, SeriesFormat};
use tutti_store::{Store, StoreConfig};

/// `tutti report`.
#[derive(Args, Clone)]
pub struct ReportArgs {
    /// Show code.
    #[arg(long)]
    pub show: String,
    /// Output file, `-` for standard output (default: report-CODE.html, or .json).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// html (the page) or json (the data behind it).
    #[arg(long, default_value = "html", value_parser = ["html", "json"])]
    pub format: String,
    /// Data directory of the store that recorded the show.
    #[arg(long, default_value = "tutti-data")]
    pub data_dir: PathBuf,
    /// Start, seconds from the show's first recorded state.
    #[arg(long, allow_negative_numbers = true)]
    pub from: Option<f64>,
    /// End, seconds from the show's first recorded state.
    #[arg(long, allow_negative_numbers = true)]
    pub to: Option<f64>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `tutti export --show CODE`: the time series of a recorded show.
#[derive(Args, Clone, Default)]
pub struct SeriesArgs {
    /// Show code (a recorded show in --data-dir).
    #[arg(long)]
    pub show: Option<String>,
    /// csv or json.
    #[arg(long = "format", default_value = "csv", value_parser = ["csv", "json"])]
    pub series_format: String,
    /// Output file, `-` for standard output (the default).
    #[arg(long = "out", short = 'o')]
    pub series_out: Option<PathBuf>,
    /// Data directory of the store that recorded the show.
    #[arg(long, default_value = "tutti-data")]
    pub data_dir: PathBuf,
    /// Start, seconds from the show's first recorded state.
    #[arg(long, allow_negative_numbers = true)]
    pub from: Option<f64>,
    /// End, seconds from the show's first recorded state.
    #[arg(long, allow_negative_numbers = true)]
    pub to: Option<f64>,
}

/// Why a report command failed, with its exit code (see `docs/cli.md`).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Wrong arguments: an unknown show, a bad range, a file that would be overwritten (2).
    #[error("{0}")]
    Usage(String),
    /// The stored show cannot be read as a show (65).
    #[error("{0}")]
    Data(String),
    /// A file could not be read or written (74).
    #[error("{0}")]
    Io(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Data(_) => 65,
            Failure::Io(_) => 74,
        }
    }
}

impl From<ReportError> for Failure {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::NotFound(_) | ReportError::Invalid { .. } => Failure::Usage(e.to_string()),
            ReportError::Spec(_) | ReportError::Plot(_) => Failure::Data(e.to_string()),
            ReportError::Store(_) | ReportError::Io(_) => Failure::Io(e.to_string()),
        }
    }
}

async fn open(data_dir: &Path, code: &str) -> Result<(Store, tutti_report::load::Loaded), Failure> {
    let db = data_dir.join("tutti.db");
    if !db.is_file() {
        return Err(Failure::Io(format!(
            "no Tutti store at {} (use --data-dir)",
            db.display()
        )));
    }
    let store = Store::open(StoreConfig::new(db)).map_err(|e| Failure::Io(e.to_string()))?;
    let show = store
        .show_by_code(code)
        .await
        .map_err(|e| Failure::Io(e.to_string()))?
        .ok_or_else(|| {
            Failure::Usage(format!(
                "no show with code '{}' in {}",
                code.chars().take(32).collect::<String>(),
                data_dir.display()
            ))
        })?;
    let loaded = tutti_report::load::show(&store, show).await?;
    Ok((store, loaded))
}

fn writer(out: &Path, force: bool) -> Result<Box<dyn Write>, Failure> {
    if out.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdout().lock()));
    }
    if out.exists() && !force {
        return Err(Failure::Usage(format!(
            "{} exists: choose another file with --out or overwrite it with --force",
            out.display()
        )));
    }
    let f =
        std::fs::File::create(out).map_err(|e| Failure::Io(format!("{}: {e}", out.display())))?;
    Ok(Box::new(std::io::BufWriter::new(f)))
}

async fn report(args: &ReportArgs) -> Result<String, Failure> {
    let range = tutti_report::load::check_range(args.from, args.to)?;
    let (store, loaded) = open(&args.data_dir, &args.show).await?;
    let code = loaded.info.code.clone();
    let report = tutti_report::load::report(&store, loaded, range).await?;
    let _ = store.close().await;
    let json = args.format == "json";
    let text = if json {
        serde_json::to_string_pretty(&report).map_err(|e| Failure::Data(e.to_string()))? + "\n"
    } else {
        tutti_report::html::render(&report)?
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "report-{code}.{}",
            if json { "json" } else { "html" }
        ))
    });
    let mut w = writer(&out, args.force)?;
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| Failure::Io(format!("{}: {e}", out.display())))?;
    Ok(format!(
        "report of show {code}{} ({} snapshots, {}) written to {}",
        if report.running {
            " (so far: still running)"
        } else {
            ""
        },
        report.summary.snapshots,
        tutti_report::plot::clock(report.summary.duration_s),
        out.display()
    ))
}

async fn series(args: &SeriesArgs, code: &str) -> Result<(), Failure> {
    let range = tutti_report::load::check_range(args.from, args.to)?;
    let format: SeriesFormat = args.series_format.parse()?;
    let (store, loaded) = open(&args.data_dir, code).await?;
    let out = args
        .series_out
        .clone()
        .unwrap_or_else(|| PathBuf::from("-"));
    let w = writer(&out, false)?;
    let mut w = tutti_report::load::series(&store, &loaded, range, format, w).await?;
    w.flush()
        .map_err(|e| Failure::Io(format!("{}: {e}", out.display())))?;
    let _ = store.close().await;
    Ok(())
}

fn run<T>(
    name: &str,
    fut: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tutti {name}: tokio runtime: {e}");
            ExitCode::from(70)
        })?;
    rt.block_on(fut).map_err(|e| {
        eprintln!("tutti {name}: {e}");
        ExitCode::from(e.exit_code())
    })
}

/// `tutti report`.
pub fn report_command(args: &ReportArgs) -> ExitCode {
    match run("report", report(args)) {
        Ok(msg) => {
            eprintln!("{msg}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `tutti export --show CODE`.
pub fn series_command(args: &SeriesArgs, code: &str) -> ExitCode {
    match run("export", series(args, code)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
