"""GridDehazeNet: PyTorch parity in GRAPH_MODE, official names/sizes, DataParallel checkpoint conversion."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ms_osr import kernels
from ms_osr.checkpoint import load_arrays_into_net, load_checkpoint
from ms_osr.convert import convert_state_dict
from ms_osr.registry import create_model, list_models
from torch_ref import parity_report
from torch_ref.griddehazenet_ref import GridDehazeNetRef

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(depth_rate=8, height=3, width=4, num_dense_layer=2, growth_rate=8)
# Same channels as the small config but the full 3x6 grid, so every grid loop runs more than once.
TINY_3X6 = dict(depth_rate=4, height=3, width=6, num_dense_layer=2, growth_rate=4)


def _torch_ref(seed: int, **kw) -> GridDehazeNetRef:
    torch.manual_seed(seed)
    ref = GridDehazeNetRef(**kw).eval()
    with torch.no_grad():  # non-trivial fusion weights (official init is all ones)
        ref.coefficient.uniform_(0.5, 1.5)
    return ref


def _state(ref) -> dict:
    return {k: v.detach().numpy() for k, v in ref.state_dict().items()}


def _ms_from_ref(ref, name: str, **kw):
    net = create_model(name, **kw)
    net.set_train(False)
    load_arrays_into_net(net, convert_state_dict(net, _state(ref)))
    return net


def _compare(ref, net, shape, seed=0) -> dict:
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy((x - 0.5) / 0.5)).numpy()  # official loaders normalise outside
    out = net(ms.Tensor(x)).asnumpy()
    assert out.shape == shape
    return parity_report(out, expected)


@pytest.fixture(scope="module")
def small_pair():
    ref = _torch_ref(1, **SMALL)
    return ref, _ms_from_ref(ref, "griddehazenet_small")


def test_registered_and_graph_mode():
    assert {"griddehazenet", "griddehazenet_small"} <= set(list_models())
    assert ms.get_context("mode") == ms.GRAPH_MODE
    assert create_model("griddehazenet_small").size_multiple == 1


@pytest.mark.parametrize("shape", [(1, 3, 17, 23), (2, 3, 32, 32), (1, 3, 20, 26)])
def test_parity_small(small_pair, shape):
    ref, net = small_pair
    rep = _compare(ref, net, shape)
    assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, rep


def test_parity_full_grid_tiny_channels():
    ref = _torch_ref(2, **TINY_3X6)
    net = _ms_from_ref(ref, "griddehazenet", **TINY_3X6)
    rep = _compare(ref, net, (2, 3, 21, 18), seed=1)
    assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, rep


def test_dynamic_shape_one_graph(small_pair):
    """set_inputs with free batch/H/W: one compiled graph serves odd and even sizes, same numbers."""
    ref, _ = small_pair
    net = _ms_from_ref(ref, "griddehazenet_small")
    net.set_inputs(ms.Tensor(shape=[None, 3, None, None], dtype=ms.float32))
    # the C++ kernels (aot Custom ops) have no dynamic-shape inference: MindSpore's convs, as in GraphRunner
    with kernels.stock_ops(net):
        for shape in [(1, 3, 15, 22), (2, 3, 24, 19)]:
            rep = _compare(ref, net, shape, seed=3)
            assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, rep


@pytest.mark.slow
def test_official_size_names_count_and_dataparallel_cli(tmp_path):
    """Official sizes: 958,051 parameters, names 1:1 with PyTorch; a DataParallel file via the CLI."""
    ref = _torch_ref(3)
    net = create_model("griddehazenet")
    net.set_train(False)
    sd = _state(ref)
    assert sum(int(p.size) for p in net.get_parameters()) == 958051
    assert set(net.parameters_dict()) == set(sd)  # no renaming at all
    assert net.parameters_dict()["coefficient"].shape == (3, 6, 2, 64)
    # The official files are DataParallel state_dicts without an extension (indoor_haze_best_3_6).
    src = tmp_path / "indoor_haze_best_3_6"
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, str(src))
    dst = tmp_path / "gdn.ckpt"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_pth.py"), "--model", "griddehazenet",
                           "--src", str(src), "--dst", str(dst)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "958,051 parameters" in proc.stdout
    load_checkpoint(net, str(dst))
    rep = _compare(ref, net, (1, 3, 33, 27), seed=2)
    assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, rep


def test_cli_rejects_wrong_size(tmp_path):
    ref = _torch_ref(4, **SMALL)
    src = tmp_path / "small.pth"
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, str(src))
    dst = tmp_path / "out.ckpt"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_pth.py"), "--model", "griddehazenet",
                           "--src", str(src), "--dst", str(dst)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert "coefficient" in proc.stderr and not dst.exists()


def test_invalid_grid_rejected():
    with pytest.raises(ValueError, match="height >= 2 and width >= 4"):
        create_model("griddehazenet", width=2)


def test_channel_weighted_sum_gradients_match_autodiff():
    """The fusion (a C++ kernel on CPU) gives the formula's output, and its own bprop (batched dot products
    instead of ReduceSum) autodiff's gradients."""
    from ms_osr.models.griddehazenet import ChannelWeightedSum

    class Formula(nn.Cell):
        def construct(self, wa, a, wb, b):
            return wa * a + wb * b

    rng = np.random.default_rng(5)
    wa, wb = (ms.Tensor(rng.standard_normal((1, 6, 1, 1)).astype(np.float32)) for _ in range(2))
    a, b, g = (ms.Tensor(rng.standard_normal((3, 6, 9, 13)).astype(np.float32)) for _ in range(3))
    grad = ops.GradOperation(get_all=True, sens_param=True)
    ours, ref = grad(ChannelWeightedSum())(wa, a, wb, b, g), grad(Formula())(wa, a, wb, b, g)
    cell = ChannelWeightedSum()
    assert cell.use_kernel == kernels.enabled()  # the one-pass C++ kernel on CPU; a fused multiply-add rounds once
    np.testing.assert_allclose(cell(wa, a, wb, b).asnumpy(), Formula()(wa, a, wb, b).asnumpy(), rtol=1e-6, atol=1e-6)
    for name, x, y in zip(("wa", "a", "wb", "b"), ours, ref):
        assert x.shape == y.shape, name
        np.testing.assert_allclose(x.asnumpy(), y.asnumpy(), rtol=1e-5, atol=1e-4, err_msg=name)


