"""The photo corpus: the committed manifest, the split rules, and building from a tiny .deb made here."""
import csv
import hashlib
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from ms_osr.data import corpus
from ms_osr.data.datasets import DatasetError, build_source

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
PKG, VERSION = "tiny-wallpapers", "1.0-1"


# --------------------------------------------------------------------------- the real manifest
def test_shipped_manifest_meets_the_split_rules():
    rows = corpus.read_manifest()
    assert len(rows) >= 30
    test = [r for r in rows if r["split"] == "test"]
    from_packages = [r for r in test if r["source"] != corpus.SKIMAGE]
    assert len(from_packages) >= 12
    assert {r["source"] for r in from_packages} == {"plasma-workspace-wallpapers", "mate-backgrounds"}
    assert {"astronaut", "camera", "chelsea", "coffee"} <= {r["name"] for r in test}
    assert all(r["split"] in corpus.SPLITS for r in rows)
    for split in ("train", "extra", "val"):
        assert any(r["split"] == split for r in rows)
    # one photograph per scene: the stereo pair's second view is never listed beside the first
    assert "motorcycle_right" not in {r["name"] for r in rows}
    assert all(r["licence"] and r["author"] and r["version"] for r in rows)


def test_bundled_scikit_image_photos_match_the_manifest():
    for row in corpus.read_manifest():
        if row["source"] == corpus.SKIMAGE:
            assert corpus.sha256_file(corpus.skimage_source(row)) == row["sha256"], row["name"]


# ------------------------------------------------------------------------------- manifest checks
def _write_manifest(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(corpus.COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return str(path)


def _row(name, split, sha="0" * 64, member=None, source=PKG):
    return {"name": name, "split": split, "source": source, "version": VERSION,
            "member": member or f"usr/share/wallpapers/{name}.png", "licence": "GPL-2+", "author": "test", "sha256": sha}


@pytest.mark.parametrize("rows, needle", [
    ([_row("a", "train"), _row("a", "test")], "listed twice"),
    ([_row("a", "holdout")], "split 'holdout'"),
    ([_row("a", "train", sha="xyz")], "64 lowercase hex"),
    ([_row("a", "train", member="/etc/passwd")], "relative path"),
    ([_row("a", "train", member="usr/../../x.png")], "relative path"),
])
def test_manifest_errors_name_the_line(tmp_path, rows, needle):
    path = _write_manifest(tmp_path / "m.csv", rows)
    with pytest.raises(corpus.CorpusError) as exc:
        corpus.read_manifest(path)
    msg = str(exc.value)
    assert needle in msg and "m.csv:" in msg and "\n" not in msg


def test_manifest_missing_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("name,split\na,train\n")
    with pytest.raises(corpus.CorpusError, match="missing column"):
        corpus.read_manifest(str(path))


# ------------------------------------------------------------------------------ tiny package
def _image(seed, h, w):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def tiny_deb(tmp_path):
    """A real Debian package holding three small 'photographs', and a manifest for it."""
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {PKG}\nVersion: {VERSION}\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n")
    images = root / "usr" / "share" / "wallpapers"
    images.mkdir(parents=True)
    rows = []
    for i, (name, split, size) in enumerate([("one", "train", (40, 60)), ("two", "val", (30, 30)),
                                             ("three", "test", (48, 80)), ("four", "extra", (36, 36))]):
        path = images / f"{name}.png"
        cv2.imwrite(str(path), _image(i, *size))
        rows.append(_row(name, split, hashlib.sha256(path.read_bytes()).hexdigest()))
    debs = tmp_path / "debs"
    debs.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(debs / f"{PKG}_{VERSION}_all.deb")],
                   check=True, capture_output=True)
    return {"debs": str(debs), "manifest": _write_manifest(tmp_path / "manifest.csv", rows), "rows": rows}


