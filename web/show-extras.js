// show-extras.js — the live-show extras of a show's room (docs/protocol.md, "Live-show extras"),
// drawn from a ChatClient: the latest announcement as a banner (aria-live, so a screen reader
// says it), the pinned messages, the questions most votes first with an upvote button each
// (pressed when this user voted; pressing again takes the vote back) and a form to ask one.
// With `crew` (the `/chat` page): a form to announce, "Mark answered" on open questions, and a
// queue of the room's recent messages with Approve / Reject for the big screen's wall and Pin /
// Unpin. The server checks every right; crew buttons are only shown where they may work.
// The pins and the banner include what the room's `chat_extras` stated when the page first
// followed it (a pin or an announcement older than the events the page loaded; chat.js keeps
// them as standing messages), so a page opened late or reloaded shows them too.
//
// A message's body is the server's sanitized `html`; names and other texts go in as text.
//
// Test hooks: .show-extras  #announcement (role=status)  [data-pinned=ID]  [data-question=ID]
//   [data-vote=ID] (aria-pressed)  [data-votes=ID]  [data-answer=ID]  #ask-input #ask-form
//   #announce-input #announce-form  [data-queue=ID]  [data-approve=ID] [data-reject=ID]
//   [data-pin=ID]

import { h } from './ui.js';

/** The message's body: the server's sanitized HTML (never built from user text here). */
function body(m, cls = 'body') {
  const el = h('span', { class: cls });
  el.innerHTML = m.html; // rendered and sanitized by the server (tutti-chat)
  return el;
}

