#!/usr/bin/python3
"""bench/reality/run.py leaves nothing behind: after SIGINT it has removed every namespace, link and
worker process it made; after SIGKILL its workers die with it (PR_SET_PDEATHSIG) and the next run
removes the namespaces it left; interference.py, the micro-benchmark run.py starts with, tears
down on SIGTERM too. Needs root, network namespaces and python3-torch (else exit 77)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DTSIM, ROOT, need_netns, need_torch  # noqa: E402

need_torch()
netns = need_netns()
RUN = os.path.join(ROOT, "bench", "reality", "run.py")
tmp = tempfile.mkdtemp(prefix="dtsim-reality-cleanup-")
fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        fails.append(what)


def workers():
    out = subprocess.run(["pgrep", "-f", "bench/reality/worker.py"], stdout=subprocess.PIPE, text=True).stdout
    return [int(p) for p in out.split()]


def stop(p, sig):
    """Sends sig and waits up to a minute for the harness to tear down (SIGKILL after)."""
    p.send_signal(sig)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()


def start_long_run():
    """A run whose DDP job lasts minutes (emulated, many steps); returns once its ranks run."""
    spec = {"defaults": {"classes": 10},
            "scenarios": [{"name": "long", "ranks": 2, "compute": "emulated", "model": {"kind": "mlp", "hidden": [64]},
                           "input": [1, 28, 28], "batch": 16, "bandwidth": "1Gbps", "steps": 100000, "reference_steps": 5,
                           "warmup": 1, "profile_steps": 3}]}
    path = os.path.join(tmp, "long.json")
    json.dump(spec, open(path, "w"))
    p = subprocess.Popen([sys.executable, RUN, path, "--no-network", "--out", os.path.join(tmp, "out"),
                          "--dtsim", DTSIM], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        ns, _ = netns.leftovers()
        if "dtsr-h1" in ns and subprocess.run(["ip", "netns", "pids", "dtsr-h1"], stdout=subprocess.PIPE,
                                              text=True).stdout.strip():
            time.sleep(2)  # the ranks are inside their namespaces: mid-run
            return p
        if p.poll() is not None:
            break
        time.sleep(0.2)
    p.kill()
    print(p.stdout.read())
    sys.exit("FAIL: the long run never got its ranks running")


try:
    # SIGINT: the harness tears everything down itself.
    p = start_long_run()
    stop(p, signal.SIGINT)
    check(p.returncode == 130, f"SIGINT: run.py exits 130 (got {p.returncode})")
    ns, links = netns.leftovers()
    check(ns == [] and links == [], f"SIGINT: no namespaces or links left ({ns}, {links})")
    check(workers() == [], "SIGINT: no worker processes left")

    # SIGKILL: nothing runs in the harness; its workers die with it, the next run cleans up.
    p = start_long_run()
    p.kill()
    p.wait()
    deadline = time.time() + 10
    while workers() and time.time() < deadline:
        time.sleep(0.2)
    check(workers() == [], "SIGKILL: the workers died with the harness")
    ns, _ = netns.leftovers()
    check(len(ns) > 0, f"SIGKILL: the killed run left its namespaces ({ns})")
    net = {"network": [{"ranks": 2, "bandwidth": "1Gbps", "sizes": [65536], "repeats": 2}]}
    json.dump(net, open(os.path.join(tmp, "net.json"), "w"))
    r = subprocess.run([sys.executable, RUN, os.path.join(tmp, "net.json"), "--network-only", "--out",
                        os.path.join(tmp, "out2"), "--dtsim", DTSIM], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    check(r.returncode == 0, "the next run succeeds" + ("" if r.returncode == 0 else ":\n" + r.stdout[-2000:]))
    check("removed leftovers of an earlier run" in r.stdout, "the next run says it removed the leftovers")
    ns, links = netns.leftovers()
    check(ns == [] and links == [] and workers() == [], f"after the next run: nothing left ({ns}, {links})")

    # SIGTERM during interference.py (the micro-benchmark run.py runs first): torn down as well.
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "reality", "interference.py"), "--out",
                          os.path.join(tmp, "out3"), "--dtsim", DTSIM], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not workers() and p.poll() is None:
        time.sleep(0.2)
    time.sleep(1)
    stop(p, signal.SIGTERM)
    check(p.returncode == 130, f"SIGTERM: interference.py exits 130 (got {p.returncode})")
    deadline = time.time() + 10
    while workers() and time.time() < deadline:
        time.sleep(0.2)
    ns, links = netns.leftovers()
    check(ns == [] and links == [] and workers() == [], f"SIGTERM: interference.py left nothing ({ns}, {links})")
finally:
    netns.cleanup()
    subprocess.run(["rm", "-rf", tmp])
sys.exit(1 if fails else 0)
