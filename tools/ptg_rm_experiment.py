#!/usr/bin/env python
"""Evaluate a trained PTG-RM wrapper: base vs base+PTG-RM, and the cost of a distilled OSF.

    python tools/ptg_rm_experiment.py --config configs/ptg_rm_restormer_small_cpu.yaml \\
        --ckpt runs/ptg_rm_restormer_small/last.ckpt [--distill-steps 300] [--distill-images 64]

1. Builds the wrapper of ``--config`` and loads ``--ckpt`` (strict).
2. Validation PSNR/SSIM (the config's val set) of the frozen base alone and of base + PTG-RM.
3. Trains a :class:`~ms_osr.models.osf.DistilledOSF` head to reproduce the wrapper's OSF provider on
   random training patches (cosine loss), swaps it in and validates again: the quality cost of
   inference without the prior G.  The head is saved next to the checkpoint (``distilled_osf.ckpt``).
4. Ablation "g = mean": the OSF provider is replaced by a constant, the mean of the prior's vectors over
   the validation images, and the trained wrapper validated again.  If PSNR/SSIM do not move, the
   trained module does not use the image-specific part of the prior (``mean |delta out|`` shows by how
   much the refined images change at all).  Ablation "g of another image": each validation image gets the
   prior vector of another one (fixed derangement) - g stays a genuine prior vector, only the wrong one.
5. Per-image inference time (val crop, batch 1, steady state) of each variant.
Prints a Markdown table.

``--dump-val DIR`` only writes the config's validation pairs as 16-bit PNGs (``DIR/lq``, ``DIR/gt``) and
exits, so that ``test.py --ckpt ... --input DIR/lq --gt DIR/gt`` scores the same images.

``--calibrate-osf OUT.npz [--calibrate-images N]`` only writes the per-dimension mean/std of the config's
restoration prior (its raw vector, ``osf_kwargs`` without ``standardize``) over N random training patches
and exits; a config then uses them with ``osf_kwargs: {..., standardize: OUT.npz}``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ms_osr  # noqa: E402,F401  (oneDNN cap before mindspore)
from ms_osr.cli import run_cli  # noqa: E402
from ms_osr.errors import UsageError  # noqa: E402


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


def _shuffled_eval(net, view, vectors, metrics, perm):
    """Scores of ``net`` when image i gets the prior vector of image ``perm[i]`` (a constant provider whose
    value is set per image: a parameter, so no recompile); also the outputs, for |delta out|."""
    import numpy as np
    from mindspore import Tensor

    from ms_osr.metrics import calculate_psnr, calculate_ssim
    from ms_osr.models.osf import ConstantOSF, replace_osf
    from ms_osr.training.evaluate import restore

    const = ConstantOSF(vector=vectors[0])
    replace_osf(net, const)
    mc = dict(metrics or {})
    kw = dict(crop_border=int(mc.get("crop_border", 0)), test_y_channel=bool(mc.get("test_y_channel", False)),
              convention=mc.get("convention", "aio"))
    rows, outs = [], []
    for i in range(len(view)):
        lq, gt, name = view.get(i)
        const.g.set_data(Tensor(vectors[perm[i]].reshape(1, -1).astype(np.float32)))
        out = restore(net, lq)
        outs.append(out)
        n = str(name)
        rows.append((n.split("__", 1)[1] if "__" in n else "all", calculate_psnr(out, gt, **kw), calculate_ssim(out, gt, **kw)))
    groups = {g: {"psnr": float(np.mean([r[1] for r in rows if r[0] == g]))} for g in sorted({r[0] for r in rows})}
    return {"psnr": float(np.mean([r[1] for r in rows])), "ssim": float(np.mean([r[2] for r in rows])),
            "groups": groups}, outs


def _outputs(net, view):
    from ms_osr.training.evaluate import restore

    return [restore(net, view.get(i)[0]) for i in range(len(view))]


def _mean_abs_delta(a, b) -> float:
    import numpy as np

    return float(np.mean([np.abs(x - y).mean() for x, y in zip(a, b)]))


def _dump_val(view, folder: str) -> int:
    """The validation pairs as 16-bit PNGs: ``NN_<name>.png`` in ``folder/lq`` and ``folder/gt``."""
    import numpy as np

    from ms_osr.data.io import write_image

    for sub in ("lq", "gt"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    lo, hi = np.inf, -np.inf
    for i in range(len(view)):
        lq, gt, name = view.get(i)
        lo, hi = min(lo, float(lq.min())), max(hi, float(lq.max()))
        stem = f"{i:02d}_{os.path.splitext(os.path.basename(str(name)))[0]}.png"
        write_image(os.path.join(folder, "lq", stem), lq, bit_depth=16)
        write_image(os.path.join(folder, "gt", stem), gt, bit_depth=16)
    print(f"{len(view)} pairs written to {folder}/lq and {folder}/gt (degraded input range [{lo:.3f}, {hi:.3f}])")
    return 0


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


def _calibrate(cfg: dict, out: str, n: int) -> int:
    """Standardisation statistics of the config's restoration prior on ``n`` random training patches."""
    import numpy as np

    from ms_osr.data import datasets as DS
    from ms_osr.training.osf_distill import calibrate_standardization

    kw = cfg["model"]["kwargs"]
    if kw.get("osf") != "restoration_prior":
        raise UsageError(f"--calibrate-osf needs osf: restoration_prior in the config, got {kw.get('osf')!r}")
    imgs = _patches(DS.build_source(cfg["data"]["train"], train=True), n, int(cfg["data"]["patch_size"]), seed=3)
    t0 = time.perf_counter()
    st = calibrate_standardization(imgs, out, **(kw.get("osf_kwargs") or {}))
    raw = st["raw"]
    z = (raw - st["mean"]) / st["std"]

    def spread(v):  # cosine of the L2-normalised vectors to their mean direction
        u = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        m = u.mean(axis=0)
        c = u @ (m / max(np.linalg.norm(m), 1e-12))
        return f"{c.mean():.3f} (min {c.min():.3f})"

    print(f"{out}: {raw.shape[1]}-d, {len(raw)} training patches in {time.perf_counter() - t0:.0f} s; cosine to the "
          f"mean direction: raw {spread(raw)}, standardised {spread(z)}")
    return 0


