"""Datasets as their upstream projects lay them out on disk.

A config names one folder, ``data.root`` (the tree as the user downloaded it); every relative path in
``data.train`` / ``data.val`` is taken relative to it (:func:`prepare_data_config`).  The source types
here read the upstream trees and their list files, respecting the lists (subset and order):

* ``all_in_one`` with ``lists:`` - HAIR/PromptIR: ``data/Train/{Denoise,Derain,Dehaze}`` selected by
  ``data_dir/{noisy/denoise.txt, rainy/rainTrain.txt, hazy/hazy_outside.txt}``;
* ``griddehazenet`` - GridDehazeNet/RESIDE: ``<split>/{hazy,clear}`` + ``trainlist.txt`` / ``val_list.txt``;
* ``list_pair`` - the OSR release's two-file lists (one path per line, paired line by line), whose
  absolute author-server paths are re-rooted under ``data.root``;
* ``sid`` - PTG-RM's SID layout ``short_sid2/<scene>/*`` against ``long_sid2/<scene>/<first frame>``
  (the SNR-aware release's ``.npy`` frames, or image files);
* ``bsd68`` - clean images directly, or ``CBSD68/`` with ``clear``/``original_png`` beside
  precomputed noisy sets (``CBSD68_15``, ``noisy25``...).

LOL-v1/v2, Rain100L, SOTS and GoPro stay folder matchers in :mod:`ms_osr.data.datasets`, with the split
chosen by :mod:`ms_osr.data.splits`.  docs/datasets.md shows each tree.
"""
from __future__ import annotations

import copy
import os
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import datasets as DS
from .datasets import DatasetError, PairedFiles, Source, SyntheticPairs
from .io import ImageReadError, read_image
from .transforms import check_same_size

# Source keys that hold paths, resolved against data.root when relative.
PATH_KEYS = ("root", "degraded", "clean", "list", "input_list", "gt_list", "lists", "image_root")
# Sources that come with the package (bundled samples, the photo corpus): data.root does not apply.
NO_DATA_ROOT = ("skimage_samples", "photos")


# ----------------------------------------------------------------------------- data.root
def prepare_data_config(data: Dict) -> Dict:
    """A copy of the ``data`` section with ``data.root`` applied and ``data.skip_bad`` passed to every
    source.  A missing ``data.root`` is one error naming it (before anything else is looked at)."""
    data = copy.deepcopy(data)
    root = data.get("root")
    if root and not os.path.isdir(root):
        raise DatasetError(f"data.root {root}: folder not found; point it at the dataset folder as downloaded "
                           f"with --set data.root=DIR (docs/datasets.md shows the tree each config expects)")
    for key in ("train", "val"):
        if data.get(key):
            data[key] = _resolve_source(data[key], root, bool(data.get("skip_bad", False)))
    return data


def _resolve_source(cfg: Dict, root: Optional[str], skip_bad: bool) -> Dict:
    cfg = dict(cfg)
    if skip_bad:
        cfg["skip_bad"] = True
    if cfg.get("type") == "concat":
        cfg["parts"] = [_resolve_source(p, root, skip_bad) for p in cfg.get("parts", [])]
        return cfg
    if not root or cfg.get("type") in NO_DATA_ROOT:
        return cfg
    for key in PATH_KEYS:
        value = cfg.get(key)
        if isinstance(value, str) and not os.path.isabs(value):
            cfg[key] = os.path.normpath(os.path.join(root, value))
    for key in ("root", "image_root"):  # only where the type reads it: a key it does not read is refused
        if DS.source_reads(cfg.get("type"), key):
            cfg.setdefault(key, root)
    return cfg


