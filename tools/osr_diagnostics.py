#!/usr/bin/env python
"""Where does an OSR wrapper learn?  Gradient norms of each branch on degraded corpus crops.

    python tools/osr_diagnostics.py --ckpt ckpt/osr_small_rain.ckpt                     # a trained wrapper
    python tools/osr_diagnostics.py --ckpt ckpt/osr_small_rain.ckpt --fresh osr_small   # stage-2 start: its
        # restorer inside a freshly initialised wrapper (transforms at their identity initialisation)
    python tools/osr_diagnostics.py --ckpt ... --fresh osr --set transform=fourier restorer=osr_resnet_half_skip

Prints, per branch (phase adapter, amplitude enhancer, output fusion, complex projection), the norm of the
L1 loss gradient with respect to its parameters and their norm, on a fixed batch of random-scale crops of
the val photos degraded by --degradation (random parameters, seeded).  docs/osr.md §6 reads these figures.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ms_osr  # noqa: E402,F401


def crops(root: str, degradation: str, n: int, size: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    from ms_osr.data import degradations as D
    from ms_osr.data.corpus import split_paths
    from ms_osr.data.io import read_image
    from ms_osr.data.transforms import random_scaled_crop

    rng = np.random.default_rng(seed)
    clean = [read_image(p) for p in split_paths(root, "val")]
    lq, gt = [], []
    for i in range(n):
        c = random_scaled_crop(clean[i % len(clean)], size, rng, (0.35, 1.0))
        lq.append(D.apply_spec(c, {"name": degradation, "random": True}, rng))
        gt.append(c)
    return (np.stack(lq).transpose(0, 3, 1, 2).astype(np.float32),
            np.stack(gt).transpose(0, 3, 1, 2).astype(np.float32))


def branch_gradients(net, lq: np.ndarray, gt: np.ndarray) -> Tuple[float, Dict[str, Tuple[float, float]]]:
    """(loss, {branch: (|grad|, |weights|)}) for the trainable parameters, grouped by their first 3 name parts."""
    import mindspore as ms
    import mindspore.ops as ops

    x, y = ms.Tensor(lq), ms.Tensor(gt)
    params = net.trainable_params()

    def loss_fn(x, y):
        return ops.abs(net(x) - y).mean()

    grads = ms.grad(loss_fn, grad_position=None, weights=params)(x, y)
    out: Dict[str, Tuple[float, float]] = {}
    for p, g in zip(params, grads):
        key = ".".join(p.name.split(".")[:3])
        g2, w2 = out.get(key, (0.0, 0.0))
        out[key] = (g2 + float((g.asnumpy() ** 2).sum()), w2 + float((p.asnumpy() ** 2).sum()))
    return float(loss_fn(x, y).asnumpy()), {k: (float(np.sqrt(a)), float(np.sqrt(b))) for k, (a, b) in out.items()}


def main(argv=None) -> int:
    from ms_osr.config import parse_value
    from ms_osr.inference import load_model
    from ms_osr.registry import create_model
    from ms_osr.runtime import setup_runtime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="trained OSR checkpoint (its config beside it)")
    p.add_argument("--fresh", help="registered OSR model: a new wrapper around the checkpoint's restorer")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="--fresh constructor overrides")
    p.add_argument("--degradation", default="rain")
    p.add_argument("--data-root", default="data/photos")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    setup_runtime("cpu", "graph", seed=args.seed)
    import mindspore as ms

    net = load_model(args.ckpt).net
    label = args.ckpt
    if args.fresh:
        kw = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
        fresh = create_model(args.fresh, **kw)
        weights = {k: ms.Parameter(v.asnumpy(), name=k) for k, v in net.parameters_dict().items()
                   if k.startswith("restorer.")}
        missing = [k for k in ms.load_param_into_net(fresh, weights)[0] if k.startswith("restorer.")]
        if missing:
            print(f"error: {args.ckpt}: restorer does not fit {args.fresh} ({len(missing)} tensors missing)")
            return 1
        net, label = fresh, f"{args.fresh} (fresh transforms) around the restorer of {args.ckpt}"
    lq, gt = crops(args.data_root, args.degradation, args.batch, args.size, args.seed)
    loss, rows = branch_gradients(net, lq, gt)
    print(f"{label}: L1 loss {loss:.4f} on {args.batch} {args.degradation} crops of {args.size}px")
    print(f"{'parameters':52s} {'|grad|':>10s} {'|w|':>10s}")
    for k, (g, w) in sorted(rows.items()):
        print(f"{k:52s} {g:10.3e} {w:10.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
