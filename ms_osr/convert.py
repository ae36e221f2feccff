"""PyTorch <-> MindSpore checkpoint conversion, shared by every model.

The name map is derived from the network itself: MindSpore norm and embedding cells
call their parameters ``gamma/beta/moving_mean/moving_variance/embedding_table`` where
PyTorch says ``weight/bias/running_mean/running_var/weight``; every other parameter keeps
its PyTorch name because our architectures use the official attribute names.  A cell
that must differ declares it with a ``torch_name_overrides()`` method returning
``{local_ms_name: local_torch_name}`` and may list PyTorch buffers to drop in a
``torch_ignored_keys`` attribute (regular expressions, relative to that cell).
"""
from __future__ import annotations

import re
from typing import Dict

import numpy as np

from .checkpoint import ConversionError, align_wrapper_prefix, describe_mismatch, net_param_shapes

# Buffers PyTorch stores that have no MindSpore parameter.
ALWAYS_IGNORED = (r"(^|\.)num_batches_tracked$",)

_NORM_RENAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                 "moving_variance": "running_var"}


def _norm_cell_types() -> tuple:
    import mindspore.nn as nn

    return tuple(getattr(nn, n) for n in ("LayerNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d",
                                          "BatchNorm3d", "InstanceNorm2d") if hasattr(nn, n))


def torch_name_map(net) -> Dict[str, str]:
    """``{mindspore_name: pytorch_name}`` for every parameter of ``net``."""
    import mindspore.nn as nn

    norm_types = _norm_cell_types()
    ms_names = list(net.parameters_dict())
    mapping = {n: n for n in ms_names}
    for cell_name, cell in net.cells_and_names():
        prefix = f"{cell_name}." if cell_name else ""
        local = {}
        if isinstance(cell, norm_types):
            local = {k: v for k, v in _NORM_RENAMES.items()}
        elif isinstance(cell, nn.Embedding):
            local = {"embedding_table": "weight"}
        overrides = getattr(cell, "torch_name_overrides", None)
        if callable(overrides):
            local.update(overrides())
        for ms_local, torch_local in local.items():
            full = prefix + ms_local
            if full in mapping:
                mapping[full] = prefix + torch_local
    return mapping


def _ignored_patterns(net) -> list:
    patterns = [re.compile(p) for p in ALWAYS_IGNORED]
    for cell_name, cell in net.cells_and_names():
        prefix = re.escape(f"{cell_name}.") if cell_name else ""
        for pat in getattr(cell, "torch_ignored_keys", ()):
            patterns.append(re.compile("^" + prefix + pat))
    return patterns


def convert_state_dict(net, state_dict: Dict[str, np.ndarray], source: str = "<state_dict>") -> Dict[str, np.ndarray]:
    """Rename a PyTorch state_dict to ``net``'s MindSpore names, checking every name and shape."""
    name_map = torch_name_map(net)
    shapes = net_param_shapes(net)
    torch_to_ms = {t: m for m, t in name_map.items()}
    state_dict = align_wrapper_prefix(state_dict, torch_to_ms)
    ignored = _ignored_patterns(net)
    out, unexpected = {}, []
    for tname, arr in state_dict.items():
        if tname in torch_to_ms:
            out[torch_to_ms[tname]] = arr
        elif not any(p.search(tname) for p in ignored):
            unexpected.append(tname)
    missing = sorted(name_map[m] for m in shapes if m not in out)
    bad = sorted((name_map[m], tuple(a.shape), shapes[m]) for m, a in out.items() if tuple(a.shape) != shapes[m])
    if missing or unexpected or bad:
        raise ConversionError.each_line(describe_mismatch(source, missing, sorted(unexpected), bad).splitlines())
    return {m: np.asarray(a, dtype=np.float32) if a.dtype.kind == "f" else a for m, a in out.items()}


def to_torch_state_dict(net, arrays: Dict[str, np.ndarray] | None = None) -> Dict[str, np.ndarray]:
    """MindSpore names -> PyTorch names (``arrays`` defaults to the network's own weights)."""
    if arrays is None:
        arrays = {n: p.asnumpy() for n, p in net.parameters_dict().items()}
    name_map = torch_name_map(net)
    return {name_map[n]: a for n, a in arrays.items()}


def select_prefix(state_dict: Dict[str, np.ndarray], prefix: str, source: str, hint: str = "") -> Dict[str, np.ndarray]:
    """The entries under ``prefix`` (e.g. ``refinement11.``), renamed without it; the rest is dropped."""
    picked = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not picked:
        raise ConversionError(f"{source}: no '{prefix}*' keys{f' ({hint})' if hint else ''}")
    return picked


def find_sub_network_prefix(net, state_dict: Dict[str, np.ndarray]) -> str | None:
    """The one prefix under which ``state_dict`` holds every tensor of ``net`` (a sub-network of a
    larger checkpoint, e.g. PTG-RM as ``refinement11.*`` in the SNR-aware network), else None."""
    wanted = [t for t in torch_name_map(net).values()]
    if not wanted:
        return None
    anchor = "." + wanted[0]
    candidates = {k[: len(k) - len(wanted[0])] for k in state_dict if k.endswith(anchor)}
    found = [p for p in candidates if all(p + t in state_dict for t in wanted)]
    return found[0] if len(found) == 1 else None
