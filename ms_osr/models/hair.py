"""Res-HAIR (Cao et al., "HAIR: Hypernetworks-based All-in-One Image Restoration") in MindSpore.

Computes what the official code (toummHus/HAIR, ``net/HAIR.py`` + ``utils/ResNet.py``) computes:

* Restormer encoder levels 1-3 are static TransformerBlocks.
* The Degradation-Aware Classifier (``feature``, an LDM-style ResNet encoder) runs on the
  384-channel bottleneck and is average-pooled to the 96-d Global Information Vector (GIV).
* Latent, decoder 3/2/1 and refinement levels are hypernetwork levels: every block has its
  own Hyper Selecting Net (``extracts.N``, MLP -> softmax over K) that mixes the level's
  weight box (``kernel_box``, K x P) into per-image conv weights.
* Upsample(192) + ``reduce_latent`` on the bottleneck path, inherited from PromptIR.

Per-image convolutions: the 1x1 convs are batched matmuls with per-image weight matrices; the
depthwise 3x3 convs fold the batch into the channel axis (one grouped conv with B*C groups).

Attribute names equal the official PyTorch ones so the Lightning checkpoint ``hair3d.ckpt``
(``state_dict`` with ``net.`` prefixes) converts with no overrides.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor

from ..kernels import Depthwise3x3
from ..precision import cast_like
from ..registry import register_config, register_model
from .dehaze_prior import DarkChannelSkip, ScatteringSkip
from .layers import AffineSkip, conv2d, crop, gelu
from .restormer import LayerNorm, RestormerUNet, Upsample, channel_attention, GatedGELU, pad_input

GN_EPS = 1e-6  # GroupNorm epsilon of the LDM encoder
# Smallest padded side: the DAC halves H/8 twice with pad-(0,1) stride-2 3x3 convs, which needs H/8 >= 4.
MIN_SIZE = 32
# affine_skip: off, a field of colour maps (True), or one map per image ("global")
AFFINE_SKIP_KINDS = (False, True, "global")


def _swish(x: Tensor) -> Tensor:
    return x * ops.sigmoid(x)


# ----------------------------------------------------------------------------------------------
# Degradation-Aware Classifier: LDM/pytorch_diffusion-style ResNet encoder (names as upstream)
# ----------------------------------------------------------------------------------------------
class ResnetBlock(nn.Cell):
    """GN -> swish -> conv3x3 -> GN -> swish -> (dropout 0) -> conv3x3, plus identity skip."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels, eps=GN_EPS)
        self.conv1 = conv2d(channels, channels, 3)
        self.norm2 = nn.GroupNorm(groups, channels, eps=GN_EPS)
        self.conv2 = conv2d(channels, channels, 3)

    def construct(self, x: Tensor) -> Tensor:
        h = self.conv1(_swish(self.norm1(x)))
        h = self.conv2(_swish(self.norm2(h)))
        return x + h


class AttnBlock(nn.Cell):
    """Single-head full spatial self-attention with 1x1 q/k/v/proj_out convs."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=GN_EPS)
        self.q = conv2d(channels, channels, 1)
        self.k = conv2d(channels, channels, 1)
        self.v = conv2d(channels, channels, 1)
        self.proj_out = conv2d(channels, channels, 1)
        self.scale = float(channels) ** -0.5

    def construct(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        hn = self.norm(x)
        q = self.q(hn).reshape(b, c, h * w)
        k = self.k(hn).reshape(b, c, h * w)
        v = self.v(hn).reshape(b, c, h * w)
        attn = ops.softmax(ops.matmul(q.swapaxes(1, 2), k) * self.scale, axis=2)  # (b, query, key)
        out = ops.matmul(v, attn.swapaxes(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(out)


class DownsampleConv(nn.Cell):
    """Stride-2 3x3 conv after an asymmetric (0,1,0,1) zero pad, as in the LDM encoder."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv2d(channels, channels, 3, stride=2, padding=0)

    def construct(self, x: Tensor) -> Tensor:
        # Zero column/row appended with concat: the backward of ops.pad (constant, asymmetric)
        # hangs intermittently in MindSpore 2.10 CPU GRAPH_MODE training after a few steps.
        b, c, h, w = x.shape
        x = ops.cat((x, ops.zeros((b, c, h, 1), x.dtype)), axis=3)
        x = ops.cat((x, ops.zeros((b, c, 1, w + 1), x.dtype)), axis=2)
        return self.conv(x)


