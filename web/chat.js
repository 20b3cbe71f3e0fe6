// chat.js — the chat client of /live/v1 (docs/protocol.md, "Chat"), shared by the `/chat` page
// and the audience page's chat tab. It never touches the DOM (chat-ui.js draws).
//
// ChatClient keeps, per room, the last `room_seq` it applied and follows the room again from
// it after every new connection (exact catch-up: the server sends exactly the missed events,
// in order), drops an event it has already applied (by `room_seq`), applies posts, edits,
// deletions and boosts to its messages, and sends again, with the same `client_id`, every post
// not yet acknowledged when the connection came back (the server answers a retry with the
// original message and stores nothing). A message's `html` is kept exactly as the server
// rendered it (already safe); names and plain texts are only ever shown as text.
//
// It rides on a transport: {send(frame) → bool, nextSeq() → number}. The audience page's
// transport is its LiveClient (one connection for the show and its chat); the `/chat` page's is
// a ChatSocket (below), which signs in with `chat_auth`. The transport calls
// client.handle(frame) for each `chat_*` frame and client.handleError(frame) for errors.
//
// Events (client.on(type, fn) calls fn(detail)):
//   hello     the chat_hello frame (the rooms were updated)
//   room      {room}: a room's messages changed (posted, edited, deleted, boosted, loaded)
//             (a message's `attachments`: its files' metadata, attachmentsOf below)
//   posted    {room, message, live}: a new message (live: after the room's catch-up)
//   caught_up {room}
//   presence  {room}   typing {room}   unread {room}
//   failed    {room, clientId, error}: a post the server refused (not sent again)
//   error     an error frame of a chat frame
//   extras    {room, message}: a question's votes, answered, a pin or a wall decision changed
//   announcement {room, message, live}: an announcement was posted (live: after catch-up)
//
// Live-show extras (show rooms): a message's `flag` ('question' | 'announcement' | null),
// `votes`, `voted` (this user's vote, known from the events of this connection's catch-up),
// `answered`, `pinned` and `wall` ('approved' | 'rejected' | null) follow their events. A
// display (`chat_show`) is handed only wall events: a `wall_approved` of a message it never
// saw adds it with the approved text. A room's first follow on a connection that has not had
// them yet asks for its pins and latest announcement however old (`extras`): `chat_extras`
// adds the ones older than the loaded events as "standing" messages (in the pins and the
// banner, not in the room's list) and marks the loaded ones; later events change them as usual.

export const BACKLOG_EVENTS = 200; // events read from the socket when a room is first followed
const TYPING_SHOWN_MS = 4_000;
const TYPING_EVERY_MS = 2_000;
// Refusals that sending again cannot fix (a retry would be refused the same way).
const RETRYABLE = new Set(['rate_limited', 'storage_unavailable', 'unauthorized', 'internal']);

function randomId() {
  const a = new Uint8Array(9);
  crypto.getRandomValues(a);
  return 'c-' + Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A message's files as chat-ui.js draws them: {id, name, mediaType, size, width, height,
 * thumbnail}. A live `chat_event` says `thumbnail: true`; a REST message has `thumbnail_url`.
 * Names are user input: only ever shown as text.
 */
export function attachmentsOf(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((a) => Number.isInteger(a?.id)).map((a) => ({
    id: a.id,
    name: String(a.name ?? ''),
    mediaType: String(a.media_type ?? ''),
    size: Number(a.size) || 0,
    width: a.width ?? null,
    height: a.height ?? null,
    thumbnail: !!(a.thumbnail || a.thumbnail_url),
  }));
}

class Room {
  constructor(id) {
    this.id = id;
    this.name = null;
    this.kind = null;
    this.readOnly = false;
    this.headSeq = 0; // the room's latest seq as the server last said
    this.lastSeq = null; // the last room_seq applied (null: never followed)
    this.unread = 0;
    this.followed = false; // followed on the current connection
    this.caughtUp = false;
    this.messages = new Map(); // id → message
    this.here = []; // [{user, name}]: all, or the first few of a big room
    this.hereCount = 0; // how many people are here (may exceed here.length)
    this.typing = new Map(); // user → {name, until}
    this.oldestSeq = null; // posted_seq of the oldest message loaded (for scrolling back)
    this.extrasKnown = false; // its pins and latest announcement came (chat_extras)
    this.noOlder = false;
    this.readSent = 0;
  }

