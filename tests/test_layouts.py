"""Upstream dataset trees as users have them on disk (docs/datasets.md).

For every upstream layout a fake tree is built exactly as the upstream loader expects; the shipped config
then trains one step (with its validation) and test.py evaluates the config's data.val, both given only
``data.root``.  The model is swapped for the toy CNN so that each layout costs seconds: the data path,
which is what these tests are about, is the shipped config's (the slow test at the end also keeps the shipped
model for the two small ones).  The almost-right trees each give one line.
"""
import json
import os

import cv2
import numpy as np
import pytest

import test as test_cli
import train as train_cli
from ms_osr.data import datasets as DS
from ms_osr.data.layouts import reroot
from ms_osr.evaluation import benchmark_samples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
# Everything but the data: a toy model, one step, tiny batches (the data section stays the shipped one).
TINY = ["model.name=toy_restorer", "model.kwargs={width: 4}", "data.batch_size=2", "data.patch_size=16",
        "data.num_workers=1", "data.multiprocessing=false", "train.total_steps=1", "train.val_every=1",
        "train.save_every=1", "train.log_every=1", "train.loss={type: l1}", "runtime.device=cpu",
        "runtime.threads=1"]


def _img(path, seed=0, h=24, w=32):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(path, img), path
    return path


def _text(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{line}\n" for line in lines))
    return path


def _train(config, root, out, extra=()):
    argv = ["--config", os.path.join(CONFIGS, config), "--no-progress", "--out-dir", str(out), "--set",
            *TINY, *extra]
    if root is not None:
        argv += ["--set", f"data.root={root}"]
    return train_cli.main(argv)


def _evaluate(config, root, ckpt, out, extra=()):
    return test_cli.main(["--ckpt", str(ckpt), "--data-config", os.path.join(CONFIGS, config), "--data-root",
                          str(root), "--output", str(out), "--metric-convention", "aio", *extra])


def _train_and_evaluate(config, root, tmp_path, capsys):
    """One training step (+ its validation) and a test.py evaluation; returns the evaluated image names."""
    run = tmp_path / "run"
    assert _train(config, root, run) == 0, capsys.readouterr().err
    assert (run / "last.ckpt").is_file() and (run / "best.ckpt").is_file()
    val = [json.loads(line) for line in open(run / "val_log.jsonl")]
    assert len(val) == 1 and np.isfinite(val[0]["psnr"])
    assert _evaluate(config, root, run / "last.ckpt", tmp_path / "eval") == 0, capsys.readouterr().err
    metrics = json.load(open(tmp_path / "eval" / "metrics.json"))
    assert all(np.isfinite(r["psnr"]) for r in metrics["images"])
    assert metrics["settings"]["inputs"] == {"data_config": os.path.join(CONFIGS, config), "input": None, "gt": None,
                                             "data_root": str(root), "limit": None}
    return sorted(r["image"] for r in metrics["images"])


def _one_error_line(err):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ----------------------------------------------------------------------------------- trees
def hair_tree(root, unlisted=True):
    """HAIR/PromptIR checkout: data/Train + data_dir lists + test/ (HAIR's INSTALL.md and dataset_utils.py)."""
    train = os.path.join(root, "data", "Train")
    for i, name in enumerate(["a1.png", "b2.png"]):
        _img(os.path.join(train, "Denoise", name), i)
    if unlisted:
        _img(os.path.join(train, "Denoise", "not_listed.png"), 9)
    _text(os.path.join(root, "data_dir", "noisy", "denoise.txt"), ["b2.png", "a1.png"])
    for n in (1, 2):
        _img(os.path.join(train, "Derain", "rainy", f"rain-{n}.png"), 10 + n)
        _img(os.path.join(train, "Derain", "gt", f"norain-{n}.png"), 20 + n)
    _text(os.path.join(root, "data_dir", "rainy", "rainTrain.txt"), ["rainy/rain-1.png", "rainy/rain-2.png"])
    _img(os.path.join(train, "Dehaze", "synthetic", "part1", "0001_0.8_0.2.jpg"), 30)
    _img(os.path.join(train, "Dehaze", "original", "0001.jpg"), 31)
    _text(os.path.join(root, "data_dir", "hazy", "hazy_outside.txt"), ["synthetic/part1/0001_0.8_0.2.jpg"])
    for n in range(2):  # 5-task additions, AdaIR-style folders
        _img(os.path.join(train, "Deblur", "blur", f"{n}.png"), 40 + n)
        _img(os.path.join(train, "Deblur", "sharp", f"{n}.png"), 50 + n)
        _img(os.path.join(train, "Enhance", "low", f"{n}.png"), 60 + n)
        _img(os.path.join(train, "Enhance", "gt", f"{n}.png"), 70 + n)
    for n in (1, 2):
        _img(os.path.join(root, "test", "derain", "Rain100L", "input", f"rain-{n}.png"), 80 + n, 32, 32)
        _img(os.path.join(root, "test", "derain", "Rain100L", "target", f"norain-{n}.png"), 90 + n, 32, 32)
        _img(os.path.join(root, "test", "denoise", "bsd68", f"{n}0{n}.png"), 100 + n, 32, 32)
    _img(os.path.join(root, "test", "dehaze", "input", "0005_0.8_0.2.jpg"), 110)
    _img(os.path.join(root, "test", "dehaze", "target", "0005.png"), 111)
    return root


def griddehazenet_tree(root, place="indoor"):
    """GridDehazeNet checkout: data/train/<place>/{hazy,clear,trainlist.txt} and
    data/test/SOTS/<place>/{hazy,clear,val_list.txt}."""
    tr = os.path.join(root, "data", "train", place)
    ext = ".png" if place == "indoor" else ".jpg"
    names = ["1_1_0.90179.png", "1_2_0.97842.png", "2_1_0.83331.png"]
    for i, n in enumerate(names):
        _img(os.path.join(tr, "hazy", n), i)
    _img(os.path.join(tr, "hazy", "3_1_0.8.png"), 7)  # not in trainlist.txt: never used
    for sid in ("1", "2", "3"):
        _img(os.path.join(tr, "clear", sid + ext), 10 + int(sid))
    if place == "indoor":  # the repository ships no outdoor trainlist.txt
        _text(os.path.join(tr, "trainlist.txt"), names)
    te = os.path.join(root, "data", "test", "SOTS", place)
    _img(os.path.join(te, "hazy", "1400_1.png"), 20)
    _img(os.path.join(te, "hazy", "1401_3.png"), 21)
    _img(os.path.join(te, "clear", "1400.png"), 22)
    _img(os.path.join(te, "clear", "1401.png"), 23)
    _text(os.path.join(te, "val_list.txt"), ["1400_1.png", "1401_3.png"])
    return root


OSR_SERVER = "/data1/jrh/restoration"


def osr_tree(root):
    """OSR release: derain/datalists/{train,test}/derain two-file lists naming the authors' server paths,
    images under the folders those paths name after /data1/jrh/restoration/."""
    lists = os.path.join(root, "derain", "datalists")
    train_in, train_gt = [], []
    for n in range(3):
        rel_in, rel_gt = f"Rain1200/DID-MDN-training/Rain_Heavy/{n}.jpg", f"Rain1200/DID-MDN-training/norain/{n}.jpg"
        _img(os.path.join(root, rel_in), n)
        _img(os.path.join(root, rel_gt), 10 + n)
        train_in.append(f"{OSR_SERVER}/{rel_in}")
        train_gt.append(f"{OSR_SERVER}/{rel_gt}")
    _text(os.path.join(lists, "train", "derain", "train_input_file.txt"), train_in)
    _text(os.path.join(lists, "train", "derain", "train_GT_file.txt"), train_gt)
    test_in, test_gt = [], []
    for n in range(2):
        rel_in, rel_gt = f"Rain1200/DID-MDN-test/rain/{n}.jpg", f"Rain1200/DID-MDN-test/norain/{n}.jpg"
        _img(os.path.join(root, rel_in), 20 + n)
        _img(os.path.join(root, rel_gt), 30 + n)
        test_in.append(f"{OSR_SERVER}/{rel_in}")
        test_gt.append(f"{OSR_SERVER}/{rel_gt}")
    _text(os.path.join(lists, "test", "derain", "Rain1200_test_rain_file.txt"), test_in)
    _text(os.path.join(lists, "test", "derain", "Rain1200_test_norain_file.txt"), test_gt)
    # Rain100L as the release names it: rain/X2/norain-Nx2.png against norain/norain-N.png
    for n in (1, 2):
        _img(os.path.join(root, "Rain100L", "test", "rain", "X2", f"norain-{n}x2.png"), 40 + n)
        _img(os.path.join(root, "Rain100L", "test", "norain", f"norain-{n}.png"), 50 + n)
    return root


def lol_tree(root, version=1):
    """LOL-v1 (our485/eval15 with low/high) or LOL-v2 Real_captured (Train/Test with Low/Normal, lowN/normalN)."""
    if version == 1:
        splits, dirs, names = ("our485", "eval15"), ("low", "high"), (lambda i: f"{i}.png", lambda i: f"{i}.png")
    else:
        splits, dirs, names = ("Train", "Test"), ("Low", "Normal"), (lambda i: f"low{i:05d}.png",
                                                                     lambda i: f"normal{i:05d}.png")
    counts = (3, 2)
    for split, count in zip(splits, counts):
        for i in range(1, count + 1):
            _img(os.path.join(root, split, dirs[0], names[0](i)), i)
            _img(os.path.join(root, split, dirs[1], names[1](i)), 10 + i)
    return root


def _npy(path, seed=0, h=24, w=32):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))
    return path


