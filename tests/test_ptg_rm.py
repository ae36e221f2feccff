"""PTG-RM: parameter count, parity with the PyTorch reference, wrapper, OSF providers, Eq. 8 loss."""
import math
import re

import numpy as np
import pytest
import torch

import mindspore as ms
import mindspore.nn as nn

from ms_osr import build
from ms_osr.build import create_model
from ms_osr.checkpoint import load_arrays_into_net, save_checkpoint
from ms_osr.convert import ConversionError, convert_state_dict, to_torch_state_dict
from ms_osr.losses import charbonnier_loss, ptg_joint_loss, ptg_rm_joint_loss
from ms_osr.models.osf import ConstantOSF, DistilledOSF, RestorationPriorOSF, replace_osf
from ms_osr.models.ptg_rm import DEFAULT_PARAM_COUNT, PTGRM, PTGRMWrapper, count_params, per_pixel_conv
from ms_osr.training.osf_distill import calibrate_standardization, cosine_stats, osf_vectors, train_distilled_osf
from ms_osr.training.step import LossNet
from torch_ref.ptg_rm_ref import kernel2d_conv, refinement2

MAX_TOL, MEAN_TOL = 1e-4, 1e-6


def _random_ref(seed: int = 0, **kwargs) -> refinement2:
    torch.manual_seed(seed)
    ref = refinement2(**kwargs).eval()
    with torch.no_grad():  # perturb every tensor, including norm weights and temperatures
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return ref


def _ms_from_ref(ref: refinement2, **kwargs) -> PTGRM:
    net = PTGRM(**kwargs)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    load_arrays_into_net(net, convert_state_dict(net, sd, source="refinement2"))
    net.set_train(False)
    return net


def test_default_param_count_and_breakdown():
    net = PTGRM()
    assert count_params(net) == DEFAULT_PARAM_COUNT == 671_735
    groups = {}
    for p in net.get_parameters():
        top = p.name.split(".")[0]
        groups[top] = groups.get(top, 0) + math.prod(p.shape)
    assert groups["mapp_space1"] + groups["mapp_space2"] + groups["mapp_space11"] + groups["mapp_space22"] == 294_912
    assert groups["mapp11"] + groups["mapp12"] == 311_040
    assert groups["transformer"] == 4 * 4_293
    assert groups["r1"] + groups["r1norm"] + groups["r2"] + groups["r2norm"] + groups["r22"] == 5_536
    # the OSF length only enters T_m and T_c
    assert count_params(PTGRM(osf_dim=96)) == DEFAULT_PARAM_COUNT - 2 * (512 - 96) * 256
    assert count_params(PTGRM(use_mask=True)) == DEFAULT_PARAM_COUNT + 16 * 9 + 1


def test_official_names_map_one_to_one():
    ref = refinement2()
    net = PTGRM()
    torch_names = set(ref.state_dict())
    assert set(to_torch_state_dict(net)) == torch_names
    # our InstanceNorm/LayerNorm cells keep PyTorch's weight/bias, so no rename is needed at all
    assert set(n for n, _ in net.parameters_and_names()) == torch_names
    assert "transformer.3.ffn.dwconv.weight" in torch_names and "r1norm.weight" in torch_names


def test_load_official_checkpoint_layout(tmp_path):
    """The released checkpoint holds the whole SNR-aware net; PTG-RM is under ``refinement11.``."""
    ref = _random_ref(seed=3)
    state = {"refinement11." + k: v for k, v in ref.state_dict().items()}
    state["conv_first_1.weight"] = torch.zeros(64, 3, 3, 3)  # a key of the base network
    path = str(tmp_path / "official.pth")
    torch.save(state, path)
    net = PTGRM()
    build.load_official_ptg_rm(net, path)
    np.testing.assert_array_equal(net.mapp12.weight.asnumpy(), ref.mapp12.weight.detach().numpy())
    with pytest.raises(ConversionError, match=r"no 'ptg\.\*' keys"):
        build.load_official_ptg_rm(PTGRM(), path, prefix="ptg.")


