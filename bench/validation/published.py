#!/usr/bin/env python3
"""dtsim against published measurements of real clusters (docs/validation.md, "Published measurements").

  python3 bench/validation/published.py [DTSIM] [--out DIR] [--jobs N] [--only ID[,ID...]]
  python3 bench/validation/published.py [DTSIM] --fit [--only ID[,ID...]]
  python3 bench/validation/published.py [DTSIM] --spec-network [--only ID[,ID...]]

DTSIM is the dtsim binary (default build/dtsim). Every study is a `dtsim sweep` study in
examples/validation/ (one command each: `dtsim sweep examples/validation/<id>.json`); this script runs
them (into DIR/<id>, default results/validation; finished runs are reused) and prints the markdown
table: published figure, dtsim with the framework's overlap kind, error, dtsim with `none`, error,
and the median and max |error| of the predicted points.

Calibration, per study (the roles in STUDIES below):
  compute  the published 1-GPU figure sets the per-GPU step time (`compute.time` in the study JSON,
           "fixed" seconds = batch / published 1-GPU throughput), or the device catalog where a study
           says so;
  network  the effective bandwidth of the inter-node link, fitted on the smallest multi-node point
           only, separately for each overlap kind (the study JSON's `platform.topology.uplink.bandwidth`
           or `platform.workers.link.bandwidth` list, zipped with `algorithm.overlap`); `--fit`
           re-derives these constants by bisection and prints them;
  predict  everything else, without refitting.
Studies without a point beyond their smallest multi-node one use the spec network (no fit).
`--spec-network` runs the fitted studies with the spec network instead (a diagnostic: no fit).

Python 3 standard library only; dtsim runs as a subprocess under `nice -n 10`.
"""
import argparse
import copy
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "validation")

DLPERF = ("https://github.com/Oneflow-Inc/DLPerf/blob/c89430bac64f64caabb0445ff7eb80175641454c/"
          "reports/dlperf_benchmark_test_report_v1.md")
DDP_README = ("https://github.com/pytorch/pytorch/blob/bf69c149b872e3c19ad493406a6d67ce3e97d716/"
              "benchmarks/distributed/ddp/README.md")

