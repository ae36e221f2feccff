"""test.py's demo (no arguments): the shipped checkpoints on held-out images, and the helpers the OSR
protocol shares with it (held-out images, the degradations a training config saw)."""
from __future__ import annotations

import glob
import os
import time
from typing import Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository (DEFAULT_ROOT is relative)

# Demo: the degradations applied to the held-out images (display label, registry name).
DEMO_DEGRADATIONS = (("noise", "noise_25"), ("rain", "rain"), ("haze", "haze"))


def trained_degradations(cfg: dict) -> list:
    """Degradation names a training config says the model saw (best effort; [] if unknown)."""
    found = []

    def visit(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                visit(v, k)
        elif isinstance(node, (list, tuple)) and key in ("degradations", "tasks", "known", "train_degradations"):
            for item in node:
                name = item.get("name") if isinstance(item, dict) else item
                if isinstance(name, str) and name not in found:
                    found.append(name)

    if not isinstance(cfg, dict):
        return found
    data = cfg.get("data", cfg)
    # the training split is what the model saw; validation lists may add unseen ones
    visit(data.get("train", data) if isinstance(data, dict) else data)
    return found


def centre_crop(img, size: int):
    h, w = img.shape[:2]
    if size <= 0 or (h <= size and w <= size):
        return img
    ch, cw = min(h, size), min(w, size)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return img[y0:y0 + ch, x0:x0 + cw].copy()


def heldout_images(size: int, folder: Optional[str] = None, limit: int = 0) -> dict:
    """Clean evaluation images: a folder, else the photo corpus' test split when it is built (16 photographs
    never trained on), else the 4 scikit-image samples never used for training."""
    from .data.corpus import DEFAULT_ROOT, CorpusError, split_paths
    from .data.io import list_images, read_image

    if not folder:
        try:
            paths = split_paths(os.path.join(ROOT, DEFAULT_ROOT), "test")[:limit or None]
            return {os.path.splitext(os.path.basename(p))[0]: centre_crop(read_image(p), size) for p in paths}
        except CorpusError:
            print("note: photo corpus not built (python tools/get_photos.py); using scikit-image's held-out samples")
    if folder:
        paths = list_images(folder)[:limit or None]
        return {os.path.splitext(os.path.basename(p))[0]: centre_crop(read_image(p), size) for p in paths}
    from .data.datasets import heldout_sample_images

    return {name: centre_crop(img, size) for name, img in heldout_sample_images()[:limit or None]}


def run_demo(args, load: Callable, make_restorer: Callable) -> int:
    """test.py without arguments: every shipped checkpoint on the held-out images under each degradation of
    :data:`DEMO_DEGRADATIONS`; ``load(args, ckpt=..., config='', model='')`` and ``make_restorer(net, args)``
    are test.py's."""
    from .build import ModelLoadError
    from .data.io import write_image
    from .evaluation import (Sample, average_records, check_output_writable, evaluate_samples, resolve_conventions,
                             synthetic_samples)
    from .tables import comparison_grid, format_table, markdown_table, write_csv, write_json
    from .fileio import atomic_write_text
    from .reports import err, finish, write_each

    t0 = time.perf_counter()
    ckpts = sorted(glob.glob(os.path.join(args.ckpt_dir, "*.ckpt")))
    if not ckpts:
        err(f"no checkpoint shipped in {args.ckpt_dir}/ (expected <name>.ckpt with <name>.yaml): nothing to "
            f"demonstrate. Train one with train.py or convert one with tools/convert_pth.py, then run "
            f"`python test.py --ckpt FILE --input IMG`.")
        return 2
    out_dir = args.output or os.path.join("results", "demo")
    check_output_writable(out_dir)
    conventions = resolve_conventions("aio" if args.metric_convention == "both" else args.metric_convention)
    images = heldout_images(args.demo_size, args.images, args.demo_images)
    degs = [d for _, d in DEMO_DEGRADATIONS]
    label_of = {d: lbl for lbl, d in DEMO_DEGRADATIONS}
    # Degrade once (seeded by image and degradation name), reuse for every model.
    samples = []
    for smp in synthetic_samples(images, degs, seed=args.seed):
        degraded, clean = smp.load()
        name = smp.name[:-len(smp.group)] + label_of[smp.group]  # <image>_<registry name> -> <image>_<label>
        samples.append(Sample(name, (lambda d=degraded, c=clean: (d, c)), group=label_of[smp.group]))
    print(f"demo: {len(images)} held-out images ({', '.join(images)}) x {len(degs)} degradations "
          f"({', '.join(label_of[d] for d in degs)}), {len(ckpts)} checkpoint(s) in {args.ckpt_dir}", flush=True)
    errors, results, names, known_of = [], {}, [], {}
    for ck in ckpts:
        try:
            loaded = load(args, ckpt=ck, config="", model="")
        except ModelLoadError as exc:
            errors.append(str(exc))
            continue
        label = os.path.splitext(os.path.basename(ck))[0]
        restorer = make_restorer(loaded.net, args)
        t1 = time.perf_counter()
        res = evaluate_samples(restorer, samples, os.path.join(out_dir, label), conventions, keep_images=True)
        print(f"  {label} ({loaded.name}): {len(res.records)} images in {time.perf_counter() - t1:.1f} s", flush=True)
        results[label] = res
        names.append(label)
        known_of[label] = trained_degradations(loaded.config)
        errors += res.errors
    if not results:
        return finish(errors or ["no checkpoint could be loaded"])
    sfx = "" if len(conventions) == 1 else f"_{conventions[0]}"
    rows = []
    for label in names:
        for avg in average_records(results[label].records, results[label].metric_columns, by="group"):
            deg = avg["group"]
            reg = dict(DEMO_DEGRADATIONS)[deg]
            known = known_of[label]
            seen = "?" if not known else ("yes" if (deg in known or reg in known or
                                                    (deg == "noise" and any("noise" in k for k in known))) else "no")
            rows.append({"model": label, "degradation": deg, "trained on": seen, "images": avg["images"],
                         "PSNR degraded": avg[f"psnr_in{sfx}"], "PSNR restored": avg[f"psnr{sfx}"],
                         "95% CI": f"[{avg[f'psnr{sfx}_lo']:.2f}, {avg[f'psnr{sfx}_hi']:.2f}]",
                         "SSIM degraded": avg[f"ssim_in{sfx}"], "SSIM restored": avg[f"ssim{sfx}"],
                         "offset": avg["offset"]})
    cols = ["model", "degradation", "trained on", "images", "PSNR degraded", "PSNR restored", "95% CI",
            "SSIM degraded", "SSIM restored", "offset"]
    print()
    print(format_table(rows, cols, title=f"PSNR (dB) / SSIM, {conventions[0]} convention, seed {args.seed}"))
    # Grid: one row per (image, degradation): degraded | restored by each model | clean.
    grid_rows = []
    for i, smp in enumerate(samples):
        first = results[names[0]].records
        rec0 = next((r for r in first if r["image"] == smp.name), None)
        if rec0 is None:
            continue
        degraded, _, clean = rec0["_images"]
        row = [(f"degraded {smp.name} {rec0[f'psnr_in{sfx}']:.2f}dB", degraded)]
        for label in names:
            rec = next(r for r in results[label].records if r["image"] == smp.name)
            row.append((f"{label} {rec[f'psnr{sfx}']:.2f}dB", rec["_images"][1]))
        row.append(("clean", clean))
        grid_rows.append(row)
    grid_path = os.path.join(out_dir, "comparison.png")
    write_each([(write_image, grid_path, (comparison_grid(grid_rows, cell=min(args.demo_size, 256)),)),
                (write_csv, os.path.join(out_dir, "metrics.csv"), (rows, cols)),
                (write_json, os.path.join(out_dir, "metrics.json"),
                 ({"seed": args.seed, "convention": conventions[0], "rows": rows, "errors": errors,
                   "per_image": {k: v.records for k, v in results.items()}},)),
                (atomic_write_text, os.path.join(out_dir, "metrics.md"), (markdown_table(rows, cols),))]
               + [(write_image, os.path.join(out_dir, "clean", f"{name}.png"), (img,)) for name, img in images.items()]
               + [(write_image, os.path.join(out_dir, "degraded", f"{smp.name}.png"), (smp.load()[0],))
                  for smp in samples], errors)
    print(f"\nwrote restored images, {grid_path} and metrics.csv/.json/.md to {out_dir} "
          f"({time.perf_counter() - t0:.1f} s)")
    return finish(errors)
