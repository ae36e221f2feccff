"""Files in, files out (issue 18, points 1-3): permissions, output locations, write failures,
grayscale / 16-bit / tiny inputs and inputs without usable ground truth."""
import errno
import json
import os
import stat

import cv2
import numpy as np
import pytest

import ms_osr  # noqa: F401

import toy_restorers as toys
from scripts import load_script
from ms_osr.checkpoint import save_checkpoint
from ms_osr.config import save_config
from ms_osr.data.io import write_image
from ms_osr.evaluation import (EvaluationError, check_output_safe, collect_samples, evaluate_samples, write_csv)
from ms_osr.fileio import writable_folder_problem
from ms_osr.input_size import min_side, model_unit, size_verdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


CLI = load_script("test.py", "ms_osr_test_cli_files")


def _img(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


class Tint:
    """A restorer that tints its output (R up, G down), as a network may do to a gray image."""

    def __init__(self, size_multiple=1):
        self.size_multiple = size_multiple

    def __call__(self, img):
        return np.clip(img + np.array([0.06, -0.06, 0.0], np.float32), 0, 1)


class Identity:
    size_multiple = 1

    def __call__(self, img):
        return img.copy()


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.fixture
def toy_ckpt(tmp_path):
    net = toys.toy_convnet(width=8)
    ck = tmp_path / "toy.ckpt"
    save_checkpoint(net, str(ck))
    save_config({"model": {"name": "toy_convnet", "kwargs": {"width": 8}}}, str(tmp_path / "toy.yaml"))
    return str(ck)


def _no_model_load(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the output location was checked")

    monkeypatch.setattr(CLI, "load", refuse)


# ----------------------------------------------------------------------------- 1. umask
@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_outputs_honour_the_umask(tmp_path, umask, mask, expected):
    from ms_osr.export import export_mindir

    umask(mask)
    img, csv_path, ckpt = str(tmp_path / "a.png"), str(tmp_path / "m.csv"), str(tmp_path / "w.ckpt")
    write_image(img, _img(8, 8))
    write_csv(csv_path, [{"a": 1}], ["a"])
    save_checkpoint(toys.toy_convnet(width=4), ckpt)  # MindSpore makes its own file 0400
    rep = export_mindir(toys.toy_convnet(width=4), str(tmp_path / "net.mindir"), (8, 8))
    for path in (img, csv_path, ckpt, rep.path):
        assert _mode(path) == expected, (path, oct(_mode(path)))
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]


# ----------------------------------------------------------------------------- 2. output location
def test_unwritable_output_is_refused_before_the_model_loads(tmp_path, toy_ckpt, monkeypatch, capsys):
    write_image(str(tmp_path / "in.png"), _img(8, 8))
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    _no_model_load(monkeypatch)
    user_path = str(blocker / "out")
    rc = CLI.main(["--ckpt", toy_ckpt, "--input", str(tmp_path / "in.png"), "--output", user_path])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == [f"error: {user_path}: output location cannot be written ({blocker} is not a folder)"]


def test_read_only_output_folder_is_named_in_one_line(tmp_path, toy_ckpt, monkeypatch, capsys):
    """A read-only mount (simulated: the tests run as root, for whom chmod does not protect a folder)."""
    import tempfile

    write_image(str(tmp_path / "in.png"), _img(8, 8))
    ro = tmp_path / "mnt"
    ro.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir and os.path.abspath(dir).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, ".ms_osr-write-check-x"))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    assert writable_folder_problem(str(ro / "sub")) == f"cannot create it in {ro}: Read-only file system"
    _no_model_load(monkeypatch)
    for argv, named in ((["--input", str(tmp_path / "in.png"), "--output", str(ro / "res")], str(ro / "res")),
                        (["--input", str(tmp_path / "in.png"), "--output", str(ro / "one.png")], str(ro / "one.png")),
                        (["--output", str(ro)], str(ro))):  # the demo too
        rc = CLI.main((["--ckpt", toy_ckpt] if "--input" in argv else ["--ckpt-dir", str(tmp_path)]) + argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1, err
        assert err[0].startswith(f"error: {named}: output location cannot be written (") and "Read-only" in err[0]
        assert ".ms_osr-write-check" not in err[0] and "Traceback" not in err[0]
    assert os.listdir(ro) == []


def test_full_disk_loses_one_file_not_the_run(tmp_path, toy_ckpt, monkeypatch, capsys):
    inp, gt, out = tmp_path / "in", tmp_path / "gt", tmp_path / "out"
    inp.mkdir()
    gt.mkdir()
    for i in range(3):
        clean = _img(12, 16, seed=i)
        write_image(str(gt / f"im{i}.png"), clean)
        write_image(str(inp / f"im{i}.png"), np.clip(clean + 0.05, 0, 1))
    (inp / "bad.png").write_bytes(b"not a png")
    real_fsync = os.fsync

    def fsync(fd):  # the disk fills up while im1.png and metrics.md are written
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith((".tmp-im1.png", ".tmp-metrics.md")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    rc = CLI.main(["--ckpt", toy_ckpt, "--input", str(inp), "--gt", str(gt), "--output", str(out),
                   "--metric-convention", "aio"])
    cap = capsys.readouterr()
    assert rc == 1
    assert sorted(os.listdir(out)) == ["im0.png", "im2.png", "metrics.csv", "metrics.json"]  # nothing half-written
    assert f"error: {out / 'im1.png'}: not written (No space left on device)" in cap.err.splitlines()
    assert f"error: {out / 'metrics.md'}: not written (No space left on device)" in cap.err.splitlines()
    assert "bad.png: not a decodable image" in cap.err and ".tmp" not in cap.err and "Traceback" not in cap.err
    data = json.loads((out / "metrics.json").read_text())
    assert [r["image"] for r in data["images"]] == ["im0", "im1", "im2"]  # im1 was restored and scored
    assert "output" not in data["images"][1] and data["average"][0]["images"] == 3
    assert any("im1.png: not written" in e for e in data["errors"]) and any("bad.png" in e for e in data["errors"])
    assert "wrote 2 restored images" in cap.out


# ----------------------------------------------------------------------------- 3. image formats
def test_grayscale_in_grayscale_out(tmp_path):
    gray = (np.random.default_rng(1).random((10, 14)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    samples, _, _ = collect_samples(str(tmp_path / "g.png"))
    res = evaluate_samples(Tint(), samples, str(tmp_path / "out"))
    back = cv2.imread(str(tmp_path / "out" / "g.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (10, 14) and back.dtype == np.uint8 and not res.errors
    g = gray.astype(np.float64) / 255
    luma = (0.299 * np.clip(g + 0.06, 0, 1) + 0.587 * np.clip(g - 0.06, 0, 1) + 0.114 * g) * 255
    assert np.abs(back - luma).max() <= 1.0


def test_16bit_in_16bit_out_without_an_8bit_round_trip(tmp_path):
    deep = np.random.default_rng(2).integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    gray16 = np.random.default_rng(3).integers(0, 65536, (7, 5), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    samples, _, _ = collect_samples(str(tmp_path))
    out = tmp_path / "out"
    res = evaluate_samples(Identity(), samples, str(out))
    assert not res.errors
    np.testing.assert_array_equal(cv2.imread(str(out / "d.png"), cv2.IMREAD_UNCHANGED), deep)
    np.testing.assert_array_equal(cv2.imread(str(out / "g16.png"), cv2.IMREAD_UNCHANGED), gray16)
    # an explicit JPEG output cannot hold 16 bits: written 8-bit, with a note naming the file
    single, _, _ = collect_samples(str(tmp_path / "d.png"))
    res = evaluate_samples(Identity(), single, output_file=str(tmp_path / "d.jpg"))
    assert res.notes == [f"{tmp_path / 'd.jpg'}: 16-bit input written as 8-bit (.jpg holds 8 bits; use .png or "
                         f".tif to keep 16)"]
    assert cv2.imread(str(tmp_path / "d.jpg"), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def test_size_rules():
    assert [min_side(u) for u in (1, 2, 4, 8, 32)] == [2, 2, 3, 5, 17]
    assert size_verdict(1, 1, 1)[0] == "1x1 is too small to restore (a side of 1 px has no neighbour to mirror); skipped"
    assert size_verdict(3, 5, 8)[0] == ("5x3 is too small to restore (this model works on at least 8x8 and reflect "
                                        "padding needs a side of 5 px); skipped")
    assert size_verdict(6, 5, 8) == (None, "5x6 is smaller than this model's 8x8 minimum; reflect-padded and "
                                           "cropped back")
    assert size_verdict(8, 9, 8) == (None, None) and size_verdict(2, 2, 1) == (None, None)
    assert model_unit(Tint(8)) == 8 and model_unit(toys.toy_unet()) == 4
    from ms_osr.models.hair import ResHAIR
    assert ResHAIR.min_size == 32  # Res-HAIR pads to 32 inside: its unit is 32, not its multiple 8


def test_tiny_images_are_refused_or_padded_in_one_line(tmp_path):
    for name, (h, w) in {"one": (1, 1), "three": (3, 5), "five": (6, 5), "ok": (8, 8)}.items():
        write_image(str(tmp_path / f"{name}.png"), _img(h, w))
    samples, _, _ = collect_samples(str(tmp_path))
    res = evaluate_samples(Tint(size_multiple=8), samples, str(tmp_path / "out"))
    assert sorted(r["image"] for r in res.records) == ["five", "ok"]
    assert sorted(res.errors) == sorted([
        f"{tmp_path / 'one.png'}: 1x1 is too small to restore (this model works on at least 8x8 and reflect "
        f"padding needs a side of 5 px); skipped",
        f"{tmp_path / 'three.png'}: 5x3 is too small to restore (this model works on at least 8x8 and reflect "
        f"padding needs a side of 5 px); skipped"])
    assert res.notes == [f"{tmp_path / 'five.png'}: 5x6 is smaller than this model's 8x8 minimum; reflect-padded "
                         f"and cropped back"]
    assert sorted(os.listdir(tmp_path / "out")) == ["five.png", "ok.png"]


def test_inputs_without_usable_ground_truth_are_restored_without_metrics(tmp_path):
    inp, gt = tmp_path / "in", tmp_path / "gt"
    inp.mkdir()
    gt.mkdir()
    for name in ("good", "nogt", "size", "broken"):
        write_image(str(inp / f"{name}.png"), _img(12, 12))
    write_image(str(gt / "good.png"), _img(12, 12, seed=5))
    write_image(str(gt / "size.png"), _img(12, 20))
    (gt / "broken.png").write_bytes(b"")
    samples, errors, _ = collect_samples(str(inp), str(gt))
    assert not errors and sorted(s.name for s in samples) == ["broken", "good", "nogt", "size"]
    res = evaluate_samples(Identity(), samples, str(tmp_path / "out"), ("aio",))
    recs = {r["image"]: r for r in res.records}
    assert set(recs) == {"broken", "good", "nogt", "size"}
    assert "psnr" in recs["good"] and not any("psnr" in recs[n] for n in ("broken", "nogt", "size"))
    assert all(os.path.isfile(r["output"]) for r in res.records)
    assert sorted(res.errors) == sorted([
        f"{inp / 'broken.png'}: ground truth {gt / 'broken.png'}: file is empty; restored without metrics",
        f"{inp / 'nogt.png'}: no matching ground truth 'nogt.*' in {gt}; restored without metrics",
        f"{inp / 'size.png'}: ground truth {gt / 'size.png'} is 20x12 but the input is 12x12; restored without "
        f"metrics"])
    assert res.averages()[0]["images"] == 1


def test_cli_folder_of_odd_files(tmp_path, monkeypatch, capsys):
    """Through test.py with a real network (toy U-Net, size multiple 4): gray, 16-bit, tiny, no ground truth."""
    ck = tmp_path / "unet.ckpt"
    save_checkpoint(toys.toy_unet(), str(ck))
    save_config({"model": {"name": "toy_unet", "kwargs": {}}}, str(tmp_path / "unet.yaml"))
    inp = tmp_path / "in"
    inp.mkdir()
    cv2.imwrite(str(inp / "gray.png"), (np.random.default_rng(0).random((12, 12)) * 255).astype(np.uint8))
    cv2.imwrite(str(inp / "deep.png"), np.random.default_rng(1).integers(0, 65536, (8, 8, 3), dtype=np.uint16))
    write_image(str(inp / "dot.png"), _img(1, 1))
    write_image(str(inp / "small.png"), _img(3, 5))
    out = tmp_path / "out"
    rc = CLI.main(["--import", "toy_restorers", "--ckpt", str(ck), "--input", str(inp), "--output", str(out),
                   "--mode", "pynative"])
    cap = capsys.readouterr()
    assert rc == 1
    assert f"error: {inp / 'dot.png'}: 1x1 is too small to restore (this model works on at least 4x4 and reflect " \
           f"padding needs a side of 3 px); skipped" in cap.err.splitlines()
    assert f"note: {inp / 'small.png'}: 5x3 is smaller than this model's 4x4 minimum; reflect-padded and cropped " \
           f"back" in cap.out.splitlines()
    assert cv2.imread(str(out / "gray.png"), cv2.IMREAD_UNCHANGED).shape == (12, 12)
    assert cv2.imread(str(out / "deep.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(out / "small.png"), cv2.IMREAD_UNCHANGED).shape == (3, 5, 3)
    assert not os.path.exists(out / "dot.png")


def test_check_output_safe_still_refuses_inputs(tmp_path):
    write_image(str(tmp_path / "a.png"), _img(8, 8))
    samples, _, _ = collect_samples(str(tmp_path / "a.png"))
    with pytest.raises(EvaluationError, match="overwrite an input"):
        check_output_safe(str(tmp_path), samples, output_file=str(tmp_path / "a.png"))


def test_demo_full_disk_reports_the_file_and_keeps_the_rest(tmp_path, toy_ckpt, monkeypatch, capsys):
    real_fsync = os.fsync

    def fsync(fd):  # no room left for the comparison grid
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".tmp-comparison.png"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "demo"
    rc = CLI.main(["--ckpt-dir", str(tmp_path), "--output", str(out), "--demo-size", "32", "--demo-images", "1"])
    cap = capsys.readouterr()
    assert rc == 1 and f"error: {out / 'comparison.png'}: not written (No space left on device)" in cap.err
    assert "Traceback" not in cap.err and not os.path.exists(out / "comparison.png")
    assert {"metrics.csv", "metrics.json", "metrics.md", "clean", "degraded", "toy"} <= set(os.listdir(out))
