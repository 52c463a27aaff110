#!/usr/bin/python3
"""bench/reality/plot_timeline.py on the shipped measurement (bench/reality/measured/, re-predicted
by this dtsim): dtsim's layer-wise step (overlap "ddp") shows as forward, per-layer backward and
per-bucket all-reduce spans and lasts the predicted step, and the figure is written. Before
2026-12-07 the script read a results row that measured.json no longer holds, and drew a layer-wise
trace as a 1 ms step of one layer. Needs dtsim and matplotlib (else exit 77)."""
import csv
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DTSIM, ROOT, skip  # noqa: E402

try:
    import matplotlib  # noqa: F401
except ImportError:
    skip("matplotlib is not installed (tools/install-deps.sh installs python3-matplotlib)")
sys.path.insert(0, os.path.join(ROOT, "bench", "reality"))
import plot_timeline  # noqa: E402

NAME = "r2-mlpdeep-1g-b4"
out = tempfile.mkdtemp(prefix="dtsim-plot-timeline-")
try:
    shutil.rmtree(out)
    shutil.copytree(os.path.join(ROOT, "bench", "reality", "measured"), out)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "reality", "run.py"), "--predict-only",
                        "--only", f"^{NAME}$", "--out", out, "--dtsim", DTSIM],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"FAIL: run.py --predict-only exited {r.returncode}:\n{r.stdout}")
    row = next(x for x in csv.DictReader(open(os.path.join(out, "results.csv"))) if x["scenario"] == NAME)
    rows, end = plot_timeline.predicted(os.path.join(out, "runs", NAME, "dtsim-overlap", "trace.json"))
    print({k: len(v) for k, v in rows.items()}, f"end {end:.2f} ms, predicted step {float(row['predicted_overlap_s']) * 1e3:.2f} ms")
    for want in ("forward", "backward (per layer)", "all-reduce (per bucket)", "update"):
        if not rows.get(want):
            sys.exit(f"FAIL: no '{want}' spans in dtsim's layer-wise step")
    if len(rows["backward (per layer)"]) < 7:
        sys.exit(f"FAIL: {len(rows['backward (per layer)'])} backward spans, the MLP has 7 linear layers")
    if abs(end - float(row["predicted_overlap_s"]) * 1e3) > 0.01 * end:
        sys.exit(f"FAIL: the drawn step lasts {end:.2f} ms, dtsim predicted {float(row['predicted_overlap_s']) * 1e3:.2f} ms")
    png = os.path.join(out, "timeline.png")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "reality", "plot_timeline.py"),
                        os.path.join(out, "runs", NAME), "--out", png], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    if r.returncode != 0 or not os.path.getsize(png):
        sys.exit(f"FAIL: plot_timeline.py exited {r.returncode}:\n{r.stdout}")
finally:
    shutil.rmtree(out, ignore_errors=True)
print("ok")
