#!/usr/bin/python3
"""Golden values for tests/engine/test_gpt_golden.cpp, produced by PyTorch (Debian python3-torch).

A tiny GPT written the way nanoGPT's model.py is (pre-LayerNorm blocks, causal self-attention with
a fused qkv projection, GELU(tanh) MLP of width 4E, learned position embeddings, final LayerNorm,
output head tied to the token embedding, biases on, dropout 0). Parameters, tokens and targets are
fixed formulas (no RNG: both sides compute them, parameters rounded to float32); the forward and
backward run in float64. The file stores the loss, every parameter gradient in dtsim's flat-buffer
order (= named_parameters() order: transformer.wte, transformer.wpe, h.0.ln_1, ..., ln_f), and the
parameters after one torch.optim.AdamW step on those gradients (float64).

  /usr/bin/python3 tests/engine/data/make_golden_gpt.py > tests/engine/data/golden_tiny_gpt.json
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
L, H, E, T, V, B = 2, 2, 16, 8, 11, 3
ADAMW = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)


class Attention(nn.Module):
    def __init__(s):
        super().__init__()
        s.c_attn = nn.Linear(E, 3 * E)
        s.c_proj = nn.Linear(E, E)

    def forward(s, x):
        b, t, e = x.shape
        q, k, v = s.c_attn(x).split(E, dim=2)
        q, k, v = (z.view(b, t, H, e // H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(e // H))
        att = att.masked_fill(torch.tril(torch.ones(t, t, dtype=torch.bool)).logical_not(), float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return s.c_proj(y.transpose(1, 2).contiguous().view(b, t, e))


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln_1 = nn.LayerNorm(E)
        s.attn = Attention()
        s.ln_2 = nn.LayerNorm(E)
        s.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(E, 4 * E), c_proj=nn.Linear(4 * E, E)))

    def forward(s, x):
        x = x + s.attn(s.ln_1(x))
        return x + s.mlp.c_proj(F.gelu(s.mlp.c_fc(s.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.transformer = nn.ModuleDict(dict(wte=nn.Embedding(V, E), wpe=nn.Embedding(T, E),
                                           h=nn.ModuleList([Block() for _ in range(L)]), ln_f=nn.LayerNorm(E)))
        s.lm_head = nn.Linear(E, V, bias=False)
        s.lm_head.weight = s.transformer.wte.weight  # tied

    def forward(s, idx):
        x = s.transformer.wte(idx) + s.transformer.wpe(torch.arange(idx.shape[1]))
        for blk in s.transformer.h:
            x = blk(x)
        return s.lm_head(s.transformer.ln_f(x))


net = GPT()
params = [p for _, p in net.named_parameters()]  # tied weight listed once, in dtsim's order
offset = 0
with torch.no_grad():
    for p in params:  # p[i] = 0.3 sin(1.3 i + 0.5) over the flat buffer, rounded to float32
        i = torch.arange(offset, offset + p.numel(), dtype=torch.float64)
        p.copy_((0.3 * torch.sin(1.3 * i + 0.5)).float().double().reshape(p.shape))
        offset += p.numel()
idx = torch.tensor([[(7 * (b * T + t) + 3 * b) % V for t in range(T)] for b in range(B)])
tgt = torch.tensor([[(5 * (b * T + t) + 1) % V for t in range(T)] for b in range(B)])

logits = net(idx)
loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
loss.backward()
grads = torch.cat([p.grad.reshape(-1) for p in params])
opt = torch.optim.AdamW(params, **ADAMW)
opt.step()
after = torch.cat([p.detach().reshape(-1) for p in params])

g = lambda v: float(f"{v:.10g}")
print(json.dumps({
    "n_layer": L, "n_head": H, "n_embd": E, "block_size": T, "vocab": V, "batch": B,
    "num_params": offset,
    "tokens": idx.reshape(-1).tolist(), "targets": tgt.reshape(-1).tolist(),
    "loss": loss.item(),
    "adamw": {"lr": ADAMW["lr"], "beta1": ADAMW["betas"][0], "beta2": ADAMW["betas"][1], "eps": ADAMW["eps"],
              "weight_decay": ADAMW["weight_decay"]},
    "grads": [g(v) for v in grads.tolist()],
    "params_after": [g(v) for v in after.tolist()],
}, separators=(",", ":")))
