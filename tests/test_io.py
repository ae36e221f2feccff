"""Image I/O: every format and bit depth, and every bad-file case."""
import os

import cv2
import numpy as np
import pytest

from ms_osr.data.io import ImageReadError, list_images, read_image, write_image


@pytest.fixture
def rgb8(rng):
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_lossless_8bit_roundtrip_is_rgb(tmp_path, rgb8, ext):
    path = str(tmp_path / f"img{ext}")
    cv2.imwrite(path, cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR))
    img = read_image(path)
    assert img.dtype == np.float32 and img.shape == (20, 30, 3)
    np.testing.assert_array_equal(np.round(img * 255).astype(np.uint8), rgb8)


def test_jpeg_reads_close(tmp_path, rgb8):
    smooth = cv2.GaussianBlur(rgb8, (7, 7), 3)
    path = str(tmp_path / "img.jpg")
    cv2.imwrite(path, cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    img = read_image(path)
    assert np.abs(img * 255 - smooth).mean() < 3


def test_16bit_png(tmp_path, rng):
    data = rng.integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    path = str(tmp_path / "deep.png")
    cv2.imwrite(path, data[:, :, ::-1])
    img = read_image(path)
    np.testing.assert_allclose(img, data.astype(np.float32) / 65535.0, atol=1e-7)


def test_grayscale_expanded(tmp_path, rng):
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    path = str(tmp_path / "gray.png")
    cv2.imwrite(path, gray)
    img = read_image(path)
    assert img.shape == (9, 7, 3)
    for c in range(3):
        np.testing.assert_allclose(img[:, :, c], gray / 255.0, atol=1e-7)


def test_alpha_dropped_with_warning(tmp_path, rgb8):
    bgra = np.concatenate([rgb8[:, :, ::-1], np.full((20, 30, 1), 7, np.uint8)], axis=2)
    path = str(tmp_path / "alpha.png")
    cv2.imwrite(path, bgra)
    with pytest.warns(UserWarning, match="alpha"):
        img = read_image(path)
    np.testing.assert_array_equal(np.round(img * 255).astype(np.uint8), rgb8)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="nope.png: file not found"):
        read_image(str(tmp_path / "nope.png"))


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(str(tmp_path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png: file is empty"):
        read_image(str(path))


def test_non_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n" * 20)
    with pytest.raises(ImageReadError, match="notes.png: not a decodable image"):
        read_image(str(path))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif"])
def test_truncated(tmp_path, rgb8, ext):
    big = cv2.resize(rgb8, (300, 200), interpolation=cv2.INTER_NEAREST)
    full = str(tmp_path / f"full{ext}")
    cv2.imwrite(full, big)
    data = open(full, "rb").read()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=f"cut{ext}"):
        read_image(str(cut))


def test_write_png_roundtrip_and_atomic(tmp_path, rng):
    img = rng.random((11, 13, 3)).astype(np.float32)
    path = str(tmp_path / "out.png")
    write_image(path, img)
    np.testing.assert_allclose(read_image(path), np.round(img * 255) / 255, atol=1e-6)
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary left behind
    write_image(path, img, bit_depth=16)
    np.testing.assert_allclose(read_image(path), img, atol=1e-5)


def test_failed_write_keeps_old_file(tmp_path, rng):
    path = str(tmp_path / "keep.png")
    write_image(path, np.zeros((4, 4, 3), np.float32))
    before = open(path, "rb").read()
    with pytest.raises(ValueError, match="keep.png"):
        write_image(path, np.zeros((4, 4, 5), np.float32))
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["keep.png"]


def test_list_images(tmp_path, rgb8):
    for name in ("b.png", "a.jpg", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [os.path.basename(p) for p in list_images(str(tmp_path))] == ["a.jpg", "b.png"]
    with pytest.raises(ImageReadError, match="not a directory"):
        list_images(str(tmp_path / "a.jpg"))
