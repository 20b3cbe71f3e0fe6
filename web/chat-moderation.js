// chat-moderation.js — a room's settings and moderation on the `/chat` page, for those who
// moderate it (an admin, a member of the room's ensemble): slow mode, the word filter, the
// audience delay and, in a show's room, whether `/play` sounds also play through the show's
// sound (`PUT /chat/rooms/{id}/settings`), each member's restriction (mute,
// shadow-mute, ban, lifted; `PUT`/`DELETE /chat/rooms/{id}/restrictions/{user}`), and the
// room's audit log (`GET /chat/rooms/{id}/moderation-log`). The panel stays hidden for
// everyone else: the server answers their settings with `filter: null`, and would refuse
// every change anyway. Every refusal is shown in the API's own words.
//
// Names, reasons and filter words go in as text, never as HTML.
//
// Test hooks: details.moderation (hidden unless the user moderates)  #mod-settings (form:
//   slow_mode_s, audience_delay_s, filter, sounds_through_show — shown in show rooms only)
//   #mod-status (role=status)
//   [data-restrict=USER_ID] (a select: none, mute, shadow_mute, ban)  #mod-log li

import { h, setText } from './ui.js';

const KINDS = [['', 'no restriction'], ['mute', 'muted'], ['shadow_mute', 'shadow-muted'], ['ban', 'banned']];

export class RoomModeration {
  /** api(method, path, body) → data (throws the API's error); nameOf(userId) → a name. */
  constructor(api, nameOf) {
    this.api = api;
    this.nameOf = nameOf;
    this.roomId = null;
    this.status = h('p', { id: 'mod-status', class: 'muted', role: 'status' });
    this.slow = h('input', { name: 'slow_mode_s', type: 'number', min: '0', max: '3600', step: '1', inputmode: 'numeric' });
    this.delay = h('input', { name: 'audience_delay_s', type: 'number', min: '0', max: '60', step: '1', inputmode: 'numeric' });
    this.filter = h('textarea', { name: 'filter', rows: '3', maxlength: '20000' });
    this.sounds = h('input', { name: 'sounds_through_show', type: 'checkbox' });
    this.soundsRow = h('label', { hidden: true }, this.sounds,
      ' Play /play sounds through the show\'s sound too (at most one every 2 s)');
    this.form = h('form', { id: 'mod-settings', class: 'mod-settings' },
      h('label', {}, 'Slow mode (seconds between one person\'s messages, 0 for off) ', this.slow),
      h('label', {}, 'Hold audience messages for (seconds, 0 for off; crew can remove them first) ', this.delay),
      h('label', {}, 'Word filter (one word or phrase a line) ', this.filter),
      this.soundsRow,
      h('button', { type: 'submit', class: 'btn small' }, 'Save settings'));
    this.form.addEventListener('submit', (ev) => { ev.preventDefault(); this._save(); });
    this.people = h('ul', { class: 'mod-people', 'aria-label': 'Members and their restrictions' });
    this.log = h('ol', { id: 'mod-log', class: 'mod-log', 'aria-label': 'Moderation log, newest first' });
    this.el = h('details', { class: 'moderation panel', hidden: true },
      h('summary', {}, 'Room settings and moderation'),
      this.form, h('h3', {}, 'People'), this.people, h('h3', {}, 'Log'), this.log, this.status);
  }

  say(text) { setText(this.status, text); }

  /** Shows the panel for room `id` (null: none) if the user moderates it. */
  async show(id) {
    this.roomId = id;
    this.el.hidden = true;
    this.say('');
    if (id == null) return;
    let s; let room;
    try {
      [s, room] = await Promise.all([
        this.api('GET', `/chat/rooms/${id}/settings`),
        // Only to know whether it is a show's room; the panel works without it.
        this.api('GET', `/chat/rooms/${id}`).catch(() => null),
      ]);
    } catch { return; }
    if (this.roomId !== id || s.filter == null) return; // not a moderator here
    this.isShow = room?.kind === 'show';
    this.soundsRow.hidden = !this.isShow;
    this.sounds.checked = Boolean(s.sounds_through_show);
    this.slow.value = String(s.slow_mode_s);
    this.delay.value = String(s.audience_delay_s ?? 0);
    this.filter.value = s.filter.join('\n');
    this.el.hidden = false;
    await Promise.all([this._people(id), this._log(id)]);
  }

  async _save() {
    const id = this.roomId;
    const body = {
      slow_mode_s: Number(this.slow.value || 0),
      audience_delay_s: Number(this.delay.value || 0),
      filter: this.filter.value.split('\n').map((w) => w.trim()).filter(Boolean),
      // Only a show's room may turn it on; others always send false.
      sounds_through_show: Boolean(this.isShow && this.sounds.checked),
    };
    try {
      const s = await this.api('PUT', `/chat/rooms/${id}/settings`, body);
      this.filter.value = s.filter.join('\n');
      this.sounds.checked = Boolean(s.sounds_through_show);
      const sounds = this.isShow ? `, sounds through the show ${s.sounds_through_show ? 'on' : 'off'}` : '';
      this.say(`Saved: slow mode ${s.slow_mode_s} s, audience delay ${s.audience_delay_s} s, ${s.filter.length} filtered${sounds}.`);
      this._log(id);
    } catch (e) {
      this.say(`Not saved: ${e.message || e.code}`);
    }
  }

  async _people(id) {
    let members; let restrictions;
    try {
      [members, restrictions] = await Promise.all([
        this.api('GET', `/chat/rooms/${id}/members`),
        this.api('GET', `/chat/rooms/${id}/restrictions`),
      ]);
    } catch (e) { this.say(`${e.code}: ${e.message}`); return; }
    if (this.roomId !== id) return;
    const current = new Map(restrictions.items.map((r) => [r.user_id, r.kind]));
    const rows = members.items.slice(0, 200).map((m) => {
      const label = `Restriction of ${this.nameOf(m.user_id)}`;
      const pick = h('select', { 'data-restrict': String(m.user_id), 'aria-label': label },
        KINDS.map(([v, text]) => h('option', { value: v }, text)));
      pick.value = current.get(m.user_id) || '';
      pick.addEventListener('change', () => this._restrict(id, m.user_id, pick));
      return h('li', {}, h('span', {}, this.nameOf(m.user_id)), ' ', pick);
    });
    this.people.replaceChildren(...rows);
  }

  async _restrict(id, user, pick) {
    const kind = pick.value;
    try {
      if (kind) await this.api('PUT', `/chat/rooms/${id}/restrictions/${user}`, { kind });
      else await this.api('DELETE', `/chat/rooms/${id}/restrictions/${user}`);
      this.say(kind ? `${this.nameOf(user)} is now ${KINDS.find(([v]) => v === kind)[1]}.` : `${this.nameOf(user)}'s restriction lifted.`);
      this._log(id);
    } catch (e) {
      this.say(`Not changed: ${e.message || e.code}`);
      this._people(id); // show what holds
    }
  }

  async _log(id) {
    let page;
    try { page = await this.api('GET', `/chat/rooms/${id}/moderation-log?limit=20`); } catch { return; }
    if (this.roomId !== id) return;
    this.log.replaceChildren(...page.items.map((e) => h('li', {},
      `${new Date(e.at_ms).toLocaleTimeString()} · ${this.nameOf(e.actor_id)}: ${e.action.replace(/_/g, ' ')}`
      + (e.target_user_id != null ? ` ${this.nameOf(e.target_user_id)}` : '')
      + (e.detail?.kind ? ` (${e.detail.kind.replace('_', '-')})` : '')
      + (e.reason ? ` — ${e.reason}` : ''))));
  }
}
