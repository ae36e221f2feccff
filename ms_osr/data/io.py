"""Image reading and writing on OpenCV.

``read_image`` returns HxWx3 float32 RGB in [0, 1] for any PNG/JPEG/BMP/TIFF (8/16-bit,
grayscale expanded, alpha dropped with a warning).  Every failure raises
:class:`ImageReadError` whose message names the file.  ``read_image_with_format`` also says
what the file was (grayscale or colour, 8- or 16-bit) so that a result can be written back
the same way (``to_format`` + ``write_image(..., bit_depth=fmt.bit_depth)``).
``write_image`` writes atomically, so an interrupted run never leaves a half-written PNG.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from ..fileio import atomic_path
from ..errors import MsOsrError  # noqa: E402

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# A JPEG ends with the EOI marker; OpenCV decodes a truncated JPEG with only a libjpeg warning.
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"


class ImageReadError(MsOsrError, ValueError):
    """An image file is missing, empty, truncated or not an image (message names the file)."""


@dataclass(frozen=True)
class ImageFormat:
    """What an image file held: 1 (grayscale) or 3 channels, 8 or 16 bits (float files count as 16)."""

    channels: int = 3
    bit_depth: int = 8


def is_image_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder: str) -> list:
    """Sorted image files directly inside ``folder``."""
    if not os.path.isdir(folder):
        raise ImageReadError(f"{folder}: not a directory")
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if is_image_file(n) and os.path.isfile(os.path.join(folder, n)))


def _to_unit_float(img: np.ndarray, path: str) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype in (np.float32, np.float64):
        return np.clip(img.astype(np.float32), 0.0, 1.0)
    raise ImageReadError(f"{path}: unsupported pixel type {img.dtype}")


def read_image(path: str) -> np.ndarray:
    """Read an image file as an HxWx3 float32 RGB array in [0, 1]."""
    return read_image_with_format(path)[0]


def read_image_with_format(path: str) -> Tuple[np.ndarray, ImageFormat]:
    """:func:`read_image` plus the file's :class:`ImageFormat`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageReadError(f"{path}: file not found")
    if not os.path.isfile(path):
        raise ImageReadError(f"{path}: not a regular file")
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        raise ImageReadError(f"{path}: file is empty")
    if data[:2] == _JPEG_SOI and _JPEG_EOI not in data[-1024:]:
        raise ImageReadError(f"{path}: truncated JPEG (no end-of-image marker)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageReadError(f"{path}: not a decodable image (corrupt, truncated or unsupported format)")
    fmt = ImageFormat(channels=1 if img.ndim == 2 or img.shape[2] == 1 else 3,
                      bit_depth=8 if img.dtype == np.uint8 else 16)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        warnings.warn(f"{path}: alpha channel dropped", UserWarning, stacklevel=2)
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise ImageReadError(f"{path}: unsupported image layout {img.shape}")
    return np.ascontiguousarray(_to_unit_float(img, path)), fmt


def to_format(img: np.ndarray, fmt: ImageFormat) -> np.ndarray:
    """An HxWx3 RGB result in the channel layout of ``fmt``: grayscale files get HxW back.

    A grayscale input is restored as three equal channels; the network may tint them
    slightly, so the result is converted back with OpenCV's (BT.601) luma weights.
    """
    if fmt.channels == 1 and img.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(img, np.float32), cv2.COLOR_RGB2GRAY)
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 with rounding (uint8 input is returned unchanged)."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.round(np.asarray(img, np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_image(path: str, img: np.ndarray, bit_depth: int = 8) -> None:
    """Write an HxWx3 RGB (or HxW) image in [0, 1] to ``path`` atomically (8- or 16-bit)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: unsupported output extension '{ext}'")
    img = np.asarray(img)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
        raise ValueError(f"{path}: expected HxW or HxWx3 image, got shape {img.shape}")
    if bit_depth == 16:
        if ext not in (".png", ".tif", ".tiff"):
            raise ValueError(f"{path}: 16-bit output needs PNG or TIFF")
        out = np.clip(np.round(np.asarray(img, np.float64) * 65535.0), 0, 65535).astype(np.uint16)
    elif bit_depth == 8:
        out = to_uint8(img)
    else:
        raise ValueError(f"{path}: bit_depth must be 8 or 16")
    if out.ndim == 3 and out.shape[2] == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, out)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the image")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buf.tobytes())
