"""CLIP prior preprocessing (issue 18, point 6): OpenAI's resize-short-side + centre crop with PIL's
bicubic, against PIL itself, and which config uses which."""
import os

import numpy as np
import pytest
from PIL import Image

import mindspore as ms

from ms_osr.config import load_config
from ms_osr.models.clip import CLIPImageEncoder
from ms_osr.models.resample import openai_resize_crop, pil_bicubic_matrix

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(input_resolution=64, patch_size=16, width=64, layers=2, heads=2, output_dim=32)


def _pil_resize(img_hw: np.ndarray, size_wh) -> np.ndarray:
    """PIL's float ("F" mode) bicubic: no 8-bit rounding between its two passes."""
    return np.asarray(Image.fromarray(img_hw.astype(np.float32), mode="F").resize(size_wh, Image.BICUBIC))


def _openai_reference(img_chw: np.ndarray, size: int) -> np.ndarray:
    """torchvision's Resize(size, BICUBIC) + CenterCrop(size) on a PIL image, channel by channel."""
    _, h, w = img_chw.shape
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return np.stack([_pil_resize(c, (nw, nh))[top:top + size, left:left + size] for c in img_chw])


@pytest.mark.parametrize("n_in,n_out", [(13, 29), (80, 64), (50, 17), (9, 9)])
def test_bicubic_matrix_is_pils(n_in, n_out, rng):
    row = rng.random((1, n_in), dtype=np.float32)
    want = _pil_resize(row, (n_out, 1))[0]
    got = pil_bicubic_matrix(n_in, n_out).asnumpy() @ row[0]
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize("h,w", [(80, 96), (100, 70), (70, 100), (64, 64), (40, 52)])
def test_openai_resize_crop_matches_pil(h, w, rng):
    img = rng.random((3, h, w), dtype=np.float32)
    got = openai_resize_crop(ms.Tensor(img[None]), 64).asnumpy()[0]
    np.testing.assert_allclose(got, _openai_reference(img, 64), atol=1e-5)


def test_encoder_openai_mode_in_graph_mode(rng):
    """The whole encoder (GRAPH_MODE, conftest) on a 96x80 image: the openai mode equals the tower on
    PIL-preprocessed pixels, and differs from stretching the image (the issue's case)."""
    img = rng.random((1, 3, 80, 96), dtype=np.float32)
    ms.set_seed(0)
    openai = CLIPImageEncoder(**TINY, preprocess="openai")
    stretch = CLIPImageEncoder(**TINY)
    stretch.visual = openai.visual  # same weights, only the preprocessing differs
    for net in (openai, stretch):
        net.set_train(False)
    got = openai(ms.Tensor(img)).asnumpy()
    mean = np.array([0.48145466, 0.4578275, 0.40821073], np.float32).reshape(3, 1, 1)
    std = np.array([0.26862954, 0.26130258, 0.27577711], np.float32).reshape(3, 1, 1)
    pixels = (_openai_reference(img[0], 64) - mean) / std
    want = openai.visual(ms.Tensor(pixels[None].astype(np.float32))).asnumpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=2e-5)
    other = stretch(ms.Tensor(img)).asnumpy()
    assert float((got * other).sum()) < 0.999  # cosine of two unit vectors
    with pytest.raises(ValueError, match="preprocess must be one of stretch, openai"):
        CLIPImageEncoder(**TINY, preprocess="squash")


def test_configs_name_their_preprocessing():
    """docs/ptg_rm.md: real OpenAI weights get OpenAI's preprocessing; the random-weight tiny prior
    keeps the whole image (stretch)."""
    def osf(name):
        return load_config(os.path.join(ROOT, "configs", name))["model"]["kwargs"]["osf_kwargs"]

    assert osf("ptg_rm_lol.yaml") == {"ckpt": "ViT-B-32.pt", "preprocess": "openai"}
    assert osf("ptg_rm_small_cpu.yaml") == {"config": "clip_tiny", "preprocess": "stretch"}
    with open(os.path.join(ROOT, "docs", "ptg_rm.md"), encoding="utf-8") as fh:
        doc = fh.read()
    assert "ptg_rm_lol.yaml" in doc and "preprocess: openai" in doc and "preprocess: stretch" in doc
