#!/usr/bin/env python
"""Where a MindSpore training step's host memory goes (issue 19): peak RSS per phase and per option.

    python benchmarks/memory_train.py --model restormer                     # default options
    python benchmarks/memory_train.py --model restormer --variants default recompute batch1 recompute_batch1
    python benchmarks/memory_train.py --model griddehazenet --variants default recompute kernels_off --json m.json

Each variant runs in a fresh process (the registry's full-size model, random weights, batch 4 at 128x128 unless
the variant says otherwise, L1 + AdamW in one compiled graph: the `train` phase of bench_models.py). Peak resident
memory is read from the kernel's high-water mark (``VmHWM``), which is reset (``/proc/self/clear_refs``) between
phases, so every column is the peak *within* that phase:

* ``import``   the process after ``import ms_osr, mindspore`` (and the runtime set-up);
* ``build``    the network, its parameters and the optimizer state (absolute peak so far);
* ``compile``  ``TrainStep.compile`` alone: graph construction and kernel selection, before any data runs;
* ``compiled`` resident memory once compiled (what compilation leaves behind);
* ``step 1``   the first execution (memory pool grown to the graph's needs);
* ``steps``    three more steps (the steady state a long run lives in);
* ``held``     resident memory after the steps (what the memory pool keeps between steps).

Peak RSS does not depend on the machine's load, so figures from different runs can be compared; times printed
beside them are only indicative. Variants: ``default``, ``recompute`` (train.recompute), ``batch1`` /
``recompute_batch1`` (activations per sample = (batch 4 - batch 1) / 3), ``kernels_off`` (MS_OSR_CPU_KERNELS=0),
``memory_O1`` (``ms.runtime.set_memory(optimize_level="O1")``), ``recompute_jit_O0`` / ``recompute_jit_O1``
(recomputation at MindSpore's compilation level O0 / O1), ``pynative`` (no graph compilation),
``malloc_trim`` / ``recompute_malloc_trim`` (glibc: 2 arenas, trim freed memory at once), and
``torch`` / ``torch_recompute``: the PyTorch reference of ``bench_models.py`` (``torch.utils.checkpoint`` on the
same blocks), phases alike ("compile" = nothing), for the MindSpore/PyTorch ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]  # bench_models (the training steps of both frameworks) and ms_osr
SIZE, BATCH = 128, 4
VARIANTS = {  # name -> (batch, recompute, mode, extra environment, memory level[, jit level])
    "default": (BATCH, False, "graph", {}, None),
    "recompute": (BATCH, True, "graph", {}, None),
    "batch1": (1, False, "graph", {}, None),
    "recompute_batch1": (1, True, "graph", {}, None),
    "kernels_off": (BATCH, False, "graph", {"MS_OSR_CPU_KERNELS": "0"}, None),
    "memory_O1": (BATCH, False, "graph", {}, "O1"),
    # MindSpore's compilation level (setup_runtime(jit_level=...)): O1 adds graph-kernel fusion to O0's op by op
    "recompute_jit_O0": (BATCH, True, "graph", {}, None, "O0"),
    "recompute_jit_O1": (BATCH, True, "graph", {}, None, "O1"),
    "pynative": (BATCH, False, "pynative", {}, None),
    # glibc keeps freed heap in per-thread arenas; two arenas and immediate trimming return it to the system
    "malloc_trim": (BATCH, False, "graph", {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "0"}, None),
    "recompute_malloc_trim": (BATCH, True, "graph", {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "0"}, None),
    # the PyTorch reference module of bench_models.py (same architecture and step; --model must be one of its keys)
    "torch": (BATCH, False, "torch", {}, None),
    "torch_recompute": (BATCH, True, "torch", {}, None),
}
PHASES = ["import", "build", "compile", "compiled", "step 1", "steps", "held"]


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        return int(re.search(rf"{field}:\s+(\d+)", fh.read()).group(1)) / 1024.0


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next reading is the peak of the next phase."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


def _measure(peaks: dict, times: dict, compile_fn, step_fn) -> None:
    """The compile, step 1, steps and held phases of one training step (peaks in MiB, times in s)."""
    _reset_peak()
    t0 = time.perf_counter()
    compile_fn()
    times["compile"] = time.perf_counter() - t0
    peaks["compile"], peaks["compiled"] = _status_mb("VmHWM"), _status_mb("VmRSS")
    for phase, n in (("step 1", 1), ("steps", 3)):
        _reset_peak()
        t0 = time.perf_counter()
        for _ in range(n):
            step_fn()
        times[phase] = (time.perf_counter() - t0) / n
        peaks[phase] = _status_mb("VmHWM")
    peaks["held"] = _status_mb("VmRSS")


def torch_child(model: str, variant: str, threads: int, size: int, config: dict) -> dict:
    """The PyTorch reference's training step (``config``: bench_models.resolve of ``model``), phases alike."""
    import numpy as np
    import torch

    sys.path.insert(0, os.path.join(ROOT, "tests"))  # the PyTorch reference modules
    from bench_models import KEYS, torch_train_step

    torch.set_num_threads(threads)
    batch, recompute = VARIANTS[variant][:2]
    peaks, times = {"import": _status_mb("VmHWM")}, {}
    _reset_peak()
    torch.manual_seed(0)
    net = KEYS[model].torch_factory(config["kwargs"], config["subs"]).train()
    rng = np.random.default_rng(0)
    x, y = (torch.from_numpy(rng.random((batch, 3, size, size), dtype=np.float32)) for _ in range(2))
    run, trainable = torch_train_step(net, x, y, recompute)
    peaks["build"] = _status_mb("VmHWM")
    _measure(peaks, times, lambda: None, run)
    return {"model": model, "variant": variant, "batch": batch, "size": size, "peaks_mb": peaks, "times_s": times,
            "params": int(trainable)}


