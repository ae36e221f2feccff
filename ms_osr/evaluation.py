"""Evaluation: image/folder/benchmark runs, metric tables, comparison grids, the OSR protocol.

Everything here works on plain callables ``restore(img) -> img`` (HxWx3 float32 in [0, 1]):
:class:`ms_osr.inference.Restorer` for ``test.py``, the network itself for ``train.py``'s validation
(:mod:`ms_osr.training.evaluate`), so :func:`evaluate_samples` is the one path that scores both.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .data.io import ImageFormat, ImageReadError, to_format, write_image
from .data.transforms import SizeMismatchError
from .fileio import atomic_write_text, writable_folder_problem
from .input_size import model_unit, size_verdict
from .metrics import CONVENTIONS, calculate_psnr, calculate_ssim
from .statistics import cap_psnr, mean_ci, paired_difference
from .errors import EvaluationError  # noqa: E402,F401  (re-exported)
from .samples import (BENCHMARKS, PHOTO_DEGRADATIONS, FilePair, Sample, benchmark_samples,  # noqa: E402,F401
                      clean_name_candidates, collect_samples, photo_samples, sample_rng,  # (re-exported)
                      synthetic_samples)
from .tables import comparison_grid, format_table, markdown_table, write_csv, write_json  # noqa: E402,F401
# (sample sources and tables moved out; their names stay importable from here)

RestoreFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------
# Outputs: where results go (samples come from ms_osr.samples)
# --------------------------------------------------------------------------------------


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
        unit, factor = _unit_and_factor(scored)
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
    unit, factor = _unit_and_factor(scored)
    units, vals, _ = per_unit_means(scored, column, unit, factor or "seed")
    return units, (cap_psnr(vals) if "psnr" in column else vals)


def _unit_and_factor(records: Sequence[Dict[str, object]]) -> Tuple[str, Optional[str]]:
    """The statistical unit of ``records`` and the factor averaged within it: ``("photo", "seed")`` for the
    photo benchmark (one photograph under several degradation seeds), else ``("image", None)``."""
    unit = "photo" if records and all("photo" in r for r in records) else "image"
    return unit, ("seed" if unit == "photo" and all("seed" in r for r in records) else None)


def read_metrics_records(path: str, needed: Iterable[str] = ("group", "psnr_in", "psnr", "offset")
                         ) -> List[Dict[str, object]]:
    """The per-image records of a test.py ``metrics.json``, each holding ``needed`` (one line of error naming
    the file otherwise)."""
    import json

    try:
        with open(path) as f:
            records = json.load(f)["images"]
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError):
        raise EvaluationError(f"{path}: not a test.py metrics.json (no 'images' list)") from None
    needed = set(needed)
    if not records or not all(isinstance(r, dict) and needed <= set(r) for r in records):
        raise EvaluationError(f"{path}: its images need {', '.join(sorted(needed))} "
                              "(run test.py with ground truth, aio convention)")
    return records


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


def paired_columns(columns: Sequence[str], by: str = "") -> List[str]:
    """The columns of a :func:`paired_rows` table, in print order."""
    return [by or "set", "images"] + [k for c in columns for k in
                                      (f"{c}_A", f"{c}_B", f"d{c}", f"d{c}_lo", f"d{c}_hi", f"{c}_won", f"{c}_lost")]


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
    chosen = set(keep.values()) - {"identity"}  # not a degradation
    return [n for n in list_degradations() if n in chosen]


@dataclass
class ProtocolResult:
    long_rows: List[Dict[str, object]]      # one row per (model, degradation)
    table_rows: List[Dict[str, object]]     # one row per model, one column per degradation + averages
    table_columns: List[str]
    markdown: str
    paired_rows: List[Dict[str, object]] = field(default_factory=list)  # each model vs the reference and the input
    # (model, degradation) -> per-image (PSNR, SSIM), rows in the order of the ``images`` given
    image_scores: Dict[Tuple[str, str], np.ndarray] = field(default_factory=dict)


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
    return ProtocolResult(long_rows, table_rows, columns, md, paired,
                          {key: np.array(vals, np.float64) for key, vals in scores.items()})


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
