// memory-panel.js — the performer dashboard's Memory panel: live suggestions from past shows
// of this piece (what the crowd did next from moments like now, what the patterns say about
// this point), with Dismiss and ratings (each recorded as a step of the show's episode), and
// the state of the memory's circuit breaker around the store. Polls
// GET /api/v1/memory/suggestions?show=CODE once a second with the performer token; the server
// computes suggestions at most once a second, off the tick.
//
// Test hooks:
//   #memory[data-breaker=closed|open|half_open]   #memory-state (status text)
//   #suggestions li[data-id=ID][data-kind=trend|pattern|prior]  .sugg-text
//   li button[data-action=dismiss|up|down]

import { h, setText } from './ui.js';

/** Starts the panel in `root`; `token()` and `show()` give the current token and show code. */
export function memoryPanel(root, token, show) {
  const state = root.querySelector('#memory-state');
  const list = root.querySelector('#suggestions');
  let timer = 0;
  let busy = false;

  async function feedback(id, body) {
    const t = token();
    const code = show();
    if (!t || !code) return;
    try {
      await fetch(`/api/v1/memory/suggestions/${encodeURIComponent(id)}?show=${encodeURIComponent(code)}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch { /* the next poll shows what stands */ }
    poll();
  }

  function item(s) {
    const support = s.support && s.support[1] ? ` (${s.support[0]} of ${s.support[1]})` : '';
    return h('li', { 'data-id': s.id, 'data-kind': s.kind, title: s.why },
      h('span', { class: 'sugg-text' }, `${s.text}${s.kind === 'trend' ? '' : support}`),
      h('span', { class: 'sugg-actions' },
        h('button', { class: 'btn small', type: 'button', 'data-action': 'up', 'aria-label': 'Useful', onclick: () => feedback(s.id, { action: 'rate', rating: 1 }) }, '👍'),
        h('button', { class: 'btn small', type: 'button', 'data-action': 'down', 'aria-label': 'Not useful', onclick: () => feedback(s.id, { action: 'rate', rating: 0 }) }, '👎'),
        h('button', { class: 'btn small', type: 'button', 'data-action': 'dismiss', onclick: () => feedback(s.id, { action: 'dismiss' }) }, 'Dismiss')));
  }

  function render(body) {
    root.dataset.breaker = body.breaker || 'closed';
    const e = body.entry;
    const past = e ? e.past_episodes : 0;
    const store = body.breaker === 'closed' ? '' : ` · store ${body.breaker.replace('_', '-')}, ${body.pending_writes} writes waiting`;
    setText(state, `${past} past show${past === 1 ? '' : 's'} of this piece${store}`);
    const items = e ? e.suggestions : [];
    const sig = JSON.stringify(items.map((s) => [s.id, s.text]));
    if (list.dataset.sig === sig) return;
    list.dataset.sig = sig;
    list.replaceChildren(...(items.length ? items.map(item) : [h('li', { class: 'muted' }, 'Nothing to suggest right now.')]));
  }

  async function poll() {
    const t = token();
    const code = show();
    if (busy || !t || !code) return;
    busy = true;
    try {
      const r = await fetch(`/api/v1/memory/suggestions?show=${encodeURIComponent(code)}`, {
        headers: { Authorization: `Bearer ${t}` },
      });
      if (r.ok) {
        root.hidden = false;
        render(await r.json());
      } else if (r.status === 503) {
        root.hidden = true; // the memory is off on this server
      }
    } catch { /* offline: try again in a second */ }
    busy = false;
  }

  return {
    start() { clearInterval(timer); poll(); timer = setInterval(poll, 1000); },
    stop() { clearInterval(timer); },
  };
}
