// audience.js — the audience page (`/`): one slider per continuous parameter, vote buttons per
// discrete one, each showing the participant's own value (amber thumb / pressed button) and the
// collective value (blue fill and marker / "crowd pick" badge). Joins `?show=` (else the default
// show) with `?zone=` and `?seat=`; own values survive a reload in sessionStorage.
//
// Test hooks:
//   input[type=range][data-param="NAME"]       the slider of a continuous parameter
//   [data-collective="NAME"]                   collective value: value.toFixed(digits after the
//                                              step's decimal point; 2 without a step), no unit;
//                                              for a vote, the winning choice's name
//   button[data-param="NAME"][data-choice="C"] a vote button (aria-pressed = own vote,
//                                              class "leading" = the crowd's pick)
//   #conn          connection state text: connecting | live | reconnecting | offline
//   #title #banner #participants #toast

import { LiveClient } from './live.js';
import { PhoneAudio } from './phone-audio.js';
import { startAudienceChat } from './audience-chat.js';
import { h, setText, fmt, position, queryParam, scheduler, toaster, showConn, describeError } from './ui.js';

const $ = (id) => document.getElementById(id);
const show = queryParam('show');
const client = new LiveClient({ show, role: 'audience', zone: queryParam('zone'), seat: queryParam('seat') });
const toast = toaster($('toast'));
const phone = new PhoneAudio(client);
window.tuttiSync = () => client.sync.estimate(); // the clock estimate, for tests and diagnostics
startAudienceChat(client, show); // the chat tab, on this same connection
const views = new Map(); // param name → view (see buildSlider / buildVote)
let signature = '';
let status = null; // show status: scheduled | live | paused | ended
let bypass = false;
let conn = 'connecting';
let offlineReason = null;
let latest = null;

// ---- own values, kept per show across reloads ----
const OWN_KEY = `tutti.own.${show || ''}`;
let own = {};
try { own = JSON.parse(sessionStorage.getItem(OWN_KEY) || '{}') || {}; } catch { own = {}; }
function saveOwn() {
  try { sessionStorage.setItem(OWN_KEY, JSON.stringify(own)); } catch { /* private mode: fine */ }
}

// ---- building the controls from the welcome's parameters ----
function buildSlider(p, i) {
  const id = `p${i}`;
  const unit = p.unit ? ` ${p.unit}` : '';
  const mine = typeof own[p.name] === 'number' ? own[p.name] : null;
  const input = h('input', {
    type: 'range', id, 'data-param': p.name, min: p.min, max: p.max, step: p.step ?? 'any',
    'aria-describedby': `${id}-crowd ${id}-own`,
  });
  input.value = String(mine ?? p.default);
  input.setAttribute('aria-valuetext', `${fmt(Number(input.value), p.step)}${unit}`);
  const collective = h('span', { 'data-collective': p.name }, fmt(p.default, p.step));
  const ownOut = h('span', { class: 'own-value' }, mine == null ? 'not set yet' : fmt(mine, p.step) + unit);
  const wrap = h('div', { class: mine == null ? 'slider untouched' : 'slider' },
    h('div', { class: 'rail', 'aria-hidden': 'true' }, h('div', { class: 'fill' }), h('div', { class: 'marker' })),
    input);
  const onMove = (ev) => {
    const v = Number(input.value);
    if (!Number.isFinite(v) || (ev.type === 'change' && own[p.name] === v)) return;
    own[p.name] = v;
    saveOwn();
    wrap.classList.remove('untouched');
    const text = fmt(v, p.step) + unit;
    setText(ownOut, text);
    input.setAttribute('aria-valuetext', text);
    client.setInput(p.name, v);
  };
  input.addEventListener('input', onMove);
  input.addEventListener('change', onMove);
  const el = h('section', { class: 'param', 'data-kind': 'continuous' },
    h('div', { class: 'param-head' },
      h('h2', {}, h('label', { for: id }, p.label || p.name)),
      h('span', { id: `${id}-crowd` }, h('span', { class: 'muted' }, 'Crowd: '),
        h('span', { class: 'crowd-val' }, collective, unit))),
    wrap,
    h('div', { class: 'ends', 'aria-hidden': 'true' }, h('span', {}, fmt(p.min, p.step) + unit), h('span', {}, fmt(p.max, p.step) + unit)),
    h('p', { class: 'own', id: `${id}-own` }, 'You: ', ownOut));
  return {
    el, controls: [input],
    resend: () => { if (typeof own[p.name] === 'number') client.setInput(p.name, own[p.name]); },
    render(st) {
      setText(collective, fmt(st.value, p.step));
      wrap.style.setProperty('--c', `${position(st.value, p.min, p.max).toFixed(2)}%`);
    },
  };
}

