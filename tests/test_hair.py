"""Res-HAIR: structure, per-image weights, GIV API and parity with the PyTorch reference (GRAPH_MODE)."""
import numpy as np
import pytest
import torch

import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
import mindspore as ms
import mindspore.nn as nn

from ms_osr.checkpoint import load_arrays_into_net
from ms_osr.convert import convert_state_dict
from ms_osr.models.hair import MIN_SIZE, ResHAIR
from ms_osr.registry import create_model, list_models
from torch_ref import parity_report
from torch_ref.hair_ref import HAIR
from torch_ref.restormer_ref import padded_forward, randomize_

TINY = dict(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4), num_refinement_blocks=1)
MAX_TOL, MEAN_TOL = 1e-4, 1e-6


def _pair(name, torch_kwargs, seed, hsn_gain=1.0):
    torch.manual_seed(seed)
    tm = randomize_(HAIR(**torch_kwargs), seed=seed).eval()
    with torch.no_grad():  # sharper box selection than a fresh init (whose softmax is ~uniform)
        for n, p in tm.named_parameters():
            if ".extracts." in n and n.endswith("net.6.weight"):
                p.mul_(hsn_gain)
    net = create_model(name)
    net.set_train(False)
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    load_arrays_into_net(net, convert_state_dict(net, sd, source="torch_ref"))
    return tm, net


@pytest.fixture(scope="module")
def tiny():
    return _pair("res_hair_tiny", TINY, seed=1, hsn_gain=30.0)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    a = rng.random((1, 3, 37, 45), dtype=np.float32)
    # A second image with a different degradation-like look (strong noise) -> different GIV.
    b = np.clip(a[:, :, ::-1, :] + 0.4 * rng.standard_normal(a.shape).astype(np.float32), 0, 1)
    return np.concatenate([a, b]).astype(np.float32)


def _torch(tm, x, **kw):
    with torch.no_grad():
        return padded_forward(tm, torch.from_numpy(x), 8, MIN_SIZE, **kw).numpy()


def test_default_structure_matches_official():
    net = create_model("res_hair")
    params = net.parameters_dict()
    assert len(params) == 665
    assert sum(p.size for p in params.values()) == 28_559_846
    boxes = {lvl: tuple(params[f"{lvl}.kernel_box"].shape) for lvl in
             ("latent", "decoder_level3", "decoder_level2", "decoder_level1", "refinement")}
    assert boxes == {"latent": (9, 1794762), "decoder_level3": (6, 455580), "decoder_level2": (7, 117486),
                     "decoder_level1": (5, 117486), "refinement": (5, 117486)}
    assert tuple(params["up4_3.body.0.weight"].shape) == (384, 192, 3, 3)
    assert tuple(params["reduce_chan_level3.weight"].shape) == (192, 288, 1, 1)
    assert tuple(params["reduce_latent.bias"].shape) == (192,)
    assert tuple(params["latent.extracts.7.net.6.weight"].shape) == (9, 12)
    assert sum(p.size for n, p in params.items() if n.startswith("feature.")) == 1_457_160
    assert net.size_multiple == 8 and net.giv_dim == 96
    # Names equal the torch reference's state_dict keys (converter needs no overrides).
    from ms_osr.convert import torch_name_map
    assert set(torch_name_map(net).values()) == set(HAIR().state_dict())


def test_registry_names():
    names = list_models()
    for n in ("res_hair", "res_hair_small", "res_hair_tiny"):
        assert n in names
    small = create_model("res_hair_small")
    assert isinstance(small, ResHAIR)
    # The small config keeps every structure: DAC, per-block HSN, weight boxes on all dynamic levels.
    p = small.parameters_dict()
    assert "feature.mid.attn_1.q.weight" in p and "refinement.extracts.0.net.6.weight" in p
    assert [tuple(p[f"{lvl}.kernel_box"].shape)[0] for lvl in
            ("latent", "decoder_level3", "decoder_level2", "decoder_level1", "refinement")] == [5, 4, 5, 5, 5]