def test_per_pixel_conv_matches_unfold_reference(rng):
    feat = rng.standard_normal((2, 4, 5, 7)).astype(np.float32)
    kern = rng.standard_normal((2, 4 * 9, 5, 7)).astype(np.float32)
    ours = per_pixel_conv(ms.Tensor(feat), ms.Tensor(kern), 3).asnumpy()
    ref = kernel2d_conv(torch.from_numpy(feat), torch.from_numpy(kern), 3).numpy()
    assert np.abs(ours - ref).max() < 1e-5


@pytest.mark.slow
def test_parity_with_torch_reference(rng):
    """Default config (512-d OSF), random weights; even size, odd sizes (reflect-padded), batch 2."""
    ref = _random_ref()
    net = _ms_from_ref(ref)
    for shape in [(1, 3, 16, 16), (2, 3, 19, 23), (1, 3, 13, 30)]:
        x = rng.random(shape, dtype=np.float32)
        base = (x + 0.15 * rng.standard_normal(shape)).astype(np.float32)  # unclamped, as a restorer may emit
        g = rng.standard_normal((shape[0], 512)).astype(np.float32)
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        out = net(ms.Tensor(base), ms.Tensor(x), ms.Tensor(g)).asnumpy()
        with torch.no_grad():
            want = ref(torch.from_numpy(g), torch.from_numpy(base), torch.from_numpy(x)).numpy()
        assert out.shape == shape
        diff = np.abs(out - want)
        assert diff.max() <= MAX_TOL and diff.mean() <= MEAN_TOL, (shape, diff.max(), diff.mean())
        # the module changes the image (not a pass-through of the clamped base)
        assert np.abs(out - np.clip(base, 0, 1)).mean() > 1e-3


def test_parity_mask_variant_and_small_osf(rng):
    ref = _random_ref(seed=1, osf_dim=32, use_mask=True)
    net = _ms_from_ref(ref, osf_dim=32, use_mask=True)
    x = rng.random((2, 3, 18, 21), dtype=np.float32)
    base = np.clip(x + 0.1, 0, 1.2).astype(np.float32)
    g = rng.standard_normal((2, 32)).astype(np.float32)
    out = net(ms.Tensor(base), ms.Tensor(x), ms.Tensor(g)).asnumpy()
    with torch.no_grad():
        want = ref(torch.from_numpy(g), torch.from_numpy(base), torch.from_numpy(x)).numpy()
    diff = np.abs(out - want)
    assert diff.max() <= MAX_TOL and diff.mean() <= MEAN_TOL, (diff.max(), diff.mean())


def test_joint_loss_is_eq8():
    base = ms.Tensor(np.full((1, 3, 4, 4), 0.5, np.float32))
    refined = ms.Tensor(np.full((1, 3, 4, 4), 0.8, np.float32))
    gt = ms.Tensor(np.full((1, 3, 4, 4), 1.0, np.float32))
    assert abs(float(ptg_rm_joint_loss(base, refined, gt).asnumpy()) - (0.5 + 0.2)) < 1e-6
    mse = lambda a, b: ((a - b) ** 2).mean()  # noqa: E731
    assert abs(float(ptg_rm_joint_loss(base, refined, gt, mse, lambda1=2.0).asnumpy()) - (0.25 + 2 * 0.04)) < 1e-6
    want = float((charbonnier_loss(base, gt) + charbonnier_loss(refined, gt)).asnumpy())
    assert abs(float(ptg_joint_loss(base, refined, gt, base_loss="charbonnier").asnumpy()) - want) < 1e-6
    with pytest.raises(ValueError, match="base_loss"):
        ptg_joint_loss(base, refined, gt, base_loss="ssim")


class _TinyBase(nn.Cell):
    """Cheap stand-in restorer (one conv + residual) so the wrapper tests compile quickly."""

    size_multiple = 2

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, pad_mode="pad", padding=1, has_bias=True)

    def construct(self, x):
        return x + 0.1 * self.conv(x)


class _TinyGlobal(_TinyBase):
    """A restorer with a global_vector() but no giv_dim (dimension is probed)."""

    def global_vector(self, x):
        return ms.ops.concat((x.mean(axis=(2, 3)), self.conv(x).mean(axis=(2, 3))), axis=1)


