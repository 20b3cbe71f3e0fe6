// Tests of the listen player's jitter buffer: `node --test web/audio/`
import { test } from "node:test";
import assert from "node:assert/strict";
import { PcmJitterBuffer } from "./pcm-worklet.js";

function chunk(frames, start = 0, channels = 2) {
  const a = new Int16Array(frames * channels);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(16000 * Math.sin((2 * Math.PI * 440 * (start + i)) / 48000));
    a[i * channels] = v;
    if (channels > 1) a[i * channels + 1] = -v;
  }
  return a.buffer;
}

test("waits for the target, then plays the samples in order", () => {
  const b = new PcmJitterBuffer({ targetMs: 20 });
  const l = new Float32Array(128);
  const r = new Float32Array(128);
  b.push(chunk(480)); // 10 ms
  b.pull(l, r);
  assert.equal(b.playing, false);
  assert.ok(l.every((v) => v === 0));
  b.push(chunk(960, 480)); // now 30 ms
  b.pull(l, r);
  assert.equal(b.playing, true);
  for (let i = 0; i < 128; i++) {
    const expect = Math.round(16000 * Math.sin((2 * Math.PI * 440 * i) / 48000)) / 32768;
    assert.ok(Math.abs(l[i] - expect) < 1e-6, `${i}: ${l[i]} vs ${expect}`);
    assert.ok(Math.abs(r[i] + expect) < 1e-6);
  }
});

test("an underrun goes back to buffering and is counted", () => {
  const b = new PcmJitterBuffer({ targetMs: 5 });
  const l = new Float32Array(128);
  const r = new Float32Array(128);
  b.push(chunk(300));
  b.pull(l, r);
  b.pull(l, r);
  b.pull(l, r); // 384 > 300 frames
  assert.equal(b.playing, false);
  assert.equal(b.underruns, 1);
});

test("latency never creeps past maxMs", () => {
  const b = new PcmJitterBuffer({ targetMs: 100, maxMs: 300 });
  for (let i = 0; i < 50; i++) b.push(chunk(960, i * 960)); // 1 s arrives at once
  assert.ok(b.bufferedMs() <= 300, `${b.bufferedMs()}`);
  assert.ok(b.dropped > 0);
});

test("resamples 48 kHz to a 44.1 kHz context", () => {
  const b = new PcmJitterBuffer({ sourceRate: 48000, outputRate: 44100, targetMs: 10 });
  b.push(chunk(4800));
  const l = new Float32Array(441);
  const r = new Float32Array(441);
  const before = b.count;
  b.pull(l, r);
  // 441 output frames consume 480 source frames.
  assert.equal(before - b.count, 480);
  // The sine keeps its frequency: compare with the analytic value at the output times.
  for (let i = 0; i < 441; i += 37) {
    const t = i / 44100;
    const expect = (16000 * Math.sin(2 * Math.PI * 440 * t)) / 32768;
    assert.ok(Math.abs(l[i] - expect) < 0.01, `${i}: ${l[i]} vs ${expect}`);
  }
});

test("mono streams play on both channels", () => {
  const b = new PcmJitterBuffer({ channels: 1, targetMs: 1 });
  b.push(chunk(256, 10, 1));
  const l = new Float32Array(64);
  const r = new Float32Array(64);
  b.pull(l, r);
  assert.deepEqual(Array.from(l), Array.from(r));
  assert.ok(l.some((v) => v !== 0));
});
