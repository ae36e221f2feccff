"""PyTorch reference of OpenAI CLIP's visual tower + PTG-RM preprocessing (written from the facts).

Same module names as openai/clip (``visual.conv1``, ``visual.transformer.resblocks.N.attn``
as a ``torch.nn.MultiheadAttention``, ``mlp`` as an ordered ``c_fc``/``gelu``/``c_proj`` Sequential,
fp32 LayerNorm, QuickGELU), so ``state_dict()`` has OpenAI's ``visual.*`` key layout.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, width * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(width * 4, width))]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):  # x: (L, N, D), OpenAI's layout
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution=224, patch_size=32, width=768, layers=12, heads=12, output_dim=512):
        super().__init__()
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIPImageEncoderRef(nn.Module):
    """clamp -> (optional avg-pool prefilter) -> bilinear resize -> normalise -> encode -> L2 normalise."""

    def __init__(self, input_resolution=224, patch_size=32, width=768, layers=12, heads=12, output_dim=512,
                 antialias=False):
        super().__init__()
        self.visual = VisionTransformer(input_resolution, patch_size, width, layers, heads, output_dim)
        self.resolution = input_resolution
        self.antialias = antialias

    def forward(self, x):
        x = x.clamp(0, 1)
        h, w = x.shape[-2:]
        r = self.resolution
        if self.antialias and min(h, w) // r >= 2:
            f = min(h, w) // r
            x = F.avg_pool2d(x[:, :, :h - h % f, :w - w % f], f, f)
        if (h, w) != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        feat = self.visual((x - mean) / std)
        return feat / feat.norm(dim=-1, keepdim=True)
