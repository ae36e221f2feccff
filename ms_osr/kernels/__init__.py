"""Hand-written CPU kernels, run as MindSpore "aot" Custom operators.

Two operations of Restormer-style blocks are slow in MindSpore 2.10 on CPU:

* the depthwise 3x3 convolution: oneDNN's per-group im2col + GEMM at 2-5 GFLOP/s (38% of a Restormer
  training step, see ``benchmarks/results.md``).  ``depthwise3x3.cc`` computes it and both of its
  gradients as a stencil over one image plane at a time (:class:`Depthwise3x3`);
* the dense 3x3 convolution of the small CNNs (GridDehazeNet, the OSR network): oneDNN's im2col +
  AVX2 GEMM.  ``dense3x3.cc`` keeps 4 output channels x 24 pixels in registers and streams shifted rows
  of a padded copy past them, forward and both gradients (:class:`Conv3x3`); the models use it only
  for the channel counts where it was measured faster (``layers.dense3x3_faster``).  :class:`Conv3x3Bias`
  adds the bias (and a ReLU) in the output pass and can read its input as several tensors taken as their
  channel concatenation, which GridDehazeNet's dense blocks then never build.  For 8 or more output
  channels the forward and the input gradient use Winograd F(2x2, 3x3) (16 multiplications per 2x2 outputs
  and input channel instead of 36); ``MS_OSR_WINOGRAD=0`` (read at every call) keeps the direct kernel.
  The same register tile runs GridDehazeNet's stride-2 3x3 conv (:class:`Conv3x3S2Bias`, on input rows split by
  column parity) and its transposed conv as four phase convs (:class:`ConvTranspose3x3S2`); each is the other's
  input gradient, and the filter gradients are MindSpore's;
* the GDFN gate GELU(a) * g: a channel split and ~16 element-wise passes forward and backward.
  ``gated_gelu.cc`` does each direction in one pass (:func:`gated_gelu_op`);
* GridDehazeNet's attention fusion wa * a + wb * b: two Mul and an Add; ``weighted_sum.cc`` does it in one
  pass (:func:`channel_weighted_sum_op`).

The C++ sources are compiled on first use with the system's ``g++`` (``$CXX`` overrides) into a
per-user cache (``$MS_OSR_KERNEL_CACHE``, default ``~/.cache/ms_osr/kernels``), keyed by the source,
the flags and the CPU's feature flags, so a shared home directory never runs a binary built for
another CPU.  The kernels are used only when the device target is CPU at the time a cell is built,
and only for float32; ``MS_OSR_CPU_KERNELS=0`` turns them off.  Without a compiler, or if the build
fails, a one-line warning is logged once and MindSpore's own operators are used: same results,
slower.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Tuple

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..errors import MsOsrError
from ..graph_cache import renew_create_time, restore_create_time
from ..precision import cast_like

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).parent
ENV_SWITCH = "MS_OSR_CPU_KERNELS"
ENV_CACHE = "MS_OSR_KERNEL_CACHE"
ENV_WINOGRAD = "MS_OSR_WINOGRAD"  # read by dense3x3.cc
CXX_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC", "-pthread"]

_library: Optional[Path] = None
_build_failed = False
_threads: Optional[int] = None


class KernelBuildError(MsOsrError, RuntimeError):
    """The C++ kernels could not be compiled."""


def _cpu_fingerprint() -> str:
    """The CPU feature flags, so a cached ``-march=native`` binary is never run on another CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_dir() -> Path:
    """``$MS_OSR_KERNEL_CACHE``, else ``~/.cache/ms_osr/kernels``, else (home not writable) a per-user
    folder in the temporary directory."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    home = Path.home() / ".cache" / "ms_osr" / "kernels"
    try:
        home.mkdir(parents=True, exist_ok=True)
        if os.access(home, os.W_OK):
            return home
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"ms_osr_kernels-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def build_library(force: bool = False) -> Path:
    """Compile the ``*.cc`` files beside this module (once per sources/flags/CPU) into one shared
    library and return its path."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise KernelBuildError(f"no C++ compiler '{cxx}' on PATH (set $CXX)")
    sources = sorted(SOURCE_DIR.glob("*.cc"))
    key = hashlib.sha256(" ".join([cxx] + CXX_FLAGS).encode() + _cpu_fingerprint().encode())
    for path in sorted(SOURCE_DIR.glob("*.[ch]*")):
        key.update(path.name.encode() + path.read_bytes())
    target = _cache_dir() / f"ms_osr_kernels-{key.hexdigest()[:16]}.so"
    if target.is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a concurrent process never loads a half-written file.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cxx, *CXX_FLAGS, "-o", tmp, *map(str, sources)], capture_output=True, text=True)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
            raise KernelBuildError(f"{cxx} failed: {first}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library() -> Optional[Path]:
    """The compiled library, or None (after one warning) when it cannot be built."""
    global _library, _build_failed
    if _library is None and not _build_failed:
        try:
            _library = build_library()
            if _threads:
                _apply_threads(_threads)
        except (KernelBuildError, OSError) as exc:
            _build_failed = True
            log.warning("ms_osr CPU kernels unavailable (%s); using MindSpore's own operators", exc)
    return _library


def _apply_threads(n: int) -> None:
    import ctypes

    ctypes.CDLL(str(_library)).MsOsrSetThreads(int(n))


def set_threads(n: Optional[int]) -> None:
    """Worker threads of the kernels (default: all cores); ``setup_runtime(threads=...)`` calls this."""
    global _threads
    _threads = n
    if _library is not None:
        _apply_threads(n or 0)


_build_target: Optional[str] = None


@contextlib.contextmanager
def build_for(target: str) -> Iterator[None]:
    """Cells built inside the block decide as if the device target were ``target`` (``CPU``, ``GPU``,
    ``Ascend``): the operator audit builds the GPU/Ascend graphs on a CPU machine this way."""
    global _build_target
    previous, _build_target = _build_target, target
    try:
        yield
    finally:
        _build_target = previous


def enabled() -> bool:
    """True when cells built now will run the C++ kernels (CPU target, not switched off, built)."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if (_build_target or ms.get_context("device_target")) != "CPU":
        return False
    return library() is not None


@contextlib.contextmanager
def stock_ops(net: nn.Cell) -> Iterator[int]:
    """Inside the block, graphs compiled from ``net`` use MindSpore's own ops instead of the C++
    kernels; yields how many cells were switched.  For MindIR export: a graph with an aot Custom op
    would name this machine's compiled library and fail to load anywhere else."""
    cells = [cell for _, cell in net.cells_and_names() if isinstance(cell, KernelCell) and cell.use_kernel]
    # a compiled graph with the kernels would be reused: compile anew, and find the old graphs again after
    for cell in cells:
        cell.use_kernel = False
    created = renew_create_time(net)
    try:
        yield len(cells)
    finally:
        for cell in cells:
            cell.use_kernel = True
        restore_create_time(net, created)


def _custom(name: str, out_shape, bprop=None, outputs: int = 1) -> ops.Custom:
    """An aot op of the library; ``outputs > 1``: that many outputs of the first input's dtype."""
    dtype = (lambda *dtypes: dtypes[0]) if outputs == 1 else (lambda *dtypes: [dtypes[0]] * outputs)
    return ops.Custom(f"{library()}:{name}", out_shape=out_shape, out_dtype=dtype, func_type="aot", bprop=bprop)


def _conv_ops(name: str, out_shape, grad_input: str, grad_input_shape, grad_filter: str,
              grad_filter_shape) -> ops.Custom:
    """A conv forward op ``name(x, w)`` whose bprop runs ``grad_input(dout, w)`` and ``grad_filter(x, dout)``."""
    to_input = _custom(grad_input, grad_input_shape)
    to_filter = _custom(grad_filter, grad_filter_shape)

    def bprop(x, w, out, dout):
        return to_input(dout, w), to_filter(x, dout)

    return _custom(name, out_shape, bprop=bprop)


def _depthwise_ops() -> ops.Custom:
    """The depthwise 3x3 op; its input gradient is the same stencil with the flipped kernel."""
    return _conv_ops("MsOsrDw3x3", lambda x, w: x, "MsOsrDw3x3Flipped", lambda dy, w: dy,
                     "MsOsrDw3x3Filter", lambda x, dy: [x[1], 1, 3, 3])


def _dense_ops() -> ops.Custom:
    """The dense 3x3 op with its input-gradient and filter-gradient ops."""
    return _conv_ops("MsOsrConv3x3", lambda x, w: [x[0], w[0], x[2], x[3]],
                     "MsOsrConv3x3Input", lambda dy, w: [dy[0], w[1], dy[2], dy[3]],
                     "MsOsrConv3x3Filter", lambda x, dy: [dy[1], x[1], 3, 3])


# The most input parts of one fused dense conv (GridDehazeNet's dense layers have up to 4).
MAX_PARTS = 6


def _with_arity(parts: int, grads):
    """A bprop of ``parts`` tensor inputs then ``w, b`` (MindSpore needs the exact parameter list: no ``*args``)
    made of ``grads = (mask, to_input, to_filter)``; ``to_filter`` returns the filter and the bias gradient.  Each
    arity spells its calls out: a bprop shared by ops of different arity (one function unpacking a tuple of parts)
    compiled once for the first arity it met."""
    mask, to_input, to_filter = grads

    def bprop1(x0, w, b, out, dout):
        d = mask(dout, out)
        dw = to_filter(x0, d)
        return to_input(d, w), dw[0], dw[1]

    def bprop2(x0, x1, w, b, out, dout):
        d = mask(dout, out)
        dx, dw = to_input(d, w, x0, x1), to_filter(x0, x1, d)
        return dx[0], dx[1], dw[0], dw[1]

    def bprop3(x0, x1, x2, w, b, out, dout):
        d = mask(dout, out)
        dx, dw = to_input(d, w, x0, x1, x2), to_filter(x0, x1, x2, d)
        return dx[0], dx[1], dx[2], dw[0], dw[1]

    def bprop4(x0, x1, x2, x3, w, b, out, dout):
        d = mask(dout, out)
        dx, dw = to_input(d, w, x0, x1, x2, x3), to_filter(x0, x1, x2, x3, d)
        return dx[0], dx[1], dx[2], dx[3], dw[0], dw[1]

    def bprop5(x0, x1, x2, x3, x4, w, b, out, dout):
        d = mask(dout, out)
        dx, dw = to_input(d, w, x0, x1, x2, x3, x4), to_filter(x0, x1, x2, x3, x4, d)
        return dx[0], dx[1], dx[2], dx[3], dx[4], dw[0], dw[1]

    def bprop6(x0, x1, x2, x3, x4, x5, w, b, out, dout):
        d = mask(dout, out)
        dx, dw = to_input(d, w, x0, x1, x2, x3, x4, x5), to_filter(x0, x1, x2, x3, x4, x5, d)
        return dx[0], dx[1], dx[2], dx[3], dx[4], dx[5], dw[0], dw[1]

    return (bprop1, bprop2, bprop3, bprop4, bprop5, bprop6)[parts - 1]


def _pass_through(dout, out):
    return dout


def _dense_bias_ops(relu: bool, parts: Optional[Tuple[int, ...]]) -> ops.Custom:
    """``conv(cat(x1..xk), w) + b`` (then ReLU when ``relu``) as one op for inputs of ``parts`` channels (one
    entry: a single input of any channel count): the bias and the ReLU ride on the kernel's output pass, and the
    parts are read (and their gradients written) in place, without the concatenation.  Gradients: through the
    ReLU's mask (from the output), then the two gradient kernels, the filter one also summing the bias gradient."""
    from mindspore.ops.operations import _grad_ops

    k = len(parts) if parts else 1
    if not 1 <= k <= MAX_PARTS:
        raise ValueError(f"a fused dense conv takes 1 to {MAX_PARTS} input parts, not {k}")
    suffix = f"X{k}" if k > 1 else ""  # one entry name per arity (dense3x3.cc, MS_OSR_PARTS_ENTRIES)
    if k == 1:
        to_input = _custom("MsOsrConv3x3Input", lambda dy, w: [dy[0], w[1], dy[2], dy[3]])
    else:
        # the parts ride along as inputs for their shapes: MindSpore infers every op of one name with the
        # first one's shape function, so a closure over this op's channel counts would be ignored
        to_input = _custom("MsOsrConv3x3Input" + suffix, lambda dy, w, *xs: list(xs), outputs=k)
    to_filter = _custom("MsOsrConv3x3FilterBias" + suffix,
                        lambda *s: [[s[k][1], sum(t[1] for t in s[:k]), 3, 3], [s[k][1]]], outputs=2)
    grads = (_grad_ops.ReluGrad() if relu else _pass_through, to_input, to_filter)
    name = ("MsOsrConv3x3BiasRelu" if relu else "MsOsrConv3x3Bias") + suffix
    return _custom(name, lambda *s: [s[0][0], s[k][0], s[0][2], s[0][3]], bprop=_with_arity(k, grads))


def _strided_shape(x, w, *b):
    """Output shape of the stride-2 conv: x (N, Ci, H, W), w (Co, Ci, 3, 3) -> (N, Co, ceil(H/2), ceil(W/2))."""
    return [x[0], w[0], (x[2] + 1) // 2, (x[3] + 1) // 2]


def _transposed_shape(x, w, *b):
    """Output shape of the stride-2 transposed conv: x (N, Ci, H, W), w (Ci, Co, 3, 3) -> (N, Co, 2H, 2W)."""
    return [x[0], w[1], 2 * x[2], 2 * x[3]]


def _stride2_ops(transposed: bool, relu: bool) -> ops.Custom:
    """The stride-2 3x3 convs as one op each, bias added (then a ReLU when ``relu``) in the output pass:

    * ``conv2d(x, w, b, stride=2, padding=1)``: x (N, Ci, H, W), w (Co, Ci, 3, 3) -> (N, Co, ceil(H/2), ceil(W/2));
    * ``transposed``: ``conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)``: x (N, Ci, H, W),
      w (Ci, Co, 3, 3) -> (N, Co, 2H, 2W).

    Each kernel is the other's input gradient (the adjoint; the strided conv's is cut to odd H, W).  The filter
    gradient is MindSpore's, of the stride-2 conv (padding 1) that links the two sides: x -> y for the strided
    conv, y -> x for the transposed one (whose bottom and right padding no tap then reaches)."""
    from mindspore.ops.operations import _grad_ops

    mask = _grad_ops.ReluGrad() if relu else _pass_through
    bias_grad = _grad_ops.BiasAddGrad()
    if transposed:
        to_input = _custom("MsOsrConv3x3S2", _strided_shape)
    else:
        to_input = _custom("MsOsrConvTranspose3x3S2", _transposed_shape)

    def bprop(x, w, b, out, dout):
        d = mask(dout, out)
        dx = to_input(d, w)
        if dx.shape[2] > x.shape[2]:
            dx = ops.split(dx, [x.shape[2], 1], axis=2)[0]
        if dx.shape[3] > x.shape[3]:
            dx = ops.split(dx, [x.shape[3], 1], axis=3)[0]
        to_filter = _grad_ops.Conv2DBackpropFilter(w.shape[0], 3, pad_mode="pad", pad=1, pad_list=(1, 1, 1, 1),
                                                   stride=2)
        dw = to_filter(x, d, w.shape) if transposed else to_filter(d, x, w.shape)
        return dx, dw, bias_grad(d)

    name = ("MsOsrConvTranspose3x3S2" if transposed else "MsOsrConv3x3S2") + ("BiasRelu" if relu else "Bias")
    return _custom(name, _transposed_shape if transposed else _strided_shape, bprop=bprop)


def channel_weighted_sum_op() -> ops.Custom:
    """(wa (1, C, 1, 1), a (N, C, H, W), wb, b) -> wa * a + wb * b in one pass; no bprop of its own (the cell
    that runs it, GridDehazeNet's ``ChannelWeightedSum``, has one)."""
    return _custom("MsOsrChannelWeightedSum", lambda wa, a, wb, b: a)


def gated_gelu_op() -> ops.Custom:
    """u (N, 2C, H, W) -> GELU(u[:, :C]) * u[:, C:] (exact GELU to 1e-7), with its fused gradient."""
    grad = _custom("MsOsrGatedGeluGrad", lambda u, dy: u)

    def bprop(u, out, dout):
        return (grad(u, dout),)

    return _custom("MsOsrGatedGelu", lambda u: [u[0], u[1] // 2, u[2], u[3]], bprop=bprop)


def _bias_relu(y: ms.Tensor, b: ms.Tensor, relu: bool) -> ms.Tensor:
    """``y + b`` per channel (NCHW), then a ReLU when ``relu``: the fallbacks' version of the kernels' output pass."""
    y = ops.bias_add(y, cast_like(b, y))
    return ops.relu(y) if relu else y


class KernelCell(nn.Cell):
    """Base of every cell that can run a kernel of this module.  ``use_kernel`` is decided when the cell is
    built (:func:`enabled`) and switched off by :func:`stock_ops`; ``kernel`` is the Custom op (None when
    off).  A subclass's ``construct`` runs ``self.kernel`` when ``self.use_kernel`` and its input is
    float32, and MindSpore's own operators otherwise.  Holds no parameters."""

    def __init__(self, make_kernel):
        super().__init__()
        self.use_kernel = enabled()
        self.kernel = make_kernel() if self.use_kernel else None


class Depthwise3x3(KernelCell):
    """``conv2d(x, w, padding=1, groups=C)`` for x (N, C, H, W) and w (C, 1, 3, 3), no bias: the C++
    kernel on CPU, MindSpore's grouped convolution otherwise."""

    def __init__(self):
        super().__init__(_depthwise_ops)

    def construct(self, x: ms.Tensor, w: ms.Tensor) -> ms.Tensor:
        if self.use_kernel and x.dtype == ms.float32:
            return self.kernel(x, w)
        return ops.conv2d(x, cast_like(w, x), pad_mode="pad", padding=1, groups=x.shape[1])


class Conv3x3(KernelCell):
    """``conv2d(x, w, padding=1)`` for x (N, Ci, H, W) and w (Co, Ci, 3, 3), one group, no bias: the C++
    kernel of ``dense3x3.cc`` on CPU, MindSpore's convolution otherwise."""

    def __init__(self):
        super().__init__(_dense_ops)

    def construct(self, x: ms.Tensor, w: ms.Tensor) -> ms.Tensor:
        if self.use_kernel and x.dtype == ms.float32:
            return self.kernel(x, w)
        return ops.conv2d(x, cast_like(w, x), pad_mode="pad", padding=1)


class Conv3x3Bias(KernelCell):
    """``conv2d(x, w, b, padding=1)``, followed by a ReLU when ``relu``: one C++ kernel call on CPU (bias and
    ReLU in its output pass), MindSpore's convolution, BiasAdd and ReLU otherwise.

    With ``parts`` (channel counts, e.g. ``(16, 16, 16)``) ``x`` is a tuple of that many tensors taken as their
    concatenation along channels; the kernel reads them where they are (MindSpore's path concatenates)."""

    def __init__(self, relu: bool = False, parts: Optional[Tuple[int, ...]] = None):
        self.parts = tuple(parts) if parts and 1 < len(parts) <= MAX_PARTS else None
        super().__init__(lambda: _dense_bias_ops(relu, self.parts))
        self.relu = relu

    def construct(self, x, w: ms.Tensor, b: ms.Tensor) -> ms.Tensor:
        xs = x if isinstance(x, tuple) else (x,)
        if self.parts is None and len(xs) > 1:  # parts not declared (or more than MAX_PARTS): concatenate
            xs = (ops.cat(xs, 1),)
        if self.use_kernel and xs[0].dtype == ms.float32:
            return self.kernel(*xs, w, b)
        x = ops.cat(xs, 1) if len(xs) > 1 else xs[0]
        return _bias_relu(ops.conv2d(x, cast_like(w, x), pad_mode="pad", padding=1), b, self.relu)


class ConvTranspose3x3S2(KernelCell):
    """``conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)`` for x (N, Ci, H, W), w (Ci, Co, 3, 3):
    the (N, Co, 2H, 2W) up-sampling of GridDehazeNet (PyTorch's ``output_size`` of twice the input), followed by a
    ReLU when ``relu``.  The C++ kernel on CPU (bias and ReLU in its output pass); otherwise MindSpore's transposed
    convolution into the full (2H+1, 2W+1) result, whose first row and column are dropped."""

    def __init__(self, in_channels: int, relu: bool = False):
        super().__init__(lambda: _stride2_ops(True, relu))
        self.relu = relu
        # MindSpore's transposed conv is the input gradient of a conv: its out_channel is that conv's, our input's
        self.full = ops.Conv2DTranspose(in_channels, 3, pad_mode="pad", pad=0, stride=2)

    def construct(self, x: ms.Tensor, w: ms.Tensor, b: ms.Tensor) -> ms.Tensor:
        if self.use_kernel and x.dtype == ms.float32:
            return self.kernel(x, w, b)
        n, _, h, wd = x.shape
        full = self.full(x, cast_like(w, x), (n, w.shape[1], 2 * h + 1, 2 * wd + 1))
        # Split, not a slice: MindSpore's CPU StridedSlice of a window is several times slower (layers.crop)
        return _bias_relu(ops.split(ops.split(full, [1, 2 * h], axis=2)[1], [1, 2 * wd], axis=3)[1], b, self.relu)


class Conv3x3S2Bias(KernelCell):
    """``conv2d(x, w, b, stride=2, padding=1)``, then a ReLU when ``relu``: the C++ kernel on CPU (bias and ReLU in
    its output pass), MindSpore's convolution, BiasAdd and ReLU otherwise."""

    def __init__(self, relu: bool = False):
        super().__init__(lambda: _stride2_ops(False, relu))
        self.relu = relu

    def construct(self, x: ms.Tensor, w: ms.Tensor, b: ms.Tensor) -> ms.Tensor:
        if self.use_kernel and x.dtype == ms.float32:
            return self.kernel(x, w, b)
        return _bias_relu(ops.conv2d(x, cast_like(w, x), stride=2, pad_mode="pad", padding=1), b, self.relu)
