"""GRAPH_MODE caches a compiled cell under (phase, create time, id): a cell whose sub-cells changed (a
new OSF provider, C++ kernels switched off for export) would keep running the old graph.  A new create
time forces a fresh compile; putting the old one back finds the graphs compiled before again."""
from __future__ import annotations

import time
from typing import Any, Optional


def renew_create_time(cell: Any) -> Optional[int]:
    """Give ``cell`` a new create time (its next call compiles anew); returns the previous one."""
    previous = getattr(cell, "_create_time", None)
    object.__setattr__(cell, "_create_time", time.time_ns())
    return previous


def restore_create_time(cell: Any, value: Optional[int]) -> None:
    """Put back a create time returned by :func:`renew_create_time`."""
    object.__setattr__(cell, "_create_time", value)
