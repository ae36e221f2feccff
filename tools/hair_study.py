#!/usr/bin/env python
"""The HAIR study (docs/hair.md): does Res-HAIR's weight selection beat a static Restormer of its size?

    python tools/hair_study.py --seeds 0 1 2 --steps 600          # train what is missing, then evaluate
    python tools/hair_study.py --seeds 0 --only train --jobs 2    # resumable: rerun after an interruption
    python tools/hair_study.py --seeds 0 1 2 --only eval          # tables from the finished runs
    python tools/hair_study.py --dry-run                          # print the commands

Per seed, every model trained from scratch on the same data (the photo corpus' train split, the all-in-one
degradations of configs/res_hair_small_photos.yaml: noise of random level, rain, haze), for the same steps
with the same complete schedule (the config's cosine, ``--steps`` long):

* ``res_hair``         res_hair_small (2.05 M parameters), the official selection (softmax at temperature 1);
* ``res_hair_sharp``   the same with ``hsn_temperature`` = ``--temperature`` (our option, docs/hair.md);
* ``res_hair_sharp_sep`` res_hair_sharp plus the GIV separation loss, weight ``--separation`` (our option:
                       a loss on the degradation labels of the batches; the official code trains with L1 only);
* ``restormer``        restormer_small_wide (2.13 M): the static backbone at Res-HAIR's parameter count;
* ``restormer_small``  restormer_small (1.14 M): the static backbone at Res-HAIR's width (same FLOPs).

Evaluation: the test photos (centre crops of ``--size`` px) under noise σ 15/25/50, rain and haze, the
degraded inputs fixed by (photo, degradation, seed); seeds averaged per photo; per degradation the mean with
95% bootstrap CIs and the paired difference of each Res-HAIR against each Restormer.  For the Res-HAIR runs,
the selection diagnostics of ms_osr.hair_diagnostics on seeded 128 px test crops (noise σ 25, rain, haze).
Runs live under ``--runs`` (outside git).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ms_osr.study import (Run, add_study_arguments, ci_rows, corpus_test_crops, load_scores,  # noqa: E402
                          pair_rows, pool_seeds, save_scores, set_eval_threads, train_argv, train_missing, write_report)

CONFIG = "configs/res_hair_small_photos.yaml"
DEGRADATIONS = ["noise_15", "noise_25", "noise_50", "rain", "haze"]
PAIRS = [("res_hair", "restormer"), ("res_hair", "restormer_small"), ("res_hair_sharp", "restormer"),
         ("res_hair_sharp_sep", "restormer"), ("res_hair_sharp_sep", "res_hair_sharp"),
         ("res_hair_sharp_sep", "res_hair"),
         ("res_hair_sharp", "res_hair")]


def models(temperature: float, separation: float = 0.1) -> Dict[str, list]:
    """``{run name: config overrides}``."""
    sharp = ["model.name=res_hair_small", f"model.kwargs.hsn_temperature={temperature}"]
    return {"res_hair": ["model.name=res_hair_small"],
            "res_hair_sharp": sharp,
            "res_hair_sharp_sep": sharp + [f"train.loss.giv_separation={separation}"],
            "restormer": ["model.name=restormer_small_wide"],
            "restormer_small": ["model.name=restormer_small"]}


def runs_of(seed: int, runs: str, steps: int, temperature: float, threads: int = 0,
            separation: float = 0.1) -> Dict[str, Run]:
    plan = models(temperature, separation)
    out = {name: os.path.join(runs, f"{name}_s{seed}") for name in plan}
    return {name: Run(name, seed, out[name], steps, train_argv(CONFIG, steps, out[name], seed, extra, threads))
            for name, extra in plan.items()}


def _seed_results(seed: int, runs: str, images: Dict[str, np.ndarray], names, out: str):
    """Per-image scores and selection diagnostics of one seed's models, cached under ``out``; a model missing
    from the cache (added to the study later) is evaluated and merged in."""
    from ms_osr.data.corpus import DEFAULT_ROOT
    from ms_osr.evaluation import osr_protocol
    from ms_osr.hair_diagnostics import degraded_crops, diagnose, hyper_levels
    from ms_osr.inference import Restorer, load_model

    cache, diag_path = os.path.join(out, "image_scores.npz"), os.path.join(out, "diagnostics.json")
    scores = load_scores(cache, list(images)) or {}
    diags = {}
    if scores and os.path.isfile(diag_path):
        with open(diag_path, encoding="utf-8") as fh:
            diags = json.load(fh)
    missing = [n for n in names if (n, DEGRADATIONS[0]) not in scores]
    if missing:
        nets = {n: load_model(os.path.join(runs, f"{n}_s{seed}", "last.ckpt"),
                              config=os.path.join(runs, f"{n}_s{seed}", "config.yaml")).net for n in missing}
        scores.update(osr_protocol({n: Restorer(net) for n, net in nets.items()}, images, known=DEGRADATIONS,
                                   degradations=DEGRADATIONS, seed=seed, output_dir=out).image_scores)
        crops, labels = degraded_crops(os.path.join(ROOT, DEFAULT_ROOT), "test", ("noise_25", "rain", "haze"), 128,
                                       seed)
        diags.update({n: diagnose(net, crops, labels).summary() for n, net in nets.items() if hyper_levels(net)})
        save_scores(cache, list(images), scores)
        with open(diag_path, "w", encoding="utf-8") as fh:
            json.dump(diags, fh, indent=1)
    return scores, {n: d for n, d in diags.items() if n in names}


def evaluate(seeds, runs: str, size: int, out: str, names, max_images: int = 0) -> str:
    import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
    from ms_osr.data.corpus import DEFAULT_ROOT
    from ms_osr.tables import markdown_table

    images = corpus_test_crops(os.path.join(ROOT, DEFAULT_ROOT), size, max_images)
    columns = {**{d: [d] for d in DEGRADATIONS}, "mean": DEGRADATIONS}
    seed_scores, diags = [], {}
    for seed in seeds:
        scores, seed_diags = _seed_results(seed, runs, images, names, os.path.join(out, f"seed{seed}"))
        seed_scores.append(scores)
        for model, summary in seed_diags.items():
            diags.setdefault(model, []).append(summary)
    pooled = pool_seeds(seed_scores, columns)
    table = ci_rows(pooled, list(columns))
    pairs = pair_rows(pooled, PAIRS + [(n, "degraded") for n in names], list(columns))
    diag_rows = [dict(model=m, **{k: float(np.mean([s[k] for s in summaries])) for k in summaries[0]},
                      seeds=len(summaries)) for m, summaries in diags.items()]
    md = (f"HAIR study: {len(images)} test photos ({size}px centre crops), seeds {', '.join(map(str, seeds))} "
          f"averaged per photo; PSNR (dB), mean [95% CI]\n\n" + markdown_table(table, ["model", *columns])
          + "\nPaired differences per photo (paired-bootstrap 95% CI, photos won/lost)\n\n"
          + markdown_table(pairs, ["model", *columns])
          + "\nSelection diagnostics (mean over seeds): normalised HSN entropy (1 = uniform), kernel spread, "
            "GIV R² and leave-one-out accuracy over noise σ25 / rain / haze (chance 1/3)\n\n"
          + markdown_table(diag_rows, ["model", "hsn_entropy", "kernel_spread", "giv_r2", "giv_accuracy", "seeds"],
                           digits=4))
    return write_report(out, "hair_study", md)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(p, "hair_study", size=256)
    p.add_argument("--steps", type=int, default=600, help="training steps of every run (one cosine schedule)")
    p.add_argument("--temperature", type=float, default=0.1, help="hsn_temperature of res_hair_sharp")
    p.add_argument("--separation", type=float, default=0.1, help="giv_separation weight of res_hair_sharp_sep")
    p.add_argument("--models", nargs="+", default=list(models(1.0)), choices=list(models(1.0)))
    args = p.parse_args(argv)
    if args.only != "eval":
        train_missing(ROOT, [run for seed in args.seeds
                             for name, run in runs_of(seed, args.runs, args.steps, args.temperature,
                                                      args.threads, args.separation).items()
                             if name in args.models],
                      args.dry_run, args.jobs)
    if args.only != "train" and not args.dry_run:
        set_eval_threads(args.threads)
        evaluate(args.seeds, args.runs, args.size, args.out, args.models, args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
