"""Building blocks with PyTorch semantics (MindSpore defaults differ; see docs/porting.md).

Use these instead of bare ``nn.Conv2d``/``nn.LayerNorm``/``nn.GELU`` so every model gets
explicit padding, bias and epsilon that match the official PyTorch code.
"""
from __future__ import annotations

from typing import Optional, Tuple

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..kernels import Conv3x3, Conv3x3Bias, Conv3x3S2Bias, ConvTranspose3x3S2 as ConvTranspose3x3S2Op, Depthwise3x3
from ..precision import cast_like


def conv2d(in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, padding: int | None = None,
           bias: bool = True, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """``torch.nn.Conv2d`` equivalent: symmetric zero padding (default k//2) and a bias by default.

    A depthwise 3x3 conv (stride 1, padding 1) becomes :class:`DepthwiseConv3x3`, and a dense one with
    the channel counts of :func:`dense3x3_faster` :class:`DenseConv3x3`: same parameters, faster on CPU.
    """
    if padding is None:
        padding = dilation * (kernel_size // 2)
    if (in_ch == out_ch == groups and kernel_size == 3 and stride == 1 and padding == 1 and dilation == 1):
        return DepthwiseConv3x3(in_ch, bias)
    if groups == 1 and kernel_size == 3 and stride == 1 and padding == 1 and dilation == 1 \
            and dense3x3_faster(in_ch, out_ch):
        return DenseConv3x3(in_ch, out_ch, bias)
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, pad_mode="pad", padding=padding,
                     has_bias=bias, group=groups, dilation=dilation)


def conv2d_relu(in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1,
                parts: Optional[Tuple[int, ...]] = None) -> nn.Conv2d:
    """``relu(torch.nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2))`` as one cell with
    the parameters (and checkpoint names) of the conv alone: the dense 3x3 kernel applies bias and ReLU in its
    output pass, where a separate BiasAdd and ReLU would each read and write the whole output once more.
    ``parts``: the cell takes a tuple of tensors with these channel counts (summing to ``in_ch``) as the
    concatenation of its input, which the kernel never builds."""
    if parts is not None and sum(parts) != in_ch:
        raise ValueError(f"conv2d_relu: parts {tuple(parts)} do not add up to {in_ch} input channels")
    if kernel_size == 3 and stride == 1 and dense3x3_faster(in_ch, out_ch):
        return DenseConv3x3(in_ch, out_ch, relu=True, parts=parts)
    if kernel_size == 3 and stride == 2 and parts is None and dense3x3_faster(in_ch, out_ch):
        return StridedConv3x3(in_ch, out_ch, relu=True)
    return _ReLUConv2d(in_ch, out_ch, kernel_size, stride=stride, pad_mode="pad", padding=kernel_size // 2,
                       has_bias=True)


class _ReLUConv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by a ReLU (same parameters; a tuple input is concatenated along channels):
    :func:`conv2d_relu` where no kernel applies."""

    def construct(self, x) -> ms.Tensor:
        if isinstance(x, tuple):
            x = ops.cat(x, 1)
        return ops.relu(super().construct(x))


class KernelConv3x3(nn.Conv2d):
    """A 3x3 ``nn.Conv2d`` (stride 1, padding 1; same parameters, same checkpoints) whose convolution is a
    kernel cell of :mod:`ms_osr.kernels` (``op``: the C++ kernel on CPU, MindSpore's convolution otherwise)."""

    def __init__(self, in_ch: int, out_ch: int, bias: bool, groups: int, op: nn.Cell):
        super().__init__(in_ch, out_ch, 3, pad_mode="pad", padding=1, has_bias=bias, group=groups)
        self.op = op

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        y = self.op(x, self.weight)
        if self.has_bias:
            y = ops.bias_add(y, cast_like(self.bias, y))
        return y


class DepthwiseConv3x3(KernelConv3x3):
    """``torch.nn.Conv2d(c, c, 3, padding=1, groups=c)``: the parameters (``weight`` (c, 1, 3, 3),
    ``bias``) of ``nn.Conv2d``, computed by :class:`ms_osr.kernels.Depthwise3x3` (a C++ kernel on CPU,
    ~5x faster forward and ~8x faster backward than MindSpore's grouped conv there)."""

    def __init__(self, channels: int, bias: bool = True):
        super().__init__(channels, channels, bias, channels, Depthwise3x3())


# Where the C++ dense 3x3 kernel was measured faster than MindSpore's Conv2D (forward and forward +
# both gradients, one process, interleaved calls; benchmarks/results.md, section 1): every shape of
# GridDehazeNet and the OSR network, 3-112 input and 3-64 output channels at 32-256 px.  Above 128
# channels it was not measured, so MindSpore's convolution stays.
DENSE3X3_MAX_CHANNELS = 128


def dense3x3_faster(in_ch: int, out_ch: int) -> bool:
    """True for the channel counts where :class:`DenseConv3x3` replaces ``nn.Conv2d``."""
    return max(in_ch, out_ch) <= DENSE3X3_MAX_CHANNELS


class DenseConv3x3(KernelConv3x3):
    """``torch.nn.Conv2d(cin, cout, 3, padding=1)``: the parameters (``weight`` (cout, cin, 3, 3),
    ``bias``) of ``nn.Conv2d``, computed by :class:`ms_osr.kernels.Conv3x3` (a C++ kernel on CPU for
    float32, MindSpore's convolution otherwise); with a bias by :class:`ms_osr.kernels.Conv3x3Bias`, which adds
    it (and with ``relu`` applies a ReLU) in the kernel's output pass."""

    def __init__(self, in_ch: int, out_ch: int, bias: bool = True, relu: bool = False,
                 parts: Optional[Tuple[int, ...]] = None):
        if parts is not None and not bias:
            raise ValueError("DenseConv3x3: input parts need the fused op, which has a bias")
        super().__init__(in_ch, out_ch, bias, 1, Conv3x3Bias(relu, parts) if bias else Conv3x3())
        self.relu = relu

    def construct(self, x) -> ms.Tensor:
        if self.has_bias:
            return self.op(x, self.weight, self.bias)
        y = self.op(x, self.weight)
        return ops.relu(y) if self.relu else y


class StridedConv3x3(nn.Conv2d):
    """``torch.nn.Conv2d(cin, cout, 3, stride=2, padding=1)``, then a ReLU when ``relu``: the parameters of
    ``nn.Conv2d``, computed by :class:`ms_osr.kernels.Conv3x3S2Bias` (a C++ kernel on CPU for float32, ~3x faster
    than MindSpore's strided Conv2D at GridDehazeNet's sizes; MindSpore's convolution otherwise)."""

    def __init__(self, in_ch: int, out_ch: int, relu: bool = False):
        super().__init__(in_ch, out_ch, 3, stride=2, pad_mode="pad", padding=1, has_bias=True)
        self.op = Conv3x3S2Bias(relu)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.op(x, self.weight, self.bias)


class ConvTranspose3x3S2(nn.Conv2dTranspose):
    """``torch.nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1)`` called with ``output_size`` twice the
    input's (``output_padding=1``), then a ReLU when ``relu``: (N, in_ch, H, W) -> (N, out_ch, 2H, 2W).  The
    parameters (``weight`` (in_ch, out_ch, 3, 3), ``bias``) of ``nn.Conv2dTranspose``; computed by
    :class:`ms_osr.kernels.ConvTranspose3x3S2` (a C++ kernel on CPU, ~4x faster forward there)."""

    def __init__(self, in_ch: int, out_ch: int, relu: bool = False):
        super().__init__(in_ch, out_ch, 3, stride=2, pad_mode="pad", padding=0, has_bias=True)
        self.op = ConvTranspose3x3S2Op(in_ch, relu)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.op(x, self.weight, self.bias)


class AffineSkip(nn.Cell):
    """A per-pixel colour transform of the image, ``out = M(p) @ rgb(p) + b(p)``, whose 3x3 matrix and offset
    are predicted by a 3x3 conv from coarse features (e.g. a U-Net's 1/8-resolution latent) and upsampled
    bilinearly to the image: a smooth field of affine maps.

    Why: haze is ``I = J t + A (1 - t)`` with a transmission ``t`` and airlight ``A`` that vary slowly, so its
    inverse ``J = I / t - A (1 - t) / t`` is exactly such a field; a residual network has to synthesise that
    large, image-wide correction pixel by pixel.  Used as the input of a global residual (``output + skip``)
    it starts as the identity (zero weights, identity bias): a checkpoint without it restores the same
    image, so its parameters may be absent from one (``identity_at_init``, :mod:`ms_osr.checkpoint`).

    ``per_image=True`` averages the predicted coefficients over the feature map instead: one colour map per
    image, which cannot move colour across an edge (a field at 1/8 resolution, upsampled, does near strong edges)."""

    identity_at_init = True

    def __init__(self, channels: int, per_image: bool = False):
        super().__init__()
        self.per_image = per_image
        self.coef = nn.Conv2d(channels, 12, 3, pad_mode="pad", padding=1, has_bias=True, weight_init="zeros",
                              bias_init=ms.Tensor([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], ms.float32))

    def construct(self, feat: ms.Tensor, img: ms.Tensor) -> ms.Tensor:
        n, h, w = img.shape[0], img.shape[2], img.shape[3]
        coef = self.coef(feat)
        if self.per_image:
            coef = coef.mean(axis=(2, 3), keep_dims=True)
            m = coef[:, :9].reshape(n, 3, 3, 1, 1)
        else:
            coef = ops.interpolate(coef, size=(h, w), mode="bilinear", align_corners=False)
            m = coef[:, :9].reshape(n, 3, 3, h, w)
        return (m * img.reshape(n, 1, 3, h, w)).sum(axis=2) + coef[:, 9:]


def zero_init(conv: nn.Cell) -> nn.Cell:
    """Zero weight and bias: the branch ending in ``conv`` starts as an exact no-op."""
    conv.weight.set_data(ops.zeros(conv.weight.shape, conv.weight.dtype))
    if conv.bias is not None:
        conv.bias.set_data(ops.zeros(conv.bias.shape, conv.bias.dtype))
    return conv


def pooled_head(channels: int, outputs: int, start: float = 0.0) -> Tuple[nn.Cell, nn.Cell]:
    """``(fc1, fc2)`` for :func:`pooled_logit` on ``channels`` features: 1x1 convs ``2C -> C`` and ``C ->
    outputs``, the second with zero weights and every bias at ``start``, so the head starts as that constant."""
    fc1 = conv2d(2 * channels, channels, 1, padding=0)
    fc2 = zero_init(conv2d(channels, outputs, 1, padding=0))
    fc2.bias.set_data(ops.full(fc2.bias.shape, start, dtype=fc2.bias.dtype))
    return fc1, fc2


def pooled_logit(feat: ms.Tensor, fc1: nn.Cell, fc2: nn.Cell) -> ms.Tensor:
    """One logit per image, (B, 1, 1, 1): ``fc2(ReLU(fc1([mean, max] of feat over the image))``, both 1x1
    convs.  Mean and max: a degradation such as rain is sparse, so its strongest response counts."""
    pooled = ops.cat((feat.mean(axis=(2, 3), keep_dims=True), ops.amax(feat, (2, 3), True)), 1)
    return fc2(ops.relu(fc1(pooled)))


def layer_norm(dim: int, eps: float = 1e-5) -> nn.LayerNorm:
    """``torch.nn.LayerNorm(dim)`` over the last axis (MindSpore's default epsilon is 1e-7)."""
    return nn.LayerNorm((dim,), epsilon=eps)


def gelu() -> nn.GELU:
    """Exact (erf) GELU as in PyTorch; MindSpore's default is the tanh approximation."""
    return nn.GELU(approximate=False)


def pad_to_multiple(x: ms.Tensor, multiple: int, mode: str = "reflect"):
    """Pad H and W at the bottom/right up to a multiple; returns the padded tensor and (h, w)."""
    h, w = x.shape[-2], x.shape[-1]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    if pad_h or pad_w:
        x = ops.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, h, w


# ----------------------------------------------------------------------------------------------
# Faster CPU formulations (MindSpore 2.10, GRAPH_MODE; numbers from benchmarks/results.md).
# Measured on (1, 510, 256, 256) / (1, 96, 256, 256) float32, 2 threads:
#   x[:, :255] and x[:, 255:] (StridedSlice)          ~56 ms   -> split_channels: ~39 ms
#   x.reshape(1, 2, 255, H*W)[:, 0] (5-D StridedSlice) ~1750 ms -> split_channels on the 4-D tensor
#   x.mean(axis=1) (ReduceMean over NCHW channels)     ~44 ms   -> channel_mean (1x1 conv): ~4 ms
#   Restormer-style channel LayerNorm core             ~141 ms  -> channel_normalize: ~65 ms
#   broadcast_to((B,1,H,W) -> (B,C,H,W)) backward     ReduceSum over channels -> channel_broadcast (GEMM)
# In Restormer at 128x128 split_channels and channel_normalize cut a forward from ~9.5 s to ~5.8 s (same
# outputs to ~1e-6); channel_broadcast makes a training step ~6% faster.
# ----------------------------------------------------------------------------------------------
def split_channels(x: ms.Tensor, sections) -> tuple:
    """Split a (B, C, ...) tensor along channels: ``sections`` is a part size or a list of sizes.

    Same values as ``x[:, a:b]`` slices, via one ``Split`` kernel.  Never index a reshaped view such
    as ``qkv.reshape(b, 3, ...)[:, 0]``: on CPU that StridedSlice is ~40x slower; split the 4-D
    tensor first and reshape the parts.
    """
    return ops.split(x, sections, axis=1)


def _take(x: ms.Tensor, axis: int, start: int, length: int) -> ms.Tensor:
    """``x`` narrowed to ``start:start + length`` along ``axis`` (compile-time ints) with one Split."""
    size = x.shape[axis]
    if start == 0 and length == size:
        return x
    sections = [n for n in (start, length, size - start - length) if n > 0]
    return ops.split(x, sections, axis=axis)[1 if start > 0 else 0]


def crop(x: ms.Tensor, top: int, left: int, height: int, width: int) -> ms.Tensor:
    """``x[:, :, top:top + height, left:left + width]`` of an NCHW tensor.

    Via ``Split`` kernels: the CPU StridedSlice of a spatial window is ~6x slower (GridDehazeNet's
    up-sampling crop: 84 ms -> 14 ms at 256x256 with 32 channels, transposed conv included).
    """
    if ops.is_sequence_value_unknown(x.shape):  # dynamic shape (set_inputs with None): sizes unknown here
        return x[:, :, top:top + height, left:left + width]
    return _take(_take(x, 2, top, height), 3, left, width)


def channel_mean(x: ms.Tensor) -> ms.Tensor:
    """Mean over axis 1 of an NCHW tensor, keepdims: (B, C, H, W) -> (B, 1, H, W).

    A 1x1 convolution with constant weights 1/C (oneDNN GEMM) instead of ReduceMean, whose CPU
    kernel reduces over the strided channel axis ~10x slower.  Differentiable in ``x``.
    """
    c = x.shape[1]
    # sum with exact unit weights, then scale the 1-channel result: weights of 1/C would round each
    # term and cost ~10x the error of a plain sum
    return ops.conv2d(x, ops.ones((1, c, 1, 1), x.dtype)) * (1.0 / c)


def channel_broadcast(m: ms.Tensor, channels: int) -> ms.Tensor:
    """Repeat a (B, 1, H, W) tensor over ``channels``: (B, C, H, W).

    A 1x1 convolution with unit weights: as fast as ``broadcast_to`` forward, and its backward is a GEMM
    instead of the CPU ReduceSum over the strided channel axis (LayerNorm forward+backward ~40% faster).
    """
    return ops.conv2d(m, ops.ones((channels, 1, 1, 1), m.dtype))


def channel_normalize(x: ms.Tensor, eps: float = 1e-5, subtract_mean: bool = True) -> ms.Tensor:
    """Normalise each pixel over channels (LayerNorm over C of an NCHW tensor, no affine).

    ``(x - mean) / sqrt(var + eps)``, or ``x / sqrt(var + eps)`` with ``subtract_mean=False`` (Restormer's
    BiasFree LayerNorm); ``var`` is the population variance around the mean in both cases.
    """
    c = x.shape[1]
    xc = x - channel_broadcast(channel_mean(x), c)
    # the GEMM sums the C terms sequentially in float32; a second pass on the (small) residuals removes
    # that error, which LayerNorm would otherwise amplify by 1/std for inputs with a large offset
    xc = xc - channel_broadcast(channel_mean(xc), c)
    inv = ops.rsqrt(channel_mean(xc * xc) + eps)
    return (xc if subtract_mean else x) * channel_broadcast(inv, c)


def freeze(net: nn.Cell) -> nn.Cell:
    """Exclude every parameter of ``net`` from optimisation (trainable_params() drops them); gradients
    still flow through it to what comes before."""
    for p in net.get_parameters():
        p.requires_grad = False
    return net
