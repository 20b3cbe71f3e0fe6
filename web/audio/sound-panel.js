// sound-panel.js — the performer page's Sound panel (perform.html #sound): which sound backend
// runs and its state/error (the `stats` frame's `sound`), per-channel peak and RMS meters with a
// peak-hold marker and a spectrum over the log-spaced bands (the `monitor` frames, ~30 a second),
// a text summary for screen readers (at most 4 updates a second, aria-live off), and the Listen
// toggle (listen.js).
//
// Drawing: a monitor frame only stores numbers and sets data-rms-dbfs on #meter-l/#meter-r; the
// canvases are painted at most once per animation frame, and not at all while the tab is hidden
// (painted again when it is shown). Frames older than a second read as "no level data".
// Must never: paint while hidden, change layout at the frame rate (canvas pixels and data-*
// only), or start audio except from the Listen click.

import { setText, describeError } from '../ui.js';
import { startListening, stop as stopListening, isListening } from './listen.js';

export const METER_MIN_DB = -60;
export const SPECTRUM_MIN_DB = -96;
const HOLD_MS = 1500; // a peak-hold marker stays this long,
const FALL_DB_PER_S = 20; // then falls this fast (so do spectrum bars)
const STALE_MS = 1000;
const SUMMARY_MS = 250;
const MINUS = '\u2212';

/** Where `db` lies on a meter from `min` dBFS to 0 dBFS, as 0..1. */
export function meterFraction(db, min = METER_MIN_DB) {
  if (!Number.isFinite(db)) return 0;
  return Math.min(1, Math.max(0, (db - min) / -min));
}

/** dBFS as text with a real minus sign, rounded to whole dB; "silent" at the engine's floor. */
export function dbText(db) {
  if (!Number.isFinite(db) || db <= -119.5) return 'silent';
  const r = Math.round(db);
  return r < 0 ? `${MINUS}${-r} dBFS` : `${r} dBFS`;
}

/** The panel's text summary of one monitor frame. */
export function summaryText(frame) {
  const [l, r] = frame.rms_dbfs;
  const [pl, pr] = frame.peak_dbfs;
  return `L ${dbText(l)}, R ${dbText(r)} (RMS); peaks L ${dbText(pl)}, R ${dbText(pr)}`;
}

/** A monitor frame with the fields the panel draws, or null. */
export function validMonitor(f) {
  const pair = (a) => Array.isArray(a) && a.length === 2 && a.every(Number.isFinite);
  if (!f || !pair(f.rms_dbfs) || !pair(f.peak_dbfs)) return null;
  if (!Array.isArray(f.bands_dbfs) || !Array.isArray(f.bands_hz) || f.bands_dbfs.length !== f.bands_hz.length) return null;
  return f;
}

/** The x position (0..1) of `hz` over log-spaced bands with these centres (edges half a band out). */
export function bandX(hz, centres) {
  const n = centres.length;
  if (n < 2 || !(hz > 0)) return 0;
  const half = Math.sqrt(centres[1] / centres[0]);
  const lo = centres[0] / half;
  const hi = centres[n - 1] * half;
  return Math.log(hz / lo) / Math.log(hi / lo);
}

/** A peak-hold marker: the highest level, kept HOLD_MS, then falling FALL_DB_PER_S. */
export class PeakHold {
  constructor(holdMs = HOLD_MS, fallDbPerS = FALL_DB_PER_S) {
    this.holdMs = holdMs;
    this.fall = fallDbPerS;
    this.db = -Infinity;
    this.at = 0;
  }

  value(now) {
    const falling = now - this.at - this.holdMs;
    return falling > 0 ? this.db - (falling / 1000) * this.fall : this.db;
  }

  update(db, now) {
    if (db >= this.value(now)) {
      this.db = db;
      this.at = now;
    }
  }
}

const LABELS = [[50, '50'], [100, '100'], [200, '200'], [500, '500'], [1000, '1k'], [2000, '2k'], [5000, '5k'], [10000, '10k']];
const NARROW_LABELS = new Set([100, 1000, 10000]);

/** A canvas kept at its CSS size times the device pixel ratio. */
function sized(canvas, onResize) {
  const c = { canvas, ctx: canvas.getContext('2d'), w: canvas.width, h: canvas.height, dpr: 1 };
  const fit = (cssW, cssH) => {
    if (!(cssW > 0 && cssH > 0)) return;
    c.dpr = globalThis.devicePixelRatio || 1;
    c.w = cssW;
    c.h = cssH;
    canvas.width = Math.round(cssW * c.dpr);
    canvas.height = Math.round(cssH * c.dpr);
    onResize(c);
  };
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver((entries) => {
      const box = entries[entries.length - 1].contentRect;
      fit(box.width, box.height);
    }).observe(canvas);
  }
  return c;
}

