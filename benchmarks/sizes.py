#!/usr/bin/env python
"""Images of many sizes: compiled graphs, time per image and peak RSS (issue 22).

    python benchmarks/sizes.py                         # folder of 48 distinct sizes, every shipped model
    python benchmarks/sizes.py --images 12 --strategies auto static
    python benchmarks/sizes.py --photo                 # one 4000x3000 photo, no options
    python benchmarks/sizes.py --calibrate             # peak memory of whole-image passes (memory_plan.py)
    python benchmarks/sizes.py --train                 # training steps / validation on crops of varying size

Every measurement runs in a fresh process (peak RSS is per process).  Models: every ``ckpt/<name>.ckpt``
with a ``ckpt/<name>.yaml``.  The folder is synthetic (seeded noise on smooth gradients) with distinct
sizes between 64 and 400 px; the speed of a graph does not depend on the pixel values.

Columns of the folder table: ``first`` = mean wall time of the first pass over each image (compile
included when one happens), ``warm`` = mean time of a second pass over the same image (compute only),
``compile`` = their difference summed, ``static warm`` = compute time of a static graph of the image's own
size (the one-image path) on the ``--check`` sample, ``RSS`` = peak RSS of the folder run and of a
one-image run of the largest size.  Targets (issue 22): folder RSS <= 1.3x one-image RSS; first <= 1.5x the
warm compute; outputs equal to the one-image path within 1e-4 or the border effect documented.
The machine is shared, so read ratios within one run, not absolute times.  ``SIZES_IMPORT=module`` imports a
module that registers extra models in every worker (the test suite's toys).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

TARGET_RSS_RATIO = 1.3
TARGET_TIME_RATIO = 1.5
TARGET_PHOTO_RSS_GB = 4.0
TARGET_DIFF = 1e-4


def shipped_models(ckpt_dir: str) -> list[str]:
    return [p for p in sorted(glob.glob(os.path.join(ckpt_dir, "*.ckpt")))
            if os.path.isfile(os.path.splitext(p)[0] + ".yaml")]


def folder_sizes(n: int, lo: int = 64, hi: int = 400, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` distinct (h, w) between ``lo`` and ``hi``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    seen: list[tuple[int, int]] = []
    while len(seen) < n:
        hw = (int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)))
        if hw not in seen:
            seen.append(hw)
    return seen


def synthetic_image(h: int, w: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(xx / (7 + c) + yy / (11 + c)) for c in range(3)], axis=2)
    return np.clip(base + rng.normal(0, 0.08, (h, w, 3)), 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------ workers
def _setup():
    import importlib

    import ms_osr  # noqa: F401
    from ms_osr.runtime import setup_runtime

    if os.environ.get("SIZES_IMPORT"):  # a module that registers extra models (the test suite's toys)
        importlib.import_module(os.environ["SIZES_IMPORT"])

    setup_runtime(device="cpu", mode="graph", seed=0, threads=int(os.environ.get("SIZES_THREADS", "2")))


def _peak_mib() -> float:
    from ms_osr.inference import _status_kib

    return (_status_kib("VmHWM") or 0) / 1024.0


def work_folder(req: dict) -> dict:
    """Restore every size twice (first pass, warm pass); then compare a sample with the static path."""
    import numpy as np

    from ms_osr.inference import Restorer, has_global_vector, load_model, pad_image

    _setup()
    net = load_model(req["ckpt"]).net
    r = Restorer(net, shapes=req["strategy"])
    rows = []
    for i, (h, w) in enumerate(req["sizes"]):
        img = synthetic_image(h, w, i)
        t0 = time.perf_counter()
        r(img)
        t1 = time.perf_counter()
        r(img)
        rows.append({"h": h, "w": w, "first": t1 - t0, "warm": time.perf_counter() - t1})
    peak = _peak_mib()
    out = {"rows": rows, "peak_mib": peak, "strategy": r.runner.strategy, "compiles": r.runner.stats.compiles,
           "alive": r.runner.graphs_alive}
    check = []
    # enough room that the reference never releases graphs (a release drops every graph of the net)
    ref = Restorer(net, shapes="static", max_graphs=len(req.get("check", [])) + 1)
    for i in req.get("check", []):
        h, w = req["sizes"][i]
        img = synthetic_image(h, w, i)
        got = r(img)
        ref(img)
        t0 = time.perf_counter()
        want = ref(img)
        static_warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        r(img)
        this_warm = time.perf_counter() - t0
        diff = np.abs(got - want)
        band = 8  # the border strip where bucket padding acts directly
        inner = diff[:-band, :-band] if min(h, w) > 2 * band else diff
        row = {"h": h, "w": w, "max_diff": float(diff.max()), "inner_max_diff": float(inner.max()),
               "mean_diff": float(diff.mean()), "static_warm": static_warm, "this_warm": this_warm}
        if has_global_vector(net):  # the image-level vector of the padded input vs the exact one
            exact = ref.global_vector(pad_image(img, ref.size_multiple)[0]).asnumpy()
            used = r.global_vector(pad_image(img, r.runner.pad_multiple(r.size_multiple))[0]).asnumpy()
            row["giv_rel_diff"] = float(np.linalg.norm(used - exact) / np.linalg.norm(exact))
        check.append(row)
    out["check"] = check
    return out


def work_one(req: dict) -> dict:
    """One image, fresh process: the peak RSS a folder run is compared with."""
    from ms_osr.inference import Restorer, load_model

    _setup()
    r = Restorer(load_model(req["ckpt"]).net, shapes=req["strategy"])
    h, w = req["size"]
    t0 = time.perf_counter()
    r(synthetic_image(h, w, 0))
    return {"peak_mib": _peak_mib(), "time": time.perf_counter() - t0}


def work_calibrate(req: dict) -> dict:
    """Peak-RSS growth of one whole-image pass (compile included) above the loaded model."""
    from ms_osr.inference import Restorer, _status_kib, load_model, reset_peak_rss
    from ms_osr.memory_plan import MemoryPlanner, net_key

    _setup()
    net = load_model(req["ckpt"]).net
    r = Restorer(net, shapes=req["strategy"], memory=MemoryPlanner.for_net(net, limit_mib=1e9))
    side = req["side"]
    img = synthetic_image(side, side, 0)
    reset_peak_rss()
    before = (_status_kib("VmRSS") or 0) / 1024.0
    r(img)
    return {"key": net_key(net), "growth_mib": _peak_mib() - before, "pixels": side * side}


def work_photo(req: dict) -> dict:
    """A 4000x3000 photo with no options (automatic tiling at the default limit)."""
    from ms_osr.inference import Restorer, load_model

    _setup()
    notes: list[str] = []
    r = Restorer(load_model(req["ckpt"]).net, notify=notes.append)
    h, w = req["size"]
    img = synthetic_image(h, w, 0)
    t0 = time.perf_counter()
    r(img)
    return {"peak_mib": _peak_mib(), "time": time.perf_counter() - t0, "notes": notes}


def work_train(req: dict) -> dict:
    """Training steps on crops of varying size: static graph per size or one dynamic graph."""
    import mindspore as ms
    import numpy as np

    from ms_osr.graphs import GraphRunner
    from ms_osr.inference import load_model
    from ms_osr.training.optim import AdamW, bias_corrections
    from ms_osr.training.step import LossNet, TrainStep

    _setup()
    net = load_model(req["ckpt"]).net
    net.set_train(True)
    step = TrainStep(LossNet(net, {"type": "l1"}), AdamW(net.trainable_params(), weight_decay=1e-4))
    step.set_train(True)
    runner = GraphRunner(step, req["strategy"], max_graphs=int(req.get("max_graphs", 4)))
    bc1, bc2 = bias_corrections(0, (0.9, 0.999))
    scalars = [ms.Tensor(v, ms.float32) for v in (1e-5, bc1, bc2)]
    rows = []
    batch = int(req.get("batch", 2))
    for i, side in enumerate(req["sides"]):
        rng = np.random.default_rng(i)
        x = ms.Tensor(rng.random((batch, 3, side, side), dtype=np.float32))
        y = ms.Tensor(rng.random((batch, 3, side, side), dtype=np.float32))
        t0 = time.perf_counter()
        runner(x, y, *scalars).asnumpy()  # the loss
        t1 = time.perf_counter()
        runner(x, y, *scalars).asnumpy()
        rows.append({"side": side, "first": t1 - t0, "warm": time.perf_counter() - t1})
    return {"rows": rows, "peak_mib": _peak_mib(), "strategy": runner.strategy, "compiles": runner.stats.compiles}


WORKERS = {"folder": work_folder, "one": work_one, "calibrate": work_calibrate, "photo": work_photo,
           "train": work_train}


def spawn(kind: str, timeout: float, **req) -> dict:
    """Run one worker in a fresh process; its last stdout line is the JSON reply."""
    env = dict(os.environ, GLOG_v=os.environ.get("GLOG_v", "3"))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, json.dumps(req)]
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


# ------------------------------------------------------------------------------------------ reports
def fmt_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def run_folder(args, models) -> None:
    sizes = folder_sizes(args.images)
    largest = max(sizes, key=lambda hw: hw[0] * hw[1])
    check = list(range(min(args.check, len(sizes))))
    rows, notes = [], []
    for ckpt in models:
        label = os.path.splitext(os.path.basename(ckpt))[0]
        one = spawn("one", args.timeout, ckpt=ckpt, strategy="auto", size=largest)
        for strategy in args.strategies:
            res = spawn("folder", args.timeout, ckpt=ckpt, strategy=strategy, sizes=sizes, check=check)
            if "error" in res:
                rows.append([label, strategy] + ["-"] * 9 + [res["error"]])
                continue
            n = len(res["rows"])
            first = sum(r["first"] for r in res["rows"]) / n
            warm = sum(r["warm"] for r in res["rows"]) / n
            compile_s = sum(max(r["first"] - r["warm"], 0.0) for r in res["rows"])
            chk = res["check"]
            static_ratio = (sum(c["this_warm"] for c in chk) / sum(c["static_warm"] for c in chk)) if chk else float("nan")
            max_diff = max((c["max_diff"] for c in chk), default=float("nan"))
            giv = [c["giv_rel_diff"] for c in chk if "giv_rel_diff" in c]
            if giv:
                notes.append(f"{label} ({res['strategy']}): global vector of the padded input vs the exact one, "
                             f"relative difference {min(giv):.2g}-{max(giv):.2g}")
            inner = max((c["inner_max_diff"] for c in chk), default=float("nan"))
            rss_ratio = res["peak_mib"] / one["peak_mib"] if "peak_mib" in one else float("nan")
            time_ratio = first / warm
            rows.append([label, f"{res['strategy']}" + ("" if strategy == res["strategy"] else f" ({strategy})"),
                         f"{res['compiles']} / {res['alive']}", f"{first:.3f}", f"{warm:.3f}", f"{compile_s:.1f}",
                         f"{time_ratio:.2f}x", f"{static_ratio:.2f}x",
                         f"{res['peak_mib']:.0f} / {one.get('peak_mib', float('nan')):.0f} = {rss_ratio:.2f}x",
                         f"{max_diff:.2g} ({inner:.2g})",
                         f"time {verdict(time_ratio <= TARGET_TIME_RATIO)}, RSS {verdict(rss_ratio <= TARGET_RSS_RATIO)}, "
                         f"diff {verdict(max_diff <= TARGET_DIFF)}"])
        notes.append(f"{label}: one-image run of {largest[1]}x{largest[0]}: {one.get('time', float('nan')):.2f} s")
    print(f"\nFolder of {len(sizes)} distinct sizes between 64 and 400 px (largest {largest[1]}x{largest[0]}), "
          f"outputs compared with the one-image static path on {len(check)} of them\n")
    print(fmt_table(["model", "strategy", "graphs compiled / alive", "first s/img", "warm s/img", "compile s (sum)",
                     "first/warm", "warm vs static warm", "peak RSS MiB folder / one image", "max diff (inner)",
                     "targets"], rows))
    for n in notes:
        print(n)


def run_photo(args, models) -> None:
    rows = []
    for ckpt in models:
        label = os.path.splitext(os.path.basename(ckpt))[0]
        res = spawn("photo", args.timeout, ckpt=ckpt, size=[3000, 4000])
        if "error" in res:
            rows.append([label, "-", "-", res["error"]])
            continue
        gb = res["peak_mib"] / 1024
        rows.append([label, f"{res['time']:.0f}", f"{gb:.2f}", "; ".join(res["notes"]) or "(no notice)",
                     verdict(gb < TARGET_PHOTO_RSS_GB)])
    print("\n4000x3000 photo, no options\n")
    print(fmt_table(["model", "time s", "peak RSS GB", "notice", f"< {TARGET_PHOTO_RSS_GB:.0f} GB"], rows))


def run_calibrate(args, models) -> None:
    import numpy as np

    print("\nPeak-RSS growth of one whole-image pass (fresh process per size), fit fixed + per-Mpix\n")
    rows = []
    for ckpt in models:
        label = os.path.splitext(os.path.basename(ckpt))[0]
        pts = [spawn("calibrate", args.timeout, ckpt=ckpt, strategy="auto", side=s) for s in args.sides]
        good = [p for p in pts if "error" not in p]
        if len(good) < 2:
            rows.append([label, "-", "-", "-", "; ".join(p.get("error", "") for p in pts)])
            continue
        mp = np.array([p["pixels"] / 1e6 for p in good])
        mib = np.array([p["growth_mib"] for p in good])
        slope, fixed = np.polyfit(mp, mib, 1)
        failed = "; ".join(f"{s}: {p['error']}" for s, p in zip(args.sides, pts) if "error" in p)
        rows.append([label, good[0]["key"], ", ".join(f"{int(p['pixels'] ** 0.5)}: {p['growth_mib']:.0f}" for p in good)
                     + (f" (failed {failed})" if failed else ""), f"{fixed:.0f}", f"{slope:.0f}"])
    print(fmt_table(["model", "key", "side: growth MiB", "fixed MiB", "MiB per Mpix"], rows))


def run_train(args, models) -> None:
    sides = args.train_sides
    rows = []
    for ckpt in models:
        label = os.path.splitext(os.path.basename(ckpt))[0]
        for strategy in args.train_strategies:
            res = spawn("train", args.timeout, ckpt=ckpt, strategy=strategy, sides=sides)
            if "error" in res:
                rows.append([label, strategy, "-", "-", "-", "-", res["error"]])
                continue
            n = len(res["rows"])
            first = sum(r["first"] for r in res["rows"]) / n
            warm = sum(r["warm"] for r in res["rows"]) / n
            rows.append([label, res["strategy"], str(res["compiles"]), f"{first:.2f}", f"{warm:.2f}",
                         f"{first / warm:.2f}x", f"{res['peak_mib']:.0f}"])
    print(f"\nTraining steps (batch 2) on square crops of {len(sides)} sides {sides}, each twice\n")
    print(fmt_table(["model", "strategy", "graphs compiled", "first s/step", "warm s/step", "first/warm",
                     "peak RSS MiB"], rows))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    p.add_argument("--ckpt-dir", default=os.path.join(REPO, "ckpt"))
    p.add_argument("--models", nargs="*", help="checkpoint stems (default: every shipped one)")
    p.add_argument("--images", type=int, default=48, help="distinct sizes in the folder")
    p.add_argument("--check", type=int, default=4, help="images compared with the one-image static path")
    p.add_argument("--strategies", nargs="+", default=["auto"], choices=["auto", "dynamic", "bucket", "static"])
    p.add_argument("--photo", action="store_true", help="a 4000x3000 photo with no options")
    p.add_argument("--calibrate", action="store_true", help="peak memory of whole-image passes")
    p.add_argument("--sides", type=int, nargs="+", default=[256, 512, 768], help="--calibrate: square sides")
    p.add_argument("--train", action="store_true", help="training steps on crops of varying size")
    p.add_argument("--train-sides", type=int, nargs="+", default=[48, 64, 80, 96, 112, 128])
    p.add_argument("--train-strategies", nargs="+", default=["static", "dynamic"], choices=["static", "dynamic"])
    p.add_argument("--timeout", type=float, default=1800, help="seconds per worker process")
    args = p.parse_args(argv)
    if args.worker:
        kind, req = args.worker
        print(json.dumps(WORKERS[kind](json.loads(req))), flush=True)
        return 0
    models = shipped_models(args.ckpt_dir)
    if args.models:
        models = [m for m in models if os.path.splitext(os.path.basename(m))[0] in args.models]
    if not models:
        print(f"error: no <name>.ckpt with <name>.yaml in {args.ckpt_dir}", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, threads {os.environ.get('SIZES_THREADS', '2')}")
    if args.calibrate:
        run_calibrate(args, models)
    elif args.photo:
        run_photo(args, models)
    elif args.train:
        run_train(args, models)
    else:
        run_folder(args, models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
