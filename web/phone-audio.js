// phone-audio.js — the phone as an instrument (issue 15): plays the piece's phone voices
// when a performer cues them, in step with every other phone, and its drones, continuous
// voices whose level (and pitch) follow a parameter's collective value, smoothed here.
//
// A `cue` frame says which voice to play and when, on the show clock. With LiveClient's sync
// estimate (sync.js) that time becomes a time on this page's clock, then on the AudioContext's
// clock, less the output's latency (`outputLatency`, else `baseLatency`) so the sound leaves
// the speaker at the moment, not just the buffer. A cue whose moment has passed is dropped,
// never played late, and counted (LiveClient reports the count to the performers). Where the
// browser does not know its output latency (or gets it wrong), an acoustic calibration adds to
// it: the phone plays a chirp at a show-clock time, the performer's laptop microphone (perform
// page, calibrate.js) times when it was heard, and the phone adds heard − due to its latency
// (kept in localStorage for the device). Sound needs
// a tap first (browsers, iOS above all, keep audio locked until the user acts); mute always
// works; a wake lock keeps the screen on while sound is enabled, where the browser allows.
// It never sends frames itself and never plays anything before the user enabled sound.

import { localTime } from './sync.js';

const LOG_MAX = 100;
/** The calibration chirp: a rising sweep, short and unmistakable to a matched filter. */
export const CHIRP = { from: 1000, to: 4000, seconds: 0.06, gain: 0.6 };
const CALIBRATION_KEY = 'tutti.calibration_ms';
/** The largest calibration kept, milliseconds (the server's limit per answer, too). */
export const MAX_CALIBRATION_MS = 1000;

/** Build the chirp's nodes in `ctx`, sounding from `t` (seconds on ctx's clock) into `dest`. */
export function playChirp(ctx, dest, t) {
  const end = t + CHIRP.seconds;
  const env = ctx.createGain();
  env.gain.setValueAtTime(0, t);
  env.gain.linearRampToValueAtTime(CHIRP.gain, t + 0.002);
  env.gain.setValueAtTime(CHIRP.gain, end - 0.002);
  env.gain.linearRampToValueAtTime(0, end);
  env.connect(dest);
  const osc = ctx.createOscillator();
  osc.frequency.setValueAtTime(CHIRP.from, t);
  osc.frequency.linearRampToValueAtTime(CHIRP.to, end);
  osc.connect(env);
  osc.start(t);
  osc.stop(end + 0.01);
  return end;
}

/** The chirp as samples at `sampleRate` (the matched filter's template), through the same code. */
export async function chirpTemplate(sampleRate = 48_000) {
  const ctx = new OfflineAudioContext(1, Math.ceil(CHIRP.seconds * sampleRate) + 1, sampleRate);
  playChirp(ctx, ctx.destination, 0);
  return (await ctx.startRendering()).getChannelData(0);
}

/**
 * Where the chirp `template` starts in `x` (samples), searched from `from` to `to`: the
 * start with the highest normalized cross-correlation, {index, score} (score 0–1; a chirp
 * heard through air and a microphone scores well above 0.3, noise well below). Null when
 * the window is shorter than the template.
 */
export function detectChirp(x, template, from = 0, to = x.length) {
  const n = template.length;
  const last = Math.min(to, x.length - n);
  if (last < from) return null;
  let tt = 0;
  for (let j = 0; j < n; j += 1) tt += template[j] * template[j];
  // Running energy of the window under the template.
  let xx = 0;
  for (let j = 0; j < n; j += 1) xx += x[from + j] * x[from + j];
  let best = { index: from, score: 0 };
  for (let i = from; i <= last; i += 1) {
    if (i > from) xx += x[i + n - 1] * x[i + n - 1] - x[i - 1] * x[i - 1];
    if (xx <= 1e-12) continue;
    let dot = 0;
    for (let j = 0; j < n; j += 1) dot += x[i + j] * template[j];
    const score = dot / Math.sqrt(tt * xx);
    if (score > best.score) best = { index: i, score };
  }
  return best;
}

