#!/usr/bin/python3
"""bench/reality/interference.py's fit recovers the contention constants that made its input: a
measurement written by dtsim itself with memory_bandwidth 4 GB/s and overlap_slowdown 0.3 (three
links, compute beside all-reduces of 1-32 MiB) is fitted over a grid that holds them and its
neighbours — both on the grid, then the bandwidth from a (generated) copies measurement and the
slowdown on the grid; the fit must name them, with errors ~0, and the defaults' errors must not be ~0.
Needs only dtsim (no PyTorch, no root)."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DTSIM, ROOT  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "bench", "reality"))
import interference  # noqa: E402

TRUE_BW, TRUE_S = 4e9, 0.3
out = tempfile.mkdtemp(prefix="dtsim-interference-fit-")
try:
    work = os.path.join(out, "gen")
    os.makedirs(work)
    for bw, sizes in (("100Mbps", [1 << 20]), ("1Gbps", [1 << 20, 8 << 20]), ("10Gbps", [8 << 20, 32 << 20])):
        m = {"bandwidth": bw, "latency_s": 3e-5, "sizes": sizes, "rows": []}
        for s in sizes:
            row = {"bytes": s, "alone_s": 0.1, "with_s": 0.0, "comm_s": 0.0}
            row["both_done_s"] = interference.predict(DTSIM, m, row, work, TRUE_BW, TRUE_S)
            m["rows"].append(row)
        os.makedirs(os.path.join(out, "interference", bw))
        with open(os.path.join(out, "interference", bw, "measured.json"), "w") as f:
            json.dump(m, f)
    def fit_again():
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "reality", "interference.py"),
                            "--predict-only", "--out", out, "--dtsim", DTSIM, "--grid-bandwidth", "2e9,4e9,10e9",
                            "--grid-slowdown", "0,0.3,0.5"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=600)
        print(r.stdout)
        if r.returncode != 0:
            sys.exit(f"FAIL: interference.py exited {r.returncode}")
        with open(os.path.join(out, "contention.json")) as f:
            c = json.load(f)
        if c["memory_bandwidth"] != "4e+09Bps" or c["overlap_slowdown"] != TRUE_S:
            sys.exit(f"FAIL: fitted {c['memory_bandwidth']}, {c['overlap_slowdown']}; made with 4e+09Bps, {TRUE_S}")
        if c["median_abs_error_fitted"] > 1e-6:
            sys.exit(f"FAIL: the generating constants leave a median error of {c['median_abs_error_fitted']}")
        if c["median_abs_error_default"] < 0.01:
            sys.exit(f"FAIL: the defaults fit too ({c['median_abs_error_default']}): the test cannot tell them apart")

    fit_again()  # both constants on the grid (no copies measurement)
    # With a copies measurement (DDP's extra backward = 16 bytes per element at the bandwidth, here
    # 4 GB/s, off the grid's other values), the bandwidth comes from it and only the slowdown from the grid.
    elements = [1_000_000, 4_000_000, 9_000_000]
    copies = {"models": [{"kind": "mlp", "hidden": [h]} for h in (1, 2, 3)], "elements": elements,
              "plain_s": [0.01] * 3, "ddp_s": [0.01 + 16 * e / TRUE_BW for e in elements]}
    os.makedirs(os.path.join(out, "interference", "copies"))
    with open(os.path.join(out, "interference", "copies", "measured.json"), "w") as f:
        json.dump(copies, f)
    fit_again()
finally:
    subprocess.run(["rm", "-rf", out])
print("ok")
