#!/usr/bin/env python
"""The OSR study (docs/osr.md §7): does reprogramming carry rain-trained restorers to unseen degradations?

    python tools/osr_study.py --seeds 0 1 2                    # train what is missing, then evaluate
    python tools/osr_study.py --seeds 0 --only train           # resumable: rerun after an interruption
    python tools/osr_study.py --seeds 0 1 2 --only eval        # tables from the finished runs
    python tools/osr_study.py --dry-run                        # print the commands

Per seed, all on the photo corpus, rain the only known degradation, every schedule complete:

* ``restorer``  stage 1: the plain restorer, S1 steps (configs/osr_restorer_rain_photos.yaml);
* ``plain``     the plain restorer trained S1 + S2 steps in one schedule (the fair baseline);
* ``wave`` / ``fourier``  the stage-1 restorer FROZEN inside the wrapper (each reading of the wave
  function), S2 more steps (configs/osr_small_rain_photos.yaml);
* ``random``    a RANDOM frozen restorer reprogrammed (wave reading) for S1 + S2 steps (the paper's
  randomly-initialised variant).

Evaluation: every model, and each wrapper with its phase path, amplitude path or output fusion switched
off (same weights), on the test photos (centre crops of ``--size`` px) under every library degradation,
with the degraded inputs fixed by (photo, degradation, seed).  Seeds are averaged per photo; the tables
give the known (rain) and out-of-sample means with 95% bootstrap CIs and the paired difference of each
model against ``plain`` and against the degraded input.  Runs live under ``--runs`` (outside git).
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
ABLATIONS = {"phase off": "use_phase", "amplitude off": "use_amplitude", "fusion off": "use_fusion"}


def runs_of(seed: int, runs: str, s1: int, s2: int) -> Dict[str, Tuple[str, int, List[str]]]:
    """``{run name: (out_dir, steps, train.py arguments)}`` for one seed, in dependency order."""
    def out(name):
        return os.path.join(runs, f"{name}_s{seed}")

    ckpt = os.path.join(out("restorer"), "last.ckpt")
    plan = {"restorer": (STAGE1, s1, []), "plain": (STAGE1, s1 + s2, []),
            "wave": (STAGE2, s2, [f"model.kwargs.restorer_ckpt={ckpt}", "model.kwargs.transform=wave"]),
            "fourier": (STAGE2, s2, [f"model.kwargs.restorer_ckpt={ckpt}", "model.kwargs.transform=fourier"]),
            "random": (STAGE2, s1 + s2, ["model.kwargs.restorer_ckpt=null", "model.kwargs.transform=wave"])}
    return {name: (out(name), steps, ["-c", config, "--set", f"train.total_steps={steps}", f"out_dir={out(name)}",
                                      f"runtime.seed={seed}"] + extra)
            for name, (config, steps, extra) in plan.items()}


def finished(out_dir: str, steps: int) -> bool:
    """True when ``out_dir``'s training log reached ``steps``."""
    log = os.path.join(out_dir, "train_log.csv")
    if not os.path.isfile(os.path.join(out_dir, "last.ckpt")) or not os.path.isfile(log):
        return False
    with open(log, encoding="utf-8") as fh:
        rows = [ln.split(",", 1)[0] for ln in fh.read().splitlines()[1:] if ln]
    return bool(rows) and int(rows[-1]) >= steps


def train(seeds, runs: str, s1: int, s2: int, dry: bool) -> None:
    for seed in seeds:
        for name, (out_dir, steps, argv) in runs_of(seed, runs, s1, s2).items():
            if finished(out_dir, steps):
                print(f"done: {name} seed {seed} ({out_dir})")
                continue
            cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--no-progress"] + argv
            if os.path.isfile(os.path.join(out_dir, "last.ckpt")):
                cmd.append("--resume")
            print(" ".join(cmd), flush=True)
            if not dry:
                subprocess.run(cmd, cwd=ROOT, check=True)


