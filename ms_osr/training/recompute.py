"""Activation recomputation ("gradient checkpointing") for training big models within memory.

A model marks its repeated blocks with the class attribute ``recompute_unit = True``;
:func:`enable_recompute` asks MindSpore to keep only each block's inputs during the forward pass and
to recompute the block's activations in the backward pass (``nn.Cell.recompute``).  Gradients are
unchanged; the step does roughly one extra forward pass.  Measured on CPU (GRAPH_MODE, Restormer,
one 128x128 image): peak memory 7.7 GB -> 4.9 GB for +16% step time (``benchmarks/results.md``).
"""
from __future__ import annotations

from mindspore import nn


def recompute_units(net: nn.Cell) -> list:
    """Names of the outermost cells of ``net`` whose class sets ``recompute_unit = True``."""
    names = []
    for name, cell in net.cells_and_names():
        if not getattr(type(cell), "recompute_unit", False):
            continue
        if any(name.startswith(outer + ".") for outer in names):
            continue  # already inside a recomputed block
        names.append(name)
    return names


def enable_recompute(net: nn.Cell) -> int:
    """Mark every outermost recompute unit of ``net`` for recomputation; returns how many were marked."""
    names = set(recompute_units(net))
    if not names:
        raise ValueError(f"{type(net).__name__} has no block marked for recomputation "
                         f"(no cell class with recompute_unit = True); set train.recompute: false")
    for name, cell in net.cells_and_names():
        if name in names:
            cell.recompute()
    return len(names)
