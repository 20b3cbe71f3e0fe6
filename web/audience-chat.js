// audience-chat.js — the audience page's chat tab: the show's room, over the page's own
// LiveClient connection (a phone in a show never opens a second one).
//
// The phone asks for a display name once (kept per show in localStorage) and, to keep one chat
// identity across reconnects (so a post sent again after a reconnect is recognised as the
// same post), asks for a guest device token of the show (`POST /api/v1/join/{code}/guests`,
// kept in localStorage) and rejoins with it; every later join carries it. After each welcome
// it sends `chat_name`, and the ChatClient follows the room from the last seq it applied.
// Posting is open while the show is live; paused, scheduled or ended, the composer closes with
// a notice (ended: the room stays readable).
//
// Live-show extras (show-extras.js): the questions with upvote buttons and the pinned messages
// above the room in #show-extras, and the latest announcement as a banner at the top of the
// page (#show-announcement, whichever tab is open). A phone that chose no name yet follows
// the room all the same (`chat_show`), so every phone of the show gets the announcements.
//
// Test hooks: #tab-play #tab-chat (#chat-unread) #chat-panel #chat-name (input #chat-name-input)
//   #chat-note, the room view of chat-ui.js in #chat-room; window.tuttiAudienceChat = {chat, view,
//   extras}

import { setText } from './ui.js';
import { ChatClient } from './chat.js';
import { RoomView } from './chat-ui.js';
import { ShowExtras } from './show-extras.js';

const $ = (id) => document.getElementById(id);

function local() {
  try { return window.localStorage; } catch { return null; }
}

export function startAudienceChat(client, show) {
  const panel = $('chat-panel');
  if (!panel) return null;
  const DEVICE_KEY = `tutti.device.${show || ''}`;
  const NAME_KEY = `tutti.chat.name.${show || ''}`;
  const device = local()?.getItem(DEVICE_KEY);
  if (device && !client.token) client.token = device; // the join carries it from the start
  let name = local()?.getItem(NAME_KEY) || null;
  let code = show;
  let status = null;
  let roomId = null;
  let unseen = 0;

  const chat = new ChatClient({ send: (f) => client.sendFrame(f), nextSeq: () => client.nextSeq() });
  const view = new RoomView(chat, { mentionNames: () => [] });
  $('chat-room').replaceChildren(view.el);
  const extras = new ShowExtras(chat);
  $('show-extras')?.replaceChildren(extras.el);
  $('show-announcement')?.replaceChildren(extras.banner);
  window.tuttiAudienceChat = { chat, view, extras };

  const note = (t) => setText($('chat-note'), t);
  function notice() {
    const r = roomId == null ? null : chat.room(roomId);
    if (r) r.readOnly = status === 'ended' || r.readOnly && status !== 'live';
    if (status === 'ended') view.setNotice('The show has ended: the chat is read-only now. Thank you!');
    else if (status === 'paused') view.setNotice('The show is paused: the chat opens again when it resumes.');
    else if (status === 'scheduled') view.setNotice('The chat opens when the show starts.');
    else view.setNotice(null);
    if (r) view.render();
  }

  // ---- tabs ----
  const tabs = [$('tab-play'), $('tab-chat')];
  function select(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
    }
    if (tab === tabs[1]) {
      unseen = 0;
      setText($('chat-unread'), '');
      if (roomId != null) chat.markRead(roomId);
      if (!name) $('chat-name-input').focus();
    }
  }
  for (const t of tabs) {
    t.addEventListener('click', () => select(t));
    t.addEventListener('keydown', (ev) => {
      if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
      const next = tabs[(tabs.indexOf(t) + 1) % tabs.length];
      next.focus();
      select(next);
    });
  }
  const chatShown = () => !panel.hidden;

  // ---- the name, once ----
  function askName() {
    $('chat-name').hidden = !!name;
    if (!name) note('Choose a name to chat with the audience and the crew.');
  }
  $('chat-name').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = $('chat-name-input').value.replace(/\s+/g, ' ').trim();
    if (!v) return;
    name = v;
    local()?.setItem(NAME_KEY, name);
    askName();
    note('Joining the chat…');
    if (!client.token && code) {
      // A guest of the show: one chat identity across reconnects. Rejoin with it.
      try {
        const res = await fetch(`/api/v1/join/${encodeURIComponent(code)}/guests`, { method: 'POST', headers: { accept: 'application/json' } });
        if (res.ok) {
          const out = await res.json();
          local()?.setItem(DEVICE_KEY, out.device_token);
          client.token = out.device_token;
          client._saveResume(null);
          if (client.ws) { client._drop(client.ws); return; } // the next welcome sends the name
        }
      } catch { /* chat anonymously on this connection */ }
    }
    client.sendFrame({ type: 'chat_name', name });
  });

  // ---- the connection ----
  client.on('chat', (m) => chat.handle(m));
  client.on('error', (e) => chat.handleError(e));
  client.on('conn', ({ state, reason }) => {
    if (state !== 'live') chat.disconnected();
    if (reason?.code === 'show_ended') { status = 'ended'; notice(); }
  });
  client.on('welcome', (w) => {
    chat.disconnected();
    code = w.show?.code || code;
    status = w.show?.status ?? status;
    if (name) client.sendFrame({ type: 'chat_name', name });
    else client.sendFrame({ type: 'chat_show' }); // announcements reach a phone without a name too
    notice();
  });
  client.on('state', (s) => { if (s.status !== status) { status = s.status; notice(); } });
  chat.on('hello', (hello) => {
    const r = hello.rooms?.[0];
    if (!r) { note('This show has no chat.'); return; }
    roomId = r.room;
    note('');
    view.show(roomId);
    extras.show(roomId);
    notice();
    if (chatShown()) chat.markRead(roomId);
  });
  chat.on('posted', ({ room, message, live }) => {
    if (room.id !== roomId || !live || message.author === chat.me) return;
    if (chatShown() && document.visibilityState === 'visible') chat.markRead(roomId);
    else { unseen += 1; setText($('chat-unread'), String(unseen)); }
  });
  chat.on('error', (e) => {
    if ((e.code === 'not_found' || e.code === 'unknown_show') && roomId == null) note('This show has no chat.');
  });
  askName();
  return { chat, view };
}

