// chat-page.js — the staff chat page (`/chat`). Signs in with the management API's bearer tokens
// (`POST /api/v1/auth/login`, mode "token": the WebSocket's `chat_auth` needs an access token, which
// a cookie session does not show to scripts), keeps the pair in sessionStorage and refreshes it
// when it expires (`POST /auth/refresh`). The chat itself rides on its own /live/v1 connection
// (ChatSocket, chat.js), which follows every room of the user from its latest seq; a room's
// history comes from `GET /chat/rooms/{id}/messages` (newest first, paged back by
// `before_seq`), and search from `GET /chat/search` (snippets drawn as text with <mark>).
// Moderation (chat-moderation.js): a room's settings, restrictions and audit log, for its
// moderators only.
// Attachments: uploaded through `POST /chat/rooms/{id}/attachments`, posted with the message
// through REST, and their bytes fetched with the token and shown from `blob:` URLs.
//
// Test hooks (besides chat-ui.js's):
//   #login (form: username, password)   #app   #who   #conn
//   #rooms button[data-room=ID]  a room; its .unread holds the unread count (empty when none)
//   #search-q, #search           the search form; #results-list li[data-message=ID] a hit
//   window.tuttiChat             {socket, client, view}: socket.hold / socket.ws / socket.release()

import { h, setText, showConn } from './ui.js';
import { ChatSocket } from './chat.js';
import { RoomView } from './chat-ui.js';
import { ShowExtras } from './show-extras.js';
import { RoomModeration } from './chat-moderation.js';

const $ = (id) => document.getElementById(id);
const API = '/api/v1';
const AUTH_KEY = 'tutti.chat.auth';
const PAGE = 50;

// ---- tokens and the API ----

function loadAuth() {
  try { return JSON.parse(sessionStorage.getItem(AUTH_KEY) || 'null'); } catch { return null; }
}
function saveAuth(a) {
  try { if (a) sessionStorage.setItem(AUTH_KEY, JSON.stringify(a)); else sessionStorage.removeItem(AUTH_KEY); } catch { /* no storage */ }
}
let auth = loadAuth(); // {access_token, refresh_token, user}
let refreshing = null;

/** The API's error envelope as an Error (code, status, message: the API's own words). */
function apiError(res, text) {
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  const e = data?.error || { code: `http_${res.status}`, message: res.status === 413 ? 'the file is too large' : text.slice(0, 200) };
  const err = new Error(e.message || e.code);
  err.code = e.code;
  err.status = res.status;
  return err;
}

