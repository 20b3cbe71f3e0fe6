//! Aggregates read from a [`ParamPartial`]: mean, median, trimmed mean, plurality, spread.
//!
//! All functions cost O(bins) and work in unit form (`u` in `0..=1` for continuous
//! parameters). Within a fine histogram bin the weight is modelled as spread uniformly over
//! `[m − d, m + d]`, where `m` is the bin's weighted mean and `d` the largest half-width that
//! keeps the interval inside the bin. The model is exact when a bin holds one distinct value
//! (so a crowd that agrees exactly gets exactly its value back), and errs by at most half a
//! bin width (`range / 512`) otherwise.
//!
//! Near-ties are decided as ties: two cumulative weights within `TIE * total` of each other
//! are treated as equal, so the result does not flip with the last bit of a sum (which
//! depends on summation order, and differs between one engine and merged shards).
//!
//! These functions must never depend on the order in which inputs arrived: they only see sums.

use crate::partials::ParamPartial;

/// Relative tolerance under which weights count as tied.
pub(crate) const TIE: f64 = 1e-12;

/// Mean and half-width of the uniform model of continuous bin `i` with weight `w > 0`.
#[inline]
fn bin_model(p: &ParamPartial, i: usize, w: f64) -> (f64, f64) {
    let n = p.bin_w.len() as f64;
    let lo = i as f64 / n;
    let hi = (i + 1) as f64 / n;
    let m = (p.bin_wu[i].max(0.0) / w).clamp(lo, hi);
    (m, (m - lo).min(hi - m))
}

/// Sum of the (non-negative parts of the) bin weights; `None` when it is not positive.
fn bins_total(p: &ParamPartial) -> Option<f64> {
    let total: f64 = p.bin_w.iter().map(|w| w.max(0.0)).sum();
    (total > 0.0 && total.is_finite()).then_some(total)
}

/// Variances below this fraction of `E[u²]` are rounding noise of `E[u²] − E[u]²` (and of
/// the running sums' bounded drift) and reported as 0.
const VARIANCE_FLOOR: f64 = 1e-9;

/// Weighted mean and weighted standard deviation, in unit form.
pub(crate) fn moments(p: &ParamPartial) -> Option<(f64, f64)> {
    if !(p.sum_w > 0.0 && p.sum_w.is_finite()) {
        return None;
    }
    let mean = p.sum_wu / p.sum_w;
    let second = p.sum_wu2 / p.sum_w;
    let var = second - mean * mean;
    let var = if var > VARIANCE_FLOOR * second {
        var
    } else {
        0.0
    };
    Some((mean, var.sqrt()))
}

/// Weighted median of a continuous parameter, in unit form.
///
/// When half the weight falls exactly on a boundary between two bins (an even split), the
/// median is the midpoint between the top of the lower value and the bottom of the upper one.
pub(crate) fn median(p: &ParamPartial) -> Option<f64> {
    let total = bins_total(p)?;
    let target = total * 0.5;
    let tie = TIE * total;
    let mut cum = 0.0;
    // Top of the bin whose cumulative weight ended on the target (within the tolerance).
    let mut lower_top: Option<f64> = None;
    let mut last = None;
    for (i, &w) in p.bin_w.iter().enumerate() {
        if w <= 0.0 {
            continue;
        }
        let (m, d) = bin_model(p, i, w);
        if let Some(top) = lower_top {
            return Some(0.5 * (top + (m - d)));
        }
        last = Some(m + d);
        let next = cum + w;
        if (next - target).abs() <= tie {
            lower_top = Some(m + d);
        } else if next > target {
            let q = ((target - cum) / w).clamp(0.0, 1.0);
            return Some(m + d * (2.0 * q - 1.0));
        }
        cum = next;
    }
    // The split ended on the last bin (only through rounding): its top.
    lower_top.or(last)
}

/// Weighted mean after cutting `trim` of the total weight from each tail (partial bins pro
/// rata), in unit form.
pub(crate) fn trimmed_mean(p: &ParamPartial, trim: f64) -> Option<f64> {
    let total = bins_total(p)?;
    let cut_lo = trim * total;
    let cut_hi = total - cut_lo;
    let mut cum = 0.0;
    let mut kept_w = 0.0;
    let mut kept_wu = 0.0;
    for (i, &w) in p.bin_w.iter().enumerate() {
        if w <= 0.0 {
            continue;
        }
        let a = cum;
        let b = cum + w;
        cum = b;
        if a >= cut_hi {
            break;
        }
        let lo = a.max(cut_lo);
        let hi = b.min(cut_hi);
        if hi <= lo {
            continue;
        }
        let k = hi - lo;
        if lo == a && hi == b {
            kept_w += w;
            kept_wu += p.bin_wu[i].max(0.0);
        } else {
            let (m, d) = bin_model(p, i, w);
            let q_lo = (lo - a) / w;
            let q_hi = (b - hi) / w;
            kept_w += k;
            kept_wu += k * (m + d * (q_lo - q_hi));
        }
    }
    if kept_w > 0.0 {
        Some((kept_wu / kept_w).clamp(0.0, 1.0))
    } else {
        median(p)
    }
}

