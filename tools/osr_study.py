#!/usr/bin/env python
"""The OSR study (docs/osr.md §7): does reprogramming carry rain-trained restorers to unseen degradations?

    python tools/osr_study.py --seeds 0 1 2                    # train what is missing, then evaluate
    python tools/osr_study.py --seeds 0 --only train           # resumable: rerun after an interruption
    python tools/osr_study.py --seeds 0 1 2 --only eval        # tables from the finished runs
    python tools/osr_study.py --dry-run                        # print the commands

Per seed, all on the photo corpus, rain the only known degradation, every schedule complete:

* ``restorer``  stage 1: the plain restorer, S1 steps (configs/osr_restorer_rain_photos.yaml);
* ``plain``     the plain restorer trained S1 + S2 steps in one schedule (the fair baseline);
* ``wave`` / ``fourier`` / ``channels``  the stage-1 restorer FROZEN inside the wrapper, one run per reading
  of the wave function (docs/osr.md §2, §6, §7), S2 more steps (configs/osr_small_rain_photos.yaml);
* ``random``    a RANDOM frozen restorer reprogrammed (wave reading) for S1 + S2 steps (the paper's
  randomly-initialised variant).

``--jobs 2`` trains two runs at once with one thread each (on 2 cores that is about 20% more throughput
than one run with two threads); the stage-1 runs go first, the wrappers after their restorer exists.

Evaluation: every model, and each wrapper with its phase path, amplitude path or output fusion switched
off (same weights), on the test photos (centre crops of ``--size`` px) under every library degradation,
with the degraded inputs fixed by (photo, degradation, seed).  Seeds are averaged per photo; the tables
give the known (rain) and out-of-sample means with 95% bootstrap CIs, the paired difference of each
model against ``plain`` and against the degraded input, and the paired effect of each ablation.  Runs
live under ``--runs`` (outside git).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

STAGE1 = "configs/osr_restorer_rain_photos.yaml"
STAGE2 = "configs/osr_small_rain_photos.yaml"
READINGS = ("wave", "fourier", "channels")
WRAPPERS = READINGS + ("random",)
ABLATIONS = {"phase off": "use_phase", "amplitude off": "use_amplitude", "fusion off": "use_fusion"}


def runs_of(seed: int, runs: str, s1: int, s2: int, threads: int = 0) -> Dict[str, Tuple[str, int, List[str]]]:
    """``{run name: (out_dir, steps, train.py arguments)}`` for one seed, in dependency order."""
    def out(name):
        return os.path.join(runs, f"{name}_s{seed}")

    ckpt = os.path.join(out("restorer"), "last.ckpt")
    plan = {"restorer": (STAGE1, s1, []), "plain": (STAGE1, s1 + s2, [])}
    for reading in READINGS:
        plan[reading] = (STAGE2, s2, [f"model.kwargs.restorer_ckpt={ckpt}", f"model.kwargs.transform={reading}"])
    plan["random"] = (STAGE2, s1 + s2, ["model.kwargs.restorer_ckpt=null", "model.kwargs.transform=wave"])
    extra = [f"runtime.threads={threads}"] if threads else []
    return {name: (out(name), steps, ["-c", config, "--set", f"train.total_steps={steps}", f"out_dir={out(name)}",
                                      f"runtime.seed={seed}"] + more + extra)
            for name, (config, steps, more) in plan.items()}


def finished(out_dir: str, steps: int) -> bool:
    """True when ``out_dir``'s training log reached ``steps``."""
    log = os.path.join(out_dir, "train_log.csv")
    if not os.path.isfile(os.path.join(out_dir, "last.ckpt")) or not os.path.isfile(log):
        return False
    with open(log, encoding="utf-8") as fh:
        rows = [ln.split(",", 1)[0] for ln in fh.read().splitlines()[1:] if ln]
    return bool(rows) and int(rows[-1]) >= steps


