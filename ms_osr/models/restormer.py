"""Restormer (Zamir et al., CVPR 2022) in MindSpore, GRAPH_MODE-compatible.

Attribute names follow the official PyTorch module (swz30/Restormer, ``restormer_arch.py``)
so that ``ms_osr.convert`` maps a BasicSR ``{'params': ...}`` checkpoint with no overrides:
``patch_embed.proj``, ``encoder_level1.N.{norm1.body,attn,norm2.body,ffn}``, ``down1_2.body.0``,
``latent``, ``up4_3.body.0``, ``reduce_chan_level3``, ..., ``refinement``, ``output``.

The building blocks (LayerNorm, MDTA, GDFN, Downsample/Upsample, input padding) are reused by
``ms_osr.models.hair``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter
from mindspore.common.initializer import initializer

from .. import kernels
from ..precision import cast_like, to_float32
from ..registry import register_config, register_model
from .layers import channel_normalize, conv2d, crop, split_channels

LN_EPS = 1e-5  # Restormer's LayerNorm epsilon (population variance)


# ----------------------------------------------------------------------------------------------
# Input padding: every model pads to its size multiple inside construct and crops back.
# ----------------------------------------------------------------------------------------------
def _pad_amount(size: int, multiple: int, min_size: int) -> int:
    target = max(int(math.ceil(size / multiple)) * multiple, min_size)
    return target - size


def pad_input(x: ms.Tensor, multiple: int, min_size: int = 1) -> ms.Tensor:
    """Reflect-pad H, W at the bottom/right to a multiple of ``multiple`` (and at least ``min_size``).

    Reflection needs the pad to be smaller than the side; images too small for that are
    reflected as far as possible and the rest is filled by edge replication.  Shapes are
    compile-time constants in GRAPH_MODE, so all branches below are resolved while compiling.
    Under dynamic shapes (``set_inputs`` with ``None`` sides) the sizes are unknown while compiling:
    the caller pads instead (``ms_osr.inference.Restorer`` pads to ``size_multiple`` and ``min_size``).
    """
    if ops.is_sequence_value_unknown(x.shape):
        return x
    h, w = x.shape[-2], x.shape[-1]
    ph = _pad_amount(h, multiple, min_size)
    pw = _pad_amount(w, multiple, min_size)
    rh = min(ph, h - 1)
    rw = min(pw, w - 1)
    if rh > 0 or rw > 0:
        x = ops.pad(x, (0, rw, 0, rh), mode="reflect")
    if ph > rh or pw > rw:
        x = ops.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
    return x


# ----------------------------------------------------------------------------------------------
# LayerNorm over channels of an NCHW tensor (Restormer's to_3d -> LN -> to_4d, without transposes)
#
# Memory note (MindSpore 2.10, CPU, GRAPH_MODE): binary ops with implicit broadcasting, GeLU and
# Transpose keep several activation-sized buffers alive for the whole graph (~50 MB per
# LayerNorm at 128x128, ~20 GB for Restormer at 256x256).  Explicit ``broadcast_to`` and conv /
# BiasAdd kernels are released normally, so the normalisation below broadcasts explicitly and
# applies the per-channel affine as a 1x1 depthwise conv; attention rescales the small CxC
# matrix instead of normalising q and k, and uses transpose_b matmuls.
# ----------------------------------------------------------------------------------------------
def _channel_norm(x: ms.Tensor, centre_output: bool) -> ms.Tensor:
    """(x - mean) / sqrt(var + eps) over axis 1 (or x / sqrt(var + eps)), population variance."""
    return channel_normalize(x, LN_EPS, centre_output)


def _channel_affine(x: ms.Tensor, weight: ms.Tensor, bias: Optional[ms.Tensor]) -> ms.Tensor:
    """x * weight[c] (+ bias[c]) as a grouped 1x1 conv (no implicit broadcasting)."""
    c = x.shape[1]
    return ops.conv2d(x, weight.reshape(c, 1, 1, 1), bias, groups=c)


class BiasFreeLayerNorm(nn.Cell):
    """``x / sqrt(var + eps) * weight`` (not mean-centred), population variance."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = Parameter(initializer("ones", (dim,), ms.float32), name="weight")

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return cast_like(_channel_affine(_channel_norm(to_float32(x), False), self.weight, None), x)


