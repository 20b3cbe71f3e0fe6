// display.js — the big-screen page (`/display`): joins as `role: display` (read-only, detailed
// state) and shows the show title, a large bar per continuous parameter, vote shares, the number
// of participants, and a QR code of the join URL (from welcome.show.join_url; before the first
// welcome, from /api/v1/info when no `?show=` is given).
//
// Test hooks:
//   #conn                 connection state text: connecting | live | reconnecting | offline
//   [data-value="NAME"]   live value: value.toFixed(digits after the step's decimal point; 2
//                         without a step), no unit; for a vote, the winning choice's name
//   [data-share="NAME:CHOICE"]  a vote-share row      #qr (img, once the URL is known)  #join-url  #participants  #title
//   #wall [data-wall-message=ID]  the messages crew approved for the wall (live)
//
// The wall: after each welcome the page sends `chat_show` and follows its show's room on the
// same connection; the server hands a display only the wall's events (approvals, rejections,
// deletions), so the page shows exactly what crew approved, as the server rendered it.

import { LiveClient } from './live.js';
import { h, setText, fmt, position, queryParam, scheduler, showConn, describeError, shareBars } from './ui.js';
import { Trajectories } from './trajectory.js';
import { ChatClient } from './chat.js';
import { renderWall } from './show-extras.js';

const $ = (id) => document.getElementById(id);
const trajectories = new Trajectories(document.getElementById('trajectories'), { minutes: 3 });
const show = queryParam('show');
const client = new LiveClient({ show, role: 'display' });
// Everything from the start (the server sends a display only the wall's events).
const chat = new ChatClient({ send: (f) => client.sendFrame(f), nextSeq: () => client.nextSeq(), backlog: 1e9 });
let wallRoom = null;
const drawWall = () => { if (wallRoom != null) renderWall($('wall'), chat, wallRoom); };
chat.on('hello', (hello) => { wallRoom = hello.rooms?.[0]?.room ?? null; drawWall(); })
  .on('extras', drawWall).on('room', drawWall);
client.on('chat', (m) => chat.handle(m)).on('error', (e) => chat.handleError(e));
const views = new Map();
let signature = '';
let latest = null;
let joinUrl = '';

function setJoinUrl(url) {
  if (!url || url === joinUrl) return;
  joinUrl = url;
  $('qr-box').replaceChildren(h('img', { id: 'qr', src: `/qr.svg?text=${encodeURIComponent(url)}`, alt: 'QR code with the join address' }));
  setText($('join-url'), url);
}

function buildParam(p) {
  const name = h('span', { class: 'name' }, p.label || p.name);
  if (p.kind === 'discrete') {
    const value = h('span', { 'data-value': p.name }, '–');
    const shares = shareBars(p.name, p.choices || []);
    const el = h('div', { class: 'dvote' },
      h('div', { class: 'dvote-head' }, name, h('span', { class: 'val' }, value)), shares.el);
    return {
      el,
      render(st) {
        const choice = st.choice ?? p.choices?.[Math.round(st.value)] ?? '–';
        setText(value, choice);
        shares.render(st.choices, choice);
      },
    };
  }
  const value = h('span', { 'data-value': p.name }, fmt(p.default, p.step));
  const fill = h('div');
  const el = h('div', { class: 'dparam' }, name, h('div', { class: 'dbar', 'aria-hidden': 'true' }, fill),
    h('span', { class: 'val' }, value, p.unit ? h('span', { class: 'muted' }, ` ${p.unit}`) : null));
  return {
    el,
    render(st) {
      setText(value, fmt(st.value, p.step));
      fill.style.setProperty('--w', `${position(st.value, p.min, p.max).toFixed(2)}%`);
    },
  };
}

function build(params) {
  const sig = JSON.stringify(params);
  if (sig === signature) return;
  signature = sig;
  views.clear();
  for (const p of params) views.set(p.name, buildParam(p));
  $('params').replaceChildren(...[...views.values()].map((v) => v.el));
}

const STATUS_TEXT = { scheduled: 'Starting soon', paused: 'Paused', ended: 'The show has ended. Thank you!' };

const draw = scheduler(() => {
  if (!latest) return;
  for (const [name, view] of views) {
    const st = latest.params?.[name];
    if (st) view.render(st);
  }
  setText($('participants'), String(latest.participants ?? 0));
  const banner = $('banner');
  banner.dataset.kind = latest.status === 'ended' ? 'ended' : latest.bypass ? 'bypass' : 'info';
  setText(banner, STATUS_TEXT[latest.status] || (latest.bypass ? 'The performers have the controls' : ''));
});

client
  .on('conn', ({ state, reason }) => {
    showConn($('conn'), state);
    if (reason) setText($('banner'), describeError(reason, true));
  })
  .on('welcome', (w) => {
    chat.disconnected();
    client.sendFrame({ type: 'chat_show' });
    const title = w.show?.title || 'Tutti';
    setText($('title'), title);
    document.title = `${title} · Tutti`;
    setJoinUrl(w.show?.join_url);
    build(w.params || []);
    trajectories.setParams(w.params || []);
  })
  .on('state', (s) => {
    latest = s;
    draw();
    if (trajectories.push(s)) trajectories.draw();
  })
  .start();

if (!show) {
  fetch('/api/v1/info')
    .then((r) => (r.ok ? r.json() : null))
    .then((info) => { if (info && !joinUrl) setJoinUrl(info.join_url); })
    .catch(() => { /* the welcome brings the URL too */ });
}
