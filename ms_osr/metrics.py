"""PSNR and SSIM in the two conventions restoration papers use.

* ``"basicsr"`` (Restormer, PTG-RM, MATLAB tables): pixel values on the 0-255 scale,
  SSIM with an 11x11 Gaussian window (sigma 1.5) over the valid region, averaged over
  channels.  Usually combined with ``test_y_channel=True`` (BT.601 Y as MATLAB
  ``rgb2ycbcr``) and a ``crop_border``.
* ``"aio"`` (AirNet, PromptIR, HAIR, OSR): RGB PSNR with the restored image clipped to
  [0, 1] and scikit-image SSIM: 7x7 uniform window, sample covariance, averaged over
  channels.

Inputs are HxWx3 (or HxW) arrays: uint8 (0-255), uint16 (0-65535) or float in [0, 1].
Both SSIMs are implemented here with OpenCV filters; the tests check them against
scikit-image's own functions.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import MsOsrError

CONVENTIONS = ("aio", "basicsr")
# MATLAB rgb2ycbcr: Y = 16 + (65.481 R + 128.553 G + 24.966 B) for R, G, B in [0, 1].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


class MetricError(MsOsrError, ValueError):
    """Metric settings that cannot apply to these images (convention, crop border, image too small)."""


def to_255(img: np.ndarray) -> np.ndarray:
    """Any supported dtype -> float64 on the 0-255 scale."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 257.0
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float64) * 255.0
    raise TypeError(f"unsupported image dtype {img.dtype}")


def rgb_to_y(img255: np.ndarray) -> np.ndarray:
    """RGB on the 0-255 scale -> BT.601 luma on the 0-255 scale (range 16-235), MATLAB style."""
    return img255 @ _Y_WEIGHTS + 16.0


def _prepare(img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool, convention: str):
    if convention not in CONVENTIONS:
        raise MetricError(f"unknown metric convention '{convention}': choose one of {CONVENTIONS}")
    if np.shape(img) != np.shape(ref):
        raise ValueError(f"image shapes differ: {np.shape(img)} vs {np.shape(ref)}")
    a, b = to_255(img), to_255(ref)
    if convention == "aio":  # the all-in-one papers clip the network output to [0, 1]
        a = np.clip(a, 0.0, 255.0)
    if crop_border:
        if 2 * crop_border >= min(a.shape[0], a.shape[1]):
            raise MetricError(f"crop_border {crop_border} leaves nothing of a {a.shape[0]}x{a.shape[1]} image")
        a = a[crop_border:-crop_border, crop_border:-crop_border, ...]
        b = b[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        if a.ndim != 3 or a.shape[2] != 3:
            raise MetricError("test_y_channel needs HxWx3 RGB images")
        a, b = rgb_to_y(a), rgb_to_y(b)
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    return a, b


def calculate_psnr(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, test_y_channel: bool = False,
                   convention: str = "basicsr") -> float:
    """PSNR in dB (``inf`` for identical images)."""
    a, b = _prepare(img, ref, crop_border, test_y_channel, convention)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 ** 2 / mse))


def _ssim_channel(a: np.ndarray, b: np.ndarray, convention: str) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    if convention == "basicsr":
        g = cv2.getGaussianKernel(11, 1.5)
        window = g @ g.T

        def local_mean(x):
            return cv2.filter2D(x, -1, window, borderType=cv2.BORDER_REFLECT)

        pad, cov_norm = 5, 1.0
    else:
        win = 7

        def local_mean(x):
            return cv2.blur(x, (win, win), borderType=cv2.BORDER_REFLECT)

        pad, cov_norm = (win - 1) // 2, win * win / (win * win - 1.0)  # sample covariance, as scikit-image
    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = cov_norm * (local_mean(a * a) - mu_a * mu_a)
    var_b = cov_norm * (local_mean(b * b) - mu_b * mu_b)
    cov = cov_norm * (local_mean(a * b) - mu_a * mu_b)
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map[pad:-pad, pad:-pad].mean())


def calculate_ssim(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, test_y_channel: bool = False,
                   convention: str = "basicsr") -> float:
    """SSIM averaged over channels (1.0 for identical images)."""
    a, b = _prepare(img, ref, crop_border, test_y_channel, convention)
    min_side = 11 if convention == "basicsr" else 7
    if min(a.shape[0], a.shape[1]) < min_side:
        raise MetricError(f"SSIM ({convention}) needs images of at least {min_side}x{min_side}, got {a.shape[:2]}")
    return float(np.mean([_ssim_channel(a[:, :, c], b[:, :, c], convention) for c in range(a.shape[2])]))