export class ShowExtras {
  constructor(chat, { crew = false } = {}) {
    this.chat = chat;
    this.crew = crew;
    this.roomId = null;
    this.shownAnnouncement = null;
    this.banner = h('div', { id: 'announcement', class: 'announce-banner', role: 'status', 'aria-live': 'assertive', hidden: true });
    this.pins = h('ul', { class: 'pins', 'aria-label': 'Pinned messages' });
    this.list = h('ol', { class: 'questions', 'aria-label': 'Questions, most votes first' });
    this.askInput = h('input', { id: 'ask-input', type: 'text', maxlength: '4000', autocomplete: 'off', 'aria-label': 'Your question' });
    const askForm = h('form', { id: 'ask-form', class: 'ask' }, this.askInput, h('button', { type: 'submit' }, 'Ask'));
    askForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = this.askInput.value.trim();
      if (!text || this.roomId == null) return;
      this.chat.ask(this.roomId, text);
      this.askInput.value = '';
    });
    const parts = [
      this.banner,
      h('section', { class: 'pinned', 'aria-label': 'Pinned' }, this.pins),
      h('section', { class: 'qa', 'aria-labelledby': 'qa-title' },
        h('h3', { id: 'qa-title' }, 'Questions'), askForm, this.list),
    ];
    if (crew) {
      this.announceInput = h('input', { id: 'announce-input', type: 'text', maxlength: '500', autocomplete: 'off', 'aria-label': 'Announcement to every phone' });
      const announceForm = h('form', { id: 'announce-form', class: 'announce' }, this.announceInput, h('button', { type: 'submit' }, 'Announce'));
      announceForm.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const text = this.announceInput.value.trim();
        if (!text || this.roomId == null) return;
        this.chat.announce(this.roomId, text);
        this.announceInput.value = '';
      });
      this.queue = h('ul', { class: 'wall-queue', 'aria-label': 'Recent messages for the wall' });
      parts.push(h('section', { class: 'crew-extras', 'aria-labelledby': 'crew-extras-title' },
        h('h3', { id: 'crew-extras-title' }, 'Show controls'), announceForm,
        h('h4', {}, 'Wall and pins'), this.queue));
    }
    this.el = h('div', { class: 'show-extras', hidden: true }, ...parts);
    const redraw = ({ room }) => { if (room.id === this.roomId) this.render(); };
    chat.on('room', redraw).on('extras', redraw).on('announcement', redraw);
  }

  /** Show the extras of this room (a show's room), or hide them (null). */
  show(roomId) {
    this.roomId = roomId;
    this.el.hidden = roomId == null;
    this.render();
  }

  render() {
    if (this.roomId == null) return;
    const chat = this.chat;
    const a = chat.latestAnnouncement(this.roomId);
    this.banner.hidden = !a;
    if (a && a.id !== this.shownAnnouncement) {
      this.shownAnnouncement = a.id;
      this.banner.replaceChildren(h('strong', {}, 'Announcement: '), body(a));
    }
    this.pins.replaceChildren(...chat.pinned(this.roomId).map((m) => h('li', { 'data-pinned': m.id },
      h('span', { class: 'sr-only' }, 'Pinned: '), h('span', { class: 'who' }, m.authorName), ' ', body(m),
      this.crew ? h('button', { type: 'button', 'data-pin': m.id, 'aria-label': `Unpin the message of ${m.authorName}`, onclick: () => chat.pin(m.id, true) }, 'Unpin') : null)));
    this.list.replaceChildren(...chat.questions(this.roomId).map((m) => {
      const votes = h('span', { class: 'votes num', 'data-votes': m.id }, String(m.votes));
      const vote = h('button', {
        type: 'button', class: 'vote', 'data-vote': m.id, 'aria-pressed': String(!!m.voted),
        'aria-label': `${m.voted ? 'Take back your vote for' : 'Upvote'} the question of ${m.authorName} (${m.votes} votes)`,
        onclick: () => chat.vote(m.id, !!m.voted),
      }, '▲');
      const answered = m.answered ? h('span', { class: 'answered' }, 'answered') : null;
      const answer = this.crew && !m.answered
        ? h('button', { type: 'button', 'data-answer': m.id, onclick: () => chat.answered(m.id) }, 'Mark answered')
        : null;
      return h('li', { 'data-question': m.id, class: m.answered ? 'is-answered' : null },
        vote, votes, ' ', h('span', { class: 'who' }, m.authorName), ' ', body(m), ' ', answered, answer);
    }));
    if (this.crew) {
      const recent = [...chat.room(this.roomId).messages.values()]
        .filter((m) => !m.deleted && !m.held && m.flag !== 'announcement')
        .sort((x, y) => y.postedSeq - x.postedSeq)
        .slice(0, 10);
      this.queue.replaceChildren(...recent.map((m) => h('li', { 'data-queue': m.id, 'data-wall': m.wall || 'undecided' },
        h('span', { class: 'who' }, m.authorName), ' ', body(m), ' ',
        m.wall ? h('span', { class: 'wall-state' }, m.wall === 'approved' ? 'on the wall' : 'rejected') : null,
        m.wall !== 'approved' ? h('button', { type: 'button', 'data-approve': m.id, 'aria-label': `Approve the message of ${m.authorName} for the wall`, onclick: () => chat.approve(m.id) }, 'Approve') : null,
        m.wall !== 'rejected' ? h('button', { type: 'button', 'data-reject': m.id, 'aria-label': `Keep the message of ${m.authorName} off the wall`, onclick: () => chat.approve(m.id, true) }, 'Reject') : null,
        m.pinned ? null : h('button', { type: 'button', 'data-pin': m.id, 'aria-label': `Pin the message of ${m.authorName}`, onclick: () => chat.pin(m.id) }, 'Pin'))));
    }
  }
}

/** The wall on the big screen: the approved messages, newest last, the latest few. */
export function renderWall(el, chat, roomId, max = 8) {
  const items = chat.wall(roomId).slice(-max);
  el.replaceChildren(...items.map((m) => h('li', { 'data-wall-message': m.id },
    h('span', { class: 'who' }, m.authorName), body(m, 'wall-body'))));
  el.hidden = items.length === 0;
}

