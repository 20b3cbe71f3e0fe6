// chat-ui.js — one chat room on a page: its messages, who is here and typing, and a composer
// with @mention autocomplete; shared by the `/chat` page and the audience page's chat tab.
//
// A message's body is the HTML the server rendered (chat_event `html`, or the REST message's
// `html`): every character escaped, an allow-list of tags, links only to http/https
// (`tutti-chat`). Nothing else the page shows is ever parsed as HTML: names, plain texts of
// posts still being sent and search snippets are set as text.
//
// Test hooks:
//   ol.messages > li.msg[data-message=ID][data-seq=POSTED_SEQ]   one message; .msg-body its HTML;
//                          .author its author; class "deleted" once deleted, "mine" if own
//   li.msg.pending          a post not yet acknowledged (its text only)
//   .boosts button[data-boost=CONTENT]   a boost and its count (aria-pressed: one's own)
//   textarea.composer-text  the composer (Enter sends, Shift+Enter is a new line)
//   ul.mentions li[role=option]  the @mention suggestions
//   .presence .typing .readonly-note
//   Attachments (opts.files, the `/chat` page only): button.attach opens input.attach-input
//   (type=file); ul.attach-chips li.chip[data-state=uploading|ready] a file to send (its
//   button.remove); p.attach-error the refusals, as text ("NAME: the API's message").
//   A message's .attachments: img.att-thumb (in button.att-open) for an image, button.att-file
//   for other files; without opts.files (the audience tab) span.att-name, text only.
//
// File names are user input: they are only ever set as text or as attributes (alt, download).

import { h, setText } from './ui.js';
import { playSound } from './sounds.js';

const QUICK_BOOSTS = ['👍', '👏', '❤️', '😂'];
export const MAX_FILES = 4; // attachments per message (the API's limit)

