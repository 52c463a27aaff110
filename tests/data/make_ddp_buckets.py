#!/usr/bin/python3
"""Writes tests/data/ddp_buckets.json: PyTorch's own DDP bucket assignment
(torch.distributed._compute_bucket_assignment_by_size, the c10d reducer's function) for
parameter-tensor lists in gradient-ready order, with the limits DDP uses in iteration 1
([bucket_cap]) and after its rebuild ([first bucket, bucket_cap]). tests/sim/test_layerwise.cpp
checks sim::bucket_assignment against it. Run with Debian's python3-torch:
    /usr/bin/python3 tests/data/make_ddp_buckets.py > tests/data/ddp_buckets.json
"""
import json

import torch
import torch.distributed as dist


def resnet50():  # torchvision's ResNet-50 parameter tensors (conv weight, bn weight, bn bias), in registration order
    t = [64 * 3 * 7 * 7, 64, 64]
    inp = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for b in range(blocks):
            out = width * 4
            t += [width * inp, width, width, width * width * 9, width, width, out * width, out, out]
            if b == 0:
                t += [out * inp, out, out]
            inp = out
    return t + [1000 * 2048, 1000]


def vgg16():  # torchvision's VGG-16 (no BN): conv weight + bias, then three Linear layers
    cfg = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    t, inp = [], 3
    for c in cfg:
        t += [c * inp * 9, c]
        inp = c
    return t + [4096 * 25088, 4096, 4096 * 4096, 4096, 1000 * 4096, 1000]


def mlp():
    return [784 * 512, 512, 512 * 512, 512, 512 * 10, 10]


def ready_order(n):  # backward: the last layer's tensors first, bias before weight within a layer
    return list(range(n - 1, -1, -1))


MiB = 1024 * 1024
cases = []
for name, sizes in (("resnet50", resnet50()), ("vgg16", vgg16()), ("mlp", mlp())):
    order = ready_order(len(sizes))
    tensors = [torch.empty(sizes[i], dtype=torch.float32) for i in order]
    for limits in ([25 * MiB], [dist._DEFAULT_FIRST_BUCKET_BYTES, 25 * MiB], [MiB // 4, 4 * MiB], [1]):
        buckets, _ = dist._compute_bucket_assignment_by_size(tensors, limits, [False] * len(tensors), order)
        cases.append({"model": name, "sizes": sizes, "order": order, "limits": limits,
                      "buckets": [list(b) for b in buckets]})
print(json.dumps({"torch": torch.__version__, "cases": cases}))
