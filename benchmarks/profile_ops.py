"""Where does a MindSpore model spend its time?  Per-op-type and per-layer profile of one warm call.

    python benchmarks/profile_ops.py --model restormer --size 128                  # inference
    python benchmarks/profile_ops.py --model restormer --size 128 --phase train     # forward+backward+AdamW
    python benchmarks/profile_ops.py --model res_hair --size 256 --top 20 --out prof.md

The model is built from the registry, compiled (GRAPH_MODE) and run twice untimed; ``mindspore.Profiler``
then records one call.  Printed: wall time of that call, the op types by total kernel time (calls, ms,
share) and the layers (cell paths with numbers folded, e.g. ``ffn/dwconv``) that spend the most time in
the heaviest op types.  To see which oneDNN kernel a convolution runs, add ``ONEDNN_VERBOSE=1``.
"""
from __future__ import annotations

import argparse
import collections
import csv
import glob
import json
import os
import re
import sys
import tempfile
import time
from typing import Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import ms_osr  # noqa: E402,F401  (oneDNN cap before mindspore)


def _build_call(args):
    """A zero-argument function running one inference or one training step of the model."""
    import numpy as np
    import mindspore as ms

    from ms_osr.build import create_model

    net = create_model(args.model, **json.loads(args.kwargs))  # unknown names and arguments: MsOsrError
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.random((args.batch, 3, args.size, args.size), dtype=np.float32))
    if args.phase == "infer":
        net.set_train(False)
        return lambda: net(x).asnumpy()
    from ms_osr.training.optim import AdamW, bias_corrections
    from ms_osr.training.recompute import enable_recompute
    from ms_osr.training.step import LossNet, TrainStep

    if args.recompute:
        enable_recompute(net)
    net.set_train(True)
    step = TrainStep(LossNet(net, {"type": "l1"}), AdamW(net.trainable_params(), weight_decay=1e-4))
    step.set_train(True)
    y = ms.Tensor(rng.random((args.batch, 3, args.size, args.size), dtype=np.float32))
    bc1, bc2 = bias_corrections(0, (0.9, 0.999))
    scalars = [ms.Tensor(v, ms.float32) for v in (1e-4, bc1, bc2)]
    return lambda: step(x, y, *scalars).asnumpy()


def layer_key(full_name: str) -> str:
    """``Default/encoder_level1-SequentialCell/0-TransformerBlock/ffn-FeedForward/dwconv-Conv2d/Conv2D-op3``
    -> ``ffn/dwconv`` (the two innermost cells, numbers folded so repeated blocks add up)."""
    cells = [p.split("-")[0] for p in full_name.split("/")[:-1]]
    cells = [c for c in cells if c not in ("Default", "Gradients")]
    key = "/".join(cells[-2:]) or "(top level)"
    return re.sub(r"\d+", "#", key)


def summarise(frame_dir: str, top: int, layer_types: Optional[list] = None) -> tuple[list, list]:
    """(op-type rows, layer rows, total kernel ms) from the profiler's CPU csv files; the layer rows break
    down ``layer_types`` (default: the four heaviest op types)."""
    types = []
    with open(os.path.join(frame_dir, "cpu_op_type_info_0.csv")) as fh:
        for r in csv.DictReader(fh):
            types.append((r["op_type"], int(r["type_occurrences"]), float(r["total_compute_time"])))
    types.sort(key=lambda t: -t[2])
    total_ms = sum(t[2] for t in types)
    heavy = set(layer_types) if layer_types else {t[0] for t in types[:4]}
    layers = collections.defaultdict(lambda: [0, 0.0])
    with open(os.path.join(frame_dir, "cpu_op_detail_info_0.csv")) as fh:
        for r in csv.DictReader(fh):
            if r["op_type"] in heavy:
                entry = layers[(r["op_type"], layer_key(r["full_op_name"]))]
                entry[0] += int(r["op_occurrences"])
                entry[1] += float(r["op_total_time(ms)"])
    layer_rows = sorted(((k[0], k[1], v[0], v[1]) for k, v in layers.items()), key=lambda t: -t[3])
    return types[:top], layer_rows[:top], total_ms


def render(args, wall_s: float, types: list, layers: list, total: float) -> str:
    total = total or 1.0
    lines = [f"{args.model} {args.phase} batch {args.batch} at {args.size}x{args.size}"
             f"{' (recompute)' if args.recompute else ''}: one call {wall_s:.3f} s wall, "
             f"{total / 1e3:.3f} s in kernels", "",
             "| op type | calls | kernel ms | share |", "|---|---|---|---|"]
    lines += [f"| {name} | {n} | {ms_:.1f} | {100 * ms_ / total:.1f}% |" for name, n, ms_ in types]
    lines += ["", "| op type | layer | calls | kernel ms |", "|---|---|---|---|"]
    lines += [f"| {op} | {layer} | {n} | {ms_:.1f} |" for op, layer, n, ms_ in layers]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registered model name (ms_osr.registry.list_models())")
    p.add_argument("--kwargs", default="{}", help="JSON model overrides, e.g. '{\"dim\": 24}'")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--phase", choices=("infer", "train"), default="infer")
    p.add_argument("--recompute", action="store_true", help="train phase with train.recompute")
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--layer-types", help="comma list of op types whose layers are listed (default: the 4 heaviest)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="also write the tables to this markdown file")
    args = p.parse_args(argv)

    from ms_osr.fileio import atomic_write_text
    from ms_osr.runtime import setup_runtime

    setup_runtime("cpu", "graph", 0, args.threads)
    import mindspore as ms

    from ms_osr.errors import MsOsrError

    try:
        call = _build_call(args)
    except (MsOsrError, json.JSONDecodeError) as exc:  # what the user typed; anything else is a bug
        p.error(f"--model {args.model} / --kwargs: {exc}")
    call()
    call()
    with tempfile.TemporaryDirectory(prefix="profile_ops-") as tmp:
        prof = ms.Profiler(output_path=tmp)
        t0 = time.perf_counter()
        call()
        wall = time.perf_counter() - t0
        prof.analyse()
        found = glob.glob(os.path.join(tmp, "*", "FRAMEWORK", "cpu_op_type_info_0.csv"))
        if not found:
            print(f"error: the profiler wrote no CPU op table under {tmp}", file=sys.stderr)
            return 1
        types, layers, total = summarise(os.path.dirname(found[0]), args.top,
                                          args.layer_types.split(",") if args.layer_types else None)
    text = render(args, wall, types, layers, total)
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
