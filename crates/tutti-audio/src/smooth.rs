//! Control smoothing: every continuous control moves towards a new target along a linear
//! ramp of fixed length (its [`ControlSpec::ramp_ms`](crate::ControlSpec)), one sample at a
//! time. A jump from `a` to `b` therefore changes the value by at most `|b − a| / n` per
//! sample (`n` = ramp length in samples) and, since values are clamped into the control's
//! range, by at most `(max − min) / n` for any jump: no zipper noise, no clicks.
//!
//! A new target arriving mid-ramp starts a fresh ramp from the current value, so the bound
//! holds across any sequence of changes.
//!
//! Must never: allocate, lock or block (it runs per sample on the audio thread).

/// A linearly ramped control value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoother {
    current: f32,
    target: f32,
    step: f32,
    remaining: u32,
    len: u32,
}

impl Smoother {
    /// A settled smoother at `value`; each change takes `len` samples (at least 1).
    pub fn new(value: f32, len: u32) -> Self {
        Self {
            current: value,
            target: value,
            step: 0.0,
            remaining: 0,
            len: len.max(1),
        }
    }

    /// Starts a ramp from the current value towards `target`.
    #[inline]
    pub fn set_target(&mut self, target: f32) {
        self.target = target;
        if target == self.current {
            self.remaining = 0;
            self.step = 0.0;
        } else {
            self.remaining = self.len;
            self.step = (target - self.current) / self.len as f32;
        }
    }

    /// Jumps to `value` at once (only for resets before playback starts).
    pub fn snap(&mut self, value: f32) {
        *self = Self::new(value, self.len);
    }

    /// The value now.
    #[inline]
    pub fn value(&self) -> f32 {
        self.current
    }

    /// The value being ramped to.
    #[inline]
    pub fn target(&self) -> f32 {
        self.target
    }

    /// Whether a ramp is running.
    #[inline]
    pub fn is_ramping(&self) -> bool {
        self.remaining > 0
    }

    /// Advances one sample and returns the new value.
    #[inline]
    pub fn next_value(&mut self) -> f32 {
        if self.remaining > 0 {
            self.remaining -= 1;
            // From the target, not accumulated: no drift, so the last step is no larger
            // than the others.
            self.current = self.target - self.step * self.remaining as f32;
        }
        self.current
    }

    /// Advances `n` samples at once (for parameters updated once per sub-block).
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_is_spread_over_the_ramp() {
        let mut s = Smoother::new(0.0, 100);
        s.set_target(1.0);
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
        let mut s = Smoother::new(0.0, 50);
        s.set_target(1.0);
        let mut prev = s.value();
        let mut max_step = 0.0f32;
        for i in 0..400 {
            if i % 17 == 0 {
                s.set_target(if (i / 17) % 2 == 0 { -1.0 } else { 1.0 });
            }
            let v = s.next_value();
            max_step = max_step.max((v - prev).abs());
            prev = v;
        }
        assert!(max_step <= 2.0 / 50.0 + 1e-6, "{max_step}");
    }

    #[test]
    fn advance_matches_per_sample_steps() {
        let mut a = Smoother::new(10.0, 64);
        let mut b = a;
        a.set_target(20.0);
        b.set_target(20.0);
        for _ in 0..16 {
            a.next_value();
        }
        let v = b.advance(16);
        assert!((a.value() - v).abs() < 1e-4);
        assert_eq!(b.advance(1000), 20.0);
    }
}
