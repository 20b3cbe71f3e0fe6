// ui.js — small DOM and formatting helpers shared by Tutti's pages.
// Pure helpers: no network, no global state. Never use innerHTML with server text; build nodes.

/** Create an element: h('button', {class: 'x', onclick: fn}, 'text', child). */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const kid of kids.flat()) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

/** Create an SVG element with attributes. */
export function svg(tag, attrs = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** Set text only when it changed (saves layout work at 20 states a second). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Digits after the decimal point of a parameter's step (0.01 → 2, 1 → 0); 2 without a step. */
export function decimals(step) {
  if (!(typeof step === 'number' && step > 0)) return 2;
  const s = String(step);
  const exp = /e-(\d+)$/.exec(s);
  if (exp) return Math.min(6, Number(exp[1]) + (s.split('e')[0].split('.')[1] || '').length);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : Math.min(6, s.length - dot - 1);
}

/** A value with its parameter's step precision: value.toFixed(decimals(step)), never "-0". */
export function fmt(value, step) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  const s = value.toFixed(decimals(step));
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** A 0..1 share as a whole percentage ("57 %"). */
export function pct(share) {
  return typeof share === 'number' && Number.isFinite(share) ? `${Math.round(share * 100)} %` : '–';
}

/** Where value lies in min..max, as 0..100 (for bar widths and markers). */
export function position(value, min, max) {
  if (!(max > min) || !Number.isFinite(value)) return 0;
  return Math.min(100, Math.max(0, ((value - min) / (max - min)) * 100));
}

/** A query-string parameter, or null when absent or longer than the protocol's 64 characters. */
export function queryParam(name) {
  const v = new URLSearchParams(location.search).get(name);
  return v && v.length <= 64 ? v : null;
}

/** Run fn once per animation frame at most. A hidden tab gets no frames and slow timers, so
 *  there it runs at once (no paint happens anyway) and the page is current when shown. */
export function scheduler(fn) {
  let pending = false;
  const run = () => {
    if (!pending) return;
    pending = false;
    fn();
  };
  return () => {
    if (document.hidden) {
      pending = false;
      fn();
      return;
    }
    if (pending) return;
    pending = true;
    requestAnimationFrame(run);
    setTimeout(run, 100);
  };
}

/** Show a message in a polite live region for a few seconds (never alert()). */
export function toaster(el, ms = 4000) {
  let timer = 0;
  return (text, kind = 'error') => {
    el.dataset.kind = kind;
    el.textContent = text;
    clearTimeout(timer);
    timer = setTimeout(() => { el.textContent = ''; }, ms);
  };
}

/** Show a connection state ('connecting', 'live', 'reconnecting', 'offline') in an element. */
export function showConn(el, state) {
  setText(el, state);
  el.dataset.state = state;
}

const FRIENDLY = {
  show_not_live: 'The show is not live right now.',
  show_ended: 'This show has ended.',
  unknown_show: 'There is no show with that code.',
  unauthorized: 'That performer token was refused.',
  rate_limited: 'Slow down a little: some moves were skipped.',
  out_of_range: 'That value is outside the range.',
  unknown_zone: 'Unknown seating zone; joined without one.',
  taken_over: 'This page was opened again in another tab or on another device; it continues there.',
};

/** A short human text for an error frame. */
export function describeError(err, friendly = false) {
  if (friendly && FRIENDLY[err.code]) return FRIENDLY[err.code];
  return `${err.code}: ${err.message || ''}`.trim();
}

/** Vote-share bars for a discrete parameter: {el, render(shares, winningChoice)}. */
export function shareBars(param, choices) {
  const rows = choices.map((c) => {
    const fill = h('div');
    const value = h('span', { class: 'num' }, '–');
    const row = h('div', { class: 'share', 'data-share': `${param}:${c}` },
      h('span', { class: 'name' }, c), h('div', { class: 'bar', 'aria-hidden': 'true' }, fill), value);
    return { c, row, fill, value };
  });
  return {
    el: h('div', { class: 'shares' }, rows.map((r) => r.row)),
    render(shares, winner) {
      rows.forEach((r, i) => {
        const share = Array.isArray(shares) ? Number(shares[i]) || 0 : 0;
        r.fill.style.setProperty('--w', `${(Math.min(1, Math.max(0, share)) * 100).toFixed(1)}%`);
        setText(r.value, pct(share));
        r.row.classList.toggle('win', r.c === winner);
      });
    },
  };
}
