#!/usr/bin/python3
"""How much communication slows computing on the same core, measured and fitted (root, PyTorch).

Two ranks on the emulated star (netns.Star), each pinned to a core, each running a fixed amount of
real compute (convolutions, ~100 ms) alone, then again with a gloo all-reduce of S bytes started
just before it: gloo's threads then share the rank's core with the computing thread, as in a DDP
step of a CPU cluster. The figure per (bandwidth, S) is the time until both the compute and the
all-reduce are done (the slowest rank, median of the repeats), against the compute alone and the
all-reduce alone.

dtsim predicts the same thing: a two-layer profile whose first gradient (S bytes) is all-reduced in
its own bucket while the other layer's backward (the measured compute time) runs, on a CPU worker
whose collectives' copies and reductions cost `platform.workers.memory_bandwidth` and slow compute
by `overlap_slowdown` (docs/timing.md, "Contention").

The two constants are fitted one at a time, because on this micro-benchmark alone they trade for
each other (a slower copy or a larger slowdown both lengthen the compute): first
`memory_bandwidth`, from DDP's own cost without any network — the backward of four MLPs (0.7-10 M
parameters) with and without DDP in a world of one rank, whose difference is DDP's copies into and
out of its buckets and its division by the world size, charged by dtsim as 16 bytes per element
(sim/worker_layerwise.cpp); then `overlap_slowdown`, the grid value that best predicts the
micro-benchmark above with that bandwidth. Both go to OUT/contention.json, which run.py gives to
dtsim for the real-compute scenarios (--contention). Fitted on micro-benchmarks, never on the
scenarios. (Without a copies measurement, as in a directory measured before it existed, both are
fitted on the grid together.)

  /usr/bin/python3 bench/reality/interference.py                       # -> results/reality/interference.csv, contention.json
  /usr/bin/python3 bench/reality/interference.py --predict-only --out DIR   # fit the saved measurement again
"""
import argparse
import csv
import json
import os
import statistics
import sys

import run  # noqa: E402  (bench/reality/run.py: the cluster, jobs and dtsim helpers)
from run import HERE, PY, ENV, ROOT, Job, experiment, log, netns, parse_bandwidth, run_dtsim

SERIES = [("100Mbps", [262144, 1048576]), ("1Gbps", [1048576, 4194304, 8388608]),
          ("10Gbps", [4194304, 16777216, 33554432])]
WORK_MS = 100.0
GRID_MB = [1e9, 1.5e9, 2e9, 3e9, 4e9, 5e9, 7e9, 10e9, 15e9, 20e9, 40e9]
GRID_S = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0]
FIELDS = ["bandwidth", "bytes", "compute_alone_s", "compute_with_comm_s", "both_done_s", "comm_alone_s",
          "predicted_default_s", "error_default", "predicted_fitted_s", "error_fitted", "latency_s"]


def measure(bandwidth, sizes, out, steps):
    work = os.path.join(out, "interference", bandwidth)
    os.makedirs(work, exist_ok=True)
    star = netns.Star(2, parse_bandwidth(bandwidth)).create()
    job = Job()
    try:
        latency = star.measure_latency()
        for r in range(2):
            cmd = ["ip", "netns", "exec", netns.host_ns(r), PY, os.path.join(HERE, "worker.py"), "interference",
                   "--rank", str(r), "--world", "2", "--master", netns.host_addr(0), "--cpu", str(r),
                   "--sizes", ",".join(map(str, sizes)), "--steps", str(steps), "--work-ms", str(WORK_MS),
                   "--out", os.path.join(work, f"rank{r}.json")]
            job.start(cmd, dict(os.environ, GLOO_SOCKET_IFNAME=netns.HOST_IF, **ENV), ranks=2)
        job.wait(900)
    finally:
        job.kill()
        star.destroy()
    ranks = []
    for r in range(2):
        with open(os.path.join(work, f"rank{r}.json")) as f:
            ranks.append(json.load(f))
    m = {"bandwidth": bandwidth, "latency_s": latency, "sizes": sizes, "rows": []}
    for k, s in enumerate(sizes):
        m["rows"].append({key: max(rk[key][k] for rk in ranks)
                          for key in ("alone_s", "with_s", "both_done_s", "comm_s")} | {"bytes": s})
    with open(os.path.join(work, "measured.json"), "w") as f:
        json.dump(m, f, indent=1)
    return m


def measure_copies(out, steps):
    """worker.py copies on core 0 (one rank, gloo on the loopback, no namespace)."""
    work = os.path.join(out, "interference", "copies")
    os.makedirs(work, exist_ok=True)
    job = Job()
    try:
        job.start([PY, os.path.join(HERE, "worker.py"), "copies", "--rank", "0", "--world", "1", "--master",
                   "127.0.0.1", "--port", "29517", "--cpu", "0", "--steps", str(max(steps, 15)), "--warmup", "5",
                   "--out", os.path.join(work, "rank0.json")], dict(os.environ, GLOO_SOCKET_IFNAME="lo", **ENV), ranks=1)
        job.wait(600)
    finally:
        job.kill()
    with open(os.path.join(work, "rank0.json")) as f:
        m = json.load(f)
    with open(os.path.join(work, "measured.json"), "w") as f:
        json.dump(m, f, indent=1)
    return m


