// sync.js — the page's clock-sync estimator: the same algorithm as the `tutti-sync` crate
// (crates/tutti-sync/src/lib.rs; tests compare the two on the same exchanges), so read that
// file's documentation for the why.
//
// Each exchange is {t0, t1, t2, t3} in milliseconds: t0/t3 the page's clock when the `sync`
// frame left and its answer arrived, t1/t2 the show clock when the server read it and
// answered. The smallest uplink (t1 - t0) and the smallest downlink (t3 - t2) of the window
// bound the offset from both sides; the estimate is their midpoint. Drift is fitted once the
// exchanges span half a minute, and used only when it stands out of the noise. A clock step (the page slept) starts the window afresh.
// It never reads a clock, touches the DOM or sends anything: LiveClient drives it.

export const MAX_EXCHANGES = 512;
export const STEP_EVIDENCE = 4;
export const DRIFT_MIN_BINS = 4; // bins a drift is fitted from
// Standard errors from zero before a drift is believed, by bins less two (Student's t,
// two-sided 99 %; beyond the table 2.9), as tutti-sync's DRIFT_T_99.
export const DRIFT_T_99 = [63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169];
const driftT = (df) => DRIFT_T_99[Math.max(df, 1) - 1] ?? 2.9;

export const DEFAULTS = Object.freeze({
  windowMs: 600_000,
  stepMs: 100,
  maxExchanges: MAX_EXCHANGES,
  maxRoundTripMs: 5_000,
  binMs: 10_000,
  driftSpanMs: 30_000,
  maxDriftPpm: 1_000,
});

const mid = (x) => (x.t0 + x.t3) / 2;
const roundTrip = (x) => (x.t3 - x.t0) - (x.t2 - x.t1);

export class SyncEstimator {
  constructor(config = {}) {
    this.config = { ...DEFAULTS, ...config };
    this.config.maxExchanges = Math.min(Math.max(1, this.config.maxExchanges), MAX_EXCHANGES);
    this.exchanges = [];
    this.refused = 0;
    this.steps = 0;
  }

  /** Adds an exchange; returns null, or why it was refused (nothing changed then). */
  add(x) {
    const why = this._check(x);
    if (why) {
      this.refused += 1;
      return why;
    }
    if (this._stepped(x)) {
      this.exchanges = [];
      this.steps += 1;
    }
    if (this.exchanges.length === this.config.maxExchanges) this.exchanges.shift();
    this.exchanges.push({ t0: x.t0, t1: x.t1, t2: x.t2, t3: x.t3 });
    const newest = mid(x);
    while (this.exchanges.length && newest - mid(this.exchanges[0]) > this.config.windowMs) {
      this.exchanges.shift();
    }
    return null;
  }

  _check(x) {
    for (const k of ['t0', 't1', 't2', 't3']) {
      if (typeof x[k] !== 'number' || !Number.isFinite(x[k])) return `${k} is not a finite number`;
    }
    if (x.t3 < x.t0) return 'the reply arrived before the request was sent';
    if (x.t2 < x.t1) return 'the server replied before it received the request';
    const rtt = roundTrip(x);
    if (rtt < 0) return 'the server\'s time exceeds the whole exchange';
    if (rtt > this.config.maxRoundTripMs) return `round trip ${rtt.toFixed(1)} ms is over the limit`;
    const last = this.exchanges[this.exchanges.length - 1];
    if (last && x.t0 < last.t0 && x.t0 >= last.t0 - this.config.stepMs) {
      return 'sent before an exchange already counted';
    }
    return null;
  }

  _stepped(x) {
    const last = this.exchanges[this.exchanges.length - 1];
    if (!last) return false;
    const step = this.config.stepMs;
    if (x.t0 < last.t0 - step) return true;
    // Judged on a few exchanges only: one slow first exchange is no reference.
    if (this.exchanges.length < STEP_EVIDENCE) return false;
    let up = Infinity;
    let down = Infinity;
    for (const h of this.exchanges) {
      up = Math.min(up, h.t1 - h.t0);
      down = Math.min(down, h.t3 - h.t2);
    }
    return x.t1 - x.t0 < up - step || x.t3 - x.t2 < down - step;
  }

