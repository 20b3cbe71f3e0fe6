#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (committed).

Run it again after changing a seed here: `python3 fuzz/seeds.py`. The audio seeds are
the test fixtures of tutti-audio plus small WAVs made here; the piece seed is
pieces/demo.toml.
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# /live/v1 client frames (docs/protocol.md).
FRAMES = [
    {"type": "join", "show": "DEMO", "zone": "front", "seat": "B12"},
    {"type": "join", "show": "DEMO", "resume": "7f3c9a1e52b04d8e9f1a2b3c4d5e6f70"},
    {"type": "join", "show": "DEMO", "role": "performer", "token": "s3cret"},
    {"type": "join"},
    {"type": "input", "param": "intensity", "value": 0.72, "seq": 41},
    {"type": "vote", "param": "section", "choice": "storm", "seq": 42},
    {"type": "override", "param": "pitch", "mode": "lock", "value": 7, "seq": 3},
    {"type": "override", "param": "intensity", "mode": "blend", "target": 1.0,
     "factor": 0.5, "expires_in": 30, "seq": 4},
    {"type": "override", "param": "brightness", "mode": "clamp", "lo": 0.2, "hi": 0.6},
    {"type": "override", "param": "pitch", "mode": "bias", "amount": -0.25},
    {"type": "override", "param": "pitch", "mode": "freeze"},
    {"type": "release", "param": "pitch", "mode": "lock", "seq": 5},
    {"type": "release", "param": "pitch"},
    {"type": "session", "action": "pause", "seq": 6},
    {"type": "reset", "seq": 7},
    {"type": "bypass", "on": True, "seq": 8},
    {"type": "ping", "id": 99},
    {"type": "sync", "id": 12, "t0": 48213.4},
    {"type": "sync_report", "error_ms": 0.8, "offset_ms": 1523.25, "cues_late": 0, "sound_on": True},
    {"type": "cue", "voice": "chime", "seq": 9},
    {"type": "cue", "voice": "chime", "zones": ["front"], "sweep": {"x": 12.0, "y": 0.0, "speed": 20.0}},
    {"type": "cue", "voice": "pulse", "source": {"x": 6.0, "y": 25.0, "radius": 10.0}},
    # Chat (issue 12).
    {"type": "chat_auth", "token": "tta_5kq2yZ7vQm1Xw8rN3bT6uH0pLs9eGdJf"},
    {"type": "chat_name", "name": "Ada"},
    {"type": "chat_sub", "rooms": [{"room": 2, "after_seq": 0}, {"room": 5, "after_seq": 41}]},
    {"type": "chat_unsub", "rooms": [2]},
    {"type": "chat_post", "room": 2, "client_id": "m-7f3a", "text": "Hello **everyone** @ana", "reply_to": 1, "seq": 1},
    {"type": "chat_edit", "message": 1, "text": "Hello *everyone*", "seq": 2},
    {"type": "chat_delete", "message": 1, "seq": 4},
    {"type": "chat_boost", "message": 1, "content": "👏", "remove": True, "seq": 3},
    {"type": "chat_read", "room": 2, "read_seq": 1},
    {"type": "chat_typing", "room": 2},
    {"type": "chat_here"},
]
for i, f in enumerate(FRAMES):
    put("protocol_frame", f"{i:02}-{f['type']}.json", json.dumps(f))
put("protocol_frame", "bad-type.json", '{"type":"nope"}')
put("protocol_frame", "huge-number.json", '{"type":"input","param":"x","value":1e999}')