def test_parity_batch2_odd_size(tiny, images):
    tm, net = tiny
    out = net(ms.Tensor(images)).asnumpy()
    ref = _torch(tm, images)
    rep = parity_report(out, ref)
    print("res_hair_tiny 2x3x37x45", rep)
    assert out.shape == images.shape
    assert rep["max_abs"] <= MAX_TOL and rep["mean_abs"] <= MEAN_TOL
    assert np.abs(ref - images).mean() > 0.02  # the network does change the image


def test_per_image_weights(tiny, images):
    """Batch output == images run one by one, and each image really gets its own weights."""
    tm, net = tiny
    x = ms.Tensor(images)
    batch = net(x).asnumpy()
    single = np.concatenate([net(ms.Tensor(images[i:i + 1])).asnumpy() for i in range(2)])
    assert np.abs(batch - single).max() <= 1e-5
    # Random nets give nearly equal GIVs; force clearly different selections with explicit vectors.
    giv = ms.Tensor(np.random.default_rng(9).standard_normal((2, net.giv_dim)).astype(np.float32) * 5)
    alpha = net.latent.extracts[0](giv).asnumpy()
    print("latent block 0 selection per image", np.round(alpha, 3).tolist())
    assert alpha.shape == (2, 5) and np.allclose(alpha.sum(1), 1, atol=1e-6)
    assert np.abs(alpha[0] - alpha[1]).max() > 0.1
    out = net(x, giv).asnumpy()
    one_by_one = np.concatenate([net(ms.Tensor(images[i:i + 1]), giv[i:i + 1]).asnumpy() for i in range(2)])
    assert np.abs(out - one_by_one).max() <= 1e-5
    rep = parity_report(out, _torch(tm, images, giv=torch.from_numpy(giv.asnumpy())))
    print("res_hair_tiny per-image GIVs vs torch", rep)
    assert rep["max_abs"] <= MAX_TOL and rep["mean_abs"] <= MEAN_TOL
    # Image 1 restored with image 0's weights differs from its own result by far more than float noise.
    swapped = net(ms.Tensor(images[1:]), giv[:1]).asnumpy()
    assert np.abs(swapped - one_by_one[1:]).max() > 1e-2


def test_global_vector_api(tiny, images):
    tm, net = tiny
    x = ms.Tensor(images)
    giv = net.global_vector(x)
    assert giv.shape == (2, net.giv_dim)
    with torch.no_grad():
        giv_ref = tm.global_vector(torch.nn.functional.pad(torch.from_numpy(images), (0, 3, 0, 3), mode="reflect"))
    # float32 summation order alone moves single GIV entries (|v| ~0.1-0.4) by ~1e-5 (both LayerNorm
    # formulations measured 1.3e-5 / 1.7e-5 on other random images), so the parity bound applies
    assert np.abs(giv.asnumpy() - giv_ref.numpy()).max() <= MAX_TOL
    # A precomputed GIV reproduces the normal forward; a (1, D) vector is shared by the batch.
    assert np.abs(net(x, giv).asnumpy() - net(x).asnumpy()).max() <= 1e-6
    shared = net(x, giv[:1]).asnumpy()
    assert np.abs(shared[:1] - net(x).asnumpy()[:1]).max() <= 1e-5
    ref_shared = _torch(tm, images, giv=torch.from_numpy(giv[:1].asnumpy()).expand(2, -1))
    assert np.abs(shared - ref_shared).max() <= MAX_TOL


def test_tiny_input_pad_path(tiny):
    """Inputs below the DAC's 32-pixel minimum: reflect as far as possible, then edge replication."""
    tm, net = tiny
    x = np.random.default_rng(5).random((1, 3, 9, 20), dtype=np.float32)
    out = net(ms.Tensor(x)).asnumpy()
    rep = parity_report(out, _torch(tm, x))
    print("res_hair_tiny 1x3x9x20", rep)
    assert out.shape == x.shape and rep["max_abs"] <= MAX_TOL and rep["mean_abs"] <= MEAN_TOL


class _Loss(nn.Cell):
    def __init__(self, net):
        super().__init__(auto_prefix=False)  # keep the wrapped net's parameter names
        self.net = net

    def construct(self, x, wt):
        return (self.net(x) * wt).sum()


