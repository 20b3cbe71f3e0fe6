//! The raw TCP floor measured several ways on this machine, for reading `tutti load
//! --calibrate`'s ratio: the calibration's ping-pong with 1 to 64 pairs (one pair leaves a
//! core idle, so every message wakes a sleeping CPU), and the kernel's share alone (one
//! thread plays both ends, nothing waits) over 2 to 5,000 connections.
//!
//! `cargo run --release -p tutti-load --example floor_variants [message bytes]`

use std::time::Duration;

use tutti_load::calibrate::{measure_floor_with, measure_no_wait_floor};

fn main() -> Result<(), tutti_load::LoadError> {
    let size = match std::env::args().nth(1).map(|s| s.parse::<usize>()) {
        None => 544,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("the message size must be a number of bytes: {e}");
            std::process::exit(2);
        }
    };
    let run = Duration::from_secs(3);
    println!("{size}-byte messages, CPU microseconds per message (send and receive together)");
    for pairs in [1, 2, 4, 16, 64] {
        let f = measure_floor_with(size, pairs, run)?;
        println!(
            "  ping-pong, {pairs:>5} pairs:                {:6.2}",
            f.us_per_message
        );
    }
    for pairs in [2, 256, 2_500, 5_000] {
        let f = measure_no_wait_floor(size, pairs, 2, run)?;
        println!(
            "  kernel only, 2 threads, {pairs:>5} pairs:  {:6.2}",
            f.us_per_message
        );
    }
    Ok(())
}