/**
 * Where a cue leaves this phone: {play, gain, delayMs, why}. `me` is {zone, x, y} (x/y in
 * metres, null when the phone has not told its place: the middle of the hall then), `hall`
 * [width, depth]. Zones filter; a sweep delays by distance / speed; a source scales the gain
 * from 1 at the point to 0 at its radius (and beyond: not played).
 */
export function placement(cue, me, hall) {
  if (cue.zones && !cue.zones.includes(me.zone)) return { play: false, gain: 0, delayMs: 0, why: 'other zones' };
  const [w, d] = hall || [0, 0];
  const x = Number.isFinite(me.x) ? me.x : w / 2;
  const y = Number.isFinite(me.y) ? me.y : d / 2;
  let delayMs = 0;
  let gain = 1;
  if (cue.sweep) delayMs = (Math.hypot(x - cue.sweep.x, y - cue.sweep.y) / cue.sweep.speed) * 1000;
  if (cue.source) {
    gain = 1 - Math.hypot(x - cue.source.x, y - cue.source.y) / cue.source.radius;
    if (gain <= 0) return { play: false, gain: 0, delayMs, why: 'out of reach' };
  }
  return { play: true, gain, delayMs, why: '' };
}

/** Build one voice's nodes in `ctx`, starting at `t` (seconds on ctx's clock), into `dest`,
 * its gain scaled by `scale` (0–1). */
export function playVoice(ctx, dest, voice, t, scale = 1) {
  const attack = Math.max(0, voice.attack_ms) / 1000;
  const hold = Math.max(0, voice.hold_ms) / 1000;
  const release = Math.max(0.001, voice.release_ms) / 1000;
  const end = t + attack + hold + release;
  const env = ctx.createGain();
  env.gain.setValueAtTime(0, t);
  env.gain.linearRampToValueAtTime(voice.gain * scale, t + attack);
  env.gain.setValueAtTime(voice.gain * scale, t + attack + hold);
  env.gain.linearRampToValueAtTime(0, end);
  env.connect(dest);
  let src;
  if (voice.wave === 'noise') {
    const n = Math.ceil((end - t) * ctx.sampleRate) + 1;
    const buf = ctx.createBuffer(1, n, ctx.sampleRate);
    const data = buf.getChannelData(0);
    let seed = 0x9e3779b9;
    for (let i = 0; i < n; i += 1) {
      seed = (seed * 1664525 + 1013904223) >>> 0; // deterministic: every phone alike
      data[i] = seed / 2 ** 31 - 1;
    }
    src = ctx.createBufferSource();
    src.buffer = buf;
  } else {
    src = ctx.createOscillator();
    src.type = voice.wave;
    src.frequency.setValueAtTime(voice.freq, t);
  }
  src.connect(env);
  src.start(t);
  src.stop(end + 0.01);
  return end;
}

/**
 * Render cues offline: `cues` are [{voice, at_s}] with voices as in `welcome.phone`; returns
 * the rendered AudioBuffer (mono). The same code path as live playback, for tests and for a
 * composer to check a cue list.
 */
export async function renderOffline(voices, cues, seconds, sampleRate = 48_000) {
  const ctx = new OfflineAudioContext(1, Math.ceil(seconds * sampleRate), sampleRate);
  const byName = new Map(voices.map((v) => [v.name, v]));
  for (const c of cues) playVoice(ctx, ctx.destination, byName.get(c.voice), c.at_s);
  return ctx.startRendering();
}

/**
 * Where a drone should be for a parameter's collective value: {gain, freq}. `param` is the
 * parameter from `welcome` ({min, max}); its range maps to 0–`drone.gain`, and to
 * `freq`–`freq_to` when the pitch follows too.
 */
export function droneTarget(drone, param, value) {
  const lo = param?.min ?? 0;
  const hi = param?.max ?? 1;
  const x = hi > lo && Number.isFinite(value) ? Math.min(Math.max((value - lo) / (hi - lo), 0), 1) : 0;
  const freq = Number.isFinite(drone.freq_to) ? drone.freq + (drone.freq_to - drone.freq) * x : drone.freq;
  return { gain: drone.gain * x, freq };
}

