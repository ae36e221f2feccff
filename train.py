#!/usr/bin/env python
"""Train any registered ms_osr model from a YAML config.

    python train.py --config configs/res_hair_small_cpu.yaml [--set train.total_steps=200 ...] [--resume]

Data parallel on MindSpore's engine (2 CPU workers shown; GPUs/NPUs the same):

    msrun --worker_num=2 --local_worker_num=2 --join=True train.py --config ... [--set ...]

See docs/training.md for the config schema.
"""
from __future__ import annotations

import argparse
import os
import sys

import ms_osr  # noqa: F401  (oneDNN ISA cap before mindspore is imported)
from ms_osr.config import ConfigError, apply_overrides, load_config


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", required=True, help="YAML config (see configs/ and docs/training.md)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.total_steps=100 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.ckpt when it exists")
    p.add_argument("--out-dir", default=None, help="shortcut for --set out_dir=...")
    p.add_argument("--device", default=None, choices=["auto", "cpu", "gpu", "ascend"], help="runtime.device")
    p.add_argument("--mode", default=None, choices=["graph", "pynative"], help="runtime.mode")
    p.add_argument("--seed", type=int, default=None, help="runtime.seed")
    p.add_argument("--threads", type=int, default=None, help="runtime.threads")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p.parse_args(argv)


def build_config(args) -> dict:
    from ms_osr.training.loop import resolve_config

    cfg = load_config(args.config)
    name = os.path.splitext(os.path.basename(args.config))[0]
    cfg = resolve_config(cfg, name)
    overrides = list(args.overrides)
    if args.out_dir:
        overrides.append(f"out_dir={args.out_dir}")
    for key in ("device", "mode", "seed", "threads"):
        if getattr(args, key) is not None:
            overrides.append(f"runtime.{key}={getattr(args, key)}")
    # non-strict for keys that the schema leaves open (model.kwargs.*, data.train.*, ...)
    open_prefixes = ("model.kwargs.", "data.train.", "data.val.", "train.loss.", "train.ema.", "train.scheduler.",
                     "train.optimizer.")
    strict = [o for o in overrides if not o.split("=", 1)[0].strip().startswith(open_prefixes)]
    loose = [o for o in overrides if o not in strict]
    cfg = apply_overrides(cfg, strict, strict=True)
    cfg = apply_overrides(cfg, loose, strict=False)
    return resolve_config(cfg, name)


def main(argv=None) -> int:
    args = parse_args(argv)
    from ms_osr.training.loop import TrainError, Trainer

    try:
        cfg = build_config(args)
        trainer = Trainer(cfg, resume=args.resume, progress=not args.no_progress)
        summary = trainer.fit()
    except (ConfigError, TrainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if trainer.main:
        best = f"{summary['best_psnr']:.2f} dB at step {summary['best_step']}" if summary["best_step"] >= 0 else "n/a"
        print(f"done: {summary['step']} steps in {summary['wall_s']:.1f} s, last loss {summary['loss']:.4f}, "
              f"best val PSNR {best}; checkpoints in {summary['out_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
