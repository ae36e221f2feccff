"""Model benchmark: MindSpore GRAPH_MODE vs the PyTorch reference of the same architecture and weights.

    python benchmarks/bench_models.py                 # full run (official sizes; ~20-30 min on 2 cores)
    python benchmarks/bench_models.py --quick         # CI smoke run (small configs, 64x64; ~2 min)
    python benchmarks/bench_models.py --models restormer,osr --phases infer256

For every model a PyTorch worker process builds the reference module (``tests/torch_ref``), saves its
``state_dict``; a MindSpore worker builds the registered model and loads those weights through
``ms_osr.convert.convert_state_dict`` (so both run the same architecture with the same weights, checked by
the max |difference| of their outputs).  Phases, each in a fresh pair of processes (so that ``ru_maxrss``
is that phase's peak memory) unless ``--quick``:

* ``infer<S>``: batch 1, SxS input, warm (compiled) inference, median of interleaved repetitions;
* ``train``: one optimisation step (forward + L1 loss + backward + AdamW), batch 4 at 128x128
  (MindSpore: ``ms_osr.training`` TrainStep/AdamW compiled as one graph; PyTorch: ``torch.optim.AdamW``).

FLOPs are counted on the PyTorch side with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions,
matmuls, attention; element-wise ops are not counted), so GFLOP/s figures are "useful" throughput.  The
machine peak is the best of both frameworks' 2048^3 float32 matmul, measured in the same run; the FLOP
floor of a phase is FLOPs / peak and "x floor" is the measured time over it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)
from _workers import (Worker, fmt_table, interleave, machine_info, median, serve, splice_block,  # noqa: E402
                      timed)

TRAIN_SIZE, TRAIN_BATCH = 128, 4
QUICK_SIZE, QUICK_TRAIN_BATCH = 64, 2
TRAIN_MS_RECOMPUTE = "train_recompute"  # phase: the train step with MindSpore recomputing, PyTorch not


# ------------------------------------------------------------------------------------------ model table
@dataclass
class ModelSpec:
    """A model in both frameworks.  ``torch_factory(ms_kwargs)`` returns an ``nn.Module`` with
    ``forward(x) -> y`` on [0, 1] images, parameter names equal to the MindSpore ones."""
    label: str
    ms_name: str
    quick_ms_name: str
    torch_factory: Callable
    ms_kwargs: dict = field(default_factory=dict)
    quick_ms_kwargs: dict = field(default_factory=dict)
    required_files: tuple = ()
    flops_scale_with_pixels: bool = True  # fully convolutional (+ channel attention): FLOPs ~ H*W
    # full-size train phase: both frameworks recompute the transformer blocks' activations (MindSpore
    # train.recompute, torch.utils.checkpoint), else the two workers' steps do not fit in 24 GB together
    train_recompute: bool = False


def resolve(key: str, quick: bool) -> dict:
    """Registry configurations (this model and the models it refers to), resolved in the parent process so
    that the PyTorch worker never imports mindspore."""
    from ms_osr.registry import model_kwargs

    name, overrides = _spec_for(key, quick)
    factory, kw = model_kwargs(name, **overrides)
    subs = {}
    if factory == "osr":
        ref = kw.get("restorer", "osr_resnet")
        subs[ref] = model_kwargs(ref, **dict(kw.get("restorer_kwargs") or {}))[1]
    if factory == "ptg_rm_wrapper":
        ref = kw.get("base", "restormer_small")
        subs[ref] = model_kwargs(ref, **dict(kw.get("base_kwargs") or {}))[1]
        osf_kw = dict(kw.get("osf_kwargs") or {})
        subs["osf"] = model_kwargs(osf_kw.pop("config", "clip_vit_b32"), **osf_kw)[1]
    return {"name": name, "overrides": overrides, "kwargs": kw, "subs": subs}


def _torch_restormer(kw, subs=None):
    from torch_ref.restormer_ref import Restormer

    return Restormer(**kw)


def _torch_hair(kw, subs=None):
    from torch_ref.hair_ref import HAIR

    return HAIR(**kw)


def _torch_gdn(kw, subs=None):
    from torch_ref.griddehazenet_ref import GridDehazeNetRef

    class Normalised(GridDehazeNetRef):
        """The MindSpore model normalises ([0,1] -> [-1,1]) inside; the reference expects it done."""

        def forward(self, x):
            return super().forward((x - 0.5) / 0.5)

    return Normalised(**kw)


def _torch_osr_resnet(kw, subs=None):
    from torch_ref.osr_resnet_ref import OSRNetRef

    if kw.get("width", 1.0) != 1.0:
        raise ValueError("the PyTorch OSR Net reference exists at width 1 only")

    class Normalised(OSRNetRef):
        """The MindSpore Net normalises ([0,1] -> [-1,1]) inside; the reference expects it done."""

        def forward(self, x):
            return super().forward((x - 0.5) / 0.5)

    return Normalised()


def _torch_osr(kw, subs):
    """PyTorch twin of ms_osr.models.osr.OSR (tests/torch_ref/osr_ref.py) around a reference restorer."""
    from torch_ref.osr_ref import OSRRef

    name = kw.get("restorer", "osr_resnet")
    return OSRRef(TORCH_RESTORERS[name](subs[name]), kw.get("adapter_channels", 32), kw.get("fusion_channels", 32),
                  kw.get("angle_eps", 1e-3), kw.get("freeze_restorer", True))


def _torch_ptg_wrapper(kw, subs):
    """PyTorch twin of ms_osr.models.ptg_rm.PTGRMWrapper: frozen base + frozen CLIP OSF + refinement2."""
    import torch.nn as tnn
    from torch_ref.clip_ref import CLIPImageEncoderRef
    from torch_ref.ptg_rm_ref import refinement2

    base_name = kw.get("base", "restormer_small")
    base = TORCH_RESTORERS[base_name](subs[base_name])
    clip_kw = {k: v for k, v in subs["osf"].items() if k not in ("normalize", "ckpt")}
    osf = CLIPImageEncoderRef(**clip_kw)
    ptg = refinement2(osf_dim=clip_kw.get("output_dim", 512), **dict(kw.get("ptg_kwargs") or {}))

    class Wrapper(tnn.Module):
        def __init__(self):
            super().__init__()
            self.base, self.osf, self.refinement11 = base, osf, ptg
            self.osf.requires_grad_(False)
            if kw.get("freeze_base", True):
                self.base.requires_grad_(False)

        def forward(self, x):
            return self.refinement11(self.osf(x).detach(), self.base(x), x)

    return Wrapper()


TORCH_RESTORERS = {"restormer": _torch_restormer, "restormer_small": _torch_restormer,
                   "restormer_tiny": _torch_restormer, "res_hair": _torch_hair, "res_hair_small": _torch_hair,
                   "res_hair_tiny": _torch_hair, "griddehazenet": _torch_gdn, "griddehazenet_small": _torch_gdn,
                   "osr_resnet": _torch_osr_resnet}

# PyTorch reference classes matching the MindSpore cells with ``recompute_unit = True``
TORCH_RECOMPUTE_UNITS = ("TransformerBlock", "Hytrans")

MODELS = [
    ModelSpec("Restormer", "restormer", "restormer_tiny", _torch_restormer, train_recompute=True,
              required_files=("ms_osr/models/restormer.py", "tests/torch_ref/restormer_ref.py")),
    ModelSpec("Res-HAIR", "res_hair", "res_hair_tiny", _torch_hair, train_recompute=True,
              required_files=("ms_osr/models/hair.py", "tests/torch_ref/hair_ref.py")),
    ModelSpec("GridDehazeNet", "griddehazenet", "griddehazenet_small", _torch_gdn,
              required_files=("ms_osr/models/griddehazenet.py", "tests/torch_ref/griddehazenet_ref.py")),
    ModelSpec("OSR Net", "osr_resnet", "osr_resnet", _torch_osr_resnet,
              required_files=("ms_osr/models/osr_resnet.py", "tests/torch_ref/osr_resnet_ref.py")),
    ModelSpec("OSR(OSR Net)", "osr", "osr", _torch_osr, quick_ms_kwargs=dict(adapter_channels=16, fusion_channels=16),
              required_files=("ms_osr/models/osr.py", "tests/torch_ref/osr_resnet_ref.py")),
    ModelSpec("PTG-RM(GridDehazeNet)+CLIP", "ptg_rm_wrapper", "ptg_rm_wrapper", _torch_ptg_wrapper,
              ms_kwargs=dict(base="griddehazenet", osf="clip"), flops_scale_with_pixels=False,
              quick_ms_kwargs=dict(base="griddehazenet_small", osf="clip", osf_kwargs={"config": "clip_tiny"},
                                   ptg_kwargs={"num_blocks": 1}),
              required_files=("ms_osr/models/ptg_rm.py", "ms_osr/models/osf.py", "ms_osr/models/clip.py",
                              "tests/torch_ref/ptg_rm_ref.py", "tests/torch_ref/clip_ref.py")),
]
KEYS = {m.ms_name: m for m in MODELS}


def _spec_for(key: str, quick: bool) -> tuple:
    spec = KEYS[key]
    return (spec.quick_ms_name, spec.quick_ms_kwargs) if quick else (spec.ms_name, spec.ms_kwargs)


def availability(spec: ModelSpec) -> str | None:
    """None when the model can be benchmarked, else why not."""
    missing = [f for f in spec.required_files if not os.path.exists(os.path.join(REPO, f))]
    if missing:
        return "not available (missing " + ", ".join(missing) + ")"
    return None


# ------------------------------------------------------------------------------------------------ workers
def _param_count_torch(m) -> int:
    return sum(p.numel() for p in m.parameters())


def torch_train_step(model, x, y, recompute: bool):
    """``(run, trainable)``: one PyTorch step (forward + L1 + backward + AdamW) of ``model`` on ``(x, y)``; with
    ``recompute`` the blocks of TORCH_RECOMPUTE_UNITS are checkpointed, as ms_osr's recompute units are."""
    import torch
    import torch.nn.functional as F

    if recompute:
        from torch.utils.checkpoint import checkpoint

        for m in model.modules():
            if type(m).__name__ in TORCH_RECOMPUTE_UNITS:
                m.forward = (lambda f: lambda *a: checkpoint(f, *a, use_reentrant=False))(m.forward)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)

    def run():
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return run, sum(p.numel() for p in params)


