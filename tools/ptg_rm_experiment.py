#!/usr/bin/env python
"""Evaluate a trained PTG-RM wrapper: base vs base+PTG-RM, and the cost of a distilled OSF.

    python tools/ptg_rm_experiment.py --config configs/ptg_rm_restormer_small_cpu.yaml \\
        --ckpt runs/ptg_rm_restormer_small/last.ckpt [--distill-steps 300] [--distill-images 64]

1. Builds the wrapper of ``--config`` and loads ``--ckpt`` (strict).
2. Validation PSNR/SSIM (the config's val set) of the frozen base alone and of base + PTG-RM.
3. Trains a :class:`~ms_osr.models.osf.DistilledOSF` head to reproduce the wrapper's OSF provider on
   random training patches (cosine loss), swaps it in and validates again: the quality cost of
   inference without the prior G.  The head is saved next to the checkpoint (``distilled_osf.ckpt``).
4. Per-image inference time (val crop, batch 1, steady state) of each variant.
Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ms_osr  # noqa: E402,F401  (oneDNN cap before mindspore)


def _timed_eval(net, view, metrics):
    """Validation scores and the median per-image time of a second pass (compiled graphs)."""
    import numpy as np

    from ms_osr.training.evaluate import evaluate_net, restore

    res = evaluate_net(net, view, metrics)
    times = []
    for i in range(len(view)):
        lq = view.get(i)[0]
        t0 = time.perf_counter()
        restore(net, lq)
        times.append(time.perf_counter() - t0)
    return res, float(np.median(times)) if times else float("nan")


def _patches(source, n: int, size: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        lq, _, _ = source.load(int(rng.integers(len(source))), rng)
        h, w = lq.shape[:2]
        y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        out.append(lq[y:y + size, x:x + size].transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--ckpt", required=True, help="trained wrapper weights (train.py last.ckpt / best.ckpt)")
    p.add_argument("--distill-steps", type=int, default=300)
    p.add_argument("--distill-images", type=int, default=64, help="random training patches for the head")
    p.add_argument("--distill-width", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config overrides as in train.py")
    args = p.parse_args(argv)

    from ms_osr.checkpoint import load_checkpoint, save_checkpoint
    from ms_osr.config import apply_overrides, load_config
    from ms_osr.data import datasets as DS
    from ms_osr.models.osf import DistilledOSF, osf_vectors, replace_osf, train_distilled_osf
    from ms_osr.models.ptg_rm import count_params
    from ms_osr.registry import create_model
    from ms_osr.runtime import setup_runtime
    from ms_osr.training.loop import resolve_config

    cfg = apply_overrides(load_config(args.config), args.overrides, strict=False)
    cfg = resolve_config(cfg, os.path.splitext(os.path.basename(args.config))[0])
    setup_runtime("cpu", "graph", seed=int(cfg["runtime"].get("seed") or 0), threads=args.threads)
    net = create_model(cfg["model"]["name"], **cfg["model"]["kwargs"])
    load_checkpoint(net, args.ckpt)
    vc = cfg["data"]["val"]
    view = DS.EvalView(DS.build_source(vc, train=False), crop=vc.get("crop"))
    metrics = vc.get("metrics")
    rows = []
    base_res, base_t = _timed_eval(net.base, view, metrics)
    rows.append(("base alone", base_res, base_t, count_params(net.base), 0))
    ptg_res, ptg_t = _timed_eval(net, view, metrics)
    rows.append(("base + PTG-RM (prior OSF)", ptg_res, ptg_t, count_params(net), count_params(net.osf)))

    train_src = DS.build_source(cfg["data"]["train"], train=True)
    imgs = _patches(train_src, args.distill_images, int(cfg["data"]["patch_size"]), seed=1)
    val_imgs = _patches(DS.build_source(vc, train=False), 16, int(cfg["data"]["patch_size"]), seed=2)
    head = DistilledOSF(out_dim=int(net.osf.out_dim), width=args.distill_width, hidden=256)
    t0 = time.perf_counter()
    rep = train_distilled_osf(head, net.osf, imgs, steps=args.distill_steps, batch_size=8, lr=1e-3,
                              val_images=val_imgs, log_every=max(1, args.distill_steps // 5))
    distill_s = time.perf_counter() - t0
    save_checkpoint(head, os.path.join(os.path.dirname(args.ckpt), "distilled_osf.ckpt"))
    import numpy as np

    full_val = np.stack([view.get(i)[0].transpose(2, 0, 1) for i in range(len(view))]).astype(np.float32)
    from ms_osr.models.osf import cosine_stats

    teacher_val = osf_vectors(net.osf, full_val, batch_size=1)
    replace_osf(net, head)
    rep["val_full"] = cosine_stats(osf_vectors(head, full_val, batch_size=1), teacher_val)
    dis_res, dis_t = _timed_eval(net, view, metrics)
    rows.append(("base + PTG-RM (distilled OSF)", dis_res, dis_t, count_params(net), count_params(head)))

    print(f"\nconfig {args.config}, ckpt {args.ckpt}; val: {len(view)} images")
    print(f"distillation: {args.distill_steps} steps on {len(imgs)} patches in {distill_s:.0f} s; cosine to the "
          f"prior: train {rep['train']['cos_mean']:.3f}, val patches {rep['val']['cos_mean']:.3f}, "
          f"val images {rep['val_full']['cos_mean']:.3f} (min {rep['val_full']['cos_min']:.3f})\n")
    print("| variant | PSNR | SSIM | params (all) | OSF params | s / image |")
    print("|---|---|---|---|---|---|")
    for name, res, t, n_all, n_osf in rows:
        print(f"| {name} | {res['psnr']:.2f} | {res['ssim']:.4f} | {n_all:,} | {n_osf:,} | {t:.3f} |")
    print(f"| (degraded input) | {base_res['input_psnr']:.2f} | {base_res['input_ssim']:.4f} | | | |")
    print("\nper degradation (PSNR): " + "; ".join(
        f"{g}: base {base_res['groups'][g]['psnr']:.2f} / PTG-RM {ptg_res['groups'][g]['psnr']:.2f} / "
        f"distilled {dis_res['groups'][g]['psnr']:.2f}" for g in base_res["groups"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
