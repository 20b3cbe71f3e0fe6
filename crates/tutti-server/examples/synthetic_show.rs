//! Writes a deterministic synthetic show (the real engine's states, one a second, with health
//! and an override log) into a data directory, for the report's benchmark and for trying
//! `tutti report` without a real show:
//!
//! ```sh
//! cargo run --release -p tutti-server --example synthetic_show -- \
//!   --data-dir /tmp/show3h --seconds 10800 --participants 10000 --params 7 --tick-hz 2
//! ```
//!
//! `--params` counts the continuous parameters; the piece also has a `section` vote.

use std::path::PathBuf;
use std::time::Instant;

use tutti_server::synthetic::{record, SyntheticShow};
use tutti_store::{Store, StoreConfig};

fn main() {
    let mut o = SyntheticShow::default();
    let mut data_dir = PathBuf::from("tutti-data");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let num = |v: &str| -> f64 {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: '{v}' is not a number")))
        };
        match flag.as_str() {
            "--data-dir" => data_dir = PathBuf::from(value),
            "--seconds" => o.seconds = num(value).clamp(10.0, 86_400.0) as u32,
            "--participants" => o.participants = num(value).clamp(1.0, 100_000.0) as u32,
            "--params" => o.params = num(value).clamp(1.0, 8.0) as usize,
            "--moving" => o.moving = num(value).clamp(0.0, 0.66),
            "--tick-hz" => o.tick_hz = num(value).clamp(1.0, 60.0) as u32,
            "--seed" => o.seed = num(value) as u64,
            "--code" => o.code = value.clone(),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    std::fs::create_dir_all(&data_dir)
        .unwrap_or_else(|e| usage(&format!("{}: {e}", data_dir.display())));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let rec = rt.block_on(async {
        let store = Store::open(StoreConfig::new(data_dir.join("tutti.db")))
            .unwrap_or_else(|e| usage(&e.to_string()));
        let rec = record(&store, &o)
            .await
            .unwrap_or_else(|e| usage(&e.to_string()));
        store
            .close()
            .await
            .unwrap_or_else(|e| usage(&e.to_string()));
        rec
    });
    println!(
        "show {} in {}: {} s, {} participants, {} parameters, {} inputs, generated in {:.1} s",
        rec.show.code,
        data_dir.display(),
        o.seconds,
        o.participants,
        rec.spec.params.len(),
        rec.inputs,
        started.elapsed().as_secs_f64()
    );
}

fn usage(msg: &str) -> ! {
    eprintln!("synthetic_show: {msg}");
    std::process::exit(2)
}
