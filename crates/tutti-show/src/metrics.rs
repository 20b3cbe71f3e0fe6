//! Server-side measurements, exposed in Prometheus text format on `/metrics` and
//! summarised in the performers' `stats` frame.
//!
//! Histograms are fixed buckets of atomic counters: recording is three relaxed atomic
//! adds, safe on every connection's hot path. (A general metrics crate would take a lock
//! or buffer samples per observation; these are the only histograms we need.)
//!
//! Must never: lock or allocate when recording.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bucket upper bounds in seconds (`+Inf` is implicit).
pub const BUCKETS: [f64; 16] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

fn bucket(seconds: f64) -> usize {
    BUCKETS
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(BUCKETS.len())
}

/// Observations gathered by one task (plain integers), added to a shared [`Histogram`]
/// in one go: a fan-out of thousands of writes touches the shared counters once.
#[derive(Debug, Default)]
pub struct LocalHistogram {
    counts: [u64; BUCKETS.len() + 1],
    sum_ns: u64,
    count: u64,
}

impl LocalHistogram {
    /// Record one observation in seconds.
    pub fn observe(&mut self, seconds: f64) {
        self.counts[bucket(seconds)] += 1;
        self.sum_ns += (seconds.max(0.0) * 1e9) as u64;
        self.count += 1;
    }

    /// Add everything to `into` and start again.
    pub fn drain_into(&mut self, into: &Histogram) {
        if self.count == 0 {
            return;
        }
        for (i, c) in self.counts.iter_mut().enumerate() {
            if *c > 0 {
                into.counts[i].fetch_add(std::mem::take(c), Relaxed);
            }
        }
        into.sum_ns
            .fetch_add(std::mem::take(&mut self.sum_ns), Relaxed);
        into.count
            .fetch_add(std::mem::take(&mut self.count), Relaxed);
    }
}

impl Histogram {
    /// Record one observation in seconds.
    pub fn observe(&self, seconds: f64) {
        self.counts[bucket(seconds)].fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add((seconds.max(0.0) * 1e9) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// An upper bound of quantile `q` (0..1) from the buckets, in seconds.
    pub fn quantile(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = (q * total as f64).ceil() as u64;
        let mut acc = 0;
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                return BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            }
        }
        f64::INFINITY
    }

    /// Write this histogram in Prometheus text format.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut acc = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            acc += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {acc}");
        }
        acc += self.counts[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {acc}");
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {}",
            self.sum_ns.load(Relaxed) as f64 / 1e9,
            self.count.load(Relaxed)
        );
    }
}

/// Write one counter or gauge.
pub fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        let h = Histogram::default();
        for _ in 0..90 {
            h.observe(0.000_3);
        }
        for _ in 0..10 {
            h.observe(0.2);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.5), 0.000_5);
        assert_eq!(h.quantile(0.95), 0.25);
        let mut s = String::new();
        h.render(&mut s, "x_seconds", "test");
        assert!(s.contains("x_seconds_bucket{le=\"0.0005\"} 90"), "{s}");
        assert!(s.contains("x_seconds_bucket{le=\"+Inf\"} 100"), "{s}");
        assert!(s.contains("x_seconds_count 100"), "{s}");
    }

    #[test]
    fn a_local_histogram_adds_up_to_the_same_as_direct_observations() {
        let (direct, merged) = (Histogram::default(), Histogram::default());
        let mut local = LocalHistogram::default();
        for i in 0..1000 {
            let s = f64::from(i) * 0.000_37;
            direct.observe(s);
            local.observe(s);
            if i % 97 == 0 {
                local.drain_into(&merged);
            }
        }
        local.drain_into(&merged);
        let (mut a, mut b) = (String::new(), String::new());
        direct.render(&mut a, "h", "t");
        merged.render(&mut b, "h", "t");
        assert_eq!(a, b);
        assert_eq!(merged.count(), 1000);
    }
}