/** A size for people: "512 B", "1.5 KB", "2.3 MB". */
export function humanSize(n) {
  if (!(n >= 0)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** The first line of a text, cut to 80 characters. */
function snippet(text) {
  const line = (text || '').split('\n')[0];
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export class RoomView {
  /**
   * opts: {onOlder(room) → Promise (scroll back; absent: no button), mentionNames(room) → [name],
   *        announce: whether new messages are read out (aria-live),
   *        files: {upload(roomId, File) → attachment, fetch(path) → Blob,
   *                post(roomId, text, [attachment id]) → message} (absent: no attach button,
   *                and attachments are shown as names and sizes only)}
   */
  constructor(client, opts = {}) {
    this.client = client;
    this.opts = opts;
    this.roomId = null;
    this.items = new Map(); // message id → {li, v}
    this.pendingEls = new Map(); // client id → li
    this.mention = null; // {start, options, active}
    this.played = []; // sounds played live by `/play` here, oldest first (the last 20)
    const uid = Math.random().toString(36).slice(2, 8);
    this.ids = { text: `chat-text-${uid}`, list: `chat-list-${uid}`, mentions: `chat-mentions-${uid}` };

    this.presence = h('p', { class: 'presence muted' });
    this.older = h('button', { type: 'button', class: 'btn small older', hidden: true, onclick: () => this._older() }, 'Load older messages');
    this.list = h('ol', { class: 'messages', id: this.ids.list, 'aria-label': 'Messages', tabindex: '0' });
    this.typingEl = h('p', { class: 'typing muted', 'aria-live': 'polite' });
    this.announcer = h('div', { class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'false' });
    this.readonly = h('p', { class: 'readonly-note banner', hidden: true, role: 'status' });
    this.text = h('textarea', {
      class: 'composer-text', id: this.ids.text, rows: '2', maxlength: '4000', autocomplete: 'off',
      'aria-autocomplete': 'list', 'aria-controls': this.ids.mentions, 'aria-expanded': 'false',
      placeholder: 'Message (Enter sends, Shift+Enter: new line)',
    });
    this.mentions = h('ul', { class: 'mentions', id: this.ids.mentions, role: 'listbox', 'aria-label': 'People to mention', hidden: true });
    this.sendBtn = h('button', { type: 'submit', class: 'btn send' }, 'Send');
    // Replying: the message the next post answers (a quote above the composer, Escape drops it).
    this.replyTo = null;
    this.replyText = h('span', { class: 'reply-quote' });
    this.replyBar = h('p', { class: 'replying muted', hidden: true, role: 'status' }, this.replyText, ' ',
      h('button', { type: 'button', class: 'btn small', 'aria-label': 'Cancel the reply', onclick: () => this._reply(null) }, '✕'));
    this.chips = []; // files to send: {file, att (once uploaded), done (a Promise), li}
    this.blobs = new Map(); // path → Promise of a blob: URL (revoked when the room changes)
    this.files = opts.files || null;
    this.attachBtn = null;
    if (this.files) {
      this.fileInput = h('input', { type: 'file', class: 'attach-input', multiple: true, hidden: true, tabindex: '-1' });
      this.attachBtn = h('button', { type: 'button', class: 'btn attach', 'aria-label': 'Attach files', title: 'Attach files (at most 4)', onclick: () => this.fileInput.click() }, '📎');
      this.fileInput.addEventListener('change', () => { this._addFiles([...this.fileInput.files]); this.fileInput.value = ''; });
      this.chipList = h('ul', { class: 'attach-chips', 'aria-label': 'Files to send', hidden: true });
      this.attachError = h('p', { class: 'attach-error banner', role: 'alert', hidden: true });
      // Files pasted or dropped onto the composer are attached the same way.
      this.text.addEventListener('paste', (ev) => {
        const list = [...(ev.clipboardData?.files || [])];
        if (list.length) { ev.preventDefault(); this._addFiles(list); }
      });
    }
    this.form = h('form', { class: 'composer' },
      h('label', { for: this.ids.text, class: 'sr-only' }, 'Message'),
      this.mentions, this.attachBtn, this.fileInput, this.text, this.sendBtn);
    if (this.files) {
      this.form.addEventListener('dragover', (ev) => { if (ev.dataTransfer?.types.includes('Files')) ev.preventDefault(); });
      this.form.addEventListener('drop', (ev) => {
        const list = [...(ev.dataTransfer?.files || [])];
        if (list.length) { ev.preventDefault(); this._addFiles(list); }
      });
    }
    this.el = h('div', { class: 'room-view' }, this.presence, this.older, this.list, this.typingEl,
      this.readonly, this.chipList, this.attachError, this.replyBar, this.form, this.announcer);

    this.form.addEventListener('submit', (ev) => { ev.preventDefault(); this._send(); });
    this.text.addEventListener('keydown', (ev) => this._key(ev));
    this.text.addEventListener('input', () => {
      if (this.roomId != null && this.text.value.trim()) client.typing(this.roomId);
      this._suggest();
    });
    this.text.addEventListener('blur', () => setTimeout(() => this._closeMentions(), 150));
    this.list.addEventListener('scroll', () => {
      if (this.list.scrollTop < 40 && !this.older.hidden && !this.loadingOlder) this._older();
    });

    client.on('room', ({ room }) => { if (room.id === this.roomId) this.render(); });
    client.on('ack', () => this.render());
    client.on('failed', ({ room, error }) => {
      if (room.id === this.roomId) { this.render(); this.say(`Not sent: ${error.message || error.code}`); }
    });
    client.on('posted', ({ room, message, live }) => {
      if (room.id !== this.roomId || !live) return;
      // `/play <sound>`: everyone following the room live hears it, its sender too.
      if (message.sound && !message.held && playSound(message.sound)) {
        this.played.push(message.sound);
        if (this.played.length > 20) this.played.shift();
      }
      if (message.author === client.me) return;
      const div = h('div', {}, `${message.authorName}: ${message.text}`);
      this.announcer.append(div);
      while (this.announcer.childNodes.length > 5) this.announcer.firstChild.remove();
    });
    client.on('presence', ({ room }) => { if (room.id === this.roomId) this._presence(); });
    client.on('typing', ({ room }) => { if (room.id === this.roomId) this._typing(); });
    client.on('hello', () => this._writable());
  }

  /** A short text read out and shown under the list (errors of the composer). */
  say(text) { setText(this.typingEl, text); }

  show(roomId) {
    if (this.roomId === roomId) return;
    this.roomId = roomId;
    this.items.clear();
    this.pendingEls.clear();
    this.list.replaceChildren();
    this.text.value = '';
    this._reply(null);
    this._clearChips();
    this._attachSay([]);
    for (const url of this.blobs.values()) url.then((u) => URL.revokeObjectURL(u), () => {});
    this.blobs.clear();
    this._writable();
    this._presence();
    this._typing();
    this.render();
    this.list.scrollTop = this.list.scrollHeight;
  }

  _room() { return this.roomId == null ? null : this.client.room(this.roomId); }

  _writable(note = null) {
    const r = this._room();
    const ro = !r || r.readOnly || !!note;
    this.readonly.hidden = !ro || !r;
    setText(this.readonly, note || (r?.readOnly ? 'This room is read-only: the show has ended. You can still read it.' : ''));
    this.text.disabled = ro;
    this.sendBtn.disabled = ro;
    if (this.attachBtn) this.attachBtn.disabled = ro;
  }

  /** Close the composer with a notice (or open it again with null). */
  setNotice(note) { this._writable(note); }

  _presence() {
    const r = this._room();
    const names = (r?.here || []).map((p) => p.name);
    // A big room names only its first few: the others are counted.
    const others = Math.max(0, (r?.hereCount || 0) - names.length);
    const more = others ? ` and ${others.toLocaleString('en')} ${others === 1 ? 'other' : 'others'}` : '';
    setText(this.presence, names.length ? `Here now: ${names.join(', ')}${more}` : '');
  }

  _typing() {
    const names = this.roomId == null ? [] : this.client.typists(this.roomId);
    setText(this.typingEl, names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`);
  }

  async _older() {
    const r = this._room();
    if (!r || !this.opts.onOlder || r.noOlder) return;
    this.loadingOlder = true;
    const before = this.list.scrollHeight - this.list.scrollTop;
    try { await this.opts.onOlder(r); } finally { this.loadingOlder = false; }
    this.list.scrollTop = this.list.scrollHeight - before; // keep the reader's place
  }

  /** Bring the list in line with the room (keyed by message id; in posted order). */
  render() {
    const r = this._room();
    if (!r) return;
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 60;
    const msgs = r.list();
    const keep = new Set();
    let i = 0;
    for (const m of msgs) {
      keep.add(m.id);
      let item = this.items.get(m.id);
      if (!item) { item = { li: h('li', { class: 'msg', 'data-message': m.id, 'data-seq': m.postedSeq }), v: -1 }; this.items.set(m.id, item); }
      if (item.v !== m.lastSeq) { this._fill(item.li, m); item.v = m.lastSeq; }
      if (this.list.children[i] !== item.li) this.list.insertBefore(item.li, this.list.children[i] || null);
      i += 1;
    }
    for (const [id, item] of this.items) if (!keep.has(id)) { item.li.remove(); this.items.delete(id); }
    // Posts on their way (not yet acknowledged): their text only, after the messages.
    const pendingNow = new Set();
    for (const [cid, p] of this.client.pending) {
      if (p.room !== r.id) continue;
      if ([...r.messages.values()].some((m) => m.clientId === cid && m.author === this.client.me)) continue;
      pendingNow.add(cid);
      let li = this.pendingEls.get(cid);
      if (!li) {
        li = h('li', { class: 'msg pending' }, h('div', { class: 'msg-head' }, h('span', { class: 'author' }, this.client.myName || 'you'), ' ', h('span', { class: 'muted' }, 'sending…')), h('div', { class: 'msg-body' }, h('p', {}, p.text)));
        this.pendingEls.set(cid, li);
      }
      this.list.append(li);
    }
    for (const [cid, li] of this.pendingEls) if (!pendingNow.has(cid)) { li.remove(); this.pendingEls.delete(cid); }
    this.older.hidden = !this.opts.onOlder || r.noOlder;
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  _fill(li, m) {
    const c = this.client;
    li.className = `msg${m.deleted ? ' deleted' : ''}${c.mine(m) ? ' mine' : ''}`;
    li.dataset.seq = String(m.postedSeq);
    const head = h('div', { class: 'msg-head' },
      h('span', { class: 'author' }, m.authorName),
      ' ', h('time', { datetime: new Date(m.at).toISOString(), class: 'muted' }, clock(m.at)),
      m.edited && !m.deleted ? h('span', { class: 'muted edited' }, ' (edited)') : null,
      m.held && !m.deleted ? h('span', { class: 'muted held', title: 'Others see it after the room\'s delay, unless crew remove it' }, ' (held for review)') : null);
    const body = h('div', { class: 'msg-body' });
    if (m.deleted) body.append(h('p', { class: 'muted' }, 'This message was deleted.'));
    else body.innerHTML = m.html; // rendered and sanitized by the server (tutti-chat)
    const parts = [head, body];
    if (m.replyTo != null) {
      const q = c.room(m.room).messages.get(m.replyTo);
      const quoted = q ? (q.deleted ? 'a deleted message' : `${q.authorName}: ${snippet(q.text)}`) : 'an earlier message';
      parts.splice(1, 0, h('blockquote', { class: 'reply-to muted', 'data-reply-to': String(m.replyTo) }, `↪ ${quoted}`));
    }
    if (m.sound && !m.deleted) {
      parts.push(h('button', {
        type: 'button', class: 'btn small replay', 'aria-label': `Play ${m.sound} again`, onclick: () => playSound(m.sound),
      }, `🔊 ${m.sound}`));
    }
    if (!m.deleted) {
      const boosts = h('div', { class: 'boosts' });
      for (const [content, who] of m.boosts) {
        const mineB = who.has(c.me);
        boosts.append(h('button', {
          type: 'button', class: 'btn small boost', 'data-boost': content, 'aria-pressed': String(mineB),
          'aria-label': `${content} ${who.size}${mineB ? ', yours: remove' : ''}`,
          onclick: () => c.boost(m.id, content, mineB),
        }, `${content} ${who.size}`));
      }
      const ro = c.room(m.room).readOnly;
      const actions = h('div', { class: 'msg-actions' });
      if (!ro) {
        const pick = h('span', { class: 'quick-boosts' }, QUICK_BOOSTS.map((b) => h('button', {
          type: 'button', class: 'btn small', 'aria-label': `Boost with ${b}`, onclick: () => c.boost(m.id, b),
        }, b)));
        actions.append(pick,
          h('button', { type: 'button', class: 'btn small reply', 'aria-label': `Reply to ${m.authorName}`, onclick: () => this._reply(m) }, 'Reply'));
        if (c.mine(m)) {
          actions.append(
            h('button', { type: 'button', class: 'btn small edit', onclick: () => this._edit(li, m) }, 'Edit'),
            h('button', { type: 'button', class: 'btn small danger delete', onclick: (ev) => this._delete(ev.currentTarget, m) }, 'Delete'));
        }
      }
      if (m.attachments?.length) parts.push(this._attachments(m));
      parts.push(boosts, actions);
    }
    li.replaceChildren(...parts);
  }

  // ---- attachments in messages ----

  /** A blob: URL of an attachment's bytes (fetched once per room view). */
  _blobUrl(path) {
    let p = this.blobs.get(path);
    if (!p) {
      p = this.files.fetch(path).then((b) => URL.createObjectURL(b));
      p.catch(() => this.blobs.delete(path)); // fetched again next time
      this.blobs.set(path, p);
    }
    return p;
  }

  _attachments(m) {
    const box = h('ul', { class: 'attachments', 'aria-label': 'Attachments' });
    for (const a of m.attachments) {
      const label = `${a.name} (${humanSize(a.size)})`;
      if (!this.files) {
        // No credentials (the audience tab): the file's name and size, as text.
        box.append(h('li', { 'data-attachment': a.id }, h('span', { class: 'att-name' }, `📎 ${label}`)));
        continue;
      }
      const base = `/chat/attachments/${a.id}`;
      if (a.thumbnail) {
        const img = h('img', { class: 'att-thumb', alt: a.name });
        if (a.width && a.height) {
          const k = Math.min(1, 320 / Math.max(a.width, a.height));
          img.width = Math.max(1, Math.round(a.width * k));
          img.height = Math.max(1, Math.round(a.height * k));
        }
        const note = h('span', { class: 'att-size muted' }, humanSize(a.size));
        this._blobUrl(`${base}/thumbnail`).then((u) => { img.src = u; },
          (e) => setText(note, `${humanSize(a.size)} · not loaded: ${e.message}`));
        const open = h('button', { type: 'button', class: 'att-open', 'aria-label': `Open image ${label}`,
          onclick: () => this._openImage(base, a, note) }, img);
        box.append(h('li', { 'data-attachment': a.id, class: 'att-image' }, open, ' ', note));
      } else {
        const note = h('span', { class: 'att-size muted' }, humanSize(a.size));
        const btn = h('button', { type: 'button', class: 'btn small att-file', 'aria-label': `Download ${label}`,
          onclick: () => this._download(base, a, note) }, `📎 ${a.name}`);
        box.append(h('li', { 'data-attachment': a.id }, btn, ' ', note));
      }
    }
    return box;
  }

  /** The full image in a dialog (its bytes fetched with the token, shown from a blob: URL). */
  async _openImage(base, a, note) {
    let url;
    try { url = await this._blobUrl(base); } catch (e) { setText(note, `${humanSize(a.size)} · not loaded: ${e.message}`); return; }
    const close = h('button', { type: 'button', class: 'btn small', autofocus: true }, 'Close');
    const dlg = h('dialog', { class: 'att-dialog', 'aria-label': a.name },
      h('img', { class: 'att-full', alt: a.name, src: url }),
      h('p', {}, h('a', { href: url, download: a.name }, `Download ${a.name}`), ' ', close));
    close.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => dlg.remove());
    this.el.append(dlg);
    dlg.showModal();
  }

  /** A file saved under its name (fetched with the token, then an <a download> of a blob: URL). */
  async _download(base, a, note) {
    try {
      const url = await this._blobUrl(base);
      const link = h('a', { href: url, download: a.name, hidden: true });
      this.el.append(link);
      link.click();
      link.remove();
    } catch (e) {
      setText(note, `${humanSize(a.size)} · not downloaded: ${e.message}`);
    }
  }

  // ---- attachments in the composer ----

  _attachSay(lines) {
    if (!this.attachError) return;
    this.attachError.hidden = !lines.length;
    this.attachError.replaceChildren(...lines.map((t) => h('span', { class: 'attach-error-line' }, t, h('br'))));
  }

  _drawChips() {
    this.chipList.hidden = !this.chips.length;
    this.chipList.replaceChildren(...this.chips.map((c) => c.li));
  }

  _clearChips() {
    this.chips = [];
    if (this.chipList) this._drawChips();
  }

  /** Uploads the chosen files at once (at most MAX_FILES on a message) and shows them as chips. */
  _addFiles(list) {
    if (this.roomId == null || this.text.disabled) return;
    const roomId = this.roomId;
    const errors = [];
    for (const file of list) {
      if (this.chips.length >= MAX_FILES) { errors.push(`${file.name}: not added, at most ${MAX_FILES} files per message`); continue; }
      const state = h('span', { class: 'chip-state muted' }, 'uploading…');
      const chip = { file, att: null };
      const remove = h('button', { type: 'button', class: 'btn small remove', 'aria-label': `Remove ${file.name}`,
        onclick: () => { this.chips = this.chips.filter((c) => c !== chip); this._drawChips(); this.text.focus(); } }, '×');
      chip.li = h('li', { class: 'chip', 'data-state': 'uploading' },
        h('span', { class: 'chip-name' }, file.name), ' ', h('span', { class: 'chip-size muted' }, humanSize(file.size)), ' ', state, remove);
      chip.done = this.files.upload(roomId, file).then((att) => {
        chip.att = att;
        chip.li.dataset.state = 'ready';
        setText(state, '');
      }, (e) => {
        // Refused (415 unsupported_media_type, 413, 422 image_too_large, …): named, with the
        // API's reason, and not sent.
        this.chips = this.chips.filter((c) => c !== chip);
        if (this.roomId === roomId) { this._drawChips(); this._attachSay([...this._errorLines(), `${file.name}: ${e.message || e.code}`]); }
      });
      this.chips.push(chip);
    }
    this._attachSay(errors);
    this._drawChips();
  }

  _errorLines() {
    return [...this.attachError.querySelectorAll('.attach-error-line')].map((e) => e.textContent);
  }

  async _sendWithFiles(text) {
    const roomId = this.roomId;
    this.sending = true;
    this.sendBtn.disabled = true;
    try {
      await Promise.all(this.chips.map((c) => c.done));
      if (this.roomId !== roomId) return;
      const ready = this.chips.filter((c) => c.att);
      if (!ready.length && !text) return;
      if (!ready.length) { this.client.post(roomId, text); this.text.value = ''; this.render(); return; }
      const n = ready.length;
      const body = text || `📎 ${n === 1 ? 'a file' : `${n} files`}`;
      await this.files.post(roomId, body, ready.map((c) => c.att.id));
      if (this.roomId !== roomId) return;
      if (this.text.value.trim() === text) this.text.value = '';
      this.chips = this.chips.filter((c) => !ready.includes(c));
      this._drawChips();
      this._attachSay([]);
      this.list.scrollTop = this.list.scrollHeight;
    } catch (e) {
      if (this.roomId === roomId) this._attachSay([...this._errorLines(), `Not sent: ${e.message || e.code}`]);
    } finally {
      this.sending = false;
      this._writable();
    }
  }

  _delete(btn, m) {
    // Two presses: the first arms the button (no dialog), the second deletes.
    if (!btn.dataset.armed) { btn.dataset.armed = '1'; setText(btn, 'Delete?'); return; }
    this.client.remove(m.id);
  }

  _edit(li, m) {
    const id = `edit-${m.id}`;
    const area = h('textarea', { id, class: 'edit-text', rows: '2', maxlength: '4000' });
    area.value = m.text;
    const done = () => { const it = this.items.get(m.id); if (it) it.v = -1; this.render(); };
    const form = h('form', { class: 'edit-form' },
      h('label', { for: id, class: 'sr-only' }, 'Edit message'), area,
      h('button', { type: 'submit', class: 'btn small' }, 'Save'),
      h('button', { type: 'button', class: 'btn small', onclick: done }, 'Cancel'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = area.value.trim();
      if (t && t !== m.text) this.client.edit(m.id, t);
      done();
    });
    area.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { ev.preventDefault(); done(); }
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
    });
    li.querySelector('.msg-body')?.replaceWith(form);
    area.focus();
  }

  /** Answer message `m` with the next post (null: no longer). */
  _reply(m) {
    this.replyTo = m ? m.id : null;
    setText(this.replyText, m ? `Replying to ${m.authorName}: ${snippet(m.text)}` : '');
    this.replyBar.hidden = !m;
    if (m) this.text.focus();
  }

  _send() {
    const text = this.text.value.trim();
    if (this.roomId == null || this.text.disabled) return;
    if (this.chips.length) { this._closeMentions(); if (!this.sending) this._sendWithFiles(text); return; }
    if (!text) return;
    this.client.post(this.roomId, text, this.replyTo);
    this._reply(null);
    this.text.value = '';
    this._closeMentions();
    this.render();
    this.list.scrollTop = this.list.scrollHeight;
  }

  // ---- @mention autocomplete ----

  _suggest() {
    const caret = this.text.selectionStart;
    const before = this.text.value.slice(0, caret);
    const m = /(^|\s)@([\w.-]{0,32})$/.exec(before);
    const names = m && this.opts.mentionNames ? this.opts.mentionNames(this._room()) : [];
    const q = m ? m[2].toLowerCase() : '';
    const options = names.filter((n) => n.toLowerCase().startsWith(q) && n.toLowerCase() !== q).slice(0, 6);
    if (!m || !options.length) { this._closeMentions(); return; }
    this.mention = { start: caret - m[2].length, options, active: 0 };
    this._drawMentions();
  }

  _drawMentions() {
    const { options, active } = this.mention;
    this.mentions.replaceChildren(...options.map((n, i) => h('li', {
      role: 'option', id: `${this.ids.mentions}-${i}`, 'aria-selected': String(i === active),
      onmousedown: (ev) => { ev.preventDefault(); this._accept(i); },
    }, `@${n}`)));
    this.mentions.hidden = false;
    this.text.setAttribute('aria-expanded', 'true');
    this.text.setAttribute('aria-activedescendant', `${this.ids.mentions}-${active}`);
  }

  _closeMentions() {
    this.mention = null;
    this.mentions.hidden = true;
    this.mentions.replaceChildren();
    this.text.setAttribute('aria-expanded', 'false');
    this.text.removeAttribute('aria-activedescendant');
  }

  _accept(i) {
    const { start, options } = this.mention;
    const caret = this.text.selectionStart;
    const v = this.text.value;
    const insert = `${options[i]} `;
    this.text.value = v.slice(0, start) + insert + v.slice(caret);
    const at = start + insert.length;
    this.text.setSelectionRange(at, at);
    this._closeMentions();
    this.text.focus();
  }

  _key(ev) {
    if (this.mention) {
      const n = this.mention.options.length;
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        this.mention.active = (this.mention.active + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
        this._drawMentions();
        return;
      }
      if (ev.key === 'Enter' || ev.key === 'Tab') { ev.preventDefault(); this._accept(this.mention.active); return; }
      if (ev.key === 'Escape') { ev.preventDefault(); this._closeMentions(); return; }
    }
    if (ev.key === 'Escape' && this.replyTo != null) { ev.preventDefault(); this._reply(null); return; }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); this._send(); }
  }
}
