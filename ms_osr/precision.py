"""dtype helpers for code that must run both in float32 and under AMP O2/O3 (float16 activations).

``auto_mixed_precision`` casts the inputs of every cell to float16, but a Parameter used directly by a
functional op (``ops.conv2d(x, self.weight)``, ``ops.bias_add``, ``x * self.temperature``) stays float32, and
MindSpore refuses mixed input dtypes (Conv2D, BiasAdd, MatMul) or silently promotes to float32.  The
helpers compare dtypes while the graph is compiled (dtypes are compile-time constants), so a float32
graph gets no Cast node at all and its results do not change.
"""
from __future__ import annotations

import mindspore as ms
from mindspore import ops


def cast_like(x: ms.Tensor, ref: ms.Tensor) -> ms.Tensor:
    """``x`` in ``ref``'s dtype (no op when they already agree)."""
    return x if x.dtype == ref.dtype else ops.cast(x, ref.dtype)


def to_float32(x: ms.Tensor) -> ms.Tensor:
    """``x`` as float32 (no op for float32): for reductions whose float16 sums overflow."""
    return x if x.dtype == ms.float32 else ops.cast(x, ms.float32)
