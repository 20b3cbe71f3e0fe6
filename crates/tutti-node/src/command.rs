//! Performer commands over the bus: an edge forwards a performer's override to the show's
//! conductor as a NATS request ([`forward`]); the conductor answers only after the command
//! is committed to the store and applied (`ShowRuntime::set_override`, as on one node).
//!
//! **Who answers.** Only the leader subscribes to the show's command subject
//! (`tutti_bus::command_subject`): the conductor starts its responder when it takes the
//! lease and stops it when it steps down or resigns. Not a queue group: a group would hand
//! a request to any member, a standby included, which could only refuse it, and the first
//! reply is the one the edge keeps. With the leader alone subscribed, a request while no
//! node leads (a failover) gets NATS's "no responders" at once, and [`forward`] retries it
//! (nobody received it) until its wait runs out. Between losing the lease and
//! unsubscribing, the old leader's responder still checks the lease before each command and
//! answers nothing without a valid one (counted `command_not_leader`).
//!
//! **Bad input.** Bytes that do not decode (`command_malformed`) and requests without a
//! reply subject (`command_no_reply`) get no answer: there is no request to answer. A
//! command of another schema (`command_wrong_schema`, error `bad_frame`) or another show
//! (`command_wrong_show`, error `unknown_show`) gets an error reply, so a misconfigured edge
//! learns it at once. Each is counted in [`NodeMetrics`] by kind and logged; none is
//! applied. A command that decodes is validated by `set_override` exactly as on one node,
//! and its refusal carries the same protocol error code (`unknown_param`, …).
//!
//! **Acknowledged means committed.** The reply goes out only after `set_override` returned
//! (the override log written and committed, then the override applied). If the lease ran
//! out while the command was being committed, the reply is an `unavailable` error saying
//! it was stored but may not be in force, never an ack from a node that no longer leads.
//!
//! Must never: answer while it does not hold a valid lease, reply before the store
//! committed, apply a refused command, or report a forwarded command as done without the
//! conductor's `Applied` reply.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};
use tutti_cluster::{
    Command, CommandActor, CommandMode, CommandMsg, CommandOutcome, CommandReply, EdgeId, SCHEMA,
};
use tutti_protocol::OverrideModeName;
use tutti_show::{Actor, OverrideRequest, ShowRuntime};

use crate::{NodeError, NodeMetrics};

/// The error code [`forward`] gives when no conductor answered in time (or the bus failed):
/// not one of the protocol's codes yet.
pub const UNAVAILABLE: &str = "unavailable";

/// What a forwarded command's conductor said when it committed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAck {
    /// The tick that will reflect it (what a single node's `ack` says).
    pub tick: u64,
    /// The conductor that committed it.
    pub conductor: EdgeId,
    /// Its leadership term.
    pub term: u64,
}

/// Why a forwarded command was not acknowledged: the protocol's error code (or
/// [`UNAVAILABLE`]) and a message for the performer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CommandError {
    /// `unknown_param`, `invalid_override`, … as a single node gives them, or
    /// [`UNAVAILABLE`], or `internal` for a reply that does not answer the request.
    pub code: String,
    /// What happened.
    pub message: String,
}

fn err(code: &str, message: impl Into<String>) -> CommandError {
    CommandError {
        code: code.to_owned(),
        message: message.into(),
    }
}

