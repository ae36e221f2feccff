"""Evaluation: image/folder/benchmark runs, metric tables, comparison grids, the OSR protocol.

Everything here works on plain callables ``restore(img) -> img`` (HxWx3 float32 in [0, 1]):
:class:`ms_osr.inference.Restorer` for ``test.py``, the network itself for ``train.py``'s validation
(:mod:`ms_osr.training.evaluate`), so :func:`evaluate_samples` is the one path that scores both.
"""
from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .data.io import (ImageFormat, ImageReadError, is_image_file, list_images, read_image_with_format, to_format,
                      write_image)
from .data.transforms import SizeMismatchError, crop_to_multiple
from .fileio import atomic_write_text, writable_folder_problem
from .input_size import model_unit, size_verdict
from .metrics import CONVENTIONS, calculate_psnr, calculate_ssim
from .statistics import cap_psnr, mean_ci, paired_difference
from .errors import EvaluationError  # noqa: E402,F401  (re-exported)
from .samples import Sample  # noqa: E402,F401  (re-exported)
from .tables import comparison_grid, format_table, markdown_table, write_csv, write_json  # noqa: E402,F401

RestoreFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------
# Samples: what to restore, with optional ground truth
# --------------------------------------------------------------------------------------


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


def check_output_writable(output_dir: str, output_file: Optional[str] = None) -> None:
    """Refuse, in one line naming the user's path, an output location that cannot be written
    (read-only mount, a file in the way, no permission): checked before the model loads."""
    folder = os.path.dirname(os.path.abspath(output_file)) if output_file else output_dir
    problem = writable_folder_problem(folder)
    if problem:
        raise EvaluationError(f"{output_file or output_dir}: output location cannot be written ({problem})")


def check_output_safe(output_dir: str, samples: Sequence[Sample], output_file: Optional[str] = None) -> None:
    """Refuse outputs that would overwrite an input or ground-truth file, or cannot be written."""
    check_output_writable(output_dir, output_file)
    sources = {os.path.realpath(s) for smp in samples for s in smp.sources}
    source_dirs = {os.path.dirname(s) for s in sources}
    if output_file:
        planned = [os.path.realpath(output_file)]
    else:
        out = os.path.realpath(output_dir)
        if out in source_dirs:
            raise EvaluationError(f"{output_dir}: output folder is an input folder; choose another --output")
        planned = [os.path.join(out, f"{s.name}.png") for s in samples]
    for p in planned:
        if p in sources:
            raise EvaluationError(f"{p}: output would overwrite an input file; choose another --output")


# --------------------------------------------------------------------------------------
# Metrics per image
# --------------------------------------------------------------------------------------


def metric_keys(conventions: Sequence[str]) -> List[str]:
    """Column names: ``psnr``/``ssim`` (restored) and ``psnr_in``/``ssim_in`` (degraded input),
    suffixed with the convention when more than one is computed."""
    keys = []
    for conv in conventions:
        sfx = f"_{conv}" if len(conventions) > 1 else ""
        keys += [f"psnr_in{sfx}", f"ssim_in{sfx}", f"psnr{sfx}", f"ssim{sfx}"]
    return keys + ["offset"]


def colour_offset(restored: np.ndarray, clean: np.ndarray) -> float:
    """Largest per-channel mean offset of ``restored`` from ``clean``, in 8-bit grey levels (signed: the
    channel furthest from zero).  A colour cast or a global darkening shows here even when PSNR rises."""
    diff = (np.asarray(restored, np.float64) - np.asarray(clean, np.float64)).reshape(-1, clean.shape[-1])
    per_channel = diff.mean(axis=0) * 255.0
    return float(per_channel[np.argmax(np.abs(per_channel))])


def compute_metrics(restored: np.ndarray, degraded: np.ndarray, clean: np.ndarray, conventions: Sequence[str],
                    crop_border: int = 0, y_channel: bool = False) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for conv in conventions:
        sfx = f"_{conv}" if len(conventions) > 1 else ""
        kw = dict(crop_border=crop_border, test_y_channel=y_channel, convention=conv)
        out[f"psnr_in{sfx}"] = calculate_psnr(degraded, clean, **kw)
        out[f"ssim_in{sfx}"] = calculate_ssim(degraded, clean, **kw)
        out[f"psnr{sfx}"] = calculate_psnr(restored, clean, **kw)
        out[f"ssim{sfx}"] = calculate_ssim(restored, clean, **kw)
    out["offset"] = colour_offset(restored, clean)
    return out