  clear() { this.exchanges = []; }

  get length() { return this.exchanges.length; }

  /** {offsetMs, driftPpm, atLocalMs, errorMs, boundMs, roundTripMs, used}, or null. */
  estimate() {
    const xs = this.exchanges;
    if (!xs.length) return null;
    const at = mid(xs[xs.length - 1]);
    const drift = this._fitDrift();
    const up = [Infinity, Infinity];
    const down = [Infinity, Infinity];
    let rtt = Infinity;
    for (const x of xs) {
      const dt = mid(x) - at;
      lowestTwo(up, (x.t1 - x.t0) - drift * dt);
      lowestTwo(down, (x.t3 - x.t2) + drift * dt);
      rtt = Math.min(rtt, roundTrip(x));
    }
    const bound = Math.max((up[0] + down[0]) / 2, 0);
    const error = xs.length > 1
      ? Math.sqrt((up[1] - up[0]) ** 2 + (down[1] - down[0]) ** 2) / 2
      : bound;
    return {
      offsetMs: (up[0] - down[0]) / 2,
      driftPpm: drift * 1e6,
      atLocalMs: at,
      errorMs: Math.min(error, bound),
      boundMs: bound,
      roundTripMs: rtt,
      used: xs.length,
    };
  }

  _fitDrift() {
    const bin = Math.max(this.config.binMs, 1);
    const xs = this.exchanges;
    const points = [];
    let i = 0;
    while (i < xs.length) {
      const start = mid(xs[i]);
      let bestUp = [Infinity, 0];
      let bestDown = [Infinity, 0];
      while (i < xs.length && mid(xs[i]) - start < bin) {
        const x = xs[i];
        if (x.t1 - x.t0 < bestUp[0]) bestUp = [x.t1 - x.t0, mid(x)];
        if (x.t3 - x.t2 < bestDown[0]) bestDown = [x.t3 - x.t2, mid(x)];
        i += 1;
      }
      points.push([(bestUp[1] + bestDown[1]) / 2, (bestUp[0] - bestDown[0]) / 2]);
    }
    const span = points.length ? points[points.length - 1][0] - points[0][0] : 0;
    if (points.length < DRIFT_MIN_BINS || span < this.config.driftSpanMs) return 0;
    const k = points.length;
    let mx = 0;
    let my = 0;
    for (const [x, y] of points) { mx += x; my += y; }
    mx /= k;
    my /= k;
    let sxy = 0;
    let sxx = 0;
    for (const [x, y] of points) {
      sxy += (x - mx) * (y - my);
      sxx += (x - mx) * (x - mx);
    }
    const slope = sxy / sxx;
    if (!Number.isFinite(slope) || Math.abs(slope) * 1e6 > this.config.maxDriftPpm) return 0;
    // Believed only when it stands out of the bins' own scatter (as tutti-sync).
    let residual = 0;
    for (const [x, y] of points) residual += (y - my - slope * (x - mx)) ** 2;
    const standardError = Math.sqrt(residual / (k - 2) / sxx);
    if (Math.abs(slope) < driftT(k - 2) * standardError) return 0;
    return slope;
  }

  /** Milliseconds until the next exchange should start. */
  nextExchangeInMs() {
    const e = this.estimate();
    if (e && this.exchanges.length >= 16 && e.errorMs <= 0.5) return 2_000;
    if (e && this.exchanges.length >= 16) return 500;
    return 100;
  }
}

function lowestTwo(lo, v) {
  if (v < lo[0]) { lo[1] = lo[0]; lo[0] = v; } else if (v < lo[1]) lo[1] = v;
}

/** The show-clock time at page time `localMs`. */
export function showTime(e, localMs) {
  return localMs + e.offsetMs + (localMs - e.atLocalMs) * e.driftPpm * 1e-6;
}

/** The page time at which the show clock reads `showMs`. */
export function localTime(e, showMs) {
  const d = e.driftPpm * 1e-6;
  return (showMs - e.offsetMs + e.atLocalMs * d) / (1 + d);
}
