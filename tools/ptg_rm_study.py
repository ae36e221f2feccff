#!/usr/bin/env python
"""The PTG-RM study (docs/ptg_rm.md): does the plugin's prior help, against controls of the same budget?

    python tools/ptg_rm_study.py --seeds 0 1 2 --bases griddehazenet_small --jobs 2 --threads 1
    python tools/ptg_rm_study.py --seeds 0 1 2 --only eval        # tables from the finished runs
    python tools/ptg_rm_study.py --dry-run                        # print the commands

Per base and seed, on the photo corpus' train split with the all-in-one synthesis of
configs/ptg_rm_study_base.yaml (noise of random level, rain, haze; constant LR, batch 8, 64 px patches):

* ``base``          the base alone, ``--steps1`` steps;
* ``base_longer``   ``base`` continued for ``--steps2`` more steps (constant LR: the same schedule as one
                    run of steps1 + steps2) - what the plugin's training steps buy without the plugin;
* ``wide``          the base widened to base + PTG-RM's trainable parameters, trained steps1 + steps2 from
                    scratch - what the plugin's parameters buy without the plugin;
* ``ptg_constant``  frozen ``base`` + PTG-RM trained ``--steps2`` steps with a constant prior (a fixed
                    unit vector: the module's full capacity, no prior information);
* ``ptg_stats``     the same with the standardised output-statistics prior (statistics of the frozen base's
                    own restoration, z-scored on 128 training patches, projected to 64-d);
* ``ptg_giv``       the same with the standardised Global Information Vector of the shipped Res-HAIR
                    checkpoint (ckpt/res_hair_small.ckpt, trained on the same train split).

Evaluation: the test photos (centre crops of ``--size`` px) under noise σ 15/25/50, rain and haze, inputs fixed
by (photo, degradation, seed); seeds averaged per photo; per degradation the mean with 95% bootstrap CIs, and
paired differences (prior against constant prior, plugin against the two controls).  Runs live under
``--runs`` (outside git); everything is resumable.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ms_osr.study import (Run, add_study_arguments, ci_rows, corpus_test_crops, finished, load_scores,  # noqa: E402
                          pair_rows, pool_seeds, save_scores, set_eval_threads, train_argv, train_missing, write_report)

BASE_CONFIG, PTG_CONFIG = "configs/ptg_rm_study_base.yaml", "configs/ptg_rm_study.yaml"
DEGRADATIONS = ["noise_15", "noise_25", "noise_50", "rain", "haze"]
OSF_DIM = 64
GIV_PRIOR = {"model": "res_hair_small", "ckpt": "ckpt/res_hair_small.ckpt", "feature": "global_vector"}
# base -> (registered name, the widened model's name and kwargs: base + PTG-RM's 442,359 trainable parameters)
BASES = {
    "griddehazenet_small": ("griddehazenet", dict(depth_rate=19, height=3, width=4, num_dense_layer=2,
                                                  growth_rate=20)),  # 534,708 vs 93,635 + 442,359 = 535,994
    "osr_resnet_half_skip": ("osr_resnet", dict(width=0.92, global_skip=True)),  # 627,074 vs 185,091 + 442,359
}
MODELS = ["base", "base_longer", "wide", "ptg_constant", "ptg_stats", "ptg_giv"]
PAIRS = [("ptg_stats", "ptg_constant"), ("ptg_giv", "ptg_constant"), ("ptg_constant", "base_longer"),
         ("ptg_constant", "wide"), ("ptg_stats", "base_longer"), ("ptg_stats", "wide"), ("wide", "base_longer"),
         ("base_longer", "base")]


def _yaml(mapping: dict) -> str:
    """A flow mapping for a ``--set key=value`` override."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in mapping.items()) + "}"