def resolve_conventions(value: str) -> Tuple[str, ...]:
    if value == "both":
        return tuple(CONVENTIONS)
    if value not in CONVENTIONS:
        raise EvaluationError(f"unknown metric convention '{value}': choose aio, basicsr or both")
    return (value,)


@dataclass
class EvalResult:
    records: List[Dict[str, object]] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    metric_columns: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # one line each: e.g. small images reflect-padded

    def averages(self, by: str = "") -> List[Dict[str, object]]:
        """Mean of every metric column, overall (``by=''``) or per value of column ``by``."""
        return average_records(self.records, self.metric_columns, by)


def average_records(records: Sequence[Dict[str, object]], columns: Sequence[str],
                    by: str = "") -> List[Dict[str, object]]:
    """Mean of ``columns`` over all records (``by=''``, key ``set``) or per value of column ``by``,
    with its 95% bootstrap interval over images (``<column>_lo`` / ``<column>_hi``).

    Records of one photograph under several degradation seeds (``photo`` and ``seed`` keys, as
    :func:`photo_samples` makes them) are averaged per photograph first: seeds are a factor, not
    extra images (:mod:`ms_osr.statistics`)."""
    from .statistics import summarise

    groups: Dict[str, List[Dict[str, object]]] = {}
    for r in records:
        groups.setdefault(str(r.get(by, "")) if by else "all", []).append(r)
    rows = []
    for key, items in groups.items():
        scored = [r for r in items if any(c in r for c in columns)]  # images without ground truth do not count
        unit = "photo" if scored and all("photo" in r for r in scored) else "image"
        factor = "seed" if unit == "photo" and all("seed" in r for r in scored) else None
        row: Dict[str, object] = {by or "set": key, "images": len({str(r[unit]) for r in scored}) if columns
                                  else len(items)}
        for c in columns:
            if not any(r.get(c) is not None for r in scored):
                row[c] = row[f"{c}_lo"] = row[f"{c}_hi"] = None
                continue
            est = summarise(scored, c, unit=unit, factor=factor)
            row[c], row[f"{c}_lo"], row[f"{c}_hi"] = est["mean"], est["ci_low"], est["ci_high"]
        rows.append(row)
    return rows


def interval_columns(columns: Sequence[str]) -> List[str]:
    """``[c, c_lo, c_hi, ...]`` for the average tables."""
    return [k for c in columns for k in (c, f"{c}_lo", f"{c}_hi")]


def _unit_values(records: Sequence[Dict[str, object]], column: str) -> Tuple[List[str], np.ndarray]:
    """Per-photograph values of ``column`` (seeds averaged) or per-record values when there are no seeds."""
    from .statistics import cap_psnr, per_unit_means

    scored = [r for r in records if r.get(column) is not None]
    if scored and all("photo" in r and "seed" in r for r in scored):
        units, vals, _ = per_unit_means(scored, column, "photo", "seed")
    else:
        units, vals = [str(r["image"]) for r in scored], np.array([float(r[column]) for r in scored])  # type: ignore
    return units, (cap_psnr(vals) if "psnr" in column else vals)


def paired_rows(a: Sequence[Dict[str, object]], b: Sequence[Dict[str, object]], columns: Sequence[str],
                by: str = "", labels: Tuple[str, str] = ("A", "B")) -> List[Dict[str, object]]:
    """Paired differences ``B - A`` of ``columns`` over records of the same samples (matched by
    ``image``), overall and per value of ``by``: mean, 95% paired-bootstrap interval, and how many
    photographs B won and lost (seeds averaged per photograph first, like :func:`average_records`)."""
    from .statistics import paired_difference

    by_name = {str(r["image"]): r for r in a}
    common = [r for r in b if str(r["image"]) in by_name]
    if not common:
        raise EvaluationError("no sample was scored by both models")
    groups: Dict[str, List[str]] = {"all": [str(r["image"]) for r in common]}
    if by:
        for r in common:
            groups.setdefault(str(r.get(by, "")), []).append(str(r["image"]))
    b_by_name = {str(r["image"]): r for r in common}
    rows = []
    for key, names in groups.items():
        row: Dict[str, object] = {by or "set": key}
        for c in columns:
            ua, va = _unit_values([by_name[n] for n in names], c)
            ub, vb = _unit_values([b_by_name[n] for n in names], c)
            if not ua or ua != ub:
                continue
            pd = paired_difference(vb, va)
            row["images"] = len(ua)
            row.update({f"{c}_{labels[0]}": float(va.mean()), f"{c}_{labels[1]}": float(vb.mean()),
                        f"d{c}": pd.diff.mean, f"d{c}_lo": pd.diff.low, f"d{c}_hi": pd.diff.high,
                        f"{c}_won": pd.wins, f"{c}_lost": pd.losses})
        rows.append(row)
    return rows


