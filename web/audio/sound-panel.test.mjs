// Tests of the Sound panel's pure parts (scales, summary text, peak hold): `node --test web/audio/`
// The drawing and wiring run in a real browser: crates/tutti-server/tests/browser_audio.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { meterFraction, dbText, summaryText, validMonitor, bandX, PeakHold } from "./sound-panel.js";

const frame = {
  type: "monitor", seq: 912, time_s: 30.4, peak: [0.41, 0.39], rms: [0.12, 0.11],
  peak_dbfs: [-7.7, -8.2], rms_dbfs: [-18.4, -19.2],
  bands_dbfs: [-62.0, -48.5, -40.1, -35.0], bands_hz: [23.1, 34.6, 51.9, 77.8],
};

test("meters span -60..0 dBFS and clamp outside", () => {
  assert.equal(meterFraction(-60), 0);
  assert.equal(meterFraction(0), 1);
  assert.equal(meterFraction(-30), 0.5);
  assert.equal(meterFraction(-120), 0);
  assert.equal(meterFraction(3), 1);
  assert.equal(meterFraction(NaN), 0);
  assert.equal(meterFraction(-48, -96), 0.5);
});

test("the summary reads levels in whole dB with a real minus sign", () => {
  assert.equal(summaryText(frame), "L \u221218 dBFS, R \u221219 dBFS (RMS); peaks L \u22128 dBFS, R \u22128 dBFS");
  assert.equal(dbText(-120), "silent");
  assert.equal(dbText(0.2), "0 dBFS");
});

test("frames without the drawn fields are refused", () => {
  assert.equal(validMonitor(frame), frame);
  assert.equal(validMonitor({ ...frame, rms_dbfs: [null, -3] }), null);
  assert.equal(validMonitor({ ...frame, peak_dbfs: [-3] }), null);
  assert.equal(validMonitor({ ...frame, bands_hz: [1, 2] }), null);
  assert.equal(validMonitor(null), null);
});

test("frequency labels sit on the log-spaced band axis", () => {
  // 32 bands from 20 Hz to 20 kHz, as the engine sends them.
  const centres = Array.from({ length: 32 }, (_, i) => 20 * 1000 ** ((i + 0.5) / 32));
  assert.ok(Math.abs(bandX(20, centres)) < 1e-9);
  assert.ok(Math.abs(bandX(20000, centres) - 1) < 1e-9);
  assert.ok(Math.abs(bandX(Math.sqrt(20 * 20000), centres) - 0.5) < 1e-9);
  // The centre of band i is in the middle of its bar.
  assert.ok(Math.abs(bandX(centres[5], centres) - 5.5 / 32) < 1e-9);
});

test("peak hold keeps the highest level, then falls", () => {
  const h = new PeakHold(1000, 20);
  h.update(-10, 0);
  h.update(-30, 500); // lower: ignored while held
  assert.equal(h.value(900), -10);
  assert.ok(Math.abs(h.value(1500) - -20) < 1e-9); // 0.5 s of falling at 20 dB/s
  h.update(-15, 1500); // above the falling marker: a new hold
  assert.equal(h.value(2000), -15);
});
