"""Mixed precision for the training step: the AMP level applied to a network, and the loss scaler.

fp16 gradients underflow without a loss scale and can overflow with one.  :class:`LossScaler` multiplies
the loss by ``scale`` before differentiation, divides the gradients back, checks them for inf/nan and
tells the step to skip the update of an overflowing step (the weights, AdamW moments and EMA stay
untouched).  With ``dynamic=True`` the scale is halved on every overflow and doubled after ``window``
clean steps (the policy of ``torch.cuda.amp.GradScaler`` and MindSpore's ``DynamicLossScaler``).
All of it runs inside the compiled step, so it is the same graph on CPU, GPU and Ascend.
"""
from __future__ import annotations

from typing import Union

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

AMP_LEVELS = ("O0", "O1", "O2", "O3")

_unscale_fn = ops.MultitypeFuncGraph("unscale")
_sum_fn = ops.MultitypeFuncGraph("sum")


@_sum_fn.register("Tensor")
def _sum(grad):
    return grad.sum()


@_unscale_fn.register("Tensor", "Tensor")
def _unscale(inv_scale, grad):
    return ops.cast(grad, ms.float32) * inv_scale


def apply_amp(net: nn.Cell, level: str) -> nn.Cell:
    """``mindspore.amp.auto_mixed_precision(net, level)``; returns the network to call (O2/O3 wrap it so that
    its output is cast back to float32).  The wrapper holds the same Parameter objects under the same names.
    Cells that declare ``keep_float32 = True`` (e.g. running sums that overflow float16) stay in float32."""
    if level not in AMP_LEVELS:
        raise ValueError(f"unknown AMP level '{level}': choose one of {', '.join(AMP_LEVELS)}")
    if level == "O0":
        return net
    amp_net = ms.amp.auto_mixed_precision(net, level)
    for _, cell in net.cells_and_names():
        if getattr(cell, "keep_float32", False):
            cell.to_float(ms.float32)
    return amp_net


class LossScaler(nn.Cell):
    """Static or dynamic loss scale with overflow detection; its state is three non-trainable Parameters
    (``loss_scale.value``, ``loss_scale.good_steps``, ``loss_scale.overflows``)."""

    def __init__(self, scale: float = 1024.0, dynamic: bool = False, factor: float = 2.0, window: int = 1000,
                 min_scale: float = 1.0):
        super().__init__(auto_prefix=False)
        if scale <= 0 or factor <= 1 or window < 1:
            raise ValueError(f"loss scale needs scale > 0, factor > 1, window >= 1; got {scale}, {factor}, {window}")
        self.dynamic = bool(dynamic)
        self.value = Parameter(Tensor(float(scale), ms.float32), name="loss_scale.value", requires_grad=False)
        self.good_steps = Parameter(Tensor(0, ms.int32), name="loss_scale.good_steps", requires_grad=False)
        self.overflows = Parameter(Tensor(0, ms.int32), name="loss_scale.overflows", requires_grad=False)
        self.factor = Tensor(float(factor), ms.float32)
        self.window = Tensor(int(window), ms.int32)
        self.min_scale = Tensor(float(min_scale), ms.float32)
        self.hyper_map = ops.HyperMap()

    def scale_loss(self, loss: Tensor) -> Tensor:
        return loss * self.value

    def unscale(self, grads):
        return self.hyper_map(ops.partial(_unscale_fn, 1.0 / self.value), grads)

    def all_finite(self, grads) -> Tensor:
        """True when no gradient holds inf/nan: inf and nan survive the sum of all elements.  Written out
        because ``mindspore.amp.all_finite`` picks different primitives per device target while the graph
        is built (FloatStatus on GPU, NPU status registers on Ascend), which a CPU audit cannot see."""
        return ops.isfinite(ops.addn(self.hyper_map(_sum_fn, grads)))

    def update(self, grads) -> Tensor:
        """True when every gradient is finite; counts overflows and adjusts a dynamic scale."""
        finite = self.all_finite(grads)
        zero = ops.zeros_like(self.good_steps)
        one = ops.ones_like(self.good_steps)
        overflows = ops.select(finite, self.overflows, self.overflows + one)
        finite = ops.depend(finite, ops.assign(self.overflows, overflows))
        if self.dynamic:
            good = ops.select(finite, self.good_steps + one, zero)
            grow = good >= self.window
            scale = ops.select(finite, ops.select(grow, self.value * self.factor, self.value),
                               ops.maximum(self.value / self.factor, self.min_scale))
            finite = ops.depend(finite, ops.assign(self.value, scale))
            finite = ops.depend(finite, ops.assign(self.good_steps, ops.select(grow, zero, good)))
        return finite


def build_loss_scaler(spec: Union[float, str, None]) -> LossScaler:
    """``train.loss_scale``: a number (static scale) or ``dynamic`` (start at 2**16, halve on overflow,
    double after 1000 clean steps)."""
    if isinstance(spec, str) and spec.strip().lower() == "dynamic":
        return LossScaler(2.0 ** 16, dynamic=True)
    return LossScaler(float(spec or 1024.0))
