// setup.js — the guided setup page (setup.html): first-run admin creation (when
// GET /api/v1/setup says it is needed), cookie sign-in, pack choice, one question at a
// time against /api/v1/wizard, coverage and findings, and the draft sent to a piece.
// Never builds HTML from server text (nodes only), never keeps the password, and keeps only the
// CSRF token in sessionStorage (the session cookie is HttpOnly).

import { h } from './ui.js';

const $ = (id) => document.getElementById(id);
const API = '/api/v1';
let session = null;

function csrf() {
  return sessionStorage.getItem('tutti.csrf') || '';
}

/** A call to the API; throws an Error carrying the envelope's code, message and details. */
async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf();
  const res = await fetch(API + path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const e = (data && data.error) || { code: 'http_' + res.status, message: text.slice(0, 200) };
    const err = new Error(e.message || e.code);
    err.code = e.code;
    err.details = e.details;
    err.status = res.status;
    throw err;
  }
  return data;
}

function problem(err) {
  if (Array.isArray(err.details) && err.details.length) {
    return err.details.map((d) => d.problem || d.field).join('; ');
  }
  return err.message;
}

function showError(err) {
  const el = $('error');
  if (!err) { el.hidden = true; return; }
  el.textContent = `${err.code ? err.code + ': ' : ''}${problem(err)}`;
  el.hidden = false;
}

function show(which) {
  for (const id of ['first-run', 'login', 'packs', 'session']) $(id).hidden = id !== which;
}

/** Cookie sign-in; keeps the CSRF token, then starts the page. */
async function login(username, password) {
  const out = await api('POST', '/auth/login', { username, password, mode: 'cookie' });
  sessionStorage.setItem('tutti.csrf', out.csrf_token);
  showError(null);
  await start(out.user);
}

async function signIn(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const username = form.elements.username.value;
  const password = form.elements.password.value;
  form.elements.password.value = '';
  try {
    await login(username, password);
  } catch (err) {
    showError(err);
  }
}

/** First run: create the admin (POST /setup), then sign in with a cookie session. The bearer
 * pair the setup call returns is not kept: pages use the cookie. */
async function createAdmin(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const username = form.elements.username.value;
  const password = form.elements.password.value;
  const body = { username, password, display_name: form.elements.display_name.value };
  try {
    await api('POST', '/setup', body);
  } catch (err) {
    showError(err);
    // Someone else finished setup first: sign in instead.
    if (err.code === 'setup_closed') show('login');
    return;
  }
  form.elements.password.value = '';
  try {
    await login(username, password);
  } catch (err) {
    showError(err);
    show('login');
  }
}

/** Not signed in: the admin form while setup is open, else the sign-in form. */
async function signedOut() {
  try {
    const s = await api('GET', '/setup');
    show(s.needed ? 'first-run' : 'login');
  } catch {
    show('login');
  }
}

async function start(user) {
  $('who').textContent = user ? `${user.display_name} (${user.role})` : '';
  const id = Number(new URLSearchParams(location.hash.slice(1)).get('session'));
  if (id > 0) {
    try {
      render(await api('GET', `/wizard/sessions/${id}`));
      await loadPieces();
      return;
    } catch (err) {
      showError(err);
    }
  }
  await listPacks();
}

async function listPacks() {
  const out = await api('GET', '/wizard/packs');
  const list = $('pack-list');
  list.replaceChildren(
    ...out.items.map((p) =>
      h('button', { class: 'card', type: 'button', onclick: () => begin(p.id) },
        h('strong', {}, p.title),
        h('span', { class: 'muted' }, p.description),
        h('span', { class: 'muted' }, `${p.questions} questions · ${p.categories.map((c) => c.title).join(', ')}`))));
  show('packs');
}

async function begin(pack) {
  try {
    const s = await api('POST', '/wizard/sessions', { pack });
    history.replaceState(null, '', `#session=${s.id}`);
    render(s);
    await loadPieces();
  } catch (err) {
    showError(err);
  }
}

async function loadPieces() {
  const sel = $('piece');
  try {
    const out = await api('GET', '/pieces?limit=100');
    sel.replaceChildren(...out.items
      .filter((p) => p.status !== 'archived' && p.ensemble_id != null)
      .map((p) => h('option', { value: p.id, selected: session && session.piece_id === p.id }, `${p.title} (${p.slug})`)));
  } catch (err) {
    showError(err);
  }
}

/** The input for a question's answer type. */
function inputFor(q) {
  const a = q.answer;
  const example = q.example;
  switch (a.type) {
    case 'number':
    case 'integer':
      return h('input', {
        type: 'number', name: 'value', required: true,
        min: a.min, max: a.max, step: a.type === 'integer' ? 1 : 'any',
        placeholder: String(example), 'aria-label': q.text,
      });
    case 'boolean':
      return h('div', { class: 'setup-options', role: 'radiogroup' },
        ['yes', 'no'].map((v) =>
          h('label', {}, h('input', { type: 'radio', name: 'value', value: v, required: true }), v)));
    case 'choice':
      return h('div', { class: 'setup-options', role: 'radiogroup' },
        a.options.map((o) =>
          h('label', {}, h('input', { type: 'radio', name: 'value', value: o.value, required: true }), o.label)));
    case 'multi_choice':
      return h('div', { class: 'setup-options' },
        a.options.map((o) =>
          h('label', {}, h('input', { type: 'checkbox', name: 'value', value: o.value }), o.label)));
    default:
      return h('input', {
        type: 'text', name: 'value', required: true, maxlength: a.max_len || 500,
        placeholder: String(example), 'aria-label': q.text,
      });
  }
}