def ms_train_step(net, x, y, recompute: bool):
    """``(step, args)``: the MindSpore twin of :func:`torch_train_step` (one compiled ``TrainStep``: forward + L1 +
    backward + AdamW) and its inputs; ``step(*args)`` runs one step. With ``recompute`` the recompute units of
    ``net`` are recomputed in the backward pass."""
    import mindspore as ms

    from ms_osr.training.optim import AdamW, bias_corrections
    from ms_osr.training.step import LossNet, TrainStep

    net.set_train(True)
    if recompute:
        from ms_osr.training.recompute import enable_recompute

        enable_recompute(net)
    step = TrainStep(LossNet(net, {"type": "l1"}), AdamW(net.trainable_params(), weight_decay=1e-4))
    step.set_train(True)
    bc1, bc2 = bias_corrections(0, (0.9, 0.999))
    return step, (x, y, ms.Tensor(1e-4, ms.float32), ms.Tensor(bc1, ms.float32), ms.Tensor(bc2, ms.float32))


def _torch_worker(threads: int):
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, os.path.join(REPO, "tests"))
    sys.path.insert(0, REPO)
    torch.set_num_threads(threads)
    st: dict = {}

    def count_flops(fn) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())

    def handle(req: dict) -> dict:
        op = req["op"]
        if op == "info":
            return {"version": torch.__version__, "rss_start_mb": _rss()}
        if op == "matmul_setup":
            n = req["n"]
            a, b = torch.rand(n, n), torch.rand(n, n)
            st["run"] = lambda: torch.matmul(a, b)
            st["run"]()
            return {"ok": True}
        if op == "build":
            cfg = req["config"]
            torch.manual_seed(0)
            model = KEYS[req["model"]].torch_factory(cfg["kwargs"], cfg["subs"]).eval()
            sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
            np.savez(req["weights"], **sd)
            st["model"] = model
            return {"params": _param_count_torch(model)}
        if op == "infer_setup":
            model = st["model"].eval()
            x = torch.from_numpy(np.load(req["input"]))

            def run():
                with torch.inference_mode():
                    return model(x)

            np.save(req["output"], run().numpy())
            st["run"] = run
            if not req.get("count_flops", True):
                return {"flops": None}
            return {"flops": count_flops(run)}  # second (warm) call, under the counter
        if op == "train_setup":
            model = st["model"].train()
            x = torch.from_numpy(np.load(req["input"]))
            y = torch.from_numpy(np.load(req["target"]))
            # forward + backward = 3x the forward FLOPs (FlopCounterMode counts grouped-conv backward as
            # dense, ~8x too much for Restormer, and over-counts checkpointed blocks)
            with torch.no_grad():
                flops = 3 * count_flops(lambda: model(x))
            run, trainable = torch_train_step(model, x, y, bool(req.get("recompute")))
            run()
            st["run"] = run
            return {"flops": flops, "trainable": trainable}
        if op == "time":
            return {"times": timed(st["run"], req.get("reps", 1))}
        raise ValueError(f"unknown request {op}")

    return handle