  /** The messages in the room's order (by the seq that posted them); standing ones (known only
   *  as a pin or the announcement, older than what was loaded) left out. */
  list() {
    return [...this.messages.values()].filter((m) => !m.standing).sort((a, b) => a.postedSeq - b.postedSeq);
  }
}

export class ChatClient {
  constructor(transport, opts = {}) {
    this.transport = transport;
    this.backlog = opts.backlog ?? BACKLOG_EVENTS;
    this.rooms = new Map();
    this.me = null;
    this.myName = null;
    this.names = new Map(); // user → the last name seen for them
    this.pending = new Map(); // client_id → {room, text, seq, replyTo}
    this.followAll = opts.followAll ?? true;
    this.ready = false; // signed in on the current connection (a chat_hello came)
    this.lastTyping = new Map();
    this.listeners = new Map();
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return this;
  }

  _emit(type, detail) {
    for (const fn of this.listeners.get(type) || []) {
      try { fn(detail); } catch (e) { console.error(`tutti chat: ${type} handler failed`, e); }
    }
  }

  room(id) {
    let r = this.rooms.get(id);
    if (!r) { r = new Room(id); this.rooms.set(id, r); }
    return r;
  }

  nameOf(user) { return this.names.get(user) ?? `user ${user}`; }

  _send(frame) { return this.transport.send(frame); }

  /** The connection is gone: rooms must be followed again on the next one. */
  disconnected() {
    this.ready = false;
    for (const r of this.rooms.values()) { r.followed = false; r.caughtUp = false; r.here = []; r.hereCount = 0; r.typing.clear(); }
  }

  // ---- frames from the server ----

  handle(msg) {
    switch (msg.type) {
      case 'chat_hello': return this._hello(msg);
      case 'chat_event': return this._event(msg);
      case 'chat_extras': return this._extras(msg);
      case 'chat_caught_up': {
        const r = this.room(msg.room);
        r.caughtUp = true;
        if (r.lastSeq == null || msg.room_seq > r.lastSeq) r.lastSeq = msg.room_seq;
        r.headSeq = Math.max(r.headSeq, r.lastSeq);
        return this._emit('caught_up', { room: r });
      }
      case 'chat_ack': {
        this.pending.delete(msg.client_id);
        return this._emit('ack', msg);
      }
      case 'chat_presence': {
        const r = this.room(msg.room);
        r.here = Array.isArray(msg.here) ? msg.here : [];
        r.hereCount = Number.isInteger(msg.count) ? Math.max(msg.count, r.here.length) : r.here.length;
        for (const p of r.here) this.names.set(p.user, p.name);
        return this._emit('presence', { room: r });
      }
      case 'chat_typing': {
        const r = this.room(msg.room);
        if (msg.user === this.me) return undefined;
        r.typing.set(msg.user, { name: msg.name, until: performance.now() + TYPING_SHOWN_MS });
        this._emit('typing', { room: r });
        setTimeout(() => this._emit('typing', { room: r }), TYPING_SHOWN_MS + 50);
        return undefined;
      }
      case 'chat_unread': {
        const r = this.room(msg.room);
        r.unread = msg.unread;
        return this._emit('unread', { room: r });
      }
      default: return undefined;
    }
  }

  /** An error frame: a refused post is dropped (and reported) unless sending again may help. */
  handleError(msg) {
    if (msg.seq != null) {
      for (const [id, p] of this.pending) {
        if (p.seq === msg.seq && !RETRYABLE.has(msg.code)) {
          this.pending.delete(id);
          this._emit('failed', { room: this.room(p.room), clientId: id, text: p.text, error: msg });
        }
      }
    }
    if (msg.code === 'unauthorized') this.disconnected();
    this._emit('error', msg);
  }

  _hello(msg) {
    this.me = msg.user;
    this.myName = msg.name;
    this.names.set(msg.user, msg.name);
    for (const info of msg.rooms || []) {
      const r = this.room(info.room);
      r.name = info.name;
      r.kind = info.kind;
      r.readOnly = !!info.read_only;
      r.headSeq = info.last_seq;
      r.unread = info.unread;
    }
    this.ready = true;
    this._emit('hello', msg);
    if (this.followAll) this.follow([...(msg.rooms || []).map((i) => i.room)]);
    this._resendPending();
  }

