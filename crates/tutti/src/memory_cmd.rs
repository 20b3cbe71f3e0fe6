//! `tutti memory search|show|patterns|check|import|export|mcp`: the performance memory of a
//! data directory, offline (the memory opens the store itself and rebuilds its indexes
//! first; episodes still open are left to the server that records them, which completes them
//! as `interrupted` when it starts again after a crash). Tables for people, `--json` for
//! machines; `mcp` serves the memory to coding agents over stdio ([`crate::memory_mcp`]).
//!
//! Exit codes: 0 done; 1 `check` found problems (and did not repair them); 2 bad arguments;
//! 65 bad data (an episode or query the memory refuses: the message has its stable code);
//! 74 a file or the store could not be read or written.
//!
//! Must never: write to the store except for `import` and `check --repair`, or hide which
//! code an error has.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tutti_memory::{Access, EpisodeQuery, Memory, MemoryConfig, MemoryError, MomentQuery, Record};
use tutti_store::{Store, StoreConfig};

use tutti_client::table;

/// `tutti memory`.
#[derive(Args)]
pub struct MemoryArgs {
    /// Data directory of the store.
    #[arg(long, global = true, default_value = "tutti-data")]
    pub data_dir: PathBuf,
    /// Machine output (JSON).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: MemoryCmd,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum MemoryCmd {
    /// Search: moments like a vector (--vector), episodes like one (--like ID), or text (--text).
    Search(SearchArgs),
    /// One episode: context, outcome, steps and moments.
    Show {
        /// Episode id.
        id: i64,
        /// Steps and moments to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The patterns of a kind and piece (without --piece: the scopes the memory holds).
    Patterns {
        /// Kind of episode.
        #[arg(long, default_value = "show")]
        kind: String,
        /// Piece.
        #[arg(long)]
        piece: Option<String>,
    },
    /// Verify the indexes against the store; --repair fixes what it can.
    Check {
        /// Repair.
        #[arg(long)]
        repair: bool,
    },
    /// Import episodes: JSON Lines of records (as `export` writes them), each line atomic.
    Import {
        /// The file, or - for standard input.
        file: PathBuf,
    },
    /// Export every episode as JSON Lines.
    Export {
        /// The file, or - for standard output.
        #[arg(long, short, default_value = "-")]
        out: PathBuf,
        /// Overwrite the file.
        #[arg(long)]
        force: bool,
    },
    /// A Model Context Protocol server over stdio (JSON-RPC 2.0): tools record, search,
    /// patterns.
    Mcp,
}

/// `tutti memory search`.
#[derive(Args)]
pub struct SearchArgs {
    /// Moments like this vector (comma-separated, in the dimensions' order).
    #[arg(long, allow_hyphen_values = true)]
    pub vector: Option<String>,
    /// Episodes like this one.
    #[arg(long)]
    pub like: Option<i64>,
    /// Episodes whose text or notes have these words.
    #[arg(long)]
    pub text: Option<String>,
    /// Kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Piece.
    #[arg(long)]
    pub piece: Option<String>,
    /// Dimension names of --vector (comma-separated; default: the piece's only space).
    #[arg(long)]
    pub dims: Option<String>,
    /// Only this section.
    #[arg(long)]
    pub section: Option<String>,
    /// Results.
    #[arg(long, short, default_value_t = 10)]
    pub k: usize,
    /// 0 (plain nearest) to 1 (most diverse).
    #[arg(long)]
    pub diversity: Option<f32>,
    /// Compare exactly even in a large space.
    #[arg(long)]
    pub exact: bool,
}

/// Why a memory command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad arguments (2).
    #[error("{0}")]
    Usage(String),
    /// Data the memory refuses (65).
    #[error("{0}")]
    Data(String),
    /// I/O (74).
    #[error("{0}")]
    Io(String),
    /// `check` found problems (1).
    #[error("{0}")]
    Problems(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Data(_) => 65,
            Failure::Io(_) => 74,
            Failure::Problems(_) => 1,
        }
    }
}

impl From<MemoryError> for Failure {
    fn from(e: MemoryError) -> Self {
        match &e {
            MemoryError::Invalid { .. }
            | MemoryError::NotFound { .. }
            | MemoryError::Conflict { .. } => Failure::Data(format!("{} ({})", e, e.code())),
            _ => Failure::Io(format!("{} ({})", e, e.code())),
        }
    }
}

