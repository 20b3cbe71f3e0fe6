// perform.js — the performer dashboard (`/perform`). Joins as `role: performer` with the token
// from the URL fragment `#token=...` (then removed from the address bar) or the form, kept in
// sessionStorage. Per parameter: live value, raw aggregate, participation, agreement, histogram or
// vote shares, active overrides with release buttons, and an override form. Global: session
// start/pause/resume/end, reset, bypass; the `stats` frame; every command's ack or error; the
// Sound panel (backend, levels, spectrum, Listen: web/audio/sound-panel.js) fed by `monitor`.
//
// Test hooks:
//   #conn                 connection state text: connecting | live | reconnecting | offline
//   [data-value="NAME"]   live value: value.toFixed(digits after the step's decimal point; 2
//                         without a step), no unit; for a vote, the winning choice's name
//   article[data-param="NAME"]           a parameter's card; inside it:
//     form.ovr-form select[name=mode], input[name=value|amount|target|factor|lo|hi|expires_in]
//     ul.ovr-list li[data-mode=MODE] button  (release one)   button.release-all
//   #token-form #token-input   #start #pause #resume #end #reset (#end/#reset: click twice)
//   #bypass (aria-pressed)  #status #participants #stats #log (li[data-status=ok|error|lost|pending])
//   #sound[data-backend]  #sound-engine (hidden unless the engine is the sound)  #sound-error
//   #meter-l #meter-r [data-rms-dbfs] (latest RMS, 0.1 dB)  #spectrum (canvas)  #sound-summary
//   #listen (aria-pressed)  #listen-state[data-state=off|connecting|buffering|playing|closed|error]
//   #memory: the Memory panel (its own hooks in web/memory-panel.js)
//   #calib-listen (aria-pressed)  #calib-state  #calib-log li[data-heard=true|false]: the
//   phones' calibration chirps heard by this computer's microphone (web/calibrate.js)

import { LiveClient } from './live.js';
import { soundPanel } from './audio/sound-panel.js';
import { Trajectories } from './trajectory.js';
import { memoryPanel } from './memory-panel.js';
import { ChirpEar } from './calibrate.js';
import {
  h, svg, setText, fmt, pct, position, decimals, queryParam, scheduler, toaster, showConn,
  describeError, shareBars,
} from './ui.js';

const $ = (id) => document.getElementById(id);
const show = queryParam('show');
const toast = toaster($('toast'));
const TOKEN_KEY = 'tutti.performer.token';
const cards = new Map(); // param name → card view
let signature = '';
let client = null;
let latest = null;
let status = null;
let bypass = false;
let currentToken = null;
const sound = soundPanel($, () => currentToken);
const trajectories = new Trajectories($('trajectories'));
let showCode = null;
// ---- memory: suggestions from past shows (web/memory-panel.js) ----
const memory = memoryPanel($('memory'), () => currentToken, () => showCode);
const calibration = new ChirpEar();

// ---- report ----
// Opens the show's report (the same page `tutti report` writes) in a new tab through a
// short-lived link, since this page holds a token rather than a cookie session.
$('report').addEventListener('click', async () => {
  if (!showCode || !currentToken) return;
  const tab = window.open('', '_blank');
  try {
    const r = await fetch(`/api/v1/reports/${encodeURIComponent(showCode)}/link`, {
      method: 'POST', headers: { Authorization: `Bearer ${currentToken}` },
    });
    const body = await r.json();
    if (!r.ok) throw body;
    if (tab) { tab.opener = null; tab.location = body.url; } else location.assign(body.url);
  } catch (e) {
    tab?.close();
    toast(`Report: ${describeError(e?.code ? e : { code: 'network' })}`);
  }
});

// ---- token ----
function storedToken() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    history.replaceState(null, '', location.pathname + location.search);
    saveToken(fromHash);
    return fromHash;
  }
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}
function saveToken(t) {
  try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* ok */ }
}

function askToken(message) {
  sound.stopListening();
  $('dash').hidden = true;
  $('token-form').hidden = false;
  setText($('token-error'), message || '');
  $('token-input').focus();
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const t = $('token-input').value.trim();
  if (!t) return;
  $('token-input').value = '';
  saveToken(t);
  connect(t);
});

