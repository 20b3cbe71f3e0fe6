//! The one-line progress display on stderr, refreshed once a second, shown only when
//! stderr is a terminal (so logs and `--json` output stay clean).
//!
//! Must never: write to stdout, or run after the coordinator stops it.

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::attack::Attack;
use crate::client::{Phase, Shared};
use crate::sys::{cpu_time, process_cpu, Who};

/// Refresh the line until the phase reaches `Stop`, then end it with a newline.
pub(crate) async fn run(
    shared: Arc<Shared>,
    attack: Option<Arc<Attack>>,
    server_pid: Option<u32>,
    clients: u32,
    mut phase: watch::Receiver<Phase>,
) {
    let second = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let attack_counts = |a: &Attack| {
        (
            a.garbage_sent.iter().map(|n| n.load(Relaxed)).sum::<u64>(),
            a.churn_joined.load(Relaxed),
        )
    };
    let mut last_attack = attack.as_deref().map_or((0, 0), attack_counts);
    let mut last = (
        Instant::now(),
        0u64,
        0u64,
        0u64,
        cpu_time(Who::Process),
        server_pid.and_then(|p| process_cpu(p).ok()),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Stop {
                    eprintln!();
                    return;
                }
                // Rates need a whole second: wait for the next tick to print.
                continue;
            }
        }
        let now = Instant::now();
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-3);
        let sent = shared.inputs_sent.load(Relaxed);
        let acked = shared.inputs_acked.load(Relaxed);
        let states = shared.states.load(Relaxed);
        let gen = cpu_time(Who::Process);
        let srv = server_pid.and_then(|p| process_cpu(p).ok());
        let pct = |a: Duration, b: Duration| (a.saturating_sub(b)).as_secs_f64() / dt * 100.0;
        let server = match (srv, last.5) {
            (Some(a), Some(b)) => format!(" | server {:.0} %", pct(a, b)),
            _ => String::new(),
        };
        let name = match *phase.borrow() {
            Phase::Ramp => "ramp",
            Phase::Steady => "steady",
            Phase::Settle => "settle",
            Phase::Stop => "stop",
        };
        let attackers = match attack.as_deref() {
            Some(a) => {
                let now_attack = attack_counts(a);
                let line = format!(
                    " | garbage {:.0}/s, churn {:.0} joins/s",
                    (now_attack.0 - last_attack.0) as f64 / dt,
                    (now_attack.1 - last_attack.1) as f64 / dt
                );
                last_attack = now_attack;
                line
            }
            None => String::new(),
        };
        let line = format!(
            "{:>6.1} s {name:<6} {}/{clients} joined, {} failed, {} dropped | {:.0} in/s, {:.0} acked/s, {:.0} states/s{server}{attackers} | gen {:.0} %",
            shared.start.elapsed().as_secs_f64(),
            shared.connected.load(Relaxed),
            shared.failed.load(Relaxed),
            shared.dropped.load(Relaxed),
            (sent - last.1) as f64 / dt,
            (acked - last.2) as f64 / dt,
            (states - last.3) as f64 / dt,
            pct(gen, last.4),
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\x1b[2K\r{line}");
        let _ = err.flush();
        last = (now, sent, acked, states, gen, srv);
    }
}
