//! Parameter smoothing: linear ramps applied sample by sample (or sub-block by sub-block for
//! filter coefficients) so control changes never click. The one smoother of the project:
//! the DSP chain's stages and `tutti-audio`'s voices and master gain all use [`Ramp`].
//!
//! A jump from `a` to `b` with a ramp of `n` samples changes the value by at most `|b - a| / n`
//! per sample; since controls are clamped into their range, by at most `(max − min) / n` for
//! any jump. Setting a new target while a ramp is running starts a new ramp from the current
//! value, so the bound holds across any sequence of changes. Each value is computed from the
//! target (not accumulated), so there is no drift and the last step is no larger than the
//! others.
//!
//! Must never: allocate, lock or block (every method runs inside `process()`, per sample on
//! the audio thread).

/// A linearly ramped value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    current: f32,
    target: f32,
    step: f32,
    remaining: u32,
    len: u32,
}

impl Ramp {
    /// A settled ramp at `value` that takes `len` samples (at least 1) for each change.
    pub fn new(value: f32, len: u32) -> Self {
        Self {
            current: value,
            target: value,
            step: 0.0,
            remaining: 0,
            len: len.max(1),
        }
    }

    /// Ramp length in samples for a time in ms.
    pub fn len_for(ms: f64, sample_rate: f64) -> u32 {
        ((ms * 1e-3 * sample_rate).round() as u32).max(1)
    }

    /// Starts a ramp towards `target`.
    pub fn set(&mut self, target: f32) {
        self.target = target;
        if target == self.current {
            self.remaining = 0;
            self.step = 0.0;
        } else {
            self.remaining = self.len;
            self.step = (target - self.current) / self.len as f32;
        }
    }

    /// Jumps to `value` without a ramp (used by `reset`).
    pub fn snap(&mut self, value: f32) {
        self.current = value;
        self.target = value;
        self.remaining = 0;
        self.step = 0.0;
    }

    /// Whether a ramp is in progress.
    #[inline]
    pub fn is_ramping(&self) -> bool {
        self.remaining > 0
    }

    /// Current value.
    #[inline]
    pub fn value(&self) -> f32 {
        self.current
    }

    /// Final value.
    #[inline]
    pub fn target(&self) -> f32 {
        self.target
    }

    /// Advances one sample and returns the new value.
    #[inline]
    pub fn next_value(&mut self) -> f32 {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.current = self.target - self.step * self.remaining as f32;
        }
        self.current
    }

    /// Advances `n` samples at once and returns the new value.
    #[inline]
    pub fn advance(&mut self, n: u32) -> f32 {
        if self.remaining > 0 {
            if n >= self.remaining {
                self.remaining = 0;
                self.current = self.target;
            } else {
                self.remaining -= n;
                self.current = self.target - self.step * self.remaining as f32;
            }
        }
        self.current
    }

    /// Multiplies `buf` by the ramped value (gain), advancing it.
    #[inline]
    pub fn apply_gain(&mut self, buf: &mut [f32]) {
        if self.is_ramping() {
            for s in buf.iter_mut() {
                *s *= self.next_value();
            }
        } else {
            let g = self.current;
            if g != 1.0 {
                for s in buf.iter_mut() {
                    *s *= g;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_reaches_target_in_len_steps_with_bounded_steps() {
        let mut r = Ramp::new(0.0, 10);
        r.set(1.0);
        let mut prev = 0.0;
        for i in 0..10 {
            let v = r.next_value();
            assert!((v - prev) <= 0.1 + 1e-6, "step {i}");
            prev = v;
        }
        assert_eq!(prev, 1.0);
        assert!(!r.is_ramping());
        r.set(0.0);
        assert_eq!(r.advance(4), 0.6);
        assert_eq!(r.advance(100), 0.0);
    }

    #[test]
    fn jump_is_spread_over_the_ramp() {
        let mut s = Ramp::new(0.0, 100);
        s.set(1.0);
        let mut prev = s.value();
        let mut max_step = 0.0f32;
        for _ in 0..200 {
            let v = s.next_value();
            max_step = max_step.max((v - prev).abs());
            prev = v;
        }
        assert_eq!(s.value(), 1.0);
        assert!(max_step <= 1.0 / 100.0 + 1e-6, "{max_step}");
        assert!(max_step > 0.009, "{max_step}");
    }

    #[test]
    fn retarget_mid_ramp_keeps_the_bound() {
        let mut s = Ramp::new(0.0, 50);
        s.set(1.0);
        let mut prev = s.value();
        let mut max_step = 0.0f32;
        for i in 0..400 {
            if i % 17 == 0 {
                s.set(if (i / 17) % 2 == 0 { -1.0 } else { 1.0 });
            }
            let v = s.next_value();
            max_step = max_step.max((v - prev).abs());
            prev = v;
        }
        assert!(max_step <= 2.0 / 50.0 + 1e-6, "{max_step}");
    }

    #[test]
    fn advance_matches_per_sample_steps() {
        let mut a = Ramp::new(10.0, 64);
        let mut b = a;
        a.set(20.0);
        b.set(20.0);
        for _ in 0..16 {
            a.next_value();
        }
        let v = b.advance(16);
        assert!((a.value() - v).abs() < 1e-4);
        assert_eq!(b.advance(1000), 20.0);
    }
}
