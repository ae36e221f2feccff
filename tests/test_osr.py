"""OSR: the official residual Net (parity, names, both checkpoint forms) and the reprogramming wrapper."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ms_osr.build import create_model, load_weights
from ms_osr.checkpoint import CheckpointError, load_arrays_into_net, load_checkpoint, save_checkpoint
from ms_osr.convert import convert_state_dict
from ms_osr.models.osr import OSR, wave_angle, wave_magnitude
from ms_osr.registry import list_models
from torch_ref import parity_report
from torch_ref.osr_ref import OSRRef
from torch_ref.osr_resnet_ref import OSRNetRef

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICIAL_NAMES = (["conv_input_3.weight", "conv_input_3.bias"]
                  + [f"res_{k}.conv{c}.weight" for k in (1, 2) for c in (1, 2)]
                  + ["conv_up_1.weight", "conv_up_1.bias"]
                  + [f"res_{k}.conv{c}.weight" for k in (3, 4) for c in (1, 2)]
                  + ["conv_up_2.weight", "conv_up_2.bias"]
                  + [f"res_{k}.conv{c}.weight" for k in (5, 6, 7, 8) for c in (1, 2)]
                  + ["conv_down_1.weight", "conv_down_1.bias"]
                  + [f"res_{k}.conv{c}.weight" for k in (9, 10) for c in (1, 2)]
                  + ["conv_down_2.weight", "conv_down_2.bias"]
                  + [f"res_{k}.conv{c}.weight" for k in (11, 12) for c in (1, 2)]
                  + ["conv_out_3.weight", "conv_out_3.bias"])


def _run_ref(ref, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return ref(torch.from_numpy((x - 0.5) / 0.5)).numpy()  # official loaders normalise with 0.5/0.5


@pytest.fixture(scope="module")
def ref():
    torch.manual_seed(0)
    return OSRNetRef().eval()


@pytest.fixture(scope="module")
def ms_net(ref):
    net = create_model("osr_resnet")
    net.set_train(False)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    load_arrays_into_net(net, convert_state_dict(net, sd))
    return net


# ---------------------------------------------------------------- official residual network


def test_registry_and_sizes():
    names = set(list_models())
    assert {"osr", "osr_small", "osr_resnet", "osr_resnet_small", "griddehazenet", "griddehazenet_small"} <= names
    net = create_model("osr_resnet")
    params = net.parameters_dict()
    assert sum(int(p.size) for p in params.values()) == 738819
    assert len(params) == 36
    assert list(params) == OFFICIAL_NAMES  # official names, official order
    assert net.size_multiple == 1
    assert create_model("osr_small").size_multiple == 1


@pytest.mark.parametrize("shape", [(1, 3, 17, 23), (2, 3, 24, 24), (1, 3, 31, 16)])
def test_net_parity(ref, ms_net, shape):
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    rep = parity_report(ms_net(ms.Tensor(x)).asnumpy(), _run_ref(ref, x))
    assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, rep


def test_net_both_checkpoint_forms(ref, tmp_path):
    """Authors' MindSpore files (torch names + 'module.') and plain PyTorch state_dicts load strictly."""
    x = np.random.default_rng(2).random((1, 3, 19, 21), dtype=np.float32)
    expected = _run_ref(ref, x)
    # 1. translate.py style: names copied verbatim from the DataParallel state_dict into a .ckpt.
    authors = tmp_path / "ms_derain_derain_best.ckpt"
    ms.save_checkpoint([{"name": "module." + k, "data": ms.Tensor(v.numpy())} for k, v in ref.state_dict().items()],
                       str(authors))
    # 2. a plain PyTorch state_dict.
    plain = tmp_path / "derain_derain_best.pth"
    torch.save(ref.state_dict(), str(plain))
    for path in (authors, plain):
        net = create_model("osr_resnet")
        net.set_train(False)
        load_weights(net, str(path))  # .ckpt or PyTorch file
        rep = parity_report(net(ms.Tensor(x)).asnumpy(), expected)
        assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, (path.name, rep)
    # A checkpoint with one tensor renamed must not load by suffix: strict error listing both names.
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    sd["module.extra.res_1.conv1.weight"] = sd.pop("res_1.conv1.weight")
    bad = tmp_path / "bad.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in sd.items()], str(bad))
    with pytest.raises(CheckpointError, match="1 missing, 1 unexpected"):
        load_checkpoint(create_model("osr_resnet"), str(bad))