function buildVote(p, i) {
  const id = `p${i}`;
  const choices = p.choices || [];
  const collective = h('span', { 'data-collective': p.name }, choices[p.default] ?? '–');
  const buttons = choices.map((c) => h('button', {
    type: 'button', class: 'btn choice', 'data-param': p.name, 'data-choice': c,
    'aria-pressed': String(own[p.name] === c),
    onclick: () => {
      own[p.name] = c;
      saveOwn();
      for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.choice === c));
      client.vote(p.name, c);
    },
  }, h('span', {}, c), h('span', { class: 'lead' }, 'crowd pick')));
  const el = h('section', { class: 'param', 'data-kind': 'discrete' },
    h('div', { class: 'param-head' },
      h('h2', { id: `${id}-label` }, p.label || p.name),
      h('span', {}, h('span', { class: 'muted' }, 'Crowd: '), h('span', { class: 'crowd-val' }, collective))),
    h('div', { class: 'choices', role: 'group', 'aria-labelledby': `${id}-label` }, buttons));
  return {
    el, controls: buttons,
    resend: () => { if (typeof own[p.name] === 'string') client.vote(p.name, own[p.name]); },
    render(st) {
      const choice = st.choice ?? choices[Math.round(st.value)] ?? '–';
      setText(collective, choice);
      for (const b of buttons) b.classList.toggle('leading', b.dataset.choice === choice);
    },
  };
}

function build(params) {
  const sig = JSON.stringify(params);
  if (sig === signature) return;
  signature = sig;
  views.clear();
  params.forEach((p, i) => views.set(p.name, p.kind === 'discrete' ? buildVote(p, i) : buildSlider(p, i)));
  $('params').replaceChildren(...[...views.values()].map((v) => v.el));
}

// ---- state, banner and enabled controls ----
function banner() {
  let text = '';
  let kind = 'info';
  if (conn === 'offline' && offlineReason) [text, kind] = [describeError(offlineReason, true), 'offline'];
  else if (conn === 'offline') [text, kind] = ['You are offline. Waiting for the network…', 'offline'];
  else if (conn === 'reconnecting') text = 'Connection lost. Reconnecting…';
  else if (status === 'scheduled') text = 'The show has not started yet. Stay tuned!';
  else if (status === 'paused') text = 'The show is paused. Hold tight.';
  else if (status === 'ended') [text, kind] = ['The show has ended. Thank you for playing!', 'ended'];
  else if (bypass) [text, kind] = ['The performers have taken the controls for a moment.', 'bypass'];
  const el = $('banner');
  el.dataset.kind = kind;
  setText(el, text);
  const open = status === 'live' && !(conn === 'offline' && offlineReason);
  for (const v of views.values()) for (const c of v.controls) c.disabled = !open;
}

const draw = scheduler(() => {
  if (!latest) return;
  for (const [name, view] of views) {
    const st = latest.params?.[name];
    if (st) view.render(st);
  }
  setText($('participants'), String(latest.participants ?? 0));
});

// The phone as an instrument: only when the piece gives phones voices; sound needs a tap.
function soundState(text) { setText($('sound-state'), text); }
$('sound-on').addEventListener('click', async () => {
  const on = await phone.enable().catch(() => false);
  $('sound-on').hidden = on;
  $('sound-mute').hidden = !on;
  $('sound-test').hidden = !on;
  $('sound-calibrate').hidden = !on;
  soundState(on ? 'sound on' : 'sound is blocked by the browser');
});
$('sound-mute').addEventListener('click', () => {
  const muted = !phone.muted;
  phone.setMuted(muted);
  $('sound-mute').setAttribute('aria-pressed', String(muted));
  setText($('sound-mute'), muted ? 'Unmute' : 'Mute');
  soundState(muted ? 'muted' : 'sound on');
});
$('sound-test').addEventListener('click', () => phone.test());
// Acoustic calibration: a chirp the performer's laptop times (hold the phone next to it).
$('sound-calibrate').addEventListener('click', () => {
  soundState(phone.calibrate() ? 'calibrating: hold the phone by the performer\'s laptop' : 'calibration needs sound on and a connection');
});
phone.onCalibration = (ms, entry) => {
  soundState(`calibrated: heard ${entry.offsetMs >= 0 ? '+' : ''}${entry.offsetMs.toFixed(1)} ms, correcting ${ms.toFixed(1)} ms`);
};

