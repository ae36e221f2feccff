"""What evaluation restores: one :class:`Sample` per image, with optional ground truth, and every place
samples come from: user files (:func:`collect_samples`), benchmarks in their official layouts, the photo
corpus, seeded synthetic degradations, a data source seen through the view training validates with.
The one evaluation path that scores them is :func:`ms_osr.evaluation.evaluate_samples`."""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .data import datasets as DS
from .data.io import ImageFormat, ImageReadError, is_image_file, list_images, read_image_with_format
from .data.transforms import crop_to_multiple
from .errors import EvaluationError


@dataclass
class Sample:
    """One image to restore.

    ``load()`` returns ``(degraded, clean_or_None)``; it may raise ImageReadError/EvaluationError.
    ``sources`` are the files it reads (never overwritten by outputs).  A loader of user files
    (:class:`FilePair`) also tells, once called, the input's ``format`` and ``gt_problem``: why
    its ground truth could not be used (the image is then restored without metrics).
    """

    name: str
    load: Callable[[], Tuple[np.ndarray, Optional[np.ndarray]]]
    sources: Tuple[str, ...] = ()
    group: str = ""  # e.g. the degradation or noise level, for per-group averages
    meta: Dict[str, object] = field(default_factory=dict)  # copied into the record, e.g. photo and seed


