#!/usr/bin/env python
"""Sizes and forward timings of PTG-RM and its OSF providers (docs/ptg_rm.md).

    python tools/ptg_rm_bench.py [--sizes 256 512] [--repeat 3] [--device cpu] [--threads 2]

Prints one line per (module, size): parameters, first call (compile + run) and the median
steady-state time of ``--repeat`` calls, batch 1, GRAPH_MODE.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ms_osr  # noqa: E402,F401  (oneDNN cap before mindspore)
from ms_osr.cli import add_debug_arg, run_cli  # noqa: E402
from ms_osr.runtime import add_runtime_args, setup_runtime  # noqa: E402


def _time(fn, repeat: int):
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return first, statistics.median(runs)


def bench(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-clip", action="store_true", help="do not build the 87.8 M-parameter ViT-B/32")
    add_runtime_args(p)
    add_debug_arg(p)
    args = p.parse_args(argv)
    setup_runtime(device=args.device, mode=args.mode or "graph", seed=args.seed or 0, threads=args.threads)

    import numpy as np
    import mindspore as ms

    from ms_osr.models.osf import DistilledOSF
    from ms_osr.models.ptg_rm import PTGRM, count_params
    from ms_osr.registry import create_model

    rng = np.random.default_rng(0)
    ptg, head = PTGRM(), DistilledOSF()
    modules = [("ptg_rm", ptg), ("distilled_osf", head)]
    if not args.skip_clip:
        modules.append(("clip_vit_b32", create_model("clip_vit_b32")))
    for name, net in modules:
        net.set_train(False)
        for size in args.sizes:
            x = ms.Tensor(rng.random((1, 3, size, size), dtype=np.float32))
            if name == "ptg_rm":
                g = ms.Tensor(rng.standard_normal((1, 512)).astype(np.float32))
                first, steady = _time(lambda: net(x, x, g).asnumpy(), args.repeat)
            else:
                first, steady = _time(lambda: net(x).asnumpy(), args.repeat)
            print(f"{name:14s} params {count_params(net):>11,d}  {size}x{size}  first {first:7.2f} s  "
                  f"steady {steady * 1000:8.1f} ms", flush=True)
    return 0


def main(argv=None) -> int:
    return run_cli(bench, argv)


if __name__ == "__main__":
    sys.exit(main())