def ws_frame(payload, opcode=1, fin=True, mask=b"\x37\xfa\x21\x3d"):
    """A masked client frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def ws_input(chunks, lead, stream):
    """The ws_read input layout: chunk-size count, sizes, leftover length, stream."""
    return bytes([len(chunks)]) + bytes(chunks) + bytes([lead]) + stream


join = json.dumps(FRAMES[0]).encode()
inp = json.dumps(FRAMES[4]).encode()
put("ws_read", "text", ws_input([], 0, ws_frame(join)))
put("ws_read", "two-texts-chunked", ws_input([1, 3, 200], 5, ws_frame(join) + ws_frame(inp)))
put("ws_read", "ping-close", ws_input([], 0, ws_frame(b"hi", 9) + ws_frame(b"\x03\xe8bye", 8)))
put("ws_read", "fragmented", ws_input([2], 0,
    ws_frame(inp[:10], 1, fin=False) + ws_frame(b"", 9) + ws_frame(inp[10:], 0)))
put("ws_read", "binary", ws_input([], 0, ws_frame(b"\x00\x01\x02", 2)))
put("ws_read", "long", ws_input([255], 0, ws_frame(b'{"type":"ping","id":1}' + b" " * 300)))
put("ws_read", "unmasked", ws_input([], 0, b"\x81\x05hello"))

put("ws_write", "short", struct.pack("<QQQH", 41, 1043, 1763913600123, 20) + b'{"type":"ping"}')
put("ws_write", "medium", struct.pack("<QQQH", 0, 0, 0, 300) + "état ".encode())
put("ws_write", "long", struct.pack("<QQQH", 2**64 - 1, 2**63, 1, 65535) + b"abc")
put("ws_write", "empty", struct.pack("<QQQH", 5, 5, 5, 0))


def osc_str(s):
    b = s.encode() + b"\0"
    return b + b"\0" * (-len(b) % 4)


def osc_msg(addr, tags="", *args):
    out = osc_str(addr) + osc_str("," + tags)
    for t, a in zip(tags, args):
        if t == "f":
            out += struct.pack(">f", a)
        elif t == "i":
            out += struct.pack(">i", a)
        elif t == "d":
            out += struct.pack(">d", a)
        elif t == "h":
            out += struct.pack(">q", a)
        elif t == "s":
            out += osc_str(a)
    return out


def osc_bundle(*elems):
    out = osc_str("#bundle") + struct.pack(">II", 1, 0)
    for e in elems:
        out += struct.pack(">i", len(e)) + e
    return out


OSC = {
    "override": osc_msg("/tutti/override/cutoff", "f", 0.8),
    "lock": osc_msg("/tutti/lock/cutoff", "i", 1),
    "bias": osc_msg("/tutti/bias/pitch", "d", -0.5),
    "blend": osc_msg("/tutti/blend/density", "ff", 0.2, 0.5),
    "clamp": osc_msg("/tutti/clamp/cutoff", "ii", 0, 1),
    "freeze": osc_msg("/tutti/freeze/cutoff", "f", 1.0),
    "release-mode": osc_msg("/tutti/release/cutoff", "s", "bias"),
    "release": osc_msg("/tutti/release/cutoff"),
    "session": osc_msg("/tutti/session/start"),
    "reset": osc_msg("/tutti/reset", "h", 1),
    "bypass": osc_msg("/tutti/bypass", "T"),
}
for name, m in OSC.items():
    put("osc_packet", name, m)
put("osc_packet", "bundle", osc_bundle(OSC["lock"], osc_bundle(OSC["blend"], OSC["bypass"])))

put("osc_encode", "two", struct.pack("<II", 1_700_000_000 // 3, 5)
    + b"/tutti/cutoff\0" + struct.pack("<f", 0.5) + b"/tutti/pitch\0" + struct.pack("<f", -3.0))
put("osc_encode", "bad-address", struct.pack("<II", 0, 0) + b"/a b\0" + struct.pack("<f", 1.0))


def wav(channels, rate, bits, samples, fmt=1, extensible=False):
    """A WAV file; `samples` is raw interleaved sample bytes."""
    block = channels * bits // 8
    if extensible:
        sub = struct.pack("<H", fmt) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt_chunk = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block,
                                bits, 22, bits, 0) + sub
    else:
        fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


WAVS = {
    "s16-mono.wav": wav(1, 48000, 16, struct.pack("<8h", 0, 1000, -1000, 32767, -32768, 5, 6, 7)),
    "s16-stereo.wav": wav(2, 48000, 16, struct.pack("<8h", 0, 1, 2, 3, 4, 5, 6, 7)),
    "u8.wav": wav(1, 8000, 8, bytes([0, 128, 255, 64])),
    "s24.wav": wav(2, 44100, 24, bytes(range(12))),
    "f32.wav": wav(1, 48000, 32, struct.pack("<4f", 0.0, 0.5, -1.0, 1e-3), fmt=3),
    "f32-ext.wav": wav(2, 96000, 32, struct.pack("<4f", 0.0, 0.5, -1.0, 1e-3), fmt=3,
                       extensible=True),
}
for name, data in WAVS.items():
    put("wav_read", name, data)

FIXTURES = os.path.join(ROOT, "crates", "tutti-audio", "tests", "fixtures")
# The first byte of an audio_decode input picks the file name (its extension is a hint)
# and the target rate: see NAMES and RATES in fuzz_targets/audio_decode.rs.
HINT = {"wav": 0, "flac": 1, "mp3": 2, "ogg": 3}
for name in sorted(os.listdir(FIXTURES)):
    ext = name.rsplit(".", 1)[1]
    with open(os.path.join(FIXTURES, name), "rb") as f:
        put("audio_decode", name, bytes([HINT[ext]]) + f.read())
for name, data in WAVS.items():
    put("audio_decode", name, bytes([0x10]) + data)

shutil.copy(os.path.join(ROOT, "pieces", "demo.toml"),
            os.path.join(HERE, "corpus", "piece_spec", "demo.toml"))
put("piece_spec", "minimal.toml", 'slug = "x"\ntitle = "X"\n')

CHAINS = {
    "full.toml": """sample_rate = 48000
