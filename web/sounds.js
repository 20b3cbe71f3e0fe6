// Tutti's own short sounds for `/play <sound>` in chat (issue 12): each is synthesized here
// with Web Audio from a few oscillators, a noise buffer and envelopes, so nothing is
// downloaded and no sample file is shipped. The names are the server's list
// (crates/tutti-chat/src/sounds.rs); a Chromium test renders every one offline and checks it
// sounds and ends.
//
// Must never: play a sound the page did not get live (catch-up replays none), or throw when
// the device has no audio (playSound then does nothing).

export const SOUNDS = ['applause', 'bell', 'crickets', 'drumroll', 'gong', 'horn', 'rimshot', 'tada', 'trombone', 'whoosh'];

/** White noise (1 s, a fixed seed so renders repeat), cached per context. */
const noiseOf = new WeakMap();
function noise(ctx) {
  let b = noiseOf.get(ctx);
  if (!b) {
    b = ctx.createBuffer(1, ctx.sampleRate, ctx.sampleRate);
    const d = b.getChannelData(0);
    let s = 0x2545f491;
    for (let i = 0; i < d.length; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; d[i] = ((s >>> 0) / 4294967296) * 2 - 1; }
    noiseOf.set(ctx, b);
  }
  return b;
}

/** A gain node with an attack/decay envelope from `t`: peak `g` after `a` s, down to silence by `t + d`. */
function env(ctx, dest, t, g, a, d) {
  const e = ctx.createGain();
  e.gain.setValueAtTime(0, t);
  e.gain.linearRampToValueAtTime(g, t + a);
  e.gain.exponentialRampToValueAtTime(0.0001, t + d);
  e.gain.setValueAtTime(0, t + d + 0.01);
  e.connect(dest);
  return e;
}

function tone(ctx, dest, type, freq, t, g, a, d) {
  const o = ctx.createOscillator();
  o.type = type; o.frequency.setValueAtTime(freq, t);
  o.connect(env(ctx, dest, t, g, a, d));
  o.start(t); o.stop(t + d + 0.02);
  return o;
}

function hiss(ctx, dest, t, g, d, filter = 'bandpass', freq = 2000, q = 1) {
  const src = ctx.createBufferSource();
  src.buffer = noise(ctx); src.loop = true;
  const f = ctx.createBiquadFilter();
  f.type = filter; f.frequency.setValueAtTime(freq, t); f.Q.value = q;
  src.connect(f); f.connect(env(ctx, dest, t, g, 0.003, d));
  src.start(t, (t * 7919) % 0.9); src.stop(t + d + 0.02);
  return f;
}

/** A brass-like note: a sawtooth through a low-pass that opens with the envelope. */
function brass(ctx, dest, freq, t, d, g = 0.18, vibrato = 0) {
  const o = ctx.createOscillator();
  o.type = 'sawtooth'; o.frequency.setValueAtTime(freq, t);
  if (vibrato) {
    const lfo = ctx.createOscillator(); const depth = ctx.createGain();
    lfo.frequency.value = 5.5; depth.gain.value = freq * vibrato;
    lfo.connect(depth); depth.connect(o.frequency); lfo.start(t); lfo.stop(t + d + 0.02);
  }
  const f = ctx.createBiquadFilter();
  f.type = 'lowpass'; f.frequency.setValueAtTime(freq * 2, t); f.frequency.linearRampToValueAtTime(freq * 6, t + 0.08);
  o.connect(f); f.connect(env(ctx, dest, t, g, 0.04, d));
  o.start(t); o.stop(t + d + 0.02);
}

