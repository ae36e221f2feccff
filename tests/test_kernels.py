"""The C++ kernels (ms_osr.kernels) against MindSpore's own operators."""
import logging

import numpy as np
import pytest

import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Tensor

from ms_osr import kernels
from ms_osr.models.layers import DenseConv3x3, DepthwiseConv3x3, conv2d
from ms_osr.models.restormer import GatedGELU, gated_gelu


def test_kernels_build_and_are_enabled_on_cpu():
    assert ms.get_context("device_target") == "CPU"
    assert kernels.enabled(), "the C++ kernels did not build (is g++ installed?)"


class GroupedConv(nn.Cell):
    def construct(self, x, w):
        return ops.conv2d(x, w, pad_mode="pad", padding=1, groups=x.shape[1])


class WithGrads(nn.Cell):
    """(y, dx, dw) of a (x, w) -> y cell for the upstream gradient g."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation(get_all=True, sens_param=True)(net)

    def construct(self, x, w, g):
        dx, dw = self.grad(x, w, g)
        return self.net(x, w), dx, dw


def _case(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((shape[1], 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    return Tensor(x), Tensor(w), Tensor(g)


# The last shapes are large enough to be split across threads (>= 32k elements per thread).
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 3, 1, 1), (1, 2, 1, 6), (3, 4, 16, 33), (1, 64, 40, 24),
                                   (2, 16, 48, 64)])
def test_forward_and_gradients_match_grouped_conv(shape):
    x, w, g = _case(shape)
    ours = WithGrads(kernels.Depthwise3x3())
    assert ours.net.use_kernel
    for a, b, name in zip(ours(x, w, g), WithGrads(GroupedConv())(x, w, g), ("y", "dx", "dw")):
        a, b = a.asnumpy(), b.asnumpy()
        assert a.shape == b.shape, name
        scale = max(1.0, float(np.abs(b).max()))
        assert np.abs(a - b).max() <= 2e-6 * scale, f"{name}: {np.abs(a - b).max()} (scale {scale})"


class DenseConv(nn.Cell):
    def construct(self, x, w):
        return ops.conv2d(x, w, pad_mode="pad", padding=1)


def _dense_case(n, ci, co, h, w, seed=0):
    rng = np.random.default_rng(seed)
    return (Tensor(rng.standard_normal((n, ci, h, w)).astype(np.float32)),
            Tensor(rng.standard_normal((co, ci, 3, 3)).astype(np.float32)),
            Tensor(rng.standard_normal((n, co, h, w)).astype(np.float32)))


def _assert_close(ours, ref, rel):
    """Outputs (y, dx, dw[, db]) equal to ``rel`` times the reference's largest magnitude (at least 1)."""
    for a, b, name in zip(ours, ref, ("y", "dx", "dw", "db")):
        a, b = a.asnumpy(), b.asnumpy()
        assert a.shape == b.shape, name
        scale = max(1.0, float(np.abs(b).max()))
        assert np.abs(a - b).max() <= rel * scale, f"{name}: {np.abs(a - b).max()} (scale {scale})"


# (N, Ci, Co, H, W): widths below, at and past a 24-pixel tile and a vector of 8, channel counts that are
# not multiples of the 4-channel block, single pixels and rows; the last ones are split across threads.
@pytest.mark.parametrize("case", [(2, 5, 6, 7, 9), (1, 3, 2, 1, 1), (1, 2, 3, 1, 6), (3, 4, 5, 16, 33),
                                  (1, 3, 16, 9, 24), (1, 16, 3, 10, 25), (2, 7, 9, 13, 47), (1, 48, 16, 40, 24),
                                  (2, 16, 32, 48, 64), (1, 128, 128, 17, 19)])
def test_dense_forward_and_gradients_match_conv(case):
    n, ci, co, h, w = case
    x, wt, g = _dense_case(n, ci, co, h, w)
    ours = WithGrads(kernels.Conv3x3())
    assert ours.net.use_kernel
    _assert_close(ours(x, wt, g), WithGrads(DenseConv())(x, wt, g), 2e-6)