COPY_BYTES_PER_ELEMENT = 16.0  # dtsim's charge for a bucket's copy in and out (read + write, fp32)


def copy_bandwidth(copies):
    """Least squares through the origin of DDP's extra backward time against 16 bytes x elements."""
    b = [COPY_BYTES_PER_ELEMENT * e for e in copies["elements"]]
    x = [d - p for d, p in zip(copies["ddp_s"], copies["plain_s"])]
    return sum(v * v for v in b) / sum(u * v for u, v in zip(b, x))


def micro_profile(work, compute_s, nbytes):
    """Layer "compute" (no parameters, backward = the measured compute) after layer "comm" (one
    tensor of nbytes, no time): backward runs comm first, whose bucket is all-reduced during compute."""
    n = max(1, nbytes // 4)
    path = os.path.join(work, f"micro-{nbytes}-{compute_s:.6f}.profile.json")
    t = 1e-9
    doc = {"format": "dtsim-model-profile/1", "name": "compute beside an all-reduce",
           "tensors": [{"name": "g", "shape": [n], "elements": n}], "num_params": n, "batches": [1],
           "layers": [{"name": "compute", "type": "other", "tensors": [], "forward_s": [t], "backward_s": [compute_s]},
                      {"name": "comm", "type": "linear", "tensors": [0], "forward_s": [t], "backward_s": [t]}]}
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def predict(dtsim, m, row, work, mem_bw, slowdown):
    s = row["bytes"]
    prof = micro_profile(work, row["alone_s"], s)
    mb = s / 2**20
    cfg = experiment("interference", 2, parse_bandwidth(m["bandwidth"]), m["latency_s"], prof, 1, 3, 0.0, max(1, s // 4),
                     {"kind": "ddp", "bucket_cap_mb": mb, "first_bucket_mb": mb})
    cfg["platform"]["workers"]["memory_bandwidth"] = f"{mem_bw:g}Bps"
    cfg["platform"]["workers"]["overlap_slowdown"] = slowdown
    cfg["output"]["trace"] = False
    t, _ = run_dtsim(dtsim, cfg, work, "micro")
    return t


def fit(dtsim, series, out, grid_mb=GRID_MB, grid_s=GRID_S, copies=None):
    work = os.path.join(out, "interference", "fit")
    os.makedirs(work, exist_ok=True)
    cache = {}

    def errors(mem_bw, slowdown):
        errs = []
        for m in series:
            for row in m["rows"]:
                key = (m["bandwidth"], row["bytes"], mem_bw, slowdown)
                if key not in cache:
                    cache[key] = predict(dtsim, m, row, work, mem_bw, slowdown)
                errs.append((cache[key] - row["both_done_s"]) / row["both_done_s"])
        return errs

    best = None
    copy_bw = copy_bandwidth(copies) if copies else None
    if copy_bw:
        grid_mb = [copy_bw]
    for mem_bw in grid_mb:
        for slowdown in grid_s:
            e = errors(mem_bw, slowdown)
            score = sum(v * v for v in e)
            if best is None or score < best[0]:
                best = (score, mem_bw, slowdown)
    _, mem_bw, slowdown = best
    default = errors(10e9, 0.0)  # dtsim's defaults (sim/platform_spec.hpp), for the table
    fitted = errors(mem_bw, slowdown)
    rows, k = [], 0
    for m in series:
        for row in m["rows"]:
            rows.append({"bandwidth": m["bandwidth"], "bytes": row["bytes"], "compute_alone_s": f"{row['alone_s']:.6f}",
                         "compute_with_comm_s": f"{row['with_s']:.6f}", "both_done_s": f"{row['both_done_s']:.6f}",
                         "comm_alone_s": f"{row['comm_s']:.6f}",
                         "predicted_default_s": f"{cache[(m['bandwidth'], row['bytes'], 10e9, 0.0)]:.6f}",
                         "error_default": f"{default[k]:+.4f}",
                         "predicted_fitted_s": f"{cache[(m['bandwidth'], row['bytes'], mem_bw, slowdown)]:.6f}",
                         "error_fitted": f"{fitted[k]:+.4f}", "latency_s": f"{m['latency_s']:.3g}"})
            k += 1
    with open(os.path.join(out, "interference.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    c = {"memory_bandwidth": f"{mem_bw:.4g}Bps", "overlap_slowdown": slowdown,
         "fitted_on": ("memory_bandwidth: DDP's backward cost in a world of one rank; overlap_slowdown: compute "
                       "beside a gloo all-reduce on the same core (bench/reality/interference.py)") if copy_bw else
                      "bench/reality/interference.py: compute beside a gloo all-reduce on the same core",
         "median_abs_error_fitted": statistics.median(abs(v) for v in fitted),
         "median_abs_error_default": statistics.median(abs(v) for v in default)}
    with open(os.path.join(out, "contention.json"), "w") as f:
        json.dump(c, f, indent=1)
    return rows, c


def copies_table(copies, bw):
    print("| model | parameters | backward alone (ms) | backward under DDP, one rank (ms) | DDP's extra (ms) | "
          f"dtsim's charge at {bw / 1e9:.3g} GB/s (ms) |")
    print("|---|---|---|---|---|---|")
    for spec, e, p, d in zip(copies["models"], copies["elements"], copies["plain_s"], copies["ddp_s"]):
        print(f"| mlp {'-'.join(map(str, spec['hidden']))} | {e / 1e6:.2f} M | {p * 1e3:.2f} | {d * 1e3:.2f} | "
              f"{(d - p) * 1e3:.2f} | {COPY_BYTES_PER_ELEMENT * e / bw * 1e3:.2f} |")
    print()


def table(rows, c):
    print("| link | all-reduce | compute alone (ms) | all-reduce alone (ms) | both done, measured (ms) | "
          "dtsim, default constants (ms) | error | dtsim, fitted (ms) | error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['bandwidth']} | {int(r['bytes']) / 2**20:g} MiB | {float(r['compute_alone_s']) * 1e3:.2f} | "
              f"{float(r['comm_alone_s']) * 1e3:.2f} | {float(r['both_done_s']) * 1e3:.2f} | "
              f"{float(r['predicted_default_s']) * 1e3:.2f} | {float(r['error_default']) * 100:+.1f} % | "
              f"{float(r['predicted_fitted_s']) * 1e3:.2f} | {float(r['error_fitted']) * 100:+.1f} % |")
    print(f"\nfitted: memory_bandwidth {c['memory_bandwidth']}, overlap_slowdown {c['overlap_slowdown']:g}; "
          f"median |error| {c['median_abs_error_fitted'] * 100:.1f} % (defaults 10 GB/s, 0: "
          f"{c['median_abs_error_default'] * 100:.1f} %)")


def measure_and_fit(out, dtsim, steps=7, grid_mb=GRID_MB, grid_s=GRID_S):
    """Measures every series into OUT/interference/, fits, prints the table; the caller holds the
    harness lock and removes the namespaces on every exit path (run.py's main, or main below)."""
    series = []
    log("interference: DDP's own backward cost, one rank, no network")
    copies = measure_copies(out, steps)
    for bw, sizes in SERIES:
        log(f"interference: 2 ranks, {bw}, all-reduces of {', '.join(f'{s / 2**20:g}' for s in sizes)} MiB")
        series.append(measure(bw, sizes, out, steps))
    rows, c = fit(dtsim, series, out, grid_mb, grid_s, copies)
    copies_table(copies, copy_bandwidth(copies))
    table(rows, c)
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "reality"))
    ap.add_argument("--dtsim", default=os.environ.get("DTSIM", os.path.join(ROOT, "build", "dtsim")))
    ap.add_argument("--steps", type=int, default=7, help="repeats per size (the median is kept)")
    ap.add_argument("--predict-only", action="store_true", help="fit the measurement saved in --out again")
    floats = lambda v: [float(x) for x in v.split(",")]  # noqa: E731
    ap.add_argument("--grid-bandwidth", type=floats, default=GRID_MB, help="memory_bandwidth values tried, B/s")
    ap.add_argument("--grid-slowdown", type=floats, default=GRID_S, help="overlap_slowdown values tried")
    ap.add_argument("--equal-priority", action="store_true",
                    help="gloo's threads at the compute thread's FIFO priority (run.py's --equal-priority)")
    a = ap.parse_args()
    os.environ.setdefault("DTSR_RT", "1")
    os.environ["DTSR_COMM_FIRST"] = "0" if a.equal_priority else "1"
    if not os.access(a.dtsim, os.X_OK):
        print(f"interference: no dtsim at {a.dtsim}", file=sys.stderr)
        return 2
    if a.predict_only:
        series = []
        for bw, _ in SERIES:
            p = os.path.join(a.out, "interference", bw, "measured.json")
            if os.path.exists(p):
                with open(p) as f:
                    series.append(json.load(f))
        if not series:
            print(f"interference: nothing measured in {a.out}", file=sys.stderr)
            return 2
        copies = None
        p = os.path.join(a.out, "interference", "copies", "measured.json")
        if os.path.exists(p):
            with open(p) as f:
                copies = json.load(f)
        rows, c = fit(a.dtsim, series, a.out, a.grid_bandwidth, a.grid_slowdown, copies)
        if copies:
            copies_table(copies, copy_bandwidth(copies))
        table(rows, c)
        return 0
    ok, why = netns.available()
    if not ok:
        print(f"interference: cannot emulate a cluster here: {why}", file=sys.stderr)
        return 77
    lock = run.hold_harness()  # noqa: F841 (held until exit)
    if lock is None:
        return 130
    try:
        measure_and_fit(a.out, a.dtsim, a.steps, a.grid_bandwidth, a.grid_slowdown)
    except run.Interrupted as e:
        log(f"interrupted ({e}): tearing down")
        return 130
    finally:
        netns.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