def test_net_dataparallel_pth_cli(ref, tmp_path):
    src = tmp_path / "derain_derain_best"  # official torch.save name, no extension
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, str(src))
    dst = tmp_path / "net.ckpt"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_pth.py"), "--model", "osr_resnet",
                           "--src", str(src), "--dst", str(dst)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "36 tensors, 738,819 parameters" in proc.stdout
    net = create_model("osr_resnet")
    net.set_train(False)
    load_checkpoint(net, str(dst))
    x = np.random.default_rng(3).random((2, 3, 16, 13), dtype=np.float32)
    rep = parity_report(net(ms.Tensor(x)).asnumpy(), _run_ref(ref, x))
    assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, rep


# ---------------------------------------------------------------- stable magnitude / angle


class _Polar(nn.Cell):
    def construct(self, re, im):
        return wave_magnitude(re, im), wave_angle(re, im, 1e-3)


def _sum_magnitude(re, im):
    return wave_magnitude(re, im).sum()


def _sum_angle(re, im):
    return wave_angle(re, im, 1e-3).sum()


def test_magnitude_angle_values_and_gradients():
    rng = np.random.default_rng(4)
    re = rng.normal(size=(64,)).astype(np.float32)
    im = rng.normal(size=(64,)).astype(np.float32)
    re[:4] = 0.0
    im[:4] = 0.0  # origin
    re[4], im[4] = -1.0, 0.0  # branch cut: atan2(0, -1) = pi
    polar = _Polar()
    mag, ang = polar(ms.Tensor(re), ms.Tensor(im))
    np.testing.assert_allclose(mag.asnumpy(), np.hypot(re, im), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ang.asnumpy(), np.arctan2(im, re), rtol=1e-6, atol=1e-6)
    g_mag = ms.grad(_sum_magnitude, grad_position=(0, 1))(ms.Tensor(re), ms.Tensor(im))
    g_ang = ms.grad(_sum_angle, grad_position=(0, 1))(ms.Tensor(re), ms.Tensor(im))
    for g in (*g_mag, *g_ang):
        assert np.isfinite(g.asnumpy()).all()
        np.testing.assert_array_equal(g.asnumpy()[:4], 0.0)  # zero amplitude: zero, not NaN
    r = np.hypot(re, im)[4:]
    np.testing.assert_allclose(g_mag[0].asnumpy()[4:], re[4:] / r, rtol=1e-5)
    # Away from the origin the angle gradient is the exact one up to the eps^2 regulariser.
    np.testing.assert_allclose(g_ang[0].asnumpy()[4:], -im[4:] / (r ** 2 + 1e-6), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g_ang[1].asnumpy()[4:], re[4:] / (r ** 2 + 1e-6), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- reprogramming wrapper


@pytest.fixture(scope="module")
def osr_small():
    net = create_model("osr_small")
    net.set_train(False)
    return net


def test_wrapper_is_identity_at_init(osr_small):
    """With its adapters at initialisation the wrapper returns exactly the plain restorer's output."""
    x = ms.Tensor(np.random.default_rng(5).random((2, 3, 20, 17), dtype=np.float32))
    out = osr_small(x).asnumpy()
    plain = osr_small.restorer(x).asnumpy()
    assert out.shape == (2, 3, 20, 17)
    assert np.abs(out - plain).max() <= 1e-6


def test_wrapper_freeze_and_restorer_forms(tmp_path):
    frozen = create_model("osr_small")
    trainable = create_model("osr_small", freeze_restorer=False)
    n_restorer = sum(int(p.size) for p in frozen.restorer.get_parameters())
    n_frozen = sum(int(p.size) for p in frozen.trainable_params())
    assert n_restorer == 46467
    assert sum(int(p.size) for p in trainable.trainable_params()) == n_frozen + n_restorer
    assert all(not p.name.startswith("restorer.") for p in frozen.trainable_params())
    # Restorer from a checkpoint (strict) and restorer given as a Cell.
    donor = create_model("osr_resnet_small")
    path = tmp_path / "restorer.ckpt"
    save_checkpoint(donor, str(path))
    loaded = create_model("osr_small", restorer_ckpt=str(path))
    for name, p in donor.parameters_dict().items():
        np.testing.assert_array_equal(loaded.parameters_dict()["restorer." + name].asnumpy(), p.asnumpy())
    cell = create_model("griddehazenet_small")
    wrapped = OSR(restorer=cell, adapter_channels=8, fusion_channels=8)
    assert wrapped.restorer is cell
    assert wrapped.size_multiple == 1
    with pytest.raises(CheckpointError):
        create_model("osr", restorer="griddehazenet_small", restorer_ckpt=str(path))  # wrong architecture
    with pytest.raises(ValueError, match="plain restorer"):
        OSR(restorer=wrapped)


def _local(name: str) -> str:
    """Parameter names gain the loss cell's ``net.`` prefix once the model is wrapped."""
    return name[len("net."):] if name.startswith("net.") else name


class _Loss(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x, target):
        return ops.abs(self.net(x) - target).mean()


def _grads_at_zero(net):
    loss = _Loss(net)
    params = net.trainable_params()
    grad_fn = ms.value_and_grad(loss, grad_position=0, weights=params)
    x = ms.Tensor(np.zeros((1, 3, 12, 12), np.float32))
    target = ms.Tensor(np.full((1, 3, 12, 12), 0.5, np.float32))
    value, (g_x, g_w) = grad_fn(x, target)
    assert np.isfinite(value.asnumpy())
    assert np.isfinite(g_x.asnumpy()).all()
    bad = [p.name for p, g in zip(params, g_w) if not np.isfinite(g.asnumpy()).all()]
    assert not bad, bad
    return {_local(p.name): g.asnumpy() for p, g in zip(params, g_w)}


def test_gradients_finite_at_zero_input_and_zero_feature():
    # Initial adapters, trainable restorer: z = 0 at every pixel of the all-zero input.
    grads = _grads_at_zero(create_model("osr_small", freeze_restorer=False))
    assert np.abs(grads["output_transform.proj.weight"]).max() > 0
    # Perturbed adapters, and a bias-free restorer without input normalisation so that the
    # restored wave is 0 as well (zero magnitude in the output transform too).
    net = create_model("osr_small", restorer="osr_resnet", restorer_kwargs={"width": 0.25, "input_norm": False},
                       freeze_restorer=False)
    rng = np.random.default_rng(6)
    for p in net.get_parameters():
        if p.name.startswith("restorer.") and p.name.endswith(".bias"):
            p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
        elif not p.name.startswith("restorer."):
            p.set_data(ms.Tensor(rng.normal(0, 0.1, p.shape).astype(np.float32)))
    net.input_transform.proj_real.weight.set_data(ms.Tensor(np.zeros((3, 3, 1, 1), np.float32)))
    net.input_transform.proj_imag.weight.set_data(ms.Tensor(np.zeros((3, 3, 1, 1), np.float32)))
    for cell in (net.input_transform.amplitude_enhancer, net.input_transform.phase_adapter):
        for p in cell.get_parameters():
            p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
    real, imag, _ = net.input_transform(ms.Tensor(np.zeros((1, 3, 12, 12), np.float32)))
    assert np.abs(real.asnumpy()).max() == 0 and np.abs(imag.asnumpy()).max() == 0
    assert np.abs(net.restorer(real).asnumpy()).max() == 0
    _grads_at_zero(net)


def test_wrapper_trains_on_cpu():
    """A few Adam steps reduce the loss; the phase adapter receives gradient once the output branch is live."""
    net = create_model("osr_small")
    net.set_train(True)
    loss_net = _Loss(net)
    opt = nn.Adam(net.trainable_params(), learning_rate=2e-3)
    grad_fn = ms.value_and_grad(loss_net, None, opt.parameters)

    @ms.jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        opt(grads)
        return loss, grads

    rng = np.random.default_rng(7)
    clean = rng.random((4, 3, 24, 24), dtype=np.float32)
    noisy = np.clip(clean * 0.6 + 0.3, 0, 1).astype(np.float32)  # an unseen "degradation": contrast loss
    x, y = ms.Tensor(noisy), ms.Tensor(clean)
    names = [_local(p.name) for p in opt.parameters]
    losses = []
    for _ in range(25):
        loss, grads = step(x, y)
        losses.append(float(loss.asnumpy()))
    g = dict(zip(names, grads))
    assert losses[-1] < 0.9 * losses[0], losses
    assert np.abs(g["input_transform.phase_adapter.conv_out.weight"].asnumpy()).max() > 0


class _NormalisedNetRef(OSRNetRef):
    """The MindSpore Net normalises ([0,1] -> [-1,1]) inside; the reference expects it done."""

    def forward(self, x):
        return super().forward((x - 0.5) / 0.5)


def test_wrapper_matches_documented_formulas():
    """Perturbed (trained-like) adapters: the GRAPH_MODE wrapper equals the PyTorch twin written from docs/osr.md."""
    net = create_model("osr_small")
    net.set_train(False)
    rng = np.random.default_rng(8)
    for p in net.get_parameters():
        if not p.name.startswith("restorer."):
            p.set_data(ms.Tensor((p.asnumpy() + rng.normal(0, 0.2, p.shape)).astype(np.float32)))
    sd = {k: torch.from_numpy(v.asnumpy()) for k, v in net.parameters_dict().items()}
    ref = OSRRef(_NormalisedNetRef(width=0.25), adapter_channels=16, fusion_channels=16).eval()
    ref.load_state_dict(sd)  # every name and shape: the twin has the MindSpore parameter names
    for shape in [(2, 3, 16, 21), (1, 3, 19, 19)]:
        x = rng.random(shape, dtype=np.float32)
        x[:, :, :3, :3] = 0.0  # black pixels: zero amplitude before enhancement
        with torch.no_grad():
            expected = ref(torch.from_numpy(x)).numpy()
        out = net(ms.Tensor(x)).asnumpy()
        rep = parity_report(out, expected)
        assert np.abs(out - net.restorer(ms.Tensor(x)).asnumpy()).max() > 1e-2  # really reprogrammed
        assert rep["max_abs"] <= 1e-4 and rep["mean_abs"] <= 1e-6, rep


def test_harm_gate_weighs_the_restoration_and_learns_to_leave_clean_input_alone():
    """harm_gate=True: output = x + g (y - x) with one g in (0, 1) per image; trained on clean pairs
    (target = input) its g falls; without the option the wrapper has no gate parameters."""
    net = create_model("osr_small", harm_gate=True)
    net.set_train(True)
    rng = np.random.default_rng(9)
    x = ms.Tensor(rng.random((3, 3, 24, 24), dtype=np.float32))
    y = net.reprogrammed(x)
    g = net.harm_gate.weight(x, y).asnumpy()
    assert g.shape == (3, 1, 1, 1) and np.allclose(g, 1 / (1 + np.exp(-3.0)), atol=1e-6)  # zero fc2 weight
    expected = x.asnumpy() + g * (y.asnumpy() - x.asnumpy())
    assert np.abs(net(x).asnumpy() - expected).max() <= 1e-6
    opt = nn.Adam([p for p in net.trainable_params() if p.name.startswith("harm_gate.")], learning_rate=5e-2)
    grad_fn = ms.value_and_grad(_Loss(net), None, opt.parameters)

    @ms.jit
    def step(inp, target):
        loss, grads = grad_fn(inp, target)
        opt(grads)
        return loss

    losses = [float(step(x, x).asnumpy()) for _ in range(20)]  # clean pairs: leaving x alone is right
    assert losses[-1] < 0.5 * losses[0], losses
    assert net.harm_gate.weight(x, net.reprogrammed(x)).asnumpy().max() < 0.5
    assert create_model("osr_small").trainable_params()[0].name == "input_transform.proj_real.weight"
    assert not any(p.name.startswith("harm_gate.") for p in create_model("osr_small").get_parameters())


def test_gate_supervision_loss_value_gradients_and_refusals():
    """train.loss.gate_supervision: L1 of the gated output + w x BCE(gate, degraded?) from the one-hot labels."""
    from ms_osr.training.step import LossNet

    net = create_model("osr_small", harm_gate=True, gate_start_logit=0.5)
    net.set_train(True)
    rng = np.random.default_rng(10)
    x, y = (ms.Tensor(rng.random((3, 3, 24, 24), dtype=np.float32)) for _ in range(2))
    classes = ["haze", "identity", "rain"]
    onehot = np.eye(3, dtype=np.float32)[[2, 1, 0]]  # rain, clean, haze
    loss_net = LossNet(net, {"type": "l1", "gate_supervision": 0.5}, classes)
    out, z = net.restore_with_gate(x)
    z = z.asnumpy().ravel()
    target = np.array([1.0, 0.0, 1.0])
    bce = np.mean(-target * np.log(1 / (1 + np.exp(-z))) - (1 - target) * np.log(1 - 1 / (1 + np.exp(-z))))
    expected = np.abs(out.asnumpy() - y.asnumpy()).mean() + 0.5 * bce
    assert abs(float(loss_net(x, y, ms.Tensor(onehot)).asnumpy()) - expected) < 1e-5
    grads = ms.grad(loss_net, None, net.trainable_params())(x, y, ms.Tensor(onehot))
    named = dict(zip([p.name for p in net.trainable_params()], grads))
    # the label term reaches the gate (its convs once fc2, zero at the start, has moved)
    assert np.abs(named["harm_gate.fc2.weight"].asnumpy()).max() > 0
    with pytest.raises(ValueError, match="harm_gate: true"):
        LossNet(create_model("osr_small"), {"type": "l1", "gate_supervision": 0.5}, classes)
    with pytest.raises(ValueError, match="needs clean pairs"):
        LossNet(net, {"type": "l1", "gate_supervision": 0.5}, ["haze", "rain"])
