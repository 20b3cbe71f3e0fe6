//! The `player` voice: plays a decoded [`Clip`] (see [`crate::decode`]) once or looped,
//! with a short fade in and out so starting, stopping and switching clips never clicks.
//!
//! Decoding happens off the audio thread; the boxed clip arrives through the engine's
//! command queue and a replaced clip is handed back to be dropped elsewhere.
//!
//! Control: `player.amp`.
//!
//! Must never: allocate, free, lock, log or block in `render` (audio thread).

use crate::controls::{ids, ControlId};
use crate::decode::Clip;
use crate::synth::Adsr;
use tutti_dsp::smooth::Ramp;

/// The sample/file player.
#[derive(Debug)]
pub struct Player {
    amp: Ramp,
    clip: Option<Box<Clip>>,
    pending: Option<(Box<Clip>, bool)>,
    retired: Option<Box<Clip>>,
    looped: bool,
    pos: usize,
    fade: Adsr,
    stopping: bool,
    tail: f32,
}

impl Player {
    /// An idle player.
    pub fn new(sample_rate: u32) -> Self {
        let spec = ids::PLAYER_AMP.spec();
        Self {
            amp: Ramp::new(spec.default, spec.ramp_samples(sample_rate)),
            clip: None,
            pending: None,
            retired: None,
            looped: false,
            pos: 0,
            fade: Adsr::new(0.005, 0.01, 1.0, 0.02, sample_rate as f32),
            stopping: false,
            tail: 1.0 / (0.005 * sample_rate as f32).max(1.0),
        }
    }

    /// Sets `player.amp`.
    pub fn set(&mut self, id: ControlId, v: f32) {
        if id == ids::PLAYER_AMP {
            self.amp.set(v);
        }
    }

    /// Jumps `player.amp` (before playback starts).
    pub fn snap(&mut self, id: ControlId, v: f32) {
        if id == ids::PLAYER_AMP {
            self.amp.snap(v);
        }
    }

    /// The smoothed `player.amp`.
    pub fn value(&self, id: ControlId) -> Option<f32> {
        (id == ids::PLAYER_AMP).then(|| self.amp.value())
    }

    /// Whether a clip is sounding.
    pub fn is_playing(&self) -> bool {
        self.clip.is_some() && !self.fade.is_idle()
    }

    /// Queues a clip to play from its start (after the current one fades out). Returns a
    /// clip displaced from the queue, for disposal off the audio thread.
    pub fn play(&mut self, clip: Box<Clip>, looped: bool) -> Option<Box<Clip>> {
        self.fade.gate_off();
        self.stopping = false;
        self.pending.replace((clip, looped)).map(|(c, _)| c)
    }

    /// Fades the current clip out.
    pub fn stop(&mut self) {
        self.stopping = true;
        self.fade.gate_off();
    }

    /// A clip that finished or was replaced, to be dropped off the audio thread.
    pub fn take_retired(&mut self) -> Option<Box<Clip>> {
        self.retired.take()
    }

    /// Keeps a retired clip until it can be handed back (the disposal queue was full).
    pub fn stash_retired(&mut self, clip: Box<Clip>) {
        self.retired = Some(clip);
    }

    /// Whether a new clip can be queued now (none pending, none waiting for disposal).
    pub fn accepts_clip(&self) -> bool {
        self.pending.is_none() && self.retired.is_none()
    }

    fn switch_if_silent(&mut self) {
        if !self.fade.is_idle() || self.retired.is_some() {
            return;
        }
        if let Some((clip, looped)) = self.pending.take() {
            self.retired = self.clip.replace(clip);
            self.looped = looped;
            self.pos = 0;
            self.fade.gate_on();
        } else if self.stopping
            || self
                .clip
                .as_ref()
                .is_some_and(|c| !self.looped && self.pos >= c.frames())
        {
            self.stopping = false;
            self.retired = self.clip.take();
        }
    }

    /// Adds the voice into `left`/`right`.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.switch_if_silent();
        let Some(clip) = self.clip.as_deref() else {
            self.amp.advance(left.len() as u32);
            return;
        };
        let frames = clip.frames();
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let amp = self.amp.next_value();
            if self.pos >= frames {
                if self.looped && frames > 0 {
                    self.pos = 0;
                } else {
                    self.fade.gate_off();
                    self.fade.tick();
                    continue;
                }
            }
            // A one-shot clip fades out over its last 5 ms, so its end never clicks.
            let end = if self.looped {
                1.0
            } else {
                ((frames - self.pos) as f32 * self.tail).min(1.0)
            };
            let g = self.fade.tick() * amp * end;
            *l += clip.left[self.pos] * g;
            *r += clip.right[self.pos] * g;
            self.pos += 1;
        }
    }
}
