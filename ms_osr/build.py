"""The one home of weights: build a registered architecture and load what it needs from files.

``create_model(name, ckpt=None, **kwargs)`` (mindcv's shape): the registry builds the architecture,
composite models get their sub-models built here from their declarations
(:class:`ms_osr.registry.SubModel`: which argument takes the cell, which names its weight file), and
weights are read here, MindSpore ``.ckpt`` or PyTorch files through the converter, strictly.  With
``ckpt`` every weight comes from that file, so the weight files of sub-models are not read (a training
run's ``base_ckpt`` need not exist on the machine that evaluates).  Nothing under ``ms_osr/models``
opens a file.

Also here: the official-format loaders (OpenAI CLIP ``.pt`` goes through :func:`load_weights` like any
PyTorch file; PTG-RM inside the SNR-aware network: :func:`load_official_ptg_rm`) and the converter
functions that write checkpoints (:func:`convert_pth_to_ckpt`, :func:`convert_ckpt_to_pth`).
"""
from __future__ import annotations

import inspect
import os
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .checkpoint import (CheckpointError, align_wrapper_prefix, load_arrays_into_net, read_ckpt_arrays,
                         save_arrays)
from .convert import ConversionError, convert_state_dict, find_sub_network_prefix, select_prefix, to_torch_state_dict
from .errors import ModelArgumentError, MsOsrError, UnknownNameError, suggest
from .fileio import atomic_path
from .registry import SubModel, declaration, factory, model_kwargs
from .torch_io import is_torch_file, read_torch_checkpoint

TORCH_SUFFIXES = (".pth", ".pt", ".bin")


# --------------------------------------------------------------------------------------------
# reading weights


def is_torch_checkpoint(path: str) -> bool:
    """A PyTorch file: by suffix, or by content (Lightning writes ``.ckpt`` too)."""
    return str(path).endswith(TORCH_SUFFIXES) or is_torch_file(path)


def load_weights(net, path: str, namespace: str = "") -> None:
    """Load ``path`` strictly into ``net``: a MindSpore ``.ckpt`` (``namespace`` picks e.g. the ``ema.``
    weights of a train.py checkpoint), or a PyTorch file converted on the fly (OpenAI's TorchScript
    CLIP ``.pt`` included, read without running its code)."""
    if is_torch_checkpoint(path):
        arrays = convert_state_dict(net, read_torch_checkpoint(path).arrays, source=path)
    else:
        arrays = align_wrapper_prefix(read_ckpt_arrays(path, namespace=namespace), net.parameters_dict())
    load_arrays_into_net(net, arrays, source=path)


def load_official_ptg_rm(net, path: str, prefix: str = "refinement11.") -> None:
    """The PTG-RM part of an official checkpoint (the whole SNR-aware network, keys ``refinement11.*``)
    or a bare ``refinement2`` state_dict (``prefix=''``), checking every name and shape."""
    state = read_torch_checkpoint(path).arrays
    if prefix:
        state = select_prefix(state, prefix, path, hint="pass prefix='' for a bare refinement2 state_dict")
    load_arrays_into_net(net, convert_state_dict(net, state, source=path), source=path)


@dataclass(frozen=True)
class Standardization:
    """Per-dimension mean/std of a prior's vector (written by
    :func:`ms_osr.training.osf_distill.calibrate_standardization`); ``source`` names the file."""

    mean: np.ndarray
    std: np.ndarray
    source: str = "standardisation"


def read_standardization(path: str) -> Standardization:
    """The ``.npz`` with ``mean`` and ``std``; one-line errors naming the file."""
    what = f"OSF standardisation file {path}"
    try:
        with np.load(path, allow_pickle=False) as data:
            mean, std = (np.asarray(data[k], np.float32) for k in ("mean", "std"))
    except FileNotFoundError:
        raise ModelArgumentError(f"{what}: not found (write it with tools/ptg_rm_experiment.py "
                                 f"--calibrate-osf)") from None
    except KeyError as e:
        raise ModelArgumentError(f"{what}: missing array {e} (needs 'mean' and 'std')") from None
    except Exception as e:  # noqa: BLE001 (truncated / not an npz)
        raise ModelArgumentError(f"{what}: unreadable ({type(e).__name__}: {e})") from None
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ModelArgumentError(f"{what}: non-finite mean/std or std <= 0")
    return Standardization(mean, std, what)


# argument readers named by registry declarations (``files={'standardize': 'standardization'}``)
FILE_READERS: Dict[str, Callable[[str], Any]] = {"standardization": read_standardization}


# --------------------------------------------------------------------------------------------
# building


