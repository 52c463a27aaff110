#!/usr/bin/env python3
"""PyTorch anchor for bench/bench_gpu.cpp: training samples/s on the GPU for the same CIFAR models
(dtsim's resnet20 = He et al. 2016 with option-A shortcuts, resnet18 = the CIFAR variant with a
3x3 stem, no max pool, 1x1-conv shortcuts), batch 128, fp32 with TF32 off, SGD (momentum 0.9,
weight decay 5e-4). Like bench_gpu, each step copies its batch from host memory (4 fixed random
batches in turn); unlike bench_gpu, the loss is not read back every step (PyTorch does not need to).

Three cuDNN settings, all fp32 without TF32:
  deterministic  cudnn.deterministic=True, benchmark=False  (what dtsim's cuda backend guarantees)
  default        PyTorch's defaults (heuristic algorithms, non-deterministic ones allowed)
  benchmark      cudnn.benchmark=True (autotuned algorithms; fastest, not reproducible)

usage: python3 bench/pytorch_gpu.py [--models resnet20,resnet18] [--batch 128] [--steps 20]
                                     [--reps 10] [--warmup 10] [--modes deterministic,default,benchmark]
                                     [--json FILE]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.mode = None
        if stride != 1 or cin != cout:
            if shortcut == "A":  # x[:, :, ::s, ::s] with zero channels, (cout - cin) // 2 in front
                self.mode = "A"
                self.stride, self.before, self.after = stride, (cout - cin) // 2, cout - cin - (cout - cin) // 2
            else:
                self.mode = "B"
                self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.mode == "A":
            sc = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.before, self.after))
        elif self.mode == "B":
            sc = self.sc(x)
        else:
            sc = x
        return F.relu(out + sc)


class ResNet(nn.Module):
    def __init__(self, widths, blocks, shortcut, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for s, (w, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                layers.append(BasicBlock(cin, w, 2 if s > 0 and b == 0 else 1, shortcut))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS = {
    "resnet20": lambda: ResNet([16, 32, 64], [3, 3, 3], "A"),          # 0.27 M parameters
    "resnet18": lambda: ResNet([64, 128, 256, 512], [2, 2, 2, 2], "B"),  # 11.17 M parameters
}


def bench(name, mode, a):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = mode == "deterministic"
    torch.backends.cudnn.benchmark = mode == "benchmark"
    torch.manual_seed(1)
    model = MODELS[name]().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.rand(a.batch, 3, 32, 32, generator=gen) * 2 - 1, torch.randint(0, 10, (a.batch,), generator=gen))
               for _ in range(4)]
    k = 0

    def step():
        nonlocal k
        x, y = batches[k % 4]
        k += 1
        x, y = x.cuda(), y.cuda()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    rates = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        torch.cuda.synchronize()
        rates.append(a.batch * a.steps / (time.perf_counter() - t0))
    params = sum(p.numel() for p in model.parameters())
    return params, rates


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="resnet20,resnet18")
    p.add_argument("--modes", default="deterministic,default,benchmark")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--json")
    a = p.parse_args()
    dev = torch.cuda.get_device_name(0)
    print(f"pytorch_gpu: torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {dev}")
    print(f"batch {a.batch}, {a.reps} reps x {a.steps} steps after {a.warmup} warm-up steps; fp32, TF32 off")
    print(f"{'model':10s} {'mode':14s} {'params':>10s} {'samples/s':>12s} {'(min..max)':>14s} {'ms/step':>10s}")
    rows = []
    for name in a.models.split(","):
        for mode in a.modes.split(","):
            params, rates = bench(name, mode, a)
            med = statistics.median(rates)
            print(f"{name:10s} {mode:14s} {params:10d} {med:12.0f} {min(rates):7.0f}..{max(rates):<6.0f} "
                  f"{1e3 * a.batch / med:10.3f}")
            rows.append({"model": name, "mode": mode, "params": params, "samples_per_s": med,
                         "samples_per_s_min": min(rates), "samples_per_s_max": max(rates)})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": dev, "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                       "batch": a.batch, "models": rows}, f, indent=2)


if __name__ == "__main__":
    main()