def test_gradient_parity(tiny):
    """Gradients through the generated weights (boxes, HSN, DAC) match PyTorch autograd.

    64x64 keeps the DAC's GroupNorm statistics (over 3 channels x bottleneck/4 pixels) well
    conditioned; at 37x45 the DAC runs at 1x1 pixels and its gradients are noise-amplified in both
    frameworks.
    """
    tm, net = tiny
    rng = np.random.default_rng(7)
    images = rng.random((2, 3, 64, 64), dtype=np.float32)
    wt = rng.standard_normal(images.shape).astype(np.float32)
    loss = _Loss(net)
    weights = net.trainable_params()
    names = [p.name for p in weights]
    grad_fn = nn.ForwardValueAndGrad(loss, weights=weights, get_by_list=True)
    _, grads = grad_fn(ms.Tensor(images), ms.Tensor(wt))
    tm.zero_grad()
    (padded_forward(tm, torch.from_numpy(images), 8, MIN_SIZE) * torch.from_numpy(wt)).sum().backward()
    tgrads = dict(tm.named_parameters())
    from ms_osr.convert import torch_name_map
    name_map = torch_name_map(net)
    worst = 0.0
    for name, g in zip(names, grads):
        tg = tgrads[name_map[name]].grad.numpy()
        scale = max(np.abs(tg).max(), 1e-4)  # e.g. attention k-bias gradients are exactly 0
        worst = max(worst, float(np.abs(g.asnumpy() - tg).max() / scale))
    print("res_hair_tiny gradient: worst relative max error", worst)
    assert worst <= 2e-4
    box = dict(zip(names, grads))["latent.kernel_box"].asnumpy()
    assert np.isfinite(box).all() and np.abs(box).max() > 0


@pytest.mark.slow
def test_full_size_parity_64():
    torch.set_num_threads(2)
    tm, net = _pair("res_hair", {}, seed=2)
    x = np.random.default_rng(11).random((1, 3, 64, 64), dtype=np.float32)
    out = net(ms.Tensor(x)).asnumpy()
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    rep = parity_report(out, ref)
    print("res_hair full 1x3x64x64", rep)
    assert rep["max_abs"] <= MAX_TOL and rep["mean_abs"] <= MEAN_TOL


def test_affine_skip_starts_as_identity_and_learns_a_colour_map(tiny, images, tmp_path):
    """``affine_skip=True``: weights without the transform load and restore exactly as before; the transform is
    ``M @ rgb + b`` per pixel, and the loss gradient reaches its parameters (the output is linear in them)."""
    from ms_osr.checkpoint import CheckpointError, load_checkpoint, save_arrays, save_checkpoint

    _, net = tiny
    path = str(tmp_path / "plain.ckpt")
    save_checkpoint(net, path)
    ext = create_model("res_hair_tiny", affine_skip=True)
    ext.set_train(False)
    load_checkpoint(ext, path)  # the transform's two parameters are absent from the file
    x = ms.Tensor(images)
    np.testing.assert_array_equal(ext(x).asnumpy(), net(x).asnumpy())
    partial = str(tmp_path / "partial.ckpt")  # any other missing name still fails
    save_arrays({n: p.asnumpy() for n, p in net.parameters_dict().items() if n != "output.weight"}, partial)
    with pytest.raises(CheckpointError, match="partial.ckpt: checkpoint does not match.*1 missing"):
        load_checkpoint(ext, partial)

    # zero features -> the coefficient map is the bias: a 3x3 matrix and an offset everywhere
    rng = np.random.default_rng(5)
    coef = rng.standard_normal(12).astype(np.float32)
    ext.affine_skip.coef.bias.set_data(ms.Tensor(coef))
    img = rng.random((2, 3, 16, 24), dtype=np.float32)
    out = ext.affine_skip(ms.Tensor(np.zeros((2, 32, 2, 3), np.float32)), ms.Tensor(img)).asnumpy()
    want = np.einsum("ck,nkhw->nchw", coef[:9].reshape(3, 3), img) + coef[9:].reshape(1, 3, 1, 1)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)

    # d(sum(out * wt)) / d(offset c) = sum of wt over channel c (exactly: the output is linear in the offset)
    ext.affine_skip.coef.bias.set_data(ms.Tensor(np.array([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], np.float32)))
    wt = rng.standard_normal(images.shape).astype(np.float32)
    weights = [ext.affine_skip.coef.bias, ext.affine_skip.coef.weight]
    _, (g_bias, g_weight) = nn.ForwardValueAndGrad(_Loss(ext), weights=weights, get_by_list=True)(x, ms.Tensor(wt))
    np.testing.assert_allclose(g_bias.asnumpy()[9:], wt.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-3)
    # d/d M[c, k] = sum of wt[c] * x[k]
    np.testing.assert_allclose(g_bias.asnumpy()[:9].reshape(3, 3), np.einsum("nchw,nkhw->ck", wt, images),
                               rtol=1e-4, atol=1e-3)
    assert np.isfinite(g_weight.asnumpy()).all() and np.abs(g_weight.asnumpy()).max() > 0


