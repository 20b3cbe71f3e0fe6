//! The coordinator of a run: check the limits, probe the server, calibrate, ramp the
//! clients up, measure a steady window, let the last acks arrive, stop everyone, and
//! turn what the clients saw into a [`Report`].
//!
//! Phases: `Ramp` (connections at `--ramp` per second; moving clients start sending as
//! soon as they join) → `Steady` (the measured window of `--duration`, opened once every
//! connection attempt has succeeded or failed) → `Settle` (inputs stop; at most
//! [`SETTLE_MAX`] waiting for every moving client's last ack; with `--cues`, also until
//! every reading client got every acknowledged cue, at most 5 s past the last one's time)
//! → `Stop`. With `--cues`, the performer joins right after the probe and sends only in the
//! `Steady` window. The whole run is bounded by `--max-duration`.
//!
//! Must never: outlive `--max-duration` by more than the close timeout, or leave a
//! client task running after it returns.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tutti_protocol::ServerFrame;

use crate::attack::{run_attacker, Attack, AttackKind, GarbageKind};
use crate::calibrate::measure_floor;
use crate::chat::{ChatShared, CHAT_SETTLE};
use crate::client::{
    connect_and_join, connect_and_join_as, run_client, Endpoint, InputGen, Kind, Outcome, Phase,
    Shared,
};
use crate::cues::{ClientCues, CueShared, Performer, PerformerOutcome};
use crate::options::{Plan, CALIBRATION_TIME, TAIL_MARGIN};
use crate::report::{
    Acks, Asked, Attackers, Calibration, Checks, Churn, Clients, Frames, Garbage, Inputs, Latency,
    Phases, ProcessFigures, Report, Silent, States,
};
use crate::sync::{Reference, SyncShared};
use crate::sys::{self, cpu_time, Who};
use crate::{LoadError, LoadOptions};

/// File descriptors kept free for everything but the clients.
pub const FD_MARGIN: u64 = 64;
/// Longest wait for the last acks once inputs stop.
pub const SETTLE_MAX: Duration = Duration::from_secs(5);
/// Longest wait for clients to close at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait, with `--chat-rooms`, for every connection to follow its room.
const FOLLOW_MAX: Duration = Duration::from_secs(60);
/// Size assumed for a state frame when the probe saw none.
const DEFAULT_STATE_BYTES: usize = 512;

