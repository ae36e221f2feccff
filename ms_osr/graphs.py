"""A bounded set of compiled graphs for a network that sees images of many sizes.

In GRAPH_MODE MindSpore compiles one graph per input shape and keeps it, with its runtime
resources, for the life of the cell: a folder of 48 distinct sizes made ``osr_small_rain`` grow to
5.2 GB and Res-HAIR spend ~4-10 s compiling per image (issue 22).  :class:`GraphRunner` calls a
network through one of three strategies (``docs/testing.md`` has the measurements that chose them):

* ``dynamic``: one graph with ``None`` height and width (``Cell.set_inputs``), compiled once and run
  for every size with exactly the same result as a static graph.  The C++ CPU kernels
  (``ms_osr.kernels``) are aot Custom ops without a dynamic-shape infer function in MindSpore 2.10,
  so the net runs MindSpore's own operators in this mode.
* ``bucket``: the caller pads every image up to a multiple of ``bucket`` pixels (reflect) and crops
  the result back (:meth:`GraphRunner.pad_multiple`); static graphs, at most ``max_graphs`` alive.
* ``static``: one static graph per input shape, at most ``max_graphs`` alive.

When a new static shape would exceed ``max_graphs``, every graph of the net is released with its
runtime resources (``del_net_res``; see :meth:`GraphRunner._call_static` for why not just the oldest),
so memory does not grow with the number of distinct sizes.  ``auto``
tries ``dynamic`` and falls back to ``bucket`` when the network does not compile with dynamic shapes.
In PYNATIVE mode (or for a callable that is not a Cell) nothing is compiled and every strategy is a
plain call.
"""
from __future__ import annotations

import gc
import logging
import math
import time
from dataclasses import dataclass

from . import cpu_isa  # noqa: F401  (oneDNN cap before mindspore loads)

import mindspore as ms  # noqa: E402
from .errors import MsOsrError  # noqa: E402

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "dynamic", "bucket", "static")


class GraphStrategyError(MsOsrError, ValueError):
    """The requested strategy cannot run this network (one line)."""


@dataclass
class GraphStats:
    """What the runner did so far (for logs, tests and the benchmark)."""

    calls: int = 0
    compiles: int = 0  # graphs compiled, evicted ones included
    evictions: int = 0
    compile_call_s: float = 0.0  # wall time of the calls that compiled (compile + that call's compute)


def _graph_mode() -> bool:
    return ms.get_context("mode") == ms.GRAPH_MODE


def _compiles(net) -> bool:
    """Graphs exist only for cells in GRAPH_MODE; any other callable is called as it is."""
    return _graph_mode() and isinstance(net, ms.nn.Cell)


def _kernel_cells(net):
    from .kernels import KernelCell

    return [cell for _, cell in net.cells_and_names() if isinstance(cell, KernelCell) and cell.use_kernel]


def release_graphs(net, phases) -> None:
    """Free the compiled graphs ``phases`` of ``net`` and their runtime resources."""
    from mindspore.graph.api import _cell_graph_executor

    phases = set(phases)
    if not phases:
        return
    _cell_graph_executor.del_net_res(net, phases)
    net.compile_cache.difference_update(phases)
    gc.collect()


