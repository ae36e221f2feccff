"""Strict MindSpore checkpoint loading and atomic saving.

MindSpore's ``load_param_into_net`` is non-strict by default and matches names by
suffix, which can load a tensor into the wrong layer silently.  Everything in ms_osr
loads through :func:`load_arrays_into_net`, which demands the exact set of names and shapes;
:func:`ms_osr.build.load_weights` picks the reader (MindSpore ``.ckpt`` here, PyTorch files through
:mod:`ms_osr.convert`).
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, Tuple

import numpy as np

from .fileio import atomic_path
from .errors import MsOsrError  # noqa: E402

# Prefixes that PyTorch-side wrappers (DataParallel, Lightning) put in front of every name.
WRAPPER_PREFIXES = ("module.", "net.", "model.")
# Namespaces train.py stores beside the network weights in one file; never network weights.
TRAINING_NAMESPACES = ("optimizer.", "train_state.", "ema.")


class CheckpointError(MsOsrError, RuntimeError):
    """A checkpoint does not fit the network it is loaded into (message names the file)."""


class ConversionError(CheckpointError):
    """A PyTorch checkpoint cannot be converted for this model (message names the file)."""


def align_wrapper_prefix(arrays: Dict[str, np.ndarray], expected: Iterable[str],
                         prefixes: Iterable[str] = WRAPPER_PREFIXES) -> Dict[str, np.ndarray]:
    """Drop a wrapper prefix (``module.``, Lightning's ``net.``) that every name carries.

    A prefix is removed only when the network's own names do not carry it, so a model
    whose parameters really start with ``net.`` is never renamed.
    """
    expected = set(expected)
    names = list(arrays)
    changed = True
    while changed and names:
        changed = False
        for prefix in prefixes:
            if all(n.startswith(prefix) for n in names) and not all(e.startswith(prefix) for e in expected):
                arrays = {k[len(prefix):]: v for k, v in arrays.items()}
                names = list(arrays)
                changed = True
    return arrays


def describe_mismatch(path: str, missing: list, unexpected: list, bad_shapes: list) -> str:
    """One-line summary followed by the full lists, for CheckpointError/ConversionError messages."""
    head = (f"{path}: checkpoint does not match the network: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(bad_shapes)} with the wrong shape")
    lines = [head]
    lines += [f"  missing:    {n}" for n in missing]
    lines += [f"  unexpected: {n}" for n in unexpected]
    lines += [f"  shape:      {n}: checkpoint {a} vs network {b}" for n, a, b in bad_shapes]
    return "\n".join(lines)


def match_arrays(path: str, net_shapes: Dict[str, tuple], arrays: Dict[str, np.ndarray],
                 optional: Tuple[str, ...] = ()) -> None:
    """Raise CheckpointError unless ``arrays`` has exactly the names and shapes of ``net_shapes`` (names under
    an ``optional`` prefix may be missing)."""
    missing = sorted(n for n in set(net_shapes) - set(arrays) if not n.startswith(optional))
    unexpected = sorted(set(arrays) - set(net_shapes))
    bad = sorted((n, tuple(arrays[n].shape), tuple(net_shapes[n]))
                 for n in set(arrays) & set(net_shapes) if tuple(arrays[n].shape) != tuple(net_shapes[n]))
    if missing or unexpected or bad:
        raise CheckpointError.each_line(describe_mismatch(path, missing, unexpected, bad).splitlines())


def read_ckpt_arrays(path: str, namespace: str = "") -> Dict[str, np.ndarray]:
    """Read a MindSpore ``.ckpt`` as ``{name: ndarray}``.

    ``namespace`` selects names under a prefix (e.g. ``"ema."``) and strips it; otherwise
    the training namespaces are dropped.
    """
    import mindspore as ms

    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    try:
        raw = ms.load_checkpoint(path)
    except Exception as exc:  # MindSpore raises ValueError/RuntimeError for corrupt files
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if namespace:
        arrays = {k[len(namespace):]: v.asnumpy() for k, v in raw.items() if k.startswith(namespace)}
        if not arrays:
            raise CheckpointError(f"{path}: no parameters under '{namespace}'")
        return arrays
    return {k: v.asnumpy() for k, v in raw.items() if not k.startswith(TRAINING_NAMESPACES)}


def net_param_shapes(net) -> Dict[str, tuple]:
    return {name: tuple(p.shape) for name, p in net.parameters_dict().items()}


def identity_prefixes(net) -> Tuple[str, ...]:
    """Parameter-name prefixes of the cells of ``net`` that start as the identity (``identity_at_init``, e.g.
    :class:`ms_osr.models.layers.AffineSkip`): a checkpoint saved before such a cell was added still restores
    the same function, so their parameters may be missing from it and keep their initial values."""
    return tuple(f"{name}." for name, cell in net.cells_and_names()
                 if name and getattr(cell, "identity_at_init", False))


def load_arrays_into_net(net, arrays: Dict[str, np.ndarray], source: str = "<arrays>") -> None:
    """Strictly load ``{name: ndarray}`` into ``net`` (exact names and shapes, dtype cast; only the parameters
    of identity-initialised cells may be missing)."""
    import mindspore as ms

    params = net.parameters_dict()
    match_arrays(source, {n: tuple(p.shape) for n, p in params.items()}, arrays, identity_prefixes(net))
    for name, param in params.items():
        if name not in arrays:
            continue
        param.set_data(ms.Tensor(np.ascontiguousarray(arrays[name]), dtype=param.dtype))


def load_checkpoint(net, path: str, namespace: str = "") -> None:
    """Load a MindSpore ``.ckpt`` strictly into ``net`` (a PyTorch file: :func:`ms_osr.build.load_weights`)."""
    arrays = align_wrapper_prefix(read_ckpt_arrays(path, namespace=namespace), net.parameters_dict())
    load_arrays_into_net(net, arrays, source=path)


def save_arrays(arrays: Dict[str, np.ndarray], dst: str) -> None:
    """Write ``{name: ndarray}`` as a MindSpore checkpoint, atomically."""
    import mindspore as ms

    items = [{"name": k, "data": ms.Tensor(np.ascontiguousarray(v))} for k, v in arrays.items()]
    with atomic_path(dst, suffix=".ckpt") as tmp:
        ms.save_checkpoint(items, tmp)


def save_checkpoint(net, dst: str, extra: Dict[str, np.ndarray] | None = None) -> None:
    """Save the network's parameters (plus optional namespaced extras) atomically."""
    arrays = {name: p.asnumpy() for name, p in net.parameters_dict().items()}
    if extra:
        arrays.update(extra)
    save_arrays(arrays, dst)
