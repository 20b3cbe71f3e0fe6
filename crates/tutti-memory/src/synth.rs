//! Synthetic but realistic episodes, deterministic for a seed, for the tests and the
//! benchmark (`cargo run --release -p tutti-memory --example memory_bench -- generate`):
//!
//! * **small** episodes, the shape the predecessor was measured on: a context (one of a few
//!   domains, tags), a one-sentence description drawn from a Zipf-like vocabulary of common
//!   words plus two or three names from a sparse one (the code at hand), 4 steps
//!   (tool, action, result), an outcome;
//! * **show** episodes: 90 minutes with a moment every 10 s (540 moments) of [`SHOW_DIMS`]:
//!   parameters that drift around each show's own baseline (an AR(1) walk), participation,
//!   agreement, dispersion, the section (changing at a different time in each show) and the
//!   elapsed time; optionally a **planted** pattern: intensity falls sharply 30 % in (in 90 %
//!   of the shows) and the performer locks it there (in 60 %), and shows with the lock are
//!   rated higher.
//!
//! Must never: read a clock or randomness it was not given.

// Numeric kernels index several arrays in step; a range loop says that most plainly.
#![allow(clippy::needless_range_loop)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{Context, Moment, Outcome, Step};
use crate::Record;

/// The dimensions of a synthetic show's moments.
pub const SHOW_DIMS: [&str; 16] = [
    "intensity",
    "brightness",
    "density",
    "space",
    "motion",
    "texture",
    "warmth",
    "tension",
    "tempo",
    "pitch",
    "width",
    "participation",
    "agreement",
    "dispersion",
    "section",
    "elapsed",
];

const SECTIONS: [&str; 3] = ["calm", "pulse", "storm"];

/// What a synthetic show looks like.
#[derive(Debug, Clone)]
pub struct ShowShape {
    /// Piece.
    pub piece: String,
    /// Moments.
    pub moments: usize,
    /// Seconds between moments.
    pub every_s: f32,
    /// Plant the pattern.
    pub planted: bool,
    /// The first show's start, unix ms.
    pub start_ms: i64,
}

impl Default for ShowShape {
    fn default() -> Self {
        ShowShape {
            piece: "synthetic".into(),
            moments: 540,
            every_s: 10.0,
            planted: false,
            start_ms: 1_767_225_600_000,
        }
    }
}

/// The dimension names as strings.
pub fn show_dims() -> Vec<String> {
    SHOW_DIMS.iter().map(|s| (*s).to_owned()).collect()
}

