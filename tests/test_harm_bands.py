"""tools/harm_bands.py: swapping bands back from the input locates a model's harm."""
import cv2
import numpy as np
import pytest
import skimage.data

from ms_osr.metrics import calculate_psnr
from scripts import load_script

tool = load_script("tools/harm_bands.py")


def _clean():
    return skimage.data.astronaut()[::4, ::4].astype(np.float32) / 255.0


def _psnr(a, b):
    return calculate_psnr(a, b, convention="aio")


def test_a_darkening_is_undone_by_the_means_and_the_low_band_a_lost_detail_is_not():
    lq = 0.1 + 0.8 * _clean()  # no clipping below
    darker = lq - 0.08  # harm in tone only
    swaps = tool.band_swaps(darker, lq, sigmas=(2, 8))
    assert _psnr(darker, lq) < 23
    assert _psnr(swaps["means"], lq) > 40 and _psnr(swaps["band<8"], lq) > 35
    smoothed = cv2.GaussianBlur(lq, (0, 0), 1.5)  # harm in detail only: both bands are the input's already
    swaps = tool.band_swaps(smoothed, lq, sigmas=(2, 8))
    for name in ("means", "band<2", "band<8"):
        assert _psnr(swaps[name], lq) == pytest.approx(_psnr(smoothed, lq), abs=1.0), name


def test_prints_every_degradation_on_a_stand_in_corpus(tmp_path, capsys):
    from ms_osr.data.corpus import read_manifest, stored_name
    from ms_osr.data.io import write_image

    for i, r in enumerate(x for x in read_manifest() if x["split"] == "test"):
        path = tmp_path / "photos" / stored_name(r)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(str(path), np.random.default_rng(i).random((40, 48, 3)).astype(np.float32))
    assert tool.main(["--ckpt", "ckpt/osr_small_rain.ckpt", "--root", str(tmp_path / "photos"), "--crop", "32",
                      "--degradations", "identity", "jpeg"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:6] == ["degradation", "input", "output", "means", "band<2", "band<4"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"identity", "jpeg"} and float(rows["identity"][1]) == 100.0
    assert "lowest output: " in lines[2] and "most harmed" in lines[1]
    assert len(rows["jpeg"]) == 6 + 1 + 6  # the name, 6 columns, then 3 photos and their harm


def test_a_missing_corpus_is_one_line(tmp_path, capsys):
    assert tool.main(["--ckpt", "ckpt/osr_small_rain.ckpt", "--root", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "none") in err
