// trajectory.js — the live view of the post-show report: each parameter's collective value and
// the crowd's raw aggregate over the last minutes, with override periods shaded and section
// changes marked, drawn as SVG in the report's colours (crates/tutti-report/src/plot.rs). Used by
// the performer dashboard and the display. Fed by detailed `state` frames; keeps one point a
// second (the report's resolution) for `minutes` minutes, so memory stays flat for any show.
//
// Test hooks:
//   .trajectory[data-param="NAME"]   one chart; inside it svg polyline.value / polyline.raw
//                                    (points: "x,y …"), rect.override (shaded periods),
//                                    line.section (section changes), data-points (samples kept)

import { h, svg } from './ui.js';

export const COLOURS = {
  value: '#1f4e79', raw: '#e08a00', override: 'rgba(200,40,60,0.16)', section: '#888',
};

const W = 600;
const H = 120;
const PAD = { l: 4, r: 4, t: 6, b: 6 };

/** Samples of the last minutes, one a second. */
export class Trajectories {
  constructor(container, { minutes = 5, now = () => Date.now() } = {}) {
    this.el = container;
    this.keep = Math.max(1, minutes) * 60;
    this.now = now;
    this.params = [];
    this.samples = []; // { t (s), params: { name: { v, raw, ovr } } }
    this.charts = new Map();
  }

  /** The piece's parameters (from the welcome frame); clears the history if they changed. */
  setParams(params) {
    const sig = JSON.stringify(params.map((p) => [p.name, p.kind, p.min, p.max]));
    if (sig === this.sig) return;
    this.sig = sig;
    this.params = params;
    this.samples = [];
    this.charts.clear();
    this.el.replaceChildren(...params.map((p) => this.chart(p)));
  }

  chart(p) {
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `${p.label || p.name}, last minutes` });
    const shades = svg('g', { class: 'shades' });
    const marks = svg('g', { class: 'marks' });
    const raw = svg('polyline', { class: 'raw', fill: 'none', stroke: COLOURS.raw, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke', points: '' });
    const value = svg('polyline', { class: 'value', fill: 'none', stroke: COLOURS.value, 'stroke-width': 2.5, 'vector-effect': 'non-scaling-stroke', points: '' });
    root.append(shades, marks, raw, value);
    const fig = h('figure', { class: 'trajectory', 'data-param': p.name, 'data-points': '0' },
      h('figcaption', {}, p.label || p.name), root);
    this.charts.set(p.name, { fig, shades, marks, raw, value, p });
    return fig;
  }

  /** Takes a detailed state frame; keeps at most one sample a second. */
  push(state) {
    if (!state?.params || state.status !== 'live') return false;
    const t = this.now() / 1000;
    const last = this.samples[this.samples.length - 1];
    if (last && t - last.t < 1) return false;
    const params = {};
    for (const [name, s] of Object.entries(state.params)) {
      params[name] = { v: s.value, raw: s.raw ?? null, ovr: (s.overrides || []).map((o) => o.mode) };
    }
    this.samples.push({ t, params });
    while (this.samples.length && t - this.samples[0].t > this.keep) this.samples.shift();
    return true;
  }

  draw() {
    const n = this.samples.length;
    if (!n) return;
    const t1 = this.samples[n - 1].t;
    const t0 = t1 - this.keep;
    const x = (t) => PAD.l + ((t - t0) / this.keep) * (W - PAD.l - PAD.r);
    for (const c of this.charts.values()) {
      const { p } = c;
      const discrete = p.kind === 'discrete';
      const lo = discrete ? 0 : p.min;
      const hi = discrete ? Math.max(1, (p.choices?.length || 1) - 1) : p.max;
      const y = (v) => H - PAD.b - ((v - lo) / (hi - lo || 1)) * (H - PAD.t - PAD.b);
      const pts = (key) => this.samples
        .filter((s) => Number.isFinite(s.params[p.name]?.[key]))
        .map((s) => `${x(s.t).toFixed(1)},${y(s.params[p.name][key]).toFixed(1)}`)
        .join(' ');
      c.value.setAttribute('points', pts('v'));
      c.raw.setAttribute('points', pts('raw'));
      // Override periods: runs of samples with an active override.
      const shades = [];
      let start = null;
      let modes = '';
      this.samples.forEach((s, i) => {
        const o = s.params[p.name]?.ovr || [];
        if (o.length && start === null) { start = s.t; modes = o.join('+'); }
        const end = i === n - 1 || !(this.samples[i + 1].params[p.name]?.ovr || []).length;
        if (start !== null && o.length && end) {
          const r = svg('rect', { class: 'override', x: x(start).toFixed(1), y: 0, width: Math.max(2, x(s.t) - x(start)).toFixed(1), height: H, fill: COLOURS.override });
          r.append(svg('title', {}));
          r.firstChild.textContent = modes;
          shades.push(r);
          start = null;
        }
      });
      c.shades.replaceChildren(...shades);
      // Section changes (a vote named "section").
      const marks = [];
      const sec = this.params.find((q) => q.name === 'section' && q.kind === 'discrete');
      if (sec) {
        let prev = null;
        for (const s of this.samples) {
          const v = s.params.section?.v;
          if (prev !== null && v !== prev) {
            marks.push(svg('line', { class: 'section', x1: x(s.t), x2: x(s.t), y1: 0, y2: H, stroke: COLOURS.section, 'stroke-dasharray': '4 4', 'vector-effect': 'non-scaling-stroke' }));
          }
          prev = v;
        }
      }
      c.marks.replaceChildren(...marks);
      c.fig.dataset.points = String(n);
    }
  }
}