def child(model: str, variant: str, threads: int, size: int = SIZE) -> dict:
    """One MindSpore variant in this (fresh) process; returns the per-phase peaks in MiB and times in seconds."""
    batch, recompute, mode, _, memory_level, *jit_level = VARIANTS[variant]
    import ms_osr  # noqa: F401  (oneDNN ISA cap before mindspore)
    from ms_osr.runtime import setup_runtime

    setup_runtime(device="cpu", mode=mode, seed=0, threads=threads, jit_level=jit_level[0] if jit_level else None)
    import mindspore as ms
    import numpy as np

    from bench_models import ms_train_step

    from ms_osr.registry import create_model

    if memory_level:
        ms.runtime.set_memory(optimize_level=memory_level)
    peaks, times = {"import": _status_mb("VmHWM")}, {}
    _reset_peak()
    net = create_model(model)
    rng = np.random.default_rng(0)
    x, y = (ms.Tensor(rng.random((batch, 3, size, size), dtype=np.float32)) for _ in range(2))
    step, args = ms_train_step(net, x, y, recompute)
    peaks["build"] = _status_mb("VmHWM")

    def run():
        step(*args)
        ms.runtime.synchronize()

    _measure(peaks, times, (lambda: step.compile(*args)) if mode == "graph" else (lambda: None), run)
    return {"model": model, "variant": variant, "batch": batch, "size": size, "peaks_mb": peaks, "times_s": times,
            "params": int(sum(p.size for p in net.trainable_params()))}


def run_variant(model: str, variant: str, threads: int, size: int = SIZE) -> dict:
    env = dict(os.environ, **VARIANTS[variant][3])
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--model", model, "--variants", variant,
           "--threads", str(threads), "--size", str(size)]
    if VARIANTS[variant][2] == "torch":  # resolved here so that the PyTorch process never imports mindspore
        from bench_models import KEYS, resolve

        if model not in KEYS:
            return {"model": model, "variant": variant, "error": f"no PyTorch reference (choose from {', '.join(KEYS)})"}
        cmd += ["--torch-config", json.dumps(resolve(model, quick=False))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": model, "variant": variant, "error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


def table(rows: list) -> str:
    head = ["model", "variant", "batch", *(f"{p} MB" for p in PHASES), "compile s", "step s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['variant']} | " + " | ".join(["-"] * (len(head) - 3)) + f" | {r['error']}")
            continue
        p, t = r["peaks_mb"], r["times_s"]
        out.append(f"| {r['model']} | {r['variant']} | {r['batch']} | " + " | ".join(f"{p[k]:.0f}" for k in PHASES)
                   + f" | {t['compile']:.1f} | {t['steps']:.2f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="restormer", help="registered model name (full size)")
    p.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=SIZE, help="training crop side (px)")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-config", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        if args.torch_config:
            row = torch_child(args.model, args.variants[0], args.threads, args.size, json.loads(args.torch_config))
        else:
            row = child(args.model, args.variants[0], args.threads, args.size)
        print(json.dumps(row), flush=True)
        return 0
    rows = []
    for variant in args.variants:
        rows.append(run_variant(args.model, variant, args.threads, args.size))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\nTraining-step host memory, {args.model}, {args.size}x{args.size}, MindSpore CPU, peak RSS within each phase\n")
    print(table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