class WithBiasLayerNorm(nn.Cell):
    """``(x - mean) / sqrt(var + eps) * weight + bias``, population variance."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = Parameter(initializer("ones", (dim,), ms.float32), name="weight")
        self.bias = Parameter(initializer("zeros", (dim,), ms.float32), name="bias")

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        # float32 under AMP too (as MindSpore keeps nn.LayerNorm): the variance of float16 overflows
        return cast_like(_channel_affine(_channel_norm(to_float32(x), True), self.weight, self.bias), x)


class LayerNorm(nn.Cell):
    """Wrapper with a ``body`` attribute, as in the official code (``norm1.body.weight``)."""

    def __init__(self, dim: int, layer_norm_type: str = "WithBias"):
        super().__init__()
        if layer_norm_type == "BiasFree":
            self.body = BiasFreeLayerNorm(dim)
        elif layer_norm_type == "WithBias":
            self.body = WithBiasLayerNorm(dim)
        else:
            raise ValueError(f"LayerNorm_type must be 'WithBias' or 'BiasFree', got {layer_norm_type!r}")

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.body(x)


# ----------------------------------------------------------------------------------------------
# MDTA and GDFN cores, shared with the per-image (hypernetwork) blocks of Res-HAIR
# ----------------------------------------------------------------------------------------------
_matmul_nt = ops.BatchMatMul(transpose_b=True)


def _inv_norm(x: ms.Tensor) -> ms.Tensor:
    """1 / max(||x||, 1e-12) over the last axis, as torch.nn.functional.normalize divides."""
    # the row sums as a GEMV: the CPU ReduceSum kernel is ~3.5x slower over 16k-long rows
    sq_norm = ops.matmul(x * x, ops.ones((x.shape[-1], 1), x.dtype))
    return 1.0 / ops.maximum(ops.sqrt(sq_norm), 1e-12)


def channel_attention(qkv: ms.Tensor, num_heads: int, temperature: ms.Tensor) -> ms.Tensor:
    """Transposed (channel) self-attention of MDTA on a (B, 3C, H, W) tensor -> (B, C, H, W).

    softmax(normalize(q) @ normalize(k)^T * t) is computed as softmax((q @ k^T) * r_q * r_k^T * t)
    with r = 1/||.||: the rescaling happens on the small (C/h x C/h) matrix.
    """
    b, c3, h, w = qkv.shape
    c = c3 // 3
    # split the 4-D tensor first: indexing a reshaped view is a very slow StridedSlice on CPU
    q, k, v = split_channels(qkv, c)
    shape = (b, num_heads, c // num_heads, h * w)
    # q.k^T and the norms sum over all H*W pixels before the rescaling: float32 under AMP (float16 overflows)
    q, k, v = to_float32(q.reshape(shape)), to_float32(k.reshape(shape)), v.reshape(shape)
    scale = _matmul_nt(_inv_norm(q), _inv_norm(k))  # (b, heads, c/h, c/h) outer product
    attn = ops.softmax(_matmul_nt(q, k) * scale * temperature, axis=-1)
    return ops.matmul(cast_like(attn, v), v).reshape(b, c, h, w)


def gelu_erf(x: ms.Tensor) -> ms.Tensor:
    """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)); written out because the fused CPU GeLU kernel holds
    extra activation-sized buffers in GRAPH_MODE and is slower."""
    return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


def gated_gelu(u: ms.Tensor) -> ms.Tensor:
    """GDFN gate: split channels in two halves, exact GELU(first) * second."""
    a, g = split_channels(u, u.shape[1] // 2)
    return gelu_erf(a) * g


class GatedGELU(kernels.KernelCell):
    """:func:`gated_gelu` as a cell: on CPU one fused C++ pass each way (``ms_osr.kernels``)."""

    def __init__(self):
        super().__init__(kernels.gated_gelu_op)

    def construct(self, u: ms.Tensor) -> ms.Tensor:
        if self.use_kernel and u.dtype == ms.float32:
            return self.kernel(u)
        return gated_gelu(u)


class Attention(nn.Cell):
    """MDTA: 1x1 conv -> depthwise 3x3 -> channel attention per head -> 1x1 projection."""

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.temperature = Parameter(initializer("ones", (num_heads, 1, 1), ms.float32), name="temperature")
        self.qkv = conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = conv2d(dim * 3, dim * 3, 3, bias=bias, groups=dim * 3)
        self.project_out = conv2d(dim, dim, 1, bias=bias)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        qkv = self.qkv_dwconv(self.qkv(x))
        return self.project_out(channel_attention(qkv, self.num_heads, self.temperature))


class FeedForward(nn.Cell):
    """GDFN: 1x1 conv to 2*hidden -> depthwise 3x3 -> GELU gate -> 1x1 conv back."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = conv2d(hidden * 2, hidden * 2, 3, bias=bias, groups=hidden * 2)
        self.project_out = conv2d(hidden, dim, 1, bias=bias)
        self.gate = GatedGELU()

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.project_out(self.gate(self.dwconv(self.project_in(x))))


