#!/usr/bin/python3
"""The reality smoke scenario (tests/reality/smoke.json: 2 ranks, real compute, 1 Gbit/s, a few
steps) through bench/reality/run.py, its ranks' communication threads first (the default), and
dtsim's contention constants at their defaults (--no-interference): dtsim's prediction is within 10 % of the measured DDP step
(with the matching overlap kind when this dtsim has algorithm.overlap, else with "none", which for
this communication-bound scenario differs from it by the little backward that DDP overlaps).
Needs root, network namespaces and python3-torch (else exit 77)."""
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DTSIM, ROOT, need_netns, need_torch  # noqa: E402

need_torch()
need_netns()
out = tempfile.mkdtemp(prefix="dtsim-reality-smoke-")
try:
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "reality", "run.py"),
                        os.path.join(ROOT, "tests", "reality", "smoke.json"), "--no-network", "--no-interference", "--out", out,
                        "--dtsim", DTSIM], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    print(r.stdout)
    if r.returncode != 0:
        sys.exit(f"FAIL: run.py exited {r.returncode}")
    row = list(csv.DictReader(open(os.path.join(out, "results.csv"))))[0]
    if row["scheduling"] != "fifo, communication first":  # worker.comm_threads_first, the default
        sys.exit(f"FAIL: the ranks ran '{row['scheduling']}', not 'fifo, communication first'")
    for r in range(2):  # and the threads got it: the computing one at FIFO 1, every other (gloo's) at 2
        with open(os.path.join(out, "runs", row["scenario"], f"rank{r}.json")) as f:
            threads = json.load(f)["threads"]
        print(f"rank {r} threads (policy, priority), computing thread first: {threads}")
        if threads[0] != ["fifo", 1] or len(threads) < 2 or any(t != ["fifo", 2] for t in threads[1:]):
            sys.exit(f"FAIL: rank {r}'s threads ran {threads}, not FIFO 1 then FIFO 2 for gloo's")
    err = float(row["error_overlap"] or row["error_none"])
    kind = row["overlap"] if row["error_overlap"] else "none"
    print(f"measured {row['measured_s']} s/step, dtsim ({kind}) {row['predicted_overlap_s'] if row['error_overlap'] else row['predicted_none_s']} s: error {err:+.1%}")
    if abs(err) > 0.10:
        sys.exit(f"FAIL: |error| {abs(err):.1%} > 10 %")
finally:
    subprocess.run(["rm", "-rf", out])
print("ok")