def evaluate_samples(restore_fn: RestoreFn, samples: Sequence[Sample], output_dir: Optional[str] = None,
                     conventions: Sequence[str] = ("aio",), crop_border: int = 0, y_channel: bool = False,
                     output_file: Optional[str] = None, on_record: Optional[Callable[[Dict[str, object]], None]] = None,
                     keep_images: bool = False) -> EvalResult:
    """Restore every sample, save the result, and compute metrics where ground truth exists.

    A sample that fails to load, is too small for the model or cannot be written is recorded
    in ``errors`` (one line naming the file) and the run continues; an input whose ground
    truth cannot be used is restored and listed without metrics.  Grayscale inputs are
    written back as grayscale and 16-bit inputs as 16-bit (:func:`ms_osr.data.io.to_format`);
    metrics are computed on what is written.  With ``keep_images`` the degraded/restored/clean
    arrays are kept in each record under ``"_images"`` (for comparison grids).
    """
    res = EvalResult(metric_columns=metric_keys(conventions))
    unit = model_unit(restore_fn)
    for smp in samples:
        label = smp.sources[0] if smp.sources else smp.name
        try:
            degraded, clean = smp.load()
        except (ImageReadError, EvaluationError, SizeMismatchError) as exc:
            res.errors.append(str(exc).splitlines()[0])
            continue
        refusal, note = size_verdict(degraded.shape[0], degraded.shape[1], unit)
        if refusal:
            res.errors.append(f"{label}: {refusal}")
            continue
        if note:
            res.notes.append(f"{label}: {note}")
        gt_problem = getattr(smp.load, "gt_problem", None)
        if gt_problem:
            res.errors.append(f"{label}: {gt_problem}; restored without metrics")
        fmt = getattr(smp.load, "format", None) or ImageFormat()
        t0 = time.perf_counter()
        restored = to_format(restore_fn(degraded), fmt)
        elapsed = time.perf_counter() - t0
        rec: Dict[str, object] = {"image": smp.name}
        if smp.group:
            rec["group"] = smp.group
        rec.update(smp.meta)
        rec["height"], rec["width"] = int(degraded.shape[0]), int(degraded.shape[1])
        rec["time_s"] = elapsed
        if clean is not None:
            scored = restored if restored.ndim == 3 else np.repeat(restored[:, :, None], 3, axis=2)
            rec.update(compute_metrics(scored, degraded, clean, conventions, crop_border, y_channel))
        dst = output_file or (os.path.join(output_dir, f"{smp.name}.png") if output_dir else None)
        if dst and _write_output(dst, restored, fmt, res):
            rec["output"] = dst
        if keep_images:
            rec["_images"] = (degraded, restored, clean)
        res.records.append(rec)
        if on_record:
            on_record(rec)
    return res


