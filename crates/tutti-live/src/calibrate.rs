//! Acoustic calibration of a phone's output latency (issue 15). A phone asks for a chirp
//! (`chirp`); the show gives it a number and a show-clock time a little ahead, tells the
//! phone and writes the same `chirp` frame to every performer connection of the show, whose
//! page (the laptop's microphone, held by the phone) times when the chirp was heard and
//! answers `calibrated` with heard minus due. The answer goes to that phone's connection
//! only, as `calibration`; the phone adds it to the output latency it corrects for.
//!
//! What is kept is bounded: the last [`KEPT`] chirps (an answer to an older one is refused
//! as `unknown_chirp`, as is a second answer to the same chirp) and weak references to the
//! performers' and the phones' sockets (a closed one is dropped on the next pass).
//!
//! Must never: hold its lock while writing to a socket, or send a phone another phone's
//! calibration.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tutti_protocol::{ErrorCode, FrameError, ServerFrame};

use crate::peer::Peer;

/// Chirps kept for an answer.
pub const KEPT: usize = 64;
/// How far ahead a chirp is due, milliseconds: time for the frame to reach the phone and
/// for the phone to schedule it.
pub const CHIRP_LEAD_MS: f64 = 400.0;

struct Chirp {
    id: u64,
    phone: Weak<Peer>,
    answered: bool,
}

#[derive(Default)]
struct Inner {
    chirps: VecDeque<Chirp>,
    performers: Vec<Weak<Peer>>,
}

/// A show's chirps and the performer sockets that hear of them.
#[derive(Default)]
pub struct Calibrations {
    inner: Mutex<Inner>,
    next: AtomicU64,
}

impl Calibrations {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A performer connection joined: it gets every chirp from now on.
    pub(crate) fn add_performer(&self, peer: &Arc<Peer>) {
        let mut inner = self.lock();
        inner.performers.retain(|p| p.strong_count() > 0);
        inner.performers.push(Arc::downgrade(peer));
    }

    /// Phone `participant` (on `phone`) asks for a chirp; `now_ms` is the show clock. The
    /// frame to send it is returned; the performers have been sent the same.
    pub(crate) fn chirp(&self, participant: u32, phone: &Arc<Peer>, now_ms: f64) -> ServerFrame {
        let id = self.next.fetch_add(1, Relaxed) + 1;
        let frame = ServerFrame::Chirp {
            id,
            participant,
            at: now_ms + CHIRP_LEAD_MS,
        };
        let performers: Vec<Arc<Peer>> = {
            let mut inner = self.lock();
            if inner.chirps.len() == KEPT {
                inner.chirps.pop_front();
            }
            inner.chirps.push_back(Chirp {
                id,
                phone: Arc::downgrade(phone),
                answered: false,
            });
            inner.performers.retain(|p| p.strong_count() > 0);
            inner.performers.iter().filter_map(Weak::upgrade).collect()
        };
        let json = frame.to_json();
        for p in performers {
            if let Ok(true) = p.send_text(&json) {
                p.wake.notify_one();
            }
        }
        frame
    }

    /// A performer's answer: `offset_ms` (already checked for range) goes to the phone of
    /// chirp `id`. Refused for a chirp not kept, answered already, or whose phone left.
    pub(crate) fn answer(&self, id: u64, offset_ms: f64) -> Result<(), FrameError> {
        let phone = {
            let mut inner = self.lock();
            let chirp = inner
                .chirps
                .iter_mut()
                .find(|c| c.id == id && !c.answered)
                .ok_or_else(|| {
                    FrameError::new(
                        ErrorCode::UnknownChirp,
                        format!("no chirp {id} waiting for an answer (the last {KEPT} are kept, each answered once)"),
                    )
                })?;
            let phone = chirp
                .phone
                .upgrade()
                .filter(|p| !p.is_closed())
                .ok_or_else(|| {
                    FrameError::new(
                        ErrorCode::UnknownChirp,
                        format!("the phone of chirp {id} has left"),
                    )
                })?;
            chirp.answered = true;
            phone
        };
        let json = ServerFrame::Calibration { id, offset_ms }.to_json();
        if let Ok(true) = phone.send_text(&json) {
            phone.wake.notify_one();
        }
        Ok(())
    }
}