# A point: (label, GPUs, published value, role, index of the matching overlap in the study's
# algorithm.overlap list). role: "compute" (sets compute), "network" (sets the network constant),
# "predict". The `none` column is the study's overlap of kind "none".
STUDIES = [
    dict(id="pytorch-ddp-readme-resnet50",
         setup="PyTorch 1.4 DDP, ResNet-50, batch 32, DGX-1 V100, 4x100 Gb/s IB per machine",
         source=f"[PyTorch DDP benchmark README]({DDP_README}), resnet50 tables",
         metric="s/iter", batch=32, network="spec", spec="400Gbps",
         compute="README 1 GPU without DDP: 0.097 s/iter",
         points=[("1 GPU, no DDP, p50", 1, 0.097, "compute", 0),
                 ("1 GPU, DDP 25 MB, p50", 1, 0.100, "predict", 0),
                 ("2 GPUs, DDP 25 MB, p50", 2, 0.103, "predict", 0),
                 ("4 GPUs, DDP 25 MB, p50", 4, 0.103, "predict", 0),
                 ("8 GPUs, DDP 25 MB, p50", 8, 0.104, "predict", 0),
                 ("16 GPUs (2 machines), DDP 25 MB, p50", 16, 0.104, "predict", 0),
                 ("2 GPUs, DDP 1 MB, p75", 2, 0.104, "predict", 1),
                 ("4 GPUs, DDP 1 MB, p75", 4, 0.105, "predict", 1),
                 ("8 GPUs, DDP 1 MB, p75", 8, 0.107, "predict", 1),
                 ("16 GPUs (2 machines), DDP 1 MB, p75", 16, 0.108, "predict", 1)]),
    dict(id="pytorch-ddp-readme-resnet101",
         setup="PyTorch 1.4 DDP, ResNet-101, batch 32, DGX-1 V100, 4x100 Gb/s IB per machine",
         source=f"[PyTorch DDP benchmark README]({DDP_README}), resnet101 tables",
         metric="s/iter", batch=32, network="spec", spec="400Gbps",
         compute="README 1 GPU without DDP: 0.162 s/iter",
         points=[("1 GPU, no DDP, p50", 1, 0.162, "compute", 0),
                 ("1 GPU, DDP 25 MB, p50", 1, 0.171, "predict", 0),
                 ("2 GPUs, DDP 25 MB, p50", 2, 0.176, "predict", 0),
                 ("4 GPUs, DDP 25 MB, p50", 4, 0.176, "predict", 0),
                 ("8 GPUs, DDP 25 MB, p50", 8, 0.179, "predict", 0),
                 ("16 GPUs (2 machines), DDP 25 MB, p50", 16, 0.179, "predict", 0),
                 ("2 GPUs, DDP 1 MB, p75", 2, 0.179, "predict", 1),
                 ("4 GPUs, DDP 1 MB, p75", 4, 0.180, "predict", 1),
                 ("8 GPUs, DDP 1 MB, p75", 8, 0.184, "predict", 1),
                 ("16 GPUs (2 machines), DDP 1 MB, p75", 16, 0.187, "predict", 1)]),
    dict(id="dlperf-pytorch-ddp-resnet50",
         setup="PyTorch 1.6 DDP (pytorch/examples), ResNet-50 v1.5, batch 128, 8 V100/node, 100 Gb/s IB",
         source=f"[DLPerf report v1.0]({DLPERF}), ResNet50 V1.5 FP32 bs128, column PyTorch",
         metric="img/s", batch=128, network="fit", spec="100Gbps", compute="report 1 GPU: 348.62 img/s",
         points=[("1 GPU", 1, 348.62, "compute", 0), ("1 node x 8", 8, 2632.93, "predict", 0),
                 ("2 nodes x 8", 16, 5115.40, "network", 0), ("4 nodes x 8", 32, 10021.29, "predict", 0)]),
    dict(id="dlperf-ngc-pytorch-apex-resnet50",
         setup="NGC PyTorch 20.03 + apex DDP, ResNet-50 v1.5, batch 128, 8 V100/node, 100 Gb/s IB",
         source=f"[DLPerf report v1.0]({DLPERF}), ResNet50 V1.5 FP32 bs128, column NGC PyTorch",
         metric="img/s", batch=128, network="fit", spec="100Gbps", compute="report 1 GPU: 367.29 img/s",
         points=[("1 GPU", 1, 367.29, "compute", 0), ("1 node x 8", 8, 2887.65, "predict", 0),
                 ("2 nodes x 8", 16, 5716.79, "network", 0), ("4 nodes x 8", 32, 10917.09, "predict", 0)]),
    dict(id="dlperf-ngc-tf1-horovod-resnet50",
         setup="NGC TensorFlow 1.15 + Horovod 0.19, ResNet-50 v1.5, batch 128, 8 V100/node, 100 Gb/s IB",
         source=f"[DLPerf report v1.0]({DLPERF}), ResNet50 V1.5 FP32 bs128, column NGC TensorFlow 1.x",
         metric="img/s", batch=128, network="fit", spec="100Gbps", compute="report 1 GPU: 362.44 img/s",
         points=[("1 GPU", 1, 362.44, "compute", 0), ("1 node x 8", 8, 2721.98, "predict", 0),
                 ("2 nodes x 8", 16, 5099.42, "network", 0), ("4 nodes x 8", 32, 9514.64, "predict", 0)]),
    dict(id="dlperf-ngc-mxnet-horovod-resnet50",
         setup="NGC MXNet 1.6 + Horovod 0.19, ResNet-50 v1.5, batch 128, 8 V100/node, 100 Gb/s IB",
         source=f"[DLPerf report v1.0]({DLPERF}), ResNet50 V1.5 FP32 bs128, column NGC MXNet",
         metric="img/s", batch=128, network="fit", spec="100Gbps", compute="report 1 GPU: 392.24 img/s",
         points=[("1 GPU", 1, 392.24, "compute", 0), ("1 node x 8", 8, 3006.98, "predict", 0),
                 ("2 nodes x 8", 16, 5758.49, "network", 0), ("4 nodes x 8", 32, 11331.93, "predict", 0)]),
]

TF_BENCH = ("https://github.com/tensorflow/docs/blob/62da04c02d67fdcabb7bc64633f217f073fa5f63/"
            "site/en/r1/guide/performance/benchmarks.md")
HVD_BENCH = "https://github.com/horovod/horovod/blob/27743d08ca7a59290b52154c8cddc807006436d3/docs/benchmarks.rst"