def _write_output(dst: str, img: np.ndarray, fmt: ImageFormat, res: EvalResult) -> bool:
    """Write one result; a failure (full disk, folder gone) becomes one error line naming ``dst``."""
    depth = fmt.bit_depth
    if depth == 16 and os.path.splitext(dst)[1].lower() not in (".png", ".tif", ".tiff"):
        res.notes.append(f"{dst}: 16-bit input written as 8-bit ({os.path.splitext(dst)[1]} holds 8 bits; "
                         f"use .png or .tif to keep 16)")
        depth = 8
    try:
        write_image(dst, img, bit_depth=depth)
    except OSError as exc:  # the temporary file is already gone: nothing half-written
        res.errors.append(f"{dst}: not written ({exc.strerror or exc})")
        return False
    except ValueError as exc:
        res.errors.append(str(exc).splitlines()[0])
        return False
    return True


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

    from .data import datasets as dsets

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
            from .eval_sets import source_samples

            for sigma in sigmas:
                samples += source_samples(bsd68_source(root, sigma=float(sigma), seed=seed), crop_multiple)
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                src = dsets.test_set_source(BENCHMARKS[name], root, skip_bad=True, split=split)
            errors += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
            for i, (lq_path, gt_path) in enumerate(src.pairs):
                def load(src=src, i=i):
                    lq, gt, _ = src.load(i, rng=None)
                    return crop(lq, gt)

                # name by the folder that holds the input/target pair (GoPro: the sequence)
                rel = os.path.relpath(os.path.dirname(os.path.dirname(lq_path)), root)
                stem = _stem(lq_path) if rel in (".", "") else f"{rel.replace(os.sep, '_')}_{_stem(lq_path)}"
                samples.append(Sample(stem, load, (lq_path, gt_path)))
    except dsets.DatasetError as exc:
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
                  split: str = "test", limit: int = 0) -> List[Sample]:
    """The photo corpus' ``split`` degraded by each name in ``degradations`` under each seed.

    The degraded input depends only on (photograph, degradation, seed), so every model sees the
    same inputs.  Degradations with a random sampler (rain, haze, ``gaussian_noise``) draw their
    parameters from that generator too: each photograph gets its own kind of rain or haze, as a
    user's photos would.  Records carry ``photo`` and ``seed`` (seeds are averaged per photograph)."""
    from .data.corpus import CorpusError, split_paths
    from .data.degradations import apply_spec, get_degradation
    from .data.io import read_image

    try:
        paths = split_paths(root, split)[:limit or None]
        for d in degradations:
            get_degradation(d)
    except (CorpusError, KeyError) as exc:
        raise EvaluationError(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
    out = []
    for deg in degradations:
        spec = {"name": deg, "random": get_degradation(deg).sample is not None}
        for path in paths:
            photo = _stem(path)
            for seed in seeds:
                def load(path=path, deg=deg, photo=photo, seed=seed, spec=spec):
                    clean = read_image(path)
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
# OSR protocol: restorer vs reprogrammed restorer on every degradation of the library
# --------------------------------------------------------------------------------------


def library_degradations() -> List[str]:
    """Every registered degradation, without aliases that apply the same function with the same
    defaults (``gaussian_noise`` = ``noise_25``, ``bicubic`` = ``bicubic_x2``: the specific name is kept)."""
    from .data.degradations import get_degradation, list_degradations

    keep: Dict[tuple, str] = {}
    for name in list_degradations():  # sorted: the later, more specific name wins
        d = get_degradation(name)
        keep[(d.fn, tuple(sorted((k, repr(v)) for k, v in d.defaults.items())))] = name
    chosen = set(keep.values())
    return [n for n in list_degradations() if n in chosen]


@dataclass
class ProtocolResult:
    long_rows: List[Dict[str, object]]      # one row per (model, degradation)
    table_rows: List[Dict[str, object]]     # one row per model, one column per degradation + averages
    table_columns: List[str]
    markdown: str
    paired_rows: List[Dict[str, object]] = field(default_factory=list)  # each model vs the reference and the input


def osr_protocol(models: Dict[str, RestoreFn], images: Dict[str, np.ndarray], known: Iterable[str] = (),
                 degradations: Optional[Sequence[str]] = None, seed: int = 0, convention: str = "aio",
                 crop_border: int = 0, y_channel: bool = False, output_dir: Optional[str] = None,
                 degrade_fn: Optional[Callable] = None, metric: str = "psnr") -> ProtocolResult:
    """Evaluate each model on every degradation of the library, marking known vs out-of-sample.

    Args:
        models: ``{label: restore_fn}``, e.g. ``{"restorer": Restorer(base), "OSR": Restorer(osr)}``.
        images: clean held-out images ``{name: HxWx3 float32}``.
        known: degradations the restorer/reprogramming were trained on; the others are
            out-of-sample (OOS).
        degradations: names to evaluate (default: every registered degradation).
        output_dir: when given, writes ``osr_protocol.md``, ``osr_protocol.csv`` (wide
            table) and ``osr_protocol_long.csv`` (every model x degradation with PSNR and SSIM).

    The "degraded" row scores the unrestored inputs.  Columns ``known`` / ``OOS`` are the
    means over the known and out-of-sample degradations.
    """
    if degradations is None:
        degradations = library_degradations()
    known = set(known)
    unknown = known - set(degradations)
    if unknown:
        raise EvaluationError(f"known degradations not in the evaluated set: {sorted(unknown)}")
    samples = synthetic_samples(images, degradations, seed=seed, degrade_fn=degrade_fn)
    kw = dict(crop_border=crop_border, test_y_channel=y_channel, convention=convention)
    # Degrade once, reuse for every model.
    scores: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    for smp in samples:
        degraded, clean = smp.load()
        scores.setdefault(("degraded", smp.group), []).append(
            (calculate_psnr(degraded, clean, **kw), calculate_ssim(degraded, clean, **kw)))
        for label, fn in models.items():
            restored = fn(degraded)
            scores.setdefault((label, smp.group), []).append(
                (calculate_psnr(restored, clean, **kw), calculate_ssim(restored, clean, **kw)))
    labels = ["degraded"] + list(models)
    long_rows = []
    for label in labels:
        for deg in degradations:
            vals = np.array(scores[(label, deg)], np.float64)
            ci = mean_ci(cap_psnr(vals[:, 0]))
            long_rows.append({"model": label, "degradation": deg, "split": "known" if deg in known else "OOS",
                              "psnr": float(vals[:, 0].mean()), "psnr_lo": ci.low, "psnr_hi": ci.high,
                              "ssim": float(vals[:, 1].mean()), "images": len(vals)})
    def col(deg):
        return f"{deg} ({'known' if deg in known else 'OOS'})"

    columns = ["model"] + [col(d) for d in degradations] + ["known", "OOS"]

    def wide(key):
        out = []
        for label in labels:
            row: Dict[str, object] = {"model": label}
            by = {r["degradation"]: r for r in long_rows if r["model"] == label}
            for d in degradations:
                row[col(d)] = by[d][key]
            kv = [by[d][key] for d in degradations if d in known]
            ov = [by[d][key] for d in degradations if d not in known]
            row["known"] = float(np.mean(kv)) if kv else None
            row["OOS"] = float(np.mean(ov)) if ov else None
            out.append(row)
        return out

    table_rows = wide(metric)
    other = "ssim" if metric == "psnr" else "psnr"
    paired = _protocol_pairs(scores, list(models), degradations, known, metric)
    pair_cols = ["model", "vs", "images"] + [f"{part}_{k}" for part in ("known", "OOS")
                                             for k in ("diff", "lo", "hi", "won", "lost")]
    md = (f"OSR protocol ({convention} convention, {len(images)} held-out images, seed {seed}); "
          f"known = trained degradations, OOS = out-of-sample\n\n"
          f"{metric.upper()}\n\n" + markdown_table(table_rows, columns, digits=4 if metric == "ssim" else 2)
          + f"\n{other.upper()}\n\n" + markdown_table(wide(other), columns, digits=4 if other == "ssim" else 2)
          + f"\nPaired differences of {metric.upper()} per image (model minus 'vs'; the known / OOS value of an image "
            f"is its mean over those degradations), 95% paired-bootstrap CI over images, images won / lost\n\n"
          + markdown_table(paired, pair_cols, digits=4 if metric == "ssim" else 2))
    if output_dir:
        atomic_write_text(os.path.join(output_dir, "osr_protocol.md"), md)
        write_csv(os.path.join(output_dir, "osr_protocol.csv"), table_rows, columns)
        write_csv(os.path.join(output_dir, "osr_protocol_long.csv"), long_rows,
                  ["model", "degradation", "split", "psnr", "psnr_lo", "psnr_hi", "ssim", "images"])
        names = list(images)
        write_csv(os.path.join(output_dir, "osr_protocol_images.csv"),
                  [{"model": lbl, "degradation": d, "image": names[i], "psnr": v[0], "ssim": v[1]}
                   for (lbl, d), vals in scores.items() for i, v in enumerate(vals)],
                  ["model", "degradation", "image", "psnr", "ssim"])
        write_csv(os.path.join(output_dir, "osr_protocol_paired.csv"), paired, pair_cols)
    return ProtocolResult(long_rows, table_rows, columns, md, paired)


def _protocol_pairs(scores: Dict[Tuple[str, str], List[Tuple[float, float]]], models: Sequence[str],
                    degradations: Sequence[str], known: set, metric: str) -> List[Dict[str, object]]:
    """Each model against the first model (the reference restorer) and against the degraded input, per image
    on the known mean and the out-of-sample mean, with paired-bootstrap CIs."""
    k = 0 if metric == "psnr" else 1

    def per_image(label: str, part: set) -> Optional[np.ndarray]:
        cols = [np.array([v[k] for v in scores[(label, d)]], np.float64) for d in degradations if d in part]
        return np.mean([cap_psnr(c) if k == 0 else c for c in cols], axis=0) if cols else None

    parts = {"known": set(known), "OOS": set(degradations) - set(known)}
    rows = []
    for label in models:
        for ref in ([models[0]] if label != models[0] else []) + ["degraded"]:
            row: Dict[str, object] = {"model": label, "vs": ref}
            for name, part in parts.items():
                a, b = per_image(label, part), per_image(ref, part)
                if a is None:
                    continue
                pd = paired_difference(a, b)
                row["images"] = len(a)
                row.update({f"{name}_diff": pd.diff.mean, f"{name}_lo": pd.diff.low, f"{name}_hi": pd.diff.high,
                            f"{name}_won": pd.wins, f"{name}_lost": pd.losses})
            rows.append(row)
    return rows
