"""ms_osr.models.dehaze_prior: the graph-mode dark channel prior against the NumPy/OpenCV reference in
tools/haze_bounds.py, and the skip that blends it into Res-HAIR's global residual."""
import cv2
import numpy as np
import pytest
import skimage.data

import ms_osr  # noqa: F401
import mindspore as ms

from ms_osr.data.degradations import haze
from ms_osr.metrics import calculate_psnr
from ms_osr.models.dehaze_prior import DarkChannelDehaze, box_mean, guided_filter
from ms_osr.registry import create_model
from scripts import load_script

tool = load_script("tools/haze_bounds.py")


def _nchw(img):
    return ms.Tensor(np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32))


def _hazy():
    clean = cv2.resize(skimage.data.astronaut(), (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return clean, haze(clean, beta=1.2, airlight=0.9, rng=0, layout="gradient").astype(np.float32)


@pytest.mark.parametrize("radius", [1, 3, 40, 100])  # 100: larger than the image, shrinks to fit
def test_box_mean_is_opencv_blur(radius):
    x = np.random.default_rng(0).random((50, 70)).astype(np.float32)
    r = min(radius, 49)
    want = cv2.blur(x, (2 * r + 1, 2 * r + 1))
    np.testing.assert_allclose(box_mean(ms.Tensor(x[None, None]), radius).asnumpy()[0, 0], want, atol=5e-6)


def test_dark_channel_and_guided_filter_match_the_reference():
    clean, hazy = _hazy()
    dehaze = DarkChannelDehaze()
    dark = dehaze.dark(_nchw(hazy)).asnumpy()[0, 0]
    np.testing.assert_array_equal(dark, cv2.erode(hazy.min(axis=2), np.ones((15, 15), np.uint8)))
    guide, src = hazy.mean(axis=2), np.random.default_rng(1).random(hazy.shape[:2]).astype(np.float32)
    got = guided_filter(ms.Tensor(guide[None, None]), ms.Tensor(src[None, None]), 40, 1e-3).asnumpy()[0, 0]
    want = tool.guided_filter(guide.astype(np.float64), src.astype(np.float64))
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_dark_channel_dehaze_matches_the_reference_and_removes_haze():
    clean, hazy = _hazy()
    got = DarkChannelDehaze()(_nchw(hazy)).asnumpy()[0].transpose(1, 2, 0)
    want = tool.dark_channel_dehaze(hazy)
    # the eroded dark channel has plateaus: which of its tied brightest pixels give the airlight differs
    # between argsort and top-k, so the two agree to a few 1e-3, not to float precision
    assert np.abs(got - want).max() < 1e-2 and np.abs(got - want).mean() < 3e-3
    before = calculate_psnr(hazy, clean, convention="aio")
    assert calculate_psnr(got, clean, convention="aio") > before + 3.0


@pytest.mark.parametrize("colour", [(0, 0, 0), (1, 0, 0), (1, 1, 1)])
def test_flat_images_give_a_finite_prior(colour):
    """A black or pure-red image has a black channel where the dark channel peaks: no 0 / 0."""
    img = np.broadcast_to(np.array(colour, np.float32), (40, 48, 3))
    dehaze = DarkChannelDehaze()
    assert dehaze.airlight(_nchw(img)).asnumpy().min() >= 1e-3
    out = dehaze(_nchw(img)).asnumpy()
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def _plain_and_loaded_into(tmp_path, **skip):
    """(a plain res_hair_tiny, the same with ``skip`` loaded from the plain one's checkpoint), both in eval mode:
    the skip's parameters are absent from the file and keep their identity initialisation."""
    from ms_osr.checkpoint import load_checkpoint, save_checkpoint

    ms.set_seed(0)
    plain = create_model("res_hair_tiny")
    plain.set_train(False)
    path = str(tmp_path / "plain.ckpt")
    save_checkpoint(plain, path)
    net = create_model("res_hair_tiny", **skip)
    net.set_train(False)
    load_checkpoint(net, path)
    return plain, net


def test_dark_channel_skip_starts_as_the_input_and_blends_towards_the_prior(tmp_path):
    clean, hazy = _hazy()
    plain, net = _plain_and_loaded_into(tmp_path, dark_channel_skip=True)  # the gate's parameters: weight 0
    x = _nchw(hazy)
    np.testing.assert_array_equal(net(x).asnumpy(), plain(x).asnumpy())
    net.dark_channel_skip.gate.bias.set_data(ms.Tensor(np.ones(1, np.float32)))  # weight 1 everywhere
    skip = net.restore_parts(x)[2].asnumpy()
    np.testing.assert_allclose(skip, DarkChannelDehaze()(x).asnumpy(), atol=1e-6)
    with pytest.raises(ValueError, match="choose one of affine_skip, dark_channel_skip and scattering_skip"):
        create_model("res_hair_tiny", affine_skip=True, dark_channel_skip=True)


def test_scattering_skip_starts_as_the_input_and_inverts_the_haze_it_is_given(tmp_path):
    """scattering_skip=True: (I - A) / t + A with t and A from the latent; t = 1 at the start, so a checkpoint
    without the cell restores the same image; given the synthesis' own uniform t and A it returns the clean
    image; the exclusive options are refused together."""
    from ms_osr.data.degradations import haze_model

    plain, net = _plain_and_loaded_into(tmp_path, scattering_skip=True)
    clean = _hazy()[0]
    t, a = 0.4, np.array([0.9, 0.85, 0.8])
    hazy = haze_model(clean, np.full(clean.shape[:2], t), a)
    x = _nchw(hazy)
    np.testing.assert_array_equal(net(x).asnumpy(), plain(x).asnumpy())
    cell = net.scattering_skip
    cell.depth.bias.set_data(ms.Tensor(np.array([-np.log(t)], np.float32)))  # d = -log t everywhere
    cell.fc2.bias.set_data(ms.Tensor(np.arctanh((a - 0.85) / 0.15).astype(np.float32)))
    skip = net.restore_parts(x)[2].asnumpy()[0].transpose(1, 2, 0)
    np.testing.assert_allclose(skip, clean, atol=1e-5)
    with pytest.raises(ValueError, match="choose one of affine_skip, dark_channel_skip and scattering_skip"):
        create_model("res_hair_tiny", dark_channel_skip=True, scattering_skip=True)


def test_the_prior_stays_float32_under_amp():
    """Under AMP O2 (train.py on GPU/Ascend) the running sums would overflow float16 on large images; the
    cell declares keep_float32 and apply_amp honours it, while the network around it runs in float16."""
    from ms_osr.audit import cases

    table = cases.inference_graph(cases.ModelCase("res_hair", "res_hair_tiny", {"dark_channel_skip": True}),
                                  "GPU", "O2")
    for prim in ("CumSum", "TopK", "PadV3", "MaxPool"):
        assert table[prim] and all(set(ins) <= {"float32", "int32"} for ins in table[prim]), (prim, table[prim])
    assert any("float16" in ins for ins in table["Conv2D"])
