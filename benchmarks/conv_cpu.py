"""CPU convolution throughput: MindSpore without / with ms_osr's oneDNN ISA cap, against PyTorch.

    python benchmarks/conv_cpu.py            # full run (7 interleaved repetitions per case)
    python benchmarks/conv_cpu.py --quick    # CI smoke run (2 repetitions)

Three persistent worker processes (``ms-nofix``: plain MindSpore; ``ms``: ``import ms_osr`` first, which
applies the cap; ``torch``) are timed round-robin on the same shapes with the same thread count (see
``_workers.py``: the machine is shared, only interleaved ratios are meaningful).  Figures are GFLOP/s
from the median time, counting a multiply-add as 2 FLOPs (bias ignored).  Each framework's convolution
includes its bias, as in the models.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workers import (ISA_ENV, Worker, fmt_table, interleave, machine_info, median, serve,  # noqa: E402
                      splice_block, timed)

# name -> (kind, spec).  Restormer's gated FFN at dim 48: hidden int(48*2.66)=127, dw conv on 2*127 channels.
CASES = {
    "dw3x3 128ch 128x128": ("conv", dict(cin=128, cout=128, k=3, groups=128, h=128, w=128)),
    "dw3x3 254ch 128x128 (Restormer FFN)": ("conv", dict(cin=254, cout=254, k=3, groups=254, h=128, w=128)),
    # MindSpore columns: ms_osr's C++ depthwise kernel (ms_osr.kernels; the ISA cap does not affect it).
    "dw3x3 254ch 128x128, ms_osr kernel": ("dwkernel", dict(cin=254, cout=254, k=3, groups=254, h=128, w=128)),
    # The small CNNs' dense 3x3 convs (GridDehazeNet: dense layers 16+16k -> 16 at full, 1/2, 1/4 resolution;
    # the OSR network: 64 -> 64), each as MindSpore's Conv2D and as ms_osr's C++ kernel (both MindSpore
    # columns run the kernel), forward and "train" (forward + input and filter gradients, batch 4).
    **{f"conv3x3 {ci}->{co} {h}x{h}{' train b4' if n > 1 else ''}{kern}": (
        "densekernel" if kern else "conv", dict(cin=ci, cout=co, k=3, groups=1, h=h, w=h, n=n, grad=n > 1))
       for ci, co, h, n in ((3, 16, 256, 1), (48, 16, 256, 1), (80, 16, 128, 1), (112, 16, 64, 1), (64, 64, 128, 1),
                            (48, 16, 128, 4), (64, 64, 64, 4))
       for kern in ("", ", ms_osr kernel")},
    "conv1x1 48->254 128x128": ("conv", dict(cin=48, cout=254, k=1, groups=1, h=128, w=128)),
    "conv1x1 127->48 128x128": ("conv", dict(cin=127, cout=48, k=1, groups=1, h=128, w=128)),
    "conv1x1 64->64 128x128": ("conv", dict(cin=64, cout=64, k=1, groups=1, h=128, w=128)),
    "matmul 1024x1024x1024": ("matmul", dict(m=1024, n=1024, k=1024)),
}
TARGET_RATIO = 0.5  # every MindSpore figure (with the cap) should reach half of PyTorch's


def flops(kind: str, spec: dict) -> float:
    if kind == "matmul":
        return 2.0 * spec["m"] * spec["n"] * spec["k"]
    per_image = 2.0 * spec["cin"] // spec["groups"] * spec["cout"] * spec["k"] ** 2 * spec["h"] * spec["w"]
    return per_image * spec.get("n", 1) * (3 if spec.get("grad") else 1)  # gradients: two more convs' work


# ----------------------------------------------------------------------------------------------- workers
def _ms_handler(threads: int):
    import ms_osr  # noqa: F401  (applies the cap unless MS_OSR_NO_ISA_CAP is set)
    from ms_osr.runtime import setup_runtime

    setup_runtime(device="cpu", mode="graph", seed=0, threads=threads)
    import mindspore as ms
    import numpy as np
    from mindspore import nn, ops

    class MatMul(nn.Cell):
        def construct(self, a, b):
            return ops.matmul(a, b)

    class _WithGrads(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.grad = ops.GradOperation(get_all=True, get_by_list=True, sens_param=True)(net, net.trainable_params())

        def construct(self, x, g):
            return self.grad(x, g)

    state = {}

    def handle(req: dict) -> dict:
        if req["op"] == "info":
            return {"isa_cap": os.environ.get(ISA_ENV), "version": ms.__version__}
        if req["op"] == "setup":
            kind, spec = req["kind"], req["spec"]
            rng = np.random.default_rng(0)
            if kind == "matmul":
                net = MatMul()
                args = (ms.Tensor(rng.random((spec["m"], spec["k"]), dtype=np.float32)),
                        ms.Tensor(rng.random((spec["k"], spec["n"]), dtype=np.float32)))
            elif kind == "dwkernel":
                from ms_osr.models.layers import DepthwiseConv3x3

                net = DepthwiseConv3x3(spec["cin"], bias=True)
                args = (ms.Tensor(rng.random((1, spec["cin"], spec["h"], spec["w"]), dtype=np.float32)),)
            else:
                pad = spec["k"] // 2
                n = spec.get("n", 1)
                if kind == "densekernel":
                    from ms_osr.models.layers import DenseConv3x3

                    net = DenseConv3x3(spec["cin"], spec["cout"], bias=True)
                else:
                    net = nn.Conv2d(spec["cin"], spec["cout"], spec["k"], pad_mode="pad", padding=pad, has_bias=True,
                                    group=spec["groups"])
                args = (ms.Tensor(rng.random((n, spec["cin"], spec["h"], spec["w"]), dtype=np.float32)),)
                if spec.get("grad"):  # d(sum(y * g))/d(x, weight, bias), the backward of a training step
                    net = _WithGrads(net)
                    args += (ms.Tensor(rng.random((n, spec["cout"], spec["h"], spec["w"]), dtype=np.float32)),)
            net.set_train(False)

            def warmed(cell):  # a synchronised call of cell on args, compiled and warmed
                def run():
                    cell(*args)
                    ms.runtime.synchronize()

                for _ in range(2):
                    run()
                return run

            state["run"], state["stock"] = warmed(net), None
            if kind == "densekernel":  # the same layer on MindSpore's Conv2D, timed alternately with the kernel
                from ms_osr.models.layers import DenseConv3x3

                stock = DenseConv3x3(spec["cin"], spec["cout"], bias=True)
                stock.op.use_kernel = False
                stock = _WithGrads(stock) if spec.get("grad") else stock
                stock.set_train(False)
                state["stock"] = warmed(stock)
            return {"ok": True}
        if req["op"] == "time":
            reply = {"times": timed(state["run"], req.get("reps", 1))}
            if state["stock"] is not None:
                reply["stock_times"] = timed(state["stock"], req.get("reps", 1))
            return reply
        raise ValueError(f"unknown request {req}")

    return handle


def _torch_handler(threads: int):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    state = {}

    def handle(req: dict) -> dict:
        if req["op"] == "info":
            return {"isa_cap": os.environ.get(ISA_ENV), "version": torch.__version__}
        if req["op"] == "setup":
            kind, spec = req["kind"], req["spec"]
            rng = np.random.default_rng(0)
            if kind == "matmul":
                a = torch.from_numpy(rng.random((spec["m"], spec["k"]), dtype=np.float32))
                b = torch.from_numpy(rng.random((spec["k"], spec["n"]), dtype=np.float32))
                fn = lambda: torch.matmul(a, b)  # noqa: E731
            else:
                net = torch.nn.Conv2d(spec["cin"], spec["cout"], spec["k"], padding=spec["k"] // 2,
                                      groups=spec["groups"]).eval()
                n = spec.get("n", 1)
                x = torch.from_numpy(rng.random((n, spec["cin"], spec["h"], spec["w"]), dtype=np.float32))
                if spec.get("grad"):
                    x.requires_grad_(True)
                    g = torch.from_numpy(rng.random((n, spec["cout"], spec["h"], spec["w"]), dtype=np.float32))

                    def fn():
                        x.grad = None
                        net.zero_grad(set_to_none=True)
                        net(x).backward(g)
                else:
                    fn = lambda: net(x)  # noqa: E731

            def run():
                if spec.get("grad"):
                    fn()
                    return
                with torch.inference_mode():
                    fn()

            for _ in range(2):
                run()
            state["run"] = run
            return {"ok": True}
        if req["op"] == "time":
            return {"times": timed(state["run"], req.get("reps", 1))}
        raise ValueError(f"unknown request {req}")

    return handle


# ------------------------------------------------------------------------------------------------ driver
def run_benchmark(rounds: int, threads: int, case_filter: str | None = None) -> dict:
    kinds = ["ms-nofix", "ms", "torch"]
    workers = {k: Worker(os.path.abspath(__file__), k, threads) for k in kinds}
    info = {k: w.call(op="info") for k, w in workers.items()}
    results = []
    try:
        for name, (kind, spec) in CASES.items():
            if case_filter and case_filter not in name:
                continue
            setup_ok = {}
            for k, w in workers.items():
                rep = w.call(op="setup", kind=kind, spec=spec)
                setup_ok[k] = rep
            live = {k: w for k, w in workers.items() if "error" not in setup_ok[k]}
            times = interleave(live, {"op": "time", "reps": 1}, rounds)
            row = {"case": name, "flop": flops(kind, spec)}
            for k in kinds:
                t = times.get(k)
                if k not in live:
                    row[k] = {"error": setup_ok[k]["error"]}
                elif isinstance(t, dict):
                    row[k] = t
                else:
                    row[k] = {"median_s": median(t), "gflops": row["flop"] / median(t) / 1e9}
            if isinstance(times.get("ms:stock"), list):
                row["ms-stock"] = {"median_s": median(times["ms:stock"]),
                                   "gflops": row["flop"] / median(times["ms:stock"]) / 1e9}
            results.append(row)
            print(f"  measured {name}", file=sys.stderr, flush=True)
    finally:
        closing = {k: w.close() for k, w in workers.items()}
    return {"machine": machine_info(), "threads": threads, "rounds": rounds, "workers": info,
            "maxrss_mb": {k: v.get("maxrss_mb") for k, v in closing.items()}, "results": results}


def _num(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else (f"{x:.2f}" if x >= 0.1 else f"{x:.3f}")


def _g(cell: dict) -> str:
    return _num(cell["gflops"]) if "gflops" in cell else "error"


def render(report: dict) -> str:
    rows = []
    for r in report["results"]:
        nofix, fix, pt = r["ms-nofix"], r["ms"], r["torch"]
        speedup = _num(fix["gflops"] / nofix["gflops"]) + "x" if "gflops" in fix and "gflops" in nofix else "-"
        if "gflops" in fix and "gflops" in pt:
            ratio = fix["gflops"] / pt["gflops"]
            ratio_s, ok = f"{ratio:.2f}", ("yes" if ratio >= TARGET_RATIO else "NO")
        else:
            ratio_s, ok = "-", "-"
        stock = r.get("ms-stock")  # kernel rows: MindSpore's Conv2D in the same worker, alternate calls
        versus = (f"{fix['median_s'] / stock['median_s']:.2f} ({_g(stock)})"
                  if stock and "median_s" in fix else "-")
        rows.append([r["case"], f"{r['flop'] / 1e9:.3f}", _g(nofix), _g(fix), _g(pt), speedup, ratio_s, ok, versus])
    m = report["machine"]
    w = report["workers"]
    import datetime

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"Date: {date}; CPU: {m['cpu']} ({m['isa']}), {m['cores']} cores; threads {report['threads']}; "
            f"{report['rounds']} interleaved repetitions, median; load avg at end {m['load'][0]:.2f}\n"
            f"MindSpore {w['ms'].get('version')}: no-fix cap={w['ms-nofix'].get('isa_cap')}, "
            f"fix cap={w['ms'].get('isa_cap')}; PyTorch {w['torch'].get('version')}\n\n")
    table = fmt_table(["case", "GFLOP", "MS no-fix GFLOP/s", "MS fix GFLOP/s", "PyTorch GFLOP/s",
                       "fix speed-up", "MS/PT", f">= {TARGET_RATIO}", "kernel/MS conv time (MS conv GFLOP/s)"], rows)
    errors = [f"{r['case']} [{k}]: {r[k]['error']}" for r in report["results"]
              for k in ("ms-nofix", "ms", "torch") if "error" in r[k]]
    return head + table + ("\nerrors:\n" + "\n".join(errors) if errors else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 repetitions per case (CI)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved repetitions per case (default 7)")
    p.add_argument("--threads", type=int, default=2, help="threads for both frameworks")
    p.add_argument("--case", default=None, help="only cases whose name contains this text")
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--out", default=None, help="write the table into this markdown file (block conv_cpu), "
                                               "e.g. benchmarks/results.md")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--reply-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        handler = _torch_handler(args.threads) if args.worker == "torch" else _ms_handler(args.threads)
        serve(handler, args.reply_fd)
        return 0
    rounds = args.rounds or (2 if args.quick else 7)
    report = run_benchmark(rounds, args.threads, args.case)
    text = render(report)
    print(text)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from ms_osr.fileio import atomic_write_text

    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1))
    if args.out:
        atomic_write_text(args.out, splice_block(args.out, "conv_cpu", text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