def _ms_worker(threads: int):
    import ms_osr  # noqa: F401  (oneDNN ISA cap before mindspore)
    from ms_osr.runtime import setup_runtime

    setup_runtime(device="cpu", mode="graph", seed=0, threads=threads)
    import warnings

    import mindspore as ms
    import numpy as np
    from mindspore import nn, ops

    from ms_osr.checkpoint import load_arrays_into_net
    from ms_osr.convert import convert_state_dict
    from ms_osr.registry import create_model

    warnings.filterwarnings("ignore", message=".*random weights.*")
    st: dict = {}

    class MatMul(nn.Cell):
        def construct(self, a, b):
            return ops.matmul(a, b)

    def sync(out):
        ms.runtime.synchronize()
        return out

    def handle(req: dict) -> dict:
        op = req["op"]
        if op == "info":
            from ms_osr import cpu_isa

            return {"version": ms.__version__, "rss_start_mb": _rss(), "isa_cap": os.environ.get(cpu_isa.ISA_ENV),
                    "effective_isa": cpu_isa.effective_cpu_isa()}
        if op == "matmul_setup":
            n = req["n"]
            rng = np.random.default_rng(0)
            a = ms.Tensor(rng.random((n, n), dtype=np.float32))
            b = ms.Tensor(rng.random((n, n), dtype=np.float32))
            mm = MatMul()
            st["run"] = lambda: sync(mm(a, b))
            st["run"]()
            return {"ok": True}
        if op == "build":
            name, kw = req["config"]["name"], req["config"]["overrides"]
            net = create_model(name, **kw)
            with np.load(req["weights"]) as z:
                sd = {k: z[k] for k in z.files}
            load_arrays_into_net(net, convert_state_dict(net, sd, source=f"{name} (torch reference)"))
            st["net"] = net
            return {"params": int(sum(p.size for p in net.get_parameters()))}
        if op == "infer_setup":
            import time

            net = st["net"]
            net.set_train(False)
            x = ms.Tensor(np.load(req["input"]))
            t0 = time.perf_counter()
            out = sync(net(x))
            compile_s = time.perf_counter() - t0
            np.save(req["output"], out.asnumpy())
            st["run"] = lambda: sync(net(x))
            if compile_s < 30.0 or req.get("quick"):  # slow graphs: the first call already reached steady state
                st["run"]()
            return {"compile_s": compile_s}
        if op == "train_setup":
            import time

            net = st["net"]
            step, args = ms_train_step(net, ms.Tensor(np.load(req["input"])), ms.Tensor(np.load(req["target"])),
                                       bool(req.get("recompute")))
            t0 = time.perf_counter()
            sync(step(*args))
            compile_s = time.perf_counter() - t0
            st["run"] = lambda: sync(step(*args))
            st["run"]()
            return {"compile_s": compile_s,
                    "trainable": int(sum(p.size for p in net.trainable_params()))}
        if op == "time":
            return {"times": timed(st["run"], req.get("reps", 1))}
        raise ValueError(f"unknown request {op}")

    return handle


