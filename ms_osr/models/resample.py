"""OpenAI CLIP's image preprocessing, in graph-compatible MindSpore ops.

``clip.load`` preprocesses with torchvision on PIL images: ``Resize(224, BICUBIC)`` (the short
side to 224, the long side ``int(224 * long / short)``), then ``CenterCrop(224)``.  PIL's bicubic
is not ``F.interpolate``'s: its kernel has a = -0.5 (not -0.75), it widens the kernel by the
downscaling factor (antialiasing) and, at the borders, it renormalises the weights that fall
inside the image instead of repeating edge pixels.  :func:`pil_bicubic_matrix` builds PIL's
weights as an (out, in) matrix, so a resize is two matrix products; the image sizes are
compile-time constants in GRAPH_MODE, so the matrices are too.
"""
from __future__ import annotations

import mindspore as ms
import mindspore.ops as ops
from mindspore import Tensor

PIL_CUBIC_A = -0.5  # PIL's bicubic_filter
PIL_CUBIC_SUPPORT = 2.0


def _pil_cubic(x: Tensor) -> Tensor:
    a = PIL_CUBIC_A
    x = ops.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return ops.where(x < 1.0, near, ops.where(x < PIL_CUBIC_SUPPORT, far, ops.zeros_like(x)))


def pil_bicubic_matrix(in_size: int, out_size: int) -> Tensor:
    """(out_size, in_size) weights of PIL's ``Image.resize(..., BICUBIC)`` along one axis.

    Output pixel i is centred at ``(i + 0.5) * scale`` in the input; the kernel is stretched by
    ``max(scale, 1)``; weights of input pixels outside the image are dropped and the rest renormalised
    (PIL's ``precompute_coeffs``; the kernel is zero outside its support, so all input pixels can
    be weighed at once).
    """
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    centre = (ops.arange(out_size, dtype=ms.float32) + 0.5) * scale
    pos = ops.arange(in_size, dtype=ms.float32) + 0.5
    weights = _pil_cubic((pos.reshape(1, in_size) - centre.reshape(out_size, 1)) / stretch)
    return weights / weights.sum(axis=1, keepdims=True)


def _round_half_even_half(n: int) -> int:
    """``int(round(n / 2))`` as Python (and torchvision's CenterCrop) computes it, in integer ops."""
    k = n // 2
    return k + 1 if n % 2 == 1 and k % 2 == 1 else k


def openai_resize_crop(x: Tensor, size: int) -> Tensor:
    """(B, C, H, W) -> (B, C, size, size): short side to ``size`` with PIL bicubic, centre crop."""
    h, w = x.shape[2], x.shape[3]
    if h <= w:
        nh, nw = size, int(size * w / h)
    else:
        nh, nw = int(size * h / w), size
    if (nh, nw) != (h, w):
        x = ops.matmul(ops.matmul(pil_bicubic_matrix(h, nh), x), pil_bicubic_matrix(w, nw).transpose(1, 0))
    top, left = _round_half_even_half(nh - size), _round_half_even_half(nw - size)
    return x[:, :, top:top + size, left:left + size]