// Check-in: the phone's place on a plan of the hall (metres; x across, y from the stage),
// kept for the show in sessionStorage; `?x=&y=` sets it too.
const PLACE_KEY = `tutti.place.${show || ''}`;
const SVG = 'http://www.w3.org/2000/svg';
function showPlace() {
  const { x, y } = phone.place;
  const dot = $('plan').querySelector('circle');
  if (Number.isFinite(x) && Number.isFinite(y)) {
    dot?.setAttribute('cx', String(x));
    dot?.setAttribute('cy', String(y));
    dot?.removeAttribute('visibility');
    setText($('place-text'), `place: ${x.toFixed(1)} m across, ${y.toFixed(1)} m from the stage`);
  }
}
function setPlace(x, y, save = true) {
  const [w, d] = phone.hall;
  phone.place = { x: Math.min(Math.max(x, 0), w), y: Math.min(Math.max(y, 0), d) };
  if (save) { try { sessionStorage.setItem(PLACE_KEY, JSON.stringify(phone.place)); } catch { /* no storage */ } }
  showPlace();
}
function buildPlan(hall) {
  $('place').hidden = !hall;
  if (!hall) return;
  const [w, d] = hall;
  const plan = $('plan');
  plan.setAttribute('viewBox', `0 0 ${w} ${d}`);
  const stage = document.createElementNS(SVG, 'rect');
  Object.entries({ x: 0, y: 0, width: w, height: Math.min(2, d / 10), class: 'stage' }).forEach(([k, v]) => stage.setAttribute(k, String(v)));
  const floor = document.createElementNS(SVG, 'rect');
  Object.entries({ x: 0, y: 0, width: w, height: d, class: 'floor' }).forEach(([k, v]) => floor.setAttribute(k, String(v)));
  const dot = document.createElementNS(SVG, 'circle');
  Object.entries({ r: Math.max(w, d) / 40, class: 'me', visibility: 'hidden' }).forEach(([k, v]) => dot.setAttribute(k, String(v)));
  plan.replaceChildren(floor, stage, dot);
  const qx = Number.parseFloat(queryParam('x'));
  const qy = Number.parseFloat(queryParam('y'));
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(PLACE_KEY) || 'null'); } catch { /* none */ }
  if (Number.isFinite(qx) && Number.isFinite(qy)) setPlace(qx, qy);
  else if (saved && Number.isFinite(saved.x) && Number.isFinite(saved.y)) setPlace(saved.x, saved.y, false);
}
$('plan').addEventListener('click', (ev) => {
  // Screen to plan coordinates (metres) through the SVG's own transform (viewBox, scaling).
  const plan = $('plan');
  const m = plan.getScreenCTM();
  if (!m) return;
  const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.inverse());
  setPlace(p.x, p.y);
});

client
  .on('cue', () => {
    const last = phone.log[phone.log.length - 1];
    if (last?.state === 'late') soundState('a cue arrived too late and was skipped');
  })
  .on('conn', ({ state, reason }) => {
    conn = state;
    if (reason) offlineReason = reason;
    if (state === 'live') offlineReason = null;
    showConn($('conn'), state);
    banner();
  })
  .on('welcome', (w) => {
    const title = w.show?.title || 'Tutti';
    setText($('title'), title);
    document.title = `${title} · Tutti`;
    build(w.params || []);
    $('sound').hidden = !(w.phone?.voices?.length || w.phone?.drones?.length);
    buildPlan(w.phone?.voices?.length ? w.phone.hall : null);
    status = w.show?.status ?? status;
    banner();
    // A new slot (the old one expired) has none of our inputs: send them again.
    if (!w.resumed && w.show?.status === 'live') for (const v of views.values()) v.resend();
  })
  .on('state', (s) => {
    latest = s;
    if (s.status !== status || s.bypass !== bypass) {
      status = s.status;
      bypass = !!s.bypass;
      banner();
    }
    draw();
  })
  .on('sync', (e) => {
    // Whole milliseconds are what a listener can act on; "±0" would overstate it.
    const ms = Math.max(1, Math.ceil(e.errorMs));
    const el = $('sync');
    el.dataset.state = 'synced';
    el.dataset.errorMs = String(e.errorMs);
    setText(el, `clock: synced ±${ms} ms`);
  })
  .on('conn', ({ state }) => {
    if (state !== 'live') {
      $('sync').dataset.state = 'waiting';
      setText($('sync'), 'clock: waiting');
    }
  })
  .on('error', (e) => {
    // Expected while the show is not live (the banner already says so).
    if (e.code === 'show_not_live' && status !== 'live') return;
    toast(describeError(e, true));
  })
  .start();