class TransformerBlock(nn.Cell):
    recompute_unit = True  # see ms_osr.training.recompute

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str):
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def transformer_level(dim: int, heads: int, blocks: int, ffn_expansion_factor: float, bias: bool,
                      LayerNorm_type: str) -> nn.SequentialCell:
    """``nn.Sequential`` of TransformerBlocks (names ``level.0.*``, ``level.1.*``, ...)."""
    return nn.SequentialCell([TransformerBlock(dim, heads, ffn_expansion_factor, bias, LayerNorm_type)
                              for _ in range(blocks)])


class OverlapPatchEmbed(nn.Cell):
    def __init__(self, in_c: int = 3, embed_dim: int = 48, bias: bool = False):
        super().__init__()
        self.proj = conv2d(in_c, embed_dim, 3, bias=bias)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.proj(x)


class Downsample(nn.Cell):
    """conv3x3 C -> C/2 then PixelUnshuffle(2): (C, H, W) -> (2C, H/2, W/2)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.SequentialCell([conv2d(n_feat, n_feat // 2, 3, bias=False), nn.PixelUnshuffle(2)])

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.body(x)


class Upsample(nn.Cell):
    """conv3x3 C -> 2C then PixelShuffle(2): (C, H, W) -> (C/2, 2H, 2W)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.SequentialCell([conv2d(n_feat, n_feat * 2, 3, bias=False), nn.PixelShuffle(2)])

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.body(x)


# ----------------------------------------------------------------------------------------------
class RestormerUNet(nn.Cell):
    """The U-Net scaffold Restormer and Res-HAIR share: a 3-level Transformer encoder, a decoder whose levels
    may take a conditioning vector (Res-HAIR's GIV), refinement and the global residual.  Subclasses build
    the latent and decoder cells under the names used here (the official parameter names)."""

    size_multiple = 8

    @staticmethod
    def check_levels(num_blocks: Sequence[int], heads: Sequence[int], inp_channels: int, out_channels: int) -> None:
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError("num_blocks and heads need 4 entries (one per level)")
        if inp_channels != out_channels:
            raise ValueError("the global residual needs inp_channels == out_channels")

    def build_encoder(self, inp_channels: int, dim: int, num_blocks: Sequence[int], heads: Sequence[int],
                      level: dict) -> None:
        """Patch embedding, encoder levels 1-3 and the downsamplings (created in the official order, so a
        seeded initialisation draws the same values)."""
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = transformer_level(dim, heads[0], num_blocks[0], **level)
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = transformer_level(dim * 2, heads[1], num_blocks[1], **level)
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = transformer_level(dim * 4, heads[2], num_blocks[2], **level)
        self.down3_4 = Downsample(dim * 4)

    def encode(self, x: ms.Tensor):
        """(enc1, enc2, enc3, bottleneck input of the latent level)."""
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        return enc1, enc2, enc3, self.down3_4(enc3)

    def decode(self, lat: ms.Tensor, enc1: ms.Tensor, enc2: ms.Tensor, enc3: ms.Tensor, x: ms.Tensor,
               *cond) -> ms.Tensor:
        """Decoder levels 3-1 with skip connections, refinement, output conv + the input; ``cond`` goes to
        every decoder level (nothing for Restormer, the GIV for Res-HAIR)."""
        d3 = self.reduce_chan_level3(ops.cat((self.up4_3(lat), enc3), axis=1))
        d3 = self.decoder_level3(d3, *cond)
        d2 = self.reduce_chan_level2(ops.cat((self.up3_2(d3), enc2), axis=1))
        d2 = self.decoder_level2(d2, *cond)
        d1 = self.decoder_level1(ops.cat((self.up2_1(d2), enc1), axis=1), *cond)
        d1 = self.refinement(d1, *cond)
        return self.output(d1) + x


