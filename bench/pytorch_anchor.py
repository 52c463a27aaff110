#!/usr/bin/python3
"""PyTorch anchor for the engine benchmark (notes/compute.md section 3), optionally run against
dtsim's bench_engine in the same run.

Usage:
  OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/pytorch_anchor.py [T]
      [--dtsim BUILD/bench_engine] [--rounds R]

Debian's python3-torch (1.13, CPU) is needed for measuring only; dtsim does not depend on it.
Times are ms per training step (forward + backward + SGD lr 0.01), medians over repetitions of
20 steps after 10 warm-up steps. Two clocks: wall time, and (1 thread only) the calling thread's
CPU time, which stays meaningful on a shared, loaded machine. With --dtsim the two programs run
alternately R times (default 3) and the ratio dtsim / PyTorch of the medians is printed per model.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):  # ResNet BasicBlock, 1x1-conv shortcut when the shape changes
    def __init__(s, i, o, st):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        s.sc = nn.Sequential() if st == 1 and i == o else nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))

    def forward(s, x):
        return F.relu(s.b2(s.c2(F.relu(s.b1(s.c1(x))))) + s.sc(x))


def resnet8():  # 3x32x32 -> 16 -> [16, 32/2, 64/2] -> avgpool -> 10   (78k params)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def models():
    return {
        "mlp 784-256-256-10, b64": (nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256),
                                                  nn.ReLU(), nn.Linear(256, 10)), (64, 1, 28, 28)),
        "lenet5 1x28x28, b64": (nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                              nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                              nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                              nn.Linear(84, 10)), (64, 1, 28, 28)),
        "resnet8 3x32x32, b32": (resnet8(), (32, 3, 32, 32)),
    }


def run_torch(threads, reps=15, inner=20):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {}
    for name, (m, shape) in models().items():
        x = torch.randn(*shape)
        y = torch.randint(0, 10, (shape[0],))
        opt = torch.optim.SGD(m.parameters(), lr=0.01)

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss

        for _ in range(10):
            step()
        wall, cpu = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(inner):
                step()
            wall.append((time.perf_counter() - t0) / inner * 1e3)
            cpu.append((time.thread_time() - c0) / inner * 1e3)
        out[name] = (statistics.median(wall), statistics.median(cpu) if threads == 1 else float("nan"))
    return out


def run_dtsim(binary, threads):
    res = subprocess.run([binary, str(threads), "15"], check=True, capture_output=True, text=True).stdout
    out = {}
    for line in res.splitlines():
        if line.startswith("RESULT "):
            name, device, wall, cpu = line[7:].split("|")
            if device == "cpu":
                out[name] = (float(wall), float(cpu))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("threads", nargs="?", type=int, default=1)
    ap.add_argument("--dtsim", help="path to bench_engine: run it alternately with PyTorch and print ratios")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print(f"torch {torch.__version__}, threads={a.threads}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"mkldnn={torch.backends.mkldnn.is_available()}", flush=True)
    rounds = a.rounds if a.dtsim else 1
    torch_runs, dtsim_runs = [], []
    for r in range(rounds):
        torch_runs.append(run_torch(a.threads))
        if a.dtsim:
            dtsim_runs.append(run_dtsim(a.dtsim, a.threads))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    names = list(models().keys())
    med = lambda runs, n, k: statistics.median(run[n][k] for run in runs)
    print(f"{'model':26s} {'torch wall':>10s} {'torch cpu':>10s}" +
          (f" {'dtsim wall':>10s} {'dtsim cpu':>10s} {'ratio wall':>10s} {'ratio cpu':>10s}" if a.dtsim else ""))
    for n in names:
        tw, tc = med(torch_runs, n, 0), med(torch_runs, n, 1)
        line = f"{n:26s} {tw:10.3f} {tc:10.3f}"
        if a.dtsim:
            dw, dc = med(dtsim_runs, n, 0), med(dtsim_runs, n, 1)
            line += f" {dw:10.3f} {dc:10.3f} {dw / tw:10.3f} {dc / tc if tc == tc else float('nan'):10.3f}"
        print(line)


if __name__ == "__main__":
    main()