  /**
   * A room's pins and latest announcement as of `room_seq` (docs/protocol.md, `chat_extras`),
   * sent after the catch-up. A message this client knows is marked; one it never loaded and
   * posted before what it applied is added as standing; one posted after that comes with its
   * own events (which also bring its pin).
   */
  _extras(f) {
    const r = this.room(f.room);
    r.extrasKnown = true;
    const put = (it) => {
      let m = r.messages.get(it.message);
      if (!m) {
        if (r.lastSeq != null && it.posted_seq > r.lastSeq) return null;
        if (it.author_name) this.names.set(it.author, it.author_name);
        m = {
          id: it.message, room: f.room, author: it.author, authorName: it.author_name ?? this.nameOf(it.author),
          clientId: it.client_id, text: it.text ?? '', html: it.html ?? '', at: it.at, postedSeq: it.posted_seq,
          lastSeq: it.posted_seq, edited: !!it.edited, deleted: false, replyTo: it.reply_to ?? null, boosts: new Map(),
          attachments: attachmentsOf(it.attachments), sound: null, flag: it.flag ?? null, votes: it.votes ?? 0,
          voted: false, answered: !!it.answered, pinned: false, wall: null, standing: true,
        };
        r.messages.set(m.id, m);
      } else if (it.flag) {
        m.flag = it.flag;
      }
      return m;
    };
    for (const it of f.pins || []) {
      const m = put(it);
      if (m) m.pinned = true;
    }
    if (f.announcement) put(f.announcement);
    this._emit('extras', { room: r, message: null });
    this._emit('room', { room: r });
  }

  /** Whether a user may change a message here (the server checks; this hides buttons). */
  mine(m) { return m.author === this.me; }

  _event(e) {
    const r = this.room(e.room);
    if (r.lastSeq != null && e.room_seq <= r.lastSeq) return; // seen already
    r.lastSeq = e.room_seq;
    r.headSeq = Math.max(r.headSeq, e.room_seq);
    if (e.author_name) this.names.set(e.author, e.author_name);
    let m = r.messages.get(e.message);
    // A message loaded through REST may already show this change (its last_seq).
    if (m && m.lastSeq >= e.room_seq) return;
    switch (e.kind) {
      case 'message_posted':
      case 'message_released': {
        // A released message is new to those who did not see it held (the room's delay).
        const fresh = !m;
        if (!m) {
          m = {
            id: e.message, room: e.room, author: e.author, authorName: e.author_name ?? this.nameOf(e.author),
            clientId: e.client_id, text: e.text ?? '', html: e.html ?? '', at: e.at, postedSeq: e.room_seq,
            lastSeq: e.room_seq, edited: false, deleted: false, replyTo: e.reply_to ?? null, boosts: new Map(),
            attachments: attachmentsOf(e.attachments), sound: e.sound ?? null,
            flag: e.flag ?? null, votes: 0, voted: false, answered: false, pinned: false, wall: null,
          };
          if (e.text == null) m.deleted = true; // deleted since: the catch-up carries no text
          r.messages.set(m.id, m);
          if (r.oldestSeq == null || m.postedSeq < r.oldestSeq) r.oldestSeq = m.postedSeq;
        }
        m.held = e.kind === 'message_posted' && !!e.held;
        if (e.author === this.me && e.client_id) this.pending.delete(e.client_id);
        // Counted and shown once: when posted, or when released to one who never saw it held.
        if (!fresh && e.kind === 'message_released') break;
        if (r.caughtUp && e.author !== this.me && !m.deleted) r.unread += 1;
        this._emit('posted', { room: r, message: m, live: r.caughtUp });
        if (m.flag === 'announcement' && !m.deleted) this._emit('announcement', { room: r, message: m, live: r.caughtUp });
        break;
      }
      case 'vote_added':
      case 'vote_removed':
        if (!m) return;
        m.votes = e.votes ?? m.votes;
        if (e.actor === this.me) m.voted = e.kind === 'vote_added';
        this._emit('extras', { room: r, message: m });
        break;
      case 'question_answered':
        if (!m) return;
        m.answered = true;
        this._emit('extras', { room: r, message: m });
        break;
      case 'message_pinned':
      case 'message_unpinned':
        if (!m) return;
        m.pinned = e.kind === 'message_pinned';
        this._emit('extras', { room: r, message: m });
        break;
      case 'wall_approved':
      case 'wall_rejected':
        if (!m && e.kind === 'wall_approved') {
          // A display sees only the wall: the approval brings the text approved.
          m = {
            id: e.message, room: e.room, author: e.author, authorName: e.author_name ?? this.nameOf(e.author),
            clientId: e.client_id, text: e.text ?? '', html: e.html ?? '', at: e.at, postedSeq: e.room_seq,
            lastSeq: e.room_seq, edited: false, deleted: e.text == null, replyTo: null, boosts: new Map(),
            attachments: [], flag: e.flag ?? null, votes: 0, voted: false, answered: false, pinned: false, wall: null,
          };
          r.messages.set(m.id, m);
        }
        if (!m) return;
        m.wall = e.kind === 'wall_approved' ? 'approved' : 'rejected';
        if (e.kind === 'wall_approved' && e.text != null) { m.text = e.text; m.html = e.html ?? ''; }
        this._emit('extras', { room: r, message: m });
        break;
      case 'message_edited':
        if (!m) return;
        m.text = e.text ?? ''; m.html = e.html ?? ''; m.edited = true;
        break;
      case 'message_deleted':
        if (!m) return;
        m.deleted = true; m.text = ''; m.html = ''; m.attachments = [];
        break;
      case 'boost_added':
      case 'boost_removed': {
        if (!m || !e.boost) return;
        const who = m.boosts.get(e.boost) ?? new Set();
        if (e.kind === 'boost_added') who.add(e.actor); else who.delete(e.actor);
        if (who.size) m.boosts.set(e.boost, who); else m.boosts.delete(e.boost);
        break;
      }
      default: return;
    }
    if (m) m.lastSeq = e.room_seq;
    this._emit('room', { room: r });
  }

