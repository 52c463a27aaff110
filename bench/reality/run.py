#!/usr/bin/python3
"""dtsim against reality: real PyTorch DDP jobs on an emulated star cluster, and dtsim's prediction
of the same scenario (docs/validation.md, "Measured on an emulated cluster").

Usage (root; Debian's python3-torch; a built dtsim):
  /usr/bin/python3 bench/reality/run.py bench/reality/scenarios.json [--only REGEX] [--out DIR]
      [--dtsim PATH] [--no-network] [--network-only] [--cleanup]

For every scenario of the file:
  1. profiles the model with tools/torch_profile.py on this machine (one core, one thread);
  2. runs the single-process compute reference (no DDP);
  3. builds the emulated star (bench/reality/netns.py): one namespace per rank, veth links shaped
     by tc tbf to the scenario's bandwidth in each direction; runs one DDP rank per namespace over
     gloo with the scenario's bucket_cap_mb (compute real: <= 2 ranks pinned one per core;
     emulated: sleep layers with the profiled times, any rank count); median step time after
     warm-up, ranks aligned by a barrier before every step, a step's time the slowest rank's;
  4. writes the dtsim experiment of the same scenario (star platform with the same bandwidth and
     the measured latency, the profile as the model, compute time from the profile, SSGD with ring
     all-reduce) and runs dtsim with algorithm.overlap = the scenario's overlap kind and = none;
  5. appends a row to DIR/results.csv.
The network alone: for each "network" entry, gloo all-reduces of several sizes against dtsim's
all-reduce on the same platform, into DIR/network.csv.

Everything the harness creates in the kernel is named dtsr-*; it is removed on every exit path
(also SIGINT/SIGTERM), and the leftovers of a killed run are removed when the next one starts
(--cleanup removes them and exits).
"""
import argparse
import csv
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import netns  # noqa: E402

PY = "/usr/bin/python3"
ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CSV_FIELDS = ["scenario", "ranks", "compute", "model", "batch", "bandwidth", "bucket_mb", "regime", "measured_s",
              "compute_ref_s", "profile_step_s", "predicted_overlap_s", "overlap", "predicted_none_s",
              "error_overlap", "error_none", "comm_s_none", "latency_s", "load1", "scheduling", "contention"]
NET_FIELDS = ["ranks", "bandwidth", "bytes", "measured_s", "predicted_s", "error", "effective_Bps", "latency_s"]


# tc tbf shapes whole Ethernet frames (1514 bytes for a 1500-byte MTU); TCP with timestamps carries
# 1448 payload bytes in each. dtsim's links carry payload: its link bandwidth is the tbf rate x
# 1448/1514 (derived from the packet format, not fitted; docs/validation.md).
TCP_PAYLOAD = 1448 / 1514


class Interrupted(Exception):
    pass


def on_signal(sig, frame):
    raise Interrupted(signal.Signals(sig).name)


def parse_bandwidth(v):
    """'1Gbps' -> bits per second (dtsim's units: bps/kbps/Mbps/Gbps = bits, Bps = bytes)."""
    m = re.fullmatch(r"([\d.]+)\s*([kMG]?)(bps|Bps)", str(v))
    if not m:
        raise ValueError(f"bandwidth '{v}': expected e.g. 100Mbps, 1Gbps, 10Gbps")
    f = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)] * (8 if m.group(3) == "Bps" else 1)
    return float(m.group(1)) * f


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def as_ms(seconds):
    """A results.csv time (seconds, or an "n/a ..." text) for the log."""
    try:
        return f"{float(seconds) * 1e3:.2f} ms"
    except ValueError:
        return seconds


def log(msg):
    print(f"[reality {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ profiles
def profile_model(sc, out_dir, cache):
    """The torch_profile.py profile of the scenario's model at its batch (cached per model)."""
    key = json.dumps([sc["model"], sc["input"], sc.get("classes", 10), sc["batch"]], sort_keys=True)
    if key in cache:
        return cache[key]
    name = f"{sc['model']['kind']}-{hashlib.sha1(key.encode()).hexdigest()[:8]}-b{sc['batch']}.profile.json"
    path = os.path.join(out_dir, "profiles", name)
    args = {"spec": sc["model"], "input": sc["input"], "classes": sc.get("classes", 10)}
    cmd = ["taskset", "-c", "0", PY, os.path.join(ROOT, "tools", "torch_profile.py"),
           os.path.join(HERE, "models.py") + ":make_model", "--args", json.dumps(args),
           "--input", ",".join(map(str, sc["input"])), "--batch", str(sc["batch"]),
           "--steps", str(sc.get("profile_steps", 20)), "--warmup", "5", "--out", path]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, **ENV),
                   preexec_fn=functools.partial(netns.high_priority, "fifo" if os.environ.get("DTSR_RT") == "1" else ""))
    cache[key] = path
    return path


