//! Time-based smoothing of a parameter's value.
//!
//! The smoothed value `y` follows its target `x` by the differential equation
//! `dy/dt = clamp((x − y) / τ, −s, +s)` (τ the time constant, `s` the slew limit in parameter
//! units per second; either may be absent). For a target that stays constant over a tick the
//! equation is solved *exactly* over the tick's `dt`, so the value at a given time is the same
//! at 10 Hz, 60 Hz or any other tick rate.
//!
//! This module must never look at tick counts: only elapsed time matters.

/// Advances `y` towards `x` over `dt` seconds.
///
/// `tau` is the exponential time constant in seconds, `slew` the largest speed in parameter
/// units per second. Without either, the value jumps to the target.
pub(crate) fn advance(y: f64, x: f64, dt: f64, tau: Option<f64>, slew: Option<f64>) -> f64 {
    if tau.is_none() && slew.is_none() {
        return x;
    }
    if dt <= 0.0 || !dt.is_finite() || y == x {
        return y;
    }
    let gap = x - y;
    let dist = gap.abs();
    let dir = gap.signum();
    match (tau, slew) {
        (Some(tau), None) => x - gap * (-dt / tau).exp(),
        (None, Some(s)) => {
            let step = s * dt;
            if step >= dist {
                x
            } else {
                y + dir * step
            }
        }
        (Some(tau), Some(s)) => {
            // Slew-limited while the exponential's speed dist/τ exceeds s, i.e. while
            // dist > s·τ; exponential from there on.
            let knee = s * tau;
            let (dist, dt) = if dist > knee {
                let linear_time = (dist - knee) / s;
                if dt <= linear_time {
                    return y + dir * s * dt;
                }
                (knee, dt - linear_time)
            } else {
                (dist, dt)
            };
            x - dir * dist * (-dt / tau).exp()
        }
        (None, None) => x,
    }
}

#[cfg(test)]
mod tests {
    use super::advance;

    fn run(rate: f64, seconds: f64, tau: Option<f64>, slew: Option<f64>) -> f64 {
        let ticks = (seconds * rate).round() as usize;
        let dt = 1.0 / rate;
        let mut y = 0.0;
        for _ in 0..ticks {
            y = advance(y, 1.0, dt, tau, slew);
        }
        y
    }

    #[test]
    fn exponential_matches_closed_form() {
        let y = run(20.0, 1.0, Some(0.5), None);
        let expected = 1.0 - (-2.0f64).exp();
        assert!((y - expected).abs() < 1e-12, "{y} vs {expected}");
    }

    #[test]
    fn slew_is_linear() {
        let y = run(10.0, 0.5, None, Some(0.4));
        assert!((y - 0.2).abs() < 1e-12, "{y}");
        assert_eq!(run(10.0, 5.0, None, Some(0.4)), 1.0);
    }

    #[test]
    fn combined_is_rate_independent() {
        for t in [0.5, 1.0, 2.5, 4.0] {
            let a = run(10.0, t, Some(0.3), Some(0.5));
            let b = run(60.0, t, Some(0.3), Some(0.5));
            let c = advance(0.0, 1.0, t, Some(0.3), Some(0.5));
            assert!((a - b).abs() < 1e-9, "t={t}: {a} vs {b}");
            assert!((a - c).abs() < 1e-9, "t={t}: {a} vs one step {c}");
        }
    }

    #[test]
    fn no_smoothing_jumps_and_zero_dt_holds() {
        assert_eq!(advance(0.0, 0.7, 0.0, None, None), 0.7);
        assert_eq!(advance(0.2, 0.7, 0.0, Some(1.0), None), 0.2);
        assert_eq!(advance(0.2, 0.7, -1.0, None, Some(1.0)), 0.2);
    }
}