/** The JSON answer from the form. */
function valueOf(q, form) {
  const a = q.answer;
  if (a.type === 'multi_choice') {
    return [...form.querySelectorAll('input[name="value"]:checked')].map((i) => i.value);
  }
  const v = form.elements.value.value;
  if (a.type === 'number' || a.type === 'integer') return v === '' ? v : Number(v);
  if (a.type === 'boolean') return v === 'yes';
  return v;
}

function exampleText(v) {
  if (Array.isArray(v)) return v.join(', ');
  if (v === true) return 'yes';
  if (v === false) return 'no';
  return String(v);
}

/** The filled part of a coverage bar. Its width is set through the CSSOM: the page's
 *  Content-Security-Policy refuses inline `style` attributes. */
function barFill(ratio) {
  const fill = h('span');
  fill.style.width = `${Math.round(Math.min(1, ratio) * 100)}%`;
  return fill;
}

function render(s) {
  session = s;
  show('session');
  const q = s.question;
  $('answer').hidden = !q;
  $('q-done').hidden = !!q;
  $('q-error').textContent = '';
  if (q) {
    $('q-category').textContent = q.category_title;
    $('q-required').hidden = !q.required;
    $('q-text').textContent = q.text;
    $('q-help').textContent = q.help;
    $('q-example').textContent = exampleText(q.example);
    $('q-expected').textContent = q.expected;
    $('q-input').replaceChildren(inputFor(q));
    $('skip').hidden = q.required;
    const first = $('q-input').querySelector('input');
    if (first) first.focus();
  } else {
    $('q-text').textContent = '';
  }

  const c = s.coverage;
  $('maturity').textContent = `${c.maturity}%`;
  $('coverage').replaceChildren(...c.categories.map((k) =>
    h('div', { class: 'setup-cat' },
      h('span', {}, k.title),
      h('span', { class: 'setup-bar', role: 'img', 'aria-label': `${Math.round(k.ratio * 100)}%` },
        barFill(k.ratio)),
      h('span', { class: 'num muted' }, `${k.answered}/${k.effective_target}`))));
  const findings = [
    ...s.conflicts.map((f) => h('p', { class: 'setup-finding conflict' }, h('strong', {}, 'Conflict: '), f.message)),
    ...s.warnings.map((f) => h('p', { class: 'setup-finding' }, h('strong', {}, 'Warning: '), f.message)),
  ];
  if (c.missing_required.length) {
    findings.push(h('p', { class: 'muted' }, `Still required: ${c.missing_required.join(', ')}`));
  }
  $('findings').replaceChildren(...findings);

  $('answers').replaceChildren(...Object.entries(s.answers).map(([k, v]) =>
    h('li', {}, h('span', { class: 'mono' }, k), ': ', exampleText(v), ' ',
      h('button', { class: 'btn', type: 'button', onclick: () => reanswer(k) }, 'change'))));

  const rows = s.draft.params.map((p) => h('tr', {},
    h('td', {}, p.label || p.name),
    h('td', {}, p.kind),
    h('td', {}, p.kind === 'discrete' ? (p.choices || []).join(', ') : `${p.min} – ${p.max}${p.unit ? ' ' + p.unit : ''}`),
    h('td', {}, (p.map || []).map((m) => m.target).join(', ') || '–')));
  $('draft-params').replaceChildren(
    h('p', { class: 'muted' }, `${s.draft.title} · tick ${s.draft.tick_hz} Hz · phones ${s.draft.state_hz} Hz · ${s.draft.zones.length} zones`),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'parameter'), h('th', {}, 'kind'), h('th', {}, 'range'), h('th', {}, 'mappings'))),
      h('tbody', {}, rows)));
}

async function send(question, answer) {
  try {
    render(await api('POST', `/wizard/sessions/${session.id}/answers`, { question, answer }));
    showError(null);
  } catch (err) {
    if (err.code === 'validation_failed') $('q-error').textContent = problem(err);
    else showError(err);
  }
}

/** Answer an answered question again. The text is read by the server like a typed line
 * (units, yes/no, a choice's label or number, comma-separated lists). */
function reanswer(id) {
  const v = prompt(`New answer for ${id} (now: ${exampleText(session.answers[id])})`);
  if (v !== null) send(id, v);
}

function init() {
  $('login').addEventListener('submit', signIn);
  $('first-run').addEventListener('submit', createAdmin);
  $('answer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = session.question;
    send(q.id, valueOf(q, ev.currentTarget));
  });
  $('skip').addEventListener('click', () => send(session.question.id, null));
  $('restart').addEventListener('click', () => {
    history.replaceState(null, '', location.pathname);
    listPacks().catch(showError);
  });
  $('draft').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const pieceId = Number($('piece').value);
    try {
      const v = await api('POST', `/wizard/sessions/${session.id}/draft`, { piece_id: pieceId });
      $('draft-result').textContent = `Draft version ${v.version} created for piece ${v.piece_id}. Publish it from the CLI (tutti specs publish ${v.piece_id} ${v.version}) or the API.`;
      showError(null);
    } catch (err) {
      showError(err);
    }
  });
  $('download').addEventListener('click', () => {
    const blob = new Blob([JSON.stringify(session.draft, null, 2) + '\n'], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `${session.draft.slug}.json` });
    a.click();
    URL.revokeObjectURL(a.href);
  });
  api('GET', '/me')
    .then((me) => (csrf() ? start(me.user || me) : signedOut()))
    .catch(() => signedOut());
}

init();