def scaled_profile(path, scale, out_dir):
    """A copy of the profile with every time x scale (emulated accelerators faster than this CPU)."""
    if scale == 1.0:
        return path
    with open(path) as f:
        p = json.load(f)
    for l in p["layers"]:
        l["forward_s"] = [v * scale for v in l["forward_s"]]
        l["backward_s"] = [v * scale for v in l["backward_s"]]
    for k in ("forward_s", "backward_s", "update_s", "step_s"):
        p["step"][k] = [v * scale for v in p["step"][k]]
    p["name"] += f" x{scale:g}"
    out = os.path.join(out_dir, "profiles", os.path.basename(path).replace(".profile.json", f"-x{scale:g}.profile.json"))
    with open(out, "w") as f:
        json.dump(p, f, indent=1)
    return out


# ------------------------------------------------------------------ jobs
def rt_policy(ranks):
    """The real-time policy of a job's processes (netns.high_priority): none without $DTSR_RT=1;
    SCHED_FIFO only while every measured process can have a core of its own — a rank spinning in
    gloo (seen with 8 ranks at 10 Gbit/s) never lets a same-priority rank on its core run — else
    $DTSR_MANY (round-robin)."""
    if os.environ.get("DTSR_RT") != "1":
        return ""
    return "fifo" if ranks <= (os.cpu_count() or 1) else os.environ.get("DTSR_MANY", "rr")


def scheduling(ranks):
    """How a job's ranks are scheduled (Job.start, worker.comm_threads_first), as results.csv says it."""
    rt = rt_policy(ranks)
    if rt != "fifo":
        return rt or "cfs, nice -20"
    return "fifo, communication first" if os.environ.get("DTSR_COMM_FIRST") == "1" else "fifo, equal priorities"


