"""Model registry in the style of mindcv/timm: ``@register_model`` factories and named configurations.

Each architecture file in :mod:`ms_osr.models` registers its factory functions; named
configurations (small CPU/test sizes, paper defaults) are registered with
:func:`register_config`.  Composite models declare their sub-models as data (:class:`SubModel`):
which constructor argument takes the sub-network, which one names its weight file.  The
registry only builds architectures (:func:`create_model`, random weights); weights are the job of
:func:`ms_osr.build.create_model`.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Tuple, Union

from .errors import UnknownNameError, suggest


@dataclass(frozen=True)
class SubModel:
    """A sub-network of a composite model, as :func:`ms_osr.build.create_model` builds it.

    ``arg``: the constructor argument that receives the built cell; in a config it holds the sub-model's
    registered name (or an alias from ``aliases``).  ``kwargs``: the argument with the sub-model's keyword
    arguments.  ``ckpt``: the argument naming its weight file.  ``model``/``model_kwargs``: the sub-model
    when the composite does not take its name.  ``aliases``: ``value -> (key in the sub-model's kwargs that
    may name the model, default name)``; with aliases, ``arg`` takes only those (``what`` names them in the
    error).  ``warn_random``: warn when it is built without weights (True, or the values of ``arg`` that
    should: a pre-trained prior is meant to be loaded).
    """

    arg: str
    kwargs: str = ""
    ckpt: str = ""
    model: str = ""
    model_kwargs: Mapping = field(default_factory=dict)
    aliases: Mapping[str, Tuple[str, str]] = field(default_factory=dict)
    what: str = ""
    warn_random: Union[bool, Tuple[str, ...]] = False


@dataclass(frozen=True)
class Declaration:
    """What a factory needs besides plain values: sub-models, and arguments read from files
    (``files``: argument -> name of a reader in :data:`ms_osr.build.FILE_READERS`)."""

    submodels: Tuple[SubModel, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)


_FACTORIES: Dict[str, Callable] = {}
_DECLARATIONS: Dict[str, Declaration] = {}
_CONFIGS: Dict[str, tuple] = {}  # name -> (factory name, default kwargs, description)
_LOADED = False


def register_model(fn: Callable = None, *, name: str | None = None, submodels: Tuple[SubModel, ...] = (),
                   files: Mapping[str, str] | None = None):
    """Decorator: register ``fn`` (which returns an ``nn.Cell``) under ``name`` or its function name,
    with the sub-models and file arguments it declares."""

    def wrap(f: Callable) -> Callable:
        key = name or f.__name__
        if key in _FACTORIES or key in _CONFIGS:
            raise KeyError(f"model name '{key}' registered twice")
        _FACTORIES[key] = f
        _DECLARATIONS[key] = Declaration(tuple(submodels), dict(files or {}))
        return f

    return wrap(fn) if fn is not None else wrap


def register_config(name: str, factory: str, description: str = "", **kwargs) -> None:
    """Register a named configuration of an existing factory (e.g. a small CPU size)."""
    if name in _FACTORIES or name in _CONFIGS:
        raise KeyError(f"model name '{name}' registered twice")
    _CONFIGS[name] = (factory, kwargs, description)


def _load_all() -> None:
    """Import every module of ms_osr.models so that its registrations run."""
    global _LOADED
    if _LOADED:
        return
    # discovered by name: the model files import this module, not the other way round
    models = importlib.import_module(f"{__package__}.models")
    for info in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{info.name}")
    _LOADED = True


def list_models() -> list:
    """All registered names: factories and named configurations, sorted."""
    _load_all()
    return sorted(set(_FACTORIES) | set(_CONFIGS))


def model_kwargs(name: str, **overrides) -> tuple:
    """Resolve ``name`` to ``(factory_name, kwargs)`` with overrides applied."""
    _load_all()
    if name in _CONFIGS:
        factory, defaults, _ = _CONFIGS[name]
        merged = dict(defaults)
        merged.update(overrides)
        return factory, merged
    if name in _FACTORIES:
        return name, dict(overrides)
    raise UnknownNameError(f"unknown model '{name}'{suggest(name, list_models())}; registered: "
                           f"{', '.join(list_models())}")


def factory(name: str) -> Callable:
    """The factory function registered under ``name`` (a factory name, see :func:`model_kwargs`)."""
    _load_all()
    return _FACTORIES[name]


def declaration(name: str) -> Declaration:
    """Sub-models and file arguments of the factory ``name``."""
    _load_all()
    return _DECLARATIONS.get(name, Declaration())


def create_model(name: str, **kwargs):
    """The architecture of the registered model ``name`` with random weights; ``kwargs`` override its
    configuration.  Sub-models named by their registered name are built the same way.  To load weights
    (the model's own or its sub-models') use :func:`ms_osr.build.create_model`."""
    factory_name, merged = model_kwargs(name, **kwargs)
    return _FACTORIES[factory_name](**merged)
