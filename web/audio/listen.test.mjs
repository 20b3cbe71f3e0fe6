// Tests of the listen player's protocol helpers (join frame, text frames): `node --test web/audio/`
// The socket and audio parts run in a real browser: crates/tutti-server/tests/browser_audio.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { joinFrame, readTextFrame, isListening, stop } from "./listen.js";

test("the join frame is a performer join with the token", () => {
  assert.deepEqual(joinFrame("s3cret"), { type: "join", role: "performer", token: "s3cret" });
  // Without a token the server answers `unauthorized`; the frame is still a performer join.
  assert.deepEqual(joinFrame(null), { type: "join", role: "performer" });
});

test("the format frame configures the player", () => {
  const f = readTextFrame('{"type":"audio_format","sample_rate":44100,"channels":1,"encoding":"s16le"}');
  assert.deepEqual(f, { kind: "format", sampleRate: 44100, channels: 1 });
  // Missing figures fall back to 48 kHz stereo.
  assert.deepEqual(readTextFrame('{"type":"audio_format"}'), { kind: "format", sampleRate: 48000, channels: 2 });
});

test("an encoding the player cannot decode is an error, not noise", () => {
  const f = readTextFrame('{"type":"audio_format","sample_rate":48000,"channels":2,"encoding":"opus"}');
  assert.equal(f.kind, "error");
  assert.match(f.message, /opus/);
});

test("error frames carry the server's code and message", () => {
  const f = readTextFrame('{"type":"error","code":"unauthorized","message":"listening needs a performer join with the token"}');
  assert.deepEqual(f, { kind: "error", code: "unauthorized", message: "listening needs a performer join with the token" });
  assert.equal(readTextFrame('{"type":"error"}').code, "internal");
});

test("anything else is ignored", () => {
  for (const t of ["not json", "42", "null", '{"type":"pong","id":1}', "[]"]) {
    assert.deepEqual(readTextFrame(t), { kind: "ignore" }, t);
  }
});

test("stop is safe when nothing plays", () => {
  assert.equal(isListening(), false);
  stop();
  assert.equal(isListening(), false);
});
