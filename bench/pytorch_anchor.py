#!/usr/bin/python3
"""PyTorch anchor for the engine benchmark (bench/README.md, "Engine, CPU, 1 thread"), optionally run against
dtsim's bench_engine in the same run.

Usage:
  OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/pytorch_anchor.py [T]
      [--dtsim BUILD/bench_engine] [--rounds R]

Debian's python3-torch (1.13, CPU) is needed for measuring only; dtsim does not depend on it.
Times are ms per training step (forward + backward + SGD lr 0.01) over repetitions of 20 steps
after 10 warm-up steps, for two clocks: wall time, and (1 thread only) the calling thread's CPU
time, which stays meaningful on a shared, loaded machine. With --dtsim the two programs run
alternately, model by model, R times (default 3); printed per model and clock: the median of the
rounds' medians and the minimum over all repetitions (interference only ever adds time, so the
minimum is the most repeatable figure on a busy machine), and the ratios dtsim / PyTorch.
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


def run_torch(threads, name, reps=15, inner=20):
    """ms per step of one model: (median wall, median cpu, min wall, min cpu) over `reps` blocks."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m, shape = models()[name]
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
    nan = float("nan")
    return (statistics.median(wall), statistics.median(cpu) if threads == 1 else nan, min(wall),
            min(cpu) if threads == 1 else nan)


def run_dtsim(binary, threads, name):
    res = subprocess.run([binary, str(threads), "15", "--only", name], check=True, capture_output=True,
                         text=True).stdout
    for line in res.splitlines():
        if line.startswith("RESULT "):
            fields = line[7:].split("|")
            if fields[0] == name and fields[1] == "cpu":
                return tuple(float(v) for v in fields[2:6])
    raise RuntimeError("no RESULT line for " + name + " in:\n" + res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("threads", nargs="?", type=int, default=1)
    ap.add_argument("--dtsim", help="path to bench_engine: run it alternately with PyTorch and print ratios")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if a.dtsim and not os.access(a.dtsim, os.X_OK):
        print(f"error: --dtsim {a.dtsim}: no such executable (build it: cmake --build build)", file=sys.stderr)
        sys.exit(2)
    print(f"torch {torch.__version__}, threads={a.threads}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"mkldnn={torch.backends.mkldnn.is_available()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    names = list(models().keys())
    rounds = a.rounds if a.dtsim else 1
    runs = {n: {"torch": [], "dtsim": []} for n in names}
    for r in range(rounds):  # interleaved per model: both see the same machine conditions
        for n in names:
            runs[n]["torch"].append(run_torch(a.threads, n))
            if a.dtsim:
                runs[n]["dtsim"].append(run_dtsim(a.dtsim, a.threads, n))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)

    def agg(v):  # median of the rounds' medians, min of the rounds' minima
        return (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), min(x[2] for x in v),
                min(x[3] for x in v))

    print("ms per training step (forward + backward + SGD); median of medians / min over all repetitions")
    hdr = f"{'model':26s} {'clock':5s} {'torch med':>9s} {'torch min':>9s}"
    if a.dtsim:
        hdr += f" {'dtsim med':>9s} {'dtsim min':>9s} {'ratio med':>9s} {'ratio min':>9s}"
    print(hdr)
    for n in names:
        t = agg(runs[n]["torch"])
        d = agg(runs[n]["dtsim"]) if a.dtsim else None
        for clock, i in (("wall", 0), ("cpu", 1)):
            line = f"{n:26s} {clock:5s} {t[i]:9.3f} {t[i + 2]:9.3f}"
            if d:
                line += f" {d[i]:9.3f} {d[i + 2]:9.3f} {d[i] / t[i]:9.3f} {d[i + 2] / t[i + 2]:9.3f}"
            print(line)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
