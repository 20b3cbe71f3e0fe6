//! How the raw loopback floor depends on the number of socket pairs and the message size.
//!
//! `cargo run --release -p tutti-load --example floor -- [SECONDS]`

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let duration = std::time::Duration::from_secs_f64(secs.clamp(0.1, 60.0));
    println!("| pairs | bytes | messages | CPU s | µs/message |");
    println!("|---|---|---|---|---|");
    for (pairs, bytes) in [
        (1, 640),
        (2, 640),
        (8, 640),
        (32, 640),
        (128, 640),
        (2, 64),
        (2, 4096),
    ] {
        match tutti_load::measure_floor_with(bytes, pairs, duration) {
            Ok(f) => println!(
                "| {} | {} | {} | {:.2} | {:.2} |",
                f.pairs, f.message_bytes, f.messages, f.cpu_s, f.us_per_message
            ),
            Err(e) => println!("| {pairs} | {bytes} | error: {e} | | |"),
        }
    }
}