# ----------------------------------------------------------------------------- list files
def read_entries(path: str, what: str = "list file") -> List[str]:
    """Non-empty lines of an upstream list file (one entry per line)."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: {what} not found")
    with open(path, "r", encoding="utf-8") as fh:
        entries = [line.strip() for line in fh if line.strip()]
    if not entries:
        raise DatasetError(f"{path}: {what} lists nothing")
    return entries


def reroot(paths: Sequence[str], base: str) -> List[str]:
    """Relative entries join ``base``; absolute ones that do not exist (the OSR lists name the authors'
    ``/data1/jrh/restoration/...``) lose leading folders until the rest exists under ``base``.  The dropped
    prefix found for one entry is reused for the others, so a list costs a few lookups, not one per line."""
    out: List[str] = []
    prefixes: Dict[str, str] = {}
    for p in paths:
        if not os.path.isabs(p):
            out.append(os.path.join(base, p))
        elif os.path.exists(p):
            out.append(p)
        else:
            out.append(_reroot_one(p, base, prefixes))
    return out


def _reroot_one(path: str, base: str, prefixes: Dict[str, str]) -> str:
    for old, new in prefixes.items():
        if path.startswith(old) and os.path.exists(new + path[len(old):]):
            return new + path[len(old):]
    parts = path.strip(os.sep).split(os.sep)
    for k in range(len(parts)):
        cand = os.path.join(base, *parts[k:])
        if os.path.exists(cand):
            prefixes[os.sep + os.path.join(*parts[:k], "") if k else os.sep] = os.path.join(base, "")
            return cand
    return path  # reported by the preflight check as not found


# ----------------------------------------------------------------------------- HAIR / PromptIR
# task -> (list file inside data_dir/, folder under data/Train/)
HAIR_LISTS = {"denoise": ("noisy/denoise.txt", "Denoise"), "derain": ("rainy/rainTrain.txt", "Derain"),
              "dehaze": ("hazy/hazy_outside.txt", "Dehaze")}


def _hair_rain_gt(entry: str) -> str:
    # HAIR's _get_gt_name: rainy/rain-N.png -> gt/norain-N.png
    return entry.split("rainy")[0] + "gt/norain-" + entry.split("rain-")[-1]


def _hair_haze_gt(entry: str) -> str:
    # HAIR's _get_nonhazy_name: synthetic/part1/<id>_<b>_<A>.jpg -> original/<id>.jpg
    head = entry.split("synthetic")[0] if "synthetic" in entry else ""
    base = os.path.basename(entry)
    return f"{head}original/{base.split('_')[0]}{os.path.splitext(base)[1]}"


def _hair_listed_part(task: str, train_root: str, lists: str) -> Optional[Source]:
    """The part of ``task`` as the HAIR lists select it (None: no list for this task)."""
    key = "denoise" if task.startswith("denoise_") else task
    if key not in HAIR_LISTS:
        return None
    list_rel, sub = HAIR_LISTS[key]
    entries = read_entries(os.path.join(lists, list_rel), "HAIR list file")
    folder = os.path.join(train_root, sub)
    if key == "denoise":
        sigma = float(task.split("_", 1)[1])
        return SyntheticPairs([os.path.join(folder, e) for e in entries], [{"name": "gaussian_noise", "sigma": sigma}],
                              label=task, cache=False)
    gt_of = _hair_rain_gt if key == "derain" else _hair_haze_gt
    return PairedFiles([(os.path.join(folder, e), os.path.join(folder, gt_of(e))) for e in entries], label=task)


@DS.register_layout("all_in_one", {"root", "tasks", "repeats", "lists"})
def all_in_one(cfg: Dict, train: bool) -> Source:
    """``all_in_one`` (datasets.all_in_one_source); with ``lists`` (HAIR's ``data_dir``) the listed files only,
    in list order.  Tasks without a HAIR list (deblur, lowlight) read their folders."""
    tasks = cfg.get("tasks", ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"])
    skip_bad = bool(cfg.get("skip_bad", False))
    lists = cfg.get("lists")
    if not lists:
        return DS.all_in_one_source(cfg["root"], tasks, cfg.get("repeats"), skip_bad)
    if not os.path.isdir(lists):
        raise DatasetError(f"{lists}: HAIR list folder (data_dir/) not found")
    reps = dict(DS.DEFAULT_TASK_REPEATS)
    reps.update(cfg.get("repeats") or {})
    parts = []
    for task in tasks:
        part = _hair_listed_part(task, cfg["root"], lists)
        if part is None:
            part = DS.all_in_one_source(cfg["root"], [task], {task: 1}, skip_bad).parts[0][0]
        parts.append((part, reps.get(task, 1)))
    return DS.Concat(parts)


# ----------------------------------------------------------------------------- GridDehazeNet
@DS.register_layout("griddehazenet", {"root", "list_name"})
def griddehazenet(cfg: Dict, train: bool) -> PairedFiles:
    """``<root>/hazy/<name>`` listed in ``<root>/<list_name>`` against ``<root>/clear/<id>.png|.jpg``
    (GridDehazeNet's TrainData/ValData: ``id = name.split('_')[0]``).  ``list_name: null`` takes every image
    in ``hazy/`` (the repository ships no outdoor trainlist.txt)."""
    root = cfg["root"]
    if "list_name" in cfg and cfg["list_name"] is None:
        list_path = os.path.join(root, "hazy")
        names = [os.path.basename(p) for p in DS._list_images(list_path)]
    else:
        list_path = os.path.join(root, cfg.get("list_name") or ("trainlist.txt" if train else "val_list.txt"))
        names = read_entries(list_path, "GridDehazeNet list file")
    pairs = []
    for name in names:
        stem = name.split("_")[0]
        cands = [os.path.join(root, "clear", stem + ext) for ext in (".png", ".jpg")]
        gt = next((c for c in cands if os.path.isfile(c)), cands[0])
        pairs.append((os.path.join(root, "hazy", name), gt))
    return PairedFiles(pairs, label=list_path)


# ----------------------------------------------------------------------------- OSR release
@DS.register_layout("list_pair", {"input_list", "gt_list", "image_root"})
def list_pair(cfg: Dict, train: bool) -> PairedFiles:
    """The OSR release's two-file lists: ``input_list`` and ``gt_list``, one path per line, paired by line."""
    inp, gt = cfg["input_list"], cfg["gt_list"]
    inputs, gts = read_entries(inp), read_entries(gt)
    if len(inputs) != len(gts):
        raise DatasetError(f"{inp}: lists {len(inputs)} images but {gt} lists {len(gts)}; the two files pair "
                           f"line by line")
    base = cfg.get("image_root") or os.path.dirname(os.path.abspath(inp))
    return PairedFiles(list(zip(reroot(inputs, base), reroot(gts, base))), label=inp)


# ----------------------------------------------------------------------------- SID (PTG-RM)
SID_SPLITS = {"train": ("0", "2"), "test": ("1",)}  # first character of the scene folder (SNR-aware loader)


FRAME_EXTENSIONS = DS.IMAGE_EXTENSIONS + (".npy",)


def read_frame(path: str) -> np.ndarray:
    """An image file, or a SID ``.npy`` frame: HxWx3 uint8 in OpenCV's BGR order, as the SNR-aware loader
    (``read_img2`` + ``[2, 1, 0]``) reads them; returned as RGB float32 in [0, 1] like ``read_image``."""
    if not path.lower().endswith(".npy"):
        return read_image(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ImageReadError(f"{path}: expected an HxWx3 frame, got shape {arr.shape}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(arr.dtype, 1.0)
    return np.ascontiguousarray(np.clip(arr[:, :, 2::-1].astype(np.float32) / scale, 0.0, 1.0))


def _list_frames(folder: str) -> List[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(FRAME_EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))


class SIDPairs(PairedFiles):
    """SID frame pairs named ``<scene>_<frame>`` (frame names repeat across scenes), resized to (W, H) as
    PTG-RM's loader resizes every frame to 960x512."""

    def __init__(self, pairs, label: str, resize: Optional[Sequence[int]] = None):
        super().__init__(pairs, label)
        self.resize = tuple(int(v) for v in resize) if resize else None

    def name(self, index: int) -> str:
        lq = self.pairs[index][0]
        return f"{os.path.basename(os.path.dirname(lq))}_{os.path.basename(lq)}"

    def load(self, index, rng, crop=None):
        lq_path, gt_path = self.pairs[index]
        lq, gt = read_frame(lq_path), read_frame(gt_path)
        if self.resize:
            import cv2

            lq, gt = (cv2.resize(a, self.resize, interpolation=cv2.INTER_LINEAR) for a in (lq, gt))
        check_same_size(lq, gt, lq_path, gt_path)
        return lq, gt, self.name(index)


@DS.register_layout("sid", {"root", "lq_dir", "gt_dir", "split", "resize"})
def sid(cfg: Dict, train: bool) -> SIDPairs:
    root = cfg["root"]
    short = os.path.join(root, cfg.get("lq_dir", "short_sid2"))
    long_ = os.path.join(root, cfg.get("gt_dir", "long_sid2"))
    for folder in (short, long_):
        if not os.path.isdir(folder):
            raise DatasetError(f"{folder}: folder not found (SID layout: short_sid2/<scene>/ and long_sid2/<scene>/)")
    split = cfg.get("split")
    if split not in SID_SPLITS:
        raise DatasetError(f"{root}: SID holds training (0*, 2*) and test (1*) scenes side by side; "
                           f"choose one with split: train or split: test")
    scenes = sorted(d for d in os.listdir(short) if os.path.isdir(os.path.join(short, d))
                    and d[:1] in SID_SPLITS[split])
    if not scenes:
        raise DatasetError(f"{short}: no {split} scenes (folder names starting with {' or '.join(SID_SPLITS[split])})")
    pairs = []
    for scene in scenes:
        gt_dir = os.path.join(long_, scene)
        gt_files = _list_frames(gt_dir) if os.path.isdir(gt_dir) else []
        if not gt_files:
            msg = f"{gt_dir}: no ground-truth frame for the scene {os.path.join(short, scene)}"
            if cfg.get("skip_bad"):
                warnings.warn(msg + "; skipped", UserWarning, stacklevel=2)
                continue
            raise DatasetError(msg)
        pairs += [(f, gt_files[0]) for f in _list_frames(os.path.join(short, scene))]
    return SIDPairs(pairs, label=f"sid:{split}:{root}", resize=cfg.get("resize"))


# ----------------------------------------------------------------------------- (C)BSD68
CLEAN_DIRS = ("clear", "original_png", "original", "clean", "gt")
NOISY_DIRS = ("CBSD68_{s}", "noisy{s}", "sigma{s}", "{s}")


class NamedPairs(PairedFiles):
    """Pairs whose names carry a group suffix (``<stem>__sigma15``), as the synthetic BSD68 names do."""

    def __init__(self, pairs, label: str, suffix: str):
        super().__init__(pairs, label)
        self.suffix = suffix

    def name(self, index: int) -> str:
        return f"{DS._stem(self.pairs[index][0])}__{self.suffix}"


class SigmaNoise(SyntheticPairs):
    """Clean images with seeded Gaussian noise of one sigma, named ``<stem>__sigma<s>`` like the noisy sets."""

    def name(self, index: int) -> str:
        return f"{DS._stem(self.clean[index])}__sigma{self.specs[0]['sigma']:g}"


def bsd68_source(root: str, sigma: float = 25.0, seed: int = 0, noise: str = "auto") -> Source:
    """BSD68/CBSD68 at one noise level.  ``root`` holds the clean images (noise synthesised, seeded), or
    a clean sub-folder beside precomputed noisy sets, which ``noise: auto`` (default) uses when present."""
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: folder not found")
    if noise not in ("auto", "precomputed", "synthetic"):
        raise DatasetError(f"{root}: noise must be auto, precomputed or synthetic, got '{noise}'")
    if any(f.lower().endswith(DS.IMAGE_EXTENSIONS) for f in os.listdir(root)):
        clean_dir, noisy_dir = root, None
    else:
        clean_dir = next((os.path.join(root, d) for d in CLEAN_DIRS if os.path.isdir(os.path.join(root, d))), None)
        if clean_dir is None:
            subs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
            raise DatasetError(f"{root}: no images and no clean sub-folder ({', '.join(CLEAN_DIRS)}); "
                               f"sub-folders here: {', '.join(subs) or 'none'}")
        s = f"{sigma:g}"
        noisy_dir = next((os.path.join(root, p.format(s=s)) for p in NOISY_DIRS
                          if os.path.isdir(os.path.join(root, p.format(s=s)))), None)
    tag = f"sigma{sigma:g}"
    if noisy_dir and noise != "synthetic":
        return NamedPairs(DS.match_pairs(noisy_dir, clean_dir), label=f"bsd68_{tag}:{noisy_dir}", suffix=tag)
    if noise == "precomputed":
        raise DatasetError(f"{root}: no precomputed noisy folder for sigma {sigma:g} "
                           f"({', '.join(p.format(s=f'{sigma:g}') for p in NOISY_DIRS)})")
    return SigmaNoise(DS._list_images(clean_dir), [{"name": "gaussian_noise", "sigma": float(sigma)}],
                      label=f"bsd68_{tag}", fixed_seed=seed)


@DS.register_layout("bsd68", {"root", "sigma", "seed", "noise"})
def bsd68(cfg: Dict, train: bool) -> Source:
    sigmas = cfg.get("sigma", 25)
    sigmas = sigmas if isinstance(sigmas, (list, tuple)) else [sigmas]
    parts = [bsd68_source(cfg["root"], float(s), int(cfg.get("seed", 0)), cfg.get("noise", "auto")) for s in sigmas]
    return parts[0] if len(parts) == 1 else DS.Concat([(p, 1) for p in parts])