/// Run the load described by `opts` and report what was measured.
pub async fn run(opts: LoadOptions) -> Result<Report, LoadError> {
    let plan = opts.plan()?;
    let started_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run_start = Instant::now();
    let mut deadline = run_start + plan.max_duration;
    let mut warnings = Vec::new();

    let fd = sys::raise_fd_limit()?;
    check_capacity(&plan, fd, sys::ephemeral_ports())?;
    if let Some(pid) = plan.server_pid {
        sys::process_cpu(pid).map_err(|e| {
            LoadError::option("--server-pid", format!("cannot read process {pid}: {e}"))
        })?;
    }
    let addr = resolve(&plan).await?;
    let probe_addr = addr;
    let endpoint = Endpoint {
        addr,
        url: plan.target.url.clone(),
        sources: plan.source_addrs.clone(),
        show: plan.show.clone(),
        // With cues or chat, a delivery's arrival is the kernel's (see `stamped`).
        rx_stamps: plan.cues.is_some() || plan.chat.is_some(),
    };

    // Many rooms: the admin makes the users and rooms first (not part of the run's bound:
    // `--max-duration` counts from when they are made); their connections join no show.
    let made = match &plan.rooms {
        Some(rp) => {
            let made = crate::rooms::setup(&plan.target, addr, rp).await?;
            crate::rooms::check_token_life(&plan, &made)?;
            deadline = Instant::now() + plan.max_duration;
            Some(made)
        }
        None => None,
    };
    let Probed {
        params,
        show,
        state_hz,
        input_rate,
        phone,
        state_bytes,
    } = match &made {
        Some(_) => Probed::default(),
        None => probe(&endpoint, &plan).await?,
    };

    let inputs = InputGen::new(&params, plan.votes);
    if made.is_some() {
        // Staff connections to rooms send no inputs and read no states.
    } else if plan.moving > 0.0 && !inputs.has_sliders() && !inputs.has_votes() {
        warnings.push("the piece has no parameter to move: nobody sends inputs".into());
    } else if plan.votes > 0.0 && !inputs.has_votes() {
        warnings.push("the piece has no discrete parameter: every input is a slider move".into());
    } else if plan.votes < 1.0 && !inputs.has_sliders() && plan.moving > 0.0 {
        warnings.push("the piece has no continuous parameter: every input is a vote".into());
    }
    if made.is_none() && plan.moving > 0.0 && plan.rate > f64::from(input_rate) {
        warnings.push(format!(
            "--rate {} is over the piece's input_rate {input_rate}: expect rate_limited errors",
            plan.rate
        ));
    }
    if made.is_none() && state_bytes.is_none() {
        warnings.push("the probe client received no state within 5 s".into());
    }

    // Cues: the performer joins the probe's show now, so that a wrong token, a piece
    // without phone voices or an unknown --cue-voice fail before anything starts.
    let performer = match &plan.cues {
        None => None,
        Some(cp) => Some(
            join_performer(
                cp,
                phone.as_ref(),
                Endpoint {
                    addr: probe_addr,
                    url: plan.target.url.clone(),
                    sources: Vec::new(),
                    show: Some(show.clone()),
                    rx_stamps: false,
                },
            )
            .await?,
        ),
    };

    // Clock sync and cues: the reference finds the true show clock before any client
    // starts (one reference serves both: they ask for the same one).
    let reference_target = plan
        .sync
        .as_ref()
        .map(|s| &s.reference)
        .or(plan.cues.as_ref().map(|c| &c.reference));
    let reference = match reference_target {
        None => None,
        Some(target) => {
            let unreachable = |message: String| LoadError::Unreachable {
                url: target.url.clone(),
                message,
            };
            let addr = resolve_target(target).await?;
            let ep = Endpoint {
                addr,
                url: target.url.clone(),
                sources: Vec::new(),
                show: plan.show.clone(),
                rx_stamps: false,
            };
            let (ws, _) = connect_and_join(&ep, 0)
                .await
                .map_err(|m| unreachable(format!("sync reference: {m}")))?;
            let origin = Instant::now();
            let r = Reference::start(ws, origin).await.map_err(unreachable)?;
            Some((r, origin))
        }
    };
    let sync_shared = match (&plan.sync, &reference) {
        (Some(sync), Some((r, origin))) => Some(SyncShared {
            origin: *origin,
            truth_ms: r.first.mid(),
            drift_ppm: sync.drift_ppm,
        }),
        _ => None,
    };
    let cue_shared = match (&plan.cues, &reference) {
        (Some(cp), Some((r, origin))) => Some(Arc::new(CueShared::new(
            *origin,
            r.first.mid(),
            cp.rate,
            plan.duration,
        ))),
        _ => None,
    };
    let reference = reference.map(|(r, _)| r);

    let floor = if plan.calibrate {
        let size = state_bytes.unwrap_or(DEFAULT_STATE_BYTES);
        Some(
            tokio::task::spawn_blocking(move || measure_floor(size, CALIBRATION_TIME))
                .await
                .map_err(|e| LoadError::io("calibration task", std::io::Error::other(e)))??,
        )
    } else {
        None
    };

    let attack = Arc::new(Attack::new(
        plan.garbage_rate,
        plan.churn_rate,
        inputs.first_slider(),
    ));
    let kinds = match &made {
        Some(_) => vec![Kind::Idle; plan.clients as usize],
        None => assign_kinds(plan.clients, plan.moving, plan.slow),
    };
    let order = spawn_order(
        kinds,
        &[
            (AttackKind::Garbage, plan.garbage),
            (AttackKind::Silent, plan.silent),
            (AttackKind::Churn, plan.churn),
        ],
    );
    let (phase_tx, phase_rx) = watch::channel(Phase::Ramp);
    let (rooms_made, staff) = match made {
        Some(m) => (
            Some((m.admin_made, m.setup_s, m.token_ttl_s)),
            Some(m.staff),
        ),
        None => (None, None),
    };
    let room_ids = staff.as_ref().map(|s| s.rooms.clone());
    let chat_shared = plan.chat.as_ref().map(|c| {
        Arc::new(match staff {
            Some(staff) => ChatShared::staff(Instant::now(), staff, c.senders, c.rate),
            None => ChatShared::new(
                Instant::now(),
                u32::try_from(u64::from(plan.clients) + plan.attackers()).unwrap_or(u32::MAX),
                c.senders,
                c.rate,
            ),
        })
    });
    let shared = Arc::new(Shared::new(
        endpoint,
        inputs,
        plan.rate,
        phase_rx.clone(),
        sync_shared,
        cue_shared.clone(),
        chat_shared.clone(),
    ));
    let reference = reference.map(|r| tokio::spawn(r.watch(phase_rx.clone())));
    let cue_lead_ms = performer.as_ref().map_or(0.0, Performer::lead_ms);
    let performer = match (performer, &cue_shared) {
        (Some(p), Some(cs)) => {
            let (voices, rate) = (p.voices().to_vec(), p.rate());
            let task = tokio::spawn(p.run(cs.clone(), phase_rx.clone()));
            Some((task, voices, rate))
        }
        _ => None,
    };
    let progress = std::io::stderr().is_terminal().then(|| {
        tokio::spawn(crate::progress::run(
            shared.clone(),
            (plan.attackers() > 0).then(|| attack.clone()),
            plan.server_pid,
            plan.clients,
            phase_rx.clone(),
        ))
    });

    // Ramp.
    let pool = Pool::new(plan.threads)?;
    let ramp_start = Instant::now();
    let cutoff = deadline
        .checked_sub(TAIL_MARGIN)
        .unwrap_or(deadline)
        .max(ramp_start);
    let step = Duration::from_secs_f64(1.0 / plan.ramp);
    let mut handles = Vec::with_capacity(plan.clients as usize);
    let mut attack_handles = Vec::with_capacity(plan.attackers() as usize);
    let mut truncated = false;
    // Attempts whose join the ramp waits for (churners loop and are not waited for).
    let mut awaited = 0u64;
    for (i, spawn) in order.iter().enumerate() {
        let at = ramp_start + step.mul_f64(i as f64);
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        if Instant::now() >= cutoff {
            truncated = true;
            break;
        }
        match *spawn {
            Spawn::Honest(kind) => {
                let task = run_client(shared.clone(), i as u32, kind);
                handles.push(pool.spawn(i, task));
                awaited += 1;
            }
            Spawn::Attacker(kind) => {
                let task = run_attacker(shared.clone(), attack.clone(), i as u32, kind);
                attack_handles.push(pool.spawn(i, task));
                if kind != AttackKind::Churn {
                    awaited += 1;
                }
            }
        }
    }
    let resolved = || {
        shared.connected.load(Relaxed)
            + shared.failed.load(Relaxed)
            + attack.garbage.resolved()
            + attack.silent.resolved()
    };
    while resolved() < awaited && Instant::now() < cutoff {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_s = ramp_start.elapsed().as_secs_f64();
    // Many rooms: the window opens once every connection follows its room (a connection
    // that cannot is counted when the run ends).
    let follow_start = Instant::now();
    if let (Some(_), Some(chat)) = (&rooms_made, &chat_shared) {
        let follow_by = (follow_start + FOLLOW_MAX).min(cutoff);
        while chat.followers() + shared.dropped.load(Relaxed) < shared.connected.load(Relaxed)
            && Instant::now() < follow_by
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let follow_s = follow_start.elapsed().as_secs_f64();

    // Steady window.
    let window_open = Instant::now();
    let ns = |at: Instant| at.duration_since(shared.start).as_nanos() as u64;
    let server0 = plan.server_pid.and_then(|p| sys::process_cpu(p).ok());
    let gen0 = cpu_time(Who::Process);
    let mut server_rss = RssTrack::new(plan.server_pid);
    let mut gen_rss = RssTrack::new(None);
    shared.window_start_ns.store(ns(window_open), Relaxed);
    let _ = phase_tx.send(Phase::Steady);
    let mut window_close = window_open + plan.duration;
    if window_close > cutoff {
        window_close = cutoff.max(window_open);
        truncated = true;
    }
    loop {
        let now = Instant::now();
        if now >= window_close {
            break;
        }
        let next = (now + Duration::from_secs(1)).min(window_close);
        tokio::time::sleep_until(next.into()).await;
        server_rss.sample();
        gen_rss.sample();
    }
    let window_end = Instant::now();
    shared.window_end_ns.store(ns(window_end), Relaxed);
    let server1 = plan.server_pid.and_then(|p| sys::process_cpu(p).ok());
    let gen1 = cpu_time(Who::Process);
    server_rss.end();
    gen_rss.end();
    let window_s = window_end
        .duration_since(window_open)
        .as_secs_f64()
        .max(1e-9);

    // Settle: inputs stop; wait for the last acks.
    let settle_start = Instant::now();
    let _ = phase_tx.send(Phase::Settle);
    let settle_until = (settle_start + SETTLE_MAX).min(deadline.max(settle_start));
    // Cues: until every reading client got every cue, or the last one's time is well past.
    let cues_pending = |now: Instant| {
        cue_shared
            .as_ref()
            .is_some_and(|c| c.pending(cue_lead_ms, now) && now < deadline)
    };
    // Chat: until every post is answered and every follower read up to the last one.
    let chat_until = (settle_start + CHAT_SETTLE).min(deadline.max(settle_start));
    let chat_pending = |now: Instant| {
        chat_shared
            .as_ref()
            .is_some_and(|c| c.pending() && now < chat_until)
    };
    loop {
        let now = Instant::now();
        if !((shared.unsettled.load(Relaxed) > 0 && now < settle_until)
            || cues_pending(now)
            || chat_pending(now))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let settle_s = settle_start.elapsed().as_secs_f64();

    // Stop.
    let _ = phase_tx.send(Phase::Stop);
    let close_by = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    let mut outcomes = Vec::with_capacity(handles.len());
    let mut stuck = 0u64;
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(close_by, h).await {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(_)) => stuck += 1,
            Err(_) => {
                abort.abort();
                stuck += 1;
            }
        }
    }
    if stuck > 0 {
        warnings.push(format!(
            "{stuck} clients did not stop in time and were aborted"
        ));
    }
    let mut stuck_attackers = 0u64;
    for h in attack_handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(close_by, h).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => stuck_attackers += 1,
            Err(_) => {
                abort.abort();
                stuck_attackers += 1;
            }
        }
    }
    if stuck_attackers > 0 {
        warnings.push(format!(
            "{stuck_attackers} attackers did not stop in time and were aborted"
        ));
    }
    if let Some(p) = progress {
        let _ = p.await;
    }
    let reference = match reference {
        Some(r) => match tokio::time::timeout(CLOSE_TIMEOUT, r).await {
            Ok(Ok(r)) => Some(r),
            _ => {
                warnings.push("the sync reference did not stop in time".into());
                None
            }
        },
        None => None,
    };
    let performer = match (performer, &cue_shared) {
        (Some((task, voices, rate)), Some(cs)) => {
            match tokio::time::timeout(CLOSE_TIMEOUT, task).await {
                Ok(Ok(o)) => Some(o),
                _ => {
                    warnings.push("the cue performer did not stop in time".into());
                    Some(PerformerOutcome::stuck(rate, voices, cue_lead_ms, cs))
                }
            }
        }
        _ => None,
    };
    pool.shutdown().await;
    if truncated {
        warnings.push("--max-duration cut the run short".into());
    }

    // Report.
    let count = |k: Kind| outcomes.iter().filter(|o| o.kind == k).count() as u64;
    let readers: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.connected && o.kind != Kind::Slow)
        .collect();
    let rates: Vec<f64> = readers
        .iter()
        .map(|o| o.states_in_window as f64 / window_s)
        .collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let slow_rates: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.connected && o.kind == Kind::Slow)
        .map(|o| o.states_in_window as f64 / window_s)
        .collect();
    let state_hz = f64::from(state_hz);
    let per_client_min = rates.iter().copied().reduce(f64::min).unwrap_or(0.0);
    let per_client_max = rates.iter().copied().reduce(f64::max).unwrap_or(0.0);
    // The mean of equal rates can round below their minimum; keep it within the range.
    let per_client_mean = mean(&rates).clamp(per_client_min, per_client_max);
    let sent: u64 = outcomes.iter().map(|o| o.inputs_in_window).sum();
    let acked: u64 = outcomes.iter().map(|o| o.acked_in_window).sum();
    let states_in_window: u64 = outcomes.iter().map(|o| o.states_in_window).sum();
    let moving_checked: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.kind == Kind::Moving && o.connected && !o.dropped)
        .collect();
    let mismatched = moving_checked
        .iter()
        .filter(|o| o.last_acked != o.last_sent)
        .count() as u64;
    let anomalies: u64 = outcomes.iter().map(|o| o.anomalies).sum();
    let rejected: u64 = outcomes.iter().map(|o| o.rejected).sum();
    let latency = Latency::of(&shared.latency());
    let applied = Latency::of(&shared.applied());
    let rtt = Latency::of(&shared.rtt());
    let rate_of = |milli: u64| (milli != u64::MAX && milli != 0).then(|| milli as f64 / 1000.0);
    let errors = shared.errors();
    let failures = shared
        .failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let drops = shared
        .drops
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let connected = shared.connected.load(Relaxed);
    let dropped = shared.dropped.load(Relaxed);
    let parse_failures = shared.parse_failures.load(Relaxed);
    let examples = shared
        .examples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let server = match (plan.server_pid, server0, server1) {
        (Some(pid), Some(a), Some(b)) => {
            Some(server_rss.figures(pid, b.saturating_sub(a), window_s))
        }
        _ => None,
    };
    let generator = gen_rss.figures(std::process::id(), gen1.saturating_sub(gen0), window_s);
    let calibration = match (floor, &server) {
        (Some(floor), Some(srv)) => {
            let messages = sent + states_in_window;
            let us = if messages > 0 {
                srv.cpu_s * 1e6 / messages as f64
            } else {
                0.0
            };
            Some(Calibration {
                ratio: us / floor.us_per_message,
                floor,
                server_messages: messages,
                server_us_per_message: us,
            })
        }
        _ => None,
    };
    let moving = count(Kind::Moving);
    let asked_per_s = moving as f64 * plan.rate;
    if inputs_ok(&shared) && asked_per_s > 0.0 && (sent as f64 / window_s) < 0.95 * asked_per_s {
        let hint = if plan.threads == 1 {
            "--threads 2 lets it use a second core"
        } else {
            "the machine is out of CPU: the generator competes with the server"
        };
        warnings.push(format!(
            "the clients sent {:.0} inputs/s of the {asked_per_s:.0}/s asked: the generator is \
             short of CPU ({hint})",
            sent as f64 / window_s
        ));
    }
    let attackers = (plan.attackers() > 0).then(|| attackers(&plan, &attack, window_s));
    if attackers.is_some() && calibration.is_some() {
        warnings.push(
            "the server's CPU per message includes what the attackers cost it (their frames \
             are not counted as messages)"
                .into(),
        );
    }
    let sync = match (&plan.sync, &reference) {
        (Some(plan_sync), Some(r)) => {
            let syncing: Vec<&crate::sync::SyncOutcome> =
                outcomes.iter().filter_map(|o| o.sync.as_ref()).collect();
            Some(crate::sync::figures(
                window_s,
                &plan_sync.reference.url,
                plan_sync.drift_ppm,
                &syncing,
                r,
            ))
        }
        _ => None,
    };
    let cues = match (&plan.cues, &cue_shared, &performer, &reference) {
        (Some(cp), Some(cs), Some(p), Some(r)) => {
            let clients: Vec<ClientCues> = readers
                .iter()
                .map(|o| ClientCues { received: o.cues })
                .collect();
            let reference = crate::sync::reference_figures(&cp.reference.url, r);
            Some(crate::cues::figures(cs, p, reference, &clients))
        }
        _ => None,
    };
    let chat = chat_shared.as_ref().map(|c| {
        let dropped = outcomes
            .iter()
            .filter(|o| o.dropped && o.chat_followed)
            .count() as u64;
        c.figures(window_s, dropped)
    });
    let rooms = match (&rooms_made, &plan.rooms, &chat_shared, room_ids) {
        (Some((admin_made, setup_s, token_ttl_s)), Some(rp), Some(c), Some(room_ids)) => {
            let lasts = c.last_seqs();
            Some(crate::rooms::RoomsFigures {
                rooms: rp.rooms,
                users: rp.users,
                connections: u64::from(plan.clients),
                room_ids,
                admin_made: *admin_made,
                setup_s: *setup_s,
                follow_s,
                token_ttl_s: *token_ttl_s,
                last_seq_min: lasts.iter().copied().min().unwrap_or(0),
                last_seq_max: lasts.iter().copied().max().unwrap_or(0),
                last_seqs: lasts,
            })
        }
        _ => None,
    };
    let checks = Checks {
        all_connected: connected == u64::from(plan.clients) && dropped == 0,
        frames_parsed: parse_failures == 0,
        no_inputs_rejected: rejected == 0 && errors.is_empty(),
        acks_consistent: mismatched == 0 && anomalies == 0,
        latency_measured: moving == 0
            || (latency.samples > 0 && applied.samples + shared.clock_behind.load(Relaxed) > 0),
        attackers_handled: attackers.as_ref().is_none_or(Attackers::handled),
        sync_consistent: plan.sync.is_none()
            || sync
                .as_ref()
                .is_some_and(crate::report::SyncFigures::consistent),
        cues_consistent: plan.cues.is_none()
            || cues
                .as_ref()
                .is_some_and(crate::report::CueFigures::consistent),
        chat_consistent: plan.chat.is_none()
            || chat
                .as_ref()
                .is_some_and(crate::report::ChatFigures::consistent),
    };
    let expected = readers.len() as f64 * window_s * state_hz;
    Ok(Report {
        url: plan.target.url.clone(),
        show,
        started_unix_s,
        asked: Asked {
            clients: plan.clients,
            ramp: plan.ramp,
            rate: plan.rate,
            moving: plan.moving,
            votes: plan.votes,
            slow: plan.slow,
            duration_s: plan.duration.as_secs_f64(),
            source_addrs: plan.source_addrs.len(),
            threads: plan.threads,
            garbage: plan.garbage,
            garbage_rate: plan.garbage_rate,
            silent: plan.silent,
            churn: plan.churn,
            churn_rate: plan.churn_rate,
        },
        phases: Phases {
            ramp_s,
            window_s,
            settle_s,
            total_s: run_start.elapsed().as_secs_f64(),
            truncated,
        },
        clients: Clients {
            asked: plan.clients,
            connected,
            failed: shared.failed.load(Relaxed),
            dropped,
            moving,
            idle: count(Kind::Idle),
            slow: count(Kind::Slow),
            failures,
            drops,
        },
        inputs: Inputs {
            sent,
            sent_per_s: sent as f64 / window_s,
            acked,
            acked_per_s: acked as f64 / window_s,
            rejected,
            sent_total: shared.inputs_sent.load(Relaxed),
            acked_total: shared.inputs_acked.load(Relaxed),
            untracked: outcomes.iter().map(|o| o.untracked).sum(),
        },
        states: States {
            state_hz,
            per_client_mean,
            per_client_min,
            per_client_max,
            delivered_pct: if expected > 0.0 {
                rates.iter().sum::<f64>() * window_s / expected * 100.0
            } else {
                0.0
            },
            slow_per_client_mean: mean(&slow_rates),
            server_rate_min: rate_of(shared.min_rate_milli.load(Relaxed)),
            server_rate_last: rate_of(shared.last_rate_milli.load(Relaxed)),
            received_total: shared.states.load(Relaxed),
        },
        latency,
        applied,
        rtt,
        frames: Frames {
            received: shared.frames.load(Relaxed),
            parse_failures,
            examples,
        },
        acks: Acks {
            checked: moving_checked.len() as u64,
            mismatched,
            anomalies,
            clock_behind: shared.clock_behind.load(Relaxed),
        },
        errors,
        attackers,
        server,
        generator,
        fd_limit: fd.soft,
        calibration,
        sync,
        cues,
        chat,
        rooms,
        warnings,
        checks,
    })
}