/** Builds sound `name` in `ctx` from `t` (seconds on its clock) into `dest`; its length in s. */
export function buildSound(ctx, dest, name, t = ctx.currentTime) {
  switch (name) {
    case 'applause': {
      let seed = 12345;
      for (let i = 0; i < 90; i++) {
        seed = (seed * 9301 + 49297) % 233280; // a fixed scatter of claps over 2 s
        const x = seed / 233280;
        hiss(ctx, dest, t + x * 1.9, 0.25 * (1 - i / 120), 0.05, 'bandpass', 1200 + 1500 * x, 1.5);
      }
      return 2.0;
    }
    case 'bell':
      [[1, 0.3], [2.76, 0.12], [5.4, 0.06], [8.93, 0.03]].forEach(([k, g]) => tone(ctx, dest, 'sine', 880 * k, t, g, 0.005, 1.6 / Math.sqrt(k)));
      return 1.6;
    case 'crickets':
      for (let c = 0; c < 6; c++) for (let p = 0; p < 3; p++) tone(ctx, dest, 'sine', 4500, t + c * 0.25 + p * 0.04, 0.08, 0.005, 0.03);
      return 1.6;
    case 'drumroll': {
      for (let i = 0; i < 36; i++) hiss(ctx, dest, t + i * 0.04, 0.06 + 0.2 * (i / 36), 0.05, 'lowpass', 900, 0.7);
      tone(ctx, dest, 'sine', 60, t + 1.45, 0.5, 0.002, 0.5);
      hiss(ctx, dest, t + 1.45, 0.3, 0.8, 'highpass', 5000, 0.5);
      return 2.3;
    }
    case 'gong':
      [[1, 0.3], [1.48, 0.2], [2.03, 0.12], [2.9, 0.08], [4.2, 0.05]].forEach(([k, g]) => tone(ctx, dest, 'sine', 98 * k, t, g, 0.02, 2.6));
      return 2.6;
    case 'horn':
      brass(ctx, dest, 233, t, 1.0, 0.2, 0.01);
      brass(ctx, dest, 349, t, 1.0, 0.12, 0.01);
      return 1.0;
    case 'rimshot': {
      const drum = (f, at) => {
        const o = ctx.createOscillator(); o.type = 'sine';
        o.frequency.setValueAtTime(f * 1.6, at); o.frequency.exponentialRampToValueAtTime(f, at + 0.08);
        o.connect(env(ctx, dest, at, 0.5, 0.002, 0.25)); o.start(at); o.stop(at + 0.3);
      };
      drum(180, t); drum(130, t + 0.22);
      hiss(ctx, dest, t + 0.5, 0.35, 0.9, 'highpass', 6000, 0.5);
      return 1.4;
    }
    case 'tada':
      [523, 659, 784].forEach((f) => brass(ctx, dest, f, t, 0.16, 0.12));
      [523, 659, 784, 1047].forEach((f) => brass(ctx, dest, f, t + 0.2, 1.2, 0.1, 0.006));
      return 1.4;
    case 'trombone':
      [[311, 0], [294, 0.45], [277, 0.9]].forEach(([f, at]) => brass(ctx, dest, f, t + at, 0.4, 0.2));
      brass(ctx, dest, 262, t + 1.35, 1.1, 0.2, 0.025);
      return 2.45;
    case 'whoosh': {
      const f = hiss(ctx, dest, t, 0.5, 0.9, 'bandpass', 300, 2);
      f.frequency.exponentialRampToValueAtTime(4000, t + 0.45);
      f.frequency.exponentialRampToValueAtTime(500, t + 0.9);
      return 0.9;
    }
    default:
      return 0;
  }
}

/** Renders a sound offline (mono) at `sampleRate`: its samples. */
export async function renderSound(name, sampleRate = 48000) {
  const ctx = new OfflineAudioContext(1, Math.ceil(3 * sampleRate), sampleRate);
  buildSound(ctx, ctx.destination, name, 0);
  return (await ctx.startRendering()).getChannelData(0);
}

let live = null;
/** Plays a sound now on the page's own context (made on first use); false when it cannot. */
export function playSound(name) {
  if (!SOUNDS.includes(name)) return false;
  try {
    const Ctx = globalThis.AudioContext || globalThis.webkitAudioContext;
    if (!Ctx) return false;
    live ??= new Ctx();
    if (live.state === 'suspended') live.resume().catch(() => {});
    buildSound(live, live.destination, name, live.currentTime + 0.02);
    return true;
  } catch {
    return false;
  }
}