// ---- command log ----
const logItems = new Map(); // seq → li
function logCommand({ seq, label, status: st, error }) {
  let li = logItems.get(seq);
  if (!li) {
    li = h('li');
    logItems.set(seq, li);
    $('log').prepend(li);
    while ($('log').children.length > 12) {
      const last = $('log').lastElementChild;
      logItems.delete(Number(last.dataset.seq));
      last.remove();
    }
  }
  li.dataset.seq = String(seq);
  li.dataset.status = st;
  const time = new Date().toLocaleTimeString();
  const what = st === 'ok' ? 'ok' : st === 'pending' ? 'sent…' : describeError(error || { code: st });
  li.textContent = `${time} · ${label} · ${what}`;
  if (st === 'error' || st === 'lost') toast(`${label}: ${describeError(error || { code: st })}`);
}

function send(frame, label) {
  if (client) client.command(frame, label);
}

// ---- session controls ----
function armed(btn, label, confirmLabel, action) {
  let timer = 0;
  btn.addEventListener('click', () => {
    clearTimeout(timer);
    if (btn.dataset.armed) {
      delete btn.dataset.armed;
      btn.textContent = label;
      action();
      return;
    }
    btn.dataset.armed = '1';
    btn.textContent = confirmLabel;
    timer = setTimeout(() => { delete btn.dataset.armed; btn.textContent = label; }, 4000);
  });
}
for (const action of ['start', 'pause', 'resume']) {
  $(action).addEventListener('click', () => send({ type: 'session', action }, `session ${action}`));
}
armed($('end'), 'End show…', 'Really end? Click again', () => send({ type: 'session', action: 'end' }, 'session end'));
armed($('reset'), 'Reset…', 'Really reset? Click again', () => send({ type: 'reset' }, 'reset all inputs and overrides'));
$('bypass').addEventListener('click', () => send({ type: 'bypass', on: !bypass }, `bypass ${bypass ? 'off' : 'on'}`));

function updateControls() {
  const live = client?.conn === 'live';
  const allowed = { start: status === 'scheduled', pause: status === 'live', resume: status === 'paused', end: status === 'live' || status === 'paused' };
  for (const [id, ok] of Object.entries(allowed)) $(id).disabled = !live || !ok;
  $('reset').disabled = !live;
  $('bypass').disabled = !live;
  $('bypass').setAttribute('aria-pressed', String(bypass));
  setText($('status'), status || '–');
  setText($('bypass-state'), bypass ? 'ON' : 'off');
}

// ---- parameter cards ----
const FIELDS = {
  lock: [['value', 'Value']],
  bias: [['amount', 'Amount']],
  blend: [['target', 'Target'], ['factor', 'Factor 0–1']],
  clamp: [['lo', 'Low'], ['hi', 'High']],
  freeze: [],
};

function describeOverride(p, o) {
  const v = (x) => (p.kind === 'discrete' ? (p.choices?.[Math.round(x)] ?? String(x)) : fmt(x, p.step));
  switch (o.mode) {
    case 'lock': return `lock at ${v(o.a)}`;
    case 'bias': return `bias ${o.a >= 0 ? '+' : ''}${fmt(o.a, p.step)}`;
    case 'blend': return `blend → ${v(o.a)} × ${fmt(o.b, 0.01)}`;
    case 'clamp': return `clamp ${v(o.a)} … ${v(o.b)}`;
    case 'freeze': return o.a != null ? `freeze at ${v(o.a)}` : 'freeze';
    default: return String(o.mode);
  }
}