def _rss() -> float:
    from _workers import peak_rss_mb

    return peak_rss_mb()


# ------------------------------------------------------------------------------------------------- driver
def _pair(threads: int) -> dict:
    me = os.path.abspath(__file__)
    return {"ms": Worker(me, "ms", threads), "torch": Worker(me, "torch", threads)}


def _close(workers: dict) -> dict:
    return {k: workers[k].close().get("maxrss_mb") for k in ("ms", "torch") if k in workers}


def _rounds_for(first_times: list, default: int, quick: bool) -> int:
    """Fewer repetitions for slow phases (a full-size model at 512^2 takes minutes per call on 2 cores)."""
    if quick:
        return default
    slowest = max(first_times) if first_times else 0.0
    return min(default, 2 if slowest > 20.0 else (3 if slowest > 8.0 else default))


def measure_peak(threads: int, n: int, rounds: int, workers: dict | None = None) -> dict:
    own = workers is None
    workers = workers or _pair(threads)
    pair = {k: workers[k] for k in ("ms", "torch")}
    try:
        for w in pair.values():
            rep = w.call(op="matmul_setup", n=n)
            if "error" in rep:
                raise RuntimeError(rep["error"])
        times = interleave(pair, {"op": "time", "reps": 1}, rounds)
        info = {k: w.call(op="info") for k, w in pair.items()}
    finally:
        if own:
            _close(pair)
    flop = 2.0 * n ** 3
    return {"n": n, "gflops": {k: flop / median(t) / 1e9 for k, t in times.items()}, "info": info}


