"""tools/haze_bounds.py: the reference points it reports do what they claim on a synthetic hazed image."""
import numpy as np
import skimage.data

from ms_osr.data.degradations import haze
from ms_osr.metrics import calculate_psnr
from scripts import load_script

tool = load_script("tools/haze_bounds.py")


def _clean():
    return skimage.data.astronaut()[::2, ::2].astype(np.float32) / 255.0


def test_colour_map_fit_undoes_a_global_affine_map_exactly():
    clean = _clean()
    m = np.array([[0.6, 0.1, 0.0], [0.0, 0.7, 0.05], [0.02, 0.0, 0.5]])
    veiled = np.clip(clean @ m.T + np.array([0.3, 0.25, 0.35]), 0, 1)  # an image-wide haze: t constant
    np.testing.assert_allclose(tool.colour_map_fit(veiled, clean), clean, atol=1e-5)


def test_dark_channel_prior_removes_most_of_a_haze():
    clean = _clean()
    hazy = haze(clean, beta=1.2, airlight=0.9, rng=0, layout="gradient")
    before = calculate_psnr(hazy, clean, convention="aio")
    after = calculate_psnr(tool.dark_channel_dehaze(hazy), clean, convention="aio")
    assert after > before + 3.0, (before, after)
    t = np.full(clean.shape[:2], 0.4)  # and the guided filter keeps a constant map constant
    np.testing.assert_allclose(tool.guided_filter(clean.mean(axis=2).astype(np.float64), t), t, atol=1e-9)
