//! A stand-alone `tutti load` for benchmarking this crate before the binary's subcommand
//! exists: the same options, on a single-threaded runtime for the coordinator (the
//! clients run on the crate's own threads, `--threads`).
//!
//! `cargo run --release -p tutti-load --example load -- --clients 500 --duration 20s`

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    opts: tutti_load::LoadOptions,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let json = cli.opts.json;
    match rt.block_on(tutti_load::run(cli.opts)) {
        Ok(report) => {
            if json {
                println!("{:#}", report.to_json());
            } else {
                print!("{}", report.table());
            }
            if report.problems().is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("tutti load: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