function overrideForm(p, card) {
  const discrete = p.kind === 'discrete';
  const modes = discrete ? ['lock', 'freeze'] : ['clamp', 'bias', 'blend', 'lock', 'freeze'];
  const select = h('select', { name: 'mode' }, modes.map((m) => h('option', { value: m }, m)));
  select.value = 'lock';
  const inputs = {};
  const labels = [];
  const prefill = { value: p.default, amount: 0, target: p.default, factor: 0.5, lo: p.min, hi: p.max };
  for (const [mode, fields] of Object.entries(FIELDS)) {
    if (!modes.includes(mode)) continue;
    for (const [name, text] of fields) {
      let input;
      if (discrete && name === 'value') {
        input = h('select', { name }, (p.choices || []).map((c, i) => h('option', { value: i }, c)));
        input.value = String(p.default ?? 0);
      } else {
        input = h('input', { name, type: 'number', step: 'any', inputmode: 'decimal', min: name === 'factor' ? 0 : null, max: name === 'factor' ? 1 : null });
        input.value = prefill[name] != null ? String(prefill[name]) : '';
      }
      inputs[name] = input;
      const label = h('label', { 'data-mode': mode }, text, input);
      labels.push(label);
    }
  }
  const expires = h('input', { name: 'expires_in', type: 'number', min: 0, step: 'any', inputmode: 'decimal', placeholder: 'never' });
  const showFields = () => { for (const l of labels) l.hidden = l.dataset.mode !== select.value; };
  select.addEventListener('change', showFields);
  showFields();
  const form = h('form', { class: 'ovr-form', 'aria-label': `Override ${p.label || p.name}` },
    h('label', {}, 'Mode', select), labels, h('label', {}, 'Expires (s)', expires),
    h('button', { class: 'btn small', type: 'submit' }, 'Apply'),
    h('button', {
      class: 'btn small release-all', type: 'button',
      onclick: () => send({ type: 'release', param: p.name }, `${p.name}: release all`),
    }, 'Release all'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const mode = select.value;
    const frame = { type: 'override', param: p.name, mode };
    for (const [name] of FIELDS[mode]) {
      const raw = inputs[name].value.trim();
      const v = Number(raw);
      if (raw === '' || !Number.isFinite(v)) return toast(`${p.name}: ${name} needs a number`);
      frame[name] = v;
    }
    if (mode === 'clamp' && frame.lo > frame.hi) return toast(`${p.name}: low must not be above high`);
    if (mode === 'blend' && !(frame.factor >= 0 && frame.factor <= 1)) return toast(`${p.name}: factor must be within 0..1`);
    const exp = expires.value.trim();
    if (exp !== '') {
      const secs = Number(exp);
      if (!(secs > 0) || !Number.isFinite(secs)) return toast(`${p.name}: expiry must be a positive number of seconds`);
      frame.expires_in = secs;
    }
    const shown = { mode, by: 'me', a: frame.value ?? frame.amount ?? frame.target ?? frame.lo, b: frame.factor ?? frame.hi };
    send(frame, `${p.name}: ${describeOverride(p, shown)}${frame.expires_in ? ` for ${frame.expires_in} s` : ''}`);
    return undefined;
  });
  card.form = form;
  return form;
}