def experiment(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--ckpt", help="trained wrapper weights (train.py last.ckpt / best.ckpt)")
    p.add_argument("--distill-steps", type=int, default=300)
    p.add_argument("--distill-images", type=int, default=64, help="random training patches for the head")
    p.add_argument("--distill-width", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dump-val", metavar="DIR", help="write the val pairs to DIR/lq, DIR/gt (16-bit PNG) and exit")
    p.add_argument("--calibrate-osf", metavar="OUT.npz",
                   help="write the restoration prior's per-dimension mean/std (training patches) and exit")
    p.add_argument("--calibrate-images", type=int, default=128, help="random training patches for --calibrate-osf")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config overrides as in train.py")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    args = p.parse_args(argv)

    from ms_osr.build import create_model
    from ms_osr.checkpoint import save_checkpoint
    from ms_osr.config import load_config
    from ms_osr.data import datasets as DS
    from ms_osr.models.osf import ConstantOSF, DistilledOSF, replace_osf
    from ms_osr.models.ptg_rm import count_params
    from ms_osr.runtime import setup_runtime
    from ms_osr.schema import apply_overrides, resolve, run_name
    from ms_osr.training.osf_distill import osf_vectors, train_distilled_osf

    cfg = resolve(apply_overrides(load_config(args.config), args.overrides), run_name(args.config), args.config)
    vc = cfg["data"]["val"]
    view = DS.EvalView(DS.build_source(vc, train=False), crop=vc.get("crop"))
    if args.dump_val:
        return _dump_val(view, args.dump_val)
    setup_runtime("cpu", "graph", seed=int(cfg["runtime"].get("seed") or 0), threads=args.threads)
    if args.calibrate_osf:
        return _calibrate(cfg, args.calibrate_osf, args.calibrate_images)
    if not args.ckpt:
        p.error("--ckpt is required (unless --dump-val or --calibrate-osf)")
    net = create_model(cfg["model"]["name"], ckpt=args.ckpt, **cfg["model"]["kwargs"])
    metrics = vc.get("metrics")
    rows = []
    base_res, base_t = _timed_eval(net.base, view, metrics)
    base_out = _outputs(net.base, view)
    rows.append(("base alone", base_res, base_t, count_params(net.base), 0))
    ptg_res, ptg_t = _timed_eval(net, view, metrics)
    rows.append(("base + PTG-RM (prior OSF)", ptg_res, ptg_t, count_params(net), count_params(net.osf)))
    import numpy as np

    from ms_osr.training.osf_distill import cosine_stats

    prior = net.osf
    full_val = np.stack([view.get(i)[0].transpose(2, 0, 1) for i in range(len(view))]).astype(np.float32)
    teacher_val = osf_vectors(prior, full_val, batch_size=1)
    ptg_out = _outputs(net, view)
    # ablation: the image-specific part of g removed (g = its mean over the validation images)
    g_mean = teacher_val.mean(axis=0)
    g_spread = cosine_stats(teacher_val, np.broadcast_to(g_mean, teacher_val.shape))
    replace_osf(net, ConstantOSF(vector=g_mean))
    abl_res, abl_t = _timed_eval(net, view, metrics)
    abl_delta = _mean_abs_delta(_outputs(net, view), ptg_out)
    rows.append(("base + PTG-RM, g = mean over val (ablation)", abl_res, abl_t, count_params(net), 0))
    # ablation 2: every image gets the prior vector of another validation image (a fixed derangement),
    # so g stays a real prior vector (on the unit sphere, unlike the mean) but belongs to the wrong image
    n_val = len(view)
    perm = np.random.default_rng(0).permutation(n_val)
    while n_val > 1 and (perm == np.arange(n_val)).any():
        perm = np.random.default_rng(int(perm[0]) + 7 * n_val).permutation(n_val)
    own_res, own_out = _shuffled_eval(net, view, teacher_val, metrics, np.arange(n_val))
    own_check = max(float(np.abs(a - b).max()) for a, b in zip(own_out, ptg_out))
    shuf_res, shuf_out = _shuffled_eval(net, view, teacher_val, metrics, perm)
    shuf_delta = _mean_abs_delta(shuf_out, ptg_out)
    rows.append(("base + PTG-RM, g of another val image (ablation)", shuf_res, float("nan"), count_params(net), 0))
    replace_osf(net, prior)

    train_src = DS.build_source(cfg["data"]["train"], train=True)
    imgs = _patches(train_src, args.distill_images, int(cfg["data"]["patch_size"]), seed=1)
    val_imgs = _patches(DS.build_source(vc, train=False), 16, int(cfg["data"]["patch_size"]), seed=2)
    head = DistilledOSF(out_dim=int(net.osf.out_dim), width=args.distill_width, hidden=256)
    t0 = time.perf_counter()
    rep = train_distilled_osf(head, prior, imgs, steps=args.distill_steps, batch_size=8, lr=1e-3,
                              val_images=val_imgs, log_every=max(1, args.distill_steps // 5))
    distill_s = time.perf_counter() - t0
    save_checkpoint(head, os.path.join(os.path.dirname(args.ckpt), "distilled_osf.ckpt"))
    replace_osf(net, head)
    rep["val_full"] = cosine_stats(osf_vectors(head, full_val, batch_size=1), teacher_val)
    dis_res, dis_t = _timed_eval(net, view, metrics)
    dis_delta = _mean_abs_delta(_outputs(net, view), ptg_out)
    rows.append(("base + PTG-RM (distilled OSF)", dis_res, dis_t, count_params(net), count_params(head)))

    print(f"\nconfig {args.config}, ckpt {args.ckpt}; val: {len(view)} images")
    print(f"distillation: {args.distill_steps} steps on {len(imgs)} patches in {distill_s:.0f} s; cosine to the "
          f"prior: train {rep['train']['cos_mean']:.3f}, val patches {rep['val']['cos_mean']:.3f}, "
          f"val images {rep['val_full']['cos_mean']:.3f} (min {rep['val_full']['cos_min']:.3f})")
    print(f"prior vectors on the val images vs their mean: cosine {g_spread['cos_mean']:.3f} "
          f"(min {g_spread['cos_min']:.3f}); mean |delta out| vs prior OSF (0..1 scale): g = mean "
          f"{abl_delta:.2e}, g of another image {shuf_delta:.2e}, distilled {dis_delta:.2e}; base vs PTG-RM "
          f"{_mean_abs_delta(base_out, ptg_out):.2e} (own g through the constant provider: max |delta| "
          f"{own_check:.1e})\n")
    print("| variant | PSNR | SSIM | params (all) | OSF params | s / image |")
    print("|---|---|---|---|---|---|")
    for name, res, t, n_all, n_osf in rows:
        print(f"| {name} | {res['psnr']:.2f} | {res['ssim']:.4f} | {n_all:,} | {n_osf:,} | {t:.3f} |")
    print(f"| (degraded input) | {base_res['input_psnr']:.2f} | {base_res['input_ssim']:.4f} | | | |")
    print("\nper degradation (PSNR): " + "; ".join(
        f"{g}: base {base_res['groups'][g]['psnr']:.2f} / PTG-RM {ptg_res['groups'][g]['psnr']:.2f} / "
        f"distilled {dis_res['groups'][g]['psnr']:.2f} / g = mean {abl_res['groups'][g]['psnr']:.2f} / "
        f"g of another image {shuf_res['groups'][g]['psnr']:.2f}" for g in base_res["groups"]))
    return 0


def main(argv=None) -> int:
    return run_cli(experiment, argv)


if __name__ == "__main__":
    sys.exit(main())