class FilePair:
    """Loader of an input file and its optional ground truth (see :class:`Sample`).

    Ground truth that is missing (``gt_missing``: the reason), unreadable or of another size
    does not stop the input from being restored: ``load()`` returns ``(img, None)`` and
    ``gt_problem`` says why.
    """

    def __init__(self, inp: str, gt: Optional[str] = None, gt_missing: Optional[str] = None):
        self.inp, self.gt = inp, gt
        self.format = ImageFormat()
        self.gt_problem = gt_missing

    def __call__(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        img, self.format = read_image_with_format(self.inp)
        if not self.gt:
            return img, None
        try:
            ref = read_image_with_format(self.gt)[0]
        except ImageReadError as exc:
            self.gt_problem = f"ground truth {str(exc).splitlines()[0]}"
            return img, None
        if ref.shape != img.shape:
            self.gt_problem = (f"ground truth {self.gt} is {ref.shape[1]}x{ref.shape[0]} but the input is "
                               f"{img.shape[1]}x{img.shape[0]}")
            return img, None
        return img, ref


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def clean_name_candidates(path: str) -> List[str]:
    """Ground-truth stems an input file may pair with, most specific first."""
    from .data.datasets import _clean_candidates

    return _clean_candidates(path)


def collect_samples(inp: str, gt: Optional[str] = None) -> Tuple[List[Sample], List[str], List[str]]:
    """Pair input files with ground truth by file stem (or the benchmark naming rules).

    Returns ``(samples, errors, notes)``: ``errors`` are one-line messages for files that
    cannot be evaluated (e.g. no matching ground truth), ``notes`` list ignored files
    (non-image extensions inside a folder).
    """
    errors: List[str] = []
    notes: List[str] = []
    if not os.path.exists(inp):
        raise EvaluationError(f"{inp}: input not found")
    if os.path.isdir(inp):
        inputs = list_images(inp)
        for n in sorted(os.listdir(inp)):
            p = os.path.join(inp, n)
            if os.path.isfile(p) and not is_image_file(n):
                notes.append(f"{p}: ignored (not an image file extension)")
        if not inputs:
            raise EvaluationError(f"{inp}: folder contains no image files")
    else:
        if not is_image_file(inp):
            raise EvaluationError(f"{inp}: not an image file (expected one of .png .jpg .jpeg .bmp .tif .tiff)")
        inputs = [inp]
    gt_by_stem: Dict[str, str] = {}
    if gt is not None:
        if not os.path.exists(gt):
            raise EvaluationError(f"{gt}: ground truth not found")
        if os.path.isdir(gt):
            for p in list_images(gt):
                gt_by_stem.setdefault(_stem(p), p)
        elif os.path.isdir(inp):
            raise EvaluationError(f"{gt}: ground truth must be a folder when the input {inp} is a folder")
        elif not is_image_file(gt):
            raise EvaluationError(f"{gt}: ground truth is not an image file")
    samples: List[Sample] = []
    seen: Dict[str, str] = {}
    for p in inputs:
        name = _stem(p)
        if name in seen:
            errors.append(f"{p}: same name as {seen[name]}; outputs would collide (skipped)")
            continue
        seen[name] = p
        ref = None
        if gt is not None:
            if os.path.isdir(gt):
                # same stem first, then the benchmark naming rules (rain-N -> norain-N, RESIDE <id>_<b>_<A> -> <id>)
                ref = next((gt_by_stem[c] for c in clean_name_candidates(p) if c in gt_by_stem), None)
            else:
                ref = gt
        missing = f"no matching ground truth '{name}.*' in {gt}" if gt is not None and ref is None else None
        samples.append(Sample(name, FilePair(p, ref, missing), tuple(x for x in (p, ref) if x)))
    return samples, errors, notes


# --------------------------------------------------------------------------------------
# Benchmarks in their official layouts
# --------------------------------------------------------------------------------------

# CLI name -> ms_osr.data.datasets test-set kind (None: BSD68, noise synthesised)
BENCHMARKS = {"bsd68": None, "rain100l": "rain100l", "sots-outdoor": "sots_outdoor", "gopro": "gopro", "lol": "lol"}


def benchmark_samples(name: str, root: str, sigmas: Sequence[float] = (15, 25, 50), seed: int = 0,
                      crop_multiple: int = 16, split: Optional[str] = "test") -> Tuple[List[Sample], List[str]]:
    """Samples of a benchmark found under ``root`` (layouts: :mod:`ms_osr.data.datasets`).

    All-in-one protocol (AirNet/PromptIR/HAIR): degraded and clean images are centre-cropped
    to a multiple of ``crop_multiple`` (16; 0/1 keeps full size).  BSD68: seeded uint8
    Gaussian noise per sigma (seed per image), or CBSD68's precomputed noisy sets when ``root`` holds them
    beside its clean folder; grouped as ``sigma15``... in the averages.  A root holding train and test
    splits side by side is read at ``split``.  Pairs that cannot be matched are returned as error lines.
    """
    import warnings

    if name not in BENCHMARKS:
        raise EvaluationError(f"unknown benchmark '{name}': choose one of {', '.join(BENCHMARKS)}")
    if not os.path.isdir(root):
        raise EvaluationError(f"{root}: benchmark folder not found")
    samples: List[Sample] = []
    errors: List[str] = []

    def crop(a, b):
        return crop_to_multiple(a, crop_multiple), crop_to_multiple(b, crop_multiple)

    try:
        if BENCHMARKS[name] is None:
            from .data.layouts import bsd68_source

            for sigma in sigmas:
                samples += source_samples(bsd68_source(root, sigma=float(sigma), seed=seed), crop_multiple)
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                src = DS.test_set_source(BENCHMARKS[name], root, skip_bad=True, split=split)
            errors += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
            for i, (lq_path, gt_path) in enumerate(src.pairs):
                def load(src=src, i=i):
                    lq, gt, _ = src.load(i, rng=None)
                    return crop(lq, gt)

                # name by the folder that holds the input/target pair (GoPro: the sequence)
                rel = os.path.relpath(os.path.dirname(os.path.dirname(lq_path)), root)
                stem = _stem(lq_path) if rel in (".", "") else f"{rel.replace(os.sep, '_')}_{_stem(lq_path)}"
                samples.append(Sample(stem, load, (lq_path, gt_path)))
    except DS.DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    return samples, errors


# --------------------------------------------------------------------------------------
# Seeded synthetic degradations (demo and OSR protocol)
# --------------------------------------------------------------------------------------


def sample_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the given names (not on call order)."""
    return np.random.default_rng([seed] + [zlib.crc32(k.encode("utf-8")) for k in keys])


PHOTO_DEGRADATIONS = ("noise_15", "noise_25", "noise_50", "rain", "haze")


def photo_samples(root: str, degradations: Sequence[str] = PHOTO_DEGRADATIONS, seeds: Sequence[int] = (0,),
                  split: str = "test", limit: int = 0, crop: int = 0) -> List[Sample]:
    """The photo corpus' ``split`` degraded by each name in ``degradations`` under each seed.

    The degraded input depends only on (photograph, degradation, seed), so every model sees the
    same inputs.  Degradations with a random sampler (rain, haze, ``gaussian_noise``) draw their
    parameters from that generator too: each photograph gets its own kind of rain or haze, as a
    user's photos would.  Records carry ``photo`` and ``seed`` (seeds are averaged per photograph).
    ``crop`` > 0 takes the centre ``crop`` x ``crop`` of each clean photo first (a cheaper evaluation).
    Photos of the other splits, stored at full resolution for training crops, are first scaled like the
    test split (long side at most 1024 px), so that every split is evaluated at the same scale."""
    from .data.corpus import CorpusError, fit_test_scale, split_paths
    from .data.degradations import apply_spec, get_degradation
    from .data.io import read_image
    from .data.transforms import center_crop

    try:
        paths = split_paths(root, split)[:limit or None]
        for d in degradations:
            get_degradation(d)
    except (CorpusError, KeyError) as exc:
        raise EvaluationError(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
    out = []
    for deg in degradations:
        spec = {"name": deg, "random": True}  # defaults where there is no sampler
        for path in paths:
            photo = _stem(path)
            for seed in seeds:
                def load(path=path, deg=deg, photo=photo, seed=seed, spec=spec):
                    clean = read_image(path)
                    if split != "test":
                        clean = np.clip(fit_test_scale(clean), 0, 1)
                    if crop:
                        clean = np.ascontiguousarray(center_crop(clean, crop))
                    lq = apply_spec(clean, spec, sample_rng(int(seed), deg, photo))
                    return np.clip(np.asarray(lq, np.float32), 0, 1), clean

                name = f"{photo}_{deg}" + (f"_s{seed}" if len(seeds) > 1 else "")
                out.append(Sample(name, load, (path,), group=deg, meta={"photo": photo, "seed": int(seed)}))
    return out


def synthetic_samples(images: Dict[str, np.ndarray], degradations: Sequence[str], seed: int = 0,
                      degrade_fn: Optional[Callable] = None, params: Optional[Dict[str, dict]] = None) -> List[Sample]:
    """Samples ``<image>_<degradation>`` with a seeded degradation of each clean image."""
    if degrade_fn is None:
        from .data.degradations import degrade as degrade_fn  # noqa: F811
    params = params or {}
    out = []
    for deg in degradations:
        for name, clean in images.items():
            def load(clean=clean, deg=deg, name=name):
                rng = sample_rng(seed, deg, name)
                degraded = np.clip(np.asarray(degrade_fn(clean, deg, rng, **params.get(deg, {})), np.float32), 0, 1)
                return degraded, clean

            out.append(Sample(f"{name}_{deg}", load, (), group=deg))
    return out


# --------------------------------------------------------------------------------------
# A data source (a config's data.val, list files) through the view training validates with
# --------------------------------------------------------------------------------------


def source_samples(src: DS.Source, crop_multiple: int = 0, crop: Optional[int] = None) -> List[Sample]:
    """One :class:`Sample` per item (name ``<stem>``, ``group`` the part after ``__`` such as ``sigma25``), loaded
    through the :class:`~ms_osr.data.datasets.EvalView` that training validates with (``crop``: centre crop,
    ``crop_multiple``: the all-in-one protocol's crop to a multiple of 16), so test.py scores what train.py did."""
    view = DS.EvalView(src, crop=crop, crop_multiple=crop_multiple)
    names = [src.name(i) for i in range(len(src))]
    seen: Dict[str, int] = {}
    samples = []
    for i, raw in enumerate(names):
        stem, _, group = os.path.splitext(raw)[0].partition("__")
        name = f"{stem}_{group}" if group else stem
        if name in seen:  # frame names repeat across scenes/sequences: keep outputs apart
            name = f"{name}_{i:04d}"
        seen[name] = i

        def load(i=i):
            lq, gt, _ = view.get(i)
            return lq, gt

        samples.append(Sample(name, load, _files(src, i), group=group))
    return samples


def _files(src: DS.Source, index: int) -> Tuple[str, ...]:
    """Files item ``index`` reads (outputs must never overwrite them)."""
    if isinstance(src, DS.Concat):
        part, i = src._locate(index)
        return _files(part, i)
    if isinstance(src, DS.PairedFiles):
        return tuple(src.pairs[index])
    if isinstance(src, DS.SyntheticPairs):
        item = src.clean[index // len(src.specs)]
        return (item,) if isinstance(item, str) else ()
    return ()
