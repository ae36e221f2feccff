"""OSR readings of "decouple the image into a wave function": per-pixel wave, 2-D spectrum, and both real
terms as the restorer's input channels.

Each variant compiles in GRAPH_MODE, equals the plain restorer at initialisation, passes gradients
into its phase path, and its ablation switches turn exactly one path off while keeping the weights.
"""
import numpy as np
import pytest

import ms_osr  # noqa: F401
import mindspore as ms
import mindspore.ops as ops

from ms_osr.models.osr import OSR, spectral_coordinates
from ms_osr.registry import create_model

VARIANTS = ("wave", "fourier", "channels")


def _osr(transform, **kw):
    ms.set_seed(0)
    return OSR(restorer="osr_resnet_small", adapter_channels=8, fusion_channels=8, transform=transform, **kw)


def _x(h=20, w=27, b=2, seed=0):
    return ms.Tensor(np.random.default_rng(seed).random((b, 3, h, w)).astype(np.float32))


@pytest.mark.parametrize("transform", VARIANTS)
def test_identity_at_initialisation_any_size(transform):
    ms.set_context(mode=ms.GRAPH_MODE)
    net = _osr(transform)
    for h, w in ((20, 27), (17, 16)):  # odd and even sides: rfft2/irfft2 round trip must be exact
        x = _x(h, w)
        assert float(ops.abs(net(x) - net.restorer(x)).max()) < 2e-6


@pytest.mark.parametrize("transform", VARIANTS)
def test_gradients_reach_the_phase_path(transform):
    ms.set_context(mode=ms.GRAPH_MODE)
    net = _osr(transform)
    x = _x()
    target = ops.clip_by_value(x + 0.2 * ops.sin(6.0 * x), 0.0, 1.0)
    params = net.trainable_params()
    assert not any(p.name.startswith("restorer.") for p in params)  # frozen restorer

    def loss(x, t):
        return ops.abs(net(x) - t).mean()

    grads = dict(zip([p.name for p in params], ms.grad(loss, grad_position=None, weights=params)(x, target)))
    phase = [n for n in grads if "phase_adapter.conv_out" in n]
    assert phase and all(float(ops.norm(grads[n])) > 0 for n in phase)
    amp = [n for n in grads if "amplitude_enhancer.conv_out" in n]
    assert amp and all(float(ops.norm(grads[n])) > 0 for n in amp)


@pytest.mark.slow
@pytest.mark.parametrize("transform", VARIANTS)
@pytest.mark.parametrize("path", ["use_phase", "use_amplitude", "use_fusion"])
def test_ablation_switch_removes_one_path_and_keeps_weights(transform, path):
    ms.set_context(mode=ms.GRAPH_MODE)
    full = _osr(transform)
    # give every zero-initialised tail weights so that each path changes the output
    for p in full.trainable_params():
        if np.all(p.asnumpy() == 0):
            p.set_data(ms.Tensor(np.random.default_rng(1).normal(0, 0.05, p.shape).astype(np.float32)))
    off = _osr(transform, **{path: False})
    assert sorted(p.name for p in off.get_parameters()) == sorted(p.name for p in full.get_parameters())
    ms.load_param_into_net(off, {p.name: ms.Parameter(p.asnumpy(), name=p.name) for p in full.get_parameters()})
    x = _x()
    assert float(ops.abs(full(x) - off(x)).max()) > 1e-4
    # the switched-off path really is gone: zeroing that path's tail in the full model gives the same output
    tail = {"use_phase": "phase_adapter.conv_out", "use_amplitude": "amplitude_enhancer.conv_out",
            "use_fusion": "output_transform.proj"}[path]
    for p in full.get_parameters():
        if tail in p.name:
            p.set_data(ops.zeros(p.shape, p.dtype))
    assert float(ops.abs(full(x) - off(x)).max()) < 1e-5


def _phase_to_amplitude_gradient(net, x, target) -> float:
    """Norm of the L1 gradient at the phase adapter's tail over that at the amplitude enhancer's tail."""
    params = [p for p in net.trainable_params()
              if p.name.endswith(("phase_adapter.conv_out.weight", "amplitude_enhancer.conv_out.weight"))]

    def loss(a, t):
        return ops.abs(net(a) - t).mean()

    grads = ms.grad(loss, grad_position=None, weights=params)(x, target)
    norms = {p.name.split(".")[1]: float(ops.norm(g)) for p, g in zip(params, grads)}
    return norms["phase_adapter"] / norms["amplitude_enhancer"]


