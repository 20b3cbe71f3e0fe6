//! Retrieval against oracles: exact search equals brute force, the hierarchical filter never
//! drops a true match, MMR is the greedy rule it claims and returns diverse results, and the
//! approximate index's recall holds on realistic data. Indexes are built in memory from
//! store rows (no database needed), so properties run many cases quickly.

use proptest::prelude::*;
use tutti_memory::index::{bucket_of, Index};
use tutti_memory::retrieve::{self, mmr, Access, MomentQuery};
use tutti_memory::synth::{self, ShowShape};
use tutti_memory::vector::AnnConfig;
use tutti_memory::{codec, Moment};
use tutti_store::{MemChunkRow, MemContext, MemEpisodeFull, MemEpisodeRow, MemStatus};

const DIMS: usize = 4;

fn full(
    id: i64,
    piece: &str,
    started: i64,
    ended: i64,
    dims: &[String],
    moments: &[Moment],
) -> MemEpisodeFull {
    MemEpisodeFull {
        episode: MemEpisodeRow {
            id,
            key: format!("k{id}"),
            context: MemContext {
                kind: "show".into(),
                piece: Some(piece.into()),
                spec_version: None,
                ensemble_id: Some(1 + id % 2),
                subject: None,
                venue: None,
                tags: vec![],
                text: format!("episode {id}"),
            },
            dims_json: Some(serde_json::to_string(dims).unwrap()),
            status: MemStatus::Completed,
            started_at_ms: started,
            ended_at_ms: Some(ended),
            rating: None,
            notes: String::new(),
            engagement_json: None,
            reward: Some(0.5),
            steps: 0,
            moments: moments.len() as i64,
            done_seq: Some(id),
        },
        steps: vec![],
        chunks: vec![MemChunkRow {
            first_seq: 0,
            count: moments.len() as i64,
            dims: dims.len() as i64,
            data: codec::encode(moments, dims.len()),
        }],
    }
}

fn names() -> Vec<String> {
    (0..DIMS).map(|i| format!("d{i}")).collect()
}

/// Episodes of `moments` (vector, section) each, 1 s apart.
fn build(eps: &[Vec<([f32; DIMS], u8)>], ann_min: usize) -> Index {
    let mut ix = Index::new(AnnConfig {
        ann_min,
        ..AnnConfig::default()
    });
    for (e, ms) in eps.iter().enumerate() {
        let started = 1_000_000 * e as i64;
        let moments: Vec<Moment> = ms
            .iter()
            .enumerate()
            .map(|(i, (v, s))| Moment {
                at_ms: started + i as i64 * 1000,
                section: Some(format!("s{s}")),
                vector: v.to_vec(),
            })
            .collect();
        let ended = started + (ms.len().max(1) as i64) * 1000;
        ix.insert(
            &full(e as i64 + 1, "p", started, ended, &names(), &moments),
            false,
        )
        .unwrap();
    }
    ix
}

/// Every moment with its episode id, section, bucket and vector.
fn all(eps: &[Vec<([f32; DIMS], u8)>]) -> Vec<(i64, u8, u8, [f32; DIMS])> {
    let mut out = Vec::new();
    for (e, ms) in eps.iter().enumerate() {
        let len = (ms.len().max(1) as f32) * 1000.0;
        for (i, (v, s)) in ms.iter().enumerate() {
            out.push((e as i64 + 1, *s, bucket_of(i as f32 * 1000.0 / len), *v));
        }
    }
    out
}