def evaluate(seeds, runs: str, size: int, out: str) -> None:
    import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
    from ms_osr.data.corpus import DEFAULT_ROOT, split_paths
    from ms_osr.data.io import read_image
    from ms_osr.data.transforms import center_crop
    from ms_osr.evaluation import library_degradations, markdown_table, osr_protocol
    from ms_osr.inference import Restorer, load_model
    from ms_osr.statistics import mean_ci, paired_difference

    images = {os.path.splitext(os.path.basename(p))[0]: center_crop(read_image(p), size)
              for p in split_paths(os.path.join(ROOT, DEFAULT_ROOT), "test")}
    degs = library_degradations()
    known = {"rain"}
    per_image: Dict[str, Dict[int, Dict[str, np.ndarray]]] = {}  # model -> seed -> {"known"/"OOS": (images,)}
    for seed in seeds:
        models = {}
        for name in ("restorer", "plain", "wave", "fourier", "random"):
            path = os.path.join(runs, f"{name}_s{seed}", "last.ckpt")
            config = os.path.join(runs, f"{name}_s{seed}", "config.yaml")
            models[name] = Restorer(load_model(path, config=config).net)
            if name in ("wave", "fourier", "random"):
                for label, switch in ABLATIONS.items():
                    net = load_model(path, config=config, overrides={switch: False}).net
                    models[f"{name} ({label})"] = Restorer(net)
        osr_protocol(models, images, known=known, degradations=degs, seed=seed, output_dir=os.path.join(out, f"seed{seed}"))
        with open(os.path.join(out, f"seed{seed}", "osr_protocol_images.csv"), encoding="utf-8") as fh:
            rows = [ln.split(",") for ln in fh.read().splitlines()[1:]]
        for model in ["degraded"] + list(models):
            for part, sel in (("known", known), ("OOS", set(degs) - known)):
                vals = np.array([[float(r[3]) for r in rows if r[0] == model and r[1] == d] for d in degs if d in sel])
                per_image.setdefault(model, {}).setdefault(seed, {})[part] = vals.mean(axis=0)
    table = []
    for model, by_seed in per_image.items():
        row: Dict[str, object] = {"model": model}
        for part in ("known", "OOS"):
            pooled = np.mean([by_seed[s][part] for s in seeds], axis=0)  # seeds averaged per photo
            est = mean_ci(pooled)
            row[part] = est.text()
            for ref in ("plain", "degraded"):
                if model != ref and ref in per_image:
                    pd = paired_difference(pooled, np.mean([per_image[ref][s][part] for s in seeds], axis=0))
                    row[f"{part} - {ref}"] = pd.text()
        table.append(row)
    cols = ["model", "known", "OOS", "known - plain", "OOS - plain", "known - degraded", "OOS - degraded"]
    md = (f"OSR study: {len(images)} test photos ({size}px centre crops) x {len(degs)} degradations, seeds "
          f"{', '.join(map(str, seeds))} averaged per photo; PSNR (dB), mean [95% CI]; differences per photo with "
          f"paired-bootstrap CIs (won/lost photos)\n\n" + markdown_table(table, cols))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "osr_study.md"), "w", encoding="utf-8") as fh:
        fh.write(md)
    with open(os.path.join(out, "osr_study.json"), "w", encoding="utf-8") as fh:
        json.dump(table, fh, indent=1)
    print(md)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps1", type=int, default=1000, help="stage-1 (restorer) steps")
    p.add_argument("--steps2", type=int, default=600, help="stage-2 (reprogramming) steps")
    p.add_argument("--runs", default="runs/osr_study", help="run folders (outside git)")
    p.add_argument("--out", default="results/osr_study", help="tables")
    p.add_argument("--size", type=int, default=256, help="centre crop of the test photos")
    p.add_argument("--only", choices=["train", "eval"], default=None)
    p.add_argument("--dry-run", action="store_true", help="print the training commands, run nothing")
    args = p.parse_args(argv)
    if args.only != "eval":
        train(args.seeds, args.runs, args.steps1, args.steps2, args.dry_run)
    if args.only != "train" and not args.dry_run:
        evaluate(args.seeds, args.runs, args.size, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
