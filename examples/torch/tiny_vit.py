"""A small vision transformer for 3x32x32 images (10 classes): a model dtsim's engine cannot build,
simulated from its measured profile. README.md, "Simulate your own PyTorch model":

  /usr/bin/python3 tools/torch_profile.py examples/torch/tiny_vit.py:make_model --input 3,32,32 \
      --batch 32,64 --out traces/profiles/tiny_vit.profile.json
  build/dtsim run examples/torch/tiny-vit-8workers.json
"""
import torch
import torch.nn as nn


class TinyViT(nn.Module):
    def __init__(self, dim=64, depth=2, heads=4, patch=4, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)                # 8x8 = 64 tokens
        self.pos = nn.Parameter(torch.zeros(1, (32 // patch) ** 2, dim))  # owned by the root module
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        x = self.norm(self.encoder(x))
        return self.head(x.mean(dim=1))


def make_model():
    return TinyViT()