fn gauss(r: &mut StdRng) -> f32 {
    // Box–Muller.
    let u: f32 = r.random_range(1e-6..1.0);
    let v: f32 = r.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// Show number `i` of a set generated with `seed`.
pub fn show(i: u64, seed: u64, shape: &ShowShape) -> Record {
    let mut r = StdRng::seed_from_u64(seed ^ (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    let n = shape.moments.max(2);
    let start = shape.start_ms + i as i64 * 86_400_000;
    let len_s = n as f32 * shape.every_s;
    let params = 11;
    let base: Vec<f32> = (0..params).map(|_| r.random_range(0.25..0.75)).collect();
    let mut x = base.clone();
    let s1 = r.random_range(0.2..0.5);
    let s2 = r.random_range(0.55..0.85);
    let drops = shape.planted && r.random_bool(0.9);
    let locks = shape.planted && r.random_bool(0.6);
    let drop_at = 0.30 + r.random_range(0.0..0.04);
    let mut moments = Vec::with_capacity(n);
    let mut steps = Vec::new();
    let mut section = 0usize;
    let mut locked = false;
    for k in 0..n {
        let t = k as f32 * shape.every_s;
        let frac = t / len_s;
        for j in 0..params {
            x[j] += 0.1 * (base[j] - x[j]) + 0.025 * gauss(&mut r);
            x[j] = x[j].clamp(0.0, 1.0);
        }
        if drops && frac >= drop_at && frac < drop_at + 0.05 {
            // The planted fall: intensity goes down fast.
            x[0] = (x[0] - 0.12).max(0.0);
        }
        let new_section = if frac >= s2 {
            2
        } else if frac >= s1 {
            1
        } else {
            0
        };
        let at_ms = start + (t * 1000.0) as i64;
        if new_section != section {
            section = new_section;
            steps.push(Step {
                at_ms,
                kind: "section".into(),
                data: serde_json::json!({"label": format!("section {}", SECTIONS[section]), "to": SECTIONS[section]}),
            });
        }
        if locks && !locked && frac >= drop_at {
            locked = true;
            steps.push(Step {
                at_ms,
                kind: "override".into(),
                data: serde_json::json!({"label": "intensity lock", "param": "intensity", "action": "lock", "value": 0.2}),
            });
        }
        let mut v = x.clone();
        v.push((0.6 + 0.1 * gauss(&mut r)).clamp(0.0, 1.0)); // participation
        v.push((0.7 + 0.1 * gauss(&mut r)).clamp(0.0, 1.0)); // agreement
        v.push((0.2 + 0.05 * gauss(&mut r)).clamp(0.0, 1.0)); // dispersion
        v.push(section as f32 / 2.0);
        v.push(t / 5400.0);
        moments.push(Moment {
            at_ms,
            section: Some(SECTIONS[section].into()),
            vector: v,
        });
    }
    let rating = if shape.planted {
        if locks {
            r.random_range(0.75..1.0)
        } else {
            r.random_range(0.2..0.5)
        }
    } else {
        r.random_range(0.3..0.9)
    };
    Record {
        key: Some(format!("synth-show-{seed}-{i}")),
        context: Context {
            kind: "show".into(),
            piece: Some(shape.piece.clone()),
            venue: Some(["hall", "club", "park"][(i % 3) as usize].into()),
            tags: vec!["synthetic".into()],
            text: format!("synthetic show {i} of {}", shape.piece),
            ..Context::default()
        },
        dims: Some(show_dims()),
        started_at_ms: Some(start),
        ended_at_ms: Some(start + (len_s * 1000.0) as i64),
        steps,
        moments,
        outcome: Some(Outcome {
            rating: Some(rating),
            notes: String::new(),
            ..Outcome::default()
        }),
        open: false,
    }
}

const DOMAINS: [&str; 8] = [
    "web-api",
    "cli",
    "database",
    "frontend",
    "audio",
    "networking",
    "testing",
    "deploy",
];
const TOOLS: [&str; 6] = ["read", "edit", "run", "search", "test", "build"];
const WORDS: [&str; 60] = [
    "fix",
    "add",
    "refactor",
    "handler",
    "route",
    "query",
    "index",
    "cache",
    "timeout",
    "retry",
    "parser",
    "config",
    "login",
    "token",
    "session",
    "upload",
    "download",
    "stream",
    "socket",
    "buffer",
    "latency",
    "memory",
    "leak",
    "crash",
    "panic",
    "error",
    "message",
    "schema",
    "migration",
    "table",
    "column",
    "button",
    "page",
    "layout",
    "style",
    "filter",
    "reverb",
    "mixer",
    "channel",
    "sample",
    "rate",
    "deploy",
    "pipeline",
    "docker",
    "image",
    "release",
    "version",
    "benchmark",
    "profile",
    "flaky",
    "test",
    "fixture",
    "mock",
    "client",
    "server",
    "proxy",
    "header",
    "cookie",
    "json",
    "pagination",
];

/// Small episode number `i` of a set generated with `seed`: a context, a short description,
/// 4 steps, an outcome.
pub fn small(i: u64, seed: u64) -> Record {
    let mut r = StdRng::seed_from_u64(seed ^ (i.wrapping_mul(0x2545_f491_4f6c_dd1d)));
    let domain = DOMAINS[r.random_range(0..DOMAINS.len())];
    // Zipf-like: low word indices much more frequent.
    let mut words = Vec::new();
    for _ in 0..r.random_range(6..12) {
        let u: f64 = r.random_range(0.0..1.0);
        let k = ((WORDS.len() as f64).powf(u) as usize).saturating_sub(1);
        words.push(WORDS[k.min(WORDS.len() - 1)]);
    }
    // Two or three names of the code at hand: a large, sparse vocabulary.
    let names: Vec<String> = (0..r.random_range(2..4))
        .map(|_| {
            let u: f64 = r.random_range(0.0..1.0);
            format!(
                "{}{}",
                WORDS[r.random_range(0..WORDS.len())],
                (5000f64.powf(u)) as u32
            )
        })
        .collect();
    let start = 1_767_225_600_000 + i as i64 * 60_000;
    let steps = (0..4)
        .map(|s| Step {
            at_ms: start + s * 5_000,
            kind: TOOLS[r.random_range(0..TOOLS.len())].into(),
            data: serde_json::json!({"action": words.get(s as usize).copied().unwrap_or("do"), "ok": r.random_bool(0.8)}),
        })
        .collect();
    Record {
        key: Some(format!("synth-small-{seed}-{i}")),
        context: Context {
            kind: "task".into(),
            piece: Some(domain.into()),
            tags: vec![
                domain.into(),
                ["rust", "python", "go"][r.random_range(0..3)].into(),
            ],
            text: format!("{} {} in {}", words.join(" "), domain, names.join(" ")),
            ..Context::default()
        },
        dims: None,
        started_at_ms: Some(start),
        ended_at_ms: Some(start + 20_000),
        steps,
        moments: Vec::new(),
        outcome: Some(Outcome {
            rating: Some(r.random_range(0.0..1.0)),
            ..Outcome::default()
        }),
        open: false,
    }
}