STUDIES += [
    dict(id="dlperf-ngc-tf1-horovod-bert-base",
         setup="NGC TensorFlow 1.15 + Horovod 0.19, BERT-base, seq 128, batch 32, 8 V100/node, 100 Gb/s IB",
         source=f"[DLPerf report v1.0]({DLPERF}), BERT Base FP32 bs32, column NGC TensorFlow 1.x",
         metric="seq/s", batch=32, network="fit", spec="100Gbps", compute="report 1 GPU: 107.33 seq/s",
         points=[("1 GPU", 1, 107.33, "compute", 0), ("1 node x 8", 8, 790.03, "predict", 0),
                 ("2 nodes x 8", 16, 1404.04, "network", 0), ("4 nodes x 8", 32, 2727.90, "predict", 0)]),
    dict(id="dlperf-ngc-pytorch-apex-bert-base",
         setup="NGC PyTorch 20.03 + apex DDP (one bucket), BERT-base, seq 128, batch 32, 8 V100/node, 100 Gb/s IB",
         source=f"[DLPerf report v1.0]({DLPERF}), BERT Base FP32 bs32, column NGC PyTorch",
         metric="seq/s", batch=32, network="fit", spec="100Gbps", compute="report 1 GPU: 119.60 seq/s",
         points=[("1 GPU", 1, 119.60, "compute", 0), ("1 node x 8", 8, 921.32, "predict", 0),
                 ("2 nodes x 8", 16, 1499.40, "network", 0), ("4 nodes x 8", 32, 2885.81, "predict", 0)]),
    dict(id="dlperf-mxnet-horovod-bert-base",
         setup="MXNet 1.6 + gluon-nlp + Horovod 0.19.5, BERT-base, seq 128, batch 32, 8 V100/node, 100 Gb/s IB",
         source=f"[DLPerf report v1.0]({DLPERF}), BERT Base FP32 bs32, column MXNet W/O clip",
         metric="seq/s", batch=32, network="fit", spec="100Gbps", compute="report 1 GPU: 150.11 seq/s",
         points=[("1 GPU", 1, 150.11, "compute", 0), ("1 node x 8", 8, 1058.60, "predict", 0),
                 ("2 nodes x 8", 16, 1845.65, "network", 0), ("4 nodes x 8", 32, 3671.45, "predict", 0)]),
    dict(id="tf-benchmarks-k80-ps-resnet50",
         setup="TensorFlow (tf_cnn_benchmarks, distributed_replicated, parameter servers), ResNet-50, batch 64, "
               "EC2 p2.8xlarge (8 K80), 10 Gb/s",
         source=f"[TensorFlow performance benchmarks]({TF_BENCH}), Amazon EC2 Distributed (K80), ResNet-50",
         metric="img/s", batch=64, network="fit", spec="10Gbps", gpus_per_worker=8, compute="page 1 GPU: 52.4 img/s",
         points=[("1 GPU", 1, 52.4, "compute", 0), ("1 instance x 8", 8, 378, "predict", 0),
                 ("2 instances x 8", 16, 751, "network", 0), ("4 instances x 8", 32, 1388, "predict", 0),
                 ("8 instances x 8", 64, 2744, "predict", 0)]),
    dict(id="horovod-readme-resnet101",
         setup="TensorFlow + Horovod (2017), ResNet-101, batch 64, 128 servers x 4 Pascal GPUs, 25 Gb/s RoCE",
         source=f"[Horovod benchmarks]({HVD_BENCH}) (also the README): 90 % scaling efficiency",
         metric="efficiency", batch=64, network="spec", spec="25Gbps",
         compute="P100 speed from the TF benchmarks' ResNet-50 (219 img/s) x ResNet-101 FLOPs",
         points=[("512 GPUs", 512, 0.90, "predict", 0)]),
    dict(id="horovod-readme-vgg16",
         setup="TensorFlow + Horovod (2017), VGG-16, batch 64, 128 servers x 4 Pascal GPUs, 25 Gb/s RoCE",
         source=f"[Horovod benchmarks]({HVD_BENCH}) (also the README): 68 % scaling efficiency",
         metric="efficiency", batch=64, network="spec", spec="25Gbps",
         compute="TF benchmarks' P100 VGG16: 154 img/s",
         points=[("512 GPUs", 512, 0.68, "predict", 0)]),
]

NET_KEYS = ("platform.topology.uplink.bandwidth", "platform.workers.link.bandwidth")


