"""GridDehazeNet (Liu et al., ICCV 2019) in MindSpore, parameter names = official PyTorch names.

Structure (facts in docs/osr.md and the reference notes): learnable pre-processing
(``conv_in`` + ``rdb_in``), a ``height`` x ``width`` grid of residual dense blocks whose
rows run at 1/2**i resolution with ``depth_rate * 2**i`` channels, strided-conv
down-sampling in the left half, transposed-conv up-sampling in the right half, and
attention fusion: where two streams meet they are summed with learned per-channel
weights taken from the ``coefficient`` tensor.  Post-processing ``rdb_out`` + ``conv_out``
+ ReLU.  The official checkpoints (``indoor_haze_best_3_6``...) are DataParallel
state_dicts; the converter strips their ``module.`` prefix.

The official network takes inputs normalised with mean 0.5 / std 0.5 and predicts the
clean image in [0, 1]; with ``input_norm=True`` (default) this model takes [0, 1]
images and applies that normalisation itself.  Any input size works without padding:
the transposed convolutions reproduce PyTorch's ``output_size`` argument exactly, so
``size_multiple`` is 1.
"""
from __future__ import annotations

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..kernels import KernelCell, channel_weighted_sum_op
from ..precision import cast_like, to_float32
from ..registry import register_config, register_model
from .layers import ConvTranspose3x3S2, conv2d, conv2d_relu, crop


