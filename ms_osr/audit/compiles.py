"""Count GRAPH_MODE compilations: which cell compiled, for which input shapes.

Ascend compiles a static graph per input shape (and GPU/CPU do too in GRAPH_MODE), so a run that should
reuse one graph (fixed tile size, fixed training patch size) must show exactly one compilation per cell;
anything that recompiles is logged with the shapes that caused it.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Iterator, List, Tuple

from mindspore.common.api import _cell_graph_executor

log = logging.getLogger(__name__)


@dataclass
class CompileLog:
    """``events``: one ``(cell class name, input shapes)`` per graph actually compiled (cache hits excluded)."""
    events: List[Tuple[str, Tuple]] = field(default_factory=list)

    def count(self, cell_class: str | None = None) -> int:
        return sum(1 for name, _ in self.events if cell_class is None or name == cell_class)

    def shapes(self, cell_class: str) -> List[Tuple]:
        return [shapes for name, shapes in self.events if name == cell_class]


def _shape(arg):
    shape = getattr(arg, "shape", None)
    return tuple(shape) if shape is not None else type(arg).__name__


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileLog]:
    """Inside the block, every compilation by MindSpore's cell graph executor is recorded and logged."""
    record = CompileLog()
    original = _cell_graph_executor.compile

    def compile_and_count(obj, *args, **kwargs):
        phase, compiled = original(obj, *args, **kwargs)
        if compiled:
            shapes = tuple(_shape(a) for a in args)
            record.events.append((type(obj).__name__, shapes))
            log.info("compiled %s for input shapes %s (graph %d of this block)", type(obj).__name__, shapes,
                     len(record.events))
        return phase, compiled

    _cell_graph_executor.compile = compile_and_count
    try:
        yield record
    finally:
        del _cell_graph_executor.compile  # back to the class's method
