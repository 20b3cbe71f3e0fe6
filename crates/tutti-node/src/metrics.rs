//! A node's counters for one show, shared with whoever reads them (a future `/metrics`,
//! and the node registry's heartbeat).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// What one node did for one show. Counters only go up; flags say what is true now.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Edge: partials published.
    pub partials_sent: AtomicU64,
    /// Edge: ticks whose partials were not published (not connected to the bus); they are
    /// dropped, never queued.
    pub partials_dropped: AtomicU64,
    /// Conductor: partials messages accepted.
    pub partials_taken: AtomicU64,
    /// Conductor: edges merged in the last tick.
    pub edges_merged: AtomicU64,
    /// Conductor: states published.
    pub states_published: AtomicU64,
    /// Edge: states accepted and handed to the sinks.
    pub states_received: AtomicU64,
    /// Conductor: leases taken (the first one included; each later one is a failover).
    pub takeovers: AtomicU64,
    /// Conductor: leadership given up (refused renewal, or the lease ran out unrenewed).
    pub stepped_down: AtomicU64,
    /// Conductor: performer commands committed, applied and acknowledged.
    pub commands_applied: AtomicU64,
    /// Conductor: performer commands answered with an error (refused by validation, another
    /// schema or show, the lease lost while committing); nothing applied.
    pub commands_refused: AtomicU64,
    /// Conductor: whether it holds an unexpired lease now.
    pub leading: AtomicBool,
    /// Edge: whether it was connected to the bus at its last tick.
    pub connected: AtomicBool,
    /// The term of the lease held (conductor) or of the states taken (edge).
    pub term: AtomicU64,
    rejects: Mutex<BTreeMap<&'static str, u64>>,
}

impl NodeMetrics {
    pub(crate) fn reject(&self, kind: &'static str) {
        let mut r = self.rejects.lock().unwrap_or_else(|p| p.into_inner());
        *r.entry(kind).or_default() += 1;
    }

    /// Refused messages of `kind` (`tutti_cluster::Reject::kind`, or `unreadable_state`:
    /// a state whose audience bytes are not a state frame of the piece, or a performer
    /// command's `command_malformed`, `command_no_reply`, `command_wrong_schema`,
    /// `command_wrong_show`, `command_not_leader`, `command_lease_lost`).
    pub fn rejects(&self, kind: &str) -> u64 {
        let r = self.rejects.lock().unwrap_or_else(|p| p.into_inner());
        r.get(kind).copied().unwrap_or(0)
    }

    /// Refused messages in all.
    pub fn rejects_total(&self) -> u64 {
        let r = self.rejects.lock().unwrap_or_else(|p| p.into_inner());
        r.values().sum()
    }

    /// A few counters by name, for the node registry's record (`tutti_bus::ServedShow`):
    /// what was sent, published, received, taken over, the performer commands applied and
    /// refused, and the messages refused in all.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        [
            ("partials_sent", self.partials_sent.load(Relaxed)),
            ("partials_dropped", self.partials_dropped.load(Relaxed)),
            ("partials_taken", self.partials_taken.load(Relaxed)),
            ("states_published", self.states_published.load(Relaxed)),
            ("states_received", self.states_received.load(Relaxed)),
            ("takeovers", self.takeovers.load(Relaxed)),
            ("commands_applied", self.commands_applied.load(Relaxed)),
            ("commands_refused", self.commands_refused.load(Relaxed)),
            ("stepped_down", self.stepped_down.load(Relaxed)),
            ("rejected", self.rejects_total()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The counters in Prometheus' text format, labelled with `show`.
    pub fn render(&self, show: &str) -> String {
        let mut out = String::new();
        let c = |out: &mut String, name: &str, v: u64| {
            let _ = writeln!(out, "tutti_node_{name}{{show=\"{show}\"}} {v}");
        };
        c(
            &mut out,
            "partials_sent_total",
            self.partials_sent.load(Relaxed),
        );
        c(
            &mut out,
            "partials_dropped_total",
            self.partials_dropped.load(Relaxed),
        );
        c(
            &mut out,
            "partials_taken_total",
            self.partials_taken.load(Relaxed),
        );
        c(&mut out, "edges_merged", self.edges_merged.load(Relaxed));
        c(
            &mut out,
            "states_published_total",
            self.states_published.load(Relaxed),
        );
        c(
            &mut out,
            "states_received_total",
            self.states_received.load(Relaxed),
        );
        c(&mut out, "takeovers_total", self.takeovers.load(Relaxed));
        c(
            &mut out,
            "stepped_down_total",
            self.stepped_down.load(Relaxed),
        );
        c(
            &mut out,
            "commands_applied_total",
            self.commands_applied.load(Relaxed),
        );
        c(
            &mut out,
            "commands_refused_total",
            self.commands_refused.load(Relaxed),
        );
        c(&mut out, "leading", u64::from(self.leading.load(Relaxed)));
        c(
            &mut out,
            "bus_connected",
            u64::from(self.connected.load(Relaxed)),
        );
        c(&mut out, "term", self.term.load(Relaxed));
        let r = self.rejects.lock().unwrap_or_else(|p| p.into_inner());
        for (kind, n) in r.iter() {
            let _ = writeln!(
                out,
                "tutti_node_rejected_total{{show=\"{show}\",kind=\"{kind}\"}} {n}"
            );
        }
        out
    }
}
