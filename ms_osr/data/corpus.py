"""The photo corpus: real photographs from Debian's wallpaper packages and scikit-image.

The committed manifest (``photos_manifest.csv`` beside this file) lists every photograph: name,
split (train / extra / val / test, by whole image; ``extra`` holds training photos added later),
source package and version, the file inside the package, licence, author and the sha256 of that file.
:func:`build_corpus` assembles ``<out>/<split>/<name>.<ext>`` from the packages (``apt-get download``
+ ``dpkg-deb -x``: no root needed) and scikit-image's bundled data:

* train, extra and val photos are copied byte for byte (full resolution, for random crops);
* test photos are stored as PNG with the long side at most :data:`TEST_LONG_SIDE` pixels (area
  resampling), so a full-image evaluation stays affordable on a CPU.

Building is idempotent: ``<out>/built.json`` records the sha256 of every stored file, and a
second run that finds them all intact downloads nothing.  Photos are never committed.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Union

from ..errors import DatasetError
from ..fileio import atomic_path, atomic_write_text

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "photos_manifest.csv")
DEFAULT_ROOT = "data/photos"
# "extra": more training photographs, listed apart from "train" so that the configs which trained the earlier
# checkpoints on "train" alone still read the same photos; newer configs train on ``split: [train, extra]``.
SPLITS = ("train", "extra", "val", "test")
COLUMNS = ("name", "split", "source", "version", "member", "licence", "author", "sha256")
SKIMAGE = "scikit-image"
TEST_LONG_SIDE = 1024
RECORD = "built.json"
OWN_FOLDER_HINT = ("to train on your own photographs instead, set data.train to "
                   "{type: synthetic_folder, root: YOUR_FOLDER} (docs/training.md)")


class CorpusError(DatasetError):
    """The photo corpus cannot be built or read (the message names the file and the fix)."""


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------- manifest
def read_manifest(path: str = MANIFEST) -> List[Dict[str, str]]:
    """The manifest's rows, checked: columns, unique names, known splits, sha256 format."""
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: manifest not found")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = list(reader)
    if not rows:
        raise CorpusError(f"{path}: no photographs listed")
    seen = set()
    for no, row in enumerate(rows, 2):
        where = f"{path}:{no}"
        if row["name"] in seen:
            raise CorpusError(f"{where}: photo '{row['name']}' is listed twice")
        seen.add(row["name"])
        if row["split"] not in SPLITS:
            raise CorpusError(f"{where}: split '{row['split']}' is not one of {', '.join(SPLITS)}")
        sha = row["sha256"]
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise CorpusError(f"{where}: sha256 '{sha}' is not 64 lowercase hex digits")
        if not row["member"] or os.path.isabs(row["member"]) or ".." in row["member"].split("/"):
            raise CorpusError(f"{where}: member '{row['member']}' must be a relative path inside the package")
    return rows


def stored_name(row: Dict[str, str]) -> str:
    """``<split>/<name>.<ext>``: test photos become PNG (resized), the others keep their format."""
    ext = ".png" if row["split"] == "test" else os.path.splitext(row["member"])[1].lower()
    return f"{row['split']}/{row['name']}{ext}"


def split_names(split: Union[str, Sequence[str]]) -> List[str]:
    """``split`` (a name or a list of names such as ``[train, extra]``) as a list of known split names; one line
    naming the first unknown one."""
    splits = list(split) if isinstance(split, (list, tuple)) else [str(split)]
    for name in splits:
        if name not in SPLITS:
            raise CorpusError(f"unknown corpus split '{name}': choose {', '.join(SPLITS)}")
    return splits


def split_paths(root: str = DEFAULT_ROOT, split: Union[str, Sequence[str]] = "train",
                manifest: str = MANIFEST) -> List[str]:
    """Paths of the corpus photos in ``split``, a name or a list of names such as ``[train, extra]`` (split by
    split, each in manifest order); one line if a split is unknown or the corpus is missing."""
    splits = split_names(split)
    rows = read_manifest(manifest)
    paths = [os.path.join(root, stored_name(r)) for name in splits for r in rows if r["split"] == name]
    absent = [p for p in paths if not os.path.isfile(p)]
    if absent:
        raise CorpusError(f"{absent[0]}: photo corpus not built ({len(absent)} of {len(paths)} {'+'.join(splits)} "
                          f"photos missing); build it with `python tools/get_photos.py --out {root}`, or "
                          f"{OWN_FOLDER_HINT}")
    return paths