def load_study(sid):
    """The study file and its content, with a base file (\"base\": \"FILE\") read in and the relative
    model path of the base made absolute."""
    path = os.path.join(EXAMPLES, sid + ".json")
    with open(path) as f:
        study = json.load(f)
    base_dir = os.path.dirname(path)
    if isinstance(study["base"], str):
        bpath = os.path.join(base_dir, study["base"])
        with open(bpath) as f:
            study["base"] = json.load(f)
        base_dir = os.path.dirname(bpath)
    model = study["base"].get("model", {})
    if "path" in model and not os.path.isabs(model["path"]):
        model["path"] = os.path.normpath(os.path.join(base_dir, model["path"]))
    return path, study


def overlaps(study):
    return study["vary"]["algorithm.overlap"]


def none_index(study):
    return next(i for i, o in enumerate(overlaps(study)) if o.get("kind") == "none")


def net_key(study):
    return next((k for k in NET_KEYS if k in study["vary"]), None)


def platform_index(spec, study, gpus):
    """Index of the study's point (vary.platform) with this many GPUs: workers x the spec's
    gpus_per_worker (a study whose dtsim worker is a whole node that aggregates its GPUs first)."""
    gpw = spec.get("gpus_per_worker", 1)
    for i, p in enumerate(study["vary"]["platform"]):
        if p["workers"]["count"] * gpw == gpus or (gpus < gpw and p["workers"]["count"] == 1):
            return i
    raise KeyError(f"{study['name']}: no platform with {gpus} GPUs")


def parse_bw(s):
    units = {"Gbps": 1e9 / 8, "Mbps": 1e6 / 8, "GBps": 1e9, "MBps": 1e6}
    for u, m in units.items():
        if s.endswith(u):
            return float(s[:-len(u)]) * m
    return float(s)


def set_path(cfg, dotted, value):
    keys = dotted.split(".")
    d = cfg
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = copy.deepcopy(value)


def run_config(study_path, study, pi, oi, net_value=None):
    """The run config of point pi, overlap oi (as the sweep builds it), with relative paths made absolute."""
    cfg = copy.deepcopy(study["base"])
    zips = study.get("zip", [])
    group_of = {k: g for g in zips for k in g}
    for key, vals in study["vary"].items():
        g = group_of.get(key, [key])
        idx = pi if "platform" in g else oi if "algorithm.overlap" in g else 0 if len(vals) == 1 else None
        if idx is None:
            raise ValueError(f"{study['name']}: cannot place vary key {key}")
        set_path(cfg, key, vals[idx])
    if net_value is not None:
        set_path(cfg, net_key(study), net_value)
    cfg["output"] = {"trace": False}
    return cfg


