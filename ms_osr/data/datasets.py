"""Paired restoration datasets and MindSpore ``GeneratorDataset`` pipelines.

A *source* is a random-access list of (degraded, clean) pairs with numpy images:
``len(source)`` and ``source.load(i, rng) -> (lq, gt, name)`` (HxWx3 float32 RGB in [0, 1]).
Sources exist for paired folders, list files, the PromptIR/HAIR all-in-one layout, the usual
test sets (BSD68, Rain100L, SOTS-outdoor, GoPro, LOL) and synthetic pairs made on the fly by
:mod:`ms_osr.data.degradations` from a folder of clean images or from scikit-image's bundled
samples.  :func:`build_source` makes one from a config mapping (``type: ...``).

Training order and randomness are fully determined by ``(seed, epoch, index)``: the epoch
permutation comes from ``default_rng([seed, epoch])`` and each sample's crop, flip and
degradation from ``default_rng([seed, epoch, index])``.  So the data stream is the same with any
number of workers, and a resumed run continues the exact stream (see :class:`EpochView`).
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import degradations as deg
from .io import IMAGE_EXTENSIONS, ImageReadError, read_image
from .transforms import (SizeMismatchError, center_crop, check_same_size, crop_by_texture,
                         crop_to_multiple, random_crop_pair, random_dihedral_pair, random_photometric,
                         random_recolour, to_chw)
from ..errors import DatasetError, suggest  # noqa: E402,F401  (re-exported: DS.DatasetError)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ helpers
def _list_images(folder: str, recursive: bool = False) -> List[str]:
    if not os.path.isdir(folder):
        raise DatasetError(f"{folder}: folder not found")
    out = []
    if recursive:
        for root, _dirs, files in os.walk(folder):
            out += [os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    else:
        out = [os.path.join(folder, f) for f in os.listdir(folder)
               if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))]
    return sorted(out)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


_RAIN_RE = re.compile(r"^rain-(.+)$")
_RAIN_X_RE = re.compile(r"^(norain-\d+)x\d+$")   # OSR release's Rain100L: rain/X2/norain-7x2.png
_LOL2_RE = re.compile(r"^low(\d+)$")              # LOL-v2 real: Low/low00001.png -> Normal/normal00001.png


def _clean_candidates(lq_path: str) -> List[str]:
    """Clean-image stems that a degraded file name may map to, most specific first:
    same stem; ``rain-N`` -> ``norain-N`` (Rain100L); ``norain-NxK`` -> ``norain-N`` (Rain100L as the
    OSR release stores it); ``lowN`` -> ``normalN`` (LOL-v2); ``<id>_<beta>_<A>`` -> ``<id>`` (RESIDE)."""
    stem = _stem(lq_path)
    cands = [stem]
    for rx, repl in ((_RAIN_RE, "norain-{}"), (_RAIN_X_RE, "{}"), (_LOL2_RE, "normal{}")):
        m = rx.match(stem)
        if m:
            cands.append(repl.format(m.group(1)))
    if "_" in stem:
        cands.append(stem.split("_")[0])
    return cands


def match_pairs(lq_dir: str, gt_dir: str, recursive: bool = False, skip_bad: bool = False) -> List[Tuple[str, str]]:
    """Pair every degraded image with its clean image (see :func:`_clean_candidates`).

    A degraded file without a clean match is an error naming it (or a warning and skip with
    ``skip_bad``)."""
    lq_files = _list_images(lq_dir, recursive)
    gt_files = _list_images(gt_dir, recursive)
    if not lq_files:
        raise DatasetError(f"{lq_dir}: no images found")
    by_key: Dict[str, str] = {}
    for g in gt_files:
        rel_dir = os.path.relpath(os.path.dirname(g), gt_dir)
        by_key.setdefault((rel_dir, _stem(g)), g)
    pairs = []
    for f in lq_files:
        rel_dir = os.path.relpath(os.path.dirname(f), lq_dir)
        match = next((by_key[(rel_dir, c)] for c in _clean_candidates(f) if (rel_dir, c) in by_key), None)
        if match is None and rel_dir != ".":  # RESIDE: hazy/part1/x.jpg -> original/x.jpg
            match = next((by_key[(".", c)] for c in _clean_candidates(f) if (".", c) in by_key), None)
        if match is None:
            msg = f"{f}: no clean image in {gt_dir} (tried names {', '.join(_clean_candidates(f))})"
            if skip_bad:
                warnings.warn(msg + "; skipped", UserWarning, stacklevel=2)
                continue
            raise DatasetError(msg)
        pairs.append((f, match))
    return pairs


def read_list_file(list_file: str, root: Optional[str] = None) -> List[Tuple[str, str]]:
    """``degraded clean`` per line (whitespace separated; ``#`` comments); paths relative to ``root``
    (default: the list file's folder)."""
    if not os.path.isfile(list_file):
        raise DatasetError(f"{list_file}: list file not found")
    base = root if root is not None else os.path.dirname(os.path.abspath(list_file))
    pairs = []
    with open(list_file, "r", encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DatasetError(f"{list_file}:{no}: expected 'degraded clean', got {line!r}")
            pairs.append(tuple(p if os.path.isabs(p) else os.path.join(base, p) for p in parts))
    if not pairs:
        raise DatasetError(f"{list_file}: no pairs listed")
    return pairs


# ------------------------------------------------------------------------------------ sources
class Source:
    """Random-access list of (lq, gt, name) pairs."""

    #: whether lq is synthesised from the (cropped) clean image, so crop before degrading
    synthetic = False

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int, rng: np.random.Generator, crop: Optional[int] = None):
        raise NotImplementedError

    def name(self, index: int) -> str:
        raise NotImplementedError

    def degradation(self, index: int) -> str:
        """The degradation type of sample ``index`` (the class of a degradation-label loss)."""
        raise NotImplementedError


class PairedFiles(Source):
    """Pairs of image files.  Sizes must match: a mismatch raises naming both files."""

    def __init__(self, pairs: Sequence[Tuple[str, str]], label: str = "pairs"):
        if not pairs:
            raise DatasetError(f"{label}: no image pairs")
        self.pairs = [tuple(p) for p in pairs]
        self.label = label

    def __len__(self) -> int:
        return len(self.pairs)

    def name(self, index: int) -> str:
        return os.path.basename(self.pairs[index][0])

    def degradation(self, index: int) -> str:
        return self.label  # one dataset, one degradation (a part of the all-in-one recipe)

    def load(self, index, rng, crop=None):
        lq_path, gt_path = self.pairs[index]
        lq, gt = read_image(lq_path), read_image(gt_path)
        check_same_size(lq, gt, lq_path, gt_path)
        return lq, gt, self.name(index)


class SyntheticPairs(Source):
    """Clean images x degradation specs; the degraded image is made on the fly.

    Item ``i`` is clean image ``i // len(specs)`` with spec ``i % len(specs)``.  With ``fixed_seed``
    (validation) the degradation noise depends only on ``(fixed_seed, i)``; otherwise on the
    per-sample training generator (fresh noise every epoch, as in the papers).

    ``max_side`` area-downscales each clean image so its long side is at most that many pixels
    (validation at the test photos' scale); ``crop_scale`` draws training crops at a random
    scale (:func:`~ms_osr.data.transforms.random_scaled_crop`).  ``context`` > 1 degrades a window
    ``context`` times the crop's side (same scale) and then cuts the crop from it: a degradation with
    image-scale structure (haze's depth layout) then varies as slowly across a training crop as it does
    across a test image, instead of spanning its whole range inside every crop.  ``texture_crops`` k > 1
    (training only) keeps the most textured of k random crops: fine structure is where a restorer mistakes
    content for a degradation (grass edges and wood grain for rain streaks), and most random crops of a
    photograph are smooth.  It applies to every degradation alike, so texture never tells the degradation.
    A spec with ``crop: smooth`` (e.g. ``{name: identity, crop: smooth}``) keeps the *least* textured of the k
    crops instead: pale, flat clean content (a sky, a blurred background) that textured crops never show and a
    restorer otherwise takes for haze."""

    synthetic = True

    def __init__(self, clean: Sequence[Union[str, Tuple[str, np.ndarray]]], specs: Sequence, label: str = "synthetic",
                 fixed_seed: Optional[int] = None, cache: bool = True, max_side: Optional[int] = None,
                 crop_scale: Sequence[float] = (1.0, 1.0), photometric: float = 0.0, context: int = 1,
                 recolour: float = 0.0, texture_crops: int = 1):
        if not clean:
            raise DatasetError(f"{label}: no clean images")
        if not specs:
            raise DatasetError(f"{label}: no degradations given")
        self.clean = list(clean)
        self.specs = [s if isinstance(s, str) else dict(s) for s in specs]
        self.smooth_crop = [False] * len(self.specs)  # per spec: keep the least textured crop
        for i, s in enumerate(self.specs):  # fail early on a typo
            deg.get_degradation(s if isinstance(s, str) else s["name"])
            if isinstance(s, dict) and "crop" in s:
                choice = s.pop("crop")
                if choice not in ("textured", "smooth"):
                    raise DatasetError(f"{label}: degradation {s['name']!r}: crop must be 'textured' or 'smooth', "
                                       f"got {choice!r}")
                self.smooth_crop[i] = choice == "smooth"
        self.label = label
        self.fixed_seed = fixed_seed
        self.cache = cache
        self.max_side = int(max_side) if max_side else None
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.photometric = float(photometric)
        self.recolour = float(recolour)
        if not 0.0 <= self.recolour <= 1.0:
            raise DatasetError(f"{label}: recolour is a probability in [0, 1], got {recolour}")
        self.context = int(context)
        if self.context < 1:
            raise DatasetError(f"{label}: context must be an integer >= 1, got {context}")
        if isinstance(texture_crops, bool) or not isinstance(texture_crops, (int, np.integer)) or texture_crops < 1:
            raise DatasetError(f"{label}: texture_crops must be an integer >= 1, got {texture_crops!r}")
        self.texture_crops = int(texture_crops)
        self._cache: Dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.clean) * len(self.specs)

    def _clean_name(self, ci: int) -> str:
        item = self.clean[ci]
        return item[0] if isinstance(item, tuple) else _stem(item)

    def spec_name(self, index: int) -> str:
        s = self.specs[index % len(self.specs)]
        return s if isinstance(s, str) else s["name"]

    def name(self, index: int) -> str:
        return f"{self._clean_name(index // len(self.specs))}__{self.spec_name(index)}"

    def degradation(self, index: int) -> str:
        return self.spec_name(index)

    def clean_image(self, ci: int) -> np.ndarray:
        if ci in self._cache:
            return self._cache[ci]
        item = self.clean[ci]
        img = item[1] if isinstance(item, tuple) else read_image(item)
        if self.max_side and max(img.shape[:2]) > self.max_side:
            import cv2

            f = self.max_side / max(img.shape[:2])
            img = cv2.resize(img, (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))),
                             interpolation=cv2.INTER_AREA)
        if self.cache:
            self._cache[ci] = img
        return img

    def load(self, index, rng, crop=None):
        ci, si = divmod(index, len(self.specs))
        gt = self.clean_image(ci)
        if crop:
            candidates = self.texture_crops if self.fixed_seed is None else 1
            gt = crop_by_texture(gt, crop * self.context, rng, self.crop_scale, candidates, self.smooth_crop[si])
        if self.fixed_seed is None:  # training only: validation keeps the photo as is
            if self.recolour > 0:
                gt = random_recolour(gt, rng, self.recolour)
            if self.photometric > 0:
                gt = random_photometric(gt, rng, self.photometric)
        drng = np.random.default_rng([self.fixed_seed, index]) if self.fixed_seed is not None else rng
        lq = deg.apply_spec(gt, self.specs[si], drng)
        if crop and self.context > 1:
            lq, gt = random_crop_pair(lq, gt, crop, rng)
        return lq.astype(np.float32), np.ascontiguousarray(gt, np.float32), self.name(index)