def _constructor(fn: Callable) -> inspect.Signature:
    """The signature that says which arguments ``fn`` takes: its own, or, for ``def f(**kwargs) -> Cls``,
    the class's ``__init__`` it forwards to."""
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        try:
            cls = typing.get_type_hints(fn).get("return")
        except Exception:  # noqa: BLE001 (an annotation that does not resolve: no finer check possible)
            cls = None
        if inspect.isclass(cls):
            return inspect.signature(cls.__init__)
    return sig


def _check_arguments(label: str, fn: Callable, kwargs: Dict[str, Any]) -> None:
    params = _constructor(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n in params if n != "self"]
    for key in kwargs:
        if key not in params:
            raise ModelArgumentError(f"model '{label}' has no argument '{key}'{suggest(key, known)}; "
                                     f"it takes {', '.join(known) or 'none'}")


def _default(fn: Callable, arg: str) -> Any:
    p = _constructor(fn).parameters.get(arg)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


@dataclass
class _Part:
    """One sub-model as a config describes it (``cell``: one the caller built already)."""

    name: str
    kwargs: Dict[str, Any]
    ckpt: Optional[str]
    warn: bool
    cell: Any = None


def _take_part(sub: SubModel, kwargs: Dict[str, Any], fn: Callable) -> _Part:
    """Pop ``sub``'s weight-file and kwargs arguments from ``kwargs``."""
    ckpt = kwargs.pop(sub.ckpt, None) if sub.ckpt else None
    sub_kwargs = dict(kwargs.pop(sub.kwargs, None) or {}) if sub.kwargs else {}
    if sub.model:
        return _Part(sub.model, {**sub.model_kwargs, **sub_kwargs}, ckpt, sub.warn_random is True)
    value = kwargs.get(sub.arg, _default(fn, sub.arg))
    if not isinstance(value, str):
        return _Part("", sub_kwargs, ckpt, False, cell=value)
    name = value
    if sub.aliases:
        if value not in sub.aliases:
            raise ModelArgumentError(f"unknown {sub.what or sub.arg} '{value}'{suggest(value, sub.aliases)} "
                                     f"({' | '.join(sub.aliases)})")
        key, default = sub.aliases[value]
        name = sub_kwargs.pop(key, default) if key else default
    warn = sub.warn_random is True or (isinstance(sub.warn_random, tuple) and value in sub.warn_random)
    return _Part(name, sub_kwargs, ckpt, warn)


def _build(label: str, factory_name: str, kwargs: Dict[str, Any], ckpt: Optional[str], namespace: str,
           weights_from_parent: bool) -> Any:
    fn = factory(factory_name)
    decl = declaration(factory_name)
    kwargs = dict(kwargs)
    full = bool(ckpt) or weights_from_parent  # every weight comes from one file: no other weight file is read
    for sub in decl.submodels:
        part = _take_part(sub, kwargs, fn)
        if part.cell is not None:  # built by the caller; its weight file (if any) still applies
            if part.ckpt and not full:
                load_weights(part.cell, part.ckpt)
            continue
        if part.warn and not full and not part.ckpt and not part.kwargs.get("ckpt"):
            warnings.warn(f"{label}: sub-model '{part.name}' ({sub.arg}) has no checkpoint: random weights",
                          stacklevel=3)
        kwargs[sub.arg] = _build_named(part.name, part.kwargs, None if full else part.ckpt, "", full)
    own = kwargs.pop("ckpt", None) if "ckpt" not in _constructor(fn).parameters else None
    for arg, reader in decl.files.items():
        if isinstance(kwargs.get(arg), str):  # with every weight from a checkpoint the values come from it
            kwargs[arg] = True if full else FILE_READERS[reader](kwargs[arg])
    _check_arguments(label, fn, kwargs)
    net = fn(**kwargs)
    path = ckpt or (None if weights_from_parent else own)
    if path:
        load_weights(net, path, namespace)
    return net


def _build_named(name: str, kwargs: Dict[str, Any], ckpt: Optional[str], namespace: str,
                 weights_from_parent: bool = False) -> Any:
    factory_name, merged = model_kwargs(name, **kwargs)
    return _build(name, factory_name, merged, ckpt, namespace, weights_from_parent)


def create_model(name: str, ckpt: Optional[str] = None, namespace: str = "", **kwargs) -> Any:
    """Build the registered model ``name`` (``kwargs`` override its configuration) and load its weights.

    ``ckpt``: every weight of the model (``.ckpt``, or a PyTorch file through the converter), loaded
    strictly; sub-model weight files named in ``kwargs`` are then not read.  Without it, the weight
    files the kwargs name (``restorer_ckpt``, ``base_ckpt``, a prior's ``ckpt``, ...) are loaded into
    their sub-models.  Unknown arguments raise :class:`~ms_osr.errors.ModelArgumentError`."""
    return _build_named(name, kwargs, ckpt, namespace)


