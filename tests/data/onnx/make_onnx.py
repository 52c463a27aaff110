#!/usr/bin/python3
"""ONNX parity data for tests/engine/test_onnx.cpp, produced by PyTorch (Debian python3-torch).

Two networks are exported with torch.onnx.export (training mode, so BatchNormalization stays a node
and is not folded into the convolutions) and one training step of each is computed by PyTorch in
float64 on a fixed batch:

  small_cnn.onnx  1x12x12 input, fixed batch of 4 in the file: Conv (bias) + BatchNormalization +
                  Relu + MaxPool, Conv + Relu + AveragePool (padding, count_include_pad), Flatten,
                  Dropout, Gemm + Relu, MatMul + Add (a weight stored [in][out]), 10 logits
  unsupported.onnx  a Conv + Sigmoid network (1x12x12): the refusal of an unsupported operator
  resnet8.onnx    3x16x16 input, dynamic batch: a ResNet-8-shaped network (conv-BN-ReLU stem, three
                  stages of one BasicBlock, 8/16/32 channels, 1x1-conv + BN shortcuts where the shape
                  changes), GlobalAveragePool, x.view(x.size(0), -1) (Shape/Gather/Unsqueeze/Concat
                  + Reshape), Gemm, 10 logits

Parameters and inputs are fixed formulas (no RNG), rounded to float32: the .onnx files hold those
float32 weights and the reference runs in float64 on the same values. Each <name>.json stores the
loss, the gradients of every parameter in dtsim's flat-buffer order (the ONNX initializers in graph
order; a MatMul weight [in][out] is dtsim's Linear weight [out][in], so its gradient is stored
transposed), the BatchNorm running statistics after the step and the eval-mode loss with them.
Dropout is the identity on both sides (dtsim does not drop; the reference runs it in eval mode).

  /usr/bin/python3 tests/data/onnx/make_onnx.py      # rewrites tests/data/onnx/*.onnx and *.json
"""
import copy
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)  # unused by the formulas; keeps torch's own defaults fixed


class SmallCnn(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(1, 4, 3, 1, 1, bias=True)
        s.bn1 = nn.BatchNorm2d(4)
        s.conv2 = nn.Conv2d(4, 8, 3, 1, 0, bias=True)
        s.pool2 = nn.AvgPool2d(3, stride=1, padding=1)  # count_include_pad=True
        s.drop = nn.Dropout(0.5)
        s.fc1 = nn.Linear(128, 16)
        s.w2 = nn.Parameter(torch.zeros(16, 10))  # x @ w2 + b2: MatMul + Add, weight [in][out]
        s.b2 = nn.Parameter(torch.zeros(10))

    def forward(s, x):
        x = F.max_pool2d(F.relu(s.bn1(s.conv1(x))), 2)  # 4 x 6 x 6
        x = s.pool2(F.relu(s.conv2(x)))                  # 8 x 4 x 4
        x = s.drop(torch.flatten(x, 1))
        return F.relu(s.fc1(x)) @ s.w2 + s.b2


class Block(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        s.bn2 = nn.BatchNorm2d(o)
        s.shortcut = nn.Sequential()
        if stride != 1 or i != o:
            s.shortcut = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))

    def forward(s, x):
        out = s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x)))))
        return F.relu(out + s.shortcut(x))


