"""PyTorch reference Res-HAIR for parity tests, written from the architecture facts.

Parameter names follow the official ``net/HAIR.py`` / ``utils/ResNet.py`` (``latent.kernel_box``,
``latent.blocks.N.norm1.body.weight``, ``latent.extracts.N.net.{0,2,4,6}``, ``feature.down.0.block.0.conv1``,
``feature.mid.attn_1.q``, ``reduce_latent``...).  Per-image kernels are applied the way the
official ``HyConv2d`` does: the batch is folded into channels and one grouped conv runs with
``groups = B * g``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_ref.restormer_ref import Downsample, LayerNorm, OverlapPatchEmbed, TransformerBlock, Upsample, mdta_core


def swish(x):
    return x * torch.sigmoid(x)


class ResnetBlock(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, ch, eps=1e-6, affine=True)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, ch, eps=1e-6, affine=True)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch, eps=1e-6, affine=True)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        h_ = self.norm(x)
        q, k, v = self.q(h_), self.k(h_), self.v(h_)
        b, c, h, w = q.shape
        q = q.reshape(b, c, h * w).permute(0, 2, 1)
        w_ = torch.bmm(q, k.reshape(b, c, h * w)) * (int(c) ** (-0.5))
        w_ = F.softmax(w_, dim=2)
        h_ = torch.bmm(v.reshape(b, c, h * w), w_.permute(0, 2, 1)).reshape(b, c, h, w)
        return x + self.proj_out(h_)


class DownsampleLDM(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class ResNet(nn.Module):
    """LDM encoder with ch_mult=(1,1,1), num_res_blocks=3, attention only in the middle."""

    def __init__(self, ch=72, out_ch=96, in_channels=384, groups=24, num_res_blocks=3, num_resolutions=3):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        for i in range(num_resolutions):
            down = nn.Module()
            down.block = nn.ModuleList([ResnetBlock(ch, groups) for _ in range(num_res_blocks)])
            down.attn = nn.ModuleList()
            if i != num_resolutions - 1:
                down.downsample = DownsampleLDM(ch)
            self.down.append(down)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(ch, groups)
        self.mid.attn_1 = AttnBlock(ch, groups)
        self.mid.block_2 = ResnetBlock(ch, groups)
        self.norm_out = nn.GroupNorm(groups, ch, eps=1e-6, affine=True)
        self.conv_out = nn.Conv2d(ch, out_ch, 3, padding=1)
        self.num_resolutions = num_resolutions

    def forward(self, x):
        hs = [self.conv_in(x)]
        for i in range(self.num_resolutions):
            for blk in self.down[i].block:
                hs.append(blk(hs[-1]))
            if i != self.num_resolutions - 1:
                hs.append(self.down[i].downsample(hs[-1]))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(hs[-1])))
        return self.conv_out(swish(self.norm_out(h)))


class FullyCon(nn.Module):
    def __init__(self, ch_fea, k, depth=3):
        super().__init__()
        layers, ch = [], ch_fea
        for _ in range(depth):
            layers += [nn.Linear(ch, ch // 2), nn.GELU()]
            ch //= 2
        layers.append(nn.Linear(ch, k))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return F.softmax(self.net(x), dim=-1)


def hyconv(x, w, out_ch, in_per_group, k, groups):
    """Official HyConv2d trick: (B,C,H,W) -> (1,B*C,H,W), grouped conv with B*groups groups."""
    b, c, h, wd = x.shape
    y = F.conv2d(x.reshape(1, b * c, h, wd), w.reshape(b * out_ch, in_per_group, k, k), padding=k // 2,
                 groups=b * groups)
    return y.reshape(b, out_ch, h, wd)


class Hytrans(nn.Module):
    def __init__(self, dim, heads, hidden, ln_type):
        super().__init__()
        self.norm1 = LayerNorm(dim, ln_type)
        self.attn = nn.Module()
        self.attn.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.norm2 = LayerNorm(dim, ln_type)
        self.dim, self.hidden, self.heads = dim, hidden, heads

    def sizes(self):
        d, h = self.dim, self.hidden
        return [3 * d * d, 3 * d * 9, d * d, 2 * h * d, 2 * h * 9, h * d]

    def forward(self, x, w):
        d, h = self.dim, self.hidden
        w1, w2, w3, w4, w5, w6 = torch.split(w, self.sizes(), dim=1)
        y = hyconv(self.norm1(x), w1, 3 * d, d, 1, 1)
        y = hyconv(y, w2, 3 * d, 1, 3, 3 * d)
        x = x + hyconv(mdta_core(y, self.heads, self.attn.temperature), w3, d, d, 1, 1)
        u = hyconv(self.norm2(x), w4, 2 * h, d, 1, 1)
        u = hyconv(u, w5, 2 * h, 1, 3, 2 * h)
        u1, u2 = u.chunk(2, dim=1)
        return x + hyconv(F.gelu(u1) * u2, w6, d, h, 1, 1)


class HyLevel(nn.Module):
    def __init__(self, dim, heads, n, k, ffn, ln_type, ch_fea):
        super().__init__()
        hidden = int(dim * ffn)
        self.blocks = nn.ModuleList([Hytrans(dim, heads, hidden, ln_type) for _ in range(n)])
        self.extracts = nn.ModuleList([FullyCon(ch_fea, k) for _ in range(n)])
        rows = []
        for _ in range(k):  # each row = the default init of six fresh convs, flattened
            convs = [nn.Conv2d(dim, 3 * dim, 1, bias=False), nn.Conv2d(3 * dim, 3 * dim, 3, groups=3 * dim, bias=False),
                     nn.Conv2d(dim, dim, 1, bias=False), nn.Conv2d(dim, 2 * hidden, 1, bias=False),
                     nn.Conv2d(2 * hidden, 2 * hidden, 3, groups=2 * hidden, bias=False),
                     nn.Conv2d(hidden, dim, 1, bias=False)]
            rows.append(torch.cat([c.weight.detach().flatten() for c in convs]))
        self.kernel_box = nn.Parameter(torch.stack(rows))

    def forward(self, x, feature):
        for ext, blk in zip(self.extracts, self.blocks):
            x = blk(x, ext(feature) @ self.kernel_box)
        return x


def official_num_boxes(num_blocks, num_refinement_blocks):
    return (max(4, num_blocks[3]) + 1, max(4, num_blocks[2]), max(4, num_blocks[1]) + 1,
            max(4, num_blocks[0]) + 1, max(4, num_refinement_blocks) + 1)


class HAIR(nn.Module):
    def __init__(self, inp_channels=3, out_channels=3, dim=48, num_blocks=(4, 6, 6, 8), num_refinement_blocks=4,
                 heads=(1, 2, 4, 8), ffn_expansion_factor=2.66, bias=False, LayerNorm_type="WithBias"):
        super().__init__()
        ffn, ln = ffn_expansion_factor, LayerNorm_type
        ch, giv, groups = int(dim * 1.5), dim * 2, int(dim * 1.5) // 3
        k = official_num_boxes(num_blocks, num_refinement_blocks)

        def static(d, h, n):
            return nn.Sequential(*[TransformerBlock(d, h, ffn, bias, ln) for _ in range(n)])

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = static(dim, heads[0], num_blocks[0])
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = static(dim * 2, heads[1], num_blocks[1])
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = static(dim * 4, heads[2], num_blocks[2])
        self.down3_4 = Downsample(dim * 4)
        self.feature = ResNet(ch=ch, out_ch=giv, in_channels=dim * 8, groups=groups)
        self.latent = HyLevel(dim * 8, heads[3], num_blocks[3], k[0], ffn, ln, giv)
        self.reduce_latent = nn.Conv2d(dim * 8, dim * 4, 3, padding=1, bias=True)
        self.up4_3 = Upsample(dim * 4)
        self.reduce_chan_level3 = nn.Conv2d(dim * 2 + dim * 4, dim * 4, 1, bias=bias)
        self.decoder_level3 = HyLevel(dim * 4, heads[2], num_blocks[2], k[1], ffn, ln, giv)
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, 1, bias=bias)
        self.decoder_level2 = HyLevel(dim * 2, heads[1], num_blocks[1], k[2], ffn, ln, giv)
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = HyLevel(dim * 2, heads[0], num_blocks[0], k[3], ffn, ln, giv)
        self.refinement = HyLevel(dim * 2, heads[0], num_refinement_blocks, k[4], ffn, ln, giv)
        self.output = nn.Conv2d(dim * 2, out_channels, 3, padding=1, bias=bias)

    def global_vector(self, inp_img):
        e3 = self.encoder_level3(self.down2_3(self.encoder_level2(self.down1_2(
            self.encoder_level1(self.patch_embed(inp_img))))))
        return self.feature(self.down3_4(e3)).mean(dim=(-1, -2))

    def forward(self, inp_img, giv=None):
        e1 = self.encoder_level1(self.patch_embed(inp_img))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        bott = self.down3_4(e3)
        if giv is None:  # official behaviour; a given GIV is an ms_osr extension (tiling)
            giv = self.feature(bott).mean(dim=(-1, -2))
        lat = self.reduce_latent(self.latent(bott, giv))
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(lat), e3], 1)), giv)
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), e2], 1)), giv)
        d1 = self.decoder_level1(torch.cat([self.up2_1(d2), e1], 1), giv)
        return self.output(self.refinement(d1, giv)) + inp_img
