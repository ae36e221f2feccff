#!/usr/bin/env python
"""Train any registered ms_osr model from a YAML config.

    python train.py --config configs/res_hair_small_cpu.yaml [--set train.total_steps=200 ...] [--resume]

Data parallel on MindSpore's engine (2 CPU workers shown; GPUs/NPUs the same):

    msrun --worker_num=2 --local_worker_num=2 --join=True train.py --config ... [--set ...]

See docs/training.md for the config schema.
"""
from __future__ import annotations

import argparse
import sys

import ms_osr  # noqa: F401  (oneDNN ISA cap before mindspore is imported)
from ms_osr.cli import add_debug_arg, run_cli


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
    add_debug_arg(p)
    return p.parse_args(argv)


def build_config(args) -> dict:
    """The YAML file, then --set and the shortcuts, each checked against ms_osr.schema."""
    from ms_osr.config import load_config
    from ms_osr.schema import apply_overrides, resolve, run_name, shortcut_overrides

    cfg = load_config(args.config)
    shortcuts = shortcut_overrides(args.out_dir, {k: getattr(args, k) for k in ("device", "mode", "seed", "threads")})
    cfg = apply_overrides(cfg, list(args.overrides) + shortcuts)
    return resolve(cfg, run_name(args.config), source=args.config)


def train(argv=None) -> int:
    args = parse_args(argv)
    cfg = build_config(args)  # every config problem, before MindSpore loads or a run folder exists
    from ms_osr.training.loop import Trainer

    trainer = Trainer(cfg, resume=args.resume, progress=not args.no_progress)
    summary = trainer.fit()
    if trainer.main:
        best = f"{summary['best_psnr']:.2f} dB at step {summary['best_step']}" if summary["best_step"] >= 0 else "n/a"
        print(f"done: {summary['step']} steps in {summary['wall_s']:.1f} s, last loss {summary['loss']:.4f}, "
              f"best val PSNR {best}; checkpoints in {summary['out_dir']}")
    return 0


def main(argv=None) -> int:
    return run_cli(train, argv, code=2)


if __name__ == "__main__":
    sys.exit(main())
