"""dtsim's models (engine/models.cpp) written in PyTorch, with the same parameter tensors: the same
names, shapes and registration order (tests/reality/test_param_lists.py checks this against dtsim).

  mlp(hidden=[256, 128], input=(1, 28, 28), classes=10)  Flatten, (Linear + ReLU) per width, Linear
  lenet5(input=(1, 28, 28), classes=10)                  conv 6@5x5 (padding 2 on 28x28), pool, ...
  resnet8 / resnet20 (input=(3, 32, 32), classes=10)     He et al. CIFAR ResNets; shortcut option B
                                                         (1x1 conv + BN) for resnet8, A (subsample +
                                                         zero pad, no parameters) otherwise

build(spec, input, classes) takes dtsim's model spec ({"kind": "mlp", "hidden": [...]}).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    def __init__(self, hidden, input, classes):
        super().__init__()
        self.flatten = nn.Flatten()
        width = input[0] * input[1] * input[2]
        self.n = len(hidden)
        for i, h in enumerate(hidden):
            setattr(self, f"fc{i + 1}", nn.Linear(width, h))
            setattr(self, f"relu{i + 1}", nn.ReLU())
            width = h
        setattr(self, f"fc{self.n + 1}", nn.Linear(width, classes))

    def forward(self, x):
        x = self.flatten(x)
        for i in range(self.n):
            x = getattr(self, f"relu{i + 1}")(getattr(self, f"fc{i + 1}")(x))
        return getattr(self, f"fc{self.n + 1}")(x)


class LeNet5(nn.Module):
    def __init__(self, input, classes, padding=None):
        super().__init__()
        pad = padding if padding is not None else (2 if input[1] == 28 and input[2] == 28 else 0)
        self.conv1 = nn.Conv2d(input[0], 6, 5, padding=pad)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        h = ((input[1] + 2 * pad - 4) // 2 - 4) // 2
        w = ((input[2] + 2 * pad - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * h * w, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


class SubsamplePad(nn.Module):
    """Option-A shortcut: x[:, :, ::stride, ::stride] zero-padded to `out` channels (no parameters)."""

    def __init__(self, stride, cin, out):
        super().__init__()
        self.stride, self.extra = stride, out - cin

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        lo = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))


class BasicBlock(nn.Module):
    def __init__(self, cin, out, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = None
        if stride != 1 or cin != out:
            if shortcut == "A":
                self.shortcut = SubsamplePad(stride, cin, out)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        self.relu2 = nn.ReLU()

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(y + (self.shortcut(x) if self.shortcut is not None else x))


class ResNetCifar(nn.Module):
    def __init__(self, n, input, classes, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(input[0], 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        cin = 16
        for s, width in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(cin, width, 2 if s > 0 and b == 0 else 1, shortcut))
                cin = width
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


def build(spec, input=None, classes=10):
    """A PyTorch model for dtsim's model spec, e.g. {"kind": "resnet20"}."""
    kind = spec["kind"]
    if kind == "mlp":
        return MLP(spec.get("hidden", [256, 128]), input or (1, 28, 28), classes)
    if kind == "lenet5":
        return LeNet5(input or (1, 28, 28), classes, spec.get("padding"))
    depth = {"resnet8": 1, "resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}
    if kind in depth:
        n = depth[kind]
        return ResNetCifar(n, input or (3, 32, 32), classes, spec.get("shortcut", "B" if n == 1 else "A"))
    raise ValueError(f"no PyTorch definition for dtsim model kind '{kind}'")


def param_list(model):
    """[(name, shape)] in registration order."""
    return [(n, list(p.shape)) for n, p in model.named_parameters()]


def make_model(spec=None, input=None, classes=10):
    """Entry point for tools/torch_profile.py (`--args '{"spec": {"kind": "resnet8"}}'`)."""
    return build(spec or {"kind": "mlp"}, tuple(input) if input else None, classes)
