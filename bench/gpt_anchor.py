#!/usr/bin/python3
"""The tiny GPT's training step in PyTorch (Debian python3-torch), against dtsim's bench_gpt.

  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/gpt_anchor.py 1 \
      --dtsim build/bench_gpt --rounds 3

The model is nanoGPT's (written out here the same way as tests/engine/data/make_golden_gpt.py):
n_layer 4, n_head 4, n_embd 128, block_size 128, vocabulary 73 (the built-in corpus's), biases on,
dropout 0, tied head; batch 16 of random tokens; a step is zero_grad, forward, cross-entropy,
backward, torch.optim.AdamW(lr 1e-3, betas (0.9, 0.95), weight_decay 0.1). Each repetition times
--steps steps (10) after 3 warm-up steps; --reps repetitions (15) per round. Rounds alternate
PyTorch and bench_gpt. Two clocks: wall time and the calling thread's CPU time (1 thread: the
meaningful one on a shared machine). Prints medians of the rounds' medians, minima, and the
ratios dtsim / PyTorch.
"""
import argparse
import os
import math
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

L, H, E, T, V = 4, 4, 128, 128, 73


class Attention(nn.Module):
    def __init__(s):
        super().__init__()
        s.c_attn = nn.Linear(E, 3 * E)
        s.c_proj = nn.Linear(E, E)
        s.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)).logical_not())

    def forward(s, x):
        b, t, e = x.shape
        q, k, v = s.c_attn(x).split(E, dim=2)
        q, k, v = (z.view(b, t, H, e // H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(e // H))
        att = att.masked_fill(s.mask[:t, :t], float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return s.c_proj(y.transpose(1, 2).contiguous().view(b, t, e))


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln_1, s.attn, s.ln_2 = nn.LayerNorm(E), Attention(), nn.LayerNorm(E)
        s.c_fc, s.c_proj = nn.Linear(E, 4 * E), nn.Linear(4 * E, E)

    def forward(s, x):
        x = x + s.attn(s.ln_1(x))
        return x + s.c_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, E), nn.Embedding(T, E)
        s.h = nn.ModuleList([Block() for _ in range(L)])
        s.ln_f = nn.LayerNorm(E)

    def forward(s, idx):
        x = s.wte(idx) + s.wpe(torch.arange(idx.shape[1]))
        for b in s.h:
            x = b(x)
        return s.ln_f(x) @ s.wte.weight.t()  # tied head


def torch_times(batch, steps, reps):
    torch.manual_seed(0)
    m = GPT()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    x = torch.randint(0, V, (batch, T))
    y = torch.randint(0, V, (batch, T))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x).view(-1, V), y.view(-1)).backward()
        opt.step()

    for _ in range(3):
        step()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            step()
        wall.append((time.perf_counter() - t0) / steps * 1e3)
        cpu.append((time.thread_time() - c0) / steps * 1e3)
    return wall, cpu, sum(p.numel() for p in m.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("threads", type=int)
    ap.add_argument("--dtsim", help="path of bench_gpt")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    if a.dtsim and not os.access(a.dtsim, os.X_OK):
        print(f"error: --dtsim {a.dtsim}: no such executable (build it: cmake --build build)", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(a.threads)
    res = {"pytorch": {"wall": [], "cpu": [], "wmin": [], "cmin": []},
           "dtsim": {"wall": [], "cpu": [], "wmin": [], "cmin": []}}
    for r in range(a.rounds):
        w, c, n = torch_times(a.batch, a.steps, a.reps)
        for k, v in (("wall", statistics.median(w)), ("cpu", statistics.median(c)), ("wmin", min(w)), ("cmin", min(c))):
            res["pytorch"][k].append(v)
        print(f"round {r + 1}: pytorch ({n} params) {statistics.median(w):.2f} ms wall, {statistics.median(c):.2f} ms cpu")
        if a.dtsim:
            out = subprocess.run([a.dtsim, str(a.threads), str(a.reps), "--batch", str(a.batch), "--steps", str(a.steps)],
                                 capture_output=True, text=True, check=True).stdout
            line = next(l for l in out.splitlines() if l.startswith("RESULT gpt|"))
            wall, cpu, wmin, cmin = (float(v) for v in line.split("|")[2:6])
            for k, v in (("wall", wall), ("cpu", cpu), ("wmin", wmin), ("cmin", cmin)):
                res["dtsim"][k].append(v)
            print(f"round {r + 1}: dtsim {wall:.2f} ms wall, {cpu:.2f} ms cpu")
    p = res["pytorch"]
    print(f"pytorch: wall median {statistics.median(p['wall']):.2f} min {min(p['wmin']):.2f} | "
          f"cpu median {statistics.median(p['cpu']):.2f} min {min(p['cmin']):.2f} ms/step")
    if a.dtsim:
        d = res["dtsim"]
        print(f"dtsim:   wall median {statistics.median(d['wall']):.2f} min {min(d['wmin']):.2f} | "
              f"cpu median {statistics.median(d['cpu']):.2f} min {min(d['cmin']):.2f} ms/step")
        print(f"ratio dtsim/pytorch: wall {statistics.median(d['wall']) / statistics.median(p['wall']):.2f} "
              f"(min {min(d['wmin']) / min(p['wmin']):.2f}) | cpu {statistics.median(d['cpu']) / statistics.median(p['cpu']):.2f} "
              f"(min {min(d['cmin']) / min(p['cmin']):.2f})")


if __name__ == "__main__":
    main()
