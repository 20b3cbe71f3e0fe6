// The performer page's "listen" player: opens the engine's live audio WebSocket
// (/live/v1/audio, performers only) and plays it through the `tutti-pcm-player`
// AudioWorklet (pcm-worklet.js) with a small jitter buffer.
//
//   import { startListening, stop, isListening } from "/web/audio/listen.js";
//   button.onclick = () => isListening() ? stop()
//     : startListening("/live/v1/audio", { token, onState });
//
// Call startListening from a user gesture (a click): browsers only start audio then.
// Protocol (docs/protocol.md, "Listening"): the first frame we send is a performer join,
// {"type":"join","role":"performer","token":...}; the server answers with a text frame
// {"type":"audio_format","sample_rate":48000,"channels":2,"encoding":"s16le"} and then binary
// chunks of s16le interleaved PCM, or with an `error` frame (`unauthorized`, `internal`) and
// closes. An error ends the session: onState("error", frame) is the last call.
// Must never: retry on its own (the performer decides), or start audio outside a gesture.

let session = null;

function absoluteWsUrl(url) {
  if (/^wss?:\/\//.test(url)) return url;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${url.startsWith("/") ? "" : "/"}${url}`;
}

/** The first frame on the audio socket. */
export function joinFrame(token) {
  const f = { type: "join", role: "performer" };
  if (token) f.token = String(token);
  return f;
}

/**
 * What a text frame from the audio socket means:
 * {kind: "format", sampleRate, channels} | {kind: "error", code, message} | {kind: "ignore"}.
 */
export function readTextFrame(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: "ignore" };
  }
  if (!msg || typeof msg !== "object") return { kind: "ignore" };
  if (msg.type === "error") {
    return { kind: "error", code: String(msg.code ?? "internal"), message: String(msg.message ?? "") };
  }
  if (msg.type === "audio_format" || (msg.type == null && msg.sample_rate)) {
    if (msg.encoding != null && msg.encoding !== "s16le") {
      return { kind: "error", code: "unsupported", message: `unsupported audio encoding ${msg.encoding}` };
    }
    const sampleRate = Number(msg.sample_rate) > 0 ? Number(msg.sample_rate) : 48000;
    const channels = Number(msg.channels) === 1 ? 1 : 2;
    return { kind: "format", sampleRate, channels };
  }
  return { kind: "ignore" };
}

function makeContext() {
  const Ctx = globalThis.AudioContext || globalThis.webkitAudioContext;
  try {
    return new Ctx({ sampleRate: 48000, latencyHint: "interactive" });
  } catch {
    // Some browsers refuse a fixed rate; the worklet resamples.
    return new Ctx({ latencyHint: "interactive" });
  }
}

/**
 * Starts listening. Resolves once audio is set up and the socket is opening.
 * @param {string} wsUrl  e.g. "/live/v1/audio" or a full ws(s):// URL
 * @param {{token?: string, targetMs?: number, maxMs?: number,
 *          onState?: (state: string, info?: object) => void}} [opts]
 *   onState receives "connecting", "buffering", "playing", "closed" or "error" (with the
 *   error frame, or {code, message}); "closed" and "error" end the session.
 */
export async function startListening(wsUrl, opts = {}) {
  stop();
  const onState = opts.onState || (() => {});
  const mine = { ctx: null, ws: null, node: null, onState };
  session = mine;
  // Ends this session (if still current) and reports why, once.
  const finish = (state, info) => {
    if (session !== mine) return;
    stop();
    onState(state, info);
  };
  try {
    const ctx = makeContext();
    mine.ctx = ctx;
    await ctx.audioWorklet.addModule(new URL("./pcm-worklet.js", import.meta.url));
    if (session !== mine) return; // stopped meanwhile
    const node = new AudioWorkletNode(ctx, "tutti-pcm-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
      processorOptions: {
        sourceRate: 48000,
        channels: 2,
        targetMs: opts.targetMs ?? 120,
        maxMs: opts.maxMs ?? 400,
      },
    });
    node.connect(ctx.destination);
    node.port.onmessage = (e) => {
      if (e.data && e.data.type === "stats" && session === mine) onState(e.data.state, e.data);
    };
    mine.node = node;
    await ctx.resume();
    if (session !== mine) return;
    if (ctx.state !== "running") throw new Error(`the audio context is ${ctx.state}`);
  } catch (err) {
    if (session !== mine) return; // stopped meanwhile: closing the context may fail the setup
    finish("error", { code: "audio", message: String(err && err.message ? err.message : err) });
    throw err;
  }

  const ws = new WebSocket(absoluteWsUrl(wsUrl));
  ws.binaryType = "arraybuffer";
  mine.ws = ws;
  onState("connecting");
  ws.onopen = () => {
    if (session !== mine) return;
    ws.send(JSON.stringify(joinFrame(opts.token)));
    onState("buffering");
  };
  ws.onmessage = (e) => {
    if (session !== mine || !mine.node) return;
    if (typeof e.data === "string") {
      const m = readTextFrame(e.data);
      if (m.kind === "format") {
        mine.node.port.postMessage({ type: "format", sampleRate: m.sampleRate, channels: m.channels });
      } else if (m.kind === "error") {
        finish("error", { code: m.code, message: m.message });
      }
      return;
    }
    // Transfer the chunk to the audio thread without copying.
    mine.node.port.postMessage({ type: "pcm", buffer: e.data }, [e.data]);
  };
  ws.onerror = () => finish("error", { code: "network", message: "audio stream connection failed" });
  ws.onclose = (e) => finish("closed", { code: e.code, reason: e.reason });
}

/** Stops listening: closes the socket and the audio context. Safe to call any time. */
export function stop() {
  const s = session;
  session = null;
  if (!s) return;
  if (s.ws && s.ws.readyState <= 1) s.ws.close(1000, "listener stopped");
  if (s.node) s.node.disconnect();
  if (s.ctx) s.ctx.close().catch(() => {});
}

/** Whether a listening session is active. */
export function isListening() {
  return session !== null;
}