@needs_dpkg
def test_build_from_deb_is_idempotent_and_resizes_test(tmp_path, tiny_deb, monkeypatch):
    monkeypatch.setattr(corpus, "TEST_LONG_SIDE", 40)
    out = str(tmp_path / "photos")
    lines = []
    counts = corpus.build_corpus(out, tiny_deb["manifest"], tiny_deb["debs"], log=lines.append)
    assert counts == {"train": 1, "extra": 1, "val": 1, "test": 1}
    # train/val copied byte for byte; test stored as PNG with the long side capped
    one = os.path.join(out, "train", "one.png")
    assert corpus.sha256_file(one) == tiny_deb["rows"][0]["sha256"]
    three = cv2.imread(os.path.join(out, "test", "three.png"))
    assert max(three.shape[:2]) == 40 and three.shape[:2] == (24, 40)
    # second run: nothing to fetch (the .deb folder is gone) and nothing rewritten
    shutil.rmtree(tiny_deb["debs"])
    mtime = os.path.getmtime(one)
    lines.clear()
    corpus.build_corpus(out, tiny_deb["manifest"], tiny_deb["debs"], log=lines.append)
    assert lines == [f"{out}: photo corpus up to date (4 photos: 1 train, 1 extra, 1 val, 1 test)"]
    assert os.path.getmtime(one) == mtime
    # the dataset reads the split through the manifest
    src = build_source({"type": "photos", "root": out, "split": "train", "manifest": tiny_deb["manifest"],
                        "degradations": ["noise_25"]}, train=True)
    lq, gt, name = src.load(0, np.random.default_rng(0), crop=16)
    assert lq.shape == gt.shape == (16, 16, 3) and name == "one__noise_25"
    # a list of splits reads them in order (the extra photos are stored byte for byte, like train's)
    both = build_source({"type": "photos", "root": out, "split": ["train", "extra"], "manifest": tiny_deb["manifest"],
                         "degradations": ["noise_25"]}, train=True)
    assert len(both) == 2 and both.load(1, np.random.default_rng(0), crop=16)[2] == "four__noise_25"
    assert corpus.sha256_file(os.path.join(out, "extra", "four.png")) == tiny_deb["rows"][3]["sha256"]
    with pytest.raises(DatasetError, match="unknown corpus split '5'"):  # a typo is one line, not a TypeError
        build_source({"type": "photos", "root": out, "split": 5, "manifest": tiny_deb["manifest"],
                      "degradations": ["noise_25"]}, train=True)
    for split in ("test", ["train", "test"]):
        with pytest.raises(DatasetError, match="evaluation only"):
            build_source({"type": "photos", "root": out, "split": split, "manifest": tiny_deb["manifest"],
                          "degradations": ["noise_25"]}, train=True)


@needs_dpkg
def test_damaged_stored_photo_is_rebuilt(tmp_path, tiny_deb):
    out = str(tmp_path / "photos")
    corpus.build_corpus(out, tiny_deb["manifest"], tiny_deb["debs"], log=lambda m: None)
    victim = os.path.join(out, "val", "two.png")
    with open(victim, "ab") as fh:
        fh.write(b"x")
    lines = []
    corpus.build_corpus(out, tiny_deb["manifest"], tiny_deb["debs"], log=lines.append)
    assert "stored 1 photo(s)" in lines[-1]
    assert corpus.sha256_file(victim) == tiny_deb["rows"][1]["sha256"]


@needs_dpkg
def test_corrupt_package_is_one_line(tmp_path, tiny_deb):
    deb = os.path.join(tiny_deb["debs"], f"{PKG}_{VERSION}_all.deb")
    data = open(deb, "rb").read()
    with open(deb, "wb") as fh:
        fh.write(data[: len(data) // 3])
    with pytest.raises(corpus.CorpusError) as exc:
        corpus.build_corpus(str(tmp_path / "photos"), tiny_deb["manifest"], tiny_deb["debs"], log=lambda m: None)
    msg = str(exc.value)
    assert deb in msg and "\n" not in msg
    assert not os.path.exists(tmp_path / "photos" / "train" / "one.png")


@needs_dpkg
def test_checksum_mismatch_names_the_file(tmp_path, tiny_deb):
    rows = [dict(r) for r in tiny_deb["rows"]]
    rows[1]["sha256"] = "f" * 64
    manifest = _write_manifest(tmp_path / "bad.csv", rows)
    with pytest.raises(corpus.CorpusError, match=r"two\.png: sha256 .* does not match"):
        corpus.build_corpus(str(tmp_path / "photos"), manifest, tiny_deb["debs"], log=lambda m: None)


def test_missing_package_and_missing_apt(tmp_path, monkeypatch):
    manifest = _write_manifest(tmp_path / "m.csv", [_row("a", "train")])
    empty = tmp_path / "debs"
    empty.mkdir()
    with pytest.raises(corpus.CorpusError, match=rf"no {PKG}_\*\.deb"):
        corpus.build_corpus(str(tmp_path / "photos"), manifest, str(empty), log=lambda m: None)
    monkeypatch.setattr(corpus.shutil, "which", lambda name: None)
    with pytest.raises(corpus.CorpusError) as exc:
        corpus.build_corpus(str(tmp_path / "photos"), manifest, None, log=lambda m: None)
    msg = str(exc.value)
    assert msg.startswith("apt-get not found") and "synthetic_folder" in msg and "\n" not in msg


def test_unbuilt_corpus_says_how_to_build(tmp_path):
    with pytest.raises(DatasetError) as exc:
        build_source({"type": "photos", "root": str(tmp_path / "nowhere"), "split": "train",
                      "degradations": ["noise_25"]}, train=True)
    assert "tools/get_photos.py" in str(exc.value) and "\n" not in str(exc.value)


def test_cli_list_and_error_exit(tmp_path, capsys):
    from scripts import load_script

    mod = load_script("tools/get_photos.py")
    assert mod.main(["--list"]) == 0
    assert "astronaut" in capsys.readouterr().out
    bad = tmp_path / "m.csv"
    bad.write_text("name\n")
    assert mod.main(["--manifest", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing column" in err and "\n" not in err
