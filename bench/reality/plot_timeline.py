#!/usr/bin/python3
"""One measured DDP step next to dtsim's predicted step (docs/validation.md's timeline figure).

  /usr/bin/python3 bench/reality/plot_timeline.py results/reality/runs/SCENARIO [--out docs/img/reality-timeline.png]

Reads rank 0's timeline of the last measured step (a scenario with "timeline": true: per-layer
backward spans from output-gradient hooks, per-bucket all-reduce start/end from a DDP comm hook)
and dtsim's trace.json of the same scenario (dtsim-overlap/ when present, and dtsim-none/): worker-0's
compute, all-reduce and update spans of one step. Needs python3-matplotlib.
"""
import argparse
import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def measured(run_dir):
    with open(os.path.join(run_dir, "rank0.json")) as f:
        tl = json.load(f)["timeline"]
    t0 = tl["t0"]
    ms = lambda t: (t - t0) * 1e3  # noqa: E731
    rows = {"forward": [(0.0, ms(tl["forward_end"]), "forward")]}
    if "layers" in tl:  # emulated: the clock's own spans
        rows["backward (per layer)"] = [(ms(s), ms(e), n) for n, k, s, e in tl["layers"] if k == "bwd"]
    else:
        # The last layer's backward ends when its gradients are handed to DDP: the last bucket's
        # launch; from there to the end of backward() rank 0 waits for the all-reduces.
        ev = sorted(tl["layer_events"], key=lambda e: e[1])
        last = max([s for _, _, s, _ in tl["comm"]] + [ev[-1][1]])
        rows["backward (per layer)"] = [(ms(t), ms(ev[i + 1][1] if i + 1 < len(ev) else last), n)
                                        for i, (n, t) in enumerate(ev)]
        rows["waits for all-reduce"] = [(ms(last), ms(tl["backward_end"]), "wait")]
    rows["all-reduce (per bucket)"] = [(ms(s), ms(e), f"bucket {b}: {nb / 2**20:.1f} MiB")
                                       for b, nb, s, e in sorted(tl["comm"])]
    rows["optimizer"] = [(ms(tl["backward_end"]), ms(tl["end"]), "step")]
    return rows, ms(tl["end"])


def predicted(trace_file, step=1):
    """Worker-0's spans of one step: layer-wise runs (docs/timing.md) name their compute spans
    "forward <layer>" / "backward <layer>" and their transfers by bucket; runs with overlap "none"
    have one "compute" span per minibatch."""
    with open(trace_file) as f:
        ev = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X" and e.get("pid") == 0]
    if any("step" in e.get("args", {}) for e in ev):
        def of(k):
            return [e["ts"] for e in ev if e.get("args", {}).get("step") == k and e["cat"] == "compute"]
        this, following = of(step), of(step + 1)
        if not this:
            return {}, 0.0
        t0 = min(this)
        t1 = min(following) if following else float("inf")
    else:  # one compute span per minibatch: from the span of `step` to the next one
        starts = sorted(e["ts"] for e in ev if e["cat"] == "compute")
        if len(starts) < step + 2:
            return {}, 0.0
        t0, t1 = starts[step], starts[step + 1]
    ev = [e for e in ev if t0 <= e["ts"] < t1]
    rows = {"forward": [], "backward (per layer)": [], "compute": [], "all-reduce (per bucket)": [], "wait": [],
            "update": []}
    for e in ev:
        s, d = (e["ts"] - t0) / 1e3, e["dur"] / 1e3
        name = e.get("name", "")
        if e["cat"] == "compute":
            row = ("forward" if name.startswith("forward ") else
                   "backward (per layer)" if name.startswith("backward ") else "compute")
            rows[row].append((s, s + d, name.split(" ", 1)[-1]))
        elif e["cat"] == "collective" and name == "send":
            what = e["args"].get("what", "")
            label = what.split("allreduce ", 1)[-1] if what.startswith("allreduce ") else ""
            rows["all-reduce (per bucket)"].append((s, s + d, f"{label} {e['args'].get('bytes', 0) / 2**20:.1f} MiB".strip()))
        elif e["cat"] == "update":
            rows["update"].append((s, s + d, "update"))
        elif e["cat"] == "wait":
            rows["wait"].append((s, s + d, "wait"))
    rows = {k: v for k, v in rows.items() if v}
    end = max((e[1] for r in rows.values() for e in r), default=0.0)
    return rows, end