# ------------------------------------------------------------------------------- packages
def _run(cmd: Sequence[str], cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def fetch_debs(packages: Sequence[str], dest: str) -> Dict[str, str]:
    """``apt-get download`` each package into ``dest`` (no root needed); ``{package: .deb path}``."""
    if shutil.which("apt-get") is None:
        raise CorpusError("apt-get not found: this machine cannot fetch Debian's wallpaper packages; "
                          f"pass --debs DIR with {', '.join(f'{p}_*.deb' for p in packages)} downloaded elsewhere, "
                          f"or {OWN_FOLDER_HINT}")
    os.makedirs(dest, exist_ok=True)
    for pkg in packages:
        res = _run(["apt-get", "download", pkg], cwd=dest)
        if res.returncode != 0:
            raise CorpusError(f"apt-get download {pkg} failed: {_first_line(res.stderr)}")
    return find_debs(packages, dest)


def find_debs(packages: Sequence[str], folder: str) -> Dict[str, str]:
    """``{package: newest <package>_*.deb in folder}``; one line naming the first absent package."""
    found = {}
    for pkg in packages:
        debs = sorted(glob.glob(os.path.join(folder, f"{pkg}_*.deb")))
        if not debs:
            raise CorpusError(f"{folder}: no {pkg}_*.deb (download it with `apt-get download {pkg}`)")
        found[pkg] = debs[-1]
    return found


def deb_version(deb: str) -> str:
    res = _run(["dpkg-deb", "-f", deb, "Version"])
    if res.returncode != 0:
        raise CorpusError(f"{deb}: not a readable Debian package ({_first_line(res.stderr)})")
    return res.stdout.strip()


def unpack_deb(deb: str, dest: str) -> None:
    if shutil.which("dpkg-deb") is None:
        raise CorpusError(f"{deb}: dpkg-deb not found (Debian's dpkg package provides it)")
    res = _run(["dpkg-deb", "-x", deb, dest])
    if res.returncode != 0:
        raise CorpusError(f"{deb}: corrupt or unreadable Debian package ({_first_line(res.stderr)})")


def skimage_data_dir() -> str:
    import skimage.data

    return os.path.dirname(os.path.abspath(skimage.data.__file__))


def skimage_source(row: Dict[str, str]) -> str:
    return os.path.join(skimage_data_dir(), os.path.basename(row["member"]))


# ---------------------------------------------------------------------------------- build
def fit_test_scale(img):
    """``img`` (H x W [x C]) area-resampled so that its long side is at most :data:`TEST_LONG_SIDE`: the scale
    the test photos are stored at (and other splits are evaluated at, ``test.py --photo-split``)."""
    import cv2

    h, w = img.shape[:2]
    scale = TEST_LONG_SIDE / max(h, w)
    if scale >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _store(row: Dict[str, str], src: str, dst: str) -> None:
    if row["split"] != "test":
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        return
    import cv2

    img = cv2.imread(src, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise CorpusError(f"{src}: cannot be decoded as an image")
    img = fit_test_scale(img)
    with atomic_path(dst) as tmp:
        if not cv2.imwrite(tmp, img):
            raise CorpusError(f"{dst}: cannot write")


def _load_record(root: str) -> Dict[str, Dict[str, str]]:
    path = os.path.join(root, RECORD)
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
        return rec if isinstance(rec, dict) else {}
    except (OSError, ValueError):
        return {}


def _intact(root: str, row: Dict[str, str], record: Dict[str, Dict[str, str]]) -> bool:
    rel = stored_name(row)
    entry = record.get(row["name"])
    path = os.path.join(root, rel)
    return (entry is not None and entry.get("source_sha256") == row["sha256"] and entry.get("file") == rel
            and os.path.isfile(path) and sha256_file(path) == entry.get("sha256"))


def build_corpus(root: str = DEFAULT_ROOT, manifest: str = MANIFEST, debs: Optional[str] = None,
                 log: Callable[[str], None] = print) -> Dict[str, int]:
    """Assemble the corpus under ``root``; returns ``{split: count}``.

    ``debs``: a folder holding the packages' ``.deb`` files (else ``apt-get download`` into
    ``<root>/.debs``).  Every source file is checked against the manifest's sha256 before it is
    stored; a mismatch stops with one line naming the file."""
    rows = read_manifest(manifest)
    record = _load_record(root)
    todo = [r for r in rows if not _intact(root, r, record)]
    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    if not todo:
        log(f"{root}: photo corpus up to date ({len(rows)} photos: "
            + ", ".join(f"{counts[s]} {s}" for s in SPLITS) + ")")
        return counts
    packages = sorted({r["source"] for r in todo if r["source"] != SKIMAGE})
    with tempfile.TemporaryDirectory(prefix="ms_osr_photos_") as tmp:
        if packages:
            found = find_debs(packages, debs) if debs else fetch_debs(packages, os.path.join(root, ".debs"))
            for pkg, deb in found.items():
                wanted = {r["version"] for r in todo if r["source"] == pkg}
                got = deb_version(deb)
                if got not in wanted:
                    log(f"note: {os.path.basename(deb)} is version {got}, the manifest lists {', '.join(sorted(wanted))}; "
                        "checking every photo's sha256")
                unpack_deb(deb, os.path.join(tmp, pkg))
        for row in todo:
            if row["source"] == SKIMAGE:
                src = skimage_source(row)
            else:
                src = os.path.join(tmp, row["source"], row["member"])
            if not os.path.isfile(src):
                raise CorpusError(f"{row['member']}: not found in {row['source']} {row['version']} "
                                  f"(manifest entry '{row['name']}')")
            got = sha256_file(src)
            if got != row["sha256"]:
                raise CorpusError(f"{src}: sha256 {got[:12]}... does not match the manifest's {row['sha256'][:12]}... "
                                  f"for '{row['name']}' ({row['source']} {row['version']})")
            _store(row, src, os.path.join(root, stored_name(row)))
            record[row["name"]] = {"file": stored_name(row), "source_sha256": row["sha256"],
                                   "sha256": sha256_file(os.path.join(root, stored_name(row)))}
    listed = {r["name"] for r in rows}
    record = {k: v for k, v in record.items() if k in listed}
    atomic_write_text(os.path.join(root, RECORD), json.dumps(record, indent=1, sort_keys=True))
    stray = _stray_files(root, rows)
    if stray:
        log(f"note: {len(stray)} file(s) in {root} are not in the manifest and are never used: {', '.join(stray[:3])}")
    log(f"{root}: stored {len(todo)} photo(s); corpus has {len(rows)} photos: "
        + ", ".join(f"{counts[s]} {s}" for s in SPLITS))
    return counts


def _stray_files(root: str, rows: List[Dict[str, str]]) -> List[str]:
    expected = {stored_name(r) for r in rows}
    out = []
    for split in SPLITS:
        folder = os.path.join(root, split)
        if os.path.isdir(folder):
            out += [f"{split}/{f}" for f in sorted(os.listdir(folder)) if f"{split}/{f}" not in expected]
    return out

