#!/usr/bin/python3
"""The PyTorch definitions of dtsim's models (bench/reality/models.py) have exactly dtsim's parameter
tensors: the same names, shapes and order (dtsim's side printed by the dtsim_param_list helper)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, need_torch, run  # noqa: E402

need_torch()
sys.path.insert(0, os.path.join(ROOT, "bench", "reality"))
import models  # noqa: E402

HELPER = os.environ["DTSIM_PARAM_LIST"]
CASES = [
    ({"kind": "mlp"}, (1, 28, 28), 10),
    ({"kind": "mlp", "hidden": [1024, 1024, 1024, 1024, 1024, 1024]}, (1, 28, 28), 10),
    ({"kind": "mlp", "hidden": [7]}, (3, 8, 8), 4),
    ({"kind": "lenet5"}, (1, 28, 28), 10),
    ({"kind": "lenet5"}, (3, 32, 32), 10),
    ({"kind": "resnet8"}, (3, 32, 32), 10),
    ({"kind": "resnet20"}, (3, 32, 32), 10),
    ({"kind": "resnet20", "shortcut": "B"}, (3, 32, 32), 100),
    ({"kind": "resnet32"}, (3, 32, 32), 10),
]
failed = 0
for spec, shape, classes in CASES:
    r = run([HELPER, json.dumps(spec), ",".join(map(str, shape)), str(classes)])
    if r.returncode != 0:
        print(f"FAIL {spec}: dtsim_param_list exited {r.returncode}: {r.stderr.strip()}")
        failed += 1
        continue
    dtsim = [(t["name"], t["shape"]) for t in json.loads(r.stdout)]
    torch_list = models.param_list(models.build(spec, shape, classes))
    if dtsim != torch_list:
        failed += 1
        print(f"FAIL {spec} {shape} {classes}: {len(dtsim)} dtsim tensors, {len(torch_list)} PyTorch tensors")
        for k, (a, b) in enumerate(zip(dtsim, torch_list)):
            if a != b:
                print(f"  first difference at {k}: dtsim {a}, PyTorch {b}")
                break
    else:
        print(f"ok   {spec} {shape} {classes}: {len(dtsim)} tensors, "
              f"{sum(1 for _ in dtsim)} names and shapes equal, in order")
sys.exit(1 if failed else 0)