class Plan:
    """The runs of one (base, seed) and the files they share."""

    def __init__(self, base: str, seed: int, runs: str, steps1: int, steps2: int, threads: int = 0):
        self.base, self.seed, self.threads = base, seed, threads
        self.steps1, self.steps2 = steps1, steps2
        self.dir = os.path.join(runs, base, f"seed{seed}")
        self.base_ckpt = os.path.join(self.dir, "base", "last.ckpt")
        self.stats_std = os.path.join(self.dir, "output_stats_std.npz")
        self.giv_std = os.path.join(runs, "giv_res_hair_small_std.npz")  # one base-independent calibration

    def out(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _run(self, name: str, config: str, steps: int, extra: List[str]) -> Run:
        return Run(f"{self.base}/{name}", self.seed, self.out(name), steps,
                   train_argv(config, steps, self.out(name), self.seed, extra, self.threads))

    def phase1(self) -> List[Run]:
        wide_name, wide_kwargs = BASES[self.base][0], BASES[self.base][1]
        return [self._run("base", BASE_CONFIG, self.steps1, [f"model.name={self.base}"]),
                self._run("wide", BASE_CONFIG, self.steps1 + self.steps2,
                          [f"model.name={wide_name}", f"model.kwargs={_yaml(wide_kwargs)}"])]

    def prior(self, name: str) -> Dict[str, object]:
        """``osf`` and ``osf_kwargs`` of the PTG-RM run ``name``."""
        if name == "ptg_constant":
            return {"osf": "constant", "osf_kwargs": {"out_dim": OSF_DIM, "seed": self.seed}}
        if name == "ptg_stats":
            return {"osf": "restoration_prior", "osf_kwargs": {"model": self.base, "ckpt": self.base_ckpt,
                                                               "out_dim": OSF_DIM, "standardize": self.stats_std}}
        return {"osf": "restoration_prior", "osf_kwargs": {**GIV_PRIOR, "standardize": self.giv_std}}

    def ptg_overrides(self, name: str, with_standardize: bool = True) -> List[str]:
        prior = self.prior(name)
        kwargs = dict(prior["osf_kwargs"])
        if not with_standardize:
            kwargs.pop("standardize", None)
        return [f"model.kwargs.base={self.base}", f"model.kwargs.base_ckpt={self.base_ckpt}",
                f"model.kwargs.osf={prior['osf']}", f"model.kwargs.osf_kwargs={_yaml(kwargs)}"]

    def phase2(self) -> List[Run]:
        longer = self._run("base_longer", BASE_CONFIG, self.steps1 + self.steps2, [f"model.name={self.base}"])
        return [longer] + [self._run(n, PTG_CONFIG, self.steps2, self.ptg_overrides(n))
                           for n in ("ptg_constant", "ptg_stats", "ptg_giv")]


def _calibrate(plan: Plan, name: str, path: str, dry: bool) -> None:
    """The standardisation statistics of a prior (tools/ptg_rm_experiment.py --calibrate-osf), once."""
    cmd = [sys.executable, os.path.join(ROOT, "tools", "ptg_rm_experiment.py"), "--config", PTG_CONFIG,
           "--calibrate-osf", path, "--calibrate-images", "128", "--threads", str(plan.threads or 2),
           "--set", *plan.ptg_overrides(name, with_standardize=False)]
    if os.path.isfile(path):
        return
    print(" ".join(cmd), flush=True)
    if not dry:
        import subprocess

        subprocess.run(cmd, cwd=ROOT, check=True)


def _start_longer(plan: Plan) -> None:
    """``base_longer`` starts as a copy of the finished ``base`` run and resumes from it."""
    dst = plan.out("base_longer")
    if not os.path.isfile(os.path.join(dst, "last.ckpt")):
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(plan.out("base"), dst)


def train(plans: List[Plan], dry: bool, jobs: int) -> None:
    train_missing(ROOT, [r for p in plans for r in p.phase1()], dry, jobs)
    for plan in plans:
        if dry or finished(plan.out("base"), plan.steps1):
            _calibrate(plan, "ptg_stats", plan.stats_std, dry)
            _calibrate(plan, "ptg_giv", plan.giv_std, dry)
            if not dry:
                _start_longer(plan)
    train_missing(ROOT, [r for p in plans for r in p.phase2()], dry, jobs)


def _seed_scores(plan: Plan, images: Dict[str, np.ndarray], out: str):
    """Per-image scores of one (base, seed)'s models, cached under ``out``."""
    from ms_osr.evaluation import osr_protocol
    from ms_osr.inference import Restorer, load_model

    cache = os.path.join(out, "image_scores.npz")
    scores = load_scores(cache, list(images))
    if scores is not None:
        return scores
    restorers = {n: Restorer(load_model(os.path.join(plan.out(n), "last.ckpt"),
                                        config=os.path.join(plan.out(n), "config.yaml")).net) for n in MODELS}
    scores = osr_protocol(restorers, images, known=DEGRADATIONS, degradations=DEGRADATIONS, seed=plan.seed,
                          output_dir=out).image_scores
    save_scores(cache, list(images), scores)
    return scores


def _param_counts(plan: Plan) -> Dict[str, int]:
    """Trainable parameters of each model (PTG-RM: the module; the frozen base and prior not counted)."""
    from ms_osr.build import create_model
    from ms_osr.models.ptg_rm import count_params

    wide_name, wide_kwargs = BASES[plan.base]
    base = count_params(create_model(plan.base))
    ptg = count_params(create_model("ptg_rm", osf_dim=OSF_DIM))
    return {"base": base, "base_longer": base, "wide": count_params(create_model(wide_name, **wide_kwargs)),
            "ptg_constant": ptg, "ptg_stats": ptg, "ptg_giv": ptg}


def evaluate(bases: List[str], seeds: List[int], runs: str, size: int, out: str, steps1: int, steps2: int,
             max_images: int = 0) -> str:
    import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
    from ms_osr.data.corpus import DEFAULT_ROOT
    from ms_osr.tables import markdown_table

    images = corpus_test_crops(os.path.join(ROOT, DEFAULT_ROOT), size, max_images)
    columns = {**{d: [d] for d in DEGRADATIONS}, "mean": DEGRADATIONS}
    md = [f"PTG-RM study: {len(images)} test photos ({size}px centre crops), seeds {', '.join(map(str, seeds))} "
          f"averaged per photo; base {steps1} steps, plugin and controls {steps2} more; PSNR (dB), mean [95% CI]; "
          f"differences per photo with paired-bootstrap CIs (photos won/lost)\n"]
    for base in bases:
        plans = [Plan(base, s, runs, steps1, steps2) for s in seeds]
        pooled = pool_seeds([_seed_scores(p, images, os.path.join(out, base, f"seed{p.seed}")) for p in plans],
                            columns)
        counts = _param_counts(plans[0])
        table = [dict(row, params=f"{counts[row['model']]:,}" if row["model"] in counts else "")
                 for row in ci_rows(pooled, list(columns))]
        md += [f"\n### Base {base}\n\n", markdown_table(table, ["model", *columns, "params"]), "\n",
               markdown_table(pair_rows(pooled, PAIRS, list(columns)), ["model", *columns])]
    text = "".join(md)
    return write_report(out, "ptg_rm_study", text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(p, "ptg_rm_study", size=256)
    p.add_argument("--bases", nargs="+", default=list(BASES), choices=list(BASES))
    p.add_argument("--steps1", type=int, default=400, help="training steps of the base")
    p.add_argument("--steps2", type=int, default=200, help="steps of the plugin and of the longer base")
    args = p.parse_args(argv)
    if args.only != "eval":
        train([Plan(b, s, args.runs, args.steps1, args.steps2, args.threads) for b in args.bases
               for s in args.seeds], args.dry_run, args.jobs)
    if args.only != "train" and not args.dry_run:
        set_eval_threads(args.threads)
        evaluate(args.bases, args.seeds, args.runs, args.size, args.out, args.steps1, args.steps2, args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