def sid_tree(root):
    """PTG-RM's SID layout as the SNR-aware release ships it: short_sid2/<scene>/*.npy (uint8 BGR frames)
    against the first frame of long_sid2/<scene>/."""
    for scene, frames in (("00001", 2), ("20003", 1), ("10011", 2)):
        for f in range(frames):
            _npy(os.path.join(root, "short_sid2", scene, f"{scene}_0{f}_0.1s.npy"), int(scene) + f)
        _npy(os.path.join(root, "long_sid2", scene, f"{scene}_00_10s.npy"), 99)
        _npy(os.path.join(root, "long_sid2", scene, f"{scene}_01_10s.npy"), 98)
    return root


def restormer_tree(root):
    """Restormer checkout after Deraining/download_data.py: Deraining/Datasets/{train/Rain13K,test/Rain100L}."""
    ds = os.path.join(root, "Deraining", "Datasets")
    for n in range(3):
        _img(os.path.join(ds, "train", "Rain13K", "input", f"{n}.png"), n)
        _img(os.path.join(ds, "train", "Rain13K", "target", f"{n}.png"), 10 + n)
    for n in (1, 2):
        _img(os.path.join(ds, "test", "Rain100L", "input", f"rain-{n:03d}.png"), 20 + n)
        _img(os.path.join(ds, "test", "Rain100L", "target", f"norain-{n:03d}.png"), 30 + n)
    return root