class Job:
    """Worker processes; they die with the harness (PR_SET_PDEATHSIG) and are recorded for cleanup."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, env, ranks=1):
        p = subprocess.Popen(cmd, env=dict(env, DTSR_PARENT=str(os.getpid())), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             preexec_fn=functools.partial(netns.high_priority, rt_policy(ranks)))
        self.procs.append(p)
        netns.record_pids([q.pid for q in self.procs])
        return p

    def wait(self, timeout):
        deadline = time.time() + timeout
        outs = []
        for p in self.procs:
            try:
                out, _ = p.communicate(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError("a rank did not finish in time")
            outs.append(out)
            if p.returncode != 0:
                self.kill()
                raise RuntimeError(f"a rank failed (exit {p.returncode}):\n{out[-3000:]}")
        return outs

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def worker_args(sc, profile, emulated):
    a = ["--batch", str(sc["batch"]), "--steps", str(sc.get("steps", 20)), "--warmup", str(sc.get("warmup", 5)),
         "--input", ",".join(map(str, sc["input"])), "--classes", str(sc.get("classes", 10))]
    if emulated:
        a += ["--profile", profile]
    else:
        a += ["--model", json.dumps(sc["model"])]
    return a


def run_reference(sc, profile, emulated, work):
    out = os.path.join(work, "single.json")
    if "reference_steps" in sc:
        sc = dict(sc, steps=sc["reference_steps"])
    cmd = (["taskset", "-c", "0"] if not emulated else []) + [PY, os.path.join(HERE, "worker.py"), "single",
                                                               "--out", out] + worker_args(sc, profile, emulated)
    job = Job()
    job.start(cmd, dict(os.environ, **ENV))
    job.wait(600)
    with open(out) as f:
        return json.load(f)["median_s"]


def run_ddp(sc, profile, emulated, work, timeline=False):
    n = sc["ranks"]
    if not emulated and n > 2:
        raise ValueError(f"{sc['name']}: real compute runs at most 2 ranks (one per core)")
    star = netns.Star(n, parse_bandwidth(sc["bandwidth"])).create()
    job = Job()
    try:
        latency = star.measure_latency()
        for r in range(n):
            out = os.path.join(work, f"rank{r}.json")
            cmd = ["ip", "netns", "exec", netns.host_ns(r), PY, os.path.join(HERE, "worker.py"), "ddp",
                   "--rank", str(r), "--world", str(n), "--master", netns.host_addr(0),
                   "--bucket-mb", str(sc.get("bucket_mb", 25)), "--out", out] + worker_args(sc, profile, emulated)
            if not emulated:
                cmd += ["--cpu", str(r % 2)]
            if timeline:
                cmd += ["--timeline"]
            job.start(cmd, dict(os.environ, GLOO_SOCKET_IFNAME=netns.HOST_IF, **ENV), ranks=n)
        job.wait(sc.get("timeout_s", 900))
    finally:
        job.kill()
        star.destroy()
    ranks = []
    for r in range(n):
        with open(os.path.join(work, f"rank{r}.json")) as f:
            ranks.append(json.load(f))
    per_step = [max(rk["times"][k] for rk in ranks) for k in range(len(ranks[0]["times"]))]
    return statistics.median(per_step), latency, ranks


# ------------------------------------------------------------------ dtsim
def experiment(name, n, bandwidth, latency, profile, batch, steps, update_s, num_params, overlap, model="exact"):
    """dtsim's experiment of a scenario: N workers on a star (links of the tbf rate's TCP payload
    bandwidth, the measured latency), SSGD with ring all-reduce, timing-only with the profile's
    times; the worker's optimizer step costs the profile's measured update_s."""
    speed = 1e9
    upd = update_s * speed / num_params
    bandwidth = bandwidth * TCP_PAYLOAD
    alg = {"name": "ssgd", "comm": "allreduce", "lr": 0.01}
    if overlap is not None:
        alg["overlap"] = overlap
    return {
        "name": name,
        "seed": 1,
        "platform": {"network": {"model": model},
                     "topology": {"kind": "star"},
                     "workers": {"count": n, "speed": f"{speed:g}f",
                                 "link": {"bandwidth": f"{bandwidth / 8:.6g}Bps", "latency": f"{latency:.6g}s"}},
                     "servers": {"count": 0, "update_flops_per_param": upd}},
        "model": {"kind": "profile", "path": os.path.abspath(profile)},
        "dataset": {"kind": "synthetic", "train": n * batch * steps, "test": 16, "features": 4},
        "algorithm": alg,
        "training": {"batch_size": batch, "samples": n * batch * steps},
        "compute": {"mode": "timing-only", "time": {"kind": "profile"}},
        "output": {"trace": True},
    }


def dtsim_supports_overlap(dtsim, work):
    """Whether this dtsim accepts algorithm.overlap (the layer-wise timing work)."""
    cfg = experiment("probe", 2, 1e9, 1e-5, DUMMY_PROFILE(work), 1, 1, 0.0, 1, {"kind": "ddp"})
    path = os.path.join(work, "probe.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([dtsim, "validate", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return r.returncode == 0, r.stderr.strip()


def DUMMY_PROFILE(work, elements=1):  # noqa: N802
    """A one-tensor, zero-time profile: dtsim's all-reduce alone (network-only runs, probes)."""
    path = os.path.join(work, f"allreduce-{elements}.profile.json")
    t = 1e-9
    doc = {"format": "dtsim-model-profile/1", "name": f"one tensor of {elements}",
           "tensors": [{"name": "w", "shape": [elements], "elements": elements}], "num_params": elements,
           "batches": [1], "layers": [{"name": "w", "type": "linear", "tensors": [0], "forward_s": [t],
                                       "backward_s": [t]}]}
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def run_dtsim(dtsim, cfg, work, tag):
    path = os.path.join(work, f"dtsim-{tag}.json")
    out = os.path.join(work, f"dtsim-{tag}")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    r = subprocess.run([dtsim, "run", path, "--out", out, "--quiet"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dtsim run {path} failed (exit {r.returncode}): {r.stderr.strip()}")
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    return s["simulated_time_s"] / s["updates"], s


# ------------------------------------------------------------------ scenarios
def run_scenario(sc, a, cache, overlap_ok):
    """Measures a scenario (profile, reference, DDP job) into runs/NAME/measured.json, then predicts."""
    emulated = sc["compute"] == "emulated"
    work = os.path.join(a.out, "runs", sc["name"])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    base = profile_model(sc, a.out, cache)
    profile = scaled_profile(base, sc.get("scale", 1.0), a.out) if emulated else base
    l1 = load1()
    ref = run_reference(sc, profile, emulated, work)
    measured, latency, ranks = run_ddp(sc, profile, emulated, work, timeline=sc.get("timeline", False))
    m = {"scenario": sc, "profile": os.path.abspath(profile), "measured_s": measured, "compute_ref_s": ref,
         "latency_s": latency, "load1": l1, "ranks": ranks, "scheduling": scheduling(sc["ranks"])}
    with open(os.path.join(work, "measured.json"), "w") as f:
        json.dump(m, f, indent=1)
    return predict_scenario(m, a, overlap_ok, work)


def predict_scenario(m, a, overlap_ok, work):
    """dtsim's predictions (overlap kind "none" and the scenario's) of a measured scenario."""
    sc, measured = m["scenario"], m["measured_s"]
    if not os.path.exists(m["profile"]):  # a copied run directory (bench/reality/measured): its own profiles/
        m = {**m, "profile": os.path.join(a.out, "profiles", os.path.basename(m["profile"]))}
    with open(m["profile"]) as f:
        prof = json.load(f)
    step_prof = prof["step"]["forward_s"][0] + prof["step"]["backward_s"][0]
    args = (sc["ranks"], parse_bandwidth(sc["bandwidth"]), m["latency_s"], m["profile"], sc["batch"],
            sc.get("dtsim_steps", 10), prof["step"]["update_s"][0], prof["num_params"])
    net = sc.get("network_model", "exact")
    # A real-compute rank's collectives share its core with backward: the constants fitted by
    # interference.py. Emulated ranks keep dtsim's defaults (docs/validation.md says why).
    contention = load_contention(a) if sc["compute"] == "real" else {}

    def cfg(tag, overlap):
        c = experiment(sc["name"] + "-" + tag, *args, overlap, model=net)
        c["platform"]["workers"].update(contention)
        return c
    none_s, _ = run_dtsim(a.dtsim, cfg("none", {"kind": "none"} if overlap_ok else None), work, "none")
    kind = sc.get("overlap", {"kind": "ddp", "bucket_cap_mb": sc.get("bucket_mb", 25), "first_bucket_mb": 1})
    ov_s = None
    if overlap_ok:
        ov_s, _ = run_dtsim(a.dtsim, cfg("overlap", kind), work, "overlap")
    emulated = sc["compute"] == "emulated"
    row = {"scenario": sc["name"], "ranks": sc["ranks"], "compute": sc["compute"] + (
        f" x{sc.get('scale', 1.0):g}" if emulated else ""), "model": model_label(sc["model"]), "batch": sc["batch"],
        "bandwidth": sc["bandwidth"], "bucket_mb": sc.get("bucket_mb", 25), "regime": sc.get("regime", ""),
        "measured_s": f"{measured:.6f}", "compute_ref_s": f"{m['compute_ref_s']:.6f}",
        "profile_step_s": f"{step_prof:.6f}",
        "predicted_overlap_s": f"{ov_s:.6f}" if ov_s is not None else "n/a (no algorithm.overlap in this dtsim)",
        "overlap": kind["kind"], "predicted_none_s": f"{none_s:.6f}",
        "error_overlap": f"{(ov_s - measured) / measured:+.4f}" if ov_s is not None else "",
        "error_none": f"{(none_s - measured) / measured:+.4f}",
        "comm_s_none": f"{none_s - step_prof - prof['step']['update_s'][0]:.6f}",
        "latency_s": f"{m['latency_s']:.3g}", "load1": f"{m['load1']:.2f}",
        "scheduling": m.get("scheduling", "fifo, equal priorities"),
        "contention": " ".join(f"{k}={v}" for k, v in contention.items()) or "dtsim defaults"}
    return row


def load_contention(a):
    """The CPU-contention constants for real-compute ranks: --contention FILE, else OUT/contention.json
    (bench/reality/interference.py's fit on this machine), else dtsim's defaults (an empty dict)."""
    path = a.contention or os.path.join(a.out, "contention.json")
    if not os.path.exists(path):
        if a.contention:
            raise FileNotFoundError(f"--contention {a.contention}: no such file")
        return {}
    with open(path) as f:
        c = json.load(f)
    return {k: c[k] for k in ("memory_bandwidth", "overlap_slowdown") if k in c}


def model_label(spec):
    if spec["kind"] == "mlp":
        return "mlp " + "-".join(str(h) for h in spec.get("hidden", [256, 128]))
    return spec["kind"]


def run_network(entry, a):
    """gloo all-reduce of each size vs dtsim's all-reduce prediction on the same platform."""
    rows = []
    n, bw = entry["ranks"], parse_bandwidth(entry["bandwidth"])
    work = os.path.join(a.out, "network", f"n{n}-{entry['bandwidth']}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    star = netns.Star(n, bw).create()
    job = Job()
    sizes = entry["sizes"]
    try:
        latency = star.measure_latency()
        for r in range(n):
            cmd = ["ip", "netns", "exec", netns.host_ns(r), PY, os.path.join(HERE, "worker.py"), "allreduce",
                   "--rank", str(r), "--world", str(n), "--master", netns.host_addr(0),
                   "--sizes", ",".join(map(str, sizes)), "--steps", str(entry.get("repeats", 10)), "--warmup", "2",
                   "--out", os.path.join(work, f"rank{r}.json")]
            job.start(cmd, dict(os.environ, GLOO_SOCKET_IFNAME=netns.HOST_IF, **ENV), ranks=n)
        job.wait(900)
    finally:
        job.kill()
        star.destroy()
    res = []
    for r in range(n):
        with open(os.path.join(work, f"rank{r}.json")) as f:
            res.append(json.load(f))
    m = {"entry": entry, "latency_s": latency,
         "measured_s": [statistics.median(max(rk["times"][k][i] for rk in res) for i in range(len(res[0]["times"][k])))
                        for k in range(len(sizes))]}
    with open(os.path.join(work, "measured.json"), "w") as f:
        json.dump(m, f, indent=1)
    return predict_network(m, a, work)


def predict_network(m, a, work):
    entry, latency = m["entry"], m["latency_s"]
    n, bw = entry["ranks"], parse_bandwidth(entry["bandwidth"])
    rows = []
    # the ring alone: overlap "none" (a layer-wise default would add the CPU copies of DDP's buckets)
    whole = {"kind": "none"} if dtsim_supports_overlap(a.dtsim, work) else None
    for s, measured in zip(entry["sizes"], m["measured_s"]):
        elements = max(1, s // 4)
        cfg = experiment(f"allreduce-{s}", n, bw, latency, DUMMY_PROFILE(work, elements), 1, 1, 0.0, elements, whole,
                         model=entry.get("network_model", "exact"))
        pred, _ = run_dtsim(a.dtsim, cfg, work, f"{s}")
        pred -= 2e-9  # the profile's forward + backward
        rows.append({"ranks": n, "bandwidth": entry["bandwidth"], "bytes": s, "measured_s": f"{measured:.6f}",
                     "predicted_s": f"{pred:.6f}", "error": f"{(pred - measured) / measured:+.4f}",
                     "effective_Bps": f"{2 * (n - 1) / n * s / measured:.4g}", "latency_s": f"{latency:.3g}"})
        log(f"  all-reduce n={n} {entry['bandwidth']} {s} B: measured {measured * 1e3:.3f} ms, dtsim "
            f"{pred * 1e3:.3f} ms ({rows[-1]['error']})")
    return rows


def append_csv(path, fields, rows):
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        for r in rows:
            w.writerow(r)


def hold_harness(exclusive=True):
    """The harness's signal handlers (SIGINT, SIGTERM, SIGHUP raise Interrupted, so that every exit
    path tears down) and, when `exclusive`, its lock: one harness at a time on a machine (the names
    are fixed, and a start removes every dtsr- object). Returns the open lock file (held while it is
    open), or None when interrupted while waiting for another harness."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    lock = open(netns.LOCK_FILE, "a+")
    if not exclusive:
        return lock
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another bench/reality harness holds " + netns.LOCK_FILE + ": waiting for it to finish")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except Interrupted:
            return None
    return lock


def main():
    ap = argparse.ArgumentParser(description="dtsim against real PyTorch DDP jobs on an emulated cluster")
    ap.add_argument("scenarios", nargs="?", default=os.path.join(HERE, "scenarios.json"))
    ap.add_argument("--only", help="run only the scenarios whose name matches this regular expression")
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "reality"))
    ap.add_argument("--dtsim", default=os.environ.get("DTSIM", os.path.join(ROOT, "build", "dtsim")))
    ap.add_argument("--no-network", action="store_true", help="skip the network-only all-reduce measurements")
    ap.add_argument("--network-only", action="store_true")
    ap.add_argument("--cleanup", action="store_true", help="remove the leftovers of a killed run and exit")
    ap.add_argument("--predict-only", action="store_true",
                    help="measure nothing: predict the saved measurements in --out again (results.csv rewritten)")
    ap.add_argument("--no-rt", action="store_true",
                    help="measured processes at nice -20 only, never SCHED_FIFO priority 1 (netns.high_priority)")
    ap.add_argument("--equal-priority", action="store_true",
                    help="a rank's gloo threads at the compute thread's FIFO priority (before 2026-12-07: "
                         "no communication progresses during backward; worker.comm_threads_first)")
    ap.add_argument("--contention", help="CPU-contention constants for the real-compute scenarios (default: "
                                         "OUT/contention.json from interference.py, else dtsim's defaults)")
    ap.add_argument("--no-interference", action="store_true",
                    help="do not measure and fit the contention constants first (use OUT/contention.json or the defaults)")
    a = ap.parse_args()
    os.environ["DTSR_RT"] = "0" if a.no_rt else "1"
    os.environ["DTSR_COMM_FIRST"] = "0" if a.equal_priority else "1"

    lock = hold_harness(exclusive=not a.predict_only)  # noqa: F841 (held until exit)
    if lock is None:
        return 130
    if a.cleanup:
        netns.cleanup(verbose=True)
        return 0
    ok, why = (True, "") if a.predict_only else netns.available()
    if not ok:
        print(f"reality: cannot emulate a cluster here: {why}", file=sys.stderr)
        return 77
    if not os.access(a.dtsim, os.X_OK):
        print(f"reality: no dtsim at {a.dtsim} (build it, or pass --dtsim / set $DTSIM)", file=sys.stderr)
        return 2
    try:
        with open(a.scenarios) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: {a.scenarios}: {e}", file=sys.stderr)
        return 2
    defaults = spec.get("defaults", {})
    if a.predict_only:
        saved = [sc["name"] for sc in spec.get("scenarios", [])
                 if os.path.exists(os.path.join(a.out, "runs", sc["name"], "measured.json"))]
        saved += [e for e in spec.get("network", []) if os.path.exists(os.path.join(
            a.out, "network", f"n{e['ranks']}-{e['bandwidth']}", "measured.json"))]
        if not saved and not os.path.exists(os.path.join(a.out, "network.csv")):
            print(f"error: {a.out}: nothing measured there for {a.scenarios} (no runs/<scenario>/measured.json): "
                  f"--predict-only re-predicts a directory run.py measured", file=sys.stderr)
            return 2
    os.makedirs(os.path.join(a.out, "profiles"), exist_ok=True)
    overlap_ok, why = dtsim_supports_overlap(a.dtsim, a.out)
    if not overlap_ok:
        log(f"this dtsim has no algorithm.overlap yet ({why.splitlines()[-1] if why else '?'}): predicting with "
            f"\"none\" only; the overlap column says n/a")
    cache = {}
    if a.predict_only:  # the saved measurements of an earlier run, predicted again (e.g. a newer dtsim)
        for name in ("results.csv", "network.csv"):
            if os.path.exists(os.path.join(a.out, name)):
                os.replace(os.path.join(a.out, name), os.path.join(a.out, name + ".old"))
        for sc in spec.get("scenarios", []):
            work = os.path.join(a.out, "runs", sc["name"])
            if (a.only and not re.search(a.only, sc["name"])) or not os.path.exists(os.path.join(work, "measured.json")):
                continue
            with open(os.path.join(work, "measured.json")) as f:
                m = json.load(f)
            if "scenario" not in m:  # written before measured.json kept the inputs: rebuild them
                sc = {**defaults, **sc}
                key = json.dumps([sc["model"], sc["input"], sc.get("classes", 10), sc["batch"]], sort_keys=True)
                prof = os.path.join(a.out, "profiles", f"{sc['model']['kind']}-"
                                    f"{hashlib.sha1(key.encode()).hexdigest()[:8]}-b{sc['batch']}.profile.json")
                if sc["compute"] == "emulated" and sc.get("scale", 1.0) != 1.0:
                    prof = prof.replace(".profile.json", f"-x{sc['scale']:g}.profile.json")
                r0 = m["row"]
                m = {"scenario": sc, "profile": prof, "measured_s": float(r0["measured_s"]),
                     "compute_ref_s": float(r0["compute_ref_s"]), "latency_s": float(r0["latency_s"]),
                     "load1": float(r0["load1"]), "ranks": m["ranks"]}
            else:
                m["scenario"] = {**defaults, **m["scenario"]}
            row = predict_scenario(m, a, overlap_ok, work)
            append_csv(os.path.join(a.out, "results.csv"), CSV_FIELDS, [row])
            log(f"{sc['name']}: measured {float(row['measured_s']) * 1e3:.2f} ms; dtsim {row['overlap']} "
                f"{as_ms(row['predicted_overlap_s'])} ({row['error_overlap'] or 'n/a'}), none "
                f"{float(row['predicted_none_s']) * 1e3:.2f} ms ({row['error_none']})")
        old_net = os.path.join(a.out, "network.csv.old")
        for entry in spec.get("network", []):
            work = os.path.join(a.out, "network", f"n{entry['ranks']}-{entry['bandwidth']}")
            if not os.path.exists(os.path.join(work, "measured.json")) and os.path.exists(old_net):
                rows = [r for r in csv.DictReader(open(old_net))
                        if int(r["ranks"]) == entry["ranks"] and r["bandwidth"] == entry["bandwidth"]]
                if [int(r["bytes"]) for r in rows] == entry["sizes"]:  # rebuilt from an older network.csv
                    with open(os.path.join(work, "measured.json"), "w") as f:
                        json.dump({"entry": entry, "latency_s": float(rows[0]["latency_s"]),
                                   "measured_s": [float(r["measured_s"]) for r in rows]}, f, indent=1)
            if os.path.exists(os.path.join(work, "measured.json")):
                with open(os.path.join(work, "measured.json")) as f:
                    append_csv(os.path.join(a.out, "network.csv"), NET_FIELDS, predict_network(json.load(f), a, work))
        return 0
    try:
        real = [sc for sc in spec.get("scenarios", []) if {**defaults, **sc}["compute"] == "real"
                and not (a.only and not re.search(a.only, sc["name"]))]
        if real and not a.network_only and not a.contention and not a.no_interference:
            # The CPU-contention constants of this machine, fitted on their own micro-benchmark first
            # (in this process: the signal handlers, the lock and the cleanup below cover it).
            import interference
            interference.measure_and_fit(a.out, a.dtsim)
        if not a.network_only:
            for sc in spec["scenarios"]:
                sc = {**defaults, **sc}
                if a.only and not re.search(a.only, sc["name"]):
                    continue
                log(f"{sc['name']}: {sc['ranks']} ranks, {sc['compute']}, {model_label(sc['model'])}, batch "
                    f"{sc['batch']}, {sc['bandwidth']}, buckets {sc.get('bucket_mb', 25)} MB")
                row = run_scenario(sc, a, cache, overlap_ok)
                append_csv(os.path.join(a.out, "results.csv"), CSV_FIELDS, [row])
                log(f"  measured {float(row['measured_s']) * 1e3:.2f} ms/step (compute alone "
                    f"{float(row['compute_ref_s']) * 1e3:.2f}); dtsim {row['overlap']}: {as_ms(row['predicted_overlap_s'])} "
                    f"({row['error_overlap'] or 'n/a'}), none: {float(row['predicted_none_s']) * 1e3:.2f} ms "
                    f"({row['error_none']})")
        if not a.no_network:
            for entry in spec.get("network", []):
                if a.only and not re.search(a.only, f"network-n{entry['ranks']}-{entry['bandwidth']}"):
                    continue
                log(f"network alone: {entry['ranks']} ranks, {entry['bandwidth']}")
                append_csv(os.path.join(a.out, "network.csv"), NET_FIELDS, run_network(entry, a))
    except Interrupted as e:
        log(f"interrupted ({e}): tearing down")
        netns.cleanup()
        return 130
    finally:
        netns.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
