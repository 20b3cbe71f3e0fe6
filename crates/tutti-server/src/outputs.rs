//! Where each tick's values go besides the phones: OSC bundles to the configured UDP
//! targets (and, as they land, the embedded audio engine and SuperCollider).
//!
//! Must never: block or await; a failing target is counted, never waited for.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tutti_osc::OscSender;
use tutti_spec::PieceSpec;

use crate::ServerError;

/// The OSC plan of one piece: address and output range per parameter.
struct OscPlan {
    addresses: Vec<String>,
}

/// Per-show outputs, driven by the ticker.
pub struct Outputs {
    osc: OscSender,
    plan: OscPlan,
    latency: Duration,
    buf: Mutex<Vec<u8>>,
}

impl Outputs {
    /// Prepare the outputs of a piece.
    pub fn new(
        spec: &PieceSpec,
        targets: &[std::net::SocketAddr],
        latency: Duration,
    ) -> Result<Outputs, ServerError> {
        let osc = OscSender::new(targets.iter().copied())
            .map_err(|e| ServerError::Osc(format!("osc.targets: {e}")))?;
        let addresses = spec.params.iter().map(|p| p.osc_target().0).collect();
        Ok(Outputs {
            osc,
            plan: OscPlan { addresses },
            latency,
            buf: Mutex::new(Vec::with_capacity(512)),
        })
    }

    /// Send one tick's values (in spec order).
    pub fn on_tick(&self, spec: &PieceSpec, values: &[f64]) {
        if self.osc.targets().next().is_some() {
            let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
            let msgs = self
                .plan
                .addresses
                .iter()
                .zip(spec.params.iter().zip(values))
                .map(|(addr, (p, v))| (addr.as_str(), p.osc_value(*v) as f32));
            match tutti_osc::encode_bundle(SystemTime::now() + self.latency, msgs, &mut buf) {
                Ok(()) => self.osc.send(&buf),
                Err(e) => tracing::warn!(error = %e, "could not encode the OSC bundle"),
            }
        }
    }

    /// OSC sender counters: (packets sent, send errors).
    pub fn osc_stats(&self) -> (u64, u64) {
        let s = self.osc.stats();
        (
            s.targets.iter().map(|t| t.packets_sent).sum(),
            s.total_errors(),
        )
    }
}