class _MeanOutput(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x):
        return self.net(x).mean()


def test_training_gradients_match_stock_ops(monkeypatch):
    """Every parameter's gradient with the C++ kernels (dense, strided and transposed convs, the fusion) equals the
    one with MindSpore's own operators, at an odd size that cuts the up-sampling to the skip connection's size."""
    rng = np.random.default_rng(11)
    x = ms.Tensor(rng.random((2, 3, 21, 30)).astype(np.float32))
    ours = create_model("griddehazenet_small")
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    stock = create_model("griddehazenet_small")
    assert not any(getattr(c, "use_kernel", False) for _, c in stock.cells_and_names())
    assert sum(getattr(c, "use_kernel", False) for _, c in ours.cells_and_names()) > 10
    for p, q in zip(ours.get_parameters(), stock.get_parameters()):
        q.set_data(ms.Tensor(rng.standard_normal(p.shape).astype(np.float32) * 0.2 + (1 if p.name == "coefficient" else 0)))
        p.set_data(q.data.copy())
    grads = [ms.grad(_MeanOutput(net), None, net.trainable_params())(x) for net in (ours, stock)]
    for p, a, b in zip(ours.trainable_params(), *grads):
        a, b = a.asnumpy(), b.asnumpy()
        assert np.abs(a - b).max() <= 1e-4 * max(1.0, float(np.abs(b).max())), p.name
