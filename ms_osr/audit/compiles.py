"""Count GRAPH_MODE compilations: which cell compiled, for which input shapes.

Ascend compiles a static graph per input shape (and GPU/CPU do too in GRAPH_MODE), so a run that should
reuse one graph (fixed tile size, fixed training patch size) must show exactly one compilation per cell.
:func:`count_compiles` records them for a block of code; :func:`watch_recompiles` reports every further
graph a given cell compiles (train.py watches its step this way).
"""
from __future__ import annotations

import contextlib
import logging
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Tuple

from mindspore.common.api import _cell_graph_executor

log = logging.getLogger(__name__)

Listener = Callable[[object, Tuple], None]
_listeners: List[Listener] = []
_watched: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _shape(arg):
    shape = getattr(arg, "shape", None)
    return tuple(shape) if shape is not None else type(arg).__name__


def _install() -> None:
    """Wrap the executor's compile once per process; it then tells every listener about each new graph."""
    if "compile" in vars(_cell_graph_executor):
        return
    original = _cell_graph_executor.compile

    def compile_and_tell(obj, *args, **kwargs):
        phase, compiled = original(obj, *args, **kwargs)
        if compiled:
            shapes = tuple(_shape(a) for a in args)
            for listener in list(_listeners):
                listener(obj, shapes)
        return phase, compiled

    _cell_graph_executor.compile = compile_and_tell


@dataclass
class CompileLog:
    """``events``: one ``(cell class name, input shapes)`` per graph actually compiled (cache hits excluded)."""
    events: List[Tuple[str, Tuple]] = field(default_factory=list)

    def count(self, cell_class: str | None = None) -> int:
        return sum(1 for name, _ in self.events if cell_class is None or name == cell_class)

    def shapes(self, cell_class: str) -> List[Tuple]:
        return [shapes for name, shapes in self.events if name == cell_class]


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileLog]:
    """Inside the block, every graph MindSpore compiles is recorded and logged."""
    _install()
    record = CompileLog()

    def listen(obj, shapes):
        record.events.append((type(obj).__name__, shapes))
        log.info("compiled %s for input shapes %s (graph %d of this block)", type(obj).__name__, shapes,
                 len(record.events))

    _listeners.append(listen)
    try:
        yield record
    finally:
        _listeners.remove(listen)


def _on_watched(obj, shapes) -> None:
    entry = _watched.get(obj)
    if entry is None:
        return
    entry[0] += 1
    if entry[0] > 1:
        entry[1](f"{type(obj).__name__} compiled graph {entry[0]} for input shapes {shapes}: every new input "
                 f"shape is a new graph (minutes on Ascend); keep the patch size and batch size fixed")


def watch_recompiles(cell, say: Callable[[str], None]) -> None:
    """Call ``say`` whenever ``cell`` compiles a graph after its first one."""
    _install()
    if _on_watched not in _listeners:
        _listeners.append(_on_watched)
    _watched[cell] = [0, say]