class ResNet8(nn.Module):
    def __init__(s, widths=(8, 16, 32), classes=10):
        super().__init__()
        s.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        s.bn1 = nn.BatchNorm2d(widths[0])
        s.layer1 = Block(widths[0], widths[0], 1)
        s.layer2 = Block(widths[0], widths[1], 2)
        s.layer3 = Block(widths[1], widths[2], 2)
        s.fc = nn.Linear(widths[2], classes)

    def forward(s, x):
        x = F.relu(s.bn1(s.conv1(x)))
        x = s.layer3(s.layer2(s.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return s.fc(x.view(x.size(0), -1))


def fill(net, order):
    """p[i] = 0.3 sin(1.3 i + 0.5) over dtsim's flat buffer (float32-rounded; a transposed weight is
    filled in dtsim's [out][in] order)."""
    offset = 0
    with torch.no_grad():
        for p, transposed in order:
            i = torch.arange(offset, offset + p.numel(), dtype=torch.float64)
            v = (0.3 * torch.sin(1.3 * i + 0.5)).float().double()
            if transposed:
                p.copy_(v.reshape(p.shape[1], p.shape[0]).t())
            else:
                p.copy_(v.reshape(p.shape))
            offset += p.numel()
    return offset


def make(name, net, order, bns, shape, batch, dynamic):
    net = net.double()
    C, H, W = shape
    K = 10
    n_params = fill(net, order)
    assert n_params == sum(p.numel() for p in net.parameters())
    i = torch.arange(batch * C * H * W, dtype=torch.float64)
    x = (torch.sin(0.9 * i) + 0.5 * torch.cos(0.31 * i)).float().double().reshape(batch, C, H, W)
    y = torch.tensor([n % K for n in range(batch)])

    # Export first (float32, training mode: BatchNormalization nodes with their running statistics).
    # Tracing runs the network in training mode, which moves net32's running statistics: the file
    # holds those, and the reference starts from them too (init "onnx" starts from the file's).
    net32 = copy.deepcopy(net).float()
    net32.train()
    torch.onnx.export(net32, x.float(), os.path.join(HERE, name + ".onnx"), training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, input_names=["input"], output_names=["logits"], opset_version=14,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None)
    names = {id(m): n for n, m in net.named_modules()}
    with torch.no_grad():
        for b in bns:
            b32 = net32.get_submodule(names[id(b)])
            b.running_mean.copy_(b32.running_mean.double())
            b.running_var.copy_(b32.running_var.double())
    state0 = torch.cat([torch.cat([b.running_mean, b.running_var]) for b in bns]) if bns else torch.zeros(0)

    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()  # dtsim: Dropout is the identity
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    state = torch.cat([torch.cat([b.running_mean, b.running_var]) for b in bns]) if bns else torch.zeros(0)
    net.eval()
    with torch.no_grad():
        eval_loss = F.cross_entropy(net(x), y)

    grads = torch.cat([(p.grad.t() if transposed else p.grad).reshape(-1) for p, transposed in order])
    g = lambda t: [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({
            "generator": "tests/data/onnx/make_onnx.py, torch " + torch.__version__ + ", float64",
            "onnx": name + ".onnx", "batch": batch, "input": [C, H, W], "classes": K,
            "param_formula": "p[i] = 0.3 sin(1.3 i + 0.5) over the flat buffer (the .onnx initializers hold these)",
            "input_formula": "x[i] = sin(0.9 i) + 0.5 cos(0.31 i), labels n % classes",
            "num_params": n_params, "num_state": int(state.numel()),
            "param_names": [n for n, _ in named(net, order)],
            "loss": float(loss), "eval_loss": float(eval_loss),
            "grads": g(grads), "state0": [float(v) for v in state0.tolist()], "state": g(state),
        }, f, indent=None, separators=(",", ":"))
        f.write("\n")


def named(net, order):
    names = {id(p): n for n, p in net.named_parameters()}
    return [(names[id(p)], t) for p, t in order]


cnn = SmallCnn()
cnn_order = [(cnn.conv1.weight, False), (cnn.conv1.bias, False), (cnn.bn1.weight, False), (cnn.bn1.bias, False),
             (cnn.conv2.weight, False), (cnn.conv2.bias, False), (cnn.fc1.weight, False), (cnn.fc1.bias, False),
             (cnn.w2, True), (cnn.b2, False)]
make("small_cnn", cnn, cnn_order, [cnn.bn1], (1, 12, 12), 4, dynamic=False)

net = ResNet8()
order = [(net.conv1.weight, False), (net.bn1.weight, False), (net.bn1.bias, False)]
bns = [net.bn1]
for blk in (net.layer1, net.layer2, net.layer3):
    order += [(blk.conv1.weight, False), (blk.bn1.weight, False), (blk.bn1.bias, False),
              (blk.conv2.weight, False), (blk.bn2.weight, False), (blk.bn2.bias, False)]
    bns += [blk.bn1, blk.bn2]
    if len(blk.shortcut):
        order += [(blk.shortcut[0].weight, False), (blk.shortcut[1].weight, False), (blk.shortcut[1].bias, False)]
        bns += [blk.shortcut[1]]
order += [(net.fc.weight, False), (net.fc.bias, False)]
make("resnet8", net, order, bns, (3, 16, 16), 6, dynamic=True)


class Unsupported(nn.Module):  # a Sigmoid: refused with the node's name and op type
    def __init__(s):
        super().__init__()
        s.conv = nn.Conv2d(1, 2, 3)
        s.fc = nn.Linear(2, 10)

    def forward(s, x):
        return s.fc(torch.flatten(F.adaptive_avg_pool2d(torch.sigmoid(s.conv(x)), 1), 1))


torch.onnx.export(Unsupported(), torch.zeros(1, 1, 12, 12), os.path.join(HERE, "unsupported.onnx"), input_names=["input"],
                  output_names=["logits"], opset_version=14, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
