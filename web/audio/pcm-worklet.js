// AudioWorklet for the performer page's "listen" button: plays the engine's live stream
// (16-bit little-endian interleaved stereo PCM chunks from /live/v1/audio) through a small
// jitter buffer.
//
// Messages on the node's port:
//   { type: "format", sampleRate, channels }   stream format (default 48000 Hz, 2 channels)
//   { type: "pcm", buffer: ArrayBuffer }        one chunk of s16le interleaved frames
//   { type: "reset" }                           drop everything, buffer again
// It posts { type: "stats", state, bufferedMs, underruns, dropped } about once a second.
//
// Jitter buffer: nothing plays until `targetMs` is buffered; an underrun goes back to
// buffering (silence, no stutter loop); more than `maxMs` buffered drops the oldest audio
// down to the target, so latency never creeps up. The stream's rate is resampled linearly
// to the AudioContext's rate when they differ.
//
// Must never: allocate in process() (all buffers are made when the format is known).

export class PcmJitterBuffer {
  constructor({ sourceRate = 48000, outputRate = 48000, channels = 2, targetMs = 120, maxMs = 400 } = {}) {
    this.targetMs = targetMs;
    this.maxMs = maxMs;
    this.underruns = 0;
    this.dropped = 0;
    this.configure(sourceRate, channels, outputRate);
  }

  configure(sourceRate, channels, outputRate) {
    this.sourceRate = sourceRate;
    this.channels = Math.max(1, Math.min(2, channels | 0));
    this.outputRate = outputRate;
    this.step = sourceRate / outputRate;
    // Two seconds of room; always more than maxMs.
    this.capacity = Math.max(1024, Math.ceil(sourceRate * Math.max(2, (2 * this.maxMs) / 1000)));
    this.left = new Float32Array(this.capacity);
    this.right = new Float32Array(this.capacity);
    this.reset();
  }

  reset() {
    this.read = 0; // integer frame index of the read head (mod capacity)
    this.frac = 0; // fractional part of the read position
    this.count = 0; // frames stored
    this.playing = false;
  }

  bufferedMs() {
    return (this.count * 1000) / this.sourceRate;
  }

  /** Appends one chunk of s16le interleaved PCM (an ArrayBuffer). */
  push(buffer) {
    const ch = this.channels;
    const samples = new Int16Array(buffer, 0, buffer.byteLength >> 1);
    const frames = Math.floor(samples.length / ch);
    for (let i = 0; i < frames; i++) {
      if (this.count === this.capacity) {
        // Full: drop the oldest frame.
        this.read = (this.read + 1) % this.capacity;
        this.count--;
        this.dropped++;
      }
      const w = (this.read + this.count) % this.capacity;
      const l = samples[i * ch] / 32768;
      this.left[w] = l;
      this.right[w] = ch > 1 ? samples[i * ch + 1] / 32768 : l;
      this.count++;
    }
    const maxFrames = Math.floor((this.maxMs * this.sourceRate) / 1000);
    if (this.count > maxFrames) {
      const keep = Math.floor((this.targetMs * this.sourceRate) / 1000);
      const drop = this.count - keep;
      this.read = (this.read + drop) % this.capacity;
      this.count -= drop;
      this.dropped += drop;
    }
  }

  /** Fills the two output channels (Float32Arrays of equal length). */
  pull(outL, outR) {
    const n = outL.length;
    if (!this.playing) {
      if (this.bufferedMs() >= this.targetMs) {
        this.playing = true;
      } else {
        outL.fill(0);
        outR.fill(0);
        return;
      }
    }
    const cap = this.capacity;
    for (let i = 0; i < n; i++) {
      // Linear interpolation needs the frame after the read head.
      if (this.count < 2) {
        outL.fill(0, i);
        outR.fill(0, i);
        this.playing = false;
        this.underruns++;
        return;
      }
      const a = this.read;
      const b = (a + 1) % cap;
      const t = this.frac;
      outL[i] = this.left[a] + (this.left[b] - this.left[a]) * t;
      outR[i] = this.right[a] + (this.right[b] - this.right[a]) * t;
      this.frac += this.step;
      const whole = Math.floor(this.frac);
      this.frac -= whole;
      this.read = (this.read + whole) % cap;
      this.count -= whole;
    }
  }
}

const Base = globalThis.AudioWorkletProcessor ?? class {};

class TuttiPcmPlayer extends Base {
  constructor(options) {
    super(options);
    const o = (options && options.processorOptions) || {};
    const outputRate = globalThis.sampleRate ?? 48000;
    this.buf = new PcmJitterBuffer({
      sourceRate: o.sourceRate ?? 48000,
      outputRate,
      channels: o.channels ?? 2,
      targetMs: o.targetMs ?? 120,
      maxMs: o.maxMs ?? 400,
    });
    this.sinceStats = 0;
    this.port.onmessage = (e) => {
      const m = e.data;
      if (!m) return;
      if (m.type === "pcm" && m.buffer) this.buf.push(m.buffer);
      else if (m.type === "format") this.buf.configure(m.sampleRate ?? 48000, m.channels ?? 2, outputRate);
      else if (m.type === "reset") this.buf.reset();
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const l = out[0];
    const r = out[1] ?? out[0];
    if (l) this.buf.pull(l, r);
    this.sinceStats += l ? l.length : 128;
    if (this.sinceStats >= (globalThis.sampleRate ?? 48000)) {
      this.sinceStats = 0;
      this.port.postMessage({
        type: "stats",
        state: this.buf.playing ? "playing" : "buffering",
        bufferedMs: Math.round(this.buf.bufferedMs()),
        underruns: this.buf.underruns,
        dropped: this.buf.dropped,
      });
    }
    return true;
  }
}

if (typeof globalThis.registerProcessor === "function") {
  globalThis.registerProcessor("tutti-pcm-player", TuttiPcmPlayer);
}