max_block = 256
smoothing_ms = 10.0

[[stages]]
kind = "biquad"
type = "highpass"
freq = 30.0
q = 0.7

[[stages]]
kind = "eq"
name = "eq"
bands = [
  { type = "peaking", freq = 1000.0, gain_db = 3.0, q = 1.0 },
  { type = "lowshelf", freq = 100.0, gain_db = -2.0 },
]
graphic = { count = 10, from = 31.5, to = 16000.0, gains_db = [1.0, -1.0] }

[[stages]]
kind = "compressor"
threshold_db = -18.0
ratio = 3.0
knee_db = 6.0
attack_ms = 5.0
release_ms = 100.0
makeup_db = 2.0

[[stages]]
kind = "reverb"
size = 0.6
decay_s = 1.5
damping = 0.4
mix = 0.2

[[stages]]
kind = "convolution"
ir = "ir.wav"
mode = "low_latency"
partition = 64
max_partition = 1024

[[stages]]
kind = "gain"
gain_db = -3.0

[[stages]]
kind = "pan"
pan = 0.25

[[stages]]
kind = "delay"
ms = 1.0

[[stages]]
kind = "limiter"
ceiling_db = -1.0
lookahead_ms = 2.0
release_ms = 50.0
""",
    "empty.toml": "sample_rate = 48000\nmax_block = 64\n",
    "uniform.toml": 'sample_rate = 48000\nmax_block = 128\n[[stages]]\nkind = "convolution"\n'
                    'ir = "ir.wav"\nmode = "uniform"\n',
}
for name, text in CHAINS.items():
    put("chain_toml", name, text)

# wizard_expr: a mask byte (which answers are missing) then the source.
EXPRS = [
    "rate * 2 + 1", 'network == "venue_wifi" and votes', "not answered(title) or rate > 30",
    '"tempo" in controls', "min(rate, phones) / 3 % 7", 'str(rate) + " Hz"',
    "[1, 2, 3]", "-(-rate)", "round(phones / 1000)", "len(controls) >= 2",
    'slug(title)', "rate != null", "(rate < 10) == false",
]
for i, e in enumerate(EXPRS):
    put("wizard_expr", f"{i:02}", bytes([i % 3]) + e.encode())

# api_body: the first byte picks the body type (tutti_api::BODY_TYPES, in that order).
BODIES = [
    ("setup", {"username": "admin", "password": "correct horse", "display_name": "Admin"}),
    ("login", {"username": "admin", "password": "correct horse", "mode": "cookie"}),
    ("refresh", {"refresh_token": "ttr_abc"}),
    ("password", {"current_password": "a", "new_password": "correct horse battery"}),
    ("new_user", {"username": "ann", "password": "long enough pw", "display_name": "Ann",
                  "role": "member"}),
    ("new_ensemble", {"slug": "choir", "name": "The Choir"}),
    ("new_member", {"username": "ann", "role": "performer"}),
    ("new_webhook", {"url": "http://127.0.0.1:9/hook", "kinds": ["show.started"]}),
    ("memory_record", {}),
    ("memory_append", {"steps": [], "moments": []}),
    ("memory_outcome", {"completion": "completed", "rating": 4.5, "notes": ""}),
    ("memory_moments", {"kind": "show", "vector": [0.1, 0.2], "piece": "demo"}),
    ("memory_episodes", {}),
    ("memory_rating", {"rating": 4, "notes": "good"}),
    ("memory_feedback", {"action": "useful", "rating": 1}),
    ("new_piece", {"slug": "storm", "title": "Storm"}),
    ("patch_piece", {"title": "Storm II"}),
    ("piece_transition", {"to": "published"}),
    ("new_spec", {"spec": {"slug": "storm", "title": "Storm"}, "note": "first"}),
    ("new_show", {"kind": "rehearsal", "spec_version": 1}),
    ("show_transition", {"to": "live"}),
    ("wizard_session", {"pack": "ambient"}),
    ("wizard_answer", {"question": "rate", "answer": 20}),
    ("wizard_draft", {"piece_id": 1, "note": "from the wizard"}),
    ("chat_room", {"kind": "closed", "ensemble_id": 1, "name": "Crew", "members": [2, 3]}),
    ("chat_member", {"user_id": 2}),
    ("chat_involvement", {"involvement": "mentions"}),
    ("chat_read", {"seq": 12}),
    ("chat_message", {"client_message_id": "m-1", "text": "**hello** @ann", "reply_to": 3}),
    ("chat_edit", {"text": "hello again"}),
    ("chat_boost", {"content": "bravo!"}),
]
for i, (name, body) in enumerate(BODIES):
    put("api_body", f"{i:02}-{name}.json", bytes([i]) + json.dumps(body).encode())