def run_phase(key: str, phase: str, quick: bool, threads: int, rounds: int, tmp: str, workers=None,
              flops_hint=None) -> dict:
    """One model, one phase ('infer<S>', 'train' or TRAIN_MS_RECOMPUTE); returns a result row.

    ``flops_hint(size)``: FLOPs scaled from an earlier inference phase of the same model, used instead of
    counting again when the model's FLOPs are proportional to the pixel count (saves a full PyTorch call).
    """
    import numpy as np

    own = workers is None
    workers = workers or _pair(threads)
    row: dict = {"model": KEYS[key].label, "key": key, "phase": phase}
    try:
        if "built" not in workers:
            weights = os.path.join(tmp, f"{key}.npz")
            cfg = resolve(key, quick)
            rep_t = workers["torch"].call(op="build", model=key, config=cfg, weights=weights)
            if "error" in rep_t:
                return dict(row, error=f"PyTorch build: {rep_t['error']}")
            rep_m = workers["ms"].call(op="build", model=key, config=cfg, weights=weights)
            if "error" in rep_m:
                return dict(row, error=f"MindSpore build: {rep_m['error']}")
            workers["built"] = {"params": rep_m["params"], "torch_params": rep_t["params"]}
        row.update(workers["built"])
        rng = np.random.default_rng(0)
        if phase.startswith("infer"):
            size = int(phase[5:])
            x = rng.random((1, 3, size, size), dtype=np.float32)
            inp = os.path.join(tmp, f"{key}-{phase}-x.npy")
            np.save(inp, x)
            outs = {k: os.path.join(tmp, f"{key}-{phase}-{k}.npy") for k in ("ms", "torch")}
            count = not (KEYS[key].flops_scale_with_pixels and flops_hint)
            for k in ("ms", "torch"):  # untimed set-up (compile, warm-up) of both workers at once
                workers[k].send(op="infer_setup", input=inp, output=outs[k], quick=quick, count_flops=count)
            reps = {k: workers[k].receive() for k in ("ms", "torch")}
        else:
            size, batch = (QUICK_SIZE, QUICK_TRAIN_BATCH) if quick else (TRAIN_SIZE, TRAIN_BATCH)
            inp = os.path.join(tmp, f"{key}-train-x.npy")
            tgt = os.path.join(tmp, f"{key}-train-y.npy")
            np.save(inp, rng.random((batch, 3, size, size), dtype=np.float32))
            np.save(tgt, rng.random((batch, 3, size, size), dtype=np.float32))
            both = KEYS[key].train_recompute and not quick
            # train_recompute: MindSpore's memory option (train.recompute) against PyTorch's default step
            recompute = {"ms": both or phase == TRAIN_MS_RECOMPUTE, "torch": both}
            for k in ("ms", "torch"):
                workers[k].send(op="train_setup", input=inp, target=tgt, recompute=recompute[k])
            reps = {k: workers[k].receive() for k in ("ms", "torch")}
            row["trainable"] = reps["ms"].get("trainable")
            if both:
                row["note"] = "both recompute block activations (train.recompute / torch.utils.checkpoint)"
            elif recompute["ms"]:
                row["note"] = "MindSpore recomputes block activations (train.recompute), PyTorch does not"
        for k, rep in reps.items():
            if "error" in rep:
                return dict(row, error=f"{'MindSpore' if k == 'ms' else 'PyTorch'} {phase}: {rep['error']}")
        row["flops"] = reps["torch"].get("flops") or flops_hint(size)
        row["flops_counted"] = bool(reps["torch"].get("flops"))
        row["compile_s"] = reps["ms"].get("compile_s")
        if phase.startswith("infer"):
            a, b = np.load(outs["ms"]), np.load(outs["torch"])
            row["max_abs_diff"] = float(np.abs(a - b).max()) if a.shape == b.shape else float("nan")
        first = interleave({k: workers[k] for k in ("ms", "torch")}, {"op": "time", "reps": 1}, 1)
        for k, t in first.items():
            if isinstance(t, dict):
                return dict(row, error=f"{k} timing: {t['error']}")
        more = _rounds_for(first["ms"] + first["torch"], rounds, quick) - 1
        rest = interleave({k: workers[k] for k in ("ms", "torch")}, {"op": "time", "reps": 1}, more)
        for k in ("ms", "torch"):
            if isinstance(rest[k], dict):
                return dict(row, error=f"{k} timing: {rest[k]['error']}")
            row[f"{k}_s"] = median(first[k] + rest[k])
            row[f"{k}_reps"] = len(first[k] + rest[k])
    finally:
        if own:
            row["maxrss_mb"] = _close(workers)
    return row


