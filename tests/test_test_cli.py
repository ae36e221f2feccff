"""test.py and ms_osr.evaluation: folder runs, bad inputs, tables, grids, benchmarks, the OSR protocol, demo.

Most checks call the library or ``test.main(argv)`` in-process (a MindSpore process start
costs seconds); two subprocess runs check the real entry point.
"""
import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import ms_osr  # noqa: F401

import toy_restorers as toys
from scripts import load_script
from ms_osr.checkpoint import save_checkpoint
from ms_osr.config import save_config
from ms_osr.data.io import read_image, write_image
from ms_osr.evaluation import (EvaluationError, benchmark_samples, check_output_safe, collect_samples,
                               comparison_grid, evaluate_samples, format_table, markdown_table, osr_protocol,
                               write_csv, write_json)
from ms_osr.inference import Restorer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


CLI = load_script("test.py")


def _img(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def _noisy(img, seed):
    return np.clip(img + 0.1 * np.random.default_rng(seed).standard_normal(img.shape), 0, 1).astype(np.float32)


@pytest.fixture
def folders(tmp_path):
    """in/ (3 good images + every kind of bad file) and gt/ (matching clean images)."""
    inp, gt = tmp_path / "in", tmp_path / "gt"
    inp.mkdir()
    gt.mkdir()
    for i, (h, w) in enumerate([(24, 32), (31, 17), (40, 40)]):
        clean = _img(h, w, seed=i)
        write_image(str(gt / f"im{i}.png"), clean)
        write_image(str(inp / f"im{i}.png"), _noisy(clean, i))
    (inp / "empty.png").write_bytes(b"")
    (inp / "text.png").write_text("not an image")
    (gt / "empty.png").write_bytes(b"")
    write_image(str(gt / "text.png"), _img(8, 8))
    write_image(str(inp / "nogt.png"), _img(16, 16))
    write_image(str(inp / "size.png"), _img(20, 20))
    write_image(str(gt / "size.png"), _img(20, 24))
    (inp / "readme.txt").write_text("ignored")
    return inp, gt


@pytest.fixture
def toy_ckpt(tmp_path):
    net = toys.toy_convnet(width=8)
    ck = tmp_path / "toy.ckpt"
    save_checkpoint(net, str(ck))
    save_config({"model": {"name": "toy_convnet", "kwargs": {"width": 8}},
                 "data": {"train": {"degradations": ["noise_25"]}}}, str(tmp_path / "toy.yaml"))
    return str(ck)


# ----------------------------------------------------------------------------- library
def test_collect_samples_pairs_by_name_and_reports_problems(folders):
    inp, gt = folders
    samples, errors, notes = collect_samples(str(inp), str(gt))
    names = sorted(s.name for s in samples)
    assert names == ["empty", "im0", "im1", "im2", "nogt", "size", "text"]  # nogt: restored without metrics
    assert not errors
    assert len(notes) == 1 and "readme.txt" in notes[0]
    with pytest.raises(EvaluationError, match="readme.txt: not an image file"):
        collect_samples(str(inp / "readme.txt"))
    with pytest.raises(EvaluationError, match="must be a folder"):
        collect_samples(str(inp), str(gt / "im0.png"))
    with pytest.raises(EvaluationError, match="missing: input not found"):
        collect_samples(str(inp / "missing"))
    rain, norain = inp.parent / "rain", inp.parent / "norain"
    rain.mkdir()
    norain.mkdir()
    write_image(str(rain / "rain-7.png"), _img(8, 8))
    write_image(str(norain / "norain-7.png"), _img(8, 8))
    samples, errors, _ = collect_samples(str(rain), str(norain))
    assert not errors and samples[0].sources[1].endswith("norain-7.png")
    empty = inp.parent / "emptydir"
    empty.mkdir()
    with pytest.raises(EvaluationError, match="no image files"):
        collect_samples(str(empty))


def test_evaluate_continues_past_bad_files(folders, tmp_path):
    inp, gt = folders
    samples, _, _ = collect_samples(str(inp), str(gt))
    out = tmp_path / "out"
    res = evaluate_samples(Restorer(toys.toy_convnet()), samples, str(out), ("aio", "basicsr"))
    assert sorted(r["image"] for r in res.records) == ["im0", "im1", "im2", "nogt", "size"]
    assert len(res.errors) == 4
    joined = "\n".join(res.errors)
    assert "empty.png: file is empty" in joined
    assert "text.png: not a decodable image" in joined
    assert "size.png is 24x20 but the input is 20x20; restored without metrics" in joined
    assert "nogt.png: no matching ground truth 'nogt.*'" in joined
    assert all("\n" not in e for e in res.errors)
    for r in res.records:
        if r["image"] in ("im0", "im1", "im2"):
            assert {"psnr_aio", "ssim_aio", "psnr_in_basicsr", "ssim_basicsr"} <= set(r)
        assert read_image(r["output"]).shape == (r["height"], r["width"], 3)
    avg = res.averages()[0]
    assert avg["images"] == 3 and avg["psnr_aio"] == pytest.approx(np.mean([r["psnr_aio"] for r in res.records
                                                                            if "psnr_aio" in r]))


def test_outputs_never_overwrite_inputs(folders, tmp_path):
    inp, gt = folders
    samples, _, _ = collect_samples(str(inp), str(gt))
    with pytest.raises(EvaluationError, match="output folder is an input folder"):
        check_output_safe(str(inp), samples)
    with pytest.raises(EvaluationError, match="output folder is an input folder"):
        check_output_safe(str(gt), samples)  # gt/im0.png would be replaced
    single, _, _ = collect_samples(str(inp / "im0.png"))
    with pytest.raises(EvaluationError, match="overwrite an input"):
        check_output_safe(str(inp), single, output_file=str(inp / "im0.png"))
    check_output_safe(str(tmp_path / "elsewhere"), samples)  # fine


def test_tables_csv_json_markdown(tmp_path):
    rows = [{"image": "a", "psnr": 30.123456, "ssim": 0.912345, "time_s": 0.5},
            {"image": "b", "psnr": float("inf"), "ssim": 1.0, "time_s": 0.25, "_images": "dropped"}]
    cols = ["image", "psnr", "ssim", "time_s"]
    text = format_table(rows, cols, title="T")
    assert "30.12" in text and "0.9123" in text and "inf" in text
    md = markdown_table(rows, cols)
    assert md.splitlines()[0] == "| image | psnr | ssim | time_s |" and "| a | 30.12 | 0.9123 | 0.500 |" in md
    write_csv(str(tmp_path / "m.csv"), rows, cols)
    with open(tmp_path / "m.csv") as fh:
        back = list(csv.DictReader(fh))
    assert back[0]["image"] == "a" and float(back[0]["psnr"]) == pytest.approx(30.123456)
    write_json(str(tmp_path / "m.json"), {"rows": rows})
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["rows"][1]["psnr"] == "inf" and "_images" not in data["rows"][1]


def test_comparison_grid_is_labelled(tmp_path):
    a, b = _img(40, 60), _img(50, 50, seed=1)
    grid = comparison_grid([[("degraded", a), ("restored", b), ("clean", None)]], cell=64)
    assert grid.dtype == np.uint8 and grid.shape == (4 * 2 + 22 + 64, 3 * 64 + 4 * 4, 3)
    strip = grid[4:4 + 22, 4:4 + 64]
    assert strip.max() > 200  # white label text drawn by cv2.putText on a black strip
    write_image(str(tmp_path / "g.png"), grid)
    assert read_image(str(tmp_path / "g.png")).shape == grid.shape


def test_benchmark_layouts(tmp_path):
    rain = tmp_path / "Rain100L"
    (rain / "input").mkdir(parents=True)
    (rain / "target").mkdir()
    for i in (1, 2):
        write_image(str(rain / "target" / f"norain-{i}.png"), _img(35, 40, seed=i))
        write_image(str(rain / "input" / f"rain-{i}.png"), _img(35, 40, seed=10 + i))
    write_image(str(rain / "input" / "rain-3.png"), _img(35, 40))  # no clean image
    samples, errors = benchmark_samples("rain100l", str(rain))
    assert [s.name for s in samples] == ["rain-1", "rain-2"]
    assert len(errors) == 1 and "rain-3.png" in errors[0]
    lq, gt = samples[0].load()
    assert lq.shape == gt.shape == (32, 32, 3)  # all-in-one protocol: centre crop to a multiple of 16
    bsd = tmp_path / "CBSD68"
    bsd.mkdir()
    for i in range(2):
        write_image(str(bsd / f"{i:04d}.png"), _img(33, 49, seed=i))
    samples, errors = benchmark_samples("bsd68", str(bsd), sigmas=(15, 50), seed=0)
    assert len(samples) == 4 and not errors
    assert [s.group for s in samples] == ["sigma15", "sigma15", "sigma50", "sigma50"]
    lq, gt = samples[2].load()
    assert lq.shape == gt.shape == (32, 48, 3)
    lq2, _ = samples[2].load()
    np.testing.assert_array_equal(lq, lq2)  # seeded
    assert 40 / 255 < np.std(lq - gt) < 55 / 255
    with pytest.raises(EvaluationError, match="unknown benchmark"):
        benchmark_samples("nope", str(bsd))
    with pytest.raises(EvaluationError, match="CBSD68: no blur"):
        benchmark_samples("gopro", str(bsd))


def test_osr_protocol_table(tmp_path):
    images = {"a": _img(32, 32, seed=1), "b": _img(32, 40, seed=2)}

    def identity(x):
        return x

    res = osr_protocol({"restorer": identity, "reprogrammed": Restorer(toys.toy_convnet())}, images,
                       known=["noise_25"], degradations=["noise_25", "rain", "haze"], output_dir=str(tmp_path))
    assert res.table_columns == ["model", "noise_25 (known)", "rain (OOS)", "haze (OOS)", "known", "OOS"]
    rows = {r["model"]: r for r in res.table_rows}
    assert list(rows) == ["degraded", "restorer", "reprogrammed"]
    for col in res.table_columns[1:]:
        assert rows["restorer"][col] == pytest.approx(rows["degraded"][col])  # identity = no restoration
    deg = rows["degraded"]
    assert deg["OOS"] == pytest.approx((deg["rain (OOS)"] + deg["haze (OOS)"]) / 2)
    md = (tmp_path / "osr_protocol.md").read_text()
    assert md.count("\n| reprogrammed |") == 4 and "\nPSNR\n" in md and "\nSSIM\n" in md  # 2 tables + 2 pairs
    pairs = {(r["model"], r["vs"]): r for r in res.paired_rows}
    assert set(pairs) == {("restorer", "degraded"), ("reprogrammed", "restorer"), ("reprogrammed", "degraded")}
    same = pairs[("restorer", "degraded")]  # identity against its own input: no difference, nothing won
    assert same["known_diff"] == 0 and same["OOS_lo"] == 0 and same["OOS_won"] == same["OOS_lost"] == 0
    assert pairs[("reprogrammed", "restorer")]["images"] == 2
    assert os.path.isfile(tmp_path / "osr_protocol_images.csv") and os.path.isfile(tmp_path / "osr_protocol_paired.csv")
    with open(tmp_path / "osr_protocol_long.csv") as fh:
        long_rows = list(csv.DictReader(fh))
    assert len(long_rows) == 9 and {r["split"] for r in long_rows} == {"known", "OOS"}
    from ms_osr.evaluation import library_degradations
    lib = library_degradations()
    assert "noise_25" in lib and "gaussian_noise" not in lib and "bicubic_x2" in lib and "bicubic" not in lib
    assert {"rain", "haze", "jpeg", "low_light", "motion_blur"} <= set(lib)
    with pytest.raises(EvaluationError, match="not in the evaluated set"):
        osr_protocol({"r": identity}, images, known=["jpeg"], degradations=["rain"])


# ----------------------------------------------------------------------------- CLI in-process
def test_cli_folder_run(folders, toy_ckpt, tmp_path, capsys):
    inp, gt = folders
    out = tmp_path / "restored"
    rc = CLI.main(["--ckpt", toy_ckpt, "--input", str(inp), "--gt", str(gt), "--output", str(out),
                   "--metric-convention", "basicsr", "--y-channel", "--crop-border", "2", "--tile", "16",
                   "--tile-overlap", "8"])
    cap = capsys.readouterr()
    assert rc == 1  # bad files are reported at the end
    assert sorted(os.listdir(out)) == ["im0.png", "im1.png", "im2.png", "metrics.csv", "metrics.json", "metrics.md",
                                       "nogt.png", "size.png"]  # no usable ground truth: restored, no metrics
    assert "nogt.png: no matching ground truth" in cap.err and "empty.png: file is empty" in cap.err
    assert "4 problem(s)" in cap.err and "readme.txt: ignored" in cap.out
    data = json.loads((out / "metrics.json").read_text())
    assert data["settings"]["metric_convention"] == "basicsr" and data["settings"]["tile"] == 16
    assert data["settings"]["inputs"] == {"input": str(inp), "gt": str(gt), "limit": None}
    assert len(data["images"]) == 5 and data["average"][0]["images"] == 3 and "psnr" in data["images"][0]
    assert "average" in cap.out


def test_cli_single_image_refusals_and_export(folders, toy_ckpt, tmp_path, capsys):
    inp, gt = folders
    # output == input: refused before anything is written
    rc = CLI.main(["--ckpt", toy_ckpt, "--input", str(inp / "im0.png"), "--output", str(inp / "im0.png")])
    assert rc == 1 and "overwrite an input" in capsys.readouterr().err
    rc = CLI.main(["--ckpt", toy_ckpt, "--input", str(inp), "--output", str(inp)])
    assert rc == 1 and "output folder is an input folder" in capsys.readouterr().err
    # wrong model for the checkpoint / other size
    rc = CLI.main(["--ckpt", toy_ckpt, "--model", "toy_unet", "--input", str(inp / "im0.png"),
                   "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 1 and toy_ckpt in err and len(err.strip().splitlines()) == 1
    rc = CLI.main(["--ckpt", toy_ckpt, "--set", "width=16", "--input", str(inp / "im0.png"),
                   "--output", str(tmp_path / "x")])
    assert rc == 1 and "wrong shape" in capsys.readouterr().err
    # unreadable single file
    rc = CLI.main(["--ckpt", toy_ckpt, "--input", str(inp / "text.png"), "--output", str(tmp_path / "x")])
    assert rc == 1 and "text.png: not a decodable image" in capsys.readouterr().err
    # a good single file to an explicit file name, self-ensemble, plus MindIR export
    dst = tmp_path / "one.png"
    rc = CLI.main(["--ckpt", toy_ckpt, "--input", str(inp / "im1.png"), "--gt", str(gt / "im1.png"),
                   "--output", str(dst), "--self-ensemble", "--export", "mindir", "--export-size", "32", "24",
                   "--export-path", str(tmp_path / "toy.mindir")])
    out = capsys.readouterr().out
    assert rc == 0 and read_image(str(dst)).shape == (31, 17, 3)
    assert os.path.isfile(tmp_path / "toy.mindir")
    # the MindIR holds MindSpore's own convs, the network on CPU the C++ kernels: float rounding only
    assert float(re.search(r"max\|diff\| ([0-9.e+-]+)", out).group(1)) < 1e-6


def test_cli_benchmark_bsd68(toy_ckpt, tmp_path, capsys):
    bsd = tmp_path / "CBSD68"
    bsd.mkdir()
    for i in range(2):
        write_image(str(bsd / f"{i:04d}.png"), _img(40, 36, seed=i))
    out = tmp_path / "bench"
    rc = CLI.main(["--ckpt", toy_ckpt, "--benchmark", "bsd68", "--data-root", str(bsd), "--sigma", "15", "50",
                   "--metric-convention", "aio", "--output", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    data = json.loads((out / "metrics.json").read_text())
    groups = {r["group"]: r for r in data["average"]}
    assert set(groups) == {"sigma15", "sigma50", "all"} and groups["all"]["images"] == 4
    assert groups["sigma15"]["psnr_in"] > groups["sigma50"]["psnr_in"] + 5
    assert sorted(os.listdir(out))[:2] == ["0000_sigma15.png", "0000_sigma50.png"]
    rc = CLI.main(["--ckpt", toy_ckpt, "--benchmark", "bsd68", "--output", str(out)])
    assert rc == 1 and "--data-root" in capsys.readouterr().err


def test_cli_demo_without_checkpoints_fails_clearly(tmp_path, capsys):
    empty = tmp_path / "ckpt"
    empty.mkdir()
    rc = CLI.main(["--ckpt-dir", str(empty), "--output", str(tmp_path / "demo")])
    assert rc == 2 and "no checkpoint shipped" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_cli_demo_and_protocol_with_toy_checkpoints(tmp_path, capsys, monkeypatch):
    from ms_osr.data import corpus

    monkeypatch.setattr(corpus, "DEFAULT_ROOT", str(tmp_path / "no_photos"))  # the fallback: scikit-image samples
    ck = tmp_path / "ckpt"
    ck.mkdir()
    for name, model in (("toy_a", "toy_convnet"), ("toy_b", "toy_unet")):
        save_checkpoint(getattr(toys, model)(), str(ck / f"{name}.ckpt"))
        save_config({"model": {"name": model, "kwargs": {}},
                     "data": {"train": {"degradations": ["noise_15", {"name": "rain", "random": True}]}}},
                    str(ck / f"{name}.yaml"))
    (ck / "orphan.ckpt").write_bytes(b"x")  # no yaml: reported, the others still run
    out = tmp_path / "demo"
    rc = CLI.main(["--ckpt-dir", str(ck), "--output", str(out), "--demo-size", "48"])
    cap = capsys.readouterr()
    assert rc == 1 and "orphan.ckpt: no config found" in cap.err
    for model in ("toy_a", "toy_b"):
        files = os.listdir(out / model)
        assert len(files) == 12 and "astronaut_noise.png" in files  # 4 held-out images x 3 degradations
    assert len(os.listdir(out / "degraded")) == 12 and len(os.listdir(out / "clean")) == 4
    grid = read_image(str(out / "comparison.png"))
    assert grid.shape[0] > 12 * 48 and grid.shape[1] > 4 * 48  # rows: image x degradation; cols: deg|a|b|clean
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and {r["trained on"] for r in rows} == {"yes", "no"}
    assert "PSNR restored" in cap.out and "photo corpus not built" in cap.out
    assert all(r["95% CI"].startswith("[") and r["offset"] for r in rows)
    os.remove(ck / "orphan.ckpt")
    rc = CLI.main(["--protocol", "osr", "--ckpt", str(ck / "toy_a.ckpt"), "--osr-ckpt", str(ck / "toy_b.ckpt"),
                   "--degradations", "noise_15", "rain", "jpeg", "--demo-size", "32", "--output", str(out / "osr")])
    cap = capsys.readouterr()
    assert rc == 0 and "noise_15 (known)" in cap.out and "jpeg (OOS)" in cap.out
    assert os.path.isfile(out / "osr" / "osr_protocol.csv")


# ----------------------------------------------------------------------------- real entry point
def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=TESTS)
    return subprocess.run([sys.executable, os.path.join(ROOT, "test.py")] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_entry_point_subprocess(folders, toy_ckpt, tmp_path):
    inp, _ = folders
    empty = tmp_path / "none"
    empty.mkdir()
    proc = _run(["--ckpt-dir", str(empty)], cwd=str(tmp_path))
    assert proc.returncode == 2 and "no checkpoint shipped" in proc.stderr
    proc = _run(["--import", "toy_restorers", "--ckpt", toy_ckpt, "--input", str(inp / "im2.png"),
                 "--output", str(tmp_path / "o.png"), "--tile", "16", "--tile-overlap", "8"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert read_image(str(tmp_path / "o.png")).shape == (40, 40, 3)


def test_cli_photo_benchmark_intervals_seeds_and_compare(toy_ckpt, tmp_path, capsys):
    """--benchmark photos: (photo, degradation, seed) fixes every input, seeds are averaged per photo,
    averages carry 95% CIs, and --compare of an identical model gives a zero paired difference."""
    import shutil

    from ms_osr.data.corpus import read_manifest

    root = tmp_path / "photos"
    (root / "test").mkdir(parents=True)
    names = [r["name"] for r in read_manifest() if r["split"] == "test"]
    for i, name in enumerate(names):
        write_image(str(root / "test" / f"{name}.png"), _img(24, 32, seed=i))
    twin = tmp_path / "twin.ckpt"
    shutil.copy(toy_ckpt, twin)
    shutil.copy(tmp_path / "toy.yaml", tmp_path / "twin.yaml")
    out = tmp_path / "bench"
    rc = CLI.main(["--ckpt", toy_ckpt, "--benchmark", "photos", "--data-root", str(root), "--degradations",
                   "noise_25", "rain", "--seeds", "0", "1", "--metric-convention", "aio", "--output", str(out),
                   "--compare", str(twin)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    data = json.loads((out / "metrics.json").read_text())
    assert len(data["images"]) == 2 * 2 * len(names)
    groups = {r["group"]: r for r in data["average"]}
    assert set(groups) == {"noise_25", "rain", "all"}
    for g in groups.values():
        assert g["images"] == len(names)  # photos, not photo x seed records
        assert g["psnr_lo"] <= g["psnr"] <= g["psnr_hi"] and g["psnr_lo"] < g["psnr_hi"]
    # the pooled mean is the mean over photos of the per-photo seed means
    rain = [r for r in data["images"] if r["group"] == "rain"]
    per_photo = {}
    for r in rain:
        per_photo.setdefault(r["photo"], []).append(r["psnr"])
    assert groups["rain"]["psnr"] == pytest.approx(np.mean([np.mean(v) for v in per_photo.values()]))
    assert "95% bootstrap CI" in cap.out
    cmp = {r["group"]: r for r in json.loads((out / "compare.json").read_text())["rows"]}
    assert set(cmp) == {"all", "noise_25", "rain"}
    for r in cmp.values():  # identical model on identical inputs: no difference, nothing won or lost
        assert r["dpsnr"] == 0 and r["dpsnr_lo"] == 0 and r["dpsnr_hi"] == 0
        assert r["psnr_won"] == 0 and r["psnr_lost"] == 0 and r["images"] == len(names)
    # the same seed gives the same degraded input in a second run
    out2 = tmp_path / "bench2"
    assert CLI.main(["--ckpt", toy_ckpt, "--benchmark", "photos", "--data-root", str(root), "--degradations",
                     "rain", "--seeds", "1", "--metric-convention", "aio", "--output", str(out2)]) == 0
    again = {r["photo"]: r["psnr_in"] for r in json.loads((out2 / "metrics.json").read_text())["images"]}
    first = {r["photo"]: r["psnr_in"] for r in rain if r["seed"] == 1}
    assert again == first
    out3 = tmp_path / "bench3"  # --photo-crop: the centre of each photo
    assert CLI.main(["--ckpt", toy_ckpt, "--benchmark", "photos", "--data-root", str(root), "--degradations",
                     "noise_25", "--photo-crop", "16", "--metric-convention", "aio", "--output", str(out3)]) == 0
    sizes = {(r["width"], r["height"]) for r in json.loads((out3 / "metrics.json").read_text())["images"]}
    assert sizes == {(16, 16)}


def test_cli_photo_benchmark_on_another_split_at_the_test_scale(toy_ckpt, tmp_path, capsys):
    """--photo-split extra: the extra photos (stored at full resolution for training crops) are evaluated,
    each first scaled like the test split (long side at most 1024 px; smaller ones unchanged)."""
    from ms_osr.data.corpus import TEST_LONG_SIDE, read_manifest, stored_name

    root = tmp_path / "photos"
    (root / "extra").mkdir(parents=True)
    rows = [r for r in read_manifest() if r["split"] == "extra"]
    names = [os.path.splitext(os.path.basename(stored_name(r)))[0] for r in rows]
    for i, row in enumerate(rows):
        write_image(str(root / stored_name(row)), _img(20, 1280 if i == 0 else 40, seed=i))
    out = tmp_path / "bench"
    rc = CLI.main(["--ckpt", toy_ckpt, "--benchmark", "photos", "--data-root", str(root), "--photo-split", "extra",
                   "--degradations", "noise_25", "--metric-convention", "aio", "--output", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "(extra split)" in cap.out
    sizes = {r["photo"]: (r["width"], r["height"]) for r in json.loads((out / "metrics.json").read_text())["images"]}
    assert set(sizes) == set(names)
    assert sizes[names[0]] == (TEST_LONG_SIDE, 16) and sizes[names[1]] == (40, 20)
    inputs = json.loads((out / "metrics.json").read_text())["settings"]["inputs"]  # how to make it again
    assert inputs == {"benchmark": "photos", "data_root": str(root), "photo_split": "extra", "photo_crop": 0,
                      "seeds": [0], "degradations": ["noise_25"], "limit": None}


def test_cli_photo_benchmark_without_corpus(toy_ckpt, tmp_path, capsys):
    rc = CLI.main(["--ckpt", toy_ckpt, "--benchmark", "photos", "--data-root", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "tools/get_photos.py" in err[0]


def test_colour_offset_is_the_largest_channel_shift_in_grey_levels():
    from ms_osr.evaluation import colour_offset, compute_metrics

    clean = np.full((8, 8, 3), 0.5, np.float32)
    shifted = clean + np.array([2, -10, 4], np.float32) / 255.0
    assert colour_offset(shifted, clean) == pytest.approx(-10.0, abs=1e-4)
    assert colour_offset(clean, clean) == 0.0
    assert compute_metrics(shifted, clean, clean, ("aio",))["offset"] == pytest.approx(-10.0, abs=1e-4)


def test_cli_demo_uses_the_photo_corpus_when_built(tmp_path, capsys, monkeypatch):
    from ms_osr.data import corpus

    root = tmp_path / "photos"
    (root / "test").mkdir(parents=True)
    names = [r["name"] for r in corpus.read_manifest() if r["split"] == "test"]
    for i, name in enumerate(names):
        write_image(str(root / "test" / f"{name}.png"), _img(40, 44, seed=i))
    monkeypatch.setattr(corpus, "DEFAULT_ROOT", str(root))
    ck = tmp_path / "ckpt"
    ck.mkdir()
    save_checkpoint(toys.toy_convnet(), str(ck / "toy.ckpt"))
    save_config({"model": {"name": "toy_convnet", "kwargs": {}}}, str(ck / "toy.yaml"))
    out = tmp_path / "demo"
    assert CLI.main(["--ckpt-dir", str(ck), "--output", str(out), "--demo-size", "32"]) == 0
    assert f"demo: {len(names)} held-out images" in capsys.readouterr().out
    assert sorted(os.listdir(out / "clean")) == sorted(f"{n}.png" for n in names)
