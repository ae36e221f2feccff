"""PyTorch reference of PTG-RM (official class ``refinement2``), written from docs/ptg_rm.md facts.

Parameter names follow the official module, so ``state_dict()`` of :class:`refinement2` is what
an official checkpoint holds under ``refinement11.``.  ``forward(osf, base_out, inp)`` adds one
thing the release lacks: reflect padding of H, W to a multiple of 4 and cropping back (the
official module needs multiples of 4), identical to the MindSpore model.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.Module):
    """Restormer per-pixel LayerNorm over channels; ``body.weight``/``body.bias``."""

    def __init__(self, dim: int, layernorm_type: str = "WithBias"):
        super().__init__()
        self.body = nn.Module()
        self.body.weight = nn.Parameter(torch.ones(dim))
        self.with_bias = layernorm_type != "BiasFree"
        if self.with_bias:
            self.body.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # b, hw, c
        var = t.var(-1, keepdim=True, unbiased=False)
        if self.with_bias:
            mu = t.mean(-1, keepdim=True)
            t = (t - mu) / torch.sqrt(var + 1e-5) * self.body.weight + self.body.bias
        else:
            t = t / torch.sqrt(var + 1e-5) * self.body.weight
        return t.transpose(1, 2).reshape(b, c, h, w)


class Attention(nn.Module):
    """MDTA: transposed (channel) attention with depthwise-conv q, k, v."""

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, 1, 1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class FeedForward(nn.Module):
    """GDFN: gated depthwise-conv feed-forward network."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, 1, 1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x):
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    def __init__(self, dim, num_heads, ffn_expansion_factor, bias, layernorm_type):
        super().__init__()
        self.norm1 = LayerNorm(dim, layernorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layernorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class ResidualBlock_noBN(nn.Module):  # noqa: N801
    def __init__(self, nf=16):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def kernel2d_conv(feat, kernel, ksize):
    """Per-pixel depthwise conv via unfold (replicate padding), as the release computes it."""
    n, c, h, w = feat.shape
    pad = (ksize - 1) // 2
    feat = F.pad(feat, (pad, pad, pad, pad), mode="replicate")
    feat = feat.unfold(2, ksize, 1).unfold(3, ksize, 1)  # n c h w ky kx
    feat = feat.permute(0, 2, 3, 1, 5, 4).reshape(n, h, w, c, -1)  # (kx, ky) order
    kernel = kernel.permute(0, 2, 3, 1).reshape(n, h, w, c, ksize, ksize)
    kernel = kernel.permute(0, 1, 2, 3, 5, 4).reshape(n, h, w, c, -1)
    return (feat * kernel).sum(-1).permute(0, 3, 1, 2)


class refinement2(nn.Module):  # noqa: N801 (official name)
    def __init__(self, nf=16, osf_dim=512, osf_hidden=256, num_blocks=4, heads=1, ffn_expansion_factor=2.66,
                 bias=False, layernorm_type="WithBias", kernel_size=3, use_mask=False):
        super().__init__()
        k = kernel_size
        self.kh = k
        self.use_mask = use_mask
        cond = nf * 4
        self.conv_last2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.conv_last3 = nn.Conv2d(nf, 4 if use_mask else 3, 3, 1, 1, bias=True)
        self.mapp_space1 = nn.Linear(osf_dim, osf_hidden, bias=False)
        self.mapp_space2 = nn.Linear(osf_hidden, cond, bias=False)
        self.mapp_space11 = nn.Linear(osf_dim, osf_hidden, bias=False)
        self.mapp_space22 = nn.Linear(osf_hidden, cond, bias=False)
        self.mapp_position1 = nn.Conv2d(2, nf, 3, 1, 1, bias=False)
        self.mapp_position2 = nn.Conv2d(nf, nf, 1, 1, 0, bias=False)
        self.mapp_position11 = nn.Conv2d(2, nf, 3, 1, 1, bias=False)
        self.mapp_position22 = nn.Conv2d(nf, nf, 1, 1, 0, bias=False)
        self.mapping11 = nn.Linear(cond + nf, nf, bias=False)
        self.mapping12 = nn.Linear(nf, nf, bias=False)
        self.mapp11 = nn.Conv2d(nf + cond + nf, nf * k * k, 3, 1, 1, bias=False)
        self.mapp12 = nn.Conv2d(nf * k * k, nf * k * k, 3, 1, 1, bias=False)
        self.mapp1 = nn.Conv2d(nf, 1, 3, 1, 1, bias=False)
        self.refine11 = nn.Conv2d(nf * 2, nf, 1, 1, 0, bias=False)
        self.r1 = nn.Conv2d(6, nf, 3, 1, 1, bias=False)
        self.r2 = nn.Conv2d(nf, nf, 3, 2, 1, bias=False)
        self.r22 = nn.Conv2d(nf, nf, 3, 2, 1, bias=False)
        self.r1_decoder = nn.Conv2d(nf, nf * 4, 3, 1, 1, bias=False)
        self.r2_decoder = nn.Conv2d(nf, nf * 4, 3, 1, 1, bias=False)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.r1norm = nn.InstanceNorm2d(nf, affine=True)
        self.r2norm = nn.InstanceNorm2d(nf, affine=True)
        self.lrelu = nn.LeakyReLU(0.1)
        self.r1_mask = nn.Conv2d(nf + cond + nf, nf, 3, 1, 1, bias=False)
        self.r2_mask = nn.Conv2d(nf, 1, 3, 1, 1, bias=False)
        self.transformer = nn.Sequential(*[TransformerBlock(nf, heads, ffn_expansion_factor, bias, layernorm_type)
                                           for _ in range(num_blocks)])
        self.resnet = ResidualBlock_noBN(nf)

    def forward(self, osf, base_out, inp):
        h0, w0 = base_out.shape[-2:]
        ph, pw = (-h0) % 4, (-w0) % 4
        if ph or pw:
            base_out = F.pad(base_out, (0, pw, 0, ph), mode="reflect")
            inp = F.pad(inp, (0, pw, 0, ph), mode="reflect")
        g = osf.float()
        f = self.r22(self.r2norm(self.r2(self.lrelu(self.r1norm(self.r1(torch.cat([base_out, inp], 1)))))))
        b, _, h, w = f.shape
        gx, gy = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        grid = torch.stack([gx, gy], 0).unsqueeze(0).repeat(b, 1, 1, 1)
        pos1 = self.mapp_position2(self.lrelu(self.mapp_position1(grid)))
        c1 = self.mapp_space2(self.lrelu(self.mapp_space1(g)))
        mask = torch.cat([f, c1.view(b, -1, 1, 1).repeat(1, 1, h, w), pos1], 1)
        mask = torch.sigmoid(self.r2_mask(self.lrelu(self.r1_mask(mask))))
        f3 = self.transformer(f) * mask + self.resnet(f) * (1 - mask)
        pooled = F.adaptive_avg_pool2d(f3, 1).view(b, -1)
        pos2 = self.mapp_position22(self.lrelu(self.mapp_position11(grid)))
        c2 = self.mapp_space22(self.lrelu(self.mapp_space11(g)))
        ca = self.mapping12(self.lrelu(self.mapping11(torch.cat([pooled, c2], 1)))).view(b, -1, 1, 1)
        feat1 = torch.sigmoid(ca) * f3
        cond = torch.cat([f3, c2.view(b, -1, 1, 1).repeat(1, 1, h, w), pos2], 1)
        kern = self.mapp12(self.lrelu(self.mapp11(cond)))
        sa = torch.sigmoid(self.mapp1(self.lrelu(kernel2d_conv(f3, kern, self.kh)))) * f3
        feat = self.refine11(torch.cat([feat1, sa], 1)) + f3
        feat = self.lrelu(self.pixel_shuffle(self.r1_decoder(feat)))
        feat = self.lrelu(self.pixel_shuffle(self.r2_decoder(feat)))
        res = self.conv_last3(self.lrelu(self.conv_last2(feat)))
        base_c = torch.clamp(base_out, 0.0, 1.0)
        if self.use_mask:
            out = inp + (base_c - inp) * torch.sigmoid(res[:, 3:4]) + res[:, :3]
        else:
            out = base_c + res
        return out[:, :, :h0, :w0]