fn dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn episodes() -> impl Strategy<Value = Vec<Vec<([f32; DIMS], u8)>>> {
    prop::collection::vec(
        prop::collection::vec((prop::array::uniform4(-1.0f32..1.0), 0u8..3), 1..40),
        1..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn exact_search_equals_brute_force(eps in episodes(), q in prop::array::uniform4(-1.0f32..1.0), k in 1usize..20) {
        let ix = build(&eps, usize::MAX);
        let r = retrieve::moments(&ix, &MomentQuery { kind: "show".into(), piece: Some("p".into()), vector: q.to_vec(), k, ..MomentQuery::default() }, &Access::All).unwrap();
        let mut oracle: Vec<f32> = all(&eps).iter().map(|m| dist(&q, &m.3)).collect();
        oracle.sort_by(f32::total_cmp);
        oracle.truncate(k);
        let got: Vec<f32> = r.hits.iter().map(|h| h.why.distance).collect();
        prop_assert_eq!(got.len(), oracle.len());
        for (g, o) in got.iter().zip(&oracle) {
            prop_assert!((g - o).abs() < 1e-4, "{:?} vs {:?}", got, oracle);
        }
    }

    #[test]
    fn the_hierarchical_filter_never_drops_a_true_match(
        eps in episodes(), q in prop::array::uniform4(-1.0f32..1.0), k in 1usize..20,
        section in prop::option::of(0u8..3), from in 0.0f32..1.0, span in 0.05f32..1.0,
        exclude in prop::option::of(1i64..12), readable in prop::option::of(1i64..3),
    ) {
        let ix = build(&eps, usize::MAX);
        let to = (from + span).min(1.0);
        let access = match readable { Some(e) => Access::Ensembles(vec![e]), None => Access::All };
        let query = MomentQuery {
            kind: "show".into(), piece: Some("p".into()), vector: q.to_vec(), k,
            section: section.map(|s| format!("s{s}")), elapsed_from: Some(from), elapsed_to: Some(to),
            exclude_episode: exclude, ..MomentQuery::default()
        };
        let r = retrieve::moments(&ix, &query, &access).unwrap();
        let lo_b = |b: u8| b as f32 / 10.0;
        let mut oracle: Vec<f32> = all(&eps).iter()
            .filter(|m| section.is_none_or(|s| s == m.1))
            .filter(|m| lo_b(m.2) + 0.1 > from && lo_b(m.2) < to)
            .filter(|m| Some(m.0) != exclude)
            .filter(|m| readable.is_none_or(|e| 1 + m.0 % 2 == e))
            .map(|m| dist(&q, &m.3)).collect();
        oracle.sort_by(f32::total_cmp);
        oracle.truncate(k);
        let got: Vec<f32> = r.hits.iter().map(|h| h.why.distance).collect();
        prop_assert_eq!(got.len(), oracle.len());
        for (g, o) in got.iter().zip(&oracle) {
            prop_assert!((g - o).abs() < 1e-4);
        }
        for h in &r.hits {
            prop_assert!(Some(h.episode_id) != exclude);
        }
    }

    #[test]
    fn mmr_is_the_greedy_rule(dists in prop::collection::vec(0.0f32..5.0, 1..60), k in 1usize..15, lambda in 0.0f32..1.0, seed in 0u64..1000) {
        let mut dists = dists;
        dists.sort_by(f32::total_cmp);
        let sim = |a: usize, b: usize| (((a * 31 + b * 17) as u64 ^ seed) % 100) as f32 / 100.0;
        let sym = |a: usize, b: usize| sim(a.min(b), a.max(b));
        let picked = mmr(&dists, k, lambda, &sym);
        prop_assert_eq!(picked.len(), k.min(dists.len()));
        let mut chosen: Vec<usize> = Vec::new();
        for (i, _, red, score) in &picked {
            prop_assert!(!chosen.contains(i));
            // Nothing left scores higher than what was picked.
            for (j, dj) in dists.iter().enumerate() {
                if chosen.contains(&j) || j == *i { continue; }
                let rj = chosen.iter().map(|&c| sym(c, j)).fold(0.0f32, f32::max);
                let sj = lambda * (1.0 / (1.0 + dj)) - (1.0 - lambda) * rj;
                prop_assert!(sj <= score + 1e-5);
            }
            let ri = chosen.iter().map(|&c| sym(c, *i)).fold(0.0f32, f32::max);
            prop_assert!((ri - red).abs() < 1e-5);
            chosen.push(*i);
        }
        if lambda >= 1.0 - f32::EPSILON {
            let plain: Vec<usize> = (0..k.min(dists.len())).collect();
            prop_assert_eq!(chosen, plain);
        }
    }
}

#[test]
fn mmr_returns_diverse_results() {
    // Twelve episodes, each a tight cluster; the query sits in the first.
    let eps: Vec<Vec<([f32; DIMS], u8)>> = (0..12)
        .map(|e| {
            (0..20)
                .map(|i| {
                    let c = e as f32 * 0.8;
                    ([c + i as f32 * 0.001, 0.0, 0.0, 0.0], 0)
                })
                .collect()
        })
        .collect();
    let ix = build(&eps, usize::MAX);
    let q = MomentQuery {
        kind: "show".into(),
        piece: Some("p".into()),
        vector: vec![0.0, 0.0, 0.0, 0.0],
        k: 5,
        ..MomentQuery::default()
    };
    let plain = retrieve::moments(&ix, &q, &Access::All).unwrap();
    let diverse = retrieve::moments(
        &ix,
        &MomentQuery {
            diversity: Some(0.7),
            ..q
        },
        &Access::All,
    )
    .unwrap();
    let distinct = |r: &retrieve::MomentResults| {
        let mut e: Vec<i64> = r.hits.iter().map(|h| h.episode_id).collect();
        e.sort_unstable();
        e.dedup();
        e.len()
    };
    assert_eq!(distinct(&plain), 1);
    assert_eq!(distinct(&diverse), 5);
    assert_eq!(diverse.hits[0].episode_id, plain.hits[0].episode_id);
    assert!(diverse.hits[1].why.redundancy > 0.0);
}

#[test]
fn approximate_recall_holds_on_show_data() {
    let shape = ShowShape {
        moments: 540,
        ..ShowShape::default()
    };
    let mut ix = Index::new(AnnConfig {
        ann_min: 5_000,
        ..AnnConfig::default()
    });
    let dims = synth::show_dims();
    for i in 0..40 {
        let r = synth::show(i, 11, &shape);
        let f = full(
            i as i64 + 1,
            "synthetic",
            r.started_at_ms.unwrap(),
            r.ended_at_ms.unwrap(),
            &dims,
            &r.moments,
        );
        ix.insert(&f, true).unwrap();
    }
    ix.finish_bulk();
    assert_eq!(ix.stats().approximate_spaces, 1);
    let (mut hit, mut total) = (0usize, 0usize);
    for i in 0..60u64 {
        let r = synth::show(1000 + i, 12, &shape);
        let v = r.moments[(i as usize * 7) % 540].vector.clone();
        let q = MomentQuery {
            kind: "show".into(),
            piece: Some("synthetic".into()),
            vector: v,
            k: 10,
            ..MomentQuery::default()
        };
        let approx = retrieve::moments(&ix, &q, &Access::All).unwrap();
        let exact =
            retrieve::moments(&ix, &MomentQuery { exact: true, ..q }, &Access::All).unwrap();
        assert!(approx.hits[0].why.path.starts_with("ivf"));
        let truth: Vec<(i64, u32)> = exact.hits.iter().map(|h| (h.episode_id, h.seq)).collect();
        hit += approx
            .hits
            .iter()
            .filter(|h| truth.contains(&(h.episode_id, h.seq)))
            .count();
        total += truth.len();
    }
    let recall = hit as f64 / total as f64;
    assert!(recall >= 0.95, "recall@10 = {recall}");
}