/// Edge: sends `msg` to its show's conductor and waits up to `wait` for the answer. A
/// request nobody is subscribed to (no leader right now) is sent again until `wait` runs
/// out; one that was delivered is never sent twice. No answer in time is an
/// [`UNAVAILABLE`] error, never a success.
pub async fn forward(
    bus: &async_nats::Client,
    msg: &CommandMsg,
    wait: Duration,
) -> Result<CommandAck, CommandError> {
    use async_nats::RequestErrorKind as K;
    let subject = tutti_bus::command_subject(&msg.show);
    let bytes: Vec<u8> = msg.encode();
    let deadline = Instant::now() + wait;
    let gone = || {
        err(
            UNAVAILABLE,
            format!(
                "no conductor answered within {:.1} s; the command may not have been applied",
                wait.as_secs_f64()
            ),
        )
    };
    let reply = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(gone());
        }
        let req = async_nats::Request::new()
            .payload(bytes.clone().into())
            .timeout(Some(left));
        match bus.send_request(subject.clone(), req).await {
            Ok(m) => break m,
            Err(e) if e.kind() == K::NoResponders => {
                tokio::time::sleep(left.min(Duration::from_millis(50))).await;
            }
            Err(e) if e.kind() == K::TimedOut => return Err(gone()),
            Err(e) => {
                return Err(err(
                    UNAVAILABLE,
                    format!("the bus could not carry the command: {e}"),
                ))
            }
        }
    };
    let r = CommandReply::decode(&reply.payload).map_err(|e| {
        err(
            "internal",
            format!("the conductor's reply is unreadable: {e}"),
        )
    })?;
    if r.schema != SCHEMA || r.show != msg.show || r.request != msg.request {
        return Err(err(
            "internal",
            format!(
                "a reply that does not answer this request (schema {}, show {}, request {})",
                r.schema, r.show, r.request
            ),
        ));
    }
    match r.outcome {
        CommandOutcome::Applied { tick } => Ok(CommandAck {
            tick,
            conductor: r.conductor,
            term: r.term,
        }),
        CommandOutcome::Refused { code, message } => Err(CommandError { code, message }),
    }
}

/// Edge: a performer's override as a command message (`request` is the edge's own id for it).
pub fn override_msg(
    show: &str,
    edge: &EdgeId,
    request: u64,
    actor: &Actor,
    param: &str,
    req: OverrideRequest,
) -> CommandMsg {
    let mode = match req.mode {
        OverrideModeName::Clamp => CommandMode::Clamp,
        OverrideModeName::Bias => CommandMode::Bias,
        OverrideModeName::Blend => CommandMode::Blend,
        OverrideModeName::Lock => CommandMode::Lock,
        OverrideModeName::Freeze => CommandMode::Freeze,
    };
    CommandMsg {
        schema: SCHEMA,
        show: show.to_owned(),
        edge: edge.clone(),
        request,
        actor: CommandActor {
            by: actor.by,
            priority: actor.priority,
            name: actor.name.clone(),
        },
        command: Command::Override {
            param: param.to_owned(),
            mode,
            a: req.a,
            b: req.b,
            expires_in: req.expires_in,
        },
    }
}

/// The lease as the conductor last saw it: its term and until when it is valid (`None`:
/// not leading). The conductor updates it; its responder reads it before every command.
pub(crate) type LeaseView = Option<(u64, Instant)>;

fn valid_term(view: &watch::Receiver<LeaseView>) -> Option<u64> {
    view.borrow()
        .filter(|(_, until)| Instant::now() < *until)
        .map(|(t, _)| t)
}

/// A running responder: dropping it stops it (after the command in hand) and unsubscribes.
pub(crate) struct Responder {
    task: tokio::task::JoinHandle<()>,
    _stop: oneshot::Sender<()>,
}

impl Responder {
    /// Whether its task ended by itself (the subscription closed).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Conductor: subscribes to the show's command subject and answers its commands in a task
/// until the returned [`Responder`] is dropped (then unsubscribes). Each command is
/// answered only while `view` shows a valid lease.
pub(crate) async fn start_responder(
    bus: async_nats::Client,
    show: Arc<ShowRuntime>,
    id: EdgeId,
    metrics: Arc<NodeMetrics>,
    view: watch::Receiver<LeaseView>,
) -> Result<Responder, NodeError> {
    let mut sub = bus
        .subscribe(tutti_bus::command_subject(&show.code))
        .await
        .map_err(|e| NodeError::Bus(e.to_string()))?;
    bus.flush()
        .await
        .map_err(|e| NodeError::Bus(e.to_string()))?;
    tracing::info!(show = %show.code, node = %id, "answering performer commands");
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                // A stopped responder takes no further command, even one already here.
                biased;
                _ = &mut stop => break,
                m = sub.next() => match m {
                    Some(m) => answer(&bus, &show, &id, &metrics, &view, m).await,
                    None => break,
                },
            }
        }
        let _ = sub.unsubscribe().await;
        tracing::info!(show = %show.code, node = %id, "no longer answering performer commands");
    });
    Ok(Responder {
        task,
        _stop: stop_tx,
    })
}

