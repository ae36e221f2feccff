"""One call that prepares MindSpore before any network is built.

Every entry point (test.py, train.py, benchmarks, tests) calls :func:`setup_runtime`.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass

import numpy as np

from . import cpu_isa  # noqa: F401  (applies the oneDNN cap before mindspore loads)

import mindspore as ms  # noqa: E402

from . import kernels  # noqa: E402
from .errors import DeviceError  # noqa: E402

log = logging.getLogger(__name__)

DEVICE_NAMES = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
# Preference order when no device is requested.
AUTO_ORDER = ("Ascend", "GPU", "CPU")


@dataclass
class RuntimeInfo:
    device: str
    mode: str
    seed: int | None
    threads: int | None
    cpu_isa: str | None


def _device_available(target: str) -> bool:
    """True when the installed MindSpore package supports ``target`` and a device is present."""
    if target == "CPU":
        return True
    try:
        from mindspore._c_expression import MSContext

        if not MSContext.get_instance().is_pkg_support_device(target):
            return False
        module = getattr(ms.device_context, target.lower())
        return bool(module.is_available())
    except Exception:  # any failure to probe means "not usable"
        return False


def resolve_device(device: str | None = None) -> str:
    """Map ``cpu|gpu|ascend|auto|None`` to a MindSpore device target, failing loudly if unusable."""
    if device is None or device.lower() == "auto":
        env = os.environ.get("MS_OSR_DEVICE")
        if env:
            return resolve_device(env)
        for target in AUTO_ORDER:
            if _device_available(target):
                return target
        return "CPU"
    key = device.lower()
    if key not in DEVICE_NAMES:
        raise DeviceError(f"unknown device '{device}': choose one of cpu, gpu, ascend, auto")
    target = DEVICE_NAMES[key]
    if not _device_available(target):
        raise DeviceError(f"device '{device}' was requested but MindSpore cannot use it on this machine")
    return target


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and MindSpore (global and dataset) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    ms.set_seed(seed)
    ms.dataset.config.set_seed(seed)


_STATE: RuntimeInfo | None = None
_THREADS_SET: int | None = None


def _set_threads(threads: int) -> None:
    """Cap MindSpore's CPU threads; MindSpore 2.10 accepts the setting once per process."""
    global _THREADS_SET
    if _THREADS_SET == threads:
        return
    if _THREADS_SET is not None:
        log.warning("CPU thread count is already %d in this process; MindSpore cannot change it to %d",
                    _THREADS_SET, threads)
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    cpu_ctx = getattr(getattr(ms, "device_context", None), "cpu", None)
    if cpu_ctx is not None and hasattr(cpu_ctx, "op_tuning"):
        cpu_ctx.op_tuning.threads_num(threads)
    else:  # MindSpore < 2.5
        ms.set_context(runtime_num_threads=threads)
    kernels.set_threads(threads)
    _THREADS_SET = threads


def setup_runtime(device: str | None = None, mode: str = "graph", seed: int | None = None,
                  threads: int | None = None, jit_level: str | None = None) -> RuntimeInfo:
    """Select the device (Ascend > GPU > CPU unless given), execution mode, seed and CPU thread count.

    ``mode`` is ``"graph"`` (default, static graph compilation) or ``"pynative"``.
    ``threads`` caps MindSpore's CPU intra-op threads (default: all cores).
    Safe to call more than once; the device can only be chosen once per process.
    """
    global _STATE
    mode_key = mode.lower()
    if mode_key not in ("graph", "pynative"):
        raise DeviceError(f"unknown mode '{mode}': choose graph or pynative")
    target = resolve_device(device)
    if _STATE is None or _STATE.device != target:
        if hasattr(ms, "set_device"):
            ms.set_device(target)
        else:  # MindSpore < 2.5
            ms.set_context(device_target=target)
    ms.set_context(mode=ms.GRAPH_MODE if mode_key == "graph" else ms.PYNATIVE_MODE)
    if jit_level:
        ms.set_context(jit_config={"jit_level": jit_level})
    if threads:
        _set_threads(int(threads))
    if seed is not None:
        seed_everything(seed)
    _STATE = RuntimeInfo(device=target, mode=mode_key, seed=seed, threads=threads,
                         cpu_isa=os.environ.get(cpu_isa.ISA_ENV))
    log.info("MindSpore %s on %s, %s mode, seed %s, threads %s, oneDNN ISA cap %s",
             ms.__version__, target, mode_key, seed, threads, _STATE.cpu_isa)
    return _STATE


def add_runtime_args(parser) -> None:
    """Add the common --device/--mode/--seed/--threads flags to an argparse parser."""
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu", "ascend"],
                        help="device target (auto: Ascend > GPU > CPU)")
    parser.add_argument("--mode", default="graph", choices=["graph", "pynative"], help="MindSpore execution mode")
    parser.add_argument("--seed", type=int, default=0, help="seed for Python, NumPy and MindSpore")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