class BiasedWithGrads(nn.Cell):
    """(y, dx, dw, db) of a (x, w, b) -> y cell for the upstream gradient g."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation(get_all=True, sens_param=True)(net)

    def construct(self, x, w, b, g):
        dx, dw, db = self.grad(x, w, b, g)
        return self.net(x, w, b), dx, dw, db


class BiasedConv(nn.Cell):
    """MindSpore's 3x3 conv (padding 1, ``stride``), BiasAdd and, with ``relu``, ReLU."""

    def __init__(self, relu, stride=1):
        super().__init__()
        self.relu = relu
        self.stride = stride

    def construct(self, x, w, b):
        y = ops.bias_add(ops.conv2d(x, w, stride=self.stride, pad_mode="pad", padding=1), b)
        return ops.relu(y) if self.relu else y


@pytest.mark.parametrize("winograd", ["1", "0"], ids=["winograd", "direct"])
@pytest.mark.parametrize("relu", [False, True], ids=["bias", "bias_relu"])
@pytest.mark.parametrize("case", [(2, 5, 6, 7, 9), (1, 3, 2, 1, 1), (3, 4, 5, 16, 33), (2, 16, 32, 48, 64),
                                  (1, 9, 12, 17, 51), (2, 12, 9, 2, 3)])
def test_dense_bias_relu_forward_and_gradients_match_conv(case, relu, winograd, monkeypatch):
    """Bias (and ReLU) in the kernel's output pass: output and the gradients of x, w and b as MindSpore's conv,
    BiasAdd and ReLU give them, for channel counts off the 4-channel block, widths off the 24-pixel tile and
    (Winograd: 8 or more outputs, forward or input gradient) odd sizes that cut a 2x2 tile, with the
    Winograd path and with the direct kernel alone."""
    monkeypatch.setenv(kernels.ENV_WINOGRAD, winograd)
    n, ci, co, h, w = case
    x, wt, g = _dense_case(n, ci, co, h, w)
    b = Tensor(np.random.default_rng(3).standard_normal(co).astype(np.float32))
    ours = BiasedWithGrads(kernels.Conv3x3Bias(relu))
    assert ours.net.use_kernel
    out = ours(x, wt, b, g)
    ref = BiasedWithGrads(BiasedConv(relu))(x, wt, b, g)
    if relu:
        assert 0.2 < float((out[0].asnumpy() == 0).mean()) < 0.8  # the ReLU clipped part of the output
    _assert_close(out, ref, 2e-6)


def _conv_transpose_reference(x, w, b, relu):
    """PyTorch's conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1) (then ReLU) in NumPy."""
    n, _, h, wd = x.shape
    full = np.zeros((n, w.shape[1], 2 * h + 1, 2 * wd + 1))
    for ky in range(3):
        for kx in range(3):
            full[:, :, ky:ky + 2 * h:2, kx:kx + 2 * wd:2] += np.einsum("nchw,co->nohw", x, w[:, :, ky, kx])
    y = full[:, :, 1:, 1:] + b.reshape(1, -1, 1, 1)
    return np.maximum(y, 0) if relu else y


# (N, Ci, Co, H, W): channel counts off the 4-channel block, widths below, at and past a 24-pixel tile, single
# pixels, odd sizes; the last is split across threads.
@pytest.mark.parametrize("relu", [False, True], ids=["bias", "bias_relu"])
@pytest.mark.parametrize("case", [(2, 5, 6, 7, 9), (1, 3, 2, 1, 1), (3, 4, 5, 16, 33), (1, 9, 7, 5, 24),
                                  (2, 32, 32, 40, 52)])