class Restormer(RestormerUNet):
    """Restormer U-Net: 4 levels of TransformerBlocks, refinement, global residual (no dual-pixel)."""

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias"):
        super().__init__()
        self.check_levels(num_blocks, heads, inp_channels, out_channels)
        level = dict(ffn_expansion_factor=ffn_expansion_factor, bias=bias, LayerNorm_type=LayerNorm_type)
        self.build_encoder(inp_channels, dim, num_blocks, heads, level)
        self.latent = transformer_level(dim * 8, heads[3], num_blocks[3], **level)
        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = conv2d(dim * 8, dim * 4, 1, bias=bias)
        self.decoder_level3 = transformer_level(dim * 4, heads[2], num_blocks[2], **level)
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = conv2d(dim * 4, dim * 2, 1, bias=bias)
        self.decoder_level2 = transformer_level(dim * 2, heads[1], num_blocks[1], **level)
        self.up2_1 = Upsample(dim * 2)  # level 1 keeps the concatenated 2*dim channels
        self.decoder_level1 = transformer_level(dim * 2, heads[0], num_blocks[0], **level)
        self.refinement = transformer_level(dim * 2, heads[0], num_refinement_blocks, **level)
        self.output = conv2d(dim * 2, out_channels, 3, bias=bias)

    def construct(self, inp_img: ms.Tensor) -> ms.Tensor:
        h, w = inp_img.shape[-2], inp_img.shape[-1]
        x = pad_input(inp_img, self.size_multiple)
        enc1, enc2, enc3, bottleneck = self.encode(x)
        return crop(self.decode(self.latent(bottleneck), enc1, enc2, enc3, x), 0, 0, h, w)


# ----------------------------------------------------------------------------------------------
@register_model
def restormer(**kwargs) -> Restormer:
    """Restormer with the official defaults (dim 48, blocks [4,6,6,8], 26.13 M parameters)."""
    return Restormer(**kwargs)


register_config("restormer_small", "restormer",
                "Restormer for CPU training: dim 16, blocks [1,2,2,2], heads [1,2,4,8], 1 refinement block",
                dim=16, num_blocks=(1, 2, 2, 2), heads=(1, 2, 4, 8), num_refinement_blocks=1)
register_config("restormer_small_wide", "restormer",
                "restormer_small widened to dim 22 (2.13 M parameters, 4% more than res_hair_small's 2.05 M): the "
                "capacity-matched static baseline of Res-HAIR (tools/hair_study.py)",
                dim=22, num_blocks=(1, 2, 2, 2), heads=(1, 2, 4, 8), num_refinement_blocks=1)
register_config("restormer_tiny", "restormer",
                "Restormer for unit tests: dim 8, blocks [1,1,1,1], heads [1,2,2,4], 1 refinement block",
                dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4), num_refinement_blocks=1)