def run_all(models: list, phases: list, quick: bool, threads: int, rounds: int, log=print,
            partial: str | None = None) -> dict:
    """Full run: a fresh pair of worker processes per (model, phase), so RSS is per phase.  Quick run: one
    pair for everything (process start-up and import dominate small configs); RSS is then cumulative."""
    shared = _pair(threads) if quick else None
    rows = []
    try:
        peak = measure_peak(threads, 1024 if quick else 2048, 2 if quick else 5, shared)
        with tempfile.TemporaryDirectory(prefix="bench_models-") as tmp:
            for spec in models:
                why = availability(spec)
                if why:
                    rows.extend({"model": spec.label, "key": spec.ms_name, "phase": p, "error": why} for p in phases)
                    continue
                if shared is not None:
                    shared.pop("built", None)
                hint = None
                for phase in phases:
                    t0 = time.perf_counter()
                    row = run_phase(spec.ms_name, phase, quick, threads, rounds, tmp, shared, hint)
                    rows.append(row)
                    if phase.startswith("infer") and row.get("flops_counted"):
                        base_px = int(phase[5:]) ** 2
                        hint = (lambda f, px: (lambda size: f * size * size / px))(row["flops"], base_px)
                    if partial:  # keep what is measured so far (full runs take long)
                        with open(partial, "w") as fh:
                            json.dump({"peak": peak, "rows": rows}, fh)
                    log(f"  {spec.label} {phase}: {time.perf_counter() - t0:.0f} s "
                        f"{'(' + row['error'][:200] + ')' if 'error' in row else ''}")
    finally:
        if shared is not None:
            rss = _close(shared)
            for r in rows:
                r["maxrss_mb"] = rss
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for r in rows:  # a combined report mixes runs: each row keeps its own run's peak
        r["peak_gflops"] = max(peak["gflops"].values())
        r["run_date"] = date
    return {"date": date, "machine": machine_info(), "python": platform.python_version(), "threads": threads,
            "quick": quick, "peak": peak, "rows": rows}


