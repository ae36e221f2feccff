"""Building blocks with PyTorch semantics (MindSpore defaults differ; see docs/porting.md).

Use these instead of bare ``nn.Conv2d``/``nn.LayerNorm``/``nn.GELU`` so every model gets
explicit padding, bias and epsilon that match the official PyTorch code.
"""
from __future__ import annotations

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops


def conv2d(in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, padding: int | None = None,
           bias: bool = True, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """``torch.nn.Conv2d`` equivalent: symmetric zero padding (default k//2) and a bias by default."""
    if padding is None:
        padding = dilation * (kernel_size // 2)
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, pad_mode="pad", padding=padding,
                     has_bias=bias, group=groups, dilation=dilation)


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
