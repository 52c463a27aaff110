#!/usr/bin/python3
"""Golden values for tests/engine/test_golden.cpp, produced by PyTorch (Debian python3-torch).

A tiny fixed net exercising every layer kind of the engine: conv (with bias) + BatchNorm + ReLU +
max pool, a ResNet block with a 1x1-conv shortcut (option B), a block with the zero-padding
shortcut (option A), global average pool, linear. Parameters and inputs are fixed formulas (no RNG:
both sides compute them, rounded to float32), the computation runs in float64 in training mode, and the file stores
the loss, the logits, every parameter gradient (in dtsim's flat-buffer order), the running
statistics after the step, and the eval-mode loss with those statistics.

  /usr/bin/python3 tests/engine/data/make_golden.py > tests/engine/data/golden_tiny_resnet.json
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
N, C, H, W, K = 4, 3, 16, 16, 5


class Block(nn.Module):
    def __init__(s, i, o, stride, shortcut):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        s.kind, s.pad = shortcut, (o - i) // 2
        if shortcut == "B":
            s.sc = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))

    def forward(s, x):
        out = s.b2(s.c2(F.relu(s.b1(s.c1(x)))))
        if s.kind == "B":
            sc = s.sc(x)
        else:  # He et al. option A: x[:, :, ::2, ::2] with zero channels around
            sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, s.pad, s.pad))
        return F.relu(out + sc)


class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(C, 4, 3, 1, 1, bias=True); s.bn1 = nn.BatchNorm2d(4)
        s.blockB = Block(4, 8, 2, "B")
        s.blockA = Block(8, 16, 2, "A")
        s.fc = nn.Linear(16, K)

    def forward(s, x):
        x = F.max_pool2d(F.relu(s.bn1(s.conv1(x))), 2)      # 4 x 8 x 8
        x = s.blockA(s.blockB(x))                            # 16 x 2 x 2
        return s.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


net = Net()
# dtsim's flat parameter order (the graph's layer order) and its BatchNorm state order.
order = [net.conv1.weight, net.conv1.bias, net.bn1.weight, net.bn1.bias,
         net.blockB.c1.weight, net.blockB.b1.weight, net.blockB.b1.bias,
         net.blockB.c2.weight, net.blockB.b2.weight, net.blockB.b2.bias,
         net.blockB.sc[0].weight, net.blockB.sc[1].weight, net.blockB.sc[1].bias,
         net.blockA.c1.weight, net.blockA.b1.weight, net.blockA.b1.bias,
         net.blockA.c2.weight, net.blockA.b2.weight, net.blockA.b2.bias,
         net.fc.weight, net.fc.bias]
bns = [net.bn1, net.blockB.b1, net.blockB.b2, net.blockB.sc[1], net.blockA.b1, net.blockA.b2]
assert sum(p.numel() for p in order) == sum(p.numel() for p in net.parameters())

offset = 0
with torch.no_grad():
    for p in order:  # p[i] = 0.3 sin(1.3 i + 0.5) over the flat buffer
        i = torch.arange(offset, offset + p.numel(), dtype=torch.float64)
        # rounded to float32 first: the golden values are exact for the float32 inputs dtsim uses
        p.copy_((0.3 * torch.sin(1.3 * i + 0.5)).float().double().reshape(p.shape))
        offset += p.numel()
i = torch.arange(N * C * H * W, dtype=torch.float64)
x = (torch.sin(0.9 * i) + 0.5 * torch.cos(0.31 * i)).float().double().reshape(N, C, H, W)
y = torch.tensor([n % K for n in range(N)])

net.train()
logits = net(x)
loss = F.cross_entropy(logits, y)
loss.backward()
state = torch.cat([torch.cat([b.running_mean, b.running_var]) for b in bns])
net.eval()
with torch.no_grad():
    eval_loss = F.cross_entropy(net(x), y)

g = lambda t: [float("%.12g" % v) for v in t.detach().reshape(-1).tolist()]
print(json.dumps({
    "generator": "tests/engine/data/make_golden.py, torch " + torch.__version__ + ", float64",
    "batch": N, "input": [C, H, W], "classes": K,
    "param_formula": "p[i] = 0.3 sin(1.3 i + 0.5)",
    "input_formula": "x[i] = sin(0.9 i) + 0.5 cos(0.31 i), labels n % classes",
    "num_params": offset,
    "loss": float(loss), "eval_loss": float(eval_loss),
    "logits": g(logits),
    "grads": g(torch.cat([p.grad.reshape(-1) for p in order])),
    "state": g(state),
}, indent=None, separators=(",", ":")))