/// What the probe learnt of the show.
#[derive(Default)]
struct Probed {
    params: Vec<tutti_protocol::ParamInfo>,
    /// The show's join code.
    show: String,
    state_hz: u32,
    input_rate: u32,
    phone: Option<tutti_protocol::PhoneInfo>,
    /// A state frame's size (none within 5 s: absent).
    state_bytes: Option<usize>,
}

/// The probe: one client joins first, so a wrong URL or show fails fast and clearly, and
/// so the parameters and the state frame's size are known.
async fn probe(endpoint: &Endpoint, plan: &Plan) -> Result<Probed, LoadError> {
    let (mut probe, welcome) =
        connect_and_join(endpoint, 0)
            .await
            .map_err(|message| LoadError::Unreachable {
                url: plan.target.url.clone(),
                message,
            })?;
    let ServerFrame::Welcome {
        params,
        show,
        state_hz,
        input_rate,
        phone,
        ..
    } = welcome
    else {
        return Err(LoadError::Unreachable {
            url: plan.target.url.clone(),
            message: "the answer to join was not a welcome".into(),
        });
    };
    let state_bytes = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = probe.next().await {
            if let Message::Text(t) = m {
                if t.as_str().starts_with(r#"{"type":"state""#) {
                    return Some(t.len());
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let _ = tokio::time::timeout(Duration::from_secs(2), probe.close(None)).await;
    drop(probe);
    Ok(Probed {
        params,
        show: show.code,
        state_hz,
        input_rate,
        phone,
        state_bytes,
    })
}

/// The attackers' figures.
fn attackers(plan: &Plan, a: &Attack, window_s: f64) -> Attackers {
    let map = |m: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>| {
        m.lock().unwrap_or_else(|p| p.into_inner()).clone()
    };
    let errors = a.garbage_errors();
    let sent_total: u64 = a.garbage_sent.iter().map(|n| n.load(Relaxed)).sum();
    let answered: u64 = errors.values().sum();
    let unexpected: u64 = errors
        .iter()
        .filter(|(code, _)| !GarbageKind::fair_answer(code))
        .map(|(_, n)| *n)
        .sum();
    let churn_joined = a.churn_joined.load(Relaxed);
    Attackers {
        garbage: Garbage {
            asked: plan.garbage,
            rate: plan.garbage_rate,
            connected: a.garbage.connected.load(Relaxed),
            failed: a.garbage.failed.load(Relaxed),
            dropped: a.garbage.dropped.load(Relaxed),
            closed_cleanly: a.garbage.closed_cleanly.load(Relaxed),
            sent: sent_total,
            sent_per_s: a.garbage_sent_window.load(Relaxed) as f64 / window_s,
            sent_by_kind: a.garbage_sent(),
            expected: a
                .kinds
                .iter()
                .map(|k| (k.name().to_string(), k.expected().as_str().to_string()))
                .collect(),
            errors,
            unanswered: sent_total.saturating_sub(answered),
            unexpected,
            states: a.garbage_states.load(Relaxed),
            other_frames: a.garbage_other.load(Relaxed),
            unparseable: a.garbage_unparseable.load(Relaxed),
            failures: map(&a.garbage.failures),
            drops: map(&a.garbage.drops),
        },
        silent: Silent {
            asked: plan.silent,
            connected: a.silent.connected.load(Relaxed),
            failed: a.silent.failed.load(Relaxed),
            dropped: a.silent.dropped.load(Relaxed),
            closed_cleanly: a.silent.closed_cleanly.load(Relaxed),
            unread_frames: a.silent_frames.load(Relaxed),
            unread_mib: a.silent_bytes.load(Relaxed) as f64 / (1024.0 * 1024.0),
            failures: map(&a.silent.failures),
            drops: map(&a.silent.drops),
        },
        churn: Churn {
            asked: plan.churn,
            rate: plan.churn_rate,
            attempts: a.churn_attempts.load(Relaxed),
            joined: churn_joined,
            joined_per_s: a.churn_joined_window.load(Relaxed) as f64 / window_s,
            failed: a.churn_failed.load(Relaxed),
            closed_cleanly: a.churn_closed_cleanly.load(Relaxed),
            failures: map(&a.churn_failures),
        },
    }
}

/// Whether the piece let clients send anything at all.
fn inputs_ok(shared: &Shared) -> bool {
    shared.inputs.has_sliders() || shared.inputs.has_votes()
}

/// Refuse plans this process cannot carry: more clients than file descriptors, or than
/// ephemeral ports on the source addresses.
pub(crate) fn check_capacity(
    plan: &Plan,
    fd: sys::FdLimit,
    ports: Option<u64>,
) -> Result<(), LoadError> {
    let clients = plan.connections();
    let fd_soft = fd.soft;
    if clients + FD_MARGIN > fd_soft {
        let attackers = if plan.attackers() > 0 {
            format!(
                " ({} clients and {} attackers)",
                plan.clients,
                plan.attackers()
            )
        } else {
            String::new()
        };
        return Err(LoadError::option(
            "--clients",
            format!(
                "{clients} connections{attackers} need about {} file descriptors, but this process may open {fd_soft} \
                 (hard limit {}). Run several `tutti load` processes with at most {} connections each",
                clients + FD_MARGIN,
                fd.hard,
                fd_soft.saturating_sub(FD_MARGIN)
            ),
        ));
    }
    if let Some(ports) = ports {
        let sources = plan.source_addrs.len().max(1) as u64;
        if clients > ports * sources {
            let need = clients.div_ceil(ports);
            return Err(LoadError::option(
                "--source-addrs",
                format!(
                    "{clients} clients need {need} source addresses at {ports} ephemeral ports each \
                     (e.g. --source-addrs 127.0.0.1-127.0.0.{need} for a loopback server)"
                ),
            ));
        }
    }
    Ok(())
}

/// One connection the ramp starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spawn {
    Honest(Kind),
    Attacker(AttackKind),
}

/// Merge two sequences so that each is spread evenly through the result.
fn spread<T: Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let n = a.len() + b.len();
    let mut out = Vec::with_capacity(n);
    let (mut i, mut j) = (0usize, 0usize);
    for k in 0..n {
        // Take from `b` when it is behind its share of the first k + 1 items.
        let b_due = (k + 1) * b.len() / n.max(1);
        if j < b.len() && (j < b_due || i == a.len()) {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out
}

/// The ramp's order: the honest clients with each kind of attacker spread evenly among
/// them, so that every part of the ramp sees the same mix.
pub(crate) fn spawn_order(honest: Vec<Kind>, attackers: &[(AttackKind, u32)]) -> Vec<Spawn> {
    let mut all: Vec<Spawn> = honest.into_iter().map(Spawn::Honest).collect();
    for &(kind, n) in attackers {
        all = spread(&all, &vec![Spawn::Attacker(kind); n as usize]);
    }
    all
}

/// Spread moving clients and slow readers evenly through the ramp.
pub(crate) fn assign_kinds(clients: u32, moving: f64, slow: f64) -> Vec<Kind> {
    let n = u64::from(clients);
    let n_slow = (slow * n as f64).round() as u64;
    let n_moving = ((moving * n as f64).round() as u64).min(n - n_slow.min(n));
    // Slow readers evenly among all clients, then moving clients evenly among the rest.
    let rest = n - n_slow.min(n);
    let (mut acc_slow, mut acc_moving) = (0u64, 0u64);
    let mut out = Vec::with_capacity(clients as usize);
    for _ in 0..n {
        acc_slow += n_slow;
        if acc_slow >= n {
            acc_slow -= n;
            out.push(Kind::Slow);
            continue;
        }
        acc_moving += n_moving;
        if acc_moving >= rest {
            acc_moving -= rest;
            out.push(Kind::Moving);
        } else {
            out.push(Kind::Idle);
        }
    }
    out
}

/// Join the performer that sends the cues, with the voices it will cue in turn.
async fn join_performer(
    cp: &crate::options::CuePlan,
    phone: Option<&tutti_protocol::PhoneInfo>,
    ep: Endpoint,
) -> Result<Performer, LoadError> {
    let Some(phone) = phone.filter(|p| !p.voices.is_empty()) else {
        return Err(LoadError::option(
            "--cues",
            "the piece gives its phones no voices ([phone] in the piece): there is nothing to cue",
        ));
    };
    let names: Vec<String> = phone.voices.iter().map(|v| v.name.clone()).collect();
    let voices = match &cp.voice {
        None => names,
        Some(v) if names.contains(v) => vec![v.clone()],
        Some(v) => {
            return Err(LoadError::option(
                "--cue-voice",
                format!(
                    "the piece has no phone voice '{v}': its voices are {}",
                    names.join(", ")
                ),
            ))
        }
    };
    let (ws, welcome) = connect_and_join_as(&ep, 0, Some(&cp.token))
        .await
        .map_err(|message| {
            if message.starts_with("join refused") {
                LoadError::option(
                    "--performer-token",
                    format!("the server refused the performer's join ({message})"),
                )
            } else {
                LoadError::Unreachable {
                    url: ep.url.clone(),
                    message: format!("cue performer: {message}"),
                }
            }
        })?;
    match welcome {
        ServerFrame::Welcome {
            role: tutti_protocol::Role::Performer,
            ..
        } => {}
        _ => {
            return Err(LoadError::option(
                "--performer-token",
                "the server did not admit the performer as a performer",
            ))
        }
    }
    Ok(Performer::new(
        ws,
        voices,
        f64::from(phone.lead_ms),
        cp.rate,
    ))
}

/// The first address of a target.
async fn resolve_target(t: &crate::options::Target) -> Result<SocketAddr, LoadError> {
    let unreachable = |message: String| LoadError::Unreachable {
        url: t.url.clone(),
        message,
    };
    let mut addrs = tokio::net::lookup_host((t.host.as_str(), t.port))
        .await
        .map_err(|e| unreachable(format!("cannot resolve '{}': {e}", t.host)))?;
    addrs
        .next()
        .ok_or_else(|| unreachable(format!("'{}' has no address", t.host)))
}

async fn resolve(plan: &Plan) -> Result<SocketAddr, LoadError> {
    let t = &plan.target;
    let unreachable = |message: String| LoadError::Unreachable {
        url: t.url.clone(),
        message,
    };
    let mut addrs = tokio::net::lookup_host((t.host.as_str(), t.port))
        .await
        .map_err(|e| unreachable(format!("cannot resolve '{}': {e}", t.host)))?;
    let first = addrs
        .next()
        .ok_or_else(|| unreachable(format!("'{}' has no address", t.host)))?;
    if let Some(src) = plan.source_addrs.first() {
        if src.is_ipv4() != first.is_ipv4() {
            return Err(LoadError::option(
                "--source-addrs",
                format!("{src} is not of the same IP family as the server address {first}"),
            ));
        }
    }
    Ok(first)
}

/// The threads that run the clients: each a single-threaded tokio runtime, so a client's
/// socket, timer and task stay on one thread (no work stealing, no cross-thread wake-ups),
/// whatever runtime the caller uses.
struct Pool {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn new(n: usize) -> Result<Pool, LoadError> {
        let mut pool = Pool {
            handles: Vec::with_capacity(n),
            stops: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| LoadError::io("starting a client runtime", e))?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            pool.handles.push(rt.handle().clone());
            pool.stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("tutti-load-{i}"))
                .spawn(move || {
                    rt.block_on(async {
                        let _ = stopped.await;
                    });
                })
                .map_err(|e| LoadError::io("starting a client thread", e))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    fn spawn<F>(&self, i: usize, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[i % self.handles.len()].spawn(task)
    }

    /// Stop the threads (their tasks have ended or been aborted) and wait for them.
    async fn shutdown(self) {
        drop(self.stops);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Resident memory of a process across the window.
struct RssTrack {
    pid: Option<u32>,
    start: u64,
    end: u64,
    max: u64,
}

impl RssTrack {
    fn new(pid: Option<u32>) -> RssTrack {
        let start = sys::rss_bytes(pid).unwrap_or(0);
        RssTrack {
            pid,
            start,
            end: start,
            max: start,
        }
    }

    fn sample(&mut self) {
        if let Some(b) = sys::rss_bytes(self.pid) {
            self.max = self.max.max(b);
        }
    }

    fn end(&mut self) {
        self.end = sys::rss_bytes(self.pid).unwrap_or(self.end);
        self.max = self.max.max(self.end);
    }

    fn figures(&self, pid: u32, cpu: Duration, window_s: f64) -> ProcessFigures {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        ProcessFigures {
            pid,
            cpu_s: cpu.as_secs_f64(),
            cpu_pct: cpu.as_secs_f64() / window_s * 100.0,
            rss_start_mib: mib(self.start),
            rss_end_mib: mib(self.end),
            rss_max_mib: mib(self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_spread_and_counted() {
        let k = assign_kinds(1000, 0.1, 0.1);
        let c = |x| k.iter().filter(|&&y| y == x).count();
        assert_eq!(
            (c(Kind::Slow), c(Kind::Moving), c(Kind::Idle)),
            (100, 100, 800)
        );
        // Spread: each tenth of the ramp has about a tenth of each kind.
        for chunk in k.chunks(100) {
            let s = chunk.iter().filter(|&&y| y == Kind::Slow).count();
            assert!((9..=11).contains(&s), "{s}");
        }
        let k = assign_kinds(7, 1.0, 0.0);
        assert!(k.iter().all(|&x| x == Kind::Moving));
        let k = assign_kinds(10, 0.5, 0.5);
        let c = |x| k.iter().filter(|&&y| y == x).count();
        assert_eq!((c(Kind::Slow), c(Kind::Moving)), (5, 5));
    }

    #[test]
    fn attackers_are_spread_through_the_ramp() {
        let order = spawn_order(
            assign_kinds(1000, 1.0, 0.0),
            &[
                (AttackKind::Garbage, 100),
                (AttackKind::Silent, 100),
                (AttackKind::Churn, 50),
            ],
        );
        assert_eq!(order.len(), 1250);
        let c = |x| order.iter().filter(|&&y| y == x).count();
        assert_eq!(c(Spawn::Honest(Kind::Moving)), 1000);
        assert_eq!(c(Spawn::Attacker(AttackKind::Garbage)), 100);
        assert_eq!(c(Spawn::Attacker(AttackKind::Silent)), 100);
        assert_eq!(c(Spawn::Attacker(AttackKind::Churn)), 50);
        for chunk in order.chunks(125) {
            let g = chunk
                .iter()
                .filter(|&&y| y == Spawn::Attacker(AttackKind::Garbage))
                .count();
            let h = chunk
                .iter()
                .filter(|&&y| y == Spawn::Honest(Kind::Moving))
                .count();
            assert!((9..=11).contains(&g), "{g}");
            assert!((98..=102).contains(&h), "{h}");
        }
        let none = spawn_order(vec![Kind::Idle; 3], &[(AttackKind::Garbage, 0)]);
        assert_eq!(none, vec![Spawn::Honest(Kind::Idle); 3]);
        let only = spawn_order(Vec::new(), &[(AttackKind::Churn, 2)]);
        assert_eq!(only, vec![Spawn::Attacker(AttackKind::Churn); 2]);
    }

    #[test]
    fn capacity_names_the_option() {
        let fd = |n| sys::FdLimit { soft: n, hard: n };
        let mut o = LoadOptions {
            clients: 30_000,
            ..LoadOptions::default()
        };
        let plan = o.plan().unwrap();
        let e = check_capacity(&plan, fd(20_000), Some(28_232)).unwrap_err();
        assert_eq!(e.option_name(), Some("--clients"));
        assert!(e.to_string().contains("several"), "{e}");
        let e = check_capacity(&plan, fd(100_000), Some(28_232)).unwrap_err();
        assert_eq!(e.option_name(), Some("--source-addrs"));
        assert!(e.to_string().contains("127.0.0.1-127.0.0.2"), "{e}");
        o.source_addrs = Some("127.0.0.1-127.0.0.2".into());
        check_capacity(&o.plan().unwrap(), fd(100_000), Some(28_232)).unwrap();
        // Attackers hold connections too.
        let o = LoadOptions {
            clients: 19_000,
            garbage: 500,
            silent: 500,
            churn: 100,
            ..LoadOptions::default()
        };
        let e = check_capacity(&o.plan().unwrap(), fd(20_000), None).unwrap_err();
        assert_eq!(e.option_name(), Some("--clients"));
        assert!(e.to_string().contains("1100 attackers"), "{e}");
    }
}