/**
 * A moving source's share of a drone's gain at this phone (0–1): `source` is {x, y, radius}
 * (x and y name continuous parameters), `params` name → {min, max}, `values` name →
 * collective value, `me` {x, y} in metres (null: the middle of the hall), `hall` [width,
 * depth]. The point is x's range across the width and y's from the stage to the back; the
 * gain falls linearly from 1 at the point to 0 at `radius` metres. 1 without a source.
 */
export function sourceGain(source, params, values, me, hall) {
  if (!source || !hall) return 1;
  const [w, d] = hall;
  const at = (name, size) => {
    const p = params.get(name);
    const v = values[name];
    if (!p || !Number.isFinite(v) || !(p.max > p.min)) return size / 2;
    return Math.min(Math.max((v - p.min) / (p.max - p.min), 0), 1) * size;
  };
  const x = Number.isFinite(me?.x) ? me.x : w / 2;
  const y = Number.isFinite(me?.y) ? me.y : d / 2;
  const dist = Math.hypot(x - at(source.x, w), y - at(source.y, d));
  return Math.max(0, 1 - dist / source.radius);
}

/** One drone sounding in `ctx` into `dest`, silent until told a target. */
export class Drone {
  constructor(ctx, dest, drone) {
    this.drone = drone;
    this.ctx = ctx;
    this.env = ctx.createGain();
    this.env.gain.value = 0;
    this.env.connect(dest);
    if (drone.wave === 'noise') {
      const n = ctx.sampleRate; // a second of noise, looped
      const buf = ctx.createBuffer(1, n, ctx.sampleRate);
      const data = buf.getChannelData(0);
      let seed = 0x2545f491;
      for (let i = 0; i < n; i += 1) {
        seed = (seed * 1664525 + 1013904223) >>> 0;
        data[i] = seed / 2 ** 31 - 1;
      }
      this.src = ctx.createBufferSource();
      this.src.buffer = buf;
      this.src.loop = true;
    } else {
      this.src = ctx.createOscillator();
      this.src.type = drone.wave;
      this.src.frequency.value = drone.freq;
    }
    this.src.connect(this.env);
    this.src.start();
    this.target = { gain: 0, freq: drone.freq };
  }

  /** Glide towards `target` ({gain, freq}) from `t` (ctx seconds): 95 % in `smooth_ms`. */
  set(target, t) {
    const tau = Math.max(this.drone.smooth_ms, 1) / 3000;
    this.env.gain.setTargetAtTime(target.gain, t, tau);
    if (this.src.frequency) this.src.frequency.setTargetAtTime(target.freq, t, tau);
    this.target = target;
  }

  stop() {
    try { this.src.stop(); } catch { /* not started */ }
    this.env.disconnect();
  }
}

/**
 * Render one drone offline through the same code as live: `steps` are [{t, value}] (seconds,
 * the parameter's collective value from then on), `param` its {min, max}. Returns the
 * rendered AudioBuffer (mono), for tests and for a composer to hear a drone's response.
 */
export async function renderDrone(drone, param, steps, seconds, sampleRate = 48_000) {
  const ctx = new OfflineAudioContext(1, Math.ceil(seconds * sampleRate), sampleRate);
  const d = new Drone(ctx, ctx.destination, drone);
  for (const s of steps) d.set(droneTarget(drone, param, s.value), s.t);
  return ctx.startRendering();
}

/** This device's stored calibration, milliseconds (0 when none). */
function loadCalibration() {
  try {
    const v = Number(localStorage.getItem(CALIBRATION_KEY));
    return Number.isFinite(v) ? Math.max(-MAX_CALIBRATION_MS, Math.min(MAX_CALIBRATION_MS, v)) : 0;
  } catch { return 0; }
}