def test_conv_transpose_forward_and_gradients_match_mindspore(case, relu, monkeypatch):
    """The stride-2 transposed conv kernel: its output equals PyTorch's formula (NumPy) and MindSpore's transposed
    conv (the cell without the kernel), and its gradients of x, w and b equal MindSpore's autodiff of that path."""
    n, ci, co, h, w = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, ci, h, w)).astype(np.float32)
    wt = (rng.standard_normal((ci, co, 3, 3)) / np.sqrt(ci)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32)
    g = rng.standard_normal((n, co, 2 * h, 2 * w)).astype(np.float32)
    ours = BiasedWithGrads(kernels.ConvTranspose3x3S2(ci, relu))
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    stock = BiasedWithGrads(kernels.ConvTranspose3x3S2(ci, relu))
    assert ours.net.use_kernel and not stock.net.use_kernel
    args = (Tensor(x), Tensor(wt), Tensor(b), Tensor(g))
    out, ref = ours(*args), stock(*args)
    expected = _conv_transpose_reference(x, wt, b, relu)
    if relu:
        assert 0.2 < float((expected == 0).mean()) < 0.8  # the ReLU clipped part of the output
    for y in (out[0], ref[0]):
        assert y.shape == expected.shape
        assert np.abs(y.asnumpy() - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max()))
    _assert_close(out, ref, 2e-6)


@pytest.mark.parametrize("relu", [False, True], ids=["bias", "bias_relu"])
@pytest.mark.parametrize("case", [(2, 5, 6, 7, 9), (1, 3, 2, 1, 1), (3, 4, 5, 16, 33), (1, 9, 7, 6, 49),
                                  (2, 32, 32, 80, 96)])
