#!/usr/bin/env python
"""Restore and evaluate images with ms_osr models.

    python test.py                                   # demo: shipped ckpt/*.ckpt on held-out sample images
    python test.py --ckpt ckpt/res_hair_small.ckpt --input photo.png --output out/
    python test.py --ckpt runs/x/best.ckpt --input noisy/ --gt clean/ --metric-convention both
    python test.py --model restormer_small --ckpt w.ckpt --input big.png --tile 512 --tile-overlap 32
    python test.py --ckpt w.ckpt --benchmark bsd68 --data-root /data/CBSD68 --sigma 15 25 50
    python test.py --ckpt ckpt/res_hair_small.ckpt --benchmark photos --seeds 0 1 2     # the photo corpus' test split
    python test.py --ckpt a.ckpt --benchmark photos --compare b.ckpt                    # paired differences b - a
    python test.py --ckpt w.ckpt --export mindir --export-size 256 256
    python test.py --protocol osr --ckpt restorer.ckpt --osr-ckpt osr.ckpt --known rain

The model comes from --model, --config or the training config beside the checkpoint
(``<ckpt stem>.yaml`` or the run folder's ``config.yaml``).  With ground truth, PSNR/SSIM
are printed per image and on average and written to metrics.csv / metrics.json /
metrics.md in the output folder.  Files that cannot be read are reported at the end and
make the exit status non-zero; the run goes on with the other files.
See docs/testing.md.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)

import ms_osr  # noqa: E402,F401  (oneDNN cap before mindspore loads)
from ms_osr.demo import heldout_images, run_demo, trained_degradations  # noqa: E402
from ms_osr.errors import UsageError  # noqa: E402
from ms_osr.reports import finish, report  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from ms_osr.cli import add_debug_arg
    from ms_osr.data.corpus import SPLITS
    from ms_osr.evaluation import BENCHMARKS
    from ms_osr.runtime import add_runtime_args

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--ckpt", help="MindSpore .ckpt (or PyTorch .pth, converted on the fly)")
    g.add_argument("--model", help="registered model name (default: from the config beside --ckpt)")
    g.add_argument("--config", help="training config YAML with model: {name, kwargs}")
    g.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model constructor overrides")
    g.add_argument("--ema", action="store_true", help="load the EMA weights stored under 'ema.' in the checkpoint")
    g.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module that registers extra models (repeatable)")
    g.add_argument("--list-models", action="store_true", help="print the registered model names and exit")
    g = p.add_argument_group("data")
    g.add_argument("--input", help="degraded image or folder")
    g.add_argument("--gt", help="ground-truth image or folder (matched to inputs by file name)")
    g.add_argument("--output", help="output folder (or an image path for a single --input)")
    g.add_argument("--benchmark", choices=list(BENCHMARKS) + ["photos"],
                   help="evaluate on a benchmark in its official layout")
    g.add_argument("--data-root", help="benchmark root folder; with --data-config: the data.root to use; with list "
                                       "files: the folder their paths are relative to (or re-rooted under)")
    g.add_argument("--split", choices=["train", "test"], default="test",
                   help="benchmarks whose root holds train and test splits side by side: which one (default test)")
    g.add_argument("--data-config", help="evaluate the data.val set of this training config (with --data-root as "
                                         "its data.root); see docs/datasets.md")
    g.add_argument("--skip-bad", action="store_true",
                   help="--data-config / list files: leave out pairs with a missing or unreadable file "
                        "(default: list them and stop)")
    g.add_argument("--sigma", type=float, nargs="+", default=[15, 25, 50], help="BSD68 noise levels")
    g.add_argument("--crop-multiple", type=int, default=16,
                   help="benchmarks: centre-crop pairs to a multiple of this (all-in-one protocol: 16; 0 = off)")
    g.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    g = p.add_argument_group("inference")
    g.add_argument("--tile", type=int, default=None,
                   help="tile size (default: whole image, or tiles when it would exceed --max-memory)")
    g.add_argument("--tile-overlap", type=int, default=32, help="overlap between tiles in pixels")
    g.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="memory for one whole-image pass, e.g. 8G; larger images are tiled "
                        "(default: min(2G, half the available memory))")
    g.add_argument("--shapes", default="auto", choices=["auto", "dynamic", "bucket", "static"],
                   help="compiled graphs for images of many sizes (docs/testing.md; default auto: one dynamic-shape "
                        "graph where the model compiles that way, else size buckets)")
    g.add_argument("--max-graphs", type=int, default=4, help="static/bucket graphs kept compiled at once")
    g.add_argument("--global-max-side", type=int, default=1024,
                   help="with --tile: image-level vectors (Res-HAIR) come from the whole image downscaled to this side")
    g.add_argument("--self-ensemble", action="store_true", help="average the 8 flip/rotation variants (x8 slower)")
    g = p.add_argument_group("metrics")
    g.add_argument("--metric-convention", default="both", choices=["aio", "basicsr", "both"],
                   help="aio: RGB, clipped, skimage 7x7 SSIM (AirNet/PromptIR/HAIR/OSR); "
                        "basicsr: 11x11 Gaussian SSIM (Restormer/MATLAB); both (default)")
    g.add_argument("--crop-border", type=int, default=0, help="pixels shaved from each border before metrics")
    g.add_argument("--y-channel", action="store_true", help="metrics on BT.601 Y (MATLAB rgb2ycbcr)")
    g = p.add_argument_group("export")
    g.add_argument("--export", choices=["mindir"], help="export the network (checked against the network output)")
    g.add_argument("--export-size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    g.add_argument("--export-path", help="MindIR file (default: <output>/<model>.mindir)")
    g = p.add_argument_group("protocols and demo")
    g.add_argument("--protocol", choices=["osr"], help="osr: restorer vs reprogrammed restorer on every degradation")
    g.add_argument("--hair-diagnostics", action="store_true",
                   help="Res-HAIR --ckpt: selection entropy, kernel spread and GIV separability on one degraded crop "
                        "per (photo, degradation) of the photo corpus (--data-root, default data/photos; test split; "
                        "--degradations, default noise_25 rain haze)")
    g.add_argument("--osr-ckpt", help="--protocol osr: checkpoint of the reprogrammed restorer")
    g.add_argument("--osr-config", help="--protocol osr: its config (default: beside --osr-ckpt)")
    g.add_argument("--known", nargs="*", default=None,
                   help="--protocol osr: degradations seen in training (default: from the OSR config)")
    g.add_argument("--degradations", nargs="*", default=None,
                   help="--protocol osr / --benchmark photos: degradations to evaluate "
                        "(photos default: noise_15 noise_25 noise_50 rain haze)")
    g.add_argument("--photo-crop", type=int, default=0, metavar="SIZE",
                   help="--benchmark photos: evaluate the centre SIZE x SIZE of each test photo (0: whole photo)")
    g.add_argument("--photo-split", choices=SPLITS, default="test",
                   help="--benchmark photos: the corpus split (default test); another one, e.g. photos a model "
                        "never trained on, chooses between candidates without touching the test split; its "
                        "photos are scaled like the test split's first (long side 1024 px)")
    g.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="--benchmark photos: degradation seeds; each photo is degraded once per seed and the seeds "
                        "are averaged per photo before the confidence interval")
    g.add_argument("--compare", metavar="CKPT",
                   help="also run this checkpoint on the identical inputs and report the paired difference "
                        "(it minus --ckpt) with a paired-bootstrap 95%% CI and images won/lost")
    g.add_argument("--compare-config", help="--compare: its config (default: beside the checkpoint)")
    g.add_argument("--images", help="--protocol osr: folder of clean images (default: held-out sample images)")
    g.add_argument("--demo-size", type=int, default=256, help="demo/protocol: centre crop of the sample images")
    g.add_argument("--demo-images", type=int, default=0, help="demo/protocol: use only the first N images (0: all)")
    g.add_argument("--ckpt-dir", default=os.path.join(ROOT, "ckpt"), help="demo: folder of shipped checkpoints")
    add_runtime_args(p)
    add_debug_arg(p)
    return p


def parse_overrides(items):
    from ms_osr.config import split_override

    return dict(split_override(item) for item in items)


def make_restorer(net, args):
    from ms_osr.inference import Restorer
    from ms_osr.memory_plan import MemoryPlanner, parse_memory

    limit = parse_memory(args.max_memory) if args.max_memory is not None else None
    return Restorer(net, tile=args.tile, tile_overlap=args.tile_overlap, self_ensemble=args.self_ensemble,
                    global_max_side=args.global_max_side, progress=sys.stderr.isatty(), shapes=args.shapes,
                    max_graphs=args.max_graphs, memory=MemoryPlanner.for_net(net, limit),
                    notify=lambda msg: print(f"note: {msg}", flush=True))


def _settings(args, loaded, inputs: dict) -> dict:
    """What metrics.json needs to say how it was made: the model, how it ran, and which inputs."""
    return {"model": loaded.name, "kwargs": loaded.kwargs, "ckpt": loaded.ckpt, "config": loaded.config_path,
            "tile": args.tile, "tile_overlap": args.tile_overlap, "global_max_side": args.global_max_side,
            "self_ensemble": args.self_ensemble, "metric_convention": args.metric_convention,
            "crop_border": args.crop_border, "y_channel": args.y_channel, "seed": args.seed, "inputs": inputs}


def _benchmark_inputs(args) -> dict:
    """The arguments that choose a benchmark's inputs, defaults resolved (for the photo corpus: root, split, crop,
    seeds, degradations): what :func:`run_benchmark` runs and records in metrics.json; the other modes record their
    --input/--gt/--data-config the same way."""
    if args.benchmark == "photos":
        from ms_osr.data.corpus import DEFAULT_ROOT
        from ms_osr.evaluation import PHOTO_DEGRADATIONS

        return {"benchmark": "photos", "data_root": args.data_root or DEFAULT_ROOT, "photo_split": args.photo_split,
                "photo_crop": args.photo_crop, "seeds": list(args.seeds),
                "degradations": list(args.degradations or PHOTO_DEGRADATIONS), "limit": args.limit}
    return {"benchmark": args.benchmark, "data_root": args.data_root, "split": args.split, "sigma": args.sigma,
            "crop_multiple": args.crop_multiple, "limit": args.limit}


# --------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------


def load(args, ckpt=None, config=None, model=None):
    from ms_osr.build import load_model

    return load_model(ckpt or args.ckpt, model=model if model is not None else args.model,
                      config=config if config is not None else args.config,
                      overrides=parse_overrides(args.set), namespace="ema." if args.ema else "")


def run_files(args) -> int:
    from ms_osr.evaluation import (check_output_safe, collect_samples, evaluate_samples, resolve_conventions)
    from ms_osr.data.io import is_image_file

    conventions = resolve_conventions(args.metric_convention)
    samples, errors, notes = collect_samples(args.input, args.gt)
    if args.limit:
        samples = samples[:args.limit]
    output_file = None
    out_dir = args.output or os.path.join("results", os.path.splitext(os.path.basename(args.ckpt))[0])
    if args.output and os.path.isfile(args.input) and is_image_file(args.output):
        output_file, out_dir = args.output, os.path.dirname(os.path.abspath(args.output))
    check_output_safe(out_dir, samples, output_file)
    for n in notes:
        print(f"note: {n}")
    loaded = load(args)
    restorer = make_restorer(loaded.net, args)
    print(f"model {loaded.name} from {loaded.ckpt}: {len(samples)} image(s) -> {output_file or out_dir}")

    def progress(rec):
        msg = f"  {rec['image']}: {rec['width']}x{rec['height']} in {rec['time_s']:.2f} s"
        if "psnr" in rec or f"psnr_{conventions[0]}" in rec:
            sfx = "" if len(conventions) == 1 else f"_{conventions[0]}"
            msg += (f", PSNR {rec[f'psnr_in{sfx}']:.2f} -> {rec[f'psnr{sfx}']:.2f} dB, "
                    f"SSIM {rec[f'ssim_in{sfx}']:.4f} -> {rec[f'ssim{sfx}']:.4f}")
        print(msg, flush=True)

    result = evaluate_samples(restorer, samples, out_dir, conventions, args.crop_border, args.y_channel,
                              output_file=output_file, on_record=progress)
    result.errors = errors + result.errors
    report(result, out_dir if not output_file else None, f"{loaded.name} on {args.input}",
           settings=_settings(args, loaded, {"input": args.input, "gt": args.gt, "limit": args.limit}))
    if output_file and any("output" in r for r in result.records):
        print(f"\nwrote {output_file}")
    if args.export:
        do_export(args, loaded, out_dir)
    return finish(result.errors)


def run_benchmark(args) -> int:
    from ms_osr.evaluation import (benchmark_samples, check_output_safe, evaluate_samples, photo_samples,
                                   resolve_conventions)

    conventions = resolve_conventions(args.metric_convention)
    inputs = _benchmark_inputs(args)  # the defaults resolved once: what runs is what metrics.json records
    if args.benchmark == "photos":
        samples, errors = photo_samples(inputs["data_root"], inputs["degradations"], inputs["seeds"],
                                        split=inputs["photo_split"], crop=inputs["photo_crop"]), []
    elif not args.data_root:
        raise UsageError("--benchmark needs --data-root")
    else:
        samples, errors = benchmark_samples(args.benchmark, args.data_root, sigmas=args.sigma, seed=args.seed,
                                            crop_multiple=args.crop_multiple, split=args.split)
    if args.limit:
        samples = samples[:args.limit]
    stem = os.path.splitext(os.path.basename(args.ckpt))[0]
    out_dir = args.output or os.path.join("results", f"{args.benchmark}_{stem}")
    check_output_safe(out_dir, samples)
    loaded = load(args)
    restorer = make_restorer(loaded.net, args)
    where = args.benchmark + (f" ({args.photo_split} split)" if args.benchmark == "photos" and
                              args.photo_split != "test" else "")
    print(f"model {loaded.name} on {where} ({len(samples)} images) -> {out_dir}", flush=True)
    result = evaluate_samples(restorer, samples, out_dir, conventions, args.crop_border, args.y_channel)
    result.errors = errors + result.errors
    by = "group" if any(s.group for s in samples) else ""
    report(result, out_dir, f"{loaded.name} on {where}", by=by,
           settings=_settings(args, loaded, inputs))
    if args.compare:
        compare(args, samples, result, out_dir, conventions, by)
    return finish(result.errors)


def compare(args, samples, result, out_dir: str, conventions, by: str) -> None:
    """Run ``--compare`` on the same samples and report ``it - --ckpt`` per group with paired CIs."""
    from ms_osr.evaluation import (evaluate_samples, format_table, markdown_table, paired_columns, paired_rows,
                                   write_json)
    from ms_osr.fileio import atomic_write_text

    other = load(args, ckpt=args.compare, config=args.compare_config or "", model="")
    b_dir = os.path.join(out_dir, "compare_" + os.path.splitext(os.path.basename(args.compare))[0])
    print(f"\ncomparing with {other.name} from {other.ckpt} on the same {len(samples)} inputs -> {b_dir}", flush=True)
    res_b = evaluate_samples(make_restorer(other.net, args), samples, b_dir, conventions, args.crop_border,
                             args.y_channel)
    result.errors += [f"--compare: {e}" for e in res_b.errors]
    cols = [c for c in result.metric_columns if "_in" not in c]
    rows = paired_rows(result.records, res_b.records, cols, by, labels=("A", "B"))
    show = paired_columns(cols, by)
    title = (f"paired difference B - A (A = {args.ckpt}, B = {args.compare}); "
             "95% paired-bootstrap CI over images; won/lost = images where B is better/worse")
    print()
    print(format_table(rows, show, title=title))
    try:
        write_json(os.path.join(out_dir, "compare.json"), {"a": args.ckpt, "b": args.compare, "rows": rows})
        atomic_write_text(os.path.join(out_dir, "compare.md"), f"# {title}\n\n" + markdown_table(rows, show))
    except OSError as exc:
        result.errors.append(f"{out_dir}: comparison not written ({exc.strerror or exc})")


def run_dataset(args) -> int:
    """--data-config (a config's data.val under --data-root) or list files given as --input [--gt]: every
    file is checked before the model loads; problems are listed one per line (or skipped with --skip-bad)."""
    from ms_osr.data.preflight import checked
    from ms_osr.eval_sets import config_val_source, list_source, source_samples
    from ms_osr.evaluation import check_output_safe, evaluate_samples, resolve_conventions

    if args.data_config:
        src, vc = config_val_source(args.data_config, args.data_root)
        label, crop_multiple, crop = f"{args.data_config} data.val", int(vc.get("crop_multiple", 0)), vc.get("crop")
    else:
        src, label, crop_multiple, crop = list_source(args.input, args.gt, args.data_root), args.input, 0, None
    # a PreflightError lists every bad file, one a line (ms_osr.cli prints them)
    src = checked(src, label, args.skip_bad, lambda m: print(f"note: {m}"), switch="add --skip-bad")
    samples = source_samples(src, crop_multiple, crop)[:args.limit or None]
    stem = os.path.splitext(os.path.basename(args.ckpt))[0]
    label_stem = os.path.splitext(os.path.basename(label.split()[0]))[0]
    out_dir = args.output or os.path.join("results", f"{label_stem}_{stem}")
    check_output_safe(out_dir, samples)
    loaded = load(args)
    print(f"model {loaded.name} on {label} ({len(samples)} images) -> {out_dir}", flush=True)
    result = evaluate_samples(make_restorer(loaded.net, args), samples, out_dir,
                              resolve_conventions(args.metric_convention), args.crop_border, args.y_channel)
    by = "group" if any(s.group for s in samples) else ""
    inputs = {"data_config": args.data_config, "input": args.input, "gt": args.gt, "data_root": args.data_root,
              "limit": args.limit}
    report(result, out_dir, f"{loaded.name} on {label}", by=by, settings=_settings(args, loaded, inputs))
    return finish(result.errors)


def do_export(args, loaded, out_dir) -> None:
    from ms_osr.export import export_mindir

    h, w = args.export_size
    path = args.export_path or os.path.join(out_dir, f"{loaded.name}_{h}x{w}.mindir")
    rep = export_mindir(loaded.net, path, tuple(args.export_size))
    print(f"exported {rep.path} ({rep.size_bytes / 1e6:.2f} MB, input {rep.input_shape}); "
          f"MindIR vs network max|diff| {rep.max_abs_diff:.3g}, mean {rep.mean_abs_diff:.3g}")


def run_hair_diagnostics(args) -> int:
    from ms_osr.data.corpus import DEFAULT_ROOT
    from ms_osr.hair_diagnostics import degraded_crops, diagnose

    if not args.ckpt:
        raise UsageError("--hair-diagnostics needs --ckpt (a Res-HAIR checkpoint)")
    images, labels = degraded_crops(args.data_root or DEFAULT_ROOT, "test",  # CorpusError: one line (ms_osr.cli)
                                    args.degradations or ("noise_25", "rain", "haze"), seed=args.seed)
    loaded = load(args)
    print(diagnose(loaded.net, images, labels).table())
    return 0


def run_protocol(args) -> int:
    from ms_osr.evaluation import check_output_writable, osr_protocol, resolve_conventions

    if not args.ckpt or not args.osr_ckpt:
        raise UsageError("--protocol osr needs --ckpt (the restorer) and --osr-ckpt (the reprogrammed restorer)")
    conventions = resolve_conventions("aio" if args.metric_convention == "both" else args.metric_convention)
    check_output_writable(args.output or os.path.join("results", "osr_protocol"))
    base = load(args)
    osr = load(args, ckpt=args.osr_ckpt, config=args.osr_config or "", model="")
    known = args.known if args.known is not None else (trained_degradations(osr.config) or
                                                       trained_degradations(base.config))
    images = heldout_images(args.demo_size, args.images, args.demo_images)
    out_dir = args.output or os.path.join("results", "osr_protocol")
    print(f"OSR protocol: {base.name} vs {osr.name} on {len(images)} images, known = {known or 'none'}", flush=True)
    res = osr_protocol({base.name: make_restorer(base.net, args), f"{osr.name} (reprogrammed)":
                        make_restorer(osr.net, args)}, images, known=known, degradations=args.degradations,
                       seed=args.seed, convention=conventions[0], crop_border=args.crop_border,
                       y_channel=args.y_channel, output_dir=out_dir)
    print(res.markdown)
    print(f"wrote osr_protocol.md/.csv/_long.csv to {out_dir}")
    return 0


def run(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ms_osr.runtime import setup_runtime

    for mod in args.imports:
        importlib.import_module(mod)
    if args.list_models:
        from ms_osr.registry import list_models

        print("\n".join(list_models()))
        return 0
    setup_runtime(device=args.device, mode=args.mode, seed=args.seed, threads=args.threads)
    if args.tile is not None and args.tile <= 0:
        raise UsageError(f"--tile must be positive, got {args.tile}")
    if args.max_graphs < 1:
        raise UsageError(f"--max-graphs must be at least 1, got {args.max_graphs}")
    if args.max_memory is not None:
        from ms_osr.memory_plan import parse_memory

        parse_memory(args.max_memory)  # a malformed size fails before the model loads
    if args.hair_diagnostics:
        return run_hair_diagnostics(args)
    if args.protocol == "osr":
        return run_protocol(args)
    if not args.ckpt:
        if args.input or args.benchmark or args.export or args.data_config:
            raise UsageError("--ckpt is required with --input/--benchmark/--data-config/--export")
        return run_demo(args, load, make_restorer)
    if sum(bool(x) for x in (args.input, args.benchmark, args.data_config)) > 1:
        raise UsageError("use one of --input, --benchmark and --data-config")
    if args.data_config or (args.input and args.input.lower().endswith(".txt")):
        return run_dataset(args)
    if args.input:
        return run_files(args)
    if args.benchmark:
        return run_benchmark(args)
    if args.export:
        from ms_osr.evaluation import check_output_writable

        check_output_writable(args.output or "results", args.export_path)
        loaded = load(args)
        do_export(args, loaded, args.output or "results")
        return 0
    raise UsageError("nothing to do: give --input, --benchmark or --export (or no arguments for the demo)")



def main(argv=None) -> int:
    """One line per error (MsOsrError) and exit status 1; ``--debug`` shows the traceback."""
    from ms_osr.cli import run_cli

    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
