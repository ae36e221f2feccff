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
import os
import sys
from typing import Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ms_osr.study import (Run, add_study_arguments, corpus_test_crops, load_scores, pool_seeds,  # noqa: E402
                          save_scores, set_eval_threads, train_argv, train_missing, write_report)

STAGE1 = "configs/osr_restorer_rain_photos.yaml"
STAGE2 = "configs/osr_small_rain_photos.yaml"
READINGS = ("wave", "fourier", "channels")
WRAPPERS = READINGS + ("random",)
ABLATIONS = {"phase off": "use_phase", "amplitude off": "use_amplitude", "fusion off": "use_fusion"}


def runs_of(seed: int, runs: str, s1: int, s2: int, threads: int = 0) -> Dict[str, Run]:
    """``{run name: Run}`` for one seed, in dependency order (the wrappers need ``restorer``)."""
    def out(name):
        return os.path.join(runs, f"{name}_s{seed}")

    ckpt = os.path.join(out("restorer"), "last.ckpt")
    plan = {"restorer": (STAGE1, s1, []), "plain": (STAGE1, s1 + s2, [])}
    for reading in READINGS:
        plan[reading] = (STAGE2, s2, [f"model.kwargs.restorer_ckpt={ckpt}", f"model.kwargs.transform={reading}"])
    plan["random"] = (STAGE2, s1 + s2, ["model.kwargs.restorer_ckpt=null", "model.kwargs.transform=wave"])
    return {name: Run(name, seed, out(name), steps, train_argv(config, steps, out(name), seed, extra, threads))
            for name, (config, steps, extra) in plan.items()}


def train(seeds, runs: str, s1: int, s2: int, dry: bool, jobs: int = 1, threads: int = 0) -> None:
    """Train what is missing: the stage-1 runs of every seed first, then the wrappers, ``jobs`` at a time."""
    for phase in (("restorer", "plain"), WRAPPERS):
        train_missing(ROOT, [run for seed in seeds for name, run in runs_of(seed, runs, s1, s2, threads).items()
                             if name in phase], dry, jobs)


def _seed_scores(seed: int, runs: str, images: Dict[str, np.ndarray], degs: List[str], known: List[str],
                 out: str):
    """Per-image (PSNR, SSIM) of every model of one seed under every degradation; cached in
    ``out/image_scores.npz`` (keyed by the photos evaluated), so evaluation resumes seed by seed."""
    from ms_osr.evaluation import osr_protocol
    from ms_osr.inference import Restorer, load_model

    cache = os.path.join(out, "image_scores.npz")
    scores = load_scores(cache, list(images))
    if scores is not None:
        return scores
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
    save_scores(cache, list(images), scores)
    return scores


def evaluate(seeds, runs: str, size: int, out: str, max_images: int = 0) -> str:
    import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
    from ms_osr.data.corpus import DEFAULT_ROOT
    from ms_osr.evaluation import library_degradations, markdown_table
    from ms_osr.statistics import mean_ci, paired_difference

    images = corpus_test_crops(os.path.join(ROOT, DEFAULT_ROOT), size, max_images)
    degs = library_degradations()
    parts = {"known": ["rain"], "OOS": [d for d in degs if d != "rain"]}
    seed_scores = [_seed_scores(seed, runs, images, degs, parts["known"], os.path.join(out, f"seed{seed}"))
                   for seed in seeds]
    pooled = pool_seeds(seed_scores, parts)  # seeds averaged per photo
    per_deg = pool_seeds(seed_scores, {d: [d] for d in degs})
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
    by_deg = [dict(model=m, **{d: float(np.mean(v)) for d, v in by.items()})
              for m, by in per_deg.items() if "(" not in m]
    cols = ["model", "known", "OOS", "known - plain", "OOS - plain", "known - degraded", "OOS - degraded"]
    md = (f"OSR study: {len(images)} test photos ({size}px centre crops) x {len(degs)} degradations (known: rain; "
          f"OOS: the other {len(parts['OOS'])}), seeds {', '.join(map(str, seeds))} averaged per photo; PSNR (dB), "
          f"mean [95% CI]; differences per photo with paired-bootstrap CIs (photos won/lost)\n\n"
          + markdown_table(table, cols)
          + "\nWhat each path is worth: the full wrapper minus the same weights with one path switched off, per photo, "
            "paired-bootstrap CI (photos won/lost)\n\n"
          + markdown_table(ablation, ["model", "switched off", "known: full - off", "OOS: full - off"])
          + "\nPer degradation: PSNR (dB), mean over photos and seeds\n\n" + markdown_table(by_deg, ["model"] + degs))
    return write_report(out, "osr_study", md, {"table": table, "ablation": ablation, "per_degradation": by_deg})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(p, "osr_study", size=128)
    p.add_argument("--steps1", type=int, default=800, help="stage-1 (restorer) steps")
    p.add_argument("--steps2", type=int, default=400, help="stage-2 (reprogramming) steps")
    args = p.parse_args(argv)
    if args.only != "eval":
        train(args.seeds, args.runs, args.steps1, args.steps2, args.dry_run, args.jobs, args.threads)
    if args.only != "train" and not args.dry_run:
        set_eval_threads(args.threads)
        evaluate(args.seeds, args.runs, args.size, args.out, args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