class MakeDense(nn.Cell):
    """One dense layer: 3x3 conv to ``growth_rate`` channels and ReLU, its output appended to its input.

    The input is the tuple of the block's earlier outputs (channel counts ``parts``) rather than their
    concatenation: the dense 3x3 kernel reads the parts where they are, so the block concatenates once, before
    its 1x1 fusion, instead of once per layer (with MindSpore's own conv the cell concatenates first)."""

    def __init__(self, parts: tuple, growth_rate: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = conv2d_relu(sum(parts), growth_rate, kernel_size, parts=tuple(parts))

    def construct(self, xs: tuple) -> tuple:
        return xs + (self.conv(xs),)


class RDB(nn.Cell):
    """Residual dense block: dense layers, 1x1 fusion back to ``in_channels``, identity skip."""

    recompute_unit = True  # see ms_osr.training.recompute

    def __init__(self, in_channels: int, num_dense_layer: int, growth_rate: int) -> None:
        super().__init__()
        parts = [in_channels]
        layers = []
        for _ in range(num_dense_layer):
            layers.append(MakeDense(parts, growth_rate))
            parts.append(growth_rate)
        self.residual_dense_layers = nn.SequentialCell(layers)
        self.conv_1x1 = conv2d(sum(parts), in_channels, 1, padding=0)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.conv_1x1(ops.cat(self.residual_dense_layers((x,)), 1)) + x


class DownSample(nn.Cell):
    """Stride-2 3x3 conv (same channels) + ReLU, then 3x3 conv doubling the channels + ReLU."""

    def __init__(self, in_channels: int, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv2d_relu(in_channels, in_channels, kernel_size, stride=stride)
        self.conv2 = conv2d_relu(in_channels, stride * in_channels, kernel_size)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.conv2(self.conv1(x))


class UpSample(nn.Cell):
    """Transposed 3x3 conv, stride 2, to an explicit output size + ReLU, then 3x3 conv halving channels + ReLU.

    PyTorch's ``ConvTranspose2d(k=3, s=2, p=1)(x, output_size=(h, w))`` picks an output padding of 0 or 1 so the
    result has exactly the skip connection's size; the extra bottom row/right column it keeps is a real output
    row (it receives contributions from the last input row), not zeros.  MindSpore has no ``output_size``:
    :class:`~.layers.ConvTranspose3x3S2` computes the output padding 1 result (twice the input size) and the
    first ``h`` rows and ``w`` columns of it are PyTorch's result for either output padding.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.deconv = ConvTranspose3x3S2(in_channels, in_channels, relu=True)
        self.conv = conv2d_relu(in_channels, in_channels // 2, 3)

    def construct(self, x: ms.Tensor, out_h: int, out_w: int) -> ms.Tensor:
        return self.conv(crop(self.deconv(x), 0, 0, out_h, out_w))


class ChannelWeightedSum(KernelCell):
    """``wa * a + wb * b`` for per-channel weights ``wa``, ``wb`` (1, C, 1, 1) and maps ``a``, ``b`` (N, C, H, W):
    one pass of a C++ kernel on CPU (float32), two Mul and an Add otherwise.

    Its own bprop because autodiff takes each weight's gradient as a ReduceSum of ``dout * a`` over axes
    (0, 2, 3), which MindSpore 2.10's CPU kernel does at a third of the speed of one batched dot product per
    channel plane (4% of GridDehazeNet's training step at 20 calls)."""

    def __init__(self) -> None:
        super().__init__(channel_weighted_sum_op)

    def construct(self, wa: ms.Tensor, a: ms.Tensor, wb: ms.Tensor, b: ms.Tensor) -> ms.Tensor:
        if self.use_kernel and a.dtype == ms.float32 and wa.dtype == ms.float32:
            return self.kernel(wa, a, wb, b)
        return wa * a + wb * b

    @staticmethod
    def _channel_dot(g: ms.Tensor, x: ms.Tensor) -> ms.Tensor:
        n, c, h, w = x.shape
        # in float32: a float16 sum over a whole plane overflows
        dots = ops.BatchMatMul()(to_float32(g).reshape(n * c, 1, h * w), to_float32(x).reshape(n * c, h * w, 1))
        return dots.reshape(n, c).sum(axis=0).reshape(1, c, 1, 1)

    def bprop(self, wa, a, wb, b, out, dout):
        # The weights are slices of a float32 parameter: their gradients go back in float32 (from _channel_dot) even
        # when AMP hands this cell float16 copies (a custom bprop answers for the inputs before that cast).
        return self._channel_dot(dout, a), cast_like(dout * wa, a), self._channel_dot(dout, b), cast_like(dout * wb, b)


class GridDehazeNet(nn.Cell):
    """Official GridDehazeNet (class ``GateHazeNet`` upstream); see module docstring."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, depth_rate: int = 16, kernel_size: int = 3, stride: int = 2,
                 height: int = 3, width: int = 6, num_dense_layer: int = 4, growth_rate: int = 16,
                 attention: bool = True, input_norm: bool = True) -> None:
        super().__init__()
        if height < 2 or width < 4:
            raise ValueError(f"GridDehazeNet needs height >= 2 and width >= 4 (got height={height}, width={width})")
        if stride != 2:
            raise ValueError(f"GridDehazeNet is defined for stride 2 (got {stride})")
        self.height = height
        self.width = width
        self.stride = stride
        self.depth_rate = depth_rate
        self.input_norm = input_norm
        # Fusion weights: [row, column, branch (0 = along the row, 1 = from the row above/below), channel].
        max_channels = depth_rate * stride ** (height - 1)
        self.coefficient = ms.Parameter(ops.ones((height, width, 2, max_channels), ms.float32),
                                        name="coefficient", requires_grad=attention)
        self.weighted_sum = ChannelWeightedSum()
        self.conv_in = conv2d(in_channels, depth_rate, kernel_size)
        self.conv_out = conv2d_relu(depth_rate, in_channels, kernel_size)
        self.rdb_in = RDB(depth_rate, num_dense_layer, growth_rate)
        self.rdb_out = RDB(depth_rate, num_dense_layer, growth_rate)

        rdb, down, up = {}, {}, {}
        for i in range(height):
            for j in range(width - 1):
                rdb[f"{i}_{j}"] = RDB(depth_rate * stride ** i, num_dense_layer, growth_rate)
        for i in range(height - 1):
            for j in range(width // 2):
                down[f"{i}_{j}"] = DownSample(depth_rate * stride ** i)
        for i in range(height - 2, -1, -1):
            for j in range(width // 2, width):
                up[f"{i}_{j}"] = UpSample(depth_rate * stride ** (i + 1))
        self.rdb_module = nn.CellDict(rdb)
        self.downsample_module = nn.CellDict(down)
        self.upsample_module = nn.CellDict(up)

    def _fuse(self, i: int, j: int, along: ms.Tensor, across: ms.Tensor) -> ms.Tensor:
        """Attention fusion at grid node (i, j): per-channel weighted sum of the two incoming streams."""
        ch = self.depth_rate * self.stride ** i
        w_along = self.coefficient[i, j, 0, :ch].reshape(1, ch, 1, 1)
        w_across = self.coefficient[i, j, 1, :ch].reshape(1, ch, 1, 1)
        return self.weighted_sum(w_along, along, w_across, across)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        if self.input_norm:
            x = (x - 0.5) / 0.5
        h, w = self.height, self.width
        half = w // 2
        # Grid node outputs, flat index i * w + j; every loop below unrolls at compile time.
        nodes = [None] * (h * w)
        nodes[0] = self.rdb_in(self.conv_in(x))
        for j in range(1, half):  # top row, left half
            nodes[j] = self.rdb_module[f"0_{j - 1}"](nodes[j - 1])
        for i in range(1, h):  # first column: down-sampling only
            nodes[i * w] = self.downsample_module[f"{i - 1}_0"](nodes[(i - 1) * w])
        for i in range(1, h):  # left half: fuse the row stream and the down-sampled stream from above
            for j in range(1, half):
                nodes[i * w + j] = self._fuse(i, j, self.rdb_module[f"{i}_{j - 1}"](nodes[i * w + j - 1]),
                                              self.downsample_module[f"{i - 1}_{j}"](nodes[(i - 1) * w + j]))
        b = h - 1  # bottom row, right half: row stream only
        for j in range(half, w):
            nodes[b * w + j] = self.rdb_module[f"{b}_{j - 1}"](nodes[b * w + j - 1])
        for j in range(half, w):  # right half, rows above the bottom: fuse the row stream and the up-sampled stream
            for i in range(h - 2, -1, -1):
                prev = nodes[i * w + j - 1]
                up = self.upsample_module[f"{i}_{j}"](nodes[(i + 1) * w + j], prev.shape[2], prev.shape[3])
                nodes[i * w + j] = self._fuse(i, j, self.rdb_module[f"{i}_{j - 1}"](prev), up)
        out = self.rdb_out(nodes[w - 1])
        return self.conv_out(out)


@register_model
def griddehazenet(**kwargs) -> GridDehazeNet:
    """GridDehazeNet with the official sizes (3x6 grid, 4 dense layers, growth rate 16): 958,051 parameters."""
    return GridDehazeNet(**kwargs)


register_config("griddehazenet_small", "griddehazenet",
                "GridDehazeNet 3x4 grid, depth 8, 2 dense layers, growth 8 (tests / CPU)",
                depth_rate=8, height=3, width=4, num_dense_layer=2, growth_rate=8)