# ------------------------------------------------------------------------------------------------ report
def _f(x, fmt="{:.3g}") -> str:
    return "-" if x is None or x != x else fmt.format(x)


def _short_error(text: str, limit: int = 160) -> str:
    """One line from a (MindSpore) multi-line error: drop rulers and the C++ call stack."""
    text = text.split("C++ Call Stack")[0]
    parts = [ln.strip() for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= set("-")]
    return " ".join(parts).replace("|", "/")[:limit]


def render(report: dict) -> str:
    peak = max(report["peak"]["gflops"].values())
    rows = []
    for r in report["rows"]:
        if "error" in r:
            rows.append([r["model"], r["phase"]] + ["-"] * 11 + [_short_error(r["error"])])
            continue
        gf = r["flops"] / 1e9
        floor_s = r["flops"] / (r.get("peak_gflops", peak) * 1e9)
        rss = r.get("maxrss_mb") or {}
        rows.append([
            r["model"], r["phase"], f"{r['params'] / 1e6:.3f}", f"{gf:.1f}",
            _f(r["ms_s"], "{:.3f}"), _f(r["torch_s"], "{:.3f}"), f"{r['ms_s'] / r['torch_s']:.2f}",
            _f(gf / r["ms_s"], "{:.1f}"), _f(gf / r["torch_s"], "{:.1f}"), f"{r['ms_s'] / floor_s:.1f}",
            _f(rss.get("ms"), "{:.0f}"), _f(rss.get("torch"), "{:.0f}"), _f(r.get("max_abs_diff"), "{:.1e}"),
            r.get("note", ""),
        ])
    header = ["model", "phase", "params (M)", "GFLOP", "MS s", "PT s", "MS/PT", "MS GFLOP/s", "PT GFLOP/s",
              "MS x floor", "MS RSS MB", "PT RSS MB", "max abs diff", "note"]
    return fmt_table(header, rows)


