"""Model registry in the style of mindcv/timm: ``@register_model`` factories and ``create_model``.

Each architecture file in :mod:`ms_osr.models` registers its factory functions; named
configurations (small CPU/test sizes, paper defaults) are registered with
:func:`register_config`.  ``create_model(name, **kwargs)`` builds either, with keyword
arguments overriding the configuration.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Dict

from .errors import UnknownNameError, suggest

_FACTORIES: Dict[str, Callable] = {}
_CONFIGS: Dict[str, tuple] = {}  # name -> (factory name, default kwargs, description)
_LOADED = False


def register_model(fn: Callable = None, *, name: str | None = None):
    """Decorator: register ``fn`` (which returns an ``nn.Cell``) under ``name`` or its function name."""

    def wrap(f: Callable) -> Callable:
        key = name or f.__name__
        if key in _FACTORIES or key in _CONFIGS:
            raise KeyError(f"model name '{key}' registered twice")
        _FACTORIES[key] = f
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
    from . import models

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


def create_model(name: str, **kwargs):
    """Build the registered model ``name``; ``kwargs`` override its configuration."""
    factory, merged = model_kwargs(name, **kwargs)
    return _FACTORIES[factory](**merged)
