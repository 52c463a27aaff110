#!/usr/bin/python3
"""Seed corpus for fuzz_onnx (fuzz/run.sh calls this): OUT/onnx/*, each a selector byte (which
dataset shape the model must fit: 0 = 1x12x12, 1 = 3x16x16, 2 = 3x8x8, 3 = 1x4x4; fuzz_onnx.cpp)
followed by an .onnx file.

Always: tests/data/onnx/small_cnn.onnx. With Debian's python3-torch (optional): small networks
exported here that cover every translated operator within libFuzzer's 64 KiB input limit.
"""
import io
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1] + "/onnx"
os.makedirs(out, exist_ok=True)


def put(name, selector, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(bytes([selector]) + data)


put("small_cnn", 0, open(root + "/tests/data/onnx/small_cnn.onnx", "rb").read())
count = 1
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("make_onnx_seeds: python3-torch not installed: 1 onnx seed")
    sys.exit(0)

import warnings
warnings.filterwarnings("ignore")


class TinyRes(nn.Module):  # Conv/BN/Relu, a residual Add with a 1x1 shortcut, GAP, view, Gemm
    def __init__(s):
        super().__init__()
        s.c1, s.b1 = nn.Conv2d(3, 2, 3, 1, 1, bias=False), nn.BatchNorm2d(2)
        s.c2, s.b2 = nn.Conv2d(2, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4)
        s.sc, s.sb = nn.Conv2d(2, 4, 1, 2, bias=False), nn.BatchNorm2d(4)
        s.fc = nn.Linear(4, 10)

    def forward(s, x):
        x = F.relu(s.b1(s.c1(x)))
        x = F.relu(s.b2(s.c2(x)) + s.sb(s.sc(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return s.fc(x.view(x.size(0), -1))


class TinyMlp(nn.Module):  # Flatten, Gemm, Relu, Dropout, MatMul + Add
    def __init__(s):
        super().__init__()
        s.fc = nn.Linear(16, 8)
        s.w = nn.Parameter(torch.randn(8, 3))
        s.b = nn.Parameter(torch.zeros(3))

    def forward(s, x):
        return F.dropout(F.relu(s.fc(torch.flatten(x, 1))), 0.5, s.training) @ s.w + s.b


class TinyPools(nn.Module):  # MaxPool, AveragePool with padding (Pad + AveragePool), GlobalMaxPool, squeeze
    def __init__(s):
        super().__init__()
        s.c = nn.Conv2d(1, 3, 3, 1, 1)
        s.avg = nn.AvgPool2d(3, 1, 1)

    def forward(s, x):
        x = s.avg(F.max_pool2d(F.relu(s.c(x)), 2))
        return F.adaptive_max_pool2d(x, 1).squeeze(3).squeeze(2)


for name, net, shape, sel, train in (("tiny_res", TinyRes(), (3, 8, 8), 2, True),
                                     ("tiny_res_eval", TinyRes(), (3, 8, 8), 2, False),
                                     ("tiny_mlp", TinyMlp(), (1, 4, 4), 3, True),
                                     ("tiny_pools", TinyPools(), (1, 4, 4), 3, True)):
    buf = io.BytesIO()
    net.train(train)
    mode = torch.onnx.TrainingMode.TRAINING if train else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(net, torch.zeros(2, *shape), buf, training=mode, do_constant_folding=not train,
                      input_names=["input"], output_names=["logits"], opset_version=14,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    put(name, sel, buf.getvalue())
    count += 1
print(f"make_onnx_seeds: {count} onnx seeds")
