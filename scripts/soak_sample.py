#!/usr/bin/env python3
"""Samples a running `tutti serve` for the soak (scripts/soak): every PERIOD seconds, the
server's resident memory and open file descriptors from /proc, and its /metrics, turned into
per-window rates and quantiles (from the histograms' bucket deltas). One CSV row a window.

    scripts/soak_sample.py PID METRICS_URL PERIOD_S OUT.csv
Stops when the server process is gone. Test tooling only; standard library only.
"""
import csv
import os
import sys
import time
import urllib.request

HISTS = ["tutti_outbound_lag_seconds", "tutti_input_wait_seconds", "tutti_tick_seconds",
         "tutti_fanout_seconds"]
COUNTERS = ["tutti_states_delivered_total", "tutti_states_late_total",
            "tutti_states_skipped_total", "tutti_inputs_accepted_total",
            "tutti_inputs_rejected_total", "tutti_ticks_total",
            "tutti_connections_refused_total"]


def scrape(url):
    """Counters (summed over labels) and histogram buckets {name: [(le, cumulative)]}."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    counters, hists, gauges = {}, {n: [] for n in HISTS}, {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{")[0]
        value = float(value)
        if name in COUNTERS:
            counters[name] = counters.get(name, 0.0) + value
        elif name.endswith("_bucket") and name[:-7] in hists:
            le = name_labels.split('le="')[1].split('"')[0]
            hists[name[:-7]].append((float("inf") if le == "+Inf" else float(le), value))
        elif name in ("tutti_connections", "tutti_state_rate_hz"):
            gauges[name] = gauges.get(name, 0.0) + value
    return counters, hists, gauges


def quantile(before, after, q):
    """The q-quantile's bucket bound of the observations between two scrapes."""
    deltas = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = deltas[-1][1] if deltas else 0
    if total <= 0:
        return ""
    for le, cum in deltas:
        if cum >= q * total:
            return "inf" if le == float("inf") else f"{le * 1000:g}"
    return "inf"


def proc(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, fds, cpu


def main():
    pid, url, period, out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    start = time.time()
    last = None
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "rss_mib", "fds", "cpu_pct", "connections", "state_rate_hz",
                    "states_per_s", "late_per_s", "skipped_per_s", "inputs_per_s",
                    "rejected_per_s", "ticks_per_s", "refused_per_s",
                    "lag_p50_ms", "lag_p99_ms", "input_wait_p99_ms", "tick_p99_ms",
                    "fanout_p99_ms"])
        while True:
            try:
                now = time.time()
                rss, fds, cpu = proc(pid)
                counters, hists, gauges = scrape(url)
            except (OSError, ValueError):
                if not os.path.exists(f"/proc/{pid}"):
                    return
                time.sleep(1)
                continue
            if last is not None:
                t0, c0, h0, cpu0 = last
                dt = now - t0
                rate = lambda n: f"{(counters.get(n, 0) - c0.get(n, 0)) / dt:.1f}"
                w.writerow([
                    f"{now - start:.0f}", f"{rss:.1f}", fds, f"{(cpu - cpu0) / dt * 100:.1f}",
                    f"{gauges.get('tutti_connections', 0):.0f}",
                    f"{gauges.get('tutti_state_rate_hz', 0):g}",
                    rate("tutti_states_delivered_total"), rate("tutti_states_late_total"),
                    rate("tutti_states_skipped_total"), rate("tutti_inputs_accepted_total"),
                    rate("tutti_inputs_rejected_total"), rate("tutti_ticks_total"),
                    rate("tutti_connections_refused_total"),
                    quantile(h0["tutti_outbound_lag_seconds"], hists["tutti_outbound_lag_seconds"], 0.5),
                    quantile(h0["tutti_outbound_lag_seconds"], hists["tutti_outbound_lag_seconds"], 0.99),
                    quantile(h0["tutti_input_wait_seconds"], hists["tutti_input_wait_seconds"], 0.99),
                    quantile(h0["tutti_tick_seconds"], hists["tutti_tick_seconds"], 0.99),
                    quantile(h0["tutti_fanout_seconds"], hists["tutti_fanout_seconds"], 0.99),
                ])
                f.flush()
            last = (now, counters, hists, cpu)
            time.sleep(max(0.0, period - (time.time() - now)))


if __name__ == "__main__":
    main()
