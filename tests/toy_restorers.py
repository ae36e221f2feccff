"""Tiny restorers for the inference/CLI tests (registered under ``toy_*`` names).

``test.py --import toy_restorers`` (with tests/ on PYTHONPATH) makes them available to
the command line as well.
"""
from __future__ import annotations

import ms_osr  # noqa: F401  (oneDNN cap before mindspore)

import mindspore.nn as nn  # noqa: E402
import mindspore.ops as ops  # noqa: E402

from ms_osr.models.layers import conv2d  # noqa: E402
from ms_osr.registry import SubModel, register_model  # noqa: E402


class ToyConvNet(nn.Cell):
    """Three 3x3 convolutions with a residual: receptive field 7x7, no global statistics."""

    size_multiple = 1

    def __init__(self, width: int = 16):
        super().__init__()
        self.head = conv2d(3, width, 3)
        self.body = conv2d(width, width, 3)
        self.tail = conv2d(width, 3, 3)
        self.act = nn.ReLU()

    def construct(self, x):
        return x + self.tail(self.act(self.body(self.act(self.head(x))))) * 0.1


class ToyUNet(nn.Cell):
    """Two stride-2 levels and NO internal padding: needs H, W multiples of 4."""

    size_multiple = 4

    def __init__(self, width: int = 8):
        super().__init__()
        self.head = conv2d(3, width, 3)
        self.down1 = conv2d(width, width, 3, stride=2)
        self.down2 = conv2d(width, width, 3, stride=2)
        self.up2 = nn.Conv2dTranspose(width, width, 2, stride=2, has_bias=True)
        self.up1 = nn.Conv2dTranspose(width, width, 2, stride=2, has_bias=True)
        self.tail = conv2d(width, 3, 3)
        self.act = nn.ReLU()

    def construct(self, x):
        f0 = self.act(self.head(x))
        f1 = self.act(self.down1(f0))
        f2 = self.act(self.down2(f1))
        u1 = self.act(self.up2(f2)) + f1
        u0 = self.act(self.up1(u1)) + f0
        return x + self.tail(u0) * 0.1


class ToyGlobal(nn.Cell):
    """Res-HAIR-like interface: a vector from the whole image modulates the per-pixel branch."""

    size_multiple = 1

    def __init__(self, width: int = 8):
        super().__init__()
        self.feat = conv2d(3, width, 3)
        self.body = conv2d(3, width, 3)
        self.tail = conv2d(width, 3, 3)
        self.act = nn.ReLU()

    def global_vector(self, x):
        return ops.mean(self.act(self.feat(x)), axis=(2, 3))

    def construct(self, x, giv=None):
        if giv is None:
            giv = self.global_vector(x)
        scale = ops.sigmoid(giv * 8.0).reshape(giv.shape[0], giv.shape[1], 1, 1)
        return x + self.tail(self.act(self.body(x)) * scale * 4.0) * 0.1


class ToyColumnConv(nn.Cell):
    """An operator attribute that depends on the image height (a conv kernel as tall as the image):
    compiles only with static shapes, like the aot Custom kernels in MindSpore 2.10."""

    size_multiple = 1

    def construct(self, x):
        column = ops.conv2d(x, ops.ones((3, 3, x.shape[2], 1), x.dtype)) / (3.0 * x.shape[2])
        return x * 0.5 + ops.broadcast_to(column, x.shape) * 0.5


class ToyComposite(nn.Cell):
    """A frozen sub-network whose weights come from a file (like PTG-RM's base) plus a trainable head."""

    size_multiple = 1

    def __init__(self, base: nn.Cell):
        super().__init__()
        self.base = base
        self.head = conv2d(3, 3, 1)

    def construct(self, x):
        return self.head(self.base(x))


@register_model(submodels=(SubModel("base", ckpt="base_ckpt", model="toy_convnet", model_kwargs={"width": 8}),))
def toy_composite(base: nn.Cell) -> ToyComposite:
    return ToyComposite(base)


@register_model
def toy_convnet(width: int = 16) -> ToyConvNet:
    return ToyConvNet(width)


@register_model
def toy_unet(width: int = 8) -> ToyUNet:
    return ToyUNet(width)


@register_model
def toy_global(width: int = 8) -> ToyGlobal:
    return ToyGlobal(width)


@register_model
def toy_column_conv() -> ToyColumnConv:
    return ToyColumnConv()