@pytest.mark.slow
def test_wrapper_paths_and_joint_train_step(rng):
    """Eval and train paths agree; a graph-mode Eq. 8 step updates PTG-RM only (frozen base and OSF)."""
    net = PTGRMWrapper(_TinyBase(), DistilledOSF(out_dim=32, width=4, hidden=16))
    assert net.size_multiple == 4 and net.refinement11.osf_dim == 32
    assert count_params(net, trainable_only=True) == count_params(net.refinement11)
    x = rng.random((2, 3, 21, 30), dtype=np.float32)
    gt = np.clip(x * 1.2, 0, 1).astype(np.float32)
    net.set_train(False)
    refined = net(ms.Tensor(x)).asnumpy()
    base_out, refined_t = (t.asnumpy() for t in net.forward_train(ms.Tensor(x)))
    assert refined.shape == base_out.shape == x.shape
    np.testing.assert_array_equal(refined, refined_t)

    before = {n: p.asnumpy().copy() for n, p in net.parameters_and_names()}
    # the training loop's loss cell: loss {type: ptg_joint} -> forward_train + Eq. 8 (L1 base loss)
    loss_net = LossNet(net, {"type": "ptg_joint"})
    step = nn.TrainOneStepCell(loss_net, nn.Adam(net.trainable_params(), learning_rate=1e-3))
    step.set_train(True)
    losses = [float(step(ms.Tensor(x), ms.Tensor(gt)).asnumpy()) for _ in range(4)]
    assert losses[-1] < losses[0]
    changed = {n.split(".")[0] for n, p in net.parameters_and_names() if not np.array_equal(before[n], p.asnumpy())}
    assert changed == {"refinement11"}

    head = DistilledOSF(out_dim=32, width=4, hidden=8)
    replace_osf(net, head)
    assert net.osf is head and not any(p.requires_grad for p in head.get_parameters())
    assert any(n.startswith("osf.fc2.") for n, _ in net.parameters_and_names())
    with pytest.raises(ValueError, match="OSF dims differ"):
        replace_osf(net, DistilledOSF(out_dim=16, width=4, hidden=16))


def test_registered_wrapper_and_unfrozen_base(tmp_path):
    trained = create_model("restormer_tiny")  # stands in for a trained base checkpoint
    ckpt = str(tmp_path / "base.ckpt")
    save_checkpoint(trained, ckpt)
    net = create_model("ptg_rm_wrapper", base="restormer_tiny", base_ckpt=ckpt, osf="restoration_prior",
                       osf_kwargs={"model": "restormer_tiny", "ckpt": ckpt, "out_dim": 24},
                       ptg_kwargs={"use_mask": True})
    want = trained.output.weight.asnumpy()
    np.testing.assert_array_equal(net.base.output.weight.asnumpy(), want)
    np.testing.assert_array_equal(net.osf.prior.output.weight.asnumpy(), want)
    assert net.osf.prior.output.weight.name == "osf.prior.output.weight"
    assert isinstance(net, PTGRMWrapper) and net.size_multiple == 8
    assert net.refinement11.osf_dim == 24 and net.refinement11.use_mask
    assert count_params(net, trainable_only=True) == count_params(net.refinement11)
    base = create_model("restormer_tiny")
    net = PTGRMWrapper(base, DistilledOSF(out_dim=8, width=4, hidden=8), freeze_base=False)
    assert count_params(net, trainable_only=True) == count_params(base) + count_params(net.refinement11)
    with pytest.raises(ValueError, match="unknown OSF provider"):
        create_model("ptg_rm_wrapper", base="restormer_tiny", osf="blip")


def test_constant_prior_is_image_independent_and_checkpointed(rng, tmp_path):
    net = create_model("ptg_rm_wrapper", base="restormer_tiny", osf="constant", osf_kwargs={"out_dim": 16, "seed": 3})
    assert isinstance(net.osf, ConstantOSF) and net.osf.out_dim == net.refinement11.osf_dim == 16
    assert count_params(net, trainable_only=True) == count_params(net.refinement11)  # g is frozen
    x = rng.random((2, 3, 16, 16), dtype=np.float32)
    g = osf_vectors(net.osf, x, batch_size=2)
    np.testing.assert_array_equal(g[0], g[1])  # the same vector for different images ...
    assert abs(np.linalg.norm(g[0]) - 1) < 1e-6  # ... of unit length like the real priors
    assert np.abs(g[0] - ConstantOSF(out_dim=16, seed=4).g.asnumpy()[0]).max() > 0.1  # seeded
    ckpt = str(tmp_path / "wrapper.ckpt")
    save_checkpoint(net, ckpt)
    again = create_model("ptg_rm_wrapper", base="restormer_tiny", osf="constant",
                         osf_kwargs={"out_dim": 16, "seed": 9}, ckpt=ckpt)
    np.testing.assert_array_equal(again.osf.g.asnumpy()[0], g[0])  # g comes back from the checkpoint
    given = ConstantOSF(vector=np.arange(5, dtype=np.float32))
    assert given.out_dim == 5 and given.g.asnumpy().tolist() == [[0, 1, 2, 3, 4]]


