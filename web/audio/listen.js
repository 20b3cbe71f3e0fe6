// The performer page's "listen" player: opens the engine's live audio WebSocket
// (/live/v1/audio, performers only) and plays it through the `tutti-pcm-player`
// AudioWorklet (pcm-worklet.js) with a small jitter buffer.
//
//   import { startListening, stop, isListening } from "/audio/listen.js";
//   button.onclick = () => isListening() ? stop() : startListening("/live/v1/audio", { onState });
//
// Call startListening from a user gesture (a click): browsers only start audio then.
// The server may send a JSON text frame {"type":"audio_format","sample_rate":48000,
// "channels":2,"encoding":"s16le"} before the binary chunks (s16le interleaved PCM);
// without it 48 kHz stereo is assumed.

let session = null;

function absoluteWsUrl(url) {
  if (/^wss?:\/\//.test(url)) return url;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${url.startsWith("/") ? "" : "/"}${url}`;
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
 * @param {{targetMs?: number, maxMs?: number, onState?: (state: string, info?: object) => void}} [opts]
 *   onState receives "connecting", "buffering", "playing", "closed" or "error".
 */
export async function startListening(wsUrl, opts = {}) {
  stop();
  const onState = opts.onState || (() => {});
  const ctx = makeContext();
  const mine = { ctx, ws: null, node: null, onState };
  session = mine;
  try {
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
  } catch (err) {
    if (session === mine) stop();
    onState("error", { message: String(err) });
    throw err;
  }

  const ws = new WebSocket(absoluteWsUrl(wsUrl));
  ws.binaryType = "arraybuffer";
  mine.ws = ws;
  onState("connecting");
  ws.onopen = () => session === mine && onState("buffering");
  ws.onmessage = (e) => {
    if (session !== mine || !mine.node) return;
    if (typeof e.data === "string") {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg && msg.sample_rate) {
        mine.node.port.postMessage({ type: "format", sampleRate: msg.sample_rate, channels: msg.channels ?? 2 });
      } else if (msg && msg.type === "error") {
        onState("error", msg);
      }
      return;
    }
    // Transfer the chunk to the audio thread without copying.
    mine.node.port.postMessage({ type: "pcm", buffer: e.data }, [e.data]);
  };
  ws.onerror = () => session === mine && onState("error", { message: "audio stream connection failed" });
  ws.onclose = (e) => {
    if (session === mine) {
      stop();
      onState("closed", { code: e.code, reason: e.reason });
    }
  };
}

/** Stops listening: closes the socket and the audio context. Safe to call any time. */
export function stop() {
  const s = session;
  session = null;
  if (!s) return;
  if (s.ws && s.ws.readyState <= 1) s.ws.close(1000, "listener stopped");
  if (s.node) s.node.disconnect();
  s.ctx.close().catch(() => {});
}

/** Whether a listening session is active. */
export function isListening() {
  return session !== null;
}