def test_global_affine_skip_is_one_colour_map_per_image(tiny, images, tmp_path):
    """``affine_skip="global"``: weights without it load and restore as before; each image gets the 3x4 map
    averaged over its own feature map, applied alike to every pixel; an unknown kind is refused in one line."""
    from ms_osr.checkpoint import load_checkpoint, save_checkpoint

    _, net = tiny
    path = str(tmp_path / "plain.ckpt")
    save_checkpoint(net, path)
    ext = create_model("res_hair_tiny", affine_skip="global")
    ext.set_train(False)
    load_checkpoint(ext, path)
    x = ms.Tensor(images)
    np.testing.assert_array_equal(ext(x).asnumpy(), net(x).asnumpy())

    rng = np.random.default_rng(7)
    cell = ext.affine_skip
    cell.coef.weight.set_data(ms.Tensor(0.1 * rng.standard_normal(cell.coef.weight.shape).astype(np.float32)))
    feat = rng.standard_normal((2, cell.coef.weight.shape[1], 3, 4)).astype(np.float32)
    img = rng.random((2, 3, 16, 24), dtype=np.float32)
    out = cell(ms.Tensor(feat), ms.Tensor(img)).asnumpy()
    coef = cell.coef(ms.Tensor(feat)).asnumpy().mean(axis=(2, 3))  # (2, 12): one map per image
    assert np.abs(coef[0] - coef[1]).max() > 1e-3
    want = np.einsum("nck,nkhw->nchw", coef[:, :9].reshape(2, 3, 3), img) + coef[:, 9:].reshape(2, 3, 1, 1)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="affine_skip='local' unknown"):
        create_model("res_hair_tiny", affine_skip="local")


def test_skip_supervision_adds_the_pixel_loss_of_the_skip_image(images):
    """``train.loss.skip_supervision: w``: loss = L1(output, y) + w * L1(affine skip image, y), and its gradient
    reaches the transform; a model without ``affine_skip`` is refused with one line."""
    from ms_osr.training.step import LossNet

    net = create_model("res_hair_tiny", affine_skip=True)
    rng = np.random.default_rng(3)
    coef = np.array([0.9, 0, 0, 0, 0.8, 0, 0, 0, 1.1, 0.05, -0.02, 0], np.float32)
    net.affine_skip.coef.bias.set_data(ms.Tensor(coef))  # a skip image that differs from the input
    x, y = ms.Tensor(images), ms.Tensor(rng.random(images.shape, dtype=np.float32))
    net.set_train(False)
    out, _, skip = (t.asnumpy() for t in net.restore_parts(x))
    assert np.abs(skip - images).max() > 0.01
    loss_net = LossNet(net, {"type": "l1", "skip_supervision": 0.5})
    want = np.abs(out - y.asnumpy()).mean() + 0.5 * np.abs(skip - y.asnumpy()).mean()
    assert abs(float(loss_net(x, y).asnumpy()) - want) < 1e-5
    weights = [net.affine_skip.coef.bias]
    _, (g_with,) = nn.ForwardValueAndGrad(loss_net, weights=weights, get_by_list=True)(x, y)
    _, (g_without,) = nn.ForwardValueAndGrad(LossNet(net, {"type": "l1"}), weights=weights, get_by_list=True)(x, y)
    assert np.abs(g_with.asnumpy() - g_without.asnumpy()).max() > 1e-3  # the term reaches the transform
    with pytest.raises(ValueError, match="skip_supervision needs a Res-HAIR model with affine_skip, dark_channel_skip or scattering_skip"):
        LossNet(create_model("res_hair_tiny"), {"type": "l1", "skip_supervision": 0.5})