/// Opens the store and the memory of a data directory (`create`: a new one if there is none).
pub async fn open(data_dir: &Path, create: bool) -> Result<Memory, Failure> {
    let db = data_dir.join("tutti.db");
    if !create && !db.is_file() {
        return Err(Failure::Io(format!(
            "no Tutti store at {} (use --data-dir)",
            db.display()
        )));
    }
    let store = Store::open(StoreConfig::new(db)).map_err(|e| Failure::Io(e.to_string()))?;
    let mut cfg = MemoryConfig::new(data_dir);
    cfg.flush_every = Duration::from_millis(20);
    // A server may be recording in this directory: its open episodes are its own (the server
    // completes them as interrupted when it starts after a crash).
    cfg.complete_interrupted = false;
    Memory::open(store, cfg).await.map_err(Failure::from)
}

async fn close(m: Memory) {
    m.close(Duration::from_secs(30)).await;
    let _ = m.store().clone().close().await;
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Failure> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Failure::Data(e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn f(x: f64) -> String {
    format!("{x:.3}")
}

async fn search(m: &Memory, a: &SearchArgs, json: bool) -> Result<(), Failure> {
    let modes = [a.vector.is_some(), a.like.is_some(), a.text.is_some()];
    if modes.iter().filter(|x| **x).count() != 1 {
        return Err(Failure::Usage(
            "give exactly one of --vector, --like and --text".into(),
        ));
    }
    if let Some(v) = &a.vector {
        let vector: Vec<f32> = v
            .split(',')
            .map(|x| x.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Usage(format!("--vector: {e}")))?;
        let q = MomentQuery {
            kind: a.kind.clone().unwrap_or_else(|| "show".into()),
            piece: a.piece.clone(),
            dims: a
                .dims
                .as_ref()
                .map(|d| d.split(',').map(|s| s.trim().to_owned()).collect()),
            vector,
            section: a.section.clone(),
            k: a.k,
            diversity: a.diversity,
            exact: a.exact,
            ..MomentQuery::default()
        };
        let r = m.search_moments(&q, &Access::All)?;
        if json {
            return print_json(&r);
        }
        let rows: Vec<Vec<String>> = r
            .hits
            .iter()
            .map(|h| {
                vec![
                    h.episode_id.to_string(),
                    h.episode_key.clone(),
                    format!("{:.0} s", h.at_s),
                    format!("{:.0} %", h.elapsed * 100.0),
                    h.section.clone().unwrap_or_else(|| "-".into()),
                    f(f64::from(h.why.distance)),
                    h.why.path.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &["episode", "key", "at", "elapsed", "section", "distance", "found by"],
                &rows
            )
        );
        println!(
            "{} moments searched in dims [{}]",
            r.space_moments,
            r.dims.join(", ")
        );
        return Ok(());
    }
    if let Some(id) = a.like {
        let q = EpisodeQuery {
            episode_id: Some(id),
            k: a.k,
            diversity: a.diversity,
            ..EpisodeQuery::default()
        };
        let hits = m.similar_episodes(&q, &Access::All)?;
        if json {
            return print_json(&hits);
        }
        let rows: Vec<Vec<String>> = hits
            .iter()
            .map(|h| {
                let d = &h.why.details;
                vec![
                    h.episode_id.to_string(),
                    h.key.clone(),
                    h.piece.clone().unwrap_or_else(|| "-".into()),
                    f(f64::from(h.why.score)),
                    format!(
                        "structure {} text {} context {}",
                        f(d["structure"].as_f64().unwrap_or(0.0)),
                        f(d["text"].as_f64().unwrap_or(0.0)),
                        f(d["context"].as_f64().unwrap_or(0.0))
                    ),
                    d["shared_words"].to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &["episode", "key", "piece", "score", "parts", "shared words"],
                &rows
            )
        );
        return Ok(());
    }
    let text = a.text.clone().unwrap_or_default();
    let hits = m
        .search_text(&text, a.kind.clone(), a.piece.clone(), a.k, &Access::All)
        .await?;
    if json {
        return print_json(&hits);
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.episode_id.to_string(),
                h.key.clone(),
                h.kind.clone(),
                h.piece.clone().unwrap_or_else(|| "-".into()),
                f(h.bm25),
                h.snippet.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["episode", "key", "kind", "piece", "bm25", "text"], &rows)
    );
    Ok(())
}

async fn show(m: &Memory, id: i64, limit: usize, json: bool) -> Result<(), Failure> {
    let v = m
        .episode(id, limit)
        .await?
        .ok_or_else(|| Failure::Data(format!("episode {id} not found (not_found)")))?;
    if json {
        return print_json(&v);
    }
    let mut head = serde_json::to_value(&v).map_err(|e| Failure::Data(e.to_string()))?;
    if let Some(o) = head.as_object_mut() {
        o.remove("steps");
        o.remove("moments");
    }
    print!("{}", table::object(&head, &[]));
    if !v.steps.is_empty() {
        println!("\nsteps (first {}):", v.steps.len());
        let rows: Vec<Vec<String>> = v
            .steps
            .iter()
            .map(|s| vec![table::utc(s.at_ms), s.kind.clone(), s.data.to_string()])
            .collect();
        print!("{}", table::render(&["at", "kind", "data"], &rows));
    }
    if !v.moments.is_empty() {
        println!("\nmoments (first {}):", v.moments.len());
        let dims = v.dims.clone().unwrap_or_default();
        let rows: Vec<Vec<String>> = v
            .moments
            .iter()
            .map(|mo| {
                vec![
                    table::utc(mo.at_ms),
                    mo.section.clone().unwrap_or_else(|| "-".into()),
                    mo.vector
                        .iter()
                        .zip(&dims)
                        .map(|(x, d)| format!("{d}={x:.2}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect();
        print!("{}", table::render(&["at", "section", "vector"], &rows));
    }
    Ok(())
}

fn patterns(m: &Memory, kind: &str, piece: Option<&str>, json: bool) -> Result<(), Failure> {
    let Some(piece) = piece else {
        let scopes = m.scopes();
        if json {
            let v: Vec<Value> = scopes
                .iter()
                .map(|(k, p, n)| json!({"kind": k, "piece": p, "episodes": n}))
                .collect();
            return print_json(&v);
        }
        let rows: Vec<Vec<String>> = scopes
            .iter()
            .map(|(k, p, n)| {
                vec![
                    k.clone(),
                    p.clone().unwrap_or_else(|| "-".into()),
                    n.to_string(),
                ]
            })
            .collect();
        print!("{}", table::render(&["kind", "piece", "episodes"], &rows));
        return Ok(());
    };
    let r = m.patterns(kind, Some(piece))?;
    if json {
        return print_json(&r);
    }
    println!("{} episodes of {kind} {piece}\n", r.episodes);
    let pct = |a: f32| format!("{:.0} %", a * 100.0);
    let rows: Vec<Vec<String>> = r
        .transitions
        .iter()
        .map(|t| {
            vec![
                t.dim.clone(),
                t.direction.clone(),
                format!("{}–{}", pct(t.elapsed.0), pct(t.elapsed.1)),
                format!("{} of {}", t.episodes, t.of),
                format!("{:.0} %", t.baseline * 100.0),
                format!("{:.1e}", t.p_value),
            ]
        })
        .collect();
    println!(
        "transitions (within {} s):",
        tutti_memory::patterns::HORIZON_S
    );
    print!(
        "{}",
        table::render(
            &["dim", "went", "from", "episodes", "elsewhere", "p"],
            &rows
        )
    );
    let rows: Vec<Vec<String>> = r
        .events
        .iter()
        .map(|e| {
            vec![
                e.label.clone(),
                format!("{} of {}", e.episodes, e.of),
                e.count.to_string(),
                format!(
                    "{}–{} ({} episodes)",
                    pct(e.mostly.0),
                    pct(e.mostly.1),
                    e.mostly_episodes
                ),
            ]
        })
        .collect();
    println!("\noverrides and other labelled steps:");
    print!(
        "{}",
        table::render(&["label", "episodes", "times", "mostly at"], &rows)
    );
    let rows: Vec<Vec<String>> = r
        .sections
        .iter()
        .map(|s| {
            vec![
                format!("{} → {}", s.from, s.to),
                s.episodes.to_string(),
                format!("{:.0} %", s.at * 100.0),
            ]
        })
        .collect();
    println!("\nsection changes:");
    print!("{}", table::render(&["change", "episodes", "at"], &rows));
    let rows: Vec<Vec<String>> = r
        .correlations
        .iter()
        .map(|c| {
            vec![
                c.feature.clone(),
                format!("{:+.2}", c.r),
                c.n.to_string(),
                format!("{:.1e}", c.p_value),
            ]
        })
        .collect();
    println!("\ncorrelations with reward:");
    print!(
        "{}",
        table::render(&["feature", "r", "episodes", "p"], &rows)
    );
    let rows: Vec<Vec<String>> = r
        .outliers
        .iter()
        .map(|o| vec![o.episode_id.to_string(), format!("{:.1}", o.score)])
        .collect();
    println!("\noutliers:");
    print!("{}", table::render(&["episode", "score"], &rows));
    Ok(())
}

async fn check(m: &Memory, repair: bool, json: bool) -> Result<(), Failure> {
    let r = m.check(repair).await?;
    if json {
        print_json(&r)?;
    } else {
        let v = serde_json::to_value(&r).map_err(|e| Failure::Data(e.to_string()))?;
        print!("{}", table::object(&v, &[]));
    }
    if r.ok {
        Ok(())
    } else {
        Err(Failure::Problems(
            "the memory's indexes or tables disagree with the store (run with --repair)".into(),
        ))
    }
}

async fn import(m: &Memory, file: &Path, json: bool) -> Result<(), Failure> {
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| Failure::Io(format!("{}: {e}", file.display())))?;
        Box::new(std::io::BufReader::new(f))
    };
    let (mut ok, mut failed) = (0u64, Vec::new());
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Failure::Io(format!("{}: {e}", file.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: Result<Record, _> = serde_json::from_str(&line);
        let r = match rec {
            Ok(r) => m
                .record(r)
                .await
                .map_err(|e| format!("{} ({})", e, e.code())),
            Err(e) => Err(format!("{e} (malformed_json)")),
        };
        match r {
            Ok(_) => ok += 1,
            Err(e) => failed.push(json!({"line": n + 1, "error": e})),
        }
    }
    if !m.flush(Duration::from_secs(60)).await {
        return Err(Failure::Io(
            "the store did not take the episodes in time".into(),
        ));
    }
    if json {
        print_json(&json!({"imported": ok, "failed": failed}))?;
    } else {
        println!("imported {ok} episodes");
        for f in &failed {
            eprintln!("line {}: {}", f["line"], f["error"].as_str().unwrap_or(""));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Data(format!(
            "{} lines refused; nothing of them was stored",
            failed.len()
        )))
    }
}

async fn export(m: &Memory, out: &Path, force: bool) -> Result<(), Failure> {
    let mut w: Box<dyn Write> = if out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        if out.exists() && !force {
            return Err(Failure::Usage(format!(
                "{} exists: choose another file with --out or overwrite it with --force",
                out.display()
            )));
        }
        let f = std::fs::File::create(out)
            .map_err(|e| Failure::Io(format!("{}: {e}", out.display())))?;
        Box::new(std::io::BufWriter::new(f))
    };
    let mut after = 0i64;
    let mut n = 0u64;
    loop {
        let page = m
            .store()
            .memory_episodes_after(after, 500)
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let Some(last) = page.last() else { break };
        after = last.episode.id;
        let len = page.len();
        for full in &page {
            let rec = m.to_record(full)?;
            let line = serde_json::to_string(&rec).map_err(|e| Failure::Data(e.to_string()))?;
            writeln!(w, "{line}").map_err(|e| Failure::Io(format!("{}: {e}", out.display())))?;
            n += 1;
        }
        if len < 500 {
            break;
        }
    }
    w.flush()
        .map_err(|e| Failure::Io(format!("{}: {e}", out.display())))?;
    if out.as_os_str() != "-" {
        eprintln!("exported {n} episodes to {}", out.display());
    }
    Ok(())
}

/// Runs `tutti memory …`.
pub fn command(args: MemoryArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tutti memory: tokio runtime: {e}");
            return ExitCode::from(70);
        }
    };
    let r = rt.block_on(async {
        let create = matches!(args.command, MemoryCmd::Import { .. } | MemoryCmd::Mcp);
        let m = open(&args.data_dir, create).await?;
        let r = match &args.command {
            MemoryCmd::Search(a) => search(&m, a, args.json).await,
            MemoryCmd::Show { id, limit } => show(&m, *id, *limit, args.json).await,
            MemoryCmd::Patterns { kind, piece } => patterns(&m, kind, piece.as_deref(), args.json),
            MemoryCmd::Check { repair } => check(&m, *repair, args.json).await,
            MemoryCmd::Import { file } => import(&m, file, args.json).await,
            MemoryCmd::Export { out, force } => export(&m, out, *force).await,
            MemoryCmd::Mcp => crate::memory_mcp::serve(&m).await,
        };
        close(m).await;
        r
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutti memory: {e}");
            ExitCode::from(e.code())
        }
    }
}
