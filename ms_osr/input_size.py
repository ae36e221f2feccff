"""Which image sizes a model can restore meaningfully, for user-facing runs (test.py).

A network works on sides that are multiples of its ``size_multiple`` (and at least its
``min_size``, e.g. Res-HAIR's 32); smaller inputs are reflect-padded to that unit and cropped
back.  Reflect padding adds at most ``side - 1`` pixels of mirrored image; past that it mirrors
the mirror, so a 3-pixel side padded to 8 is mostly repeated copies (meaningless pixels).  A
side must therefore be at least ``ceil((unit + 1) / 2)`` pixels, and always 2 (a 1-pixel side
has no neighbour to mirror).
"""
from __future__ import annotations

from typing import Optional, Tuple


def model_unit(restore_fn) -> int:
    """Smallest side the network computes on: its size multiple, or its ``min_size`` if larger."""
    net = getattr(restore_fn, "net", restore_fn)
    multiple = getattr(restore_fn, "size_multiple", None) or getattr(net, "size_multiple", 1) or 1
    return max(int(multiple), int(getattr(net, "min_size", 1) or 1))


def min_side(unit: int) -> int:
    """Smallest side that reaches ``unit`` with one reflection (and at least 2)."""
    return max(2, (int(unit) + 2) // 2)


def size_verdict(height: int, width: int, unit: int) -> Tuple[Optional[str], Optional[str]]:
    """``(refusal, note)`` for an image: a refusal when it is too small to restore, a note when
    it is smaller than ``unit`` x ``unit`` and will be reflect-padded."""
    unit = max(1, int(unit))
    need = min_side(unit)
    if min(height, width) < need:
        why = (f"this model works on at least {unit}x{unit} and reflect padding needs a side of {need} px"
               if unit > 2 else "a side of 1 px has no neighbour to mirror")
        return f"{width}x{height} is too small to restore ({why}); skipped", None
    if min(height, width) < unit:
        return None, f"{width}x{height} is smaller than this model's {unit}x{unit} minimum; reflect-padded and cropped back"
    return None, None