export class PhoneAudio {
  /** client: a LiveClient (its `sync` estimator and `cuesLate` counter are used). */
  constructor(client) {
    this.client = client;
    this.voices = new Map();
    this.leadMs = 150;
    this.hall = null; // [width, depth] metres, when cues can be positional
    this.place = { x: null, y: null }; // this phone's place in the hall, when told
    this.ctx = null;
    this.master = null;
    this.muted = false;
    this.wakeLock = null;
    this.log = [];
    this.droneSpecs = []; // from welcome.phone.drones
    this.params = new Map(); // name → {min, max}, for the drones
    this.drones = new Map(); // name → Drone, once sound is enabled
    this.lastState = null;
    this.calibrationMs = loadCalibration();
    this.chirps = new Map(); // id → the chirp this phone played, awaiting its calibration
    this.onCalibration = null; // (ms, entry) => void, for the page
    globalThis.tuttiCalibration = this.calibrationMs;
    globalThis.tuttiChirps = [];
    globalThis.tuttiCues = this.log;
    globalThis.tuttiDrones = {};
    client.on('welcome', (w) => this._welcome(w));
    client.on('cue', (c) => this._cue(c));
    client.on('state', (s) => this._state(s));
    client.on('chirp', (c) => this._chirp(c));
    client.on('calibration', (c) => this._calibration(c));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.ctx) this._keepAwake();
    });
  }

  get hasVoices() { return this.voices.size > 0 || this.droneSpecs.length > 0; }

  get enabled() { return !!this.ctx && this.ctx.state === 'running'; }

  _welcome(w) {
    this.voices = new Map((w.phone?.voices || []).map((v) => [v.name, v]));
    this.leadMs = w.phone?.lead_ms ?? 150;
    this.hall = w.phone?.hall || null;
    this.params = new Map((w.params || []).map((p) => [p.name, p]));
    const specs = w.phone?.drones || [];
    if (JSON.stringify(specs) !== JSON.stringify(this.droneSpecs)) {
      for (const d of this.drones.values()) d.stop();
      this.drones.clear();
      this.droneSpecs = specs;
      if (this.ctx) this._startDrones();
    }
  }

  _startDrones() {
    for (const spec of this.droneSpecs) {
      if (!this.drones.has(spec.name)) this.drones.set(spec.name, new Drone(this.ctx, this.master, spec));
    }
    if (this.lastState) this._state(this.lastState);
  }

  /** Each state moves the drones towards the collective values they follow. */
  _state(s) {
    this.lastState = s;
    if (!this.drones.size) return;
    const now = this.ctx.currentTime;
    const values = {};
    for (const [name, p] of Object.entries(s.params || {})) values[name] = p?.value;
    for (const d of this.drones.values()) {
      const v = values[d.drone.follow];
      if (!Number.isFinite(v)) continue;
      const target = droneTarget(d.drone, this.params.get(d.drone.follow), v);
      target.gain *= sourceGain(d.drone.source, this.params, values, this.place, this.hall);
      if (target.gain !== d.target.gain || target.freq !== d.target.freq) d.set(target, now);
      globalThis.tuttiDrones[d.drone.name] = target;
    }
  }

  /** Call from a tap: creates (or resumes) the AudioContext and asks for a wake lock. */
  async enable() {
    if (!this.ctx) {
      this.ctx = new AudioContext({ latencyHint: 'interactive' });
      this.master = this.ctx.createGain();
      this.master.gain.value = this.muted ? 0 : 1;
      this.master.connect(this.ctx.destination);
    }
    if (this.ctx.state !== 'running') await this.ctx.resume();
    this._startDrones();
    this._keepAwake();
    this.client.soundOn = this.enabled && !this.muted;
    return this.enabled;
  }

  setMuted(muted) {
    this.muted = muted;
    this.client.soundOn = this.enabled && !muted;
    if (this.master) this.master.gain.setValueAtTime(muted ? 0 : 1, this.ctx.currentTime);
  }

  /** A short test tone (the first voice) now, to check the level. */
  test() {
    const v = this.voices.values().next().value;
    if (v && this.enabled) playVoice(this.ctx, this.master, v, this.ctx.currentTime + 0.05);
  }

  async _keepAwake() {
    try {
      if (navigator.wakeLock && !this.wakeLock) {
        this.wakeLock = await navigator.wakeLock.request('screen');
        this.wakeLock.addEventListener('release', () => { this.wakeLock = null; });
      }
    } catch { /* not allowed here (no gesture, battery saver): the screen may sleep */ }
  }

  /** The output's latency in seconds: as the browser reports it, plus the calibration. */
  latency() {
    const c = this.ctx;
    if (!c) return 0;
    const reported = Number.isFinite(c.outputLatency) && c.outputLatency > 0 ? c.outputLatency : (c.baseLatency || 0);
    return reported + this.calibrationMs / 1000;
  }

  /** Ask for a calibration chirp (hold the phone by the performer's laptop). False when sound is off. */
  calibrate() {
    if (!this.enabled) return false;
    return this.client.sendFrame({ type: 'chirp' });
  }

  /** Our chirp: played at its time like a cue, and remembered until its calibration comes. */
  _chirp(msg) {
    const est = this.client.sync.estimate();
    const entry = { id: msg.id, at: msg.at, localMs: null, ctxTime: null, state: '' };
    if (msg.participant !== this.client.welcome?.participant) entry.state = 'not ours';
    else if (!this.enabled) entry.state = 'sound off';
    else if (!est) entry.state = 'unsynced';
    else {
      entry.localMs = localTime(est, msg.at);
      const now = this.ctx.currentTime;
      const t = now + (entry.localMs - performance.now()) / 1000 - this.latency();
      entry.ctxTime = t;
      entry.latencyMs = this.latency() * 1000;
      if (t < now) entry.state = 'late';
      else {
        playChirp(this.ctx, this.master, t);
        entry.state = 'scheduled';
        this.chirps.set(msg.id, entry);
        if (this.chirps.size > 8) this.chirps.delete(this.chirps.keys().next().value);
      }
    }
    globalThis.tuttiChirps.push(entry);
    if (globalThis.tuttiChirps.length > LOG_MAX) globalThis.tuttiChirps.shift();
  }

  /** A performer timed our chirp: heard `offset_ms` late, so we start that much earlier. */
  _calibration(msg) {
    const entry = this.chirps.get(msg.id);
    if (!entry || !Number.isFinite(msg.offset_ms)) return;
    this.chirps.delete(msg.id);
    const ms = Math.max(-MAX_CALIBRATION_MS, Math.min(MAX_CALIBRATION_MS, this.calibrationMs + msg.offset_ms));
    this.calibrationMs = ms;
    globalThis.tuttiCalibration = ms;
    try { localStorage.setItem(CALIBRATION_KEY, String(ms)); } catch { /* no storage: this visit only */ }
    entry.state = 'calibrated';
    entry.offsetMs = msg.offset_ms;
    this.onCalibration?.(ms, entry);
  }

  _cue(msg) {
    const received = performance.now();
    const voice = this.voices.get(msg.voice);
    const est = this.client.sync.estimate();
    const entry = { id: msg.id, voice: msg.voice, at: msg.at, received, localMs: null, ctxTime: null, state: '' };
    const where = placement(msg, { zone: this.client.zone, ...this.place }, this.hall);
    entry.gain = where.gain;
    entry.delayMs = where.delayMs;
    if (!voice) entry.state = 'unknown';
    else if (!where.play) entry.state = where.why;
    else if (!this.enabled) entry.state = 'sound off';
    else if (!est) entry.state = 'unsynced';
    else {
      entry.localMs = localTime(est, msg.at + where.delayMs);
      const now = this.ctx.currentTime;
      const t = now + (entry.localMs - performance.now()) / 1000 - this.latency();
      entry.ctxTime = t;
      if (t < now) {
        entry.state = 'late';
        this.client.cuesLate += 1;
      } else {
        playVoice(this.ctx, this.master, voice, t, where.gain);
        entry.state = 'scheduled';
      }
    }
    this.log.push(entry);
    if (this.log.length > LOG_MAX) this.log.shift();
    return entry;
  }
}