/// The choice with the most weight (lowest index on near-ties) and the total weight.
pub(crate) fn plurality(p: &ParamPartial) -> Option<(usize, f64)> {
    let total = bins_total(p)?;
    let tie = TIE * total;
    let mut best = 0;
    let mut best_w = f64::NEG_INFINITY;
    for (i, &w) in p.bin_w.iter().enumerate() {
        if w > best_w + tie {
            best = i;
            best_w = w;
        }
    }
    Some((best, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FINE_BINS;

    fn partial(values: &[(f64, f64)]) -> ParamPartial {
        let mut p = ParamPartial::new(FINE_BINS);
        for &(u, w) in values {
            let bin = ((u * FINE_BINS as f64) as usize).min(FINE_BINS - 1);
            p.add(u, w, bin);
        }
        p
    }

    #[test]
    fn identical_values_come_back_exactly() {
        let p = partial(&[(0.3, 1.0), (0.3, 2.0), (0.3, 0.5)]);
        assert!((median(&p).unwrap() - 0.3).abs() < 1e-12);
        assert!((trimmed_mean(&p, 0.2).unwrap() - 0.3).abs() < 1e-12);
        let (mean, std) = moments(&p).unwrap();
        assert!((mean - 0.3).abs() < 1e-12);
        assert!(std < 1e-6);
    }

    #[test]
    fn trimmed_mean_cuts_each_tail() {
        // Eight agree on 0.5, two push to the top: a 20 % trim cuts the two from the top and
        // two agreeing ones from the bottom.
        let mut v = vec![(0.5, 1.0); 8];
        v.push((1.0, 1.0));
        v.push((1.0, 1.0));
        let p = partial(&v);
        let mean = moments(&p).unwrap().0;
        assert!((mean - 0.6).abs() < 1e-12, "mean {mean}");
        let tm = trimmed_mean(&p, 0.2).unwrap();
        assert!((tm - 0.5).abs() < 1e-12, "trimmed {tm}");
        // 25 % of 10 = 2.5 from each tail: both 1.0 inputs and half a 0.5 input at the top.
        let tm25 = trimmed_mean(&p, 0.25).unwrap();
        assert!((tm25 - 0.5).abs() < 1e-12, "trimmed 25 % {tm25}");
        // A cut through the outliers: 10 % = 1 from each tail keeps one 1.0 of two.
        let tm10 = trimmed_mean(&p, 0.1).unwrap();
        assert!(
            (tm10 - (7.0 * 0.5 + 1.0) / 8.0).abs() < 1e-12,
            "trimmed 10 % {tm10}"
        );
        // Zero trim is the mean.
        assert!((trimmed_mean(&p, 0.0).unwrap() - mean).abs() < 1e-12);
    }

    #[test]
    fn even_split_median_is_the_midpoint() {
        let p = partial(&[(0.2, 1.0), (0.8, 1.0)]);
        assert!((median(&p).unwrap() - 0.5).abs() < 1e-12);
        let p = partial(&[(0.2, 1.0), (0.2, 1.0), (0.8, 1.0), (0.8, 1.0)]);
        assert!((median(&p).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn median_follows_weight_not_count() {
        let p = partial(&[(0.1, 1.0), (0.2, 1.0), (0.9, 5.0)]);
        let m = median(&p).unwrap();
        assert!((m - 0.9).abs() < 1.0 / FINE_BINS as f64, "median {m}");
    }

    #[test]
    fn empty_has_no_aggregate() {
        let p = ParamPartial::new(FINE_BINS);
        assert!(median(&p).is_none());
        assert!(trimmed_mean(&p, 0.2).is_none());
        assert!(moments(&p).is_none());
        assert!(plurality(&p).is_none());
    }

    #[test]
    fn plurality_breaks_ties_low() {
        let mut p = ParamPartial::new(4);
        p.add(1.0, 2.0, 1);
        p.add(3.0, 2.0, 3);
        p.add(0.0, 1.0, 0);
        assert_eq!(plurality(&p), Some((1, 5.0)));
    }
}