def test_channels_reading_gives_the_phase_first_order_gradient():
    """Unlike the per-pixel wave (where the adapted phase cancels for a linear restorer, docs/osr.md §6), the
    channels reading passes the phase to the restorer at first order (d input / d theta = A at theta = 0): at
    initialisation the phase adapter's tail gets a gradient of the same order as the amplitude enhancer's."""
    ms.set_context(mode=ms.GRAPH_MODE)
    x = _x()
    target = ops.clip_by_value(x + 0.2 * ops.sin(6.0 * x), 0.0, 1.0)
    assert _phase_to_amplitude_gradient(_osr("channels"), x, target) > 0.2


def test_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="transform 'hologram' unknown"):
        OSR(restorer="osr_resnet_small", transform="hologram")


def test_spectral_coordinates_match_numpy_frequencies():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    c = spectral_coordinates(6, 4, ms.Tensor(np.zeros(1, np.float32))).asnumpy()
    fy = np.fft.fftfreq(6)
    fx = np.fft.rfftfreq(6)
    assert np.allclose(c[0, 0, :, 0], fy) and np.allclose(c[0, 1, 0, :], fx)
    assert np.allclose(c[0, 2], np.hypot(fy[:, None], fx[None, :]))


def test_osr_resnet_global_skip():
    ms.set_context(mode=ms.GRAPH_MODE)
    plain = create_model("osr_resnet_small")
    skip = create_model("osr_resnet_small", global_skip=True)
    ms.load_param_into_net(skip, {p.name: ms.Parameter(p.asnumpy(), name=p.name) for p in plain.get_parameters()})
    x = _x()
    assert float(ops.abs(skip(x) - (x + plain(x))).max()) < 1e-5
    assert sum(p.size for p in create_model("osr_resnet_half_skip").get_parameters()) == 185091
    assert sum(p.size for p in create_model("osr_resnet_skip").get_parameters()) == 738819


def test_osr_resnet_correction_gate_starts_as_identity_and_learns_to_close_on_clean_pairs(tmp_path):
    """harm_gate=True: out = x + w r with one w per image read from the last features; w = 1 at the start,
    so a checkpoint saved without the gate loads and restores the same image; trained with the label loss
    on clean pairs its w falls; without global_skip it is refused."""
    import mindspore.nn as nn

    from ms_osr.checkpoint import load_checkpoint
    from ms_osr.training.step import LossNet

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    plain = create_model("osr_resnet_small", global_skip=True)
    ms.save_checkpoint(plain, str(tmp_path / "plain.ckpt"))
    gated = create_model("osr_resnet_small", global_skip=True, harm_gate=True)
    load_checkpoint(gated, str(tmp_path / "plain.ckpt"))
    x = _x()
    assert float(ops.abs(gated(x) - plain(x)).max()) == 0.0
    out, z = gated.restore_with_gate(x)
    assert z.shape == (2, 1, 1, 1) and np.allclose(z.asnumpy(), 4.0)
    assert float(ops.abs(out - gated(x)).max()) == 0.0

    classes = ["identity", "rain"]
    clean = ms.Tensor(np.eye(2, dtype=np.float32)[[0, 0]])
    loss_net = LossNet(gated, {"type": "l1", "gate_supervision": 1.0}, classes)
    opt = nn.Adam([p for p in gated.trainable_params() if p.name.startswith("harm_gate.")], learning_rate=5e-2)
    step = ms.value_and_grad(loss_net, None, opt.parameters)
    for _ in range(30):
        _, grads = step(x, x, clean)
        opt(grads)
    w = gated.harm_gate.weight_of(gated.restore_with_gate(x)[1]).asnumpy()
    assert w.max() < 0.5
    # the gated correction is w times the plain one
    r_plain, r_gated = (plain(x) - x).asnumpy(), (gated(x) - x).asnumpy()
    assert np.allclose(r_gated, w * r_plain, atol=1e-5)
    with pytest.raises(ValueError, match="needs global_skip"):
        create_model("osr_resnet_small", harm_gate=True)