def create_model_from_kwargs(name: str, kwargs: Dict[str, Any]) -> Any:
    """:func:`create_model` with every key of ``kwargs`` (e.g. a config's ``osf_kwargs``) taken as the model's
    own argument: a sub-model weight file declared as ``ckpt`` (the restoration prior's restorer) then reaches
    that sub-model instead of being read as the whole model's checkpoint."""
    return _build_named(name, dict(kwargs), None, "")


def weight_paths(name: str, kwargs: Dict[str, Any], prefix: str = "model.kwargs") -> Iterator[Tuple[str, str]]:
    """``(config key, path)`` of every file a build of ``name`` with ``kwargs`` reads (without ``ckpt``):
    the declared sub-model weights and file arguments, and a model's own ``ckpt``, at any depth."""
    factory_name, merged = model_kwargs(name, **(kwargs or {}))
    fn, decl = factory(factory_name), declaration(factory_name)
    merged = dict(merged)
    for sub in decl.submodels:
        part = _take_part(sub, merged, fn)
        if part.ckpt:
            yield f"{prefix}.{sub.ckpt}", part.ckpt
        if part.cell is None:
            yield from weight_paths(part.name, part.kwargs, f"{prefix}.{sub.kwargs}" if sub.kwargs else prefix)
    if "ckpt" not in _constructor(fn).parameters and isinstance(merged.get("ckpt"), str) and merged["ckpt"]:
        yield f"{prefix}.ckpt", merged["ckpt"]
    for arg in decl.files:
        if isinstance(merged.get(arg), str):
            yield f"{prefix}.{arg}", merged[arg]


# --------------------------------------------------------------------------------------------
# converting files (tools/convert_pth.py)


@dataclass
class ConversionReport:
    """What a conversion wrote: tensors by MindSpore (or PyTorch) name, and notes for the user."""

    arrays: Dict[str, np.ndarray]
    notes: List[str] = field(default_factory=list)


def convert_pth_to_ckpt(model: str, src: str, dst: str, prefix: str | None = None,
                        **model_kwargs) -> ConversionReport:
    """Convert a PyTorch checkpoint of ``model`` to a MindSpore ``.ckpt`` (nothing written on error).

    ``prefix`` takes the sub-network stored under it (``refinement11.``); without it a unique
    such prefix is found when the file does not match the network as a whole.
    """
    net = create_model(model, **model_kwargs)
    ckpt = read_torch_checkpoint(src)
    notes = [ckpt.upcast_note] if ckpt.upcast_note else []
    state = ckpt.arrays
    if prefix:
        state = select_prefix(state, prefix, src)
    try:
        arrays = convert_state_dict(net, state, source=src)
    except ConversionError:
        found = None if prefix else find_sub_network_prefix(net, state)
        if found is None:
            raise
        arrays = convert_state_dict(net, select_prefix(state, found, src), source=src)
        prefix = found
    if prefix:
        ignored = sum(1 for k in ckpt.arrays if not k.startswith(prefix))
        notes.append(f"the '{prefix}*' tensors; {ignored} others in the file ignored")
    save_arrays(arrays, dst)
    return ConversionReport(arrays, notes)


def convert_ckpt_to_pth(model: str, src: str, dst: str, fmt: str = "official", prefix: str = "",
                        **model_kwargs) -> ConversionReport:
    """Convert a MindSpore ``.ckpt`` of ``model`` back to PyTorch, in the container the official
    code loads (``fmt='official'``, see :mod:`ms_osr.torch_formats`) or the one named; names
    get ``prefix`` in front (e.g. ``refinement11.``)."""
    from .torch_formats import official_format, wrap_state_dict
    from .torch_io import TORCH_HINT, TorchNeededError

    try:
        import torch
    except ImportError:
        raise TorchNeededError(f"{dst}: writing a PyTorch checkpoint needs torch ({TORCH_HINT})") from None
    fmt = official_format(model) if fmt == "official" else fmt
    net = create_model(model, **model_kwargs)
    arrays = align_wrapper_prefix(read_ckpt_arrays(src), net.parameters_dict())
    load_arrays_into_net(net, arrays, source=src)  # validates names and shapes
    state = {prefix + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in to_torch_state_dict(net, arrays).items()}
    payload = wrap_state_dict(state, fmt)
    with atomic_path(dst, suffix=".pth") as tmp:
        torch.save(payload, tmp)
    return ConversionReport({k: v.numpy() for k, v in state.items()}, [f"{fmt} container"])


# --------------------------------------------------------------------------------------------
# a checkpoint with the training config beside it (test.py, the demo, the tools)


