#!/usr/bin/python3
"""Markdown tables of a bench/reality/run.py result directory (docs/validation.md).

  /usr/bin/python3 bench/reality/table.py [results/reality]
"""
import csv
import os
import statistics
import sys


def pct(v):
    return f"{float(v) * 100:+.1f} %" if v not in ("", None) else "n/a"


def fail(msg):
    """Bad input: one line on stderr, exit 2."""
    print(msg, file=sys.stderr)
    sys.exit(2)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "results/reality"
    if not os.path.exists(os.path.join(d, "results.csv")):
        fail(f"error: {os.path.join(d, 'results.csv')}: no such file (bench/reality/run.py writes it)")
    rows = list(csv.DictReader(open(os.path.join(d, "results.csv"))))
    print("| scenario | ranks | compute | model | batch | link | buckets (MB) | regime | measured (ms) | "
          "compute alone (ms) | dtsim, matching overlap (ms) | error | dtsim, none (ms) | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ov = r["predicted_overlap_s"]
        ov_ms = f"{float(ov) * 1e3:.2f} ({r['overlap']})" if r["error_overlap"] else f"n/a ({r['overlap']})"
        print(f"| {r['scenario']} | {r['ranks']} | {r['compute']} | {r['model']} | {r['batch']} | {r['bandwidth']} | "
              f"{r['bucket_mb']} | {r['regime']} | {float(r['measured_s']) * 1e3:.2f} | "
              f"{float(r['compute_ref_s']) * 1e3:.2f} | {ov_ms} | {pct(r['error_overlap'])} | "
              f"{float(r['predicted_none_s']) * 1e3:.2f} | {pct(r['error_none'])} |")
    print()
    for key, label in (("error_overlap", "matching overlap kind"), ("error_none", "none")):
        errs = [abs(float(r[key])) for r in rows if r[key] not in ("", None)]
        if errs:
            print(f"- dtsim with {label}: median |error| {statistics.median(errs) * 100:.1f} %, max "
                  f"{max(errs) * 100:.1f} % over {len(errs)} scenarios")
        else:
            print(f"- dtsim with {label}: not available from this dtsim")
    net = os.path.join(d, "network.csv")
    if os.path.exists(net):
        nrows = list(csv.DictReader(open(net)))
        sizes = sorted({int(r["bytes"]) for r in nrows})
        cols = sorted({(int(r["ranks"]), r["bandwidth"]) for r in nrows},
                      key=lambda c: (c[0], float(c[1].rstrip("GMbps")) * (1e3 if "G" in c[1] else 1)))
        print()
        print("| message | " + " | ".join(f"{n} ranks, {b}" for n, b in cols) + " |")
        print("|---|" + "---|" * len(cols))
        for s in sizes:
            cells = []
            for n, b in cols:
                m = [r for r in nrows if int(r["ranks"]) == n and r["bandwidth"] == b and int(r["bytes"]) == s]
                cells.append(f"{float(m[0]['measured_s']) * 1e3:.2f} / {float(m[0]['predicted_s']) * 1e3:.2f} "
                             f"({pct(m[0]['error'])})" if m else "")
            label = f"{s / 2**20:g} MiB" if s >= 2**20 else f"{s // 1024} KiB"
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