  /** Messages as the REST API lists them (`GET /chat/rooms/{id}/messages`), e.g. older pages. */
  addMessages(roomId, items, nextBeforeSeq) {
    const r = this.upsert(roomId, items, false);
    if (nextBeforeSeq == null) r.noOlder = true;
    this._emit('room', { room: r });
  }

  /** REST messages (e.g. one the page just posted through the API), without paging. */
  upsert(roomId, items, emit = true) {
    const r = this.room(roomId);
    for (const it of items) {
      const old = r.messages.get(it.id);
      const standing = old?.standing ? old : null;
      if (standing) standing.standing = false; // loaded now: in the room's list too
      if (old && old.lastSeq >= it.last_seq) {
        if (r.oldestSeq == null || it.posted_seq < r.oldestSeq) r.oldestSeq = it.posted_seq;
        continue;
      }
      const boosts = new Map();
      for (const b of it.boosts || []) {
        if (!boosts.has(b.content)) boosts.set(b.content, new Set());
        boosts.get(b.content).add(b.user_id);
      }
      r.messages.set(it.id, {
        id: it.id, room: roomId, author: it.author_id, authorName: old?.authorName ?? this.nameOf(it.author_id),
        clientId: it.client_message_id, text: it.text, html: it.html, at: it.created_at_ms,
        postedSeq: it.posted_seq, lastSeq: it.last_seq, edited: it.edited_at_ms != null,
        deleted: it.deleted, replyTo: it.reply_to ?? null, boosts,
        attachments: it.deleted ? [] : attachmentsOf(it.attachments),
        // What chat_extras said of it (pinned, the announcement) stays.
        ...(standing ? { flag: standing.flag, votes: standing.votes, answered: standing.answered, pinned: standing.pinned } : {}),
      });
      if (r.oldestSeq == null || it.posted_seq < r.oldestSeq) r.oldestSeq = it.posted_seq;
    }
    if (emit) this._emit('room', { room: r });
    return r;
  }

  // ---- frames to the server ----

  /**
   * Follow rooms: each from the last seq applied, or (the first time) from `backlog` events
   * before the room's latest, or from `fromSeq` when given (the `/chat` page loads history
   * through REST and follows from the latest).
   */
  follow(ids, fromSeq = null) {
    if (!this.ready) return;
    const list = [];
    for (const id of ids) {
      const r = this.room(id);
      if (r.followed) continue;
      if (r.lastSeq == null) r.lastSeq = fromSeq ?? Math.max(0, r.headSeq - this.backlog);
      r.followed = true;
      r.caughtUp = false;
      // Pins and the announcement however old, until they came once (then events keep them).
      list.push(r.extrasKnown ? { room: id, after_seq: r.lastSeq } : { room: id, after_seq: r.lastSeq, extras: true });
    }
    for (let i = 0; i < list.length; i += 64) this._send({ type: 'chat_sub', rooms: list.slice(i, i + 64) });
  }

