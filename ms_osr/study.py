"""Resumable multi-run studies (tools/osr_study.py, tools/hair_study.py, tools/ptg_rm_study.py): a plan of
training runs, trained where missing, and per-image scores pooled over seeds.

A run is ``(name, seed, out_dir, steps, argv)`` with ``argv`` the arguments of ``train.py``.  A run is
finished when its ``train_log.csv`` reached ``steps`` and ``last.ckpt`` exists; an unfinished run with a
``last.ckpt`` is resumed exactly (``--resume``), so a study can be stopped and restarted at any point.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np


def add_study_arguments(parser, name: str, size: int) -> None:
    """The options every study script shares: seeds, run and table folders, test crop, parallel runs."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", default=f"runs/{name}", help="run folders (outside git)")
    parser.add_argument("--out", default=f"results/{name}", help="tables")
    parser.add_argument("--size", type=int, default=size, help="centre crop of the test photos")
    parser.add_argument("--images", type=int, default=0, help="evaluate the first N test photos only (0: all)")
    parser.add_argument("--jobs", type=int, default=1, help="training runs at once")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads per training run and for the evaluation (0: the config's / all cores)")
    parser.add_argument("--only", choices=["train", "eval"], default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the training commands, run nothing")


class Run(NamedTuple):
    name: str
    seed: int
    out_dir: str
    steps: int
    argv: List[str]


def set_eval_threads(threads: int) -> None:
    """The evaluation in this process uses ``threads`` CPU threads (0: MindSpore's default, every core), so that
    it can run beside training jobs without oversubscribing the cores."""
    if threads:
        from .runtime import setup_runtime

        setup_runtime(threads=threads)


def train_argv(config: str, steps: int, out_dir: str, seed: int, extra: Sequence[str] = (),
               threads: int = 0) -> List[str]:
    """``train.py`` arguments of one run: ``config`` with its total steps, output folder and seed set."""
    more = [f"runtime.threads={threads}"] if threads else []
    return ["-c", config, "--set", f"train.total_steps={steps}", f"out_dir={out_dir}", f"runtime.seed={seed}",
            *extra, *more]


def finished(out_dir: str, steps: int) -> bool:
    """True when ``out_dir``'s training log reached ``steps``."""
    log = os.path.join(out_dir, "train_log.csv")
    if not os.path.isfile(os.path.join(out_dir, "last.ckpt")) or not os.path.isfile(log):
        return False
    with open(log, encoding="utf-8") as fh:
        rows = [ln.split(",", 1)[0] for ln in fh.read().splitlines()[1:] if ln]
    return bool(rows) and int(rows[-1]) >= steps


def train_command(root: str, run: Run) -> List[str]:
    cmd = [sys.executable, os.path.join(root, "train.py"), "--no-progress"] + run.argv
    if os.path.isfile(os.path.join(run.out_dir, "last.ckpt")):
        cmd.append("--resume")
    return cmd


def _train(root: str, run: Run) -> None:
    os.makedirs(run.out_dir, exist_ok=True)
    with open(run.out_dir + ".log", "a", encoding="utf-8") as log:  # beside the run folder
        subprocess.run(train_command(root, run), cwd=root, check=True, stdout=log, stderr=subprocess.STDOUT)
    print(f"trained: {run.name} seed {run.seed}", flush=True)


def train_missing(root: str, runs: Sequence[Run], dry: bool = False, jobs: int = 1) -> None:
    """Train every unfinished run of ``runs`` (one phase: they must not depend on each other), ``jobs`` at a
    time; print each command (only print with ``dry``).  A failed run raises after the others finished."""
    todo = []
    for run in runs:
        if finished(run.out_dir, run.steps):
            print(f"done: {run.name} seed {run.seed} ({run.out_dir})")
            continue
        print(" ".join(train_command(root, run)), flush=True)
        todo.append(run)
    if dry or not todo:
        return
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for future in [pool.submit(_train, root, run) for run in todo]:
            future.result()


def corpus_test_crops(root: str, size: int, max_images: int = 0) -> Dict[str, np.ndarray]:
    """``{photo name: centre size x size crop}`` of the corpus' test photos under ``root`` (the first
    ``max_images`` when not 0), in manifest order: the images every study evaluates on."""
    from .data.corpus import split_paths
    from .data.io import read_image
    from .data.transforms import center_crop

    paths = split_paths(root, "test")[:max_images or None]
    return {os.path.splitext(os.path.basename(p))[0]: center_crop(read_image(p), size) for p in paths}


def load_scores(path: str, images: Sequence[str]):
    """Per-image scores ``{(model, degradation): (images, 2) array}`` cached by :func:`save_scores`, or None
    when there is no cache or it holds other photos."""
    if not os.path.isfile(path):
        return None
    with np.load(path) as data:
        if list(data["__images__"]) != list(images):
            return None
        return {tuple(k.split("|")): data[k] for k in data.files if k != "__images__"}


def save_scores(path: str, images: Sequence[str], scores: Dict) -> None:
    from .fileio import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, __images__=np.array(list(images)), **{"|".join(k): v for k, v in scores.items()})


def write_report(out: str, name: str, markdown: str, data: Optional[Dict] = None) -> str:
    """Write a study's ``<name>.md`` (and ``<name>.json`` from ``data``) into ``out`` atomically, print the
    markdown and return it."""
    import json

    from .fileio import atomic_write_text

    os.makedirs(out, exist_ok=True)
    atomic_write_text(os.path.join(out, f"{name}.md"), markdown)
    if data is not None:
        atomic_write_text(os.path.join(out, f"{name}.json"), json.dumps(data, indent=1))
    print(markdown)
    return markdown


def mean_psnr(scores: Dict, model: str, degradations: Sequence[str]) -> np.ndarray:
    """Per-image PSNR of ``model`` averaged over ``degradations`` (capped as in every table of the toolkit)."""
    from .statistics import cap_psnr

    return np.mean([cap_psnr(scores[(model, d)][:, 0]) for d in degradations], axis=0)


def pool_seeds(seed_scores: Sequence[Dict], columns: Dict[str, Sequence[str]]) -> Dict[str, Dict[str, np.ndarray]]:
    """``{model: {column: per-photo PSNR}}`` from per-seed scores (:func:`load_scores` layout), a column being
    the mean over its degradations; seeds are averaged per photo, so they act as a factor and the photos stay
    the units of every interval."""
    per: Dict[str, Dict[str, list]] = {}
    for scores in seed_scores:
        for model in dict.fromkeys(m for m, _ in scores):  # first-seen order: "degraded" first
            for col, degradations in columns.items():
                per.setdefault(model, {}).setdefault(col, []).append(mean_psnr(scores, model, degradations))
    return {m: {c: np.mean(v, axis=0) for c, v in by.items()} for m, by in per.items()}


def ci_rows(pooled: Dict[str, Dict[str, np.ndarray]], columns: Sequence[str]) -> List[Dict[str, str]]:
    """One table row per model: the mean of every column with its 95% bootstrap CI over photos."""
    from .statistics import mean_ci

    return [dict(model=m, **{c: mean_ci(by[c]).text() for c in columns}) for m, by in pooled.items()]


def pair_rows(pooled: Dict[str, Dict[str, np.ndarray]], pairs: Sequence[Tuple[str, str]],
              columns: Sequence[str]) -> List[Dict[str, str]]:
    """One row per ``(a, b)`` of ``pairs`` present in ``pooled``: ``a - b`` per photo with its paired-bootstrap
    CI and photos won/lost."""
    from .statistics import paired_difference

    return [dict(model=f"{a} - {b}", **{c: paired_difference(pooled[a][c], pooled[b][c]).text() for c in columns})
            for a, b in pairs if a in pooled and b in pooled]
