//! Bus messages (issue 14, `tutti_cluster`): bytes from the network as an edge's partials
//! to a show's conductor and as a conductor's state to an edge. No bytes panic; what the
//! inbox takes merges into partials that still fit the show's engine and finish a tick.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_cluster::{EdgeId, PartialsInbox, StateInbox};
use tutti_consensus::{Engine, Partials};

fuzz_target!(|data: &[u8]| {
    let cfg = tutti_spec::PieceSpec::demo().engine_config();
    let mut inbox = PartialsInbox::new("ABC123", cfg.clone());
    for name in ["edge-a", "edge-b"] {
        inbox.admit(EdgeId::new(name).expect("a valid name"));
    }
    // The same bytes twice: the second is a replay when the first was taken.
    let first = inbox.accept(data, 1.0);
    let second = inbox.accept(data, 1.0);
    if first.is_ok() {
        assert_eq!(second.map_err(|e| e.kind()), Err("replayed"));
    }
    let mut out = Partials::empty(&cfg, 1.0);
    let report = inbox.merge_into(1.0, 1.0, 1.0, &mut out);
    assert_eq!(report.edges, usize::from(first.is_ok()));
    let mut engine = Engine::new(cfg.clone()).expect("the demo's engine");
    engine
        .tick_from(&out, 1.0)
        .expect("merged partials fit the engine they were checked against");

    let mut states = StateInbox::new("ABC123");
    if states.accept(data).is_ok() {
        assert_eq!(
            states.accept(data).map_err(|e| e.kind()).err(),
            Some("replayed")
        );
    }
});
