"""PSNR/SSIM checked against scikit-image's own functions and hand-computed cases."""
import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ms_osr.metrics import calculate_psnr, calculate_ssim, rgb_to_y


@pytest.fixture
def pair(rng):
    clean = rng.random((48, 40, 3)).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
    return noisy, clean


def test_identical_images_are_inf_and_one(pair):
    _, clean = pair
    for conv in ("aio", "basicsr"):
        assert calculate_psnr(clean, clean, convention=conv) == float("inf")
        assert calculate_ssim(clean, clean, convention=conv) == pytest.approx(1.0, abs=1e-12)


def test_psnr_hand_computed():
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.full((16, 16, 3), 10, np.uint8)  # mse = 100
    assert calculate_psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100), abs=1e-12)


def test_psnr_matches_skimage(pair):
    noisy, clean = pair
    ref = peak_signal_noise_ratio(clean.astype(np.float64), noisy.astype(np.float64), data_range=1.0)
    assert calculate_psnr(noisy, clean, convention="aio") == pytest.approx(ref, abs=1e-9)
    assert calculate_psnr(noisy, clean, convention="basicsr") == pytest.approx(ref, abs=1e-9)


def test_aio_clips_restored_image(pair):
    noisy, clean = pair
    over = noisy + 0.5  # out-of-range network output
    clipped = np.clip(over, 0, 1)
    assert calculate_psnr(over, clean, convention="aio") == pytest.approx(calculate_psnr(clipped, clean), abs=1e-12)
    assert calculate_psnr(over, clean, convention="basicsr") < calculate_psnr(clipped, clean)


def test_aio_ssim_matches_skimage_default(pair):
    noisy, clean = pair
    ref = structural_similarity(noisy.astype(np.float64), clean.astype(np.float64), data_range=1.0, channel_axis=2)
    assert calculate_ssim(noisy, clean, convention="aio") == pytest.approx(ref, abs=1e-9)


def test_basicsr_ssim_matches_skimage_gaussian(pair):
    noisy, clean = pair
    ref = structural_similarity(noisy.astype(np.float64) * 255, clean.astype(np.float64) * 255, data_range=255,
                                channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert calculate_ssim(noisy, clean, convention="basicsr") == pytest.approx(ref, abs=1e-9)


def test_y_channel_is_matlab_rgb2ycbcr():
    rgb = np.array([[[255.0, 255.0, 255.0], [0.0, 0.0, 0.0], [255.0, 0.0, 0.0]]])
    y = rgb_to_y(rgb)[0]
    assert y[0] == pytest.approx(235.0, abs=1e-9)  # white -> 235
    assert y[1] == pytest.approx(16.0, abs=1e-12)  # black -> 16
    assert y[2] == pytest.approx(16 + 65.481, abs=1e-9)


def test_y_channel_psnr_and_ssim(pair):
    noisy, clean = pair
    y_n = rgb_to_y(noisy.astype(np.float64) * 255)
    y_c = rgb_to_y(clean.astype(np.float64) * 255)
    ref_psnr = peak_signal_noise_ratio(y_c, y_n, data_range=255)
    assert calculate_psnr(noisy, clean, test_y_channel=True) == pytest.approx(ref_psnr, abs=1e-9)
    ref_ssim = structural_similarity(y_n, y_c, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert calculate_ssim(noisy, clean, test_y_channel=True) == pytest.approx(ref_ssim, abs=1e-9)


def test_crop_border(pair):
    noisy, clean = pair
    c = 4
    ref = peak_signal_noise_ratio(clean[c:-c, c:-c].astype(np.float64), noisy[c:-c, c:-c].astype(np.float64),
                                  data_range=1.0)
    assert calculate_psnr(noisy, clean, crop_border=c) == pytest.approx(ref, abs=1e-9)
    noisy2 = noisy.copy()
    noisy2[:c] = 0  # damage only the border: cropped metric must not change
    assert calculate_psnr(noisy2, clean, crop_border=c) == pytest.approx(ref, abs=1e-9)
    assert calculate_ssim(noisy2, clean, crop_border=c) == pytest.approx(calculate_ssim(noisy, clean, crop_border=c))


def test_uint8_and_float_agree(pair):
    noisy, clean = pair
    n8 = np.round(noisy * 255).astype(np.uint8)
    c8 = np.round(clean * 255).astype(np.uint8)
    assert calculate_psnr(n8, c8) == pytest.approx(calculate_psnr(n8 / 255.0, c8 / 255.0), abs=1e-9)


def test_errors(pair):
    noisy, clean = pair
    with pytest.raises(ValueError, match="shapes differ"):
        calculate_psnr(noisy[:10], clean)
    with pytest.raises(ValueError, match="convention"):
        calculate_psnr(noisy, clean, convention="matlab")
    with pytest.raises(ValueError, match="crop_border"):
        calculate_psnr(noisy, clean, crop_border=30)
    with pytest.raises(ValueError, match="at least"):
        calculate_ssim(noisy[:8, :8], clean[:8, :8])
