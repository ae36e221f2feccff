"""MindIR export with a numerical round-trip check.

``export_mindir(net, path, (H, W))`` writes a MindIR graph for a fixed input size, loads it
back with ``ms.load`` + ``nn.GraphCell`` and compares its output with the network's own
output on a seeded random image (max |diff| is returned).  A MindIR graph has a fixed
input shape; export one file per deployment size.  The graph uses MindSpore's own operators even where
the network runs ``ms_osr.kernels`` on CPU, so it loads on any MindSpore installation.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from . import cpu_isa  # noqa: F401
from . import kernels
from .fileio import new_file_mode

import mindspore as ms  # noqa: E402
import mindspore.nn as nn  # noqa: E402
from .errors import MsOsrError  # noqa: E402


class ExportError(MsOsrError, RuntimeError):
    """Export or its round-trip check failed (message names the file)."""


@dataclass
class ExportReport:
    path: str
    input_shape: Tuple[int, int, int, int]
    max_abs_diff: float
    mean_abs_diff: float
    size_bytes: int


def export_mindir(net, path: str, size: Tuple[int, int] = (256, 256), batch: int = 1, seed: int = 0,
                  tolerance: float = 1e-4) -> ExportReport:
    """Export ``net`` for inputs ``(batch, 3, H, W)`` to ``path`` (``.mindir``) and check it.

    The file is written atomically: the graph is exported into a temporary folder next to
    ``path`` and renamed only after the check passes.
    """
    path = os.fspath(path)
    if not path.endswith(".mindir"):
        path += ".mindir"
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ExportError(f"{path}: export size must be positive, got {h}x{w}")
    net.set_train(False)
    x_np = np.random.default_rng(seed).random((batch, 3, h, w), dtype=np.float32)
    x = ms.Tensor(x_np)
    expected = net(x)
    if isinstance(expected, (tuple, list)):
        expected = expected[0]
    expected = expected.asnumpy()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=".tmp-export-", dir=folder)
    try:
        base = os.path.join(tmpdir, "net")
        try:
            with kernels.stock_ops(net):  # a portable graph: no dependency on the local C++ kernels
                ms.export(net, x, file_name=base, file_format="MINDIR")
        except Exception as exc:
            raise ExportError(f"{path}: MindIR export failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
        produced = base + ".mindir"
        if not os.path.isfile(produced):
            raise ExportError(f"{path}: MindSpore did not write a MindIR file")
        graph = nn.GraphCell(ms.load(produced))
        got = graph(x)
        if isinstance(got, (tuple, list)):
            got = got[0]
        got = got.asnumpy()
        if got.shape != expected.shape:
            raise ExportError(f"{path}: exported graph returns shape {got.shape}, network {expected.shape}")
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        report = ExportReport(path, (batch, 3, h, w), float(diff.max()), float(diff.mean()),
                              os.path.getsize(produced))
        if not report.max_abs_diff <= tolerance:
            raise ExportError(f"{path}: exported graph differs from the network by max |diff| "
                              f"{report.max_abs_diff:.3g} > {tolerance:g}")
        os.chmod(produced, new_file_mode())  # MindSpore leaves it 0400; honour the umask like every output
        os.replace(produced, path)
        return report
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
