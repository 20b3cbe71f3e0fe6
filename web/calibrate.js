// calibrate.js — the performer page's ear for the phones' calibration chirps (issue 15).
// With "Listen" on, the laptop's microphone is kept (the last 8 s, through calib-worklet.js).
// When a phone asks for a chirp, the server tells the performers which phone and when it is
// due on the show clock; a moment after that time the page looks for the chirp in what the
// microphone heard (a matched filter, phone-audio.js's detectChirp) around its time, maps
// where it starts to the show clock (the AudioContext's clock → this page's clock → the show
// clock through this connection's sync), and answers `calibrated` with heard − due. The
// phone adds that to the output latency it corrects for.
//
// The microphone's own delay is taken from the browser (the track's `latency` setting and
// the context's output latency, which the worklet's clock runs ahead of): hold the phone by
// the laptop (30 cm of air is under a millisecond). Never sends anything for a chirp it did
// not hear clearly (the score is shown instead).

import { chirpTemplate, detectChirp } from './phone-audio.js';
import { localTime, showTime } from './sync.js';

const KEEP_S = 8;
/** Below this normalized correlation the chirp was not heard clearly: nothing is sent. */
export const MIN_SCORE = 0.3;
/** How far from its due time a chirp is looked for, seconds (before, after). */
const SEARCH = [0.25, 0.4];

export class ChirpEar {
  constructor() {
    this.ctx = null;
    this.client = null;
    this.blocks = []; // {time (ctx s of the first sample), samples}
    this.template = null;
    this.inLatency = 0;
    this.onResult = null; // ({participant, id, heard, offsetMs, score, sent}) => void
    globalThis.tuttiEar = this;
  }

  attach(client) {
    this.client = client;
    client.on('chirp', (c) => this._chirp(c));
  }

  get listening() { return !!this.ctx; }

  /** Start the microphone (from a click: browsers ask the user first). */
  async listen() {
    if (this.ctx) return;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule('/web/calib-worklet.js');
    const tap = new AudioWorkletNode(ctx, 'tutti-tap');
    const mute = ctx.createGain();
    mute.gain.value = 0;
    ctx.createMediaStreamSource(stream).connect(tap).connect(mute).connect(ctx.destination);
    tap.port.onmessage = (e) => this._block(e.data);
    this.template = await chirpTemplate(ctx.sampleRate);
    const s = stream.getAudioTracks()[0]?.getSettings?.() || {};
    this.inLatency = Number.isFinite(s.latency) ? s.latency : 0;
    this.stream = stream;
    this.ctx = ctx;
    if (ctx.state !== 'running') await ctx.resume();
  }

  stop() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.ctx?.close();
    this.ctx = null;
    this.blocks = [];
  }

  _block(b) {
    this.blocks.push(b);
    const keep = KEEP_S * this.ctx.sampleRate;
    let n = this.blocks.reduce((a, x) => a + x.samples.length, 0);
    while (n > keep && this.blocks.length > 1) n -= this.blocks.shift().samples.length;
  }

  /** This page's clock (ms) ↔ the context's (s): where the worklet's time `t` was captured. */
  _capturedLocalMs(t) {
    const ts = this.ctx.getOutputTimestamp();
    const out = Number.isFinite(this.ctx.outputLatency) && this.ctx.outputLatency > 0
      ? this.ctx.outputLatency : (this.ctx.baseLatency || 0);
    return ts.performanceTime + (t - ts.contextTime) * 1000 - (out + this.inLatency) * 1000;
  }

  _ctxOfLocalMs(ms) {
    const ts = this.ctx.getOutputTimestamp();
    const out = Number.isFinite(this.ctx.outputLatency) && this.ctx.outputLatency > 0
      ? this.ctx.outputLatency : (this.ctx.baseLatency || 0);
    return ts.contextTime + (ms - ts.performanceTime + (out + this.inLatency) * 1000) / 1000;
  }

  /**
   * Where the chirp starts in what was heard between context times `a` and `b` (seconds):
   * {time (context s, as captured), localMs, score}, or null with too little kept.
   */
  find(a, b) {
    const sr = this.ctx.sampleRate;
    const parts = this.blocks.filter((x) => x.time + x.samples.length / sr > a && x.time < b + this.template.length / sr);
    if (!parts.length) return null;
    // The blocks side by side; a sample's time is its own block's (a stalled page may have
    // left a gap between blocks).
    const start = parts[0].time;
    const x = new Float32Array(parts.reduce((n, p) => n + p.samples.length, 0));
    const offsets = [];
    let o = 0;
    for (const p of parts) { offsets.push(o); x.set(p.samples, o); o += p.samples.length; }
    const from = Math.max(0, Math.floor((a - start) * sr));
    const to = Math.floor((b - start) * sr);
    const hit = detectChirp(x, this.template, from, to);
    if (!hit) return null;
    let k = offsets.length - 1;
    while (k > 0 && offsets[k] > hit.index) k -= 1;
    const time = parts[k].time + (hit.index - offsets[k]) / sr;
    return { time, localMs: this._capturedLocalMs(time), score: hit.score };
  }

  _chirp(msg) {
    const est = this.client?.sync.estimate();
    if (!this.ctx || !est) {
      this.onResult?.({ participant: msg.participant, id: msg.id, heard: false, why: this.ctx ? 'not synced' : 'not listening' });
      return;
    }
    const dueLocal = localTime(est, msg.at);
    const wait = dueLocal - performance.now() + SEARCH[1] * 1000 + 150;
    setTimeout(() => this._analyze(msg, dueLocal), Math.max(0, wait));
  }

  _analyze(msg, dueLocal) {
    const due = this._ctxOfLocalMs(dueLocal);
    const hit = this.find(due - SEARCH[0], due + SEARCH[1]);
    const est = this.client.sync.estimate();
    if (!hit || hit.score < MIN_SCORE || !est) {
      this.onResult?.({ participant: msg.participant, id: msg.id, heard: false, score: hit?.score ?? 0, why: 'not heard clearly' });
      return;
    }
    const offsetMs = showTime(est, hit.localMs) - msg.at;
    const sent = this.client.command({ type: 'calibrated', id: msg.id, offset_ms: offsetMs }, `calibrate phone ${msg.participant}`) > 0;
    this.onResult?.({ participant: msg.participant, id: msg.id, heard: true, offsetMs, score: hit.score, sent });
  }
}
