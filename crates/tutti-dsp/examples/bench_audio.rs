//! `cargo run --release -p tutti-dsp --example bench_audio -- [SECONDS] [FILTER] [REPEATS]`:
//! prints the benchmark table (same code as `tutti bench audio`). An empty FILTER runs all cases.
fn main() {
    let mut args = std::env::args().skip(1);
    let audio_seconds = args.next().and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let filter = args.next().filter(|f| !f.is_empty());
    let repeats = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let results = tutti_dsp::bench::run(&tutti_dsp::bench::BenchOptions {
        audio_seconds,
        filter,
        repeats,
    });
    print!("{}", tutti_dsp::bench::markdown(&results));
}