def _command(out_dir: str, argv: List[str]) -> List[str]:
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--no-progress"] + argv
    if os.path.isfile(os.path.join(out_dir, "last.ckpt")):
        cmd.append("--resume")
    return cmd


def _run(name: str, seed: int, out_dir: str, argv: List[str]) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(out_dir + ".log", "a", encoding="utf-8") as log:  # beside the run folder
        subprocess.run(_command(out_dir, argv), cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
    print(f"trained: {name} seed {seed}", flush=True)


def train(seeds, runs: str, s1: int, s2: int, dry: bool, jobs: int = 1, threads: int = 0) -> None:
    """Train what is missing: the stage-1 runs of every seed first, then the wrappers, ``jobs`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    for phase in (("restorer", "plain"), WRAPPERS):
        todo = []
        for seed in seeds:
            for name, (out_dir, steps, argv) in runs_of(seed, runs, s1, s2, threads).items():
                if name not in phase:
                    continue
                if finished(out_dir, steps):
                    print(f"done: {name} seed {seed} ({out_dir})")
                    continue
                print(" ".join(_command(out_dir, argv)), flush=True)
                todo.append((name, seed, out_dir, argv))
        if dry or not todo:
            continue
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            for future in [pool.submit(_run, *job) for job in todo]:
                future.result()


def _per_image(scores, model: str, degradations) -> np.ndarray:
    """Per-image PSNR averaged over ``degradations`` (capped as in every table of the toolkit)."""
    from ms_osr.statistics import cap_psnr

    return np.mean([cap_psnr(scores[(model, d)][:, 0]) for d in degradations], axis=0)


def _seed_scores(seed: int, runs: str, images: Dict[str, np.ndarray], degs: List[str], known: List[str],
                 out: str) -> Dict[Tuple[str, str], np.ndarray]:
    """Per-image (PSNR, SSIM) of every model of one seed under every degradation; cached in
    ``out/image_scores.npz`` (keyed by the photos evaluated), so evaluation resumes seed by seed."""
    from ms_osr.evaluation import osr_protocol
    from ms_osr.fileio import atomic_path
    from ms_osr.inference import Restorer, load_model

    cache = os.path.join(out, "image_scores.npz")
    if os.path.isfile(cache):
        with np.load(cache) as data:
            if list(data["__images__"]) == list(images):
                return {tuple(k.split("|")): data[k] for k in data.files if k != "__images__"}
    models = {}
    for name in ("plain", "restorer") + WRAPPERS:
        path = os.path.join(runs, f"{name}_s{seed}", "last.ckpt")
        config = os.path.join(runs, f"{name}_s{seed}", "config.yaml")
        models[name] = Restorer(load_model(path, config=config).net)
        if name in WRAPPERS:
            for label, switch in ABLATIONS.items():
                net = load_model(path, config=config, overrides={switch: False}).net
                models[f"{name} ({label})"] = Restorer(net)
    scores = osr_protocol(models, images, known=known, degradations=degs, seed=seed, output_dir=out).image_scores
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, __images__=np.array(list(images)), **{"|".join(k): v for k, v in scores.items()})
    return scores


def evaluate(seeds, runs: str, size: int, out: str, max_images: int = 0) -> str:
    import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
    from ms_osr.data.corpus import DEFAULT_ROOT, split_paths
    from ms_osr.data.io import read_image
    from ms_osr.data.transforms import center_crop
    from ms_osr.evaluation import library_degradations, markdown_table
    from ms_osr.statistics import mean_ci, paired_difference

    paths = split_paths(os.path.join(ROOT, DEFAULT_ROOT), "test")[:max_images or None]
    images = {os.path.splitext(os.path.basename(p))[0]: center_crop(read_image(p), size) for p in paths}
    degs = library_degradations()
    parts = {"known": ["rain"], "OOS": [d for d in degs if d != "rain"]}
    per_image: Dict[str, Dict[str, List[np.ndarray]]] = {}  # model -> part -> one array of photos per seed
    per_deg: Dict[str, Dict[str, List[float]]] = {}  # model -> degradation -> mean PSNR per seed
    for seed in seeds:
        scores = _seed_scores(seed, runs, images, degs, parts["known"], os.path.join(out, f"seed{seed}"))
        for model in dict.fromkeys(m for m, _ in scores):  # "degraded" first, then the models in order
            for part, sel in parts.items():
                per_image.setdefault(model, {}).setdefault(part, []).append(_per_image(scores, model, sel))
            for d in degs:
                per_deg.setdefault(model, {}).setdefault(d, []).append(float(_per_image(scores, model, [d]).mean()))
    pooled = {m: {part: np.mean(v, axis=0) for part, v in by.items()} for m, by in per_image.items()}  # seeds per photo
    table = []
    for model, by_part in pooled.items():
        row: Dict[str, object] = {"model": model}
        for part in parts:
            row[part] = mean_ci(by_part[part]).text()
            for ref in ("plain", "degraded"):
                if model != ref:
                    row[f"{part} - {ref}"] = paired_difference(by_part[part], pooled[ref][part]).text()
        table.append(row)
    ablation = []
    for wrapper in WRAPPERS:
        for label in ABLATIONS:
            row = {"model": wrapper, "switched off": label.replace(" off", "")}
            for part in parts:  # full model minus the ablated one: what the path is worth
                row[f"{part}: full - off"] = paired_difference(pooled[wrapper][part],
                                                                pooled[f"{wrapper} ({label})"][part]).text()
            ablation.append(row)
    by_deg = [dict(model=m, **{d: float(np.mean(v)) for d, v in per_deg[m].items()}) for m in per_deg if "(" not in m]
    cols = ["model", "known", "OOS", "known - plain", "OOS - plain", "known - degraded", "OOS - degraded"]
    md = (f"OSR study: {len(images)} test photos ({size}px centre crops) x {len(degs)} degradations (known: rain; "
          f"OOS: the other {len(parts['OOS'])}), seeds {', '.join(map(str, seeds))} averaged per photo; PSNR (dB), "
          f"mean [95% CI]; differences per photo with paired-bootstrap CIs (photos won/lost)\n\n"
          + markdown_table(table, cols)
          + "\nWhat each path is worth: the full wrapper minus the same weights with one path switched off, per photo, "
            "paired-bootstrap CI (photos won/lost)\n\n"
          + markdown_table(ablation, ["model", "switched off", "known: full - off", "OOS: full - off"])
          + "\nPer degradation: PSNR (dB), mean over photos and seeds\n\n" + markdown_table(by_deg, ["model"] + degs))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "osr_study.md"), "w", encoding="utf-8") as fh:
        fh.write(md)
    with open(os.path.join(out, "osr_study.json"), "w", encoding="utf-8") as fh:
        json.dump({"table": table, "ablation": ablation, "per_degradation": by_deg}, fh, indent=1)
    print(md)
    return md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps1", type=int, default=800, help="stage-1 (restorer) steps")
    p.add_argument("--steps2", type=int, default=400, help="stage-2 (reprogramming) steps")
    p.add_argument("--runs", default="runs/osr_study", help="run folders (outside git)")
    p.add_argument("--out", default="results/osr_study", help="tables")
    p.add_argument("--size", type=int, default=256, help="centre crop of the test photos")
    p.add_argument("--images", type=int, default=0, help="evaluate the first N test photos only (0: all)")
    p.add_argument("--jobs", type=int, default=1, help="training runs at once")
    p.add_argument("--threads", type=int, default=0, help="threads per run (0: the config's)")
    p.add_argument("--only", choices=["train", "eval"], default=None)
    p.add_argument("--dry-run", action="store_true", help="print the training commands, run nothing")
    args = p.parse_args(argv)
    if args.only != "eval":
        train(args.seeds, args.runs, args.steps1, args.steps2, args.dry_run, args.jobs, args.threads)
    if args.only != "train" and not args.dry_run:
        evaluate(args.seeds, args.runs, args.size, args.out, args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
