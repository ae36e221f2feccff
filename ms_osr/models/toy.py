"""A tiny residual CNN for fast tests of the training loop (not a paper model)."""
from __future__ import annotations

import mindspore.nn as nn

from ..registry import register_model
from .layers import conv2d


class TinyRestorer(nn.Cell):
    """conv-ReLU-conv-ReLU-conv plus the input: (B,3,H,W) -> (B,3,H,W), any H and W."""

    size_multiple = 1

    def __init__(self, width: int = 8):
        super().__init__()
        self.conv_in = conv2d(3, width, 3)
        self.conv_mid = conv2d(width, width, 3)
        self.conv_out = conv2d(width, 3, 3)
        self.act = nn.ReLU()

    def construct(self, x):
        return x + self.conv_out(self.act(self.conv_mid(self.act(self.conv_in(x)))))


@register_model
def toy_restorer(width: int = 8) -> TinyRestorer:
    return TinyRestorer(width)
