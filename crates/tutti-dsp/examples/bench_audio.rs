//! `cargo run --release -p tutti-dsp --example bench_audio -- [SECONDS] [FILTER]`:
//! prints the benchmark table (same code as `tutti bench audio`).
fn main() {
    let mut args = std::env::args().skip(1);
    let audio_seconds = args.next().and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let filter = args.next();
    let results = tutti_dsp::bench::run(&tutti_dsp::bench::BenchOptions {
        audio_seconds,
        filter,
    });
    print!("{}", tutti_dsp::bench::markdown(&results));
}
