//! `cargo run --release -p tutti-dsp --example sweep_partitions`: real-time factor of the
//! low-latency convolver for several `max_partition` values (used to choose the default).
use tutti_dsp::bench::{measure, synthetic_ir};
use tutti_dsp::{ConvolutionMode, Convolver, Partitioning};

fn main() {
    for (taps, block) in [(65_536usize, 1024usize), (262_144, 1024), (262_144, 256)] {
        let ir = vec![synthetic_ir(taps, 1), synthetic_ir(taps, 2)];
        for maxp in [2048usize, 4096, 8192, 16_384, 32_768] {
            if maxp < block {
                continue;
            }
            let part = Partitioning {
                mode: ConvolutionMode::LowLatency,
                partition: block,
                max_partition: Some(maxp),
            };
            let mut c = Convolver::new(&ir, part, 1.0).expect("conv");
            let cpu = measure(&mut c, block, 5.0).as_secs_f64();
            println!(
                "taps {taps} block {block} max_partition {maxp}: {:.0}x  {:?}",
                5.0 / cpu,
                c.segments()
            );
        }
    }
}