/**
 * Wires the panel. `$` finds an element by id; `token()` is the performer token in use.
 * Returns {monitor(frame), status(sound), stopListening()}.
 */
export function soundPanel($, token) {
  const els = {
    panel: $('sound'), backend: $('sound-backend'), detail: $('sound-detail'), error: $('sound-error'),
    engine: $('sound-engine'), listen: $('listen'), listenState: $('listen-state'), summary: $('sound-summary'),
  };
  const meterEls = [$('meter-l'), $('meter-r')];
  const css = getComputedStyle(document.documentElement);
  const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const C = {
    ok: color('--ok', '#4ade80'), warn: color('--warn', '#fbbf24'), bad: color('--bad', '#ff7a7a'),
    line: color('--line', '#39404f'), muted: color('--muted', '#b4bccb'), fg: color('--fg', '#fff'), bar: color('--crowd', '#3cc4ff'), bg: color('--panel-2', '#1f2430'),
  };
  let latest = null;
  let lastAt = -Infinity;
  let lastSummary = -Infinity;
  let stale = true;
  let backend = null;
  let raf = 0;
  let lastPaint = 0;
  const holds = [new PeakHold(), new PeakHold()];
  let shown = new Float32Array(0); // spectrum bars as drawn (they fall smoothly)

  const gradientFor = (c) => {
    const g = c.ctx.createLinearGradient(0, 0, c.w, 0);
    const warn = meterFraction(-18);
    const bad = meterFraction(-6);
    g.addColorStop(0, C.ok); g.addColorStop(warn, C.ok); g.addColorStop(warn, C.warn);
    g.addColorStop(bad, C.warn); g.addColorStop(bad, C.bad); g.addColorStop(1, C.bad);
    c.gradient = g;
  };
  const meters = meterEls.map((el) => sized(el, (c) => { gradientFor(c); schedule(); }));
  meters.forEach(gradientFor);
  const spectrum = sized($('spectrum'), schedule);

  function schedule() {
    if (raf || document.hidden) return;
    raf = requestAnimationFrame(paint);
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden) schedule(); });

  function paintMeter(c, ch, now) {
    const { ctx, w, h, dpr } = c;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!stale && latest) {
      ctx.fillStyle = c.gradient;
      ctx.globalAlpha = 0.4;
      ctx.fillRect(0, 0, w * meterFraction(latest.peak_dbfs[ch]), h);
      ctx.globalAlpha = 1;
      ctx.fillRect(0, h * 0.2, w * meterFraction(latest.rms_dbfs[ch]), h * 0.6);
      const hold = holds[ch].value(now);
      if (hold > METER_MIN_DB) {
        ctx.fillStyle = hold > -0.5 ? C.bad : C.fg;
        ctx.fillRect(Math.min(w - 2, w * meterFraction(hold) - 1), 0, 2, h);
      }
    }
    ctx.fillStyle = C.line;
    for (let db = -48; db < 0; db += 12) ctx.fillRect(Math.round(w * meterFraction(db)), h - 4, 1, 4);
  }

  function paintSpectrum(dt) {
    const { ctx, w, h, dpr } = spectrum;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const labelH = 14;
    const plotH = h - labelH;
    const y = (db) => plotH * (1 - meterFraction(db, SPECTRUM_MIN_DB));
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillStyle = C.line;
    for (const db of [-24, -48, -72]) ctx.fillRect(0, Math.round(y(db)), w, 1);
    if (!latest) return;
    const bands = latest.bands_dbfs;
    const n = bands.length;
    if (shown.length !== n) shown = new Float32Array(n).fill(SPECTRUM_MIN_DB);
    const fall = (dt / 1000) * FALL_DB_PER_S * 3;
    const bw = w / n;
    ctx.fillStyle = C.bar;
    for (let i = 0; i < n; i++) {
      const v = stale ? SPECTRUM_MIN_DB : Number(bands[i]);
      shown[i] = Math.max(Number.isFinite(v) ? v : SPECTRUM_MIN_DB, shown[i] - fall, SPECTRUM_MIN_DB);
      const top = y(shown[i]);
      if (top < plotH) ctx.fillRect(i * bw + 1, top, Math.max(1, bw - 2), plotH - top);
    }
    ctx.fillStyle = C.muted;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    for (const [hz, text] of LABELS) {
      if (w < 420 && !NARROW_LABELS.has(hz)) continue;
      const x = w * bandX(hz, latest.bands_hz);
      if (x > 12 && x < w - 12) ctx.fillText(text, x, h);
    }
    // The grid's scale, on a backdrop so bars do not hide it.
    const label = `${MINUS}24 dB`;
    const lw = ctx.measureText(label).width + 6;
    ctx.fillStyle = C.bg;
    ctx.fillRect(w - lw, y(-24) + 1, lw, 12);
    ctx.fillStyle = C.muted;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'top';
    ctx.fillText(label, w - 3, y(-24) + 2);
  }

  function paint(now) {
    raf = 0;
    if (document.hidden) return;
    const dt = lastPaint ? Math.min(250, now - lastPaint) : 0;
    lastPaint = now;
    const t = performance.now();
    meters.forEach((c, ch) => paintMeter(c, ch, t));
    paintSpectrum(dt);
    // Keep falling bars moving when frames stop (stale) until they reach the floor.
    if (stale && shown.some((v) => v > SPECTRUM_MIN_DB)) schedule();
  }

  function showEngine(on) {
    els.engine.hidden = !on;
    if (!on && isListening()) {
      stopListening();
      setListen('off', 'Not listening');
    }
    if (on) schedule();
  }

  // A missing frame for a while: say so and let the meters drop.
  setInterval(() => {
    if (!stale && performance.now() - lastAt > STALE_MS) {
      stale = true;
      setText(els.summary, 'No level data (the engine sends none)');
      schedule();
    }
  }, 500);

  function monitor(frame) {
    const f = validMonitor(frame);
    if (!f) return;
    const now = performance.now();
    latest = f;
    lastAt = now;
    stale = false;
    meterEls.forEach((el, ch) => {
      el.dataset.rmsDbfs = (Math.round(f.rms_dbfs[ch] * 10) / 10).toFixed(1);
      holds[ch].update(f.peak_dbfs[ch], now);
    });
    if (backend == null && els.engine.hidden) showEngine(true);
    if (now - lastSummary >= SUMMARY_MS) {
      lastSummary = now;
      setText(els.summary, summaryText(f));
    }
    schedule();
  }

  function status(sound) {
    if (!sound || typeof sound !== 'object') return;
    backend = String(sound.backend ?? 'none');
    els.panel.dataset.backend = backend;
    const names = { engine: 'Embedded engine', supercollider: 'SuperCollider', none: 'No sound (OSC only)' };
    setText(els.backend, names[backend] || backend);
    const parts = [];
    if (sound.state) parts.push(String(sound.state));
    if (sound.output) parts.push(`output ${sound.output}`);
    if (sound.server) parts.push(`server ${sound.server}`);
    if (sound.recording) parts.push('recording');
    if (sound.recoveries) parts.push(`${sound.recoveries} recoveries`);
    if (Array.isArray(sound.unknown_targets) && sound.unknown_targets.length) parts.push(`skipped: ${sound.unknown_targets.join(', ')}`);
    setText(els.detail, parts.length ? `· ${parts.join(' · ')}` : '');
    const problem = sound.error ? String(sound.error) : sound.non_finite_samples > 0 ? `${sound.non_finite_samples} non-finite samples silenced` : '';
    setText(els.error, problem);
    els.error.hidden = !problem;
    showEngine(backend === 'engine');
    els.listen.disabled = sound.state === 'not started';
  }

  // ---- listen ----
  const LISTEN_TEXT = { connecting: 'Connecting…', buffering: 'Buffering…', playing: 'Playing' };
  function setListen(state, text) {
    els.listenState.dataset.state = state;
    setText(els.listenState, text);
    els.listen.setAttribute('aria-pressed', String(state in LISTEN_TEXT));
  }
  function onState(state, info) {
    if (state === 'error') setListen('error', `Could not listen: ${describeError(info || { code: 'error' }, true)}`);
    else if (state === 'closed') setListen('closed', `Stream closed${info?.reason ? `: ${info.reason}` : ''}`);
    else if (LISTEN_TEXT[state]) {
      setListen(state, LISTEN_TEXT[state]);
      if (info && Number.isFinite(info.bufferedMs)) els.listenState.dataset.bufferedMs = String(info.bufferedMs);
    }
  }
  els.listen.addEventListener('click', () => {
    if (isListening()) {
      stopListening();
      setListen('off', 'Not listening');
      return;
    }
    setListen('connecting', LISTEN_TEXT.connecting);
    // Started from this click: the browser lets the AudioContext play.
    startListening('/live/v1/audio', { token: token(), onState }).catch(() => { /* reported through onState */ });
  });

  return {
    monitor,
    status,
    stopListening() {
      if (!isListening()) return;
      stopListening();
      setListen('off', 'Not listening');
    },
  };
}