class ModelLoadError(MsOsrError, RuntimeError):
    """The model or checkpoint cannot be used (one-line message naming the file)."""


def find_config(ckpt: str) -> Optional[str]:
    """The training config that belongs to ``ckpt``: ``<stem>.yaml`` (shipped ckpt/) or the run
    folder's ``config.yaml`` (train.py run dirs); None if neither exists."""
    stem = os.path.splitext(ckpt)[0]
    for cand in (stem + ".yaml", stem + ".yml", os.path.join(os.path.dirname(os.path.abspath(ckpt)), "config.yaml")):
        if os.path.isfile(cand):
            return cand
    return None


def model_spec_from_config(cfg: dict, source: str) -> Tuple[str, dict]:
    """``model: {name, kwargs}`` (or ``model: NAME`` + optional ``model_kwargs``) -> (name, kwargs)."""
    spec = cfg.get("model")
    if isinstance(spec, str):
        return spec, dict(cfg.get("model_kwargs") or {})
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        return spec["name"], dict(spec.get("kwargs") or {})
    raise ModelLoadError(f"{source}: config has no 'model: {{name: ..., kwargs: ...}}' entry")


@dataclass
class LoadedModel:
    net: Any
    name: str
    kwargs: dict
    ckpt: str
    config_path: Optional[str]
    config: dict


def load_model(ckpt: str, model: Optional[str] = None, config: Optional[str] = None,
               overrides: Optional[dict] = None, namespace: str = "") -> LoadedModel:
    """Build the network for ``ckpt`` and load every weight from it, strictly.

    The model name/kwargs come from ``model`` (registered name) if given, else from ``config`` or the
    config found beside the checkpoint; ``overrides`` update the kwargs.  Weight files the kwargs name
    for sub-models (a training run's ``base_ckpt``), or as the model's starting weights (a fine-tune's
    ``ckpt``), are not read: the checkpoint holds those weights.
    """
    from .config import ConfigError, load_config
    from .torch_io import TORCH_HINT, TorchFileError, TorchNeededError, convert_command

    if not os.path.isfile(ckpt):
        raise ModelLoadError(f"{ckpt}: checkpoint file not found")
    if config and not os.path.isfile(config):
        raise ModelLoadError(f"{config}: config file not found")
    cfg_path = config or (None if model else find_config(ckpt))
    cfg: dict = {}
    if cfg_path:
        try:
            cfg = load_config(cfg_path)
        except ConfigError as exc:
            raise ModelLoadError(str(exc)) from None
    if model:
        name, kwargs = model, {}
        if cfg:  # the config's kwargs apply when it describes this model
            try:
                cfg_name, cfg_kwargs = model_spec_from_config(cfg, cfg_path)
                if cfg_name == model:
                    kwargs = cfg_kwargs
            except ModelLoadError:
                pass
    elif cfg:
        name, kwargs = model_spec_from_config(cfg, cfg_path)
    else:
        raise ModelLoadError(f"{ckpt}: no config found beside the checkpoint ({os.path.splitext(ckpt)[0]}.yaml or "
                             f"config.yaml); pass --model NAME or --config FILE")
    kwargs.update(overrides or {})
    # a fine-tune's config names the weights it started from (model.kwargs.ckpt, and the namespace they sat
    # under in that file): ``ckpt`` and ``namespace`` supersede them
    build_kwargs = {k: v for k, v in kwargs.items() if k not in ("ckpt", "namespace")}
    try:
        net = create_model(name, ckpt=ckpt, namespace=namespace, **build_kwargs)
    except (UnknownNameError, ModelArgumentError) as exc:
        raise ModelLoadError(f"{cfg_path or ckpt}: {exc}") from None
    except TorchNeededError:
        raise ModelLoadError(f"{ckpt}: a PyTorch checkpoint and torch is not installed: convert it once where "
                             f"torch is installed with `{convert_command(ckpt, name)}`, or {TORCH_HINT}") from None
    except TorchFileError as exc:  # refused or unreadable: the model is not in question
        raise ModelLoadError(str(exc).splitlines()[0]) from None
    except CheckpointError as exc:
        first = str(exc).splitlines()[0]
        raise ModelLoadError(f"{first} (not a checkpoint of '{name}' with these settings?)") from None
    net.set_train(False)
    return LoadedModel(net, name, kwargs, ckpt, cfg_path, cfg)


__all__ = ["create_model", "load_weights", "load_official_ptg_rm", "read_standardization", "Standardization",
           "weight_paths", "convert_pth_to_ckpt", "convert_ckpt_to_pth", "ConversionReport", "CheckpointError",
           "is_torch_checkpoint", "load_model", "LoadedModel", "ModelLoadError", "find_config"]