function histogram() {
  const root = svg('svg', { class: 'hist', viewBox: '0 0 100 40', preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Distribution of inputs' });
  const bars = svg('g');
  const raw = svg('line', { class: 'raw', y1: 0, y2: 40, 'vector-effect': 'non-scaling-stroke' });
  const value = svg('line', { class: 'v', y1: 0, y2: 40, 'vector-effect': 'non-scaling-stroke' });
  root.append(bars, raw, value);
  let rects = [];
  return {
    el: root,
    render(bins, p, st) {
      const list = Array.isArray(bins) ? bins : [];
      if (rects.length !== list.length) {
        rects = list.map(() => svg('rect'));
        bars.replaceChildren(...rects);
      }
      const top = Math.max(...list.map(Number), 1e-9);
      const w = 100 / Math.max(1, list.length);
      list.forEach((b, i) => {
        const hgt = (Math.max(0, Number(b) || 0) / top) * 38;
        const r = rects[i];
        r.setAttribute('x', (i * w + w * 0.06).toFixed(2));
        r.setAttribute('width', (w * 0.88).toFixed(2));
        r.setAttribute('y', (40 - hgt).toFixed(2));
        r.setAttribute('height', hgt.toFixed(2));
      });
      for (const [line, v] of [[value, st.value], [raw, st.raw]]) {
        const x = position(v, p.min, p.max).toFixed(2);
        line.setAttribute('x1', x);
        line.setAttribute('x2', x);
        line.style.display = typeof v === 'number' ? '' : 'none';
      }
    },
  };
}

function metric(label) {
  const dd = h('dd', {}, '–');
  return { el: h('div', {}, h('dt', {}, label), dd), dd };
}

function buildCard(p) {
  const discrete = p.kind === 'discrete';
  const card = {};
  const valueEl = h('span', { 'data-value': p.name }, '–');
  const m = {
    raw: discrete ? null : metric('raw'),
    participants: metric('people'),
    participation: metric('participation'),
    agreement: metric('agreement'),
    dispersion: discrete ? null : metric('dispersion'),
  };
  const dist = discrete ? shareBars(p.name, p.choices || []) : histogram();
  const list = h('ul', { class: 'ovr-list', 'aria-label': 'Active overrides' });
  let listKey = null;
  let expiryEls = [];
  const range = discrete ? (p.choices || []).join(' / ') : `${fmt(p.min, p.step)} … ${fmt(p.max, p.step)}${p.unit ? ` ${p.unit}` : ''}`;
  card.el = h('article', { class: 'card', 'data-param': p.name, 'aria-label': p.label || p.name },
    h('div', { class: 'card-head' }, h('h2', {}, p.label || p.name), h('span', { class: 'muted mono' }, p.name)),
    h('div', { class: 'big' }, valueEl, p.unit ? h('span', { class: 'unit' }, ` ${p.unit}`) : null),
    h('p', { class: 'muted' }, range),
    h('dl', { class: 'metrics' }, Object.values(m).filter(Boolean).map((x) => x.el)),
    dist.el,
    list,
    overrideForm(p, card));

  const renderOverrides = (ovs) => {
    const key = JSON.stringify(ovs.map((o) => [o.mode, o.by, o.a, o.b]));
    if (key !== listKey) {
      listKey = key;
      expiryEls = [];
      const items = ovs.map((o) => {
        const exp = h('span', { class: 'muted num' });
        expiryEls.push(exp);
        return h('li', { 'data-mode': o.mode },
          h('span', {}, h('strong', {}, describeOverride(p, o)), ` · by ${o.by} `, exp),
          h('button', {
            class: 'btn small', type: 'button', 'aria-label': `Release ${o.mode} on ${p.label || p.name}`,
            onclick: () => send({ type: 'release', param: p.name, mode: o.mode }, `${p.name}: release ${o.mode}`),
          }, 'Release'));
      });
      list.replaceChildren(...(items.length ? items : [h('li', { class: 'none' }, 'No overrides: the crowd decides.')]));
    }
    ovs.forEach((o, i) => setText(expiryEls[i], typeof o.expires_in === 'number' ? `· ${Math.ceil(o.expires_in)} s left` : ''));
  };

  card.render = (st) => {
    setText(valueEl, discrete ? (st.choice ?? p.choices?.[Math.round(st.value)] ?? '–') : fmt(st.value, p.step));
    if (m.raw) setText(m.raw.dd, fmt(st.raw, p.step));
    setText(m.participants.dd, String(st.participants ?? 0));
    setText(m.participation.dd, pct(st.participation));
    setText(m.agreement.dd, pct(st.agreement));
    if (m.dispersion) setText(m.dispersion.dd, typeof st.dispersion === 'number' ? st.dispersion.toFixed(Math.max(2, decimals(p.step))) : '–');
    if (discrete) dist.render(st.choices, st.choice ?? p.choices?.[Math.round(st.value)]);
    else dist.render(st.histogram, p, st);
    renderOverrides(Array.isArray(st.overrides) ? st.overrides : []);
  };
  return card;
}

function build(params) {
  const sig = JSON.stringify(params);
  if (sig === signature) return;
  signature = sig;
  cards.clear();
  for (const p of params) cards.set(p.name, buildCard(p));
  $('cards').replaceChildren(...[...cards.values()].map((c) => c.el));
}

const draw = scheduler(() => {
  if (!latest) return;
  for (const [name, card] of cards) {
    const st = latest.params?.[name];
    if (st) card.render(st);
  }
  setText($('participants'), String(latest.participants ?? 0));
  setText($('tick'), `${latest.tick ?? '–'} @ ${latest.rate ?? '–'}/s`);
});

// ---- stats ----
function group(title, rows) {
  return h('div', {}, h('h3', {}, title), rows.map(([k, v]) => h('p', {}, h('span', { class: 'muted' }, `${k}: `), h('span', { class: 'num' }, v ?? '–'))));
}
function renderStats(s) {
  const n = (x, digits = 0) => (typeof x === 'number' ? x.toFixed(digits) : '–');
  const errors = Object.entries(s.errors || {}).filter(([, v]) => v > 0);
  $('stats').replaceChildren(
    group('Connections', Object.entries(s.connections || {}).map(([k, v]) => [k, n(v)])),
    group('Inputs', [['accepted', n(s.inputs?.accepted)], ['rejected', n(s.inputs?.rejected)]]),
    group('Errors', errors.length ? errors.map(([k, v]) => [k, n(v)]) : [['none', '0']]),
    group('Tick', [['rate', `${n(s.tick?.hz)} Hz`], ['last', `${n(s.tick?.last_ms, 2)} ms`], ['max', `${n(s.tick?.max_ms, 2)} ms`], ['state rate', `${n(s.state_rate)}/s`]]),
    group('OSC', Object.entries(s.osc || {}).map(([k, v]) => [k.replace(/_/g, ' '), n(v)])),
    group('Store', Object.entries(s.store || {}).map(([k, v]) => [k.replace(/_/g, ' '), n(v)])),
  );
}

// ---- phones: cues, sync quality, late cues ----
function buildCues(phone, zones) {
  const voices = phone?.voices || [];
  $('phones').hidden = voices.length === 0;
  // To whom: every phone, or one section (a zone of the seat map: call and response); with
  // the piece's hall, as a wave from the stage across the seats.
  const to = h('select', { id: 'cue-to', 'aria-label': 'Cue which phones' },
    h('option', { value: '' }, 'every phone'),
    ...(zones || []).map((z) => h('option', { value: z }, `section ${z}`)));
  to.hidden = !(zones || []).length;
  const hall = phone?.hall;
  const wave = h('input', { id: 'cue-wave', type: 'checkbox' });
  const waveLabel = h('label', { class: 'muted' }, wave, ' as a wave from the stage');
  waveLabel.hidden = !hall;
  const cue = (voice) => {
    const frame = { type: 'cue', voice };
    if (to.value) frame.zones = [to.value];
    if (hall && wave.checked) frame.sweep = { x: hall[0] / 2, y: 0, speed: 20 };
    const label = `cue ${voice}${to.value ? ` to ${to.value}` : ''}${frame.sweep ? ' (wave)' : ''}`;
    client.command(frame, label);
  };
  $('cues').replaceChildren(...voices.map((v) => {
    const b = h('button', { class: 'btn', type: 'button', 'data-voice': v.name }, `Cue ${v.name}`);
    b.addEventListener('click', () => cue(v.name));
    return b;
  }), to, waveLabel);
}
function renderPhones(s) {
  const n = (x) => (typeof x === 'number' ? String(x) : '–');
  const within = s.sync?.within_ms || {};
  $('phone-stats').replaceChildren(
    group('Clock sync', [['reporting', n(s.sync?.reporting)],
      ...Object.entries(within).map(([k, v]) => [k === 'more' ? 'worse than 20 ms' : `within ${k} ms`, n(v)])]),
    group('Cues', Object.entries(s.cues || {}).map(([k, v]) => [k.replace(/_/g, ' '), n(v)])),
  );
}

// ---- calibration: phones' chirps heard by this computer's microphone ----
$('calib-listen').addEventListener('click', async () => {
  if (calibration.listening) {
    calibration.stop();
  } else {
    try { await calibration.listen(); } catch (e) { setText($('calib-state'), `microphone: ${e.message || e}`); return; }
  }
  $('calib-listen').setAttribute('aria-pressed', String(calibration.listening));
  setText($('calib-state'), calibration.listening
    ? 'listening: a phone held by this computer taps Calibrate'
    : 'not listening');
});
calibration.onResult = (r) => {
  const text = r.heard
    ? `phone ${r.participant}: heard ${r.offsetMs >= 0 ? '+' : ''}${r.offsetMs.toFixed(1)} ms (match ${r.score.toFixed(2)})${r.sent ? ', sent' : ', not sent: offline'}`
    : `phone ${r.participant}: ${r.why}${r.score ? ` (match ${r.score.toFixed(2)})` : ''}`;
  const li = h('li', { 'data-heard': String(!!r.heard) }, text);
  $('calib-log').prepend(li);
  while ($('calib-log').children.length > 20) $('calib-log').lastChild.remove();
};

// ---- connection ----
function connect(token) {
  client?.stop();
  $('token-form').hidden = true;
  $('dash').hidden = false;
  currentToken = token;
  // Synced to the show clock (without reporting as a phone) to time the phones' chirps.
  client = new LiveClient({ show, role: 'performer', token, sync: true, syncReports: false });
  calibration.attach(client);
  client
    .on('conn', ({ state, reason }) => {
      showConn($('conn'), state);
      updateControls();
      if (reason?.code === 'unauthorized') {
        saveToken(null);
        askToken(describeError(reason, true));
      } else if (reason) {
        toast(describeError(reason, true));
      }
    })
    .on('welcome', (w) => {
      const title = w.show?.title || 'Tutti';
      setText($('title'), `${title} · performer`);
      document.title = `${title} · Tutti performer`;
      setText($('show-code'), w.show?.code || '–');
      showCode = w.show?.code || null;
      memory.start();
      trajectories.setParams(w.params || []);
      status = w.show?.status ?? status;
      build(w.params || []);
      buildCues(w.phone, w.zones);
      updateControls();
    })
    .on('state', (s) => {
      latest = s;
      if (trajectories.push(s)) trajectories.draw();
      if (s.status !== status || !!s.bypass !== bypass) {
        status = s.status;
        bypass = !!s.bypass;
        updateControls();
      }
      draw();
    })
    .on('stats', (s) => { renderStats(s); renderPhones(s); sound.status(s.sound); })
    .on('monitor', sound.monitor)
    .on('command', logCommand)
    .on('error', (e) => { if (e.seq == null) toast(describeError(e)); })
    .start();
}

const token = storedToken();
if (token) connect(token);
else askToken('');
updateControls();