@pytest.mark.slow
def test_restoration_prior_giv_and_output_stats(rng):
    x = rng.random((2, 3, 16, 24), dtype=np.float32)
    with pytest.warns(UserWarning, match="random weights"):
        giv = create_model("restoration_prior_osf", model="res_hair_tiny")  # Res-HAIR's Global Information Vector
    assert giv.use_giv and giv.out_dim == giv.native_dim == giv.prior.giv_dim
    v = osf_vectors(giv, x, batch_size=2)
    assert v.shape == (2, giv.prior.giv_dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert np.abs(v[0] - v[1]).max() > 1e-4

    probed = RestorationPriorOSF(_TinyGlobal(), normalize=False)  # any cell with global_vector()
    assert probed.use_giv and probed.out_dim == 6
    want = np.concatenate([x.mean(axis=(2, 3)), probed.prior.conv(ms.Tensor(x)).asnumpy().mean(axis=(2, 3))], 1)
    np.testing.assert_allclose(osf_vectors(probed, x, batch_size=2), want, atol=1e-5)

    stats = RestorationPriorOSF(_TinyBase(), out_dim=64)  # any restorer: output statistics, 15 -> 64
    assert not stats.use_giv and stats.out_dim == 64 and not stats.proj.requires_grad
    proj = stats.proj.asnumpy()
    np.testing.assert_allclose(proj @ proj.T, np.eye(15), atol=1e-5)  # orthonormal rows: angles kept
    s = osf_vectors(stats, x, batch_size=2)
    assert s.shape == (2, 64) and np.allclose(np.linalg.norm(s, axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="global_vector"):
        RestorationPriorOSF(_TinyBase(), feature="global_vector")


def test_distillation_improves_agreement(rng):
    """The head learns a (fixed, non-trivial) teacher: cosine agreement rises on held-out images."""

    class Teacher(nn.Cell):  # image statistics -> fixed random 16-d direction, L2-normalised
        out_dim = 16

        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(6, 16)

        def construct(self, x):
            m = x.mean(axis=(2, 3))
            s = ((x - m.reshape(x.shape[0], 3, 1, 1)) ** 2).mean(axis=(2, 3))
            v = self.fc(ms.ops.concat((m, s * 10), axis=1))
            return v / ms.ops.norm(v, dim=-1, keepdim=True)

    def images(n):
        base = rng.random((n, 3, 1, 1)).astype(np.float32)
        noise = rng.random((n, 1, 1, 1)).astype(np.float32) * 0.3
        return np.clip(base + noise * rng.standard_normal((n, 3, 24, 24)), 0, 1).astype(np.float32)

    teacher = Teacher()
    head = DistilledOSF(out_dim=16, width=8, hidden=32)
    val = images(8)
    start = cosine_stats(osf_vectors(head, val), osf_vectors(teacher, val))
    report = train_distilled_osf(head, teacher, images(32), steps=60, batch_size=8, lr=3e-3, val_images=val)
    assert np.mean(report["loss"][-10:]) < np.mean(report["loss"][:10])
    assert report["val"]["cos_mean"] > max(start["cos_mean"], 0.0) + 0.1
    with pytest.raises(ValueError, match="teacher gives"):
        train_distilled_osf(DistilledOSF(out_dim=8, width=4, hidden=8), teacher, val, steps=1)


def _varied_images(rng, n: int, size: int = 16) -> np.ndarray:
    """Images that differ in brightness and contrast (so every output statistic varies)."""
    level = rng.random((n, 3, 1, 1)) * 0.6 + 0.2
    amp = rng.random((n, 1, 1, 1)) * 0.3
    return np.clip(level + amp * rng.standard_normal((n, 3, size, size)), 0, 1).astype(np.float32)


def test_standardized_prior_and_bad_files(rng, tmp_path):
    """Frozen z-scores from a calibration file: mean 0 / std 1 on the calibration images; bad files fail clearly."""
    base = _TinyBase()
    imgs = _varied_images(rng, 16)
    path = str(tmp_path / "osf_std.npz")
    st = calibrate_standardization(imgs, path, batch_size=8, model=base, out_dim=64, standardize="ignored.npz")
    with np.load(path) as data:
        assert data["mean"].shape == data["std"].shape == (15,) and int(data["n"]) == 16
    assert st["raw"].shape == (16, 15) and not list(tmp_path.glob(".tmp-*"))  # raw 15 values, no temp left

    def prior(**kw):  # the standardisation file is read where weights are: ms_osr.build
        return build.create_model("restoration_prior_osf", model=base, **kw)

    z_osf = prior(normalize=False, standardize=path)
    assert z_osf.has_std and not z_osf.std_mean.requires_grad and z_osf.out_dim == 15
    z = osf_vectors(z_osf, imgs, batch_size=8)
    np.testing.assert_allclose(z, (st["raw"] - st["mean"]) / st["std"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-3)
    # with the projection and L2 normalisation: unit vectors, the same z-scores rotated (angles kept)
    g = osf_vectors(prior(out_dim=64, standardize=path), imgs, batch_size=8)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert np.allclose(np.linalg.norm(g, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(g @ g.T, zn @ zn.T, atol=1e-4)
    assert not RestorationPriorOSF(base).has_std  # default unchanged: no standardisation, no extra parameters
    # a registered restorer with its weights under the prior's own key "ckpt", as in a config's osf_kwargs
    # (regression: the key was taken for a checkpoint of the whole prior and the calibration failed)
    trained = build.create_model("restormer_tiny")
    save_checkpoint(trained, str(tmp_path / "restorer.ckpt"))
    named = calibrate_standardization(imgs[:4], str(tmp_path / "named.npz"), model="restormer_tiny",
                                      ckpt=str(tmp_path / "restorer.ckpt"), out_dim=64)
    want = osf_vectors(RestorationPriorOSF(trained, normalize=False), imgs[:4], batch_size=4)
    np.testing.assert_allclose(named["raw"], want, rtol=1e-5, atol=1e-6)

    np.savez(tmp_path / "short.npz", mean=np.zeros(7, np.float32), std=np.ones(7, np.float32))
    np.savez(tmp_path / "nostd.npz", mean=np.zeros(15, np.float32))
    np.savez(tmp_path / "zero.npz", mean=np.zeros(15, np.float32), std=np.zeros(15, np.float32))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name, msg in [("missing.npz", "not found"), ("junk.npz", "unreadable"), ("nostd.npz", "missing array"),
                      ("short.npz", "has 15 values"), ("zero.npz", "std <= 0")]:
        bad = str(tmp_path / name)
        with pytest.raises(ValueError, match=f"file {re.escape(bad)}: .*{msg}"):
            prior(standardize=bad)


def test_replace_osf_after_compiled_call_changes_output(rng):
    """Regression: swapping the provider of an already compiled GRAPH_MODE wrapper must take effect
    (MindSpore used to keep running the graph compiled with the old provider)."""
    ga, gb = 20 * rng.standard_normal((2, 8)).astype(np.float32)  # large g: a clearly visible modulation
    net = PTGRMWrapper(_TinyBase(), ConstantOSF(vector=ga), nf=4, osf_hidden=8, num_blocks=1)
    net.set_train(False)
    x = ms.Tensor(rng.random((1, 3, 12, 12), dtype=np.float32))
    out_a = net(x).asnumpy()  # compiled with provider A
    replace_osf(net, ConstantOSF(vector=gb))
    out_b = net(x).asnumpy()
    # what the module computes with g_b, through a separately compiled path
    want_b = net.refinement11(net.base(x), x, ms.Tensor(gb[None])).asnumpy()
    effect = np.abs(want_b - out_a).max()
    assert effect > 1e-3
    assert np.abs(out_b - want_b).max() < 1e-2 * effect  # the new provider runs, not the cached graph
    replace_osf(net, ConstantOSF(vector=ga))
    np.testing.assert_array_equal(net(x).asnumpy(), out_a)  # swapping back restores the first output