async fn answer(
    bus: &async_nats::Client,
    show: &ShowRuntime,
    id: &EdgeId,
    metrics: &NodeMetrics,
    view: &watch::Receiver<LeaseView>,
    m: async_nats::Message,
) {
    let code = &show.code;
    let Some(term) = valid_term(view) else {
        metrics.reject("command_not_leader");
        tracing::debug!(show = %code, "a command while not leading: not answered");
        return;
    };
    let Some(reply_to) = m.reply else {
        metrics.reject("command_no_reply");
        tracing::warn!(show = %code, "a command without a reply subject: refused, not applied");
        return;
    };
    let msg = match CommandMsg::decode(&m.payload) {
        Ok(msg) => msg,
        Err(e) => {
            metrics.reject("command_malformed");
            tracing::warn!(show = %code, error = %e, "an unreadable command: refused, not answered");
            return;
        }
    };
    let refused = |code: &str, message: String| CommandOutcome::Refused {
        code: code.to_owned(),
        message,
    };
    let outcome = if msg.schema != SCHEMA {
        metrics.reject("command_wrong_schema");
        tracing::warn!(show = %code, schema = msg.schema, edge = %msg.edge, "a command of another schema: refused");
        refused(
            "bad_frame",
            format!("command schema {} is not {SCHEMA}", msg.schema),
        )
    } else if msg.show != *code {
        metrics.reject("command_wrong_show");
        tracing::warn!(show = %code, other = %msg.show, edge = %msg.edge, "a command for another show: refused");
        refused(
            "unknown_show",
            format!("this is show {code}'s conductor, not {}'s", msg.show),
        )
    } else {
        let actor = Actor {
            by: msg.actor.by,
            priority: msg.actor.priority,
            name: msg.actor.name.clone(),
        };
        let Command::Override {
            param,
            mode,
            a,
            b,
            expires_in,
        } = &msg.command;
        let mode = match mode {
            CommandMode::Clamp => OverrideModeName::Clamp,
            CommandMode::Bias => OverrideModeName::Bias,
            CommandMode::Blend => OverrideModeName::Blend,
            CommandMode::Lock => OverrideModeName::Lock,
            CommandMode::Freeze => OverrideModeName::Freeze,
        };
        let req = OverrideRequest {
            mode,
            a: *a,
            b: *b,
            expires_in: *expires_in,
        };
        // Validated, written to the store (the commit awaited), then applied.
        match show.set_override(&actor, param, req).await {
            Ok(tick) if valid_term(view) == Some(term) => CommandOutcome::Applied { tick },
            Ok(_) => {
                metrics.reject("command_lease_lost");
                tracing::warn!(show = %code, edge = %msg.edge, "the lease ran out while a command was committed");
                refused(
                    crate::command::UNAVAILABLE,
                    format!(
                        "the command was stored but conductor {id} lost the lease meanwhile; \
                         it may not be in force: check the show and send it again"
                    ),
                )
            }
            Err(e) => refused(e.code.as_str(), e.message),
        }
    };
    match &outcome {
        CommandOutcome::Applied { .. } => metrics.commands_applied.fetch_add(1, Relaxed),
        CommandOutcome::Refused { .. } => metrics.commands_refused.fetch_add(1, Relaxed),
    };
    let reply = CommandReply {
        schema: SCHEMA,
        show: code.clone(),
        request: msg.request,
        conductor: id.clone(),
        term,
        outcome,
    };
    if let Err(e) = bus.publish(reply_to, reply.encode().into()).await {
        tracing::warn!(show = %code, error = %e, "a command's reply was not sent");
    }
}