  _resendPending() {
    for (const [clientId, p] of this.pending) {
      p.seq = this.transport.nextSeq();
      const f = { type: 'chat_post', room: p.room, client_id: clientId, text: p.text, seq: p.seq };
      if (p.replyTo) f.reply_to = p.replyTo;
      if (p.flag) f.flag = p.flag;
      this._send(f);
    }
  }

  /** Post a message: kept until acknowledged, sent again after a reconnect with the same id. */
  post(roomId, text, replyTo = null, flag = null) {
    const clientId = randomId();
    const p = { room: roomId, text, seq: this.transport.nextSeq(), replyTo, flag };
    this.pending.set(clientId, p);
    const f = { type: 'chat_post', room: roomId, client_id: clientId, text, seq: p.seq };
    if (replyTo) f.reply_to = replyTo;
    if (flag) f.flag = flag;
    if (this.ready) this._send(f);
    return clientId;
  }

  edit(messageId, text) {
    return this._send({ type: 'chat_edit', message: messageId, text, seq: this.transport.nextSeq() });
  }

  remove(messageId) {
    return this._send({ type: 'chat_delete', message: messageId, seq: this.transport.nextSeq() });
  }

  boost(messageId, content, remove = false) {
    const f = { type: 'chat_boost', message: messageId, content, seq: this.transport.nextSeq() };
    if (remove) f.remove = true;
    return this._send(f);
  }

  // ---- live-show extras (show rooms) ----

  /** Ask a question (kept and sent again like a post). */
  ask(roomId, text) { return this.post(roomId, text, null, 'question'); }

  /** Crew: an announcement to every phone of the show. */
  announce(roomId, text) { return this.post(roomId, text, null, 'announcement'); }

  vote(messageId, remove = false) {
    const f = { type: 'chat_vote', message: messageId, seq: this.transport.nextSeq() };
    if (remove) f.remove = true;
    return this._send(f);
  }

  /** Crew: mark a question answered. */
  answered(messageId) {
    return this._send({ type: 'chat_answered', message: messageId, seq: this.transport.nextSeq() });
  }

  /** Crew: pin (or unpin) a message. */
  pin(messageId, remove = false) {
    const f = { type: 'chat_pin', message: messageId, seq: this.transport.nextSeq() };
    if (remove) f.remove = true;
    return this._send(f);
  }

  /** Crew: approve a message for the big screen's wall (or reject it). */
  approve(messageId, reject = false) {
    const f = { type: 'chat_approve', message: messageId, seq: this.transport.nextSeq() };
    if (reject) f.reject = true;
    return this._send(f);
  }

  /** The live-show state of messages as the REST API lists it (`GET /chat/rooms/{id}/questions`,
   *  `…/pins`, `…/wall`, `…/announcements`), for messages already loaded. */
  showState(roomId, items) {
    const r = this.room(roomId);
    for (const it of items) {
      const m = r.messages.get(it.id);
      if (!m) continue;
      Object.assign(m, {
        flag: it.flag ?? null, votes: it.votes ?? 0, voted: !!it.voted, answered: it.answered_at != null,
        pinned: it.pinned_at != null, wall: it.wall ?? null,
      });
    }
    this._emit('extras', { room: r, message: null });
  }

  /** A room's questions, most votes first (then oldest first), deleted ones left out. */
  questions(roomId) {
    const r = this.room(roomId);
    return [...r.messages.values()]
      .filter((m) => m.flag === 'question' && !m.deleted)
      .sort((a, b) => (b.votes - a.votes) || (a.postedSeq - b.postedSeq));
  }

  /** A room's pinned messages. */
  pinned(roomId) {
    return [...this.room(roomId).messages.values()].filter((m) => m.pinned && !m.deleted);
  }

  /** The room's latest announcement, or null. */
  latestAnnouncement(roomId) {
    let latest = null;
    for (const m of this.room(roomId).messages.values()) {
      if (m.flag === 'announcement' && !m.deleted && (!latest || m.postedSeq > latest.postedSeq)) latest = m;
    }
    return latest;
  }