def dtsim_run(dtsim, cfg, tmp):
    cpath = os.path.join(tmp, "cfg.json")
    with open(cpath, "w") as f:
        json.dump(cfg, f)
    out = os.path.join(tmp, "out")
    r = subprocess.run(["nice", "-n", "10", dtsim, "run", cpath, "--out", out, "--quiet"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dtsim run failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


def metric_of(spec, thr, gpus, thr1=None):
    """dtsim's figure in the published metric, from its throughput (samples/s of the whole job)."""
    m = spec["metric"]
    if m == "img/s" or m == "seq/s":
        return thr
    if m == "s/iter":
        return gpus * spec["batch"] / thr
    if m == "efficiency":
        return thr / (gpus * thr1)
    raise ValueError(m)


def fit(dtsim, spec, study_path, study):
    """Bisection (in log bandwidth) of each overlap's network constant on the study's network point."""
    pts = [p for p in spec["points"] if p[3] == "network"]
    if not pts:
        return {}
    label, gpus, value, _, mi = pts[0]
    pi = platform_index(spec, study, gpus)
    spec_bw = parse_bw(spec["spec"])
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for oi in sorted({mi, none_index(study)}):
            def f(bw):
                s = dtsim_run(dtsim, run_config(study_path, study, pi, oi, f"{bw * 8 / 1e9:.6g}Gbps"), tmp)
                return metric_of(spec, s["samples_per_s_simulated"], gpus)
            faster_is_larger = spec["metric"] != "s/iter"
            lo, hi = math.log(spec_bw / 1000), math.log(spec_bw * 100)
            vlo, vhi = f(math.exp(lo)), f(math.exp(hi))
            ok_lo = (vlo <= value) if faster_is_larger else (vlo >= value)
            ok_hi = (vhi >= value) if faster_is_larger else (vhi <= value)
            if not (ok_lo and ok_hi):
                res[oi] = (None, vlo, vhi)
                continue
            for _ in range(22):
                mid = (lo + hi) / 2
                v = f(math.exp(mid))
                if (v < value) == faster_is_larger:
                    lo = mid
                else:
                    hi = mid
            res[oi] = (math.exp((lo + hi) / 2), None, None)
    return res


def sweep(dtsim, study_path, out, jobs):
    r = subprocess.run(["nice", "-n", "10", dtsim, "sweep", study_path, "--jobs", str(jobs), "--out", out,
                        "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dtsim sweep {study_path} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    with open(os.path.join(out, "results.csv")) as f:
        return list(csv.DictReader(f))


def results_by_cell(study, rows):
    """{(point index, overlap index): samples/s} from a sweep's results.csv."""
    cells = {}
    for r in rows:
        plat = json.loads(r["platform"])
        ov = json.loads(r["algorithm.overlap"])
        pi = study["vary"]["platform"].index(plat)
        oi = overlaps(study).index(ov)
        if r["status"] != "completed":
            raise RuntimeError(f"{study['name']}: run {r['run_dir']} {r['status']}: {r['error']}")
        cells[(pi, oi)] = float(r["samples_per_s_simulated"])
    return cells


def fmt(v, metric):
    if metric == "s/iter":
        return f"{v:.4f} s"
    if metric == "efficiency":
        return f"{v * 100:.1f} %"
    return f"{v:.0f} {metric}"


def pct(e):
    return f"{e * 100:+.1f} %"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dtsim", nargs="?", default=os.path.join(ROOT, "build", "dtsim"))
    ap.add_argument("--out", default=os.path.join("results", "validation"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", default="")
    ap.add_argument("--fit", action="store_true", help="re-derive the network constants and print them")
    ap.add_argument("--spec-network", action="store_true",
                    help="run the fitted studies with the spec network instead (no fit; a diagnostic)")
    a = ap.parse_args()
    dtsim = os.path.abspath(a.dtsim)
    if not os.access(dtsim, os.X_OK):
        print(f"error: {a.dtsim}: no such executable (give the dtsim binary: build/dtsim)", file=sys.stderr)
        return 2
    unknown = [i for i in a.only.split(",") if i and i not in {s["id"] for s in STUDIES}]
    if unknown:
        print(f"error: --only: no study {', '.join(unknown)} (studies: {', '.join(s['id'] for s in STUDIES)})",
              file=sys.stderr)
        return 2
    specs = [s for s in STUDIES if not a.only or s["id"] in a.only.split(",")]

    if a.fit:
        for spec in specs:
            path, study = load_study(spec["id"])
            res = fit(dtsim, spec, path, study)
            if not res:
                print(f"{spec['id']}: no network point (the spec network: {spec['spec']})")
                continue
            cur = study["vary"][net_key(study)]
            for oi, (bw, vlo, vhi) in sorted(res.items()):
                kind = overlaps(study)[oi]
                if bw is None:
                    print(f"{spec['id']}: {json.dumps(kind)}: no fit in [spec/1000, spec*100] "
                          f"(dtsim gives {vlo:.4g} .. {vhi:.4g})")
                else:
                    print(f"{spec['id']}: {json.dumps(kind)}: {bw * 8 / 1e9:.3g} Gbps "
                          f"(study file: {cur[oi]})")
        return 0

    if a.spec_network:
        print("<!-- the fitted studies with their network at the spec (--spec-network): no network fit -->")
    print(f"<!-- bench/validation/published.py {dtsim}; 1-minute load average at the start: "
          f"{os.getloadavg()[0]:.1f} (simulated times do not depend on it) -->")
    print("| study | point | role | published | dtsim, the framework's overlap | error | dtsim, `none` | error |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {"matching": {"extrapolated": [], "predicted": []}, "none": {"extrapolated": [], "predicted": []}}
    calib = []
    for spec in specs:
        path, study = load_study(spec["id"])
        out = os.path.join(a.out, spec["id"])
        if a.spec_network:
            path, study, out = spec_network_study(spec, path, study, out + "-spec-network")
        rows = sweep(dtsim, path, out, a.jobs)
        cells = results_by_cell(study, rows)
        ni = none_index(study)
        net_pts = [p for p in spec["points"] if p[3] == "network"]
        net_nodes = nodes_of(spec, study, net_pts[0][1]) if net_pts else 1
        first = True
        for label, gpus, value, role, mi in spec["points"]:
            pi = platform_index(spec, study, gpus)
            one = platform_index(spec, study, 1) if spec["metric"] == "efficiency" else None
            # a point of fewer GPUs than one dtsim worker holds (gpus_per_worker): that share of the 1-worker run
            share = gpus / (study["vary"]["platform"][pi]["workers"]["count"] * spec.get("gpus_per_worker", 1))
            got = {}
            for col, oi in (("matching", mi), ("none", ni)):
                thr1 = cells[(one, oi)] if one is not None else None
                got[col] = metric_of(spec, cells[(pi, oi)] * share, gpus, thr1)
            err = {c: (got[c] - value) / value for c in got}
            kind = overlap_label(overlaps(study)[mi])
            nodes = nodes_of(spec, study, gpus)
            if a.spec_network and role == "network":
                role = "predict"
            study_cell = f"[{spec['id']}](../examples/validation/{spec['id']}.json)" if first else ""
            first = False
            print(f"| {study_cell} | {label} | {role} | {fmt(value, spec['metric'])} | "
                  f"{fmt(got['matching'], spec['metric'])} ({kind}) | {pct(err['matching'])} | "
                  f"{fmt(got['none'], spec['metric'])} | {pct(err['none'])} |")
            if role == "predict":
                for c in err:
                    summary[c]["predicted"].append(abs(err[c]))
                    if nodes > (1 if a.spec_network else net_nodes):
                        summary[c]["extrapolated"].append(abs(err[c]))
        key = net_key(study)
        nets = {"matching": "", "none": ""}
        if key:
            vals = study["vary"][key]
            nets = {"matching": vals[spec["points"][-1][4]], "none": vals[ni]}
        calib.append((spec, nets))
    print()
    for c, label in (("matching", "the framework's overlap kind"), ("none", "`none`")):
        for which, what in (("extrapolated", "extrapolated points (more nodes than any calibration point)"),
                            ("predicted", "all predicted points (every point not used for calibration)")):
            e = summary[c][which]
            if e:
                print(f"- dtsim with {label}, {what}: median |error| {statistics.median(e) * 100:.1f} %, "
                      f"max {max(e) * 100:.1f} % over {len(e)} points")
    print()
    print("| study | setup | source | compute (per GPU) | network: spec | fitted, the framework's overlap | "
          "fitted, `none` |")
    print("|---|---|---|---|---|---|---|")
    for spec, nets in calib:
        fitted = spec["network"] == "fit" and not a.spec_network
        print(f"| {spec['id']} | {spec['setup']} | {spec['source']} | {spec['compute']} | {spec_label(spec)} | "
              f"{nets['matching'] if fitted else '(spec)'} | {nets['none'] if fitted else '(spec)'} |")
    return 0


def spec_label(spec):
    return spec["spec"]


def spec_network_study(spec, path, study, out):
    """A copy of a fitted study with its network constant at the spec for every overlap (written into out)."""
    key = net_key(study)
    if spec["network"] != "fit" or not key:
        return path, study, out
    bw = spec["spec"]
    st = json.loads(open(path).read())
    # distinct spellings of the same bandwidth: a sweep's list may not repeat a value
    n = parse_bw(bw)
    st["vary"][key] = [f"{n * 8 / 1e9:g}Gbps", f"{n / 1e9:g}GBps", f"{n * 8 / 1e6:g}Mbps"][:len(st["vary"][key])]
    if isinstance(st["base"], str):
        st["base"] = os.path.normpath(os.path.join(os.path.dirname(path), st["base"]))
    os.makedirs(out, exist_ok=True)
    npath = os.path.join(out, "study.json")
    with open(npath, "w") as f:
        json.dump(st, f)
    study = copy.deepcopy(study)
    study["vary"][key] = st["vary"][key]
    return npath, study, out


def nodes_of(spec, study, gpus):
    p = study["vary"]["platform"][platform_index(spec, study, gpus)]
    topo = p.get("topology", {})
    if topo.get("kind") == "racks":
        return int(topo["racks"])
    return int(p["workers"]["count"])


def overlap_label(o):
    k = o.get("kind")
    if k == "ddp":
        return f"ddp {o.get('bucket_cap_mb', 25):g} MB"
    if k == "horovod":
        return f"horovod {o.get('fusion_mb', 64):g} MB/{o.get('cycle_ms', 5):g} ms"
    return k


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:  # a dtsim run or sweep that failed: its own message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