def header_text(report: dict) -> str:
    m = report["machine"]
    p = report["peak"]
    info = p["info"]
    phases = sorted({r["phase"] for r in report["rows"]})
    runs = [f"run {i + 1}: {run['date']}, load average at end {run['machine']['load'][0]:.2f}, matmul peak "
            f"MindSpore {run['peak']['gflops']['ms']:.1f} / PyTorch {run['peak']['gflops']['torch']:.1f} GFLOP/s"
            for i, run in enumerate(report.get("runs", []))]
    return "\n".join(runs + [
        f"Date: {report['date']}; CPU: {m['cpu']} ({m['isa']}), {m['cores']} cores; threads {report['threads']}; "
        f"load average at end {m['load'][0]:.2f} / {m['load'][1]:.2f} / {m['load'][2]:.2f} (1/5/15 min)",
        f"MindSpore {info['ms'].get('version')} (GRAPH_MODE, oneDNN cap {info['ms'].get('isa_cap')}, effective "
        f"{info['ms'].get('effective_isa')}); PyTorch {info['torch'].get('version')}; Python {report['python']}",
        f"Matmul peak ({p['n']}^3 fp32): MindSpore {p['gflops']['ms']:.1f} GFLOP/s, PyTorch "
        f"{p['gflops']['torch']:.1f} GFLOP/s; floor uses the best, {max(p['gflops'].values()):.1f}",
        f"Process RSS after import (no model): MindSpore {info['ms'].get('rss_start_mb', 0):.0f} MB, PyTorch "
        f"{info['torch'].get('rss_start_mb', 0):.0f} MB",
        ("RSS: peak of one process that ran every model (quick mode)\n" if report["quick"] else
         "RSS: peak resident memory of a fresh process per model and phase (ru_maxrss)\n") +
        f"Phases: {', '.join(phases)}; train = forward+L1+backward+AdamW (FLOPs: 3x forward), batch "
        f"{QUICK_TRAIN_BATCH if report['quick'] else TRAIN_BATCH} at "
        f"{QUICK_SIZE if report['quick'] else TRAIN_SIZE}^2; times are medians of interleaved repetitions",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small configs at 64x64, 2 repetitions (CI, ~2 min)")
    p.add_argument("--models", default=None, help="comma list of model keys: " + ",".join(KEYS))
    p.add_argument("--phases", default=None, help="comma list, e.g. infer256,infer512,train; "
                   f"{TRAIN_MS_RECOMPUTE}: train with MindSpore's recomputation against PyTorch's plain step")
    p.add_argument("--rounds", type=int, default=None, help="interleaved repetitions (default 5; 3 if slow)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="write a markdown report (default benchmarks/results.md for a "
                                                "full run, none for --quick)")
    p.add_argument("--json", default=None, help="also write the raw results")
    p.add_argument("--combine", default=None, help="render one report from several --json files (comma list): "
                                                    "rows in the given order, a later file's (model, phase) "
                                                    "row replacing an earlier one; header of the first")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--reply-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        serve(_torch_worker(args.threads) if args.worker == "torch" else _ms_worker(args.threads), args.reply_fd)
        return 0
    if args.combine:
        parts = []
        for path in args.combine.split(","):
            with open(path) as fh:
                parts.append(json.load(fh))
        rows: dict = {}  # (model, phase) -> row; a later file re-measures and replaces an earlier row
        for part in parts:
            rows.update({(r["key"], r["phase"]): r for r in part["rows"]})
        report = dict(parts[0], rows=list(rows.values()),
                      runs=[{k: part[k] for k in ("date", "machine", "peak")} for part in parts])
        return _emit(report, args.out or os.path.join(HERE, "results.md"), args.json)
    keys = args.models.split(",") if args.models else list(KEYS)
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {', '.join(KEYS)}")
    phases = args.phases.split(",") if args.phases else (
        [f"infer{QUICK_SIZE}", "train"] if args.quick else ["infer256", "infer512", "train"])
    bad = [ph for ph in phases if not re.fullmatch(rf"infer\d+|train|{TRAIN_MS_RECOMPUTE}", ph)]
    if bad:
        p.error(f"unknown phase(s) {bad}; use infer<size>, train or {TRAIN_MS_RECOMPUTE}")
    rounds = args.rounds or (2 if args.quick else 5)
    report = run_all([KEYS[k] for k in keys], phases, args.quick, args.threads, rounds,
                     log=lambda s: print(s, file=sys.stderr, flush=True),
                     partial=(args.json + ".partial") if args.json else None)
    return _emit(report, args.out or (None if args.quick else os.path.join(HERE, "results.md")), args.json)


def _emit(report: dict, out: str | None, json_path: str | None) -> int:
    from ms_osr.fileio import atomic_write_text

    text = header_text(report) + "\n\n" + render(report)
    print(text)
    if json_path:
        atomic_write_text(json_path, json.dumps(report, indent=1))
    if out:
        atomic_write_text(out, splice_block(out, "bench_models", text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
