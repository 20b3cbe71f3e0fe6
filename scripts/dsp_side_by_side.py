#!/usr/bin/env python3
"""The DSP benchmark side by side in one sitting: Tutti's `tutti dsp` and CamillaDSP
(built by scripts/peers-camilladsp, 64-bit and 32-bit floats), each as a process reading raw
stereo f32 on stdin and writing it to stdout, the same filters, the same input. The figure
is seconds of 48 kHz stereo audio processed per CPU second of the whole process (user +
system, from the kernel's accounting of the finished child), median of REPEATS runs.

    scripts/dsp_side_by_side.py TUTTI CAMILLA_F64 CAMILLA_F32 OUT_DIR [SECONDS] [REPEATS]
Test tooling only; standard library only.
"""
import array
import math
import os
import random
import resource
import statistics
import struct
import subprocess
import sys

RATE = 48_000


def bands(count):
    """Tutti's benchmark bands (tutti_dsp::bench::benchmark_bands): log-spaced 20 Hz–20 kHz,
    gains alternating +1/−1 dB, Q 4."""
    out = []
    for i in range(count):
        t = i / (count - 1) if count > 1 else 0.0
        out.append((20.0 * (1000.0 ** t), 1.0 if i % 2 == 0 else -1.0, 4.0))
    return out


def write_float_wav(path, samples):
    data = array.array("f", samples).tobytes()
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 26 + 12 + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<IHHIIHHH", 18, 3, 1, RATE, RATE * 4, 4, 32, 0))
        f.write(b"fact" + struct.pack("<II", 4, len(samples)))
        f.write(b"data" + struct.pack("<I", len(data)) + data)


def ir(taps, seed):
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) * 0.1 * math.exp(-6.0 * i / taps) for i in range(taps)]


def camilla_config(path, chunk, filters, names):
    lines = ["devices:", "  samplerate: 48000", f"  chunksize: {chunk}",
             "  capture: {type: Stdin, channels: 2, format: F32_LE}",
             "  playback: {type: Stdout, channels: 2, format: F32_LE}", "filters:"]
    lines += [f"  {name}: {spec}" for name, spec in filters]
    lines += ["pipeline:", "  - type: Filter", "    channels: [0, 1]",
              "    names: [" + ", ".join(names) + "]", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def tutti_chain(path, block, stage):
    with open(path, "w") as f:
        f.write(f"sample_rate = 48000\nmax_block = {block}\n\n[[stages]]\n{stage}\n")


def scenarios(out):
    eq = {}
    for n in (10, 512):
        bs = bands(n)
        eq[n] = (
            [(f"b{i}", "{type: Biquad, parameters: {type: Peaking, "
              f"freq: {f!r}, gain: {g!r}, q: {q!r}}}}}") for i, (f, g, q) in enumerate(bs)],
            'kind = "eq"\nbands = [\n' + ",\n".join(
                f'  {{ type = "peaking", freq = {f!r}, gain_db = {g!r}, q = {q!r} }}'
                for f, g, q in bs) + "\n]",
        )
    for taps in (65_536, 262_144):
        write_float_wav(os.path.join(out, f"ir{taps}.wav"), ir(taps, taps))
    conv = lambda taps, mode: (
        f'kind = "convolution"\nir = "ir{taps}.wav"\nmode = "{mode}"')
    camilla_conv = lambda taps: [("fir", "{type: Conv, parameters: {type: Wav, filename: "
                                  f"{os.path.join(out, f'ir{taps}.wav')}, channel: 0}}}}")]
    return [
        ("10 peaking biquads", 1024, eq[10][0], eq[10][1], None),
        ("512 peaking biquads", 1024, eq[512][0], eq[512][1], None),
        ("FIR 65,536 taps", 1024, camilla_conv(65_536), conv(65_536, "uniform"),
         conv(65_536, "low_latency")),
        ("FIR 262,144 taps", 1024, camilla_conv(262_144), conv(262_144, "uniform"),
         conv(262_144, "low_latency")),
        ("FIR 262,144 taps, block 256", 256, camilla_conv(262_144), conv(262_144, "uniform"),
         conv(262_144, "low_latency")),
    ]


def cpu_of(cmd, stdin_path, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(stdin_path, "rb") as src:
        p = subprocess.run(cmd, stdin=src, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           cwd=cwd, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    tutti, cam64, cam32, out = (os.path.abspath(a) for a in sys.argv[1:5])
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 20.0
    repeats = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    rng = random.Random(7)
    frames = int(seconds * RATE)
    inp = os.path.join(out, "in.f32")
    array.array("f", (rng.uniform(-0.5, 0.5) for _ in range(2 * frames))).tofile(open(inp, "wb"))
    rows = []
    for name, block, cam_filters, stage, low_latency in scenarios(out):
        ycfg = os.path.join(out, f"camilla-{len(rows)}.yml")
        camilla_config(ycfg, block, cam_filters, [n for n, _ in cam_filters])
        tcfg = os.path.join(out, f"tutti-{len(rows)}.toml")
        tutti_chain(tcfg, block, stage)
        runs = {"camilla64": [], "camilla32": [], "tutti": [], "tutti_ll": []}
        lcfg = None
        if low_latency:
            lcfg = os.path.join(out, f"tutti-{len(rows)}-ll.toml")
            tutti_chain(lcfg, block, low_latency)
        for _ in range(repeats):
            # Alternate the engines within each repeat, so a slow moment hits all of them.
            runs["camilla64"].append(seconds / cpu_of([cam64, "-l", "error", ycfg], inp, out))
            runs["camilla32"].append(seconds / cpu_of([cam32, "-l", "error", ycfg], inp, out))
            runs["tutti"].append(seconds / cpu_of([tutti, "dsp", "--chain", tcfg], inp, out))
            if lcfg:
                runs["tutti_ll"].append(seconds / cpu_of([tutti, "dsp", "--chain", lcfg], inp, out))
        med = {k: statistics.median(v) if v else None for k, v in runs.items()}
        rows.append((name, med))
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}x" for k, v in med.items() if v), flush=True)
    print()
    print("| chain | CamillaDSP 5.0.0-beta.1, f64 | CamillaDSP, f32 | Tutti, uniform | Tutti, low latency | Tutti ÷ CamillaDSP f32 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in rows:
        ll = f"{m['tutti_ll']:.0f}×" if m["tutti_ll"] else "—"
        print(f"| {name} | {m['camilla64']:.1f}× | {m['camilla32']:.1f}× | {m['tutti']:.0f}× | {ll} | "
              f"{m['tutti'] / m['camilla32']:.2f} |")


if __name__ == "__main__":
    main()
