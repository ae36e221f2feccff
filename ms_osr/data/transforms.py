"""Paired crops and the 8 dihedral (flip/rotation) augmentations, on HxWxC numpy images."""
from __future__ import annotations

from typing import Tuple

import numpy as np
from ..errors import MsOsrError  # noqa: E402


class SizeMismatchError(MsOsrError, ValueError):
    """A degraded/clean pair whose sizes differ (never silently cropped)."""


def check_same_size(lq: np.ndarray, gt: np.ndarray, lq_name: str, gt_name: str) -> None:
    if lq.shape[:2] != gt.shape[:2]:
        raise SizeMismatchError(f"{lq_name}: size {lq.shape[1]}x{lq.shape[0]} differs from its clean image "
                                f"{gt_name} ({gt.shape[1]}x{gt.shape[0]})")


def pad_to_at_least(img: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad so both sides are >= ``size`` (small images still give full patches)."""
    h, w = img.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return img
    mode = "reflect" if h > 1 and w > 1 and ph < h and pw < w else "symmetric"
    return np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=mode)


def random_crop_pair(lq: np.ndarray, gt: np.ndarray, size: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Crop the same random ``size`` x ``size`` window from both images (padding small ones)."""
    lq, gt = pad_to_at_least(lq, size), pad_to_at_least(gt, size)
    h, w = lq.shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return lq[top:top + size, left:left + size], gt[top:top + size, left:left + size]


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    img = pad_to_at_least(img, size)
    h, w = img.shape[:2]
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return img[top:top + size, left:left + size]


def random_scaled_crop(img: np.ndarray, size: int, rng: np.random.Generator,
                       scale: Tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """A random ``size`` x ``size`` crop at a random scale in ``scale`` (1 = native pixels): a window
    of ``size / s`` pixels is cut and area-resampled to ``size``.  Down-scaling full-resolution
    photographs matches the statistics of smaller test images and averages out sensor noise and
    JPEG blocks in the clean target."""
    lo, hi = float(scale[0]), float(scale[1])
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"crop scale range must satisfy 0 < low <= high <= 1, got {scale}")
    s = float(rng.uniform(lo, hi)) if hi > lo else lo
    h, w = img.shape[:2]
    win = min(int(round(size / s)), h, w)
    if win <= size:
        return random_crop(img, size, rng)
    import cv2

    window = random_crop(img, win, rng)
    return cv2.resize(np.ascontiguousarray(window), (size, size), interpolation=cv2.INTER_AREA)


def texture_energy(img: np.ndarray) -> float:
    """Mean absolute luminance gradient of an HxWx3 image: how much fine structure (edges, texture) it holds."""
    y = img.mean(axis=2)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def crop_by_texture(img: np.ndarray, size: int, rng: np.random.Generator, scale: Tuple[float, float],
                    candidates: int, smoothest: bool = False) -> np.ndarray:
    """The :func:`random_scaled_crop` with the most fine structure (:func:`texture_energy`) of ``candidates``
    drawn, or with the least when ``smoothest``; one candidate draws exactly what :func:`random_scaled_crop`
    would."""
    crops = [random_scaled_crop(img, size, rng, scale) for _ in range(candidates)]
    return (min if smoothest else max)(crops, key=texture_energy)


def random_photometric(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Random exposure, gamma and white balance of a clean image (before it is degraded).

    Haze and additive rain brighten an image; when every training target is a mid-tone photograph
    a restorer learns "bright means hazy" and darkens bright clean content (measured: -30 to -70
    grey levels on the val photos).  Re-exposing the clean crops breaks that shortcut: brightness
    and colour cast no longer tell the degradation."""
    gain = float(np.exp(rng.uniform(-0.5, 0.4) * strength))
    gamma = float(np.exp(rng.uniform(-0.35, 0.35) * strength))
    balance = np.exp(rng.uniform(-0.1, 0.1, 3) * strength).astype(np.float32)
    out = np.clip(np.asarray(img, np.float32), 0.0, 1.0) ** gamma * gain * balance
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def random_recolour(img: np.ndarray, rng: np.random.Generator, probability: float = 1.0) -> np.ndarray:
    """With ``probability``: a random channel order and saturation of a clean image (before it is degraded).

    A restorer trained on a dozen photographs takes their palettes for "clean" and treats an unseen palette
    as a veil: the third-stage Res-HAIR left its clean training photos within -0.1 to -6 grey levels but
    shifted clean test photos by up to -21 on average and -42 in one channel (a blue cast removed as if it
    were haze), and darkened a grey texture by -52.  Permuting the channels and scaling the saturation
    (down to grey one time in eight) shows it many more palettes of the same content."""
    if rng.uniform() >= probability:
        return img
    out = np.asarray(img, np.float32)
    out = out[..., rng.permutation(3)]
    grey = out @ np.asarray([0.299, 0.587, 0.114], np.float32)
    sat = 0.0 if rng.uniform() < 0.125 else float(np.exp(rng.uniform(-1.0, 0.4)))
    out = grey[..., None] + sat * (out - grey[..., None])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:
        img = pad_to_at_least(img, size)
        h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top:top + size, left:left + size]


def crop_to_multiple(img: np.ndarray, base: int) -> np.ndarray:
    """Centre crop to a multiple of ``base`` (the all-in-one test protocol uses base 16)."""
    if base <= 1:
        return img
    h, w = img.shape[:2]
    nh, nw = h - h % base, w - w % base
    top, left = (h - nh) // 2, (w - nw) // 2
    return img[top:top + nh, left:left + nw]


def dihedral(img: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flip/rotation variants (mode 0 = identity; 1-3 rotations; 4-7 flipped)."""
    if not 0 <= mode < 8:
        raise ValueError(f"augmentation mode must be in 0..7, got {mode}")
    out = np.rot90(img, k=mode % 4, axes=(0, 1))
    if mode >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def random_dihedral_pair(lq: np.ndarray, gt: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    mode = int(rng.integers(0, 8))
    return dihedral(lq, mode), dihedral(gt, mode)


def to_chw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(img, (2, 0, 1)).astype(np.float32))