class DownLevel(nn.Cell):
    """One resolution of the encoder: ``block`` list and an optional ``downsample``."""

    def __init__(self, channels: int, groups: int, num_res_blocks: int, downsample: bool):
        super().__init__()
        self.block = nn.CellList([ResnetBlock(channels, groups) for _ in range(num_res_blocks)])
        self.has_downsample = downsample
        if downsample:
            self.downsample = DownsampleConv(channels)

    def construct(self, x: Tensor) -> Tensor:
        for blk in self.block:
            x = blk(x)
        if self.has_downsample:
            x = self.downsample(x)
        return x


class MidBlock(nn.Cell):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, groups)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, groups)

    def construct(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class ResNetEncoder(nn.Cell):
    """The DAC: conv_in -> len(ch_mult) levels of ResnetBlocks (downsampling between) -> mid -> out.

    ``ch_mult`` is all ones in HAIR, so every level has ``ch`` channels.
    """

    def __init__(self, ch: int, out_ch: int, in_channels: int, groups: int, num_res_blocks: int = 3,
                 num_resolutions: int = 3):
        super().__init__()
        if ch % groups:
            raise ValueError(f"DAC width {ch} is not divisible by its GroupNorm groups {groups}")
        self.conv_in = conv2d(in_channels, ch, 3)
        self.down = nn.CellList([DownLevel(ch, groups, num_res_blocks, i != num_resolutions - 1)
                                 for i in range(num_resolutions)])
        self.mid = MidBlock(ch, groups)
        self.norm_out = nn.GroupNorm(groups, ch, eps=GN_EPS)
        self.conv_out = conv2d(ch, out_ch, 3)

    def construct(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(_swish(self.norm_out(h)))


# ----------------------------------------------------------------------------------------------
# Hyper Selecting Net and the hypernetwork transformer level
# ----------------------------------------------------------------------------------------------
class FullyCon(nn.Cell):
    """HSN of one block: ``net`` = [Linear, GELU] * depth + Linear(->K), then softmax over K.

    ``temperature`` divides the logits (1 = the official code).  Below 1 it sharpens the selection and
    scales the logits' gradients by 1/temperature: an option against the near-uniform selection measured
    at CPU scale (docs/hair.md), not part of HAIR."""

    def __init__(self, ch_fea: int, num_boxes: int, depth: int = 3, temperature: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"HSN temperature must be > 0, got {temperature}")
        self.inv_temperature = 1.0 / float(temperature)
        layers, ch = [], ch_fea
        for _ in range(depth):
            layers += [nn.Dense(ch, ch // 2), gelu()]
            ch //= 2
        layers.append(nn.Dense(ch, num_boxes))
        self.net = nn.SequentialCell(layers)

    def construct(self, giv: Tensor) -> Tensor:
        return ops.softmax(self.net(giv) * self.inv_temperature, axis=-1)


def _pointwise(x: Tensor, w: Tensor) -> Tensor:
    """Per-image 1x1 conv: x (B, C, H, W), w (B, O, C) -> (B, O, H, W).

    The batch is folded into the channels (one conv with B groups): the same GEMM as a batched matmul,
    with identical results, but ~18% faster at batch 1 on CPU (oneDNN conv instead of BatchMatMul).
    """
    b, c, h, wd = x.shape
    o = w.shape[1]
    y = ops.conv2d(x.reshape(1, b * c, h, wd), cast_like(w, x).reshape(b * o, c, 1, 1), groups=b)
    return y.reshape(b, o, h, wd)


class PerImageDepthwise3x3(nn.Cell):
    """Per-image depthwise 3x3 conv (pad 1): x (B, C, H, W), w (B, C*9) -> (B, C, H, W).

    The batch is folded into the channels, so one depthwise conv over B*C channels applies each
    image's own kernels (the CPU kernel of ``ms_osr.kernels`` where available).
    """

    def __init__(self):
        super().__init__()
        self.depthwise = Depthwise3x3()

    def construct(self, x: Tensor, w: Tensor) -> Tensor:
        b, c, h, wd = x.shape
        y = self.depthwise(x.reshape(1, b * c, h, wd), w.reshape(b * c, 1, 3, 3))
        return y.reshape(b, c, h, wd)


class HyAttention(nn.Cell):
    """MDTA with generated weights; only ``temperature`` is a parameter."""

    def __init__(self, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = Parameter(Tensor(np.ones((num_heads, 1, 1), np.float32)), name="temperature")
        self.qkv_dwconv = PerImageDepthwise3x3()

    def construct(self, x: Tensor, w_qkv: Tensor, w_dw: Tensor, w_proj: Tensor) -> Tensor:
        qkv = self.qkv_dwconv(_pointwise(x, w_qkv), w_dw)
        return _pointwise(channel_attention(qkv, self.num_heads, self.temperature), w_proj)


class HyTransformerBlock(nn.Cell):
    """Restormer block whose six conv kernels come from the hypernetwork (LayerNorms stay static)."""

    recompute_unit = True  # see ms_osr.training.recompute

    def __init__(self, dim: int, num_heads: int, hidden: int, LayerNorm_type: str):
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = HyAttention(num_heads)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.dwconv = PerImageDepthwise3x3()
        self.gate = GatedGELU()
        self.dim, self.hidden = dim, hidden

    def construct(self, x: Tensor, w: Tensor) -> Tensor:
        """``w`` (B, P): this block's flattened kernels in the order of :func:`box_layout`."""
        b, d, hd = x.shape[0], self.dim, self.hidden
        o1 = 3 * d * d
        o2 = o1 + 3 * d * 9
        o3 = o2 + d * d
        o4 = o3 + 2 * hd * d
        o5 = o4 + 2 * hd * 9
        x = x + self.attn(self.norm1(x), w[:, :o1].reshape(b, 3 * d, d), w[:, o1:o2],
                          w[:, o2:o3].reshape(b, d, d))
        u = self.dwconv(_pointwise(self.norm2(x), w[:, o3:o4].reshape(b, 2 * hd, d)), w[:, o4:o5])
        return x + _pointwise(self.gate(u), w[:, o5:].reshape(b, d, hd))


def box_layout(dim: int, hidden: int) -> list:
    """Shapes (PyTorch conv weight layout) of the six kernels stored in one weight-box row."""
    return [(3 * dim, dim, 1, 1), (3 * dim, 1, 3, 3), (dim, dim, 1, 1),
            (2 * hidden, dim, 1, 1), (2 * hidden, 1, 3, 3), (dim, hidden, 1, 1)]


def init_kernel_box(num_boxes: int, dim: int, hidden: int, rng: np.random.Generator) -> np.ndarray:
    """Each row holds freshly initialised conv kernels (PyTorch default: U(+-1/sqrt(fan_in)))."""
    rows = []
    for _ in range(num_boxes):
        parts = []
        for shape in box_layout(dim, hidden):
            bound = 1.0 / np.sqrt(np.prod(shape[1:]))
            parts.append(rng.uniform(-bound, bound, size=int(np.prod(shape))))
        rows.append(np.concatenate(parts))
    return np.stack(rows).astype(np.float32)


class HyLevel(nn.Cell):
    """``num_blocks`` HyperTrans blocks sharing one weight box of ``num_boxes`` rows."""

    def __init__(self, dim: int, num_heads: int, num_blocks: int, num_boxes: int, ffn_expansion_factor: float,
                 LayerNorm_type: str, giv_dim: int, hsn_depth: int = 3, seed: int = 0,
                 hsn_temperature: float = 1.0):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        rng = np.random.default_rng(seed)
        self.kernel_box = Parameter(Tensor(init_kernel_box(num_boxes, dim, hidden, rng)), name="kernel_box")
        self.blocks = nn.CellList([HyTransformerBlock(dim, num_heads, hidden, LayerNorm_type)
                                   for _ in range(num_blocks)])
        self.extracts = nn.CellList([FullyCon(giv_dim, num_boxes, hsn_depth, hsn_temperature)
                                     for _ in range(num_blocks)])
        self.num_blocks = num_blocks

    def construct(self, x: Tensor, giv: Tensor) -> Tensor:
        for i in range(self.num_blocks):
            mix = self.extracts[i](giv)
            weights = ops.matmul(mix, cast_like(self.kernel_box, mix))  # (B, K) @ (K, P): per-image kernels
            x = self.blocks[i](x, weights)
        return x


# ----------------------------------------------------------------------------------------------
def official_num_boxes(num_blocks: Sequence[int], num_refinement_blocks: int) -> tuple:
    """K per dynamic level as the official code sets it: max(4, n) + 1, except decoder 3 (no +1)."""
    return (max(4, num_blocks[3]) + 1, max(4, num_blocks[2]), max(4, num_blocks[1]) + 1,
            max(4, num_blocks[0]) + 1, max(4, num_refinement_blocks) + 1)


class ResHAIR(RestormerUNet):
    """Res-HAIR. ``construct(x, giv=None)``; ``global_vector(x)`` returns the (B, giv_dim) GIV.

    Passing a precomputed ``giv`` (shape (B, giv_dim) or (1, giv_dim), broadcast over the
    batch) skips the DAC, e.g. to share one image-level vector across the tiles of a large image.
    ``affine_skip=True`` (ours, not in the official model) makes the global residual start from a smooth
    per-pixel colour transform of the input (:class:`~ms_osr.models.layers.AffineSkip`, predicted from the
    latent; identity at initialisation, so official or older weights load and restore as before);
    ``affine_skip="global"`` from one colour transform per image, the same prediction averaged over the latent.
    ``dark_channel_skip=True`` (ours) makes it start instead from the input moved towards its dark-channel
    dehazing by a per-pixel weight predicted from the latent (:class:`~ms_osr.models.dehaze_prior.DarkChannelSkip`;
    weight 0 at initialisation, so again weights without it load and restore as before).
    ``scattering_skip=True`` (ours) makes it start from the input with the scattering model inverted by a
    transmission field and an airlight predicted from the latent (:class:`~ms_osr.models.dehaze_prior.ScatteringSkip`;
    transmission 1 at initialisation, the same guarantee).  The three skips are exclusive.
    """

    min_size = MIN_SIZE  # smaller inputs are padded to it inside construct

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", num_boxes: Optional[Sequence[int]] = None,
                 dac_ch: Optional[int] = None, dac_groups: Optional[int] = None, giv_dim: Optional[int] = None,
                 hsn_depth: int = 3, seed: Optional[int] = None, hsn_temperature: float = 1.0,
                 affine_skip: Union[bool, str] = False, dark_channel_skip: bool = False,
                 scattering_skip: bool = False):
        super().__init__()
        if affine_skip not in AFFINE_SKIP_KINDS:
            raise ValueError(f"ResHAIR: affine_skip={affine_skip!r} unknown: choose false, true (a field of colour "
                             "maps) or 'global' (one per image)")
        if sum(map(bool, (affine_skip, dark_channel_skip, scattering_skip))) > 1:
            raise ValueError("ResHAIR: choose one of affine_skip, dark_channel_skip and scattering_skip (each "
                             "replaces the input in the global residual)")
        self.check_levels(num_blocks, heads, inp_channels, out_channels)
        # Official sizes: DAC width 72 = 1.5*dim with 24 GroupNorm groups, GIV 96 = 2*dim.
        dac_ch = dac_ch or int(dim * 1.5)
        dac_groups = dac_groups or dac_ch // 3
        giv_dim = giv_dim or dim * 2
        num_boxes = tuple(num_boxes) if num_boxes is not None else official_num_boxes(num_blocks,
                                                                                       num_refinement_blocks)
        if len(num_boxes) != 5:
            raise ValueError("num_boxes needs 5 entries: latent, decoder3, decoder2, decoder1, refinement")
        self.giv_dim = giv_dim
        static = dict(ffn_expansion_factor=ffn_expansion_factor, bias=bias, LayerNorm_type=LayerNorm_type)
        # Weight boxes are initialised in NumPy; without a seed, draw from NumPy's global RNG
        # (seeded by setup_runtime) so runs stay reproducible.
        rng = np.random.default_rng(seed if seed is not None else int(np.random.randint(2 ** 31)))
        seeds = [int(s) for s in rng.integers(0, 2 ** 31, size=5)]

        def hy(d, h, n, k, s):
            return HyLevel(d, h, n, k, ffn_expansion_factor, LayerNorm_type, giv_dim, hsn_depth, s, hsn_temperature)

        self.build_encoder(inp_channels, dim, num_blocks, heads, static)
        self.feature = ResNetEncoder(dac_ch, giv_dim, dim * 8, dac_groups)
        self.latent = hy(dim * 8, heads[3], num_blocks[3], num_boxes[0], seeds[0])
        self.reduce_latent = conv2d(dim * 8, dim * 4, 3, bias=True)
        self.up4_3 = Upsample(dim * 4)
        self.reduce_chan_level3 = conv2d(dim * 2 + dim * 4, dim * 4, 1, bias=bias)
        self.decoder_level3 = hy(dim * 4, heads[2], num_blocks[2], num_boxes[1], seeds[1])
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = conv2d(dim * 4, dim * 2, 1, bias=bias)
        self.decoder_level2 = hy(dim * 2, heads[1], num_blocks[1], num_boxes[2], seeds[2])
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = hy(dim * 2, heads[0], num_blocks[0], num_boxes[3], seeds[3])
        self.refinement = hy(dim * 2, heads[0], num_refinement_blocks, num_boxes[4], seeds[4])
        self.output = conv2d(dim * 2, out_channels, 3, bias=bias)
        # Not in the official model: the global residual adds the output to a smooth per-pixel colour transform of
        # the input predicted from the latent (layers.AffineSkip) instead of the input itself.
        self.affine_skip = AffineSkip(dim * 4, per_image=affine_skip == "global") if affine_skip else None
        self.dark_channel_skip = DarkChannelSkip(dim * 4) if dark_channel_skip else None
        self.scattering_skip = ScatteringSkip(dim * 4) if scattering_skip else None

    @property
    def has_skip_transform(self) -> bool:
        """Whether the global residual starts from a transform of the input (``affine_skip``,
        ``dark_channel_skip`` or ``scattering_skip``) rather than the input itself."""
        return any(t is not None for t in (self.affine_skip, self.dark_channel_skip, self.scattering_skip))

    def _giv(self, bottleneck: Tensor) -> Tensor:
        return self.feature(bottleneck).mean(axis=(2, 3))

    def global_vector(self, x: Tensor) -> Tensor:
        """The Global Information Vector (B, giv_dim) of an image batch (padded as in construct)."""
        x = pad_input(x, self.size_multiple, MIN_SIZE)
        return self._giv(self.encode(x)[3])

    def restore_with_giv(self, inp_img: Tensor, giv: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """``(restored, giv)``: the output and the GIV that selected its weights (for a loss on the GIV)."""
        restored, giv, _ = self.restore_parts(inp_img, giv)
        return restored, giv

    def restore_parts(self, inp_img: Tensor, giv: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """``(restored, giv, skip)``: :meth:`restore_with_giv` plus the image the global residual adds the
        output to (the input, or its transform with ``affine_skip``, ``dark_channel_skip`` or
        ``scattering_skip``), cropped like the output."""
        h, w = inp_img.shape[-2], inp_img.shape[-1]
        x = pad_input(inp_img, self.size_multiple, MIN_SIZE)
        enc1, enc2, enc3, bottleneck = self.encode(x)
        if giv is None:
            giv = self._giv(bottleneck)
        else:
            giv = ops.broadcast_to(giv, (x.shape[0], self.giv_dim))
        lat = self.reduce_latent(self.latent(bottleneck, giv))
        skip = x
        if self.affine_skip is not None:
            skip = self.affine_skip(lat, x)
        if self.dark_channel_skip is not None:
            skip = self.dark_channel_skip(lat, x)
        if self.scattering_skip is not None:
            skip = self.scattering_skip(lat, x)
        return crop(self.decode(lat, enc1, enc2, enc3, skip, giv), 0, 0, h, w), giv, crop(skip, 0, 0, h, w)

    def construct(self, inp_img: Tensor, giv: Optional[Tensor] = None) -> Tensor:
        return self.restore_with_giv(inp_img, giv)[0]


# ----------------------------------------------------------------------------------------------
@register_model
def res_hair(**kwargs) -> ResHAIR:
    """Res-HAIR with the official defaults (Restormer-48 backbone, K = 9,6,7,5,5; 28.56 M parameters)."""
    return ResHAIR(**kwargs)


register_config("res_hair_small", "res_hair",
                "Res-HAIR for CPU training: dim 16, blocks [1,2,2,2], heads [1,2,4,8], 1 refinement block; "
                "DAC width 24, GIV 32, weight boxes K = 5,4,5,5,5",
                dim=16, num_blocks=(1, 2, 2, 2), heads=(1, 2, 4, 8), num_refinement_blocks=1)
register_config("res_hair_medium", "res_hair",
                "Res-HAIR for CPU training with more capacity: dim 24, blocks [1,2,2,2], heads [1,2,4,8], "
                "1 refinement block; DAC width 36, GIV 48, weight boxes K = 5,4,5,5,5",
                dim=24, num_blocks=(1, 2, 2, 2), heads=(1, 2, 4, 8), num_refinement_blocks=1)
register_config("res_hair_tiny", "res_hair",
                "Res-HAIR for unit tests: dim 8, blocks [1,1,1,1], heads [1,2,2,4], 1 refinement block",
                dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4), num_refinement_blocks=1)
