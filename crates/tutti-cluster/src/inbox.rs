//! The receivers' checks: a conductor's inbox of edges' partials, an edge's inbox of the
//! conductor's states. Each refuses what it must not apply, says why, and counts it.

use std::collections::BTreeMap;

use tutti_consensus::{EngineConfig, Partials, SparsePartials};

use crate::wire::{EdgeId, PartialsMsg, StateMsg, WireError, SCHEMA};

/// Why a message was refused (nothing of it was applied).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Reject {
    /// The bytes are not a message.
    #[error("malformed: {0}")]
    Malformed(WireError),
    /// Another wire schema.
    #[error("schema {found}, this node speaks {SCHEMA}")]
    WrongSchema {
        /// The message's.
        found: u16,
    },
    /// Another show's message on this show's subject.
    #[error("for show {found}")]
    WrongShow {
        /// The message's show.
        found: String,
    },
    /// Partials from an edge this conductor has not admitted.
    #[error("from edge {edge}, which is not one of this show's edges")]
    UnknownEdge {
        /// The edge it claims to come from.
        edge: EdgeId,
    },
    /// A sequence or tick already seen: a replay, or a message that came out of order.
    #[error("{what} {seq} from {from} is not after {last}")]
    Replayed {
        /// `seq` (partials and states) or `tick` (states).
        what: &'static str,
        /// The sender.
        from: EdgeId,
        /// The message's.
        seq: u64,
        /// The last one taken.
        last: u64,
    },
    /// A state from a conductor whose leadership term has passed.
    #[error("term {term} of conductor {conductor} is older than the current term {current}")]
    StaleTerm {
        /// The sender.
        conductor: EdgeId,
        /// The message's term.
        term: u64,
        /// The current one.
        current: u64,
    },
    /// A second conductor in the same term (two nodes conducting the show at once).
    #[error("conductor {found} in term {term}, which {current} holds")]
    TwoConductors {
        /// The sender.
        found: EdgeId,
        /// The term.
        term: u64,
        /// The conductor of the term.
        current: EdgeId,
    },
    /// Partials that do not fit the show's engine (another piece's, or sums that are not
    /// finite and non-negative).
    #[error("partials from {edge} do not fit the show: {reason}")]
    Invalid {
        /// The sender.
        edge: EdgeId,
        /// Why.
        reason: String,
    },
}

impl Reject {
    /// The counter it goes to (stable names, for metrics and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Reject::Malformed(_) => "malformed",
            Reject::WrongSchema { .. } => "wrong_schema",
            Reject::WrongShow { .. } => "wrong_show",
            Reject::UnknownEdge { .. } => "unknown_edge",
            Reject::Replayed { .. } => "replayed",
            Reject::StaleTerm { .. } => "stale_term",
            Reject::TwoConductors { .. } => "two_conductors",
            Reject::Invalid { .. } => "invalid",
        }
    }
}

/// Refused messages, counted by [`Reject::kind`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejects(BTreeMap<&'static str, u64>);

impl Rejects {
    fn count(&mut self, r: &Reject) {
        *self.0.entry(r.kind()).or_default() += 1;
    }

    /// How many of one kind.
    pub fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// How many in all.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Kind → count, the kinds seen.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}

/// What a merge used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MergeReport {
    /// Admitted edges whose latest partials were fresh enough, merged.
    pub edges: usize,
    /// Admitted edges left out: nothing received yet, or older than the age allowed.
    pub stale: usize,
    /// Participants in the merged partials.
    pub participants: u64,
}

struct Slot {
    /// The last sequence taken (0: none yet).
    seq: u64,
    /// The latest partials and when they were received (the caller's clock, seconds).
    latest: Option<(SparsePartials, f64)>,
}

/// A conductor's partials for one show: the latest of each admitted edge.
pub struct PartialsInbox {
    show: String,
    cfg: EngineConfig,
    edges: BTreeMap<EdgeId, Slot>,
    rejects: Rejects,
}

impl PartialsInbox {
    /// An inbox for `show`, whose engine is configured as `cfg`; no edge admitted yet.
    pub fn new(show: &str, cfg: EngineConfig) -> PartialsInbox {
        PartialsInbox {
            show: show.to_owned(),
            cfg,
            edges: BTreeMap::new(),
            rejects: Rejects::default(),
        }
    }

    /// `edge` is one of the show's edges (the cluster's membership says so).
    pub fn admit(&mut self, edge: EdgeId) {
        self.edges.entry(edge).or_insert(Slot {
            seq: 0,
            latest: None,
        });
    }

    /// `edge` left: its partials are no longer merged. Whether it was admitted.
    pub fn forget(&mut self, edge: &EdgeId) -> bool {
        self.edges.remove(edge).is_some()
    }

    /// Admitted edges.
    pub fn edges(&self) -> usize {
        self.edges.len()
    }