async function raw(method, path, body, token) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(API + path, { method, headers, credentials: 'omit', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw apiError(res, text);
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  return data;
}

/** `fn(token)` with the access token, once more with a fresh one after a 401. */
async function withToken(fn) {
  try {
    return await fn(auth?.access_token);
  } catch (e) {
    if (e.status !== 401 || !auth) throw e;
    const t = await refresh();
    if (!t) throw e;
    return fn(t);
  }
}

/** A fresh access token (one refresh at a time); null when signed out. */
async function refresh() {
  if (!auth?.refresh_token) return null;
  refreshing ??= raw('POST', '/auth/refresh', { refresh_token: auth.refresh_token })
    .then((pair) => { auth = { ...auth, access_token: pair.access_token, refresh_token: pair.refresh_token }; saveAuth(auth); return auth.access_token; })
    .catch(() => { signedOut('Your session ended: sign in again.'); return null; })
    .finally(() => { refreshing = null; });
  return refreshing;
}

async function api(method, path, body) {
  return withToken((t) => raw(method, path, body, t));
}

// ---- attachments (the API's bytes need the bearer token: no <img src> can send it) ----

/** Uploads a File to a room (`POST /chat/rooms/{id}/attachments?name=`): the attachment. */
function uploadFile(roomId, file) {
  return withToken(async (token) => {
    const res = await fetch(`${API}/chat/rooms/${roomId}/attachments?name=${encodeURIComponent(file.name)}`, {
      method: 'POST', credentials: 'omit', body: file,
      headers: { accept: 'application/json', 'content-type': 'application/octet-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    const text = await res.text();
    if (!res.ok) throw apiError(res, text);
    return JSON.parse(text);
  });
}

/** An attachment's bytes (`/chat/attachments/{id}` or its `/thumbnail`) as a Blob. */
function fetchBlob(path) {
  return withToken(async (token) => {
    const res = await fetch(API + path, { credentials: 'omit', headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (!res.ok) throw apiError(res, await res.text());
    return res.blob();
  });
}

let postCount = 0;
/** Posts a message with files through REST (`chat_post` on /live/v1 carries none); the
 *  message is shown at once and its live event, when it comes, is skipped as already applied. */
async function postWithFiles(roomId, text, ids) {
  postCount += 1;
  const clientId = `f-${Date.now().toString(36)}-${postCount}-${Math.random().toString(36).slice(2, 8)}`;
  const m = await api('POST', `/chat/rooms/${roomId}/messages`, { client_message_id: clientId, text, attachments: ids });
  socket?.client.upsert(roomId, [m]);
  return m;
}

function showError(text) {
  const el = $('error');
  el.hidden = !text;
  setText(el, text || '');
}

// ---- the chat ----

let socket = null;
let view = null;
let extras = null; // the live-show extras of a show room (show-extras.js)
let moderation = null; // the room's settings and moderation, for its moderators (chat-moderation.js)
let current = null;
const roomButtons = new Map(); // room id → {button, badge}
const usernames = new Map(); // user id → username (for @mentions)

function roomLabel(r) { return r.name || `${r.kind} room ${r.id}`; }

function drawRooms() {
  const c = socket.client;
  const ul = $('rooms');
  const rooms = [...c.rooms.values()].filter((r) => r.kind).sort((a, b) => a.id - b.id);
  for (const r of rooms) {
    let b = roomButtons.get(r.id);
    if (!b) {
      const name = h('span', { class: 'room-name' });
      const badge = h('span', { class: 'unread' });
      const button = h('button', { type: 'button', class: 'btn', 'data-room': r.id, onclick: () => openRoom(r.id) }, name, badge);
      b = { button, badge, name, li: h('li', {}, button) };
      roomButtons.set(r.id, b);
      ul.append(b.li);
    }
    setText(b.name, roomLabel(r) + (r.readOnly ? ' (read-only)' : ''));
    const unread = r.id === current && document.visibilityState === 'visible' ? 0 : r.unread;
    setText(b.badge, unread > 0 ? String(unread) : '');
    b.button.setAttribute('aria-label', `${roomLabel(r)}${unread > 0 ? `, ${unread} unread` : ''}`);
    b.button.setAttribute('aria-current', String(r.id === current));
  }
}

/** A show room's questions, pins, wall and announcements (their state, for loaded messages). */
async function loadShowState(room) {
  for (const list of ['questions', 'pins', 'wall', 'announcements']) {
    const page = await api('GET', `/chat/rooms/${room.id}/${list}`);
    socket.client.showState(room.id, page.items);
  }
}

async function loadOlder(room) {
  const q = room.oldestSeq != null ? `&before_seq=${room.oldestSeq}` : '';
  const page = await api('GET', `/chat/rooms/${room.id}/messages?limit=${PAGE}${q}`);
  socket.client.addMessages(room.id, page.items, page.next_before_seq);
}

/** A room's members, and the usernames of them an admin can read from the user directory (at
 *  most 100): what `@` offers (mentionNames). */
async function membersOf(room) {
  try {
    const list = await api('GET', `/chat/rooms/${room.id}/members`);
    room.memberIds = list.items.map((m) => m.user_id).slice(0, 100);
    if (auth?.user?.role !== 'admin') return;
    await Promise.all(room.memberIds.map(async (id) => {
      if (usernames.has(id)) return;
      try { usernames.set(id, (await api('GET', `/users/${id}`)).username); } catch { /* below */ }
    }));
  } catch { room.memberIds = []; }
}

/** The names `@` offers in a room: its members' usernames, or (the user directory is for admins)
 *  the names seen in the room that can be mentioned; never an audience identity's. */
function mentionNames(room) {
  const out = new Set();
  for (const id of room?.memberIds || []) {
    if (id === socket.client.me) continue;
    const n = usernames.get(id) ?? socket.client.names.get(id);
    if (n && /^[\w.-]+$/.test(n) && !n.startsWith('~')) out.add(n);
  }
  return [...out].sort();
}

async function openRoom(id) {
  current = id;
  const r = socket.client.room(id);
  setText($('room-title'), roomLabel(r));
  view.show(id);
  extras.show(r.kind === 'show' ? id : null);
  moderation.show(id);
  drawRooms();
  if (!r.loadedOnce) {
    r.loadedOnce = true;
    await loadOlder(r).catch((e) => showError(`${e.code}: ${e.message}`));
    if (r.kind === 'show') await loadShowState(r).catch((e) => showError(`${e.code}: ${e.message}`));
    membersOf(r);
  }
  socket.client.markRead(id);
  view.text.focus();
}

async function search(q) {
  const list = $('results-list');
  $('results').hidden = false;
  setText($('results-note'), 'Searching…');
  list.replaceChildren();
  try {
    const res = await api('GET', `/chat/search?q=${encodeURIComponent(q)}&limit=20`);
    setText($('results-note'), res.items.length ? `${res.items.length} found` : 'Nothing found');
    for (const hit of res.items) {
      const snippet = h('span', { class: 'snippet' });
      for (const part of hit.snippet) snippet.append(part.highlighted ? h('mark', {}, part.text) : document.createTextNode(part.text));
      const room = socket.client.room(hit.room_id);
      list.append(h('li', { 'data-message': hit.message_id },
        h('button', { type: 'button', class: 'btn small', onclick: () => openRoom(hit.room_id) },
          h('span', { class: 'muted' }, `${roomLabel(room)} · ${socket.client.nameOf(hit.author_id)}: `), snippet)));
    }
    recentSearches();
  } catch (e) {
    setText($('results-note'), `Search failed: ${e.message}`);
  }
}

async function recentSearches() {
  try {
    const res = await api('GET', '/chat/searches/recent');
    $('recent-searches').replaceChildren(...res.items.map((s) => h('option', { value: s.query })));
  } catch { /* not needed */ }
}

function start(user) {
  $('login').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  showError('');
  setText($('who'), `${user.display_name || user.username} · `);
  socket = new ChatSocket({
    getToken: async (fresh = false) => (fresh ? refresh() : auth?.access_token ?? null),
    client: { backlog: 0 }, // history comes through REST
  });
  const c = socket.client;
  view = new RoomView(c, { onOlder: loadOlder, mentionNames, files: { upload: uploadFile, fetch: fetchBlob, post: postWithFiles } });
  extras = new ShowExtras(c, { crew: true });
  moderation = new RoomModeration(api, (user) => usernames.get(user) ?? c.nameOf(user));
  $('room').replaceChildren(extras.el, moderation.el, view.el);
  socket.on('conn', ({ state }) => showConn($('conn'), state));
  c.on('hello', () => { drawRooms(); if (current == null) { const first = [...c.rooms.values()].find((r) => r.kind); if (first) openRoom(first.id); } });
  c.on('unread', drawRooms);
  c.on('room', drawRooms);
  c.on('posted', ({ room }) => {
    if (room.id === current && document.visibilityState === 'visible') c.markRead(room.id);
    drawRooms();
  });
  c.on('caught_up', ({ room }) => { if (room.id === current) c.markRead(room.id); });
  c.on('error', (e) => { if (e.code !== 'unauthorized') view.say(`${e.code}: ${e.message || ''}`); });
  document.addEventListener('visibilitychange', () => { if (current != null && document.visibilityState === 'visible') c.markRead(current); drawRooms(); });
  window.tuttiChat = { socket, client: c, view };
  socket.start();
  recentSearches();
}

function signedOut(message) {
  auth = null;
  saveAuth(null);
  if (socket) socket.stop();
  socket = null;
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('login').hidden = false;
  setText($('who'), '');
  showError(message || '');
  $('login').querySelector('input[name=username]').focus();
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const f = new FormData(form);
  try {
    const out = await raw('POST', '/auth/login', { username: f.get('username'), password: f.get('password'), mode: 'token' });
    auth = { access_token: out.access_token, refresh_token: out.refresh_token, user: out.user };
    saveAuth(auth);
    form.reset();
    start(out.user);
  } catch (e) {
    showError(e.code === 'rate_limited' ? 'Too many tries: wait a little.' : 'Sign-in failed: check the user name and password.');
  }
});
$('sign-out').addEventListener('click', async () => {
  try { await api('POST', '/auth/logout'); } catch { /* signed out anyway */ }
  signedOut('');
});
$('search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = $('search-q').value.trim();
  if (q) search(q);
});

if (auth?.access_token) start(auth.user || {});
else signedOut('');