  /** The messages approved for the wall, in posting order. */
  wall(roomId) {
    return [...this.room(roomId).messages.values()]
      .filter((m) => m.wall === 'approved' && !m.deleted)
      .sort((a, b) => a.postedSeq - b.postedSeq);
  }

  /** Mark a room read up to what this client has applied (never back). */
  markRead(roomId) {
    const r = this.room(roomId);
    if (!this.ready || r.lastSeq == null || r.lastSeq <= r.readSent || r.lastSeq === 0) return;
    r.readSent = r.lastSeq;
    this._send({ type: 'chat_read', room: roomId, read_seq: r.lastSeq });
  }

  /** The user is typing in a room (sent at most every two seconds). */
  typing(roomId) {
    const now = performance.now();
    if (!this.ready || now - (this.lastTyping.get(roomId) ?? -Infinity) < TYPING_EVERY_MS) return;
    this.lastTyping.set(roomId, now);
    this._send({ type: 'chat_typing', room: roomId });
  }

  here() { if (this.ready) this._send({ type: 'chat_here' }); }

  /** Who is typing in a room now (names). */
  typists(roomId) {
    const r = this.room(roomId);
    const now = performance.now();
    const out = [];
    for (const [user, t] of r.typing) { if (t.until > now) out.push(t.name); else r.typing.delete(user); }
    return out;
  }
}

/**
 * The `/chat` page's own connection to /live/v1: signs in with `chat_auth` (the access token
 * from `getToken()`, a fresh one after `unauthorized`), reconnects with backoff and jitter
 * (0.5 s → 10 s), keeps presence with `chat_here`, and hands frames to a ChatClient.
 * Events: conn {state: 'connecting'|'live'|'reconnecting'|'offline'}.
 * Test hook: `hold = true` keeps it from reconnecting until `release()`.
 */
export class ChatSocket {
  constructor({ getToken, url, client = {} } = {}) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.url = url || `${scheme}//${location.host}/live/v1`;
    this.getToken = getToken;
    this.ws = null;
    this.seq = 0;
    this.attempt = 0;
    this.stopped = true;
    this.hold = false;
    this.retryTimer = 0;
    this.hereTimer = 0;
    this.client = new ChatClient(this, client);
    this.listeners = new Map();
    this.refreshing = false;
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return this;
  }

  _emit(type, detail) { for (const fn of this.listeners.get(type) || []) fn(detail); }

  send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  nextSeq() { return ++this.seq; }

  start() {
    if (!this.stopped) return this;
    this.stopped = false;
    this.hereTimer = setInterval(() => this.client.here(), 15_000);
    this._connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.hereTimer);
    clearTimeout(this.retryTimer);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.onclose = null; ws.close(); }
    this.client.disconnected();
    this._emit('conn', { state: 'offline' });
  }

  /** After `hold`: connect again now. */
  release() {
    this.hold = false;
    if (!this.stopped && !this.ws) this._connect();
  }

  _connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    if (this.stopped || this.ws || this.hold) return;
    this._emit('conn', { state: this.attempt ? 'reconnecting' : 'connecting' });
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = async () => {
      const token = await this.getToken();
      if (this.ws !== ws) return;
      if (!token) { this.stop(); return; }
      ws.send(JSON.stringify({ type: 'chat_auth', token }));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg?.type === 'chat_hello') { this.attempt = 0; this._emit('conn', { state: 'live' }); }
      if (msg?.type === 'error') this._error(msg);
      else if (typeof msg?.type === 'string' && msg.type.startsWith('chat_')) this.client.handle(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.client.disconnected();
      if (this.stopped) return;
      this._emit('conn', { state: 'reconnecting' });
      if (this.hold) return;
      const ceiling = Math.min(10_000, 500 * 2 ** this.attempt);
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this._connect(), ceiling / 2 + Math.random() * (ceiling / 2));
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  async _error(msg) {
    this.client.handleError(msg);
    if (msg.code === 'unauthorized' && !this.refreshing) {
      // The access token expired or was revoked: sign the connection in again.
      this.refreshing = true;
      try {
        const token = await this.getToken(true);
        if (token) this.send({ type: 'chat_auth', token });
        else this.stop();
      } finally { this.refreshing = false; }
    }
  }
}
