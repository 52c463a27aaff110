#!/usr/bin/python3
"""tools/torch_profile.py round trip: the profile of a PyTorch model loads in dtsim as a timing-only
model; its tensors are the model's (names, shapes, registration order); the layers' times add up to
the hook-free measured step; dtsim's 1-worker simulated step is that sum; a malformed profile exits 2
with the file, the JSON path and the reason."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DTSIM, ROOT, need_torch, run  # noqa: E402

need_torch()
sys.path.insert(0, os.path.join(ROOT, "bench", "reality"))
import models  # noqa: E402

tmp = tempfile.mkdtemp(prefix="dtsim-torch-profile-")
fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)


try:
    prof_path = os.path.join(tmp, "lenet.profile.json")
    spec = {"kind": "lenet5"}
    r = run([sys.executable, os.path.join(ROOT, "tools", "torch_profile.py"),
             os.path.join(ROOT, "bench", "reality", "models.py") + ":make_model",
             "--args", json.dumps({"spec": spec, "input": [1, 28, 28]}), "--input", "1,28,28",
             "--batch", "16,32", "--steps", "5", "--warmup", "2", "--out", prof_path],
            env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    check(r.returncode == 0, f"torch_profile.py exits 0 ({r.stderr.strip()[-300:]})")
    prof = json.load(open(prof_path))
    torch_model = models.build(spec, (1, 28, 28), 10)
    check([(t["name"], t["shape"]) for t in prof["tensors"]] == models.param_list(torch_model),
          "the profile's tensors are the model's parameters (names, shapes, order)")
    check(prof["num_params"] == sum(p.numel() for p in torch_model.parameters()), "num_params")
    owned = sorted(i for l in prof["layers"] for i in l["tensors"])
    check(owned == list(range(len(prof["tensors"]))), "every tensor belongs to exactly one layer")
    names = [l["name"] for l in prof["layers"]]
    check(names[:3] == ["conv1", "relu1", "pool1"] and names[-1] == "loss", f"layers in execution order: {names}")
    for k, b in enumerate(prof["batches"]):
        f = sum(l["forward_s"][k] for l in prof["layers"])
        bw = sum(l["backward_s"][k] for l in prof["layers"])
        check(abs(f - prof["step"]["forward_s"][k]) <= 1e-9 + 1e-6 * f and
              abs(bw - prof["step"]["backward_s"][k]) <= 1e-9 + 1e-6 * bw,
              f"batch {b}: the layers add up to the measured forward and backward")
    conv1 = next(l for l in prof["layers"] if l["name"] == "conv1")
    check(conv1["forward_flops"] == 2 * 1 * 25 * 6 * 28 * 28, "conv1's forward FLOPs per sample")

    # dtsim: a 1-worker timing-only run of the profile, at each measured batch.
    for k, b in enumerate(prof["batches"]):
        cfg = {"name": "rt", "platform": {"network": {"model": "exact"},
                                          "workers": {"count": 1, "speed": "1Gf",
                                                      "link": {"bandwidth": "1Gbps", "latency": "10us"}},
                                          "servers": {"count": 0, "update_flops_per_param": 0}},
               "model": {"kind": "profile", "path": "lenet.profile.json"},
               "dataset": {"kind": "synthetic", "train": 4 * b, "test": 8, "features": 4},
               "algorithm": {"name": "ssgd", "comm": "allreduce"},
               "training": {"batch_size": b, "samples": 4 * b},
               "compute": {"mode": "timing-only", "time": {"kind": "profile"}}}
        cfg_path = os.path.join(tmp, "rt.json")
        json.dump(cfg, open(cfg_path, "w"))
        r = run([DTSIM, "run", cfg_path, "--quiet", "--out", os.path.join(tmp, "out")])
        check(r.returncode == 0, f"dtsim runs the profile at batch {b} ({r.stderr.strip()})")
        s = json.load(open(os.path.join(tmp, "out", "summary.json")))
        step = prof["step"]["forward_s"][k] + prof["step"]["backward_s"][k]
        sim = s["simulated_time_s"] / s["updates"]
        check(abs(sim - step) <= 1e-6 * step, f"batch {b}: simulated step {sim:.6f} s = measured {step:.6f} s")
        check(s["model_parameters"] == prof["num_params"], "dtsim's parameter count")

    # A malformed profile: exit 2, one line naming the profile, the path and the reason.
    bad = json.load(open(prof_path))
    bad["layers"][0]["tensors"] = [0, 1, 2]
    json.dump(bad, open(prof_path, "w"))
    r = run([DTSIM, "validate", cfg_path])
    check(r.returncode == 2 and r.stderr.startswith(f"error: {prof_path}: layers[3].tensors[0]: tensor 2 "
                                                    f"('conv2.weight') already belongs to layers[0]"),
          f"a tensor owned twice: exit 2 with file, path and reason ({r.stderr.strip()})")
    with open(prof_path, "w") as f:
        f.write(json.dumps(prof)[:200])
    r = run([DTSIM, "validate", cfg_path])
    check(r.returncode == 2 and r.stderr.startswith(f"error: {prof_path}: invalid JSON"),
          f"a truncated profile: exit 2 ({r.stderr.strip()})")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if fails else 0)