class GraphRunner:
    """Call ``net(x, *extra)`` for NCHW inputs of any height/width with a bounded number of graphs.

    Args:
        net: the network (in eval mode).
        strategy: ``auto``, ``dynamic``, ``bucket`` or ``static`` (see the module docstring).
        max_graphs: static/bucket graphs kept alive at once (then all are released and compiled again on use).
        bucket: bucket step in pixels for ``bucket`` (rounded up to the net's ``size_multiple``).
    """

    def __init__(self, net, strategy: str = "auto", max_graphs: int = 4, bucket: int = 64):
        if strategy not in STRATEGIES:
            raise GraphStrategyError(f"unknown graph strategy '{strategy}': choose one of {', '.join(STRATEGIES)}")
        if max_graphs < 1:
            raise GraphStrategyError(f"max_graphs must be at least 1, got {max_graphs}")
        if bucket < 1:
            raise GraphStrategyError(f"bucket must be a positive number of pixels, got {bucket}")
        self.net = net
        self.requested = strategy
        self.strategy = "dynamic" if strategy == "auto" else strategy
        self.max_graphs = max_graphs
        self.bucket = bucket
        self.stats = GraphStats()
        self._dynamic_ok = False  # a dynamic-shape graph of this net compiled and ran
        self._shapes: set = set()  # static shapes compiled since the last release

    # -- geometry -------------------------------------------------------------------------
    def pad_multiple(self, size_multiple: int) -> int:
        """The multiple the caller pads images to before calling: the bucket step under ``bucket``."""
        if self.strategy != "bucket":
            return size_multiple
        return size_multiple * math.ceil(self.bucket / size_multiple)

    @property
    def graphs_alive(self) -> int:
        return len(self.net.compile_cache) if _compiles(self.net) else 0

    # -- calls ----------------------------------------------------------------------------
    def __call__(self, x: ms.Tensor, *extra, fixed: bool = False):
        """``fixed``: the caller sends few distinct shapes (the tiles of one tile size), so a static
        graph, which runs the C++ kernels, is used under every strategy (counted in ``max_graphs``)."""
        self.stats.calls += 1
        if not _compiles(self.net):
            return self.net(x, *extra)
        if self.strategy == "dynamic" and not fixed:
            try:
                out = self._call_dynamic(x, extra)
                self._dynamic_ok = True
                return out
            except (RuntimeError, TypeError, ValueError) as exc:
                if self.requested != "auto" or self._dynamic_ok:
                    raise
                self._fall_back(exc)
        return self._call_static(x, extra)

    def _timed(self, fn):
        before = set(self.net.compile_cache)
        t0 = time.perf_counter()
        out = fn()
        new = set(self.net.compile_cache) - before
        if new:
            self.stats.compiles += len(new)
            self.stats.compile_call_s += time.perf_counter() - t0
        return out, new

    def _call_dynamic(self, x, extra):
        # The dynamic signature and the kernel switch hold only during this call, so the net stays a
        # plain static-shape cell for its other users; MindSpore finds the compiled dynamic graph again
        # by its signature (the kernel switch is not part of the key, hence it must be off every time).
        kernels = _kernel_cells(self.net)
        dyn = [x.shape[0], x.shape[1], None, None]
        # an extra input shaped like x (a training target) varies with it; others (a GIV, scalars) are fixed
        spec = [ms.Tensor(shape=dyn if tuple(t.shape) == tuple(x.shape) else t.shape, dtype=t.dtype)
                for t in (x,) + tuple(extra)]
        for cell in kernels:  # aot Custom ops have no dynamic-shape infer in MindSpore 2.10
            cell.use_kernel = False
        try:
            self.net.set_inputs(*spec)
            out, _ = self._timed(lambda: self.net(x, *extra))
        finally:
            object.__setattr__(self.net, "_dynamic_shape_inputs", None)
            for cell in kernels:
                cell.use_kernel = True
        return out

    def _fall_back(self, exc: Exception) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("%s does not compile with dynamic shapes (%s); using size buckets of %d px",
                    type(self.net).__name__, first[:160], self.bucket)
        self.strategy = "bucket"

    def _call_static(self, x, extra):
        key = (tuple(x.shape),) + tuple(tuple(e.shape) for e in extra)
        if key not in self._shapes and len(self._shapes) >= self.max_graphs:
            # MindSpore 2.10: del_net_res also resets the cell's table of argument keys, so after releasing
            # one graph every other shape compiles again under a new key while its old graph stays
            # allocated (measured on a toy net).  Releasing all of them at once is what actually bounds memory.
            self.stats.evictions += len(self.net.compile_cache)
            release_graphs(self.net, self.net.compile_cache)
            self._shapes.clear()
        out, _ = self._timed(lambda: self.net(x, *extra))
        self._shapes.add(key)
        return out

    def describe(self) -> str:
        """One line: strategy and graph counts."""
        return (f"graphs: {self.strategy} strategy, {self.stats.compiles} compiled, {self.graphs_alive} alive, "
                f"{self.stats.evictions} released")