def draw(ax, rows, title, end):
    colors = {"forward": "#4c72b0", "backward (per layer)": "#55a868", "all-reduce (per bucket)": "#c44e52",
              "optimizer": "#8172b2", "waits for all-reduce": "#bbbbbb", "wait": "#bbbbbb", "compute": "#55a868", "all-reduce": "#c44e52", "update": "#8172b2"}
    labels = list(rows)
    for y, name in enumerate(labels):
        spans = rows[name]
        for k, (s, e, txt) in enumerate(spans):
            h = 0.8 / max(1, len(spans)) if name.startswith("all-reduce (") else 0.8
            yy = y - 0.4 + (k * h if name.startswith("all-reduce (") else 0)
            ax.barh(yy, e - s, left=s, height=h * 0.9, align="edge", color=colors.get(name, "grey"),
                    alpha=0.55 + 0.45 * (k % 2), edgecolor="black", linewidth=0.3)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlim(0, end * 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def result_row(run_dir):
    """The scenario's row of results.csv (OUT/results.csv for OUT/runs/NAME); measured.json held it
    itself before it kept the re-prediction's inputs."""
    try:
        with open(os.path.join(run_dir, "measured.json")) as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"error: {os.path.join(run_dir, 'measured.json')}: {e} (give a run directory: OUT/runs/<scenario>)")
    if "row" in m:
        return m["row"]
    name = os.path.basename(os.path.normpath(run_dir))
    results = os.path.join(run_dir, "..", "..", "results.csv")
    try:
        with open(results, newline="") as f:
            for r in csv.DictReader(f):
                if r["scenario"] == name:
                    return r
    except FileNotFoundError:
        pass
    fail(f"error: {results}: no row for scenario {name} (run run.py or run.py --predict-only first)")


def fail(msg):
    """Bad input: one line on stderr, exit 2."""
    print(msg, file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--out", default="docs/img/reality-timeline.png")
    a = ap.parse_args()
    row = result_row(a.run_dir)
    try:
        with open(os.path.join(a.run_dir, "rank0.json")) as f:
            has_timeline = "timeline" in json.load(f)
    except (OSError, ValueError) as e:
        fail(f"error: {os.path.join(a.run_dir, 'rank0.json')}: {e}")
    if not has_timeline:
        fail(f"error: {os.path.join(a.run_dir, 'rank0.json')}: no timeline: the scenario needs "
             '"timeline": true in scenarios.json (as r2-mlpdeep-1g-b4 has)')
    m_rows, m_end = measured(a.run_dir)
    panels = [(m_rows, f"measured: PyTorch DDP, rank 0, one step ({m_end:.1f} ms; median step "
                       f"{float(row['measured_s']) * 1e3:.1f} ms)")]
    for tag, label in (("overlap", f"dtsim, overlap \"{row['overlap']}\""), ("none", "dtsim, overlap \"none\"")):
        tr = os.path.join(a.run_dir, f"dtsim-{tag}", "trace.json")
        if os.path.exists(tr):
            p_rows, p_end = predicted(tr)
            panels.append((p_rows, f"{label}: worker-0, one step ({p_end:.1f} ms)"))
    if len(panels) == 1:
        print(f"note: no dtsim trace in {a.run_dir} (run.py --predict-only --out on its directory writes "
              "them): drawing the measured step alone", file=sys.stderr)
    end = max(max(e for _, _, e in [(0, 0, 0)] + [(0, 0, s[1]) for r in p.values() for s in r]) for p, _ in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.2 + 1.6 * len(panels)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, (rows, title) in zip(axes, panels):
        draw(ax, rows, title, end)
    axes[-1].set_xlabel("time since the start of the step (ms)")
    fig.suptitle(f"{row['scenario']}: {row['ranks']} ranks, {row['compute']} compute, {row['model']}, batch "
                 f"{row['batch']}, {row['bandwidth']}, bucket_cap_mb {row['bucket_mb']}", fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
