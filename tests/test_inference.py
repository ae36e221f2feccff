"""Padding, tiling, global-vector sharing, self-ensemble, peak memory, MindIR export, model loading."""
import os

import numpy as np
import pytest

import ms_osr  # noqa: F401
import mindspore as ms

import toy_restorers as toys
from ms_osr.build import create_model
from ms_osr.checkpoint import save_checkpoint
from ms_osr.config import save_config
from ms_osr.export import ExportError, export_mindir
from ms_osr.inference import (ENSEMBLE_MODES, ModelLoadError, Restorer, blend_ramp, ensemble_forward,
                              ensemble_inverse, find_config, load_model, measure_peak_rss, pad_image, plan_tiles)


def _img(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


# ----------------------------------------------------------------------------- geometry
def test_pad_image_reflects_and_keeps_size_info():
    img = _img(5, 7)
    padded, (h, w) = pad_image(img, 4)
    assert padded.shape == (8, 8, 3) and (h, w) == (5, 7)
    np.testing.assert_array_equal(padded[:5, :7], img)
    np.testing.assert_array_equal(padded[5, :7], img[3])  # reflect: row 5 mirrors row 3
    same, _ = pad_image(_img(8, 8), 4)
    assert same.shape == (8, 8, 3)
    thin, _ = pad_image(_img(1, 3), 8)  # too thin to reflect: edge padding
    assert thin.shape == (8, 8, 3)
    np.testing.assert_array_equal(thin[7, :3], thin[0, :3])


@pytest.mark.parametrize("length,tile,overlap,mult", [(100, 32, 8, 1), (96, 32, 8, 8), (37, 64, 8, 1),
                                                      (513, 128, 32, 4), (64, 33, 10, 4)])
def test_tile_plan_covers_and_aligns(length, tile, overlap, mult):
    length = -(-length // mult) * mult  # the planner sees padded images
    plan = plan_tiles(length, length, tile, overlap, mult)
    covered = np.zeros(length, bool)
    for y in plan.ys:
        covered[y:y + plan.tile_h] = True
        assert y % mult == 0 and y + plan.tile_h <= length
    assert covered.all()
    assert plan.ys[-1] + plan.tile_h == length
    assert plan.tile_h % mult == 0 or plan.tile_h == length


def test_tile_plan_rejects_bad_settings():
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles(100, 100, 32, 32)
    with pytest.raises(ValueError, match="positive"):
        plan_tiles(100, 100, 0, 0)


def test_blend_weights_positive_and_zero_at_interior_edges():
    plan = plan_tiles(300, 300, 64, 16)
    total = np.zeros(300, np.float32)
    n = len(plan.ys)
    for i, y in enumerate(plan.ys):
        w = blend_ramp(plan.tile_h, plan.overlap, i > 0, i < n - 1)
        if i > 0:
            assert np.all(w[:plan.overlap // 4] == 0)
        if i < n - 1:
            assert np.all(w[-(plan.overlap // 4):] == 0)
        total[y:y + plan.tile_h] += w
    assert total.min() > 0.05


# ----------------------------------------------------------------------------- tiling
@pytest.mark.parametrize("h,w,tile,overlap", [(203, 317, 64, 16), (130, 97, 48, 32), (64, 64, 32, 8)])
def test_tiled_matches_whole_image_on_local_convnet(h, w, tile, overlap):
    net = toys.toy_convnet()
    img = _img(h, w, seed=h)
    whole = Restorer(net, clip=False)(img)
    tiled_r = Restorer(net, tile=tile, tile_overlap=overlap, clip=False)
    tiled = tiled_r(img)
    assert len(tiled_r.last_plan) > 1
    assert tiled.shape == img.shape
    assert np.abs(tiled - whole).max() < 1e-3


def test_padding_makes_any_size_work_for_a_multiple_of_4_net(tmp_path, monkeypatch):
    net = toys.toy_unet()  # no internal padding: odd sizes fail without the Restorer
    img = _img(37, 29)
    monkeypatch.chdir(tmp_path)  # MindSpore writes rank_0/om/analyze_fail.ir into the working folder
    with pytest.raises(Exception):
        net(ms.Tensor(img.transpose(2, 0, 1)[None].copy()))
    out = Restorer(net, clip=False)(img)
    assert out.shape == img.shape
    padded, _ = pad_image(img, 4)
    ref = net(ms.Tensor(padded.transpose(2, 0, 1)[None].copy())).asnumpy()[0].transpose(1, 2, 0)[:37, :29]
    np.testing.assert_allclose(out, ref, atol=1e-6)
    tiled = Restorer(net, tile=16, tile_overlap=8, clip=False)(img)  # offsets stay multiples of 4
    assert np.abs(tiled - out).max() < 1e-3


class _Spy:
    """Records the global vector handed to each tile."""

    def __init__(self, net):
        self.net, self.size_multiple, self.givs = net, net.size_multiple, []

    def set_train(self, mode):
        self.net.set_train(mode)

    def global_vector(self, x):
        return self.net.global_vector(x)

    def __call__(self, x, giv=None):
        self.givs.append(None if giv is None else giv.asnumpy())
        return self.net(x, giv) if giv is not None else self.net(x)


def test_global_vector_is_computed_once_from_the_whole_image_and_shared():
    ms.set_seed(5)  # the toy's random weights must not depend on which tests ran before
    net = toys.toy_global()
    img = _img(150, 110, seed=3)
    img[:75] *= 0.1  # a dark top half: a tile's own statistics differ from the whole image's
    spy = _Spy(net)
    r = Restorer(spy, tile=48, tile_overlap=16, clip=False)
    tiled = r(img)
    whole_giv = net.global_vector(ms.Tensor(img.transpose(2, 0, 1)[None].copy())).asnumpy()
    assert len(spy.givs) == len(r.last_plan) > 1
    for g in spy.givs:
        np.testing.assert_array_equal(g, whole_giv)
    np.testing.assert_array_equal(r.last_global_vector, whole_giv)
    whole = Restorer(net, clip=False)(img)
    assert np.abs(tiled - whole).max() < 1e-3
    # per-tile vectors would change the result: the sharing is what keeps tiles consistent
    own = [net(ms.Tensor(img[:48, :48].transpose(2, 0, 1)[None].copy())).asnumpy(),
           net(ms.Tensor(img[:48, :48].transpose(2, 0, 1)[None].copy()), ms.Tensor(whole_giv)).asnumpy()]
    assert np.abs(own[0] - own[1]).max() > 1e-4  # far above float noise (~1e-6)


def test_global_vector_downscaled_for_large_images():
    net = toys.toy_global()
    img = _img(160, 128, seed=4)
    r = Restorer(net, tile=64, tile_overlap=16, global_max_side=64)
    r(img)
    import cv2
    small = cv2.resize(img, (51, 64), interpolation=cv2.INTER_AREA)
    ref = net.global_vector(ms.Tensor(small.transpose(2, 0, 1)[None].copy())).asnumpy()
    np.testing.assert_allclose(r.last_global_vector, ref, atol=1e-6)


@pytest.mark.slow
def test_res_hair_tiles_share_the_whole_image_vector():
    net = create_model("res_hair_tiny", seed=0)
    img = _img(96, 80, seed=5)
    r = Restorer(net, tile=48, tile_overlap=16)
    out = r(img)
    assert out.shape == img.shape and len(r.last_plan) > 1
    whole = net.global_vector(ms.Tensor(img.transpose(2, 0, 1)[None].copy())).asnumpy()
    np.testing.assert_array_equal(r.last_global_vector, whole)


# ----------------------------------------------------------------------------- self-ensemble
def test_ensemble_transforms_invert():
    img = _img(5, 7)
    shapes = set()
    for k, flip in ENSEMBLE_MODES:
        t = ensemble_forward(img, k, flip)
        shapes.add(t.shape)
        np.testing.assert_array_equal(ensemble_inverse(t, k, flip), img)
    assert len(ENSEMBLE_MODES) == 8 and shapes == {(5, 7, 3), (7, 5, 3)}


def test_self_ensemble_averages_the_eight_passes():
    net = toys.toy_convnet()
    img = _img(24, 20, seed=6)
    plain = Restorer(net, clip=False)
    manual = np.mean([ensemble_inverse(plain(ensemble_forward(img, k, f)), k, f) for k, f in ENSEMBLE_MODES], 0)
    ens = Restorer(net, self_ensemble=True, clip=False)(img)
    np.testing.assert_allclose(ens, manual, atol=1e-6)
    assert np.abs(ens - plain(img)).max() > 1e-6  # the toy net is not flip-equivariant


# ----------------------------------------------------------------------------- memory
@pytest.mark.slow
def test_tiled_4096_peak_memory_is_bounded():
    """Only the output/weight accumulators grow with the image; one full-size 16-channel
    activation alone would be 1 GiB."""
    net = toys.toy_convnet(width=16)
    r = Restorer(net, tile=512, tile_overlap=32)
    r(_img(512, 512))  # compile outside the measurement
    img = _img(4096, 4096, seed=7)
    out, peak, before = measure_peak_rss(lambda: r(img))
    assert out.shape == img.shape
    grown = peak - before
    accumulators = 4096 * 4096 * 4 * 4 / 2 ** 20  # float32 HxWx3 output + HxW weights = 256 MiB
    print(f"4096x4096 tiled (512/32, {len(r.last_plan)} tiles): peak RSS +{grown:.0f} MiB "
          f"(accumulators {accumulators:.0f} MiB)")
    assert grown < accumulators + 256


# ----------------------------------------------------------------------------- export
def test_export_mindir_round_trip(tmp_path):
    net = toys.toy_unet()
    rep = export_mindir(net, str(tmp_path / "unet"), (32, 24))
    assert rep.path.endswith("unet.mindir") and os.path.isfile(rep.path)
    assert rep.max_abs_diff <= 1e-5 and rep.input_shape == (1, 3, 32, 24)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]
    with pytest.raises(ExportError, match="unet2.mindir"):
        export_mindir(net, str(tmp_path / "unet2.mindir"), (0, 24))


# ----------------------------------------------------------------------------- loading
def test_load_model_finds_config_and_rejects_wrong_checkpoints(tmp_path):
    net = toys.toy_convnet(width=8)
    ck = str(tmp_path / "toy.ckpt")
    save_checkpoint(net, ck)
    with pytest.raises(ModelLoadError, match="toy.ckpt: no config found"):
        load_model(ck)
    save_config({"model": {"name": "toy_convnet", "kwargs": {"width": 8}}}, str(tmp_path / "toy.yaml"))
    assert find_config(ck) == str(tmp_path / "toy.yaml")
    loaded = load_model(ck)
    assert loaded.name == "toy_convnet" and loaded.kwargs == {"width": 8}
    x = ms.Tensor(_img(16, 16).transpose(2, 0, 1)[None].copy())
    np.testing.assert_array_equal(loaded.net(x).asnumpy(), net(x).asnumpy())
    # run folder layout: config.yaml beside best.ckpt
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(net, str(run / "best.ckpt"))
    save_config({"model": {"name": "toy_convnet", "kwargs": {"width": 8}}}, str(run / "config.yaml"))
    assert load_model(str(run / "best.ckpt")).kwargs == {"width": 8}
    # same model, other size / another model: one line naming the file
    for kw in ({"model": "toy_convnet", "overrides": {"width": 16}}, {"model": "toy_unet"}):
        with pytest.raises(ModelLoadError) as info:
            load_model(ck, **kw)
        assert ck in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelLoadError, match="unknown model 'nope'"):
        load_model(ck, model="nope")
    with pytest.raises(ModelLoadError, match="missing.ckpt: checkpoint file not found"):
        load_model(str(tmp_path / "missing.ckpt"), model="toy_convnet")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(ModelLoadError, match="bad.ckpt"):
        load_model(str(bad), model="toy_convnet")


def test_load_model_reads_no_sub_model_weight_files(tmp_path):
    """A full checkpoint holds the sub-models' weights: the weight files the config names for them are
    not read, so a training-run path that does not exist here is no problem."""
    base = toys.toy_convnet(width=8)
    save_checkpoint(base, str(tmp_path / "base.ckpt"))
    net = create_model("toy_composite", base_ckpt=str(tmp_path / "base.ckpt"))
    np.testing.assert_array_equal(net.base.head.weight.asnumpy(), base.head.weight.asnumpy())
    save_checkpoint(net, str(tmp_path / "full.ckpt"))
    save_config({"model": {"name": "toy_composite", "kwargs": {"base_ckpt": "runs/gone/last.ckpt"}}},
                str(tmp_path / "full.yaml"))
    loaded = load_model(str(tmp_path / "full.ckpt"))
    assert loaded.kwargs["base_ckpt"] == "runs/gone/last.ckpt"
    x = ms.Tensor(_img(16, 16).transpose(2, 0, 1)[None].copy())
    np.testing.assert_array_equal(loaded.net(x).asnumpy(), net(x).asnumpy())


def test_load_model_of_a_fine_tune_ignores_its_start_weights(tmp_path):
    """A fine-tune's run config names the weights it started from (model.kwargs.ckpt, and the namespace they
    sat under there, e.g. an OSR restorer continued from a wrapper's ``restorer.`` weights); loading the run's
    own checkpoint reads that checkpoint, not the start file (which need not exist here)."""
    net = toys.toy_convnet(width=8)
    save_checkpoint(net, str(tmp_path / "last.ckpt"))
    x = ms.Tensor(_img(16, 16).transpose(2, 0, 1)[None].copy())
    for start in ({"ckpt": "ckpt/gone.ckpt"}, {"ckpt": "ckpt/gone.ckpt", "namespace": "restorer."}):
        save_config({"model": {"name": "toy_convnet", "kwargs": {"width": 8, **start}}}, str(tmp_path / "config.yaml"))
        loaded = load_model(str(tmp_path / "last.ckpt"))
        np.testing.assert_array_equal(loaded.net(x).asnumpy(), net(x).asnumpy())
