// live.js — Tutti's WebSocket client for /live/v1 (docs/protocol.md), shared by every page.
//
// It joins a show, stays connected (reconnects with exponential backoff and jitter, 0.5 s → 10 s),
// rejoins the same participant slot with the `resume` token kept in sessionStorage per role and
// show, throttles inputs and votes to the welcome's `input_rate` (the latest value per parameter
// wins when the throttle opens: never a queue), and numbers outgoing frames with `seq`.
// It never touches the DOM and never sends anything before `join`.
//
// Events (client.on(type, fn) calls fn(detail)):
//   conn     {state: 'connecting'|'live'|'reconnecting'|'offline', reason: error frame or null}
//   welcome  the welcome frame plus `resumed` (true when the server gave back the same slot)
//   state    a state frame          stats  a stats frame
//   ack      an ack frame           error  an error frame received after joining
//   command  {seq, label, status: 'pending'|'ok'|'error'|'lost', error}  (performer commands)
//   sync     the clock-sync estimate (sync.js), after each exchange: {offsetMs, errorMs, boundMs, …}
//   cue      a cue frame (phone-audio.js plays it)
//   chat     any `chat_*` frame from the server (chat.js reads them: the chat shares this socket)
//
// With `sync` (on by default for the audience) it keeps the page's clock in step with the show
// clock: `sync` exchanges at the estimator's pace (ten a second after joining, then one every
// two seconds), a `sync_report` of the error every five seconds, the window started afresh on
// every new connection and when the page comes back from the background. client.showNow() is
// the show clock now (null before the first exchange).

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
const PING_AFTER_MS = 5_000; // silent this long → ping
const DEAD_AFTER_MS = 15_000; // silent this long (or stuck opening) → drop and reconnect
// Join errors that retrying cannot fix: stop and report `offline` with the reason.
const FATAL = new Set(['unknown_show', 'show_ended', 'unauthorized', 'forbidden']);
const SYNC_REPORT_EVERY_MS = 5_000;

function defaultUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/live/v1`;
}

function storage() {
  try { return window.sessionStorage; } catch { return null; }
}

import { SyncEstimator, showTime } from './sync.js';

export class LiveClient {
  /** opts: {show, role = 'audience', token, zone, seat, url} — absent show = the default show. */
  constructor(opts = {}) {
    this.show = opts.show || null;
    this.role = opts.role || 'audience';
    this.token = opts.token || null;
    this.zone = opts.zone || null;
    this.seat = opts.seat || null;
    this.url = opts.url || defaultUrl();
    this.conn = 'offline';
    this.welcome = null; // the last welcome frame
    this.ws = null;
    this.joined = false;
    this.stopped = true;
    this.everLive = false;
    this.attempt = 0;
    this.seq = 0;
    this.lastRx = 0;
    this.openedAt = 0;
    this.retryTimer = 0;
    this.watchdog = 0;
    this.baseInterval = 100; // ms between inputs, from input_rate
    this.interval = 100; // the same, widened for a while after a rate_limited error
    this.slowUntil = 0;
    this.pending = new Map(); // param → frame (latest wins)
    this.recent = new Map(); // param → {frame, at}: sent inputs, resent if rate-limited
    this.pumpTimer = 0;
    this.lastSend = -Infinity;
    this.commands = new Map(); // seq → label of performer commands awaiting ack
    this.listeners = new Map();
    this.sentResume = null;
    this.fatal = null; // the code of a refused join, until start() again
    this.syncOn = opts.sync ?? this.role === 'audience';
    this.syncReports = opts.syncReports ?? this.role === 'audience'; // a phone's, for the performers' stats
    this.sync = new SyncEstimator();
    this.syncTimer = 0;
    this.syncSent = new Map(); // id → t0 of exchanges awaiting their answer
    this.syncId = 0;
    this.lastReport = -Infinity;
    this.cuesLate = 0; // cues received too late to play on this connection (phone-audio.js counts)
    this.reportedLate = 0;
    this.soundOn = false; // phone-audio.js sets it: reported so performers see phones ready
    this.reportedSound = false;
    this.onWake = () => {
      if (document.visibilityState === 'visible') this.sync.clear(); // the clock may have paused
      if (!this.stopped && !this.ws) this._connect();
    };
    this.onOffline = () => { if (!this.joined && !this.stopped) this._setConn('offline'); };
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return this;
  }

  _emit(type, detail) {
    for (const fn of this.listeners.get(type) || []) {
      try { fn(detail); } catch (e) { console.error(`tutti: ${type} handler failed`, e); }
    }
  }

  start() {
    if (!this.stopped) return this;
    this.stopped = false;
    this.fatal = null;
    window.addEventListener('online', this.onWake);
    window.addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onWake);
    this.watchdog = setInterval(() => this._check(), 2_500);
    this._connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.syncTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.pumpTimer);
    clearInterval(this.watchdog);
    this.pumpTimer = 0;
    window.removeEventListener('online', this.onWake);
    window.removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onWake);
    if (this.ws) this._drop(this.ws);
    this._setConn('offline');
  }

  /** Move a slider: sent when the throttle opens, only the latest value per parameter. */
  setInput(param, value) {
    this.pending.set(param, { type: 'input', param, value });
    this._pump();
  }

  /** Vote for a choice: throttled like inputs. */
  vote(param, choice) {
    this.pending.set(param, { type: 'vote', param, choice });
    this._pump();
  }

  /** Send a performer command now (override, release, session, reset, bypass). Returns its seq. */
  command(frame, label) {
    const seq = ++this.seq;
    if (!this._send({ ...frame, seq })) {
      this._emit('command', { seq, label, status: 'lost', error: { code: 'offline', message: 'not connected' } });
      return 0;
    }
    this.commands.set(seq, label);
    this._emit('command', { seq, label, status: 'pending', error: null });
    return seq;
  }

  /** Send a frame of another module (chat.js) on this connection; false when not joined. */
  sendFrame(frame) { return this._send(frame); }

  /** The next `seq` for a frame sent through sendFrame (one numbering per connection). */
  nextSeq() { return ++this.seq; }

  // ---- connection ----

  _resumeKey() { return `tutti.resume.${this.role}.${this.show || ''}`; }

  _loadResume() {
    try { return JSON.parse(storage()?.getItem(this._resumeKey()) || 'null'); } catch { return null; }
  }

  _saveResume(value) {
    try {
      if (value) storage()?.setItem(this._resumeKey(), JSON.stringify(value));
      else storage()?.removeItem(this._resumeKey());
    } catch { /* storage unavailable: we just get a new slot after reconnecting */ }
  }

  _joinFrame() {
    const f = { type: 'join' };
    if (this.show) f.show = this.show;
    if (this.role !== 'audience') f.role = this.role;
    if (this.token) f.token = this.token;
    if (this.zone) f.zone = this.zone;
    if (this.seat) f.seat = this.seat;
    const r = this._loadResume();
    this.sentResume = r && typeof r.token === 'string' ? r : null;
    if (this.sentResume) f.resume = this.sentResume.token;
    return f;
  }

  _setConn(state, reason = null) {
    if (this.conn === state && !reason) return;
    this.conn = state;
    this._emit('conn', { state, reason });
  }

  _connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    if (this.stopped || this.ws) return;
    this._setConn(this.everLive || this.attempt > 0 ? 'reconnecting' : 'connecting');
    let ws;
    try { ws = new WebSocket(this.url); } catch { this._retry(); return; }
    this.ws = ws;
    this.joined = false;
    this.openedAt = performance.now();
    this.lastRx = this.openedAt;
    ws.onopen = () => ws.send(JSON.stringify(this._joinFrame()));
    ws.onmessage = (ev) => { if (this.ws === ws) this._receive(ev.data); };
    ws.onclose = () => { if (this.ws === ws) this._closed(); };
    ws.onerror = () => { /* a close event follows */ };
  }

  /** Forget a socket at once (a dead one may take long to close) and handle it as closed. */
  _drop(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(); } catch { /* already closed */ }
    if (this.ws === ws) this._closed();
  }

  _closed() {
    this.ws = null;
    this.joined = false;
    clearTimeout(this.syncTimer);
    this.syncTimer = 0;
    this.syncSent.clear();
    clearTimeout(this.pumpTimer);
    this.pumpTimer = 0;
    for (const [seq, label] of this.commands) {
      this._emit('command', { seq, label, status: 'lost', error: { code: 'disconnected', message: 'connection lost before the ack' } });
    }
    this.commands.clear();
    if (!this.stopped) this._retry();
  }

  _retry() {
    if (this.stopped || this.retryTimer) return;
    const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // jitter: half to full
    this.attempt += 1;
    this._setConn(navigator.onLine === false ? 'offline' : 'reconnecting');
    this.retryTimer = setTimeout(() => { this.retryTimer = 0; this._connect(); }, delay);
  }

  _check() {
    const ws = this.ws;
    if (!ws) return;
    const silent = performance.now() - this.lastRx;
    if (silent > DEAD_AFTER_MS) this._drop(ws);
    else if (this.joined && silent > PING_AFTER_MS) this._send({ type: 'ping', id: Date.now() % 1e9 });
  }

  _send(frame) {
    const ws = this.ws;
    if (!ws || !this.joined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  // ---- frames from the server ----

  _receive(text) {
    this.lastRx = performance.now();
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'welcome': return this._welcome(msg);
      case 'state': {
        // Client render cost: the time the page's state handlers take (DOM updates),
        // kept as a running summary on window.tuttiRenderStats for diagnostics and the
        // latency-budget measurement.
        const t0 = performance.now();
        this._emit('state', msg);
        const dt = performance.now() - t0;
        const r = (globalThis.tuttiRenderStats ??= { count: 0, total_ms: 0, max_ms: 0 });
        r.count += 1; r.total_ms += dt; if (dt > r.max_ms) r.max_ms = dt;
        return undefined;
      }
      case 'stats': return this._emit('stats', msg);
      case 'monitor': return this._emit('monitor', msg);
      case 'ack': return this._ack(msg);
      case 'error': return this._error(msg);
      case 'sync': return this._syncAnswer(msg, this.lastRx);
      case 'cue': return this._emit('cue', msg);
      case 'chirp': case 'calibration': return this._emit(msg.type, msg);
      default:
        if (typeof msg.type === 'string' && msg.type.startsWith('chat_')) return this._emit('chat', msg);
        return undefined; // pong and future frames
    }
  }

  _welcome(msg) {
    this.joined = true;
    this.fatal = null;
    this.everLive = true;
    this.attempt = 0;
    this.welcome = msg;
    const rate = Number(msg.input_rate) > 0 ? Number(msg.input_rate) : 10;
    this.baseInterval = Math.ceil(1000 / rate) + 1;
    this.interval = this.baseInterval;
    const resumed = !!this.sentResume && this.sentResume.participant === msg.participant;
    if (typeof msg.resume === 'string') this._saveResume({ token: msg.resume, participant: msg.participant });
    this._setConn('live');
    this._emit('welcome', { ...msg, resumed });
    this._pump();
    if (this.syncOn) {
      // A new connection may be to a restarted server, whose show clock began again.
      this.sync.clear();
      this.cuesLate = 0;
      this.reportedLate = 0;
      this.reportedSound = false;
      clearTimeout(this.syncTimer);
      this._syncSend();
    }
  }

  // ---- clock sync ----

  /** The show clock now, in milliseconds, or null before the first sync exchange. */
  showNow() {
    const e = this.sync.estimate();
    return e ? showTime(e, performance.now()) : null;
  }

  _syncSend() {
    this.syncTimer = 0;
    if (!this.joined) return;
    const id = ++this.syncId;
    const t0 = performance.now();
    if (!this._send({ type: 'sync', id, t0 })) return;
    this.syncSent.set(id, t0);
    // An answer that never comes (lost, or refused) must not stop the exchanges.
    for (const [old, at] of this.syncSent) if (t0 - at > 10_000) this.syncSent.delete(old);
    this.syncTimer = setTimeout(() => this._syncSend(), this.sync.nextExchangeInMs());
  }

  _syncAnswer(msg, t3) {
    const t0 = this.syncSent.get(msg.id);
    if (t0 === undefined) return;
    this.syncSent.delete(msg.id);
    if (this.sync.add({ t0, t1: msg.t1, t2: msg.t2, t3 })) return; // refused: not counted
    const e = this.sync.estimate();
    this._emit('sync', e);
    const changed = this.cuesLate !== this.reportedLate || this.soundOn !== this.reportedSound;
    if (this.syncReports && (t3 - this.lastReport >= SYNC_REPORT_EVERY_MS || changed) && this.sync.length >= 8) {
      this.lastReport = t3;
      this.reportedLate = this.cuesLate;
      this.reportedSound = this.soundOn;
      this._send({
        type: 'sync_report',
        error_ms: Math.min(e.errorMs, 60_000),
        offset_ms: e.offsetMs,
        cues_late: this.cuesLate,
        sound_on: this.soundOn,
      });
    }
  }

  _ack(msg) {
    for (const [seq, label] of this.commands) {
      if (seq <= msg.seq) {
        this.commands.delete(seq);
        this._emit('command', { seq, label, status: 'ok', error: null });
      }
    }
    this._emit('ack', msg);
  }

  _error(msg) {
    if (!this.joined) {
      // The join was refused.
      if (FATAL.has(msg.code)) {
        this.fatal = msg.code;
        this._setConn('offline', msg);
        this.stopped = true; // no retry until start() again
        clearInterval(this.watchdog);
        if (this.ws) this._drop(this.ws);
        return;
      }
      if (msg.code === 'unknown_zone') this.zone = null;
      if (this.sentResume) this._saveResume(null); // maybe a stale token: join fresh next time
      this._emit('error', msg);
      if (this.ws) this._drop(this.ws);
      return;
    }
    if (msg.code === 'taken_over') {
      // Another tab or device resumed this slot: let it have it rather than take it back.
      this.fatal = msg.code;
      this.stopped = true;
      clearInterval(this.watchdog);
      this._setConn('offline', msg);
      this._emit('error', msg);
      return;
    }
    if (msg.code === 'rate_limited') this._slowDown();
    if (msg.seq != null && this.commands.has(msg.seq)) {
      const label = this.commands.get(msg.seq);
      this.commands.delete(msg.seq);
      this._emit('command', { seq: msg.seq, label, status: 'error', error: msg });
    }
    this._emit('error', msg);
  }

  /** The server dropped inputs: widen the throttle and resend the latest recent values. */
  _slowDown() {
    this.interval = Math.min(1000, this.interval * 2);
    this.slowUntil = performance.now() + 10_000;
    const since = performance.now() - 2000;
    for (const [param, { frame, at }] of this.recent) {
      if (at >= since && !this.pending.has(param)) {
        const { seq, ...again } = frame;
        this.pending.set(param, again);
      }
    }
    this._pump();
  }

  // ---- throttle ----

  _pump() {
    if (!this.joined || this.pumpTimer || this.pending.size === 0) return;
    if (this.interval !== this.baseInterval && performance.now() > this.slowUntil) this.interval = this.baseInterval;
    const wait = this.lastSend + this.interval - performance.now();
    if (wait > 0) {
      this.pumpTimer = setTimeout(() => { this.pumpTimer = 0; this._pump(); }, wait);
      return;
    }
    const [param, frame] = this.pending.entries().next().value;
    const sent = { ...frame, seq: this.seq + 1 };
    if (!this._send(sent)) return; // not open: stays pending until the next welcome
    this.seq += 1;
    this.pending.delete(param);
    this.lastSend = performance.now();
    this.recent.set(param, { frame: sent, at: this.lastSend });
    if (this.pending.size) this._pump();
  }
}