class Concat(Source):
    """Concatenation with per-part repeat factors (e.g. Rain100L x120 in the all-in-one recipe)."""

    def __init__(self, parts: Sequence[Tuple[Source, int]]):
        self.parts = [(p, int(r)) for p, r in parts if len(p) > 0 and int(r) > 0]
        if not self.parts:
            raise DatasetError("empty dataset: no parts")
        self.offsets = np.cumsum([0] + [len(p) * r for p, r in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, index):
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        part, _ = self.parts[k]
        return part, (index - int(self.offsets[k])) % len(part)

    def name(self, index: int) -> str:
        part, i = self._locate(index)
        return part.name(i)

    def degradation(self, index: int) -> str:
        part, i = self._locate(index)
        return part.degradation(i)

    def part_of(self, index: int) -> Source:
        return self._locate(index)[0]

    def load(self, index, rng, crop=None):
        part, i = self._locate(index)
        return part.load(i, rng, crop)


# --------------------------------------------------------------------- scikit-image samples
# Natural-looking images bundled with scikit-image (no download).  The held-out ones are only
# ever used for evaluation/demo; everything else is training material.
SKIMAGE_SAMPLES = {
    "astronaut": "astronaut.png", "camera": "camera.png", "chelsea": "chelsea.png", "coffee": "coffee.png",
    "hubble_deep_field": "hubble_deep_field.jpg", "immunohistochemistry": "ihc.png",
    "motorcycle_left": "motorcycle_left.png", "motorcycle_right": "motorcycle_right.png",
    "retina": "retina.jpg", "rocket": "rocket.jpg", "brick": "brick.png", "grass": "grass.png",
    "gravel": "gravel.png", "moon": "moon.png", "coins": "coins.png", "cell": "cell.png",
    "page": "page.png", "text": "text.png",
}
SKIMAGE_HELDOUT = ("astronaut", "camera", "chelsea", "coffee")


def skimage_sample_names(split: str = "train") -> List[str]:
    """Names of the bundled samples in ``split`` ('train', 'heldout' or 'all'), in a fixed order."""
    if split == "heldout":
        return list(SKIMAGE_HELDOUT)
    if split == "train":
        return [n for n in SKIMAGE_SAMPLES if n not in SKIMAGE_HELDOUT]
    if split == "all":
        return list(SKIMAGE_SAMPLES)
    raise ValueError(f"unknown split '{split}': choose train, heldout or all")


def skimage_sample_path(name: str) -> str:
    import skimage.data

    if name not in SKIMAGE_SAMPLES:
        raise KeyError(f"unknown scikit-image sample '{name}'; known: {', '.join(SKIMAGE_SAMPLES)}")
    return os.path.join(os.path.dirname(skimage.data.__file__), SKIMAGE_SAMPLES[name])


def load_skimage_sample(name: str) -> np.ndarray:
    """A bundled sample as HxWx3 float32 RGB in [0, 1] (grey images replicated to 3 channels)."""
    return read_image(skimage_sample_path(name))


def heldout_sample_images() -> List[Tuple[str, np.ndarray]]:
    """The held-out bundled images ``[(name, image)]``: never used for training (test.py's demo)."""
    return [(n, load_skimage_sample(n)) for n in SKIMAGE_HELDOUT]


# ------------------------------------------------------------------------------ all-in-one
DEFAULT_TASK_REPEATS = {"denoise_15": 1, "denoise_25": 1, "denoise_50": 1, "derain": 120, "dehaze": 1,
                        "deblur": 5, "lowlight": 20}
# task -> (sub-folder, degraded folder names tried, clean folder names tried)
_TASK_DIRS = {"derain": ("Derain", ("rainy", "input"), ("gt", "target")),
              "dehaze": ("Dehaze", ("hazy", "synthetic"), ("original", "clear", "gt")),
              "deblur": ("Deblur", ("blur", "input"), ("sharp", "target", "gt")),
              "lowlight": ("Enhance", ("low", "input"), ("gt", "high", "target"))}


def _first_dir(base: str, names: Sequence[str]) -> str:
    for n in names:
        if os.path.isdir(os.path.join(base, n)):
            return os.path.join(base, n)
    raise DatasetError(f"{base}: none of the folders {', '.join(names)} exists")


def all_in_one_source(root: str, tasks: Sequence[str] = ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"),
                      repeats: Optional[Dict[str, int]] = None, skip_bad: bool = False) -> Concat:
    """PromptIR/HAIR training layout under ``root`` (usually ``data/Train``):

    ``Denoise/*`` clean images (noise sigma 15/25/50 added on the fly, uint8 like the papers),
    ``Derain/rainy/rain-N.png`` + ``Derain/gt/norain-N.png``, ``Dehaze/{hazy|synthetic}/**/<id>_<b>_<A>.jpg``
    + ``Dehaze/original/<id>.*``, and for the 5-task setting ``Deblur/{blur,sharp}`` (GoPro) and
    ``Enhance/{low,gt}`` (LOL).  ``repeats`` multiplies each task (defaults: derain x120,
    deblur x5, lowlight x20, the rest x1)."""
    reps = dict(DEFAULT_TASK_REPEATS)
    reps.update(repeats or {})
    parts = []
    for task in tasks:
        if task.startswith("denoise_"):
            sigma = float(task.split("_", 1)[1])
            clean = _list_images(os.path.join(root, "Denoise"))
            parts.append((SyntheticPairs(clean, [{"name": "gaussian_noise", "sigma": sigma}], label=task,
                                         cache=False), reps.get(task, 1)))
        elif task in _TASK_DIRS:
            sub, lq, gt = _TASK_DIRS[task]
            base = os.path.join(root, sub)
            pairs = match_pairs(_first_dir(base, lq), _first_dir(base, gt), recursive=(task == "dehaze"),
                                skip_bad=skip_bad)
            parts.append((PairedFiles(pairs, label=task), reps.get(task, 1)))
        else:
            raise DatasetError(f"unknown all-in-one task '{task}'; choose from denoise_<sigma>, "
                               f"{', '.join(_TASK_DIRS)}")
    return Concat(parts)


# Test-set layouts: the degraded/clean sub-folder names tried, in order (``rain/X2``: the OSR release's Rain100L;
# ``Low``/``Normal``: LOL-v2).
TEST_LAYOUTS = {
    "rain100l": (("input", "rainy", "rain/X2", "rain"), ("target", "gt", "norain")),
    "sots_outdoor": (("input", "hazy"), ("target", "gt", "clear", "original")),
    "gopro": (("blur", "input"), ("sharp", "target")),
    "lol": (("low", "Low", "input"), ("high", "gt", "target", "normal", "Normal")),
}


def _find_pair_dirs(root: str, lq_names: Sequence[str], gt_names: Sequence[str]) -> List[Tuple[str, str]]:
    """All (lq_dir, gt_dir) siblings under ``root`` (GoPro has one pair per sequence folder)."""
    found = []
    for cur, dirs, _files in os.walk(root):
        for lq in lq_names:
            if os.path.isdir(os.path.join(cur, lq)):  # names may be nested ('rain/X2')
                gt = next((g for g in gt_names if g in dirs), None)
                if gt:
                    found.append((os.path.join(cur, lq), os.path.join(cur, gt)))
                    break
    return sorted(found)


def test_set_source(kind: str, root: str, skip_bad: bool = False, split: Optional[str] = None) -> PairedFiles:
    """A paired set (``rain100l``, ``sots_outdoor``, ``gopro``, ``lol``) found under ``root``; where ``root``
    holds train and test splits side by side, ``split`` picks one (see :mod:`ms_osr.data.splits`)."""
    from .splits import select_split

    if kind not in TEST_LAYOUTS:
        raise DatasetError(f"unknown test set '{kind}'; choose from {', '.join(TEST_LAYOUTS)} or bsd68")
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: folder not found")
    dirs = _find_pair_dirs(root, *TEST_LAYOUTS[kind])
    if not dirs:
        raise DatasetError(f"{root}: no {'/'.join(TEST_LAYOUTS[kind][0])} + {'/'.join(TEST_LAYOUTS[kind][1])} "
                           f"sub-folders for {kind}")
    dirs = select_split(root, dirs, split, kind)
    pairs = []
    for lq_dir, gt_dir in dirs:
        pairs += match_pairs(lq_dir, gt_dir, skip_bad=skip_bad)
    return PairedFiles(pairs, label=f"{kind}:{root}")


# ------------------------------------------------------------------------------- from config
def _specs(cfg: Dict) -> List:
    specs = cfg.get("degradations")
    if not specs:
        raise DatasetError(f"data source '{cfg.get('type')}' needs a 'degradations' list")
    return list(specs)


# source builders of the upstream trees: ms_osr.data.layouts adds them when ms_osr.data is imported (layouts uses
# the sources above, so datasets does not import it)
LAYOUT_SOURCES: Dict[str, Callable[[Dict, bool], Source]] = {}


# The keys each source type reads; any other key in its section (a typo such as `texture_crop`) would be ignored
# without a word, so check_source_keys refuses it.  Every type also takes _COMMON_KEYS: `repeat` (read by the
# training loop and by concat), `crop`, `crop_multiple`, `max_items`, `metrics` (validation) and `skip_bad`
# (data.skip_bad passes it to every source).  The upstream layouts of ms_osr.data.layouts register theirs beside
# their builders (register_layout).
_COMMON_KEYS = frozenset({"type", "skip_bad", "repeat", "crop", "crop_multiple", "max_items", "metrics"})
_SYNTHESIS_KEYS = frozenset({"degradations", "seed", "cache"})
SOURCE_KEYS: Dict[str, FrozenSet[str]] = {
    "synthetic_folder": _SYNTHESIS_KEYS | {"root", "recursive"},
    "skimage_samples": _SYNTHESIS_KEYS | {"split", "names"},
    "photos": _SYNTHESIS_KEYS | {"split", "root", "manifest", "crop_scale", "max_side", "photometric", "recolour",
                                 "context", "texture_crops"},
    "paired_folder": frozenset({"degraded", "clean", "recursive"}),
    "list_file": frozenset({"list", "root"}),
    "concat": frozenset({"parts"}),
    **{kind: frozenset({"root", "split"}) for kind in TEST_LAYOUTS},
}


def register_layout(kind: str, keys: Iterable[str]) -> Callable:
    """Decorator: ``builder(cfg, train)`` makes the sources of type ``kind``, whose sections hold ``keys``."""
    def register(builder: Callable[[Dict, bool], Source]) -> Callable[[Dict, bool], Source]:
        LAYOUT_SOURCES[kind] = builder
        SOURCE_KEYS[kind] = frozenset(keys)
        return builder
    return register


def source_reads(kind: Optional[str], key: str) -> bool:
    """Whether a source of type ``kind`` reads ``key`` (data.root fills ``root`` only where it does)."""
    return key in SOURCE_KEYS.get(kind, ())


def check_source_keys(cfg: Dict, where: str = "data source") -> None:
    """Refuse a key the source ``cfg['type']`` does not read, naming ``where`` (e.g. ``data.train``), the key, the
    closest known key and the known ones; a concat's parts are checked one by one.  An unknown type is left to
    :func:`build_source`."""
    kind = cfg.get("type")
    if kind not in SOURCE_KEYS:
        return
    known = _COMMON_KEYS | SOURCE_KEYS[kind]
    unknown = sorted(set(cfg) - known)
    if unknown:
        named = ", ".join(f"{key}{suggest(key, known)}" for key in unknown)
        raise DatasetError(f"{where} ({kind}): unknown key(s) {named}; known: {', '.join(sorted(known))}")
    if kind == "concat":
        for i, part in enumerate(cfg.get("parts") or []):
            check_source_keys(part, f"{where}.parts[{i}]")


def build_source(cfg: Dict, train: bool = True) -> Source:
    """A source from a config mapping; ``type`` is one of :data:`SOURCE_KEYS` (paired_folder, list_file,
    synthetic_folder, skimage_samples, photos: the corpus of :mod:`ms_osr.data.corpus`, rain100l, sots_outdoor,
    gopro, lol, concat, and the upstream layouts all_in_one, griddehazenet, list_pair, sid, bsd68)."""
    cfg = dict(cfg)
    kind = cfg.get("type")
    check_source_keys(cfg)
    skip_bad = bool(cfg.get("skip_bad", False))
    seed = None if train else int(cfg.get("seed", 0))
    if kind in LAYOUT_SOURCES:  # upstream trees (HAIR lists, GridDehazeNet, OSR lists, SID, CBSD68)
        return LAYOUT_SOURCES[kind](cfg, train)
    if kind == "paired_folder":
        return PairedFiles(match_pairs(cfg["degraded"], cfg["clean"], bool(cfg.get("recursive", False)), skip_bad),
                           label=cfg["degraded"])
    if kind == "list_file":
        return PairedFiles(read_list_file(cfg["list"], cfg.get("root")), label=cfg["list"])
    if kind == "synthetic_folder":
        return SyntheticPairs(_list_images(cfg["root"], bool(cfg.get("recursive", False))), _specs(cfg),
                              label=cfg["root"], fixed_seed=seed, cache=bool(cfg.get("cache", train)))
    if kind == "skimage_samples":
        split = cfg.get("split", "train")
        names = cfg.get("names") or skimage_sample_names(split)
        leaked = sorted(set(names) & set(SKIMAGE_HELDOUT))
        if train and leaked:
            raise DatasetError(f"skimage_samples: held-out images {leaked} are never trained on")
        return SyntheticPairs([skimage_sample_path(n) for n in names], _specs(cfg), label=f"skimage:{split}",
                              fixed_seed=seed, cache=bool(cfg.get("cache", True)))
    if kind == "photos":
        from .corpus import DEFAULT_ROOT, MANIFEST, split_names, split_paths

        splits = split_names(cfg.get("split", "train"))  # a name or a list, e.g. [train, extra]
        if train and "test" in splits:
            raise DatasetError("photos: the test split is for evaluation only; train on split 'train' "
                               "(or [train, extra])")
        paths = split_paths(cfg.get("root") or DEFAULT_ROOT, splits, cfg.get("manifest") or MANIFEST)
        return SyntheticPairs(paths, _specs(cfg),
                              label="photos:" + "+".join(splits), fixed_seed=seed,
                              cache=bool(cfg.get("cache", True)),
                              max_side=cfg.get("max_side"), crop_scale=cfg.get("crop_scale", (1.0, 1.0)),
                              photometric=float(cfg.get("photometric", 0.0)), context=int(cfg.get("context", 1)),
                              recolour=float(cfg.get("recolour", 0.0)),
                              texture_crops=cfg.get("texture_crops", 1))
    if kind in TEST_LAYOUTS:
        return test_set_source(kind, cfg["root"], skip_bad, cfg.get("split"))
    if kind == "concat":
        return Concat([(build_source(p, train), int(p.get("repeat", 1))) for p in cfg["parts"]])
    raise DatasetError(f"unknown data type '{kind}'{suggest(kind, SOURCE_KEYS)}; "
                       f"choose from {', '.join(sorted(SOURCE_KEYS))}")


# ------------------------------------------------------------------------------ epoch views
class EpochView:
    """Random-access view for one epoch of one rank, fed to ``GeneratorDataset``.

    The global order is ``default_rng([seed, epoch]).permutation(len(source))``; global step ``s``
    uses positions ``[s*G, (s+1)*G)`` (G = global batch) and rank ``r`` takes its ``batch``-sized
    slice, so the union over ranks equals a single-process run with the same global batch.
    Items start at ``start_step`` (resume mid-epoch).  With ``classes`` (degradation names) each item also
    carries the one-hot label of its degradation (:meth:`Source.degradation`)."""

    def __init__(self, source: Source, seed: int, epoch: int, batch: int, rank: int = 0, world: int = 1,
                 start_step: int = 0, patch_size: Optional[int] = 128, augment: bool = True, skip_bad: bool = False,
                 classes: Optional[Sequence[str]] = None):
        self.source, self.seed, self.epoch = source, int(seed), int(epoch)
        self.patch, self.augment, self.skip_bad = patch_size, augment, skip_bad
        self.classes = list(classes) if classes else None
        gb = batch * world
        steps = steps_per_epoch(len(source), gb)
        if steps == 0:
            raise DatasetError(f"dataset has {len(source)} samples, fewer than one global batch of {gb}")
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(source))
        idx = []
        for s in range(start_step, steps):
            base = s * gb + rank * batch
            idx.extend(order[base:base + batch].tolist())
        self.indices = idx

    def __len__(self) -> int:
        return len(self.indices)

    def sample(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        # synthetic sources crop the clean image before degrading (cheaper); file pairs ignore the hint
        lq, gt, _name = self.source.load(index, rng, self.patch)
        if self.patch:
            lq, gt = random_crop_pair(lq, gt, self.patch, rng)
        if self.augment:
            lq, gt = random_dihedral_pair(lq, gt, rng)
        if self.classes is None:
            return to_chw(lq), to_chw(gt)
        onehot = np.zeros(len(self.classes), np.float32)
        onehot[self.classes.index(self.source.degradation(index))] = 1.0
        return to_chw(lq), to_chw(gt), onehot

    def __getitem__(self, pos: int):
        index = self.indices[pos]
        if not self.skip_bad:
            return self.sample(index)
        n = len(self.source)
        for attempt in range(min(n, 50)):  # deterministic replacement: the next index
            cand = (index + attempt) % n
            try:
                return self.sample(cand)
            except (ImageReadError, SizeMismatchError, DatasetError) as exc:
                warnings.warn(f"skipping bad sample: {exc}", UserWarning, stacklevel=2)
                log.warning("skipping bad sample: %s", exc)
        raise DatasetError(f"too many unreadable samples around index {index}")


def steps_per_epoch(n: int, global_batch: int) -> int:
    return n // global_batch


class EvalView:
    """Deterministic full-image (or centre-cropped) pairs for validation, batch 1."""

    def __init__(self, source: Source, crop: Optional[int] = None, crop_multiple: int = 1, max_items: int = 0):
        self.source, self.crop, self.multiple = source, crop, crop_multiple
        self.n = len(source) if not max_items else min(max_items, len(source))

    def __len__(self) -> int:
        return self.n

    def get(self, pos: int):
        rng = np.random.default_rng([0, pos])
        if self.crop and self.source.synthetic:
            # crop the clean image first so a fixed-seed degradation is independent of the crop
            ci = pos
            lq, gt, name = self._synthetic_cropped(ci, rng)
        else:
            lq, gt, name = self.source.load(pos, rng)
            if self.crop:
                lq, gt = center_crop(lq, self.crop), center_crop(gt, self.crop)
        if self.multiple > 1:
            lq, gt = crop_to_multiple(lq, self.multiple), crop_to_multiple(gt, self.multiple)
        return lq, gt, name

    def _synthetic_cropped(self, pos, rng):
        src: SyntheticPairs = self.source  # type: ignore[assignment]
        ci, si = divmod(pos, len(src.specs))
        gt = center_crop(src.clean_image(ci), self.crop)
        drng = np.random.default_rng([src.fixed_seed if src.fixed_seed is not None else 0, pos])
        lq = deg.apply_spec(gt, src.specs[si], drng)
        return lq.astype(np.float32), np.ascontiguousarray(gt, np.float32), src.name(pos)

    def __iter__(self):
        for i in range(self.n):
            yield self.get(i)


def make_generator_dataset(view: EpochView, batch: int, num_workers: int = 1, multiprocessing: bool = False):
    """Wrap an :class:`EpochView` in a batched ``mindspore.dataset.GeneratorDataset`` (order kept); columns
    ``lq, gt`` and, when the view has classes, ``label``."""
    import mindspore.dataset as mds

    workers = max(1, int(num_workers))
    columns = ["lq", "gt"] + (["label"] if view.classes else [])
    dset = mds.GeneratorDataset(view, column_names=columns, shuffle=False, num_parallel_workers=workers,
                                python_multiprocessing=bool(multiprocessing and workers > 1))
    return dset.batch(batch, drop_remainder=True)
