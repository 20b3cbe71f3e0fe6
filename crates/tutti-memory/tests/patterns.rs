//! Pattern extraction on synthetic shows: the planted pattern (intensity falls 30 % in, the
//! performer locks it there, shows with the lock are rated higher) is found; in shows
//! without it, no transition, correlation or outlier is reported; a show unlike the others
//! is flagged as an outlier.

mod common;

use common::{open, WAIT};
use tutti_memory::synth::{self, ShowShape};

fn shape(piece: &str, planted: bool) -> ShowShape {
    ShowShape {
        piece: piece.into(),
        moments: 120,
        planted,
        ..ShowShape::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planted_pattern_is_found_and_none_where_none_was_planted() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, mem) = open(dir.path()).await;
    for i in 0..30 {
        mem.record(synth::show(i, 3, &shape("planted", true)))
            .await
            .unwrap();
        mem.record(synth::show(i, 4, &shape("null", false)))
            .await
            .unwrap();
    }
    // One show of the null piece unlike the others: everything loud and erratic.
    let mut odd = synth::show(99, 4, &shape("null", false));
    odd.key = Some("odd".into());
    for (k, m) in odd.moments.iter_mut().enumerate() {
        for x in m.vector.iter_mut().take(11) {
            *x = if k % 2 == 0 { 1.0 } else { 0.0 };
        }
    }
    mem.record(odd).await.unwrap();
    assert!(mem.flush(WAIT).await);

    let p = mem.patterns("show", Some("planted")).unwrap();
    assert_eq!(p.episodes, 30);
    let fall = p
        .transitions
        .iter()
        .find(|t| t.dim == "intensity" && t.direction == "down")
        .unwrap_or_else(|| panic!("no planted fall: {:#?}", p.transitions));
    assert!((0.29..0.41).contains(&fall.elapsed.0), "{fall:?}");
    assert!(fall.episodes as f64 >= 0.7 * fall.of as f64, "{fall:?}");
    // Nothing but intensity moves significantly (its rebound included).
    assert!(
        p.transitions.iter().all(|t| t.dim == "intensity"),
        "{:#?}",
        p.transitions
    );
    let lock = p
        .events
        .iter()
        .find(|e| e.label == "intensity lock")
        .expect("the lock");
    assert!(
        lock.episodes >= 10 && (0.29..0.41).contains(&lock.mostly.0),
        "{lock:?}"
    );
    let corr = p
        .correlations
        .iter()
        .find(|c| c.feature == "event:intensity lock")
        .unwrap_or_else(|| panic!("no reward correlation: {:#?}", p.correlations));
    assert!(corr.r > 0.5);
    assert!(p.outliers.is_empty(), "{:#?}", p.outliers);
    assert_eq!(p.priors.len(), synth::SHOW_DIMS.len());

    let n = mem.patterns("show", Some("null")).unwrap();
    assert_eq!(n.episodes, 31);
    assert!(n.transitions.is_empty(), "{:#?}", n.transitions);
    assert!(n.correlations.is_empty(), "{:#?}", n.correlations);
    assert!(
        n.events.iter().all(|e| e.label.starts_with("section")),
        "{:#?}",
        n.events
    );
    assert_eq!(n.outliers.len(), 1, "{:#?}", n.outliers);
    let odd_id = mem
        .search_text(
            "99",
            Some("show".into()),
            Some("null".into()),
            1,
            &tutti_memory::Access::All,
        )
        .await
        .unwrap();
    assert_eq!(n.outliers[0].episode_id, odd_id[0].episode_id);
}