# ------------------------------------------------------------- each layout: train + evaluate
def test_hair_3task_lists_subset_and_order(tmp_path, capsys):
    root = hair_tree(str(tmp_path / "HAIR"))
    src = DS.build_source({"type": "all_in_one", "root": f"{root}/data/Train", "lists": f"{root}/data_dir"})
    denoise = src.parts[0][0]
    # denoise.txt order, the unlisted image left out; rain x120; haze from the list
    assert [os.path.basename(c) for c in denoise.clean] == ["b2.png", "a1.png"]
    assert len(src) == 3 * 2 + 2 * 120 + 1
    haze = src.parts[4][0]
    assert [os.path.basename(p) for p in haze.pairs[0]] == ["0001_0.8_0.2.jpg", "0001.jpg"]
    assert _train_and_evaluate("res_hair_3task.yaml", root, tmp_path, capsys) == ["rain-1", "rain-2"]


def test_hair_5task(tmp_path, capsys):
    root = hair_tree(str(tmp_path / "HAIR"))
    names = _train_and_evaluate("res_hair_5task.yaml", root, tmp_path, capsys)
    assert names == ["101_sigma25", "202_sigma25"]


@pytest.mark.parametrize("config,place", [("griddehazenet_its.yaml", "indoor"), ("griddehazenet_ots.yaml", "outdoor")])
def test_griddehazenet(config, place, tmp_path, capsys):
    root = griddehazenet_tree(str(tmp_path / "GridDehazeNet"), place)
    listed = {"indoor": "trainlist.txt", "outdoor": None}[place]
    src = DS.build_source({"type": "griddehazenet", "root": f"{root}/data/train/{place}", "list_name": listed})
    if place == "indoor":  # 3_1 is not listed
        assert [os.path.basename(g) for _, g in src.pairs] == ["1.png", "1.png", "2.png"]
    else:  # no list: every hazy image
        assert [os.path.basename(g) for _, g in src.pairs] == ["1.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert _train_and_evaluate(config, root, tmp_path, capsys) == ["1400_1", "1401_3"]


def test_osr_release_lists(tmp_path, capsys):
    root = osr_tree(str(tmp_path / "OSR"))
    assert _train_and_evaluate("osr_resnet_derain.yaml", root, tmp_path, capsys) == ["0", "1"]


@pytest.mark.parametrize("version", [1, 2])
def test_lol(version, tmp_path, capsys):
    root = lol_tree(str(tmp_path / f"LOL{version}"), version)
    names = _train_and_evaluate("ptg_rm_lol.yaml", root, tmp_path, capsys)
    assert len(names) == 2  # eval15 / Test only, never the training split


def test_sid(tmp_path, capsys):
    root = sid_tree(str(tmp_path / "SID"))
    train = DS.build_source({"type": "sid", "root": root, "split": "train"})
    assert len(train) == 3 and [os.path.basename(g) for _, g in train.pairs] == ["00001_00_10s.npy"] * 2 + [
        "20003_00_10s.npy"]
    lq, gt, _ = train.load(0, None)
    stored = np.load(os.path.join(root, "short_sid2", "00001", "00001_00_0.1s.npy"))
    assert np.allclose(lq, stored[:, :, ::-1] / 255.0, atol=1e-6)  # BGR frames, read as RGB
    names = _train_and_evaluate("ptg_rm_sid.yaml", root, tmp_path, capsys)
    assert names == ["10011_10011_00_0.1s", "10011_10011_01_0.1s"]
    assert cv2.imread(str(tmp_path / "eval" / f"{names[0]}.png")).shape == (512, 960, 3)  # resized as upstream


def test_restormer_deraining(tmp_path, capsys):
    root = restormer_tree(str(tmp_path / "Restormer"))
    assert _train_and_evaluate("restormer_derain.yaml", root, tmp_path, capsys) == ["rain-001", "rain-002"]


# --------------------------------------------------------------------------- naming rules
def test_reroot_author_paths(tmp_path):
    root = osr_tree(str(tmp_path / "OSR"))
    out = reroot([f"{OSR_SERVER}/Rain1200/DID-MDN-training/norain/{n}.jpg" for n in range(3)] + ["rel/x.png"], root)
    assert out[:3] == [os.path.join(root, "Rain1200", "DID-MDN-training", "norain", f"{n}.jpg") for n in range(3)]
    assert out[3] == os.path.join(root, "rel", "x.png")


def test_rain100l_x2_naming(tmp_path, capsys):
    root = osr_tree(str(tmp_path / "OSR"))
    samples, errors = benchmark_samples("rain100l", os.path.join(root, "Rain100L"), crop_multiple=0)
    assert not errors and [os.path.basename(s.sources[1]) for s in samples] == ["norain-1.png", "norain-2.png"]
    pairs = DS.match_pairs(os.path.join(root, "Rain100L", "test", "rain", "X2"),
                           os.path.join(root, "Rain100L", "test", "norain"))
    assert [os.path.basename(g) for _, g in pairs] == ["norain-1.png", "norain-2.png"]


def test_cbsd68_precomputed_noise(tmp_path):
    root = str(tmp_path / "CBSD68")
    for n in ("3096", "12084"):
        _img(os.path.join(root, "clear", f"{n}.png"), 1)
        for s in (15, 25):
            _img(os.path.join(root, f"CBSD68_{s}", f"{n}.png"), s)
    samples, errors = benchmark_samples("bsd68", root, sigmas=(15, 25, 50), crop_multiple=0)
    assert not errors and len(samples) == 6
    by_group = {}
    for s in samples:
        by_group.setdefault(s.group, []).append(s)
    assert sorted(by_group) == ["sigma15", "sigma25", "sigma50"]
    noisy, clean = by_group["sigma15"][0].load()
    ref = cv2.cvtColor(cv2.imread(os.path.join(root, "CBSD68_15", "12084.png")), cv2.COLOR_BGR2RGB) / 255.0
    assert np.allclose(noisy, ref, atol=1e-6)                 # the precomputed noisy set, not fresh noise
    noisy50, clean50 = by_group["sigma50"][0].load()          # no CBSD68_50 folder: synthesised from clear/
    assert 30 / 255 < (noisy50 - clean50).std() < 70 / 255


# ------------------------------------------------------------------- almost right: one line
def test_default_root_missing_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _train("res_hair_3task.yaml", None, tmp_path / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "data.root data/HAIR: folder not found" in line and "--set data.root=DIR" in line
    assert not (tmp_path / "run").exists()


def test_missing_listed_file_is_one_line_before_the_run_folder(tmp_path, capsys):
    root = hair_tree(str(tmp_path / "HAIR"), unlisted=False)
    os.remove(os.path.join(root, "data", "Train", "Derain", "gt", "norain-2.png"))
    assert _train("res_hair_3task.yaml", root, tmp_path / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: data: data.train: ") and "norain-2.png: file not found" in line
    assert not (tmp_path / "run").exists()


def test_missing_validation_file_stops_before_training(tmp_path, capsys):
    root = griddehazenet_tree(str(tmp_path / "G"))
    os.remove(os.path.join(root, "data", "test", "SOTS", "indoor", "clear", "1401.png"))
    assert _train("griddehazenet_its.yaml", root, tmp_path / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "data.val: " in line and "1401.png: file not found" in line
    assert not (tmp_path / "run").exists()


def test_unreadable_file_and_skip_bad(tmp_path, capsys):
    root = griddehazenet_tree(str(tmp_path / "G"))
    bad = os.path.join(root, "data", "train", "indoor", "hazy", "2_1_0.83331.png")
    with open(bad, "wb") as fh:
        fh.write(b"not an image")
    assert _train("griddehazenet_its.yaml", root, tmp_path / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "2_1_0.83331.png: not an image file" in line
    assert _train("griddehazenet_its.yaml", root, tmp_path / "run", ["data.skip_bad=true"]) == 0
    assert "skipped: " + bad in capsys.readouterr().err
    assert (tmp_path / "run" / "last.ckpt").is_file()


def test_osr_lists_of_different_length(tmp_path, capsys):
    root = osr_tree(str(tmp_path / "OSR"))
    gt = os.path.join(root, "derain", "datalists", "train", "derain", "train_GT_file.txt")
    with open(gt) as fh:
        lines = fh.read().splitlines()
    _text(gt, lines[:2])
    assert _train("osr_resnet_derain.yaml", root, tmp_path / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "train_input_file.txt: lists 3 images but" in line and "train_GT_file.txt lists 2" in line


def test_lol_splits_side_by_side(tmp_path, capsys):
    root = lol_tree(str(tmp_path / "LOLdataset"))
    samples, _ = benchmark_samples("lol", root, crop_multiple=0)  # test.py --benchmark lol: the test split
    assert len(samples) == 2 and all("eval15" in s.sources[0] for s in samples)
    with pytest.raises(DS.DatasetError, match=r"holds both a training split \(our485\) and a test split \(eval15\)"):
        DS.build_source({"type": "lol", "root": root}, train=True)
    with pytest.raises(DS.DatasetError, match="this is the test split of lol, but split: train"):
        DS.build_source({"type": "lol", "root": os.path.join(root, "eval15"), "split": "train"})
    v2 = str(tmp_path / "LOL-v2")
    lol_tree(os.path.join(v2, "Real_captured"), 2)
    lol_tree(os.path.join(v2, "Synthetic"), 2)
    assert _train("ptg_rm_lol.yaml", v2, tmp_path / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "holds the Real_captured and Synthetic sets of lol side by side; give one of them as the root" in line


def test_sid_scene_without_ground_truth(tmp_path, capsys):
    root = sid_tree(str(tmp_path / "SID"))
    for f in os.listdir(os.path.join(root, "long_sid2", "20003")):
        os.remove(os.path.join(root, "long_sid2", "20003", f))
    assert _train("ptg_rm_sid.yaml", root, tmp_path / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "long_sid2/20003: no ground-truth frame for the scene" in line


def test_cbsd68_top_folder_without_clean_images(tmp_path, capsys):
    root = str(tmp_path / "CBSD68")
    _img(os.path.join(root, "CBSD68_15", "1.png"))
    assert test_cli.main(["--ckpt", "unused.ckpt", "--benchmark", "bsd68", "--data-root", root]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"{root}: no images and no clean sub-folder (clear, original_png" in line and "CBSD68_15" in line


def test_missing_clip_weights_is_one_line(tmp_path, capsys):
    root = lol_tree(str(tmp_path / "LOL"))
    argv = ["--config", os.path.join(CONFIGS, "ptg_rm_lol.yaml"), "--no-progress", "--out-dir", str(tmp_path / "run"),
            "--set", f"data.root={root}", "model.kwargs.osf_kwargs.ckpt=nowhere/ViT-B-32.pt", "runtime.device=cpu",
            "data.batch_size=2"]
    assert train_cli.main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "model.kwargs.osf_kwargs.ckpt: nowhere/ViT-B-32.pt: file not found; OpenAI's CLIP" in line
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- test.py lists
def _toy_run(tmp_path, capsys):
    root = osr_tree(str(tmp_path / "OSR"))
    assert _train("osr_resnet_derain.yaml", root, tmp_path / "run") == 0, capsys.readouterr().err
    return root, tmp_path / "run" / "last.ckpt"


def test_test_py_reads_list_files(tmp_path, capsys):
    root, ckpt = _toy_run(tmp_path, capsys)
    lists = os.path.join(root, "derain", "datalists", "test", "derain")
    rc = test_cli.main(["--ckpt", str(ckpt), "--input", os.path.join(lists, "Rain1200_test_rain_file.txt"),
                        "--gt", os.path.join(lists, "Rain1200_test_norain_file.txt"), "--data-root", root,
                        "--output", str(tmp_path / "two"), "--metric-convention", "aio"])
    assert rc == 0, capsys.readouterr().err
    assert len(json.load(open(tmp_path / "two" / "metrics.json"))["images"]) == 2
    pairs = _text(str(tmp_path / "pairs.txt"), ["Rain1200/DID-MDN-test/rain/1.jpg Rain1200/DID-MDN-test/norain/1.jpg"])
    rc = test_cli.main(["--ckpt", str(ckpt), "--input", pairs, "--data-root", root, "--output", str(tmp_path / "one"),
                        "--metric-convention", "aio"])
    assert rc == 0 and [r["image"] for r in json.load(open(tmp_path / "one" / "metrics.json"))["images"]] == ["1"]
    capsys.readouterr()
    os.remove(os.path.join(root, "Rain1200", "DID-MDN-test", "norain", "1.jpg"))
    rc = test_cli.main(["--ckpt", str(ckpt), "--input", pairs, "--data-root", root, "--output", str(tmp_path / "bad")])
    assert rc == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "norain/1.jpg: file not found (fix it or add --skip-bad" in line
    assert not (tmp_path / "bad").exists()


def test_gopro_splits_and_sots_subsets(tmp_path, capsys):
    gopro = str(tmp_path / "GOPRO_Large")
    for split, seqs in (("train", ("GOPR0372_07_00", "GOPR0374_11_00")), ("test", ("GOPR0384_11_00",))):
        for seq in seqs:
            _img(os.path.join(gopro, split, seq, "blur", "000001.png"))
            _img(os.path.join(gopro, split, seq, "sharp", "000001.png"), 1)
    samples, _ = benchmark_samples("gopro", gopro, crop_multiple=0)
    assert [s.name for s in samples] == ["test_GOPR0384_11_00_000001"]
    samples, _ = benchmark_samples("gopro", gopro, crop_multiple=0, split="train")
    assert len(samples) == 2
    sots = str(tmp_path / "SOTS")
    for place in ("indoor", "outdoor"):
        _img(os.path.join(sots, place, "hazy", "1400_1.png"))
        _img(os.path.join(sots, place, "clear", "1400.png"), 1)
    assert test_cli.main(["--ckpt", "unused.ckpt", "--benchmark", "sots-outdoor", "--data-root", sots]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "holds the indoor and outdoor sets of sots_outdoor side by side; give one of them as the root" in line


# ------------------------------------------------------------- the shipped models themselves
@pytest.mark.slow
@pytest.mark.parametrize("config,tree", [("griddehazenet_its.yaml", griddehazenet_tree),
                                         ("osr_resnet_derain.yaml", osr_tree)])
def test_shipped_model_on_its_tree(config, tree, tmp_path, capsys):
    """The shipped config as it is (its own model, loss and optimiser); only the root and the sizes are given."""
    root = tree(str(tmp_path / "tree"))
    run = tmp_path / "run"
    sizes = ["data.batch_size=2", "data.patch_size=16", "data.num_workers=1", "data.multiprocessing=false",
             "train.total_steps=1", "train.val_every=1", "train.save_every=1", "runtime.device=cpu",
             "runtime.threads=1"]
    assert train_cli.main(["--config", os.path.join(CONFIGS, config), "--no-progress", "--out-dir", str(run),
                           "--set", f"data.root={root}", *sizes]) == 0, capsys.readouterr().err
    assert _evaluate(config, root, run / "last.ckpt", tmp_path / "eval") == 0, capsys.readouterr().err
    assert len(json.load(open(tmp_path / "eval" / "metrics.json"))["images"]) == 2
