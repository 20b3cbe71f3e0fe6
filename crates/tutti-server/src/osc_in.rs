//! Performer commands arriving over OSC (TouchOSC, Max, …) applied to the default show
//! with the same permission as the performer page. The port binds to loopback unless the
//! configuration says otherwise.
//!
//! Must never: apply a command without the same validation the WebSocket path uses.

use std::sync::Arc;

use tokio::sync::mpsc;
use tutti_osc::{OscCommand, OscOverride};
use tutti_protocol::{OverrideModeName, SessionAction};

use tutti_live::Hub;
use tutti_show::{Actor, OverrideRequest};

/// Apply commands from the listener's channel until it closes.
pub async fn run(hub: Arc<Hub>, mut rx: mpsc::Receiver<OscCommand>) {
    let actor = Actor {
        by: 0,
        priority: 1,
        name: "osc".into(),
    };
    while let Some(cmd) = rx.recv().await {
        let show = match hub.show(None) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e.message, "OSC command with no show running");
                continue;
            }
        };
        let result = match cmd {
            OscCommand::Override { param, mode } => {
                let (mode, a, b) = match mode {
                    OscOverride::Lock(v) => (OverrideModeName::Lock, Some(v), None),
                    OscOverride::Bias(v) => (OverrideModeName::Bias, Some(v), None),
                    OscOverride::Blend { target, factor } => {
                        (OverrideModeName::Blend, Some(target), Some(factor))
                    }
                    OscOverride::Clamp { lo, hi } => (OverrideModeName::Clamp, Some(lo), Some(hi)),
                    OscOverride::Freeze => (OverrideModeName::Freeze, None, None),
                };
                let req = OverrideRequest {
                    mode,
                    a: a.map(f64::from),
                    b: b.map(f64::from),
                    expires_in: None,
                };
                show.set_override(&actor, &param, req).await
            }
            OscCommand::Release { param, mode } => {
                let mode = match mode.as_deref() {
                    None => None,
                    Some("lock") => Some(OverrideModeName::Lock),
                    Some("bias") => Some(OverrideModeName::Bias),
                    Some("blend") => Some(OverrideModeName::Blend),
                    Some("clamp") => Some(OverrideModeName::Clamp),
                    Some(_) => Some(OverrideModeName::Freeze),
                };
                show.release(&actor, &param, mode).await
            }
            OscCommand::Session(a) => {
                let action = match a {
                    tutti_osc::SessionAction::Start => SessionAction::Start,
                    tutti_osc::SessionAction::Pause => SessionAction::Pause,
                    tutti_osc::SessionAction::Resume => SessionAction::Resume,
                    tutti_osc::SessionAction::End => SessionAction::End,
                };
                show.session(&actor, action).await
            }
            OscCommand::Reset => show.reset(&actor).await,
            OscCommand::Bypass(on) => show.bypass(&actor, on).await,
            OscCommand::Cue { voice } => hub
                .live(None)
                .and_then(|l| l.cue(&voice, None, None, None, None))
                .map(|c| c.tick),
        };
        if let Err(e) = result {
            hub.stats.error(e.code);
            tracing::warn!(code = e.code.as_str(), error = %e.message, "OSC command refused");
        }
    }
}