    /// Take a partials message received at `now` (seconds, the caller's clock), or refuse it
    /// (counted; nothing changes).
    pub fn accept(&mut self, bytes: &[u8], now: f64) -> Result<(), Reject> {
        let r = self.check(bytes);
        match r {
            Ok(m) => {
                let slot = self.edges.get_mut(&m.edge).expect("checked: admitted");
                slot.seq = m.seq;
                slot.latest = Some((m.partials, now));
                Ok(())
            }
            Err(e) => {
                self.rejects.count(&e);
                Err(e)
            }
        }
    }

    fn check(&self, bytes: &[u8]) -> Result<PartialsMsg, Reject> {
        let m = PartialsMsg::decode(bytes).map_err(Reject::Malformed)?;
        if m.schema != SCHEMA {
            return Err(Reject::WrongSchema { found: m.schema });
        }
        if m.show != self.show {
            return Err(Reject::WrongShow { found: m.show });
        }
        let Some(slot) = self.edges.get(&m.edge) else {
            return Err(Reject::UnknownEdge { edge: m.edge });
        };
        if m.seq <= slot.seq {
            return Err(Reject::Replayed {
                what: "seq",
                from: m.edge,
                seq: m.seq,
                last: slot.seq,
            });
        }
        if let Err(e) = m.partials.check(&self.cfg) {
            return Err(Reject::Invalid {
                edge: m.edge,
                reason: e.to_string(),
            });
        }
        Ok(m)
    }

    /// Merge the latest partials of every admitted edge received within `max_age` seconds
    /// of `now` into `out` (emptied first, at engine time `time`); older ones are left out
    /// (a partitioned edge's crowd stops counting instead of freezing the show).
    pub fn merge_into(&self, now: f64, max_age: f64, time: f64, out: &mut Partials) -> MergeReport {
        *out = Partials::empty(&self.cfg, time);
        let mut report = MergeReport::default();
        for slot in self.edges.values() {
            match &slot.latest {
                Some((p, at)) if now - at <= max_age => {
                    // Checked against this engine's layout when it was taken.
                    if out.merge_sparse(p).is_ok() {
                        report.edges += 1;
                    } else {
                        report.stale += 1;
                    }
                }
                _ => report.stale += 1,
            }
        }
        report.participants = out.participants();
        report
    }

    /// The refused messages so far.
    pub fn rejects(&self) -> &Rejects {
        &self.rejects
    }
}

/// An edge's view of one show's states: the newest term, its conductor and tick.
pub struct StateInbox {
    show: String,
    term: u64,
    seq: u64,
    tick: u64,
    conductor: Option<EdgeId>,
    rejects: Rejects,
}

impl StateInbox {
    /// An inbox for `show`'s states; no conductor heard yet.
    pub fn new(show: &str) -> StateInbox {
        StateInbox {
            show: show.to_owned(),
            term: 0,
            seq: 0,
            tick: 0,
            conductor: None,
            rejects: Rejects::default(),
        }
    }

    /// Take a state (returned, for its bytes to go to the phones), or refuse it (counted).
    /// A higher term replaces the conductor (a takeover); within a term the publish
    /// sequence only goes up and the tick never goes down (a paused show's conductor
    /// publishes its tick again, with a new sequence).
    pub fn accept(&mut self, bytes: &[u8]) -> Result<StateMsg, Reject> {
        let r = self.check(bytes);
        match r {
            Ok(m) => {
                self.term = m.term;
                self.seq = m.seq;
                self.tick = m.tick;
                self.conductor = Some(m.conductor.clone());
                Ok(m)
            }
            Err(e) => {
                self.rejects.count(&e);
                Err(e)
            }
        }
    }

    fn check(&self, bytes: &[u8]) -> Result<StateMsg, Reject> {
        let m = StateMsg::decode(bytes).map_err(Reject::Malformed)?;
        if m.schema != SCHEMA {
            return Err(Reject::WrongSchema { found: m.schema });
        }
        if m.show != self.show {
            return Err(Reject::WrongShow { found: m.show });
        }
        if m.term < self.term {
            return Err(Reject::StaleTerm {
                conductor: m.conductor,
                term: m.term,
                current: self.term,
            });
        }
        if m.term == self.term {
            if let Some(c) = &self.conductor {
                if *c != m.conductor {
                    return Err(Reject::TwoConductors {
                        found: m.conductor,
                        term: m.term,
                        current: c.clone(),
                    });
                }
                if m.seq <= self.seq {
                    return Err(Reject::Replayed {
                        what: "seq",
                        from: m.conductor,
                        seq: m.seq,
                        last: self.seq,
                    });
                }
                if m.tick < self.tick {
                    return Err(Reject::Replayed {
                        what: "tick",
                        from: m.conductor,
                        seq: m.tick,
                        last: self.tick,
                    });
                }
            }
        }
        Ok(m)
    }

    /// The current term and its conductor (none before the first state).
    pub fn conductor(&self) -> Option<(u64, &EdgeId)> {
        self.conductor.as_ref().map(|c| (self.term, c))
    }

    /// The refused messages so far.
    pub fn rejects(&self) -> &Rejects {
        &self.rejects
    }
}