def test_strided_conv_forward_and_gradients_match_conv(case, relu):
    """The stride-2 conv kernel (padding 1), whose input gradient is the transposed conv kernel cut to odd sizes:
    output and the gradients of x, w and b as MindSpore's strided conv, BiasAdd and ReLU give them."""
    n, ci, co, h, w = case
    rng = np.random.default_rng(8)
    x = Tensor(rng.standard_normal((n, ci, h, w)).astype(np.float32))
    wt = Tensor((rng.standard_normal((co, ci, 3, 3)) / np.sqrt(ci)).astype(np.float32))
    b = Tensor(rng.standard_normal(co).astype(np.float32))
    g = Tensor(rng.standard_normal((n, co, (h + 1) // 2, (w + 1) // 2)).astype(np.float32))
    ours = BiasedWithGrads(kernels.Conv3x3S2Bias(relu))
    assert ours.net.use_kernel
    out, ref = ours(x, wt, b, g), BiasedWithGrads(BiasedConv(relu, stride=2))(x, wt, b, g)
    if relu and out[0].size > 50:
        assert 0.2 < float((out[0].asnumpy() == 0).mean()) < 0.8  # the ReLU clipped part of the output
    _assert_close(out, ref, 2e-6)


class PartsWithGrads(nn.Cell):
    """(y, dx1, dx2, dx3, dw, db) of a cell on three input parts, for the upstream gradient g."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation(get_all=True, sens_param=True)(net)

    def construct(self, x0, x1, x2, w, b, g):
        return (self.net(x0, x1, x2, w, b),) + self.grad(x0, x1, x2, w, b, g)


class ConvOfParts(nn.Cell):
    """The fused op on three parts, or (``kernel=False``) MindSpore's concat + conv + BiasAdd + ReLU."""

    def __init__(self, parts, kernel):
        super().__init__()
        self.conv = kernels.Conv3x3Bias(True, parts) if kernel else BiasedConv(True)
        self.kernel = kernel

    def construct(self, x0, x1, x2, w, b):
        if self.kernel:
            return self.conv((x0, x1, x2), w, b)
        return self.conv(ops.cat((x0, x1, x2), 1), w, b)


@pytest.mark.parametrize("parts, hw", [((5, 3, 4), (9, 30)), ((16, 16, 16), (33, 50))])
def test_dense_conv_of_parts_matches_conv_of_concatenation(parts, hw):
    """Inputs given as parts (a dense block's earlier outputs): the output and every part's gradient equal
    those of the concatenation, and the gradients come back split like the inputs."""
    rng = np.random.default_rng(6)
    n, co = 2, 6
    xs = [Tensor(rng.standard_normal((n, c) + hw).astype(np.float32)) for c in parts]
    w = Tensor(rng.standard_normal((co, sum(parts), 3, 3)).astype(np.float32))
    b = Tensor(rng.standard_normal(co).astype(np.float32))
    g = Tensor(rng.standard_normal((n, co) + hw).astype(np.float32))
    ours = PartsWithGrads(ConvOfParts(parts, True))
    assert ours.net.conv.use_kernel and ours.net.conv.parts == parts
    out, ref = ours(*xs, w, b, g), PartsWithGrads(ConvOfParts(parts, False))(*xs, w, b, g)
    for i, (a, r) in enumerate(zip(out, ref)):
        a, r = a.asnumpy(), r.asnumpy()
        assert a.shape == r.shape, i
        assert np.abs(a - r).max() <= 2e-6 * max(1.0, float(np.abs(r).max())), i
    assert [t.shape[1] for t in out[1:4]] == list(parts)


def test_conv_relu_layer_keeps_conv2d_parameters():
    """conv2d_relu: relu(conv(x) + b) with the conv's parameters alone, fused on the kernel path and a plain
    Conv2d + ReLU where no kernel applies (stride 2); the same result with the kernels switched off."""
    from ms_osr.models.layers import conv2d_relu

    x = Tensor(np.random.default_rng(4).standard_normal((2, 6, 11, 13)).astype(np.float32))
    for layer, stride in ((conv2d_relu(6, 10), 1), (conv2d_relu(6, 10, stride=2), 2)):
        assert sorted(p.name for p in layer.get_parameters()) == ["bias", "weight"]
        layer.bias.set_data(Tensor(np.linspace(-1, 1, 10, dtype=np.float32)))
        expected = ops.relu(ops.conv2d(x, layer.weight, layer.bias, pad_mode="pad", padding=1, stride=stride))
        np.testing.assert_allclose(layer(x).asnumpy(), expected.asnumpy(), atol=2e-5)
    assert isinstance(conv2d_relu(6, 10), DenseConv3x3) and not isinstance(conv2d_relu(6, 10, stride=2), DenseConv3x3)


def test_dense_layer_keeps_conv2d_parameters_and_bias():
    layer = conv2d(6, 10, 3, bias=True)
    assert isinstance(layer, DenseConv3x3)
    assert sorted(p.name for p in layer.get_parameters()) == ["bias", "weight"]
    assert layer.weight.shape == (10, 6, 3, 3)
    for other in (conv2d(6, 10, 3, stride=2), conv2d(6, 10, 1), conv2d(6, 10, 3, dilation=2),
                  conv2d(6, 10, 3, groups=2), conv2d(256, 64, 3)):
        assert type(other) is nn.Conv2d
    x = Tensor(np.random.default_rng(2).standard_normal((2, 6, 11, 13)).astype(np.float32))
    layer.bias.set_data(Tensor(np.arange(10, dtype=np.float32)))
    expected = ops.conv2d(x, layer.weight, layer.bias, pad_mode="pad", padding=1)
    np.testing.assert_allclose(layer(x).asnumpy(), expected.asnumpy(), atol=2e-5)


def test_dense_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    net = kernels.Conv3x3()
    assert not net.use_kernel
    x, w, _ = _dense_case(1, 4, 5, 9, 9)
    np.testing.assert_allclose(net(x, w).asnumpy(), DenseConv()(x, w).asnumpy(), atol=1e-6)


class GateFormula(nn.Cell):
    """The MindSpore-ops gate the kernel replaces (``restormer.gated_gelu``: split, exact erf GELU)."""

    def construct(self, u):
        return gated_gelu(u)


class GateWithGrad(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation(sens_param=True)(net)

    def construct(self, u, g):
        return self.net(u), self.grad(u, g)


@pytest.mark.parametrize("shape", [(2, 8, 7, 9), (1, 2, 1, 1), (3, 6, 16, 21), (2, 16, 48, 64)])
def test_gated_gelu_matches_erf_formula(shape):
    rng = np.random.default_rng(3)
    u = rng.standard_normal(shape).astype(np.float32) * 3
    u.reshape(-1)[:8] = [0.0, -0.0, 1e-4, -1e-4, 9.0, -9.0, 40.0, -40.0][: u.size]  # tails and zero
    g = rng.standard_normal((shape[0], shape[1] // 2) + shape[2:]).astype(np.float32)
    gate = GatedGELU()  # the cell the models use
    assert gate.use_kernel
    ours = GateWithGrad(gate)(Tensor(u), Tensor(g))
    ref = GateWithGrad(GateFormula())(Tensor(u), Tensor(g))
    for a, b, name in zip(ours, ref, ("y", "du")):
        a, b = a.asnumpy(), b.asnumpy()
        assert a.shape == b.shape, name
        assert np.isfinite(a).all(), name
        err = np.abs(a - b).max()
        assert err <= 1e-6 * max(1.0, float(np.abs(b).max())), f"{name}: {err}"


@pytest.mark.parametrize("cell, case, tol", [
    ("Depthwise3x3", lambda: _case((2, 6, 64, 96), seed=1), 1e-6),  # 74k elements: two threads unless limited
    ("Conv3x3", lambda: _dense_case(2, 16, 16, 64, 96, seed=1), 1e-5),
])
def test_single_thread_gives_the_same_result(cell, case, tol):
    x, w, g = case()
    before = [t.asnumpy() for t in WithGrads(getattr(kernels, cell)())(x, w, g)]
    kernels.set_threads(1)
    try:
        after = [t.asnumpy() for t in WithGrads(getattr(kernels, cell)())(x, w, g)]
    finally:
        kernels.set_threads(None)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_layer_keeps_conv2d_parameters_and_bias():
    layer = conv2d(8, 8, 3, bias=True, groups=8)
    assert isinstance(layer, DepthwiseConv3x3)
    assert sorted(p.name for p in layer.get_parameters()) == ["bias", "weight"]
    assert layer.weight.shape == (8, 1, 3, 3)
    assert not isinstance(conv2d(8, 8, 3, groups=8, stride=2), DepthwiseConv3x3)
    assert not isinstance(conv2d(8, 16, 3, groups=8), DepthwiseConv3x3)
    x = Tensor(np.random.default_rng(2).standard_normal((2, 8, 11, 13)).astype(np.float32))
    layer.bias.set_data(Tensor(np.arange(8, dtype=np.float32)))
    expected = ops.conv2d(x, layer.weight, layer.bias, pad_mode="pad", padding=1, groups=8)
    np.testing.assert_allclose(layer(x).asnumpy(), expected.asnumpy(), atol=2e-6)


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    assert not kernels.enabled()
    net = kernels.Depthwise3x3()
    assert not net.use_kernel
    x, w, _ = _case((1, 4, 9, 9))
    np.testing.assert_allclose(net(x, w).asnumpy(), GroupedConv()(x, w).asnumpy(), atol=1e-6)


def test_build_is_cached_and_keyed(tmp_path, monkeypatch):
    monkeypatch.setenv(kernels.ENV_CACHE, str(tmp_path))
    first = kernels.build_library()
    assert first.parent == tmp_path and first.suffix == ".so"
    mtime = first.stat().st_mtime_ns
    assert kernels.build_library() == first and first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left behind


def test_missing_compiler_falls_back_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(kernels.ENV_CACHE, str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(kernels.KernelBuildError, match="no-such-compiler-xyz"):
        kernels.build_library()
    monkeypatch.setattr(kernels, "_library", None)
    monkeypatch.setattr(kernels, "_build_failed", False)
    with caplog.at_level(logging.WARNING, logger="ms_osr.kernels"):
        assert kernels.library() is None
        assert not kernels.enabled()
        assert kernels.library() is None
    warnings = [r for r in caplog.records if "CPU kernels unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "no-such-compiler-xyz" in warnings[0].getMessage()
    assert not list(tmp_path.iterdir())


def test_compile_error_names_the_source(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "broken.cc").write_text("this is not C++\n")
    monkeypatch.setenv(kernels.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "SOURCE_DIR", tmp_path / "src")
    with pytest.raises(kernels.KernelBuildError, match="broken.cc"):
        kernels.build_library()
    assert not list((tmp_path / "cache").iterdir())  # the temporary output was removed


def test_mindir_export_does_not_depend_on_the_kernels(tmp_path):
    from ms_osr.export import export_mindir
    from ms_osr.registry import create_model

    ms.set_seed(0)
    net = create_model("restormer", dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])
    net.set_train(False)
    x = Tensor(np.random.default_rng(4).random((1, 3, 32, 32), dtype=np.float32))
    before = net(x).asnumpy()
    ms.export(net, x, file_name=str(tmp_path / "plain"), file_format="MINDIR")
    plain = (tmp_path / "plain.mindir").read_bytes()
    assert b"MsOsrDw3x3" in plain and b"MsOsrConv3x3" in plain  # what export_mindir must avoid
    rep = export_mindir(net, str(tmp_path / "portable.mindir"), (32, 32))
    data = (tmp_path / "portable.mindir").read_bytes()
    assert b"MsOsr" not in data and b"Conv2D" in data
    assert rep.max_abs_diff <= 1e-5
    kernel_cells = [c for _, c in net.cells_and_names() if hasattr(c, "use_kernel")]
    assert kernel_cells and all(c.use_kernel for c in kernel_cells)  # switched back after the export
    np.testing.assert_array_equal(net(x).asnumpy(), before)


@pytest.mark.parametrize("cell, case, atol", [
    ("Depthwise3x3", lambda: _case((2, 6, 9, 11), seed=5), 1e-5),
    ("Conv3x3", lambda: _dense_case(2, 6, 5, 9, 11, seed=5), 1e-4),
])
def test_pynative_mode_gradients(monkeypatch, cell, case, atol):
    """Both kernels' gradients (input and weight) in PYNATIVE mode equal MindSpore's own convs'."""
    x, w, _ = case()
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        ours = getattr(kernels, cell)()
        monkeypatch.setenv(kernels.ENV_SWITCH, "0")
        stock = getattr(kernels, cell)()
        assert ours.use_kernel and not stock.use_kernel
        grads = [ms.grad(lambda a, b, net=net: net(a, b).sum(), grad_position=(0, 1))(x, w) for net in (ours, stock)]
    finally:
        ms.set_context(mode=mode)
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), atol=atol)


def test_cache_falls_back_to_temp_when_home_is_not_writable(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("a file where the cache folder would go\n")  # mkdir under it fails
    monkeypatch.delenv(kernels.ENV_CACHE, raising=False)
    monkeypatch.setattr(kernels.Path, "home", classmethod(lambda cls: home))
    monkeypatch.setattr(kernels.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert kernels._cache_dir().parent == tmp_path / "tmp"


def test_dense_blocks_of_parts_train_like_stock_ops(monkeypatch):
    """Two GridDehazeNet dense blocks of different widths in one graph (fused convs of 1-4 parts, the same arity
    with different channel counts): the gradients of every parameter equal those with MindSpore's own ops.
    (One graph holding several ops of one name once mixed up their shapes: each must infer from its inputs.)"""
    from mindspore import Parameter

    from ms_osr.models.griddehazenet import RDB

    class TwoBlocks(nn.Cell):
        def __init__(self):
            super().__init__()
            self.narrow, self.wide = RDB(8, 4, 4), RDB(12, 4, 6)
            self.widen = Parameter(Tensor(np.linspace(-1, 1, 12 * 8, dtype=np.float32).reshape(12, 8, 1, 1)))

        def construct(self, x):
            return self.wide(ops.conv2d(self.narrow(x), self.widen)).sum()

    rng = np.random.default_rng(7)
    x = Tensor(rng.standard_normal((2, 8, 13, 29)).astype(np.float32))
    ours = TwoBlocks()
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    stock = TwoBlocks()
    assert any(getattr(c, "parts", None) for _, c in ours.cells_and_names())
    assert not any(getattr(c, "use_kernel", False) for _, c in stock.cells_and_names())
    for p, q in zip(ours.get_parameters(), stock.get_parameters()):
        q.set_data(Tensor(rng.standard_normal(p.shape).astype(np.float32) * 0.3))
        p.set_data(q.data.copy())
    grads = [ms.grad(net, None, net.trainable_params())(x) for net in (ours, stock)]
    for p, a, b in zip(ours.trainable_params(), *grads):
        a, b = a.asnumpy(), b.asnumpy()
        assert np.abs(a - b).max() <= 1e-4 * max(1.0, float(np.abs(b).max())), p.name
